//! DOS disk labels (MBR partition tables): four primary entries in sector 0, logical partitions
//! in a chain of extended boot records (EBRs) inside the extended partition, and the disk
//! signature. Also read as the protective MBR of a GPT disk.
//!
//! Sector 0 layout: boot code (0..0x1B8), disk signature (le32 at 0x1B8), two bytes, four
//! 16-byte entries at 0x1BE (boot indicator, CHS start, type, CHS end, le32 first LBA, le32
//! sector count), 0x55 0xAA at 0x1FE. An EBR has the same layout: its first entry is the
//! logical partition (start relative to the EBR), its second the link to the next EBR (start
//! relative to the extended partition).
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

/// Offset of the le32 disk signature in sector 0.
pub const SIGNATURE_OFFSET: usize = 0x1B8;
/// Offset of the four partition entries.
pub const TABLE_OFFSET: usize = 0x1BE;
/// Size of one entry.
pub const ENTRY_SIZE: usize = 16;
/// Offset of the 0x55 0xAA boot signature.
pub const BOOT_SIG_OFFSET: usize = 0x1FE;
/// Partition type of a GPT's protective MBR entry.
pub const TYPE_GPT_PROTECTIVE: u8 = 0xEE;
/// Most logical partitions followed in an EBR chain (Linux numbers them 5..).
pub const MAX_LOGICAL: usize = 128;

/// One 16-byte partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Boot indicator: 0x00 or 0x80.
    pub boot: u8,
    /// Partition type (0 = unused).
    pub kind: u8,
    /// First sector, relative to whatever the table says it is relative to.
    pub start: u32,
    /// Number of sectors.
    pub sectors: u32,
}

impl Entry {
    /// Entry `i` (0..4) of a table sector; `at` is the sector's byte offset (for messages).
    fn parse(sector: &[u8], i: usize, at: u64) -> Result<Entry> {
        let off = TABLE_OFFSET + i * ENTRY_SIZE;
        let e: [u8; ENTRY_SIZE] = le::bytes(sector, off)
            .ok_or_else(|| Error::corrupt(format_args!("partition table"), "truncated", at))?;
        let [boot, _, _, _, kind, _, _, _, s0, s1, s2, s3, n0, n1, n2, n3] = e;
        if boot != 0 && boot != 0x80 {
            return Err(Error::corrupt(
                format_args!("partition table entry {}", i + 1),
                "invalid boot indicator (not a partition table)",
                at + off as u64,
            ));
        }
        Ok(Entry {
            boot,
            kind,
            start: u32::from_le_bytes([s0, s1, s2, s3]),
            sectors: u32::from_le_bytes([n0, n1, n2, n3]),
        })
    }

    /// True for an unused entry (type 0 or no sectors).
    pub fn is_empty(&self) -> bool {
        self.kind == 0 || self.sectors == 0
    }

    /// True for an extended partition entry (CHS, LBA or Linux extended).
    pub fn is_extended(&self) -> bool {
        matches!(self.kind, 0x05 | 0x0F | 0x85)
    }
}

/// The four entries of a table sector (sector 0 or an EBR), after checking its 0x55 0xAA
/// signature and boot indicators. `at` is the sector's byte offset on the disk (for messages).
pub fn entries(sector: &[u8], at: u64) -> Result<[Entry; 4]> {
    if le::bytes::<2>(sector, BOOT_SIG_OFFSET) != Some([0x55, 0xAA]) {
        return Err(Error::corrupt(
            format_args!("partition table"),
            "no 0x55AA signature (no partition table)",
            at + BOOT_SIG_OFFSET as u64,
        ));
    }
    Ok([
        Entry::parse(sector, 0, at)?,
        Entry::parse(sector, 1, at)?,
        Entry::parse(sector, 2, at)?,
        Entry::parse(sector, 3, at)?,
    ])
}

/// The disk signature of sector 0.
pub fn signature(sector0: &[u8]) -> u32 {
    le::u32_at(sector0, SIGNATURE_OFFSET).unwrap_or(0)
}

/// Sets the disk signature of sector 0 (`sector0` must hold at least 512 bytes).
pub fn set_signature(sector0: &mut [u8], sig: u32) -> bool {
    le::put(sector0, SIGNATURE_OFFSET, &sig.to_le_bytes())
}

/// A logical partition found through the EBR chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logical {
    /// Sector of the EBR that describes it.
    pub ebr_lba: u64,
    /// First sector of the partition (absolute).
    pub start: u64,
    /// Number of sectors.
    pub sectors: u64,
    /// Partition type.
    pub kind: u8,
}

