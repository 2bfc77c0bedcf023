//! Decoding audit events from JSON text, losslessly and leniently.
//!
//! The decoder reads one JSON document (an `Event`, or an `EventList` as the webhook backend POSTs
//! it) straight into typed fields, borrowing strings from the input where it can and keeping
//! `requestObject`, `responseObject`, `annotations` and `user.extra` as the raw JSON text they were.
//! A key it does not know, or a known key whose value has an unexpected type, lands in the
//! `unmapped` JSON object instead of being dropped, so that [`crate::encode::row_to_json`] can give
//! back a value equal to the input.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::redact::RedactOptions;
use crate::schema::flags;
use crate::time::{self, Micros};

/// Why a JSON text is not a storable event. Each is the input's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all, or cut short (a truncated line).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid JSON, but not an object.
    #[error("not an audit event: a JSON {0}, not an object")]
    NotAnObject(&'static str),
    /// An object that has none of the fields every audit event has.
    #[error("not an audit event: none of auditID, stage, verb, requestURI, level")]
    NotAnEvent,
    /// An event from which no time can be read.
    #[error(
        "no usable timestamp: requestReceivedTimestamp, timestamp, stageTimestamp and metadata.creationTimestamp are all missing or invalid"
    )]
    NoTimestamp,
    /// An `EventList` whose `items` is not an array.
    #[error("EventList with unusable items: {0}")]
    BadEventList(String),
    /// A provider's envelope (EKS, AKS, GKE) that holds no storable event; the reason names it.
    #[error("{0}")]
    Envelope(String),
}

/// How events are decoded.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Which bodies to redact.
    pub redact: RedactOptions,
}

/// One event, flattened into the values of the `audit_events` columns (all but `cluster`, which the
/// ingest gives).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRow<'a> {
    pub ts: Micros,
    pub stage_ts: Option<Micros>,
    pub audit_id: Option<Cow<'a, str>>,
    pub stage: Option<Cow<'a, str>>,
    pub level: Option<Cow<'a, str>>,
    pub verb: Option<Cow<'a, str>>,
    pub request_uri: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    pub user_uid: Option<Cow<'a, str>>,
    pub user_groups: Option<Vec<Cow<'a, str>>>,
    pub user_extra: Option<Cow<'a, str>>,
    pub impersonated_user_name: Option<Cow<'a, str>>,
    pub impersonated_user_uid: Option<Cow<'a, str>>,
    pub impersonated_user_groups: Option<Vec<Cow<'a, str>>>,
    pub source_ips: Option<Vec<Cow<'a, str>>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub resource: Option<Cow<'a, str>>,
    pub subresource: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub api_group: Option<Cow<'a, str>>,
    pub api_version: Option<Cow<'a, str>>,
    pub object_uid: Option<Cow<'a, str>>,
    pub resource_version: Option<Cow<'a, str>>,
    pub response_code: Option<i32>,
    pub response_status: Option<Cow<'a, str>>,
    pub response_reason: Option<Cow<'a, str>>,
    pub response_message: Option<Cow<'a, str>>,
    pub request_object: Option<Cow<'a, str>>,
    pub response_object: Option<Cow<'a, str>>,
    pub annotations: Option<Cow<'a, str>>,
    pub authz_decision: Option<Cow<'a, str>>,
    pub authz_reason: Option<Cow<'a, str>>,
    pub event_api_version: Option<Cow<'a, str>>,
    /// Everything the columns above do not hold, as a JSON object text; `None` when empty.
    pub unmapped: Option<String>,
    /// See [`crate::schema::flags`].
    pub shape_flags: i32,
    /// Where the row came from (a value of [`crate::schema::source`]); `None` is read as `k8s`.
    pub source_format: Option<&'static str>,
    /// The provider's envelope around the event, as JSON text, with the event's place in it
    /// marked (see the ingest's `formats` module); `None` for the apiserver's own events.
    pub envelope: Option<String>,
    /// The cluster the envelope names (EKS log group, AKS resource ID, GKE resource labels):
    /// the `cluster` column when the ingest is given none.
    pub envelope_cluster: Option<String>,
}

