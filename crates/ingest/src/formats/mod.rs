//! Input formats: the apiserver's own events, and the envelopes the managed providers put around
//! them (EKS through CloudWatch Logs, AKS diagnostic settings, GKE Cloud Logging).
//!
//! ```text
//!  JSON text ──▶ an Event or EventList? ──yes──▶ model's decoder ──▶ EventRow (source_format k8s)
//!                      │ no (or a provider's format was asked for)
//!                      ▼
//!        one provider recognises it (eks | aks | gke)
//!                      │ unwrap
//!                      ▼
//!        Leaf { the Event (inner, or mapped from a LogEntry), the envelope with the event's
//!               place marked, the cluster it names } ──▶ model's decoder ──▶ EventRow
//! ```
//!
//! Each provider is a module behind [`Provider`]. The envelope is kept whole in the `envelope`
//! column, with the event's place in it (or, for GKE, the places of the request and response
//! bodies) replaced by a marker object `{"$auditlake": ...}`, so that [`rebuild_envelope`] gives
//! the envelope back from the stored row. Bodies live only in their columns, where redaction has
//! run: an envelope never holds a second, unredacted copy.

mod aks;
mod eks;
mod gke;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

pub(crate) use auditlake_model::decode::json_kind;
use auditlake_model::decode::{DecodeError, DecodeOptions, EventRow, decode_document};
use auditlake_model::schema::source;
use serde_json::{Map, Value};

/// What an input is read as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decided per document or line: the apiserver's own Event, or any provider's envelope.
    #[default]
    Auto,
    /// The apiserver's own events only (`Event`, `EventList`, v1beta1/v1alpha1).
    K8s,
    /// EKS: CloudWatch Logs exports (`filter-log-events` JSON, S3 export lines, subscription
    /// `DATA_MESSAGE`s and Firehose deliveries).
    Eks,
    /// AKS: diagnostic records (`PT1H.json` lines, Event Hub `records` documents).
    Aks,
    /// GKE: Cloud Logging `LogEntry`s (sink lines, `gcloud logging read` arrays, Pub/Sub).
    Gke,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::K8s,
        Format::Eks,
        Format::Aks,
        Format::Gke,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::K8s => source::K8S,
            Format::Eks => source::EKS,
            Format::Aks => source::AKS,
            Format::Gke => source::GKE,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown format {s:?}: auto, k8s, eks, aks or gke"))
    }
}

/// The key of the marker objects in a stored envelope; an input envelope that uses it is refused
/// (it would be taken for a marker on the way back).
pub const MARK: &str = "$auditlake";

/// One event out of an envelope.
#[derive(Debug)]
pub(crate) struct Leaf {
    /// Its index in the document (a `records`, `logEvents` or array element).
    pub item: Option<usize>,
    /// The event's JSON text: the inner Event (EKS, AKS) or the Event mapped from a LogEntry.
    pub event: String,
    /// The envelope with the event's place marked; `None` for a bare Event.
    pub envelope: Option<Value>,
    pub source: &'static str,
    /// The cluster the envelope names.
    pub cluster: Option<String>,
    /// An authorization decision the envelope gives outside the event's annotations (GKE's
    /// `authorizationInfo[].granted`).
    pub authz_decision: Option<&'static str>,
}

/// An envelope item that holds no storable event: its index, its JSON text and why.
#[derive(Debug)]
pub(crate) struct Bad {
    pub item: Option<usize>,
    pub raw: String,
    pub error: DecodeError,
}

pub(crate) type Unwrapped = Result<Leaf, Bad>;

/// A managed provider's envelopes.
pub(crate) trait Provider {
    fn format(&self) -> Format;
    /// Whether an object is one of this provider's envelopes.
    fn recognises(&self, v: &Map<String, Value>) -> bool;
    /// The events inside an envelope this provider recognises, and its items that hold none.
    fn unwrap(&self, v: Map<String, Value>, item: Option<usize>, out: &mut Vec<Unwrapped>);
}

const PROVIDERS: [&(dyn Provider + Sync); 3] = [&eks::Eks, &aks::Aks, &gke::Gke];

/// Why an input item holds no event: the decode error a reject shows.
pub(crate) fn envelope_error(what: impl Into<String>) -> DecodeError {
    DecodeError::Envelope(what.into())
}

