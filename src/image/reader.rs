//! Reads an image: the header, then the record stream, strictly sequentially (pipes work),
//! through one fixed buffer filled by large reads.
//!
//! The reader checks the stream the way the reference's restore loop does and reports the
//! reference's messages with the reference's input offsets (its `tellin()`: the input file
//! offset after the bytes of the record, or −1 when the input cannot seek, e.g. a pipe).
//! Where the reference prints something misleading (a truncated image: a stale errno), the
//! reader says where the image ended instead.
use super::header::{Header, Layout, HEADER_SIZE_OLD};
use super::record::{CMD_GAP, CMD_NEXT};
use super::trailer::{self, Verifier};
use super::{as_signed, as_unsigned, le_field};
use crate::dev::ReadStream;
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// One step of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// `CMD_NEXT`: the bytes of cluster `pos` (a full cluster, or the partial last one).
    Cluster {
        /// Cluster position (LCN) the bytes belong to.
        pos: u64,
        /// The bytes, borrowed from the reader's buffer.
        data: &'a [u8],
    },
    /// `CMD_GAP`: the position moves from `from` by `count` clusters (negative = backwards).
    Gap {
        /// Position before the gap.
        from: u64,
        /// Signed cluster count, never 0.
        count: i64,
    },
    /// The stream is complete. `backup_boot_missing`: it ended at position nr_clusters without
    /// the backup boot sector record (a version 10.0 image; the reference prints a warning).
    End {
        /// See above.
        backup_boot_missing: bool,
    },
}

/// An image being read.
pub struct Reader<R: ReadStream> {
    input: R,
    header: Header,
    /// Buffer; `buf[start..end]` holds input bytes not consumed yet. Its own, or the input's
    /// (see [`ReadStream::swap_buffer`]); never shorter than `cap`.
    buf: Vec<u8>,
    cap: usize,
    /// The input swaps buffers: the reader copies only what completes a record.
    swaps: bool,
    start: usize,
    end: usize,
    /// Input bytes consumed (header and records), relative to where reading started.
    consumed: u64,
    /// Input file offset where reading started, None if the input cannot seek.
    base: Option<u64>,
    /// Next cluster position.
    pos: u64,
    /// Output is stdout: gaps are written as zeros, so only forward gaps after data work.
    to_stdout: bool,
    clusters_seen: u64,
    done: bool,
    /// Checksums of the consumed stream bytes (header included), when verifying.
    sums: Option<Verifier>,
}

/// Whether [`Reader::open_with`] checksums the stream as it is consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// No checksums.
    Off,
    /// Chunks of the size our writer chooses for this header ([`trailer::chunk_size_for`]).
    FromHeader,
    /// Chunks of this size (from a trailer read beforehand).
    ChunkSize(u64),
}

/// `err_exit` with the reference's text.
fn fatal(args: core::fmt::Arguments) -> Error {
    Error::fatal(args)
}

impl<R: ReadStream> Reader<R> {
    /// Reads and checks the header. `base` is the input's file offset now (None for a pipe);
    /// `buf_bytes` the size of the read buffer (raised to hold one record of a cluster);
    /// `to_stdout` selects the checks the reference makes when restoring to stdout.
    pub fn open(input: R, base: Option<u64>, buf_bytes: usize, to_stdout: bool) -> Result<Self> {
        Self::open_with(input, base, buf_bytes, to_stdout, Checksum::Off)
    }

    /// [`Reader::open`], checksumming every consumed byte (header included) as asked; see
    /// [`Reader::finish_checksums`].
    pub fn open_with(
        input: R,
        base: Option<u64>,
        buf_bytes: usize,
        to_stdout: bool,
        checksum: Checksum,
    ) -> Result<Self> {
        Self::open_continuing(input, base, buf_bytes, to_stdout, checksum, None)
    }

