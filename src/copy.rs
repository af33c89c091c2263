//! The shared copy machinery: used-cluster runs cut into large chunks, reads of those chunks
//! from the source volume with the reference's bad-sector handling (`--rescue`), and the
//! two-thread pipeline that save and raw clone run on.
//!
//! The pipeline ([`pipeline`]): a reader thread turns a plan of [`Step`]s into [`Block`]s
//! (image records built in place: one `preadv` fills the clusters of up to [`IOV_MAX`]
//! records between their command bytes; or raw volume bytes), while the calling thread writes
//! the previous block. A few fixed blocks go round between the two threads through bounded
//! channels: nothing is allocated and no system call is made per cluster in the loop.
use crate::dev::fd::Fd;
use crate::dev::ReadAt;
use crate::error::{errno, Error, Result};
use crate::image::writer::{CMD_GAP, CMD_NEXT};
use crate::report::Report;
use crate::used::UsedMap;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use rustix::io::{IoSlice, IoSliceMut};
use std::prelude::v1::*;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes moved per read/write in the copy loops (raised to one cluster for 2 MiB clusters, and
/// kept a multiple of the cluster size).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Bytes of one pipeline block. Three of them go round (one being read, one being written,
/// one waiting), so the copy needs 3 × this much memory whatever the volume size.
pub const BLOCK_BYTES: usize = 4 << 20;

/// Blocks in the pipeline.
pub const BLOCKS: usize = 3;

/// How far (bytes of the plan) the prefetch thread keeps the kernel reading ahead of the
/// reader. Measured on a virtio disk, cold cache: one thread reading 4 MiB at a time waits for
/// every read (0.6-1.3 s for 0.84 GB); with 64 MiB announced ahead by another thread the same
/// reads take 0.35-0.43 s. Page cache only: the process's memory does not grow.
const PREFETCH_AHEAD: u64 = 64 << 20;

/// Bytes per `WILLNEED` call of the prefetch thread.
const PREFETCH_PIECE: u64 = 8 << 20;

/// Ranges closer than this are announced as one (reading a little unused space costs less
/// than another request for the disk).
const PREFETCH_MERGE_GAP: u64 = 256 << 10;

/// Most buffers one vectored system call takes (Linux `UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;

/// Clusters per chunk for a cluster size.
pub fn chunk_clusters(cluster_size: u32) -> u64 {
    (CHUNK_BYTES as u64 / u64::from(cluster_size)).max(1)
}

/// Cuts runs `(lcn, count)` (increasing LCN) to LCNs below `limit` and into pieces of at most
/// `max` clusters.
pub fn chunks(
    runs: impl Iterator<Item = (u64, u64)>,
    limit: u64,
    max: u64,
) -> impl Iterator<Item = (u64, u64)> {
    runs.filter_map(move |(lcn, count)| {
        let end = lcn.saturating_add(count).min(limit);
        (lcn < end).then_some((lcn, end))
    })
    .flat_map(move |(lcn, end)| {
        let max = max.max(1);
        let n = (end - lcn).div_ceil(max);
        (0..n).map(move |i| {
            let s = lcn + i * max;
            (s, (end - s).min(max))
        })
    })
}

/// Merges two increasing run lists into one increasing list of maximal runs (their union).
pub fn merge_runs(
    a: impl Iterator<Item = (u64, u64)>,
    b: impl Iterator<Item = (u64, u64)>,
) -> impl Iterator<Item = (u64, u64)> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    let mut cur: Option<(u64, u64)> = None; // (start, end)
    core::iter::from_fn(move || loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if x.0 <= y.0 {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return cur.take().map(|(s, e)| (s, e - s)),
        };
        let Some((lcn, count)) = next else { continue };
        let end = lcn.saturating_add(count);
        match cur {
            Some((s, e)) if lcn <= e => cur = Some((s, e.max(end))),
            Some((s, e)) => {
                cur = Some((lcn, end));
                return Some((s, e - s));
            }
            None => cur = Some((lcn, end)),
        }
    })
}

/// The reference's `bad_sectors_warning_msg`, printed before `Disk is faulty`.
pub const BAD_SECTORS_WARNING: &str = "\
*************************************************************************\n\
* WARNING: The disk has one or more bad sectors. This means that damage *\n\
* has occurred on the disk surface, possibly caused by deterioration of *\n\
* the physical media, manufacturing faults or other reasons. The        *\n\
* reliability of the disk may stay stable or degrade fast.              *\n\
* Use the --rescue option to efficiently save as much data as possible! *\n\
*************************************************************************\n";

/// A device that can read into several buffers with one call (`preadv`). The default reads
/// the first non-empty buffer only, which is always correct (callers handle short reads).
pub trait ReadVectoredAt: ReadAt {
    /// Reads into `bufs` in order from byte `offset`; returns the bytes read (0 at the end).
    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> Result<usize> {
        match bufs.iter_mut().find(|b| !b.is_empty()) {
            Some(b) => self.read_at(b, offset),
            None => Ok(0),
        }
    }

    /// Hint that `len` bytes at `offset` will be read soon. Default: nothing.
    fn will_need(&self, _offset: u64, _len: u64) {}

    /// Whether a [`Prefetch`] thread pays for this device (the kernel reads ahead on
    /// [`ReadVectoredAt::will_need`]). Default: no.
    fn prefetches(&self) -> bool {
        false
    }
}

impl ReadVectoredAt for Fd {
    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> Result<usize> {
        self.preadv(bufs, offset)
    }

    fn will_need(&self, offset: u64, len: u64) {
        Fd::will_need(self, offset, len)
    }

    fn prefetches(&self) -> bool {
        true
    }
}

impl<T: ReadVectoredAt + ?Sized> ReadVectoredAt for &T {
    fn read_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> Result<usize> {
        (**self).read_vectored_at(bufs, offset)
    }

    fn will_need(&self, offset: u64, len: u64) {
        (**self).will_need(offset, len)
    }

    fn prefetches(&self) -> bool {
        (**self).prefetches()
    }
}

