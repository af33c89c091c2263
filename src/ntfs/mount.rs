//! The reference's read-only mount checks: [`Volume::open`] reads the boot sector and
//! $MFT, compares $MFT with $MFTMirr, reads $Volume, and opens the system files the mount
//! opens.
//!
//! Opening follows what the reference's read-only mount checks, in its order, with its
//! messages (found black-box with libntfs-3g 2022.10.3): the lines it prints on stderr go to
//! [`Diagnostics::warn`], and the error carries the errno the mount fails with, so that the
//! caller prints `ERROR(errno): Opening '%s' as NTFS failed: strerror`.
// `Error` is a fixed-size value by design (errors never allocate).
#![allow(clippy::result_large_err)]
use super::attr_list::EntryIter;
use super::attribute::{
    check_system_record, Attr, AttrIter, Form, AT_ATTRIBUTE_LIST, AT_DATA, AT_STANDARD_INFORMATION,
    AT_VOLUME_INFORMATION,
};
use super::boot_sector::{BootSector, BOOT_SECTOR_SIZE, LAST_SECTOR_HINTS};
use super::diag::{Diagnostics, NoDiagnostics};
use super::mft_record::{
    check_in_use, check_record, post_read_fixup, FixupError, RecordHeader, BAAD_MAGIC, FILE_MAGIC,
    MFT_RECORD_IN_USE,
};
use super::volume::{attr_value, extent_runs, read_runs, RecordRead, Volume, MAX_ATTR_LIST_BYTES};
use super::walk::{walk_attrs, Scratch, Skipped};
use super::{conv, inode, le};
use crate::dev::ReadAt;
use crate::error::{errno, Error, Result, Text};
use core::fmt;
use std::prelude::v1::*;

/// Most extension records the $MFT's own $DATA may be spread over (a sanity bound).
const MAX_MFT_EXTENTS: usize = 4096;
/// Records compared between $MFT and $MFTMirr at most.
const MAX_MIRROR_CHECK: u64 = 16;
/// System files the reference's mount opens after $Volume, in its order, with the line it
/// prints when one cannot be opened (black-box).
const MOUNT_OPENS: [(u64, &str); 4] = [
    (inode::BITMAP, "Failed to open inode FILE_Bitmap"),
    (inode::ATTRDEF, "Failed to open $AttrDef"),
    (inode::UPCASE, "Failed to open inode FILE_UpCase"),
    (inode::SECURE, "Failed to open $Secure"),
];

/// Names of the first system files, for the $MFTMirr messages.
const SYSTEM_FILES: [&str; 4] = ["$MFT", "$MFTMirr", "$LogFile", "$Volume"];

/// Emits one libntfs-style line on the diag and remembers it for the error.
struct Log<'a> {
    diag: &'a mut dyn Diagnostics,
    last: Text,
}

impl Log<'_> {
    fn line(&mut self, args: fmt::Arguments) {
        self.last = crate::error::text(args);
        self.diag.warn(format_args!("{}\n", self.last));
    }
    fn fail(&mut self, errno: i32, args: fmt::Arguments) -> Error {
        self.line(args);
        Error::Os {
            what: self.last.clone(),
            errno,
        }
    }
}

