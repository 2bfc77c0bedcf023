//! The simulated cluster: nodes, namespaces, workloads, and every identity that talks to the
//! apiserver (kubelets, control-plane components, controllers, add-ons, people, CI, scanners).
//!
//! The world is drawn once from the seeded generator, so the same seed always describes the same
//! cluster; profiles (see `profiles.rs`) then pick actors and objects from it.

use rand::Rng;
use rand::rngs::SmallRng;

use crate::event::{self, Res};
use crate::fmt::{self, SEC};

/// Server version of the simulated cluster's components.
pub(crate) const K8S_VERSION: &str = "v1.30.4";
/// Short git commit that client-go puts into component user agents.
pub(crate) const K8S_COMMIT: &str = "a51b3b7";

/// Bound service-account tokens are refreshed at 80 % of their one-hour lifetime, so the
/// `JTI=` credential id of a workload identity changes about every 48 minutes.
const TOKEN_PERIOD: i64 = 48 * 60 * SEC;

/// Origin of the simulated etcd revision counter; revisions grow by ten per second from here.
const RV_ORIGIN: i64 = 1_700_000_000 * SEC;

/// Someone (or something) that authenticates to the apiserver.
pub(crate) struct Identity {
    pub username: String,
    /// Rendered `user` object; when `jti_key` is set, it stops right before the rotating JTI.
    head: String,
    tail: String,
    jti_key: Option<u64>,
    /// Rendered `sourceIPs` array.
    pub source_ips: String,
    pub user_agent: String,
    /// Usual authorization reason when allowed (raw, not escaped).
    pub reason: String,
}

impl Identity {
    fn new(username: &str, user_json: (String, String, Option<u64>), ip: &str, ua: &str) -> Self {
        Identity {
            username: username.to_string(),
            head: user_json.0,
            tail: user_json.1,
            jti_key: user_json.2,
            source_ips: ips_json(ip),
            user_agent: ua.to_string(),
            reason: String::new(),
        }
    }

    fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Appends the rendered `user` object as of time `t` (token ids rotate).
    pub fn push_user(&self, buf: &mut Vec<u8>, t: i64) {
        buf.extend_from_slice(self.head.as_bytes());
        if let Some(key) = self.jti_key {
            let phase = (key % TOKEN_PERIOD as u64) as i64;
            let epoch = (t + phase).div_euclid(TOKEN_PERIOD) as u64;
            fmt::push_uuid(buf, fmt::hashed_uuid(key, epoch));
            buf.extend_from_slice(self.tail.as_bytes());
        }
    }
}

/// `["ip"]`
pub(crate) fn ips_json(ip: &str) -> String {
    format!("[{}]", fmt::json_str(ip))
}

fn user_head(username: &str, uid: Option<u128>, groups: &[&str]) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"username\":");
    s.push_str(&fmt::json_str(username));
    if let Some(uid) = uid {
        s.push_str(",\"uid\":\"");
        s.push_str(&fmt::uuid_str(uid));
        s.push('"');
    }
    if !groups.is_empty() {
        s.push_str(",\"groups\":[");
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&fmt::json_str(g));
        }
        s.push(']');
    }
    s
}

/// A client-certificate user (kubelets, control plane, break-glass admin).
fn x509_user(username: &str, groups: &[&str], fingerprint: &str) -> (String, String, Option<u64>) {
    let mut s = user_head(username, None, groups);
    s.push_str(",\"extra\":{\"authentication.kubernetes.io/credential-id\":[\"X509SHA256=");
    s.push_str(fingerprint);
    s.push_str("\"]}}");
    (s, String::new(), None)
}

/// An OIDC user: username and groups only.
fn plain_user(username: &str, groups: &[&str]) -> (String, String, Option<u64>) {
    let mut s = user_head(username, None, groups);
    s.push('}');
    (s, String::new(), None)
}

/// Where a service-account token is bound: pod name, pod uid, node name, node uid.
struct Binding<'a> {
    pod: &'a str,
    pod_uid: u128,
    node: &'a str,
    node_uid: u128,
}

/// A service account using a bound token (`JTI=` credential id; pod and node claims when bound).
fn sa_user(
    ns: &str,
    sa: &str,
    uid: u128,
    binding: Option<Binding<'_>>,
    jti_key: u64,
) -> (String, String, Option<u64>) {
    let username = format!("system:serviceaccount:{ns}:{sa}");
    let ns_group = format!("system:serviceaccounts:{ns}");
    let mut head = user_head(
        &username,
        Some(uid),
        &["system:serviceaccounts", &ns_group, "system:authenticated"],
    );
    head.push_str(",\"extra\":{\"authentication.kubernetes.io/credential-id\":[\"JTI=");
    let mut tail = String::from("\"]");
    if let Some(b) = binding {
        tail.push_str(&format!(
            ",\"authentication.kubernetes.io/node-name\":[\"{}\"],\"authentication.kubernetes.io/node-uid\":[\"{}\"],\"authentication.kubernetes.io/pod-name\":[\"{}\"],\"authentication.kubernetes.io/pod-uid\":[\"{}\"]",
            b.node,
            fmt::uuid_str(b.node_uid),
            b.pod,
            fmt::uuid_str(b.pod_uid)
        ));
    }
    tail.push_str("}}");
    (head, tail, Some(jti_key))
}

/// `RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to <subject>`
pub(crate) fn crb_reason(binding: &str, role: &str, subject: &str) -> String {
    format!(
        "RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to {subject}"
    )
}

/// `RBAC: allowed by RoleBinding "b/ns" of <kind> "r" to <subject>`
pub(crate) fn rb_reason(binding: &str, ns: &str, kind: &str, role: &str, subject: &str) -> String {
    format!("RBAC: allowed by RoleBinding \"{binding}/{ns}\" of {kind} \"{role}\" to {subject}")
}

