//! Image integrity (the checksum trailer) and JSON progress: damaged images are found with
//! their position by `-r -n` and by restores from a file and from stdin; the reference restores
//! our images identically and reads them from pipelines (directly and through zstd) with every
//! stage exiting 0; a damaged trailer needs `--force`; `--progress-fd` lines are valid JSON,
//! never go backwards and end at the total; a closed progress descriptor does not fail a run.
use crate::cmd::{all, bash, s};
use crate::common::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Everything a run printed (messages go to stdout or stderr depending on the output).
/// A fresh 64 MiB volume (4 KiB clusters): its image is about 2.5 MB, three 1 MiB chunks.
fn volume(t: &TempDir) -> PathBuf {
    mkvol(t.path(), "vol", &VolSpec::empty(64 << 20))
}

/// Saves `vol` with our tool (default: with the trailer).
fn save(vol: &Path, img: &Path, extra: &[&str]) {
    let mut args = vec!["-s", "-o", s(img)];
    args.extend_from_slice(extra);
    args.push(s(vol));
    let o = run_ours(&args);
    assert!(o.status.success(), "save: {}", all(&o));
}

/// Runs our binary with `args`, the file `input` on stdin through a pipe (`cat`).
fn ours_from_pipe(args: &[&str], input: &Path) -> Output {
    let mut cat = Command::new("cat")
        .arg(input)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = Command::new(ours())
        .args(args)
        .stdin(cat.stdout.take().unwrap())
        .output()
        .unwrap();
    let _ = cat.wait();
    o
}