/// Decodes one JSON document and hands each event in it to `sink`, with the index of the item for
/// an `EventList` and the item's own JSON text (for the rejected-events area).
///
/// Returns an error only when the document as a whole is unusable; a bad item of an `EventList`
/// is handed to `sink` as an error and the other items still are decoded.
pub fn decode_document<'a>(
    text: &'a str,
    opts: &DecodeOptions,
    mut sink: impl FnMut(Option<usize>, &'a str, Result<EventRow<'a>, DecodeError>),
) -> Result<(), DecodeError> {
    let doc = parse_doc(text)?;
    if doc.is_event_list() {
        let items = doc
            .items
            .ok_or_else(|| DecodeError::BadEventList("no items".into()))?;
        let items: Vec<&'a RawValue> = serde_json::from_str(items.get())
            .map_err(|e| DecodeError::BadEventList(e.to_string()))?;
        for (i, item) in items.into_iter().enumerate() {
            let row = parse_doc(item.get()).and_then(|d| d.into_row(opts));
            sink(Some(i), item.get(), row);
        }
        return Ok(());
    }
    sink(None, text, doc.into_row(opts));
    Ok(())
}

/// Decodes a single event (not an `EventList`).
pub fn decode_event<'a>(text: &'a str, opts: &DecodeOptions) -> Result<EventRow<'a>, DecodeError> {
    parse_doc(text)?.into_row(opts)
}

fn parse_doc(text: &str) -> Result<RawDoc<'_>, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = match Container::<RawDoc>::deserialize(&mut de) {
        Ok(Container::Typed(doc)) => doc,
        Ok(Container::Other(v)) => return Err(DecodeError::NotAnObject(json_kind(&v))),
        Err(e) => return Err(DecodeError::Json(e.to_string())),
    };
    de.end().map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(doc)
}

/// The kind of a JSON value, as error messages name it.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient typed pieces

/// A value where a string (or, for `code`, an integer) is expected; anything else is kept as is.
#[derive(Debug)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Other(Value),
}

impl Scalar<'_> {
    fn into_value(self) -> Value {
        match self {
            Scalar::Str(s) => Value::String(s.into_owned()),
            Scalar::Int(i) => Value::from(i),
            Scalar::Other(v) => v,
        }
    }
}

/// What a lenient visitor makes of a JSON value that is not of the shape it wants.
trait FromOther: Sized {
    fn from_other(v: Value) -> Self;
}

impl FromOther for Scalar<'_> {
    fn from_other(v: Value) -> Self {
        Scalar::Other(v)
    }
}

/// Implements the `visit_*` methods for every JSON shape not handled by the visitor itself, turning
/// the value into `FromOther::from_other`.
macro_rules! visit_others {
    ($($skip:ident)*) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::Bool(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::from(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::Null))
        }
        visit_others!(@rest $($skip)*);
    };
    (@rest) => {
        visit_others!(@ints);
        visit_others!(@strs);
        visit_others!(@seq);
        visit_others!(@map);
    };
    (@rest no_ints_strs) => {
        visit_others!(@seq);
        visit_others!(@map);
    };
    (@rest no_map) => {
        visit_others!(@ints);
        visit_others!(@strs);
        visit_others!(@seq);
    };
    (@rest no_seq) => {
        visit_others!(@ints);
        visit_others!(@strs);
        visit_others!(@map);
    };
    (@ints) => {
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::from(v)))
        }
    };
    (@strs) => {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::String(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(FromOther::from_other(Value::String(v)))
        }
    };
    (@seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Ok(FromOther::from_other(Value::deserialize(SeqAccessDeserializer::new(seq))?))
        }
    };
    (@map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Ok(FromOther::from_other(Value::deserialize(MapAccessDeserializer::new(map))?))
        }
    };
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::Other(Value::from(v)), Scalar::Int))
    }
    visit_others!(no_ints_strs);
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A list of strings, or whatever else was there.
#[derive(Debug)]
enum StrList<'a> {
    List(Vec<Cow<'a, str>>),
    Other(Value),
}

