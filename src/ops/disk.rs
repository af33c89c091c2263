//! `--disk`: whole disks (see `docs/disk-image.md`). Save (`-s --disk`), restore
//! (`-r --disk`, or `-r` of a disk image), verify (`-r --disk -n`) and clone (`--disk` alone:
//! a save and a restore joined by a pipe, on two threads).
//!
//! The partition table is read and checked ([`crate::disk::Layout`]); each partition is saved
//! by what it holds: NTFS through the NTFS engine with all its checks ([`Source::from_fd`] on
//! a window of the disk, [`save::write_image`]), FAT by its used clusters, anything else raw
//! without its all-zero blocks. A restore checks the image's table, the target's size and
//! sector size before writing anything, writes the partitions, then the table (head, EBRs, and
//! a GPT rewritten for the target's size) last.
use super::ahead::CheckedAhead;
use super::image_out::ImageOut;
use super::output;
use super::save;
use super::serial::NewSerial;
use super::source::Source;
use crate::dev::fd::{self, Fd, Kind};
use crate::dev::{ReadAt, ReadStream, WriteAt, WriteStream};
use crate::disk::detect::{self, Content};
use crate::disk::extents::{self, Gaps};
use crate::disk::fat::Fat;
use crate::disk::image::{self, Check, DiskHeader, Reader, SectionKind, Writer};
use crate::disk::layout::Layout;
use crate::disk::{table, IdGen};
use crate::error::{Error, Result};
use crate::image::trailer::{Prechecked, Trailer};
use crate::ntfs::boot_sector::backup_of;
use crate::options::{Mode, Options};
use crate::progress::Progress;
use crate::report::Report;
use crate::zstd::{file_index, starts_zstd, threads_or_default, MaybeZstd};
use rustix::fs::OFlags;
use std::prelude::v1::*;

/// Copy buffer of FAT and raw partitions.
const BUF_BYTES: usize = 4 << 20;

/// Runs a `--disk` command line.
pub fn run(opts: &Options, report: Report, progress: &mut Progress) -> Result<()> {
    match opts.mode {
        Mode::Save => {
            let path = opts.output.as_deref().unwrap_or("-");
            let (out, _) = output::open_image(path)?;
            // With --zstd the disk image stream is compressed like a partition's image.
            let out = save_disk(opts, report, progress, ImageOut::new(out, opts)?)?;
            report.out(format_args!("Syncing ...\n"));
            out.finish()?.sync()
        }
        Mode::Restore | Mode::TestRestore => restore_disk(opts, report, progress, None),
        Mode::Clone => clone_disk(opts, report, progress),
        Mode::Metadata | Mode::MetadataImage => Err(Error::message(format_args!(
            "--disk does not combine with --metadata"
        ))),
    }
}

/// True when the file at `path` starts with the disk image magic, as it is or zstd-compressed
/// (so that `-r` restores it as a disk image without `--disk`).
pub fn is_disk_image(path: &str) -> bool {
    Fd::open_read(path).is_ok_and(|fd| disk_image_at(&fd, 0))
}

/// True when the bytes of `fd` from `offset` on start the disk image magic, as they are or as
/// the first content of a zstd stream. A read error is a no (the restore reports it).
fn disk_image_at(fd: &Fd, offset: u64) -> bool {
    if starts_zstd(fd, offset).unwrap_or(false) {
        return MaybeZstd::open(
            ReadFrom {
                dev: fd,
                at: offset,
            },
            1,
            None,
        )
        .is_ok_and(|z| z.head() == image::MAGIC);
    }
    let mut m = [0u8; 16];
    matches!(fd.read_at(&mut m, offset), Ok(16)) && m == image::MAGIC
}

/// Positioned reads of a file as a stream from `at` on (the file offset stays where it is).
struct ReadFrom<'a> {
    dev: &'a Fd,
    at: u64,
}

impl ReadStream for ReadFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.dev.read_at(buf, self.at)?;
        self.at = self.at.saturating_add(n as u64);
        Ok(n)
    }
}

/// The image of a restore without `--disk`, looked at to tell a disk image from an ntfsclone
/// image.
pub struct RestoreInput {
    /// It starts with the disk image magic (as it is, or zstd-compressed).
    pub disk: bool,
    /// Standard input that is a pipe, its first bytes read to look at them: the restore goes
    /// on from there. None: the restore opens `opts.source` itself (a file, or standard input
    /// that is seekable and was looked at with positioned reads).
    pub stream: Option<MaybeZstd<Fd>>,
}

