//! The evaluation of the controls over a window into a [`Report`]: what an assessor signs.
//!
//! An evidence control ([`Kind::Evidence`]) is `evidenced` when its events are in the window,
//! every day of the window has audit events, and none of its rows lacks a detail PCI DSS 10.2.2
//! requires; otherwise it is a `gap`, with the reasons. Its evidence is summarised (per day, per
//! identity, per verb and resource) and sampled: a reproducible random sample, seeded by the
//! window, for the assessor to trace. A finding control ([`Kind::Finding`]) passes with no rows
//! and has `findings` otherwise. Either is `not_evaluable` when the scope it needs is empty or the
//! window has no events. The summary counts the findings that need an answer, not evidence rows.

use std::collections::BTreeMap;
use std::future::Future;

use auditlake_model::time::{Micros, format_canonical};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Int32Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::execution::SendableRecordBatchStream;
use serde::Serialize;

use crate::controls::{EVIDENCE_COLUMNS, FRAMEWORKS, framework_title};
use crate::{CONTROLS, Control, Error, Kind, Result, Scope, kept};

/// An error of the engine that runs the SQL.
pub type EngineError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the evaluation's SQL: the query crate's `AuditSession` (every control's view, the
/// `audit_events` table and the scope functions registered).
pub trait Engine: Sync {
    /// Runs one statement and collects its rows.
    fn collect(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<RecordBatch>, EngineError>> + Send;
    /// Runs one statement, its rows as they come.
    fn stream(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<SendableRecordBatchStream, EngineError>> + Send;
    /// The store's URL, as a report names it.
    fn store_url(&self) -> String;
    /// The table version the engine reads (pinned, so that every control sees the same files).
    fn table_version(&self) -> Option<u64>;

    /// For each UTC day (`YYYY-MM-DD`) of `[from, to)` that has data files in the version read,
    /// a fingerprint of those files (their paths and sizes): it changes when a late event is
    /// appended to the day or the day is compacted. Empty: the engine keeps no evidence.
    fn day_files(
        &self,
        _from: Micros,
        _to: Micros,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, EngineError>> + Send {
        async { Ok(BTreeMap::new()) }
    }

    /// What every kept evidence file depends on besides the control, the scope and the day: the
    /// auditlake version and the SQL of the views the controls read.
    fn kept_base(&self) -> String {
        String::new()
    }

    /// The bytes of a kept evidence file (a store-relative name under [`crate::kept::DIR`]),
    /// `None` when there is none.
    fn read_kept(
        &self,
        _name: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, EngineError>> + Send {
        async { Ok(None) }
    }

    /// Runs day-local queries a day at a time, each day's events read once for all of them: for
    /// each of `days`, the rows of each query it lists, in that order. The queries filter on
    /// the whole window; a day's rows are a query's rows within the day's `[from, to)`. `None`:
    /// the engine cannot, and each query is run over the days as one.
    fn by_day(
        &self,
        _queries: &[String],
        _days: &[DayWork],
    ) -> impl Future<Output = Result<Option<ByDayRows>, EngineError>> + Send {
        async { Ok(None) }
    }

    /// Writes a kept evidence file, and removes the files it replaces (the same view and day
    /// under another key); `false` when the engine does not keep it (it could not sign it).
    fn write_kept(
        &self,
        _name: &str,
        _bytes: Vec<u8>,
    ) -> impl Future<Output = Result<bool, EngineError>> + Send {
        async { Ok(false) }
    }
}

/// A day for [`Engine::by_day`]: its date (`YYYY-MM-DD`), its part of the window and the queries
/// to run over it (indexes into the queries).
#[derive(Debug, Clone)]
pub struct DayWork {
    pub date: String,
    pub from: Micros,
    pub to: Micros,
    pub queries: Vec<usize>,
}

/// What [`Engine::by_day`] returns: each query's schema, and for each day the rows of each query
/// it listed.
#[derive(Debug)]
pub struct ByDayRows {
    pub schemas: Vec<SchemaRef>,
    pub days: Vec<Vec<Vec<RecordBatch>>>,
}

/// Rows of the evidence sample when none is asked for.
pub const DEFAULT_SAMPLE: usize = 25;
/// Entries of the per-identity and per-action summaries.
const SUMMARY_TOP: usize = 25;
const DAY: i64 = 86_400_000_000;

/// What to report on: frameworks and window.
#[derive(Debug, Clone)]
pub struct Request {
    pub frameworks: Vec<&'static str>,
    pub from: Micros,
    pub to: Micros,
    /// `None`: every evidence row.
    pub max_evidence: Option<usize>,
    /// Rows of each evidence control's random sample.
    pub sample: usize,
    /// Whether the evidence kept per closed day is read ([`crate::kept`]); `Recompute` evaluates
    /// every day from the table, and keeps what it computed.
    pub kept: Kept,
}

/// How a report uses the evidence kept per closed day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kept {
    /// Read what is kept, compute and keep the rest.
    #[default]
    Use,
    /// Compute every day from the table, and keep what was computed.
    Recompute,
}

/// What a report read from the kept evidence and what it computed, per control and day.
#[derive(Debug, Clone, Default)]
pub struct KeptStats {
    /// Closed days of the window whose events the report read.
    pub days: usize,
    /// Control-days read from kept evidence.
    pub read: usize,
    /// Control-days computed from the table (partial and open days included).
    pub computed: usize,
    /// Control-days written to the kept evidence.
    pub written: usize,
    /// Why evidence could not be read or kept, when it could not (the report is unaffected).
    pub problems: Vec<String>,
}

/// Parses `soc2`, `pci-dss` (also `pci`), `hipaa`, `cis`, `detections` or `all`, comma-separated.
pub fn parse_frameworks(s: &str) -> Result<Vec<&'static str>> {
    let mut out: Vec<&'static str> = Vec::new();
    let refused = |m: String| Err(Error::Refused(m));
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p = part.to_ascii_lowercase();
        if p == "all" {
            return Ok(FRAMEWORKS.to_vec());
        }
        let p = if p == "pci" || p == "pci_dss" {
            "pci-dss".to_owned()
        } else {
            p
        };
        match FRAMEWORKS.iter().find(|f| **f == p) {
            Some(f) if !out.contains(f) => out.push(f),
            Some(_) => {}
            None => {
                return refused(format!(
                    "unknown framework {part:?}: use {} or all",
                    FRAMEWORKS.join(", ")
                ));
            }
        }
    }
    if out.is_empty() {
        return refused(format!(
            "no framework given: use {} or all",
            FRAMEWORKS.join(", ")
        ));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A finding control without rows.
    Pass,
    /// A finding control with rows: each needs an answer.
    Findings,
    /// An evidence control whose evidence is present and complete.
    Evidenced,
    /// An evidence control whose evidence is missing or incomplete.
    Gap,
    NotEvaluable,
}

impl Status {
    /// The CSS class, as the status is spelled in JSON.
    pub fn class(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Findings => "findings",
            Self::Evidenced => "evidenced",
            Self::Gap => "gap",
            Self::NotEvaluable => "not_evaluable",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Findings => "findings",
            Self::Evidenced => "evidenced",
            Self::Gap => "gap",
            Self::NotEvaluable => "not evaluable",
        }
    }

    /// The requirement is met: evidenced, or a finding control that passes.
    pub fn met(self) -> bool {
        matches!(self, Self::Pass | Self::Evidenced)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: String,
    pub count: u64,
}

/// One entry of a summary: an identity, or a verb on a resource, and its rows.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub ts: String,
    pub audit_id: Option<String>,
    pub cluster: Option<String>,
    pub user_name: Option<String>,
    pub verb: Option<String>,
    pub resource: Option<String>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub response_code: Option<i32>,
    pub reason: Option<String>,
}

impl Evidence {
    /// The object as one text: `resource/subresource name (namespace)`.
    pub fn object(&self) -> String {
        let mut s = self.resource.clone().unwrap_or_default();
        if let Some(sub) = self.subresource.as_deref().filter(|s| !s.is_empty()) {
            s = format!("{s}/{sub}");
        }
        if let Some(n) = self.name.as_deref().filter(|s| !s.is_empty()) {
            s = format!("{s} {n}");
        }
        if let Some(ns) = self.namespace.as_deref().filter(|s| !s.is_empty()) {
            s = format!("{s} ({ns})");
        }
        s
    }
}

/// What an evidence control's rows are made of.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceSummary {
    /// Distinct user names among the rows.
    pub identities: u64,
    /// The identities with the most rows (at most 25; `(no user)` for rows without one).
    pub per_identity: Vec<Count>,
    /// The verbs on resources with the most rows (at most 25).
    pub per_action: Vec<Count>,
}

/// Evidence rows that lack details 10.2.2 requires, by what they lack.
#[derive(Debug, Clone, Serialize)]
pub struct Incomplete {
    pub missing: String,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct ControlResult {
    pub framework: String,
    pub control_id: String,
    pub title: String,
    pub reference: String,
    pub view: String,
    pub kind: Kind,
    pub severity: String,
    pub finds: String,
    pub why: String,
    pub status: Status,
    /// Why the control could not be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_evaluable: Option<String>,
    /// Why the evidence is missing or incomplete (evidence controls).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
    /// The rows of the window this control cannot judge, by source: "not evaluable for gke
    /// rows: no user groups" (also among `gaps`, or the reason it is not evaluable at all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_evaluable_for: Vec<String>,
    /// Rows of the control's view in the window: evidence, or findings.
    pub rows: u64,
    pub per_day: Vec<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<EvidenceSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<Incomplete>,
    /// A reproducible random sample of the evidence (evidence controls), by time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<Evidence>,
    pub evidence_shown: usize,
    /// The rows, by time: every one unless the report was capped (`max_evidence`).
    pub evidence: Vec<Evidence>,
}

impl ControlResult {
    /// Findings that need an answer (finding controls).
    pub fn findings(&self) -> u64 {
        if self.status == Status::Findings {
            self.rows
        } else {
            0
        }
    }
}

/// The statuses of a set of controls.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Totals {
    pub controls: usize,
    /// Evidenced, or passing.
    pub met: usize,
    pub evidenced: usize,
    pub pass: usize,
    pub gaps: usize,
    /// Finding controls with findings.
    pub findings: usize,
    /// Their rows: the findings that need an answer.
    pub findings_to_answer: u64,
    pub not_evaluable: usize,
}

impl Totals {
    fn of<'a>(controls: impl Iterator<Item = &'a ControlResult>) -> Self {
        let mut t = Self::default();
        for c in controls {
            t.controls += 1;
            match c.status {
                Status::Pass => t.pass += 1,
                Status::Evidenced => t.evidenced += 1,
                Status::Gap => t.gaps += 1,
                Status::Findings => t.findings += 1,
                Status::NotEvaluable => t.not_evaluable += 1,
            }
            t.findings_to_answer += c.findings();
        }
        t.met = t.pass + t.evidenced;
        t
    }
}

