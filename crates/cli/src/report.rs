//! `auditlake report`: every control of a framework evaluated over a time window, as the document
//! handed to an auditor (Markdown, self-contained HTML, JSON, NDJSON, CSV). The evaluation and the
//! renderers are the compliance crate's; this is the command around them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_compliance::render::{self, Format as ReportFormat};
use auditlake_compliance::report::{self, Integrity, Report, Request};
use auditlake_model::time::Micros;
use auditlake_query::{AuditSession, QueryOptions};

use crate::config::{Config, parse_age};
use crate::time_arg::parse_time;

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
    /// Rows of each evidence control's random sample (reproducible: seeded by the window).
    #[arg(long, default_value_t = auditlake_compliance::report::DEFAULT_SAMPLE)]
    sample: usize,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<std::path::PathBuf>,
    /// Evidence rows per control (the total is always given). Default: every row for json and
    /// csv (what a GRC system imports must be the evidence, not a sample), 25 for md and html;
    /// ndjson streams every row after the report.
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
    /// Exit with status 4 when any finding control has findings or any evidence control has a
    /// gap (for CI and cron alerting).
    #[arg(long)]
    fail_on_findings: bool,
    /// Evaluate every day from the table, without reading the evidence kept per closed day under
    /// `_evidence/` in the store (what is computed is kept again). The report is the same either
    /// way; this one depends on the table alone.
    #[arg(long)]
    recompute: bool,
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
    verify_window(store, key, from, to).await
}

/// Verifies the store for the days of `[from, to)` with a public key, if any.
async fn verify_window(
    store: &auditlake_store::Store,
    key: Option<auditlake_store::integrity::PublicKey>,
    from: Micros,
    to: Micros,
) -> Result<Integrity> {
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
    // The time of each control, with AUDITLAKE_LOG=info.
    crate::collect::init_logging_at(tracing::Level::WARN);
    let (from, to) = window(args.from.as_deref(), args.to.as_deref(), &args.last)?;
    let req = Request {
        frameworks: report::parse_frameworks(&args.framework)?,
        from,
        to,
        max_evidence: match args.format {
            // NDJSON streams the rows after the report: the report collects none.
            ReportFormat::Ndjson => Some(0),
            f => args.max_evidence.or(f.evidence_cap()),
        },
        sample: args.sample,
        kept: if args.recompute {
            report::Kept::Recompute
        } else {
            report::Kept::Use
        },
    };
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let opts = QueryOptions {
        scope: config.scope.clone(),
        as_of: rt.block_on(pinned(&store, args.as_of.as_deref()))?,
        kept_key: crate::integrity::public_key(args.public_key.as_ref(), &config.integrity)?,
        keep_per_day: !args.recompute,
        ..Default::default()
    };
    let session = rt.block_on(AuditSession::open(store.clone(), &opts))?;
    // The store is verified while the controls are evaluated: hashing the window's files keeps
    // a core busy that the controls, read back from kept evidence, mostly leave idle.
    let (report, verified) = rt.block_on(async {
        let verify = async {
            if args.no_verify {
                return Ok(None);
            }
            let store = store.clone();
            let key = crate::integrity::public_key(args.public_key.as_ref(), &config.integrity)?;
            tokio::spawn(async move { verify_window(&store, key, from, to).await })
                .await
                .context("verification of the store")?
                .map(Some)
        };
        tokio::join!(report::build(&session, &config.scope, &req), verify)
    });
    let mut report = report?;
    report.integrity = verified?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("cannot write the report to {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    write(&rt, &session, &report, &req, args.format, &mut out)?;
    drop(out);
    summarise_kept(&report);
    summarise(&report);
    let code = if args.fail_on_findings && needs_an_answer(&report) {
        ExitCode::from(4)
    } else {
        ExitCode::SUCCESS
    };
    // The process ends here: a month's report holds a million rows of a dozen strings each,
    // and freeing them one by one is work for nothing.
    std::mem::forget(report);
    Ok(code)
}

/// Writes the report in a format (NDJSON streams its rows from the session).
pub fn write(
    rt: &tokio::runtime::Runtime,
    session: &AuditSession,
    report: &Report,
    req: &Request,
    format: ReportFormat,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        ReportFormat::Ndjson => rt.block_on(render::ndjson(session, report, req, out))?,
        // Streamed: a month's JSON is hundreds of megabytes.
        ReportFormat::Json => render::json(report, out)?,
        f => out.write_all(&render::render(report, f)?)?,
    }
    out.flush()?;
    Ok(())
}

/// A finding control with findings, or an evidence control with a gap.
pub fn needs_an_answer(r: &Report) -> bool {
    r.totals.findings > 0 || r.totals.gaps > 0
}

/// What the report read from the evidence kept per closed day, on standard error.
pub fn summarise_kept(r: &Report) {
    let k = &r.kept;
    if k.read + k.computed > 0 {
        eprintln!(
            "evidence: {} control-days read from {}/, {} computed from the table, {} kept \
             ({} closed days in the window)",
            k.read,
            auditlake_compliance::kept::DIR,
            k.computed,
            k.written,
            k.days
        );
    }
    // A key changed or evidence kept before signing: one line per control-day would bury the
    // rest.
    const SHOWN: usize = 5;
    for p in k.problems.iter().take(SHOWN) {
        eprintln!("warning: {p}");
    }
    if k.problems.len() > SHOWN {
        eprintln!(
            "warning: and {} more of the kind above",
            k.problems.len() - SHOWN
        );
    }
}

/// The one line on standard error after a report.
pub fn summarise(r: &Report) {
    let t = &r.totals;
    eprintln!(
        "{} controls: {} of them met ({} evidenced, {} pass), {} with gaps, {} with findings \
         ({} findings to answer), {} not evaluable; {} events in the window",
        t.controls,
        t.met,
        t.evidenced,
        t.pass,
        t.gaps,
        t.findings,
        t.findings_to_answer,
        t.not_evaluable,
        r.events_in_window
    );
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
