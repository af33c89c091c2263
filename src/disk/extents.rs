//! The payload of FAT and raw sections: extents saved from a partition, and written back.
//!
//! A raw partition is read in buffer-sized pieces; the non-zero [`ZERO_BLOCK`]s of each piece
//! become extents. A FAT partition's extents are its used runs ([`Fat::used_runs`]). On
//! restore, the extents are written at their offsets; a raw partition's gaps are written as
//! zeros unless the target is known to read as zeros already (a new sparse file), a FAT's gaps
//! are left alone ([`Gaps`]).
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::fat::Fat;
use super::image::{Reader, Writer};
use super::zero::{nonzero_runs, ZERO_BLOCK};
use crate::dev::{ReadAt, ReadStream, WriteAt, WriteStream};
use crate::error::{Error, Result};

/// Saves the non-zero blocks of a raw partition `src` of `len` bytes as extents of the current
/// section of `w`, reading through `buf`; `progress(bytes_done)` after each piece. Returns
/// the data bytes saved.
pub fn save_raw<D: ReadAt + ?Sized, W: WriteStream>(
    src: &D,
    len: u64,
    w: &mut Writer<W>,
    buf: &mut [u8],
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let piece = buf.len() - buf.len() % ZERO_BLOCK;
    if piece == 0 {
        return Err(Error::message(format_args!(
            "raw copy buffer smaller than a block"
        )));
    }
    let mut at = 0u64;
    let mut saved = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(piece as u64)).unwrap_or(piece);
        let b = buf.get_mut(..n).unwrap_or(&mut []);
        src.read_exact_at(b, at)?;
        for (o, l) in nonzero_runs(b, ZERO_BLOCK) {
            w.extent(at + o as u64, b.get(o..o + l).unwrap_or(&[]))?;
            saved += l as u64;
        }
        at += n as u64;
        progress(at);
    }
    w.end_extents()?;
    Ok(saved)
}

/// Bytes a FAT section will carry (the used runs' total; reads only the FAT).
pub fn fat_used_bytes<D: ReadAt + ?Sized>(src: &D, fat: &Fat) -> Result<u64> {
    let mut total = 0u64;
    fat.used_runs(src, |_, l| {
        total += l;
        Ok(())
    })?;
    Ok(total)
}

/// Saves the used runs of the FAT file system `fat` in partition `src` as extents of the
/// current section of `w`, reading through `buf`; `progress(bytes_saved)` after each piece.
/// Returns the data bytes saved.
pub fn save_fat<D: ReadAt + ?Sized, W: WriteStream>(
    src: &D,
    fat: &Fat,
    w: &mut Writer<W>,
    buf: &mut [u8],
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    if buf.is_empty() {
        return Err(Error::message(format_args!("empty copy buffer")));
    }
    let mut saved = 0u64;
    fat.used_runs(src, |off, len| {
        w.extent_header(off, len)?;
        let mut at = off;
        let end = off + len;
        while at < end {
            let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(0);
            let b = buf.get_mut(..n).unwrap_or(&mut []);
            src.read_exact_at(b, at)?;
            w.write_all(b)?;
            at += n as u64;
            saved += n as u64;
            progress(saved);
        }
        Ok(())
    })?;
    w.end_extents()?;
    Ok(saved)
}

/// Writes `len` zero bytes at `offset` of `dst` through `buf` (which it zeroes): the plain way
/// to fill a raw partition's gaps.
pub fn write_zeros<T: WriteAt + ?Sized>(
    dst: &mut T,
    mut offset: u64,
    len: u64,
    buf: &mut [u8],
) -> Result<()> {
    buf.fill(0);
    let end = offset.saturating_add(len);
    while offset < end {
        let n = usize::try_from((end - offset).min(buf.len() as u64)).unwrap_or(0);
        if n == 0 {
            return Err(Error::message(format_args!("empty zero buffer")));
        }
        dst.write_all_at(buf.get(..n).unwrap_or(&[]), offset)?;
        offset += n as u64;
    }
    Ok(())
}

/// What to do with the bytes of a partition that no extent covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gaps {
    /// Leave them as they are (FAT free space).
    Keep,
    /// Write zeros (a raw partition on a target that may hold old data).
    Zero,
    /// They already read as zeros (a raw partition on a new sparse file): skip them.
    AlreadyZero,
}

