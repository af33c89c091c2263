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
use super::{advance, output, Source};
use crate::cli::Options;
use crate::copy::{chunk_clusters, chunks, VolumeReader};
use crate::dev::fd::Fd;
use crate::error::Result;
use crate::image::writer::TrailerWrite;
use crate::image::{Header, Writer};
use crate::progress::{json, Progress};
use crate::report::Report;

/// Runs `-s`.
pub fn run(opts: &Options, report: Report, src: Source) -> Result<()> {
    let path = opts.output.as_deref().unwrap_or("-");
    let (out, kind) = output::open_image(path)?;
    json::phase("scan");
    let scan = src.scan(opts, report)?;
    let boot = &src.vol.boot;
    let cs = boot.cluster_size;
    let cs64 = u64::from(cs);
    let nr = boot.nr_clusters;
    output::check_free_space(&out, kind, cs64.saturating_mul(scan.inuse))?;
    report.out(format_args!("Saving NTFS to image ...\n"));

    let header = Header::new(cs, src.device_size, nr, scan.inuse);
    let last_size = header.record_size(nr).unwrap_or(0);
    json::set_total(
        scan.inuse
            .saturating_mul(cs64)
            .saturating_add(last_size as u64),
    );
    json::phase("save");
    let mut w = Writer::new(
        out,
        &header,
        crate::copy::CHUNK_BYTES + crate::copy::CHUNK_BYTES / 8,
    )?;
    if !opts.no_checksum {
        w = w.with_trailer(&header);
    }
    let mut rd = VolumeReader::new(&src.dev, cs, boot.sector_size, opts.rescue, report);
    let bar = Progress::new(0, scan.inuse + 1, report);
    let mut done = 0u64;
    let max = chunk_clusters(cs);

    // Extra clusters ($Bitmap says used, no file owns them): only with --rescue and
    // --ignore-fs-check, written first at their real positions, then a gap back to 0.
    if opts.rescue && opts.ignore_fs_check {
        let mut cur = 0u64;
        for (lcn, n) in chunks(scan.extra.runs(), nr, max) {
            if lcn > cur {
                w.gap((lcn - cur) as i64)?;
            }
            let data = rd.read(lcn * cs64, (n * cs64) as usize)?;
            w.clusters(data, cs as usize)?;
            json::advance(n * cs64);
            cur = lcn + n;
        }
        if cur > 0 {
            w.gap(-(cur as i64))?;
        }
    }

    // The reference's gap rule: gap = cl − last_cl − 1 with last_cl starting at 0.
    let mut last_cl = 0u64;
    for (lcn, n) in chunks(scan.used.runs(), nr, max) {
        emit_gap(&mut w, lcn, last_cl)?;
        let data = rd.read(lcn * cs64, (n * cs64) as usize)?;
        w.clusters(data, cs as usize)?;
        last_cl = lcn + n - 1;
        advance(&bar, done, done + n);
        done += n;
        json::advance(n * cs64);
        json::bad_sectors(rd.bad_sectors);
    }
    // Position nr_clusters: the backup boot sector, always saved (10.1).
    emit_gap(&mut w, nr, last_cl)?;
    let data = rd.read(nr * cs64, last_size)?;
    w.cluster(data)?;
    advance(&bar, done, done + 1);
    json::advance(last_size as u64);
    json::bad_sectors(rd.bad_sectors);

    let (out, trailer): (Option<Fd>, _) = w.finish_with_trailer()?;
    if trailer == TrailerWrite::ReaderGone {
        json::warning();
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

/// `CMD_GAP cl − last_cl − 1` when positive (the first cluster compares with last_cl = 0 too,
/// as in the reference; LCN 0 is always used by $Boot, so this never matters).
fn emit_gap<W: crate::dev::WriteStream>(w: &mut Writer<W>, cl: u64, last_cl: u64) -> Result<()> {
    if cl > last_cl + 1 {
        w.gap((cl - last_cl - 1) as i64)?;
    }
    Ok(())
}
