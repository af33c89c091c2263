//! Bad sources: damaged boot sectors, $MFT records and runlists made from the clean baseline
//! volume, a source mounted read-write, and the corrupted corpus of ../shared/testdata against
//! the reference's verdicts (its SOURCES.md table).
use super::{baseline, edit_record, nonresident, refused, s, text, variant, Sentinel, MFT, MIRR};
use crate::common::{require, run, run_ours, testdata, unzstd, Mount, TempDir};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    // than walk 2^28 records that do not exist (a walk that would take hours).
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

#[test]
fn a_source_mounted_read_write_is_refused() {
    let t = TempDir::new("robust-mnt");
    let d = t.path();
    let vol = baseline(&t);
    let m = Mount::ntfs3g(&vol, &d.join("mnt"), &[]);
    let out = d.join("out");
    let o = run_ours(&["-s", "-o", s(&out), s(&vol)]);
    let msg = format!(
        "ERROR: Device '{}' is mounted read-write. You must 'umount' it first.",
        s(&vol)
    );
    refused(&o, &[&msg], &[]);
    assert!(!out.exists(), "output created for a mounted source");
    m.unmount();
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
