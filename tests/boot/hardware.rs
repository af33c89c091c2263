//! Disks and network cards of real machines, as QEMU emulates them: the source disk on NVMe,
//! USB storage and AHCI, targets on AHCI, SD and UAS, a restore over HTTP through an Intel e1000e;
//! each boot runs a job (plain device names) and the target is compared with the reference
//! ntfsclone's result. The same boots check `boot/lib/hw.sh` against the real sysfs of those
//! devices: a check script (an extra cpio appended to the initramfs, run as `rdinit=` before
//! /init) prints each disk's serial number, resolves one, and reports the network card that has
//! no driver. The initramfs is also checked for the firmware the network drivers ask for.
use crate::common::*;
use crate::qemu::{Boot, Qemu};
use crate::rescue::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(600);

/// The check script: loads the modules as /init does, waits for `disks`, prints what hw.sh finds
/// (lines starting with "hwcheck: "), then hands over to /init, which runs the job.
fn check_script(disks: &[&str], serial: &str) -> String {
    let disks = disks.join(" ");
    format!(
        r#"#!/bin/sh
PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
kver=$(uname -r)
while read -r m; do insmod "/lib/modules/$kver/$m" 2>/dev/null; done <"/lib/modules/$kver/load.order"
n=0
for d in {disks}; do
	while [ ! -e "/sys/block/$d" ] && [ $n -lt 180 ]; do sleep 1; n=$((n + 1)); done
done
echo "hwcheck: waited $n s for {disks}"
. /lib/hw.sh
for b in /sys/block/*; do
	d=${{b##*/}}
	case $d in loop* | ram* | sr*) continue ;; esac
	echo "hwcheck: disk $d serial [$(hw_disk_serial "$d")]"
done
echo "hwcheck: SERIAL={serial} is [$(hw_serial_disk '{serial}' || echo none)]"
echo "hwcheck: SERIAL=NO-SUCH-DISK is [$(hw_serial_disk NO-SUCH-DISK || echo none)]"
if [ "$(ls /sys/class/net | grep -cv '^lo$')" -eq 0 ]; then hw_net_report | sed 's/^/hwcheck: /'; fi
echo "hwcheck: secure boot [$(hw_secure_boot)]"
umount /proc /sys /dev
exec /init
"#
    )
}

/// The initramfs with the check script appended (the kernel unpacks concatenated archives).
fn checked_initramfs(dir: &Path, script: &str) -> PathBuf {
    let sh = dir.join("hwcheck.sh");
    fs::write(&sh, script).unwrap();
    let list = format!("file /hwcheck.sh {} 755 0 0\n", sh.display());
    let cpio = dir.join("hwcheck.cpio");
    let st = Command::new("sh")
        .arg(root().join("boot/mkcpio.sh"))
        .stdin(
            fs::File::open({
                let l = dir.join("hwcheck.list");
                fs::write(&l, list).unwrap();
                l
            })
            .unwrap(),
        )
        .stdout(fs::File::create(&cpio).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "mkcpio.sh failed");
    let mut img = fs::read(boot_out().join("initramfs.img")).unwrap();
    img.resize(img.len().next_multiple_of(4), 0);
    img.extend(fs::read(&cpio).unwrap());
    let out = dir.join("initramfs-hwcheck.img");
    fs::write(&out, img).unwrap();
    out
}

/// A machine `what` that boots the checked initramfs directly with `job`.
fn checked_machine(dir: &Path, what: &str, job: &str, disks: &[&str], serial: &str) -> Qemu {
    let initrd = checked_initramfs(dir, &check_script(disks, serial));
    Qemu::new(dir, what)
        .rescue(&format!("{job} rdinit=/hwcheck.sh no_timer_check"))
        .initrd(&initrd)
        .timeout(TIMEOUT)
}

/// The hw.sh lines of a boot's console.
fn hwcheck(b: &Boot) -> Vec<String> {
    b.log
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once("hwcheck: "))
        .map(|(_, l)| l.to_string())
        .collect()
}