/// One framework's section of the summary: the counts, and which controls are in each state.
#[derive(Debug, Clone, Serialize)]
pub struct FrameworkSummary {
    pub framework: String,
    pub title: String,
    #[serde(flatten)]
    pub totals: Totals,
    /// Control ids whose requirement is met (evidenced or passing).
    pub met_controls: Vec<String>,
    /// Evidence controls with a gap.
    pub gap_controls: Vec<String>,
    /// Finding controls with findings to answer.
    pub finding_controls: Vec<String>,
    pub not_evaluable_controls: Vec<String>,
}

impl FrameworkSummary {
    fn of(framework: &str, controls: &[ControlResult]) -> Self {
        let mine = || controls.iter().filter(move |c| c.framework == framework);
        let ids = |keep: &dyn Fn(Status) -> bool| -> Vec<String> {
            mine()
                .filter(|c| keep(c.status))
                .map(|c| c.control_id.clone())
                .collect()
        };
        Self {
            framework: framework.to_owned(),
            title: framework_title(framework).to_owned(),
            totals: Totals::of(mine()),
            met_controls: ids(&Status::met),
            gap_controls: ids(&|s| s == Status::Gap),
            finding_controls: ids(&|s| s == Status::Findings),
            not_evaluable_controls: ids(&|s| s == Status::NotEvaluable),
        }
    }
}

