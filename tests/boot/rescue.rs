//! Rescue-system boot tests (and the sample volumes, boot media and HTTP server the other boot
//! modules share): the initramfs, the hybrid ISO (BIOS and UEFI, CD and USB stick) and the PXE
//! tree, booted in QEMU under TCG (no KVM needed) by `qemu::Qemu`. Each boot runs a job from the
//! kernel command line, the test waits (hard timeout, QEMU killed on every path) for the
//! `ntfsclone-job:` marker on the serial console and compares the target disk's bytes with the
//! reference ntfsclone's result.
//!
//! What they need is built with `make -C <root> initramfs` (once per run) and `boot/mkiso.sh` /
//! `boot/mkpxe.sh` into `boot/out/test/` (build outputs, gitignored, so `make iso` is untouched).
use crate::common::*;
use crate::qemu::{Boot, Firmware, Killed, Qemu};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Size of the sample volumes and target disks: small, so that TCG copies them quickly.
pub(crate) const VOL_BYTES: u64 = 32 << 20;
/// Kernel command line of direct (-kernel) boots; the boot media pass the same console setup.
/// (`no_timer_check`: a TCG guest on a loaded host may fail the kernel's IO-APIC timer check and panic.)
pub(crate) const CMDLINE: &str =
    "console=ttyS0,115200 quiet no_timer_check ntfsclone.after=poweroff ntfsclone.wait=30";
/// The job of the ISO and PXE tests: clone the first virtio disk to the second one.
pub(crate) const MEDIA_JOB: &str =
    "ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb \
                         ntfsclone.after=poweroff ntfsclone.wait=60";
/// A file of this repeated pattern is written into the sample volume (the rescue test finds it).
pub(crate) const PATTERN: &[u8; 32] = b"NTFSCLONE-BOOT-TEST-PATTERN-0123";
/// What the reference writes in place of an unreadable sector: "BadSectoR\0" and 502 '?'.
pub(crate) fn bad_sector_fill() -> Vec<u8> {
    let mut v = b"BadSectoR\0".to_vec();
    v.resize(512, b'?');
    v
}

