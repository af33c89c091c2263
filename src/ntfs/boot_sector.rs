//! The NTFS boot sector ($Boot, LCN 0; backup copy in the last sector of the device).

/// Parsed and checked boot sector fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSector {
    /// Bytes per sector (256..=4096, power of two).
    pub sector_size: u32,
    /// Bytes per cluster (256 B .. 2 MiB).
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
}
