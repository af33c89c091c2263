//! Secure Boot: the rescue ISO (as CD and as USB stick) and the UEFI PXE tree boot under OVMF with
//! Secure Boot on and Microsoft's keys enrolled, through Debian's signed chain (shim, signed GRUB,
//! signed kernel, signed modules under lockdown), and run the clone job; the target's bytes are
//! compared with the reference ntfsclone's clone. Negative controls show that this firmware
//! really refuses an unsigned EFI binary (which the same firmware without Secure Boot runs) and
//! that the chain refuses a kernel whose signature does not match.
//!
//! The kernel runs with `loglevel=6` here, so that its lockdown notice reaches the serial console
//! (Debian's kernel locks itself down exactly when the firmware says Secure Boot is on), and with
//! `no_timer_check` (on q35 a busy TCG host can make the kernel's IO-APIC timer check fail).
use crate::common::*;
use crate::qemu::{Firmware, Qemu, Until};
use crate::rescue::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What Debian's kernel prints when it locks down because the firmware booted it in Secure Boot mode.
const LOCKDOWN: &str = "Kernel is locked down from EFI Secure Boot";
/// How long one Secure Boot boot may take under TCG (firmware, shim, GRUB, kernel, the clone).
const TIMEOUT: Duration = Duration::from_secs(600);

/// The clone job of these tests, with kernel notices on the console (for the lockdown line).
fn job() -> String {
    format!("{MEDIA_JOB} loglevel=6 no_timer_check")
}

/// Builds the ISO or the PXE tree with `script` and the job of these tests, once per run.
fn signed_media(script: &str, name: &str) -> PathBuf {
    media_with_job(script, name, &job())
}

/// Runs the Secure Boot clone boot `q` (see `clone_checked`: the marker, the target's bytes) and
/// checks the kernel's lockdown notice.
fn secure_clone(dir: &Path, what: &str, q: Qemu) {
    let b = clone_checked(dir, what, q.timeout(TIMEOUT));
    assert!(
        b.log.contains(LOCKDOWN),
        "{what}: the kernel did not report Secure Boot lockdown:\n{}",
        b.log
    );
    eprintln!(
        "{what}: Secure Boot clone, {:.1} s from QEMU start to the marker",
        b.secs
    );
}

/// Boots the ISO under Secure Boot as a CD or a USB stick (on xHCI), clones vda to vdb.
fn secure_iso(what: &str, usb: bool) {
    let t = TempDir::new(what);
    let iso = signed_media("mkiso.sh", "secure.iso");
    let q = Qemu::new(t.path(), what)
        .firmware(Firmware::SecureBoot)
        .no_net();
    let q = if usb { q.usb_stick(&iso) } else { cd(q, &iso) };
    secure_clone(t.path(), what, q);
}

#[test]
fn secure_boot_iso_cd() {
    secure_iso("secure-iso-cd", false);
}

#[test]
fn secure_boot_iso_usb() {
    secure_iso("secure-iso-usb", true);
}

/// UEFI network boot under Secure Boot: OVMF's own PXE (the NIC's iPXE option ROM left out)
/// fetches shim from QEMU's TFTP server, shim the signed GRUB, GRUB the kernel and initrd.
#[test]
fn secure_boot_pxe() {
    let what = "secure-pxe";
    let t = TempDir::new(what);
    let tree = signed_media("mkpxe.sh", "secure-pxe");
    let q = Qemu::new(t.path(), what)
        .firmware(Firmware::SecureBoot)
        .args([
            s("-netdev"),
            format!("user,id=net0,tftp={},bootfile=bootx64.efi", tree.display()),
        ])
        .device("virtio-net-pci,netdev=net0,romfile=,bootindex=0");
    secure_clone(t.path(), what, q);
}

/// `iso` as a CD on IDE, first in the boot order.
fn cd(q: Qemu, iso: &Path) -> Qemu {
    q.drive(format!(
        "if=none,id=cd,media=cdrom,readonly=on,file={}",
        iso.display()
    ))
    .device("ide-cd,drive=cd,bootindex=0")
}

