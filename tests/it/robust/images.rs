//! Bad images: a wrong magic or version, absurd header fields, truncation (from a file and
//! from a pipe), unknown records and gaps past the end of the volume.
use super::{baseline, refused, s};
use crate::common::{require, run, run_ours, TempDir};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Restores `img` with `args` (the image path appended), feeding it through a pipe when
/// `piped`; returns the output.
fn restore(img: &[u8], dir: &Path, args: &[&str], piped: bool) -> Output {
    let p = dir.join("in.img");
    fs::write(&p, img).unwrap();
    let mut c = Command::new(crate::common::ours());
    c.args(args);
    if piped {
        c.arg("-").stdin(Stdio::piped());
    } else {
        c.arg(&p).stdin(Stdio::null());
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if piped {
        let mut w = child.stdin.take().unwrap();
        let data = img.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    child.wait_with_output().unwrap()
}

/// Peak RSS in KiB of `cmd` (GNU time), with its output.
fn peak_rss(args: &[&str]) -> (u64, Output) {
    let t = TempDir::new("robust-rss");
    let f = t.join("time");
    let o = run(Command::new(require("time"))
        .args(["-f", "%M", "-o", s(&f), crate::common::ours()])
        .args(args));
    let kib = fs::read_to_string(&f)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (kib, o)
}

#[test]
fn bad_images_end_with_a_clear_message() {
    let t = TempDir::new("robust-img");
    let d = t.path();
    let vol = baseline(&t);
    let img_path = d.join("good.img");
    assert!(
        run_ours(&["-s", "--no-checksum", "-o", s(&img_path), s(&vol)])
            .status
            .success()
    );
    let img = fs::read(&img_path).unwrap();
    let out = d.join("out.img");
    let ro = ["-r", "-o", s(&out)];
    let rn = ["-r", "-n"];

    let mut m = img.clone();
    m[5] = b'X';
    refused(
        &restore(&m, d, &rn, false),
        &["ERROR: Input file is not an image! (invalid magic)"],
        &[],
    );
    assert!(!out.exists());
    let mut m = img.clone();
    m[16] = 200;
    refused(
        &restore(&m, d, &ro, true),
        &["ERROR: Do not know how to handle image format version 200.1."],
        &[],
    );
    assert!(!out.exists(), "output created for an unreadable image");
    for cs in [0u32, 3, 4095, 1 << 30] {
        let mut m = img.clone();
        m[18..22].copy_from_slice(&cs.to_le_bytes());
        refused(
            &restore(&m, d, &ro, false),
            &[&format!(
                "ERROR: Corrupt image header: cluster size {cs} is not a power of two"
            )],
            &[],
        );
        assert!(!out.exists());
    }
    // Absurd cluster counts: refused, or read without allocating for them.
    let mut m = img.clone();
    m[30..38].copy_from_slice(&(1u64 << 60).to_le_bytes());
    refused(
        &restore(&m, d, &rn, false),
        &["ERROR: Corrupt image header"],
        &[],
    );
    let mut m = img.clone();
    m[30..38].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let p = d.join("huge.img");
    fs::write(&p, &m).unwrap();
    let (kib, o) = peak_rss(&["-r", "-n", s(&p)]);
    refused(&o, &["ERROR: Short image file"], &[]);
    assert!(
        kib < 128 * 1024,
        "peak RSS {kib} KiB for a claimed 2^40 clusters"
    );

    // Truncated: file and stdin, inside the header and inside the stream.
    for cut in [30usize, 48, 56 + 4096 / 2, img.len() / 2, img.len() - 1] {
        for piped in [false, true] {
            let _ = fs::remove_file(&out);
            let o = restore(&img[..cut], d, &ro, piped);
            refused(
                &o,
                &[
                    "ERROR: Short image file: ",
                    &format!("at byte offset {cut} "),
                ],
                &[],
            );
        }
    }
    // An unknown record type, and a gap running past the end of the volume.
    let cs = 4096;
    let mut p = 56;
    while img[p] == 1 {
        p += 1 + cs;
    }
    let mut m = img.clone();
    m[p] = 2;
    refused(
        &restore(&m, d, &rn, false),
        &[&format!(
            "ERROR: Invalid command code 2 at input offset 0x{p:x}"
        )],
        &[],
    );
    let mut m = img.clone();
    m[p + 1..p + 9].copy_from_slice(&(1i64 << 50).to_le_bytes());
    refused(
        &restore(&m, d, &rn, true),
        &["ERROR: restore_image: corrupt image at input offset -10"],
        &[],
    );
    m[p + 1..p + 9].copy_from_slice(&i64::MIN.to_le_bytes());
    refused(
        &restore(&m, d, &rn, false),
        &[&format!("corrupt image at input offset {p}")],
        &[],
    );
}
