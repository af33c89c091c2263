//! ntfsclone: save, restore and clone NTFS volumes, compatible with ntfs-3g's ntfsclone.
//!
//! The NTFS reader (`ntfs`) and the image format (`image`) build without std (the
//! no-std-compat pattern, `--no-default-features`) and take their I/O through the
//! `dev::ReadAt` / `dev::WriteAt` traits. Everything that touches the operating system
//! lives behind the `std` feature; every system call is in `dev::fd`.
#![no_std]
// No unsafe code, except in the device module (`dev::fd`), where each use allows it by name
// with a SAFETY comment.
#![deny(unsafe_code)]
// `Error` carries fixed-size text instead of heap strings (no allocation on error paths);
// errors are rare, so the size of `Result` does not matter.
#![allow(clippy::result_large_err)]

extern crate no_std_compat as std;

pub mod dev;
pub mod disk;
pub mod error;
pub mod image;
pub mod ntfs;
pub mod used;
pub mod zstd;

#[cfg(feature = "std")]
pub mod cli;
#[cfg(feature = "std")]
pub mod copy;
#[cfg(feature = "std")]
pub mod ops;
#[cfg(feature = "std")]
pub mod options;
#[cfg(feature = "std")]
pub mod progress;
#[cfg(feature = "std")]
pub mod report;
