//! QEMU boot tests, a test target of their own (`cargo test --test boot`) so that the quick
//! suite (`cargo test --test it`) runs without them; `make test` runs both.
//! Each module boots one kind of medium or system through the one QEMU launcher (`qemu`);
//! `rescue` holds the shared sample volumes, boot media and HTTP server.
#[path = "../it/common.rs"]
#[allow(dead_code)] // shared with tests/it: each target uses part of it
mod common;

mod disk;
mod hardware;
mod host;
mod jobs;
mod menu;
mod qemu;
mod rescue;
mod secure;
mod stores;
