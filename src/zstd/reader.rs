//! The decompressing input stream: a zstd stream in (file, pipe or stdin), image bytes out.
//!
//! The compressed bytes are read in large chunks and cut into frames by
//! [`FrameWalker`](super::frame::FrameWalker) without decompressing them. A frame that says
//! how many bytes it holds (at most [`MAX_FRAME_BYTES`], as every frame of our writer) is
//! decompressed whole on a worker thread, several at a time, and its bytes are handed out only
//! once the whole frame decompressed and its content checksum matched: a damaged frame is an
//! error before any of its bytes are used. Any other frame (the zstd tool's output from a
//! pipe: one frame of unknown size) is decompressed as a stream on the calling thread.
//! Skippable frames (the seek table) are skipped. Errors name the compressed stream offset of
//! the frame. Memory is fixed by the thread count: the frame being handed out and `threads + 1`
//! frames read and not handed out yet, each with its compressed and decompressed buffer.
use super::frame::{
    Frame, FrameHeader, FrameIndex, FrameWalker, SeekTable, Step, SEEK_FOOTER_BYTES,
    SEEK_TABLE_MAGIC,
};
use super::pool::Pool;
use crate::dev::{ReadAt, ReadStream};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::prelude::v1::*;
use std::sync::Arc;
use zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer};

/// Largest frame decompressed whole on a worker thread; larger ones are streamed.
pub const MAX_FRAME_BYTES: u64 = 8 << 20;
/// Largest window accepted when streaming (2^27: the zstd tool's own default limit).
const WINDOW_LOG_MAX: u32 = 27;
/// Bytes asked for per read of the compressed input.
const READ_BYTES: usize = 1 << 20;

fn frame_error(at: u64, why: &str) -> Error {
    Error::message(format_args!(
        "damaged zstd frame at compressed byte offset {at} (0x{at:x}): {why}"
    ))
}

/// Whether a frame is decompressed whole on a worker (else streamed).
fn whole(h: &FrameHeader) -> bool {
    h.content_size.is_some_and(|c| c <= MAX_FRAME_BYTES)
}

fn table_error(at: u64, why: &str) -> Error {
    Error::message(format_args!(
        "damaged zstd seek table at compressed byte offset {at} (0x{at:x}): {why}"
    ))
}

/// A file the workers read their frames from themselves (see [`Decompressor::read_frames_at`]).
pub type FrameSource = Arc<dyn ReadAt + Send + Sync>;

struct Job {
    seq: u64,
    /// Stream offset of the frame.
    at: u64,
    /// The frame's bytes, or (read from `src`) a buffer for them.
    frame: Vec<u8>,
    /// Where the worker reads the frame's `len` bytes at `at` (None: `frame` holds them).
    src: Option<(FrameSource, usize)>,
    content: usize,
    output: Vec<u8>,
}

struct Done {
    seq: u64,
    frame: Vec<u8>,
    output: Vec<u8>,
    result: Result<()>,
}

fn new_dctx() -> DCtx<'static> {
    DCtx::create()
}

fn decompress(dctx: &mut DCtx<'static>, mut job: Job) -> Done {
    job.output.clear();
    job.output.reserve(job.content);
    let mut len = job.frame.len();
    if let Some((src, n)) = job.src.take() {
        // The buffer only grows (a reused one is not zeroed again).
        if job.frame.len() < n {
            job.frame.resize(n, 0);
        }
        len = n;
        let read = match job.frame.get_mut(..n) {
            Some(b) => src.read_exact_at(b, job.at),
            None => Ok(()),
        };
        if let Err(e) = read {
            return Done {
                seq: job.seq,
                frame: job.frame,
                output: job.output,
                result: Err(e),
            };
        }
    }
    let frame = job.frame.get(..len).unwrap_or_default();
    let result = match dctx.decompress(&mut job.output, frame) {
        Ok(n) if n == job.content => Ok(()),
        Ok(n) => Err(frame_error(
            job.at,
            if n < job.content {
                "fewer bytes than its header says"
            } else {
                "more bytes than its header says"
            },
        )),
        Err(code) => Err(frame_error(job.at, zstd_safe::get_error_name(code))),
    };
    Done {
        seq: job.seq,
        frame: job.frame,
        output: job.output,
        result,
    }
}

/// A frame being decompressed as a stream on the calling thread.
struct Streaming {
    dctx: DCtx<'static>,
    at: u64,
    /// The frame's first bytes and what followed them, from `pos` on not yet decompressed.
    input: Vec<u8>,
    pos: usize,
    /// Whether the frame produced its last byte (`decompress_stream` returned 0).
    finished: bool,
}

