//! Unit tests of the wipe rules on hand-made records and INDX blocks.
use super::*;
use crate::ntfs::attribute::tests::{non_resident, record, resident};
use crate::ntfs::mft_record::{pre_write_fixup, MFT_RECORD_IN_USE};
use std::prelude::v1::*;

const EPOCH: [u8; 8] = NTFS_TIME_EPOCH.to_le_bytes();

/// A $FILE_NAME value with recognisable times.
fn file_name_value(name: &str) -> Vec<u8> {
    let mut v = vec![0u8; 0x42 + 2 * name.len()];
    v[0..8].copy_from_slice(&5u64.to_le_bytes());
    for i in 0..4 {
        v[8 + 8 * i..16 + 8 * i]
            .copy_from_slice(&(0x01D0_0000_0000_0000u64 + i as u64).to_le_bytes());
    }
    v[0x40] = name.len() as u8;
    for (i, c) in name.bytes().enumerate() {
        v[0x42 + 2 * i] = c;
    }
    v
}

/// An index entry with a FILE_NAME key, or the END entry.
fn fn_entry(name: Option<&str>) -> Vec<u8> {
    match name {
        Some(n) => {
            let key = file_name_value(n);
            let len = (16 + key.len() + 7) & !7;
            let mut e = vec![0u8; len];
            e[8..10].copy_from_slice(&(len as u16).to_le_bytes());
            e[10..12].copy_from_slice(&(key.len() as u16).to_le_bytes());
            e[16..16 + key.len()].copy_from_slice(&key);
            e
        }
        None => {
            let mut e = vec![0u8; 16];
            e[8..10].copy_from_slice(&16u16.to_le_bytes());
            e[12..14].copy_from_slice(&INDEX_ENTRY_END.to_le_bytes());
            e
        }
    }
}

/// An $INDEX_ROOT value of `indexed` type with `entries`.
fn index_root(indexed: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = entries.concat();
    let mut v = vec![0u8; 0x20];
    v[0..4].copy_from_slice(&indexed.to_le_bytes());
    v[8..12].copy_from_slice(&4096u32.to_le_bytes());
    v[0x10..0x14].copy_from_slice(&0x10u32.to_le_bytes());
    v[0x14..0x18].copy_from_slice(&(0x10 + body.len() as u32).to_le_bytes());
    v[0x18..0x1C].copy_from_slice(&(0x10 + body.len() as u32).to_le_bytes());
    v.extend_from_slice(&body);
    v
}

/// A protected record of `size` with `attrs`, `flags`, and slack filled with 0xEE.
fn disk_record(size: usize, flags: u16, attrs: &[Vec<u8>], usn: u16) -> Vec<u8> {
    let mut r = record(size, flags, 0, attrs);
    let used = le::u32(&r, 0x18).unwrap() as usize;
    for b in &mut r[used..size - 2] {
        *b = 0xEE;
    }
    r[0x30..0x32].copy_from_slice(&usn.to_le_bytes());
    assert!(pre_write_fixup(&mut r));
    r
}

fn fixed(mut r: Vec<u8>) -> Vec<u8> {
    post_read_fixup(&mut r).unwrap();
    r
}

fn find(rec: &[u8], ty: u32) -> (usize, usize) {
    AttrIter::new(rec)
        .filter_map(|a| a.ok())
        .find(|a| a.type_code == ty)
        .map(|a| match a.form {
            Form::Resident {
                value,
                value_offset,
            } => (value_offset, value.len()),
            _ => core::panic!(),
        })
        .unwrap()
}

fn user_record() -> Vec<u8> {
    disk_record(
        1024,
        MFT_RECORD_IN_USE,
        &[
            resident(AT_STANDARD_INFORMATION, "", &[0x11; 72]),
            resident(AT_FILE_NAME, "", &file_name_value("a.txt")),
            resident(AT_DATA, "", b"secret data\0\0xyz"),
            resident(AT_DATA, "ads", b"stream"),
        ],
        7,
    )
}

