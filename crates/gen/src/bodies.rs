//! Request and response bodies (`requestObject` / `responseObject`): compact JSON of the objects
//! the apiserver would have decoded or returned.
//!
//! All strings interpolated here come from the world's own tables (names, images, timestamps), which
//! never contain characters that need JSON escaping.

use crate::fmt::{micro_time_str as mts, time_str as ts, uuid_str as u};
use crate::world::{Deployment, Namespace, Pod, World};

/// Fields of a Lease object.
pub(crate) struct LeaseBody<'a> {
    pub ns: &'a str,
    pub name: &'a str,
    pub uid: u128,
    pub rv: u64,
    pub created: i64,
    pub holder: &'a str,
    pub duration_s: u32,
    /// `(acquireTime, leaseTransitions)` for leader-election leases.
    pub acquired: Option<i64>,
    pub renew: i64,
    /// Time of the last write, shown in managedFields.
    pub written: i64,
    pub manager: &'a str,
    /// `(node name, node uid)` owning a node lease.
    pub owner: Option<(&'a str, u128)>,
}

impl LeaseBody<'_> {
    /// The Lease as JSON (the khi sample shows the exact shape).
    pub fn render(&self) -> String {
        let owner = match self.owner {
            Some((name, uid)) => format!(
                r#","ownerReferences":[{{"apiVersion":"v1","kind":"Node","name":"{name}","uid":"{}"}}]"#,
                u(uid)
            ),
            None => String::new(),
        };
        let owner_fields = match self.owner {
            Some((_, uid)) => format!(
                r#""f:metadata":{{"f:ownerReferences":{{".":{{}},"k:{{\"uid\":\"{}\"}}":{{}}}}}},"#,
                u(uid)
            ),
            None => String::new(),
        };
        let (acquire_field, acquire, transitions) = match self.acquired {
            Some(t) => (
                r#""f:acquireTime":{},"#,
                format!(r#","acquireTime":"{}""#, mts(t)),
                r#","leaseTransitions":0"#,
            ),
            None => ("", String::new(), ""),
        };
        let transitions_field = if self.acquired.is_some() {
            r#","f:leaseTransitions":{}"#
        } else {
            ""
        };
        format!(
            r#"{{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{{"name":"{name}","namespace":"{ns}","uid":"{uid}","resourceVersion":"{rv}","creationTimestamp":"{created}"{owner},"managedFields":[{{"manager":"{manager}","operation":"Update","apiVersion":"coordination.k8s.io/v1","time":"{written}","fieldsType":"FieldsV1","fieldsV1":{{{owner_fields}"f:spec":{{{acquire_field}"f:holderIdentity":{{}},"f:leaseDurationSeconds":{{}}{transitions_field},"f:renewTime":{{}}}}}}}}]}},"spec":{{"holderIdentity":"{holder}","leaseDurationSeconds":{duration}{acquire},"renewTime":"{renew}"{transitions}}}}}"#,
            name = self.name,
            ns = self.ns,
            uid = u(self.uid),
            rv = self.rv,
            created = ts(self.created),
            manager = self.manager,
            written = ts(self.written),
            holder = self.holder,
            duration = self.duration_s,
            renew = mts(self.renew),
        )
    }
}

/// Strategic-merge patch a kubelet sends to `pods/<name>/status`.
pub(crate) fn pod_status_patch(
    pod: &Pod,
    started: i64,
    t: i64,
    ready: bool,
    container_id: &str,
) -> String {
    let status = if ready { "True" } else { "False" };
    format!(
        r#"{{"metadata":{{"uid":"{uid}"}},"status":{{"$setElementOrder/conditions":[{{"type":"PodReadyToStartContainers"}},{{"type":"Initialized"}},{{"type":"Ready"}},{{"type":"ContainersReady"}},{{"type":"PodScheduled"}}],"conditions":[{{"lastTransitionTime":"{now}","status":"{status}","type":"Ready"}},{{"lastTransitionTime":"{now}","status":"{status}","type":"ContainersReady"}}],"containerStatuses":[{{"containerID":"containerd://{cid}","image":"{image}","imageID":"{image}@sha256:{cid}","lastState":{{}},"name":"{name}","ready":{ready},"restartCount":0,"started":true,"state":{{"running":{{"startedAt":"{started}"}}}}}}]}}}}"#,
        uid = u(pod.uid),
        now = ts(t),
        cid = container_id,
        image = pod.image,
        name = pod.container,
        started = ts(started),
    )
}

