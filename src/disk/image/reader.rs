//! Reading a disk image stream back ([`Reader`]), checking every structure.
use super::*;

/// The outcome of reading a disk image to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The trailer's checksums match every byte.
    Verified,
    /// The image has no trailer (written with `--no-checksum`).
    NoTrailer,
    /// Checksums were not computed (the caller checked the chunks beforehand, or asked for
    /// none).
    NotChecked,
    /// These byte ranges of the image do not match their checksums.
    Mismatch(Vec<Mismatch>),
}

/// Reads a disk image stream.
pub struct Reader<R: ReadStream> {
    input: R,
    header: DiskHeader,
    areas: Vec<(Area, Vec<u8>)>,
    /// Stream offset of the next byte handed out.
    pos: u64,
    /// Bytes given back with [`Reader::give_back`], served before the input.
    pushback: Vec<u8>,
    sums: Option<Verifier>,
    next_part: usize,
    seen: Vec<IndexEntry>,
    /// Current extent section: (lowest allowed next offset, partition length).
    extents: Option<(u64, u64)>,
    owed: u64,
    /// Bytes may follow the image (it was read from a block device, whose bytes go on after
    /// the image); otherwise they are an error.
    trailing_ok: bool,
}

impl<R: ReadStream> Reader<R> {
    /// Accepts bytes after the end of the image (an image read from a block device: the
    /// device's older bytes follow it); by default they are an error.
    pub fn allow_trailing_bytes(&mut self) {
        self.trailing_ok = true;
    }

    /// Reads and checks the header and the boot areas. With `verify`, every byte is
    /// checksummed and [`Reader::finish`] compares the sums with the trailer.
    pub fn open(mut input: R, verify: bool) -> Result<Self> {
        let mut start = [0u8; FIXED_LEN];
        if input.read_full(&mut start)? < FIXED_LEN {
            return Err(corrupt("the image ends inside its header", 0));
        }
        let len = DiskHeader::len_from_start(&start)?;
        let mut hb = vec![0u8; len];
        if let Some(s) = hb.get_mut(..FIXED_LEN) {
            s.copy_from_slice(&start);
        }
        let rest = hb.get_mut(FIXED_LEN..).unwrap_or(&mut []);
        if input.read_full(rest)? < rest.len() {
            return Err(corrupt(
                "the image ends inside its header",
                FIXED_LEN as u64,
            ));
        }
        let header = DiskHeader::parse(&hb)?;
        let sums = (verify && header.has_trailer()).then(|| {
            let mut v = Verifier::new(chunk_size_for(header.disk_size));
            v.update(&hb);
            v
        });
        let mut r = Reader {
            trailing_ok: false,
            input,
            areas: Vec::new(),
            pos: len as u64,
            pushback: Vec::new(),
            sums,
            next_part: 0,
            seen: Vec::new(),
            extents: None,
            owed: 0,
            header,
        };
        for a in r.header.areas.clone() {
            // Bounded by MAX_AREA_BYTES in DiskHeader::parse.
            let mut bytes = vec![0u8; usize::try_from(a.len).unwrap_or(0)];
            let at = r.pos;
            if r.pass_full(&mut bytes)? < bytes.len() {
                return Err(corrupt("the image ends inside its boot areas", at));
            }
            r.areas.push((a, bytes));
        }
        Ok(r)
    }

    /// The header.
    pub fn header(&self) -> &DiskHeader {
        &self.header
    }

    /// The boot areas with their bytes.
    pub fn areas(&self) -> &[(Area, Vec<u8>)] {
        &self.areas
    }

    /// Stream offset of the next byte.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Lends the checksum state to the reader of an NTFS payload (a special-image reader that
    /// reads ahead): bytes handed out meanwhile are not checksummed here. The special-image
    /// reader checksums what it consumes and hands the state back with the bytes it read past
    /// the payload's end, through [`Reader::give_back`].
    pub fn lend_verifier(&mut self) -> Option<Verifier> {
        self.sums.take()
    }

    /// Takes back the checksum state lent by [`Reader::lend_verifier`] and the bytes read past
    /// the end of the payload (not checksummed yet): they are handed out again, and
    /// checksummed then, before any more input.
    pub fn give_back(&mut self, bytes: &[u8], sums: Option<Verifier>) {
        let mut v = bytes.to_vec();
        v.append(&mut self.pushback);
        self.pushback = v;
        self.pos -= bytes.len() as u64;
        self.sums = sums;
    }

    fn close_section(&mut self) -> Result<()> {
        if self.extents.is_some() || self.owed != 0 {
            return Err(Error::message(format_args!(
                "disk image reader: a section was not read to its end"
            )));
        }
        let pos = self.pos;
        if let Some(e) = self.seen.last_mut() {
            e.payload_len = pos - e.payload_offset;
        }
        Ok(())
    }

    /// The next section's header, or None after the last one (the index has then been read
    /// and checked against the sections seen).
    pub fn next_section(&mut self) -> Result<Option<SectionHeader>> {
        self.close_section()?;
        let at = self.pos;
        let Some(want) = self.header.parts.get(self.next_part).copied() else {
            self.read_index()?;
            return Ok(None);
        };
        let mut b = [0u8; SECTION_LEN];
        if self.pass_full(&mut b)? < SECTION_LEN {
            return Err(corrupt("the image ends before a partition section", at));
        }
        let s = SectionHeader::parse(&b, &want, at)?;
        self.next_part += 1;
        self.seen.push(IndexEntry {
            number: want.number,
            kind: want.kind,
            section_offset: at,
            payload_offset: self.pos,
            payload_len: 0,
        });
        if want.kind != SectionKind::Ntfs {
            self.extents = Some((0, want.len));
        }
        Ok(Some(s))
    }

