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
use super::layout::{Area, AreaKind, Layout, PartType, TableKind, MAX_AREA_BYTES};
use super::le;
use crate::dev::{ReadAt, ReadStream, WriteStream};
use crate::error::{Error, Result};
use crate::image::trailer::{self, Mismatch, Trailer, TrailerProblem, Verifier};
use std::prelude::v1::*;

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
        let mut need = self
            .parts
            .iter()
            .map(|p| p.start.saturating_add(p.len))
            .chain(
                self.areas
                    .iter()
                    .filter(|a| a.kind != AreaKind::GptBackup)
                    .map(|a| a.offset.saturating_add(a.len)),
            )
            .max()
            .unwrap_or(0);
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

/// Writes a disk image. Call in order: [`Writer::new`], [`Writer::areas`] (all the boot-area
/// bytes), then for each partition [`Writer::begin_section`], its payload (through the
/// [`WriteStream`] impl for a special image, or [`Writer::extent`] / [`Writer::extent_header`]
/// and [`Writer::end_extents`]), and finally [`Writer::finish`].
pub struct Writer<W: WriteStream> {
    out: W,
    header: DiskHeader,
    pos: u64,
    sums: Option<trailer::Builder>,
    areas_left: u64,
    next_part: usize,
    index: Vec<IndexEntry>,
    /// Extents of the current section: (lowest allowed next offset, partition length).
    extents: Option<(u64, u64)>,
    /// Bytes still owed to the current extent.
    owed: u64,
}

impl<W: WriteStream> Writer<W> {
    /// Starts an image on `out` with `header` (which says whether a trailer is written).
    pub fn new(out: W, header: DiskHeader) -> Result<Self> {
        let sums = header
            .has_trailer()
            .then(|| trailer::Builder::new(chunk_size_for(header.disk_size)));
        let mut w = Writer {
            out,
            areas_left: header.area_bytes(),
            header,
            pos: 0,
            sums,
            next_part: 0,
            index: Vec::new(),
            extents: None,
            owed: 0,
        };
        let bytes = w.header.to_bytes();
        w.put(&bytes)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b)?;
        if let Some(s) = self.sums.as_mut() {
            s.update(b);
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    fn misuse(what: &'static str) -> Error {
        Error::message(format_args!("disk image writer: {what}"))
    }

    /// Stream bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The header being written.
    pub fn header(&self) -> &DiskHeader {
        &self.header
    }

    /// Boot-area bytes, in header order (any split).
    pub fn areas(&mut self, b: &[u8]) -> Result<()> {
        if b.len() as u64 > self.areas_left {
            return Err(Self::misuse("more boot-area bytes than the header lists"));
        }
        self.areas_left -= b.len() as u64;
        self.put(b)
    }

    fn close_section(&mut self) -> Result<()> {
        if self.extents.is_some() || self.owed != 0 {
            return Err(Self::misuse("extents not ended"));
        }
        if let Some(e) = self.index.last_mut() {
            e.payload_len = self.pos - e.payload_offset;
        }
        Ok(())
    }

    /// Starts the section of the next partition of the header; `data_bytes` is what its
    /// payload will carry (progress only).
    pub fn begin_section(&mut self, data_bytes: u64) -> Result<PartDesc> {
        if self.areas_left != 0 {
            return Err(Self::misuse("boot areas incomplete"));
        }
        self.close_section()?;
        let part = *self
            .header
            .parts
            .get(self.next_part)
            .ok_or_else(|| Self::misuse("more sections than partitions"))?;
        self.next_part += 1;
        let section_offset = self.pos;
        self.put(&SectionHeader { part, data_bytes }.to_bytes())?;
        self.index.push(IndexEntry {
            number: part.number,
            kind: part.kind,
            section_offset,
            payload_offset: self.pos,
            payload_len: 0,
        });
        if part.kind != SectionKind::Ntfs {
            self.extents = Some((0, part.len));
        }
        Ok(part)
    }

    /// The header of an extent of `len` bytes at `offset` of the current partition; its bytes
    /// follow through [`WriteStream::write_all`]. Extents must be in order and inside the
    /// partition.
    pub fn extent_header(&mut self, offset: u64, len: u64) -> Result<()> {
        let (min, part_len) = self
            .extents
            .ok_or_else(|| Self::misuse("extent outside a FAT or raw section"))?;
        if self.owed != 0 || len == 0 || offset < min || offset.saturating_add(len) > part_len {
            return Err(Self::misuse("extent out of order or out of the partition"));
        }
        self.put(&Extent { offset, len }.to_bytes())?;
        self.extents = Some((offset + len, part_len));
        self.owed = len;
        Ok(())
    }

    /// An extent with its bytes.
    pub fn extent(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.extent_header(offset, data.len() as u64)?;
        self.write_all(data)
    }

    /// Ends the extents of the current section.
    pub fn end_extents(&mut self) -> Result<()> {
        let (_, part_len) = self
            .extents
            .ok_or_else(|| Self::misuse("no extents to end"))?;
        if self.owed != 0 {
            return Err(Self::misuse("extent bytes missing"));
        }
        self.extents = None;
        self.put(
            &Extent {
                offset: part_len,
                len: 0,
            }
            .to_bytes(),
        )
    }

    /// Writes the index and the trailer; returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.close_section()?;
        if self.next_part != self.header.parts.len() {
            return Err(Self::misuse("fewer sections than partitions"));
        }
        let idx = index_bytes(&self.index);
        self.put(&idx)?;
        if let Some(s) = self.sums.take() {
            let t = s.finish()?;
            self.out.write_all(&t)?;
        }
        Ok(self.out)
    }
}

