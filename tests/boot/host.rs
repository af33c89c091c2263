//! The installed system's own initramfs (boot/host/): `make host-initramfs` builds
//! boot/out/host-initrd.img with Debian's mkinitramfs and our hook, and QEMU boots it with the
//! installed Debian kernel. A small ext4 root disk (/dev/vdc) whose /sbin/init prints a line and
//! powers off shows that the boot went on past the initramfs.
//!
//! Also, without QEMU: the GRUB entry generator, the one-shot command and the install script.
use crate::common::*;
use crate::qemu::{Qemu, Until};
use crate::rescue::{assert_same_disk, empty_disk, make_once, reference_clone, sample_volume};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The line the root disk's /sbin/init prints.
const ROOT_LINE: &str = "host-root: /sbin/init reached";

/// The installed kernel (the newest in /lib/modules, as the build scripts pick it).
fn host_kernel() -> PathBuf {
    let mut kvers: Vec<String> = fs::read_dir("/lib/modules")
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("modules.dep").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kvers.sort_by(|a, b| version_cmp(a, b));
    let k = kvers
        .last()
        .unwrap_or_else(|| panic!("no kernel in /lib/modules (apt-get install linux-image-amd64)"));
    let vmlinuz = PathBuf::from(format!("/boot/vmlinuz-{k}"));
    assert!(
        vmlinuz.exists(),
        "no {} (apt-get install linux-image-amd64)",
        vmlinuz.display()
    );
    vmlinuz
}

/// boot/out/host-initrd.img (`make host-initramfs`).
fn host_initrd() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    make_once(&BUILT, "host-initramfs");
    root().join("boot/out/host-initrd.img")
}

/// boot/out/host-dracut.img (`make host-dracut`).
fn host_dracut() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    make_once(&BUILT, "host-dracut");
    root().join("boot/out/host-dracut.img")
}

/// Compares version strings like `sort -V` does for kernel names (numbers as numbers).
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |v: &str| -> Vec<(u64, String)> {
        v.split(['.', '-'])
            .map(|p| (p.parse().unwrap_or(0), p.to_string()))
            .collect()
    };
    key(a).cmp(&key(b))
}

