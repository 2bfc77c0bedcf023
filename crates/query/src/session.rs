use std::sync::Arc;

use auditlake_compliance::Scope;
use auditlake_store::{AsOf, Store, Version};
use datafusion::catalog::SchemaProvider;
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::by_day::ByDay;
use crate::count_by::CountByStringRule;
use crate::daily::{DailyTable, DayRows, SqlDay};
use crate::lazy::LazyViewSchema;
use crate::open_requests::OpenRequests;
use crate::table::AuditEventsTable;
use crate::views::VIEWS;
use crate::{Error, Result};

/// How queries run.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Memory for query execution; a sort or aggregate that needs more spills to disk or fails
    /// with a clear message.
    pub memory_limit: Option<usize>,
    /// Parallelism (cores by default).
    pub target_partitions: Option<usize>,
    /// What the compliance controls take as cardholder-data and ePHI namespaces, administrators,
    /// automation, business hours and thresholds ([`Scope::default`] when not configured).
    pub scope: Scope,
    /// Read the store as it stood at this version or time (the latest, refreshed at each query,
    /// when None).
    pub as_of: Option<AsOf>,
    /// Evidence kept by reports (`_evidence/`) is read only when signed by this key (by the
    /// store's own signing key when None and it has one; unsigned is read when it has none).
    pub kept_key: Option<auditlake_store::integrity::PublicKey>,
    /// What the session derives per closed day for every query (the day's `open_requests`) is
    /// read from and kept under `_evidence/` too (reports; other sessions write nothing).
    pub keep_per_day: bool,
}

const DAY: i64 = 86_400_000_000;

/// The views computed once per day for the day-local controls ([`crate::by_day`]): every one
/// reads `audit_requests`, several `workload_pod_specs` and `incomplete_records`. In the order
/// they are computed (each reads only those before it).
const BY_DAY_DERIVED: &[&str] = &["audit_requests", "workload_pod_specs", "incomplete_records"];

/// A context on `state` with the lazily planned views' schema as its default, the JSON functions
/// and `hash64`.
fn context(state: SessionState) -> Result<(SessionContext, Arc<LazyViewSchema>)> {
    let mut ctx = SessionContext::new_with_state(state);
    let schema = Arc::new(LazyViewSchema::new());
    let weak = ctx.state_weak_ref();
    schema.set_state(Box::new(move || weak.upgrade().map(|s| s.read().clone())));
    ctx.catalog("auditlake")
        .ok_or_else(|| Error::Internal("no default catalog".into()))?
        .register_schema("public", Arc::clone(&schema) as _)?;
    datafusion_functions_json::register_all(&mut ctx)?;
    ctx.register_udf(crate::hash64::udf());
    Ok((ctx, schema))
}

/// The configuration of every session (the report's day-at-a-time one included).
fn session_config(opts: &QueryOptions) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("auditlake", "public")
        .with_create_default_catalog_and_schema(true);
    if let Some(n) = opts.target_partitions {
        config = config.with_target_partitions(n);
    }
    // PostgreSQL's dialect: `->>` for JSON, and `SELECT a, cluster` parses (the generic
    // dialect takes `, cluster` for a trailing comma before CLUSTER BY).
    config = config.set_str("datafusion.sql_parser.dialect", "PostgreSQL");
    config.options_mut().execution.parquet.pushdown_filters = true;
    config.options_mut().execution.parquet.reorder_filters = true;
    config
}

/// A DataFusion session over one store. Clones share the session (its tables, views and memory
/// pool).
#[derive(Clone)]
pub struct AuditSession {
    ctx: SessionContext,
    store: Store,
    schema: Arc<LazyViewSchema>,
    version: Option<Version>,
    table: Arc<AuditEventsTable>,
    /// Where kept evidence is read and written.
    kept: Arc<KeptObjects>,
    opts: QueryOptions,
    /// The views computed a day at a time (their SQL, their table).
    per_day: Arc<Vec<(&'static str, Arc<DailyTable>)>>,
}

impl AuditSession {
    /// Registers `audit_events`, the `scope` table and functions, the built-in views, the
    /// compliance controls and `compliance_controls`. Touches no data file. The views are planned
    /// when a query first names them ([`LazyViewSchema`]); [`AuditSession::plan_views`] plans all.
    pub async fn open(store: Store, opts: &QueryOptions) -> Result<Self> {
        // Every file the session touches goes through the guarded registry (crate::guard).
        let mut runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::new(crate::guard::StoreRegistry::new(&store)));
        if let Some(limit) = opts.memory_limit {
            runtime = runtime.with_memory_limit(limit, 1.0);
        }
        let runtime = runtime.build_arc()?;
        let state = SessionStateBuilder::new()
            .with_config(session_config(opts))
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(CountByStringRule))
            .build();
        let (ctx, schema) = context(state)?;