impl<W: WriteStream> WriteStream for Writer<W> {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        if self.extents.is_some() {
            if buf.len() as u64 > self.owed {
                return Err(Self::misuse("more extent bytes than its header says"));
            }
            self.owed -= buf.len() as u64;
        } else if self.index.is_empty() {
            return Err(Self::misuse("payload before a section"));
        }
        self.put(buf)
    }
}

/// The outcome of reading a disk image to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The trailer's checksums match every byte.
    Verified,
    /// The image has no trailer (written with `--no-checksum`).
    NoTrailer,
    /// Checksums were not computed (the caller checked the chunks beforehand, or asked for
    /// none).
    NotChecked,
    /// These byte ranges of the image do not match their checksums.
    Mismatch(Vec<Mismatch>),
}

/// Reads a disk image stream.
pub struct Reader<R: ReadStream> {
    input: R,
    header: DiskHeader,
    areas: Vec<(Area, Vec<u8>)>,
    /// Stream offset of the next byte handed out.
    pos: u64,
    /// Bytes given back with [`Reader::give_back`], served before the input.
    pushback: Vec<u8>,
    sums: Option<Verifier>,
    next_part: usize,
    seen: Vec<IndexEntry>,
    /// Current extent section: (lowest allowed next offset, partition length).
    extents: Option<(u64, u64)>,
    owed: u64,
}

impl<R: ReadStream> Reader<R> {
    /// Reads and checks the header and the boot areas. With `verify`, every byte is
    /// checksummed and [`Reader::finish`] compares the sums with the trailer.
    pub fn open(mut input: R, verify: bool) -> Result<Self> {
        let mut start = [0u8; FIXED_LEN];
        if input.read_full(&mut start)? < FIXED_LEN {
            return Err(corrupt("the image ends inside its header", 0));
        }
        let len = DiskHeader::len_from_start(&start)?;
        let mut hb = vec![0u8; len];
        if let Some(s) = hb.get_mut(..FIXED_LEN) {
            s.copy_from_slice(&start);
        }
        let rest = hb.get_mut(FIXED_LEN..).unwrap_or(&mut []);
        if input.read_full(rest)? < rest.len() {
            return Err(corrupt(
                "the image ends inside its header",
                FIXED_LEN as u64,
            ));
        }
        let header = DiskHeader::parse(&hb)?;
        let sums = (verify && header.has_trailer()).then(|| {
            let mut v = Verifier::new(chunk_size_for(header.disk_size));
            v.update(&hb);
            v
        });
        let mut r = Reader {
            input,
            areas: Vec::new(),
            pos: len as u64,
            pushback: Vec::new(),
            sums,
            next_part: 0,
            seen: Vec::new(),
            extents: None,
            owed: 0,
            header,
        };
        for a in r.header.areas.clone() {
            // Bounded by MAX_AREA_BYTES in DiskHeader::parse.
            let mut bytes = vec![0u8; usize::try_from(a.len).unwrap_or(0)];
            let at = r.pos;
            if r.pass_full(&mut bytes)? < bytes.len() {
                return Err(corrupt("the image ends inside its boot areas", at));
            }
            r.areas.push((a, bytes));
        }
        Ok(r)
    }

