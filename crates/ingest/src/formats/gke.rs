//! GKE: Cloud Logging `LogEntry`s whose `protoPayload` is an `AuditLog` of `serviceName: k8s.io`
//! (`resource.type: k8s_cluster`), as a sink writes them to Cloud Storage (JSON lines), as
//! `gcloud logging read --format=json` prints them (an array), or inside Pub/Sub messages
//! (`{"message": {"data": base64}, "subscription"}` from a push subscription, the same `message`
//! in each element of a pull).
//!
//! There is no Event inside: one is mapped from the entry (the mapping below), and the whole entry
//! is kept as the envelope, with its `request` and `response` bodies moved out to the body
//! columns (where redaction runs). GKE records no level or user groups; those columns stay null,
//! and controls that need them say so.
//!
//! | Event field | from the LogEntry |
//! |---|---|
//! | auditID | `operation.id`, else `insertId` |
//! | verb | the last part of `protoPayload.methodName` (`io.k8s.core.v1.pods.exec.create`) |
//! | objectRef | `resourceName` (`core/v1/namespaces/ns/pods/p/exec`): the path the apiserver served decides resource, name and subresource |
//! | stage | `operation.last`: ResponseComplete, else `operation.first`: ResponseStarted (a long-running request's two entries); else none |
//! | requestURI | built from `resourceName` (`/api/v1/namespaces/ns/pods/p/exec`; `/readyz` for a non-resource URL), without a query string |
//! | user.username | `authenticationInfo.principalEmail` |
//! | sourceIPs, userAgent | `requestMetadata.callerIp`, `.callerSuppliedUserAgent` |
//! | responseStatus | `status.code` (gRPC) as HTTP: 0 is 200 (201 for create, 101 for exec, attach and portforward, which the apiserver upgrades), 7 403, 16 401, 5 404, 6 and 10 409, 3, 9 and 11 400, 8 429, 14 503, 13, 2 and 15 500, 4 504, 12 501, 1 499; `status.message` |
//! | annotations | `labels` (the authorization and admission annotations) |
//! | authz_decision | the `authorization.k8s.io/decision` label, else `authorizationInfo[].granted` (all granted: allow) |
//! | requestObject, responseObject | `protoPayload.request`, `.response` |
//! | requestReceivedTimestamp | `timestamp` |
//! | cluster | `resource.labels.cluster_name` (project and location stay in the envelope) |

use serde_json::{Map, Value, json};

use super::{Bad, Format, Leaf, MARK, Provider, Unwrapped, envelope_error, unwrap_data};
use auditlake_model::schema::source;

pub(crate) struct Gke;

fn is_pubsub(m: &Map<String, Value>) -> bool {
    m.get("message")
        .and_then(Value::as_object)
        .is_some_and(|msg| msg.get("data").is_some_and(Value::is_string))
}

impl Provider for Gke {
    fn format(&self) -> Format {
        Format::Gke
    }

    fn recognises(&self, m: &Map<String, Value>) -> bool {
        m.get("protoPayload").is_some_and(Value::is_object) || is_pubsub(m)
    }

    fn unwrap(&self, m: Map<String, Value>, item: Option<usize>, out: &mut Vec<Unwrapped>) {
        if is_pubsub(&m) {
            let data = m["message"]["data"].as_str().unwrap_or_default().to_owned();
            let raw = || Value::Object(m.clone()).to_string();
            let wrap = |marker: Value| {
                let mut outer = m.clone();
                if let Some(Value::Object(msg)) = outer.get_mut("message") {
                    msg.insert("data".into(), marker);
                }
                Value::Object(outer)
            };
            unwrap_data(&data, "message.data", item, Format::Gke, out, raw, wrap);
            return;
        }
        out.push(entry(m, item));
    }
}

/// The subresources the apiserver answers by upgrading the connection (101).
const UPGRADED: [&str; 3] = ["exec", "attach", "portforward"];

/// HTTP status of a gRPC code (google.rpc.Code), as the apiserver would have answered.
fn http_code(grpc: i64, verb: &str, subresource: Option<&str>) -> Option<i64> {
    Some(match grpc {
        0 if subresource.is_some_and(|s| UPGRADED.contains(&s)) => 101,
        0 if verb == "create" => 201,
        0 => 200,
        1 => 499,
        2 | 13 | 15 => 500,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => return None,
    })
}