/// Read-ahead from a thread of its own: walks the byte ranges that a reader will read, in the
/// reader's order, and announces them to the kernel (`WILLNEED`) up to [`PREFETCH_AHEAD`]
/// bytes ahead of what the reader has consumed, so that a cold disk always has requests
/// queued while the reader copies. The announcing is off the reader's thread: a `WILLNEED`
/// call itself takes time (page allocation, request submission: 0.5 ms per 8 MiB measured).
///
/// [`with_prefetch`] runs it; the reader reports each read with [`Ahead::consumed`]. Nothing
/// here changes what is read: only when the kernel reads it.
pub struct Prefetch {
    consumed: AtomicU64,
    stop: AtomicBool,
}

impl Default for Prefetch {
    fn default() -> Self {
        Self::new()
    }
}

/// Stops a [`Prefetch`] thread when dropped (whatever way its reader ends).
struct StopOnDrop<'a>(&'a Prefetch, Option<std::thread::Thread>);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop(self.1.as_ref());
    }
}

impl Prefetch {
    /// Nothing consumed yet.
    pub const fn new() -> Self {
        Prefetch {
            consumed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// The reader has consumed `bytes` more of the ranges; `thread` is the prefetch thread
    /// (woken if it waits).
    fn consumed(&self, bytes: u64, thread: Option<&std::thread::Thread>) {
        self.consumed.fetch_add(bytes, Ordering::Release);
        if let Some(t) = thread {
            t.unpark();
        }
    }

    /// Ends the prefetch thread at its next step.
    fn stop(&self, thread: Option<&std::thread::Thread>) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = thread {
            t.unpark();
        }
    }

    /// The prefetch thread's body: announces `ranges` (byte offset, length) of `dev`.
    fn run<D: ReadVectoredAt + ?Sized>(&self, dev: &D, ranges: impl Iterator<Item = (u64, u64)>) {
        // `issued`: bytes of the ranges announced or held in `pending` (the span not yet
        // announced, which may include small gaps between ranges).
        let mut issued = 0u64;
        let mut pending: Option<(u64, u64)> = None;
        for (mut off, mut len) in ranges {
            while len > 0 {
                let k = len.min(PREFETCH_PIECE);
                match pending {
                    Some((po, pl))
                        if off >= po + pl
                            && off - (po + pl) <= PREFETCH_MERGE_GAP
                            && off + k - po <= PREFETCH_PIECE =>
                    {
                        pending = Some((po, off + k - po));
                    }
                    _ => {
                        if let Some((po, pl)) = pending {
                            if !self.announce(dev, po, pl, issued) {
                                return;
                            }
                        }
                        pending = Some((off, k));
                    }
                }
                issued += k;
                off += k;
                len -= k;
            }
        }
        if let Some((po, pl)) = pending {
            self.announce(dev, po, pl, issued);
        }
    }

    /// Waits until the reader is within [`PREFETCH_AHEAD`] of `issued`, then announces the
    /// span. False: stopped.
    fn announce<D: ReadVectoredAt + ?Sized>(
        &self,
        dev: &D,
        off: u64,
        len: u64,
        issued: u64,
    ) -> bool {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            if issued.saturating_sub(self.consumed.load(Ordering::Acquire)) <= PREFETCH_AHEAD {
                break;
            }
            // Woken by `consumed`; the timeout only bounds a missed wake-up.
            std::thread::park_timeout(core::time::Duration::from_millis(50));
        }
        dev.will_need(off, len);
        true
    }
}

/// A running prefetch thread (or none), as its reader sees it.
pub struct Ahead<'a> {
    prefetch: &'a Prefetch,
    thread: Option<std::thread::Thread>,
}

impl Ahead<'_> {
    /// The reader has consumed `bytes` more of the ranges.
    pub fn consumed(&self, bytes: u64) {
        self.prefetch.consumed(bytes, self.thread.as_ref());
    }
}

/// Runs `body` while a [`Prefetch`] thread announces `ranges` of `dev` ahead of it (no thread
/// when `ranges` is None); the thread is stopped and joined when `body` returns or panics.
pub fn with_prefetch<D, I, R>(dev: &D, ranges: Option<I>, body: impl FnOnce(&Ahead<'_>) -> R) -> R
where
    D: ReadVectoredAt + Sync + ?Sized,
    I: Iterator<Item = (u64, u64)> + Send,
{
    let prefetch = Prefetch::new();
    let prefetch = &prefetch;
    std::thread::scope(|s| {
        let handle = ranges.map(|r| s.spawn(move || prefetch.run(dev, r)));
        let ahead = Ahead {
            prefetch,
            thread: handle.as_ref().map(|h| h.thread().clone()),
        };
        let _stop = StopOnDrop(prefetch, ahead.thread.clone());
        body(&ahead)
    })
}

/// Reads through a read-ahead window: small reads (MFT records, pieces of $Bitmap) are served
/// from one large positioned read of up to the window's size, so that the scan makes one
/// system call per window instead of one per record. Reads larger than a quarter of the window
/// go straight to the device; a window that cannot be read (a bad sector somewhere in it) is
/// dropped and the read asked for is made on its own, so errors stay those of the bytes asked.
pub struct ReadAhead<'a, D: ReadAt + ?Sized> {
    dev: &'a D,
    win: core::cell::RefCell<Window>,
}

struct Window {
    buf: Vec<u8>,
    /// Device offset of `buf[0]`.
    start: u64,
    /// Valid bytes in `buf`.
    len: usize,
}

/// Window size of [`ReadAhead`] for the scan.
pub const SCAN_WINDOW_BYTES: usize = 1 << 20;

impl<'a, D: ReadAt + ?Sized> ReadAhead<'a, D> {
    /// A reader of `dev` with a window of `window` bytes (allocated once, here).
    pub fn new(dev: &'a D, window: usize) -> Self {
        ReadAhead {
            dev,
            win: core::cell::RefCell::new(Window {
                buf: vec![0u8; window.max(4096)],
                start: 0,
                len: 0,
            }),
        }
    }
}

impl<D: ReadAt + ?Sized> ReadAt for ReadAhead<'_, D> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let Ok(mut w) = self.win.try_borrow_mut() else {
            return self.dev.read_at(buf, offset);
        };
        if buf.len() > w.buf.len() / 4 {
            return self.dev.read_at(buf, offset);
        }
        let inside =
            |w: &Window| offset >= w.start && offset + buf.len() as u64 <= w.start + w.len as u64;
        if !inside(&w) {
            // Refill from the 4 KiB boundary at or below the read.
            let start = offset & !4095;
            let want = (offset - start) as usize + buf.len();
            let mut got = 0;
            w.start = start;
            w.len = 0;
            while got < want {
                let Window { buf: wb, .. } = &mut *w;
                match self.dev.read_at(&mut wb[got..], start + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(_) => return self.dev.read_at(buf, offset),
                }
            }
            w.len = got;
            if !inside(&w) {
                // The device ends inside the read: what is there, like a short read.
                let at = (offset - w.start) as usize;
                let n = w.len.saturating_sub(at).min(buf.len());
                buf[..n].copy_from_slice(&w.buf[at..at + n]);
                return Ok(n);
            }
        }
        let at = (offset - w.start) as usize;
        buf.copy_from_slice(&w.buf[at..at + buf.len()]);
        Ok(buf.len())
    }
}

