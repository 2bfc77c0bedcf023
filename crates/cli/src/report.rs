//! `auditlake report`: every control of a framework evaluated over a time window, as the document
//! handed to an auditor (Markdown, self-contained HTML, JSON, CSV).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use auditlake_model::time::{Micros, format_canonical};
use auditlake_query::compliance::{EVIDENCE_COLUMNS, FRAMEWORKS};
use auditlake_query::{AuditSession, CONTROLS, Control, QueryOptions, Scope};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, TimestampMicrosecondType};
use serde::Serialize;

use crate::config::{Config, parse_age};
use crate::time_arg::parse_time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Md,
    Html,
    Json,
    Csv,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Md => "md",
            Self::Html => "html",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }

    /// Evidence rows per control when none is asked for: all of them where a machine reads the
    /// report, a page's worth where a person does.
    pub fn evidence_cap(self) -> Option<usize> {
        match self {
            Self::Md | Self::Html => Some(25),
            Self::Json | Self::Csv => None,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// soc2, pci-dss, hipaa, cis, detections, or all.
    #[arg(long, default_value = "all")]
    framework: String,
    /// Start of the window (RFC 3339 or a date); default: --last before --to.
    #[arg(long)]
    from: Option<String>,
    /// End of the window, exclusive; default: now.
    #[arg(long)]
    to: Option<String>,
    /// Length of the window when --from is not given (7d, 4w, 1y).
    #[arg(long, default_value = "30d")]
    last: String,
    #[arg(long, value_enum, default_value = "md")]
    format: ReportFormat,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<std::path::PathBuf>,
    /// Evidence rows per control (the total is always given). Default: every row for json and
    /// csv (what a GRC system imports must be the evidence, not a sample), 25 for md and html.
    #[arg(long)]
    max_evidence: Option<usize>,
    /// Compute the report on the store as it stood at a table version (a number, as a report
    /// records it) or a time.
    #[arg(long, value_name = "VERSION|TIME")]
    as_of: Option<String>,
    /// Check the digests' signatures against this public key (or `[integrity] public_key`).
    #[arg(long, value_name = "FILE")]
    public_key: Option<std::path::PathBuf>,
    /// Leave out the verification of the store (the chain of digests and the window's files).
    #[arg(long)]
    no_verify: bool,
    /// Exit with status 4 when any control has findings (for CI and cron alerting).
    #[arg(long)]
    fail_on_findings: bool,
}

/// What to report on: frameworks and window.
#[derive(Debug, Clone)]
pub struct Request {
    pub frameworks: Vec<&'static str>,
    pub from: Micros,
    pub to: Micros,
    /// `None`: every evidence row.
    pub max_evidence: Option<usize>,
}

/// Parses `soc2`, `pci-dss` (also `pci`), `hipaa`, `cis`, `detections` or `all`, comma-separated.
pub fn parse_frameworks(s: &str) -> Result<Vec<&'static str>> {
    let mut out: Vec<&'static str> = Vec::new();
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
            None => bail!(
                "unknown framework {part:?}: use {} or all",
                FRAMEWORKS.join(", ")
            ),
        }
    }
    if out.is_empty() {
        bail!("no framework given: use {} or all", FRAMEWORKS.join(", "));
    }
    Ok(out)
}

fn framework_title(f: &str) -> &'static str {
    match f {
        "pci-dss" => "PCI DSS v4.0",
        "soc2" => "SOC 2",
        "hipaa" => "HIPAA Security Rule",
        "cis" => "CIS Kubernetes Benchmark",
        "detections" => "Security detections",
        _ => "Other",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Findings,
    NotEvaluable,
}

