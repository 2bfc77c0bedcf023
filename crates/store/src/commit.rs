//! The commit protocol of rewrites (compaction, slimming): readers never see an event twice or
//! miss one, also when a rewrite is killed at any point.
//!
//! A rewrite replaces some files of one partition (its inputs) with new ones (its outputs):
//!
//! 1. Outputs are written under `_staging/` with names no reader takes for data (`.tmp`).
//! 2. The commit record `_commits/<run>-<seq>.json`, listing inputs and outputs, is created with
//!    `PutMode::Create`: the commit point, atomic on a local disk and on S3.
//! 3. Roll-forward: each output is renamed into its partition, then the inputs are deleted.
//! 4. The record is marked completed, and deleted by a later run once a grace period has passed.
//!
//! Readers ([`Store::list_data_files`]) list the data files first and the records after, then
//! hide every input a record names and show its outputs, from the partition when renamed or from
//! `_staging/` when not yet. Killed before step 2, a rewrite left only staging files nobody reads;
//! killed after it, the record says what the store holds, and the next maintenance run (or any
//! reader, without changing anything) completes it. Records outlive their roll-forward so that a
//! reader whose listing straddled it still hides the inputs it saw.
//!
//! Engines that don't read records (DuckDB, Spark, Trino, Athena) see the inputs until step 3 and
//! the outputs after it; only during step 3, which is a rename and a delete per file, can they see
//! both. Run their jobs apart from `auditlake compact` when an exact count matters.

use std::collections::HashSet;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::paths::{self, Partition, RunId};
use crate::store::DataFile;
use crate::{Error, Result, Store};

/// How long a completed record is kept so that slow readers still honour it.
pub const RECORD_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A lock older than this is taken to belong to a run that died (sooner when its holder ran on
/// this host and is gone).
pub const LOCK_STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// `_commits/<run>-<seq>.json`: one rewrite of one partition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommitRecord {
    pub version: u32,
    pub run: String,
    /// What the rewrite did: `compact`, `slim`.
    pub action: String,
    /// The partition's date, `YYYY-MM-DD`.
    pub partition: String,
    pub created: String,
    /// Set once roll-forward is done.
    #[serde(default)]
    pub completed: Option<String>,
    /// Root-relative paths of the files replaced.
    pub remove: Vec<String>,
    pub add: Vec<AddedFile>,
}

/// An output of a rewrite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddedFile {
    /// Root-relative path under `_staging/` where it was written.
    pub staged: String,
    /// Root-relative path in its partition.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A file written under `_staging/` by a rewrite, not yet committed.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub seq: u32,
    pub staged: Path,
    pub target: Path,
    pub rows: u64,
    pub bytes: u64,
}

/// What [`Store::recover`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovery {
    /// Records of runs that had died after their commit point, now rolled forward.
    pub rolled_forward: usize,
    /// Completed records past their grace period, deleted.
    pub records_removed: usize,
    /// Staging files of runs that died before their commit point, deleted.
    pub staging_removed: usize,
}

/// The maintenance lock; release it with [`Store::unlock`].
#[derive(Debug)]
pub struct Lock {
    path: Path,
}

