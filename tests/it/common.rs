//! Shared helpers: temporary directories, running our binary and the reference, test volumes.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Our binary, as built by cargo for this test run.
pub fn ours() -> &'static str {
    env!("CARGO_BIN_EXE_ntfsclone")
}

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/testdata` beside the project (read-only).
pub fn testdata() -> PathBuf {
    root().join("../shared/testdata")
}

/// Panics (fails the test, never skips) when a required tool is missing.
pub fn require(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("required tool `{tool}` is not installed: run `make deps` (make test does it)");
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = std::env::var_os("NTFSCLONE_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!(
            "ntfsclone-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command with no stdin, capturing stdout and stderr.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs our binary with `args`.
pub fn run_ours(args: &[&str]) -> Output {
    run(Command::new(ours()).args(args))
}

/// Runs the reference ntfsclone with `args`.
pub fn run_ref(args: &[&str]) -> Output {
    run(Command::new(require("ntfsclone")).args(args))
}

/// Decompresses a `.zst` test volume into `dir` as a sparse file; returns its path.
pub fn unzstd(src: &Path, dir: &Path) -> PathBuf {
    let name = src.file_name().unwrap().to_str().unwrap().trim_end_matches(".zst");
    let dst = dir.join(name);
    let st = run(Command::new(require("zstd"))
        .args(["-q", "-d", "-f", "--sparse", "-o"])
        .arg(&dst)
        .arg(src));
    assert!(st.status.success(), "zstd -d {src:?}: {}", String::from_utf8_lossy(&st.stderr));
    dst
}

/// Lists `*.zst` files in a testdata subfolder, sorted.
pub fn testdata_volumes(sub: &str) -> Vec<PathBuf> {
    let dir = testdata().join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
        .collect();
    v.sort();
    v
}
