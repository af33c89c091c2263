//! The fuzz targets: one function per parser of untrusted bytes, shared by the cargo-fuzz
//! binaries in `fuzz_targets/` (libFuzzer, nightly) and by the fixed-seed run in `make test`
//! (`tests/it/fuzz.rs`, stable). Each function must return normally on any input: a panic,
//! an endless loop or an allocation proportional to a number read from the input is a bug.
//! The checks below are the invariants the rest of the program relies on.
#![allow(dead_code)]
use ntfsclone::dev::mem::MemDev;
use ntfsclone::dev::ReadAt;
use ntfsclone::error::Result as NResult;
use ntfsclone::image::{Header, Reader, Record};
use ntfsclone::ntfs::attr_list::EntryIter;
use ntfsclone::ntfs::attribute::{AttrIter, Form, AT_ATTRIBUTE_LIST};
use ntfsclone::ntfs::diag::NoDiagnostics;
use ntfsclone::ntfs::mft_record::{check_record, post_read_fixup, pre_write_fixup, RecordHeader};
use ntfsclone::ntfs::runlist::{decode_extent, RunIter};
use ntfsclone::ntfs::{BootSector, Volume};
use ntfsclone::used::scan;

fn le_i64(d: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    if let Some(s) = d.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    i64::from_le_bytes(b)
}

/// The boot sector parser: accepted values must be the ones the rest of the code assumes.
pub(crate) fn boot_sector(data: &[u8]) {
    if let Ok(b) = BootSector::from_bytes(data) {
        assert!(b.cluster_size.is_power_of_two() && b.cluster_size <= 2 << 20);
        assert!((256..=4096).contains(&b.sector_size));
        assert!(b.mft_record_size > 0 && b.index_record_size > 0);
        assert!(b.mft_lcn > 0 && b.mft_lcn <= b.nr_clusters);
        assert!(b.mftmirr_lcn > 0 && b.mftmirr_lcn <= b.nr_clusters);
        let _ = b.last_sector_offset();
        let _ = b.volume_size();
    }
}

/// Runs of one extent: every run has a length, VCNs increase without overflow.
fn runs_of(mp: &[u8], lowest: i64, highest: i64, alloc: Option<i64>) {
    let mut next_vcn = lowest.max(0) as u64;
    let _ = decode_extent(mp, lowest, highest, alloc, |r| {
        assert!(r.len > 0);
        assert_eq!(r.vcn, next_vcn);
        next_vcn = r.vcn.checked_add(r.len).expect("VCN overflow");
        assert!(next_vcn <= i64::MAX as u64);
    });
    // The iterator alone ends too (a zero byte, an error or the end of the bytes).
    assert!(RunIter::new(mp, lowest).take(mp.len() + 2).count() <= mp.len() + 1);
}

/// Mapping pairs: bytes 0..8 lowest_vcn, 8..16 highest_vcn, 16..24 allocated clusters,
/// then the pairs.
pub(crate) fn runlist(data: &[u8]) {
    let mp = data.get(24..).unwrap_or(&[]);
    let alloc = le_i64(data, 16);
    runs_of(mp, le_i64(data, 0), le_i64(data, 8), Some(alloc));
    runs_of(mp, le_i64(data, 0), le_i64(data, 8), None);
}

/// Attribute list values: entries advance, the iteration ends.
pub(crate) fn attr_list(data: &[u8]) {
    let mut n = 0usize;
    for e in EntryIter::new(data) {
        n += 1;
        assert!(n <= data.len() / 8 + 1, "attribute list does not advance");
        if e.is_err() {
            break;
        }
    }
}

