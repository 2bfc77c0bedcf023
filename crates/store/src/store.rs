use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use auditlake_model::time::Micros;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ProjectionMask;
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use url::Url;

use crate::guard::{ReadOnlyUnder, StoreBounds};
use crate::paths::{self, DataFilePath, Partition, RunId, parse_data_file};
use crate::{Error, Result};

/// A store: an object store and the root below which auditlake keeps its files.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) object_store: Arc<dyn ObjectStore>,
    pub(crate) root: Path,
    url: Url,
    local: bool,
}

/// A data file of the store.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub partition: Partition,
    pub meta: ObjectMeta,
}

fn invalid_location(location: &str, reason: String) -> Error {
    Error::InvalidLocation {
        location: location.to_owned(),
        reason,
    }
}

impl Store {
    /// Opens the store at `location`: a local path (created if missing), a `file://` URL, or
    /// `s3://bucket/prefix`. `options` configure the object store (for S3 the `aws_*` keys of
    /// `object_store`, e.g. `aws_endpoint`, `aws_allow_http`, `aws_region`); the caller collects
    /// them, this crate reads no environment.
    pub fn open(location: &str, options: &[(String, String)]) -> Result<Self> {
        let invalid = |reason: String| invalid_location(location, reason);
        let parsed = Url::parse(location).ok().filter(|u| u.scheme().len() > 1);
        match parsed {
            Some(url) if url.scheme() == "s3" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| invalid("no bucket in the URL".into()))?
                    .to_owned();
                let mut b = AmazonS3Builder::new().with_bucket_name(&bucket);
                for (k, v) in options {
                    if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                let s3 = b.build().map_err(|e| invalid(e.to_string()))?;
                let root = Path::from(url.path().trim_matches('/'));
                let mut base = url.clone();
                base.set_path(&format!("/{}", root));
                Ok(Self {
                    object_store: Arc::new(s3),
                    root,
                    url: base,
                    local: false,
                })
            }
            Some(url) if url.scheme() == "file" => {
                let p = url
                    .to_file_path()
                    .map_err(|()| invalid("not a local file URL".into()))?;
                Self::open_local(&p, location)
            }
            Some(url) => Err(invalid(format!(
                "unsupported scheme {:?} (use a path, file:// or s3://)",
                url.scheme()
            ))),
            None => Self::open_local(std::path::Path::new(location), location),
        }
    }

    /// Opens a store that must exist already: for the commands that only read or rewrite it
    /// (`sql`, `report`, `stats`, `export`, maintenance). A local folder that is not there is an
    /// error instead of a new, empty store. (On S3 a prefix has no existence of its own.)
    pub fn open_existing(location: &str, options: &[(String, String)]) -> Result<Self> {
        let parsed = Url::parse(location).ok().filter(|u| u.scheme().len() > 1);
        let local = match &parsed {
            None => Some(std::path::PathBuf::from(location)),
            Some(u) if u.scheme() == "file" => u.to_file_path().ok(),
            Some(_) => None,
        };
        if let Some(p) = local
            && !p.is_dir()
        {
            return Err(Error::NoStore {
                location: location.to_owned(),
            });
        }
        Self::open(location, options)
    }

    fn open_local(p: &std::path::Path, location: &str) -> Result<Self> {
        let invalid = |reason: String| invalid_location(location, reason);
        std::fs::create_dir_all(p).map_err(|e| invalid(format!("cannot create folder: {e}")))?;
        let abs = std::fs::canonicalize(p).map_err(|e| invalid(e.to_string()))?;
        let root = Path::from_absolute_path(&abs).map_err(|e| invalid(e.to_string()))?;
        let url = Url::from_directory_path(&abs).map_err(|()| invalid("not absolute".into()))?;
        Ok(Self {
            object_store: Arc::new(LocalFileSystem::new()),
            root,
            url,
            local: true,
        })
    }

    /// The object store holding the files (for DataFusion registration).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.object_store)
    }

    /// The object store as the query engine gets it: reads pass, and every write below the
    /// store's root is refused ([`crate::guard`]).
    pub fn read_only_object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(ReadOnlyUnder::new(self.object_store(), self.bounds()))
    }

    /// Where the store's files are, for deciding whether a location lies inside the store.
    pub fn bounds(&self) -> StoreBounds {
        // The folder as the local filesystem maps the root (percent-decoded), canonical since
        // `open_local` canonicalized it.
        let local = self.local.then(|| {
            LocalFileSystem::new()
                .path_to_filesystem(&self.root)
                .unwrap_or_else(|_| std::path::PathBuf::from(format!("/{}", self.root)))
        });
        StoreBounds::new(self.root.clone(), local)
    }

    /// The root below which the store's files are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's URL, ending in `/` (`file:///srv/audit/`, `s3://bucket/prefix/`).
    pub fn url(&self) -> Url {
        let mut u = self.url.clone();
        if !u.path().ends_with('/') {
            let p = format!("{}/", u.path());
            u.set_path(&p);
        }
        u
    }

    /// The URL of the object store alone (scheme and bucket), for registering it.
    pub fn object_store_url(&self) -> Url {
        let mut u = self.url.clone();
        u.set_path("/");
        u
    }

    pub fn is_local(&self) -> bool {
        self.local
    }

    pub(crate) fn err(&self, source: object_store::Error) -> Error {
        Error::ObjectStore {
            url: self.url.to_string(),
            source,
        }
    }

    /// Data files, optionally only those of partitions overlapping `[from, to)`, ordered by
    /// partition then name. This is the one place that decides which files readers see: the
    /// files below `date=…/`, minus those that a commit record replaces, plus the outputs of a
    /// committed rewrite that is not rolled forward yet (see [`crate::commit`]).
    pub async fn list_data_files(&self, range: Option<(Micros, Micros)>) -> Result<Vec<DataFile>> {
        self.visible_files(None, range).await
    }

    async fn visible_files(
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
            if let Some(partition) = parse_data_file(&self.root, &meta.location)
                && in_range(&partition)
            {
                files.push(DataFile { partition, meta });
            }
        }
        // Listed after the data files: a rewrite that committed while they were listed is seen
        // here (records outlive their roll-forward by a grace period), so its inputs are hidden.
        let records = self.commit_records().await?;
        if !records.is_empty() {
            files = self.apply_commits(files, &records, &in_range).await?;
        }
        files.sort_by(|a, b| (a.partition, &a.meta.location).cmp(&(b.partition, &b.meta.location)));
        Ok(files)
    }

    /// Data files grouped by partition.
    pub async fn partitions(
        &self,
        range: Option<(Micros, Micros)>,
    ) -> Result<BTreeMap<Partition, Vec<DataFile>>> {
        let mut out: BTreeMap<Partition, Vec<DataFile>> = BTreeMap::new();
        for f in self.list_data_files(range).await? {
            out.entry(f.partition).or_default().push(f);
        }
        Ok(out)
    }

    /// The data files of one partition.
    pub async fn partition_files(&self, partition: &Partition) -> Result<Vec<DataFile>> {
        self.visible_files(Some(partition), None).await
    }

    /// Reads a data file, only the named columns when `columns` is given.
    pub async fn read_file(
        &self,
        file: &DataFile,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>> {
        let path = file.meta.location.to_string();
        let pq = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        // Deprecated in parquet 59 in favour of a hand-written AsyncFileReader; it still does
        // exactly what is needed here (ranged reads of footer and column chunks).
        #[allow(deprecated)]
        let reader = ParquetObjectReader::new(self.object_store(), file.meta.location.clone())
            .with_file_size(file.meta.size);
        let mut builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(pq)?
            .with_batch_size(64 * 1024);
        if let Some(columns) = columns {
            let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
            builder = builder.with_projection(mask);
        }
        let stream = builder.build().map_err(pq)?;
        stream.try_collect().await.map_err(pq)
    }

    /// The Parquet footer of a data file: row counts and column statistics, no data.
    pub async fn file_metadata(
        &self,
        file: &DataFile,
    ) -> Result<Arc<parquet::file::metadata::ParquetMetaData>> {
        let pq = |source| Error::Parquet {
            path: file.meta.location.to_string(),
            source,
        };
        #[allow(deprecated)]
        let reader = ParquetObjectReader::new(self.object_store(), file.meta.location.clone())
            .with_file_size(file.meta.size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(pq)?;
        Ok(Arc::clone(builder.metadata()))
    }

    /// Publishes a finished Parquet file so that it appears whole or not at all.
    pub async fn publish_data_file(
        &self,
        partition: &Partition,
        run: &RunId,
        seq: u32,
        bytes: Vec<u8>,
    ) -> Result<DataFilePath> {
        let target = DataFilePath::new(&self.root, partition, run, seq);
        let payload = PutPayload::from(Bytes::from(bytes));
        if self.local {
            let staging = paths::staging_path(&self.root, run, seq);
            self.object_store
                .put(&staging, payload)
                .await
                .map_err(|e| self.err(e))?;
            self.object_store
                .rename(&staging, target.path())
                .await
                .map_err(|e| self.err(e))?;
        } else {
            self.object_store
                .put(target.path(), payload)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(target)
    }

    /// Writes an object below the root (reports written to an object-store prefix) and returns how
    /// to show its location.
    pub async fn put_object(&self, name: &str, bytes: Vec<u8>) -> Result<String> {
        let path = paths::from_relative(&self.root, name);
        self.object_store
            .put(&path, PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|e| self.err(e))?;
        Ok(self.display_path(&path))
    }

    /// Writes one part of the rejected-events area.
    pub async fn put_rejected(&self, run: &RunId, seq: u32, bytes: Vec<u8>) -> Result<String> {
        let path = paths::rejected_path(&self.root, run, seq);
        self.object_store
            .put(&path, PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|e| self.err(e))?;
        Ok(self.display_path(&path))
    }

    /// How a path of the store is shown to a person: a local path, or a URL.
    pub fn display_path(&self, path: &Path) -> String {
        if self.local {
            format!("/{path}")
        } else {
            let mut u = self.object_store_url();
            u.set_path(&format!("/{path}"));
            u.to_string()
        }
    }

    /// All parts of the rejected-events area.
    pub async fn rejected_files(&self) -> Result<Vec<ObjectMeta>> {
        let dir = paths::rejected_dir(&self.root);
        let mut v: Vec<ObjectMeta> = self
            .object_store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// Reads a whole object (rejected parts, config).
    pub async fn get_bytes(&self, path: &Path) -> Result<Bytes> {
        let r = self.object_store.get(path).await.map_err(|e| self.err(e))?;
        r.bytes().await.map_err(|e| self.err(e))
    }
}
