//! The transaction log: the store is a Delta Lake table, and this module is the one writer of it.
//!
//! Every change is one commit: a JSON entry `_delta_log/<version>.json` created with a
//! create-only PUT (`PutMode::Create`: `If-None-Match: *` on S3, a hard link on a local disk), so
//! that of two writers of the same version one wins and the other learns of the conflict. The
//! entries are written here, byte for byte, as the Delta protocol (reader 1, writer 2) describes
//! them; delta-rs (`deltalake-core`) replays the log for readers (checkpoints, time travel) and
//! writes the checkpoints.
//!
//! A data file is written to its final path (`date=…/part-<run>-<seq>.parquet`) before the commit
//! that adds it: until then no Delta reader sees it, and if the writer dies it stays an orphan that
//! [`Store::vacuum`] deletes once the grace period has passed. Files a commit removes stay on disk
//! for the same grace period, for readers still holding an older snapshot.
//!
//! Writers resolve their own conflicts (see [`Store::try_commit`]): an ingest checks the appends
//! committed since its read version for events it is about to add; a rewrite (compaction,
//! slimming, retention) gives up when a file it replaces was removed meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, TimeUnit};
use auditlake_model::time::Micros;
use bytes::Bytes;
use delta_kernel::expressions::Scalar;
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::table::state::DeltaTableState;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::paths::{self, Partition};
use crate::store::DataFile;
use crate::{Error, Result, Store};

pub use deltalake_core::kernel::Version;

/// Checkpoints are written every this many commits, so that loading a snapshot reads one
/// Parquet checkpoint and at most this many JSON entries.
pub const CHECKPOINT_INTERVAL: u64 = 100;

/// How long files removed by a commit (and orphans of writers that died) are kept before
/// [`Store::vacuum`] deletes them, by default.
pub const DEFAULT_VACUUM_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The folder of the log, below the store root.
pub const LOG_DIR: &str = "_delta_log";

/// What a commit did; recorded in its `commitInfo` under `auditlake.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitKind {
    /// The table's first entry (protocol, metadata), with the files of a store migrated from the
    /// layout before the log.
    Create,
    Ingest,
    Compact,
    Slim,
    Retain,
    /// Columns added to the table's schema (a metaData action), for a store created by an
    /// older auditlake.
    Schema,
}

impl CommitKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Ingest => "ingest",
            Self::Compact => "compact",
            Self::Slim => "slim",
            Self::Retain => "retain",
            Self::Schema => "schema",
        }
    }

    /// The Delta operation other engines show in the table's history.
    fn operation(self) -> &'static str {
        match self {
            Self::Create => "CREATE TABLE",
            Self::Ingest => "WRITE",
            Self::Compact => "OPTIMIZE",
            Self::Slim => "UPDATE",
            Self::Retain => "DELETE",
            Self::Schema => "ADD COLUMNS",
        }
    }
}

/// A data file written to its final path, for a commit to add.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: Path,
    pub partition: Partition,
    pub size: u64,
    pub rows: u64,
    /// The smallest and largest `ts` of the file.
    pub ts_range: (Micros, Micros),
    /// SHA-256 of the file's bytes, in hex (for the commit's digest).
    pub sha256: String,
}

impl NewFile {
    /// The file as the table lists it once a commit added it.
    pub fn data_file(&self) -> DataFile {
        DataFile {
            partition: self.partition,
            meta: ObjectMeta {
                location: self.path.clone(),
                last_modified: chrono::Utc::now(),
                size: self.size,
                e_tag: None,
                version: None,
            },
            rows: Some(self.rows),
            ts_range: Some(self.ts_range),
        }
    }
}

/// One change to the table.
#[derive(Debug, Clone)]
pub struct Commit {
    pub kind: CommitKind,
    /// Why, in a few words (`3 small files merged`, `older than 90d`).
    pub reason: String,
    /// The run (process) that made it.
    pub run: String,
    pub add: Vec<NewFile>,
    pub remove: Vec<DataFile>,
    /// The table's metadata (a `metaData` action's body) when the commit sets it: the first
    /// commit's is made from the code's schema unless given here.
    pub metadata: Option<Value>,
}

impl Commit {
    pub fn new(kind: CommitKind, run: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            run: run.into(),
            add: Vec::new(),
            remove: Vec::new(),
            metadata: None,
        }
    }

    /// Whether the commit changes what the table holds (appends, deletes, slimming), or only how
    /// it is laid out (compaction).
    fn data_change(&self) -> bool {
        self.kind != CommitKind::Compact
    }
}

/// Which state of the table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(Version),
    /// The last version committed at or before this time.
    Time(Micros),
}

impl AsOf {
    pub fn describe(&self) -> String {
        match self {
            Self::Version(v) => format!("version {v}"),
            Self::Time(t) => auditlake_model::time::format_canonical(*t),
        }
    }
}

/// The table as of one version: its live data files, with what the log says about each.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// None for a store that has no log yet (empty, or in the layout before the log).
    pub version: Option<Version>,
    /// When that version was committed.
    pub committed_at: Option<Micros>,
    pub files: Arc<Vec<DataFile>>,
}

impl Snapshot {
    /// The files of partitions overlapping `[from, to)` (and, where the log has statistics, whose
    /// `ts` range overlaps it).
    pub fn files_in(&self, range: Option<(Micros, Micros)>) -> Vec<DataFile> {
        self.files
            .iter()
            .filter(|f| range.is_none_or(|r| f.overlaps(r)))
            .cloned()
            .collect()
    }
}

/// A committed entry of the log, as conflict resolution and verification read it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub version: Version,
    pub kind: Option<CommitKind>,
    /// Files added, and whether each changes the data (appends) or not (compaction outputs).
    pub add: Vec<(DataFile, bool)>,
    /// Root-relative paths removed.
    pub remove: Vec<Path>,
}

/// What [`Store::vacuum`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct VacuumSummary {
    pub deleted_files: usize,
    pub deleted_bytes: u64,
    /// Files no longer live but younger than the grace period, kept for now.
    pub kept_for_grace: usize,
}

