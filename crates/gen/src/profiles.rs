//! The traffic mix: a weighted table of actor/action profiles ([`PROFILES`]).
//!
//! Each profile is a function that draws one API request at a given time from the world. The
//! generator first picks a traffic [`Class`] (the class decides the daily rhythm), then a profile
//! of that class by weight. To add a scenario, write a builder and add a row to [`PROFILES`].

use std::borrow::Cow;

use rand::Rng;
use rand::rngs::SmallRng;

use crate::bodies::{self, LeaseBody, Meta, PodKind, RbacBody};
use crate::event::{self, Level, Outcome, Req, Res, Shape};
use crate::fmt::{self, MS, SEC};
use crate::world::{self, Human, Role, World, pick};

/// Which rhythm a profile follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Class {
    /// Components and controllers: steady around the clock.
    System,
    /// People and the CI they trigger: business hours on weekdays.
    Human,
    /// Scanners and broken clients from outside: steady, rare.
    Noise,
}

/// Builds one request at time `t`.
pub(crate) type Build = for<'w> fn(&'w World, &mut SmallRng, i64) -> Req<'w>;

/// One row of the traffic table.
pub(crate) struct Profile {
    /// The builder's name, for tests and debugging.
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    pub class: Class,
    /// Relative share within its class.
    pub weight: u32,
    pub build: Build,
}

macro_rules! profiles {
    ($($class:ident $weight:literal $build:ident),* $(,)?) => {
        /// The traffic table. Weights are relative within a class.
        pub(crate) const PROFILES: &[Profile] = &[
            $(Profile { name: stringify!($build), class: Class::$class, weight: $weight, build: $build }),*
        ];
    };
}

profiles! {
    System 290 node_lease,
    System 12 node_lease_bodies,
    System 80 leader_lease,
    System 5 leader_lease_bodies,
    System 45 kubelet_node,
    System 40 kubelet_reads,
    System 40 kubelet_watch,
    System 14 kubelet_pod_status,
    System 15 kubelet_events,
    System 15 scheduler,
    System 40 controller_watch,
    System 55 controller_write,
    System 5 replicaset_creates_pod,
    System 60 addon_watch,
    System 40 addon_get,
    System 8 addon_list,
    System 30 kube_proxy,
    System 45 discovery,
    System 40 probes,
    Human 380 human_read,
    Human 70 human_discovery,
    Human 60 human_logs,
    Human 45 human_secret_read,
    Human 35 human_exec,
    Human 5 human_attach,
    Human 15 human_port_forward,
    Human 70 human_workload_change,
    Human 90 ci_deploy,
    Human 12 human_rbac_change,
    Human 8 human_secret_create,
    Human 30 human_forbidden,
    Human 25 human_not_found,
    Human 12 human_conflict,
    Human 8 human_impersonation,
    Human 3 human_privileged_pod,
    Human 8 human_pod_create,
    Human 5 human_token_request,
    Human 15 human_delete_pod,
    Noise 60 anonymous_probe,
    Noise 40 failed_authentication,
}

/// The profile used when a request must produce exactly one line (to hit the exact event count).
pub(crate) const FALLBACK: Build = node_lease;

/// Profiles grouped by class with cumulative weights, for fast picking.
pub(crate) struct Table {
    classes: [(Vec<(u32, Build)>, u32); 3],
}

impl Table {
    pub fn new() -> Table {
        let mut classes: [(Vec<(u32, Build)>, u32); 3] = Default::default();
        for p in PROFILES {
            let slot = &mut classes[p.class as usize];
            slot.1 += p.weight;
            slot.0.push((slot.1, p.build));
        }
        Table { classes }
    }

    /// A profile of `class`, by weight.
    pub fn pick(&self, class: Class, rng: &mut SmallRng) -> Build {
        let (list, total) = &self.classes[class as usize];
        let x = rng.random_range(0..(*total).max(1));
        list.iter()
            .find(|(cum, _)| x < *cum)
            .map_or(FALLBACK, |(_, b)| *b)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn borrowed(s: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(s))
}

fn owned<'w>(s: String) -> Option<Cow<'w, str>> {
    Some(Cow::Owned(s))
}

/// An informer watch as client-go's reflector issues it: long-running, ends at its randomized
/// server-side timeout (5–10 minutes).
#[allow(clippy::too_many_arguments)]
fn watch<'w>(
    w: &'w World,
    rng: &mut SmallRng,
    t: i64,
    user: usize,
    res: &'static Res,
    ns: Option<&'w str>,
    field: Option<(&str, Cow<'w, str>)>,
    label: Option<&str>,
) -> Req<'w> {
    let secs: i64 = rng.random_range(300..600);
    let mut q = String::with_capacity(160);
    q.push_str("allowWatchBookmarks=true");
    if let Some((key, value)) = &field {
        q.push_str("&fieldSelector=");
        q.push_str(key);
        q.push_str("%3D");
        q.push_str(value);
    }
    if let Some(label) = label {
        q.push_str("&labelSelector=");
        q.push_str(label);
    }
    q.push_str(&format!(
        "&resourceVersion={}&timeout={}&timeoutSeconds={secs}&watch=true",
        w.rv(t - rng.random_range(1..600) * SEC),
        fmt::go_duration(secs * SEC)
    ));
    let mut r = Req::new(user, "watch", t)
        .resource(res, ns, None, None)
        .query(&q);
    if let Some(("metadata.name", value)) = field {
        r = r.selected(value);
    }
    let duration = secs * SEC + rng.random_range(0..40 * MS);
    r.lat(rng, 0.4, 3.0).long_running(200, duration)
}

/// The informer's initial (or re-)list: served from the watch cache.
fn informer_list(rng: &mut SmallRng, t: i64, user: usize, res: &'static Res) -> Req<'static> {
    Req::new(user, "list", t)
        .resource(res, None, None, None)
        .query("limit=500&resourceVersion=0")
        .lat(rng, 3.0, 120.0)
}

/// A deployment in one of `namespaces` (which must all hold deployments).
fn deployment_in<'w>(
    w: &'w World,
    rng: &mut SmallRng,
    namespaces: &[usize],
) -> &'w world::Deployment {
    let ns = *pick(rng, namespaces);
    let list = &w.ns_deploys[ns];
    if list.is_empty() {
        return pick(rng, &w.deployments);
    }
    &w.deployments[*pick(rng, list)]
}

/// A pod of deployment `d` (or any pod in its namespace).
fn pod_of<'w>(w: &'w World, rng: &mut SmallRng, d: &world::Deployment) -> &'w world::Pod {
    let list = &w.ns_pods[d.ns];
    let own: Vec<usize> = list
        .iter()
        .copied()
        .filter(|&p| w.pods[p].name.starts_with(d.name.as_str()))
        .collect();
    if own.is_empty() {
        return &w.pods[*pick(rng, list)];
    }
    &w.pods[*pick(rng, &own)]
}

fn ns_name(w: &World, ns: usize) -> &str {
    w.namespaces[ns].name
}

// ---------------------------------------------------------------------------------------------
// System: kubelets

fn node_lease_req<'w>(w: &'w World, rng: &mut SmallRng, t: i64, bodies: bool) -> Req<'w> {
    let node = pick(rng, &w.nodes);
    let rv_old = w.rv(t - 10 * SEC);
    let mut r = Req::new(node.kubelet, "update", t)
        .resource(
            &event::LEASES,
            Some("kube-node-lease"),
            borrowed(&node.name),
            None,
        )
        .query("timeout=10s")
        .uid_rv(Some(node.lease_uid), Some(rv_old))
        .lat(rng, 1.5, 12.0);
    if bodies {
        let body = |rv: u64, renew: i64, written: i64| {
            LeaseBody {
                ns: "kube-node-lease",
                name: &node.name,
                uid: node.lease_uid,
                rv,
                created: node.created,
                holder: &node.name,
                duration_s: 40,
                acquired: None,
                renew,
                written,
                manager: "kubelet",
                owner: Some((&node.name, node.uid)),
            }
            .render()
        };
        let renew = t - rng.random_range(100..3000);
        let rv_new = w.rv(t + r.latency);
        r = r.level(Level::RequestResponse).bodies(
            Some(body(rv_old, renew, t - 10 * SEC)),
            Some(body(rv_new, renew, t)),
        );
    }
    r
}

