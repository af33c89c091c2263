//! `$ATTRIBUTE_LIST` entries: where each attribute of a file with extension records lives.
//!
//! Layout from the published NTFS documentation (`ATTR_LIST_ENTRY`): type, entry length,
//! name length/offset, lowest VCN, MFT reference of the record holding the attribute,
//! instance, name.
use super::le;

const OFF_TYPE: usize = 0x00;
const OFF_LENGTH: usize = 0x04;
const OFF_NAME_LENGTH: usize = 0x06;
const OFF_NAME_OFFSET: usize = 0x07;
const OFF_LOWEST_VCN: usize = 0x08;
const OFF_MFT_REFERENCE: usize = 0x10;
const OFF_INSTANCE: usize = 0x18;
/// Smallest valid entry.
const MIN_ENTRY: usize = 0x1A;

/// One attribute list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Attribute type.
    pub type_code: u32,
    /// Name (UTF-16LE bytes).
    pub name: &'a [u8],
    /// lowest_vcn of the extent.
    pub lowest_vcn: i64,
    /// MFT record number holding the attribute (low 48 bits of the reference).
    pub mft_record: u64,
    /// Sequence number part of the reference.
    pub sequence: u16,
    /// Instance of the attribute inside that record.
    pub instance: u16,
}

/// A malformed entry at byte `at` of the list (the reference: `Corrupt attribute list entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListError {
    /// Byte offset of the entry inside the list value.
    pub at: usize,
}

/// Iterates the entries of an attribute list value.
#[derive(Debug, Clone)]
pub struct EntryIter<'a> {
    v: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> EntryIter<'a> {
    /// Entries of the list value `v`.
    pub fn new(v: &'a [u8]) -> Self {
        EntryIter {
            v,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = Result<Entry<'a>, ListError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.v.len() {
            return None;
        }
        let at = self.pos;
        let parse = || -> Option<(Entry<'a>, usize)> {
            let e = self.v.get(at..)?;
            let length = le::u16(e, OFF_LENGTH)? as usize;
            if length < MIN_ENTRY || length > e.len() {
                return None;
            }
            let e = e.get(..length)?;
            let name_length = le::u8(e, OFF_NAME_LENGTH)? as usize;
            let name_offset = le::u8(e, OFF_NAME_OFFSET)? as usize;
            let name: &[u8] = if name_length == 0 {
                &[]
            } else {
                e.get(name_offset..name_offset + 2 * name_length)?
            };
            // Type 0 is refused (black-box: an entry retyped 0 gives `Corrupt attribute
            // list entry` and the file is skipped).
            let type_code = le::u32(e, OFF_TYPE)?;
            if type_code == 0 {
                return None;
            }
            let mref = le::u64(e, OFF_MFT_REFERENCE)?;
            Some((
                Entry {
                    type_code,
                    name,
                    lowest_vcn: le::i64(e, OFF_LOWEST_VCN)?,
                    mft_record: mref & 0x0000_FFFF_FFFF_FFFF,
                    sequence: (mref >> 48) as u16,
                    instance: le::u16(e, OFF_INSTANCE)?,
                },
                length,
            ))
        };
        match parse() {
            Some((e, len)) => {
                self.pos += len;
                Some(Ok(e))
            }
            None => {
                self.done = true;
                Some(Err(ListError { at }))
            }
        }
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

    /// One entry.
    pub(crate) fn entry(
        type_code: u32,
        name: &str,
        lowest_vcn: i64,
        record: u64,
        instance: u16,
    ) -> Vec<u8> {
        let len = (MIN_ENTRY + 2 * name.len() + 7) & !7;
        let mut e = vec![0u8; len];
        e[0..4].copy_from_slice(&type_code.to_le_bytes());
        e[4..6].copy_from_slice(&(len as u16).to_le_bytes());
        e[6] = name.len() as u8;
        e[7] = MIN_ENTRY as u8;
        e[8..16].copy_from_slice(&lowest_vcn.to_le_bytes());
        e[16..24].copy_from_slice(&(record | 1 << 48).to_le_bytes());
        e[24..26].copy_from_slice(&instance.to_le_bytes());
        for (i, c) in name.bytes().enumerate() {
            e[MIN_ENTRY + 2 * i] = c;
        }
        e
    }

    #[test]
    fn parses_entries() {
        let mut v = entry(0x10, "", 0, 5, 0);
        v.extend(entry(0x80, "ads", 100, 77, 3));
        let es: Vec<_> = EntryIter::new(&v).collect::<Result<_, _>>().unwrap();
        assert_eq!(es.len(), 2);
        assert_eq!(es[1].type_code, 0x80);
        assert_eq!(es[1].name, &[b'a', 0, b'd', 0, b's', 0][..]);
        assert_eq!(es[1].lowest_vcn, 100);
        assert_eq!(es[1].mft_record, 77);
        assert_eq!(es[1].sequence, 1);
        assert_eq!(es[1].instance, 3);
    }

    #[test]
    fn malformed_entries() {
        let good = entry(0x80, "ads", 0, 7, 0);
        for (off, val) in [(4usize, 0u8), (4, 0x10), (4, 0xF0), (6, 40)] {
            let mut v = good.clone();
            v[off] = val;
            let r: Vec<_> = EntryIter::new(&v).collect();
            assert_eq!(r.last(), Some(&Err(ListError { at: 0 })), "{off} {val}");
        }
        assert!(EntryIter::new(&good[..10]).next().unwrap().is_err());
    }
}
