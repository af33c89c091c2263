//! The modes: save, restore, clone (and metadata), each a thin choice of source and sink.
use crate::cli::Options;
use crate::error::Result;

/// Runs one validated command line. Prints what the reference prints on success.
pub fn run(opts: &Options) -> Result<()> {
    let _ = opts;
    todo!("ops::run")
}
