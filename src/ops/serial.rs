//! `--new-serial` / `--new-half-serial`: the new volume serial number of one run, written into
//! the boot sectors as they pass by ([`crate::ntfs::boot_sector::patch_serials`]).
use crate::dev::fd;
use crate::ntfs::boot_sector::{patch_serials, BackupBootSector};
use crate::options::Serial;

/// The new serial number of a run and the bits of the old one it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSerial {
    /// The new number; bits 31 and 63 are 0, as in the reference's (two 31-bit `random()`
    /// values).
    pub serial: u64,
    /// The bits replaced: all, or the upper 32 with `--new-half-serial`.
    pub mask: u64,
}

impl NewSerial {
    /// A new random serial number, if `serial` asks for one.
    pub fn draw(serial: Serial) -> Option<NewSerial> {
        let mask = serial.mask()?;
        Some(NewSerial {
            serial: fd::random_u64() & 0x7fff_ffff_7fff_ffff,
            mask,
        })
    }

    /// Sets the serial number in the boot sectors that `data` (volume bytes from byte
    /// `offset` on) holds. Returns true when the primary boot sector was among them.
    pub fn patch(self, data: &mut [u8], offset: u64, backup: Option<BackupBootSector>) -> bool {
        patch_serials(data, offset, self.serial, self.mask, backup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_serials_keep_bits_31_and_63_clear() {
        assert_eq!(NewSerial::draw(Serial::Keep), None);
        let s = NewSerial::draw(Serial::Half).unwrap();
        assert_eq!(s.mask, 0xffff_ffff_0000_0000);
        assert_eq!(s.serial & 0x8000_0000_8000_0000, 0);
        assert_eq!(NewSerial::draw(Serial::Full).unwrap().mask, u64::MAX);
    }
}
