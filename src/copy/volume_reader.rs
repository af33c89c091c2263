//! The volume reader: reads volume bytes, contiguous or as image records, with the reference's
//! bad-sector handling (`--rescue`).
use super::plan::chunk_clusters;
use crate::dev::{ReadAt, ReadVectoredAt, IOV_MAX};
use crate::error::{errno, Error, Result};
use crate::image::record;
use crate::report::Report;
use rustix::io::IoSliceMut;
use std::prelude::v1::*;

/// The reference's `bad_sectors_warning_msg`, printed before `Disk is faulty`.
pub const BAD_SECTORS_WARNING: &str = "\
*************************************************************************\n\
* WARNING: The disk has one or more bad sectors. This means that damage *\n\
* has occurred on the disk surface, possibly caused by deterioration of *\n\
* the physical media, manufacturing faults or other reasons. The        *\n\
* reliability of the disk may stay stable or degrade fast.              *\n\
* Use the --rescue option to efficiently save as much data as possible! *\n\
*************************************************************************\n";

/// Reads volume bytes, contiguous or as image records, with the reference's EIO handling.
pub struct VolumeReader<'a, D: ReadAt> {
    pub(super) dev: &'a D,
    pub(super) cluster_size: usize,
    sector_size: usize,
    pub(super) rescue: bool,
    report: Report,
    /// The buffer of [`VolumeReader::read`] (empty for a reader made for the pipeline).
    buf: Vec<u8>,
    /// Sectors that could not be read (with `--rescue`).
    pub bad_sectors: u64,
}

impl<'a, D: ReadAt> VolumeReader<'a, D> {
    /// A reader with a buffer of one chunk (at least one cluster) for [`VolumeReader::read`].
    pub fn new(
        dev: &'a D,
        cluster_size: u32,
        sector_size: u32,
        rescue: bool,
        report: Report,
    ) -> Self {
        let mut rd = Self::unbuffered(dev, cluster_size, sector_size, rescue, report);
        rd.buf = vec![0u8; (chunk_clusters(cluster_size) as usize) * rd.cluster_size];
        rd
    }

    /// A reader without a buffer of its own: reads go into the caller's memory
    /// ([`VolumeReader::read_into`], [`VolumeReader::read_records`]).
    pub fn unbuffered(
        dev: &'a D,
        cluster_size: u32,
        sector_size: u32,
        rescue: bool,
        report: Report,
    ) -> Self {
        let cs = (cluster_size as usize).max(1);
        VolumeReader {
            dev,
            cluster_size: cs,
            sector_size: (sector_size as usize).clamp(256, cs.max(256)),
            rescue,
            report,
            buf: Vec::new(),
            bad_sectors: 0,
        }
    }

    /// Capacity of the buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Reads `len` bytes (at most [`VolumeReader::capacity`]) at byte `offset` into the
    /// reader's buffer. See [`VolumeReader::read_into`].
    pub fn read(&mut self, offset: u64, len: usize) -> Result<&mut [u8]> {
        if len > self.buf.len() {
            // A caller bug, never input: refuse rather than return fewer bytes than asked.
            return Err(Error::message(format_args!(
                "internal error: read of {len} bytes into a {}-byte buffer",
                self.buf.len()
            )));
        }
        let mut buf = core::mem::take(&mut self.buf);
        let r = self.read_into(&mut buf[..len], offset);
        self.buf = buf;
        r?;
        Ok(&mut self.buf[..len])
    }

    /// Fills `dst` with the bytes at byte `offset`.
    /// A read error other than EIO is fatal (`read_all`); EIO is fatal with the reference's
    /// warning box unless `--rescue`, which re-reads cluster by cluster, then sector by sector,
    /// and fills what cannot be read.
    pub fn read_into(&mut self, dst: &mut [u8], offset: u64) -> Result<()> {
        match self.dev.read_exact_at(dst, offset) {
            Ok(()) => return Ok(()),
            Err(e) if e.errno() == Some(errno::EIO) => {}
            Err(e) => return Err(e),
        }
        if !self.rescue {
            self.report.out(format_args!("{BAD_SECTORS_WARNING}"));
            return Err(Error::fatal(format_args!(
                "Disk is faulty, can't make full backup!"
            )));
        }
        let len = dst.len();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(self.cluster_size);
            let off = offset + done as u64;
            let slot = &mut dst[done..done + n];
            let ok = match self.dev.read_exact_at(slot, off) {
                Ok(()) => true,
                Err(e) if e.errno() == Some(errno::EIO) => false,
                Err(e) => return Err(e),
            };
            if !ok {
                self.rescue_cluster(slot, off)?;
            }
            done += n;
        }
        Ok(())
    }

    /// Sector-by-sector re-read of `slot` (volume byte `off`).
    fn rescue_cluster(&mut self, slot: &mut [u8], off: u64) -> Result<()> {
        let ss = self.sector_size;
        for (i, sec) in slot.chunks_mut(ss).enumerate() {
            let sec_off = off + (i * ss) as u64;
            match self.dev.read_exact_at(sec, sec_off) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(errno::EIO) => {
                    // The reference's filler: "BadSectoR\0" then '?'.
                    sec.fill(b'?');
                    let tag = b"BadSectoR\0";
                    let k = tag.len().min(sec.len());
                    sec[..k].copy_from_slice(&tag[..k]);
                    self.bad_sectors += 1;
                    // compat: the reference prints only the byte offset and calls it a sector;
                    // both numbers here (initramfs_rescue_reports_unreadable_sectors).
                    self.report.out(format_args!(
                        "WARNING: Can't read sector {} (byte offset {sec_off}), lost data.\n",
                        sec_off / ss as u64
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<D: ReadVectoredAt> VolumeReader<'_, D> {
    /// Builds `records.len() / (cluster_size + 1)` image records in place: every record is
    /// `CMD_NEXT` followed by one cluster read from the volume, starting with the cluster at
    /// byte `offset`. One `preadv` per [`IOV_MAX`] clusters; errors as [`VolumeReader::read_into`].
    pub fn read_records(&mut self, records: &mut [u8], offset: u64) -> Result<()> {
        let cs = self.cluster_size;
        let stride = record::cluster_record_len(cs);
        let k = records.len() / stride;
        let mut i = 0usize;
        while i < k {
            let n = (k - i).min(IOV_MAX);
            let region = &mut records[i * stride..(i + n) * stride];
            let mut iov: heapless::Vec<IoSliceMut<'_>, IOV_MAX> = heapless::Vec::new();
            for data in record::cluster_records(region, cs) {
                // At most IOV_MAX records per region: never full.
                let _ = iov.push(IoSliceMut::new(data));
            }
            let at = offset + (i * cs) as u64;
            let got = match self.dev.read_vectored_at(&mut iov, at) {
                Ok(g) => g,
                Err(e) if e.errno() == Some(errno::EIO) => 0,
                Err(e) => return Err(e),
            };
            drop(iov);
            if got == 0 {
                // End of device or EIO: cluster by cluster, with the reference's handling.
                for (j, data) in record::cluster_records(region, cs).enumerate() {
                    self.read_into(data, at + (j * cs) as u64)?;
                }
                i += n;
                continue;
            }
            let (full, part) = (got / cs, got % cs);
            i += full;
            if part > 0 {
                let rec = &mut records[i * stride..(i + 1) * stride];
                if let Some(data) = record::cluster_records(rec, cs).next() {
                    self.read_into(&mut data[part..], offset + (i * cs + part) as u64)?;
                }
                i += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::test_dev::Faulty;

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
}