#[test]
fn in_use_user_record() {
    let mut r = user_record();
    let before = fixed(r.clone());
    let mut s = Stats::default();
    assert_eq!(
        wipe_mft_record(&mut r, 40, false, &mut s),
        Outcome::Wiped { in_use: true }
    );
    // Same USN, still a valid record.
    assert_eq!(&r[0x30..0x32], &7u16.to_le_bytes());
    assert_eq!(&r[1022..1024], &7u16.to_le_bytes());
    let after = fixed(r);
    let (si, _) = find(&after, AT_STANDARD_INFORMATION);
    for i in 0..4 {
        assert_eq!(&after[si + 8 * i..si + 8 * i + 8], &EPOCH);
    }
    assert_eq!(&after[si + 32..si + 72], &before[si + 32..si + 72]);
    let (fnv, fnl) = find(&after, AT_FILE_NAME);
    assert_eq!(&after[fnv..fnv + 8], &before[fnv..fnv + 8], "parent kept");
    for i in 0..4 {
        assert_eq!(&after[fnv + 8 + 8 * i..fnv + 16 + 8 * i], &EPOCH);
    }
    assert_eq!(
        &after[fnv + 40..fnv + fnl],
        &before[fnv + 40..fnv + fnl],
        "name kept"
    );
    // Both $DATA values zeroed (the unnamed and the stream).
    let datas: Vec<_> = AttrIter::new(&after)
        .filter_map(|a| a.ok())
        .filter(|a| a.type_code == AT_DATA)
        .map(|a| a.value().unwrap().to_vec())
        .collect();
    assert_eq!(datas, [vec![0u8; 16], vec![0u8; 6]]);
    // Slack zeroed.
    let used = le::u32(&after, 0x18).unwrap() as usize;
    assert!(after[used..].iter().all(|&b| b == 0));
    assert_eq!(s.resident_data, 14 + 6);
    assert_eq!(s.timestamps, 64);
    let slack = before[used..].iter().filter(|&&b| b != 0).count() as u64;
    assert_eq!(s.unused_mft, slack);
    assert_eq!(s.deleted_mft, 0);
}

#[test]
fn preserve_timestamps_keeps_times_only() {
    let mut r = user_record();
    let before = fixed(r.clone());
    let mut s = Stats::default();
    wipe_mft_record(&mut r, 40, true, &mut s);
    let after = fixed(r);
    let (si, _) = find(&after, AT_STANDARD_INFORMATION);
    assert_eq!(&after[si..si + 32], &before[si..si + 32]);
    assert_eq!(s.timestamps, 0);
    assert_eq!(s.resident_data, 20);
}

#[test]
fn system_records_get_only_timestamps() {
    for mft_no in [0u64, 5, 11] {
        let mut r = user_record();
        let before = fixed(r.clone());
        let mut s = Stats::default();
        wipe_mft_record(&mut r, mft_no, false, &mut s);
        let after = fixed(r);
        let (d, n) = find(&after, AT_DATA);
        assert_eq!(&after[d..d + n], &before[d..d + n]);
        let used = le::u32(&after, 0x18).unwrap() as usize;
        assert_eq!(&after[used..], &before[used..], "slack kept in {mft_no}");
        assert_eq!(s.timestamps, 64);
        assert_eq!(s.resident_data + s.unused_mft, 0);
    }
}

#[test]
fn deleted_record_is_cleared_and_usn_becomes_one() {
    let mut r = disk_record(1024, 0, &[resident(AT_DATA, "", b"deleted secret")], 2);
    let header = r[..0x30].to_vec();
    let mut s = Stats::default();
    assert_eq!(
        wipe_mft_record(&mut r, 100, false, &mut s),
        Outcome::Wiped { in_use: false }
    );
    assert_eq!(&r[..0x30], &header[..]);
    assert_eq!(&r[0x30..0x32], &1u16.to_le_bytes());
    assert!(r[0x32..0x36].iter().all(|&b| b == 0));
    assert!(r[0x36..510].iter().all(|&b| b == 0));
    assert_eq!(&r[510..512], &[1, 0]);
    assert_eq!(&r[1022..1024], &[1, 0]);
    assert!(s.deleted_mft > 0 && s.unused_mft > 0 && s.timestamps == 0);
    // A deleted system record is left alone.
    let mut r = disk_record(1024, 0, &[resident(AT_DATA, "", b"x")], 2);
    let copy = r.clone();
    wipe_mft_record(&mut r, 3, false, &mut Stats::default());
    assert_eq!(r, copy);
}

#[test]
fn usn_zero_becomes_one() {
    let mut r = user_record();
    r[0x30..0x32].copy_from_slice(&0u16.to_le_bytes());
    r[510..512].copy_from_slice(&0u16.to_le_bytes());
    r[1022..1024].copy_from_slice(&0u16.to_le_bytes());
    wipe_mft_record(&mut r, 40, false, &mut Stats::default());
    assert_eq!(&r[0x30..0x32], &[1, 0]);
    assert_eq!(&r[1022..1024], &[1, 0]);
}

