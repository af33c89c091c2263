//! The NTFS reader and the used-cluster map against the reference, at library level: on
//! mkntfs-made volumes our `used::scan` must give exactly the clusters the reference's
//! `ntfsclone -s` writes as CMD_NEXT records, and the same header `inuse`. (The Windows and
//! corrupted volumes are run through the binary in `compat` and `robust`.)
use crate::common::{mkvol, require, TempDir, VolSpec};
use ntfsclone::dev::ReadAt;
use ntfsclone::ntfs::Volume;
use ntfsclone::used::{scan, Scan, Sink};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A file as a device.
struct Dev(File);

impl ReadAt for Dev {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> ntfsclone::error::Result<usize> {
        self.0
            .read_at(buf, offset)
            .map_err(|e| ntfsclone::error::Error::os("read", e.raw_os_error().unwrap_or(5)))
    }
}

/// Collects everything the scan says.
#[derive(Default)]
struct Collect {
    msg: String,
    warn: String,
    progress: Vec<u64>,
}

impl Sink for Collect {
    fn msg(&mut self, args: std::fmt::Arguments) {
        let _ = self.msg.write_fmt(args);
    }
    fn warn(&mut self, args: std::fmt::Arguments) {
        let _ = self.warn.write_fmt(args);
    }
    fn progress_start(&mut self, start: u64, stop: u64) {
        self.progress = vec![start, stop];
    }
    fn progress(&mut self, _: u64) {}
}

/// The reference's image, parsed while it streams: header `inuse` and the CMD_NEXT positions
/// as maximal runs.
struct RefImage {
    inuse: u64,
    nr_clusters: u64,
    runs: Vec<(u64, u64)>,
}

fn reference_image(vol: &Path) -> Result<RefImage, String> {
    let mut child = Command::new(require("ntfsclone"))
        .args(["-s", "-o", "-"])
        .arg(vol)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut hdr = [0u8; 56];
    let parsed = (|| -> std::io::Result<RefImage> {
        r.read_exact(&mut hdr)?;
        assert_eq!(&hdr[..16], b"\0ntfsclone-image");
        let cs = u32::from_le_bytes(hdr[18..22].try_into().unwrap()) as u64;
        let dev = u64::from_le_bytes(hdr[22..30].try_into().unwrap());
        let nrc = i64::from_le_bytes(hdr[30..38].try_into().unwrap()) as u64;
        let inuse = u64::from_le_bytes(hdr[38..46].try_into().unwrap());
        let off = u32::from_le_bytes(hdr[46..50].try_into().unwrap()) as usize;
        assert_eq!(off, 56);
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut pos: i64 = 0;
        let mut skip = vec![0u8; cs as usize];
        while pos as u64 <= nrc {
            let mut c = [0u8; 1];
            if r.read(&mut c)? == 0 {
                break;
            }
            match c[0] {
                0 => {
                    let mut g = [0u8; 8];
                    r.read_exact(&mut g)?;
                    pos += i64::from_le_bytes(g);
                }
                1 => {
                    let p = pos as u64;
                    let sz = if (p + 1) * cs < dev { cs } else { dev - p * cs };
                    r.read_exact(&mut skip[..sz as usize])?;
                    match runs.last_mut() {
                        Some((s, n)) if *s + *n == p => *n += 1,
                        _ => runs.push((p, 1)),
                    }
                    pos += 1;
                }
                x => panic!("bad command {x}"),
            }
        }
        std::io::copy(&mut r, &mut std::io::sink())?;
        Ok(RefImage {
            inuse,
            nr_clusters: nrc,
            runs,
        })
    })();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    let st = child.wait().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("reference failed ({st}): {err}"));
    }
    parsed.map_err(|e| format!("reading the reference image: {e}; {err}"))
}

/// Our verdict on a volume: the scan, or the refusal text.
fn ours(vol: &Path) -> Result<(Scan, Collect, u64), String> {
    let f = File::open(vol).map_err(|e| e.to_string())?;
    let size = f.metadata().unwrap().len();
    let dev = Dev(f);
    let mut sink = Collect::default();
    let v = Volume::open_with_sink(&dev, size, &mut sink)
        .map_err(|e| format!("open: {e} [{}]", sink.warn.trim()))?;
    if v.is_dirty() {
        return Err("dirty".into());
    }
    if size < v.boot.volume_size() {
        return Err("volume bigger than device".into());
    }
    let s =
        scan(&v, &dev, false, &mut sink).map_err(|e| format!("scan: {e} [{}]", sink.msg.trim()))?;
    Ok((s, sink, v.boot.nr_clusters))
}

/// Compares ours with the reference on one decompressed volume; returns a description of
/// every difference.
fn compare(vol: &Path) -> Result<(), String> {
    let r = reference_image(vol)?;
    let (s, _sink, nrc) =
        ours(vol).map_err(|e| format!("we refuse, the reference does not: {e}"))?;
    let mine: Vec<(u64, u64)> = s
        .used
        .runs()
        .filter(|(l, _)| *l <= nrc)
        .map(|(l, n)| (l, n.min(nrc + 1 - l)))
        .collect();
    let mut diff = String::new();
    if nrc != r.nr_clusters {
        let _ = write!(diff, "nr_clusters {nrc} != {}; ", r.nr_clusters);
    }
    if s.inuse != r.inuse {
        let _ = write!(diff, "inuse {} != reference {}; ", s.inuse, r.inuse);
    }
    if mine != r.runs {
        let first = mine.iter().zip(r.runs.iter()).find(|(a, b)| a != b);
        let _ = write!(
            diff,
            "runs differ ({} vs {} runs; first difference {first:?})",
            mine.len(),
            r.runs.len()
        );
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(diff)
    }
}

/// Runs `f` over `items` on a few threads; collects the failures.
fn parallel<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Option<String> + Sync,
) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(it) = items.get(i) else { break };
                if let Some(e) = f(it) {
                    out.lock().unwrap().push(e);
                }
            });
        }
    });
    out.into_inner().unwrap()
}

// The Windows volumes are compared through whole images in compat::windows_volumes_match_the_reference.

#[test]
fn mkntfs_volumes_match_reference() {
    let tmp = TempDir::new("ntfs-scan-mk");
    // Name, size in MiB, cluster size (None: mkntfs's choice), sector size.
    let vols = [
        ("c4k.img", 64u64, None, 512u32),
        ("c512.img", 32, Some(512), 512),
        ("c64k.img", 128, Some(65536), 512),
        ("s4k.img", 64, None, 4096),
    ]
    .map(|(name, mib, cluster, sector)| {
        let spec = VolSpec {
            cluster,
            sector,
            ..VolSpec::empty(mib << 20)
        };
        mkvol(tmp.path(), name, &spec)
    });
    let fails = parallel(&vols, 2, |v| {
        compare(v).err().map(|e| format!("{v:?}: {e}"))
    });
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

// The corrupted corpus is run through the binary in robust::sources::corrupted_volumes_are_handled_like_the_reference.
