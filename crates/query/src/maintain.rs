//! Store maintenance: compaction and retention, both rewrites under the commit protocol of
//! [`auditlake_store::commit`], one run at a time (the store's maintenance lock).
//!
//! - [`compact`] merges the small files of a day (frequent ingests make many) into files of a
//!   target size: a streaming merge of the inputs, which are each sorted by `ts`, so memory is a
//!   batch per input plus the output file being encoded.
//! - [`retain`] deletes days older than a maximum age and slims days older than another age to
//!   Metadata level: request and response bodies dropped, who, what, when and outcome kept, and
//!   bit `SLIMMED` set in `shape_flags`.

use std::sync::Arc;

use auditlake_model::audit_events_schema;
use auditlake_model::schema::col;
use auditlake_model::schema::flags::SLIMMED;
use auditlake_model::time::Micros;
use auditlake_store::commit::{Lock, Recovery, StagedFile};
use auditlake_store::{DataFile, FileEncoder, Partition, RunId, Store, WriteOptions};
use datafusion::arrow::array::{Array, ArrayRef, Int32Array, RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, kernels::bitwise::bitwise_or_scalar};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::{Error, Result};

/// How compaction and retention rewrite files.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// Files are closed once they reach this size; smaller files of a day are merged.
    pub target_file_bytes: usize,
    /// At most this many files are merged at once (each holds a batch in memory).
    pub max_inputs: usize,
    pub write: WriteOptions,
    /// Only days overlapping `[from, to)`.
    pub range: Option<(Micros, Micros)>,
    /// Say what would be done, change nothing.
    pub dry_run: bool,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 << 20,
            max_inputs: 64,
            write: WriteOptions::default(),
            range: None,
            dry_run: false,
        }
    }
}

/// What a compaction did (or would do, on a dry run).
#[derive(Debug, Default, Clone)]
pub struct CompactSummary {
    pub days: usize,
    pub files_before: usize,
    pub files_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub rows: u64,
    pub recovery: Recovery,
}

/// Retention settings: both optional, but [`retain`] refuses to run with neither.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionPolicy {
    /// Days entirely older than this are deleted.
    pub max_age: Option<chrono::TimeDelta>,
    /// Days entirely older than this are slimmed to Metadata level.
    pub slim_after: Option<chrono::TimeDelta>,
}

/// What a retention run did (or would do).
#[derive(Debug, Default, Clone)]
pub struct RetainSummary {
    pub deleted_days: Vec<String>,
    pub deleted_files: usize,
    pub deleted_rows: u64,
    pub deleted_bytes: u64,
    pub slimmed_days: Vec<String>,
    pub slimmed_rows: u64,
    pub bytes_before_slimming: u64,
    pub bytes_after_slimming: u64,
    /// Parts of the rejected-events area older than the maximum age, deleted.
    pub deleted_rejected: usize,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Compact,
    Slim,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Compact => "compact",
            Self::Slim => "slim",
        }
    }
}

/// Runs `f` holding the store's maintenance lock, after completing what dead runs left.
async fn locked<T, F>(store: &Store, command: &str, f: F) -> Result<T>
where
    F: AsyncFnOnce(&RunId, &Lock, Recovery) -> Result<T>,
{
    let run = RunId::new();
    let lock = store.lock(&run, command).await?;
    let result = match store.recover(&lock).await {
        Ok(recovery) => f(&run, &lock, recovery).await,
        Err(e) => Err(e.into()),
    };
    let released = store.unlock(lock).await;
    let out = result?;
    released?;
    Ok(out)
}

/// Merges the small files of each day into files of about `target_file_bytes`.
pub async fn compact(store: &Store, opts: &RewriteOptions) -> Result<CompactSummary> {
    locked(store, "compact", async |run, _lock, recovery| {
        let mut summary = CompactSummary {
            recovery,
            ..Default::default()
        };
        let mut seq = 0u32;
        let small = (opts.target_file_bytes as u64) * 3 / 4;
        for (partition, files) in store.partitions(opts.range).await? {
            let inputs: Vec<DataFile> = files.into_iter().filter(|f| f.meta.size < small).collect();
            if inputs.len() < 2 {
                continue;
            }
            summary.days += 1;
            summary.files_before += inputs.len();
            summary.bytes_before += inputs.iter().map(|f| f.meta.size).sum::<u64>();
            if opts.dry_run {
                continue;
            }
            for chunk in inputs.chunks(opts.max_inputs.max(2)) {
                let out = rewrite(
                    store,
                    run,
                    &mut seq,
                    &partition,
                    chunk,
                    Action::Compact,
                    opts,
                )
                .await?;
                summary.files_after += out.len();
                summary.bytes_after += out.iter().map(|f| f.bytes).sum::<u64>();
                summary.rows += out.iter().map(|f| f.rows).sum::<u64>();
            }
        }
        Ok(summary)
    })
    .await
}