/// A parsed DOS label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DosLabel {
    /// Disk signature (le32 at 0x1B8).
    pub signature: u32,
    /// The four primary entries (partition numbers 1..4).
    pub primary: [Entry; 4],
    /// Logical partitions in chain order (partition numbers 5..).
    pub logical: Vec<Logical>,
    /// Every EBR sector visited (boot areas to copy), in chain order.
    pub ebrs: Vec<u64>,
}

/// Reads a DOS label from sector 0 of `dev` and follows the EBR chain of its extended
/// partition, if any. `disk_sectors` bounds every sector read. Loop-safe: a chain that
/// revisits an EBR, leaves the extended partition or has more than [`MAX_LOGICAL`] entries is
/// an error.
pub fn read<D: ReadAt + ?Sized>(dev: &D, sector_size: u32, disk_sectors: u64) -> Result<DosLabel> {
    let ss = u64::from(sector_size);
    let mut sector = vec![0u8; usize::try_from(sector_size).unwrap_or(512).max(512)];
    dev.read_exact_at(&mut sector, 0)?;
    let primary = entries(&sector, 0)?;
    let signature = signature(&sector);
    let mut ext: Option<(u64, u64, usize)> = None;
    for (i, e) in primary.iter().enumerate() {
        if e.is_extended() && !e.is_empty() {
            if ext.is_some() {
                return Err(Error::corrupt(
                    format_args!("partition table entry {}", i + 1),
                    "second extended partition",
                    (TABLE_OFFSET + i * ENTRY_SIZE) as u64,
                ));
            }
            ext = Some((u64::from(e.start), u64::from(e.sectors), i));
        }
    }
    let mut logical = Vec::new();
    let mut ebrs: Vec<u64> = Vec::new();
    if let Some((ext_start, ext_len, ext_index)) = ext {
        let ext_end = ext_start.saturating_add(ext_len).min(disk_sectors);
        let mut ebr = ext_start;
        loop {
            let at = ebr.saturating_mul(ss);
            if ebr < ext_start || ebr >= ext_end || ebr == 0 {
                return Err(Error::corrupt(
                    format_args!("extended partition {}", ext_index + 1),
                    "EBR outside the extended partition",
                    at,
                ));
            }
            if ebrs.contains(&ebr) {
                return Err(Error::corrupt(
                    format_args!("EBR chain of extended partition {}", ext_index + 1),
                    "loops back to an EBR already read",
                    at,
                ));
            }
            if ebrs.len() >= MAX_LOGICAL {
                return Err(Error::corrupt(
                    format_args!("EBR chain of extended partition {}", ext_index + 1),
                    "more than 128 logical partitions",
                    at,
                ));
            }
            ebrs.push(ebr);
            dev.read_exact_at(&mut sector, at)?;
            let [this, next, ..] = entries(&sector, at)?;
            if !this.is_empty() {
                logical.push(Logical {
                    ebr_lba: ebr,
                    start: ebr.saturating_add(u64::from(this.start)),
                    sectors: u64::from(this.sectors),
                    kind: this.kind,
                });
            }
            if next.is_empty() {
                break;
            }
            ebr = ext_start.saturating_add(u64::from(next.start));
        }
    }
    Ok(DosLabel {
        signature,
        primary,
        logical,
        ebrs,
    })
}

/// True when sector 0's table has a GPT protective entry (type 0xEE), possibly among others
/// (a hybrid MBR).
pub fn is_protective(primary: &[Entry; 4]) -> bool {
    primary.iter().any(|e| e.kind == TYPE_GPT_PROTECTIVE)
}

