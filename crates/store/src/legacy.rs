//! The layout before the transaction log, read so that such a store can become a table.
//!
//! Before [`crate::log`], data files were published straight into `date=…/` (a LIST was the
//! truth) and rewrites (compaction, slimming) went through commit records `_commits/<run>.json`
//! under a lock file `_maintenance.lock`. A store in that layout is read from its folders by
//! [`Store::legacy_files`] (the records applied), and on its first write
//! ([`Store::ensure_table`]) its rewrites are completed, its files become the table's first
//! version, and the records, the lock and the staging folder are deleted.

use std::collections::HashSet;

use auditlake_model::time::Micros;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::log::failpoint;
use crate::paths::{self, Partition};
use crate::store::DataFile;
use crate::{Error, Result, Store};

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

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Every commit record, with its path.
    pub async fn commit_records(&self) -> Result<Vec<(Path, CommitRecord)>> {
        let metas = self.list_under(&paths::commits_dir(&self.root)).await?;
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
                out.push(DataFile::new(partition, meta));
            }
        }
        Ok(out)
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

    /// Every object below `dir`.
    pub(crate) async fn list_under(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        self.object_store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| self.err(e))
    }

    pub(crate) async fn delete_if_exists(&self, path: &Path) -> Result<()> {
        match self.object_store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Completes the rewrites that dead runs of the old layout committed but did not roll
    /// forward (idempotent).
    pub(crate) async fn recover_legacy(&self) -> Result<usize> {
        let mut n = 0;
        for (path, record) in self.commit_records().await? {
            if record.completed.is_none() {
                self.roll_forward(&path, record).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes the old layout's records, lock and staging files, once the log holds the files.
    pub(crate) async fn forget_legacy(&self) -> Result<()> {
        for dir in [
            paths::commits_dir(&self.root),
            paths::staging_dir(&self.root),
        ] {
            for m in self.list_under(&dir).await? {
                self.delete_if_exists(&m.location).await?;
            }
        }
        self.delete_if_exists(&paths::lock_path(&self.root)).await
    }

    /// Data files of a store without a log, optionally only of one partition or of partitions
    /// overlapping `[from, to)`: the files below `date=…/`, minus those that a commit record
    /// replaces, plus the outputs of a committed rewrite that is not rolled forward yet.
    pub(crate) async fn legacy_files(
        &self,
        only: Option<&Partition>,
        range: Option<(Micros, Micros)>,
    ) -> Result<Vec<DataFile>> {
        let in_range = |p: &Partition| {
            only.is_none_or(|o| o == p)
                && range.is_none_or(|(from, to)| p.end() > from && p.start() < to)
        };
        let prefix = only.map_or_else(|| self.root.clone(), |p| p.path(&self.root));
        let mut files = Vec::new();
        let mut stream = self.object_store.list(Some(&prefix));
        while let Some(meta) = stream.try_next().await.map_err(|e| self.err(e))? {
            if let Some(partition) = paths::parse_data_file(&self.root, &meta.location)
                && in_range(&partition)
            {
                files.push(DataFile::new(partition, meta));
            }
        }
        // Listed after the data files: a rewrite that committed while they were listed is seen
        // here, so its inputs are hidden.
        let records = self.commit_records().await?;
        if !records.is_empty() {
            files = self.apply_commits(files, &records, &in_range).await?;
        }
        files.sort_by(|a, b| (a.partition, &a.meta.location).cmp(&(b.partition, &b.meta.location)));
        Ok(files)
    }
}
