//! What a partition holds, from its first sector: NTFS (its boot sector's OEM id; the NTFS
//! engine then checks everything else and refuses what it cannot copy), FAT (a BIOS parameter
//! block that [`super::fat::Fat::parse`] accepts), or anything else (copied raw).
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::fat::{self, Fat};

/// The content of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// An NTFS boot sector (OEM id `NTFS    `).
    Ntfs,
    /// A FAT file system.
    Fat(fat::Kind),
    /// Anything else (BitLocker, MSR, Linux, unknown, empty).
    Other,
}

impl Content {
    /// The code stored in disk images (1 NTFS, 2 FAT, 3 raw).
    pub fn code(self) -> u8 {
        match self {
            Content::Ntfs => 1,
            Content::Fat(_) => 2,
            Content::Other => 3,
        }
    }

    /// A short name for messages: "NTFS", "FAT32", "raw".
    pub fn name(self) -> &'static str {
        match self {
            Content::Ntfs => "NTFS",
            Content::Fat(k) => k.name(),
            Content::Other => "raw",
        }
    }
}

/// Classifies a partition of `part_len` bytes from its first sector (`boot`, 512 bytes or more).
pub fn detect(boot: &[u8], part_len: u64) -> Content {
    if boot.get(3..11) == Some(b"NTFS    ") {
        return Content::Ntfs;
    }
    match Fat::parse(boot, part_len) {
        Ok(f) => Content::Fat(f.kind),
        Err(_) => Content::Other,
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let mut ntfs = [0u8; 512];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(detect(&ntfs, 1 << 20), Content::Ntfs);
        let fat = fat::tests::fat16_boot(40000);
        assert_eq!(detect(&fat, 40000 * 512), Content::Fat(fat::Kind::Fat16));
        // A FAT that does not fit its partition is not treated as FAT.
        assert_eq!(detect(&fat, 1000), Content::Other);
        let mut bl = [0u8; 512];
        bl[3..11].copy_from_slice(b"-FVE-FS-");
        assert_eq!(detect(&bl, 1 << 20), Content::Other);
        assert_eq!(detect(&[], 0), Content::Other);
    }
}
