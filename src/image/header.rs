//! The image header (`struct image_hdr` of the reference, packed, little-endian).
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0  | 16 | magic `"\0ntfsclone-image"` |
//! | 16 | 1  | major version (10) |
//! | 17 | 1  | minor version (1 = the backup boot sector is saved) |
//! | 18 | 4  | cluster size in bytes |
//! | 22 | 8  | size of the source device in bytes |
//! | 30 | 8  | number of clusters in the volume (signed) |
//! | 38 | 8  | clusters in use (progress bookkeeping only) |
//! | 46 | 4  | offset of the cluster stream (56; absent in the pre-10 layout) |
//! | 50 | 6  | zero padding up to the offset |
//!
//! Images older than version 10 have a 46-byte header in host byte order (little-endian on
//! every machine that made them in practice) and the stream starts at byte 46.
use super::{as_signed, le_field};
use crate::error::{Error, Result};

/// `IMAGE_MAGIC`.
pub const MAGIC: [u8; 16] = *b"\0ntfsclone-image";
/// Version written (`NTFSCLONE_IMG_VER_MAJOR`/`_MINOR`).
pub const VERSION_MAJOR: u8 = 10;
/// 10.1: the backup boot sector is saved as the last record.
pub const VERSION_MINOR: u8 = 1;
/// Size of the pre-10 header, and of the part every version shares.
pub const HEADER_SIZE_OLD: usize = 46;
/// Byte offset of the `offset_to_image_data` field (version 10).
pub const OFF_OFFSET_TO_DATA: usize = 46;
/// Header bytes up to and including `offset_to_image_data`.
pub const HEADER_FIELDS_SIZE: usize = 50;
/// `(sizeof(image_hdr) + 7) & !7`: where the stream starts in the images we write.
pub const HEADER_SIZE: usize = 56;
/// [`HEADER_SIZE`] as the header's 32-bit `offset_to_image_data` field.
const HEADER_SIZE_FIELD: u32 = 56;
/// [`HEADER_FIELDS_SIZE`] as a 32-bit offset.
const HEADER_FIELDS_SIZE_U32: u32 = 50;
const _: () = assert!(
    HEADER_SIZE_FIELD as usize == HEADER_SIZE
        && HEADER_FIELDS_SIZE_U32 as usize == HEADER_FIELDS_SIZE
);
/// Largest NTFS cluster: the image format takes what NTFS allows.
pub use crate::ntfs::boot_sector::MAX_CLUSTER_SIZE;

const OFF_MAJOR: usize = 16;
const OFF_MINOR: usize = 17;
const OFF_CLUSTER_SIZE: usize = 18;
const OFF_DEVICE_SIZE: usize = 22;
const OFF_NR_CLUSTERS: usize = 30;
const OFF_INUSE: usize = 38;

/// A parsed or to-be-written header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Major version as displayed (pre-10 images display as 10).
    pub major: u8,
    /// Minor version as displayed.
    pub minor: u8,
    /// Bytes per cluster: a power of two, at most [`MAX_CLUSTER_SIZE`].
    pub cluster_size: u32,
    /// Size of the source device in bytes; decides the size of the last (backup boot) record.
    pub device_size: u64,
    /// Clusters in the volume; the stream covers positions 0..=nr_clusters.
    pub nr_clusters: u64,
    /// Clusters in use (progress only, never trusted).
    pub inuse: u64,
    /// Byte offset of the stream as displayed (56 for pre-10 images).
    pub offset_to_data: u32,
}

/// What the first 46 bytes say about the rest of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Pre-10 image: the stream starts right after the 46 bytes.
    Old,
    /// Version 10.x: read the 4-byte offset field next, then skip to it.
    V10,
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(le_field(b, off))
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(le_field(b, off))
}

impl Header {
    /// The header of a new 10.1 image.
    pub fn new(cluster_size: u32, device_size: u64, nr_clusters: u64, inuse: u64) -> Header {
        Header {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            cluster_size,
            device_size,
            nr_clusters,
            inuse,
            offset_to_data: HEADER_SIZE_FIELD,
        }
    }

