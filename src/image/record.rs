//! The records of an image stream, and the only place that encodes them: `CMD_GAP` + a signed
//! 64-bit little-endian cluster count, `CMD_NEXT` + the bytes of one cluster. [`super::Writer`]
//! appends them to its buffer; the copy pipeline builds them in place in its blocks (the
//! cluster bytes read straight into the records). No allocation and no system call here.

/// `CMD_GAP`: followed by a signed 64-bit little-endian cluster count.
pub const CMD_GAP: u8 = 0;
/// `CMD_NEXT`: followed by the bytes of one cluster.
pub const CMD_NEXT: u8 = 1;

/// Bytes of a gap record.
pub const GAP_BYTES: usize = 9;

/// The gap record `CMD_GAP count` (count may be negative: the position moves back).
#[inline]
pub fn gap(count: i64) -> [u8; GAP_BYTES] {
    let c = count.to_le_bytes();
    [CMD_GAP, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// Bytes of a cluster record holding `data_len` bytes of cluster data.
#[inline]
pub const fn cluster_record_len(data_len: usize) -> usize {
    data_len.saturating_add(1)
}

/// The head of a cluster record, before its data.
pub const CLUSTER_HEAD: [u8; 1] = [CMD_NEXT];

/// Makes `record` (of [`cluster_record_len`] bytes) a cluster record: writes its head and
/// returns the place of the cluster's bytes, for the caller to fill. An empty `record` stays
/// empty (no room for a head).
#[inline]
pub fn cluster_record(record: &mut [u8]) -> &mut [u8] {
    match record.split_first_mut() {
        Some((head, data)) => {
            *head = CMD_NEXT;
            data
        }
        None => &mut [],
    }
}

/// Cuts `records` into cluster records of `cluster_size` bytes of data each (a trailing piece
/// too short for a record is left alone), writes their heads and yields the places of their
/// cluster bytes, in order.
#[inline]
pub fn cluster_records(records: &mut [u8], cluster_size: usize) -> impl Iterator<Item = &mut [u8]> {
    records
        .chunks_exact_mut(cluster_record_len(cluster_size))
        .map(cluster_record)
}

#[cfg(test)]
mod tests {
    // Tests index their own fixed inputs: a panic is a failed test.
    #![allow(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )]
    use super::*;

    #[test]
    fn records_are_the_stream_bytes() {
        assert_eq!(gap(2), [0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(gap(-5), [0, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let mut buf = [9u8; 11];
        for (i, data) in cluster_records(&mut buf, 4).enumerate() {
            data.fill(i as u8 + 5);
        }
        assert_eq!(buf, [1, 5, 5, 5, 5, 1, 6, 6, 6, 6, 9]);
        let mut one = [9u8; 1];
        assert!(cluster_record(&mut one).is_empty());
        assert_eq!(one, [CMD_NEXT]);
        assert!(cluster_record(&mut []).is_empty());
    }
}
