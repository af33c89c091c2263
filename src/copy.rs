//! The shared copy machinery: used-cluster runs cut into large chunks, and reads of those
//! chunks from the source volume into one fixed buffer, with the reference's bad-sector
//! handling (`--rescue`).
//!
//! One read per chunk of up to [`CHUNK_BYTES`], never one per cluster; the buffer is allocated
//! once, before the loop.
use crate::dev::ReadAt;
use crate::error::{errno, Error, Result};
use crate::report::Report;
use std::prelude::v1::*;

/// Bytes moved per read/write in the copy loops (raised to one cluster for 2 MiB clusters... and
/// kept a multiple of the cluster size).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Clusters per chunk for a cluster size.
pub fn chunk_clusters(cluster_size: u32) -> u64 {
    (CHUNK_BYTES as u64 / u64::from(cluster_size)).max(1)
}

/// Cuts runs `(lcn, count)` (increasing LCN) to LCNs below `limit` and into pieces of at most
/// `max` clusters.
pub fn chunks(
    runs: impl Iterator<Item = (u64, u64)>,
    limit: u64,
    max: u64,
) -> impl Iterator<Item = (u64, u64)> {
    runs.filter_map(move |(lcn, count)| {
        let end = lcn.saturating_add(count).min(limit);
        (lcn < end).then_some((lcn, end))
    })
    .flat_map(move |(lcn, end)| {
        let max = max.max(1);
        let n = (end - lcn).div_ceil(max);
        (0..n).map(move |i| {
            let s = lcn + i * max;
            (s, (end - s).min(max))
        })
    })
}

/// Merges two increasing run lists into one increasing list of maximal runs (their union).
pub fn merge_runs(
    a: impl Iterator<Item = (u64, u64)>,
    b: impl Iterator<Item = (u64, u64)>,
) -> impl Iterator<Item = (u64, u64)> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    let mut cur: Option<(u64, u64)> = None; // (start, end)
    core::iter::from_fn(move || loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if x.0 <= y.0 {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return cur.take().map(|(s, e)| (s, e - s)),
        };
        let Some((lcn, count)) = next else { continue };
        let end = lcn.saturating_add(count);
        match cur {
            Some((s, e)) if lcn <= e => cur = Some((s, e.max(end))),
            Some((s, e)) => {
                cur = Some((lcn, end));
                return Some((s, e - s));
            }
            None => cur = Some((lcn, end)),
        }
    })
}

/// The reference's `bad_sectors_warning_msg`, printed before `Disk is faulty`.
pub const BAD_SECTORS_WARNING: &str = "\
*************************************************************************\n\
* WARNING: The disk has one or more bad sectors. This means that damage *\n\
* has occurred on the disk surface, possibly caused by deterioration of *\n\
* the physical media, manufacturing faults or other reasons. The        *\n\
* reliability of the disk may stay stable or degrade fast.              *\n\
* Use the --rescue option to efficiently save as much data as possible! *\n\
*************************************************************************\n";

/// Reads volume bytes into one fixed buffer.
pub struct VolumeReader<'a, D: ReadAt> {
    dev: &'a D,
    cluster_size: usize,
    sector_size: usize,
    rescue: bool,
    report: Report,
    buf: Vec<u8>,
    /// Sectors that could not be read (with `--rescue`).
    pub bad_sectors: u64,
}

impl<'a, D: ReadAt> VolumeReader<'a, D> {
    /// A reader with a buffer of one chunk (at least one cluster).
    pub fn new(
        dev: &'a D,
        cluster_size: u32,
        sector_size: u32,
        rescue: bool,
        report: Report,
    ) -> Self {
        let cs = cluster_size as usize;
        let len = (chunk_clusters(cluster_size) as usize) * cs;
        VolumeReader {
            dev,
            cluster_size: cs,
            sector_size: (sector_size as usize).clamp(256, cs.max(256)),
            rescue,
            report,
            buf: vec![0u8; len],
            bad_sectors: 0,
        }
    }