fn labels(d: &Deployment) -> String {
    format!(
        r#"{{"app.kubernetes.io/name":"{}","app.kubernetes.io/part-of":"{}"}}"#,
        d.name, d.team
    )
}

fn container(d: &Deployment, image: &str) -> String {
    format!(
        r#"{{"name":"app","image":"{image}","ports":[{{"containerPort":{port},"protocol":"TCP"}}],"resources":{{"limits":{{"cpu":"500m","memory":"512Mi"}},"requests":{{"cpu":"100m","memory":"128Mi"}}}},"securityContext":{{"allowPrivilegeEscalation":false,"capabilities":{{"drop":["ALL"]}},"runAsNonRoot":true,"seccompProfile":{{"type":"RuntimeDefault"}}}}}}"#,
        port = d.port
    )
}

/// The manifest CI applies (`kubectl apply --server-side` sends it as the patch body).
pub(crate) fn deployment_manifest(d: &Deployment, ns: &str, image: &str, replicas: u32) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"labels":{labels},"name":"{name}","namespace":"{ns}"}},"spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"app.kubernetes.io/name":"{name}"}}}},"template":{{"metadata":{{"labels":{labels}}},"spec":{{"containers":[{container}],"serviceAccountName":"{name}"}}}}}}}}"#,
        labels = labels(d),
        name = d.name,
        container = container(d, image),
    )
}

/// A Deployment as the apiserver returns it.
// One argument per field that varies between calls; a struct would only restate them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn deployment_object(
    d: &Deployment,
    ns: &str,
    image: &str,
    replicas: u32,
    rv: u64,
    generation: u64,
    t: i64,
    manager: &str,
    operation: &str,
) -> String {
    format!(
        r#"{{"kind":"Deployment","apiVersion":"apps/v1","metadata":{{"name":"{name}","namespace":"{ns}","uid":"{uid}","resourceVersion":"{rv}","generation":{generation},"creationTimestamp":"{created}","labels":{labels},"annotations":{{"deployment.kubernetes.io/revision":"{revision}"}},"managedFields":[{{"manager":"{manager}","operation":"{operation}","apiVersion":"apps/v1","time":"{now}","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:labels":{{"f:app.kubernetes.io/name":{{}},"f:app.kubernetes.io/part-of":{{}}}}}},"f:spec":{{"f:replicas":{{}},"f:selector":{{}},"f:template":{{"f:metadata":{{"f:labels":{{"f:app.kubernetes.io/name":{{}},"f:app.kubernetes.io/part-of":{{}}}}}},"f:spec":{{"f:containers":{{"k:{{\"name\":\"app\"}}":{{".":{{}},"f:image":{{}},"f:name":{{}},"f:ports":{{}},"f:resources":{{}},"f:securityContext":{{}}}}}},"f:serviceAccountName":{{}}}}}}}}}}}},{{"manager":"kube-controller-manager","operation":"Update","apiVersion":"apps/v1","time":"{now}","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:annotations":{{".":{{}},"f:deployment.kubernetes.io/revision":{{}}}}}},"f:status":{{"f:availableReplicas":{{}},"f:conditions":{{}},"f:observedGeneration":{{}},"f:readyReplicas":{{}},"f:replicas":{{}},"f:updatedReplicas":{{}}}}}},"subresource":"status"}}]}},"spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"app.kubernetes.io/name":"{name}"}}}},"template":{{"metadata":{{"creationTimestamp":null,"labels":{labels}}},"spec":{{"containers":[{container}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"{name}","serviceAccount":"{name}","securityContext":{{}},"schedulerName":"default-scheduler"}}}},"strategy":{{"type":"RollingUpdate","rollingUpdate":{{"maxUnavailable":"25%","maxSurge":"25%"}}}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600}},"status":{{"observedGeneration":{observed},"replicas":{replicas},"updatedReplicas":{replicas},"readyReplicas":{replicas},"availableReplicas":{replicas},"conditions":[{{"type":"Available","status":"True","lastUpdateTime":"{created}","lastTransitionTime":"{created}","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability."}},{{"type":"Progressing","status":"True","lastUpdateTime":"{now}","lastTransitionTime":"{created}","reason":"NewReplicaSetAvailable","message":"ReplicaSet \"{name}-{hash}\" has successfully progressed."}}]}}}}"#,
        name = d.name,
        uid = u(d.uid),
        created = ts(d.created),
        labels = labels(d),
        revision = generation.max(1),
        now = ts(t),
        container = container(d, image),
        observed = generation.saturating_sub(1).max(1),
        hash = d.rs_hash,
    )
}

