//! Small helpers of the integration tests that run commands (not shared with the boot tests,
//! which have an `s` of their own).
use crate::common::{require, run};
use std::path::Path;
use std::process::{Command, Output};

/// A path as the `&str` a command line takes.
pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A run's stdout followed by its stderr, as text.
pub(crate) fn all(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Runs `script` with bash.
pub(crate) fn bash(script: &str) -> Output {
    run(Command::new(require("bash")).arg("-c").arg(script))
}
