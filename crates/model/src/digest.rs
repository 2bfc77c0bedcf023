//! The content digest of a stored event: what dedup compares to tell a copy of an event from a
//! distinct event that carries the same audit ID.
//!
//! The apiserver takes `auditID` from the client's `Audit-ID` request header when one is sent, so
//! `(audit_id, stage)` does not identify an event: a client can give a destructive request the ID
//! of a harmless one. Two events are the same event only when their digests are equal.
//!
//! [`Digest::full`] covers every column of [`crate::schema::audit_events_schema`] but five:
//! `shape_flags` (how the input was spelled, and slimming's mark), the event's own `apiVersion`
//! (the same request written as audit.k8s.io/v1beta1 and as v1 is one event) and the `cluster`
//! label, which the ingest gives, not the event (a file ingested again without its `--cluster` is
//! still the same events); nor `source_format` and `envelope`: the same event delivered by a
//! provider's export and read from the apiserver's own file is one event. The request and
//! response bodies are covered: two requests that differ only in what they asked for are two events. [`Digest::meta`] leaves the bodies out too; it is
//! what a stored event that retention slimmed (bodies dropped) is compared by.
//!
//! JSON-text columns (bodies, annotations, `user.extra`, `unmapped`) are digested as canonical
//! JSON (keys sorted, no insignificant whitespace), so a copy written with other spacing or key
//! order (a webhook batch against the log file's line) is still a copy. BLAKE3, truncated to 128
//! bits: a client that controls parts of a request cannot craft a second event with the digest of
//! the first. Values are framed (a presence byte, lengths), so that no two different rows
//! serialise alike.

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, TimestampMicrosecondType};
use arrow::error::ArrowError;
use serde_json::Value;

use crate::schema::{JSON_COLUMNS, audit_events_schema, col, flags};

/// The columns no digest covers.
pub const NOT_DIGESTED: [&str; 5] = [
    col::SHAPE_FLAGS,
    col::EVENT_API_VERSION,
    col::CLUSTER,
    col::SOURCE_FORMAT,
    col::ENVELOPE,
];

/// The columns only [`Digest::full`] covers.
pub const BODIES: [&str; 2] = [col::REQUEST_OBJECT, col::RESPONSE_OBJECT];

/// The digests of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Everything but the columns of [`NOT_DIGESTED`].
    pub full: u128,
    /// As `full`, without the bodies.
    pub meta: u128,
    /// The stored event was slimmed (its bodies dropped): compare it by `meta`.
    pub slimmed: bool,
}

/// The columns to read from stored files to digest them.
pub fn digest_columns() -> Vec<String> {
    let mut cols: Vec<String> = audit_events_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|c| !NOT_DIGESTED.contains(&c.as_str()))
        .collect();
    cols.push(col::SHAPE_FLAGS.to_owned());
    cols
}

enum Column<'a> {
    Missing,
    Str(Cow<'a, arrow::array::StringArray>, bool),
    I32(&'a arrow::array::Int32Array),
    Ts(&'a arrow::array::TimestampMicrosecondArray),
    List(ArrayRef),
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<Column<'a>, ArrowError> {
    let Some(a) = batch.column_by_name(name) else {
        return Ok(Column::Missing);
    };
    let json = JSON_COLUMNS.contains(&name);
    Ok(match a.data_type() {
        DataType::Utf8 => Column::Str(Cow::Borrowed(a.as_string::<i32>()), json),
        DataType::Int32 => Column::I32(a.as_primitive::<Int32Type>()),
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => {
            Column::Ts(a.as_primitive::<TimestampMicrosecondType>())
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) => {
            let want = audit_events_schema()
                .field_with_name(name)
                .map(|f| f.data_type().clone())?;
            Column::List(cast(a, &want)?)
        }
        // Utf8View, LargeUtf8, dictionaries: the same values as plain strings.
        _ => Column::Str(
            Cow::Owned(cast(a, &DataType::Utf8)?.as_string::<i32>().clone()),
            json,
        ),
    })
}

fn put_str(h: &mut blake3::Hasher, s: Option<&str>) {
    match s {
        None => {
            h.update(&[0]);
        }
        Some(s) => {
            h.update(&[1]);
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    }
}

/// A JSON value in a canonical, framed form: object keys sorted.
fn put_json(h: &mut blake3::Hasher, v: &Value) {
    match v {
        Value::Null => {
            h.update(b"n");
        }
        Value::Bool(b) => {
            h.update(if *b { b"t" } else { b"f" });
        }
        Value::Number(n) => {
            h.update(b"#");
            put_str(h, Some(&n.to_string()));
        }
        Value::String(s) => {
            h.update(b"s");
            put_str(h, Some(s));
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_json(h, i);
            }
        }
        Value::Object(m) => {
            h.update(b"{");
            h.update(&(m.len() as u64).to_le_bytes());
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                put_str(h, Some(k));
                put_json(h, &m[k]);
            }
        }
    }
}

/// A fixed-width value (an integer, a timestamp) or its absence.
fn put_fixed<const N: usize>(h: &mut blake3::Hasher, v: Option<[u8; N]>) {
    match v {
        None => {
            h.update(&[0]);
        }
        Some(b) => {
            h.update(&[1]);
            h.update(&b);
        }
    }
}

fn put_column(h: &mut blake3::Hasher, c: &Column<'_>, i: usize) {
    match c {
        Column::Missing => {
            h.update(&[0]);
        }
        Column::Str(a, json) => {
            if !a.is_valid(i) {
                h.update(&[0]);
            } else if *json {
                match serde_json::from_str::<Value>(a.value(i)) {
                    Ok(v) => {
                        h.update(&[2]);
                        put_json(h, &v);
                    }
                    Err(_) => put_str(h, Some(a.value(i))),
                }
            } else {
                put_str(h, Some(a.value(i)));
            }
        }
        Column::I32(a) => put_fixed(h, a.is_valid(i).then(|| a.value(i).to_le_bytes())),
        Column::Ts(a) => put_fixed(h, a.is_valid(i).then(|| a.value(i).to_le_bytes())),
        Column::List(a) => {
            let list = a.as_list::<i32>();
            if list.is_valid(i) {
                let items = list.value(i);
                let items = items.as_string::<i32>();
                h.update(&[1]);
                h.update(&(items.len() as u64).to_le_bytes());
                for j in 0..items.len() {
                    put_str(h, items.is_valid(j).then(|| items.value(j)));
                }
            } else {
                h.update(&[0]);
            }
        }
    }
}

fn finish(h: &blake3::Hasher) -> u128 {
    let d = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&d.as_bytes()[..16]);
    u128::from_le_bytes(first)
}

