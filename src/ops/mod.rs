//! The modes: save (`-s`), restore (`-r`, `-r -n`), raw clone (`-o`/`-O` alone) and metadata
//! (`-m`, `-m -s`), one file each, around the shared copy code in [`crate::copy`].
//!
//! The order of the checks and every line printed follow the reference (spec §2.3–2.8):
//! source mount state, NTFS open, dirty flag, version and sizes, output creation,
//! "Scanning volume", "Accounting clusters", "Space in use", free space, then the copy.
mod ahead;
pub mod clone;
pub mod image_out;
pub mod metadata;
pub mod output;
pub mod restore;
pub mod save;
pub mod serial;
pub mod source;

pub use source::Source;

use crate::error::Result;
use crate::options::{Mode, Options};
use crate::progress::Progress;
use crate::report::Report;

/// Runs one validated command line. Prints what the reference prints on success.
/// With `--progress-fd N`, JSON progress lines go to N (see [`crate::progress`]).
pub fn run(opts: &Options) -> Result<()> {
    let report = Report {
        msg_to_stderr: opts.output_is_stdout(),
        quiet: opts.quiet,
    };
    let mut progress = Progress::new(report, opts.progress_fd);
    let result = run_mode(opts, report, &mut progress);
    progress.end(&result);
    result
}

fn run_mode(opts: &Options, report: Report, progress: &mut Progress) -> Result<()> {
    match opts.mode {
        Mode::Metadata | Mode::MetadataImage => metadata::run(opts, report, progress),
        Mode::Restore | Mode::TestRestore => restore::run(opts, report, progress),
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
