//! `-m` (metadata clone to a file or, with `--force`, a block device) and `-m -s` (metadata
//! image): only the clusters of metadata are copied, with the wipe rules of
//! [`crate::ntfs::wipe`] applied on the bytes, record by record and INDX block by INDX block,
//! through fixed buffers (spec §4).
//!
//! One definition of the result for both: what the reference's `-m -s` followed by its `-r`
//! gives. The reference's direct `-m` remounts the clone read-write and wipes through the
//! file system (side effects, stale timestamps left in unused INDX blocks, and an unwiped
//! clone reported as a success when the remount fails with `--full-logfile`); we never mount
//! anything: the direct clone is the image stream written at its positions instead.
//!
//! The image is written in the reference's order (MFT walk order, negative gaps, some clusters
//! twice), so that our `-m -s` image is the reference's byte for byte where the wipe rules
//! agree; like the reference's, it restores to files and devices, not to stdout.
//!
//! Printed: the source lines, `Scanning volume ...`, `Accounting clusters ...`,
//! `Space in use` (`-m -s`: the reference's metadata count, §1.5; `-m`: clusters in use + 1),
//! a second `Scanning volume ...` with its progress (the wiping pass), the statistics of §4.5,
//! and for `-m` `Syncing ...`. `-m` also prints the reference's remount lines before the
//! second scan (`Syncing ...`, version, cluster size, volume size), with the source's values:
//! it syncs, but there is no remount.
//! The statistics are counted the reference's way: `-m -s` counts the timestamps and resident
//! data of the files twice (its walk, then its record wipes), `-m` once.
//!
//! Damaged metadata, as the reference's `-m -s` treats it (black-box): a torn MFT record is
//! marked "BAAD" and still wiped, a torn INDX block is marked "BAAD" and not wiped, with
//! `ERROR(5|22): Damaged INDX record` messages; its walk stops counting a directory at its
//! first damaged block, and counts nothing of a directory whose `$INDEX_ROOT` is missing or
//! whose `$INDEX_ALLOCATION` is larger than allocated. With `--ignore-fs-check` it accounts
//! the clusters (and reports clusters referenced twice) a second time. The reference's own
//! `-m` differs from its `-m -s` on torn MFT records (its remounted walk cannot open them);
//! ours follows `-m -s`, which wipes them.
use super::image_out::ImageOut;
use super::output::{ntfs_size, open_image, RawOut};
use super::serial::NewSerial;
use super::source::{NtfsMessages, Source};
use crate::copy::{chunk_clusters, VolumeReader, CHUNK_BYTES};
use crate::dev::fd::Fd;
use crate::error::Result;
use crate::image::header::cluster_record_size;
use crate::image::{Header, Writer};
use crate::ntfs::attribute::{Form, AT_BITMAP, AT_DATA, AT_INDEX_ALLOCATION, AT_INDEX_ROOT};
use crate::ntfs::boot_sector::BackupBootSector;
use crate::ntfs::runlist::Run;
use crate::ntfs::volume::{attr_value, extent_runs};
use crate::ntfs::walk::Visit;
use crate::ntfs::wipe::{self, Stats, LAST_SYSTEM_RECORD};
use crate::ntfs::{inode, Volume};
use crate::options::{Mode, Options};
use crate::progress::Progress;
use crate::report::Report;
use crate::used::walk_volume;
use std::prelude::v1::*;

/// The first 16 KiB of `$LogFile` are copied (its two restart pages and more).
const LOGFILE_HEAD_BYTES: u64 = 16384;
/// The largest `$BITMAP:$I30` read to attribute wiped INDX blocks to the walk's statistics.
const MAX_INDEX_BITMAP_BYTES: u64 = 1 << 20;