    /// The header.
    pub fn header(&self) -> &DiskHeader {
        &self.header
    }

    /// The boot areas with their bytes.
    pub fn areas(&self) -> &[(Area, Vec<u8>)] {
        &self.areas
    }

    /// Stream offset of the next byte.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Lends the checksum state to the reader of an NTFS payload (a special-image reader that
    /// reads ahead): bytes handed out meanwhile are not checksummed here. The special-image
    /// reader checksums what it consumes and hands the state back with the bytes it read past
    /// the payload's end, through [`Reader::give_back`].
    pub fn lend_verifier(&mut self) -> Option<Verifier> {
        self.sums.take()
    }

    /// Takes back the checksum state lent by [`Reader::lend_verifier`] and the bytes read past
    /// the end of the payload (not checksummed yet): they are handed out again, and
    /// checksummed then, before any more input.
    pub fn give_back(&mut self, bytes: &[u8], sums: Option<Verifier>) {
        let mut v = bytes.to_vec();
        v.append(&mut self.pushback);
        self.pushback = v;
        self.pos -= bytes.len() as u64;
        self.sums = sums;
    }

    fn close_section(&mut self) -> Result<()> {
        if self.extents.is_some() || self.owed != 0 {
            return Err(Error::message(format_args!(
                "disk image reader: a section was not read to its end"
            )));
        }
        let pos = self.pos;
        if let Some(e) = self.seen.last_mut() {
            e.payload_len = pos - e.payload_offset;
        }
        Ok(())
    }

    /// The next section's header, or None after the last one (the index has then been read
    /// and checked against the sections seen).
    pub fn next_section(&mut self) -> Result<Option<SectionHeader>> {
        self.close_section()?;
        let at = self.pos;
        let Some(want) = self.header.parts.get(self.next_part).copied() else {
            self.read_index()?;
            return Ok(None);
        };
        let mut b = [0u8; SECTION_LEN];
        if self.pass_full(&mut b)? < SECTION_LEN {
            return Err(corrupt("the image ends before a partition section", at));
        }
        let s = SectionHeader::parse(&b, &want, at)?;
        self.next_part += 1;
        self.seen.push(IndexEntry {
            number: want.number,
            kind: want.kind,
            section_offset: at,
            payload_offset: self.pos,
            payload_len: 0,
        });
        if want.kind != SectionKind::Ntfs {
            self.extents = Some((0, want.len));
        }
        Ok(Some(s))
    }

    /// The next extent of a FAT or raw section (its bytes are then read through the
    /// [`ReadStream`] impl, exactly `len` of them), or None at the end of the section.
    pub fn next_extent(&mut self) -> Result<Option<Extent>> {
        let (min, part_len) = self.extents.ok_or_else(|| {
            Error::message(format_args!("disk image reader: not in an extent section"))
        })?;
        if self.owed != 0 {
            return Err(Error::message(format_args!(
                "disk image reader: extent bytes not read"
            )));
        }
        let at = self.pos;
        let mut b = [0u8; EXTENT_LEN];
        if self.pass_full(&mut b)? < EXTENT_LEN {
            return Err(corrupt("the image ends inside a partition section", at));
        }
        let e = Extent {
            offset: le::u64_at(&b, 0).unwrap_or(0),
            len: le::u64_at(&b, 8).unwrap_or(0),
        };
        if e.len == 0 {
            if e.offset != part_len {
                return Err(corrupt("damaged end of extents", at));
            }
            self.extents = None;
            return Ok(None);
        }
        if e.offset < min
            || e.offset
                .checked_add(e.len)
                .map_or(true, |end| end > part_len)
        {
            return Err(corrupt("extent out of order or out of its partition", at));
        }
        self.extents = Some((e.offset + e.len, part_len));
        self.owed = e.len;
        Ok(Some(e))
    }

