//! The ntfsclone "special image" format (version 10.1 written, 10.x and pre-10 read):
//! a 56-byte header ([`header`]) followed by a stream of `CMD_GAP` (skip clusters) and
//! `CMD_NEXT` (one cluster of data) records, written by [`writer::Writer`] and read back by
//! [`reader::Reader`]. No std needed: both work on the `dev` stream traits. [`trailer`] is an
//! optional integrity trailer (our extension).
// Parsers of untrusted bytes: no indexing that can panic, no lossy casts.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
pub mod header;
pub mod reader;
pub mod record;
pub mod trailer;
pub mod writer;

pub use header::Header;
pub use reader::{Reader, Record};
pub use writer::Writer;

/// The bits of `v` read as a signed number: the reference's signed 64-bit fields and offsets
/// (`nr_clusters`, input offsets) shown or compared as it does (a bit-for-bit reinterpretation).
pub(crate) const fn as_signed(v: u64) -> i64 {
    i64::from_le_bytes(v.to_le_bytes())
}

/// The bits of `v` read as an unsigned number (see [`as_signed`]).
pub(crate) const fn as_unsigned(v: i64) -> u64 {
    u64::from_le_bytes(v.to_le_bytes())
}

/// The `N` bytes at `off` of `b` (a little-endian field); zeros where `b` ends first. Callers
/// check lengths before they read fields, so the zeros are never a value that is used.
pub(crate) fn le_field<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = off.checked_add(N).and_then(|end| b.get(off..end)) {
        a.copy_from_slice(s);
    }
    a
}
