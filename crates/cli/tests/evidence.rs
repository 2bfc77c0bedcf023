//! The store is evidence: each attack of an intruder with SQL access, of a client that picks its
//! own audit IDs, or of input that carries credentials, through the real binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Every file below `root` and its bytes.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn sql_cannot_write_to_the_store_whatever_the_spelling() {
    let (dir, store) = fixture_store("ingest/secret_bodies.jsonl");
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let s = base.join("store");
    std::fs::create_dir(base.join("other")).unwrap();
    std::os::unix::fs::symlink(&s, base.join("link")).unwrap();
    let before = snapshot(&store);
    let day = "date=2026-03-19";
    let sd = s.display();
    let b = base.display();
    let copy = |to: &str| format!("COPY (SELECT * FROM audit_events) TO '{to}' STORED AS PARQUET");
    let attacks: Vec<String> = vec![
        "DELETE FROM audit_events".into(),
        "UPDATE audit_events SET verb = 'x'".into(),
        "INSERT INTO audit_events SELECT * FROM audit_events".into(),
        "EXPLAIN ANALYZE INSERT INTO audit_events SELECT * FROM audit_events".into(),
        "TRUNCATE TABLE audit_events".into(),
        format!("EXPLAIN ANALYZE {}", copy(&format!("{sd}/{day}/x.parquet"))),
        copy(&format!("{sd}/{day}/x.parquet")),
        copy(&format!("{sd}/{day}/")),
        copy(&format!("{b}/other/../store/{day}/x.parquet")),
        copy(&format!("{sd}//{day}//x.parquet")),
        copy(&format!("file://{b}/other/%2e%2e/store/{day}/x.parquet")),
        copy(&format!("file://{b}/other/%2E%2E/store/{day}/x.parquet")),
        copy(&format!("FILE://{sd}/{day}/x.parquet")),
        copy(&format!("file://localhost{sd}/{day}/x.parquet")),
        copy(&format!("{b}/link/{day}/x.parquet")),
        copy(&format!("{b}/link/date=2031-01-01/x.parquet")),
        copy(&format!("{sd}/x.parquet")),
        // A forged commit record that would hide real files (and make `compact` delete them).
        format!(
            "COPY (SELECT 'date=2026-03-19' AS partition) TO '{sd}/_commits/forged.json' STORED AS JSON"
        ),
        format!("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{sd}/{day}/'"),
        format!("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'file://{b}/link/'"),
        format!(
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{sd}/{day}/'; INSERT INTO t SELECT * FROM audit_events"
        ),
        // In a subquery of a statement that itself writes nothing.
        format!(
            "EXPLAIN COPY (SELECT * FROM audit_events WHERE audit_id IN (SELECT audit_id FROM audit_events)) TO '{sd}/{day}/y.parquet'"
        ),
    ];
    for stmt in &attacks {
        let out = run(&store, &["sql", "-c", stmt]);
        assert!(!out.status.success(), "{stmt} must fail");
        let err = stderr(&out);
        assert!(
            err.contains("refused") || err.contains("read-only"),
            "{stmt}: {err}"
        );
    }
    // A relative path from the folder the store is in, with the default store location.
    let rel = bin()
        .current_dir(&base)
        .args(["--store", "store", "sql", "-c"])
        .arg(copy(&format!("store/{day}/rel.parquet")))
        .output()
        .unwrap();
    assert!(!rel.status.success(), "relative COPY must fail");
    assert!(stderr(&rel).contains("refused"), "{}", stderr(&rel));
    let after = snapshot(&store);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no file appeared or vanished"
    );
    assert!(before == after, "every stored byte is as it was");
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 4);

    // Writing elsewhere is what the user asked for: a file, and a table outside the store.
    let outside = base.join("other/ids.csv");
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
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap().lines().count(),
        5
    );
    let table = base.join("other/t/");
    ok(
        &store,
        &[
            "sql",
            "-c",
            &format!(
                "CREATE EXTERNAL TABLE t (audit_id VARCHAR) STORED AS CSV LOCATION '{}'; INSERT INTO t SELECT audit_id FROM audit_events",
                table.display()
            ),
        ],
    );
    assert!(std::fs::read_dir(&table).unwrap().count() > 0);
}

