//! The NTFS boot sector ($Boot, LCN 0; a backup copy sits in the last sector of the volume).
//!
//! Layout from the published NTFS documentation (BIOS parameter block + NTFS extension).
//! The checks and their order, and the text of each refusal, were found black-box with the
//! reference's library (libntfs-3g 2022.10.3): every refusal is `EINVAL` and the mount then
//! fails with `Opening '%s' as NTFS failed: Invalid argument`. The 0x55AA end marker and the
//! media byte are *not* checked by the reference (verified), so we do not check them either.
// `Error` is a fixed-size value by design (errors never allocate).
#![allow(clippy::result_large_err)]
use super::le;
use crate::error::{errno, Error, Result};

/// OEM id at 0x03 (8 bytes).
const OFF_OEM_ID: usize = 0x03;
/// Bytes per sector (le16).
const OFF_BYTES_PER_SECTOR: usize = 0x0B;
/// Sectors per cluster (u8; values > 0x80 encode 2^(256 - v)).
const OFF_SECTORS_PER_CLUSTER: usize = 0x0D;
/// Reserved sectors (le16, must be 0).
const OFF_RESERVED_SECTORS: usize = 0x0E;
/// Number of FATs (u8, must be 0).
const OFF_FATS: usize = 0x10;
/// Root directory entries (le16, must be 0).
const OFF_ROOT_ENTRIES: usize = 0x11;
/// 16-bit sector count (le16, must be 0).
const OFF_SECTORS: usize = 0x13;
/// Sectors per FAT (le16, must be 0).
const OFF_SECTORS_PER_FAT: usize = 0x16;
/// 32-bit sector count (le32, must be 0).
const OFF_LARGE_SECTORS: usize = 0x20;
/// Total sectors of the volume (sle64).
const OFF_NUMBER_OF_SECTORS: usize = 0x28;
/// LCN of $MFT (sle64).
const OFF_MFT_LCN: usize = 0x30;
/// LCN of $MFTMirr (sle64).
const OFF_MFTMIRR_LCN: usize = 0x38;
/// Clusters per MFT record (s8; negative = 2^-v bytes).
const OFF_CLUSTERS_PER_MFT_RECORD: usize = 0x40;
/// Clusters per index record (s8; negative = 2^-v bytes).
const OFF_CLUSTERS_PER_INDEX_RECORD: usize = 0x44;
/// Volume serial number (le64).
const OFF_VOLUME_SERIAL_NUMBER: usize = 0x48;

/// "NTFS" followed by four spaces.
pub const NTFS_OEM_ID: &[u8; 8] = b"NTFS    ";
/// BitLocker-encrypted volumes carry this OEM id instead.
pub const BITLOCKER_OEM_ID: &[u8; 8] = b"-FVE-FS-";
/// Largest cluster size NTFS allows (Windows 10 1709+): 2 MiB.
pub const MAX_CLUSTER_SIZE: u32 = 2 * 1024 * 1024;
/// Bytes of the boot sector that are parsed (the BPB lives in the first 512 bytes).
pub const BOOT_SECTOR_SIZE: usize = 512;

/// Parsed and checked boot sector fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSector {
    /// Bytes per sector (256..=4096).
    pub sector_size: u32,
    /// Bytes per cluster (256 B .. 2 MiB, power of two).
    pub cluster_size: u32,
    /// Number of sectors in the volume.
    pub total_sectors: u64,
    /// Clusters in the volume: total_sectors * sector_size / cluster_size.
    pub nr_clusters: u64,
    /// LCN of $MFT.
    pub mft_lcn: u64,
    /// LCN of $MFTMirr.
    pub mftmirr_lcn: u64,
    /// Bytes per MFT record.
    pub mft_record_size: u32,
    /// Bytes per index record.
    pub index_record_size: u32,
    /// Volume serial number (offset 0x48).
    pub serial: u64,
    /// The raw sectors-per-cluster byte (0x0D).
    pub sectors_per_cluster_raw: u8,
    /// The raw clusters-per-MFT-record byte (0x40), signed.
    pub clusters_per_mft_record: i8,
    /// The raw clusters-per-index-record byte (0x44), signed.
    pub clusters_per_index_record: i8,
}

/// A refusal in libntfs's words; the mount error is `EINVAL`.
fn inval(args: core::fmt::Arguments) -> Error {
    Error::Os {
        what: crate::error::text(args),
        errno: errno::EINVAL,
    }
}