impl FromOther for StrList<'_> {
    fn from_other(v: Value) -> Self {
        StrList::Other(v)
    }
}

impl<'de> Deserialize<'de> for StrList<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items: Vec<Scalar<'de>> = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(item) = seq.next_element::<Scalar<'de>>()? {
                    items.push(item);
                }
                if items.iter().all(|i| matches!(i, Scalar::Str(_))) {
                    Ok(StrList::List(
                        items
                            .into_iter()
                            .filter_map(|i| match i {
                                Scalar::Str(s) => Some(s),
                                _ => None,
                            })
                            .collect(),
                    ))
                } else {
                    Ok(StrList::Other(Value::Array(
                        items.into_iter().map(Scalar::into_value).collect(),
                    )))
                }
            }
            visit_others!(no_seq);
        }
        d.deserialize_any(V)
    }
}

/// An object decoded into typed fields, or whatever else was there.
#[derive(Debug)]
enum Container<T> {
    Typed(T),
    Other(Value),
}

impl<T> FromOther for Container<T> {
    fn from_other(v: Value) -> Self {
        Container::Other(v)
    }
}

/// An object type whose fields are read one key at a time.
trait ObjectFields<'de>: Default {
    fn field<A: MapAccess<'de>>(&mut self, key: Key<'de>, map: &mut A) -> Result<(), A::Error>;
}

impl<'de, T: ObjectFields<'de>> Deserialize<'de> for Container<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: ObjectFields<'de>> Visitor<'de> for V<T> {
            type Value = Container<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut t = T::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    t.field(key, &mut map)?;
                }
                Ok(Container::Typed(t))
            }
            visit_others!(no_map);
        }
        d.deserialize_any(V(PhantomData))
    }
}

fn put_rest<'de, A: MapAccess<'de>>(
    rest: &mut Map<String, Value>,
    key: Key<'de>,
    map: &mut A,
) -> Result<(), A::Error> {
    let v: Value = map.next_value()?;
    if rest.insert(key.0.clone().into_owned(), v).is_some() {
        return Err(duplicate(&key.0));
    }
    Ok(())
}

/// A key given twice in one object is refused: which value counts is the parser's guess (the
/// last, with serde), so an event could say `"resource":"secrets"` to the apiserver's readers and
/// `"resource":"pods"` to redaction. The event is rejected (and kept, masked) instead.
fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format!("duplicate key {key:?} in one object"))
}

/// Reads the value of a known key, refusing a second one.
fn set<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    key: &str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(duplicate(key));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

#[derive(Debug, Default)]
struct RawUser<'a> {
    username: Option<Scalar<'a>>,
    uid: Option<Scalar<'a>>,
    groups: Option<StrList<'a>>,
    extra: Option<&'a RawValue>,
    rest: Map<String, Value>,
}

impl<'de> ObjectFields<'de> for RawUser<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: Key<'de>, map: &mut A) -> Result<(), A::Error> {
        match key.0.as_ref() {
            "username" => set(&mut self.username, "username", map)?,
            "uid" => set(&mut self.uid, "uid", map)?,
            "groups" => set(&mut self.groups, "groups", map)?,
            "extra" => set(&mut self.extra, "extra", map)?,
            _ => put_rest(&mut self.rest, key, map)?,
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct RawObjectRef<'a> {
    resource: Option<Scalar<'a>>,
    namespace: Option<Scalar<'a>>,
    name: Option<Scalar<'a>>,
    uid: Option<Scalar<'a>>,
    api_group: Option<Scalar<'a>>,
    api_version: Option<Scalar<'a>>,
    resource_version: Option<Scalar<'a>>,
    subresource: Option<Scalar<'a>>,
    rest: Map<String, Value>,
}

