//! One API request as the audit filter sees it ([`Req`]), and its rendering into audit.k8s.io/v1
//! `Event` JSON lines, one per stage, in the field order of the apiserver's encoder.

use std::borrow::Cow;

use rand::Rng;
use rand::rngs::SmallRng;

use crate::fmt::{self, MS};
use crate::world::World;

/// An API resource: what `objectRef` and the request path are built from.
pub(crate) struct Res {
    pub resource: &'static str,
    /// API group; `""` is the core group (omitted from `objectRef`).
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
}

macro_rules! res {
    ($id:ident, $r:literal, $g:literal, $v:literal, $k:literal, $ns:literal) => {
        #[doc = concat!("`", $k, "` (", $r, ")")]
        pub(crate) static $id: Res = Res {
            resource: $r,
            group: $g,
            version: $v,
            namespaced: $ns,
        };
    };
}

res!(PODS, "pods", "", "v1", "Pod", true);
res!(NODES, "nodes", "", "v1", "Node", false);
res!(NAMESPACES, "namespaces", "", "v1", "Namespace", false);
res!(CONFIGMAPS, "configmaps", "", "v1", "ConfigMap", true);
res!(SECRETS, "secrets", "", "v1", "Secret", true);
res!(SERVICES, "services", "", "v1", "Service", true);
res!(EVENTS, "events", "", "v1", "Event", true);
res!(
    SERVICEACCOUNTS,
    "serviceaccounts",
    "",
    "v1",
    "ServiceAccount",
    true
);
res!(
    PVCS,
    "persistentvolumeclaims",
    "",
    "v1",
    "PersistentVolumeClaim",
    true
);
res!(
    ENDPOINTSLICES,
    "endpointslices",
    "discovery.k8s.io",
    "v1",
    "EndpointSlice",
    true
);
res!(DEPLOYMENTS, "deployments", "apps", "v1", "Deployment", true);
res!(REPLICASETS, "replicasets", "apps", "v1", "ReplicaSet", true);
res!(
    STATEFULSETS,
    "statefulsets",
    "apps",
    "v1",
    "StatefulSet",
    true
);
res!(DAEMONSETS, "daemonsets", "apps", "v1", "DaemonSet", true);
res!(JOBS, "jobs", "batch", "v1", "Job", true);
res!(CRONJOBS, "cronjobs", "batch", "v1", "CronJob", true);
res!(
    HPAS,
    "horizontalpodautoscalers",
    "autoscaling",
    "v2",
    "HorizontalPodAutoscaler",
    true
);
res!(
    INGRESSES,
    "ingresses",
    "networking.k8s.io",
    "v1",
    "Ingress",
    true
);
res!(LEASES, "leases", "coordination.k8s.io", "v1", "Lease", true);
res!(
    ROLES,
    "roles",
    "rbac.authorization.k8s.io",
    "v1",
    "Role",
    true
);
res!(
    ROLEBINDINGS,
    "rolebindings",
    "rbac.authorization.k8s.io",
    "v1",
    "RoleBinding",
    true
);
res!(
    CLUSTERROLES,
    "clusterroles",
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRole",
    false
);
res!(
    CLUSTERROLEBINDINGS,
    "clusterrolebindings",
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRoleBinding",
    false
);
res!(
    CERTIFICATES,
    "certificates",
    "cert-manager.io",
    "v1",
    "Certificate",
    true
);
res!(
    APPLICATIONS,
    "applications",
    "argoproj.io",
    "v1alpha1",
    "Application",
    true
);

/// Audit level of the policy rule that matched the request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Level {
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// Audit stage of one emitted event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
        }
    }
}

/// How the request ended; failures are rendered as the `metav1.Status` the apiserver returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    /// Success with this HTTP code (`{"metadata":{},"code":N}`).
    Ok(u16),
    /// Denied by the authorizer (403), with the authorizer's exact message.
    Forbidden,
    /// 404 on a named object.
    NotFound,
    /// 409 optimistic-concurrency conflict on update.
    Conflict,
    /// 409 on create of an existing name.
    AlreadyExists,
    /// Failed authentication (401) with this message.
    Unauthorized(&'static str),
}

/// Which stages a request produces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Shape {
    /// `ResponseComplete` only.
    Normal,
    /// Long-running (watch, exec, attach, portforward, log): `ResponseStarted` with `code`, then
    /// `ResponseComplete` `duration` microseconds later.
    LongRunning { code: u16, duration: i64 },
    /// Failed authentication: exactly one `ResponseStarted` event with code 401.
    FailedAuthn,
}

