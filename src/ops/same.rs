//! Whether the source and the output (or the progress descriptor) are the same data: checked
//! before anything is opened for writing, so that `ntfsclone -O vol vol`, two loop devices over
//! one file, a partition and its disk, or an image restored onto the device that holds it are
//! refused instead of overwriting what is being read.
//!
//! Every path is brought down to a byte range of one underlying object: a regular file
//! (`st_dev`, `st_ino`), or a whole block device. A partition is a range of its disk, a loop
//! device a range of its backing file (which may itself be a device, resolved in turn). Two
//! sides are the same when their ranges on one object overlap.
use crate::dev::fd::{self, BlockLayout, Identity, Kind};
use crate::error::{Error, Result};
use crate::options::{Mode, Options};
use std::prelude::v1::*;

/// The object data finally lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A regular file.
    File {
        /// `st_dev`.
        dev: u64,
        /// `st_ino`.
        ino: u64,
    },
    /// A whole block device (`st_rdev`).
    Disk(u64),
    /// Anything else that two descriptors can share (a pipe, a socket): `st_dev`, `st_ino`.
    Other {
        /// `st_dev`.
        dev: u64,
        /// `st_ino`.
        ino: u64,
    },
}

/// A byte range of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The object.
    pub object: Object,
    /// First byte.
    pub start: u64,
    /// One past the last byte (`u64::MAX`: to the end).
    pub end: u64,
}

impl Place {
    /// True when both ranges share a byte of one object.
    pub fn overlaps(&self, other: &Place) -> bool {
        self.object == other.object && self.start < other.end && other.start < self.end
    }
}

/// How a resolution learns about devices and files (sysfs and `stat` in a run; tables in the
/// unit tests).
pub trait Lookup {
    /// What is at `path`, None when nothing (or it cannot be told).
    fn stat(&self, path: &str) -> Option<Identity>;
    /// How block device `rdev` is built.
    fn layout(&self, rdev: u64) -> BlockLayout;
}

/// The running system.
struct System;

impl Lookup for System {
    fn stat(&self, path: &str) -> Option<Identity> {
        fd::path_identity(path).ok().flatten()
    }
    fn layout(&self, rdev: u64) -> BlockLayout {
        fd::block_layout(rdev)
    }
}

/// Loops over loops over partitions: deeper than this is taken as the device itself.
const MAX_DEPTH: u32 = 8;

/// The place of a block device's bytes.
pub fn device_place(l: &dyn Lookup, rdev: u64) -> Place {
    device_place_depth(l, rdev, 0)
}

fn device_place_depth(l: &dyn Lookup, rdev: u64, depth: u32) -> Place {
    let whole = Place {
        object: Object::Disk(rdev),
        start: 0,
        end: u64::MAX,
    };
    if depth >= MAX_DEPTH {
        return whole;
    }
    let (inner, offset, len) = match l.layout(rdev) {
        BlockLayout::Whole => return whole,
        BlockLayout::Partition {
            parent,
            start,
            size,
        } => (device_place_depth(l, parent, depth + 1), start, size),
        BlockLayout::Loop {
            backing,
            offset,
            sizelimit,
        } => match l.stat(&backing) {
            Some(id) => match place_of_depth(l, id, depth + 1) {
                Some(p) => (p, offset, if sizelimit == 0 { u64::MAX } else { sizelimit }),
                None => return whole,
            },
            // Deleted or out of reach: only the loop device itself is known.
            None => return whole,
        },
    };
    let start = inner.start.saturating_add(offset);
    let end = start.saturating_add(len).min(inner.end);
    Place {
        object: inner.object,
        start,
        end,
    }
}

/// The place of what `id` describes (None for a character device: writing progress lines and
/// a clone to one terminal or `/dev/null` harms nothing).
pub fn place_of(l: &dyn Lookup, id: Identity) -> Option<Place> {
    place_of_depth(l, id, 0)
}

fn place_of_depth(l: &dyn Lookup, id: Identity, depth: u32) -> Option<Place> {
    let object = match id.kind {
        Kind::Block => return Some(device_place_depth(l, id.rdev, depth)),
        Kind::File => Object::File {
            dev: id.dev,
            ino: id.ino,
        },
        Kind::Stream if id.char_dev => return None,
        Kind::Stream => Object::Other {
            dev: id.dev,
            ino: id.ino,
        },
    };
    Some(Place {
        object,
        start: 0,
        end: u64::MAX,
    })
}

