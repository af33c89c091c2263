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

    /// `label: N bytes (M MB)` with MB rounded up (the reference's `print_volume_size`).
    pub fn size(&self, label: &str, bytes: u64) {
        self.out(format_args!(
            "{label}: {bytes} bytes ({} MB)\n",
            mb_up(bytes)
        ));
    }

    /// `label: N MB (P%)   ` for `inuse` of `nr_clusters` clusters, with the reference's
    /// single-precision percentage.
    pub fn space_in_use(&self, label: &str, inuse: u64, cluster_size: u32, nr_clusters: u64) {
        let bytes = inuse.saturating_mul(u64::from(cluster_size));
        // C: 100.0 * ((float)used / total), total converted to float too.
        let pct = 100.0f64 * f64::from(inuse as f32 / nr_clusters as f32);
        self.out(format_args!(
            "{label}: {} MB ({pct:.1}%)   \n",
            mb_up(bytes)
        ));
    }
}

/// Megabytes (10^6), rounded up.
pub fn mb_up(bytes: u64) -> u64 {
    bytes.div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_mb() {
        assert_eq!(mb_up(67_104_768), 68);
        assert_eq!(mb_up(1_000_000), 1);
        assert_eq!(mb_up(0), 0);
    }
}
