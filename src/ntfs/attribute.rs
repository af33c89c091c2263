//! Attribute records inside an MFT record: the common header, the resident and the
//! non-resident forms, and an iterator that checks every offset before use.
//!
//! Layout from the published NTFS documentation (`ATTR_RECORD`). Attributes follow each other
//! from `attrs_offset` to the `0xFFFFFFFF` end marker, all inside `bytes_in_use`.
use super::le;

/// `$STANDARD_INFORMATION`.
pub const AT_STANDARD_INFORMATION: u32 = 0x10;
/// `$ATTRIBUTE_LIST`.
pub const AT_ATTRIBUTE_LIST: u32 = 0x20;
/// `$FILE_NAME`.
pub const AT_FILE_NAME: u32 = 0x30;
/// `$VOLUME_INFORMATION`.
pub const AT_VOLUME_INFORMATION: u32 = 0x70;
/// `$DATA`.
pub const AT_DATA: u32 = 0x80;
/// `$INDEX_ROOT`.
pub const AT_INDEX_ROOT: u32 = 0x90;
/// `$INDEX_ALLOCATION`.
pub const AT_INDEX_ALLOCATION: u32 = 0xA0;
/// `$BITMAP`.
pub const AT_BITMAP: u32 = 0xB0;
/// End marker.
pub const AT_END: u32 = 0xFFFF_FFFF;

const OFF_TYPE: usize = 0x00;
const OFF_LENGTH: usize = 0x04;
const OFF_NON_RESIDENT: usize = 0x08;
const OFF_NAME_LENGTH: usize = 0x09;
const OFF_NAME_OFFSET: usize = 0x0A;
const OFF_FLAGS: usize = 0x0C;
const OFF_INSTANCE: usize = 0x0E;
// Resident form.
const OFF_VALUE_LENGTH: usize = 0x10;
const OFF_VALUE_OFFSET: usize = 0x14;
const RESIDENT_HEADER: usize = 0x18;
// Non-resident form.
const OFF_LOWEST_VCN: usize = 0x10;
const OFF_HIGHEST_VCN: usize = 0x18;
const OFF_MAPPING_PAIRS_OFFSET: usize = 0x20;
const OFF_COMPRESSION_UNIT: usize = 0x22;
const OFF_ALLOCATED_SIZE: usize = 0x28;
const OFF_DATA_SIZE: usize = 0x30;
const OFF_INITIALIZED_SIZE: usize = 0x38;

/// The two forms of an attribute's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form<'a> {
    /// The value is inside the record.
    Resident {
        /// The value bytes.
        value: &'a [u8],
        /// Byte offset of the value inside the record.
        value_offset: usize,
    },
    /// The value is in clusters described by mapping pairs.
    NonResident {
        /// First VCN described by this extent.
        lowest_vcn: i64,
        /// Last VCN described by this extent (-1 for an empty attribute).
        highest_vcn: i64,
        /// The mapping pairs bytes (to the end of the attribute record).
        mapping_pairs: &'a [u8],
        /// log2 of the compression unit in clusters (0 = not compressed).
        compression_unit: u8,
        /// Bytes allocated (valid in the extent with lowest_vcn 0).
        allocated_size: i64,
        /// Logical size in bytes (lowest_vcn 0 only).
        data_size: i64,
        /// Initialised bytes (lowest_vcn 0 only).
        initialized_size: i64,
    },
}

/// One attribute record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute type (`AT_*`).
    pub type_code: u32,
    /// Byte offset of the attribute inside the record.
    pub offset: usize,
    /// Length of the attribute record in bytes.
    pub length: usize,
    /// Name as UTF-16LE bytes (empty for unnamed).
    pub name: &'a [u8],
    /// Attribute flags (compressed 0x0001, encrypted 0x4000, sparse 0x8000).
    pub flags: u16,
    /// Instance number, unique inside its record.
    pub instance: u16,
    /// Resident or non-resident body.
    pub form: Form<'a>,
    /// A resident attribute's value length as its header states it (the value itself reads
    /// as empty when the stated range does not fit in the attribute); 0 when non-resident.
    pub stated_value_length: u32,
}

