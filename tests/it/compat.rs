//! Save / restore / raw clone compared byte for byte with the reference ntfsclone: images,
//! clones, restored volumes, stdout text and exit codes, on mkntfs-made volumes (several
//! cluster and sector sizes, populated through ntfs-3g) and on the small Windows volumes of
//! ../shared/testdata; plus every error message of the image reader.
use crate::cmd::s;
use crate::common::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs ours and the reference with the same arguments, where `OUT` in an argument is
/// replaced by `<dir>/ours.<tag>` / `<dir>/ref.<tag>`; asserts the same exit status, stdout and
/// stderr (with the output names unified); returns both output paths.
fn both(dir: &Path, tag: &str, args: &[&str]) -> (PathBuf, PathBuf, Output) {
    let o = dir.join(format!("ours.{tag}"));
    let r = dir.join(format!("ref.{tag}"));
    let sub = |p: &Path| -> Vec<String> { args.iter().map(|a| a.replace("OUT", s(p))).collect() };
    let oa = sub(&o);
    let ra = sub(&r);
    let ours = run_ours(&oa.iter().map(String::as_str).collect::<Vec<_>>());
    let refr = run_ref(&ra.iter().map(String::as_str).collect::<Vec<_>>());
    let norm = |b: &[u8], p: &Path| String::from_utf8_lossy(b).replace(s(p), "OUT");
    assert_eq!(
        ours.status.code(),
        refr.status.code(),
        "exit status of {args:?}: {}",
        norm(&ours.stdout, &o)
    );
    if !args.contains(&"-") || args.contains(&"-n") {
        assert_eq!(
            norm(&ours.stdout, &o),
            norm(&refr.stdout, &r),
            "stdout of {args:?}"
        );
    } else {
        // Our saved image carries the checksum trailer after the reference's bytes.
        let ours_out = if args.contains(&"-s") {
            strip_trailer(&ours.stdout)
        } else {
            &ours.stdout
        };
        assert!(ours_out == refr.stdout, "stdout bytes of {args:?} differ");
    }
    // libntfs prints its own diagnostics on stderr for broken volumes: compare only when the
    // run succeeded (then stderr is the banner, plus the messages when the output is stdout).
    if refr.status.success() {
        assert_eq!(
            without_notices(norm(&ours.stderr, &o)),
            norm(&refr.stderr, &r),
            "stderr of {args:?}"
        );
    }
    (o, r, ours)
}

/// Our image without its integrity trailer (the bytes the reference reads), or all of it.
pub(crate) fn strip_trailer(img: &[u8]) -> &[u8] {
    let n = img.len();
    if n >= 16 && &img[n - 8..] == b"NTCSEND\0" {
        let len = u32::from_le_bytes(img[n - 12..n - 8].try_into().unwrap()) as usize;
        if len <= n && img[n - len..].starts_with(b"\0ntfsclone-crc32") {
            return &img[..n - len];
        }
    }
    img
}

/// Our image (`ours`, with its trailer) holds exactly the reference's records (`theirs`).
fn same_records(ours: &Path, theirs: &Path) {
    let x = fs::read(ours).unwrap_or_else(|e| panic!("{ours:?}: {e}"));
    let y = fs::read(theirs).unwrap_or_else(|e| panic!("{theirs:?}: {e}"));
    let records = strip_trailer(&x);
    assert!(records.len() < x.len(), "{ours:?} has no checksum trailer");
    assert!(
        records == y.as_slice(),
        "{ours:?} ({} bytes of records) differs from {theirs:?} ({} bytes)",
        records.len(),
        y.len()
    );
}

/// Drops our own notices (image checksums) from stderr: the rest must match the reference.
fn without_notices(s: String) -> String {
    s.split_inclusive('\n')
        .filter(|l| !l.starts_with("NOTICE: ") && !l.starts_with("Image checksums: ok"))
        .collect()
}

