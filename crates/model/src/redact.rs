//! Credentials never reach the store.
//!
//! Redaction is driven by a table of rules ([`RedactRule`]): which events or bodies a rule covers
//! (the `objectRef` resource, optionally with its subresource, or the body's own `kind`) and the
//! paths inside the body whose values are replaced by [`REDACTED`]. The built-in rules
//! ([`builtin_rules`]) cover Secrets (`data`, `stringData`, the last-applied annotation, wherever
//! they sit: a Secret, a SecretList's items, a merge patch), TokenReviews (`spec.token`, a bearer
//! token) and TokenRequests (`status.token`, a working service-account token); the config file
//! adds rules for a cluster's own resources (CRDs carry credentials too).
//!
//! It fails closed:
//! - a body of a covered event that cannot be parsed (cut short, nested past the parser's limit)
//!   is replaced whole by [`REDACTED_BODY`];
//! - a body of an event with no usable `objectRef` is judged by its `kind` (and its items' kinds);
//! - JSON-patch operations that write at or below a redacted path have their `value` redacted;
//! - rejected input ([`mask_rejected`]) is scanned tolerantly, as text that may be cut short: every
//!   value under a redacted key is masked, and text that does not parse but names a covered
//!   resource keeps only what precedes its first body.
//!
//! Keys stay, so that "which key changed" can still be answered.
//!
//! Paths are JSON pointers (`/spec/token`, `~1` for `/` and `~0` for `~` inside a key) whose
//! segments may be `*` (any key or array index) or `**` (any depth, including none).

use serde::Deserialize;
use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted by auditlake>";

/// What a body that had to be redacted but could not be parsed is replaced with (as a JSON
/// string).
pub const REDACTED_BODY: &str = "<redacted by auditlake: a body that could not be parsed>";

/// What replaces the rest of a rejected text from its first body on.
pub const REDACTED_REST: &str =
    "<rest removed by auditlake: unparseable text of a redacted resource>";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One redaction rule: the bodies it covers and the values in them that are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRule {
    /// The plural resource of `objectRef` (`secrets`), optionally with its subresource
    /// (`serviceaccounts/token`).
    #[serde(default)]
    pub resource: Option<String>,
    /// The API group of `objectRef` (`""` for the core group); any group when not given.
    #[serde(default)]
    pub group: Option<String>,
    /// The `kind` of a body (`Secret`; `SecretList` and the items of any list are covered too).
    #[serde(default)]
    pub kind: Option<String>,
    /// JSON pointers to the values to replace, with `*` and `**` segments.
    pub paths: Vec<String>,
}

impl RedactRule {
    fn covers_ref(&self, resource: &str, subresource: Option<&str>, group: Option<&str>) -> bool {
        let Some(want) = self.resource.as_deref() else {
            return false;
        };
        // Compared as the apiserver never writes them but an input could: any case, padded.
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        let res_ok = match want.split_once('/') {
            Some((r, sub)) => same(r, resource) && subresource.is_some_and(|s| same(sub, s)),
            None => same(want, resource),
        };
        res_ok
            && self
                .group
                .as_deref()
                .is_none_or(|g| g == group.unwrap_or(""))
    }

    fn covers_kind(&self, kind: &str) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| kind == k || kind.strip_suffix("List") == Some(k))
    }

    /// Checks the rule's paths; names the rule by its index in errors.
    fn validate(&self, index: usize) -> Result<(), String> {
        if self.resource.is_none() && self.kind.is_none() {
            return Err(format!(
                "redaction rule {index}: give a resource, a kind, or both"
            ));
        }
        if self.paths.is_empty() {
            return Err(format!("redaction rule {index}: no paths"));
        }
        for p in &self.paths {
            if !p.starts_with('/') || p.len() < 2 {
                return Err(format!(
                    "redaction rule {index}: path {p:?} is not a JSON pointer such as /spec/token"
                ));
            }
        }
        Ok(())
    }
}

