use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use auditlake_ingest::{IngestOptions, Progress, expand_inputs, ingest};
use auditlake_model::redact::RedactOptions;
use indicatif::{ProgressBar, ProgressStyle};

/// Exit code when the ingest completed but some input was rejected (kept in the store).
pub const EXIT_REJECTED: u8 = 3;

#[derive(clap::Args)]
pub struct Args {
    /// Files, folders, glob patterns, or - for standard input. Gzip is recognised by content.
    #[arg(required = true)]
    paths: Vec<String>,
    /// The cluster these events come from (stored in the `cluster` column).
    #[arg(long, env = "AUDITLAKE_CLUSTER")]
    cluster: Option<String>,
    /// Also redact the `data`/`stringData` values of this resource's bodies, as for Secrets
    /// (repeatable; the built-in rules and the config file's `[[redact.rules]]` stay).
    #[arg(long = "redact-resource", value_name = "RESOURCE")]
    redact_resources: Vec<String>,
    /// Store credentials (Secret values, tokens) as they are. Think twice.
    #[arg(long, conflicts_with = "redact_resources")]
    no_redact: bool,
    /// Memory for decoded events waiting to be written, in MiB.
    #[arg(long, default_value_t = 192)]
    buffer_mb: usize,
    /// Decoding threads (all cores by default).
    #[arg(long)]
    threads: Option<usize>,
    /// Apply this (stricter) audit policy to what was recorded: events at level None or in an
    /// omitted stage are not stored, bodies are removed below Request (request) and
    /// RequestResponse (response).
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// What the inputs hold: auto (decided per line or document), k8s (the apiserver's own
    /// events), eks (CloudWatch Logs exports, subscriptions, Firehose), aks (diagnostic records),
    /// gke (Cloud Logging entries, Pub/Sub messages).
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    format: auditlake_ingest::Format,
    /// Print where the time went, by stage: read, parse, build, dedup, encode, write, commit
    /// (each stage's busy time summed over its threads), and how long the reader and the
    /// writer waited for the decoders.
    #[arg(long)]
    timings: bool,
}

/// The redaction of stored events: the built-in rules, the config file's `[[redact.rules]]` and
/// `--redact-resource`s, or none with `--no-redact`.
pub fn redact_options(
    config: crate::config::Redact,
    resources: &[String],
    no_redact: bool,
) -> Result<RedactOptions> {
    if no_redact {
        return Ok(RedactOptions::disabled());
    }
    let mut rules = config.rules;
    rules.extend(resources.iter().map(|r| RedactOptions::secret_like(r)));
    RedactOptions::default()
        .with_rules(rules)
        .map_err(anyhow::Error::msg)
        .context("invalid [[redact.rules]] in the config file")
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn bytes(&self, n: u64) {
        self.0.inc(n);
    }
    fn input(&self, name: &str, _size: Option<u64>) {
        self.0.set_message(name.to_owned());
    }
}

pub fn run(store: &str, config: crate::config::Config, args: Args) -> Result<ExitCode> {
    let inputs = expand_inputs(&args.paths)?;
    let store = crate::open_store(store)?;
    let rt = crate::runtime()?;
    let mut opts = IngestOptions {
        cluster: args.cluster,
        format: args.format,
        buffer_bytes: args.buffer_mb << 20,
        file_bytes: (args.buffer_mb << 20) / 2,
        ..Default::default()
    };
    if let Some(t) = args.threads {
        opts.threads = t;
    }
    if let Some(p) = &args.policy {
        opts.policy = Some(Arc::new(crate::policy::load(p)?));
    }
    opts.decode.redact = redact_options(config.redact, &args.redact_resources, args.no_redact)?;
    let progress: Arc<dyn Progress> = if crate::stderr_is_tty() {
        let total: u64 = inputs.iter().filter_map(|i| i.size()).sum();
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Arc::new(Bar(pb))
    } else {
        Arc::new(())
    };
    let started = std::time::Instant::now();
    let summary = ingest(&store, &inputs, &opts, Arc::clone(&progress), rt.handle())
        .with_context(|| format!("ingest into {} stopped", store.url()))?;
    drop(progress);
    let secs = started.elapsed().as_secs_f64();
    for r in &summary.first_rejects {
        eprintln!("rejected {}: {}", r.location(), r.error);
    }
    if summary.rejected > summary.first_rejects.len() as u64 {
        eprintln!(
            "… and {} more rejected",
            summary.rejected - summary.first_rejects.len() as u64
        );
    }
    eprintln!(
        "{} input(s): {} events read, {} stored, {} duplicates, {} rejected; {} file(s), {:.1} MB written in {:.1}s ({:.0} events/s)",
        summary.inputs,
        summary.read,
        summary.stored,
        summary.duplicates,
        summary.rejected,
        summary.files_written,
        summary.bytes_written as f64 / 1e6,
        secs,
        summary.read as f64 / secs.max(1e-9),
    );
    if args.timings {
        let t = &summary.stages;
        let secs = |d: std::time::Duration| format!("{:.1}s", d.as_secs_f64());
        eprintln!(
            "stages (busy time, summed over threads; {} decode thread(s)): read {}, parse {}, \
             build {}, dedup {}, encode {}, write {}, commit {}; waiting: reader {}, writer {}",
            t.decode_threads,
            secs(t.read),
            secs(t.parse),
            secs(t.build),
            secs(t.dedup),
            secs(t.encode),
            secs(t.write),
            secs(t.commit),
            secs(t.reader_waiting),
            secs(t.writer_waiting),
        );
    }
    if !summary.by_format.is_empty()
        && (opts.format != auditlake_ingest::Format::K8s
            || summary.by_format.iter().any(|(f, _)| *f != "k8s"))
    {
        let parts: Vec<String> = summary
            .by_format
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect();
        eprintln!("formats (--format {}): {}", opts.format, parts.join(", "));
    }
    if opts.policy.is_some() {
        eprintln!(
            "policy: {} event(s) not stored (level None or an omitted stage), {} stored with less than was recorded",
            summary.policy_dropped, summary.policy_slimmed
        );
    }
    match summary.version {
        Some(v) => eprintln!(
            "committed in {} commit(s); table version {v}",
            summary.commits
        ),
        None => eprintln!("nothing new to commit"),
    }
    if summary.raced > 0 {
        eprintln!(
            "{} event(s) were committed by another writer first, and dropped here",
            summary.raced
        );
    }
    if summary.reused_ids > 0 {
        eprintln!(
            "{} stored event(s) carry the audit ID and stage of a distinct event: see the audit_id_reuse detection",
            summary.reused_ids
        );
    }
    if summary.rejected > 0 {
        for p in &summary.rejected_paths {
            eprintln!("rejected input kept in {p}");
        }
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}
