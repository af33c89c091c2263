//! Writes an image: the header, then `CMD_GAP` / `CMD_NEXT` records, through one fixed buffer
//! so that the output sees a few large writes whatever the cluster size.
//!
//! Records are appended as the caller gives them; the caller decides gaps (the save mode
//! reproduces the reference's gap arithmetic exactly so that images are byte-identical).
//! [`Writer::finish`] must be called: it flushes the buffer and hands the stream back.
//!
//! With [`Writer::with_trailer`] every byte handed to the output is also checksummed
//! ([`super::trailer::Builder`], one CRC32 pass over each buffer as it is flushed), and
//! [`Writer::finish_with_trailer`] appends the integrity trailer in its own write after the
//! last record, so that a reader which stops at the last record and closes a pipe can be told
//! apart from a failed write of the records.
use super::header::Header;
use super::record::{self, CLUSTER_HEAD};
use super::trailer::{self, Builder};
use crate::dev::WriteStream;
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// An image being written.
pub struct Writer<W: WriteStream> {
    out: W,
    buf: Vec<u8>,
    /// Bytes handed to `out` so far.
    flushed: u64,
    /// Checksums of everything handed to `out`, when a trailer is wanted.
    sums: Option<Builder>,
}

/// How the trailer went at the end of [`Writer::finish_with_trailer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailerWrite {
    /// No trailer was asked for.
    None,
    /// The trailer (of this many bytes) was written.
    Written(usize),
    /// The reader closed the pipe after the last record: all records were delivered, the
    /// trailer was not (not an error: the reference tool stops reading at the last record).
    ReaderGone,
}

impl<W: WriteStream> Writer<W> {
    /// Starts an image on `out` with `header`; `buf_bytes` is the size of the write buffer
    /// (allocated once here; raised to hold at least one record of a cluster).
    pub fn new(out: W, header: &Header, buf_bytes: usize) -> Result<Self> {
        let cap = buf_bytes
            .max(header.cluster_size as usize + record::GAP_BYTES)
            .max(64);
        let mut buf = Vec::with_capacity(cap);
        buf.extend_from_slice(&header.to_bytes());
        Ok(Writer {
            out,
            buf,
            flushed: 0,
            sums: None,
        })
    }

    /// Asks for an integrity trailer after the last record (chunk size from the header, see
    /// [`trailer::chunk_size_for`]). Call before any record is added.
    pub fn with_trailer(mut self, header: &Header) -> Self {
        self.sums = Some(Builder::new(trailer::chunk_size_for(
            header.nr_clusters,
            header.cluster_size,
        )));
        self
    }