/// The reference's checks when its mount opens the unnamed $DATA of a system file ($MFT,
/// $MFTMirr, $AttrDef, $Bitmap, $UpCase), as the line it prints (black-box, differential
/// tests): an encrypted or sparse flag the file's $STANDARD_INFORMATION does not have, a
/// compressed flag without a compression unit, any compression unit (the version is not
/// known yet: "NTFS 0.0").
fn system_data_check(ino: u64, rec: &[u8]) -> Option<Text> {
    let attrs = || AttrIter::new(rec).map_while(|a| a.ok());
    let data = attrs().find(|a| a.type_code == AT_DATA && a.name.is_empty())?;
    let si_flags = attrs()
        .find(|a| a.type_code == AT_STANDARD_INFORMATION)
        .and_then(|a| a.value())
        .and_then(|v| le::u32(v, 0x20))
        .unwrap_or(0);
    let (encrypted, sparse, compressed) = (0x4000u16, 0x8000u16, 0x0001u16);
    if (data.flags & encrypted != 0 && si_flags & 0x4000 == 0)
        || (data.flags & sparse != 0 && si_flags & 0x200 == 0)
    {
        return Some(crate::error::text(format_args!(
            "Inode {ino} has corrupt attribute flags (0x{:x} <> 0x{si_flags:x}): Input/output error",
            data.flags
        )));
    }
    let unit = match data.form {
        Form::NonResident {
            compression_unit, ..
        } => compression_unit,
        Form::Resident { .. } => 0,
    };
    // Compression methods other than LZNT1 (1) are refused like a compression unit
    // (black-box: flags 0xff give "not allowed", 0x01 "no compression unit").
    let method = data.flags & 0x00ff;
    if method == compressed && unit == 0 {
        return Some(crate::error::text(format_args!(
            "Compressed inode {ino} attr 0x80 has no compression unit: Input/output error"
        )));
    }
    // $AttrDef is read once the version is known: a compression unit is allowed there
    // (black-box: compression units 4, 16 and 255 on $AttrDef's $DATA are cloned).
    if ino != inode::ATTRDEF && (unit != 0 || method != 0) {
        return Some(crate::error::text(format_args!(
            "Compressed inode {ino} not allowed on NTFS 0.0: Input/output error"
        )));
    }
    None
}

/// The runs of the unnamed $DATA of `rec` that pass its allocated size (rounded up to
/// clusters), as the reference's line: "Corrupt attribute. vcn = 0x1, num_clusters = 0x0"
/// for one cluster of runs and an allocated size of 0 or -1 (black-box).
fn runs_past_allocated(rec: &[u8], cs: u32) -> Option<Text> {
    let data = AttrIter::new(rec)
        .map_while(|a| a.ok())
        .find(|a| a.type_code == AT_DATA && a.name.is_empty())?;
    let Form::NonResident { allocated_size, .. } = data.form else {
        return None;
    };
    let mut runs = Vec::new();
    extent_runs(&data, cs, &mut runs).ok()?;
    let end = conv::bits_i64(runs.last().map_or(0, |r| r.vcn + r.len));
    let num = allocated_size.saturating_add(cs as i64 - 1) >> cs.trailing_zeros();
    (end > num).then(|| {
        crate::error::text(format_args!(
            "Corrupt attribute. vcn = 0x{end:x}, num_clusters = 0x{num:x}"
        ))
    })
}

impl Volume {
    /// Opens and checks the volume the way the reference's read-only mount does. The error is
    /// `Error::Os` with the mount's errno and, as `what`, the last line libntfs would print.
    pub fn open<D: ReadAt + ?Sized>(dev: &D, device_size: u64) -> Result<Volume> {
        Self::open_with_sink(dev, device_size, &mut NoDiagnostics)
    }