/// A small ext4 root file system: static busybox and an /sbin/init that prints `ROOT_LINE`
/// and powers off.
fn root_disk(dir: &Path) -> PathBuf {
    let stage = dir.join("root-stage");
    for d in ["bin", "sbin", "dev", "proc", "sys", "run", "tmp"] {
        fs::create_dir_all(stage.join(d)).unwrap();
    }
    fs::copy(require("busybox"), stage.join("bin/busybox")).unwrap();
    fs::write(
        stage.join("sbin/init"),
        format!("#!/bin/busybox sh\necho \"{ROOT_LINE}\"\n/bin/busybox sync\n/bin/busybox poweroff -f\n"),
    )
    .unwrap();
    run(Command::new("chmod")
        .arg("755")
        .arg(stage.join("sbin/init")));
    let img = dir.join("root.img");
    let out = run(Command::new(require("mkfs.ext4"))
        .args(["-q", "-F", "-L", "hostroot", "-d"])
        .arg(&stage)
        .arg(&img)
        .arg("16M"));
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

/// A machine that boots the installed kernel with the host initramfs and `cmdline` (768 MiB)
/// until QEMU exits (the root's /sbin/init powers off); its `run` fails on timeout or kernel panic.
fn host_machine(dir: &Path, what: &str, initrd: &Path, cmdline: &str) -> Qemu {
    Qemu::new(dir, what)
        .memory(768)
        .no_net()
        .kernel(
            &host_kernel(),
            initrd,
            &format!("console=ttyS0,115200 root=/dev/vdc ro panic=-1 no_timer_check {cmdline}"),
        )
        .until(Until::PowerOff)
        .timeout(Duration::from_secs(600))
}

fn lines(log: &str) -> Vec<&str> {
    log.lines().map(|l| l.trim_end_matches('\r')).collect()
}

/// A clone job between two virtio disks with `after=continue`: the ok marker, the reference's
/// clone on the target, then the root file system's /sbin/init.
fn clone_then_continue(what: &str, initrd: &Path) {
    let t = TempDir::new(what);
    let src = sample_volume(t.path());
    let tgt = empty_disk(&t.join("target.img"));
    // Writable: dracut checks the root file system before mounting it.
    let rootfs = root_disk(t.path());
    let want = reference_clone(&src, t.path());
    let b = host_machine(
        t.path(),
        what,
        initrd,
        "ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb ntfsclone.after=continue",
    )
    .disk(&src, true)
    .disk(&tgt, false)
    .disk(&rootfs, false)
    .run();
    let l = lines(&b.log);
    let marker = l
        .iter()
        .position(|l| l.starts_with("ntfsclone-job: "))
        .unwrap_or_else(|| panic!("{what}: no ntfsclone-job marker:\n{}", b.log));
    assert_eq!(l[marker], "ntfsclone-job: ok", "{what}:\n{}", b.log);
    // after=continue: the root file system was mounted and its /sbin/init ran, after the job.
    let root_at = l
        .iter()
        .position(|l| l.contains(ROOT_LINE))
        .unwrap_or_else(|| {
            panic!(
                "{what}: the boot did not go on to the root's /sbin/init:\n{}",
                b.log
            )
        });
    assert!(
        root_at > marker,
        "{what}: the root's init ran before the job:\n{}",
        b.log
    );
    assert_same_disk(&tgt, &want, what);
    assert!(b.marker_secs.is_some());
}

#[test]
fn host_initramfs_clone_job_then_boot_continues() {
    clone_then_continue("host-clone", &host_initrd());
}

/// The dracut module (boot/host/dracut/90ntfsclone) in an image made by `make host-dracut`.
#[test]
fn host_dracut_clone_job_then_boot_continues() {
    clone_then_continue("host-dracut-clone", &host_dracut());
}

/// A job that fails (its target never appears) with `after=poweroff`: the failure marker, then
/// the machine switches off instead of going on to the root file system (there is none here).
#[test]
fn host_initramfs_failed_job_then_poweroff() {
    let t = TempDir::new("host-poweroff");
    let src = sample_volume(t.path());
    let initrd = host_initrd();
    let b = host_machine(
        t.path(),
        "host-poweroff",
        &initrd,
        "ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdz ntfsclone.wait=3 \
         ntfsclone.after=poweroff",
    )
    .disk(&src, true)
    .run();
    let l = lines(&b.log);
    assert!(
        l.contains(&"ntfsclone-job: failed (exit 2)"),
        "no failure marker:\n{}",
        b.log
    );
    assert!(
        b.log.contains("target /dev/vdz did not appear within 3 s"),
        "{}",
        b.log
    );
    assert!(!b.log.contains(ROOT_LINE), "{}", b.log);
    assert!(
        !b.log.contains("Gave up waiting for root"),
        "the boot went on instead of powering off:\n{}",
        b.log
    );
}

#[test]
fn host_initramfs_without_parameters_does_nothing() {
    let t = TempDir::new("host-noop");
    let src = sample_volume(t.path());
    let before = fs::read(&src).unwrap();
    let tgt = empty_disk(&t.join("target.img"));
    let rootfs = root_disk(t.path());
    let initrd = host_initrd();
    // Our script is in the initramfs (so its silence below means something).
    let list = run(Command::new(require("lsinitramfs")).arg(&initrd));
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    for f in [
        "scripts/init-premount/ntfsclone",
        "usr/lib/ntfsclone-job.sh",
        "usr/lib/hw.sh",
        "usr/bin/ntfsclone",
    ] {
        assert!(
            list.lines().any(|l| l == f),
            "{f} is not in the host initramfs"
        );
    }
    let b = host_machine(t.path(), "host-noop", &initrd, "")
        .disk(&src, false)
        .disk(&tgt, false)
        .disk(&rootfs, true)
        .run();
    assert!(
        b.log.contains(ROOT_LINE),
        "initramfs-tools did not go on to the root's /sbin/init:\n{}",
        b.log
    );
    assert!(
        !b.log.contains("ntfsclone-job") && !b.log.contains("ntfsclone:"),
        "our script said something without ntfsclone.* parameters:\n{}",
        b.log
    );
    assert!(fs::read(&src).unwrap() == before, "the source disk changed");
    assert!(
        fs::read(&tgt).unwrap().iter().all(|&b| b == 0),
        "the target disk was written"
    );
}

/// Runs a script of boot/host/ under sh with `envs`; returns (success, stdout, stderr).
fn host_script(script: &str, args: &[&str], envs: &[(&str, &Path)]) -> (bool, String, String) {
    let mut c = Command::new("sh");
    c.arg(root().join("boot/host").join(script)).args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = run(&mut c);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A job list with one good job (a quote in its title), one without a mode, one with a bad id.
const JOBS: &str = r#"job restore-windows "Restore Windows from /images/win's.img" \
    "ntfsclone.mode=restore ntfsclone.target=LABEL=Windows ntfsclone.image=LABEL=data:/images/win.img ntfsclone.after=reboot"
job no-mode "Nothing" "quiet"
job "bad id" "Bad" "ntfsclone.mode=clone"
"#;

#[test]
fn grub_generator_adds_one_entry_per_job() {
    let t = TempDir::new("grub-gen");
    let conf = t.join("ntfsclone");
    fs::write(&conf, JOBS).unwrap();
    let boot = t.join("boot");
    fs::create_dir_all(&boot).unwrap();
    for f in [
        "vmlinuz-6.1.0-9-amd64",
        "initrd.img-6.1.0-9-amd64",
        "vmlinuz-6.1.0-10-amd64",
    ] {
        fs::write(boot.join(f), b"").unwrap();
    }
    let mut c = Command::new("sh");
    c.arg(root().join("boot/host/grub/42_ntfsclone"))
        .env("NTFSCLONE_CONFIG", &conf)
        .env("NTFSCLONE_BOOT_DIR", &boot)
        .env("GRUB_DEVICE", "/dev/sda2")
        .env("GRUB_DEVICE_UUID", "0123-abcd")
        .env("GRUB_CMDLINE_LINUX", "console=ttyS0");
    let out = run(&mut c);
    let cfg = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "42_ntfsclone failed: {err}");
    // One entry: the job with a mode and a good id; the others are named on stderr.
    assert_eq!(cfg.matches("menuentry ").count(), 1, "{cfg}");
    assert!(
        cfg.contains(r"menuentry 'ntfsclone: Restore Windows from /images/win'\''s.img' --class ntfsclone --id 'ntfsclone-restore-windows' {"),
        "{cfg}"
    );
    // The newest kernel that has an initramfs (6.1.0-10 has none), the root by UUID.
    let linux = cfg
        .lines()
        .find(|l| l.trim_start().starts_with("linux"))
        .unwrap();
    assert!(linux.contains("vmlinuz-6.1.0-9-amd64 root=UUID=0123-abcd ro console=ttyS0 ntfsclone.mode=restore ntfsclone.target=LABEL=Windows ntfsclone.image=LABEL=data:/images/win.img ntfsclone.after=reboot"), "{linux}");
    assert!(cfg.contains("initrd.img-6.1.0-9-amd64"), "{cfg}");
    assert!(
        err.contains("'no-mode'") && err.contains("'bad id'"),
        "{err}"
    );
    // GRUB's own parser accepts it.
    let file = t.join("grub.cfg");
    fs::write(&file, &cfg).unwrap();
    let chk = run(Command::new(require("grub-script-check")).arg(&file));
    assert!(
        chk.status.success(),
        "grub-script-check: {}",
        String::from_utf8_lossy(&chk.stderr)
    );
}

#[test]
fn next_boot_sets_grub_reboot_to_the_job_entry() {
    let t = TempDir::new("next-boot");
    let conf = t.join("ntfsclone");
    fs::write(&conf, JOBS).unwrap();
    let grub_cfg = t.join("grub.cfg");
    fs::write(
        &grub_cfg,
        "menuentry 'x' --class ntfsclone --id 'ntfsclone-restore-windows' {\n}\n",
    )
    .unwrap();
    let stubs = t.join("stubs");
    fs::create_dir_all(&stubs).unwrap();
    fs::write(
        stubs.join("grub-reboot"),
        format!("#!/bin/sh\necho \"$@\" >>'{}'\n", t.join("calls").display()),
    )
    .unwrap();
    run(Command::new("chmod")
        .arg("755")
        .arg(stubs.join("grub-reboot")));
    let path = PathBuf::from(format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", stubs.display()));
    let envs = [
        ("NTFSCLONE_CONFIG", conf.as_path()),
        ("NTFSCLONE_GRUB_CFG", grub_cfg.as_path()),
        ("PATH", path.as_path()),
    ];
    let (ok, out, err) = host_script("ntfsclone-next-boot", &["--list"], &envs);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("restore-windows\tRestore Windows from /images/win's.img\n"),
        "{out}"
    );
    // A job that is not configured, or not in grub.cfg: refused, grub-reboot never runs.
    let (ok, _, err) = host_script("ntfsclone-next-boot", &["nope"], &envs);
    assert!(!ok && err.contains("no job 'nope'"), "{err}");
    let (ok, _, err) = host_script("ntfsclone-next-boot", &["no-mode"], &envs);
    assert!(!ok && err.contains("run update-grub"), "{err}");
    assert!(
        !t.join("calls").exists(),
        "grub-reboot ran for a refused job"
    );
    let (ok, out, err) = host_script("ntfsclone-next-boot", &["restore-windows"], &envs);
    assert!(ok, "{err}");
    assert!(out.contains("the next boot runs 'Restore Windows"), "{out}");
    assert_eq!(
        fs::read_to_string(t.join("calls")).unwrap(),
        "ntfsclone-restore-windows\n"
    );
}

#[test]
fn install_and_uninstall_into_a_root_directory() {
    let t = TempDir::new("host-install");
    let dest = t.join("root");
    // A stand-in for the static binary (install.sh refuses dynamic ones).
    let bin = t.join("ntfsclone");
    fs::copy(require("busybox"), &bin).unwrap();
    let b = bin.to_str().unwrap();
    let d = dest.to_str().unwrap();
    let (ok, out, err) = host_script("install.sh", &["--root", d, "--binary", b], &[]);
    assert!(ok, "install.sh: {out}{err}");
    for f in [
        "usr/local/lib/ntfsclone/ntfsclone",
        "usr/local/lib/ntfsclone/ntfsclone-job.sh",
        "usr/local/lib/ntfsclone/ntfsclone-boot",
        "usr/local/sbin/ntfsclone-next-boot",
        "etc/initramfs-tools/hooks/ntfsclone",
        "etc/initramfs-tools/scripts/init-premount/ntfsclone",
        "usr/lib/dracut/modules.d/90ntfsclone/module-setup.sh",
        "usr/lib/dracut/modules.d/90ntfsclone/ntfsclone-pre-mount.sh",
        "etc/grub.d/42_ntfsclone",
        "etc/default/ntfsclone",
    ] {
        assert!(dest.join(f).is_file(), "{f} not installed:\n{out}");
    }
    assert_eq!(
        fs::read(dest.join("etc/initramfs-tools/scripts/init-premount/ntfsclone")).unwrap(),
        fs::read(root().join("boot/host/ntfsclone-boot")).unwrap()
    );
    // A dynamic binary is refused.
    let (ok, _, err) = host_script("install.sh", &["--root", d, "--binary", "/bin/ls"], &[]);
    assert!(!ok && err.contains("not static"), "{err}");
    // Uninstall removes every file (the unchanged example job list too), or keeps a changed list.
    fs::write(dest.join("etc/default/ntfsclone"), JOBS).unwrap();
    let (ok, out, err) = host_script("install.sh", &["--uninstall", "--root", d], &[]);
    assert!(ok, "install.sh --uninstall: {out}{err}");
    assert!(out.contains("kept /etc/default/ntfsclone"), "{out}");
    let mut left = Vec::new();
    for e in walk(&dest) {
        left.push(e.strip_prefix(&dest).unwrap().display().to_string());
    }
    assert_eq!(left, ["etc/default/ntfsclone"], "left after uninstall");
}

/// The regular files under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}
