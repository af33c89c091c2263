//! MFT records ("FILE" records) and the update-sequence ("multi-sector transfer") fixup.
//!
//! Layout from the published NTFS documentation. Every record (and every INDX block) ends
//! each 512-byte stride with a copy of the update sequence number (USN); the real last two
//! bytes of each stride are kept in the update sequence array (USA) at `usa_ofs`. The stride
//! is always 512 bytes (`NTFS_BLOCK_SIZE`), whatever the sector size: a 4096-byte record on
//! a 4Kn disk has `usa_count` 9 (verified with `mkntfs -s 4096`).
use super::{conv, le};
use core::fmt;

/// `magic` ("FILE").
pub const FILE_MAGIC: [u8; 4] = *b"FILE";
/// `magic` of a record that failed a fixup on disk ("BAAD").
pub const BAAD_MAGIC: [u8; 4] = *b"BAAD";
/// The fixup stride.
pub const NTFS_BLOCK_SIZE: usize = 512;

const OFF_MAGIC: usize = 0x00;
const OFF_USA_OFS: usize = 0x04;
const OFF_USA_COUNT: usize = 0x06;
const OFF_LSN: usize = 0x08;
const OFF_SEQUENCE_NUMBER: usize = 0x10;
const OFF_LINK_COUNT: usize = 0x12;
const OFF_ATTRS_OFFSET: usize = 0x14;
const OFF_FLAGS: usize = 0x16;
const OFF_BYTES_IN_USE: usize = 0x18;
const OFF_BYTES_ALLOCATED: usize = 0x1C;
const OFF_BASE_MFT_RECORD: usize = 0x20;
const OFF_NEXT_ATTR_INSTANCE: usize = 0x28;
/// Size of the fixed header we read (the record number at 0x2C is optional, NTFS 3.1).
pub const HEADER_SIZE: usize = 0x30;

/// `flags`: the record is in use.
pub const MFT_RECORD_IN_USE: u16 = 0x0001;
/// `flags`: the record is a directory.
pub const MFT_RECORD_IS_DIRECTORY: u16 = 0x0002;

/// The header fields of an MFT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Magic ("FILE", "BAAD", …).
    pub magic: [u8; 4],
    /// Byte offset of the update sequence array.
    pub usa_ofs: u16,
    /// Entries in the USA, including the USN itself.
    pub usa_count: u16,
    /// $LogFile sequence number.
    pub lsn: u64,
    /// Sequence number (reuse count).
    pub sequence_number: u16,
    /// Hard link count.
    pub link_count: u16,
    /// Byte offset of the first attribute.
    pub attrs_offset: u16,
    /// `MFT_RECORD_*` flags.
    pub flags: u16,
    /// Bytes used in the record.
    pub bytes_in_use: u32,
    /// Bytes allocated for the record (= the volume's record size).
    pub bytes_allocated: u32,
    /// Record number of the base record (low 48 bits of the reference; 0 for a base record).
    pub base_mft_record: u64,
    /// The whole base reference (record number and sequence number): the reference's walk
    /// takes a record as a base record only when this is 0.
    pub base_reference: u64,
    /// Next attribute instance number.
    pub next_attr_instance: u16,
}

impl RecordHeader {
    /// Reads the header; None when `b` is shorter than the header.
    pub fn parse(b: &[u8]) -> Option<RecordHeader> {
        if b.len() < HEADER_SIZE {
            return None;
        }
        Some(RecordHeader {
            magic: le::bytes::<4>(b, OFF_MAGIC)?,
            usa_ofs: le::u16(b, OFF_USA_OFS)?,
            usa_count: le::u16(b, OFF_USA_COUNT)?,
            lsn: le::u64(b, OFF_LSN)?,
            sequence_number: le::u16(b, OFF_SEQUENCE_NUMBER)?,
            link_count: le::u16(b, OFF_LINK_COUNT)?,
            attrs_offset: le::u16(b, OFF_ATTRS_OFFSET)?,
            flags: le::u16(b, OFF_FLAGS)?,
            bytes_in_use: le::u32(b, OFF_BYTES_IN_USE)?,
            bytes_allocated: le::u32(b, OFF_BYTES_ALLOCATED)?,
            base_mft_record: le::u64(b, OFF_BASE_MFT_RECORD)? & 0x0000_FFFF_FFFF_FFFF,
            base_reference: le::u64(b, OFF_BASE_MFT_RECORD)?,
            next_attr_instance: le::u16(b, OFF_NEXT_ATTR_INSTANCE)?,
        })
    }
    /// The magic as the reference prints it (`0x%08x` of the little-endian u32).
    pub fn magic_u32(&self) -> u32 {
        u32::from_le_bytes(self.magic)
    }
    /// In use?
    pub fn in_use(&self) -> bool {
        self.flags & MFT_RECORD_IN_USE != 0
    }
    /// A directory?
    pub fn is_directory(&self) -> bool {
        self.flags & MFT_RECORD_IS_DIRECTORY != 0
    }
}