impl<'a> Attr<'a> {
    /// True for the non-resident form.
    pub fn is_non_resident(&self) -> bool {
        matches!(self.form, Form::NonResident { .. })
    }
    /// The resident value, if resident.
    pub fn value(&self) -> Option<&'a [u8]> {
        match self.form {
            Form::Resident { value, .. } => Some(value),
            Form::NonResident { .. } => None,
        }
    }
    /// lowest_vcn of a non-resident extent (0 for resident attributes).
    pub fn lowest_vcn(&self) -> i64 {
        match self.form {
            Form::NonResident { lowest_vcn, .. } => lowest_vcn,
            Form::Resident { .. } => 0,
        }
    }
    /// True when the name equals `name` (ASCII, compared as UTF-16LE code units).
    pub fn name_is(&self, name: &str) -> bool {
        self.name.len() == 2 * name.len()
            && self
                .name
                .chunks_exact(2)
                .zip(name.bytes())
                .all(|(u, c)| u == [c, 0])
    }
}

/// A structural error in the attribute area of a record (the reference: `Corrupt inode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrError {
    /// Byte offset of the bad attribute inside the record.
    pub at: usize,
}

/// Iterates the attributes of a fixed-up record, stopping at the end marker.
#[derive(Debug, Clone)]
pub struct AttrIter<'a> {
    rec: &'a [u8],
    pos: usize,
    end: usize,
    done: bool,
}

impl<'a> AttrIter<'a> {
    /// Attributes of `rec` (a whole record, fixups applied). Bounds: `bytes_in_use`, capped at
    /// the buffer length.
    pub fn new(rec: &'a [u8]) -> AttrIter<'a> {
        let in_use = le::u32(rec, 0x18).unwrap_or(0) as usize;
        let start = le::u16(rec, 0x14).unwrap_or(0) as usize;
        AttrIter {
            rec,
            pos: start,
            end: in_use.min(rec.len()),
            done: false,
        }
    }

    fn fail(&mut self) -> Option<Result<Attr<'a>, AttrError>> {
        self.done = true;
        Some(Err(AttrError { at: self.pos }))
    }
}

