//! EKS: audit events in CloudWatch Logs (log group `/aws/eks/<cluster>/cluster`, streams
//! `kube-apiserver-audit-*`), as teams export them:
//! - `aws logs filter-log-events` / `get-log-events` JSON: `{"events": [{"logStreamName",
//!   "timestamp", "message", ...}]}` (each element is a row's envelope);
//! - an export task to S3: gzipped lines `<ISO time> <event JSON>`;
//! - a subscription filter: `DATA_MESSAGE` documents `{"messageType", "owner", "logGroup",
//!   "logStream", "subscriptionFilters", "logEvents": [{"id", "timestamp", "message"}]}`, also as
//!   Firehose writes them to S3 (gzipped, back to back) or delivers them to an HTTP endpoint
//!   (`{"requestId", "timestamp", "records": [{"data": base64}]}`).
//!
//! CloudWatch Logs cuts messages over 256 KiB and ends them with `[Truncated...]`: such a message
//! is rejected with that reason, never stored half.

use serde_json::{Map, Value};

use super::{Bad, Format, Leaf, Provider, Unwrapped, envelope_error, inner_event, unwrap_data};
use auditlake_model::schema::source;

pub(crate) struct Eks;

/// What CloudWatch Logs appends to a message it cut.
const TRUNCATED: &str = "[Truncated...]";

/// The prefix of the log streams that hold audit events.
const AUDIT_STREAM: &str = "kube-apiserver-audit";

fn is_firehose_records(m: &Map<String, Value>) -> bool {
    match m.get("records") {
        Some(Value::Array(r)) => r.iter().all(|r| {
            r.as_object()
                .is_some_and(|r| r.get("data").is_some_and(Value::is_string))
        }),
        _ => false,
    }
}

fn is_log_event(m: &Map<String, Value>) -> bool {
    m.get("message").is_some_and(Value::is_string)
        && (m.contains_key("logStreamName")
            || m.contains_key("eventId")
            || m.contains_key("ingestionTime"))
}

impl Provider for Eks {
    fn format(&self) -> Format {
        Format::Eks
    }

    fn recognises(&self, m: &Map<String, Value>) -> bool {
        m.get("logEvents").is_some_and(Value::is_array)
            || m.get("events").is_some_and(|e| {
                e.as_array().is_some_and(|e| {
                    e.iter()
                        .all(|e| e.get("message").is_some_and(Value::is_string))
                })
            })
            || is_log_event(m)
            || (is_firehose_records(m)
                && m.get("records")
                    .is_some_and(|r| r.as_array().is_some_and(|r| !r.is_empty())))
    }

    fn unwrap(&self, mut m: Map<String, Value>, item: Option<usize>, out: &mut Vec<Unwrapped>) {
        if m.contains_key("logEvents") {
            return subscription(m, item, out);
        }
        if is_firehose_records(&m) {
            let Some(Value::Array(records)) = m.remove("records") else {
                return;
            };
            for (i, record) in records.into_iter().enumerate() {
                let Value::Object(record) = record else {
                    continue;
                };
                let data = record
                    .get("data")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let raw = || Value::Object(record.clone()).to_string();
                let wrap = |marker: Value| {
                    let mut rec = record.clone();
                    rec.insert("data".into(), marker);
                    let mut doc = m.clone();
                    doc.insert("records".into(), Value::Array(vec![Value::Object(rec)]));
                    Value::Object(doc)
                };
                let field = format!("records[{i}].data");
                unwrap_data(&data, &field, Some(i), Format::Eks, out, raw, wrap);
            }
            return;
        }
        if let Some(Value::Array(events)) = m.remove("events") {
            // The other members (searchedLogStreams, nextToken) describe the query, not an event.
            for (i, e) in events.into_iter().enumerate() {
                let Value::Object(e) = e else { continue };
                out.push(log_event(e, Some(i), None, None, Value::Object));
            }
            return;
        }
        out.push(log_event(m, item, None, None, Value::Object));
    }
}

/// The cluster a log group `/aws/eks/<cluster>/cluster` is for.
fn cluster_of(group: &str) -> Option<String> {
    let name = group.strip_prefix("/aws/eks/")?.strip_suffix("/cluster")?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_owned())
}