/// Kubelet renews its node lease (every 10 s per node).
fn node_lease<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    node_lease_req(w, rng, t, false)
}

/// The same, caught by a RequestResponse rule for coordination.k8s.io.
fn node_lease_bodies<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    node_lease_req(w, rng, t, true)
}

/// Kubelet reads its Node (before a status update) or patches `nodes/status`.
fn kubelet_node<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let node = pick(rng, &w.nodes);
    if rng.random_bool(0.6) {
        Req::new(node.kubelet, "get", t)
            .resource(&event::NODES, None, borrowed(&node.name), None)
            .query("resourceVersion=0&timeout=10s")
            .lat(rng, 0.5, 4.0)
    } else {
        Req::new(node.kubelet, "patch", t)
            .resource(&event::NODES, None, borrowed(&node.name), Some("status"))
            .query("timeout=10s")
            .lat(rng, 3.0, 25.0)
    }
}

/// Kubelet reads what its pods mount (secrets, config maps), fetches projected tokens.
fn kubelet_reads<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let pod = pick(rng, &w.pods);
    let node = &w.nodes[pod.node];
    let ns = ns_name(w, pod.ns);
    let deploy = pod.deploy.map(|d| &w.deployments[d]);
    let x: f64 = rng.random();
    match deploy {
        Some(d) if x < 0.35 => Req::new(node.kubelet, "get", t)
            .resource(
                &event::SECRETS,
                Some(ns),
                owned(format!("{}-db-credentials", d.name)),
                None,
            )
            .lat(rng, 0.5, 4.0),
        Some(d) if x < 0.6 => Req::new(node.kubelet, "get", t)
            .resource(
                &event::CONFIGMAPS,
                Some(ns),
                owned(format!("{}-config", d.name)),
                None,
            )
            .lat(rng, 0.5, 4.0),
        Some(d) if x < 0.8 => {
            let jti = fmt::uuid_str(fmt::uuid_v4(rng));
            Req::new(node.kubelet, "create", t)
                .resource(
                    &event::SERVICEACCOUNTS,
                    Some(ns),
                    borrowed(&d.name),
                    Some("token"),
                )
                .annotate(
                    "authentication.kubernetes.io/issued-credential-id",
                    format!("JTI={jti}"),
                )
                .lat(rng, 2.0, 10.0)
        }
        _ => Req::new(node.kubelet, "get", t)
            .resource(&event::PODS, Some(ns), borrowed(&pod.name), None)
            .lat(rng, 0.5, 4.0),
    }
}

/// Kubelet's per-object and per-node watches.
fn kubelet_watch<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let pod = pick(rng, &w.pods);
    let node = &w.nodes[pod.node];
    let ns = ns_name(w, pod.ns);
    match rng.random_range(0..10) {
        0..=2 => watch(
            w,
            rng,
            t,
            node.kubelet,
            &event::PODS,
            None,
            Some(("spec.nodeName", Cow::Borrowed(&node.name))),
            None,
        ),
        3 => watch(
            w,
            rng,
            t,
            node.kubelet,
            &event::NODES,
            None,
            Some(("metadata.name", Cow::Borrowed(&node.name))),
            None,
        ),
        4 => watch(w, rng, t, node.kubelet, &event::SERVICES, None, None, None),
        5..=7 => watch(
            w,
            rng,
            t,
            node.kubelet,
            &event::CONFIGMAPS,
            Some(ns),
            Some(("metadata.name", Cow::Borrowed("kube-root-ca.crt"))),
            None,
        ),
        _ => {
            let secret = match pod.deploy {
                Some(d) => Cow::Owned(format!("{}-db-credentials", w.deployments[d].name)),
                None => Cow::Borrowed("kube-proxy-token"),
            };
            watch(
                w,
                rng,
                t,
                node.kubelet,
                &event::SECRETS,
                Some(ns),
                Some(("metadata.name", secret)),
                None,
            )
        }
    }
}

/// Kubelet reports pod status (strategic-merge patch, logged with its body).
fn kubelet_pod_status<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let pod = pick(rng, &w.pods);
    let node = &w.nodes[pod.node];
    let cid = fmt::random_hex(rng, 64);
    let started = t - rng.random_range(60..86_400) * SEC;
    Req::new(node.kubelet, "patch", t)
        .resource(
            &event::PODS,
            Some(ns_name(w, pod.ns)),
            borrowed(&pod.name),
            Some("status"),
        )
        .level(Level::Request)
        .bodies(
            Some(bodies::pod_status_patch(
                pod,
                started,
                t,
                rng.random_bool(0.9),
                &cid,
            )),
            None,
        )
        .lat(rng, 3.0, 20.0)
}

/// Kubelet records events (probe failures, pulls, starts).
fn kubelet_events<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let pod = pick(rng, &w.pods);
    let node = &w.nodes[pod.node];
    let verb = if rng.random_bool(0.7) {
        "create"
    } else {
        "patch"
    };
    let name = owned(format!(
        "{}.{:x}",
        pod.name,
        fmt::mix64(t as u64) & 0xffff_ffff_ffff
    ));
    let name = if verb == "create" { None } else { name };
    Req::new(node.kubelet, verb, t)
        .resource(&event::EVENTS, Some(ns_name(w, pod.ns)), name, None)
        .lat(rng, 1.0, 8.0)
}

// ---------------------------------------------------------------------------------------------
// System: control plane

fn lease_req<'w>(w: &'w World, rng: &mut SmallRng, t: i64, bodies: bool) -> Req<'w> {
    let lease = pick(rng, &w.leases);
    let rv_old = w.rv(t - 2 * SEC);
    if !lease.followers.is_empty() && rng.random_bool(0.4) {
        // A standby instance polling the lock it does not hold.
        return Req::new(lease.leader, "get", t)
            .resource(&event::LEASES, Some(lease.ns), borrowed(lease.name), None)
            .query("timeout=5s")
            .ips(pick(rng, &lease.followers).as_str())
            .ua(&lease.ua)
            .lat(rng, 0.5, 4.0);
    }
    let mut r = Req::new(lease.leader, "update", t)
        .resource(&event::LEASES, Some(lease.ns), borrowed(lease.name), None)
        .query("timeout=5s")
        .uid_rv(Some(lease.uid), Some(rv_old))
        .ua(&lease.ua)
        .lat(rng, 1.5, 10.0);
    if bodies {
        let renew = t - rng.random_range(500..2500);
        let body = |rv: u64, written: i64| {
            LeaseBody {
                ns: lease.ns,
                name: lease.name,
                uid: lease.uid,
                rv,
                created: lease.created,
                holder: &lease.holder,
                duration_s: lease.duration_s,
                acquired: Some(lease.acquired),
                renew,
                written,
                manager: lease.manager,
                owner: None,
            }
            .render()
        };
        let rv_new = w.rv(t + r.latency);
        r = r
            .level(Level::RequestResponse)
            .bodies(Some(body(rv_old, t - 2 * SEC)), Some(body(rv_new, t)));
    }
    r
}

/// Leader election of kube-scheduler, kube-controller-manager and add-on controllers.
fn leader_lease<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    lease_req(w, rng, t, false)
}

/// The same with lease bodies (RequestResponse).
fn leader_lease_bodies<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    lease_req(w, rng, t, true)
}

/// kube-scheduler binds pods and watches what it schedules against.
fn scheduler<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let id = w.scheduler;
    match rng.random_range(0..10) {
        0..=3 => {
            let pod = pick(rng, &w.pods);
            Req::new(id, "create", t)
                .resource(
                    &event::PODS,
                    Some(ns_name(w, pod.ns)),
                    borrowed(&pod.name),
                    Some("binding"),
                )
                .lat(rng, 2.0, 12.0)
        }
        4..=6 => watch(
            w,
            rng,
            t,
            id,
            &event::PODS,
            None,
            None,
            Some("status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"),
        ),
        7 => watch(w, rng, t, id, &event::NODES, None, None, None),
        8 => watch(w, rng, t, id, &event::PVCS, None, None, None),
        _ => watch(w, rng, t, id, &event::NAMESPACES, None, None, None),
    }
}

