//! Metadata mode (`-m`, `-m -s`): one definition of the result, the real `ntfsclone -m -s`
//! followed by the real `ntfsclone -r`. Our direct `-m -o` clone, the real `-r` of our `-m -s`
//! image and our `-r` of it must all be byte-identical to that; our image and our console
//! output are also compared with the reference's (they are identical today).
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn same(a: &Path, b: &Path, what: &str) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    if x != y {
        let first = x.iter().zip(&y).position(|(p, q)| p != q);
        panic!(
            "{what}: {a:?} ({} bytes) and {b:?} ({} bytes) differ, first at byte {first:?}",
            x.len(),
            y.len()
        );
    }
}

fn ok(o: &std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs every comparison on `vol` with the extra options `args` (e.g. `-t`).
fn compare(vol: &Path, dir: &Path, args: &[&str]) {
    let p = |n: &str| dir.join(n);
    let with = |first: Vec<&'static str>, last: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
        a.extend(first.into_iter().map(String::from));
        a.extend(last.iter().map(|x| x.to_string()));
        a
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(|x| x.as_str()).collect()
    }

    let ref_img = p("ref.mimg");
    let a = with(vec!["-m", "-s", "-o"], &[s(&ref_img), s(vol)]);
    let ref_out = run_ref(&strs(&a));
    ok(&ref_out, "real -m -s");
    ok(
        &run_ref(&["-r", "-o", s(&p("ref.r")), s(&ref_img)]),
        "real -r",
    );

    let our_img = p("our.mimg");
    let a = with(vec!["-m", "-s", "-o"], &[s(&our_img), s(vol)]);
    let our_out = run_ours(&strs(&a));
    ok(&our_out, "our -m -s");
    let a = with(vec!["-m", "-o"], &[s(&p("our.m")), s(vol)]);
    ok(&run_ours(&strs(&a)), "our -m");
    ok(
        &run_ref(&["-r", "-o", s(&p("our.rr")), s(&our_img)]),
        "real -r of ours",
    );
    ok(
        &run_ours(&["-r", "-o", s(&p("our.ro")), s(&our_img)]),
        "our -r of ours",
    );

    let tag = format!("{vol:?} {args:?}");
    same(&p("ref.r"), &p("our.m"), &format!("{tag}: -m clone"));
    same(
        &p("ref.r"),
        &p("our.rr"),
        &format!("{tag}: real -r of our image"),
    );
    same(
        &p("ref.r"),
        &p("our.ro"),
        &format!("{tag}: our -r of our image"),
    );
    same(&ref_img, &our_img, &format!("{tag}: image"));
    assert_eq!(
        String::from_utf8_lossy(&our_out.stdout),
        String::from_utf8_lossy(&ref_out.stdout),
        "{tag}: stdout of -m -s"
    );
    for f in ["ref.mimg", "ref.r", "our.mimg", "our.m", "our.rr", "our.ro"] {
        let _ = std::fs::remove_file(p(f));
    }
}

/// Mounts `vol` with ntfs-3g, runs `f` on the mount point, unmounts (always).
fn with_mount(vol: &Path, dir: &Path, f: impl FnOnce(&Path)) {
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = run(Command::new(require("ntfs-3g")).arg(vol).arg(&mnt));
    assert!(
        st.status.success(),
        "ntfs-3g: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            for _ in 0..20 {
                if run(Command::new("umount").arg(&self.0)).status.success() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = run(Command::new("umount").arg("-l").arg(&self.0));
        }
    }
    let guard = Umount(mnt.clone());
    f(&mnt);
    drop(guard);
}

/// A volume whose directories keep stale INDX blocks (many files created, most deleted),
/// with resident files and a resident stream.
fn stale_volume(vol: &Path, dir: &Path, size: u64, cluster: u32) {
    let f = std::fs::File::create(vol).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let st = run(Command::new(require("mkntfs"))
        .args(["-F", "-f", "-q", "-c", &cluster.to_string()])
        .arg(vol));
    assert!(
        st.status.success(),
        "mkntfs: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    with_mount(vol, dir, |m| {
        let d = m.join("d");
        std::fs::create_dir(&d).unwrap();
        for i in 0..800 {
            std::fs::write(
                d.join(format!("a-long-name-for-index-blocks-{i}")),
                format!("x{i}"),
            )
            .unwrap();
        }
        for i in 0..800 {
            if i % 10 != 0 {
                std::fs::remove_file(d.join(format!("a-long-name-for-index-blocks-{i}"))).unwrap();
            }
        }
        std::fs::write(m.join("small.txt"), "secret resident data").unwrap();
        std::fs::write(m.join("small.txt:ads"), "secret stream").unwrap();
    });
}