#[test]
fn not_records_and_torn_records_are_reported() {
    let mut z = vec![0u8; 1024];
    assert_eq!(
        wipe_mft_record(&mut z, 40, false, &mut Stats::default()),
        Outcome::NotARecord
    );
    // Torn (the last stride does not end with the USN): marked BAAD, still wiped, USN
    // decremented, not protected again (the reference's output, black-box).
    let mut r = user_record();
    r[1022] ^= 0xFF;
    let copy = r.clone();
    let mut s = Stats::default();
    assert_eq!(wipe_mft_record(&mut r, 40, false, &mut s), Outcome::Torn);
    assert_eq!(&r[..4], b"BAAD");
    assert!(s.timestamps > 0);
    let usn = le::u16(&copy, 0x30).unwrap();
    assert_eq!(le::u16(&r, 0x30), Some(usn - 1));
    assert_ne!(r, copy);
    // A broken update sequence array: wiped as stored, USN decremented, magic kept.
    let mut r = user_record();
    r[0x06] = 2;
    let copy = r.clone();
    let mut s = Stats::default();
    assert_eq!(
        wipe_mft_record(&mut r, 40, false, &mut s),
        Outcome::BadFixup
    );
    assert_eq!(&r[..4], b"FILE");
    assert!(s.timestamps > 0);
    assert_eq!(le::u16(&r, 0x30), Some(usn - 1));
    assert_ne!(r, copy);
    let mut short = vec![0u8; 20];
    short[..4].copy_from_slice(b"FILE");
    assert_eq!(
        wipe_mft_record(&mut short, 40, false, &mut Stats::default()),
        Outcome::BadFixup
    );
}

#[test]
fn index_root_of_file_names() {
    let ir = index_root(
        AT_FILE_NAME,
        &[fn_entry(Some("a")), fn_entry(Some("bb")), fn_entry(None)],
    );
    let mut r = disk_record(
        1024,
        MFT_RECORD_IN_USE | 2,
        &[resident(AT_INDEX_ROOT, "$I30", &ir)],
        3,
    );
    let mut s = Stats::default();
    wipe_mft_record(&mut r, 5, false, &mut s);
    assert_eq!(s.timestamps, 64);
    let after = fixed(r);
    let (v, _) = find(&after, AT_INDEX_ROOT);
    let e0 = v + 0x20;
    for i in 0..4 {
        assert_eq!(&after[e0 + 24 + 8 * i..e0 + 32 + 8 * i], &EPOCH);
    }
    assert_eq!(&after[e0 + 16..e0 + 24], &5u64.to_le_bytes(), "parent kept");
    // Counting alone gives the same number and changes nothing.
    let mut c = Stats::default();
    count_attr(AT_INDEX_ROOT, false, &ir, 5, false, &mut c);
    assert_eq!(c.timestamps, 64);
    // An index of something else ($SII-like) is not touched.
    let other = index_root(0, &[fn_entry(Some("a")), fn_entry(None)]);
    let mut o = other.clone();
    assert_eq!(wipe_index_root(&mut o, false), 0);
    assert_eq!(o, other);
}

#[test]
fn quota_index_root() {
    // Entry: data_offset 16, data_length 48, length 64; QUOTA_CONTROL_ENTRY version 2.
    let mut e = vec![0u8; 64];
    e[0..2].copy_from_slice(&16u16.to_le_bytes());
    e[2..4].copy_from_slice(&48u16.to_le_bytes());
    e[8..10].copy_from_slice(&64u16.to_le_bytes());
    e[16..20].copy_from_slice(&2u32.to_le_bytes());
    e[32..40].copy_from_slice(&0x1234u64.to_le_bytes());
    let mut v1 = e.clone();
    v1[16..20].copy_from_slice(&1u32.to_le_bytes());
    let mut ir = index_root(0, &[e, v1, fn_entry(None)]);
    assert_eq!(wipe_index_root(&mut ir, true), 4);
    assert_eq!(&ir[0x20 + 32..0x20 + 40], &EPOCH);
    assert_eq!(&ir[0x60 + 32..0x60 + 40], &0x1234u64.to_le_bytes());
}