/// The `objectRef` of a resource request.
pub(crate) struct ObjRef<'w> {
    pub res: &'static Res,
    pub namespace: Option<&'w str>,
    pub name: Option<Cow<'w, str>>,
    pub uid: Option<u128>,
    pub resource_version: Option<u64>,
    pub subresource: Option<&'static str>,
}

/// One API request, built by a profile; rendered into one to three events.
pub(crate) struct Req<'w> {
    pub level: Level,
    pub audit_id: u128,
    pub verb: &'static str,
    pub uri: String,
    /// Index into [`World::ids`].
    pub user: usize,
    /// Rendered `impersonatedUser` object and the impersonated username (for messages).
    pub impersonated: Option<(String, String)>,
    /// Pre-rendered JSON array overriding the identity's usual source IPs.
    pub source_ips: Option<&'w str>,
    /// Overrides the identity's usual user agent.
    pub user_agent: Option<&'w str>,
    pub obj: Option<ObjRef<'w>>,
    pub outcome: Outcome,
    /// Raw JSON of the request body (level >= Request).
    pub request_object: Option<String>,
    /// Raw JSON of the response body (level RequestResponse).
    pub response_object: Option<String>,
    /// Authorization reason on allow; `None` means the identity's default.
    pub reason: Option<Cow<'w, str>>,
    /// Extra annotations (admission plugins and the like).
    pub annotations: Vec<(&'static str, Cow<'w, str>)>,
    pub received: i64,
    /// Time until the response is written (`ResponseComplete`, or `ResponseStarted` when long-running).
    pub latency: i64,
    pub shape: Shape,
    /// Whether the policy also logs the `RequestReceived` stage for this request.
    pub request_received: bool,
}

impl<'w> Req<'w> {
    /// A request by identity `user` at time `t`, to be completed with the builder methods.
    pub fn new(user: usize, verb: &'static str, t: i64) -> Self {
        Req {
            level: Level::Metadata,
            audit_id: 0,
            verb,
            uri: String::new(),
            user,
            impersonated: None,
            source_ips: None,
            user_agent: None,
            obj: None,
            outcome: Outcome::Ok(200),
            request_object: None,
            response_object: None,
            reason: None,
            annotations: Vec::new(),
            received: t,
            latency: 2 * MS,
            shape: Shape::Normal,
            request_received: false,
        }
    }

    /// Sets path and `objectRef` for a resource request.
    pub fn resource(
        mut self,
        res: &'static Res,
        namespace: Option<&'w str>,
        name: Option<Cow<'w, str>>,
        subresource: Option<&'static str>,
    ) -> Self {
        let mut uri = String::with_capacity(96);
        if res.group.is_empty() {
            uri.push_str("/api/");
        } else {
            uri.push_str("/apis/");
            uri.push_str(res.group);
            uri.push('/');
        }
        uri.push_str(res.version);
        // A namespace object's own namespace is itself, but its path is cluster-scoped.
        let ns = if res.namespaced { namespace } else { None };
        if let Some(ns) = ns {
            uri.push_str("/namespaces/");
            uri.push_str(ns);
        }
        uri.push('/');
        uri.push_str(res.resource);
        if let Some(n) = &name {
            uri.push('/');
            uri.push_str(n);
            if let Some(sub) = subresource {
                uri.push('/');
                uri.push_str(sub);
            }
        }
        self.uri = uri;
        self.obj = Some(ObjRef {
            res,
            namespace,
            name,
            uid: None,
            resource_version: None,
            subresource,
        });
        if self.verb == "create" {
            self.outcome = Outcome::Ok(201);
        }
        self
    }

    /// Resource request whose `objectRef.name` comes from a `fieldSelector=metadata.name=` (watch/list).
    pub fn selected(mut self, name: Cow<'w, str>) -> Self {
        if let Some(obj) = &mut self.obj {
            obj.name = Some(name);
        }
        self
    }

    /// Sets path for a non-resource request (no `objectRef`).
    pub fn path(mut self, path: &str) -> Self {
        self.uri = path.to_string();
        self
    }

    /// Appends a raw query string.
    pub fn query(mut self, q: &str) -> Self {
        self.uri.push('?');
        self.uri.push_str(q);
        self
    }

    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn reason(mut self, reason: impl Into<Cow<'w, str>>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn ua(mut self, ua: &'w str) -> Self {
        self.user_agent = Some(ua);
        self
    }

    pub fn ips(mut self, ips: &'w str) -> Self {
        self.source_ips = Some(ips);
        self
    }

    pub fn uid_rv(mut self, uid: Option<u128>, rv: Option<u64>) -> Self {
        if let Some(obj) = &mut self.obj {
            obj.uid = uid;
            obj.resource_version = rv;
        }
        self
    }