impl<'de> ObjectFields<'de> for RawObjectRef<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: Key<'de>, map: &mut A) -> Result<(), A::Error> {
        match key.0.as_ref() {
            "resource" => set(&mut self.resource, "resource", map)?,
            "namespace" => set(&mut self.namespace, "namespace", map)?,
            "name" => set(&mut self.name, "name", map)?,
            "uid" => set(&mut self.uid, "uid", map)?,
            "apiGroup" => set(&mut self.api_group, "apiGroup", map)?,
            "apiVersion" => set(&mut self.api_version, "apiVersion", map)?,
            "resourceVersion" => set(&mut self.resource_version, "resourceVersion", map)?,
            "subresource" => set(&mut self.subresource, "subresource", map)?,
            _ => put_rest(&mut self.rest, key, map)?,
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct RawStatus<'a> {
    code: Option<Scalar<'a>>,
    status: Option<Scalar<'a>>,
    reason: Option<Scalar<'a>>,
    message: Option<Scalar<'a>>,
    rest: Map<String, Value>,
}

impl<'de> ObjectFields<'de> for RawStatus<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: Key<'de>, map: &mut A) -> Result<(), A::Error> {
        match key.0.as_ref() {
            "code" => set(&mut self.code, "code", map)?,
            "status" => set(&mut self.status, "status", map)?,
            "reason" => set(&mut self.reason, "reason", map)?,
            "message" => set(&mut self.message, "message", map)?,
            _ => put_rest(&mut self.rest, key, map)?,
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct RawDoc<'a> {
    kind: Option<Scalar<'a>>,
    api_version: Option<Scalar<'a>>,
    level: Option<Scalar<'a>>,
    audit_id: Option<Scalar<'a>>,
    stage: Option<Scalar<'a>>,
    request_uri: Option<Scalar<'a>>,
    verb: Option<Scalar<'a>>,
    user: Option<Container<RawUser<'a>>>,
    impersonated_user: Option<Container<RawUser<'a>>>,
    source_ips: Option<StrList<'a>>,
    user_agent: Option<Scalar<'a>>,
    object_ref: Option<Container<RawObjectRef<'a>>>,
    response_status: Option<Container<RawStatus<'a>>>,
    request_object: Option<&'a RawValue>,
    response_object: Option<&'a RawValue>,
    request_received_timestamp: Option<Scalar<'a>>,
    stage_timestamp: Option<Scalar<'a>>,
    annotations: Option<&'a RawValue>,
    items: Option<&'a RawValue>,
    rest: Map<String, Value>,
}

impl<'de> ObjectFields<'de> for RawDoc<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: Key<'de>, map: &mut A) -> Result<(), A::Error> {
        match key.0.as_ref() {
            "kind" => set(&mut self.kind, "kind", map)?,
            "apiVersion" => set(&mut self.api_version, "apiVersion", map)?,
            "level" => set(&mut self.level, "level", map)?,
            "auditID" => set(&mut self.audit_id, "auditID", map)?,
            "stage" => set(&mut self.stage, "stage", map)?,
            "requestURI" => set(&mut self.request_uri, "requestURI", map)?,
            "verb" => set(&mut self.verb, "verb", map)?,
            "user" => set(&mut self.user, "user", map)?,
            "impersonatedUser" => set(&mut self.impersonated_user, "impersonatedUser", map)?,
            "sourceIPs" => set(&mut self.source_ips, "sourceIPs", map)?,
            "userAgent" => set(&mut self.user_agent, "userAgent", map)?,
            "objectRef" => set(&mut self.object_ref, "objectRef", map)?,
            "responseStatus" => set(&mut self.response_status, "responseStatus", map)?,
            "requestObject" => set(&mut self.request_object, "requestObject", map)?,
            "responseObject" => set(&mut self.response_object, "responseObject", map)?,
            "requestReceivedTimestamp" => set(
                &mut self.request_received_timestamp,
                "requestReceivedTimestamp",
                map,
            )?,
            "stageTimestamp" => set(&mut self.stage_timestamp, "stageTimestamp", map)?,
            "annotations" => set(&mut self.annotations, "annotations", map)?,
            "items" => set(&mut self.items, "items", map)?,
            _ => put_rest(&mut self.rest, key, map)?,
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// From the raw document to a row

/// Takes a string-typed field: the string, or `None` with the value moved to `rest`.
fn take_str<'a>(
    field: Option<Scalar<'a>>,
    rest: &mut Map<String, Value>,
    key: &str,
) -> Option<Cow<'a, str>> {
    match field? {
        Scalar::Str(s) => Some(s),
        other => {
            rest.insert(key.to_owned(), other.into_value());
            None
        }
    }
}

