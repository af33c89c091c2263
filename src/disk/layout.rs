//! A disk's layout: its table kind, its partitions (byte ranges, checked against each other
//! and against the disk's size) and its boot areas, the bytes outside the partitions that are
//! copied as they are: sector 0 and everything up to the first partition (boot code, the disk
//! signature, the GPT or the sectors a boot loader lives in), each EBR of a DOS label, and the
//! backup GPT.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::gpt::Gpt;
use super::mbr::{self, DosLabel};
use super::{detect, Guid};
use crate::dev::{ReadAt, WriteAt};
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// The kind of partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// A DOS label (MBR).
    Dos,
    /// A GUID partition table.
    Gpt,
}

impl TableKind {
    /// The code stored in disk images.
    pub fn code(self) -> u8 {
        match self {
            TableKind::Dos => 1,
            TableKind::Gpt => 2,
        }
    }
    /// The kind for a code stored in a disk image.
    pub fn from_code(c: u8) -> Option<TableKind> {
        match c {
            1 => Some(TableKind::Dos),
            2 => Some(TableKind::Gpt),
            _ => None,
        }
    }
    /// "dos" or "gpt", as `sfdisk` names them.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Dos => "dos",
            TableKind::Gpt => "gpt",
        }
    }
}

/// The partition type as the table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartType {
    /// A DOS label's type byte.
    Dos(u8),
    /// A GPT type GUID.
    Gpt(Guid),
}

/// One partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Its number as Linux names it (`/dev/sdaN`): GPT entry index + 1; DOS 1-4 primary,
    /// 5.. logical.
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Type recorded in the table.
    pub ptype: PartType,
}

impl Partition {
    /// One past its last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// What a boot area is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    /// Sector 0 up to the first partition (or the first EBR).
    Head,
    /// An extended boot record (one sector).
    Ebr,
    /// The backup GPT: entry array and header.
    GptBackup,
}

impl AreaKind {
    /// The code stored in disk images.
    pub fn code(self) -> u8 {
        match self {
            AreaKind::Head => 1,
            AreaKind::Ebr => 2,
            AreaKind::GptBackup => 3,
        }
    }
    /// The kind for a code stored in a disk image.
    pub fn from_code(c: u8) -> Option<AreaKind> {
        match c {
            1 => Some(AreaKind::Head),
            2 => Some(AreaKind::Ebr),
            3 => Some(AreaKind::GptBackup),
            _ => None,
        }
    }
}

/// A byte range outside the partitions that is copied verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// What it is.
    pub kind: AreaKind,
    /// First byte on the disk.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The end of the last of `ends` and of `areas` but a GPT's backup (it moves to a target's
/// end: its size counts, not its place).
pub fn last_end(ends: impl Iterator<Item = u64>, areas: &[Area]) -> u64 {
    ends.chain(
        areas
            .iter()
            .filter(|a| a.kind != AreaKind::GptBackup)
            .map(|a| a.offset.saturating_add(a.len)),
    )
    .max()
    .unwrap_or(0)
}

/// A disk with no partition table that holds a file system directly (its first sector says
/// so) is an error that says to copy it without `--disk`; Ok otherwise.
fn refuse_bare_file_system<D: ReadAt + ?Sized>(dev: &D, disk_size: u64) -> Result<()> {
    let mut s = [0u8; 512];
    dev.read_exact_at(&mut s, 0)?;
    if detect::detect(&s, disk_size) != detect::Content::Other {
        return Err(Error::message(format_args!(
            "no partition table: the disk holds a file system directly (copy it without --disk)"
        )));
    }
    Ok(())
}

/// Largest total of boot-area bytes (they are held in memory on restore).
pub const MAX_AREA_BYTES: u64 = 64 << 20;

/// A disk's partition table and what it implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Table kind.
    pub kind: TableKind,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// Disk size in bytes.
    pub disk_size: u64,
    /// Partitions, by start offset.
    pub partitions: Vec<Partition>,
    /// Boot areas, by offset (never overlapping a partition or each other).
    pub areas: Vec<Area>,
    /// The GPT, for a GPT disk.
    pub gpt: Option<Gpt>,
    /// The DOS label (the protective MBR of a GPT disk).
    pub dos: DosLabel,
}

