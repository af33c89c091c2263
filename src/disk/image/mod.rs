//! The disk image stream: a whole disk in one self-describing stream (the format is
//! documented in `docs/disk-image.md`; the tables here are the same).
//!
//! ```text
//! header (magic, version, disk size, sector size, table kind, boot-area and partition lists)
//! boot-area bytes, verbatim, in header order
//! one section per partition, in header order:
//!     section header (64 bytes)
//!     payload: NTFS   a complete ntfsclone special image (header + records, no trailer)
//!              FAT    extents (offset, length, bytes) of the used clusters, then an end extent
//!              raw    extents of the non-zero blocks, then an end extent (gaps are zero)
//! index (where each section and payload starts, and how long it is)
//! integrity trailer (the special image's trailer format, over every byte before it)
//! ```
//!
//! An NTFS section's payload is byte for byte a special image that the reference ntfsclone
//! restores; the index gives its offset and length (see [`locate`] and [`extract`]).
//!
//! [`Writer`] produces the stream through a [`WriteStream`]; [`Reader`] reads it back through a
//! [`ReadStream`], checking every structure and, when asked, the trailer's checksums.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::layout::{last_end, Area, AreaKind, Layout, PartType, TableKind, MAX_AREA_BYTES};
use super::le;
use crate::dev::{ReadAt, ReadStream, WriteStream};
use crate::error::{Error, Result};
use crate::image::trailer::{self, Mismatch, Trailer, TrailerProblem, Verifier};
use std::prelude::v1::*;

mod locate;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use locate::{extract, locate, Located};
pub use reader::{Check, Reader};
pub use writer::Writer;

/// Magic at byte 0 of a disk image.
pub const MAGIC: [u8; 16] = *b"\0ntfsclone-disk\0";
/// Format version written.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version written.
pub const VERSION_MINOR: u16 = 0;
/// Bytes of the fixed part of the header.
pub const FIXED_LEN: usize = 64;
/// Bytes of one boot-area descriptor.
pub const AREA_DESC_LEN: usize = 24;
/// Bytes of one partition descriptor.
pub const PART_DESC_LEN: usize = 48;
/// Most boot areas (sector 0's, one per EBR, the backup GPT).
pub const MAX_AREAS: usize = 1024;
/// Most partitions (a GPT's 1 MiB entry array of 128-byte entries).
pub const MAX_PARTITIONS: usize = 8192;
/// Largest header.
pub const MAX_HEADER_LEN: usize =
    FIXED_LEN + AREA_DESC_LEN * MAX_AREAS + PART_DESC_LEN * MAX_PARTITIONS;
/// Magic of a section header.
pub const SECTION_MAGIC: [u8; 8] = *b"NTCDSECT";
/// Bytes of a section header.
pub const SECTION_LEN: usize = 64;
/// Bytes of an extent header.
pub const EXTENT_LEN: usize = 16;
/// Magic at the start of the index.
pub const INDEX_MAGIC: [u8; 8] = *b"NTCDINDX";
/// Magic at the end of the index.
pub const INDEX_END_MAGIC: [u8; 8] = *b"NTCDIEND";
/// Bytes of one index entry.
pub const INDEX_ENTRY_LEN: usize = 32;
/// Header flag: an integrity trailer follows the index.
pub const FLAG_TRAILER: u8 = 1;

/// How a partition is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// A special image of the NTFS volume (used clusters).
    Ntfs,
    /// Extents of the used clusters of a FAT file system; other bytes are left as they are.
    Fat,
    /// Extents of the non-zero blocks; other bytes are zero.
    Raw,
}

impl SectionKind {
    /// The code stored in the image.
    pub fn code(self) -> u8 {
        match self {
            SectionKind::Ntfs => 1,
            SectionKind::Fat => 2,
            SectionKind::Raw => 3,
        }
    }
    /// The kind for a stored code.
    pub fn from_code(c: u8) -> Option<SectionKind> {
        match c {
            1 => Some(SectionKind::Ntfs),
            2 => Some(SectionKind::Fat),
            3 => Some(SectionKind::Raw),
            _ => None,
        }
    }
    /// "NTFS", "FAT" or "raw".
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Ntfs => "NTFS",
            SectionKind::Fat => "FAT",
            SectionKind::Raw => "raw",
        }
    }
}

