/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Store(#[from] auditlake_store::Error),
    /// The request is refused as asked (e.g. retention without a policy).
    #[error("{0}")]
    Refused(String),
    /// A broken invariant: a bug.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A view shipped in `sql/` does not plan: a bug.
    #[error("built-in view {name} does not plan: {source}")]
    View {
        name: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The scope configuration is wrong: the user's input. `origin` is the file (or "TOML").
    #[error("scope configuration {origin}: {message}")]
    Scope { origin: String, message: String },
    /// A compliance control shipped in `sql/compliance/` does not plan: a bug.
    #[error("compliance control {view} does not plan: {source}")]
    Control {
        view: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
