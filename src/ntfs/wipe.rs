//! The metadata mode's wipe rules (`-m`, `-m -s`; spec §4.2), applied to the bytes of one MFT
//! record or one INDX block as stored on disk (update-sequence protected), in place.
//!
//! What is wiped, per the behaviour spec and verified black-box against ntfsclone 2022.10.3:
//! * timestamps (unless `-t`) are set to the NTFS time of 1970-01-01 ([`NTFS_TIME_EPOCH`]),
//!   not 0: `$STANDARD_INFORMATION` value bytes 0..32, `$FILE_NAME` value bytes 8..40, the
//!   FILE_NAME keys of `$INDEX_ROOT` entries and of INDX blocks (entry bytes 24..56), and the
//!   `change_time` of version-2 quota entries in a `$Q` index root;
//! * in records of files above 11 (not system files): the value of resident `$DATA`, the
//!   slack after `bytes_in_use`, and, in records not in use, everything from byte 48;
//! * afterwards the record is protected again with the same update sequence number (0 and
//!   0xFFFF become 1), so a wiped record reads back like one written by NTFS.
//!
//! File names, security descriptors, reparse data and the other indexes are not wiped (the
//! reference does not either: `man ntfsclone`, "filenames are not wiped out").
//!
//! The functions never panic: every offset read from the buffer is checked.
use super::attribute::{AttrIter, Form, AT_DATA, AT_FILE_NAME, AT_INDEX_ROOT};
use super::attribute::{AT_END, AT_STANDARD_INFORMATION};
pub use super::index::index_block_size;
use super::index::{
    FN_TIMES, INDEX_ENTRY_END, INDX_MAGIC, OFF_IE_FLAGS, OFF_IE_KEY, OFF_IE_LENGTH,
    OFF_IH_ALLOCATED, OFF_IH_ENTRIES, OFF_INDX_HEADER, OFF_IR_HEADER, OFF_IR_TYPE,
    OFF_QUOTA_CHANGE_TIME, OFF_QUOTA_VERSION,
};
use super::le;
use super::mft_record::{
    post_read_fixup, FixupError, RecordHeader, BAAD_MAGIC, FILE_MAGIC, NTFS_BLOCK_SIZE,
};

/// `timespec2ntfs({0, 0})`: 1970-01-01 in 100 ns units since 1601.
pub const NTFS_TIME_EPOCH: u64 = 0x019D_B1DE_D53E_8000;
/// Records up to this number are system files: only their timestamps are wiped.
pub const LAST_SYSTEM_RECORD: u64 = 11;

/// Byte 48: where a record's header ends and the update sequence array usually starts.
const WIPE_DELETED_FROM: usize = 48;
/// Four 8-byte times.
const TIMES_LEN: usize = 32;
/// What the reference counts for one wiped group of four times, and for one quota time.
const COUNT_TIMES: u64 = 32;
const COUNT_QUOTA_TIME: u64 = 4;

/// What was wiped, counted like the reference's statistics (§4.5): non-zero bytes zeroed for
/// data, a fixed amount per group of timestamps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `Wiped unused MFT data`: slack after `bytes_in_use`.
    pub unused_mft: u64,
    /// `Wiped deleted MFT data`: records not in use, from byte 48 to `bytes_in_use`.
    pub deleted_mft: u64,
    /// `Wiped resident user data`.
    pub resident_data: u64,
    /// `Wiped timestamp data`.
    pub timestamps: u64,
}

impl Stats {
    /// `Wiped totally`.
    pub fn total(&self) -> u64 {
        self.unused_mft + self.deleted_mft + self.resident_data + self.timestamps
    }
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &Stats) {
        self.unused_mft += o.unused_mft;
        self.deleted_mft += o.deleted_mft;
        self.resident_data += o.resident_data;
        self.timestamps += o.timestamps;
    }
}

/// What [`wipe_mft_record`] / [`wipe_indx_block`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A valid record or block, wiped (or left as is when nothing applied) and re-protected.
    /// For MFT records, `in_use` tells whether the record is in use.
    Wiped {
        /// The record is in use (always true for INDX blocks).
        in_use: bool,
    },
    /// No FILE/INDX magic (never used, zeroed, or "BAAD"): left untouched; it holds no
    /// structure the rules apply to.
    NotARecord,
    /// The magic is right but the update sequence array is broken (odd offset, wrong count).
    /// MFT records are wiped as stored, like the reference, and their update sequence number
    /// decremented, without protecting them again; INDX blocks are left as they are.
    BadFixup,
    /// A torn record or block (a stride does not end with the update sequence number),
    /// marked "BAAD" like the reference does: MFT records are still wiped (and their update
    /// sequence number decremented), INDX blocks are left as they are.
    Torn,
    /// Left exactly as stored: INDX blocks with `-t` (nothing of them is wiped, and the
    /// reference does not even check their fixup then: black-box, a torn block stays "INDX").
    Untouched,
}

