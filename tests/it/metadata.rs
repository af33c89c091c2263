//! Metadata mode (`-m`, `-m -s`): one definition of the result, the real `ntfsclone -m -s`
//! followed by the real `ntfsclone -r`. Our direct `-m -o` clone, the real `-r` of our `-m -s`
//! image and our `-r` of it must all be byte-identical to that; our image and our console
//! output are also compared with the reference's (they are identical today).
use crate::cmd::s;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn same(a: &Path, b: &Path, what: &str) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    if x != y {
        let first = x.iter().zip(&y).position(|(p, q)| p != q);
        panic!(
            "{what}: {a:?} ({} bytes) and {b:?} ({} bytes) differ, first at byte {first:?}",
            x.len(),
            y.len()
        );
    }
}

fn ok(o: &std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs every comparison on `vol` with the extra options `args` (e.g. `-t`).
fn compare(vol: &Path, dir: &Path, args: &[&str]) {
    compare_with(vol, dir, args, true)
}

/// As [`compare`]; `check_stdout` false compares the bytes only.
fn compare_with(vol: &Path, dir: &Path, args: &[&str], check_stdout: bool) {
    let p = |n: &str| dir.join(n);
    let with = |first: Vec<&'static str>, last: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
        a.extend(first.into_iter().map(String::from));
        a.extend(last.iter().map(|x| x.to_string()));
        a
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(|x| x.as_str()).collect()
    }

    let ref_img = p("ref.mimg");
    let a = with(vec!["-m", "-s", "-o"], &[s(&ref_img), s(vol)]);
    let ref_out = run_ref(&strs(&a));
    ok(&ref_out, "real -m -s");
    ok(
        &run_ref(&["-r", "-o", s(&p("ref.r")), s(&ref_img)]),
        "real -r",
    );

    let our_img = p("our.mimg");
    let a = with(vec!["-m", "-s", "-o"], &[s(&our_img), s(vol)]);
    let our_out = run_ours(&strs(&a));
    ok(&our_out, "our -m -s");
    let a = with(vec!["-m", "-o"], &[s(&p("our.m")), s(vol)]);
    ok(&run_ours(&strs(&a)), "our -m");
    ok(
        &run_ref(&["-r", "-o", s(&p("our.rr")), s(&our_img)]),
        "real -r of ours",
    );
    ok(
        &run_ours(&["-r", "-o", s(&p("our.ro")), s(&our_img)]),
        "our -r of ours",
    );

    let tag = format!("{vol:?} {args:?}");
    same(&p("ref.r"), &p("our.m"), &format!("{tag}: -m clone"));
    same(
        &p("ref.r"),
        &p("our.rr"),
        &format!("{tag}: real -r of our image"),
    );
    same(
        &p("ref.r"),
        &p("our.ro"),
        &format!("{tag}: our -r of our image"),
    );
    same(&ref_img, &our_img, &format!("{tag}: image"));
    assert!(
        !check_stdout
            || String::from_utf8_lossy(&our_out.stdout) == String::from_utf8_lossy(&ref_out.stdout),
        "{tag}: stdout of -m -s:\n{}\nreference:\n{}",
        String::from_utf8_lossy(&our_out.stdout),
        String::from_utf8_lossy(&ref_out.stdout)
    );
    for f in ["ref.mimg", "ref.r", "our.mimg", "our.m", "our.rr", "our.ro"] {
        let _ = std::fs::remove_file(p(f));
    }
}

/// Mounts `vol` with ntfs-3g, runs `f` on the mount point, unmounts (always).
fn with_mount(vol: &Path, dir: &Path, f: impl FnOnce(&Path)) {
    let m = Mount::ntfs3g(vol, &dir.join("mnt"), &[]);
    f(&m.mnt);
    m.unmount();
}