    /// [`Reader::open_with`], continuing the checksums of an enclosing stream (a special image
    /// inside a disk image) when `outer` is given: every consumed byte is added to it, and
    /// [`Reader::into_rest`] hands it back.
    pub fn open_continuing(
        mut input: R,
        base: Option<u64>,
        buf_bytes: usize,
        to_stdout: bool,
        checksum: Checksum,
        outer: Option<Verifier>,
    ) -> Result<Self> {
        let mut start = [0u8; HEADER_SIZE_OLD];
        let n = input.read_full(&mut start)?;
        let mut consumed = n as u64;
        if n < HEADER_SIZE_OLD {
            return Err(short(base, consumed, "the image ends inside its header"));
        }
        let (mut header, layout) = Header::parse_start(&start)?;
        let mut sums = match checksum {
            Checksum::Off => outer,
            Checksum::FromHeader => Some(Verifier::new(trailer::chunk_size_for(
                header.nr_clusters,
                header.cluster_size,
            ))),
            Checksum::ChunkSize(n) => Some(Verifier::new(n)),
        };
        if let Some(v) = sums.as_mut() {
            v.update(&start);
        }
        if layout == Layout::V10 {
            let mut field = [0u8; 4];
            let n = input.read_full(&mut field)?;
            consumed += n as u64;
            if let Some(v) = sums.as_mut() {
                v.update(field.get(..n).unwrap_or(&field));
            }
            if n < 4 {
                return Err(short(base, consumed, "the image ends inside its header"));
            }
            let mut skip = u64::from(header.set_offset(field));
            let mut scratch = [0u8; 512];
            while skip > 0 {
                let want = usize::try_from(skip).map_or(scratch.len(), |s| s.min(scratch.len()));
                // want <= scratch.len(): the split cannot fail.
                let (piece, _) = scratch.split_at_mut(want);
                let n = input.read_full(piece)?;
                consumed += n as u64;
                if let Some(v) = sums.as_mut() {
                    v.update(piece.get(..n).unwrap_or(piece));
                }
                if n < want {
                    return Err(short(
                        base,
                        consumed,
                        "the image ends before its offset to image data",
                    ));
                }
                skip -= n as u64;
            }
        }
        // Room for one record of a cluster, and for a whole trailer (`read_tail`).
        let cap = buf_bytes
            .max(header.cluster_size as usize + 9)
            .max(trailer::MAX_LEN);
        Ok(Reader {
            input,
            header,
            buf: vec![0u8; cap],
            cap,
            swaps: false,
            start: 0,
            end: 0,
            consumed,
            base,
            pos: 0,
            to_stdout,
            clusters_seen: 0,
            done: false,
            sums,
        })
    }

    /// After `End`: the checksum state and the input bytes read past the last record (they
    /// belong to whatever follows the image in the input).
    pub fn into_rest(self) -> (Option<Verifier>, Vec<u8>) {
        let rest = self.buf.get(self.start..self.end).unwrap_or(&[]).to_vec();
        (self.sums, rest)
    }

    /// The input.
    pub fn input(&self) -> &R {
        &self.input
    }

    /// Stream bytes consumed so far (header and records), from where reading started.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Reads the bytes that follow the last record, up to a whole trailer (never more than
    /// [`trailer::MAX_LEN`] bytes, and never past the end of a trailer, so a pipe that carries
    /// only the trailer is not waited on). Call after `End`. Returns the bytes read.
    pub fn read_tail(&mut self) -> Result<&[u8]> {
        let have = |r: &mut Self, n: usize| -> Result<usize> {
            let n = n.min(trailer::MAX_LEN);
            r.fill(n)?;
            Ok((r.end - r.start).min(n))
        };
        let mut n = have(self, trailer::FIXED_LEN)?;
        let want = trailer::Trailer::full_len(self.avail_prefix(n));
        if let Some(want) = want {
            n = have(self, want)?;
        }
        Ok(self.avail_prefix(n))
    }

    /// Reads the input to its end (after `End` and [`Reader::read_tail`]) and returns its last
    /// [`trailer::FOOTER_LEN`] bytes, if there are that many after the last record. Used when the
    /// bytes after the last record are not a trailer: a stream that still ends with a trailer
    /// footer is one of our images whose records were damaged (they ended early).
    pub fn drain_footer(&mut self) -> Result<Option<[u8; trailer::FOOTER_LEN]>> {
        const F: usize = trailer::FOOTER_LEN;
        let mut last = [0u8; F];
        let mut seen = 0u64;
        let keep = |bytes: &[u8], last: &mut [u8; F], seen: &mut u64| {
            for &b in bytes {
                last.copy_within(1.., 0);
                last[F - 1] = b;
            }
            *seen += bytes.len() as u64;
        };
        let from = self.start.max(self.end.saturating_sub(F));
        seen += (from - self.start) as u64;
        keep(
            self.buf.get(from..self.end).unwrap_or(&[]),
            &mut last,
            &mut seen,
        );
        self.start = self.end;
        loop {
            let got = self.input.read(&mut self.buf[..])?;
            if got == 0 {
                break;
            }
            // Only the last F bytes of each read can end up in the footer window.
            let from = got.saturating_sub(F);
            seen += from as u64;
            keep(self.buf.get(from..got).unwrap_or(&[]), &mut last, &mut seen);
        }
        Ok((seen >= F as u64).then_some(last))
    }

