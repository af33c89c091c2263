//! A short, deterministic fuzz run of every parser of untrusted bytes, on the stable toolchain:
//! the same target functions as the cargo-fuzz binaries (`fuzz/targets.rs`), driven by a small
//! mutator with a fixed seed over seed inputs taken from real volumes and images. `make fuzz`
//! runs the coverage-guided version for longer. A panic, a hang (an input taking more than a
//! few seconds) or an abort fails the test and prints the input as hex; every crash found so
//! far is kept as a regression input in `regressions()`.
//!
//! `NTFSCLONE_FUZZ_SCALE` multiplies the iteration counts (default 1).
use crate::common::{testdata, unzstd, TempDir};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

#[path = "../../fuzz/targets.rs"]
mod targets;

/// xorshift64*: a fixed sequence, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that sit on the edges parsers get wrong.
const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    u64::MAX,
];

/// One random change to `v` in `lo..hi` (clipped); may grow or shrink `v` when `resize`.
fn mutate(r: &mut Rng, v: &mut Vec<u8>, lo: usize, hi: usize, resize: bool) {
    let hi = hi.min(v.len());
    if hi <= lo {
        v.push(r.next() as u8);
        return;
    }
    let at = lo + r.below(hi - lo);
    match r.below(if resize { 9 } else { 6 }) {
        0 => v[at] ^= 1 << r.below(8),
        1 => v[at] = r.next() as u8,
        2 | 3 => {
            let w = [1usize, 2, 4, 8][r.below(4)];
            let mut x = INTERESTING[r.below(INTERESTING.len())];
            if r.below(4) == 0 {
                x = x.wrapping_neg();
            }
            if r.below(3) == 0 {
                x = x.wrapping_add(r.below(5) as u64).wrapping_sub(2);
            }
            let b = x.to_le_bytes();
            let end = (at + w).min(hi);
            v[at..end].copy_from_slice(&b[..end - at]);
        }
        4 => {
            // Copy a chunk from elsewhere (structures repeat inside records).
            let n = 1 + r.below(16);
            let src = lo + r.below(hi - lo);
            for i in 0..n {
                if at + i < hi && src + i < hi {
                    v[at + i] = v[src + i];
                }
            }
        }
        5 => {
            let n = 1 + r.below(8);
            for b in v.iter_mut().skip(at).take(n.min(hi - at)) {
                *b = 0;
            }
        }
        6 => v.truncate(at),
        7 => {
            let n = 1 + r.below(32);
            for _ in 0..n {
                v.insert(at, r.next() as u8);
            }
        }
        _ => {
            let n = (1 + r.below(32)).min(v.len() - at);
            v.drain(at..at + n);
        }
    }
}

/// Runs `f` on `input`, turning a panic or a slow input into a failure message with the input.
fn check(name: &str, input: &[u8], f: &dyn Fn(&[u8])) -> Option<String> {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| f(input)));
    let slow = t.elapsed() > Duration::from_secs(5);
    if r.is_ok() && !slow {
        return None;
    }
    let what = match &r {
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
        Ok(()) => format!("took {:?}", t.elapsed()),
    };
    let hex: String = input.iter().take(600).map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{name}: {what}\n  input ({} bytes): {hex}",
        input.len()
    ))
}

/// Mutates each seed `iters` times in total (1-4 stacked changes each), runs `f` on each.
fn fuzz(
    name: &str,
    seeds: &[Vec<u8>],
    iters: usize,
    resize: bool,
    f: &dyn Fn(&[u8]),
) -> Vec<String> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let mut fails = Vec::new();
    for s in seeds {
        if let Some(e) = check(name, s, f) {
            fails.push(e);
        }
    }
    for _ in 0..iters * scale() {
        let mut v = seeds[r.below(seeds.len())].clone();
        for _ in 0..1 + r.below(4) {
            let len = v.len();
            mutate(&mut r, &mut v, 0, len, resize);
        }
        if let Some(e) = check(name, &v, f) {
            fails.push(e);
            if fails.len() >= 3 {
                break;
            }
        }
    }
    fails
}

