//! Robustness: every bad input and every fault ends with exit status 1 and a message saying
//! what and where, never a panic, a signal, a hang or unbounded memory, and never damages an
//! output it was not asked to write. The reference's messages are checked where it has one
//! (its `ERROR` lines on stdout, libntfs's lines on stderr); ours (stderr) where it has none.
//!
//! Loop devices, mounts and FUSE mounts made here are removed by Drop guards.
use crate::common::{require, run, run_ours, testdata, unzstd, TempDir};
use ntfsclone::ntfs::attribute::{AttrIter, Form};
use ntfsclone::ntfs::mft_record::{post_read_fixup, pre_write_fixup};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit status 1, no panic text, and the expected pieces on stdout and stderr. Every fatal
/// `ERROR` line, the reference's and our own, is on msg_out: stdout unless the output is `-`.
#[track_caller]
fn refused(o: &Output, out: &[&str], err: &[&str]) {
    let (so, se) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(1),
        "status {:?}\nstdout: {so}\nstderr: {se}",
        o.status
    );
    assert!(
        !se.contains("panicked") && !so.contains("panicked"),
        "panic: {se}"
    );
    for m in out {
        assert!(
            so.contains(m),
            "stdout lacks {m:?}\nstdout: {so}\nstderr: {se}"
        );
    }
    for m in err {
        assert!(
            se.contains(m),
            "stderr lacks {m:?}\nstdout: {so}\nstderr: {se}"
        );
    }
}

/// The clean 10 MiB volume (4 KiB clusters, 1 KiB records, $MFT at LCN 853, $MFTMirr at 2).
fn baseline(t: &TempDir) -> PathBuf {
    unzstd(
        &testdata().join("corrupted/baseline-uncorrupted-ntfs-default_4k_10MiB.ntfs.zst"),
        t.path(),
    )
}

const CS: usize = 4096;
const RS: usize = 1024;
const MFT: usize = 853 * CS;
const MIRR: usize = 2 * CS;

/// Edits MFT record `n` of `vol` in its fixed-up form, protects it again, and mirrors records
/// 0-3 into $MFTMirr so that only the intended corruption is seen.
fn edit_record(vol: &mut [u8], n: usize, f: impl FnOnce(&mut Vec<u8>)) {
    let off = MFT + n * RS;
    let mut r = vol[off..off + RS].to_vec();
    post_read_fixup(&mut r).unwrap();
    f(&mut r);
    assert!(pre_write_fixup(&mut r));
    vol[off..off + RS].copy_from_slice(&r);
    if n < 4 {
        vol[MIRR + n * RS..MIRR + (n + 1) * RS].copy_from_slice(&r);
    }
}

/// Byte offsets (attribute start, mapping pairs start) of the first non-resident attribute
/// of `type_code` in a fixed-up record.
fn nonresident(r: &[u8], type_code: u32) -> (usize, usize) {
    for a in AttrIter::new(r).flatten() {
        if let (true, Form::NonResident { mapping_pairs, .. }) = (a.type_code == type_code, a.form)
        {
            let mp = mapping_pairs.as_ptr() as usize - r.as_ptr() as usize;
            return (a.offset, mp);
        }
    }
    panic!("no non-resident attribute {type_code:x}");
}

/// A copy of the baseline changed by `f`, written to `dir/name`.
fn variant(base: &[u8], dir: &Path, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut v = base.to_vec();
    f(&mut v);
    let p = dir.join(name);
    fs::write(&p, v).unwrap();
    p
}

/// A file with known content that must survive.
struct Sentinel {
    path: PathBuf,
    data: Vec<u8>,
}

impl Sentinel {
    fn new(path: PathBuf) -> Sentinel {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        fs::write(&path, &data).unwrap();
        Sentinel { path, data }
    }
    #[track_caller]
    fn intact(&self) {
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.data,
            "{:?} was changed",
            self.path
        );
    }
}

