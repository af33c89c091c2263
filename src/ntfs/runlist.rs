//! Mapping pairs (runlists): how a non-resident attribute's VCNs map to LCNs.
//!
//! From the published NTFS documentation: a sequence of runs, each a header byte whose low
//! nibble is the byte count of the run length and whose high nibble is the byte count of the
//! signed LCN delta (0 = sparse run, no clusters), terminated by a zero byte. Compressed
//! attributes use the same encoding: a compression unit is a real run followed by a sparse
//! run, so only real runs own clusters.

/// One run of an attribute extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First VCN of the run.
    pub vcn: u64,
    /// First LCN, or None for a sparse run (hole).
    pub lcn: Option<u64>,
    /// Length in clusters (> 0).
    pub len: u64,
}

/// A runlist that cannot be decoded (the reference: `ntfs_decompress_mapping_pairs`, EIO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunlistError {
    /// A header byte's nibbles are larger than 8, or the bytes run past the attribute.
    Truncated {
        /// Offset of the run's header byte in the mapping pairs.
        at: usize,
    },
    /// A run length is zero or negative.
    BadLength {
        /// Offset of the run's header byte in the mapping pairs.
        at: usize,
    },
    /// The LCN went below zero.
    NegativeLcn {
        /// Offset of the run's header byte in the mapping pairs.
        at: usize,
        /// The LCN reached.
        lcn: i64,
    },
    /// The VCN count overflowed.
    Overflow {
        /// Offset of the run's header byte in the mapping pairs.
        at: usize,
    },
    /// The runs do not end at `highest_vcn` + 1, or go beyond the allocated size.
    VcnMismatch {
        /// The VCN after the last run.
        end_vcn: i64,
        /// The attribute's `highest_vcn`.
        highest_vcn: i64,
    },
}

/// Decodes mapping pairs, starting at `lowest_vcn`.
#[derive(Debug, Clone)]
pub struct RunIter<'a> {
    mp: &'a [u8],
    pos: usize,
    vcn: i64,
    lcn: i64,
    done: bool,
}

impl<'a> RunIter<'a> {
    /// Runs of `mapping_pairs` for an extent starting at `lowest_vcn`.
    pub fn new(mapping_pairs: &'a [u8], lowest_vcn: i64) -> RunIter<'a> {
        RunIter {
            mp: mapping_pairs,
            pos: 0,
            vcn: lowest_vcn,
            lcn: 0,
            done: false,
        }
    }

    /// The VCN after the last run decoded so far.
    pub fn end_vcn(&self) -> i64 {
        self.vcn
    }

    fn signed(&self, start: usize, n: usize) -> Option<i64> {
        let b = self.mp.get(start..start.checked_add(n)?)?;
        let mut v: i64 = if b.last().is_some_and(|x| x & 0x80 != 0) {
            -1
        } else {
            0
        };
        for &x in b.iter().rev() {
            v = (v << 8) | x as i64;
        }
        Some(v)
    }

    fn step(&mut self) -> Result<Option<Run>, RunlistError> {
        let at = self.pos;
        let h = match self.mp.get(at) {
            Some(0) => return Ok(None),
            Some(&h) => h,
            None => return Err(RunlistError::Truncated { at }),
        };
        let (len_bytes, lcn_bytes) = ((h & 0xF) as usize, (h >> 4) as usize);
        if len_bytes == 0 || len_bytes > 8 || lcn_bytes > 8 {
            return Err(RunlistError::Truncated { at });
        }
        let len = self
            .signed(at + 1, len_bytes)
            .ok_or(RunlistError::Truncated { at })?;
        if len <= 0 {
            return Err(RunlistError::BadLength { at });
        }
        let lcn = if lcn_bytes == 0 {
            None
        } else {
            let delta = self
                .signed(at + 1 + len_bytes, lcn_bytes)
                .ok_or(RunlistError::Truncated { at })?;
            self.lcn = self
                .lcn
                .checked_add(delta)
                .ok_or(RunlistError::Overflow { at })?;
            if self.lcn < 0 {
                return Err(RunlistError::NegativeLcn { at, lcn: self.lcn });
            }
            Some(self.lcn.unsigned_abs())
        };
        self.pos = at + 1 + len_bytes + lcn_bytes;
        let vcn = self.vcn;
        self.vcn = vcn.checked_add(len).ok_or(RunlistError::Overflow { at })?;
        Ok(Some(Run {
            vcn: super::conv::bits_u64(vcn),
            lcn,
            len: len.unsigned_abs(),
        }))
    }
}

impl Iterator for RunIter<'_> {
    type Item = Result<Run, RunlistError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Decodes a whole extent and checks it against its header: the runs must end exactly at
/// `highest_vcn` + 1 and, for the first extent, not beyond the allocated size. Calls `f` for
/// each run. Returns the number of runs.
pub fn decode_extent(
    mapping_pairs: &[u8],
    lowest_vcn: i64,
    highest_vcn: i64,
    allocated_clusters: Option<i64>,
    mut f: impl FnMut(Run),
) -> Result<usize, RunlistError> {
    if lowest_vcn < 0 {
        return Err(RunlistError::VcnMismatch {
            end_vcn: lowest_vcn,
            highest_vcn,
        });
    }
    let mut it = RunIter::new(mapping_pairs, lowest_vcn);
    let mut n = 0;
    for r in it.by_ref() {
        f(r?);
        n += 1;
    }
    let end = it.end_vcn();
    // A zero highest_vcn is not checked (single-cluster attributes and old volumes).
    if highest_vcn != 0
        && (allocated_clusters.is_some_and(|alloc| highest_vcn > alloc.saturating_sub(1))
            || end - 1 != highest_vcn)
    {
        return Err(RunlistError::VcnMismatch {
            end_vcn: end,
            highest_vcn,
        });
    }
    Ok(n)
}

#[cfg(test)]
// Tests build their inputs by hand at fixed offsets: a panic there is a failed test.
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
mod tests {
    use super::*;
    use std::prelude::v1::*;

