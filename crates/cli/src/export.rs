use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_model::encode::EventColumns;
use auditlake_model::schema::col;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::TimestampMicrosecondType;

use crate::time_arg::parse_time;

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
}

pub fn run(store: &str, args: Args) -> Result<ExitCode> {
    let from = args
        .from
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(i64::MIN);
    let to = args
        .to
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(i64::MAX);
    let store = crate::open_store(store)?;
    let rt = crate::runtime()?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let partitions = rt.block_on(store.partitions(Some((from, to))))?;
    let mut n = 0u64;
    // One hour at a time: memory is bounded by the largest hour.
    for files in partitions.values() {
        let mut batches: Vec<RecordBatch> = Vec::new();
        for f in files {
            batches.extend(rt.block_on(store.read_file(f, None))?);
        }
        let Some(first) = batches.first() else {
            continue;
        };
        let batch = concat_batches(&first.schema(), &batches)?;
        drop(batches);
        let ts_col = batch
            .column_by_name(col::TS)
            .context("stored file without ts")?;
        let idx = sort_to_indices(ts_col, None, None)?;
        let batch = take_record_batch(&batch, &idx)?;
        let ts = batch
            .column_by_name(col::TS)
            .context("stored file without ts")?
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        let cols = EventColumns::new(&batch)?;
        for i in 0..batch.num_rows() {
            let t = ts.value(i);
            if t < from || t >= to {
                continue;
            }
            serde_json::to_writer(&mut out, &cols.row_to_json(i))?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    eprintln!("exported {n} events");
    Ok(ExitCode::SUCCESS)
}
