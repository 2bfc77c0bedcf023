use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_gen::{GenConfig, generate};
use chrono::{DurationRound, TimeDelta};

#[derive(clap::Args)]
pub struct Args {
    /// How many events (lines) to write.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Over how many days, ending at --end.
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// Random seed: the same arguments always give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// End of the window (exclusive); the start of the current hour by default.
    #[arg(long)]
    end: Option<String>,
    /// Write here instead of standard output (gzip when the name ends in .gz).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let end = match &args.end {
        Some(s) => {
            let micros = crate::time_arg::parse_time(s)?;
            chrono::DateTime::from_timestamp_micros(micros).context("--end out of range")?
        }
        None => chrono::Utc::now()
            .duration_trunc(TimeDelta::hours(1))
            .context("cannot read the clock")?,
    };
    let cfg = GenConfig {
        events: args.events,
        days: args.days,
        seed: args.seed,
        end,
    };
    let stats = match &args.out {
        Some(path) => {
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            if path.extension().is_some_and(|e| e == "gz") {
                let mut gz = flate2::write::GzEncoder::new(
                    BufWriter::new(f),
                    flate2::Compression::default(),
                );
                let s = generate(&cfg, &mut gz)?;
                gz.finish()?.flush()?;
                s
            } else {
                generate(&cfg, BufWriter::new(f))?
            }
        }
        None => generate(&cfg, std::io::stdout().lock())?,
    };
    eprintln!(
        "generated {} events ({:.1} MB) over {} day(s) ending {}",
        stats.events,
        stats.bytes as f64 / 1e6,
        args.days,
        end.to_rfc3339()
    );
    Ok(ExitCode::SUCCESS)
}
