//! The store as readers see it: an object store that refuses every write below the store's root.
//!
//! The query engine gets this wrapper, never the store's own object store, so that no SQL
//! statement, whatever plan shape or spelling it takes, can put, delete, copy over or rename a
//! file of the store. The checks of the SQL layer (plan walk, canonical locations) give the clear
//! error message; this is what holds when one of them misses a case.
//!
//! A location is judged after resolution: on a local disk the path is resolved component by
//! component, following symlinks and `..` as the kernel would, and compared with the store's
//! canonical root; on S3 the key is compared with the store's prefix, segment by segment.

use std::fmt;
use std::ops::Range;
use std::path::{Component, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Where a store's files are, for deciding whether a location lies inside it.
#[derive(Debug, Clone)]
pub struct StoreBounds {
    /// The root as an object-store path (`srv/audit` for `/srv/audit`, `prefix` for
    /// `s3://bucket/prefix`).
    root: Path,
    /// The canonical local folder, for a store on the local disk.
    local: Option<PathBuf>,
}

impl StoreBounds {
    pub(crate) fn new(root: Path, local: Option<PathBuf>) -> Self {
        Self { root, local }
    }

    /// Whether `location` (a path of the store's own object store) is the root or below it,
    /// once resolved.
    pub fn contains(&self, location: &Path) -> bool {
        if self.root.as_ref().is_empty() || location.prefix_matches(&self.root) {
            return true;
        }
        match &self.local {
            // The file the local filesystem would write, as it maps the path (percent-decoding
            // each part); a path it cannot map is treated as inside (fail closed).
            Some(root) => match LocalFileSystem::new().path_to_filesystem(location) {
                Ok(fs) => resolve(&fs).starts_with(root),
                Err(_) => true,
            },
            None => false,
        }
    }

    /// Whether a local filesystem path lies inside a local store, after symlinks and `..`.
    pub fn contains_local_path(&self, path: &std::path::Path) -> bool {
        match &self.local {
            Some(root) => resolve(path).starts_with(root),
            None => false,
        }
    }
}

/// Resolves an absolute path as the kernel would reach it: each existing prefix is canonicalized
/// (symlinks followed), `..` goes up from where the symlinks led, and the part that does not exist
/// yet is appended as written.
pub fn resolve(path: &std::path::Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => {
                out.push(part);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    out
}

/// An object store through which nothing below a store's root can be written.
#[derive(Debug)]
pub struct ReadOnlyUnder {
    inner: Arc<dyn ObjectStore>,
    bounds: StoreBounds,
}

impl ReadOnlyUnder {
    pub fn new(inner: Arc<dyn ObjectStore>, bounds: StoreBounds) -> Self {
        Self { inner, bounds }
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        if self.bounds.contains(location) {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "the audit store is read-only here: only `auditlake ingest` and its maintenance commands write to it".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for ReadOnlyUnder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadOnlyUnder({}, {})", self.bounds.root, self.inner)
    }
}

#[async_trait]
impl ObjectStore for ReadOnlyUnder {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let bounds = self.bounds.clone();
        let checked = locations
            .map(move |l| {
                let l = l?;
                if bounds.contains(&l) {
                    return Err(object_store::Error::PermissionDenied {
                        path: l.to_string(),
                        source: "the audit store is read-only here".into(),
                    });
                }
                Ok(l)
            })
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn refuses_writes_below_the_root_whatever_the_path_and_allows_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("store");
        std::fs::create_dir_all(root.join("date=2026-03-19")).unwrap();
        std::os::unix::fs::symlink(&root, root.parent().unwrap().join("link")).unwrap();
        let bounds = StoreBounds::new(Path::from_absolute_path(&root).unwrap(), Some(root.clone()));
        let ro = ReadOnlyUnder::new(Arc::new(LocalFileSystem::new()), bounds);
        let base = root.parent().unwrap();
        for p in [
            root.join("date=2026-03-19/x.parquet"),
            root.join("_commits/x.json"),
            base.join("link/date=2026-03-19/x.parquet"),
            base.join("link/new/x.parquet"),
        ] {
            let path = Path::from_absolute_path(&p).unwrap();
            let err = ro
                .put(&path, PutPayload::from_static(b"x"))
                .await
                .expect_err("refused");
            assert!(
                matches!(err, object_store::Error::PermissionDenied { .. }),
                "{err}"
            );
            assert!(!p.exists(), "{}", p.display());
        }
        let outside = Path::from_absolute_path(base.join("out.csv")).unwrap();
        ro.put(&outside, PutPayload::from_static(b"x"))
            .await
            .unwrap();
        let inside = Path::from_absolute_path(root.join("date=2026-03-19/y")).unwrap();
        assert!(ro.copy(&outside, &inside).await.is_err());
        assert!(ro.rename(&outside, &inside).await.is_err());
        assert!(ro.delete(&inside).await.is_err());
    }
}