/// Zeroes `b`, returning how many bytes were not zero.
fn zero(b: &mut [u8]) -> u64 {
    let n = b.iter().filter(|&&x| x != 0).count() as u64;
    b.fill(0);
    n
}

/// Sets four consecutive times at `b[off..off+32]` to the epoch. False when out of range.
fn epoch_times(b: &mut [u8], off: usize) -> bool {
    match off
        .checked_add(TIMES_LEN)
        .and_then(|end| b.get_mut(off..end))
    {
        Some(t) => {
            for c in t.chunks_exact_mut(8) {
                c.copy_from_slice(&NTFS_TIME_EPOCH.to_le_bytes());
            }
            true
        }
        None => false,
    }
}

/// Protects a fixed-up buffer again keeping its update sequence number, as libntfs does
/// (`usn_dec` then `pre_write_fixup`, which skips 0 and 0xFFFF): 0 and 0xFFFF become 1.
/// False when the array does not fit (the caller checked it with the post-read fixup).
fn protect_same_usn(buf: &mut [u8]) -> bool {
    let size = buf.len();
    let (Some(ofs), Some(count)) = (le::u16(buf, 0x04), le::u16(buf, 0x06)) else {
        return false;
    };
    let (ofs, count) = (ofs as usize, count as usize);
    if size == 0
        || size % NTFS_BLOCK_SIZE != 0
        || count == 0
        || count - 1 != size / NTFS_BLOCK_SIZE
        || ofs % 2 != 0
        || ofs + 2 * count > NTFS_BLOCK_SIZE - 2
    {
        return false;
    }
    let mut usn = le::u16(buf, ofs).unwrap_or(0);
    if usn == 0 || usn == 0xFFFF {
        usn = 1;
    }
    let usn = usn.to_le_bytes();
    if le::put(buf, ofs, usn).is_none() {
        return false;
    }
    for i in 1..count {
        let end = i * NTFS_BLOCK_SIZE - 2;
        if le::copy::<2>(buf, end, ofs + 2 * i)
            .and_then(|()| le::put(buf, end, usn))
            .is_none()
        {
            return false;
        }
    }
    true
}

/// Decrements the update sequence number of a record that is not protected again (the
/// reference's `usn_dec` before its protection fails): 1 and 0 wrap to 0xFFFE. Only inside
/// the record: with `usa_ofs` at or past the record's end the reference decrements the first
/// two bytes of the *next* record ("FILE" becomes "EILE", black-box), losing that record; we
/// leave the record's neighbours alone.
fn decrement_usn(buf: &mut [u8]) {
    let Some(ofs) = le::u16(buf, 0x04).map(usize::from) else {
        return;
    };
    if let Some(u) = le::u16(buf, ofs) {
        let usn: u16 = if u <= 1 { 0xFFFE } else { u - 1 };
        if let Some(b) = buf.get_mut(ofs..ofs + 2) {
            b.copy_from_slice(&usn.to_le_bytes());
        }
    }
}

/// Sets the FILE_NAME times of every index entry from `start` to the END entry (or the end
/// of `b`). Returns the count for the statistics.
fn wipe_fn_entries(b: &mut [u8], start: usize) -> u64 {
    let mut count = 0;
    let mut pos = start;
    while let (Some(len), Some(flags)) = (
        le::u16(b, pos + OFF_IE_LENGTH),
        le::u16(b, pos + OFF_IE_FLAGS),
    ) {
        if flags & INDEX_ENTRY_END != 0 || (len as usize) < OFF_IE_KEY {
            break;
        }
        if !epoch_times(b, pos + OFF_IE_KEY + FN_TIMES) {
            break;
        }
        count += COUNT_TIMES;
        pos += len as usize;
    }
    count
}

/// Sets the `change_time` of every version-2 quota control entry from `start` to the END
/// entry. Returns the count for the statistics.
fn wipe_quota_entries(b: &mut [u8], start: usize) -> u64 {
    let mut count = 0;
    let mut pos = start;
    while let (Some(data_ofs), Some(len), Some(flags)) = (
        le::u16(b, pos),
        le::u16(b, pos + OFF_IE_LENGTH),
        le::u16(b, pos + OFF_IE_FLAGS),
    ) {
        if flags & INDEX_ENTRY_END != 0 || (len as usize) < OFF_IE_KEY {
            break;
        }
        let data = pos + data_ofs as usize;
        if le::u32(b, data + OFF_QUOTA_VERSION) == Some(2) {
            let at = data + OFF_QUOTA_CHANGE_TIME;
            if let Some(t) = b.get_mut(at..at + 8) {
                t.copy_from_slice(&NTFS_TIME_EPOCH.to_le_bytes());
                count += COUNT_QUOTA_TIME;
            }
        }
        pos += len as usize;
    }
    count
}

