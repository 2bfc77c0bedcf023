use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

#[test]
fn generated_day_eventlist_and_gzip_round_trip_through_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "audit.log", 30_000, 1, 7);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The first third as a plain log, the second as a gzipped rotated file, the rest as webhook
    // EventList batches of 400 (one per line, as a receiver would append them).
    let (a, rest) = lines.split_at(10_000);
    let (b, c) = rest.split_at(10_000);
    std::fs::write(
        dir.path().join("audit-2026-03-19T08-00-00.000.log"),
        a.join("\n") + "\n",
    )
    .unwrap();
    let gz =
        std::fs::File::create(dir.path().join("audit-2026-03-19T16-00-00.000.log.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    enc.write_all((b.join("\n") + "\n").as_bytes()).unwrap();
    enc.finish().unwrap();
    let mut lists = String::new();
    for batch in c.chunks(400) {
        let items: Vec<Value> = batch
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        lists +=
            &json!({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":items})
                .to_string();
        lists.push('\n');
    }
    std::fs::write(dir.path().join("webhook-batches.json"), lists).unwrap();
    std::fs::remove_file(&log).unwrap();

    let out = ok(
        &store,
        &[
            "ingest",
            "--cluster",
            "prod-eu",
            dir.path().to_str().unwrap(),
        ],
    );
    let s = summary(&out);
    assert_eq!(s["read"], 30_000, "{}", stderr(&out));
    assert_eq!(s["stored"], 30_000);
    assert_eq!(s["rejected"], 0);

    let exported = ok(&store, &["export"]);
    let back = by_key(json_lines(&String::from_utf8_lossy(&exported.stdout)));
    let orig = by_key(
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    assert_eq!(back.len(), orig.len());
    let mut redacted = 0;
    for (k, o) in &orig {
        let b = &back[k];
        if o["objectRef"]["resource"] == "secrets"
            && (o.get("requestObject").is_some() || o.get("responseObject").is_some())
        {
            redacted += 1;
            continue;
        }
        assert_eq!(b, o, "event {k:?} changed");
    }
    assert!(redacted < orig.len() / 100);
    assert_eq!(
        count(
            &store,
            "select count(*) from audit_events where cluster = 'prod-eu'"
        ),
        30_000
    );

    // Exported lines ingest into a fresh store as the same events: export is lossless both ways.
    let again = dir.path().join("again.jsonl");
    std::fs::write(&again, &exported.stdout).unwrap();
    let store2 = dir.path().join("store2");
    let s2 = summary(&ok(&store2, &["ingest", again.to_str().unwrap()]));
    assert_eq!(s2["stored"], 30_000);
}

/// `--timings` names every stage with its time; without it, no stage line.
#[test]
fn timings_give_each_stage_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "all.log", 20_000, 2, 5);
    let out = ok(&store, &["ingest", "--timings", log.to_str().unwrap()]);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("stages ("))
        .unwrap_or_else(|| panic!("no stages line: {err}"));
    let time = |stage: &str| -> f64 {
        let at = line
            .find(&format!(" {stage} "))
            .unwrap_or_else(|| panic!("no {stage} in {line}"));
        let rest = &line[at + stage.len() + 2..];
        rest[..rest.find('s').unwrap()].parse().unwrap()
    };
    for stage in [
        "read", "parse", "build", "dedup", "encode", "write", "commit", "reader", "writer",
    ] {
        assert!(time(stage) >= 0.0, "{line}");
    }
    let plain = stderr(&ok(&store, &["ingest", log.to_str().unwrap()]));
    assert!(!plain.contains("stages ("), "{plain}");
}

#[test]
fn same_input_twice_and_overlapping_rotations_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "all.log", 6_000, 1, 11);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Two rotated files that overlap by 1000 lines.
    std::fs::write(dir.path().join("r1.log"), lines[..3_500].join("\n")).unwrap();
    std::fs::write(dir.path().join("r2.log"), lines[2_500..].join("\n")).unwrap();
    let s = summary(&ok(
        &store,
        &["ingest", dir.path().join("r*.log").to_str().unwrap()],
    ));
    assert_eq!(
        (s["read"], s["stored"], s["duplicates"]),
        (7_000, 6_000, 1_000)
    );
    let s = summary(&ok(&store, &["ingest", log.to_str().unwrap()]));
    assert_eq!((s["stored"], s["duplicates"]), (0, 6_000));
    assert_eq!(count(&store, "select count(*) from audit_events"), 6_000);
    assert_eq!(
        count(
            &store,
            "select count(*) from (select audit_id, stage from audit_events group by 1, 2)"
        ),
        6_000
    );
}

