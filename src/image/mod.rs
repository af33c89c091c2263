//! The ntfsclone "special image" format (version 10.1 written, 10.x and pre-10 read):
//! a 56-byte header ([`header`]) followed by a stream of `CMD_GAP` (skip clusters) and
//! `CMD_NEXT` (one cluster of data) records, written by [`writer::Writer`] and read back by
//! [`reader::Reader`]. No std needed: both work on the `dev` stream traits. [`trailer`] is an
//! optional integrity trailer (our extension).
pub mod header;
pub mod reader;
pub mod record;
pub mod trailer;
pub mod writer;

pub use header::Header;
pub use reader::{Reader, Record};
pub use writer::Writer;
