//! Zstandard frames and the seek table of the seekable format, parsed from untrusted bytes.
//!
//! Follows RFC 8878 (Zstandard Compression and the 'application/zstd' Media Type), sections
//! 3.1.1 (Zstandard frames: magic, frame header, blocks, content checksum) and 3.1.2
//! (skippable frames), and the zstd project's "Zstandard Seekable Format" document (the seek
//! table: a skippable frame with magic 0x184D2A5E at the end of the stream, entries of
//! compressed and decompressed size, a 9-byte footer ending in 0x8F92EAB1).
//!
//! Nothing here decompresses: [`FrameWalker`] finds where a frame ends by reading its header
//! and block headers, so that whole frames can be handed to worker threads; [`SeekTable`]
//! locates and checks the seek table of a file. Sizes read from the input are checked
//! before any use and never drive an allocation beyond what the input itself holds.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use crate::dev::ReadAt;
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// Magic number of a Zstandard frame (RFC 8878 3.1.1), little-endian on disk.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames use the 16 magic numbers 0x184D2A50..=0x184D2A5F (RFC 8878 3.1.2).
pub const SKIPPABLE_MAGIC_BASE: u32 = 0x184D_2A50;
/// The skippable-frame magic of the seek table (seekable format).
pub const SEEK_TABLE_MAGIC: u32 = 0x184D_2A5E;
/// Last four bytes of a seekable stream (seekable format, Seek_Table_Footer).
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Size of the seek table footer: Number_Of_Frames (4), Seek_Table_Descriptor (1), magic (4).
pub const SEEK_FOOTER_BYTES: usize = 9;
/// Size of a skippable frame header: magic (4) and Frame_Size (4).
pub const SKIPPABLE_HEADER_BYTES: usize = 8;
/// Largest block content (RFC 8878 3.1.1.2.3: Block_Maximum_Size is at most 128 KiB).
pub const BLOCK_MAX_BYTES: u32 = 128 << 10;
/// Largest frame header: magic 4, descriptor 1, window 1, dictionary id 4, content size 8.
pub const FRAME_HEADER_MAX_BYTES: usize = 18;

/// Where corruption messages say the bytes are.
const PLACE: &str = "zstd stream";

fn corrupt(what: &'static str, at: u64) -> Error {
    Error::corrupt(format_args!("{PLACE}"), what, at)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut v = [0u8; 4];
    v.copy_from_slice(s);
    Some(u32::from_le_bytes(v))
}

fn le_n(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x))
}

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// What the first four bytes of a frame say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// A Zstandard frame.
    Zstd,
    /// A skippable frame with this magic (the seek table is one).
    Skippable(u32),
    /// Anything else.
    Other(u32),
}

impl Magic {
    /// Classifies a little-endian magic number.
    pub fn of(v: u32) -> Magic {
        if v == ZSTD_MAGIC {
            Magic::Zstd
        } else if v & 0xFFFF_FFF0 == SKIPPABLE_MAGIC_BASE {
            Magic::Skippable(v)
        } else {
            Magic::Other(v)
        }
    }
}

/// Whether `start` (the first bytes of a stream) begins with a zstd or skippable frame.
pub fn is_zstd_start(start: &[u8]) -> bool {
    matches!(
        le32(start, 0).map(Magic::of),
        Some(Magic::Zstd | Magic::Skippable(_))
    )
}

/// A parsed Zstandard frame header (RFC 8878 3.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of the header, magic included (6 to 18).
    pub header_bytes: usize,
    /// Frame_Content_Size, when the header carries it.
    pub content_size: Option<u64>,
    /// Window_Size in bytes (for single-segment frames: the content size).
    pub window_bytes: u64,
    /// Content_Checksum_Flag: 4 bytes of XXH64 follow the last block.
    pub checksum: bool,
    /// Dictionary_ID (0: none).
    pub dictionary_id: u32,
}