/// The tamper evidence of the store for the report's window: the chain of digests up to
/// `verified_version`, and the SHA-256 of every file of the window's days.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    pub clean: bool,
    pub verified_version: Option<u64>,
    pub entries: u64,
    /// Entries whose signature was checked against `key`.
    pub signed: u64,
    /// Fingerprint of the public key signatures were checked against (none: not checked).
    pub key: Option<String>,
    pub files_hashed: u64,
    pub findings: Vec<String>,
}

impl Integrity {
    /// One sentence: clean or not, up to which version, signed by which key.
    pub fn text(&self) -> String {
        let key = match &self.key {
            Some(k) => format!("{} signed by key {k}", self.signed),
            None => "signatures not checked (no public key)".to_owned(),
        };
        if self.clean {
            format!(
                "clean: {} log entries up to table version {} chained, {key}; {} files of the window hashed and as committed",
                self.entries,
                version_text(self.verified_version),
                self.files_hashed
            )
        } else {
            format!(
                "NOT CLEAN: {} finding(s) over {} log entries up to table version {} ({key}): {}",
                self.findings.len(),
                self.entries,
                version_text(self.verified_version),
                self.findings.join("; ")
            )
        }
    }
}

/// The table version as a report shows it.
pub fn version_text(v: Option<u64>) -> String {
    v.map_or_else(
        || "none: no transaction log yet".to_owned(),
        |v| v.to_string(),
    )
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub generator: String,
    pub generated_at: String,
    pub store: String,
    /// The table version the report was computed on: `--as-of <it>` computes it again.
    pub table_version: Option<u64>,
    /// SHA-256 of the compliance scope the controls were evaluated with (every setting, defaults
    /// included, as JSON): the same scope gives the same hash, whatever the config file's layout.
    pub scope_sha256: String,
    pub frameworks: Vec<String>,
    pub window_from: String,
    pub window_to: String,
    /// What seeds the evidence samples: the same window gives the same sample.
    pub sample_seed: String,
    pub events_in_window: u64,
    /// Events per day of the window, every day listed (0 for a day without events).
    pub coverage: Vec<Day>,
    pub days_without_events: Vec<String>,
    pub totals: Totals,
    /// Per framework, in report order.
    pub summary: Vec<FrameworkSummary>,
    /// `auditlake verify` of the window's days, when run.
    pub integrity: Option<Integrity>,
    pub controls: Vec<ControlResult>,
    /// What came from the kept evidence: not part of the report, which is the same either way.
    #[serde(skip)]
    pub kept: KeptStats,
}

impl Report {
    pub fn frameworks_title(&self) -> String {
        self.frameworks
            .iter()
            .map(|f| framework_title(f))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(crate) fn window_sql(from: Micros, to: Micros) -> String {
    format!(
        "ts >= TIMESTAMP '{}' AND ts < TIMESTAMP '{}'",
        format_canonical(from),
        format_canonical(to)
    )
}

async fn collect<E: Engine>(engine: &E, what: &str, sql: &str) -> Result<Vec<RecordBatch>> {
    engine.collect(sql).await.map_err(|source| Error::Query {
        what: format!("{what}: {sql}"),
        source,
    })
}

/// `(key, count)` rows of a `SELECT k, count(*)` query.
fn counts(batches: &[RecordBatch]) -> Result<Vec<Count>> {
    let mut out = Vec::new();
    for b in batches {
        let k = cast(b.column(0), &DataType::Utf8)?;
        let k = k.as_string::<i32>();
        let n = cast(b.column(1), &DataType::Int64)?;
        let n = n.as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push(Count {
                key: if k.is_valid(i) {
                    k.value(i).to_owned()
                } else {
                    String::new()
                },
                count: n.value(i) as u64,
            });
        }
    }
    Ok(out)
}

fn days(batches: &[RecordBatch]) -> Result<Vec<Day>> {
    Ok(counts(batches)?
        .into_iter()
        .map(|c| Day {
            date: c.key,
            count: c.count,
        })
        .collect())
}

/// The rows of a query of [`EVIDENCE_COLUMNS`].
pub fn evidence_rows(b: &RecordBatch) -> Result<Vec<Evidence>> {
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        let c = b
            .column_by_name(name)
            .ok_or_else(|| Error::Render(format!("evidence without column {name}")))?;
        let c = cast(c, &DataType::Utf8)?;
        let c = c.as_string::<i32>();
        Ok((0..c.len())
            .map(|i| c.is_valid(i).then(|| c.value(i).to_owned()))
            .collect())
    };
    let column = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::Render(format!("evidence without column {name}")))
    };
    let ts = cast(
        column("ts")?,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    let code = cast(column("response_code")?, &DataType::Int32)?;
    let code = code.as_primitive::<Int32Type>();
    // Every evidence column but the two typed ones, in EVIDENCE_COLUMNS order.
    let mut cols = Vec::new();
    for n in EVIDENCE_COLUMNS
        .iter()
        .filter(|n| !matches!(**n, "ts" | "response_code"))
    {
        cols.push(text(n)?.into_iter());
    }
    let mut next = |i: usize| cols[i].next().flatten();
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        out.push(Evidence {
            ts: if ts.is_valid(i) {
                format_canonical(ts.value(i))
            } else {
                String::new()
            },
            audit_id: next(0),
            cluster: next(1),
            user_name: next(2),
            verb: next(3),
            resource: next(4),
            subresource: next(5),
            namespace: next(6),
            name: next(7),
            response_code: code.is_valid(i).then(|| code.value(i)),
            reason: next(8),
        });
    }
    Ok(out)
}

