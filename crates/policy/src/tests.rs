//! The apiserver's checker cases, restated (not copied) from `checker_test.go`'s table: the same
//! request attributes against the same kinds of rule, with the results its semantics give.

use super::*;

fn policy(rules: &str) -> Policy {
    Policy::from_yaml(&format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}"
    ))
    .unwrap_or_else(|e| panic!("{e}\n{rules}"))
}

fn resource(
    user: &str,
    verb: &str,
    group: &str,
    res: &str,
    sub: &str,
    ns: &str,
    name: &str,
) -> Attributes {
    Attributes {
        user: Some(user.into()),
        groups: vec!["system:authenticated".into(), "devs".into()],
        verb: verb.into(),
        resource_request: true,
        namespace: ns.into(),
        api_group: group.into(),
        resource: res.into(),
        subresource: sub.into(),
        name: name.into(),
        path: String::new(),
    }
}

fn non_resource(user: Option<&str>, verb: &str, path: &str) -> Attributes {
    Attributes {
        user: user.map(str::to_owned),
        groups: vec!["system:authenticated".into()],
        verb: verb.into(),
        path: path.into(),
        ..Default::default()
    }
}

fn matches(rule: &str, a: &Attributes) -> bool {
    policy(rule).evaluate(a).rule == Some(0)
}

#[test]
fn users_groups_and_verbs() {
    let pods = resource("tim", "get", "", "pods", "", "default", "web");
    assert!(matches("- level: Metadata\n  users: [tim]\n", &pods));
    assert!(
        !matches("- level: Metadata\n  users: [Tim]\n", &pods),
        "case-sensitive"
    );
    assert!(matches("- level: Metadata\n  userGroups: [devs]\n", &pods));
    assert!(!matches("- level: Metadata\n  userGroups: [ops]\n", &pods));
    assert!(matches("- level: Metadata\n  verbs: [get, list]\n", &pods));
    assert!(
        !matches("- level: Metadata\n  verbs: [\"*\"]\n", &pods),
        "* is not a verb wildcard"
    );
    // No user: never matches a rule with users or userGroups, even if the groups would.
    let mut anon = non_resource(None, "get", "/healthz");
    anon.groups = vec!["devs".into()];
    assert!(!matches("- level: Metadata\n  userGroups: [devs]\n", &anon));
    assert!(!matches("- level: Metadata\n  users: [\"\"]\n", &anon));
    assert!(
        matches("- level: Metadata\n", &anon),
        "an unconditional rule matches"
    );
}

#[test]
fn namespaces_and_cluster_scope() {
    let in_ns = resource("tim", "get", "", "pods", "", "default", "web");
    let cluster = resource("tim", "get", "", "nodes", "", "", "n1");
    assert!(matches(
        "- level: Metadata\n  namespaces: [default]\n",
        &in_ns
    ));
    assert!(!matches(
        "- level: Metadata\n  namespaces: [default]\n",
        &cluster
    ));
    assert!(matches(
        "- level: Metadata\n  namespaces: [\"\"]\n",
        &cluster
    ));
    // A namespace's own object is in that namespace (requestinfo.go); a list of them is not.
    let ns_obj = Attributes::from_event(
        Some("tim"),
        &[],
        Some("get"),
        None,
        None,
        Some("namespaces"),
        None,
        Some("payments"),
        Some("/api/v1/namespaces/payments"),
    );
    assert_eq!(ns_obj.namespace, "payments");
    assert!(matches(
        "- level: Metadata\n  namespaces: [payments]\n",
        &ns_obj
    ));
    let ns_list = Attributes::from_event(
        Some("tim"),
        &[],
        Some("list"),
        None,
        None,
        Some("namespaces"),
        None,
        None,
        Some("/api/v1/namespaces?limit=500"),
    );
    assert!(matches(
        "- level: Metadata\n  namespaces: [\"\"]\n",
        &ns_list
    ));
    // Creating a namespace names it, but the request is not in it.
    let ns_create = Attributes::from_event(
        Some("tim"),
        &[],
        Some("create"),
        None,
        None,
        Some("namespaces"),
        None,
        Some("payments"),
        Some("/api/v1/namespaces"),
    );
    assert_eq!(ns_create.namespace, "");
    // Non-resource requests never match a namespaced or resource rule.
    let version = non_resource(Some("tim"), "get", "/version");
    assert!(!matches(
        "- level: Metadata\n  namespaces: [\"\"]\n",
        &version
    ));
}

