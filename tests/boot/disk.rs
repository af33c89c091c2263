//! Whole-disk jobs of the rescue system (`ntfsclone.mode=disk-clone|disk-save|disk-restore`)
//! in QEMU, and the restored disk's ESP booting under OVMF. The test disk is a small GPT disk
//! like a Windows machine's: an ESP (FAT32) with a GRUB EFI program as `\EFI\BOOT\BOOTX64.EFI`
//! that prints `ESP-BOOT-OK` and powers off, an MSR with data, the sample NTFS volume, and boot
//! loader bytes between the table and the first partition. Results are checked on the host:
//! the table (`sfdisk -d`, `sfdisk --verify`, `sgdisk -v`), the NTFS partition against the
//! reference's clone of the volume, the ESP with `fsck.fat -n` and its files (mtools), the MSR
//! and the boot loader bytes byte for byte. The job script's arguments for the disk modes are
//! also checked on the host, without QEMU (`jobs::run_job`).
use crate::common::*;
use crate::qemu::{Firmware, Qemu, Until};
use crate::rescue::{reference_clone, sample_volume, HttpServer, VOL_BYTES};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Size of the test disk, and of the larger disks it is cloned or restored onto.
const DISK_MIB: u64 = 96;
const BIG_MIB: u64 = 128;
/// Partitions (start, sectors): ESP, MSR, NTFS (the sample volume).
const ESP: (u64, u64) = (2048, 81920);
const MSR: (u64, u64) = (83968, 2048);
const NTFS: (u64, u64) = (86016, VOL_BYTES / 512);
/// How long one boot may take.
const TIMEOUT: Duration = Duration::from_secs(240);
/// What the ESP's EFI program prints before it powers off.
const ESP_MARK: &str = "ESP-BOOT-OK";

/// Runs a bash script in `dir`; fails the test with its output if it fails.
fn sh(dir: &Path, script: &str) -> String {
    let out = run(Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir));
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds `disk` in `dir` (see the module comment); the ESP's files stay in `dir/EFI`.
fn test_disk(dir: &Path) -> PathBuf {
    for tool in [
        "sfdisk",
        "mkfs.vfat",
        "mcopy",
        "grub-mkstandalone",
        "fsck.fat",
        "sgdisk",
    ] {
        require(tool);
    }
    let vol = sample_volume(dir);
    sh(
        dir,
        &format!(
            "truncate -s {DISK_MIB}M disk
             printf 'label: gpt\\nstart={},size={},type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\nstart={},size={},type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\\nstart={},size={},type=EBD0A0A2-B9E5-4433-87C0-68B6B7263599\\n' | sfdisk -q disk
             printf 'echo {ESP_MARK}\\nhalt\\n' > grub.cfg
             mkdir -p EFI/BOOT
             grub-mkstandalone -O x86_64-efi -o EFI/BOOT/BOOTX64.EFI --install-modules='normal echo halt' \
                 --modules='normal echo halt' --locales= --fonts= --themes= boot/grub/grub.cfg=grub.cfg
             echo 'disk test' > EFI/hello.txt
             truncate -s $(({}*512)) esp
             mkfs.vfat -F 32 -s 1 -n ESP esp >/dev/null
             MTOOLS_SKIP_CHECK=1 mcopy -s -i esp EFI ::/
             dd if=esp of=disk bs=512 seek={} conv=notrunc,sparse status=none
             head -c 200000 /dev/urandom | dd of=disk bs=512 seek={} conv=notrunc status=none
             dd if={} of=disk bs=512 seek={} conv=notrunc,sparse status=none
             printf 'bootloader' | dd of=disk bs=1 seek=$((40*512)) conv=notrunc status=none",
            ESP.0,
            ESP.1,
            MSR.0,
            MSR.1,
            NTFS.0,
            NTFS.1,
            ESP.1,
            ESP.0,
            MSR.0,
            vol.display(),
            NTFS.0,
        ),
    );
    dir.join("disk")
}

fn sectors(f: &Path, (start, n): (u64, u64)) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut h = fs::File::open(f).unwrap();
    h.seek(SeekFrom::Start(start * 512)).unwrap();
    let mut v = vec![0u8; (n * 512) as usize];
    h.read_exact(&mut v).unwrap();
    v
}