fn take_list<'a>(
    field: Option<StrList<'a>>,
    rest: &mut Map<String, Value>,
    key: &str,
) -> Option<Vec<Cow<'a, str>>> {
    match field? {
        StrList::List(l) => Some(l),
        StrList::Other(v) => {
            rest.insert(key.to_owned(), v);
            None
        }
    }
}

/// JSON text for a column: verbatim, unless it spans lines (pretty-printed input), when it is
/// compacted so that every stored body reads the same way.
fn json_text(raw: &RawValue) -> Cow<'_, str> {
    let s = raw.get();
    if memchr::memchr2(b'\n', b'\r', s.as_bytes()).is_some()
        && let Ok(v) = serde_json::from_str::<Value>(s)
    {
        return Cow::Owned(v.to_string());
    }
    Cow::Borrowed(s)
}

/// Inserts a nested residual object (possibly empty) under `key` when the container had keys the
/// columns do not hold, or held nothing at all (so that `"user": {}` survives).
fn nest_rest(rest: &mut Map<String, Value>, key: &str, sub: Map<String, Value>, any_typed: bool) {
    if !sub.is_empty() || !any_typed {
        rest.insert(key.to_owned(), Value::Object(sub));
    }
}

/// A timestamp field: its value, and whether the column can stand for it on the way back.
fn take_time(
    field: Option<Scalar<'_>>,
    rest: &mut Map<String, Value>,
    key: &str,
) -> (Option<Micros>, bool) {
    match field {
        None => (None, false),
        Some(Scalar::Str(s)) => match time::parse(&s) {
            Some((v, true)) => (Some(v), true),
            Some((v, false)) => {
                rest.insert(key.to_owned(), Value::String(s.into_owned()));
                (Some(v), false)
            }
            None => {
                rest.insert(key.to_owned(), Value::String(s.into_owned()));
                (None, false)
            }
        },
        Some(other) => {
            rest.insert(key.to_owned(), other.into_value());
            (None, false)
        }
    }
}

fn rest_time(rest: &Map<String, Value>, path: &[&str]) -> Option<Micros> {
    let mut v = rest.get(path[0])?;
    for p in &path[1..] {
        v = v.get(p)?;
    }
    time::parse(v.as_str()?).map(|(t, _)| t)
}

/// Reads `authorization.k8s.io/decision` and `…/reason` out of the annotations object.
type Authz<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

fn authz_annotations(raw: &str) -> Option<Authz<'_>> {
    #[derive(Default)]
    struct AuthzFields<'a>(Option<Cow<'a, str>>, Option<Cow<'a, str>>);
    impl<'de> ObjectFields<'de> for AuthzFields<'de> {
        fn field<A: MapAccess<'de>>(&mut self, key: Key<'de>, map: &mut A) -> Result<(), A::Error> {
            let v: Scalar<'de> = map.next_value()?;
            let slot = match key.0.as_ref() {
                "authorization.k8s.io/decision" => &mut self.0,
                "authorization.k8s.io/reason" => &mut self.1,
                _ => return Ok(()),
            };
            if let Scalar::Str(s) = v {
                *slot = Some(s);
            }
            Ok(())
        }
    }
    match serde_json::from_str::<Container<AuthzFields>>(raw) {
        Ok(Container::Typed(a)) => Some((a.0, a.1)),
        _ => None,
    }
}

impl<'a> RawDoc<'a> {
    fn is_event_list(&self) -> bool {
        matches!(&self.kind, Some(Scalar::Str(k)) if k == "EventList")
    }

