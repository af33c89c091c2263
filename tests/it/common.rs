//! Shared helpers: temporary directories, running our binary and the reference, test volumes.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Our binary, as built by cargo for this test run.
pub(crate) fn ours() -> &'static str {
    env!("CARGO_BIN_EXE_ntfsclone")
}

/// The project root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/testdata` beside the project (read-only).
/// The shared test volumes: `../shared/testdata` beside the repository, or `NTFSCLONE_TESTDATA`.
/// Missing, the tests that need them fail (never skip) and say where they looked.
pub(crate) fn testdata() -> PathBuf {
    match std::env::var_os("NTFSCLONE_TESTDATA") {
        Some(p) => PathBuf::from(p),
        None => root().join("../shared/testdata"),
    }
}

/// Panics (fails the test, never skips) when a required tool is missing.
pub(crate) fn require(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("required tool `{tool}` is not installed: run `make deps` (make test does it)");
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
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
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command with no stdin, capturing stdout and stderr.
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs our binary with `args`.
pub(crate) fn run_ours(args: &[&str]) -> Output {
    run(Command::new(ours()).args(args))
}

/// Runs the reference ntfsclone with `args`.
pub(crate) fn run_ref(args: &[&str]) -> Output {
    run(Command::new(require("ntfsclone")).args(args))
}

/// Decompresses a `.zst` test volume into `dir` as a sparse file; returns its path.
pub(crate) fn unzstd(src: &Path, dir: &Path) -> PathBuf {
    let name = src
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".zst");
    let dst = dir.join(name);
    let st = run(Command::new(require("zstd"))
        .args(["-q", "-d", "-f", "--sparse", "-o"])
        .arg(&dst)
        .arg(src));
    assert!(
        st.status.success(),
        "zstd -d {src:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    dst
}

/// Lists `*.zst` files in a testdata subfolder, sorted.
pub(crate) fn testdata_volumes(sub: &str) -> Vec<PathBuf> {
    let dir = testdata().join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
        .collect();
    v.sort();
    v
}

/// What [`mkvol`] puts on a new volume (see the header of `tests/mkvol.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Nothing: a fresh mkntfs volume.
    Empty,
    /// One small resident file, one 300 KB file, a directory of 200 files, a deleted file.
    Basic,
    /// Basic plus many and large files, deletions, fragmentation, an attribute list, streams,
    /// sparse files, hard links, a symlink, Unicode names.
    Full,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Empty => "empty",
            Profile::Basic => "basic",
            Profile::Full => "full",
        }
    }
}

/// What [`mkvol`] makes: `VolSpec { size: 16 << 20, ..VolSpec::default() }`.
#[derive(Debug, Clone)]
pub(crate) struct VolSpec {
    /// Device (file) size in bytes.
    pub(crate) size: u64,
    /// Cluster size in bytes; None lets mkntfs choose.
    pub(crate) cluster: Option<u32>,
    /// Sector size: 512 or 4096.
    pub(crate) sector: u32,
    /// What to put on it.
    pub(crate) profile: Profile,
    /// NTFS size in bytes when smaller than the device (a device longer than its volume).
    pub(crate) volume_size: Option<u64>,
}

impl Default for VolSpec {
    /// 64 MiB, 4 KiB clusters, 512-byte sectors, the basic profile, the whole device.
    fn default() -> Self {
        VolSpec {
            size: 64 << 20,
            cluster: Some(4096),
            sector: 512,
            profile: Profile::Basic,
            volume_size: None,
        }
    }
}

impl VolSpec {
    /// A fresh mkntfs volume of `size` bytes, mkntfs's own cluster size, 512-byte sectors.
    pub(crate) fn empty(size: u64) -> VolSpec {
        VolSpec {
            size,
            cluster: None,
            profile: Profile::Empty,
            ..VolSpec::default()
        }
    }
}