/// Why a fixup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixupError {
    /// The update sequence array does not fit the record (odd offset, wrong count, out of range).
    BadArray {
        /// The record's magic (le32).
        magic: u32,
        /// The buffer size.
        size: u32,
        /// The update sequence array offset.
        usa_ofs: u16,
        /// The update sequence array count (the USN and one entry per stride).
        usa_count: u16,
    },
    /// A stride does not end with the USN: the record was torn while being written.
    Incomplete {
        /// The record's magic (le32).
        magic: u32,
        /// The buffer size.
        size: u32,
        /// The update sequence array offset.
        usa_ofs: u16,
        /// The update sequence array count (the USN and one entry per stride).
        usa_count: u16,
        /// The last two bytes of the first stride that does not end with the USN.
        data: u16,
        /// The update sequence number.
        usn: u16,
    },
}

impl fmt::Display for FixupError {
    /// The reference's texts: the `_warn` variant at mount time for a bad array, and
    /// `Incomplete multi-sector transfer` (note the different spacing, as printed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FixupError::BadArray { magic, size, usa_ofs, usa_count } => write!(
                f,
                "ntfs_mst_post_read_fixup_warn: magic: 0x{magic:08x}  size: {size}   usa_ofs: {usa_ofs}  usa_count: {usa_count}: Invalid argument"
            ),
            FixupError::Incomplete { magic, size, usa_ofs, usa_count, data, usn } => write!(
                f,
                "Incomplete multi-sector transfer: magic: 0x{magic:08x}  size: {size}  usa_ofs: {usa_ofs}  usa_count: {}  data: {data}  usn: {usn}: Input/output error",
                // The reference prints the count of strides here, one less than the field
                // (verified on the corrupted corpus: usa_count 3 is printed as 2).
                usa_count.wrapping_sub(1)
            ),
        }
    }
}

/// Undoes the update-sequence protection of a record or INDX block in place (stride 512).
/// On error `buf` is left unchanged.
pub fn post_read_fixup(buf: &mut [u8]) -> Result<(), FixupError> {
    let size = buf.len();
    let magic = le::u32(buf, OFF_MAGIC).unwrap_or(0);
    let usa_ofs = le::u16(buf, OFF_USA_OFS).unwrap_or(0);
    let usa_count = le::u16(buf, OFF_USA_COUNT).unwrap_or(0);
    let bad = FixupError::BadArray {
        magic,
        size: conv::u32_sat(size),
        usa_ofs,
        usa_count,
    };
    let ofs = usa_ofs as usize;
    let count = usa_count as usize;
    let usa_end = ofs + 2 * count;
    if size % NTFS_BLOCK_SIZE != 0
        || size == 0
        || ofs % 2 != 0
        || count == 0
        || count - 1 != size / NTFS_BLOCK_SIZE
        || usa_end > NTFS_BLOCK_SIZE - 2
    {
        return Err(bad);
    }
    let usn = le::u16(buf, ofs).unwrap_or(0);
    for i in 1..count {
        let end = i * NTFS_BLOCK_SIZE - 2;
        let data = le::u16(buf, end).unwrap_or(0);
        if data != usn {
            return Err(FixupError::Incomplete {
                magic,
                size: conv::u32_sat(size),
                usa_ofs,
                usa_count,
                data,
                usn,
            });
        }
    }
    for i in 1..count {
        let end = i * NTFS_BLOCK_SIZE - 2;
        // In range: the array and every stride end were checked above.
        let _ = le::copy::<2>(buf, ofs + 2 * i, end);
    }
    Ok(())
}