/// An MFT record: fixup, header check, attributes, their runlists and attribute lists.
/// The first byte picks the record size (512 << (b % 4)); the rest is the record.
pub(crate) fn mft_record(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let size = 512usize << (sel % 4);
    let mut rec = vec![0u8; size];
    let n = rest.len().min(size);
    rec[..n].copy_from_slice(&rest[..n]);
    let raw = rec.clone();
    match post_read_fixup(&mut rec) {
        Ok(()) => {
            // Undoing and redoing the fixup gives back the bytes as stored.
            let mut again = rec.clone();
            assert!(pre_write_fixup(&mut again));
            assert_eq!(again, raw, "fixup round trip");
        }
        Err(_) => assert_eq!(rec, raw, "a failed fixup must leave the record unchanged"),
    }
    let _ = RecordHeader::parse(&rec);
    let _ = check_record(7, &rec);
    let mut count = 0usize;
    for a in AttrIter::new(&rec) {
        count += 1;
        assert!(
            count <= size / 16 + 1,
            "attribute iteration does not advance"
        );
        let Ok(a) = a else { break };
        assert!(a.offset + a.length <= size);
        match a.form {
            Form::NonResident {
                lowest_vcn,
                highest_vcn,
                mapping_pairs,
                allocated_size,
                ..
            } => runs_of(
                mapping_pairs,
                lowest_vcn,
                highest_vcn,
                Some(allocated_size.saturating_add(4095) / 4096),
            ),
            Form::Resident { value, .. } => {
                if a.type_code == AT_ATTRIBUTE_LIST {
                    attr_list(value);
                }
            }
        }
    }
}

/// The image header: the first 46 bytes, then the offset field.
pub(crate) fn image_header(data: &[u8]) {
    let Some(start) = data.get(..46) else { return };
    let mut b = [0u8; 46];
    b.copy_from_slice(start);
    if let Ok((mut h, _)) = Header::parse_start(&b) {
        // Accepted headers describe volumes whose byte offsets fit in i64 (a negative cluster
        // count is refused).
        assert!(h.cluster_size.is_power_of_two());
        let last = h.last_position().expect("negative cluster count accepted");
        let end = (last as u128 + 1) * u128::from(h.cluster_size);
        assert!(end <= i64::MAX as u128);
        let mut f = [0u8; 4];
        if let Some(s) = data.get(46..50) {
            f.copy_from_slice(s);
        }
        let _ = h.set_offset(f);
        let _ = h.volume_size();
        for pos in [
            0,
            1,
            h.nr_clusters.saturating_sub(1),
            h.nr_clusters,
            h.nr_clusters.saturating_add(1),
        ] {
            if let Some(n) = h.record_size(pos) {
                assert!(n <= h.cluster_size as usize);
            }
        }
    }
}

/// The image stream, read as `-r -n` and as `-r -o -` would: every record consumes input,
/// so the reader reaches the end or an error within `len + 2` records. The first byte picks
/// the variant (stdout or not, seekable or not, buffer size).
pub(crate) fn image_stream(data: &[u8]) {
    let Some((&sel, img)) = data.split_first() else {
        return;
    };
    let base = (sel & 1 == 0).then_some(0u64);
    let to_stdout = sel & 2 != 0;
    let buf = if sel & 4 != 0 { 0 } else { 1 << 16 };
    let Ok(mut r) = Reader::open(MemDev::new(img.to_vec()), base, buf, to_stdout) else {
        return;
    };
    let nr = r.header().nr_clusters;
    let cs = r.header().cluster_size as usize;
    for _ in 0..img.len() + 2 {
        match r.next_record() {
            Ok(Record::Cluster { pos, data }) => {
                assert!(pos <= nr);
                assert!(data.len() <= cs);
            }
            Ok(Record::Gap { count, .. }) => assert_ne!(count, 0),
            Ok(Record::End { .. }) | Err(_) => return,
        }
        assert!(r.position() <= nr.saturating_add(1));
    }
    panic!("the image reader does not advance");
}

/// A device that counts its reads, to catch loops that keep reading the same bytes.
struct Counted<'a> {
    dev: &'a MemDev,
    reads: core::cell::Cell<u64>,
}

impl ReadAt for Counted<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> NResult<usize> {
        self.reads.set(self.reads.get() + 1);
        assert!(self.reads.get() < 2_000_000, "endless reading");
        self.dev.read_at(buf, offset)
    }
}

