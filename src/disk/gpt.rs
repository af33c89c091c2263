//! GUID partition tables (UEFI specification, chapter 5): a protective MBR in LBA 0, the
//! primary header in LBA 1 followed by the entry array, and a backup entry array and header at
//! the end of the disk. Both headers carry a CRC32 of themselves and of the entry array.
//!
//! Reading prefers the primary; when it is damaged and the backup is good, the backup is used
//! and a warning says so. The entry array is bounded ([`MAX_ENTRIES_BYTES`]) before anything
//! is allocated. [`Gpt::encode`] rebuilds both copies for a disk of any size (large enough),
//! moving the backup to the disk's end and the last usable LBA with it, as `sgdisk -e` does.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::{le, Guid, IdGen};
use crate::dev::ReadAt;
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// Header signature.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// Revision 1.0.
pub const REVISION: u32 = 0x0001_0000;
/// Size of the header fields (what the CRC covers in headers we write).
pub const HEADER_SIZE: u32 = 92;
/// Largest entry array read: 1 MiB (the usual array is 128 entries of 128 bytes, 16 KiB).
pub const MAX_ENTRIES_BYTES: u64 = 1 << 20;
/// Smallest entry size.
pub const MIN_ENTRY_SIZE: u32 = 128;

const OFF_REVISION: usize = 8;
const OFF_HEADER_SIZE: usize = 12;
const OFF_HEADER_CRC: usize = 16;
const OFF_MY_LBA: usize = 24;
const OFF_ALTERNATE_LBA: usize = 32;
const OFF_FIRST_USABLE: usize = 40;
const OFF_LAST_USABLE: usize = 48;
const OFF_DISK_GUID: usize = 56;
const OFF_ENTRIES_LBA: usize = 72;
const OFF_NUM_ENTRIES: usize = 80;
const OFF_ENTRY_SIZE: usize = 84;
const OFF_ENTRIES_CRC: usize = 88;

/// A GPT header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Revision (1.0 = 0x00010000).
    pub revision: u32,
    /// Header size in bytes (92 ..= sector size).
    pub header_size: u32,
    /// LBA of this header.
    pub my_lba: u64,
    /// LBA of the other header.
    pub alternate_lba: u64,
    /// First LBA a partition may use.
    pub first_usable: u64,
    /// Last LBA a partition may use.
    pub last_usable: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// First LBA of this copy's entry array.
    pub entries_lba: u64,
    /// Number of entries.
    pub num_entries: u32,
    /// Size of one entry (128 · 2^n).
    pub entry_size: u32,
    /// CRC32 of the entry array (`num_entries · entry_size` bytes).
    pub entries_crc: u32,
}

