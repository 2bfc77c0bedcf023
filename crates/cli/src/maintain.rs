//! `auditlake compact` and `auditlake retain`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_query::maintain::{self, RetentionPolicy, RewriteOptions};
use auditlake_store::log::VacuumSummary;

use crate::config::{Config, parse_age};
use crate::time_arg::{parse_bounds, parse_time};

#[derive(clap::Args)]
pub struct CompactArgs {
    /// Only days at or after this time.
    #[arg(long)]
    from: Option<String>,
    /// Only days before this time.
    #[arg(long)]
    to: Option<String>,
    /// Size at which a compacted file is closed; files under 3/4 of it are merged.
    #[arg(long, default_value_t = 128, value_name = "MB")]
    target_mb: usize,
    /// Say what would be merged, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Files removed by a commit are deleted once this old (default: [retention] vacuum_grace,
    /// else 1h), so that readers of an older snapshot finish first.
    #[arg(long, value_name = "AGE")]
    vacuum_grace: Option<String>,
}

#[derive(clap::Args)]
pub struct VacuumArgs {
    /// Delete files removed (or never committed) at least this long ago (default: [retention]
    /// vacuum_grace, else 1h). `0s` deletes at once: readers of older snapshots then fail.
    #[arg(long, value_name = "AGE")]
    grace: Option<String>,
    /// Say what would be deleted, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
pub struct MigrateArgs {}

#[derive(clap::Args)]
pub struct RetainArgs {
    /// Delete days entirely older than this (400d, 52w, 1y); overrides [retention] max_age.
    #[arg(long)]
    max_age: Option<String>,
    /// Drop request and response bodies of days older than this; overrides [retention] slim_after.
    #[arg(long)]
    slim_after: Option<String>,
    /// Evaluate ages as of this time instead of now (RFC 3339 or a date).
    #[arg(long)]
    now: Option<String>,
    /// Say what would be deleted or slimmed, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Files removed by a commit are deleted once this old (default: [retention] vacuum_grace,
    /// else 1h).
    #[arg(long, value_name = "AGE")]
    vacuum_grace: Option<String>,
}

/// The grace period before removed files are deleted: the flag, else the config file, else 1h.
fn grace(cli: Option<&str>, config: &Config) -> Result<chrono::TimeDelta> {
    match cli.or(config.retention.vacuum_grace.as_deref()) {
        Some(s) => parse_age(s).context("invalid vacuum grace"),
        None => Ok(auditlake_store::log::DEFAULT_VACUUM_GRACE),
    }
}

fn range(from: Option<&str>, to: Option<&str>) -> Result<Option<(i64, i64)>> {
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    parse_bounds(from, to).map(Some)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub fn compact(store: &str, config: &Config, args: CompactArgs) -> Result<ExitCode> {
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let opts = RewriteOptions {
        target_file_bytes: args.target_mb.max(1) << 20,
        range: range(args.from.as_deref(), args.to.as_deref())?,
        dry_run: args.dry_run,
        vacuum_grace: grace(args.vacuum_grace.as_deref(), config)?,
        ..Default::default()
    };
    let s = rt.block_on(maintain::compact(&store, &opts))?;
    if s.conflicts > 0 {
        eprintln!(
            "{} rewrites given up: another run replaced their files first",
            s.conflicts
        );
    }
    if s.duplicates > 0 {
        eprintln!("dropped {} exact copies of stored events", s.duplicates);
    }
    if args.dry_run {
        println!(
            "would merge {} files ({:.1} MB) in {} days",
            s.files_before,
            mb(s.bytes_before),
            s.days
        );
    } else {
        println!(
            "compacted {} days: {} files ({:.1} MB) into {} ({:.1} MB), {} events",
            s.days,
            s.files_before,
            mb(s.bytes_before),
            s.files_after,
            mb(s.bytes_after),
            s.rows
        );
    }
    report_version_and_vacuum(s.version, &s.vacuum);
    Ok(ExitCode::SUCCESS)
}

pub fn retain(store: &str, config: &Config, args: RetainArgs) -> Result<ExitCode> {
    let age = |cli: &Option<String>, file: &Option<String>, what: &str| {
        cli.as_ref()
            .or(file.as_ref())
            .map(|s| parse_age(s).with_context(|| format!("invalid {what}")))
            .transpose()
    };
    let policy = RetentionPolicy {
        max_age: age(&args.max_age, &config.retention.max_age, "max_age")?,
        slim_after: age(&args.slim_after, &config.retention.slim_after, "slim_after")?,
    };
    if let (Some(max), Some(slim)) = (policy.max_age, policy.slim_after)
        && slim >= max
    {
        eprintln!(
            "note: slim_after ({slim}) is not below max_age ({max}): nothing will be slimmed"
        );
    }
    let now = match &args.now {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp_micros(),
    };
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let opts = RewriteOptions {
        dry_run: args.dry_run,
        vacuum_grace: grace(args.vacuum_grace.as_deref(), config)?,
        ..Default::default()
    };
    let s = rt.block_on(maintain::retain(&store, &policy, now, &opts))?;
    if s.conflicts > 0 {
        eprintln!(
            "{} slimming rewrites given up: another run replaced their files first",
            s.conflicts
        );
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    match (s.deleted_days.first(), s.deleted_days.last()) {
        (Some(first), Some(last)) => println!(
            "{verb} {} days ({first} to {last}): {} events in {} files, {:.1} MB",
            s.deleted_days.len(),
            s.deleted_rows,
            s.deleted_files,
            mb(s.deleted_bytes)
        ),
        _ => println!("{verb} nothing"),
    }
    let verb = if args.dry_run {
        "would slim"
    } else {
        "slimmed"
    };
    match (s.slimmed_days.first(), s.slimmed_days.last()) {
        (Some(first), Some(last)) if args.dry_run => println!(
            "{verb} {} days ({first} to {last}), {:.1} MB now",
            s.slimmed_days.len(),
            mb(s.bytes_before_slimming)
        ),
        (Some(first), Some(last)) => println!(
            "{verb} {} days ({first} to {last}): {} events, {:.1} MB to {:.1} MB",
            s.slimmed_days.len(),
            s.slimmed_rows,
            mb(s.bytes_before_slimming),
            mb(s.bytes_after_slimming)
        ),
        _ => println!("{verb} nothing"),
    }
    if s.deleted_rejected > 0 {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        println!(
            "{verb} {} part(s) of the rejected-events area older than the maximum age",
            s.deleted_rejected
        );
    }
    if s.deleted_kept > 0 {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        println!(
            "{verb} {} file(s) of report evidence kept for days older than the maximum age",
            s.deleted_kept
        );
    }
    report_version_and_vacuum(s.version, &s.vacuum);
    Ok(ExitCode::SUCCESS)
}

fn report_version_and_vacuum(version: Option<auditlake_store::Version>, v: &VacuumSummary) {
    if let Some(version) = version {
        eprintln!("table version {version}");
    }
    if v.deleted_files > 0 {
        eprintln!(
            "vacuum: deleted {} files no longer in the table ({:.1} MB)",
            v.deleted_files,
            mb(v.deleted_bytes)
        );
    }
    if v.kept_for_grace > 0 {
        eprintln!(
            "vacuum: {} removed files kept until their grace period has passed",
            v.kept_for_grace
        );
    }
}

/// `auditlake vacuum`: deletes files that are no longer in the table, past the grace period.
pub fn vacuum(store: &str, config: &Config, args: VacuumArgs) -> Result<ExitCode> {
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let grace = grace(args.grace.as_deref(), config)?;
    let v = rt.block_on(store.vacuum(grace, args.dry_run))?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "{verb} {} files ({:.1} MB); {} kept for the grace period",
        v.deleted_files,
        mb(v.deleted_bytes),
        v.kept_for_grace
    );
    Ok(ExitCode::SUCCESS)
}

/// `auditlake migrate`: makes a store in the layout before the transaction log a table, and
/// checks that the table holds what the folders held.
pub fn migrate(store: &str, _args: MigrateArgs) -> Result<ExitCode> {
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    if let Some(v) = rt.block_on(store.latest_version())? {
        println!("the store is a table already (version {v}); nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    let before = rt.block_on(store.snapshot(None))?;
    let census_before = rt.block_on(maintain::census(&store, &before.files))?;
    let version = rt.block_on(store.ensure_table())?;
    let after = rt.block_on(store.snapshot(None))?;
    let census_after = rt.block_on(maintain::census(&store, &after.files))?;
    if census_before != census_after {
        anyhow::bail!(
            "the table (version {version}) does not hold what the folders held: {} events with \
             {} distinct keys before, {} with {} after",
            census_before.0,
            census_before.1,
            census_after.0,
            census_after.1
        );
    }
    println!(
        "migrated: {} files, {} events, {} distinct (audit_id, stage, ts) keys, as version {version}",
        after.files.len(),
        census_after.0,
        census_after.1
    );
    Ok(ExitCode::SUCCESS)
}