#[test]
fn bad_lines_are_rejected_reported_and_kept_while_good_ones_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = testdata("ingest/good_and_bad.log");
    let out = run(&store, &["ingest", input.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code says something was rejected: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    let s = summary(&out);
    assert_eq!((s["stored"], s["rejected"]), (4, 5), "{err}");
    for line in 3..=7 {
        assert!(
            err.contains(&format!("good_and_bad.log:{line}:")),
            "line {line} reported: {err}"
        );
    }
    assert!(err.contains("good_and_bad.log:3: invalid JSON"), "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    assert!(err.contains("no usable timestamp"), "{err}");
    // Kept for inspection in the store, with file and line.
    let rejected: Vec<Value> = std::fs::read_dir(store.join("_rejected"))
        .unwrap()
        .flat_map(|e| json_lines(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
        .collect();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7]);
    assert!(
        rejected[0]["raw"]
            .as_str()
            .unwrap()
            .starts_with("{\"kind\":\"Event\"")
    );
    assert_eq!(rejected[1]["lossy_utf8"], true);
    let ids: Vec<Value> = sql_ndjson(&store, "select name from audit_events order by ts");
    assert_eq!(
        ids,
        vec![
            json!({"name":"cm-1"}),
            json!({"name":"cm-2"}),
            json!({"name":"cm-4"}),
            json!({"name":"cm-5"})
        ]
    );
}

#[test]
fn secret_values_never_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(
        &store,
        &[
            "ingest",
            testdata("ingest/secret_bodies.jsonl").to_str().unwrap(),
        ],
    );
    let files: Vec<_> = walk(&store);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for secret in [
            "aHVudGVyMg==",
            "s3cr3t",
            "czNjcjN0",
            "bmV3cGFzcw==",
            "dg==",
            "dw==",
        ] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} found in {}",
                f.display()
            );
        }
    }
    let out = ok(&store, &["export"]);
    let events = json_lines(&String::from_utf8_lossy(&out.stdout));
    let marker = "<redacted by auditlake>";
    let create = events
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "secrets")
        .unwrap();
    assert_eq!(create["requestObject"]["data"]["password"], marker);
    assert_eq!(create["requestObject"]["stringData"]["token"], marker);
    assert_eq!(
        create["requestObject"]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        marker
    );
    assert_eq!(create["responseObject"]["data"]["token"], marker);
    assert_eq!(
        create["responseObject"]["metadata"]["uid"],
        "7d0c1f3e-2b1a-4c5d-9e8f-0a1b2c3d4e5f"
    );
    let patch = events.iter().find(|e| e["verb"] == "patch").unwrap();
    assert_eq!(patch["requestObject"][0]["value"], marker);
    assert_eq!(patch["requestObject"][0]["path"], "/data/password");
    let list = events.iter().find(|e| e["verb"] == "list").unwrap();
    assert_eq!(list["responseObject"]["items"][1]["data"]["k2"], marker);
    let cm = events
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps")
        .unwrap();
    assert_eq!(
        cm["requestObject"]["data"]["color"], "blue",
        "only the configured resources are redacted"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn pretty_eventlist_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = summary(&ok(
        &store,
        &[
            "ingest",
            testdata("ingest/eventlist_webhook.json").to_str().unwrap(),
        ],
    ));
    assert_eq!((s["stored"], s["rejected"]), (3, 0));
    let out = run_with_stdin(
        &store,
        &["ingest", "-"],
        &std::fs::read(testdata("ingest/secret_bodies.jsonl")).unwrap(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&out)["stored"], 4);
    assert_eq!(count(&store, "select count(*) from audit_events"), 7);
}

#[test]
fn every_plain_sample_event_ingests_without_rejection() {
    let Some(samples) = samples() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let files = [
        "audit2rbac_demo_v1beta1_2017.log",
        "audit2rbac_demo_v1_relabeled.log",
        "falco_exec_pod.json",
        "falco_attach_cluster_admin_role.json",
        "falco_create_nginx_pod_privileged.json",
        "falco_create_secret.json",
    ];
    let mut originals = Vec::new();
    for f in files {
        let p = samples.join(f);
        let out = ok(
            &store,
            &[
                "ingest",
                "--no-redact",
                "--cluster",
                "samples",
                p.to_str().unwrap(),
            ],
        );
        assert_eq!(summary(&out)["rejected"], 0, "{f}: {}", stderr(&out));
        originals.extend(json_lines(&std::fs::read_to_string(p).unwrap()));
    }
    // The two audit2rbac files hold the same 37 requests (v1beta1, then relabelled v1): one copy
    // is stored. Every stored event exports equal to one of the inputs.
    let out = ok(&store, &["export"]);
    let back = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(back.len(), 37 + 4);
    for e in &back {
        assert!(
            originals.contains(e),
            "exported event not among the inputs: {e}"
        );
    }
    let v1beta1 = count(
        &store,
        "select count(*) from audit_events where event_api_version = 'audit.k8s.io/v1beta1'",
    );
    assert_eq!(v1beta1, 38);
    let exec = sql_ndjson(&store, "select user_name, pod, namespace from pod_exec");
    assert_eq!(
        exec,
        vec![
            json!({"user_name":"minikube-user","pod":"nginx-deployment-7998647bdf-phvq7","namespace":"default"})
        ]
    );
}