/// A volume whose directories keep stale INDX blocks (many files created, most deleted),
/// with resident files and a resident stream.
fn stale_volume(dir: &Path, name: &str, size: u64, cluster: u32) -> PathBuf {
    let spec = VolSpec {
        cluster: Some(cluster),
        ..VolSpec::empty(size)
    };
    let vol = mkvol(dir, name, &spec);
    with_mount(&vol, dir, |m| {
        let d = m.join("d");
        std::fs::create_dir(&d).unwrap();
        for i in 0..800 {
            std::fs::write(
                d.join(format!("a-long-name-for-index-blocks-{i}")),
                format!("x{i}"),
            )
            .unwrap();
        }
        for i in 0..800 {
            if i % 10 != 0 {
                std::fs::remove_file(d.join(format!("a-long-name-for-index-blocks-{i}"))).unwrap();
            }
        }
        std::fs::write(m.join("small.txt"), "secret resident data").unwrap();
        std::fs::write(m.join("small.txt:ads"), "secret stream").unwrap();
    });
    vol
}

/// Runs `jobs` on two threads (the test machines have two cores).
fn parallel(jobs: Vec<Box<dyn FnOnce() + Send>>) {
    let jobs = std::sync::Mutex::new(jobs);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| loop {
                    let Some(job) = jobs.lock().unwrap().pop() else {
                        break;
                    };
                    job();
                })
            })
            .collect();
        for h in hs {
            h.join().expect("a volume failed (see above)");
        }
    });
}

#[test]
fn generated_volumes_match_real_metadata_image_and_restore() {
    require("ntfsclone");
    let mkvol = root().join("tests/mkvol.sh");
    // (device size, cluster, sector, extra options)
    let cases: &[(&str, u32, u32, &[&str])] = &[
        ("32M", 512, 512, &[]),
        ("64M", 4096, 512, &["--full-logfile"]),
        ("128M", 65536, 512, &[]),
        ("64M", 4096, 4096, &["-t"]),
    ];
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for &(size, cl, sec, args) in cases {
        let mkvol = mkvol.clone();
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-gen");
            let vol = t.join("v.img");
            let st = run(Command::new("bash").arg(&mkvol).arg(&vol).args([
                size,
                &cl.to_string(),
                &sec.to_string(),
                "full",
            ]));
            assert!(
                st.status.success(),
                "mkvol: {}",
                String::from_utf8_lossy(&st.stderr)
            );
            compare(&vol, t.path(), &[]);
            compare(&vol, t.path(), args);
        }));
    }
    for (size, cl) in [(32u64 << 20, 4096u32), (32 << 20, 512)] {
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-stale");
            let vol = stale_volume(t.path(), "v.img", size, cl);
            compare(&vol, t.path(), &[]);
            compare(&vol, t.path(), &["-t"]);
            // Our restore refuses stdout for such an image, like the reference.
            let img = t.join("i");
            ok(&run_ours(&["-m", "-s", "-o", s(&img), s(&vol)]), "-m -s");
            let o = run_ours(&["-r", "-o", "-", s(&img)]);
            assert!(!o.status.success());
        }));
    }
    parallel(jobs);
}

#[test]
fn windows_volumes_match_real_metadata_image_and_restore() {
    require("ntfsclone");
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    let vols: Vec<PathBuf> = testdata_volumes("windows")
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("INVALID"))
        .collect();
    let mut n = 0;
    for zst in vols {
        // Apparent sizes are in the names; at most about 1 GiB.
        let name = zst.file_name().unwrap().to_string_lossy().to_string();
        let small = ["MiB", "KiB"].iter().any(|u| name.contains(u)) || name.contains("_1GiB");
        if !small {
            continue;
        }
        n += 1;
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-win");
            let vol = unzstd(&zst, t.path());
            compare(&vol, t.path(), &[]);
        }));
    }
    assert!(n >= 15, "expected the small Windows volumes, found {n}");
    parallel(jobs);
}

#[test]
fn new_serial_is_set_not_zeroed() {
    // The reference writes serial 0 with -m --new-serial (quirk b); we write a new one.
    let t = TempDir::new("meta-serial");
    let vol = stale_volume(t.path(), "v.img", 16 << 20, 4096);
    let out = t.join("m");
    let o = run_ours(&["-m", "--new-serial", "-o", s(&out), s(&vol)]);
    ok(&o, "-m --new-serial");
    assert!(String::from_utf8_lossy(&o.stdout).contains("New serial number      : 0x"));
    let a = std::fs::read(&out).unwrap();
    let serial = &a[0x48..0x50];
    assert_ne!(serial, &[0u8; 8], "serial must not be 0");
    assert_ne!(
        serial,
        &std::fs::read(&vol).unwrap()[0x48..0x50],
        "serial must change"
    );
    let backup = &a[a.len() - 512 + 0x48..a.len() - 512 + 0x50];
    assert_eq!(serial, backup, "backup boot sector gets the same serial");
}

