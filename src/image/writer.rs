//! Writes an image: the header, then `CMD_GAP` / `CMD_NEXT` records, through one fixed buffer
//! so that the output sees a few large writes whatever the cluster size.
//!
//! Records are appended as the caller gives them; the caller decides gaps (the save mode
//! reproduces the reference's gap arithmetic exactly so that images are byte-identical).
//! [`Writer::finish`] must be called: it flushes the buffer and hands the stream back.
use super::header::Header;
use crate::dev::WriteStream;
use crate::error::Result;
use std::prelude::v1::*;

/// `CMD_GAP`: followed by a signed 64-bit little-endian cluster count.
pub const CMD_GAP: u8 = 0;
/// `CMD_NEXT`: followed by the bytes of one cluster.
pub const CMD_NEXT: u8 = 1;

/// An image being written.
pub struct Writer<W: WriteStream> {
    out: W,
    buf: Vec<u8>,
    /// Bytes handed to `out` so far.
    flushed: u64,
}

impl<W: WriteStream> Writer<W> {
    /// Starts an image on `out` with `header`; `buf_bytes` is the size of the write buffer
    /// (allocated once here; raised to hold at least one record of a cluster).
    pub fn new(out: W, header: &Header, buf_bytes: usize) -> Result<Self> {
        let cap = buf_bytes.max(header.cluster_size as usize + 9).max(64);
        let mut buf = Vec::with_capacity(cap);
        buf.extend_from_slice(&header.to_bytes());
        Ok(Writer {
            out,
            buf,
            flushed: 0,
        })
    }

    fn room(&mut self, n: usize) -> Result<()> {
        if self.buf.capacity() - self.buf.len() < n {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends `CMD_GAP count` (count may be negative: metadata and rescue streams rewind).
    pub fn gap(&mut self, count: i64) -> Result<()> {
        self.room(9)?;
        self.buf.push(CMD_GAP);
        self.buf.extend_from_slice(&count.to_le_bytes());
        Ok(())
    }

    /// Appends one `CMD_NEXT` record holding `data` (one cluster, or the partial last one).
    pub fn cluster(&mut self, data: &[u8]) -> Result<()> {
        if data.len() + 1 > self.buf.capacity() {
            // Larger than the buffer: cannot happen with the sizes `new` chooses, but stays correct.
            self.flush_buf()?;
            self.out.write_all(&[CMD_NEXT])?;
            self.out.write_all(data)?;
            self.flushed += 1 + data.len() as u64;
            return Ok(());
        }
        self.room(1 + data.len())?;
        self.buf.push(CMD_NEXT);
        self.buf.extend_from_slice(data);
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

    /// Flushes what is buffered and returns the output stream (to sync and close it).
    pub fn finish(mut self) -> Result<W> {
        self.flush_buf()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
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
}
