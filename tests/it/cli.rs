//! The command line, black-box against the reference: for every case, our binary and
//! `/usr/sbin/ntfsclone` run with the same argv (argv[0] = "ntfsclone", getopt prints it), the
//! same working directory and no stdin, and must give identical stdout, stderr and exit code.
//!
//! The cases end before the volume is opened: option parsing, the post-parse checks 1–12 of
//! spec §2.2, and the routing of the first error of the run to msg_out; what happens after
//! belongs to the mode tests.
use crate::common::{ours, require, run, TempDir};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

fn run_as_ntfsclone(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    run(Command::new(bin)
        .arg0("ntfsclone")
        .current_dir(dir)
        .args(args))
}

/// A directory with an existing file `exists`, a block-device node `blk` and a source-less
/// name `vol` (nothing there), so that checks 10–12 can be reached.
fn fixture() -> TempDir {
    let t = TempDir::new("cli");
    std::fs::write(t.join("exists"), b"x").unwrap();
    let st = run(Command::new(require("mknod"))
        .arg(t.join("blk"))
        .args(["b", "7", "0"]));
    assert!(
        st.status.success(),
        "mknod: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    t
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn compare(cases: &[&[&str]]) {
    let reference = require("ntfsclone");
    let t = fixture();
    let mut failures = Vec::new();
    for args in cases {
        let want = run_as_ntfsclone(&reference, t.path(), args);
        let got = run_as_ntfsclone(Path::new(ours()), t.path(), args);
        if (want.status.code(), &want.stdout, &want.stderr)
            != (got.status.code(), &got.stdout, &got.stderr)
        {
            failures.push(format!(
                "args {args:?}\n=== reference: {}\n=== ours: {}",
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn help_and_version() {
    compare(&[
        &["-h"],
        &["--help"],
        &["--he"],
        &["-V"],
        &["--version"],
        &["--v"],
        &["-h", "--bogus"],
        &["-h", "-V"],
        &["-V", "-h"],
        &["-sV"],
        &["-h", "-o"],
        &["vol", "-o", "x", "-h"],
    ]);
}

#[test]
fn getopt_errors() {
    compare(&[
        &["--bogus"],
        &["--bogus", "-h"],
        &["--d=x"],
        &["--debug"],
        &["-x"],
        &["-s-"],
        &["-W", "foo"],
        &["-R"],
        &["-C"],
        &["-o"],
        &["-so"],
        &["-O"],
        &["--out"],
        &["--overwrite"],
        &["--outpu=a", "--ov"],
        &["--help=x"],
        &["--hel=x"],
        &["--quiet="],
        &["--new-serial=1"],
        &["--new"],
        &["--new=5"],
        &["--n"],
        &["--res"],
        &["--=x"],
        &["--no-c"],
        &["--pro"],
    ]);
}

#[test]
fn bundling_prefixes_and_order() {
    compare(&[
        &[],
        &[""],
        &["-ox"],
        &["-sqo", "x"],
        &["-o-", "-r"],
        &["--out=", "-s"],
        &["--output=x"],
        &["--save", "--outp", "x"],
        &["--no"],
        &["--rescu"],
        &["-d", "-o", "x"],
        &["-n", "-n"],
        &["-f", "-f", "-n"],
        &["-o", "--"],
        &["-s", "-o", "x", "--", "vol"],
        &["-o", "a", "-o", "b"],
        &["-o", "a", "-O", "b", "-h"],
        &["--output=exists", "--overwrite=exists", "vol"],
        &["a", "b", "-o", "x"],
        &["-o", "x", "vol", "extra"],
    ]);
}

#[test]
fn combination_checks() {
    compare(&[
        &["vol"],
        &["-s", "vol"],
        &["-o", "x", "-"],
        &["-s", "-"],
        &["-m", "-r", "-o", "x", "vol"],
        &["-m", "-s", "-r", "-o", "x", "vol"],
        &["-m", "-s", "-r", "-n", "vol"],
        &["-m", "-o", "-", "vol"],
        &["--metadata", "--output", "-", "vol"],
        &["--ignore-fs-check", "-o", "x", "vol"],
        &["--ignore-fs-check", "-s", "-o", "x", "vol"],
        &["-s", "-r", "-o", "x", "vol"],
        &["-s", "-r", "-n", "vol"],
        &["-n", "vol"],
        &["-n", "-s", "vol"],
        &["-n", "-r", "-o", "x", "vol"],
        &["-n", "-r", "-o", "-", "vol"],
        &["-rn", "-O", "exists", "vol"],
    ]);
}

#[test]
fn output_checks() {
    compare(&[
        &["-o", "exists", "vol"],
        &["-s", "-o", "exists", "vol"],
        &["-r", "-o", "exists", "-"],
        &["-o", "exists/x", "vol"],
        &["-O", "exists/x", "vol"],
        &["-o", "blk", "vol"],
        &["-m", "-o", "blk", "vol"],
        &["-m", "-O", "blk", "vol"],
        &["-m", "-s", "-O", "blk", "vol"],
        &["--metadata", "--overwrite=blk", "vol"],
    ]);
}

/// Our extensions parse (and reach the run), and do not change any reference behaviour above.
#[test]
fn extensions_parse() {
    let t = fixture();
    for args in [
        &["--no-checksum", "-o", "exists", "vol"][..],
        &["--progress-fd", "2", "-o", "exists", "vol"],
        &["--progress-fd=2", "-o", "exists", "vol"],
    ] {
        let o = run_as_ntfsclone(Path::new(ours()), t.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("ERROR: Output file 'exists' already exists."),
            "{args:?}: {}",
            show(&o)
        );
    }
    let o = run_as_ntfsclone(Path::new(ours()), t.path(), &["--progress-fd", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(
            "ntfsclone v2022.10.3 (libntfs-3g)\n\
             ntfsclone: option '--progress-fd' needs a file descriptor number, not 'x'\n\nUsage:"
        ),
        "{}",
        show(&o)
    );
}

/// Errors of the run itself go to msg_out: stdout, or stderr when the output is `-`. These
/// cases pass every option check and fail when the source is opened.
#[test]
fn run_errors_go_to_msg_out() {
    compare(&[
        &["-o", "x", "vol"],
        &["-o", "-", "vol"],
        &["-s", "-o", "-", "vol"],
        &["-m", "-s", "-o", "-", "vol"],
        &["-n", "-r", "vol"],
        &["-r", "-o", "x", "vol"],
        &["-r", "-o", "-", "vol"],
        &["-o", "x", ""],
        &["-O", "exists", "-s", "vol"],
        &["--ignore-fs-check", "--rescue", "-o", "x", "vol"],
        &["-m", "--ignore-fs-check", "-o", "x", "vol"],
    ]);
}