    fn into_row(self, opts: &DecodeOptions) -> Result<EventRow<'a>, DecodeError> {
        let mut rest = self.rest;
        let mut row = EventRow::default();
        if let Some(items) = self.items {
            rest.insert(
                "items".into(),
                serde_json::from_str(items.get()).unwrap_or(Value::Null),
            );
        }
        match self.kind {
            Some(Scalar::Str(k)) if k == "Event" => row.shape_flags |= flags::KIND_EVENT,
            Some(other) => {
                rest.insert("kind".into(), other.into_value());
            }
            None => {}
        }
        row.event_api_version = take_str(self.api_version, &mut rest, "apiVersion");
        row.level = take_str(self.level, &mut rest, "level");
        row.audit_id = take_str(self.audit_id, &mut rest, "auditID");
        row.stage = take_str(self.stage, &mut rest, "stage");
        row.request_uri = take_str(self.request_uri, &mut rest, "requestURI");
        row.verb = take_str(self.verb, &mut rest, "verb");
        row.user_agent = take_str(self.user_agent, &mut rest, "userAgent");
        row.source_ips = take_list(self.source_ips, &mut rest, "sourceIPs");

        match self.user {
            None => {}
            Some(Container::Other(v)) => {
                rest.insert("user".into(), v);
            }
            Some(Container::Typed(u)) => {
                let mut sub = u.rest;
                row.user_name = take_str(u.username, &mut sub, "username");
                row.user_uid = take_str(u.uid, &mut sub, "uid");
                row.user_groups = take_list(u.groups, &mut sub, "groups");
                row.user_extra = u.extra.map(json_text);
                let any = row.user_name.is_some()
                    || row.user_uid.is_some()
                    || row.user_groups.is_some()
                    || row.user_extra.is_some();
                nest_rest(&mut rest, "user", sub, any);
            }
        }
        match self.impersonated_user {
            None => {}
            Some(Container::Other(v)) => {
                rest.insert("impersonatedUser".into(), v);
            }
            Some(Container::Typed(u)) => {
                let mut sub = u.rest;
                row.impersonated_user_name = take_str(u.username, &mut sub, "username");
                row.impersonated_user_uid = take_str(u.uid, &mut sub, "uid");
                row.impersonated_user_groups = take_list(u.groups, &mut sub, "groups");
                if let Some(extra) = u.extra {
                    sub.insert(
                        "extra".into(),
                        serde_json::from_str(extra.get()).unwrap_or(Value::Null),
                    );
                }
                let any = row.impersonated_user_name.is_some()
                    || row.impersonated_user_uid.is_some()
                    || row.impersonated_user_groups.is_some();
                nest_rest(&mut rest, "impersonatedUser", sub, any);
            }
        }
        match self.object_ref {
            None => {}
            Some(Container::Other(v)) => {
                rest.insert("objectRef".into(), v);
            }
            Some(Container::Typed(o)) => {
                let mut sub = o.rest;
                row.resource = take_str(o.resource, &mut sub, "resource");
                row.namespace = take_str(o.namespace, &mut sub, "namespace");
                row.name = take_str(o.name, &mut sub, "name");
                row.object_uid = take_str(o.uid, &mut sub, "uid");
                row.api_group = take_str(o.api_group, &mut sub, "apiGroup");
                row.api_version = take_str(o.api_version, &mut sub, "apiVersion");
                row.resource_version = take_str(o.resource_version, &mut sub, "resourceVersion");
                row.subresource = take_str(o.subresource, &mut sub, "subresource");
                let any = row.resource.is_some()
                    || row.namespace.is_some()
                    || row.name.is_some()
                    || row.object_uid.is_some()
                    || row.api_group.is_some()
                    || row.api_version.is_some()
                    || row.resource_version.is_some()
                    || row.subresource.is_some();
                nest_rest(&mut rest, "objectRef", sub, any);
            }
        }
        match self.response_status {
            None => {}
            Some(Container::Other(v)) => {
                rest.insert("responseStatus".into(), v);
            }
            Some(Container::Typed(s)) => {
                let mut sub = s.rest;
                row.response_code = match s.code {
                    None => None,
                    Some(Scalar::Int(c)) if i32::try_from(c).is_ok() => i32::try_from(c).ok(),
                    Some(other) => {
                        sub.insert("code".into(), other.into_value());
                        None
                    }
                };
                row.response_status = take_str(s.status, &mut sub, "status");
                row.response_reason = take_str(s.reason, &mut sub, "reason");
                row.response_message = take_str(s.message, &mut sub, "message");
                let any = row.response_code.is_some()
                    || row.response_status.is_some()
                    || row.response_reason.is_some()
                    || row.response_message.is_some();
                nest_rest(&mut rest, "responseStatus", sub, any);
            }
        }