/// One partition as the header lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartDesc {
    /// Linux partition number.
    pub number: u32,
    /// How its section stores it.
    pub kind: SectionKind,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Type recorded in the table.
    pub ptype: PartType,
}

/// The header of a disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskHeader {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Size of the source disk in bytes.
    pub disk_size: u64,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// Partition table kind.
    pub table: TableKind,
    /// Flags ([`FLAG_TRAILER`]).
    pub flags: u8,
    /// Boot areas, by offset; their bytes follow the header in this order.
    pub areas: Vec<Area>,
    /// Partitions, by start; their sections follow the boot areas in this order.
    pub parts: Vec<PartDesc>,
}

fn corrupt(what: &'static str, at: u64) -> Error {
    Error::corrupt(format_args!("disk image"), what, at)
}

/// Chunk size of the trailer of a disk image of a disk of `disk_size` bytes: the smallest
/// power of two ≥ 1 MiB that covers the largest stream such a disk can give (every byte in
/// 512-byte extents, plus the header and boot areas) in at most [`trailer::MAX_CHUNKS`] chunks.
pub fn chunk_size_for(disk_size: u64) -> u64 {
    let max_stream = disk_size
        .saturating_add(disk_size / 16)
        .saturating_add(MAX_AREA_BYTES)
        .saturating_add(64 << 20);
    let mut size = trailer::MIN_CHUNK_SIZE;
    while size < (1 << 62) && max_stream.div_ceil(size) > trailer::MAX_CHUNKS as u64 {
        size <<= 1;
    }
    size
}

impl DiskHeader {
    /// The header for a disk of `layout`, its partitions stored as `kinds` says (same order as
    /// `layout.partitions`).
    pub fn new(layout: &Layout, kinds: &[SectionKind], with_trailer: bool) -> DiskHeader {
        DiskHeader {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            disk_size: layout.disk_size,
            sector_size: layout.sector_size,
            table: layout.kind,
            flags: if with_trailer { FLAG_TRAILER } else { 0 },
            areas: layout.areas.clone(),
            parts: layout
                .partitions
                .iter()
                .zip(kinds)
                .map(|(p, &kind)| PartDesc {
                    number: p.number,
                    kind,
                    start: p.start,
                    len: p.len,
                    ptype: p.ptype,
                })
                .collect(),
        }
    }

    /// Total bytes of the boot areas.
    pub fn area_bytes(&self) -> u64 {
        self.areas
            .iter()
            .map(|a| a.len)
            .fold(0, u64::saturating_add)
    }

    /// Length of the encoded header.
    pub fn len(&self) -> usize {
        FIXED_LEN + AREA_DESC_LEN * self.areas.len() + PART_DESC_LEN * self.parts.len()
    }

    /// Never empty (the fixed part is always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True when an integrity trailer follows the index.
    pub fn has_trailer(&self) -> bool {
        self.flags & FLAG_TRAILER != 0
    }