    /// As [`Volume::open`], printing libntfs's diagnostic lines on `diag.warn` (stderr).
    pub fn open_with_sink<D: ReadAt + ?Sized>(
        dev: &D,
        device_size: u64,
        diag: &mut dyn Diagnostics,
    ) -> Result<Volume> {
        let _ = device_size;
        let mut log = Log {
            diag,
            last: Text::new(),
        };
        let mut bs = [0u8; BOOT_SECTOR_SIZE];
        let n = dev.read_at(&mut bs, 0)?;
        if n < BOOT_SECTOR_SIZE {
            return Err(log.fail(
                errno::EINVAL,
                format_args!("Failed to read bootsector (size=0)"),
            ));
        }
        let boot = match BootSector::from_bytes(&bs) {
            Ok(b) => b,
            Err(Error::Os { what, errno }) => return Err(log.fail(errno, format_args!("{what}"))),
            Err(e) => return Err(e),
        };
        if let Err(Error::Os { what, errno }) = boot.last_sector_offset() {
            log.line(format_args!("{what}"));
            let e = Error::Os { what, errno };
            log.diag.warn(format_args!("{LAST_SECTOR_HINTS}\n"));
            return Err(e);
        }
        // $MFT in the last cluster of the volume or just past it: the reference's mount fails
        // with EINVAL and prints nothing (black-box, 512 B, 4 KiB and 64 KiB clusters: LCN
        // nr_clusters - 1 and nr_clusters; nr_clusters - 2 reads the record and fails on it).
        if boot.mft_lcn.saturating_add(1) >= boot.nr_clusters {
            return Err(Error::Os {
                what: crate::text!("$MFT LCN {} at the volume end", boot.mft_lcn),
                errno: errno::EINVAL,
            });
        }
        let cs = boot.cluster_size;
        let rs = boot.mft_record_size as usize;

        // Record 0 at mft_lcn: the bootstrap of everything else.
        let mut rec0 = vec![0u8; rs];
        let off0 = boot
            .mft_lcn
            .checked_mul(cs as u64)
            .ok_or_else(|| Error::os("$MFT offset", errno::EIO))?;
        if dev.read_exact_at(&mut rec0, off0).is_err() {
            log.line(format_args!("Error reading $MFT: Input/output error"));
            return Err(log.fail(
                errno::EIO,
                format_args!("Failed to load $MFT: Input/output error"),
            ));
        }
        match post_read_fixup(&mut rec0) {
            Ok(()) => {}
            Err(e @ FixupError::Incomplete { .. }) => {
                // libntfs marks a torn record "BAAD"; the check below then refuses it
                // (black-box: "Record 0 has no FILE magic (0x44414142)").
                log.line(format_args!("{e}"));
                // Record 0 is one record long (at least 256 bytes): the magic is there.
                let _ = le::put(&mut rec0, 0, BAAD_MAGIC);
            }
            Err(e) => log.line(format_args!("{e}")),
        }
        if let Err(e) = check_record(0, &rec0).and_then(|h| check_in_use(0, &h)) {
            log.line(format_args!("{e}"));
            return Err(log.fail(
                errno::EIO,
                format_args!("Failed to load $MFT: Input/output error"),
            ));
        }
        let bad_end = |log: &mut Log| {
            log.line(format_args!("Bad end of MFT record 0"));
            log.fail(
                errno::EIO,
                format_args!("Failed to load $MFT: Input/output error"),
            )
        };
        // Record 0 gets the full check of system records first (corrupted corpus: a $DATA
        // retyped 0 after the $FILE_NAME is "Bad end of MFT record 0").
        if let Err(e) = check_system_record(0, &rec0) {
            log.line(format_args!("{e}"));
            return Err(log.fail(
                errno::EIO,
                format_args!("Failed to load $MFT: Input/output error"),
            ));
        }
        let mut attrs: Vec<Attr> = Vec::new();
        for a in AttrIter::new(&rec0) {
            match a {
                Ok(a) => attrs.push(a),
                Err(_) => return Err(bad_end(&mut log)),
            }
        }
        let load_failed = |log: &mut Log| {
            log.fail(
                errno::EIO,
                format_args!("Failed to load $MFT: Input/output error"),
            )
        };
        // No unnamed $DATA before the end marker (black-box: record 0's $FILE_NAME retyped
        // 0xFFFFFFFF): the attribute open fails with ENOENT.
        if attrs
            .iter()
            .any(|a| a.type_code == AT_DATA && !a.name.is_empty())
            && !attrs
                .iter()
                .any(|a| a.type_code == AT_DATA && a.name.is_empty())
        {
            // Black-box: the $DATA given a name.
            log.line(format_args!("$MFT/$DATA attribute not found."));
            return Err(load_failed(&mut log));
        }
        if !attrs
            .iter()
            .any(|a| a.type_code == AT_DATA && a.name.is_empty())
        {
            log.line(format_args!(
                "Failed to open ntfs attribute: No such file or directory"
            ));
            return Err(log.fail(
                errno::ENOENT,
                format_args!("Failed to load $MFT: No such file or directory"),
            ));
        }
        let Some(data0) = attrs.iter().find(|a| {
            a.type_code == AT_DATA
                && a.name.is_empty()
                && a.lowest_vcn() == 0
                && a.is_non_resident()
        }) else {
            return Err(bad_end(&mut log));
        };
        if let Some(e) = system_data_check(0, &rec0) {
            log.line(format_args!("{e}"));
            log.line(format_args!(
                "Failed to open ntfs attribute: Input/output error"
            ));
            return Err(load_failed(&mut log));
        }
        let Form::NonResident {
            allocated_size,
            data_size,
            initialized_size,
            ..
        } = data0.form
        else {
            return Err(load_failed(&mut log));
        };
        let mut runs = Vec::new();
        if extent_runs(data0, cs, &mut runs).is_err() {
            return Err(load_failed(&mut log));
        }
        // Further extents of $MFT:$DATA in extension records, found through the attribute list.
        if let Some(al) = attrs.iter().find(|a| a.type_code == AT_ATTRIBUTE_LIST) {
            let list = match attr_value(dev, cs, al, MAX_ATTR_LIST_BYTES) {
                Ok(v) => v,
                Err(_) => return Err(load_failed(&mut log)),
            };
            let mut extents: Vec<(i64, u64)> = Vec::new();
            for e in EntryIter::new(&list) {
                let Ok(e) = e else {
                    return Err(load_failed(&mut log));
                };
                if e.type_code == AT_DATA
                    && e.name.is_empty()
                    && e.mft_record != 0
                    && e.lowest_vcn > 0
                {
                    extents.push((e.lowest_vcn, e.mft_record));
                }
            }
            if extents.len() > MAX_MFT_EXTENTS {
                return Err(load_failed(&mut log));
            }
            extents.sort_unstable();
            let mut rec = vec![0u8; rs];
            for (lowest, recno) in extents {
                let off = recno
                    .checked_mul(rs as u64)
                    .ok_or_else(|| Error::os("$MFT", errno::EIO))?;
                if read_runs(dev, cs, &runs, off, &mut rec).is_err()
                    || post_read_fixup(&mut rec).is_err()
                    || check_record(recno, &rec).is_err()
                {
                    return Err(load_failed(&mut log));
                }
                let found = AttrIter::new(&rec).filter_map(|a| a.ok()).find(|a| {
                    a.type_code == AT_DATA && a.name.is_empty() && a.lowest_vcn() == lowest
                });
                match found {
                    Some(a) if extent_runs(&a, cs, &mut runs).is_ok() => {}
                    _ => return Err(load_failed(&mut log)),
                }
            }
        }
        runs.sort_by_key(|r| r.vcn);
        for r in &runs {
            if r.lcn
                .is_some_and(|l| l.saturating_add(r.len) > boot.nr_clusters)
            {
                return Err(load_failed(&mut log));
            }
        }
        // The runs must cover exactly the allocated size, as the reference's $MFT load checks
        // (black-box: its message, then "Failed to load $MFT"). This also bounds the walk.
        let allocated = conv::nonneg(allocated_size);
        let end_vcn = runs.last().map_or(0, |r| r.vcn + r.len);
        let last_vcn = allocated / cs as u64;
        if end_vcn != last_vcn {
            log.line(format_args!(
                "highest_vcn = 0x{:x}, last_vcn - 1 = 0x{:x}",
                conv::bits_i64(end_vcn).wrapping_sub(1),
                conv::bits_i64(last_vcn).wrapping_sub(1)
            ));
            return Err(load_failed(&mut log));
        }
        // Records past the allocated size cannot be read (the reference tries each one and
        // fails); never walk them, so that a huge initialized_size cannot stall the scan.
        let initialized = conv::nonneg(initialized_size).min(allocated);
        let mut vol = Volume {
            boot,
            version: (0, 0),
            volume_flags: 0,
            mft_records: initialized / rs as u64,
            mft_runs: runs,
            mft_sizes: (
                conv::nonneg(allocated_size),
                conv::nonneg(data_size),
                initialized,
            ),
            mftmirr_records: 0,
        };

        vol.check_mftmirr(dev, &mut log)?;

        // The mount opens $LogFile and $Volume as inodes: an in-use size larger than the
        // record fails it with that line alone (black-box: bytes_in_use 0x408 in record 2 or
        // 3, the mirror patched too).
        let mut rec = vec![0u8; rs];
        for ino in [inode::LOGFILE, inode::VOLUME] {
            if let RecordRead::Ok(h) = vol
                .read_record(dev, ino, &mut rec, &mut NoDiagnostics)
                .unwrap_or(RecordRead::Unmapped)
            {
                // Black-box: $Volume not in use.
                if ino == inode::VOLUME && !h.in_use() {
                    return Err(log.fail(
                        errno::ENOENT,
                        format_args!("Failed to open inode FILE_Volume: No such file or directory"),
                    ));
                }
                if let Err(e) = check_in_use(ino, &h) {
                    log.line(format_args!("{e}"));
                    return Err(Error::Os {
                        what: log.last.clone(),
                        errno: errno::EIO,
                    });
                }
            }
        }

        // $Volume: version and flags.
        let vi = match vol
            .read_record(dev, inode::VOLUME, &mut rec, &mut NoDiagnostics)
            .unwrap_or(RecordRead::Unmapped)
        {
            RecordRead::Ok(_) => AttrIter::new(&rec)
                .filter_map(|a| a.ok())
                .find(|a| a.type_code == AT_VOLUME_INFORMATION)
                .and_then(|a| {
                    a.value()
                        .map(|v| (le::u8(v, 8), le::u8(v, 9), le::u16(v, 10)))
                }),
            _ => None,
        };
        match vi {
            Some((Some(major), Some(minor), Some(flags))) => {
                vol.version = (major, minor);
                vol.volume_flags = flags;
            }
            _ => {
                return Err(log.fail(
                    errno::EIO,
                    format_args!("Attribute $VOLUME_INFORMATION was not found in $Volume!"),
                ));
            }
        }
        for (ino, what) in MOUNT_OPENS {
            // $Secure is a security file only from NTFS 3.0 on.
            if ino == inode::SECURE && vol.version.0 < 3 {
                continue;
            }
            vol.check_opens(dev, ino, what, &mut log)?;
        }
        Ok(vol)
    }

