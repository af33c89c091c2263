//! Differential regression tests: targeted corruptions of the clean 10 MiB baseline volume,
//! each run through the real ntfsclone and ours (`-s -o FILE`, and `-s -f` when a tool asks
//! for `--force`). Both must agree on the exit status, the last `ERROR` line of stdout,
//! whether an output file is left, and, when both succeed, on every image byte (ours with
//! `--no-checksum`).
//!
//! The cases were found by mutation testing (boot sector fields, MFT record headers,
//! attribute headers, runlists, $Bitmap, $Volume flags); each one is a disagreement that was
//! fixed or a representative of a class that already agreed. Offsets are found from the
//! volume's own structures: a record number, an attribute type and a field offset.
use crate::common::{require, run_ours, run_ref, testdata, unzstd, TempDir};
use ntfsclone::ntfs::attribute::AttrIter;
use ntfsclone::ntfs::mft_record::{post_read_fixup, pre_write_fixup};
use std::fs;
use std::path::Path;
use std::process::Output;

/// Baseline geometry (checked at run time from its boot sector).
const CS: u64 = 4096;
const RS: usize = 1024;
const MFT_LCN: u64 = 853;
const MFTMIRR_LCN: u64 = 2;

/// Where a mutation writes.
#[derive(Debug, Clone, Copy)]
enum At {
    /// Byte offset in the boot sector (primary only).
    Boot(usize),
    /// Offset inside MFT record N after the fixup (re-protected, also in $MFTMirr for N < 4).
    Rec(u64, usize),
    /// Offset inside MFT record N as stored (no fixup: can break the update sequence).
    RawRec(u64, usize),
    /// Offset from the start of the first attribute of type T in record N.
    Attr(u64, u32, usize),
    /// Offset inside the resident value of the first attribute of type T in record N.
    Value(u64, u32, usize),
    /// Bit of $Bitmap for this LCN: the byte written is 0 (clear) or 1 (set).
    BitmapBit(u64),
}

/// One mutation: a name, where, and the bytes.
struct Case {
    name: &'static str,
    at: At,
    bytes: &'static [u8],
}

const fn case(name: &'static str, at: At, bytes: &'static [u8]) -> Case {
    Case { name, at, bytes }
}

