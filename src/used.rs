//! The used-cluster map: built by walking every in-use MFT record's runlists (the MFT is the
//! truth, $Bitmap is only compared with it), then yielded as runs in LCN order.
//!
//! Follows §3.1–3.3 of the behaviour spec: the walk ("Scanning volume ..."), the bad-cluster
//! step, and the accounting against $Bitmap ("Accounting clusters ...") with the reference's
//! messages. The map is one bit per cluster in lazily allocated 64 KiB pages, so an empty
//! region costs nothing and a 16 TiB volume of 4 KiB clusters costs at most 512 MiB.
// `Error` is a fixed-size value by design (errors never allocate).
#![allow(clippy::result_large_err)]
use crate::dev::ReadAt;
use crate::error::{errno, Error, Result};
use crate::ntfs::attribute::{Form, AT_DATA};
use crate::ntfs::diag::Diagnostics;
// The names ops/ and the integration tests use for the diagnostics trait and its no-op.
pub use crate::ntfs::diag::{Diagnostics as Sink, NoDiagnostics as NullSink};
use crate::ntfs::volume::{extent_runs, read_runs, RecordRead};
pub use crate::ntfs::walk::{for_each_run, walk_volume};
use crate::ntfs::walk::{walk_attrs, Scratch, Skipped, Visit};
use crate::ntfs::{inode, Volume};
use core::fmt;
use std::prelude::v1::*;

/// Bits per page: 64 KiB of bitmap.
const PAGE_BITS: u64 = 1 << 19;
/// u64 words per page.
const PAGE_WORDS: usize = (PAGE_BITS / 64) as usize;

/// One bit per cluster for positions `0..len()`, in lazily allocated pages.
#[derive(Clone, Default)]
pub struct UsedMap {
    pages: Vec<Option<Box<[u64]>>>,
    nbits: u64,
}

impl fmt::Debug for UsedMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allocated = self.pages.iter().filter(|p| p.is_some()).count();
        write!(
            f,
            "UsedMap {{ bits: {}, pages allocated: {}/{} }}",
            self.nbits,
            allocated,
            self.pages.len()
        )
    }
}

impl UsedMap {
    /// An empty map of `nbits` positions. The page table costs 8 bytes per 2^19 positions.
    pub fn new(nbits: u64) -> UsedMap {
        let npages = nbits.div_ceil(PAGE_BITS) as usize;
        let mut pages = Vec::new();
        pages.resize_with(npages, || None);
        UsedMap { pages, nbits }
    }

    /// Number of positions.
    pub fn len(&self) -> u64 {
        self.nbits
    }

    /// True when the map has no positions.
    pub fn is_empty(&self) -> bool {
        self.nbits == 0
    }

    /// Is `lcn` used? Positions beyond the map are not.
    pub fn get(&self, lcn: u64) -> bool {
        if lcn >= self.nbits {
            return false;
        }
        self.word(lcn / 64) >> (lcn % 64) & 1 != 0
    }

    fn word(&self, w: u64) -> u64 {
        let (p, i) = (
            (w / PAGE_WORDS as u64) as usize,
            (w % PAGE_WORDS as u64) as usize,
        );
        match self.pages.get(p) {
            Some(Some(page)) => page[i],
            _ => 0,
        }
    }

    fn word_mut(&mut self, w: u64) -> &mut u64 {
        let (p, i) = (
            (w / PAGE_WORDS as u64) as usize,
            (w % PAGE_WORDS as u64) as usize,
        );
        let page = self.pages[p].get_or_insert_with(|| vec![0u64; PAGE_WORDS].into_boxed_slice());
        &mut page[i]
    }

    /// Sets (`on`) or clears positions `start..start+len` (clipped to the map).
    pub fn set_range(&mut self, start: u64, len: u64, on: bool) {
        let end = start.saturating_add(len).min(self.nbits);
        let mut pos = start;
        while pos < end {
            let w = pos / 64;
            let lo = pos % 64;
            let hi = (end - w * 64).min(64);
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            if on {
                *self.word_mut(w) |= mask;
            } else if self.word(w) & mask != 0 {
                *self.word_mut(w) &= !mask;
            }
            pos = w * 64 + hi;
        }
    }

