//! Integration tests: the built binary against the real ntfsclone/partclone, on generated
//! volumes and on the volumes in ../shared/testdata. One harness, one module per area.
#[allow(dead_code)] // shared with tests/boot: each target uses part of it
mod cmd;
mod common;

mod cli;
mod compat;
mod differential;
mod differential_image;
mod disk;
mod fuzz;
mod install;
mod integrity;
mod messages;
mod metadata;
mod ntfs_scan;
mod robust;
mod safety;
mod zstd;
