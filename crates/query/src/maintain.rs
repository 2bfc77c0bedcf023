//! Store maintenance: compaction and retention, each change one commit to the store's
//! transaction log ([`auditlake_store::log`]). Runs need no lock: two compactions of the same day
//! race, one commits and the other finds its inputs removed and gives its day up; appends that
//! ingests commit meanwhile are untouched.
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
use auditlake_store::log::{DEFAULT_VACUUM_GRACE, VacuumSummary, failpoint};
use auditlake_store::{
    Commit, CommitKind, DataFile, FileEncoder, NewFile, Partition, RunId, Store, Version,
    WriteOptions,
};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, new_null_array,
};
use datafusion::arrow::compute::filter_record_batch;
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
    /// Files that a commit removed are deleted this long after (see [`Store::vacuum`]).
    pub vacuum_grace: chrono::TimeDelta,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 << 20,
            max_inputs: 64,
            write: WriteOptions::default(),
            range: None,
            dry_run: false,
            vacuum_grace: DEFAULT_VACUUM_GRACE,
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
    /// Exact copies of an event found in a day and dropped (a store is not meant to hold any:
    /// defence in depth).
    pub duplicates: u64,
    /// Rewrites given up because another run removed their inputs first.
    pub conflicts: usize,
    /// The table version after the run.
    pub version: Option<Version>,
    pub vacuum: VacuumSummary,
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
    /// Files of the evidence reports kept (`_evidence/`) of days older than the maximum age.
    pub deleted_kept: usize,
    /// Slimming rewrites given up because another run removed their inputs first.
    pub conflicts: usize,
    pub version: Option<Version>,
    pub vacuum: VacuumSummary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Compact,
    Slim,
}

impl Action {
    fn kind(self) -> CommitKind {
        match self {
            Self::Compact => CommitKind::Compact,
            Self::Slim => CommitKind::Slim,
        }
    }
}

/// The state a maintenance run carries from one rewrite to the next: its run ID, the sequence
/// number of its output files, and the table version it has read up to.
struct Rewriter<'a> {
    store: &'a Store,
    run: RunId,
    seq: u32,
    version: Version,
}

impl<'a> Rewriter<'a> {
    /// Starts a run on the table's latest version (the table is created first if need be, except
    /// on a dry run, which changes nothing), and returns the snapshot it starts from.
    async fn start(store: &'a Store, dry_run: bool) -> Result<(Self, auditlake_store::Snapshot)> {
        let created = if dry_run {
            0
        } else {
            store.ensure_table().await?
        };
        let snapshot = store.snapshot(None).await?;
        let version = snapshot.version.unwrap_or(created).max(created);
        Ok((
            Self {
                store,
                run: RunId::new(),
                seq: 0,
                version,
            },
            snapshot,
        ))
    }

    async fn rewrite(
        &mut self,
        partition: &Partition,
        inputs: &[DataFile],
        action: Action,
        opts: &RewriteOptions,
    ) -> Result<Rewritten> {
        rewrite(
            self.store,
            &self.run,
            &mut self.seq,
            &mut self.version,
            partition,
            inputs,
            action,
            opts,
        )
        .await
    }
}

/// What one rewrite of a chunk of a day's files came to.
enum Rewritten {
    Committed {
        outputs: Vec<NewFile>,
        duplicates: u64,
    },
    /// Another run removed an input first; the outputs were deleted.
    Conflict,
}

/// Merges the small files of each day into files of about `target_file_bytes`.
pub async fn compact(store: &Store, opts: &RewriteOptions) -> Result<CompactSummary> {
    let (mut run, snapshot) = Rewriter::start(store, opts.dry_run).await?;
    let mut summary = CompactSummary::default();
    let small = (opts.target_file_bytes as u64) * 3 / 4;
    for (partition, files) in by_partition(snapshot.files_in(opts.range)) {
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
            match run
                .rewrite(&partition, chunk, Action::Compact, opts)
                .await?
            {
                Rewritten::Committed {
                    outputs,
                    duplicates,
                } => {
                    summary.files_after += outputs.len();
                    summary.bytes_after += outputs.iter().map(|f| f.size).sum::<u64>();
                    summary.rows += outputs.iter().map(|f| f.rows).sum::<u64>();
                    summary.duplicates += duplicates;
                }
                Rewritten::Conflict => summary.conflicts += 1,
            }
        }
    }
    summary.version = Some(run.version);
    if !opts.dry_run {
        summary.vacuum = store.vacuum(opts.vacuum_grace, false).await?;
        store.checkpoint_latest().await?;
    }
    Ok(summary)
}