#[test]
fn bad_sources_end_with_a_clear_message_and_touch_no_output() {
    let t = TempDir::new("robust-src");
    let base = fs::read(baseline(&t)).unwrap();
    let d = t.path();
    let mut cases: Vec<(PathBuf, Vec<String>, Vec<String>)> = Vec::new();
    let mut case = |p: PathBuf, out: &[&str], err: &[&str]| {
        let n = s(&p).to_string();
        let fill = |v: &[&str]| v.iter().map(|m| m.replace("SRC", &n)).collect::<Vec<_>>();
        cases.push((p, fill(out), fill(err)));
    };
    let opening_inval = "ERROR(22): Opening 'SRC' as NTFS failed: Invalid argument";
    let opening_eio = "ERROR(5): Opening 'SRC' as NTFS failed: Input/output error";

    let p = d.join("empty");
    fs::write(&p, b"").unwrap();
    case(p, &[opening_inval], &["Failed to read bootsector (size=0)"]);
    let p = d.join("random");
    let mut x = 0x1234_5678_9abc_def0u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(&p, noise).unwrap();
    case(
        p,
        &[opening_inval, "doesn't have a valid NTFS"],
        &["NTFS signature is missing."],
    );
    let p = d.join("short");
    fs::write(&p, &base[..5_000_000]).unwrap();
    case(
        p,
        &["ERROR: Current NTFS volume size is bigger than the device size (5000000)!"],
        &[],
    );
    let p = d.join("tiny");
    fs::write(&p, &base[..8192]).unwrap();
    case(
        p,
        &[opening_eio],
        &["Error reading $MFT: Input/output error"],
    );
    let p = variant(&base, d, "sector-size", |v| {
        v[0x0b..0x0d].copy_from_slice(&0x1234u16.to_le_bytes())
    });
    case(
        p,
        &[opening_inval],
        &["Unexpected bytes per sector value (4660)."],
    );
    let p = variant(&base, d, "cluster-size", |v| v[0x0d] = 3);
    case(
        p,
        &[opening_inval],
        &["Unexpected sectors per cluster value (3)."],
    );
    let p = variant(&base, d, "mft-lcn", |v| {
        v[0x30..0x38].copy_from_slice(&2565u64.to_le_bytes())
    });
    case(
        p,
        &[opening_inval],
        &["$MFT LCN (2565) or $MFTMirr LCN (2) is greater than the number of clusters (2559)."],
    );
    let p = variant(&base, d, "rec0-magic", |v| {
        v[MFT..MFT + 4].copy_from_slice(b"XXXX");
        v[MIRR..MIRR + 4].copy_from_slice(b"XXXX");
    });
    case(
        p,
        &[opening_eio],
        &[
            "Record 0 has no FILE magic (0x58585858)",
            "Failed to load $MFT",
        ],
    );
    let p = variant(&base, d, "rec0-torn", |v| v[MFT + 510] ^= 0xff);
    case(
        p,
        &[opening_eio],
        &["Incomplete multi-sector transfer: magic: 0x454c4946  size: 1024  usa_ofs: 48  usa_count: 2", "Record 0 has no FILE magic (0x44414142)"],
    );
    let p = variant(&base, d, "rec0-usa", |v| v[MFT + 6] = 7);
    case(p, &[opening_eio], &["ntfs_mst_post_read_fixup_warn"]);
    // $MFT:$DATA claims far more than its runs: the reference refuses it; so must we, rather
    // than walk 2^28 records that do not exist (this hung once).
    let p = variant(&base, d, "mft-size", |v| {
        edit_record(v, 0, |r| {
            let (a, _) = nonresident(r, 0x80);
            for f in [0x28, 0x30, 0x38] {
                r[a + f..a + f + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
            }
        })
    });
    case(
        p,
        &[opening_eio],
        &[
            "highest_vcn = 0x3f, last_vcn - 1 = 0xfffffff",
            "Failed to load $MFT",
        ],
    );
    // A runlist pointing outside the volume (the reference overruns its bitmap here).
    let p = variant(&base, d, "run-outside", |v| {
        edit_record(v, 33, |r| {
            let (_, mp) = nonresident(r, 0x80);
            r[mp..mp + 8].copy_from_slice(&[0x31, 0x10, 0, 0, 1, 0, 0, 0]);
        })
    });
    case(
        p,
        &[
            "Scanning volume ...",
            "ERROR: Corrupt runlist in inode 33 attr 80: clusters 65536..65552 are outside the volume (2559 clusters)",
        ],
        &[],
    );
    // A run looping back over clusters another file owns ($Extend file 32 owns 0x4a0...).
    let p = variant(&base, d, "run-crosslinked", |v| {
        edit_record(v, 33, |r| {
            let (_, mp) = nonresident(r, 0x80);
            r[mp..mp + 5].copy_from_slice(&[0x21, 0x10, 0xa0, 0x04, 0]);
        })
    });
    case(p, &["ERROR: Cluster 1184 referenced twice!"], &[]);
    let p = variant(&base, d, "run-backwards", |v| {
        edit_record(v, 33, |r| {
            let (_, mp) = nonresident(r, 0x80);
            r[mp..mp + 8].copy_from_slice(&[0x11, 0x10, 0x77, 0x11, 0x10, 0x80, 0, 0]);
        })
    });
    case(
        p,
        &["ERROR(5): ntfs_decompress_mapping_pairs: Input/output error"],
        &[],
    );
    let p = variant(&base, d, "bitmap-short", |v| {
        edit_record(v, 6, |r| {
            let (a, _) = nonresident(r, 0x80);
            r[a + 0x30..a + 0x38].copy_from_slice(&100u64.to_le_bytes());
            r[a + 0x38..a + 0x40].copy_from_slice(&100u64.to_le_bytes());
        })
    });
    case(
        p,
        &["ERROR: $Bitmap size is smaller than expected (100 < 320)"],
        &[],
    );
    let p = variant(&base, d, "bitlocker", |v| {
        v[3..11].copy_from_slice(b"-FVE-FS-")
    });
    case(p, &[opening_inval], &["BitLocker", "unlock it first"]);
    let inv = testdata().join("windows/INVALID_tiny-ntfs-handcrafted-from-bootsdi_293KiB.ntfs.zst");
    case(unzstd(&inv, d), &[opening_eio], &[]);

    for (src, out, err) in &cases {
        let o = d.join("out.img");
        let r = Command::new(crate::common::ours())
            .args(["-s", "-o", s(&o), s(src)])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out: Vec<&str> = out.iter().map(String::as_str).collect();
        let err: Vec<&str> = err.iter().map(String::as_str).collect();
        refused(&r, &out, &err);
        let _ = fs::remove_file(&o);
        // A raw clone over an existing file (--overwrite): a volume refused while opening or
        // scanning leaves at most an empty output; the bytes of this one are never half-written.
        let keep = Sentinel::new(d.join("keep.img"));
        let r = run_ours(&["-O", s(&keep.path), s(src)]);
        refused(&r, &out, &err);
        let after = fs::read(&keep.path).unwrap();
        assert!(
            after == keep.data || after.is_empty(),
            "{src:?}: output half-written"
        );
    }
}

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

/// A mount, unmounted (lazily if busy) on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn mount(args: &[&str], dir: &Path) -> Mount {
    fs::create_dir_all(dir).unwrap();
    let o = run(Command::new(require("mount")).args(args).arg(dir));
    assert!(o.status.success(), "mount {args:?}: {}", text(&o.stderr));
    Mount(dir.to_path_buf())
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
        let _m = mount(&["-o", "ro", &bdev.0], &d.join("mnt"));
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
fn a_source_mounted_read_write_is_refused() {
    let t = TempDir::new("robust-mnt");
    let d = t.path();
    let vol = baseline(&t);
    let dir = d.join("mnt");
    fs::create_dir_all(&dir).unwrap();
    let st = run(Command::new(require("ntfs-3g")).arg(&vol).arg(&dir));
    assert!(st.status.success(), "ntfs-3g: {}", text(&st.stderr));
    let m = Mount(dir);
    let out = d.join("out");
    let o = run_ours(&["-s", "-o", s(&out), s(&vol)]);
    let msg = format!(
        "ERROR: Device '{}' is mounted read-write. You must 'umount' it first.",
        s(&vol)
    );
    refused(&o, &[&msg], &[]);
    assert!(!out.exists(), "output created for a mounted source");
    drop(m);
}

#[test]
fn no_space_left_on_the_output_is_an_error() {
    let t = TempDir::new("robust-full");
    let d = t.path();
    let vol = baseline(&t);
    let img = d.join("img");
    assert!(run_ours(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let _m = mount(&["-t", "tmpfs", "-o", "size=2m", "tmpfs"], &d.join("full"));
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

/// One row of the SOURCES.md table: file name, whether `-s` fails, its last ERROR line, and
/// the `Space in use` text on success.
struct Row {
    file: String,
    refuses: bool,
    error: String,
    space: String,
}

fn sources_table() -> Vec<Row> {
    let t = fs::read_to_string(testdata().join("corrupted/SOURCES.md")).unwrap();
    t.lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split('|').map(str::trim).collect();
            if c.len() < 9 || !c[2].ends_with(".ntfs.zst`") {
                return None;
            }
            let v = c[7];
            let error = v
                .split("; ")
                .find_map(|p| p.strip_prefix("stdout: "))
                .unwrap_or("")
                .to_string();
            let space = v
                .split("; ")
                .find_map(|p| p.strip_prefix("OK, Space in use "))
                .unwrap_or("")
                .to_string();
            Some(Row {
                file: c[2].trim_matches('`').to_string(),
                refuses: v.starts_with("**1**"),
                error,
                space,
            })
        })
        .collect()
}

/// Runs `ntfsclone -s -o - vol` with a time limit, reading the image from the pipe; returns
/// (status, stdout text when the image goes to a file... , stderr, image bytes or hash, peak RSS).
struct Run {
    out: Output,
    image: Vec<u8>,
    image_len: u64,
    kib: u64,
    took: Duration,
}

/// Our `-s -o -` (messages on stderr), keeping the image only when `keep` (small volumes).
fn save_stream(vol: &Path, keep: bool, dir: &Path) -> Run {
    let tf = dir.join(format!(
        "{}.time",
        vol.file_name().unwrap().to_string_lossy()
    ));
    let start = Instant::now();
    let mut c = Command::new(require("timeout"))
        .args([
            "300",
            s(&require("time")),
            "-f",
            "%M",
            "-o",
            s(&tf),
            crate::common::ours(),
        ])
        .args(["-s", "--no-checksum", "-o", "-", s(vol)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut image = Vec::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = so.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += k as u64;
            if keep {
                image.extend_from_slice(&buf[..k]);
            }
        }
        (image, n)
    });
    let out = c.wait_with_output().unwrap();
    let (image, image_len) = reader.join().unwrap();
    let kib = fs::read_to_string(&tf)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(u64::MAX);
    Run {
        out,
        image,
        image_len,
        kib,
        took: start.elapsed(),
    }
}

/// The corrupted corpus: where the reference refuses we refuse with its last ERROR line; where
/// it accepts we accept with its `Space in use` line, and on the 10 MiB volumes write the very
/// same image. Never a crash, never more than 300 s or 256 MiB for one volume.
#[test]
fn corrupted_volumes_are_handled_like_the_reference() {
    let t = TempDir::new("robust-corpus");
    let rows = sources_table();
    assert_eq!(rows.len(), 48, "SOURCES.md table not parsed");
    let only = std::env::var("ROBUST_ONLY").ok();
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| only.as_ref().map_or(true, |o| r.file.contains(o.as_str())))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let fails = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(row) = rows.get(i) else { break };
                if let Err(e) = corpus_one(row, t.path()) {
                    fails.lock().unwrap().push(format!("{}: {e}", row.file));
                }
            });
        }
    });
    let fails = fails.into_inner().unwrap();
    assert!(
        fails.is_empty(),
        "{} volume(s):\n{}",
        fails.len(),
        fails.join("\n")
    );
}

