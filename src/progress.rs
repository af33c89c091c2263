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
        let unit = if span == 0 { f64::INFINITY as f32 } else { (100.0f64 / span as f64) as f32 };
        Progress { start, stop, unit, report }
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
            self.report.out(format_args!("{:6.2} percent completed\r", percent as f64));
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
        let p = Progress::new(0, 272, Report { msg_to_stderr: false, quiet: true });
        let f = |c: u64| std::format!("{:6.2}", (p.unit * c as f32) as f64);
        assert_eq!(f(0), "  0.00");
        assert_eq!(f(100), " 36.76");
        assert_eq!(f(200), " 73.53");
    }
}