fn scale() -> usize {
    std::env::var("NTFSCLONE_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The clean 10 MiB volume of the corrupted corpus (4 KiB clusters, $MFT at LCN 853).
fn baseline(t: &TempDir) -> Vec<u8> {
    let p = unzstd(
        &testdata().join("corrupted/baseline-uncorrupted-ntfs-default_4k_10MiB.ntfs.zst"),
        t.path(),
    );
    std::fs::read(p).unwrap()
}

struct Geometry {
    cs: usize,
    rs: usize,
    mft: usize,
    mirr: usize,
}

fn geometry(vol: &[u8]) -> Geometry {
    let b = ntfsclone::ntfs::BootSector::from_bytes(vol).unwrap();
    Geometry {
        cs: b.cluster_size as usize,
        rs: b.mft_record_size as usize,
        mft: b.mft_lcn as usize * b.cluster_size as usize,
        mirr: b.mftmirr_lcn as usize * b.cluster_size as usize,
    }
}

/// Seed records (as stored, with their update sequence) and their pieces.
fn record_seeds(vol: &[u8], g: &Geometry) -> Vec<Vec<u8>> {
    (0..40)
        .map(|i| vol[g.mft + i * g.rs..g.mft + (i + 1) * g.rs].to_vec())
        .filter(|r| &r[..4] == b"FILE")
        .collect()
}

/// Mapping pairs and attribute-list-like bytes found in the seed records.
fn pieces(records: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use ntfsclone::ntfs::attribute::{AttrIter, Form};
    let mut mps = Vec::new();
    let mut vals = Vec::new();
    for r in records {
        let mut r = r.clone();
        if ntfsclone::ntfs::mft_record::post_read_fixup(&mut r).is_err() {
            continue;
        }
        for a in AttrIter::new(&r).flatten() {
            match a.form {
                Form::NonResident {
                    lowest_vcn,
                    highest_vcn,
                    mapping_pairs,
                    allocated_size,
                    ..
                } => {
                    let mut v = lowest_vcn.to_le_bytes().to_vec();
                    v.extend_from_slice(&highest_vcn.to_le_bytes());
                    v.extend_from_slice(&((allocated_size + 4095) / 4096).to_le_bytes());
                    v.extend_from_slice(mapping_pairs);
                    mps.push(v);
                }
                Form::Resident { value, .. } => vals.push(value.to_vec()),
            }
        }
    }
    (mps, vals)
}

/// An attribute list with three entries, built by hand (type, length, name, vcn, reference).
fn attr_list_seed() -> Vec<u8> {
    let mut v = Vec::new();
    for (ty, vcn, rec) in [(0x10u32, 0u64, 5u64), (0x80, 0, 5), (0x80, 100, 17)] {
        let mut e = vec![0u8; 0x20];
        e[0..4].copy_from_slice(&ty.to_le_bytes());
        e[4..6].copy_from_slice(&0x20u16.to_le_bytes());
        e[6] = 0;
        e[7] = 0x1A;
        e[8..16].copy_from_slice(&vcn.to_le_bytes());
        e[16..24].copy_from_slice(&(rec | 1 << 48).to_le_bytes());
        v.extend_from_slice(&e);
    }
    v
}

/// Small images as the writer makes them (4 clusters of 512 bytes, a gap, a partial last one).
fn image_seeds() -> Vec<Vec<u8>> {
    use ntfsclone::dev::mem::MemDev;
    use ntfsclone::image::{Header, Writer};
    let mut out = Vec::new();
    for (dev, nr) in [(8 * 512 + 100, 8u64), (8 * 512, 8), (4 * 4096 + 4096, 4)] {
        let cs = if nr == 4 { 4096 } else { 512 };
        let h = Header::new(cs, dev, nr, 3);
        let mut w = Writer::new(MemDev::default(), &h, 0).unwrap();
        w.cluster(&vec![1; cs as usize]).unwrap();
        w.gap(2).unwrap();
        w.cluster(&vec![3; cs as usize]).unwrap();
        let last = h.record_size(nr).unwrap();
        if nr > 4 {
            w.gap(nr as i64 - 4).unwrap();
        }
        w.cluster(&vec![9; last]).unwrap();
        out.push(w.finish().unwrap().data);
    }
    out
}

#[test]
fn parsers_survive_mutated_input() {
    let t = TempDir::new("fuzz");
    let vol = baseline(&t);
    let g = geometry(&vol);
    let records = record_seeds(&vol, &g);
    assert!(records.len() >= 20, "only {} seed records", records.len());
    let (mps, vals) = pieces(&records);
    let mut fails = Vec::new();

    let boot = vec![vol[..512].to_vec()];
    fails.extend(fuzz(
        "boot_sector",
        &boot,
        40_000,
        false,
        &targets::boot_sector,
    ));

    let recs: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut v = vec![((g.rs / 512).trailing_zeros()) as u8];
            v.extend_from_slice(r);
            v
        })
        .collect();
    fails.extend(fuzz(
        "mft_record",
        &recs,
        40_000,
        false,
        &targets::mft_record,
    ));
    fails.extend(fuzz("runlist", &mps, 40_000, true, &targets::runlist));
    let mut lists = vals;
    lists.push(attr_list_seed());
    fails.extend(fuzz("attr_list", &lists, 20_000, true, &targets::attr_list));

    let imgs = image_seeds();
    let hdrs: Vec<Vec<u8>> = imgs.iter().map(|i| i[..56].to_vec()).collect();
    fails.extend(fuzz(
        "image_header",
        &hdrs,
        20_000,
        false,
        &targets::image_header,
    ));
    let streams: Vec<Vec<u8>> = imgs
        .iter()
        .flat_map(|i| (0..8u8).map(move |sel| [&[sel][..], i].concat()))
        .collect();
    fails.extend(fuzz(
        "image_stream",
        &streams,
        20_000,
        true,
        &targets::image_stream,
    ));

    // The volume regressions patch this volume at fixed places: $DATA (0x80) at 256 in $MFT
    // record 0 and in its $MFTMirr copy, 262144 bytes allocated; $DATA at 264 in record 33.
    let at = |o: usize, n: usize| &vol[o..o + n];
    assert_eq!((g.mft, g.mirr, g.rs), (853 * 4096, 2 * 4096, 1024));
    assert_eq!(at(g.mft + 256, 4), [0x80, 0, 0, 0]);
    assert_eq!(at(g.mirr + 256, 4), [0x80, 0, 0, 0]);
    assert_eq!(at(g.mft + 256 + 0x28, 8), 262_144u64.to_le_bytes());
    assert_eq!(at(g.mft + 33 * 1024 + 264, 4), [0x80, 0, 0, 0]);
    let regs = regressions();
    let mut ran = 0usize;
    for r in &regs {
        let e = match r {
            Regression::Bytes(name, target, input) => check(name, input, target),
            Regression::Volume(name, patches) => {
                check(name, patches, &|p| targets::volume(&vol, p))
            }
        };
        ran += 1;
        if let Some(e) = e {
            fails.push(format!("regression {e}"));
        }
    }
    assert!(
        ran >= MIN_REGRESSIONS,
        "only {ran} regression inputs ran (the table has {})",
        regs.len()
    );
    assert!(
        fails.is_empty(),
        "{} failure(s):\n{}",
        fails.len(),
        fails.join("\n")
    );
}