/// A kube-controller-manager controller's informer watch.
fn controller_watch<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (id, spec) = w.pick_controller(rng);
    let res = *pick(rng, spec.watches);
    if rng.random_bool(0.03) {
        return informer_list(rng, t, id, res);
    }
    watch(w, rng, t, id, res, None, None, None)
}

/// A controller writes status or owned objects.
fn controller_write<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (mut id, mut spec) = w.pick_controller(rng);
    for _ in 0..16 {
        if !spec.writes.is_empty() {
            break;
        }
        (id, spec) = w.pick_controller(rng);
    }
    let Some(&(verb, res, sub)) = spec
        .writes
        .get(rng.random_range(0..spec.writes.len().max(1)))
    else {
        return controller_watch(w, rng, t);
    };
    let d = deployment_in(w, rng, &w.busy_ns);
    let ns = ns_name(w, d.ns);
    let (ns, name, uid): (Option<&str>, Option<Cow<'_, str>>, Option<u128>) = match res.resource {
        "replicasets" => (
            Some(ns),
            owned(format!("{}-{}", d.name, d.rs_hash)),
            Some(d.rs_uid),
        ),
        "deployments" | "horizontalpodautoscalers" => (Some(ns), borrowed(&d.name), Some(d.uid)),
        "endpointslices" => {
            let name =
                (verb != "create").then(|| Cow::Owned(format!("{}-{}", d.name, &d.rs_hash[..5])));
            let uid = w.derived_uid("endpointslices", ns, &d.name);
            (Some(ns), name, Some(uid))
        }
        "pods" => {
            let pod = pod_of(w, rng, d);
            (Some(ns), borrowed(&pod.name), Some(pod.uid))
        }
        "jobs" => {
            let minutes = t / (60 * SEC) / 15 * 15;
            let name = format!("{}-cleanup-{minutes}", d.name);
            let uid = w.derived_uid("jobs", ns, &name);
            (Some(ns), owned(name), Some(uid))
        }
        "cronjobs" => {
            let name = format!("{}-cleanup", d.name);
            let uid = w.derived_uid("cronjobs", ns, &name);
            (Some(ns), owned(name), Some(uid))
        }
        "nodes" => {
            let node = pick(rng, &w.nodes);
            (None, borrowed(&node.name), Some(node.uid))
        }
        "statefulsets" => (
            Some("monitoring"),
            borrowed("prometheus-k8s"),
            Some(w.derived_uid("statefulsets", "monitoring", "prometheus-k8s")),
        ),
        _ => (
            Some("kube-system"),
            borrowed("kube-proxy"),
            Some(w.derived_uid("daemonsets", "kube-system", "kube-proxy")),
        ),
    };
    let writes = verb != "get" && verb != "create";
    let mut r = Req::new(id, verb, t)
        .resource(res, ns, name, sub)
        .lat(rng, 2.0, 25.0);
    if writes {
        r = r.uid_rv(uid, Some(w.rv(t - rng.random_range(1..300) * SEC)));
        if verb == "update" && rng.random_bool(0.03) {
            r = r.outcome(Outcome::Conflict);
        }
    }
    r
}

/// The ReplicaSet controller creates a pod (pod-security admission annotates it).
fn replicaset_creates_pod<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (id, _) = w
        .controllers
        .iter()
        .find(|(_, c)| c.name == "replicaset-controller")
        .copied()
        .unwrap_or(w.controllers[0]);
    let d = deployment_in(w, rng, &w.busy_ns);
    let ns = &w.namespaces[d.ns];
    Req::new(id, "create", t)
        .resource(&event::PODS, Some(ns.name), None, None)
        .level(Level::Request)
        .bodies(Some(bodies::replicaset_pod(d, ns.name)), None)
        .annotate(
            "pod-security.kubernetes.io/enforce-policy",
            ns.enforce_policy(),
        )
        .lat(rng, 5.0, 30.0)
}

// ---------------------------------------------------------------------------------------------
// System: add-ons and node agents

/// Add-on informers (coredns, prometheus, argocd, cert-manager, ...).
fn addon_watch<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (mut id, mut spec, _) = w.pick_addon(rng);
    for _ in 0..16 {
        if !spec.watches.is_empty() {
            break;
        }
        (id, spec, _) = w.pick_addon(rng);
    }
    if spec.watches.is_empty() {
        return discovery(w, rng, t);
    }
    let res = *pick(rng, spec.watches);
    watch(w, rng, t, id, res, None, None, None)
}

/// Add-on list (resync or restart).
fn addon_list<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (id, spec, _) = w.pick_addon(rng);
    let res = spec.watches.first().copied().unwrap_or(&event::PODS);
    informer_list(rng, t, id, res)
}

/// Add-ons reading named objects (cert-manager secrets, fluent-bit pod metadata, ...).
fn addon_get<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (mut id, mut spec, _) = w.pick_addon(rng);
    for _ in 0..16 {
        if !spec.gets.is_empty() {
            break;
        }
        (id, spec, _) = w.pick_addon(rng);
    }
    let res = spec
        .gets
        .first()
        .map_or(&event::PODS, |_| *pick(rng, spec.gets));
    let d = deployment_in(w, rng, &w.busy_ns);
    let ns = ns_name(w, d.ns);
    let (ns, name): (Option<&str>, Option<Cow<'_, str>>) = match res.resource {
        "secrets" | "certificates" => (Some(ns), owned(format!("{}-tls", d.name))),
        "applications" => (Some("argocd"), owned(format!("{}-{}", d.team, d.name))),
        "nodes" => (None, borrowed(&pick(rng, &w.nodes).name)),
        "pods" => (Some(ns), borrowed(&pod_of(w, rng, d).name)),
        _ => (Some(ns), borrowed(&d.name)),
    };
    let mut r = Req::new(id, "get", t)
        .resource(res, ns, name, None)
        .lat(rng, 0.5, 5.0);
    if res.resource == "secrets" && rng.random_bool(0.05) {
        r = r.outcome(Outcome::NotFound);
    }
    r
}

/// kube-proxy on every node watches services, endpoint slices and its node.
fn kube_proxy<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let node = pick(rng, &w.nodes);
    let selector =
        "%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name";
    match rng.random_range(0..5) {
        0 | 1 => watch(
            w,
            rng,
            t,
            node.kube_proxy,
            &event::ENDPOINTSLICES,
            None,
            None,
            Some(selector),
        ),
        2 | 3 => watch(
            w,
            rng,
            t,
            node.kube_proxy,
            &event::SERVICES,
            None,
            None,
            Some(
                "%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name",
            ),
        ),
        _ => watch(
            w,
            rng,
            t,
            node.kube_proxy,
            &event::NODES,
            None,
            Some(("metadata.name", Cow::Borrowed(&node.name))),
            None,
        ),
    }
}

const DISCOVERY_PATHS: &[(&str, bool)] = &[
    ("/api", true),
    ("/apis", true),
    ("/api/v1", true),
    ("/apis/apps/v1", true),
    ("/openapi/v2", true),
    ("/openapi/v3", true),
    ("/version", false),
    ("/healthz", false),
];

/// Non-resource discovery and health requests by components.
fn discovery<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let id = match rng.random_range(0..4) {
        0 => w.nodes[rng.random_range(0..w.nodes.len())].kubelet,
        1 => w.pick_controller(rng).0,
        2 => w.pick_addon(rng).0,
        _ => *pick(rng, &[w.kcm, w.scheduler]),
    };
    let &(path, discovery) = pick(rng, DISCOVERY_PATHS);
    let reason = if discovery {
        world::DISCOVERY_REASON.to_string()
    } else {
        world::crb_reason(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "Group \"system:authenticated\"",
        )
    };
    let mut r = Req::new(id, "get", t)
        .path(path)
        .reason(reason)
        .lat(rng, 0.3, 4.0);
    if path.starts_with("/api") || path.starts_with("/openapi") {
        r = r.query("timeout=32s");
    }
    if path.starts_with("/openapi") {
        r = r.lat(rng, 5.0, 60.0);
    }
    r
}

