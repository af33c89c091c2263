//! All-zero block detection: raw partitions are saved without their all-zero blocks.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

/// Block size of the zero test for raw partitions: their all-zero 4 KiB blocks are left out of
/// disk images.
pub const ZERO_BLOCK: usize = 4096;

/// True when every byte of `buf` is zero. Works 64 bytes at a time without a branch per byte
/// (the compiler vectorises the inner fold).
pub fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            acc |= u64::from_ne_bytes(a);
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

/// The runs of non-zero blocks in `buf`, as `(offset, length)` pairs in bytes, blocks of
/// `block` bytes (the last block may be short). Adjacent non-zero blocks make one run.
pub fn nonzero_runs(buf: &[u8], block: usize) -> NonZeroRuns<'_> {
    NonZeroRuns {
        buf,
        block: block.max(1),
        at: 0,
    }
}

/// Iterator returned by [`nonzero_runs`].
#[derive(Debug, Clone)]
pub struct NonZeroRuns<'a> {
    buf: &'a [u8],
    block: usize,
    at: usize,
}

impl NonZeroRuns<'_> {
    fn block_at(&self, at: usize) -> &[u8] {
        let end = at.saturating_add(self.block).min(self.buf.len());
        self.buf.get(at..end).unwrap_or(&[])
    }
}

impl Iterator for NonZeroRuns<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        while self.at < self.buf.len() && is_zero(self.block_at(self.at)) {
            self.at = self.at.saturating_add(self.block);
        }
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        while self.at < self.buf.len() && !is_zero(self.block_at(self.at)) {
            self.at = self.at.saturating_add(self.block);
        }
        let end = self.at.min(self.buf.len());
        Some((start, end - start))
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests {
    use super::*;
    use std::prelude::v1::*;

    #[test]
    fn zero_detection_every_position() {
        for len in [0usize, 1, 7, 63, 64, 65, 200, 4096] {
            let mut v = vec![0u8; len];
            assert!(is_zero(&v));
            for i in 0..len {
                v[i] = 0x20;
                assert!(!is_zero(&v), "len {len} byte {i}");
                v[i] = 0;
            }
        }
    }

    #[test]
    fn runs_of_nonzero_blocks() {
        let mut v = vec![0u8; 10 * 512 + 100];
        v[512 + 3] = 1;
        v[2 * 512] = 1;
        v[7 * 512 + 511] = 9;
        v[10 * 512 + 99] = 1;
        let runs: Vec<_> = nonzero_runs(&v, 512).collect();
        assert_eq!(runs, vec![(512, 1024), (7 * 512, 512), (10 * 512, 100)]);
        assert_eq!(nonzero_runs(&[0u8; 3000], 512).count(), 0);
        assert_eq!(nonzero_runs(&[], 512).count(), 0);
    }
}