/// The table. Record numbers of the baseline: 3 $Volume, 4 $AttrDef, 6 $Bitmap, 9 $Secure,
/// 10 $UpCase, 29 $Extend\$Deleted (directory, non-resident $I30), 32 $Tops (non-resident
/// $T stream), 33 $TxfLog.blf (non-resident $DATA).
const CASES: &[Case] = &[
    // Boot sector (the mount refuses, nothing is created).
    case("boot bytes/sector 500", At::Boot(0x0b), &[0xf4, 0x01]),
    case("boot OEM id", At::Boot(0x03), b"NTFX"),
    case("boot sectors/cluster 3", At::Boot(0x0d), &[3]),
    case(
        "boot total sectors 100",
        At::Boot(0x28),
        &[100, 0, 0, 0, 0, 0, 0, 0],
    ),
    case(
        "boot $MFT LCN = nr_clusters",
        At::Boot(0x30),
        &[0xff, 0x09, 0, 0, 0, 0, 0, 0],
    ),
    case("boot clusters/MFT record 0x30", At::Boot(0x40), &[0x30]),
    case("boot end marker 0", At::Boot(0x1fe), &[0, 0]),
    // $Volume: dirty flag (needs --force) and an unknown version.
    case("$Volume dirty", At::Value(3, 0x70, 10), &[1, 0]),
    case("$Volume version 4.0", At::Value(3, 0x70, 8), &[4, 0]),
    // Record headers.
    case("user record magic BAAD", At::RawRec(33, 0), b"BAAD"),
    case(
        "user record usn mismatch",
        At::RawRec(33, 510),
        &[0x55, 0x55],
    ),
    case("user record not in use", At::Rec(33, 0x16), &[0, 0]),
    case(
        "user record bytes allocated",
        At::Rec(33, 0x1c),
        &[0xff, 0x03, 0, 0],
    ),
    // Attribute headers the reference's walk tolerates (fixed: we refused these files).
    case("non_resident 2 on $T", At::Attr(32, 0x80, 8), &[2]),
    case(
        "$I30 allocation name offset 0xffff",
        At::Attr(29, 0xa0, 10),
        &[0xff, 0xff],
    ),
    case(
        "$SI value length 0x400",
        At::Attr(29, 0x10, 0x10),
        &[0, 4, 0, 0],
    ),
    case(
        "$SI value offset 0xffff",
        At::Attr(32, 0x10, 0x14),
        &[0xff, 0xff],
    ),
    case(
        "$FILE_NAME value length 0xffffffff",
        At::Attr(33, 0x30, 0x10),
        &[0xff; 4],
    ),
    // $STANDARD_INFORMATION shorter than 48 bytes (fixed: message and skip).
    case(
        "$SI value length 0",
        At::Attr(33, 0x10, 0x10),
        &[0, 0, 0, 0],
    ),
    // System files the mount opens (fixed: the mount fails, no output file).
    case(
        "$AttrDef attribute length 0",
        At::Attr(4, 0x10, 4),
        &[0, 0, 0, 0],
    ),
    case(
        "$Bitmap attribute length 0",
        At::Attr(6, 0x10, 4),
        &[0, 0, 0, 0],
    ),
    case(
        "$UpCase attribute length 4",
        At::Attr(10, 0x10, 4),
        &[4, 0, 0, 0],
    ),
    case(
        "$Secure attribute length 0",
        At::Attr(9, 0x10, 4),
        &[0, 0, 0, 0],
    ),
    // Runlists: a run past the volume end meets the preset bits (fixed: message), a run
    // over $MFT, a negative LCN, an empty runlist.
    case(
        "run past the end",
        At::Attr(33, 0x80, 0x40),
        &[0x21, 0x10, 0xf6, 0x09, 0],
    ),
    case(
        "run over $MFT",
        At::Attr(33, 0x80, 0x40),
        &[0x21, 0x01, 0x55, 0x03, 0],
    ),
    case(
        "run at negative LCN",
        At::Attr(33, 0x80, 0x40),
        &[0x11, 0x01, 0xfb, 0],
    ),
    case("empty runlist", At::Attr(33, 0x80, 0x40), &[0]),
    // Update sequence arrays that do not fit: the record is used as stored (fixed: we
    // skipped the file; the reference only warns at mount, silently in the walk).
    case("user record usa_count 1", At::RawRec(33, 6), &[1, 0]),
    case("user record usa_ofs 1", At::RawRec(32, 4), &[1, 0]),
    case("$Bitmap usa_ofs 0x3fe", At::RawRec(6, 4), &[0xfe, 0x03]),
    // Attribute lengths: the walk takes the attributes before a bad one, a length that is not
    // a multiple of 8 is walked, a short one leaves the mapping pairs outside (fixed).
    case(
        "$I30 bitmap length 0x29 after the allocation",
        At::Attr(29, 0xb0, 4),
        &[0x29, 0, 0, 0],
    ),
    case(
        "last $DATA length 0x4c",
        At::Attr(33, 0x80, 4),
        &[0x4c, 0, 0, 0],
    ),
    case(
        "last $DATA length 0x10",
        At::Attr(33, 0x80, 4),
        &[0x10, 0, 0, 0],
    ),
    case(
        "$DATA retyped 0x20 after $FILE_NAME",
        At::Attr(33, 0x80, 0),
        &[0x20, 0, 0, 0],
    ),
    // bytes_in_use past the record: taken by the walk, refused by the mount (fixed).
    case("user record in-use 0x408", At::Rec(33, 0x18), &[8, 4, 0, 0]),
    case("$Bitmap in-use 0x408", At::Rec(6, 0x18), &[8, 4, 0, 0]),
    case("root in-use 0x408", At::Rec(5, 0x18), &[8, 4, 0, 0]),
    case("$LogFile in-use 0x408", At::Rec(2, 0x18), &[8, 4, 0, 0]),
    // The mount's full check of system records (fixed: we cloned these volumes).
    case(
        "$LogFile $DATA length 0x4c",
        At::Attr(2, 0x80, 4),
        &[0x4c, 0, 0, 0],
    ),
    case(
        "$LogFile mapping pairs offset at the end",
        At::Attr(2, 0x80, 0x20),
        &[0x48, 0],
    ),
    case(
        "$LogFile $FILE_NAME value length 0x51",
        At::Attr(2, 0x30, 0x10),
        &[0x51, 0, 0, 0],
    ),
    case(
        "$LogFile $FILE_NAME retyped 0x90",
        At::Attr(2, 0x30, 0),
        &[0x90, 0, 0, 0],
    ),
    case(
        "$LogFile in-use cuts the end marker",
        At::Rec(2, 0x18),
        &[0x50, 1, 0, 0],
    ),
    case("$MFTMirr in-use 0x150", At::Rec(1, 0x18), &[0x50, 1, 0, 0]),
    case(
        "root $I30 bitmap length 4",
        At::Attr(5, 0xb0, 4),
        &[4, 0, 0, 0],
    ),
    case(
        "$UpCase $DATA name offset 0xffff, no name",
        At::Attr(10, 0x80, 10),
        &[0xff, 0xff],
    ),
    // $DATA flags of the system files the mount opens (fixed: we cloned these volumes).
    case("$MFT compression unit 1", At::Attr(0, 0x80, 0x22), &[1]),
    case("$MFTMirr encrypted", At::Attr(1, 0x80, 0x0c), &[0, 0x40]),
    case(
        "$AttrDef compressed, no unit",
        At::Attr(4, 0x80, 0x0c),
        &[1, 0],
    ),
    case("$UpCase sparse", At::Attr(10, 0x80, 0x0c), &[0, 0x80]),
    case(
        "$MFTMirr $FILE_NAME value offset 0",
        At::Attr(1, 0x30, 0x14),
        &[0, 0],
    ),
    case(
        "$AttrDef allocated size 0",
        At::Attr(4, 0x80, 0x28),
        &[0; 8],
    ),
    case("$MFT ends after $SI", At::Attr(0, 0x30, 0), &[0xff; 4]),
    case(
        "root allocation size 0x800",
        At::Rec(5, 0x1c),
        &[0, 8, 0, 0],
    ),
    case(
        "$MFTMirr allocated size 0",
        At::Attr(1, 0x80, 0x28),
        &[0; 8],
    ),
    case("$Bitmap allocated size 0", At::Attr(6, 0x80, 0x28), &[0; 8]),
    case("$Volume not in use", At::Rec(3, 0x16), &[0, 0]),
    case(
        "$Volume empty $DATA value offset 0xffff",
        At::Attr(3, 0x80, 0x14),
        &[0xff, 0xff],
    ),
    case("$MFT $DATA non_resident 2", At::Attr(0, 0x80, 8), &[2]),
    case("$MFT $DATA named", At::Attr(0, 0x80, 9), &[1]),
    case("$AttrDef compression unit 4", At::Attr(4, 0x80, 0x22), &[4]),
    // $BadClus: the reference opens it after `Space in use` and fails there (fixed: we
    // cloned these volumes without their bad clusters' check).
    case(
        "$BadClus allocation size 0x800",
        At::Rec(8, 0x1c),
        &[0, 8, 0, 0],
    ),
    case("$BadClus not in use", At::Rec(8, 0x16), &[0, 0]),
    case(
        "$BadClus end marker after $SI",
        At::Attr(8, 0x30, 0),
        &[0xff; 4],
    ),
    case("$BadClus $SI named", At::Attr(8, 0x10, 9), &[1]),
    case("user $SI named", At::Attr(33, 0x10, 9), &[1]),
    // $Bitmap content: a used cluster cleared, a free one set.
    case(
        "$Bitmap clears $MFT's first cluster",
        At::BitmapBit(MFT_LCN),
        &[0],
    ),
    case("$Bitmap sets a free cluster", At::BitmapBit(2000), &[1]),
];

