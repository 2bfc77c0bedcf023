//! Decode hot path: JSON lines → `EventRow`s, and on to an Arrow `RecordBatch`.
//!
//! The input is a block of realistic audit.k8s.io/v1 JSON lines from `auditlake-gen`, made once at
//! setup. Each line goes through `decode_document` the way the ingest pipeline's decoder does it
//! (`auditlake-ingest`, `pipeline.rs`, `Decoder::chunk` / `Decoder::text`): split on `\n`, strip a
//! `\r`, skip blank lines, check UTF-8, collect the rows of one document, then append them.
//! Throughput is in input bytes. Run with `cargo bench -p auditlake-model --bench decode`.

use std::hint::black_box;

use auditlake_gen::{GenConfig, generate};
use auditlake_model::{DecodeOptions, EventBatchBuilder, EventRow, decode_document};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Events in the block: enough for every generator profile to show up, small enough to build fast.
const EVENTS: u64 = 20_000;

/// The `cluster` label, as `auditlake ingest --cluster` gives it.
const CLUSTER: Option<&str> = Some("bench-cluster");

/// One day of generated traffic as JSON lines, the same bytes on every run.
fn block() -> Vec<u8> {
    let cfg = GenConfig {
        events: EVENTS,
        days: 1,
        seed: 5,
        end: chrono::DateTime::from_timestamp(1_773_964_800, 0).expect("a valid time"),
    };
    let mut out = Vec::new();
    generate(&cfg, &mut out).expect("writing to a Vec does not fail");
    out
}

/// Decodes every line of `block` as the ingest pipeline does and hands each row to `accept`;
/// returns the number of events rejected (bad items and unusable documents).
fn decode_lines<'a>(
    block: &'a [u8],
    opts: &DecodeOptions,
    mut accept: impl FnMut(&EventRow<'a>),
) -> usize {
    let mut rejected = 0;
    for raw in block.split(|&b| b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            rejected += 1;
            continue;
        };
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        let res = decode_document(text, opts, |item, raw, r| match r {
            Ok(row) => rows.push(row),
            Err(e) => bad.push((item, e.to_string(), raw)),
        });
        for row in &rows {
            accept(row);
        }
        rejected += bad.len() + usize::from(res.is_err());
    }
    rejected
}

fn bench_decode(c: &mut Criterion) {
    let block = block();
    let opts = DecodeOptions::default();

    // The benches measure the path every good event takes: check that it is the one taken.
    let mut decoded = 0u64;
    let rejected = decode_lines(&block, &opts, |_| decoded += 1);
    assert_eq!(
        (decoded, rejected),
        (EVENTS, 0),
        "generated events must all decode"
    );

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(block.len() as u64));
    group.sample_size(10);
    group.bench_function("decode_document", |b| {
        b.iter(|| {
            let mut rows = 0usize;
            let rejected = decode_lines(black_box(&block), &opts, |r| {
                black_box(r);
                rows += 1;
            });
            (rows, rejected)
        })
    });
    group.bench_function("decode_to_record_batch", |b| {
        b.iter(|| {
            let mut builder = EventBatchBuilder::new();
            decode_lines(black_box(&block), &opts, |r| builder.append(r, CLUSTER));
            builder
                .finish()
                .expect("rows decoded by the model fit its schema")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