    /// The next extent of a FAT or raw section (its bytes are then read through the
    /// [`ReadStream`] impl, exactly `len` of them), or None at the end of the section.
    pub fn next_extent(&mut self) -> Result<Option<Extent>> {
        let (min, part_len) = self.extents.ok_or_else(|| {
            Error::message(format_args!("disk image reader: not in an extent section"))
        })?;
        if self.owed != 0 {
            return Err(Error::message(format_args!(
                "disk image reader: extent bytes not read"
            )));
        }
        let at = self.pos;
        let mut b = [0u8; EXTENT_LEN];
        if self.pass_full(&mut b)? < EXTENT_LEN {
            return Err(corrupt("the image ends inside a partition section", at));
        }
        let e = Extent {
            offset: le::u64_at(&b, 0).unwrap_or(0),
            len: le::u64_at(&b, 8).unwrap_or(0),
        };
        if e.len == 0 {
            if e.offset != part_len {
                return Err(corrupt("damaged end of extents", at));
            }
            self.extents = None;
            return Ok(None);
        }
        if e.offset < min
            || e.offset
                .checked_add(e.len)
                .map_or(true, |end| end > part_len)
        {
            return Err(corrupt("extent out of order or out of its partition", at));
        }
        self.extents = Some((e.offset + e.len, part_len));
        self.owed = e.len;
        Ok(Some(e))
    }

    fn read_index(&mut self) -> Result<()> {
        let at = self.pos;
        let mut start = [0u8; 16];
        if self.pass_full(&mut start)? < 16 {
            return Err(corrupt("the image ends before its index", at));
        }
        let len = index_len(&start).map_err(|_| corrupt("no index after the last section", at))?;
        let mut b = vec![0u8; len];
        if let Some(s) = b.get_mut(..16) {
            s.copy_from_slice(&start);
        }
        let rest = b.get_mut(16..).unwrap_or(&mut []);
        if self.pass_full(rest)? < rest.len() {
            return Err(corrupt("the image ends inside its index", at));
        }
        if parse_index(&b, at)? != self.seen {
            return Err(corrupt("the index does not match the sections", at));
        }
        Ok(())
    }

    /// The sections read so far, as the index records them.
    pub fn sections(&self) -> &[IndexEntry] {
        &self.seen
    }

    /// After the last section: reads the trailer (if the header says there is one) and
    /// compares the checksums; the input must end there.
    pub fn finish(mut self) -> Result<Check> {
        if self.next_part != self.header.parts.len() || self.extents.is_some() {
            return Err(Error::message(format_args!(
                "disk image reader: finish before the last section"
            )));
        }
        let data_len = self.pos;
        let mut check = Check::NoTrailer;
        if self.header.has_trailer() {
            let mut t = vec![0u8; trailer::MAX_LEN];
            let n = self.raw_read_full(t.get_mut(..24).unwrap_or(&mut []))?;
            let want = Trailer::full_len(t.get(..n).unwrap_or(&[]))
                .ok_or_else(|| corrupt("the integrity trailer is missing or damaged", data_len))?;
            let more = t.get_mut(n..want).unwrap_or(&mut []);
            let got = self.raw_read_full(more)?;
            let bytes = t.get(..n + got).unwrap_or(&[]);
            let trailer = match Trailer::parse(bytes) {
                Ok(t) => t,
                Err(TrailerProblem::Absent) | Err(TrailerProblem::Damaged(_)) => {
                    return Err(corrupt("the integrity trailer is damaged", data_len));
                }
            };
            if trailer.data_len != data_len {
                return Err(corrupt(
                    "the integrity trailer does not match the image length",
                    data_len,
                ));
            }
            check = match self.sums.take() {
                Some(v) => match v.check(&trailer) {
                    Ok(()) => Check::Verified,
                    Err(bad) => Check::Mismatch(bad.into_iter().collect()),
                },
                None => Check::NotChecked,
            };
        }
        let mut one = [0u8; 1];
        if !self.trailing_ok && self.raw_read_full(&mut one)? != 0 {
            return Err(corrupt("bytes after the end of the disk image", self.pos));
        }
        Ok(check)
    }

    /// Reads from the pushback, then the input, without checksumming (the trailer itself).
    fn raw_read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.raw_read(buf.get_mut(done..).unwrap_or(&mut []))?;
            if n == 0 {
                break;
            }
            done += n;
            self.pos += n as u64;
        }
        Ok(done)
    }

    fn raw_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if !self.pushback.is_empty() {
            let n = buf.len().min(self.pushback.len());
            if let (Some(d), Some(s)) = (buf.get_mut(..n), self.pushback.get(..n)) {
                d.copy_from_slice(s);
            }
            self.pushback.drain(..n);
            return Ok(n);
        }
        self.input.read(buf)
    }
}

impl<R: ReadStream> Reader<R> {
    /// Stream bytes in order, checksummed the first time they pass.
    fn pass(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.raw_read(buf)?;
        if let Some(v) = self.sums.as_mut() {
            v.update(buf.get(..n).unwrap_or(&[]));
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Fills `buf` with stream bytes (structures of the format, never limited by an extent);
    /// returns how many there were.
    fn pass_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.pass(buf.get_mut(done..).unwrap_or(&mut []))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

impl<R: ReadStream> ReadStream for Reader<R> {
    /// Payload bytes in order; inside an extent, never more than the extent's remaining bytes.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.extents.is_some() {
            let n = usize::try_from(self.owed).map_or(buf.len(), |o| o.min(buf.len()));
            let got = self.pass(buf.get_mut(..n).unwrap_or(&mut []))?;
            self.owed -= got as u64;
            Ok(got)
        } else {
            self.pass(buf)
        }
    }
}