impl Header {
    /// Parses and checks the header in `sector`, expected at `lba` of a disk of `disk_sectors`
    /// sectors of `sector_size` bytes. The problem is returned as a short text.
    pub fn parse(
        sector: &[u8],
        lba: u64,
        disk_sectors: u64,
        sector_size: u32,
    ) -> core::result::Result<Header, &'static str> {
        if le::bytes::<8>(sector, 0) != Some(SIGNATURE) {
            return Err("no GPT signature");
        }
        let f32 = |off| le::u32_at(sector, off).ok_or("truncated header");
        let f64 = |off| le::u64_at(sector, off).ok_or("truncated header");
        let header_size = f32(OFF_HEADER_SIZE)?;
        if header_size < HEADER_SIZE || header_size > sector_size {
            return Err("header size out of range");
        }
        let hs = usize::try_from(header_size).map_err(|_| "header size out of range")?;
        let mut copy = sector.get(..hs).ok_or("truncated header")?.to_vec();
        le::put(&mut copy, OFF_HEADER_CRC, &[0; 4]);
        if crc32fast::hash(&copy) != f32(OFF_HEADER_CRC)? {
            return Err("header checksum mismatch");
        }
        let h = Header {
            revision: f32(OFF_REVISION)?,
            header_size,
            my_lba: f64(OFF_MY_LBA)?,
            alternate_lba: f64(OFF_ALTERNATE_LBA)?,
            first_usable: f64(OFF_FIRST_USABLE)?,
            last_usable: f64(OFF_LAST_USABLE)?,
            disk_guid: le::bytes(sector, OFF_DISK_GUID).ok_or("truncated header")?,
            entries_lba: f64(OFF_ENTRIES_LBA)?,
            num_entries: f32(OFF_NUM_ENTRIES)?,
            entry_size: f32(OFF_ENTRY_SIZE)?,
            entries_crc: f32(OFF_ENTRIES_CRC)?,
        };
        if h.my_lba != lba {
            return Err("header is not where it says it is");
        }
        if h.entry_size < MIN_ENTRY_SIZE
            || !(h.entry_size / MIN_ENTRY_SIZE).is_power_of_two()
            || h.entry_size % MIN_ENTRY_SIZE != 0
        {
            return Err("entry size out of range");
        }
        if h.num_entries == 0 || h.entries_bytes() > MAX_ENTRIES_BYTES {
            return Err("entry array too large");
        }
        if h.first_usable > h.last_usable || h.last_usable >= disk_sectors || h.first_usable < 2 {
            return Err("usable area out of range");
        }
        let n = h.entries_sectors(sector_size);
        let entries_end = h
            .entries_lba
            .checked_add(n)
            .ok_or("entry array out of range")?;
        let in_usable = h.entries_lba <= h.last_usable && entries_end > h.first_usable;
        if h.entries_lba < 2 || entries_end > disk_sectors || in_usable {
            return Err("entry array out of range");
        }
        if h.alternate_lba >= disk_sectors || h.alternate_lba == h.my_lba {
            return Err("alternate header LBA out of range");
        }
        Ok(h)
    }

    /// Bytes of the entry array.
    pub fn entries_bytes(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// Sectors of the entry array.
    pub fn entries_sectors(&self, sector_size: u32) -> u64 {
        self.entries_bytes().div_ceil(u64::from(sector_size.max(1)))
    }

    /// The header as a sector of `sector_size` bytes, its CRC computed (header size 92,
    /// the rest of the sector zero).
    pub fn to_sector(&self, sector_size: u32) -> Vec<u8> {
        let mut s = vec![0u8; usize::try_from(sector_size).unwrap_or(512).max(512)];
        le::put(&mut s, 0, &SIGNATURE);
        le::put(&mut s, OFF_REVISION, &self.revision.to_le_bytes());
        le::put(&mut s, OFF_HEADER_SIZE, &HEADER_SIZE.to_le_bytes());
        le::put(&mut s, OFF_MY_LBA, &self.my_lba.to_le_bytes());
        le::put(&mut s, OFF_ALTERNATE_LBA, &self.alternate_lba.to_le_bytes());
        le::put(&mut s, OFF_FIRST_USABLE, &self.first_usable.to_le_bytes());
        le::put(&mut s, OFF_LAST_USABLE, &self.last_usable.to_le_bytes());
        le::put(&mut s, OFF_DISK_GUID, &self.disk_guid);
        le::put(&mut s, OFF_ENTRIES_LBA, &self.entries_lba.to_le_bytes());
        le::put(&mut s, OFF_NUM_ENTRIES, &self.num_entries.to_le_bytes());
        le::put(&mut s, OFF_ENTRY_SIZE, &self.entry_size.to_le_bytes());
        le::put(&mut s, OFF_ENTRIES_CRC, &self.entries_crc.to_le_bytes());
        let crc = crc32fast::hash(s.get(..92).unwrap_or(&[]));
        le::put(&mut s, OFF_HEADER_CRC, &crc.to_le_bytes());
        s
    }
}

/// One used entry of the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Index in the array (the partition number is `index + 1`).
    pub index: u32,
    /// Partition type GUID (never zero here).
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
}

/// Which copy of the table a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// The primary header or entries.
    Primary,
    /// The backup header or entries.
    Backup,
}

/// A damaged copy that was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Which copy.
    pub copy: Copy,
    /// What is wrong with it.
    pub what: &'static str,
}

impl core::fmt::Display for Damage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.copy {
            Copy::Primary => write!(
                f,
                "the primary GPT is damaged ({}): using the backup GPT",
                self.what
            ),
            Copy::Backup => write!(
                f,
                "the backup GPT is damaged ({}): it will be rewritten from the primary",
                self.what
            ),
        }
    }
}