    /// The reference's mount opens some system files as inodes and refuses the volume when
    /// one cannot be opened (black-box, differential tests: a corrupt attribute header, no
    /// $STANDARD_INFORMATION or a bad attribute list in $Bitmap, $AttrDef, $UpCase or $Secure
    /// fail the mount with EIO and `what: Input/output error`, no output file is created).
    fn check_opens<D: ReadAt + ?Sized>(
        &self,
        dev: &D,
        ino: u64,
        what: &str,
        log: &mut Log,
    ) -> Result<()> {
        let mut rec = vec![0u8; self.record_size()];
        // $Secure is found through the root directory: its record is opened first
        // (black-box: bytes_in_use 0x408 in record 5 gives its line, then "Failed to open
        // $Secure").
        if ino == inode::SECURE {
            let root = self.read_record(dev, inode::ROOT, &mut rec, &mut *log.diag)?;
            if matches!(
                root,
                RecordRead::BadRecord | RecordRead::Incomplete | RecordRead::NoMagic
            ) {
                // Black-box: "Record 5 has corrupt allocation size (1024 <> 2048)", then
                // this line.
                return Err(log.fail(errno::EIO, format_args!("{what}: Input/output error")));
            }
            if let RecordRead::Ok(h) = root {
                if let Some(e) = system_record_problem(inode::ROOT, &h, &rec) {
                    log.line(format_args!("{e}"));
                    return Err(log.fail(errno::EIO, format_args!("{what}: Input/output error")));
                }
            }
        }
        let readable = matches!(
            self.open_record(dev, ino, &mut rec, &mut *log.diag)?,
            RecordRead::Ok(h) if h.flags & MFT_RECORD_IN_USE != 0
        );
        let checked = readable && {
            match check_system_record(ino, &rec) {
                Ok(()) => true,
                Err(e) => {
                    log.line(format_args!("{e}"));
                    false
                }
            }
        };
        let e = if !checked {
            errno::EIO
        } else {
            let mut scratch = Scratch::default();
            match walk_attrs(
                self,
                dev,
                ino,
                &rec,
                &mut scratch,
                &mut *log.diag,
                &mut |_, _| Ok(()),
            )? {
                Ok(()) => {
                    if ino != inode::SECURE {
                        if let Some(e) = system_data_check(ino, &rec) {
                            log.line(format_args!("{e}"));
                            return Err(log.fail(
                                errno::EIO,
                                format_args!("Failed to open ntfs attribute: Input/output error"),
                            ));
                        }
                    }
                    if ino == inode::ATTRDEF {
                        self.check_attrdef(dev, &rec, log)?;
                    }
                    if ino == inode::BITMAP {
                        // Black-box: allocated size 0 or -1, or data size past it.
                        let sizes = AttrIter::new(&rec)
                            .map_while(|a| a.ok())
                            .find(|a| a.type_code == AT_DATA && a.name.is_empty())
                            .and_then(|a| match a.form {
                                Form::NonResident {
                                    data_size,
                                    allocated_size,
                                    ..
                                } => Some((data_size, allocated_size)),
                                Form::Resident { .. } => None,
                            });
                        if let Some((data, alloc)) = sizes.filter(|(d, a)| d > a) {
                            return Err(log.fail(
                                errno::EIO,
                                format_args!("Corrupt cluster map size ({data} > {alloc})"),
                            ));
                        }
                    }
                    return Ok(());
                }
                Err(Skipped::NoStandardInformation) => errno::ENOENT,
                Err(_) => errno::EIO,
            }
        };
        let text = if e == errno::ENOENT {
            "No such file or directory"
        } else {
            "Input/output error"
        };
        Err(log.fail(e, format_args!("{what}: {text}")))
    }