/// What `_delta_log/_last_checkpoint` names, as the direct snapshot reader takes it.
enum LastCheckpoint {
    None,
    /// A checkpoint in several files (or a V2 one): left to delta-rs.
    InParts,
    Files(Version, Vec<DataFile>),
}

/// A snapshot kept by a [`Store`] and brought up to date on each read, so that a session reads
/// only the log entries committed since its last query.
#[derive(Default)]
pub(crate) struct SnapshotCache(tokio::sync::Mutex<Option<Snapshot>>);

impl std::fmt::Debug for SnapshotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCache")
    }
}

/// Aborts the process at a named step when `AUDITLAKE_FAILPOINT` names it: how the tests kill a
/// writer between its steps.
pub fn failpoint(name: &str) {
    if std::env::var("AUDITLAKE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Holds the process at a named step when `AUDITLAKE_HOLD` names it: creates the file
/// `$AUDITLAKE_HOLD_FILE.held`, then waits (at most 120 s) until `$AUDITLAKE_HOLD_FILE` exists.
/// How the tests make two writers race at an exact point: one is held before its commit while
/// the other commits.
pub fn hold_point(name: &str) {
    if !std::env::var("AUDITLAKE_HOLD").is_ok_and(|v| v == name) {
        return;
    }
    let Ok(file) = std::env::var("AUDITLAKE_HOLD_FILE") else {
        return;
    };
    let _ = std::fs::write(format!("{file}.held"), name);
    let start = std::time::Instant::now();
    while !std::path::Path::new(&file).exists() && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A timestamp as Delta statistics spell it: ISO 8601, milliseconds, UTC. The maximum is
/// truncated too; readers round maxima up to the next millisecond.
fn stats_time(us: Micros) -> String {
    chrono::DateTime::from_timestamp_micros(us.div_euclid(1000) * 1000)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The metadata of a new table: the code's schema, partitioned by day.
fn new_table_metadata(now: i64) -> Result<Value> {
    let schema = delta_schema(
        &auditlake_model::audit_events_schema(),
        &auditlake_model::schema::PARTITION_COLUMNS,
    )?;
    Ok(json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "name": "audit_events",
        "format": {"provider": "parquet", "options": {}},
        "schemaString": schema,
        "partitionColumns": auditlake_model::schema::PARTITION_COLUMNS,
        "configuration": {
            "delta.checkpointInterval": CHECKPOINT_INTERVAL.to_string(),
            // The log is the audit trail of the store itself: never expire it.
            "delta.enableExpiredLogCleanup": "false",
            "delta.dataSkippingStatsColumns": auditlake_model::schema::col::TS,
        },
        "createdTime": now,
    }))
}

/// The Delta schema (`schemaString`) of an Arrow schema of the store's column types.
fn delta_type(dt: &DataType) -> Result<Value> {
    Ok(match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Int32 => json!("integer"),
        DataType::Int64 => json!("long"),
        DataType::Boolean => json!("boolean"),
        DataType::Float64 => json!("double"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => json!("timestamp"),
        DataType::List(item) => json!({
            "type": "array",
            "elementType": delta_type(item.data_type())?,
            "containsNull": item.is_nullable(),
        }),
        other => {
            return Err(Error::Log {
                path: LOG_DIR.into(),
                reason: format!("no Delta type for column type {other}"),
            });
        }
    })
}

fn delta_schema(schema: &Schema, partition_columns: &[&str]) -> Result<String> {
    let mut fields = Vec::new();
    for f in schema.fields() {
        fields.push(json!({
            "name": f.name(),
            "type": delta_type(f.data_type())?,
            "nullable": f.is_nullable(),
            "metadata": {},
        }));
    }
    for c in partition_columns {
        fields.push(json!({"name": c, "type": "string", "nullable": false, "metadata": {}}));
    }
    Ok(json!({"type": "struct", "fields": fields}).to_string())
}

/// The add and remove actions of a log entry, as this module reads them back.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddAction {
    path: String,
    #[serde(default)]
    partition_values: HashMap<String, Option<String>>,
    size: i64,
    modification_time: i64,
    data_change: bool,
    #[serde(default)]
    stats: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoveAction {
    path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileStats {
    num_records: Option<u64>,
    #[serde(default)]
    min_values: HashMap<String, Value>,
    #[serde(default)]
    max_values: HashMap<String, Value>,
}

fn parse_stats_time(v: Option<&Value>) -> Option<Micros> {
    let t = chrono::DateTime::parse_from_rfc3339(v?.as_str()?).ok()?;
    Some(t.timestamp_micros())
}

/// Delta paths are relative URIs: percent-decoded here into the object store's path.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Store {
    /// The delta-rs log store over this store's object store.
    pub(crate) fn log_store(&self) -> LogStoreRef {
        let prefixed = Arc::new(PrefixStore::new(self.object_store(), self.root.clone()));
        default_logstore(
            prefixed,
            self.object_store(),
            &self.url(),
            &StorageConfig::default(),
        )
    }

    fn log_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Log {
            path: self.display_path(&paths::from_relative(&self.root, LOG_DIR)),
            reason: e.to_string(),
        }
    }

    fn entry_path(&self, version: Version) -> Path {
        paths::from_relative(&self.root, &format!("{LOG_DIR}/{version:020}.json"))
    }

    /// The latest version of the table, or None when the store has no log yet. Lists the log
    /// only after the newest version known: the cached snapshot's, else the last checkpoint's
    /// (`_delta_log/_last_checkpoint`), so that the cost does not grow with the history.
    pub async fn latest_version(&self) -> Result<Option<Version>> {
        let cached = self
            .snapshots
            .0
            .lock()
            .await
            .as_ref()
            .and_then(|s| s.version);
        let known = match cached {
            Some(v) => Some(v),
            None => self.last_checkpoint().await?,
        };
        let dir = paths::from_relative(&self.root, LOG_DIR);
        let mut latest = known;
        let mut stream = match known {
            Some(v) => self
                .object_store
                .list_with_offset(Some(&dir), &self.entry_path(v)),
            None => self.object_store.list(Some(&dir)),
        };
        while let Some(meta) = stream.try_next().await.map_err(|e| self.err(e))? {
            let name = meta.location.filename().unwrap_or_default();
            let version = name
                .strip_suffix(".json")
                .filter(|v| v.len() == 20)
                .and_then(|v| v.parse::<Version>().ok());
            if let Some(v) = version {
                latest = Some(latest.map_or(v, |l| l.max(v)));
            }
        }
        Ok(latest)
    }

    /// The version of the last checkpoint, from `_delta_log/_last_checkpoint`.
    async fn last_checkpoint(&self) -> Result<Option<Version>> {
        let path = paths::from_relative(&self.root, &format!("{LOG_DIR}/_last_checkpoint"));
        match self.get_bytes(&path).await {
            Ok(b) => Ok(serde_json::from_slice::<Value>(&b)
                .ok()
                .and_then(|v| v["version"].as_u64())),
            Err(Error::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The table's files as of `as_of` (the latest version when None). A store without a log
    /// (empty, or written before the log existed) is read from its folders.
    pub async fn snapshot(&self, as_of: Option<AsOf>) -> Result<Snapshot> {
        let Some(latest) = self.latest_version().await? else {
            if let Some(a) = as_of {
                return Err(Error::AsOf(format!(
                    "{}: the store has no transaction log yet, so no history",
                    a.describe()
                )));
            }
            let files = self.legacy_files(None, None).await?;
            return Ok(Snapshot {
                version: None,
                committed_at: None,
                files: Arc::new(files),
            });
        };
        let log_store = self.log_store();
        match as_of {
            None => {
                let mut cache = self.snapshots.0.lock().await;
                if let Some(snap) = cache.as_ref()
                    && snap.version == Some(latest)
                {
                    return Ok(snap.clone());
                }
                let snap = match self.load_latest(latest, cache.as_ref()).await? {
                    Some(s) => s,
                    // A checkpoint in parts (or newer than the entries): delta-rs reads it.
                    None => {
                        let state = DeltaTableState::try_new(log_store.as_ref(), Some(latest))
                            .await
                            .map_err(|e| self.log_err(e))?;
                        self.snapshot_of(&state)?
                    }
                };
                *cache = Some(snap.clone());
                Ok(snap)
            }
            Some(a) => {
                let v = self.resolve_as_of(a).await?;
                let state = DeltaTableState::try_new(log_store.as_ref(), Some(v))
                    .await
                    .map_err(|e| self.log_err(e))?;
                self.snapshot_of(&state)
            }
        }
    }

    /// The version an `as of` names: checked to exist, a time resolved to the last version
    /// committed at or before it.
    pub async fn resolve_as_of(&self, as_of: AsOf) -> Result<Version> {
        let Some(latest) = self.latest_version().await? else {
            return Err(Error::AsOf(format!(
                "{}: the store has no transaction log yet, so no history",
                as_of.describe()
            )));
        };
        match as_of {
            AsOf::Version(v) if v > latest => Err(Error::AsOf(format!(
                "version {v} is not committed yet; the latest is {latest}"
            ))),
            AsOf::Version(v) => Ok(v),
            AsOf::Time(t) => self.version_at(t, latest).await,
        }
    }

    /// The last version committed at or before `t`: the commit times are those the entries
    /// record (`commitInfo.timestamp`), which a writer takes from its clock.
    async fn version_at(&self, t: Micros, latest: Version) -> Result<Version> {
        let (mut lo, mut hi) = (0u64, latest);
        let first = self.commit_time(0).await?;
        if first.is_none_or(|c| c > t) {
            return Err(Error::AsOf(format!(
                "{}: the store's history starts later{}",
                auditlake_model::time::format_canonical(t),
                first.map_or(String::new(), |c| format!(
                    ", at {}",
                    auditlake_model::time::format_canonical(c)
                ))
            )));
        }
        // Binary search on the (non-decreasing, as each writer reads the latest version first)
        // commit times.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match self.commit_time(mid).await? {
                Some(c) if c <= t => lo = mid,
                _ => hi = mid - 1,
            }
        }
        Ok(lo)
    }

    /// When a version was committed, from its entry.
    pub async fn commit_time(&self, version: Version) -> Result<Option<Micros>> {
        let Some(bytes) = self.read_entry(version).await? else {
            return Ok(None);
        };
        for line in bytes.split(|b| *b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<Value>(line)
                && let Some(ts) = v["commitInfo"]["timestamp"].as_i64()
            {
                return Ok(Some(ts * 1000));
            }
        }
        Ok(None)
    }

    async fn read_entry(&self, version: Version) -> Result<Option<Bytes>> {
        match self.get_bytes(&self.entry_path(version)).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn snapshot_of(&self, state: &DeltaTableState) -> Result<Snapshot> {
        let mut files = Vec::new();
        for f in state.log_data().iter() {
            let rel = f.path();
            let location = paths::from_relative(&self.root, &rel);
            let date = f
                .partition_values_map()
                .get("date")
                .cloned()
                .flatten()
                .unwrap_or_default();
            let partition =
                Partition::parse(&format!("date={date}")).ok_or_else(|| Error::Log {
                    path: self.display_path(&location),
                    reason: format!("the log gives it a bad partition date {date:?}"),
                })?;
            let ts = |s: Option<Scalar>| match s {
                Some(Scalar::Struct(data)) => data
                    .fields()
                    .iter()
                    .zip(data.values())
                    .find(|(f, _)| f.name() == auditlake_model::schema::col::TS)
                    .and_then(|(_, v)| match v {
                        Scalar::Timestamp(us) => Some(*us),
                        _ => None,
                    }),
                _ => None,
            };
            let ts_range = ts(f.min_values()).zip(ts(f.max_values()));
            files.push(DataFile {
                partition,
                meta: ObjectMeta {
                    location,
                    last_modified: chrono::DateTime::from_timestamp_millis(f.modification_time())
                        .unwrap_or_default(),
                    size: f.size().max(0) as u64,
                    e_tag: None,
                    version: None,
                },
                rows: f.num_records().map(|n| n as u64),
                ts_range,
            });
        }
        files.sort_by(|a, b| (a.partition, &a.meta.location).cmp(&(b.partition, &b.meta.location)));
        let version = state.version();
        Ok(Snapshot {
            version: Some(version),
            committed_at: state.version_timestamp(version).map(|ms| ms * 1000),
            files: Arc::new(files),
        })
    }

    /// The entries committed after `after`, in order, up to the latest.
    pub async fn entries_after(&self, after: Version) -> Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        let mut v = after + 1;
        while let Some(bytes) = self.read_entry(v).await? {
            out.push(self.parse_entry(v, &bytes)?);
            v += 1;
        }
        Ok(out)
    }

    /// Reads one entry's actions.
    pub fn parse_entry(&self, version: Version, bytes: &[u8]) -> Result<LogEntry> {
        let bad = |e: &dyn std::fmt::Display| Error::Log {
            path: self.display_path(&self.entry_path(version)),
            reason: e.to_string(),
        };
        let mut entry = LogEntry {
            version,
            kind: None,
            add: Vec::new(),
            remove: Vec::new(),
        };
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v: Value = serde_json::from_slice(line).map_err(|e| bad(&e))?;
            if let Some(info) = v.get("commitInfo") {
                entry.kind = serde_json::from_value(info["auditlake"]["kind"].clone()).ok();
            } else if let Some(add) = v.get("add") {
                let add: AddAction = serde_json::from_value(add.clone()).map_err(|e| bad(&e))?;
                let date = add.partition_values.get("date").cloned().flatten();
                let file = self
                    .added_file(
                        &add.path,
                        date.as_deref(),
                        add.size,
                        add.modification_time,
                        add.stats.as_deref(),
                    )
                    .ok_or_else(|| bad(&format!("add of {} without a partition date", add.path)))?;
                entry.add.push((file, add.data_change));
            } else if let Some(remove) = v.get("remove") {
                let r: RemoveAction =
                    serde_json::from_value(remove.clone()).map_err(|e| bad(&e))?;
                entry
                    .remove
                    .push(paths::from_relative(&self.root, &percent_decode(&r.path)));
            }
        }
        Ok(entry)
    }

    /// A store path relative to the root, as the log names it.
    pub(crate) fn relative_path(&self, p: &Path) -> Result<String> {
        self.relative_of(p)
    }

    /// The bytes of one entry of the log, or None when it does not exist.
    pub(crate) async fn read_entry_bytes(&self, version: Version) -> Result<Option<Bytes>> {
        self.read_entry(version).await
    }

    /// The data file an add action names (None without a valid partition date).
    fn added_file(
        &self,
        path: &str,
        date: Option<&str>,
        size: i64,
        modification_time: i64,
        stats: Option<&str>,
    ) -> Option<DataFile> {
        let location = paths::from_relative(&self.root, &percent_decode(path));
        let partition = Partition::parse(&format!("date={}", date?))?;
        let stats: Option<FileStats> = stats.and_then(|s| serde_json::from_str(s).ok());
        let ts_range = stats.as_ref().and_then(|s| {
            let lo = parse_stats_time(s.min_values.get(auditlake_model::schema::col::TS))?;
            let hi = parse_stats_time(s.max_values.get(auditlake_model::schema::col::TS))?;
            Some((lo, hi + 999))
        });
        Some(DataFile {
            partition,
            meta: ObjectMeta {
                location,
                last_modified: chrono::DateTime::from_timestamp_millis(modification_time)
                    .unwrap_or_default(),
                size: size.max(0) as u64,
                e_tag: None,
                version: None,
            },
            rows: stats.and_then(|s| s.num_records),
            ts_range,
        })
    }

    /// The live files of the last checkpoint (`_last_checkpoint` and its single Parquet file,
    /// of which only the `add` column is read).
    async fn read_checkpoint(&self) -> Result<LastCheckpoint> {
        use arrow::array::{Array, AsArray};
        use parquet::arrow::ProjectionMask;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let path = paths::from_relative(&self.root, &format!("{LOG_DIR}/_last_checkpoint"));
        let meta: Value = match self.get_bytes(&path).await {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| self.log_err(e))?,
            Err(e) if crate::is_not_found_error(&e) => return Ok(LastCheckpoint::None),
            Err(e) => return Err(e),
        };
        let Some(version) = meta["version"].as_u64() else {
            return Err(self.log_err("_last_checkpoint without a version"));
        };
        if meta.get("parts").is_some_and(|p| !p.is_null()) || meta.get("v2Checkpoint").is_some() {
            return Ok(LastCheckpoint::InParts);
        }
        let file = paths::from_relative(
            &self.root,
            &format!("{LOG_DIR}/{version:020}.checkpoint.parquet"),
        );
        let bytes = self.get_bytes(&file).await?;
        let bad = |e: &dyn std::fmt::Display| Error::Log {
            path: self.display_path(&file),
            reason: e.to_string(),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(&e))?;
        let root = builder.schema().index_of("add").map_err(|e| bad(&e))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [root]);
        let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
        let text = |a: Option<&arrow::array::ArrayRef>| -> Result<arrow::array::ArrayRef> {
            let a = a.ok_or_else(|| bad(&"an add column is missing"))?;
            arrow::compute::cast(a, &DataType::Utf8).map_err(|e| bad(&e))
        };
        let int = |a: Option<&arrow::array::ArrayRef>| -> Result<arrow::array::ArrayRef> {
            let a = a.ok_or_else(|| bad(&"an add column is missing"))?;
            arrow::compute::cast(a, &DataType::Int64).map_err(|e| bad(&e))
        };
        let mut files = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| bad(&e))?;
            let add = batch.column(0).as_struct();
            let path = text(add.column_by_name("path"))?;
            let path = path.as_string::<i32>();
            let size = int(add.column_by_name("size"))?;
            let size = size.as_primitive::<arrow::datatypes::Int64Type>();
            // Optional in the protocol: a checkpoint without them gives no times, no statistics.
            let mtime = add
                .column_by_name("modificationTime")
                .map(|c| int(Some(c)))
                .transpose()?;
            let mtime = mtime
                .as_ref()
                .map(|m| m.as_primitive::<arrow::datatypes::Int64Type>());
            let stats = add
                .column_by_name("stats")
                .map(|c| text(Some(c)))
                .transpose()?;
            let stats = stats.as_ref().map(|s| s.as_string::<i32>());
            let parts = add
                .column_by_name("partitionValues")
                .ok_or_else(|| bad(&"no partitionValues"))?
                .as_map();
            for i in 0..add.len() {
                if add.is_null(i) || path.is_null(i) {
                    continue;
                }
                let entries = parts.value(i);
                let keys = text(Some(entries.column(0)))?;
                let values = text(Some(entries.column(1)))?;
                let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
                let date = (0..keys.len())
                    .find(|j| keys.value(*j) == "date")
                    .filter(|j| !values.is_null(*j))
                    .map(|j| values.value(j));
                let f = self
                    .added_file(
                        path.value(i),
                        date,
                        size.value(i),
                        mtime.map_or(0, |m| m.value(i)),
                        stats.filter(|s| !s.is_null(i)).map(|s| s.value(i)),
                    )
                    .ok_or_else(|| {
                        bad(&format!(
                            "add of {} without a partition date",
                            path.value(i)
                        ))
                    })?;
                files.push(f);
            }
        }
        Ok(LastCheckpoint::Files(version, files))
    }

    /// The latest version's snapshot, read directly: the last checkpoint, then the entries
    /// after it (or after `base`, a snapshot already loaded). delta-rs's kernel opened a
    /// 30-file checkpoint ten times: 12 ms of a 29 ms whole-process question (measured).
    async fn load_latest(
        &self,
        latest: Version,
        base: Option<&Snapshot>,
    ) -> Result<Option<Snapshot>> {
        let (mut files, after): (HashMap<Path, DataFile>, Option<Version>) = match base {
            Some(b) if b.version.is_some_and(|v| v <= latest) => (
                b.files
                    .iter()
                    .map(|f| (f.meta.location.clone(), f.clone()))
                    .collect(),
                b.version,
            ),
            _ => match self.read_checkpoint().await? {
                LastCheckpoint::Files(v, fs) if v <= latest => (
                    fs.into_iter()
                        .map(|f| (f.meta.location.clone(), f))
                        .collect(),
                    Some(v),
                ),
                LastCheckpoint::Files(..) | LastCheckpoint::InParts => return Ok(None),
                LastCheckpoint::None => (HashMap::new(), None),
            },
        };
        let start = after.map_or(0, |v| v + 1);
        for v in start..=latest {
            let Some(bytes) = self.read_entry(v).await? else {
                return Err(self.log_err(format!("version {v} of the log is missing")));
            };
            let e = self.parse_entry(v, &bytes)?;
            for r in e.remove {
                files.remove(&r);
            }
            for (f, _) in e.add {
                files.insert(f.meta.location.clone(), f);
            }
        }
        let mut files: Vec<DataFile> = files.into_values().collect();
        files.sort_by(|a, b| (a.partition, &a.meta.location).cmp(&(b.partition, &b.meta.location)));
        Ok(Some(Snapshot {
            version: Some(latest),
            committed_at: self.commit_time(latest).await?,
            files: Arc::new(files),
        }))
    }

    fn relative_of(&self, p: &Path) -> Result<String> {
        paths::relative(&self.root, p).ok_or_else(|| Error::Log {
            path: self.display_path(p),
            reason: "a file outside the store root".into(),
        })
    }

    /// The bytes of an entry: commitInfo, then (for the first) protocol and metadata, then the
    /// removes and adds.
    fn entry_bytes(
        &self,
        read_version: Option<Version>,
        prev: Option<&str>,
        c: &Commit,
    ) -> Result<Vec<u8>> {
        let now = now_millis();
        let version = read_version.map_or(0, |v| v + 1);
        let data_change = c.data_change();
        let rows_added: u64 = c.add.iter().map(|f| f.rows).sum();
        let rows_removed: u64 = c.remove.iter().filter_map(|f| f.rows).sum();
        let mut lines: Vec<Value> = vec![json!({"commitInfo": {
            "timestamp": now,
            "operation": c.kind.operation(),
            "operationParameters": {"mode": "Append", "partitionBy": "[\"date\"]"},
            "readVersion": read_version,
            "isolationLevel": "Serializable",
            "isBlindAppend": c.kind == CommitKind::Ingest,
            "engineInfo": format!("auditlake {}", env!("CARGO_PKG_VERSION")),
            "auditlake": {
                "kind": c.kind,
                "reason": c.reason,
                "run": c.run,
                "files_added": c.add.len(),
                "files_removed": c.remove.len(),
                "rows_added": rows_added,
                "rows_removed": rows_removed,
            },
        }})];
        if read_version.is_none() {
            lines.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
            let metadata = match &c.metadata {
                Some(m) => m.clone(),
                None => new_table_metadata(now)?,
            };
            lines.push(json!({ "metaData": metadata }));
        } else if let Some(m) = &c.metadata {
            lines.push(json!({ "metaData": m }));
        }
        for f in &c.remove {
            lines.push(json!({"remove": {
                "path": self.relative_of(&f.meta.location)?,
                "deletionTimestamp": now,
                "dataChange": data_change,
                "extendedFileMetadata": true,
                "partitionValues": {"date": f.partition.date()},
                "size": f.meta.size,
            }}));
        }
        for f in &c.add {
            let stats = json!({
                "numRecords": f.rows,
                "minValues": {"ts": stats_time(f.ts_range.0)},
                "maxValues": {"ts": stats_time(f.ts_range.1)},
                "nullCount": {"ts": 0},
            });
            lines.push(json!({"add": {
                "path": self.relative_of(&f.path)?,
                "partitionValues": {"date": f.partition.date()},
                "size": f.size,
                "modificationTime": now,
                "dataChange": data_change,
                "stats": stats.to_string(),
            }}));
        }
        // The actions after the commitInfo, byte for byte, are hashed into its digest.
        let mut rest = Vec::new();
        for l in &lines[1..] {
            serde_json::to_writer(&mut rest, l).map_err(|e| self.log_err(e))?;
            rest.push(b'\n');
        }
        let actions = crate::integrity::sha256_hex(&rest);
        let digest = crate::integrity::digest(self, version, prev, &actions, c)?;
        let signature = self
            .signer
            .as_ref()
            .map(|s| crate::integrity::sign(s, &digest));
        let info = &mut lines[0]["commitInfo"]["auditlake"];
        info["digest"] = digest;
        info["signature"] = signature.unwrap_or(Value::Null);
        let mut out = Vec::new();
        serde_json::to_writer(&mut out, &lines[0]).map_err(|e| self.log_err(e))?;
        out.push(b'\n');
        out.extend_from_slice(&rest);
        Ok(out)
    }

    /// Tries to commit `c` as the version after `read_version` (the table's first version when
    /// None). Returns the version committed, or `Ok(None)` when another writer committed that
    /// version first: the caller reads [`Store::entries_after`] its read version, resolves what
    /// they change for it, and tries again after the latest.
    pub async fn try_commit(
        &self,
        read_version: Option<Version>,
        c: &Commit,
    ) -> Result<Option<Version>> {
        let version = read_version.map_or(0, |v| v + 1);
        // The digest chains to the entry this one follows.
        let prev = match read_version {
            Some(v) => match self.read_entry(v).await? {
                Some(bytes) => {
                    // Never vouch for an entry altered since it was written.
                    crate::integrity::check_before_chaining(v, &bytes, self.signer.as_deref())
                        .map_err(|e| {
                            self.log_err(format!(
                                "version {v}, which this commit would follow, was altered: {e}; run `auditlake verify`"
                            ))
                        })?;
                    Some(crate::integrity::sha256_hex(&bytes))
                }
                None => {
                    return Err(self.log_err(format!(
                        "version {v}, which this commit follows, is not in the log"
                    )));
                }
            },
            None => None,
        };
        let body = self.entry_bytes(read_version, prev.as_deref(), c)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .object_store
            .put_opts(&self.entry_path(version), PutPayload::from(body), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        }
        failpoint("after-commit");
        if (version + 1).is_multiple_of(CHECKPOINT_INTERVAL) {
            // A checkpoint only makes later loads faster; a failure is not the commit's.
            if let Err(e) = self.checkpoint(version).await {
                eprintln!("warning: checkpoint of version {version} failed: {e}");
            }
        }
        Ok(Some(version))
    }

    /// Writes the checkpoint of a version.
    pub async fn checkpoint(&self, version: Version) -> Result<()> {
        let mut table = deltalake_core::DeltaTable::new(self.log_store());
        table
            .load_version(version)
            .await
            .map_err(|e| self.log_err(e))?;
        deltalake_core::checkpoints::create_checkpoint(&table, None)
            .await
            .map_err(|e| self.log_err(e))
    }

    /// Writes a checkpoint of the latest version unless it has one: maintenance runs end with it,
    /// so that readers load one Parquet checkpoint instead of replaying the entries since the
    /// last one (a one-hour question, whole process, on 10M events: 60-70 ms after 88 entries,
    /// 20 ms from a checkpoint, measured).
    pub async fn checkpoint_latest(&self) -> Result<Option<Version>> {
        self.checkpoint_if_behind(1).await
    }

    /// Writes a checkpoint of the latest version when at least `entries` follow the last one.
    /// An ingest ends with this (20 entries): a whole-process query replaying 88 entries took
    /// 60-70 ms, against 20 ms from a checkpoint (10M events, measured).
    pub async fn checkpoint_if_behind(&self, entries: u64) -> Result<Option<Version>> {
        let Some(latest) = self.latest_version().await? else {
            return Ok(None);
        };
        let behind = match self.last_checkpoint().await? {
            Some(c) => latest.saturating_sub(c),
            None => latest + 1,
        };
        if behind < entries.max(1) {
            return Ok(None);
        }
        self.checkpoint(latest).await?;
        Ok(Some(latest))
    }

    /// Commits a change whose only conflict is a removed file: retried after the latest version
    /// until it lands, unless a commit since `read_version` removed one of the files it removes
    /// (another rewrite got there first), which is [`Error::Conflict`].
    pub async fn commit(&self, mut read_version: Version, c: &Commit) -> Result<Version> {
        let mine: HashSet<&Path> = c.remove.iter().map(|f| &f.meta.location).collect();
        loop {
            if let Some(v) = self.try_commit(Some(read_version), c).await? {
                return Ok(v);
            }
            for e in self.entries_after(read_version).await? {
                if let Some(p) = e.remove.iter().find(|p| mine.contains(p)) {
                    return Err(Error::Conflict(format!(
                        "version {} ({}) removed {} first",
                        e.version,
                        e.kind.map_or("another writer", CommitKind::name),
                        self.display_path(p)
                    )));
                }
                read_version = e.version;
            }
        }
    }

    /// The version to write after, creating the table first when the store has no log: an empty
    /// store gets an empty table; a store in the layout before the log gets a table holding its
    /// files (rewrites that a dead run left half done are completed first).
    pub async fn ensure_table(&self) -> Result<Version> {
        if let Some(v) = self.latest_version().await? {
            return self.ensure_schema(v).await;
        }
        self.recover_legacy().await?;
        let files = self.legacy_files(None, None).await?;
        let mut c = Commit::new(
            CommitKind::Create,
            crate::RunId::new().to_string(),
            if files.is_empty() {
                "new store".to_owned()
            } else {
                format!(
                    "{} files of the store's folders taken into the log",
                    files.len()
                )
            },
        );
        for f in &files {
            let meta = self.file_metadata(f).await?;
            let rows = meta.file_metadata().num_rows().max(0) as u64;
            let ts_range = crate::writer::footer_ts_range(&meta)
                .unwrap_or((f.partition.start(), f.partition.end() - 1));
            // Files written before the log: hashed now, as they are taken in.
            let bytes = self.get_bytes(&f.meta.location).await?;
            c.add.push(NewFile {
                path: f.meta.location.clone(),
                partition: f.partition,
                size: f.meta.size,
                rows,
                ts_range,
                sha256: crate::integrity::sha256_hex(&bytes),
            });
        }
        match self.try_commit(None, &c).await? {
            Some(v) => {
                self.forget_legacy().await?;
                Ok(v)
            }
            // Created by another writer meanwhile.
            None => self
                .latest_version()
                .await?
                .ok_or_else(|| self.log_err("the log's first entry vanished")),
        }
    }

    /// The version to write after, once the table's schema has every column this auditlake
    /// writes: a table an older auditlake created gets the missing (nullable) columns in a
    /// commit of their own, so that other Delta readers see them. Checked once per process.
    async fn ensure_schema(&self, mut latest: Version) -> Result<Version> {
        use std::sync::atomic::Ordering;
        if self.schema_checked.load(Ordering::Relaxed) {
            return Ok(latest);
        }
        loop {
            let state = DeltaTableState::try_new(self.log_store().as_ref(), Some(latest))
                .await
                .map_err(|e| self.log_err(e))?;
            let have: Vec<String> = state
                .schema()
                .fields()
                .map(|f| f.name().to_owned())
                .collect();
            let wanted: Vec<String> = auditlake_model::audit_events_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .chain(
                    auditlake_model::schema::PARTITION_COLUMNS
                        .iter()
                        .map(|c| (*c).to_owned()),
                )
                .collect();
            let missing: Vec<&String> = wanted.iter().filter(|w| !have.contains(w)).collect();
            // Only columns added at the end are added; a table with columns this auditlake does
            // not know (a newer writer's) is left as it is.
            if missing.is_empty() || have.iter().any(|h| !wanted.contains(h)) {
                self.schema_checked.store(true, Ordering::Relaxed);
                return Ok(latest);
            }
            let m = state.metadata();
            let schema = delta_schema(
                &auditlake_model::audit_events_schema(),
                &auditlake_model::schema::PARTITION_COLUMNS,
            )?;
            let metadata = json!({
                "id": m.id(),
                "name": m.name(),
                "format": {"provider": "parquet", "options": {}},
                "schemaString": schema,
                "partitionColumns": m.partition_columns(),
                "configuration": m.configuration(),
                "createdTime": m.created_time(),
            });
            let mut c = Commit::new(
                CommitKind::Schema,
                crate::RunId::new().to_string(),
                format!(
                    "columns added: {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            c.metadata = Some(metadata);
            match self.try_commit(Some(latest), &c).await? {
                Some(v) => {
                    self.schema_checked.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                // Another writer committed first: look again at what it left.
                None => {
                    latest = self
                        .latest_version()
                        .await?
                        .ok_or_else(|| self.log_err("the log vanished"))?;
                }
            }
        }
    }

    /// Deletes what is no longer live: files removed from the table, and orphans (files that a
    /// writer wrote but never committed), once they are older than `grace`, so that readers of an
    /// older snapshot finish first. Plain-Parquet readers (engines without a Delta reader) see
    /// exactly the table outside that window.
    pub async fn vacuum(&self, grace: chrono::TimeDelta, dry_run: bool) -> Result<VacuumSummary> {
        let mut summary = VacuumSummary::default();
        let Some(latest) = self.latest_version().await? else {
            return Ok(summary);
        };
        let log_store = self.log_store();
        let state = DeltaTableState::try_new(log_store.as_ref(), Some(latest))
            .await
            .map_err(|e| self.log_err(e))?;
        let live: HashSet<Path> = self
            .snapshot_of(&state)?
            .files
            .iter()
            .map(|f| f.meta.location.clone())
            .collect();
        // When each removed file was removed: a file removed recently is kept however old it is.
        // (Tombstones older than the table's deletedFileRetentionDuration, a week, are dropped
        // from checkpoints; those removals are past any grace period of less than a week.)
        let mut removed_at: HashMap<Path, i64> = HashMap::new();
        let mut tombstones = state.all_tombstones(log_store.as_ref());
        while let Some(t) = tombstones.try_next().await.map_err(|e| self.log_err(e))? {
            let p = paths::from_relative(&self.root, &t.path());
            let at = t.deletion_timestamp().unwrap_or(0);
            let e = removed_at.entry(p).or_insert(at);
            *e = (*e).max(at);
        }
        drop(tombstones);
        let cutoff = chrono::Utc::now() - grace;
        let mut stream = self.object_store.list(Some(&self.root));
        let mut doomed = Vec::new();
        while let Some(meta) = stream.try_next().await.map_err(|e| self.err(e))? {
            if paths::parse_data_file(&self.root, &meta.location).is_none()
                || live.contains(&meta.location)
            {
                continue;
            }
            let recent_removal = removed_at
                .get(&meta.location)
                .is_some_and(|&ms| ms > cutoff.timestamp_millis());
            if recent_removal || meta.last_modified > cutoff {
                summary.kept_for_grace += 1;
                continue;
            }
            doomed.push(meta);
        }
        for m in doomed {
            summary.deleted_files += 1;
            summary.deleted_bytes += m.size;
            if !dry_run {
                self.delete_if_exists(&m.location).await?;
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table an older auditlake created (its schema without the columns added since) gets
    /// them in one commit of its own, which `verify` accepts; Delta readers then see them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_of_an_older_schema_gets_the_new_columns_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &[]).unwrap();
        let full = auditlake_model::audit_events_schema();
        let old = arrow::datatypes::Schema::new(
            full.fields()
                .iter()
                .filter(|f| !matches!(f.name().as_str(), "source_format" | "envelope"))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut metadata = new_table_metadata(0).unwrap();
        metadata["schemaString"] =
            Value::String(delta_schema(&old, &auditlake_model::schema::PARTITION_COLUMNS).unwrap());
        let mut c = Commit::new(CommitKind::Create, "r", "an older store");
        c.metadata = Some(metadata);
        assert_eq!(store.try_commit(None, &c).await.unwrap(), Some(0));

        let names = |v| {
            let store = &store;
            async move {
                let state = DeltaTableState::try_new(store.log_store().as_ref(), Some(v))
                    .await
                    .unwrap();
                state
                    .schema()
                    .fields()
                    .map(|f| f.name().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert!(!names(0).await.contains(&"envelope".to_owned()));
        assert_eq!(store.ensure_table().await.unwrap(), 1);
        let now = names(1).await;
        assert!(now.contains(&"source_format".to_owned()) && now.contains(&"envelope".to_owned()));
        // Once: the next writer (another process) finds nothing to add.
        let again = Store::open(dir.path().to_str().unwrap(), &[]).unwrap();
        assert_eq!(again.ensure_table().await.unwrap(), 1);
        let report = crate::integrity::verify(
            &store,
            &crate::integrity::VerifyOptions {
                from: None,
                to: None,
                public_key: None,
                expect_version: None,
            },
        )
        .await
        .unwrap();
        // Nothing but the absence of signatures (no key here): the metaData is accepted.
        assert!(
            report
                .findings
                .iter()
                .all(|f| matches!(f, crate::integrity::Finding::Unsigned { .. })),
            "{:?}",
            report.findings
        );
        assert_eq!(report.entries, 2);
    }

    /// The snapshot read directly (checkpoint, then the entries after it) is delta-rs's: the
    /// same files, sizes, rows and `ts` ranges, before and after checkpoints, with removes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_direct_snapshot_is_delta_rs_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &[]).unwrap();
        let mut version = store.ensure_table().await.unwrap();
        let run = crate::RunId::new();
        let day = auditlake_model::time::parse_canonical("2026-03-19T00:00:00.000000Z").unwrap();
        let mut written: Vec<NewFile> = Vec::new();
        for seq in 1..=7u32 {
            let partition = Partition::of(day + i64::from(seq % 3) * 86_400_000_000);
            let f = store
                .write_data_file(
                    &partition,
                    &run,
                    seq,
                    vec![b'x'; seq as usize * 10],
                    u64::from(seq),
                    (partition.start() + 5, partition.start() + 999_999),
                )
                .await
                .unwrap();
            let mut c = Commit::new(CommitKind::Ingest, run.as_str(), "test");
            c.add.push(f.clone());
            written.push(f);
            if seq == 5 {
                // A rewrite: the first file removed.
                let mut r = Commit::new(CommitKind::Retain, run.as_str(), "test");
                let first = &written[0];
                let mut df = DataFile::new(
                    first.partition,
                    ObjectMeta {
                        location: first.path.clone(),
                        last_modified: chrono::Utc::now(),
                        size: first.size,
                        e_tag: None,
                        version: None,
                    },
                );
                df.rows = Some(first.rows);
                r.remove.push(df);
                version = store.try_commit(Some(version), &r).await.unwrap().unwrap();
            }
            version = store.try_commit(Some(version), &c).await.unwrap().unwrap();
            if seq == 3 || seq == 6 {
                store.checkpoint(version).await.unwrap();
            }
            let direct = Store::open(dir.path().to_str().unwrap(), &[])
                .unwrap()
                .snapshot(None)
                .await
                .unwrap();
            let state = DeltaTableState::try_new(store.log_store().as_ref(), Some(version))
                .await
                .unwrap();
            let kernel = store.snapshot_of(&state).unwrap();
            let key = |s: &Snapshot| {
                // Both bound the largest `ts` from the millisecond statistics: delta-rs with the
                // next millisecond, this reader with its last microsecond.
                s.files
                    .iter()
                    .map(|f| {
                        let ts = f.ts_range.map(|(lo, hi)| (lo, (hi + 1) / 1000));
                        (
                            f.meta.location.to_string(),
                            f.meta.size,
                            f.rows,
                            ts,
                            f.partition.date(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(direct.version, kernel.version);
            assert_eq!(key(&direct), key(&kernel), "after version {version}");
            // (delta-rs gives no commit time here; this reader takes the entry's commitInfo.)
            assert!(direct.committed_at.is_some());
        }
        // One store handle brought up to date entry by entry gives the same.
        let cached = store.snapshot(None).await.unwrap();
        assert_eq!(cached.files.len(), 6);
    }

    #[test]
    fn stats_times_are_milliseconds_and_paths_decode() {
        let t = auditlake_model::time::parse_canonical("2026-03-19T10:30:00.123456Z").unwrap();
        assert_eq!(stats_time(t), "2026-03-19T10:30:00.123Z");
        assert_eq!(
            percent_decode("date=2026-03-19/a%20b.parquet"),
            "date=2026-03-19/a b.parquet"
        );
        assert_eq!(percent_decode("100%"), "100%");
        let s = delta_schema(&auditlake_model::audit_events_schema(), &["date"]).unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        let fields = v["fields"].as_array().unwrap();
        let last = fields.last().unwrap();
        assert_eq!(
            (last["name"].as_str(), last["type"].as_str()),
            (Some("date"), Some("string"))
        );
        let ts = &fields[0];
        assert_eq!(
            (ts["name"].as_str(), ts["type"].as_str()),
            (Some("ts"), Some("timestamp"))
        );
        let groups = fields.iter().find(|f| f["name"] == "user_groups").unwrap();
        assert_eq!(groups["type"]["type"], "array");
    }
}
