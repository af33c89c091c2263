//! The metadata mode's wipe rules (`-m`, `-m -s`; spec §4.2), applied to the bytes of one MFT
//! record or one INDX block as stored on disk (update-sequence protected), in place.
//!
//! What is wiped, per the behaviour spec and verified black-box against ntfsclone 2022.10.3:
//! * timestamps (unless `-t`) are set to the NTFS time of 1970-01-01 ([`NTFS_TIME_EPOCH`]),
//!   not 0: `$STANDARD_INFORMATION` value bytes 0..32, `$FILE_NAME` value bytes 8..40, the
//!   FILE_NAME keys of `$INDEX_ROOT` entries and of INDX blocks (entry bytes 24..56), and the
//!   `change_time` of version-2 quota entries in a `$Q` index root;
//! * in records of files above 11 (not system files): the value of resident `$DATA`, the
//!   slack after `bytes_in_use`, and, in records not in use, everything from byte 48;
//! * afterwards the record is protected again with the same update sequence number (0 and
//!   0xFFFF become 1), so a wiped record reads back like one written by NTFS.
//!
//! File names, security descriptors, reparse data and the other indexes are not wiped (the
//! reference does not either: `man ntfsclone`, "filenames are not wiped out").
//!
//! The functions never panic: every offset read from the buffer is checked.
use super::attribute::{AttrIter, Form, AT_DATA, AT_FILE_NAME, AT_INDEX_ROOT};
use super::attribute::{AT_END, AT_STANDARD_INFORMATION};
use super::le;
use super::mft_record::{post_read_fixup, FixupError, RecordHeader, FILE_MAGIC, NTFS_BLOCK_SIZE};

/// `timespec2ntfs({0, 0})`: 1970-01-01 in 100 ns units since 1601.
pub const NTFS_TIME_EPOCH: u64 = 0x019D_B1DE_D53E_8000;
/// "BAAD": how NTFS (and the reference) marks a record that failed its fixup.
pub const BAAD_MAGIC: [u8; 4] = *b"BAAD";
/// "INDX": an index allocation block.
pub const INDX_MAGIC: [u8; 4] = *b"INDX";
/// Records up to this number are system files: only their timestamps are wiped.
pub const LAST_SYSTEM_RECORD: u64 = 11;

/// Byte 48: where a record's header ends and the update sequence array usually starts.
const WIPE_DELETED_FROM: usize = 48;
/// Index entry: length (le16) and flags (le16), and where its key starts.
const OFF_IE_LENGTH: usize = 0x08;
const OFF_IE_FLAGS: usize = 0x0C;
const OFF_IE_KEY: usize = 0x10;
/// Index entry flag: the last entry of a node (it has no key).
const INDEX_ENTRY_END: u16 = 0x0002;
/// The four times of a FILE_NAME key start 8 bytes into it (after the parent reference).
const FN_TIMES: usize = 0x08;
/// Four 8-byte times.
const TIMES_LEN: usize = 32;
/// INDEX_ROOT value: indexed attribute type (le32) and index block size (le32); the index
/// header follows at 0x10.
const OFF_IR_TYPE: usize = 0x00;
const OFF_IR_BLOCK_SIZE: usize = 0x08;
const OFF_IR_HEADER: usize = 0x10;
/// INDX block: the index header starts at 0x18.
const OFF_INDX_HEADER: usize = 0x18;
/// Index header: entries_offset, index_length, allocated_size (le32 each, relative to it).
const OFF_IH_ENTRIES: usize = 0x00;
const OFF_IH_ALLOCATED: usize = 0x08;
/// Index entry of a view index: data_offset (le16) at 0; QUOTA_CONTROL_ENTRY: version (le32)
/// at 0, change_time (le64) at 16.
const OFF_QUOTA_VERSION: usize = 0x00;
const OFF_QUOTA_CHANGE_TIME: usize = 0x10;
/// What the reference counts for one wiped group of four times, and for one quota time.
const COUNT_TIMES: u64 = 32;
const COUNT_QUOTA_TIME: u64 = 4;