/// Runs the machine `q` until its console shows one of `stop`, it exits, or `timeout`; returns
/// the console text.
fn console_until(q: Qemu, stop: &[&str], timeout: Duration) -> String {
    let stop = stop.iter().map(|m| m.to_string()).collect();
    q.until(Until::Seen(stop)).timeout(timeout).run().log
}

/// The negative control: an unsigned EFI binary (a GRUB built here with grub-mkstandalone, as the
/// boot media had before) on an EFI system partition. The Secure Boot firmware refuses it; the same
/// firmware without Secure Boot runs it, so the refusal is the signature check and nothing else.
#[test]
fn secure_boot_refuses_unsigned_efi_binary() {
    let t = TempDir::new("secure-unsigned");
    let ran = "NTFSCLONE-UNSIGNED-EFI-RAN";
    let cfg = t.join("grub.cfg");
    fs::write(&cfg, format!("echo {ran}\nsleep 1\nhalt\n")).unwrap();
    let efi = t.join("BOOTX64.EFI");
    let mods = "echo sleep halt";
    let st = run(Command::new(require("grub-mkstandalone"))
        .args(["-O", "x86_64-efi", "-o"])
        .arg(&efi)
        .arg(format!("--modules={mods}"))
        .arg(format!("--install-modules={mods}"))
        .args(["--locales=", "--fonts=", "--themes="])
        .arg(format!("boot/grub/grub.cfg={}", cfg.display())));
    assert!(
        st.status.success(),
        "grub-mkstandalone (make deps: grub-efi-amd64-bin): {}",
        String::from_utf8_lossy(&st.stderr)
    );
    // An EFI system partition image holding it at the removable-media path.
    let esp = t.join("esp.img");
    let st = run(Command::new(require("mkfs.vfat"))
        .args(["-C", "-n", "UNSIGNED"])
        .arg(&esp)
        .arg("8192"));
    assert!(
        st.status.success(),
        "mkfs.vfat: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let img = format!("{}", esp.display());
    let st = run(Command::new(require("mmd")).args(["-i", &img, "::/EFI", "::/EFI/BOOT"]));
    assert!(
        st.status.success(),
        "mmd: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = run(Command::new(require("mcopy"))
        .args(["-i", &img])
        .arg(&efi)
        .arg("::/EFI/BOOT/BOOTX64.EFI"));
    assert!(
        st.status.success(),
        "mcopy: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let machine = |what: &str, fw: Firmware| {
        Qemu::new(t.path(), what)
            .firmware(fw)
            .no_net()
            .drive(format!("if=none,id=esp,format=raw,readonly=on,file={img}"))
            .device("virtio-blk-pci,drive=esp,bootindex=0")
    };
    let refusals = ["Access Denied", "Security Violation"];

    let mut stop = vec![ran];
    stop.extend(refusals);
    let log = console_until(
        machine("unsigned-secure", Firmware::SecureBoot),
        &stop,
        Duration::from_secs(300),
    );
    assert!(
        !log.contains(ran),
        "the Secure Boot firmware ran an unsigned EFI binary:\n{log}"
    );
    assert!(
        refusals.iter().any(|r| log.contains(r)),
        "no refusal (Access Denied / Security Violation) from the Secure Boot firmware:\n{log}"
    );

    // Control: the same image under OVMF without Secure Boot runs (and halts the machine).
    let log = console_until(
        machine("unsigned-plain", Firmware::Ovmf),
        &[ran],
        Duration::from_secs(300),
    );
    assert!(
        log.contains(ran),
        "the unsigned EFI binary did not run without Secure Boot either (a broken control):\n{log}"
    );
}

/// The media carry Debian's signed binaries byte for byte: shim, MokManager, the signed GRUBs
/// (in the ISO tree, in its FAT EFI image, in the PXE tree) and the kernel.
#[test]
fn media_carry_the_signed_binaries_unmodified() {
    let t = TempDir::new("secure-bytes");
    let iso = signed_media("mkiso.sh", "secure.iso");
    let pxe = signed_media("mkpxe.sh", "secure-pxe");
    let shim = fs::read("/usr/lib/shim/shimx64.efi.signed").unwrap();
    let mm = fs::read("/usr/lib/shim/mmx64.efi.signed").unwrap();
    let signed = Path::new("/usr/lib/grub/x86_64-efi-signed");
    let gcd = fs::read(signed.join("gcdx64.efi.signed")).unwrap();
    let gnet = fs::read(signed.join("grubnetx64.efi.signed")).unwrap();
    let kernel = fs::read(boot_out().join("vmlinuz")).unwrap();
    let from_boot = fs::read_dir("/boot")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("/vmlinuz-"))
        .any(|p| fs::read(p).unwrap() == kernel);
    assert!(from_boot, "boot/out/vmlinuz is none of /boot/vmlinuz-*");

    let x = t.join("iso");
    let st = run(Command::new(require("xorriso"))
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/", x.to_str().unwrap()]));
    assert!(
        st.status.success(),
        "xorriso extract: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let efi = x.join("boot/efiboot.img");
    let fat = t.join("fat");
    fs::create_dir_all(&fat).unwrap();
    for f in ["BOOTX64.EFI", "grubx64.efi", "mmx64.efi"] {
        let st = run(Command::new(require("mcopy"))
            .arg("-i")
            .arg(&efi)
            .arg(format!("::/EFI/BOOT/{f}"))
            .arg(fat.join(f)));
        assert!(st.status.success(), "mcopy {f} out of efiboot.img");
    }
    let same = |p: &Path, want: &[u8]| {
        assert!(
            fs::read(p).unwrap_or_default() == want,
            "{} differs from Debian's signed binary",
            p.display()
        );
    };
    for dir in [x.join("EFI/BOOT"), fat] {
        same(&dir.join("BOOTX64.EFI"), &shim);
        same(&dir.join("grubx64.efi"), &gcd);
        same(&dir.join("mmx64.efi"), &mm);
    }
    same(&x.join("boot/vmlinuz"), &kernel);
    assert!(x.join(".disk/info").exists(), "no /.disk/info on the ISO");
    same(&pxe.join("bootx64.efi"), &shim);
    same(&pxe.join("grubx64.efi"), &gnet);
    same(&pxe.join("mmx64.efi"), &mm);
    same(&pxe.join("vmlinuz"), &kernel);
}

/// The chain checks the kernel too: the ISO with one byte of Debian's signed kernel changed
/// (its signature no longer matches) stops in GRUB with shim's refusal; no kernel runs.
#[test]
fn secure_boot_refuses_a_tampered_kernel() {
    let what = "secure-tampered-kernel";
    let t = TempDir::new(what);
    let out = boot_out();
    let media_in = t.join("in");
    fs::create_dir_all(&media_in).unwrap();
    fs::copy(out.join("initramfs.img"), media_in.join("initramfs.img")).unwrap();
    let mut kernel = fs::read(out.join("vmlinuz")).unwrap();
    let mid = kernel.len() / 2;
    kernel[mid] ^= 0x01;
    fs::write(media_in.join("vmlinuz"), &kernel).unwrap();
    let iso = t.join("tampered.iso");
    let st = run(Command::new("sh")
        .arg(root().join("boot/mkiso.sh"))
        .arg(&media_in)
        .arg(&iso)
        .arg(job()));
    assert!(
        st.status.success(),
        "mkiso.sh: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let q = Qemu::new(t.path(), what)
        .firmware(Firmware::SecureBoot)
        .no_net();
    let refusal = "bad shim signature";
    let log = console_until(
        cd(q, &iso),
        &[refusal, "Linux version", "ntfsclone-job: "],
        TIMEOUT,
    );
    assert!(
        log.contains(refusal),
        "no '{refusal}' from GRUB for a tampered kernel:\n{log}"
    );
    assert!(
        !log.contains("Linux version") && !log.contains("ntfsclone-job: "),
        "a tampered kernel ran under Secure Boot:\n{log}"
    );
}
