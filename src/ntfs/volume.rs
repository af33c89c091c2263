//! An opened NTFS volume: boot sector, $MFT runlist, $Volume information, $Bitmap location.
use super::BootSector;
use crate::dev::ReadAt;
use crate::error::Result;

/// An NTFS volume opened read-only.
#[derive(Debug, Clone)]
pub struct Volume {
    /// The checked boot sector.
    pub boot: BootSector,
    /// NTFS version from $Volume's $VOLUME_INFORMATION (major, minor).
    pub version: (u8, u8),
    /// $Volume flags (0x0001 = dirty).
    pub volume_flags: u16,
    /// Number of MFT records to walk: $MFT:$DATA initialized_size / record size.
    pub mft_records: u64,
}

impl Volume {
    /// Opens and checks the volume the way the reference's read-only mount does.
    pub fn open<D: ReadAt>(dev: &D, device_size: u64) -> Result<Volume> {
        let _ = (dev, device_size);
        todo!("ntfs::Volume::open")
    }

    /// True when $Volume has the dirty flag set.
    pub fn is_dirty(&self) -> bool {
        self.volume_flags & 1 != 0
    }
}
