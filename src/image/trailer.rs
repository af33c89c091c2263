//! The integrity trailer: CRC32 checksums of an image stream, appended after its last record.
//!
//! The reference ntfsclone stops reading at the last record (position `nr_clusters`), so bytes
//! after it are ignored and its restore of our image stays byte-identical. The trailer covers
//! every stream byte before it (header included), in fixed-size chunks, plus one value for the
//! whole stream, and checksums itself.
//!
//! Layout (all little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 16 | magic `"\0ntfsclone-crc32"` |
//! | 16 | 2 | version (1) |
//! | 18 | 2 | length of this fixed part (64) |
//! | 20 | 4 | chunk count `n` |
//! | 24 | 8 | chunk size in bytes (power of two) |
//! | 32 | 8 | stream length covered (bytes before the trailer) |
//! | 40 | 4 | CRC32 of the whole covered stream |
//! | 44 | 20 | zero |
//! | 64 | 4·n | CRC32 of each chunk |
//! | 64+4n | 4 | CRC32 of bytes 0 .. 64+4n of the trailer |
//! | 68+4n | 4 | total trailer length (72+4n+8) |
//! | 72+4n | 8 | end magic `"NTCSEND\0"` |
//!
//! The chunk size is chosen from the header's cluster count so that the trailer fits in 4 KiB
//! (a pipe reader that closes right after the last record must not make the save fail).
use super::le_field;
use crate::dev::{ReadAt, ReadStream};
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// Magic at the start of the trailer.
pub const MAGIC: &[u8; 16] = b"\0ntfsclone-crc32";
/// Magic at the very end of the trailer (found by seeking to the end of an image file).
pub const END_MAGIC: &[u8; 8] = b"NTCSEND\0";
/// Trailer format version.
pub const VERSION: u16 = 1;
/// Bytes before the chunk list.
pub const FIXED_LEN: usize = 64;
/// [`FIXED_LEN`] as the trailer's 16-bit field.
const FIXED_LEN_FIELD: u16 = 64;
const _: () = assert!(FIXED_LEN_FIELD as usize == FIXED_LEN);
/// Bytes after the chunk list (self-CRC, total length, end magic).
pub const FOOTER_LEN: usize = 16;
/// Most chunks a trailer holds: keeps it within 4 KiB.
pub const MAX_CHUNKS: usize = (4096 - FIXED_LEN - FOOTER_LEN) / 4;
/// Smallest chunk: 1 MiB (small images get a handful of chunks).
pub const MIN_CHUNK_SIZE: u64 = 1 << 20;
/// Largest trailer in bytes.
pub const MAX_LEN: usize = FIXED_LEN + 4 * MAX_CHUNKS + FOOTER_LEN;

/// Chunk size for an image of a volume with `nr_clusters` clusters of `cluster_size` bytes:
/// the smallest power of two ≥ 1 MiB such that the largest possible stream
/// (every cluster a record, plus the header) needs at most [`MAX_CHUNKS`] chunks.
pub fn chunk_size_for(nr_clusters: u64, cluster_size: u32) -> u64 {
    let max_stream = (nr_clusters.saturating_add(1))
        .saturating_mul(cluster_size as u64 + 1)
        .saturating_add(4096);
    let mut size = MIN_CHUNK_SIZE;
    while size < (1 << 62) && max_stream.div_ceil(size) > MAX_CHUNKS as u64 {
        size <<= 1;
    }
    size
}

/// Computes a trailer while the stream is written.
#[derive(Debug, Clone)]
pub struct Builder {
    chunk_size: u64,
    whole: crc32fast::Hasher,
    chunk: crc32fast::Hasher,
    in_chunk: u64,
    total: u64,
    crcs: heapless::Vec<u32, MAX_CHUNKS>,
    overflow: bool,
}

impl Builder {
    /// A builder with the given chunk size (see [`chunk_size_for`]).
    pub fn new(chunk_size: u64) -> Self {
        Builder {
            chunk_size: chunk_size.max(1),
            whole: crc32fast::Hasher::new(),
            chunk: crc32fast::Hasher::new(),
            in_chunk: 0,
            total: 0,
            crcs: heapless::Vec::new(),
            overflow: false,
        }
    }

