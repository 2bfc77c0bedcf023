/// Errors of the compliance layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The scope configuration is wrong: the user's input. `origin` is the file (or "TOML").
    #[error("scope configuration {origin}: {message}")]
    Scope { origin: String, message: String },
    /// The report cannot be made as asked (an empty window, an unknown framework).
    #[error("{0}")]
    Refused(String),
    /// A query of the evaluation failed; `what` names the control or the step.
    #[error("{what}: {source}")]
    Query {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot render the report: {0}")]
    Render(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
