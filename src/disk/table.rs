//! The table writes of a restore: what to write where so that a target disk of any size (large
//! enough) gets the source's partition table and boot areas.
//!
//! The table is parsed again from the boot areas the image carries (the same checks as on the
//! source). The head (sector 0 up to the first partition) and each EBR are written verbatim;
//! a GPT is then rewritten for the target's size ([`super::gpt::Gpt::encode`]: backup at the
//! end, last usable LBA moved, CRCs recomputed) and the protective MBR's 0xEE entry resized.
//! With new identifiers, the GPT disk GUID, each partition's unique GUID and the MBR disk
//! signature change.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
use super::layout::{Area, AreaKind, AreasDisk, Layout, TableKind};
use super::{mbr, IdGen};
use crate::error::{Error, Result};
use std::prelude::v1::*;

/// One write of a restore's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableWrite {
    /// Byte offset on the target.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The source's layout, read back from its boot areas.
pub fn layout_from_areas(
    areas: &[(Area, Vec<u8>)],
    disk_size: u64,
    sector_size: u32,
) -> Result<Layout> {
    let disk = AreasDisk {
        size: disk_size,
        areas: areas.to_vec(),
    };
    Layout::read(&disk, disk_size, sector_size)
}

/// Refuses a target smaller than `need` bytes, with both sizes.
pub fn check_target_size(target_size: u64, need: u64) -> Result<()> {
    if target_size < need {
        return Err(Error::message(format_args!(
            "the target is too small: it has {target_size} bytes, the disk needs {need} bytes \
             (up to the end of its last partition)"
        )));
    }
    Ok(())
}