/// What was wiped, counted like the reference's statistics (§4.5): non-zero bytes zeroed for
/// data, a fixed amount per group of timestamps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `Wiped unused MFT data`: slack after `bytes_in_use`.
    pub unused_mft: u64,
    /// `Wiped deleted MFT data`: records not in use, from byte 48 to `bytes_in_use`.
    pub deleted_mft: u64,
    /// `Wiped resident user data`.
    pub resident_data: u64,
    /// `Wiped timestamp data`.
    pub timestamps: u64,
}

impl Stats {
    /// `Wiped totally`.
    pub fn total(&self) -> u64 {
        self.unused_mft + self.deleted_mft + self.resident_data + self.timestamps
    }
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &Stats) {
        self.unused_mft += o.unused_mft;
        self.deleted_mft += o.deleted_mft;
        self.resident_data += o.resident_data;
        self.timestamps += o.timestamps;
    }
}

/// What [`wipe_mft_record`] / [`wipe_indx_block`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A valid record or block, wiped (or left as is when nothing applied) and re-protected.
    /// For MFT records, `in_use` tells whether the record is in use.
    Wiped { in_use: bool },
    /// No FILE/INDX magic (never used, zeroed, or "BAAD"): left untouched; it holds no
    /// structure the rules apply to.
    NotARecord,
    /// The magic is right but the update sequence array is broken (odd offset, wrong count).
    /// MFT records are wiped as stored, like the reference, and their update sequence number
    /// decremented, without protecting them again; INDX blocks are left as they are.
    BadFixup,
    /// A torn record or block (a stride does not end with the update sequence number),
    /// marked "BAAD" like the reference does: MFT records are still wiped (and their update
    /// sequence number decremented), INDX blocks are left as they are.
    Torn,
    /// Left exactly as stored: INDX blocks with `-t` (nothing of them is wiped, and the
    /// reference does not even check their fixup then: black-box, a torn block stays "INDX").
    Untouched,
}

/// Zeroes `b`, returning how many bytes were not zero.
fn zero(b: &mut [u8]) -> u64 {
    let n = b.iter().filter(|&&x| x != 0).count() as u64;
    b.fill(0);
    n
}

/// Sets four consecutive times at `b[off..off+32]` to the epoch. False when out of range.
fn epoch_times(b: &mut [u8], off: usize) -> bool {
    match off
        .checked_add(TIMES_LEN)
        .and_then(|end| b.get_mut(off..end))
    {
        Some(t) => {
            for c in t.chunks_exact_mut(8) {
                c.copy_from_slice(&NTFS_TIME_EPOCH.to_le_bytes());
            }
            true
        }
        None => false,
    }
}

/// Protects a fixed-up buffer again keeping its update sequence number, as libntfs does
/// (`usn_dec` then `pre_write_fixup`, which skips 0 and 0xFFFF): 0 and 0xFFFF become 1.
/// False when the array does not fit (the caller checked it with the post-read fixup).
fn protect_same_usn(buf: &mut [u8]) -> bool {
    let size = buf.len();
    let (Some(ofs), Some(count)) = (le::u16(buf, 0x04), le::u16(buf, 0x06)) else {
        return false;
    };
    let (ofs, count) = (ofs as usize, count as usize);
    if size == 0
        || size % NTFS_BLOCK_SIZE != 0
        || count == 0
        || count - 1 != size / NTFS_BLOCK_SIZE
        || ofs % 2 != 0
        || ofs + 2 * count > NTFS_BLOCK_SIZE - 2
    {
        return false;
    }
    let mut usn = le::u16(buf, ofs).unwrap_or(0);
    if usn == 0 || usn == 0xFFFF {
        usn = 1;
    }
    let usn = usn.to_le_bytes();
    buf[ofs..ofs + 2].copy_from_slice(&usn);
    for i in 1..count {
        let end = i * NTFS_BLOCK_SIZE - 2;
        buf[ofs + 2 * i] = buf[end];
        buf[ofs + 2 * i + 1] = buf[end + 1];
        buf[end..end + 2].copy_from_slice(&usn);
    }
    true
}