fn rule(resource: &str, kind: &str, paths: &[&str]) -> RedactRule {
    RedactRule {
        resource: Some(resource.to_owned()),
        group: None,
        kind: Some(kind.to_owned()),
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// The rules every store starts with.
pub fn builtin_rules() -> Vec<RedactRule> {
    vec![
        rule(
            "secrets",
            "Secret",
            &[
                "/**/data/*",
                "/**/stringData/*",
                "/**/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
            ],
        ),
        rule("tokenreviews", "TokenReview", &["/**/spec/token"]),
        rule(
            "serviceaccounts/token",
            "TokenRequest",
            &["/**/status/token"],
        ),
    ]
}

/// Which bodies are redacted, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactOptions {
    /// Off only when asked for explicitly.
    pub enabled: bool,
    /// The built-in rules followed by the configured ones.
    pub rules: Vec<RedactRule>,
}

impl Default for RedactOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: builtin_rules(),
        }
    }
}

impl RedactOptions {
    /// No redaction at all.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            rules: Vec::new(),
        }
    }

    /// Adds rules (from the config file, or `--redact-resource`) after checking them.
    pub fn with_rules(mut self, rules: Vec<RedactRule>) -> Result<Self, String> {
        let base = self.rules.len();
        for (i, r) in rules.iter().enumerate() {
            r.validate(base + i)?;
        }
        self.rules.extend(rules);
        Ok(self)
    }

    /// A rule that redacts `data` and `stringData` of a resource, as for Secrets.
    pub fn secret_like(resource: &str) -> RedactRule {
        RedactRule {
            resource: Some(resource.to_owned()),
            group: None,
            kind: None,
            paths: vec!["/**/data/*".into(), "/**/stringData/*".into()],
        }
    }

    /// The indices of the rules that cover an event on `resource`.
    pub fn rules_for(
        &self,
        resource: Option<&str>,
        subresource: Option<&str>,
        group: Option<&str>,
    ) -> Vec<usize> {
        let Some(resource) = resource else {
            return Vec::new();
        };
        (0..self.rules.len())
            .filter(|&i| self.rules[i].covers_ref(resource, subresource, group))
            .collect()
    }

    /// Whether some rule covers bodies of this `kind`: a cheap test on the raw text first.
    fn may_name_covered_kind(&self, text: &str) -> bool {
        // An escaped character could spell a kind without its plain letters.
        text.contains("\\u")
            || self
                .rules
                .iter()
                .filter_map(|r| r.kind.as_deref())
                .any(|k| text.contains(k))
    }

    /// Redacts one body (JSON text) of an event whose `objectRef` matched the rules `by_ref`
    /// (empty: none did). Returns `None` when nothing was changed.
    pub fn redact_body(&self, text: &str, by_ref: &[usize]) -> Option<String> {
        if !self.enabled {
            return None;
        }
        if by_ref.is_empty() && !self.may_name_covered_kind(text) {
            return None;
        }
        let whole = || Some(Value::String(REDACTED_BODY.into()).to_string());
        // Fail closed: a body of a covered resource (or one that may be a covered kind) that
        // cannot be read, or that gives a key twice (which value counts would be a guess), is
        // not kept.
        let Ok(mut v) = parse_strict(text) else {
            return whole();
        };
        // A body that is a JSON string (double-encoded JSON, a YAML apply patch): its text cannot
        // be judged by paths, so on a covered resource, or naming a covered kind, it goes whole.
        if let Value::String(inner) = &v {
            return (!inner.is_empty()
                && (!by_ref.is_empty() || self.may_name_covered_kind(inner)))
            .then(whole)
            .flatten();
        }
        let mut changed = false;
        for &i in by_ref {
            changed |= self.apply_rule(&self.rules[i], &mut v);
        }
        changed |= self.apply_by_kind(&mut v, 0);
        changed.then(|| v.to_string())
    }

    /// Applies the rules whose kind is the value's own, and those of its items' kinds.
    fn apply_by_kind(&self, v: &mut Value, depth: usize) -> bool {
        let mut changed = false;
        if let Some(kind) = v.get("kind").and_then(Value::as_str).map(str::to_owned) {
            for r in self.rules.iter().filter(|r| r.covers_kind(&kind)) {
                changed |= self.apply_rule(r, v);
            }
        }
        // Objects inside it by their own kinds: a List's items, a watch event's `object`, any
        // wrapper. Bounded by the parser's nesting limit.
        if depth < 256 {
            for child in children_mut(v) {
                changed |= self.apply_by_kind(child, depth + 1);
            }
        }
        changed
    }

    fn apply_rule(&self, rule: &RedactRule, v: &mut Value) -> bool {
        let mut changed = false;
        for p in &rule.paths {
            let segs = pointer_segments(p);
            changed |= apply(&segs, v);
            // A JSON patch: operations writing at or below the path.
            if let Value::Array(ops) = v {
                // A move or copy into a redacted path brings a value from elsewhere in the same
                // patch: then no op keeps its value.
                let moves_in = ops.iter().any(|op| {
                    matches!(op.get("op").and_then(Value::as_str), Some("move" | "copy"))
                        && op
                            .get("path")
                            .and_then(Value::as_str)
                            .is_some_and(|p| walk_pattern(&segs, &pointer_segments(p)).is_none())
                });
                for op in ops.iter_mut() {
                    changed |= if moves_in {
                        op.get_mut("value").is_some_and(mask)
                    } else {
                        redact_patch_op(&segs, op)
                    };
                }
            }
        }
        changed
    }

    /// The key names whose values are masked in rejected text: `data`, `stringData`, `token`,
    /// and the last plain segment of every rule's paths.
    fn sensitive_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = ["data", "stringData", "token", LAST_APPLIED]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for r in &self.rules {
            for p in &r.paths {
                if let Some(last) = pointer_segments(p)
                    .into_iter()
                    .rev()
                    .find(|s| s != "*" && s != "**")
                    && !keys.contains(&last)
                {
                    keys.push(last);
                }
            }
        }
        keys
    }

    /// Words that say a text is about a covered resource or kind.
    fn covered_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        for r in &self.rules {
            if let Some(res) = r.resource.as_deref() {
                names.push(res.split('/').next().unwrap_or(res));
            }
            if let Some(k) = r.kind.as_deref() {
                names.push(k);
            }
        }
        names
    }
}