#[test]
fn an_ingest_killed_midway_leaves_a_readable_store_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "big.log", 200_000, 10, 5);
    let mut child = bin()
        .arg("--store")
        .arg(&store)
        .args([
            "ingest",
            "--buffer-mb",
            "4",
            "--threads",
            "1",
            log.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let n = if store.exists() {
            walk(&store)
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .count()
        } else {
            0
        };
        if n >= 3 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Readable, and holding only whole files.
    let partial = count(&store, "select count(*) from audit_events");
    assert!(partial > 0 && partial < 200_000, "partial = {partial}");
    let s = summary(&ok(&store, &["ingest", log.to_str().unwrap()]));
    assert_eq!(s["stored"] + s["duplicates"], 200_000);
    assert_eq!(s["duplicates"], partial);
    assert_eq!(count(&store, "select count(*) from audit_events"), 200_000);
}

#[test]
fn stats_count_days_and_show_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(
        &store,
        &[
            "ingest",
            "--cluster",
            "a",
            testdata("scenarios/views.jsonl").to_str().unwrap(),
        ],
    );
    ok(
        &store,
        &[
            "ingest",
            "--cluster",
            "b",
            testdata("ingest/eventlist_webhook.json").to_str().unwrap(),
        ],
    );
    let out = ok(&store, &["stats", "--format", "csv"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(&rows[0][..4], &["2026-03-19", "b", "3", "1"], "{text}");
    assert_eq!(&rows[1][..4], &["2026-04-01", "a", "9", "1"], "{text}");
    let err = stderr(&out);
    assert!(err.contains("12 events in 2 files"), "{err}");
    assert!(
        err.contains(
            "gap: no events from 2026-03-19T11:00:00.000000Z to 2026-04-01T09:00:00.000000Z (310 h)"
        ),
        "{err}"
    );
}

/// A second reader over the same files: DuckDB (the Python module, which `scripts/test` installs)
/// with hive partitioning sees every event, the partition columns, and the same answers.
#[test]
fn duckdb_reads_the_store_directly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "audit.log", 15_000, 2, 31);
    ok(&store, &["ingest", log.to_str().unwrap()]);
    let glob = store.join("date=*/*.parquet");
    let script = format!(
        "import duckdb\n\
         r = duckdb.sql(\"SELECT count(*), count(DISTINCT date), count(DISTINCT audit_id), \
         sum(CASE WHEN response_code = 403 THEN 1 ELSE 0 END), min(ts)::VARCHAR \
         FROM read_parquet('{}', hive_partitioning = true)\").fetchall()[0]\n\
         print(','.join(str(x) for x in r))\n",
        glob.display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "DuckDB could not read the store (run ./scripts/test, which installs the duckdb module): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let ours = sql_ndjson(
        &store,
        "SELECT count(*) AS n, count(DISTINCT date) AS parts, count(DISTINCT audit_id) AS ids, \
         sum(CASE WHEN response_code = 403 THEN 1 ELSE 0 END) AS denied FROM audit_events",
    );
    let o = &ours[0];
    let expected = format!("{},{},{},{}", o["n"], o["parts"], o["ids"], o["denied"]);
    assert!(
        duck.starts_with(&format!("{expected},")),
        "duckdb {duck} vs auditlake {expected}"
    );
    assert_eq!(o["n"], 15_000);
    assert_eq!(o["parts"], 2);
}

