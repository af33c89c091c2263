//! File descriptors: the only module that makes system calls (through rustix).
//!
//! Every call retries `EINTR`. Errors keep the errno so that messages match the reference's
//! `ERROR(errno): ...` lines.
use super::{ReadAt, ReadStream, WriteAt, WriteStream};
use crate::error::{errno, Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::prelude::v1::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Converts a rustix error into ours, naming the operation.
pub fn os_err(what: &str, e: Errno) -> Error {
    if e == Errno::PIPE {
        return Error::BrokenPipe;
    }
    Error::os(what, e.raw_os_error())
}

/// Retries `f` while it fails with EINTR.
fn retry<T>(
    mut f: impl FnMut() -> core::result::Result<T, Errno>,
) -> core::result::Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// What kind of object a descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A block device.
    Block,
    /// A pipe, socket, terminal or character device (not seekable, or not meaningfully).
    Stream,
}

/// An open file, device, or standard stream.
#[derive(Debug)]
pub struct Fd {
    raw: Raw,
    /// A window of a file or device (a partition of a whole disk): byte 0 is byte `base` of
    /// the descriptor, and nothing at or past `len` is read or written.
    window: Option<Window>,
    /// Streaming writeback of a block device target (see [`Fd::drop_behind`]); shared by
    /// the windows of one disk.
    behind: Option<Arc<DropBehind>>,
}

#[derive(Debug)]
enum Raw {
    /// A descriptor we opened and close on drop.
    Owned(OwnedFd),
    /// Standard input (0) or output (1).
    Std(i32),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    base: u64,
    len: u64,
}

/// Bytes read or written on a block device between two drop-behind steps.
const DROP_BEHIND_STEP: u64 = 32 << 20;

/// Streaming writeback for a block device target, and drop-behind for a source. Every
/// [`DROP_BEHIND_STEP`] bytes moved, the kernel is told to start writing back the range just
/// written and to drop the range moved a step before (clean by then): `POSIX_FADV_DONTNEED`
/// does both, as `dd iflag=nocache oflag=nocache` does. A whole-disk restore then holds a few steps of page cache instead of
/// the whole disk's: on a rescue system running from RAM this keeps memory free, and the
/// pages are reused while they are still hot instead of new ones being taken (measured on a
/// VM whose host reclaims freed guest memory: a 1.8 GB disk restore onto a loop device went
/// from 6 to 18 s of system time down to under 2 s).
#[derive(Debug)]
struct DropBehind {
    /// A duplicate of the device's descriptor: the last steps are dropped when the last
    /// window using it closes.
    fd: OwnedFd,
    /// Off while a source's metadata is read (scans read some pages twice); on for the copy.
    armed: AtomicBool,
    state: Mutex<BehindState>,
}

#[derive(Debug, Default)]
struct BehindState {
    /// Extent of the moves since the last step (descriptor offsets).
    lo: u64,
    hi: u64,
    pending: u64,
    /// The extent of the step before, dropped at the next step.
    prev: Option<(u64, u64)>,
}

/// `POSIX_FADV_DONTNEED` over `[lo, hi)`: starts the writeback of its dirty pages and drops
/// its clean ones. Advisory: an error only means the pages stay cached.
fn dont_need(fd: BorrowedFd<'_>, lo: u64, hi: u64) {
    let _ = rustix::fs::fadvise(
        fd,
        lo,
        core::num::NonZeroU64::new(hi.saturating_sub(lo)),
        rustix::fs::Advice::DontNeed,
    );
}

impl DropBehind {
    fn moved(&self, offset: u64, n: usize) {
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        let end = offset.saturating_add(n as u64);
        if s.pending == 0 {
            (s.lo, s.hi) = (offset, end);
        } else {
            s.lo = s.lo.min(offset);
            s.hi = s.hi.max(end);
        }
        s.pending = s.pending.saturating_add(n as u64);
        if s.pending < DROP_BEHIND_STEP {
            return;
        }
        let now = (s.lo, s.hi);
        for (lo, hi) in s.prev.into_iter().chain(Some(now)) {
            dont_need(self.fd.as_fd(), lo, hi);
        }
        s.prev = Some(now);
        s.pending = 0;
    }
}