    /// Compares the checksums of the consumed stream with `t`: `Ok` or the damaged chunks.
    /// `None` when the reader was opened without checksums.
    pub fn finish_checksums(
        &mut self,
        t: &trailer::Trailer,
    ) -> Option<core::result::Result<(), heapless::Vec<trailer::Mismatch, 16>>> {
        self.sums.take().map(|v| v.check(t))
    }

    /// Chunk size the reader checksums with, if it does.
    pub fn checksum_chunk_size(&self) -> Option<u64> {
        self.sums.as_ref().map(Verifier::chunk_size)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Next cluster position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The reference's `tellin()`: input offset after the consumed bytes, −1 on a pipe.
    fn tell(&self) -> i64 {
        match self.base {
            Some(b) => as_signed(b.wrapping_add(self.consumed)),
            None => -1,
        }
    }

    /// Makes at least `n` unconsumed bytes available; false if the input ends first.
    fn fill(&mut self, n: usize) -> Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.start == self.end {
            // Everything buffered was consumed: take the input's own buffer if it has one.
            let swapped = self.input.swap_buffer(&mut self.buf)?;
            self.swaps = swapped.is_some();
            if let Some(at) = swapped {
                self.start = at.min(self.buf.len());
                self.end = self.buf.len();
                // Room for one record and a trailer, as the buffer this one replaced.
                if self.buf.len() < self.cap {
                    self.buf.resize(self.cap, 0);
                }
                if self.end - self.start >= n {
                    return Ok(true);
                }
            }
        }
        if self.buf.len() - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // An input that swaps buffers is read only up to the end of this record: the rest of
        // its buffer is taken whole by the next fill.
        let limit = if self.swaps {
            self.start.saturating_add(n).min(self.buf.len())
        } else {
            self.buf.len()
        };
        while self.end - self.start < n {
            // end <= limit; a full buffer reads nothing, like the end of the input.
            let got = self
                .input
                .read(self.buf.get_mut(self.end..limit).unwrap_or(&mut []))?;
            if got == 0 {
                return Ok(false);
            }
            self.end += got;
        }
        Ok(true)
    }

