use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// Errors of the store. Variants say whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user gave a store location that cannot be used.
    #[error("invalid store location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
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
    /// Another maintenance run holds the store's lock.
    #[error(
        "the store is locked by {holder} ({path}); if that run is dead, delete the lock, or wait until it goes stale after 6 hours"
    )]
    Locked { path: String, holder: String },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
