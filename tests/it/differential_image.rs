//! Differential tests of `-r` against the reference on damaged and unusual images: a fixed
//! table of mutations (header fields, record bytes, gap counts, truncations, appended bytes,
//! byte flips) applied to images the reference saved, each restored by both tools to a file
//! (`-O`), to stdout (`-o -`), from a pipe (`-`) and with `-n`. Exit status, the last `ERROR`
//! line, whether the output was created and, where the reference succeeds, the restored bytes
//! must agree. The cases come from a larger scratch run (about 1 600 images × 5 ways); the
//! deliberate differences are checked as such:
//! - a truncated image: the reference prints a stale errno (`ERROR(2): read_all: …`, spec §6
//!   #17), we print `ERROR: Short image file: …` with the offset;
//! - a gap to stdout running past the end of the volume: the reference writes its zeros and
//!   stops there with exit 0, without the records after it (a silently incomplete copy); we
//!   refuse it as for a file (`restore_image: corrupt image at input offset N`);
//! - a negative cluster count in the header: the reference restores nothing and exits 0 (or
//!   fails at ftruncate); we refuse the header (`Corrupt image header: negative cluster count`);
//! - absurd header numbers (cluster size not a power of two up to 2 MiB, volume over 2^63
//!   bytes): refused up front (not in this table; see `robust` and `compat`).
//!
//! Images that carry our checksum trailer are checked separately: any damage is reported. (Not
//! detectable, so not in the table: a cut exactly at a record boundary that also removes the
//! whole trailer leaves a valid trailer-less image.)
use crate::common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One record of an image stream: offset of its command byte, position, and for a gap its
/// count, for a cluster its data length.
#[derive(Debug, Clone, Copy)]
struct Rec {
    at: usize,
    pos: i64,
    gap: Option<i64>,
    len: usize,
}

fn le32(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(d[at..at + 4].try_into().unwrap())
}

fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().unwrap())
}

/// The records of a well-formed version 10 image (the spec's reference decoder).
fn records(d: &[u8]) -> Vec<Rec> {
    let cs = le32(d, 18) as i64;
    let dev = le64(d, 22) as i64;
    let nrc = le64(d, 30) as i64;
    let mut p = le32(d, 46) as usize;
    let (mut pos, mut v) = (0i64, Vec::new());
    while pos <= nrc && p < d.len() {
        match d[p] {
            0 => {
                let n = le64(d, p + 1) as i64;
                v.push(Rec {
                    at: p,
                    pos,
                    gap: Some(n),
                    len: 9,
                });
                p += 9;
                pos += n;
            }
            1 => {
                let len = if (pos + 1) * cs < dev {
                    cs
                } else {
                    dev - pos * cs
                } as usize;
                v.push(Rec {
                    at: p,
                    pos,
                    gap: None,
                    len,
                });
                p += 1 + len;
                pos += 1;
            }
            c => panic!("bad command {c} at {p}"),
        }
    }
    v
}

/// How a restore is run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    /// `-r -O OUT IMG`
    File,
    /// `-r -o - IMG > OUT`
    Stdout,
    /// `cat IMG | ntfsclone -r -O OUT -`
    Pipe,
    /// `-r -n IMG`
    Test,
}

const ALL: &[Way] = &[Way::File, Way::Stdout, Way::Pipe, Way::Test];
const NOT_STDOUT: &[Way] = &[Way::File, Way::Pipe, Way::Test];

/// What a run did.
#[derive(Debug)]
struct Seen {
    code: Option<i32>,
    /// Last `ERROR` line on stdout or stderr.
    error: Option<String>,
    /// The restored bytes (None: the output file was not created).
    out: Option<Vec<u8>>,
}

fn last_error(o: &Output) -> Option<String> {
    let all = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    all.replace('\r', "\n")
        .lines()
        .rfind(|l| l.starts_with("ERROR"))
        .map(str::to_string)
}