fn le16(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}

fn le32(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

/// Writes `bytes` at `off` of the volume file.
fn put(vol: &mut [u8], off: u64, bytes: &[u8]) {
    let o = off as usize;
    vol[o..o + bytes.len()].copy_from_slice(bytes);
}

/// Edits record `n` after the fixup and writes it back protected (and to $MFTMirr for n < 4).
fn edit_record(vol: &mut [u8], n: u64, edit: &dyn Fn(&mut [u8])) {
    let off = MFT_LCN * CS + n * RS as u64;
    let mut r = vol[off as usize..off as usize + RS].to_vec();
    post_read_fixup(&mut r).unwrap();
    edit(&mut r);
    assert!(pre_write_fixup(&mut r), "record {n}: fixup");
    put(vol, off, &r);
    if n < 4 {
        put(vol, MFTMIRR_LCN * CS + n * RS as u64, &r);
    }
}

/// Offset inside fixed-up record `r` of the first attribute of type `ty` (and of its value).
fn find_attr(r: &[u8], ty: u32) -> (usize, usize) {
    let a = AttrIter::new(r)
        .filter_map(|a| a.ok())
        .find(|a| a.type_code == ty)
        .unwrap_or_else(|| panic!("no attribute {ty:#x}"));
    let value = a.offset + le16(r, a.offset + 0x14);
    (a.offset, value)
}

fn apply(vol: &mut [u8], c: &Case) {
    match c.at {
        At::Boot(o) => put(vol, o as u64, c.bytes),
        At::RawRec(n, o) => put(vol, MFT_LCN * CS + n * RS as u64 + o as u64, c.bytes),
        At::Rec(n, o) => edit_record(vol, n, &|r| {
            r[o..o + c.bytes.len()].copy_from_slice(c.bytes)
        }),
        At::Attr(n, ty, o) => edit_record(vol, n, &|r| {
            let (a, _) = find_attr(r, ty);
            r[a + o..a + o + c.bytes.len()].copy_from_slice(c.bytes)
        }),
        At::Value(n, ty, o) => edit_record(vol, n, &|r| {
            let (_, v) = find_attr(r, ty);
            r[v + o..v + o + c.bytes.len()].copy_from_slice(c.bytes)
        }),
        At::BitmapBit(lcn) => {
            // $Bitmap's data: the first run of record 6's $DATA (one run on the baseline).
            let off = (MFT_LCN * CS + 6 * RS as u64) as usize;
            let mut r = vol[off..off + RS].to_vec();
            post_read_fixup(&mut r).unwrap();
            let (a, _) = find_attr(&r, 0x80);
            let mp = a + le16(&r, a + 0x20);
            // First mapping pair: header, length bytes, LCN bytes (positive on the baseline).
            let (ls, os) = ((r[mp] & 0xf) as usize, (r[mp] >> 4) as usize);
            assert!(os > 0 && os <= 8, "$Bitmap runlist shape");
            let bitmap_lcn = r[mp + 1 + ls..mp + 1 + ls + os]
                .iter()
                .rev()
                .fold(0u64, |acc, &b| acc << 8 | b as u64);
            let byte = (bitmap_lcn * CS + lcn / 8) as usize;
            let bit = 1u8 << (lcn % 8);
            if c.bytes[0] == 0 {
                assert!(vol[byte] & bit != 0, "cluster {lcn} is not used");
                vol[byte] &= !bit;
            } else {
                assert!(vol[byte] & bit == 0, "cluster {lcn} is not free");
                vol[byte] |= bit;
            }
        }
    }
}

/// What one run showed: exit status, the last ERROR line with what follows it, the image.
#[derive(Debug, PartialEq)]
struct Seen {
    status: Option<i32>,
    error: Option<String>,
    output: Option<Vec<u8>>,
}

fn seen(o: &Output, out: &Path) -> Seen {
    let stdout = String::from_utf8_lossy(&o.stdout).replace('\r', "\n");
    let lines: Vec<&str> = stdout.lines().collect();
    let error = lines
        .iter()
        .rposition(|l| l.starts_with("ERROR"))
        .map(|i| lines[i..].join("\n").trim().to_string());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let output = fs::read(out).ok();
    let _ = fs::remove_file(out);
    Seen {
        status: o.status.code(),
        error,
        // An image is compared only when the run succeeded; a failed run is compared on
        // whether it left a file.
        output: output.map(|b| if o.status.success() { b } else { Vec::new() }),
    }
}

/// Runs both tools with `args` (+ `-o OUT VOL`) and returns (reference, ours).
fn both(dir: &Path, vol: &Path, args: &[&str]) -> (Seen, Seen) {
    let out = dir.join("out.img");
    let (o, v) = (out.to_str().unwrap(), vol.to_str().unwrap());
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-o", o, v]);
    let r = seen(&run_ref(&a), &out);
    a.insert(0, "--no-checksum");
    let s = seen(&run_ours(&a), &out);
    (r, s)
}

#[test]
fn mutated_baseline_volumes_are_handled_like_the_reference() {
    require("ntfsclone");
    require("zstd");
    let t = TempDir::new("differential");
    let clean = unzstd(
        &testdata().join("corrupted/baseline-uncorrupted-ntfs-default_4k_10MiB.ntfs.zst"),
        t.path(),
    );
    let base = fs::read(&clean).unwrap();
    assert_eq!(&base[3..11], b"NTFS    ");
    assert_eq!(le16(&base, 0x0b) * base[0x0d] as usize, CS as usize);
    assert_eq!(le32(&base, 0x30) as u64, MFT_LCN);
    assert_eq!(le32(&base, 0x38) as u64, MFTMIRR_LCN);
    let vol = t.join("vol.img");
    let mut failures = Vec::new();
    for c in CASES {
        let mut v = base.clone();
        apply(&mut v, c);
        fs::write(&vol, &v).unwrap();
        let (r, s) = both(t.path(), &vol, &["-s"]);
        let mut runs = vec![("-s", r, s)];
        let asks_force = |x: &Seen| x.error.as_deref().is_some_and(|e| e.contains("--force"));
        if asks_force(&runs[0].1) || asks_force(&runs[0].2) {
            let (r, s) = both(t.path(), &vol, &["-s", "-f"]);
            runs.push(("-s -f", r, s));
        }
        for (mode, r, s) in runs {
            if r != s {
                failures.push(format!(
                    "{} ({mode}):\n  reference: status {:?}, {:?}, output {:?} bytes\n  ours:      status {:?}, {:?}, output {:?} bytes{}",
                    c.name,
                    r.status,
                    r.error,
                    r.output.as_ref().map(|b| b.len()),
                    s.status,
                    s.error,
                    s.output.as_ref().map(|b| b.len()),
                    if r.output.is_some() && s.output.is_some() && r.status == s.status {
                        " (contents differ)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    // The table must exercise both outcomes, or it tests nothing about images.
    assert!(CASES.len() >= 25);
    assert!(
        failures.is_empty(),
        "{} disagreement(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
