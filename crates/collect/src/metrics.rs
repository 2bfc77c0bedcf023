//! `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::wal::WalStats;

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// Everything the receiver and the follower count.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status code.
    pub requests: Mutex<BTreeMap<u16, u64>>,
    /// Items received in accepted batches (good and not), acknowledged into the WAL.
    pub events_received: AtomicU64,
    /// Items of accepted batches that are not events (kept in the rejected area).
    pub events_rejected: AtomicU64,
    /// Events committed to the store by the flusher.
    pub events_stored: AtomicU64,
    /// Events the flusher found already stored (retried batches, replays), dropped.
    pub events_deduplicated: AtomicU64,
    /// Events `--policy` kept out of the store (level None, an omitted stage).
    pub events_policy_dropped: AtomicU64,
    /// Events stored with less than was recorded (bodies or managed fields removed by `--policy`).
    pub events_policy_slimmed: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_failures: AtomicU64,
    pub flush_seconds: Histogram,
    pub ack_seconds: Histogram,
    /// Lines the follower has read and made durable.
    pub follow_lines: AtomicU64,
    /// WAL segments found damaged and kept aside (`.wal.corrupt`).
    pub wal_corrupt: AtomicU64,
}

impl Metrics {
    pub fn request(&self, code: u16) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry(code).or_default() += 1;
        }
    }

    pub fn render(&self, wal: &WalStats, ready: bool) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let _ = writeln!(
            out,
            "# HELP auditlake_requests_total Requests answered, by status code.\n# TYPE auditlake_requests_total counter"
        );
        if let Ok(r) = self.requests.lock() {
            for (code, n) in r.iter() {
                let _ = writeln!(out, "auditlake_requests_total{{code=\"{code}\"}} {n}");
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "auditlake_events_received_total",
            "Items acknowledged into the write-ahead log.",
            load(&self.events_received),
        );
        counter(
            &mut out,
            "auditlake_events_rejected_total",
            "Items that are not events (kept in the rejected area).",
            load(&self.events_rejected),
        );
        counter(
            &mut out,
            "auditlake_events_stored_total",
            "Events committed to the store.",
            load(&self.events_stored),
        );
        counter(
            &mut out,
            "auditlake_events_deduplicated_total",
            "Events already stored (retries, replays), dropped.",
            load(&self.events_deduplicated),
        );
        counter(
            &mut out,
            "auditlake_events_policy_dropped_total",
            "Events the serve policy keeps out of the store (level None, an omitted stage).",
            load(&self.events_policy_dropped),
        );
        counter(
            &mut out,
            "auditlake_events_policy_slimmed_total",
            "Events stored with less than was recorded (bodies removed by the serve policy).",
            load(&self.events_policy_slimmed),
        );
        counter(
            &mut out,
            "auditlake_flushes_total",
            "Write-ahead log segments committed to the store.",
            load(&self.flushes),
        );
        counter(
            &mut out,
            "auditlake_flush_failures_total",
            "Flushes that failed (retried).",
            load(&self.flush_failures),
        );
        counter(
            &mut out,
            "auditlake_follow_lines_total",
            "Lines the follower made durable.",
            load(&self.follow_lines),
        );
        counter(
            &mut out,
            "auditlake_wal_corrupt_segments_total",
            "Write-ahead log segments found damaged, kept as .wal.corrupt.",
            load(&self.wal_corrupt),
        );
        counter(
            &mut out,
            "auditlake_wal_fsyncs_total",
            "fsync calls of the write-ahead log (one per group of batches).",
            load(&wal.fsyncs),
        );
        gauge(
            &mut out,
            "auditlake_wal_fsync_seconds_total",
            "Time spent in fsync of the write-ahead log.",
            load(&wal.fsync_micros) as f64 / 1e6,
        );
        gauge(
            &mut out,
            "auditlake_wal_bytes",
            "Bytes in the write-ahead log not yet committed to the store.",
            load(&wal.bytes) as f64,
        );
        gauge(
            &mut out,
            "auditlake_wal_segments",
            "Write-ahead log segments not yet committed.",
            load(&wal.segments) as f64,
        );
        gauge(
            &mut out,
            "auditlake_oldest_unflushed_seconds",
            "Age of the oldest acknowledged batch not yet committed to the store.",
            wal.oldest_age().map_or(0.0, |d| d.as_secs_f64()),
        );
        gauge(
            &mut out,
            "auditlake_ready",
            "1 once the write-ahead log left by an earlier run is replayed.",
            if ready { 1.0 } else { 0.0 },
        );
        self.flush_seconds.render(
            "auditlake_flush_duration_seconds",
            "Time to commit one segment to the store.",
            &mut out,
        );
        self.ack_seconds.render(
            "auditlake_ack_latency_seconds",
            "Time from a request's arrival to its acknowledgement.",
            &mut out,
        );
        out
    }
}