/// Record size from a clusters-per-record byte: positive = clusters, negative = 2^-v bytes.
/// Accepted values (black-box): 1, 2, 4, … 64 and -9 … -31.
fn record_size(v: i8, cluster_size: u32) -> Option<u32> {
    match v {
        1..=64 if v.unsigned_abs().is_power_of_two() => {
            u32::from(v.unsigned_abs()).checked_mul(cluster_size)
        }
        -31..=-9 => Some(1u32 << v.unsigned_abs()),
        _ => None,
    }
}

impl BootSector {
    /// Parses and checks a boot sector (at least 512 bytes), in the reference's order:
    /// OEM id, bytes per sector, sectors per cluster, reserved fields, MFT and index record
    /// sizes, volume size, cluster size, $MFT/$MFTMirr location.
    pub fn from_bytes(b: &[u8]) -> Result<BootSector> {
        let b = b
            .get(..BOOT_SECTOR_SIZE)
            .ok_or_else(|| inval(format_args!("Boot sector is too short.")))?;
        let g16 = |o| le::u16(b, o).unwrap_or(0);
        let oem = le::bytes::<8>(b, OFF_OEM_ID).unwrap_or([0; 8]);
        if &oem == BITLOCKER_OEM_ID {
            // Our own line where libntfs only says "NTFS signature is missing."; the mount
            // still fails with EINVAL, so the reference's ERROR line follows on msg_out.
            return Err(inval(format_args!(
                "The volume is encrypted with BitLocker (OEM id \"-FVE-FS-\"): unlock it first and clone the unlocked device"
            )));
        }
        if &oem != NTFS_OEM_ID {
            return Err(inval(format_args!("NTFS signature is missing.")));
        }
        let sector_size = g16(OFF_BYTES_PER_SECTOR) as u32;
        if !(0x100..=0x1000).contains(&sector_size) {
            return Err(inval(format_args!(
                "Unexpected bytes per sector value ({sector_size})."
            )));
        }
        let spc_raw = le::u8(b, OFF_SECTORS_PER_CLUSTER).unwrap_or(0);
        // Sectors per cluster as the reference holds it (a 16-bit value: 2^16 wraps to 0).
        let spc: u32 = match spc_raw {
            1 | 2 | 4 | 8 | 16 | 32 | 64 | 128 => spc_raw as u32,
            0xF0..=0xFD => (1u32 << (256 - spc_raw as u32)) & 0xFFFF,
            0..=0x80 => {
                return Err(inval(format_args!(
                    "Unexpected sectors per cluster value ({spc_raw})."
                )));
            }
            _ => {
                return Err(inval(format_args!(
                    "Unexpected sectors per cluster value (code 0x{spc_raw:x})"
                )));
            }
        };
        let reserved = (
            g16(OFF_RESERVED_SECTORS),
            g16(OFF_ROOT_ENTRIES),
            g16(OFF_SECTORS),
            g16(OFF_SECTORS_PER_FAT),
            le::u32(b, OFF_LARGE_SECTORS).unwrap_or(0),
            le::u8(b, OFF_FATS).unwrap_or(0),
        );
        if reserved != (0, 0, 0, 0, 0, 0) {
            let (a, c, d, e, f, g) = reserved;
            return Err(inval(format_args!(
                "Reserved fields aren't zero ({a}, {c}, {d}, {e}, {f}, {g})."
            )));
        }
        let cpm = i8::from_le_bytes([le::u8(b, OFF_CLUSTERS_PER_MFT_RECORD).unwrap_or(0)]);
        if record_size(cpm, 1).is_none() {
            return Err(inval(format_args!(
                "Unexpected clusters per mft record ({cpm})."
            )));
        }
        let cpi = i8::from_le_bytes([le::u8(b, OFF_CLUSTERS_PER_INDEX_RECORD).unwrap_or(0)]);
        if record_size(cpi, 1).is_none() {
            return Err(inval(format_args!(
                "Unexpected clusters per index record ({cpi})."
            )));
        }
        let total_sectors = le::i64(b, OFF_NUMBER_OF_SECTORS).unwrap_or(0);
        if total_sectors == 0 {
            return Err(inval(format_args!("Volume size is set to zero.")));
        }
        let cluster_size = spc * sector_size;
        if cluster_size & cluster_size.wrapping_sub(1) != 0 {
            return Err(inval(format_args!(
                "cluster_size ({cluster_size}) is not a power of 2."
            )));
        }
        if cluster_size > MAX_CLUSTER_SIZE {
            return Err(inval(format_args!(
                "Unexpected cluster size ({cluster_size})."
            )));
        }
        let mft_lcn = le::i64(b, OFF_MFT_LCN).unwrap_or(0);
        let mftmirr_lcn = le::i64(b, OFF_MFTMIRR_LCN).unwrap_or(0);
        if mft_lcn <= 0 || mftmirr_lcn <= 0 || mft_lcn == mftmirr_lcn {
            return Err(inval(format_args!("Invalid location of MFT or MFTMirr.")));
        }
        // A negative sector count is nonsense; treat it as huge so that the checks below refuse it.
        let total = super::conv::bits_u64(total_sectors);
        let nr_clusters: u64 = if cluster_size == 0 {
            0
        } else {
            u64::try_from(u128::from(total) * u128::from(sector_size) / u128::from(cluster_size))
                .unwrap_or(u64::MAX)
        };
        // Both LCNs are positive here.
        let (mft_lcn_u, mftmirr_lcn_u) = (mft_lcn.unsigned_abs(), mftmirr_lcn.unsigned_abs());
        if mft_lcn_u > nr_clusters || mftmirr_lcn_u > nr_clusters {
            return Err(inval(format_args!(
                "$MFT LCN ({mft_lcn}) or $MFTMirr LCN ({mftmirr_lcn}) is greater than the number of clusters ({nr_clusters})."
            )));
        }
        // cluster_size is non-zero here: nr_clusters == 0 was refused just above (LCNs are >= 1).
        let mft_record_size = record_size(cpm, cluster_size).unwrap_or(0);
        let index_record_size = record_size(cpi, cluster_size).unwrap_or(0);
        if mft_record_size == 0 || index_record_size == 0 {
            return Err(inval(format_args!(
                "Unexpected clusters per mft record ({cpm})."
            )));
        }
        Ok(BootSector {
            sector_size,
            cluster_size,
            total_sectors: total,
            nr_clusters,
            mft_lcn: mft_lcn_u,
            mftmirr_lcn: mftmirr_lcn_u,
            mft_record_size,
            index_record_size,
            serial: le::u64(b, OFF_VOLUME_SERIAL_NUMBER).unwrap_or(0),
            sectors_per_cluster_raw: spc_raw,
            clusters_per_mft_record: cpm,
            clusters_per_index_record: cpi,
        })
    }

