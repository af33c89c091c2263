//! The NTFS source of `-s`, `-m` and the raw clone: opened and checked the reference's way
//! (spec §2.3–2.4: mount state, NTFS open, dirty flag, version and sizes), then scanned
//! ("Scanning volume", "Accounting clusters", "Space in use").
use crate::dev::fd::{self, Fd};
use crate::error::{errno, Error, Result};
use crate::ntfs::hiber::HiberProbe;
use crate::ntfs::walk::Visit;
use crate::ntfs::Volume;
use crate::options::Options;
use crate::progress::Progress;
use crate::report::Report;
use crate::used::{self, Scan};
use core::fmt;

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
    pub fn open(opts: &Options, report: Report, progress: &mut Progress) -> Result<Source> {
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
        let dev = Fd::open_read(path)
            .map_err(|e| open_failed(report, path, e.raw_os_error()))?
            .drop_behind_when_copying();
        Self::from_fd(opts, report, progress, path, dev)
    }

    /// [`Source::open`] after the mount check and the open: `dev` is the volume (a device, a
    /// file, or a partition of a disk as a window), `path` names it in messages.
    pub fn from_fd(
        opts: &Options,
        report: Report,
        progress: &mut Progress,
        path: &str,
        dev: Fd,
    ) -> Result<Source> {
        let open_failed = |errno: i32| open_failed(report, path, errno);
        let device_size = dev.size()?;
        // libntfs's diagnostic lines (what exactly is wrong) go to stderr, as the reference's.
        let mut messages = NtfsMessages::new(report, progress);
        let vol = match Volume::open_with_sink(&dev, device_size, &mut messages) {
            Ok(v) => v,
            Err(Error::Os { errno, .. }) => return Err(open_failed(errno)),
            Err(e) => return Err(e),
        };
        if vol.is_dirty() && opts.force == 0 {
            return Err(Error::fatal(format_args!(
                "Volume '{path}' is scheduled for a check or it was shutdown \nuncleanly. \
                 Please boot Windows or use the --force option to progress.\n"
            )));
        }
        let cs = vol.boot.cluster_size;
        if cs > crate::ntfs::boot_sector::MAX_CLUSTER_SIZE {
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
        report.size("Current volume size", volume_size);
        report.size("Current device size", device_size);
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
    pub fn scan(&self, opts: &Options, report: Report, progress: &mut Progress) -> Result<Scan> {
        let mut hiber = HiberProbe::default();
        let mut scan = self.scan_with(opts, report, progress, &mut |v| {
            hiber.visit(&self.vol, v);
            Ok(())
        })?;
        let hibernated = hiber.is_hibernated(&self.vol, &self.dev);
        report.space_in_use(
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
        // One line on stderr; stdout stays the reference's (compat: test
        // `messages::hibernated_volume_warns_on_stderr`).
        if hibernated {
            progress.warning();
            Report::err(format_args!(
                "WARNING: Windows is hibernated on this volume (hiberfil.sys): booting the copy \
                 resumes that session; do not change the copy before Windows has booted from it\n"
            ));
        }
        Ok(scan)
    }

    /// The walk and the accounting ("Scanning volume ...", "Accounting clusters ..."), without
    /// the `Space in use` line; every visited attribute is also passed to `on_visit`.
    pub fn scan_with(
        &self,
        opts: &Options,
        report: Report,
        progress: &mut Progress,
        on_visit: &mut dyn FnMut(&Visit) -> Result<()>,
    ) -> Result<Scan> {
        report.out(format_args!("Scanning volume ...\n"));
        let mut messages = NtfsMessages::new(report, progress);
        // MFT records and $Bitmap pieces are read through a 1 MiB window (one pread per window).
        let dev = crate::copy::ReadAhead::new(&self.dev, crate::copy::SCAN_WINDOW_BYTES);
        used::scan_with(
            &self.vol,
            &dev,
            opts.ignore_fs_check,
            &mut messages,
            on_visit,
        )
    }
}

/// The reference's message when a volume cannot be opened as NTFS.
fn open_failed(report: Report, path: &str, errno: i32) -> Error {
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
}

/// Where the NTFS reader's messages and scan progress go: its lines on `msg_out`, its warnings
/// on stderr, its progress on the text bar.
pub struct NtfsMessages<'a> {
    report: Report,
    progress: &'a mut Progress,
}

impl<'a> NtfsMessages<'a> {
    /// Messages on `report`; no text bar until the reader starts one.
    pub fn new(report: Report, progress: &'a mut Progress) -> Self {
        progress.end_bar();
        NtfsMessages { report, progress }
    }
}

impl used::Sink for NtfsMessages<'_> {
    fn msg(&mut self, args: fmt::Arguments) {
        self.report.out(args);
    }
    fn warn(&mut self, args: fmt::Arguments) {
        Report::err(args);
    }
    fn progress_start(&mut self, start: u64, stop: u64) {
        self.progress.start_bar(start, stop);
    }
    fn progress(&mut self, current: u64) {
        self.progress.update(current);
    }
}