/// The reason the discovery endpoints are open to every authenticated user.
pub(crate) const DISCOVERY_REASON: &str = "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\"";
/// The reason `/version`, `/healthz`, `/livez`, `/readyz` are open to everyone.
pub(crate) const PUBLIC_INFO_REASON: &str = "RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"";

/// A cluster node; each runs a kubelet and a kube-proxy.
pub(crate) struct Node {
    pub name: String,
    pub ip: String,
    pub uid: u128,
    pub lease_uid: u128,
    pub created: i64,
    pub kubelet: usize,
    pub kube_proxy: usize,
}

/// A namespace; team namespaces belong to a team and enforce the `restricted` pod-security level.
pub(crate) struct Namespace {
    pub name: &'static str,
    pub team: Option<&'static str>,
}

impl Namespace {
    /// The `pod-security.kubernetes.io/enforce-policy` value for pods created here.
    pub fn enforce_policy(&self) -> &'static str {
        match self.team {
            Some(_) if self.name != "sandbox" => "restricted:latest",
            _ => "privileged:latest",
        }
    }
}

/// A Deployment (or, for a few add-ons, a StatefulSet) and its current ReplicaSet.
pub(crate) struct Deployment {
    pub ns: usize,
    pub name: String,
    pub uid: u128,
    pub rs_hash: String,
    pub rs_uid: u128,
    pub replicas: u32,
    pub image: String,
    pub created: i64,
    pub port: u16,
    pub team: &'static str,
}

/// A running pod.
pub(crate) struct Pod {
    pub ns: usize,
    pub name: String,
    pub uid: u128,
    pub node: usize,
    pub ip: String,
    pub deploy: Option<usize>,
    pub image: String,
    pub container: &'static str,
}

/// How a person is authorized.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// `edit` in the team's namespaces.
    Dev,
    /// `cluster-admin` through the `sre` group.
    Sre,
    /// `cluster-admin` through the `platform-admins` group.
    Platform,
    /// `view` cluster-wide (which excludes secrets).
    ReadOnly,
    /// A custom read-everything role for the security team.
    Security,
    /// `edit` in two namespaces; tends to poke at things it may not touch.
    Contractor,
    /// The kubeadm `kubernetes-admin` client certificate (`system:masters`).
    BreakGlass,
}

/// A kubectl build; from v1.30 kubectl speaks WebSocket for exec/attach (verb `get`, not `create`).
pub(crate) struct Kubectl {
    pub ua: &'static str,
    pub websocket: bool,
}

const KUBECTL_130_LINUX: Kubectl = Kubectl {
    ua: "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505",
    websocket: true,
};
const KUBECTL_130_MAC: Kubectl = Kubectl {
    ua: "kubectl/v1.30.2 (darwin/arm64) kubernetes/39683505",
    websocket: true,
};
const KUBECTL_129_MAC: Kubectl = Kubectl {
    ua: "kubectl/v1.29.4 (darwin/arm64) kubernetes/55019c8",
    websocket: false,
};
const KUBECTL_129_LINUX: Kubectl = Kubectl {
    ua: "kubectl/v1.29.4 (linux/amd64) kubernetes/55019c8",
    websocket: false,
};
const KUBECTL_128_MAC: Kubectl = Kubectl {
    ua: "kubectl/v1.28.9 (darwin/amd64) kubernetes/587f5fe",
    websocket: false,
};
const KUBECTL_127_WIN: Kubectl = Kubectl {
    ua: "kubectl/v1.27.3 (windows/amd64) kubernetes/25b4e43",
    websocket: false,
};

/// A person (or the CI pipeline acting for people).
pub(crate) struct Human {
    pub id: usize,
    pub role: Role,
    /// RBAC group through which the role is granted.
    pub group: &'static str,
    pub team: Option<&'static str>,
    /// Namespaces the person works in.
    pub namespaces: Vec<usize>,
    pub office_ips: String,
    pub vpn_ips: String,
    pub kubectl: &'static Kubectl,
    /// A second client some people use (k9s, Lens).
    pub alt_ua: Option<&'static str>,
    pub weight: u32,
}

impl Human {
    /// The authorizer's reason for an allowed request in `ns` (`None` = cluster scope).
    pub fn reason(&self, ns: Option<&str>) -> String {
        let subject = format!("Group \"{}\"", self.group);
        match (self.role, ns) {
            (Role::Dev, Some(ns)) => {
                let team = self.team.unwrap_or("dev");
                rb_reason(
                    &format!("team-{team}-edit"),
                    ns,
                    "ClusterRole",
                    "edit",
                    &subject,
                )
            }
            (Role::Contractor, Some(ns)) => {
                rb_reason("contractors-edit", ns, "ClusterRole", "edit", &subject)
            }
            (Role::Dev | Role::Contractor, None) => crb_reason(
                "authenticated-namespace-reader",
                "namespace-reader",
                "Group \"system:authenticated\"",
            ),
            (Role::Sre, _) => crb_reason("sre-cluster-admin", "cluster-admin", &subject),
            (Role::Platform, _) => crb_reason("platform-admins", "cluster-admin", &subject),
            (Role::ReadOnly, _) => crb_reason("readonly-view", "view", &subject),
            (Role::Security, _) => crb_reason("security-audit", "security-audit", &subject),
            (Role::BreakGlass, _) => String::new(),
        }
    }

    /// Whether this person works with workloads in arbitrary namespaces.
    pub fn cluster_wide(&self) -> bool {
        matches!(
            self.role,
            Role::Sre | Role::Platform | Role::ReadOnly | Role::Security | Role::BreakGlass
        )
    }

