//! The two-thread pipeline that save and raw clone run on: a reader thread turns a plan of
//! [`Step`]s into [`Block`]s (image records built in place by [`crate::image::record`]: one
//! `preadv` fills the clusters of up to [`IOV_MAX`](crate::dev::IOV_MAX) records between their
//! heads; or raw volume bytes), while the calling thread writes the previous block. A few fixed
//! blocks go round between the two threads through bounded channels: nothing is allocated and
//! no system call is made per cluster in the loop.
use super::plan::Step;
use super::prefetch::{with_prefetch, Ahead};
use super::volume_reader::VolumeReader;
use crate::dev::ReadVectoredAt;
use crate::error::Result;
use crate::image::record;
use std::prelude::v1::*;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes of one pipeline block. Three of them go round (one being read, one being written,
/// one waiting), so the copy needs 3 × this much memory whatever the volume size.
pub const BLOCK_BYTES: usize = 4 << 20;

/// Blocks in the pipeline.
pub const BLOCKS: usize = 3;

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
    BLOCK_BYTES.max(record::cluster_record_len(cluster_size as usize) + record::GAP_BYTES)
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

/// The channel to the consumer is closed: the consumer has gone away (it failed), so the
/// producer stops quietly and the consumer's error is the one reported.
struct ChannelClosed;

impl<D: ReadVectoredAt> Producer<'_, '_, D> {
    /// Takes the current block (or a free one) out; it is put back with `self.cur = Some(b)`.
    fn take(&mut self) -> core::result::Result<Block, ChannelClosed> {
        match self.cur.take() {
            Some(b) => Ok(b),
            None => {
                let mut b = self.free.recv().map_err(|_| ChannelClosed)?;
                b.len = 0;
                b.counted = 0;
                b.data_bytes = 0;
                Ok(b)
            }
        }
    }

    fn send(&mut self) -> core::result::Result<(), ChannelClosed> {
        if let Some(mut b) = self.cur.take() {
            // A block that holds only an empty record (a raw tail of 0 bytes) still goes: it
            // carries progress and, on a stream, the zeros up to its offset.
            if b.len > 0 || b.counted > 0 {
                b.bad_sectors = self.rd.bad_sectors;
                self.full.send(Ok(b)).map_err(|_| ChannelClosed)?;
            } else {
                self.cur = Some(b);
            }
        }
        Ok(())
    }

    /// Takes a block with at least `n` free bytes (an empty one holds any single record).
    fn take_with(&mut self, n: usize) -> core::result::Result<Block, ChannelClosed> {
        let b = self.take()?;
        if b.room() >= n {
            return Ok(b);
        }
        self.cur = Some(b);
        self.send()?;
        self.take()
    }

    fn run(
        &mut self,
        steps: impl Iterator<Item = Step>,
    ) -> core::result::Result<Result<()>, ChannelClosed> {
        let cs = self.rd.cluster_size;
        let cs64 = cs as u64;
        for step in steps {
            match (step, self.enc) {
                (Step::Gap(_), Encoding::Raw) => {}
                (Step::Gap(count), Encoding::Image) => {
                    let gap = record::gap(count);
                    let mut b = self.take_with(gap.len())?;
                    let at = b.len;
                    b.buf[at..at + gap.len()].copy_from_slice(&gap);
                    b.len += gap.len();
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
                    let stride = match enc {
                        Encoding::Image => record::cluster_record_len(cs),
                        Encoding::Raw => cs,
                    };
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
                    let rec_len = match enc {
                        Encoding::Image => record::cluster_record_len(len),
                        Encoding::Raw => len,
                    };
                    let mut b = self.take_with(rec_len)?;
                    let at = b.len;
                    let rec = &mut b.buf[at..at + rec_len];
                    let dst = match enc {
                        Encoding::Image => record::cluster_record(rec),
                        Encoding::Raw => rec,
                    };
                    let offset = lcn * cs64;
                    if at == 0 {
                        b.offset = offset;
                    }
                    b.len += rec_len;
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
/// with `--rescue`): a third thread walks the second plan ahead of the reader
/// ([`Prefetch`](super::Prefetch)).
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
    dev.copy_begins();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::plan::{chunks, raw_steps, save_steps};
    use crate::copy::test_dev::{quiet, volume, Faulty};
    use crate::error::{errno, Error};
    use crate::image::record::CMD_NEXT;
    use crate::used::UsedMap;

    /// An empty tail (device ends exactly at the volume's end) is still delivered.
    #[test]
    fn pipeline_delivers_an_empty_tail() {
        let mut used = UsedMap::new(24);
        used.set_range(0, 2, true);
        used.set_range(5, 1, true);
        used.set_range(9, 3, true);
        used.set_range(16, 8, true);
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
}