    /// Byte offset of the last sector of the volume, as the reference probes it at mount time
    /// (`Failed to read last sector (%lld)` when it cannot even be addressed).
    pub fn last_sector_offset(&self) -> Result<u64> {
        let last = self.total_sectors.wrapping_sub(1);
        match last.checked_mul(self.sector_size as u64) {
            Some(off) if off <= i64::MAX as u64 && last <= i64::MAX as u64 => Ok(off),
            _ => Err(inval(format_args!(
                "Failed to read last sector ({}): Invalid argument",
                super::conv::bits_i64(last)
            ))),
        }
    }

    /// Volume size in bytes: nr_clusters * cluster_size.
    pub fn volume_size(&self) -> u64 {
        self.nr_clusters.saturating_mul(self.cluster_size as u64)
    }
}

/// The hint lines libntfs prints after `Failed to read last sector`.
pub const LAST_SECTOR_HINTS: &str = "HINTS: Either the volume is a RAID/LDM but it wasn't setup yet,\n   or it was not setup correctly (e.g. by not using mdadm --build ...),\n   or a wrong device is tried to be mounted,\n   or the partition table is corrupt (partition is smaller than NTFS),\n   or the NTFS boot sector is corrupt (NTFS size is not valid).";

/// Where the backup boot sector lies: the last sector of the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupBootSector {
    /// Byte offset in the volume (`total_sectors × bytes_per_sector`).
    pub offset: u64,
    /// Bytes per sector.
    pub sector_size: usize,
}

impl BootSector {
    /// Where the backup boot sector lies, when its byte offset fits in 64 bits.
    pub fn backup(&self) -> Option<BackupBootSector> {
        Some(BackupBootSector {
            offset: self
                .total_sectors
                .checked_mul(u64::from(self.sector_size))?,
            sector_size: self.sector_size as usize,
        })
    }
}

