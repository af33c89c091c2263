//! Unit tests of the disk image stream.
// Tests build their inputs by hand at fixed offsets: a panic there is a failed test.
#![allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::*;
use crate::dev::mem::MemDev;
use crate::disk::gpt::tests::gpt_disk;

/// A special image of 8 clusters of 512 bytes (clusters 0, 3 and the backup boot sector).
fn special_image() -> Vec<u8> {
    use crate::image::{Header, Writer as ImgWriter};
    let h = crate::image::Header::new(512, 9 * 512, 8, 3);
    let _: &Header = &h;
    let mut w = ImgWriter::new(MemDev::default(), &h, 0).unwrap();
    w.cluster(&[1; 512]).unwrap();
    w.gap(2).unwrap();
    w.cluster(&[3; 512]).unwrap();
    w.gap(4).unwrap();
    w.cluster(&[9; 512]).unwrap();
    w.finish().unwrap().data
}

struct Made {
    image: Vec<u8>,
    disk: Vec<u8>,
    ntfs: Vec<u8>,
}

/// A GPT disk (partition 1 NTFS, partition 2 raw), saved as an image.
fn make(with_trailer: bool) -> Made {
    let disk = gpt_disk(8192);
    let layout = Layout::read(&MemDev::new(disk.clone()), 8192 * 512, 512).unwrap();
    let h = DiskHeader::new(
        &layout,
        &[SectionKind::Ntfs, SectionKind::Raw],
        with_trailer,
    );
    let mut w = Writer::new(MemDev::default(), h).unwrap();
    for a in &layout.areas {
        w.areas(&disk[a.offset as usize..(a.offset + a.len) as usize])
            .unwrap();
    }
    let ntfs = special_image();
    w.begin_section(3 * 512).unwrap();
    w.write_all(&ntfs).unwrap();
    w.begin_section(1024).unwrap();
    w.extent(0, &[5; 512]).unwrap();
    w.extent_header(4096, 512).unwrap();
    w.write_all(&[6; 200]).unwrap();
    w.write_all(&[7; 312]).unwrap();
    w.end_extents().unwrap();
    let image = w.finish().unwrap().data;
    Made { image, disk, ntfs }
}

/// Reads a whole image as a restore would; returns the sections' contents.
fn read_all(img: &[u8], verify: bool) -> Result<(Vec<Vec<u8>>, Check)> {
    let mut r = Reader::open(MemDev::new(img.to_vec()), verify)?;
    let mut out = Vec::new();
    while let Some(s) = r.next_section()? {
        let mut data = Vec::new();
        if s.part.kind == SectionKind::Ntfs {
            // A special-image reader reads ahead, checksums what it consumes and gives the
            // excess back.
            let mut v = r.lend_verifier();
            let mut buf = vec![0u8; 4096];
            let n = r.read_full(&mut buf)?;
            let len = special_image().len().min(n);
            data.extend_from_slice(&buf[..len]);
            if let Some(v) = v.as_mut() {
                v.update(&buf[..len]);
            }
            r.give_back(&buf[len..n], v);
        } else {
            while let Some(e) = r.next_extent()? {
                let mut b = vec![0u8; e.len as usize];
                if r.read_full(&mut b)? != b.len() {
                    return Err(Error::message(format_args!("short extent")));
                }
                data.extend_from_slice(&e.offset.to_le_bytes());
                data.extend_from_slice(&b);
            }
        }
        out.push(data);
    }
    let check = r.finish()?;
    Ok((out, check))
}

#[test]
fn round_trip() {
    let m = make(true);
    let (secs, check) = read_all(&m.image, true).unwrap();
    assert_eq!(check, Check::Verified);
    assert_eq!(secs[0], m.ntfs);
    assert_eq!(secs[1].len(), 8 + 512 + 8 + 512);
    let r = Reader::open(MemDev::new(m.image.clone()), false).unwrap();
    assert_eq!(r.areas()[0].1, m.disk[..2048 * 512]);
    assert_eq!(r.header().min_disk_size(), (6144 + 33) * 512);
    let (_, check) = read_all(&make(false).image, true).unwrap();
    assert_eq!(check, Check::NoTrailer);
    let (_, check) = read_all(&m.image, false).unwrap();
    assert_eq!(check, Check::NotChecked);
}

#[test]
fn locate_and_extract() {
    for t in [true, false] {
        let m = make(t);
        let dev = MemDev::new(m.image.clone());
        let loc = locate(&dev, m.image.len() as u64).unwrap();
        assert_eq!(loc.index.len(), 2);
        assert_eq!(loc.trailer.is_some(), t);
        let e = loc.index[0];
        let p = e.payload_offset as usize;
        assert_eq!(&m.image[p..p + e.payload_len as usize], &m.ntfs[..]);
        let mut out = MemDev::default();
        assert_eq!(
            extract(&dev, m.image.len() as u64, 1, &mut out).unwrap(),
            m.ntfs.len() as u64
        );
        assert_eq!(out.data, m.ntfs);
        let err = extract(&dev, m.image.len() as u64, 2, &mut out).unwrap_err();
        assert!(std::format!("{err}").contains("raw"), "{err}");
        assert!(extract(&dev, m.image.len() as u64, 7, &mut out).is_err());
    }
    // A flipped payload byte: extraction refuses, nothing written.
    let m = make(true);
    let mut img = m.image.clone();
    let loc = locate(&MemDev::new(img.clone()), img.len() as u64).unwrap();
    img[loc.index[0].payload_offset as usize + 100] ^= 1;
    let mut out = MemDev::default();
    let len = img.len() as u64;
    assert!(extract(&MemDev::new(img), len, 1, &mut out).is_err());
    assert!(out.data.is_empty());
}