/// A marker for the place of the event in its envelope: as a JSON object, or as a JSON string
/// (with the whitespace that followed the event's text in it).
pub(crate) fn event_marker(as_string: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert(MARK.into(), Value::String("event".into()));
    match as_string {
        None => {
            m.insert("as".into(), Value::String("object".into()));
        }
        Some(text) => {
            m.insert("as".into(), Value::String("string".into()));
            let trimmed = text.trim_end();
            if trimmed.len() < text.len() {
                m.insert("suffix".into(), Value::String(text[trimmed.len()..].into()));
            }
        }
    }
    Value::Object(m)
}

/// Whether a value uses the marker key anywhere but in the places of events and bodies (an AKS
/// `properties.log`, a GKE `protoPayload.request` or `.response`): those leave the envelope
/// before markers go in, and what a client put in its request must not get the event refused.
fn uses_mark_in(m: &Map<String, Value>, parent: &str) -> bool {
    fn walk(v: &Value, parent: &str) -> bool {
        match v {
            Value::Object(m) => uses_mark_in(m, parent),
            Value::Array(a) => a.iter().any(|v| walk(v, "")),
            _ => false,
        }
    }
    m.contains_key(MARK)
        || m.iter().any(|(k, v)| {
            let event_place = (parent == "properties" && k == "log")
                || (parent == "protoPayload" && (k == "request" || k == "response"));
            !event_place && walk(v, k)
        })
}

/// The inner Event of an envelope field: a JSON string holding it (AKS `properties.log`, EKS
/// `message`), or the object itself; with the marker that stands for it in the envelope.
pub(crate) fn inner_event(v: Value, field: &str) -> Result<(String, Value), DecodeError> {
    match v {
        Value::String(s) => {
            let marker = event_marker(Some(&s));
            Ok((s, marker))
        }
        Value::Object(_) => Ok((v.to_string(), event_marker(None))),
        other => Err(envelope_error(format!(
            "{field} is a JSON {}, not an audit event",
            json_kind(&other)
        ))),
    }
}

/// The sink of [`decode_input`]: an item's index, its text (for the rejected area) and its row.
pub type Sink<'s> = dyn FnMut(Option<usize>, &str, Result<EventRow<'_>, DecodeError>) + 's;

/// Decodes one JSON text (a line, or one value of a document) read as `format`, and hands each
/// event in it to `sink`, as [`decode_document`] does for the apiserver's own events.
///
/// Returns an error only when the text as a whole is unusable.
pub fn decode_input(
    text: &str,
    format: Format,
    opts: &DecodeOptions,
    sink: &mut Sink<'_>,
) -> Result<(), DecodeError> {
    DATA.set((0, 0));
    let native = |sink: &mut Sink<'_>| {
        decode_document(text, opts, |i, raw, r| {
            sink(
                i,
                raw,
                r.map(|mut row| {
                    row.source_format = Some(source::K8S);
                    row
                }),
            )
        })
    };
    match format {
        Format::K8s => native(sink),
        Format::Auto => {
            // The common case costs one parse: the rows are held until it is known that the
            // text is the apiserver's own.
            let mut held: Vec<(Option<usize>, &str, Result<EventRow<'_>, DecodeError>)> =
                Vec::new();
            let res = decode_document(text, opts, |i, raw, r| held.push((i, raw, r)));
            // A lone object that the apiserver's format takes only by `level` (or cannot take)
            // and that a provider recognises is an envelope: Azure's records may carry a
            // top-level `level`, and a shipper may add a `timestamp`.
            let weak = match held.as_slice() {
                [(None, _, Err(_))] => true,
                [(None, _, Ok(r))] => {
                    r.audit_id.is_none()
                        && r.verb.is_none()
                        && r.request_uri.is_none()
                        && r.stage.is_none()
                }
                _ => false,
            };
            let not_native = matches!(
                (&res, held.as_slice()),
                (Err(DecodeError::Json(_) | DecodeError::NotAnObject(_)), _)
                    | (Ok(()), [(None, _, Err(DecodeError::NotAnEvent))])
            ) || (weak && res.is_ok() && a_providers_envelope(text));
            if !not_native {
                for (i, raw, r) in held {
                    sink(
                        i,
                        raw,
                        r.map(|mut row| {
                            row.source_format = Some(source::K8S);
                            row
                        }),
                    );
                }
                return res;
            }
            drop(held);
            match unwrap_text(text, Format::Auto) {
                Ok(leaves) => emit(leaves, opts, sink),
                // Neither an event nor an envelope: the apiserver's-format reason, as before.
                Err(None) => match res {
                    Err(e) => Err(e),
                    Ok(()) => {
                        sink(None, text, Err(DecodeError::NotAnEvent));
                        Ok(())
                    }
                },
                // Broken JSON either way: the decoder's own message, as for any line.
                Err(Some(e)) => match res {
                    Err(native @ DecodeError::Json(_)) => Err(native),
                    _ => Err(e),
                },
            }
        }
        provider => match unwrap_text(text, provider) {
            Ok(leaves) => emit(leaves, opts, sink),
            Err(Some(e)) => Err(e),
            Err(None) => Err(envelope_error(format!(
                "not {} envelope: {}",
                article(provider),
                described(provider)
            ))),
        },
    }
}

