//! A restore input that may be zstd-compressed, recognised by the magic number at its start
//! (a zstd frame or a skippable frame), so that no option is needed: file, pipe or stdin.
//! Its first image bytes (decompressed when it is zstd) are read when it is opened, so that
//! what the image is (an ntfsclone image or a disk image) can be told from a stream that can
//! only be read once; reading starts with them.
use super::frame::{is_zstd_start, FrameIndex, SeekTable};
use super::reader::{Decompressor, FrameSource, Prefixed, MAX_FRAME_BYTES};
use crate::dev::{ReadAt, ReadStream};
use crate::error::Result;
use std::prelude::v1::*;

/// The image stream: as read, or decompressed.
pub enum MaybeZstd<R: ReadStream> {
    /// Not zstd: the bytes as they are.
    Plain(Prefixed<R>),
    /// A zstd stream, decompressed on worker threads (its first image bytes already
    /// decompressed).
    Zstd(Box<Prefixed<Decompressor<Prefixed<R>>>>),
}

impl<R: ReadStream> MaybeZstd<R> {
    /// Looks at the first bytes of `input`. A zstd stream is decompressed on `threads`
    /// threads, its frames checked against `index` when given (see [`file_index`]), and its
    /// first [`HEAD_BYTES`](super::reader::HEAD_BYTES) image bytes are decompressed now (a
    /// damaged first frame is an error here).
    pub fn open(input: R, threads: usize, index: Option<FrameIndex>) -> Result<Self> {
        Self::open_file(input, threads, index.map(|i| (i, None)))
    }

    /// [`MaybeZstd::open`] of a file whose seek table `index` was read (and checked) first;
    /// with `src`, the whole file, the workers read its frames themselves (see
    /// [`Decompressor::read_frames_at`]).
    pub fn open_file(
        input: R,
        threads: usize,
        index: Option<(FrameIndex, Option<FrameSource>)>,
    ) -> Result<Self> {
        let p = Prefixed::new(input)?;
        if !is_zstd_start(p.head()) {
            return Ok(MaybeZstd::Plain(p));
        }
        let mut d = Decompressor::new(p, &[], threads)?;
        if let Some((i, src)) = index {
            d = d.with_index(i);
            if let Some(src) = src {
                d = d.read_frames_at(src);
            }
        }
        Ok(MaybeZstd::Zstd(Box::new(Prefixed::new(d)?)))
    }

    /// The first image bytes (decompressed when the input is zstd):
    /// [`HEAD_BYTES`](super::reader::HEAD_BYTES) of them, fewer only when the image is shorter.
    /// Reading the stream starts with them.
    pub fn head(&self) -> &[u8] {
        match self {
            MaybeZstd::Plain(p) => p.head(),
            MaybeZstd::Zstd(d) => d.head(),
        }
    }

    /// Whether the input is zstd.
    pub fn is_zstd(&self) -> bool {
        matches!(self, MaybeZstd::Zstd(_))
    }
}

impl<R: ReadStream> ReadStream for MaybeZstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self {
            MaybeZstd::Plain(p) => p.read(buf),
            MaybeZstd::Zstd(d) => d.read(buf),
        }
    }

    fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match self {
            MaybeZstd::Plain(_) => Ok(None),
            MaybeZstd::Zstd(d) => d.swap_buffer(buf),
        }
    }
}

/// Whether the bytes at `offset` of `dev` start a zstd stream.
pub fn starts_zstd<D: ReadAt>(dev: &D, offset: u64) -> Result<bool> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        let Some(rest) = head.get_mut(n..) else { break };
        let k = dev.read_at(rest, offset + n as u64)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n == head.len() && is_zstd_start(&head))
}

/// The seek table of a zstd file of `len` bytes (the stream starting at offset 0), checked:
/// `Ok(None)` when it has none (a plain zstd stream), an error when it is damaged.
pub fn file_index<D: ReadAt>(dev: &D, len: u64) -> Result<Option<FrameIndex>> {
    let max = u32::try_from(MAX_FRAME_BYTES).unwrap_or(u32::MAX);
    Ok(SeekTable::read(dev, len, max)?.map(|(_, index)| index))
}