fn evidence(batches: &[RecordBatch]) -> Result<Vec<Evidence>> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(evidence_rows(b)?);
    }
    Ok(out)
}

/// The SQL of a control's rows in the window, by time (what `evidence` and NDJSON list), in an
/// order every column takes part in, so that the same rows always come in the same order.
pub fn evidence_sql(control: &Control, from: Micros, to: Micros, limit: Option<usize>) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} ORDER BY ts, audit_id, cluster, reason, user_name, verb, \
         resource, subresource, namespace, name, response_code{}",
        EVIDENCE_COLUMNS.join(", "),
        control.view,
        window_sql(from, to),
        limit.map_or_else(String::new, |n| format!(" LIMIT {n}"))
    )
}

fn sample_seed(req: &Request) -> String {
    format!(
        "{}/{}",
        format_canonical(req.from),
        format_canonical(req.to)
    )
}

struct Context<'a> {
    scope: &'a Scope,
    req: &'a Request,
    events_in_window: u64,
    /// Events of the window by `source_format`.
    formats: &'a BTreeMap<String, u64>,
    days_without_events: &'a [String],
}

async fn evaluate<E: Engine>(
    engine: &E,
    cx: &Context<'_>,
    keeper: &mut Keeper,
    control: &Control,
) -> Result<ControlResult> {
    let kind = control.kind();
    let mut r = ControlResult {
        framework: control.framework.to_owned(),
        control_id: control.id.to_owned(),
        title: control.title(),
        reference: control.reference(),
        view: control.view.to_owned(),
        kind,
        severity: control.severity(),
        finds: control.finds(),
        why: control.why(),
        status: match kind {
            Kind::Evidence => Status::Evidenced,
            Kind::Finding => Status::Pass,
        },
        not_evaluable: None,
        gaps: Vec::new(),
        not_evaluable_for: Vec::new(),
        rows: 0,
        per_day: Vec::new(),
        summary: None,
        incomplete: Vec::new(),
        sample: Vec::new(),
        evidence_shown: 0,
        evidence: Vec::new(),
    };
    if lacks_scope(control, cx.scope) {
        let setting = control.requires().unwrap_or_default();
        r.status = Status::NotEvaluable;
        r.not_evaluable = Some(format!(
            "the scope setting `{setting}` is empty: list the namespaces or identities it covers \
             under [scope] in the config file"
        ));
        return Ok(r);
    }
    if cx.events_in_window == 0 {
        r.status = Status::NotEvaluable;
        r.not_evaluable = Some("no audit events in the window".into());
        return Ok(r);
    }
    // Rows from a source that does not record what the control relies on cannot be judged:
    // said, never passed silently.
    let details = control.details();
    let mut unjudged = 0;
    for (format, n) in cx.formats {
        let lacking: Vec<&str> = crate::controls::not_recorded(format)
            .iter()
            .filter(|d| details.contains(d))
            .map(|d| d.lacking())
            .collect();
        if !lacking.is_empty() {
            unjudged += n;
            r.not_evaluable_for.push(format!(
                "not evaluable for {format} rows ({n} in the window): {}",
                lacking.join(", ")
            ));
        }
    }
    let req = cx.req;
    match kind {
        Kind::Finding => {
            // Every row, read once: the count per day is taken from them (a count query and a
            // rows query scanned a whole-window control twice). NDJSON lists no rows here.
            let rows = if control.day_local() {
                Some(keeper.rows(engine, control).await?)
            } else if req.max_evidence == Some(0) {
                None
            } else {
                Some(window_rows(engine, control, req).await?)
            };
            r.per_day = match &rows {
                Some(rows) => per_day(rows),
                None => days(
                    &collect(
                        engine,
                        "rows per day",
                        &format!(
                            "SELECT to_char(ts, '%Y-%m-%d') AS d, count(*) AS n FROM {} \
                             WHERE {} GROUP BY d ORDER BY d",
                            control.view,
                            window_sql(req.from, req.to)
                        ),
                    )
                    .await?,
                )?,
            };
            r.rows = r.per_day.iter().map(|d| d.count).sum();
            if r.rows > 0 {
                r.status = Status::Findings;
                if req.max_evidence != Some(0) {
                    r.evidence = rows.unwrap_or_default();
                    if let Some(n) = req.max_evidence {
                        r.evidence.truncate(n);
                    }
                }
            }
        }
        Kind::Evidence => {
            // Read once, then counted, summarised and sampled here: one scan of the view instead
            // of one per figure (the views are not materialised).
            let rows = if control.day_local() {
                keeper.rows(engine, control).await?
            } else {
                window_rows(engine, control, req).await?
            };
            if !rows.is_empty() {
                r.incomplete = keeper.incomplete(engine, &rows).await?;
            }
            r.rows = rows.len() as u64;
            r.per_day = per_day(&rows);
            if rows.is_empty() {
                r.gaps.push(
                    "no events of this kind in the window: none happened, or the audit policy or \
                     the shipping pipeline does not record them"
                        .into(),
                );
            } else {
                r.summary = Some(summary(&rows));
                r.sample = sample(&rows, &sample_seed(req), req.sample);
            }
            if !cx.days_without_events.is_empty() {
                r.gaps.push(format!(
                    "{} day(s) of the window without any audit event ({}): whatever happened then \
                     is not on record",
                    cx.days_without_events.len(),
                    cx.days_without_events.join(", ")
                ));
            }
            r.evidence = rows;
            if let Some(n) = req.max_evidence {
                r.evidence.truncate(n);
            }
        }
    }
    if !r.not_evaluable_for.is_empty() {
        if unjudged == cx.events_in_window && r.rows == 0 {
            r.status = Status::NotEvaluable;
            r.not_evaluable = Some(r.not_evaluable_for.join("; "));
            r.gaps.clear();
        } else {
            r.gaps.extend(r.not_evaluable_for.iter().cloned());
        }
    }
    if !r.incomplete.is_empty() {
        let lacking: u64 = r.incomplete.iter().map(|i| i.rows).sum();
        let what: Vec<String> = r
            .incomplete
            .iter()
            .map(|i| format!("{} lack {}", i.rows, i.missing))
            .collect();
        r.gaps.push(format!(
            "{lacking} of {} evidence rows lack details PCI DSS 10.2.2 requires ({}): see \
             pci_10_2_2_missing_fields",
            r.rows,
            what.join("; ")
        ));
    }
    r.evidence_shown = r.evidence.len();
    Ok(r)
}

