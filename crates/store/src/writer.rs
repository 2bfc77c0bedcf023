//! Parquet encoding of event batches: sorted by `ts`, zstd, dictionaries, page statistics.

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use auditlake_model::schema::col;
use auditlake_model::time::Micros;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use crate::{Error, Result};

/// How data files are encoded.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// zstd level (1-22).
    pub zstd_level: i32,
    /// Rows per row group: the unit that statistics prune and readers parallelise on.
    pub row_group_rows: usize,
    /// Rows per data page: the unit the page index prunes.
    pub page_rows: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            zstd_level: 3,
            row_group_rows: 128 * 1024,
            page_rows: 8 * 1024,
        }
    }
}

fn properties(opts: &WriteOptions) -> Result<WriterProperties> {
    let zstd = ZstdLevel::try_new(opts.zstd_level).map_err(|e| Error::Parquet {
        path: "(writer properties)".into(),
        source: e,
    })?;
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_data_page_row_count_limit(opts.page_rows)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("auditlake {}", env!("CARGO_PKG_VERSION")));
    // Sorted timestamps: deltas of deltas are tiny; a dictionary would only get in the way.
    for c in [col::TS, col::STAGE_TS] {
        let p = ColumnPath::from(c);
        b = b
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p, Encoding::DELTA_BINARY_PACKED);
    }
    // Unique per event: a dictionary never pays off.
    b = b.set_column_dictionary_enabled(ColumnPath::from(col::AUDIT_ID), false);
    Ok(b.build())
}

/// Encodes batches, already sorted by `ts`, into one Parquet file in memory.
pub struct FileEncoder {
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
    ts_range: Option<(Micros, Micros)>,
}

/// A finished Parquet file, with what a commit records of it.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub rows: u64,
    /// The smallest and largest `ts` (None for a file without rows).
    pub ts_range: Option<(Micros, Micros)>,
}

/// The `ts` range of a file from its footer's statistics (None when it has none).
pub fn footer_ts_range(meta: &ParquetMetaData) -> Option<(Micros, Micros)> {
    let schema = meta.file_metadata().schema_descr();
    let idx = (0..schema.num_columns()).find(|&i| schema.column(i).name() == col::TS)?;
    let mut range: Option<(Micros, Micros)> = None;
    for rg in meta.row_groups() {
        let Some(Statistics::Int64(s)) = rg.column(idx).statistics() else {
            return None;
        };
        let (lo, hi) = (*s.min_opt()?, *s.max_opt()?);
        range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    range
}

fn new_file_err(e: parquet::errors::ParquetError) -> Error {
    Error::Parquet {
        path: "(new file)".into(),
        source: e,
    }
}

impl FileEncoder {
    pub fn new(opts: &WriteOptions, capacity: usize) -> Result<Self> {
        let schema = auditlake_model::audit_events_schema();
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(capacity),
            schema,
            Some(properties(opts)?),
        )
        .map_err(new_file_err)?;
        Ok(Self {
            writer,
            rows: 0,
            ts_range: None,
        })
    }

    /// Appends rows; they must not sort before the rows already written.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        if let Some(ts) = batch.column_by_name(col::TS)
            && let Some(ts) = ts.as_primitive_opt::<TimestampMicrosecondType>()
            && let (Some(lo), Some(hi)) = (arrow::compute::min(ts), arrow::compute::max(ts))
        {
            self.ts_range = Some(
                self.ts_range
                    .map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))),
            );
        }
        self.writer.write(batch).map_err(new_file_err)
    }

    /// Bytes of the file so far: written row groups plus the one being encoded.
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the file: footer, statistics, page index.
    pub fn finish(self) -> Result<Encoded> {
        Ok(Encoded {
            bytes: self.writer.into_inner().map_err(new_file_err)?,
            rows: self.rows,
            ts_range: self.ts_range,
        })
    }
}

/// Sorts `batches` by `ts` and encodes them as one Parquet file.
///
/// Batches whose rows are already in `ts` order, and that follow one another without overlapping
/// (a log read in order gives these), are written as they are. Otherwise every row is copied once,
/// in `ts` order, from the batches (the file was once a concatenation and then a sort: two copies).
pub fn encode_parquet(batches: &[RecordBatch], opts: &WriteOptions) -> Result<Encoded> {
    let ts = batches.iter().map(ts_values).collect::<Result<Vec<_>>>()?;
    if let Some(order) = in_order(&ts) {
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let mut enc = FileEncoder::new(opts, bytes / 8 + 1024)?;
        for i in order {
            enc.write(&batches[i])?;
        }
        return enc.finish();
    }
    // Rows out of order (a log's request times are: a long request is written when it ends):
    // one copy of every row, in `ts` order, straight from the batches (stable for equal times).
    let mut order: Vec<(Micros, u32, u32)> = Vec::with_capacity(ts.iter().map(|t| t.len()).sum());
    for (b, times) in ts.iter().enumerate() {
        order.extend(
            times
                .iter()
                .enumerate()
                .map(|(r, &t)| (t, b as u32, r as u32)),
        );
    }
    order.sort_by_key(|&(t, _, _)| t);
    let indices: Vec<(usize, usize)> = order
        .into_iter()
        .map(|(_, b, r)| (b as usize, r as usize))
        .collect();
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let sorted = interleave_record_batch(&refs, &indices)?;
    let mut enc = FileEncoder::new(opts, sorted.get_array_memory_size() / 8 + 1024)?;
    enc.write(&sorted)?;
    enc.finish()
}

