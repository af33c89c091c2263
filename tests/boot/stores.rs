//! Image files on FAT32, exFAT, ext4 and NTFS disks (`ntfsclone.image=DEV:/path`), whole-disk and
//! partitioned (MBR) or not, on SMB shares and NFS servers (v4, and v3 with rpcbind), split in
//! parts, saved and restored by the rescue initramfs in QEMU; and the failures a store can cause.
//!
//! The host kernel mounts none of these here, so the disks are built and read back with user-space
//! tools: mtools (FAT32), `mkfs.ext4 -d` and debugfs (ext4). exfatprogs cannot put files on or
//! take them off an exFAT disk, so exFAT is proven in two boots: a save onto the disk, then a
//! restore from that disk, whose result must be the reference's clone.
use crate::common::*;
use crate::qemu::{Boot, Killed, Qemu};
use crate::rescue::{
    assert_same_disk, empty_disk, reference_clone, reference_save, s, sample_volume, HttpServer,
};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    reference_save(src, &out);
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

/// A machine `what` that runs the rescue `job` (300 s timeout).
fn job_machine(dir: &Path, what: &str, job: &str) -> Qemu {
    Qemu::new(dir, what)
        .rescue(job)
        .timeout(Duration::from_secs(300))
}

/// Boots a save job of a sample volume (/dev/vda) to `image` on `store` (/dev/vdb).
fn save_boot(dir: &Path, what: &str, src: &Path, store: &Path, image: &str) {
    let job = format!("ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image={image}");
    let b = job_machine(dir, what, &job)
        .no_net()
        .disk(src, true)
        .disk(store, false)
        .job();
    assert_ok(&b, what);
}