/// Runs `-m` or `-m -s`.
pub fn run(opts: &Options, report: Report, progress: &mut Progress) -> Result<()> {
    let src = Source::open(opts, report, progress)?;
    let boot = &src.vol.boot;
    let cs = boot.cluster_size;
    let nr = boot.nr_clusters;
    let path = opts.output.as_deref().unwrap_or("-");
    let image = opts.mode == Mode::MetadataImage;
    enum Opened {
        Image(Fd),
        Raw(RawOut),
    }
    let opened = if image {
        Opened::Image(open_image(path)?.0)
    } else {
        Opened::Raw(RawOut::open(
            path,
            opts.overwrite,
            ntfs_size(nr, cs),
            report,
        )?)
    };

    // Pass 1: the walk and the accounting, counting the reference's metadata `inuse`.
    let mut count = 0u64;
    let mut scan = src.scan_with(opts, report, progress, &mut |v| {
        count += metadata_count(&src.vol, v, opts.full_logfile)?;
        Ok(())
    })?;
    let inuse = if image { count } else { scan.inuse + 1 };
    report.space_in_use("Space in use       ", inuse, cs, nr);
    // $BadClus is opened after this line, as in `-s` (black-box: the reference's `-m` and
    // `-m -s` fail there too, `ERROR(2): ntfs_open_inode: ...` for a record 8 not in use).
    if let Some(e) = scan.badclus_error.take() {
        return Err(e);
    }
    if let Opened::Raw(r) = &opened {
        // The reference syncs and remounts its clone here and prints the remounted volume's
        // lines; the values are the source's (compat: test `metadata::generated_volumes_match_real_metadata_image_and_restore`).
        r.sync(report)?;
        report.out(format_args!(
            "NTFS volume version: {}.{}\n",
            src.vol.version.0, src.vol.version.1
        ));
        report.out(format_args!("Cluster size       : {cs} bytes\n"));
        report.size("Current volume size", nr.saturating_mul(u64::from(cs)));
    }

    let target = match opened {
        Opened::Image(fd) => Target::Image(Writer::new(
            ImageOut::new(fd, opts)?,
            &Header::new(cs, src.device_size, nr, count),
            CHUNK_BYTES + CHUNK_BYTES / 8,
        )?),
        Opened::Raw(r) => Target::Raw(r),
    };
    let mut writer = ClusterWriter {
        target,
        cs: u64::from(cs),
        current: 0,
        serial: NewSerial::draw(opts.new_serial),
        backup: boot.backup(),
        report,
    };

    // Pass 2: the wiping copy, in walk order.
    report.out(format_args!("Scanning volume ...\n"));
    let mut wiping = WipingCopy {
        dev: &src.dev,
        rd: VolumeReader::new(&src.dev, cs, boot.sector_size, opts.rescue, report),
        w: Wiper {
            vol: &src.vol,
            keep_times: opts.preserve_timestamps,
            image,
            walk: Stats::default(),
            copy: Stats::default(),
            mirror: Stats::default(),
            used_records: 0,
            file: None,
            dir: DirState::default(),
        },
        full_logfile: opts.full_logfile,
        asm: Vec::new(),
        segs: Vec::new(),
        report,
    };
    let mut messages = NtfsMessages::new(report, progress);
    // With --ignore-fs-check the reference's second walk reports the clusters referenced
    // twice again (black-box, corrupted volume mft-parent-ref-corrupted-cluster-dup), from a
    // fresh map (positions from nr_clusters on preset, as in the first walk).
    let mut seen = opts.ignore_fs_check.then(|| {
        let len = scan.used.len();
        let mut m = crate::used::UsedMap::new(len);
        m.set_range(nr, len.saturating_sub(nr), true);
        m
    });
    walk_volume(&src.vol, &src.dev, &mut messages, &mut |v, _| {
        if let Some(m) = seen.as_mut() {
            crate::used::for_each_run(&src.vol, v, &mut |lcn, len| {
                let end = lcn.saturating_add(len).min(m.len());
                let mut pos = lcn.min(end);
                while let Some(dup) = m.next_set(pos, end) {
                    report.out(format_args!("Cluster {dup} is referenced twice!\n"));
                    pos = dup + 1;
                }
                m.set_range(lcn.min(end), end - lcn.min(end), true);
                Ok(())
            })?;
        }
        wiping.visit(v, &mut writer)
    })?;
    wiping.w.flush_messages(report);

    // With --ignore-fs-check the reference's metadata image accounts the clusters a second
    // time at the end of its walk, printing "Accounting clusters ..." and the mismatches again
    // (black-box; its -m does not: it copied the extra clusters in its first pass).
    if image && opts.ignore_fs_check {
        report.out(format_args!("Accounting clusters ...\n"));
        crate::used::compare_bitmaps(&src.vol, &src.dev, &scan.used, true, &mut messages)?;
    }
    // "Extra" clusters ($Bitmap says used, no file owns them), as the reference copies them
    // with --ignore-fs-check: from position 0, then back to 0. The image rewinds to 0 even
    // when there are none (black-box: `G -current, G +nr_clusters` before the backup boot).
    if opts.ignore_fs_check {
        writer.rewind()?;
        for (lcn, n) in crate::copy::chunks(scan.extra.runs(), nr, chunk_clusters(cs)) {
            let data = wiping.rd.read(lcn * writer.cs, (n * writer.cs) as usize)?;
            writer.clusters(lcn, data)?;
        }
        writer.rewind()?;
    }
    // Position nr_clusters: the backup boot sector (possibly a partial cluster).
    let size = cluster_record_size(cs, src.device_size, nr).unwrap_or(0);
    let data = wiping.rd.read(nr * writer.cs, size)?;
    writer.record(nr, data)?;

    let Wiper {
        walk,
        copy,
        mirror,
        used_records,
        ..
    } = wiping.w;
    // The reference's -m -s counts the files' timestamps and resident data twice (its walk,
    // then its record wipes) and the $MFTMirr records too; its -m counts the walk only.
    let mut shown = walk;
    shown.unused_mft = copy.unused_mft;
    shown.deleted_mft = copy.deleted_mft;
    if image {
        shown.timestamps += copy.timestamps;
        shown.resident_data += copy.resident_data;
        shown.add(&mirror);
    }
    let stat = |label: &str, n: u64| report.out(format_args!("{label} = {n:>10}\n"));
    stat("Num of MFT records      ", src.vol.mft_records);
    stat("Num of used MFT records ", used_records);
    stat("Wiped unused MFT data   ", shown.unused_mft);
    stat("Wiped deleted MFT data  ", shown.deleted_mft);
    stat("Wiped resident user data", shown.resident_data);
    stat("Wiped timestamp data    ", shown.timestamps);
    stat("Wiped totally           ", shown.total());

    match writer.target {
        Target::Image(w) => {
            // The reference closes a metadata image without "Syncing ..."; we still fsync.
            let fd = w.finish()?.finish()?;
            fd.sync()
        }
        Target::Raw(r) => r.sync(report),
    }
}