/// Looks at the start of the image `opts.source` of a restore (`-r`, `-r -n`): a file, or
/// standard input (`-`), plain or zstd-compressed.
pub fn sniff_restore_input(opts: &Options) -> Result<RestoreInput> {
    if opts.source != "-" {
        return Ok(RestoreInput {
            disk: is_disk_image(&opts.source),
            stream: None,
        });
    }
    let fd = Fd::stdin();
    if let Some(at) = fd.tell() {
        return Ok(RestoreInput {
            disk: disk_image_at(&fd, at),
            stream: None,
        });
    }
    let m = MaybeZstd::open(fd, threads_or_default(opts.threads), None)?;
    Ok(RestoreInput {
        disk: m.head() == image::MAGIC,
        stream: Some(m),
    })
}

/// The logical sector size of a disk: the kernel's for a block device, 512 for a file.
fn sector_size(dev: &Fd) -> Result<u32> {
    match dev.kind()? {
        Kind::Block => dev.logical_sector_size(),
        _ => Ok(512),
    }
}

/// Puts the partition's name in front of an error's text.
fn in_partition(n: u32, e: Error) -> Error {
    match e {
        Error::Fatal(t) | Error::Message(t) => {
            Error::message(format_args!("partition {n}: {}", t.as_str().trim_end()))
        }
        Error::Os { what, errno } => Error::Os {
            what: crate::text!("partition {n}: {what}"),
            errno,
        },
        Error::Corrupt { place, what, at } => Error::Corrupt {
            place: crate::text!("partition {n}: {place}"),
            what,
            at,
        },
        e => e,
    }
}

/// Refuses a source or target disk that is mounted, or any of whose partitions is.
fn check_not_mounted(path: &str, what: &str) -> Result<()> {
    match fd::mount_state(path) {
        Ok(fd::MountState::Unmounted) => {}
        Ok(_) => {
            return Err(Error::message(format_args!(
                "{what} '{path}' is mounted: unmount it first"
            )))
        }
        Err(e) => {
            return Err(Error::Os {
                what: crate::text!("Failed to check '{path}' mount state"),
                errno: e.raw_os_error(),
            })
        }
    }
    if let Some(p) = fd::mounted_partition(path) {
        return Err(Error::message(format_args!(
            "{what} '{path}' has a mounted partition ({p}): unmount it first"
        )));
    }
    Ok(())
}

/// One partition of a source disk, opened and checked.
enum PartSource {
    Ntfs(Box<Source>),
    Fat(Fat),
    Raw,
}