    /// Adds stream bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.whole.update(data);
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = usize::try_from(self.chunk_size - self.in_chunk).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.chunk.update(now);
            self.in_chunk += now.len() as u64;
            data = rest;
            if self.in_chunk == self.chunk_size {
                self.close_chunk();
            }
        }
    }

    /// Ends the current chunk (the last one may be short).
    fn close_chunk(&mut self) {
        let done = core::mem::replace(&mut self.chunk, crc32fast::Hasher::new());
        self.overflow |= self.crcs.push(done.finalize()).is_err();
        self.in_chunk = 0;
    }

    /// Stream bytes seen so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The finished trailer bytes. Fails only if the stream outgrew the chunk size chosen for it.
    pub fn finish(mut self) -> Result<heapless::Vec<u8, MAX_LEN>> {
        if self.in_chunk > 0 {
            self.close_chunk();
        }
        if self.overflow {
            return Err(Error::message(format_args!(
                "image stream of {} bytes is too long for its checksum chunk size {}",
                self.total, self.chunk_size
            )));
        }
        let n = self.crcs.len();
        let mut out: heapless::Vec<u8, MAX_LEN> = heapless::Vec::new();
        let mut put = |b: &[u8]| {
            // Capacity is MAX_LEN and n <= MAX_CHUNKS, so this cannot fail.
            let _ = out.extend_from_slice(b);
        };
        put(MAGIC);
        put(&VERSION.to_le_bytes());
        put(&FIXED_LEN_FIELD.to_le_bytes());
        // n <= MAX_CHUNKS: the conversions below cannot fail.
        put(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
        put(&self.chunk_size.to_le_bytes());
        put(&self.total.to_le_bytes());
        put(&self.whole.finalize().to_le_bytes());
        put(&[0u8; 20]);
        for c in &self.crcs {
            put(&c.to_le_bytes());
        }
        let self_crc = crc32fast::hash(&out);
        let total_len = u32::try_from(FIXED_LEN + 4 * n + FOOTER_LEN).unwrap_or(u32::MAX);
        let _ = out.extend_from_slice(&self_crc.to_le_bytes());
        let _ = out.extend_from_slice(&total_len.to_le_bytes());
        let _ = out.extend_from_slice(END_MAGIC);
        Ok(out)
    }
}

/// A parsed, self-checked trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Stream bytes covered (the trailer starts at this offset).
    pub data_len: u64,
    /// CRC32 of the whole covered stream.
    pub whole_crc: u32,
    /// CRC32 of each chunk.
    pub crcs: heapless::Vec<u32, MAX_CHUNKS>,
}

/// Why a trailer could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailerProblem {
    /// No trailer (an image of the reference tool, or `--no-checksum`).
    Absent,
    /// Something that starts like a trailer but is damaged.
    Damaged(&'static str),
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(le_field(b, at))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(le_field(b, at))
}

/// `le32` as a byte count (a `u32` always fits a `usize` on the targets built).
fn le32_len(b: &[u8], at: usize) -> usize {
    usize::try_from(le32(b, at)).unwrap_or(usize::MAX)
}

impl Trailer {
    /// Parses a trailer that starts at `bytes[0]` (bytes after it are ignored).
    pub fn parse(bytes: &[u8]) -> core::result::Result<Trailer, TrailerProblem> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(TrailerProblem::Absent);
        }
        if bytes.len() < FIXED_LEN + FOOTER_LEN {
            return Err(TrailerProblem::Damaged("trailer is truncated"));
        }
        let version = u16::from_le_bytes(le_field(bytes, 16));
        let fixed = usize::from(u16::from_le_bytes(le_field(bytes, 18)));
        if version != VERSION || fixed != FIXED_LEN {
            return Err(TrailerProblem::Damaged("unknown trailer version"));
        }
        let n = le32_len(bytes, 20);
        if n > MAX_CHUNKS {
            return Err(TrailerProblem::Damaged("trailer chunk count out of range"));
        }
        let body = FIXED_LEN + 4 * n;
        if bytes.len() < body + FOOTER_LEN {
            return Err(TrailerProblem::Damaged("trailer is truncated"));
        }
        if bytes.get(..body).map(crc32fast::hash) != Some(le32(bytes, body)) {
            return Err(TrailerProblem::Damaged("trailer checksum mismatch"));
        }
        if le32_len(bytes, body + 4) != body + FOOTER_LEN
            || bytes.get(body + 8..body + 16) != Some(&END_MAGIC[..])
        {
            return Err(TrailerProblem::Damaged("trailer footer is damaged"));
        }
        let chunk_size = le64(bytes, 24);
        let data_len = le64(bytes, 32);
        if chunk_size == 0 || data_len.div_ceil(chunk_size) != n as u64 {
            return Err(TrailerProblem::Damaged(
                "trailer chunk size does not match its length",
            ));
        }
        let mut crcs = heapless::Vec::new();
        for i in 0..n {
            let _ = crcs.push(le32(bytes, FIXED_LEN + 4 * i));
        }
        Ok(Trailer {
            chunk_size,
            data_len,
            whole_crc: le32(bytes, 40),
            crcs,
        })
    }

    /// Given the last [`FOOTER_LEN`] bytes of a file, the trailer's total length, if they are a footer.
    pub fn len_from_footer(footer: &[u8]) -> Option<usize> {
        if footer.len() != FOOTER_LEN || footer.get(8..16) != Some(&END_MAGIC[..]) {
            return None;
        }
        let len = le32_len(footer, 4);
        (FIXED_LEN + FOOTER_LEN..=MAX_LEN)
            .contains(&len)
            .then_some(len)
    }

    /// Total length of the trailer that starts with `prefix` (at least 24 bytes of it), if
    /// `prefix` starts like one (magic, chunk count in range).
    pub fn full_len(prefix: &[u8]) -> Option<usize> {
        if prefix.len() < 24 || prefix.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return None;
        }
        let n = le32_len(prefix, 20);
        (n <= MAX_CHUNKS).then_some(FIXED_LEN + 4 * n + FOOTER_LEN)
    }

    /// Byte range `[start, end)` of chunk `i` of the covered stream.
    pub fn chunk_range(&self, i: usize) -> (u64, u64) {
        let start = i as u64 * self.chunk_size;
        (start, (start + self.chunk_size).min(self.data_len))
    }
}