/// A [`ReadStream`] of the decompressed bytes of a zstd stream read from `R`.
pub struct Decompressor<R: ReadStream> {
    input: R,
    eof: bool,
    /// Bytes read beyond the last frame handed out (the start of the next frame).
    carry: Vec<u8>,
    /// Stream offset of `carry[0]`.
    carry_at: u64,
    pool: Pool<Job, Done>,
    max_in_flight: usize,
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    early: BTreeMap<u64, Done>,
    next_seq: u64,
    next_out: u64,
    /// A frame to stream once every frame before it is delivered.
    streaming: Option<(u64, Streaming)>,
    /// The frame being delivered and the position in it.
    cur: Vec<u8>,
    cur_pos: usize,
    /// Zstandard frames seen (skippable ones not counted).
    frames: u64,
    /// Bytes delivered.
    delivered: u64,
    /// The seek table of the file, when read first: every frame must be where it says.
    index: Option<FrameIndex>,
    /// (compressed, decompressed) bytes of the frames since the last seek table, to check the
    /// next one met in the stream (None for a streamed frame: not known).
    since_table: Vec<Option<(u64, u64)>>,
    /// The file the workers read the frames of `index` from (the input stream is not read).
    positioned: Option<FrameSource>,
}

impl<R: ReadStream> Decompressor<R> {
    /// Decompresses `input`, whose first bytes `prefix` were already read (to recognise the
    /// magic number), on `threads` threads.
    pub fn new(input: R, prefix: &[u8], threads: usize) -> Result<Self> {
        let threads = threads.clamp(1, 256);
        Ok(Decompressor {
            input,
            eof: false,
            carry: prefix.to_vec(),
            carry_at: 0,
            pool: Pool::new(threads, new_dctx, decompress)?,
            max_in_flight: threads + 1,
            spare: Vec::new(),
            early: BTreeMap::new(),
            next_seq: 0,
            next_out: 0,
            streaming: None,
            cur: Vec::new(),
            cur_pos: 0,
            frames: 0,
            delivered: 0,
            index: None,
            since_table: Vec::new(),
            positioned: None,
        })
    }

    /// Checks every frame against the seek table `index` (read first from the file, see
    /// [`SeekTable::read`](super::frame::SeekTable::read)): a frame that is not where the
    /// table says, or not of the size it says, is an error, and so is a different count.
    pub fn with_index(mut self, index: FrameIndex) -> Self {
        self.index = Some(index);
        self
    }

    /// With a seek table ([`Decompressor::with_index`]) of the file `src` (the whole file,
    /// checked): each worker reads its frames from `src` itself, where the table says they
    /// are, so that the compressed bytes are neither read nor copied on the calling thread.
    pub fn read_frames_at(mut self, src: FrameSource) -> Self {
        if self.index.is_some() {
            self.positioned = Some(src);
        }
        self
    }

    /// [`Decompressor::fill`] from the seek table: queues the next frames for the workers to
    /// read and decompress.
    fn fill_positioned(&mut self, src: &FrameSource) -> Result<()> {
        let Some(idx) = self.index.as_ref() else {
            return Ok(());
        };
        while self.next_seq - self.next_out < self.max_in_flight as u64 {
            let k = usize::try_from(self.frames).unwrap_or(usize::MAX);
            let (Some(&(at, d0)), Some(&(end, d1))) =
                (idx.get(k), k.checked_add(1).and_then(|n| idx.get(n)))
            else {
                self.eof = true;
                self.carry.clear();
                break;
            };
            let (len, content) = (end.saturating_sub(at), d1.saturating_sub(d0));
            // The table bounds the frame's content (at most MAX_FRAME_BYTES): its compressed
            // size is bounded by zstd's compress bound of that, like a frame read in the stream.
            let bound = zstd_safe::compress_bound(usize::try_from(content).unwrap_or(usize::MAX))
                as u64
                + 64;
            if len > bound || content > MAX_FRAME_BYTES {
                return Err(frame_error(at, "larger than its content size allows"));
            }
            self.frames += 1;
            let (frame, output) = self.spare.pop().unwrap_or_default();
            self.pool.send(Job {
                seq: self.next_seq,
                at,
                frame,
                src: Some((Arc::clone(src), len as usize)),
                content: content as usize,
                output,
            })?;
            self.next_seq += 1;
        }
        Ok(())
    }

