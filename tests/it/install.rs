//! `make install` / `make uninstall` into a temporary DESTDIR, and the man page as `man -l`
//! renders it (groff's warnings enabled: any warning fails the test).
use crate::common::*;
use std::process::Command;

#[test]
fn make_install_and_uninstall_with_destdir() {
    require("make");
    let dir = TempDir::new("install");
    let destdir = dir.0.join("stage");
    let make = |target: &str| {
        run(Command::new("make")
            .arg("-C")
            .arg(root())
            .args(["--no-print-directory", target, "PREFIX=/usr"])
            .arg(format!("DESTDIR={}", destdir.display())))
    };
    let out = make("install");
    assert!(out.status.success(), "make install: {out:?}");
    let bin = destdir.join("usr/sbin/ntfsclone");
    let page = destdir.join("usr/share/man/man8/ntfsclone.8");
    assert!(
        bin.is_file() && page.is_file(),
        "installed files missing under {destdir:?}"
    );
    // The installed binary is the static one and runs.
    let v = run(Command::new(&bin).arg("--version"));
    assert!(v.status.success(), "{v:?}");
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("ntfsclone v"),
        "{v:?}"
    );
    let file = run(Command::new("file").arg(&bin));
    let what = String::from_utf8_lossy(&file.stdout);
    assert!(
        what.contains("statically linked") || what.contains("static-pie"),
        "{what}"
    );

    let out = make("uninstall");
    assert!(out.status.success(), "make uninstall: {out:?}");
    assert!(!bin.exists() && !page.exists(), "uninstall left files");
}

#[test]
fn man_page_renders_without_warnings() {
    require("man");
    let page = root().join("docs/ntfsclone.8");
    let out = run(Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env_remove("MAN_KEEP_FORMATTING"));
    assert!(out.status.success(), "man -l: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.trim().is_empty(), "man page warnings:\n{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    // Every option of the usage text and every extension is documented.
    for opt in [
        "--output",
        "--overwrite",
        "--save-image",
        "--restore-image",
        "--rescue",
        "--metadata",
        "--no-action",
        "--ignore-fs-check",
        "--new-serial",
        "--new-half-serial",
        "--preserve-timestamps",
        "--quiet",
        "--force",
        "--full-logfile",
        "--help",
        "--version",
        "--no-checksum",
        "--progress-fd",
        "--zstd",
        "--threads",
        "EXIT STATUS",
        "EXAMPLES",
    ] {
        assert!(text.contains(opt), "man page lacks {opt}");
    }
}