/// Applies the update-sequence protection (the inverse of [`post_read_fixup`]) with the USN
/// already in the array; for tests and for writers of records (metadata mode).
pub fn pre_write_fixup(buf: &mut [u8]) -> bool {
    let size = buf.len();
    let (Some(ofs), Some(count)) = (le::u16(buf, OFF_USA_OFS), le::u16(buf, OFF_USA_COUNT)) else {
        return false;
    };
    let (ofs, count) = (ofs as usize, count as usize);
    if count == 0
        || count - 1 != size / NTFS_BLOCK_SIZE
        || ofs % 2 != 0
        || ofs + 2 * count > NTFS_BLOCK_SIZE - 2
    {
        return false;
    }
    let Some(usn) = le::bytes::<2>(buf, ofs) else {
        return false;
    };
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

/// Why a record cannot be used (after the fixup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Not "FILE".
    NoFileMagic {
        /// The record number.
        record: u64,
        /// Its magic (le32).
        magic: u32,
    },
    /// `bytes_allocated` differs from the volume's record size.
    AllocationSize {
        /// The record number.
        record: u64,
        /// The volume's record size.
        expected: u32,
        /// The record's `bytes_allocated`.
        found: u32,
    },
    /// The header cannot be read (the buffer is too short).
    BadHeader {
        /// The record number.
        record: u64,
    },
    /// `bytes_in_use` is larger than `bytes_allocated`: refused when the reference's mount
    /// opens the record, tolerated by its MFT walk (see [`check_in_use`]).
    InUseSize {
        /// The record number.
        record: u64,
        /// Its `bytes_in_use`.
        in_use: u32,
        /// Its `bytes_allocated`.
        allocated: u32,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordError::NoFileMagic { record, magic } => {
                write!(f, "Record {record} has no FILE magic (0x{magic:x})")
            }
            RecordError::AllocationSize {
                record,
                expected,
                found,
            } => {
                write!(
                    f,
                    "Record {record} has corrupt allocation size ({expected} <> {found})"
                )
            }
            RecordError::BadHeader { record } => write!(f, "Record {record} is corrupt"),
            RecordError::InUseSize {
                record,
                in_use,
                allocated,
            } => write!(
                f,
                "Record {record} has corrupt in-use size ({in_use} > {allocated})"
            ),
        }
    }
}

/// Checks a fixed-up record's header the way the reference does before using it.
pub fn check_record(record: u64, buf: &[u8]) -> Result<RecordHeader, RecordError> {
    let h = RecordHeader::parse(buf).ok_or(RecordError::BadHeader { record })?;
    if h.magic != FILE_MAGIC {
        return Err(RecordError::NoFileMagic {
            record,
            magic: h.magic_u32(),
        });
    }
    if h.bytes_allocated as usize != buf.len() {
        return Err(RecordError::AllocationSize {
            record,
            expected: conv::u32_sat(buf.len()),
            found: h.bytes_allocated,
        });
    }
    Ok(h)
}

