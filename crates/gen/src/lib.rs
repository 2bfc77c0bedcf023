//! Deterministic generator of realistic Kubernetes audit traffic.
//!
//! [`generate`] writes audit.k8s.io/v1 `Event` objects as JSON lines, byte for byte in the shape the
//! kube-apiserver log backend writes them (field order, Go string escaping, `MicroTime` stamps),
//! for a simulated mid-size cluster (20 nodes, 30 namespaces, a dozen people, CI, add-ons).
//! Start from [`GenConfig`].
//!
//! ```text
//!  seed ──> World (nodes, namespaces, pods, identities)
//!             │
//!  window ──> slices of time ──> per slice: exact line budget (daily rhythm)
//!             │                     │
//!             │          pick class (system / human / noise) by time of week
//!             │          pick profile by weight (profiles.rs table) ──> Req
//!             │                     │
//!             │          render 1–3 stages per request into an arena
//!             │                     │
//!             └──── sort slice by stageTimestamp, merge with carried-over late stages
//!                   (watch/exec completions) ──> BufWriter
//! ```
//!
//! Same config, same bytes: all randomness comes from one `SmallRng` seeded with
//! [`GenConfig::seed`]. Memory stays bounded by the slice size (a few thousand events) plus the
//! long-running requests still open.

mod bodies;
mod event;
mod fmt;
mod profiles;
mod world;

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::event::Shape;
use crate::fmt::SEC;
use crate::profiles::{Class, FALLBACK, Table};
use crate::world::World;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Exact number of events (lines) to write.
    pub events: u64,
    /// Length of the window in days (1 to 36 600).
    pub days: u32,
    /// Seed of the random generator; the same config always produces the same bytes.
    pub seed: u64,
    /// End of the window (exclusive); every timestamp lies in `[end - days, end)`.
    pub end: chrono::DateTime<chrono::Utc>,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenStats {
    /// Number of events (lines) written.
    pub events: u64,
    /// Number of bytes written, newlines included.
    pub bytes: u64,
}

/// Longest window accepted, in days (about a century).
const MAX_DAYS: u32 = 36_600;

/// Target number of events generated (and sorted) per time slice.
const EVENTS_PER_SLICE: i64 = 4096;

/// Shares of the request mix over an average week.
const SYSTEM_SHARE: f64 = 0.875;
const HUMAN_SHARE: f64 = 0.12;
const NOISE_SHARE: f64 = 0.005;

/// Share of requests whose `RequestReceived` stage is also logged.
const REQUEST_RECEIVED_SHARE: f64 = 0.03;

/// Relative human activity per hour of a weekday (UTC): office hours with a lunch dip.
const WEEKDAY_HOURS: [f64; 24] = [
    0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.05, 0.2, 0.6, 1.0, 1.0, 1.0, 0.7, 1.0, 1.0, 1.0, 0.9,
    0.6, 0.3, 0.15, 0.1, 0.08, 0.05, 0.03,
];
/// Relative human activity on weekends (on-call only).
const WEEKEND_LEVEL: f64 = 0.03;

/// Human activity at time `t` (microseconds since the epoch), relative to [`WEEKDAY_HOURS`].
fn human_activity(t: i64) -> f64 {
    let secs = t.div_euclid(SEC);
    // 1970-01-01 was a Thursday: (days + 3) % 7 gives 0 for Monday.
    let weekday = (secs.div_euclid(86_400) + 3).rem_euclid(7);
    if weekday >= 5 {
        return WEEKEND_LEVEL;
    }
    WEEKDAY_HOURS[(secs.rem_euclid(86_400) / 3600) as usize]
}

/// Mean of [`human_activity`] over a week, so that [`HUMAN_SHARE`] holds on average.
fn weekly_mean_activity() -> f64 {
    (5.0 * WEEKDAY_HOURS.iter().sum::<f64>() + 2.0 * 24.0 * WEEKEND_LEVEL) / 168.0
}

/// Request rates per class at time `t` (relative units): (system, human, noise).
fn rates(t: i64, mean: f64) -> (f64, f64, f64) {
    (
        SYSTEM_SHARE,
        HUMAN_SHARE * human_activity(t) / mean,
        NOISE_SHARE,
    )
}

/// A rendered event waiting to be written: sorted by (stageTimestamp, generation order).
struct Entry {
    ts: i64,
    seq: u64,
    start: usize,
    end: usize,
}

