//! Command line: getopt-compatible normalising, argh parsing, and the reference's checks of
//! option combinations in the reference's order.
use std::prelude::v1::*;

/// Validated options of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// SOURCE: a volume, or an image (`-` = stdin) with `-r`.
    pub source: String,
    /// `-o`/`-O` FILE (`-` = stdout); None only with `-n`.
    pub output: Option<String>,
    /// `-O` was used.
    pub overwrite: bool,
    /// `-s` (cleared when `-m -s` turns into `metadata_image`).
    pub save_image: bool,
    /// `-r`.
    pub restore_image: bool,
    /// `-m` without `-s`.
    pub metadata: bool,
    /// `-m -s`.
    pub metadata_image: bool,
    /// `--rescue`.
    pub rescue: bool,
    /// `-n`.
    pub no_action: bool,
    /// `--ignore-fs-check`.
    pub ignore_fs_check: bool,
    /// Bit 1 = `--new-half-serial`, bit 2 = `--new-serial` (full wins).
    pub new_serial: u8,
    /// `-t`.
    pub preserve_timestamps: bool,
    /// `-q`.
    pub quiet: bool,
    /// `-f` count.
    pub force: u32,
    /// `--full-logfile`.
    pub full_logfile: bool,
}

/// Entry point of the binary: banner, parse, check, run, report. Returns the exit status.
pub fn main() -> std::process::ExitCode {
    todo!("cli::main")
}