/// The apiserver's own liveness/readiness probes (anonymous, from the control-plane nodes).
fn probes<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    const CP_IPS: &[&str] = &["[\"10.20.0.10\"]", "[\"10.20.0.11\"]", "[\"10.20.0.12\"]"];
    let path = *pick(rng, &["/livez", "/readyz", "/readyz", "/livez"]);
    let ips = *pick(rng, CP_IPS);
    Req::new(w.anonymous, "get", t)
        .path(path)
        .ips(ips)
        .reason(world::PUBLIC_INFO_REASON)
        .lat(rng, 0.2, 3.0)
}

// ---------------------------------------------------------------------------------------------
// People

/// A request by `h`: office IP during the day, VPN otherwise; sometimes their second client.
fn by<'w>(h: &'w Human, verb: &'static str, t: i64, rng: &mut SmallRng) -> Req<'w> {
    let hour = (t / (3600 * SEC)).rem_euclid(24);
    let ips = if (8..18).contains(&hour) && rng.random_bool(0.8) {
        &h.office_ips
    } else {
        &h.vpn_ips
    };
    let mut r = Req::new(h.id, verb, t).ips(ips);
    if let Some(alt) = h.alt_ua
        && rng.random_bool(0.3)
    {
        r = r.ua(alt);
    }
    r
}

/// A namespace `h` works in.
fn ns_of(rng: &mut SmallRng, h: &Human) -> usize {
    *pick(rng, &h.namespaces)
}

const READ_RESOURCES: &[(&Res, u32)] = &[
    (&event::PODS, 40),
    (&event::DEPLOYMENTS, 18),
    (&event::SERVICES, 10),
    (&event::CONFIGMAPS, 8),
    (&event::EVENTS, 8),
    (&event::REPLICASETS, 4),
    (&event::INGRESSES, 4),
    (&event::HPAS, 3),
    (&event::NAMESPACES, 3),
    (&event::NODES, 2),
];

/// `kubectl get/describe` of workloads.
fn human_read<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |_| true);
    let &(mut res, _) = world::pick_weighted(rng, READ_RESOURCES, 100, |r| r.1);
    if res.resource == "nodes" && !h.cluster_wide() {
        res = &event::PODS;
    }
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    if !res.namespaced {
        let verb = if rng.random_bool(0.8) { "list" } else { "get" };
        let name = if verb == "get" {
            match res.resource {
                "nodes" => borrowed(&pick(rng, &w.nodes).name),
                _ => borrowed(ns_str),
            }
        } else {
            None
        };
        let mut r = by(h, verb, t, rng)
            .resource(res, None, name, None)
            .reason(h.reason(None))
            .lat(rng, 1.0, 15.0);
        if verb == "list" {
            r = r.query("limit=500");
        } else if res.resource == "namespaces" {
            // A namespace's objectRef namespace is the namespace itself.
            if let Some(obj) = &mut r.obj {
                obj.namespace = Some(ns_str);
            }
        }
        return r;
    }
    let d = deployment_in(w, rng, &[ns]);
    let x: f64 = rng.random();
    let reason = h.reason(Some(ns_str));
    if x < 0.55 {
        let q = if res.resource == "events" && rng.random_bool(0.5) {
            let pod = pod_of(w, rng, d);
            format!(
                "fieldSelector=involvedObject.name%3D{}%2CinvolvedObject.namespace%3D{ns_str}%2CinvolvedObject.uid%3D{}&limit=500",
                pod.name,
                fmt::uuid_str(pod.uid)
            )
        } else {
            "limit=500".to_string()
        };
        return by(h, "list", t, rng)
            .resource(res, Some(ns_str), None, None)
            .query(&q)
            .reason(reason)
            .lat(rng, 2.0, 40.0);
    }
    if x < 0.6 && res.resource == "pods" {
        // `kubectl get pods -w`
        let secs = rng.random_range(10..900);
        return by(h, "watch", t, rng)
            .resource(res, Some(ns_str), None, None)
            .query(&format!(
                "resourceVersion={}&watch=true",
                w.rv(t - rng.random_range(1..5) * SEC)
            ))
            .reason(reason)
            .lat(rng, 0.5, 3.0)
            .long_running(200, secs * SEC);
    }
    let name = match res.resource {
        "pods" => borrowed(&pod_of(w, rng, d).name),
        "replicasets" => owned(format!("{}-{}", d.name, d.rs_hash)),
        "configmaps" => owned(format!("{}-config", d.name)),
        "events" => None,
        _ => borrowed(&d.name),
    };
    let verb = if name.is_some() { "get" } else { "list" };
    by(h, verb, t, rng)
        .resource(res, Some(ns_str), name, None)
        .reason(reason)
        .lat(rng, 0.8, 8.0)
}

/// kubectl's discovery round-trips.
fn human_discovery<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |_| true);
    let path = *pick(
        rng,
        &["/api", "/apis", "/api", "/apis", "/openapi/v2", "/version"],
    );
    let reason = if path == "/version" {
        world::crb_reason(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "Group \"system:authenticated\"",
        )
    } else {
        world::DISCOVERY_REASON.to_string()
    };
    by(h, "get", t, rng)
        .path(path)
        .query("timeout=32s")
        .reason(reason)
        .lat(rng, 0.3, 6.0)
}

/// `kubectl logs` (a long-running request: ResponseStarted, then ResponseComplete).
fn human_logs<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.role != Role::Security);
    let ns = ns_of(rng, h);
    let d = deployment_in(w, rng, &[ns]);
    let pod = pod_of(w, rng, d);
    let follow = rng.random_bool(0.3);
    let q = match (follow, rng.random_range(0..3)) {
        (true, _) => format!("container={}&follow=true&tailLines=10", pod.container),
        (false, 0) => format!("container={}&previous=true", pod.container),
        (false, 1) => format!("container={}&tailLines=100", pod.container),
        _ => format!("container={}", pod.container),
    };
    let duration = if follow {
        rng.random_range(10..900) * SEC
    } else {
        rng.random_range(20..2500) * MS
    };
    let ns_str = ns_name(w, ns);
    by(h, "get", t, rng)
        .resource(&event::PODS, Some(ns_str), borrowed(&pod.name), Some("log"))
        .query(&q)
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 3.0, 30.0)
        .long_running(200, duration)
}

/// Reading secrets: Metadata level, never bodies.
fn human_secret_read<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| {
        !matches!(h.role, Role::ReadOnly | Role::Contractor)
    });
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    match rng.random_range(0..10) {
        0..=4 => {
            let suffix = *pick(rng, &["db-credentials", "tls", "api-key"]);
            by(h, "get", t, rng)
                .resource(
                    &event::SECRETS,
                    Some(ns_str),
                    owned(format!("{}-{suffix}", d.name)),
                    None,
                )
                .reason(h.reason(Some(ns_str)))
                .lat(rng, 0.5, 4.0)
        }
        5..=8 => by(h, "list", t, rng)
            .resource(&event::SECRETS, Some(ns_str), None, None)
            .query("limit=500")
            .reason(h.reason(Some(ns_str)))
            .lat(rng, 2.0, 20.0),
        _ => {
            if h.cluster_wide() {
                by(h, "list", t, rng)
                    .resource(&event::SECRETS, None, None, None)
                    .query("limit=500")
                    .reason(h.reason(None))
                    .lat(rng, 10.0, 120.0)
            } else {
                by(h, "list", t, rng)
                    .resource(&event::SECRETS, Some(ns_str), None, None)
                    .query("limit=500")
                    .reason(h.reason(Some(ns_str)))
                    .lat(rng, 2.0, 20.0)
            }
        }
    }
}

/// Who may exec/attach/port-forward, and in which namespace.
fn interactive_target<'w>(w: &'w World, rng: &mut SmallRng) -> (&'w Human, usize) {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = if h.cluster_wide() && rng.random_bool(0.15) {
        // Platform people also debug the platform itself.
        *pick(rng, &w.busy_ns)
    } else {
        ns_of(rng, h)
    };
    (h, ns)
}

/// Percent-encodes a command argument the way Go's `url.Values.Encode` does.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

const EXEC_COMMANDS: &[(&[&str], bool)] = &[
    (&["sh"], true),
    (&["bash"], true),
    (&["/bin/sh"], true),
    (&["sh", "-c", "env"], false),
    (&["cat", "/etc/app/config.yaml"], false),
    (
        &["ls", "-la", "/var/run/secrets/kubernetes.io/serviceaccount"],
        false,
    ),
    (&["curl", "-s", "localhost:8080/healthz"], false),
    (&["psql", "-U", "app"], true),
];