/// [`BootSector::backup`] from the raw bytes of a primary boot sector, without the other
/// checks of [`BootSector::from_bytes`]: None when the bytes per sector are not a power of two
/// in 256..=4096 or the offset does not fit. Works for a device larger than the volume too
/// (compat: test `backup_serial_at_the_end_of_the_volume`).
pub fn backup_of(boot: &[u8]) -> Option<BackupBootSector> {
    let sector_size = usize::from(le::u16(boot, OFF_BYTES_PER_SECTOR)?);
    let total_sectors = le::u64(boot, OFF_NUMBER_OF_SECTORS)?;
    if !(256..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
        return None;
    }
    Some(BackupBootSector {
        offset: total_sectors.checked_mul(sector_size as u64)?,
        sector_size,
    })
}

/// Replaces the bits of the volume serial number (offset 0x48) that `mask` selects with those
/// of `serial`. Nothing happens when `sector` is too short to hold the field.
pub fn set_serial(sector: &mut [u8], serial: u64, mask: u64) {
    let Some(old) = le::u64(sector, OFF_VOLUME_SERIAL_NUMBER) else {
        return;
    };
    let new = (serial & mask) | (old & !mask);
    if let Some(field) = sector.get_mut(OFF_VOLUME_SERIAL_NUMBER..OFF_VOLUME_SERIAL_NUMBER + 8) {
        field.copy_from_slice(&new.to_le_bytes());
    }
}

/// Sets the serial number ([`set_serial`]) in whatever part of the boot sectors `data` holds,
/// `data` being the volume's bytes from byte `offset` on: the primary boot sector at 0, and
/// the backup at `backup` if it carries the NTFS OEM id. Returns true when the primary was
/// set.
pub fn patch_serials(
    data: &mut [u8],
    offset: u64,
    serial: u64,
    mask: u64,
    backup: Option<BackupBootSector>,
) -> bool {
    const SERIAL_END: usize = OFF_VOLUME_SERIAL_NUMBER + 8;
    let mut primary = false;
    if offset == 0 && data.len() >= SERIAL_END {
        set_serial(data, serial, mask);
        primary = true;
    }
    let Some(b) = backup.filter(|b| b.offset >= offset) else {
        return primary;
    };
    let Ok(rel) = usize::try_from(b.offset - offset) else {
        return primary;
    };
    let len = b.sector_size.max(SERIAL_END);
    if let Some(sector) = data.get_mut(rel..rel.saturating_add(len)) {
        if sector.get(OFF_OEM_ID..OFF_OEM_ID + 4) == Some(b"NTFS") {
            set_serial(sector, serial, mask);
        }
    }
    primary
}

#[cfg(test)]
// Tests build their inputs by hand at fixed offsets: a panic there is a failed test.
#[allow(clippy::indexing_slicing)]
mod serial_tests {
    use super::*;
    use std::prelude::v1::*;

    const OLD: u64 = 0x6cd5_cbe2_597e_e8a2;
    const NEW: u64 = 0x1111_2222_3333_4444;

    fn serial_at(b: &[u8], at: usize) -> u64 {
        le::u64(b, at + OFF_VOLUME_SERIAL_NUMBER).unwrap()
    }

    #[test]
    fn serial_masks() {
        let mut s = [0u8; 512];
        s[0x48..0x50].copy_from_slice(&OLD.to_le_bytes());
        set_serial(&mut s, NEW, 0xffff_ffff_0000_0000);
        assert_eq!(serial_at(&s, 0), 0x1111_2222_597e_e8a2);
        set_serial(&mut s, NEW, u64::MAX);
        assert_eq!(serial_at(&s, 0), NEW);
        let mut short = [0u8; 0x4f];
        set_serial(&mut short, NEW, u64::MAX);
        assert_eq!(short, [0u8; 0x4f]);
    }

