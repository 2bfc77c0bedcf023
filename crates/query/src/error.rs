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
    /// The scope, a control or a report (the compliance crate).
    #[error(transparent)]
    Compliance(#[from] auditlake_compliance::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a query failed because a file it planned to read is not there any more (a compaction
/// committed after the file list was taken): planning the statement again reads the new list.
pub fn is_not_found(e: &datafusion::error::DataFusionError) -> bool {
    auditlake_store::is_not_found_error(e.find_root())
}