/// Edits a volume for the cases below (the Python text is embedded so that the test needs no
/// other file): moves `$LogFile` clusters, sets or clears `$Bitmap` bits, tears MFT records
/// and INDX blocks (a stride that does not end with the update sequence number).
const EDIT_PY: &str = r#"# Edits an NTFS volume for the metadata tests (run by tests/it/metadata.rs):
#   frag VOL VCN:LEN ...     move $LogFile clusters VCN..VCN+LEN to the lowest free clusters
#   extra VOL N              set N free clusters in $Bitmap (from the middle of the volume on)
#   missing VOL PATH_INODE   clear the first data cluster of inode PATH_INODE in $Bitmap
#   torn VOL INODE STRIDE    zero the last two bytes of stride STRIDE of MFT record INODE
#   torn-indx VOL INODE BLOCK  the same for stride 1 of INDX block BLOCK of INODE's $I30
#   poke VOL INODE OFF HEX   write bytes at OFF of MFT record INODE (as stored)
#   poke-indx VOL INODE BLOCK OFF HEX  the same in INDX block BLOCK of INODE's $I30
import struct, sys

def le(b, o, n):
    return int.from_bytes(b[o:o+n], 'little')

def fixup(r, sec):
    ofs, cnt = le(r, 4, 2), le(r, 6, 2)
    for i in range(1, cnt):
        e = i*sec-2
        assert r[e:e+2] == r[ofs:ofs+2], 'torn record'
        r[e:e+2] = r[ofs+2*i:ofs+2*i+2]

def protect(r, sec):
    ofs, cnt = le(r, 4, 2), le(r, 6, 2)
    for i in range(1, cnt):
        e = i*sec-2
        r[ofs+2*i:ofs+2*i+2] = r[e:e+2]
        r[e:e+2] = r[ofs:ofs+2]

def decode(mp):
    runs, p, vcn, lcn = [], 0, 0, 0
    while mp[p]:
        nl, nd = mp[p] & 15, mp[p] >> 4; p += 1
        ln = int.from_bytes(mp[p:p+nl], 'little', signed=True); p += nl
        if nd:
            lcn += int.from_bytes(mp[p:p+nd], 'little', signed=True); p += nd
            runs.append((vcn, ln, lcn))
        vcn += ln
    return runs

def sbytes(v):
    n = 1
    while not -(1 << (8*n-1)) <= v < (1 << (8*n-1)):
        n += 1
    return v.to_bytes(n, 'little', signed=True)

def encode(runs):
    out, prev = bytearray(), 0
    for vcn, ln, lcn in runs:
        lb, db = sbytes(ln), sbytes(lcn - prev); prev = lcn
        out += bytes([len(db) << 4 | len(lb)]) + lb + db
    return out + b'\0'

cmd, vol = sys.argv[1], sys.argv[2]
f = open(vol, 'r+b')
boot = f.read(512)
bps, spc = le(boot, 0x0b, 2), boot[0x0d]
if spc > 0x80:
    spc = 1 << (256 - spc)
cs = bps*spc
mft_lcn, mirr_lcn = le(boot, 0x30, 8), le(boot, 0x38, 8)
cpr = struct.unpack_from('<b', boot, 0x40)[0]
rs = cpr*cs if cpr > 0 else 1 << -cpr

def rec_at(runs, n):
    byte = n*rs
    for vcn, ln, lcn in runs:
        if vcn*cs <= byte < (vcn+ln)*cs:
            return lcn*cs + byte - vcn*cs

def attr(r, ty):
    p = le(r, 0x14, 2)
    while le(r, p, 4) != 0xffffffff:
        if le(r, p, 4) == ty:
            return p
        p += le(r, p+4, 4)

def runs_of(r, ty):
    p = attr(r, ty)
    return decode(r[p+le(r, p+0x20, 2):])

f.seek(mft_lcn*cs); r0 = bytearray(f.read(rs)); fixup(r0, bps)
mft_runs = runs_of(r0, 0x80)