/// The reference's pass-1 count for one attribute (§1.5): all clusters of the system files'
/// attributes and of every non-`$DATA` attribute; of `$LogFile:$DATA`, for each run, the
/// first run's length capped at the head (16 KiB, or all with `--full-logfile`), as the
/// reference counts, plus one per sample. Only the header's `inuse` and `Space in use`
/// depend on it.
fn metadata_count(vol: &Volume, v: &Visit, full_logfile: bool) -> Result<u64> {
    let a = v.attr;
    if !a.is_non_resident() || !is_critical(v) {
        return Ok(0);
    }
    let cs = u64::from(vol.boot.cluster_size);
    let mut runs = Vec::new();
    extent_runs(a, vol.boot.cluster_size, &mut runs)?;
    let real = runs.iter().filter(|r| r.lcn.is_some());
    if v.inode == inode::LOGFILE && a.type_code == AT_DATA {
        let head = if full_logfile {
            u64::MAX
        } else {
            LOGFILE_HEAD_BYTES.div_ceil(cs)
        };
        // Every run counts as the first one, capped at the head (black-box: a runlist of
        // 2+1+509 clusters counts 2+2+2, one of 64+1+447 with --full-logfile 64+64+64).
        let first = runs.first().map_or(0, |r| r.len.min(head));
        let mut n: u64 = real.map(|_| first).sum();
        if a.lowest_vcn() == 0 {
            n += logfile_samples(&runs, cs).count() as u64;
        }
        return Ok(n);
    }
    Ok(real.map(|r| r.len).sum())
}

/// Is this non-resident attribute copied at all? `$DATA` of files above 11 is not, nor
/// `$BadClus:$DATA` (its runs are the bad clusters).
fn is_critical(v: &Visit) -> bool {
    let ty = v.attr.type_code;
    !(ty == AT_DATA && (v.inode > LAST_SYSTEM_RECORD || v.inode == inode::BADCLUS))
}

/// The `$LogFile` samples: the clusters holding byte offsets 0, 256, 512, 1 KiB, … while the
/// offset is mapped, as `(vcn, lcn)`.
fn logfile_samples(runs: &[Run], cs: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut off = Some(0u64);
    core::iter::from_fn(move || {
        let o = off?;
        let vcn = o / cs;
        let lcn = lcn_of(runs, vcn);
        off = if lcn.is_none() {
            None
        } else if o == 0 {
            Some(256)
        } else {
            o.checked_mul(2)
        };
        lcn.map(|l| (vcn, l))
    })
}

