//! `auditlake policy`: the Kubernetes audit policy, evaluated and linted (auditlake-policy).
//!
//! `eval` reads events from files (any format `ingest` takes: they are ingested into a temporary
//! store first, so they are read exactly as a store would hold them) or from the store (`--from`,
//! `--to`), and prints what the policy decides for each.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use auditlake_policy::{Attributes, Policy, lint};
use auditlake_query::{AuditSession, QueryOptions};
use datafusion::arrow::array::{Array, AsArray, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use futures::StreamExt;

use crate::time_arg::parse_time;

/// Exit code of `policy lint` when it has findings.
pub const EXIT_FINDINGS: u8 = 4;

#[derive(clap::Subcommand)]
pub enum Args {
    /// For each event: the level, omitted stages and omitManagedFields the policy gives it.
    Eval(EvalArgs),
    /// CIS 3.2.1/3.2.2 and the common mistakes; exit 4 when anything is found.
    Lint(LintArgs),
    /// What a candidate policy would have kept of the stored history: events and bytes per day
    /// and level, and the evidence of each control it would take away.
    Simulate(SimulateArgs),
    /// A policy from the history that keeps every control's evidence and drops the reads nothing
    /// uses (YAML on standard output, its simulation on standard error).
    Suggest(crate::suggest::SuggestArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    Md,
    Json,
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The candidate audit.k8s.io/v1 Policy (YAML).
    #[arg(long)]
    pub policy: std::path::PathBuf,
    #[command(flatten)]
    pub window: Window,
    #[arg(long, value_enum, default_value = "md")]
    pub format: SimFormat,
}

/// The window of stored history `simulate` and `suggest` read.
#[derive(clap::Args)]
pub struct Window {
    /// Start of the window (RFC 3339 or a date); default: --last before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the window, exclusive; default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// Length of the window when --from is not given.
    #[arg(long, default_value = "30d")]
    pub last: String,
}

impl Window {
    /// `[from, to)` in microseconds.
    pub fn bounds(&self) -> Result<(i64, i64)> {
        crate::report::window(self.from.as_deref(), self.to.as_deref(), &self.last)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The audit.k8s.io/v1 Policy (YAML).
    #[arg(long)]
    policy: std::path::PathBuf,
    /// Event files (any format ingest takes); none: the store's events of --from/--to.
    events: Vec<String>,
    /// Start of the window of stored events (RFC 3339 or a date).
    #[arg(long)]
    from: Option<String>,
    /// End of the window of stored events, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// One JSON object per line, or a table.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

#[derive(clap::Args)]
pub struct LintArgs {
    /// The audit.k8s.io/v1 Policy (YAML).
    file: std::path::PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub fn load(path: &std::path::Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the policy {}", path.display()))?;
    Policy::from_yaml(&text).with_context(|| format!("policy {}", path.display()))
}

pub fn run(store: &str, config: &crate::config::Config, args: Args) -> Result<ExitCode> {
    match args {
        Args::Eval(a) => eval(store, a),
        Args::Lint(a) => lint_cmd(a),
        Args::Simulate(a) => crate::simulate::run(store, config, a),
        Args::Suggest(a) => crate::suggest::run(store, config, a),
    }
}

fn lint_cmd(a: LintArgs) -> Result<ExitCode> {
    let policy = load(&a.file)?;
    let findings = lint(&policy);
    let mut out = std::io::stdout().lock();
    for f in &findings {
        match a.format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(f)?)?,
            Format::Table => writeln!(
                out,
                "{}: {}{}\n  hint: {}",
                f.check,
                f.rule.map_or_else(String::new, |i| format!("rule {i}: ")),
                f.reason,
                f.hint
            )?,
        }
    }
    if findings.is_empty() {
        eprintln!("{}: no findings", a.file.display());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {} finding(s)", a.file.display(), findings.len());
        Ok(ExitCode::from(EXIT_FINDINGS))
    }
}

const COLUMNS: &str = "audit_id, stage, user_name, user_groups, verb, namespace, api_group, resource, subresource, name, request_uri";

fn eval(store: &str, a: EvalArgs) -> Result<ExitCode> {
    let policy = load(&a.policy)?;
    let rt = crate::runtime()?;
    let temp;
    let store = if a.events.is_empty() {
        crate::open_existing_store(store)?
    } else {
        if a.from.is_some() || a.to.is_some() {
            bail!("--from and --to select stored events; give either event files or a window");
        }
        temp = tempfile::tempdir().context("cannot create a temporary store")?;
        let location = temp.path().join("store");
        let location = location.to_str().context("temporary path is not UTF-8")?;
        let s = auditlake_store::Store::open(location, &[])?;
        let inputs = auditlake_ingest::expand_inputs(&a.events)?;
        let opts = auditlake_ingest::IngestOptions {
            // What the policy is asked about is the request, not its stored bodies.
            ..Default::default()
        };
        let summary =
            auditlake_ingest::ingest(&s, &inputs, &opts, std::sync::Arc::new(()), rt.handle())?;
        if summary.rejected > 0 {
            eprintln!(
                "{} line(s) were not events and are left out",
                summary.rejected
            );
        }
        s
    };
    let mut filter = Vec::new();
    if let Some(f) = &a.from {
        filter.push(format!(
            "ts >= TIMESTAMP '{}'",
            auditlake_model::time::format_canonical(parse_time(f)?)
        ));
    }
    if let Some(t) = &a.to {
        filter.push(format!(
            "ts < TIMESTAMP '{}'",
            auditlake_model::time::format_canonical(parse_time(t)?)
        ));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events{} ORDER BY ts, audit_id, stage",
        if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filter.join(" AND "))
        }
    );
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let n = rt.block_on(async {
        let session = AuditSession::open(store, &QueryOptions::default()).await?;
        let mut stream = session.sql(&sql).await?.execute_stream().await?;
        let mut n = 0u64;
        if a.format == Format::Table {
            writeln!(
                out,
                "{:<38} {:<17} {:<16} {:<26} omitManagedFields",
                "audit_id", "stage", "level", "omitStages"
            )?;
        }
        while let Some(b) = stream.next().await {
            let b = b?;
            let text = |i: usize| -> Result<_> { Ok(cast(b.column(i), &DataType::Utf8)?) };
            let cols: Vec<_> = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]
                .iter()
                .map(|&i| text(i))
                .collect::<Result<_>>()?;
            let s = |c: usize, i: usize| {
                let a = cols[c].as_string::<i32>();
                a.is_valid(i).then(|| a.value(i))
            };
            let groups = b.column(3).as_any().downcast_ref::<ListArray>();
            for i in 0..b.num_rows() {
                let g: Vec<String> = groups
                    .filter(|l| l.is_valid(i))
                    .map(|l| {
                        let v = cast(&l.value(i), &DataType::Utf8).ok();
                        v.map(|v| {
                            v.as_string::<i32>()
                                .iter()
                                .flatten()
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default()
                    })
                    .unwrap_or_default();
                let attrs = Attributes::from_event(
                    s(2, i),
                    &g,
                    s(3, i),
                    s(4, i),
                    s(5, i),
                    s(6, i),
                    s(7, i),
                    s(8, i),
                    s(9, i),
                );
                let d = policy.evaluate(&attrs);
                let stages: Vec<&str> = d.omit_stages.iter().map(|s| s.as_str()).collect();
                match a.format {
                    Format::Json => writeln!(
                        out,
                        "{}",
                        serde_json::json!({
                            "audit_id": s(0, i),
                            "stage": s(1, i),
                            "level": d.level.as_str(),
                            "omit_stages": stages,
                            "omit_managed_fields": d.omit_managed_fields,
                            "rule": d.rule,
                        })
                    )?,
                    Format::Table => writeln!(
                        out,
                        "{:<38} {:<17} {:<16} {:<26} {}",
                        s(0, i).unwrap_or(""),
                        s(1, i).unwrap_or(""),
                        d.level.as_str(),
                        stages.join(","),
                        d.omit_managed_fields
                    )?,
                }
                n += 1;
            }
        }
        anyhow::Ok(n)
    })?;
    out.flush()?;
    eprintln!("{n} event(s) evaluated");
    Ok(ExitCode::SUCCESS)
}