/// The place of the file system that holds a file (its `st_dev` taken as a block device; a
/// virtual file system's anonymous device number matches no real device).
pub fn holder_place(l: &dyn Lookup, id: Identity) -> Option<Place> {
    (id.kind == Kind::File).then(|| device_place(l, id.dev))
}

/// Checks that the output of `opts` is not its source, and that a `-r` image does not lie
/// inside the output. Called before anything is opened for writing.
pub fn check_source_and_output(opts: &Options) -> Result<()> {
    check_with(&System, opts)
}

fn refuse(args: core::fmt::Arguments) -> Error {
    Error::message(args)
}

/// [`check_source_and_output`] with its lookups given.
pub fn check_with(l: &dyn Lookup, opts: &Options) -> Result<()> {
    let Some(out) = opts.output.as_deref().filter(|o| *o != "-") else {
        return Ok(());
    };
    let src = opts.source.as_str();
    if src == "-" {
        return Ok(());
    }
    let (Some(src_id), Some(out_id)) = (l.stat(src), l.stat(out)) else {
        return Ok(());
    };
    let (Some(sp), Some(op)) = (place_of(l, src_id), place_of(l, out_id)) else {
        return Ok(());
    };
    if sp.overlaps(&op) {
        return Err(refuse(format_args!(
            "The output '{out}' is the source '{src}' (the same file, or overlapping devices): \
             refusing to write over the source"
        )));
    }
    // An image restored onto the device (or into the file) that holds the file system it is on.
    if matches!(opts.mode, Mode::Restore) {
        if let Some(hp) = holder_place(l, src_id) {
            if hp.overlaps(&op) {
                return Err(refuse(format_args!(
                    "The image '{src}' lies on a file system inside the output '{out}': \
                     refusing to write over the image"
                )));
            }
        }
    }
    Ok(())
}