fn by_partition(files: Vec<DataFile>) -> std::collections::BTreeMap<Partition, Vec<DataFile>> {
    let mut out: std::collections::BTreeMap<Partition, Vec<DataFile>> = Default::default();
    for f in files {
        out.entry(f.partition).or_default().push(f);
    }
    out
}

/// Rows of a file, from the log or else its footer.
async fn file_rows(store: &Store, f: &DataFile) -> Result<u64> {
    Ok(match f.rows {
        Some(n) => n,
        None => store
            .file_metadata(f)
            .await?
            .file_metadata()
            .num_rows()
            .max(0) as u64,
    })
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
    let (mut run, snapshot) = Rewriter::start(store, opts.dry_run).await?;
    let mut summary = RetainSummary::default();
    let files = snapshot.files.as_ref().clone();
    for (partition, files) in by_partition(files) {
        if delete_before.is_some_and(|t| partition.end() <= t) {
            summary.deleted_days.push(partition.date());
            if opts.dry_run {
                for f in &files {
                    summary.deleted_rows += file_rows(store, f).await?;
                }
                summary.deleted_files += files.len();
                summary.deleted_bytes += files.iter().map(|f| f.meta.size).sum::<u64>();
                continue;
            }
            let mut files = files;
            // A compaction may replace the day's files meanwhile: then the day is read again.
            for attempt in 0.. {
                let mut c = Commit::new(
                    CommitKind::Retain,
                    run.run.as_str(),
                    format!("{} is older than the maximum age", partition.date()),
                );
                c.remove = files.clone();
                auditlake_store::log::hold_point("retain-before-commit");
                match store.commit(run.version, &c).await {
                    Ok(v) => {
                        run.version = v;
                        for f in &files {
                            summary.deleted_rows += file_rows(store, f).await?;
                        }
                        summary.deleted_files += files.len();
                        summary.deleted_bytes += files.iter().map(|f| f.meta.size).sum::<u64>();
                        break;
                    }
                    Err(auditlake_store::Error::Conflict(_)) if attempt < 5 => {
                        let again = store.snapshot(None).await?;
                        run.version = again.version.unwrap_or(run.version).max(run.version);
                        files = again
                            .files
                            .iter()
                            .filter(|f| f.partition == partition)
                            .cloned()
                            .collect();
                    }
                    Err(e) => return Err(e.into()),
                }
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
                match run.rewrite(&partition, chunk, Action::Slim, opts).await? {
                    Rewritten::Committed { outputs, .. } => {
                        summary.bytes_after_slimming += outputs.iter().map(|f| f.size).sum::<u64>();
                        summary.slimmed_rows += outputs.iter().map(|f| f.rows).sum::<u64>();
                    }
                    Rewritten::Conflict => summary.conflicts += 1,
                }
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
            store.delete_rejected(&old).await?;
        }
    }
    // The evidence reports kept of a day (`_evidence/date=D/`) goes with the day: it names the
    // day's requests, and is kept no longer than they are.
    if let Some(t) = delete_before {
        let old: Vec<_> = store
            .list_objects(auditlake_compliance::kept::DIR)
            .await?
            .into_iter()
            .filter(|m| {
                m.location
                    .parts()
                    .any(|p| Partition::parse(p.as_ref()).is_some_and(|d| d.end() <= t))
            })
            .collect();
        summary.deleted_kept = old.len();
        if !opts.dry_run && !old.is_empty() {
            store.delete_objects(&old).await?;
        }
    }
    summary.version = Some(run.version);
    if !opts.dry_run {
        summary.vacuum = store.vacuum(opts.vacuum_grace, false).await?;
        store.checkpoint_latest().await?;
    }
    Ok(summary)
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
/// size, slimmed for [`Action::Slim`], and commits the replacement after `version` (which it
/// advances).
#[allow(clippy::too_many_arguments)]
async fn rewrite(
    store: &Store,
    run: &RunId,
    seq: &mut u32,
    version: &mut Version,
    partition: &Partition,
    inputs: &[DataFile],
    action: Action,
    opts: &RewriteOptions,
) -> Result<Rewritten> {
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

    let mut outputs = Vec::new();
    let mut enc: Option<FileEncoder> = None;
    let mut dups = Duplicates::default();
    let mut duplicates = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = conform(&schema, &batch?, action)?;
        let batch = match dups.mask(&batch)? {
            Some(mask) => {
                duplicates += (batch.num_rows() - mask.true_count()) as u64;
                filter_record_batch(&batch, &mask)?
            }
            None => batch,
        };
        if batch.num_rows() == 0 {
            continue;
        }
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
            outputs.push(write_output(store, partition, run, seq, done).await?);
        }
    }
    if let Some(done) = enc.take() {
        outputs.push(write_output(store, partition, run, seq, done).await?);
    }
    let mut rows_in = 0u64;
    for f in inputs {
        rows_in += file_rows(store, f).await?;
    }
    let rows_out: u64 = outputs.iter().map(|s| s.rows).sum();
    if rows_in != rows_out + duplicates {
        for o in &outputs {
            store.delete_uncommitted(&o.path).await?;
        }
        return Err(Error::Internal(format!(
            "rewrite of {partition} read {} rows from files holding {rows_in}; nothing was \
             committed",
            rows_out + duplicates
        )));
    }
    failpoint("before-commit");
    auditlake_store::log::hold_point("rewrite-before-commit");
    let mut c = Commit::new(
        action.kind(),
        run.as_str(),
        match action {
            Action::Compact => format!(
                "{} small files of {} merged",
                inputs.len(),
                partition.date()
            ),
            Action::Slim => format!(
                "bodies of {} dropped (older than slim_after)",
                partition.date()
            ),
        },
    );
    c.remove = inputs.to_vec();
    c.add = outputs.clone();
    match store.commit(*version, &c).await {
        Ok(v) => {
            *version = v;
            Ok(Rewritten::Committed {
                outputs,
                duplicates,
            })
        }
        Err(auditlake_store::Error::Conflict(why)) => {
            eprintln!(
                "note: {} of {partition} given up: {why}",
                action.kind().name()
            );
            for o in &outputs {
                store.delete_uncommitted(&o.path).await?;
            }
            Ok(Rewritten::Conflict)
        }
        Err(e) => Err(e.into()),
    }
}