/// Runs `script` with bash; returns its output.
/// `(start, end)` of the first "image bytes A..B" in `msg`.
fn damaged_range(msg: &str) -> (u64, u64) {
    let at = msg
        .find("image bytes ")
        .unwrap_or_else(|| panic!("no damaged range in: {msg}"));
    let rest = &msg[at + "image bytes ".len()..];
    let range: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (a, b) = range.split_once("..").unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn flipped_bytes_are_found_with_their_position() {
    let t = TempDir::new("integrity-flip");
    let vol = volume(&t);
    let img = t.join("img");
    save(&vol, &img, &[]);
    let good = fs::read(&img).unwrap();
    // A clean image verifies.
    let o = run_ours(&["-r", "-n", s(&img)]);
    assert!(o.status.success(), "{}", all(&o));
    assert!(
        text(&o.stderr).contains("Image checksums: ok"),
        "{}",
        all(&o)
    );
    let clean = t.join("clean");
    assert!(run_ours(&["-r", "-o", s(&clean), s(&img)]).status.success());

    let len = good.len();
    // Early (a cluster record near the start), middle, and late (the backup boot record).
    for at in [300usize, len / 2, len - 200] {
        let mut d = good.clone();
        d[at] ^= 0x20;
        let bad = t.join("bad");
        fs::write(&bad, &d).unwrap();
        let inside = |msg: &str| {
            let (a, b) = damaged_range(msg);
            assert!(
                a <= at as u64 && (at as u64) < b,
                "{at} not in {a}..{b}: {msg}"
            );
        };

        // -r -n: every damaged range, exit 1.
        let o = run_ours(&["-r", "-n", s(&bad)]);
        assert_eq!(o.status.code(), Some(1), "-r -n at {at}: {}", all(&o));
        assert!(all(&o).contains("image checksum mismatch"), "{}", all(&o));
        inside(&all(&o));

        // Restore from the file: stops at the bad chunk, nothing from it is written.
        let out = t.join("out");
        let _ = fs::remove_file(&out);
        let o = run_ours(&["-r", "-o", s(&out), s(&bad)]);
        assert_eq!(o.status.code(), Some(1), "restore at {at}: {}", all(&o));
        inside(&all(&o));
        assert!(all(&o).contains("nothing from"), "{}", all(&o));
        if let Ok(partial) = fs::read(&out) {
            let clean = fs::read(&clean).unwrap();
            let n = partial.len().min(clean.len());
            // Whatever was written is the good data (holes read as zeros on both sides).
            assert!(partial[..n] == clean[..n], "damaged data written at {at}");
        }

        // Restore from stdin (a pipe): the check completes at the end, same range.
        let out2 = t.join("out2");
        let _ = fs::remove_file(&out2);
        let o = ours_from_pipe(&["-r", "-O", s(&out2), "-"], &bad);
        assert_eq!(
            o.status.code(),
            Some(1),
            "stdin restore at {at}: {}",
            all(&o)
        );
        inside(&all(&o));
        assert!(all(&o).contains("volume clusters"), "{}", all(&o));
        // And stdin redirected from the file (seekable, but read as a stream).
        let o = Command::new(ours())
            .args(["-r", "-n", "-"])
            .stdin(File::open(&bad).unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        inside(&all(&o));
    }
}

#[test]
fn the_reference_restores_our_images_and_reads_them_from_pipelines() {
    let t = TempDir::new("integrity-pipe");
    let vol = volume(&t);
    let img = t.join("img");
    save(&vol, &img, &[]);
    let theirs = t.join("theirs");
    let o = run_ref(&["-r", "-o", s(&theirs), s(&img)]);
    assert!(o.status.success(), "{}", all(&o));
    let ref_img = t.join("ref.img");
    assert!(run_ref(&["-s", "-o", s(&ref_img), s(&vol)])
        .status
        .success());
    let want = t.join("want");
    assert!(run_ref(&["-r", "-o", s(&want), s(&ref_img)])
        .status
        .success());
    assert!(fs::read(&theirs).unwrap() == fs::read(&want).unwrap());

    // Every stage of each pipeline must exit 0 (PIPESTATUS), and the result must be right.
    require("zstd");
    let ntfsclone = require("ntfsclone");
    let pipelines = [
        "{ours} -s -o - {vol} | {ref} -r -O {out} -",
        "{ours} -s -o - {vol} | zstd -q | zstd -dcq | {ref} -r -O {out} -",
        "{ours} -s -o - {vol} | {ours} -r -O {out} -",
        // A reader that stops right after the last record, like the reference may.
        "{ours} -s -o - {vol} | head -c {records} > {out}",
    ];
    let records = fs::metadata(&ref_img).unwrap().len();
    for p in pipelines {
        for round in 0..3 {
            let out = t.join("out");
            let _ = fs::remove_file(&out);
            let cmd = p
                .replace("{ours}", ours())
                .replace("{ref}", s(&ntfsclone))
                .replace("{vol}", s(&vol))
                .replace("{out}", s(&out))
                .replace("{records}", &records.to_string());
            let st = t.join("status");
            let o = bash(&format!(
                "{cmd} 2>{err}; echo \"status ${{PIPESTATUS[*]}}\" >{st}",
                err = s(&t.join("err")),
                st = s(&st)
            ));
            assert!(o.status.success());
            let status = fs::read_to_string(&st).unwrap();
            let codes: Vec<&str> = status
                .trim()
                .strip_prefix("status ")
                .unwrap_or_else(|| panic!("{status}"))
                .split(' ')
                .collect();
            assert!(
                codes.iter().all(|c| *c == "0"),
                "{p} (round {round}): statuses {codes:?}; stderr: {}",
                fs::read_to_string(t.join("err")).unwrap_or_default()
            );
            let got = fs::read(&out).unwrap();
            if p.contains("head -c") {
                assert!(got == fs::read(&ref_img).unwrap(), "{p}: records differ");
            } else {
                assert!(
                    got == fs::read(&want).unwrap(),
                    "{p}: restored volume differs"
                );
            }
        }
    }
}

#[test]
fn damaged_trailer_is_reported_and_force_restores() {
    let t = TempDir::new("integrity-trailer");
    let vol = volume(&t);
    let img = t.join("img");
    save(&vol, &img, &[]);
    let good = fs::read(&img).unwrap();
    let want = t.join("want");
    assert!(run_ours(&["-r", "-o", s(&want), s(&img)]).status.success());
    // A byte of the trailer's chunk list (the trailer is the last 64+4n+16 bytes).
    let mut d = good.clone();
    let n = d.len();
    d[n - 20] ^= 1;
    let bad = t.join("bad");
    fs::write(&bad, &d).unwrap();
    for (args, piped) in [
        (vec!["-r", "-O", "OUT", s(&bad)], false),
        (vec!["-r", "-O", "OUT", "-"], true),
        (vec!["-r", "-n", s(&bad)], false),
    ] {
        let out = t.join("out");
        let a: Vec<&str> = args
            .iter()
            .map(|x| if *x == "OUT" { s(&out) } else { x })
            .collect();
        let go = |extra: &[&str]| {
            let mut v = a.clone();
            v.splice(1..1, extra.iter().copied());
            if piped {
                ours_from_pipe(&v, &bad)
            } else {
                run_ours(&v)
            }
        };
        let o = go(&[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", all(&o));
        assert!(
            all(&o).contains("checksum trailer is damaged"),
            "{}",
            all(&o)
        );
        let o = go(&["--force"]);
        assert!(o.status.success(), "{args:?} --force: {}", all(&o));
        assert!(all(&o).contains("trailer is damaged"), "{}", all(&o));
        if !args.contains(&"-n") {
            assert!(fs::read(&out).unwrap() == fs::read(&want).unwrap());
        }
    }
}

#[test]
fn images_without_trailer_restore_with_a_notice() {
    let t = TempDir::new("integrity-none");
    let vol = volume(&t);
    let ours_img = t.join("ours.img");
    save(&vol, &ours_img, &["--no-checksum"]);
    let ref_img = t.join("ref.img");
    assert!(run_ref(&["-s", "-o", s(&ref_img), s(&vol)])
        .status
        .success());
    assert!(fs::read(&ours_img).unwrap() == fs::read(&ref_img).unwrap());
    let a = t.join("a");
    let b = t.join("b");
    let o = run_ours(&["-r", "-o", s(&a), s(&ref_img)]);
    let r = run_ref(&["-r", "-o", s(&b), s(&ref_img)]);
    assert!(o.status.success() && r.status.success());
    assert_eq!(
        text(&o.stdout).replace(s(&a), "X"),
        text(&r.stdout).replace(s(&b), "X")
    );
    let notices: Vec<&str> = text(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("NOTICE:"))
        .map(|_| "")
        .collect();
    assert_eq!(notices.len(), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("cannot be verified"));
    assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap());
    // --no-checksum on restore: no verification, no notice.
    let o = run_ours(&["-r", "-n", "--no-checksum", s(&ours_img)]);
    assert!(o.status.success() && !text(&o.stderr).contains("NOTICE"));
}

/// Checks JSON Lines progress with python3's json module: valid objects with the schema's
/// keys, known phases, `bytes_done` never decreasing, a final `done` line. Returns the final
/// line's (bytes_done, bytes_total, has_error).
fn check_json(path: &Path) -> (u64, u64, bool) {
    const CHECK: &str = r#"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no progress lines"
prev = -1
keys = ["phase", "bytes_done", "bytes_total", "elapsed_s", "rate_bytes_per_s", "eta_s",
        "bad_sectors", "warnings"]
for l in lines:
    o = json.loads(l)
    for k in keys:
        assert k in o, (k, l)
    assert o["phase"] in ("scan", "save", "restore", "clone", "verify", "done"), l
    assert o["bytes_done"] >= prev, ("went backwards", l)
    assert o["bytes_done"] <= o["bytes_total"], l
    prev = o["bytes_done"]
last = json.loads(lines[-1])
assert last["phase"] == "done", lines[-1]
assert sum(1 for l in lines if json.loads(l)["phase"] == "done") == 1
print(last["bytes_done"], last["bytes_total"], int("error" in last))
"#;
    let o = run(Command::new(require("python3"))
        .arg("-c")
        .arg(CHECK)
        .arg(path));
    assert!(
        o.status.success(),
        "{}: {}\n{}",
        path.display(),
        text(&o.stderr),
        fs::read_to_string(path).unwrap_or_default()
    );
    let v: Vec<u64> = text(&o.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1], v[2] == 1)
}

#[test]
fn json_progress_lines() {
    let t = TempDir::new("integrity-json");
    let vol = volume(&t);
    let img = t.join("img");
    let prog = t.join("prog");
    let runs: [(&str, String); 4] = [
        ("save", format!("-s -o {} {}", s(&img), s(&vol))),
        ("restore", format!("-r -o {} {}", s(&t.join("r")), s(&img))),
        ("verify", format!("-r -n {}", s(&img))),
        ("clone", format!("-o {} {}", s(&t.join("c")), s(&vol))),
    ];
    let mut totals = Vec::new();
    for (phase, args) in &runs {
        let o = bash(&format!("{} {args} --progress-fd 3 3>{}", ours(), s(&prog)));
        assert!(o.status.success(), "{phase}: {}", all(&o));
        let (done, total, err) = check_json(&prog);
        assert!(
            !err && done == total && total > 0,
            "{phase}: {done} {total}"
        );
        // The same cluster bytes move in each mode (nothing counted twice).
        totals.push(total);
        assert!(
            totals.iter().all(|&x| x == totals[0]),
            "{phase}: totals {totals:?}"
        );
        let lines = fs::read_to_string(&prog).unwrap();
        assert!(lines.contains(&format!("\"phase\":\"{phase}\"")), "{lines}");
    }
    // A failed run ends with an error line.
    let mut d = fs::read(&img).unwrap();
    d[1000] ^= 1;
    let bad = t.join("bad");
    fs::write(&bad, &d).unwrap();
    let o = bash(&format!(
        "{} -r -n {} --progress-fd 3 3>{}",
        ours(),
        s(&bad),
        s(&prog)
    ));
    assert_eq!(o.status.code(), Some(1));
    let (_, _, err) = check_json(&prog);
    assert!(err, "{}", fs::read_to_string(&prog).unwrap());
}

#[test]
fn closed_or_bad_progress_fd_does_not_fail_the_run() {
    let t = TempDir::new("integrity-jsonfd");
    let vol = volume(&t);
    // A pipe whose reader is gone, a descriptor that is not open.
    for redirect in ["3> >(exec 0<&-; exit 0)", "3>&-", "3>/dev/full"] {
        let img = t.join("img");
        let o = bash(&format!(
            "{} -s -O {} {} --progress-fd 3 {redirect}",
            ours(),
            s(&img),
            s(&vol)
        ));
        assert!(o.status.success(), "{redirect}: {}", all(&o));
        let warnings = text(&o.stderr).matches("WARNING").count();
        assert!(warnings <= 1, "{redirect}: {}", text(&o.stderr));
        assert!(run_ours(&["-r", "-n", s(&img)]).status.success());
    }
}

/// A damaged gap count can make the records end early (the position jumps to the last
/// cluster): read from a pipe, the bytes after that "last record" are not a trailer, but the
/// stream still ends with our trailer's footer, so the image is reported damaged (exit 1) rather
/// than restored as an unverifiable reference image. Garbage after a reference image still
/// restores (as with the reference), with the notice.
#[test]
fn records_ending_early_in_a_stream_are_reported() {
    let t = TempDir::new("integrity-early-end");
    let vol = volume(&t);
    let img = t.join("img");
    save(&vol, &img, &[]);
    let mut d = fs::read(&img).unwrap();
    // Walk the records; enlarge a gap in the middle so that it lands just before the last cluster.
    let u32_at = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as u64;
    let u64_at = |d: &[u8], o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    let (cs, dev, nrc) = (u32_at(&d, 18), u64_at(&d, 22), u64_at(&d, 30));
    let (mut p, mut pos, mut gaps) = (u32_at(&d, 46) as usize, 0u64, Vec::new());
    while pos <= nrc {
        if d[p] == 0 {
            let g = u64_at(&d, p + 1);
            gaps.push((p, pos));
            pos += g;
            p += 9;
        } else {
            let size = if (pos + 1) * cs < dev {
                cs
            } else {
                dev - pos * cs
            };
            p += 1 + size as usize;
            pos += 1;
        }
    }
    assert!(gaps.len() >= 2, "test image has too few gaps");
    let (gp, gpos) = gaps[gaps.len() / 2];
    d[gp + 1..gp + 9].copy_from_slice(&(nrc - gpos - 1).to_le_bytes());
    let bad = t.join("bad");
    fs::write(&bad, &d).unwrap();
    let out = t.join("out");
    let o = ours_from_pipe(&["-r", "-O", s(&out), "-"], &bad);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(all(&o).contains("image is damaged"), "{}", all(&o));

    // A reference image (no trailer) with garbage appended: restores, with the notice.
    let plain = t.join("plain");
    save(&vol, &plain, &["--no-checksum"]);
    let mut p = fs::read(&plain).unwrap();
    p.extend((0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8));
    fs::write(&plain, &p).unwrap();
    let o = ours_from_pipe(&["-r", "-O", s(&out), "-"], &plain);
    assert!(o.status.success(), "{}", all(&o));
    assert!(text(&o.stderr).contains("NOTICE"), "{}", all(&o));
}