    #[test]
    fn backup_serial_at_the_end_of_the_volume() {
        // A 16-sector volume on a 20-sector device: the backup is sector 16, not the last
        // sector of the device.
        let fixture = super::tests::fixture();
        let parsed = BootSector::from_bytes(&fixture).unwrap();
        assert_eq!(parsed.backup(), backup_of(&fixture));
        assert_eq!(parsed.backup().map(|b| b.offset), Some(20479 * 512));
        let mut boot = fixture;
        boot[0x28..0x30].copy_from_slice(&16u64.to_le_bytes());
        let backup = backup_of(&boot);
        assert_eq!(
            backup,
            Some(BackupBootSector {
                offset: 16 * 512,
                sector_size: 512
            })
        );
        let mut dev = vec![0u8; 20 * 512];
        dev[..512].copy_from_slice(&boot);
        dev[16 * 512..17 * 512].copy_from_slice(&boot);
        dev[19 * 512..].copy_from_slice(&boot);
        // The whole device at once, then in pieces that hold only the backup or only part of it.
        let mut whole = dev.clone();
        assert!(patch_serials(&mut whole, 0, NEW, u64::MAX, backup));
        assert_eq!(serial_at(&whole, 0), NEW);
        assert_eq!(serial_at(&whole, 16 * 512), NEW);
        assert_eq!(serial_at(&whole, 19 * 512), serial_at(&boot, 0));
        let mut tail = dev[8 * 512..].to_vec();
        assert!(!patch_serials(&mut tail, 8 * 512, NEW, u64::MAX, backup));
        assert_eq!(serial_at(&tail, 8 * 512), NEW);
        let mut cut = dev[16 * 512..16 * 512 + 0x40].to_vec();
        assert!(!patch_serials(&mut cut, 16 * 512, NEW, u64::MAX, backup));
        assert_eq!(cut, dev[16 * 512..16 * 512 + 0x40]);
        let mut bad_bps = boot.clone();
        bad_bps[0x0b..0x0d].copy_from_slice(&300u16.to_le_bytes());
        assert_eq!(backup_of(&bad_bps), None);
        assert_eq!(backup_of(&boot[..0x20]), None);
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

    /// A boot sector like mkntfs writes for a 10 MiB volume with 4 KiB clusters.
    pub(crate) fn fixture() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..3].copy_from_slice(&[0xEB, 0x52, 0x90]);
        b[3..11].copy_from_slice(NTFS_OEM_ID);
        b[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        b[0x0D] = 8;
        b[0x15] = 0xF8;
        b[0x28..0x30].copy_from_slice(&20479u64.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&853u64.to_le_bytes());
        b[0x38..0x40].copy_from_slice(&2u64.to_le_bytes());
        b[0x40] = 0xF6;
        b[0x44] = 1;
        b[0x48..0x50].copy_from_slice(&0xDE46EEDE46EEB705u64.to_le_bytes());
        b[0x1FE] = 0x55;
        b[0x1FF] = 0xAA;
        b
    }

    fn msg(b: &[u8]) -> String {
        match BootSector::from_bytes(b) {
            Ok(_) => "ok".into(),
            Err(Error::Os { what, errno }) => {
                assert_eq!(errno, 22);
                what.as_str().into()
            }
            Err(e) => std::format!("{e}"),
        }
    }

    #[test]
    fn parses_fixture() {
        let bs = BootSector::from_bytes(&fixture()).unwrap();
        assert_eq!(bs.sector_size, 512);
        assert_eq!(bs.cluster_size, 4096);
        assert_eq!(bs.nr_clusters, 2559);
        assert_eq!(bs.mft_lcn, 853);
        assert_eq!(bs.mftmirr_lcn, 2);
        assert_eq!(bs.mft_record_size, 1024);
        assert_eq!(bs.index_record_size, 4096);
        assert_eq!(bs.serial, 0xDE46EEDE46EEB705);
    }

