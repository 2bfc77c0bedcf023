use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_ingest::formats::{Rebuilt, rebuild_envelope};
use auditlake_model::audit_events_schema;
use auditlake_model::encode::EventColumns;
use auditlake_model::schema::col;
use auditlake_model::time::format_canonical;
use auditlake_query::{AuditSession, QueryOptions};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use futures::StreamExt;

use crate::time_arg::parse_bounds;

#[derive(clap::Args)]
pub struct Args {
    /// Only events at or after this time (RFC 3339, a date, or now).
    #[arg(long)]
    from: Option<String>,
    /// Only events before this time.
    #[arg(long)]
    to: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Memory for sorting by time; past it the sort spills to temporary files.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    memory_limit_mb: usize,
    /// Give back each event in the envelope it came in (an EKS log event or export line, an
    /// AKS record, a GKE LogEntry or Pub/Sub message) rather than as an Event; the apiserver's
    /// own events are Events either way.
    #[arg(long)]
    envelope: bool,
}

/// How [`write_events`] writes each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// As the audit.k8s.io Event.
    Event,
    /// In the provider's envelope it came in, where it had one.
    Envelope,
}

/// Writes the events of `[from, to)` (`i64::MIN`/`MAX`: unbounded) as JSON lines, by time.
pub async fn write_events(
    session: &AuditSession,
    from: i64,
    to: i64,
    shape: Shape,
    out: &mut dyn Write,
) -> Result<u64> {
    let columns: Vec<String> = audit_events_schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let mut filters = Vec::new();
    if from != i64::MIN {
        filters.push(format!("ts >= TIMESTAMP '{}'", format_canonical(from)));
    }
    if to != i64::MAX {
        filters.push(format!("ts < TIMESTAMP '{}'", format_canonical(to)));
    }
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM audit_events {where_clause} ORDER BY ts",
        columns.join(", ")
    );
    let mut stream = session.sql(&sql).await?.execute_stream().await?;
    let mut n = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let cols = EventColumns::new(&batch)?;
        let envelopes = match shape {
            Shape::Envelope => batch
                .column_by_name(col::ENVELOPE)
                .map(|c| cast(c, &DataType::Utf8))
                .transpose()?,
            Shape::Event => None,
        };
        let envelopes = envelopes.as_ref().map(|c| c.as_string::<i32>());
        for i in 0..batch.num_rows() {
            let event = cols.row_to_json(i);
            match envelopes.filter(|e| e.is_valid(i)) {
                None => serde_json::to_writer(&mut *out, &event)?,
                Some(e) => {
                    let rebuilt = rebuild_envelope(
                        e.value(i),
                        &event,
                        event.get("requestObject"),
                        event.get("responseObject"),
                    )
                    .map_err(anyhow::Error::msg)
                    .with_context(|| {
                        format!(
                            "the envelope of event {}",
                            event.get("auditID").and_then(|v| v.as_str()).unwrap_or("?")
                        )
                    })?;
                    match rebuilt {
                        Rebuilt::Value(v) => serde_json::to_writer(&mut *out, &v)?,
                        Rebuilt::Line(l) => out.write_all(l.as_bytes())?,
                    }
                }
            }
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    Ok(n)
}

pub fn run(store: &str, args: Args) -> Result<ExitCode> {
    let (from, to) = parse_bounds(args.from.as_deref(), args.to.as_deref())?;
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    // A merge sort by ts over the files of the range, spilling to disk past the memory limit:
    // memory stays bounded whatever the size of a day.
    let opts = QueryOptions {
        memory_limit: Some(args.memory_limit_mb << 20),
        ..Default::default()
    };
    let session = rt.block_on(AuditSession::open(store, &opts))?;
    let shape = if args.envelope {
        Shape::Envelope
    } else {
        Shape::Event
    };
    let n = rt.block_on(write_events(&session, from, to, shape, &mut out))?;
    out.flush()?;
    eprintln!("exported {n} events");
    Ok(ExitCode::SUCCESS)
}
