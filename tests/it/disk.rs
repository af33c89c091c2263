//! `--disk`: whole disks made in the test (sfdisk, mkfs.vfat + mtools, mkntfs) saved, restored,
//! verified and cloned; each NTFS partition against the reference's restore of its own image,
//! the ESP with fsck.fat and its files, raw partitions and boot areas byte for byte.
use crate::common::{ours, require, run, run_ours, run_ref, TempDir};
use std::path::Path;
use std::process::Command;

/// Runs a bash script in `dir`; fails the test with its stderr if it fails.
fn sh(dir: &Path, script: &str) -> String {
    let out = run(Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir));
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Partitions of the GPT test disk (start, sectors): ESP (FAT32), MSR (raw), NTFS, Linux (raw).
const GPT_PARTS: [(u64, u64); 4] = [
    (2048, 81920),
    (83968, 2048),
    (86016, 73728),
    (159744, 32768),
];

/// A 96 MiB GPT disk like a Windows machine's: an ESP with files, an MSR with data, an NTFS
/// partition, a Linux partition with some data, and boot loader bytes between the table and
/// the first partition.
fn gpt_disk(t: &TempDir) {
    for tool in ["sfdisk", "mkfs.vfat", "mcopy", "mkntfs"] {
        require(tool);
    }
    sh(
        t.path(),
        "truncate -s 96M disk
         printf 'label: gpt\\nstart=2048,size=81920,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\nstart=83968,size=2048,type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\\nstart=86016,size=73728,type=EBD0A0A2-B9E5-4433-87C0-68B6B7263599\\nstart=159744,size=32768,type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n' | sfdisk -q disk
         truncate -s $((81920*512)) esp
         mkfs.vfat -F 32 -s 1 -n ESP esp >/dev/null
         mkdir -p EFI/BOOT
         echo 'boot me' > EFI/BOOT/hello.txt
         head -c 300000 /dev/urandom > big.bin
         MTOOLS_SKIP_CHECK=1 mcopy -s -i esp EFI ::/
         MTOOLS_SKIP_CHECK=1 mcopy -i esp big.bin ::/
         dd if=esp of=disk bs=512 seek=2048 conv=notrunc,sparse status=none
         head -c 100000 /dev/urandom | dd of=disk bs=512 seek=83968 conv=notrunc status=none
         truncate -s $((73728*512)) ntfs
         mkntfs -F -f -q -s 512 -p 86016 -H 0 -S 0 ntfs >/dev/null 2>&1
         dd if=ntfs of=disk bs=512 seek=86016 conv=notrunc,sparse status=none
         head -c 50000 /dev/urandom | dd of=disk bs=512 seek=$((159744+1000)) conv=notrunc status=none
         printf 'bootloader' | dd of=disk bs=1 seek=$((40*512)) conv=notrunc status=none",
    );
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &std::process::Output, want: &str) {
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(want), "want {want:?} in: {err}");
}

fn sectors(f: &Path, start: u64, n: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut h = std::fs::File::open(f).unwrap();
    h.seek(SeekFrom::Start(start * 512)).unwrap();
    let mut v = vec![0u8; (n * 512) as usize];
    h.read_exact(&mut v).unwrap();
    v
}

/// `sfdisk -d` without the lines that name the file and the last LBA.
fn table_dump(f: &Path) -> Vec<String> {
    let out = run(Command::new(require("sfdisk")).arg("-d").arg(f));
    let s = ok(&out, "sfdisk -d");
    let name = f.to_str().unwrap().to_string();
    s.lines()
        .filter(|l| !l.starts_with("device:") && !l.starts_with("last-lba:"))
        .map(|l| l.replace(&name, "DISK"))
        .collect()
}