    /// Sets one position.
    pub fn set(&mut self, lcn: u64) {
        self.set_range(lcn, 1, true)
    }

    /// First used position in `start..end`, if any.
    pub fn next_set(&self, start: u64, end: u64) -> Option<u64> {
        let end = end.min(self.nbits);
        let mut pos = start;
        while pos < end {
            let w = pos / 64;
            let p = (w / PAGE_WORDS as u64) as usize;
            if !matches!(self.pages.get(p), Some(Some(_))) {
                pos = (p as u64 + 1) * PAGE_BITS;
                continue;
            }
            let bits = self.word(w) >> (pos % 64);
            if bits != 0 {
                let found = pos + bits.trailing_zeros() as u64;
                return (found < end).then_some(found);
            }
            pos = (w + 1) * 64;
        }
        None
    }

    /// First unused position in `start..end`, or `end`.
    pub fn next_clear(&self, start: u64, end: u64) -> u64 {
        let end = end.min(self.nbits);
        let mut pos = start;
        while pos < end {
            let w = pos / 64;
            let bits = !self.word(w) >> (pos % 64);
            if bits != 0 {
                return (pos + bits.trailing_zeros() as u64).min(end);
            }
            pos = (w + 1) * 64;
        }
        end.max(start)
    }

    /// Number of used positions.
    pub fn count(&self) -> u64 {
        self.pages
            .iter()
            .flatten()
            .map(|p| p.iter().map(|w| w.count_ones() as u64).sum::<u64>())
            .sum()
    }

    /// Runs of used clusters `(lcn, count)` in increasing LCN order, maximal.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut pos = 0u64;
        core::iter::from_fn(move || {
            let start = self.next_set(pos, self.nbits)?;
            let end = self.next_clear(start, self.nbits);
            pos = end;
            Some((start, end - start))
        })
    }
}

/// Result of the walk and the accounting.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Clusters used by files, plus the backup boot sector position `nr_clusters`
    /// (positions `0..=nr_clusters`).
    pub used: UsedMap,
    /// The header's `inuse`: clusters of all runs of in-use base records, minus $BadClus:$Bad.
    pub inuse: u64,
    /// Clusters set in $Bitmap that no file references (copied only with --rescue --ignore-fs-check, or -m).
    pub extra: UsedMap,
    /// Cluster accounting mismatches found (0 on a consistent volume).
    pub mismatches: u64,
    /// Bad clusters listed in $BadClus:$Bad (removed from `used` and `inuse`).
    pub bad_clusters: u64,
    /// The error of the reference's open of `$BadClus:$Bad`, which it reports after the
    /// `Space in use` line (see [`crate::ops::Source::scan`]).
    pub badclus_error: Option<Error>,
}

/// Bits of the reference's lcn bitmap beyond the map positions it owns: it is ⌈(nr_clusters+1)/8⌉
/// bytes with every bit ≥ nr_clusters preset, so a run ending inside that last byte is a
/// "referenced twice" case like in the reference, and anything further is outside the volume.
fn map_bits(nr_clusters: u64) -> u64 {
    (nr_clusters + 1).div_ceil(8) * 8
}

/// Walks the MFT ("Scanning volume ..." is printed by the caller) and compares with $Bitmap
/// ("Accounting clusters ..." is printed here).
pub fn scan<D: ReadAt + ?Sized>(
    vol: &Volume,
    dev: &D,
    ignore_fs_check: bool,
    sink: &mut dyn Diagnostics,
) -> Result<Scan> {
    scan_with(vol, dev, ignore_fs_check, sink, &mut |_| Ok(()))
}