#[test]
fn groups_resources_and_wildcards() {
    let exec = resource("tim", "create", "", "pods", "exec", "default", "web");
    let pod = resource("tim", "get", "", "pods", "", "default", "web");
    let deploy = resource("tim", "get", "apps", "deployments", "", "default", "web");
    let scale = resource(
        "tim",
        "update",
        "apps",
        "deployments",
        "scale",
        "default",
        "web",
    );
    let rule = |g: &str, r: &str| {
        format!("- level: Metadata\n  resources:\n  - group: \"{g}\"\n    resources: [\"{r}\"]\n")
    };
    assert!(matches(&rule("", "pods"), &pod));
    assert!(
        !matches(&rule("", "pods"), &exec),
        "pods does not cover pods/exec"
    );
    assert!(matches(&rule("", "pods/exec"), &exec));
    assert!(!matches(&rule("", "pods/exec"), &pod));
    assert!(
        !matches(&rule("", "pods"), &deploy),
        "the core group is not apps"
    );
    assert!(matches(&rule("apps", "deployments"), &deploy));
    assert!(
        matches(&rule("*", "deployments"), &deploy),
        "group wildcard"
    );
    assert!(matches(&rule("", "*"), &exec), "* covers subresources");
    assert!(matches(&rule("apps", "*/scale"), &scale));
    assert!(
        !matches(&rule("apps", "*/scale"), &deploy),
        "*/sub needs that subresource"
    );
    assert!(matches(&rule("", "pods/*"), &exec));
    assert!(
        matches(&rule("", "pods/*"), &pod),
        "res/* also matches the plain resource"
    );
    assert!(
        matches("- level: Metadata\n  resources:\n  - group: \"\"\n", &pod),
        "a group without resources covers all of them"
    );
    let named = "- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [pods]\n    resourceNames: [web]\n";
    assert!(matches(named, &pod));
    assert!(!matches(
        named,
        &resource("tim", "get", "", "pods", "", "default", "db")
    ));
}

#[test]
fn non_resource_urls() {
    let rule = |u: &str| format!("- level: Metadata\n  nonResourceURLs: [\"{u}\"]\n");
    let healthz = non_resource(Some("tim"), "get", "/healthz");
    let sub = non_resource(Some("tim"), "get", "/healthz/etcd");
    assert!(matches(&rule("/healthz"), &healthz));
    assert!(!matches(&rule("/healthz"), &sub));
    assert!(matches(&rule("/healthz*"), &sub));
    assert!(matches(&rule("/healthz*"), &healthz));
    assert!(matches(&rule("*"), &sub));
    assert!(!matches(
        &rule("*"),
        &resource("tim", "get", "", "pods", "", "", "")
    ));
    // Compared without the query string.
    let q = Attributes::from_event(
        Some("tim"),
        &[],
        Some("get"),
        None,
        None,
        None,
        None,
        None,
        Some("/healthz?verbose=1"),
    );
    assert!(matches(&rule("/healthz"), &q));
}

#[test]
fn first_match_wins_and_stages_and_managed_fields() {
    let p = Policy::from_yaml(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nomitManagedFields: true\nrules:\n\
         - level: None\n  users: [system:kube-proxy]\n\
         - level: RequestResponse\n  verbs: [create]\n  omitStages: [ResponseStarted, RequestReceived]\n  omitManagedFields: false\n\
         - level: Metadata\n",
    )
    .unwrap();
    let create = resource("tim", "create", "", "pods", "", "default", "web");
    let d = p.evaluate(&create);
    assert_eq!(d.rule, Some(1));
    assert_eq!(d.level, Level::RequestResponse);
    assert_eq!(
        d.omit_stages.into_iter().collect::<Vec<_>>(),
        [Stage::RequestReceived, Stage::ResponseStarted],
        "the union, without duplicates"
    );
    assert!(!d.omit_managed_fields, "the rule's own setting wins");
    let get = resource("tim", "get", "", "pods", "", "default", "web");
    let d = p.evaluate(&get);
    assert_eq!(
        (d.rule, d.level, d.omit_managed_fields),
        (Some(2), Level::Metadata, true)
    );
    let proxy = resource(
        "system:kube-proxy",
        "create",
        "",
        "pods",
        "",
        "default",
        "web",
    );
    assert_eq!(
        p.evaluate(&proxy).level,
        Level::None,
        "an earlier rule wins"
    );
    // No rule matches: None with the policy's stages.
    let p = policy("- level: Metadata\n  users: [alice]\n");
    let d = p.evaluate(&get);
    assert_eq!((d.rule, d.level), (None, Level::None));
}