/// Applies a retention policy as of `now`: deletes days older than `max_age`, slims days older
/// than `slim_after`. Refuses a policy that sets neither.
pub async fn retain(
    store: &Store,
    policy: &RetentionPolicy,
    now: Micros,
    opts: &RewriteOptions,
) -> Result<RetainSummary> {
    if policy.max_age.is_none() && policy.slim_after.is_none() {
        return Err(Error::Refused(
            "no retention policy: set `max_age` (and/or `slim_after`) under [retention] in the \
             config file, or pass --max-age / --slim-after"
                .into(),
        ));
    }
    let micros = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX);
    let delete_before = policy.max_age.map(|a| now.saturating_sub(micros(a)));
    let slim_before = policy.slim_after.map(|a| now.saturating_sub(micros(a)));
    locked(store, "retain", async |run, lock, recovery| {
        let mut summary = RetainSummary {
            recovery,
            ..Default::default()
        };
        let mut seq = 0u32;
        for (partition, files) in store.partitions(None).await? {
            if delete_before.is_some_and(|t| partition.end() <= t) {
                let mut rows = 0u64;
                for f in &files {
                    rows += store.file_metadata(f).await?.file_metadata().num_rows() as u64;
                }
                summary.deleted_days.push(partition.date());
                summary.deleted_files += files.len();
                summary.deleted_rows += rows;
                summary.deleted_bytes += files.iter().map(|f| f.meta.size).sum::<u64>();
                if !opts.dry_run {
                    store.delete_files(lock, &files).await?;
                }
                continue;
            }
            if slim_before.is_some_and(|t| partition.end() <= t) {
                let mut fat = Vec::new();
                for f in &files {
                    if has_bodies(store, f).await? {
                        fat.push(f.clone());
                    }
                }
                if fat.is_empty() {
                    continue;
                }
                summary.slimmed_days.push(partition.date());
                summary.bytes_before_slimming += fat.iter().map(|f| f.meta.size).sum::<u64>();
                if opts.dry_run {
                    continue;
                }
                for chunk in fat.chunks(opts.max_inputs.max(1)) {
                    let out = rewrite(store, run, &mut seq, &partition, chunk, Action::Slim, opts)
                        .await?;
                    summary.bytes_after_slimming += out.iter().map(|f| f.bytes).sum::<u64>();
                    summary.slimmed_rows += out.iter().map(|f| f.rows).sum::<u64>();
                }
            }
        }
        // Rejected input is aged by the same rule as the days it would have gone to.
        if let Some(t) = delete_before {
            let old: Vec<_> = store
                .rejected_files()
                .await?
                .into_iter()
                .filter(|m| m.last_modified.timestamp_micros() < t)
                .collect();
            summary.deleted_rejected = old.len();
            if !opts.dry_run && !old.is_empty() {
                store.delete_rejected(lock, &old).await?;
            }
        }
        Ok(summary)
    })
    .await
}