/// `kubectl exec`: code 101 on ResponseStarted, then ResponseComplete when the stream ends.
fn human_exec<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (h, ns) = interactive_target(w, rng);
    let d = deployment_in(w, rng, &[ns]);
    let pod = pod_of(w, rng, d);
    let &(cmd, tty) = pick(rng, EXEC_COMMANDS);
    let mut q = String::with_capacity(128);
    for arg in cmd {
        q.push_str("command=");
        q.push_str(&query_escape(arg));
        q.push('&');
    }
    q.push_str("container=");
    q.push_str(pod.container);
    q.push_str(if tty {
        "&stdin=true&stdout=true&tty=true"
    } else {
        "&stderr=true&stdout=true"
    });
    let duration = if tty {
        rng.random_range(5..1800) * SEC
    } else {
        rng.random_range(150..3000) * MS
    };
    let verb = if h.kubectl.websocket { "get" } else { "create" };
    let ns_str = ns_name(w, ns);
    by(h, verb, t, rng)
        .resource(
            &event::PODS,
            Some(ns_str),
            borrowed(&pod.name),
            Some("exec"),
        )
        .query(&q)
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 15.0, 80.0)
        .long_running(101, duration)
}

/// `kubectl attach`.
fn human_attach<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (h, ns) = interactive_target(w, rng);
    let d = deployment_in(w, rng, &[ns]);
    let pod = pod_of(w, rng, d);
    let verb = if h.kubectl.websocket { "get" } else { "create" };
    let ns_str = ns_name(w, ns);
    by(h, verb, t, rng)
        .resource(
            &event::PODS,
            Some(ns_str),
            borrowed(&pod.name),
            Some("attach"),
        )
        .query(&format!(
            "container={}&stdin=true&stdout=true&tty=true",
            pod.container
        ))
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 15.0, 60.0)
        .long_running(101, rng.random_range(5..900) * SEC)
}

/// `kubectl port-forward` (often to a database proxy).
fn human_port_forward<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let (h, ns) = interactive_target(w, rng);
    let d = deployment_in(w, rng, &[ns]);
    let pod = pod_of(w, rng, d);
    let ns_str = ns_name(w, ns);
    by(h, "create", t, rng)
        .resource(
            &event::PODS,
            Some(ns_str),
            borrowed(&pod.name),
            Some("portforward"),
        )
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 10.0, 50.0)
        .long_running(101, rng.random_range(30..3600) * SEC)
}

