//! Parquet encode hot path: `encode_parquet` over one day's Arrow batches with the default
//! `WriteOptions` (zstd 3, sorted by `ts`, page index), as the ingest pipeline calls it when it
//! writes a partition's buffer out.
//!
//! The batches hold realistic events from `auditlake-gen`, decoded and built once at setup the way
//! the ingest pipeline does it. Throughput is in input events. Run with
//! `cargo bench -p auditlake-store --bench encode`.

use std::hint::black_box;

use arrow::array::RecordBatch;
use auditlake_gen::{GenConfig, generate};
use auditlake_model::{DecodeOptions, EventBatchBuilder, decode_document};
use auditlake_store::{WriteOptions, encode_parquet};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Events encoded per iteration.
const EVENTS: u64 = 20_000;

/// Rows per input batch: the encoder concatenates its input, so several batches are part of the work.
const BATCH_ROWS: usize = 4096;

/// The `cluster` label, as `auditlake ingest --cluster` gives it.
const CLUSTER: Option<&str> = Some("bench-cluster");

/// One day of generated traffic decoded into batches of [`BATCH_ROWS`] rows.
fn batches() -> Vec<RecordBatch> {
    let cfg = GenConfig {
        events: EVENTS,
        days: 1,
        seed: 5,
        end: chrono::DateTime::from_timestamp(1_773_964_800, 0).expect("a valid time"),
    };
    let mut block = Vec::new();
    generate(&cfg, &mut block).expect("writing to a Vec does not fail");
    let text = std::str::from_utf8(&block).expect("the generator writes UTF-8");

    let opts = DecodeOptions::default();
    let mut builder = EventBatchBuilder::new();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        decode_document(line, &opts, |_, _, r| {
            builder.append(&r.expect("generated events decode"), CLUSTER);
        })
        .expect("generated lines are events");
        if builder.len() == BATCH_ROWS {
            out.push(builder.finish().expect("decoded rows fit the schema"));
        }
    }
    if !builder.is_empty() {
        out.push(builder.finish().expect("decoded rows fit the schema"));
    }
    out
}

fn bench_encode(c: &mut Criterion) {
    let batches = batches();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows as u64, EVENTS);
    let opts = WriteOptions::default();

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("encode_parquet", |b| {
        b.iter(|| encode_parquet(black_box(&batches), &opts).expect("encoding in memory succeeds"))
    });
    group.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
