//! Tests of the volume, mount checks and walk on a real NTFS volume held in memory
//! (`testdata/basic-2m.ntfs.zst`, made by `testdata/make-fixture.sh` from `tests/mkvol.sh`'s
//! "basic" profile: a 2 MiB volume with 4 KiB clusters, `small.txt`, `file300k.bin`,
//! `dir200/f1.txt` … `f200.txt` and a deleted file; user data zeroed, $UpCase zeroed).
//!
//! The fixture is decompressed with the `zstd` command (`make deps` installs it): a test
//! that cannot find it fails and says so.
use super::attribute::{Form, AT_DATA, AT_FILE_NAME};
use super::diag::{Diagnostics, NoDiagnostics};
use super::inode;
use super::volume::{RecordRead, Volume};
use super::walk::{for_each_run, walk_volume};
use crate::dev::mem::MemDev;
use crate::error::Error;
use core::fmt;
use std::collections::BTreeSet;
use std::prelude::v1::*;
use std::string::ToString;

/// The fixture, compressed.
const FIXTURE: &[u8] = include_bytes!("testdata/basic-2m.ntfs.zst");
/// Its size once decompressed.
const FIXTURE_BYTES: usize = 2 << 20;
/// Bytes per MFT record on it (mkntfs's default).
const RECORD: usize = 1024;

/// The fixture's bytes.
fn fixture() -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the zstd command is needed to decompress the NTFS fixture (make deps)");
    let mut stdin = child.stdin.take().expect("zstd stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(FIXTURE));
    let out = child.wait_with_output().expect("zstd output");
    feeder
        .join()
        .expect("zstd feeder")
        .expect("writing to zstd");
    assert!(out.status.success(), "zstd -d failed: {:?}", out.status);
    assert_eq!(out.stdout.len(), FIXTURE_BYTES, "fixture size");
    out.stdout
}

/// Diagnostics kept as lines.
#[derive(Default)]
struct Lines {
    warn: Vec<String>,
    msg: Vec<String>,
    progress: Vec<u64>,
}

impl Diagnostics for Lines {
    fn msg(&mut self, args: fmt::Arguments) {
        self.msg.push(args.to_string());
    }
    fn warn(&mut self, args: fmt::Arguments) {
        self.warn.push(args.to_string());
    }
    fn progress_start(&mut self, _: u64, stop: u64) {
        self.progress.push(stop);
    }
    fn progress(&mut self, _: u64) {}
}

/// Byte offset of MFT record `n` on the fixture.
fn record_offset(vol: &Volume, n: u64) -> usize {
    let cs = u64::from(vol.boot.cluster_size);
    let pos = n * RECORD as u64;
    let r = vol
        .mft_runs
        .iter()
        .find(|r| r.vcn * cs <= pos && pos < (r.vcn + r.len) * cs)
        .expect("record in the $MFT runlist");
    let lcn = r.lcn.expect("$MFT is allocated");
    usize::try_from(lcn * cs + pos - r.vcn * cs).unwrap()
}

/// The name of a $FILE_NAME value (UTF-16LE, ASCII on the fixture).
fn file_name(v: &[u8]) -> String {
    let len = usize::from(v[0x40]);
    v[0x42..0x42 + 2 * len]
        .chunks_exact(2)
        .map(|c| char::from(c[0]))
        .collect()
}