#[test]
fn every_flipped_byte_is_caught() {
    let m = make(true);
    // Every byte of the header, of the sections and of the index; every 4099th byte of
    // the 1 MiB boot area.
    let hlen = DiskHeader::len_from_start(&m.image).unwrap();
    let areas_end = hlen + (2048 + 33) * 512;
    let bytes = (0..hlen)
        .chain((hlen..areas_end).step_by(4099))
        .chain(areas_end..m.image.len());
    for i in bytes {
        let mut d = m.image.clone();
        d[i] ^= 0x04;
        match read_all(&d, true) {
            Err(_) => {}
            Ok((_, Check::Mismatch(bad))) => {
                assert!(
                    bad.iter()
                        .any(|b| b.start <= i as u64 && (i as u64) < b.end),
                    "byte {i}"
                );
            }
            Ok((_, c)) => core::panic!("byte {i} flipped: {c:?}"),
        }
    }
}

#[test]
fn truncated_images_fail() {
    let m = make(true);
    for cut in [
        0,
        10,
        64,
        100,
        2048 * 512,
        m.image.len() - 5000,
        m.image.len() - 1,
    ] {
        assert!(read_all(&m.image[..cut], true).is_err(), "cut at {cut}");
    }
    let mut longer = m.image.clone();
    longer.push(0);
    assert!(read_all(&longer, true).is_err());
}

/// Header fields changed with the CRC kept valid: each reaches its own check.
#[test]
fn header_checks() {
    let m = make(true);
    let hlen = DiskHeader::len_from_start(&m.image).unwrap();
    let base = m.image[..hlen].to_vec();
    let reseal = |f: &dyn Fn(&mut Vec<u8>)| -> String {
        let mut b = base.clone();
        f(&mut b);
        b[60..64].fill(0);
        let crc = crc32fast::hash(&b);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        match DiskHeader::parse(&b) {
            Ok(_) => "ok".into(),
            Err(e) => std::format!("{e}"),
        }
    };
    type Mutation = fn(&mut Vec<u8>);
    let p = FIXED_LEN + 2 * AREA_DESC_LEN;
    let cases: [(Mutation, &str); 11] = [
        (|b| b[0] = 1, "no magic"),
        (|b| b[16] = 2, "version 2"),
        (
            |b| b[20..24].copy_from_slice(&8u32.to_le_bytes()),
            "header length out of range",
        ),
        (
            |b| b[32..36].copy_from_slice(&100u32.to_le_bytes()),
            "sector size",
        ),
        (|b| b[36] = 9, "table kind"),
        (|b| b[37] = 0x80, "flags"),
        (|b| b[38] = 3, "does not match its lists"),
        (|b| b[FIXED_LEN] = 7, "boot area kind"),
        (|b| b[48] ^= 1, "area total"),
        (
            |b| b[24..32].copy_from_slice(&4096u64.to_le_bytes()),
            "out of the disk",
        ),
        (|b| b[FIXED_LEN + 2 * AREA_DESC_LEN + 4] = 9, "content kind"),
    ];
    for (f, want) in cases {
        let got = reseal(&f);
        assert!(got.contains(want), "{want}: {got}");
    }
    // The second partition moved over the first.
    let got = reseal(&|b: &mut Vec<u8>| {
        let at = p + PART_DESC_LEN + 8;
        b[at..at + 8].copy_from_slice(&(3000u64 * 512).to_le_bytes());
    });
    assert!(got.contains("overlapping"), "{got}");
    assert_eq!(reseal(&|_| ()), "ok");
    let mut b = base.clone();
    b[70] ^= 1;
    assert!(std::format!("{}", DiskHeader::parse(&b).unwrap_err()).contains("checksum"));
}

#[test]
fn writer_refuses_misuse() {
    let disk = gpt_disk(8192);
    let layout = Layout::read(&MemDev::new(disk), 8192 * 512, 512).unwrap();
    let h = DiskHeader::new(&layout, &[SectionKind::Raw, SectionKind::Raw], true);
    let mut w = Writer::new(MemDev::default(), h.clone()).unwrap();
    assert!(w.begin_section(0).is_err(), "areas missing");
    w.areas(&vec![0u8; h.area_bytes() as usize]).unwrap();
    assert!(w.write_all(&[1]).is_err(), "payload before a section");
    w.begin_section(0).unwrap();
    w.extent(512, &[1; 512]).unwrap();
    assert!(w.extent(0, &[1; 512]).is_err(), "out of order");
    assert!(
        w.extent(1 << 30, &[1; 512]).is_err(),
        "out of the partition"
    );
    w.extent_header(2048, 10).unwrap();
    assert!(w.end_extents().is_err(), "bytes owed");
    assert!(w.write_all(&[0; 11]).is_err(), "too many bytes");
    w.write_all(&[0; 10]).unwrap();
    w.end_extents().unwrap();
    assert!(w.finish().is_err(), "a section missing");
}

#[test]
fn chunk_size_bounds_the_trailer() {
    for size in [0u64, 1 << 20, 1 << 30, 1 << 40, 1 << 50, u64::MAX] {
        let c = chunk_size_for(size);
        assert!(c.is_power_of_two() && c >= trailer::MIN_CHUNK_SIZE);
    }
    assert_eq!(chunk_size_for(1 << 30), 2 << 20);
}
