//! Walking the attributes of one file (a base MFT record plus its extension records), in the
//! order the reference's `ntfs_attrs_walk` gives them: the base record's attributes, or, with
//! an `$ATTRIBUTE_LIST`, the list itself followed by every attribute the list names.
//!
//! Made for reuse: the used-cluster scan and the metadata mode both visit
//! `(inode, record, attribute)` triples through [`walk_attrs`], and every file of the volume
//! through [`walk_volume`].
// `Error` is a fixed-size value by design (errors never allocate).
#![allow(clippy::result_large_err)]
use super::attr_list::EntryIter;
use super::attribute::{Attr, AttrIter, AT_ATTRIBUTE_LIST, AT_STANDARD_INFORMATION};
use super::diag::Diagnostics;
use super::volume::{attr_value_whole, extent_runs, RecordRead, Volume, MAX_ATTR_LIST_BYTES};
use crate::dev::ReadAt;
use crate::error::Result;
use std::prelude::v1::*;

/// Smallest $STANDARD_INFORMATION value the reference accepts (the NTFS 1.2 layout: four
/// times and the file attributes, 48 bytes).
const SI_MIN_VALUE_BYTES: u32 = 48;

/// One attribute met by the walk.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    /// The file (base record number).
    pub inode: u64,
    /// The record holding this attribute (the base or an extension record).
    pub record: u64,
    /// The attribute.
    pub attr: &'a Attr<'a>,
}

/// Why a file was skipped before any of its attributes were visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// An attribute header of the base record is corrupt (`ntfs_attr_find: Corrupt inode`).
    Corrupt,
    /// No $STANDARD_INFORMATION.
    NoStandardInformation,
    /// The inode opened, but an attribute header after the ones the open looks at is
    /// corrupt: the attributes before it were visited, then the walk stopped with
    /// `ntfs_attr_find: Corrupt inode`.
    CorruptAfter,
    /// The attribute list cannot be read or has a malformed entry.
    CorruptList,
}

/// Reusable buffers for [`walk_attrs`]: extension records are read into `ext`.
#[derive(Debug, Default)]
pub struct Scratch {
    ext: Vec<u8>,
}