/// Parses the attribute at `pos` of `rec`, bounded by `end`.
///
/// The reference's attribute lookup only refuses a zero length or an attribute that ends past
/// `bytes_in_use` (black-box, differential tests on the last attribute of a user record:
/// lengths 4 … 0x50 are walked, 0 and 0x58 are `Corrupt inode`; a length that is not a
/// multiple of 8 is walked, and the next attribute then starts unaligned). The header fields
/// are read where the header would be, even past a short length (they are inside the record);
/// the mapping pairs and a resident value must lie inside the length, or read as empty (a
/// runlist then fails to decode, like the reference's `ntfs_decompress_mapping_pairs`).
pub fn parse_attr(rec: &[u8], pos: usize, end: usize) -> Result<Attr<'_>, AttrError> {
    let err = AttrError { at: pos };
    let h = rec.get(pos..).ok_or(err)?;
    let type_code = le::u32(rec.get(..end).ok_or(err)?, pos + OFF_TYPE).ok_or(err)?;
    let length = le::u32(h, OFF_LENGTH).ok_or(err)? as usize;
    // A resident header must fit before bytes_in_use whatever the form (black-box: a $DATA
    // of length 0x10 at 0x108 is walked with bytes_in_use 0x120, refused with 0x118).
    if length == 0
        || pos.checked_add(length).map_or(true, |e| e > end)
        || pos + RESIDENT_HEADER > end
    {
        return Err(err);
    }
    let a = h.get(..length).ok_or(err)?;
    let non_resident = *h.get(OFF_NON_RESIDENT).ok_or(err)?;
    let name_length = *h.get(OFF_NAME_LENGTH).ok_or(err)? as usize;
    let name_offset = le::u16(h, OFF_NAME_OFFSET).ok_or(err)? as usize;
    // A name outside the attribute does not make the record corrupt for the reference's walk
    // (black-box, differential tests: name_offset 0xFFFF or name_length 255 on $DATA,
    // $INDEX_ALLOCATION, $BITMAP: the volume is cloned). It reads as no name here.
    let name: &[u8] = if name_length == 0 {
        &[]
    } else {
        a.get(name_offset..name_offset + 2 * name_length)
            .unwrap_or(&[])
    };
    let flags = le::u16(h, OFF_FLAGS).ok_or(err)?;
    let instance = le::u16(h, OFF_INSTANCE).ok_or(err)?;
    // The reference takes any non-zero non_resident byte as the non-resident form and does
    // not check a resident value's bounds while walking (black-box, differential tests:
    // non_resident 2, value_offset 0xFFFF, value_length 0xFFFFFFFF are all cloned). A value
    // outside the attribute reads as empty; its stated length is kept for the checks that
    // need it ($STANDARD_INFORMATION).
    let mut stated_value_length = 0;
    let form = match non_resident {
        0 => {
            let value_length = le::u32(h, OFF_VALUE_LENGTH).ok_or(err)?;
            let value_offset = le::u16(h, OFF_VALUE_OFFSET).ok_or(err)? as usize;
            let value = value_offset
                .checked_add(value_length as usize)
                .and_then(|end| a.get(value_offset..end))
                .unwrap_or(&[]);
            stated_value_length = value_length;
            Form::Resident {
                value,
                value_offset: pos + value_offset,
            }
        }
        _ => {
            let mp = le::u16(h, OFF_MAPPING_PAIRS_OFFSET).ok_or(err)? as usize;
            Form::NonResident {
                lowest_vcn: le::i64(h, OFF_LOWEST_VCN).ok_or(err)?,
                highest_vcn: le::i64(h, OFF_HIGHEST_VCN).ok_or(err)?,
                mapping_pairs: a.get(mp..).unwrap_or(&[]),
                compression_unit: *h.get(OFF_COMPRESSION_UNIT).ok_or(err)?,
                allocated_size: le::i64(h, OFF_ALLOCATED_SIZE).ok_or(err)?,
                data_size: le::i64(h, OFF_DATA_SIZE).ok_or(err)?,
                initialized_size: le::i64(h, OFF_INITIALIZED_SIZE).ok_or(err)?,
            }
        }
    };
    Ok(Attr {
        stated_value_length,
        type_code,
        offset: pos,
        length,
        name,
        flags,
        instance,
        form,
    })
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<Attr<'a>, AttrError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match le::u32(self.rec.get(..self.end).unwrap_or(&[]), self.pos) {
            Some(AT_END) => {
                self.done = true;
                return None;
            }
            // Type 0 is walked like any other type by the reference (black-box: a volume
            // with a $FILE_NAME retyped 0 is cloned); the header checks below still apply.
            None => return self.fail(),
            Some(_) => {}
        }
        match parse_attr(self.rec, self.pos, self.end) {
            Ok(a) => {
                self.pos += a.length;
                Some(Ok(a))
            }
            Err(_) => self.fail(),
        }
    }
}

/// Why the reference's full check of a system file's record refused it (see
/// [`check_system_record`]); the texts are the reference's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCheck {
    /// No end marker inside `bytes_in_use`, or the attribute types are not in order.
    BadEnd(u64),
    /// An attribute's length is not a multiple of 8 or it ends past `bytes_in_use`.
    Corrupted(u64),
    /// A resident attribute's name or value is outside it.
    Resident(u32, u64),
    /// A non-resident attribute's name or mapping pairs are outside it, or its VCNs are bad.
    NonResident(u32, u64),
    /// $STANDARD_INFORMATION shorter than the NTFS 1.2 layout (48 bytes).
    StandardInformation(u64),
    /// $FILE_NAME with an empty name or shorter than its name.
    FileName(u64),
    /// $VOLUME_INFORMATION shorter than 12 bytes.
    VolumeInformation(u64),
    /// $INDEX_ROOT shorter than its headers.
    IndexRoot(u64),
}