    pub fn annotate(mut self, key: &'static str, value: impl Into<Cow<'w, str>>) -> Self {
        self.annotations.push((key, value.into()));
        self
    }

    pub fn bodies(mut self, request: Option<String>, response: Option<String>) -> Self {
        self.request_object = request;
        self.response_object = response;
        self
    }

    /// Latency drawn from a skewed distribution between `lo_ms` and `hi_ms`; occasionally
    /// (0.3 %) a slow request of 0.5–3 s, which gets `apiserver.latency.k8s.io/*` annotations.
    pub fn lat(mut self, rng: &mut SmallRng, lo_ms: f64, hi_ms: f64) -> Self {
        let x: f64 = rng.random();
        let ms = if rng.random_bool(0.003) {
            500.0 + 2500.0 * x * x
        } else {
            lo_ms + (hi_ms - lo_ms) * x * x * x
        };
        self.latency = (ms * 1000.0) as i64 + rng.random_range(0..MS);
        self
    }

    /// Makes the request long-running: `ResponseStarted` with `code`, completing after `duration`.
    pub fn long_running(mut self, code: u16, duration: i64) -> Self {
        self.shape = Shape::LongRunning { code, duration };
        self
    }

    /// Number of events (lines) this request produces.
    pub fn lines(&self) -> u64 {
        let rr = u64::from(self.request_received);
        match self.shape {
            Shape::FailedAuthn => 1,
            Shape::Normal => 1 + rr,
            Shape::LongRunning { .. } => 2 + rr,
        }
    }

    /// Shortens latency and duration so that every stage happens before `max`.
    pub fn clamp_to(&mut self, max: i64) {
        let room = (max - self.received).max(0);
        self.latency = self.latency.clamp(0, room);
        if let Shape::LongRunning { code, duration } = self.shape {
            self.shape = Shape::LongRunning {
                code,
                duration: duration.clamp(0, room - self.latency),
            };
        }
    }

    /// The (stage, stageTimestamp) pairs this request produces, in order.
    pub fn stages(&self, rr_delay: i64) -> ([(Stage, i64); 3], usize) {
        let mut out = [(Stage::ResponseComplete, 0); 3];
        let mut n = 0;
        let done = self.received + self.latency;
        if self.request_received && self.shape != Shape::FailedAuthn {
            out[n] = (
                Stage::RequestReceived,
                self.received + rr_delay.min(self.latency),
            );
            n += 1;
        }
        match self.shape {
            Shape::FailedAuthn => {
                out[n] = (Stage::ResponseStarted, done);
                n += 1;
            }
            Shape::Normal => {
                out[n] = (Stage::ResponseComplete, done);
                n += 1;
            }
            Shape::LongRunning { duration, .. } => {
                out[n] = (Stage::ResponseStarted, done);
                out[n + 1] = (Stage::ResponseComplete, done + duration);
                n += 2;
            }
        }
        (out, n)
    }

    fn effective_username<'a>(&'a self, w: &'a World) -> &'a str {
        match &self.impersonated {
            Some((_, name)) => name,
            None => &w.ids[self.user].username,
        }
    }