impl FrameHeader {
    /// Parses the header at the start of `b` (magic included). `at` is the stream offset of
    /// `b[0]`, for messages. `Ok(None)`: `b` is too short to tell.
    pub fn parse(b: &[u8], at: u64) -> Result<Option<FrameHeader>> {
        let Some(magic) = le32(b, 0) else {
            return Ok(None);
        };
        if magic != ZSTD_MAGIC {
            return Err(corrupt("not a zstd frame (bad magic number)", at));
        }
        let Some(&fhd) = b.get(4) else {
            return Ok(None);
        };
        let fcs_flag = fhd >> 6;
        let single_segment = fhd & 0x20 != 0;
        if fhd & 0x08 != 0 {
            return Err(corrupt("zstd frame header: reserved bit set", at + 4));
        }
        let checksum = fhd & 0x04 != 0;
        let did_bytes = match fhd & 3 {
            0 => 0usize,
            1 => 1,
            2 => 2,
            _ => 4,
        };
        let fcs_bytes = match (fcs_flag, single_segment) {
            (0, false) => 0usize,
            (0, true) => 1,
            (1, _) => 2,
            (2, _) => 4,
            _ => 8,
        };
        let wd_bytes = usize::from(!single_segment);
        let header_bytes = 5 + wd_bytes + did_bytes + fcs_bytes;
        let Some(h) = b.get(..header_bytes) else {
            return Ok(None);
        };
        let mut p = 5usize;
        let mut window_bytes = 0u64;
        if !single_segment {
            let wd = h.get(p).copied().unwrap_or(0);
            let exponent = u32::from(wd >> 3);
            let base = 1u64 << (10 + exponent);
            window_bytes = base + (base / 8) * u64::from(wd & 7);
            p += 1;
        }
        let dictionary_id = h.get(p..p + did_bytes).map_or(0, le_n);
        p += did_bytes;
        let content_size = match fcs_bytes {
            0 => None,
            2 => Some(h.get(p..p + 2).map_or(0, le_n) + 256),
            n => Some(h.get(p..p + n).map_or(0, le_n)),
        };
        if single_segment {
            window_bytes = content_size.unwrap_or(0);
        }
        Ok(Some(FrameHeader {
            header_bytes,
            content_size,
            window_bytes,
            checksum,
            dictionary_id: u32::try_from(dictionary_id).unwrap_or(u32::MAX),
        }))
    }
}

/// What a complete frame is, once [`FrameWalker`] has found its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A Zstandard frame of `len` bytes.
    Zstd {
        /// Its header.
        header: FrameHeader,
        /// Bytes of the whole frame (header, blocks, checksum).
        len: u64,
        /// Bytes it decompresses to, as far as the block headers tell: exact when every
        /// block is raw or RLE, otherwise a lower bound.
        raw_bytes: u64,
    },
    /// A skippable frame of `len` bytes (header included).
    Skippable {
        /// Its magic number.
        magic: u32,
        /// Bytes of the whole frame (8 + Frame_Size).
        len: u64,
    },
}

/// One step of [`FrameWalker::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The walker needs the frame's first `n` bytes (more than it was given).
    Need(u64),
    /// The frame is complete.
    Done(Frame),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Blocks(FrameHeader),
    Finished(Frame),
}

/// Finds the end of one frame by walking its header and block headers, incrementally: the
/// caller passes the frame's bytes read so far (always from the frame's first byte) and
/// reads more when told. Each block is looked at once.
#[derive(Debug, Clone)]
pub struct FrameWalker {
    /// Stream offset of the frame's first byte (for messages).
    base: u64,
    /// Offset in the frame of the next block header (or of the checksum after the last).
    at: u64,
    raw_bytes: u64,
    last_seen: bool,
    state: State,
}

impl FrameWalker {
    /// A walker for the frame starting at stream offset `base`.
    pub fn new(base: u64) -> Self {
        FrameWalker {
            base,
            at: 0,
            raw_bytes: 0,
            last_seen: false,
            state: State::Start,
        }
    }