/// Whether a path segment is an API version (`v1`, `v1beta1`, `v2alpha1`).
fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && {
        let tail = &rest[digits..];
        tail.is_empty()
            || ["alpha", "beta"].iter().any(|p| {
                tail.strip_prefix(p)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    }
}

/// The verb a `methodName` names: its last part (`io.k8s.core.v1.pods.exec.create` is create,
/// `io.k8s.get`, on a non-resource URL, get).
fn method_verb(method: &str) -> Option<&str> {
    method.rsplit('.').next().filter(|v| !v.is_empty())
}

/// The subresources of a namespace itself (`namespaces/<ns>/finalize`), which a path of three
/// segments under `namespaces/` can also be (`namespaces/<ns>/pods` lists pods).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["finalize", "status"];

/// The objectRef and request URI a `resourceName` names. The path is what the apiserver served,
/// so resource, name and subresource are read from it alone (a `methodName` that says otherwise
/// does not decide which redaction rules a body gets).
fn object_ref(resource_name: &str) -> (Option<Map<String, Value>>, String) {
    let parts: Vec<&str> = resource_name.trim_start_matches('/').split('/').collect();
    if parts.len() < 3 || !is_version(parts[1]) {
        return (None, format!("/{}", resource_name.trim_start_matches('/')));
    }
    let (group, version, rest) = (parts[0], parts[1], &parts[2..]);
    let uri = if group == "core" || group.is_empty() {
        format!("/api/{version}/{}", rest.join("/"))
    } else {
        format!("/apis/{group}/{version}/{}", rest.join("/"))
    };
    let mut o = Map::new();
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && NAMESPACE_SUBRESOURCES.contains(&rest[2]));
    let (res, name, sub) = if namespaced {
        o.insert("namespace".into(), rest[1].into());
        (rest[2], rest.get(3), rest.get(4))
    } else {
        (rest[0], rest.get(1), rest.get(2))
    };
    o.insert("resource".into(), res.into());
    if let Some(n) = name {
        o.insert("name".into(), (*n).into());
    }
    if group != "core" && !group.is_empty() {
        o.insert("apiGroup".into(), group.into());
    }
    o.insert("apiVersion".into(), version.into());
    if let Some(s) = sub {
        o.insert("subresource".into(), (*s).into());
    }
    (Some(o), uri)
}

fn marker(kind: &str) -> Value {
    json!({ MARK: kind })
}