    /// Whether RBAC lets this person change things.
    pub fn can_write(&self) -> bool {
        !matches!(self.role, Role::ReadOnly | Role::Security)
    }

    /// Whether this person holds cluster-admin.
    pub fn admin(&self) -> bool {
        matches!(self.role, Role::Sre | Role::Platform | Role::BreakGlass)
    }
}

struct HumanSpec {
    name: &'static str,
    role: Role,
    group: &'static str,
    team: Option<&'static str>,
    kubectl: &'static Kubectl,
    alt_ua: Option<&'static str>,
    weight: u32,
}

const HUMANS: &[HumanSpec] = &[
    HumanSpec {
        name: "alice@example.com",
        role: Role::Sre,
        group: "sre",
        team: None,
        kubectl: &KUBECTL_130_LINUX,
        alt_ua: Some("k9s/v0.32.5 (linux/amd64) kubernetes/$Format"),
        weight: 14,
    },
    HumanSpec {
        name: "bob@example.com",
        role: Role::Dev,
        group: "team-payments",
        team: Some("payments"),
        kubectl: &KUBECTL_129_MAC,
        alt_ua: None,
        weight: 10,
    },
    HumanSpec {
        name: "carol@example.com",
        role: Role::Dev,
        group: "team-checkout",
        team: Some("checkout"),
        kubectl: &KUBECTL_128_MAC,
        alt_ua: Some("Lens/6.5.2"),
        weight: 10,
    },
    HumanSpec {
        name: "dave@example.com",
        role: Role::Sre,
        group: "sre",
        team: None,
        kubectl: &KUBECTL_130_MAC,
        alt_ua: None,
        weight: 12,
    },
    HumanSpec {
        name: "erin@example.com",
        role: Role::Dev,
        group: "team-catalog",
        team: Some("catalog"),
        kubectl: &KUBECTL_129_LINUX,
        alt_ua: None,
        weight: 9,
    },
    HumanSpec {
        name: "frank@example.com",
        role: Role::Dev,
        group: "team-data",
        team: Some("data"),
        kubectl: &KUBECTL_129_MAC,
        alt_ua: None,
        weight: 8,
    },
    HumanSpec {
        name: "grace@example.com",
        role: Role::Platform,
        group: "platform-admins",
        team: None,
        kubectl: &KUBECTL_130_LINUX,
        alt_ua: None,
        weight: 8,
    },
    HumanSpec {
        name: "heidi@example.com",
        role: Role::Dev,
        group: "team-orders",
        team: Some("orders"),
        kubectl: &KUBECTL_128_MAC,
        alt_ua: Some("k9s/v0.32.4 (darwin/arm64) kubernetes/$Format"),
        weight: 9,
    },
    HumanSpec {
        name: "ivan@example.com",
        role: Role::ReadOnly,
        group: "readonly",
        team: None,
        kubectl: &KUBECTL_129_LINUX,
        alt_ua: None,
        weight: 4,
    },
    HumanSpec {
        name: "judy@example.com",
        role: Role::Security,
        group: "security",
        team: None,
        kubectl: &KUBECTL_130_MAC,
        alt_ua: None,
        weight: 3,
    },
    HumanSpec {
        name: "mallory@contractor.example.net",
        role: Role::Contractor,
        group: "contractors",
        team: Some("web"),
        kubectl: &KUBECTL_127_WIN,
        alt_ua: None,
        weight: 2,
    },
    HumanSpec {
        name: "oscar@example.com",
        role: Role::Dev,
        group: "team-identity",
        team: Some("identity"),
        kubectl: &KUBECTL_129_MAC,
        alt_ua: None,
        weight: 8,
    },
    HumanSpec {
        name: "peggy@example.com",
        role: Role::Dev,
        group: "team-web",
        team: Some("web"),
        kubectl: &KUBECTL_130_MAC,
        alt_ua: None,
        weight: 8,
    },
    HumanSpec {
        name: "kubernetes-admin",
        role: Role::BreakGlass,
        group: "system:masters",
        team: None,
        kubectl: &KUBECTL_129_LINUX,
        alt_ua: None,
        weight: 1,
    },
];

/// Namespaces: name and owning team (`None` = platform/system).
const NAMESPACES: &[(&str, Option<&str>)] = &[
    ("kube-system", None),
    ("kube-public", None),
    ("kube-node-lease", None),
    ("default", None),
    ("monitoring", None),
    ("cert-manager", None),
    ("argocd", None),
    ("ingress-nginx", None),
    ("logging", None),
    ("ci", None),
    ("payments", Some("payments")),
    ("billing", Some("payments")),
    ("staging-payments", Some("payments")),
    ("checkout", Some("checkout")),
    ("staging-checkout", Some("checkout")),
    ("catalog", Some("catalog")),
    ("inventory", Some("catalog")),
    ("search", Some("catalog")),
    ("orders", Some("orders")),
    ("shipping", Some("orders")),
    ("users", Some("identity")),
    ("auth", Some("identity")),
    ("notifications", Some("identity")),
    ("frontend", Some("web")),
    ("api-gateway", Some("web")),
    ("sandbox", Some("web")),
    ("analytics", Some("data")),
    ("ml-serving", Some("data")),
    ("data-pipeline", Some("data")),
    ("reporting", Some("data")),
];

const APP_SUFFIXES: &[&str] = &["api", "worker", "web", "consumer", "db-proxy", "scheduler"];

