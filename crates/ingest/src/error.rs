/// Errors that stop an ingest. Bad events do not: they are rejected and counted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user named an input that does not exist or cannot be read.
    #[error("input {name}: {source}")]
    Input {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// A glob pattern that is not valid.
    #[error("bad pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    /// Writing to the store failed; what was published before stays.
    #[error(transparent)]
    Store(#[from] auditlake_store::Error),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A worker thread died: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
