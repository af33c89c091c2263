//! Writing a disk image stream ([`Writer`]).
use super::*;

/// Writes a disk image. Call in order: [`Writer::new`], [`Writer::areas`] (all the boot-area
/// bytes), then for each partition [`Writer::begin_section`], its payload (through the
/// [`WriteStream`] impl for a special image, or [`Writer::extent`] / [`Writer::extent_header`]
/// and [`Writer::end_extents`]), and finally [`Writer::finish`].
pub struct Writer<W: WriteStream> {
    out: W,
    header: DiskHeader,
    pos: u64,
    sums: Option<trailer::Builder>,
    areas_left: u64,
    next_part: usize,
    index: Vec<IndexEntry>,
    /// Extents of the current section: (lowest allowed next offset, partition length).
    extents: Option<(u64, u64)>,
    /// Bytes still owed to the current extent.
    owed: u64,
}

impl<W: WriteStream> Writer<W> {
    /// Starts an image on `out` with `header` (which says whether a trailer is written).
    pub fn new(out: W, header: DiskHeader) -> Result<Self> {
        let sums = header
            .has_trailer()
            .then(|| trailer::Builder::new(chunk_size_for(header.disk_size)));
        let mut w = Writer {
            out,
            areas_left: header.area_bytes(),
            header,
            pos: 0,
            sums,
            next_part: 0,
            index: Vec::new(),
            extents: None,
            owed: 0,
        };
        let bytes = w.header.to_bytes();
        w.put(&bytes)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b)?;
        if let Some(s) = self.sums.as_mut() {
            s.update(b);
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    fn misuse(what: &'static str) -> Error {
        Error::message(format_args!("disk image writer: {what}"))
    }

    /// Stream bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The header being written.
    pub fn header(&self) -> &DiskHeader {
        &self.header
    }

    /// Boot-area bytes, in header order (any split).
    pub fn areas(&mut self, b: &[u8]) -> Result<()> {
        if b.len() as u64 > self.areas_left {
            return Err(Self::misuse("more boot-area bytes than the header lists"));
        }
        self.areas_left -= b.len() as u64;
        self.put(b)
    }

    fn close_section(&mut self) -> Result<()> {
        if self.extents.is_some() || self.owed != 0 {
            return Err(Self::misuse("extents not ended"));
        }
        if let Some(e) = self.index.last_mut() {
            e.payload_len = self.pos - e.payload_offset;
        }
        Ok(())
    }

    /// Starts the section of the next partition of the header; `data_bytes` is what its
    /// payload will carry (progress only).
    pub fn begin_section(&mut self, data_bytes: u64) -> Result<PartDesc> {
        if self.areas_left != 0 {
            return Err(Self::misuse("boot areas incomplete"));
        }
        self.close_section()?;
        let part = *self
            .header
            .parts
            .get(self.next_part)
            .ok_or_else(|| Self::misuse("more sections than partitions"))?;
        self.next_part += 1;
        let section_offset = self.pos;
        self.put(&SectionHeader { part, data_bytes }.to_bytes())?;
        self.index.push(IndexEntry {
            number: part.number,
            kind: part.kind,
            section_offset,
            payload_offset: self.pos,
            payload_len: 0,
        });
        if part.kind != SectionKind::Ntfs {
            self.extents = Some((0, part.len));
        }
        Ok(part)
    }

    /// The header of an extent of `len` bytes at `offset` of the current partition; its bytes
    /// follow through [`WriteStream::write_all`]. Extents must be in order and inside the
    /// partition.
    pub fn extent_header(&mut self, offset: u64, len: u64) -> Result<()> {
        let (min, part_len) = self
            .extents
            .ok_or_else(|| Self::misuse("extent outside a FAT or raw section"))?;
        if self.owed != 0 || len == 0 || offset < min || offset.saturating_add(len) > part_len {
            return Err(Self::misuse("extent out of order or out of the partition"));
        }
        self.put(&Extent { offset, len }.to_bytes())?;
        self.extents = Some((offset + len, part_len));
        self.owed = len;
        Ok(())
    }

    /// An extent with its bytes.
    pub fn extent(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.extent_header(offset, data.len() as u64)?;
        self.write_all(data)
    }

    /// Ends the extents of the current section.
    pub fn end_extents(&mut self) -> Result<()> {
        let (_, part_len) = self
            .extents
            .ok_or_else(|| Self::misuse("no extents to end"))?;
        if self.owed != 0 {
            return Err(Self::misuse("extent bytes missing"));
        }
        self.extents = None;
        self.put(
            &Extent {
                offset: part_len,
                len: 0,
            }
            .to_bytes(),
        )
    }

    /// Writes the index and the trailer; returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.close_section()?;
        if self.next_part != self.header.parts.len() {
            return Err(Self::misuse("fewer sections than partitions"));
        }
        let idx = index_bytes(&self.index);
        self.put(&idx)?;
        if let Some(s) = self.sums.take() {
            let t = s.finish()?;
            self.out.write_all(&t)?;
        }
        Ok(self.out)
    }
}

impl<W: WriteStream> WriteStream for Writer<W> {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        if self.extents.is_some() {
            if buf.len() as u64 > self.owed {
                return Err(Self::misuse("more extent bytes than its header says"));
            }
            self.owed -= buf.len() as u64;
        } else if self.index.is_empty() {
            return Err(Self::misuse("payload before a section"));
        }
        self.put(buf)
    }
}