impl Drop for DropBehind {
    /// The copy is over (a target was synced first): drops the last two steps' pages.
    fn drop(&mut self) {
        let Ok(s) = self.state.get_mut() else { return };
        let now = (s.pending > 0).then_some((s.lo, s.hi));
        for (lo, hi) in s.prev.take().into_iter().chain(now) {
            dont_need(self.fd.as_fd(), lo, hi);
        }
    }
}

/// `BLKRRPART` (`_IO(0x12, 95)`, linux/fs.h): re-read a block device's partition table.
const BLKRRPART: rustix::ioctl::Opcode = 0x125f;

impl Fd {
    /// Asks the kernel to re-read the partition table of a block device (`BLKRRPART`), so
    /// that the partitions of a restored disk appear without a reboot.
    #[allow(unsafe_code)]
    pub fn reread_partition_table(&self) -> Result<()> {
        // SAFETY: BLKRRPART takes no argument: the kernel reads nothing from and writes
        // nothing to our memory; the descriptor is open for the whole call.
        unsafe { rustix::ioctl::ioctl(self.bfd(), rustix::ioctl::NoArg::<BLKRRPART>::new()) }
            .map_err(|e| os_err("BLKRRPART", e))
    }

    /// Standard input.
    pub fn stdin() -> Fd {
        Fd::from_raw(Raw::Std(0))
    }
    /// Standard output.
    pub fn stdout() -> Fd {
        Fd::from_raw(Raw::Std(1))
    }

    fn from_raw(raw: Raw) -> Fd {
        Fd {
            raw,
            window: None,
            behind: None,
        }
    }

    fn owned(fd: OwnedFd) -> Fd {
        Fd::from_raw(Raw::Owned(fd))
    }

