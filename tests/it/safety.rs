//! Data safety: a run whose output is its source (the same file, through a symlink, two loop
//! devices over one file), whose `-r` image lies on a file system inside the output, or whose
//! `--progress-fd` is the output, is refused with exit 1 before anything is written: the source
//! and an existing output stay byte-for-byte the same.
use crate::cmd::{all, bash, s};
use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over `file` (from byte `offset`), detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &Path, offset: u64) -> Loop {
        let o = run(Command::new(require("losetup")).args([
            "-f",
            "--show",
            "-o",
            &offset.to_string(),
            s(file),
        ]));
        assert!(o.status.success(), "losetup {file:?}: {}", all(&o));
        Loop(String::from_utf8(o.stdout).unwrap().trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run(Command::new("losetup").args(["-d", &self.0]));
    }
}

/// Runs our binary; asserts exit 1 with the refusal message, and that every file in `keep`
/// has the bytes it had before.
fn refused(args: &[&str], keep: &[&Path], what: &str) {
    let before: Vec<Vec<u8>> = keep.iter().map(|p| fs::read(p).unwrap()).collect();
    let o = run_ours(args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", all(&o));
    assert!(all(&o).contains(what), "{args:?}: {}", all(&o));
    for (p, b) in keep.iter().zip(before) {
        assert!(fs::read(p).unwrap() == b, "{args:?} changed {p:?}");
    }
}

const SAME: &str = "refusing to write over the source";

fn volume(t: &TempDir) -> PathBuf {
    mkvol(t.path(), "vol", &VolSpec::empty(32 << 20))
}

#[test]
fn output_that_is_the_source_file_is_refused() {
    let t = TempDir::new("safety-files");
    let vol = volume(&t);
    let link = t.join("link");
    std::os::unix::fs::symlink(&vol, &link).unwrap();
    let img = t.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let (v, l, i) = (s(&vol), s(&link), s(&img));
    refused(&["-O", v, v], &[&vol], SAME);
    refused(&["-O", l, v], &[&vol], SAME);
    refused(&["-s", "-O", l, v], &[&vol], SAME);
    refused(&["-m", "-O", v, l], &[&vol], SAME);
    refused(&["-m", "-s", "-O", l, v], &[&vol], SAME);
    refused(&["-r", "-O", i, i], &[&img], SAME);
    // An existing other output is written as before.
    let other = t.join("other");
    fs::write(&other, b"x").unwrap();
    assert!(run_ours(&["-O", s(&other), v]).status.success());
}

#[test]
fn loop_devices_over_one_file_are_refused() {
    let t = TempDir::new("safety-loops");
    let vol = volume(&t);
    let img = t.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let (a, b) = (Loop::new(&vol, 0), Loop::new(&vol, 0));
    let li = Loop::new(&img, 0);
    let v = s(&vol);
    refused(&["-O", &a.0, &b.0], &[&vol], SAME);
    refused(&["-O", v, &a.0], &[&vol], SAME);
    refused(&["-O", &a.0, v], &[&vol], SAME);
    refused(&["-s", "-O", v, &b.0], &[&vol], SAME);
    refused(&["-m", "-f", "-O", &a.0, &a.0], &[&vol], SAME);
    refused(&["-r", "-O", &li.0, s(&img)], &[&img], SAME);
    // A loop device over a range of the file (offset 1 MiB) still overlaps the file.
    let c = Loop::new(&vol, 1 << 20);
    refused(&["-O", &c.0, v], &[&vol], SAME);
}

/// `-r` of an image that lies on a file system inside the output: the image is on ext4 in a
/// loop device over bytes 1 MiB.. of `disk` (like a partition), the output a loop device over
/// the whole `disk`, which is not itself mounted.
#[test]
fn image_inside_the_restore_target_is_refused() {
    require("mkfs.ext4");
    let t = TempDir::new("safety-inside");
    let vol = volume(&t);
    let disk = t.join("disk");
    let head: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    fs::write(&disk, &head).unwrap();
    fs::File::options()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(80 << 20)
        .unwrap();
    let part = Loop::new(&disk, 1 << 20);
    let o = run(Command::new(require("mkfs.ext4")).args(["-q", "-F", &part.0]));
    assert!(o.status.success(), "mkfs.ext4: {}", all(&o));
    let m = Mount::new(&[&part.0], &t.join("mnt"));
    let img = m.mnt.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let whole = Loop::new(&disk, 0);
    let saved = fs::read(&img).unwrap();
    let o = run_ours(&["-r", "-O", &whole.0, s(&img)]);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(
        all(&o).contains("lies on a file system inside the output"),
        "{}",
        all(&o)
    );
    assert!(fs::read(&img).unwrap() == saved, "the image changed");
    let mut now = vec![0u8; 1 << 20];
    use std::io::Read;
    fs::File::open(&disk).unwrap().read_exact(&mut now).unwrap();
    assert!(now == head, "the disk outside the file system was written");
    m.unmount();
}

#[test]
fn progress_fd_on_the_output_is_refused() {
    let t = TempDir::new("safety-progress");
    let vol = volume(&t);
    let (v, x) = (s(&vol), t.join("x"));
    let before = fs::read(&vol).unwrap();
    // The same descriptor as `-o -`, and another descriptor on the same pipe.
    for (args, redirect) in [
        ("-o - --progress-fd 1", ""),
        ("-o - --progress-fd 3", "3>&1"),
        ("-s -o - --progress-fd 3", "3>&1"),
    ] {
        let o = bash(&format!(
            "set -o pipefail; {} {args} {v} {redirect} | cat > {}",
            ours(),
            s(&x)
        ));
        assert_eq!(o.status.code(), Some(1), "{args}: {}", all(&o));
        assert!(all(&o).contains("--progress-fd"), "{args}: {}", all(&o));
        assert_eq!(fs::metadata(&x).unwrap().len(), 0, "{args}: wrote");
    }
    // The same open file as `-O FILE`, or as the source.
    let out = t.join("out");
    fs::write(&out, b"keep me").unwrap();
    for (args, file) in [
        ("-O OUT --progress-fd 3", &out),
        ("-O OUT --progress-fd 3", &vol),
    ] {
        let args = args.replace("OUT", s(&out));
        let o = bash(&format!("{} {args} {v} 3>>{}", ours(), s(file)));
        assert_eq!(o.status.code(), Some(1), "{args}: {}", all(&o));
        assert!(all(&o).contains("--progress-fd 3 is the"), "{}", all(&o));
        assert_eq!(fs::read(&out).unwrap(), b"keep me");
    }
    assert!(fs::read(&vol).unwrap() == before, "the source changed");
}
