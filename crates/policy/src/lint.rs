//! `auditlake policy lint`: what a policy fails to record (CIS Kubernetes Benchmark 3.2.1 and
//! 3.2.2) and the mistakes that make it say something else than its author meant. Each check asks
//! the evaluator about a typical request, so that a finding means what the apiserver would do.

use serde::Serialize;

use crate::{Attributes, Level, Policy, Rule, Stage, rule_matches};

/// One lint finding: which check, the rule it is about (if one), why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub rule: Option<usize>,
    pub reason: String,
    pub hint: String,
}

fn request(verb: &str, group: &str, resource: &str, sub: &str, ns: &str) -> Attributes {
    Attributes {
        user: Some("jane@example.com".into()),
        groups: vec!["system:authenticated".into()],
        verb: verb.into(),
        resource_request: true,
        namespace: ns.into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        name: "x".into(),
        path: String::new(),
    }
}

fn label(a: &Attributes) -> String {
    let res = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    if a.api_group.is_empty() {
        format!("{} {res}", a.verb)
    } else {
        format!("{} {res}.{}", a.verb, a.api_group)
    }
}

fn rule_text(p: &Policy, rule: Option<usize>) -> String {
    rule.map_or_else(
        || "no rule matches (level None)".to_owned(),
        |i| format!("rule {i} records it at {}", p.level(i).as_str()),
    )
}

/// Whether every request rule `b` matches is matched by rule `a` (so `b`, after `a`, never
/// matches). Conservative: `false` when unsure.
fn covers(a: &Rule, b: &Rule) -> bool {
    let list = |x: &[String], y: &[String]| {
        x.is_empty() || (!y.is_empty() && y.iter().all(|v| x.contains(v)))
    };
    if !list(&a.users, &b.users)
        || !list(&a.user_groups, &b.user_groups)
        || !list(&a.verbs, &b.verbs)
    {
        return false;
    }
    let a_res = !a.namespaces.is_empty() || !a.resources.is_empty();
    let b_res = !b.namespaces.is_empty() || !b.resources.is_empty();
    let a_url = !a.non_resource_urls.is_empty();
    let b_url = !b.non_resource_urls.is_empty();
    if !a_res && !a_url {
        return true;
    }
    if a_res {
        if !b_res || !list(&a.namespaces, &b.namespaces) {
            return false;
        }
        if a.resources.is_empty() {
            return true;
        }
        if b.resources.is_empty() {
            return false;
        }
        return b.resources.iter().all(|bg| {
            a.resources.iter().any(|ag| {
                (ag.group == bg.group || ag.group == "*")
                    && (ag.resources.is_empty()
                        || ag.resources.iter().any(|r| r == "*")
                        || (!bg.resources.is_empty()
                            && bg.resources.iter().all(|r| ag.resources.contains(r))))
                    && list(&ag.resource_names, &bg.resource_names)
            })
        });
    }
    b_url
        && b.non_resource_urls.iter().all(|u| {
            a.non_resource_urls.iter().any(|s| {
                s == "*" || s == u || (s.ends_with('*') && u.starts_with(s.trim_end_matches('*')))
            })
        })
}