impl Status {
    /// The CSS class, as the status is spelled in JSON.
    fn class(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Findings => "findings",
            Self::NotEvaluable => "not_evaluable",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Findings => "findings",
            Self::NotEvaluable => "not evaluable",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Day {
    pub date: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct ControlResult {
    pub framework: String,
    pub control_id: String,
    pub title: String,
    pub reference: String,
    pub view: String,
    pub severity: String,
    pub finds: String,
    pub why: String,
    pub status: Status,
    /// Why the control could not be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_evaluable: Option<String>,
    pub findings: u64,
    pub findings_per_day: Vec<Day>,
    pub evidence_shown: usize,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub controls: usize,
    pub pass: usize,
    pub findings: usize,
    pub not_evaluable: usize,
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
    pub events_in_window: u64,
    /// Events per day of the window, every day listed (0 for a day without events).
    pub coverage: Vec<Day>,
    pub days_without_events: Vec<String>,
    pub totals: Totals,
    /// `auditlake verify` of the window's days, when run (`--no-verify` skips it).
    pub integrity: Option<Integrity>,
    pub controls: Vec<ControlResult>,
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

/// Verifies the store for the days of `[from, to)`.
pub async fn integrity(
    store: &auditlake_store::Store,
    config: &Config,
    public_key: Option<&std::path::PathBuf>,
    from: Micros,
    to: Micros,
) -> Result<Integrity> {
    let key = crate::integrity::public_key(public_key, &config.integrity)?;
    let opts = auditlake_store::integrity::VerifyOptions {
        from: Some(from),
        to: Some(to),
        public_key: key,
        expect_version: None,
    };
    let r = auditlake_store::integrity::verify(store, &opts)
        .await
        .context("verification of the store")?;
    Ok(Integrity {
        clean: r.clean(),
        verified_version: r.version,
        entries: r.entries,
        signed: r.signed,
        key: r.key.clone(),
        files_hashed: r.files_hashed,
        findings: r.findings.iter().map(|f| f.describe()).collect(),
    })
}

fn integrity_text(i: &Integrity) -> String {
    let key = match &i.key {
        Some(k) => format!("{} signed by key {k}", i.signed),
        None => "signatures not checked (no public key)".to_owned(),
    };
    if i.clean {
        format!(
            "clean: {} log entries up to table version {} chained, {key}; {} files of the window hashed and as committed",
            i.entries,
            version_text(i.verified_version),
            i.files_hashed
        )
    } else {
        format!(
            "NOT CLEAN: {} finding(s) over {} log entries up to table version {} ({key}): {}",
            i.findings.len(),
            i.entries,
            version_text(i.verified_version),
            i.findings.join("; ")
        )
    }
}

const DAY: i64 = 86_400_000_000;

fn window_sql(from: Micros, to: Micros) -> String {
    format!(
        "ts >= TIMESTAMP '{}' AND ts < TIMESTAMP '{}'",
        format_canonical(from),
        format_canonical(to)
    )
}

async fn collect(session: &AuditSession, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = session
        .sql(sql)
        .await
        .with_context(|| format!("cannot plan: {sql}"))?;
    df.collect()
        .await
        .with_context(|| format!("cannot run: {sql}"))
}

/// `(day, count)` rows of a `SELECT d, count(*)` query.
fn days(batches: &[RecordBatch]) -> Result<Vec<Day>> {
    let mut out = Vec::new();
    for b in batches {
        let d = cast(b.column(0), &DataType::Utf8)?;
        let d = d.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push(Day {
                date: d.value(i).to_owned(),
                count: n.value(i) as u64,
            });
        }
    }
    Ok(out)
}

fn evidence(batches: &[RecordBatch]) -> Result<Vec<Evidence>> {
    let mut out = Vec::new();
    for b in batches {
        let s = |name: &str| -> Result<Vec<Option<String>>> {
            let c = b
                .column_by_name(name)
                .with_context(|| format!("evidence without column {name}"))?;
            let c = cast(c, &DataType::Utf8)?;
            let c = c.as_string::<i32>();
            Ok((0..c.len())
                .map(|i| c.is_valid(i).then(|| c.value(i).to_owned()))
                .collect())
        };
        let ts = cast(
            b.column_by_name("ts").context("evidence without ts")?,
            &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
        )?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let code = cast(
            b.column_by_name("response_code")
                .context("evidence without response_code")?,
            &DataType::Int32,
        )?;
        let code = code.as_primitive::<Int32Type>();
        let [
            audit_id,
            cluster,
            user,
            verb,
            resource,
            sub,
            ns,
            name,
            reason,
        ] = [
            "audit_id",
            "cluster",
            "user_name",
            "verb",
            "resource",
            "subresource",
            "namespace",
            "name",
            "reason",
        ]
        .map(s);
        let (mut audit_id, mut cluster, mut user, mut verb) = (audit_id?, cluster?, user?, verb?);
        let (mut resource, mut sub, mut ns, mut name, mut reason) =
            (resource?, sub?, ns?, name?, reason?);
        for i in 0..b.num_rows() {
            out.push(Evidence {
                ts: if ts.is_valid(i) {
                    format_canonical(ts.value(i))
                } else {
                    String::new()
                },
                audit_id: audit_id[i].take(),
                cluster: cluster[i].take(),
                user_name: user[i].take(),
                verb: verb[i].take(),
                resource: resource[i].take(),
                subresource: sub[i].take(),
                namespace: ns[i].take(),
                name: name[i].take(),
                response_code: code.is_valid(i).then(|| code.value(i)),
                reason: reason[i].take(),
            });
        }
    }
    Ok(out)
}

async fn evaluate(
    session: &AuditSession,
    scope: &Scope,
    control: &Control,
    req: &Request,
    events_in_window: u64,
) -> Result<ControlResult> {
    let mut r = ControlResult {
        framework: control.framework.to_owned(),
        control_id: control.id.to_owned(),
        title: control.title(),
        reference: control.reference(),
        view: control.view.to_owned(),
        severity: control.severity(),
        finds: control.finds(),
        why: control.why(),
        status: Status::Pass,
        not_evaluable: None,
        findings: 0,
        findings_per_day: Vec::new(),
        evidence_shown: 0,
        evidence: Vec::new(),
    };
    if let Some(setting) = control.requires()
        && scope.is_empty(&setting).unwrap_or(false)
    {
        r.status = Status::NotEvaluable;
        r.not_evaluable = Some(format!(
            "the scope setting `{setting}` is empty: list the namespaces or identities it covers \
             under [scope] in the config file"
        ));
        return Ok(r);
    }
    if events_in_window == 0 {
        r.status = Status::NotEvaluable;
        r.not_evaluable = Some("no audit events in the window".into());
        return Ok(r);
    }
    let window = window_sql(req.from, req.to);
    let per_day = collect(
        session,
        &format!(
            "SELECT to_char(ts, '%Y-%m-%d') AS d, count(*) AS n FROM {} WHERE {window} \
             GROUP BY d ORDER BY d",
            control.view
        ),
    )
    .await?;
    r.findings_per_day = days(&per_day)?;
    r.findings = r.findings_per_day.iter().map(|d| d.count).sum();
    if r.findings > 0 {
        r.status = Status::Findings;
        let rows = collect(
            session,
            &format!(
                "SELECT {} FROM {} WHERE {window} ORDER BY ts, audit_id{}",
                EVIDENCE_COLUMNS.join(", "),
                control.view,
                req.max_evidence
                    .map_or_else(String::new, |n| format!(" LIMIT {n}"))
            ),
        )
        .await?;
        r.evidence = evidence(&rows)?;
        r.evidence_shown = r.evidence.len();
    }
    Ok(r)
}

/// Evaluates every control of the requested frameworks.
pub async fn build(session: &AuditSession, scope: &Scope, req: &Request) -> Result<Report> {
    if req.from >= req.to {
        bail!(
            "empty window: {} is not before {}",
            format_canonical(req.from),
            format_canonical(req.to)
        );
    }
    let window = window_sql(req.from, req.to);
    let per_day = days(
        &collect(
            session,
            &format!(
                "SELECT date, count(*) AS n FROM audit_events WHERE {window} GROUP BY date ORDER BY date"
            ),
        )
        .await?,
    )?;
    // Every day of the window, so that a day without events shows.
    let mut coverage = Vec::new();
    let mut t = req.from.div_euclid(DAY) * DAY;
    while t < req.to {
        let date = format_canonical(t)[..10].to_owned();
        let count = per_day
            .iter()
            .find(|d| d.date == date)
            .map_or(0, |d| d.count);
        coverage.push(Day { date, count });
        t += DAY;
    }
    let events_in_window: u64 = coverage.iter().map(|d| d.count).sum();
    let days_without_events = coverage
        .iter()
        .filter(|d| d.count == 0)
        .map(|d| d.date.clone())
        .collect();
    let mut controls = Vec::new();
    for control in CONTROLS
        .iter()
        .filter(|c| req.frameworks.contains(&c.framework))
    {
        let r = evaluate(session, scope, control, req, events_in_window)
            .await
            .with_context(|| format!("control {} ({})", control.id, control.view))?;
        controls.push(r);
    }
    let count = |s: Status| controls.iter().filter(|c| c.status == s).count();
    let totals = Totals {
        controls: controls.len(),
        pass: count(Status::Pass),
        findings: count(Status::Findings),
        not_evaluable: count(Status::NotEvaluable),
    };
    Ok(Report {
        generator: format!("auditlake {}", env!("CARGO_PKG_VERSION")),
        scope_sha256: auditlake_store::integrity::sha256_hex(
            serde_json::to_string(scope).unwrap_or_default().as_bytes(),
        ),
        generated_at: format_canonical(chrono::Utc::now().timestamp_micros()),
        store: session.store().url().to_string(),
        table_version: session.version(),
        frameworks: req.frameworks.iter().map(|f| (*f).to_owned()).collect(),
        window_from: format_canonical(req.from),
        window_to: format_canonical(req.to),
        events_in_window,
        coverage,
        days_without_events,
        totals,
        integrity: None,
        controls,
    })
}

/// Renders a report in a format.
pub fn render(report: &Report, format: ReportFormat) -> Result<Vec<u8>> {
    Ok(match format {
        ReportFormat::Json => {
            let mut v = serde_json::to_vec_pretty(report)?;
            v.push(b'\n');
            v
        }
        ReportFormat::Csv => render_csv(report).into_bytes(),
        ReportFormat::Md => render_md(report).into_bytes(),
        ReportFormat::Html => render_html(report).into_bytes(),
    })
}

/// The window of a report: explicit bounds, or `last` before `to` (default now).
pub fn window(from: Option<&str>, to: Option<&str>, last: &str) -> Result<(Micros, Micros)> {
    let to = match to {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp_micros(),
    };
    let from = match from {
        Some(f) => parse_time(f)?,
        None => {
            let age = parse_age(last)?;
            to - age.num_microseconds().context("window too long")?
        }
    };
    Ok((from, to))
}

pub fn run(store: &str, config: &Config, args: Args) -> Result<ExitCode> {
    let (from, to) = window(args.from.as_deref(), args.to.as_deref(), &args.last)?;
    let req = Request {
        frameworks: parse_frameworks(&args.framework)?,
        from,
        to,
        max_evidence: args.max_evidence.or(args.format.evidence_cap()),
    };
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let opts = QueryOptions {
        scope: config.scope.clone(),
        as_of: rt.block_on(pinned(&store, args.as_of.as_deref()))?,
        ..Default::default()
    };
    let session = rt.block_on(AuditSession::open(store.clone(), &opts))?;
    let mut report = rt.block_on(build(&session, &config.scope, &req))?;
    if !args.no_verify {
        report.integrity = Some(rt.block_on(integrity(
            &store,
            config,
            args.public_key.as_ref(),
            from,
            to,
        ))?);
    }
    let bytes = render(&report, args.format)?;
    match &args.out {
        Some(p) => std::fs::write(p, &bytes)
            .with_context(|| format!("cannot write the report to {}", p.display()))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    let t = &report.totals;
    eprintln!(
        "{} controls: {} pass, {} with findings, {} not evaluable; {} events in the window",
        t.controls, t.pass, t.findings, t.not_evaluable, report.events_in_window
    );
    if args.fail_on_findings && t.findings > 0 {
        return Ok(ExitCode::from(4));
    }
    Ok(ExitCode::SUCCESS)
}

/// One CSV cell. A cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return: a user name or a request URI is the client's text) gets a
/// leading `'`, which spreadsheets show as text (OWASP's CSV injection advice).
fn csv_field(s: &str) -> String {
    let s: std::borrow::Cow<'_, str> = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

fn render_csv(r: &Report) -> String {
    let mut out = String::from(
        "framework,control_id,title,severity,status,findings,ts,audit_id,cluster,user_name,verb,\
         resource,subresource,namespace,name,response_code,reason\n",
    );
    for c in &r.controls {
        let head = [
            c.framework.as_str(),
            &c.control_id,
            &c.title,
            &c.severity,
            c.status.label(),
            &c.findings.to_string(),
        ]
        .map(csv_field)
        .join(",");
        if c.evidence.is_empty() {
            let why = c.not_evaluable.as_deref().unwrap_or("");
            let _ = writeln!(out, "{head},,,,,,,,,,,{}", csv_field(why));
        }
        for e in &c.evidence {
            let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
            let _ = writeln!(
                out,
                "{head},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&e.ts),
                o(&e.audit_id),
                o(&e.cluster),
                o(&e.user_name),
                o(&e.verb),
                o(&e.resource),
                o(&e.subresource),
                o(&e.namespace),
                o(&e.name),
                e.response_code.map(|c| c.to_string()).unwrap_or_default(),
                o(&e.reason)
            );
        }
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn frameworks_title(r: &Report) -> String {
    r.frameworks
        .iter()
        .map(|f| framework_title(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table version as a report shows it.
fn version_text(v: Option<u64>) -> String {
    v.map_or_else(
        || "none: no transaction log yet".to_owned(),
        |v| v.to_string(),
    )
}

/// What a report reads: the version `--as-of` names, else the latest when it starts, so that
/// every control sees the same files and the report can say which.
pub async fn pinned(
    store: &auditlake_store::Store,
    as_of: Option<&str>,
) -> Result<Option<auditlake_store::AsOf>> {
    Ok(match as_of {
        Some(a) => Some(crate::time_arg::parse_as_of(a)?),
        None => store
            .latest_version()
            .await?
            .map(auditlake_store::AsOf::Version),
    })
}

fn render_md(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Compliance report: {}\n", frameworks_title(r));
    let _ = writeln!(
        o,
        "- Window: {} to {} (UTC, end exclusive)\n- Store: {} (table version {})\n- Integrity: {}\n- Scope: SHA-256 {}\n- Generated: {} by {}\n- Events in the window: {}\n- Controls: {} evaluated, {} pass, {} with findings, {} not evaluable\n",
        r.window_from,
        r.window_to,
        r.store,
        version_text(r.table_version),
        r.integrity
            .as_ref()
            .map_or("not verified (--no-verify)".to_owned(), integrity_text),
        r.scope_sha256,
        r.generated_at,
        r.generator,
        r.events_in_window,
        r.totals.controls,
        r.totals.pass,
        r.totals.findings,
        r.totals.not_evaluable
    );
    if !r.days_without_events.is_empty() {
        let _ = writeln!(
            o,
            "**Days without any audit event: {}** (audit logging stopped, or nothing was shipped).\n",
            r.days_without_events.join(", ")
        );
    }
    let _ = writeln!(o, "## Controls\n");
    let _ = writeln!(
        o,
        "| framework | control | title | severity | status | findings |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---:|");
    for c in &r.controls {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            framework_title(&c.framework),
            md_cell(&c.control_id),
            md_cell(&c.title),
            c.severity,
            c.status.label(),
            c.findings
        );
    }
    let _ = writeln!(
        o,
        "\n## Event coverage per day\n\n| date | events |\n|---|---:|"
    );
    for d in &r.coverage {
        let mark = if d.count == 0 { " **(none)**" } else { "" };
        let _ = writeln!(o, "| {} | {}{} |", d.date, d.count, mark);
    }
    for c in &r.controls {
        if c.status == Status::Pass {
            continue;
        }
        let _ = writeln!(
            o,
            "\n## {} {}: {}\n\n{}\n\n- Finds: {}\n- Why: {}\n- Severity: {}; view `{}`",
            framework_title(&c.framework),
            c.control_id,
            c.title,
            c.reference,
            c.finds,
            c.why,
            c.severity,
            c.view
        );
        if let Some(why) = &c.not_evaluable {
            let _ = writeln!(o, "\n**Not evaluable:** {why}");
            continue;
        }
        let _ = writeln!(
            o,
            "\n{} findings; the first {} by time{}:\n\n| ts | audit_id | user | verb | object | code | reason |\n|---|---|---|---|---|---:|---|",
            c.findings,
            c.evidence_shown,
            if (c.evidence_shown as u64) < c.findings {
                " (every row: `--format json` or `--format csv`)"
            } else {
                ""
            }
        );
        for e in &c.evidence {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                e.ts,
                e.audit_id.as_deref().unwrap_or(""),
                md_cell(e.user_name.as_deref().unwrap_or("")),
                e.verb.as_deref().unwrap_or(""),
                md_cell(&object(e)),
                e.response_code.map(|c| c.to_string()).unwrap_or_default(),
                md_cell(e.reason.as_deref().unwrap_or(""))
            );
        }
    }
    o
}

fn object(e: &Evidence) -> String {
    let mut s = e.resource.clone().unwrap_or_default();
    if let Some(sub) = e.subresource.as_deref().filter(|s| !s.is_empty()) {
        s = format!("{s}/{sub}");
    }
    if let Some(n) = e.name.as_deref().filter(|s| !s.is_empty()) {
        s = format!("{s} {n}");
    }
    if let Some(ns) = e.namespace.as_deref().filter(|s| !s.is_empty()) {
        s = format!("{s} ({ns})");
    }
    s
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A bar per day as inline SVG; zero-days get a red mark on the axis when `flag_zero`.
fn bar_chart(id: &str, title: &str, days: &[Day], color: &str, flag_zero: bool) -> String {
    let (w, h, left, bottom, top) = (960.0_f64, 180.0_f64, 56.0_f64, 28.0_f64, 12.0_f64);
    let max = days.iter().map(|d| d.count).max().unwrap_or(0).max(1) as f64;
    let n = days.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let bar = (slot * 0.8).max(1.0);
    let plot_h = h - bottom - top;
    let mut s = format!(
        "<figure class=\"chart\" id=\"{id}\"><figcaption>{}</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"axis\"/>\
         <text x=\"{tx}\" y=\"{ty}\" class=\"tick\" text-anchor=\"end\">{}</text>\
         <text x=\"{tx}\" y=\"{y}\" class=\"tick\" text-anchor=\"end\">0</text>",
        max as u64,
        y = h - bottom,
        x2 = w - 8.0,
        tx = left - 6.0,
        ty = top + 10.0
    );
    for (i, d) in days.iter().enumerate() {
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let bh = (d.count as f64 / max) * plot_h;
        let y = h - bottom - bh;
        if d.count == 0 && flag_zero {
            let _ = write!(
                s,
                "<rect class=\"zero\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"4\"><title>{}: no events</title></rect>",
                h - bottom - 4.0,
                d.date
            );
        } else {
            let _ = write!(
                s,
                "<rect class=\"bar\" fill=\"{color}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\"><title>{}: {}</title></rect>",
                d.date, d.count
            );
        }
    }
    let every = (days.len() / 8).max(1);
    for (i, d) in days.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let x = left + i as f64 * slot + slot / 2.0;
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            h - 8.0,
            &d.date[5..]
        );
    }
    s.push_str("</svg></figure>");
    s
}

const CSS: &str = "
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#fff;--pass:#1f7a3f;--find:#b3261e;--ne:#8a6d00}
*{box-sizing:border-box}body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:1040px;margin:0 auto;padding:32px 24px 64px}h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 12px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:28px 0 6px}.meta{color:var(--muted);margin:0 0 20px}.meta b{color:var(--fg);font-weight:600}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}.card{border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:150px}
.card .n{font-size:26px;font-weight:650}.card.pass .n{color:var(--pass)}.card.findings .n{color:var(--find)}.card.ne .n{color:var(--ne)}
.alert{border-left:4px solid var(--find);background:#fdf1f0;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:13.5px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.badge.pass{background:var(--pass)}.badge.findings{background:var(--find)}.badge.not_evaluable{background:var(--ne)}
.sev{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.chart{margin:8px 0 20px}.chart figcaption{font-weight:600;margin-bottom:4px}.chart svg{width:100%;height:auto}
.axis{stroke:#98a1b3}.tick{font-size:11px;fill:var(--muted)}.zero{fill:var(--find)}
.control{border:1px solid var(--line);border-radius:8px;padding:4px 16px 14px;margin:16px 0}
.control p{margin:6px 0}.muted{color:var(--muted)}code{font-size:12.5px}
footer{margin-top:40px;color:var(--muted);font-size:13px}
@media print{.control{break-inside:avoid}}
";

fn render_html(r: &Report) -> String {
    let mut o = String::new();
    let title = format!("Compliance report: {}", frameworks_title(r));
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body><main>",
        esc(&title)
    );
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"meta\">Window <b>{}</b> to <b>{}</b> (UTC, end exclusive) · store <b>{}</b> at table version <b id=\"table-version\">{}</b> · scope SHA-256 <code id=\"scope-sha256\">{}</code> · generated {} by {}</p>",
        esc(&title),
        esc(&r.window_from),
        esc(&r.window_to),
        esc(&r.store),
        version_text(r.table_version),
        esc(&r.scope_sha256),
        esc(&r.generated_at),
        esc(&r.generator)
    );
    match &r.integrity {
        Some(i) => {
            let _ = write!(
                o,
                "<p class=\"{}\" id=\"integrity\" data-clean=\"{}\"><b>Integrity:</b> {}</p>",
                if i.clean { "meta" } else { "alert" },
                i.clean,
                esc(&integrity_text(i))
            );
        }
        None => {
            let _ = write!(
                o,
                "<p class=\"meta\" id=\"integrity\" data-clean=\"unknown\"><b>Integrity:</b> not verified (--no-verify)</p>"
            );
        }
    }
    let _ = write!(
        o,
        "<div class=\"cards\" id=\"totals\">\
         <div class=\"card\"><div class=\"n\">{}</div>events in the window</div>\
         <div class=\"card\"><div class=\"n\">{}</div>controls evaluated</div>\
         <div class=\"card pass\"><div class=\"n\">{}</div>pass</div>\
         <div class=\"card findings\"><div class=\"n\">{}</div>with findings</div>\
         <div class=\"card ne\"><div class=\"n\">{}</div>not evaluable</div></div>",
        r.events_in_window,
        r.totals.controls,
        r.totals.pass,
        r.totals.findings,
        r.totals.not_evaluable
    );
    if !r.days_without_events.is_empty() {
        let _ = write!(
            o,
            "<p class=\"alert\" id=\"missing-days\"><b>{} day(s) without any audit event:</b> {}. Audit logging stopped, or events were not shipped.</p>",
            r.days_without_events.len(),
            esc(&r.days_without_events.join(", "))
        );
    }
    o.push_str(&bar_chart(
        "events-per-day",
        "Audit events per day",
        &r.coverage,
        "#3b6fd4",
        true,
    ));
    let findings_per_day: Vec<Day> = r
        .coverage
        .iter()
        .map(|d| Day {
            date: d.date.clone(),
            count: r
                .controls
                .iter()
                .flat_map(|c| &c.findings_per_day)
                .filter(|f| f.date == d.date)
                .map(|f| f.count)
                .sum(),
        })
        .collect();
    o.push_str(&bar_chart(
        "findings-per-day",
        "Findings per day (all controls)",
        &findings_per_day,
        "#b3261e",
        false,
    ));
    o.push_str("<h2>Controls</h2><table id=\"controls\"><thead><tr><th>Framework</th><th>Control</th><th>Title</th><th>Severity</th><th>Status</th><th>Findings</th></tr></thead><tbody>");
    for c in &r.controls {
        let _ = write!(
            o,
            "<tr data-view=\"{}\"><td>{}</td><td><a href=\"#{}\">{}</a></td><td>{}</td><td class=\"sev\">{}</td><td><span class=\"badge {}\">{}</span></td><td class=\"num\">{}</td></tr>",
            esc(&c.view),
            esc(framework_title(&c.framework)),
            esc(&c.view),
            esc(&c.control_id),
            esc(&c.title),
            esc(&c.severity),
            c.status.class(),
            c.status.label(),
            c.findings
        );
    }
    o.push_str("</tbody></table><h2>Details</h2>");
    for c in &r.controls {
        let _ = write!(
            o,
            "<section class=\"control\" id=\"{}\"><h3>{} {}: {} <span class=\"badge {}\">{}</span></h3>\
             <p class=\"muted\">{} · severity {} · view <code>{}</code></p><p><b>Finds:</b> {}</p><p><b>Why it matters:</b> {}</p>",
            esc(&c.view),
            esc(framework_title(&c.framework)),
            esc(&c.control_id),
            esc(&c.title),
            c.status.class(),
            c.status.label(),
            esc(&c.reference),
            esc(&c.severity),
            esc(&c.view),
            esc(&c.finds),
            esc(&c.why)
        );
        match (&c.not_evaluable, c.findings) {
            (Some(why), _) => {
                let _ = write!(o, "<p><b>Not evaluable:</b> {}</p>", esc(why));
            }
            (None, 0) => o.push_str("<p>No findings in the window.</p>"),
            (None, n) => {
                let _ = write!(
                    o,
                    "<p><b>{n} findings</b>; the first {} by time{}:</p><table class=\"evidence\"><thead><tr><th>Time (UTC)</th><th>Audit ID</th><th>User</th><th>Verb</th><th>Object</th><th>Code</th><th>Reason</th></tr></thead><tbody>",
                    c.evidence_shown,
                    if (c.evidence_shown as u64) < n {
                        " (every row: <code>--format json</code> or <code>--format csv</code>)"
                    } else {
                        ""
                    }
                );
                for e in &c.evidence {
                    let _ = write!(
                        o,
                        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                        esc(&e.ts),
                        esc(e.audit_id.as_deref().unwrap_or("")),
                        esc(e.user_name.as_deref().unwrap_or("")),
                        esc(e.verb.as_deref().unwrap_or("")),
                        esc(&object(e)),
                        e.response_code.map(|c| c.to_string()).unwrap_or_default(),
                        esc(e.reason.as_deref().unwrap_or(""))
                    );
                }
                o.push_str("</tbody></table>");
            }
        }
        o.push_str("</section>");
    }
    let _ = writeln!(
        o,
        "<footer>Generated by {} from the audit events stored in {}. Each control is a SQL view \
         (sql/compliance/); re-run it in <code>auditlake sql</code> to see every row.</footer></main></body></html>",
        esc(&r.generator),
        esc(&r.store)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frameworks_and_escaping() {
        assert_eq!(parse_frameworks("all").unwrap(), FRAMEWORKS.to_vec());
        assert_eq!(
            parse_frameworks("pci,soc2").unwrap(),
            vec!["pci-dss", "soc2"]
        );
        assert!(parse_frameworks("iso27001").is_err());
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