/// Reads volume bytes, contiguous or as image records, with the reference's EIO handling.
pub struct VolumeReader<'a, D: ReadAt> {
    dev: &'a D,
    cluster_size: usize,
    sector_size: usize,
    rescue: bool,
    report: Report,
    /// The buffer of [`VolumeReader::read`] (empty for a reader made for the pipeline).
    buf: Vec<u8>,
    /// Sectors that could not be read (with `--rescue`).
    pub bad_sectors: u64,
}

impl<'a, D: ReadAt> VolumeReader<'a, D> {
    /// A reader with a buffer of one chunk (at least one cluster) for [`VolumeReader::read`].
    pub fn new(
        dev: &'a D,
        cluster_size: u32,
        sector_size: u32,
        rescue: bool,
        report: Report,
    ) -> Self {
        let mut rd = Self::unbuffered(dev, cluster_size, sector_size, rescue, report);
        rd.buf = vec![0u8; (chunk_clusters(cluster_size) as usize) * rd.cluster_size];
        rd
    }

    /// A reader without a buffer of its own: reads go into the caller's memory
    /// ([`VolumeReader::read_into`], [`VolumeReader::read_records`]).
    pub fn unbuffered(
        dev: &'a D,
        cluster_size: u32,
        sector_size: u32,
        rescue: bool,
        report: Report,
    ) -> Self {
        let cs = (cluster_size as usize).max(1);
        VolumeReader {
            dev,
            cluster_size: cs,
            sector_size: (sector_size as usize).clamp(256, cs.max(256)),
            rescue,
            report,
            buf: Vec::new(),
            bad_sectors: 0,
        }
    }

    /// Capacity of the buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Reads `len` bytes (at most [`VolumeReader::capacity`]) at byte `offset` into the
    /// reader's buffer. See [`VolumeReader::read_into`].
    pub fn read(&mut self, offset: u64, len: usize) -> Result<&mut [u8]> {
        if len > self.buf.len() {
            // A caller bug, never input: refuse rather than return fewer bytes than asked.
            return Err(Error::own(format_args!(
                "internal error: read of {len} bytes into a {}-byte buffer",
                self.buf.len()
            )));
        }
        let mut buf = core::mem::take(&mut self.buf);
        let r = self.read_into(&mut buf[..len], offset);
        self.buf = buf;
        r?;
        Ok(&mut self.buf[..len])
    }

