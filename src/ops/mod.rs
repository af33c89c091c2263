//! The modes: save (`-s`), restore (`-r`, `-r -n`) and raw clone (`-o`/`-O` alone), each a thin
//! choice of source and sink around the shared copy code in [`crate::copy`].
//!
//! The order of the checks and every line printed follow the reference (spec §2.3–2.8):
//! source mount state, NTFS open, dirty flag, version and sizes, output creation,
//! "Scanning volume", "Accounting clusters", "Space in use", free space, then the copy.
mod ahead;
pub mod clone;
pub mod metadata;
pub mod output;
pub mod restore;
pub mod save;

use crate::cli::Options;
use crate::dev::fd::{self, Fd};
use crate::error::{errno, Error, Result};
use crate::ntfs::Volume;
use crate::progress::Progress;
use crate::report::Report;
use crate::used::{self, Scan};
use core::fmt;

/// Runs one validated command line. Prints what the reference prints on success.
/// With `--progress-fd N`, JSON progress lines go to N (see [`crate::progress::json`]).
pub fn run(opts: &Options) -> Result<()> {
    crate::progress::json::start(opts.progress_fd);
    let result = run_mode(opts);
    crate::progress::json::end(&result);
    result
}

fn run_mode(opts: &Options) -> Result<()> {
    let report = Report {
        msg_to_stderr: opts.output.as_deref() == Some("-"),
        quiet: opts.quiet,
    };
    if opts.metadata || opts.metadata_image {
        return metadata::run(opts, report);
    }
    if opts.restore_image {
        return restore::run(opts, report);
    }
    let src = Source::open(opts, report)?;
    if opts.save_image {
        save::run(opts, report, src)
    } else {
        clone::run(opts, report, src)
    }
}

/// An opened, checked NTFS source.
pub struct Source {
    /// The device or file, read-only.
    pub dev: Fd,
    /// The volume.
    pub vol: Volume,
    /// Size of the device or file in bytes.
    pub device_size: u64,
}

impl Source {
    /// The reference's `mount_volume` and size checks, with their messages, in their order.
    pub fn open(opts: &Options, report: Report) -> Result<Source> {
        let path = opts.source.as_str();
        match fd::mount_state(path) {
            Err(e) => {
                return Err(Error::Os {
                    what: crate::text!("Failed to check '{path}' mount state"),
                    errno: e.raw_os_error(),
                })
            }
            Ok(fd::MountState::ReadWrite) => {
                return Err(Error::fatal(format_args!(
                    "Device '{path}' is mounted read-write. You must 'umount' it first.\n"
                )))
            }
            Ok(_) => {}
        }
        let open_failed = |errno: i32| {
            if errno == errno::EINVAL {
                // The reference adds two lines after the ERROR line.
                report.out(format_args!(
                    "ERROR({errno}): Opening '{path}' as NTFS failed: {}\nApparently device '{path}' \
                     doesn't have a valid NTFS. Maybe you selected\nthe whole disk instead of a \
                     partition (e.g. /dev/hda, not /dev/hda1)?\n",
                    crate::error::strerror(errno)
                ));
                Error::Reported // already printed; exit status 1
            } else {
                Error::Os {
                    what: crate::text!("Opening '{path}' as NTFS failed"),
                    errno,
                }
            }
        };
        let dev = Fd::open_read(path).map_err(|e| open_failed(e.raw_os_error()))?;
        let device_size = dev.size()?;
        // libntfs's diagnostic lines (what exactly is wrong) go to stderr, as the reference's.
        let mut diag = Msgs { report, bar: None };
        let vol = match Volume::open_with_sink(&dev, device_size, &mut diag) {
            Ok(v) => v,
            Err(Error::Os { errno, .. }) => return Err(open_failed(errno)),
            Err(e) => return Err(e),
        };
        let mut force = opts.force;
        if vol.is_dirty() {
            if force == 0 {
                return Err(Error::fatal(format_args!(
                    "Volume '{path}' is scheduled for a check or it was shutdown \nuncleanly. \
                     Please boot Windows or use the --force option to progress.\n"
                )));
            }
            force -= 1;
        }
        let _ = force;
        let cs = vol.boot.cluster_size;
        if cs > crate::image::header::MAX_CLUSTER_SIZE {
            return Err(Error::fatal(format_args!(
                "Cluster size {cs} is too large!\n"
            )));
        }
        report.out(format_args!(
            "NTFS volume version: {}.{}\n",
            vol.version.0, vol.version.1
        ));
        // The reference knows NTFS 1.1, 1.2, 2.x, 3.0 and 3.1 (spec §2.4; black-box: 0.0,
        // 1.0, 3.2 and 4.0 end here, after the dirty check and the version line).
        if !matches!(vol.version, (1, 1) | (1, 2) | (2, _) | (3, 0) | (3, 1)) {
            return Err(Error::Os {
                what: crate::text!("Unknown NTFS version"),
                errno: errno::EOPNOTSUPP,
            });
        }
        report.out(format_args!("Cluster size       : {cs} bytes\n"));
        let volume_size = vol.boot.nr_clusters.saturating_mul(u64::from(cs));
        print_size(report, "Current volume size", volume_size);
        print_size(report, "Current device size", device_size);
        if device_size < volume_size {
            return Err(Error::fatal(format_args!(
                "Current NTFS volume size is bigger than the device size ({device_size})!\n\
                 Corrupt partition table or incorrect device partitioning?\n"
            )));
        }
        Ok(Source {
            dev,
            vol,
            device_size,
        })
    }