    /// The encoded header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.len()];
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        le::put(&mut b, 0, &MAGIC);
        le::put(&mut b, 16, &self.major.to_le_bytes());
        le::put(&mut b, 18, &self.minor.to_le_bytes());
        le::put(&mut b, 20, &len.to_le_bytes());
        le::put(&mut b, 24, &self.disk_size.to_le_bytes());
        le::put(&mut b, 32, &self.sector_size.to_le_bytes());
        le::put(&mut b, 36, &[self.table.code(), self.flags]);
        let na = u16::try_from(self.areas.len()).unwrap_or(u16::MAX);
        let np = u32::try_from(self.parts.len()).unwrap_or(u32::MAX);
        le::put(&mut b, 38, &na.to_le_bytes());
        le::put(&mut b, 40, &np.to_le_bytes());
        le::put(&mut b, 48, &self.area_bytes().to_le_bytes());
        let mut at = FIXED_LEN;
        for a in &self.areas {
            le::put(&mut b, at, &[a.kind.code()]);
            le::put(&mut b, at + 8, &a.offset.to_le_bytes());
            le::put(&mut b, at + 16, &a.len.to_le_bytes());
            at += AREA_DESC_LEN;
        }
        for p in &self.parts {
            le::put(&mut b, at, &p.number.to_le_bytes());
            le::put(&mut b, at + 4, &[p.kind.code()]);
            le::put(&mut b, at + 8, &p.start.to_le_bytes());
            le::put(&mut b, at + 16, &p.len.to_le_bytes());
            match p.ptype {
                PartType::Dos(t) => le::put(&mut b, at + 5, &[1, t]),
                PartType::Gpt(g) => le::put(&mut b, at + 5, &[2]) && le::put(&mut b, at + 24, &g),
            };
            at += PART_DESC_LEN;
        }
        let crc = crc32fast::hash(&b);
        le::put(&mut b, 60, &crc.to_le_bytes());
        b
    }

    /// The whole header's length from its first [`FIXED_LEN`] bytes (magic and version
    /// checked), so that a reader knows how much more to read.
    pub fn len_from_start(start: &[u8]) -> Result<usize> {
        if le::bytes::<16>(start, 0) != Some(MAGIC) {
            return Err(corrupt("not a disk image (no magic)", 0));
        }
        let major = le::u16_at(start, 16).unwrap_or(0);
        if major != VERSION_MAJOR {
            return Err(Error::message(format_args!(
                "disk image version {major} is not supported (this program reads version {VERSION_MAJOR})"
            )));
        }
        let len = le::u32_at(start, 20).ok_or_else(|| corrupt("header is truncated", 0))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if !(FIXED_LEN..=MAX_HEADER_LEN).contains(&len) {
            return Err(corrupt("header length out of range", 20));
        }
        Ok(len)
    }

    /// Parses and checks a whole header (`b` holds exactly its bytes).
    pub fn parse(b: &[u8]) -> Result<DiskHeader> {
        let len = Self::len_from_start(b)?;
        if b.len() != len {
            return Err(corrupt("header is truncated", b.len() as u64));
        }
        let mut copy = b.to_vec();
        le::put(&mut copy, 60, &[0; 4]);
        if le::u32_at(b, 60) != Some(crc32fast::hash(&copy)) {
            return Err(corrupt("header checksum mismatch", 60));
        }
        let f = |off: usize| le::u64_at(b, off).unwrap_or(0);
        let disk_size = f(24);
        let sector_size = le::u32_at(b, 32).unwrap_or(0);
        if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(corrupt("sector size out of range", 32));
        }
        let table = TableKind::from_code(b.get(36).copied().unwrap_or(0))
            .ok_or_else(|| corrupt("unknown partition table kind", 36))?;
        let flags = b.get(37).copied().unwrap_or(0);
        if flags & !FLAG_TRAILER != 0 {
            return Err(corrupt("unknown flags", 37));
        }
        let na = usize::from(le::u16_at(b, 38).unwrap_or(0));
        let np = usize::try_from(le::u32_at(b, 40).unwrap_or(0)).unwrap_or(usize::MAX);
        if na > MAX_AREAS || np > MAX_PARTITIONS {
            return Err(corrupt("too many areas or partitions", 38));
        }
        if FIXED_LEN + AREA_DESC_LEN * na + PART_DESC_LEN * np != len {
            return Err(corrupt("header length does not match its lists", 20));
        }
        let mut areas: Vec<Area> = Vec::with_capacity(na);
        let mut at = FIXED_LEN;
        let mut prev_end = 0u64;
        for _ in 0..na {
            let kind = AreaKind::from_code(b.get(at).copied().unwrap_or(0))
                .ok_or_else(|| corrupt("unknown boot area kind", at as u64))?;
            let a = Area {
                kind,
                offset: f(at + 8),
                len: f(at + 16),
            };
            let end = a.offset.saturating_add(a.len);
            if a.len == 0 || a.offset < prev_end || end > disk_size {
                return Err(corrupt(
                    "boot area out of order or out of the disk",
                    at as u64,
                ));
            }
            prev_end = end;
            areas.push(a);
            at += AREA_DESC_LEN;
        }
        let area_total = areas.iter().map(|a| a.len).fold(0, u64::saturating_add);
        if area_total != f(48) || area_total > MAX_AREA_BYTES {
            return Err(corrupt("boot area total out of range", 48));
        }
        let mut parts: Vec<PartDesc> = Vec::with_capacity(np);
        let mut prev_end = 0u64;
        for _ in 0..np {
            let number = le::u32_at(b, at).unwrap_or(0);
            let kind = SectionKind::from_code(b.get(at + 4).copied().unwrap_or(0))
                .ok_or_else(|| corrupt("unknown partition content kind", at as u64 + 4))?;
            let ptype = match b.get(at + 5).copied() {
                Some(1) => PartType::Dos(b.get(at + 6).copied().unwrap_or(0)),
                Some(2) => PartType::Gpt(le::bytes(b, at + 24).unwrap_or_default()),
                _ => return Err(corrupt("unknown partition type kind", at as u64 + 5)),
            };
            let p = PartDesc {
                number,
                kind,
                start: f(at + 8),
                len: f(at + 16),
                ptype,
            };
            let end = p.start.saturating_add(p.len);
            if p.len == 0 || p.start < prev_end || end > disk_size {
                return Err(corrupt(
                    "partition out of order, overlapping or out of the disk",
                    at as u64 + 8,
                ));
            }
            if areas
                .iter()
                .any(|a| a.offset < end && p.start < a.offset.saturating_add(a.len))
            {
                return Err(corrupt("partition overlaps a boot area", at as u64 + 8));
            }
            prev_end = end;
            parts.push(p);
            at += PART_DESC_LEN;
        }
        Ok(DiskHeader {
            major: le::u16_at(b, 16).unwrap_or(0),
            minor: le::u16_at(b, 18).unwrap_or(0),
            disk_size,
            sector_size,
            table,
            flags,
            areas,
            parts,
        })
    }

    /// Smallest target disk in bytes: the end of the last partition or boot area (a GPT's
    /// backup moves to the target's end: its size counts, not its place).
    pub fn min_disk_size(&self) -> u64 {
        let mut need = last_end(
            self.parts.iter().map(|p| p.start.saturating_add(p.len)),
            &self.areas,
        );
        if let Some(b) = self.areas.iter().find(|a| a.kind == AreaKind::GptBackup) {
            need = need.saturating_add(b.len);
        }
        need
    }
}

