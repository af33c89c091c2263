//! Progress of one run: the reference's text bar and our JSON lines, both fed by one
//! [`Progress`] value that the run passes to each phase.
//!
//! Text: `"%6.2f percent completed\r"` every 100 steps and `"100.00 percent completed\n"` at
//! the end of each bar, on `msg_out` unless `-q`. Clonezilla parses it, so it is byte-identical,
//! including the single-precision arithmetic of the C code.
//!
//! JSON Lines on a file descriptor (`--progress-fd N`): one line when each phase starts, at
//! most four per second while it runs, and always a final one (`"phase":"done"`, or an
//! `"error"` field). Counters are for the whole run and never go backwards. A full or closed
//! descriptor is dropped with one warning: progress never blocks or fails the copy.
//! A mode calls [`Progress::phase`]`("scan")` before its scan, [`Progress::set_total_bytes`]
//! once it knows the cluster bytes it will move, `phase("save"|"restore"|"clone"|"verify")`
//! when the copy starts, and [`Progress::add_bytes`] after each chunk moved; `ops::run` calls
//! [`Progress::end`].
//!
//! Line schema (one JSON object per line, keys always in this order):
//! `phase` (`scan`, `save`, `restore`, `clone`, `verify`, `done`), `bytes_done`, `bytes_total`
//! (cluster data bytes of the whole run), `elapsed_s`, `rate_bytes_per_s`, `eta_s`,
//! `bad_sectors`, `warnings`, and on the final line of a failed run `error` (the message).
use crate::dev::fd::Fd;
use crate::dev::WriteStream;
use crate::error::{Error, Result, Text};
use crate::report::Report;
use rustix::fs::OFlags;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// The progress of one run.
#[derive(Debug)]
pub struct Progress {
    report: Report,
    /// The text bar of the current phase, once one is started.
    bar: Option<Bar>,
    /// The JSON lines (None: `--progress-fd` not given, or dropped after a failed write).
    json: Option<JsonProgress>,
}

/// One text bar (`progress_init` / `progress_update` of the reference).
#[derive(Debug, Clone, Copy)]
struct Bar {
    start: u64,
    stop: u64,
    unit: f32,
}

impl Bar {
    /// A bar running from `start` to `stop` (inclusive).
    fn new(start: u64, stop: u64) -> Bar {
        // C: p->unit = 100.0 / (stop - start), a double stored into a float.
        let span = stop.wrapping_sub(start);
        let unit = if span == 0 {
            f64::INFINITY as f32
        } else {
            (100.0f64 / span as f64) as f32
        };
        Bar { start, stop, unit }
    }
}

impl Progress {
    /// Progress for a run printing on `report`, with JSON lines on descriptor `fd` if given. A
    /// descriptor that cannot be used is reported with one warning; the run goes on without
    /// JSON lines.
    pub fn new(report: Report, fd: Option<i32>) -> Progress {
        let json = fd.and_then(|n| match JsonProgress::open(n) {
            Ok(p) => Some(p),
            Err(e) => {
                Report::err(format_args!(
                    "WARNING: {}; no progress lines will be written\n",
                    std::format!("{e}").trim_start_matches("ERROR: ").trim_end()
                ));
                None
            }
        });
        Progress {
            report,
            bar: None,
            json,
        }
    }

    /// Starts a text bar running from `start` to `stop` (inclusive).
    pub fn start_bar(&mut self, start: u64, stop: u64) {
        self.bar = Some(Bar::new(start, stop));
    }

    /// Ends the text bar: [`Progress::update`] prints nothing until the next one starts.
    pub fn end_bar(&mut self) {
        self.bar = None;
    }

    /// The text bar reached `current`.
    pub fn update(&self, current: u64) {
        let Some(bar) = self.bar else { return };
        if self.report.quiet {
            return;
        }
        if current == bar.stop {
            self.report.out(format_args!("100.00 percent completed\n"));
        } else if current.wrapping_sub(bar.start) % 100 == 0 {
            // C: float percent = p->unit * current (single precision, promoted for printf).
            let percent = bar.unit * current as f32;
            self.report
                .out(format_args!("{:6.2} percent completed\r", percent as f64));
        }
    }

    /// The text bar moved from `from` to `to` (bars start at 0): prints exactly the lines that
    /// calling [`Progress::update`] for every value in between would print, without the
    /// per-cluster calls.
    pub fn advance(&self, from: u64, to: u64) {
        let Some(bar) = self.bar else { return };
        if to <= from {
            return;
        }
        let mut k = (from / 100 + 1) * 100;
        while k <= to {
            self.update(k);
            k += 100;
        }
        if bar.stop > from && bar.stop <= to && bar.stop % 100 != 0 {
            self.update(bar.stop);
        }
    }

    /// Runs `f` on the JSON lines, if they are on; drops them once a write failed.
    #[inline]
    fn json(&mut self, f: impl FnOnce(&mut JsonProgress)) {
        if let Some(p) = self.json.as_mut() {
            f(p);
            if !p.enabled() {
                self.json = None;
            }
        }
    }

