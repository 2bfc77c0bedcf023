//! `open_requests`: the requests whose outcome the store does not hold. An exec, attach or
//! port-forward session still open (or whose ResponseComplete was lost) has only a ResponseStarted
//! event, a request interrupted early only its RequestReceived; `audit_requests` takes each such
//! request once, at the most complete stage recorded, from this table.
//!
//! Finding them is an anti-join of a day's partial events against its complete ones (all stages
//! of one request share `ts`, the requestReceivedTimestamp, so they are in the same day). Done in
//! every query, it made each control over a month 4x slower (0.6 s to 4.2 s, 650 MB, measured on
//! 10M events); so it is done once per day and kept for the session, keyed by the day's files
//! (a commit that changes a day's files recomputes that day only). A report's session also keeps
//! a closed day's open requests in the store (`_evidence/date=D/open_requests-<key>.parquet`,
//! signed like the controls' evidence): a month's took 13 s of every report on 10M events.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use auditlake_store::Partition;

use crate::session::KeptObjects;
use crate::table::{AuditEventsTable, scan_range};

/// The stages that carry a request's outcome; an event without a stage (an old API version) is
/// taken as complete.
const COMPLETE: &str = "stage IS NULL OR stage IN ('ResponseComplete', 'Panic')";

/// The keys of the open requests of one day (`{day}`): each ResponseStarted without a complete
/// event of the same request, and each RequestReceived without any later stage. A request is its
/// audit ID and cluster within the day (two clusters may reuse an audit ID; `ts` is not part of
/// the key: an event without requestReceivedTimestamp takes its time from a fallback field that
/// differs per stage). Only the key columns are read:
/// the anti-joins over whole events (bodies included) took 4x longer.
fn keys_sql(day: &str) -> String {
    let key = |a: &str, b: &str| {
        format!(
            "{a}.audit_id = {b}.audit_id AND coalesce({a}.cluster, '') = coalesce({b}.cluster, '')"
        )
    };
    format!(
        "SELECT s.audit_id, s.ts, coalesce(s.cluster, '') AS cluster, s.stage FROM audit_events s \
           LEFT ANTI JOIN \
           (SELECT audit_id, ts, cluster FROM audit_events WHERE date = '{day}' AND ({COMPLETE})) c \
           ON {} WHERE s.date = '{day}' AND s.stage = 'ResponseStarted' \
         UNION ALL \
         SELECT r.audit_id, r.ts, coalesce(r.cluster, '') AS cluster, r.stage FROM audit_events r \
           LEFT ANTI JOIN \
           (SELECT audit_id, ts, cluster FROM audit_events \
            WHERE date = '{day}' AND (stage IS NULL OR stage <> 'RequestReceived')) c \
           ON {} WHERE r.date = '{day}' AND r.stage = 'RequestReceived'",
        key("s", "c"),
        key("r", "c")
    )
}

/// The whole events of those keys: the audit IDs as a list the scan filters on before it decodes
/// the other columns; the rows are then matched on the whole key.
fn rows_sql(day: &str, ids: &[&str]) -> String {
    let list: Vec<String> = ids
        .iter()
        .map(|id| format!("'{}'", id.replace('\'', "''")))
        .collect();
    format!(
        "SELECT * FROM audit_events WHERE date = '{day}' \
         AND stage IN ('ResponseStarted', 'RequestReceived') AND audit_id IN ({})",
        list.join(", ")
    )
}

type Key = (String, i64, String, String);

/// `(audit_id, ts, cluster, stage)` of each row; `cluster` "" for none.
fn keys_of(b: &RecordBatch, cols: [usize; 4]) -> Result<Vec<Option<Key>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
    let text = |i: usize| cast(b.column(i), &DataType::Utf8);
    let (id, cluster, stage) = (text(cols[0])?, text(cols[2])?, text(cols[3])?);
    let ts = cast(
        b.column(cols[1]),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let (id, cluster, stage) = (
        id.as_string::<i32>(),
        cluster.as_string::<i32>(),
        stage.as_string::<i32>(),
    );
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    Ok((0..b.num_rows())
        .map(|i| {
            (id.is_valid(i) && ts.is_valid(i) && stage.is_valid(i)).then(|| {
                (
                    id.value(i).to_owned(),
                    ts.value(i),
                    if cluster.is_valid(i) {
                        cluster.value(i).to_owned()
                    } else {
                        String::new()
                    },
                    stage.value(i).to_owned(),
                )
            })
        })
        .collect())
}

/// A day's open requests, and the files they were computed from.
struct Day {
    files: Vec<(String, u64)>,
    batches: Vec<RecordBatch>,
}

#[derive(Clone)]
pub struct OpenRequestsTable {
    events: Arc<AuditEventsTable>,
    days: Arc<Mutex<HashMap<String, Arc<Day>>>>,
    /// Where a closed day's open requests are kept across sessions (reports), if anywhere.
    kept: Option<Arc<KeptObjects>>,
}