async fn write_output(
    store: &Store,
    partition: &Partition,
    run: &RunId,
    seq: &mut u32,
    enc: FileEncoder,
) -> Result<NewFile> {
    *seq += 1;
    let done = enc.finish()?;
    let ts_range = done
        .ts_range
        .unwrap_or((partition.start(), partition.start()));
    Ok(store
        .write_data_file(partition, run, *seq, done.bytes, done.rows, ts_range)
        .await?)
}

/// Finds exact copies of an event in the merged stream of a day. Copies have the same `ts`, so
/// only rows within a run of equal `ts` are compared (the last run of a batch is carried into the
/// next): by audit ID and stage first, and only when those match, by content digest. The stages
/// of one request share their `ts`, so runs are common but matches are not: digests are rare.
#[derive(Default)]
struct Duplicates {
    /// The last `ts` of the previous batch, and its rows of that `ts` that were kept.
    carried: Option<(i64, Vec<Seen>)>,
}

/// A row kept, carried into the next batch.
struct Seen {
    id: Option<String>,
    stage: Option<String>,
    row: RecordBatch,
    digest: Option<u128>,
}

fn full_digest(row: &RecordBatch) -> Result<u128> {
    auditlake_model::digest::content_digests(row)?
        .first()
        .map(|d| d.full)
        .ok_or_else(|| Error::Internal("digest of an empty row".into()))
}

