//! The fuzz targets: one function per parser of untrusted bytes, shared by the cargo-fuzz
//! binaries in `fuzz_targets/` (libFuzzer, nightly) and by the fixed-seed run in `make test`
//! (`tests/it/fuzz.rs`, stable). Each function must return normally on any input: a panic,
//! an endless loop or an allocation proportional to a number read from the input is a bug.
//! The checks below are the invariants the rest of the program relies on.
#![allow(dead_code, clippy::result_large_err)]
use ntfsclone::dev::mem::MemDev;
use ntfsclone::dev::ReadAt;
use ntfsclone::error::Result as NResult;
use ntfsclone::image::{Header, Reader, Record};
use ntfsclone::ntfs::attr_list::EntryIter;
use ntfsclone::ntfs::attribute::{AttrIter, Form, AT_ATTRIBUTE_LIST};
use ntfsclone::ntfs::diag::NoDiagnostics;
use ntfsclone::ntfs::hiber::HiberProbe;
use ntfsclone::ntfs::mft_record::{check_record, post_read_fixup, pre_write_fixup, RecordHeader};
use ntfsclone::ntfs::runlist::{decode_extent, RunIter};
use ntfsclone::ntfs::{BootSector, Volume};
use ntfsclone::used::scan_with;

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
// `Error` is a fixed-size value by design (errors never allocate).
#[allow(clippy::result_large_err)]
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
        // The hibernation probe sees every attribute of the walk, as in `ops::Source::scan`.
        let mut hiber = HiberProbe::default();
        let scanned = scan_with(&v, &c, ignore, &mut NoDiagnostics, &mut |a| {
            hiber.visit(&v, a);
            Ok(())
        });
        let _ = hiber.is_hibernated(&v, &c);
        if let Ok(s) = scanned {
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

/// Recomputes the CRCs of a GPT header at byte `at` of `d` and of its entry array (bounded),
/// so that mutations of the fields reach the field checks instead of failing the CRC.
fn reseal_gpt(d: &mut [u8], at: usize) {
    let get = |d: &[u8], o: usize, n: usize| -> u64 {
        let mut b = [0u8; 8];
        if let Some(s) = d.get(at + o..at + o + n) {
            b[..n].copy_from_slice(s);
        }
        u64::from_le_bytes(b)
    };
    if d.get(at..at + 8) != Some(b"EFI PART") {
        return;
    }
    let (lba, num, size) = (get(d, 72, 8), get(d, 80, 4), get(d, 84, 4));
    let bytes = num.saturating_mul(size);
    if bytes <= 1 << 20 {
        let start = lba.saturating_mul(512);
        if let Some(e) = usize::try_from(start)
            .ok()
            .and_then(|s| d.get(s..s.checked_add(bytes as usize)?))
        {
            let crc = crc32fast::hash(e);
            d[at + 88..at + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let hs = (get(d, 12, 4) as usize).clamp(92, 512);
    if let Some(h) = d.get_mut(at..at + hs) {
        h[16..20].fill(0);
        let crc = crc32fast::hash(h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A whole small disk (512-byte sectors) read as a partition table: the DOS label, the GPT
/// and the layout with its checks. The first byte: bit 0 reseals the GPT CRCs after the
/// mutation, bit 1 reads with 4096-byte sectors.
pub(crate) fn partition_table(data: &[u8]) {
    use ntfsclone::disk::gpt::{Gpt, MAX_ENTRIES_BYTES};
    use ntfsclone::disk::{mbr, Layout};
    let Some((&sel, disk)) = data.split_first() else {
        return;
    };
    let mut d = disk.to_vec();
    if sel & 1 != 0 && d.len() >= 1024 {
        let last = (d.len() / 512 - 1) * 512;
        reseal_gpt(&mut d, 512);
        reseal_gpt(&mut d, last);
    }
    let ss: u32 = if sel & 2 != 0 { 4096 } else { 512 };
    let size = d.len() as u64;
    let sectors = size / u64::from(ss);
    let dev = MemDev::new(d);
    if let Ok(l) = mbr::read(&dev, ss, sectors) {
        assert!(l.logical.len() <= mbr::MAX_LOGICAL);
        assert!(l.ebrs.iter().all(|&e| e < sectors));
    }
    if let Ok(g) = Gpt::read(&dev, sectors, ss) {
        assert!(g.entries.len() as u64 <= MAX_ENTRIES_BYTES);
        assert_eq!(crc32fast::hash(&g.entries), g.header.entries_crc);
        if let Ok(parts) = g.partitions() {
            for p in &parts {
                assert!(p.first_lba <= p.last_lba && p.last_lba <= g.header.last_usable);
            }
            let need = g.min_disk_sectors().unwrap();
            if need <= sectors.saturating_mul(4) {
                let enc = g.encode(need.max(sectors)).unwrap();
                assert!(
                    enc.backup_entries_lba > parts.iter().map(|p| p.last_lba).max().unwrap_or(0)
                );
            }
        }
    }
    if let Ok(l) = Layout::read(&dev, size, ss) {
        let mut prev = 0;
        for p in &l.partitions {
            assert!(p.len > 0 && p.start >= prev && p.end() <= size);
            prev = p.end();
        }
        for a in &l.areas {
            assert!(a.offset + a.len <= size);
            assert!(!l
                .partitions
                .iter()
                .any(|p| p.start < a.offset + a.len && a.offset < p.end()));
        }
        assert!(l.min_disk_size().unwrap() <= size);
    }
}

/// A FAT file system: the boot sector, then the used runs from its FAT (FATs up to 16 MiB).
/// Runs are in order, do not touch, and stay inside the file system.
pub(crate) fn fat(data: &[u8]) {
    use ntfsclone::disk::fat::Fat;
    use ntfsclone::disk::layout::{Area, AreaKind, AreasDisk};
    // The input is the start of the file system; the rest reads as zeros.
    let Ok(f) = Fat::parse(data, u64::MAX) else {
        return;
    };
    assert!(f.data_offset < f.size && f.cluster_size.is_power_of_two());
    if f.fat_bytes > 16 << 20 {
        return;
    }
    let dev = AreasDisk {
        size: f.size,
        areas: vec![(
            Area {
                kind: AreaKind::Head,
                offset: 0,
                len: data.len() as u64,
            },
            data.to_vec(),
        )],
    };
    let mut prev_end: Option<u64> = None;
    let r = f.used_runs(&dev, |o, l| {
        assert!(l > 0);
        if let Some(p) = prev_end {
            assert!(o > p, "runs touch or go back");
        }
        assert!(o + l <= f.size, "run past the file system");
        prev_end = Some(o + l);
        Ok(())
    });
    if let Ok(used) = r {
        assert!(used <= u64::from(f.clusters));
    }
}

/// A disk image stream, read as a restore would (sections, extents, index, trailer), and
/// located and extracted from its end as `--extract` would. The first byte: bit 0 checksums.
pub(crate) fn disk_image(data: &[u8]) {
    use ntfsclone::dev::ReadStream;
    use ntfsclone::disk::image::{self, DiskHeader, Reader, SectionKind};
    let Some((&sel, img)) = data.split_first() else {
        return;
    };
    if let Some(start) = img.get(..image::FIXED_LEN) {
        if let Ok(n) = DiskHeader::len_from_start(start) {
            assert!(n <= image::MAX_HEADER_LEN);
            if let Some(h) = img.get(..n) {
                if let Ok(h) = DiskHeader::parse(h) {
                    assert!(h.area_bytes() <= ntfsclone::disk::layout::MAX_AREA_BYTES);
                    assert!(h.min_disk_size() <= h.disk_size.saturating_mul(2));
                }
            }
        }
    }
    let len = img.len() as u64;
    let dev = MemDev::new(img.to_vec());
    if let Ok(loc) = image::locate(&dev, len) {
        for e in &loc.index {
            assert!(e.payload_offset + e.payload_len <= len);
        }
        let mut out = MemDev::default();
        if let Some(e) = loc.index.first() {
            if image::extract(&dev, len, e.number, &mut out).is_ok() {
                assert_eq!(out.data.len() as u64, e.payload_len);
            }
        }
    }
    let Ok(mut r) = Reader::open(MemDev::new(img.to_vec()), sel & 1 != 0) else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    for _ in 0..img.len() + 2 {
        let s = match r.next_section() {
            Ok(Some(s)) => s,
            Ok(None) => {
                let _ = r.finish();
                return;
            }
            Err(_) => return,
        };
        if s.part.kind == SectionKind::Ntfs {
            // Hand a special-image reader the payload, as the restore does, and take back
            // what it read ahead.
            let v = r.lend_verifier();
            let Ok(mut ir) = ntfsclone::image::Reader::open_continuing(
                &mut r,
                None,
                0,
                false,
                ntfsclone::image::reader::Checksum::Off,
                v,
            ) else {
                return;
            };
            for _ in 0..img.len() + 2 {
                match ir.next_record() {
                    Ok(Record::End { .. }) => break,
                    Err(_) => return,
                    Ok(_) => {}
                }
            }
            let (v, rest) = ir.into_rest();
            r.give_back(&rest, v);
            continue;
        }
        for _ in 0..img.len() + 2 {
            match r.next_extent() {
                Ok(Some(e)) => {
                    assert!(e.offset + e.len <= s.part.len);
                    let mut left = e.len;
                    while left > 0 {
                        let n = (left as usize).min(buf.len());
                        match r.read(&mut buf[..n]) {
                            Ok(0) | Err(_) => return,
                            Ok(k) => left -= k as u64,
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    panic!("the disk image reader does not advance");
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
/// error, and never yields more than the frames' claims allow. Read as a stream, then (when
/// it has a seek table) with the worker reading the frames the table lists, taking buffers
/// whole every other time.
pub(crate) fn zstd_stream(data: &[u8]) {
    use ntfsclone::dev::ReadStream;
    use ntfsclone::zstd::frame::SeekTable;
    use ntfsclone::zstd::Decompressor;
    // A frame of n bytes decompresses to at most 128 KiB per 3-byte block header (RLE
    // blocks); far less than this for any real stream.
    let most = (data.len() as u64 + 1) * (128 << 10) / 3 + (8 << 20);
    let Ok(d) = Decompressor::new(MemDev::new(data.to_vec()), &[], 1) else {
        return;
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut drain = |mut d: Decompressor<MemDev>, swap: bool| {
        let mut total = 0u64;
        let mut mine = Vec::new();
        for turn in 0u64.. {
            if swap && turn % 2 == 0 {
                match d.swap_buffer(&mut mine) {
                    Ok(Some(at)) => {
                        assert!(at <= mine.len());
                        total += (mine.len() - at) as u64;
                        assert!(total <= most);
                        continue;
                    }
                    Ok(None) => {}
                    Err(_) => return,
                }
            }
            match d.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    total += n as u64;
                    assert!(total <= most);
                }
            }
        }
    };
    drain(d, false);
    let len = data.len() as u64;
    if let Ok(Some((_, idx))) = SeekTable::read(&MemDev::new(data.to_vec()), len, 8 << 20) {
        let Ok(d) = Decompressor::new(MemDev::new(data.to_vec()), &[], 1) else {
            return;
        };
        let src = std::sync::Arc::new(MemDev::new(data.to_vec()));
        drain(d.with_index(idx).read_frames_at(src), true);
    }
}