/// Whether any row of a file still has a request or response body (from the footer's null
/// counts; no data is read).
async fn has_bodies(store: &Store, file: &DataFile) -> Result<bool> {
    let meta = store.file_metadata(file).await?;
    let schema = meta.file_metadata().schema_descr();
    let idx: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| {
            let c = schema.column(i);
            c.name() == col::REQUEST_OBJECT || c.name() == col::RESPONSE_OBJECT
        })
        .collect();
    for rg in meta.row_groups() {
        for &i in &idx {
            let nulls = rg
                .column(i)
                .statistics()
                .and_then(|s| s.null_count_opt())
                .map(|n| n as i64);
            // No statistics: assume bodies, the rewrite will tell.
            if nulls.is_none_or(|n| n < rg.num_rows()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Replaces `inputs` (files of one day) with their rows merged by `ts` into files of the target
/// size, slimmed for [`Action::Slim`], and commits the replacement.
async fn rewrite(
    store: &Store,
    run: &RunId,
    seq: &mut u32,
    partition: &Partition,
    inputs: &[DataFile],
    action: Action,
    opts: &RewriteOptions,
) -> Result<Vec<StagedFile>> {
    let schema = audit_events_schema();
    let runtime = RuntimeEnvBuilder::new().build_arc()?;
    let config = SessionConfig::new()
        .with_target_partitions(inputs.len().max(1))
        .with_batch_size(4096);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let url = ObjectStoreUrl::parse(store.object_store_url().as_str())?;
    ctx.register_object_store(url.as_ref(), store.object_store());

    // One group per input: each is sorted by ts, so a merge (no sort) orders them all.
    let groups: Vec<FileGroup> = inputs
        .iter()
        .map(|f| FileGroup::new(vec![PartitionedFile::new_from_meta(f.meta.clone())]))
        .collect();
    let ts_idx = schema.index_of(col::TS)?;
    let ordering = LexOrdering::new(vec![PhysicalSortExpr::new(
        Arc::new(Column::new(col::TS, ts_idx)),
        datafusion::arrow::compute::SortOptions {
            descending: false,
            nulls_first: false,
        },
    )])
    .ok_or_else(|| Error::Internal("empty ordering".into()))?;
    let format = ParquetFormat::default();
    let source = format.file_source(TableSchema::from(Arc::clone(&schema)));
    let scan_config = FileScanConfigBuilder::new(url, source)
        .with_file_groups(groups)
        .with_output_ordering(vec![ordering.clone()])
        .build();
    let scan = format
        .create_physical_plan(&ctx.state(), scan_config)
        .await?;
    let merged = Arc::new(SortPreservingMergeExec::new(ordering, scan));
    let mut stream = execute_stream(merged, ctx.task_ctx())?;

    let mut staged = Vec::new();
    let mut enc: Option<FileEncoder> = None;
    while let Some(batch) = stream.next().await {
        let batch = conform(&schema, &batch?, action)?;
        let e = match &mut enc {
            Some(e) => e,
            None => enc.insert(FileEncoder::new(
                &opts.write,
                opts.target_file_bytes.min(64 << 20),
            )?),
        };
        e.write(&batch)?;
        if e.size() >= opts.target_file_bytes
            && let Some(done) = enc.take()
        {
            staged.push(stage(store, partition, run, seq, done).await?);
        }
    }
    if let Some(done) = enc.take() {
        staged.push(stage(store, partition, run, seq, done).await?);
    }
    let rows_in: u64 = {
        let mut n = 0;
        for f in inputs {
            n += store.file_metadata(f).await?.file_metadata().num_rows() as u64;
        }
        n
    };
    let rows_out: u64 = staged.iter().map(|s| s.rows).sum();
    if rows_in != rows_out {
        return Err(Error::Internal(format!(
            "rewrite of {partition} read {rows_out} rows from files holding {rows_in}; nothing \
             was committed"
        )));
    }
    auditlake_store::commit::failpoint("before-commit");
    store
        .commit_rewrite(run, action.name(), partition, inputs, &staged)
        .await?;
    Ok(staged)
}

async fn stage(
    store: &Store,
    partition: &Partition,
    run: &RunId,
    seq: &mut u32,
    enc: FileEncoder,
) -> Result<StagedFile> {
    *seq += 1;
    let rows = enc.rows();
    let bytes = enc.finish()?;
    Ok(store.stage_file(partition, run, *seq, bytes, rows).await?)
}

/// The batch with the store's exact column types (a reader may hand out views), slimmed if asked.
fn conform(schema: &SchemaRef, batch: &RecordBatch, action: Action) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let c = batch.column_by_name(field.name()).ok_or_else(|| {
            Error::Internal(format!("rewrite input without column {}", field.name()))
        })?;
        let c = if action == Action::Slim
            && (field.name() == col::REQUEST_OBJECT || field.name() == col::RESPONSE_OBJECT)
        {
            new_null_array(field.data_type(), c.len())
        } else if action == Action::Slim && field.name() == col::SHAPE_FLAGS {
            let flags = cast(c, field.data_type())?;
            let flags = flags
                .as_any()
                .downcast_ref::<Int32Array>()
                .ok_or_else(|| Error::Internal("shape_flags is not Int32".into()))?;
            Arc::new(bitwise_or_scalar(flags, SLIMMED)?)
        } else if c.data_type() == field.data_type() {
            Arc::clone(c)
        } else {
            cast(c, field.data_type())?
        };
        columns.push(c);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