impl core::fmt::Display for RecordCheck {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            RecordCheck::BadEnd(n) => write!(f, "Bad end of MFT record {n}"),
            RecordCheck::Corrupted(n) => write!(f, "Corrupted MFT record {n}"),
            RecordCheck::Resident(t, n) => {
                write!(f, "Corrupt resident attribute 0x{t:x} in MFT record {n}")
            }
            RecordCheck::NonResident(t, n) => {
                write!(
                    f,
                    "Corrupt non resident attribute 0x{t:x} in MFT record {n}"
                )
            }
            RecordCheck::StandardInformation(n) => {
                write!(f, "Corrupt standard information in MFT record {n}")
            }
            RecordCheck::FileName(n) => write!(f, "Corrupt file name attribute in MFT record {n}."),
            RecordCheck::VolumeInformation(n) => {
                write!(f, "Corrupt volume information in MFT record {n}")
            }
            RecordCheck::IndexRoot(n) => write!(f, "Corrupt index root in MFT record {n}."),
        }
    }
}

/// The reference's full check of the attributes of a system file's record (fixed up), made
/// when its mount reads the records compared with $MFTMirr and the system files it opens;
/// user records are not checked this way (their walk only stops at a bad attribute).
///
/// Black-box (record 2 of a 4 KiB-cluster volume, mirror patched too): the end marker must
/// start 4 bytes inside `bytes_in_use`; a type lower than the previous one ends the walk
/// ("Bad end"); a length not a multiple of 8 or ending past `bytes_in_use` is "Corrupted"
/// (a zero length is not, and fails the form's check); a resident name or value (offset +
/// length) past the attribute's length, a non-resident name or mapping pairs offset at or
/// past it, a negative lowest VCN or one past the highest VCN fail the form's check;
/// $STANDARD_INFORMATION needs 48 bytes, $FILE_NAME a name and 0x42 + 2 × its length.
pub fn check_system_record(n: u64, rec: &[u8]) -> Result<(), RecordCheck> {
    let in_use = (le::u32(rec, 0x18).unwrap_or(0) as usize).min(rec.len());
    let mut pos = le::u16(rec, 0x14).unwrap_or(0) as usize;
    let mut prev = 0u32;
    loop {
        // `in_use` is at most the record length: the whole record otherwise.
        let area = rec.get(..in_use).unwrap_or(rec);
        let Some(t) = le::u32(area, pos + OFF_TYPE) else {
            return Err(RecordCheck::BadEnd(n));
        };
        if t == AT_END {
            return Ok(());
        }
        // A resident header must fit too (black-box: bytes_in_use 0x118 with an attribute
        // at 0x108 is "Bad end", 0x120 is "Corrupted").
        if t < prev || pos + RESIDENT_HEADER > in_use {
            return Err(RecordCheck::BadEnd(n));
        }
        let Some(len) = le::u32(area, pos + OFF_LENGTH).map(|l| l as usize) else {
            return Err(RecordCheck::BadEnd(n));
        };
        if len % 8 != 0 || pos.checked_add(len).map_or(true, |e| e > in_use) {
            return Err(RecordCheck::Corrupted(n));
        }
        let h = rec.get(pos..).unwrap_or(&[]);
        // A name is only checked when it has a length (black-box: name_offset 0xFFFF with
        // name_length 0 is accepted).
        let name_end = match (le::u16(h, OFF_NAME_OFFSET), le::u8(h, OFF_NAME_LENGTH)) {
            (_, Some(0)) => 0,
            (Some(o), Some(l)) => o as usize + 2 * l as usize,
            _ => usize::MAX,
        };
        let non_resident = le::u8(h, OFF_NON_RESIDENT).unwrap_or(0);
        // Only 0 and 1 are forms (black-box: non_resident 2 in record 0 is refused).
        if non_resident > 1 {
            return Err(RecordCheck::NonResident(t, n));
        }
        if non_resident == 0 {
            let vlen = le::u32(h, OFF_VALUE_LENGTH).unwrap_or(u32::MAX) as usize;
            let voff = le::u16(h, OFF_VALUE_OFFSET).unwrap_or(u16::MAX) as usize;
            // An empty value is not checked (black-box: $Volume's empty $DATA with value
            // offset 0xFFFF is accepted).
            if name_end > len || (vlen != 0 && voff + vlen > len) {
                return Err(RecordCheck::Resident(t, n));
            }
            let v = h.get(voff..voff + vlen).unwrap_or_default();
            match t {
                AT_STANDARD_INFORMATION if vlen < 48 => {
                    return Err(RecordCheck::StandardInformation(n))
                }
                AT_FILE_NAME => {
                    // An empty name is refused too (black-box: value offsets 0 and 8 read a
                    // zero name length and are refused, 0x10 reads 6 and is accepted).
                    let name_len = le::u8(v, 0x40).unwrap_or(0) as usize;
                    if name_len == 0 || 0x42 + 2 * name_len > vlen {
                        return Err(RecordCheck::FileName(n));
                    }
                }
                AT_VOLUME_INFORMATION if vlen < 12 => {
                    return Err(RecordCheck::VolumeInformation(n))
                }
                AT_INDEX_ROOT => {
                    // The index header (at 0x10 of the value): entries inside the index,
                    // the index inside the value.
                    let entries = le::u32(v, 0x10).unwrap_or(u32::MAX) as usize;
                    let index_len = le::u32(v, 0x14).unwrap_or(u32::MAX) as usize;
                    if vlen < 0x20 || entries >= index_len || 0x10 + index_len > vlen {
                        return Err(RecordCheck::IndexRoot(n));
                    }
                }
                _ => {}
            }
        } else {
            let mpo = le::u16(h, OFF_MAPPING_PAIRS_OFFSET).unwrap_or(u16::MAX) as usize;
            let lowest = le::i64(h, OFF_LOWEST_VCN).unwrap_or(-1);
            let highest = le::i64(h, OFF_HIGHEST_VCN).unwrap_or(-1);
            // An empty attribute has lowest 0, highest -1.
            let vcns_bad = lowest < 0 || (lowest > highest && !(lowest == 0 && highest == -1));
            if name_end > len || mpo >= len || vcns_bad {
                return Err(RecordCheck::NonResident(t, n));
            }
            // These four are resident only (black-box: a $DATA retyped 0x30 after the
            // $FILE_NAME gives "Corrupt file name attribute").
            match t {
                AT_STANDARD_INFORMATION => return Err(RecordCheck::StandardInformation(n)),
                AT_FILE_NAME => return Err(RecordCheck::FileName(n)),
                AT_VOLUME_INFORMATION => return Err(RecordCheck::VolumeInformation(n)),
                AT_INDEX_ROOT => return Err(RecordCheck::IndexRoot(n)),
                _ => {}
            }
        }
        if len == 0 {
            // Both forms refuse a zero length above (value or mapping pairs outside it).
            return Err(RecordCheck::Corrupted(n));
        }
        prev = t;
        pos += len;
    }
}