/// Parses JSON, refusing an object that gives a key twice.
fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    struct Strict(Value);
    impl<'de> serde::Deserialize<'de> for Strict {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Strict;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_bool<E>(self, b: bool) -> Result<Strict, E> {
                    Ok(Strict(Value::Bool(b)))
                }
                fn visit_i64<E>(self, n: i64) -> Result<Strict, E> {
                    Ok(Strict(Value::from(n)))
                }
                fn visit_u64<E>(self, n: u64) -> Result<Strict, E> {
                    Ok(Strict(Value::from(n)))
                }
                fn visit_f64<E>(self, n: f64) -> Result<Strict, E> {
                    Ok(Strict(Value::from(n)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Strict, E> {
                    Ok(Strict(Value::String(s.to_owned())))
                }
                fn visit_string<E>(self, s: String) -> Result<Strict, E> {
                    Ok(Strict(Value::String(s)))
                }
                fn visit_unit<E>(self) -> Result<Strict, E> {
                    Ok(Strict(Value::Null))
                }
                fn visit_none<E>(self) -> Result<Strict, E> {
                    Ok(Strict(Value::Null))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Strict, A::Error> {
                    let mut v = Vec::new();
                    while let Some(Strict(x)) = a.next_element()? {
                        v.push(x);
                    }
                    Ok(Strict(Value::Array(v)))
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Strict, A::Error> {
                    let mut m = serde_json::Map::new();
                    while let Some(k) = a.next_key::<String>()? {
                        let Strict(x) = a.next_value()?;
                        if m.insert(k.clone(), x).is_some() {
                            return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                        }
                    }
                    Ok(Strict(Value::Object(m)))
                }
            }
            d.deserialize_any(V)
        }
    }
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// The resource, subresource and API group a request URI names
/// (`/api/v1/namespaces/p/secrets/db`, `/apis/authentication.k8s.io/v1/tokenreviews`), for events
/// whose `objectRef` is missing or not an object.
pub fn resource_from_uri(uri: &str) -> Option<(String, Option<String>, Option<String>)> {
    let path = uri.split(['?', '#']).next()?;
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let group = match parts.next()? {
        "api" => {
            parts.next()?;
            None
        }
        "apis" => {
            let g = parts.next()?.to_owned();
            parts.next()?;
            Some(g)
        }
        _ => return None,
    };
    let rest: Vec<&str> = parts.collect();
    let rest = match rest.as_slice() {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let resource = (*rest.first()?).to_owned();
    let sub = rest.get(2).map(|s| (*s).to_owned());
    Some((resource, sub, group))
}

/// The segments of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
fn pointer_segments(p: &str) -> Vec<String> {
    p.split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn mask(v: &mut Value) -> bool {
    if v.as_str() == Some(REDACTED) {
        return false;
    }
    *v = Value::String(REDACTED.into());
    true
}

/// The values directly inside an object or an array; none for a scalar.
fn children_mut(v: &mut Value) -> impl Iterator<Item = &mut Value> {
    let (values, items) = match v {
        Value::Object(m) => (Some(m.values_mut()), None),
        Value::Array(a) => (None, Some(a.iter_mut())),
        _ => (None, None),
    };
    values
        .into_iter()
        .flatten()
        .chain(items.into_iter().flatten())
}

/// Replaces what `segs` names inside `v`.
fn apply(segs: &[String], v: &mut Value) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return mask(v);
    };
    match first.as_str() {
        "**" => {
            let mut changed = apply(rest, v);
            for child in children_mut(v) {
                changed |= apply(segs, child);
            }
            changed
        }
        "*" => match v {
            Value::Object(_) | Value::Array(_) => {
                let mut changed = false;
                for child in children_mut(v) {
                    changed |= apply(rest, child);
                }
                changed
            }
            Value::Null => false,
            // `data` that is a string, not a map: the whole value goes.
            _ if rest.is_empty() => mask(v),
            _ => false,
        },
        key => match v {
            Value::Object(m) => m.get_mut(key).is_some_and(|child| apply(rest, child)),
            Value::Array(items) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .is_some_and(|child| apply(rest, child)),
            _ => false,
        },
    }
}

/// The ways a pattern can continue once `path` has been walked: `None` when some prefix of
/// `path` already reaches the end of the pattern (the operation writes at or below a redacted
/// value), else the rests of the pattern still to apply inside the operation's value.
fn walk_pattern(pattern: &[String], path: &[String]) -> Option<Vec<Vec<String>>> {
    let mut out = Vec::new();
    if walk_into(pattern, path, &mut out) {
        None
    } else {
        Some(out)
    }
}

fn walk_into(pattern: &[String], path: &[String], out: &mut Vec<Vec<String>>) -> bool {
    let Some((p, prest)) = pattern.split_first() else {
        // The pattern ends at or above the path: the whole value is redacted.
        return true;
    };
    let Some((s, srest)) = path.split_first() else {
        out.push(pattern.to_vec());
        return false;
    };
    match p.as_str() {
        // Zero segments, or one more.
        "**" => walk_into(prest, path, out) || walk_into(pattern, srest, out),
        "*" => walk_into(prest, srest, out),
        key => key == s && walk_into(prest, srest, out),
    }
}

/// A JSON-patch operation (`{"op":"add","path":"/data/password","value":"..."}`).
fn redact_patch_op(pattern: &[String], op: &mut Value) -> bool {
    let Some(m) = op.as_object_mut() else {
        return false;
    };
    let Some(path) = m.get("path").and_then(Value::as_str) else {
        return false;
    };
    let segs = pointer_segments(path);
    let Some(val) = m.get_mut("value") else {
        return false;
    };
    match walk_pattern(pattern, &segs) {
        None => mask(val),
        Some(rests) => {
            let mut changed = false;
            for rest in rests {
                changed |= apply(&rest, val);
            }
            changed
        }
    }
}

/// Masks a rejected text before it is kept. Text that parses as JSON is walked: every value under
/// a redacted key is replaced by [`REDACTED`], as is the `value` of a JSON-patch operation whose
/// `path` goes through a redacted key. Other text (cut short, or not JSON at all) is scanned
/// tolerantly for the same; and if it names a covered resource or kind, everything from its first
/// body on (`requestObject`, `responseObject`) is replaced by [`REDACTED_REST`].
pub fn mask_rejected(raw: &str, opts: &RedactOptions) -> String {
    if !opts.enabled {
        return raw.to_owned();
    }
    let keys = opts.sensitive_keys();
    if let Ok(mut v) = serde_json::from_str::<Value>(raw) {
        // Written as parsed, not as it came: a key given twice keeps only the value that was
        // judged (and masked).
        mask_value_keys(&mut v, &keys);
        mask_embedded(&mut v, opts, 0);
        return v.to_string();
    }
    // Escapes could spell a key or a resource name without its letters: judge the text with
    // its `\uXXXX` escapes decoded.
    let decoded = decode_unicode_escapes(raw);
    let raw = decoded.as_str();
    let mut text = raw;
    let mut cut = false;
    if opts.covered_names().iter().any(|n| raw.contains(n)) {
        // The bodies of an Event, of a GKE LogEntry (`request`, `response`), and the same keys
        // inside a JSON string (an EKS message or AKS log in a broken envelope).
        let first_body = BODY_KEYS
            .iter()
            .flat_map(|k| [format!("\"{k}\""), format!("\\\"{k}\\\"")])
            .filter_map(|k| raw.find(&k))
            .min();
        if let Some(i) = first_body {
            text = &raw[..i];
            cut = true;
        }
    }
    let mut out = mask_keys(text, &keys, sensitive_path_anywhere(text, &keys));
    if cut {
        out.push_str(&Value::String(REDACTED_REST.into()).to_string());
    }
    out
}

/// The keys under which bodies sit, in Events and in GKE's LogEntries.
const BODY_KEYS: [&str; 4] = ["requestObject", "responseObject", "request", "response"];

/// Masks JSON held in string values (an EKS `message`, an AKS `properties.log`): key names
/// alone do not see into them.
fn mask_embedded(v: &mut Value, opts: &RedactOptions, depth: u8) {
    match v {
        Value::String(s) if depth < 4 && s.trim_start().starts_with(['{', '[']) => {
            let masked = mask_rejected_at(s, opts, depth + 1);
            *s = masked;
        }
        Value::Object(m) => m.values_mut().for_each(|v| mask_embedded(v, opts, depth)),
        Value::Array(a) => a.iter_mut().for_each(|v| mask_embedded(v, opts, depth)),
        _ => {}
    }
}

/// [`mask_rejected`] of a JSON text held in a string, `depth` strings deep.
fn mask_rejected_at(raw: &str, opts: &RedactOptions, depth: u8) -> String {
    let keys = opts.sensitive_keys();
    if let Ok(mut v) = serde_json::from_str::<Value>(raw) {
        mask_value_keys(&mut v, &keys);
        mask_embedded(&mut v, opts, depth);
        return v.to_string();
    }
    mask_rejected(raw, opts)
}

/// Whether a JSON pointer goes through one of `keys`.
fn sensitive_pointer(path: &str, keys: &[String]) -> bool {
    pointer_segments(path).iter().any(|s| keys.contains(s))
}

/// The structural form of [`mask_keys`], for rejected text that parses.
fn mask_value_keys(v: &mut Value, keys: &[String]) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            let patch_value = m
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| sensitive_pointer(p, keys));
            for (k, val) in m.iter_mut() {
                if keys.contains(k) || (patch_value && k == "value") {
                    if !val.is_null() {
                        changed |= mask(val);
                    }
                } else {
                    changed |= mask_value_keys(val, keys);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= mask_value_keys(item, keys);
            }
        }
        _ => {}
    }
    changed
}