def rdrec(n):
    f.seek(rec_at(mft_runs, n)); r = bytearray(f.read(rs)); fixup(r, bps); return r

b = rdrec(6); p = attr(b, 0x80)
bruns, bsize = runs_of(b, 0x80), le(b, p+0x30, 8)
bm = bytearray()
for vcn, ln, lcn in bruns:
    f.seek(lcn*cs); bm += f.read(ln*cs)
nr = le(boot, 0x28, 8)*bps//cs
isset = lambda c: bm[c >> 3] >> (c & 7) & 1
def setb(c, v):
    bm[c >> 3] = bm[c >> 3] | 1 << (c & 7) if v else bm[c >> 3] & ~(1 << (c & 7)) & 255

if cmd == 'frag':
    r = rdrec(2); p = attr(r, 0x80); mpo = le(r, p+0x20, 2)
    m = []
    for vcn, ln, lcn in runs_of(r, 0x80):
        m += [lcn + i for i in range(ln)]
    for piece in sys.argv[3:]:
        v, n = map(int, piece.split(':'))
        l = 0
        while any(isset(l+i) for i in range(n)):
            l += 1
        for i in range(n):
            f.seek(m[v+i]*cs); d = f.read(cs); f.seek((l+i)*cs); f.write(d)
            setb(m[v+i], 0); setb(l+i, 1); m[v+i] = l+i
    new_runs = []
    for v, l in enumerate(m):
        if new_runs and new_runs[-1][2] + new_runs[-1][1] == l:
            new_runs[-1] = (new_runs[-1][0], new_runs[-1][1]+1, new_runs[-1][2])
        else:
            new_runs.append((v, 1, l))
    mp = encode(new_runs)
    newlen = (mpo + len(mp) + 7) & ~7
    blk = r[p:p+mpo] + mp + bytes(newlen - mpo - len(mp))
    struct.pack_into('<I', blk, 4, newlen)
    new = r[:p] + blk + r[p+le(r, p+4, 4):le(r, 0x18, 4)]
    used = len(new)
    assert used <= le(r, 0x1c, 4)
    new += bytes(rs - used)
    struct.pack_into('<I', new, 0x18, used)
    protect(new, bps)
    f.seek(rec_at(mft_runs, 2)); f.write(new)
    f.seek(mirr_lcn*cs + 2*rs); f.write(new)
elif cmd == 'extra':
    c = nr // 2
    for _ in range(int(sys.argv[3])):
        while isset(c):
            c += 1
        setb(c, 1); c += 3
elif cmd == 'missing':
    setb(runs_of(rdrec(int(sys.argv[3])), 0x80)[0][2], 0)
elif cmd == 'torn':
    f.seek(rec_at(mft_runs, int(sys.argv[3])) + (int(sys.argv[4])+1)*bps - 2); f.write(b'\xee\xee')
elif cmd == 'poke':
    f.seek(rec_at(mft_runs, int(sys.argv[3])) + int(sys.argv[4])); f.write(bytes.fromhex(sys.argv[5]))
elif cmd in ('torn-indx', 'poke-indx'):
    r = rdrec(int(sys.argv[3])); p = attr(r, 0x90)
    bs = le(r, p + le(r, p+0x14, 2) + 8, 4)
    vcn_byte = int(sys.argv[4]) * bs
    off, data = (2*bps - 2, b'\xee\xee') if cmd == 'torn-indx' else (int(sys.argv[5]), bytes.fromhex(sys.argv[6]))
    for vcn, ln, lcn in runs_of(r, 0xA0):
        if vcn*cs <= vcn_byte < (vcn+ln)*cs:
            f.seek(lcn*cs + vcn_byte - vcn*cs + off); f.write(data)
if cmd in ('frag', 'extra', 'missing'):
    off = 0
    for vcn, ln, lcn in bruns:
        f.seek(lcn*cs); f.write(bm[off:off+ln*cs]); off += ln*cs
f.close()
"#;

fn edit(vol: &Path, args: &[&str]) {
    let o = run(Command::new(require("python3"))
        .arg("-c")
        .arg(EDIT_PY)
        .args(args.iter().take(1))
        .arg(vol)
        .args(args.iter().skip(1)));
    ok(&o, &format!("edit {args:?}"));
}