    /// Capacity of the buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Reads `len` bytes (at most [`VolumeReader::capacity`]) at byte `offset`.
    /// A read error other than EIO is fatal (`read_all`); EIO is fatal with the reference's
    /// warning box unless `--rescue`, which re-reads cluster by cluster, then sector by sector,
    /// and fills what cannot be read.
    pub fn read(&mut self, offset: u64, len: usize) -> Result<&mut [u8]> {
        let len = len.min(self.buf.len());
        match self.dev.read_exact_at(&mut self.buf[..len], offset) {
            Ok(()) => return Ok(&mut self.buf[..len]),
            Err(e) if e.errno() == Some(errno::EIO) => {}
            Err(e) => return Err(e),
        }
        if !self.rescue {
            self.report.out(format_args!("{BAD_SECTORS_WARNING}"));
            return Err(Error::fatal(format_args!(
                "Disk is faulty, can't make full backup!"
            )));
        }
        let mut done = 0;
        while done < len {
            let n = (len - done).min(self.cluster_size);
            let off = offset + done as u64;
            let ok = match self.dev.read_exact_at(&mut self.buf[done..done + n], off) {
                Ok(()) => true,
                Err(e) if e.errno() == Some(errno::EIO) => false,
                Err(e) => return Err(e),
            };
            if !ok {
                self.rescue_cluster(done, n, off)?;
            }
            done += n;
        }
        Ok(&mut self.buf[..len])
    }

    /// Sector-by-sector re-read of `buf[at..at+n]` (volume byte `off`).
    fn rescue_cluster(&mut self, at: usize, n: usize, off: u64) -> Result<()> {
        let ss = self.sector_size;
        let mut i = 0;
        while i < n {
            let m = (n - i).min(ss);
            let sec_off = off + i as u64;
            let slot = &mut self.buf[at + i..at + i + m];
            match self.dev.read_exact_at(slot, sec_off) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(errno::EIO) => {
                    // The reference's filler: "BadSectoR\0" then '?'.
                    slot.fill(b'?');
                    let tag = b"BadSectoR\0";
                    let k = tag.len().min(m);
                    slot[..k].copy_from_slice(&tag[..k]);
                    self.bad_sectors += 1;
                    // The reference prints only the byte offset, calling it a sector (bug #3).
                    self.report.out(format_args!(
                        "WARNING: Can't read sector {} (byte offset {sec_off}), lost data.\n",
                        sec_off / ss as u64
                    ));
                }
                Err(e) => return Err(e),
            }
            i += m;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking() {
        let runs = [(0u64, 5u64), (10, 3), (20, 10)];
        let v: Vec<_> = chunks(runs.iter().copied(), 25, 4).collect();
        assert_eq!(v, [(0, 4), (4, 1), (10, 3), (20, 4), (24, 1)]);
        let v: Vec<_> = chunks(runs.iter().copied(), 3, 100).collect();
        assert_eq!(v, [(0, 3)]);
    }

    /// A device whose bytes `bad.0..bad.1` fail with EIO.
    struct Faulty {
        data: Vec<u8>,
        bad: (u64, u64),
    }

    impl ReadAt for Faulty {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
            let end = offset + buf.len() as u64;
            if offset < self.bad.1 && end > self.bad.0 {
                return Err(Error::os("read_all", errno::EIO));
            }
            crate::dev::mem::MemDev::new(self.data.clone()).read_at(buf, offset)
        }
    }

    #[test]
    fn rescue_fills_bad_sectors() {
        let dev = Faulty {
            data: vec![7u8; 64 * 1024],
            bad: (5000, 5001),
        };
        let report = Report {
            msg_to_stderr: true,
            quiet: true,
        };
        let mut rd = VolumeReader::new(&dev, 4096, 512, true, report);
        let got = rd.read(0, 16384).unwrap().to_vec();
        assert_eq!(rd.bad_sectors, 1);
        assert!(got[..4608].iter().all(|&b| b == 7));
        assert_eq!(&got[4608..4618], b"BadSectoR\0");
        assert!(got[4618..5120].iter().all(|&b| b == b'?'));
        assert!(got[5120..].iter().all(|&b| b == 7));

        let mut rd = VolumeReader::new(&dev, 4096, 512, false, report);
        let e = rd.read(0, 16384).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "ERROR: Disk is faulty, can't make full backup!"
        );
        let mut rd = VolumeReader::new(&dev, 4096, 512, false, report);
        assert!(rd.read(8192, 8192).is_ok());
    }

    #[test]
    fn merging() {
        let a = [(0u64, 2u64), (5, 2), (20, 1)];
        let b = [(1u64, 2u64), (7, 1), (10, 3)];
        let v: Vec<_> = merge_runs(a.iter().copied(), b.iter().copied()).collect();
        assert_eq!(v, [(0, 3), (5, 3), (10, 3), (20, 1)]);
        let v: Vec<_> = merge_runs(core::iter::empty(), b.iter().copied()).collect();
        assert_eq!(v, b);
    }
}