    /// The frame header, once parsed.
    pub fn header(&self) -> Option<FrameHeader> {
        match self.state {
            State::Blocks(h) => Some(h),
            State::Finished(Frame::Zstd { header, .. }) => Some(header),
            _ => None,
        }
    }

    /// Walks on over `frame` (the frame's bytes from its start; may be longer than the
    /// frame). Returns what is missing or the complete frame: a Zstandard frame is complete
    /// only when `frame` holds all of it; a skippable frame as soon as its size is known.
    pub fn advance(&mut self, frame: &[u8]) -> Result<Step> {
        let have = frame.len() as u64;
        loop {
            match self.state {
                State::Finished(f) => return Ok(Step::Done(f)),
                State::Start => {
                    let Some(magic) = le32(frame, 0) else {
                        return Ok(Step::Need(4));
                    };
                    match Magic::of(magic) {
                        Magic::Zstd => match FrameHeader::parse(frame, self.base)? {
                            None => {
                                return Ok(Step::Need(
                                    (have + 1).min(FRAME_HEADER_MAX_BYTES as u64),
                                ))
                            }
                            Some(h) => {
                                self.at = h.header_bytes as u64;
                                self.state = State::Blocks(h);
                            }
                        },
                        Magic::Skippable(m) => {
                            let Some(size) = le32(frame, 4) else {
                                return Ok(Step::Need(SKIPPABLE_HEADER_BYTES as u64));
                            };
                            self.state = State::Finished(Frame::Skippable {
                                magic: m,
                                len: SKIPPABLE_HEADER_BYTES as u64 + u64::from(size),
                            });
                        }
                        Magic::Other(_) => {
                            return Err(corrupt("not a zstd frame (bad magic number)", self.base))
                        }
                    }
                }
                State::Blocks(h) => {
                    if self.last_seen {
                        let len = self.at + if h.checksum { 4 } else { 0 };
                        if len > have {
                            return Ok(Step::Need(len));
                        }
                        if let Some(cs) = h.content_size {
                            if self.raw_bytes > cs {
                                return Err(corrupt(
                                    "zstd frame: blocks hold more than the frame's content size",
                                    self.base,
                                ));
                            }
                        }
                        self.state = State::Finished(Frame::Zstd {
                            header: h,
                            len,
                            raw_bytes: self.raw_bytes,
                        });
                        continue;
                    }
                    let Some(bh) = frame.get(usize_of(self.at)..usize_of(self.at + 3)) else {
                        return Ok(Step::Need(self.at + 3));
                    };
                    let v = le_n(bh);
                    let last = v & 1 != 0;
                    let block_type = (v >> 1) & 3;
                    let size = v >> 3;
                    let at = self.base + self.at;
                    let max = h.window_bytes.clamp(1, u64::from(BLOCK_MAX_BYTES));
                    let stored = match block_type {
                        0 => size,
                        1 => 1,
                        2 => size,
                        _ => return Err(corrupt("zstd block: reserved block type", at)),
                    };
                    // Block_Maximum_Size bounds the decompressed size of raw and RLE blocks
                    // and the stored size of compressed ones (RFC 8878 3.1.1.2.3-4).
                    if size > max {
                        return Err(corrupt("zstd block: larger than the block size limit", at));
                    }
                    if block_type != 2 {
                        self.raw_bytes += size;
                    }
                    self.at += 3 + stored;
                    self.last_seen = last;
                }
            }
        }
    }
}

/// Bytes of one seek table entry: with or without the 4-byte checksum.
fn entry_bytes(checksums: bool) -> u64 {
    if checksums {
        12
    } else {
        8
    }
}

/// One frame listed in the seek table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekEntry {
    /// Compressed bytes of the frame.
    pub compressed: u32,
    /// Decompressed bytes of the frame.
    pub decompressed: u32,
    /// Low 32 bits of the XXH64 of the decompressed bytes, when the table has checksums.
    pub checksum: Option<u32>,
}