        // A time is resolved to the version it names once, so that every query of the session
        // reads the same files, and a report can record the version it was computed on.
        let version = match opts.as_of {
            Some(a) => Some(store.resolve_as_of(a).await?),
            None => None,
        };
        let table = Arc::new(AuditEventsTable::new(store.clone(), version)?);
        ctx.register_table("audit_events", Arc::clone(&table) as _)?;
        let kept = Arc::new(KeptObjects {
            store: store.clone(),
            key: opts
                .kept_key
                .clone()
                .or_else(|| store.signer().map(|s| s.public_key())),
        });
        let daily = |rows: Arc<dyn DayRows>| {
            Arc::new(DailyTable::new(
                rows,
                Arc::clone(&table),
                opts.keep_per_day.then(|| Arc::clone(&kept)),
            ))
        };
        ctx.register_table("open_requests", daily(Arc::new(OpenRequests::new(&table))))?;

        opts.scope.register(&ctx)?;

        for v in VIEWS.iter().filter(|v| !v.per_day()) {
            schema.add_pending(v.name, format!("built-in view {}", v.name), v.sql);
        }
        crate::compliance::register(&ctx, &schema)?;
        // What a per-day view depends on besides its own SQL: every view it may read, and the
        // scope its SQL may ask.
        let mut key: Vec<String> = VIEWS
            .iter()
            .flat_map(|v| [v.name.to_owned(), v.sql.to_owned()])
            .collect();
        key.push(opts.scope.sha256());
        let mut per_day = Vec::new();
        for v in VIEWS.iter().filter(|v| v.per_day()) {
            let rows = SqlDay::plan(&ctx, v.name, v.sql, key.clone())
                .await
                .map_err(|e| Error::Internal(format!("built-in view {}: {e}", v.name)))?;
            let table = daily(Arc::new(rows));
            per_day.push((v.sql, Arc::clone(&table)));
            if v.name == "audit_id_keys" {
                ctx.register_table(
                    "audit_id_candidates",
                    Arc::new(crate::reuse::RepeatedKeys::new(Arc::clone(&table))),
                )?;
            }
            ctx.register_table(v.name, table)?;
        }
        Ok(Self {
            ctx,
            store,
            schema,
            version,
            table,
            kept,
            opts: opts.clone(),
            per_day: Arc::new(per_day),
        })
    }

    /// Plans day-local `queries` (of the views and controls over `audit_events` and
    /// `open_requests`) to run a day at a time ([`crate::by_day`]), in a session of their own
    /// that shares this one's memory pool.
    pub(crate) async fn plan_by_day(&self, queries: &[String]) -> Result<ByDay> {
        let mut config = session_config(&self.opts);
        // A plan is run once per day; a reset does not clear dynamic filters.
        config
            .options_mut()
            .optimizer
            .enable_dynamic_filter_pushdown = false;
        // Without ProjectionPushdown: it moves a projection below a filter whenever that narrows
        // the columns, so that a control's `reason` (concatenations, scope functions) was
        // computed for every row of the day, not for the rows the control finds (in a Parquet
        // scan the projection is evaluated after the pushed-down filter instead).
        let rules: Vec<_> = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new()
            .rules
            .into_iter()
            .filter(|r| r.name() != "ProjectionPushdown")
            .chain(std::iter::once(Arc::new(CountByStringRule) as _))
            .collect();
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(Arc::clone(self.ctx.state().runtime_env()))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let (ctx, schema) = context(state)?;
        let tables = [
            ("audit_events", self.table.schema()),
            ("open_requests", self.table.schema()),
        ];
        self.opts.scope.register(&ctx)?;
        let derived: Vec<(&'static str, &str)> = BY_DAY_DERIVED
            .iter()
            .map(|name| {
                VIEWS
                    .iter()
                    .find(|v| v.name == *name)
                    .map(|v| (v.name, v.sql))
                    .ok_or_else(|| Error::Internal(format!("no built-in view {name}")))
            })
            .collect::<Result<_>>()?;
        for v in VIEWS
            .iter()
            .filter(|v| !v.per_day() && !BY_DAY_DERIVED.contains(&v.name))
        {
            schema.add_pending(v.name, format!("built-in view {}", v.name), v.sql);
        }
        crate::compliance::register(&ctx, &schema)?;
        // The per-day views too, over the day in the slots (`date = '{day}'` holds for every
        // row there), for the whole-window controls that read them.
        let per_day: Vec<(&str, String)> = self
            .per_day
            .iter()
            .map(|(sql, t)| (t.name(), sql.replace("'{day}'", "date")))
            .collect();
        Ok(ByDay::plan(ctx, &tables, &derived, queries, &per_day).await?)
    }

    /// The table version the session reads, when pinned (`as_of`).
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Plans every built-in view and compliance control now, instead of on first use: an error
    /// here is a bug in a shipped SQL file.
    pub async fn plan_views(&self) -> Result<()> {
        Ok(self.schema.plan_all().await?)
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Plans one SQL statement. The store is read-only ([`crate::guard`]): INSERT, UPDATE,
    /// DELETE, COPY and CREATE EXTERNAL TABLE into the store are refused, however they are
    /// spelled or wrapped; COPY to a file elsewhere writes only where the user asks.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let state = self.ctx.state();
        let plan = state.create_logical_plan(sql).await?;
        crate::guard::check_plan(&plan, &self.store)?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Splits a script into its statements, each as the text the user wrote (so that error
    /// messages quote it and literals survive), dropping pieces that hold only comments.
    pub fn split_statements(&self, sql: &str) -> Result<Vec<String>> {
        split_statements(sql)
    }

    /// Names of the tables and views, without planning any view (cheap).
    pub fn table_names(&self) -> Vec<String> {
        // Sorted and without duplicates (LazyViewSchema::table_names).
        self.schema.table_names()
    }

    /// Names of the tables and views, and the columns of each, for completion and `\d`. This
    /// plans every view not yet planned (about 50 ms).
    pub async fn catalog(&self) -> Result<Vec<(String, String, Vec<(String, String)>)>> {
        let mut out = Vec::new();
        for name in self.table_names() {
            if let Some(t) = self.schema.table(&name).await? {
                let kind = match t.table_type() {
                    datafusion::datasource::TableType::View => "view",
                    _ => "table",
                };
                let cols = t
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().to_string()))
                    .collect();
                out.push((name, kind.to_owned(), cols));
            }
        }
        Ok(out)
    }
}