impl Layout {
    /// Reads and checks the partition table of a disk of `disk_size` bytes.
    pub fn read<D: ReadAt + ?Sized>(dev: &D, disk_size: u64, sector_size: u32) -> Result<Layout> {
        if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(Error::message(format_args!(
                "unsupported logical sector size {sector_size}"
            )));
        }
        let ss = u64::from(sector_size);
        let disk_sectors = disk_size / ss;
        if disk_sectors < 2 {
            return Err(Error::message(format_args!(
                "the disk is too small to hold a partition table ({disk_size} bytes)"
            )));
        }
        let dos = match mbr::read(dev, sector_size, disk_sectors) {
            Ok(d) => d,
            Err(e) => {
                refuse_bare_file_system(dev, disk_size)?;
                return Err(e);
            }
        };
        let mut partitions = Vec::new();
        let mut areas = Vec::new();
        let (kind, gpt) = if mbr::is_protective(&dos.primary) {
            let gpt = Gpt::read(dev, disk_sectors, sector_size)?;
            for e in gpt.partitions()? {
                partitions.push(Partition {
                    number: e.index.saturating_add(1),
                    start: e.first_lba.saturating_mul(ss),
                    len: (e.last_lba - e.first_lba)
                        .saturating_add(1)
                        .saturating_mul(ss),
                    ptype: PartType::Gpt(e.type_guid),
                });
            }
            (TableKind::Gpt, Some(gpt))
        } else {
            let mut ext: Option<(u64, u64)> = None;
            for (i, e) in dos.primary.iter().enumerate() {
                if e.is_empty() {
                    continue;
                }
                let (start, len) = (u64::from(e.start) * ss, u64::from(e.sectors) * ss);
                if e.is_extended() {
                    ext = Some((start, len));
                    continue;
                }
                partitions.push(Partition {
                    number: u32::try_from(i + 1).unwrap_or(0),
                    start,
                    len,
                    ptype: PartType::Dos(e.kind),
                });
            }
            for (k, l) in dos.logical.iter().enumerate() {
                let p = Partition {
                    number: u32::try_from(k + 5).unwrap_or(u32::MAX),
                    start: l.start.saturating_mul(ss),
                    len: l.sectors.saturating_mul(ss),
                    ptype: PartType::Dos(l.kind),
                };
                if let Some((es, el)) = ext {
                    if p.start < es || p.end() > es.saturating_add(el) {
                        return Err(Error::corrupt(
                            format_args!("logical partition {}", p.number),
                            "lies outside its extended partition",
                            l.ebr_lba.saturating_mul(ss),
                        ));
                    }
                }
                partitions.push(p);
            }
            if partitions.is_empty() {
                refuse_bare_file_system(dev, disk_size)?;
                return Err(Error::message(format_args!(
                    "no partition table: sector 0 lists no partition"
                )));
            }
            for &ebr in &dos.ebrs {
                areas.push(Area {
                    kind: AreaKind::Ebr,
                    offset: ebr.saturating_mul(ss),
                    len: ss,
                });
            }
            (TableKind::Dos, None)
        };
        partitions.sort_by_key(|p| p.start);
        for p in &partitions {
            if p.end() > disk_size {
                return Err(Error::corrupt(
                    format_args!("partition {}", p.number),
                    "ends beyond the end of the disk",
                    p.start,
                ));
            }
            if p.start < ss {
                return Err(Error::corrupt(
                    format_args!("partition {}", p.number),
                    "overlaps the partition table",
                    p.start,
                ));
            }
        }
        for w in partitions.windows(2) {
            if let [a, b] = w {
                if a.end() > b.start {
                    return Err(Error::corrupt(
                        format_args!("partitions {} and {}", a.number, b.number),
                        "overlap",
                        b.start,
                    ));
                }
            }
        }
        for a in &areas {
            if let Some(p) = partitions
                .iter()
                .find(|p| p.start < a.offset.saturating_add(a.len) && a.offset < p.end())
            {
                return Err(Error::corrupt(
                    format_args!("partition {}", p.number),
                    "overlaps an extended boot record",
                    a.offset,
                ));
            }
        }
        // The head: sector 0 up to the first partition or EBR (the GPT's first usable LBA
        // when there is neither).
        let first = partitions
            .iter()
            .map(|p| p.start)
            .chain(areas.iter().map(|a| a.offset))
            .min()
            .or_else(|| {
                gpt.as_ref()
                    .map(|g| g.header.first_usable.saturating_mul(ss))
            })
            .unwrap_or(ss);
        areas.push(Area {
            kind: AreaKind::Head,
            offset: 0,
            len: first,
        });
        if let Some((entries_lba, header_lba)) = gpt.as_ref().and_then(|g| g.backup_at) {
            let offset = entries_lba.saturating_mul(ss);
            let end = header_lba.saturating_add(1).saturating_mul(ss);
            let last_end = partitions.iter().map(|p| p.end()).max().unwrap_or(first);
            if offset >= last_end && offset >= first && end <= disk_size && offset < end {
                areas.push(Area {
                    kind: AreaKind::GptBackup,
                    offset,
                    len: end - offset,
                });
            }
        }
        areas.sort_by_key(|a| a.offset);
        let total: u64 = areas.iter().map(|a| a.len).fold(0, u64::saturating_add);
        if total > MAX_AREA_BYTES {
            return Err(Error::message(format_args!(
                "the boot areas (sector 0 to the first partition, and the table copies) take \
                 {total} bytes, more than the {MAX_AREA_BYTES} this program copies"
            )));
        }
        Ok(Layout {
            kind,
            sector_size,
            disk_size,
            partitions,
            areas,
            gpt,
            dos,
        })
    }

    /// Smallest disk (in bytes) that holds every partition and, for a GPT, its backup.
    pub fn min_disk_size(&self) -> Result<u64> {
        let ss = u64::from(self.sector_size);
        let mut need = last_end(self.partitions.iter().map(|p| p.end()), &self.areas);
        if let Some(g) = &self.gpt {
            need = need.max(g.min_disk_sectors()?.saturating_mul(ss));
        }
        Ok(need)
    }

    /// The partition with Linux number `n`.
    pub fn partition(&self, n: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == n)
    }
}