/// (compressed, decompressed) stream offsets of each frame's start, and of the end after
/// the last frame.
pub type FrameIndex = Vec<(u64, u64)>;

/// A seek table found at the end of a stream: where it starts and how to read its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekTable {
    /// Number of frames listed.
    pub frames: u32,
    /// Entries carry checksums.
    pub checksums: bool,
    /// Stream offset of the table's skippable frame (the end of the last listed frame).
    pub start: u64,
}

impl SeekTable {
    /// Parses a footer (the last 9 bytes of a stream of `stream_len` bytes) and checks that
    /// the table it describes fits. `Ok(None)`: no seekable magic (a plain zstd stream).
    pub fn from_footer(footer: &[u8], stream_len: u64) -> Result<Option<SeekTable>> {
        let (Some(frames), Some(&desc), Some(magic)) =
            (le32(footer, 0), footer.get(4), le32(footer, 5))
        else {
            return Ok(None);
        };
        if magic != SEEKABLE_MAGIC {
            return Ok(None);
        }
        let footer_at = stream_len.saturating_sub(SEEK_FOOTER_BYTES as u64);
        if desc & 0x7C != 0 {
            return Err(corrupt("seek table: reserved bits set", footer_at + 4));
        }
        let checksums = desc & 0x80 != 0;
        let table = u64::from(frames) * entry_bytes(checksums)
            + (SEEK_FOOTER_BYTES + SKIPPABLE_HEADER_BYTES) as u64;
        let Some(start) = stream_len.checked_sub(table) else {
            return Err(corrupt(
                "seek table: lists more frames than the stream can hold",
                footer_at,
            ));
        };
        Ok(Some(SeekTable {
            frames,
            checksums,
            start,
        }))
    }

    /// Checks the table's skippable frame header (`b`: its first 8 bytes).
    pub fn check_header(&self, b: &[u8]) -> Result<()> {
        let size = u64::from(self.frames) * entry_bytes(self.checksums) + SEEK_FOOTER_BYTES as u64;
        if le32(b, 0) != Some(SEEK_TABLE_MAGIC) {
            return Err(corrupt(
                "seek table: no skippable frame header where the footer says",
                self.start,
            ));
        }
        if le32(b, 4).map(u64::from) != Some(size) {
            return Err(corrupt(
                "seek table: frame size disagrees with its footer",
                self.start + 4,
            ));
        }
        Ok(())
    }

    /// Bytes of one entry.
    pub fn entry_bytes(&self) -> usize {
        if self.checksums {
            12
        } else {
            8
        }
    }

    /// Stream offset of entry `i`.
    pub fn entry_offset(&self, i: u32) -> u64 {
        self.start + SKIPPABLE_HEADER_BYTES as u64 + u64::from(i) * entry_bytes(self.checksums)
    }

    /// Parses one entry from its bytes.
    pub fn entry(&self, b: &[u8]) -> Option<SeekEntry> {
        Some(SeekEntry {
            compressed: le32(b, 0)?,
            decompressed: le32(b, 4)?,
            checksum: if self.checksums {
                Some(le32(b, 8)?)
            } else {
                None
            },
        })
    }

