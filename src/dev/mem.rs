//! In-memory devices for unit tests and fuzzing.
use super::{ReadAt, ReadStream, WriteAt, WriteStream};
use crate::error::Result;
use std::prelude::v1::*;

/// A byte vector used as a device (positioned) or as a stream (sequential, from `pos`).
#[derive(Debug, Default, Clone)]
pub struct MemDev {
    /// The contents.
    pub data: Vec<u8>,
    /// Stream position for `ReadStream`.
    pub pos: usize,
}

impl MemDev {
    /// A device holding `data`.
    pub fn new(data: Vec<u8>) -> Self {
        MemDev { data, pos: 0 }
    }
}

impl ReadAt for MemDev {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let len = self.data.len() as u64;
        if offset >= len {
            return Ok(0);
        }
        let start = offset as usize;
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
}

impl WriteAt for MemDev {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<usize> {
        let end = offset as usize + buf.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset as usize..end].copy_from_slice(buf);
        Ok(buf.len())
    }
}

impl ReadStream for MemDev {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.read_at(buf, self.pos as u64)?;
        self.pos += n;
        Ok(n)
    }
}

impl WriteStream for MemDev {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
}