/// A fresh mkvol.sh volume (`basic`: small.txt = inode 64, file300k.bin = 65, dir200 = 66).
fn basic_volume(vol: &Path, size: &str, cluster: u32) {
    let st = run(Command::new("bash")
        .arg(root().join("tests/mkvol.sh"))
        .arg(vol)
        .args([size, &cluster.to_string(), "512", "basic"]));
    ok(&st, "mkvol");
}

/// The inode number ntfsinfo gives for `path`.
fn inode_of(vol: &Path, path: &str) -> String {
    let o = run(Command::new(require("ntfsinfo"))
        .arg("-F")
        .arg(path)
        .arg(vol));
    ok(&o, "ntfsinfo");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let n = text
        .split_whitespace()
        .skip_while(|w| *w != "Inode")
        .nth(1)
        .unwrap_or_else(|| panic!("no inode for {path} in {text}"));
    n.to_string()
}

#[test]
fn fragmented_logfile_matches_real() {
    require("ntfsclone");
    // (size, cluster, $LogFile pieces moved to the lowest free clusters): samples and the
    // 16 KiB head split over runs, runs shorter than the head (the reference counts every run
    // of $LogFile as long as its first one, capped at the head, in the header's inuse).
    let cases: &[(&str, u32, &[&str])] = &[
        ("64M", 4096, &["2:1", "64:1", "256:2"]),
        ("64M", 4096, &["0:1", "300:1"]),
        (
            "32M",
            512,
            &["1:1", "10:5", "20:11", "31:2", "2048:1", "4000:96"],
        ),
        ("48M", 65536, &["1:1", "4:2", "16:1"]),
    ];
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for &(size, cl, pieces) in cases {
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-logfile");
            let vol = t.join("v.img");
            basic_volume(&vol, size, cl);
            let mut args = vec!["frag"];
            args.extend_from_slice(pieces);
            edit(&vol, &args);
            compare(&vol, t.path(), &[]);
            compare(&vol, t.path(), &["--full-logfile"]);
        }));
    }
    parallel(jobs);
}

#[test]
fn ignore_fs_check_matches_real() {
    require("ntfsclone");
    let t = TempDir::new("meta-fscheck");
    let vol = t.join("v.img");
    basic_volume(&vol, "32M", 4096);
    // Consistent: the image still rewinds to 0 before the backup boot sector.
    compare(&vol, t.path(), &["--ignore-fs-check"]);
    // Missing and extra clusters (more than the 10 printed), printed twice by -m -s.
    edit(&vol, &["missing", "65"]);
    edit(&vol, &["extra", "12"]);
    let o = run_ref(&["-m", "-s", "-o", s(&t.join("x")), s(&vol)]);
    assert!(
        !o.status.success(),
        "the check must fail without the option"
    );
    let o = run_ours(&["-m", "-s", "-o", s(&t.join("y")), s(&vol)]);
    assert!(
        !o.status.success(),
        "our check must fail without the option"
    );
    compare(&vol, t.path(), &["--ignore-fs-check"]);
    compare(&vol, t.path(), &["--ignore-fs-check", "-t"]);
}