fn planted(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .match_indices("PLANTED-")
        .map(|(i, _)| text[i..].chars().take(40).collect())
        .collect();
    found.dedup();
    found
}

/// Everything a store holds, as text: every column of every row read back (decompressed), the
/// export, the raw bytes of every file (the rejected area is plain JSON lines).
fn everything(store: &Path) -> String {
    let mut all = String::new();
    let rows = ok(
        store,
        &[
            "sql",
            "--format",
            "ndjson",
            "-c",
            "SELECT * FROM audit_events",
        ],
    );
    all.push_str(&String::from_utf8_lossy(&rows.stdout));
    let export = ok(store, &["export"]);
    all.push_str(&String::from_utf8_lossy(&export.stdout));
    for bytes in snapshot(store).values() {
        all.push_str(&String::from_utf8_lossy(bytes));
    }
    all
}

#[test]
fn no_credential_reaches_any_byte_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("auditlake.toml");
    std::fs::write(
        &config,
        "[[redact.rules]]\nresource = \"databases\"\ngroup = \"db.example.com\"\npaths = [\"/spec/password\"]\n",
    )
    .unwrap();
    // A Secret body nested deeper than the JSON parser's limit (128): parsed for redaction, it
    // fails; kept as it came, it would be a leak.
    let deep = dir.path().join("deep.jsonl");
    std::fs::write(
        &deep,
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"00000000-0000-4000-8000-000000000199","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/namespaces/payments/secrets","objectRef":{{"resource":"secrets","namespace":"payments","name":"deep","apiVersion":"v1"}},"requestReceivedTimestamp":"2026-03-19T11:01:00.000000Z","stageTimestamp":"2026-03-19T11:01:00.010000Z","requestObject":{{"kind":"Secret","data":{{"p":{}"PLANTED-deep-value"{}}}}}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        ) + "\n",
    )
    .unwrap();
    // Keys given twice: a reader of the JSON may take the first objectRef, serde the last.
    let dup = dir.path().join("dup.jsonl");
    std::fs::write(
        &dup,
        concat!(
            r#"{"auditID":"d1","stage":"ResponseComplete","verb":"create","requestReceivedTimestamp":"2026-03-19T11:02:00Z","objectRef":{"resource":"secrets"},"objectRef":{"resource":"configmaps"},"requestObject":{"data":{"p":"PLANTED-duplicate-objectref"}}}"#,
            "\n",
            r#"{"auditID":"d2","stage":"ResponseComplete","verb":"create","requestReceivedTimestamp":"2026-03-19T11:02:01Z","objectRef":{"resource":"secrets","resource":"pods"},"requestObject":{"data":{"p":"PLANTED-duplicate-resource"}}}"#,
            "\n"
        ),
    )
    .unwrap();
    let fixture = testdata("redaction/credentials.jsonl");
    let ingest = |store: &Path, extra: &[&str]| {
        let mut args = vec!["--config", config.to_str().unwrap(), "ingest"];
        args.extend_from_slice(extra);
        args.extend([
            fixture.to_str().unwrap(),
            deep.to_str().unwrap(),
            dup.to_str().unwrap(),
        ]);
        run(store, &args)
    };

    // The check can fail: without redaction every planted value is found.
    let open = dir.path().join("open");
    let out = ingest(&open, &["--no-redact"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let leaked = planted(&everything(&open));
    for v in [
        "PLANTED-tokenreview-request",
        "PLANTED-tokenreview-response",
        "PLANTED-tokenrequest",
        "PLANTED-noref",
        "PLANTED-list-item",
        "PLANTED-cut-short",
        "PLANTED-rejected-token",
        "PLANTED-crd-password",
        "PLANTED-duplicate-objectref",
        "PLANTED-duplicate-resource",
    ] {
        assert!(
            leaked.iter().any(|l| l.starts_with(v)),
            "{v} not found without redaction: {leaked:?}"
        );
    }

    let store = dir.path().join("store");
    let out = ingest(&store, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["read"], 10, "{}", stderr(&out));
    assert!(s["rejected"] >= 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("duplicate key"), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("credentials.jsonl:5"), "{err}");
    assert!(err.contains("credentials.jsonl:6"), "{err}");
    let all = everything(&store);
    assert_eq!(
        planted(&all),
        Vec::<String>::new(),
        "a credential was stored"
    );

    // What was redacted is visible as such, and what is not a credential is kept.
    let events = json_lines(&String::from_utf8_lossy(&ok(&store, &["export"]).stdout));
    let marker = "<redacted by auditlake>";
    let by_id = |n: u32| {
        events
            .iter()
            .find(|e| e["auditID"] == format!("00000000-0000-4000-8000-0000000001{n:02}"))
            .unwrap_or_else(|| panic!("event {n} stored"))
    };
    assert_eq!(by_id(1)["requestObject"]["spec"]["token"], marker);
    assert_eq!(by_id(1)["responseObject"]["spec"]["token"], marker);
    assert_eq!(
        by_id(1)["responseObject"]["status"]["user"]["username"],
        "system:serviceaccount:payments:api"
    );
    assert_eq!(by_id(2)["responseObject"]["status"]["token"], marker);
    assert_eq!(by_id(3)["requestObject"]["data"]["password"], marker);
    assert_eq!(
        by_id(4)["responseObject"]["items"][0]["stringData"]["k"],
        marker
    );
    assert_eq!(by_id(7)["requestObject"]["spec"]["password"], marker);
    assert_eq!(by_id(7)["requestObject"]["spec"]["size"], "10Gi");
    // The rejected lines are kept (masked) with their line numbers.
    let rejected: Vec<Value> = snapshot(&store.join("_rejected"))
        .values()
        .flat_map(|b| json_lines(&String::from_utf8_lossy(b)))
        .collect();
    let lines: Vec<u64> = rejected.iter().filter_map(|r| r["line"].as_u64()).collect();
    assert!(lines.contains(&5) && lines.contains(&6), "{rejected:?}");

    // The project's own scenario holds a TokenReview with a token: not stored either.
    let scenario = dir.path().join("scenario");
    ok(
        &scenario,
        &[
            "ingest",
            testdata("scenarios/compliance.jsonl").to_str().unwrap(),
        ],
    );
    assert!(!everything(&scenario).contains("eyJhbGciOi.redacted-for-fixture"));
}

fn event(id: &str, verb: &str, second: u32, uri: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseComplete","requestURI":"{uri}","verb":"{verb}","user":{{"username":"mallory","groups":["system:authenticated"]}},"sourceIPs":["203.0.113.7"],"objectRef":{{"resource":"secrets","namespace":"payments","name":"db","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-03-19T12:00:{second:02}.000000Z","stageTimestamp":"2026-03-19T12:00:{second:02}.020000Z"}}"#
    )
}