/// A person changes workloads: scale, restart, set image, edit/create/replace/delete objects.
fn human_workload_change<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let reason = h.reason(Some(ns_str));
    let rv_old = w.rv(t - rng.random_range(60..86_400) * SEC);
    let r = match rng.random_range(0..9) {
        0 => {
            let replicas = rng.random_range(1..6);
            by(h, "patch", t, rng)
                .resource(
                    &event::DEPLOYMENTS,
                    Some(ns_str),
                    borrowed(&d.name),
                    Some("scale"),
                )
                .query("fieldManager=kubectl-scale")
                .level(Level::RequestResponse)
                .bodies(
                    Some(format!(r#"{{"spec":{{"replicas":{replicas}}}}}"#)),
                    Some(bodies::scale_object(
                        d,
                        ns_str,
                        w.rv(t),
                        replicas,
                        d.replicas,
                    )),
                )
        }
        1 => by(h, "patch", t, rng)
            .resource(&event::DEPLOYMENTS, Some(ns_str), borrowed(&d.name), None)
            .query("fieldManager=kubectl-rollout")
            .level(Level::RequestResponse)
            .bodies(
                Some(bodies::restart_patch(t)),
                Some(bodies::deployment_object(
                    d,
                    ns_str,
                    &d.image,
                    d.replicas,
                    w.rv(t),
                    rng.random_range(2..60),
                    t,
                    "kubectl-rollout",
                    "Update",
                )),
            ),
        2 => {
            let image = format!("{}-hotfix{}", d.image, rng.random_range(1..5));
            by(h, "patch", t, rng)
                .resource(&event::DEPLOYMENTS, Some(ns_str), borrowed(&d.name), None)
                .query("fieldManager=kubectl-set")
                .level(Level::RequestResponse)
                .bodies(
                    Some(bodies::set_image_patch(&image)),
                    Some(bodies::deployment_object(
                        d,
                        ns_str,
                        &image,
                        d.replicas,
                        w.rv(t),
                        rng.random_range(2..60),
                        t,
                        "kubectl-set",
                        "Update",
                    )),
                )
        }
        3 => {
            let name = format!("{}-config", d.name);
            let uid = w.derived_uid("configmaps", ns_str, &name);
            let variant = rng.random::<u64>();
            by(h, "patch", t, rng)
                .resource(&event::CONFIGMAPS, Some(ns_str), owned(name.clone()), None)
                .query("fieldManager=kubectl-edit&fieldValidation=Strict")
                .level(Level::RequestResponse)
                .bodies(
                    Some(r#"{"data":{"LOG_LEVEL":"debug"}}"#.to_string()),
                    Some(bodies::configmap(
                        ns_str,
                        &name,
                        Some(Meta {
                            uid,
                            rv: w.rv(t),
                            created: d.created,
                            written: t,
                            manager: "kubectl-edit",
                        }),
                        variant,
                    )),
                )
        }
        4 => {
            let name = format!("{}-flags-{}", d.name, fmt::name_suffix(rng, 4));
            let uid = fmt::uuid_v4(rng);
            let variant = rng.random::<u64>();
            by(h, "create", t, rng)
                .resource(&event::CONFIGMAPS, Some(ns_str), owned(name.clone()), None)
                .query("fieldManager=kubectl-create&fieldValidation=Strict")
                .level(Level::RequestResponse)
                .bodies(
                    Some(bodies::configmap(ns_str, &name, None, variant)),
                    Some(bodies::configmap(
                        ns_str,
                        &name,
                        Some(Meta {
                            uid,
                            rv: w.rv(t),
                            created: t,
                            written: t,
                            manager: "kubectl-create",
                        }),
                        variant,
                    )),
                )
        }
        5 => {
            let name = format!("{}-config", d.name);
            let uid = w.derived_uid("configmaps", ns_str, &name);
            let variant = rng.random::<u64>();
            by(h, "update", t, rng)
                .resource(&event::CONFIGMAPS, Some(ns_str), owned(name.clone()), None)
                .query("fieldManager=kubectl-replace&fieldValidation=Strict")
                .uid_rv(Some(uid), Some(rv_old))
                .level(Level::Request)
                .bodies(
                    Some(bodies::configmap(
                        ns_str,
                        &name,
                        Some(Meta {
                            uid,
                            rv: rv_old,
                            created: d.created,
                            written: t - 3600 * SEC,
                            manager: "kubectl-replace",
                        }),
                        variant,
                    )),
                    None,
                )
        }
        6 => {
            let uid = fmt::uuid_v4(rng);
            let ip = format!(
                "10.96.{}.{}",
                rng.random_range(0..255),
                rng.random_range(2..255)
            );
            by(h, "create", t, rng)
                .resource(&event::SERVICES, Some(ns_str), borrowed(&d.name), None)
                .query("fieldManager=kubectl-create&fieldValidation=Strict")
                .level(Level::RequestResponse)
                .bodies(
                    Some(bodies::service(d, ns_str, None, &ip)),
                    Some(bodies::service(
                        d,
                        ns_str,
                        Some(Meta {
                            uid,
                            rv: w.rv(t),
                            created: t,
                            written: t,
                            manager: "kubectl-create",
                        }),
                        &ip,
                    )),
                )
        }
        7 => {
            let (res, name) = if rng.random_bool(0.5) {
                (&event::SERVICES, Cow::Borrowed(d.name.as_str()))
            } else {
                (&event::CONFIGMAPS, Cow::Owned(format!("{}-flags", d.name)))
            };
            by(h, "delete", t, rng)
                .resource(res, Some(ns_str), Some(name), None)
                .level(Level::Request)
                .bodies(Some(bodies::DELETE_OPTIONS.to_string()), None)
        }
        _ => {
            let replicas = d.replicas + 1;
            by(h, "patch", t, rng)
                .resource(&event::DEPLOYMENTS, Some(ns_str), borrowed(&d.name), None)
                .query("fieldManager=kubectl-client-side-apply&fieldValidation=Strict")
                .level(Level::RequestResponse)
                .bodies(
                    Some(format!(r#"{{"spec":{{"replicas":{replicas}}}}}"#)),
                    Some(bodies::deployment_object(
                        d,
                        ns_str,
                        &d.image,
                        replicas,
                        w.rv(t),
                        rng.random_range(2..60),
                        t,
                        "kubectl-client-side-apply",
                        "Update",
                    )),
                )
        }
    };
    r.reason(reason).lat(rng, 5.0, 40.0)
}

/// The CI pipeline deploys with `kubectl apply --server-side` and waits for the rollout.
fn ci_deploy<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let team_ns: Vec<usize> = w
        .busy_ns
        .iter()
        .copied()
        .filter(|&n| w.namespaces[n].team.is_some())
        .collect();
    let ns_list = if team_ns.is_empty() {
        &w.busy_ns
    } else {
        &team_ns
    };
    let d = deployment_in(w, rng, ns_list);
    let ns_str = ns_name(w, d.ns);
    let reason = world::rb_reason(
        "ci-deployer",
        ns_str,
        "ClusterRole",
        "edit",
        "ServiceAccount \"deployer/ci\"",
    );
    let r = match rng.random_range(0..20) {
        0..=7 => {
            // CI tags images with the commit it built.
            let repo = d
                .image
                .rsplit_once(':')
                .map_or(d.image.as_str(), |(a, _)| a);
            let image = format!("{repo}:{}", fmt::random_hex(rng, 8));
            Req::new(w.ci, "patch", t)
                .resource(&event::DEPLOYMENTS, Some(ns_str), borrowed(&d.name), None)
                .query("fieldManager=kubectl&fieldValidation=Strict&force=false")
                .level(Level::RequestResponse)
                .bodies(
                    Some(bodies::deployment_manifest(d, ns_str, &image, d.replicas)),
                    Some(bodies::deployment_object(
                        d,
                        ns_str,
                        &image,
                        d.replicas,
                        w.rv(t),
                        rng.random_range(2..200),
                        t,
                        "kubectl",
                        "Apply",
                    )),
                )
                .lat(rng, 8.0, 60.0)
        }
        8..=13 => Req::new(w.ci, "get", t)
            .resource(&event::DEPLOYMENTS, Some(ns_str), borrowed(&d.name), None)
            .lat(rng, 0.5, 5.0),
        14..=16 => {
            let secs = rng.random_range(10..240);
            Req::new(w.ci, "watch", t)
                .resource(&event::DEPLOYMENTS, Some(ns_str), None, None)
                .query(&format!(
                    "fieldSelector=metadata.name%3D{}&resourceVersion={}&watch=true",
                    d.name,
                    w.rv(t - SEC)
                ))
                .selected(Cow::Borrowed(&d.name))
                .lat(rng, 0.5, 3.0)
                .long_running(200, secs * SEC)
        }
        _ => {
            return Req::new(w.ci, "get", t)
                .path(if rng.random_bool(0.5) {
                    "/api"
                } else {
                    "/apis"
                })
                .query("timeout=32s")
                .reason(world::DISCOVERY_REASON)
                .lat(rng, 0.3, 4.0);
        }
    };
    r.reason(reason)
}

/// RBAC changes by administrators (RequestResponse with bodies); a few are risky.
fn human_rbac_change<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.admin());
    let team_ns: Vec<usize> = w
        .busy_ns
        .iter()
        .copied()
        .filter(|&n| w.namespaces[n].team.is_some())
        .collect();
    let ns = *pick(
        rng,
        if team_ns.is_empty() {
            &w.busy_ns
        } else {
            &team_ns
        },
    );
    let ns_str = ns_name(w, ns);
    let team = w.namespaces[ns].team.unwrap_or("platform");
    let group = format!("team-{team}");
    let uid = fmt::uuid_v4(rng);
    let rv = w.rv(t);
    let server = || {
        Some(Meta {
            uid,
            rv,
            created: t,
            written: t,
            manager: "kubectl-create",
        })
    };
    let pod_reader: &[(&str, &str, &str)] = &[(
        r#"[""]"#,
        r#"["pods","pods/log"]"#,
        r#"["get","list","watch"]"#,
    )];
    let reader_rules: &[(&str, &str, &str)] = &[
        (r#"[""]"#, r#"["namespaces"]"#, r#"["get","list","watch"]"#),
        (
            r#"["apps"]"#,
            r#"["deployments","replicasets"]"#,
            r#"["get","list"]"#,
        ),
    ];
    let q_create = "fieldManager=kubectl-create&fieldValidation=Strict";
    let r = match rng.random_range(0..10) {
        0..=2 => {
            let name = format!("{group}-view-{}", fmt::name_suffix(rng, 4));
            let body = RbacBody {
                kind: "RoleBinding",
                name: &name,
                ns: Some(ns_str),
                rules: &[],
                subject: Some(("Group", &group, None)),
                role_ref: Some(("ClusterRole", "view")),
            };
            by(h, "create", t, rng)
                .resource(
                    &event::ROLEBINDINGS,
                    Some(ns_str),
                    owned(name.clone()),
                    None,
                )
                .query(q_create)
                .bodies(Some(body.render(None)), Some(body.render(server())))
        }
        3 | 4 => {
            let name = format!("pod-reader-{}", fmt::name_suffix(rng, 4));
            let body = RbacBody {
                kind: "Role",
                name: &name,
                ns: Some(ns_str),
                rules: pod_reader,
                subject: None,
                role_ref: None,
            };
            by(h, "create", t, rng)
                .resource(&event::ROLES, Some(ns_str), owned(name.clone()), None)
                .query(q_create)
                .bodies(Some(body.render(None)), Some(body.render(server())))
        }
        5 => {
            let body = RbacBody {
                kind: "ClusterRole",
                name: "namespace-reader",
                ns: None,
                rules: reader_rules,
                subject: None,
                role_ref: None,
            };
            let old = w.rv(t - 86_400 * SEC);
            by(h, "update", t, rng)
                .resource(
                    &event::CLUSTERROLES,
                    None,
                    borrowed("namespace-reader"),
                    None,
                )
                .query("fieldManager=kubectl-replace&fieldValidation=Strict")
                .uid_rv(
                    Some(w.derived_uid("clusterroles", "", "namespace-reader")),
                    Some(old),
                )
                .bodies(
                    Some(body.render(Some(Meta {
                        uid: w.derived_uid("clusterroles", "", "namespace-reader"),
                        rv: old,
                        created: w.created_long_ago(),
                        written: t - 86_400 * SEC,
                        manager: "kubectl-replace",
                    }))),
                    Some(body.render(Some(Meta {
                        uid: w.derived_uid("clusterroles", "", "namespace-reader"),
                        rv,
                        created: w.created_long_ago(),
                        written: t,
                        manager: "kubectl-replace",
                    }))),
                )
        }
        6 => {
            let body = RbacBody {
                kind: "ClusterRoleBinding",
                name: "readonly-view",
                ns: None,
                rules: &[],
                subject: Some(("Group", "readonly", None)),
                role_ref: Some(("ClusterRole", "view")),
            };
            by(h, "patch", t, rng)
                .resource(
                    &event::CLUSTERROLEBINDINGS,
                    None,
                    borrowed("readonly-view"),
                    None,
                )
                .query("fieldManager=kubectl-patch")
                .bodies(
                    Some(r#"{"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"readonly"}]}"#.to_string()),
                    Some(body.render(Some(Meta {
                        uid: w.derived_uid("clusterrolebindings", "", "readonly-view"),
                        rv,
                        created: w.created_long_ago(),
                        written: t,
                        manager: "kubectl-patch",
                    }))),
                )
        }
        7 | 8 => {
            let name = format!("{group}-view-old");
            by(h, "delete", t, rng)
                .resource(&event::ROLEBINDINGS, Some(ns_str), owned(name), None)
                .bodies(Some(bodies::DELETE_OPTIONS.to_string()), None)
                .level(Level::Request)
        }
        _ => {
            // The one an auditor wants to find: cluster-admin handed to a single account.
            let (kind, subject, sub_ns) = if rng.random_bool(0.5) {
                ("User", "mallory@contractor.example.net", None)
            } else {
                ("ServiceAccount", "default", Some("sandbox"))
            };
            let name = format!("tmp-admin-{}", fmt::name_suffix(rng, 5));
            let body = RbacBody {
                kind: "ClusterRoleBinding",
                name: &name,
                ns: None,
                rules: &[],
                subject: Some((kind, subject, sub_ns)),
                role_ref: Some(("ClusterRole", "cluster-admin")),
            };
            by(h, "create", t, rng)
                .resource(&event::CLUSTERROLEBINDINGS, None, owned(name.clone()), None)
                .query(q_create)
                .bodies(Some(body.render(None)), Some(body.render(server())))
        }
    };
    let level = if r.level == Level::Request {
        Level::Request
    } else {
        Level::RequestResponse
    };
    let reason = h.reason(Some(ns_str));
    r.level(level).reason(reason).lat(rng, 4.0, 25.0)
}

/// `kubectl create secret` (Metadata level: secret bodies are never logged).
fn human_secret_create<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let mut r = by(h, "create", t, rng)
        .resource(
            &event::SECRETS,
            Some(ns_str),
            owned(format!("{}-api-key", d.name)),
            None,
        )
        .query("fieldManager=kubectl-create&fieldValidation=Strict")
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 3.0, 15.0);
    if rng.random_bool(0.15) {
        r = r.outcome(Outcome::AlreadyExists);
    }
    r
}

/// Requests RBAC denies: the 403s an audit looks for.
fn human_forbidden<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| !h.admin());
    let own = ns_of(rng, h);
    let others: Vec<usize> = w
        .busy_ns
        .iter()
        .copied()
        .filter(|n| !h.namespaces.contains(n))
        .collect();
    let other = if others.is_empty() {
        own
    } else {
        *pick(rng, &others)
    };
    let other_str = ns_name(w, other);
    let r = match (h.role, rng.random_range(0..6)) {
        (Role::ReadOnly, 0..=3) | (Role::Security, 0..=1) => {
            // `view` does not include secrets.
            let d = deployment_in(w, rng, &[own]);
            let ns_str = ns_name(w, own);
            if rng.random_bool(0.5) {
                by(h, "get", t, rng).resource(
                    &event::SECRETS,
                    Some(ns_str),
                    owned(format!("{}-db-credentials", d.name)),
                    None,
                )
            } else {
                by(h, "list", t, rng)
                    .resource(&event::SECRETS, Some(ns_str), None, None)
                    .query("limit=500")
            }
        }
        (Role::Security, _) => {
            let d = deployment_in(w, rng, &[own]);
            let pod = pod_of(w, rng, d);
            by(
                h,
                if h.kubectl.websocket { "get" } else { "create" },
                t,
                rng,
            )
            .resource(
                &event::PODS,
                Some(ns_name(w, own)),
                borrowed(&pod.name),
                Some("exec"),
            )
            .query("command=sh&container=app&stdin=true&stdout=true&tty=true")
        }
        (_, 0) => by(h, "list", t, rng)
            .resource(&event::SECRETS, Some("kube-system"), None, None)
            .query("limit=500"),
        (_, 1) => by(h, "list", t, rng)
            .resource(&event::NODES, None, None, None)
            .query("limit=500"),
        (_, 2) => {
            let d = deployment_in(w, rng, &[other]);
            by(h, "get", t, rng).resource(
                &event::SECRETS,
                Some(other_str),
                owned(format!("{}-db-credentials", d.name)),
                None,
            )
        }
        (_, 3) => {
            let d = deployment_in(w, rng, &[other]);
            let pod = pod_of(w, rng, d);
            by(
                h,
                if h.kubectl.websocket { "get" } else { "create" },
                t,
                rng,
            )
            .resource(
                &event::PODS,
                Some(other_str),
                borrowed(&pod.name),
                Some("exec"),
            )
            .query("command=sh&container=app&stdin=true&stdout=true&tty=true")
        }
        (_, 4) => by(h, "create", t, rng)
            .resource(
                &event::CLUSTERROLEBINDINGS,
                None,
                owned(format!("{}-admin", h.group)),
                None,
            )
            .query("fieldManager=kubectl-create&fieldValidation=Strict"),
        _ => by(h, "create", t, rng).resource(
            &event::SERVICEACCOUNTS,
            Some("kube-system"),
            borrowed("default"),
            Some("token"),
        ),
    };
    r.outcome(Outcome::Forbidden).lat(rng, 0.3, 3.0)
}