/// One section as the index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Partition number.
    pub number: u32,
    /// Storage kind.
    pub kind: SectionKind,
    /// Stream offset of the section header.
    pub section_offset: u64,
    /// Stream offset of the payload (section header + 64).
    pub payload_offset: u64,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// Encodes an index.
pub fn index_bytes(entries: &[IndexEntry]) -> Vec<u8> {
    let n = entries.len();
    let mut b = vec![0u8; 16 + INDEX_ENTRY_LEN * n + 16];
    le::put(&mut b, 0, &INDEX_MAGIC);
    le::put(
        &mut b,
        8,
        &u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes(),
    );
    let mut at = 16;
    for e in entries {
        le::put(&mut b, at, &e.number.to_le_bytes());
        le::put(&mut b, at + 4, &[e.kind.code()]);
        le::put(&mut b, at + 8, &e.section_offset.to_le_bytes());
        le::put(&mut b, at + 16, &e.payload_offset.to_le_bytes());
        le::put(&mut b, at + 24, &e.payload_len.to_le_bytes());
        at += INDEX_ENTRY_LEN;
    }
    let crc = crc32fast::hash(b.get(..at).unwrap_or(&[]));
    let total = u32::try_from(b.len()).unwrap_or(u32::MAX);
    le::put(&mut b, at, &crc.to_le_bytes());
    le::put(&mut b, at + 4, &total.to_le_bytes());
    le::put(&mut b, at + 8, &INDEX_END_MAGIC);
    b
}

/// Length of an index from its first 16 bytes.
pub fn index_len(start: &[u8]) -> Result<usize> {
    if le::bytes::<8>(start, 0) != Some(INDEX_MAGIC) {
        return Err(corrupt("no index magic", 0));
    }
    let n = usize::try_from(le::u32_at(start, 8).unwrap_or(u32::MAX)).unwrap_or(usize::MAX);
    if n > MAX_PARTITIONS {
        return Err(corrupt("index entry count out of range", 8));
    }
    Ok(32 + INDEX_ENTRY_LEN * n)
}

