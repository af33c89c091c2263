//! An opened NTFS volume: the boot sector, the $MFT runlist (also when $MFT itself has
//! extension records), $Volume's version and flags; reading MFT records and attribute values.
//!
//! [`Volume::open`] (in [`super::mount`]) makes one with the reference's mount checks.
// `Error` is a fixed-size value by design (errors never allocate).
#![allow(clippy::result_large_err)]
use super::attribute::{Attr, Form};
use super::boot_sector::BootSector;
use super::diag::Diagnostics;
use super::mft_record::{check_in_use, check_record, post_read_fixup, RecordHeader, FILE_MAGIC};
use super::runlist::{decode_extent, Run};
use super::{conv, le};
use crate::dev::ReadAt;
use crate::error::{errno, Error, Result};
use std::prelude::v1::*;

/// Largest attribute list we read (the format allows 256 KiB; be generous).
pub const MAX_ATTR_LIST_BYTES: u64 = 16 * 1024 * 1024;

/// An NTFS volume opened read-only.
#[derive(Debug, Clone)]
pub struct Volume {
    /// The checked boot sector.
    pub boot: BootSector,
    /// NTFS version from $Volume's $VOLUME_INFORMATION (major, minor).
    pub version: (u8, u8),
    /// $Volume flags (0x0001 = dirty).
    pub volume_flags: u16,
    /// Number of MFT records to walk: $MFT:$DATA initialized_size / record size.
    pub mft_records: u64,
    /// The $MFT:$DATA runlist, in VCN order (holes included as `lcn: None`).
    pub mft_runs: Vec<Run>,
    /// $MFT:$DATA sizes in bytes: (allocated, data, initialized).
    pub mft_sizes: (u64, u64, u64),
    /// Records of $MFT compared with $MFTMirr at mount.
    pub mftmirr_records: u64,
}

/// What reading one MFT record gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRead {
    /// Fixed up and checked.
    Ok(RecordHeader),
    /// Torn write (`Incomplete multi-sector transfer`): the line to print, then skip.
    Incomplete,
    /// Not "FILE": skipped silently.
    NoMagic,
    /// Bad allocation size or header: the line to print, then skip.
    BadRecord,
    /// The record lies in a hole or outside the $MFT runlist.
    Unmapped,
}

/// Reads `buf.len()` bytes at byte `offset` of an attribute whose runlist is `runs`
/// (holes read as zeros). Fails with EIO when the range is not mapped.
pub fn read_runs<D: ReadAt + ?Sized>(
    dev: &D,
    cluster_size: u32,
    runs: &[Run],
    offset: u64,
    buf: &mut [u8],
) -> Result<()> {
    let cs = cluster_size as u64;
    let mut done = 0usize;
    while done < buf.len() {
        let pos = offset + done as u64;
        let vcn = pos / cs;
        let idx = runs.partition_point(|r| r.vcn.saturating_add(r.len) <= vcn);
        let r = runs
            .get(idx)
            .filter(|r| r.vcn <= vcn)
            .ok_or_else(|| Error::os("read_runs: unmapped VCN", errno::EIO))?;
        let run_end = r
            .vcn
            .checked_add(r.len)
            .and_then(|e| e.checked_mul(cs))
            .ok_or_else(|| Error::os("read_runs: offset overflow", errno::EIO))?;
        // At most the rest of `buf`, so it fits a usize.
        let n = conv::usize_sat((run_end - pos).min((buf.len() - done) as u64));
        let out = done
            .checked_add(n)
            .and_then(|end| buf.get_mut(done..end))
            .ok_or_else(|| Error::os("read_runs: offset overflow", errno::EIO))?;
        match r.lcn {
            None => out.fill(0),
            Some(lcn) => {
                let disk = (lcn + (vcn - r.vcn))
                    .checked_mul(cs)
                    .and_then(|x| x.checked_add(pos % cs))
                    .ok_or_else(|| Error::os("read_runs: offset overflow", errno::EIO))?;
                dev.read_exact_at(out, disk)?;
            }
        }
        done += n;
    }
    Ok(())
}

/// Decodes all runs of one non-resident extent, appending to `out`. Errors are EIO.
pub fn extent_runs(a: &Attr, cluster_size: u32, out: &mut Vec<Run>) -> Result<()> {
    let Form::NonResident {
        lowest_vcn,
        highest_vcn,
        mapping_pairs,
        allocated_size,
        ..
    } = a.form
    else {
        return Ok(());
    };
    let alloc = (lowest_vcn == 0)
        .then(|| allocated_size.saturating_add(cluster_size as i64 - 1) / cluster_size as i64);
    decode_extent(mapping_pairs, lowest_vcn, highest_vcn, alloc, |r| {
        out.push(r)
    })
    .map(|_| ())
    .map_err(|_| Error::os("ntfs_decompress_mapping_pairs", errno::EIO))
}

/// As [`attr_value`], but reads the whole `data_size` from the runs, whatever the
/// initialized size says: the reference reads an attribute list this way (black-box: a
/// non-resident list with initialized_size 0 is still followed).
pub fn attr_value_whole<D: ReadAt + ?Sized>(
    dev: &D,
    cluster_size: u32,
    a: &Attr,
    max: u64,
) -> Result<Vec<u8>> {
    read_value(dev, cluster_size, a, max, false)
}