/// Updates the protective entry of a GPT disk's sector 0 to cover a disk of `disk_sectors`
/// sectors (as `sgdisk -e` does when the backup GPT moves): the 0xEE entry that starts at
/// LBA 1 gets `min(disk_sectors - 1, 0xFFFFFFFF)` sectors. Returns false when there is no
/// such entry (nothing changed).
pub fn set_protective_size(sector0: &mut [u8], disk_sectors: u64) -> bool {
    let size = u32::try_from(disk_sectors.saturating_sub(1)).unwrap_or(u32::MAX);
    for i in 0..4 {
        let off = TABLE_OFFSET + i * ENTRY_SIZE;
        let kind = sector0.get(off + 4).copied();
        let start = le::u32_at(sector0, off + 8);
        if kind == Some(TYPE_GPT_PROTECTIVE) && start == Some(1) {
            return le::put(sector0, off + 12, &size.to_le_bytes());
        }
    }
    false
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

    /// Writes entry `i` of the table sector at byte `at` of `d`.
    pub(crate) fn put_entry(d: &mut [u8], at: usize, i: usize, kind: u8, start: u32, n: u32) {
        let off = at + TABLE_OFFSET + i * ENTRY_SIZE;
        d[off + 4] = kind;
        d[off + 8..off + 12].copy_from_slice(&start.to_le_bytes());
        d[off + 12..off + 16].copy_from_slice(&n.to_le_bytes());
        d[at + BOOT_SIG_OFFSET] = 0x55;
        d[at + BOOT_SIG_OFFSET + 1] = 0xAA;
    }

    /// A 64 MiB-sector disk image in memory (only the first 16 MiB stored) with two primaries
    /// and an extended partition holding two logical ones.
    pub(crate) fn dos_disk() -> Vec<u8> {
        let mut d = vec![0u8; 8192 * 512];
        d[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        put_entry(&mut d, 0, 0, 0x07, 2048, 2048);
        put_entry(&mut d, 0, 1, 0x0C, 4096, 1024);
        put_entry(&mut d, 0, 2, 0x05, 5120, 3072);
        // EBR 1 at 5120: logical at +2 sectors, link to the EBR at ext+1024.
        put_entry(&mut d, 5120 * 512, 0, 0x83, 2, 1000);
        put_entry(&mut d, 5120 * 512, 1, 0x05, 1024, 1024);
        // EBR 2 at 6144: logical at +2, end of chain.
        put_entry(&mut d, 6144 * 512, 0, 0x07, 2, 2000);
        d
    }

    #[test]
    fn primary_and_logical_partitions() {
        let l = read(&MemDev::new(dos_disk()), 512, 131072).unwrap();
        assert_eq!(l.signature, 0x1234_5678);
        assert_eq!(l.primary[0].kind, 0x07);
        assert_eq!(l.primary[1].start, 4096);
        assert!(l.primary[2].is_extended());
        assert!(l.primary[3].is_empty());
        assert_eq!(l.ebrs, vec![5120, 6144]);
        assert_eq!(
            l.logical,
            vec![
                Logical {
                    ebr_lba: 5120,
                    start: 5122,
                    sectors: 1000,
                    kind: 0x83
                },
                Logical {
                    ebr_lba: 6144,
                    start: 6146,
                    sectors: 2000,
                    kind: 0x07
                },
            ]
        );
    }

    /// Each mutation reaches its own error.
    #[test]
    fn bad_labels_are_refused() {
        type Mutation = fn(&mut Vec<u8>);
        let cases: [(&str, Mutation, &str); 6] = [
            ("no signature", |d| d[0x1FF] = 0, "0x55AA"),
            ("boot flag", |d| d[TABLE_OFFSET] = 0x12, "boot indicator"),
            (
                "two extended",
                |d| put_entry(d, 0, 3, 0x0F, 7000, 100),
                "second extended",
            ),
            (
                "loop",
                |d| put_entry(d, 6144 * 512, 1, 0x05, 0, 10),
                "loops",
            ),
            (
                "outside",
                |d| put_entry(d, 6144 * 512, 1, 0x05, 5000, 10),
                "outside the extended",
            ),
            ("EBR signature", |d| d[6144 * 512 + 0x1FE] = 0, "0x55AA"),
        ];
        for (name, mutate, want) in cases {
            let mut d = dos_disk();
            mutate(&mut d);
            let e = read(&MemDev::new(d), 512, 131072).unwrap_err();
            let msg = std::format!("{e}");
            assert!(msg.contains(want), "{name}: {msg}");
        }
    }

    #[test]
    fn long_chain_is_bounded() {
        // An extended partition with 200 EBRs, each linking to the next.
        let mut d = vec![0u8; 512 * 600];
        put_entry(&mut d, 0, 0, 0x05, 100, 400);
        for k in 0..200u32 {
            let at = (100 + 2 * k) as usize * 512;
            put_entry(&mut d, at, 0, 0x83, 1, 1);
            put_entry(&mut d, at, 1, 0x05, 2 * (k + 1), 2);
        }
        let e = read(&MemDev::new(d), 512, 600).unwrap_err();
        assert!(std::format!("{e}").contains("more than 128"), "{e}");
    }

    #[test]
    fn protective_size_and_signature() {
        let mut s = vec![0u8; 512];
        put_entry(&mut s, 0, 0, TYPE_GPT_PROTECTIVE, 1, 1000);
        assert!(is_protective(&entries(&s, 0).unwrap()));
        assert!(set_protective_size(&mut s, 5000));
        assert_eq!(entries(&s, 0).unwrap()[0].sectors, 4999);
        assert!(set_protective_size(&mut s, 1 << 40));
        assert_eq!(entries(&s, 0).unwrap()[0].sectors, u32::MAX);
        assert!(set_signature(&mut s, 0xCAFE));
        assert_eq!(signature(&s), 0xCAFE);
        assert!(!set_protective_size(&mut vec![0u8; 512], 10));
    }
}
