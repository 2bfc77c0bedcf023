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
    /// The scope configuration is wrong: the user's input. `origin` is the file (or "TOML").
    #[error("scope configuration {origin}: {message}")]
    Scope { origin: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a query failed because a file it planned to read is not there any more (a compaction
/// committed after the file list was taken): planning the statement again reads the new list.
pub fn is_not_found(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    fn dyn_not_found(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(e) = cur {
            if matches!(
                e.downcast_ref::<object_store::Error>(),
                Some(object_store::Error::NotFound { .. })
            ) || e
                .downcast_ref::<auditlake_store::Error>()
                .is_some_and(auditlake_store::Error::is_not_found)
                || e.downcast_ref::<E>().is_some_and(is_not_found)
            {
                return true;
            }
            match e.downcast_ref::<datafusion::parquet::errors::ParquetError>() {
                Some(datafusion::parquet::errors::ParquetError::External(inner))
                    if dyn_not_found(inner.as_ref()) =>
                {
                    return true;
                }
                // The footer fetch keeps only the text of the object store's error
                // ("Failed to fetch metadata for file …: Object Store error: Object at location …
                // not found"): the one shape with no error to downcast.
                Some(datafusion::parquet::errors::ParquetError::General(m))
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
    match e.find_root() {
        E::ObjectStore(o) => matches!(o.as_ref(), object_store::Error::NotFound { .. }),
        E::ParquetError(p) => dyn_not_found(p.as_ref()),
        E::External(x) => dyn_not_found(x.as_ref()),
        _ => false,
    }
}