/// A workload in a platform namespace that talks to the apiserver with its own service account.
pub(crate) struct AddonSpec {
    pub ns: &'static str,
    pub sa: &'static str,
    pub workload: &'static str,
    pub image: &'static str,
    pub ua: &'static str,
    /// ClusterRoleBinding (and ClusterRole) that grants its access.
    pub binding: &'static str,
    /// Cluster-wide informers.
    pub watches: &'static [&'static Res],
    /// Objects it reads by name in arbitrary namespaces.
    pub gets: &'static [&'static Res],
    /// Relative share of add-on traffic.
    pub weight: u32,
}

pub(crate) const ADDONS: &[AddonSpec] = &[
    AddonSpec {
        ns: "kube-system",
        sa: "coredns",
        workload: "coredns",
        image: "registry.k8s.io/coredns/coredns:v1.11.1",
        ua: "coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
        binding: "system:coredns",
        watches: &[&event::ENDPOINTSLICES, &event::SERVICES, &event::NAMESPACES],
        gets: &[],
        weight: 10,
    },
    AddonSpec {
        ns: "kube-system",
        sa: "metrics-server",
        workload: "metrics-server",
        image: "registry.k8s.io/metrics-server/metrics-server:v0.7.1",
        ua: "metrics-server/v0.7.1 (linux/amd64) kubernetes/$Format",
        binding: "system:metrics-server",
        watches: &[&event::NODES, &event::PODS],
        gets: &[&event::NODES],
        weight: 6,
    },
    AddonSpec {
        ns: "cert-manager",
        sa: "cert-manager",
        workload: "cert-manager",
        image: "quay.io/jetstack/cert-manager-controller:v1.14.5",
        ua: "cert-manager-controller/v1.14.5 (linux/amd64) cert-manager/2a6da1a4",
        binding: "cert-manager-controller-certificates",
        watches: &[&event::CERTIFICATES, &event::SECRETS, &event::INGRESSES],
        gets: &[&event::SECRETS, &event::CERTIFICATES],
        weight: 8,
    },
    AddonSpec {
        ns: "argocd",
        sa: "argocd-application-controller",
        workload: "argocd-application-controller",
        image: "quay.io/argoproj/argocd:v2.11.3",
        ua: "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        binding: "argocd-application-controller",
        watches: &[
            &event::DEPLOYMENTS,
            &event::SERVICES,
            &event::CONFIGMAPS,
            &event::REPLICASETS,
            &event::PODS,
            &event::APPLICATIONS,
            &event::INGRESSES,
        ],
        gets: &[&event::DEPLOYMENTS, &event::APPLICATIONS],
        weight: 14,
    },
    AddonSpec {
        ns: "monitoring",
        sa: "prometheus-k8s",
        workload: "prometheus-k8s",
        image: "quay.io/prometheus/prometheus:v2.52.0",
        ua: "Prometheus/2.52.0",
        binding: "prometheus-k8s",
        watches: &[
            &event::PODS,
            &event::ENDPOINTSLICES,
            &event::SERVICES,
            &event::NODES,
        ],
        gets: &[],
        weight: 10,
    },
    AddonSpec {
        ns: "monitoring",
        sa: "kube-state-metrics",
        workload: "kube-state-metrics",
        image: "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0",
        ua: "kube-state-metrics/v2.12.0 (linux/amd64) kubernetes/$Format",
        binding: "kube-state-metrics",
        watches: &[
            &event::PODS,
            &event::DEPLOYMENTS,
            &event::NODES,
            &event::REPLICASETS,
            &event::SECRETS,
            &event::CONFIGMAPS,
            &event::NAMESPACES,
            &event::JOBS,
            &event::CRONJOBS,
            &event::PVCS,
            &event::HPAS,
        ],
        gets: &[],
        weight: 10,
    },
    AddonSpec {
        ns: "ingress-nginx",
        sa: "ingress-nginx",
        workload: "ingress-nginx-controller",
        image: "registry.k8s.io/ingress-nginx/controller:v1.10.1",
        ua: "nginx-ingress-controller/v1.10.1 (linux/amd64) ingress-nginx/4fb5aac1",
        binding: "ingress-nginx",
        watches: &[
            &event::INGRESSES,
            &event::SERVICES,
            &event::ENDPOINTSLICES,
            &event::SECRETS,
            &event::CONFIGMAPS,
        ],
        gets: &[&event::SECRETS],
        weight: 8,
    },
    AddonSpec {
        ns: "logging",
        sa: "fluent-bit",
        workload: "fluent-bit",
        image: "cr.fluentbit.io/fluent/fluent-bit:3.0.4",
        ua: "fluent-bit/3.0.4",
        binding: "fluent-bit-read",
        watches: &[],
        gets: &[&event::PODS],
        weight: 8,
    },
];

/// A kube-controller-manager controller (each uses its own service account).
pub(crate) struct ControllerSpec {
    pub name: &'static str,
    pub watches: &'static [&'static Res],
    /// (verb, resource, subresource) it writes.
    pub writes: &'static [(&'static str, &'static Res, Option<&'static str>)],
    pub weight: u32,
}