/// Whole-volume mutations of the baseline volume: the boot sector, and MFT records changed
/// in their fixed-up form and protected again (so that the changes reach the attribute and
/// runlist code instead of failing the fixup), mirrored into $MFTMirr for records 0-3.
#[test]
fn volume_scan_survives_mutated_metadata() {
    use ntfsclone::dev::mem::MemDev;
    use ntfsclone::ntfs::mft_record::{post_read_fixup, pre_write_fixup};
    let t = TempDir::new("fuzz-vol");
    let vol = baseline(&t);
    let g = geometry(&vol);
    let mut r = Rng(0xD1B5_4A32_D192_ED03);
    let mut dev = MemDev::new(vol.clone());
    let mut fails = Vec::new();
    let iters = 1500 * scale();
    for it in 0..iters {
        // Patch, remembering what to restore.
        let mut touched: Vec<(usize, usize)> = Vec::new();
        let kind = r.below(10);
        if kind == 0 {
            let mut b = dev.data[..512].to_vec();
            for _ in 0..1 + r.below(3) {
                mutate(&mut r, &mut b, 0, 512, false);
            }
            dev.data[..512].copy_from_slice(&b);
            touched.push((0, 512));
        } else {
            for _ in 0..1 + r.below(2) {
                let n = if r.below(3) == 0 {
                    r.below(4)
                } else {
                    r.below(40)
                };
                let off = g.mft + n * g.rs;
                let mut rec = dev.data[off..off + g.rs].to_vec();
                let fixed = post_read_fixup(&mut rec).is_ok();
                // Mostly the attribute area; sometimes the header or the raw record.
                let lo = if r.below(4) == 0 { 0 } else { 0x38 };
                for _ in 0..1 + r.below(4) {
                    mutate(&mut r, &mut rec, lo, g.rs, false);
                }
                if fixed && r.below(8) != 0 {
                    let _ = pre_write_fixup(&mut rec);
                }
                dev.data[off..off + g.rs].copy_from_slice(&rec);
                touched.push((off, g.rs));
                if n < 4 && r.below(4) != 0 {
                    let m = g.mirr + n * g.rs;
                    dev.data[m..m + g.rs].copy_from_slice(&rec);
                    touched.push((m, g.rs));
                }
            }
        }
        let snapshot: Vec<(usize, Vec<u8>)> = touched
            .iter()
            .map(|&(o, n)| (o, dev.data[o..o + n].to_vec()))
            .collect();
        if let Some(e) = check("volume", &[], &|_| targets::volume_dev(&dev)) {
            let patches: String = snapshot
                .iter()
                .map(|(o, b)| {
                    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    format!("\n  at {o}: {hex}")
                })
                .collect();
            fails.push(format!("iteration {it}: {e}{patches}"));
            if fails.len() >= 3 {
                break;
            }
        }
        for (o, n) in touched {
            dev.data[o..o + n].copy_from_slice(&vol[o..o + n]);
        }
        let _ = g.cs;
    }
    assert!(
        fails.is_empty(),
        "{} failure(s):\n{}",
        fails.len(),
        fails.join("\n")
    );
}