/// Decrements the update sequence number of a record that is not protected again (the
/// reference's `usn_dec` before its protection fails): 1 and 0 wrap to 0xFFFE. Only inside
/// the record: with `usa_ofs` at or past the record's end the reference decrements the first
/// two bytes of the *next* record ("FILE" becomes "EILE", black-box), losing that record; we
/// leave the record's neighbours alone.
fn decrement_usn(buf: &mut [u8]) {
    let Some(ofs) = le::u16(buf, 0x04).map(usize::from) else {
        return;
    };
    if let Some(u) = le::u16(buf, ofs) {
        let usn: u16 = if u <= 1 { 0xFFFE } else { u - 1 };
        if let Some(b) = buf.get_mut(ofs..ofs + 2) {
            b.copy_from_slice(&usn.to_le_bytes());
        }
    }
}

/// Sets the FILE_NAME times of every index entry from `start` to the END entry (or the end
/// of `b`). Returns the count for the statistics.
fn wipe_fn_entries(b: &mut [u8], start: usize) -> u64 {
    let mut count = 0;
    let mut pos = start;
    while let (Some(len), Some(flags)) = (
        le::u16(b, pos + OFF_IE_LENGTH),
        le::u16(b, pos + OFF_IE_FLAGS),
    ) {
        if flags & INDEX_ENTRY_END != 0 || (len as usize) < OFF_IE_KEY {
            break;
        }
        if !epoch_times(b, pos + OFF_IE_KEY + FN_TIMES) {
            break;
        }
        count += COUNT_TIMES;
        pos += len as usize;
    }
    count
}

/// Sets the `change_time` of every version-2 quota control entry from `start` to the END
/// entry. Returns the count for the statistics.
fn wipe_quota_entries(b: &mut [u8], start: usize) -> u64 {
    let mut count = 0;
    let mut pos = start;
    while let (Some(data_ofs), Some(len), Some(flags)) = (
        le::u16(b, pos),
        le::u16(b, pos + OFF_IE_LENGTH),
        le::u16(b, pos + OFF_IE_FLAGS),
    ) {
        if flags & INDEX_ENTRY_END != 0 || (len as usize) < OFF_IE_KEY {
            break;
        }
        let data = pos + data_ofs as usize;
        if le::u32(b, data + OFF_QUOTA_VERSION) == Some(2) {
            let at = data + OFF_QUOTA_CHANGE_TIME;
            if let Some(t) = b.get_mut(at..at + 8) {
                t.copy_from_slice(&NTFS_TIME_EPOCH.to_le_bytes());
                count += COUNT_QUOTA_TIME;
            }
        }
        pos += len as usize;
    }
    count
}

/// Wipes the timestamps in the value of an `$INDEX_ROOT` attribute named `name` (UTF-16LE):
/// FILE_NAME indexes and the `$Q` quota index. Returns the count for the statistics.
pub fn wipe_index_root(value: &mut [u8], name_is_q: bool) -> u64 {
    let Some(entries) = le::u32(value, OFF_IR_HEADER + OFF_IH_ENTRIES) else {
        return 0;
    };
    let start = OFF_IR_HEADER.saturating_add(entries as usize);
    if name_is_q {
        wipe_quota_entries(value, start)
    } else if le::u32(value, OFF_IR_TYPE) == Some(AT_FILE_NAME) {
        wipe_fn_entries(value, start)
    } else {
        0
    }
}

/// The index block size an `$INDEX_ROOT` value declares.
pub fn index_block_size(index_root_value: &[u8]) -> Option<u32> {
    le::u32(index_root_value, OFF_IR_BLOCK_SIZE)
}