    /// Walks the MFT and checks $Bitmap, printing the reference's lines, then `Space in use`.
    pub fn scan(&self, opts: &Options, report: Report) -> Result<Scan> {
        let mut scan = self.scan_with(opts, report, &mut |_| Ok(()))?;
        print_usage(
            report,
            "Space in use       ",
            scan.inuse,
            self.vol.boot.cluster_size,
            self.vol.boot.nr_clusters,
        );
        // The reference opens $BadClus:$Bad after this line (black-box: a corrupt record 8
        // gives `Space in use` then `ERROR(5): ntfs_open_inode`).
        if let Some(e) = scan.badclus_error.take() {
            return Err(e);
        }
        Ok(scan)
    }

    /// The walk and the accounting ("Scanning volume ...", "Accounting clusters ..."), without
    /// the `Space in use` line; every visited attribute is also shown to `also`.
    pub fn scan_with(
        &self,
        opts: &Options,
        report: Report,
        also: &mut dyn FnMut(&crate::ntfs::walk::Visit) -> Result<()>,
    ) -> Result<Scan> {
        report.out(format_args!("Scanning volume ...\n"));
        let mut sink = Msgs { report, bar: None };
        // MFT records and $Bitmap pieces are read through a 1 MiB window (one pread per window).
        let dev = crate::copy::ReadAhead::new(&self.dev, crate::copy::SCAN_WINDOW_BYTES);
        used::scan_with(&self.vol, &dev, opts.ignore_fs_check, &mut sink, also)
    }
}

/// `%lld bytes (%lld MB)` with MB rounded up (the reference's `print_volume_size`).
pub fn print_size(report: Report, label: &str, bytes: u64) {
    report.out(format_args!(
        "{label}: {bytes} bytes ({} MB)\n",
        mb_up(bytes)
    ));
}

/// Megabytes (10^6), rounded up.
pub fn mb_up(bytes: u64) -> u64 {
    bytes.div_ceil(1_000_000)
}

/// `Space in use : N MB (P%)   ` with the reference's single-precision percentage.
pub fn print_usage(report: Report, label: &str, inuse: u64, cluster_size: u32, nr_clusters: u64) {
    let bytes = inuse.saturating_mul(u64::from(cluster_size));
    // C: 100.0 * ((float)used / total), total converted to float too.
    let pct = 100.0f64 * f64::from(inuse as f32 / nr_clusters as f32);
    report.out(format_args!(
        "{label}: {} MB ({pct:.1}%)   \n",
        mb_up(bytes)
    ));
}

/// The progress sink given to the scan.
pub(crate) struct Msgs {
    pub(crate) report: Report,
    pub(crate) bar: Option<Progress>,
}

impl used::Sink for Msgs {
    fn msg(&mut self, args: fmt::Arguments) {
        self.report.out(args);
    }
    fn warn(&mut self, args: fmt::Arguments) {
        Report::err(args);
    }
    fn progress_start(&mut self, start: u64, stop: u64) {
        self.bar = Some(Progress::new(start, stop, self.report));
    }
    fn progress(&mut self, current: u64) {
        if let Some(b) = &self.bar {
            b.update(current);
        }
    }
}

