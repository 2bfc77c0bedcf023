use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

use crate::common::*;

/// Runs jq over a file, as the seed document does.
fn jq(filter: &str, file: &Path) -> Vec<Value> {
    let out = Command::new("jq")
        .args(["-c", filter])
        .arg(file)
        .output()
        .expect("jq is needed for this test (the README's test command installs it)");
    assert!(
        out.status.success(),
        "jq failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8_lossy(&out.stdout))
}

/// Multiset of rows, nulls dropped (jq prints them, Arrow's NDJSON writer leaves them out).
fn bag(rows: Vec<Value>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        let clean: Map<String, Value> = r
            .as_object()
            .expect("object rows")
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *m.entry(Value::Object(clean).to_string()).or_default() += 1;
    }
    m
}

#[test]
fn the_seed_questions_answer_as_jq_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "audit.log", 40_000, 2, 3);
    ok(&store, &["ingest", "--no-redact", log.to_str().unwrap()]);

    // 1. Who accessed secrets since a point in time?
    let since = "2026-03-19T09:00:00Z";
    let want = jq(
        &format!(
            r#"select(.objectRef.resource == "secrets" and .requestReceivedTimestamp > "{since}") | {{user: .user.username, verb: .verb, secret: .objectRef.name, ns: .objectRef.namespace}}"#
        ),
        &log,
    );
    let got = sql_ndjson(
        &store,
        &format!(
            "SELECT user_name AS user, verb, secret, namespace AS ns FROM secret_access WHERE ts > '{since}'"
        ),
    );
    assert!(
        want.len() > 50,
        "the generator makes secret reads: {}",
        want.len()
    );
    assert_eq!(bag(got), bag(want), "secret access");

    // 2. What 403 Forbidden events occurred?
    let want = jq(
        r#"select(.responseStatus.code == 403) | {user: .user.username, verb: .verb, resource: .objectRef.resource}"#,
        &log,
    );
    let got = sql_ndjson(
        &store,
        "SELECT user_name AS user, verb, resource FROM forbidden_requests",
    );
    assert!(!want.is_empty());
    assert_eq!(bag(got), bag(want), "403s");

    // 3. Who exec'd into Pods?
    let want = jq(
        r#"select(.objectRef.resource == "pods" and .objectRef.subresource == "exec") | {user: .user.username, pod: .objectRef.name, ns: .objectRef.namespace}"#,
        &log,
    );
    let got = sql_ndjson(
        &store,
        "SELECT user_name AS user, pod, namespace AS ns FROM pod_exec",
    );
    assert!(!want.is_empty());
    assert_eq!(bag(got), bag(want), "exec");

    // 4. RBAC modifications (jq prints whole events: compare who did what to which object).
    let want = jq(
        r#"select(.objectRef.apiGroup == "rbac.authorization.k8s.io" and .verb != "get" and .verb != "list" and .verb != "watch") | {id: .auditID, stage: .stage, user: .user.username, verb: .verb, resource: .objectRef.resource, name: .objectRef.name}"#,
        &log,
    );
    let got = sql_ndjson(
        &store,
        "SELECT audit_id AS id, stage, user_name AS user, verb, resource, name FROM rbac_changes",
    );
    assert!(!want.is_empty());
    assert_eq!(bag(got), bag(want), "rbac");
}