    /// The 56 bytes written at the start of an image.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..16].copy_from_slice(&MAGIC);
        b[OFF_MAJOR] = self.major;
        b[OFF_MINOR] = self.minor;
        b[OFF_CLUSTER_SIZE..OFF_CLUSTER_SIZE + 4].copy_from_slice(&self.cluster_size.to_le_bytes());
        b[OFF_DEVICE_SIZE..OFF_DEVICE_SIZE + 8].copy_from_slice(&self.device_size.to_le_bytes());
        b[OFF_NR_CLUSTERS..OFF_NR_CLUSTERS + 8].copy_from_slice(&self.nr_clusters.to_le_bytes());
        b[OFF_INUSE..OFF_INUSE + 8].copy_from_slice(&self.inuse.to_le_bytes());
        b[OFF_OFFSET_TO_DATA..OFF_OFFSET_TO_DATA + 4]
            .copy_from_slice(&self.offset_to_data.to_le_bytes());
        b
    }

    /// Parses the 46 bytes every version shares. Checks the magic and the version the way the
    /// reference does (any 10.x minor is accepted, below 10 is the old layout), then checks that
    /// the numbers are sane, so that nothing later allocates or loops on absurd values.
    pub fn parse_start(b: &[u8; HEADER_SIZE_OLD]) -> Result<(Header, Layout)> {
        if le_field::<16>(b, 0) == crate::disk::image::MAGIC {
            // A restore recognises a disk image (file or stdin) before it gets here: met here,
            // it is nested where a partition's special image should be, or the file changed.
            return Err(Error::message(format_args!(
                "a whole-disk image where an NTFS special image should be"
            )));
        }
        if le_field::<16>(b, 0) != MAGIC {
            return Err(Error::fatal(format_args!(
                "Input file is not an image! (invalid magic)\n"
            )));
        }
        let (major, minor) = (b[OFF_MAJOR], b[OFF_MINOR]);
        let layout = if major < VERSION_MAJOR {
            Layout::Old
        } else if major > VERSION_MAJOR {
            return Err(Error::fatal(format_args!(
                "Do not know how to handle image format version {major}.{minor}.  \
                 Please obtain a newer version of ntfsclone.\n"
            )));
        } else {
            Layout::V10
        };
        let h = Header {
            // Old images are displayed as the current version (as the reference does).
            major: if layout == Layout::Old {
                VERSION_MAJOR
            } else {
                major
            },
            minor: if layout == Layout::Old {
                VERSION_MINOR
            } else {
                minor
            },
            cluster_size: le32(b, OFF_CLUSTER_SIZE),
            device_size: le64(b, OFF_DEVICE_SIZE),
            nr_clusters: le64(b, OFF_NR_CLUSTERS),
            inuse: le64(b, OFF_INUSE),
            offset_to_data: HEADER_SIZE_FIELD,
        };
        h.check()?;
        Ok((h, layout))
    }

    /// Rejects headers no NTFS volume can have (the reference trusts them and misbehaves).
    ///
    /// A negative `nr_clusters` (the field is signed) is refused: the reference's restore loop
    /// (`while pos <= nr_clusters`) then reads no record at all and reports success with
    /// nothing restored, a silently empty copy.
    pub fn check(&self) -> Result<()> {
        let cs = self.cluster_size;
        if cs == 0 || !cs.is_power_of_two() || cs > MAX_CLUSTER_SIZE {
            return Err(Error::message(format_args!(
                "Corrupt image header: cluster size {cs} is not a power of two between 1 and {MAX_CLUSTER_SIZE} bytes"
            )));
        }
        let Some(last) = self.last_position() else {
            return Err(Error::message(format_args!(
                "Corrupt image header: negative cluster count {}",
                as_signed(self.nr_clusters)
            )));
        };
        // Positions 0..=nr_clusters must be byte offsets below 2^63.
        let fits = last
            .checked_add(1)
            .and_then(|n| n.checked_mul(u64::from(cs)))
            .is_some_and(|b| b <= i64::MAX.unsigned_abs());
        if !fits {
            return Err(Error::message(format_args!(
                "Corrupt image header: {} clusters of {cs} bytes make a volume larger than 2^63 bytes",
                as_signed(self.nr_clusters)
            )));
        }
        Ok(())
    }

    /// The last cluster position of the stream (`nr_clusters`, the backup boot sector), or None
    /// when the signed field is negative: then the stream has no position at all.
    pub fn last_position(&self) -> Option<u64> {
        (as_signed(self.nr_clusters) >= 0).then_some(self.nr_clusters)
    }

    /// Reads the `offset_to_image_data` field (bytes 46..50 of a version 10 image) and returns
    /// how many bytes to skip after it to reach the stream. As in the reference (black-box), the
    /// skip is `offset − 50` taken as a signed 32-bit number: offsets below 50 and from
    /// 2^31 + 50 up skip nothing (the stream is then read from byte 50).
    pub fn set_offset(&mut self, field: [u8; 4]) -> u32 {
        self.offset_to_data = u32::from_le_bytes(field);
        let skip = i32::from_le_bytes(
            self.offset_to_data
                .wrapping_sub(HEADER_FIELDS_SIZE_U32)
                .to_le_bytes(),
        );
        skip.max(0).unsigned_abs()
    }

    /// Bytes of the volume: nr_clusters × cluster_size, as the reference's signed 64-bit product
    /// (cannot overflow after [`Header::check`]; negative for a negative `nr_clusters`).
    pub fn volume_size(&self) -> i64 {
        as_signed(self.nr_clusters).wrapping_mul(i64::from(self.cluster_size))
    }

    /// Bytes of the `CMD_NEXT` record at position `pos` (`copy_cluster`'s rule): a full cluster,
    /// except for the cluster reaching the end of the device (the backup boot sector), which
    /// holds only the bytes up to `device_size`. None when the position lies beyond the device.
    pub fn record_size(&self, pos: u64) -> Option<usize> {
        cluster_record_size(self.cluster_size, self.device_size, pos)
    }
}

