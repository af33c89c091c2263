//! The MFT scan window: small reads (MFT records, pieces of $Bitmap) served from one large
//! positioned read.
use crate::dev::ReadAt;
use crate::error::Result;
use std::prelude::v1::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{errno, Error};

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
}
