//! sqllogictest runner: every `testdata/slt/*.slt` file runs against a store built from the
//! `testdata/` fixtures. `cargo test -p auditlake-query --test slt -- --complete` rewrites the
//! expected results (read the diff before committing).
//!
//! Sessions use the compliance scope of `testdata/scope.toml` (CDE and ePHI namespaces, a
//! break-glass account, business hours in Europe/Berlin) so that the controls needing one can be
//! tested.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auditlake_ingest::{IngestOptions, expand_inputs, ingest};
use auditlake_query::{AuditSession, QueryOptions, Scope};
use auditlake_store::Store;
use datafusion::arrow::array::Array;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use sqllogictest::{DBOutput, DefaultColumnType};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SltError(String);

struct Db {
    session: AuditSession,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let err = |e: &dyn std::fmt::Display| SltError(e.to_string());
        let df = self.session.sql(sql).await.map_err(|e| err(&e))?;
        let width = df.schema().fields().len();
        let mut stream = df.execute_stream().await.map_err(|e| err(&e))?;
        let mut rows = Vec::new();
        let opts = FormatOptions::default().with_null("NULL");
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| err(&e))?;
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(&e))?;
            for i in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .zip(batch.columns())
                        .map(|(f, c)| {
                            let s = f.value(i).to_string();
                            if c.is_valid(i) && s.is_empty() {
                                "(empty)".to_owned()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        if width == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "auditlake"
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A store holding every fixture of `testdata/ingest` and `testdata/scenarios`.
fn build_store(dir: &Path, rt: &tokio::runtime::Runtime) -> Store {
    let store = Store::open(dir.to_str().expect("utf-8 temp dir"), &[]).expect("open store");
    let inputs = expand_inputs(&[
        root().join("testdata/ingest").display().to_string(),
        root().join("testdata/scenarios").display().to_string(),
    ])
    .expect("fixtures");
    let opts = IngestOptions {
        cluster: Some("fixtures".into()),
        ..Default::default()
    };
    ingest(&store, &inputs, &opts, Arc::new(()), rt.handle()).expect("ingest fixtures");
    store
}

fn main() {
    let complete = std::env::args().any(|a| a == "--complete");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = build_store(dir.path(), &rt);
    let opts = QueryOptions {
        scope: Scope::load(&root().join("testdata/scope.toml")).expect("testdata/scope.toml"),
        ..Default::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("testdata/slt"))
        .expect("testdata/slt")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| filter.is_empty() || filter.iter().any(|f| p.display().to_string().contains(f)))
        .collect();
    files.sort();
    let mut failed = 0;
    for file in &files {
        let store = store.clone();
        let opts = opts.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let store = store.clone();
            let opts = opts.clone();
            async move {
                let session = AuditSession::open(store, &opts)
                    .await
                    .map_err(|e| SltError(e.to_string()))?;
                Ok(Db { session })
            }
        });
        let result = if complete {
            rt.block_on(runner.update_test_file(
                file,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            ))
            .map_err(|e| e.to_string())
        } else {
            rt.block_on(runner.run_file_async(file))
                .map_err(|e| e.display(true).to_string())
        };
        match result {
            Ok(()) => println!("ok   {}", file.display()),
            Err(e) => {
                failed += 1;
                println!("FAIL {}\n{e}", file.display());
            }
        }
    }
    println!("{} passed, {} failed", files.len() - failed, failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
