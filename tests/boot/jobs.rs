//! The boot shell scripts run on the host, without QEMU: the shared job script
//! (`boot/lib/ntfsclone-job.sh`) under busybox sh with stub `ntfsclone`, `mount` and `umount`
//! commands and plain files for devices, and `boot/demo.sh`'s timeout.
use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one run of the job script left behind.
pub(crate) struct JobRun {
    /// The script's console output.
    pub(crate) out: String,
    /// The subshell's exit status.
    pub(crate) status: i32,
    /// ntfsclone's arguments, one per line, each run ending with a `--` line.
    pub(crate) args: String,
}

/// Runs `job_parse CMDLINE; (job_run)` from the shared job script under busybox sh, in `dir`
/// (also the working directory), with `umount` exiting `umount_rc`. Devices are plain paths
/// (resolving, overlap and file system checks are stubbed); mounts are no-ops on `dir/mnt`.
/// busybox sh runs its applets before looking at PATH, so only `ntfsclone` is a PATH stub.
pub(crate) fn run_job(dir: &Path, cmdline: &str, umount_rc: i32) -> JobRun {
    run_job_with(dir, cmdline, umount_rc, &[])
}

/// `run_job` with environment variables for the stubs: `MOUNT_OK` (a shell pattern: a mount whose
/// ` ARGS ` do not match it fails), `STUB_IMAGE` (a file the stub tool writes as the saved image).
fn run_job_with(dir: &Path, cmdline: &str, umount_rc: i32, env: &[(&str, &str)]) -> JobRun {
    let stubs = dir.join("stubs");
    fs::create_dir_all(&stubs).unwrap();
    let stub = |name: &str, body: &str| {
        let p = stubs.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        run(Command::new("chmod").arg("755").arg(&p));
    };
    // The stub tool records its arguments; a save to `-` writes a known image on stdout, a
    // restore from `-` keeps what it read.
    stub(
        "ntfsclone",
        r#"for a in "$@"; do printf '%s\n' "$a"; done >>"$T/args"
echo -- >>"$T/args"
case " $* " in
*" --output - "*) if [ -n "$STUB_IMAGE" ]; then cat "$STUB_IMAGE"; else printf 'IMAGE-BYTES\n'; fi ;;
*" - ") cat >"$T/stdin" ;;
esac
exit 0"#,
    );
    let lib = root().join("boot/lib/ntfsclone-job.sh");
    // busybox sh runs its own applets before PATH: mount, umount and dmesg are functions.
    let script = format!(
        r#". '{lib}'
mount() {{
	echo "mount $*" >>"$T/mounts"
	[ -n "$MOUNT_OK" ] || return 0
	case " $* " in $MOUNT_OK) return 0 ;; esac
	echo "mount: refused" >&2
	return 32
}}
umount() {{ return {umount_rc}; }}
dmesg() {{ :; }}
store_drop_caches() {{ :; }}
job_network() {{ :; }}
job_resolve() {{ echo "$1"; }}
job_overlaps() {{ return 1; }}
job_is_boot_medium() {{ return 1; }}
job_is_ntfs() {{ return 1; }}
job_fstype() {{ echo ext4; }}
job_parse "$CMDLINE"
( job_dir="$T/state" job_mnt="$T/mnt"; job_run )
echo "status $?""#,
        lib = lib.display()
    );
    let path = format!("{}:/usr/bin:/bin", stubs.display());
    let out = run(Command::new(require("busybox"))
        .arg("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env("T", dir)
        .env("CMDLINE", cmdline)
        .env_remove("MOUNT_OK")
        .env_remove("STUB_IMAGE")
        .envs(env.iter().copied()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let status = text
        .lines()
        .find_map(|l| l.strip_prefix("status "))
        .unwrap_or_else(|| panic!("no status line:\n{text}"))
        .parse()
        .unwrap();
    JobRun {
        out: text,
        status,
        args: fs::read_to_string(dir.join("args")).unwrap_or_default(),
    }
}

pub(crate) fn marker(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("ntfsclone-job: "))
        .unwrap_or_else(|| panic!("no marker:\n{out}"))
}

#[test]
fn job_save_fails_when_the_image_store_does_not_unmount() {
    let job = "ntfsclone.mode=save ntfsclone.source=/dev/src ntfsclone.image=/dev/store:/img/v.img";
    // Control: the same save with a working umount is ok.
    let t = TempDir::new("job-umount-ok");
    let r = run_job(t.path(), job, 0);
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    assert_eq!(r.status, 0, "{}", r.out);
    let t = TempDir::new("job-umount-fails");
    let r = run_job(t.path(), job, 1);
    assert_eq!(
        marker(&r.out),
        "ntfsclone-job: failed (exit 1)",
        "{}",
        r.out
    );
    assert_eq!(r.status, 1, "{}", r.out);
    assert!(r.out.contains("unmounting /dev/store failed"), "{}", r.out);
    // A restore that read its image completely is reported the same way.
    let t = TempDir::new("job-umount-restore");
    fs::create_dir_all(t.join("mnt/img")).unwrap();
    fs::write(t.join("mnt/img/v.img"), b"x").unwrap();
    let job =
        "ntfsclone.mode=restore ntfsclone.target=/dev/tgt ntfsclone.image=/dev/store:/img/v.img";
    let r = run_job(t.path(), job, 1);
    assert_eq!(
        marker(&r.out),
        "ntfsclone-job: failed (exit 1)",
        "{}",
        r.out
    );
}

#[test]
fn job_values_with_quotes_and_wildcards_stay_one_argument() {
    let t = TempDir::new("job-quotes");
    // A word that is a glob matching a file in the working directory stays as written.
    fs::create_dir_all(t.join("ntfsclone.source=")).unwrap();
    fs::write(t.join("ntfsclone.source=/dev-sda1"), b"").unwrap();
    let name = "it's \"$(touch pwned)\"*.img.gz".replace(' ', "");
    let job = format!(
        "ntfsclone.mode=save ntfsclone.source=/dev* ntfsclone.image=/dev/store:/{name} \
         ntfsclone.opts=--rescue,*,--force"
    );
    let r = run_job(t.path(), &job, 0);
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    assert_eq!(
        r.args,
        "--rescue\n*\n--force\n--save-image\n--output\n-\n/dev*\n--\n\
         --restore-image\n--no-action\n-\n--\n",
        "{}",
        r.out
    );
    assert!(!t.join("pwned").exists(), "a value ran as a command");
    // The gzip'd image went to the file of exactly that name.
    let gz = t.join("mnt").join(&name);
    let out = run(Command::new(require("gunzip")).arg("-c").arg(&gz));
    assert!(
        out.status.success(),
        "no gzip'd image at {gz:?}:\n{}",
        r.out
    );
    assert_eq!(out.stdout, b"IMAGE-BYTES\n");

    // Restoring from that file streams it back through gunzip.
    fs::remove_file(t.join("args")).unwrap();
    let job = format!(
        "ntfsclone.mode=restore ntfsclone.target=/dev/tgt ntfsclone.image=/dev/store:/{name}"
    );
    let r = run_job(t.path(), &job, 0);
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    assert_eq!(
        r.args, "--restore-image\n--overwrite\n/dev/tgt\n-\n--\n",
        "{}",
        r.out
    );
    assert_eq!(fs::read(t.join("stdin")).unwrap(), b"IMAGE-BYTES\n");
}

#[test]
fn job_smb_url_mounts_the_share_without_printing_the_password() {
    let t = TempDir::new("job-smb");
    fs::create_dir_all(t.join("mnt/pc 1")).unwrap();
    fs::write(t.join("mnt/pc 1/win.img"), b"x").unwrap();
    let job = "ntfsclone.mode=restore ntfsclone.target=/dev/tgt \
               ntfsclone.image=smb://LAB;tech:p%40ss@192.0.2.5:4450/images/pc%201/win.img \
               ntfsclone.mountopts=vers=3.0";
    let r = run_job(t.path(), job, 0);
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    let mounts = fs::read_to_string(t.join("mounts")).unwrap();
    assert_eq!(
        mounts,
        format!(
            "mount -t cifs //192.0.2.5/images {} -o ro,user=tech,pass=p@ss,domain=LAB,port=4450,vers=3.0\n",
            t.join("mnt").display()
        )
    );
    assert_eq!(
        r.args,
        format!(
            "--restore-image\n--overwrite\n/dev/tgt\n{}\n--\n",
            t.join("mnt/pc 1/win.img").display()
        )
    );
    assert!(
        !r.out.contains("p@ss") && !r.out.contains("p%40ss"),
        "{}",
        r.out
    );

    // A comma cannot reach the kernel through busybox mount: refused, nothing mounted.
    let t = TempDir::new("job-smb-comma");
    let job = "ntfsclone.mode=save ntfsclone.source=/dev/src \
               ntfsclone.image=smb://tech:a%2Cb@192.0.2.5/images/win.img";
    let r = run_job(t.path(), job, 0);
    assert_eq!(
        marker(&r.out),
        "ntfsclone-job: failed (exit 2)",
        "{}",
        r.out
    );
    assert!(
        r.out.contains("comma") && !r.out.contains("a,b"),
        "{}",
        r.out
    );
    assert!(!t.join("mounts").exists(), "it mounted:\n{}", r.out);
}

#[test]
fn job_nfs_falls_back_to_the_v3_export_that_holds_the_path() {
    let t = TempDir::new("job-nfs3");
    // The server has no NFS v4 and exports /srv/images over v3.
    let job = "ntfsclone.mode=save ntfsclone.source=/dev/src \
               ntfsclone.image=nfs://192.0.2.5:2049/srv/images/pc1/win.img";
    let r = run_job_with(
        t.path(),
        job,
        0,
        &[("MOUNT_OK", "*-t nfs *192.0.2.5:/srv/images *")],
    );
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    assert!(
        r.out
            .contains("image store: 192.0.2.5:/srv/images (NFS v3)\n"),
        "{}",
        r.out
    );
    let mnt = t.join("mnt");
    let mounts = fs::read_to_string(t.join("mounts")).unwrap();
    let m = mnt.display();
    assert_eq!(
        mounts,
        format!(
            "mount -t nfs4 -o rw,port=2049,vers=4,addr=192.0.2.5 192.0.2.5:/ {m}\n\
             mount -t nfs -o rw,port=2049,vers=3,nolock,retry=0 192.0.2.5:/srv/images/pc1 {m}\n\
             mount -t nfs -o rw,port=2049,vers=3,nolock,retry=0 192.0.2.5:/srv/images {m}\n"
        )
    );
    // The file is below the export's mount point; the missing directory was made.
    let img = mnt.join("pc1/win.img");
    assert!(mnt.join("pc1").is_dir(), "{}", r.out);
    assert_eq!(
        r.args,
        format!(
            "--save-image\n--overwrite\n{i}\n/dev/src\n--\n\
             --restore-image\n--no-action\n{i}\n--\n",
            i = img.display()
        )
    );

    // No export at all: failed, with both versions' reasons.
    let t = TempDir::new("job-nfs-none");
    let r = run_job_with(t.path(), job, 0, &[("MOUNT_OK", "nothing")]);
    assert_eq!(
        marker(&r.out),
        "ntfsclone-job: failed (exit 2)",
        "{}",
        r.out
    );
    assert!(
        r.out.contains("NFS v4: mount: refused") && r.out.contains("no NFS v3 export holds"),
        "{}",
        r.out
    );
}

#[test]
fn job_split_writes_parts_and_restore_reads_them_back() {
    let t = TempDir::new("job-split");
    // Exactly two parts of 1 MiB: no empty third part.
    let image: Vec<u8> = (0..2u32 << 20).map(|i| (i * 31 / 7) as u8).collect();
    let src = t.join("image.bin");
    fs::write(&src, &image).unwrap();
    fs::create_dir_all(t.join("mnt/img")).unwrap();
    fs::write(t.join("mnt/img/v.img.002"), b"stale").unwrap();
    let job =
        "ntfsclone.mode=save ntfsclone.source=/dev/src ntfsclone.image=/dev/store:/img/v.img \
               ntfsclone.split=1M ntfsclone.verify=no";
    let r = run_job_with(t.path(), job, 0, &[("STUB_IMAGE", src.to_str().unwrap())]);
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    let mut names: Vec<String> = fs::read_dir(t.join("mnt/img"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["v.img", "v.img.001"], "{}", r.out);
    assert_eq!(
        fs::read(t.join("mnt/img/v.img")).unwrap(),
        &image[..1 << 20]
    );
    assert_eq!(
        fs::read(t.join("mnt/img/v.img.001")).unwrap(),
        &image[1 << 20..]
    );
    // verify=no: ntfsclone ran once.
    assert_eq!(r.args.matches("--\n").count(), 1, "{}", r.args);

    fs::remove_file(t.join("args")).unwrap();
    let job =
        "ntfsclone.mode=restore ntfsclone.target=/dev/tgt ntfsclone.image=/dev/store:/img/v.img";
    let r = run_job(t.path(), job, 0);
    assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{}", r.out);
    assert_eq!(r.args, "--restore-image\n--overwrite\n/dev/tgt\n-\n--\n");
    assert!(
        fs::read(t.join("stdin")).unwrap() == image,
        "the parts were not joined in order"
    );

    // Sizes it refuses.
    for (split, why) in [("1x", "a size like"), ("512K", "1M or more")] {
        let t = TempDir::new("job-split-bad");
        let job = format!(
            "ntfsclone.mode=save ntfsclone.source=/dev/src ntfsclone.image=/dev/store:/v.img \
             ntfsclone.split={split}"
        );
        let r = run_job(t.path(), &job, 0);
        assert_eq!(
            marker(&r.out),
            "ntfsclone-job: failed (exit 2)",
            "{}",
            r.out
        );
        assert!(r.out.contains(why), "{split}: {}", r.out);
    }
    let t = TempDir::new("job-split-dev");
    let job = "ntfsclone.mode=save ntfsclone.source=/dev/src ntfsclone.image=/dev/store \
               ntfsclone.split=1G";
    let r = run_job(t.path(), job, 0);
    assert_eq!(
        marker(&r.out),
        "ntfsclone-job: failed (exit 2)",
        "{}",
        r.out
    );
    assert!(r.out.contains("needs an image file"), "{}", r.out);
}

#[test]
fn job_refuses_an_unknown_mode() {
    let t = TempDir::new("job-mode");
    let r = run_job(t.path(), "quiet ntfsclone.mode=backup", 0);
    assert_eq!(
        marker(&r.out),
        "ntfsclone-job: failed (exit 2)",
        "{}",
        r.out
    );
    assert_eq!(r.status, 2);
    assert!(r.args.is_empty(), "ntfsclone ran: {}", r.args);
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                found.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn demo_timeout_kills_qemu() {
    let out = crate::rescue::boot_out();
    let t = TempDir::new("demo-timeout");
    // TMPDIR puts the demo's work directory (named in QEMU's -drive arguments) under ours.
    let r = run(Command::new("sh")
        .arg(root().join("boot/demo.sh"))
        .arg(&out)
        .env("TMPDIR", t.path())
        .env("DEMO_TIMEOUT", "3"));
    let text =
        String::from_utf8_lossy(&r.stdout).into_owned() + &String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "the demo did not time out:\n{text}");
    assert!(
        text.contains("QEMU did not finish within 3 s"),
        "no timeout message:\n{text}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let left = processes_mentioning(&t.path().display().to_string());
    for p in &left {
        if let Some(pid) = p.split(':').next() {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
    assert!(left.is_empty(), "the demo left processes running: {left:?}");
}

#[test]
fn job_store_type_from_signatures_without_blkid() {
    // busybox has no blkid applet: the rescue system names the store's type from its signature.
    let t = TempDir::new("job-fstype");
    let img = |name: &str, mb: u64| {
        let p = t.join(name);
        fs::File::create(&p).unwrap().set_len(mb << 20).unwrap();
        p
    };
    let fat = img("fat.img", 64);
    let _ = fs::remove_file(&fat);
    let mk = |cmd: &mut Command, what: &str| {
        let o = run(cmd);
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    mk(
        Command::new(require("mkfs.vfat"))
            .args(["-F", "32", "-C"])
            .arg(&fat)
            .arg("65536"),
        "mkfs.vfat",
    );
    let exfat = img("exfat.img", 16);
    mk(
        Command::new(require("mkfs.exfat")).arg(&exfat),
        "mkfs.exfat",
    );
    let ext4 = img("ext4.img", 16);
    mk(
        Command::new(require("mkfs.ext4"))
            .args(["-q", "-F"])
            .arg(&ext4),
        "mkfs.ext4",
    );
    let blank = img("blank.img", 1);
    let lib = root().join("boot/lib/ntfsclone-job.sh");
    let script = format!(
        r#". '{}'
blkid() {{ return 1; }}
for f in "$@"; do echo "$(job_fstype "$f")"; done"#,
        lib.display()
    );
    let out = run(Command::new(require("busybox"))
        .args(["sh", "-c", &script, "sh"])
        .args([&fat, &exfat, &ext4, &blank]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "vfat\nexfat\next4\n\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A save to an image named `*.zst` compresses with ntfsclone's own `--zstd`; the read-back and a
/// restore of it need no option (zstd is recognised by its magic).
#[test]
fn job_zst_images_are_compressed_by_ntfsclone() {
    for (job, want) in [
        (
            "ntfsclone.mode=save ntfsclone.source=/dev/src ntfsclone.image=/dev/store:/i/pc.img.zst",
            "--zstd\n--save-image\n--overwrite\nMNT/i/pc.img.zst\n/dev/src\n--\n\
             --restore-image\n--no-action\nMNT/i/pc.img.zst\n--\n",
        ),
        (
            "ntfsclone.mode=restore ntfsclone.target=/dev/tgt ntfsclone.image=/dev/store:/i/pc.img.zst",
            "--restore-image\n--overwrite\n/dev/tgt\nMNT/i/pc.img.zst\n--\n",
        ),
    ] {
        let t = TempDir::new("job-zst");
        fs::create_dir_all(t.join("mnt/i")).unwrap();
        fs::write(t.join("mnt/i/pc.img.zst"), b"x").unwrap();
        let r = run_job(t.path(), job, 0);
        assert_eq!(marker(&r.out), "ntfsclone-job: ok", "{job}\n{}", r.out);
        let mnt = t.join("mnt");
        assert_eq!(
            r.args.replace(mnt.to_str().unwrap(), "MNT"),
            want,
            "{job}\n{}",
            r.out
        );
    }
}