/// Runs `make TARGET` once per test process (`cell` remembers the result; a failure fails every
/// test that needs it).
pub(crate) fn make_once(cell: &'static OnceLock<Result<(), String>>, target: &str) {
    let built = cell.get_or_init(|| {
        let out = run(Command::new(require("make"))
            .arg("-C")
            .arg(root())
            .args(["--no-print-directory", target]));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`make {target}` failed (run `make deps`):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// `boot/out` after `make initramfs` (run once per test process; a failure fails every test).
pub(crate) fn boot_out() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    make_once(&BUILT, "initramfs");
    root().join("boot/out")
}

/// Builds a boot medium with `script` (mkiso.sh or mkpxe.sh) and the clone job, once per run.
pub(crate) fn media(script: &str, name: &str) -> PathBuf {
    media_with_job(script, name, MEDIA_JOB)
}

/// Builds the boot medium `name` with `script` and `job` into `boot/out/test/`; rebuilt when the
/// initramfs or the script is newer than its last build.
pub(crate) fn media_with_job(script: &str, name: &str, job: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = boot_out();
    let dst = out.join("test").join(name);
    let stamp = out.join("test").join(format!("{name}.built"));
    let newer = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.modified().unwrap() >= b.modified().unwrap(),
        _ => false,
    };
    let fresh = dst.exists()
        && newer(&stamp, &out.join("initramfs.img"))
        && newer(&stamp, &root().join("boot").join(script));
    if !fresh {
        fs::create_dir_all(out.join("test")).unwrap();
        let st = run(Command::new("sh")
            .arg(root().join("boot").join(script))
            .arg(&out)
            .arg(&dst)
            .arg(job));
        assert!(
            st.status.success(),
            "boot/{script} failed:\n{}{}",
            String::from_utf8_lossy(&st.stdout),
            String::from_utf8_lossy(&st.stderr)
        );
        fs::write(&stamp, b"").unwrap();
    }
    dst
}

/// A sample NTFS volume (mkntfs, then files written through ntfs-3g FUSE).
pub(crate) fn sample_volume(dir: &Path) -> PathBuf {
    let vol = dir.join("source.img");
    fs::File::create(&vol).unwrap().set_len(VOL_BYTES).unwrap();
    let st = run(Command::new(require("mkntfs"))
        .args(["-q", "-F", "-f", "-L", "bootdemo"])
        .arg(&vol));
    assert!(
        st.status.success(),
        "mkntfs: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mnt = dir.join("mnt");
    let mounted = Mount::ntfs3g(&vol, &mnt, &["streams_interface=windows"]);
    fs::write(mnt.join("hello.txt"), b"hello from the boot test\n").unwrap();
    fs::write(mnt.join("pattern.bin"), PATTERN.repeat(32768)).unwrap();
    fs::create_dir_all(mnt.join("dir/sub")).unwrap();
    for i in 0..20u32 {
        let body: Vec<u8> = (0..(i * 1000 + 17)).map(|k| (k * 7 + i) as u8).collect();
        fs::write(mnt.join(format!("dir/sub/f{i}.dat")), body).unwrap();
    }
    mounted.unmount();
    vol
}

/// An empty (sparse, zero) disk of `VOL_BYTES`.
pub(crate) fn empty_disk(path: &Path) -> PathBuf {
    fs::File::create(path).unwrap().set_len(VOL_BYTES).unwrap();
    path.to_path_buf()
}

/// The reference ntfsclone's raw clone of `src` (what the target must hold after a clone job).
pub(crate) fn reference_clone(src: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("reference-clone.img");
    let st = run_ref(&["-q", "-O", out.to_str().unwrap(), src.to_str().unwrap()]);
    assert!(
        st.status.success(),
        "reference ntfsclone: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut v = fs::read(&out).unwrap();
    v.resize(VOL_BYTES as usize, 0);
    fs::remove_file(&out).unwrap();
    v
}

/// Asserts two disk images are equal, naming the first differing byte.
pub(crate) fn assert_same_disk(got: &Path, want: &[u8], what: &str) {
    let mut g = fs::read(got).unwrap();
    g.resize(want.len().max(g.len()), 0);
    if let Some(i) = g.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: target differs from the reference result at byte {i} (sector {})",
            i / 512
        );
    }
    assert_eq!(g.len(), want.len(), "{what}: target size");
}

/// The reference ntfsclone's special image of `src`, saved to `out`.
pub(crate) fn reference_save(src: &Path, out: &Path) {
    let st = run_ref(&[
        "-q",
        "-s",
        "-o",
        out.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(
        st.status.success(),
        "reference save: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

pub(crate) fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn initramfs_clone_between_virtio_disks() {
    let t = TempDir::new("boot-clone");
    let q = Qemu::new(t.path(), "initramfs-clone")
        .rescue("ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb")
        .no_net()
        .timeout(Duration::from_secs(180));
    clone_checked(t.path(), "initramfs clone", q);
}

/// Boots `q` with a sample volume (in `dir`) as /dev/vda and an empty disk as /dev/vdb, to run
/// a clone job; checks the ok marker and the target against the reference's clone.
pub(crate) fn clone_checked(dir: &Path, what: &str, q: Qemu) -> Boot {
    let src = sample_volume(dir);
    let tgt = empty_disk(&dir.join("target.img"));
    let want = reference_clone(&src, dir);
    let b = q.disk(&src, true).disk(&tgt, false).job();
    assert_eq!(b.marker, "ntfsclone-job: ok", "{what}:\n{}", b.log);
    assert_same_disk(&tgt, &want, what);
    b
}

/// An HTTP server (python3 -m http.server) on 127.0.0.1, killed when dropped.
pub(crate) struct HttpServer {
    _child: Killed,
    pub(crate) port: u16,
}
impl HttpServer {
    pub(crate) fn start(dir: &Path) -> HttpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Killed(
            Command::new(require("python3"))
                .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
                .arg(dir)
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start python3 -m http.server: {e}")),
        );
        let server = HttpServer {
            _child: child,
            port,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "http.server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

#[test]
fn initramfs_restore_streamed_over_http() {
    let t = TempDir::new("boot-http");
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    // The image is made by the reference; served gzip'd, so the guest runs wget | gunzip | ntfsclone.
    let www = t.join("www");
    fs::create_dir_all(&www).unwrap();
    let img = www.join("volume.img");
    reference_save(&src, &img);
    let st = run(Command::new(require("gzip")).arg("-1").arg(&img));
    assert!(
        st.status.success(),
        "gzip: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let server = HttpServer::start(&www);
    let tgt = empty_disk(&t.join("target.img"));
    // QEMU user networking shows the host's 127.0.0.1 to the guest as 10.0.2.2.
    let job = format!(
        "ntfsclone.mode=restore ntfsclone.target=/dev/vda ntfsclone.image=http://10.0.2.2:{}/volume.img.gz",
        server.port
    );
    let b = Qemu::new(t.path(), "initramfs-http-restore")
        .rescue(&job)
        .user_net("model=virtio-net-pci")
        .disk(&tgt, false)
        .timeout(Duration::from_secs(180))
        .job();
    drop(server);
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    assert_same_disk(&tgt, &want, "restore over HTTP");
}

#[test]
fn initramfs_rescue_reports_unreadable_sectors() {
    let t = TempDir::new("boot-rescue");
    let src = sample_volume(t.path());
    let bytes = fs::read(&src).unwrap();
    let at = bytes
        .windows(PATTERN.len())
        .position(|w| w == PATTERN)
        .expect("pattern file in the sample volume");
    // Two unreadable sectors inside pattern.bin, in different 4 KiB pages of the file.
    let bad = [at as u64 / 512 + 37, at as u64 / 512 + 300];
    let mut rules = String::new();
    for sector in bad {
        rules += &format!(
            "[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"{sector}\"\nonce = \"off\"\n\n"
        );
    }
    let rules_path = t.join("blkdebug.conf");
    fs::write(&rules_path, rules).unwrap();
    let mut want = reference_clone(&src, t.path());
    let tgt = empty_disk(&t.join("target.img"));
    let b = Qemu::new(t.path(), "initramfs-rescue")
        .rescue(
            "ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb ntfsclone.opts=--rescue",
        )
        .no_net()
        // blkdebug fails reads of the chosen sectors with EIO (raw format on top raises read_aio).
        .drive(format!(
            "file=blkdebug:{}:{},format=raw,if=virtio,readonly=on",
            rules_path.display(),
            src.display()
        ))
        .disk(&tgt, false)
        .timeout(Duration::from_secs(180))
        .job();

    // The reported sectors, as byte offsets: the reference prints "sector at BYTES, lost data",
    // ours may print "sector N (byte offset BYTES), lost data".
    let reported: Vec<u64> = b
        .log
        .split("WARNING: Can't read sector ")
        .skip(1)
        .map(|r| {
            let r = r.split(',').next().unwrap_or("");
            let num = match r.split_once("(byte offset ") {
                Some((_, off)) => off.trim_end_matches(')'),
                None => r.trim_start_matches("at "),
            };
            num.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("sector offset in {r:?}"))
        })
        .collect();
    assert!(
        !reported.is_empty(),
        "no unreadable sector reported:\n{}",
        b.log
    );
    assert_eq!(
        b.marker,
        format!("ntfsclone-job: ok ({} unreadable sectors)", reported.len())
    );
    for sector in bad {
        assert!(
            reported.contains(&(sector * 512)),
            "sector {sector} not reported: {reported:?}"
        );
    }
    // The guest kernel reads whole 4 KiB pages: every reported sector shares a page with a bad one.
    for off in &reported {
        assert!(
            bad.iter().any(|b| b * 512 / 4096 == off / 4096),
            "unexpected sector at {off}"
        );
    }
    // Target = reference clone with each unreadable sector replaced by the reference's fill.
    let fill = bad_sector_fill();
    for off in &reported {
        want[*off as usize..*off as usize + 512].copy_from_slice(&fill);
    }
    assert_same_disk(&tgt, &want, "rescue clone");
}

#[test]
fn initramfs_refuses_to_overwrite_the_boot_medium() {
    let t = TempDir::new("boot-refuse");
    let src = sample_volume(t.path());
    let iso = media("mkiso.sh", "clone.iso");
    // The ISO attached as the second virtio disk: /init must recognise it and refuse the job.
    let b = Qemu::new(t.path(), "refuse-boot-medium")
        .rescue("ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb")
        .no_net()
        .disk(&src, true)
        .disk(&iso, true)
        .timeout(Duration::from_secs(180))
        .job();
    assert_eq!(b.marker, "ntfsclone-job: failed (exit 2)", "{}", b.log);
    assert!(
        b.log.contains("is the medium this system booted from"),
        "{}",
        b.log
    );
}

/// Boots the rescue ISO (as CD or USB stick, BIOS or UEFI) running the clone job; checks bytes.
fn iso_clone(what: &str, uefi: bool, usb: bool) {
    let t = TempDir::new(what);
    let iso = media("mkiso.sh", "clone.iso");
    let q = Qemu::new(t.path(), what).no_net().firmware(if uefi {
        Firmware::Ovmf
    } else {
        Firmware::Bios
    });
    let q = if usb {
        q.usb_stick(&iso)
    } else {
        q.drive(format!("media=cdrom,readonly=on,file={}", iso.display()))
            .args(["-boot", "d"])
    };
    clone_checked(t.path(), what, q.timeout(Duration::from_secs(420)));
}

#[test]
fn iso_bios_cd() {
    iso_clone("iso-bios-cd", false, false);
}

#[test]
fn iso_bios_usb() {
    iso_clone("iso-bios-usb", false, true);
}

#[test]
fn iso_uefi_cd() {
    iso_clone("iso-uefi-cd", true, false);
}

#[test]
fn iso_uefi_usb() {
    iso_clone("iso-uefi-usb", true, true);
}

/// Network boot from the PXE tree over QEMU's built-in TFTP server; checks the clone's bytes.
fn pxe_clone(what: &str, uefi: bool) {
    let t = TempDir::new(what);
    let tree = media("mkpxe.sh", "pxe");
    let bootfile = if uefi { "bootx64.efi" } else { "pxelinux.0" };
    // UEFI: OVMF's own network boot (the iPXE option ROM breaks shim's loading of GRUB).
    let rom = if uefi { ",romfile=" } else { "" };
    let q = Qemu::new(t.path(), what)
        .firmware(if uefi { Firmware::Ovmf } else { Firmware::Bios })
        .args([
            s("-netdev"),
            format!("user,id=net0,tftp={},bootfile={bootfile}", tree.display()),
            s("-device"),
            format!("virtio-net-pci,netdev=net0{rom}"),
            s("-boot"),
            s("n"),
        ])
        .timeout(Duration::from_secs(420));
    clone_checked(t.path(), what, q);
}

#[test]
fn pxe_bios() {
    pxe_clone("pxe-bios", false);
}

#[test]
fn pxe_uefi() {
    pxe_clone("pxe-uefi", true);
}

/// The initramfs is reproducible: building it twice gives the same bytes, within the size budget.
#[test]
fn initramfs_is_reproducible_and_small() {
    let out = boot_out();
    let t = TempDir::new("boot-repro");
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("x86_64-unknown-linux-musl/release/ntfsclone");
    let st = run(Command::new("sh")
        .arg(root().join("boot/mkinitramfs.sh"))
        .arg(t.path())
        .arg(&bin));
    assert!(
        st.status.success(),
        "mkinitramfs: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let a = fs::read(out.join("initramfs.img")).unwrap();
    let b = fs::read(t.join("initramfs.img")).unwrap();
    assert!(a == b, "two builds of the initramfs differ");
    assert!(
        a.len() <= 12 << 20,
        "initramfs is {} bytes, over 12 MiB",
        a.len()
    );
    let _ = std::io::stderr().write_all(format!("initramfs: {} bytes\n", a.len()).as_bytes());
}