/// A subscription filter's document (`DATA_MESSAGE`, `CONTROL_MESSAGE`).
fn subscription(mut doc: Map<String, Value>, item: Option<usize>, out: &mut Vec<Unwrapped>) {
    let kind = doc
        .get("messageType")
        .and_then(Value::as_str)
        .unwrap_or("DATA_MESSAGE");
    if kind != "DATA_MESSAGE" {
        out.push(Err(Bad {
            item,
            raw: Value::Object(doc.clone()).to_string(),
            error: envelope_error(format!(
                "EKS: a CloudWatch Logs {kind} (the subscription's own message), no audit event in it"
            )),
        }));
        return;
    }
    let group = doc
        .get("logGroup")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stream = doc
        .get("logStream")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let cluster = group.as_deref().and_then(cluster_of);
    let Some(Value::Array(events)) = doc.remove("logEvents") else {
        return;
    };
    for (i, e) in events.into_iter().enumerate() {
        let Value::Object(e) = e else {
            out.push(Err(Bad {
                item: Some(i),
                raw: e.to_string(),
                error: envelope_error("EKS: a logEvents element that is not an object"),
            }));
            continue;
        };
        let wrap = |e| {
            let mut d = doc.clone();
            d.insert("logEvents".into(), Value::Array(vec![Value::Object(e)]));
            Value::Object(d)
        };
        out.push(log_event(
            e,
            Some(i),
            stream.as_deref(),
            cluster.clone(),
            wrap,
        ));
    }
}

/// One CloudWatch Logs event (`message` holds the audit event's JSON text).
fn log_event(
    mut e: Map<String, Value>,
    item: Option<usize>,
    stream: Option<&str>,
    cluster: Option<String>,
    wrap: impl FnOnce(Map<String, Value>) -> Value,
) -> Unwrapped {
    let raw = |e: &Map<String, Value>| Value::Object(e.clone()).to_string();
    let bad = |raw: String, error| Err(Bad { item, raw, error });
    let stream = stream.or_else(|| e.get("logStreamName").and_then(Value::as_str));
    if let Some(s) = stream
        && !s.starts_with(AUDIT_STREAM)
    {
        return bad(
            raw(&e),
            envelope_error(format!(
                "EKS: log stream {s:?} is not an audit stream ({AUDIT_STREAM}-*): the cluster's other logs are not audit events"
            )),
        );
    }
    let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
    if message.trim_end().ends_with(TRUNCATED) {
        return bad(raw(&e), truncated());
    }
    match e.get("message") {
        Some(Value::String(_) | Value::Object(_)) => {}
        Some(other) => {
            let kind = super::json_kind(other);
            return bad(
                raw(&e),
                envelope_error(format!("EKS message is a JSON {kind}, not an audit event")),
            );
        }
        None => {
            return bad(
                raw(&e),
                envelope_error("EKS: a log event without a message"),
            );
        }
    }
    let message = e.remove("message").unwrap_or_default();
    match inner_event(message, "EKS message") {
        Ok((event, marker)) => {
            e.insert("message".into(), marker);
            Ok(Leaf {
                item,
                event,
                envelope: Some(wrap(e)),
                source: source::EKS,
                cluster,
                authz_decision: None,
            })
        }
        Err(error) => bad(raw(&e), error),
    }
}

fn truncated() -> auditlake_model::DecodeError {
    envelope_error(format!(
        "EKS: CloudWatch Logs truncated this message (it ends in {TRUNCATED}): the event is incomplete, so none of it is stored"
    ))
}

/// A line of an export task to S3: `<ISO time> <event JSON>`.
pub(crate) fn s3_export_line(text: &str) -> Option<Unwrapped> {
    let (time, rest) = text.split_once(' ')?;
    let bytes = time.as_bytes();
    let looks_like_time = bytes.len() >= 20
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[10] == b'T';
    if !looks_like_time
        || !rest.trim_start().starts_with('{')
        || auditlake_model::time::parse_rfc3339(time).is_none()
    {
        return None;
    }
    if rest.trim_end().ends_with(TRUNCATED) {
        return Some(Err(Bad {
            item: None,
            raw: text.to_owned(),
            error: truncated(),
        }));
    }
    let mut env = Map::new();
    env.insert(super::MARK.into(), Value::String("line".into()));
    env.insert("time".into(), Value::String(time.to_owned()));
    Some(Ok(Leaf {
        item: None,
        event: rest.to_owned(),
        envelope: Some(Value::Object(env)),
        source: source::EKS,
        cluster: None,
        authz_decision: None,
    }))
}
