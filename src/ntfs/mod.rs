//! A read-only NTFS reader: just enough of the on-disk format to find every cluster in use.
//!
//! Follows Microsoft's and the Linux-NTFS project's published documentation of the on-disk
//! structures. One file per structure. No std, no file descriptors: all I/O goes through
//! [`crate::dev::ReadAt`].
pub mod attr_list;
pub mod attribute;
pub mod boot_sector;
pub mod mft_record;
pub mod runlist;
pub mod volume;

pub use boot_sector::BootSector;
pub use volume::Volume;