/// Makes the test volume `dir/name` with `tests/mkvol.sh` (`mkntfs -F -f -q`, then files
/// written through ntfs-3g), the one way tests make NTFS volumes. Nothing is cached: the file
/// lives in `dir` (a [`TempDir`]). Fails the test with the script's output if it fails.
pub(crate) fn mkvol(dir: &Path, name: &str, spec: &VolSpec) -> PathBuf {
    require("mkntfs");
    require("ntfs-3g");
    let out = dir.join(name);
    let cluster = spec
        .cluster
        .map_or("default".to_string(), |c| c.to_string());
    let mut cmd = Command::new(root().join("tests/mkvol.sh"));
    cmd.arg(&out).args([
        &spec.size.to_string(),
        &cluster,
        &spec.sector.to_string(),
        spec.profile.name(),
    ]);
    if let Some(v) = spec.volume_size {
        cmd.arg(v.to_string());
    }
    let st = run(cmd.env("TMPDIR", dir));
    assert!(
        st.status.success(),
        "tests/mkvol.sh {spec:?} failed:\n{}{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    out
}

/// The volume generator works and makes what it promises, as the reference tools see it.
#[test]
fn mkvol_makes_volumes_the_reference_accepts() {
    let t = TempDir::new("mkvol");
    let full = mkvol(
        t.path(),
        "full.img",
        &VolSpec {
            size: 16 << 20,
            cluster: Some(512),
            profile: Profile::Full,
            ..VolSpec::default()
        },
    );
    let st = run(Command::new(require("ntfsfix")).arg("-n").arg(&full));
    assert!(
        st.status.success(),
        "ntfsfix -n: {}",
        String::from_utf8_lossy(&st.stdout)
    );
    let info = run(Command::new(require("ntfsinfo"))
        .args(["-F", "/fragmented.bin"])
        .arg(&full));
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("$ATTRIBUTE_LIST") && info.contains("SPARSE_FILE"),
        "{info}"
    );
    let info = run(Command::new(require("ntfsinfo"))
        .args(["-F", "/small.txt"])
        .arg(&full));
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("'bigads'"),
        "no alternate data stream"
    );

    // A device longer than its volume; a 64 GiB volume that costs little disk.
    let long = mkvol(
        t.path(),
        "long.img",
        &VolSpec {
            profile: Profile::Empty,
            volume_size: Some(50_000_000),
            ..VolSpec::default()
        },
    );
    let big = mkvol(
        t.path(),
        "big.img",
        &VolSpec {
            size: 64 << 30,
            cluster: None,
            ..VolSpec::default()
        },
    );
    for (img, volume, device) in [
        (&long, "49995776", "67108864"),
        (&big, "68719472640", "68719476736"),
    ] {
        let o = run(Command::new(require("ntfsclone"))
            .args(["-s", "-O", "/dev/null"])
            .arg(img));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{img:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains(&format!("Current volume size: {volume} bytes")),
            "{img:?}: {out}"
        );
        assert!(
            out.contains(&format!("Current device size: {device} bytes")),
            "{img:?}: {out}"
        );
    }
    let used_kib = run(Command::new("du").arg("-k").arg(&big));
    let used_kib: u64 = String::from_utf8_lossy(&used_kib.stdout)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        used_kib < 256 * 1024,
        "64 GiB volume uses {used_kib} KiB on disk"
    );
}

/// A mount, unmounted on drop: an ntfs-3g FUSE mount of a volume file ([`Mount::ntfs3g`]) or
/// whatever mount(8) mounts ([`Mount::new`]: tmpfs, a loop device).
///
/// ntfs-3g runs as our child (`no_detach`), so that the unmount can wait until it has written
/// the volume out and exited: a plain `umount` returns before the daemon is done, and FUSE keeps
/// a mount busy for a while after the last close. A busy mount is retried for 30 s, then
/// unmounted lazily and reported (a panic, unless the test is already failing): never leaves a
/// mount behind.
pub(crate) struct Mount {
    /// The mount point.
    pub(crate) mnt: PathBuf,
    child: Option<std::process::Child>,
}

impl Mount {
    /// Mounts the NTFS volume file `vol` on `mnt` (created if missing) with ntfs-3g, adding
    /// `opts` to its `-o` options (e.g. `streams_interface=windows`: ADS as `file:stream`).
    pub(crate) fn ntfs3g(vol: &Path, mnt: &Path, opts: &[&str]) -> Mount {
        std::fs::create_dir_all(mnt).unwrap();
        let opts = [&["no_detach"][..], opts].concat().join(",");
        let child = Command::new(require("ntfs-3g"))
            .args(["-o", &opts])
            .arg(vol)
            .arg(mnt)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("ntfs-3g {vol:?}: {e}"));
        let mut m = Mount {
            mnt: mnt.to_path_buf(),
            child: Some(child),
        };
        for _ in 0..200 {
            if is_mountpoint(mnt) {
                return m;
            }
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    m.child = None;
                    panic!("ntfs-3g -o {opts} could not mount {vol:?}: {st}");
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("ntfs-3g did not mount {vol:?} within 10 s");
    }