    /// The mount reads the whole $AttrDef: a value that cannot be read fails it (black-box:
    /// a runlist that does not decode, or an allocated size of 0, gives "Failed to read
    /// $AttrDef, unexpected length (-1 != 2560).").
    fn check_attrdef<D: ReadAt + ?Sized>(&self, dev: &D, rec: &[u8], log: &mut Log) -> Result<()> {
        let cs = self.boot.cluster_size;
        let Some(data) = AttrIter::new(rec)
            .map_while(|a| a.ok())
            .find(|a| a.type_code == AT_DATA && a.name.is_empty())
        else {
            return Ok(());
        };
        let size = match data.form {
            Form::NonResident { data_size, .. } => data_size,
            Form::Resident { value, .. } => i64::try_from(value.len()).unwrap_or(i64::MAX),
        };
        // $AttrDef is small (2560 bytes on current volumes); a huge stated size is read up
        // to 1 MiB only.
        let mut readable = attr_value(dev, cs, &data, 1 << 20).is_ok();
        if let Form::NonResident { allocated_size, .. } = data.form {
            // The runs may not pass the allocated size (black-box: allocated size 0 with
            // one cluster of runs prints this line first).
            let mut runs = Vec::new();
            if extent_runs(&data, cs, &mut runs).is_ok() {
                // Clusters of the allocated size, rounded up (black-box: -1 prints 0x0).
                let end = conv::bits_i64(runs.last().map_or(0, |r| r.vcn + r.len));
                let num = allocated_size.saturating_add(cs as i64 - 1) >> cs.trailing_zeros();
                if end > num {
                    log.line(format_args!(
                        "Corrupt attribute. vcn = 0x{end:x}, num_clusters = 0x{num:x}"
                    ));
                    readable = false;
                }
            }
        }
        if readable {
            return Ok(());
        }
        Err(log.fail(
            errno::EIO,
            format_args!("Failed to read $AttrDef, unexpected length (-1 != {size})."),
        ))
    }