/// Restores the extents of the current FAT or raw section of `r` onto `dst` (the partition,
/// offsets relative to it) through `buf`, handling the uncovered bytes as `gaps` says.
/// `progress(data_bytes)` after each piece. Returns the data bytes written.
pub fn restore_extents<R: ReadStream, T: WriteAt + ?Sized>(
    r: &mut Reader<R>,
    part_len: u64,
    dst: &mut T,
    buf: &mut [u8],
    gaps: Gaps,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    if buf.is_empty() {
        return Err(Error::message(format_args!("empty copy buffer")));
    }
    let mut prev_end = 0u64;
    let mut done = 0u64;
    while let Some(e) = r.next_extent()? {
        if gaps == Gaps::Zero && e.offset > prev_end {
            write_zeros(dst, prev_end, e.offset - prev_end, buf)?;
        }
        let mut at = e.offset;
        let end = e.offset + e.len;
        while at < end {
            let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(0);
            let b = buf.get_mut(..n).unwrap_or(&mut []);
            let pos = r.position();
            if r.read_full(b)? < n {
                return Err(Error::corrupt(
                    format_args!("disk image"),
                    "the image ends inside a partition section",
                    pos,
                ));
            }
            dst.write_all_at(b, at)?;
            at += n as u64;
            done += n as u64;
            progress(done);
        }
        prev_end = end;
    }
    if gaps == Gaps::Zero && part_len > prev_end {
        write_zeros(dst, prev_end, part_len - prev_end, buf)?;
    }
    Ok(done)
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests {
    use super::*;
    use crate::dev::mem::MemDev;
    use crate::disk::gpt::tests::gpt_disk;
    use crate::disk::image::{DiskHeader, SectionKind};
    use crate::disk::layout::{Layout, Window};
    use std::prelude::v1::*;

    #[test]
    fn raw_and_fat_round_trip() {
        // Partition 1 (1 MiB at 2048): a FAT16 file system; partition 2: raw with holes.
        let mut d = gpt_disk(8192);
        let boot = crate::disk::fat::tests::fat16_boot(2048);
        let p1 = 2048 * 512;
        d[p1..p1 + 512].copy_from_slice(&boot);
        let fat = Fat::parse(&boot, 2048 * 512).unwrap();
        let fo = p1 + fat.fat_offset as usize;
        // 483 clusters: FAT12. Entries 0 and 1 reserved, 2 end of chain, 3 free.
        assert_eq!(fat.kind, crate::disk::fat::Kind::Fat12);
        d[fo..fo + 6].copy_from_slice(&[0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 0x00]);
        let c2 = p1 + fat.cluster_offset(2) as usize;
        d[c2..c2 + 2048].fill(0x22);
        let c3 = p1 + fat.cluster_offset(3) as usize;
        d[c3..c3 + 2048].fill(0x33); // free cluster: not saved
        let p2 = 4096 * 512;
        d[p2 + 5000] = 1;
        d[p2 + 100_000..p2 + 110_000].fill(7);
        let dev = MemDev::new(d.clone());
        let l = Layout::read(&dev, 8192 * 512, 512).unwrap();
        let h = DiskHeader::new(&l, &[SectionKind::Fat, SectionKind::Raw], true);
        let mut w = Writer::new(MemDev::default(), h).unwrap();
        for a in &l.areas {
            w.areas(&d[a.offset as usize..(a.offset + a.len) as usize])
                .unwrap();
        }
        let mut buf = vec![0u8; 64 << 10];
        let part = |p: &crate::disk::Partition| Window::new(&dev, p.start, p.len);
        w.begin_section(0).unwrap();
        let fw = part(&l.partitions[0]);
        assert_eq!(fat_used_bytes(&fw, &fat).unwrap(), fat.data_offset + 2048);
        assert_eq!(
            save_fat(&fw, &fat, &mut w, &mut buf, |_| ()).unwrap(),
            fat.data_offset + 2048
        );
        w.begin_section(0).unwrap();
        let saved = save_raw(
            &part(&l.partitions[1]),
            l.partitions[1].len,
            &mut w,
            &mut buf,
            |_| (),
        )
        .unwrap();
        assert_eq!(saved, 3 * 4096 + 4096);
        let img = w.finish().unwrap().data;

        // Restore onto a disk full of 0xEE: FAT gaps stay, raw gaps become zero.
        let mut t = MemDev::new(vec![0xEEu8; d.len()]);
        let mut r = Reader::open(MemDev::new(img), true).unwrap();
        while let Some(s) = r.next_section().unwrap() {
            let mut win = Window::new(&mut t, s.part.start, s.part.len);
            let gaps = if s.part.kind == SectionKind::Raw {
                Gaps::Zero
            } else {
                Gaps::Keep
            };
            restore_extents(&mut r, s.part.len, &mut win, &mut buf, gaps, |_| ()).unwrap();
        }
        assert_eq!(r.finish().unwrap(), crate::disk::image::Check::Verified);
        assert_eq!(t.data[p2..p2 + 2048 * 512], d[p2..p2 + 2048 * 512]);
        assert_eq!(t.data[p1..c3], d[p1..c3]);
        assert!(t.data[c3..c3 + 2048].iter().all(|&b| b == 0xEE));
    }
}
