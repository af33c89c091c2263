//! `-r` (and `-r -n`): special image → sparse file, block device or stdout (spec §1.4).
//!
//! The image is read sequentially through the reader's large buffer (stdin and pipes work);
//! adjacent clusters are gathered into one staging buffer and written with one positioned
//! write; gaps leave holes (files), untouched blocks (devices) or zeros (stdout).
//!
//! Integrity (unless `--no-checksum`): from an image file whose trailer footer is found at its
//! end, the trailer is read first and every chunk is checked before any of its records is
//! used (by a second thread one chunk ahead, `CheckedAhead`; [`Prechecked`] on this thread
//! if none can be started), so a damaged image stops at the first bad chunk and nothing from
//! it is written. Otherwise (stdin, pipes, `-r -n`) the stream is checksummed as it is read and
//! compared with the trailer that follows the last record. Images without a trailer restore
//! unverified, with a notice on stderr; a damaged trailer stops the restore unless `--force`.
use super::ahead::CheckedAhead;
use super::output::RawOut;
use super::serial::NewSerial;
use crate::copy::CHUNK_BYTES;
use crate::dev::fd::{Fd, Kind};
use crate::dev::{ReadAt, ReadStream};
use crate::error::{Error, Result};
use crate::image::reader::Checksum;
use crate::image::trailer::{self, Mismatch, Prechecked, Trailer, TrailerProblem};
use crate::image::{Reader, Record};
use crate::ntfs::boot_sector::{backup_of, BackupBootSector};
use crate::options::{Mode, Options};
use crate::progress::Progress;
use crate::report::Report;
use crate::zstd::{file_index, starts_zstd, threads_or_default, Decompressor, MaybeZstd};
use std::prelude::v1::*;

/// The image input: plain, checked chunk by chunk against a trailer read first, or zstd.
enum Input {
    Plain(Fd),
    /// A pipe or terminal: its first bytes were read to look for the zstd magic number.
    Sniffed(Box<MaybeZstd<Fd>>),
    /// A zstd-compressed image file, decompressed on worker threads.
    Zstd(Box<Decompressor<Fd>>),
    /// Checked by a second thread ahead of the restore (the normal case).
    Ahead(Box<CheckedAhead<Fd>>),
    /// Checked chunk by chunk on this thread (no thread could be started).
    Checked(Box<Prechecked<Fd, Fd>>),
}

impl Input {
    /// The first damaged chunk met by a checked input.
    fn failed(&self) -> Option<Mismatch> {
        match self {
            Input::Plain(_) | Input::Sniffed(_) | Input::Zstd(_) => None,
            Input::Ahead(c) => c.failed(),
            Input::Checked(c) => c.failed(),
        }
    }
}

impl ReadStream for Input {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Input::Plain(f) => f.read(buf),
            Input::Sniffed(m) => m.read(buf),
            Input::Zstd(d) => d.read(buf),
            Input::Ahead(c) => c.read(buf),
            Input::Checked(c) => c.read(buf),
        }
    }

    fn swap_buffer(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match self {
            Input::Sniffed(m) => m.swap_buffer(buf),
            Input::Zstd(d) => d.swap_buffer(buf),
            Input::Plain(_) | Input::Ahead(_) | Input::Checked(_) => Ok(None),
        }
    }
}