/// A tolerant scan of JSON-ish text: a string followed by `:` is a key; the value after a
/// sensitive key (a string, an object or array up to its matching close, or a scalar) is replaced,
/// and a value cut short is replaced up to the end of the text. A `value` key after a `path` that
/// goes through a sensitive key (a JSON-patch operation) is replaced too.
fn mask_keys(text: &str, keys: &[String], every_value: bool) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    let mut patch_value = false;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let end = string_end(b, i);
        let inner = &text[i + 1..end.saturating_sub(1).max(i + 1)];
        let mut j = end;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b':' {
            i = end;
            continue;
        }
        let sensitive =
            keys.iter().any(|k| k == inner) || ((patch_value || every_value) && inner == "value");
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let vend = value_end(b, j);
        if inner == "path" {
            let p = &text[j..vend];
            patch_value = sensitive_pointer(p.trim_matches('"'), keys);
        }
        if sensitive && vend > j && &text[j..vend] != "null" {
            out.push_str(&text[copied..j]);
            out.push('"');
            out.push_str(REDACTED);
            out.push('"');
            copied = vend;
            if inner == "value" {
                patch_value = false;
            }
            i = vend;
        } else {
            // Keys inside an object value are scanned too.
            i = j.max(end);
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether a JSON-patch `path` anywhere in the text goes through a sensitive key: then, in text
/// cut short, every `value` is masked (it may come before its `path`).
fn sensitive_path_anywhere(text: &str, keys: &[String]) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("\"path\"") {
        let mut j = from + i + 6;
        while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b':') {
            j += 1;
        }
        let end = value_end(b, j);
        if sensitive_pointer(text[j..end].trim_matches('"'), keys) {
            return true;
        }
        from = end.max(from + i + 6);
    }
    false
}