#[test]
fn opens_with_its_geometry_and_version() {
    let dev = MemDev::new(fixture());
    let mut lines = Lines::default();
    let vol = Volume::open_with_sink(&dev, FIXTURE_BYTES as u64, &mut lines).unwrap();
    assert!(lines.warn.is_empty(), "{:?}", lines.warn);
    assert_eq!(vol.boot.sector_size, 512);
    assert_eq!(vol.boot.cluster_size, 4096);
    // mkntfs keeps the last sector for the backup boot sector.
    assert_eq!(vol.boot.total_sectors, (FIXTURE_BYTES / 512 - 1) as u64);
    assert_eq!(vol.boot.nr_clusters, (FIXTURE_BYTES / 512 - 1) as u64 / 8);
    assert_eq!(vol.record_size(), RECORD);
    assert_eq!(vol.version, (3, 1));
    assert!(!vol.is_dirty());
    // 16 system records, 204 files and directories, and the deleted one's record.
    assert!(vol.mft_records > 220, "{}", vol.mft_records);
    assert_eq!(vol.mft_sizes.2, vol.mft_records * RECORD as u64);
    assert!(vol.mft_sizes.0 >= vol.mft_sizes.1 && vol.mft_sizes.1 >= vol.mft_sizes.2);
    // One cluster of $MFTMirr holds four 1 KiB records.
    assert_eq!(vol.mftmirr_records, 4);
}

#[test]
fn reads_records() {
    let dev = MemDev::new(fixture());
    let vol = Volume::open(&dev, FIXTURE_BYTES as u64).unwrap();
    let mut buf = vec![0u8; vol.record_size()];
    for n in [inode::MFT, inode::ROOT, inode::SECURE] {
        match vol.read_record(&dev, n, &mut buf, &mut NoDiagnostics) {
            Ok(RecordRead::Ok(h)) => assert!(h.in_use() && h.base_reference == 0, "record {n}"),
            r => core::panic!("record {n}: {r:?}"),
        }
    }
    assert_eq!(
        vol.read_record(&dev, vol.mft_records, &mut buf, &mut NoDiagnostics),
        Ok(RecordRead::Unmapped)
    );
    assert_eq!(
        vol.read_record(&dev, u64::MAX, &mut buf, &mut NoDiagnostics),
        Ok(RecordRead::Unmapped)
    );
}

#[test]
fn torn_and_unmarked_records_are_verdicts() {
    let mut data = fixture();
    let vol = Volume::open(&MemDev::new(data.clone()), FIXTURE_BYTES as u64).unwrap();
    // Record 30 torn: the end of its first stride no longer holds the update sequence number.
    let torn = record_offset(&vol, 30) + 510;
    data[torn] ^= 0xff;
    // Record 31 without its FILE magic.
    let unmarked = record_offset(&vol, 31);
    data[unmarked..unmarked + 4].fill(0);
    let dev = MemDev::new(data);
    let mut buf = vec![0u8; vol.record_size()];
    let mut lines = Lines::default();
    assert_eq!(
        vol.read_record(&dev, 30, &mut buf, &mut lines),
        Ok(RecordRead::Incomplete)
    );
    assert_eq!(lines.warn.len(), 1);
    assert!(
        lines.warn[0].contains("Incomplete multi-sector transfer"),
        "{:?}",
        lines.warn
    );
    assert_eq!(
        vol.read_record(&dev, 31, &mut buf, &mut lines),
        Ok(RecordRead::NoMagic)
    );
    assert_eq!(lines.warn.len(), 1, "no magic is silent");
}