/// As [`scan`], also showing every visited attribute to `also` (the metadata mode counts
/// its clusters during the same walk).
pub fn scan_with<D: ReadAt + ?Sized>(
    vol: &Volume,
    dev: &D,
    ignore_fs_check: bool,
    sink: &mut dyn Diagnostics,
    also: &mut dyn FnMut(&Visit) -> Result<()>,
) -> Result<Scan> {
    let nr = vol.boot.nr_clusters;
    // Never allocate for a volume larger than its boot sector can describe on this device
    // plus one cluster: the caller refuses volumes larger than the device before this.
    let nbits = map_bits(nr);
    let mut used = UsedMap::new(nbits);
    used.set_range(nr, nbits - nr, true);
    let mut inuse = 0u64;
    walk_volume(vol, dev, sink, &mut |v, sink| {
        also(v)?;
        let ty = v.attr.type_code;
        for_each_run(vol, v, &mut |lcn, len| {
            // A run that starts inside the reference's bitmap and runs past it first meets
            // the preset bits from nr_clusters on: the reference stops there with "referenced
            // twice" (black-box, differential tests), so the duplicates inside the map are
            // reported first; only then is the part outside the volume refused.
            let inside_end = lcn.saturating_add(len).min(nbits);
            if !ignore_fs_check && lcn < inside_end {
                if let Some(dup) = used.next_set(lcn, inside_end) {
                    return Err(Error::fatal(format_args!(
                        "Cluster {dup} referenced twice!\nYou didn't shutdown your Windows properly?\n"
                    )));
                }
            }
            let end = lcn.checked_add(len).filter(|&e| e <= nbits).ok_or_else(|| {
                Error::message(format_args!(
                    "Corrupt runlist in inode {} attr {:x}: clusters {}..{} are outside the volume ({} clusters)",
                    v.inode,
                    ty,
                    lcn,
                    lcn.saturating_add(len),
                    nr
                ))
            })?;
            let mut pos = lcn;
            while let Some(dup) = used.next_set(pos, end) {
                if !ignore_fs_check {
                    return Err(Error::fatal(format_args!(
                        "Cluster {dup} referenced twice!\nYou didn't shutdown your Windows properly?\n"
                    )));
                }
                sink.msg(format_args!("Cluster {dup} is referenced twice!\n"));
                pos = dup + 1;
            }
            used.set_range(lcn, len, true);
            inuse += len;
            Ok(())
        })
    })?;

    let (bad_clusters, badclus_error) = ignore_bad_clusters(vol, dev, &mut used, sink)?;
    inuse = inuse.saturating_sub(bad_clusters);

    sink.msg(format_args!("Accounting clusters ...\n"));
    let (extra, mismatches) = compare_bitmaps(vol, dev, &used, ignore_fs_check, sink)?;
    Ok(Scan {
        used,
        inuse,
        extra,
        mismatches,
        bad_clusters,
        badclus_error,
    })
}

