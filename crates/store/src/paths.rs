//! Every kind of path in the store is built here and nowhere else.

use std::fmt;

use auditlake_model::time::{Micros, date_hour, days_from_civil};
use object_store::path::Path;

/// A day partition: `date=YYYY-MM-DD` (UTC).
///
/// Days, not hours: a day of a busy cluster is one to a few files of tens or hundreds of MB, the
/// size object stores and Parquet readers are efficient with, and rows are sorted by `ts` inside
/// so that a question about one hour still reads only that hour's pages (row-group statistics and
/// the page index prune the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

const DAY_MICROS: i64 = 86_400_000_000;

impl Partition {
    /// The partition that holds events at `ts`.
    pub fn of(ts: Micros) -> Self {
        let (year, month, day, _) = date_hour(ts);
        Self { year, month, day }
    }

    /// The first microsecond of the partition.
    pub fn start(&self) -> Micros {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ) * DAY_MICROS
    }

    /// One past the last microsecond of the partition.
    pub fn end(&self) -> Micros {
        self.start() + DAY_MICROS
    }

    /// `YYYY-MM-DD`, the value of the `date` partition column.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// The partition's folder below the store root.
    pub fn path(&self, root: &Path) -> Path {
        root.clone().join(format!("date={}", self.date()))
    }

    /// Parses the `date=…` folder name of a partition.
    pub fn parse(date_part: &str) -> Option<Self> {
        let date = date_part.strip_prefix("date=")?;
        let mut it = date.splitn(3, '-');
        let year = it.next()?.parse().ok()?;
        let month = it.next()?.parse().ok()?;
        let day = it.next()?.parse().ok()?;
        let p = Self { year, month, day };
        // Rejects 2026-02-31 and friends: the date must survive a round trip.
        (Self::of(p.start()) == p).then_some(p)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date={}", self.date())
    }
}

/// Identifies one ingest (or compaction) run; sorts by time of start.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    pub fn new() -> Self {
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let rand = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("{now}-{}", &rand[..8]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A data file: `<root>/date=…/part-<run>-<seq>.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFilePath(Path);

impl DataFilePath {
    pub fn new(root: &Path, partition: &Partition, run: &RunId, seq: u32) -> Self {
        Self(
            partition
                .path(root)
                .join(format!("part-{run}-{seq:05}.parquet")),
        )
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Where a local data file is written before it is renamed into its partition.
pub fn staging_path(root: &Path, run: &RunId, seq: u32) -> Path {
    root.clone()
        .join("_staging")
        .join(format!("{run}-{seq:05}.parquet.tmp"))
}

/// The staging folder.
pub fn staging_dir(root: &Path) -> Path {
    root.clone().join("_staging")
}

/// A part of the rejected-events area: JSON lines, one per rejected input.
pub fn rejected_path(root: &Path, run: &RunId, seq: u32) -> Path {
    root.clone()
        .join("_rejected")
        .join(format!("{run}-{seq:05}.jsonl"))
}

/// The rejected-events folder.
pub fn rejected_dir(root: &Path) -> Path {
    root.clone().join("_rejected")
}

/// The commit log: one record per rewrite (compaction, slimming), see [`crate::commit`].
pub fn commits_dir(root: &Path) -> Path {
    root.clone().join("_commits")
}

/// The commit record of one rewrite of a run, named after its first output `seq`.
pub fn commit_path(root: &Path, run: &RunId, seq: u32) -> Path {
    commits_dir(root).join(format!("{run}-{seq:05}.json"))
}

/// The lock that one maintenance run (compact, retain) at a time holds.
pub fn lock_path(root: &Path) -> Path {
    root.clone().join("_maintenance.lock")
}

/// A path below the root as the root-relative text kept in commit records.
pub fn relative(root: &Path, path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .prefix_match(root)?
        .map(|p| p.as_ref().to_owned())
        .collect();
    Some(parts.join("/"))
}

/// The path of a root-relative text of a commit record.
pub fn from_relative(root: &Path, rel: &str) -> Path {
    rel.split('/')
        .filter(|p| !p.is_empty())
        .fold(root.clone(), |acc, part| acc.join(part))
}

/// Whether a path below the root is a data file, and of which partition.
pub fn parse_data_file(root: &Path, path: &Path) -> Option<Partition> {
    let mut parts = path.prefix_match(root)?;
    let date = parts.next()?;
    let file = parts.next()?;
    if parts.next().is_some()
        || !file.as_ref().ends_with(".parquet")
        || file.as_ref().starts_with(['_', '.'])
    {
        return None;
    }
    Partition::parse(date.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths() {
        let ts = auditlake_model::time::parse_canonical("2026-03-19T10:30:00.000000Z").unwrap();
        let p = Partition::of(ts);
        assert_eq!(p.to_string(), "date=2026-03-19");
        assert_eq!(Partition::parse("date=2026-02-31"), None);
        assert_eq!(Partition::parse("date=2024-02-29").map(|p| p.day), Some(29));
        assert!(p.start() <= ts && ts < p.end());
        let root = Path::from("data/store");
        let run = RunId::new();
        let f = DataFilePath::new(&root, &p, &run, 3);
        assert_eq!(parse_data_file(&root, f.path()), Some(p));
        assert_eq!(parse_data_file(&root, &staging_path(&root, &run, 3)), None);
        assert_eq!(parse_data_file(&root, &rejected_path(&root, &run, 0)), None);
        let rel = relative(&root, f.path()).unwrap();
        assert!(rel.starts_with("date=2026-03-19/part-"), "{rel}");
        assert_eq!(&from_relative(&root, &rel), f.path());
    }
}