/// Reports progress moving from `from` to `to` (bars start at 0): prints exactly the lines
/// that calling `update` for every value in between would print, without the per-cluster calls.
pub fn advance(bar: &Progress, from: u64, to: u64) {
    if to <= from {
        return;
    }
    let mut k = (from / 100 + 1) * 100;
    while k <= to {
        bar.update(k);
        k += 100;
    }
    let stop = bar.stop();
    if stop > from && stop <= to && stop % 100 != 0 {
        bar.update(stop);
    }
}

/// Replaces the volume serial number (boot sector offset 0x48) in `sector`, as `--new-serial`
/// (`mode` 2: all 64 bits) or `--new-half-serial` (`mode` 1: the upper 32 bits) ask.
pub fn set_serial(sector: &mut [u8], mode: u8, serial: u64) {
    const OFF_SERIAL: usize = 0x48;
    let Some(field) = sector.get_mut(OFF_SERIAL..OFF_SERIAL + 8) else {
        return;
    };
    let mut old = [0u8; 8];
    old.copy_from_slice(field);
    let old = u64::from_le_bytes(old);
    let new = if mode & 2 != 0 {
        serial
    } else {
        (serial & 0xffff_ffff_0000_0000) | (old & 0xffff_ffff)
    };
    field.copy_from_slice(&new.to_le_bytes());
}

/// A new serial like the reference's (two 31-bit `random()` values): bits 31 and 63 are 0.
pub fn new_serial() -> u64 {
    fd::random_u64() & 0x7fff_ffff_7fff_ffff
}

/// Where `--new-serial` must also patch the backup boot sector: the byte offset of the last
/// sector of the volume (`total_sectors × bytes_per_sector`), read from a primary boot sector.
/// Unlike the reference (bug #14) this also works when the device is larger than the volume.
pub fn backup_boot_offset(boot: &[u8]) -> Option<(u64, usize)> {
    let bps = u16::from_le_bytes([*boot.get(0x0b)?, *boot.get(0x0c)?]) as usize;
    let mut ts = [0u8; 8];
    ts.copy_from_slice(boot.get(0x28..0x30)?);
    let total = u64::from_le_bytes(ts);
    if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
        return None;
    }
    Some((total.checked_mul(bps as u64)?, bps))
}

/// [`backup_boot_offset`] from a parsed boot sector.
pub fn backup_boot_offset_of(boot: &crate::ntfs::BootSector) -> Option<(u64, usize)> {
    Some((
        boot.total_sectors
            .checked_mul(u64::from(boot.sector_size))?,
        boot.sector_size as usize,
    ))
}

/// Patches the serial in whatever part of the boot sectors `data` (bytes at byte offset
/// `offset` of the volume) holds: the primary at 0, the backup at `backup` (if it looks like
/// an NTFS boot sector). Returns true when the primary was patched.
pub fn patch_serials(
    data: &mut [u8],
    offset: u64,
    mode: u8,
    serial: u64,
    backup: Option<(u64, usize)>,
) -> bool {
    let mut primary = false;
    if offset == 0 && data.len() >= 0x50 {
        set_serial(data, mode, serial);
        primary = true;
    }
    if let Some((b, bps)) = backup {
        if b >= offset {
            let rel = (b - offset) as usize;
            if let Some(sec) = data.get_mut(rel..rel.saturating_add(bps.max(0x50))) {
                if sec.get(3..7) == Some(b"NTFS") {
                    set_serial(sec, mode, serial);
                }
            }
        }
    }
    primary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_modes() {
        let mut s = [0u8; 512];
        s[0x48..0x50].copy_from_slice(&0x6cd5_cbe2_597e_e8a2u64.to_le_bytes());
        set_serial(&mut s, 1, 0x1111_2222_3333_4444);
        assert_eq!(&s[0x48..0x50], &0x1111_2222_597e_e8a2u64.to_le_bytes());
        set_serial(&mut s, 3, 0x1111_2222_3333_4444);
        assert_eq!(&s[0x48..0x50], &0x1111_2222_3333_4444u64.to_le_bytes());
        assert_eq!(new_serial() & 0x8000_0000_8000_0000, 0);
    }

    #[test]
    fn sizes_in_mb() {
        assert_eq!(mb_up(67_104_768), 68);
        assert_eq!(mb_up(1_000_000), 1);
        assert_eq!(mb_up(0), 0);
    }
}