/// Whether a text is one object that some provider recognises as its envelope.
fn a_providers_envelope(text: &str) -> bool {
    match serde_json::from_str::<Strict>(text) {
        Ok(Strict(Value::Object(m))) => provider_of(&m, Format::Auto).is_some(),
        _ => false,
    }
}

fn article(f: Format) -> &'static str {
    match f {
        Format::Aks => "an AKS",
        Format::Eks => "an EKS",
        Format::Gke => "a GKE",
        _ => "a known",
    }
}

fn described(f: Format) -> &'static str {
    match f {
        Format::Eks => {
            "expected a CloudWatch Logs export (filter-log-events JSON, an S3 export line, a subscription DATA_MESSAGE or a Firehose delivery)"
        }
        Format::Aks => {
            "expected a diagnostic record (category, properties.log) or an Event Hub records document"
        }
        Format::Gke => {
            "expected a Cloud Logging LogEntry with an AuditLog protoPayload, or a Pub/Sub message holding one"
        }
        _ => "expected an audit event or an EKS, AKS or GKE envelope",
    }
}

/// Decodes each leaf's event and hands it over with what the envelope adds.
fn emit(
    leaves: Vec<Unwrapped>,
    opts: &DecodeOptions,
    sink: &mut Sink<'_>,
) -> Result<(), DecodeError> {
    for leaf in leaves {
        let leaf = match leaf {
            Ok(l) => l,
            Err(b) => {
                sink(b.item, &b.raw, Err(b.error));
                continue;
            }
        };
        if leaf
            .envelope
            .as_ref()
            .is_some_and(|e| depth(e) > MAX_ENVELOPE_DEPTH)
        {
            sink(
                leaf.item,
                &leaf.event,
                Err(envelope_error(format!(
                    "{}: the envelope nests deeper than {MAX_ENVELOPE_DEPTH} levels",
                    leaf.source
                ))),
            );
            continue;
        }
        let envelope = leaf.envelope.as_ref().map(Value::to_string);
        let row = auditlake_model::decode::decode_event(&leaf.event, opts)
            .map(|mut row| {
                row.source_format = Some(leaf.source);
                row.envelope = envelope;
                row.envelope_cluster = leaf.cluster.clone();
                if row.authz_decision.is_none() {
                    row.authz_decision = leaf.authz_decision.map(Cow::Borrowed);
                }
                row
            })
            .map_err(|e| match (leaf.envelope.is_some(), e) {
                (true, e) => envelope_error(format!("{}: the event inside: {e}", leaf.source)),
                (false, e) => e,
            });
        sink(leaf.item, &leaf.event, row);
    }
    Ok(())
}

/// The events of a text that is not the apiserver's own: `Err(None)` when no provider (of
/// `format`, or any for `Auto`) recognises it, `Err(Some)` when the text is unusable as a whole.
fn unwrap_text(text: &str, format: Format) -> Result<Vec<Unwrapped>, Option<DecodeError>> {
    let mut out = Vec::new();
    if matches!(format, Format::Auto | Format::Eks)
        && let Some(leaf) = eks::s3_export_line(text)
    {
        out.push(leaf);
        return Ok(out);
    }
    // One value, or several written back to back (Firehose writes its records to S3 that way).
    let mut values = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Strict>() {
        match v {
            Ok(Strict(v)) => values.push(v),
            Err(e) => return Err(Some(DecodeError::Json(e.to_string()))),
        }
    }
    let several = values.len() > 1;
    let mut recognised = false;
    for (i, v) in values.into_iter().enumerate() {
        let item = several.then_some(i);
        recognised |= unwrap_value(v, item, format, 0, &mut out);
    }
    if recognised { Ok(out) } else { Err(None) }
}