/// The in-use size check of the reference's inode open (black-box: `bytes_in_use` 0x408 in
/// records 0–6, 9 and 10 fails the mount with this line; in a user record, or in records 7,
/// 8 and 11, the MFT walk takes the record, its attributes bounded by the record's end).
pub fn check_in_use(record: u64, h: &RecordHeader) -> Result<(), RecordError> {
    if h.bytes_in_use > h.bytes_allocated {
        return Err(RecordError::InUseSize {
            record,
            in_use: h.bytes_in_use,
            allocated: h.bytes_allocated,
        });
    }
    Ok(())
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

    /// An empty in-use record of `size` bytes: header, one END marker, fixups applied.
    pub(crate) fn fixture(size: usize, usn: u16) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[0..4].copy_from_slice(&FILE_MAGIC);
        let count = size / 512 + 1;
        b[4..6].copy_from_slice(&0x30u16.to_le_bytes());
        b[6..8].copy_from_slice(&(count as u16).to_le_bytes());
        b[0x10..0x12].copy_from_slice(&1u16.to_le_bytes());
        let attrs = (0x30 + 2 * count + 7) & !7;
        b[0x14..0x16].copy_from_slice(&(attrs as u16).to_le_bytes());
        b[0x16..0x18].copy_from_slice(&MFT_RECORD_IN_USE.to_le_bytes());
        b[0x18..0x1C].copy_from_slice(&((attrs + 8) as u32).to_le_bytes());
        b[0x1C..0x20].copy_from_slice(&(size as u32).to_le_bytes());
        b[attrs..attrs + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        b[0x30..0x32].copy_from_slice(&usn.to_le_bytes());
        // Recognisable bytes at the end of each stride, to see them restored.
        for i in 1..count {
            b[i * 512 - 2] = 0xA0 + i as u8;
            b[i * 512 - 1] = 0x0B;
        }
        assert!(pre_write_fixup(&mut b));
        b
    }

    #[test]
    fn round_trip_all_sizes() {
        for size in [512usize, 1024, 2048, 4096] {
            let b = fixture(size, 7);
            for i in 1..size / 512 + 1 {
                assert_eq!(&b[i * 512 - 2..i * 512], &[7, 0]);
            }
            let mut c = b.clone();
            post_read_fixup(&mut c).unwrap();
            for i in 1..size / 512 + 1 {
                assert_eq!(&c[i * 512 - 2..i * 512], &[0xA0 + i as u8, 0x0B]);
            }
            let h = check_record(5, &c).unwrap();
            assert!(h.in_use());
            assert_eq!(h.bytes_allocated as usize, size);
        }
    }

    #[test]
    fn fixup_errors() {
        let good = fixture(1024, 6);
        // Torn write: second stride ends with another USN.
        let mut b = good.clone();
        b[1022] = 1;
        b[1023] = 2;
        let e = post_read_fixup(&mut b).unwrap_err();
        assert_eq!(b, {
            let mut x = good.clone();
            x[1022] = 1;
            x[1023] = 2;
            x
        });
        assert_eq!(
            std::format!("{e}"),
            "Incomplete multi-sector transfer: magic: 0x454c4946  size: 1024  usa_ofs: 48  usa_count: 2  data: 513  usn: 6: Input/output error"
        );
        // usa_count 2 for 1024 bytes, odd usa_ofs, array out of range.
        for (off, v) in [(6usize, 2u16), (4, 47), (4, 508), (6, 0)] {
            let mut b = good.clone();
            b[off..off + 2].copy_from_slice(&v.to_le_bytes());
            assert!(
                matches!(post_read_fixup(&mut b), Err(FixupError::BadArray { .. })),
                "{off} {v}"
            );
        }
        let mut b = good.clone();
        b[6] = 2;
        assert_eq!(
            std::format!("{}", post_read_fixup(&mut b).unwrap_err()),
            "ntfs_mst_post_read_fixup_warn: magic: 0x454c4946  size: 1024   usa_ofs: 48  usa_count: 2: Invalid argument"
        );
        assert!(post_read_fixup(&mut []).is_err());
        assert!(post_read_fixup(&mut [0u8; 100]).is_err());
    }

    #[test]
    fn record_errors() {
        let mut b = fixture(1024, 1);
        post_read_fixup(&mut b).unwrap();
        let mut m = b.clone();
        m[0] = 0;
        assert_eq!(
            std::format!("{}", check_record(0, &m).unwrap_err()),
            "Record 0 has no FILE magic (0x454c4900)"
        );
        let mut m = b.clone();
        m[0x1C..0x20].copy_from_slice(&1023u32.to_le_bytes());
        assert_eq!(
            std::format!("{}", check_record(73, &m).unwrap_err()),
            "Record 73 has corrupt allocation size (1024 <> 1023)"
        );
        let mut m = b.clone();
        m[0x18..0x1C].copy_from_slice(&2000u32.to_le_bytes());
        let h = check_record(1, &m).unwrap();
        assert_eq!(
            std::format!("{}", check_in_use(1, &h).unwrap_err()),
            "Record 1 has corrupt in-use size (2000 > 1024)"
        );
        assert!(check_in_use(1, &check_record(1, &b).unwrap()).is_ok());
        assert!(check_record(1, &b[..20]).is_err());
    }
}