/// Spark reads the store with the DDL the README gives (the README's own `sql` block after "Spark
/// SQL", pointed at a local folder): every day, every event, the same first and last timestamps.
/// The store is ingested twice and compacted first, so `_delta_log/` exists and must be ignored;
/// Spark reads the live files once vacuum has deleted those compaction removed. `scripts/test`
/// installs pyspark and a Java runtime.
#[test]
fn spark_reads_the_store_with_the_readme_ddl() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for (i, seed) in [41, 42].iter().enumerate() {
        let log = generate(dir.path(), &format!("audit-{i}.log"), 4_000, 3, *seed);
        ok(&store, &["ingest", log.to_str().unwrap()]);
    }
    ok(&store, &["compact"]);
    ok(&store, &["vacuum", "--grace", "0s"]);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("Spark SQL")
        .nth(1)
        .and_then(|s| s.split("```sql\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README has a Spark SQL block");
    assert!(block.contains("s3a://audit-archive/prod/"), "{block}");
    let ddl = block.replace(
        "s3a://audit-archive/prod/",
        &format!("file://{}/", store.display()),
    );
    let script = format!(
        r#"
import json
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.warehouse.dir", {warehouse:?}).getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for statement in {ddl:?}.split(";"):
    if statement.strip():
        spark.sql(statement)
r = spark.sql("SELECT count(*), count(DISTINCT date), count(DISTINCT audit_id), "
              "date_format(min(ts), 'yyyy-MM-dd HH:mm:ss.SSSSSS'), "
              "date_format(max(ts), 'yyyy-MM-dd HH:mm:ss.SSSSSS') FROM audit_events").collect()[0]
print(json.dumps([r[0], r[1], r[2], r[3], r[4]]))
"#,
        warehouse = dir.path().join("warehouse").display().to_string(),
        ddl = ddl,
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "Spark could not read the store (run ./scripts/test, which installs pyspark and Java): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let spark: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line");
    let ours = sql_ndjson(
        &store,
        "SELECT count(*) AS n, count(DISTINCT date) AS days, count(DISTINCT audit_id) AS ids, \
         to_char(min(ts), '%Y-%m-%d %H:%M:%S%.6f') AS first, \
         to_char(max(ts), '%Y-%m-%d %H:%M:%S%.6f') AS last FROM audit_events",
    );
    let o = &ours[0];
    assert_eq!(o["n"], 8_000);
    assert_eq!(
        spark,
        serde_json::json!([o["n"], o["days"], o["ids"], o["first"], o["last"]]),
        "Spark vs auditlake"
    );
}

// Hostile input: a line cut short, a 200 MB line, deep nesting, a large pretty-printed document.
// Each costs one reject at most, never the good events around it, and never much memory.

/// Every record of the store's `_rejected/` area.
fn rejected_records(store: &std::path::Path) -> Vec<Value> {
    std::fs::read_dir(store.join("_rejected"))
        .unwrap()
        .flat_map(|e| json_lines(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
        .collect()
}

/// Runs `auditlake --store <store> ingest <args>` and measures the peak resident memory of the
/// process in KiB: with `/usr/bin/time -v` when present, else by polling `VmHWM` in
/// `/proc/<pid>/status` while it runs.
fn ingest_measured(store: &std::path::Path, args: &[&str]) -> (std::process::Output, u64) {
    let time = std::path::Path::new("/usr/bin/time");
    if time.exists() {
        let out = std::process::Command::new(time)
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_auditlake"))
            .env_remove("AUDITLAKE_STORE")
            .env("NO_COLOR", "1")
            .arg("--store")
            .arg(store)
            .arg("ingest")
            .args(args)
            .output()
            .expect("run auditlake under /usr/bin/time");
        let err = stderr(&out);
        let kib = err
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time in {err}"));
        return (out, kib);
    }
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .arg("ingest")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run auditlake");
    let status = format!("/proc/{}/status", child.id());
    let mut kib = 0;
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut e).unwrap();
        e
    });
    let mut o = Vec::new();
    let out_reader = std::thread::spawn(move || {
        std::io::Read::read_to_end(&mut so, &mut o).unwrap();
        o
    });
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status) {
            let hwm = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            kib = kib.max(hwm.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let out = std::process::Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: reader.join().unwrap(),
    };
    (out, kib)
}

/// The first `len` bytes of `s`, or fewer to end on a character.
fn cut_short(s: &str, len: usize) -> &str {
    let end = (0..=len.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..end]
}

#[test]
fn a_first_line_cut_short_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = std::fs::read_to_string(generate(dir.path(), "good.log", 300, 1, 61)).unwrap();
    let first = good.lines().next().unwrap();
    let cut = cut_short(first, first.len() / 2);
    let input = dir.path().join("cut.log");
    std::fs::write(&input, format!("{cut}\n{good}")).unwrap();
    let out = run(&store, &["ingest", input.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let s = summary(&out);
    assert_eq!((s["stored"], s["rejected"]), (300, 1), "{err}");
    assert!(err.contains("cut.log:1: invalid JSON"), "{err}");
    let rejected = rejected_records(&store);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 1);
    assert!(rejected[0]["source"].as_str().unwrap().ends_with("cut.log"));
    assert_eq!(rejected[0]["raw"], cut);
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 300);
}