/// Runs `jobs` on two threads (the test machines have two cores).
fn parallel(jobs: Vec<Box<dyn FnOnce() + Send>>) {
    let jobs = std::sync::Mutex::new(jobs);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| loop {
                    let Some(job) = jobs.lock().unwrap().pop() else {
                        break;
                    };
                    job();
                })
            })
            .collect();
        for h in hs {
            h.join().expect("a volume failed (see above)");
        }
    });
}

#[test]
fn generated_volumes_match_real_metadata_image_and_restore() {
    require("ntfsclone");
    let mkvol = root().join("tests/mkvol.sh");
    // (device size, cluster, sector, extra options)
    let cases: &[(&str, u32, u32, &[&str])] = &[
        ("32M", 512, 512, &[]),
        ("64M", 4096, 512, &["--full-logfile"]),
        ("128M", 65536, 512, &[]),
        ("64M", 4096, 4096, &["-t"]),
    ];
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for &(size, cl, sec, args) in cases {
        let mkvol = mkvol.clone();
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-gen");
            let vol = t.join("v.img");
            let st = run(Command::new("bash").arg(&mkvol).arg(&vol).args([
                size,
                &cl.to_string(),
                &sec.to_string(),
                "full",
            ]));
            assert!(
                st.status.success(),
                "mkvol: {}",
                String::from_utf8_lossy(&st.stderr)
            );
            compare(&vol, t.path(), &[]);
            compare(&vol, t.path(), args);
        }));
    }
    for (size, cl) in [(32u64 << 20, 4096u32), (32 << 20, 512)] {
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-stale");
            let vol = t.join("v.img");
            stale_volume(&vol, t.path(), size, cl);
            compare(&vol, t.path(), &[]);
            compare(&vol, t.path(), &["-t"]);
            // Our restore refuses stdout for such an image, like the reference.
            let img = t.join("i");
            ok(&run_ours(&["-m", "-s", "-o", s(&img), s(&vol)]), "-m -s");
            let o = run_ours(&["-r", "-o", "-", s(&img)]);
            assert!(!o.status.success());
        }));
    }
    parallel(jobs);
}

#[test]
fn windows_volumes_match_real_metadata_image_and_restore() {
    require("ntfsclone");
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    let vols: Vec<PathBuf> = testdata_volumes("windows")
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("INVALID"))
        .collect();
    let mut n = 0;
    for zst in vols {
        // Apparent sizes are in the names; at most about 1 GiB.
        let name = zst.file_name().unwrap().to_string_lossy().to_string();
        let small = ["MiB", "KiB"].iter().any(|u| name.contains(u)) || name.contains("_1GiB");
        if !small {
            continue;
        }
        n += 1;
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-win");
            let vol = unzstd(&zst, t.path());
            compare(&vol, t.path(), &[]);
        }));
    }
    assert!(n >= 15, "expected the small Windows volumes, found {n}");
    parallel(jobs);
}

#[test]
fn new_serial_is_set_not_zeroed() {
    // The reference writes serial 0 with -m --new-serial (quirk b); we write a new one.
    let t = TempDir::new("meta-serial");
    let vol = t.join("v.img");
    stale_volume(&vol, t.path(), 16 << 20, 4096);
    let out = t.join("m");
    let o = run_ours(&["-m", "--new-serial", "-o", s(&out), s(&vol)]);
    ok(&o, "-m --new-serial");
    assert!(String::from_utf8_lossy(&o.stdout).contains("New serial number      : 0x"));
    let a = std::fs::read(&out).unwrap();
    let serial = &a[0x48..0x50];
    assert_ne!(serial, &[0u8; 8], "serial must not be 0");
    assert_ne!(
        serial,
        &std::fs::read(&vol).unwrap()[0x48..0x50],
        "serial must change"
    );
    let backup = &a[a.len() - 512 + 0x48..a.len() - 512 + 0x50];
    assert_eq!(serial, backup, "backup boot sector gets the same serial");
}