/// A window of a device: byte `0` of the window is byte `start` of the device, and nothing
/// at or past `len` is read or written (a partition seen as a device of its own).
#[derive(Debug, Clone, Copy)]
pub struct Window<D> {
    dev: D,
    start: u64,
    len: u64,
}

impl<D> Window<D> {
    /// The window `[start, start + len)` of `dev`.
    pub fn new(dev: D, start: u64, len: u64) -> Self {
        Window { dev, start, len }
    }
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True for an empty window.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The device behind it.
    pub fn inner(&self) -> &D {
        &self.dev
    }

    fn clip(&self, n: usize, offset: u64) -> usize {
        let room = self.len.saturating_sub(offset);
        usize::try_from(room).map_or(n, |r| r.min(n))
    }
}

impl<D: ReadAt> ReadAt for Window<D> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let n = self.clip(buf.len(), offset);
        let Some(b) = buf.get_mut(..n) else {
            return Ok(0);
        };
        if n == 0 {
            return Ok(0);
        }
        self.dev.read_at(b, self.start.saturating_add(offset))
    }
}

impl<D: WriteAt> WriteAt for Window<D> {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<usize> {
        let n = self.clip(buf.len(), offset);
        match buf.get(..n) {
            Some(b) if n > 0 => self.dev.write_at(b, self.start.saturating_add(offset)),
            _ => Err(Error::message(format_args!(
                "write beyond the end of the partition (offset {offset})"
            ))),
        }
    }
}

/// A disk made of its boot areas only (zeros elsewhere), `size` bytes long: what a disk image
/// stores of the table, read back with [`Layout::read`] on restore.
#[derive(Debug, Clone, Default)]
pub struct AreasDisk {
    /// Disk size in bytes.
    pub size: u64,
    /// The areas with their bytes, by offset.
    pub areas: Vec<(Area, Vec<u8>)>,
}

