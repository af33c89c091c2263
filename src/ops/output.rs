//! Opening the output the way the reference does (spec §2.5), and writing raw volume bytes to
//! it: positioned writes on files and devices (unused clusters stay holes or untouched), a
//! sequential zero-filled stream on stdout.
use crate::dev::fd::{Fd, Kind, MountState};
use crate::dev::{WriteAt, WriteStream};
use crate::error::{Error, Result};
use crate::report::Report;
use rustix::fs::OFlags;
use std::prelude::v1::*;

/// Bytes of zeros written per call when a stream needs a gap filled.
const ZERO_CHUNK: usize = 1 << 20;

/// Where raw volume bytes go.
pub struct RawOut {
    /// The descriptor.
    pub fd: Fd,
    /// File, block device, or stream (stdout).
    pub kind: Kind,
    /// For a stream: bytes written so far (the next byte offset).
    stream_pos: u64,
    zeros: Vec<u8>,
}

/// `ntfs_size` of the reference: the volume plus one 512-byte sector (the backup boot sector;
/// always 512, even with 4 KiB sectors).
pub fn ntfs_size(nr_clusters: u64, cluster_size: u32) -> u64 {
    nr_clusters
        .saturating_mul(u64::from(cluster_size))
        .saturating_add(512)
}

fn open_failed(path: &str, e: rustix::io::Errno) -> Error {
    Error::Os {
        what: crate::text!("Opening file '{path}' failed"),
        errno: e.raw_os_error(),
    }
}

impl RawOut {
    /// Opens the output of a raw clone or restore (`-o`/`-O`, `-` for stdout). `ntfs_size`
    /// is the size a block device must have.
    pub fn open(path: &str, overwrite: bool, ntfs_size: u64, report: Report) -> Result<RawOut> {
        let _ = report;
        if path == "-" {
            return Ok(RawOut::stream(Fd::stdout()));
        }
        let is_block =
            overwrite && crate::dev::fd::stat_kind(path).ok().flatten() == Some(Kind::Block);
        if is_block {
            let fd = Fd::open(path, OFlags::RDWR, 0)
                .map_err(|e| open_failed(path, e))?
                .drop_behind();
            let size = fd.size()?;
            if size < ntfs_size {
                return Err(Error::fatal(format_args!(
                    "Output device is too small ({size}) to fit the NTFS image ({ntfs_size}).\n"
                )));
            }
            match crate::dev::fd::mount_state(path) {
                Ok(state @ (MountState::ReadOnly | MountState::ReadWrite)) => {
                    let rw = if state == MountState::ReadOnly {
                        ""
                    } else {
                        " read-write"
                    };
                    return Err(Error::fatal(format_args!(
                        "Device '{path}' is mounted{rw}. You must 'umount' it first.\n"
                    )));
                }
                Ok(MountState::Unmounted) => {}
                Err(e) => {
                    return Err(Error::Os {
                        what: crate::text!("Failed to check '{path}' mount state"),
                        errno: e.raw_os_error(),
                    })
                }
            }
            return Ok(RawOut {
                fd,
                kind: Kind::Block,
                stream_pos: 0,
                zeros: Vec::new(),
            });
        }
        let mut flags = OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC;
        if !overwrite {
            flags |= OFlags::EXCL;
        }
        let fd = Fd::open(path, flags, 0o600).map_err(|e| open_failed(path, e))?;
        let kind = fd.kind()?;
        // Every named output but a block device is sized first, as the reference does: a
        // character device or FIFO (`-O /dev/null`, `-O fifo`) fails there with EINVAL.
        set_filesize(&fd, path, ntfs_size)?;
        Ok(RawOut {
            fd,
            kind,
            stream_pos: 0,
            zeros: Vec::new(),
        })
    }

    /// A sequential output (stdout).
    pub fn stream(fd: Fd) -> RawOut {
        RawOut {
            fd,
            kind: Kind::Stream,
            stream_pos: 0,
            zeros: vec![0u8; ZERO_CHUNK],
        }
    }

    /// True when unused clusters must be written as zeros (stdout).
    pub fn is_stream(&self) -> bool {
        self.kind == Kind::Stream
    }

    /// Writes `data` at byte `offset` of the volume. A stream is zero-filled up to `offset`
    /// first; it cannot go backwards.
    pub fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()> {
        if self.kind != Kind::Stream {
            return self.fd.write_all_at(data, offset);
        }
        self.fill_to(offset)?;
        self.fd.write_all(data)?;
        self.stream_pos += data.len() as u64;
        Ok(())
    }