/// Checks that `--progress-fd N` is neither the output nor the source: progress lines written
/// into the clone or the image would silently damage it.
pub fn check_progress_fd(opts: &Options) -> Result<()> {
    let Some(n) = opts.progress_fd else {
        return Ok(());
    };
    let refused = |what: &str| {
        Err(refuse(format_args!(
            "--progress-fd {n} is the {what}: progress lines would be written into it"
        )))
    };
    let stdout_out = opts.output_is_stdout();
    if stdout_out && n == 1 {
        return refused("output (standard output)");
    }
    let Ok(id) = fd::fd_identity(n) else {
        // Not open: Progress warns and goes on without progress lines.
        return Ok(());
    };
    let Some(pp) = place_of(&System, id) else {
        return Ok(());
    };
    let out_place = if stdout_out {
        fd::fd_identity(1).ok()
    } else {
        opts.output.as_deref().and_then(|o| System.stat(o))
    }
    .and_then(|i| place_of(&System, i));
    if out_place.is_some_and(|p| p.overlaps(&pp)) {
        return refused("output");
    }
    let src_place = if opts.source == "-" {
        None
    } else {
        System.stat(&opts.source)
    }
    .and_then(|i| place_of(&System, i));
    if src_place.is_some_and(|p| p.overlaps(&pp)) {
        return refused("source");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Table {
        paths: HashMap<&'static str, Identity>,
        layouts: HashMap<u64, BlockLayout>,
    }

    impl Lookup for Table {
        fn stat(&self, path: &str) -> Option<Identity> {
            self.paths.get(path).copied()
        }
        fn layout(&self, rdev: u64) -> BlockLayout {
            self.layouts
                .get(&rdev)
                .cloned()
                .unwrap_or(BlockLayout::Whole)
        }
    }

    fn file(dev: u64, ino: u64) -> Identity {
        Identity {
            kind: Kind::File,
            char_dev: false,
            dev,
            ino,
            rdev: 0,
        }
    }
    fn blk(rdev: u64) -> Identity {
        Identity {
            kind: Kind::Block,
            char_dev: false,
            dev: 5,
            ino: rdev,
            rdev,
        }
    }

    fn table() -> Table {
        let disk = rustix::fs::makedev(8, 0);
        let p1 = rustix::fs::makedev(8, 1);
        let p2 = rustix::fs::makedev(8, 2);
        let l0 = rustix::fs::makedev(7, 0);
        let l1 = rustix::fs::makedev(7, 1);
        let l2 = rustix::fs::makedev(7, 2);
        let mut paths = HashMap::new();
        paths.insert("/img/vol", file(p2, 10));
        paths.insert("/img/link", file(p2, 10));
        paths.insert("/img/other", file(p2, 11));
        paths.insert("/dev/sda", blk(disk));
        paths.insert("/dev/sda1", blk(p1));
        paths.insert("/dev/sda2", blk(p2));
        paths.insert("/dev/loop0", blk(l0));
        paths.insert("/dev/loop1", blk(l1));
        paths.insert("/dev/loop2", blk(l2));
        let mut layouts = HashMap::new();
        layouts.insert(disk, BlockLayout::Whole);
        let part = |start, size| BlockLayout::Partition {
            parent: disk,
            start,
            size,
        };
        layouts.insert(p1, part(1 << 20, 100 << 20));
        layouts.insert(p2, part(101 << 20, 100 << 20));
        let lp = |offset, sizelimit| BlockLayout::Loop {
            backing: "/img/vol".into(),
            offset,
            sizelimit,
        };
        layouts.insert(l0, lp(0, 0));
        layouts.insert(l1, lp(0, 0));
        layouts.insert(l2, lp(1 << 30, 1 << 20));
        Table { paths, layouts }
    }

    fn opts(mode: Mode, src: &str, out: &str) -> Options {
        Options {
            mode,
            source: src.into(),
            output: Some(out.into()),
            overwrite: true,
            ..Options::default()
        }
    }

    #[test]
    fn same_and_overlapping_are_refused() {
        let t = table();
        let refused = |mode, s, o| check_with(&t, &opts(mode, s, o)).is_err();
        assert!(refused(Mode::Clone, "/img/vol", "/img/vol"));
        assert!(refused(Mode::Save, "/img/vol", "/img/link"));
        assert!(refused(Mode::Metadata, "/img/link", "/img/vol"));
        assert!(!refused(Mode::Clone, "/img/vol", "/img/other"));
        assert!(refused(Mode::Clone, "/dev/sda", "/dev/sda"));
        assert!(refused(Mode::Clone, "/dev/sda1", "/dev/sda"));
        assert!(refused(Mode::Clone, "/dev/sda", "/dev/sda2"));
        assert!(!refused(Mode::Clone, "/dev/sda1", "/dev/sda2"));
        assert!(refused(Mode::Clone, "/dev/loop0", "/dev/loop1"));
        assert!(refused(Mode::Clone, "/dev/loop0", "/img/vol"));
        assert!(refused(Mode::Restore, "/img/vol", "/dev/loop1"));
        // loop2 starts 1 GiB into the file: still the same file, and the whole file overlaps.
        assert!(refused(Mode::Clone, "/dev/loop2", "/img/vol"));
        assert!(!refused(Mode::Clone, "/dev/loop2", "/img/other"));
        // An image on sda2's file system restored onto sda (its disk) or sda2, not onto sda1.
        assert!(refused(Mode::Restore, "/img/other", "/dev/sda"));
        assert!(refused(Mode::Restore, "/img/other", "/dev/sda2"));
        assert!(!refused(Mode::Restore, "/img/other", "/dev/sda1"));
        // New outputs and stdout are never the source.
        assert!(!refused(Mode::Clone, "/img/vol", "/img/new"));
        assert!(!refused(Mode::Clone, "/img/vol", "-"));
    }

    #[test]
    fn loop_ranges_of_one_file() {
        let mut t = table();
        let l3 = rustix::fs::makedev(7, 3);
        t.paths.insert("/dev/loop3", blk(l3));
        t.layouts.insert(
            l3,
            BlockLayout::Loop {
                backing: "/img/vol".into(),
                offset: 2 << 30,
                sizelimit: 0,
            },
        );
        let refused = |s, o| check_with(&t, &opts(Mode::Clone, s, o)).is_err();
        assert!(!refused("/dev/loop2", "/dev/loop3"));
        assert!(refused("/dev/loop0", "/dev/loop3"));
    }
}