/// The size rule shared by the writer and the reader: `cluster_size` bytes, except when
/// `(pos+1)·cluster_size >= device_size`, then `device_size − pos·cluster_size` (None if negative).
pub fn cluster_record_size(cluster_size: u32, device_size: u64, pos: u64) -> Option<usize> {
    let cs = u128::from(cluster_size);
    let start = u128::from(pos) * cs;
    let dev = u128::from(device_size);
    if start + cs >= dev {
        // At most one cluster (2 MiB) here: the conversion cannot fail.
        dev.checked_sub(start).and_then(|n| usize::try_from(n).ok())
    } else {
        Some(cluster_size as usize)
    }
}

#[cfg(test)]
mod tests {
    // Tests index their own fixed inputs: a panic is a failed test.
    #![allow(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )]
    use super::*;

    fn sample() -> Header {
        Header::new(4096, 67_108_864, 16383, 798)
    }

    #[test]
    fn writes_the_reference_bytes() {
        // The xxd of a real image, spec §1.1.
        let want: [u8; 56] = [
            0x00, 0x6e, 0x74, 0x66, 0x73, 0x63, 0x6c, 0x6f, 0x6e, 0x65, 0x2d, 0x69, 0x6d, 0x61,
            0x67, 0x65, //
            0x0a, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
            0xff, 0x3f, //
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1e, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x38, 0x00, //
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(sample().to_bytes(), want);
    }

    fn start(b: &[u8]) -> [u8; 46] {
        let mut a = [0u8; 46];
        a.copy_from_slice(&b[..46]);
        a
    }

    #[test]
    fn parses_versions() {
        let b = sample().to_bytes();
        let (h, l) = Header::parse_start(&start(&b)).unwrap();
        assert_eq!(l, Layout::V10);
        assert_eq!(h, sample());

        let mut m = b;
        m[17] = 7;
        assert_eq!(Header::parse_start(&start(&m)).unwrap().0.minor, 7);

        m[16] = 3;
        let (h, l) = Header::parse_start(&start(&m)).unwrap();
        assert_eq!((l, h.major, h.minor), (Layout::Old, 10, 1));

        m[16] = 11;
        m[17] = 1;
        let e = Header::parse_start(&start(&m)).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "ERROR: Do not know how to handle image format version 11.1.  Please obtain a newer version of ntfsclone.\n"
        );

        let mut m = b;
        m[1] = b'N';
        let e = Header::parse_start(&start(&m)).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "ERROR: Input file is not an image! (invalid magic)\n"
        );
    }

    #[test]
    fn rejects_absurd_numbers() {
        for (cs, nr) in [
            (0u32, 1u64),
            (3, 1),
            (4 << 20, 1),
            (4096, i64::MAX as u64),
            (4096, 1 << 51),
            (512, u64::MAX / 2),
        ] {
            let b = Header::new(cs, 1, nr, 0).to_bytes();
            assert!(Header::parse_start(&start(&b)).is_err(), "cs {cs} nr {nr}");
        }
        let b = Header::new(2 << 20, 1, (1 << 42) - 2, 0).to_bytes();
        assert!(Header::parse_start(&start(&b)).is_ok());
        // Negative cluster counts are refused (the reference restores nothing, exit 0).
        for nr in [u64::MAX, 1 << 63] {
            let b = Header::new(4096, 1, nr, 0).to_bytes();
            let e = Header::parse_start(&start(&b)).unwrap_err();
            assert!(
                std::format!("{e}").contains("negative cluster count"),
                "{e}"
            );
            assert_eq!(Header::new(4096, 1, nr, 0).last_position(), None);
        }
    }

    #[test]
    fn offset_field() {
        let mut h = sample();
        assert_eq!(h.set_offset(64u32.to_le_bytes()), 14);
        assert_eq!(h.set_offset(56u32.to_le_bytes()), 6);
        assert_eq!(h.set_offset(10u32.to_le_bytes()), 0);
        assert_eq!(h.offset_to_data, 10);
        // Signed 32-bit skip (black-box): 2^31 + 49 still skips, 2^31 + 50 and up do not.
        assert_eq!(h.set_offset(0x8000_0031u32.to_le_bytes()), 0x7fff_ffff);
        assert_eq!(h.set_offset(0x8000_0032u32.to_le_bytes()), 0);
        assert_eq!(h.set_offset(u32::MAX.to_le_bytes()), 0);
    }

    #[test]
    fn record_sizes() {
        let h = Header::new(4096, 16384 * 4096 + 512, 16384, 0);
        assert_eq!(h.record_size(0), Some(4096));
        assert_eq!(h.record_size(16383), Some(4096));
        assert_eq!(h.record_size(16384), Some(512));
        let h = Header::new(4096, 16383 * 4096, 16383, 0);
        assert_eq!(h.record_size(16382), Some(4096));
        assert_eq!(h.record_size(16383), Some(0));
        assert_eq!(h.record_size(16384), None);
    }
}