    /// The unconsumed bytes in the buffer (`buf[start..end]`).
    fn avail(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// The first `n` unconsumed bytes (all of them if fewer are buffered).
    fn avail_prefix(&self, n: usize) -> &[u8] {
        let a = self.avail();
        a.get(..n).unwrap_or(a)
    }

    /// `n` bytes at `at` of the buffer, which the caller has checked are buffered.
    fn buffered(&self, at: usize, n: usize) -> Result<&[u8]> {
        at.checked_add(n)
            .and_then(|end| self.buf.get(at..end))
            .ok_or_else(|| {
                Error::message(format_args!("internal error: image buffer out of range"))
            })
    }

    fn consume(&mut self, n: usize) {
        if let Some(v) = self.sums.as_mut() {
            let end = self.start.saturating_add(n);
            v.update(self.buf.get(self.start..end).unwrap_or(&[]));
        }
        self.start += n;
        self.consumed += n as u64;
    }

    /// Where the input ended, for a truncated image.
    fn truncated(&self, what: &'static str) -> Error {
        let avail = (self.end - self.start) as u64;
        short(self.base, self.consumed + avail, what)
    }

    /// A batch of up to `max` consecutive full-cluster `CMD_NEXT` records taken from what is
    /// buffered (the buffer is refilled only when not even one record is there): the position
    /// of the first and the encoded records (`CMD_NEXT` + `cluster_size` bytes each), so that
    /// a restore writes them with one vectored write and no copy. `None` when the next record
    /// is anything else (a gap, a partial cluster, the end, an error): use
    /// [`Reader::next_record`], which also reports the errors.
    pub fn next_clusters(&mut self, max: usize) -> Result<Option<(u64, &[u8])>> {
        let cs = self.header.cluster_size as usize;
        let stride = cs + 1;
        if self.done || max == 0 || self.header.record_size(self.pos) != Some(cs) {
            return Ok(None);
        }
        if !self.fill(stride)? {
            return Ok(None);
        }
        let Some(nr_clusters) = self.header.last_position() else {
            return Ok(None);
        };
        let mut k = 0usize;
        while k < max {
            let at = self.start + k * stride;
            let pos = self.pos + k as u64;
            if at + stride > self.end
                || self.buf.get(at) != Some(&CMD_NEXT)
                || pos > nr_clusters
                || self.header.record_size(pos) != Some(cs)
            {
                break;
            }
            k += 1;
        }
        if k == 0 {
            return Ok(None);
        }
        let s = self.start;
        let pos = self.pos;
        self.consume(k * stride);
        self.pos += k as u64;
        self.clusters_seen += k as u64;
        Ok(Some((pos, self.buffered(s, k * stride)?)))
    }

    /// The next record. After `End` (or an error) keeps returning `End`.
    pub fn next_record(&mut self) -> Result<Record<'_>> {
        // A negative cluster count: the reference's loop reads no record.
        let nr_clusters = self.header.last_position();
        let Some(nr_clusters) = nr_clusters.filter(|&n| !self.done && self.pos <= n) else {
            self.done = true;
            return Ok(Record::End {
                backup_boot_missing: false,
            });
        };
        let cmd = if self.fill(1)? {
            self.avail().first().copied()
        } else {
            None
        };
        let Some(cmd) = cmd else {
            if self.pos == nr_clusters {
                self.done = true;
                return Ok(Record::End {
                    backup_boot_missing: true,
                });
            }
            return Err(self.truncated("the image ends before the last cluster record"));
        };
        match cmd {
            CMD_GAP => {
                if !self.fill(9)? {
                    return Err(self.truncated("the image ends inside a gap record"));
                }
                let count = i64::from_le_bytes(le_field(self.avail(), 1));
                self.consume(9);
                let at = self.tell().wrapping_sub(9);
                if count == 0 {
                    return Err(fatal(format_args!(
                        "Bad offset at input location 0x{:x}\n",
                        as_unsigned(at)
                    )));
                }
                if self.to_stdout && (count < 0 || self.clusters_seen == 0) {
                    return Err(fatal(format_args!(
                        "Cannot restore a metadata image to stdout\n"
                    )));
                }
                let to = i128::from(self.pos) + i128::from(count);
                // Past the end: corrupt, to stdout too. (The reference writes a stdout gap's
                // zeros unchecked and ends the restore there, exit 0, without the records that
                // follow: a silently incomplete copy.)
                let Some(to) = u64::try_from(to).ok().filter(|&to| to <= nr_clusters) else {
                    return Err(fatal(format_args!(
                        "restore_image: corrupt image at input offset {at}\n"
                    )));
                };
                let from = self.pos;
                self.pos = to;
                Ok(Record::Gap { from, count })
            }
            CMD_NEXT => {
                let size = match self.header.record_size(self.pos) {
                    Some(s) => s,
                    // The reference's text, without a newline.
                    None => return Err(fatal(format_args!("Corrupted input, copy aborted"))),
                };
                if !self.fill(1 + size)? {
                    return Err(self.truncated("the image ends inside a cluster record"));
                }
                let s = self.start + 1;
                self.consume(1 + size);
                let pos = self.pos;
                self.pos += 1;
                self.clusters_seen += 1;
                Ok(Record::Cluster {
                    pos,
                    data: self.buffered(s, size)?,
                })
            }
            other => {
                self.consume(1);
                let at = self.tell().wrapping_sub(1);
                Err(fatal(format_args!(
                    "Invalid command code {} at input offset 0x{:x}\n",
                    i8::from_le_bytes([other]),
                    as_unsigned(at)
                )))
            }
        }
    }
}

