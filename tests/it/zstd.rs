//! Built-in zstd compression (`--zstd[=LEVEL]`, `--threads N`): the compressed image is a
//! standard zstd stream that `zstd -dc` turns into exactly our uncompressed image (trailer
//! included) and that stock ntfsclone restores through a pipe; restore recognises zstd by its
//! magic number from a file, a pipe and stdin (also the zstd tool's own single-frame output);
//! damaged, truncated, foreign and padded streams and a full output device are one clear
//! error each, exit 1.
use crate::cmd::{all, bash, s};
use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", all(o));
}

/// Exit 1, no panic, and the message holds `needle`.
fn refused(o: &Output, needle: &str) {
    let msg = all(o);
    assert_eq!(o.status.code(), Some(1), "{msg}");
    assert!(msg.contains(needle), "wanted {needle:?} in: {msg}");
    assert!(!msg.contains("panicked"), "{msg}");
}

/// A 64 MiB volume with files (the basic profile), its plain image and its restore.
struct Fixture {
    t: TempDir,
    vol: PathBuf,
    plain: PathBuf,
    restored: PathBuf,
}

fn fixture(tag: &str) -> Fixture {
    require("zstd");
    let t = TempDir::new(tag);
    let vol = mkvol(t.path(), "vol", &VolSpec::default());
    let plain = t.join("plain.img");
    ok(&run_ours(&["-s", "-o", s(&plain), s(&vol)]), "plain save");
    let restored = t.join("restored");
    ok(
        &run_ours(&["-r", "-o", s(&restored), s(&plain)]),
        "plain restore",
    );
    Fixture {
        t,
        vol,
        plain,
        restored,
    }
}