fn entry(mut e: Map<String, Value>, item: Option<usize>) -> Unwrapped {
    let bad = |e: &Map<String, Value>, error| {
        Err(Bad {
            item,
            raw: Value::Object(e.clone()).to_string(),
            error,
        })
    };
    let p = e.get("protoPayload").and_then(Value::as_object);
    let ty = p
        .and_then(|p| p.get("@type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let service = p
        .and_then(|p| p.get("serviceName"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ty.ends_with("google.cloud.audit.AuditLog") || service != "k8s.io" {
        return bad(
            &e,
            envelope_error(format!(
                "GKE: a LogEntry of type {ty:?} from service {service:?}, not a Kubernetes audit entry (an AuditLog from k8s.io)"
            )),
        );
    }
    // The bodies go to their columns only: the envelope marks their places. Taken out first, so
    // that the rest is read in place (a body is most of an entry: never copied).
    let mut request = None;
    let mut response = None;
    if let Some(Value::Object(p)) = e.get_mut("protoPayload") {
        if let Some(req) = p.remove("request") {
            request = Some(req);
            p.insert("request".into(), marker("requestObject"));
        }
        if let Some(resp) = p.remove("response") {
            response = Some(resp);
            p.insert("response".into(), marker("responseObject"));
        }
    }
    let empty = Map::new();
    let p = e
        .get("protoPayload")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let s = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let method = s(p, "methodName").unwrap_or_default();
    let verb = method_verb(&method).unwrap_or_default().to_owned();
    let mut subresource = None;

    let mut ev = Map::new();
    ev.insert("kind".into(), "Event".into());
    ev.insert("apiVersion".into(), "audit.k8s.io/v1".into());
    let audit_id = e
        .get("operation")
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .or_else(|| e.get("insertId").and_then(Value::as_str));
    if let Some(id) = audit_id {
        ev.insert("auditID".into(), id.into());
    }
    if !verb.is_empty() {
        ev.insert("verb".into(), verb.clone().into());
    }
    if let Some(rn) = s(p, "resourceName") {
        let (oref, uri) = object_ref(&rn);
        ev.insert("requestURI".into(), uri.into());
        if let Some(o) = oref {
            subresource = o
                .get("subresource")
                .and_then(Value::as_str)
                .map(str::to_owned);
            ev.insert("objectRef".into(), Value::Object(o));
        }
    }
    // One entry per request, or two for a long-running one (`first`, then `last`).
    let operation = e.get("operation");
    let flag = |k: &str| operation.and_then(|o| o.get(k)) == Some(&Value::Bool(true));
    if flag("last") {
        ev.insert("stage".into(), "ResponseComplete".into());
    } else if flag("first") {
        ev.insert("stage".into(), "ResponseStarted".into());
    }
    if let Some(user) = p
        .get("authenticationInfo")
        .and_then(|a| a.get("principalEmail"))
        .and_then(Value::as_str)
    {
        ev.insert("user".into(), json!({ "username": user }));
    }
    if let Some(m) = p.get("requestMetadata").and_then(Value::as_object) {
        if let Some(ip) = s(m, "callerIp") {
            ev.insert("sourceIPs".into(), json!([ip]));
        }
        if let Some(ua) = s(m, "callerSuppliedUserAgent") {
            ev.insert("userAgent".into(), ua.into());
        }
    }
    if let Some(st) = p.get("status").and_then(Value::as_object) {
        let grpc = st.get("code").and_then(Value::as_i64).unwrap_or(0);
        let mut rs = Map::new();
        rs.insert("metadata".into(), json!({}));
        if let Some(code) = http_code(grpc, &verb, subresource.as_deref()) {
            rs.insert("code".into(), code.into());
        }
        if grpc != 0 {
            rs.insert("status".into(), "Failure".into());
        }
        if let Some(m) = s(st, "message").filter(|m| !m.is_empty()) {
            rs.insert("message".into(), m.into());
        }
        ev.insert("responseStatus".into(), Value::Object(rs));
    }
    if let Some(ts) = e.get("timestamp").and_then(Value::as_str) {
        ev.insert("requestReceivedTimestamp".into(), ts.into());
    }
    if let Some(Value::Object(labels)) = e.get("labels")
        && labels.values().all(Value::is_string)
    {
        ev.insert("annotations".into(), Value::Object(labels.clone()));
    }
    let authz_decision = p
        .get("authorizationInfo")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .map(|a| {
            if a.iter()
                .all(|i| i.get("granted") == Some(&Value::Bool(true)))
            {
                "allow"
            } else {
                "forbid"
            }
        });
    if let Some(req) = request {
        ev.insert("requestObject".into(), req);
    }
    if let Some(resp) = response {
        ev.insert("responseObject".into(), resp);
    }
    let cluster = e
        .get("resource")
        .and_then(|r| r.get("labels"))
        .and_then(|l| l.get("cluster_name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Leaf {
        item,
        event: Value::Object(ev).to_string(),
        envelope: Some(Value::Object(e)),
        source: source::GKE,
        cluster,
        authz_decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_resource_names_map_to_the_object_ref() {
        assert_eq!(
            method_verb("io.k8s.core.v1.pods.exec.create"),
            Some("create")
        );
        assert_eq!(method_verb("io.k8s.get"), Some("get"));
        assert_eq!(method_verb(""), None);
        let (o, uri) = object_ref("core/v1/namespaces/ns/pods/p/exec");
        assert_eq!(uri, "/api/v1/namespaces/ns/pods/p/exec");
        let o = o.unwrap();
        assert_eq!(o["namespace"], "ns");
        assert_eq!(o["resource"], "pods");
        assert_eq!(o["name"], "p");
        assert_eq!(o["subresource"], "exec");
        let (o, _) = object_ref("core/v1/namespaces/ns/pods");
        assert_eq!(o.unwrap()["resource"], "pods");
        let (o, uri) = object_ref("core/v1/namespaces/ns/finalize");
        assert_eq!(uri, "/api/v1/namespaces/ns/finalize");
        let o = o.unwrap();
        assert_eq!(o["resource"], "namespaces");
        assert_eq!(o["name"], "ns");
        assert_eq!(o["subresource"], "finalize");
        assert!(!o.contains_key("namespace"));
        let (o, uri) = object_ref("rbac.authorization.k8s.io/v1/clusterrolebindings/x");
        assert_eq!(
            uri,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x"
        );
        assert_eq!(o.unwrap()["apiGroup"], "rbac.authorization.k8s.io");
        let (o, uri) = object_ref("readyz");
        assert!(o.is_none());
        assert_eq!(uri, "/readyz");
        assert!(
            is_version("v1beta1") && is_version("v2") && !is_version("vx") && !is_version("v1beta")
        );
        assert_eq!(http_code(0, "create", None), Some(201));
        assert_eq!(http_code(0, "create", Some("exec")), Some(101));
        assert_eq!(http_code(7, "get", None), Some(403));
    }
}