        // Without a usable objectRef, the request URI says what the request was on.
        let from_uri = row
            .resource
            .is_none()
            .then(|| {
                row.request_uri
                    .as_deref()
                    .and_then(crate::redact::resource_from_uri)
            })
            .flatten();
        let by_ref = match &from_uri {
            Some((r, sub, g)) => opts.redact.rules_for(Some(r), sub.as_deref(), g.as_deref()),
            None => opts.redact.rules_for(
                row.resource.as_deref(),
                row.subresource.as_deref(),
                row.api_group.as_deref(),
            ),
        };
        let body = |raw: &'a RawValue| -> Cow<'a, str> {
            let text = json_text(raw);
            match opts.redact.redact_body(&text, &by_ref) {
                Some(r) => Cow::Owned(r),
                None => text,
            }
        };
        row.request_object = self.request_object.map(body);
        row.response_object = self.response_object.map(body);

        match self.annotations {
            None => {}
            Some(raw) => match authz_annotations(raw.get()) {
                Some((decision, reason)) => {
                    row.authz_decision = decision;
                    row.authz_reason = reason;
                    row.annotations = Some(json_text(raw));
                }
                None => {
                    rest.insert(
                        "annotations".into(),
                        serde_json::from_str(raw.get()).unwrap_or(Value::Null),
                    );
                }
            },
        }

        let (rrt, rrt_exact) = take_time(
            self.request_received_timestamp,
            &mut rest,
            "requestReceivedTimestamp",
        );
        let (st, st_exact) = take_time(self.stage_timestamp, &mut rest, "stageTimestamp");
        if !rrt_exact {
            row.shape_flags |= flags::NO_REQUEST_RECEIVED_TS;
        }
        if !st_exact {
            row.shape_flags |= flags::NO_STAGE_TS;
        }
        let v1beta1_ts = || rest_time(&rest, &["timestamp"]);
        let v1beta1_created = || rest_time(&rest, &["metadata", "creationTimestamp"]);
        row.stage_ts = st.or_else(v1beta1_created);
        let ts = rrt.or_else(v1beta1_ts).or(row.stage_ts);

        let looks_like_event = row.audit_id.is_some()
            || row.stage.is_some()
            || row.verb.is_some()
            || row.request_uri.is_some()
            || row.level.is_some();
        if !looks_like_event {
            return Err(DecodeError::NotAnEvent);
        }
        row.ts = ts.ok_or(DecodeError::NoTimestamp)?;
        if !rest.is_empty() {
            row.unmapped = Some(Value::Object(rest).to_string());
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/p/secrets/s","verb":"get","user":{"username":"jane","uid":"u1","groups":["dev","system:authenticated"],"extra":{"k":["v"]}},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl","objectRef":{"resource":"secrets","namespace":"p","name":"s","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-19T10:30:00.000000Z","stageTimestamp":"2026-03-19T10:30:00.050000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC"}}"#;

