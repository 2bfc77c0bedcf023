//! `auditlake schedule`: runs the `[[schedule]]` entries of the config file, each a report written
//! to a folder or an object-store prefix when its cron expression fires.
//!
//! ```toml
//! [[schedule]]
//! name = "weekly-soc2"     # names the output files: weekly-soc2-2026-11-30T0600Z.html
//! cron = "0 6 * * MON"     # minute hour day-of-month month day-of-week, in UTC
//! framework = "soc2"       # soc2, pci-dss, hipaa, cis, detections, all (comma-separated)
//! window = "7d"            # the report covers this long, ending when the schedule fires
//! format = "html"          # md, html, json, csv
//! out = "reports/"         # a folder, or s3://bucket/prefix (AWS_* variables as for the store)
//! ```

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use auditlake_query::{AuditSession, QueryOptions};
use auditlake_store::Store;
use chrono::{DateTime, Utc};
use croner::Cron;
use serde::Deserialize;

use crate::config::{Config, parse_age};
use auditlake_compliance::render::{self, Format as ReportFormat};
use auditlake_compliance::report::{self, Request};

use crate::report as command;

/// One `[[schedule]]` entry of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    #[serde(default = "all")]
    pub framework: String,
    #[serde(default = "week")]
    pub window: String,
    #[serde(default = "html")]
    pub format: ReportFormat,
    pub out: String,
    /// Evidence rows per control; by default every row for json and csv, 25 for md and html.
    #[serde(default)]
    pub max_evidence: Option<usize>,
}

fn all() -> String {
    "all".into()
}
fn week() -> String {
    "7d".into()
}
fn html() -> ReportFormat {
    ReportFormat::Html
}

impl Schedule {
    fn cron(&self) -> Result<Cron> {
        Cron::new(&self.cron).parse().with_context(|| {
            format!(
                "schedule {:?}: invalid cron expression {:?}",
                self.name, self.cron
            )
        })
    }

    /// The first time after `t` the schedule fires.
    pub fn next_after(&self, t: &DateTime<Utc>) -> Result<DateTime<Utc>> {
        self.cron()?
            .find_next_occurrence(t, false)
            .with_context(|| format!("schedule {:?}: {:?} never fires", self.name, self.cron))
    }

    /// Checks everything that can be checked before the first run.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            bail!(
                "schedule name {:?}: use a plain name, it names the output files",
                self.name
            );
        }
        self.cron()?;
        report::parse_frameworks(&self.framework)
            .with_context(|| format!("schedule {:?}", self.name))?;
        parse_age(&self.window).with_context(|| format!("schedule {:?}: window", self.name))?;
        Ok(())
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Run every schedule (or those of --only) once, now, and exit.
    #[arg(long)]
    run_now: bool,
    /// Only the schedule with this name (repeatable).
    #[arg(long)]
    only: Vec<String>,
}

/// Runs one schedule as of `at`: the report of the window ending then, written to its output.
async fn run_one(
    store: &Store,
    config: &Config,
    s: &Schedule,
    at: DateTime<Utc>,
) -> Result<String> {
    let to = at.timestamp_micros();
    let window = parse_age(&s.window)?;
    let from = to - window.num_microseconds().context("window too long")?;
    let req = Request {
        frameworks: report::parse_frameworks(&s.framework)?,
        from,
        to,
        max_evidence: match s.format {
            ReportFormat::Ndjson => Some(0),
            f => s.max_evidence.or(f.evidence_cap()),
        },
        sample: report::DEFAULT_SAMPLE,
        kept: report::Kept::Use,
    };
    let opts = QueryOptions {
        scope: config.scope.clone(),
        as_of: command::pinned(store, None).await?,
        kept_key: crate::integrity::public_key(None, &config.integrity)?,
        keep_per_day: true,
        ..Default::default()
    };
    let session = AuditSession::open(store.clone(), &opts).await?;
    let mut r = report::build(&session, &config.scope, &req).await?;
    r.integrity = Some(command::integrity(store, config, None, from, to).await?);
    let bytes = match s.format {
        ReportFormat::Ndjson => {
            let mut v = Vec::new();
            render::ndjson(&session, &r, &req, &mut v).await?;
            v
        }
        f => render::render(&r, f)?,
    };
    let file = format!(
        "{}-{}.{}",
        s.name,
        at.format("%Y-%m-%dT%H%MZ"),
        s.format.extension()
    );
    let written = if s.out.contains("://") {
        let out = Store::open(&s.out, &crate::store_options())
            .with_context(|| format!("cannot open the output location {}", s.out))?;
        out.put_object(&file, bytes).await?
    } else {
        let dir = std::path::Path::new(&s.out);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
        let p = dir.join(&file);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        p.display().to_string()
    };
    Ok(format!(
        "{written}: {} controls, {} with findings, {} not evaluable",
        r.totals.controls, r.totals.findings, r.totals.not_evaluable
    ))
}

