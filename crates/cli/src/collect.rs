//! `auditlake serve` and `auditlake follow`: live collection (crates/collect).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use auditlake_collect::follow::{FollowOptions, Follower};
use auditlake_collect::server::{ServeOptions, TlsFiles, check, read_token_file, serve};
use auditlake_collect::{Collector, FlushOptions};
use serde::Deserialize;
use std::sync::Arc;

use tokio::sync::watch;

/// `[serve]` in the config file: every flag of `auditlake serve` (flags win), and the map from
/// client identities to cluster labels.
///
/// ```toml
/// [serve]
/// listen = "0.0.0.0:8443"
/// wal = "/var/lib/auditlake/wal"
/// tls_cert = "/etc/auditlake/tls.crt"
/// tls_key = "/etc/auditlake/tls.key"
/// client_ca = "/etc/auditlake/client-ca.crt"
/// policy = "/etc/auditlake/strict-policy.yaml"   # optional: a stricter audit policy
/// format = "auto"            # or k8s, eks, aks, gke: what bodies and followed files hold
/// [serve.clusters]          # cn:<certificate subject CN> or token:<token's name> -> label
/// "cn:kube-apiserver-prod" = "prod"
/// "token:vector-staging" = "staging"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<String>,
    pub wal: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub cluster: Option<String>,
    pub clusters: HashMap<String, String>,
    pub max_body_mb: Option<usize>,
    pub flush_interval: Option<String>,
    pub flush_mb: Option<u64>,
    pub wal_max_mb: Option<u64>,
    pub follow: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub format: Option<String>,
}

#[derive(clap::Args)]
pub struct FlushArgs {
    /// Commit what was received at least this often (s, min, h).
    #[arg(long, value_name = "AGE")]
    flush_interval: Option<String>,
    /// ... or once this many MiB are waiting.
    #[arg(long, value_name = "MIB")]
    flush_mb: Option<u64>,
    /// Refuse batches (429) while this many MiB wait in the write-ahead log for the store.
    #[arg(long, value_name = "MIB")]
    wal_max_mb: Option<u64>,
    /// Also redact this resource's `data`/`stringData`, as for Secrets (repeatable).
    #[arg(long = "redact-resource", value_name = "RESOURCE")]
    redact_resources: Vec<String>,
    /// Apply this (stricter) audit policy to what the apiserver sends: events at level None or in
    /// an omitted stage are not stored, bodies are removed below Request and managed fields where
    /// it says so; counted in /metrics (auditlake_events_policy_dropped_total).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// What bodies (serve) and the followed file hold: auto (per item), k8s, eks (a Firehose
    /// HTTP endpoint delivery, subscription documents), aks (records), gke (Pub/Sub push).
    #[arg(long, value_name = "FORMAT")]
    format: Option<auditlake_ingest::Format>,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The write-ahead log's folder (on a persistent volume).
    #[arg(long, value_name = "DIR")]
    wal: Option<PathBuf>,
    /// The server's certificate chain (PEM).
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Clients must present a certificate issued by this CA (PEM); its subject CN is the identity.
    #[arg(long, value_name = "PEM")]
    client_ca: Option<PathBuf>,
    /// Bearer tokens, one `token,name` per line; the name is the identity.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The cluster label of clients without an entry in [serve.clusters] (the one-cluster case).
    #[arg(long)]
    cluster: Option<String>,
    /// Plain HTTP, on a loopback address only (tests, a sidecar on the same host).
    #[arg(long)]
    insecure_http: bool,
    /// Largest request body, in MiB (413 beyond).
    #[arg(long, value_name = "MIB")]
    max_body_mb: Option<usize>,
    /// Requests read and parsed at once (429 beyond): with --max-body-mb, the memory bound.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_inflight: usize,
    /// Also follow this audit log file into the same write-ahead log.
    #[arg(long, value_name = "PATH")]
    follow: Option<PathBuf>,
    #[command(flatten)]
    flush: FlushArgs,
}