pub(crate) const CONTROLLERS: &[ControllerSpec] = &[
    ControllerSpec {
        name: "replicaset-controller",
        watches: &[&event::REPLICASETS, &event::PODS],
        writes: &[("update", &event::REPLICASETS, Some("status"))],
        weight: 10,
    },
    ControllerSpec {
        name: "deployment-controller",
        watches: &[&event::DEPLOYMENTS, &event::REPLICASETS, &event::PODS],
        writes: &[
            ("update", &event::DEPLOYMENTS, Some("status")),
            ("patch", &event::REPLICASETS, None),
        ],
        weight: 8,
    },
    ControllerSpec {
        name: "endpointslice-controller",
        watches: &[&event::SERVICES, &event::PODS, &event::ENDPOINTSLICES],
        writes: &[
            ("update", &event::ENDPOINTSLICES, None),
            ("update", &event::ENDPOINTSLICES, None),
            ("create", &event::ENDPOINTSLICES, None),
        ],
        weight: 14,
    },
    ControllerSpec {
        name: "namespace-controller",
        watches: &[&event::NAMESPACES],
        writes: &[],
        weight: 2,
    },
    ControllerSpec {
        name: "generic-garbage-collector",
        watches: &[
            &event::PODS,
            &event::REPLICASETS,
            &event::DEPLOYMENTS,
            &event::CONFIGMAPS,
            &event::SECRETS,
            &event::JOBS,
            &event::ENDPOINTSLICES,
            &event::LEASES,
        ],
        writes: &[("delete", &event::PODS, None)],
        weight: 8,
    },
    ControllerSpec {
        name: "job-controller",
        watches: &[&event::JOBS, &event::PODS],
        writes: &[("update", &event::JOBS, Some("status"))],
        weight: 4,
    },
    ControllerSpec {
        name: "cronjob-controller",
        watches: &[&event::CRONJOBS, &event::JOBS],
        writes: &[
            ("create", &event::JOBS, None),
            ("update", &event::CRONJOBS, Some("status")),
        ],
        weight: 3,
    },
    ControllerSpec {
        name: "horizontal-pod-autoscaler",
        watches: &[&event::HPAS],
        writes: &[
            ("get", &event::DEPLOYMENTS, Some("scale")),
            ("update", &event::HPAS, Some("status")),
        ],
        weight: 5,
    },
    ControllerSpec {
        name: "node-controller",
        watches: &[&event::NODES, &event::PODS],
        writes: &[("patch", &event::NODES, None)],
        weight: 3,
    },
    ControllerSpec {
        name: "statefulset-controller",
        watches: &[&event::STATEFULSETS, &event::PODS, &event::PVCS],
        writes: &[("update", &event::STATEFULSETS, Some("status"))],
        weight: 2,
    },
    ControllerSpec {
        name: "daemon-set-controller",
        watches: &[&event::DAEMONSETS, &event::PODS, &event::NODES],
        writes: &[("update", &event::DAEMONSETS, Some("status"))],
        weight: 2,
    },
    ControllerSpec {
        name: "resourcequota-controller",
        watches: &[
            &event::PODS,
            &event::SERVICES,
            &event::CONFIGMAPS,
            &event::SECRETS,
        ],
        writes: &[],
        weight: 3,
    },
    ControllerSpec {
        name: "service-account-controller",
        watches: &[&event::SERVICEACCOUNTS, &event::NAMESPACES],
        writes: &[],
        weight: 1,
    },
];

/// A leader-election lease in `kube-system` (or an add-on namespace).
pub(crate) struct LeaderLease {
    pub ns: &'static str,
    pub name: &'static str,
    pub uid: u128,
    pub holder: String,
    pub duration_s: u32,
    pub acquired: i64,
    pub created: i64,
    /// Identity of the holder.
    pub leader: usize,
    /// The holder's leader-election user agent.
    pub ua: String,
    /// Source IPs (rendered) of candidates that poll the lease without holding it.
    pub followers: Vec<String>,
    /// Field manager name written into managedFields.
    pub manager: &'static str,
}