/// Wipes the timestamps in the value of an `$INDEX_ROOT` attribute named `name` (UTF-16LE):
/// FILE_NAME indexes and the `$Q` quota index. Returns the count for the statistics.
pub fn wipe_index_root(value: &mut [u8], name_is_q: bool) -> u64 {
    let Some(entries) = le::u32(value, OFF_IR_HEADER + OFF_IH_ENTRIES) else {
        return 0;
    };
    let start = OFF_IR_HEADER.saturating_add(entries as usize);
    if name_is_q {
        wipe_quota_entries(value, start)
    } else if le::u32(value, OFF_IR_TYPE) == Some(AT_FILE_NAME) {
        wipe_fn_entries(value, start)
    } else {
        0
    }
}

/// Counts (without changing anything) what the reference's walk wipes in one resident
/// attribute of an in-use file: the statistics of the `-m` pass and the first half of the
/// `-m -s` ones. `value` is the attribute value, `mft_no` the file.
pub fn count_attr(
    type_code: u32,
    name_is_q: bool,
    value: &[u8],
    mft_no: u64,
    keep_times: bool,
    stats: &mut Stats,
) {
    match type_code {
        AT_STANDARD_INFORMATION | AT_FILE_NAME if !keep_times => {
            let off = if type_code == AT_FILE_NAME {
                FN_TIMES
            } else {
                0
            };
            if value.len() >= off + TIMES_LEN {
                stats.timestamps += COUNT_TIMES;
            }
        }
        AT_INDEX_ROOT if !keep_times => {
            stats.timestamps += count_only(value, |v| wipe_index_root(v, name_is_q));
        }
        AT_DATA if mft_no > LAST_SYSTEM_RECORD => {
            stats.resident_data += value.iter().filter(|&&x| x != 0).count() as u64;
        }
        _ => {}
    }
}

/// Runs a wipe on a copy of `value` kept on the stack in pieces, returning its count; the
/// value itself is not changed. Resident values are at most one record (≤ 64 KiB here).
fn count_only(value: &[u8], f: impl FnOnce(&mut [u8]) -> u64) -> u64 {
    let mut copy = [0u8; 4096];
    match copy.get_mut(..value.len()) {
        Some(c) => {
            c.copy_from_slice(value);
            f(c)
        }
        None => {
            // Larger than any resident index root met in practice: count on a heap copy.
            let mut v = std::vec::Vec::from(value);
            f(&mut v)
        }
    }
}

/// Wipes one MFT record as stored on disk (`rec` is one record, protected), in place.
/// `mft_no` is its record number (its position in `$MFT`/`$MFTMirr`). Counts into `stats`.
pub fn wipe_mft_record(
    rec: &mut [u8],
    mft_no: u64,
    keep_times: bool,
    stats: &mut Stats,
) -> Outcome {
    if le::bytes::<4>(rec, 0) != Some(FILE_MAGIC) {
        return Outcome::NotARecord;
    }
    let (fixed, torn) = match post_read_fixup(rec) {
        Ok(()) => (true, false),
        // A torn record (a stride's last two bytes are not the update sequence number): the
        // reference marks it "BAAD" (as NTFS does), still applies the wipe rules to the bytes
        // as stored, decrements the update sequence number and writes it without protecting
        // it again (black-box: USN 5 -> 4, magic BAAD, timestamps, slack and resident data
        // wiped). Keeping the rules here matters: the record's names and times are readable.
        Err(FixupError::Incomplete { .. }) => (false, true),
        // A broken update sequence array (odd offset, wrong count): the same without the
        // BAAD mark (black-box: usa_count 0, 1, 2, 4 of a 1 KiB record, usa_ofs 47).
        Err(FixupError::BadArray { .. }) => (false, false),
    };
    if torn {
        // The record starts with its FILE magic (checked above): 4 bytes are there.
        let _ = le::put(rec, 0, BAAD_MAGIC);
    }
    let Some(h) = RecordHeader::parse(rec) else {
        return Outcome::BadFixup;
    };
    let len = rec.len();
    let in_use_end = (h.bytes_in_use as usize).min(len);
    let alloc_end = (h.bytes_allocated as usize).min(len).max(in_use_end);
    let in_use = h.in_use();
    if mft_no > LAST_SYSTEM_RECORD {
        if in_use {
            stats.unused_mft += zero(rec.get_mut(in_use_end..alloc_end).unwrap_or(&mut []));
        } else {
            if in_use_end > WIPE_DELETED_FROM {
                stats.deleted_mft += zero(
                    rec.get_mut(WIPE_DELETED_FROM..in_use_end)
                        .unwrap_or(&mut []),
                );
            }
            stats.unused_mft += zero(rec.get_mut(in_use_end..alloc_end).unwrap_or(&mut []));
        }
    }
    if in_use {
        wipe_attrs(rec, mft_no, keep_times, stats);
    }
    if !fixed {
        decrement_usn(rec);
        return if torn {
            Outcome::Torn
        } else {
            Outcome::BadFixup
        };
    }
    if !protect_same_usn(rec) {
        return Outcome::BadFixup;
    }
    Outcome::Wiped { in_use }
}