/// Checks a stream against a trailer as the bytes go by: the same sums as [`Builder`],
/// compared at the end.
#[derive(Debug, Clone)]
pub struct Verifier {
    sums: Builder,
}

/// A chunk whose checksum did not match: bytes `[start, end)` of the image stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// First byte of the damaged chunk.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
}

impl Verifier {
    /// A verifier that computes chunk CRCs with `chunk_size` (compare them later with
    /// [`Verifier::check`]).
    pub fn new(chunk_size: u64) -> Self {
        Verifier {
            sums: Builder::new(chunk_size),
        }
    }

    /// Adds stream bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sums.update(data);
    }

    /// Stream bytes seen.
    pub fn len(&self) -> u64 {
        self.sums.total
    }

    /// The chunk size.
    pub fn chunk_size(&self) -> u64 {
        self.sums.chunk_size
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.sums.total == 0
    }

    /// Compares everything seen with `t`; returns the damaged chunks (up to 16) or Ok.
    /// When `t` uses another chunk size than this verifier, only the whole-stream value is
    /// compared (the damage is then reported as the whole stream).
    pub fn check(self, t: &Trailer) -> core::result::Result<(), heapless::Vec<Mismatch, 16>> {
        let mut s = self.sums;
        if s.in_chunk > 0 {
            s.close_chunk();
        }
        let mut bad: heapless::Vec<Mismatch, 16> = heapless::Vec::new();
        if t.chunk_size == s.chunk_size {
            for (i, want) in t.crcs.iter().enumerate() {
                if s.crcs.get(i) != Some(want) {
                    let (start, end) = t.chunk_range(i);
                    let _ = bad.push(Mismatch { start, end });
                }
            }
        }
        if bad.is_empty() && (s.total != t.data_len || s.whole.finalize() != t.whole_crc) {
            let _ = bad.push(Mismatch {
                start: 0,
                end: t.data_len,
            });
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad)
        }
    }
}

/// The input of a restore from a seekable image whose trailer was read first: every chunk is
/// read once more through `aux` (positioned reads, normally served by the page cache) and
/// checked before any of its bytes are handed to the image reader, so that nothing from a
/// damaged chunk is ever written. Bytes after the covered stream (the trailer) pass unchecked.
pub struct Prechecked<R: ReadStream, A: ReadAt> {
    input: R,
    aux: A,
    trailer: Trailer,
    /// File offset of stream byte 0.
    base: u64,
    /// Stream bytes handed out.
    pos: u64,
    /// Stream bytes `[0, verified)` are checked.
    verified: u64,
    next_chunk: usize,
    scratch: Vec<u8>,
    failed: Option<Mismatch>,
}