fn same_file(a: &Path, b: &Path) {
    let x = fs::read(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
    let y = fs::read(b).unwrap_or_else(|e| panic!("{b:?}: {e}"));
    assert!(
        x.len() == y.len() && x == y,
        "{a:?} ({} bytes) differs from {b:?} ({} bytes)",
        x.len(),
        y.len()
    );
}

/// Adds files through an ntfs-3g FUSE mount: a resident one, a 300 KB one, a directory of 200
/// small files, and a deleted file (its clusters are stale data the clone must not copy).
fn populate(vol: &Path, dir: &Path) {
    let mnt = dir.join("mnt");
    let m = Mount::ntfs3g(vol, &mnt, &["streams_interface=windows"]);
    let res = std::panic::catch_unwind(|| {
        fs::write(mnt.join("small.txt"), b"hello\n").unwrap();
        let big: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(mnt.join("big.bin"), &big).unwrap();
        fs::create_dir(mnt.join("d")).unwrap();
        for i in 0..200 {
            fs::write(mnt.join(format!("d/f{i}")), format!("{i}\n")).unwrap();
        }
        fs::write(mnt.join("deleted.bin"), vec![0x5a; 100_000]).unwrap();
        fs::remove_file(mnt.join("deleted.bin")).unwrap();
    });
    m.unmount();
    res.unwrap();
}

/// The whole comparison for one volume: save, restore both ways, raw clone, stdout variants,
/// restore from a pipe, restore test.
fn check_volume(vol: &Path, dir: &Path) {
    let v = s(vol);
    let (img_o, img_r, _) = both(dir, "img", &["-s", "-o", "OUT", v]);
    same_records(&img_o, &img_r);
    // Without the trailer our image is the reference's, byte for byte.
    let nock = dir.join("nock");
    let out = run_ours(&["-s", "--no-checksum", "-o", s(&nock), v]);
    assert!(out.status.success());
    same_file(&nock, &img_r);
    let _ = fs::remove_file(&nock);
    let (rest_o, rest_r, _) = both(dir, "rest", &["-r", "-o", "OUT", s(&img_r)]);
    same_file(&rest_o, &rest_r);
    // The reference restores our image identically.
    let cross = dir.join("cross");
    let out = run_ref(&["-r", "-o", s(&cross), s(&img_o)]);
    assert!(out.status.success());
    same_file(&cross, &rest_r);
    let (clone_o, clone_r, _) = both(dir, "clone", &["-o", "OUT", v]);
    same_file(&clone_o, &clone_r);
    same_file(&clone_o, &rest_r);
    assert_eq!(
        fs::metadata(&clone_o).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // -O over an existing file gives the same result.
    let (ow, _, _) = both(dir, "clone", &["-O", "OUT", v]);
    same_file(&ow, &rest_r);
    // stdout: raw clone and restore write the whole volume (unused clusters as zeros).
    // (A restored file ends at its last written byte: the stream may go on with zeros.)
    let restored = fs::read(&rest_r).unwrap();
    let zero_padded =
        |out: &[u8]| out.starts_with(&restored) && out[restored.len()..].iter().all(|&b| b == 0);
    let (_, _, o) = both(dir, "x", &["-o", "-", v]);
    assert!(
        zero_padded(&o.stdout),
        "raw clone to stdout != restored file"
    );
    let (_, _, o) = both(dir, "x", &["-r", "-o", "-", s(&img_r)]);
    assert!(zero_padded(&o.stdout), "restore to stdout != restored file");
    let (_, _, o) = both(dir, "x", &["-s", "-o", "-", v]);
    assert!(
        o.stdout == fs::read(&img_o).unwrap(),
        "save to stdout != saved file"
    );
    both(dir, "x", &["-r", "-n", s(&img_r)]);
    // Restore from a pipe.
    let piped = dir.join("piped");
    let mut cat = Command::new("cat")
        .arg(&img_r)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new(ours())
        .args(["-r", "-O", s(&piped), "-"])
        .stdin(cat.stdout.take().unwrap())
        .output()
        .unwrap();
    cat.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    same_file(&piped, &rest_r);
    for p in [img_o, img_r, rest_o, rest_r, cross, clone_o, clone_r, piped] {
        let _ = fs::remove_file(p);
    }
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn generated_volumes_match_the_reference() {
    const MIB: u64 = 1 << 20;
    // Name, device size, cluster size (None: mkntfs's choice), sector size, populated.
    let cases: &[(&str, u64, Option<u32>, u32, bool)] = &[
        ("4k", 64 * MIB, None, 512, true),
        ("c512", 64 * MIB, Some(512), 512, true),
        ("c64k", 64 * MIB, Some(65536), 512, false),
        ("s4096", 64 * MIB, None, 4096, false),
        ("plus3", 64 * MIB + 3, None, 512, false),
        ("plus512", 64 * MIB + 512, None, 512, false),
    ];
    for &(name, size, cluster, sector, fill) in cases {
        let t = TempDir::new(&format!("compat-{name}"));
        let vol = mkvol(
            t.path(),
            "vol",
            &VolSpec {
                cluster,
                sector,
                ..VolSpec::empty(size)
            },
        );
        if fill {
            populate(&vol, t.path());
        }
        check_volume(&vol, t.path());
    }
}

#[test]
fn device_smaller_or_larger_than_the_volume() {
    let t = TempDir::new("compat-sizes");
    let base = mkvol(t.path(), "base", &VolSpec::empty(64 << 20));
    // Device ends 100 bytes / 0 bytes into the backup boot cluster.
    for (name, len) in [("p100", 16383 * 4096 + 100), ("p0", 16383 * 4096)] {
        let vol = t.join(name);
        fs::copy(&base, &vol).unwrap();
        File::options()
            .write(true)
            .open(&vol)
            .unwrap()
            .set_len(len)
            .unwrap();
        check_volume(&vol, t.path());
    }
    // Volume much smaller than the device.
    let small = mkvol(
        t.path(),
        "small",
        &VolSpec {
            volume_size: Some(100_000 * 512),
            ..VolSpec::empty(64 << 20)
        },
    );
    check_volume(&small, t.path());
}

/// Save, restore both ways and raw clone of a volume of any size, compared with the reference
/// through images and extent by extent (no stdout streams: they would be the whole volume).
fn check_sparse_volume(vol: &Path, dir: &Path) {
    let v = s(vol);
    let (img_o, img_r, out) = both(dir, "img", &["-s", "-o", "OUT", v]);
    assert!(out.status.success(), "{v}: save failed");
    same_records(&img_o, &img_r);
    // Restores: ours of its image, its own (the reference result), its of ours.
    let (r_o, r_r, _) = both(dir, "rest", &["-r", "-o", "OUT", s(&img_r)]);
    same_sparse(&r_o, &r_r);
    let _ = fs::remove_file(&r_o);
    let cross = dir.join("cross");
    let st = run_ref(&["-r", "-o", s(&cross), s(&img_o)]);
    assert!(
        st.status.success(),
        "{v}: the reference cannot restore our image"
    );
    same_sparse(&cross, &r_r);
    let _ = fs::remove_file(&cross);
    // Raw clone: a sparse file equal to the restored volume.
    let (c_o, c_r, _) = both(dir, "clone", &["-o", "OUT", v]);
    same_sparse(&c_o, &r_r);
    same_sparse(&c_r, &r_r);
    for p in [img_o, img_r, r_r, c_o, c_r] {
        let _ = fs::remove_file(p);
    }
}

/// Volumes made by tests/mkvol.sh with the `full` profile (many files, deletions, fragmentation,
/// alternate data streams, sparse files, hard links, unicode names, an attribute list) at
/// several cluster and sector sizes, a 64 GiB near-empty volume and a device longer than its
/// volume: the whole comparison with the reference.
#[test]
fn mkvol_volumes_match_the_reference() {
    let specs: &[(u64, Option<u32>, u32, Profile)] = &[
        (64 << 20, Some(512), 512, Profile::Full),
        (64 << 20, Some(4096), 512, Profile::Full),
        (64 << 20, Some(65536), 512, Profile::Full),
        (64 << 20, Some(4096), 4096, Profile::Full),
        (512 << 20, Some(2 << 20), 512, Profile::Basic),
    ];
    let fails = parallel_map(specs, 2, |&(size, cluster, sector, profile)| {
        let t = TempDir::new("compat-mkvol");
        let spec = VolSpec {
            size,
            cluster,
            sector,
            profile,
            volume_size: None,
        };
        let vol = mkvol(t.path(), "vol.img", &spec);
        if size == 64 << 20 {
            check_volume(&vol, t.path());
        } else {
            check_sparse_volume(&vol, t.path());
        }
    });
    assert!(fails.is_empty(), "{}", fails.join("\n"));
    let t = TempDir::new("compat-mkvol-big");
    let big = mkvol(
        t.path(),
        "big.img",
        &VolSpec {
            size: 64 << 30,
            cluster: None,
            ..VolSpec::default()
        },
    );
    check_sparse_volume(&big, t.path());
    let longer = mkvol(
        t.path(),
        "longer.img",
        &VolSpec {
            volume_size: Some(60 << 20),
            ..VolSpec::default()
        },
    );
    check_volume(&longer, t.path());
}

/// Every Windows volume in ../shared/testdata (28, up to 128 GiB apparent size): our image holds
/// the reference's records byte for byte; our restore of its image, its restore of ours and our
/// raw clone equal its own restore (compared extent by extent: the big ones are sparse); stdout,
/// stderr and exit status of each run equal the reference's. The INVALID_ one is refused by both.
#[test]
fn windows_volumes_match_the_reference() {
    let vols = testdata_volumes("windows");
    assert!(
        vols.len() >= 28,
        "only {} Windows volumes found",
        vols.len()
    );
    let fails = parallel_map(&vols, 2, |zst| {
        let name = zst.file_name().unwrap().to_string_lossy().into_owned();
        let t = TempDir::new("compat-win");
        let vol = unzstd(zst, t.path());
        let v = s(&vol);
        if name.starts_with("INVALID_") {
            let (_, _, out) = both(t.path(), "img", &["-s", "-o", "OUT", v]);
            assert_eq!(out.status.code(), Some(1), "{name}: not refused");
            return;
        }
        check_sparse_volume(&vol, t.path());
    });
    assert!(
        fails.is_empty(),
        "{} volume(s) differ:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

/// A saved 64 MiB volume image, the index of its first gap record, and the parsed header.
fn sample_image(t: &TempDir) -> (Vec<u8>, usize) {
    let vol = mkvol(t.path(), "vol", &VolSpec::empty(64 << 20));
    let img = t.join("img");
    assert!(run_ref(&["-s", "-o", s(&img), s(&vol)]).status.success());
    let d = fs::read(&img).unwrap();
    // Walk the records to the first gap (format §1.2).
    let cs = u32::from_le_bytes(d[18..22].try_into().unwrap()) as usize;
    let mut p = 56;
    while d[p] == 1 {
        p += 1 + cs;
    }
    (d, p)
}

fn restore_both(t: &TempDir, tag: &str, img: &[u8], args: &[&str]) -> Output {
    let path = t.join(&format!("{tag}.img"));
    fs::write(&path, img).unwrap();
    let mut a: Vec<&str> = args.to_vec();
    a.push(s(&path));
    let (_, _, out) = both(t.path(), tag, &a);
    out
}

fn last_line(o: &Output) -> String {
    let t = String::from_utf8_lossy(&o.stdout);
    t.rsplit(['\n', '\r'])
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

#[test]
fn image_reader_messages_match_the_reference() {
    let t = TempDir::new("compat-reader");
    let (img, gap) = sample_image(&t);
    let at = format!("0x{gap:x}");
    let rn = ["-r", "-n"];
    let ro = ["-r", "-o", "OUT"];

    let mut m = img.clone();
    m[gap] = 7;
    let o = restore_both(&t, "cmd7", &m, &rn);
    assert_eq!(
        last_line(&o),
        format!("ERROR: Invalid command code 7 at input offset {at}")
    );
    assert_eq!(o.status.code(), Some(1));
    m[gap] = 0xff;
    let o = restore_both(&t, "cmdff", &m, &ro);
    assert_eq!(
        last_line(&o),
        format!("ERROR: Invalid command code -1 at input offset {at}")
    );

    let mut m = img.clone();
    m[gap + 1..gap + 9].copy_from_slice(&0i64.to_le_bytes());
    let o = restore_both(&t, "gap0", &m, &ro);
    assert_eq!(
        last_line(&o),
        format!("ERROR: Bad offset at input location {at}")
    );
    m[gap + 1..gap + 9].copy_from_slice(&99_999i64.to_le_bytes());
    let o = restore_both(&t, "gapbig", &m, &ro);
    assert_eq!(
        last_line(&o),
        format!("ERROR: restore_image: corrupt image at input offset {gap}")
    );

    // A backwards gap (and forwards again): fine for a file, refused for stdout.
    let mut m = img[..gap].to_vec();
    m.push(0);
    m.extend_from_slice(&(-3i64).to_le_bytes());
    m.push(0);
    m.extend_from_slice(&3i64.to_le_bytes());
    m.extend_from_slice(&img[gap..]);
    let o = restore_both(&t, "neg", &m, &ro);
    assert!(o.status.success());
    let o = restore_both(&t, "negout", &m, &["-r", "-o", "-"]);
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("ERROR: Cannot restore a metadata image to stdout"));

    let mut m = img.clone();
    m[16] = 11;
    let o = restore_both(&t, "major", &m, &rn);
    assert_eq!(
        last_line(&o),
        "ERROR: Do not know how to handle image format version 11.1.  Please obtain a newer version of ntfsclone."
    );
    let mut m = img.clone();
    m[3] = b'X';
    let o = restore_both(&t, "magic", &m, &rn);
    assert_eq!(
        last_line(&o),
        "ERROR: Input file is not an image! (invalid magic)"
    );

    // Accepted variants: minor 7, offset field 64, pre-10 layout, trailing bytes.
    let mut m = img.clone();
    m[17] = 7;
    assert!(restore_both(&t, "minor", &m, &ro).status.success());
    let mut m = img[..56].to_vec();
    m[46] = 64;
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&img[56..]);
    assert!(restore_both(&t, "off64", &m, &ro).status.success());
    let mut m = img[..46].to_vec();
    m[16] = 3;
    m.extend_from_slice(&img[56..]);
    assert!(restore_both(&t, "old", &m, &ro).status.success());
    let mut m = img.clone();
    m.extend((0..10_000u32).map(|i| (i * 7) as u8));
    assert!(restore_both(&t, "trail", &m, &ro).status.success());

    // Version 10.0: no backup boot record.
    let cs = 4096;
    let mut m = img[..img.len() - 1 - cs].to_vec();
    m[17] = 0;
    let o = restore_both(&t, "v100", &m, &ro);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("Warning : no alternate boot sector in image\n"));

    // Through a pipe the reference prints offsets computed from lseek() = -1.
    let mut m = img.clone();
    m[gap] = 0xff;
    let piped = |data: &[u8]| -> Output {
        let p = t.join("pipe.img");
        fs::write(&p, data).unwrap();
        let mut cat = Command::new("cat")
            .arg(&p)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let o = Command::new(ours())
            .args(["-r", "-n", "-"])
            .stdin(cat.stdout.take().unwrap())
            .output()
            .unwrap();
        let _ = cat.wait();
        o
    };
    assert_eq!(
        last_line(&piped(&m)),
        "ERROR: Invalid command code -1 at input offset 0xfffffffffffffffe"
    );
    let mut m = img.clone();
    m[gap + 1..gap + 9].copy_from_slice(&0i64.to_le_bytes());
    assert_eq!(
        last_line(&piped(&m)),
        "ERROR: Bad offset at input location 0xfffffffffffffff6"
    );

    // Truncated image: our own message names where it ended (the reference prints a stale errno);
    // on stdout, where the reference prints its ERROR line.
    let cut = img.len() / 2;
    let p = t.join("trunc.img");
    fs::write(&p, &img[..cut]).unwrap();
    let o = run_ours(&["-r", "-n", s(&p)]);
    assert_eq!(o.status.code(), Some(1));
    let l = last_line(&o);
    assert!(
        l.starts_with("ERROR: Short image file: ") && l.contains(&format!("at byte offset {cut} ")),
        "{l}"
    );

    // Absurd header numbers are refused up front.
    for (off, val) in [(18usize, 3u64), (18, 0), (30, u64::MAX / 2)] {
        let mut m = img.clone();
        if off == 18 {
            m[18..22].copy_from_slice(&(val as u32).to_le_bytes());
        } else {
            m[off..off + 8].copy_from_slice(&val.to_le_bytes());
        }
        let p = t.join("absurd.img");
        fs::write(&p, &m).unwrap();
        let o = run_ours(&["-r", "-n", s(&p)]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            last_line(&o).starts_with("ERROR: Corrupt image header"),
            "{}",
            last_line(&o)
        );
    }
}