/// What the trailer lookup at the end of an image file found.
enum Found {
    /// A footer, and a good trailer.
    Trailer(Box<Trailer>),
    /// A footer, but the trailer is damaged.
    Damaged(&'static str),
    /// No footer: no trailer, or one followed by other bytes (looked for after the last record).
    Nothing,
}

/// Reads the footer at the end of the image file (stream byte 0 at file offset `base`).
fn find_trailer(aux: &Fd, base: u64) -> Result<Found> {
    let size = aux.size()?;
    let mut footer = [0u8; trailer::FOOTER_LEN];
    if size < base + (trailer::FIXED_LEN + trailer::FOOTER_LEN) as u64 {
        return Ok(Found::Nothing);
    }
    aux.read_exact_at(&mut footer, size - trailer::FOOTER_LEN as u64)?;
    let Some(len) = Trailer::len_from_footer(&footer) else {
        return Ok(Found::Nothing);
    };
    let start = size - len as u64;
    if start < base {
        return Ok(Found::Damaged("trailer length is out of range"));
    }
    let mut bytes = [0u8; trailer::MAX_LEN];
    aux.read_exact_at(&mut bytes[..len], start)?;
    Ok(match Trailer::parse(&bytes[..len]) {
        Ok(t) if t.data_len != start - base => {
            Found::Damaged("trailer does not match the length of the image")
        }
        Ok(t) => Found::Trailer(Box::new(t)),
        Err(TrailerProblem::Absent) => Found::Damaged("trailer magic is damaged"),
        Err(TrailerProblem::Damaged(why)) => Found::Damaged(why),
    })
}

/// A damaged trailer: an error, or with `--force` a warning and no verification.
fn damaged_trailer(opts: &Options, progress: &mut Progress, why: &str) -> Result<()> {
    if opts.force > 0 {
        progress.warning();
        Report::err(format_args!(
            "WARNING: the image's checksum trailer is damaged ({why}): the data is restored \
             without verification (--force)\n"
        ));
        Ok(())
    } else {
        Err(Error::message(format_args!(
            "the image's checksum trailer is damaged ({why}); use --force to restore the data \
             without verification"
        )))
    }
}

fn not_verifiable() {
    Report::err(format_args!(
        "NOTICE: the image has no checksum trailer (made by ntfs-3g's ntfsclone or with \
         --no-checksum): it cannot be verified\n"
    ));
}

/// Where each checksum chunk of the image stream starts, in cluster positions: turns a
/// damaged byte range into the clusters restored from it.
struct ChunkMap {
    chunk_size: u64,
    /// `first_pos[i]`: position of the record that holds byte `i * chunk_size`.
    first_pos: Vec<u64>,
    next: u64,
}

impl ChunkMap {
    fn new(chunk_size: Option<u64>) -> ChunkMap {
        let chunk_size = chunk_size.unwrap_or(u64::MAX).max(1);
        ChunkMap {
            chunk_size,
            first_pos: Vec::with_capacity(trailer::MAX_CHUNKS + 2),
            next: 0,
        }
    }

    /// A record of position `pos` ended at stream byte `end`.
    #[inline]
    fn record(&mut self, pos: u64, end: u64) {
        while self.next < end && self.first_pos.len() < self.first_pos.capacity() {
            self.first_pos.push(pos);
            self.next = self.next.saturating_add(self.chunk_size);
        }
    }