    fn read_index(&mut self) -> Result<()> {
        let at = self.pos;
        let mut start = [0u8; 16];
        if self.pass_full(&mut start)? < 16 {
            return Err(corrupt("the image ends before its index", at));
        }
        let len = index_len(&start).map_err(|_| corrupt("no index after the last section", at))?;
        let mut b = vec![0u8; len];
        if let Some(s) = b.get_mut(..16) {
            s.copy_from_slice(&start);
        }
        let rest = b.get_mut(16..).unwrap_or(&mut []);
        if self.pass_full(rest)? < rest.len() {
            return Err(corrupt("the image ends inside its index", at));
        }
        if parse_index(&b, at)? != self.seen {
            return Err(corrupt("the index does not match the sections", at));
        }
        Ok(())
    }

    /// The sections read so far, as the index records them.
    pub fn sections(&self) -> &[IndexEntry] {
        &self.seen
    }

    /// After the last section: reads the trailer (if the header says there is one) and
    /// compares the checksums; the input must end there.
    pub fn finish(mut self) -> Result<Check> {
        if self.next_part != self.header.parts.len() || self.extents.is_some() {
            return Err(Error::message(format_args!(
                "disk image reader: finish before the last section"
            )));
        }
        let data_len = self.pos;
        let mut check = Check::NoTrailer;
        if self.header.has_trailer() {
            let mut t = vec![0u8; trailer::MAX_LEN];
            let n = self.raw_read_full(t.get_mut(..24).unwrap_or(&mut []))?;
            let want = Trailer::full_len(t.get(..n).unwrap_or(&[]))
                .ok_or_else(|| corrupt("the integrity trailer is missing or damaged", data_len))?;
            let more = t.get_mut(n..want).unwrap_or(&mut []);
            let got = self.raw_read_full(more)?;
            let bytes = t.get(..n + got).unwrap_or(&[]);
            let trailer = match Trailer::parse(bytes) {
                Ok(t) => t,
                Err(TrailerProblem::Absent) | Err(TrailerProblem::Damaged(_)) => {
                    return Err(corrupt("the integrity trailer is damaged", data_len));
                }
            };
            if trailer.data_len != data_len {
                return Err(corrupt(
                    "the integrity trailer does not match the image length",
                    data_len,
                ));
            }
            check = match self.sums.take() {
                Some(v) => match v.check(&trailer) {
                    Ok(()) => Check::Verified,
                    Err(bad) => Check::Mismatch(bad.into_iter().collect()),
                },
                None => Check::NotChecked,
            };
        }
        let mut one = [0u8; 1];
        if self.raw_read_full(&mut one)? != 0 {
            return Err(corrupt("bytes after the end of the disk image", self.pos));
        }
        Ok(check)
    }

    /// Reads from the pushback, then the input, without checksumming (the trailer itself).
    fn raw_read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.raw_read(buf.get_mut(done..).unwrap_or(&mut []))?;
            if n == 0 {
                break;
            }
            done += n;
            self.pos += n as u64;
        }
        Ok(done)
    }

    fn raw_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if !self.pushback.is_empty() {
            let n = buf.len().min(self.pushback.len());
            if let (Some(d), Some(s)) = (buf.get_mut(..n), self.pushback.get(..n)) {
                d.copy_from_slice(s);
            }
            self.pushback.drain(..n);
            return Ok(n);
        }
        self.input.read(buf)
    }
}