impl Fixture {
    fn save_zstd(&self, name: &str, extra: &[&str]) -> PathBuf {
        let z = self.t.join(name);
        let mut args = vec!["-s"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", s(&z), s(&self.vol)]);
        ok(&run_ours(&args), "zstd save");
        z
    }
}

/// `zstd -dc` of `z`, as bytes.
fn zstd_dc(z: &Path) -> Vec<u8> {
    let o = run(Command::new(require("zstd")).args(["-q", "-dc"]).arg(z));
    ok(&o, "zstd -dc");
    o.stdout
}

#[test]
fn round_trips_at_several_levels_and_zstd_dc_gives_the_image() {
    let f = fixture("zstd-levels");
    let plain = fs::read(&f.plain).unwrap();
    let mut sizes = Vec::new();
    for (level, threads) in [("--zstd=1", "1"), ("--zstd", "2"), ("--zstd=19", "3")] {
        let z = f.save_zstd(&format!("img{level}.zst"), &[level, "--threads", threads]);
        assert!(
            zstd_dc(&z) == plain,
            "{level}: zstd -dc differs from the image"
        );
        let size = fs::metadata(&z).unwrap().len();
        assert!(size < plain.len() as u64 / 2, "{level}: {size} bytes");
        sizes.push(size);
        let out = f.t.join(&format!("out{threads}"));
        ok(&run_ours(&["-r", "-o", s(&out), s(&z)]), "zstd restore");
        same_sparse(&out, &f.restored);
        ok(&run_ours(&["-r", "-n", s(&z)]), "-r -n");
    }
    assert!(
        sizes[2] < sizes[0],
        "level 19 not smaller than 1: {sizes:?}"
    );
    // The thread count does not change the bytes.
    let a = f.save_zstd("t1.zst", &["--zstd", "--threads", "1"]);
    let b = f.save_zstd("t4.zst", &["--zstd", "--threads", "4"]);
    assert!(fs::read(a).unwrap() == fs::read(b).unwrap());
}

#[test]
fn stock_ntfsclone_restores_through_zstd_dc() {
    let f = fixture("zstd-stock");
    let z = f.save_zstd("img.zst", &["--zstd"]);
    let out = f.t.join("out");
    let o = bash(&format!(
        "set -o pipefail; zstd -q -dc {} | {} -r -O {} -",
        s(&z),
        s(&require("ntfsclone")),
        s(&out)
    ));
    ok(&o, "zstd -dc | ntfsclone -r");
    same_sparse(&out, &f.restored);
}

#[test]
fn restore_recognises_zstd_from_file_pipe_and_stdin() {
    let f = fixture("zstd-inputs");
    let z = f.save_zstd("img.zst", &["--zstd"]);
    let ours = ours();
    let cases = [
        ("pipe", format!("cat {} | {ours} -r -O OUT -", s(&z))),
        ("stdin", format!("{ours} -r -O OUT - < {}", s(&z))),
        // The zstd tool's own stream from a pipe: one frame without a content size.
        (
            "zstd tool",
            format!(
                "set -o pipefail; {ours} -s -o - {} | zstd -q -T0 -3 | {ours} -r -O OUT -",
                s(&f.vol)
            ),
        ),
        // Concatenated streams are one stream (as for zstd -dc): two halves of the image.
        (
            "two streams",
            format!(
                "set -eo pipefail; head -c 1000000 {p} | zstd -q > {d}/a.zst; \
                 tail -c +1000001 {p} | zstd -q > {d}/b.zst; \
                 cat {d}/a.zst {d}/b.zst | {ours} -r -O OUT -",
                p = s(&f.plain),
                d = s(f.t.path())
            ),
        ),
    ];
    for (what, script) in cases {
        let out = f.t.join(&format!("out-{}", what.replace(' ', "-")));
        ok(&bash(&script.replace("OUT", s(&out))), what);
        same_sparse(&out, &f.restored);
    }
}

/// Offset of the second frame of a compressed image (the first frame's length, read from
/// the seek table at its end).
fn second_frame(z: &[u8]) -> usize {
    let n = z.len();
    let frames = u32::from_le_bytes(z[n - 9..n - 5].try_into().unwrap()) as usize;
    assert!(frames >= 1);
    let table = n - 9 - frames * 8;
    u32::from_le_bytes(z[table..table + 4].try_into().unwrap()) as usize
}

#[test]
fn damaged_streams_are_one_clear_error_each() {
    let f = fixture("zstd-bad");
    // Random data makes more than one 4 MiB frame.
    let big = mkvol(
        f.t.path(),
        "big",
        &VolSpec {
            profile: Profile::Full,
            ..VolSpec::default()
        },
    );
    let zb = f.t.join("big.zst");
    ok(
        &run_ours(&["-s", "--zstd", "-o", s(&zb), s(&big)]),
        "save of the full volume",
    );
    let good = fs::read(&zb).unwrap();
    let second = second_frame(&good);
    assert!(second > 1000 && second < good.len() - 2000, "{second}");
    let out = f.t.join("out");
    let write = |name: &str, bytes: &[u8]| {
        let p = f.t.join(name);
        fs::write(&p, bytes).unwrap();
        p
    };
    let from_file = |p: &Path, extra: &[&str]| {
        let _ = fs::remove_file(&out);
        let mut a = vec!["-r"];
        a.extend_from_slice(extra);
        a.push(s(p));
        run_ours(&a)
    };
    let from_pipe = |p: &Path| bash(&format!("cat {} | {} -r -n -", s(p), ours()));
    let dest = ["-O", s(&out)];

    // A flipped byte inside the second frame: named by its offset, from a file before any
    // byte of that frame is written (-r -n and a restore), and from a pipe.
    let mut flip = good.clone();
    flip[second + 3000] ^= 0x40;
    let p = write("flip.zst", &flip);
    let msg = format!("compressed byte offset {second}");
    refused(&from_file(&p, &["-n"]), &msg);
    refused(&from_file(&p, &dest), &msg);
    refused(&from_pipe(&p), &msg);

    // Truncated inside the second frame and inside the seek table.
    for (name, len) in [("cut1.zst", second + 5000), ("cut2.zst", good.len() - 4)] {
        let p = write(name, &good[..len]);
        refused(&from_file(&p, &["-n"]), "truncated");
        refused(&from_pipe(&p), "truncated");
    }

    // Garbage after the last frame.
    let mut pad = good.clone();
    pad.extend_from_slice(b"garbage after the seek table");
    let p = write("pad.zst", &pad);
    refused(&from_file(&p, &["-n"]), "not a zstd frame");
    refused(&from_pipe(&p), "not a zstd frame");

    // The first frame's header claims 4 GiB (its 4-byte content size field).
    let mut huge = good.clone();
    assert_eq!(&huge[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    let fhd = huge[4];
    assert_eq!(fhd >> 6, 2, "content size in 4 bytes");
    let at = 5 + usize::from(fhd & 0x20 == 0);
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = write("huge.zst", &huge);
    refused(&from_file(&p, &["-n"]), "zstd");
    refused(&from_pipe(&p), "zstd");

    // A zstd stream that is not an image.
    let p = f.t.join("text.zst");
    ok(
        &bash(&format!("echo not an image | zstd -q > {}", s(&p))),
        "zstd",
    );
    refused(&from_file(&p, &["-n"]), "");
    refused(&from_pipe(&p), "");

    // A flipped byte in the seek table: checked against the frames, from a file (read first)
    // and from a pipe (when it comes).
    let mut table = good.clone();
    let n = table.len();
    table[n - 9 - 8 + 1] ^= 0x01;
    let p = write("table.zst", &table);
    refused(&from_file(&p, &["-n"]), "seek table");
    refused(&from_pipe(&p), "seek table");
}

#[test]
fn a_full_output_device_is_an_error() {
    let f = fixture("zstd-full");
    let o = run_ours(&["-s", "--zstd", "-O", "/dev/full", s(&f.vol)]);
    refused(&o, "No space left on device");
}

#[test]
fn metadata_images_compress_too() {
    let f = fixture("zstd-meta");
    let m = f.t.join("m.img");
    ok(&run_ours(&["-m", "-s", "-o", s(&m), s(&f.vol)]), "-m -s");
    let z = f.t.join("m.zst");
    ok(
        &run_ours(&["-m", "-s", "--zstd=5", "-o", s(&z), s(&f.vol)]),
        "-m -s --zstd",
    );
    assert!(zstd_dc(&z) == fs::read(&m).unwrap());
}

#[test]
fn option_errors() {
    let f = fixture("zstd-opts");
    let out = f.t.join("x");
    for (args, needle) in [
        (vec!["-s", "--zstd=0"], "zstd"),
        (vec!["-s", "--zstd=20"], "zstd"),
        (vec!["-s", "--zstd=fast"], "zstd"),
        (vec!["--zstd"], "zstd"),
        (vec!["-r", "--zstd"], "zstd"),
        (vec!["-s", "--zst"], "zst"),
        (vec!["-s", "--zstd", "--threads", "0"], "threads"),
        (vec!["-s", "--zstd", "--threads", "x"], "threads"),
    ] {
        let _ = fs::remove_file(&out);
        let mut a = args.clone();
        a.extend_from_slice(&["-o", s(&out), s(&f.vol)]);
        let o = run_ours(&a);
        refused(&o, needle);
        assert!(
            !out.exists() || fs::metadata(&out).unwrap().len() == 0,
            "{args:?}"
        );
    }
}
