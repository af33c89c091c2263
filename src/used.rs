//! The used-cluster map: built by walking every in-use MFT record's runlists (the MFT is the
//! truth, $Bitmap is only compared with it), then yielded as runs in LCN order.
use crate::dev::ReadAt;
use crate::error::Result;
use crate::ntfs::Volume;
use core::fmt;

/// Receives what the scan has to say. The std side prints it.
pub trait Sink {
    /// A line for `msg_out` (stdout, or stderr when the output is stdout).
    fn msg(&mut self, args: fmt::Arguments);
    /// A line for stderr (warnings).
    fn warn(&mut self, args: fmt::Arguments);
    /// A progress bar starts, running from `start` to `stop`.
    fn progress_start(&mut self, start: u64, stop: u64);
    /// The bar reached `current`.
    fn progress(&mut self, current: u64);
}

/// One bit per cluster, for clusters 0..=nr_clusters (the extra one is the backup boot sector).
#[derive(Debug, Clone, Default)]
pub struct UsedMap {
    /// TODO: lazily allocated pages.
    _private: (),
}

impl UsedMap {
    /// Is `lcn` used?
    pub fn get(&self, lcn: u64) -> bool {
        let _ = lcn;
        todo!()
    }
    /// Runs of used clusters `(lcn, count)` in increasing LCN order, maximal.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        core::iter::empty()
    }
}

/// Result of the walk and the accounting.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Clusters used by files, plus every position >= nr_clusters up to the backup boot position.
    pub used: UsedMap,
    /// The header's `inuse`: clusters of all runs of in-use base records, minus $BadClus:$Bad.
    pub inuse: u64,
    /// Clusters set in $Bitmap that no file references (copied only with --rescue --ignore-fs-check, or -m).
    pub extra: UsedMap,
}

/// Walks the MFT ("Scanning volume ...") and compares with $Bitmap ("Accounting clusters ...").
pub fn scan<D: ReadAt>(vol: &Volume, dev: &D, ignore_fs_check: bool, sink: &mut dyn Sink) -> Result<Scan> {
    let _ = (vol, dev, ignore_fs_check, sink);
    todo!("used::scan")
}
