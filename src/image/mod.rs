//! The ntfsclone "special image" format: header, gap and cluster records.
pub mod header;
pub mod reader;
pub mod writer;
pub mod trailer;