impl std::fmt::Debug for OpenRequestsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRequestsTable").finish_non_exhaustive()
    }
}

impl OpenRequestsTable {
    pub(crate) fn new(events: Arc<AuditEventsTable>, kept: Option<Arc<KeptObjects>>) -> Self {
        Self {
            events,
            days: Arc::default(),
            kept,
        }
    }

    /// The name a closed day's open requests are kept under: keyed by the release, the queries
    /// that find them, the table's schema and the day's files. `None` for today and later (its
    /// files change as events arrive) and without a place to keep them.
    fn kept_name(&self, day: &str, files: &[(String, u64)]) -> Option<String> {
        self.kept.as_ref()?;
        let today = Partition::of(chrono::Utc::now().timestamp_micros());
        if Partition::parse(&format!("date={day}"))?.end() > today.start() {
            return None;
        }
        let files: Vec<String> = files.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let key = auditlake_compliance::kept::key(&[
            env!("CARGO_PKG_VERSION"),
            &keys_sql("{day}"),
            &rows_sql("{day}", &["{ids}"]),
            &format!("{:?}", self.events.schema().fields()),
            &files.join("\n"),
        ]);
        Some(auditlake_compliance::kept::name(day, "open_requests", &key))
    }

    /// A day's open requests as kept by an earlier session, when they are and decode to the
    /// table's schema.
    async fn read_kept(&self, name: &str) -> Option<Vec<RecordBatch>> {
        let bytes = self.kept.as_ref()?.read(name).await.ok()??;
        let schema = self.events.schema();
        auditlake_compliance::kept::decode(bytes)
            .ok()?
            .into_iter()
            .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()).ok())
            .collect()
    }

    async fn day(
        &self,
        state: &SessionState,
        day: &str,
        files: Vec<(String, u64)>,
    ) -> Result<Arc<Day>> {
        if let Some(d) = self.cached(day).filter(|d| d.files == files) {
            return Ok(d);
        }
        let name = self.kept_name(day, &files);
        if let Some(name) = &name
            && let Some(batches) = self.read_kept(name).await
        {
            return self.remember(day, Day { files, batches });
        }
        let ctx = SessionContext::new_with_state(state.clone());
        let mut open: HashSet<Key> = HashSet::new();
        for b in ctx.sql(&keys_sql(day)).await?.collect().await? {
            open.extend(keys_of(&b, [0, 1, 2, 3])?.into_iter().flatten());
        }
        let schema = self.events.schema();
        let mut batches = Vec::new();
        let mut ids: Vec<&str> = open.iter().map(|k| k.0.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let col = |name: &str| schema.index_of(name);
        let cols = [col("audit_id")?, col("ts")?, col("cluster")?, col("stage")?];
        for chunk in ids.chunks(4096) {
            for b in ctx.sql(&rows_sql(day, chunk)).await?.collect().await? {
                let keep: BooleanArray = keys_of(&b, cols)?
                    .into_iter()
                    .map(|k| Some(k.is_some_and(|k| open.contains(&k))))
                    .collect();
                let b = filter_record_batch(&b, &keep)?;
                if b.num_rows() > 0 {
                    // The query's fields may differ from the table's in nullability only.
                    batches.push(RecordBatch::try_new(
                        Arc::clone(&schema),
                        b.columns().to_vec(),
                    )?);
                }
            }
        }
        // Kept for later sessions; a store that cannot be written to (or a key that cannot
        // sign) only costs the next session the computation again.
        if let (Some(name), Some(kept)) = (&name, &self.kept)
            && let Ok(bytes) = auditlake_compliance::kept::encode(&schema, &batches)
        {
            let _ = kept.write(name, bytes).await;
        }
        self.remember(day, Day { files, batches })
    }

    fn remember(&self, day: &str, d: Day) -> Result<Arc<Day>> {
        let d = Arc::new(d);
        self.days
            .lock()
            .map_err(|_| DataFusionError::Internal("open_requests cache poisoned".into()))?
            .insert(day.to_owned(), Arc::clone(&d));
        Ok(d)
    }

    fn cached(&self, day: &str) -> Option<Arc<Day>> {
        self.days.lock().ok()?.get(day).cloned()
    }
}

#[async_trait]
impl TableProvider for OpenRequestsTable {
    fn schema(&self) -> SchemaRef {
        self.events.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The days are picked from `ts` and `date`; every filter is applied again after the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Internal("open_requests needs a SessionState".into())
            })?;
        let files = self.events.snapshot().await?.files_in(scan_range(filters));
        let mut by_day: std::collections::BTreeMap<String, Vec<(String, u64)>> =
            std::collections::BTreeMap::new();
        for f in files {
            by_day
                .entry(f.partition.date())
                .or_default()
                .push((f.meta.location.to_string(), f.meta.size));
        }
        let mut batches = Vec::new();
        for (day, mut files) in by_day {
            files.sort();
            batches.extend(self.day(state, &day, files).await?.batches.iter().cloned());
        }
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
