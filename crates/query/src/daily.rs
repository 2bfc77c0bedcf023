//! Tables derived from the events one UTC day at a time: `open_requests`, and the views of
//! `sql/views/` whose header says `-- per day:` (their SQL reads one day, `{day}`).
//!
//! A day's rows depend on that day's files alone, so they are computed once per session and day,
//! keyed by the day's files (a commit that changes a day's files recomputes that day only). A
//! report's session also keeps a closed day's rows in the store
//! (`_evidence/date=D/<table>-<key>.parquet`, signed like the controls' evidence), so that a
//! control over a month reads 30 small files instead of scanning the month: the failed-access
//! bursts took 5.9 s of every report over 10M events, the policy coverage 1.6 s.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
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

/// How one day's rows of a derived table are computed.
#[async_trait]
pub(crate) trait DayRows: Send + Sync {
    /// The table's name, also the name its kept days are filed under.
    fn name(&self) -> &str;
    fn schema(&self) -> SchemaRef;
    /// What the rows depend on besides the day's files (the queries, the scope): part of the
    /// name they are kept under.
    fn key(&self) -> Vec<String>;
    /// The rows of `day` (`YYYY-MM-DD`), in the table's schema.
    async fn compute(&self, ctx: &SessionContext, day: &str) -> Result<Vec<RecordBatch>>;
}

/// A day's rows, and the files they were computed from.
struct Day {
    files: Vec<(String, u64)>,
    batches: Vec<RecordBatch>,
}

#[derive(Clone)]
pub(crate) struct DailyTable {
    rows: Arc<dyn DayRows>,
    events: Arc<AuditEventsTable>,
    days: Arc<Mutex<HashMap<String, Arc<Day>>>>,
    /// Where a closed day's rows are kept across sessions (reports), if anywhere.
    kept: Option<Arc<KeptObjects>>,
}

impl std::fmt::Debug for DailyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyTable")
            .field("name", &self.rows.name())
            .finish_non_exhaustive()
    }
}

impl DailyTable {
    pub(crate) fn new(
        rows: Arc<dyn DayRows>,
        events: Arc<AuditEventsTable>,
        kept: Option<Arc<KeptObjects>>,
    ) -> Self {
        Self {
            rows,
            events,
            days: Arc::default(),
            kept,
        }
    }

    /// The name a closed day's rows are kept under: keyed by the release, what the rows depend
    /// on, the table's schema and the day's files. `None` for today and later (its files change
    /// as events arrive) and without a place to keep them.
    fn kept_name(&self, day: &str, files: &[(String, u64)]) -> Option<String> {
        self.kept.as_ref()?;
        let today = Partition::of(chrono::Utc::now().timestamp_micros());
        if Partition::parse(&format!("date={day}"))?.end() > today.start() {
            return None;
        }
        let files: Vec<String> = files.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let mut parts = vec![env!("CARGO_PKG_VERSION").to_owned()];
        parts.extend(self.rows.key());
        parts.push(format!("{:?}", self.rows.schema().fields()));
        parts.push(files.join("\n"));
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let key = auditlake_compliance::kept::key(&parts);
        Some(auditlake_compliance::kept::name(
            day,
            self.rows.name(),
            &key,
        ))
    }

    /// A day's rows as kept by an earlier session, when they are and decode to the table's
    /// schema.
    async fn read_kept(&self, name: &str) -> Option<Vec<RecordBatch>> {
        let bytes = self.kept.as_ref()?.read(name).await.ok()??;
        let schema = self.rows.schema();
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
        let batches = self.rows.compute(&ctx, day).await?;
        // Kept for later sessions; a store that cannot be written to (or a key that cannot
        // sign) only costs the next session the computation again.
        if let (Some(name), Some(kept)) = (&name, &self.kept)
            && let Ok(bytes) = auditlake_compliance::kept::encode(&self.rows.schema(), &batches)
        {
            let _ = kept.write(name, bytes).await;
        }
        self.remember(day, Day { files, batches })
    }

