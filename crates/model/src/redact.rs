//! Secret values never reach the store.
//!
//! For events on the configured resources (`secrets` by default), every value of a `data` or
//! `stringData` map in the request and response bodies is replaced by [`REDACTED`], wherever it
//! sits (a Secret, a SecretList's items, a strategic-merge patch), as are JSON-patch operations
//! that write below `/data` or `/stringData`, and the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, which holds a whole copy of the object. Keys stay, so that "which key changed" can
//! still be answered.

use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted by auditlake>";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Which events have their bodies redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactOptions {
    /// Off only when asked for explicitly.
    pub enabled: bool,
    /// Plural resource names (`objectRef.resource`) whose bodies are redacted.
    pub resources: Vec<String>,
}

impl Default for RedactOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            resources: vec!["secrets".to_owned()],
        }
    }
}

impl RedactOptions {
    /// No redaction at all.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            resources: Vec::new(),
        }
    }

    /// Whether bodies of an event on `resource` are redacted. Bodies of events without an
    /// `objectRef` are checked too (their `kind` decides, see [`redact_body`]).
    pub fn applies_to(&self, resource: Option<&str>) -> bool {
        self.enabled
            && match resource {
                Some(r) => self.resources.iter().any(|x| x == r),
                None => false,
            }
    }
}

/// Redacts one body (JSON text). Returns `None` when nothing was changed.
pub fn redact_body(text: &str, _opts: &RedactOptions) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    if redact_value(&mut v) {
        Some(v.to_string())
    } else {
        None
    }
}

fn redact_map_values(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for val in m.values_mut() {
                if *val != Value::String(REDACTED.into()) {
                    *val = Value::String(REDACTED.into());
                    changed = true;
                }
            }
        }
        Value::Null => {}
        other => {
            *other = Value::String(REDACTED.into());
            changed = true;
        }
    }
    changed
}

/// Walks a body; returns whether anything was replaced.
fn redact_value(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                changed |= match k.as_str() {
                    "data" | "stringData" => redact_map_values(val),
                    LAST_APPLIED if val.is_string() => {
                        *val = Value::String(REDACTED.into());
                        true
                    }
                    _ => redact_value(val),
                };
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                changed |= redact_patch_op(item) || redact_value(item);
            }
        }
        _ => {}
    }
    changed
}

/// A JSON-patch operation (`{"op":"add","path":"/data/password","value":"..."}`).
fn redact_patch_op(op: &mut Value) -> bool {
    let Some(m) = op.as_object_mut() else {
        return false;
    };
    let writes_secret = m.get("path").and_then(Value::as_str).is_some_and(|p| {
        p == "/data"
            || p == "/stringData"
            || p.starts_with("/data/")
            || p.starts_with("/stringData/")
            || p.contains(&LAST_APPLIED.replace('/', "~1"))
    });
    match m.get_mut("value") {
        Some(val) if writes_secret => {
            if val.is_object() {
                redact_map_values(val)
            } else {
                *val = Value::String(REDACTED.into());
                true
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn red(v: Value) -> Value {
        let out = redact_body(&v.to_string(), &RedactOptions::default()).unwrap_or(v.to_string());
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn secret_and_list() {
        let s = json!({"kind":"Secret","metadata":{"name":"db","annotations":{LAST_APPLIED:"{\"data\":{\"p\":\"aHVudGVyMg==\"}}"}},"data":{"p":"aHVudGVyMg=="},"stringData":{"q":"hunter2"}});
        let r = red(s);
        assert_eq!(r["data"]["p"], REDACTED);
        assert_eq!(r["stringData"]["q"], REDACTED);
        assert_eq!(r["metadata"]["annotations"][LAST_APPLIED], REDACTED);
        assert_eq!(r["metadata"]["name"], "db");
        let l = red(json!({"kind":"SecretList","items":[{"data":{"a":"b"}},{"data":{"c":"d"}}]}));
        assert_eq!(l["items"][1]["data"]["c"], REDACTED);
    }

    #[test]
    fn patches() {
        let p = red(
            json!([{"op":"replace","path":"/data/p","value":"c2VjcmV0"},{"op":"add","path":"/metadata/labels/x","value":"y"}]),
        );
        assert_eq!(p[0]["value"], REDACTED);
        assert_eq!(p[1]["value"], "y");
        let m = red(json!({"data":{"p":"c2VjcmV0"}}));
        assert_eq!(m["data"]["p"], REDACTED);
        assert!(redact_body(r#"{"metadata":{"name":"x"}}"#, &RedactOptions::default()).is_none());
    }
}