    /// The seek table check of the next frame (at `at`, `len` compressed bytes and `content`
    /// decompressed when known).
    fn check_index(&self, at: u64, len: Option<u64>, content: Option<u64>) -> Result<()> {
        let Some(idx) = &self.index else {
            return Ok(());
        };
        let k = usize::try_from(self.frames).unwrap_or(usize::MAX);
        let ok = match (idx.get(k), k.checked_add(1).and_then(|n| idx.get(n))) {
            (Some(a), Some(b)) => {
                a.0 == at
                    && len.map_or(true, |l| b.0 - a.0 == l)
                    && content.map_or(true, |c| b.1 - a.1 == c)
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::message(format_args!(
                "the seek table disagrees with the zstd frame at compressed byte offset {at} \
                 (0x{at:x}): the file is damaged"
            )))
        }
    }

    /// Decompressed bytes handed out so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Reads more input onto `buf` (at least one byte unless at the end); false at the end.
    fn read_more(input: &mut R, eof: &mut bool, buf: &mut Vec<u8>, want: usize) -> Result<bool> {
        if *eof {
            return Ok(false);
        }
        let have = buf.len();
        buf.resize(have + want.max(READ_BYTES), 0);
        let n = input.read(&mut buf[have..]);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(have);
                return Err(e);
            }
        };
        buf.truncate(have + n);
        if n == 0 {
            *eof = true;
        }
        Ok(n > 0)
    }

    /// Reads the next frame into `carry` and classifies it. `Ok(None)`: the input ended
    /// cleanly between frames.
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let at = self.carry_at;
        let mut w = FrameWalker::new(at);
        loop {
            if self.carry.is_empty() && self.eof {
                return Ok(None);
            }
            match w.advance(&self.carry)? {
                Step::Done(f) => return Ok(Some(f)),
                Step::Need(n) => {
                    let h = w.header();
                    // A frame sent to a worker may not be larger than its content size
                    // allows (zstd's compress bound): a bound on the buffer too.
                    if let Some(cs) = h.and_then(|h| h.content_size) {
                        if cs <= MAX_FRAME_BYTES {
                            let bound = zstd_safe::compress_bound(cs as usize) as u64 + 64;
                            if n > bound {
                                return Err(frame_error(at, "larger than its content size allows"));
                            }
                        }
                    }
                    if h.is_some_and(|h| !whole(&h)) {
                        // Streamed: no need to find its end first.
                        return Ok(h.map(|header| Frame::Zstd {
                            header,
                            len: u64::MAX,
                            raw_bytes: 0,
                        }));
                    }
                    let missing = (n as usize).saturating_sub(self.carry.len());
                    if !Self::read_more(&mut self.input, &mut self.eof, &mut self.carry, missing)? {
                        if self.carry.is_empty() {
                            return Ok(None);
                        }
                        return Err(frame_error(
                            at,
                            "the stream ends inside this frame (truncated)",
                        ));
                    }
                }
            }
        }
    }

    /// Moves the first `len` bytes of `carry` into `into` (cleared first).
    fn take_carry(&mut self, len: usize, into: &mut Vec<u8>) {
        into.clear();
        into.extend_from_slice(&self.carry[..len]);
        self.carry.drain(..len);
        self.carry_at += len as u64;
    }

    /// Reads ahead and queues frames until the pool is full, a frame must be streamed, or
    /// the input ends.
    fn fill(&mut self) -> Result<()> {
        if let Some(src) = self.positioned.clone() {
            return self.fill_positioned(&src);
        }
        while self.streaming.is_none()
            && self.next_seq - self.next_out < self.max_in_flight as u64
            && !self.is_done_reading()
        {
            let at = self.carry_at;
            let Some(f) = self.next_frame()? else {
                self.eof = true;
                self.carry.clear();
                break;
            };
            match f {
                Frame::Skippable { magic, len } => {
                    self.skip(len, magic == SEEK_TABLE_MAGIC)?;
                }
                Frame::Zstd { header, .. } if !whole(&header) => {
                    self.check_index(at, None, None)?;
                    self.frames += 1;
                    self.since_table.push(None);
                    let mut dctx = DCtx::create();
                    let _ = dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX));
                    let input = core::mem::take(&mut self.carry);
                    self.carry_at += input.len() as u64;
                    self.streaming = Some((
                        self.next_seq,
                        Streaming {
                            dctx,
                            at,
                            input,
                            pos: 0,
                            finished: false,
                        },
                    ));
                    self.next_seq += 1;
                }
                Frame::Zstd { header, len, .. } => {
                    self.check_index(at, Some(len), header.content_size)?;
                    self.frames += 1;
                    self.since_table.push(header.content_size.map(|c| (len, c)));
                    let content = header.content_size.unwrap_or(0) as usize;
                    let (mut frame, output) = self.spare.pop().unwrap_or_default();
                    self.take_carry(len as usize, &mut frame);
                    self.pool.send(Job {
                        seq: self.next_seq,
                        at,
                        frame,
                        src: None,
                        content,
                        output,
                    })?;
                    self.next_seq += 1;
                }
            }
        }
        Ok(())
    }

    fn is_done_reading(&self) -> bool {
        self.eof && self.carry.is_empty()
    }

    /// Skips a skippable frame of `len` bytes at the front of `carry`. A seek table is
    /// checked against the frames read since the previous one (so that `-r -n` from a pipe
    /// finds damage there too); its size is bounded by theirs before it is kept.
    fn skip(&mut self, len: u64, seek_table: bool) -> Result<()> {
        let at = self.carry_at;
        let mut left = len;
        let mut table: Option<Vec<u8>> = None;
        if seek_table {
            let most = (self.since_table.len() as u64) * 12 + 9 + 8;
            if len > most {
                return Err(table_error(at, "larger than the frames before it need"));
            }
            table = Some(Vec::with_capacity(len as usize));
        }
        loop {
            let n = left.min(self.carry.len() as u64) as usize;
            if let Some(t) = table.as_mut() {
                t.extend_from_slice(&self.carry[..n]);
            }
            self.carry.drain(..n);
            self.carry_at += n as u64;
            left -= n as u64;
            if left == 0 {
                return match table {
                    Some(t) => self.check_table(at, &t),
                    None => Ok(()),
                };
            }
            if !Self::read_more(&mut self.input, &mut self.eof, &mut self.carry, 0)? {
                return Err(Error::message(format_args!(
                    "the zstd stream ends inside the skippable frame at compressed byte \
                     offset {at} (0x{at:x}) (truncated)"
                )));
            }
        }
    }

    /// Checks a seek table (`t`: the whole skippable frame, met at `at`) against the frames
    /// read since the previous one.
    fn check_table(&mut self, at: u64, t: &[u8]) -> Result<()> {
        let footer = t
            .len()
            .checked_sub(SEEK_FOOTER_BYTES)
            .and_then(|f| t.get(f..));
        let parsed = footer
            .map(|f| SeekTable::from_footer(f, t.len() as u64))
            .transpose()
            .map_err(|_| table_error(at, "damaged footer"))?
            .flatten();
        let Some(st) = parsed else {
            return Err(table_error(at, "no seekable magic number at its end"));
        };
        // The table describes the last frames before it (a stream may be a concatenation:
        // frames of other streams can come first).
        let listed = st.frames as usize;
        let Some(first) = self.since_table.len().checked_sub(listed) else {
            return Err(table_error(at, "it lists more frames than came before it"));
        };
        if st.start != 0 {
            return Err(table_error(at, "its size disagrees with its footer"));
        }
        st.check_header(t)
            .map_err(|_| table_error(at, "its frame header disagrees with its footer"))?;
        for (i, seen) in self.since_table.iter().skip(first).enumerate() {
            let off = (st.entry_offset(i as u32) - st.start) as usize;
            let e = t.get(off..).and_then(|b| st.entry(b));
            let (Some(e), Some((c, d))) = (e, seen) else {
                continue;
            };
            if u64::from(e.compressed) != *c || u64::from(e.decompressed) != *d {
                return Err(table_error(at, "an entry disagrees with its frame"));
            }
        }
        self.since_table.clear();
        Ok(())
    }

    /// Makes `cur` the next frame's bytes; false at the end of the stream.
    fn next_output(&mut self) -> Result<bool> {
        loop {
            if let Some(d) = self.early.remove(&self.next_out) {
                d.result?;
                let old = core::mem::replace(&mut self.cur, d.output);
                self.spare.push((d.frame, old));
                self.cur_pos = 0;
                self.next_out += 1;
                self.fill()?;
                return Ok(true);
            }
            if matches!(self.streaming, Some((seq, _)) if seq == self.next_out) {
                return Ok(true);
            }
            self.fill()?;
            if matches!(self.streaming, Some((seq, _)) if seq == self.next_out) {
                return Ok(true);
            }
            if self.pool.in_flight == 0 && !self.early.contains_key(&self.next_out) {
                if self.streaming.is_some() {
                    // Cannot happen: every frame before a streamed one went to the pool.
                    return Err(Error::message(format_args!("zstd frames out of order")));
                }
                if self.frames == 0 {
                    return Err(Error::message(format_args!(
                        "the zstd stream holds no data frame"
                    )));
                }
                if let Some(idx) = &self.index {
                    if idx.len() as u64 != self.frames + 1 {
                        return Err(Error::message(format_args!(
                            "the seek table lists {} zstd frames, the stream holds {}: \
                             the file is damaged",
                            idx.len() - 1,
                            self.frames
                        )));
                    }
                }
                return Ok(false);
            }
            if let Some(d) = self.pool.recv(true)? {
                self.early.insert(d.seq, d);
            }
        }
    }

    /// Streams the current streamed frame into `buf`; returns bytes produced (0: the frame
    /// ended, go on with the next one).
    fn read_streaming(&mut self, buf: &mut [u8]) -> Result<usize> {
        let Some((_, s)) = self.streaming.as_mut() else {
            return Ok(0);
        };
        loop {
            if s.finished {
                // What follows the frame is the start of the next one.
                self.carry = s.input.split_off(s.pos);
                self.carry_at -= self.carry.len() as u64;
                self.streaming = None;
                self.next_out += 1;
                return Ok(0);
            }
            let mut out = OutBuffer::around(&mut *buf);
            let mut inb = InBuffer::around(&s.input[s.pos..]);
            let r = s.dctx.decompress_stream(&mut out, &mut inb);
            let used = inb.pos();
            let produced = out.pos();
            s.pos += used;
            match r {
                Err(code) => return Err(frame_error(s.at, zstd_safe::get_error_name(code))),
                Ok(0) => s.finished = true,
                Ok(_) => {}
            }
            if produced > 0 {
                return Ok(produced);
            }
            if !s.finished && s.pos == s.input.len() {
                s.input.clear();
                s.pos = 0;
                if !Self::read_more(&mut self.input, &mut self.eof, &mut s.input, 0)? {
                    return Err(frame_error(
                        s.at,
                        "the stream ends inside this frame (truncated)",
                    ));
                }
                self.carry_at += s.input.len() as u64;
            }
        }
    }
}

