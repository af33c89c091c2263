//! Messages scripts compare, side by side with the reference: failed writes to a full file
//! system (`Write failed`, `write_all`, `fflush`), the free-space check's sizes (rounded up),
//! the lines of `-m -o FILE` after its sync, and a `--progress-fd` that is not open.
use crate::cmd::{all, bash, s};
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ERROR` line of a run (its messages may be on stdout or stderr).
fn error_line(o: &Output) -> String {
    all(o)
        .split(['\n', '\r'])
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no ERROR line: {}", all(o)))
        .trim_start_matches(|c: char| c != 'E')
        .to_string()
}

/// A 64 MiB volume (about 3 MB in use) and its image.
fn volume(t: &TempDir) -> (PathBuf, PathBuf) {
    let vol = mkvol(t.path(), "vol", &VolSpec::empty(64 << 20));
    let img = t.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol), "--no-checksum"])
        .status
        .success());
    (vol, img)
}

/// Runs `cmd` (with `BIN` replaced by each tool) against an empty output in `full`, a 1 MiB
/// tmpfs; asserts exit 1 and the same ERROR line for both tools, which must contain `want`.
fn both_fail(full: &Path, cmd: &str, want: &str) {
    let mut lines = Vec::new();
    for bin in [ours().to_string(), s(&require("ntfsclone")).to_string()] {
        let _ = std::fs::remove_file(full.join("o"));
        let o = bash(&format!("set -o pipefail; {}", cmd.replace("BIN", &bin)));
        assert_eq!(o.status.code(), Some(1), "{bin}: {cmd}: {}", all(&o));
        lines.push(error_line(&o));
    }
    assert_eq!(lines[0], lines[1], "{cmd}");
    assert!(lines[0].contains(want), "{cmd}: {}", lines[0]);
}

#[test]
fn full_file_system_messages_match_the_reference() {
    let t = TempDir::new("messages-full");
    let (vol, img) = volume(&t);
    let m = Mount::new(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &t.join("full"));
    let (full, v, i) = (&m.mnt, s(&vol), s(&img));
    let out = full.join("o");
    let o = s(&out);
    both_fail(
        full,
        &format!("BIN -r -O {o} {i}"),
        "ERROR(28): Write failed: No space left on device",
    );
    both_fail(
        full,
        &format!("BIN -r -o - {i} > {o}"),
        "ERROR(28): write_all: No space left on device",
    );
    both_fail(
        full,
        &format!("BIN -o - {v} > {o}"),
        "ERROR(28): write_all: No space left on device",
    );
    both_fail(
        full,
        &format!("BIN -s -o - {v} > {o}"),
        "ERROR(28): fflush: No space left on device",
    );
    // The free-space check: both sizes rounded up (1 MiB free is "2 MB").
    both_fail(
        full,
        &format!("BIN -s -O {o} {v}"),
        "ERROR: Destination doesn't have enough free space: 2 MB < 3 MB",
    );
    both_fail(
        full,
        &format!("BIN -O {o} {v}"),
        "ERROR: Destination doesn't have enough free space: 2 MB < 3 MB",
    );
    // `-m -s` to a full file system: the reference exits 0 with a truncated image, ours
    // reports the failed write (an intentional difference).
    let _ = bash(&format!(
        "cat /dev/zero > {} 2>/dev/null",
        s(&full.join("fill"))
    ));
    let refr = run_ref(&["-m", "-s", "-O", o, v]);
    assert!(refr.status.success(), "{}", all(&refr));
    let mine = run_ours(&["-m", "-s", "-O", o, v]);
    assert_eq!(mine.status.code(), Some(1), "{}", all(&mine));
    assert_eq!(
        error_line(&mine),
        "ERROR(28): fflush: No space left on device"
    );
    drop(m);
}

/// A raw clone to a file that passes the free-space check (root's reserved blocks of ext4
/// count as free) and then runs out of space, as an unprivileged user.
#[test]
fn raw_clone_out_of_space_matches_the_reference() {
    require("mkfs.ext4");
    require("setpriv");
    let t = TempDir::new("messages-reserved");
    let (vol, _) = volume(&t);
    let e4 = t.join("e4");
    std::fs::File::create(&e4)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let o = run(Command::new(require("mkfs.ext4")).args(["-q", "-F", "-m", "40", s(&e4)]));
    assert!(o.status.success(), "mkfs.ext4: {}", all(&o));
    let m = Mount::new(&["-o", "loop", s(&e4)], &t.join("mnt"));
    let p = |f: &Path, mode: &str| {
        assert!(run(Command::new("chmod").args([mode, s(f)]))
            .status
            .success())
    };
    p(&m.mnt, "777");
    p(t.path(), "755");
    p(&vol, "644");
    let out = m.mnt.join("o");
    both_fail(
        &m.mnt,
        &format!(
            "setpriv --reuid 65534 --regid 65534 --clear-groups BIN -O {} {}",
            s(&out),
            s(&vol)
        ),
        "ERROR(28): Write failed: No space left on device",
    );
    drop(m);
}

/// `-m -o FILE` prints what the reference prints, the lines after its sync included.
#[test]
fn metadata_clone_lines_match_the_reference() {
    let t = TempDir::new("messages-m");
    let vol = mkvol(
        t.path(),
        "vol",
        &VolSpec {
            profile: Profile::Basic,
            ..VolSpec::empty(32 << 20)
        },
    );
    let (a, b) = (t.join("a"), t.join("b"));
    let ours = run_ours(&["-m", "-o", s(&a), s(&vol)]);
    let refr = run_ref(&["-m", "-o", s(&b), s(&vol)]);
    assert!(ours.status.success() && refr.status.success());
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(text(&ours), text(&refr));
    assert!(text(&ours).contains("Syncing ...\nNTFS volume version: 3.1\nCluster size"));
}

#[test]
fn progress_fd_not_open_says_bad_file_descriptor() {
    let t = TempDir::new("messages-badfd");
    let (vol, _) = volume(&t);
    let img = t.join("i2");
    let o = bash(&format!(
        "{} -s -o {} {} --progress-fd 3 3>&-",
        ours(),
        s(&img),
        s(&vol)
    ));
    assert!(o.status.success(), "{}", all(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("WARNING: --progress-fd 3: cannot use descriptor: bad file descriptor"),
        "{err}"
    );
}

/// A volume whose root directory holds `hiberfil.sys` beginning with `head` (padded with
/// zeros to `len` bytes: resident when small, non-resident when large).
fn hiber_volume(t: &TempDir, name: &str, head: &[u8], len: usize) -> PathBuf {
    let vol = mkvol(t.path(), name, &VolSpec::empty(32 << 20));
    let m = Mount::ntfs3g(&vol, &t.join(&format!("mnt-{name}")), &[]);
    let mut data = head.to_vec();
    data.resize(len, 0);
    std::fs::write(m.mnt.join("hiberfil.sys"), &data).unwrap();
    m.unmount();
    vol
}

const HIBERNATED: &str = "WARNING: Windows is hibernated on this volume";

/// A hibernated volume is saved and cloned as by the reference (same stdout), with one
/// warning line on stderr; a zeroed or resumed (`wake`) hiberfil.sys gives none.
#[test]
fn hibernated_volume_warns_on_stderr() {
    let t = TempDir::new("messages-hiber");
    let cases: [(&str, &[u8], usize, bool); 5] = [
        ("hibr", b"hibr", 1 << 20, true),
        ("upper", b"HIBR", 64 << 10, true),
        ("resident", b"hibr", 100, true),
        ("zero", b"", 1 << 20, false),
        ("wake", b"wake", 1 << 20, false),
    ];
    for (name, head, len, warns) in cases {
        let vol = hiber_volume(&t, name, head, len);
        for mode in ["-s", "raw"] {
            let run_both = |bin: &dyn Fn(&[&str]) -> Output, tag: &str| {
                let out = t.join(&format!("{name}.{tag}"));
                let mut args = if mode == "-s" { vec!["-s"] } else { vec![] };
                args.extend(["-o", s(&out), s(&vol)]);
                let o = bin(&args);
                let _ = std::fs::remove_file(&out);
                assert!(o.status.success(), "{name} {mode}: {}", all(&o));
                o
            };
            let ours = run_both(&|a: &[&str]| run_ours(a), "ours");
            let refr = run_both(&|a: &[&str]| run_ref(a), "ref");
            let norm = |o: &Output, tag: &str| {
                String::from_utf8_lossy(&o.stdout).replace(&format!("{name}.{tag}"), "OUT")
            };
            assert_eq!(norm(&ours, "ours"), norm(&refr, "ref"), "{name} {mode}");
            let err = String::from_utf8_lossy(&ours.stderr);
            assert_eq!(
                err.matches(HIBERNATED).count(),
                usize::from(warns),
                "{name} {mode}: {err}"
            );
            assert!(!norm(&ours, "ours").contains("hibernated"));
        }
    }
}

/// Differences the README lists, checked side by side: a BitLocker volume gets our line
/// instead of `NTFS signature is missing.` (the ERROR lines are the reference's), and a
/// reader of `-o -` that goes away ends the run with exit 1 instead of SIGPIPE (141).
#[test]
fn bitlocker_and_closed_pipe_differences() {
    let t = TempDir::new("messages-diffs");
    let (vol, _) = volume(&t);
    let bl = t.join("bl");
    let mut d = std::fs::read(&vol).unwrap();
    d[3..11].copy_from_slice(b"-FVE-FS-");
    std::fs::write(&bl, &d).unwrap();
    let (mine, refr) = (
        run_ours(&["-s", "-o", s(&t.join("o1")), s(&bl)]),
        run_ref(&["-s", "-o", s(&t.join("o2")), s(&bl)]),
    );
    assert_eq!((mine.status.code(), refr.status.code()), (Some(1), Some(1)));
    assert_eq!(
        String::from_utf8_lossy(&mine.stdout),
        String::from_utf8_lossy(&refr.stdout)
    );
    let (oe, re) = (
        String::from_utf8_lossy(&mine.stderr),
        String::from_utf8_lossy(&refr.stderr),
    );
    assert!(re.contains("NTFS signature is missing."), "{re}");
    assert!(oe.contains("encrypted with BitLocker"), "{oe}");

    let status = |bin: &str| {
        let o = bash(&format!(
            "{bin} -o - {} 2>/dev/null | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}}",
            s(&vol)
        ));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(status(s(&require("ntfsclone"))), "141");
    assert_eq!(status(ours()), "1");
}