/// Counts (without changing anything) what the reference's walk wipes in one resident
/// attribute of an in-use file: the statistics of the `-m` pass and the first half of the
/// `-m -s` ones. `value` is the attribute value, `mft_no` the file.
pub fn count_attr(
    type_code: u32,
    name_is_q: bool,
    value: &[u8],
    mft_no: u64,
    keep_times: bool,
    stats: &mut Stats,
) {
    match type_code {
        AT_STANDARD_INFORMATION | AT_FILE_NAME if !keep_times => {
            let off = if type_code == AT_FILE_NAME {
                FN_TIMES
            } else {
                0
            };
            if value.len() >= off + TIMES_LEN {
                stats.timestamps += COUNT_TIMES;
            }
        }
        AT_INDEX_ROOT if !keep_times => {
            stats.timestamps += count_only(value, |v| wipe_index_root(v, name_is_q));
        }
        AT_DATA if mft_no > LAST_SYSTEM_RECORD => {
            stats.resident_data += value.iter().filter(|&&x| x != 0).count() as u64;
        }
        _ => {}
    }
}

/// Runs a wipe on a copy of `value` kept on the stack in pieces, returning its count; the
/// value itself is not changed. Resident values are at most one record (≤ 64 KiB here).
fn count_only(value: &[u8], f: impl FnOnce(&mut [u8]) -> u64) -> u64 {
    let mut copy = [0u8; 4096];
    match copy.get_mut(..value.len()) {
        Some(c) => {
            c.copy_from_slice(value);
            f(c)
        }
        None => {
            // Larger than any resident index root met in practice: count on a heap copy.
            let mut v = std::vec::Vec::from(value);
            f(&mut v)
        }
    }
}

/// Wipes one MFT record as stored on disk (`rec` is one record, protected), in place.
/// `mft_no` is its record number (its position in `$MFT`/`$MFTMirr`). Counts into `stats`.
pub fn wipe_mft_record(
    rec: &mut [u8],
    mft_no: u64,
    keep_times: bool,
    stats: &mut Stats,
) -> Outcome {
    if le::bytes::<4>(rec, 0) != Some(FILE_MAGIC) {
        return Outcome::NotARecord;
    }
    let (fixed, torn) = match post_read_fixup(rec) {
        Ok(()) => (true, false),
        // A torn record (a stride's last two bytes are not the update sequence number): the
        // reference marks it "BAAD" (as NTFS does), still applies the wipe rules to the bytes
        // as stored, decrements the update sequence number and writes it without protecting
        // it again (black-box: USN 5 -> 4, magic BAAD, timestamps, slack and resident data
        // wiped). Keeping the rules here matters: the record's names and times are readable.
        Err(FixupError::Incomplete { .. }) => (false, true),
        // A broken update sequence array (odd offset, wrong count): the same without the
        // BAAD mark (black-box: usa_count 0, 1, 2, 4 of a 1 KiB record, usa_ofs 47).
        Err(FixupError::BadArray { .. }) => (false, false),
    };
    if torn {
        rec[..4].copy_from_slice(&BAAD_MAGIC);
    }
    let Some(h) = RecordHeader::parse(rec) else {
        return Outcome::BadFixup;
    };
    let len = rec.len();
    let in_use_end = (h.bytes_in_use as usize).min(len);
    let alloc_end = (h.bytes_allocated as usize).min(len).max(in_use_end);
    let in_use = h.in_use();
    if mft_no > LAST_SYSTEM_RECORD {
        if in_use {
            stats.unused_mft += zero(&mut rec[in_use_end..alloc_end]);
        } else {
            if in_use_end > WIPE_DELETED_FROM {
                stats.deleted_mft += zero(&mut rec[WIPE_DELETED_FROM..in_use_end]);
            }
            stats.unused_mft += zero(&mut rec[in_use_end..alloc_end]);
        }
    }
    if in_use {
        wipe_attrs(rec, mft_no, keep_times, stats);
    }
    if !fixed {
        decrement_usn(rec);
        return if torn {
            Outcome::Torn
        } else {
            Outcome::BadFixup
        };
    }
    if !protect_same_usn(rec) {
        return Outcome::BadFixup;
    }
    Outcome::Wiped { in_use }
}

