//! Raw clone (`-o`/`-O` without `-s`/`-r`): used clusters copied to the same byte offsets of
//! a sparse file, a block device (unused clusters untouched) or stdout (unused clusters
//! written as zeros). Files and devices use `copy_file_range` in large chunks when nothing
//! has to look at the bytes, and read/write through one buffer otherwise.
use super::output::{ntfs_size, RawOut};
use super::serial::NewSerial;
use super::source::Source;
use crate::copy::{self, chunks, merge_runs, Encoding, ReadVectoredAt, VolumeReader};
use crate::dev::fd::Fd;
use crate::error::Result;
use crate::image::header::cluster_record_size;
use crate::options::Options;
use crate::progress::Progress;
use crate::report::Report;
use rustix::io::Errno;
use std::prelude::v1::*;

/// Runs the raw clone.
pub fn run(opts: &Options, report: Report, progress: &mut Progress, src: Source) -> Result<()> {
    let boot = &src.vol.boot;
    let cs = boot.cluster_size;
    let cs64 = u64::from(cs);
    let nr = boot.nr_clusters;
    let path = opts.output.as_deref().unwrap_or("-");
    let mut out = RawOut::open(path, opts.overwrite, ntfs_size(nr, cs), report)?;
    progress.phase("scan");
    let scan = src.scan(opts, report, progress)?;
    if out.kind == crate::dev::fd::Kind::File {
        super::output::check_free_space(&out.fd, out.kind, cs64.saturating_mul(scan.inuse))?;
    }
    report.out(format_args!("Cloning NTFS ...\n"));
    // JSON progress (--progress-fd): cluster bytes of the whole clone.
    let json_total = scan
        .inuse
        .saturating_mul(cs64)
        .saturating_add(cluster_record_size(cs, src.device_size, nr).unwrap_or(0) as u64);
    progress.set_total_bytes(json_total);
    progress.phase("clone");

    let serial = NewSerial::draw(opts.new_serial);
    let backup = boot.backup();
    let stream = out.is_stream();
    progress.start_bar(0, if stream { nr + 1 } else { scan.inuse + 1 });
    let mut done = 0u64;
    let size = cluster_record_size(cs, src.device_size, nr).unwrap_or(0);

    // "Extra" clusters are copied only with --rescue --ignore-fs-check; merged into the used
    // runs so that a stdout stream stays in order (compat: test `merging`).
    let extra = opts.rescue && opts.ignore_fs_check;
    let runs = || -> Box<dyn Iterator<Item = (u64, u64)> + Send + '_> {
        let used = scan.used.runs();
        if extra {
            Box::new(merge_runs(used, scan.extra.runs()))
        } else {
            Box::new(used)
        }
    };

    // Files and devices: in-kernel copies (copy_file_range) of chunks of the runs, by this
    // thread, while a prefetch thread keeps the kernel reading ahead on a cold disk. One
    // copying thread only: two writers of the same file serialise on its inode lock and spin
    // on it (measured: 3x the wall time, 6x the CPU on tmpfs). Chunks the kernel cannot copy
    // (no support between these two, a read error, a serial number to patch) are left to the
    // pipeline.
    let mut left: Option<Vec<(u64, u64)>> = None;
    if !stream && !opts.rescue {
        let touches_serial = |offset: u64, len: u64| {
            serial.is_some()
                && (offset == 0
                    || backup.is_some_and(|b| b.offset >= offset && b.offset < offset + len))
        };
        let kernel_chunks = || chunks(runs(), nr, (KERNEL_CHUNK / cs64).max(1));
        let ranges = src
            .dev
            .prefetches()
            .then(|| kernel_chunks().map(|(lcn, n)| (lcn * cs64, n * cs64)));
        let mut rest = Vec::new();
        copy::with_prefetch(&src.dev, ranges, |ahead| {
            let mut next = kernel_chunks();
            while let Some((lcn, n)) = next.next() {
                let (offset, len) = (lcn * cs64, n * cs64);
                let ok = !touches_serial(offset, len)
                    && match copy_in_kernel(&src.dev, &out.fd, offset, len) {
                        Ok(true) => true,
                        Ok(false) => {
                            rest.push((lcn, n));
                            rest.extend(next); // not supported here: everything else too
                            break;
                        }
                        Err(_) => false, // EIO and friends: the pipeline reports them properly
                    };
                ahead.consumed(len);
                if ok {
                    let to = done + n;
                    progress.add_bytes(len);
                    progress.advance(done, to);
                    done = to;
                } else {
                    rest.push((lcn, n));
                }
            }
        });
        left = Some(rest);
    }

    // Everything else (stdout, --rescue, what the kernel did not copy, and the backup boot
    // sector position): read by the pipeline's thread, written here.
    let rd = VolumeReader::unbuffered(&src.dev, cs, boot.sector_size, opts.rescue, report);
    let todo = || -> Box<dyn Iterator<Item = (u64, u64)> + Send + '_> {
        match &left {
            Some(v) => Box::new(v.iter().copied()),
            None => runs(),
        }
    };
    let steps = || copy::raw_steps(todo(), 0, nr, size);
    copy::pipeline(rd, steps, Encoding::Raw, copy::block_bytes(cs), |b| {
        let offset = b.offset;
        if let Some(s) = serial {
            if s.patch(b.data_mut(), offset, backup) {
                report.out(format_args!("New serial number      : 0x{:x}\n", s.serial));
            }
        }
        out.write_at(b.data(), offset)?;
        let to = if stream { b.lcn_end } else { done + b.counted };
        progress.advance(done, to);
        done = to;
        progress.add_bytes(b.data_bytes);
        progress.set_bad_sectors(b.bad_sectors);
        Ok(())
    })?;
    out.sync(report)
}

/// Bytes per in-kernel copy call (progress is reported between calls).
const KERNEL_CHUNK: u64 = 16 << 20;

/// Copies `len` bytes at `offset` from `src` to the same offset of `dst` in the kernel.
/// `Ok(false)`: not supported between these two (fall back, nothing was written that matters).
fn copy_in_kernel(src: &Fd, dst: &Fd, offset: u64, len: u64) -> core::result::Result<bool, Errno> {
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        match src.copy_range(offset + done, dst, offset + done, want) {
            Ok(0) => return Ok(false),
            Ok(n) => done += n as u64,
            Err(
                Errno::XDEV
                | Errno::INVAL
                | Errno::NOSYS
                | Errno::OPNOTSUPP
                | Errno::BADF
                | Errno::PERM,
            ) if done == 0 => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