/// A GPT read from a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// Sector size the table was read with.
    pub sector_size: u32,
    /// The header used (primary, or backup when the primary is damaged).
    pub header: Header,
    /// The entry array of the copy used (`header.entries_bytes()` bytes).
    pub entries: Vec<u8>,
    /// LBA of the primary entry array in the copy written back (the primary's own when it was
    /// good, LBA 2 otherwise).
    pub primary_entries_lba: u64,
    /// The copy that was not used, when damaged.
    pub damage: Option<Damage>,
    /// LBAs of a good backup copy as found (first sector of its entry array, its header),
    /// whether or not it is the copy used.
    pub backup_at: Option<(u64, u64)>,
}

/// Reads one copy (header at `lba`) with its entries.
fn read_copy<D: ReadAt + ?Sized>(
    dev: &D,
    lba: u64,
    disk_sectors: u64,
    sector_size: u32,
) -> core::result::Result<(Header, Vec<u8>), &'static str> {
    let ss = u64::from(sector_size);
    let mut sector = vec![0u8; usize::try_from(sector_size).map_err(|_| "sector size")?];
    let at = lba.checked_mul(ss).ok_or("header out of range")?;
    if lba >= disk_sectors || dev.read_exact_at(&mut sector, at).is_err() {
        return Err("header cannot be read");
    }
    let h = Header::parse(&sector, lba, disk_sectors, sector_size)?;
    // Bounded by MAX_ENTRIES_BYTES in Header::parse.
    let mut entries = vec![0u8; usize::try_from(h.entries_bytes()).map_err(|_| "entry array")?];
    let at = h
        .entries_lba
        .checked_mul(ss)
        .ok_or("entry array out of range")?;
    if dev.read_exact_at(&mut entries, at).is_err() {
        return Err("entry array cannot be read");
    }
    if crc32fast::hash(&entries) != h.entries_crc {
        return Err("entry array checksum mismatch");
    }
    Ok((h, entries))
}