fn has(lines: &[String], want: &str, b: &Boot) {
    assert!(
        lines.iter().any(|l| l == want),
        "no hw.sh line {want:?} in {lines:#?}\n{}",
        b.log
    );
}

/// Clone from an NVMe disk (serial set) to a disk on an AHCI controller; an NE2000 card (no
/// driver in the initramfs) is reported with its PCI IDs.
#[test]
fn clone_nvme_to_ahci() {
    let what = "hw-nvme-ahci";
    let t = TempDir::new(what);
    let src = sample_volume(t.path());
    let tgt = empty_disk(&t.join("target.img"));
    let want = reference_clone(&src, t.path());
    let job = "ntfsclone.mode=clone ntfsclone.source=SERIAL=NVME-SRC-1 ntfsclone.target=SERIAL=AHCI-TGT-2";
    let b = checked_machine(t.path(), what, job, &["nvme0n1", "sda"], "NVME-SRC-1")
        .drive(format!(
            "if=none,id=src,format=raw,readonly=on,file={}",
            src.display()
        ))
        .device("nvme,drive=src,serial=NVME-SRC-1")
        .drive(format!("if=none,id=tgt,format=raw,file={}", tgt.display()))
        .device("ahci,id=ahci")
        .device("ide-hd,drive=tgt,bus=ahci.0,serial=AHCI-TGT-2")
        .user_net("model=ne2k_pci")
        .job();
    let hw = hwcheck(&b);
    has(&hw, "disk nvme0n1 serial [NVME-SRC-1]", &b);
    has(&hw, "disk sda serial [AHCI-TGT-2]", &b);
    has(&hw, "SERIAL=NVME-SRC-1 is [/dev/nvme0n1]", &b);
    has(&hw, "SERIAL=NO-SUCH-DISK is [none]", &b);
    has(&hw, "secure boot [off]", &b);
    assert!(
        hw.iter().any(|l| l.contains("no network driver bound")),
        "{hw:#?}"
    );
    // QEMU's NE2000 PCI card: Realtek's RTL8029 IDs.
    assert!(
        hw.iter()
            .any(|l| l.contains("network device without a driver") && l.contains("[10ec:8029]")),
        "{hw:#?}"
    );
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    assert_same_disk(&tgt, &want, what);
}

/// Clone from a USB stick (usb-storage on xHCI, USB serial number) to an SD card (SDHCI).
#[test]
fn clone_usb_storage_to_sd_card() {
    let what = "hw-usb-sd";
    let t = TempDir::new(what);
    let src = sample_volume(t.path());
    let tgt = empty_disk(&t.join("target.img"));
    let want = reference_clone(&src, t.path());
    let job = "ntfsclone.mode=clone ntfsclone.source=/dev/sda ntfsclone.target=/dev/mmcblk0";
    let b = checked_machine(t.path(), what, job, &["sda", "mmcblk0"], "USB-SRC-3")
        .no_net()
        .device("qemu-xhci")
        .drive(format!(
            "if=none,id=src,format=raw,readonly=on,file={}",
            src.display()
        ))
        .device("usb-storage,drive=src,serial=USB-SRC-3")
        .device("sdhci-pci")
        .drive(format!("if=none,id=tgt,format=raw,file={}", tgt.display()))
        .device("sd-card,drive=tgt")
        .job();
    let hw = hwcheck(&b);
    has(&hw, "disk sda serial [USB-SRC-3]", &b);
    has(&hw, "SERIAL=USB-SRC-3 is [/dev/sda]", &b);
    assert!(
        hw.iter().any(|l| l.starts_with("disk mmcblk0 serial [0x")),
        "the SD card's serial (from its CID): {hw:#?}\n{}",
        b.log
    );
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    assert_same_disk(&tgt, &want, what);
}

