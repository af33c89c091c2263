//! Whole disks: the partition table (GPT or DOS label), what each partition holds, and the
//! disk image format.
//!
//! Like `ntfs` and `image`, this is `no_std` + alloc and sees devices only through
//! [`crate::dev::ReadAt`] / [`crate::dev::WriteAt`]. Every parser here takes untrusted bytes:
//! it returns an error naming the structure and the byte offset, never panics, and never
//! allocates more than a fixed bound whatever the numbers it reads.
//!
//! - [`mbr`]: DOS labels (primary, extended and logical partitions) and the protective MBR.
//! - [`gpt`]: GPT headers and entry arrays, primary and backup, and their relocation to the end
//!   of a larger disk.
//! - [`layout`]: a disk's partition list, its checks, and the boot areas copied verbatim.
//! - [`fat`]: FAT12/16/32 used-cluster runs (the EFI system partition).
//! - [`detect`]: what a partition holds (NTFS, FAT, anything else).
//! - [`zero`]: all-zero block detection for raw partitions.
//! - [`image`]: the disk image stream (header, boot areas, one section per partition, index).
pub mod detect;
pub mod extents;
pub mod fat;
pub mod gpt;
pub mod image;
pub mod layout;
pub mod mbr;
pub mod table;
pub mod zero;

pub use layout::{Area, Layout, PartType, Partition, TableKind};

/// A GUID as stored on disk (the first three fields little-endian, as GPT keeps them).
pub type Guid = [u8; 16];

/// Formats a GUID in its usual text form (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B`).
pub fn guid_text(g: &Guid) -> crate::error::Text {
    let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, e0, e1, e2, e3, e4, e5] = *g;
    crate::text!(
        "{a3:02X}{a2:02X}{a1:02X}{a0:02X}-{b1:02X}{b0:02X}-{c1:02X}{c0:02X}-{d0:02X}{d1:02X}-\
         {e0:02X}{e1:02X}{e2:02X}{e3:02X}{e4:02X}{e5:02X}"
    )
}

/// Makes new identifiers (GPT disk and partition GUIDs, MBR disk signatures) from a seed the
/// caller draws from the system's random source (the no_std code cannot reach it).
#[derive(Debug, Clone)]
pub struct IdGen(u64);

impl IdGen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        IdGen(seed)
    }

    /// The next 64 random-looking bits (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A version 4 (random) GUID.
    pub fn guid(&mut self) -> Guid {
        let mut g = [0u8; 16];
        g[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        g[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        // Version 4 in the high nibble of the third field (stored little-endian: byte 7),
        // RFC 4122 variant in byte 8.
        g[7] = (g[7] & 0x0F) | 0x40;
        g[8] = (g[8] & 0x3F) | 0x80;
        g
    }

    /// A non-zero 32-bit MBR disk signature.
    pub fn signature(&mut self) -> u32 {
        loop {
            let v = self.next_u64().to_le_bytes();
            let s = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            if s != 0 {
                return s;
            }
        }
    }
}

/// Little-endian field access that fails (None) instead of panicking when out of range.
pub(crate) mod le {
    /// `N` bytes at `off`, or None.
    pub(crate) fn bytes<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        let s = b.get(off..end)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Some(a)
    }
    /// le16 at `off`.
    pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
        bytes(b, off).map(u16::from_le_bytes)
    }
    /// le32 at `off`.
    pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
        bytes(b, off).map(u32::from_le_bytes)
    }
    /// le64 at `off`.
    pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
        bytes(b, off).map(u64::from_le_bytes)
    }
    /// Stores `v` at `off`; false (nothing written) when out of range.
    pub(crate) fn put(b: &mut [u8], off: usize, v: &[u8]) -> bool {
        match off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
            Some(s) => {
                s.copy_from_slice(v);
                true
            }
            None => false,
        }
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
    fn guid_text_is_mixed_endian() {
        // The EFI system partition type as stored on disk.
        let esp: Guid = [
            0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
            0xC9, 0x3B,
        ];
        assert_eq!(
            guid_text(&esp).as_str(),
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
        );
    }

    #[test]
    fn generated_ids_are_v4_and_differ() {
        let mut g = IdGen::new(1);
        let a = g.guid();
        let b = g.guid();
        assert_ne!(a, b);
        assert_eq!(a[7] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
        assert_ne!(g.signature(), 0);
    }
}
