//! The options of one run, as [`crate::cli`] checked them and [`crate::ops::run`] carries them
//! out: the mode, the source and output, and the switches that refine the mode.
use std::prelude::v1::*;

/// What the run does (the reference's `-s`, `-r`, `-n`, `-m` and their combinations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// `-o`/`-O` alone: the used clusters to the same offsets of a file, device or stdout.
    #[default]
    Clone,
    /// `-s`: the volume to a special image.
    Save,
    /// `-r`: a special image to a file, device or stdout.
    Restore,
    /// `-r -n`: read and check a special image, write nothing.
    TestRestore,
    /// `-m`: the metadata only, wiped, to a file or (with `--force`) a block device.
    Metadata,
    /// `-m -s`: the metadata only, wiped, to a special image.
    MetadataImage,
}

impl Mode {
    /// `-m` or `-m -s`.
    pub fn is_metadata(self) -> bool {
        matches!(self, Mode::Metadata | Mode::MetadataImage)
    }
}

/// `--new-serial` / `--new-half-serial`: which bits of the volume serial number the copy gets
/// new (ignored with `-s`, as by the reference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Serial {
    /// Neither option: the serial number is copied as it is.
    #[default]
    Keep,
    /// `--new-half-serial`: the upper 32 bits are new.
    Half,
    /// `--new-serial` (with or without `--new-half-serial`): all 64 bits are new.
    Full,
}

impl Serial {
    /// The bits of the serial number that are replaced (None: none).
    pub fn mask(self) -> Option<u64> {
        match self {
            Serial::Keep => None,
            Serial::Half => Some(0xffff_ffff_0000_0000),
            Serial::Full => Some(u64::MAX),
        }
    }
}

/// Validated options of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// What the run does.
    pub mode: Mode,
    /// SOURCE: a volume, or an image (`-` = stdin) with `-r`.
    pub source: String,
    /// `-o`/`-O` FILE (`-` = stdout); None only with `-r -n`.
    pub output: Option<String>,
    /// `-O` was used.
    pub overwrite: bool,
    /// `--rescue`.
    pub rescue: bool,
    /// `--ignore-fs-check`.
    pub ignore_fs_check: bool,
    /// `--new-serial` / `--new-half-serial`.
    pub new_serial: Serial,
    /// `-t`.
    pub preserve_timestamps: bool,
    /// `-q`.
    pub quiet: bool,
    /// `-f` count.
    pub force: u32,
    /// `--full-logfile`.
    pub full_logfile: bool,
    /// `--no-checksum` (our extension): write images without the integrity trailer and do not
    /// verify it when restoring.
    pub no_checksum: bool,
    /// `--progress-fd N` (our extension): also write progress as JSON lines to descriptor N.
    pub progress_fd: Option<i32>,
    /// `--disk` (our extension): whole disks ([`crate::ops::disk`]).
    pub disk: bool,
    /// `--new-disk-ids` (our extension, with `--disk`): new disk and partition identifiers.
    pub new_disk_ids: bool,
}

impl Options {
    /// True when the output is standard output (`-o -`): the reference then prints its
    /// messages on stderr.
    pub fn output_is_stdout(&self) -> bool {
        self.output.as_deref() == Some("-")
    }
}
