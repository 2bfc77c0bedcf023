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
use crate::log::{NewFile, SnapshotCache};
use crate::paths::{self, DataFilePath, Partition, RunId};
use crate::{Error, Result};

/// A store: an object store and the root below which auditlake keeps its files.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) object_store: Arc<dyn ObjectStore>,
    pub(crate) root: Path,
    url: Url,
    local: bool,
    pub(crate) snapshots: Arc<SnapshotCache>,
    /// Set once this process has seen that the table's schema has every column it writes.
    pub(crate) schema_checked: Arc<std::sync::atomic::AtomicBool>,
    /// Signs the digest of every commit this process makes (`--signing-key`).
    pub(crate) signer: Option<Arc<crate::integrity::Signer>>,
}

/// A data file of the store.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub partition: Partition,
    pub meta: ObjectMeta,
    /// Rows, when the log says (it does for every file it added).
    pub rows: Option<u64>,
    /// The smallest and largest `ts`, when the log says (the largest rounded up to the next
    /// millisecond, as Delta statistics keep milliseconds).
    pub ts_range: Option<(Micros, Micros)>,
}

impl DataFile {
    pub fn new(partition: Partition, meta: ObjectMeta) -> Self {
        Self {
            partition,
            meta,
            rows: None,
            ts_range: None,
        }
    }

    /// Whether the file may hold events in `[from, to)`.
    pub fn overlaps(&self, (from, to): (Micros, Micros)) -> bool {
        self.partition.end() > from
            && self.partition.start() < to
            && self.ts_range.is_none_or(|(lo, hi)| hi >= from && lo < to)
    }
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
                    snapshots: Arc::default(),
                    schema_checked: Arc::default(),
                    signer: None,
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
            snapshots: Arc::default(),
            schema_checked: Arc::default(),
            signer: None,
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

    /// The live data files of the table's latest version, optionally only those that may hold
    /// events in `[from, to)`, ordered by partition then name (see [`crate::log`]).
    pub async fn list_data_files(&self, range: Option<(Micros, Micros)>) -> Result<Vec<DataFile>> {
        Ok(self.snapshot(None).await?.files_in(range))
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
        let files = self.snapshot(None).await?.files;
        Ok(files
            .iter()
            .filter(|f| &f.partition == partition)
            .cloned()
            .collect())
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

    /// Writes a finished Parquet file to its path in its partition, for a commit to add. Until
    /// then no reader of the table sees it (a PUT, and a local file, appear whole or not at
    /// all); if the commit never comes, [`Store::vacuum`] deletes it after the grace period.
    pub async fn write_data_file(
        &self,
        partition: &Partition,
        run: &RunId,
        seq: u32,
        bytes: Vec<u8>,
        rows: u64,
        ts_range: (Micros, Micros),
    ) -> Result<NewFile> {
        let target = DataFilePath::new(&self.root, partition, run, seq);
        // Hashed from memory, before the upload: the digest costs no second read.
        let sha256 = crate::integrity::sha256_hex(&bytes);
        let size = bytes.len() as u64;
        self.object_store
            .put(target.path(), PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|e| self.err(e))?;
        Ok(NewFile {
            path: target.path().clone(),
            partition: *partition,
            size,
            rows,
            ts_range,
            sha256,
        })
    }

    /// The key this handle signs with, if any.
    pub fn signer(&self) -> Option<&crate::integrity::Signer> {
        self.signer.as_deref()
    }

    /// Signs the digest of every commit made through this handle.
    pub fn with_signer(mut self, signer: crate::integrity::Signer) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Deletes a data file that no commit added (a writer's own, after it lost a conflict).
    pub async fn delete_uncommitted(&self, path: &Path) -> Result<()> {
        self.delete_if_exists(path).await
    }

    /// Deletes parts of the rejected-events area (retention ages them like data).
    pub async fn delete_rejected(&self, parts: &[ObjectMeta]) -> Result<()> {
        for p in parts {
            self.delete_if_exists(&p.location).await?;
        }
        Ok(())
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
        self.list_sorted(&paths::rejected_dir(&self.root)).await
    }

    /// The objects below a folder of the store given relative to its root (`_evidence`), sorted.
    pub async fn list_objects(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        self.list_sorted(&paths::from_relative(&self.root, rel))
            .await
    }

    /// The objects below `dir`, sorted by location.
    async fn list_sorted(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        let mut v: Vec<ObjectMeta> = self
            .object_store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// Deletes objects of the store (ones [`Store::list_objects`] returned).
    pub async fn delete_objects(&self, objects: &[ObjectMeta]) -> Result<()> {
        for o in objects {
            self.delete_if_exists(&o.location).await?;
        }
        Ok(())
    }

    /// Reads a whole object (rejected parts, config).
    pub async fn get_bytes(&self, path: &Path) -> Result<Bytes> {
        let r = self.object_store.get(path).await.map_err(|e| self.err(e))?;
        r.bytes().await.map_err(|e| self.err(e))
    }
}
