//! A read-only NTFS reader: just enough of the on-disk format to find every cluster in use.
//!
//! Follows Microsoft's and the Linux-NTFS project's published documentation of the on-disk
//! structures (boot sector, FILE records with update sequence arrays, attribute headers,
//! mapping pairs, attribute lists). One file per structure. No std, no file descriptors: all
//! I/O goes through [`crate::dev::ReadAt`]. Messages that the reference's library (libntfs-3g)
//! prints on stderr while mounting or walking are reproduced word for word where the reference
//! has one, because scripts and humans compare them.
// Parsers of untrusted bytes: no indexing that can panic, no lossy `as` casts.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
pub mod attr_list;
pub mod attribute;
pub mod boot_sector;
pub mod diag;
pub mod index;
pub mod mft_record;
pub mod mount;
pub mod runlist;
pub mod volume;
pub mod walk;
pub mod wipe;

pub use boot_sector::BootSector;
pub use volume::Volume;

/// Little-endian reads that fail (None) instead of panicking when out of range.
pub(crate) mod le {
    /// `N` bytes at `off`, or None.
    pub(crate) fn bytes<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        let s = b.get(off..end)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Some(a)
    }
    /// u8 at `off`.
    pub(crate) fn u8(b: &[u8], off: usize) -> Option<u8> {
        b.get(off).copied()
    }
    /// le16 at `off`.
    pub(crate) fn u16(b: &[u8], off: usize) -> Option<u16> {
        bytes::<2>(b, off).map(u16::from_le_bytes)
    }
    /// le32 at `off`.
    pub(crate) fn u32(b: &[u8], off: usize) -> Option<u32> {
        bytes::<4>(b, off).map(u32::from_le_bytes)
    }
    /// le64 at `off`.
    pub(crate) fn u64(b: &[u8], off: usize) -> Option<u64> {
        bytes::<8>(b, off).map(u64::from_le_bytes)
    }
    /// sle64 at `off`.
    pub(crate) fn i64(b: &[u8], off: usize) -> Option<i64> {
        bytes::<8>(b, off).map(i64::from_le_bytes)
    }
    /// Writes `v` at `off`; None (and nothing written) when out of range.
    pub(crate) fn put<const N: usize>(b: &mut [u8], off: usize, v: [u8; N]) -> Option<()> {
        let end = off.checked_add(N)?;
        b.get_mut(off..end)?.copy_from_slice(&v);
        Some(())
    }
    /// Copies the `N` bytes at `from` to `to`; None (and nothing written) when out of range.
    pub(crate) fn copy<const N: usize>(b: &mut [u8], from: usize, to: usize) -> Option<()> {
        let v = bytes::<N>(b, from)?;
        put(b, to, v)
    }
}

/// Integer conversions without lossy `as` casts.
pub(crate) mod conv {
    /// `x` when positive, else 0 (an on-disk signed size or VCN read as a count).
    pub(crate) fn nonneg(x: i64) -> u64 {
        x.max(0).unsigned_abs()
    }
    /// The same 64 bits read as unsigned (two's complement), as the reference's C casts do.
    pub(crate) fn bits_u64(x: i64) -> u64 {
        u64::from_ne_bytes(x.to_ne_bytes())
    }
    /// The same 64 bits read as signed (two's complement), as the reference's C casts do.
    pub(crate) fn bits_i64(x: u64) -> i64 {
        i64::from_ne_bytes(x.to_ne_bytes())
    }
    /// `x` as a u32 for a message, saturated (buffer lengths in messages are record or
    /// block sizes, far below 4 GiB).
    pub(crate) fn u32_sat(x: usize) -> u32 {
        u32::try_from(x).unwrap_or(u32::MAX)
    }
    /// `x` as a usize, saturated (on 32-bit targets a length past the address space then
    /// fails as a too large allocation or read instead of wrapping).
    pub(crate) fn usize_sat(x: u64) -> usize {
        usize::try_from(x).unwrap_or(usize::MAX)
    }
}

/// Well-known MFT record numbers (system files).
pub mod inode {
    /// `$MFT`.
    pub const MFT: u64 = 0;
    /// `$MFTMirr`.
    pub const MFTMIRR: u64 = 1;
    /// `$LogFile`.
    pub const LOGFILE: u64 = 2;
    /// `$Volume`.
    pub const VOLUME: u64 = 3;
    /// The root directory.
    pub const ROOT: u64 = 5;
    /// `$Bitmap`.
    pub const BITMAP: u64 = 6;
    /// `$Boot`.
    pub const BOOT: u64 = 7;
    /// `$AttrDef`.
    pub const ATTRDEF: u64 = 4;
    /// `$BadClus`.
    pub const BADCLUS: u64 = 8;
    /// `$Secure`.
    pub const SECURE: u64 = 9;
    /// `$UpCase`.
    pub const UPCASE: u64 = 10;
}

#[cfg(all(test, feature = "std"))]
// Tests build their inputs by hand at fixed offsets: a panic there is a failed test.
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests;