    fn bfd(&self) -> BorrowedFd<'_> {
        match &self.raw {
            Raw::Owned(o) => o.as_fd(),
            Raw::Std(0) => rustix::stdio::stdin(),
            Raw::Std(_) => rustix::stdio::stdout(),
        }
    }

    /// A second descriptor of the same open file (`dup`), for positioned reads from
    /// another thread.
    pub fn duplicate(&self) -> Result<Fd> {
        let fd = rustix::io::fcntl_dupfd_cloexec(self.bfd(), 0).map_err(|e| os_err("dup", e))?;
        Ok(Fd {
            raw: Raw::Owned(fd),
            window: self.window,
            behind: None,
        })
    }

    /// The window `[base, base + len)` of this descriptor, as a descriptor of its own.
    pub fn window(&self, base: u64, len: u64) -> Result<Fd> {
        let fd = rustix::io::fcntl_dupfd_cloexec(self.bfd(), 0).map_err(|e| os_err("dup", e))?;
        let (b0, _) = self.base_len();
        Ok(Fd {
            raw: Raw::Owned(fd),
            window: Some(Window {
                base: b0.saturating_add(base),
                len,
            }),
            behind: self.behind.clone(),
        })
    }

    /// Turns on streaming writeback (see [`DropBehind`]) when this is a block device: the
    /// target of a restore or clone. Files and streams are left as they are.
    pub fn drop_behind(self) -> Fd {
        let fd = self.drop_behind_when_copying();
        fd.copy_begins();
        fd
    }

    /// Like [`Fd::drop_behind`] for a source block device, but only from
    /// [`Fd::copy_begins`] on: the pages its metadata scans read stay cached for the copy.
    pub fn drop_behind_when_copying(mut self) -> Fd {
        if self.behind.is_none() && matches!(self.kind(), Ok(Kind::Block)) {
            if let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(self.bfd(), 0) {
                self.behind = Some(Arc::new(DropBehind {
                    fd,
                    armed: AtomicBool::new(false),
                    state: Mutex::default(),
                }));
            }
        }
        self
    }

    /// The copy begins: every page read or written from now on is used once, and is dropped
    /// behind the copy (when [`Fd::drop_behind_when_copying`] turned it on).
    pub fn copy_begins(&self) {
        if let Some(b) = &self.behind {
            b.armed.store(true, Ordering::Relaxed);
        }
    }

    /// Notes `n` bytes read or written at descriptor offset `offset` (drop-behind
    /// bookkeeping).
    fn moved(&self, offset: u64, n: usize) {
        if let Some(b) = &self.behind {
            b.moved(offset, n);
        }
    }

    /// Base offset and length limit of positioned I/O (0 and unlimited outside a window).
    fn base_len(&self) -> (u64, u64) {
        match self.window {
            Some(w) => (w.base, w.len),
            None => (0, u64::MAX),
        }
    }

    /// `n` clipped to what the window has left at `offset`, and the descriptor offset.
    fn clip(&self, offset: u64, n: usize) -> (usize, u64) {
        let (base, len) = self.base_len();
        let room = len.saturating_sub(offset);
        (
            usize::try_from(room).map_or(n, |r| r.min(n)),
            base.saturating_add(offset),
        )
    }

    /// The logical sector size of a block device (`BLKSSZGET`).
    pub fn logical_sector_size(&self) -> Result<u32> {
        rustix::fs::ioctl_blksszget(self.bfd()).map_err(|e| os_err("BLKSSZGET", e))
    }

    /// Opens `path` read-only.
    pub fn open_read(path: &str) -> core::result::Result<Fd, Errno> {
        retry(|| rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()))
            .map(Fd::owned)
    }

    /// Opens with explicit flags and mode.
    pub fn open(path: &str, flags: OFlags, mode: u32) -> core::result::Result<Fd, Errno> {
        retry(|| rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::from_raw_mode(mode)))
            .map(Fd::owned)
    }

    /// What this descriptor is.
    pub fn kind(&self) -> Result<Kind> {
        let st = rustix::fs::fstat(self.bfd()).map_err(|e| os_err("fstat", e))?;
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::BlockDevice => Kind::Block,
            _ => Kind::Stream,
        })
    }

    /// Allocated 512-byte blocks (st_blocks).
    pub fn blocks(&self) -> Result<u64> {
        let st = rustix::fs::fstat(self.bfd()).map_err(|e| os_err("fstat", e))?;
        Ok(st.st_blocks as u64)
    }

    /// Size in bytes: file length, or block device size (lseek to the end works for both).
    pub fn size(&self) -> Result<u64> {
        if let Some(w) = self.window {
            return Ok(w.len);
        }
        rustix::fs::seek(self.bfd(), rustix::fs::SeekFrom::End(0)).map_err(|e| os_err("lseek", e))
    }

    /// Length in bytes from fstat (st_size); unlike [`Fd::size`] the file offset stays.
    pub fn stat_len(&self) -> Result<u64> {
        let st = rustix::fs::fstat(self.bfd()).map_err(|e| os_err("fstat", e))?;
        Ok(u64::try_from(st.st_size).unwrap_or(0))
    }

    /// Current offset (`tellin` of the reference), or None on a pipe.
    pub fn tell(&self) -> Option<u64> {
        rustix::fs::seek(self.bfd(), rustix::fs::SeekFrom::Current(0)).ok()
    }

    /// Sets the file length.
    pub fn truncate(&self, len: u64) -> core::result::Result<(), Errno> {
        retry(|| rustix::fs::ftruncate(self.bfd(), len))
    }

    /// fsync; EINVAL (pipes, terminals) is ignored like the reference does.
    pub fn sync(&self) -> Result<()> {
        match retry(|| rustix::fs::fsync(self.bfd())) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::ROFS) => Ok(()),
            Err(e) => Err(os_err("fsync failed", e)),
        }
    }

    /// Free bytes on the file system holding this file, and its type magic.
    pub fn free_space(&self) -> Result<(u64, i64)> {
        let s = rustix::fs::fstatfs(self.bfd()).map_err(|e| os_err("fstatfs", e))?;
        let unit = if s.f_frsize > 0 {
            s.f_frsize as u64
        } else {
            s.f_bsize as u64
        };
        Ok((unit.saturating_mul(s.f_bfree as u64), s.f_type as i64))
    }

    /// In-kernel copy of `len` bytes from `self` at `off_in` to `out` at `off_out`.
    /// Returns bytes copied (may be short; 0 means fall back to read/write).
    pub fn copy_range(
        &self,
        off_in: u64,
        out: &Fd,
        off_out: u64,
        len: usize,
    ) -> core::result::Result<usize, Errno> {
        let (len, mut i) = self.clip(off_in, len);
        let (len, mut o) = out.clip(off_out, len);
        if len == 0 {
            return Ok(0);
        }
        let (from, at) = (i, o);
        let n = retry(|| {
            rustix::fs::copy_file_range(self.bfd(), Some(&mut i), out.bfd(), Some(&mut o), len)
        })?;
        self.moved(from, n);
        out.moved(at, n);
        Ok(n)
    }
}