impl ReadAt for AreasDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let n = usize::try_from(self.size.saturating_sub(offset))
            .map_or(buf.len(), |r| r.min(buf.len()));
        let Some(out) = buf.get_mut(..n) else {
            return Ok(0);
        };
        out.fill(0);
        let end = offset.saturating_add(n as u64);
        for (a, bytes) in &self.areas {
            let a_end = a.offset.saturating_add(bytes.len() as u64);
            let lo = a.offset.max(offset);
            let hi = a_end.min(end);
            if lo >= hi {
                continue;
            }
            let (Ok(src_lo), Ok(dst_lo), Ok(k)) = (
                usize::try_from(lo - a.offset),
                usize::try_from(lo - offset),
                usize::try_from(hi - lo),
            ) else {
                continue;
            };
            if let (Some(d), Some(s)) = (
                out.get_mut(dst_lo..dst_lo.saturating_add(k)),
                bytes.get(src_lo..src_lo.saturating_add(k)),
            ) {
                d.copy_from_slice(s);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests {
    use super::*;
    use crate::dev::mem::MemDev;
    use crate::disk::gpt::tests::gpt_disk;
    use crate::disk::mbr::tests::{dos_disk, put_entry};

    fn err(d: Vec<u8>, size: u64) -> String {
        std::format!("{}", Layout::read(&MemDev::new(d), size, 512).unwrap_err())
    }

    #[test]
    fn dos_layout() {
        let l = Layout::read(&MemDev::new(dos_disk()), 131072 * 512, 512).unwrap();
        assert_eq!(l.kind, TableKind::Dos);
        let n: Vec<_> = l
            .partitions
            .iter()
            .map(|p| (p.number, p.start / 512, p.len / 512))
            .collect();
        assert_eq!(
            n,
            vec![
                (1, 2048, 2048),
                (2, 4096, 1024),
                (5, 5122, 1000),
                (6, 6146, 2000)
            ]
        );
        let a: Vec<_> = l
            .areas
            .iter()
            .map(|a| (a.kind, a.offset / 512, a.len))
            .collect();
        assert_eq!(
            a,
            vec![
                (AreaKind::Head, 0, 2048 * 512),
                (AreaKind::Ebr, 5120, 512),
                (AreaKind::Ebr, 6144, 512)
            ]
        );
        assert_eq!(l.min_disk_size().unwrap(), 8146 * 512);
    }

    #[test]
    fn gpt_layout() {
        let d = gpt_disk(8192);
        let l = Layout::read(&MemDev::new(d.clone()), 8192 * 512, 512).unwrap();
        assert_eq!(l.kind, TableKind::Gpt);
        assert_eq!(l.partitions.len(), 2);
        assert_eq!(l.partitions[0].number, 1);
        let a: Vec<_> = l
            .areas
            .iter()
            .map(|a| (a.kind, a.offset / 512, a.len / 512))
            .collect();
        assert_eq!(
            a,
            vec![
                (AreaKind::Head, 0, 2048),
                (AreaKind::GptBackup, 8192 - 33, 33)
            ]
        );
        assert_eq!(l.min_disk_size().unwrap(), (6144 + 33) * 512);
        // The areas alone read back as the same layout.
        let ad = AreasDisk {
            size: 8192 * 512,
            areas: l
                .areas
                .iter()
                .map(|a| {
                    (
                        *a,
                        d[a.offset as usize..(a.offset + a.len) as usize].to_vec(),
                    )
                })
                .collect(),
        };
        assert_eq!(Layout::read(&ad, 8192 * 512, 512).unwrap(), l);
    }

    #[test]
    fn bad_layouts() {
        // A partition past the end of the disk.
        let mut d = dos_disk();
        put_entry(&mut d, 0, 3, 0x83, 200_000, 10);
        assert!(err(d, 131072 * 512).contains("beyond the end"));
        // Overlapping primaries.
        let mut d = dos_disk();
        put_entry(&mut d, 0, 1, 0x0C, 3000, 1024);
        assert!(err(d, 131072 * 512).contains("overlap"));
        // A primary over an EBR.
        let mut d = dos_disk();
        put_entry(&mut d, 0, 3, 0x83, 6100, 100);
        assert!(err(d, 131072 * 512).contains("overlap"));
        // A logical partition outside its extended partition.
        let mut d = dos_disk();
        put_entry(&mut d, 6144 * 512, 0, 0x07, 2, 20000);
        assert!(err(d, 131072 * 512).contains("outside its extended"));
        // Nothing listed.
        let mut d = vec![0u8; 4096];
        d[510] = 0x55;
        d[511] = 0xAA;
        assert!(err(d, 4096).contains("no partition"));
        // A file system at sector 0.
        let mut d = vec![0u8; 4096];
        d[3..11].copy_from_slice(b"NTFS    ");
        d[510] = 0x55;
        d[511] = 0xAA;
        d[0x1BE] = 0x33;
        assert!(err(d, 4096).contains("without --disk"));
        // GPT: the disk is smaller than the table says.
        assert!(err(gpt_disk(8192), 6000 * 512).contains("GPT"));
    }

    #[test]
    fn window_bounds() {
        let dev = MemDev::new((0..100u8).collect());
        let w = Window::new(&dev, 10, 20);
        let mut b = [0u8; 30];
        assert_eq!(w.read_at(&mut b, 0).unwrap(), 20);
        assert_eq!(b[0], 10);
        assert_eq!(w.read_at(&mut b, 25).unwrap(), 0);
        let mut m = MemDev::new(vec![0; 100]);
        let mut w = Window::new(&mut m, 10, 20);
        assert_eq!(w.write_at(&[1; 30], 15).unwrap(), 5);
        assert!(w.write_at(&[1], 20).is_err());
    }
}
