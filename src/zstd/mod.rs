//! Zstandard compression of images: a seekable zstd stream (independent frames of 4 MiB of
//! image bytes and a seek table, RFC 8878 and the zstd "seekable format") that `zstd -dc`
//! turns back into exactly the uncompressed image.
//!
//! `frame` parses frame headers, block headers and the seek table from untrusted bytes
//! (no_std). `writer` and `reader` (std) compress and decompress whole frames on worker
//! threads through libzstd (the `zstd-safe` crate, which builds libzstd from source).
pub mod frame;

#[cfg(feature = "std")]
pub mod input;
#[cfg(feature = "std")]
mod pool;
#[cfg(feature = "std")]
pub mod reader;
#[cfg(feature = "std")]
pub mod writer;

pub use frame::is_zstd_start;
#[cfg(feature = "std")]
pub use input::{file_index, starts_zstd, MaybeZstd};
#[cfg(feature = "std")]
pub use reader::{Decompressor, FrameSource};
#[cfg(feature = "std")]
pub use writer::{threads_or_default, Compressor, DEFAULT_LEVEL, FRAME_BYTES, LEVELS};

#[cfg(all(test, feature = "std"))]
mod tests;
