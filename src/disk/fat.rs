//! FAT12/16/32 file systems (the EFI system partition): the BIOS parameter block, and the
//! byte runs in use, read from the first FAT.
//!
//! Layout from Microsoft's published FAT specification: reserved sectors (boot sector, FSInfo,
//! FAT32's backup boot sector), the FATs, FAT12/16's fixed root directory, then the data
//! clusters numbered from 2. The FAT type follows from the cluster count alone (fewer than
//! 4085: FAT12; fewer than 65525: FAT16; FAT32 otherwise). The reserved area, the FATs and the
//! root directory are always in use; a data cluster is in use when its FAT entry is neither
//! free (0) nor marked bad.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::le;
use crate::dev::ReadAt;
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// The FAT variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 12-bit entries.
    Fat12,
    /// 16-bit entries.
    Fat16,
    /// 28-bit entries in 32 bits.
    Fat32,
}

impl Kind {
    /// "FAT12", "FAT16" or "FAT32".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fat12 => "FAT12",
            Kind::Fat16 => "FAT16",
            Kind::Fat32 => "FAT32",
        }
    }
}

/// A checked BIOS parameter block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fat {
    /// Variant.
    pub kind: Kind,
    /// Bytes per sector.
    pub sector_size: u32,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Byte offset of the first FAT.
    pub fat_offset: u64,
    /// Bytes of one FAT.
    pub fat_bytes: u64,
    /// Byte offset of cluster 2 (end of the reserved area, FATs and root directory).
    pub data_offset: u64,
    /// Number of data clusters (numbered 2 ..= clusters + 1).
    pub clusters: u32,
    /// Size of the file system in bytes.
    pub size: u64,
}

fn bad(what: &'static str, at: usize) -> Error {
    Error::corrupt(format_args!("FAT boot sector"), what, at as u64)
}