/// Boots a restore job from `image` on `store` (/dev/vdb) to an empty /dev/vda; returns the target.
fn restore_boot(dir: &Path, what: &str, store: &Path, image: &str) -> PathBuf {
    let tgt = empty_disk(&dir.join(format!("{what}-target.img")));
    let job = format!("ntfsclone.mode=restore ntfsclone.target=/dev/vda ntfsclone.image={image}");
    let b = job_machine(dir, what, &job)
        .no_net()
        .disk(&tgt, false)
        .disk(store, true)
        .job();
    assert_ok(&b, what);
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

/// Options of QEMU user networking on virtio; with `smb`, the directory QEMU's smbd serves as
/// `//10.0.2.4/qemu`.
fn net(smb: Option<&Path>) -> String {
    let smb = smb
        .map(|d| format!(",smb={}", d.display()))
        .unwrap_or_default();
    format!("model=virtio-net-pci{smb}")
}

fn assert_ok(b: &Boot, what: &str) {
    assert_eq!(b.marker, "ntfsclone-job: ok", "{what}:\n{}", b.log);
}

/// Asserts that the job read the saved image back (`ntfsclone -r -n`) before its marker.
fn assert_verified(b: &Boot, what: &str) {
    let at = b.log.find("reading the image back to check it");
    let marker = b.log.find("ntfsclone-job: ");
    assert!(
        at.is_some() && at < marker && b.log.contains("--restore-image --no-action"),
        "{what}: the saved image was not read back before the marker:\n{}",
        b.log
    );
}

/// Asserts a failed job: the marker `failed (exit code)` and `reason` on the console before it.
fn assert_failed(b: &Boot, code: i32, reason: &str, what: &str) {
    assert_eq!(
        b.marker,
        format!("ntfsclone-job: failed (exit {code})"),
        "{what}:\n{}",
        b.log
    );
    let at = b.log.find(reason);
    assert!(
        at.is_some() && at < b.log.find("ntfsclone-job: "),
        "{what}: no {reason:?} before the marker:\n{}",
        b.log
    );
}

#[test]
fn store_smb_save_then_restore() {
    require("smbd");
    let t = TempDir::new("store-smb");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let share = t.join("share");
    fs::create_dir_all(&share).unwrap();
    // A user and password (any user is the guest of QEMU's smbd); the directories are created.
    let b = job_machine(
        t.path(),
        "smb-save",
        "ntfsclone.mode=save ntfsclone.source=/dev/vda \
         ntfsclone.image=smb://tech:s3cret@10.0.2.4/qemu/images/pc%201/win.img",
    )
    .disk(&src, true)
    .user_net(&net(Some(&share)))
    .job();
    assert_ok(&b, "save to SMB");
    assert_verified(&b, "save to SMB");
    assert!(
        !b.log.contains("s3cret"),
        "the password was printed:\n{}",
        b.log
    );
    let saved = share.join("images/pc 1/win.img");
    let got = fs::read(&saved).unwrap_or_else(|e| panic!("{saved:?}: {e}\n{}", b.log));
    assert_restores_to(&got, &want, t.path(), "image saved on SMB");

    // Restored by a guest (no user in the URL) from the same share, with the dialect the kernel
    // prefers, SMB 3.1.1, required through ntfsclone.mountopts=.
    let tgt = empty_disk(&t.join("target.img"));
    let b = job_machine(
        t.path(),
        "smb-restore",
        "ntfsclone.mode=restore ntfsclone.target=/dev/vda \
         ntfsclone.image=smb://10.0.2.4/qemu/images/pc%201/win.img ntfsclone.mountopts=vers=3.1.1",
    )
    .disk(&tgt, false)
    .user_net(&net(Some(&share)))
    .job();
    assert_ok(&b, "restore from SMB");
    assert_same_disk(&tgt, &want, "restore from SMB");
}

/// A free TCP port on 127.0.0.1 (nothing listens on it when this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port`; fails with `what` and `log` when `child`
/// exits first or after 30 s.
fn wait_listening(port: u16, child: &mut Killed, what: &str, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let gone = child.0.try_wait().unwrap().is_some();
        assert!(
            !gone && start.elapsed() < Duration::from_secs(30),
            "{what} did not start listening on port {port}:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Serialises the NFS tests of this process: one nfs-ganesha at a time (servers share
/// /run/ganesha, and with rpcbind running each registers its NFS version there).
static NFS_LOCK: Mutex<()> = Mutex::new(());

/// The portmapper (rpcbind) on port 111, which an NFS v3 server registers with and an NFS v3
/// client asks for the mount daemon's port. One that runs already is used as it is; otherwise
/// one is started here (in the foreground) and stopped when this is dropped, with the state
/// files it made under /run.
struct Rpcbind {
    started: Option<(Killed, Vec<PathBuf>)>,
}
impl Rpcbind {
    fn start() -> Rpcbind {
        if TcpStream::connect(("127.0.0.1", 111)).is_ok() {
            eprintln!("rpcbind: using the one that listens on port 111");
            return Rpcbind { started: None };
        }
        let made: Vec<PathBuf> = ["/run/rpcbind.sock", "/run/rpcbind.lock", "/run/rpcbind"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let mut child = Killed(
            Command::new(require("rpcbind"))
                .arg("-f")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start rpcbind (make deps): {e}")),
        );
        wait_listening(111, &mut child, "rpcbind", Path::new("/dev/null"));
        Rpcbind {
            started: Some((child, made)),
        }
    }

    /// `rpcinfo -p 127.0.0.1`: the registered programs.
    fn programs() -> String {
        let out = run(Command::new(require("rpcinfo")).args(["-p", "127.0.0.1"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
impl Drop for Rpcbind {
    fn drop(&mut self) {
        if let Some((child, made)) = self.started.take() {
            drop(child);
            for p in made {
                let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir_all(&p));
            }
        }
    }
}

/// A user-space NFS server (nfs-ganesha, VFS backend) exporting `dir` under its own path on
/// 127.0.0.1:port, TCP only, no NLM, rquota, grace period or Kerberos; stopped when dropped.
/// NFS v4 needs nothing else. NFS v3 registers with rpcbind (started if none runs) and has its
/// mount daemon on a port of its own (`mnt_port`); the server is stopped with SIGTERM, so that it
/// takes its registrations back, before rpcbind.
struct Ganesha {
    child: Killed,
    export: PathBuf,
    port: u16,
    mnt_port: u16,
    log: PathBuf,
    /// Declared after `child`: dropped after the server.
    _rpcbind: Option<Rpcbind>,
}
impl Ganesha {
    fn start(work: &Path, export: &Path, version: u8) -> Ganesha {
        let bin = require("ganesha.nfsd");
        let port = free_port();
        let mnt_port = free_port();
        let rpcbind = (version == 3).then(Rpcbind::start);
        let recovery = work.join("ganesha-recovery");
        fs::create_dir_all(&recovery).unwrap();
        let conf = work.join("ganesha.conf");
        fs::write(
            &conf,
            format!(
                "NFS_CORE_PARAM {{ NFS_Port = {port}; MNT_Port = {mnt_port}; Bind_Addr = 127.0.0.1; \
                 Protocols = {version}; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }}\n\
                 NFSV4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = {rec}; }}\n\
                 NFS_KRB5 {{ Active_krb5 = false; }}\n\
                 EXPORT {{ Export_Id = 1; Path = {exp}; Pseudo = {exp}; Access_Type = RW; \
                 Squash = No_Root_Squash; SecType = sys; Protocols = {version}; Transports = TCP; \
                 FSAL {{ Name = VFS; }} }}\n",
                rec = recovery.display(),
                exp = export.display()
            ),
        )
        .unwrap();
        let log = work.join("ganesha.log");
        let mut child = Killed(
            Command::new(bin)
                .arg("-F")
                .arg("-f")
                .arg(&conf)
                .arg("-L")
                .arg(&log)
                .arg("-p")
                .arg(work.join("ganesha.pid"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start ganesha.nfsd: {e}")),
        );
        wait_listening(port, &mut child, "ganesha.nfsd", &log);
        if version == 3 {
            wait_listening(mnt_port, &mut child, "ganesha.nfsd (mountd)", &log);
        }
        Ganesha {
            child,
            export: export.to_path_buf(),
            port,
            mnt_port,
            log,
            _rpcbind: rpcbind,
        }
    }
}
impl Ganesha {
    /// The nfs:// URL of the file `name` in the export, as the guest sees the server (QEMU user
    /// networking shows the host's 127.0.0.1 to the guest as 10.0.2.2).
    fn url(&self, name: &str) -> String {
        format!(
            "nfs://10.0.2.2:{}{}/{name}",
            self.port,
            self.export.display()
        )
    }
}

/// Boots a save of the sample volume `src` to `new/dir/win.img` on the NFS `server` (the
/// directories are made); checks the marker, the read-back, `mounted` on the console and that
/// the image on the export restores, with the reference, to `want`.
fn nfs_save(dir: &Path, what: &str, server: &Ganesha, src: &Path, want: &[u8], mounted: &str) {
    let job = format!(
        "ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image={}",
        server.url("new/dir/win.img")
    );
    let b = job_machine(dir, what, &job)
        .disk(src, true)
        .user_net(&net(None))
        .job();
    assert_ok(&b, what);
    assert_verified(&b, what);
    assert!(
        b.log.contains(mounted) && b.log.matches("image store: ").count() == 1,
        "{what}: no {mounted:?} on the console:\n{}",
        b.log
    );
    let got = fs::read(server.export.join("new/dir/win.img"))
        .unwrap_or_else(|e| panic!("{what}: no image on the NFS export: {e}\n{}", b.log));
    assert_restores_to(&got, want, dir, what);
}

/// Boots a restore of `name` on the NFS `server` to an empty /dev/vda; returns the boot and
/// the target.
fn nfs_restore(dir: &Path, what: &str, server: &Ganesha, name: &str) -> (Boot, PathBuf) {
    let tgt = empty_disk(&dir.join(format!("{what}-target.img")));
    let job = format!(
        "ntfsclone.mode=restore ntfsclone.target=/dev/vda ntfsclone.image={}",
        server.url(name)
    );
    let b = job_machine(dir, what, &job)
        .disk(&tgt, false)
        .user_net(&net(None))
        .job();
    assert_ok(&b, what);
    (b, tgt)
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        // SIGTERM: ganesha unregisters from rpcbind as it exits; SIGKILL after 10 s.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.0.id().to_string())
            .status();
        let start = Instant::now();
        while matches!(self.child.0.try_wait(), Ok(None))
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn store_nfs4_save_then_restore_parts() {
    let t = TempDir::new("store-nfs");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let export = t.join("export");
    fs::create_dir_all(&export).unwrap();
    let _nfs = NFS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let server = Ganesha::start(t.path(), &export, 4);
    nfs_save(
        t.path(),
        "nfs-save",
        &server,
        &src,
        &want,
        "image store: 10.0.2.2:/ (NFS v4)",
    );

    // The reference's image in 1 MiB parts made here (NAME, NAME.001, ...): the restore finds them.
    let image = reference_image(&src, t.path());
    let parts: Vec<&[u8]> = image.chunks(1 << 20).collect();
    assert!(parts.len() >= 3, "the sample image is too small to split");
    for (i, p) in parts.iter().enumerate() {
        let name = if i == 0 {
            s("parts.img")
        } else {
            format!("parts.img.{i:03}")
        };
        fs::write(export.join(name), p).unwrap();
    }
    let (_, tgt) = nfs_restore(t.path(), "nfs-restore", &server, "parts.img");
    drop(server);
    assert_same_disk(&tgt, &want, "restore from parts on NFS v4");
}

/// The registrations of `rpcinfo -p` (program, version, protocol, port).
fn registered(programs: &str) -> Vec<[String; 4]> {
    programs
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 4).then(|| [w[0], w[1], w[2], w[3]].map(str::to_string))
        })
        .collect()
}

/// NFS v3 for real: nfs-ganesha with NFS v3 only (its NFS v4 mount fails), registered with
/// rpcbind on port 111, its mount daemon on a port of its own. The guest's kernel asks rpcbind
/// (the host's port 111, as 10.0.2.2:111 through QEMU user networking) for the mount daemon's
/// port; the job mounts the longest leading directory of the path that is exported (nolock: no
/// NLM). The saved image restores with the reference; a second boot restores it from NFS v3.
#[test]
fn store_nfs3_save_then_restore() {
    let t = TempDir::new("store-nfs3");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let export = t.join("export");
    fs::create_dir_all(&export).unwrap();
    let _nfs = NFS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let server = Ganesha::start(t.path(), &export, 3);
    let programs = Rpcbind::programs();
    let regs = registered(&programs);
    for (prog, port) in [("100003", server.port), ("100005", server.mnt_port)] {
        let want = [prog, "3", "tcp", &port.to_string()].map(str::to_string);
        assert!(
            regs.contains(&want),
            "{prog} v3 is not registered with rpcbind on port {port}:\n{programs}\n{}",
            fs::read_to_string(&server.log).unwrap_or_default()
        );
    }
    assert!(
        !regs.iter().any(|r| r[0] == "100003" && r[1] == "4"),
        "the server offers NFS v4:\n{programs}"
    );
    // The save: new/dir does not exist yet, so the export itself is mounted (and new/dir made).
    let v3_mount = |d: &str| format!("image store: 10.0.2.2:{}{d} (NFS v3)", export.display());
    nfs_save(t.path(), "nfs3-save", &server, &src, &want, &v3_mount(""));
    // The restore: the server mounts a directory below its export, the image's own.
    let (b, tgt) = nfs_restore(t.path(), "nfs3-restore", &server, "new/dir/win.img");
    let v3_mount = v3_mount("/new/dir");
    let mnt_port = server.mnt_port;
    drop(server);
    assert!(b.log.contains(&v3_mount), "no {v3_mount:?}:\n{}", b.log);
    assert_same_disk(&tgt, &want, "restore from NFS v3");
    // The server took its registrations back (or rpcbind, started here, is gone).
    let left = Rpcbind::programs();
    assert!(
        !registered(&left)
            .iter()
            .any(|r| r[3] == mnt_port.to_string()),
        "the mount daemon is still registered:\n{left}"
    );
}

#[test]
fn store_ntfs_disk_save() {
    let t = TempDir::new("store-ntfs");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    // A 64 MiB NTFS disk, as Windows would format a USB stick (no partition table).
    let store = t.join("usb-ntfs.img");
    fs::File::create(&store).unwrap().set_len(64 << 20).unwrap();
    ok(
        run(Command::new(require("mkntfs"))
            .args(["-q", "-F", "-f", "-L", "USB"])
            .arg(&store)),
        "mkntfs (store)",
    );
    let b = job_machine(
        t.path(),
        "ntfs-save",
        "ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image=LABEL=USB:/Images/win.img",
    )
    .disk(&src, true)
    .disk(&store, false)
    .no_net()
    .job();
    assert_ok(&b, "save to NTFS");
    assert_verified(&b, "save to NTFS");
    let mnt = t.join("store-mnt");
    let m = Mount::ntfs3g(&store, &mnt, &["ro"]);
    let got = fs::read(mnt.join("Images/win.img"));
    m.unmount();
    let got = got.unwrap_or_else(|e| panic!("no image on the NTFS disk: {e}\n{}", b.log));
    assert_restores_to(&got, &want, t.path(), "image saved on NTFS");
}

/// The names of the files in `dir` on a FAT image (mtools `mdir -b`), without the directory.
fn fat_names(img: &Path, dir: &str) -> Vec<String> {
    let out = run(mtools("mdir")
        .arg("-b")
        .arg("-i")
        .arg(img)
        .arg(format!("::{dir}")));
    ok(out.clone(), "mdir");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit('/').next().map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn store_fat32_split_save() {
    let t = TempDir::new("store-split");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    // The image takes `n` parts of 1 MiB; a part of an older, longer image under the same name
    // (the one after the last new part) is removed by the save.
    let n = reference_image(&src, t.path()).len().div_ceil(1 << 20);
    assert!(n >= 3, "the sample image is too small to split");
    let stale = t.join("stale");
    fs::write(&stale, b"old part").unwrap();
    let store = fs_image(
        Fs::Fat32,
        t.path(),
        &[(&format!("/pc/win.img.{n:03}"), &stale)],
    );
    let b = job_machine(
        t.path(),
        "split-save",
        "ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image=/dev/vdb:/pc/win.img \
         ntfsclone.split=1M",
    )
    .disk(&src, true)
    .disk(&store, false)
    .no_net()
    .job();
    assert_ok(&b, "split save to FAT32");
    assert_verified(&b, "split save to FAT32");
    let names = fat_names(&store, "/pc");
    let want_names: Vec<String> = (0..n)
        .map(|i| match i {
            0 => s("win.img"),
            _ => format!("win.img.{i:03}"),
        })
        .collect();
    assert_eq!(names, want_names, "parts on the store:\n{}", b.log);
    let mut joined = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let part = read_back(Fs::Fat32, &store, false, &format!("/pc/{n}"), t.path());
        if i + 1 < names.len() {
            assert_eq!(part.len(), 1 << 20, "{n} is not a full part");
        } else {
            assert!(
                !part.is_empty() && part.len() <= 1 << 20,
                "{n}: {} bytes",
                part.len()
            );
        }
        joined.extend(part);
    }
    assert_restores_to(&joined, &want, t.path(), "split image saved on FAT32");
}

#[test]
fn store_fails_on_a_missing_image_file() {
    let t = TempDir::new("store-missing");
    let other = t.join("other.img");
    fs::write(&other, b"not the image").unwrap();
    let store = fs_image(Fs::Fat32, t.path(), &[("/images/other.img", &other)]);
    let tgt = empty_disk(&t.join("target.img"));
    let b = job_machine(
        t.path(),
        "missing-file",
        "ntfsclone.mode=restore ntfsclone.target=/dev/vda ntfsclone.image=/dev/vdb:/images/win.img",
    )
    .disk(&tgt, false)
    .disk(&store, true)
    .no_net()
    .job();
    assert_failed(
        &b,
        2,
        "no image file /images/win.img on /dev/vdb",
        "missing file",
    );
    assert!(!b.log.contains("+ ntfsclone"), "ntfsclone ran:\n{}", b.log);
}

#[test]
fn store_fails_when_the_share_refuses() {
    require("smbd");
    let t = TempDir::new("store-refused");
    let share = t.join("share");
    fs::create_dir_all(&share).unwrap();
    let src = sample_volume(t.path());
    // QEMU's smbd has no share "nosuch": the mount is refused.
    let b = job_machine(
        t.path(),
        "smb-refused",
        "ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image=smb://10.0.2.4/nosuch/win.img",
    )
    .disk(&src, true)
    .user_net(&net(Some(&share)))
    .job();
    assert_failed(
        &b,
        2,
        "cannot mount the SMB share //10.0.2.4/nosuch",
        "share refused",
    );
    assert!(!b.log.contains("+ ntfsclone"), "ntfsclone ran:\n{}", b.log);
}

#[test]
fn store_full_disk_fails_and_unmounts_cleanly() {
    let t = TempDir::new("store-full");
    let src = sample_volume(t.path());
    // The FAT32 store keeps about 1 MB free: the 2.5 MB image does not fit. The image goes
    // through the parts writer (FAT's default split), so the kernel reports the full disk.
    let filler = t.join("filler");
    fs::File::create(&filler)
        .unwrap()
        .set_len(FS_BYTES - (2 << 20))
        .unwrap();
    let store = fs_image(Fs::Fat32, t.path(), &[("/filler", &filler)]);
    let b = job_machine(
        t.path(),
        "full-disk",
        "ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image=/dev/vdb:/win.img",
    )
    .disk(&src, true)
    .disk(&store, false)
    .no_net()
    .job();
    assert!(
        b.marker.starts_with("ntfsclone-job: failed (exit "),
        "a save to a full disk: {}\n{}",
        b.marker,
        b.log
    );
    assert!(
        b.log.contains("No space left on device"),
        "no reason for the failure:\n{}",
        b.log
    );
    // Unmounted: FAT's dirty bit, set while mounted read-write, is clear again.
    let out = run(Command::new(require("fsck.vfat")).arg("-n").arg(&store));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.to_lowercase().contains("dirty"),
        "the store was not unmounted cleanly:\n{text}\n{}",
        b.log
    );
}

/// A save job to an image named `.zst` on FAT32 compresses with ntfsclone's own `--zstd`: on the
/// host `zstd -dc` gives an image the reference restores; the same file, served over HTTP,
/// restores in a second boot (zstd recognised by ntfsclone, no option).
#[test]
fn store_zst_save_to_fat32_then_restore_over_http() {
    let t = TempDir::new("store-zst");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let store = store_disk(Fs::Fat32, &fs_image(Fs::Fat32, t.path(), &[]), false);
    save_boot(
        t.path(),
        "zst-save",
        &src,
        &store,
        "/dev/vdb:/images/pc.img.zst",
    );
    let z = read_back(Fs::Fat32, &store, false, "/images/pc.img.zst", t.path());
    assert_eq!(z.get(..4), Some(&[0x28, 0xb5, 0x2f, 0xfd][..]), "not zstd");
    let www = t.join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("pc.img.zst"), &z).unwrap();
    let out = run(Command::new(require("zstd"))
        .args(["-q", "-dc"])
        .arg(www.join("pc.img.zst")));
    assert!(out.status.success(), "zstd -dc of the saved image");
    assert_restores_to(&out.stdout, &want, t.path(), "a .zst image saved on FAT32");

    let server = HttpServer::start(&www);
    let tgt = empty_disk(&t.join("target.img"));
    let job = format!(
        "ntfsclone.mode=restore ntfsclone.target=/dev/vda ntfsclone.image=http://10.0.2.2:{}/pc.img.zst",
        server.port
    );
    let b = job_machine(t.path(), "zst-http-restore", &job)
        .user_net(&net(None))
        .disk(&tgt, false)
        .job();
    drop(server);
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    assert_same_disk(&tgt, &want, "a .zst image restored over HTTP");
}
