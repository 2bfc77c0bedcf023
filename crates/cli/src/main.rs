//! `auditlake`: keep and question Kubernetes audit history.

mod collect;
mod config;
mod export;
mod generate;
mod ingest;
mod integrity;
mod maintain;
mod policy;
mod repl;
mod report;
mod schedule;
mod simulate;
mod sql;
mod stats;
mod suggest;
mod time_arg;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_store::Store;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "auditlake",
    version,
    about = "An embedded columnar store with SQL for Kubernetes audit events"
)]
struct Cli {
    /// Where the store is: a folder, file:// or s3://bucket/prefix URL. S3 is configured by the
    /// standard AWS_* environment variables (AWS_ENDPOINT_URL, AWS_ALLOW_HTTP for a local server).
    #[arg(
        long,
        global = true,
        env = "AUDITLAKE_STORE",
        default_value = "./auditlake-data"
    )]
    store: String,

    /// The config file (retention, scope, schedules); `./auditlake.toml` when it exists.
    #[arg(long, global = true, env = "AUDITLAKE_CONFIG")]
    config: Option<std::path::PathBuf>,

    /// Sign the digest of every commit this command makes with this Ed25519 key (PKCS#8 PEM,
    /// from `auditlake keygen`; or `[integrity] signing_key`). Keep it off the store.
    #[arg(
        long,
        global = true,
        env = "AUDITLAKE_SIGNING_KEY",
        value_name = "FILE"
    )]
    signing_key: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store audit events from log files (rotated, gzipped), EventList documents, folders, globs or `-`.
    Ingest(ingest::Args),
    /// Write stored events back as JSON lines.
    Export(export::Args),
    /// Ask the audit history anything: SQL from -c, -f, standard input, or an interactive shell.
    Sql(sql::Args),
    /// Events, files and bytes per day and cluster; oldest and newest; hours without events.
    Stats(stats::Args),
    /// Evaluate compliance controls over a window: md, self-contained html, json or csv.
    Report(report::Args),
    /// Run the config file's [[schedule]] reports when their cron expressions fire (or --run-now).
    Schedule(schedule::Args),
    /// Merge the small files of each day into files of a target size (safe while others read and write).
    Compact(maintain::CompactArgs),
    /// Delete files no longer in the table (removed by compaction or retention, or never committed) after a grace period.
    Vacuum(maintain::VacuumArgs),
    /// Make a store written before the transaction log a Delta table (done by any write anyway).
    Migrate(maintain::MigrateArgs),
    /// Delete days older than a maximum age; slim older days to Metadata level (config or flags).
    Retain(maintain::RetainArgs),
    /// Receive audit events over HTTPS: the apiserver's webhook backend, Vector, Fluent Bit (acknowledged once durable).
    Serve(collect::ServeArgs),
    /// Follow the apiserver's audit log file across rotation into the store (restarts neither skip nor repeat).
    Follow(collect::FollowArgs),
    /// Prove the store complete and unaltered: the chain of commit digests, their signatures, every file's SHA-256.
    Verify(integrity::VerifyArgs),
    /// Write an Ed25519 key pair for signing the store's digests (--signing-key) and verifying them.
    Keygen(integrity::KeygenArgs),
    /// Generate realistic audit traffic as JSON lines (demos, tests, benchmarks).
    Gen(generate::Args),
    /// The Kubernetes audit policy: evaluate it on events (as the apiserver does) or lint it.
    #[command(subcommand)]
    Policy(policy::Args),
}

/// Options for the object store, from the environment: `AWS_*` variables, lower-cased as
/// object_store names its keys.
fn store_options() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// The key that signs this process's commits, read once at start-up.
static SIGNER: std::sync::OnceLock<Option<auditlake_store::integrity::Signer>> =
    std::sync::OnceLock::new();

fn with_signer(store: Store) -> Store {
    match SIGNER.get().cloned().flatten() {
        Some(s) => store.with_signer(s),
        None => store,
    }
}

fn open_store(location: &str) -> Result<Store> {
    Store::open(location, &store_options())
        .map(with_signer)
        .with_context(|| format!("cannot open the store {location}"))
}

/// Opens a store that must exist (every command but `ingest`): a typo'd path is an error, not an
/// empty store.
fn open_existing_store(location: &str) -> Result<Store> {
    Store::open_existing(location, &store_options())
        .map(with_signer)
        .with_context(|| format!("cannot open the store {location}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Whether progress bars and colour belong on stderr.
pub(crate) fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    let key = match &cli.signing_key {
        Some(p) => Some(p.clone()),
        None => {
            config::Config::load(cli.config.as_deref())?
                .0
                .integrity
                .signing_key
        }
    };
    let signer = key
        .map(|p| {
            auditlake_store::integrity::Signer::from_pem_file(&p)
                .context("cannot read the signing key")
        })
        .transpose()?;
    let _ = SIGNER.set(signer);
    match cli.command {
        Command::Ingest(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            ingest::run(&cli.store, config, args)
        }
        Command::Export(args) => export::run(&cli.store, args),
        Command::Gen(args) => generate::run(args),
        Command::Policy(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            policy::run(&cli.store, &config, args)
        }
        Command::Sql(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            sql::run(&cli.store, config.scope, args)
        }
        Command::Stats(args) => stats::run(&cli.store, args),
        Command::Report(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            report::run(&cli.store, &config, args)
        }
        Command::Schedule(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            schedule::run(&cli.store, &config, args)
        }
        Command::Compact(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            maintain::compact(&cli.store, &config, args)
        }
        Command::Vacuum(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            maintain::vacuum(&cli.store, &config, args)
        }
        Command::Serve(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            collect::serve_cmd(&cli.store, &config, args)
        }
        Command::Follow(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            collect::follow_cmd(&cli.store, &config, args)
        }
        Command::Verify(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            integrity::verify_cmd(&cli.store, &config, args)
        }
        Command::Keygen(args) => integrity::keygen(args),
        Command::Migrate(args) => maintain::migrate(&cli.store, args),
        Command::Retain(args) => {
            let (config, _) = config::Config::load(cli.config.as_deref())?;
            maintain::retain(&cli.store, &config, args)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if let Some(hint) = hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn hint(e: &anyhow::Error) -> Option<&'static str> {
    let text = format!("{e:#}");
    if text.contains("s3://") && (text.contains("credential") || text.contains("connect")) {
        return Some(
            "set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (and AWS_ALLOW_HTTP=true for a plain-HTTP server)",
        );
    }
    None
}