/// The LCN of `vcn` in `runs`, if mapped to clusters.
fn lcn_of(runs: &[Run], vcn: u64) -> Option<u64> {
    runs.iter()
        .find(|r| r.vcn <= vcn && vcn < r.vcn + r.len)
        .and_then(|r| r.lcn.map(|l| l + (vcn - r.vcn)))
}

/// Where the copied clusters go (one per run: the size difference does not matter).
#[allow(clippy::large_enum_variant)]
enum Target {
    Image(Writer<ImageOut>),
    Raw(RawOut),
}

/// Writes clusters at their LCNs: image records relative to the current position (the
/// reference's `current_lcn`), or positioned writes.
struct ClusterWriter {
    target: Target,
    cs: u64,
    /// The position after the last cluster written.
    current: u64,
    /// `--new-serial`/`--new-half-serial`.
    serial: Option<NewSerial>,
    backup: Option<BackupBootSector>,
    report: Report,
}

impl ClusterWriter {
    /// Writes `data` (whole clusters) at cluster `lcn`.
    fn clusters(&mut self, lcn: u64, data: &mut [u8]) -> Result<()> {
        let offset = lcn * self.cs;
        if let Some(s) = self.serial {
            if s.patch(data, offset, self.backup) {
                self.report
                    .out(format_args!("New serial number      : 0x{:x}\n", s.serial));
            }
        }
        let n = (data.len() as u64).div_ceil(self.cs);
        match &mut self.target {
            Target::Image(w) => {
                if lcn != self.current {
                    w.gap(lcn as i64 - self.current as i64)?;
                }
                w.clusters(data, self.cs as usize)?;
            }
            Target::Raw(r) => r.write_at(data, offset)?,
        }
        self.current = lcn + n;
        Ok(())
    }

    /// Writes the last record (the backup boot sector, `data` possibly shorter than a cluster).
    fn record(&mut self, pos: u64, data: &mut [u8]) -> Result<()> {
        if let Some(s) = self.serial {
            s.patch(data, pos * self.cs, self.backup);
        }
        match &mut self.target {
            Target::Image(w) => {
                if pos != self.current {
                    w.gap(pos as i64 - self.current as i64)?;
                }
                w.cluster(data)?;
            }
            Target::Raw(r) => r.write_at(data, pos * self.cs)?,
        }
        self.current = pos + 1;
        Ok(())
    }

    /// Back to position 0 (a negative gap in an image).
    fn rewind(&mut self) -> Result<()> {
        if let Target::Image(w) = &mut self.target {
            if self.current != 0 {
                w.gap(-(self.current as i64))?;
            }
        }
        self.current = 0;
        Ok(())
    }
}

/// What is known of the directory being walked: its index block size (from `$INDEX_ROOT`)
/// and the timestamps wiped per INDX block (for the walk's statistics, which count only the
/// blocks its `$BITMAP:$I30` marks in use).
#[derive(Default)]
struct DirState {
    block_size: Option<u32>,
    /// Per block: the timestamps wiped, or the message of a damaged block.
    block_times: Vec<core::result::Result<u64, &'static str>>,
    /// The copy's messages for damaged blocks, printed after the walk's (the reference's
    /// order: its walk of the directory reports before its copy does).
    pending: Vec<&'static str>,
    /// The reference's walk could not read the directory's index allocation: its message,
    /// and nothing of the directory is counted.
    walk_error: Option<WalkError>,
}

/// Why the reference's walk could not count a directory's INDX blocks.
#[derive(Clone, Copy)]
enum WalkError {
    /// `$INDEX_ALLOCATION` data or initialized size above its allocated size.
    Unreadable,
    /// No `$INDEX_ROOT` (this inode).
    NoRoot(u64),
}

impl WalkError {
    fn print(self, report: Report) {
        match self {
            WalkError::Unreadable => report.out(format_args!("{UNREADABLE_INDEX_ALLOCATION}")),
            WalkError::NoRoot(ino) => report.out(format_args!(
                "ERROR(2): Failed to read $INDEX_ROOT attribute of inode {ino}: No such file or directory\n"
            )),
        }
    }
}