/// The control needs a scope list setting that is empty: it cannot be evaluated.
fn lacks_scope(control: &Control, scope: &Scope) -> bool {
    control
        .requires()
        .is_some_and(|setting| scope.is_empty(&setting).unwrap_or(false))
}

/// A control's rows over the whole window, by time, in one query.
async fn window_rows<E: Engine>(
    engine: &E,
    control: &Control,
    req: &Request,
) -> Result<Vec<Evidence>> {
    evidence(
        &collect(
            engine,
            "rows",
            &evidence_sql(control, req.from, req.to, None),
        )
        .await?,
    )
}

/// Rows per UTC day, from the rows' times.
fn per_day(rows: &[Evidence]) -> Vec<Day> {
    let mut days: BTreeMap<&str, u64> = BTreeMap::new();
    for e in rows {
        *days.entry(e.ts.get(..10).unwrap_or("")).or_default() += 1;
    }
    days.into_iter()
        .map(|(date, count)| Day {
            date: date.to_owned(),
            count,
        })
        .collect()
}

/// The most frequent keys first (ties by key), at most [`SUMMARY_TOP`], and how many keys there are.
fn top(keys: impl Iterator<Item = String>) -> (u64, Vec<Count>) {
    let mut n: BTreeMap<String, u64> = BTreeMap::new();
    for k in keys {
        *n.entry(k).or_default() += 1;
    }
    let distinct = n.len() as u64;
    let mut v: Vec<Count> = n
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v.truncate(SUMMARY_TOP);
    (distinct, v)
}

fn summary(rows: &[Evidence]) -> EvidenceSummary {
    let (identities, per_identity) = top(rows.iter().map(|e| {
        e.user_name
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "(no user)".into())
    }));
    let (_, per_action) = top(rows.iter().map(|e| {
        let mut k = format!(
            "{} {}",
            e.verb.as_deref().unwrap_or("(no verb)"),
            e.resource.as_deref().unwrap_or("(non-resource)")
        );
        if let Some(sub) = e.subresource.as_deref().filter(|s| !s.is_empty()) {
            k = format!("{k}/{sub}");
        }
        k
    }));
    EvidenceSummary {
        identities,
        per_identity,
        per_action,
    }
}

/// `n` rows drawn by the SHA-256 of each row's audit ID and time with the seed: the same rows for
/// the same window and data, whatever the format or the cap; shown by time.
fn sample(rows: &[Evidence], seed: &str, n: usize) -> Vec<Evidence> {
    use sha2::Digest;
    let mut keyed: Vec<([u8; 32], &Evidence)> = rows
        .iter()
        .map(|e| {
            let mut h = sha2::Sha256::new();
            h.update(e.audit_id.as_deref().unwrap_or("").as_bytes());
            h.update(b"|");
            h.update(e.ts.as_bytes());
            h.update(b"|");
            h.update(e.cluster.as_deref().unwrap_or("").as_bytes());
            h.update(b"|");
            h.update(e.reason.as_deref().unwrap_or("").as_bytes());
            h.update(b"|");
            h.update(seed.as_bytes());
            (h.finalize().into(), e)
        })
        .collect();
    keyed.sort_by_key(|k| k.0);
    let mut out: Vec<Evidence> = keyed.into_iter().take(n).map(|(_, e)| e.clone()).collect();
    out.sort_by(|a, b| (&a.ts, &a.audit_id).cmp(&(&b.ts, &b.audit_id)));
    out
}