impl<R: ReadStream, A: ReadAt> Prechecked<R, A> {
    /// Wraps `input` (positioned at stream byte 0, file offset `base`); `aux` reads the same
    /// image at file offsets; `scratch_bytes` is the size of the checking buffer.
    pub fn new(input: R, aux: A, trailer: Trailer, base: u64, scratch_bytes: usize) -> Self {
        Prechecked {
            input,
            aux,
            trailer,
            base,
            pos: 0,
            verified: 0,
            next_chunk: 0,
            scratch: vec![0u8; scratch_bytes.max(4096)],
            failed: None,
        }
    }

    /// The first damaged chunk met, if any (the read that met it failed).
    pub fn failed(&self) -> Option<Mismatch> {
        self.failed
    }

    /// Stream bytes known good so far.
    pub fn verified(&self) -> u64 {
        self.verified
    }

    fn check_next(&mut self) -> Result<()> {
        let i = self.next_chunk;
        let Some(&want) = self.trailer.crcs.get(i) else {
            self.verified = self.trailer.data_len;
            return Ok(());
        };
        let (start, end) = self.trailer.chunk_range(i);
        let mut h = crc32fast::Hasher::new();
        let mut at = start;
        while at < end {
            let n =
                usize::try_from(end - at).map_or(self.scratch.len(), |n| n.min(self.scratch.len()));
            let off = self
                .base
                .checked_add(at)
                .ok_or_else(|| Error::corrupt(format_args!("image"), "offset out of range", at))?;
            // n <= scratch.len(): the split cannot fail.
            let (piece, _) = self.scratch.split_at_mut(n);
            self.aux.read_exact_at(piece, off)?;
            h.update(piece);
            at += n as u64;
        }
        if h.finalize() != want {
            self.failed = Some(Mismatch { start, end });
            return Err(Error::message(format_args!(
                "image checksum mismatch in image bytes {start}..{end} (0x{start:x}..0x{end:x}): \
                 nothing from them was used"
            )));
        }
        self.verified = end;
        self.next_chunk += 1;
        Ok(())
    }
}