/// Saves the disk `opts.source` as a disk image on `out`; returns `out`.
pub fn save_disk<W: WriteStream>(
    opts: &Options,
    report: Report,
    progress: &mut Progress,
    out: W,
) -> Result<W> {
    let path = opts.source.as_str();
    check_not_mounted(path, "Disk")?;
    let dev = Fd::open_read(path)
        .map_err(|e| Error::Os {
            what: crate::text!("Opening disk '{path}' failed"),
            errno: e.raw_os_error(),
        })?
        .drop_behind_when_copying();
    let size = dev.size()?;
    let ss = sector_size(&dev)?;
    let layout = Layout::read(&dev, size, ss)?;
    warn_layout(&layout, progress);
    report.out(format_args!(
        "Disk size              : {size} bytes, {} partition table, {} partitions\n",
        layout.kind.name(),
        layout.partitions.len()
    ));
    // Every partition is opened and checked before the image is started.
    let mut sources = Vec::new();
    let mut kinds = Vec::new();
    for p in &layout.partitions {
        let mut boot = [0u8; 512];
        dev.read_exact_at(&mut boot, p.start)?;
        let content = detect::detect(&boot, p.len);
        report.out(format_args!(
            "Partition {}: {}, {} bytes at byte {}\n",
            p.number,
            content.name(),
            p.len,
            p.start
        ));
        let s = match content {
            Content::Ntfs => {
                let name = format!("{path} partition {}", p.number);
                let win = dev.window(p.start, p.len)?;
                let src = Source::from_fd(opts, report, progress, &name, win)
                    .map_err(|e| in_partition(p.number, e))?;
                kinds.push(SectionKind::Ntfs);
                PartSource::Ntfs(Box::new(src))
            }
            Content::Fat(_) => {
                kinds.push(SectionKind::Fat);
                PartSource::Fat(Fat::parse(&boot, p.len).map_err(|e| in_partition(p.number, e))?)
            }
            Content::Other => {
                kinds.push(SectionKind::Raw);
                PartSource::Raw
            }
        };
        sources.push(s);
    }
    let header = DiskHeader::new(&layout, &kinds, !opts.no_checksum);
    let mut w = Writer::new(out, header)?;
    for a in &layout.areas {
        let mut b = vec![0u8; usize::try_from(a.len).unwrap_or(0)];
        dev.read_exact_at(&mut b, a.offset)?;
        w.areas(&b)?;
    }
    // Every partition was scanned: from here on each page is read once.
    dev.copy_begins();
    let mut buf = vec![0u8; BUF_BYTES];
    let inner = Options {
        no_checksum: true,
        ..opts.clone()
    };
    for (p, s) in layout.partitions.iter().zip(&sources) {
        report.out(format_args!("Saving partition {} ...\n", p.number));
        progress.begin_partition(p.number);
        let win = dev.window(p.start, p.len)?;
        let r: Result<()> = (|| {
            match s {
                PartSource::Ntfs(src) => {
                    progress.phase("scan");
                    let scan = src.scan(&inner, report, progress)?;
                    let bytes = scan
                        .inuse
                        .saturating_mul(u64::from(src.vol.boot.cluster_size));
                    w.begin_section(bytes)?;
                    save::write_image(&inner, report, progress, src, &scan, &mut w, false)?;
                }
                PartSource::Fat(fat) => {
                    let total = extents::fat_used_bytes(&win, fat)?;
                    w.begin_section(total)?;
                    progress.phase("save");
                    progress.set_total_bytes(total);
                    progress.start_bar(0, total.max(1));
                    extents::save_fat(&win, fat, &mut w, &mut buf, |d| progress.update(d))?;
                    progress.add_bytes(total);
                }
                PartSource::Raw => {
                    w.begin_section(p.len)?;
                    progress.phase("save");
                    progress.set_total_bytes(p.len);
                    progress.start_bar(0, p.len.max(1));
                    let saved =
                        extents::save_raw(&win, p.len, &mut w, &mut buf, |d| progress.update(d))?;
                    progress.add_bytes(saved);
                }
            }
            progress.end_bar();
            Ok(())
        })();
        r.map_err(|e| in_partition(p.number, e))?;
    }
    w.finish()
}

/// Prints the table's warnings (a damaged GPT copy).
fn warn_layout(layout: &Layout, progress: &mut Progress) {
    if let Some(d) = layout.gpt.as_ref().and_then(|g| g.damage) {
        progress.warning();
        Report::err(format_args!("WARNING: {d}\n"));
    }
}

/// The image input of a restore: a file checked chunk by chunk against its trailer before
/// use, or a plain stream checksummed as it goes.
enum Input {
    /// As read, or decompressed when it is a zstd stream.
    Plain(Box<MaybeZstd<Fd>>),
    /// Checked by a second thread one chunk ahead (the normal case).
    Ahead(Box<CheckedAhead<Fd>>),
    /// Checked on this thread (no thread could be started).
    Checked(Box<Prechecked<Fd, Fd>>),
}

impl ReadStream for Input {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Input::Plain(f) => f.read(buf),
            Input::Ahead(c) => c.read(buf),
            Input::Checked(c) => c.read(buf),
        }
    }
}

/// The input as read, or decompressed when it starts with a zstd frame.
fn sniffed(fd: Fd, threads: Option<usize>) -> Result<Input> {
    Ok(Input::Plain(Box::new(MaybeZstd::open(
        fd,
        threads_or_default(threads),
        None,
    )?)))
}