    /// The rows of every day the filters on `ts` and `date` may select (all days without such
    /// filters), day by day in date order, each day's rows in the order they were computed.
    pub(crate) async fn batches(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> Result<Vec<RecordBatch>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Internal(format!("{} needs a SessionState", self.rows.name()))
            })?;
        let files = self.events.snapshot().await?.files_in(scan_range(filters));
        let mut by_day: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
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
        Ok(batches)
    }

    /// The table's name.
    pub(crate) fn name(&self) -> &str {
        self.rows.name()
    }

    /// Takes `batches` as the rows of `day` (`YYYY-MM-DD`), computed elsewhere from the same
    /// version's events of the whole day ([`crate::by_day`]): cached for the session and kept
    /// like rows computed here.
    pub(crate) async fn provide(&self, day: &str, batches: Vec<RecordBatch>) -> Result<()> {
        let d = Partition::parse(&format!("date={day}"))
            .ok_or_else(|| DataFusionError::Internal(format!("not a day: {day}")))?;
        let mut files: Vec<(String, u64)> = self
            .events
            .snapshot()
            .await?
            .files_in(Some((d.start(), d.end())))
            .into_iter()
            .filter(|f| f.partition.date() == day)
            .map(|f| (f.meta.location.to_string(), f.meta.size))
            .collect();
        files.sort();
        let schema = self.rows.schema();
        let batches = batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            // The query's fields may differ from the planned ones in nullability only.
            .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if let (Some(name), Some(kept)) = (self.kept_name(day, &files), &self.kept)
            && let Ok(bytes) = auditlake_compliance::kept::encode(&schema, &batches)
        {
            let _ = kept.write(&name, bytes).await;
        }
        self.remember(day, Day { files, batches })?;
        Ok(())
    }

    fn remember(&self, day: &str, d: Day) -> Result<Arc<Day>> {
        let d = Arc::new(d);
        self.days
            .lock()
            .map_err(|_| DataFusionError::Internal(format!("{} cache poisoned", self.rows.name())))?
            .insert(day.to_owned(), Arc::clone(&d));
        Ok(d)
    }

    fn cached(&self, day: &str) -> Option<Arc<Day>> {
        self.days.lock().ok()?.get(day).cloned()
    }
}

#[async_trait]
impl TableProvider for DailyTable {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
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
        let batches = self.batches(state, filters).await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema(),
            projection.cloned(),
        )?)
    }
}

/// A view of `sql/views/` computed a day at a time: its SQL reads the day `{day}`.
pub(crate) struct SqlDay {
    name: String,
    sql: String,
    schema: SchemaRef,
    /// The SQL of everything it may read (every view), and the scope's hash.
    key: Vec<String>,
}

impl SqlDay {
    /// Plans the SQL (no data is read) for the table's schema.
    pub(crate) async fn plan(
        ctx: &SessionContext,
        name: &str,
        sql: &str,
        key: Vec<String>,
    ) -> crate::Result<Self> {
        let df = ctx.sql(&Self::for_day(sql, "1970-01-01")).await?;
        Ok(Self {
            name: name.to_owned(),
            sql: sql.to_owned(),
            schema: Arc::new(df.schema().as_arrow().clone()),
            key,
        })
    }

    fn for_day(sql: &str, day: &str) -> String {
        sql.replace("{day}", day)
    }
}

#[async_trait]
impl DayRows for SqlDay {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn key(&self) -> Vec<String> {
        let mut key = vec![self.sql.clone()];
        key.extend(self.key.iter().cloned());
        key
    }

    async fn compute(&self, ctx: &SessionContext, day: &str) -> Result<Vec<RecordBatch>> {
        let batches = ctx
            .sql(&Self::for_day(&self.sql, day))
            .await?
            .collect()
            .await?;
        batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            // The query's fields may differ from the planned ones in nullability only.
            .map(|b| Ok(RecordBatch::try_new(self.schema(), b.columns().to_vec())?))
            .collect()
    }
}