/// Evaluates every control of the requested frameworks.
pub async fn build<E: Engine>(engine: &E, scope: &Scope, req: &Request) -> Result<Report> {
    if req.from >= req.to {
        return Err(Error::Refused(format!(
            "empty window: {} is not before {}",
            format_canonical(req.from),
            format_canonical(req.to)
        )));
    }
    let window = window_sql(req.from, req.to);
    let per_day: BTreeMap<String, u64> = days(
        &collect(
            engine,
            "events per day",
            &format!(
                "SELECT date, count(*) AS n FROM audit_events WHERE {window} GROUP BY date ORDER BY date"
            ),
        )
        .await?,
    )?
    .into_iter()
    .map(|d| (d.date, d.count))
    .collect();
    // Every day of the window, so that a day without events shows.
    let mut coverage = Vec::new();
    let mut t = req.from.div_euclid(DAY) * DAY;
    while t < req.to {
        let date = format_canonical(t)[..10].to_owned();
        let count = per_day.get(&date).copied().unwrap_or(0);
        coverage.push(Day { date, count });
        t += DAY;
    }
    let mut keeper = Keeper::plan(
        engine,
        scope,
        req,
        &coverage,
        chrono::Utc::now().timestamp_micros(),
    )
    .await;
    let events_in_window: u64 = coverage.iter().map(|d| d.count).sum();
    let days_without_events: Vec<String> = coverage
        .iter()
        .filter(|d| d.count == 0)
        .map(|d| d.date.clone())
        .collect();
    let formats: BTreeMap<String, u64> = counts(
        &collect(
            engine,
            "events per source format",
            &format!(
                "SELECT coalesce(source_format, 'k8s') AS f, count(*) AS n FROM audit_events \
                 WHERE {window} GROUP BY f ORDER BY f"
            ),
        )
        .await?,
    )?
    .into_iter()
    .map(|c| (c.key, c.count))
    .collect();
    let cx = Context {
        scope,
        req,
        events_in_window,
        formats: &formats,
        days_without_events: &days_without_events,
    };
    if events_in_window > 0 {
        // The day-local controls' rows of the days not kept, a day at a time: one read of each
        // day's events for all of them, instead of one scan of the window per control.
        let items: Vec<(&str, &str, String)> = CONTROLS
            .iter()
            .filter(|c| req.frameworks.contains(&c.framework) && c.day_local())
            .filter(|c| !lacks_scope(c, scope))
            .map(|c| (c.view, c.sql, evidence_sql(c, req.from, req.to, None)))
            .chain(std::iter::once((
                kept::INCOMPLETE,
                kept::INCOMPLETE,
                incomplete_sql(req.from, req.to),
            )))
            .collect();
        keeper.prefetch(engine, &items).await?;
    }
    let mut controls = Vec::new();
    for control in CONTROLS
        .iter()
        .filter(|c| req.frameworks.contains(&c.framework))
    {
        let started = std::time::Instant::now();
        let r = evaluate(engine, &cx, &mut keeper, control)
            .await
            .map_err(|e| Error::Query {
                what: format!("control {} ({})", control.id, control.view),
                source: Box::new(e),
            })?;
        tracing::info!(
            control = control.view,
            rows = r.rows,
            "evaluated in {:.3} s",
            started.elapsed().as_secs_f64()
        );
        controls.push(r);
    }
    for c in controls.iter_mut().filter(|c| c.kind == Kind::Evidence) {
        if c.status == Status::Evidenced && !c.gaps.is_empty() {
            c.status = Status::Gap;
        }
    }
    let summary = req
        .frameworks
        .iter()
        .map(|f| FrameworkSummary::of(f, &controls))
        .collect();
    Ok(Report {
        generator: format!("auditlake {}", env!("CARGO_PKG_VERSION")),
        scope_sha256: scope.sha256(),
        generated_at: format_canonical(chrono::Utc::now().timestamp_micros()),
        store: engine.store_url(),
        table_version: engine.table_version(),
        frameworks: req.frameworks.iter().map(|f| (*f).to_owned()).collect(),
        window_from: format_canonical(req.from),
        window_to: format_canonical(req.to),
        sample_seed: sample_seed(req),
        events_in_window,
        coverage,
        days_without_events,
        totals: Totals::of(controls.iter()),
        summary,
        integrity: None,
        controls,
        kept: keeper.stats,
    })
}

/// One UTC day of the window, clipped to it.
struct Segment {
    from: Micros,
    to: Micros,
    date: String,
    events: u64,
    /// The fingerprint of the day's files, when the day is kept: whole in the window, closed
    /// (before today, UTC) and with data files.
    files: Option<String>,
}

/// The rows of the day-local controls, day by day: read from the kept evidence where a closed
/// day's is kept under the same key, computed from the table for the rest (each run of
/// consecutive days not kept in one query), and kept for the closed days computed.
struct Keeper {
    segments: Vec<Segment>,
    /// The engine's base key and the scope's hash.
    base: String,
    mode: Kept,
    /// A write failed (a read-only store): the rest is not tried.
    write_failed: bool,
    /// The window's records lacking 10.2.2 details, by `(audit_id, ts, cluster)`.
    incomplete: Option<std::collections::HashMap<(String, String, String), Vec<String>>>,
    /// Each segment's rows computed or read by [`Keeper::prefetch`], by what and key.
    ready: std::collections::HashMap<String, Vec<Option<Vec<RecordBatch>>>>,
    stats: KeptStats,
}