/// `autoscaling/v1` Scale returned by `deployments/scale`.
pub(crate) fn scale_object(d: &Deployment, ns: &str, rv: u64, spec: u32, status: u32) -> String {
    format!(
        r#"{{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{{"name":"{name}","namespace":"{ns}","uid":"{uid}","resourceVersion":"{rv}","creationTimestamp":"{created}"}},"spec":{{"replicas":{spec}}},"status":{{"replicas":{status},"selector":"app.kubernetes.io/name={name}"}}}}"#,
        name = d.name,
        uid = u(d.uid),
        created = ts(d.created),
    )
}

/// Server-side metadata of an object: uid, resourceVersion, creation time, last write time and
/// the field manager of that write.
pub(crate) struct Meta<'a> {
    pub uid: u128,
    pub rv: u64,
    pub created: i64,
    pub written: i64,
    pub manager: &'a str,
}

/// A ConfigMap; `server` adds uid/resourceVersion/managedFields as the apiserver returns them.
pub(crate) fn configmap(ns: &str, name: &str, server: Option<Meta<'_>>, variant: u64) -> String {
    let level = ["info", "debug", "warn"][(variant % 3) as usize];
    let timeout = 1000 + (variant % 7) * 500;
    let meta = match server {
        Some(m) => format!(
            r#","uid":"{}","resourceVersion":"{rv}","creationTimestamp":"{created}","managedFields":[{{"manager":"{manager}","operation":"Update","apiVersion":"v1","time":"{now}","fieldsType":"FieldsV1","fieldsV1":{{"f:data":{{".":{{}},"f:FEATURE_FLAGS":{{}},"f:LOG_LEVEL":{{}},"f:TIMEOUT_MS":{{}}}}}}}}]"#,
            u(m.uid),
            rv = m.rv,
            created = ts(m.created),
            manager = m.manager,
            now = ts(m.written)
        ),
        None => r#","creationTimestamp":null"#.to_string(),
    };
    format!(
        r#"{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}"{meta}}},"data":{{"FEATURE_FLAGS":"new-checkout,fast-search","LOG_LEVEL":"{level}","TIMEOUT_MS":"{timeout}"}}}}"#
    )
}