impl Gpt {
    /// Reads the GPT of a disk of `disk_sectors` sectors (primary first, backup at the primary's
    /// alternate LBA, or at the last sector when the primary is damaged).
    pub fn read<D: ReadAt + ?Sized>(dev: &D, disk_sectors: u64, sector_size: u32) -> Result<Gpt> {
        if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(Error::message(format_args!(
                "unsupported logical sector size {sector_size}"
            )));
        }
        let last = disk_sectors.saturating_sub(1);
        let primary = read_copy(dev, 1, disk_sectors, sector_size);
        let backup_lba = match &primary {
            Ok((h, _)) => h.alternate_lba,
            Err(_) => last,
        };
        let backup = read_copy(dev, backup_lba, disk_sectors, sector_size);
        let backup_at = backup.as_ref().ok().map(|(h, _)| (h.entries_lba, h.my_lba));
        let (header, entries, primary_entries_lba, damage) = match (primary, backup) {
            (Ok((h, e)), Ok(_)) => (h, e, h.entries_lba, None),
            (Ok((h, e)), Err(what)) => {
                let d = Damage {
                    copy: Copy::Backup,
                    what,
                };
                (h, e, h.entries_lba, Some(d))
            }
            (Err(what), Ok((h, e))) => {
                let d = Damage {
                    copy: Copy::Primary,
                    what,
                };
                (h, e, 2, Some(d))
            }
            (Err(what), Err(_)) => {
                return Err(Error::corrupt(
                    format_args!("GPT header at LBA 1 (and its backup)"),
                    what,
                    u64::from(sector_size),
                ))
            }
        };
        let gpt = Gpt {
            sector_size,
            header,
            entries,
            primary_entries_lba,
            damage,
            backup_at,
        };
        if primary_entries_lba.saturating_add(header.entries_sectors(sector_size))
            > header.first_usable
        {
            return Err(Error::corrupt(
                format_args!("GPT"),
                "primary entry array does not fit before the first usable LBA",
                primary_entries_lba.saturating_mul(u64::from(sector_size)),
            ));
        }
        Ok(gpt)
    }

    /// The used entries (type GUID not zero), in array order. Entries are checked: first ≤
    /// last, inside the usable area.
    pub fn partitions(&self) -> Result<Vec<Entry>> {
        let es = usize::try_from(self.header.entry_size).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let base = self
            .header
            .entries_lba
            .saturating_mul(u64::from(self.sector_size));
        for (i, e) in self.entries.chunks_exact(es).enumerate() {
            let type_guid: Guid = le::bytes(e, 0).unwrap_or_default();
            if type_guid == [0; 16] {
                continue;
            }
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let first_lba = le::u64_at(e, 32).unwrap_or(0);
            let last_lba = le::u64_at(e, 40).unwrap_or(0);
            let at = base.saturating_add((i as u64).saturating_mul(es as u64));
            if first_lba > last_lba {
                return Err(Error::corrupt(
                    format_args!("GPT entry {} (partition {})", i, i + 1),
                    "ends before it starts",
                    at,
                ));
            }
            if first_lba < self.header.first_usable || last_lba > self.header.last_usable {
                return Err(Error::corrupt(
                    format_args!("GPT entry {} (partition {})", i, i + 1),
                    "outside the usable area of the disk",
                    at,
                ));
            }
            out.push(Entry {
                index,
                type_guid,
                unique_guid: le::bytes(e, 16).unwrap_or_default(),
                first_lba,
                last_lba,
                attributes: le::u64_at(e, 48).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Smallest disk (in sectors) that holds every partition and a backup table after them.
    pub fn min_disk_sectors(&self) -> Result<u64> {
        let last = self
            .partitions()?
            .iter()
            .map(|e| e.last_lba)
            .max()
            .unwrap_or(self.header.first_usable.saturating_sub(1));
        Ok(last
            .saturating_add(1)
            .max(self.header.first_usable)
            .saturating_add(self.header.entries_sectors(self.sector_size))
            .saturating_add(1))
    }

    /// New disk GUID and new unique GUIDs for every used entry (the entry CRC follows).
    pub fn new_ids(&mut self, ids: &mut IdGen) {
        self.header.disk_guid = ids.guid();
        let es = usize::try_from(self.header.entry_size).unwrap_or(usize::MAX);
        for e in self.entries.chunks_exact_mut(es) {
            if le::bytes::<16>(e, 0).unwrap_or_default() != [0; 16] {
                le::put(e, 16, &ids.guid());
            }
        }
        self.header.entries_crc = crc32fast::hash(&self.entries);
    }

    /// Both copies of the table for a disk of `disk_sectors` sectors: the backup at the end,
    /// the last usable LBA just before the backup entry array, partitions unchanged, CRCs
    /// recomputed. Fails when a partition would not fit.
    pub fn encode(&self, disk_sectors: u64) -> Result<Encoded> {
        let ss = self.sector_size;
        let need = self.min_disk_sectors()?;
        if disk_sectors < need {
            return Err(Error::message(format_args!(
                "the disk has {} bytes, the partition table needs {} bytes",
                disk_sectors.saturating_mul(u64::from(ss)),
                need.saturating_mul(u64::from(ss))
            )));
        }
        let n = self.header.entries_sectors(ss);
        let backup_lba = disk_sectors.saturating_sub(1);
        let backup_entries_lba = backup_lba.saturating_sub(n);
        let last_usable = backup_entries_lba.saturating_sub(1);
        let primary = Header {
            revision: self.header.revision,
            header_size: HEADER_SIZE,
            my_lba: 1,
            alternate_lba: backup_lba,
            first_usable: self.header.first_usable,
            last_usable,
            disk_guid: self.header.disk_guid,
            entries_lba: self.primary_entries_lba,
            num_entries: self.header.num_entries,
            entry_size: self.header.entry_size,
            entries_crc: self.header.entries_crc,
        };
        let backup = Header {
            my_lba: backup_lba,
            alternate_lba: 1,
            entries_lba: backup_entries_lba,
            ..primary
        };
        let mut entries = self.entries.clone();
        let sectors_bytes = usize::try_from(n.saturating_mul(u64::from(ss))).unwrap_or(0);
        entries.resize(sectors_bytes.max(entries.len()), 0);
        Ok(Encoded {
            primary_header: primary.to_sector(ss),
            primary_entries_lba: self.primary_entries_lba,
            entries,
            backup_entries_lba,
            backup_header: backup.to_sector(ss),
            backup_lba,
        })
    }
}

/// Both copies of a GPT, ready to write (see [`Gpt::encode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The primary header sector (LBA 1).
    pub primary_header: Vec<u8>,
    /// LBA of the primary entry array.
    pub primary_entries_lba: u64,
    /// The entry array, padded to whole sectors (written at both entry LBAs).
    pub entries: Vec<u8>,
    /// LBA of the backup entry array.
    pub backup_entries_lba: u64,
    /// The backup header sector.
    pub backup_header: Vec<u8>,
    /// LBA of the backup header (the last sector).
    pub backup_lba: u64,
}

impl Encoded {
    /// The writes to make, as `(LBA, bytes)`, in disk order.
    pub fn writes(&self) -> [(u64, &[u8]); 4] {
        [
            (1, &self.primary_header),
            (self.primary_entries_lba, &self.entries),
            (self.backup_entries_lba, &self.entries),
            (self.backup_lba, &self.backup_header),
        ]
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
    use crate::dev::WriteAt;

    /// Basic data partition type.
    pub(crate) const BASIC_DATA: Guid = [
        0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99,
        0xC7,
    ];

    /// A GPT disk of `sectors` 512-byte sectors in memory with two partitions (2048..4095 and
    /// 4096..6143), written through [`Gpt::encode`] from a hand-made header.
    pub(crate) fn gpt_disk(sectors: u64) -> Vec<u8> {
        let mut entries = vec![0u8; 128 * 128];
        for (i, (a, b)) in [(2048u64, 4095u64), (4096, 6143)].into_iter().enumerate() {
            let e = &mut entries[i * 128..(i + 1) * 128];
            e[..16].copy_from_slice(&BASIC_DATA);
            e[16] = i as u8 + 1;
            e[32..40].copy_from_slice(&a.to_le_bytes());
            e[40..48].copy_from_slice(&b.to_le_bytes());
        }
        let header = Header {
            revision: REVISION,
            header_size: HEADER_SIZE,
            my_lba: 1,
            alternate_lba: sectors - 1,
            first_usable: 34,
            last_usable: sectors - 34,
            disk_guid: [7; 16],
            entries_lba: 2,
            num_entries: 128,
            entry_size: 128,
            entries_crc: crc32fast::hash(&entries),
        };
        let g = Gpt {
            sector_size: 512,
            header,
            entries,
            primary_entries_lba: 2,
            damage: None,
            backup_at: None,
        };
        let mut d = MemDev::new(vec![0u8; (sectors * 512) as usize]);
        crate::disk::mbr::tests::put_entry(&mut d.data, 0, 0, 0xEE, 1, (sectors - 1) as u32);
        for (lba, b) in g.encode(sectors).unwrap().writes() {
            d.write_all_at(b, lba * 512).unwrap();
        }
        d.data
    }

    #[test]
    fn read_back_what_encode_wrote() {
        let d = gpt_disk(8192);
        let g = Gpt::read(&MemDev::new(d), 8192, 512).unwrap();
        assert_eq!(g.damage, None);
        assert_eq!(g.header.last_usable, 8192 - 34);
        let p = g.partitions().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].index, p[1].first_lba, p[1].last_lba), (1, 4096, 6143));
        assert_eq!(g.min_disk_sectors().unwrap(), 6144 + 33);
    }

    #[test]
    fn damaged_primary_falls_back_to_the_backup() {
        // Header CRC, signature, entry CRC: each one makes the backup be used.
        for at in [512 + 16, 512, 1024 + 40, 512 + 80] {
            let mut d = gpt_disk(8192);
            d[at] ^= 0x01;
            let g = Gpt::read(&MemDev::new(d), 8192, 512).unwrap();
            let dmg = g.damage.unwrap();
            assert_eq!(dmg.copy, Copy::Primary, "byte {at}");
            assert_eq!(g.header.my_lba, 8191);
            assert_eq!(g.primary_entries_lba, 2);
            assert_eq!(g.partitions().unwrap().len(), 2);
        }
        let mut d = gpt_disk(8192);
        d[8191 * 512 + 20] ^= 1;
        let g = Gpt::read(&MemDev::new(d), 8192, 512).unwrap();
        assert_eq!(g.damage.unwrap().copy, Copy::Backup);
        assert_eq!(g.header.my_lba, 1);
    }

    /// Rewrites the primary header of `d` after `f` changed its fields (CRC kept valid), so that
    /// the field checks (not the CRC) are what fails; the backup is destroyed.
    fn with_header(f: impl Fn(&mut Header)) -> String {
        let mut d = gpt_disk(8192);
        let mut h = Header::parse(&d[512..1024], 1, 8192, 512).unwrap();
        f(&mut h);
        let s = h.to_sector(512);
        d[512..1024].copy_from_slice(&s);
        d[8191 * 512] = 0;
        match Gpt::read(&MemDev::new(d), 8192, 512) {
            Ok(g) => match g.partitions() {
                Ok(_) => "ok".into(),
                Err(e) => std::format!("{e}"),
            },
            Err(e) => std::format!("{e}"),
        }
    }

    #[test]
    fn each_header_check() {
        type Mutation = fn(&mut Header);
        let cases: [(Mutation, &str); 9] = [
            (|h| h.my_lba = 2, "not where it says"),
            (|h| h.entry_size = 100, "entry size"),
            (|h| h.entry_size = 384, "entry size"),
            (|h| h.num_entries = u32::MAX, "entry array too large"),
            (|h| h.num_entries = 0, "entry array too large"),
            (|h| h.last_usable = 9000, "usable area"),
            (|h| h.entries_lba = 40, "entry array out of range"),
            (|h| h.alternate_lba = 1 << 40, "alternate header"),
            (|h| h.first_usable = 10, "entry array out of range"),
        ];
        for (f, want) in cases {
            let got = with_header(f);
            assert!(got.contains(want), "want {want}: {got}");
        }
        assert!(with_header(|h| h.first_usable = 3000).contains("outside the usable area"));
        assert_eq!(with_header(|_| ()), "ok");
    }

    #[test]
    fn both_copies_damaged_is_an_error() {
        let mut d = gpt_disk(8192);
        d[512 + 30] ^= 1;
        d[8191 * 512 + 30] ^= 1;
        let e = Gpt::read(&MemDev::new(d), 8192, 512).unwrap_err();
        assert!(std::format!("{e}").contains("checksum"), "{e}");
    }

    #[test]
    fn relocation_to_a_larger_disk() {
        let d = gpt_disk(8192);
        let g = Gpt::read(&MemDev::new(d.clone()), 8192, 512).unwrap();
        let enc = g.encode(20000).unwrap();
        let mut big = MemDev::new(vec![0u8; 20000 * 512]);
        big.data[..8192 * 512 - 33 * 512].copy_from_slice(&d[..8192 * 512 - 33 * 512]);
        for (lba, b) in enc.writes() {
            big.write_all_at(b, lba * 512).unwrap();
        }
        let g2 = Gpt::read(&big, 20000, 512).unwrap();
        assert_eq!(g2.damage, None);
        assert_eq!(g2.header.last_usable, 20000 - 34);
        assert_eq!(g2.header.alternate_lba, 19999);
        assert_eq!(g2.partitions().unwrap(), g.partitions().unwrap());
        // Same size: the bytes come back as they were.
        let same = g.encode(8192).unwrap();
        assert_eq!(same.primary_header, d[512..1024]);
        assert_eq!(same.backup_header, d[8191 * 512..]);
        // Too small: refused with both sizes.
        let e = g.encode(6000).unwrap_err();
        assert!(std::format!("{e}").contains("3072000"), "{e}");
    }

    #[test]
    fn new_ids_keep_the_table_valid() {
        let d = gpt_disk(8192);
        let mut g = Gpt::read(&MemDev::new(d), 8192, 512).unwrap();
        let before = g.partitions().unwrap();
        g.new_ids(&mut IdGen::new(42));
        let after = g.partitions().unwrap();
        assert_ne!(before[0].unique_guid, after[0].unique_guid);
        assert_eq!(before[0].first_lba, after[0].first_lba);
        let mut dev = MemDev::new(vec![0u8; 8192 * 512]);
        for (lba, b) in g.encode(8192).unwrap().writes() {
            dev.write_all_at(b, lba * 512).unwrap();
        }
        let g2 = Gpt::read(&dev, 8192, 512).unwrap();
        assert_eq!(g2.header.disk_guid, g.header.disk_guid);
        assert_eq!(g2.damage, None);
    }
}