    /// Fills `dst` with the bytes at byte `offset`.
    /// A read error other than EIO is fatal (`read_all`); EIO is fatal with the reference's
    /// warning box unless `--rescue`, which re-reads cluster by cluster, then sector by sector,
    /// and fills what cannot be read.
    pub fn read_into(&mut self, dst: &mut [u8], offset: u64) -> Result<()> {
        match self.dev.read_exact_at(dst, offset) {
            Ok(()) => return Ok(()),
            Err(e) if e.errno() == Some(errno::EIO) => {}
            Err(e) => return Err(e),
        }
        if !self.rescue {
            self.report.out(format_args!("{BAD_SECTORS_WARNING}"));
            return Err(Error::fatal(format_args!(
                "Disk is faulty, can't make full backup!"
            )));
        }
        let len = dst.len();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(self.cluster_size);
            let off = offset + done as u64;
            let slot = &mut dst[done..done + n];
            let ok = match self.dev.read_exact_at(slot, off) {
                Ok(()) => true,
                Err(e) if e.errno() == Some(errno::EIO) => false,
                Err(e) => return Err(e),
            };
            if !ok {
                self.rescue_cluster(slot, off)?;
            }
            done += n;
        }
        Ok(())
    }

    /// Sector-by-sector re-read of `slot` (volume byte `off`).
    fn rescue_cluster(&mut self, slot: &mut [u8], off: u64) -> Result<()> {
        let ss = self.sector_size;
        for (i, sec) in slot.chunks_mut(ss).enumerate() {
            let sec_off = off + (i * ss) as u64;
            match self.dev.read_exact_at(sec, sec_off) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(errno::EIO) => {
                    // The reference's filler: "BadSectoR\0" then '?'.
                    sec.fill(b'?');
                    let tag = b"BadSectoR\0";
                    let k = tag.len().min(sec.len());
                    sec[..k].copy_from_slice(&tag[..k]);
                    self.bad_sectors += 1;
                    // The reference prints only the byte offset, calling it a sector (bug #3).
                    self.report.out(format_args!(
                        "WARNING: Can't read sector {} (byte offset {sec_off}), lost data.\n",
                        sec_off / ss as u64
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<D: ReadVectoredAt> VolumeReader<'_, D> {
    /// Builds `records.len() / (cluster_size + 1)` image records in place: every record is
    /// `CMD_NEXT` followed by one cluster read from the volume, starting with the cluster at
    /// byte `offset`. One `preadv` per [`IOV_MAX`] clusters; errors as [`VolumeReader::read_into`].
    pub fn read_records(&mut self, records: &mut [u8], offset: u64) -> Result<()> {
        let cs = self.cluster_size;
        let stride = cs + 1;
        let k = records.len() / stride;
        let mut i = 0usize;
        while i < k {
            let n = (k - i).min(IOV_MAX);
            let region = &mut records[i * stride..(i + n) * stride];
            let mut iov: heapless::Vec<IoSliceMut<'_>, IOV_MAX> = heapless::Vec::new();
            for rec in region.chunks_exact_mut(stride) {
                let (cmd, data) = rec.split_at_mut(1);
                cmd[0] = CMD_NEXT;
                // At most IOV_MAX records per region: never full.
                let _ = iov.push(IoSliceMut::new(data));
            }
            let at = offset + (i * cs) as u64;
            let got = match self.dev.read_vectored_at(&mut iov, at) {
                Ok(g) => g,
                Err(e) if e.errno() == Some(errno::EIO) => 0,
                Err(e) => return Err(e),
            };
            drop(iov);
            if got == 0 {
                // End of device or EIO: cluster by cluster, with the reference's handling.
                for (j, rec) in region.chunks_exact_mut(stride).enumerate() {
                    self.read_into(&mut rec[1..], at + (j * cs) as u64)?;
                }
                i += n;
                continue;
            }
            let (full, part) = (got / cs, got % cs);
            i += full;
            if part > 0 {
                let rec = &mut records[i * stride..(i + 1) * stride];
                self.read_into(&mut rec[1 + part..], offset + (i * cs + part) as u64)?;
                i += 1;
            }
        }
        Ok(())
    }
}

/// One step of a copy plan, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `CMD_GAP count` (image streams only; raw copies skip it).
    Gap(i64),
    /// Clusters `lcn .. lcn + n`; `counted` ones advance the progress bar.
    Clusters {
        /// First cluster.
        lcn: u64,
        /// Number of clusters.
        n: u64,
        /// Counted for progress.
        counted: bool,
    },
    /// One record of `len` bytes for cluster `lcn` (the backup boot sector position, which may
    /// be a partial cluster). Counted for progress.
    Tail {
        /// The cluster position.
        lcn: u64,
        /// Bytes (0 ..= cluster size).
        len: usize,
    },
}

/// What the blocks hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Image records (`CMD_GAP`, `CMD_NEXT` + cluster), ready to append to an image stream.
    Image,
    /// Raw volume bytes of one contiguous extent starting at [`Block::offset`].
    Raw,
}

/// A fixed buffer going round the pipeline.
#[derive(Debug)]
pub struct Block {
    buf: Vec<u8>,
    len: usize,
    /// Raw blocks: volume byte offset of the first byte.
    pub offset: u64,
    /// Counted clusters (and tail records) in this block, for progress.
    pub counted: u64,
    /// Raw blocks: the cluster after the last one (the stream position after this block).
    pub lcn_end: u64,
    /// Cluster bytes read from the volume into this block (all records, counted or not).
    pub data_bytes: u64,
    /// Sectors that could not be read so far in the whole copy (`--rescue`).
    pub bad_sectors: u64,
}

impl Block {
    /// The bytes of the block.
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The bytes, mutable (raw clone patches serial numbers).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    fn room(&self) -> usize {
        self.buf.len() - self.len
    }
}

/// Bytes of a pipeline block for `cluster_size`: [`BLOCK_BYTES`], or more when one record of a
/// large cluster (plus a gap record) does not fit.
pub fn block_bytes(cluster_size: u32) -> usize {
    BLOCK_BYTES.max(cluster_size as usize + 1 + 9)
}

/// The reader thread's side: fills blocks from the plan and hands them over.
struct Producer<'r, 'a, D: ReadVectoredAt> {
    rd: &'r mut VolumeReader<'a, D>,
    enc: Encoding,
    full: SyncSender<Result<Block>>,
    free: Receiver<Block>,
    cur: Option<Block>,
    /// The prefetch thread, told what has been read.
    ahead: &'r Ahead<'r>,
}

/// The consumer has gone away (it failed): stop quietly, its error is the one reported.
struct Gone;

impl<D: ReadVectoredAt> Producer<'_, '_, D> {
    /// Takes the current block (or a free one) out; it is put back with `self.cur = Some(b)`.
    fn take(&mut self) -> core::result::Result<Block, Gone> {
        match self.cur.take() {
            Some(b) => Ok(b),
            None => {
                let mut b = self.free.recv().map_err(|_| Gone)?;
                b.len = 0;
                b.counted = 0;
                b.data_bytes = 0;
                Ok(b)
            }
        }
    }

    fn send(&mut self) -> core::result::Result<(), Gone> {
        if let Some(mut b) = self.cur.take() {
            // A block that holds only an empty record (a raw tail of 0 bytes) still goes: it
            // carries progress and, on a stream, the zeros up to its offset.
            if b.len > 0 || b.counted > 0 {
                b.bad_sectors = self.rd.bad_sectors;
                self.full.send(Ok(b)).map_err(|_| Gone)?;
            } else {
                self.cur = Some(b);
            }
        }
        Ok(())
    }

    /// Takes a block with at least `n` free bytes (an empty one holds any single record).
    fn take_with(&mut self, n: usize) -> core::result::Result<Block, Gone> {
        let b = self.take()?;
        if b.room() >= n {
            return Ok(b);
        }
        self.cur = Some(b);
        self.send()?;
        self.take()
    }

    fn run(&mut self, steps: impl Iterator<Item = Step>) -> core::result::Result<Result<()>, Gone> {
        let cs = self.rd.cluster_size;
        let cs64 = cs as u64;
        for step in steps {
            match (step, self.enc) {
                (Step::Gap(_), Encoding::Raw) => {}
                (Step::Gap(count), Encoding::Image) => {
                    let mut b = self.take_with(9)?;
                    let at = b.len;
                    b.buf[at] = CMD_GAP;
                    b.buf[at + 1..at + 9].copy_from_slice(&count.to_le_bytes());
                    b.len += 9;
                    self.cur = Some(b);
                }
                (
                    Step::Clusters {
                        mut lcn,
                        mut n,
                        counted,
                    },
                    enc,
                ) => {
                    let stride = if enc == Encoding::Image { cs + 1 } else { cs };
                    while n > 0 {
                        if enc == Encoding::Raw {
                            // One contiguous extent per raw block.
                            self.send()?;
                        }
                        let mut b = self.take_with(stride)?;
                        let k = ((b.room() / stride) as u64).min(n) as usize;
                        let at = b.len;
                        let dst = &mut b.buf[at..at + k * stride];
                        let offset = lcn * cs64;
                        if at == 0 {
                            b.offset = offset;
                        }
                        b.len += k * stride;
                        b.lcn_end = lcn + k as u64;
                        if counted {
                            b.counted += k as u64;
                        }
                        b.data_bytes += k as u64 * cs64;
                        let r = match enc {
                            Encoding::Image => self.rd.read_records(dst, offset),
                            Encoding::Raw => self.rd.read_into(dst, offset),
                        };
                        self.ahead.consumed(k as u64 * cs64);
                        self.cur = Some(b);
                        if let Err(e) = r {
                            return Ok(Err(e));
                        }
                        lcn += k as u64;
                        n -= k as u64;
                    }
                }
                (Step::Tail { lcn, len }, enc) => {
                    if enc == Encoding::Raw {
                        self.send()?;
                    }
                    let head = usize::from(enc == Encoding::Image);
                    let mut b = self.take_with(head + len)?;
                    let at = b.len;
                    if head == 1 {
                        b.buf[at] = CMD_NEXT;
                    }
                    let dst = &mut b.buf[at + head..at + head + len];
                    let offset = lcn * cs64;
                    if at == 0 {
                        b.offset = offset;
                    }
                    b.len += head + len;
                    b.lcn_end = lcn + 1;
                    b.counted += 1;
                    b.data_bytes += len as u64;
                    let r = self.rd.read_into(dst, offset);
                    self.cur = Some(b);
                    if let Err(e) = r {
                        return Ok(Err(e));
                    }
                }
            }
        }
        self.send()?;
        Ok(Ok(()))
    }
}

/// Runs the plan made by `steps` through the two-thread pipeline: a reader thread fills blocks
/// of `block_bytes` (see [`block_bytes`]) encoded as `enc`, and `sink` is called on this thread
/// with each block in order. The first error of either side stops both and is returned.
/// Returns the bad sectors met (`--rescue`).
///
/// `steps` is called twice when the device pays for it ([`ReadVectoredAt::prefetches`], not
/// with `--rescue`): a third thread walks the second plan ahead of the reader ([`Prefetch`]).
pub fn pipeline<D, I, F>(
    rd: VolumeReader<'_, D>,
    steps: impl Fn() -> I,
    enc: Encoding,
    block_bytes: usize,
    mut sink: F,
) -> Result<u64>
where
    D: ReadVectoredAt + Sync,
    I: Iterator<Item = Step> + Send,
    F: FnMut(&mut Block) -> Result<()>,
{
    let mut rd = rd;
    let cs64 = rd.cluster_size as u64;
    let ranges = (rd.dev.prefetches() && !rd.rescue).then(|| {
        steps().filter_map(move |step| match step {
            Step::Clusters { lcn, n, .. } => {
                Some((lcn.saturating_mul(cs64), n.saturating_mul(cs64)))
            }
            _ => None,
        })
    });
    let steps = steps();
    let dev = rd.dev;
    let (full_tx, full_rx) = sync_channel::<Result<Block>>(BLOCKS);
    let (free_tx, free_rx) = sync_channel::<Block>(BLOCKS);
    for _ in 0..BLOCKS {
        let b = Block {
            buf: vec![0u8; block_bytes],
            len: 0,
            offset: 0,
            counted: 0,
            lcn_end: 0,
            data_bytes: 0,
            bad_sectors: 0,
        };
        // The channel holds BLOCKS blocks: never full here.
        let _ = free_tx.try_send(b);
    }
    let rd_ref = &mut rd;
    let result = with_prefetch(dev, ranges, |ahead| {
        std::thread::scope(|s| {
            let reader = s.spawn(move || {
                let mut p = Producer {
                    rd: rd_ref,
                    enc,
                    full: full_tx,
                    free: free_rx,
                    cur: None,
                    ahead,
                };
                if let Ok(Err(e)) = p.run(steps) {
                    let _ = p.full.send(Err(e));
                }
            });
            let mut result = Ok(());
            // Ends when the reader has sent everything (or an error) and hung up.
            while let Ok(msg) = full_rx.recv() {
                match msg.and_then(|mut b| {
                    let r = sink(&mut b);
                    let _ = free_tx.send(b);
                    r
                }) {
                    Ok(()) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            // Hang up both channels so that a reader still waiting returns, then wait for it.
            drop(full_rx);
            drop(free_tx);
            if let Err(panic) = reader.join() {
                std::panic::resume_unwind(panic);
            }
            result
        })
    });
    result.map(|()| rd.bad_sectors)
}

/// The record plan of `-s` (spec §1.3), byte-identical to the reference's stream: with
/// `extra` (`--rescue --ignore-fs-check`), the extra clusters first at their positions and a
/// negative gap back to 0; then the used clusters below `nr_clusters` with the reference's gap
/// rule (`cl − last_cl − 1`, `last_cl` starting at 0); then the record of position
/// `nr_clusters` (`tail_len` bytes: the backup boot sector, possibly a partial cluster).
pub fn save_steps<'a>(
    used: &'a UsedMap,
    extra: Option<&'a UsedMap>,
    nr_clusters: u64,
    tail_len: usize,
) -> impl Iterator<Item = Step> + Send + 'a {
    let nr = nr_clusters;
    let runs = move |m: &'a UsedMap| chunks(m.runs(), nr, u64::MAX);
    let extra_steps = extra.into_iter().flat_map(move |m| {
        let mut cur = 0u64;
        let rewind = runs(m).last().map(|(lcn, n)| lcn + n).unwrap_or(0);
        runs(m)
            .flat_map(move |(lcn, n)| {
                let gap = (lcn > cur).then(|| Step::Gap((lcn - cur) as i64));
                cur = lcn + n;
                let clusters = Step::Clusters {
                    lcn,
                    n,
                    counted: false,
                };
                gap.into_iter().chain(core::iter::once(clusters))
            })
            .chain((rewind > 0).then(|| Step::Gap(-(rewind as i64))))
    });
    let gap =
        |cl: u64, last_cl: u64| (cl > last_cl + 1).then(|| Step::Gap((cl - last_cl - 1) as i64));
    let mut last_cl = 0u64;
    let used_steps = runs(used).flat_map(move |(lcn, n)| {
        let g = gap(lcn, last_cl);
        last_cl = lcn + n - 1;
        let clusters = Step::Clusters {
            lcn,
            n,
            counted: true,
        };
        g.into_iter().chain(core::iter::once(clusters))
    });
    let last_used = runs(used).last().map(|(lcn, n)| lcn + n - 1).unwrap_or(0);
    let tail = gap(nr, last_used)
        .into_iter()
        .chain(core::iter::once(Step::Tail {
            lcn: nr,
            len: tail_len,
        }));
    extra_steps.chain(used_steps).chain(tail)
}

/// The plan of a raw clone from cluster `from` on: the runs below `nr_clusters` as counted
/// clusters, then position `nr_clusters` (`tail_len` bytes).
pub fn raw_steps(
    runs: impl Iterator<Item = (u64, u64)> + Send,
    from: u64,
    nr_clusters: u64,
    tail_len: usize,
) -> impl Iterator<Item = Step> + Send {
    chunks(runs, nr_clusters, u64::MAX)
        .filter_map(move |(lcn, n)| {
            let end = lcn + n;
            let lcn = lcn.max(from);
            (lcn < end).then(|| Step::Clusters {
                lcn,
                n: end - lcn,
                counted: true,
            })
        })
        .chain(core::iter::once(Step::Tail {
            lcn: nr_clusters,
            len: tail_len,
        }))
}

/// Writes all of `bufs` at byte `offset` (`pwritev`, continuing after short writes).
pub fn write_all_vectored_at(fd: &Fd, bufs: &[IoSlice<'_>], offset: u64) -> Result<()> {
    write_all_vectored(bufs, offset, |b, o| fd.pwritev(b, o))
}

/// Writes all of `bufs` with `writev(bufs, offset)` (a `pwritev` or, ignoring the offset, a
/// stream's `writev`), continuing after short writes.
pub fn write_all_vectored(
    bufs: &[IoSlice<'_>],
    offset: u64,
    mut writev: impl FnMut(&[IoSlice<'_>], u64) -> Result<usize>,
) -> Result<()> {
    let mut bufs = bufs;
    let mut offset = offset;
    while !bufs.is_empty() {
        let mut n = writev(bufs, offset)?;
        if n == 0 {
            return Err(Error::os("write_all", errno::ENOSPC));
        }
        offset += n as u64;
        // Skip the buffers written completely; finish a partly written one on its own.
        while let Some((first, rest)) = bufs.split_first() {
            if n >= first.len() {
                n -= first.len();
                bufs = rest;
                continue;
            }
            let mut tail = first.get(n..).unwrap_or(&[]);
            while !tail.is_empty() {
                let m = writev(&[IoSlice::new(tail)], offset)?;
                if m == 0 {
                    return Err(Error::os("write_all", errno::ENOSPC));
                }
                offset += m as u64;
                tail = tail.get(m..).unwrap_or(&[]);
            }
            bufs = rest;
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking() {
        let runs = [(0u64, 5u64), (10, 3), (20, 10)];
        let v: Vec<_> = chunks(runs.iter().copied(), 25, 4).collect();
        assert_eq!(v, [(0, 4), (4, 1), (10, 3), (20, 4), (24, 1)]);
        let v: Vec<_> = chunks(runs.iter().copied(), 3, 100).collect();
        assert_eq!(v, [(0, 3)]);
    }

    /// A device whose bytes `bad.0..bad.1` fail with EIO.
    struct Faulty {
        data: Vec<u8>,
        bad: (u64, u64),
    }

    impl ReadAt for Faulty {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
            let end = offset + buf.len() as u64;
            if offset < self.bad.1 && end > self.bad.0 {
                return Err(Error::os("read_all", errno::EIO));
            }
            crate::dev::mem::MemDev::new(self.data.clone()).read_at(buf, offset)
        }
    }

    impl ReadVectoredAt for Faulty {}

    #[test]
    fn rescue_fills_bad_sectors() {
        let dev = Faulty {
            data: vec![7u8; 64 * 1024],
            bad: (5000, 5001),
        };
        let report = Report {
            msg_to_stderr: true,
            quiet: true,
        };
        let mut rd = VolumeReader::new(&dev, 4096, 512, true, report);
        let got = rd.read(0, 16384).unwrap().to_vec();
        assert_eq!(rd.bad_sectors, 1);
        assert!(got[..4608].iter().all(|&b| b == 7));
        assert_eq!(&got[4608..4618], b"BadSectoR\0");
        assert!(got[4618..5120].iter().all(|&b| b == b'?'));
        assert!(got[5120..].iter().all(|&b| b == 7));

        let mut rd = VolumeReader::new(&dev, 4096, 512, false, report);
        let e = rd.read(0, 16384).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "ERROR: Disk is faulty, can't make full backup!"
        );
        let mut rd = VolumeReader::new(&dev, 4096, 512, false, report);
        assert!(rd.read(8192, 8192).is_ok());
    }

    impl ReadVectoredAt for crate::dev::mem::MemDev {}

    /// A volume of `n` clusters of 512 bytes, cluster `i` filled with byte `i`.
    fn volume(n: usize, tail: usize) -> crate::dev::mem::MemDev {
        let mut d: Vec<u8> = (0..n).flat_map(|i| [i as u8; 512]).collect();
        d.extend(core::iter::repeat(0xEE).take(tail));
        crate::dev::mem::MemDev::new(d)
    }

    fn quiet() -> Report {
        Report {
            msg_to_stderr: true,
            quiet: true,
        }
    }

    #[test]
    fn save_plan_uses_the_reference_gap_rule() {
        let mut used = UsedMap::new(24);
        used.set_range(0, 2, true);
        used.set_range(5, 1, true);
        used.set_range(9, 3, true);
        used.set_range(16, 8, true); // bits from nr_clusters on are preset, never copied as runs
        let v: Vec<_> = save_steps(&used, None, 16, 100).collect();
        let c = |lcn, n| Step::Clusters {
            lcn,
            n,
            counted: true,
        };
        assert_eq!(
            v,
            [
                c(0, 2),
                Step::Gap(3),
                c(5, 1),
                Step::Gap(3),
                c(9, 3),
                Step::Gap(4),
                Step::Tail { lcn: 16, len: 100 }
            ]
        );
        let mut extra = UsedMap::new(24);
        extra.set_range(3, 1, true);
        extra.set_range(7, 2, true);
        let v: Vec<_> = save_steps(&used, Some(&extra), 16, 0).take(6).collect();
        let x = |lcn, n| Step::Clusters {
            lcn,
            n,
            counted: false,
        };
        assert_eq!(
            v,
            [
                Step::Gap(3),
                x(3, 1),
                Step::Gap(3),
                x(7, 2),
                Step::Gap(-9),
                c(0, 2)
            ]
        );
        let v: Vec<_> = raw_steps(used.runs(), 10, 16, 7).collect();
        assert_eq!(v, [c(10, 2), Step::Tail { lcn: 16, len: 7 }]);
        // An empty tail (device ends exactly at the volume's end) is still delivered.
        let dev = volume(16, 0);
        let rd = VolumeReader::unbuffered(&dev, 512, 512, false, quiet());
        let mut blocks = Vec::new();
        pipeline(
            rd,
            || raw_steps(used.runs(), 10, 16, 0),
            Encoding::Raw,
            4096,
            |b| {
                blocks.push((b.offset, b.data().len(), b.counted, b.lcn_end));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(blocks, [(10 * 512, 1024, 2, 12), (16 * 512, 0, 1, 17)]);
    }

    /// The pipeline's image blocks are the bytes the record-by-record writer produces, and its
    /// raw blocks the volume bytes, whatever the block size (records split across blocks).
    #[test]
    fn pipeline_matches_the_writer() {
        use crate::image::{Header, Writer};
        let dev = volume(40, 300);
        let mut used = UsedMap::new(48);
        for (s, n) in [(0u64, 3u64), (4, 1), (10, 17), (39, 1)] {
            used.set_range(s, n, true);
        }
        let h = Header::new(512, 40 * 512 + 300, 40, 22);
        let mut w = Writer::new(crate::dev::mem::MemDev::default(), &h, 0).unwrap();
        let mut last = 0u64;
        for (lcn, n) in chunks(used.runs(), 40, u64::MAX) {
            if lcn > last + 1 {
                w.gap((lcn - last - 1) as i64).unwrap();
            }
            for l in lcn..lcn + n {
                w.cluster(&dev.data[l as usize * 512..][..512]).unwrap();
            }
            last = lcn + n - 1;
        }
        w.cluster(&dev.data[40 * 512..]).unwrap();
        let want = w.finish().unwrap().data;
        for block in [block_bytes(512), 600, 2000, 5000] {
            let rd = VolumeReader::unbuffered(&dev, 512, 512, false, quiet());
            let mut got = h.to_bytes().to_vec();
            let mut counted = 0;
            pipeline(
                rd,
                || save_steps(&used, None, 40, 300),
                Encoding::Image,
                block,
                |b| {
                    got.extend_from_slice(b.data());
                    counted += b.counted;
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(got, want, "block size {block}");
            assert_eq!(counted, 23);

            let rd = VolumeReader::unbuffered(&dev, 512, 512, false, quiet());
            let mut raw = vec![0u8; dev.data.len()];
            pipeline(
                rd,
                || raw_steps(used.runs(), 0, 40, 300),
                Encoding::Raw,
                block,
                |b| {
                    let o = b.offset as usize;
                    raw[o..o + b.data().len()].copy_from_slice(b.data());
                    Ok(())
                },
            )
            .unwrap();
            for (s, n) in [(0usize, 3usize), (4, 1), (10, 17), (39, 1)] {
                assert_eq!(
                    raw[s * 512..(s + n) * 512],
                    dev.data[s * 512..(s + n) * 512]
                );
            }
            assert_eq!(raw[40 * 512..], dev.data[40 * 512..]);
            assert!(raw[3 * 512..4 * 512].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn pipeline_errors_stop_both_sides() {
        let dev = Faulty {
            data: vec![7u8; 64 * 1024],
            bad: (5000, 5001),
        };
        let mut used = UsedMap::new(128);
        used.set_range(0, 100, true);
        let rd = VolumeReader::unbuffered(&dev, 512, 512, false, quiet());
        let e = pipeline(
            rd,
            || raw_steps(used.runs(), 0, 100, 0),
            Encoding::Raw,
            1024,
            |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "ERROR: Disk is faulty, can't make full backup!"
        );
        // The writing side fails: the reader thread stops too, the error is the writer's.
        let rd = VolumeReader::unbuffered(&dev, 512, 512, true, quiet());
        let e = pipeline(
            rd,
            || raw_steps(used.runs(), 0, 100, 0),
            Encoding::Raw,
            1024,
            |_| Err(Error::os("write_all", errno::ENOSPC)),
        )
        .unwrap_err();
        assert_eq!(e.errno(), Some(errno::ENOSPC));
        // With --rescue, the bad sector is filled in place inside a record.
        let rd = VolumeReader::unbuffered(&dev, 512, 512, true, quiet());
        let mut got = Vec::new();
        let bad = pipeline(
            rd,
            || save_steps(&used, None, 100, 0),
            Encoding::Image,
            4096,
            |b| {
                got.extend_from_slice(b.data());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(bad, 1);
        // Sector 9 (bytes 4608..5120) is record 9: cmd byte at 9 * 513.
        assert_eq!(&got[9 * 513 + 1..9 * 513 + 11], b"BadSectoR\0");
        assert_eq!(got[10 * 513], CMD_NEXT);
    }

    #[test]
    fn vectored_writes_finish_short_writes() {
        let a = [1u8; 10];
        let b = [2u8; 7];
        let bufs = [IoSlice::new(&a), IoSlice::new(&b)];
        let mut out = Vec::new();
        // A writer that takes at most 4 bytes per call.
        write_all_vectored(&bufs, 0, |bs, off| {
            assert_eq!(off as usize, out.len());
            let mut n = 0;
            for s in bs {
                let k = s.len().min(4 - n);
                out.extend_from_slice(&s[..k]);
                n += k;
                if n == 4 {
                    break;
                }
            }
            Ok(n)
        })
        .unwrap();
        assert_eq!(out, [&a[..], &b[..]].concat());
    }

    #[test]
    fn read_ahead_serves_small_reads_from_one_window() {
        use core::cell::Cell;
        struct Counting {
            data: Vec<u8>,
            calls: Cell<u32>,
            bad: u64,
        }
        impl ReadAt for Counting {
            fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
                self.calls.set(self.calls.get() + 1);
                let end = offset + buf.len() as u64;
                if offset <= self.bad && self.bad < end {
                    return Err(Error::os("read_all", errno::EIO));
                }
                crate::dev::mem::MemDev::new(self.data.clone()).read_at(buf, offset)
            }
        }
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let dev = Counting {
            data: data.clone(),
            calls: Cell::new(0),
            bad: 90_000,
        };
        let ra = ReadAhead::new(&dev, 16384);
        let mut rec = [0u8; 1024];
        for i in 0..16u64 {
            ra.read_exact_at(&mut rec, 5000 + i * 1024).unwrap();
            assert_eq!(rec[..], data[5000 + i as usize * 1024..][..1024]);
        }
        assert_eq!(dev.calls.get(), 2); // one window from 4096, then one from 20480
                                        // Near a bad byte: the window fails, the record alone is read and succeeds.
        ra.read_exact_at(&mut rec, 88_000).unwrap();
        assert_eq!(rec[..], data[88_000..89_024]);
        assert!(ra.read_exact_at(&mut rec, 89_500).is_err());
        // The end of the device: a short read, then the usual EIO of read_exact_at.
        assert_eq!(ra.read_at(&mut rec, 99_500).unwrap(), 500);
        assert!(ra.read_exact_at(&mut rec, 99_500).is_err());
    }

    #[test]
    fn merging() {
        let a = [(0u64, 2u64), (5, 2), (20, 1)];
        let b = [(1u64, 2u64), (7, 1), (10, 3)];
        let v: Vec<_> = merge_runs(a.iter().copied(), b.iter().copied()).collect();
        assert_eq!(v, [(0, 3), (5, 3), (10, 3), (20, 1)]);
        let v: Vec<_> = merge_runs(core::iter::empty(), b.iter().copied()).collect();
        assert_eq!(v, b);
    }

    /// Records what a prefetch thread announces.
    struct Announced(std::sync::Mutex<Vec<(u64, u64)>>);

    impl ReadAt for Announced {
        fn read_at(&self, _buf: &mut [u8], _offset: u64) -> Result<usize> {
            Ok(0)
        }
    }

    impl ReadVectoredAt for Announced {
        fn will_need(&self, offset: u64, len: u64) {
            self.0.lock().unwrap().push((offset, len));
        }
    }

    #[test]
    fn prefetch_stays_ahead_by_a_bounded_amount_and_merges_close_ranges() {
        const M: u64 = 1 << 20;
        let dev = Announced(std::sync::Mutex::new(Vec::new()));
        // 40 runs of 3 MiB, each 64 KiB after the previous one (merged in pairs: a third one
        // would make the span longer than a piece), then a far run (not merged).
        let mut ranges: Vec<(u64, u64)> =
            (0..40).map(|i| (i * (3 * M + 64 * 1024), 3 * M)).collect();
        ranges.push((1 << 40, M));
        let total: u64 = ranges.iter().map(|r| r.1).sum();
        let p = Prefetch::new();
        let announced =
            |dev: &Announced| -> u64 { dev.0.lock().unwrap().iter().map(|r| r.1).sum() };
        std::thread::scope(|s| {
            let h = s.spawn(|| p.run(&dev, ranges.iter().copied()));
            // Nothing consumed: it announces up to PREFETCH_AHEAD (one piece's slack) and waits.
            std::thread::sleep(std::time::Duration::from_millis(100));
            let first = announced(&dev);
            assert!(first >= PREFETCH_AHEAD / 2, "{first}");
            assert!(first <= PREFETCH_AHEAD + 2 * PREFETCH_PIECE, "{first}");
            // Everything consumed: the rest comes.
            p.consumed(total, Some(h.thread()));
            h.join().unwrap();
        });
        let v = dev.0.into_inner().unwrap();
        assert_eq!(v.last(), Some(&(1 << 40, M)));
        // Merged spans: 6 MiB + the 64 KiB between the pair's two runs.
        assert_eq!(v[0], (0, 6 * M + 64 * 1024));
        assert_eq!(v.len(), 21);
        // In order, each span covering its runs.
        for r in &ranges {
            assert!(
                v.iter().any(|&(o, l)| o <= r.0 && r.0 + r.1 <= o + l),
                "{r:?}"
            );
        }
        assert!(v.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
    }

    #[test]
    fn prefetch_stops_when_told() {
        let dev = Announced(std::sync::Mutex::new(Vec::new()));
        let p = Prefetch::new();
        let ranges = (0..1000u64).map(|i| (i << 30, 8 << 20));
        std::thread::scope(|s| {
            let h = s.spawn(|| p.run(&dev, ranges));
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(StopOnDrop(&p, Some(h.thread().clone())));
            h.join().unwrap();
        });
        let n = dev.0.into_inner().unwrap().len();
        assert!(n > 0 && n < 20, "{n}");
    }
}