/// A JSON value that refuses a key given twice in one object, as the event decoder does: which
/// value counts would be the parser's guess (`serde_json::Value` keeps the last), and an
/// envelope is no way around that rule.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {k:?} in one object"
                )));
            }
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Unwraps one JSON value; false when it is not an envelope (nor, for `Auto`, a bare event)
/// and nothing was added.
fn unwrap_value(
    v: Value,
    item: Option<usize>,
    format: Format,
    depth: u8,
    out: &mut Vec<Unwrapped>,
) -> bool {
    match v {
        Value::Array(items) if depth == 0 => {
            let mut any = false;
            for (i, v) in items.into_iter().enumerate() {
                // Judged before it is moved: an element is never copied for a reject's sake.
                if !takes(&v, format) {
                    out.push(Err(Bad {
                        item: Some(i),
                        raw: v.to_string(),
                        error: match format {
                            Format::Auto => DecodeError::NotAnEvent,
                            f => envelope_error(format!("not {} envelope", article(f))),
                        },
                    }));
                } else {
                    any |= unwrap_value(v, Some(i), format, depth + 1, out);
                }
            }
            any
        }
        Value::Object(m) => {
            if !takes_object(&m, format) {
                return false;
            }
            if uses_mark_in(&m, "") {
                out.push(Err(Bad {
                    item,
                    raw: Value::Object(m).to_string(),
                    error: envelope_error(format!(
                        "the key {MARK:?} is reserved for the store's own envelope markers"
                    )),
                }));
                return true;
            }
            match provider_of(&m, format) {
                Some(p) => p.unwrap(m, item, out),
                // A bare Event (`Auto` only), as an element of an array or one of several values.
                None => out.push(Ok(Leaf {
                    item,
                    event: Value::Object(m).to_string(),
                    envelope: None,
                    source: source::K8S,
                    cluster: None,
                    authz_decision: None,
                })),
            }
            true
        }
        _ => false,
    }
}

/// The provider of `format` (any, for `Auto`) that recognises an object.
fn provider_of(m: &Map<String, Value>, format: Format) -> Option<&'static (dyn Provider + Sync)> {
    PROVIDERS
        .into_iter()
        .find(|p| (format == Format::Auto || format == p.format()) && p.recognises(m))
}

/// Whether [`unwrap_value`] takes an object: as an envelope (or a reject of one that uses the
/// reserved key), or, for `Auto`, as a bare Event.
fn takes_object(m: &Map<String, Value>, format: Format) -> bool {
    format == Format::Auto || uses_mark_in(m, "") || provider_of(m, format).is_some()
}

/// Whether [`unwrap_value`] takes an element of an array.
fn takes(v: &Value, format: Format) -> bool {
    matches!(v, Value::Object(m) if takes_object(m, format))
}

/// What [`rebuild_envelope`] gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Rebuilt {
    /// A JSON envelope.
    Value(Value),
    /// A text line (an EKS export to S3: `<time> <event JSON>`).
    Line(String),
}

/// The envelope a stored row came in, from its `envelope` column and the row's event (as
/// `row_to_json` gives it) and bodies. The event is written back where it was, as a JSON object
/// or as the JSON string it was sent as (the event's compact JSON, then the whitespace that
/// followed it); base64 (and gzip) data is encoded again.
pub fn rebuild_envelope(
    envelope: &str,
    event: &Value,
    request: Option<&Value>,
    response: Option<&Value>,
) -> Result<Rebuilt, String> {
    let env: Value = serde_json::from_str(envelope)
        .map_err(|e| format!("the stored envelope is not JSON: {e}"))?;
    if let Value::Object(m) = &env
        && m.get(MARK).and_then(Value::as_str) == Some("line")
    {
        let time = m.get("time").and_then(Value::as_str).unwrap_or_default();
        return Ok(Rebuilt::Line(format!("{time} {event}")));
    }
    let parts = Parts {
        event,
        request,
        response,
    };
    Ok(Rebuilt::Value(parts.fill(env)?.unwrap_or(Value::Null)))
}

struct Parts<'a> {
    event: &'a Value,
    request: Option<&'a Value>,
    response: Option<&'a Value>,
}