#[test]
fn a_reused_audit_id_is_stored_and_detected_while_a_copy_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let id = "11111111-2222-4333-8444-555555555555";
    let get = event(id, "get", 1, "/api/v1/namespaces/payments/secrets/db");
    let delete = event(id, "delete", 2, "/api/v1/namespaces/payments/secrets/db");
    let other = event(
        "99999999-2222-4333-8444-555555555555",
        "list",
        3,
        "/api/v1/namespaces/payments/secrets",
    );
    // The harmless request, then (in the same file) an exact copy (whitespace aside).
    let first = dir.path().join("first.log");
    std::fs::write(
        &first,
        format!("{get}\n{other}\n{}\n", get.replace(',', ", ")),
    )
    .unwrap();
    let s = summary(&ok(&store, &["ingest", first.to_str().unwrap()]));
    assert_eq!((s["stored"], s["duplicates"]), (2, 1));
    // Later: the destructive request under the same ID, and the first again (a retried batch).
    let second = dir.path().join("second.log");
    std::fs::write(&second, format!("{get}\n{delete}\n")).unwrap();
    let out = ok(&store, &["ingest", second.to_str().unwrap()]);
    let s = summary(&out);
    assert_eq!((s["stored"], s["duplicates"]), (1, 1), "{}", stderr(&out));
    assert!(stderr(&out).contains("audit_id_reuse"), "{}", stderr(&out));
    // Ingesting both again stores nothing.
    let s = summary(&ok(
        &store,
        &["ingest", first.to_str().unwrap(), second.to_str().unwrap()],
    ));
    assert_eq!((s["stored"], s["duplicates"]), (0, 5));
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 3);
    let rows = sql_ndjson(
        &store,
        "SELECT audit_id, verb, events FROM audit_id_reuse ORDER BY ts",
    );
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"audit_id": id, "verb": "get", "events": 2}),
            serde_json::json!({"audit_id": id, "verb": "delete", "events": 2}),
        ]
    );
    let report = ok(
        &store,
        &[
            "report",
            "--framework",
            "detections",
            "--from",
            "2026-03-19",
            "--to",
            "2026-03-20",
            "--format",
            "json",
        ],
    );
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("audit-id-reuse"), "{text}");
}