pub fn run(store: &str, config: &Config, args: Args) -> Result<ExitCode> {
    let schedules: Vec<&Schedule> = config
        .schedule
        .iter()
        .filter(|s| args.only.is_empty() || args.only.contains(&s.name))
        .collect();
    if schedules.is_empty() {
        bail!(
            "no schedule to run: add [[schedule]] entries to the config file (auditlake.toml or --config){}",
            if args.only.is_empty() {
                ""
            } else {
                " or check --only"
            }
        );
    }
    for s in &schedules {
        s.validate()?;
    }
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    if args.run_now {
        let now = Utc::now();
        let mut failed = 0;
        for s in &schedules {
            match rt.block_on(run_one(&store, config, s, now)) {
                Ok(msg) => println!("{}: {msg}", s.name),
                Err(e) => {
                    failed += 1;
                    eprintln!("error: schedule {}: {e:#}", s.name);
                }
            }
        }
        return Ok(if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    // Long-running: sleep until the next firing, run what is due, repeat. A failed run is logged
    // and retried at its next firing; the scheduler keeps going.
    let mut next: Vec<DateTime<Utc>> = schedules
        .iter()
        .map(|s| s.next_after(&Utc::now()))
        .collect::<Result<_>>()?;
    for (s, t) in schedules.iter().zip(&next) {
        eprintln!("schedule {}: next report at {}", s.name, t.to_rfc3339());
    }
    loop {
        let Some(soonest) = next.iter().min().copied() else {
            return Ok(ExitCode::SUCCESS);
        };
        let wait = (soonest - Utc::now()).to_std().unwrap_or_default();
        std::thread::sleep(wait);
        for (i, s) in schedules.iter().enumerate() {
            if next[i] > Utc::now() {
                continue;
            }
            let at = next[i];
            match rt.block_on(run_one(&store, config, s, at)) {
                Ok(msg) => eprintln!("schedule {}: {msg}", s.name),
                Err(e) => eprintln!("error: schedule {} at {}: {e:#}", s.name, at.to_rfc3339()),
            }
            next[i] = s.next_after(&Utc::now())?;
            eprintln!(
                "schedule {}: next report at {}",
                s.name,
                next[i].to_rfc3339()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_fire_when_cron_says() {
        let c: Config = toml::from_str(
            "[[schedule]]\nname = \"weekly\"\ncron = \"0 6 * * MON\"\nframework = \"soc2,pci\"\nout = \"r/\"\n",
        )
        .unwrap();
        let s = &c.schedule[0];
        s.validate().unwrap();
        assert_eq!((s.window.as_str(), s.format), ("7d", ReportFormat::Html));
        // Wednesday 2026-11-25 12:00 UTC: next Monday 06:00.
        let t = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            s.next_after(&t).unwrap().to_rfc3339(),
            "2026-11-30T06:00:00+00:00"
        );
        let bad = Schedule {
            cron: "61 * * * *".into(),
            ..s.clone()
        };
        assert!(bad.validate().is_err());
        assert!(
            toml::from_str::<Config>(
                "[[schedule]]\nname = \"x\"\ncron = \"* * * * *\"\nout = \"r\"\nfromat = \"md\"\n"
            )
            .is_err()
        );
    }
}