impl Parts<'_> {
    /// The value with its markers replaced; `None` for a body marker whose body is gone
    /// (retention or a policy dropped it), so that the key is left out.
    fn fill(&self, v: Value) -> Result<Option<Value>, String> {
        Ok(Some(match v {
            Value::Object(m) if m.contains_key(MARK) => {
                let kind = m.get(MARK).and_then(Value::as_str).unwrap_or_default();
                match kind {
                    "event" => match m.get("as").and_then(Value::as_str) {
                        Some("string") => {
                            let suffix = m.get("suffix").and_then(Value::as_str).unwrap_or("");
                            Value::String(format!("{}{suffix}", self.event))
                        }
                        _ => self.event.clone(),
                    },
                    "requestObject" => return Ok(self.request.cloned()),
                    "responseObject" => return Ok(self.response.cloned()),
                    "base64" => {
                        let inner = m.get("of").cloned().unwrap_or(Value::Null);
                        let inner = self.fill(inner)?.unwrap_or(Value::Null);
                        let gzip = m.get("gzip").and_then(Value::as_bool).unwrap_or(false);
                        Value::String(encode_data(inner.to_string().as_bytes(), gzip)?)
                    }
                    other => return Err(format!("unknown envelope marker {other:?}")),
                }
            }
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    if let Some(v) = self.fill(v)? {
                        out.insert(k, v);
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(
                a.into_iter()
                    .map(|v| Ok(self.fill(v)?.unwrap_or(Value::Null)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other,
        }))
    }
}

/// Base64 data (Pub/Sub, Firehose), gzipped first where it was.
fn encode_data(bytes: &[u8], gzip: bool) -> Result<String, String> {
    use base64::Engine as _;
    use std::io::Write as _;
    let bytes = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).map_err(|e| e.to_string())?;
        enc.finish().map_err(|e| e.to_string())?
    } else {
        bytes.to_vec()
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Base64 data as text, gunzipped when it is gzip; and whether it was.
pub(crate) fn decode_data(
    data: &str,
    field: &str,
    limit: u64,
) -> Result<(String, bool), DecodeError> {
    use base64::Engine as _;
    use std::io::Read as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| envelope_error(format!("{field} is not base64: {e}")))?;
    let (bytes, gzip) = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| envelope_error(format!("{field} is not valid gzip: {e}")))?;
        (out, true)
    } else {
        (bytes, false)
    };
    if bytes.len() as u64 > limit {
        return Err(envelope_error(format!(
            "{field}: the data of one delivery unpacks to more than {} MiB",
            MAX_DATA_BYTES >> 20
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| envelope_error(format!("{field} is not UTF-8 text: {e}")))?;
    Ok((text, gzip))
}

/// The most the base64 `data` fields of one text may unpack to, all together: a gzip bomb in a
/// Firehose delivery must not take the process's memory (Firehose's own record limit is
/// 1,000 KiB, Pub/Sub's message limit 10 MB).
const MAX_DATA_BYTES: u64 = 64 << 20;

thread_local! {
    /// For the text being decoded: how deep in base64 data the unwrap is, and how many bytes its
    /// data fields have unpacked to so far.
    static DATA: std::cell::Cell<(u8, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// How deep a stored envelope may nest: the export reads it back in one parse.
const MAX_ENVELOPE_DEPTH: usize = 64;

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Unwraps the JSON text inside a `data` field (Pub/Sub, Firehose), with the events' envelopes
/// nested in a base64 marker under `wrap`, which rebuilds the outer envelope.
pub(crate) fn unwrap_data(
    data: &str,
    field: &str,
    item: Option<usize>,
    format: Format,
    out: &mut Vec<Unwrapped>,
    raw: impl Fn() -> String,
    wrap: impl Fn(Value) -> Value,
) {
    let (level, used) = DATA.get();
    if level > 0 {
        out.push(Err(Bad {
            item,
            raw: raw(),
            error: envelope_error(format!(
                "{field}: base64 data inside base64 data, which no provider sends"
            )),
        }));
        return;
    }
    let (text, gzip) = match decode_data(data, field, MAX_DATA_BYTES.saturating_sub(used)) {
        Ok(t) => t,
        Err(error) => {
            out.push(Err(Bad {
                item,
                raw: raw(),
                error,
            }));
            return;
        }
    };
    DATA.set((level + 1, used + text.len() as u64));
    let inner = unwrap_text(&text, format);
    DATA.set((level, used + text.len() as u64));
    let inner = match inner {
        Ok(leaves) => leaves,
        Err(e) => {
            let error =
                e.unwrap_or_else(|| envelope_error(format!("{field} holds {}", described(format))));
            // The reject keeps the decoded text, not its base64: masking (Secret values, tokens)
            // can only see into text, and a credential must not reach the rejected area encoded.
            out.push(Err(Bad {
                item,
                raw: text,
                error,
            }));
            return;
        }
    };
    for leaf in inner {
        out.push(leaf.map(|mut l| {
            let nested = l.envelope.take().unwrap_or_else(|| event_marker(None));
            let mut m = Map::new();
            m.insert(MARK.into(), Value::String("base64".into()));
            m.insert("gzip".into(), Value::Bool(gzip));
            m.insert("of".into(), nested);
            l.envelope = Some(wrap(Value::Object(m)));
            l.item = item.or(l.item);
            l
        }));
    }
}

#[cfg(test)]
mod tests;