impl<R: ReadStream> Reader<R> {
    /// Stream bytes in order, checksummed the first time they pass.
    fn pass(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.raw_read(buf)?;
        if let Some(v) = self.sums.as_mut() {
            v.update(buf.get(..n).unwrap_or(&[]));
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Fills `buf` with stream bytes (structures of the format, never limited by an extent);
    /// returns how many there were.
    fn pass_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.pass(buf.get_mut(done..).unwrap_or(&mut []))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

impl<R: ReadStream> ReadStream for Reader<R> {
    /// Payload bytes in order; inside an extent, never more than the extent's remaining bytes.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.extents.is_some() {
            let n = usize::try_from(self.owed).map_or(buf.len(), |o| o.min(buf.len()));
            let got = self.pass(buf.get_mut(..n).unwrap_or(&mut []))?;
            self.owed -= got as u64;
            Ok(got)
        } else {
            self.pass(buf)
        }
    }
}

/// Where the sections of a seekable image are, read from its end: the index and, when there
/// is one, the trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The sections.
    pub index: Vec<IndexEntry>,
    /// The trailer, if the image has one.
    pub trailer: Option<Trailer>,
}

/// Reads the index (and trailer) of an image of `len` bytes from its end.
pub fn locate<D: ReadAt + ?Sized>(dev: &D, len: u64) -> Result<Located> {
    let tail_at = |n: u64| {
        len.checked_sub(n)
            .ok_or_else(|| corrupt("the image is too short", 0))
    };
    let mut footer = [0u8; trailer::FOOTER_LEN];
    dev.read_exact_at(&mut footer, tail_at(trailer::FOOTER_LEN as u64)?)?;
    let (index_end, trailer) = match Trailer::len_from_footer(&footer) {
        Some(tlen) => {
            let at = tail_at(tlen as u64)?;
            let mut t = vec![0u8; tlen];
            dev.read_exact_at(&mut t, at)?;
            let t =
                Trailer::parse(&t).map_err(|_| corrupt("the integrity trailer is damaged", at))?;
            if t.data_len != at {
                return Err(corrupt(
                    "the integrity trailer does not match the image length",
                    at,
                ));
            }
            (at, Some(t))
        }
        None => (len, None),
    };
    let mut end = [0u8; 16];
    let end_at = index_end
        .checked_sub(16)
        .ok_or_else(|| corrupt("no index at the end of the image", 0))?;
    dev.read_exact_at(&mut end, end_at)?;
    if le::bytes::<8>(&end, 8) != Some(INDEX_END_MAGIC) {
        return Err(corrupt("no index at the end of the image", end_at));
    }
    let ilen = u64::from(le::u32_at(&end, 4).unwrap_or(0));
    if ilen < 32 || ilen > (32 + INDEX_ENTRY_LEN * MAX_PARTITIONS) as u64 || ilen > index_end {
        return Err(corrupt("index is damaged", end_at));
    }
    let at = index_end - ilen;
    let mut b = vec![0u8; usize::try_from(ilen).unwrap_or(0)];
    dev.read_exact_at(&mut b, at)?;
    let index = parse_index(&b, at)?;
    for e in &index {
        let end = e.payload_offset.checked_add(e.payload_len);
        if e.payload_offset != e.section_offset.saturating_add(SECTION_LEN as u64)
            || end.map_or(true, |end| end > at)
        {
            return Err(corrupt("index entry out of the image", at));
        }
    }
    Ok(Located { index, trailer })
}