impl Keeper {
    async fn plan<E: Engine>(
        engine: &E,
        scope: &Scope,
        req: &Request,
        coverage: &[Day],
        now: Micros,
    ) -> Self {
        let mut stats = KeptStats::default();
        let files = match engine.day_files(req.from, req.to).await {
            Ok(f) => f,
            Err(e) => {
                stats
                    .problems
                    .push(format!("the days' files could not be listed: {e}"));
                BTreeMap::new()
            }
        };
        let today = now.div_euclid(DAY) * DAY;
        let mut segments = Vec::new();
        let mut t = req.from.div_euclid(DAY) * DAY;
        for day in coverage {
            let whole = t >= req.from && t + DAY <= req.to;
            let files = (whole && t + DAY <= today)
                .then(|| files.get(&day.date).cloned())
                .flatten();
            stats.days += usize::from(files.is_some());
            segments.push(Segment {
                from: t.max(req.from),
                to: (t + DAY).min(req.to),
                date: day.date.clone(),
                events: day.count,
                files,
            });
            t += DAY;
        }
        Self {
            segments,
            base: kept::key(&[&engine.kept_base(), &scope.sha256()]),
            mode: req.kept,
            write_failed: false,
            incomplete: None,
            ready: Default::default(),
            stats,
        }
    }

    /// The control's rows in the window, by time.
    async fn rows<E: Engine>(&mut self, engine: &E, control: &Control) -> Result<Vec<Evidence>> {
        let sql = |from, to| evidence_sql(control, from, to, None);
        evidence(
            &self
                .batches(engine, control.view, control.sql, &sql)
                .await?,
        )
    }

    /// How many of the rows lack each detail 10.2.2 requires: the rows matched to
    /// `incomplete_records` on audit ID, time and cluster, as a join of the two would count them.
    async fn incomplete<E: Engine>(
        &mut self,
        engine: &E,
        rows: &[Evidence],
    ) -> Result<Vec<Incomplete>> {
        if self.incomplete.is_none() {
            let batches = self
                .batches(engine, kept::INCOMPLETE, kept::INCOMPLETE, &incomplete_sql)
                .await?;
            let mut keys: std::collections::HashMap<_, Vec<String>> = Default::default();
            for b in &batches {
                let text = |i: usize| cast(b.column(i), &DataType::Utf8);
                let (id, cluster, missing) = (text(1)?, text(2)?, text(3)?);
                let (id, cluster, missing) = (
                    id.as_string::<i32>(),
                    cluster.as_string::<i32>(),
                    missing.as_string::<i32>(),
                );
                let ts = cast(
                    b.column(0),
                    &DataType::Timestamp(TimeUnit::Microsecond, None),
                )?;
                let ts = ts.as_primitive::<TimestampMicrosecondType>();
                for i in 0..b.num_rows() {
                    if id.is_null(i) || ts.is_null(i) || missing.is_null(i) {
                        continue;
                    }
                    keys.entry((
                        id.value(i).to_owned(),
                        format_canonical(ts.value(i)),
                        cluster.value(i).to_owned(),
                    ))
                    .or_default()
                    .push(missing.value(i).to_owned());
                }
            }
            self.incomplete = Some(keys);
        }
        let keys = self.incomplete.as_ref().expect("loaded above");
        let mut n: BTreeMap<&str, u64> = BTreeMap::new();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        for e in rows {
            let Some(id) = &e.audit_id else { continue };
            if e.ts.is_empty() {
                continue;
            }
            let key = (
                id.clone(),
                e.ts.clone(),
                e.cluster.clone().unwrap_or_default(),
            );
            for m in keys.get(&key).into_iter().flatten() {
                *n.entry(m).or_default() += 1;
            }
        }
        Ok(n.into_iter()
            .map(|(missing, rows)| Incomplete {
                missing: missing.to_owned(),
                rows,
            })
            .collect())
    }

    /// The name a segment's rows of `what` (keyed by `key`) are kept under.
    fn kept_name(&self, s: &Segment, what: &str, key: &str, files: &str) -> String {
        kept::name(&s.date, what, &kept::key(&[&self.base, key, files]))
    }

    /// Each segment's rows of `what` as kept (none for a day without events), where they are.
    async fn lookup<E: Engine>(
        &mut self,
        engine: &E,
        what: &str,
        key: &str,
    ) -> Vec<Option<Vec<RecordBatch>>> {
        let mut parts = vec![None; self.segments.len()];
        for (i, s) in self.segments.iter().enumerate() {
            if s.events == 0 {
                parts[i] = Some(Vec::new());
                continue;
            }
            let Some(files) = &s.files else { continue };
            if self.mode != Kept::Use {
                continue;
            }
            let name = self.kept_name(s, what, key, files);
            match engine.read_kept(&name).await {
                Ok(Some(bytes)) => match kept::decode(bytes) {
                    Ok(b) => {
                        parts[i] = Some(b);
                        self.stats.read += 1;
                    }
                    Err(e) => self
                        .stats
                        .problems
                        .push(format!("{name}: {e}: computed again")),
                },
                Ok(None) => {}
                Err(e) => self.stats.problems.push(format!("{name}: {e}")),
            }
        }
        parts
    }