#[derive(clap::Args)]
pub struct FollowArgs {
    /// The apiserver's audit log file (`--audit-log-path`).
    path: PathBuf,
    /// Where the checkpoint and the write-ahead log are kept.
    #[arg(long, value_name = "DIR", default_value = "./auditlake-follow")]
    state: PathBuf,
    /// The cluster label of the events.
    #[arg(long, env = "AUDITLAKE_CLUSTER")]
    cluster: Option<String>,
    #[command(flatten)]
    flush: FlushArgs,
}

fn init_logging() {
    init_logging_at(tracing::Level::INFO);
}

/// Logs to standard error at `AUDITLAKE_LOG` (debug, info, warn, error, trace), else at `default`.
pub(crate) fn init_logging_at(default: tracing::Level) {
    let level = match std::env::var("AUDITLAKE_LOG").ok().as_deref() {
        Some("debug") => tracing::Level::DEBUG,
        Some("info") => tracing::Level::INFO,
        Some("warn") => tracing::Level::WARN,
        Some("error") => tracing::Level::ERROR,
        Some("trace") => tracing::Level::TRACE,
        _ => default,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(crate::stderr_is_tty())
        .try_init();
}

fn flush_options(
    config: &crate::config::Config,
    serve: &ServeConfig,
    args: &FlushArgs,
) -> Result<FlushOptions> {
    let mut opts = FlushOptions::default();
    if let Some(age) = args
        .flush_interval
        .as_ref()
        .or(serve.flush_interval.as_ref())
    {
        let d = crate::config::parse_age(age)?;
        opts.interval = d
            .to_std()
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("--flush-interval {age} must be positive"))?;
    }
    if let Some(mb) = args.flush_mb.or(serve.flush_mb) {
        opts.segment_bytes = mb.max(1) << 20;
    }
    if let Some(mb) = args.wal_max_mb.or(serve.wal_max_mb) {
        opts.max_wal_bytes = mb.max(1) << 20;
    }
    opts.ingest.decode.redact =
        crate::ingest::redact_options(config.redact.clone(), &args.redact_resources, false)?;
    if let Some(p) = args.policy.as_ref().or(serve.policy.as_ref()) {
        opts.ingest.policy = Some(Arc::new(crate::policy::load(p)?));
    }
    opts.ingest.format = match (args.format, serve.format.as_deref()) {
        (Some(f), _) => f,
        (None, Some(f)) => f
            .parse()
            .map_err(anyhow::Error::msg)
            .context("format in [serve] of the config file")?,
        (None, None) => auditlake_ingest::Format::Auto,
    };
    Ok(opts)
}

/// What serve and follow run on: the collector (WAL and flusher), and the stop that SIGTERM and
/// SIGINT send.
struct Running {
    collector: Collector,
    flusher: tokio::task::JoinHandle<()>,
    stop_tx: Arc<watch::Sender<bool>>,
    stop: watch::Receiver<bool>,
    flush_stop: watch::Sender<bool>,
}

impl Running {
    fn start(
        store: auditlake_store::Store,
        wal: &std::path::Path,
        flush: FlushOptions,
    ) -> Result<Running> {
        let (stop_tx, stop) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        on_signal(Arc::clone(&stop_tx));
        let (flush_stop, flush_stop_rx) = watch::channel(false);
        let (collector, flusher) = Collector::start(store, wal.to_path_buf(), flush, flush_stop_rx)
            .with_context(|| format!("cannot open the write-ahead log {}", wal.display()))?;
        Ok(Running {
            collector,
            flusher,
            stop_tx,
            stop,
            flush_stop,
        })
    }

    /// Commits what the WAL holds (once the receivers have stopped) and waits for the flusher.
    async fn finish(self) {
        let _ = self.flush_stop.send(true);
        let _ = self.flusher.await;
    }
}

/// SIGTERM or SIGINT -> `stop`.
fn on_signal(stop: Arc<watch::Sender<bool>>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("signal received: stopping");
        let _ = stop.send(true);
    });
}