/// 404s: stale names, typos.
fn human_not_found<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |_| true);
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let (res, name) = match rng.random_range(0..4) {
        0 => (
            &event::PODS,
            format!(
                "{}-{}-{}",
                d.name,
                fmt::name_suffix(rng, 10),
                fmt::name_suffix(rng, 5)
            ),
        ),
        1 => (&event::DEPLOYMENTS, format!("{}-v2", d.name)),
        2 => (&event::CONFIGMAPS, format!("{}-settings", d.name)),
        _ => (&event::SERVICES, format!("{}-svc", d.name)),
    };
    by(h, "get", t, rng)
        .resource(res, Some(ns_str), owned(name), None)
        .outcome(Outcome::NotFound)
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 0.5, 4.0)
}

/// 409s: an update raced with someone else, or a create of an existing name.
fn human_conflict<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let name = format!("{}-config", d.name);
    let uid = w.derived_uid("configmaps", ns_str, &name);
    let rv_old = w.rv(t - rng.random_range(60..3600) * SEC);
    let variant = rng.random::<u64>();
    let meta = Meta {
        uid,
        rv: rv_old,
        created: d.created,
        written: t - rng.random_range(3600..86_400) * SEC,
        manager: "kubectl-replace",
    };
    let body = bodies::configmap(ns_str, &name, Some(meta), variant);
    let r = if rng.random_bool(0.7) {
        by(h, "update", t, rng)
            .resource(&event::CONFIGMAPS, Some(ns_str), owned(name), None)
            .query("fieldManager=kubectl-replace&fieldValidation=Strict")
            .uid_rv(Some(uid), Some(rv_old))
            .outcome(Outcome::Conflict)
    } else {
        by(h, "create", t, rng)
            .resource(&event::CONFIGMAPS, Some(ns_str), owned(name), None)
            .query("fieldManager=kubectl-create&fieldValidation=Strict")
            .outcome(Outcome::AlreadyExists)
    };
    r.level(Level::Request)
        .bodies(Some(body), None)
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 2.0, 10.0)
}

/// An administrator acting as someone else (`kubectl --as`).
fn human_impersonation<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| matches!(h.role, Role::Sre | Role::Platform));
    let dev = w.pick_human(rng, |h| h.role == Role::Dev);
    let ns = ns_of(rng, dev);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let (json, name, reason) = if rng.random_bool(0.5) {
        let user = &w.ids[dev.id].username;
        (
            format!(
                r#"{{"username":{},"groups":[{},"system:authenticated"]}}"#,
                fmt::json_str(user),
                fmt::json_str(dev.group)
            ),
            user.clone(),
            dev.reason(Some(ns_str)),
        )
    } else {
        let sa = format!("system:serviceaccount:{ns_str}:{}", d.name);
        (
            format!(
                r#"{{"username":"{sa}","groups":["system:serviceaccounts","system:serviceaccounts:{ns_str}","system:authenticated"]}}"#
            ),
            sa,
            world::rb_reason(
                &d.name,
                ns_str,
                "Role",
                &d.name,
                &format!("ServiceAccount \"{}/{ns_str}\"", d.name),
            ),
        )
    };
    let forbidden = name.starts_with("system:serviceaccount") && rng.random_bool(0.4);
    let mut r = if forbidden {
        by(h, "list", t, rng)
            .resource(&event::SECRETS, Some(ns_str), None, None)
            .query("limit=500")
            .outcome(Outcome::Forbidden)
    } else {
        let res = *pick(
            rng,
            &[&event::PODS, &event::CONFIGMAPS, &event::DEPLOYMENTS],
        );
        by(h, "list", t, rng)
            .resource(res, Some(ns_str), None, None)
            .query("limit=500")
            .reason(reason)
    };
    r.impersonated = Some((json, name));
    r.lat(rng, 1.0, 10.0)
}

