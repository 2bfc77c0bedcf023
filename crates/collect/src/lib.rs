//! Live collection: `auditlake serve` (the apiserver's webhook backend, log shippers' HTTP
//! outputs) and `auditlake follow` (the apiserver's log file), on one path:
//!
//! batch -> [`wal::Wal`] (fsync'd, then acknowledged) -> [`Collector`]'s flusher -> the ingest
//! pipeline (`auditlake_ingest::ingest`: decode, redact, dedup, Parquet, one commit to the Delta
//! log) -> the segment is deleted.
//!
//! Exactly-once storage comes from at-least-once delivery plus the ingest's dedup: a batch the
//! client retries, a segment replayed after a crash between the commit and the delete, or lines
//! the follower reads again after a crash before its checkpoint are exact copies of events
//! already stored (same key, same digest), and are dropped at the flush.

pub mod body;
pub mod follow;
pub mod metrics;
pub mod server;
pub mod wal;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlake_ingest::{IngestOptions, Input, ingest};
use auditlake_store::Store;
use tokio::sync::watch;

pub use metrics::Metrics;
pub use wal::{Wal, WalError, WalOptions};

/// How batches become commits.
#[derive(Debug, Clone)]
pub struct FlushOptions {
    /// A segment is sealed and committed at least this often.
    pub interval: Duration,
    /// ... or when it holds this many bytes.
    pub segment_bytes: u64,
    /// Batches are refused (429) while the WAL holds this much not yet committed.
    pub max_wal_bytes: u64,
    /// Decode, redaction and file settings of the commits (the cluster is set per batch).
    pub ingest: IngestOptions,
}

impl Default for FlushOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            segment_bytes: 64 << 20,
            max_wal_bytes: 2 << 30,
            ingest: IngestOptions {
                threads: 1,
                ..Default::default()
            },
        }
    }
}

/// The WAL and its flusher: what serve and follow share.
#[derive(Clone)]
pub struct Collector {
    pub wal: Wal,
    pub metrics: Arc<Metrics>,
    pub opts: Arc<FlushOptions>,
    replayed: Arc<AtomicBool>,
}

impl Collector {
    /// Opens the WAL in `dir` and starts the flusher and the flush timer on the current runtime.
    /// Returns the collector and a task that ends once `stop` fires and everything sealed is
    /// committed (or the store stays unreachable; the WAL then keeps it for the next start).
    pub fn start(
        store: Store,
        dir: std::path::PathBuf,
        opts: FlushOptions,
        stop: watch::Receiver<bool>,
    ) -> Result<(Collector, tokio::task::JoinHandle<()>), WalError> {
        let (wal, appender) = Wal::open(WalOptions {
            dir,
            segment_bytes: opts.segment_bytes,
            max_bytes: opts.max_wal_bytes,
        })?;
        let replay_until = wal
            .sealed
            .queue
            .lock()
            .ok()
            .and_then(|q| q.back().map(|s| s.seq))
            .unwrap_or(0);
        let replayed = Arc::new(AtomicBool::new(replay_until == 0));
        let collector = Collector {
            wal,
            metrics: Arc::new(Metrics::default()),
            opts: Arc::new(opts),
            replayed,
        };
        let c = collector.clone();
        // The appending thread ends with the process: every batch it acknowledged is on disk.
        drop(appender);
        let task = tokio::spawn(async move { c.flush_loop(store, replay_until, stop).await });
        Ok((collector, task))
    }

    /// Whether the WAL left by an earlier run has been committed.
    pub fn ready(&self) -> bool {
        self.replayed.load(Ordering::Relaxed)
    }