/// Writes `events` events spread over `days` days ending at `end`, in the order the apiserver
/// would write them (by stageTimestamp), one JSON object per line. Returns counts.
///
/// Fails with [`io::ErrorKind::InvalidInput`] when `days` is 0 or absurdly large, and with the
/// writer's error if writing fails.
pub fn generate<W: Write>(cfg: &GenConfig, out: W) -> io::Result<GenStats> {
    if cfg.days == 0 || cfg.days > MAX_DAYS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("days must be between 1 and {MAX_DAYS}, got {}", cfg.days),
        ));
    }
    let end = cfg.end.timestamp_micros();
    let window = i64::from(cfg.days) * 86_400 * SEC;
    let start = end.checked_sub(window).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "window of {} days before {} is out of range",
                cfg.days, cfg.end
            ),
        )
    })?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut stats = GenStats::default();
    if cfg.events == 0 {
        out.flush()?;
        return Ok(stats);
    }

    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let world = World::build(&mut rng, start);
    let table = Table::new();
    let mean = weekly_mean_activity();

    // Slices small enough to sort cheaply, large enough to amortise; whole seconds.
    let events = i64::try_from(cfg.events).unwrap_or(i64::MAX);
    let slice = (i128::from(window) * i128::from(EVENTS_PER_SLICE) / i128::from(events))
        .clamp(i128::from(SEC), i128::from(3600 * SEC)) as i64
        / SEC
        * SEC;
    let slices = (window + slice - 1) / slice;
    let slice_bounds = |i: i64| {
        let s0 = start + i * slice;
        (s0, (s0 + slice).min(end))
    };
    let weight = |i: i64| {
        let (s0, s1) = slice_bounds(i);
        let (a, b, c) = rates(s0 + (s1 - s0) / 2, mean);
        (a + b + c) * (s1 - s0) as f64
    };
    let total_weight: f64 = (0..slices).map(weight).sum();

    let mut arena: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut entries: Vec<Entry> = Vec::with_capacity(2 * EVENTS_PER_SLICE as usize);
    let mut pending: BTreeMap<(i64, u64), Vec<u8>> = BTreeMap::new();
    let mut seq: u64 = 0;
    let mut cum_weight = 0.0;
    let mut emitted_target: u64 = 0;

    for i in 0..slices {
        let (s0, s1) = slice_bounds(i);
        cum_weight += weight(i);
        let target = if i + 1 == slices {
            cfg.events
        } else {
            ((cfg.events as f64) * cum_weight / total_weight)
                .round()
                .clamp(emitted_target as f64, cfg.events as f64) as u64
        };
        let mut budget = target - emitted_target;
        emitted_target = target;

        let (sys, hum, noise) = rates(s0 + (s1 - s0) / 2, mean);
        let p_noise = noise / (sys + hum + noise);
        let p_human = hum / (sys + hum + noise);
        while budget > 0 {
            let t = rng.random_range(s0..s1);
            let u: f64 = rng.random();
            let class = if u < p_noise {
                Class::Noise
            } else if u < p_noise + p_human {
                Class::Human
            } else {
                Class::System
            };
            let build = table.pick(class, &mut rng);
            let mut req = build(&world, &mut rng, t);
            req.request_received =
                req.shape != Shape::FailedAuthn && rng.random_bool(REQUEST_RECEIVED_SHARE);
            if req.lines() > budget {
                req.request_received = false;
            }
            if req.lines() > budget {
                req = FALLBACK(&world, &mut rng, t);
            }
            req.audit_id = fmt::uuid_v4(&mut rng);
            req.clamp_to(end - 1);
            let (stages, n) = req.stages(rng.random_range(2..60));
            for &(stage, ts) in &stages[..n] {
                let from = arena.len();
                req.render(&world, stage, ts, &mut arena);
                entries.push(Entry {
                    ts,
                    seq,
                    start: from,
                    end: arena.len(),
                });
                seq += 1;
            }
            budget -= req.lines();
        }
        flush(&mut out, &mut stats, &arena, &mut entries, &mut pending, s1)?;
        arena.clear();
    }
    flush(
        &mut out,
        &mut stats,
        &arena,
        &mut entries,
        &mut pending,
        i64::MAX,
    )?;
    out.flush()?;
    Ok(stats)
}

/// Writes every event with a stageTimestamp before `until` (from this slice and carried over),
/// in order; keeps the rest for later slices.
fn flush<W: Write>(
    out: &mut W,
    stats: &mut GenStats,
    arena: &[u8],
    entries: &mut Vec<Entry>,
    pending: &mut BTreeMap<(i64, u64), Vec<u8>>,
    until: i64,
) -> io::Result<()> {
    entries.sort_unstable_by_key(|e| (e.ts, e.seq));
    let split = entries.partition_point(|e| e.ts < until);
    for e in &entries[split..] {
        pending.insert((e.ts, e.seq), arena[e.start..e.end].to_vec());
    }
    let later = pending.split_off(&(until, 0));
    let ready = std::mem::replace(pending, later);

    let mut write = |line: &[u8]| -> io::Result<()> {
        out.write_all(line)?;
        stats.events += 1;
        stats.bytes += line.len() as u64;
        Ok(())
    };
    let mut carried = ready.into_iter().peekable();
    for e in &entries[..split] {
        while let Some(((ts, seq), _)) = carried.peek() {
            if (*ts, *seq) > (e.ts, e.seq) {
                break;
            }
            if let Some((_, line)) = carried.next() {
                write(&line)?;
            }
        }
        write(&arena[e.start..e.end])?;
    }
    for (_, line) in carried {
        write(&line)?;
    }
    entries.clear();
    Ok(())
}

#[cfg(test)]
mod tests;
