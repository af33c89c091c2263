//! Index layouts: the `$INDEX_ROOT` value, INDX blocks (`$INDEX_ALLOCATION`), their index
//! header and index entries (directory `$I30` entries keyed by FILE_NAME, and the quota
//! index `$Q`), as byte offsets.
use super::le;

/// "INDX": an index allocation block.
pub const INDX_MAGIC: [u8; 4] = *b"INDX";

/// Index entry: length (le16).
pub const OFF_IE_LENGTH: usize = 0x08;
/// Index entry: flags (le16).
pub const OFF_IE_FLAGS: usize = 0x0C;
/// Index entry: where its key starts.
pub const OFF_IE_KEY: usize = 0x10;
/// Index entry flag: the last entry of a node (it has no key).
pub const INDEX_ENTRY_END: u16 = 0x0002;
/// The four times of a FILE_NAME (value, or index key) start 8 bytes into it (after the
/// parent reference).
pub const FN_TIMES: usize = 0x08;

/// INDEX_ROOT value: indexed attribute type (le32).
pub const OFF_IR_TYPE: usize = 0x00;
/// INDEX_ROOT value: index block size (le32).
pub const OFF_IR_BLOCK_SIZE: usize = 0x08;
/// INDEX_ROOT value: where the index header starts.
pub const OFF_IR_HEADER: usize = 0x10;
/// INDX block: where the index header starts.
pub const OFF_INDX_HEADER: usize = 0x18;

/// Index header: entries_offset (le32, relative to the header).
pub const OFF_IH_ENTRIES: usize = 0x00;
/// Index header: allocated_size (le32, relative to the header).
pub const OFF_IH_ALLOCATED: usize = 0x08;

/// Entry of a view index: data_offset (le16) at 0; QUOTA_CONTROL_ENTRY: version (le32) at 0.
pub const OFF_QUOTA_VERSION: usize = 0x00;
/// QUOTA_CONTROL_ENTRY: change_time (le64).
pub const OFF_QUOTA_CHANGE_TIME: usize = 0x10;

/// The index block size an `$INDEX_ROOT` value declares.
pub fn index_block_size(index_root_value: &[u8]) -> Option<u32> {
    le::u32(index_root_value, OFF_IR_BLOCK_SIZE)
}
