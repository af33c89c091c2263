//! Round trips through the compressor and the decompressor, and damaged streams.
use super::frame::SeekTable;
use super::{Compressor, Decompressor, FRAME_BYTES};
use crate::dev::mem::MemDev;
use crate::dev::{ReadStream, WriteStream};
use crate::error::Error;
use std::prelude::v1::*;

/// Compressible and incompressible bytes, `len` of them.
fn sample(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i / 100_000) % 3 == 0 {
                x as u8
            } else {
                b"the quick brown fox "[i % 20]
            }
        })
        .collect()
}

fn compress(data: &[u8], level: i32, threads: usize, piece: usize) -> Vec<u8> {
    let mut c = Compressor::new(MemDev::default(), level, threads).unwrap();
    for p in data.chunks(piece) {
        c.write_all(p).unwrap();
    }
    c.finish().unwrap().data
}

fn decompress(z: &[u8], threads: usize, piece: usize) -> crate::error::Result<Vec<u8>> {
    let prefix = &z[..z.len().min(4)];
    let mut d = Decompressor::new(MemDev::new(z[prefix.len()..].to_vec()), prefix, threads)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; piece];
    loop {
        let n = d.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// A frame without a content size (as the zstd tool writes from a pipe): streamed.
fn unsized_frame(data: &[u8]) -> Vec<u8> {
    use zstd_safe::{CCtx, CParameter};
    let mut c = CCtx::create();
    c.set_parameter(CParameter::ContentSizeFlag(false)).unwrap();
    c.set_parameter(CParameter::ChecksumFlag(true)).unwrap();
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
    c.compress2(&mut out, data).unwrap();
    out
}

#[test]
fn round_trips() {
    let data = sample(3 * FRAME_BYTES + 12345);
    for (level, threads, piece) in [(1, 1, 4096), (3, 2, 1 << 20), (9, 3, 777)] {
        let z = compress(&data, level, threads, piece);
        assert!(z.len() < data.len());
        // One frame per 4 MiB and the seek table.
        let t = SeekTable::read(&MemDev::new(z.clone()), z.len() as u64, 8 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(t.0.frames, 4);
        assert_eq!(t.1.last().unwrap().1, data.len() as u64);
        for (th, rd) in [(1, 100_000), (4, 1 << 20)] {
            assert!(decompress(&z, th, rd).unwrap() == data, "level {level}");
        }
    }
    // Nothing at all: only the seek table, no data frame.
    let z = compress(&[], 3, 1, 1);
    assert!(decompress(&z, 1, 10).is_err());
}

#[test]
fn streamed_frames_mix_with_whole_ones() {
    let a = sample(FRAME_BYTES + 5);
    let b = sample(10 * FRAME_BYTES / 3);
    let mut z = compress(&a, 1, 2, 1 << 16);
    z.extend_from_slice(&unsized_frame(&b));
    z.extend_from_slice(&compress(&a, 1, 2, 1 << 16));
    let out = decompress(&z, 2, 65536).unwrap();
    assert!(out == [&a[..], &b[..], &a[..]].concat());
    // A stream that starts with a streamed frame, and two of them in a row.
    let mut z = unsized_frame(&b);
    z.extend_from_slice(&unsized_frame(&a));
    z.extend_from_slice(&compress(&a, 1, 2, 1 << 16));
    let out = decompress(&z, 2, 65536).unwrap();
    assert!(out == [&b[..], &a[..], &a[..]].concat());
}

fn expect_error(z: &[u8], what: &str) -> String {
    let Err(e) = decompress(z, 2, 1 << 16) else {
        core::panic!("no error, wanted {what}");
    };
    let s = std::format!("{e}");
    assert!(s.contains(what), "{s} / {what}");
    assert!(!matches!(e, Error::Reported));
    s
}

#[test]
fn damaged_streams_are_errors_naming_the_frame() {
    let data = sample(2 * FRAME_BYTES + 100);
    let z = compress(&data, 3, 2, 1 << 20);
    let idx = SeekTable::read(&MemDev::new(z.clone()), z.len() as u64, 8 << 20)
        .unwrap()
        .unwrap()
        .1;
    let second = idx[1].0;
    // Truncated inside the second frame, inside the seek table.
    expect_error(&z[..second as usize + 1000], "truncated");
    expect_error(&z[..z.len() - 3], "truncated");
    // A flipped byte in the middle of the second frame: that frame is named.
    let mut d = z.clone();
    d[second as usize + 5000] ^= 0x10;
    let s = decompress(&d, 2, 1 << 16).unwrap_err();
    let s = std::format!("{s}");
    assert!(s.contains(&std::format!("{second}")), "{s}");
    // Garbage after the last frame.
    let mut g = z.clone();
    g.extend_from_slice(b"garbage!");
    expect_error(&g, "bad magic");
    // A frame header claiming far more than the frame holds (streamed, then refused).
    let mut h = unsized_frame(&data[..1000]);
    h[4] = 0xC4; // 8-byte content size, checksum, window descriptor follows.
    let mut huge = h[..6].to_vec();
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    huge.extend_from_slice(&h[6..]);
    assert!(decompress(&huge, 1, 1 << 16).is_err());
    // The seek table is checked from a stream too: its magic, descriptor (a reserved bit),
    // frame count and entries.
    for back in [1, 5, 9, 12, 20] {
        let mut t = z.clone();
        let n = t.len();
        t[n - back] ^= if back == 5 { 0x40 } else { 0x01 };
        let Err(e) = decompress(&t, 2, 1 << 16) else {
            core::panic!("a flipped byte {back} bytes from the end is not found");
        };
        assert!(std::format!("{e}").contains("seek table"), "{back}: {e}");
    }
    // Not zstd at all.
    expect_error(b"NTFS image, not compressed", "bad magic");
}

#[test]
fn the_seek_table_is_checked_against_the_frames() {
    use super::reader::Prefixed;
    let data = sample(2 * FRAME_BYTES + 100);
    let z = compress(&data, 1, 2, 1 << 20);
    let dev = MemDev::new(z.clone());
    let (_, idx) = SeekTable::read(&dev, z.len() as u64, 8 << 20)
        .unwrap()
        .unwrap();
    let run = |z: &[u8], idx: super::frame::FrameIndex| {
        let input = Prefixed::new(MemDev::new(z.to_vec())).unwrap();
        assert!(super::is_zstd_start(input.head()));
        let mut d = Decompressor::new(input, &[], 2).unwrap().with_index(idx);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match d.read(&mut buf)? {
                0 => return Ok::<_, Error>(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    assert!(run(&z, idx.clone()).unwrap() == data);
    // An index of another stream: the first frame of a different size is refused.
    let other = compress(&data, 9, 1, 1 << 20);
    let (_, wrong) = SeekTable::read(&MemDev::new(other.clone()), other.len() as u64, 8 << 20)
        .unwrap()
        .unwrap();
    let e = run(&z, wrong).unwrap_err();
    assert!(std::format!("{e}").contains("seek table disagrees"), "{e}");
    // One frame fewer in the table than in the stream.
    let e = run(&z, idx[..idx.len() - 1].to_vec()).unwrap_err();
    assert!(std::format!("{e}").contains("seek table"), "{e}");
}

#[test]
fn plain_and_zstd_inputs_are_told_apart() {
    use super::{file_index, starts_zstd, MaybeZstd};
    let data = sample(FRAME_BYTES / 2);
    let z = compress(&data, 3, 1, 1 << 20);
    for (bytes, zstd) in [(&data, false), (&z, true)] {
        let dev = MemDev::new(bytes.clone());
        assert_eq!(starts_zstd(&dev, 0).unwrap(), zstd);
        let idx = file_index(&dev, bytes.len() as u64).unwrap();
        assert_eq!(idx.is_some(), zstd);
        let mut m = MaybeZstd::open(MemDev::new(bytes.clone()), 2, idx).unwrap();
        assert_eq!(m.is_zstd(), zstd);
        // The first image bytes are there to look at (decompressed), and reading starts
        // with them.
        assert_eq!(m.head(), &data[..16]);
        let mut out = vec![0u8; data.len() + 10];
        let n = m.read_full(&mut out).unwrap();
        assert!(n == data.len() && out[..n] == data[..]);
    }
    // Shorter than a magic number: plain.
    assert!(!starts_zstd(&MemDev::new(vec![0x28]), 0).unwrap());
    let m = MaybeZstd::open(MemDev::new(vec![0x28, 0xb5]), 1, None).unwrap();
    assert!(!m.is_zstd());
    assert_eq!(m.head(), &[0x28, 0xb5]);
    // A compressed image shorter than the head: all of it.
    let z = compress(b"0123456789", 3, 1, 1 << 20);
    let mut m = MaybeZstd::open(MemDev::new(z), 1, None).unwrap();
    assert!(m.is_zstd() && m.head() == b"0123456789");
    let mut out = [0u8; 32];
    assert!(m.read_full(&mut out).unwrap() == 10 && &out[..10] == b"0123456789");
}

/// Reads `d` to its end, taking whole buffers with `swap_buffer` every other time and
/// reading `piece` bytes the other times (as the image reader does around a record cut by a
/// frame's end).
fn swap_and_read<R: ReadStream>(d: &mut Decompressor<R>, piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut mine = vec![7u8; 1000];
    let mut buf = vec![0u8; piece];
    for turn in 0.. {
        if turn % 2 == 0 {
            if let Some(at) = d.swap_buffer(&mut mine).unwrap() {
                out.extend_from_slice(&mine[at..]);
                continue;
            }
        }
        let n = d.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn swapped_buffers_give_the_same_bytes() {
    use std::sync::Arc;
    let data = sample(3 * FRAME_BYTES + 4321);
    let z = compress(&data, 3, 2, 1 << 20);
    // From the stream, and with the workers reading the frames of the seek table themselves.
    let idx = SeekTable::read(&MemDev::new(z.clone()), z.len() as u64, 8 << 20)
        .unwrap()
        .unwrap()
        .1;
    for positioned in [false, true] {
        for piece in [1usize, 4097, 1 << 20] {
            let mut d = Decompressor::new(MemDev::new(z.clone()), &[], 2).unwrap();
            if positioned {
                d = d
                    .with_index(idx.clone())
                    .read_frames_at(Arc::new(MemDev::new(z.clone())));
            }
            assert!(swap_and_read(&mut d, piece) == data, "{positioned} {piece}");
        }
    }
    // A streamed frame (no content size) after sized ones: read, not swapped.
    let mut mixed = compress(&data[..FRAME_BYTES + 10], 3, 2, 1 << 20);
    mixed.extend_from_slice(&unsized_frame(&data[FRAME_BYTES + 10..]));
    let mut d = Decompressor::new(MemDev::new(mixed), &[], 2).unwrap();
    assert!(swap_and_read(&mut d, 5000) == data);
}

#[test]
fn positioned_frames_are_checked_like_streamed_ones() {
    use std::sync::Arc;
    let data = sample(2 * FRAME_BYTES + 99);
    let z = compress(&data, 3, 2, 1 << 20);
    let idx = SeekTable::read(&MemDev::new(z.clone()), z.len() as u64, 8 << 20)
        .unwrap()
        .unwrap()
        .1;
    // A flipped byte inside the second frame: an error naming that frame's offset.
    let mut bad = z.clone();
    let at = idx[1].0 as usize + 100;
    bad[at] ^= 0x40;
    let mut d = Decompressor::new(MemDev::new(bad.clone()), &[], 2)
        .unwrap()
        .with_index(idx.clone())
        .read_frames_at(Arc::new(MemDev::new(bad)));
    let mut buf = vec![0u8; 1 << 16];
    let err = loop {
        match d.read(&mut buf) {
            Ok(0) => core::panic!("a damaged frame was read to the end"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    let msg = std::format!("{err}");
    assert!(
        msg.contains(&std::format!("compressed byte offset {}", idx[1].0)),
        "{msg}"
    );
    // A file shorter than its table says: a read error, not a panic.
    let short = z[..idx[2].0 as usize - 10].to_vec();
    let mut d = Decompressor::new(MemDev::new(short.clone()), &[], 2)
        .unwrap()
        .with_index(idx)
        .read_frames_at(Arc::new(MemDev::new(short)));
    let r = (0..1000).try_for_each(|_| d.read(&mut buf).map(|_| ()));
    assert!(r.is_err());
}

#[test]
fn opened_inputs_hand_out_frames_after_their_head() {
    use super::{file_index, FrameSource, MaybeZstd};
    use std::sync::Arc;
    let data = sample(2 * FRAME_BYTES + 77);
    let z = compress(&data, 3, 2, 1 << 20);
    let idx = file_index(&MemDev::new(z.clone()), z.len() as u64).unwrap();
    for positioned in [false, true] {
        let src: Option<FrameSource> = positioned.then(|| Arc::new(MemDev::new(z.clone())) as _);
        let mut m =
            MaybeZstd::open_file(MemDev::new(z.clone()), 2, idx.clone().map(|i| (i, src))).unwrap();
        let mut mine = Vec::new();
        // Not while the head is being read out.
        let mut head = [0u8; 10];
        assert_eq!(m.read_full(&mut head).unwrap(), 10);
        assert_eq!(m.swap_buffer(&mut mine).unwrap(), None);
        let mut out = head.to_vec();
        let mut rest = [0u8; 6];
        assert_eq!(m.read_full(&mut rest).unwrap(), 6);
        out.extend_from_slice(&rest);
        // Then the frames themselves.
        let mut swaps = 0;
        while let Some(at) = m.swap_buffer(&mut mine).unwrap() {
            out.extend_from_slice(&mine[at..]);
            swaps += 1;
        }
        assert!(swaps >= 3, "{positioned}: {swaps} frames swapped");
        assert!(out == data, "{positioned}");
        assert_eq!(m.read(&mut rest).unwrap(), 0);
    }
}