type Target = fn(&[u8]);

/// A regression input: one that crashed or hung a target (found by this run, by `make fuzz`
/// or by the robustness tests), or the same check approached from the other side.
enum Regression {
    /// Bytes for one of the byte-level targets.
    Bytes(&'static str, Target, Vec<u8>),
    /// Patches in the `targets::apply_patches` format, applied to the baseline volume
    /// (4 KiB clusters, 1 KiB records, $MFT at LCN 853, $MFTMirr at LCN 2) for `targets::volume`.
    Volume(&'static str, Vec<u8>),
}

/// The regression loop must run at least this many inputs (the table cannot silently empty).
const MIN_REGRESSIONS: usize = 121;

/// An image: the 56-byte version 10.1 header (`offset` is `offset_to_image_data`), then
/// `records` (see [`next`] and [`gap`]).
fn image(cs: u32, device: u64, nr: u64, inuse: u64, offset: u32, records: &[u8]) -> Vec<u8> {
    let mut v = b"\0ntfsclone-image".to_vec();
    v.extend_from_slice(&[10, 1]);
    v.extend_from_slice(&cs.to_le_bytes());
    v.extend_from_slice(&device.to_le_bytes());
    v.extend_from_slice(&nr.to_le_bytes());
    v.extend_from_slice(&inuse.to_le_bytes());
    v.extend_from_slice(&offset.to_le_bytes());
    v.resize(56, 0);
    v.extend_from_slice(records);
    v
}

/// A `CMD_NEXT` record: one cluster of `byte`.
fn next(cs: usize, byte: u8) -> Vec<u8> {
    [&[1u8][..], &vec![byte; cs]].concat()
}

/// A `CMD_GAP` record of `count` clusters.
fn gap(count: i64) -> Vec<u8> {
    [&[0u8][..], &count.to_le_bytes()].concat()
}

/// One `[offset le32][len u8][bytes]` patch (`targets::apply_patches`).
fn patch(off: u32, bytes: &[u8]) -> Vec<u8> {
    let mut v = off.to_le_bytes().to_vec();
    v.push(u8::try_from(bytes.len()).unwrap());
    v.extend_from_slice(bytes);
    v
}

/// The regression inputs, each for the target that takes it; each comment says what it checks.
/// Image inputs run under `image_header` and all eight `image_stream` variants (stdout or not,
/// seekable or not, buffered or not).
fn regressions() -> Vec<Regression> {
    use Regression::{Bytes, Volume};
    let mut v = Vec::new();

    // Runlist: the highest-VCN check against the allocated size (`alloc - 1`) must not
    // overflow for an allocated size of i64::MIN, nor for highest i64::MAX and allocated 0.
    let mut rl = 0i64.to_le_bytes().to_vec();
    rl.extend_from_slice(&15i64.to_le_bytes());
    rl.extend_from_slice(&i64::MIN.to_le_bytes());
    rl.extend_from_slice(&[0x11, 0x10, 0x20, 0x00]);
    v.push(Bytes(
        "runlist: allocated i64::MIN",
        targets::runlist as Target,
        rl,
    ));
    let mut rl = 0i64.to_le_bytes().to_vec();
    rl.extend_from_slice(&i64::MAX.to_le_bytes());
    rl.extend_from_slice(&0i64.to_le_bytes());
    rl.extend_from_slice(&[0x11, 0x10, 0x20, 0x00]);
    v.push(Bytes(
        "runlist: highest i64::MAX, allocated 0",
        targets::runlist,
        rl,
    ));

    // Image headers and streams.
    let c = 512usize;
    let one = next(c, 7);
    let images: Vec<(&'static str, Vec<u8>)> = vec![
        // A negative cluster count: refused as a corrupt header; `nr_clusters + 1` (the
        // position bound, restore's progress total) must not overflow on the way.
        (
            "nr_clusters u64::MAX",
            image(512, 4608, u64::MAX, 1, 56, &one),
        ),
        ("nr_clusters 2^63", image(512, 4608, 1 << 63, 1, 56, &one)),
        // `inuse + 1` (restore's progress) must not overflow.
        ("inuse u64::MAX", image(512, 4608, 8, u64::MAX, 56, &one)),
        // A claimed 2^40 clusters with a short stream: read without allocating for them.
        (
            "nr_clusters 2^40",
            image(4096, 1 << 52, 1 << 40, 1, 56, &next(4096, 1)),
        ),
        // offset_to_image_data skips as a signed 32-bit `offset - 50` (2^31 - 1 bytes here,
        // nothing for the next one) past the end of a short input.
        (
            "offset 2^31 + 49",
            image(512, 4608, 8, 1, 0x8000_0031, &one),
        ),
        (
            "offset 2^31 + 50",
            image(512, 4608, 8, 1, 0x8000_0032, &one),
        ),
        ("offset u32::MAX", image(512, 4608, 8, 1, u32::MAX, &one)),
        // Gaps past the end of the volume: the position stays at most nr_clusters + 1 on
        // stdout, a far gap is not taken as zeros without bound, a negative one does not wrap
        // the position.
        (
            "gap past the end",
            image(512, 4608, 8, 1, 56, &[one.clone(), gap(20)].concat()),
        ),
        (
            "gap 2^50",
            image(512, 4608, 8, 1, 56, &[one.clone(), gap(1 << 50)].concat()),
        ),
        (
            "gap 2^60",
            image(512, 4608, 8, 1, 56, &[one.clone(), gap(1 << 60)].concat()),
        ),
        (
            "gap i64::MIN",
            image(512, 4608, 8, 1, 56, &[one.clone(), gap(i64::MIN)].concat()),
        ),
        (
            "gap -1",
            image(512, 4608, 8, 1, 56, &[one.clone(), gap(-1)].concat()),
        ),
        (
            "gap after the end, then records",
            image(512, 4608, 8, 1, 56, &[gap(9), one.clone(), gap(3)].concat()),
        ),
    ];
    for (name, img) in images {
        v.push(Bytes(name, targets::image_header, img.clone()));
        for sel in 0..8u8 {
            v.push(Bytes(
                name,
                targets::image_stream,
                [&[sel][..], &img].concat(),
            ));
        }
    }

    // Whole volumes. $MFT's $DATA (record 0, attribute at 256) claiming 2^40 bytes allocated,
    // in size and initialized: refused (the runs must cover the allocated size), never a walk
    // through 2^28 records that do not exist. Patched in $MFT and in $MFTMirr.
    let huge = [(1u64 << 40).to_le_bytes(); 3].concat();
    let (mft, mirr) = (853 * 4096u32, 2 * 4096u32);
    v.push(Volume(
        "volume: $MFT claims 2^40 bytes",
        [
            patch(mft + 256 + 0x28, &huge),
            patch(mirr + 256 + 0x28, &huge),
        ]
        .concat(),
    ));
    // A run of record 33's $DATA (mapping pairs at 328) at LCN 65536, outside the 2559-cluster
    // volume (the reference overruns its bitmap here).
    v.push(Volume(
        "volume: run outside the volume",
        patch(mft + 33 * 1024 + 328, &[0x31, 0x10, 0, 0, 1, 0, 0, 0]),
    ));
    v
}

/// Runs a shell command in `dir`; fails the test with its output if it fails.
fn sh(dir: &std::path::Path, script: &str) {
    let out = crate::common::run(
        std::process::Command::new("bash")
            .arg("-euc")
            .arg(script)
            .current_dir(dir),
    );
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Small disks made by sfdisk (64 KiB: a GPT with two partitions, a DOS label with a logical
/// partition chain), FAT12/16/32 boot areas made by mkfs.vfat (the first 64 KiB), and disk
/// images written by the library from the GPT disk.
/// Seeds of the disk targets: (partition tables, FAT starts, disk images).
type DiskSeeds = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<Vec<u8>>);

fn disk_seeds(t: &TempDir) -> DiskSeeds {
    crate::common::require("sfdisk");
    crate::common::require("mkfs.vfat");
    sh(
        t.path(),
        "truncate -s 64K g.img d.img
         printf 'label: gpt\\nfirst-lba: 34\\nstart=34,size=20,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\nstart=54,size=30\\n' | sfdisk -q g.img
         printf 'label: dos\\nstart=1,size=20,type=7\\nstart=21,size=60,type=5\\nstart=23,size=10,type=83\\nstart=35,size=10,type=7\\n' | sfdisk -q d.img
         mkfs.vfat -C f12.img 64 >/dev/null
         echo hello > hello.txt
         MTOOLS_SKIP_CHECK=1 mcopy -i f12.img hello.txt ::/
         mkfs.vfat -F 16 -s 1 -C f16.img 8192 >/dev/null
         mkfs.vfat -F 32 -s 1 -C f32.img 40960 >/dev/null",
    );
    let read = |n: &str| std::fs::read(t.join(n)).unwrap();
    let (g, d) = (read("g.img"), read("d.img"));
    let tables: Vec<Vec<u8>> = (0..4u8)
        .flat_map(|sel| [[&[sel][..], &g].concat(), [&[sel][..], &d].concat()])
        .collect();
    let fats: Vec<Vec<u8>> = ["f12.img", "f16.img", "f32.img"]
        .iter()
        .map(|n| read(n).into_iter().take(64 << 10).collect())
        .collect();
    let images = disk_image_seeds(&g);
    (tables, fats, images)
}

/// Disk images of the 64 KiB GPT disk `g`: partition 1 as an NTFS special image, partition 2
/// as FAT and as raw extents; with and without a trailer. The first byte selects checksums.
fn disk_image_seeds(g: &[u8]) -> Vec<Vec<u8>> {
    use ntfsclone::dev::mem::MemDev;
    use ntfsclone::dev::WriteStream;
    use ntfsclone::disk::image::{DiskHeader, SectionKind, Writer};
    use ntfsclone::disk::Layout;
    let layout = Layout::read(&MemDev::new(g.to_vec()), g.len() as u64, 512).unwrap();
    let special = &image_seeds()[1];
    let mut out = Vec::new();
    for (second, trailer) in [(SectionKind::Fat, true), (SectionKind::Raw, false)] {
        let h = DiskHeader::new(&layout, &[SectionKind::Ntfs, second], trailer);
        let mut w = Writer::new(MemDev::default(), h).unwrap();
        for a in &layout.areas {
            w.areas(&g[a.offset as usize..(a.offset + a.len) as usize])
                .unwrap();
        }
        w.begin_section(512).unwrap();
        w.write_all(special).unwrap();
        w.begin_section(1024).unwrap();
        w.extent(512, &[5; 512]).unwrap();
        w.extent(4096, &[6; 512]).unwrap();
        w.end_extents().unwrap();
        let img = w.finish().unwrap().data;
        for sel in 0..2u8 {
            out.push([&[sel][..], &img].concat());
        }
    }
    out
}

#[test]
fn disk_parsers_survive_mutated_input() {
    let t = TempDir::new("fuzz-disk");
    let (tables, fats, images) = disk_seeds(&t);
    // The seeds themselves parse (a target that refuses them tests nothing).
    for s in &tables {
        let size = (s.len() - 1) as u64;
        let ss = if s[0] & 2 != 0 { 4096 } else { 512 };
        let dev = ntfsclone::dev::mem::MemDev::new(s[1..].to_vec());
        if ss == 512 {
            let l = ntfsclone::disk::Layout::read(&dev, size, ss).unwrap();
            assert!(l.partitions.len() >= 2);
        }
    }
    for f in &fats {
        ntfsclone::disk::fat::Fat::parse(f, u64::MAX).unwrap();
    }
    let mut fails = Vec::new();
    fails.extend(fuzz(
        "partition_table",
        &tables,
        10_000,
        false,
        &targets::partition_table,
    ));
    fails.extend(fuzz("fat", &fats, 10_000, false, &targets::fat));
    fails.extend(fuzz(
        "disk_image",
        &images,
        10_000,
        true,
        &targets::disk_image,
    ));
    assert!(
        fails.is_empty(),
        "{} failure(s):\n{}",
        fails.len(),
        fails.join("\n")
    );
}