/// Restore over HTTP through an Intel e1000e card (DHCP, wget) onto a UAS disk.
#[test]
fn restore_http_e1000e_to_uas() {
    let what = "hw-e1000e-uas";
    let t = TempDir::new(what);
    let src = sample_volume(t.path());
    let want = reference_clone(&src, t.path());
    let www = t.join("www");
    fs::create_dir_all(&www).unwrap();
    reference_save(&src, &www.join("volume.img"));
    let server = HttpServer::start(&www);
    let tgt = empty_disk(&t.join("target.img"));
    // QEMU user networking shows the host's 127.0.0.1 to the guest as 10.0.2.2.
    let job = format!(
        "ntfsclone.mode=restore ntfsclone.target=/dev/sda ntfsclone.image=http://10.0.2.2:{}/volume.img",
        server.port
    );
    let b = checked_machine(t.path(), what, &job, &["sda"], "UAS-TGT-4")
        .user_net("model=e1000e")
        .device("qemu-xhci")
        .device("usb-uas,id=uas")
        .drive(format!("if=none,id=tgt,format=raw,file={}", tgt.display()))
        .device("scsi-hd,bus=uas.0,scsi-id=0,lun=0,drive=tgt,serial=UAS-TGT-4")
        .job();
    drop(server);
    let hw = hwcheck(&b);
    has(&hw, "disk sda serial [UAS-TGT-4]", &b);
    has(&hw, "SERIAL=UAS-TGT-4 is [/dev/sda]", &b);
    assert!(
        !hw.iter().any(|l| l.contains("no network driver")),
        "e1000e did not bind: {hw:#?}"
    );
    assert_eq!(b.marker, "ntfsclone-job: ok", "{}", b.log);
    assert_same_disk(&tgt, &want, what);
}

/// The initramfs has every firmware file that its network drivers ask for (modinfo) and that
/// the installed firmware packages ship, each package's licence, no firmware that no module asks
/// for, and stays within 16 MiB.
#[test]
fn initramfs_has_the_network_firmware() {
    let img = boot_out().join("initramfs.img");
    let size = fs::metadata(&img).unwrap().len();
    eprintln!("initramfs: {size} bytes");
    assert!(size <= 16 << 20, "initramfs is {size} bytes, over 16 MiB");
    let cpio = run(Command::new(require("zstd")).args(["-dc"]).arg(&img));
    assert!(cpio.status.success(), "zstd -dc initramfs.img");
    let list = cpio_names(&cpio.stdout);
    // What each module in the initramfs asks for (its modinfo on the build machine).
    let mut requested = std::collections::BTreeMap::new();
    for ko in list.iter().filter(|p| p.ends_with(".ko")) {
        let m = run(Command::new(require("modinfo"))
            .args(["-F", "firmware"])
            .arg(Path::new("/").join(ko)));
        assert!(m.status.success(), "modinfo /{ko}");
        let name = ko
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".ko")
            .to_string();
        let fw: Vec<String> = String::from_utf8_lossy(&m.stdout)
            .lines()
            .map(String::from)
            .collect();
        requested.insert(name, fw);
    }
    for (module, package) in [
        ("r8169", "firmware-realtek"),
        ("r8152", "firmware-realtek"),
        ("tg3", "firmware-misc-nonfree"),
        ("bnx2", "firmware-bnx2"),
    ] {
        let wanted = requested
            .get(module)
            .unwrap_or_else(|| panic!("{module}.ko is not in the initramfs"));
        assert!(!wanted.is_empty(), "modinfo lists no firmware for {module}");
        for fw in wanted {
            assert!(
                Path::new("/lib/firmware").join(fw).exists(),
                "{fw} (for {module}) is not installed: run `make deps` ({package})"
            );
            let inside = format!("lib/firmware/{fw}");
            assert!(
                list.contains(&inside),
                "{inside} (for {module}) is not in the initramfs"
            );
        }
        let licence = format!("usr/share/doc/{package}/copyright");
        assert!(list.contains(&licence), "{licence} is not in the initramfs");
    }
    // Nothing under lib/firmware but the requested files and their directories.
    for p in list.iter().filter_map(|p| p.strip_prefix("lib/firmware/")) {
        let asked = requested.values().flatten().any(|f| f == p);
        let dir = requested
            .values()
            .flatten()
            .any(|f| f.starts_with(&format!("{p}/")));
        assert!(
            asked || dir,
            "lib/firmware/{p} is in the initramfs, but no module asks for it"
        );
    }
}