/// Vectored and in-kernel I/O for the copy loops: one system call moves many clusters.
impl Fd {
    /// `preadv`: reads into `bufs` in order, starting at byte `offset`. May return less than
    /// asked (end of file, or a short read); 0 only at the end.
    pub fn preadv(&self, bufs: &mut [rustix::io::IoSliceMut<'_>], offset: u64) -> Result<usize> {
        if self.window.is_some() {
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            if self.clip(offset, total).0 < total {
                // The end of the window: one buffer at a time, clipped.
                return match bufs.iter_mut().find(|b| !b.is_empty()) {
                    Some(b) => self.read_at(b, offset),
                    None => Ok(0),
                };
            }
        }
        let offset = self.clip(offset, 0).1;
        let n = retry(|| rustix::io::preadv(self.bfd(), &mut *bufs, offset))
            .map_err(|e| os_err("read_all", e))?;
        self.moved(offset, n);
        Ok(n)
    }

    /// `pwritev`: writes `bufs` in order at byte `offset`. May write less than asked.
    pub fn pwritev(&self, bufs: &[rustix::io::IoSlice<'_>], offset: u64) -> Result<usize> {
        if self.window.is_some() {
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            if self.clip(offset, total).0 < total {
                return Err(Error::os("write_all", errno::ENOSPC));
            }
        }
        let offset = self.clip(offset, 0).1;
        let n = retry(|| rustix::io::pwritev(self.bfd(), bufs, offset))
            .map_err(|e| os_err("write_all", e))?;
        self.moved(offset, n);
        Ok(n)
    }

    /// `writev` at the current position (a stream). May write less than asked.
    pub fn writev(&self, bufs: &[rustix::io::IoSlice<'_>]) -> Result<usize> {
        retry(|| rustix::io::writev(self.bfd(), bufs)).map_err(|e| os_err("write_all", e))
    }

    /// Tells the kernel that `len` bytes at `offset` will be read soon (readahead for the
    /// next chunk of a cold volume). Advisory: errors are ignored.
    pub fn will_need(&self, offset: u64, len: u64) {
        let offset = self.clip(offset, 0).1;
        let _ = rustix::fs::fadvise(
            self.bfd(),
            offset,
            core::num::NonZeroU64::new(len),
            rustix::fs::Advice::WillNeed,
        );
    }
}

impl ReadAt for Fd {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let (n, offset) = self.clip(offset, buf.len());
        let buf = &mut buf[..n];
        if n == 0 {
            return Ok(0);
        }
        let n = retry(|| rustix::io::pread(self.bfd(), &mut *buf, offset))
            .map_err(|e| os_err("read_all", e))?;
        self.moved(offset, n);
        Ok(n)
    }
}

impl WriteAt for Fd {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<usize> {
        let (n, offset) = self.clip(offset, buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(Error::os("write_all", errno::ENOSPC));
        }
        let buf = &buf[..n];
        let n = retry(|| rustix::io::pwrite(self.bfd(), buf, offset))
            .map_err(|e| os_err("write_all", e))?;
        self.moved(offset, n);
        Ok(n)
    }
}

impl ReadStream for Fd {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        retry(|| rustix::io::read(self.bfd(), &mut *buf)).map_err(|e| os_err("read_all", e))
    }
}

impl WriteStream for Fd {
    fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            let n =
                retry(|| rustix::io::write(self.bfd(), buf)).map_err(|e| os_err("write_all", e))?;
            if n == 0 {
                return Err(Error::os("write_all", errno::ENOSPC));
            }
            buf = &buf[n..];
        }
        Ok(())
    }
}