/// Parses an index (`b` holds exactly its bytes). `at` is its stream offset (for messages).
pub fn parse_index(b: &[u8], at: u64) -> Result<Vec<IndexEntry>> {
    let len = index_len(b).map_err(|_| corrupt("index is damaged", at))?;
    let body = len - 16;
    if b.len() != len
        || le::u32_at(b, body) != b.get(..body).map(crc32fast::hash)
        || le::u32_at(b, body + 4) != u32::try_from(len).ok()
        || le::bytes::<8>(b, body + 8) != Some(INDEX_END_MAGIC)
    {
        return Err(corrupt("index is damaged", at));
    }
    let mut out = Vec::new();
    let mut off = 16;
    while off < body {
        let kind = SectionKind::from_code(b.get(off + 4).copied().unwrap_or(0))
            .ok_or_else(|| corrupt("index is damaged", at))?;
        out.push(IndexEntry {
            number: le::u32_at(b, off).unwrap_or(0),
            kind,
            section_offset: le::u64_at(b, off + 8).unwrap_or(0),
            payload_offset: le::u64_at(b, off + 16).unwrap_or(0),
            payload_len: le::u64_at(b, off + 24).unwrap_or(0),
        });
        off += INDEX_ENTRY_LEN;
    }
    Ok(out)
}

/// A section header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    /// The partition.
    pub part: PartDesc,
    /// Data bytes the payload carries (cluster or extent data; for progress only).
    pub data_bytes: u64,
}

impl SectionHeader {
    /// Encodes it.
    pub fn to_bytes(&self) -> [u8; SECTION_LEN] {
        let mut b = [0u8; SECTION_LEN];
        le::put(&mut b, 0, &SECTION_MAGIC);
        le::put(&mut b, 8, &self.part.number.to_le_bytes());
        le::put(&mut b, 12, &[self.part.kind.code()]);
        le::put(&mut b, 16, &self.part.start.to_le_bytes());
        le::put(&mut b, 24, &self.part.len.to_le_bytes());
        le::put(&mut b, 32, &self.data_bytes.to_le_bytes());
        let crc = crc32fast::hash(b.get(..60).unwrap_or(&[]));
        le::put(&mut b, 60, &crc.to_le_bytes());
        b
    }

    /// Parses a section header that must describe `want` (the next partition of the header);
    /// `at` is its stream offset.
    pub fn parse(b: &[u8; SECTION_LEN], want: &PartDesc, at: u64) -> Result<SectionHeader> {
        if le::bytes::<8>(b, 0) != Some(SECTION_MAGIC) {
            return Err(corrupt(
                "no section magic where a partition section starts",
                at,
            ));
        }
        if le::u32_at(b, 60) != b.get(..60).map(crc32fast::hash) {
            return Err(corrupt("section header checksum mismatch", at + 60));
        }
        let number = le::u32_at(b, 8).unwrap_or(0);
        let kind = b.get(12).copied().and_then(SectionKind::from_code);
        let start = le::u64_at(b, 16).unwrap_or(0);
        let len = le::u64_at(b, 24).unwrap_or(0);
        if number != want.number
            || kind != Some(want.kind)
            || start != want.start
            || len != want.len
        {
            return Err(corrupt(
                "section does not match the header's partition list",
                at,
            ));
        }
        Ok(SectionHeader {
            part: *want,
            data_bytes: le::u64_at(b, 32).unwrap_or(0),
        })
    }
}

/// An extent header: `len` bytes at `offset` of the partition follow; `len == 0` ends the
/// extents (its `offset` is then the partition length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset in the partition.
    pub offset: u64,
    /// Bytes that follow.
    pub len: u64,
}

impl Extent {
    /// Encodes it.
    pub fn to_bytes(&self) -> [u8; EXTENT_LEN] {
        let mut b = [0u8; EXTENT_LEN];
        le::put(&mut b, 0, &self.offset.to_le_bytes());
        le::put(&mut b, 8, &self.len.to_le_bytes());
        b
    }
}