/// `\uXXXX` escapes (surrogate pairs too) replaced by their characters, except those that would
/// end or escape a string (`"`, `\`) or are control characters.
fn decode_unicode_escapes(text: &str) -> String {
    if !text.contains("\\u") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let hex = |s: &str| s.get(2..6).and_then(|h| u32::from_str_radix(h, 16).ok());
        let (ch, used) = match (tail.as_bytes().get(1), hex(tail)) {
            (Some(b'u'), Some(hi)) if (0xD800..0xDC00).contains(&hi) => {
                match tail.get(6..8).filter(|p| *p == "\\u").and(hex(&tail[6..])) {
                    Some(lo) if (0xDC00..0xE000).contains(&lo) => (
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                        12,
                    ),
                    _ => (None, 6),
                }
            }
            (Some(b'u'), Some(c)) => (char::from_u32(c), 6),
            // Any other escape: kept with the character it escapes.
            (Some(_), _) => (None, 2.min(tail.len())),
            (None, _) => (None, 1),
        };
        match ch {
            Some(c) if c != '"' && c != '\\' && !c.is_control() => out.push(c),
            _ => out.push_str(&tail[..used.min(tail.len())]),
        }
        rest = &tail[used.min(tail.len())..];
    }
    out.push_str(rest);
    out
}