/// `stat(path)` (follows symlinks, like the reference's check of the output path):
/// `Ok(None)` when nothing exists there (ENOENT), otherwise what it is.
pub fn stat_kind(path: &str) -> core::result::Result<Option<Kind>, Errno> {
    match rustix::fs::stat(path) {
        Ok(st) => Ok(Some(match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::BlockDevice => Kind::Block,
            _ => Kind::Stream,
        })),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether and how the file system on a device or file is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountState {
    /// No mount entry names it.
    Unmounted,
    /// Mounted read-only (`ro` among the mount options).
    ReadOnly,
    /// Mounted read-write.
    ReadWrite,
}

/// Mount state of the file system on `path` (the reference's `ntfs_check_if_mounted`). A
/// mount entry matches when it names the same file (after resolving links) or the same block
/// device.
pub fn mount_state(path: &str) -> core::result::Result<MountState, Errno> {
    let st = rustix::fs::stat(path)?;
    let is_blk = FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice;
    let real =
        std::fs::canonicalize(path).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    let mounts = match std::fs::read_to_string("/proc/mounts") {
        Ok(s) => s,
        Err(_) => std::fs::read_to_string("/etc/mtab").unwrap_or_default(),
    };
    for line in mounts.lines() {
        let mut f = line.split(' ');
        let (Some(dev), Some(_dir), Some(_fstype), Some(opts)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let dev = unescape_mount_field(dev);
        let same = if is_blk {
            rustix::fs::stat(dev.as_str()).is_ok_and(|d| {
                FileType::from_raw_mode(d.st_mode) == FileType::BlockDevice
                    && d.st_rdev == st.st_rdev
            })
        } else {
            std::fs::canonicalize(&dev).is_ok_and(|d| d == real)
        };
        if same {
            return Ok(if opts.split(',').any(|o| o == "ro") {
                MountState::ReadOnly
            } else {
                MountState::ReadWrite
            });
        }
    }
    Ok(MountState::Unmounted)
}

/// A pipe: (read end, write end).
pub fn pipe() -> Result<(Fd, Fd)> {
    let (r, w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| os_err("pipe", e))?;
    Ok((Fd::owned(r), Fd::owned(w)))
}

/// For a whole-disk block device: the first mounted file system that lives on one of its
/// partitions (its device name from /proc/mounts), found through the partitions' sysfs
/// directories, which sit inside the disk's.
pub fn mounted_partition(disk: &str) -> Option<String> {
    let sysfs = |path: &str| -> Option<std::path::PathBuf> {
        let st = rustix::fs::stat(path).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::BlockDevice {
            return None;
        }
        let (maj, min) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
        std::fs::canonicalize(format!("/sys/dev/block/{maj}:{min}")).ok()
    };
    let disk_dir = sysfs(disk)?;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let dev = unescape_mount_field(line.split(' ').next().unwrap_or(""));
        if let Some(d) = sysfs(&dev) {
            if d != disk_dir && d.starts_with(&disk_dir) {
                return Some(dev);
            }
        }
    }
    None
}

/// /proc/mounts escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_field(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 8 random bytes from the kernel (for `--new-serial`), falling back to time and pid.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = Fd::open_read("/dev/urandom") {
        if f.read_full(&mut b).is_ok_and(|n| n == 8) {
            return u64::from_le_bytes(b);
        }
    }
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u64;
    (t.tv_nsec as u64) ^ ((t.tv_sec as u64) << 20) ^ (pid << 48)
}