    /// Reads the seek table at the end of `dev` (`len` bytes long), if it has one, and checks
    /// that its entries add up: the compressed sizes to the table's offset, no entry of more
    /// than `max_frame` decompressed bytes. Returns the table and the (compressed offset,
    /// decompressed offset) of each frame's start, one pair per frame plus the ends. The list
    /// is as long as the table, which is part of the stream (at most len / 8 entries).
    pub fn read<D: ReadAt>(
        dev: &D,
        len: u64,
        max_frame: u32,
    ) -> Result<Option<(SeekTable, FrameIndex)>> {
        if len < (SEEK_FOOTER_BYTES + SKIPPABLE_HEADER_BYTES) as u64 {
            return Ok(None);
        }
        let mut footer = [0u8; SEEK_FOOTER_BYTES];
        dev.read_exact_at(&mut footer, len - SEEK_FOOTER_BYTES as u64)?;
        let Some(t) = SeekTable::from_footer(&footer, len)? else {
            return Ok(None);
        };
        let mut head = [0u8; SKIPPABLE_HEADER_BYTES];
        dev.read_exact_at(&mut head, t.start)?;
        t.check_header(&head)?;
        let mut index = Vec::new();
        index
            .try_reserve_exact(usize_of(u64::from(t.frames)).saturating_add(1))
            .map_err(|_| corrupt("seek table: too many frames", t.start))?;
        let (mut c, mut d) = (0u64, 0u64);
        index.push((c, d));
        let mut buf = [0u8; 12 * 256];
        let eb = t.entry_bytes();
        let mut i = 0u32;
        while i < t.frames {
            let n = (t.frames - i).min(256);
            let chunk = buf
                .get_mut(..usize_of(u64::from(n)) * eb)
                .unwrap_or_default();
            dev.read_exact_at(chunk, t.entry_offset(i))?;
            for e in chunk.chunks_exact(eb) {
                let Some(e) = t.entry(e) else { break };
                let at = t.entry_offset(i);
                if e.decompressed > max_frame {
                    return Err(corrupt(
                        "seek table: a frame claims more decompressed bytes than a frame may hold",
                        at,
                    ));
                }
                if e.compressed == 0 {
                    return Err(corrupt("seek table: a frame of 0 bytes", at));
                }
                c += u64::from(e.compressed);
                d += u64::from(e.decompressed);
                if c > t.start {
                    return Err(corrupt(
                        "seek table: frames extend past the start of the seek table",
                        at,
                    ));
                }
                index.push((c, d));
                i += 1;
            }
        }
        if c != t.start {
            return Err(corrupt(
                "seek table: frames end before the seek table (bytes unaccounted for)",
                c,
            ));
        }
        Ok(Some((t, index)))
    }
}