/// Every finding of the checks, in the order of the checks.
pub fn lint(p: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    // CIS 3.2.2: Secrets, ConfigMaps and TokenReviews at Metadata at most (their bodies are
    // credentials or may hold them).
    for a in [
        request("get", "", "secrets", "", "default"),
        request("update", "", "secrets", "", "default"),
        request("get", "", "configmaps", "", "default"),
        request("update", "", "configmaps", "", "default"),
        request("create", "authentication.k8s.io", "tokenreviews", "", ""),
    ] {
        let d = p.evaluate(&a);
        if d.level > Level::Metadata {
            out.push(Finding {
                check: "cis-3.2.2-bodies",
                rule: d.rule,
                reason: format!(
                    "{}: {}, which writes its body (credentials) into the audit log",
                    label(&a),
                    rule_text(p, d.rule)
                ),
                hint: "add a rule at Metadata for secrets, configmaps and tokenreviews before it"
                    .into(),
            });
        }
    }
    // CIS 3.2.1/3.2.2: sessions into workloads are recorded.
    for a in [
        request("create", "", "pods", "exec", "default"),
        request("create", "", "pods", "portforward", "default"),
        request("get", "", "pods", "proxy", "default"),
        request("get", "", "services", "proxy", "default"),
    ] {
        let d = p.evaluate(&a);
        if d.level == Level::None {
            out.push(Finding {
                check: "cis-3.2.1-sessions",
                rule: d.rule,
                reason: format!("{} is not recorded: {}", label(&a), rule_text(p, d.rule)),
                hint: "record pods/exec, pods/portforward, pods/proxy and services/proxy at Metadata or more".into(),
            });
        }
    }
    // Changes to RBAC and workloads at Request or more, so that what was granted or deployed is
    // on record.
    for a in [
        request(
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "",
        ),
        request("patch", "rbac.authorization.k8s.io", "roles", "", "default"),
        request("create", "apps", "deployments", "", "default"),
        request("update", "apps", "daemonsets", "", "kube-system"),
    ] {
        let d = p.evaluate(&a);
        if d.level < Level::Request {
            out.push(Finding {
                check: "changes-without-body",
                rule: d.rule,
                reason: format!(
                    "{}: {}; what was granted or deployed is not on record",
                    label(&a),
                    rule_text(p, d.rule)
                ),
                hint: "record RBAC and workload writes at Request or RequestResponse".into(),
            });
        }
    }
    // Reads of everything at RequestResponse: the largest volume for the least value.
    for a in [
        request("list", "", "pods", "", "default"),
        request("watch", "", "endpoints", "", "default"),
    ] {
        let d = p.evaluate(&a);
        if d.level == Level::RequestResponse {
            out.push(Finding {
                check: "reads-at-request-response",
                rule: d.rule,
                reason: format!(
                    "{}: {}: every list and watch response is written in full",
                    label(&a),
                    rule_text(p, d.rule)
                ),
                hint: "record get/list/watch at Metadata; keep RequestResponse for writes".into(),
            });
        }
    }
    // Anonymous requests.
    let anonymous = Attributes {
        user: Some("system:anonymous".into()),
        groups: vec!["system:unauthenticated".into()],
        verb: "get".into(),
        resource_request: true,
        namespace: "kube-system".into(),
        resource: "secrets".into(),
        name: "x".into(),
        ..Default::default()
    };
    let d = p.evaluate(&anonymous);
    if d.level == Level::None {
        out.push(Finding {
            check: "anonymous-not-recorded",
            rule: d.rule,
            reason: format!(
                "a request by system:anonymous is not recorded: {}",
                rule_text(p, d.rule)
            ),
            hint: "add a rule for userGroups [system:unauthenticated] at Metadata or more".into(),
        });
    }
    // Rules that can never match, and catch-alls before the end.
    for (j, b) in p.rules.iter().enumerate() {
        if let Some(i) = (0..j).find(|&i| covers(&p.rules[i], b)) {
            let catch_all = {
                let a = &p.rules[i];
                a.users.is_empty()
                    && a.user_groups.is_empty()
                    && a.verbs.is_empty()
                    && a.namespaces.is_empty()
                    && a.resources.is_empty()
                    && a.non_resource_urls.is_empty()
            };
            out.push(Finding {
                check: if catch_all {
                    "catch-all-before-rules"
                } else {
                    "shadowed-rule"
                },
                rule: Some(j),
                reason: if catch_all {
                    format!("rule {i} matches every request, so rule {j} after it never applies")
                } else {
                    format!(
                        "rule {i} matches every request rule {j} matches, so rule {j} never applies"
                    )
                },
                hint: format!("move rule {j} before rule {i}, or remove it"),
            });
        }
    }
    // RequestReceived is recorded: every request twice.
    if let Some(i) = (0..p.rules.len()).find(|&i| {
        p.level(i) > Level::None
            && !p.omit_stages.contains(&Stage::RequestReceived)
            && !p.rules[i]
                .omit_stages
                .iter()
                .any(|s| s == Stage::RequestReceived.as_str())
    }) {
        out.push(Finding {
            check: "request-received-recorded",
            rule: Some(i),
            reason: format!(
                "rule {i} (and any other that records) keeps the RequestReceived stage: every request is logged twice"
            ),
            hint: "add omitStages: [RequestReceived] at the top of the policy".into(),
        });
    }
    // A policy that matches nothing still loads; say so.
    if p.rules.iter().all(|r| {
        !rule_matches(r, &request("get", "", "pods", "", "default"))
            && !rule_matches(r, &request("create", "", "pods", "", "default"))
    }) && p
        .evaluate(&request("create", "", "pods", "", "default"))
        .level
        == Level::None
    {
        out.push(Finding {
            check: "pods-not-recorded",
            rule: None,
            reason: "no rule records reads or writes of Pods".into(),
            hint: "end the policy with a catch-all rule at Metadata".into(),
        });
    }
    out
}
