//! `-s`: volume → special image (spec §1.3). Byte-identical to the reference's images: the
//! same gap arithmetic (`last_cl` starting at 0), the backup boot record at position
//! nr_clusters (partial when the device ends inside that cluster), and with
//! `--rescue --ignore-fs-check` the "extra" clusters first, followed by a negative gap.
//! `--new-serial` is ignored here, as in the reference (the image keeps the source's serial).
//!
//! Unless `--no-checksum` is given, the integrity trailer ([`crate::image::trailer`]) follows
//! the last record; the reference's restore never reads it. When the reader of a pipe closes it
//! right after the last record (the reference restoring from stdin does), only the trailer is
//! lost: that is a notice, not a failed save.
use super::output;
use super::source::Source;
use crate::copy::{self, Encoding, VolumeReader};
use crate::dev::WriteStream;
use crate::error::Result;
use crate::image::writer::TrailerWrite;
use crate::image::{Header, Writer};
use crate::options::Options;
use crate::progress::Progress;
use crate::report::Report;
use crate::used::Scan;

/// Runs `-s`.
pub fn run(opts: &Options, report: Report, progress: &mut Progress, src: Source) -> Result<()> {
    let path = opts.output.as_deref().unwrap_or("-");
    let (out, kind) = output::open_image(path)?;
    progress.phase("scan");
    let scan = src.scan(opts, report, progress)?;
    let cs64 = u64::from(src.vol.boot.cluster_size);
    output::check_free_space(&out, kind, cs64.saturating_mul(scan.inuse))?;
    let (out, trailer) = write_image(opts, report, progress, &src, &scan, out, !opts.no_checksum)?;
    if trailer == TrailerWrite::ReaderGone {
        progress.warning();
        Report::err(format_args!(
            "NOTICE: the reader closed the pipe after the last record: the image is complete, \
             only its checksum trailer was not delivered\n"
        ));
    }
    report.out(format_args!("Syncing ...\n"));
    match out {
        Some(out) => out.sync(),
        None => Ok(()),
    }
}

/// The special image of a scanned source on `out` ("Saving NTFS to image ..." and the copy),
/// with an integrity trailer when `trailer`. Returns the output (None when the reader closed
/// a pipe after the last record) and how the trailer went.
pub fn write_image<W: WriteStream>(
    opts: &Options,
    report: Report,
    progress: &mut Progress,
    src: &Source,
    scan: &Scan,
    out: W,
    trailer: bool,
) -> Result<(Option<W>, TrailerWrite)> {
    let boot = &src.vol.boot;
    let cs = boot.cluster_size;
    let cs64 = u64::from(cs);
    let nr = boot.nr_clusters;
    report.out(format_args!("Saving NTFS to image ...\n"));

    let header = Header::new(cs, src.device_size, nr, scan.inuse);
    let last_size = header.record_size(nr).unwrap_or(0);
    progress.set_total_bytes(
        scan.inuse
            .saturating_mul(cs64)
            .saturating_add(last_size as u64),
    );
    progress.phase("save");
    // Records are built in place in the pipeline's blocks and written straight from there
    // (`Writer::encoded`); the writer's own buffer only gathers the header and small blocks.
    let mut w = Writer::new(out, &header, 64 << 10)?;
    if trailer {
        w = w.with_trailer(&header);
    }
    let rd = VolumeReader::unbuffered(&src.dev, cs, boot.sector_size, opts.rescue, report);
    progress.start_bar(0, scan.inuse + 1);
    let mut done = 0u64;
    // Extra clusters ($Bitmap says used, no file owns them): only with --rescue and
    // --ignore-fs-check, written first at their real positions, then a gap back to 0.
    let extra = (opts.rescue && opts.ignore_fs_check).then_some(&scan.extra);
    let steps = || copy::save_steps(&scan.used, extra, nr, last_size);
    copy::pipeline(rd, steps, Encoding::Image, copy::block_bytes(cs), |b| {
        w.encoded(b.data())?;
        progress.advance(done, done + b.counted);
        done += b.counted;
        progress.add_bytes(b.data_bytes);
        progress.set_bad_sectors(b.bad_sectors);
        Ok(())
    })?;

    w.finish_with_trailer()
}
