//! Where the NTFS reader says what it finds: the lines libntfs-3g prints while mounting or
//! walking, the scan's messages and its progress. The std side prints them.
use core::fmt;

/// Receives the reader's and the scan's diagnostics.
pub trait Diagnostics {
    /// A line for `msg_out` (stdout, or stderr when the output is stdout).
    fn msg(&mut self, args: fmt::Arguments);
    /// A line for stderr (warnings).
    fn warn(&mut self, args: fmt::Arguments);
    /// A progress bar starts, running from `start` to `stop`.
    fn progress_start(&mut self, start: u64, stop: u64);
    /// The bar reached `current`.
    fn progress(&mut self, current: u64);
}

/// Diagnostics that are dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDiagnostics;

impl Diagnostics for NoDiagnostics {
    fn msg(&mut self, _: fmt::Arguments) {}
    fn warn(&mut self, _: fmt::Arguments) {}
    fn progress_start(&mut self, _: u64, _: u64) {}
    fn progress(&mut self, _: u64) {}
}