#[test]
fn torn_records_and_index_blocks_match_real() {
    require("ntfsclone");
    let t = TempDir::new("meta-torn");
    let vol = stale_volume(t.path(), "v.img", 32 << 20, 4096);
    // Broken update sequence arrays (a wrong count, an odd offset): wiped as stored, USN
    // decremented. The bytes match; the statistics do not: the reference's walk reads such
    // records as in use, our walk (post_read_fixup in ntfs/mft_record.rs) skips them.
    let t2 = TempDir::new("meta-badusa");
    let vol2 = t2.join("v.img");
    std::fs::copy(&vol, &vol2).unwrap();
    let a = inode_of(&vol2, "/d/a-long-name-for-index-blocks-10");
    let b = inode_of(&vol2, "/d/a-long-name-for-index-blocks-20");
    edit(&vol2, &["poke", &a, "6", "0400"]);
    edit(&vol2, &["poke", &b, "4", "2f00"]);
    compare_with(&vol2, t2.path(), &[], false);
    drop(t2);
    let file = inode_of(&vol, "/small.txt");
    let dir = inode_of(&vol, "/d");
    // An in-use record torn in its second stride, two INDX blocks of a directory torn (the
    // reference's walk stops counting a directory's blocks at the first damaged one).
    edit(&vol, &["torn", &file, "1"]);
    edit(&vol, &["torn-indx", &dir, "0"]);
    edit(&vol, &["torn-indx", &dir, "2"]);
    // And one with a broken update sequence array (count 0): left as it is, other message.
    edit(&vol, &["poke-indx", &dir, "1", "6", "0000"]);
    compare(&vol, t.path(), &[]);
    compare(&vol, t.path(), &["-t"]);
    // The torn record is marked BAAD and its resident data is wiped all the same.
    let img = t.join("m");
    ok(&run_ours(&["-m", "-o", s(&img), s(&vol)]), "-m");
    let out = std::fs::read(&img).unwrap();
    assert!(
        !out.windows(13).any(|w| w == b"secret stream"),
        "resident data of the torn record must be wiped"
    );
}

/// Files that the `full` profile does not make, set through ntfs-3g's extended attributes:
/// compressed files (a directory with the compressed attribute, mounted with `compression`),
/// a reparse point with a non-Microsoft tag, object ids (enough for a non-resident `$O`
/// index of `$Extend\$ObjId`), resident and non-resident `$EA`.
const SPECIAL_PY: &str = r#"
import os, struct, sys
m = sys.argv[1]
os.mkdir(m + '/c')
os.setxattr(m + '/c', 'system.ntfs_attrib_be', struct.pack('>I', 0x800))
open(m + '/c/comp.txt', 'w').write(''.join('line %d compressible text\n' % i for i in range(3000)))
open(m + '/c/comp2.bin', 'wb').write(b'aaaaaaaabbbbbbbb' * 20000)
open(m + '/c/rand.bin', 'wb').write(os.urandom(100000))
# NTFS compresses only with clusters up to 4 KiB.
if sys.argv[2] == '1':
    assert os.getxattr(m + '/c/comp2.bin', 'system.ntfs_attrib_be')[2] & 0x08, 'not compressed'
open(m + '/rp', 'w').close()
data = b'R' * 100
os.setxattr(m + '/rp', 'system.ntfs_reparse_data', struct.pack('<IHH', 0x80000077, len(data), 0) + data)
os.mkdir(m + '/objs')
for i in range(120):
    p = m + '/objs/o%d' % i
    open(p, 'w').close()
    os.setxattr(p, 'system.ntfs_object_id', struct.pack('<QQ', i + 1, 0x1234) + bytes(48))
def ea(name, value):
    e = struct.pack('<IBBH', 0, 0, len(name), len(value)) + name + b'\0' + value
    e += bytes(-len(e) % 4)
    return struct.pack('<I', len(e)) + e[4:]
for n, size in (('ea', 20), ('bigea', 3000)):
    p = m + '/' + n
    open(p, 'w').close()
    os.setxattr(p, 'system.ntfs_ea', ea(b'TEST', b'v' * size))
"#;

#[test]
fn special_files_match_real() {
    require("ntfsclone");
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for (size, cl, sec) in [
        (64u64 << 20, 4096u32, 512u32),
        (32 << 20, 512, 512),
        (128 << 20, 65536, 4096),
    ] {
        jobs.push(Box::new(move || {
            let t = TempDir::new("meta-special");
            let spec = VolSpec {
                cluster: Some(cl),
                sector: sec,
                ..VolSpec::empty(size)
            };
            let vol = mkvol(t.path(), "v.img", &spec);
            let m = Mount::ntfs3g(&vol, &t.join("mnt"), &["compression"]);
            let o = run(Command::new(require("python3"))
                .arg("-c")
                .arg(SPECIAL_PY)
                .arg(&m.mnt)
                .arg(if cl <= 4096 { "1" } else { "0" }));
            // Unmounted (ntfs-3g has written everything and exited) before the comparison.
            m.unmount();
            ok(&o, "special files");
            compare(&vol, t.path(), &[]);
            compare(&vol, t.path(), &["-t"]);
        }));
    }
    parallel(jobs);
}