    fn room(&mut self, n: usize) -> Result<()> {
        if self.buf.capacity() - self.buf.len() < n {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            if let Some(s) = self.sums.as_mut() {
                s.update(&self.buf);
            }
            self.out.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends `CMD_GAP count` (count may be negative: metadata and rescue streams rewind).
    pub fn gap(&mut self, count: i64) -> Result<()> {
        let gap = record::gap(count);
        self.room(gap.len())?;
        self.buf.extend_from_slice(&gap);
        Ok(())
    }

    /// Appends one `CMD_NEXT` record holding `data` (one cluster, or the partial last one).
    pub fn cluster(&mut self, data: &[u8]) -> Result<()> {
        let len = record::cluster_record_len(data.len());
        if len > self.buf.capacity() {
            // Larger than the buffer: cannot happen with the sizes `new` chooses, but stays correct.
            self.flush_buf()?;
            if let Some(s) = self.sums.as_mut() {
                s.update(&CLUSTER_HEAD);
                s.update(data);
            }
            self.out.write_all(&CLUSTER_HEAD)?;
            self.out.write_all(data)?;
            self.flushed += len as u64;
            return Ok(());
        }
        self.room(len)?;
        self.buf.extend_from_slice(&CLUSTER_HEAD);
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Appends records that are already encoded as the stream holds them (`CMD_GAP` + count,
    /// `CMD_NEXT` + cluster): `-s` builds them in place in its read buffers with [`record`]'s
    /// encoder (see `copy::pipeline`). Large inputs go straight to the output after what is
    /// buffered; the checksums see them like any other bytes.
    pub fn encoded(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= self.buf.capacity() - self.buf.len() {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush_buf()?;
        if let Some(s) = self.sums.as_mut() {
            s.update(bytes);
        }
        self.out.write_all(bytes)?;
        self.flushed += bytes.len() as u64;
        Ok(())
    }

    /// Appends one `CMD_NEXT` per `cluster_size` bytes of `data` (a run of adjacent clusters).
    pub fn clusters(&mut self, data: &[u8], cluster_size: usize) -> Result<()> {
        for c in data.chunks(cluster_size.max(1)) {
            self.cluster(c)?;
        }
        Ok(())
    }

    /// Bytes of image produced so far (written or buffered).
    pub fn position(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Flushes what is buffered and returns the output stream (to sync and close it). Writes
    /// the trailer if one was asked for; any failure to write it is an error (see
    /// [`Writer::finish_with_trailer`] for the lenient form).
    pub fn finish(self) -> Result<W> {
        match self.finish_with_trailer()? {
            (Some(out), _) => Ok(out),
            (None, _) => Err(Error::BrokenPipe),
        }
    }

    /// Flushes the records, then writes the trailer (if asked for) in a separate write.
    /// A closed pipe (`EPIPE`) while writing only the trailer is [`TrailerWrite::ReaderGone`],
    /// not an error; the output is then returned as `None` (nothing more can go to it).
    pub fn finish_with_trailer(mut self) -> Result<(Option<W>, TrailerWrite)> {
        self.flush_buf()?;
        let Some(sums) = self.sums.take() else {
            return Ok((Some(self.out), TrailerWrite::None));
        };
        let bytes = sums.finish()?;
        match self.out.write_all(&bytes) {
            Ok(()) => {
                self.flushed += bytes.len() as u64;
                Ok((Some(self.out), TrailerWrite::Written(bytes.len())))
            }
            Err(Error::BrokenPipe) => Ok((None, TrailerWrite::ReaderGone)),
            Err(e) => Err(e),
        }
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
    use crate::dev::mem::MemDev;

    #[test]
    fn records_and_small_buffer() {
        let h = Header::new(512, 4 * 512 + 100, 4, 2);
        let mut w = Writer::new(MemDev::default(), &h, 0).unwrap();
        w.cluster(&[0xAA; 512]).unwrap();
        w.gap(2).unwrap();
        w.clusters(&[0xBB; 512 + 100], 512).unwrap();
        w.gap(-5).unwrap();
        assert_eq!(w.position(), 56 + 513 + 9 + 513 + 101 + 9);
        let out = w.finish().unwrap().data;
        assert_eq!(out.len(), 56 + 513 + 9 + 513 + 101 + 9);
        assert_eq!(&out[..56], &h.to_bytes());
        assert_eq!(out[56], 1);
        assert_eq!(&out[569..578], &[0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out[578], 1);
        assert_eq!(out[1091], 1);
        assert_eq!(out[1092..1192], [0xBB; 100]);
        assert_eq!(
            &out[1192..],
            &[0, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    /// A pipe whose reader goes away after `left` writes.
    struct ClosingPipe {
        left: usize,
        got: Vec<u8>,
    }

    impl WriteStream for ClosingPipe {
        fn write_all(&mut self, buf: &[u8]) -> Result<()> {
            if self.left == 0 {
                return Err(Error::BrokenPipe);
            }
            self.left -= 1;
            self.got.extend_from_slice(buf);
            Ok(())
        }
    }

    #[test]
    fn closed_pipe_loses_only_the_trailer() {
        let h = Header::new(512, 3 * 512, 2, 2);
        let fill = |w: &mut Writer<ClosingPipe>| {
            for _ in 0..3 {
                w.cluster(&[7; 512]).unwrap();
            }
        };
        // Records in one write, then the reader is gone: not an error.
        let mut w = Writer::new(
            ClosingPipe {
                left: 1,
                got: Vec::new(),
            },
            &h,
            1 << 16,
        )
        .unwrap()
        .with_trailer(&h);
        fill(&mut w);
        let (out, t) = w.finish_with_trailer().unwrap();
        assert!(out.is_none());
        assert_eq!(t, TrailerWrite::ReaderGone);
        // The reader gone before the last record: an error.
        let mut w = Writer::new(
            ClosingPipe {
                left: 0,
                got: Vec::new(),
            },
            &h,
            1 << 16,
        )
        .unwrap()
        .with_trailer(&h);
        fill(&mut w);
        assert!(matches!(w.finish_with_trailer(), Err(Error::BrokenPipe)));
        // Everything delivered: records, then the trailer in its own write.
        let mut w = Writer::new(
            ClosingPipe {
                left: 2,
                got: Vec::new(),
            },
            &h,
            1 << 16,
        )
        .unwrap()
        .with_trailer(&h);
        fill(&mut w);
        let (out, t) = w.finish_with_trailer().unwrap();
        let got = out.unwrap().got;
        let TrailerWrite::Written(n) = t else {
            core::panic!("{t:?}")
        };
        assert_eq!(got.len(), 56 + 3 * 513 + n);
        let tr = super::trailer::Trailer::parse(&got[56 + 3 * 513..]).unwrap();
        assert_eq!(tr.data_len, 56 + 3 * 513);
        // Without a trailer the stream is the records alone.
        let mut w = Writer::new(
            ClosingPipe {
                left: 1,
                got: Vec::new(),
            },
            &h,
            1 << 16,
        )
        .unwrap();
        fill(&mut w);
        assert_eq!(w.finish().unwrap().got.len(), 56 + 3 * 513);
    }
}