impl Duplicates {
    /// A mask of the rows to keep, or None when all are kept.
    fn mask(&mut self, batch: &RecordBatch) -> Result<Option<BooleanArray>> {
        use datafusion::arrow::datatypes::{DataType, TimestampMicrosecondType};
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("rewrite batch without {name}")))
        };
        let ts = column(col::TS)?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| Error::Internal("ts is not a timestamp".into()))?;
        let id = cast(column(col::AUDIT_ID)?, &DataType::Utf8)?;
        let stage = cast(column(col::STAGE)?, &DataType::Utf8)?;
        let (id, stage) = (id.as_string::<i32>(), stage.as_string::<i32>());
        let key = |i: usize| {
            (
                id.is_valid(i).then(|| id.value(i)),
                stage.is_valid(i).then(|| stage.value(i)),
            )
        };
        let mut carried = match self.carried.take() {
            Some((t, rows)) if t == ts.value(0) => rows,
            _ => Vec::new(),
        };
        let mut digests: Vec<Option<u128>> = vec![None; n];
        let digest_at = |i: usize, digests: &mut Vec<Option<u128>>| -> Result<u128> {
            if let Some(d) = digests[i] {
                return Ok(d);
            }
            let d = full_digest(&batch.slice(i, 1))?;
            digests[i] = Some(d);
            Ok(d)
        };
        let mut keep = vec![true; n];
        let mut run_start = 0;
        for i in 0..n {
            if i > 0 && ts.value(i) != ts.value(i - 1) {
                run_start = i;
                carried.clear();
            }
            let k = key(i);
            let mut copy = false;
            for s in carried.iter_mut() {
                if (s.id.as_deref(), s.stage.as_deref()) == k {
                    let theirs = match s.digest {
                        Some(d) => d,
                        None => *s.digest.insert(full_digest(&s.row)?),
                    };
                    if theirs == digest_at(i, &mut digests)? {
                        copy = true;
                        break;
                    }
                }
            }
            if !copy {
                for (j, &kept) in keep.iter().enumerate().take(i).skip(run_start) {
                    if kept
                        && key(j) == k
                        && digest_at(j, &mut digests)? == digest_at(i, &mut digests)?
                    {
                        copy = true;
                        break;
                    }
                }
            }
            keep[i] = !copy;
        }
        if run_start > 0 {
            carried.clear();
        }
        for (j, kept) in keep.iter().enumerate().skip(run_start) {
            if *kept {
                let (i, st) = key(j);
                carried.push(Seen {
                    id: i.map(str::to_owned),
                    stage: st.map(str::to_owned),
                    row: batch.slice(j, 1),
                    digest: digests[j],
                });
            }
        }
        self.carried = Some((ts.value(n - 1), carried));
        Ok(keep.iter().any(|k| !k).then(|| BooleanArray::from(keep)))
    }
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

/// Events and distinct (audit_id, stage, ts) keys in `files`: what a migration must keep.
pub async fn census(store: &Store, files: &[DataFile]) -> Result<(u64, u64)> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher};
    let mut keys = std::collections::HashSet::new();
    let mut rows = 0u64;
    for f in files {
        for b in store
            .read_file(f, Some(&[col::TS, col::AUDIT_ID, col::STAGE]))
            .await?
        {
            rows += b.num_rows() as u64;
            let id = cast(b.column(1), &datafusion::arrow::datatypes::DataType::Utf8)?;
            let stage = cast(b.column(2), &datafusion::arrow::datatypes::DataType::Utf8)?;
            let ts = b
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            let (id, stage) = (id.as_string::<i32>(), stage.as_string::<i32>());
            for i in 0..b.num_rows() {
                let mut h = [0u64; 2];
                for (seed, out) in h.iter_mut().enumerate() {
                    let mut hasher = BuildHasherDefault::<DefaultHasher>::default().build_hasher();
                    seed.hash(&mut hasher);
                    ts.value(i).hash(&mut hasher);
                    id.is_valid(i).then(|| id.value(i)).hash(&mut hasher);
                    stage.is_valid(i).then(|| stage.value(i)).hash(&mut hasher);
                    *out = hasher.finish();
                }
                keys.insert((u128::from(h[0]) << 64) | u128::from(h[1]));
            }
        }
    }
    Ok((rows, keys.len() as u64))
}