    /// Writes `bufs` (consecutive volume bytes) at byte `offset` with one vectored write,
    /// like [`RawOut::write_at`].
    pub fn write_vectored_at(
        &mut self,
        bufs: &[rustix::io::IoSlice<'_>],
        offset: u64,
    ) -> Result<()> {
        if self.kind != Kind::Stream {
            return crate::copy::write_all_vectored_at(&self.fd, bufs, offset);
        }
        self.fill_to(offset)?;
        let fd = &self.fd;
        crate::copy::write_all_vectored(bufs, 0, |b, _| fd.writev(b))?;
        self.stream_pos += bufs.iter().map(|b| b.len() as u64).sum::<u64>();
        Ok(())
    }

    /// Zero-fills a stream up to byte `offset` (nothing for files and devices).
    pub fn fill_to(&mut self, offset: u64) -> Result<()> {
        if self.kind != Kind::Stream {
            return Ok(());
        }
        if offset < self.stream_pos {
            return Err(Error::message(format_args!(
                "cannot write backwards on standard output (at byte {offset}, already at {})",
                self.stream_pos
            )));
        }
        if self.zeros.is_empty() {
            self.zeros = vec![0u8; ZERO_CHUNK];
        }
        while self.stream_pos < offset {
            let n = (offset - self.stream_pos).min(self.zeros.len() as u64) as usize;
            self.fd.write_all(&self.zeros[..n])?;
            self.stream_pos += n as u64;
        }
        Ok(())
    }

    /// `Syncing ...` and fsync (EINVAL on pipes ignored).
    pub fn sync(&self, report: Report) -> Result<()> {
        report.out(format_args!("Syncing ...\n"));
        self.fd.sync()
    }
}

/// The reference's `set_filesize`: probe that the file system takes a file of the volume's
/// size (sparse), then truncate back to 0 if nothing was allocated.
fn set_filesize(fd: &Fd, path: &str, size: u64) -> Result<()> {
    let fstype = match fd.free_space() {
        Ok((_, t)) => Some(t),
        Err(e) => {
            Report::err(format_args!(
                "WARNING: Couldn't get filesystem type: {}\n",
                strerr(&e)
            ));
            None
        }
    };
    if let Err(e) = fd.truncate(size) {
        let errno = e.raw_os_error();
        let mut extra = crate::error::Text::new();
        if let Some(t) = fstype {
            let _ = core::fmt::Write::write_fmt(
                &mut extra,
                format_args!("Destination filesystem type is 0x{:x}.\n", t as u64 as u32),
            );
        }
        // Printed after the ERROR line by the reference; we print it before returning.
        let err = Error::Os {
            what: crate::text!("ftruncate failed for file '{path}'"),
            errno,
        };
        return Err(with_note(err, &extra));
    }
    if fd.blocks()? == 0 && fd.truncate(0).is_err() {
        Report::err(format_args!("Failed to reset the output file.\n"));
    }
    Ok(())
}

fn strerr(e: &Error) -> &'static str {
    crate::error::strerror(e.errno().unwrap_or(0))
}

/// The reference prints a note after some ERROR lines; we keep the error and drop the note
/// when it is empty (the note is informational).
fn with_note(err: Error, note: &str) -> Error {
    if !note.is_empty() {
        Report::err(format_args!("{note}"));
    }
    err
}

/// Opens the output of `-s`: stdout, or `fopen(path, "w")` (no O_EXCL: existence was checked).
pub fn open_image(path: &str) -> Result<(Fd, Kind)> {
    if path == "-" {
        return Ok((Fd::stdout(), Kind::Stream));
    }
    let fd = Fd::open(path, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC, 0o666)
        .map_err(|e| open_failed(path, e))?;
    let kind = fd.kind()?;
    Ok((fd, kind))
}

/// The reference's `check_dest_free_space` (regular files only); both sizes in MB rounded up,
/// as it prints them.
pub fn check_free_space(fd: &Fd, kind: Kind, needed: u64) -> Result<()> {
    if kind != Kind::File {
        return Ok(());
    }
    let (free, _) = fd.free_space()?;
    if free < needed {
        return Err(Error::fatal(format_args!(
            "Destination doesn't have enough free space: {} MB < {} MB\n",
            free.div_ceil(1_000_000),
            needed.div_ceil(1_000_000)
        )));
    }
    Ok(())
}
