//! Restore input from a seekable image with a trailer, checked by a second thread ahead of the
//! restore.
//!
//! Same guarantee as [`Prechecked`](crate::image::trailer::Prechecked): no byte of a chunk is
//! handed to the image reader before the whole chunk matched its CRC32, so a damaged image stops
//! at the first bad chunk and nothing from it is written. The difference is where the checking
//! read happens: a verifier thread reads each chunk (positioned reads into one fixed 1 MiB
//! buffer) while the restoring thread reads and writes the chunks before it. On two cores the
//! check then costs almost nothing in wall time, and its read warms the page cache for the
//! stream read that follows (a cold image is read from the disk once, ahead of the restore).
//!
//! The verifier stays at most [`lead_bytes`] ahead of the stream, so that it does not push the
//! chunks it checked out of the page cache before the restore reads them. Memory: the 1 MiB
//! buffer and a thread, whatever the chunk size.
use crate::dev::{ReadAt, ReadStream};
use crate::error::{Error, Result};
use crate::image::trailer::{Mismatch, Trailer};
use std::prelude::v1::*;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The verifier's read buffer.
const CHECK_BUF_BYTES: usize = 1 << 20;

/// How far (in stream bytes) the verifier may start a chunk ahead of the stream position:
/// one chunk (it checks the next chunk while this one is restored), and at least 4 MiB so that
/// 1 MiB chunks do not cut the stream reads short. Measured on tmpfs: a lead of 4 MiB chunks is
/// ~5 % faster than 16–32 MiB (the restore reads bytes the verifier just brought into the CPU
/// cache).
fn lead_bytes(chunk_size: u64) -> u64 {
    chunk_size.max(4 << 20)
}

/// What the two threads share.
struct State {
    /// Stream bytes `[0, verified)` matched their checksums.
    verified: u64,
    /// Stream bytes handed out (the verifier's throttle).
    consumer: u64,
    /// The first damaged chunk.
    failed: Option<Mismatch>,
    /// A read error of the verifier.
    error: Option<Error>,
    /// The stream side is gone: the verifier stops.
    stop: bool,
    /// The verifier thread has ended (however it ended).
    done: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic of the other thread leaves consistent numbers: go on with them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cond.wait(g).unwrap_or_else(|p| p.into_inner())
    }
}

/// The checked input: `input` is the image stream (positioned at stream byte 0), a verifier
/// thread checks the chunks through its own handle on the same file.
pub(super) struct CheckedAhead<R: ReadStream> {
    input: R,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    data_len: u64,
    /// Stream bytes handed out.
    pos: u64,
    /// Last `verified` seen (bytes below it are read without taking the lock).
    verified: u64,
    failed: Option<Mismatch>,
}

impl<R: ReadStream> CheckedAhead<R> {
    /// Starts the verifier thread on `aux` (the image, stream byte 0 at file offset `base`).
    /// Gives `aux` back if the thread cannot be started.
    pub(super) fn start<A: ReadAt + Send + 'static>(
        input: R,
        aux: A,
        trailer: Trailer,
        base: u64,
    ) -> core::result::Result<Self, (R, A)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                verified: 0,
                consumer: 0,
                failed: None,
                error: None,
                stop: false,
                done: false,
            }),
            cond: Condvar::new(),
        });
        let data_len = trailer.data_len;
        // The thread takes `aux` through this slot, so that a failed spawn can give it back.
        let slot = Arc::new(Mutex::new(Some(aux)));
        let (s, a) = (shared.clone(), slot.clone());
        let spawned = std::thread::Builder::new()
            .name("verify".into())
            .spawn(move || {
                // Marks the thread ended on every path, so that the stream side never waits
                // for a verifier that is gone.
                struct Done<'a>(&'a Shared);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.lock().done = true;
                        self.0.cond.notify_all();
                    }
                }
                let _done = Done(&s);
                let aux = a.lock().ok().and_then(|mut g| g.take());
                if let Some(aux) = aux {
                    verify(&s, &aux, &trailer, base);
                }
            });
        match spawned {
            Ok(worker) => Ok(CheckedAhead {
                input,
                shared,
                worker: Some(worker),
                data_len,
                pos: 0,
                verified: 0,
                failed: None,
            }),
            Err(_) => match slot.lock().ok().and_then(|mut g| g.take()) {
                Some(aux) => Err((input, aux)),
                None => core::unreachable!("the thread was not started"),
            },
        }
    }

    /// The first damaged chunk met, if any (the read that met it failed).
    pub(super) fn failed(&self) -> Option<Mismatch> {
        self.failed
    }

    /// Waits until the byte at `self.pos` is verified (or the verifier failed).
    fn wait_verified(&mut self) -> Result<()> {
        let mut g = self.shared.lock();
        g.consumer = self.pos;
        self.shared.cond.notify_all();
        loop {
            if g.verified > self.pos {
                self.verified = g.verified;
                return Ok(());
            }
            if let Some(m) = g.failed {
                self.failed = Some(m);
                let (start, end) = (m.start, m.end);
                return Err(Error::message(format_args!(
                    "image checksum mismatch in image bytes {start}..{end} \
                     (0x{start:x}..0x{end:x}): nothing from them was used"
                )));
            }
            if let Some(e) = g.error.take() {
                return Err(e);
            }
            if g.done {
                return Err(Error::message(format_args!(
                    "image checksum verification stopped before image byte {}",
                    self.pos
                )));
            }
            g = self.shared.wait(g);
        }
    }
}

