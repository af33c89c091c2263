//! The copy plan: used-cluster runs cut into chunks and merged, and the [`Step`]s of a save
//! (image records, with the reference's gap rule) or of a raw clone.
use crate::used::UsedMap;

/// Bytes moved per read/write in the copy loops (raised to one cluster for 2 MiB clusters, and
/// kept a multiple of the cluster size).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Clusters per chunk for a cluster size.
pub fn chunk_clusters(cluster_size: u32) -> u64 {
    (CHUNK_BYTES as u64 / u64::from(cluster_size)).max(1)
}

/// Cuts runs `(lcn, count)` (increasing LCN) to LCNs below `limit` and into pieces of at most
/// `max` clusters.
pub fn chunks(
    runs: impl Iterator<Item = (u64, u64)>,
    limit: u64,
    max: u64,
) -> impl Iterator<Item = (u64, u64)> {
    runs.filter_map(move |(lcn, count)| {
        let end = lcn.saturating_add(count).min(limit);
        (lcn < end).then_some((lcn, end))
    })
    .flat_map(move |(lcn, end)| {
        let max = max.max(1);
        let n = (end - lcn).div_ceil(max);
        (0..n).map(move |i| {
            let s = lcn + i * max;
            (s, (end - s).min(max))
        })
    })
}

/// Merges two increasing run lists into one increasing list of maximal runs (their union).
pub fn merge_runs(
    a: impl Iterator<Item = (u64, u64)>,
    b: impl Iterator<Item = (u64, u64)>,
) -> impl Iterator<Item = (u64, u64)> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    let mut cur: Option<(u64, u64)> = None; // (start, end)
    core::iter::from_fn(move || loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if x.0 <= y.0 {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return cur.take().map(|(s, e)| (s, e - s)),
        };
        let Some((lcn, count)) = next else { continue };
        let end = lcn.saturating_add(count);
        match cur {
            Some((s, e)) if lcn <= e => cur = Some((s, e.max(end))),
            Some((s, e)) => {
                cur = Some((lcn, end));
                return Some((s, e - s));
            }
            None => cur = Some((lcn, end)),
        }
    })
}

/// One step of a copy plan, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `CMD_GAP count` (image streams only; raw copies skip it).
    Gap(i64),
    /// Clusters `lcn .. lcn + n`; `counted` ones advance the progress bar.
    Clusters {
        /// First cluster.
        lcn: u64,
        /// Number of clusters.
        n: u64,
        /// Counted for progress.
        counted: bool,
    },
    /// One record of `len` bytes for cluster `lcn` (the backup boot sector position, which may
    /// be a partial cluster). Counted for progress.
    Tail {
        /// The cluster position.
        lcn: u64,
        /// Bytes (0 ..= cluster size).
        len: usize,
    },
}

/// The record plan of `-s` (spec §1.3), byte-identical to the reference's stream: with
/// `extra` (`--rescue --ignore-fs-check`), the extra clusters first at their positions and a
/// negative gap back to 0; then the used clusters below `nr_clusters` with the reference's gap
/// rule (`cl − last_cl − 1`, `last_cl` starting at 0); then the record of position
/// `nr_clusters` (`tail_len` bytes: the backup boot sector, possibly a partial cluster).
pub fn save_steps<'a>(
    used: &'a UsedMap,
    extra: Option<&'a UsedMap>,
    nr_clusters: u64,
    tail_len: usize,
) -> impl Iterator<Item = Step> + Send + 'a {
    let nr = nr_clusters;
    let runs = move |m: &'a UsedMap| chunks(m.runs(), nr, u64::MAX);
    let extra_steps = extra.into_iter().flat_map(move |m| {
        let mut cur = 0u64;
        let rewind = runs(m).last().map(|(lcn, n)| lcn + n).unwrap_or(0);
        runs(m)
            .flat_map(move |(lcn, n)| {
                let gap = (lcn > cur).then(|| Step::Gap((lcn - cur) as i64));
                cur = lcn + n;
                let clusters = Step::Clusters {
                    lcn,
                    n,
                    counted: false,
                };
                gap.into_iter().chain(core::iter::once(clusters))
            })
            .chain((rewind > 0).then(|| Step::Gap(-(rewind as i64))))
    });
    let gap =
        |cl: u64, last_cl: u64| (cl > last_cl + 1).then(|| Step::Gap((cl - last_cl - 1) as i64));
    let mut last_cl = 0u64;
    let used_steps = runs(used).flat_map(move |(lcn, n)| {
        let g = gap(lcn, last_cl);
        last_cl = lcn + n - 1;
        let clusters = Step::Clusters {
            lcn,
            n,
            counted: true,
        };
        g.into_iter().chain(core::iter::once(clusters))
    });
    let last_used = runs(used).last().map(|(lcn, n)| lcn + n - 1).unwrap_or(0);
    let tail = gap(nr, last_used)
        .into_iter()
        .chain(core::iter::once(Step::Tail {
            lcn: nr,
            len: tail_len,
        }));
    extra_steps.chain(used_steps).chain(tail)
}