/// What the reference prints (to its message stream) for a damaged INDX block, torn (EIO) or
/// with a broken update sequence array (EINVAL): once when its copy meets the block (`-m -s`),
/// once when its walk does (both modes).
const DAMAGED_INDX_TORN: &str = "ERROR(5): Damaged INDX record: Input/output error\n";
const DAMAGED_INDX_ARRAY: &str = "ERROR(22): Damaged INDX record: Invalid argument\n";
/// What the reference's walk prints for an `$INDEX_ALLOCATION` whose data or initialized size
/// is larger than its allocated size (black-box, corrupted test volume 32); the copy is not
/// affected.
const UNREADABLE_INDEX_ALLOCATION: &str =
    "ERROR(5): Failed to read $INDEX_ALLOCATION attribute: Input/output error\n";

/// The wipe rules' side of the pass: options, counters, the directory being walked.
struct Wiper<'a> {
    vol: &'a Volume,
    keep_times: bool,
    /// `-m -s` (the reference's image prints more messages).
    image: bool,
    /// What the reference's walk counts (its in-place wipes of each file).
    walk: Stats,
    /// What the record and block wipes count.
    copy: Stats,
    /// What the $MFTMirr record wipes count.
    mirror: Stats,
    used_records: u64,
    /// The file being walked.
    file: Option<u64>,
    dir: DirState,
}

/// The state of the wiping pass (the copy in walk order).
struct WipingCopy<'a> {
    dev: &'a Fd,
    rd: VolumeReader<'a, Fd>,
    w: Wiper<'a>,
    full_logfile: bool,
    /// A record or block spread over clusters that are not adjacent on disk.
    asm: Vec<u8>,
    segs: Vec<(u64, u64, usize)>,
    report: Report,
}

/// The kind of unit [`WipingCopy::copy_wipe`] wipes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// MFT records (of `$MFT` or `$MFTMirr`), numbered from the start of the attribute.
    Mft,
    /// INDX blocks of a directory index, of this size.
    Indx(u32),
}

impl Wiper<'_> {
    fn unit_bytes(&self, unit: Unit) -> usize {
        match unit {
            Unit::Mft => self.vol.record_size(),
            Unit::Indx(bs) => bs as usize,
        }
    }

    /// Adds the walk's count of the INDX blocks that `bits` marks in use. The reference's
    /// walk stops at the first torn block in use (black-box: the counts of that block and of
    /// the later ones are missing, its message is printed once).
    fn count_used_blocks(&mut self, bits: &[u8], report: Report) {
        if let Some(e) = self.dir.walk_error.take() {
            e.print(report);
            self.dir.block_times.clear();
        }
        for (i, &t) in self.dir.block_times.iter().enumerate() {
            if bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 != 0) {
                match t {
                    Ok(t) => self.walk.timestamps += t,
                    Err(msg) => {
                        report.out(format_args!("{msg}"));
                        break;
                    }
                }
            }
        }
        self.dir.block_times.clear();
        self.flush_messages(report);
    }

    /// Prints the messages held for the directory.
    fn flush_messages(&mut self, report: Report) {
        if let Some(e) = self.dir.walk_error.take() {
            e.print(report);
        }
        for msg in self.dir.pending.drain(..) {
            report.out(format_args!("{msg}"));
        }
    }

    /// Wipes one set of whole units in `buf`, the first being unit number `first`.
    fn wipe_set(&mut self, buf: &mut [u8], unit: Unit, first: u64, in_mft: bool) {
        let ub = self.unit_bytes(unit);
        for (k, u) in buf.chunks_exact_mut(ub).enumerate() {
            let no = first + k as u64;
            match unit {
                Unit::Mft => {
                    let mut s = Stats::default();
                    wipe::wipe_mft_record(u, no, self.keep_times, &mut s);
                    if in_mft {
                        self.copy.add(&s);
                    } else {
                        // $MFTMirr: counted too (the reference's numbers, verified with
                        // 64 KiB clusters, where the mirror holds 64 records).
                        self.mirror.add(&s);
                    }
                }
                Unit::Indx(bs) => {
                    let before = self.copy.timestamps;
                    let outcome = wipe::wipe_indx_block(u, bs, self.keep_times, &mut self.copy);
                    let damaged = match outcome {
                        wipe::Outcome::Torn => Some(DAMAGED_INDX_TORN),
                        wipe::Outcome::BadFixup => Some(DAMAGED_INDX_ARRAY),
                        _ => None,
                    };
                    let t = match damaged {
                        Some(msg) => {
                            if self.image {
                                self.dir.pending.push(msg);
                            }
                            Err(msg)
                        }
                        None => Ok(self.copy.timestamps - before),
                    };
                    let idx = no as usize;
                    if self.dir.block_times.len() <= idx {
                        self.dir.block_times.resize(idx + 1, Ok(0));
                    }
                    self.dir.block_times[idx] = t;
                }
            }
        }
    }
}