impl Fat {
    /// Parses the boot sector `boot` (at least 512 bytes) of a FAT file system that lives in a
    /// partition of `part_len` bytes.
    pub fn parse(boot: &[u8], part_len: u64) -> Result<Fat> {
        if le::bytes::<2>(boot, 510) != Some([0x55, 0xAA]) {
            return Err(bad("no 0x55AA signature", 510));
        }
        if !matches!(boot.first(), Some(0xEB | 0xE9)) {
            return Err(bad("no jump instruction", 0));
        }
        let u16f = |off| {
            le::u16_at(boot, off)
                .map(u32::from)
                .ok_or(bad("truncated", off))
        };
        let u8f = |off: usize| {
            boot.get(off)
                .copied()
                .map(u32::from)
                .ok_or(bad("truncated", off))
        };
        let bps = u16f(0x0B)?;
        if !(512..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad("bytes per sector out of range", 0x0B));
        }
        let spc = u8f(0x0D)?;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad("sectors per cluster out of range", 0x0D));
        }
        let reserved = u16f(0x0E)?;
        if reserved == 0 {
            return Err(bad("no reserved sectors", 0x0E));
        }
        let nfats = u8f(0x10)?;
        if !(1..=4).contains(&nfats) {
            return Err(bad("number of FATs out of range", 0x10));
        }
        let root_entries = u16f(0x11)?;
        let total = match u16f(0x13)? {
            0 => le::u32_at(boot, 0x20).ok_or(bad("truncated", 0x20))?,
            n => n,
        };
        let fat_sectors = match u16f(0x16)? {
            0 => le::u32_at(boot, 0x24).ok_or(bad("truncated", 0x24))?,
            n => n,
        };
        if fat_sectors == 0 {
            return Err(bad("FAT size is zero", 0x16));
        }
        let (bps64, total64) = (u64::from(bps), u64::from(total));
        let root_sectors = (u64::from(root_entries) * 32).div_ceil(bps64);
        let data_start =
            u64::from(reserved) + u64::from(nfats) * u64::from(fat_sectors) + root_sectors;
        if data_start >= total64 {
            return Err(bad("no room for data clusters", 0x13));
        }
        let size = total64 * bps64;
        if size > part_len {
            return Err(bad("file system is larger than its partition", 0x13));
        }
        let clusters64 = (total64 - data_start) / u64::from(spc);
        let clusters = u32::try_from(clusters64).map_err(|_| bad("too many clusters", 0x13))?;
        let kind = if clusters < 4085 {
            Kind::Fat12
        } else if clusters < 65525 {
            Kind::Fat16
        } else {
            Kind::Fat32
        };
        if clusters == 0 || clusters > 0x0FFF_FFF5 {
            return Err(bad("cluster count out of range", 0x13));
        }
        if kind == Kind::Fat32 && root_entries != 0 {
            return Err(bad("FAT32 with a fixed root directory", 0x11));
        }
        let fat_bytes = u64::from(fat_sectors) * bps64;
        let needed = match kind {
            Kind::Fat12 => (u64::from(clusters) + 2) * 3 / 2 + 1,
            Kind::Fat16 => (u64::from(clusters) + 2) * 2,
            Kind::Fat32 => (u64::from(clusters) + 2) * 4,
        };
        if needed > fat_bytes {
            return Err(bad("FAT too small for the cluster count", 0x16));
        }
        Ok(Fat {
            kind,
            sector_size: bps,
            cluster_size: bps * spc,
            fat_offset: u64::from(reserved) * bps64,
            fat_bytes,
            data_offset: data_start * bps64,
            clusters,
            size,
        })
    }

    /// Byte offset (in the file system) of data cluster `c` (2 ..).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset + u64::from(c.saturating_sub(2)) * u64::from(self.cluster_size)
    }

    /// Calls `f(offset, len)` for each run of bytes in use, in order, runs merged when they
    /// touch: first the reserved area, FATs and root directory, then the used clusters. The
    /// FAT is read from `dev` (the partition) in chunks of at most 64 KiB. Returns the number
    /// of used data clusters.
    pub fn used_runs<D: ReadAt + ?Sized>(
        &self,
        dev: &D,
        mut f: impl FnMut(u64, u64) -> Result<()>,
    ) -> Result<u64> {
        const CHUNK: usize = 64 << 10;
        let cs = u64::from(self.cluster_size);
        let mut run: (u64, u64) = (0, self.data_offset);
        let mut used = 0u64;
        let last = self.clusters.saturating_add(2);
        let mut emit = |off: u64, run: &mut (u64, u64)| -> Result<()> {
            if run.0 + run.1 == off {
                run.1 += cs;
                Ok(())
            } else {
                let r = core::mem::replace(run, (off, cs));
                if r.1 > 0 {
                    f(r.0, r.1)?;
                }
                Ok(())
            }
        };
        match self.kind {
            Kind::Fat12 => {
                // At most 4086 entries: 6131 bytes.
                let n = (usize::try_from(last).unwrap_or(0) * 3).div_ceil(2) + 1;
                let mut fat = vec![0u8; n];
                dev.read_exact_at(&mut fat, self.fat_offset)?;
                for c in 2..last {
                    let i = usize::try_from(c).unwrap_or(0);
                    let pair = le::u16_at(&fat, i + i / 2).unwrap_or(0);
                    let v = if c % 2 == 0 { pair & 0xFFF } else { pair >> 4 };
                    if v != 0 && v != 0xFF7 {
                        used += 1;
                        emit(self.cluster_offset(c), &mut run)?;
                    }
                }
            }
            Kind::Fat16 | Kind::Fat32 => {
                let w: usize = if self.kind == Kind::Fat16 { 2 } else { 4 };
                let mut buf = vec![0u8; CHUNK];
                let mut c: u32 = 2;
                while c < last {
                    let first_entry = u64::from(c);
                    let count = (CHUNK / w).min(usize::try_from(last - c).unwrap_or(CHUNK / w));
                    let bytes = buf.get_mut(..count * w).unwrap_or(&mut []);
                    dev.read_exact_at(bytes, self.fat_offset + first_entry * w as u64)?;
                    for e in bytes.chunks_exact(w) {
                        let v = if w == 2 {
                            le::u16_at(e, 0).map_or(0, u32::from)
                        } else {
                            le::u32_at(e, 0).unwrap_or(0) & 0x0FFF_FFFF
                        };
                        let bad = if w == 2 { 0xFFF7 } else { 0x0FFF_FFF7 };
                        if v != 0 && v != bad {
                            used += 1;
                            emit(self.cluster_offset(c), &mut run)?;
                        }
                        c += 1;
                    }
                }
            }
        }
        if run.1 > 0 {
            f(run.0, run.1)?;
        }
        Ok(used)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
pub(crate) mod tests {
    use super::*;
    use crate::dev::mem::MemDev;

    /// A hand-made FAT16 boot sector: 512-byte sectors, 4 sectors per cluster, 4 reserved,
    /// 2 FATs of 40 sectors, 512 root entries, `total` sectors.
    pub(crate) fn fat16_boot(total: u16) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0] = 0xEB;
        b[1] = 0x3C;
        b[2] = 0x90;
        b[3..11].copy_from_slice(b"mkfs.fat");
        b[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        b[0x0D] = 4;
        b[0x0E..0x10].copy_from_slice(&4u16.to_le_bytes());
        b[0x10] = 2;
        b[0x11..0x13].copy_from_slice(&512u16.to_le_bytes());
        b[0x13..0x15].copy_from_slice(&total.to_le_bytes());
        b[0x15] = 0xF8;
        b[0x16..0x18].copy_from_slice(&40u16.to_le_bytes());
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn fat16_geometry_and_runs() {
        // 4 + 80 + 32 = 116 sectors before the data; (40000 - 116) / 4 = 9971 clusters.
        let boot = fat16_boot(40000);
        let f = Fat::parse(&boot, 40000 * 512).unwrap();
        assert_eq!(f.kind, Kind::Fat16);
        assert_eq!(f.clusters, 9971);
        assert_eq!(f.data_offset, 116 * 512);
        let mut dev = MemDev::new(vec![0u8; 40000 * 512]);
        dev.data[..512].copy_from_slice(&boot);
        let fat = 4 * 512;
        let mut set = |c: usize, v: u16| {
            dev.data[fat + 2 * c..fat + 2 * c + 2].copy_from_slice(&v.to_le_bytes())
        };
        set(0, 0xFFF8);
        set(1, 0xFFFF);
        set(2, 0xFFFF);
        set(3, 4);
        set(4, 0xFFFF);
        set(10, 0xFFF7); // bad: not copied
        set(11, 0xFFFF);
        set(9972, 0xFFFF); // the last cluster
        let mut runs = Vec::new();
        let used = f
            .used_runs(&dev, |o, l| {
                runs.push((o, l));
                Ok(())
            })
            .unwrap();
        assert_eq!(used, 5);
        let c = |n: u64| 116 * 512 + (n - 2) * 2048;
        assert_eq!(runs, vec![(0, c(5)), (c(11), 2048), (c(9972), 2048)]);
    }

    #[test]
    fn fat12_entries() {
        // 1440 sectors, 1 sector per cluster, 1 reserved, 2 FATs of 9, 224 root entries.
        let mut b = fat16_boot(2880);
        b[0x0D] = 1;
        b[0x0E] = 1;
        b[0x11..0x13].copy_from_slice(&224u16.to_le_bytes());
        b[0x16..0x18].copy_from_slice(&9u16.to_le_bytes());
        let f = Fat::parse(&b, 2880 * 512).unwrap();
        assert_eq!(f.kind, Kind::Fat12);
        assert_eq!(f.data_offset, 33 * 512);
        let mut dev = MemDev::new(vec![0u8; 2880 * 512]);
        // Entries 2 (0xFFF) and 5 (0x123): packed 12-bit.
        let fat = 512;
        dev.data[fat + 3] = 0xFF; // entry 2 low byte
        dev.data[fat + 4] = 0x0F; // entry 2 high nibble, entry 3 = 0
        dev.data[fat + 7] = 0x30; // entry 5 low nibble in the high half of byte 7
        dev.data[fat + 8] = 0x12;
        let mut runs = Vec::new();
        f.used_runs(&dev, |o, l| {
            runs.push((o, l));
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, vec![(0, 34 * 512), (36 * 512, 512)]);
    }

    #[test]
    fn bad_boot_sectors() {
        type Mutation = fn(&mut Vec<u8>);
        let cases: [(Mutation, &str); 10] = [
            (|b| b[511] = 0, "0x55AA"),
            (|b| b[0] = 0, "jump"),
            (|b| b[0x0B] = 1, "bytes per sector"),
            (|b| b[0x0D] = 3, "sectors per cluster"),
            (|b| b[0x0E] = 0, "reserved"),
            (|b| b[0x10] = 9, "number of FATs"),
            (|b| b[0x16] = 0, "FAT size"),
            (|b| b[0x16] = 1, "FAT too small"),
            (
                |b| b[0x13..0x15].copy_from_slice(&50u16.to_le_bytes()),
                "no room",
            ),
            (
                |b| b[0x13..0x15].copy_from_slice(&60000u16.to_le_bytes()),
                "larger than its partition",
            ),
        ];
        for (f, want) in cases {
            let mut b = fat16_boot(40000);
            f(&mut b);
            let e = std::format!("{}", Fat::parse(&b, 40000 * 512).unwrap_err());
            assert!(e.contains(want), "{want}: {e}");
        }
        // FAT32 by cluster count, with root entries left over.
        let mut b = fat16_boot(0);
        b[0x0D] = 1;
        b[0x20..0x24].copy_from_slice(&200_000u32.to_le_bytes());
        b[0x16..0x18].copy_from_slice(&0u16.to_le_bytes());
        b[0x24..0x28].copy_from_slice(&1600u32.to_le_bytes());
        let e = std::format!("{}", Fat::parse(&b, 200_000 * 512).unwrap_err());
        assert!(e.contains("fixed root"), "{e}");
        b[0x11] = 0;
        b[0x12] = 0;
        assert_eq!(Fat::parse(&b, 200_000 * 512).unwrap().kind, Kind::Fat32);
    }
}