    /// Counts segment `k`'s rows of `what` as computed, and keeps them when the day is closed.
    async fn keep<E: Engine>(
        &mut self,
        engine: &E,
        (what, key): (&str, &str),
        k: usize,
        schema: &SchemaRef,
        day: &[RecordBatch],
    ) {
        self.stats.computed += 1;
        let Some(files) = &self.segments[k].files else {
            return;
        };
        if self.write_failed {
            return;
        }
        let name = self.kept_name(&self.segments[k], what, key, files);
        let written = match kept::encode(schema, day) {
            Ok(bytes) => engine
                .write_kept(&name, bytes)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match written {
            Ok(true) => self.stats.written += 1,
            Ok(false) => {}
            Err(e) => {
                self.write_failed = true;
                self.stats
                    .problems
                    .push(format!("{name} could not be kept: {e}"));
            }
        }
    }

    /// Computes the rows of every `(what, key, sql over the window)` for the days not kept, a day
    /// at a time with the day's events read once for all of them ([`Engine::by_day`]), and
    /// keeps them; [`Keeper::batches`] then takes them from here. An engine that cannot leaves
    /// them to [`Keeper::batches`].
    async fn prefetch<E: Engine>(
        &mut self,
        engine: &E,
        items: &[(&str, &str, String)],
    ) -> Result<()> {
        let mut parts = Vec::with_capacity(items.len());
        for (what, key, _) in items {
            parts.push(self.lookup(engine, what, key).await);
        }
        let mut work = Vec::new();
        for (k, s) in self.segments.iter().enumerate() {
            let queries: Vec<usize> = (0..items.len())
                .filter(|&q| parts[q][k].is_none())
                .collect();
            if !queries.is_empty() {
                work.push((
                    k,
                    DayWork {
                        date: s.date.clone(),
                        from: s.from,
                        to: s.to,
                        queries,
                    },
                ));
            }
        }
        if !work.is_empty() {
            for (i, (what, ..)) in items.iter().enumerate() {
                tracing::debug!(query = i, what, "day-local query");
            }
            let queries: Vec<String> = items.iter().map(|(_, _, sql)| sql.clone()).collect();
            let days: Vec<DayWork> = work.iter().map(|(_, w)| w.clone()).collect();
            let rows = engine
                .by_day(&queries, &days)
                .await
                .map_err(|source| Error::Query {
                    what: "the day-local controls, a day at a time".into(),
                    source,
                })?;
            if let Some(rows) = rows {
                for ((k, w), day) in work.iter().zip(rows.days) {
                    for (&q, b) in w.queries.iter().zip(day) {
                        let (what, key, _) = items[q];
                        self.keep(engine, (what, key), *k, &rows.schemas[q], &b)
                            .await;
                        parts[q][*k] = Some(b);
                    }
                }
            }
        }
        for ((what, key, _), p) in items.iter().zip(parts) {
            self.ready.insert(format!("{what}\n{key}"), p);
        }
        Ok(())
    }

    /// The rows of `sql` over the window (its `from` and `to`), sorted by `ts`, day by day.
    async fn batches<E: Engine>(
        &mut self,
        engine: &E,
        what: &str,
        key: &str,
        sql: &dyn Fn(Micros, Micros) -> String,
    ) -> Result<Vec<RecordBatch>> {
        let n = self.segments.len();
        let mut parts = match self.ready.remove(&format!("{what}\n{key}")) {
            Some(p) => p,
            None => self.lookup(engine, what, key).await,
        };
        let mut i = 0;
        while i < n {
            if parts[i].is_some() {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < n && parts[j + 1].is_none() {
                j += 1;
            }
            let q = sql(self.segments[i].from, self.segments[j].to);
            let mut stream = engine.stream(&q).await.map_err(|source| Error::Query {
                what: format!("{what}: {q}"),
                source,
            })?;
            let schema = stream.schema();
            let mut batches = Vec::new();
            while let Some(b) = futures::TryStreamExt::try_next(&mut stream).await? {
                batches.push(b);
            }
            let days = split_by_ts(&batches, &self.segments[i..=j])?;
            for (k, day) in (i..=j).zip(days) {
                self.keep(engine, (what, key), k, &schema, &day).await;
                parts[k] = Some(day);
            }
            i = j + 1;
        }
        Ok(parts.into_iter().flatten().flatten().collect())
    }
}

/// The window's records lacking 10.2.2 details, by time.
fn incomplete_sql(from: Micros, to: Micros) -> String {
    format!(
        "SELECT ts, audit_id, coalesce(cluster, '') AS cluster, missing \
         FROM {} WHERE {} ORDER BY ts, audit_id, cluster, missing",
        kept::INCOMPLETE,
        window_sql(from, to)
    )
}

/// Rows sorted by `ts` (none null: a window filter dropped those) cut at the segments' ends.
fn split_by_ts(batches: &[RecordBatch], segments: &[Segment]) -> Result<Vec<Vec<RecordBatch>>> {
    let mut out = vec![Vec::new(); segments.len()];
    let mut last = i64::MIN;
    for b in batches {
        let ts = b
            .column_by_name("ts")
            .ok_or_else(|| Error::Render("rows without a ts column".into()))?;
        let ts = cast(ts, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let values = ts.values();
        if ts.null_count() > 0
            || values.windows(2).any(|w| w[0] > w[1])
            || values.first().is_some_and(|&t| t < last)
        {
            return Err(Error::Render("rows not sorted by ts".into()));
        }
        last = values.last().copied().unwrap_or(last);
        let mut start = 0;
        for (k, s) in segments.iter().enumerate() {
            let end = start + values[start..].partition_point(|&t| t < s.to);
            if end > start {
                out[k].push(b.slice(start, end - start));
            }
            start = end;
        }
        if start < values.len() {
            return Err(Error::Render("rows after the window's end".into()));
        }
    }
    Ok(out)
}