#[test]
fn load_time_validation_names_the_rule_and_field() {
    let err = |text: &str| match Policy::from_yaml(text) {
        Err(Error::Invalid(v)) => v.iter().map(ToString::to_string).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
    assert_eq!(
        err(&format!("{head}rules: []\n")),
        ["rules: a policy needs at least one rule"]
    );
    assert!(
        err("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n")[0]
            .starts_with("apiVersion:")
    );
    let e = err(&format!(
        "{head}rules:\n- level: Metadata\n- users: [a]\n- level: Everything\n"
    ));
    assert_eq!(e[0], "rules[1].level: required");
    assert!(
        e[1].starts_with("rules[2].level: \"Everything\" is not a level"),
        "{e:?}"
    );
    let e = err(&format!(
        "{head}omitStages: [Started]\nrules:\n- level: None\n  omitStages: [ResponseDone]\n"
    ));
    assert!(
        e[0].starts_with("omitStages[0]: \"Started\" is not a stage"),
        "{e:?}"
    );
    assert!(e[1].starts_with("rules[0].omitStages[0]"), "{e:?}");
    let e = err(&format!(
        "{head}rules:\n- level: None\n  nonResourceURLs: [/x**]\n"
    ));
    assert!(e[0].contains("only as the final character"), "{e:?}");
    let e = err(&format!(
        "{head}rules:\n- level: None\n  nonResourceURLs: [healthz, \"/a*b\"]\n"
    ));
    assert!(e[0].starts_with("rules[0].nonResourceURLs[0]"), "{e:?}");
    assert!(e[1].contains("only as the final character"), "{e:?}");
    let e = err(&format!(
        "{head}rules:\n- level: None\n  nonResourceURLs: [/x]\n  namespaces: [a]\n"
    ));
    assert!(e[0].contains("cannot apply to both"), "{e:?}");
    let e = err(&format!(
        "{head}rules:\n- level: None\n  resources:\n  - group: rbac.authorization.k8s.io/v1beta1\n  - group: \"\"\n    resourceNames: [x]\n"
    ));
    assert!(e[0].starts_with("rules[0].resources[0].group"), "{e:?}");
    assert_eq!(
        e[1],
        "rules[0].resources[1].resourceNames: resourceNames requires at least one resource"
    );
    // Typos are refused, not ignored.
    match Policy::from_yaml(&format!("{head}rules:\n- level: None\n  user: [a]\n")) {
        Err(Error::Yaml(m)) => assert!(m.contains("unknown field `user`"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The group wildcard and DNS subdomains load.
    policy(
        "- level: None\n  resources:\n  - group: \"*\"\n  - group: apps\n  - group: rbac.authorization.k8s.io\n",
    );
}

/// The seed document's policy (../shared/seed/kubernetes-audit-logging.md) is close to what CIS
/// asks; a policy that logs everything at RequestResponse is not.
#[test]
fn lint_finds_what_cis_and_common_sense_ask() {
    let good = policy(
        "- level: None\n  users: [system:kube-proxy]\n  verbs: [watch]\n\
         - level: Metadata\n  resources:\n  - group: \"\"\n    resources: [secrets, configmaps]\n  - group: authentication.k8s.io\n    resources: [tokenreviews]\n\
         - level: Request\n  verbs: [get, list, watch]\n  resources:\n  - group: \"\"\n\
         - level: RequestResponse\n  resources:\n  - group: \"\"\n  - group: rbac.authorization.k8s.io\n  - group: apps\n\
         - level: Metadata\n",
    );
    let checks: Vec<&str> = lint(&good).iter().map(|f| f.check).collect();
    assert_eq!(checks, ["request-received-recorded"], "{:#?}", lint(&good));

    let everything = policy(
        "- level: RequestResponse\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [secrets]\n",
    );
    let f = lint(&everything);
    let checks: Vec<&str> = f.iter().map(|f| f.check).collect();
    for c in [
        "cis-3.2.2-bodies",
        "reads-at-request-response",
        "catch-all-before-rules",
    ] {
        assert!(checks.contains(&c), "{c}: {f:#?}");
    }
    let shadow = f
        .iter()
        .find(|f| f.check == "catch-all-before-rules")
        .unwrap();
    assert_eq!(shadow.rule, Some(1));

    let narrow = policy(
        "- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [pods]\n- level: Request\n  resources:\n  - group: \"\"\n    resources: [pods]\n    resourceNames: [web]\n",
    );
    let checks: Vec<&str> = lint(&narrow).iter().map(|f| f.check).collect();
    for c in [
        "cis-3.2.1-sessions",
        "changes-without-body",
        "anonymous-not-recorded",
        "shadowed-rule",
    ] {
        assert!(checks.contains(&c), "{c}: {checks:?}");
    }
}