#[derive(Debug, Serialize, Deserialize)]
struct LockInfo {
    run: String,
    command: String,
    pid: u32,
    #[serde(default)]
    host: String,
    started: String,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

impl LockInfo {
    /// Whether the holder is certainly gone: a process of this host that no longer runs.
    fn holder_is_dead(&self) -> bool {
        let here = host_name();
        !here.is_empty()
            && self.host == here
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Every commit record, with its path.
    pub async fn commit_records(&self) -> Result<Vec<(Path, CommitRecord)>> {
        let dir = paths::commits_dir(&self.root);
        let metas: Vec<ObjectMeta> = self
            .object_store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for m in metas {
            if !m.location.as_ref().ends_with(".json") {
                continue;
            }
            let bytes = match self.get_bytes(&m.location).await {
                Ok(b) => b,
                // Deleted by a maintenance run since the listing: past its grace period.
                Err(Error::ObjectStore {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            let record: CommitRecord =
                serde_json::from_slice(&bytes).map_err(|e| Error::Commit {
                    path: self.display_path(&m.location),
                    reason: format!("unreadable commit record: {e}"),
                })?;
            out.push((m.location, record));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Applies the records to a listing: inputs hidden, outputs shown wherever they are.
    pub(crate) async fn apply_commits(
        &self,
        files: Vec<DataFile>,
        records: &[(Path, CommitRecord)],
        in_range: &(dyn Fn(&Partition) -> bool + Sync),
    ) -> Result<Vec<DataFile>> {
        let mut hidden: HashSet<Path> = HashSet::new();
        for (_, r) in records {
            for rel in &r.remove {
                hidden.insert(paths::from_relative(&self.root, rel));
            }
        }
        let listed: HashSet<Path> = files.iter().map(|f| f.meta.location.clone()).collect();
        let mut out: Vec<DataFile> = files
            .into_iter()
            .filter(|f| !hidden.contains(&f.meta.location))
            .collect();
        for (record_path, r) in records {
            let partition =
                Partition::parse(&format!("date={}", r.partition)).ok_or_else(|| {
                    Error::Commit {
                        path: self.display_path(record_path),
                        reason: format!("bad partition {:?}", r.partition),
                    }
                })?;
            if !in_range(&partition) {
                continue;
            }
            for add in &r.add {
                let target = paths::from_relative(&self.root, &add.path);
                if listed.contains(&target) || hidden.contains(&target) {
                    continue;
                }
                // Not renamed yet (or renamed after the listing): read it where it is now.
                let staged = paths::from_relative(&self.root, &add.staged);
                let meta = match self.object_store.head(&staged).await {
                    Ok(m) => m,
                    Err(object_store::Error::NotFound { .. }) => {
                        match self.object_store.head(&target).await {
                            Ok(m) => m,
                            // Rolled forward, then deleted by retention.
                            Err(object_store::Error::NotFound { .. }) if r.completed.is_some() => {
                                continue;
                            }
                            Err(object_store::Error::NotFound { .. }) => {
                                return Err(Error::Commit {
                                    path: self.display_path(record_path),
                                    reason: format!(
                                        "its output {} is neither in its partition nor staged: \
                                         the store has lost a file",
                                        add.path
                                    ),
                                });
                            }
                            Err(e) => return Err(self.err(e)),
                        }
                    }
                    Err(e) => return Err(self.err(e)),
                };
                out.push(DataFile { partition, meta });
            }
        }
        Ok(out)
    }

    /// Writes a rewrite's output under `_staging/`.
    pub async fn stage_file(
        &self,
        partition: &Partition,
        run: &RunId,
        seq: u32,
        bytes: Vec<u8>,
        rows: u64,
    ) -> Result<StagedFile> {
        let staged = paths::staging_path(&self.root, run, seq);
        let target = paths::DataFilePath::new(&self.root, partition, run, seq);
        let len = bytes.len() as u64;
        self.object_store
            .put(&staged, PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|e| self.err(e))?;
        Ok(StagedFile {
            seq,
            staged,
            target: target.path().clone(),
            rows,
            bytes: len,
        })
    }

    /// The commit point of a rewrite: creates its record, then rolls it forward.
    pub async fn commit_rewrite(
        &self,
        run: &RunId,
        action: &str,
        partition: &Partition,
        remove: &[DataFile],
        add: &[StagedFile],
    ) -> Result<()> {
        let rel = |p: &Path| {
            paths::relative(&self.root, p).ok_or_else(|| Error::Commit {
                path: self.display_path(p),
                reason: "not below the store root".into(),
            })
        };
        let record = CommitRecord {
            version: 1,
            run: run.to_string(),
            action: action.to_owned(),
            partition: partition.date(),
            created: now_text(),
            completed: None,
            remove: remove
                .iter()
                .map(|f| rel(&f.meta.location))
                .collect::<Result<_>>()?,
            add: add
                .iter()
                .map(|a| {
                    Ok(AddedFile {
                        staged: rel(&a.staged)?,
                        path: rel(&a.target)?,
                        rows: a.rows,
                        bytes: a.bytes,
                    })
                })
                .collect::<Result<_>>()?,
        };
        let first = add
            .iter()
            .map(|a| a.seq)
            .min()
            .ok_or_else(|| Error::Commit {
                path: self.display_path(&paths::commits_dir(&self.root)),
                reason: format!("a rewrite of {partition} without outputs"),
            })?;
        let path = paths::commit_path(&self.root, run, first);
        let body = serde_json::to_vec_pretty(&record).map_err(|e| Error::Commit {
            path: self.display_path(&path),
            reason: e.to_string(),
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.object_store
            .put_opts(&path, PutPayload::from(Bytes::from(body)), opts)
            .await
            .map_err(|e| self.err(e))?;
        failpoint("after-commit");
        self.roll_forward(&path, record).await
    }

    /// Step 3 and 4 of the protocol for one record. Idempotent.
    async fn roll_forward(&self, path: &Path, mut record: CommitRecord) -> Result<()> {
        for add in &record.add {
            let staged = paths::from_relative(&self.root, &add.staged);
            let target = paths::from_relative(&self.root, &add.path);
            match self.object_store.head(&staged).await {
                Ok(_) => {
                    if self.object_store.head(&target).await.is_ok() {
                        // Copied already (S3 renames are copy + delete).
                        self.delete_if_exists(&staged).await?;
                    } else {
                        self.object_store
                            .rename(&staged, &target)
                            .await
                            .map_err(|e| self.err(e))?;
                    }
                }
                Err(object_store::Error::NotFound { .. }) => {
                    self.object_store
                        .head(&target)
                        .await
                        .map_err(|e| self.err(e))?;
                }
                Err(e) => return Err(self.err(e)),
            }
            failpoint("during-roll-forward");
        }
        for rel in &record.remove {
            self.delete_if_exists(&paths::from_relative(&self.root, rel))
                .await?;
        }
        record.completed = Some(now_text());
        let body = serde_json::to_vec_pretty(&record).map_err(|e| Error::Commit {
            path: self.display_path(path),
            reason: e.to_string(),
        })?;
        self.object_store
            .put(path, PutPayload::from(Bytes::from(body)))
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes staging files left by runs that died more than `older_than` ago, except the
    /// outputs of committed rewrites still to roll forward.
    pub async fn clean_staging(&self, older_than: chrono::TimeDelta) -> Result<usize> {
        let mut named: HashSet<Path> = HashSet::new();
        for (_, r) in self.commit_records().await? {
            if r.completed.is_none() {
                named.extend(
                    r.add
                        .iter()
                        .map(|a| paths::from_relative(&self.root, &a.staged)),
                );
            }
        }
        let dir = paths::staging_dir(&self.root);
        let cutoff = chrono::Utc::now() - older_than;
        let stale: Vec<ObjectMeta> = self
            .object_store
            .list(Some(&dir))
            .try_filter(|m| {
                futures::future::ready(m.last_modified < cutoff && !named.contains(&m.location))
            })
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        for m in &stale {
            self.delete_if_exists(&m.location).await?;
        }
        Ok(stale.len())
    }

    pub(crate) async fn delete_if_exists(&self, path: &Path) -> Result<()> {
        match self.object_store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Completes what runs that died left: rolls committed records forward, deletes completed
    /// records past their grace period and staging files that no record names. Call it holding
    /// the lock.
    pub async fn recover(&self, _lock: &Lock) -> Result<Recovery> {
        let mut done = Recovery::default();
        let now = chrono::Utc::now();
        for (path, record) in self.commit_records().await? {
            match record.completed.as_deref() {
                None => {
                    self.roll_forward(&path, record).await?;
                    done.rolled_forward += 1;
                }
                Some(at) => {
                    let old = chrono::DateTime::parse_from_rfc3339(at)
                        .map(|t| now - t.to_utc() > RECORD_GRACE)
                        .unwrap_or(true);
                    if old {
                        self.delete_if_exists(&path).await?;
                        done.records_removed += 1;
                    }
                }
            }
        }
        done.staging_removed = self.clean_staging(LOCK_STALE_AFTER).await?;
        Ok(done)
    }

    /// Takes the maintenance lock: one compaction or retention run at a time per store.
    pub async fn lock(&self, run: &RunId, command: &str) -> Result<Lock> {
        let path = paths::lock_path(&self.root);
        let info = LockInfo {
            run: run.to_string(),
            command: command.to_owned(),
            pid: std::process::id(),
            host: host_name(),
            started: now_text(),
        };
        let body = serde_json::to_vec(&info).unwrap_or_default();
        for _ in 0..2 {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .object_store
                .put_opts(&path, PutPayload::from(body.clone()), opts)
                .await
            {
                Ok(_) => return Ok(Lock { path }),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let held = self.get_bytes(&path).await?;
                    let holder: Option<LockInfo> = serde_json::from_slice(&held).ok();
                    let since = holder
                        .as_ref()
                        .and_then(|h| chrono::DateTime::parse_from_rfc3339(&h.started).ok());
                    let stale = holder.as_ref().is_some_and(LockInfo::holder_is_dead)
                        || since.is_none_or(|t| chrono::Utc::now() - t.to_utc() > LOCK_STALE_AFTER);
                    if !stale {
                        let who = holder.map_or_else(
                            || "an unknown run".to_owned(),
                            |h| {
                                format!(
                                    "`{}` run {} (pid {}) since {}",
                                    h.command, h.run, h.pid, h.started
                                )
                            },
                        );
                        return Err(Error::Locked {
                            path: self.display_path(&path),
                            holder: who,
                        });
                    }
                    self.delete_if_exists(&path).await?;
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Err(Error::Locked {
            path: self.display_path(&path),
            holder: "a run that keeps re-taking it".into(),
        })
    }

    /// Releases the maintenance lock.
    pub async fn unlock(&self, lock: Lock) -> Result<()> {
        self.delete_if_exists(&lock.path).await
    }

    /// Deletes whole data files (retention). Not a rewrite: deleting is safe file by file.
    pub async fn delete_files(&self, _lock: &Lock, files: &[DataFile]) -> Result<()> {
        for f in files {
            self.delete_if_exists(&f.meta.location).await?;
        }
        Ok(())
    }

    /// Deletes parts of the rejected-events area (retention ages them like data).
    pub async fn delete_rejected(&self, _lock: &Lock, parts: &[ObjectMeta]) -> Result<()> {
        for p in parts {
            self.delete_if_exists(&p.location).await?;
        }
        Ok(())
    }
}

/// Test hook: `AUDITLAKE_FAILPOINT=<name>` aborts the process at that point, as a kill would.
pub fn failpoint(name: &str) {
    if std::env::var("AUDITLAKE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
