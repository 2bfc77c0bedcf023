//! Every kind of path in the store is built here and nowhere else.

use std::fmt;

use auditlake_model::time::{Micros, date_hour, days_from_civil};
use object_store::path::Path;

/// An hour partition: `date=YYYY-MM-DD/hour=HH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
}

impl Partition {
    /// The partition that holds events at `ts`.
    pub fn of(ts: Micros) -> Self {
        let (year, month, day, hour) = date_hour(ts);
        Self {
            year,
            month,
            day,
            hour,
        }
    }

    /// The first microsecond of the partition.
    pub fn start(&self) -> Micros {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        (days * 24 + i64::from(self.hour)) * 3_600_000_000
    }

    /// One past the last microsecond of the partition.
    pub fn end(&self) -> Micros {
        self.start() + 3_600_000_000
    }

    /// `YYYY-MM-DD`, the value of the `date` partition column.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// The partition's folder below the store root.
    pub fn path(&self, root: &Path) -> Path {
        root.clone()
            .join(format!("date={}", self.date()))
            .join(format!("hour={:02}", self.hour))
    }

    /// Parses the `date=…/hour=…` part of a path below the root.
    pub fn parse(date_part: &str, hour_part: &str) -> Option<Self> {
        let date = date_part.strip_prefix("date=")?;
        let hour: u32 = hour_part.strip_prefix("hour=")?.parse().ok()?;
        let mut it = date.splitn(3, '-');
        let year = it.next()?.parse().ok()?;
        let month = it.next()?.parse().ok()?;
        let day = it.next()?.parse().ok()?;
        (hour < 24 && (1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Self {
            year,
            month,
            day,
            hour,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date={}/hour={:02}", self.date(), self.hour)
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

/// A data file: `<root>/date=…/hour=…/part-<run>-<seq>.parquet`.
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

/// Whether a path below the root is a data file, and of which partition.
pub fn parse_data_file(root: &Path, path: &Path) -> Option<Partition> {
    let mut parts = path.prefix_match(root)?;
    let date = parts.next()?;
    let hour = parts.next()?;
    let file = parts.next()?;
    if parts.next().is_some()
        || !file.as_ref().ends_with(".parquet")
        || file.as_ref().starts_with(['_', '.'])
    {
        return None;
    }
    Partition::parse(date.as_ref(), hour.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths() {
        let ts = auditlake_model::time::parse_canonical("2026-03-19T10:30:00.000000Z").unwrap();
        let p = Partition::of(ts);
        assert_eq!(p.to_string(), "date=2026-03-19/hour=10");
        assert!(p.start() <= ts && ts < p.end());
        let root = Path::from("data/store");
        let run = RunId::new();
        let f = DataFilePath::new(&root, &p, &run, 3);
        assert_eq!(parse_data_file(&root, f.path()), Some(p));
        assert_eq!(parse_data_file(&root, &staging_path(&root, &run, 3)), None);
        assert_eq!(parse_data_file(&root, &rejected_path(&root, &run, 0)), None);
    }
}
