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

/// `policy simulate` over a generated month: the seed's policy drops watches; a policy that
/// drops Secrets takes the secret-access controls' evidence away (and says which); RequestResponse
/// for everything asks for bodies that were not recorded, and the estimated bytes grow.
#[test]
fn simulate_shows_what_three_policies_keep_and_which_evidence_they_take() {
    let (dir, store, _log) = generated_store(20_000, 30, 12);
    let sim = |policy: &std::path::Path| -> Value {
        let out = ok(
            &store,
            &[
                "policy",
                "simulate",
                "--policy",
                policy.to_str().unwrap(),
                "--from",
                "2026-02-18",
                "--to",
                "2026-03-20",
                "--format",
                "json",
            ],
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let seed = sim(&seed_policy());
    let recorded = seed["recorded_events"].as_u64().unwrap();
    assert_eq!(
        recorded,
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE ts >= '2026-02-18' AND ts < '2026-03-20'"
        )
    );
    assert!(
        seed["kept_events"].as_u64().unwrap() < recorded,
        "the seed drops watches"
    );
    let watches = count(
        &store,
        "SELECT count(*) FROM audit_events WHERE verb = 'watch' AND ts >= '2026-02-18' AND ts < '2026-03-20'",
    );
    assert!(recorded - seed["kept_events"].as_u64().unwrap() >= watches);

    let no_secrets = dir.path().join("no-secrets.yaml");
    std::fs::write(
        &no_secrets,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  resources:\n  - group: \"\"\n    resources: [secrets]\n- level: RequestResponse\n",
    )
    .unwrap();
    let s = sim(&no_secrets);
    let changed = s["changed_controls"].as_array().unwrap();
    let secret_access = changed
        .iter()
        .find(|c| c["view"] == "cis_5_1_2_secret_access")
        .unwrap_or_else(|| panic!("{changed:#?}"));
    assert_eq!(secret_access["candidate_rows"], 0);
    assert!(secret_access["recorded_rows"].as_u64().unwrap() > 0);
    let out = ok(
        &store,
        &[
            "policy",
            "simulate",
            "--policy",
            no_secrets.to_str().unwrap(),
            "--from",
            "2026-02-18",
            "--to",
            "2026-03-20",
        ],
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("5.1.2 (`cis_5_1_2_secret_access`)"), "{md}");

    let everything = dir.path().join("everything.yaml");
    std::fs::write(
        &everything,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n",
    )
    .unwrap();
    let s = sim(&everything);
    assert_eq!(s["kept_events"], s["recorded_events"]);
    assert!(
        s["kept_bytes"].as_u64().unwrap() > s["recorded_bytes"].as_u64().unwrap(),
        "{} vs {}",
        s["kept_bytes"],
        s["recorded_bytes"]
    );
    assert!(s["days"][0]["wants_more"].as_u64().unwrap() > 0);
    assert!(
        s["changed_controls"].as_array().unwrap().is_empty(),
        "nothing recorded is lost"
    );
}

/// `policy suggest` over a generated month: a policy that lint passes, that keeps every control's
/// evidence under simulate, and that stores fewer bytes a day than the seed's policy.
#[test]
fn suggest_keeps_every_control_and_stores_less_than_the_seed_policy() {
    let (dir, store, _log) = generated_store(20_000, 30, 12);
    let window = ["--from", "2026-02-18", "--to", "2026-03-20"];
    let mut args = vec!["policy", "suggest"];
    args.extend(window);
    let out = ok(&store, &args);
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(yaml.contains("level: None"), "it drops something: {yaml}");
    let suggested = dir.path().join("suggested.yaml");
    std::fs::write(&suggested, &yaml).unwrap();
    let lint = run(&store, &["policy", "lint", suggested.to_str().unwrap()]);
    assert!(
        lint.status.success(),
        "lint: {}{}\n{yaml}",
        String::from_utf8_lossy(&lint.stdout),
        stderr(&lint)
    );
    let sim = |policy: &std::path::Path| -> Value {
        let mut a = vec![
            "policy",
            "simulate",
            "--policy",
            policy.to_str().unwrap(),
            "--format",
            "json",
        ];
        a.extend(window);
        serde_json::from_slice(&ok(&store, &a).stdout).unwrap()
    };
    let s = sim(&suggested);
    let losing: Vec<&Value> = s["changed_controls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["candidate_rows"].as_u64() < c["recorded_rows"].as_u64()
                && c["view"] != "cis_3_2_2_secret_bodies"
        })
        .collect();
    assert!(losing.is_empty(), "{losing:#?}\n{yaml}");
    let seed = sim(&seed_policy());
    assert!(
        s["kept_bytes"].as_u64().unwrap() < seed["kept_bytes"].as_u64().unwrap(),
        "suggested {} vs seed {}",
        s["kept_bytes"],
        seed["kept_bytes"]
    );
    eprintln!(
        "suggested: {} events, {} bytes; seed: {} events, {} bytes; recorded {} events, {} bytes",
        s["kept_events"],
        s["kept_bytes"],
        seed["kept_events"],
        seed["kept_bytes"],
        s["recorded_events"],
        s["recorded_bytes"]
    );
}