/// Clears the runs of `$BadClus:$Bad` from the map and returns their cluster count, and the
/// error of the reference's open of that attribute if it fails.
///
/// Black-box (differential tests on record 8): the reference opens the inode, then the
/// attribute, then maps its whole runlist, and each failure is fatal after `Space in use`:
/// `ntfs_open_inode` (EIO for an unreadable record or a corrupt attribute met by the open,
/// ENOENT when the record is not in use or has no $STANDARD_INFORMATION), `ntfs_attr_open`
/// (ENOENT when there is no `$Bad`, EIO when a corrupt attribute comes first),
/// `ntfs_attr_map_whole_runlist` (EINVAL for a resident `$Bad`, EIO with "Failed to load
/// full runlist" when the runs end before the allocated size).
fn ignore_bad_clusters<D: ReadAt + ?Sized>(
    vol: &Volume,
    dev: &D,
    used: &mut UsedMap,
    sink: &mut dyn Diagnostics,
) -> Result<(u64, Option<Error>)> {
    let fail = |what: &str, errno: i32| Some(Error::os(what, errno));
    let mut buf = vec![0u8; vol.record_size()];
    match vol.read_record(dev, inode::BADCLUS, &mut buf, sink)? {
        RecordRead::Ok(h) if h.in_use() => {}
        RecordRead::Ok(_) => return Ok((0, fail("ntfs_open_inode", errno::ENOENT))),
        _ => return Ok((0, fail("ntfs_open_inode", errno::EIO))),
    }
    let mut bad = 0u64;
    let mut found: Option<bool> = None;
    let mut short: Option<(i64, i64)> = None;
    let cs = vol.boot.cluster_size as i64;
    let mut scratch = Scratch::default();
    let walked = walk_attrs(
        vol,
        dev,
        inode::BADCLUS,
        &buf,
        &mut scratch,
        sink,
        &mut |v, _| {
            if found.is_some() || v.attr.type_code != AT_DATA || !v.attr.name_is("$Bad") {
                return Ok(());
            }
            let Form::NonResident {
                highest_vcn,
                allocated_size,
                lowest_vcn,
                ..
            } = v.attr.form
            else {
                found = Some(false);
                return Ok(());
            };
            found = Some(true);
            let mut runs = Vec::new();
            extent_runs(v.attr, vol.boot.cluster_size, &mut runs)?;
            // The decoded runs must reach the allocated size (a zero highest_vcn is not
            // checked by the decoder: only where the runs end counts).
            let last_vcn = allocated_size.max(0) / cs;
            let end = runs.last().map_or(lowest_vcn, |r| (r.vcn + r.len) as i64);
            if lowest_vcn == 0 && end < last_vcn {
                short = Some((highest_vcn, last_vcn));
                return Ok(());
            }
            for r in runs {
                if let Some(lcn) = r.lcn {
                    used.set_range(lcn, r.len, false);
                    bad += r.len;
                }
            }
            Ok(())
        },
    )?;
    match walked {
        Err(Skipped::NoStandardInformation) => {
            return Ok((0, fail("ntfs_open_inode", errno::ENOENT)))
        }
        Err(Skipped::Corrupt | Skipped::CorruptList) => {
            return Ok((0, fail("ntfs_open_inode", errno::EIO)))
        }
        Err(Skipped::CorruptAfter) if found.is_none() => {
            return Ok((0, fail("ntfs_attr_open", errno::EIO)))
        }
        _ => {}
    }
    match found {
        None => return Ok((0, fail("ntfs_attr_open", errno::ENOENT))),
        Some(false) => return Ok((0, fail("ntfs_attr_map_whole_runlist", errno::EINVAL))),
        Some(true) => {}
    }
    if let Some((highest, last)) = short {
        sink.warn(format_args!(
            "Failed to load full runlist: inode: 8 highest_vcn: 0x{:x} last_vcn: 0x{:x}: Input/output error\n",
            highest, last
        ));
        return Ok((0, fail("ntfs_attr_map_whole_runlist", errno::EIO)));
    }
    if bad > 0 {
        sink.msg(format_args!(
            "WARNING: The disk has {bad} or more bad sectors (hardware faults).\n"
        ));
    }
    Ok((bad, None))
}