/// The compliance evaluation runs its SQL through the session (views, scope functions and the
/// pinned version included).
impl auditlake_compliance::Engine for AuditSession {
    async fn collect(
        &self,
        sql: &str,
    ) -> std::result::Result<
        Vec<datafusion::arrow::array::RecordBatch>,
        auditlake_compliance::report::EngineError,
    > {
        Ok(self.sql(sql).await?.collect().await?)
    }

    async fn stream(
        &self,
        sql: &str,
    ) -> std::result::Result<
        datafusion::execution::SendableRecordBatchStream,
        auditlake_compliance::report::EngineError,
    > {
        Ok(self.sql(sql).await?.execute_stream().await?)
    }

    fn store_url(&self) -> String {
        self.store.url().to_string()
    }

    fn table_version(&self) -> Option<u64> {
        self.version
    }

    async fn day_files(
        &self,
        from: auditlake_model::time::Micros,
        to: auditlake_model::time::Micros,
    ) -> std::result::Result<
        std::collections::BTreeMap<String, String>,
        auditlake_compliance::report::EngineError,
    > {
        // The files of the version every query of the session reads (the table's snapshot), so
        // that the fingerprint names the files the kept rows were computed from.
        let snapshot = self.table.snapshot().await?;
        let mut days: std::collections::BTreeMap<String, Vec<(String, u64)>> =
            std::collections::BTreeMap::new();
        for f in snapshot.files_in(None) {
            if f.partition.end() <= from || f.partition.start() >= to {
                continue;
            }
            days.entry(f.partition.date())
                .or_default()
                .push((f.meta.location.to_string(), f.meta.size));
        }
        Ok(days
            .into_iter()
            .map(|(date, mut files)| {
                files.sort();
                let parts: Vec<String> = files
                    .iter()
                    .flat_map(|(p, n)| [p.clone(), n.to_string()])
                    .collect();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                (date, auditlake_compliance::kept::key(&parts))
            })
            .collect())
    }