impl WipingCopy<'_> {
    fn visit(&mut self, v: &Visit, writer: &mut ClusterWriter) -> Result<()> {
        let a = v.attr;
        if self.w.file != Some(v.inode) {
            // A new file: the reference counts the in-use base records its walk opens.
            self.w.file = Some(v.inode);
            self.w.used_records += 1;
            self.w.flush_messages(self.report);
            self.w.dir = DirState::default();
        }
        let Form::NonResident { lowest_vcn, .. } = a.form else {
            if let Some(value) = a.value() {
                wipe::count_attr(
                    a.type_code,
                    a.name_is("$Q"),
                    value,
                    v.inode,
                    self.w.keep_times,
                    &mut self.w.walk,
                );
                if a.type_code == AT_INDEX_ROOT && a.name_is("$I30") {
                    self.w.dir.block_size = wipe::index_block_size(value);
                }
                if a.type_code == AT_BITMAP && a.name_is("$I30") {
                    self.w.count_used_blocks(value, self.report);
                }
            }
            return Ok(());
        };
        let cs = self.w.vol.boot.cluster_size;
        if a.type_code == AT_BITMAP && a.name_is("$I30") {
            if let Ok(bits) = attr_value(self.dev, cs, a, MAX_INDEX_BITMAP_BYTES) {
                self.w.count_used_blocks(&bits, self.report);
            }
        }
        if !is_critical(v) {
            return Ok(());
        }
        let mut runs = Vec::new();
        extent_runs(a, cs, &mut runs)?;
        let ty = a.type_code;
        let unnamed_data = ty == AT_DATA && a.name.is_empty();
        if (v.inode == inode::MFT || v.inode == inode::MFTMIRR) && unnamed_data {
            if lowest_vcn != 0 {
                return Ok(()); // copied with the first extent, over the whole runlist
            }
            if v.inode == inode::MFT {
                runs = self.w.vol.mft_runs.clone();
            }
            let in_mft = v.inode == inode::MFT;
            return self.copy_wipe(&runs, Unit::Mft, in_mft, writer);
        }
        if v.inode == inode::LOGFILE && unnamed_data {
            return self.logfile(&runs, lowest_vcn == 0, writer);
        }
        if ty == AT_INDEX_ALLOCATION && a.name_is("$I30") {
            if let Form::NonResident {
                lowest_vcn: 0,
                allocated_size,
                data_size,
                initialized_size,
                ..
            } = a.form
            {
                let bad = data_size > allocated_size || initialized_size > allocated_size;
                if bad && !self.w.keep_times {
                    self.w.dir.walk_error = Some(WalkError::Unreadable);
                }
            }
            // Without an $INDEX_ROOT the reference's walk reports it (not with -t, when it does
            // not look at INDX blocks) and counts nothing, but
            // its copy still wipes the blocks, as blocks of the volume's index record size
            // (black-box, corrupted volume "dir-missing-index-root").
            let bs = match self.w.dir.block_size {
                Some(bs) => Some(bs),
                None => {
                    if !self.w.keep_times {
                        self.w.dir.walk_error = Some(WalkError::NoRoot(v.inode));
                    }
                    Some(self.w.vol.boot.index_record_size)
                }
            };
            if let Some(bs) = bs.filter(|b| b.is_power_of_two() && *b >= 512) {
                return self.copy_wipe(&runs, Unit::Indx(bs), false, writer);
            }
        }
        self.dump(&runs, writer)
    }

    /// Copies runs as they are.
    fn dump(&mut self, runs: &[Run], writer: &mut ClusterWriter) -> Result<()> {
        let max = chunk_clusters(self.w.vol.boot.cluster_size);
        for r in runs {
            let Some(lcn) = r.lcn else { continue };
            let mut i = 0;
            while i < r.len {
                let n = (r.len - i).min(max);
                let data = self
                    .rd
                    .read((lcn + i) * writer.cs, (n * writer.cs) as usize)?;
                writer.clusters(lcn + i, data)?;
                i += n;
            }
        }
        Ok(())
    }

    /// `$LogFile`: its first 16 KiB, then the sampled clusters (re-emitted when not right
    /// after the previous one, like the reference).
    fn logfile(
        &mut self,
        runs: &[Run],
        first_extent: bool,
        writer: &mut ClusterWriter,
    ) -> Result<()> {
        let cs = writer.cs;
        // With --full-logfile all of it, and the samples all the same (the reference's stream).
        let head = if self.full_logfile {
            u64::MAX
        } else {
            LOGFILE_HEAD_BYTES.div_ceil(cs)
        };
        let mut head_runs = Vec::new();
        for r in runs.iter().filter(|r| r.vcn < head) {
            head_runs.push(Run {
                len: r.len.min(head.saturating_sub(r.vcn)),
                ..*r
            });
        }
        self.dump(&head_runs, writer)?;
        if !first_extent {
            return Ok(());
        }
        for (_, lcn) in logfile_samples(runs, cs) {
            if lcn + 1 != writer.current {
                let data = self.rd.read(lcn * cs, cs as usize)?;
                writer.clusters(lcn, data)?;
            }
        }
        Ok(())
    }

    /// Copies runs of `$MFT`/`$MFTMirr` or of a directory index, wiping every unit. Units
    /// are taken in sets of max(cluster, unit) bytes; a set whose clusters are not adjacent
    /// on disk is assembled in a small buffer, the others are wiped in the read buffer.
    fn copy_wipe(
        &mut self,
        runs: &[Run],
        unit: Unit,
        in_mft: bool,
        writer: &mut ClusterWriter,
    ) -> Result<()> {
        let cs = writer.cs;
        let unit_bytes = self.w.unit_bytes(unit) as u64;
        let set = unit_bytes.max(cs);
        let spc = set / cs; // clusters per set
        let max = (chunk_clusters(self.w.vol.boot.cluster_size) / spc).max(1) * spc;
        self.asm.clear();
        self.asm.resize(set as usize, 0);
        self.segs.clear();
        let mut filled = 0u64; // clusters in the assembler
        let mut set_vcn = 0u64;
        for r in runs {
            let Some(lcn) = r.lcn else {
                self.flush_short(unit, writer)?;
                filled = 0;
                continue;
            };
            let mut i = 0;
            while i < r.len {
                let vcn = r.vcn + i;
                if filled == 0 && vcn % spc == 0 && r.len - i >= spc {
                    let n = ((r.len - i).min(max) / spc) * spc;
                    let data = self.rd.read((lcn + i) * cs, (n * cs) as usize)?;
                    let first = vcn * cs / unit_bytes;
                    self.w.wipe_set(data, unit, first, in_mft);
                    writer.clusters(lcn + i, data)?;
                    i += n;
                    continue;
                }
                if filled == 0 {
                    set_vcn = vcn;
                }
                let take = (r.len - i).min(spc - filled);
                let at = (filled * cs) as usize;
                let data = self.rd.read((lcn + i) * cs, (take * cs) as usize)?;
                self.asm[at..at + data.len()].copy_from_slice(data);
                self.segs.push((lcn + i, take, at));
                filled += take;
                i += take;
                if filled == spc {
                    let first = set_vcn * cs / unit_bytes;
                    self.w.wipe_set(&mut self.asm, unit, first, in_mft);
                    for &(l, n, at) in &self.segs {
                        writer.clusters(l, &mut self.asm[at..at + (n * cs) as usize])?;
                    }
                    self.segs.clear();
                    filled = 0;
                }
            }
        }
        self.flush_short(unit, writer)
    }

    /// A set left incomplete at the end of a runlist: the reference's message, and the
    /// clusters copied as they are (they hold no complete record or block).
    fn flush_short(&mut self, unit: Unit, writer: &mut ClusterWriter) -> Result<()> {
        if self.segs.is_empty() {
            return Ok(());
        }
        self.report.out(format_args!(
            "{}",
            match unit {
                Unit::Mft => "Short last MFT record\n",
                Unit::Indx(_) => "Short last directory index record\n",
            }
        ));
        for &(l, n, at) in &self.segs {
            writer.clusters(l, &mut self.asm[at..at + (n * writer.cs) as usize])?;
        }
        self.segs.clear();
        Ok(())
    }
}