pub fn serve_cmd(store: &str, config: &crate::config::Config, args: ServeArgs) -> Result<ExitCode> {
    init_logging();
    let sc = &config.serve;
    let listen = args
        .listen
        .or(sc.listen.clone())
        .unwrap_or_else(|| "0.0.0.0:8443".to_owned());
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen}: expected an address like 0.0.0.0:8443"))?;
    let wal = args
        .wal
        .or(sc.wal.clone())
        .context("serve needs --wal DIR (or wal in [serve]): the write-ahead log's folder")?;
    let tls = match (
        args.tls_cert.or(sc.tls_cert.clone()),
        args.tls_key.or(sc.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: args.client_ca.or(sc.client_ca.clone()),
        }),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let tokens = match args.token_file.or(sc.token_file.clone()) {
        Some(p) => read_token_file(&p)?,
        None => Vec::new(),
    };
    let flush = flush_options(config, sc, &args.flush)?;
    let opts = ServeOptions {
        listen,
        tls,
        tokens,
        clusters: sc.clusters.clone(),
        default_cluster: args.cluster.or(sc.cluster.clone()),
        max_body_bytes: args.max_body_mb.or(sc.max_body_mb).unwrap_or(10) << 20,
        max_inflight: args.max_inflight,
        decode: flush.ingest.decode.clone(),
        format: flush.ingest.format,
    };
    check(&opts, args.insecure_http)?;
    let follow = args.follow.or(sc.follow.clone());
    let store = crate::open_store(store)?;
    let rt = crate::runtime()?;
    rt.block_on(async move {
        let run = Running::start(store, &wal, flush)?;
        let (collector, stop, stop_tx) = (
            run.collector.clone(),
            run.stop.clone(),
            Arc::clone(&run.stop_tx),
        );
        let follower = match follow {
            Some(path) => Some(start_follower(
                FollowOptions {
                    path,
                    state_dir: wal.join("follow"),
                    cluster: opts.default_cluster.clone(),
                    poll: Duration::from_millis(200),
                    batch_bytes: 4 << 20,
                },
                collector.clone(),
                stop.clone(),
                Arc::clone(&stop_tx),
            )?),
            None => None,
        };
        let served = serve(opts, collector.clone(), stop.clone(), None).await;
        // A server that could not start (or stopped on an error) stops the follower too.
        let _ = stop_tx.send(true);
        if let Some(f) = follower {
            join_follower(f).await?;
        }
        run.finish().await;
        served?;
        tracing::info!(
            waiting_bytes = collector
                .wal
                .stats
                .bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            "stopped"
        );
        Ok(ExitCode::SUCCESS)
    })
}

type FollowThread = std::thread::JoinHandle<Result<(), auditlake_collect::follow::FollowError>>;

/// Starts the follower on its own thread. If it fails, it says so and stops the whole process
/// (`stop_all`): a receiver that silently stopped following its log file would look healthy.
fn start_follower(
    opts: FollowOptions,
    collector: Collector,
    stop: watch::Receiver<bool>,
    stop_all: Arc<watch::Sender<bool>>,
) -> Result<FollowThread> {
    let follower = Follower::new(opts, collector)?;
    let rt = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("follow".into())
        .spawn(move || {
            let r = follower.run(rt, stop);
            if let Err(e) = &r {
                tracing::error!(error = %e, "following the log file failed: stopping");
                let _ = stop_all.send(true);
            }
            r
        })
        .context("cannot start the follower")
}

async fn join_follower(f: FollowThread) -> Result<()> {
    tokio::task::spawn_blocking(move || f.join())
        .await
        .context("follower")?
        .map_err(|_| anyhow::anyhow!("the follower panicked"))?
        .context("following the log file stopped")
}

pub fn follow_cmd(
    store: &str,
    config: &crate::config::Config,
    args: FollowArgs,
) -> Result<ExitCode> {
    init_logging();
    let flush = flush_options(config, &config.serve, &args.flush)?;
    let store = crate::open_store(store)?;
    let rt = crate::runtime()?;
    rt.block_on(async move {
        let run = Running::start(store, &args.state.join("wal"), flush)?;
        let follower = start_follower(
            FollowOptions {
                path: args.path,
                state_dir: args.state,
                cluster: args.cluster,
                poll: Duration::from_millis(200),
                batch_bytes: 4 << 20,
            },
            run.collector.clone(),
            run.stop.clone(),
            Arc::clone(&run.stop_tx),
        )?;
        let followed = join_follower(follower).await;
        run.finish().await;
        followed?;
        Ok(ExitCode::SUCCESS)
    })
}
