//! The modes: save (`-s`), restore (`-r`, `-r -n`), raw clone (`-o`/`-O` alone) and metadata
//! (`-m`, `-m -s`), one file each, around the shared copy code in [`crate::copy`].
//!
//! The order of the checks and every line printed follow the reference (spec §2.3–2.8):
//! source mount state, NTFS open, dirty flag, version and sizes, output creation,
//! "Scanning volume", "Accounting clusters", "Space in use", free space, then the copy.
mod ahead;
pub mod clone;
pub mod disk;
pub mod image_out;
pub mod metadata;
pub mod output;
pub mod restore;
pub mod same;
pub mod save;
pub mod serial;
pub mod source;

pub use source::Source;

use crate::error::{Error, Result};
use crate::options::{Mode, Options};
use crate::progress::Progress;
use crate::report::Report;

/// Runs one validated command line. Prints what the reference prints on success.
/// With `--progress-fd N`, JSON progress lines go to N (see [`crate::progress`]).
pub fn run(opts: &Options) -> Result<()> {
    // Before anything is opened for writing (the progress descriptor included).
    same::check_source_and_output(opts)?;
    same::check_progress_fd(opts)?;
    let report = Report {
        msg_to_stderr: opts.output_is_stdout(),
        quiet: opts.quiet,
    };
    let mut progress = Progress::new(report, opts.progress_fd);
    let result = run_mode(opts, report, &mut progress).map_err(|e| reference_words(opts, e));
    progress.end(&result);
    result
}

fn run_mode(opts: &Options, report: Report, progress: &mut Progress) -> Result<()> {
    if opts.disk {
        return disk::run(opts, report, progress);
    }
    match opts.mode {
        Mode::Metadata | Mode::MetadataImage => metadata::run(opts, report, progress),
        Mode::Restore | Mode::TestRestore => {
            // A disk image is recognised by itself: file or stdin, plain or zstd.
            let input = disk::sniff_restore_input(opts)?;
            if input.disk {
                disk::restore_disk(opts, report, progress, input.stream)
            } else {
                restore::run(opts, report, progress, input.stream)
            }
        }
        Mode::Save => {
            let src = Source::open(opts, report, progress)?;
            save::run(opts, report, progress, src)
        }
        Mode::Clone => {
            let src = Source::open(opts, report, progress)?;
            clone::run(opts, report, progress, src)
        }
    }
}

/// A failed write of the output in the reference's words (black-box, compat: test
/// `safety::full_file_system_messages`): `fflush` for images (its stdio stream reports the
/// error when flushed), `write_all` for a raw stream on stdout, `Write failed` for a raw file
/// or device.
fn reference_words(opts: &Options, e: Error) -> Error {
    match e {
        Error::Os { what, errno } if what == "write_all" => {
            let what = match opts.mode {
                Mode::Save | Mode::MetadataImage => "fflush",
                _ if opts.output_is_stdout() => "write_all",
                _ => "Write failed",
            };
            Error::os(what, errno)
        }
        e => e,
    }
}