/// One past the closing quote of the string starting at `start`, or the end of the text.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// One past the end of the JSON value starting at `start` (tolerant: the end of the text when it
/// is cut short).
fn value_end(b: &[u8], start: usize) -> usize {
    if start >= b.len() {
        return start;
    }
    match b[start] {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        _ => {
            let mut i = start;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b'\n') {
                i += 1;
            }
            i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn red_by(v: Value, resource: &str, sub: Option<&str>) -> Value {
        let o = RedactOptions::default();
        let rules = o.rules_for(Some(resource), sub, None);
        let out = o
            .redact_body(&v.to_string(), &rules)
            .unwrap_or(v.to_string());
        serde_json::from_str(&out).unwrap()
    }

    fn red(v: Value) -> Value {
        red_by(v, "secrets", None)
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
        // `data` that is not a map goes whole.
        assert_eq!(red(json!({"data":"c2VjcmV0"}))["data"], REDACTED);
    }

    #[test]
    fn patches() {
        let p = red(
            json!([{"op":"replace","path":"/data/p","value":"c2VjcmV0"},{"op":"add","path":"/metadata/labels/x","value":"y"},{"op":"add","path":"/data","value":{"k":"djE="}},{"op":"add","path":"/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration","value":"{}"}]),
        );
        assert_eq!(p[0]["value"], REDACTED);
        assert_eq!(p[1]["value"], "y");
        assert_eq!(p[2]["value"]["k"], REDACTED);
        assert_eq!(p[3]["value"], REDACTED);
        let m = red(json!({"data":{"p":"c2VjcmV0"}}));
        assert_eq!(m["data"]["p"], REDACTED);
        let o = RedactOptions::default();
        assert!(
            o.redact_body(
                r#"{"metadata":{"name":"x"}}"#,
                &o.rules_for(Some("secrets"), None, None)
            )
            .is_none()
        );
    }

    #[test]
    fn tokens_of_token_reviews_and_token_requests() {
        let tr = red_by(
            json!({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"eyJhbGciOi.x.y"},"status":{"authenticated":true,"user":{"username":"u"}}}),
            "tokenreviews",
            None,
        );
        assert_eq!(tr["spec"]["token"], REDACTED);
        assert_eq!(tr["status"]["user"]["username"], "u");
        let req = red_by(
            json!({"kind":"TokenRequest","spec":{"audiences":["a"]},"status":{"token":"eyJ.sa.tok","expirationTimestamp":"2026-01-01T00:00:00Z"}}),
            "serviceaccounts",
            Some("token"),
        );
        assert_eq!(req["status"]["token"], REDACTED);
        assert_eq!(req["spec"]["audiences"][0], "a");
        // serviceaccounts itself is not a TokenRequest.
        let o = RedactOptions::default();
        assert!(o.rules_for(Some("serviceaccounts"), None, None).is_empty());
    }

    #[test]
    fn bodies_without_object_ref_are_judged_by_kind_and_unparseable_ones_fail_closed() {
        let o = RedactOptions::default();
        let out = o
            .redact_body(r#"{"kind":"Secret","data":{"p":"c2VjcmV0"}}"#, &[])
            .unwrap();
        assert!(!out.contains("c2VjcmV0"), "{out}");
        let list = o
            .redact_body(
                r#"{"kind":"List","items":[{"kind":"Secret","data":{"p":"c2VjcmV0"}},{"kind":"ConfigMap","data":{"c":"blue"}}]}"#,
                &[],
            )
            .unwrap();
        assert!(
            !list.contains("c2VjcmV0") && list.contains("blue"),
            "{list}"
        );
        // Escapes can spell a kind: parsed, then judged.
        let esc = o
            .redact_body(r#"{"kind":"Secr\u0065t","data":{"p":"c2VjcmV0"}}"#, &[])
            .unwrap();
        assert!(!esc.contains("c2VjcmV0"), "{esc}");
        assert!(
            o.redact_body(r#"{"kind":"ConfigMap","data":{"c":"blue"}}"#, &[])
                .is_none()
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let rules = o.rules_for(Some("secrets"), None, None);
        assert_eq!(
            o.redact_body(&deep, &rules).unwrap(),
            Value::String(REDACTED_BODY.into()).to_string()
        );
    }

    #[test]
    fn configured_rules() {
        let o = RedactOptions::default()
            .with_rules(vec![RedactRule {
                resource: Some("databases".into()),
                group: Some("db.example.com".into()),
                kind: None,
                paths: vec!["/spec/password".into()],
            }])
            .unwrap();
        let rules = o.rules_for(Some("databases"), None, Some("db.example.com"));
        let out = o
            .redact_body(r#"{"spec":{"password":"pw1","size":3}}"#, &rules)
            .unwrap();
        assert!(!out.contains("pw1") && out.contains("\"size\":3"), "{out}");
        assert!(
            o.rules_for(Some("databases"), None, Some("other.io"))
                .is_empty()
        );
        let bad = RedactOptions::default().with_rules(vec![RedactRule {
            resource: Some("x".into()),
            group: None,
            kind: None,
            paths: vec!["spec.password".into()],
        }]);
        assert!(bad.unwrap_err().contains("rule 3"));
    }

    #[test]
    fn rejected_text_is_masked_tolerantly() {
        let o = RedactOptions::default();
        // A cut-short Secret line: the rest from its first body is gone.
        let cut = r#"{"kind":"Event","objectRef":{"resource":"secrets"},"requestObject":{"data":{"p":"c2VjcmV0"#;
        let m = mask_rejected(cut, &o);
        assert!(!m.contains("c2VjcmV0") && m.contains("secrets"), "{m}");
        // Not naming a covered resource: values under sensitive keys are still masked.
        let other = r#"{"x":{"token":"tok123","data":{"k":"v1"},"ok":1},"y":"#;
        let m = mask_rejected(other, &o);
        assert!(
            !m.contains("tok123") && !m.contains("v1") && m.contains("\"ok\":1"),
            "{m}"
        );
        let plain = "not json at all: token=abc";
        assert_eq!(mask_rejected(plain, &o), plain);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        const SECRET: &str = "S3CR3T";

        /// Arbitrary JSON in which every value under a redacted key (`data`, `stringData` of a
        /// Secret, `spec.token`, a JSON-patch `value` written there) holds the marker text
        /// [`SECRET`], and no other value does.
        fn body() -> impl Strategy<Value = Value> {
            let plain = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(Value::from),
                "[a-z ]{0,8}".prop_map(Value::String),
            ];
            let secret = prop_oneof![
                "[a-z]{0,4}".prop_map(|s| Value::String(format!("{s}{SECRET}"))),
                prop::collection::vec(
                    "[a-z]{0,4}".prop_map(|s| Value::String(format!("{SECRET}{s}"))),
                    1..3
                )
                .prop_map(Value::Array),
                "[a-z]{1,4}".prop_map(|k| serde_json::json!({ k: {"deep": SECRET} })),
            ];
            let secret_map = prop::collection::btree_map("[a-z]{1,6}", secret.clone(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()));
            let tree = plain.prop_recursive(5, 48, 5, move |inner| {
                let secret_map = secret_map.clone();
                let secret = secret.clone();
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    (
                        prop::collection::btree_map("[a-z]{1,6}", inner.clone(), 0..4),
                        prop::option::of(secret_map.clone()),
                        prop::option::of(secret_map),
                        prop::option::of(secret.clone()),
                    )
                        .prop_map(|(m, data, string_data, token)| {
                            let mut m: Map<String, Value> = m.into_iter().collect();
                            // Keys that would collide with the redacted ones are renamed.
                            for k in ["data", "stringData", "spec", "token"] {
                                if let Some(v) = m.remove(k) {
                                    m.insert(format!("x{k}"), v);
                                }
                            }
                            if let Some(d) = data {
                                m.insert("data".into(), d);
                            }
                            if let Some(d) = string_data {
                                m.insert("stringData".into(), d);
                            }
                            if let Some(t) = token {
                                m.insert(
                                    "spec".into(),
                                    serde_json::json!({"token": t, "other": 1}),
                                );
                            }
                            Value::Object(m)
                        }),
                ]
            });
            // A JSON patch (a whole request body) writing secret values.
            let patch = ("[a-z]{1,6}", secret_value()).prop_map(|(k, v)| {
                serde_json::json!([
                    {"op": "add", "path": format!("/data/{k}"), "value": v},
                    {"op": "replace", "path": "/stringData", "value": {"k": SECRET}},
                    {"op": "add", "path": "/metadata/labels/x", "value": "kept"},
                ])
            });
            prop_oneof![4 => tree, 1 => patch]
        }

        fn secret_value() -> impl Strategy<Value = Value> {
            "[a-z]{0,4}".prop_map(|s| Value::String(format!("{s}{SECRET}")))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn no_value_under_a_redacted_path_survives(v in body()) {
                let o = RedactOptions::default();
                let text = v.to_string();
                let mut rules = o.rules_for(Some("secrets"), None, None);
                rules.extend(o.rules_for(Some("tokenreviews"), None, None));
                let out = o.redact_body(&text, &rules).unwrap_or(text.clone());
                prop_assert!(!out.contains(SECRET), "{} -> {}", text, out);
                // Redaction keeps the body JSON, and leaves alone what holds no secret (but for
                // a string body on a covered resource, which goes whole: its text has no paths).
                let parsed: Value = serde_json::from_str(&out).unwrap();
                if !text.contains(SECRET) && v.as_str().is_none_or(str::is_empty) {
                    prop_assert_eq!(parsed, v);
                }
            }

            #[test]
            fn rejected_text_cut_anywhere_keeps_no_secret(v in body(), cut in 0usize..4096) {
                let o = RedactOptions::default();
                let text = serde_json::json!({"kind": "Event", "objectRef": {"resource": "configmaps"}, "requestObject": v}).to_string();
                let cut = text.char_indices().map(|(i, _)| i).take_while(|&i| i <= cut).last().unwrap_or(0);
                let raw = &text[..cut.max(1).min(text.len())];
                let masked = mask_rejected(raw, &o);
                // A secret value is masked whole, or cut so short that its marker text is gone.
                prop_assert!(!masked.contains(SECRET), "{} -> {}", raw, masked);
            }
        }
    }

    #[test]
    fn rejected_envelopes_are_masked_inside_their_json_strings() {
        let opts = RedactOptions::default();
        let event = r#"{"auditID":"a","verb":"create","objectRef":{"resource":"secrets"},"requestObject":{"kind":"Secret","data":{"password":"PLANTED-1"}}}"#;
        // A whole event in a string (an AKS log of another category), and one cut short (an
        // EKS message CloudWatch truncated).
        let whole =
            serde_json::json!({"category": "guard", "properties": {"log": event}}).to_string();
        let cut = serde_json::json!({"logEvents": [{"message": format!("{}[Truncated...]", &event[..event.len() - 5])}]}).to_string();
        for raw in [whole, cut] {
            let masked = mask_rejected(&raw, &opts);
            assert!(!masked.contains("PLANTED"), "{masked}");
        }
        // A GKE entry that does not parse is cut at its first body, `request`.
        let gke = r#"{"protoPayload":{"resourceName":"core/v1/namespaces/p/secrets/s","request":"stringData:\n  k: PLANTED-2","x":[[["#;
        let masked = mask_rejected(gke, &opts);
        assert!(!masked.contains("PLANTED"), "{masked}");
    }
}