#[test]
fn a_200_mb_line_is_one_reject_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = std::fs::read_to_string(generate(dir.path(), "good.log", 300, 1, 62)).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let input = dir.path().join("huge.log");
    let head = r#"{"kind":"Event","auditID":"x","requestObject":""#;
    let a = vec![b'a'; 1 << 20];
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for l in &lines[..150] {
            writeln!(w, "{l}").unwrap();
        }
        w.write_all(head.as_bytes()).unwrap();
        for _ in 0..200 {
            w.write_all(&a).unwrap();
        }
        w.write_all(b"\"}\n").unwrap();
        for l in &lines[150..] {
            writeln!(w, "{l}").unwrap();
        }
    }
    let long = head.len() + 200 * a.len() + 2;
    let (out, kib) = ingest_measured(&store, &[input.to_str().unwrap()]);
    let err = stderr(&out);
    println!(
        "peak RSS of the ingest of a {} MB line: {:.1} MiB",
        long / 1_000_000,
        kib as f64 / 1024.0
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    let s = summary(&out);
    assert_eq!((s["stored"], s["rejected"]), (300, 1), "{err}");
    assert!(
        err.contains(&format!(
            "huge.log:151: line longer than the limit of 64 MiB ({long} bytes); its first KiB is kept"
        )),
        "{err}"
    );
    let rejected = rejected_records(&store);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 151);
    let raw = rejected[0]["raw"].as_str().unwrap();
    assert_eq!(raw.len(), 1024);
    assert!(raw.starts_with(head), "{raw}");
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 300);
    assert!(kib > 0 && kib < 1536 * 1024, "peak RSS {kib} KiB");
}

#[test]
fn deep_nesting_on_a_line_is_one_reject() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = std::fs::read_to_string(generate(dir.path(), "good.log", 300, 1, 63)).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let open = "[".repeat(100_000);
    let closed = format!("{open}{}", "]".repeat(100_000));
    // Unclosed on the first line (where the JSON-lines decision looks), closed on line 102.
    let text = format!(
        "{open}\n{}\n{closed}\n{}\n",
        lines[..100].join("\n"),
        lines[100..].join("\n")
    );
    let input = dir.path().join("deep.log");
    std::fs::write(&input, text).unwrap();
    let out = run(&store, &["ingest", input.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let s = summary(&out);
    assert_eq!((s["stored"], s["rejected"]), (300, 2), "{err}");
    assert!(err.contains("deep.log:1: "), "{err}");
    assert!(err.contains("deep.log:102: "), "{err}");
    let mut at: Vec<u64> = rejected_records(&store)
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    at.sort();
    assert_eq!(at, vec![1, 102]);
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 300);
}

/// A pretty-printed EventList of 200+ MB is streamed item by item: all of it is stored, and the
/// ingest holds far less than the document in memory (each event carries a 6 KB annotation, to
/// make the document large with few events).
#[test]
fn a_large_pretty_eventlist_is_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "good.log", 30_000, 1, 64);
    let input = dir.path().join("list.json");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        w.write_all(
            b"{\n  \"kind\": \"EventList\",\n  \"apiVersion\": \"audit.k8s.io/v1\",\n  \"items\": [\n",
        )
        .unwrap();
        let padding = "x".repeat(6_000);
        for (i, line) in std::fs::read_to_string(&log).unwrap().lines().enumerate() {
            let mut e: Value = serde_json::from_str(line).unwrap();
            e["annotations"]["example.com/padding"] = json!(padding);
            if i > 0 {
                w.write_all(b",\n").unwrap();
            }
            serde_json::to_writer_pretty(&mut w, &e).unwrap();
        }
        w.write_all(b"\n  ]\n}\n").unwrap();
    }
    let size = std::fs::metadata(&input).unwrap().len();
    let (out, kib) = ingest_measured(&store, &["--buffer-mb", "16", input.to_str().unwrap()]);
    let err = stderr(&out);
    println!(
        "peak RSS of the ingest of a {} MB pretty-printed EventList: {:.1} MiB",
        size / 1_000_000,
        kib as f64 / 1024.0
    );
    assert!(out.status.success(), "{err}");
    let s = summary(&out);
    assert_eq!((s["stored"], s["rejected"]), (30_000, 0), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 30_000);
    assert!(size > 200_000_000);
    assert!(
        kib * 1024 * 2 < size,
        "peak RSS {kib} KiB for a document of {size} bytes"
    );
}