/// The digests of every row of `batch` (a batch of the `audit_events` schema, as built at ingest
/// or as read back from a stored file, with at least the [`digest_columns`]).
pub fn content_digests(batch: &RecordBatch) -> Result<Vec<Digest>, ArrowError> {
    let names: Vec<String> = audit_events_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|c| !NOT_DIGESTED.contains(&c.as_str()) && !BODIES.contains(&c.as_str()))
        .collect();
    let meta_cols: Vec<Column<'_>> = names
        .iter()
        .map(|c| column(batch, c))
        .collect::<Result<_, _>>()?;
    let body_cols: Vec<Column<'_>> = BODIES
        .iter()
        .map(|c| column(batch, c))
        .collect::<Result<_, _>>()?;
    let flags_col = batch
        .column_by_name(col::SHAPE_FLAGS)
        .and_then(|a| a.as_primitive_opt::<Int32Type>().cloned());
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut h = blake3::Hasher::new();
    for i in 0..batch.num_rows() {
        h.reset();
        for (tag, c) in meta_cols.iter().enumerate() {
            h.update(&[tag as u8]);
            put_column(&mut h, c, i);
        }
        let meta = finish(&h);
        for (tag, c) in body_cols.iter().enumerate() {
            h.update(&[0x80 | tag as u8]);
            put_column(&mut h, c, i);
        }
        let full = finish(&h);
        let slimmed = flags_col
            .as_ref()
            .is_some_and(|f| f.is_valid(i) && f.value(i) & flags::SLIMMED != 0);
        out.push(Digest {
            full,
            meta,
            slimmed,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeOptions, EventBatchBuilder, decode::decode_event};

    fn digests(lines: &[&str]) -> Vec<Digest> {
        let mut b = EventBatchBuilder::new();
        for l in lines {
            b.append(
                &decode_event(l, &DecodeOptions::default()).unwrap(),
                Some("c1"),
            );
        }
        content_digests(&b.finish().unwrap()).unwrap()
    }

    #[test]
    fn copies_digest_alike_and_distinct_events_do_not() {
        let a = r#"{"auditID":"x","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/namespaces/p/secrets/s","requestReceivedTimestamp":"2026-03-19T10:00:00Z","requestObject":{"a":1}}"#;
        // The same event: keys in another order, a body spaced and ordered otherwise.
        let a2 = r#"{"requestURI":"/api/v1/namespaces/p/secrets/s","verb":"get","stage":"ResponseComplete","auditID":"x","requestReceivedTimestamp":"2026-03-19T10:00:00Z","requestObject":{ "a" : 1 }}"#;
        let b = r#"{"auditID":"x","stage":"ResponseComplete","verb":"delete","requestURI":"/api/v1/namespaces/p/secrets/s","requestReceivedTimestamp":"2026-03-19T10:00:00Z","requestObject":{"a":1}}"#;
        // Only the body differs: another event, the same without bodies (as if slimmed).
        let c = r#"{"auditID":"x","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/namespaces/p/secrets/s","requestReceivedTimestamp":"2026-03-19T10:00:00Z","requestObject":{"a":2}}"#;
        let d = digests(&[a, a2, b, c]);
        assert_eq!(d[0], d[1]);
        assert_ne!(d[0].full, d[2].full);
        assert_ne!(d[0].meta, d[2].meta);
        assert_ne!(d[0].full, d[3].full);
        assert_eq!(d[0].meta, d[3].meta);
        // Read back as other string types, the digest is the same.
        let mut bld = EventBatchBuilder::new();
        bld.append(
            &decode_event(a, &DecodeOptions::default()).unwrap(),
            Some("c1"),
        );
        let batch = bld.finish().unwrap();
        let views: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Utf8 => cast(c, &DataType::Utf8View).unwrap(),
                _ => c.clone(),
            })
            .collect();
        let fields: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .zip(&views)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect();
        let as_views = RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
            views,
        )
        .unwrap();
        assert_eq!(content_digests(&as_views).unwrap()[0], d[0]);
    }
}
