//! Writes generated audit events to stdout and a summary to stderr.
//!
//! `cargo run --release -p auditlake-gen --example gen_sample -- [EVENTS] [DAYS] [SEED]`

use std::io::{self, Write};
use std::time::Instant;

use auditlake_gen::{GenConfig, generate};
use chrono::{TimeZone, Utc};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let cfg = GenConfig {
        events: arg(0, 1000),
        days: u32::try_from(arg(1, 1)).unwrap_or(1),
        seed: arg(2, 1),
        end: Utc
            .with_ymd_and_hms(2025, 4, 7, 0, 0, 0)
            .single()
            .unwrap_or_else(Utc::now),
    };
    let started = Instant::now();
    let stdout = io::stdout().lock();
    let stats = match generate(&cfg, stdout) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        other => other?,
    };
    let secs = started.elapsed().as_secs_f64();
    writeln!(
        io::stderr(),
        "{} events, {} bytes (avg {} B) in {secs:.2}s ({:.0} events/s)",
        stats.events,
        stats.bytes,
        stats.bytes / stats.events.max(1),
        stats.events as f64 / secs
    )
}