fn restore(tool: &str, way: Way, img: &Path, dir: &Path) -> Seen {
    let out = dir.join("out");
    let _ = fs::remove_file(&out);
    let mut c = Command::new(tool);
    c.arg("-r");
    match way {
        Way::File => c.args(["-O", s(&out), s(img)]),
        Way::Stdout => c.args(["-o", "-", s(img)]),
        Way::Pipe => c.args(["-O", s(&out), "-"]),
        Way::Test => c.args(["-n", s(img)]),
    };
    c.stdin(if way == Way::Pipe {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    if way == Way::Pipe {
        let mut w = child.stdin.take().unwrap();
        let data = fs::read(img).unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let o = child.wait_with_output().unwrap();
    let error = last_error(&o);
    let out = match way {
        Way::Stdout => Some(o.stdout),
        Way::Test => None,
        _ => fs::read(&out).ok(),
    };
    Seen {
        code: o.status.code(),
        error,
        out,
    }
}

/// True when our last ERROR line is the reference's, or one of the deliberate differences.
fn same_error(r: &Option<String>, o: &Option<String>) -> bool {
    match (r, o) {
        (Some(r), Some(o)) if r.contains("): read_all: ") => {
            o.starts_with("ERROR: Short image file: ")
        }
        _ => r == o,
    }
}

/// The deliberate refusals: corrupt images the reference restores (exit 0, nothing or only a
/// part restored) or fails on late; we must exit 1 with this message whatever the reference does.
fn refused(name: &str, way: Way) -> Option<&'static str> {
    if name.ends_with("nr_clusters -1") || name.ends_with("nr_clusters i64::MIN") {
        return Some("ERROR: Corrupt image header: negative cluster count");
    }
    // Each of these makes a gap end past nr_clusters (with "nr_clusters - 1", the last one).
    let past = [
        "gap one past nr_clusters",
        "gap to twice nr_clusters",
        "gap one too long",
        "nr_clusters - 1",
    ];
    if way == Way::Stdout && past.iter().any(|p| name.ends_with(p)) {
        return Some("ERROR: restore_image: corrupt image at input offset");
    }
    None
}

/// Compares the two tools on one mutated image; returns the differences.
fn compare(name: &str, img: &[u8], ways: &[Way], dir: &Path) -> Vec<String> {
    let p = dir.join("img");
    fs::write(&p, img).unwrap();
    let reference = require("ntfsclone");
    let mut bad = Vec::new();
    for &way in ways {
        let o = restore(ours(), way, &p, dir);
        if let Some(msg) = refused(name, way) {
            let ok = o.code == Some(1) && o.error.as_deref().is_some_and(|e| e.starts_with(msg));
            if !ok {
                bad.push(format!(
                    "{name} {way:?}: must be refused with {msg:?}, got exit {:?}, {:?}",
                    o.code, o.error
                ));
            }
            continue;
        }
        let r = restore(s(&reference), way, &p, dir);
        let mut diff = Vec::new();
        if r.code != o.code {
            diff.push(format!("exit {:?} vs ours {:?}", r.code, o.code));
        }
        if !same_error(&r.error, &o.error) {
            diff.push(format!("error {:?} vs ours {:?}", r.error, o.error));
        }
        if r.out.is_some() != o.out.is_some() {
            diff.push(format!(
                "output created: {} vs ours {}",
                r.out.is_some(),
                o.out.is_some()
            ));
        } else if r.code == Some(0) && r.out != o.out {
            let (a, b) = (r.out.unwrap(), o.out.unwrap());
            let at = a.iter().zip(&b).position(|(x, y)| x != y);
            diff.push(format!(
                "restored bytes differ: {} vs ours {} bytes, first difference at {at:?}",
                a.len(),
                b.len()
            ));
        }
        if !diff.is_empty() {
            bad.push(format!("{name} {way:?}: {}", diff.join("; ")));
        }
    }
    bad
}

type Mutation = Box<dyn Fn(&[u8]) -> Vec<u8> + Sync>;

fn set(at: usize, bytes: Vec<u8>) -> Mutation {
    Box::new(move |d| {
        let mut m = d.to_vec();
        m[at..at + bytes.len()].copy_from_slice(&bytes);
        m
    })
}

fn cut(at: usize) -> Mutation {
    Box::new(move |d| d[..at.min(d.len())].to_vec())
}

fn flips(list: Vec<(usize, u8)>) -> Mutation {
    Box::new(move |d| {
        let mut m = d.to_vec();
        for &(at, x) in &list {
            if let Some(b) = m.get_mut(at) {
                *b ^= x;
            }
        }
        m
    })
}

/// The table of cases for one image: (name, mutation, ways to run).
fn table(d: &[u8]) -> Vec<(String, Mutation, &'static [Way])> {
    let recs = records(d);
    let cs = le32(d, 18) as usize;
    let dev = le64(d, 22);
    let nrc = le64(d, 30);
    let last = *recs.last().unwrap();
    let first = recs[0];
    let gaps: Vec<Rec> = recs.iter().copied().filter(|r| r.gap.is_some()).collect();
    let (g0, gl) = (gaps[0], *gaps.last().unwrap());
    let mid = recs[recs.len() / 2];
    let end = last.at + 1 + last.len;
    let q = |v: i64| v.to_le_bytes().to_vec();
    let mut t: Vec<(String, Mutation, &'static [Way])> = vec![
        ("as saved".into(), Box::new(|d: &[u8]| d.to_vec()), ALL),
        ("magic".into(), set(3, b"X".to_vec()), ALL),
        ("minor 0".into(), set(17, vec![0]), ALL),
        ("minor 255".into(), set(17, vec![255]), ALL),
        ("major 11".into(), set(16, vec![11]), ALL),
        (
            "major 9, 46-byte header".into(),
            Box::new(|d: &[u8]| {
                let mut m = d[..46].to_vec();
                m[16] = 9;
                m.extend_from_slice(&d[56..]);
                m
            }),
            ALL,
        ),
        (
            "major 10, 46-byte header".into(),
            Box::new(|d: &[u8]| {
                let mut m = d[..46].to_vec();
                m.extend_from_slice(&d[56..]);
                m
            }),
            ALL,
        ),
        (
            "10.0: no backup boot record".into(),
            Box::new(move |d: &[u8]| {
                let mut m = d[..last.at].to_vec();
                m[17] = 0;
                m
            }),
            ALL,
        ),
        (
            "10.0: no final gap either".into(),
            Box::new(move |d: &[u8]| {
                let mut m = d[..gl.at].to_vec();
                m[17] = 0;
                m
            }),
            ALL,
        ),
        (
            "cluster size halved".into(),
            set(18, (cs as u32 / 2).to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "device = volume (empty last record)".into(),
            set(22, (nrc * cs as u64).to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "device = volume + 1".into(),
            set(22, (nrc * cs as u64 + 1).to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "device one cluster larger".into(),
            set(22, (dev + cs as u64).to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "device smaller than the volume".into(),
            set(22, (nrc * cs as u64 - 1).to_le_bytes().to_vec()),
            ALL,
        ),
        ("device size 0".into(), set(22, q(0)), ALL),
        ("nr_clusters -1".into(), set(30, q(-1)), ALL),
        ("nr_clusters i64::MIN".into(), set(30, q(i64::MIN)), ALL),
        ("nr_clusters 0".into(), set(30, q(0)), ALL),
        ("nr_clusters - 1".into(), set(30, q(nrc as i64 - 1)), ALL),
        ("nr_clusters + 1".into(), set(30, q(nrc as i64 + 1)), ALL),
        ("inuse u64::MAX".into(), set(38, q(-1)), ALL),
        ("inuse 0".into(), set(38, q(0)), ALL),
        ("offset 0".into(), set(46, q(0)[..4].to_vec()), ALL),
        (
            "offset 51".into(),
            set(46, 51u32.to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "offset 64 with 8 more pad bytes".into(),
            Box::new(|d: &[u8]| {
                let mut m = d[..56].to_vec();
                m[46] = 64;
                m.extend_from_slice(&[0; 8]);
                m.extend_from_slice(&d[56..]);
                m
            }),
            ALL,
        ),
        (
            "offset past the end".into(),
            set(46, (d.len() as u32 + 10).to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "offset 2^31+49 (skipped)".into(),
            set(46, 0x8000_0031u32.to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "offset 2^31+50 (not skipped)".into(),
            set(46, 0x8000_0032u32.to_le_bytes().to_vec()),
            ALL,
        ),
        (
            "offset u32::MAX".into(),
            set(46, u32::MAX.to_le_bytes().to_vec()),
            ALL,
        ),
        ("first command 0xff".into(), set(first.at, vec![0xff]), ALL),
        ("first command a gap".into(), set(first.at, vec![0]), ALL),
        ("gap command 2".into(), set(g0.at, vec![2]), ALL),
        (
            "gap command made a cluster".into(),
            set(g0.at, vec![1]),
            NOT_STDOUT,
        ),
        ("last command 0x80".into(), set(last.at, vec![0x80]), ALL),
        (
            "last command a gap".into(),
            set(last.at, vec![0]),
            NOT_STDOUT,
        ),
        (
            "middle command flipped".into(),
            flips(vec![(mid.at, 1)]),
            NOT_STDOUT,
        ),
        ("gap 0".into(), set(g0.at + 1, q(0)), ALL),
        ("gap -1".into(), set(g0.at + 1, q(-1)), ALL),
        ("gap back to 0".into(), set(g0.at + 1, q(-g0.pos)), ALL),
        ("gap before 0".into(), set(g0.at + 1, q(-g0.pos - 1)), ALL),
        (
            "gap one too long".into(),
            set(g0.at + 1, q(g0.gap.unwrap() + 1)),
            ALL,
        ),
        (
            "gap to nr_clusters".into(),
            set(g0.at + 1, q(nrc as i64 - g0.pos)),
            ALL,
        ),
        (
            "gap one past nr_clusters".into(),
            set(g0.at + 1, q(nrc as i64 - g0.pos + 1)),
            ALL,
        ),
        (
            "gap to twice nr_clusters".into(),
            set(g0.at + 1, q(2 * nrc as i64 - g0.pos)),
            ALL,
        ),
        ("gap 2^62".into(), set(g0.at + 1, q(1 << 62)), NOT_STDOUT),
        ("gap i64::MIN".into(), set(g0.at + 1, q(i64::MIN)), ALL),
        (
            "last gap one past nr_clusters".into(),
            set(gl.at + 1, q(gl.gap.unwrap() + 1)),
            ALL,
        ),
        (
            "last gap one short".into(),
            set(gl.at + 1, q(gl.gap.unwrap() - 1)),
            ALL,
        ),
        (
            "extra records appended".into(),
            Box::new(move |d: &[u8]| {
                let mut m = d.to_vec();
                m.extend_from_slice(&[0, 5, 0, 0, 0, 0, 0, 0, 0, 1]);
                m.extend(std::iter::repeat(0x55).take(cs));
                m
            }),
            ALL,
        ),
        (
            "garbage appended".into(),
            Box::new(|d: &[u8]| {
                let mut m = d.to_vec();
                m.extend((0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
                m
            }),
            ALL,
        ),
    ];
    let cuts = [
        ("empty", 0),
        ("inside magic", 10),
        ("inside the old header", 40),
        ("inside the offset field", 48),
        ("in the padding", 53),
        ("header only", 56),
        ("after the first command", first.at + 1),
        ("inside the first cluster", first.at + 1 + cs / 2),
        ("after the first gap command", g0.at + 1),
        ("inside a gap count", g0.at + 5),
        ("after a gap", g0.at + 9),
        ("before the last record", last.at),
        ("after the last command", last.at + 1),
        ("inside the last record", last.at + 1 + last.len / 2),
        ("one byte short", end - 1),
    ];
    for (name, at) in cuts {
        t.push((format!("cut {name}"), cut(at), ALL));
    }
    // Byte flips at fixed places (from the random run: header fields, commands, data).
    for (i, f) in [
        vec![(40, 0x10)],
        vec![(25, 0x01)],
        vec![(first.at + 100, 0xff)],
        vec![(mid.at + 3, 0x40), (mid.at + 7, 0x02)],
        vec![(g0.at + 8, 0x80)],
        vec![(end - 2, 0x01)],
    ]
    .into_iter()
    .enumerate()
    {
        t.push((format!("flip {i}"), flips(f), NOT_STDOUT));
    }
    t
}

/// A fresh volume: `size` bytes, `cluster` bytes per cluster.
fn volume(dir: &Path, name: &str, size: u64, cluster: u32) -> PathBuf {
    let spec = VolSpec {
        cluster: Some(cluster),
        ..VolSpec::empty(size)
    };
    mkvol(dir, name, &spec)
}

/// Images of the reference: 4 KiB clusters with a partial last record, and 512-byte clusters.
fn reference_images(t: &TempDir) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for (name, size, cs) in [("4k", (4 << 20) + 1536, 4096), ("512", 3 << 20, 512)] {
        let vol = volume(t.path(), &format!("{name}.vol"), size, cs);
        let img = t.join(&format!("{name}.img"));
        let o = run_ref(&["-s", "-o", s(&img), s(&vol)]);
        assert!(
            o.status.success(),
            "reference save: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        v.push((name.to_string(), fs::read(&img).unwrap()));
    }
    v
}

#[test]
fn damaged_images_restore_like_the_reference() {
    let t = TempDir::new("diffimg");
    let images = reference_images(&t);
    let mut jobs = Vec::new();
    for (base, d) in &images {
        for (name, m, ways) in table(d) {
            jobs.push((format!("{base}: {name}"), m(d), ways));
        }
    }
    assert!(jobs.len() > 100, "{} cases", jobs.len());
    let n = std::sync::atomic::AtomicUsize::new(0);
    let diffs = std::sync::Mutex::new(Vec::new());
    let failures = parallel_map(&jobs, 2, |(name, img, ways)| {
        let dir = t.join(&format!(
            "c{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        let d = compare(name, img, ways, &dir);
        diffs.lock().unwrap().extend(d);
        let _ = fs::remove_dir_all(&dir);
    });
    assert!(failures.is_empty(), "{failures:#?}");
    let diffs = diffs.into_inner().unwrap();
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn damage_in_an_image_with_a_trailer_is_always_reported() {
    let t = TempDir::new("diffimg-trailer");
    let vol = volume(t.path(), "v.vol", 16 << 20, 4096);
    let img = t.join("v.img");
    let o = run_ours(&["-s", "-o", s(&img), s(&vol)]);
    assert!(
        o.status.success(),
        "save: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let d = fs::read(&img).unwrap();
    let recs = records(&d);
    let last = *recs.last().unwrap();
    let end = last.at + 1 + last.len;
    assert!(d.len() > end + 64, "no trailer after the last record");
    let data = *recs.iter().find(|r| r.gap.is_none() && r.pos > 16).unwrap();
    let gap = *recs.iter().find(|r| r.gap.is_some()).unwrap();
    let cases: Vec<(&str, Mutation)> = vec![
        ("cluster byte", flips(vec![(data.at + 1 + 77, 0x01)])),
        ("gap count", flips(vec![(gap.at + 1, 0x01)])),
        ("header inuse", flips(vec![(40, 0x01)])),
        ("last record", flips(vec![(end - 1, 0x01)])),
        ("trailer checksum", flips(vec![(end + 70, 0x01)])),
        ("trailer end magic", flips(vec![(d.len() - 1, 0x01)])),
        ("cut inside the trailer", cut(end + 30)),
        ("cut mid-stream", cut(d.len() / 2)),
        (
            "record removed",
            Box::new(move |d: &[u8]| {
                let mut m = d[..data.at].to_vec();
                m.extend_from_slice(&d[data.at + 1 + data.len..]);
                m
            }),
        ),
    ];
    let p = t.join("bad.img");
    let mut bad = Vec::new();
    for (name, m) in &cases {
        fs::write(&p, m(&d)).unwrap();
        for way in [Way::File, Way::Pipe, Way::Test, Way::Stdout] {
            let o = restore(ours(), way, &p, t.path());
            if o.code != Some(1) || o.error.is_none() {
                bad.push(format!(
                    "{name} {way:?}: exit {:?}, error {:?}",
                    o.code, o.error
                ));
            }
        }
    }
    assert!(bad.is_empty(), "damage not reported:\n{}", bad.join("\n"));
}

/// `-r -O /dev/null` (a character device): the reference sizes every named output that is not
/// a block device, so both fail at ftruncate with EINVAL; a gap is never written to it
/// (a loop on the first gap would hang here).
#[test]
fn restore_to_a_character_device_fails_like_the_reference() {
    let t = TempDir::new("diffimg-chardev");
    let vol = volume(t.path(), "v.vol", 4 << 20, 4096);
    let img = t.join("v.img");
    assert!(run_ref(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let args = ["-r", "-O", "/dev/null", s(&img)];
    let (r, o) = (run_ref(&args), run_ours(&args));
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(o.status.code(), r.status.code());
    assert_eq!(last_error(&o), last_error(&r));
    assert_eq!(
        last_error(&r).as_deref(),
        Some("ERROR(22): ftruncate failed for file '/dev/null': Invalid argument")
    );
}