    fn one(text: &str) -> Result<EventRow<'_>, DecodeError> {
        decode_event(text, &DecodeOptions::default())
    }

    #[test]
    fn v1_event_maps_to_columns() {
        let r = one(V1).unwrap();
        assert_eq!(r.audit_id.as_deref(), Some("a1"));
        assert_eq!(r.user_groups.as_ref().map(Vec::len), Some(2));
        assert_eq!(r.user_extra.as_deref(), Some(r#"{"k":["v"]}"#));
        assert_eq!(r.resource.as_deref(), Some("secrets"));
        assert_eq!(r.response_code, Some(200));
        assert_eq!(r.authz_decision.as_deref(), Some("allow"));
        assert_eq!(r.stage_ts.map(|s| s - r.ts), Some(50_000));
        assert_eq!(
            r.unmapped.as_deref(),
            Some(r#"{"responseStatus":{"metadata":{}}}"#)
        );
        assert_eq!(r.shape_flags, flags::KIND_EVENT);
    }

    #[test]
    fn v1beta1_falls_back_to_seconds() {
        let text = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2017-09-11T19:55:05Z"},"level":"Metadata","timestamp":"2017-09-11T19:55:04Z","auditID":"x","stage":"ResponseComplete","verb":"list","user":{}}"#;
        let r = one(text).unwrap();
        assert_eq!(r.ts, time::parse_rfc3339("2017-09-11T19:55:04Z").unwrap());
        assert_eq!(r.stage_ts, time::parse_rfc3339("2017-09-11T19:55:05Z"));
        assert!(r.shape_flags & flags::NO_REQUEST_RECEIVED_TS != 0);
        let un: Value = serde_json::from_str(r.unmapped.as_deref().unwrap()).unwrap();
        assert_eq!(un["user"], serde_json::json!({}));
        assert_eq!(un["timestamp"], "2017-09-11T19:55:04Z");
    }

    #[test]
    fn wrong_types_are_kept_not_dropped() {
        let text = r#"{"auditID":"x","verb":7,"stage":null,"requestReceivedTimestamp":null,"stageTimestamp":"2026-01-01T00:00:00Z","user":"bob","responseStatus":{"code":"200"},"x-new":{"a":1}}"#;
        let r = one(text).unwrap();
        assert_eq!(r.verb, None);
        let un: Value = serde_json::from_str(r.unmapped.as_deref().unwrap()).unwrap();
        assert_eq!(un["verb"], 7);
        assert_eq!(un["stage"], Value::Null);
        assert_eq!(un["requestReceivedTimestamp"], Value::Null);
        assert_eq!(un["stageTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(un["user"], "bob");
        assert_eq!(un["responseStatus"]["code"], "200");
        assert_eq!(un["x-new"]["a"], 1);
        assert_eq!(r.ts, time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            one(&V1[..V1.len() - 20]),
            Err(DecodeError::Json(_))
        ));
        assert_eq!(one("[1,2]"), Err(DecodeError::NotAnObject("array")));
        assert_eq!(one(r#"{"hello":"world"}"#), Err(DecodeError::NotAnEvent));
        assert_eq!(
            one(r#"{"auditID":"x","verb":"get"}"#),
            Err(DecodeError::NoTimestamp)
        );
        assert!(matches!(one(&format!("{V1} x")), Err(DecodeError::Json(_))));
    }

    /// A key given twice is refused, at any depth: which value counts would be a guess, and
    /// redaction must not judge by a different one than a reader of the input.
    #[test]
    fn duplicate_keys_are_refused() {
        for text in [
            r#"{"auditID":"a","requestReceivedTimestamp":"2026-03-19T10:00:00Z","objectRef":{"resource":"secrets"},"objectRef":{"resource":"pods"}}"#,
            r#"{"auditID":"a","requestReceivedTimestamp":"2026-03-19T10:00:00Z","objectRef":{"resource":"secrets","resource":"pods"}}"#,
            r#"{"auditID":"a","requestReceivedTimestamp":"2026-03-19T10:00:00Z","requestObject":{},"requestObject":{}}"#,
            r#"{"auditID":"a","requestReceivedTimestamp":"2026-03-19T10:00:00Z","x":1,"x":2}"#,
        ] {
            let err = one(text).expect_err(text);
            assert!(err.to_string().contains("duplicate key"), "{err}");
        }
    }

    #[test]
    fn event_list_items() {
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{V1},{{"nope":1}},{V1}]}}"#
        );
        let mut got = Vec::new();
        decode_document(&list, &DecodeOptions::default(), |i, _, r| {
            got.push((i, r.is_ok()))
        })
        .unwrap();
        assert_eq!(
            got,
            vec![(Some(0), true), (Some(1), false), (Some(2), true)]
        );
    }
}