/// Appends the seek table of the listed frames (compressed, decompressed bytes; no
/// checksums) to `out`: skippable frame header, entries, footer.
pub fn write_seek_table(frames: &[(u32, u32)], out: &mut Vec<u8>) {
    let size = frames.len() * 8 + SEEK_FOOTER_BYTES;
    out.extend_from_slice(&SEEK_TABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    for &(c, d) in frames {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(
        &u32::try_from(frames.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.push(0);
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::dev::mem::MemDev;

    /// A frame by hand: single segment, content size 300 (2-byte field), checksum, one raw
    /// block of 200 bytes and one RLE block of 100.
    fn frame() -> Vec<u8> {
        let mut f = ZSTD_MAGIC.to_le_bytes().to_vec();
        f.push(0x40 | 0x20 | 0x04);
        f.extend_from_slice(&(300u16 - 256).to_le_bytes());
        let raw = 200u32 << 3;
        f.extend_from_slice(&raw.to_le_bytes()[..3]);
        f.extend(core::iter::repeat(7u8).take(200));
        let rle = (100u32 << 3) | (1 << 1) | 1;
        f.extend_from_slice(&rle.to_le_bytes()[..3]);
        f.push(9);
        f.extend_from_slice(&[1, 2, 3, 4]);
        f
    }

    #[test]
    fn walker_finds_the_end_byte_by_byte() {
        let f = frame();
        let mut w = FrameWalker::new(1000);
        let mut have = 0usize;
        let mut calls = 0;
        loop {
            calls += 1;
            match w.advance(&f[..have]).unwrap() {
                Step::Need(n) => {
                    assert!(n as usize > have && n as usize <= f.len());
                    have = n as usize;
                }
                Step::Done(Frame::Zstd {
                    header,
                    len,
                    raw_bytes,
                }) => {
                    assert_eq!(len as usize, f.len());
                    assert_eq!(raw_bytes, 300);
                    assert_eq!(header.content_size, Some(300));
                    assert!(header.checksum);
                    break;
                }
                other => core::panic!("{other:?}"),
            }
        }
        assert!(calls < 10, "{calls} calls");
    }

    #[test]
    fn header_fields() {
        // Window descriptor 0x58: exponent 11, mantissa 0 -> 2 MiB; 4-byte content size.
        let mut h = ZSTD_MAGIC.to_le_bytes().to_vec();
        h.extend_from_slice(&[0x80, 0x58]);
        h.extend_from_slice(&(4u32 << 20).to_le_bytes());
        let p = FrameHeader::parse(&h, 0).unwrap().unwrap();
        assert_eq!(p.header_bytes, 10);
        assert_eq!(p.window_bytes, 2 << 20);
        assert_eq!(p.content_size, Some(4 << 20));
        assert!(FrameHeader::parse(&h[..9], 0).unwrap().is_none());
    }

    #[test]
    fn bad_frames_are_errors_with_offsets() {
        type Change = dyn Fn(&mut Vec<u8>);
        let cases: [(&Change, &str, u64); 4] = [
            (&|f| f[0] ^= 1, "bad magic", 50),
            (&|f| f[4] |= 0x08, "reserved bit", 54),
            (&|f| f[7] |= 6, "reserved block type", 57),
            // The raw block claims 1 MiB: over Block_Maximum_Size.
            (&|f| f[9] = 0x80, "block size limit", 57),
        ];
        for (change, what, at) in cases {
            let mut f = frame();
            change(&mut f);
            match FrameWalker::new(50).advance(&f) {
                Err(Error::Corrupt { what: w, at: a, .. }) => {
                    assert!(w.contains(what), "{w} / {what}");
                    assert_eq!(a, at, "{what}");
                }
                other => core::panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn skippable_frames() {
        let mut f = (SKIPPABLE_MAGIC_BASE + 3).to_le_bytes().to_vec();
        f.extend_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            FrameWalker::new(0).advance(&f).unwrap(),
            Step::Done(Frame::Skippable {
                magic: SKIPPABLE_MAGIC_BASE + 3,
                len: 13
            })
        );
        assert!(is_zstd_start(&f) && is_zstd_start(&frame()) && !is_zstd_start(b"\0ntfsclone"));
    }

    #[test]
    fn seek_table_round_trip_and_damage() {
        let frames = [(100u32, 4u32 << 20), (50, 1000)];
        let mut s = vec![0u8; 150];
        write_seek_table(&frames, &mut s);
        let len = s.len() as u64;
        let (t, idx) = SeekTable::read(&MemDev::new(s.clone()), len, 4 << 20)
            .unwrap()
            .unwrap();
        assert_eq!((t.frames, t.start), (2, 150));
        assert_eq!(idx, vec![(0, 0), (100, 4 << 20), (150, (4 << 20) + 1000)]);
        // A plain stream: no table.
        assert!(SeekTable::read(&MemDev::new(vec![0; 40]), 40, 1 << 20)
            .unwrap()
            .is_none());
        // Damage: frame count, descriptor, sizes, claimed size.
        let foot = s.len() - 9;
        let cases: [(usize, u8, &str); 5] = [
            (foot, 200, "more frames"),
            (foot + 4, 0x04, "reserved"),
            (158, 0xff, "past the start"),
            (158, 99, "unaccounted"),
            (163, 0x7f, "claims more"),
        ];
        for (at, v, what) in cases {
            let mut d = s.clone();
            d[at] = v;
            match SeekTable::read(&MemDev::new(d), len, 4 << 20) {
                Err(Error::Corrupt { what: w, .. }) => assert!(w.contains(what), "{w} / {what}"),
                other => core::panic!("{what}: {other:?}"),
            }
        }
    }
}
