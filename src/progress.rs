//! The reference's progress text: `"%6.2f percent completed\r"` every 100 steps and
//! `"100.00 percent completed\n"` at the end. Clonezilla parses it, so it is byte-identical,
//! including the single-precision arithmetic of the C code.
use crate::report::Report;

/// One progress bar (`progress_init` / `progress_update` of the reference).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    start: u64,
    stop: u64,
    unit: f32,
    report: Report,
}

impl Progress {
    /// A bar running from `start` to `stop` (inclusive).
    pub fn new(start: u64, stop: u64, report: Report) -> Self {
        // C: p->unit = 100.0 / (stop - start), a double stored into a float.
        let span = stop.wrapping_sub(start);
        let unit = if span == 0 {
            f64::INFINITY as f32
        } else {
            (100.0f64 / span as f64) as f32
        };
        Progress {
            start,
            stop,
            unit,
            report,
        }
    }

    /// Reports position `current`.
    pub fn update(&self, current: u64) {
        if self.report.quiet {
            return;
        }
        if current == self.stop {
            self.report.out(format_args!("100.00 percent completed\n"));
        } else if current.wrapping_sub(self.start) % 100 == 0 {
            // C: float percent = p->unit * current (single precision, promoted for printf).
            let percent = self.unit * current as f32;
            self.report
                .out(format_args!("{:6.2} percent completed\r", percent as f64));
        }
    }

    /// The stop value.
    pub fn stop(&self) -> u64 {
        self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_text_matches_c_float_math() {
        // 273 records -> stop 272: the spec's test vector #26.
        let p = Progress::new(
            0,
            272,
            Report {
                msg_to_stderr: false,
                quiet: true,
            },
        );
        let f = |c: u64| std::format!("{:6.2}", (p.unit * c as f32) as f64);
        assert_eq!(f(0), "  0.00");
        assert_eq!(f(100), " 36.76");
        assert_eq!(f(200), " 73.53");
    }
}

/// Machine-readable progress: JSON Lines on a file descriptor (`--progress-fd N`).
///
/// One line when each phase starts, at most four per second while it runs, and always a
/// final one (`"phase":"done"`, or an `"error"` field). Counters are for the whole run and never
/// go backwards. A full or closed descriptor is dropped with one warning: progress never blocks
/// or fails the copy.
///
/// The modes report through the process-wide functions of this module ([`start`], [`phase`],
/// [`set_total`], [`advance`], [`bad_sectors`], [`end`]), so that no copy loop has to carry a
/// progress value around: when `--progress-fd` is not given each call is one relaxed atomic load.
/// `ops::run` calls [`start`] and [`end`]; a mode calls `phase("scan")` before its scan,
/// `set_total(bytes)` once it knows the cluster bytes it will move, `phase("save"|"restore"|
/// "clone"|"verify")` when the copy starts, and `advance(bytes)` after each chunk moved.
/// Hook for the metadata mode (`-m`, `-m -s`): the same calls, with phase `"clone"` or `"save"`.
///
/// Line schema (one JSON object per line, keys always in this order):
/// `phase` (`scan`, `save`, `restore`, `clone`, `verify`, `done`), `bytes_done`, `bytes_total`
/// (cluster data bytes of the whole run), `elapsed_s`, `rate_bytes_per_s`, `eta_s`,
/// `bad_sectors`, `warnings`, and on the final line of a failed run `error` (the message).
pub mod json {
    use crate::dev::fd::Fd;
    use crate::dev::WriteStream;
    use rustix::fs::OFlags;
    use std::io::Write as _;
    use std::prelude::v1::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// The run's progress writer (None: `--progress-fd` not given, or dropped).
    static STATE: Mutex<Option<JsonProgress>> = Mutex::new(None);
    /// Fast check that avoids the lock when progress is off.
    static ON: AtomicBool = AtomicBool::new(false);

    fn with(f: impl FnOnce(&mut JsonProgress)) {
        if !ON.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut g) = STATE.lock() {
            if let Some(p) = g.as_mut() {
                f(p);
                if !p.enabled() {
                    ON.store(false, Ordering::Relaxed);
                }
            }
        }
    }

