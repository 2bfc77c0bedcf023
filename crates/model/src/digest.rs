//! The content digest of a stored event: what dedup compares to tell a copy of an event from a
//! distinct event that carries the same audit ID.
//!
//! The apiserver takes `auditID` from the client's `Audit-ID` request header when one is sent, so
//! `(audit_id, stage)` does not identify an event: a client can give a destructive request the ID
//! of a harmless one. Two events are the same event only when their digests are equal.
//!
//! The digest covers every column of [`crate::schema::audit_events_schema`] except the request and
//! response bodies (which slimming drops and redaction rewrites, so that a copy ingested again
//! after either is still known as a copy), `shape_flags` (which slimming marks) and the event's own
//! `apiVersion` (the same request written as audit.k8s.io/v1beta1 and as v1 is one event) and the
//! `cluster` label, which the ingest gives, not the event (a file ingested again without its
//! `--cluster` is still the same events). BLAKE3,
//! truncated to 128 bits: a client that controls parts of a request cannot craft a second event
//! with the digest of the first. Values are framed (a presence byte, lengths), so that no two
//! different rows serialise alike.

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, TimestampMicrosecondType};
use arrow::error::ArrowError;

use crate::schema::{audit_events_schema, col};

/// The columns a digest does not cover.
pub const NOT_DIGESTED: [&str; 5] = [
    col::REQUEST_OBJECT,
    col::RESPONSE_OBJECT,
    col::SHAPE_FLAGS,
    col::EVENT_API_VERSION,
    col::CLUSTER,
];

/// The columns a digest covers, in schema order: what to read from stored files to digest them.
pub fn digest_columns() -> Vec<String> {
    audit_events_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|c| !NOT_DIGESTED.contains(&c.as_str()))
        .collect()
}

enum Column<'a> {
    Missing,
    Str(Cow<'a, arrow::array::StringArray>),
    I32(&'a arrow::array::Int32Array),
    Ts(&'a arrow::array::TimestampMicrosecondArray),
    List(ArrayRef),
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<Column<'a>, ArrowError> {
    let Some(a) = batch.column_by_name(name) else {
        return Ok(Column::Missing);
    };
    Ok(match a.data_type() {
        DataType::Utf8 => Column::Str(Cow::Borrowed(a.as_string::<i32>())),
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
        _ => Column::Str(Cow::Owned(
            cast(a, &DataType::Utf8)?.as_string::<i32>().clone(),
        )),
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

/// The digest of every row of `batch` (a batch of the `audit_events` schema, as built at ingest
/// or as read back from a stored file, any subset of columns that includes [`digest_columns`]).
pub fn content_digests(batch: &RecordBatch) -> Result<Vec<u128>, ArrowError> {
    let cols: Vec<Column<'_>> = digest_columns()
        .iter()
        .map(|c| column(batch, c))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut h = blake3::Hasher::new();
    for i in 0..batch.num_rows() {
        h.reset();
        for (tag, c) in cols.iter().enumerate() {
            h.update(&[tag as u8]);
            match c {
                Column::Missing => {
                    h.update(&[0]);
                }
                Column::Str(a) => put_str(&mut h, a.is_valid(i).then(|| a.value(i))),
                Column::I32(a) => match a.is_valid(i) {
                    false => {
                        h.update(&[0]);
                    }
                    true => {
                        h.update(&[1]);
                        h.update(&a.value(i).to_le_bytes());
                    }
                },
                Column::Ts(a) => match a.is_valid(i) {
                    false => {
                        h.update(&[0]);
                    }
                    true => {
                        h.update(&[1]);
                        h.update(&a.value(i).to_le_bytes());
                    }
                },
                Column::List(a) => {
                    let list = a.as_list::<i32>();
                    if list.is_valid(i) {
                        let items = list.value(i);
                        let items = items.as_string::<i32>();
                        h.update(&[1]);
                        h.update(&(items.len() as u64).to_le_bytes());
                        for j in 0..items.len() {
                            put_str(&mut h, items.is_valid(j).then(|| items.value(j)));
                        }
                    } else {
                        h.update(&[0]);
                    }
                }
            }
        }
        let d = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&d.as_bytes()[..16]);
        out.push(u128::from_le_bytes(first));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeOptions, EventBatchBuilder, decode::decode_event};

    fn digests(lines: &[&str]) -> Vec<u128> {
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
        // The same event, keys in another order, and a body that slimming would drop.
        let a2 = r#"{"requestURI":"/api/v1/namespaces/p/secrets/s","verb":"get","stage":"ResponseComplete","auditID":"x","requestReceivedTimestamp":"2026-03-19T10:00:00Z"}"#;
        let b = r#"{"auditID":"x","stage":"ResponseComplete","verb":"delete","requestURI":"/api/v1/namespaces/p/secrets/s","requestReceivedTimestamp":"2026-03-19T10:00:00Z"}"#;
        let d = digests(&[a, a2, b]);
        assert_eq!(d[0], d[1]);
        assert_ne!(d[0], d[2]);
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