/// The writes that give a target of `target_size` bytes the table and boot areas of `layout`
/// (whose boot-area bytes are `areas`), in the order to make them: head, EBRs, then for a GPT
/// both rewritten copies (they overlay the head's primary copy). `ids`: new identifiers.
pub fn table_writes(
    layout: &Layout,
    areas: &[(Area, Vec<u8>)],
    target_size: u64,
    mut ids: Option<&mut IdGen>,
) -> Result<Vec<TableWrite>> {
    let ss = u64::from(layout.sector_size);
    check_target_size(target_size, layout.min_disk_size()?)?;
    let target_sectors = target_size / ss;
    let mut out = Vec::new();
    for (a, bytes) in areas {
        match a.kind {
            AreaKind::Head => {
                let mut b = bytes.clone();
                if layout.kind == TableKind::Gpt {
                    mbr::set_protective_size(&mut b, target_sectors);
                }
                if let Some(ids) = ids.as_deref_mut() {
                    if layout.kind == TableKind::Dos || mbr::signature(&b) != 0 {
                        mbr::set_signature(&mut b, ids.signature());
                    }
                }
                out.push(TableWrite {
                    offset: a.offset,
                    bytes: b,
                });
            }
            AreaKind::Ebr => out.push(TableWrite {
                offset: a.offset,
                bytes: bytes.clone(),
            }),
            AreaKind::GptBackup => {}
        }
    }
    if let Some(g) = &layout.gpt {
        let mut g = g.clone();
        if let Some(ids) = ids {
            g.new_ids(ids);
        }
        for (lba, bytes) in g.encode(target_sectors)?.writes() {
            out.push(TableWrite {
                offset: lba.saturating_mul(ss),
                bytes: bytes.to_vec(),
            });
        }
    }
    Ok(out)
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
    use crate::dev::WriteAt;
    use crate::disk::gpt::tests::gpt_disk;
    use crate::disk::mbr::tests::dos_disk;

    fn areas_of(d: &[u8], l: &Layout) -> Vec<(Area, Vec<u8>)> {
        l.areas
            .iter()
            .map(|a| {
                (
                    *a,
                    d[a.offset as usize..(a.offset + a.len) as usize].to_vec(),
                )
            })
            .collect()
    }

    fn apply(size: u64, w: &[TableWrite]) -> MemDev {
        let mut m = MemDev::new(vec![0u8; size as usize]);
        for t in w {
            m.write_all_at(&t.bytes, t.offset).unwrap();
        }
        m
    }

    #[test]
    fn gpt_onto_a_larger_disk() {
        let d = gpt_disk(8192);
        let l = Layout::read(&MemDev::new(d.clone()), 8192 * 512, 512).unwrap();
        let areas = areas_of(&d, &l);
        let l2 = layout_from_areas(&areas, 8192 * 512, 512).unwrap();
        assert_eq!(l2, l);
        let w = table_writes(&l2, &areas, 20000 * 512, None).unwrap();
        let t = apply(20000 * 512, &w);
        let back = Layout::read(&t, 20000 * 512, 512).unwrap();
        assert_eq!(back.partitions, l.partitions);
        assert_eq!(back.gpt.as_ref().unwrap().header.last_usable, 20000 - 34);
        assert_eq!(back.dos.primary[0].sectors, 19999);
        assert_eq!(back.gpt.unwrap().damage, None);
        // Same size: the table bytes come back exactly.
        let same = apply(
            8192 * 512,
            &table_writes(&l2, &areas, 8192 * 512, None).unwrap(),
        );
        assert_eq!(same.data[..2048 * 512], d[..2048 * 512]);
        assert_eq!(
            same.data[8192 * 512 - 33 * 512..],
            d[8192 * 512 - 33 * 512..]
        );
        // Too small: refused with both sizes.
        let e = table_writes(&l2, &areas, 6000 * 512, None).unwrap_err();
        let m = std::format!("{e}");
        assert!(m.contains("3072000") && m.contains("3162624"), "{m}");
    }

    #[test]
    fn damaged_primary_is_rewritten() {
        let mut d = gpt_disk(8192);
        d[512 + 20] ^= 1;
        let l = Layout::read(&MemDev::new(d.clone()), 8192 * 512, 512).unwrap();
        assert!(l.gpt.as_ref().unwrap().damage.is_some());
        let areas = areas_of(&d, &l);
        let l2 = layout_from_areas(&areas, 8192 * 512, 512).unwrap();
        let t = apply(
            8192 * 512,
            &table_writes(&l2, &areas, 8192 * 512, None).unwrap(),
        );
        let back = Layout::read(&t, 8192 * 512, 512).unwrap();
        assert_eq!(back.gpt.unwrap().damage, None);
        assert_eq!(t.data[512..1024], gpt_disk(8192)[512..1024]);
    }

    #[test]
    fn new_ids() {
        let d = dos_disk();
        let l = Layout::read(&MemDev::new(d.clone()), 131072 * 512, 512).unwrap();
        let areas = areas_of(&d, &l);
        let w = table_writes(&l, &areas, 131072 * 512, Some(&mut IdGen::new(5))).unwrap();
        let t = apply(131072 * 512, &w);
        let back = Layout::read(&t, 131072 * 512, 512).unwrap();
        assert_ne!(back.dos.signature, l.dos.signature);
        assert_eq!(back.partitions, l.partitions);
        assert_eq!(t.data[6144 * 512..6145 * 512], d[6144 * 512..6145 * 512]);

        let d = gpt_disk(8192);
        let l = Layout::read(&MemDev::new(d.clone()), 8192 * 512, 512).unwrap();
        let areas = areas_of(&d, &l);
        let w = table_writes(&l, &areas, 8192 * 512, Some(&mut IdGen::new(5))).unwrap();
        let back = Layout::read(&apply(8192 * 512, &w), 8192 * 512, 512).unwrap();
        let (g0, g1) = (l.gpt.unwrap(), back.gpt.unwrap());
        assert_ne!(g0.header.disk_guid, g1.header.disk_guid);
        let (p0, p1) = (g0.partitions().unwrap(), g1.partitions().unwrap());
        assert!(p0
            .iter()
            .zip(&p1)
            .all(|(a, b)| a.unique_guid != b.unique_guid
                && a.first_lba == b.first_lba
                && a.type_guid == b.type_guid));
    }
}