    /// Cluster positions `[first, last]` restored from stream bytes `[start, end)`.
    fn clusters(&self, m: Mismatch, last_pos: u64) -> (u64, u64) {
        let i = (m.start / self.chunk_size) as usize;
        let j = (m.end.saturating_sub(1) / self.chunk_size) as usize + 1;
        let first = self.first_pos.get(i).copied().unwrap_or(0);
        let last = self.first_pos.get(j).copied().unwrap_or(last_pos);
        (first.min(last), first.max(last))
    }
}

/// Runs `-r`. `sniffed`: standard input (a pipe) whose first bytes were already read to tell
/// what the image is; otherwise `opts.source` (a file, or `-`) is opened here.
pub fn run(
    opts: &Options,
    report: Report,
    progress: &mut Progress,
    sniffed: Option<MaybeZstd<Fd>>,
) -> Result<()> {
    let test = opts.mode == Mode::TestRestore;
    let from_file = opts.source != "-";
    let to_stdout = opts.output_is_stdout();
    let verify = !opts.no_checksum;
    let threads = threads_or_default(opts.threads);
    let mut base = None;

    // A zstd image is recognised by its magic number (no option): from a seekable input it is
    // decompressed on worker threads, its frames checked against its seek table; its bytes
    // are then a stream like a pipe's (checksummed as they are read, each zstd frame checked
    // whole before any of its bytes is used). A pipe's first bytes are read to look.
    let mut input = match sniffed {
        Some(m) => Input::Sniffed(Box::new(m)),
        None => {
            let fd = if from_file {
                Fd::open_read(&opts.source).map_err(|e| Error::Os {
                    what: crate::text!("failed to open image"),
                    errno: e.raw_os_error(),
                })?
            } else {
                Fd::stdin()
            };
            base = fd.tell();
            match base {
                Some(b) if starts_zstd(&fd, b)? => {
                    let index = match (b, fd.kind()?) {
                        (0, Kind::File) => file_index(&fd, fd.stat_len()?)?,
                        _ => None,
                    };
                    let src = fd.duplicate()?;
                    let mut d = Decompressor::new(fd, &[], threads)?;
                    if let Some(i) = index {
                        // The workers read the frames themselves.
                        d = d.with_index(i).read_frames_at(std::sync::Arc::new(src));
                    }
                    base = None;
                    Input::Zstd(Box::new(d))
                }
                Some(_) => Input::Plain(fd),
                None => Input::Sniffed(Box::new(MaybeZstd::open(fd, threads, None)?)),
            }
        }
    };
    let compressed = matches!(input, Input::Zstd(_));

    // A seekable image file: look for the trailer at its end first.
    let mut known: Option<Box<Trailer>> = None;
    let mut checksum = if verify {
        Checksum::FromHeader
    } else {
        Checksum::Off
    };
    if let (true, true, false, Some(b)) = (verify, from_file, compressed, base) {
        let aux = Fd::open_read(&opts.source).map_err(|e| Error::Os {
            what: crate::text!("failed to open image"),
            errno: e.raw_os_error(),
        })?;
        if matches!(aux.kind()?, Kind::File | Kind::Block) {
            match find_trailer(&aux, b)? {
                Found::Trailer(t) if test => {
                    // Verify everything and report every damaged range.
                    checksum = Checksum::ChunkSize(t.chunk_size);
                    known = Some(t);
                }
                Found::Trailer(t) => {
                    checksum = Checksum::Off;
                    let Input::Plain(fd) = input else {
                        unreachable!()
                    };
                    input = match CheckedAhead::start(fd, aux, (*t).clone(), b) {
                        Ok(c) => Input::Ahead(Box::new(c)),
                        Err((fd, aux)) => Input::Checked(Box::new(Prechecked::new(
                            fd,
                            aux,
                            (*t).clone(),
                            b,
                            1 << 20,
                        ))),
                    };
                    known = Some(t);
                }
                Found::Damaged(why) => {
                    damaged_trailer(opts, progress, why)?;
                    checksum = Checksum::Off;
                }
                Found::Nothing => {}
            }
        }
    }
    let mut rd = Reader::open_with(
        input,
        base,
        CHUNK_BYTES + CHUNK_BYTES / 8,
        to_stdout,
        checksum,
    )?;
    let h = *rd.header();
    let cs = u64::from(h.cluster_size);
    let mut out = match (&opts.output, test) {
        (Some(path), false) => Some(RawOut::open(
            path,
            opts.overwrite,
            restore_ntfs_size(&h),
            report,
        )?),
        _ => None,
    };

    report.out(format_args!(
        "Ntfsclone image version: {}.{}\n",
        h.major, h.minor
    ));
    report.out(format_args!(
        "Cluster size           : {} bytes\n",
        h.cluster_size
    ));
    match u64::try_from(h.volume_size()) {
        Ok(bytes) => report.size("Image volume size      ", bytes),
        // A negative cluster count, printed as the reference's %lld.
        Err(_) => {
            let bytes = h.volume_size();
            report.out(format_args!(
                "Image volume size      : {bytes} bytes ({} MB)\n",
                bytes.wrapping_add(999_999) / 1_000_000
            ));
        }
    }
    report.out(format_args!(
        "Image device size      : {} bytes\n",
        h.device_size
    ));
    report.space_in_use(
        "Space in use           ",
        h.inuse,
        h.cluster_size,
        h.nr_clusters,
    );
    report.out(format_args!(
        "Offset to image data   : {} (0x{:x}) bytes\n",
        h.offset_to_data, h.offset_to_data
    ));
    report.out(format_args!("Restoring NTFS from image ...\n"));

    let stop = if to_stdout {
        h.nr_clusters.saturating_add(1)
    } else {
        h.inuse.saturating_add(1)
    };
    progress.set_total_bytes(stop.saturating_mul(cs));
    progress.phase(if test { "verify" } else { "restore" });
    let mut map = ChunkMap::new(rd.checksum_chunk_size());
    let serial = out.as_ref().and_then(|_| NewSerial::draw(opts.new_serial));
    let mut backup = None;
    progress.start_bar(0, stop);
    let mut done = 0u64;
    let mut stage = Stage {
        buf: Vec::with_capacity(CHUNK_BYTES.max(h.cluster_size as usize)),
        offset: 0,
    };
    // A stdout stream must also get the zeros of a gap that ends the image (version 10.0).
    let mut pending_zeros: Option<u64> = None;
    // Fast path (no serial to patch): batches of full-cluster records written with one
    // pwritev each, straight from the reader's buffer.
    let fast = serial.is_none();
    let stride = h.cluster_size as usize + 1;
    // A read error: like the reference, leave what was restored so far on the output (with a
    // checked input: only bytes of chunks that passed their check), then report.
    macro_rules! fail {
        ($e:expr) => {{
            if let Some(o) = out.as_mut() {
                let _ = stage.flush(o, serial, backup);
                // The reference wrote the zeros of a gap to stdout when it read the gap.
                if let Some(z) = pending_zeros {
                    let _ = o.fill_to(z);
                }
            }
            return Err(checked_error($e, rd.input().failed(), rd.position(), cs));
        }};
    }
    loop {
        let pos_before = rd.position();
        let batch = if fast {
            rd.next_clusters(crate::copy::IOV_MAX)
        } else {
            Ok(None)
        };
        match batch {
            Ok(Some((pos, recs))) => {
                let k = (recs.len() / stride) as u64;
                if let Some(o) = out.as_mut() {
                    stage.flush(o, serial, backup)?;
                    let mut iov: heapless::Vec<rustix::io::IoSlice<'_>, { crate::copy::IOV_MAX }> =
                        heapless::Vec::new();
                    for r in recs.chunks_exact(stride) {
                        // At most IOV_MAX records per batch: never full.
                        let _ = iov.push(rustix::io::IoSlice::new(&r[1..]));
                    }
                    o.write_vectored_at(&iov, pos * cs)?;
                }
                progress.add_bytes(k * cs);
                pending_zeros = None;
                progress.advance(done, done + k);
                done += k;
                map.record(pos_before, rd.consumed());
                continue;
            }
            Ok(None) => {}
            Err(e) => fail!(e),
        }
        let rec = match rd.next_record() {
            Ok(r) => r,
            Err(e) => fail!(e),
        };
        match rec {
            Record::Cluster { pos, data } => {
                progress.add_bytes(data.len() as u64);
                let offset = pos * cs;
                if let (0, Some(s)) = (pos, serial) {
                    backup = backup_of(data);
                    report.out(format_args!("New serial number      : 0x{:x}\n", s.serial));
                }
                if let Some(o) = out.as_mut() {
                    if !stage.fits(offset, data.len()) {
                        stage.flush(o, serial, backup)?;
                        stage.offset = offset;
                        // Zeros of a preceding gap on stdout, even before an empty record.
                        o.fill_to(offset)?;
                    }
                    stage.buf.extend_from_slice(data);
                }
                pending_zeros = None;
                progress.advance(done, done + 1);
                done += 1;
            }
            Record::Gap { from, count } => {
                if let Some(o) = out.as_mut() {
                    stage.flush(o, serial, backup)?;
                }
                if to_stdout {
                    // The reference writes (and counts) one zero cluster per gap cluster.
                    let n = count as u64;
                    pending_zeros = Some((from + n) * cs);
                    progress.advance(done, done + n);
                    done += n;
                    progress.add_bytes(n * cs);
                }
            }
            Record::End {
                backup_boot_missing,
            } => {
                if let Some(o) = out.as_mut() {
                    stage.flush(o, serial, backup)?;
                    if let Some(z) = pending_zeros {
                        o.fill_to(z)?;
                    }
                }
                if backup_boot_missing {
                    report.out(format_args!(
                        "Warning : no alternate boot sector in image\n"
                    ));
                }
                break;
            }
        }
        map.record(pos_before, rd.consumed());
    }
    if verify {
        finish_verification(opts, report, progress, &mut rd, known.as_deref(), &map)?;
    }
    match out {
        Some(o) => o.sync(report),
        None => Ok(()),
    }
}

/// The reference's `ntfs_size` for a restore: nr_clusters × cluster_size + 512 in signed 64-bit
/// arithmetic. For a negative cluster count this can be negative: the output file is then
/// refused by `ftruncate` (EINVAL), as with the reference.
fn restore_ntfs_size(h: &crate::image::Header) -> u64 {
    h.volume_size().wrapping_add(512) as u64
}

/// The message for an error met while reading a checked image: a damaged chunk names the
/// image bytes and where the restore stopped.
fn checked_error(e: Error, failed: Option<Mismatch>, pos: u64, cs: u64) -> Error {
    let Some(m) = failed else { return e };
    Error::message(format_args!(
        "image checksum mismatch in image bytes {}..{} (0x{:x}..0x{:x}): restore stopped \
         before volume cluster {pos} (byte offset {}); nothing from the damaged part was written",
        m.start,
        m.end,
        m.start,
        m.end,
        pos.saturating_mul(cs)
    ))
}

/// After the last record: compares the checksums with the trailer (the one read first, or the
/// one that follows the last record) and reports.
fn finish_verification(
    opts: &Options,
    report: Report,
    progress: &mut Progress,
    rd: &mut Reader<Input>,
    known: Option<&Trailer>,
    map: &ChunkMap,
) -> Result<()> {
    let data_len = rd.consumed();
    let cs = u64::from(rd.header().cluster_size);
    let last_pos = rd.position();
    if let Input::Ahead(_) | Input::Checked(_) = rd.input() {
        // Every chunk was checked before use.
        if known.is_some_and(|t| t.data_len != data_len) {
            return damaged_trailer(
                opts,
                progress,
                "trailer does not start after the last record",
            );
        }
        return Ok(());
    }
    progress.phase("verify");
    let owned;
    let t = match known {
        Some(t) => t,
        None => match Trailer::parse(rd.read_tail()?) {
            Ok(t) => {
                owned = t;
                &owned
            }
            Err(TrailerProblem::Absent) => {
                // Bytes after the last record that are not a trailer: garbage appended to a
                // reference image (which restores, as with the reference), unless the stream
                // still ends with our trailer's footer: then the records ended early because
                // the image is damaged.
                let tail_len = rd.read_tail()?.len();
                if tail_len > 0 {
                    if let Some(footer) = rd.drain_footer()? {
                        if Trailer::len_from_footer(&footer).is_some() {
                            return Err(Error::message(format_args!(
                                "image is damaged: its records end at image byte {data_len} \
                                 (volume cluster {last_pos}), but its checksum trailer is \
                                 further on; the restored data cannot be trusted"
                            )));
                        }
                    }
                }
                not_verifiable();
                return Ok(());
            }
            Err(TrailerProblem::Damaged(why)) => return damaged_trailer(opts, progress, why),
        },
    };
    if t.data_len != data_len {
        return damaged_trailer(
            opts,
            progress,
            "trailer does not start after the last record",
        );
    }
    match rd.finish_checksums(t) {
        None | Some(Ok(())) => {
            if opts.mode == Mode::TestRestore {
                Report::err(format_args!(
                    "Image checksums: ok ({} bytes in {} chunks verified)\n",
                    data_len,
                    t.crcs.len()
                ));
            }
            Ok(())
        }
        Some(Err(bad)) => {
            let verb = if opts.mode == Mode::TestRestore {
                "would be restored"
            } else {
                "were restored"
            };
            for m in &bad {
                let (a, b) = map.clusters(*m, last_pos);
                report.out(format_args!(
                    "Damaged: image bytes {}..{} (0x{:x}..0x{:x}); volume clusters {a}..{b} \
                     (bytes {}..{}) {verb} from them\n",
                    m.start,
                    m.end,
                    m.start,
                    m.end,
                    a.saturating_mul(cs),
                    b.saturating_add(1).saturating_mul(cs)
                ));
            }
            let m = bad[0];
            let (a, b) = map.clusters(m, last_pos);
            Err(Error::message(format_args!(
                "image checksum mismatch: {} damaged range(s), the first at image byte offset \
                 {} (0x{:x}), volume clusters {a}..{b}",
                bad.len(),
                m.start,
                m.start
            )))
        }
    }
}

/// Adjacent clusters waiting to be written with one write.
struct Stage {
    buf: Vec<u8>,
    /// Volume byte offset of `buf[0]`.
    offset: u64,
}

impl Stage {
    /// True when `len` bytes at `offset` can be appended.
    fn fits(&self, offset: u64, len: usize) -> bool {
        !self.buf.is_empty()
            && self.offset + self.buf.len() as u64 == offset
            && self.buf.len() + len <= self.buf.capacity()
    }

    fn flush(
        &mut self,
        out: &mut RawOut,
        serial: Option<NewSerial>,
        backup: Option<BackupBootSector>,
    ) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(s) = serial {
            s.patch(&mut self.buf, self.offset, backup);
        }
        out.write_at(&self.buf, self.offset)?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}