/// The per-attribute rules on the attributes of one fixed-up, in-use record.
fn wipe_attrs(rec: &mut [u8], mft_no: u64, keep_times: bool, stats: &mut Stats) {
    // Collect the resident values' places first (the iterator borrows the record).
    let mut places: heapless::Vec<(u32, bool, usize, usize), 64> = heapless::Vec::new();
    for a in AttrIter::new(rec) {
        let Ok(a) = a else { break };
        if a.type_code == AT_END {
            break;
        }
        if let Form::Resident {
            value,
            value_offset,
        } = a.form
        {
            let entry = (a.type_code, a.name_is("$Q"), value_offset, value.len());
            if places.push(entry).is_err() {
                break;
            }
        }
    }
    for (type_code, is_q, off, n) in places {
        let Some(v) = off.checked_add(n).and_then(|end| rec.get_mut(off..end)) else {
            continue;
        };
        match type_code {
            AT_STANDARD_INFORMATION if !keep_times && epoch_times(v, 0) => {
                stats.timestamps += COUNT_TIMES;
            }
            AT_FILE_NAME if !keep_times && epoch_times(v, FN_TIMES) => {
                stats.timestamps += COUNT_TIMES;
            }
            AT_INDEX_ROOT if !keep_times => stats.timestamps += wipe_index_root(v, is_q),
            AT_DATA if mft_no > LAST_SYSTEM_RECORD => stats.resident_data += zero(v),
            _ => {}
        }
    }
}

/// Wipes the FILE_NAME timestamps of one `$I30` INDX block as stored on disk, in place.
/// `index_block_size` is the directory's (from its `$INDEX_ROOT`). Blocks the reference does
/// not recognise (no INDX magic, entries before the header end, larger than the index block)
/// are left untouched.
pub fn wipe_indx_block(
    block: &mut [u8],
    index_block_size: u32,
    keep_times: bool,
    stats: &mut Stats,
) -> Outcome {
    if keep_times {
        return Outcome::Untouched;
    }
    if le::bytes::<4>(block, 0) != Some(INDX_MAGIC) {
        return Outcome::NotARecord;
    }
    let (Some(entries), Some(allocated)) = (
        le::u32(block, OFF_INDX_HEADER + OFF_IH_ENTRIES),
        le::u32(block, OFF_INDX_HEADER + OFF_IH_ALLOCATED),
    ) else {
        return Outcome::NotARecord;
    };
    if entries < 16 || allocated > index_block_size {
        return Outcome::NotARecord;
    }
    match post_read_fixup(block) {
        Ok(()) => {}
        // The reference marks a torn block "BAAD" and wipes nothing in it (black-box).
        Err(FixupError::Incomplete { .. }) => {
            // The block starts with its INDX magic (checked above): 4 bytes are there.
            let _ = le::put(block, 0, BAAD_MAGIC);
            return Outcome::Torn;
        }
        Err(FixupError::BadArray { .. }) => return Outcome::BadFixup,
    }
    stats.timestamps += wipe_fn_entries(block, OFF_INDX_HEADER + entries as usize);
    if !protect_same_usn(block) {
        return Outcome::BadFixup;
    }
    Outcome::Wiped { in_use: true }
}

/// Counts (without changing anything) the timestamps [`wipe_indx_block`] would wipe.
pub fn count_indx_block(block: &[u8], index_block_size: u32, keep_times: bool) -> u64 {
    if keep_times {
        return 0;
    }
    let mut s = Stats::default();
    let mut copy = std::vec::Vec::from(block);
    wipe_indx_block(&mut copy, index_block_size, false, &mut s);
    s.timestamps
}

#[cfg(test)]
// Tests build their inputs by hand at fixed offsets: a panic there is a failed test.
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests;