/// The names in a newc cpio archive.
fn cpio_names(b: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0usize;
    let hex = |s: &[u8]| usize::from_str_radix(std::str::from_utf8(s).unwrap(), 16).unwrap();
    while at + 110 <= b.len() && &b[at..at + 6] == b"070701" {
        let size = hex(&b[at + 54..at + 62]);
        let namesize = hex(&b[at + 94..at + 102]);
        let name = String::from_utf8_lossy(&b[at + 110..at + 110 + namesize - 1]).into_owned();
        if name == "TRAILER!!!" {
            break;
        }
        names.push(name);
        at = (at + 110 + namesize).next_multiple_of(4);
        at = (at + size).next_multiple_of(4);
    }
    names
}

/// `boot/lib/hw.sh` on a sysfs tree made here (busybox sh, as in the rescue system): the paths
/// the boots above do not reach (virtio serials, the Secure Boot variable, a card with a driver).
#[test]
fn hw_sh_on_a_made_up_sysfs() {
    let t = TempDir::new("hw-sh");
    let sys = t.join("sys");
    let put = |p: &str, v: &[u8]| {
        let f = sys.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, v).unwrap();
    };
    put("block/vda/serial", b"VIRTIO-7\n");
    put("block/vdb/serial", b"  PADDED-8   \n");
    put(
        "block/sdz/device/vpd_pg80",
        b"\x00\x80\x00\x0cSCSI-SER-9 \x00",
    );
    put("bus/pci/devices/0000:00:03.0/class", b"0x020000\n");
    put("bus/pci/devices/0000:00:03.0/vendor", b"0x8086\n");
    put("bus/pci/devices/0000:00:03.0/device", b"0x10d3\n");
    put("bus/pci/devices/0000:00:03.0/driver/bind", b"");
    put("bus/pci/devices/0000:00:04.0/class", b"0x020000\n");
    put("bus/pci/devices/0000:00:04.0/vendor", b"0x14e4\n");
    put("bus/pci/devices/0000:00:04.0/device", b"0x1677\n");
    put("bus/pci/devices/0000:00:04.0/subsystem_vendor", b"0x1028\n");
    put("bus/pci/devices/0000:00:04.0/subsystem_device", b"0x01ad\n");
    put("bus/pci/devices/0000:00:05.0/class", b"0x010601\n");
    let hw = |script: &str| -> String {
        let out = run(Command::new(require("busybox"))
            .args(["sh", "-c"])
            .arg(format!(
                ". {}; {script}",
                root().join("boot/lib/hw.sh").display()
            ))
            .env("HW_SYS", &sys)
            .env("HW_DEV", "/dev"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(hw("hw_serial_disk VIRTIO-7"), "/dev/vda\n");
    assert_eq!(hw("hw_serial_disk PADDED-8"), "/dev/vdb\n");
    assert_eq!(hw("hw_serial_disk SCSI-SER-9"), "/dev/sdz\n");
    assert_eq!(hw("hw_serial_disk VIRTIO || echo none"), "none\n");
    let report = hw("hw_net_report");
    assert!(
        report.contains("PCI 0000:00:04.0 [14e4:1677] (subsystem 1028:01ad, class 0x020000)"),
        "{report}"
    );
    assert!(
        !report.contains("8086"),
        "a card with a driver is reported: {report}"
    );
    assert!(
        !report.contains("00:05.0"),
        "a disk controller is reported: {report}"
    );
    assert_eq!(hw("hw_secure_boot"), "off\n", "no firmware/efi: not UEFI");
    let var = "firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
    put(var, b"\x06\x00\x00\x00\x01");
    assert_eq!(hw("hw_secure_boot"), "on\n");
    put(var, b"\x06\x00\x00\x00\x00");
    assert_eq!(hw("hw_secure_boot"), "off\n");
}