#[test]
fn a_typo_in_the_store_path_is_an_error_not_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("auditlake-dat");
    for args in [
        &["sql", "-c", "SELECT count(*) FROM audit_events"][..],
        &["stats"],
        &["export"],
        &["report", "--framework", "pci-dss"],
    ] {
        let out = run(&missing, args);
        assert!(!out.status.success(), "{args:?} on a missing store");
        assert!(
            stderr(&out).contains("no store at") && stderr(&out).contains("auditlake ingest"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!missing.exists(), "{args:?} created the folder");
    }
}

#[test]
fn only_the_body_differs_is_another_event_and_other_spelling_is_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let ev = |id: &str, body: serde_json::Value| serde_json::json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":id,"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/p/configmaps/c","verb":"patch","user":{"username":"alice","extra":{"a":["1"],"b":["2"]}},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"configmaps","namespace":"p","name":"c","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-19T10:30:00.000000Z","stageTimestamp":"2026-03-19T10:30:00.050000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""},"requestObject":body});
    let safe = ev("b1", serde_json::json!({"data":{"mode":"safe"}}));
    let evil = ev("b1", serde_json::json!({"data":{"mode":"escalate"}}));
    let copy = ev("b2", serde_json::json!({"data":{"k":"v","j":"w"}}));
    let lines = dir.path().join("lines.log");
    std::fs::write(
        &lines,
        format!(
            "{}\n{}\n{}\n",
            serde_json::to_string(&safe).unwrap(),
            serde_json::to_string(&evil).unwrap(),
            serde_json::to_string(&copy).unwrap()
        ),
    )
    .unwrap();
    // The same b2 as a webhook batch would carry it: pretty-printed, keys in another order.
    let mut reordered = copy.clone();
    reordered["requestObject"] = serde_json::json!({"data":{"j":"w","k":"v"}});
    reordered["user"]["extra"] = serde_json::json!({"b":["2"],"a":["1"]});
    let batch = dir.path().join("batch.json");
    std::fs::write(
        &batch,
        serde_json::to_string_pretty(
            &serde_json::json!({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[reordered]}),
        )
        .unwrap(),
    )
    .unwrap();
    let out = ok(
        &store,
        &["ingest", lines.to_str().unwrap(), batch.to_str().unwrap()],
    );
    let s = summary(&out);
    assert_eq!((s["stored"], s["duplicates"]), (3, 1), "{}", stderr(&out));
    let rows = sql_ndjson(
        &store,
        "SELECT audit_id, json_get_str(request_object, 'data', 'mode') AS mode FROM audit_id_reuse ORDER BY mode",
    );
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"audit_id":"b1","mode":"escalate"}),
            serde_json::json!({"audit_id":"b1","mode":"safe"}),
        ]
    );
    // Slimmed (bodies dropped by retention), the day still knows its events: the same input
    // again is all copies.
    ok(
        &store,
        &[
            "retain",
            "--slim-after",
            "1d",
            "--now",
            "2026-03-25T00:00:00Z",
        ],
    );
    let s = summary(&ok(
        &store,
        &["ingest", lines.to_str().unwrap(), batch.to_str().unwrap()],
    ));
    assert_eq!((s["stored"], s["duplicates"]), (0, 4));
}
