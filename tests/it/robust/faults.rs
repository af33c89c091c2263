//! Faults injected into system calls with strace: EINTR is retried without a trace in the
//! result, EIO while copying and ENOSPC while writing end with the reference's messages.
use super::{baseline, refused, s, text};
use crate::common::{require, run, run_ours, TempDir};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// Runs our binary under strace with faults injected into system calls.
fn injected(spec: &[&str], args: &[&str]) -> Output {
    let mut c = Command::new(require("strace"));
    c.args([
        "-qq",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "trace=read,pread64,preadv,write,pwrite64,writev,pwritev",
    ]);
    for s in spec {
        c.args(["-e", &format!("inject={s}")]);
    }
    run(c.arg(crate::common::ours()).args(args))
}

#[test]
fn interrupted_calls_are_retried_and_io_errors_reported() {
    let t = TempDir::new("robust-eintr");
    let d = t.path();
    let vol = baseline(&t);
    let want = d.join("want");
    assert!(run_ours(&["-s", "--no-checksum", "-o", s(&want), s(&vol)])
        .status
        .success());
    let want_bytes = fs::read(&want).unwrap();
    // EINTR on every other read and write (after the dynamic loader's own calls).
    let got = d.join("got");
    let o = injected(
        &[
            "pread64:error=EINTR:when=10+2",
            "preadv:error=EINTR:when=1+2",
            "write:error=EINTR:when=2+2",
            "writev:error=EINTR:when=1+2",
        ],
        &["-s", "--no-checksum", "-o", s(&got), s(&vol)],
    );
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        fs::read(&got).unwrap() == want_bytes,
        "save with EINTR differs"
    );
    let r1 = d.join("r1");
    let r2 = d.join("r2");
    assert!(run_ours(&["-r", "-o", s(&r1), s(&want)]).status.success());
    let o = injected(
        &[
            "read:error=EINTR:when=3+2",
            "pwrite64:error=EINTR:when=1+2",
            "pwritev:error=EINTR:when=1+2",
        ],
        &["-r", "-o", s(&r2), s(&want)],
    );
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        fs::read(&r1).unwrap() == fs::read(&r2).unwrap(),
        "restore with EINTR differs"
    );
    // A disk that fails while copying: the reference's box and message, no image claimed.
    // A disk that fails while copying (the second large read, after the walk succeeded): the
    // reference's box and message, no image claimed.
    let bad = d.join("bad");
    let save = ["-s", "-o", s(&bad), s(&vol)];
    // Every read from the last large one on fails (the copy retries cluster by cluster first).
    let reads = ["pread64", "preadv"];
    let (_, _, counts) = large_transfer(d, &reads, &save, Which::Last);
    let specs: Vec<String> = reads
        .iter()
        .zip(&counts)
        .map(|(c, k)| format!("{c}:error=EIO:when={}+", k + 1))
        .collect();
    let o = injected(&specs.iter().map(String::as_str).collect::<Vec<_>>(), &save);
    let _ = fs::remove_file(&bad);
    refused(&o, &["Disk is faulty, can't make full backup!"], &[]);
    // ENOSPC on the first large write of the image (message writes are small).
    let (call, n, _) = large_transfer(d, &["write", "writev"], &save, Which::First);
    let o = injected(&[&format!("{call}:error=ENOSPC:when={n}")], &save);
    let _ = fs::remove_file(&bad);
    refused(&o, &["ERROR(28): ", "No space left on device"], &[]);
}

enum Which {
    First,
    Last,
}

/// The first or last call of `syscalls` moving at least 64 KiB in a traced run of our binary
/// with `args` (the output in `args` is removed afterwards): its name, its 1-based index among
/// the calls of that name (strace's `when=` counts per system call), and how many calls of each
/// of `syscalls` came before it. The last large read of a save is a data read of the copy phase
/// (the walk's metadata reads come first).
fn large_transfer(
    d: &Path,
    syscalls: &[&str],
    args: &[&str],
    which: Which,
) -> (String, usize, Vec<usize>) {
    let log = d.join("strace.log");
    let _ = fs::remove_file(args[2]);
    let st = run(Command::new(require("strace"))
        .args([
            "-qq",
            "-f",
            "-e",
            &format!("trace={}", syscalls.join(",")),
            "-o",
            s(&log),
            crate::common::ours(),
        ])
        .args(args));
    assert!(st.status.success(), "{}", text(&st.stdout));
    let _ = fs::remove_file(args[2]);
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut found = None;
    for l in fs::read_to_string(&log).unwrap().lines() {
        // `pread64(3, "..."..., 557056, 0) = 557056` / `writev(1, [...], 3) = 1048576`
        let Some(name) = l
            .split('(')
            .next()
            .map(|n| n.rsplit(' ').next().unwrap_or(n))
        else {
            continue;
        };
        if !syscalls.contains(&name) {
            continue;
        }
        *seen.entry(name.to_string()).or_insert(0) += 1;
        let moved = l
            .rsplit(" = ")
            .next()
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= 65536);
        if moved {
            let before = syscalls
                .iter()
                .map(|c| seen.get(*c).copied().unwrap_or(0) - usize::from(*c == name))
                .collect();
            found = Some((name.to_string(), seen[name], before));
            if matches!(which, Which::First) {
                break;
            }
        }
    }
    found.unwrap_or_else(|| panic!("no large transfer by {syscalls:?} in the trace"))
}