/// The plan of a raw clone from cluster `from` on: the runs below `nr_clusters` as counted
/// clusters, then position `nr_clusters` (`tail_len` bytes).
pub fn raw_steps(
    runs: impl Iterator<Item = (u64, u64)> + Send,
    from: u64,
    nr_clusters: u64,
    tail_len: usize,
) -> impl Iterator<Item = Step> + Send {
    chunks(runs, nr_clusters, u64::MAX)
        .filter_map(move |(lcn, n)| {
            let end = lcn + n;
            let lcn = lcn.max(from);
            (lcn < end).then(|| Step::Clusters {
                lcn,
                n: end - lcn,
                counted: true,
            })
        })
        .chain(core::iter::once(Step::Tail {
            lcn: nr_clusters,
            len: tail_len,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::v1::*;

    #[test]
    fn chunking() {
        let runs = [(0u64, 5u64), (10, 3), (20, 10)];
        let v: Vec<_> = chunks(runs.iter().copied(), 25, 4).collect();
        assert_eq!(v, [(0, 4), (4, 1), (10, 3), (20, 4), (24, 1)]);
        let v: Vec<_> = chunks(runs.iter().copied(), 3, 100).collect();
        assert_eq!(v, [(0, 3)]);
    }

    #[test]
    fn merging() {
        let a = [(0u64, 2u64), (5, 2), (20, 1)];
        let b = [(1u64, 2u64), (7, 1), (10, 3)];
        let v: Vec<_> = merge_runs(a.iter().copied(), b.iter().copied()).collect();
        assert_eq!(v, [(0, 3), (5, 3), (10, 3), (20, 1)]);
        let v: Vec<_> = merge_runs(core::iter::empty(), b.iter().copied()).collect();
        assert_eq!(v, b);
    }

    #[test]
    fn save_plan_uses_the_reference_gap_rule() {
        let mut used = UsedMap::new(24);
        used.set_range(0, 2, true);
        used.set_range(5, 1, true);
        used.set_range(9, 3, true);
        used.set_range(16, 8, true); // bits from nr_clusters on are preset, never copied as runs
        let v: Vec<_> = save_steps(&used, None, 16, 100).collect();
        let c = |lcn, n| Step::Clusters {
            lcn,
            n,
            counted: true,
        };
        assert_eq!(
            v,
            [
                c(0, 2),
                Step::Gap(3),
                c(5, 1),
                Step::Gap(3),
                c(9, 3),
                Step::Gap(4),
                Step::Tail { lcn: 16, len: 100 }
            ]
        );
        let mut extra = UsedMap::new(24);
        extra.set_range(3, 1, true);
        extra.set_range(7, 2, true);
        let v: Vec<_> = save_steps(&used, Some(&extra), 16, 0).take(6).collect();
        let x = |lcn, n| Step::Clusters {
            lcn,
            n,
            counted: false,
        };
        assert_eq!(
            v,
            [
                Step::Gap(3),
                x(3, 1),
                Step::Gap(3),
                x(7, 2),
                Step::Gap(-9),
                c(0, 2)
            ]
        );
        let v: Vec<_> = raw_steps(used.runs(), 10, 16, 7).collect();
        assert_eq!(v, [c(10, 2), Step::Tail { lcn: 16, len: 7 }]);
    }
}
