//! Image files on FAT32, exFAT and ext4 disks (`ntfsclone.image=DEV:/path`), whole-disk and
//! partitioned (MBR) or not, saved and restored by the rescue initramfs in QEMU.
//!
//! The host kernel mounts none of these here, so the disks are built and read back with user-space
//! tools: mtools (FAT32), `mkfs.ext4 -d` and debugfs (ext4). exfatprogs cannot put files on or
//! take them off an exFAT disk, so exFAT is proven in two boots: a save onto the disk, then a
//! restore from that disk, whose result must be the reference's clone.
use crate::common::*;
use crate::rescue::{
    assert_same_disk, boot, empty_disk, kernel_args, reference_clone, s, sample_volume, virtio_disk,
};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Size of each image store's file system (FAT32 wants at least 32 MiB).
const FS_BYTES: u64 = 64 << 20;
/// Where the partition starts on a partitioned store (sector 2048).
const PART_OFFSET: u64 = 1 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Fs {
    Fat32,
    Exfat,
    Ext4,
}

fn ok(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mtools(tool: &str) -> Command {
    let mut c = Command::new(require(tool));
    c.env("MTOOLS_SKIP_CHECK", "1");
    c
}

/// A file system image of `FS_BYTES` holding `files` (path inside, host file).
fn fs_image(fs_kind: Fs, dir: &Path, files: &[(&str, &Path)]) -> PathBuf {
    let img = dir.join("store-fs.img");
    let _ = fs::remove_file(&img);
    match fs_kind {
        Fs::Fat32 => {
            ok(
                run(Command::new(require("mkfs.vfat"))
                    .args(["-F", "32", "-C"])
                    .arg(&img)
                    .arg((FS_BYTES / 1024).to_string())),
                "mkfs.vfat",
            );
            for (inside, host) in files {
                let parent = Path::new(inside).parent().unwrap();
                if parent != Path::new("/") {
                    ok(
                        run(mtools("mmd")
                            .arg("-i")
                            .arg(&img)
                            .arg(format!("::{}", parent.display()))),
                        "mmd",
                    );
                }
                ok(
                    run(mtools("mcopy")
                        .arg("-i")
                        .arg(&img)
                        .arg(host)
                        .arg(format!("::{inside}"))),
                    "mcopy",
                );
            }
        }
        Fs::Ext4 => {
            let stage = dir.join("ext4-stage");
            fs::create_dir_all(&stage).unwrap();
            for (inside, host) in files {
                let to = stage.join(inside.trim_start_matches('/'));
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::copy(host, &to).unwrap();
            }
            ok(
                run(Command::new(require("mkfs.ext4"))
                    .args(["-q", "-F", "-d"])
                    .arg(&stage)
                    .arg(&img)
                    .arg(format!("{}k", FS_BYTES / 1024))),
                "mkfs.ext4",
            );
        }
        Fs::Exfat => {
            assert!(files.is_empty(), "no tool puts files on exFAT here");
            fs::File::create(&img).unwrap().set_len(FS_BYTES).unwrap();
            ok(
                run(Command::new(require("mkfs.exfat")).arg(&img)),
                "mkfs.exfat",
            );
        }
    }
    img
}

/// The store disk: the file system image itself, or an MBR disk with one partition at
/// `PART_OFFSET` holding it.
fn store_disk(fs_kind: Fs, fs_img: &Path, partitioned: bool) -> PathBuf {
    if !partitioned {
        return fs_img.to_path_buf();
    }
    let disk = fs_img.with_file_name("store-disk.img");
    let mut f = fs::File::create(&disk).unwrap();
    f.set_len(FS_BYTES + 2 * PART_OFFSET).unwrap();
    // One primary partition entry (LBA start and size; the CHS fields are unused by Linux).
    let mut mbr = [0u8; 512];
    mbr[446 + 4] = match fs_kind {
        Fs::Fat32 => 0x0c,
        Fs::Exfat => 0x07,
        Fs::Ext4 => 0x83,
    };
    mbr[446 + 8..446 + 12].copy_from_slice(&((PART_OFFSET / 512) as u32).to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&((FS_BYTES / 512) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    f.write_all(&mbr).unwrap();
    f.seek(SeekFrom::Start(PART_OFFSET)).unwrap();
    f.write_all(&fs::read(fs_img).unwrap()).unwrap();
    disk
}

/// The file system image inside `disk` (copied out of the partition when `partitioned`).
fn fs_of(disk: &Path, partitioned: bool) -> PathBuf {
    if !partitioned {
        return disk.to_path_buf();
    }
    let bytes = fs::read(disk).unwrap();
    let out = disk.with_file_name("store-part.img");
    fs::write(
        &out,
        &bytes[PART_OFFSET as usize..(PART_OFFSET + FS_BYTES) as usize],
    )
    .unwrap();
    out
}

/// Reads the file `inside` back from a FAT32 or ext4 store disk.
fn read_back(fs_kind: Fs, disk: &Path, partitioned: bool, inside: &str, dir: &Path) -> Vec<u8> {
    let fs_img = fs_of(disk, partitioned);
    let out = dir.join("read-back");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let name = Path::new(inside).file_name().unwrap();
    match fs_kind {
        Fs::Fat32 => ok(
            run(mtools("mcopy")
                .arg("-n")
                .arg("-i")
                .arg(&fs_img)
                .arg(format!("::{inside}"))
                .arg(out.join(name))),
            "mcopy (read back)",
        ),
        // rdump of the parent directory: no quoting of the file name in a debugfs command.
        Fs::Ext4 => {
            let parent = Path::new(inside).parent().unwrap();
            ok(
                run(Command::new(require("debugfs"))
                    .arg("-R")
                    .arg(format!("rdump {} {}", parent.display(), out.display()))
                    .arg(&fs_img)),
                "debugfs rdump",
            );
            let sub = out.join(parent.file_name().unwrap());
            return fs::read(sub.join(name))
                .unwrap_or_else(|e| panic!("{inside} not on the ext4 store: {e}"));
        }
        Fs::Exfat => unreachable!("no exFAT reader here"),
    }
    fs::read(out.join(name)).unwrap_or_else(|e| panic!("{inside} not on the store: {e}"))
}

/// The reference ntfsclone's special image of `src`.
fn reference_image(src: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("reference.img");
    let st = run_ref(&[
        "-q",
        "-s",
        "-o",
        out.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    ok(st, "reference ntfsclone --save-image");
    let v = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();
    v
}

/// Asserts that `image` (read back from a store) restores, with the reference ntfsclone, to the
/// reference's clone `want`.
fn assert_restores_to(image: &[u8], want: &[u8], dir: &Path, what: &str) {
    let img = dir.join("read-back.img");
    fs::write(&img, image).unwrap();
    let out = dir.join("read-back-restored.img");
    let st = run_ref(&[
        "-q",
        "-r",
        "-O",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(
        st.status.success(),
        "{what}: the reference cannot restore the saved image: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_same_disk(&out, want, what);
}

fn gunzip(bytes: &[u8], dir: &Path) -> Vec<u8> {
    let gz = dir.join("read-back.gz");
    fs::write(&gz, bytes).unwrap();
    let out = run(Command::new(require("gunzip")).arg("-c").arg(&gz));
    assert!(
        out.status.success(),
        "gunzip of the saved image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Boots a save job of a sample volume (/dev/vda) to `image` on `store` (/dev/vdb).
fn save_boot(dir: &Path, what: &str, src: &Path, store: &Path, image: &str) {
    let mut args = kernel_args(&format!(
        "ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image={image}"
    ));
    args.extend([s("-nic"), s("none")]);
    args.extend(virtio_disk(src, true));
    args.extend(virtio_disk(store, false));
    let b = boot(dir, what, &args, Duration::from_secs(300));
    assert_eq!(b.marker, "ntfsclone-job: ok", "{what}:\n{}", b.log);
}

/// Boots a restore job from `image` on `store` (/dev/vdb) to an empty /dev/vda; returns the target.
fn restore_boot(dir: &Path, what: &str, store: &Path, image: &str) -> PathBuf {
    let tgt = empty_disk(&dir.join(format!("{what}-target.img")));
    let mut args = kernel_args(&format!(
        "ntfsclone.mode=restore ntfsclone.target=/dev/vda ntfsclone.image={image}"
    ));
    args.extend([s("-nic"), s("none")]);
    args.extend(virtio_disk(&tgt, false));
    args.extend(virtio_disk(store, true));
    let b = boot(dir, what, &args, Duration::from_secs(300));
    assert_eq!(b.marker, "ntfsclone-job: ok", "{what}:\n{}", b.log);
    tgt
}

#[test]
fn store_fat32_whole_disk_save() {
    let t = TempDir::new("store-fat32-save");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let store = store_disk(Fs::Fat32, &fs_image(Fs::Fat32, t.path(), &[]), false);
    // A quote in the file name: the value reaches ntfsclone as one argument.
    save_boot(
        t.path(),
        "fat32-save",
        &src,
        &store,
        "/dev/vdb:/images/win's.img",
    );
    let got = read_back(Fs::Fat32, &store, false, "/images/win's.img", t.path());
    assert_restores_to(&got, &want, t.path(), "image saved on FAT32 (whole disk)");
}

#[test]
fn store_fat32_partitioned_restore() {
    let t = TempDir::new("store-fat32-restore");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let img = t.join("win.img");
    fs::write(&img, reference_image(&src, t.path())).unwrap();
    let fs_img = fs_image(Fs::Fat32, t.path(), &[("/images/win.img", &img)]);
    let store = store_disk(Fs::Fat32, &fs_img, true);
    let tgt = restore_boot(
        t.path(),
        "fat32-restore",
        &store,
        "/dev/vdb1:/images/win.img",
    );
    assert_same_disk(&tgt, &want, "restore from FAT32 (MBR partition)");
}

#[test]
fn store_ext4_partitioned_save_gzip() {
    let t = TempDir::new("store-ext4-save");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let store = store_disk(Fs::Ext4, &fs_image(Fs::Ext4, t.path(), &[]), true);
    // .gz: the image goes through gzip into a file whose name holds a quote.
    save_boot(
        t.path(),
        "ext4-save",
        &src,
        &store,
        "/dev/vdb1:/d/it's.img.gz",
    );
    let gz = read_back(Fs::Ext4, &store, true, "/d/it's.img.gz", t.path());
    let got = gunzip(&gz, t.path());
    assert_restores_to(&got, &want, t.path(), "image saved on ext4 (MBR partition)");
}

#[test]
fn store_ext4_whole_disk_restore() {
    let t = TempDir::new("store-ext4-restore");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let img = t.join("v.img");
    fs::write(&img, reference_image(&src, t.path())).unwrap();
    let store = store_disk(
        Fs::Ext4,
        &fs_image(Fs::Ext4, t.path(), &[("/v.img", &img)]),
        false,
    );
    let tgt = restore_boot(t.path(), "ext4-restore", &store, "/dev/vdb:/v.img");
    assert_same_disk(&tgt, &want, "restore from ext4 (whole disk)");
}

#[test]
fn store_exfat_partitioned_save_then_restore() {
    let t = TempDir::new("store-exfat");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let store = store_disk(Fs::Exfat, &fs_image(Fs::Exfat, t.path(), &[]), true);
    save_boot(
        t.path(),
        "exfat-save",
        &src,
        &store,
        "/dev/vdb1:/images/v.img",
    );
    let tgt = restore_boot(t.path(), "exfat-restore", &store, "/dev/vdb1:/images/v.img");
    assert_same_disk(
        &tgt,
        &want,
        "save to then restore from exFAT (MBR partition)",
    );
}