/// Copies the special image of NTFS partition `number` out of a seekable disk image of `len`
/// bytes into `out` (a complete image that any ntfsclone restores). When the image has a
/// trailer, every checksum chunk that overlaps the payload is checked before any byte is
/// copied. Returns the bytes copied.
pub fn extract<D: ReadAt + ?Sized, W: WriteStream>(
    dev: &D,
    len: u64,
    number: u32,
    out: &mut W,
) -> Result<u64> {
    let loc = locate(dev, len)?;
    let e = loc
        .index
        .iter()
        .find(|e| e.number == number)
        .ok_or_else(|| Error::message(format_args!("the disk image has no partition {number}")))?;
    if e.kind != SectionKind::Ntfs {
        return Err(Error::message(format_args!(
            "partition {number} is stored as {} data, not as an NTFS special image",
            e.kind.name()
        )));
    }
    let (start, end) = (e.payload_offset, e.payload_offset + e.payload_len);
    let mut buf = vec![0u8; 1 << 20];
    if let Some(t) = &loc.trailer {
        for i in 0..t.crcs.len() {
            let (cs, ce) = t.chunk_range(i);
            if ce <= start || cs >= end {
                continue;
            }
            let mut h = crc32fast::Hasher::new();
            let mut at = cs;
            while at < ce {
                let n = usize::try_from((ce - at).min(buf.len() as u64)).unwrap_or(0);
                let b = buf.get_mut(..n).unwrap_or(&mut []);
                dev.read_exact_at(b, at)?;
                h.update(b);
                at += n as u64;
            }
            if Some(&h.finalize()) != t.crcs.get(i) {
                return Err(Error::message(format_args!(
                    "image checksum mismatch in image bytes {cs}..{ce} (0x{cs:x}..0x{ce:x}): \
                     nothing was extracted"
                )));
            }
        }
    }
    let mut at = start;
    while at < end {
        let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(0);
        let b = buf.get_mut(..n).unwrap_or(&mut []);
        dev.read_exact_at(b, at)?;
        out.write_all(b)?;
        at += n as u64;
    }
    Ok(e.payload_len)
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

    /// A special image of 8 clusters of 512 bytes (clusters 0, 3 and the backup boot sector).
    fn special_image() -> Vec<u8> {
        use crate::image::{Header, Writer as ImgWriter};
        let h = crate::image::Header::new(512, 9 * 512, 8, 3);
        let _: &Header = &h;
        let mut w = ImgWriter::new(MemDev::default(), &h, 0).unwrap();
        w.cluster(&[1; 512]).unwrap();
        w.gap(2).unwrap();
        w.cluster(&[3; 512]).unwrap();
        w.gap(4).unwrap();
        w.cluster(&[9; 512]).unwrap();
        w.finish().unwrap().data
    }

    struct Made {
        image: Vec<u8>,
        disk: Vec<u8>,
        ntfs: Vec<u8>,
    }

    /// A GPT disk (partition 1 NTFS, partition 2 raw), saved as an image.
    fn make(with_trailer: bool) -> Made {
        let disk = gpt_disk(8192);
        let layout = Layout::read(&MemDev::new(disk.clone()), 8192 * 512, 512).unwrap();
        let h = DiskHeader::new(
            &layout,
            &[SectionKind::Ntfs, SectionKind::Raw],
            with_trailer,
        );
        let mut w = Writer::new(MemDev::default(), h).unwrap();
        for a in &layout.areas {
            w.areas(&disk[a.offset as usize..(a.offset + a.len) as usize])
                .unwrap();
        }
        let ntfs = special_image();
        w.begin_section(3 * 512).unwrap();
        w.write_all(&ntfs).unwrap();
        w.begin_section(1024).unwrap();
        w.extent(0, &[5; 512]).unwrap();
        w.extent_header(4096, 512).unwrap();
        w.write_all(&[6; 200]).unwrap();
        w.write_all(&[7; 312]).unwrap();
        w.end_extents().unwrap();
        let image = w.finish().unwrap().data;
        Made { image, disk, ntfs }
    }

    /// Reads a whole image as a restore would; returns the sections' contents.
    fn read_all(img: &[u8], verify: bool) -> Result<(Vec<Vec<u8>>, Check)> {
        let mut r = Reader::open(MemDev::new(img.to_vec()), verify)?;
        let mut out = Vec::new();
        while let Some(s) = r.next_section()? {
            let mut data = Vec::new();
            if s.part.kind == SectionKind::Ntfs {
                // A special-image reader reads ahead, checksums what it consumes and gives the
                // excess back.
                let mut v = r.lend_verifier();
                let mut buf = vec![0u8; 4096];
                let n = r.read_full(&mut buf)?;
                let len = special_image().len().min(n);
                data.extend_from_slice(&buf[..len]);
                if let Some(v) = v.as_mut() {
                    v.update(&buf[..len]);
                }
                r.give_back(&buf[len..n], v);
            } else {
                while let Some(e) = r.next_extent()? {
                    let mut b = vec![0u8; e.len as usize];
                    if r.read_full(&mut b)? != b.len() {
                        return Err(Error::message(format_args!("short extent")));
                    }
                    data.extend_from_slice(&e.offset.to_le_bytes());
                    data.extend_from_slice(&b);
                }
            }
            out.push(data);
        }
        let check = r.finish()?;
        Ok((out, check))
    }

    #[test]
    fn round_trip() {
        let m = make(true);
        let (secs, check) = read_all(&m.image, true).unwrap();
        assert_eq!(check, Check::Verified);
        assert_eq!(secs[0], m.ntfs);
        assert_eq!(secs[1].len(), 8 + 512 + 8 + 512);
        let r = Reader::open(MemDev::new(m.image.clone()), false).unwrap();
        assert_eq!(r.areas()[0].1, m.disk[..2048 * 512]);
        assert_eq!(r.header().min_disk_size(), (6144 + 33) * 512);
        let (_, check) = read_all(&make(false).image, true).unwrap();
        assert_eq!(check, Check::NoTrailer);
        let (_, check) = read_all(&m.image, false).unwrap();
        assert_eq!(check, Check::NotChecked);
    }

    #[test]
    fn locate_and_extract() {
        for t in [true, false] {
            let m = make(t);
            let dev = MemDev::new(m.image.clone());
            let loc = locate(&dev, m.image.len() as u64).unwrap();
            assert_eq!(loc.index.len(), 2);
            assert_eq!(loc.trailer.is_some(), t);
            let e = loc.index[0];
            let p = e.payload_offset as usize;
            assert_eq!(&m.image[p..p + e.payload_len as usize], &m.ntfs[..]);
            let mut out = MemDev::default();
            assert_eq!(
                extract(&dev, m.image.len() as u64, 1, &mut out).unwrap(),
                m.ntfs.len() as u64
            );
            assert_eq!(out.data, m.ntfs);
            let err = extract(&dev, m.image.len() as u64, 2, &mut out).unwrap_err();
            assert!(std::format!("{err}").contains("raw"), "{err}");
            assert!(extract(&dev, m.image.len() as u64, 7, &mut out).is_err());
        }
        // A flipped payload byte: extraction refuses, nothing written.
        let m = make(true);
        let mut img = m.image.clone();
        let loc = locate(&MemDev::new(img.clone()), img.len() as u64).unwrap();
        img[loc.index[0].payload_offset as usize + 100] ^= 1;
        let mut out = MemDev::default();
        let len = img.len() as u64;
        assert!(extract(&MemDev::new(img), len, 1, &mut out).is_err());
        assert!(out.data.is_empty());
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let m = make(true);
        // Every byte of the header, of the sections and of the index; every 4099th byte of
        // the 1 MiB boot area.
        let hlen = DiskHeader::len_from_start(&m.image).unwrap();
        let areas_end = hlen + (2048 + 33) * 512;
        let bytes = (0..hlen)
            .chain((hlen..areas_end).step_by(4099))
            .chain(areas_end..m.image.len());
        for i in bytes {
            let mut d = m.image.clone();
            d[i] ^= 0x04;
            match read_all(&d, true) {
                Err(_) => {}
                Ok((_, Check::Mismatch(bad))) => {
                    assert!(
                        bad.iter()
                            .any(|b| b.start <= i as u64 && (i as u64) < b.end),
                        "byte {i}"
                    );
                }
                Ok((_, c)) => core::panic!("byte {i} flipped: {c:?}"),
            }
        }
    }

    #[test]
    fn truncated_images_fail() {
        let m = make(true);
        for cut in [
            0,
            10,
            64,
            100,
            2048 * 512,
            m.image.len() - 5000,
            m.image.len() - 1,
        ] {
            assert!(read_all(&m.image[..cut], true).is_err(), "cut at {cut}");
        }
        let mut longer = m.image.clone();
        longer.push(0);
        assert!(read_all(&longer, true).is_err());
    }

    /// Header fields changed with the CRC kept valid: each reaches its own check.
    #[test]
    fn header_checks() {
        let m = make(true);
        let hlen = DiskHeader::len_from_start(&m.image).unwrap();
        let base = m.image[..hlen].to_vec();
        let reseal = |f: &dyn Fn(&mut Vec<u8>)| -> String {
            let mut b = base.clone();
            f(&mut b);
            b[60..64].fill(0);
            let crc = crc32fast::hash(&b);
            b[60..64].copy_from_slice(&crc.to_le_bytes());
            match DiskHeader::parse(&b) {
                Ok(_) => "ok".into(),
                Err(e) => std::format!("{e}"),
            }
        };
        type Mutation = fn(&mut Vec<u8>);
        let p = FIXED_LEN + 2 * AREA_DESC_LEN;
        let cases: [(Mutation, &str); 11] = [
            (|b| b[0] = 1, "no magic"),
            (|b| b[16] = 2, "version 2"),
            (
                |b| b[20..24].copy_from_slice(&8u32.to_le_bytes()),
                "header length out of range",
            ),
            (
                |b| b[32..36].copy_from_slice(&100u32.to_le_bytes()),
                "sector size",
            ),
            (|b| b[36] = 9, "table kind"),
            (|b| b[37] = 0x80, "flags"),
            (|b| b[38] = 3, "does not match its lists"),
            (|b| b[FIXED_LEN] = 7, "boot area kind"),
            (|b| b[48] ^= 1, "area total"),
            (
                |b| b[24..32].copy_from_slice(&4096u64.to_le_bytes()),
                "out of the disk",
            ),
            (|b| b[FIXED_LEN + 2 * AREA_DESC_LEN + 4] = 9, "content kind"),
        ];
        for (f, want) in cases {
            let got = reseal(&f);
            assert!(got.contains(want), "{want}: {got}");
        }
        // The second partition moved over the first.
        let got = reseal(&|b: &mut Vec<u8>| {
            let at = p + PART_DESC_LEN + 8;
            b[at..at + 8].copy_from_slice(&(3000u64 * 512).to_le_bytes());
        });
        assert!(got.contains("overlapping"), "{got}");
        assert_eq!(reseal(&|_| ()), "ok");
        let mut b = base.clone();
        b[70] ^= 1;
        assert!(std::format!("{}", DiskHeader::parse(&b).unwrap_err()).contains("checksum"));
    }

    #[test]
    fn writer_refuses_misuse() {
        let disk = gpt_disk(8192);
        let layout = Layout::read(&MemDev::new(disk), 8192 * 512, 512).unwrap();
        let h = DiskHeader::new(&layout, &[SectionKind::Raw, SectionKind::Raw], true);
        let mut w = Writer::new(MemDev::default(), h.clone()).unwrap();
        assert!(w.begin_section(0).is_err(), "areas missing");
        w.areas(&vec![0u8; h.area_bytes() as usize]).unwrap();
        assert!(w.write_all(&[1]).is_err(), "payload before a section");
        w.begin_section(0).unwrap();
        w.extent(512, &[1; 512]).unwrap();
        assert!(w.extent(0, &[1; 512]).is_err(), "out of order");
        assert!(
            w.extent(1 << 30, &[1; 512]).is_err(),
            "out of the partition"
        );
        w.extent_header(2048, 10).unwrap();
        assert!(w.end_extents().is_err(), "bytes owed");
        assert!(w.write_all(&[0; 11]).is_err(), "too many bytes");
        w.write_all(&[0; 10]).unwrap();
        w.end_extents().unwrap();
        assert!(w.finish().is_err(), "a section missing");
    }

    #[test]
    fn chunk_size_bounds_the_trailer() {
        for size in [0u64, 1 << 20, 1 << 30, 1 << 40, 1 << 50, u64::MAX] {
            let c = chunk_size_for(size);
            assert!(c.is_power_of_two() && c >= trailer::MIN_CHUNK_SIZE);
        }
        assert_eq!(chunk_size_for(1 << 30), 2 << 20);
    }
}
