//! `auditlake policy simulate`: what a candidate audit policy would have kept of the stored
//! history.
//!
//! One pass over the window's events evaluates the candidate on each (as `policy eval`) and
//! writes the event as exported; the export is then ingested with the candidate applied (as
//! `ingest --policy`) into a temporary store, and every compliance control is counted on both
//! stores. So the figures are what the candidate would have recorded, as far as the record allows:
//! a body the apiserver did not record cannot be brought back, and its size is estimated from the
//! events of the same verb and resource that have one.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_compliance::CONTROLS;
use auditlake_model::encode::EventColumns;
use auditlake_model::time::format_canonical;
use auditlake_policy::{Attributes, Level, Policy, Stage};
use auditlake_query::{AuditSession, QueryOptions};
use datafusion::arrow::array::{Array, AsArray, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use futures::StreamExt;
use serde::Serialize;

use crate::config::Config;
use crate::policy::{SimFormat, SimulateArgs};

/// Controls that read the store's whole history (its span, its newest event, every kind of
/// request ever seen): the simulated store holds only the window, so they are not compared.
pub const WHOLE_HISTORY: [&str; 5] = [
    "pci_10_5_1_retention",
    "cis_1_2_17_audit_retention",
    "cis_3_2_2_policy_coverage",
    "pci_10_2_1_6_logging_gaps",
    "hipaa_164_312_b_audit_controls",
];

const LEVELS: [Level; 4] = [
    Level::None,
    Level::Metadata,
    Level::Request,
    Level::RequestResponse,
];

/// One day: what was recorded and what the candidate keeps.
#[derive(Debug, Default, Serialize)]
pub struct DaySim {
    pub date: String,
    pub recorded_events: u64,
    /// Events per recorded level (None, Metadata, Request, RequestResponse).
    pub recorded_levels: [u64; 4],
    /// JSON bytes of the recorded events (as `export` writes them).
    pub recorded_bytes: u64,
    pub kept_events: u64,
    /// Events per candidate level; the None column is what the candidate drops (with omitted
    /// stages counted there too).
    pub candidate_levels: [u64; 4],
    /// JSON bytes the candidate keeps, with the estimated size of bodies it asks for that were
    /// not recorded.
    pub kept_bytes: u64,
    /// Events for which the candidate asks for a body the record does not have.
    pub wants_more: u64,
    pub wants_more_bytes_estimated: u64,
}

#[derive(Debug, Serialize)]
pub struct ControlSim {
    pub framework: String,
    pub control_id: String,
    pub view: String,
    pub kind: String,
    pub recorded_rows: u64,
    pub candidate_rows: u64,
}

#[derive(Debug, Serialize)]
pub struct Simulation {
    pub policy: String,
    pub window_from: String,
    pub window_to: String,
    pub days: Vec<DaySim>,
    pub recorded_events: u64,
    pub kept_events: u64,
    pub recorded_bytes: u64,
    pub kept_bytes: u64,
    /// Every control whose rows the candidate changes.
    pub changed_controls: Vec<ControlSim>,
}

fn level_index(l: Level) -> usize {
    LEVELS.iter().position(|x| *x == l).unwrap_or(0)
}

/// A (verb, resource) pair's recorded body sizes, for the estimate of bodies not recorded.
#[derive(Default)]
struct Sizes {
    request: (u64, u64),
    response: (u64, u64),
}

fn average((sum, n): (u64, u64)) -> u64 {
    sum.checked_div(n).unwrap_or(0)
}

pub fn run(store: &str, config: &Config, a: SimulateArgs) -> Result<ExitCode> {
    let policy = crate::policy::load(&a.policy)?;
    let (from, to) = a.window.bounds()?;
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let name = a.policy.display().to_string();
    let s = simulate(&rt, &store, config, &policy, &name, from, to)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        SimFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
        SimFormat::Md => out.write_all(markdown(&s).as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Simulates `policy` over `[from, to)` of `store` (see the module's documentation).
pub fn simulate(
    rt: &tokio::runtime::Runtime,
    store: &auditlake_store::Store,
    config: &Config,
    policy: &Policy,
    name: &str,
    from: i64,
    to: i64,
) -> Result<Simulation> {
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let opts = QueryOptions {
        scope: config.scope.clone(),
        ..Default::default()
    };
    let session = rt.block_on(AuditSession::open(store.clone(), &opts))?;
    let (mut days, exports) = rt.block_on(pass(&session, policy, from, to, temp.path()))?;

    // The simulated store: the export, with the candidate applied, one ingest per cluster.
    let sim_path = temp.path().join("simulated");
    let sim = auditlake_store::Store::open(
        sim_path.to_str().context("temporary path is not UTF-8")?,
        &[],
    )?;
    let shared = std::sync::Arc::new(policy.clone());
    for (cluster, path) in &exports {
        let inputs = auditlake_ingest::expand_inputs(&[path.display().to_string()])?;
        let o = auditlake_ingest::IngestOptions {
            cluster: (!cluster.is_empty()).then(|| cluster.clone()),
            policy: Some(std::sync::Arc::clone(&shared)),
            // Already redacted when stored.
            ..Default::default()
        };
        auditlake_ingest::ingest(&sim, &inputs, &o, std::sync::Arc::new(()), rt.handle())
            .context("the simulated store")?;
    }
    let sim_session = rt.block_on(AuditSession::open(sim, &opts))?;
    let window = window_sql(from, to);
    let mut changed = Vec::new();
    for c in CONTROLS.iter().filter(|c| !WHOLE_HISTORY.contains(&c.view)) {
        let sql = format!("SELECT count(*) FROM {} WHERE {window}", c.view);
        let recorded = rt.block_on(count(&session, &sql))?;
        let candidate = rt.block_on(count(&sim_session, &sql))?;
        if recorded != candidate {
            changed.push(ControlSim {
                framework: c.framework.to_owned(),
                control_id: c.id.to_owned(),
                view: c.view.to_owned(),
                kind: c.kind().as_str().to_owned(),
                recorded_rows: recorded,
                candidate_rows: candidate,
            });
        }
    }
    days.retain(|d| d.recorded_events > 0);
    let sum = |f: &dyn Fn(&DaySim) -> u64| days.iter().map(f).sum();
    Ok(Simulation {
        policy: name.to_owned(),
        window_from: format_canonical(from),
        window_to: format_canonical(to),
        recorded_events: sum(&|d| d.recorded_events),
        kept_events: sum(&|d| d.kept_events),
        recorded_bytes: sum(&|d| d.recorded_bytes),
        kept_bytes: sum(&|d| d.kept_bytes),
        days,
        changed_controls: changed,
    })
}

pub fn window_sql(from: i64, to: i64) -> String {
    format!(
        "ts >= TIMESTAMP '{}' AND ts < TIMESTAMP '{}'",
        format_canonical(from),
        format_canonical(to)
    )
}

async fn count(session: &AuditSession, sql: &str) -> Result<u64> {
    let b = session.sql(sql).await?.collect().await?;
    let n = cast(b[0].column(0), &DataType::Int64)?;
    Ok(n.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .value(0) as u64)
}

type Exports = BTreeMap<String, std::path::PathBuf>;

/// The one pass: per-day figures, and the window's events exported per cluster.
async fn pass(
    session: &AuditSession,
    policy: &Policy,
    from: i64,
    to: i64,
    dir: &std::path::Path,
) -> Result<(Vec<DaySim>, Exports)> {
    let columns: Vec<String> = auditlake_model::audit_events_schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let sql = format!(
        "SELECT {} FROM audit_events WHERE ts >= TIMESTAMP '{}' AND ts < TIMESTAMP '{}' ORDER BY ts",
        columns.join(", "),
        format_canonical(from),
        format_canonical(to)
    );
    let mut stream = session.sql(&sql).await?.execute_stream().await?;
    let mut days: BTreeMap<String, DaySim> = BTreeMap::new();
    let mut sizes: BTreeMap<(String, String), Sizes> = BTreeMap::new();
    // (day, verb, resource) -> (request bodies wanted, response bodies wanted)
    let mut wanted: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
    let mut files: BTreeMap<String, std::io::BufWriter<std::fs::File>> = BTreeMap::new();
    let mut exports = Exports::new();
    while let Some(b) = stream.next().await {
        let b = b?;
        let cols = EventColumns::new(&b)?;
        let text = |name: &str| -> Result<_> {
            Ok(cast(
                b.column_by_name(name).context("column")?,
                &DataType::Utf8,
            )?)
        };
        let names = [
            "user_name",
            "verb",
            "namespace",
            "api_group",
            "resource",
            "subresource",
            "name",
            "request_uri",
            "level",
            "stage",
            "cluster",
            "request_object",
            "response_object",
        ];
        let t: Vec<_> = names.iter().map(|n| text(n)).collect::<Result<_>>()?;
        let s = |c: usize, i: usize| {
            let a = t[c].as_string::<i32>();
            a.is_valid(i).then(|| a.value(i))
        };
        let ts = cast(
            b.column_by_name("ts").context("ts")?,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let groups = b
            .column_by_name("user_groups")
            .and_then(|c| c.as_any().downcast_ref::<ListArray>().cloned());
        for i in 0..b.num_rows() {
            let json = serde_json::to_string(&cols.row_to_json(i))?;
            let cluster = s(10, i).unwrap_or("").to_owned();
            if !files.contains_key(&cluster) {
                let path = dir.join(format!("export-{}.jsonl", files.len()));
                files.insert(
                    cluster.clone(),
                    std::io::BufWriter::new(std::fs::File::create(&path)?),
                );
                exports.insert(cluster.clone(), path);
            }
            if let Some(f) = files.get_mut(&cluster) {
                f.write_all(json.as_bytes())?;
                f.write_all(b"\n")?;
            }
            let g: Vec<String> = groups
                .as_ref()
                .filter(|l| l.is_valid(i))
                .and_then(|l| cast(&l.value(i), &DataType::Utf8).ok())
                .map(|v| {
                    v.as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let attrs = Attributes::from_event(
                s(0, i),
                &g,
                s(1, i),
                s(2, i),
                s(3, i),
                s(4, i),
                s(5, i),
                s(6, i),
                s(7, i),
            );
            let d = policy.evaluate(&attrs);
            let day = format_canonical(ts.value(i))[..10].to_owned();
            let e = days.entry(day.clone()).or_insert_with(|| DaySim {
                date: day.clone(),
                ..Default::default()
            });
            let recorded = s(8, i)
                .and_then(|l| {
                    serde_json::from_value::<Level>(serde_json::Value::String(l.into())).ok()
                })
                .unwrap_or(Level::Metadata);
            let (req, resp) = (
                s(11, i).map_or(0, str::len) as u64,
                s(12, i).map_or(0, str::len) as u64,
            );
            let len = json.len() as u64;
            e.recorded_events += 1;
            e.recorded_levels[level_index(recorded)] += 1;
            e.recorded_bytes += len;
            let key = (
                s(1, i).unwrap_or("").to_owned(),
                s(4, i).unwrap_or("").to_owned(),
            );
            let sz = sizes.entry(key.clone()).or_default();
            if req > 0 {
                sz.request.0 += req;
                sz.request.1 += 1;
            }
            if resp > 0 {
                sz.response.0 += resp;
                sz.response.1 += 1;
            }
            let omitted = s(9, i)
                .and_then(Stage::parse)
                .is_some_and(|st| d.omit_stages.contains(&st));
            let level = if omitted { Level::None } else { d.level };
            e.candidate_levels[level_index(level)] += 1;
            if level == Level::None {
                continue;
            }
            e.kept_events += 1;
            let mut kept = len;
            if level < Level::Request {
                kept = kept.saturating_sub(req);
            }
            if level < Level::RequestResponse {
                kept = kept.saturating_sub(resp);
            }
            e.kept_bytes += kept;
            // Bodies the candidate asks for and the record lacks: requests with a body (writes),
            // responses of any request.
            // Only where the record was made below what the candidate asks, and the stage can
            // carry the body (a response only at ResponseComplete).
            let writes = matches!(s(1, i), Some("create" | "update" | "patch"));
            let complete = matches!(s(9, i), None | Some("ResponseComplete"));
            let want_req =
                level >= Level::Request && recorded < Level::Request && req == 0 && writes;
            let want_resp = level == Level::RequestResponse
                && recorded < Level::RequestResponse
                && resp == 0
                && complete;
            if want_req || want_resp {
                e.wants_more += 1;
                let w = wanted.entry((day, key.0, key.1)).or_default();
                w.0 += u64::from(want_req);
                w.1 += u64::from(want_resp);
            }
        }
    }
    for f in files.values_mut() {
        f.flush()?;
    }
    for ((day, verb, resource), (nreq, nresp)) in wanted {
        let sz = sizes
            .get(&(verb, resource))
            .map(|s| (average(s.request), average(s.response)));
        let (areq, aresp) = sz.unwrap_or((0, 0));
        if let Some(d) = days.get_mut(&day) {
            let more = nreq * areq + nresp * aresp;
            d.wants_more_bytes_estimated += more;
            d.kept_bytes += more;
        }
    }
    Ok((days.into_values().collect(), exports))
}

fn mb(b: u64) -> String {
    format!("{:.2}", b as f64 / 1e6)
}

pub fn markdown(s: &Simulation) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let ndays = s.days.len().max(1) as u64;
    let _ = writeln!(
        o,
        "# Policy simulation: {}\n\nWindow {} to {}. Recorded {} events ({} MB as JSON); the candidate keeps {} ({} MB, estimated), {:+.1}% of the bytes.\n",
        s.policy,
        s.window_from,
        s.window_to,
        s.recorded_events,
        mb(s.recorded_bytes),
        s.kept_events,
        mb(s.kept_bytes),
        if s.recorded_bytes == 0 {
            0.0
        } else {
            (s.kept_bytes as f64 / s.recorded_bytes as f64 - 1.0) * 100.0
        }
    );
    let more: u64 = s.days.iter().map(|d| d.wants_more).sum();
    if more > 0 {
        let bytes: u64 = s.days.iter().map(|d| d.wants_more_bytes_estimated).sum();
        let _ = writeln!(
            o,
            "The candidate asks for more than the store holds: it would record bodies for {} events a day that were recorded without them; their size is estimated from similar events (same verb and resource) at {} MB a day.\n",
            more / ndays,
            mb(bytes / ndays)
        );
    }
    let _ = writeln!(
        o,
        "| date | recorded | kept | recorded MB | kept MB | dropped | Metadata | Request | RequestResponse |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for d in &s.days {
        let c = d.candidate_levels;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            d.date,
            d.recorded_events,
            d.kept_events,
            mb(d.recorded_bytes),
            mb(d.kept_bytes),
            c[0],
            c[1],
            c[2],
            c[3]
        );
    }
    let _ = writeln!(
        o,
        "\nNot compared (they read the whole history, not the window): {}.",
        WHOLE_HISTORY.join(", ")
    );
    if s.changed_controls.is_empty() {
        let _ = writeln!(
            o,
            "\nEvery compliance control finds the same rows under the candidate."
        );
    } else {
        let _ = writeln!(
            o,
            "\n## Controls the candidate changes\n\n| framework | control | kind | recorded rows | under the candidate | |\n|---|---|---|---:|---:|---|"
        );
        for c in &s.changed_controls {
            let what = if c.candidate_rows < c.recorded_rows {
                if c.kind == "evidence" {
                    "loses evidence"
                } else {
                    "loses rows it is built on"
                }
            } else {
                "finds more"
            };
            let _ = writeln!(
                o,
                "| {} | {} (`{}`) | {} | {} | {} | {what} |",
                c.framework, c.control_id, c.view, c.kind, c.recorded_rows, c.candidate_rows
            );
        }
    }
    o
}