fn tool_ok(cmd: &mut Command, what: &str) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sfdisk -d` without the lines that name the file and the last usable LBA.
fn table_dump(f: &Path) -> Vec<String> {
    let text = tool_ok(Command::new("sfdisk").arg("-d").arg(f), "sfdisk -d");
    let name = f.to_str().unwrap();
    text.lines()
        .filter(|l| !l.starts_with("device:") && !l.starts_with("last-lba:"))
        .map(|l| l.replace(name, "DISK"))
        .collect()
}

/// Checks a disk `got` of `mib` MiB copied from the test disk `src` in `dir`: the table (the
/// backup GPT at the end of `got`), the boot loader bytes, the MSR, the NTFS partition against
/// the reference's clone of the sample volume, the ESP with fsck.fat and its files.
fn check_copy(dir: &Path, src: &Path, got: &Path, mib: u64) {
    let v = tool_ok(
        Command::new("sfdisk").arg("--verify").arg(got),
        "sfdisk --verify",
    );
    assert!(v.contains("No errors detected"), "{v}");
    let g = tool_ok(Command::new("sgdisk").arg("-v").arg(got), "sgdisk -v");
    assert!(g.contains("No problems found"), "{g}");
    assert_eq!(table_dump(src), table_dump(got), "partition table");
    let dump = tool_ok(Command::new("sfdisk").arg("-d").arg(got), "sfdisk -d");
    // The backup GPT (32 sectors of entries and the header) ends the disk.
    let last = mib * 2048 - 34;
    assert!(dump.contains(&format!("last-lba: {last}")), "{dump}");
    assert!(
        sectors(src, (34, 2014)) == sectors(got, (34, 2014)),
        "boot loader area"
    );
    assert!(sectors(src, MSR) == sectors(got, MSR), "MSR partition");
    let want = reference_clone(&dir.join("source.img"), dir);
    assert!(
        sectors(got, NTFS) == want,
        "NTFS partition differs from the reference's clone of the volume"
    );
    let esp = dir.join("esp-check");
    fs::write(&esp, sectors(got, ESP)).unwrap();
    tool_ok(Command::new("fsck.fat").arg("-n").arg(&esp), "fsck.fat -n");
    for f in ["EFI/BOOT/BOOTX64.EFI", "EFI/hello.txt"] {
        let out = dir.join("esp-file");
        let _ = fs::remove_file(&out);
        tool_ok(
            Command::new(require("mcopy"))
                .env("MTOOLS_SKIP_CHECK", "1")
                .args(["-n", "-i"])
                .arg(&esp)
                .arg(format!("::/{f}"))
                .arg(&out),
            "mcopy",
        );
        assert!(
            fs::read(&out).unwrap() == fs::read(dir.join(f)).unwrap(),
            "ESP file {f}"
        );
    }
}

fn blank(path: &Path, mib: u64) -> PathBuf {
    fs::File::create(path).unwrap().set_len(mib << 20).unwrap();
    path.to_path_buf()
}

#[test]
fn disk_clone_job() {
    let t = TempDir::new("boot-disk-clone");
    let src = test_disk(t.path());
    let tgt = blank(&t.join("target.img"), BIG_MIB);
    let b = Qemu::new(t.path(), "disk-clone")
        .rescue("ntfsclone.mode=disk-clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb")
        .no_net()
        .disk(&src, true)
        .disk(&tgt, false)
        .timeout(TIMEOUT)
        .job();
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    assert!(
        b.log
            .contains("ntfsclone --disk --overwrite /dev/vdb /dev/vda"),
        "{}",
        b.log
    );
    assert!(!b.log.contains("did not re-read"), "{}", b.log);
    check_copy(t.path(), &src, &tgt, BIG_MIB);
}

/// The disk modes run ntfsclone with `--disk` and the partition modes' arguments (the job
/// script on the host under busybox sh, with stubs: see `jobs::run_job`).
#[test]
fn disk_jobs_run_ntfsclone_with_disk() {
    let cases = [
        (
            "ntfsclone.mode=disk-clone ntfsclone.source=/dev/src ntfsclone.target=/dev/tgt ntfsclone.opts=--rescue",
            "--rescue\n--disk\n--overwrite\n/dev/tgt\n/dev/src\n--\n",
        ),
        (
            "ntfsclone.mode=disk-save ntfsclone.source=/dev/src ntfsclone.image=/dev/store",
            // The save, then the image read back (a disk image: with --disk).
            "--disk\n--save-image\n--overwrite\n/dev/store\n/dev/src\n--\n\
             --disk\n--restore-image\n--no-action\n/dev/store\n--\n",
        ),
        (
            "ntfsclone.mode=disk-save ntfsclone.source=/dev/src ntfsclone.image=/dev/store:/i/pc.img.gz",
            "--disk\n--save-image\n--output\n-\n/dev/src\n--\n\
             --disk\n--restore-image\n--no-action\n-\n--\n",
        ),
        (
            "ntfsclone.mode=disk-restore ntfsclone.target=/dev/tgt ntfsclone.image=/dev/store:/i/pc.img",
            "--disk\n--restore-image\n--overwrite\n/dev/tgt\nMNT/i/pc.img\n--\n",
        ),
    ];
    for (job, want) in cases {
        let t = TempDir::new("disk-job-args");
        fs::create_dir_all(t.join("mnt/i")).unwrap();
        fs::write(t.join("mnt/i/pc.img"), b"x").unwrap();
        let r = crate::jobs::run_job(t.path(), job, 0);
        assert_eq!(
            crate::jobs::marker(&r.out),
            "ntfsclone-job: ok",
            "{job}\n{}",
            r.out
        );
        // After a restore or clone the target's table is re-read (here /dev/tgt is no device).
        assert_eq!(
            r.out
                .contains("did not re-read the partition table of /dev/tgt"),
            job.contains("/dev/tgt"),
            "{}",
            r.out
        );
        let mnt = t.join("mnt");
        assert_eq!(
            r.args.replace(mnt.to_str().unwrap(), "MNT"),
            want,
            "{job}\n{}",
            r.out
        );
    }
    // A disk mode still needs its devices.
    let t = TempDir::new("disk-job-missing");
    let r = crate::jobs::run_job(
        t.path(),
        "ntfsclone.mode=disk-restore ntfsclone.target=/dev/tgt",
        0,
    );
    assert_eq!(r.status, 2, "{}", r.out);
    assert!(r.out.contains("needs ntfsclone.image="), "{}", r.out);
    assert!(r.args.is_empty(), "ntfsclone ran: {}", r.args);
}

/// A disk job whose target is a partition (of another disk) is refused; nothing is written.
#[test]
fn disk_job_refuses_a_partition_target() {
    let t = TempDir::new("boot-disk-refuse");
    let src = test_disk(t.path());
    let other = t.join("other.img");
    fs::copy(&src, &other).unwrap();
    let b = Qemu::new(t.path(), "disk-refuse")
        .rescue("ntfsclone.mode=disk-clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb3")
        .no_net()
        .disk(&src, true)
        .disk(&other, false)
        .timeout(TIMEOUT)
        .job();
    assert_eq!(b.marker, "ntfsclone-job: failed (exit 2)", "{}", b.log);
    assert!(
        b.log
            .contains("needs whole disks; /dev/vdb3 is a partition of /dev/vdb"),
        "{}",
        b.log
    );
    assert!(
        fs::read(&other).unwrap() == fs::read(&src).unwrap(),
        "the target disk changed"
    );
}

/// disk-save to a file on a FAT32 store disk (gzip'd on the fly), then disk-restore of that
/// image over HTTP onto a larger blank disk.
#[test]
fn disk_save_to_fat32_then_restore_over_http() {
    let t = TempDir::new("boot-disk-save");
    let src = test_disk(t.path());
    let store = blank(&t.join("store.img"), 64);
    tool_ok(
        Command::new(require("mkfs.vfat"))
            .args(["-F", "32", "-n", "STORE"])
            .arg(&store),
        "mkfs.vfat",
    );
    let b = Qemu::new(t.path(), "disk-save")
        .rescue(
            "ntfsclone.mode=disk-save ntfsclone.source=/dev/vda ntfsclone.image=/dev/vdb:/images/pc.img.gz",
        )
        .no_net()
        .disk(&src, true)
        .disk(&store, false)
        .timeout(TIMEOUT)
        .job();
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);

    let www = t.join("www");
    fs::create_dir_all(&www).unwrap();
    tool_ok(
        Command::new(require("mcopy"))
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&store)
            .arg("::/images/pc.img.gz")
            .arg(www.join("pc.img.gz")),
        "mcopy (the saved image)",
    );
    sh(&www, "gunzip pc.img.gz");
    // The image verifies on the host.
    let v = run_ours(&[
        "--restore-image",
        "--disk",
        "--no-action",
        www.join("pc.img").to_str().unwrap(),
    ]);
    assert!(
        v.status.success() && String::from_utf8_lossy(&v.stdout).contains("Image checksums: ok"),
        "verify: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );

    let server = HttpServer::start(&www);
    let tgt = blank(&t.join("target.img"), BIG_MIB);
    let job = format!(
        "ntfsclone.mode=disk-restore ntfsclone.target=/dev/vda ntfsclone.image=http://10.0.2.2:{}/pc.img",
        server.port
    );
    let b = Qemu::new(t.path(), "disk-restore-http")
        .rescue(&job)
        .user_net("model=virtio-net-pci")
        .disk(&tgt, false)
        .timeout(TIMEOUT)
        .job();
    drop(server);
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    check_copy(t.path(), &src, &tgt, BIG_MIB);
}

/// The test disk saved and restored onto a larger blank disk on the host with our binary; the
/// restored disk boots under OVMF from its ESP: GRUB prints the mark and powers off.
#[test]
fn restored_esp_boots_under_ovmf() {
    let t = TempDir::new("boot-disk-esp");
    let src = test_disk(t.path());
    let img = t.join("disk.img");
    let big = blank(&t.join("big.img"), BIG_MIB);
    let out = run_ours(&[
        "--save-image",
        "--disk",
        "--output",
        img.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "save: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_ours(&[
        "-r",
        "--disk",
        "-O",
        big.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_copy(t.path(), &src, &big, BIG_MIB);

    let r = Qemu::new(t.path(), "esp-boot")
        .memory(256)
        .no_net()
        .firmware(Firmware::Ovmf)
        .drive(format!("file={},format=raw", big.display()))
        .until(Until::PowerOff)
        .timeout(TIMEOUT)
        .run();
    let log = r.log;
    let st = r.status.expect("QEMU exited");
    assert!(st.success(), "esp-boot: qemu exited with {st}:\n{log}");
    assert!(
        log.contains(ESP_MARK),
        "no {ESP_MARK} on the console:\n{log}"
    );
}