/// Visits every attribute of the in-use base record `base` (record `inode`, fixed up).
/// Returns `Ok(Err(skipped))` when the reference's inode open would fail with EIO (the lines
/// it prints went to `diag.warn`); `f`'s errors are passed up.
pub fn walk_attrs<D: ReadAt + ?Sized>(
    vol: &Volume,
    dev: &D,
    inode: u64,
    base: &[u8],
    scratch: &mut Scratch,
    diag: &mut dyn Diagnostics,
    f: &mut dyn FnMut(&Visit, &mut dyn Diagnostics) -> Result<()>,
) -> Result<core::result::Result<(), Skipped>> {
    // The reference's inode open looks up $STANDARD_INFORMATION and $ATTRIBUTE_LIST, reading
    // the (sorted) attributes up to the first of a higher type: a corrupt attribute met before
    // that fails the open and nothing is counted. A corrupt attribute further on only stops
    // the walk there, after the attributes before it were counted (black-box: a user file's
    // last, non-resident $DATA is counted when a bad length of the $BITMAP after it stops the
    // walk, the volume is cloned with `ntfs_attr_find: Corrupt inode (N)` on stderr).
    let mut attrs: Vec<Attr> = Vec::new();
    let mut corrupt = false;
    for a in AttrIter::new(base) {
        match a {
            Ok(a) => attrs.push(a),
            Err(_) => {
                corrupt = true;
                break;
            }
        }
    }
    // The lookups stop at the first attribute of a higher type: an attribute out of order
    // is not found (black-box: a user file whose last, non-resident $DATA is retyped 0x20
    // after its $FILE_NAME is walked as a plain attribute, its clusters counted).
    // Both lookups are for the unnamed attribute (black-box: a $STANDARD_INFORMATION given a
    // name is not found).
    let lookup = |t: u32| {
        attrs
            .iter()
            .take_while(|a| a.type_code <= t)
            .find(|a| a.type_code == t && a.name.is_empty())
    };
    let has_si = lookup(AT_STANDARD_INFORMATION).is_some();
    let open_fails = corrupt && attrs.iter().all(|a| a.type_code < AT_ATTRIBUTE_LIST);
    if open_fails {
        diag.warn(format_args!(
            "ntfs_attr_find: Corrupt inode ({inode}): Input/output error\n"
        ));
        if !has_si {
            diag.warn(format_args!(
                "No STANDARD_INFORMATION in base record {inode}: Input/output error\n"
            ));
        }
        return Ok(Err(Skipped::Corrupt));
    }
    if !has_si {
        // Black-box: printed for user files too (a $STANDARD_INFORMATION retyped or named).
        diag.warn(format_args!(
            "No STANDARD_INFORMATION in base record {inode}: No such file or directory\n"
        ));
        return Ok(Err(Skipped::NoStandardInformation));
    }
    // The reference's inode open needs the first 48 bytes of $STANDARD_INFORMATION (the
    // NTFS 1.2 layout); a shorter stated value is refused with this line (black-box:
    // value_length 0 → "Corrupt STANDARD_INFORMATION in base record N", the file skipped;
    // an out-of-range value_offset or a too large value_length is not checked).
    if lookup(AT_STANDARD_INFORMATION)
        .is_some_and(|a| !a.is_non_resident() && a.stated_value_length < SI_MIN_VALUE_BYTES)
    {
        diag.warn(format_args!(
            "Corrupt STANDARD_INFORMATION in base record {inode}\n"
        ));
        return Ok(Err(Skipped::Corrupt));
    }
    let Some(al) = lookup(AT_ATTRIBUTE_LIST) else {
        for a in &attrs {
            f(
                &Visit {
                    inode,
                    record: inode,
                    attr: a,
                },
                diag,
            )?;
        }
        if corrupt {
            diag.warn(format_args!(
                "ntfs_attr_find: Corrupt inode ({inode}): Input/output error\n"
            ));
            return Ok(Err(Skipped::CorruptAfter));
        }
        return Ok(Ok(()));
    };
    // The reference reads and checks the whole list when it opens the inode: a bad list
    // means the inode is skipped before anything is counted.
    let cs = vol.boot.cluster_size;
    let list = attr_value_whole(dev, cs, al, MAX_ATTR_LIST_BYTES).ok();
    let Some(list) = list.filter(|l| EntryIter::new(l).all(|e| e.is_ok())) else {
        diag.warn(format_args!(
            "Corrupt attribute list entry in MFT record {inode}\n"
        ));
        return Ok(Err(Skipped::CorruptList));
    };
    // The reference also loads every extension record named by the list when it opens the
    // inode: one that cannot be read makes the whole inode unreadable.
    let rs = vol.record_size();
    scratch.ext.resize(rs, 0);
    let mut exts: Vec<u64> = EntryIter::new(&list)
        .flatten()
        .map(|e| e.mft_record)
        .filter(|&r| r != inode)
        .collect();
    exts.sort_unstable();
    exts.dedup();
    for &r in &exts {
        match vol.read_record(dev, r, &mut scratch.ext, diag)? {
            RecordRead::Ok(_) => {}
            // A torn extension record: only its "Incomplete multi-sector transfer" line
            // (verified on the corrupted corpus: the reference prints nothing more here).
            _ => {
                diag.warn(format_args!(
                    "Corrupt attribute list entry in MFT record {inode}\n"
                ));
                return Ok(Err(Skipped::CorruptList));
            }
        }
    }
    f(
        &Visit {
            inode,
            record: inode,
            attr: al,
        },
        diag,
    )?;
    let mut loaded: Option<u64> = None;
    for e in EntryIter::new(&list) {
        let Ok(e) = e else { break };
        if e.type_code == AT_ATTRIBUTE_LIST {
            continue;
        }
        let rec: &[u8] = if e.mft_record == inode {
            base
        } else {
            if loaded != Some(e.mft_record) {
                loaded = None;
                match vol.read_record(dev, e.mft_record, &mut scratch.ext, diag)? {
                    // The base reference of the extension record is not compared with this
                    // file (black-box: base 1 in an extension record of a user file, cloned).
                    RecordRead::Ok(_) => loaded = Some(e.mft_record),
                    _ => continue,
                }
            }
            &scratch.ext
        };
        let mut best: Option<Attr> = None;
        for a in AttrIter::new(rec) {
            let Ok(a) = a else { break };
            if a.type_code == e.type_code && a.name == e.name && a.lowest_vcn() == e.lowest_vcn {
                let exact = a.instance == e.instance;
                if best.is_none() || exact {
                    best = Some(a);
                }
                if exact {
                    break;
                }
            }
        }
        if let Some(a) = best {
            f(
                &Visit {
                    inode,
                    record: e.mft_record,
                    attr: &a,
                },
                diag,
            )?;
        }
    }
    Ok(Ok(()))
}

/// What the walk found in one non-resident attribute extent: `(inode, attribute type, run)`.
/// `f` is called for each run that owns clusters, in runlist order.
pub fn for_each_run(
    vol: &Volume,
    v: &Visit,
    f: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> Result<()> {
    if !v.attr.is_non_resident() {
        return Ok(());
    }
    let mut runs = Vec::new();
    extent_runs(v.attr, vol.boot.cluster_size, &mut runs)?;
    for r in runs {
        if let Some(lcn) = r.lcn {
            f(lcn, r.len)?;
        }
    }
    Ok(())
}

/// Walks every MFT record (0 … mft_records − 1) and calls `f` for every attribute of every
/// in-use base record, with the reference's skipping rules. Progress goes to `diag`.
pub fn walk_volume<D: ReadAt + ?Sized>(
    vol: &Volume,
    dev: &D,
    diag: &mut dyn Diagnostics,
    f: &mut dyn FnMut(&Visit, &mut dyn Diagnostics) -> Result<()>,
) -> Result<()> {
    let last = vol.mft_records.saturating_sub(1);
    diag.progress_start(0, last);
    let mut buf = vec![0u8; vol.record_size()];
    let mut scratch = Scratch::default();
    for i in 0..vol.mft_records {
        diag.progress(i);
        let h = match vol.read_record(dev, i, &mut buf, diag)? {
            RecordRead::Ok(h) => h,
            _ => continue,
        };
        // Black-box: an extension record whose base reference has only a sequence number
        // (0x8000000000000000) is still skipped as an extension record.
        if !h.in_use() || h.base_reference != 0 {
            continue;
        }
        walk_attrs(vol, dev, i, &buf, &mut scratch, diag, f)?.ok();
    }
    Ok(())
}