/// The simulated cluster.
pub(crate) struct World {
    salt: u64,
    /// When the cluster was created.
    birth: i64,
    pub ids: Vec<Identity>,
    pub nodes: Vec<Node>,
    pub namespaces: Vec<Namespace>,
    pub deployments: Vec<Deployment>,
    pub pods: Vec<Pod>,
    /// Pods per namespace (indices into `pods`).
    pub ns_pods: Vec<Vec<usize>>,
    /// Deployments per namespace (indices into `deployments`).
    pub ns_deploys: Vec<Vec<usize>>,
    /// Namespaces that have workloads.
    pub busy_ns: Vec<usize>,
    pub humans: Vec<Human>,
    human_total: u32,
    pub leases: Vec<LeaderLease>,
    pub scheduler: usize,
    pub kcm: usize,
    /// (identity, spec) per controller.
    pub controllers: Vec<(usize, &'static ControllerSpec)>,
    controller_total: u32,
    /// (identity, spec, pod) per add-on.
    pub addons: Vec<(usize, &'static AddonSpec, usize)>,
    addon_total: u32,
    pub ci: usize,
    pub anonymous: usize,
    /// The empty user of a failed authentication.
    pub nobody: usize,
}

impl World {
    /// Draws a cluster for a window starting at `start` (microseconds since the epoch).
    pub fn build(rng: &mut SmallRng, start: i64) -> World {
        let salt = rng.random::<u64>();
        let mut ids: Vec<Identity> = Vec::new();
        let cluster_birth = days_before(rng, start, 120, 400);
        let component_ua = |c: &str, suffix: &str| {
            format!("{c}/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}{suffix}")
        };

        // Nodes: three control-plane nodes and seventeen workers.
        let mut nodes = Vec::new();
        let mut used_hosts = Vec::new();
        for i in 0..20usize {
            let control_plane = i < 3;
            let ip = if control_plane {
                format!("10.20.0.{}", 10 + i)
            } else {
                loop {
                    let host = (rng.random_range(1..4u32), rng.random_range(10..250u32));
                    if !used_hosts.contains(&host) {
                        used_hosts.push(host);
                        break format!("10.20.{}.{}", host.0, host.1);
                    }
                }
            };
            let name = format!("ip-{}.ec2.internal", ip.replace('.', "-"));
            let created = if control_plane {
                cluster_birth
            } else {
                days_before(rng, start, 3, 90)
            };
            let kubelet = ids.len();
            ids.push(Identity::new(
                &format!("system:node:{name}"),
                x509_user(
                    &format!("system:node:{name}"),
                    &["system:nodes", "system:authenticated"],
                    &fmt::random_hex(rng, 64),
                ),
                &ip,
                &component_ua("kubelet", ""),
            ));
            nodes.push(Node {
                name,
                ip,
                uid: fmt::uuid_v4(rng),
                lease_uid: fmt::uuid_v4(rng),
                created: created + rng.random_range(0..3600) * SEC,
                kubelet,
                kube_proxy: 0,
            });
        }

        let namespaces: Vec<Namespace> = NAMESPACES
            .iter()
            .map(|&(name, team)| Namespace { name, team })
            .collect();
        let ns_index = |name: &str| namespaces.iter().position(|n| n.name == name).unwrap_or(0);

        // Workloads.
        let mut deployments = Vec::new();
        let mut pods: Vec<Pod> = Vec::new();
        let mut pods_on_node = vec![0u32; nodes.len()];
        let mut add_deployment = |rng: &mut SmallRng,
                                  ns: usize,
                                  name: String,
                                  image: String,
                                  replicas: u32,
                                  team: &'static str,
                                  stateful: bool|
         -> (usize, usize) {
            let d = deployments.len();
            let rs_hash = fmt::name_suffix(rng, 10);
            let first_pod = pods.len();
            for k in 0..replicas {
                let node = rng.random_range(3..nodes.len());
                pods_on_node[node] += 1;
                let pod_name = if stateful {
                    format!("{name}-{k}")
                } else {
                    format!("{name}-{rs_hash}-{}", fmt::name_suffix(rng, 5))
                };
                pods.push(Pod {
                    ns,
                    name: pod_name,
                    uid: fmt::uuid_v4(rng),
                    node,
                    ip: format!("10.244.{}.{}", node, 1 + pods_on_node[node]),
                    deploy: Some(d),
                    image: image.clone(),
                    container: "app",
                });
            }
            deployments.push(Deployment {
                ns,
                name,
                uid: fmt::uuid_v4(rng),
                rs_hash,
                rs_uid: fmt::uuid_v4(rng),
                replicas,
                image,
                created: days_before(rng, start, 1, 200),
                port: *pick(rng, &[8080u16, 8080, 3000, 9090, 8000]),
                team,
            });
            (d, first_pod)
        };
        for (ns, n) in namespaces.iter().enumerate() {
            let Some(team) = n.team else { continue };
            let count = rng.random_range(2..4usize);
            let offset = rng.random_range(0..APP_SUFFIXES.len());
            for k in 0..count {
                let suffix = APP_SUFFIXES[(offset + k) % APP_SUFFIXES.len()];
                let name = format!("{}-{suffix}", n.name);
                let image = format!(
                    "registry.example.com/{team}/{name}:v1.{}.{}",
                    rng.random_range(0..40),
                    rng.random_range(0..10)
                );
                let replicas = rng.random_range(1..4);
                add_deployment(rng, ns, name, image, replicas, team, false);
            }
        }
        let mut addon_pods = Vec::new();
        for spec in ADDONS {
            let stateful = spec.workload.contains("application-controller")
                || spec.workload.starts_with("prometheus");
            let replicas = if spec.sa == "coredns" { 2 } else { 1 };
            let (_, pod) = add_deployment(
                rng,
                ns_index(spec.ns),
                spec.workload.to_string(),
                spec.image.to_string(),
                replicas,
                "platform",
                stateful,
            );
            addon_pods.push(pod);
        }
        // The CI runner that deploys for the teams.
        let (_, ci_pod) = add_deployment(
            rng,
            ns_index("ci"),
            "gitlab-runner".to_string(),
            "registry.gitlab.com/gitlab-org/gitlab-runner:v16.11.1".to_string(),
            1,
            "platform",
            false,
        );

        // kube-proxy: one pod and one bound identity per node.
        let kube_system = ns_index("kube-system");
        let kube_proxy_sa_uid = fmt::uuid_v4(rng);
        for (i, node) in nodes.iter_mut().enumerate() {
            let pod = Pod {
                ns: kube_system,
                name: format!("kube-proxy-{}", fmt::name_suffix(rng, 5)),
                uid: fmt::uuid_v4(rng),
                node: i,
                ip: node.ip.clone(),
                deploy: None,
                image: format!("registry.k8s.io/kube-proxy:{K8S_VERSION}"),
                container: "kube-proxy",
            };
            node.kube_proxy = ids.len();
            ids.push(
                Identity::new(
                    "system:serviceaccount:kube-system:kube-proxy",
                    sa_user(
                        "kube-system",
                        "kube-proxy",
                        kube_proxy_sa_uid,
                        Some(Binding {
                            pod: &pod.name,
                            pod_uid: pod.uid,
                            node: &node.name,
                            node_uid: node.uid,
                        }),
                        rng.random(),
                    ),
                    &node.ip,
                    &component_ua("kube-proxy", ""),
                )
                .with_reason(crb_reason(
                    "kubeadm:node-proxier",
                    "system:node-proxier",
                    "ServiceAccount \"kube-proxy/kube-system\"",
                )),
            );
            pods.push(pod);
        }

        let mut ns_pods = vec![Vec::new(); namespaces.len()];
        for (i, p) in pods.iter().enumerate() {
            ns_pods[p.ns].push(i);
        }
        let mut ns_deploys = vec![Vec::new(); namespaces.len()];
        for (i, d) in deployments.iter().enumerate() {
            ns_deploys[d.ns].push(i);
        }
        let busy_ns: Vec<usize> = (0..namespaces.len())
            .filter(|&i| !ns_deploys[i].is_empty())
            .collect();

        // Control plane.
        let cp_fp = fmt::random_hex(rng, 64);
        let scheduler = ids.len();
        ids.push(
            Identity::new(
                "system:kube-scheduler",
                x509_user("system:kube-scheduler", &["system:authenticated"], &cp_fp),
                &nodes[0].ip,
                &component_ua("kube-scheduler", "/scheduler"),
            )
            .with_reason(crb_reason(
                "system:kube-scheduler",
                "system:kube-scheduler",
                "User \"system:kube-scheduler\"",
            )),
        );
        let kcm_node = 1;
        let kcm = ids.len();
        ids.push(
            Identity::new(
                "system:kube-controller-manager",
                x509_user(
                    "system:kube-controller-manager",
                    &["system:authenticated"],
                    &fmt::random_hex(rng, 64),
                ),
                &nodes[kcm_node].ip,
                &component_ua("kube-controller-manager", "/leader-election"),
            )
            .with_reason(crb_reason(
                "system:kube-controller-manager",
                "system:kube-controller-manager",
                "User \"system:kube-controller-manager\"",
            )),
        );
        let mut controllers = Vec::new();
        for spec in CONTROLLERS {
            let id = ids.len();
            ids.push(
                Identity::new(
                    &format!("system:serviceaccount:kube-system:{}", spec.name),
                    sa_user(
                        "kube-system",
                        spec.name,
                        fmt::uuid_v4(rng),
                        None,
                        rng.random(),
                    ),
                    &nodes[kcm_node].ip,
                    &component_ua(
                        "kube-controller-manager",
                        &format!("/system:serviceaccount:kube-system:{}", spec.name),
                    ),
                )
                .with_reason(crb_reason(
                    &format!("system:controller:{}", spec.name),
                    &format!("system:controller:{}", spec.name),
                    &format!("ServiceAccount \"{}/kube-system\"", spec.name),
                )),
            );
            controllers.push((id, spec));
        }
        let controller_total = CONTROLLERS.iter().map(|c| c.weight).sum();

        let mut addons = Vec::new();
        for (spec, &pod_idx) in ADDONS.iter().zip(&addon_pods) {
            let pod = &pods[pod_idx];
            let node = &nodes[pod.node];
            let id = ids.len();
            ids.push(
                Identity::new(
                    &format!("system:serviceaccount:{}:{}", spec.ns, spec.sa),
                    sa_user(
                        spec.ns,
                        spec.sa,
                        fmt::uuid_v4(rng),
                        Some(Binding {
                            pod: &pod.name,
                            pod_uid: pod.uid,
                            node: &node.name,
                            node_uid: node.uid,
                        }),
                        rng.random(),
                    ),
                    &pod.ip,
                    spec.ua,
                )
                .with_reason(crb_reason(
                    spec.binding,
                    spec.binding,
                    &format!("ServiceAccount \"{}/{}\"", spec.sa, spec.ns),
                )),
            );
            addons.push((id, spec, pod_idx));
        }
        let addon_total = ADDONS.iter().map(|a| a.weight).sum();

        let ci = {
            let pod = &pods[ci_pod];
            let node = &nodes[pod.node];
            let id = ids.len();
            ids.push(Identity::new(
                "system:serviceaccount:ci:deployer",
                sa_user(
                    "ci",
                    "deployer",
                    fmt::uuid_v4(rng),
                    Some(Binding {
                        pod: &pod.name,
                        pod_uid: pod.uid,
                        node: &node.name,
                        node_uid: node.uid,
                    }),
                    rng.random(),
                ),
                &pod.ip,
                KUBECTL_129_LINUX.ua,
            ));
            id
        };

        let anonymous = ids.len();
        ids.push(Identity::new(
            "system:anonymous",
            plain_user("system:anonymous", &["system:unauthenticated"]),
            "10.20.0.10",
            "kube-probe/1.30",
        ));
        let nobody = ids.len();
        ids.push(Identity::new(
            "",
            ("{}".to_string(), String::new(), None),
            "10.20.0.10",
            "",
        ));

        // People.
        let team_ns = |team: &str| -> Vec<usize> {
            namespaces
                .iter()
                .enumerate()
                .filter(|(_, n)| n.team == Some(team))
                .map(|(i, _)| i)
                .collect()
        };
        let mut humans = Vec::new();
        for (i, spec) in HUMANS.iter().enumerate() {
            let (user, namespaces_of) = match spec.role {
                Role::BreakGlass => (
                    x509_user(
                        spec.name,
                        &["system:masters", "system:authenticated"],
                        &fmt::random_hex(rng, 64),
                    ),
                    busy_ns.clone(),
                ),
                Role::Dev => (
                    plain_user(spec.name, &["dev-team", spec.group, "system:authenticated"]),
                    team_ns(spec.team.unwrap_or("")),
                ),
                Role::Contractor => (
                    plain_user(spec.name, &[spec.group, "system:authenticated"]),
                    vec![ns_index("frontend"), ns_index("sandbox")],
                ),
                _ => (
                    plain_user(spec.name, &[spec.group, "system:authenticated"]),
                    busy_ns.clone(),
                ),
            };
            let office = if spec.role == Role::Contractor {
                format!("198.51.100.{}", rng.random_range(20..200))
            } else if spec.role == Role::BreakGlass {
                "10.20.0.5".to_string()
            } else {
                format!("203.0.113.{}", 10 + i)
            };
            let vpn = format!(
                "10.8.{}.{}",
                rng.random_range(0..4),
                rng.random_range(2..250)
            );
            let id = ids.len();
            ids.push(Identity::new(spec.name, user, &office, spec.kubectl.ua));
            humans.push(Human {
                id,
                role: spec.role,
                group: spec.group,
                team: spec.team,
                namespaces: if namespaces_of.is_empty() {
                    busy_ns.clone()
                } else {
                    namespaces_of
                },
                office_ips: ips_json(&office),
                vpn_ips: if spec.role == Role::BreakGlass {
                    ips_json(&office)
                } else {
                    ips_json(&vpn)
                },
                kubectl: spec.kubectl,
                alt_ua: spec.alt_ua,
                weight: spec.weight,
            });
        }
        let human_total = humans.iter().map(|h| h.weight).sum();

        // Leader-election leases.
        let mut leases = Vec::new();
        for (name, leader, node, manager) in [
            ("kube-scheduler", scheduler, 0usize, "kube-scheduler"),
            (
                "kube-controller-manager",
                kcm,
                kcm_node,
                "kube-controller-manager",
            ),
        ] {
            let component = if leader == scheduler {
                "kube-scheduler"
            } else {
                "kube-controller-manager"
            };
            leases.push(LeaderLease {
                ns: "kube-system",
                name,
                uid: fmt::uuid_v4(rng),
                holder: format!("{}_{}", nodes[node].name, fmt::uuid_str(fmt::uuid_v4(rng))),
                duration_s: 15,
                acquired: days_before(rng, start, 1, 30),
                created: cluster_birth + rng.random_range(60..600) * SEC,
                leader,
                ua: component_ua(component, "/leader-election"),
                followers: (0..3)
                    .filter(|&n| n != node)
                    .map(|n| ips_json(&nodes[n].ip))
                    .collect(),
                manager,
            });
        }
        for &(id, spec, pod) in &addons {
            let (name, ns) = match spec.sa {
                "cert-manager" => ("cert-manager-controller", "kube-system"),
                "ingress-nginx" => ("ingress-nginx-leader", "ingress-nginx"),
                "kube-state-metrics" => ("kube-state-metrics", "monitoring"),
                _ => continue,
            };
            leases.push(LeaderLease {
                ns,
                name,
                uid: fmt::uuid_v4(rng),
                holder: pods[pod].name.clone(),
                duration_s: if spec.sa == "cert-manager" { 60 } else { 30 },
                acquired: days_before(rng, start, 1, 20),
                created: cluster_birth + rng.random_range(3600..86_400) * SEC,
                leader: id,
                ua: spec.ua.to_string(),
                followers: Vec::new(),
                manager: spec.workload,
            });
        }

        World {
            salt,
            birth: cluster_birth,
            ids,
            nodes,
            namespaces,
            deployments,
            pods,
            ns_pods,
            ns_deploys,
            busy_ns,
            humans,
            human_total,
            leases,
            scheduler,
            kcm,
            controllers,
            controller_total,
            addons,
            addon_total,
            ci,
            anonymous,
            nobody,
        }
    }

    /// When the cluster's built-in objects (cluster roles, bindings) were created.
    pub fn created_long_ago(&self) -> i64 {
        self.birth
    }

    /// The etcd revision at time `t` (monotone in `t`).
    pub fn rv(&self, t: i64) -> u64 {
        ((t - RV_ORIGIN) / 100_000).max(1) as u64
    }

    /// A stable UID for an object that is not stored in the world (services, config maps, ...).
    pub fn derived_uid(&self, kind: &str, a: &str, b: &str) -> u128 {
        let mut h = self.salt;
        for part in [kind, a, b] {
            for byte in part.bytes() {
                h = fmt::mix64(h ^ u64::from(byte));
            }
            h = fmt::mix64(h ^ 0xFF);
        }
        fmt::hashed_uuid(h, 0)
    }

    /// A person, weighted by how much they use the cluster, among those matching `filter`.
    pub fn pick_human(&self, rng: &mut SmallRng, filter: impl Fn(&Human) -> bool) -> &Human {
        for _ in 0..64 {
            let h = pick_weighted(rng, &self.humans, self.human_total, |h| h.weight);
            if filter(h) {
                return h;
            }
        }
        self.humans
            .iter()
            .find(|h| filter(h))
            .unwrap_or(&self.humans[0])
    }

    /// A kube-controller-manager controller, weighted by its traffic share.
    pub fn pick_controller(&self, rng: &mut SmallRng) -> (usize, &'static ControllerSpec) {
        *pick_weighted(rng, &self.controllers, self.controller_total, |c| {
            c.1.weight
        })
    }

    /// An add-on, weighted by its traffic share.
    pub fn pick_addon(&self, rng: &mut SmallRng) -> (usize, &'static AddonSpec, usize) {
        *pick_weighted(rng, &self.addons, self.addon_total, |a| a.1.weight)
    }
}

/// A random instant between `lo` and `hi` days before `t` (microsecond precision).
fn days_before(rng: &mut SmallRng, t: i64, lo: i64, hi: i64) -> i64 {
    t - rng.random_range(lo * 86_400 * SEC..hi * 86_400 * SEC)
}

/// A uniformly chosen element. `items` must not be empty (only used on built-in tables and on
/// world lists that are never empty).
pub(crate) fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// An element chosen with probability proportional to `weight`; `total` is the sum of weights.
pub(crate) fn pick_weighted<'a, T>(
    rng: &mut SmallRng,
    items: &'a [T],
    total: u32,
    weight: impl Fn(&T) -> u32,
) -> &'a T {
    let mut x = rng.random_range(0..total.max(1));
    for item in items {
        let w = weight(item);
        if x < w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1]
}
