//! The way back: a stored row as the JSON event it came from.

use arrow::array::{Array, AsArray, Int32Array, ListArray, StringArray, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::schema::{col, flags};
use crate::time::format_canonical;

/// Typed access to the columns of a batch of `audit_events`, whatever string layout it was read
/// with (`Utf8` or `Utf8View`).
pub struct EventColumns {
    ts: TimestampMicrosecondArray,
    stage_ts: TimestampMicrosecondArray,
    response_code: Int32Array,
    shape_flags: Int32Array,
    strs: Vec<(&'static str, &'static [&'static str], StringArray)>,
    lists: Vec<(&'static str, &'static [&'static str], ListArray)>,
    json: Vec<(&'static str, &'static [&'static str], StringArray)>,
    unmapped: StringArray,
}

/// Each string column and its path in the event.
const STRS: [(&str, &[&str]); 26] = [
    (col::EVENT_API_VERSION, &["apiVersion"]),
    (col::LEVEL, &["level"]),
    (col::AUDIT_ID, &["auditID"]),
    (col::STAGE, &["stage"]),
    (col::REQUEST_URI, &["requestURI"]),
    (col::VERB, &["verb"]),
    (col::USER_NAME, &["user", "username"]),
    (col::USER_UID, &["user", "uid"]),
    (
        col::IMPERSONATED_USER_NAME,
        &["impersonatedUser", "username"],
    ),
    (col::IMPERSONATED_USER_UID, &["impersonatedUser", "uid"]),
    (col::USER_AGENT, &["userAgent"]),
    (col::RESOURCE, &["objectRef", "resource"]),
    (col::NAMESPACE, &["objectRef", "namespace"]),
    (col::NAME, &["objectRef", "name"]),
    (col::OBJECT_UID, &["objectRef", "uid"]),
    (col::API_GROUP, &["objectRef", "apiGroup"]),
    (col::API_VERSION, &["objectRef", "apiVersion"]),
    (col::RESOURCE_VERSION, &["objectRef", "resourceVersion"]),
    (col::SUBRESOURCE, &["objectRef", "subresource"]),
    (col::RESPONSE_STATUS, &["responseStatus", "status"]),
    (col::RESPONSE_REASON, &["responseStatus", "reason"]),
    (col::RESPONSE_MESSAGE, &["responseStatus", "message"]),
    // Derived from `annotations`, which is rebuilt whole: listed here only to document them.
    (col::AUTHZ_DECISION, &[]),
    (col::AUTHZ_REASON, &[]),
    (col::CLUSTER, &[]),
    (col::SOURCE_FORMAT, &[]),
];

const LISTS: [(&str, &[&str]); 3] = [
    (col::USER_GROUPS, &["user", "groups"]),
    (
        col::IMPERSONATED_USER_GROUPS,
        &["impersonatedUser", "groups"],
    ),
    (col::SOURCE_IPS, &["sourceIPs"]),
];

const JSON: [(&str, &[&str]); 4] = [
    (col::USER_EXTRA, &["user", "extra"]),
    (col::REQUEST_OBJECT, &["requestObject"]),
    (col::RESPONSE_OBJECT, &["responseObject"]),
    (col::ANNOTATIONS, &["annotations"]),
];

/// The JSON path each column is read from: the documented mapping (`ts` and `stage_ts` fall back
/// to the v1beta1 fields, `response_code` is `responseStatus.code`).
pub fn column_paths() -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            col::TS,
            "requestReceivedTimestamp (else timestamp, stageTimestamp)".to_owned(),
        ),
        (
            col::STAGE_TS,
            "stageTimestamp (else metadata.creationTimestamp)".to_owned(),
        ),
        (col::RESPONSE_CODE, "responseStatus.code".to_owned()),
    ];
    for (c, p) in STRS.iter().chain(LISTS.iter()).chain(JSON.iter()) {
        if !p.is_empty() {
            out.push((c, p.join(".")));
        }
    }
    out
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("column {name} missing")))
}

fn utf8(batch: &RecordBatch, name: &str) -> Result<StringArray, ArrowError> {
    let c = cast(column(batch, name)?, &DataType::Utf8)?;
    Ok(c.as_string::<i32>().clone())
}

impl EventColumns {
    pub fn new(batch: &RecordBatch) -> Result<Self, ArrowError> {
        let ts_type = crate::schema::audit_events_schema()
            .field_with_name(col::TS)?
            .data_type()
            .clone();
        let ts = |name| -> Result<TimestampMicrosecondArray, ArrowError> {
            Ok(cast(column(batch, name)?, &ts_type)?.as_primitive().clone())
        };
        let int = |name| -> Result<Int32Array, ArrowError> {
            Ok(cast(column(batch, name)?, &DataType::Int32)?
                .as_primitive()
                .clone())
        };
        let list_type = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let strs = STRS
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|&(c, p)| Ok((c, p, utf8(batch, c)?)))
            .collect::<Result<_, ArrowError>>()?;
        let lists = LISTS
            .iter()
            .map(|&(c, p)| Ok((c, p, cast(column(batch, c)?, &list_type)?.as_list().clone())))
            .collect::<Result<_, ArrowError>>()?;
        let json = JSON
            .iter()
            .map(|&(c, p)| Ok((c, p, utf8(batch, c)?)))
            .collect::<Result<_, ArrowError>>()?;
        Ok(Self {
            ts: ts(col::TS)?,
            stage_ts: ts(col::STAGE_TS)?,
            response_code: int(col::RESPONSE_CODE)?,
            shape_flags: int(col::SHAPE_FLAGS)?,
            strs,
            lists,
            json,
            unmapped: utf8(batch, col::UNMAPPED)?,
        })
    }

    /// The event of row `i`, equal as a JSON value to the one ingested (redaction aside).
    pub fn row_to_json(&self, i: usize) -> Value {
        let mut m = Map::new();
        let f = self.shape_flags.value(i);
        if f & flags::KIND_EVENT != 0 {
            m.insert("kind".into(), Value::String("Event".into()));
        }
        for (_, path, a) in &self.strs {
            if a.is_valid(i) {
                put(&mut m, path, Value::String(a.value(i).to_owned()));
            }
        }
        for (_, path, a) in &self.lists {
            if a.is_valid(i) {
                let v = a.value(i);
                let items = v.as_string::<i32>();
                let arr = (0..items.len())
                    .map(|j| {
                        if items.is_valid(j) {
                            Value::String(items.value(j).to_owned())
                        } else {
                            Value::Null
                        }
                    })
                    .collect();
                put(&mut m, path, Value::Array(arr));
            }
        }
        for (_, path, a) in &self.json {
            if a.is_valid(i) {
                let v = serde_json::from_str(a.value(i))
                    .unwrap_or_else(|_| Value::String(a.value(i).to_owned()));
                put(&mut m, path, v);
            }
        }
        if self.response_code.is_valid(i) {
            put(
                &mut m,
                &["responseStatus", "code"],
                Value::from(self.response_code.value(i)),
            );
        }
        if f & flags::NO_REQUEST_RECEIVED_TS == 0 {
            m.insert(
                "requestReceivedTimestamp".into(),
                Value::String(format_canonical(self.ts.value(i))),
            );
        }
        if f & flags::NO_STAGE_TS == 0 && self.stage_ts.is_valid(i) {
            m.insert(
                "stageTimestamp".into(),
                Value::String(format_canonical(self.stage_ts.value(i))),
            );
        }
        if self.unmapped.is_valid(i)
            && let Ok(Value::Object(rest)) = serde_json::from_str(self.unmapped.value(i))
        {
            merge(&mut m, rest);
        }
        Value::Object(m)
    }
}

/// The event of row `i` of a batch (see [`EventColumns::row_to_json`]; build an `EventColumns`
/// once per batch when converting many rows).
pub fn row_to_json(batch: &RecordBatch, i: usize) -> Result<Value, ArrowError> {
    Ok(EventColumns::new(batch)?.row_to_json(i))
}

fn put(m: &mut Map<String, Value>, path: &[&str], v: Value) {
    match path {
        [k] => {
            m.insert((*k).to_owned(), v);
        }
        [k, rest @ ..] => {
            let e = m
                .entry((*k).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(sub) = e {
                put(sub, rest, v);
            }
        }
        [] => {}
    }
}

fn merge(m: &mut Map<String, Value>, rest: Map<String, Value>) {
    for (k, v) in rest {
        match (m.get_mut(&k), v) {
            (Some(Value::Object(dst)), Value::Object(src)) => merge(dst, src),
            (_, v) => {
                m.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeOptions, EventBatchBuilder, decode::decode_event, redact::RedactOptions};

    fn round_trip(text: &str) {
        let opts = DecodeOptions {
            redact: RedactOptions::disabled(),
        };
        let row = decode_event(text, &opts).unwrap();
        let mut b = EventBatchBuilder::new();
        b.append(&row, Some("c1"));
        let batch = b.finish().unwrap();
        let back = row_to_json(&batch, 0).unwrap();
        let orig: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, orig, "\n{back}\n{orig}");
    }

    #[test]
    fn round_trips() {
        round_trip(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a","stage":"ResponseComplete","requestURI":"/x","verb":"create","user":{"username":"u","groups":[],"extra":{"k":["v"]}},"impersonatedUser":{"username":"i","extra":{"a":["b"]}},"sourceIPs":["1.2.3.4","::1"],"objectRef":{"resource":"pods","namespace":"n","name":"p","apiGroup":"","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","reason":"Forbidden","message":"m","details":{"kind":"pods"},"code":403},"requestObject":{"a":[1,2.5,null,true]},"responseObject":[{"op":"add"}],"requestReceivedTimestamp":"2026-03-19T10:30:00.000000Z","stageTimestamp":"2026-03-19T10:30:00.050000Z","annotations":{"authorization.k8s.io/decision":"forbid","x":"y"}}"#,
        );
        round_trip(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2017-09-11T19:55:05Z"},"level":"Metadata","timestamp":"2017-09-11T19:55:05Z","auditID":"x","stage":"ResponseComplete","user":{},"objectRef":{}}"#,
        );
        round_trip(
            r#"{"auditID":"y","verb":7,"stage":null,"requestReceivedTimestamp":"2026-01-01T00:00:00+01:00","stageTimestamp":null,"user":"bob","responseStatus":{"code":"200"},"kind":"Other","x-new":{"a":1},"requestObject":null,"annotations":[1]}"#,
        );
        round_trip(
            r#"{"auditID":"z","stage":"Panic","requestReceivedTimestamp":"2026-01-01T00:00:00.000001Z","responseStatus":{"code":99999999999},"user":{"username":null,"groups":["a",1]},"sourceIPs":"nope"}"#,
        );
    }
}
