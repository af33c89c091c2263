//! The compressing output stream: image bytes in, a seekable zstd stream out.
//!
//! The bytes are cut into blocks of [`FRAME_BYTES`]; each block becomes one independent zstd
//! frame (content size and XXH64 content checksum in the frame, as the zstd tool writes
//! them), compressed by a pool of worker threads and written in order by the calling thread.
//! [`Compressor::finish`] appends the seek table. Memory is fixed by the thread count: the
//! block being filled and `threads + 1` blocks handed out and not written yet (one more than
//! the workers, so that none waits while the calling thread fills the next block), each with
//! its input and output buffer (recycled), and one zstd context per thread (about 3.5 MiB at
//! level 3).
use super::frame::write_seek_table;
use super::pool::Pool;
use crate::dev::WriteStream;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::prelude::v1::*;
use zstd_safe::{CCtx, CParameter};

/// Image bytes per frame.
pub const FRAME_BYTES: usize = 4 << 20;
/// Compression levels accepted (the zstd tool's normal range).
pub const LEVELS: core::ops::RangeInclusive<i32> = 1..=19;
/// The level used when none is given (the zstd tool's default).
pub const DEFAULT_LEVEL: i32 = 3;

struct Job {
    seq: u64,
    input: Vec<u8>,
    output: Vec<u8>,
}

struct Done {
    seq: u64,
    input: Vec<u8>,
    output: Vec<u8>,
    result: Result<()>,
}

/// A [`WriteStream`] that compresses into `W` on worker threads.
pub struct Compressor<W: WriteStream> {
    out: W,
    cur: Vec<u8>,
    pool: Pool<Job, Done>,
    /// Buffer pairs ready for reuse.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    /// Compressed frames that arrived before their turn.
    early: BTreeMap<u64, Done>,
    next_seq: u64,
    next_write: u64,
    max_in_flight: usize,
    /// (compressed, decompressed) bytes of each frame written, for the seek table.
    table: Vec<(u32, u32)>,
    /// Bytes written to `out`.
    written: u64,
    failed: bool,
}

/// The thread count: `threads` if given, else the available cores (1 to 256).
pub fn threads_or_default(threads: Option<usize>) -> usize {
    threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, 256)
}

struct Ctx {
    cctx: CCtx<'static>,
    setup: core::result::Result<(), usize>,
}

fn new_ctx(level: i32) -> Ctx {
    let mut cctx = CCtx::create();
    let setup = cctx
        .set_parameter(CParameter::CompressionLevel(level))
        .and_then(|_| cctx.set_parameter(CParameter::ChecksumFlag(true)))
        .and_then(|_| cctx.set_parameter(CParameter::ContentSizeFlag(true)))
        .map(|_| ());
    Ctx { cctx, setup }
}

fn compress(ctx: &mut Ctx, mut job: Job) -> Done {
    job.output.clear();
    let result = ctx
        .setup
        .and_then(|()| {
            job.output
                .reserve(zstd_safe::compress_bound(job.input.len()));
            ctx.cctx.compress2(&mut job.output, &job.input).map(|_| ())
        })
        .map_err(|code| {
            Error::message(format_args!(
                "zstd compression failed: {}",
                zstd_safe::get_error_name(code)
            ))
        });
    Done {
        seq: job.seq,
        input: job.input,
        output: job.output,
        result,
    }
}

impl<W: WriteStream> Compressor<W> {
    /// Compresses at `level` (1-19) on `threads` threads into `out`.
    pub fn new(out: W, level: i32, threads: usize) -> Result<Self> {
        if !LEVELS.contains(&level) {
            return Err(Error::message(format_args!(
                "zstd level {level} is out of range ({}-{})",
                LEVELS.start(),
                LEVELS.end()
            )));
        }
        let threads = threads.clamp(1, 256);
        let pool = Pool::new(threads, move || new_ctx(level), compress)?;
        Ok(Compressor {
            out,
            cur: Vec::with_capacity(FRAME_BYTES),
            pool,
            spare: Vec::new(),
            early: BTreeMap::new(),
            next_seq: 0,
            next_write: 0,
            max_in_flight: threads + 1,
            table: Vec::new(),
            written: 0,
            failed: false,
        })
    }

    /// Compressed bytes written so far.
    pub fn compressed_bytes(&self) -> u64 {
        self.written
    }

    /// Writes the frames that are next in order; waits for one result first if `wait`.
    fn collect(&mut self, wait: bool) -> Result<()> {
        let mut wait = wait;
        while let Some(d) = self.pool.recv(wait)? {
            self.early.insert(d.seq, d);
            wait = false;
        }
        while let Some(d) = self.early.remove(&self.next_write) {
            d.result?;
            self.out.write_all(&d.output)?;
            self.written += d.output.len() as u64;
            let c = u32::try_from(d.output.len()).unwrap_or(u32::MAX);
            let n = u32::try_from(d.input.len()).unwrap_or(u32::MAX);
            self.table.push((c, n));
            self.next_write += 1;
            self.spare.push((d.input, d.output));
        }
        Ok(())
    }

    /// Hands the current block to the workers.
    fn submit(&mut self) -> Result<()> {
        // Frames handed out and not written yet (compressing, or done out of order).
        while self.next_seq - self.next_write >= self.max_in_flight as u64 {
            self.collect(true)?;
        }
        let (mut input, output) = self
            .spare
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(FRAME_BYTES), Vec::new()));
        input.clear();
        core::mem::swap(&mut input, &mut self.cur);
        self.pool.send(Job {
            seq: self.next_seq,
            input,
            output,
        })?;
        self.next_seq += 1;
        self.collect(false)
    }

    /// Compresses what is left, writes the seek table and returns the output stream.
    pub fn finish(mut self) -> Result<W> {
        if self.failed {
            return Err(incomplete());
        }
        if !self.cur.is_empty() {
            self.submit()?;
        }
        while self.pool.in_flight > 0 {
            self.collect(true)?;
        }
        let mut t = Vec::with_capacity(self.table.len() * 8 + 17);
        write_seek_table(&self.table, &mut t);
        self.out.write_all(&t)?;
        self.written += t.len() as u64;
        Ok(self.out)
    }
}

fn incomplete() -> Error {
    Error::message(format_args!(
        "the compressed stream is incomplete after an earlier error"
    ))
}

impl<W: WriteStream> WriteStream for Compressor<W> {
    fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        if self.failed {
            return Err(incomplete());
        }
        while !buf.is_empty() {
            let room = FRAME_BYTES - self.cur.len();
            let (now, rest) = buf.split_at(room.min(buf.len()));
            self.cur.extend_from_slice(now);
            buf = rest;
            if self.cur.len() == FRAME_BYTES {
                if let Err(e) = self.submit() {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