#[test]
fn walk_visits_every_file_once() {
    let dev = MemDev::new(fixture());
    let vol = Volume::open(&dev, FIXTURE_BYTES as u64).unwrap();
    let mut lines = Lines::default();
    let mut names = BTreeSet::new();
    let mut files = BTreeSet::new();
    let mut big = None;
    let mut clusters = 0u64;
    walk_volume(&vol, &dev, &mut lines, &mut |v, _| {
        files.insert(v.inode);
        if v.attr.type_code == AT_FILE_NAME {
            names.insert(file_name(v.attr.value().unwrap()));
        }
        if v.attr.type_code == AT_DATA && v.attr.name.is_empty() {
            if let Form::NonResident { data_size, .. } = v.attr.form {
                if data_size == 300_000 {
                    big = Some(v.inode);
                }
            }
        }
        for_each_run(&vol, v, &mut |_, len| {
            clusters += len;
            Ok(())
        })
    })
    .unwrap();
    assert!(lines.warn.is_empty(), "{:?}", lines.warn);
    assert_eq!(lines.progress, [vol.mft_records - 1]);
    for n in [
        inode::MFT,
        inode::MFTMIRR,
        inode::ROOT,
        inode::BITMAP,
        inode::SECURE,
    ] {
        assert!(files.contains(&n), "system file {n} not visited");
    }
    for name in [
        "$MFT",
        ".",
        "small.txt",
        "file300k.bin",
        "dir200",
        "f1.txt",
        "f200.txt",
    ] {
        assert!(names.contains(name), "{name} not visited");
    }
    assert!(
        !names.contains("deleted.bin"),
        "a deleted file is not walked"
    );
    let dir200 = (1..=200).filter(|i| names.contains(&std::format!("f{i}.txt")));
    assert_eq!(dir200.count(), 200);
    assert!(big.is_some_and(|i| i > inode::UPCASE), "{big:?}");
    // 300 000 bytes take 74 clusters; the system files take more than that again.
    assert!(
        clusters > 74 && clusters < vol.boot.nr_clusters,
        "{clusters}"
    );
}

#[test]
fn scan_agrees_with_bitmap() {
    let dev = MemDev::new(fixture());
    let vol = Volume::open(&dev, FIXTURE_BYTES as u64).unwrap();
    let mut lines = Lines::default();
    let scan = crate::used::scan(&vol, &dev, false, &mut lines).unwrap();
    assert_eq!(scan.mismatches, 0);
    assert_eq!(scan.bad_clusters, 0);
    assert!(scan.badclus_error.is_none());
    assert_eq!(lines.msg, ["Accounting clusters ...\n"]);
    // The used map also holds the backup boot sector's position and the bits past it.
    assert!(scan.used.get(0) && scan.used.get(vol.boot.nr_clusters));
    assert!(scan.inuse > 74 && scan.inuse < vol.boot.nr_clusters);
}

/// The mount error: errno and the last line printed.
fn open_error(data: Vec<u8>) -> (i32, String, Vec<String>) {
    let mut lines = Lines::default();
    match Volume::open_with_sink(&MemDev::new(data), FIXTURE_BYTES as u64, &mut lines) {
        Err(Error::Os { what, errno }) => (errno, what.as_str().to_string(), lines.warn),
        r => core::panic!("{r:?}"),
    }
}

#[test]
fn mount_refuses_bad_boot_sector_and_mft() {
    let good = fixture();
    let vol = Volume::open(&MemDev::new(good.clone()), FIXTURE_BYTES as u64).unwrap();

    // No NTFS signature.
    let mut data = good.clone();
    data[3..11].copy_from_slice(b"MSDOS5.0");
    let (errno, _, _) = open_error(data);
    assert_eq!(errno, crate::error::errno::EINVAL);

    // A short device.
    let mut lines = Lines::default();
    let r = Volume::open_with_sink(&MemDev::new(good[..100].to_vec()), 100, &mut lines);
    assert!(
        matches!(&r, Err(Error::Os { errno, .. }) if *errno == crate::error::errno::EINVAL),
        "{r:?}"
    );

    // Record 0 without its magic.
    let mut data = good.clone();
    let mft = record_offset(&vol, 0);
    data[mft..mft + 4].copy_from_slice(b"XXXX");
    let (errno, what, _) = open_error(data);
    assert_eq!(errno, crate::error::errno::EIO);
    assert_eq!(what, "Failed to load $MFT: Input/output error");

    // $MFTMirr differs from $MFT in record 3 (its sequence number).
    let mut data = good.clone();
    let mirror = usize::try_from(vol.boot.mftmirr_lcn * u64::from(vol.boot.cluster_size)).unwrap();
    data[mirror + 3 * RECORD + 0x10] ^= 0x55;
    let (errno, what, _) = open_error(data);
    assert_eq!(errno, crate::error::errno::EIO);
    assert_eq!(what, "$MFTMirr does not match $MFT (record 3).");
}