/// The verifier thread: checks the chunks in order, publishing how far the stream is good.
fn verify<A: ReadAt>(shared: &Shared, aux: &A, t: &Trailer, base: u64) {
    let lead = lead_bytes(t.chunk_size);
    let mut buf = vec![0u8; CHECK_BUF_BYTES];
    for (i, &want) in t.crcs.iter().enumerate() {
        let (start, end) = t.chunk_range(i);
        {
            let mut g = shared.lock();
            while !g.stop && g.consumer.saturating_add(lead) < start {
                g = shared.wait(g);
            }
            if g.stop {
                return;
            }
        }
        match crc_of(aux, &mut buf, base, start, end) {
            Ok(got) if got == want => {
                shared.lock().verified = end;
                shared.cond.notify_all();
            }
            Ok(_) => {
                shared.lock().failed = Some(Mismatch { start, end });
                shared.cond.notify_all();
                return;
            }
            Err(e) => {
                shared.lock().error = Some(e);
                shared.cond.notify_all();
                return;
            }
        }
    }
}

/// CRC32 of stream bytes `[start, end)`, read at file offset `base + start`.
fn crc_of<A: ReadAt>(aux: &A, buf: &mut [u8], base: u64, start: u64, end: u64) -> Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut at = start;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        let off = base
            .checked_add(at)
            .ok_or_else(|| Error::corrupt(format_args!("image"), "offset out of range", at))?;
        let part = buf.get_mut(..n).unwrap_or_default();
        aux.read_exact_at(part, off)?;
        h.update(part);
        at += n as u64;
    }
    Ok(h.finalize())
}

impl<R: ReadStream> ReadStream for CheckedAhead<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.failed.is_some() {
            return Err(Error::Reported);
        }
        if self.pos >= self.data_len {
            // The trailer: read unchecked, like [`Prechecked`](crate::image::trailer::Prechecked).
            let n = self.input.read(buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.pos >= self.verified {
            self.wait_verified()?;
        } else {
            // Let the verifier move on (it waits when it is far enough ahead).
            self.shared.lock().consumer = self.pos;
            self.shared.cond.notify_all();
        }
        let room = (self.verified - self.pos).min(buf.len() as u64) as usize;
        let n = self.input.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: ReadStream> Drop for CheckedAhead<R> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cond.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::mem::MemDev;
    use crate::image::trailer::{Builder, MIN_CHUNK_SIZE};

    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
    }

    /// Reads everything it hands out, in pieces of `piece` bytes.
    fn drain(c: &mut CheckedAhead<MemDev>, piece: usize) -> (Vec<u8>, Result<()>) {
        let mut got = Vec::new();
        let mut buf = vec![0u8; piece];
        loop {
            match c.read(&mut buf) {
                Ok(0) => return (got, Ok(())),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, Err(e)),
            }
        }
    }

    /// A stream of `len` bytes in 1 MiB chunks, its trailer appended.
    fn image(len: usize) -> (Vec<u8>, Trailer) {
        let data = stream(len);
        let mut b = Builder::new(MIN_CHUNK_SIZE);
        b.update(&data);
        let t = b.finish().unwrap();
        let mut img = data;
        img.extend_from_slice(&t);
        (img, Trailer::parse(&t).unwrap())
    }

    fn open(img: &[u8], t: &Trailer, skip: usize) -> CheckedAhead<MemDev> {
        let mut input = MemDev::new(img.to_vec());
        let mut s = vec![0u8; skip];
        input.read_full(&mut s).unwrap();
        let base = skip as u64;
        let ok = CheckedAhead::start(input, MemDev::new(img.to_vec()), t.clone(), base);
        ok.unwrap_or_else(|_| core::panic!("no thread"))
    }

    #[test]
    fn hands_out_a_good_stream_whole() {
        let (img, t) = image(40 * 1024 * 1024 + 4321);
        for piece in [4096, 4 << 20, 5 << 20] {
            let mut c = open(&img, &t, 0);
            let (got, r) = drain(&mut c, piece);
            assert!(r.is_ok());
            assert_eq!(got, img);
            assert_eq!(c.failed(), None);
        }
    }

    #[test]
    fn stops_before_a_damaged_chunk() {
        let (img, t) = image(30 * 1024 * 1024 + 5);
        // The stream starts at a file offset (the image after a header read elsewhere).
        let mut with_prefix = vec![0xAAu8; 100];
        with_prefix.extend_from_slice(&img);
        for (chunk, at) in [(0u64, 3usize), (2, (2 << 20) + 77), (19, (19 << 20) + 1)] {
            let mut d = with_prefix.clone();
            d[100 + at] ^= 0x20;
            let mut c = open(&d, &t, 100);
            let (got, r) = drain(&mut c, 3 << 20);
            assert!(matches!(r, Err(Error::Message(_))), "{r:?}");
            let m = c.failed().unwrap();
            assert_eq!((m.start, m.end), (chunk << 20, (chunk + 1) << 20));
            // Every byte before the damaged chunk, none of it.
            assert_eq!(got.len() as u64, m.start);
            assert_eq!(got, img[..got.len()]);
            assert!(matches!(c.read(&mut [0u8; 10]), Err(Error::Reported)));
        }
    }

    #[test]
    fn dropped_early_stops_the_verifier() {
        let (img, t) = image(64 << 20);
        let mut c = open(&img, &t, 0);
        let mut buf = [0u8; 1000];
        assert_eq!(c.read(&mut buf).unwrap(), 1000);
        drop(c);
    }
}
