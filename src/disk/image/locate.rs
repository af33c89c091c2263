//! Finding the sections of a disk image file through its index, and taking one out.
use super::*;

/// Where the sections of a seekable image are, read from its end: the index and, when there
/// is one, the trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The sections.
    pub index: Vec<IndexEntry>,
    /// The trailer, if the image has one.
    pub trailer: Option<Trailer>,
}

/// Reads the index (and trailer) of an image of `len` bytes from its end.
pub fn locate<D: ReadAt + ?Sized>(dev: &D, len: u64) -> Result<Located> {
    let tail_at = |n: u64| {
        len.checked_sub(n)
            .ok_or_else(|| corrupt("the image is too short", 0))
    };
    let mut footer = [0u8; trailer::FOOTER_LEN];
    dev.read_exact_at(&mut footer, tail_at(trailer::FOOTER_LEN as u64)?)?;
    let (index_end, trailer) = match Trailer::len_from_footer(&footer) {
        Some(tlen) => {
            let at = tail_at(tlen as u64)?;
            let mut t = vec![0u8; tlen];
            dev.read_exact_at(&mut t, at)?;
            let t =
                Trailer::parse(&t).map_err(|_| corrupt("the integrity trailer is damaged", at))?;
            if t.data_len != at {
                return Err(corrupt(
                    "the integrity trailer does not match the image length",
                    at,
                ));
            }
            (at, Some(t))
        }
        None => (len, None),
    };
    let mut end = [0u8; 16];
    let end_at = index_end
        .checked_sub(16)
        .ok_or_else(|| corrupt("no index at the end of the image", 0))?;
    dev.read_exact_at(&mut end, end_at)?;
    if le::bytes::<8>(&end, 8) != Some(INDEX_END_MAGIC) {
        return Err(corrupt("no index at the end of the image", end_at));
    }
    let ilen = u64::from(le::u32_at(&end, 4).unwrap_or(0));
    if ilen < 32 || ilen > (32 + INDEX_ENTRY_LEN * MAX_PARTITIONS) as u64 || ilen > index_end {
        return Err(corrupt("index is damaged", end_at));
    }
    let at = index_end - ilen;
    let mut b = vec![0u8; usize::try_from(ilen).unwrap_or(0)];
    dev.read_exact_at(&mut b, at)?;
    let index = parse_index(&b, at)?;
    for e in &index {
        let end = e.payload_offset.checked_add(e.payload_len);
        if e.payload_offset != e.section_offset.saturating_add(SECTION_LEN as u64)
            || end.map_or(true, |end| end > at)
        {
            return Err(corrupt("index entry out of the image", at));
        }
    }
    Ok(Located { index, trailer })
}

/// Copies the special image of NTFS partition `number` out of a seekable disk image of `len`
/// bytes into `out` (a complete image that any ntfsclone restores). When the image has a
/// trailer, every checksum chunk that overlaps the payload is checked before any byte is
/// copied. Returns the bytes copied.
pub fn extract<D: ReadAt + ?Sized, W: WriteStream>(
    dev: &D,
    len: u64,
    number: u32,
    out: &mut W,
) -> Result<u64> {
    let loc = locate(dev, len)?;
    let e = loc
        .index
        .iter()
        .find(|e| e.number == number)
        .ok_or_else(|| Error::message(format_args!("the disk image has no partition {number}")))?;
    if e.kind != SectionKind::Ntfs {
        return Err(Error::message(format_args!(
            "partition {number} is stored as {} data, not as an NTFS special image",
            e.kind.name()
        )));
    }
    let (start, end) = (e.payload_offset, e.payload_offset + e.payload_len);
    let mut buf = vec![0u8; 1 << 20];
    if let Some(t) = &loc.trailer {
        for i in 0..t.crcs.len() {
            let (cs, ce) = t.chunk_range(i);
            if ce <= start || cs >= end {
                continue;
            }
            let mut h = crc32fast::Hasher::new();
            let mut at = cs;
            while at < ce {
                let n = usize::try_from((ce - at).min(buf.len() as u64)).unwrap_or(0);
                let b = buf.get_mut(..n).unwrap_or(&mut []);
                dev.read_exact_at(b, at)?;
                h.update(b);
                at += n as u64;
            }
            if Some(&h.finalize()) != t.crcs.get(i) {
                return Err(Error::message(format_args!(
                    "image checksum mismatch in image bytes {cs}..{ce} (0x{cs:x}..0x{ce:x}): \
                     nothing was extracted"
                )));
            }
        }
    }
    let mut at = start;
    while at < end {
        let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(0);
        let b = buf.get_mut(..n).unwrap_or(&mut []);
        dev.read_exact_at(b, at)?;
        out.write_all(b)?;
        at += n as u64;
    }
    Ok(e.payload_len)
}
