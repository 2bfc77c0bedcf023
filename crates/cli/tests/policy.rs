//! `auditlake policy`: eval on event files and on the store, lint with its exit code.

use serde_json::Value;

use crate::common::*;

fn seed_policy() -> std::path::PathBuf {
    testdata("policies/seed.yaml")
}

#[test]
fn eval_gives_each_event_its_level_from_files_and_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let events = testdata("scenarios/views.jsonl");
    let out = bin()
        .args(["--store", dir.path().join("none").to_str().unwrap()])
        .args(["policy", "eval", "--policy"])
        .arg(seed_policy())
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json_lines(&String::from_utf8_lossy(&out.stdout));
    let lines = std::fs::read_to_string(&events).unwrap();
    assert_eq!(
        rows.len(),
        lines.lines().filter(|l| !l.trim().is_empty()).count()
    );
    let level_of = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        let ids: Vec<String> = lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| pred(e))
            .map(|e| e["auditID"].as_str().unwrap().to_owned())
            .collect();
        rows.iter()
            .filter(|r| ids.iter().any(|i| r["audit_id"] == i.as_str()))
            .map(|r| r["level"].as_str().unwrap().to_owned())
            .collect()
    };
    // Secrets at Metadata (rule 4), exec at RequestResponse (rule 5), RBAC writes at
    // RequestResponse (rule 3), a configmap read at Metadata (the default rule).
    let secrets = level_of(&|e| e["objectRef"]["resource"] == "secrets");
    assert!(
        !secrets.is_empty() && secrets.iter().all(|l| l == "Metadata"),
        "{secrets:?}"
    );
    let exec = level_of(&|e| e["objectRef"]["subresource"] == "exec");
    assert!(
        !exec.is_empty() && exec.iter().all(|l| l == "RequestResponse"),
        "{exec:?}"
    );
    let rbac = level_of(&|e| e["objectRef"]["apiGroup"] == "rbac.authorization.k8s.io");
    assert!(
        !rbac.is_empty() && rbac.iter().all(|l| l == "RequestResponse"),
        "{rbac:?}"
    );
    let default = rows
        .iter()
        .find(|r| r["rule"] == 7)
        .expect("the default rule applies somewhere");
    assert_eq!(
        default["omit_stages"],
        serde_json::json!(["RequestReceived"])
    );

    // The same events stored: the same decisions, from the store's window.
    let store = dir.path().join("store");
    ok(&store, &["ingest", events.to_str().unwrap()]);
    let out = ok(
        &store,
        &[
            "policy",
            "eval",
            "--policy",
            seed_policy().to_str().unwrap(),
            "--from",
            "2026-04-01",
            "--to",
            "2026-04-02",
        ],
    );
    let stored = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(stored, rows);
}

#[test]
fn lint_exits_4_on_findings_and_1_on_an_invalid_policy() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = run(&store, &["policy", "lint", seed_policy().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // The seed's policy records Secrets at Metadata, but ConfigMap and TokenReview writes fall to
    // its "create/update/patch/delete at Request" rule (their bodies are logged), and only its
    // last two rules omit RequestReceived.
    assert!(
        text.contains("cis-3.2.2-bodies: rule 6: update configmaps"),
        "{text}"
    );
    assert!(
        text.contains("cis-3.2.2-bodies: rule 6: create tokenreviews.authentication.k8s.io"),
        "{text}"
    );
    assert!(text.contains("request-received-recorded: rule 3"), "{text}");
    assert!(
        !text.contains("secrets: rule"),
        "secrets are at Metadata: {text}"
    );
    assert!(
        !text.contains("anonymous-not-recorded"),
        "the catch-all records them: {text}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n- verbs: [get]\n",
    )
    .unwrap();
    let out = run(&store, &["policy", "lint", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rules[1].level: required"),
        "{}",
        stderr(&out)
    );
}

/// `ingest --policy`: a stricter policy applied to what was recorded; counted.
#[test]
fn ingest_with_a_policy_stores_only_what_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let policy = dir.path().join("strict.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseStarted]\nrules:\n\
         - level: None\n  resources:\n  - group: \"\"\n    resources: [secrets]\n\
         - level: Request\n  resources:\n  - group: rbac.authorization.k8s.io\n\
         - level: Metadata\n",
    )
    .unwrap();
    let events = testdata("scenarios/views.jsonl");
    let all = dir.path().join("all");
    ok(&all, &["ingest", events.to_str().unwrap()]);
    let out = ok(
        &store,
        &[
            "ingest",
            "--policy",
            policy.to_str().unwrap(),
            events.to_str().unwrap(),
        ],
    );
    let n = |s: &std::path::Path, w: &str| {
        count(s, &format!("SELECT count(*) FROM audit_events WHERE {w}"))
    };
    let secrets = n(&all, "resource = 'secrets'");
    let started = n(
        &all,
        "stage = 'ResponseStarted' AND coalesce(resource, '') <> 'secrets'",
    );
    assert!(secrets > 0 && started > 0, "the scenario has both");
    assert_eq!(n(&store, "resource = 'secrets'"), 0);
    assert_eq!(n(&store, "stage = 'ResponseStarted'"), 0);
    assert_eq!(n(&store, "true"), n(&all, "true") - secrets - started);
    // Bodies: RBAC keeps its request body, not its response; everything else keeps neither.
    assert_eq!(n(&store, "response_object IS NOT NULL"), 0);
    assert_eq!(
        n(
            &store,
            "request_object IS NOT NULL AND api_group <> 'rbac.authorization.k8s.io'"
        ),
        0
    );
    assert_eq!(
        n(&store, "request_object IS NOT NULL"),
        n(
            &all,
            "request_object IS NOT NULL AND api_group = 'rbac.authorization.k8s.io' AND stage <> 'ResponseStarted'"
        )
    );
    assert_eq!(
        n(&store, "level = 'RequestResponse'"),
        0,
        "levels lowered to the policy's"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "policy: {} event(s) not stored",
            secrets + started
        )),
        "{err}"
    );
}
