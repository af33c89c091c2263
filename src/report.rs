//! Where messages go.
//!
//! The reference prints its informational lines and `ERROR:` lines on `msg_out`: stdout, or
//! stderr when the data itself goes to stdout (`-o -`). Warnings of the NTFS library go to
//! stderr. Everything is flushed at once (the reference flushes after every `printf`).
use std::io::Write;

/// The message streams of one run.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// True when `msg_out` is stderr (output is `-`).
    pub msg_to_stderr: bool,
    /// `-q`: suppress progress lines only.
    pub quiet: bool,
}

impl Report {
    /// Prints on `msg_out`.
    pub fn out(&self, args: core::fmt::Arguments) {
        if self.msg_to_stderr {
            Self::err(args)
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_fmt(args);
            let _ = o.flush();
        }
    }
    /// Prints on stderr.
    pub fn err(args: core::fmt::Arguments) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_fmt(args);
        let _ = e.flush();
    }
}