#[cfg(test)]
// Tests build their inputs by hand at fixed offsets: a panic there is a failed test.
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
pub(crate) mod tests {
    use super::*;
    use std::prelude::v1::*;

    /// A resident attribute record of `type_code` with `value` and an optional ASCII name.
    pub(crate) fn resident(type_code: u32, name: &str, value: &[u8]) -> Vec<u8> {
        let name_off = 0x18;
        let value_off = (name_off + 2 * name.len() + 7) & !7;
        let len = (value_off + value.len() + 7) & !7;
        let mut a = vec![0u8; len];
        a[0..4].copy_from_slice(&type_code.to_le_bytes());
        a[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        a[9] = name.len() as u8;
        a[10..12].copy_from_slice(&(name_off as u16).to_le_bytes());
        a[0x10..0x14].copy_from_slice(&(value.len() as u32).to_le_bytes());
        a[0x14..0x16].copy_from_slice(&(value_off as u16).to_le_bytes());
        for (i, c) in name.bytes().enumerate() {
            a[name_off + 2 * i] = c;
        }
        a[value_off..value_off + value.len()].copy_from_slice(value);
        a
    }

    /// A non-resident attribute record with `mapping_pairs` covering VCNs lowest..=highest.
    pub(crate) fn non_resident(
        type_code: u32,
        name: &str,
        lowest: i64,
        highest: i64,
        alloc: i64,
        mapping_pairs: &[u8],
    ) -> Vec<u8> {
        let name_off = 0x40;
        let mp_off = (name_off + 2 * name.len() + 7) & !7;
        let len = (mp_off + mapping_pairs.len() + 1 + 7) & !7;
        let mut a = vec![0u8; len];
        a[0..4].copy_from_slice(&type_code.to_le_bytes());
        a[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        a[8] = 1;
        a[9] = name.len() as u8;
        a[10..12].copy_from_slice(&(name_off as u16).to_le_bytes());
        a[0x10..0x18].copy_from_slice(&lowest.to_le_bytes());
        a[0x18..0x20].copy_from_slice(&highest.to_le_bytes());
        a[0x20..0x22].copy_from_slice(&(mp_off as u16).to_le_bytes());
        a[0x28..0x30].copy_from_slice(&alloc.to_le_bytes());
        a[0x30..0x38].copy_from_slice(&alloc.to_le_bytes());
        a[0x38..0x40].copy_from_slice(&alloc.to_le_bytes());
        for (i, c) in name.bytes().enumerate() {
            a[name_off + 2 * i] = c;
        }
        a[mp_off..mp_off + mapping_pairs.len()].copy_from_slice(mapping_pairs);
        a
    }

    /// A fixed-up (not protected) record of `size` bytes holding `attrs`.
    pub(crate) fn record(size: usize, flags: u16, base: u64, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut b = crate::ntfs::mft_record::tests::fixture(size, 1);
        crate::ntfs::mft_record::post_read_fixup(&mut b).unwrap();
        let mut p = le::u16(&b, 0x14).unwrap() as usize;
        for a in attrs {
            b[p..p + a.len()].copy_from_slice(a);
            p += a.len();
        }
        b[p..p + 4].copy_from_slice(&AT_END.to_le_bytes());
        b[p + 4..p + 8].fill(0);
        b[0x18..0x1C].copy_from_slice(&((p + 8) as u32).to_le_bytes());
        b[0x16..0x18].copy_from_slice(&flags.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&base.to_le_bytes());
        b
    }

    #[test]
    fn system_record_check() {
        let mut fname = [0u8; 0x42 + 8];
        fname[0x40] = 4;
        let good = record(
            1024,
            1,
            0,
            &[
                resident(AT_STANDARD_INFORMATION, "", &[1; 48]),
                resident(AT_FILE_NAME, "", &fname),
                non_resident(AT_DATA, "", 0, 9, 40960, &[0x21, 10, 0x34, 0x12]),
            ],
        );
        assert_eq!(check_system_record(2, &good), Ok(()));
        let first = le::u16(&good, 0x14).unwrap() as usize;
        let fname_at = first + 0x48;
        let data_at = fname_at + 0x18 + 0x50;
        let text = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut r = good.clone();
            edit(&mut r);
            std::format!("{}", check_system_record(2, &r).unwrap_err())
        };
        let put = |r: &mut Vec<u8>, at: usize, b: &[u8]| r[at..at + b.len()].copy_from_slice(b);
        assert_eq!(
            text(&|r| put(r, data_at + 4, &[0x4C, 0, 0, 0])),
            "Corrupted MFT record 2"
        );
        assert_eq!(
            text(&|r| put(r, data_at + 0x20, &[0xF0, 0])),
            "Corrupt non resident attribute 0x80 in MFT record 2"
        );
        assert_eq!(
            text(&|r| put(r, first + 0x10, &[0x2F, 0, 0, 0])),
            "Corrupt standard information in MFT record 2"
        );
        assert_eq!(
            text(&|r| put(r, first + 0x10, &[0x49, 0, 0, 0])),
            "Corrupt resident attribute 0x10 in MFT record 2"
        );
        assert_eq!(
            text(&|r| r[fname_at + 0x18 + 0x40] = 9),
            "Corrupt file name attribute in MFT record 2."
        );
        assert_eq!(
            text(&|r| put(r, fname_at, &[0x05, 0, 0, 0])),
            "Bad end of MFT record 2"
        );
        let end = le::u32(&good, 0x18).unwrap() as usize - 8;
        assert_eq!(
            text(&|r| put(r, 0x18, &(end as u32).to_le_bytes())),
            "Bad end of MFT record 2"
        );
        // A name of length 0 is not checked.
        let mut r = good.clone();
        put(&mut r, data_at + 10, &[0xFF, 0xFF]);
        assert_eq!(check_system_record(2, &r), Ok(()));
    }

    #[test]
    fn iterates_and_parses() {
        let rec = record(
            1024,
            1,
            0,
            &[
                resident(AT_STANDARD_INFORMATION, "", &[1; 48]),
                non_resident(AT_DATA, "$J", 0, 9, 40960, &[0x21, 10, 0x34, 0x12]),
            ],
        );
        let v: Vec<_> = AttrIter::new(&rec).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].type_code, AT_STANDARD_INFORMATION);
        assert_eq!(v[0].value().unwrap(), &[1u8; 48][..]);
        assert!(v[1].is_non_resident());
        assert!(v[1].name_is("$J"));
        assert!(!v[1].name_is("$I30"));
        match v[1].form {
            Form::NonResident {
                highest_vcn,
                mapping_pairs,
                ..
            } => {
                assert_eq!(highest_vcn, 9);
                assert_eq!(&mapping_pairs[..4], &[0x21, 10, 0x34, 0x12]);
            }
            _ => core::panic!(),
        }
    }

    #[test]
    fn corrupt_attributes_stop_the_walk() {
        let good = record(
            1024,
            1,
            0,
            &[resident(AT_STANDARD_INFORMATION, "", &[1; 48])],
        );
        let first = le::u16(&good, 0x14).unwrap() as usize;
        let cases: &[(usize, &[u8])] = &[
            (first + 4, &[0, 0, 0, 0]),       // length 0
            (first + 4, &[0xF0, 0x0F, 0, 0]), // beyond bytes_in_use
            (first + 4, &[0x4C, 0, 0, 0]),    // not a multiple of 8: the next one is bad
            (0x18, &[0x60, 0, 0, 0]),         // bytes_in_use cuts the attribute
        ];
        for (off, bytes) in cases {
            let mut r = good.clone();
            r[*off..*off + bytes.len()].copy_from_slice(bytes);
            let v: Vec<_> = AttrIter::new(&r).collect();
            assert!(
                v.last().is_some_and(|x| x.is_err()),
                "{off:#x} {bytes:?}: {v:?}"
            );
        }
        // What the reference's walk tolerates: type 0, a value or a name outside the
        // attribute (read as empty), the stated value length kept.
        let tolerated: &[(usize, &[u8])] = &[
            (first, &[0, 0, 0, 0]),
            (first + 0x10, &[0xFF, 0, 0, 0]),
            (first + 0x14, &[0xFF, 0xFF]),
            (first + 9, &[40]),
        ];
        for (off, bytes) in tolerated {
            let mut r = good.clone();
            r[*off..*off + bytes.len()].copy_from_slice(bytes);
            let v: Vec<_> = AttrIter::new(&r).collect();
            assert!(v.len() == 1 && v[0].is_ok(), "{off:#x} {bytes:?}: {v:?}");
        }
        // The non-resident form in an attribute too short for its header: the header is read
        // past the length, the mapping pairs outside it read as empty (decoding then fails).
        let mut r = good.clone();
        r[first + 8] = 2;
        r[first + 0x20] = 0x40;
        let a = AttrIter::new(&r).next().unwrap().unwrap();
        assert!(matches!(
            a.form,
            Form::NonResident {
                mapping_pairs: [],
                ..
            }
        ));
        let mut r = good.clone();
        r[first + 0x10] = 0xFF;
        let a = AttrIter::new(&r).next().unwrap().unwrap();
        assert!(matches!(a.form, Form::Resident { value: [], .. }));
        assert_eq!(a.stated_value_length, 0xFF);
        // attrs_offset beyond the record.
        let mut r = good.clone();
        r[0x14..0x16].copy_from_slice(&2000u16.to_le_bytes());
        assert!(AttrIter::new(&r).next().unwrap().is_err());
    }
}
