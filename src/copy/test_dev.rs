//! Devices and helpers shared by the copy tests.
use crate::dev::mem::MemDev;
use crate::dev::{ReadAt, ReadVectoredAt};
use crate::error::{errno, Error, Result};
use crate::report::Report;
use std::prelude::v1::*;

/// A device whose bytes `bad.0..bad.1` fail with EIO.
pub(crate) struct Faulty {
    pub(crate) data: Vec<u8>,
    pub(crate) bad: (u64, u64),
}

impl ReadAt for Faulty {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let end = offset + buf.len() as u64;
        if offset < self.bad.1 && end > self.bad.0 {
            return Err(Error::os("read_all", errno::EIO));
        }
        MemDev::new(self.data.clone()).read_at(buf, offset)
    }
}

impl ReadVectoredAt for Faulty {}

/// A volume of `n` clusters of 512 bytes, cluster `i` filled with byte `i`.
pub(crate) fn volume(n: usize, tail: usize) -> MemDev {
    let mut d: Vec<u8> = (0..n).flat_map(|i| [i as u8; 512]).collect();
    d.extend(core::iter::repeat(0xEE).take(tail));
    MemDev::new(d)
}

/// A report that prints nothing.
pub(crate) fn quiet() -> Report {
    Report {
        msg_to_stderr: true,
        quiet: true,
    }
}