/// Reads the value of an attribute (resident or not) up to `max` bytes into a new vector;
/// bytes past the initialized size are zeros.
pub fn attr_value<D: ReadAt + ?Sized>(
    dev: &D,
    cluster_size: u32,
    a: &Attr,
    max: u64,
) -> Result<Vec<u8>> {
    read_value(dev, cluster_size, a, max, true)
}

/// The value up to `max` bytes; with `initialized_only`, non-resident bytes past the
/// initialized size are not read (left zero).
fn read_value<D: ReadAt + ?Sized>(
    dev: &D,
    cluster_size: u32,
    a: &Attr,
    max: u64,
    initialized_only: bool,
) -> Result<Vec<u8>> {
    match a.form {
        Form::Resident { value, .. } => Ok(value.to_vec()),
        Form::NonResident {
            data_size,
            initialized_size,
            ..
        } => {
            let size = conv::nonneg(data_size).min(max);
            let read = if initialized_only {
                conv::nonneg(initialized_size).min(size)
            } else {
                size
            };
            let mut runs = Vec::new();
            extent_runs(a, cluster_size, &mut runs)?;
            let mut v = vec![0u8; conv::usize_sat(size)];
            // `read` is at most `size`, the vector's length.
            let dst = v.get_mut(..conv::usize_sat(read)).unwrap_or(&mut []);
            read_runs(dev, cluster_size, &runs, 0, dst)?;
            Ok(v)
        }
    }
}

impl Volume {
    /// True when $Volume has the dirty flag set.
    pub fn is_dirty(&self) -> bool {
        self.volume_flags & 1 != 0
    }

    /// Bytes per MFT record.
    pub fn record_size(&self) -> usize {
        self.boot.mft_record_size as usize
    }

    /// Reads MFT record `n` into `buf` (one record long), applies the fixup and checks the
    /// header, as the MFT walk does: the reference's lines for torn records and bad
    /// allocation sizes go to `diag.warn`; device errors other than EIO are passed up,
    /// everything else is a [`RecordRead`] verdict.
    pub fn read_record<D: ReadAt + ?Sized>(
        &self,
        dev: &D,
        n: u64,
        buf: &mut [u8],
        diag: &mut dyn Diagnostics,
    ) -> Result<RecordRead> {
        self.read_record_as(dev, n, buf, diag, RecordUse::Walk)
    }

    /// As [`Volume::read_record`], as the reference's inode open at mount time does: it
    /// prints the `ntfs_mst_post_read_fixup_warn` line for an update sequence array that does
    /// not fit (the MFT walk is silent) and refuses a record whose in-use size is larger than
    /// the record (the walk takes it).
    pub(super) fn open_record<D: ReadAt + ?Sized>(
        &self,
        dev: &D,
        n: u64,
        buf: &mut [u8],
        diag: &mut dyn Diagnostics,
    ) -> Result<RecordRead> {
        self.read_record_as(dev, n, buf, diag, RecordUse::Mount)
    }

    fn read_record_as<D: ReadAt + ?Sized>(
        &self,
        dev: &D,
        n: u64,
        buf: &mut [u8],
        diag: &mut dyn Diagnostics,
        mode: RecordUse,
    ) -> Result<RecordRead> {
        let mount = mode == RecordUse::Mount;
        let off = match n.checked_mul(self.record_size() as u64) {
            Some(o)
                if o.saturating_add(buf.len() as u64) <= self.mft_sizes.1.max(self.mft_sizes.2) =>
            {
                o
            }
            _ => return Ok(RecordRead::Unmapped),
        };
        let cs = self.boot.cluster_size as u64;
        let vcn = off / cs;
        let mapped = self
            .mft_runs
            .iter()
            .any(|r| r.vcn <= vcn && vcn < r.vcn + r.len && r.lcn.is_some());
        if !mapped {
            return Ok(RecordRead::Unmapped);
        }
        match read_runs(dev, self.boot.cluster_size, &self.mft_runs, off, buf) {
            Ok(()) => {}
            Err(Error::Os { errno: e, .. }) if e == errno::EIO => return Ok(RecordRead::Unmapped),
            Err(e) => return Err(e),
        }
        if le::bytes::<4>(buf, 0) != Some(FILE_MAGIC) {
            return Ok(RecordRead::NoMagic);
        }
        match post_read_fixup(buf) {
            Ok(()) => {}
            Err(e @ super::mft_record::FixupError::Incomplete { .. }) => {
                diag.warn(format_args!("{e}\n"));
                return Ok(RecordRead::Incomplete);
            }
            // The reference only warns about an array that does not fit and uses the record
            // as stored (black-box: a user record with usa_count 1, 0, 4 or 65535, or usa_ofs
            // 1 or 0x3fe, is walked and its clusters are accounted; a runlist that crosses a
            // stride end then reads the USN bytes and fails like in the reference).
            Err(e) => {
                if mount {
                    diag.warn(format_args!("{e}\n"));
                }
            }
        }
        match check_record(n, buf).and_then(|h| {
            if mount {
                check_in_use(n, &h)?;
            }
            Ok(h)
        }) {
            Ok(h) => Ok(RecordRead::Ok(h)),
            Err(e) => {
                diag.warn(format_args!("{e}\n"));
                Ok(RecordRead::BadRecord)
            }
        }
    }
}

/// Who reads a record: the MFT walk or the mount's inode open (they differ in what they
/// report and refuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordUse {
    Walk,
    Mount,
}
