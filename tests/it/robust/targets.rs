//! Outputs: existing files are never touched without `--overwrite`, small or mounted block
//! devices are refused before any write, a full file system and a closed stdout pipe end with
//! an error, not a partial success.
use super::{baseline, refused, s, text, Sentinel};
use crate::common::{require, run, run_ours, Mount, TempDir};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn existing_outputs_are_never_touched_without_overwrite() {
    let t = TempDir::new("robust-exist");
    let d = t.path();
    let vol = baseline(&t);
    let img = d.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let keep = Sentinel::new(d.join("existing"));
    for args in [
        vec!["-o", s(&keep.path), s(&vol)],
        vec!["-s", "-o", s(&keep.path), s(&vol)],
        vec!["-r", "-o", s(&keep.path), s(&img)],
        vec!["-so", s(&keep.path), s(&vol)],
        vec![&format!("--output={}", s(&keep.path)), "-r", s(&img)],
    ] {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        let o = run_ours(&args);
        let msg = format!("ERROR: Output file '{}' already exists.", s(&keep.path));
        refused(&o, &[], &[&msg, "Use option --overwrite"]);
        keep.intact();
    }
}

/// A loop device over a file, detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &Path) -> Loop {
        let o = run(Command::new(require("losetup"))
            .args(["-f", "--show"])
            .arg(file));
        assert!(o.status.success(), "losetup: {}", text(&o.stderr));
        Loop(text(&o.stdout).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn small_or_mounted_block_devices_are_refused_before_any_write() {
    let t = TempDir::new("robust-blk");
    let d = t.path();
    let vol = baseline(&t);
    let img = d.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());

    // Smaller than the volume: refused for clone and restore, not a byte written.
    let small = d.join("small");
    fs::write(&small, vec![0xAAu8; 4 << 20]).unwrap();
    let dev = Loop::new(&small);
    for args in [
        vec!["-O", &dev.0, s(&vol)],
        vec!["-r", "-O", &dev.0, s(&img)],
    ] {
        let o = run_ours(&args);
        refused(
            &o,
            &["ERROR: Output device is too small (4194304) to fit the NTFS image (10482176)."],
            &[],
        );
    }
    let mut b = vec![0u8; 4 << 20];
    fs::File::open(&dev.0).unwrap().read_exact(&mut b).unwrap();
    assert!(
        b.iter().all(|&x| x == 0xAA),
        "the small device was written to"
    );

    // Mounted target (read-only ext4): refused, unchanged.
    let big = d.join("big");
    fs::write(&big, vec![0u8; 16 << 20]).unwrap();
    let st = run(Command::new(require("mkfs.ext4"))
        .args(["-q", "-F"])
        .arg(&big));
    assert!(st.status.success(), "mkfs.ext4: {}", text(&st.stderr));
    let bdev = Loop::new(&big);
    let before = fs::read(&big).unwrap();
    {
        let _m = Mount::new(&["-o", "ro", &bdev.0], &d.join("mnt"));
        for args in [
            vec!["-O", &bdev.0, s(&vol)],
            vec!["-r", "-O", &bdev.0, s(&img)],
        ] {
            let msg = format!(
                "ERROR: Device '{}' is mounted. You must 'umount' it first.",
                bdev.0
            );
            refused(&run_ours(&args), &[&msg], &[]);
        }
    }
    assert!(
        fs::read(&big).unwrap() == before,
        "the mounted device was written to"
    );
}

#[test]
fn no_space_left_on_the_output_is_an_error() {
    let t = TempDir::new("robust-full");
    let d = t.path();
    let vol = baseline(&t);
    let img = d.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let _m = Mount::new(&["-t", "tmpfs", "-o", "size=2m", "tmpfs"], &d.join("full"));
    let full = d.join("full");
    // Clone and save: refused by the free-space check before copying.
    let o = run_ours(&["-o", s(&full.join("clone")), s(&vol)]);
    refused(
        &o,
        &["ERROR: Destination doesn't have enough free space"],
        &[],
    );
    let o = run_ours(&["-s", "-o", s(&full.join("save")), s(&vol)]);
    refused(
        &o,
        &["ERROR: Destination doesn't have enough free space"],
        &[],
    );
    // Restore has no such check: the write fails with ENOSPC.
    let o = run_ours(&["-r", "-o", s(&full.join("restore")), s(&img)]);
    refused(&o, &["ERROR(28): ", "No space left on device"], &[]);
    // Image to stdout redirected into the full file system.
    let f = fs::File::create(full.join("stdout")).unwrap();
    let o = Command::new(crate::common::ours())
        .args(["-s", "-o", "-", s(&vol)])
        .stdin(Stdio::null())
        .stdout(f)
        .output()
        .unwrap();
    refused(&o, &[], &["ERROR(28): ", "No space left on device"]);
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let t = TempDir::new("robust-pipe");
    let d = t.path();
    let vol = baseline(&t);
    let img = d.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    for args in [
        vec!["-s", "-o", "-", s(&vol)],
        vec!["-o", "-", s(&vol)],
        vec!["-r", "-o", "-", s(&img)],
    ] {
        let mut c = Command::new(crate::common::ours())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 1000];
        c.stdout.take().unwrap().read_exact(&mut head).unwrap();
        // stdout is closed here.
        let o = c.wait_with_output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        let ok = o.status.code() == Some(1) || o.status.signal() == Some(13);
        let se = text(&o.stderr);
        assert!(ok, "{args:?}: status {:?}", o.status);
        assert!(
            !se.contains("panicked") && !se.contains("Broken pipe"),
            "{args:?}: {se}"
        );
    }
}
