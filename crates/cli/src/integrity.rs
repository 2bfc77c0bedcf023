//! `auditlake keygen` and `auditlake verify`: the store's tamper evidence (store::integrity).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlake_query::{AuditSession, QueryOptions};
use auditlake_store::integrity::{PublicKey, VerifyOptions, VerifyReport, verify};

/// Exit code when verification found something.
pub const EXIT_FOUND: u8 = 5;

/// `[integrity]` in the config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrityConfig {
    /// The private key that signs every commit's digest (`--signing-key` wins).
    pub signing_key: Option<PathBuf>,
    /// The public key `verify` and reports check signatures against.
    pub public_key: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Folder for the key pair.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// File names: NAME.key (private, mode 0600) and NAME.pub.
    #[arg(long, default_value = "auditlake-signing")]
    name: String,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// First day whose files are hashed (the chain of digests is always checked whole).
    #[arg(long)]
    from: Option<String>,
    /// End (exclusive) of the days whose files are hashed.
    #[arg(long)]
    to: Option<String>,
    /// Check every digest's signature against this public key (PEM).
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// A table version known to exist (recorded by an earlier report or verify, kept outside the
    /// store): a log that ends before it was truncated or rolled back.
    #[arg(long, value_name = "VERSION")]
    expect_version: Option<u64>,
    #[arg(long, value_enum, default_value = "text")]
    format: VerifyFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum VerifyFormat {
    Text,
    Json,
}

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let (key, public, fp) = auditlake_store::integrity::keygen(&args.out, &args.name)?;
    eprintln!(
        "private key {} (keep it off the store, mode 0600)",
        key.display()
    );
    eprintln!("public key  {}", public.display());
    eprintln!("fingerprint {fp}");
    Ok(ExitCode::SUCCESS)
}

/// The public key of `--public-key` or the config file.
pub fn public_key(
    explicit: Option<&PathBuf>,
    config: &IntegrityConfig,
) -> Result<Option<PublicKey>> {
    explicit
        .or(config.public_key.as_ref())
        .map(|p| PublicKey::from_pem_file(p).context("cannot read the public key"))
        .transpose()
}

/// Runs the verification of `[from, to)` (the whole store when open).
pub fn run_verify(
    rt: &tokio::runtime::Runtime,
    store: &auditlake_store::Store,
    from: Option<i64>,
    to: Option<i64>,
    public_key: Option<PublicKey>,
    expect_version: Option<u64>,
) -> Result<(VerifyReport, crate::stats::Gaps)> {
    let opts = VerifyOptions {
        from,
        to,
        public_key,
        expect_version,
    };
    let report = rt
        .block_on(verify(store, &opts))
        .context("verification stopped")?;
    // The hours without any event, within the window and the stored history.
    let readable = !report.findings.iter().any(|f| {
        matches!(
            f,
            auditlake_store::integrity::Finding::SnapshotMismatch { .. }
        )
    });
    let gaps = if report.version.is_some() && readable {
        let session = rt.block_on(AuditSession::open(store.clone(), &QueryOptions::default()))?;
        let fmt = auditlake_model::time::format_canonical;
        let mut filter = vec!["TRUE".to_owned()];
        if let Some(f) = from {
            filter.push(format!("ts >= '{}'", fmt(f)));
        }
        if let Some(t) = to {
            filter.push(format!("ts < '{}'", fmt(t)));
        }
        // A store found altered may not even be readable: the findings stand without the gaps.
        match crate::stats::hour_gaps(rt, &session, &filter.join(" AND ")) {
            Ok((_, gaps)) => gaps,
            Err(e) => {
                eprintln!("warning: the hours without events were not computed: {e:#}");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    Ok((report, gaps))
}

pub fn verify_cmd(
    store: &str,
    config: &crate::config::Config,
    args: VerifyArgs,
) -> Result<ExitCode> {
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let (from, to) = (
        args.from
            .as_deref()
            .map(crate::time_arg::parse_time)
            .transpose()?,
        args.to
            .as_deref()
            .map(crate::time_arg::parse_time)
            .transpose()?,
    );
    let key = public_key(args.public_key.as_ref(), &config.integrity)?;
    let (report, gaps) = run_verify(&rt, &store, from, to, key, args.expect_version)?;
    let fmt = auditlake_model::time::format_canonical;
    match args.format {
        VerifyFormat::Json => {
            let value = serde_json::json!({
                "store": store.url().as_str(),
                "clean": report.clean(),
                "report": report,
                "findings": report.findings.iter().map(|f| f.describe()).collect::<Vec<_>>(),
                "gaps": gaps.iter().map(|(a, b)| serde_json::json!({"from": fmt(*a), "to": fmt(*b)})).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        VerifyFormat::Text => {
            println!(
                "{}: {} entries of the log checked (table version {}), {} signed by key {}; {} files hashed ({:.1} MB)",
                store.url(),
                report.entries,
                report.version.map_or("-".to_owned(), |v| v.to_string()),
                report.signed,
                report
                    .key
                    .as_deref()
                    .unwrap_or("(no --public-key: signatures not checked)"),
                report.files_hashed,
                report.bytes_hashed as f64 / 1e6
            );
            for f in &report.findings {
                println!("FOUND: {}", f.describe());
            }
            for (a, b) in &gaps {
                println!("gap: no events from {} to {}", fmt(*a), fmt(*b));
            }
            println!("{}", if report.clean() { "clean" } else { "NOT CLEAN" });
        }
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FOUND)
    })
}