    fn runs(mp: &[u8], lowest: i64) -> Result<Vec<Run>, RunlistError> {
        RunIter::new(mp, lowest).collect()
    }
    fn r(vcn: u64, lcn: Option<u64>, len: u64) -> Run {
        Run { vcn, lcn, len }
    }

    #[test]
    fn decodes_real_sparse_and_negative_deltas() {
        // 0x21: 1 length byte, 2 LCN bytes. Then a sparse run, then a negative delta.
        let mp = [0x21, 0x10, 0x00, 0x01, 0x01, 0x08, 0x11, 0x04, 0xF0, 0x00];
        assert_eq!(
            runs(&mp, 0).unwrap(),
            vec![r(0, Some(256), 16), r(16, None, 8), r(24, Some(240), 4)]
        );
        // Compressed unit of 16: 5 real clusters then 11 sparse.
        let mp = [0x11, 0x05, 0x20, 0x01, 0x0B, 0x00];
        assert_eq!(
            runs(&mp, 32).unwrap(),
            vec![r(32, Some(32), 5), r(37, None, 11)]
        );
        // Empty runlist.
        assert_eq!(runs(&[0], 0).unwrap(), vec![]);
        // 8-byte LCN delta with the sign bit clear.
        let mp = [0x81, 1, 0, 0, 0, 0, 0, 0, 0, 0x01, 0];
        assert_eq!(runs(&mp, 0).unwrap(), vec![r(0, Some(1 << 56), 1)]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            runs(&[0x21, 0x10], 0),
            Err(RunlistError::Truncated { at: 0 })
        );
        assert_eq!(
            runs(&[0x11, 0x10, 0x10], 0).unwrap_err(),
            RunlistError::Truncated { at: 3 }
        );
        assert_eq!(runs(&[0x09, 0], 0), Err(RunlistError::Truncated { at: 0 }));
        assert_eq!(runs(&[0x90, 0], 0), Err(RunlistError::Truncated { at: 0 }));
        assert_eq!(
            runs(&[0x11, 0x00, 0x10, 0], 0),
            Err(RunlistError::BadLength { at: 0 })
        );
        assert_eq!(
            runs(&[0x11, 0xFF, 0x10, 0], 0),
            Err(RunlistError::BadLength { at: 0 })
        );
        assert_eq!(
            runs(&[0x11, 0x01, 0xF0, 0], 0),
            Err(RunlistError::NegativeLcn { at: 0, lcn: -16 })
        );
        let mp = [
            0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1, 0, 0, 0, 0, 0, 0, 0, 0x01, 1,
            1, 0,
        ];
        assert!(matches!(runs(&mp, 5), Err(RunlistError::Overflow { .. })));
    }

    #[test]
    fn extent_checks() {
        let mp = [0x11, 0x04, 0x10, 0];
        assert_eq!(decode_extent(&mp, 0, 3, Some(4), |_| {}), Ok(1));
        assert!(decode_extent(&mp, 0, 4, Some(8), |_| {}).is_err());
        assert!(decode_extent(&mp, 0, 3, Some(0), |_| {}).is_err());
        assert_eq!(
            decode_extent(&[0x11, 1, 5, 0], 0, 0, Some(0), |_| {}),
            Ok(1)
        );
        assert_eq!(decode_extent(&mp, 8, 11, None, |_| {}), Ok(1));
        assert!(decode_extent(&mp, -1, 3, None, |_| {}).is_err());
    }
}