/// Our message for a truncated image (the reference prints a stale errno here).
fn short(base: Option<u64>, consumed: u64, what: &'static str) -> Error {
    let at = base.unwrap_or(0).saturating_add(consumed);
    Error::corrupt(format_args!("Short image file"), what, at)
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
    use crate::dev::mem::MemDev;
    use crate::image::writer::Writer;

    /// 8 clusters of 512 bytes, device 8*512+100: positions 0,1, gap 3, 5, gap 2, 8 (partial).
    fn image() -> (Header, Vec<u8>) {
        image_with(false)
    }

    /// [`image`], with an integrity trailer when `trailer`.
    fn image_with(trailer: bool) -> (Header, Vec<u8>) {
        let h = Header::new(512, 8 * 512 + 100, 8, 3);
        let mut w = Writer::new(MemDev::default(), &h, 0).unwrap();
        if trailer {
            w = w.with_trailer(&h);
        }
        w.cluster(&[1; 512]).unwrap();
        w.cluster(&[2; 512]).unwrap();
        w.gap(3).unwrap();
        w.cluster(&[5; 512]).unwrap();
        w.gap(2).unwrap();
        w.cluster(&[8; 100]).unwrap();
        (h, w.finish().unwrap().data)
    }

    fn collect(data: Vec<u8>, base: Option<u64>, stdout: bool) -> Result<Vec<(i64, usize, u8)>> {
        records(&mut Reader::open(MemDev::new(data), base, 0, stdout)?)
    }

    /// The records of `r` to its end: (position, length, first byte), gaps as (-1, count, 0),
    /// the end as (-2, backup boot sector missing, 0).
    fn records<R: ReadStream>(r: &mut Reader<R>) -> Result<Vec<(i64, usize, u8)>> {
        let mut v = Vec::new();
        loop {
            match r.next_record()? {
                Record::Cluster { pos, data } => v.push((pos as i64, data.len(), data[0])),
                Record::Gap { count, .. } => v.push((-1, count as usize, 0)),
                Record::End {
                    backup_boot_missing,
                } => {
                    v.push((-2, backup_boot_missing as usize, 0));
                    return Ok(v);
                }
            }
        }
    }

    fn err(data: Vec<u8>, base: Option<u64>, stdout: bool) -> String {
        std::format!("{}", collect(data, base, stdout).unwrap_err())
    }

    /// A stream that hands out its bytes in buffers of its own, cut every `piece` bytes
    /// (a decompressor's frames), and reads the rest.
    struct Swapping {
        data: Vec<u8>,
        at: usize,
        piece: usize,
        turn: usize,
    }

    impl ReadStream for Swapping {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
            let n = buf.len().min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }

        fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
            self.turn += 1;
            if self.turn % 3 == 0 || self.at == self.data.len() {
                return Ok(None);
            }
            // Stale bytes before the offset handed out, as in a reused buffer.
            let end = (self.at + self.piece).min(self.data.len());
            *buf = std::vec![0xEE; 3];
            buf.extend_from_slice(&self.data[self.at..end]);
            self.at = end;
            Ok(Some(3))
        }
    }

    #[test]
    fn swapped_input_buffers_read_the_same_records() {
        let (_, img) = image_with(true);
        let want = collect(img.clone(), None, false).unwrap();
        for piece in [1, 7, 100, 512, 513, 600, 5000] {
            let input = Swapping {
                data: img.clone(),
                at: 0,
                piece,
                turn: 0,
            };
            let mut r = Reader::open_with(input, None, 0, false, Checksum::FromHeader).unwrap();
            assert_eq!(records(&mut r).unwrap(), want, "piece {piece}");
            // The checksums saw every byte once: the trailer after the records matches.
            let tail = r.read_tail().unwrap().to_vec();
            let t = crate::image::trailer::Trailer::parse(&tail).unwrap();
            assert!(r.finish_checksums(&t).unwrap().is_ok(), "piece {piece}");
        }
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let (_, img) = image();
        let want = [
            (0, 512, 1),
            (1, 512, 2),
            (-1, 3, 0),
            (5, 512, 5),
            (-1, 2, 0),
            (8, 100, 8),
            (-2, 0, 0),
        ];
        assert_eq!(collect(img.clone(), Some(0), false).unwrap(), want);
        // Trailing garbage is never read.
        let mut g = img.clone();
        g.extend_from_slice(&[0xff; 1000]);
        assert_eq!(collect(g, Some(0), false).unwrap(), want);
        // Stdout: forward gaps after data are fine.
        assert_eq!(collect(img, None, true).unwrap(), want);
    }

    #[test]
    fn version_10_0_and_offsets() {
        let (_, img) = image();
        // Drop the last record: ends at position 8 = nr_clusters.
        let v100 = img[..img.len() - 101].to_vec();
        let got = collect(v100, Some(0), false).unwrap();
        assert_eq!(got.last(), Some(&(-2, 1, 0)));
        // Offset field 64 with 8 more padding bytes.
        let mut o = img[..56].to_vec();
        o[46] = 64;
        o.extend_from_slice(&[0; 8]);
        o.extend_from_slice(&img[56..]);
        assert_eq!(collect(o, Some(0), false).unwrap().len(), 7);
        // Pre-10 layout: 46-byte header.
        let mut old = img[..46].to_vec();
        old[16] = 3;
        old.extend_from_slice(&img[56..]);
        assert_eq!(collect(old, Some(0), false).unwrap().len(), 7);
    }

    #[test]
    fn reference_messages() {
        let (_, img) = image();
        let gap_at = 56 + 2 * 513;
        let mut m = img.clone();
        m[gap_at] = 7;
        assert_eq!(
            err(m.clone(), Some(0), false),
            "ERROR: Invalid command code 7 at input offset 0x43a\n"
        );
        m[gap_at] = 0xff;
        assert_eq!(
            err(m.clone(), Some(0), false),
            "ERROR: Invalid command code -1 at input offset 0x43a\n"
        );
        assert_eq!(
            err(m, None, false),
            "ERROR: Invalid command code -1 at input offset 0xfffffffffffffffe\n"
        );
        let mut m = img.clone();
        m[gap_at + 1] = 0;
        assert_eq!(
            err(m.clone(), Some(0), false),
            "ERROR: Bad offset at input location 0x43a\n"
        );
        assert_eq!(
            err(m, None, false),
            "ERROR: Bad offset at input location 0xfffffffffffffff6\n"
        );
        let mut m = img.clone();
        m[gap_at + 1] = 100;
        assert_eq!(
            err(m.clone(), Some(0), false),
            "ERROR: restore_image: corrupt image at input offset 1082\n"
        );
        assert_eq!(
            err(m, None, false),
            "ERROR: restore_image: corrupt image at input offset -10\n"
        );
        let mut m = img.clone();
        m[gap_at + 1..gap_at + 9].copy_from_slice(&(-2i64).to_le_bytes());
        let mut r = Reader::open(MemDev::new(m.clone()), Some(0), 0, false).unwrap();
        for _ in 0..2 {
            r.next_record().unwrap();
        }
        assert_eq!(r.next_record().unwrap(), Record::Gap { from: 2, count: -2 });
        assert_eq!(r.position(), 0);
        assert_eq!(
            err(m, Some(0), true),
            "ERROR: Cannot restore a metadata image to stdout\n"
        );
        // A stream starting with a gap cannot go to stdout.
        let mut m = img[..56].to_vec();
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            err(m, Some(0), true),
            "ERROR: Cannot restore a metadata image to stdout\n"
        );
        // Device smaller than the volume: the record size goes negative.
        let mut m = img.clone();
        m[22..30].copy_from_slice(&1024u64.to_le_bytes());
        assert_eq!(
            err(m, Some(0), false),
            "ERROR: Corrupted input, copy aborted"
        );
    }

    #[test]
    fn gaps_past_the_end_are_corrupt_on_stdout_too() {
        let (_, img) = image();
        let gap_at = 56 + 2 * 513;
        // Gap of 3 from position 2 made 7: ends at 9 = nr_clusters + 1. Refused for a file and
        // for stdout (the reference writes a stdout gap's zeros and stops there, exit 0,
        // without the records after it).
        let mut m = img.clone();
        m[gap_at + 1] = 7;
        for stdout in [false, true] {
            assert_eq!(
                err(m.clone(), Some(0), stdout),
                "ERROR: restore_image: corrupt image at input offset 1082\n"
            );
        }
        // Far past the end, from a pipe.
        let mut m = img.clone();
        m[gap_at + 1..gap_at + 9].copy_from_slice(&(1i64 << 60).to_le_bytes());
        assert_eq!(
            err(m, None, true),
            "ERROR: restore_image: corrupt image at input offset -10\n"
        );
        // A gap exactly to nr_clusters (a 10.0 image's end) is fine.
        let mut m = img.clone();
        m[gap_at + 1] = 6;
        if let Err(e) = collect(m, Some(0), true) {
            assert!(!std::format!("{e}").contains("corrupt image"), "{e}");
        }
    }

    #[test]
    fn negative_cluster_count_is_refused() {
        let (_, mut img) = image();
        img[30..38].copy_from_slice(&(-1i64).to_le_bytes());
        for stdout in [false, true] {
            let e = err(img.clone(), Some(0), stdout);
            assert!(e.contains("negative cluster count -1"), "{e}");
        }
    }

    #[test]
    fn truncation_names_the_offset() {
        let (_, img) = image();
        for cut in [0, 10, 48, 53, 56, 300, 56 + 1026 + 4, img.len() - 50] {
            let e = err(img[..cut].to_vec(), Some(0), false);
            assert!(e.starts_with("ERROR: Short image file: "), "{e}");
            assert!(e.contains(&std::format!("at byte offset {cut} ")), "{e}");
        }
        // A base offset (input already positioned) shifts the numbers.
        let e = err(img[..300].to_vec(), Some(1000), false);
        assert!(e.contains("at byte offset 1300 "), "{e}");
    }
}