/// The per-attribute rules on the attributes of one fixed-up, in-use record.
fn wipe_attrs(rec: &mut [u8], mft_no: u64, keep_times: bool, stats: &mut Stats) {
    // Collect the resident values' places first (the iterator borrows the record).
    let mut places: heapless::Vec<(u32, bool, usize, usize), 64> = heapless::Vec::new();
    for a in AttrIter::new(rec) {
        let Ok(a) = a else { break };
        if a.type_code == AT_END {
            break;
        }
        if let Form::Resident {
            value,
            value_offset,
        } = a.form
        {
            let entry = (a.type_code, a.name_is("$Q"), value_offset, value.len());
            if places.push(entry).is_err() {
                break;
            }
        }
    }
    for (type_code, is_q, off, n) in places {
        let Some(v) = off.checked_add(n).and_then(|end| rec.get_mut(off..end)) else {
            continue;
        };
        match type_code {
            AT_STANDARD_INFORMATION if !keep_times && epoch_times(v, 0) => {
                stats.timestamps += COUNT_TIMES;
            }
            AT_FILE_NAME if !keep_times && epoch_times(v, FN_TIMES) => {
                stats.timestamps += COUNT_TIMES;
            }
            AT_INDEX_ROOT if !keep_times => stats.timestamps += wipe_index_root(v, is_q),
            AT_DATA if mft_no > LAST_SYSTEM_RECORD => stats.resident_data += zero(v),
            _ => {}
        }
    }
}

/// Wipes the FILE_NAME timestamps of one `$I30` INDX block as stored on disk, in place.
/// `index_block_size` is the directory's (from its `$INDEX_ROOT`). Blocks the reference does
/// not recognise (no INDX magic, entries before the header end, larger than the index block)
/// are left untouched.
pub fn wipe_indx_block(
    block: &mut [u8],
    index_block_size: u32,
    keep_times: bool,
    stats: &mut Stats,
) -> Outcome {
    if keep_times {
        return Outcome::Untouched;
    }
    if le::bytes::<4>(block, 0) != Some(INDX_MAGIC) {
        return Outcome::NotARecord;
    }
    let (Some(entries), Some(allocated)) = (
        le::u32(block, OFF_INDX_HEADER + OFF_IH_ENTRIES),
        le::u32(block, OFF_INDX_HEADER + OFF_IH_ALLOCATED),
    ) else {
        return Outcome::NotARecord;
    };
    if entries < 16 || allocated > index_block_size {
        return Outcome::NotARecord;
    }
    match post_read_fixup(block) {
        Ok(()) => {}
        // The reference marks a torn block "BAAD" and wipes nothing in it (black-box).
        Err(FixupError::Incomplete { .. }) => {
            block[..4].copy_from_slice(&BAAD_MAGIC);
            return Outcome::Torn;
        }
        Err(FixupError::BadArray { .. }) => return Outcome::BadFixup,
    }
    stats.timestamps += wipe_fn_entries(block, OFF_INDX_HEADER + entries as usize);
    if !protect_same_usn(block) {
        return Outcome::BadFixup;
    }
    Outcome::Wiped { in_use: true }
}

/// Counts (without changing anything) the timestamps [`wipe_indx_block`] would wipe.
pub fn count_indx_block(block: &[u8], index_block_size: u32, keep_times: bool) -> u64 {
    if keep_times {
        return 0;
    }
    let mut s = Stats::default();
    let mut copy = std::vec::Vec::from(block);
    wipe_indx_block(&mut copy, index_block_size, false, &mut s);
    s.timestamps
}

#[cfg(test)]
mod tests {
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
}