/// Privileged pods: a privileged container or a node debugger with host namespaces.
fn human_privileged_pod<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| {
        matches!(h.role, Role::Sre | Role::Platform | Role::Contractor)
    });
    let ns_name_str = if h.role == Role::Contractor {
        "sandbox"
    } else {
        *pick(rng, &["default", "kube-system", "sandbox"])
    };
    let ns_idx = w
        .namespaces
        .iter()
        .position(|n| n.name == ns_name_str)
        .unwrap_or(0);
    let ns = &w.namespaces[ns_idx];
    let node = rng.random_range(0..w.nodes.len());
    let (kind, name) = if rng.random_bool(0.5) {
        (
            PodKind::NodeDebugger,
            format!(
                "node-debugger-{}-{}",
                w.nodes[node].name.split('.').next().unwrap_or("node"),
                fmt::name_suffix(rng, 5)
            ),
        )
    } else {
        (
            PodKind::Privileged,
            format!("debug-{}", fmt::name_suffix(rng, 5)),
        )
    };
    let uid = fmt::uuid_v4(rng);
    let request = bodies::human_pod(w, &name, ns, kind, node, None);
    let response = bodies::human_pod(w, &name, ns, kind, node, Some((uid, w.rv(t), t)));
    by(h, "create", t, rng)
        .resource(&event::PODS, Some(ns.name), owned(name), None)
        .query("fieldManager=kubectl-debug")
        .level(Level::RequestResponse)
        .bodies(Some(request), Some(response))
        .annotate(
            "pod-security.kubernetes.io/enforce-policy",
            "privileged:latest",
        )
        .reason(h.reason(Some(ns.name)))
        .lat(rng, 8.0, 40.0)
}

/// `kubectl run` of a throwaway shell pod.
fn human_pod_create<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = &w.namespaces[ns_of(rng, h)];
    let name = format!("tmp-shell-{}", fmt::name_suffix(rng, 5));
    let uid = fmt::uuid_v4(rng);
    let request = bodies::human_pod(w, &name, ns, PodKind::Plain, 0, None);
    let response = bodies::human_pod(w, &name, ns, PodKind::Plain, 0, Some((uid, w.rv(t), t)));
    by(h, "create", t, rng)
        .resource(&event::PODS, Some(ns.name), owned(name), None)
        .query("fieldManager=kubectl-run")
        .level(Level::RequestResponse)
        .bodies(Some(request), Some(response))
        .annotate(
            "pod-security.kubernetes.io/enforce-policy",
            ns.enforce_policy(),
        )
        .reason(h.reason(Some(ns.name)))
        .lat(rng, 8.0, 40.0)
}

/// `kubectl create token` (TokenRequest); the issued token id is annotated.
fn human_token_request<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let jti = fmt::uuid_str(fmt::uuid_v4(rng));
    by(h, "create", t, rng)
        .resource(
            &event::SERVICEACCOUNTS,
            Some(ns_str),
            borrowed(&d.name),
            Some("token"),
        )
        .annotate(
            "authentication.kubernetes.io/issued-credential-id",
            format!("JTI={jti}"),
        )
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 2.0, 10.0)
}

/// `kubectl delete pod`.
fn human_delete_pod<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let h = w.pick_human(rng, |h| h.can_write());
    let ns = ns_of(rng, h);
    let ns_str = ns_name(w, ns);
    let d = deployment_in(w, rng, &[ns]);
    let pod = pod_of(w, rng, d);
    by(h, "delete", t, rng)
        .resource(&event::PODS, Some(ns_str), borrowed(&pod.name), None)
        .level(Level::Request)
        .bodies(Some(bodies::DELETE_OPTIONS.to_string()), None)
        .reason(h.reason(Some(ns_str)))
        .lat(rng, 5.0, 30.0)
}

// ---------------------------------------------------------------------------------------------
// Noise from outside

const SCANNER_IPS: &[&str] = &[
    "[\"45.146.164.110\"]",
    "[\"185.220.101.34\"]",
    "[\"141.98.11.73\"]",
    "[\"89.248.165.52\"]",
    "[\"193.163.125.18\"]",
    "[\"162.142.125.221\"]",
    "[\"71.6.199.23\"]",
    "[\"198.235.24.140\"]",
];

const SCANNER_UAS: &[&str] = &[
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Mozilla/5.0 zgrab/0.x",
    "kube-hunter/0.6.8",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
];

fn scanner_ip(rng: &mut SmallRng) -> &'static str {
    SCANNER_IPS[rng.random_range(0..SCANNER_IPS.len())]
}

fn scanner_ua(rng: &mut SmallRng) -> &'static str {
    SCANNER_UAS[rng.random_range(0..SCANNER_UAS.len())]
}

/// Where a probe from outside goes: a resource (resource, namespace, verb) or a path.
fn probe_target<'w>(req: Req<'w>, rng: &mut SmallRng) -> Req<'w> {
    match rng.random_range(0..8) {
        0 => {
            let mut r = req.resource(&event::SECRETS, Some("kube-system"), None, None);
            r.verb = "list";
            r
        }
        1 => {
            let mut r = req.resource(&event::PODS, None, None, None);
            r.verb = "list";
            r
        }
        2 => {
            let mut r = req.resource(&event::NAMESPACES, None, None, None);
            r.verb = "list";
            r
        }
        3 => {
            let mut r = req.resource(
                &event::CONFIGMAPS,
                Some("kube-system"),
                borrowed("kubeadm-config"),
                None,
            );
            r.verb = "get";
            r
        }
        4 => req.path("/api"),
        5 => req.path("/"),
        6 => req.path("/metrics"),
        _ => req.path("/apis"),
    }
}

/// Anonymous requests from the internet: mostly 403; `/version` answers everyone.
fn anonymous_probe<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let base = Req::new(w.anonymous, "get", t)
        .ips(scanner_ip(rng))
        .ua(scanner_ua(rng))
        .lat(rng, 0.2, 2.0);
    if rng.random_bool(0.2) {
        return base.path("/version").reason(world::PUBLIC_INFO_REASON);
    }
    probe_target(base, rng).outcome(Outcome::Forbidden)
}

/// Failed authentication (401): one ResponseStarted event, empty user, no annotations.
fn failed_authentication<'w>(w: &'w World, rng: &mut SmallRng, t: i64) -> Req<'w> {
    let stale_client = rng.random_bool(0.3);
    let mut r = Req::new(w.nobody, "get", t).lat(rng, 0.1, 1.5);
    r.shape = Shape::FailedAuthn;
    if stale_client {
        // A pipeline or laptop with an expired token.
        let h = w.pick_human(rng, |h| h.role == Role::Dev);
        r = r
            .ips(if rng.random_bool(0.5) {
                &h.vpn_ips
            } else {
                &w.ids[w.ci].source_ips
            })
            .ua(h.kubectl.ua)
            .path("/api")
            .query("timeout=32s")
            .outcome(Outcome::Unauthorized(
                "Authentication failed, attempted: bearer",
            ));
        return r;
    }
    let message = if rng.random_bool(0.6) {
        "Authentication failed, no credentials provided"
    } else {
        "Authentication failed, attempted: bearer"
    };
    let r = r.ips(scanner_ip(rng)).ua(scanner_ua(rng));
    probe_target(r, rng).outcome(Outcome::Unauthorized(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_profiles() {
        for class in [Class::System, Class::Human, Class::Noise] {
            assert!(PROFILES.iter().any(|p| p.class == class && p.weight > 0));
        }
        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        let mut dedup = names.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(names.len(), dedup.len(), "profile names are unique");
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("/bin/sh"), "%2Fbin%2Fsh");
        assert_eq!(
            query_escape("localhost:8080/healthz"),
            "localhost%3A8080%2Fhealthz"
        );
        assert_eq!(query_escape("-la"), "-la");
    }
}