    /// Each mutation and the reference's refusal text (verified with libntfs-3g 2022.10.3).
    /// Byte patches `(offset, bytes)` applied to the fixture.
    type Patches<'a> = &'a [(usize, &'a [u8])];

    #[test]
    fn refusals_match_reference() {
        let cases: &[(Patches, &str)] = &[
            (&[(0x03, b"NTF     ")], "NTFS signature is missing."),
            (
                &[(0x0B, &[0, 0x20])],
                "Unexpected bytes per sector value (8192).",
            ),
            (&[(0x0B, &[0, 0])], "Unexpected bytes per sector value (0)."),
            (
                &[(0x0B, &[0xF4, 1])],
                "cluster_size (4000) is not a power of 2.",
            ),
            (
                &[(0x0D, &[127])],
                "Unexpected sectors per cluster value (127).",
            ),
            (&[(0x0D, &[0])], "Unexpected sectors per cluster value (0)."),
            (
                &[(0x0D, &[0x81])],
                "Unexpected sectors per cluster value (code 0x81)",
            ),
            (
                &[(0x0D, &[0xFE])],
                "Unexpected sectors per cluster value (code 0xfe)",
            ),
            (
                &[(0x0D, &[0xEF])],
                "Unexpected sectors per cluster value (code 0xef)",
            ),
            (&[(0x0D, &[0xF3])], "Unexpected cluster size (4194304)."),
            (
                &[(0x0D, &[0xF4]), (0x0B, &[0, 0x10])],
                "Unexpected cluster size (16777216).",
            ),
            (
                &[(0x0D, &[0xF0])],
                "$MFT LCN (853) or $MFTMirr LCN (2) is greater than the number of clusters (0).",
            ),
            (
                &[(0x0D, &[0xF4])],
                "$MFT LCN (853) or $MFTMirr LCN (2) is greater than the number of clusters (4).",
            ),
            (
                &[(0x0E, &[1])],
                "Reserved fields aren't zero (1, 0, 0, 0, 0, 0).",
            ),
            (
                &[(0x10, &[1])],
                "Reserved fields aren't zero (0, 0, 0, 0, 0, 1).",
            ),
            (
                &[(0x20, &[1])],
                "Reserved fields aren't zero (0, 0, 0, 0, 1, 0).",
            ),
            (&[(0x40, &[48])], "Unexpected clusters per mft record (48)."),
            (
                &[(0x40, &[0xF8])],
                "Unexpected clusters per mft record (-8).",
            ),
            (
                &[(0x40, &[0xE0])],
                "Unexpected clusters per mft record (-32).",
            ),
            (&[(0x44, &[7])], "Unexpected clusters per index record (7)."),
            (&[(0x44, &[0])], "Unexpected clusters per index record (0)."),
            (&[(0x28, &[0; 8])], "Volume size is set to zero."),
            (
                &[(0x30, &[0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])],
                "Invalid location of MFT or MFTMirr.",
            ),
            (
                &[(0x38, &[0x55, 3, 0, 0, 0, 0, 0, 0])],
                "Invalid location of MFT or MFTMirr.",
            ),
            (
                &[(0x28, &[100, 0, 0, 0, 0, 0, 0, 0])],
                "$MFT LCN (853) or $MFTMirr LCN (2) is greater than the number of clusters (12).",
            ),
            // Not checked by the reference: end marker, media byte, jump.
            (&[(0x1FE, &[0, 0])], "ok"),
            (&[(0x15, &[0])], "ok"),
            (&[(0x00, &[0, 0, 0])], "ok"),
            (&[(0x0D, &[0xFD])], "ok"),
            (&[(0x40, &[0x40])], "ok"),
            (&[(0x40, &[0xE1])], "ok"),
            // Order: OEM id before bytes per sector; sectors per cluster before reserved fields.
            (
                &[(0x0B, &[1, 0]), (0x03, b"NTFS   !")],
                "NTFS signature is missing.",
            ),
            (
                &[(0x0D, &[3]), (0x0E, &[1])],
                "Unexpected sectors per cluster value (3).",
            ),
            (
                &[(0x0B, &[0, 3]), (0x28, &[0; 8])],
                "Volume size is set to zero.",
            ),
        ];
        for (muts, want) in cases {
            let mut b = fixture();
            for (off, bytes) in muts.iter() {
                b[*off..*off + bytes.len()].copy_from_slice(bytes);
            }
            assert_eq!(msg(&b), *want, "mutation {muts:?}");
        }
    }

    #[test]
    fn bitlocker_has_its_own_message() {
        let mut b = fixture();
        b[3..11].copy_from_slice(BITLOCKER_OEM_ID);
        let e = BootSector::from_bytes(&b).unwrap_err();
        assert!(std::format!("{e}").contains("BitLocker"));
    }

    #[test]
    fn short_input_is_an_error() {
        assert!(BootSector::from_bytes(&fixture()[..100]).is_err());
    }

    #[test]
    fn last_sector_overflow() {
        let mut b = fixture();
        b[0x28..0x30].copy_from_slice(&0x00FF_FFFF_FFFF_FFFFu64.to_le_bytes());
        let bs = BootSector::from_bytes(&b).unwrap();
        match bs.last_sector_offset() {
            Err(Error::Os { what, errno: 22 }) => {
                assert_eq!(
                    what.as_str(),
                    "Failed to read last sector (72057594037927934): Invalid argument"
                )
            }
            r => core::panic!("{r:?}"),
        }
    }
}