    async fn by_day(
        &self,
        queries: &[String],
        days: &[auditlake_compliance::report::DayWork],
    ) -> std::result::Result<
        Option<auditlake_compliance::report::ByDayRows>,
        auditlake_compliance::report::EngineError,
    > {
        let plans = self.plan_by_day(queries).await?;
        let read = |sql: String| async move { self.ctx.sql(&sql).await?.collect().await };
        let mut out = Vec::with_capacity(days.len());
        for d in days {
            // A whole day also gives the per-day views' rows of the day.
            let whole = d.from.rem_euclid(DAY) == 0 && d.to - d.from == DAY;
            let (rows, per_day) = plans
                .day(&d.date, d.from, d.to, &d.queries, whole, read)
                .await?;
            for ((_, table), batches) in self.per_day.iter().zip(per_day) {
                table.provide(&d.date, batches).await?;
            }
            out.push(rows);
        }
        Ok(Some(auditlake_compliance::report::ByDayRows {
            schemas: plans.schemas(),
            days: out,
        }))
    }

    fn kept_base(&self) -> String {
        let mut parts = vec![env!("CARGO_PKG_VERSION")];
        // Every view and every control: a control may read another's view.
        for v in VIEWS {
            parts.push(v.name);
            parts.push(v.sql);
        }
        for c in crate::CONTROLS {
            parts.push(c.view);
            parts.push(c.sql);
        }
        auditlake_compliance::kept::key(&parts)
    }