/// Checks a restored GPT disk `got` against the source `src`: table, partitions, ESP. The NTFS
/// partition equals `ntfs_ref` (the reference's restore onto a blank partition) or, when None
/// (a target that held other data: unused clusters keep it, as with the reference restoring
/// to a device), the reference saves it to the same image as the source.
fn check_restored(t: &TempDir, src: &Path, got: &Path, ntfs_ref: Option<&[u8]>) {
    let v = run(Command::new(require("sfdisk")).arg("--verify").arg(got));
    let vs = ok(&v, "sfdisk --verify");
    assert!(vs.contains("No errors detected"), "{vs}");
    assert_eq!(table_dump(src), table_dump(got));
    let sg = run(Command::new(require("sgdisk")).arg("-v").arg(got));
    assert!(ok(&sg, "sgdisk -v").contains("No problems found"));
    // Boot loader bytes between the table and the first partition.
    assert_eq!(sectors(src, 34, 2014), sectors(got, 34, 2014));
    // Raw partitions byte for byte; NTFS as the reference restores its own image.
    for &(s, n) in &[GPT_PARTS[1], GPT_PARTS[3]] {
        assert!(sectors(src, s, n) == sectors(got, s, n), "partition at {s}");
    }
    let (s, n) = GPT_PARTS[2];
    match ntfs_ref {
        Some(r) => assert!(sectors(got, s, n) == r, "NTFS partition differs"),
        None => {
            let part = t.join("ntfs-check");
            let img = t.join("ntfs-check.img");
            std::fs::write(&part, sectors(got, s, n)).unwrap();
            let _ = std::fs::remove_file(&img);
            ok(
                &run_ref(&["-s", "-o", img.to_str().unwrap(), part.to_str().unwrap()]),
                "reference -s",
            );
            assert!(
                std::fs::read(&img).unwrap() == std::fs::read(t.join("ntfs.ref.img")).unwrap(),
                "the restored NTFS partition saves to another image"
            );
        }
    }
    // The ESP: fsck.fat finds nothing; its files are there.
    let (s, n) = GPT_PARTS[0];
    let esp = t.join("esp-check");
    std::fs::write(&esp, sectors(got, s, n)).unwrap();
    let f = run(Command::new(require("fsck.fat")).arg("-n").arg(&esp));
    ok(&f, "fsck.fat -n");
    let m = run(Command::new(require("mtype"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&esp)
        .arg("::/EFI/BOOT/hello.txt"));
    assert_eq!(ok(&m, "mtype"), "boot me\n");
    let m = run(Command::new(require("mcopy"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-n")
        .arg("-i")
        .arg(&esp)
        .arg("::/big.bin")
        .arg(t.join("big-check.bin")));
    ok(&m, "mcopy");
    assert!(
        std::fs::read(t.join("big.bin")).unwrap()
            == std::fs::read(t.join("big-check.bin")).unwrap()
    );
}

/// The GPT disk of [`gpt_disk`] saved with `-s --disk` as `img`; returns the reference's
/// bytes of its NTFS partition ([`ntfs_reference`] onto a blank partition).
fn saved_gpt_disk(t: &TempDir) -> Vec<u8> {
    gpt_disk(t);
    let ntfs_ref = ntfs_reference(t, false);
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    ok(
        &run_ours(&["-s", "--disk", "-o", &p("img"), &p("disk")]),
        "save",
    );
    ntfs_ref
}

/// The reference's restore of its own image of the NTFS partition onto a blank partition (the
/// expected bytes); with `junk`, onto a partition full of 'j' bytes.
fn ntfs_reference(t: &TempDir, junk: bool) -> Vec<u8> {
    let part = t.join("ntfs");
    let img = t.join("ntfs.ref.img");
    let raw = t.join("ntfs.ref.raw");
    ok(
        &run_ref(&["-s", "-o", img.to_str().unwrap(), part.to_str().unwrap()]),
        "reference -s",
    );
    let (_, n) = GPT_PARTS[2];
    let fill = if junk {
        format!(
            "head -c {} /dev/zero | tr '\\0' 'j' > ntfs.ref.raw",
            n * 512
        )
    } else {
        format!("rm -f ntfs.ref.raw; truncate -s {} ntfs.ref.raw", n * 512)
    };
    sh(t.path(), &fill);
    ok(
        &run_ref(&["-r", "-O", raw.to_str().unwrap(), img.to_str().unwrap()]),
        "reference -r",
    );
    std::fs::read(raw).unwrap()
}

#[test]
fn gpt_save_restore_verify_extract() {
    let t = TempDir::new("disk-gpt");
    gpt_disk(&t);
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    let out = run_ours(&["--save-image", "--disk", "--output", &p("img"), &p("disk")]);
    let text = ok(&out, "save");
    assert!(
        text.contains("Partition 1: FAT32") && text.contains("Partition 3: NTFS"),
        "{text}"
    );
    assert!(
        text.contains("Partition 2: raw") && text.contains("Partition 4: raw"),
        "{text}"
    );
    let ntfs_ref = ntfs_reference(&t, false);

    // Onto a larger blank disk: the backup GPT moves to its end.
    sh(t.path(), "truncate -s 128M big");
    ok(
        &run_ours(&[
            "--restore-image",
            "--disk",
            "--overwrite",
            &p("big"),
            &p("img"),
        ]),
        "restore",
    );
    check_restored(&t, &t.join("disk"), &t.join("big"), Some(&ntfs_ref));
    let dump = ok(
        &run(Command::new(require("sfdisk")).arg("-d").arg(t.join("big"))),
        "sfdisk",
    );
    assert!(dump.contains("last-lba: 262110"), "{dump}");

    // -r recognises a disk image without --disk; a new file gets the source's size.
    ok(
        &run_ours(&["-r", "-o", &p("new"), &p("img")]),
        "restore to a new file",
    );
    assert_eq!(std::fs::metadata(t.join("new")).unwrap().len(), 96 << 20);
    check_restored(&t, &t.join("disk"), &t.join("new"), Some(&ntfs_ref));

    // Verify; then the NTFS special image taken out with dd restores with the reference.
    let v = ok(
        &run_ours(&["--restore-image", "--disk", "--no-action", &p("img")]),
        "verify",
    );
    assert!(v.contains("Image checksums: ok"), "{v}");
    let line = v
        .lines()
        .find(|l| l.starts_with("Partition 3: NTFS special image at image byte "))
        .unwrap_or_else(|| panic!("no extraction line: {v}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (off, len) = (nums[1], nums[2]);
    sh(
        t.path(),
        &format!(
            "dd if=img of=p3.img bs=4M iflag=skip_bytes,count_bytes skip={off} count={len} status=none
             truncate -s {} p3.raw",
            GPT_PARTS[2].1 * 512
        ),
    );
    ok(
        &run_ref(&["-r", "-O", &p("p3.raw"), &p("p3.img")]),
        "reference restore of the extracted image",
    );
    assert!(std::fs::read(t.join("p3.raw")).unwrap() == ntfs_ref);

    // A flipped byte: verify fails and names the range.
    let mut bad = std::fs::read(t.join("img")).unwrap();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    std::fs::write(t.join("bad"), &bad).unwrap();
    failed(
        &run_ours(&["-r", "--disk", "-n", &p("bad")]),
        "checksum mismatch",
    );
    // ... and a restore from it stops before writing the damaged chunk's data.
    sh(t.path(), "truncate -s 128M bad-target");
    failed(
        &run_ours(&["-r", "--disk", "-O", &p("bad-target"), &p("bad")]),
        "checksum mismatch",
    );

    // A target too small is refused with both sizes and left untouched.
    sh(t.path(), "head -c 50M /dev/zero | tr '\\0' 'x' > small");
    let before = std::fs::read(t.join("small")).unwrap();
    failed(
        &run_ours(&["-r", "--disk", "-O", &p("small"), &p("img")]),
        "it has 52428800 bytes, the disk needs",
    );
    assert!(
        std::fs::read(t.join("small")).unwrap() == before,
        "small target was written"
    );
}

#[test]
fn gpt_pipes_clone_and_new_ids() {
    let t = TempDir::new("disk-pipe");
    gpt_disk(&t);
    let _ = ntfs_reference(&t, false);
    let o = crate::common::ours();
    // save | restore through a pipe, onto an existing disk full of junk.
    sh(
        t.path(),
        &format!(
            "head -c 112M /dev/zero | tr '\\0' 'j' > piped
             {o} -s --disk -o - disk 2>/dev/null | {o} -r --disk -O piped - >/dev/null 2>&1"
        ),
    );
    check_restored(&t, &t.join("disk"), &t.join("piped"), None);
    // From a pipe without --disk: recognised by itself.
    sh(
        t.path(),
        &format!(
            "head -c 112M /dev/zero | tr '\\0' 'j' > nodisk
             {o} -s --disk -o - disk 2>/dev/null | {o} -r -O nodisk - >/dev/null 2>&1"
        ),
    );
    check_restored(&t, &t.join("disk"), &t.join("nodisk"), None);
    // Clone, same size: the disk comes back byte for byte.
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    ok(
        &run_ours(&["--disk", "--overwrite", &p("clone"), &p("disk")]),
        "clone",
    );
    assert!(std::fs::read(t.join("clone")).unwrap() == std::fs::read(t.join("disk")).unwrap());
    // A clone onto a target too small: refused with both sizes, the target untouched.
    sh(t.path(), "head -c 50M /dev/zero | tr '\\0' 'x' > small");
    let before = std::fs::read(t.join("small")).unwrap();
    failed(
        &run_ours(&["--disk", "--overwrite", &p("small"), &p("disk")]),
        "it has 52428800 bytes, the disk needs",
    );
    assert!(std::fs::read(t.join("small")).unwrap() == before);
    // --new-serial: the NTFS partition's serial number changes in both boot sectors.
    ok(
        &run_ours(&["--disk", "--new-serial", "-O", &p("serial"), &p("disk")]),
        "clone with a new serial",
    );
    let (s, n) = GPT_PARTS[2];
    let (a, b) = (
        sectors(&t.join("disk"), s, n),
        sectors(&t.join("serial"), s, n),
    );
    let total = u64::from_le_bytes(a[0x28..0x30].try_into().unwrap()) as usize;
    let backup = total * 512;
    assert_ne!(a[0x48..0x50], b[0x48..0x50]);
    assert_eq!(b[0x48..0x50], b[backup + 0x48..backup + 0x50]);
    assert!(a[0x50..backup] == b[0x50..backup]);
    // JSON progress: one stream over the disk, each line naming its partition.
    sh(
        t.path(),
        &format!("{o} -s --disk -o img disk --progress-fd 3 3>progress.json >/dev/null 2>&1"),
    );
    let json = std::fs::read_to_string(t.join("progress.json")).unwrap();
    for n in 1..=4 {
        assert!(json.contains(&format!("\"partition\":{n}")), "{json}");
    }
    let last = json.lines().last().unwrap();
    assert!(
        last.contains("\"phase\":\"done\"") && !last.contains("error"),
        "{last}"
    );
    // New ids: other GUIDs, the same partitions.
    ok(
        &run_ours(&["--disk", "--new-disk-ids", "-O", &p("ids"), &p("disk")]),
        "clone with new ids",
    );
    let (a, b) = (table_dump(&t.join("disk")), table_dump(&t.join("ids")));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        if x.starts_with("label-id:") {
            assert_ne!(x, y);
        } else if x.contains("uuid=") {
            assert_ne!(x, y);
            let strip = |s: &str| s.split("uuid=").next().unwrap().to_string();
            assert_eq!(strip(x), strip(y));
        } else {
            assert_eq!(x, y);
        }
    }
    let v = run(Command::new(require("sfdisk"))
        .arg("--verify")
        .arg(t.join("ids")));
    ok(&v, "sfdisk --verify");
}

#[test]
fn dos_label_with_logical_partitions() {
    let t = TempDir::new("disk-dos");
    for tool in ["sfdisk", "mkfs.vfat"] {
        require(tool);
    }
    sh(
        t.path(),
        "truncate -s 64M disk
         printf 'label: dos\\nlabel-id: 0x12345678\\nstart=2048,size=40960,type=c\\nstart=43008,size=86016,type=5\\nstart=45056,size=20480,type=83\\nstart=67584,size=20480,type=7\\n' | sfdisk -q disk
         truncate -s $((40960*512)) fat
         mkfs.vfat -F 16 -s 1 fat >/dev/null
         echo hi > a.txt
         MTOOLS_SKIP_CHECK=1 mcopy -i fat a.txt ::/
         dd if=fat of=disk bs=512 seek=2048 conv=notrunc,sparse status=none
         head -c 70000 /dev/urandom | dd of=disk bs=512 seek=45100 conv=notrunc status=none
         printf 'grub' | dd of=disk bs=1 seek=1000 conv=notrunc status=none",
    );
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    ok(
        &run_ours(&["-s", "--disk", "-o", &p("img"), &p("disk")]),
        "save",
    );
    sh(t.path(), "truncate -s 80M big");
    ok(
        &run_ours(&["-r", "--disk", "-O", &p("big"), &p("img")]),
        "restore",
    );
    assert_eq!(table_dump(&t.join("disk")), table_dump(&t.join("big")));
    ok(
        &run(Command::new(require("sfdisk"))
            .arg("--verify")
            .arg(t.join("big"))),
        "verify",
    );
    // Boot code, table, EBRs and partitions byte for byte (the disk is made of nothing else).
    let src = std::fs::read(t.join("disk")).unwrap();
    let got = std::fs::read(t.join("big")).unwrap();
    assert!(got[..src.len()] == src[..], "restored DOS disk differs");
    // New signature on request.
    ok(
        &run_ours(&["--disk", "--new-disk-ids", "-O", &p("ids"), &p("disk")]),
        "clone",
    );
    let ids = std::fs::read(t.join("ids")).unwrap();
    assert_ne!(ids[0x1B8..0x1BC], src[0x1B8..0x1BC]);
    assert!(ids[0x1BC..] == src[0x1BC..]);
}

#[test]
fn bad_disks_are_refused() {
    let t = TempDir::new("disk-bad");
    require("sfdisk");
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    sh(t.path(), "truncate -s 8M blank");
    failed(
        &run_ours(&["-s", "--disk", "-o", &p("img"), &p("blank")]),
        "no partition table",
    );
    // A whole-disk file system.
    require("mkfs.vfat");
    sh(t.path(), "truncate -s 8M fs; mkfs.vfat fs >/dev/null");
    failed(
        &run_ours(&["-s", "--disk", "-o", &p("img2"), &p("fs")]),
        "without --disk",
    );
    // Overlapping partitions (written past sfdisk's checks).
    sh(
        t.path(),
        "truncate -s 8M ov
         printf 'label: dos\\nstart=2048,size=4096,type=83\\nstart=8192,size=4096,type=83\\n' | sfdisk -q ov
         printf '\\x00\\x10\\x00\\x00' | dd of=ov bs=1 seek=$((0x1CE+8)) conv=notrunc status=none",
    );
    failed(
        &run_ours(&["-s", "--disk", "-o", &p("img3"), &p("ov")]),
        "overlap",
    );
    // Both GPT copies damaged.
    sh(
        t.path(),
        "truncate -s 8M g
         printf 'label: gpt\\nstart=2048,size=4096\\n' | sfdisk -q g
         printf 'X' | dd of=g bs=1 seek=520 conv=notrunc status=none
         printf 'X' | dd of=g bs=1 seek=$((8*1024*1024-512+8)) conv=notrunc status=none",
    );
    failed(
        &run_ours(&["-s", "--disk", "-o", &p("img4"), &p("g")]),
        "GPT",
    );
    // Only the primary damaged: a warning, the backup is used.
    sh(
        t.path(),
        "truncate -s 8M g2
         printf 'label: gpt\\nstart=2048,size=4096\\n' | sfdisk -q g2
         printf 'X' | dd of=g2 bs=1 seek=520 conv=notrunc status=none",
    );
    let out = run_ours(&["-s", "--disk", "-o", &p("img5"), &p("g2")]);
    ok(&out, "save with a damaged primary GPT");
    assert!(String::from_utf8_lossy(&out.stderr).contains("primary GPT is damaged"));
    // Its restore has a good primary again.
    ok(
        &run_ours(&["-r", "--disk", "-o", &p("g2-restored"), &p("img5")]),
        "restore",
    );
    let v = run(Command::new(require("sfdisk"))
        .arg("--verify")
        .arg(t.join("g2-restored")));
    assert!(ok(&v, "verify").contains("No errors detected"));
    // A truncated image.
    let img = std::fs::read(t.join("img5")).unwrap();
    std::fs::write(t.join("short"), &img[..img.len() - 100]).unwrap();
    let out = run_ours(&["-r", "--disk", "-n", &p("short")]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loop device over a file (with a logical sector size, partitions scanned), detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &Path, sector_size: u32) -> Loop {
        let o = run(Command::new(require("losetup"))
            .args([
                "-P",
                "-f",
                "--show",
                "--sector-size",
                &sector_size.to_string(),
            ])
            .arg(file));
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Loop(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// `trace` (strace of fadvise64) drops at least `min` bytes written behind the copy with
/// `POSIX_FADV_DONTNEED`.
pub(crate) fn assert_drops_behind(trace: &str, min: u64) {
    let dropped: u64 = trace
        .lines()
        .filter(|l| l.contains("fadvise64(") && l.contains("POSIX_FADV_DONTNEED"))
        .filter(|l| l.trim_end().ends_with("= 0"))
        .filter_map(|l| {
            let args = l.split("fadvise64(").nth(1)?;
            args.split(',').nth(2)?.trim().parse::<u64>().ok()
        })
        .sum();
    assert!(dropped >= min, "{dropped} bytes dropped behind:\n{trace}");
}

#[test]
fn block_device_targets() {
    let t = TempDir::new("disk-blk");
    let ntfs_ref = saved_gpt_disk(&t);
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    // A 128 MiB block device: restored, then read back through the file behind it.
    sh(t.path(), "truncate -s 128M blk");
    {
        let l = Loop::new(&t.join("blk"), 512);
        // Traced: the kernel is asked to re-read the new table (BLKRRPART), and does; the
        // pages written are dropped from the page cache behind the copy (fadvise DONTNEED).
        let out = run(Command::new(require("strace"))
            .args(["-f", "-e", "trace=ioctl,fadvise64", "-o"])
            .arg(t.join("strace.log"))
            .arg(ours())
            .args(["-r", "--disk", "-O", &l.0, &p("img")]));
        ok(&out, "restore to a block device");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("did not re-read"), "{err}");
        let trace = std::fs::read_to_string(t.join("strace.log")).unwrap();
        assert!(
            trace
                .lines()
                .any(|l| l.contains("BLKRRPART") && l.trim_end().ends_with("= 0")),
            "{trace}"
        );
        assert_drops_behind(&trace, 8 << 20);
        // Saved back from the block device: the pages read for the copy are dropped too.
        let out = run(Command::new(require("strace"))
            .args(["-f", "-e", "trace=fadvise64", "-o"])
            .arg(t.join("strace-save.log"))
            .arg(ours())
            .args(["-s", "--disk", "-o", &p("img-blk"), &l.0]));
        ok(&out, "save from a block device");
        assert_drops_behind(
            &std::fs::read_to_string(t.join("strace-save.log")).unwrap(),
            8 << 20,
        );
        let v = ok(&run_ours(&["-r", "--disk", "-n", &p("img-blk")]), "verify");
        assert!(v.contains("Image checksums: ok"), "{v}");
    }
    check_restored(&t, &t.join("disk"), &t.join("blk"), Some(&ntfs_ref));
    // The image on a raw partition (the rescue system's `DEV` store): saved onto a block device
    // holding old bytes past the image's end, verified and restored from it.
    sh(t.path(), "head -c 160M /dev/zero | tr '\\0' 'o' > store");
    {
        let store = Loop::new(&t.join("store"), 512);
        ok(
            &run_ours(&["-s", "--disk", "-O", &store.0, &p("disk")]),
            "save to a block device",
        );
        let v = ok(&run_ours(&["-r", "--disk", "-n", &store.0]), "verify");
        assert!(v.contains("Image checksums: ok"), "{v}");
        sh(t.path(), "truncate -s 128M from-blk");
        ok(
            &run_ours(&["-r", "--disk", "-O", &p("from-blk"), &store.0]),
            "restore from a block device",
        );
    }
    check_restored(&t, &t.join("disk"), &t.join("from-blk"), Some(&ntfs_ref));
    // Another logical sector size: refused with both sizes, nothing written.
    sh(t.path(), "head -c 128M /dev/zero | tr '\\0' 'x' > blk4k");
    let before = std::fs::read(t.join("blk4k")).unwrap();
    {
        let l = Loop::new(&t.join("blk4k"), 4096);
        failed(
            &run_ours(&["-r", "--disk", "-O", &l.0, &p("img")]),
            "logical sector size is 4096 bytes, the disk image's is 512 bytes",
        );
    }
    assert!(std::fs::read(t.join("blk4k")).unwrap() == before);
}

#[test]
fn disk_options() {
    let t = TempDir::new("disk-opts");
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    sh(t.path(), "truncate -s 8M d");
    failed(
        &run_ours(&["--new-disk-ids", "-O", &p("x"), &p("d")]),
        "--new-disk-ids applies to whole disks only",
    );
    failed(
        &run_ours(&["--disk", "-m", "-o", &p("x"), &p("d")]),
        "--disk does not combine with --metadata",
    );
    // Extensions are matched only when spelled in full.
    let out = run_ours(&["--dis", "-O", &p("x"), &p("d")]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!t.join("x").exists() || std::fs::metadata(t.join("x")).unwrap().len() == 0);
}

/// `--disk --zstd`: the disk image compressed as a seekable zstd stream; `zstd -dc` gives the
/// uncompressed disk image, and `-r` recognises the compressed one by itself (file, and a pipe
/// with `--disk`); a flipped byte is found by `-n`.
#[test]
fn compressed_disk_images() {
    let t = TempDir::new("disk-zstd");
    let ntfs_ref = saved_gpt_disk(&t);
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    ok(
        &run_ours(&["-s", "--disk", "--zstd=5", "-o", &p("img.zst"), &p("disk")]),
        "compressed save",
    );
    let z = std::fs::read(t.join("img.zst")).unwrap();
    assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd], "not a zstd stream");
    assert!(z.len() < std::fs::metadata(t.join("img")).unwrap().len() as usize);
    sh(t.path(), "zstd -q -dc img.zst | cmp - img");
    let v = ok(&run_ours(&["-r", "-n", &p("img.zst")]), "verify");
    assert!(v.contains("Image checksums: ok"), "{v}");
    sh(t.path(), "truncate -s 128M big");
    ok(
        &run_ours(&["-r", "-O", &p("big"), &p("img.zst")]),
        "restore",
    );
    check_restored(&t, &t.join("disk"), &t.join("big"), Some(&ntfs_ref));
    sh(
        t.path(),
        &format!(
            "truncate -s 128M piped && cat img.zst | {} -r --disk -O piped - >/dev/null && cmp big piped",
            ours()
        ),
    );
    let mut bad = z.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    std::fs::write(t.join("bad.zst"), &bad).unwrap();
    failed(&run_ours(&["-r", "-n", &p("bad.zst")]), "");
}

/// `--disk` with the source as its own output (clone, save, restore): refused before anything
/// is written, the disk unchanged.
#[test]
fn disk_output_that_is_the_source_is_refused() {
    let t = TempDir::new("disk-same");
    gpt_disk(&t);
    let p = t.join("disk").to_str().unwrap().to_string();
    let before = std::fs::read(&p).unwrap();
    for args in [
        vec!["--disk", "-O", &p, &p],
        vec!["-s", "--disk", "-O", &p, &p],
        vec!["-r", "--disk", "-O", &p, &p],
    ] {
        failed(&run_ours(&args), "is the source");
    }
    assert!(std::fs::read(&p).unwrap() == before, "the disk changed");
}

/// `-r` recognises a disk image on standard input by itself (no `--disk`), through a pipe and
/// redirected from the file, plain and zstd-compressed: the restore equals the restore of the
/// file, and `-r -n -` verifies (and finds a flipped byte). A stream that is neither a disk
/// image nor an ntfsclone image gets the same error as a file (the reference's for bad magic).
#[test]
fn disk_images_on_stdin_without_disk() {
    let t = TempDir::new("disk-stdin");
    let ntfs_ref = saved_gpt_disk(&t);
    let o = ours();
    let p = |n: &str| t.join(n).to_str().unwrap().to_string();
    ok(
        &run_ours(&["-s", "--disk", "--zstd", "-o", &p("img.zst"), &p("disk")]),
        "compressed save",
    );
    ok(
        &run_ours(&["-r", "-o", &p("file"), &p("img")]),
        "file restore",
    );
    check_restored(&t, &t.join("disk"), &t.join("file"), Some(&ntfs_ref));
    let expected = std::fs::read(t.join("file")).unwrap();
    for (out, cmd) in [
        ("pipe", "cat img | {o} -r -O pipe -"),
        ("pipe-zst", "cat img.zst | {o} -r -O pipe-zst -"),
        ("stdin", "{o} -r -O stdin - < img"),
        ("stdin-zst", "{o} -r -O stdin-zst - < img.zst"),
        ("file-zst", "{o} -r -O file-zst img.zst"),
    ] {
        let text = sh(t.path(), &cmd.replace("{o}", o));
        assert!(text.contains("Disk image             : "), "{out}: {text}");
        assert!(
            std::fs::read(t.join(out)).unwrap() == expected,
            "{out}: the restore differs from the file's"
        );
    }
    for src in ["img", "img.zst"] {
        for cmd in ["cat {src} | {o} -r -n - 2>&1", "{o} -r -n - < {src} 2>&1"] {
            let cmd = cmd.replace("{o}", o).replace("{src}", src);
            let text = sh(t.path(), &cmd);
            assert!(text.contains("Image checksums: ok"), "{cmd}: {text}");
        }
    }
    // A flipped byte in the middle of the image: found through the pipe.
    let mut bad = std::fs::read(t.join("img")).unwrap();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    std::fs::write(t.join("bad"), &bad).unwrap();
    let out = run(Command::new("bash")
        .arg("-c")
        .arg(format!("cat bad | {o} -r -n -"))
        .current_dir(t.path()));
    failed(&out, "checksum mismatch");

    // Neither image: the same output and exit status as the reference, plain or compressed.
    sh(
        t.path(),
        "for i in $(seq 100); do echo 'not an image, just text'; done > junk
         zstd -q -c junk > junk.zst",
    );
    let reference = run(Command::new("bash")
        .arg("-c")
        .arg(format!(
            "cat junk | {} -r -O ref-out -",
            require("ntfsclone").display()
        ))
        .current_dir(t.path()));
    assert!(
        String::from_utf8_lossy(&reference.stdout).contains("(invalid magic)"),
        "{reference:?}"
    );
    for src in ["junk", "junk.zst"] {
        let ours = run(Command::new("bash")
            .arg("-c")
            .arg(format!("cat {src} | {o} -r -O out -"))
            .current_dir(t.path()));
        assert_eq!(
            (&ours.status.code(), &ours.stdout, &ours.stderr),
            (
                &reference.status.code(),
                &reference.stdout,
                &reference.stderr
            ),
            "{src}: {ours:?}"
        );
    }
}