/// An INDX block of `size` with `entries`, protected with `usn`.
fn indx_block(size: usize, entries: &[Vec<u8>], usn: u16) -> Vec<u8> {
    let mut b = vec![0u8; size];
    b[0..4].copy_from_slice(&INDX_MAGIC);
    let count = size / 512 + 1;
    b[4..6].copy_from_slice(&0x28u16.to_le_bytes());
    b[6..8].copy_from_slice(&(count as u16).to_le_bytes());
    let first = (0x28 + 2 * count + 7) & !7;
    let body: Vec<u8> = entries.concat();
    b[0x18..0x1C].copy_from_slice(&((first - 0x18) as u32).to_le_bytes());
    b[0x1C..0x20].copy_from_slice(&((first - 0x18 + body.len()) as u32).to_le_bytes());
    b[0x20..0x24].copy_from_slice(&((size - 0x18) as u32).to_le_bytes());
    b[first..first + body.len()].copy_from_slice(&body);
    b[0x28..0x2A].copy_from_slice(&usn.to_le_bytes());
    assert!(pre_write_fixup(&mut b));
    b
}

#[test]
fn indx_blocks() {
    let entries = [fn_entry(Some("one")), fn_entry(Some("two")), fn_entry(None)];
    let mut b = indx_block(4096, &entries, 9);
    assert_eq!(count_indx_block(&b, 4096, false), 64);
    assert_eq!(count_indx_block(&b, 4096, true), 0);
    let mut s = Stats::default();
    assert_eq!(
        wipe_indx_block(&mut b, 4096, false, &mut s),
        Outcome::Wiped { in_use: true }
    );
    assert_eq!(s.timestamps, 64);
    assert_eq!(&b[0x28..0x2A], &9u16.to_le_bytes());
    let mut f = b.clone();
    post_read_fixup(&mut f).unwrap();
    let first = 0x18 + le::u32(&f, 0x18).unwrap() as usize;
    assert_eq!(&f[first + 24..first + 32], &EPOCH);
    // Not recognised: other magic, allocated size above the block size, entries offset < 16.
    let mut z = vec![0u8; 4096];
    assert_eq!(
        wipe_indx_block(&mut z, 4096, false, &mut s),
        Outcome::NotARecord
    );
    let b2 = indx_block(4096, &entries, 9);
    let mut c = b2.clone();
    assert_eq!(
        wipe_indx_block(&mut c, 2048, false, &mut s),
        Outcome::NotARecord
    );
    assert_eq!(c, b2);
    let mut c = b2.clone();
    c[0x18..0x1C].copy_from_slice(&8u32.to_le_bytes());
    assert_eq!(
        wipe_indx_block(&mut c, 4096, false, &mut s),
        Outcome::NotARecord
    );
    // Torn: marked BAAD, nothing wiped; with -t not even that.
    let mut c = b2.clone();
    c[4094] ^= 1;
    let torn = c.clone();
    let before = s;
    assert_eq!(wipe_indx_block(&mut c, 4096, false, &mut s), Outcome::Torn);
    assert_eq!(&c[..4], b"BAAD");
    assert_eq!(&c[4..], &torn[4..]);
    assert_eq!(s, before);
    let mut c = torn.clone();
    assert_eq!(
        wipe_indx_block(&mut c, 4096, true, &mut s),
        Outcome::Untouched
    );
    assert_eq!(c, torn);
}

#[test]
fn hostile_entry_lengths_do_not_loop_or_panic() {
    let mut e = fn_entry(Some("x"));
    e[8..10].copy_from_slice(&0u16.to_le_bytes()); // length 0
    let mut ir = index_root(AT_FILE_NAME, &[e]);
    assert_eq!(wipe_index_root(&mut ir, false), 0);
    let mut e = fn_entry(Some("x"));
    e[8..10].copy_from_slice(&0xFFF8u16.to_le_bytes()); // far beyond
    let mut ir = index_root(AT_FILE_NAME, &[e]);
    assert_eq!(wipe_index_root(&mut ir, false), 32);
    let mut ir = index_root(AT_FILE_NAME, &[]);
    ir[0x10..0x14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(wipe_index_root(&mut ir, false), 0);
    assert_eq!(wipe_index_root(&mut [], false), 0);
    // A non-resident attribute in a record is skipped by the per-attribute rules.
    let mut r = disk_record(
        1024,
        MFT_RECORD_IN_USE,
        &[non_resident(AT_DATA, "", 0, 0, 4096, &[0x11, 1, 5])],
        4,
    );
    let mut s = Stats::default();
    assert_eq!(
        wipe_mft_record(&mut r, 40, false, &mut s),
        Outcome::Wiped { in_use: true }
    );
    assert_eq!(s.resident_data, 0);
}
