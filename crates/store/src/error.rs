use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// Errors of the store. Variants say whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user gave a store location that cannot be used.
    #[error("invalid store location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
    /// A command that reads the store was pointed at a local folder that does not exist (a typo,
    /// most often): an empty answer would look like "no events".
    #[error("no store at {location}; create one with `auditlake ingest`")]
    NoStore { location: String },
    /// The object store (disk, network, credentials) failed.
    #[error("store {url}: {source}")]
    ObjectStore {
        url: String,
        #[source]
        source: object_store::Error,
    },
    /// A stored file could not be read or written as Parquet.
    #[error("parquet file {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: ParquetError,
    },
    /// A stored file does not have the expected columns (written by something else?).
    #[error("file {path}: {reason}")]
    BadFile { path: String, reason: String },
    /// A commit record that cannot be honoured.
    #[error("commit record {path}: {reason}")]
    Commit { path: String, reason: String },
    /// The transaction log cannot be read or written as the Delta protocol says.
    #[error("transaction log {path}: {reason}")]
    Log { path: String, reason: String },
    /// A commit lost to another writer's, in a way it cannot resolve by retrying.
    #[error("commit conflict: {0}")]
    Conflict(String),
    /// A state of the table that cannot be read (`--as-of` before the history, or after it).
    #[error("as of {0}")]
    AsOf(String),
    /// A signing or public key that cannot be read.
    #[error("key {0}")]
    Key(String),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the error is an object that is not there (any more): a file that a listing
    /// showed and a compaction then removed. Readers list again and retry.
    pub fn is_not_found(&self) -> bool {
        is_not_found_error(self)
    }
}

/// Whether an error, or one it was caused by, is an object store's NotFound, in every shape the
/// object store, parquet and DataFusion give it.
pub fn is_not_found_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = cur {
        if matches!(
            e.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        ) {
            return true;
        }
        match e.downcast_ref::<ParquetError>() {
            Some(ParquetError::External(inner)) if is_not_found_error(inner.as_ref()) => {
                return true;
            }
            // Some footer fetches keep only the text of the object store's error ("Failed to
            // fetch metadata for file …: Object Store error: Object at location … not found"):
            // the one shape with no error to downcast.
            Some(ParquetError::General(m))
                if m.contains("Object Store error: Object at location")
                    && m.contains("not found") =>
            {
                return true;
            }
            _ => {}
        }
        cur = e.source();
    }
    false
}