    async fn flush_loop(&self, store: Store, replay_until: u64, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.opts.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut failures = 0u32;
        let mut stopping = false;
        loop {
            let next = self
                .wal
                .sealed
                .queue
                .lock()
                .ok()
                .and_then(|q| q.front().cloned());
            let Some(seg) = next else {
                if replay_until > 0 {
                    self.replayed.store(true, Ordering::Relaxed);
                }
                if stopping {
                    return;
                }
                tokio::select! {
                    _ = self.wal.sealed.bell.notified() => {}
                    _ = ticker.tick() => { let _ = self.wal.seal().await; }
                    _ = stop.changed() => {
                        stopping = true;
                        let _ = self.wal.seal().await;
                    }
                }
                continue;
            };
            let started = Instant::now();
            match self.flush_segment(&store, &seg).await {
                Ok(()) => {
                    failures = 0;
                    self.metrics.flushes.fetch_add(1, Ordering::Relaxed);
                    self.metrics.flush_seconds.observe(started.elapsed());
                    if let Ok(mut q) = self.wal.sealed.queue.lock() {
                        q.pop_front();
                    }
                    if seg.seq >= replay_until {
                        self.replayed.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    failures += 1;
                    self.metrics.flush_failures.fetch_add(1, Ordering::Relaxed);
                    let wait = Duration::from_millis(500u64 << failures.min(6));
                    tracing::warn!(segment = %seg.path.display(), error = %e, retry_in = ?wait,
                        "flush to the store failed; the batches stay in the write-ahead log");
                    if stopping && failures >= 3 {
                        tracing::error!(
                            segments = self.wal.stats.segments.load(Ordering::Relaxed),
                            "stopping with batches not yet committed; they stay in the write-ahead log for the next start"
                        );
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed(), if !stopping => {
                            stopping = true;
                            let _ = self.wal.seal().await;
                        }
                    }
                }
            }
        }
    }

    /// Commits one sealed segment (one ingest per cluster label in it), then deletes it.
    async fn flush_segment(&self, store: &Store, seg: &wal::Segment) -> Result<(), String> {
        if !seg.path.exists() {
            // Deleted by an earlier try whose directory sync failed: its commit is done.
            wal::forget(&self.wal.stats, seg);
            return Ok(());
        }
        let path = seg.path.clone();
        let data = tokio::task::spawn_blocking(move || wal::read_segment(&path))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut corrupt = data.corrupt_at;
        if let Some(at) = data.torn_at {
            if seg.may_be_torn {
                tracing::info!(segment = %seg.path.display(), offset = at,
                    "segment ends in a half-written batch (never acknowledged); read up to it");
            } else {
                // A segment sealed normally ends with a whole frame: this is damage.
                corrupt = Some(at);
            }
        }
        for (cluster, lines) in data.by_cluster {
            let mut opts = self.opts.ingest.clone();
            opts.cluster = (!cluster.is_empty()).then(|| cluster.clone());
            let input = Input::Memory {
                name: format!(
                    "{} (cluster {})",
                    seg.path.display(),
                    if cluster.is_empty() { "-" } else { &cluster }
                ),
                data: Arc::from(lines),
            };
            let store = store.clone();
            let rt = tokio::runtime::Handle::current();
            let summary = tokio::task::spawn_blocking(move || {
                ingest(&store, &[input], &opts, Arc::new(()), &rt)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e}"))?;
            self.metrics
                .events_stored
                .fetch_add(summary.stored, Ordering::Relaxed);
            self.metrics
                .events_deduplicated
                .fetch_add(summary.duplicates + summary.raced, Ordering::Relaxed);
            self.metrics
                .events_policy_dropped
                .fetch_add(summary.policy_dropped, Ordering::Relaxed);
            self.metrics
                .events_policy_slimmed
                .fetch_add(summary.policy_slimmed, Ordering::Relaxed);
            tracing::info!(segment = %seg.path.display(), cluster = %cluster, read = summary.read,
                stored = summary.stored, duplicates = summary.duplicates + summary.raced,
                rejected = summary.rejected, policy_dropped = summary.policy_dropped, version = ?summary.version, "committed");
        }
        let (dir, stats) = (self.wal.dir.clone(), Arc::clone(&self.wal.stats));
        let metrics = Arc::clone(&self.metrics);
        let seg2 = seg.clone();
        tokio::task::spawn_blocking(move || match corrupt {
            None => wal::delete_segment(&dir, &stats, &seg2).map(|_| ()),
            Some(at) => wal::quarantine_segment(&dir, &stats, &seg2).map(|to| {
                metrics.wal_corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::error!(segment = %to.display(), offset = at,
                    "write-ahead log segment is corrupt after this offset: the batches before it are committed, the file is kept");
            }),
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    /// Appends a batch for `cluster` (empty: none) and counts it; returns once it is durable.
    pub async fn append(&self, cluster: Arc<str>, parsed: body::Parsed) -> Result<(), WalError> {
        self.wal.append(cluster, parsed.lines).await?;
        self.metrics
            .events_received
            .fetch_add(parsed.accepted + parsed.rejected, Ordering::Relaxed);
        self.metrics
            .events_rejected
            .fetch_add(parsed.rejected, Ordering::Relaxed);
        Ok(())
    }
}