    /// `mount ARGS MNT` (`mnt` created if missing), e.g. `&["-t", "tmpfs", "-o", "size=2m",
    /// "tmpfs"]` or `&["-o", "ro", "/dev/loop0"]`.
    pub(crate) fn new(args: &[&str], mnt: &Path) -> Mount {
        std::fs::create_dir_all(mnt).unwrap();
        let o = run(Command::new(require("mount")).args(args).arg(mnt));
        assert!(
            o.status.success(),
            "mount {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Mount {
            mnt: mnt.to_path_buf(),
            child: None,
        }
    }

    /// Unmounts now (also done on drop); panics if the mount cannot be released.
    pub(crate) fn unmount(mut self) {
        self.release();
    }

    fn release(&mut self) {
        let mut ok = !is_mountpoint(&self.mnt);
        for _ in 0..150 {
            if ok {
                break;
            }
            let _ = Command::new("umount")
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status();
            ok = !is_mountpoint(&self.mnt);
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        if let Some(mut c) = self.child.take() {
            let exited = (0..200).any(|_| {
                let done = matches!(c.try_wait(), Ok(Some(_)));
                if !done {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                done
            });
            if !exited {
                let _ = c.kill();
                let _ = c.wait();
                if !std::thread::panicking() {
                    panic!("ntfs-3g did not exit after unmounting {:?}", self.mnt);
                }
            }
        }
        if !ok && !std::thread::panicking() {
            panic!("{:?} stayed busy; lazily unmounted", self.mnt);
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.release();
    }
}

/// True when `p` is a mount point (listed in /proc/self/mounts).
pub(crate) fn is_mountpoint(p: &Path) -> bool {
    let Ok(canon) = p.canonicalize() else {
        return false;
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .any(|m| Path::new(&m.replace("\\040", " ")) == canon)
}

/// Data extents `(start, end)` of a (sparse) file, from SEEK_DATA/SEEK_HOLE.
pub(crate) fn data_extents(f: &std::fs::File) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom};
    let len = f.metadata().unwrap().len();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let Ok(start) = seek(f, SeekFrom::Data(pos)) else {
            break;
        };
        let end = seek(f, SeekFrom::Hole(start)).unwrap_or(len);
        out.push((start, end));
        pos = end;
    }
    out
}

/// Asserts that two files hold the same bytes (holes read as zeros), reading only their data
/// extents: a restored 128 GiB sparse volume is compared in seconds, not minutes.
pub(crate) fn same_sparse(a: &Path, b: &Path) {
    use std::os::unix::fs::FileExt;
    let fa = std::fs::File::open(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
    let fb = std::fs::File::open(b).unwrap_or_else(|e| panic!("{b:?}: {e}"));
    let (la, lb) = (fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    assert_eq!(la, lb, "{a:?} and {b:?} differ in length");
    let mut ranges: Vec<(u64, u64)> = data_extents(&fa);
    ranges.extend(data_extents(&fb));
    ranges.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    for (s, e) in merged {
        let mut off = s;
        while off < e {
            let n = ((e - off) as usize).min(ba.len());
            fa.read_exact_at(&mut ba[..n], off).unwrap();
            fb.read_exact_at(&mut bb[..n], off).unwrap();
            if ba[..n] != bb[..n] {
                let i = ba[..n]
                    .iter()
                    .zip(&bb[..n])
                    .position(|(x, y)| x != y)
                    .unwrap();
                panic!("{a:?} and {b:?} differ at byte {}", off + i as u64);
            }
            off += n as u64;
        }
    }
}

/// Runs `f` over `items` on `threads` threads; returns the failures (panic messages).
pub(crate) fn parallel_map<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) + Sync,
) -> Vec<String> {
    let next = AtomicU32::new(0);
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(it) = items.get(i) else { break };
                if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(it))) {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    out.lock().unwrap().push(msg);
                }
            });
        }
    });
    out.into_inner().unwrap()
}
