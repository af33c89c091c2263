//! The shared copy machinery of save and raw clone:
//!
//! - [`plan`]: used-cluster runs cut into chunks and the [`Step`]s of a save or a clone;
//! - [`pipeline`]: the two-thread pipeline that turns a plan into [`Block`]s (image records
//!   encoded by [`crate::image::record`], or raw volume bytes) and hands them to a sink;
//! - [`prefetch`]: the thread that keeps the kernel reading ahead of the pipeline's reader;
//! - [`volume_reader`]: reads of the source volume with the reference's bad-sector handling
//!   (`--rescue`);
//! - [`scan_window`]: the read-ahead window that the MFT scan reads through.
//!
//! Vectored I/O ([`ReadVectoredAt`], [`write_all_vectored`]) is in [`crate::dev::vectored`].
pub mod pipeline;
pub mod plan;
pub mod prefetch;
pub mod scan_window;
pub mod volume_reader;

#[cfg(test)]
mod test_dev;

pub use crate::dev::vectored::{
    write_all_vectored, write_all_vectored_at, ReadVectoredAt, IOV_MAX,
};
pub use pipeline::{block_bytes, pipeline, Block, Encoding, BLOCKS, BLOCK_BYTES};
pub use plan::{chunk_clusters, chunks, merge_runs, raw_steps, save_steps, Step, CHUNK_BYTES};
pub use prefetch::{with_prefetch, Ahead, Prefetch};
pub use scan_window::{ReadAhead, SCAN_WINDOW_BYTES};
pub use volume_reader::{VolumeReader, BAD_SECTORS_WARNING};