/// Reads `$Bitmap:$DATA` in 8 KiB chunks and compares it with the walk's map.
/// Prints the mismatches (the first 10) and returns the "extra" clusters and the count; fails
/// on a mismatch unless `ignore_fs_check`. Also used by the metadata image, which repeats it.
pub fn compare_bitmaps<D: ReadAt + ?Sized>(
    vol: &Volume,
    dev: &D,
    used: &UsedMap,
    ignore_fs_check: bool,
    sink: &mut dyn Diagnostics,
) -> Result<(UsedMap, u64)> {
    let nr = vol.boot.nr_clusters;
    let cs = vol.boot.cluster_size;
    let mut buf = vec![0u8; vol.record_size()];
    let mut runs = Vec::new();
    let mut sizes: Option<(u64, u64)> = None;
    if let RecordRead::Ok(_) = vol.read_record(dev, inode::BITMAP, &mut buf, sink)? {
        let mut scratch = Scratch::default();
        walk_attrs(
            vol,
            dev,
            inode::BITMAP,
            &buf,
            &mut scratch,
            sink,
            &mut |v, _| {
                if v.attr.type_code == AT_DATA && v.attr.name.is_empty() {
                    match v.attr.form {
                        Form::NonResident {
                            lowest_vcn,
                            data_size,
                            initialized_size,
                            ..
                        } => {
                            if lowest_vcn == 0 {
                                sizes =
                                    Some((data_size.max(0) as u64, initialized_size.max(0) as u64));
                            }
                            extent_runs(v.attr, cs, &mut runs)?;
                        }
                        Form::Resident { .. } => {}
                    }
                }
                Ok(())
            },
        )?
        .ok();
    }
    runs.sort_by_key(|r| r.vcn);
    let Some((data_size, init_size)) = sizes else {
        return Err(Error::os("Failed to open $Bitmap", errno::EIO));
    };
    let needed = nr.div_ceil(8);
    if data_size < needed {
        return Err(Error::fatal(format_args!(
            "$Bitmap size is smaller than expected ({data_size} < {needed})\n"
        )));
    }
    let compare_bytes = (nr + 1).div_ceil(8).min(data_size);
    let mut extra = UsedMap::new(used.len());
    let mut mismatches = 0u64;
    let mut chunk = vec![0u8; 8192];
    let mut off = 0u64;
    while off < compare_bytes {
        let n = (compare_bytes - off).min(chunk.len() as u64) as usize;
        let c = &mut chunk[..n];
        let readable = init_size.saturating_sub(off).min(n as u64) as usize;
        read_runs(dev, cs, &runs, off, &mut c[..readable])?;
        c[readable..].fill(0);
        for (i, &disk) in c.iter().enumerate() {
            let byte = off + i as u64;
            let mut mine = 0u8;
            for bit in 0..8 {
                mine |= (used.get(byte * 8 + bit) as u8) << bit;
            }
            if mine == disk {
                continue;
            }
            for bit in 0..8u64 {
                let (m, d) = (mine >> bit & 1, disk >> bit & 1);
                if m == d {
                    continue;
                }
                let cl = byte * 8 + bit;
                mismatches += 1;
                if d == 1 {
                    extra.set(cl);
                }
                if mismatches <= 10 {
                    let what = if m == 1 { "missing" } else { "extra" };
                    sink.msg(format_args!(
                        "Cluster accounting failed at {cl} (0x{cl:x}): {what} cluster in $Bitmap\n"
                    ));
                }
            }
        }
        off += n as u64;
    }
    if mismatches > 0 {
        sink.msg(format_args!(
            "Totally {mismatches} cluster accounting mismatches.\n"
        ));
        if !ignore_fs_check {
            return Err(Error::fatal(format_args!(
                "Filesystem check failed! Windows wasn't shutdown properly or inconsistent\nfilesystem. Please run chkdsk /f on Windows then reboot it TWICE.\n"
            )));
        }
        sink.msg(format_args!(
            "WARNING: The NTFS inconsistency was overruled by the --ignore-fs-check option.\n"
        ));
    }
    Ok((extra, mismatches))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference model: a plain Vec<bool>.
    fn model_runs(bits: &[bool]) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        for (i, &b) in bits.iter().enumerate() {
            if b {
                match v.last_mut() {
                    Some((s, n)) if *s + *n == i as u64 => *n += 1,
                    _ => v.push((i as u64, 1)),
                }
            }
        }
        v
    }

    #[test]
    fn runs_are_maximal_across_words_and_pages() {
        let n = 3 * PAGE_BITS + 77;
        let mut m = UsedMap::new(n);
        let mut model = vec![false; n as usize];
        let ranges = [
            (0u64, 1u64),
            (5, 59),
            (64, 64),
            (200, 3),
            (PAGE_BITS - 3, 10),
            (2 * PAGE_BITS + 1, PAGE_BITS + 76),
        ];
        for (s, l) in ranges {
            m.set_range(s, l, true);
            for i in s..(s + l).min(n) {
                model[i as usize] = true;
            }
        }
        m.set_range(66, 2, false);
        model[66] = false;
        model[67] = false;
        let runs: Vec<_> = m.runs().collect();
        assert_eq!(runs, model_runs(&model));
        assert_eq!(m.count(), model.iter().filter(|&&b| b).count() as u64);
        assert!(m.get(0) && !m.get(1) && m.get(n - 1) && !m.get(n));
        // Pages 0 to 3 are touched (page 1 only by its first 7 bits).
        assert_eq!(m.pages.iter().filter(|p| p.is_some()).count(), 4);
        assert_eq!(m.next_set(1, n), Some(5));
        assert_eq!(m.next_set(PAGE_BITS + 7, 2 * PAGE_BITS), None);
        assert_eq!(m.next_clear(5, n), 64 + 2);
    }

    #[test]
    fn big_empty_map_is_cheap() {
        // 16 TiB of 4 KiB clusters: the page table only.
        let m = UsedMap::new(1 << 32);
        assert_eq!(m.pages.len(), 8192);
        assert_eq!(m.runs().count(), 0);
        assert_eq!(m.next_set(0, 1 << 32), None);
    }

    #[test]
    fn map_bits_round_to_bytes() {
        assert_eq!(map_bits(16383), 16384);
        assert_eq!(map_bits(16384), 16392);
    }
}
