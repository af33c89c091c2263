//! Vectored I/O: reads into and writes from several buffers with one system call (`preadv`,
//! `pwritev`, `writev`), so that the copy loops make one call per many clusters.
use super::fd::Fd;
use super::mem::MemDev;
use super::ReadAt;
use crate::error::{errno, Error, Result};
use rustix::io::{IoSlice, IoSliceMut};

/// Most buffers one vectored system call takes (Linux `UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;

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

    /// Whether a prefetch thread (`copy::Prefetch`) pays for this device (the kernel reads ahead on
    /// [`ReadVectoredAt::will_need`]). Default: no.
    fn prefetches(&self) -> bool {
        false
    }

    /// The copy begins: each page read from here on is read once (a block device drops them
    /// behind the copy, see [`Fd::drop_behind_when_copying`]). Default: nothing.
    fn copy_begins(&self) {}
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

    fn copy_begins(&self) {
        Fd::copy_begins(self)
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

    fn copy_begins(&self) {
        (**self).copy_begins()
    }
}

impl ReadVectoredAt for MemDev {}

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
    use std::prelude::v1::*;

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
}