    /// Renders the event for `stage` (ending in `\n`) onto `buf`.
    pub fn render(&self, w: &World, stage: Stage, stage_ts: i64, buf: &mut Vec<u8>) {
        let id = &w.ids[self.user];
        let after_authz = stage != Stage::RequestReceived;
        buf.extend_from_slice(br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":""#);
        buf.extend_from_slice(self.level.as_str().as_bytes());
        buf.extend_from_slice(br#"","auditID":""#);
        fmt::push_uuid(buf, self.audit_id);
        buf.extend_from_slice(br#"","stage":""#);
        buf.extend_from_slice(stage.as_str().as_bytes());
        buf.extend_from_slice(br#"","requestURI":"#);
        fmt::push_json_str(buf, &self.uri);
        buf.extend_from_slice(br#","verb":""#);
        buf.extend_from_slice(self.verb.as_bytes());
        buf.extend_from_slice(br#"","user":"#);
        id.push_user(buf, self.received);
        // Impersonation is resolved after the RequestReceived event has been emitted.
        if let (Some((json, _)), true) = (&self.impersonated, after_authz) {
            buf.extend_from_slice(br#","impersonatedUser":"#);
            buf.extend_from_slice(json.as_bytes());
        }
        buf.extend_from_slice(br#","sourceIPs":"#);
        buf.extend_from_slice(self.source_ips.unwrap_or(&id.source_ips).as_bytes());
        buf.extend_from_slice(br#","userAgent":"#);
        fmt::push_json_str(buf, self.user_agent.unwrap_or(&id.user_agent));
        if let Some(obj) = &self.obj {
            self.render_obj_ref(obj, stage, buf);
        }
        if stage != Stage::RequestReceived {
            buf.extend_from_slice(br#","responseStatus":"#);
            self.render_status(w, buf);
        }
        if stage == Stage::ResponseComplete {
            if let (Some(body), true) = (&self.request_object, self.level >= Level::Request) {
                buf.extend_from_slice(br#","requestObject":"#);
                buf.extend_from_slice(body.as_bytes());
            }
            if let (Some(body), true) =
                (&self.response_object, self.level == Level::RequestResponse)
            {
                buf.extend_from_slice(br#","responseObject":"#);
                buf.extend_from_slice(body.as_bytes());
            }
        }
        buf.extend_from_slice(br#","requestReceivedTimestamp":""#);
        fmt::push_micro_time(buf, self.received);
        buf.extend_from_slice(br#"","stageTimestamp":""#);
        fmt::push_micro_time(buf, stage_ts);
        buf.push(b'"');
        if after_authz && self.shape != Shape::FailedAuthn {
            self.render_annotations(id.reason.as_str(), stage, buf);
        }
        buf.extend_from_slice(b"}\n");
    }

    fn render_obj_ref(&self, obj: &ObjRef<'_>, stage: Stage, buf: &mut Vec<u8>) {
        buf.extend_from_slice(br#","objectRef":{"resource":""#);
        buf.extend_from_slice(obj.res.resource.as_bytes());
        buf.push(b'"');
        if let Some(ns) = obj.namespace {
            buf.extend_from_slice(br#","namespace":"#);
            fmt::push_json_str(buf, ns);
        }
        if let Some(name) = &obj.name {
            buf.extend_from_slice(br#","name":"#);
            fmt::push_json_str(buf, name);
        }
        // uid and resourceVersion are back-filled from the decoded body, after RequestReceived.
        let decoded = stage != Stage::RequestReceived;
        if let (Some(uid), true) = (obj.uid, decoded) {
            buf.extend_from_slice(br#","uid":""#);
            fmt::push_uuid(buf, uid);
            buf.push(b'"');
        }
        if !obj.res.group.is_empty() {
            buf.extend_from_slice(br#","apiGroup":""#);
            buf.extend_from_slice(obj.res.group.as_bytes());
            buf.push(b'"');
        }
        buf.extend_from_slice(br#","apiVersion":""#);
        buf.extend_from_slice(obj.res.version.as_bytes());
        buf.push(b'"');
        if let (Some(rv), true) = (obj.resource_version, decoded) {
            buf.extend_from_slice(br#","resourceVersion":""#);
            fmt::push_u64(buf, rv);
            buf.push(b'"');
        }
        if let Some(sub) = obj.subresource {
            buf.extend_from_slice(br#","subresource":""#);
            buf.extend_from_slice(sub.as_bytes());
            buf.push(b'"');
        }
        buf.push(b'}');
    }

    fn render_status(&self, w: &World, buf: &mut Vec<u8>) {
        let (code, reason) = match self.outcome {
            Outcome::Ok(code) => {
                // A hijacked (exec/attach/portforward) connection keeps its faked 101 to the end.
                let code = match self.shape {
                    Shape::LongRunning { code, .. } => code,
                    _ => code,
                };
                buf.extend_from_slice(br#"{"metadata":{},"code":"#);
                fmt::push_u64(buf, u64::from(code));
                buf.push(b'}');
                return;
            }
            Outcome::Unauthorized(msg) => {
                buf.extend_from_slice(br#"{"metadata":{},"message":"#);
                fmt::push_json_str(buf, msg);
                buf.extend_from_slice(br#","code":401}"#);
                return;
            }
            Outcome::Forbidden => (403, "Forbidden"),
            Outcome::NotFound => (404, "NotFound"),
            Outcome::Conflict => (409, "Conflict"),
            Outcome::AlreadyExists => (409, "AlreadyExists"),
        };
        let obj = self.obj.as_ref();
        let name = obj.and_then(|o| o.name.as_deref()).unwrap_or("");
        let group = obj.map_or("", |o| o.res.group);
        let resource = obj.map_or("", |o| o.res.resource);
        // `qualifiedResource.String()`: "deployments.apps", "pods".
        let mut qualified = String::with_capacity(resource.len() + group.len() + 1);
        qualified.push_str(resource);
        if !group.is_empty() {
            qualified.push('.');
            qualified.push_str(group);
        }
        let message = match self.outcome {
            Outcome::Forbidden => {
                let user = self.effective_username(w);
                let what = match obj {
                    None => {
                        let path = self.uri.split('?').next().unwrap_or("");
                        format!("User {user:?} cannot {} path {path:?}", self.verb)
                    }
                    Some(o) => {
                        let mut r = o.res.resource.to_string();
                        if let Some(sub) = o.subresource {
                            r.push('/');
                            r.push_str(sub);
                        }
                        match o.namespace.filter(|_| o.res.namespaced) {
                            Some(ns) => format!(
                                "User {user:?} cannot {} resource {r:?} in API group {group:?} in the namespace {ns:?}",
                                self.verb
                            ),
                            None => format!(
                                "User {user:?} cannot {} resource {r:?} in API group {group:?} at the cluster scope",
                                self.verb
                            ),
                        }
                    }
                };
                if obj.is_none() {
                    format!("forbidden: {what}")
                } else if name.is_empty() {
                    format!("{qualified} is forbidden: {what}")
                } else {
                    format!("{qualified} {name:?} is forbidden: {what}")
                }
            }
            Outcome::NotFound => format!("{qualified} {name:?} not found"),
            Outcome::Conflict => format!(
                "Operation cannot be fulfilled on {qualified} {name:?}: the object has been modified; please apply your changes to the latest version and try again"
            ),
            _ => format!("{qualified} {name:?} already exists"),
        };
        buf.extend_from_slice(br#"{"metadata":{},"status":"Failure","message":"#);
        fmt::push_json_str(buf, &message);
        buf.extend_from_slice(br#","reason":""#);
        buf.extend_from_slice(reason.as_bytes());
        buf.extend_from_slice(br#"","details":{"#);
        let mut first = true;
        for (key, value) in [("name", name), ("group", group), ("kind", resource)] {
            if value.is_empty() {
                continue;
            }
            if !first {
                buf.push(b',');
            }
            first = false;
            fmt::push_json_str(buf, key);
            buf.push(b':');
            fmt::push_json_str(buf, value);
        }
        buf.extend_from_slice(br#"},"code":"#);
        fmt::push_u64(buf, code);
        buf.push(b'}');
    }

    fn render_annotations(&self, default_reason: &str, stage: Stage, buf: &mut Vec<u8>) {
        let allowed = !matches!(self.outcome, Outcome::Forbidden | Outcome::Unauthorized(_));
        let reason = if allowed {
            self.reason.as_deref().unwrap_or(default_reason)
        } else {
            ""
        };
        // The latency trackers are only written into the event just before ResponseComplete,
        // and only when the request took longer than 500 ms.
        let slow = stage == Stage::ResponseComplete
            && self.shape == Shape::Normal
            && self.latency > 500 * MS;
        let lat: [String; 4] = if slow {
            let total = self.latency;
            let etcd = total * 7 / 10 + (self.audit_id % 1000) as i64;
            [
                fmt::go_duration(etcd),
                fmt::go_duration(total / 40 + 37),
                fmt::go_duration(total / 25 + 113),
                fmt::go_duration(total),
            ]
        } else {
            Default::default()
        };
        let mut ann: [(&str, &str); 16] = [("", ""); 16];
        let mut n = 0;
        ann[n] = (
            "authorization.k8s.io/decision",
            if allowed { "allow" } else { "forbid" },
        );
        n += 1;
        ann[n] = ("authorization.k8s.io/reason", reason);
        n += 1;
        if slow {
            for (key, value) in [
                ("apiserver.latency.k8s.io/etcd", &lat[0]),
                ("apiserver.latency.k8s.io/response-write", &lat[1]),
                (
                    "apiserver.latency.k8s.io/serialize-response-object",
                    &lat[2],
                ),
                ("apiserver.latency.k8s.io/total", &lat[3]),
            ] {
                ann[n] = (key, value.as_str());
                n += 1;
            }
        }
        // Admission annotations only exist on requests that passed authorization.
        if allowed {
            for (key, value) in &self.annotations {
                if n < ann.len() {
                    ann[n] = (key, value);
                    n += 1;
                }
            }
        }
        // Go marshals map[string]string with sorted keys.
        let ann = &mut ann[..n];
        ann.sort_unstable_by(|a, b| a.0.cmp(b.0));
        buf.extend_from_slice(br#","annotations":{"#);
        for (i, (key, value)) in ann.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            fmt::push_json_str(buf, key);
            buf.push(b':');
            fmt::push_json_str(buf, value);
        }
        buf.push(b'}');
    }
}