impl<R: ReadStream> ReadStream for Decompressor<R> {
    /// Hands out the frame being delivered, from its first byte not yet read; `buf` is kept
    /// as an output buffer for a later frame. Not for a streamed frame.
    fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        loop {
            if self.cur_pos < self.cur.len() {
                let at = self.cur_pos;
                core::mem::swap(&mut self.cur, buf);
                self.delivered += (buf.len() - at) as u64;
                self.cur.clear();
                self.cur_pos = 0;
                return Ok(Some(at));
            }
            // A streamed frame is read, not swapped.
            if self.streaming.is_some() || !self.next_output()? {
                return Ok(None);
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.cur_pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.cur_pos);
                buf[..n].copy_from_slice(&self.cur[self.cur_pos..self.cur_pos + n]);
                self.cur_pos += n;
                self.delivered += n as u64;
                return Ok(n);
            }
            if matches!(self.streaming, Some((seq, _)) if seq == self.next_out) {
                let n = self.read_streaming(buf)?;
                if n > 0 {
                    self.delivered += n as u64;
                    return Ok(n);
                }
                continue;
            }
            if !self.next_output()? {
                return Ok(0);
            }
        }
    }
}

/// Bytes a [`Prefixed`] stream reads ahead: enough for a zstd magic number and for the 16-byte
/// magic of an ntfsclone image or disk image.
pub const HEAD_BYTES: usize = 16;

/// A stream whose first bytes were already read (to look at the magic number), put back in
/// front of the rest.
pub struct Prefixed<R: ReadStream> {
    head: [u8; HEAD_BYTES],
    len: usize,
    pos: usize,
    inner: R,
}

impl<R: ReadStream> Prefixed<R> {
    /// Reads up to [`HEAD_BYTES`] bytes of `inner` (fewer only at its end) to be looked at
    /// with [`Prefixed::head`]; reading goes on from the first of them.
    pub fn new(mut inner: R) -> Result<Self> {
        let mut head = [0u8; HEAD_BYTES];
        let len = inner.read_full(&mut head)?;
        Ok(Prefixed {
            head,
            len,
            pos: 0,
            inner,
        })
    }

    /// The first bytes of the stream (at most [`HEAD_BYTES`]).
    pub fn head(&self) -> &[u8] {
        &self.head[..self.len]
    }
}

impl<R: ReadStream> ReadStream for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.pos < self.len {
            let n = buf.len().min(self.len - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }

    /// Once the first bytes were read out, the inner stream's buffers.
    fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        if self.pos < self.len {
            return Ok(None);
        }
        self.inner.swap_buffer(buf)
    }
}