/// Restores (or with `-n` verifies) a disk image. `input` replaces `opts.source`: a clone's
/// pipe, or standard input whose first bytes were read to tell that it is a disk image.
pub fn restore_disk(
    opts: &Options,
    report: Report,
    progress: &mut Progress,
    input: Option<MaybeZstd<Fd>>,
) -> Result<()> {
    let test = opts.mode == Mode::TestRestore;
    let verify = !opts.no_checksum;
    let mut stream_verify = verify;
    // An image on a raw partition (a rescue-system store `DEV`): the partition goes on after it.
    let mut from_block_device = false;
    let input = match input {
        Some(m) => Input::Plain(Box::new(m)),
        None if opts.source == "-" => sniffed(Fd::stdin(), opts.threads)?,
        None => {
            let open = || {
                Fd::open_read(&opts.source).map_err(|e| Error::Os {
                    what: crate::text!("failed to open image"),
                    errno: e.raw_os_error(),
                })
            };
            // The trailer is found through a second descriptor (`size` seeks to the end).
            let aux = open()?;
            from_block_device = aux.kind()? == Kind::Block;
            let trailer = if verify && !test && aux.kind()? == Kind::File {
                image::locate(&aux, aux.size()?)
                    .ok()
                    .and_then(|l| l.trailer)
            } else {
                None
            };
            let fd = open()?;
            match trailer {
                Some(t) => {
                    stream_verify = false;
                    let t: Trailer = t;
                    match CheckedAhead::start(fd, aux, t.clone(), 0) {
                        Ok(c) => Input::Ahead(Box::new(c)),
                        Err((fd, aux)) => {
                            Input::Checked(Box::new(Prechecked::new(fd, aux, t, 0, 1 << 20)))
                        }
                    }
                }
                // A compressed image file with a seek table: the workers read its frames.
                None if aux.kind()? == Kind::File && starts_zstd(&aux, 0)? => {
                    let index = file_index(&aux, aux.stat_len()?)?;
                    let src: crate::zstd::FrameSource = std::sync::Arc::new(aux);
                    Input::Plain(Box::new(MaybeZstd::open_file(
                        fd,
                        threads_or_default(opts.threads),
                        index.map(|i| (i, Some(src))),
                    )?))
                }
                None => sniffed(fd, opts.threads)?,
            }
        }
    };
    let mut r = Reader::open(input, stream_verify)?;
    if from_block_device {
        r.allow_trailing_bytes();
    }
    let h = r.header().clone();
    let layout = table::layout_from_areas(r.areas(), h.disk_size, h.sector_size)?;
    warn_layout(&layout, progress);
    report.out(format_args!(
        "Disk image             : {} bytes, {} partition table, sector size {}, {} partitions\n",
        h.disk_size,
        h.table.name(),
        h.sector_size,
        h.parts.len()
    ));
    let need = h.min_disk_size().max(layout.min_disk_size()?);
    let mut target = match (&opts.output, test) {
        (Some(path), false) => Some(open_target(opts, path, &h, need)?),
        _ => None,
    };
    let mut ids = opts
        .new_disk_ids
        .then(|| IdGen::new(fd::random_u64() ^ h.disk_size.rotate_left(17)));
    // The table writes are computed (and checked) before anything is written.
    let writes = match &target {
        Some(t) => table::table_writes(&layout, r.areas(), t.size, ids.as_mut())?,
        None => Vec::new(),
    };
    let mut buf = vec![0u8; BUF_BYTES];
    progress.phase(if test { "verify" } else { "restore" });
    while let Some(s) = r.next_section()? {
        let p = s.part;
        progress.begin_partition(p.number);
        report.out(format_args!(
            "Partition {}: {} section, {} bytes at byte {}\n",
            p.number,
            p.kind.name(),
            p.len,
            p.start
        ));
        let mut win = match &target {
            Some(t) => Some(t.fd.window(p.start, p.len)?),
            None => None,
        };
        let res: Result<()> = match p.kind {
            SectionKind::Ntfs => {
                // NTFS serial numbers follow --new-serial (a new one per partition).
                let serial = win.as_ref().and_then(|_| NewSerial::draw(opts.new_serial));
                restore_ntfs(&mut r, win.as_mut(), serial, report, progress)
            }
            SectionKind::Fat | SectionKind::Raw => {
                let gaps = match (p.kind, &target) {
                    (SectionKind::Fat, _) => Gaps::Keep,
                    (_, Some(t)) if t.new_file => Gaps::AlreadyZero,
                    _ => Gaps::Zero,
                };
                progress.start_bar(0, s.data_bytes.max(1));
                let done = match win.as_mut() {
                    Some(w) => extents::restore_extents(&mut r, p.len, w, &mut buf, gaps, |d| {
                        progress.update(d)
                    }),
                    None => extents::restore_extents(
                        &mut r,
                        p.len,
                        &mut Discard,
                        &mut buf,
                        Gaps::Keep,
                        |d| progress.update(d),
                    ),
                };
                done.map(|d| progress.add_bytes(d))
            }
        };
        progress.end_bar();
        res.map_err(|e| in_partition(p.number, e))?;
    }
    let sections = r.sections().to_vec();
    match r.finish()? {
        Check::Verified => report.out(format_args!("Image checksums: ok\n")),
        Check::NotChecked => {}
        Check::NoTrailer => Report::err(format_args!(
            "NOTICE: the disk image has no checksum trailer: it was not verified\n"
        )),
        Check::Mismatch(bad) => {
            for m in &bad {
                Report::err(format_args!(
                    "ERROR: image checksum mismatch in image bytes {}..{} (0x{:x}..0x{:x})\n",
                    m.start, m.end, m.start, m.end
                ));
            }
            return Err(Error::message(format_args!(
                "the disk image is damaged ({} damaged range(s))",
                bad.len()
            )));
        }
    }
    if test {
        for e in sections.iter().filter(|e| e.kind == SectionKind::Ntfs) {
            report.out(format_args!(
                "Partition {}: NTFS special image at image byte {}, {} bytes\n",
                e.number, e.payload_offset, e.payload_len
            ));
        }
    }
    if let Some(mut t) = target.take() {
        for w in &writes {
            t.fd.write_all_at(&w.bytes, w.offset)?;
        }
        report.out(format_args!("Syncing ...\n"));
        t.fd.sync()?;
        // The kernel keeps the partitions it found before the restore until it reads the new
        // table (a busy disk refuses: the copy is complete, the next boot sees the new table).
        if t.fd.kind()? == Kind::Block {
            if let Err(e) = t.fd.reread_partition_table() {
                progress.warning();
                Report::err(format_args!(
                    "WARNING: the kernel did not re-read the partition table of '{}': {}\n",
                    opts.output.as_deref().unwrap_or(""),
                    crate::error::strerror(e.errno().unwrap_or(0))
                ));
            }
        }
    }
    Ok(())
}