/// A ClusterIP Service.
pub(crate) fn service(
    d: &Deployment,
    ns: &str,
    server: Option<Meta<'_>>,
    cluster_ip: &str,
) -> String {
    let (meta, ips, status) = match server {
        Some(m) => (
            format!(
                r#","uid":"{}","resourceVersion":"{rv}","creationTimestamp":"{created}","managedFields":[{{"manager":"{manager}","operation":"Update","apiVersion":"v1","time":"{now}","fieldsType":"FieldsV1","fieldsV1":{{"f:spec":{{"f:ports":{{}},"f:selector":{{}},"f:type":{{}}}}}}}}]"#,
                u(m.uid),
                rv = m.rv,
                created = ts(m.created),
                manager = m.manager,
                now = ts(m.written)
            ),
            format!(
                r#","clusterIP":"{cluster_ip}","clusterIPs":["{cluster_ip}"],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Cluster","sessionAffinity":"None""#
            ),
            r#","status":{"loadBalancer":{}}"#,
        ),
        None => (
            r#","creationTimestamp":null"#.to_string(),
            String::new(),
            r#","status":{"loadBalancer":{}}"#,
        ),
    };
    format!(
        r#"{{"kind":"Service","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}"{meta}}},"spec":{{"ports":[{{"name":"http","protocol":"TCP","port":80,"targetPort":{port}}}],"selector":{{"app.kubernetes.io/name":"{name}"}},"type":"ClusterIP"{ips}}}{status}}}"#,
        name = d.name,
        port = d.port,
    )
}

/// `DeleteOptions` as kubectl sends it.
pub(crate) const DELETE_OPTIONS: &str =
    r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#;

/// `kubectl rollout restart` patch.
pub(crate) fn restart_patch(t: i64) -> String {
    format!(
        r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"kubectl.kubernetes.io/restartedAt":"{}"}}}}}}}}}}"#,
        ts(t)
    )
}

/// `kubectl set image` patch.
pub(crate) fn set_image_patch(image: &str) -> String {
    format!(
        r#"{{"spec":{{"template":{{"spec":{{"containers":[{{"image":"{image}","name":"app"}}]}}}}}}}}"#
    )
}

/// RBAC object: Role/ClusterRole (`rules`) or RoleBinding/ClusterRoleBinding (`subjects` + `roleRef`).
pub(crate) struct RbacBody<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub ns: Option<&'a str>,
    /// For roles: (apiGroups, resources, verbs) as pre-rendered JSON arrays.
    pub rules: &'a [(&'a str, &'a str, &'a str)],
    /// For bindings: (subject kind, subject name, subject namespace) and the role reference.
    pub subject: Option<(&'a str, &'a str, Option<&'a str>)>,
    pub role_ref: Option<(&'a str, &'a str)>,
}