    async fn read_kept(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Vec<u8>>, auditlake_compliance::report::EngineError> {
        self.kept.read(name).await
    }

    async fn write_kept(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> std::result::Result<bool, auditlake_compliance::report::EngineError> {
        self.kept.write(name, bytes).await
    }
}

/// Objects reports keep under `_evidence/` (crate `auditlake_compliance::kept`): read only when
/// signed by the key, when there is one; signed with the store's signing key when written.
pub(crate) struct KeptObjects {
    store: Store,
    /// The key kept objects must be signed by ([`QueryOptions::kept_key`]).
    key: Option<auditlake_store::integrity::PublicKey>,
}

impl KeptObjects {
    pub(crate) async fn read(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Vec<u8>>, auditlake_compliance::report::EngineError> {
        let get = |name: String| async move {
            let path = auditlake_store::paths::from_relative(self.store.root(), &name);
            match self.store.get_bytes(&path).await {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        };
        let Some(bytes) = get(name.to_owned()).await? else {
            return Ok(None);
        };
        // With a key, only evidence signed by it is read: anyone who can write the store could
        // otherwise put a day's evidence there that hides what the day holds.
        if let Some(key) = &self.key {
            let Some(sig) = get(format!("{name}{SIGNATURE}")).await? else {
                return Err(format!(
                    "not signed (no {SIGNATURE} beside it), the report checks key {}: \
                     computed again",
                    key.fingerprint
                )
                .into());
            };
            auditlake_store::integrity::check_object(key, name, &bytes, &sig)
                .map_err(|e| format!("{e}: computed again"))?;
        }
        Ok(Some(bytes))
    }

    pub(crate) async fn write(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> std::result::Result<bool, auditlake_compliance::report::EngineError> {
        use futures::TryStreamExt;
        use object_store::ObjectStoreExt;

        let signature = match (self.store.signer(), &self.key) {
            (Some(signer), _) => Some(auditlake_store::integrity::sign_object(
                signer, name, &bytes,
            )),
            // Unsigned evidence would not be read back under a key.
            (None, Some(_)) => return Ok(false),
            (None, None) => None,
        };
        self.store.put_object(name, bytes).await?;
        if let Some(sig) = signature {
            self.store
                .put_object(&format!("{name}{SIGNATURE}"), sig)
                .await?;
        }
        // The files this one replaces: the same view and day under another key (`{what}-{key}`),
        // and their signatures.
        let (dir, file) = name
            .rsplit_once('/')
            .ok_or("kept evidence name without a folder")?;
        let what = file.rsplit_once('-').map_or(file, |(w, _)| w);
        let root = self.store.root();
        let dir = auditlake_store::paths::from_relative(root, dir);
        let os = self.store.object_store();
        let stale: Vec<_> = os
            .list(Some(&dir))
            .try_filter(|m| {
                let n = m.location.filename().unwrap_or_default();
                let same = n.rsplit_once('-').is_some_and(|(w, _)| w == what);
                std::future::ready(same && n.strip_suffix(SIGNATURE).unwrap_or(n) != file)
            })
            .try_collect()
            .await?;
        for m in stale {
            match os.delete(&m.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}

/// The suffix of a kept evidence file's signature, beside it.
const SIGNATURE: &str = ".sig";

/// Splits SQL text at top-level semicolons, using the tokenizer so that semicolons inside strings
/// and comments do not count.
pub fn split_statements(sql: &str) -> Result<Vec<String>> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| DataFusionError::SQL(Box::new(e.into()), None))?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts
            .get((line.max(1) - 1) as usize)
            .copied()
            .unwrap_or(sql.len());
        sql[start..]
            .char_indices()
            .nth((column.max(1) - 1) as usize)
            .map_or(sql.len(), |(i, _)| start + i)
    };
    let mut out = Vec::new();
    let mut begin = 0;
    let mut meaningful = false;
    for t in &tokens {
        match &t.token {
            Token::SemiColon => {
                let end = offset(t.span.start.line, t.span.start.column);
                if meaningful {
                    out.push(sql[begin..end].trim().to_owned());
                }
                begin = end + 1;
                meaningful = false;
            }
            Token::Whitespace(
                Whitespace::Space
                | Whitespace::Newline
                | Whitespace::Tab
                | Whitespace::SingleLineComment { .. }
                | Whitespace::MultiLineComment(_),
            )
            | Token::EOF => {}
            _ => meaningful = true,
        }
    }
    if meaningful && begin < sql.len() {
        out.push(sql[begin..].trim().to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// The end of the generated days (2026-03-20, UTC midnight), in seconds.
    const GENERATED_END: i64 = 1_773_964_800;

    /// A store under `dir` holding `events` generated events over the 3 days before
    /// [`GENERATED_END`].
    async fn generated_store(
        dir: &std::path::Path,
        events: u64,
        seed: u64,
    ) -> auditlake_store::Store {
        let log = dir.join("audit.log");
        let cfg = auditlake_gen::GenConfig {
            events,
            days: 3,
            seed,
            end: chrono::DateTime::from_timestamp(GENERATED_END, 0).unwrap(),
        };
        auditlake_gen::generate(&cfg, std::fs::File::create(&log).unwrap()).unwrap();
        let store = auditlake_store::Store::open(dir.join("s").to_str().unwrap(), &[]).unwrap();
        let rt = tokio::runtime::Handle::current();
        let s2 = store.clone();
        tokio::task::spawn_blocking(move || {
            auditlake_ingest::ingest(
                &s2,
                &[auditlake_ingest::Input::File(log)],
                &auditlake_ingest::IngestOptions::default(),
                std::sync::Arc::new(()),
                &rt,
            )
        })
        .await
        .unwrap()
        .unwrap();
        store
    }

    #[test]
    fn splits_at_top_level_semicolons() {
        let s = super::split_statements(
            "-- c1\nSELECT 'a;b' AS x; /* ; */ SELECT 2;\n-- trailing\nCOPY (SELECT 1) TO '/tmp/x;y.csv'",
        )
        .unwrap();
        assert_eq!(
            s,
            vec![
                "-- c1\nSELECT 'a;b' AS x",
                "/* ; */ SELECT 2",
                "-- trailing\nCOPY (SELECT 1) TO '/tmp/x;y.csv'"
            ]
        );
        assert!(
            super::split_statements("-- nothing\n;;")
                .unwrap()
                .is_empty()
        );
    }

    async fn names(session: &super::AuditSession, sql: &str) -> Vec<String> {
        let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
        crate::test_util::strings(&batches, 0)
    }

    #[tokio::test]
    async fn views_are_planned_on_first_use_and_behave_like_created_views() {
        let dir = tempfile::tempdir().unwrap();
        let store = auditlake_store::Store::open(dir.path().to_str().unwrap(), &[]).unwrap();
        let session = super::AuditSession::open(store, &super::QueryOptions::default())
            .await
            .unwrap();
        // Listed before any is planned.
        let views = names(
            &session,
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' AND table_schema = 'public' ORDER BY 1",
        )
        .await;
        assert!(views.contains(&"secret_access".to_owned()), "{views:?}");
        assert!(views.contains(&"pci_10_2_1_1_cde_access".to_owned()));
        assert_eq!(
            views.len(),
            crate::views::VIEWS.iter().filter(|v| !v.per_day()).count() + crate::CONTROLS.len(),
            "{views:?}"
        );
        // The per-day views are tables, computed a day at a time.
        let tables = names(
            &session,
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema = 'public' ORDER BY 1",
        )
        .await;
        for v in crate::views::VIEWS.iter().filter(|v| v.per_day()) {
            assert!(tables.contains(&v.name.to_owned()), "{tables:?}");
        }
        // A control that reads another view (audit_requests) plans both on first use.
        assert_eq!(
            names(
                &session,
                "SELECT CAST(count(*) AS VARCHAR) FROM cis_5_1_1_cluster_admin"
            )
            .await
            .len(),
            1
        );
        // A user's view, and replacing a built-in one, work as with any DataFusion schema.
        session
            .sql("CREATE VIEW mine AS SELECT user_name FROM secret_access")
            .await
            .unwrap();
        assert_eq!(names(&session, "SELECT user_name FROM mine").await.len(), 0);
        let err = session
            .sql("CREATE VIEW pod_exec AS SELECT 1 AS x")
            .await
            .expect_err("an existing built-in view is not silently replaced");
        assert!(err.to_string().contains("already exists"), "{err}");
        session
            .sql("CREATE OR REPLACE VIEW pod_exec AS SELECT 'x' AS y")
            .await
            .unwrap();
        assert_eq!(names(&session, "SELECT y FROM pod_exec").await, vec!["x"]);
        session
            .plan_views()
            .await
            .expect("every shipped view plans");
    }

    /// The object store DataFusion gets refuses writes below the store's root, so that a plan
    /// shape the plan check misses still cannot write (here the check is bypassed entirely).
    #[tokio::test]
    async fn the_engine_cannot_write_below_the_store_even_past_the_plan_check() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = auditlake_store::Store::open(root.to_str().unwrap(), &[]).unwrap();
        let session = super::AuditSession::open(store, &super::QueryOptions::default())
            .await
            .unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        for target in [
            root.join("date=2026-03-19/x.csv").display().to_string(),
            format!("file://localhost{}/_commits/x.csv", root.display()),
        ] {
            let err = session
                .context()
                .sql(&format!("COPY (SELECT 1 AS x) TO '{target}' STORED AS CSV"))
                .await
                .unwrap()
                .collect()
                .await
                .expect_err("refused by the object store");
            // DataFusion's writer reports the object store's refusal as "Error encountered while
            // finalizing writes"; what counts is that nothing is written.
            let text = err.to_string();
            assert!(
                text.contains("read-only") || text.contains("finalizing writes"),
                "{target}: {err}"
            );
        }
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "nothing written"
        );
        let outside = dir.path().join("out.csv");
        session
            .sql(&format!(
                "COPY (SELECT 1 AS x) TO '{}' STORED AS CSV",
                outside.display()
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert!(outside.exists());
    }

    /// A file listed at planning and removed before it is read (a compaction committed in
    /// between) fails with an error that `is_not_found` recognises, so that `auditlake sql` plans
    /// again (vacuum deletes files a snapshot may still list, once their grace period is over);
    /// a file deleted behind the log's back stays an error.
    #[tokio::test]
    async fn a_file_removed_after_planning_is_recognised_and_a_new_plan_reads_the_rest() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = generated_store(dir.path(), 3_000, 2).await;
        let session = super::AuditSession::open(store.clone(), &super::QueryOptions::default())
            .await
            .unwrap();
        let q = "SELECT audit_id FROM audit_events";
        // Planned (the file list taken), not yet executed (no file opened).
        let df = session.sql(q).await.unwrap();
        let task = std::sync::Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await.unwrap();
        let files = store.list_data_files(None).await.unwrap();
        assert!(files.len() >= 3);
        let gone = &files[0];
        std::fs::remove_file(format!("/{}", gone.meta.location)).unwrap();
        let mut stream = datafusion::physical_plan::execute_stream(plan, task).unwrap();
        let mut err = None;
        while let Some(b) = stream.next().await {
            if let Err(e) = b {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("reading a removed file fails");
        assert!(crate::is_not_found(&err), "not recognised: {err}");
        // The table still lists the file (it was deleted behind the log's back, not by a commit):
        // planned again, the query fails again, naming it. A store that lost a file must not
        // answer as if the file's events had never been.
        let again = session.sql(q).await.unwrap().collect().await.unwrap_err();
        assert!(crate::is_not_found(&again), "{again}");
        let name = gone.meta.location.filename().unwrap();
        assert!(again.to_string().contains(name), "{again}");
    }

    /// The day-at-a-time evaluation of a report ([`crate::by_day`]) gives each day-local control
    /// the rows its own query over the day gives, and the per-day views it computes on the way
    /// are the rows their own per-day computation gives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn by_day_gives_each_control_and_per_day_view_the_rows_of_its_own_query() {
        use auditlake_compliance::Engine;
        use auditlake_compliance::report::{DayWork, evidence_sql};
        use datafusion::arrow::array::{AsArray, RecordBatch};
        use datafusion::arrow::util::pretty::pretty_format_batches;
        let dir = tempfile::tempdir().unwrap();
        let store = generated_store(dir.path(), 30_000, 7).await;
        let end = chrono::DateTime::from_timestamp(GENERATED_END, 0).unwrap();
        let open = || async {
            super::AuditSession::open(store.clone(), &super::QueryOptions::default())
                .await
                .unwrap()
        };
        let session = open().await;
        // Open requests are among the events compared (found in memory by the day's pass, by
        // anti-joins over the files here).
        let open_requests = session
            .sql("SELECT count(*) FROM open_requests")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = open_requests[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0);
        assert!(n > 0, "the generated days hold no open request");
        let session = open().await;
        let day = super::DAY;
        let to = end.timestamp_micros();
        let from = to - 3 * day;
        let controls: Vec<_> = crate::CONTROLS.iter().filter(|c| c.day_local()).collect();
        let queries: Vec<String> = controls
            .iter()
            .map(|c| evidence_sql(c, from, to, None))
            .collect();
        // The last day asks only every other query, as a day with some controls kept does.
        let days: Vec<DayWork> = (0..3)
            .map(|k| DayWork {
                date: auditlake_model::time::format_canonical(from + k * day)[..10].to_owned(),
                from: from + k * day,
                to: from + (k + 1) * day,
                queries: (0..queries.len()).filter(|q| k < 2 || q % 2 == 0).collect(),
            })
            .collect();
        let rows = session
            .by_day(&queries, &days)
            .await
            .unwrap()
            .expect("the session evaluates by day");
        assert_eq!(rows.days.len(), 3);
        let text = |b: &[RecordBatch]| pretty_format_batches(b).unwrap().to_string();
        let (mut with_rows, mut total) = (0, 0);
        for (d, got) in days.iter().zip(&rows.days) {
            assert_eq!(got.len(), d.queries.len());
            for (&q, got) in d.queries.iter().zip(got) {
                let want = session
                    .sql(&evidence_sql(controls[q], d.from, d.to, None))
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                let n: usize = want.iter().map(RecordBatch::num_rows).sum();
                total += n;
                with_rows += usize::from(n > 0);
                assert_eq!(text(got), text(&want), "{} on {}", controls[q].view, d.date);
            }
        }
        assert!(
            with_rows >= 30 && total > 1_000,
            "too few rows to compare: {with_rows} control-days with rows, {total} rows"
        );
        // The per-day views, handed to this session's tables, against a new session's own.
        let fresh = open().await;
        let sorted = |b: &[RecordBatch]| {
            let mut lines: Vec<String> = text(b).lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(session.per_day.len(), 5);
        for (_, table) in session.per_day.iter() {
            // Every day of the store is one of the three (some views have no `date`).
            let q = format!("SELECT * FROM {}", table.name());
            let got = session.sql(&q).await.unwrap().collect().await.unwrap();
            let want = fresh.sql(&q).await.unwrap().collect().await.unwrap();
            // The generator truncates no record; the other four have rows.
            assert!(
                !want.is_empty() || table.name() == "truncated_records",
                "{q}: no rows to compare"
            );
            assert_eq!(sorted(&got), sorted(&want), "{q}");
        }
    }
}
