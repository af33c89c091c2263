//! Devices: the small I/O traits that the NTFS and image code is written against.
//!
//! `ReadAt`/`WriteAt` are positioned (pread/pwrite-like) and take `&self`/`&mut self`;
//! `ReadStream`/`WriteStream` are sequential (pipes, stdin/stdout). The std implementations
//! (`fd`) are the only place that makes system calls; `mem` backs the unit tests.
use crate::error::{errno, Error, Result};
use std::prelude::v1::*;

pub mod mem;

#[cfg(feature = "std")]
pub mod fd;

#[cfg(feature = "std")]
pub mod vectored;

#[cfg(feature = "std")]
pub use vectored::{ReadVectoredAt, IOV_MAX};

/// Positioned reads.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at byte `offset`; returns the count (0 only at end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;

    /// Reads exactly `buf.len()` bytes at `offset`. A read past the end is `EIO`
    /// (the volume is shorter than it claims).
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(Error::os("read beyond the end of the device", errno::EIO));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// Positioned writes.
pub trait WriteAt {
    /// Writes up to `buf.len()` bytes at byte `offset`; returns the count.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<usize>;

    /// Writes all of `buf` at `offset`.
    fn write_all_at(&mut self, mut buf: &[u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write_at(buf, offset)?;
            if n == 0 {
                return Err(Error::os("write", errno::ENOSPC));
            }
            buf = &buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// Sequential reads (an image file or a pipe).
pub trait ReadStream {
    /// Reads up to `buf.len()` bytes; 0 means end of stream.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;

    /// Fills `buf` completely; returns how many bytes were read before the end of stream
    /// (less than `buf.len()` only at the end).
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read(&mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Zero-copy reading for a stream that holds its bytes in buffers of its own (a
    /// decompressor's frames): swaps `buf` (a buffer the caller is done with) for the
    /// stream's current buffer, whose bytes from the returned offset to its length are the
    /// stream's next bytes. `Ok(None)`: not possible now (nothing was swapped): use
    /// [`ReadStream::read`].
    fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let _ = buf;
        Ok(None)
    }
}

/// Sequential writes (an image file or a pipe).
pub trait WriteStream {
    /// Writes all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        (**self).read_at(buf, offset)
    }
}

impl<T: ReadStream + ?Sized> ReadStream for &mut T {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        (**self).read(buf)
    }

    fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        (**self).swap_buffer(buf)
    }
}

impl<T: WriteStream + ?Sized> WriteStream for &mut T {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        (**self).write_all(buf)
    }
}

impl<T: WriteAt + ?Sized> WriteAt for &mut T {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<usize> {
        (**self).write_at(buf, offset)
    }
}