/// A whole volume: open, walk the MFT, account clusters, as `ntfsclone -s` does before copying.
/// The caller's device-size check comes first, as in `ops::Source::open`.
pub(crate) fn volume_dev(dev: &MemDev) {
    let c = Counted {
        dev,
        reads: core::cell::Cell::new(0),
    };
    let size = dev.data.len() as u64;
    let Ok(v) = Volume::open(&c, size) else {
        return;
    };
    if size < v.boot.volume_size() {
        return;
    }
    assert!(
        v.mft_records <= size / u64::from(v.boot.mft_record_size) + 1,
        "{} MFT records on a device of {size} bytes",
        v.mft_records
    );
    for ignore in [false, true] {
        if let Ok(s) = scan(&v, &c, ignore, &mut NoDiagnostics) {
            assert!(
                s.used.get(v.boot.nr_clusters),
                "backup boot sector not in the map"
            );
            assert!(s.used.len() <= v.boot.nr_clusters + 8 + 1);
        }
    }
}

/// Volume mutations: `data` is a list of patches `[offset le32][len u8][bytes]` applied to
/// `seed` (offsets wrap around the seed's length).
pub(crate) fn volume(seed: &[u8], data: &[u8]) {
    let mut v = seed.to_vec();
    apply_patches(&mut v, data);
    volume_dev(&MemDev::new(v));
}

/// Applies `[offset le32][len u8][bytes]` patches (see [`volume`]).
pub(crate) fn apply_patches(v: &mut [u8], mut data: &[u8]) {
    if v.is_empty() {
        return;
    }
    while data.len() >= 5 {
        let off = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize % v.len();
        let n = (data[4] as usize).min(data.len() - 5).min(v.len() - off);
        v[off..off + n].copy_from_slice(&data[5..5 + n]);
        data = &data[5 + n..];
    }
}

/// Zstandard frames: the walker finds an end within the bytes or asks for more, never
/// going backwards; the first byte picks how the bytes arrive (all at once or in pieces).
pub(crate) fn zstd_frame(data: &[u8]) {
    use ntfsclone::zstd::frame::{Frame, FrameHeader, FrameWalker, Step};
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let _ = FrameHeader::parse(bytes, 0);
    let piece = usize::from(sel % 16) + 1;
    let mut w = FrameWalker::new(1 << 40);
    let mut have = if sel & 0x80 != 0 { bytes.len() } else { 0 };
    let mut last_need = 0u64;
    for _ in 0..bytes.len() + 64 {
        match w.advance(&bytes[..have]) {
            Err(_) => return,
            Ok(Step::Done(Frame::Zstd {
                header,
                len,
                raw_bytes,
            })) => {
                assert!(len >= header.header_bytes as u64 && len <= have as u64);
                if let Some(cs) = header.content_size {
                    assert!(raw_bytes <= cs);
                }
                return;
            }
            Ok(Step::Done(Frame::Skippable { len, .. })) => {
                assert!(len >= 8);
                return;
            }
            Ok(Step::Need(n)) => {
                assert!(n > have as u64, "asks for bytes it has");
                assert!(n >= last_need, "need went backwards");
                last_need = n;
                if n > bytes.len() as u64 {
                    return;
                }
                have = (have + piece).max(n as usize).min(bytes.len());
            }
        }
    }
    panic!("the frame walker does not advance");
}

/// The seek table at the end of a stream: offsets increase and end at the table.
pub(crate) fn zstd_seek_table(data: &[u8]) {
    use ntfsclone::zstd::frame::SeekTable;
    let len = data.len() as u64;
    if let Ok(Some((t, idx))) = SeekTable::read(&MemDev::new(data.to_vec()), len, 8 << 20) {
        assert_eq!(idx.len() as u64, u64::from(t.frames) + 1);
        assert!(idx.windows(2).all(|p| p[0].0 < p[1].0 && p[0].1 <= p[1].1));
        assert_eq!(idx.last().map(|e| e.0), Some(t.start));
        assert!(t.start < len);
    }
}

/// A whole zstd stream through the decompressor (one worker): it ends, with or without an
/// error, and never yields more than the frames' claims allow.
pub(crate) fn zstd_stream(data: &[u8]) {
    use ntfsclone::dev::ReadStream;
    use ntfsclone::zstd::Decompressor;
    let Ok(mut d) = Decompressor::new(MemDev::new(data.to_vec()), &[], 1) else {
        return;
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match d.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                total += n as u64;
                // A frame of n bytes decompresses to at most 128 KiB per 3-byte block header
                // (RLE blocks); far less than this for any real stream.
                assert!(total <= (data.len() as u64 + 1) * (128 << 10) / 3 + (8 << 20));
            }
        }
    }
}