/// Restores one NTFS section: its special image's clusters at their offsets of `win` (None:
/// verify only).
fn restore_ntfs<R: ReadStream>(
    r: &mut Reader<R>,
    mut win: Option<&mut Fd>,
    serial: Option<NewSerial>,
    report: Report,
    progress: &mut Progress,
) -> Result<()> {
    use crate::image::reader::Checksum;
    let outer = r.lend_verifier();
    let mut ir = crate::image::Reader::open_continuing(
        &mut *r,
        None,
        crate::copy::CHUNK_BYTES,
        false,
        Checksum::Off,
        outer,
    )?;
    let cs = u64::from(ir.header().cluster_size);
    progress.start_bar(0, ir.header().inuse.saturating_add(1));
    let mut done = 0u64;
    // Adjacent clusters are gathered and written with one positioned write.
    let mut stage: Vec<u8> = Vec::with_capacity(crate::copy::CHUNK_BYTES);
    let mut stage_at = 0u64;
    let mut backup = None;
    let flush = |w: &mut Fd, stage: &mut Vec<u8>, at: u64, backup| -> Result<()> {
        if let Some(s) = serial {
            s.patch(stage, at, backup);
        }
        w.write_all_at(stage, at)
    };
    let stride = cs as usize + 1;
    loop {
        // Fast path (no serial to patch): batches of full-cluster records written with one
        // pwritev each, straight from the reader's buffer.
        if serial.is_none() {
            if let Some((pos, recs)) = ir.next_clusters(crate::copy::IOV_MAX)? {
                let k = (recs.len() / stride) as u64;
                if let Some(w) = win.as_deref_mut() {
                    flush(w, &mut stage, stage_at, backup)?;
                    stage.clear();
                    let mut iov: heapless::Vec<rustix::io::IoSlice<'_>, { crate::copy::IOV_MAX }> =
                        heapless::Vec::new();
                    for r in recs.chunks_exact(stride) {
                        // At most IOV_MAX records per batch: never full.
                        let _ = iov.push(rustix::io::IoSlice::new(r.get(1..).unwrap_or(&[])));
                    }
                    crate::copy::write_all_vectored_at(w, &iov, pos.saturating_mul(cs))?;
                }
                progress.add_bytes(k * cs);
                done += k;
                progress.update(done);
                continue;
            }
        }
        match ir.next_record()? {
            crate::image::Record::Cluster { pos, data } => {
                let at = pos.saturating_mul(cs);
                if let (0, Some(s)) = (pos, serial) {
                    backup = backup_of(data);
                    report.out(format_args!("New serial number      : 0x{:x}\n", s.serial));
                }
                if let Some(w) = win.as_deref_mut() {
                    if stage_at + stage.len() as u64 != at
                        || stage.len() + data.len() > stage.capacity()
                    {
                        flush(w, &mut stage, stage_at, backup)?;
                        stage.clear();
                        stage_at = at;
                    }
                    stage.extend_from_slice(data);
                }
                progress.add_bytes(data.len() as u64);
                done += 1;
                progress.update(done);
            }
            crate::image::Record::Gap { .. } => {}
            crate::image::Record::End { .. } => break,
        }
    }
    if let Some(w) = win {
        flush(w, &mut stage, stage_at, backup)?;
    }
    let (v, rest) = ir.into_rest();
    r.give_back(&rest, v);
    Ok(())
}