/// What `stat` says about one object, for telling whether two paths or descriptors name the
/// same data ([`crate::ops::same`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// File, block device, or anything else.
    pub kind: Kind,
    /// True for a character device (a terminal, `/dev/null`).
    pub char_dev: bool,
    /// The device of the file system holding it (`st_dev`).
    pub dev: u64,
    /// Its inode (`st_ino`; a pipe's inode for a pipe).
    pub ino: u64,
    /// For a device, the device it is (`st_rdev`).
    pub rdev: u64,
}

fn identity(st: &rustix::fs::Stat) -> Identity {
    let ft = FileType::from_raw_mode(st.st_mode);
    Identity {
        kind: match ft {
            FileType::RegularFile => Kind::File,
            FileType::BlockDevice => Kind::Block,
            _ => Kind::Stream,
        },
        char_dev: ft == FileType::CharacterDevice,
        dev: st.st_dev,
        ino: st.st_ino,
        rdev: st.st_rdev,
    }
}

/// `stat(path)` (follows symlinks): `Ok(None)` when nothing exists there.
pub fn path_identity(path: &str) -> core::result::Result<Option<Identity>, Errno> {
    match rustix::fs::stat(path) {
        Ok(st) => Ok(Some(identity(&st))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What open descriptor `n` of this process refers to (through `/proc/self/fd/N`, which
/// leads to the open file, pipe or device). A descriptor that is not open is `EBADF`.
pub fn fd_identity(n: i32) -> core::result::Result<Identity, Errno> {
    if n < 0 {
        return Err(Errno::BADF);
    }
    let path = std::format!("/proc/self/fd/{n}");
    match rustix::fs::stat(path.as_str()) {
        Ok(st) => Ok(identity(&st)),
        Err(Errno::NOENT) => Err(Errno::BADF),
        Err(e) => Err(e),
    }
}

/// How the kernel builds a block device (from `/sys/dev/block/MAJ:MIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockLayout {
    /// A whole device (a disk, or anything that is neither of the others).
    Whole,
    /// A partition: `size` bytes at byte `start` of device `parent` (a `st_rdev`).
    Partition {
        /// The disk holding it.
        parent: u64,
        /// Byte offset on the disk.
        start: u64,
        /// Length in bytes.
        size: u64,
    },
    /// A loop device over a file (or device) `backing`, from byte `offset`, `sizelimit` bytes
    /// long (0: to the end).
    Loop {
        /// The backing file's path, as the kernel reports it.
        backing: String,
        /// Byte offset in the backing file.
        offset: u64,
        /// Length limit in bytes (0: none).
        sizelimit: u64,
    },
}

/// The layout of block device `rdev`, read from sysfs (`Whole` when sysfs says nothing).
pub fn block_layout(rdev: u64) -> BlockLayout {
    let (maj, min) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let base = std::format!("/sys/dev/block/{maj}:{min}");
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let num = |p: &str| read(p).and_then(|s| s.parse::<u64>().ok());
    if let Some(backing) = read(&std::format!("{base}/loop/backing_file")) {
        return BlockLayout::Loop {
            backing,
            offset: num(&std::format!("{base}/loop/offset")).unwrap_or(0),
            sizelimit: num(&std::format!("{base}/loop/sizelimit")).unwrap_or(0),
        };
    }
    if read(&std::format!("{base}/partition")).is_some() {
        let parent = read(&std::format!("{base}/../dev")).and_then(|s| {
            let (a, b) = s.split_once(':')?;
            Some(rustix::fs::makedev(a.parse().ok()?, b.parse().ok()?))
        });
        if let (Some(parent), Some(start), Some(size)) = (
            parent,
            num(&std::format!("{base}/start")),
            num(&std::format!("{base}/size")),
        ) {
            return BlockLayout::Partition {
                parent,
                start: start.saturating_mul(512),
                size: size.saturating_mul(512),
            };
        }
    }
    BlockLayout::Whole
}
