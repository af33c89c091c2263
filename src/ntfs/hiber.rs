//! Hibernation: whether Windows was hibernated (or shut down with fast startup) on this volume.
//! Windows then leaves a memory image in `hiberfil.sys` of the root directory whose header's
//! first four bytes are `hibr` (`HIBR` on newer versions); once it has resumed, the header
//! says `wake` or is zeroed. A copy of a hibernated volume holds a session that Windows resumes
//! on boot.
//!
//! The file is found during the MFT walk ([`HiberProbe::visit`] for every visited attribute):
//! a `$FILE_NAME` named `hiberfil.sys` (any case) whose parent is the root directory, then the
//! first extent of that file's unnamed `$DATA`.
use super::attribute::{Attr, Form, AT_DATA, AT_FILE_NAME};
use super::le;
use super::runlist::Run;
use super::volume::extent_runs;
use super::walk::Visit;
use super::{inode, Volume};
use crate::dev::ReadAt;
use std::prelude::v1::*;

/// The file's name in the root directory.
pub const HIBERFIL_NAME: &str = "hiberfil.sys";

/// FILE_NAME value: parent directory reference (le64, record number in the low 48 bits).
const OFF_FN_PARENT: usize = 0x00;
/// FILE_NAME value: name length in UTF-16 units (u8).
const OFF_FN_NAME_LENGTH: usize = 0x40;
/// FILE_NAME value: the name (UTF-16LE).
const OFF_FN_NAME: usize = 0x42;
/// Attribute flags that change how the bytes are stored (compressed, encrypted).
const FLAGS_TRANSFORMED: u16 = 0x0001 | 0x4000;

/// True for a header that says Windows is hibernated.
pub fn is_hibernation_signature(head: &[u8]) -> bool {
    matches!(head, b"hibr" | b"HIBR")
}

/// Where the first bytes of `hiberfil.sys` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A resident value's first four bytes (fewer: padded with zeros).
    Resident([u8; 4]),
    /// The first cluster of a non-resident value.
    Cluster(u64),
    /// Reads as zeros (no initialised bytes, a hole, or stored transformed).
    None,
}

/// Collects what the walk shows of `hiberfil.sys`.
#[derive(Debug, Default, Clone)]
pub struct HiberProbe {
    inode: Option<u64>,
    start: Option<Start>,
}

/// True when a FILE_NAME value names `hiberfil.sys` in the root directory.
fn names_hiberfil(value: &[u8]) -> bool {
    let Some(parent) = le::u64(value, OFF_FN_PARENT) else {
        return false;
    };
    if parent & 0xffff_ffff_ffff != inode::ROOT {
        return false;
    }
    let Some(len) = le::u8(value, OFF_FN_NAME_LENGTH) else {
        return false;
    };
    let Some(name) = value.get(OFF_FN_NAME..OFF_FN_NAME.saturating_add(2 * usize::from(len)))
    else {
        return false;
    };
    name.len() == 2 * HIBERFIL_NAME.len()
        && name
            .chunks_exact(2)
            .zip(HIBERFIL_NAME.bytes())
            .all(|(u, c)| u.get(1) == Some(&0) && u.first().map(u8::to_ascii_lowercase) == Some(c))
}

impl HiberProbe {
    /// Looks at one attribute of the walk.
    pub fn visit(&mut self, vol: &Volume, v: &Visit) {
        if self.start.is_some() {
            return;
        }
        let a: &Attr = v.attr;
        if a.type_code == AT_FILE_NAME && self.inode.is_none() {
            if a.value().is_some_and(names_hiberfil) {
                self.inode = Some(v.inode);
            }
            return;
        }
        if a.type_code != AT_DATA
            || self.inode != Some(v.inode)
            || !a.name.is_empty()
            || a.lowest_vcn() != 0
        {
            return;
        }
        self.start = Some(if a.flags & FLAGS_TRANSFORMED != 0 {
            Start::None
        } else {
            match a.form {
                Form::Resident { value, .. } => {
                    let mut head = [0u8; 4];
                    for (d, s) in head.iter_mut().zip(value) {
                        *d = *s;
                    }
                    Start::Resident(head)
                }
                Form::NonResident {
                    initialized_size, ..
                } if initialized_size >= 4 => {
                    let mut runs: Vec<Run> = Vec::new();
                    match extent_runs(a, vol.boot.cluster_size, &mut runs) {
                        Ok(()) => match runs.first() {
                            Some(Run {
                                vcn: 0,
                                lcn: Some(lcn),
                                ..
                            }) => Start::Cluster(*lcn),
                            _ => Start::None,
                        },
                        Err(_) => Start::None,
                    }
                }
                Form::NonResident { .. } => Start::None,
            }
        });
    }

    /// The first four bytes of `hiberfil.sys`, if the walk found it (a read error: None).
    pub fn head<D: ReadAt + ?Sized>(&self, vol: &Volume, dev: &D) -> Option<[u8; 4]> {
        match self.start? {
            Start::Resident(h) => Some(h),
            Start::None => Some([0; 4]),
            Start::Cluster(lcn) => {
                if lcn >= vol.boot.nr_clusters {
                    return None;
                }
                let mut h = [0u8; 4];
                let off = lcn.checked_mul(u64::from(vol.boot.cluster_size))?;
                dev.read_exact_at(&mut h, off).ok()?;
                Some(h)
            }
        }
    }

    /// True when the walk found `hiberfil.sys` and its header says hibernated.
    pub fn is_hibernated<D: ReadAt + ?Sized>(&self, vol: &Volume, dev: &D) -> bool {
        self.head(vol, dev)
            .is_some_and(|h| is_hibernation_signature(&h))
    }
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn file_name(parent: u64, name: &str) -> Vec<u8> {
        let mut v = vec![0u8; OFF_FN_NAME];
        v[..8].copy_from_slice(&parent.to_le_bytes());
        v[OFF_FN_NAME_LENGTH] = name.len() as u8;
        for c in name.encode_utf16() {
            v.extend_from_slice(&c.to_le_bytes());
        }
        v
    }

    #[test]
    fn finds_hiberfil_in_the_root_only() {
        let seq = 5u64 << 48;
        assert!(names_hiberfil(&file_name(5, "hiberfil.sys")));
        assert!(names_hiberfil(&file_name(5 | seq, "HIBERFIL.SYS")));
        assert!(!names_hiberfil(&file_name(64, "hiberfil.sys")));
        assert!(!names_hiberfil(&file_name(5, "hiberfil.sy")));
        assert!(!names_hiberfil(&file_name(5, "pagefile.sys")));
        let mut short = file_name(5, "hiberfil.sys");
        short.truncate(OFF_FN_NAME + 10);
        assert!(!names_hiberfil(&short));
        assert!(!names_hiberfil(&[0u8; 8]));
    }

    #[test]
    fn signatures() {
        assert!(is_hibernation_signature(b"hibr"));
        assert!(is_hibernation_signature(b"HIBR"));
        assert!(!is_hibernation_signature(b"wake"));
        assert!(!is_hibernation_signature(&[0; 4]));
    }
}