/// How many files the scan of `sql` opened (DataFusion's `files_ranges_pruned_statistics` metric
/// counts every file range handed to the Parquet scan; with range splitting off, a range is a
/// file), and the plan text.
fn files_scanned(store: &Path, sql: &str) -> (usize, String) {
    let out = ok(
        store,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            &format!(
                "SET datafusion.optimizer.repartition_file_scans = false; EXPLAIN ANALYZE {sql}"
            ),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let n = text
        .split("files_ranges_pruned_statistics=")
        .skip(1)
        .map(|rest| {
            rest.split(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .expect("a file count")
        })
        .sum();
    (n, text)
}

#[test]
fn a_time_bounded_question_opens_only_that_days_files() {
    let (_dir, store, _log) = generated_store(20_000, 3, 9);
    let (all, plan) = files_scanned(
        &store,
        "SELECT count(*) FROM audit_events WHERE verb <> 'nope'",
    );
    assert_eq!(all, 3, "3 days, a file each: {plan}");

    let (hour, plan) = files_scanned(
        &store,
        "SELECT count(*) FROM audit_events WHERE ts >= '2026-03-18T10:00:00Z' AND ts < '2026-03-18T11:00:00Z'",
    );
    assert_eq!(hour, 1, "{plan}");
    assert!(plan.contains("date=2026-03-18/"), "{plan}");

    let across_midnight = files_scanned(
        &store,
        "SELECT count(*) FROM audit_events WHERE ts BETWEEN '2026-03-17T22:15:00Z' AND '2026-03-18T02:30:00Z'",
    );
    assert_eq!(across_midnight.0, 2, "{}", across_midnight.1);

    let day = files_scanned(
        &store,
        "SELECT count(*) FROM audit_events WHERE ts >= DATE '2026-03-19'",
    );
    assert_eq!(day.0, 1, "{}", day.1);

    let by_date = files_scanned(
        &store,
        "SELECT count(*) FROM audit_events WHERE date = '2026-03-18'",
    );
    assert_eq!(by_date.0, 1, "{}", by_date.1);

    // Relative to now: the data is in the past, so nothing is opened at all.
    let recent = files_scanned(
        &store,
        "SELECT count(*) FROM audit_events WHERE ts >= now() - interval '1 hour'",
    );
    assert_eq!(recent.0, 0, "{}", recent.1);

    // Pruning must not change answers.
    let n = count(
        &store,
        "SELECT count(*) FROM audit_events WHERE ts >= '2026-03-18T10:00:00Z' AND ts < '2026-03-18T11:00:00Z'",
    );
    let m = count(
        &store,
        "SELECT count(*) FROM audit_events WHERE date_trunc('hour', ts) = TIMESTAMP '2026-03-18T10:00:00Z'",
    );
    assert_eq!(n, m);
    assert!(n > 0);
}

#[test]
fn json_columns_are_reachable_from_sql() {
    let (_dir, store) = fixture_store("ingest/secret_bodies.jsonl");
    let rows = sql_ndjson(
        &store,
        "SELECT json_get_str(request_object, 'metadata', 'name') AS n, \
                annotations->>'authorization.k8s.io/decision' AS d, authz_decision \
         FROM audit_events WHERE verb = 'create' AND resource = 'secrets'",
    );
    assert_eq!(
        rows,
        vec![serde_json::json!({"n":"db","d":"allow","authz_decision":"allow"})]
    );
    let rows = sql_ndjson(
        &store,
        "SELECT json_length(response_object, 'items') AS n FROM audit_events WHERE verb = 'list'",
    );
    assert_eq!(rows, vec![serde_json::json!({"n":2})]);
}

#[test]
fn the_store_is_read_only_through_sql_and_errors_exit_non_zero() {
    let (dir, store) = fixture_store("ingest/secret_bodies.jsonl");
    for stmt in [
        "DELETE FROM audit_events",
        "UPDATE audit_events SET verb = 'x'",
        "INSERT INTO audit_events SELECT * FROM audit_events",
    ] {
        let out = run(&store, &["sql", "-c", stmt]);
        assert!(!out.status.success(), "{stmt} must fail");
        assert!(
            stderr(&out).contains("statement failed"),
            "{}",
            stderr(&out)
        );
    }
    let inside = store.join("date=2026-03-19/evil.parquet");
    let out = run(
        &store,
        &[
            "sql",
            "-c",
            &format!(
                "COPY (SELECT * FROM audit_events) TO '{}'",
                inside.display()
            ),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert_eq!(count(&store, "select count(*) from audit_events"), 4);
    // COPY elsewhere is what the user asked for.
    let outside = dir.path().join("secrets.csv");
    ok(
        &store,
        &[
            "sql",
            "-c",
            &format!(
                "COPY (SELECT audit_id FROM audit_events) TO '{}' STORED AS CSV",
                outside.display()
            ),
        ],
    );
    assert!(std::fs::read_to_string(outside).unwrap().lines().count() >= 4);
    // A syntax error names the statement and exits non-zero.
    let out = run(&store, &["sql", "-c", "SELEC 1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SELEC 1"), "{}", stderr(&out));
}

#[test]
fn formats_files_and_stdin() {
    let (dir, store) = fixture_store("ingest/secret_bodies.jsonl");
    let csv = ok(
        &store,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT verb, count(*) AS n FROM audit_events GROUP BY verb ORDER BY verb",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout),
        "verb,n\ncreate,2\nlist,1\npatch,1\n"
    );
    let json = ok(
        &store,
        &[
            "sql",
            "--format",
            "json",
            "-c",
            "SELECT verb FROM audit_events ORDER BY verb LIMIT 2",
        ],
    );
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v, serde_json::json!([{"verb":"create"},{"verb":"create"}]));
    let table = ok(
        &store,
        &[
            "sql",
            "--format",
            "table",
            "-c",
            "SELECT 1 AS one; SELECT 2 AS two",
        ],
    );
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("| one |") && t.contains("| two |") && t.contains("(1 row)"),
        "{t}"
    );
    let f = dir.path().join("q.sql");
    std::fs::write(
        &f,
        "-- a comment\nSELECT count(*) AS n\nFROM audit_events;\n",
    )
    .unwrap();
    let out = ok(
        &store,
        &["sql", "--format", "csv", "-f", f.to_str().unwrap()],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n4\n");
    let out = run_with_stdin(
        &store,
        &["sql", "--format", "csv"],
        b"SELECT count(*) AS n FROM pod_exec;",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");
}

#[test]
fn a_memory_limit_fails_clearly_instead_of_exhausting_the_machine() {
    let (_dir, store, _log) = generated_store(20_000, 1, 4);
    // A sort can spill: under a 1 MiB limit it still answers, and answers right.
    let q = "SELECT audit_id, request_uri, user_agent, annotations FROM audit_events ORDER BY request_uri, audit_id";
    let out = ok(
        &store,
        &[
            "sql",
            "--memory-limit",
            "1M",
            "--format",
            "csv",
            "-c",
            &format!("SELECT count(*) FROM ({q})"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "count(*)\n20000\n");
    // A hash join's build side cannot spill: under the limit it fails, with a message that says
    // so, instead of taking the machine's memory; without the limit it answers.
    let join = "SELECT count(*) FROM audit_events a JOIN audit_events b ON a.audit_id = b.audit_id";
    let out = run(&store, &["sql", "--memory-limit", "1M", "-c", join]);
    assert!(!out.status.success(), "the join fit in 1 MiB?");
    assert!(
        stderr(&out).contains("Resources exhausted"),
        "{}",
        stderr(&out)
    );
    assert!(count(&store, join) >= 20_000);
}

#[test]
fn every_example_query_runs() {
    let (_dir, store, _log) = generated_store(20_000, 2, 8);
    let queries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/queries");
    let mut n = 0;
    for e in std::fs::read_dir(queries).unwrap() {
        let p = e.unwrap().path();
        // "The last hour" of a generated history is its own last hour, not the clock's.
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("now()", "TIMESTAMP '2026-03-20T00:00:00Z'");
        let file = _dir.path().join("query.sql");
        std::fs::write(&file, text).unwrap();
        let out = ok(
            &store,
            &["sql", "--format", "csv", "-f", file.to_str().unwrap()],
        );
        let rows = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(rows > 1, "{}: no rows, only the header", p.display());
        n += 1;
    }
    assert!(n >= 9);
    let rows = sql_ndjson(
        &store,
        "SELECT count(*) AS n FROM audit_events WHERE impersonated_user_name IS NOT NULL",
    );
    assert!(
        rows[0]["n"].as_u64().unwrap() > 0,
        "the generator impersonates sometimes"
    );
}