/// The `ts` values of a batch. The column is not nullable, and a batch cannot be made with nulls
/// in a column its schema says is not, so every value is a time.
fn ts_values(batch: &RecordBatch) -> Result<&[Micros]> {
    batch
        .column_by_name(col::TS)
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .map(|a| a.values().as_ref())
        .ok_or_else(|| Error::Arrow(arrow::error::ArrowError::SchemaError("no ts".into())))
}

/// The order in which batches with these `ts` values give rows sorted by `ts` without moving a
/// row, if there is one: each batch sorted within itself, and the batches' ranges not overlapping.
fn in_order(ts: &[&[Micros]]) -> Option<Vec<usize>> {
    let mut ranges = Vec::with_capacity(ts.len());
    for (i, v) in ts.iter().enumerate() {
        let (Some(&lo), Some(&hi)) = (v.first(), v.last()) else {
            continue;
        };
        if !v.windows(2).all(|w| w[0] <= w[1]) {
            return None;
        }
        ranges.push((lo, hi, i));
    }
    // Stable: batches that start at the same time keep their order.
    ranges.sort_by_key(|&(lo, _, _)| lo);
    ranges
        .windows(2)
        .all(|w| w[0].1 <= w[1].0)
        .then(|| ranges.into_iter().map(|(_, _, i)| i).collect())
}