    /// A whole-disk run starts partition `n`: JSON lines carry it, and the totals set from now
    /// on count from the bytes done so far (one stream over the whole disk).
    pub fn begin_partition(&mut self, n: u32) {
        self.json(|p| {
            p.partition = Some(n);
            p.total_base = p.bytes_done;
        });
    }

    /// A phase starts: one JSON line.
    pub fn phase(&mut self, name: &'static str) {
        self.json(|p| p.phase(name));
    }

    /// The cluster bytes the whole run will move (never lowered below what is done).
    pub fn set_total_bytes(&mut self, bytes: u64) {
        self.json(|p| p.bytes_total = p.total_base.saturating_add(bytes).max(p.bytes_done));
    }

    /// `bytes` more were moved; a JSON line if the last one is old enough.
    #[inline]
    pub fn add_bytes(&mut self, bytes: u64) {
        self.json(|p| p.advance(bytes));
    }

    /// The count of unreadable sectors so far.
    pub fn set_bad_sectors(&mut self, n: u64) {
        self.json(|p| p.bad_sectors = p.bad_sectors.max(n));
    }

    /// One more warning was printed.
    pub fn warning(&mut self) {
        self.json(|p| p.warnings += 1);
    }

    /// The final JSON line: `done` on success, with `error` otherwise.
    pub fn end(mut self, result: &Result<()>) {
        self.json(|p| match result {
            Ok(()) => p.done(),
            Err(e) => {
                let mut t = Text::new();
                let _ = core::fmt::Write::write_fmt(&mut t, format_args!("{e}"));
                let msg = t.trim();
                p.fail(if msg.is_empty() { "failed" } else { msg });
            }
        });
    }
}

/// Shortest time between two lines of the same phase.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// The JSON progress writer. `JsonProgress::off()` does nothing at all.
#[derive(Debug)]
struct JsonProgress {
    fd: Option<Fd>,
    started: Instant,
    last: Option<Instant>,
    phase: &'static str,
    /// Bytes of cluster data processed so far in the run.
    bytes_done: u64,
    /// Bytes of cluster data the run will process (known after the scan).
    bytes_total: u64,
    /// Read errors met (sectors that could not be read, in rescue mode).
    bad_sectors: u64,
    /// Warnings printed.
    warnings: u64,
    /// The partition being copied (whole-disk runs).
    partition: Option<u32>,
    /// Bytes done before the current partition: its totals count from here.
    total_base: u64,
}

impl JsonProgress {
    /// A writer that does nothing.
    fn off() -> Self {
        JsonProgress {
            fd: None,
            started: Instant::now(),
            last: None,
            phase: "start",
            bytes_done: 0,
            bytes_total: 0,
            bad_sectors: 0,
            warnings: 0,
            partition: None,
            total_base: 0,
        }
    }

    /// Opens descriptor `n` for progress lines. It is reopened through `/proc/self/fd/N`
    /// (a new open file description: non-blocking without touching the caller's flags,
    /// appending when it is a file).
    fn open(n: i32) -> Result<Self> {
        let path = std::format!("/proc/self/fd/{n}");
        // A descriptor that is not open has no /proc/self/fd entry (ENOENT): say EBADF.
        let fd = Fd::open(&path, OFlags::WRONLY | OFlags::NONBLOCK | OFlags::APPEND, 0).map_err(
            |e| {
                let errno = match e.raw_os_error() {
                    crate::error::errno::ENOENT => crate::error::errno::EBADF,
                    n => n,
                };
                Error::message(format_args!(
                    "--progress-fd {n}: cannot use descriptor: {}",
                    crate::error::strerror(errno).to_ascii_lowercase()
                ))
            },
        )?;
        let mut p = Self::off();
        p.fd = Some(fd);
        Ok(p)
    }

    /// True when lines are written.
    fn enabled(&self) -> bool {
        self.fd.is_some()
    }

    /// A new phase starts: always emits a line.
    fn phase(&mut self, phase: &'static str) {
        self.phase = phase;
        self.emit(None);
    }

    /// Adds processed bytes; emits a line if enough time passed.
    #[inline]
    fn advance(&mut self, bytes: u64) {
        self.bytes_done = self.bytes_done.saturating_add(bytes);
        if self.fd.is_some() && self.last.map_or(true, |t| t.elapsed() >= MIN_INTERVAL) {
            self.emit(None);
        }
    }

    /// The final line of a successful run (`bytes_done` is brought to `bytes_total`).
    fn done(&mut self) {
        self.bytes_done = self.bytes_done.max(self.bytes_total);
        self.bytes_total = self.bytes_done;
        self.phase = "done";
        self.emit(None);
    }

    /// The final line of a failed run.
    fn fail(&mut self, error: &str) {
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
        if let Some(n) = self.partition {
            let _ = write!(w, ",\"partition\":{n}");
        }
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
            Report::err(format_args!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_text_matches_c_float_math() {
        // 273 records -> stop 272: the spec's test vector #26.
        let bar = Bar::new(0, 272);
        let f = |c: u64| std::format!("{:6.2}", (bar.unit * c as f32) as f64);
        assert_eq!(f(0), "  0.00");
        assert_eq!(f(100), " 36.76");
        assert_eq!(f(200), " 73.53");
    }
}