    /// Starts JSON progress on descriptor `fd` (nothing when None). A descriptor that cannot be
    /// used is reported with one warning; the run goes on without progress lines.
    pub fn start(fd: Option<i32>) {
        let Some(n) = fd else { return };
        match JsonProgress::open(n) {
            Ok(p) => {
                if let Ok(mut g) = STATE.lock() {
                    *g = Some(p);
                    ON.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => crate::report::Report::err(format_args!(
                "WARNING: {}; no progress lines will be written\n",
                std::format!("{e}").trim_start_matches("ERROR: ").trim_end()
            )),
        }
    }

    /// A phase starts: one line.
    pub fn phase(name: &'static str) {
        with(|p| p.phase(name));
    }

    /// The cluster bytes the whole run will move (never lowered below what is done).
    pub fn set_total(bytes: u64) {
        with(|p| p.bytes_total = bytes.max(p.bytes_done));
    }

    /// `bytes` more were moved; a line if the last one is old enough.
    #[inline]
    pub fn advance(bytes: u64) {
        with(|p| p.advance(bytes));
    }

    /// The count of unreadable sectors so far.
    pub fn bad_sectors(n: u64) {
        with(|p| p.bad_sectors = p.bad_sectors.max(n));
    }

    /// One more warning was printed.
    pub fn warning() {
        with(|p| p.warnings += 1);
    }

    /// The final line: `done` on success, with `error` otherwise.
    pub fn end(result: &crate::error::Result<()>) {
        with(|p| match result {
            Ok(()) => p.done(),
            Err(e) => {
                let mut t: crate::error::Text = crate::error::Text::new();
                let _ = core::fmt::Write::write_fmt(&mut t, format_args!("{e}"));
                let msg = t.trim();
                p.fail(if msg.is_empty() { "failed" } else { msg });
            }
        });
        if let Ok(mut g) = STATE.lock() {
            *g = None;
        }
        ON.store(false, Ordering::Relaxed);
    }

    /// Shortest time between two lines of the same phase.
    const MIN_INTERVAL: Duration = Duration::from_millis(250);

    /// The JSON progress writer. `JsonProgress::off()` does nothing at all.
    #[derive(Debug)]
    pub struct JsonProgress {
        fd: Option<Fd>,
        started: Instant,
        last: Option<Instant>,
        phase: &'static str,
        /// Bytes of cluster data processed so far in the run.
        pub bytes_done: u64,
        /// Bytes of cluster data the run will process (known after the scan).
        pub bytes_total: u64,
        /// Read errors met (sectors that could not be read, in rescue mode).
        pub bad_sectors: u64,
        /// Warnings printed.
        pub warnings: u64,
    }

    impl JsonProgress {
        /// A writer that does nothing.
        pub fn off() -> Self {
            JsonProgress {
                fd: None,
                started: Instant::now(),
                last: None,
                phase: "start",
                bytes_done: 0,
                bytes_total: 0,
                bad_sectors: 0,
                warnings: 0,
            }
        }

        /// Opens descriptor `n` for progress lines. It is reopened through `/proc/self/fd/N`
        /// (a new open file description: non-blocking without touching the caller's flags,
        /// appending when it is a file).
        pub fn open(n: i32) -> crate::error::Result<Self> {
            let path = std::format!("/proc/self/fd/{n}");
            let fd = Fd::open(&path, OFlags::WRONLY | OFlags::NONBLOCK | OFlags::APPEND, 0)
                .map_err(|e| {
                    crate::error::Error::own(format_args!(
                        "--progress-fd {n}: cannot use descriptor: {e}"
                    ))
                })?;
            let mut p = Self::off();
            p.fd = Some(fd);
            Ok(p)
        }

        /// True when lines are written.
        pub fn enabled(&self) -> bool {
            self.fd.is_some()
        }

        /// A new phase starts: always emits a line.
        pub fn phase(&mut self, phase: &'static str) {
            self.phase = phase;
            self.emit(None);
        }

        /// Adds processed bytes; emits a line if enough time passed.
        #[inline]
        pub fn advance(&mut self, bytes: u64) {
            self.bytes_done = self.bytes_done.saturating_add(bytes);
            if self.fd.is_some() && self.last.map_or(true, |t| t.elapsed() >= MIN_INTERVAL) {
                self.emit(None);
            }
        }

        /// The final line of a successful run (`bytes_done` is brought to `bytes_total`).
        pub fn done(&mut self) {
            self.bytes_done = self.bytes_done.max(self.bytes_total);
            self.bytes_total = self.bytes_done;
            self.phase = "done";
            self.emit(None);
        }

        /// The final line of a failed run.
        pub fn fail(&mut self, error: &str) {
            self.phase = "done";
            self.emit(Some(error));
        }

        fn emit(&mut self, error: Option<&str>) {
            let Some(fd) = self.fd.as_mut() else { return };
            let now = Instant::now();
            self.last = Some(now);
            let elapsed = now.duration_since(self.started).as_secs_f64();
            let rate = if elapsed > 0.0 {
                self.bytes_done as f64 / elapsed
            } else {
                0.0
            };
            let left = self.bytes_total.saturating_sub(self.bytes_done);
            let eta = if rate > 0.0 { left as f64 / rate } else { 0.0 };
            let mut line: heapless::Vec<u8, 4096> = heapless::Vec::new();
            let mut w = Buf(&mut line);
            let _ = write!(
                w,
                "{{\"phase\":\"{}\",\"bytes_done\":{},\"bytes_total\":{},\"elapsed_s\":{:.3},\
                 \"rate_bytes_per_s\":{:.0},\"eta_s\":{:.1},\"bad_sectors\":{},\"warnings\":{}",
                self.phase,
                self.bytes_done,
                self.bytes_total.max(self.bytes_done),
                elapsed,
                rate,
                eta,
                self.bad_sectors,
                self.warnings
            );
            if let Some(e) = error {
                let _ = write!(w, ",\"error\":\"");
                for c in e.trim_end().chars() {
                    let _ = match c {
                        '"' => write!(w, "\\\""),
                        '\\' => write!(w, "\\\\"),
                        '\n' => write!(w, "\\n"),
                        c if (c as u32) < 0x20 => write!(w, "\\u{:04x}", c as u32),
                        c => write!(w, "{c}"),
                    };
                }
                let _ = write!(w, "\"");
            }
            let _ = writeln!(w, "}}");
            if fd.write_all(&line).is_err() {
                crate::report::Report::err(format_args!(
                    "WARNING: progress descriptor is full or closed; no more progress lines\n"
                ));
                self.fd = None;
            }
        }
    }

    /// `io::Write` into a fixed buffer (a too-long line is cut, never reallocated).
    struct Buf<'a>(&'a mut heapless::Vec<u8, 4096>);

    impl std::io::Write for Buf<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let room = self.0.capacity() - self.0.len() - 2;
            let n = b.len().min(room);
            let _ = self.0.extend_from_slice(&b[..n]);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