/// Every byte of an event goes through decode -> Arrow -> Parquet -> Arrow -> JSON (what `export`
/// does): for arbitrary events, with unknown keys, values of unexpected types, unicode and empty
/// or large values, the JSON that comes back equals the input as a JSON value.
#[cfg(test)]
mod round_trip {
    use auditlake_model::encode::row_to_json;
    use auditlake_model::redact::RedactOptions;
    use auditlake_model::{DecodeOptions, EventBatchBuilder, decode::decode_event};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "\\PC{0,12}",
            "[a-z0-9:/._-]{1,20}",
            // Large values: a body or a message of tens of KiB.
            (1usize..40_000).prop_map(|n| "é😀x".repeat(n / 3)),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn timestamp() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..4_102_444_800_000_000).prop_map(|us| Value::String(
                chrono::DateTime::from_timestamp_micros(us)
                    .unwrap_or_default()
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string()
            )),
            (0i64..4_102_444_800).prop_map(|s| Value::String(
                chrono::DateTime::from_timestamp(s, 0)
                    .unwrap_or_default()
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            )),
            json(),
        ]
    }

    /// A value for a known key: mostly of the type the apiserver writes, sometimes anything.
    fn typed(key: &'static str) -> BoxedStrategy<Value> {
        let s = || text().prop_map(Value::String);
        let strs =
            || prop::collection::vec(text().prop_map(Value::String), 0..4).prop_map(Value::Array);
        let typed: BoxedStrategy<Value> = match key {
            "user" | "impersonatedUser" => (s(), s(), strs(), json())
                .prop_map(|(u, id, g, extra)| {
                    serde_json::json!({"username": u, "uid": id, "groups": g, "extra": {"k": [extra.to_string()]}})
                })
                .boxed(),
            "sourceIPs" => strs().boxed(),
            "objectRef" => (s(), s(), s(), s(), s())
                .prop_map(|(r, ns, n, g, sub)| {
                    serde_json::json!({"resource": r, "namespace": ns, "name": n, "apiGroup": g, "subresource": sub, "apiVersion": "v1"})
                })
                .boxed(),
            "responseStatus" => (any::<i32>(), s(), json())
                .prop_map(|(c, m, d)| serde_json::json!({"metadata": {}, "code": c, "message": m, "details": d}))
                .boxed(),
            "annotations" => prop::collection::btree_map("[a-z./-]{1,20}", s(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed(),
            "requestReceivedTimestamp" | "stageTimestamp" => timestamp().boxed(),
            "requestObject" | "responseObject" => json().boxed(),
            _ => s().boxed(),
        };
        prop_oneof![4 => typed, 1 => json()].boxed()
    }

    const KEYS: [&str; 17] = [
        "kind",
        "apiVersion",
        "level",
        "stage",
        "requestURI",
        "verb",
        "user",
        "impersonatedUser",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "responseStatus",
        "requestObject",
        "responseObject",
        "annotations",
        "stageTimestamp",
        "timestamp",
    ];

    fn event() -> impl Strategy<Value = Value> {
        let known: Vec<BoxedStrategy<Option<(String, Value)>>> = KEYS
            .iter()
            .map(|k| prop::option::of(typed(k).prop_map(move |v| (k.to_string(), v))).boxed())
            .collect();
        (
            text(),
            timestamp(),
            known,
            prop::collection::btree_map("[A-Za-z]{1,10}", json(), 0..3),
        )
            .prop_map(|(id, ts, known, unknown)| {
                let mut m = Map::new();
                // Always decodable: an audit ID and a usable time.
                m.insert("auditID".into(), Value::String(id));
                m.insert(
                    "requestReceivedTimestamp".into(),
                    if ts.is_string() {
                        ts
                    } else {
                        Value::String("2026-03-19T10:30:00.000001Z".into())
                    },
                );
                for (k, v) in known.into_iter().flatten() {
                    m.insert(k, v);
                }
                for (k, v) in unknown {
                    m.entry(k).or_insert(v);
                }
                Value::Object(m)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn decode_encode_parquet_export_is_lossless(ev in event()) {
            let text = ev.to_string();
            let opts = DecodeOptions { redact: RedactOptions::disabled() };
            let row = match decode_event(&text, &opts) {
                Ok(r) => r,
                // Not storable (a timestamp that is not one): rejected whole, nothing to compare.
                Err(_) => return Ok(()),
            };
            let mut b = EventBatchBuilder::new();
            b.append(&row, None);
            let batch = b.finish().unwrap();
            let bytes = super::encode_parquet(&[batch], &super::WriteOptions::default()).unwrap().bytes;
            let back: Vec<_> = ParquetRecordBatchReader::try_new(bytes::Bytes::from(bytes), 1024)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(back.len(), 1);
            let out = row_to_json(&back[0], 0).unwrap();
            prop_assert_eq!(out, ev);
        }
    }
}

#[cfg(test)]
mod order {
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::TimestampMicrosecondType;
    use auditlake_model::EventBatchBuilder;
    use auditlake_model::decode::EventRow;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
    use std::borrow::Cow;

    fn batch(ts: &[i64]) -> RecordBatch {
        let mut b = EventBatchBuilder::new();
        for (i, &t) in ts.iter().enumerate() {
            let id = format!("{t}-{i}");
            b.append(
                &EventRow {
                    ts: t,
                    audit_id: Some(Cow::Owned(id)),
                    ..Default::default()
                },
                None,
            );
        }
        b.finish().unwrap()
    }

    /// The `ts` and audit IDs of the file that `encode_parquet` makes of `batches`.
    fn written(batches: &[RecordBatch]) -> (Vec<i64>, Vec<String>) {
        let bytes = super::encode_parquet(batches, &super::WriteOptions::default())
            .unwrap()
            .bytes;
        let (mut ts, mut ids) = (Vec::new(), Vec::new());
        for b in ParquetRecordBatchReader::try_new(bytes::Bytes::from(bytes), 1024).unwrap() {
            let b = b.unwrap();
            let t = b.column_by_name("ts").unwrap();
            ts.extend(t.as_primitive::<TimestampMicrosecondType>().values().iter());
            let a = b.column_by_name("audit_id").unwrap();
            let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).unwrap();
            ids.extend(a.as_string::<i32>().iter().map(|s| s.unwrap().to_owned()));
        }
        (ts, ids)
    }

    #[test]
    fn every_row_is_written_once_in_ts_order_whatever_the_batches() {
        let cases: Vec<Vec<Vec<i64>>> = vec![
            // In order: written as they are.
            vec![vec![1, 2, 3], vec![3, 4], vec![], vec![7, 9]],
            // Each sorted, but the second starts before the first.
            vec![vec![5, 6], vec![1, 2]],
            // Overlapping ranges.
            vec![vec![1, 5], vec![3, 4]],
            // Not sorted within a batch.
            vec![vec![1, 3, 2], vec![4]],
        ];
        for case in cases {
            let batches: Vec<_> = case.iter().map(|ts| batch(ts)).collect();
            let (ts, ids) = written(&batches);
            let mut want: Vec<i64> = case.iter().flatten().copied().collect();
            want.sort();
            assert_eq!(ts, want, "{case:?}");
            // Every row once, each with its own ts.
            let mut got_ids = ids.clone();
            got_ids.sort();
            got_ids.dedup();
            assert_eq!(got_ids.len(), want.len(), "{case:?}");
            for (t, id) in ts.iter().zip(&ids) {
                assert!(id.starts_with(&format!("{t}-")), "{case:?}: {t} {id}");
            }
        }
    }
}