    /// Compares the first records of $MFT with $MFTMirr (the mount refuses on a mismatch).
    fn check_mftmirr<D: ReadAt + ?Sized>(&mut self, dev: &D, log: &mut Log) -> Result<()> {
        let cs = self.boot.cluster_size;
        let rs = self.boot.mft_record_size as usize;
        let mut rec = vec![0u8; rs];
        let failed = |log: &mut Log, e: i32| {
            let text = if e == errno::ENOENT {
                "No such file or directory"
            } else {
                "Input/output error"
            };
            log.fail(e, format_args!("Failed to load $MFTMirr: {text}"))
        };
        match self
            .read_record(dev, inode::MFTMIRR, &mut rec, &mut NoDiagnostics)
            .unwrap_or(RecordRead::Unmapped)
        {
            RecordRead::Ok(h) => {
                if let Some(e) = system_record_problem(inode::MFTMIRR, &h, &rec) {
                    // Black-box: these three lines, bytes_in_use 0x408 or 0x150 (no end
                    // marker) in record 1.
                    log.line(format_args!("{e}"));
                    log.line(format_args!(
                        "Failed to open inode $MFTMirr: Input/output error"
                    ));
                    return Err(failed(log, errno::EIO));
                }
                if let Some(e) = system_data_check(inode::MFTMIRR, &rec) {
                    log.line(format_args!("{e}"));
                    log.line(format_args!(
                        "Failed to open $MFTMirr/$DATA: Input/output error"
                    ));
                    return Err(failed(log, errno::EIO));
                }
                if let Some(e) = runs_past_allocated(&rec, cs) {
                    log.line(format_args!("{e}"));
                    log.line(format_args!(
                        "Failed to map runlist of $MFTMirr/$DATA: Input/output error"
                    ));
                    return Err(failed(log, errno::EIO));
                }
            }
            _ => return Err(failed(log, errno::EIO)),
        }
        let mut mirr_runs = Vec::new();
        let mut mirr_size = 0u64;
        for a in AttrIter::new(&rec).filter_map(|a| a.ok()) {
            if a.type_code == AT_DATA && a.name.is_empty() {
                if let Form::NonResident { data_size, .. } = a.form {
                    if extent_runs(&a, cs, &mut mirr_runs).is_err() {
                        return Err(failed(log, errno::EIO));
                    }
                    mirr_size = mirr_size.max(conv::nonneg(data_size));
                }
            }
        }
        mirr_runs.sort_by_key(|r| r.vcn);
        let first = mirr_runs.first().and_then(|r| r.lcn);
        if first != Some(self.boot.mftmirr_lcn) {
            log.line(format_args!(
                "Bad $MFTMirr lcn 0x{:x}, want 0x{:x}",
                first.unwrap_or(0),
                self.boot.mftmirr_lcn
            ));
            return Err(failed(log, errno::ENOENT));
        }
        let mirror_size = if cs as usize <= 4 * rs {
            4
        } else {
            cs as u64 / rs as u64
        };
        // The reference compares at most 16 records (verified on a 2 MiB-cluster volume whose
        // mirror holds 2048 records: record 15 is checked, record 16 is not).
        let n = mirror_size
            .min(MAX_MIRROR_CHECK)
            .min(mirr_size / rs as u64)
            .min(self.mft_records);
        self.mftmirr_records = n;
        let mut a = vec![0u8; rs];
        let mut b = vec![0u8; rs];
        for i in 0..n {
            let off = i * rs as u64;
            let name_buf;
            let name: &str = match usize::try_from(i).ok().and_then(|i| SYSTEM_FILES.get(i)) {
                Some(s) => s,
                None => {
                    name_buf = crate::error::text(format_args!("record {i}"));
                    name_buf.as_str()
                }
            };
            for (buf, runs, what) in [
                (&mut a, &self.mft_runs, "$MFT"),
                (&mut b, &mirr_runs, "$MFTMirr"),
            ] {
                if read_runs(dev, cs, runs, off, buf).is_err() {
                    return Err(
                        log.fail(errno::EIO, format_args!("Failed to read {what} record {i}"))
                    );
                }
                if let Err(e) = post_read_fixup(buf) {
                    log.line(format_args!("{e}"));
                }
                let h = RecordHeader::parse(buf).filter(|h| h.flags & MFT_RECORD_IN_USE != 0);
                if let Some(h) = h {
                    if h.magic == BAAD_MAGIC {
                        return Err(log.fail(
                            errno::EIO,
                            format_args!("{what} error: Incomplete multi sector transfer detected in '{name}'."),
                        ));
                    }
                    if h.magic != FILE_MAGIC {
                        return Err(log.fail(
                            errno::EIO,
                            format_args!("{what} error: Invalid mft record for '{name}'."),
                        ));
                    }
                }
            }
            // Each record compared is checked in full first (black-box: a bad attribute
            // length in record 2 gives "Corrupted MFT record 2" alone, mirror patched or not).
            if RecordHeader::parse(&a).is_some_and(|h| h.magic == FILE_MAGIC && h.in_use()) {
                if let Err(e) = check_system_record(i, &a) {
                    return Err(log.fail(errno::EIO, format_args!("{e}")));
                }
            }
            let used = (le::u32(&a, 0x18).unwrap_or(0) as usize).min(rs);
            if a.get(..used) != b.get(..used) {
                return Err(log.fail(
                    errno::EIO,
                    format_args!("$MFTMirr does not match $MFT (record {i})."),
                ));
            }
        }
        Ok(())
    }
}

/// The reference's message for a system record that is not in use or fails its full check
/// (`check_in_use`, then `check_system_record`), if any.
fn system_record_problem(n: u64, h: &RecordHeader, rec: &[u8]) -> Option<crate::error::Text> {
    match check_in_use(n, h) {
        Err(e) => Some(crate::error::text(format_args!("{e}"))),
        Ok(()) => check_system_record(n, rec)
            .err()
            .map(|e| crate::error::text(format_args!("{e}"))),
    }
}