impl RbacBody<'_> {
    /// The object; `server` adds uid/resourceVersion/creationTimestamp/managedFields.
    pub fn render(&self, server: Option<Meta<'_>>) -> String {
        let mut s = String::with_capacity(768);
        s.push_str(&format!(
            r#"{{"kind":"{}","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{{"name":"{}""#,
            self.kind, self.name
        ));
        if let Some(ns) = self.ns {
            s.push_str(&format!(r#","namespace":"{ns}""#));
        }
        let fields = if self.rules.is_empty() {
            r#"{"f:roleRef":{},"f:subjects":{}}"#
        } else {
            r#"{"f:rules":{}}"#
        };
        match server {
            Some(m) => s.push_str(&format!(
                r#","uid":"{}","resourceVersion":"{rv}","creationTimestamp":"{created}","managedFields":[{{"manager":"{manager}","operation":"Update","apiVersion":"rbac.authorization.k8s.io/v1","time":"{now}","fieldsType":"FieldsV1","fieldsV1":{fields}}}]}}"#,
                u(m.uid),
                rv = m.rv,
                created = ts(m.created),
                manager = m.manager,
                now = ts(m.written)
            )),
            None => s.push_str(r#","creationTimestamp":null}"#),
        }
        if !self.rules.is_empty() {
            s.push_str(r#","rules":["#);
            for (i, (groups, resources, verbs)) in self.rules.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!(
                    r#"{{"verbs":{verbs},"apiGroups":{groups},"resources":{resources}}}"#
                ));
            }
            s.push(']');
        }
        if let Some((kind, name, ns)) = self.subject {
            let api_group = if kind == "ServiceAccount" {
                String::new()
            } else {
                r#""apiGroup":"rbac.authorization.k8s.io","#.to_string()
            };
            let ns = ns
                .map(|n| format!(r#","namespace":"{n}""#))
                .unwrap_or_default();
            s.push_str(&format!(
                r#","subjects":[{{"kind":"{kind}",{api_group}"name":"{name}"{ns}}}]"#
            ));
        }
        if let Some((kind, name)) = self.role_ref {
            s.push_str(&format!(
                r#","roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"{kind}","name":"{name}"}}"#
            ));
        }
        s.push('}');
        s
    }
}

/// What kind of pod a person creates by hand.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodKind {
    /// `kubectl run` with a restricted-compliant spec.
    Plain,
    /// A container with `securityContext.privileged: true`.
    Privileged,
    /// `kubectl debug node/...`: host namespaces and the host's root filesystem.
    NodeDebugger,
}

/// A pod created by a person (`requestObject`), or the apiserver's answer with `server` set.
pub(crate) fn human_pod(
    w: &World,
    name: &str,
    ns: &Namespace,
    kind: PodKind,
    node: usize,
    server: Option<(u128, u64, i64)>,
) -> String {
    let meta = match server {
        Some((uid, rv, t)) => format!(
            r#","uid":"{}","resourceVersion":"{rv}","creationTimestamp":"{}""#,
            u(uid),
            ts(t)
        ),
        None => r#","creationTimestamp":null"#.to_string(),
    };
    let sa = if server.is_some() {
        r#","serviceAccountName":"default","serviceAccount":"default""#
    } else {
        ""
    };
    let status = if server.is_some() {
        r#"{"phase":"Pending","qosClass":"BestEffort"}"#
    } else {
        "{}"
    };
    let spec = match kind {
        PodKind::Plain => format!(
            r#"{{"containers":[{{"name":"{name}","image":"busybox:1.36","args":["sh"],"resources":{{}},"stdin":true,"stdinOnce":true,"tty":true,"securityContext":{{"allowPrivilegeEscalation":false,"capabilities":{{"drop":["ALL"]}},"runAsNonRoot":true,"runAsUser":65534,"seccompProfile":{{"type":"RuntimeDefault"}}}}}}],"restartPolicy":"Never","dnsPolicy":"ClusterFirst"{sa}}}"#
        ),
        PodKind::Privileged => format!(
            r#"{{"containers":[{{"name":"{name}","image":"ubuntu:22.04","command":["sleep","infinity"],"resources":{{}},"securityContext":{{"privileged":true}}}}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst"{sa}}}"#
        ),
        PodKind::NodeDebugger => format!(
            r#"{{"volumes":[{{"name":"host-root","hostPath":{{"path":"/","type":""}}}}],"containers":[{{"name":"debugger","image":"busybox:1.36","resources":{{}},"volumeMounts":[{{"name":"host-root","mountPath":"/host"}}],"terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","stdin":true,"tty":true}}],"restartPolicy":"Never","nodeName":"{node}","hostNetwork":true,"hostPID":true,"hostIPC":true,"tolerations":[{{"operator":"Exists"}}]{sa}}}"#,
            node = w.nodes[node].name
        ),
    };
    format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}"{meta},"labels":{{"run":"{name}"}}}},"spec":{spec},"status":{status}}}"#,
        ns = ns.name
    )
}

/// The pod a ReplicaSet controller creates for a deployment (`generateName`, owner reference).
pub(crate) fn replicaset_pod(d: &Deployment, ns: &str) -> String {
    format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"generateName":"{name}-{hash}-","namespace":"{ns}","creationTimestamp":null,"labels":{{"app.kubernetes.io/name":"{name}","app.kubernetes.io/part-of":"{team}","pod-template-hash":"{hash}"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{name}-{hash}","uid":"{rs_uid}","controller":true,"blockOwnerDeletion":true}}]}},"spec":{{"containers":[{container}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"{name}","serviceAccount":"{name}","securityContext":{{}},"schedulerName":"default-scheduler","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"}},"status":{{}}}}"#,
        name = d.name,
        hash = d.rs_hash,
        team = d.team,
        rs_uid = u(d.rs_uid),
        container = container(d, &d.image),
    )
}
