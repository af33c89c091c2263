//! Robustness: every bad input and every fault ends with exit status 1 and a message saying
//! what and where, never a panic, a signal, a hang or unbounded memory, and never damages an
//! output it was not asked to write. The reference's messages are checked where it has one
//! (its `ERROR` lines on stdout, libntfs's lines on stderr); ours (stderr) where it has none.
//! One module per input: bad sources (and the corrupted corpus), bad images, outputs that must
//! not or cannot be written, faults injected into system calls.
//!
//! Loop devices, mounts and FUSE mounts made here are removed by Drop guards.
use crate::common::{testdata, unzstd, TempDir};
use ntfsclone::ntfs::attribute::{AttrIter, Form};
use ntfsclone::ntfs::mft_record::{post_read_fixup, pre_write_fixup};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

mod faults;
mod images;
mod sources;
mod targets;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit status 1, no panic text, and the expected pieces on stdout and stderr. Every fatal
/// `ERROR` line, the reference's and our own, is on msg_out: stdout unless the output is `-`.
#[track_caller]
fn refused(o: &Output, out: &[&str], err: &[&str]) {
    let (so, se) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(1),
        "status {:?}\nstdout: {so}\nstderr: {se}",
        o.status
    );
    assert!(
        !se.contains("panicked") && !so.contains("panicked"),
        "panic: {se}"
    );
    for m in out {
        assert!(
            so.contains(m),
            "stdout lacks {m:?}\nstdout: {so}\nstderr: {se}"
        );
    }
    for m in err {
        assert!(
            se.contains(m),
            "stderr lacks {m:?}\nstdout: {so}\nstderr: {se}"
        );
    }
}

/// The clean 10 MiB volume (4 KiB clusters, 1 KiB records, $MFT at LCN 853, $MFTMirr at 2).
fn baseline(t: &TempDir) -> PathBuf {
    unzstd(
        &testdata().join("corrupted/baseline-uncorrupted-ntfs-default_4k_10MiB.ntfs.zst"),
        t.path(),
    )
}

const CS: usize = 4096;
const RS: usize = 1024;
const MFT: usize = 853 * CS;
const MIRR: usize = 2 * CS;

/// Edits MFT record `n` of `vol` in its fixed-up form, protects it again, and mirrors records
/// 0-3 into $MFTMirr so that only the intended corruption is seen.
fn edit_record(vol: &mut [u8], n: usize, f: impl FnOnce(&mut Vec<u8>)) {
    let off = MFT + n * RS;
    let mut r = vol[off..off + RS].to_vec();
    post_read_fixup(&mut r).unwrap();
    f(&mut r);
    assert!(pre_write_fixup(&mut r));
    vol[off..off + RS].copy_from_slice(&r);
    if n < 4 {
        vol[MIRR + n * RS..MIRR + (n + 1) * RS].copy_from_slice(&r);
    }
}

/// Byte offsets (attribute start, mapping pairs start) of the first non-resident attribute
/// of `type_code` in a fixed-up record.
fn nonresident(r: &[u8], type_code: u32) -> (usize, usize) {
    for a in AttrIter::new(r).flatten() {
        if let (true, Form::NonResident { mapping_pairs, .. }) = (a.type_code == type_code, a.form)
        {
            let mp = mapping_pairs.as_ptr() as usize - r.as_ptr() as usize;
            return (a.offset, mp);
        }
    }
    panic!("no non-resident attribute {type_code:x}");
}

/// A copy of the baseline changed by `f`, written to `dir/name`.
fn variant(base: &[u8], dir: &Path, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut v = base.to_vec();
    f(&mut v);
    let p = dir.join(name);
    fs::write(&p, v).unwrap();
    p
}

/// A file with known content that must survive.
struct Sentinel {
    path: PathBuf,
    data: Vec<u8>,
}

impl Sentinel {
    fn new(path: PathBuf) -> Sentinel {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        fs::write(&path, &data).unwrap();
        Sentinel { path, data }
    }
    #[track_caller]
    fn intact(&self) {
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.data,
            "{:?} was changed",
            self.path
        );
    }
}
