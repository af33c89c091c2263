//! `-r` (and `-r -n`): special image → sparse file, block device or stdout (spec §1.4).
//!
//! The image is read sequentially through the reader's large buffer (stdin and pipes work);
//! adjacent clusters are gathered into one staging buffer and written with one positioned
//! write; gaps leave holes (files), untouched blocks (devices) or zeros (stdout).
use super::output::{ntfs_size, RawOut};
use super::{advance, backup_boot_offset, new_serial, patch_serials, print_size, print_usage};
use crate::cli::Options;
use crate::copy::CHUNK_BYTES;
use crate::dev::fd::Fd;
use crate::error::{Error, Result};
use crate::image::{Reader, Record};
use crate::progress::Progress;
use crate::report::Report;
use std::prelude::v1::*;

/// Runs `-r`.
pub fn run(opts: &Options, report: Report) -> Result<()> {
    let input = if opts.source == "-" {
        Fd::stdin()
    } else {
        Fd::open_read(&opts.source).map_err(|e| Error::Os {
            what: crate::text!("failed to open image"),
            errno: e.raw_os_error(),
        })?
    };
    let base = input.tell();
    let to_stdout = opts.output.as_deref() == Some("-");
    let mut rd = Reader::open(input, base, CHUNK_BYTES + CHUNK_BYTES / 8, to_stdout)?;
    let h = *rd.header();
    let cs = u64::from(h.cluster_size);
    let mut out = match (&opts.output, opts.no_action) {
        (Some(path), false) => Some(RawOut::open(
            path,
            opts.overwrite,
            ntfs_size(h.nr_clusters, h.cluster_size),
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
    print_size(report, "Image volume size      ", h.volume_size());
    report.out(format_args!(
        "Image device size      : {} bytes\n",
        h.device_size
    ));
    print_usage(
        report,
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

    let serial = (opts.new_serial != 0 && out.is_some()).then(new_serial);
    let mut backup = None;
    let bar = Progress::new(
        0,
        if to_stdout {
            h.nr_clusters + 1
        } else {
            h.inuse + 1
        },
        report,
    );
    let mut done = 0u64;
    let mut stage = Stage {
        buf: Vec::with_capacity(CHUNK_BYTES.max(h.cluster_size as usize)),
        offset: 0,
    };
    // A stdout stream must also get the zeros of a gap that ends the image (version 10.0).
    let mut pending_zeros: Option<u64> = None;
    loop {
        let rec = match rd.next_record() {
            Ok(r) => r,
            Err(e) => {
                // Like the reference, leave what was restored so far on the output.
                if let Some(o) = out.as_mut() {
                    let _ = stage.flush(o, serial, opts.new_serial, backup);
                }
                return Err(e);
            }
        };
        match rec {
            Record::Cluster { pos, data } => {
                let offset = pos * cs;
                if let (0, Some(s)) = (pos, serial) {
                    backup = backup_boot_offset(data);
                    report.out(format_args!("New serial number      : 0x{s:x}\n"));
                }
                if let Some(o) = out.as_mut() {
                    if !stage.fits(offset, data.len()) {
                        stage.flush(o, serial, opts.new_serial, backup)?;
                        stage.offset = offset;
                        // Zeros of a preceding gap on stdout, even before an empty record.
                        o.fill_to(offset)?;
                    }
                    stage.buf.extend_from_slice(data);
                }
                pending_zeros = None;
                advance(&bar, done, done + 1);
                done += 1;
            }
            Record::Gap { from, count } => {
                if let Some(o) = out.as_mut() {
                    stage.flush(o, serial, opts.new_serial, backup)?;
                }
                if to_stdout {
                    // The reference writes (and counts) one zero cluster per gap cluster.
                    let n = count as u64;
                    pending_zeros = Some((from + n) * cs);
                    advance(&bar, done, done + n);
                    done += n;
                }
            }
            Record::End {
                backup_boot_missing,
            } => {
                if let Some(o) = out.as_mut() {
                    stage.flush(o, serial, opts.new_serial, backup)?;
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
    }
    match out {
        Some(o) => o.sync(report),
        None => Ok(()),
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
        serial: Option<u64>,
        mode: u8,
        backup: Option<(u64, usize)>,
    ) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(s) = serial {
            patch_serials(&mut self.buf, self.offset, mode, s, backup);
        }
        out.write_at(&self.buf, self.offset)?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}