/// A sink for verification: accepts every write.
struct Discard;

impl WriteAt for Discard {
    fn write_at(&mut self, buf: &[u8], _offset: u64) -> Result<usize> {
        Ok(buf.len())
    }
}

/// The restore target.
struct Target {
    fd: Fd,
    size: u64,
    /// A file created by this run (reads as zeros).
    new_file: bool,
}

/// Opens the target disk and checks it against the image before anything is written: not
/// mounted, large enough, same logical sector size (block devices).
fn open_target(opts: &Options, path: &str, h: &DiskHeader, need: u64) -> Result<Target> {
    if path == "-" {
        return Err(Error::message(format_args!(
            "a disk cannot be restored to standard output"
        )));
    }
    let kind = fd::stat_kind(path).map_err(|e| Error::Os {
        what: crate::text!("Opening '{path}' failed"),
        errno: e.raw_os_error(),
    })?;
    let open_err = |e: rustix::io::Errno| Error::Os {
        what: crate::text!("Opening '{path}' failed"),
        errno: e.raw_os_error(),
    };
    match kind {
        None => {
            let fd = Fd::open(path, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL, 0o644)
                .map_err(open_err)?;
            fd.truncate(h.disk_size.max(need)).map_err(|e| Error::Os {
                what: crate::text!("ftruncate failed for file '{path}'"),
                errno: e.raw_os_error(),
            })?;
            Ok(Target {
                fd,
                size: h.disk_size.max(need),
                new_file: true,
            })
        }
        Some(k) => {
            if !opts.overwrite {
                return Err(Error::message(format_args!(
                    "'{path}' exists: use --overwrite to restore onto it"
                )));
            }
            if k == Kind::Block {
                check_not_mounted(path, "Target")?;
            }
            let fd = Fd::open(path, OFlags::RDWR, 0)
                .map_err(open_err)?
                .drop_behind();
            let size = fd.size()?;
            if k == Kind::Block {
                let ss = fd.logical_sector_size()?;
                if ss != h.sector_size {
                    return Err(Error::message(format_args!(
                        "the target's logical sector size is {ss} bytes, the disk image's is {} \
                         bytes",
                        h.sector_size
                    )));
                }
            }
            table::check_target_size(size, need)?;
            Ok(Target {
                fd,
                size,
                new_file: false,
            })
        }
    }
}

/// `--disk` without `-s`/`-r`: a save into a pipe on one thread, a restore from it on this one.
fn clone_disk(opts: &Options, report: Report, progress: &mut Progress) -> Result<()> {
    let (rd, wr) = fd::pipe()?;
    let save_opts = Options {
        mode: Mode::Save,
        quiet: true,
        progress_fd: None,
        ..opts.clone()
    };
    let restore_opts = Options {
        mode: Mode::Restore,
        source: "-".into(),
        ..opts.clone()
    };
    std::thread::scope(|s| {
        let saver = s.spawn(move || {
            let rep = Report {
                msg_to_stderr: true,
                quiet: true,
            };
            let mut p = Progress::new(rep, None);
            save_disk(&save_opts, rep, &mut p, wr).map(drop)
        });
        let restored = MaybeZstd::open(rd, threads_or_default(opts.threads), None)
            .and_then(|m| restore_disk(&restore_opts, report, progress, Some(m)));
        let saved = saver
            .join()
            .unwrap_or_else(|_| Err(Error::message(format_args!("the disk reader failed"))));
        // The save's error explains a restore that saw its stream end early; a save that lost
        // its reader is explained by the restore's error.
        match saved {
            Err(Error::BrokenPipe) => restored.and(Err(Error::BrokenPipe)),
            saved => saved.and(restored),
        }
    })
}