/// Our `-m -s` image and its messages against the reference's, nothing restored (for large
/// sparse volumes).
fn compare_images(vol: &Path, dir: &Path, args: &[&str]) {
    let (r, o) = (dir.join("ref.mimg"), dir.join("our.mimg"));
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-m", "-s", "-o"]);
    let ra = [a.as_slice(), &[s(&r), s(vol)]].concat();
    let oa = [a.as_slice(), &[s(&o), s(vol)]].concat();
    let ref_out = run_ref(&ra);
    ok(&ref_out, "real -m -s");
    let our_out = run_ours(&oa);
    ok(&our_out, "our -m -s");
    let tag = format!("{vol:?} {args:?}");
    same(&r, &o, &format!("{tag}: image"));
    assert_eq!(
        String::from_utf8_lossy(&our_out.stdout),
        String::from_utf8_lossy(&ref_out.stdout),
        "{tag}: stdout of -m -s"
    );
    let _ = std::fs::remove_file(r);
    let _ = std::fs::remove_file(o);
}

#[test]
fn corrupted_volumes_match_real() {
    require("ntfsclone");
    // A directory without $INDEX_ROOT, and an $INDEX_ALLOCATION larger than allocated: the
    // reference's walk reports them and counts nothing of them (not with -t); its copy wipes.
    // Clusters referenced twice: with --ignore-fs-check reported by both walks.
    let cases: [(&str, &[&str]); 3] = [
        ("dir-missing-index-root_4k_16GiB.ntfs.zst", &[]),
        (
            "index-alloc-data-init-size-gt-alloc-size_4k_30GiB.ntfs.zst",
            &[],
        ),
        (
            "mft-parent-ref-corrupted-cluster-dup_4k_30GiB.ntfs.zst",
            &["--ignore-fs-check"],
        ),
    ];
    let jobs: Vec<Box<dyn FnOnce() + Send>> = cases
        .iter()
        .map(|&(name, args)| {
            let zst = testdata().join("corrupted").join(name);
            Box::new(move || {
                assert!(zst.exists(), "missing test volume {zst:?}");
                let t = TempDir::new("meta-corrupted");
                let vol = unzstd(&zst, t.path());
                compare_images(&vol, t.path(), args);
                if args.is_empty() {
                    compare_images(&vol, t.path(), &["-t"]);
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    parallel(jobs);
}

/// A volume whose $BadClus cannot be opened (record 8 not in use): like `-s`, the reference's
/// `-m` and `-m -s` print `Space in use`, then fail opening it; so do we.
#[test]
fn metadata_mode_refuses_an_unopenable_badclus_like_the_reference() {
    let t = TempDir::new("meta-badclus");
    let base = testdata()
        .join("corrupted")
        .join("baseline-uncorrupted-ntfs-default_4k_10MiB.ntfs.zst");
    let vol = unzstd(&base, t.path());
    let mut d = std::fs::read(&vol).unwrap();
    // $MFT at LCN 853, 4 KiB clusters, 1 KiB records: record 8's flags at 0x16.
    let rec = 853 * 4096 + 8 * 1024;
    assert_eq!(&d[rec..rec + 4], b"FILE");
    d[rec + 0x16..rec + 0x18].copy_from_slice(&[0, 0]);
    std::fs::write(&vol, &d).unwrap();
    let last_error = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .rfind(|l| l.starts_with("ERROR"))
            .map(str::to_string)
    };
    for mode in [&["-m", "-s"][..], &["-m"][..]] {
        let (a, b) = (t.join("ref.out"), t.join("ours.out"));
        let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
        let r = run_ref(&[mode, &["-o", s(&a), s(&vol)]].concat());
        let o = run_ours(&[mode, &["-o", s(&b), s(&vol)]].concat());
        assert_eq!(
            r.status.code(),
            Some(1),
            "{mode:?}: the reference accepted it"
        );
        assert_eq!(o.status.code(), Some(1), "{mode:?}: {:?}", last_error(&o));
        assert_eq!(last_error(&o), last_error(&r), "{mode:?}");
        assert_eq!(
            last_error(&o).as_deref(),
            Some("ERROR(2): ntfs_open_inode: No such file or directory")
        );
    }
}
