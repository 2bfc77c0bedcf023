use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use auditlake_query::{AuditSession, QueryOptions};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;

use crate::sql::{Format, run_statement};

#[derive(clap::Args)]
pub struct Args {
    /// Output format of the per-day table (bytes per event are per day: a file holds every cluster) (table on a terminal, csv otherwise).
    #[arg(long)]
    format: Option<Format>,
}

const PER_DAY: &str = "\
WITH ev AS (
  SELECT date, cluster, count(*) AS events, min(ts) AS oldest, max(ts) AS newest
  FROM audit_events GROUP BY date, cluster)
SELECT ev.date, ev.cluster, ev.events, f.files, f.bytes,
       round(CAST(f.bytes AS DOUBLE) / sum(ev.events) OVER (PARTITION BY ev.date), 1) AS bytes_per_event,
       ev.oldest, ev.newest
FROM ev JOIN store_files f ON f.date = ev.date
ORDER BY ev.date, ev.cluster";

/// Events, files and bytes per day and cluster; oldest and newest event; hours without data.
pub fn run(store: &str, args: Args) -> Result<ExitCode> {
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let partitions = rt.block_on(store.partitions(None))?;
    // A partition is a day: its files and bytes are the day's.
    let days: Vec<(String, i64, i64)> = partitions
        .iter()
        .map(|(p, files)| {
            let bytes: u64 = files.iter().map(|f| f.meta.size).sum();
            (p.date(), files.len() as i64, bytes as i64)
        })
        .collect();
    let session = rt.block_on(AuditSession::open(store.clone(), &QueryOptions::default()))?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Utf8, false),
        Field::new("files", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                days.iter().map(|d| d.0.clone()),
            )),
            Arc::new(Int64Array::from_iter_values(days.iter().map(|d| d.1))),
            Arc::new(Int64Array::from_iter_values(days.iter().map(|d| d.2))),
        ],
    )?;
    session.context().register_table(
        "store_files",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let format = args
        .format
        .unwrap_or(if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            Format::Table
        } else {
            Format::Csv
        });
    let mut out = std::io::stdout().lock();
    rt.block_on(run_statement(&session, PER_DAY, format, &mut out))
        .context("cannot compute the per-day figures")?;

    let files: usize = partitions.values().map(Vec::len).sum();
    let bytes: u64 = partitions.values().flatten().map(|f| f.meta.size).sum();
    let events: u64 = {
        let df = rt.block_on(session.sql("SELECT count(*) FROM audit_events"))?;
        let b = rt.block_on(df.collect())?;
        b.first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map(|a| a.value(0) as u64)
            })
            .unwrap_or(0)
    };
    eprintln!(
        "{} events in {} files, {:.1} MB, {:.1} bytes/event, {} daily partitions",
        events,
        files,
        bytes as f64 / 1e6,
        bytes as f64 / events.max(1) as f64,
        partitions.len()
    );
    // Gaps: hours between the oldest and the newest event without any event. Reads only `ts`.
    let (hours, gaps) = hour_gaps(&rt, &session, "TRUE")?;
    if let (Some(first), Some(last)) = (hours.first(), hours.last()) {
        let fmt = auditlake_model::time::format_canonical;
        eprintln!("oldest hour {}, newest hour {}", fmt(*first), fmt(*last));
        if gaps.is_empty() {
            eprintln!("no gaps: every hour between them has events");
        }
        for (from, to) in gaps.iter().take(20) {
            eprintln!(
                "gap: no events from {} to {} ({} h)",
                fmt(*from),
                fmt(*to),
                (to - from) / HOUR
            );
        }
        if gaps.len() > 20 {
            eprintln!("… and {} more gaps", gaps.len() - 20);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub const HOUR: i64 = 3_600_000_000;

/// `[from, to)` spans of whole hours without any event.
pub type Gaps = Vec<(i64, i64)>;

/// The hours that hold events (where `filter` holds), and the gaps between them.
pub fn hour_gaps(
    rt: &tokio::runtime::Runtime,
    session: &AuditSession,
    filter: &str,
) -> Result<(Vec<i64>, Gaps)> {
    let df = rt.block_on(session.sql(&format!(
        "SELECT DISTINCT CAST(date_trunc('hour', ts) AS BIGINT) AS h FROM audit_events WHERE {filter} ORDER BY h"
    )))?;
    let mut hours = Vec::new();
    for b in rt.block_on(df.collect())? {
        let a = b
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .context("hour starts are not integers")?;
        hours.extend(a.values().iter().copied());
    }
    let gaps = hours
        .windows(2)
        .filter(|w| w[1] - w[0] > HOUR)
        .map(|w| (w[0] + HOUR, w[1]))
        .collect();
    Ok((hours, gaps))
}
