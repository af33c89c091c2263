//! The output stream of `-s` and `-m -s`: the image file or pipe itself, or with `--zstd` a
//! seekable zstd stream written into it (see [`crate::zstd`]).
use crate::dev::fd::Fd;
use crate::dev::WriteStream;
use crate::error::Result;
use crate::options::Options;
use crate::zstd::{threads_or_default, Compressor};
use std::prelude::v1::*;

/// Where image bytes go.
pub enum ImageOut {
    /// Uncompressed.
    Plain(Fd),
    /// Compressed on worker threads.
    Zstd(Box<Compressor<Fd>>),
}

impl ImageOut {
    /// `fd` itself, or a compressor into it when the options ask for `--zstd`.
    pub fn new(fd: Fd, opts: &Options) -> Result<Self> {
        Ok(match opts.zstd {
            None => ImageOut::Plain(fd),
            Some(level) => ImageOut::Zstd(Box::new(Compressor::new(
                fd,
                level,
                threads_or_default(opts.threads),
            )?)),
        })
    }

    /// Ends the stream (the last frames and the seek table) and returns the file.
    pub fn finish(self) -> Result<Fd> {
        match self {
            ImageOut::Plain(fd) => Ok(fd),
            ImageOut::Zstd(c) => c.finish(),
        }
    }
}

impl WriteStream for ImageOut {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        match self {
            ImageOut::Plain(fd) => fd.write_all(buf),
            ImageOut::Zstd(c) => c.write_all(buf),
        }
    }
}