impl<R: ReadStream, A: ReadAt> ReadStream for Prechecked<R, A> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.failed.is_some() {
            return Err(Error::Reported);
        }
        if self.pos >= self.trailer.data_len {
            let n = self.input.read(buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.pos >= self.verified {
            self.check_next()?;
        }
        let room =
            usize::try_from(self.verified - self.pos).map_or(buf.len(), |r| r.min(buf.len()));
        // room <= buf.len(): the split cannot fail.
        let (head, _) = buf.split_at_mut(room);
        let n = self.input.read(head)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    // Tests index their own fixed inputs: a panic is a failed test.
    #![allow(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )]
    use super::*;

    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn chunk_size_keeps_trailer_small() {
        for &(nr, cs) in &[
            (1u64, 512u32),
            (16383, 4096),
            (1 << 32, 4096),
            (u64::MAX / 2, 2 << 20),
        ] {
            let size = chunk_size_for(nr, cs);
            assert!(size >= MIN_CHUNK_SIZE && size.is_power_of_two());
            let max = (nr.saturating_add(1)).saturating_mul(cs as u64 + 1);
            assert!(
                max.saturating_add(4096).div_ceil(size) <= MAX_CHUNKS as u64 || size == 1 << 62
            );
        }
    }

    #[test]
    fn round_trip_and_detect_flips() {
        let data = stream(5 * 1024 * 1024 + 123);
        let mut b = Builder::new(MIN_CHUNK_SIZE);
        b.update(&data[..1000]);
        b.update(&data[1000..]);
        let t = b.finish().unwrap();
        assert!(t.len() <= 4096);
        let parsed = Trailer::parse(&t).unwrap();
        assert_eq!(parsed.data_len, data.len() as u64);
        assert_eq!(parsed.crcs.len(), 6);
        assert_eq!(
            Trailer::len_from_footer(&t[t.len() - FOOTER_LEN..]),
            Some(t.len())
        );

        let mut v = Verifier::new(parsed.chunk_size);
        v.update(&data);
        assert_eq!(v.check(&parsed), Ok(()));

        for &at in &[0usize, 3 * 1024 * 1024 + 5, data.len() - 1] {
            let mut d = data.clone();
            d[at] ^= 0x10;
            let mut v = Verifier::new(parsed.chunk_size);
            v.update(&d);
            let bad = v.check(&parsed).unwrap_err();
            assert_eq!(bad.len(), 1);
            assert!(bad[0].start <= at as u64 && (at as u64) < bad[0].end);
        }
    }

    #[test]
    fn damaged_trailer_is_reported() {
        let mut b = Builder::new(MIN_CHUNK_SIZE);
        b.update(&stream(100));
        let t = b.finish().unwrap();
        assert_eq!(
            Trailer::parse(b"random bytes here..."),
            Err(TrailerProblem::Absent)
        );
        for i in 16..t.len() - 8 {
            let mut d = t.to_vec();
            d[i] ^= 1;
            assert!(
                matches!(Trailer::parse(&d), Err(TrailerProblem::Damaged(_))),
                "byte {i}"
            );
        }
        assert!(matches!(
            Trailer::parse(&t[..40]),
            Err(TrailerProblem::Damaged(_))
        ));
    }

    #[test]
    fn overlong_stream_fails_to_finish() {
        let mut b = Builder::new(1);
        b.update(&stream(MAX_CHUNKS + 1));
        assert!(b.finish().is_err());
    }

    /// An image of 5000 clusters of 512 bytes (about 2.5 MiB: three 1 MiB chunks), with trailer.
    fn image_with_trailer() -> Vec<u8> {
        use crate::dev::mem::MemDev;
        use crate::image::{Header, Writer};
        let nr = 5000u64;
        let h = Header::new(512, (nr + 1) * 512, nr, nr);
        let mut w = Writer::new(MemDev::default(), &h, 0)
            .unwrap()
            .with_trailer(&h);
        for c in 0..=nr {
            w.cluster(&[(c % 251) as u8; 512]).unwrap();
        }
        let (out, t) = w.finish_with_trailer().unwrap();
        assert!(matches!(t, crate::image::writer::TrailerWrite::Written(n) if n <= 4096));
        out.unwrap().data
    }

    fn read_all<R: ReadStream>(r: &mut crate::image::Reader<R>) -> Result<u64> {
        let mut n = 0;
        loop {
            match r.next_record()? {
                crate::image::Record::End { .. } => return Ok(n),
                _ => n += 1,
            }
        }
    }

    #[test]
    fn stream_check_after_the_last_record() {
        use crate::dev::mem::MemDev;
        use crate::image::reader::{Checksum, Reader};
        let img = image_with_trailer();
        let good = |d: &[u8]| {
            let mut r = Reader::open_with(
                MemDev::new(d.to_vec()),
                None,
                0,
                false,
                Checksum::FromHeader,
            )
            .unwrap();
            assert_eq!(read_all(&mut r).unwrap(), 5001);
            let data_len = r.consumed();
            let t = Trailer::parse(r.read_tail().unwrap()).unwrap();
            assert_eq!(t.data_len, data_len);
            r.finish_checksums(&t).unwrap()
        };
        assert_eq!(good(&img), Ok(()));
        for at in [100usize, 1_500_000, img.len() - 2000] {
            let mut d = img.clone();
            d[at] ^= 0x40;
            let bad = good(&d).unwrap_err();
            assert_eq!(bad.len(), 1);
            assert!(
                bad[0].start <= at as u64 && (at as u64) < bad[0].end,
                "{at}"
            );
        }
    }

    #[test]
    fn prechecked_stops_before_a_damaged_chunk() {
        use crate::dev::mem::MemDev;
        use crate::image::reader::{Checksum, Reader};
        let img = image_with_trailer();
        let len = Trailer::len_from_footer(&img[img.len() - FOOTER_LEN..]).unwrap();
        let t = Trailer::parse(&img[img.len() - len..]).unwrap();
        let open = |d: &[u8]| {
            let p = Prechecked::new(
                MemDev::new(d.to_vec()),
                MemDev::new(d.to_vec()),
                t.clone(),
                0,
                0,
            );
            Reader::open_with(p, Some(0), 0, false, Checksum::Off)
        };
        let mut r = open(&img).unwrap();
        assert_eq!(read_all(&mut r).unwrap(), 5001);
        // A flip in the second chunk: every record of the first chunk comes out, none after.
        let mut d = img.clone();
        d[(1 << 20) + 77] ^= 1;
        let mut r = open(&d).unwrap();
        let mut last = 0;
        let err = loop {
            match r.next_record() {
                Ok(crate::image::Record::Cluster { pos, .. }) => last = pos,
                Ok(_) => core::panic!("damage not found"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::Message(_)), "{err:?}");
        let m = r.input().failed().unwrap();
        assert_eq!((m.start, m.end), (1 << 20, 2 << 20));
        assert!((last + 1) * 513 + 56 <= 1 << 20);
        // Damage in the header: nothing at all is handed out.
        let mut d = img.clone();
        d[20] ^= 1;
        assert!(open(&d).is_err());
    }
}