fn corpus_one(row: &Row, dir: &Path) -> Result<(), String> {
    let vol = unzstd(&testdata().join("corrupted").join(&row.file), dir);
    let small = fs::metadata(&vol).unwrap().len() <= 64 << 20;
    let r = save_stream(&vol, small && !row.refuses, dir);
    let res = (|| {
        let (so, se) = (text(&r.out.stdout), text(&r.out.stderr));
        if se.contains("panicked") || r.out.status.code().map_or(true, |c| c > 1) {
            return Err(format!("crashed or timed out: {:?}\n{se}", r.out.status));
        }
        if r.kib > 256 * 1024 {
            return Err(format!("peak RSS {} KiB", r.kib));
        }
        let _ = so;
        let name = s(&vol);
        let last_error = se
            .split(['\n', '\r'])
            .filter(|l| l.starts_with("ERROR"))
            .map(|l| l.replace(name, "IMAGE"))
            .next_back()
            .unwrap_or_default();
        match (row.refuses, r.out.status.code()) {
            (true, Some(1)) => {
                // The recorded last ERROR line (its wrapped lines joined by a space).
                let words = |x: &str| x.split_whitespace().collect::<Vec<_>>().join(" ");
                let want = words(
                    row.error
                        .split(". ")
                        .next()
                        .unwrap_or("")
                        .trim_end_matches('.'),
                );
                if !words(&se.replace(name, "IMAGE")).contains(&want) {
                    return Err(format!("refused, but without {want:?}: {last_error}"));
                }
            }
            (false, Some(0)) => {
                let space = format!("Space in use       : {}", row.space);
                if !se.contains(&space) {
                    return Err(format!("accepted, but not with {space:?}"));
                }
                if small {
                    let reference =
                        run(Command::new(require("ntfsclone")).args(["-s", "-o", "-", name]));
                    if reference.stdout != r.image {
                        return Err(format!(
                            "image differs from the reference ({} vs {} bytes)",
                            r.image_len,
                            reference.stdout.len()
                        ));
                    }
                }
            }
            (refuses, code) => {
                return Err(format!(
                    "exit {code:?} where the reference {}: {last_error}",
                    if refuses { "refuses" } else { "accepts" }
                ))
            }
        }
        Ok(())
    })();
    let _ = fs::remove_file(&vol);
    let _ = r.took;
    res
}
