use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_auditlake"));
    c.env_remove("AUDITLAKE_STORE").env("NO_COLOR", "1");
    c
}

/// Runs the binary with `args` against `store`.
pub fn run(store: &Path, args: &[&str]) -> Output {
    let mut c = bin();
    c.arg("--store").arg(store).args(args);
    c.output().expect("run auditlake")
}

/// Runs the binary with `args` against `store`, feeding `input` on standard input.
pub fn run_with_stdin(store: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run auditlake");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait for auditlake")
}

pub fn ok(store: &Path, args: &[&str]) -> Output {
    let out = run(store, args);
    assert!(
        out.status.success(),
        "auditlake {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// `../shared/samples` beside the project. Missing, the tests that read it fail, unless
/// `AUDITLAKE_SKIP_SAMPLES=1` says to skip them (then they say so on stderr): a silent skip
/// would pass without checking anything.
pub fn samples() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples");
    if p.is_dir() {
        return Some(p);
    }
    assert!(
        std::env::var("AUDITLAKE_SKIP_SAMPLES").is_ok_and(|v| v == "1"),
        "{} is missing: put ../shared beside the project, or set AUDITLAKE_SKIP_SAMPLES=1 to skip",
        p.display()
    );
    eprintln!(
        "SKIPPED: {} is missing and AUDITLAKE_SKIP_SAMPLES=1",
        p.display()
    );
    None
}

/// Generates `events` events over `days` days ending at a fixed time (deterministic).
pub fn generate(dir: &Path, name: &str, events: u64, days: u32, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let out = bin()
        .args([
            "gen",
            "--events",
            &events.to_string(),
            "--days",
            &days.to_string(),
        ])
        .args([
            "--seed",
            &seed.to_string(),
            "--end",
            "2026-03-20T00:00:00Z",
            "--out",
        ])
        .arg(&path)
        .output()
        .expect("run gen");
    assert!(out.status.success(), "gen failed: {}", stderr(&out));
    path
}

pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Events keyed by (auditID, stage), the dedup key, asserting each key appears once.
pub fn by_key(events: Vec<Value>) -> BTreeMap<(String, String), Value> {
    let mut m = BTreeMap::new();
    for e in events {
        let k = (
            e["auditID"].as_str().unwrap_or_default().to_owned(),
            e["stage"].as_str().unwrap_or_default().to_owned(),
        );
        assert!(m.insert(k.clone(), e).is_none(), "duplicate key {k:?}");
    }
    m
}

/// The summary numbers of an ingest, from its last stderr line.
pub fn summary(o: &Output) -> BTreeMap<String, u64> {
    let text = stderr(o);
    let line = text
        .lines()
        .find(|l| l.contains("events read"))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let mut m = BTreeMap::new();
    let words: Vec<&str> = line
        .split([' ', ',', ';', ':'])
        .filter(|w| !w.is_empty())
        .collect();
    for w in words.windows(3) {
        if let Ok(n) = w[0].parse::<u64>() {
            // "30000 events read" is "read"; "12 stored" is "stored".
            let key = if w[1] == "events" { w[2] } else { w[1] };
            m.entry(key.to_owned()).or_insert(n);
        }
    }
    m
}

pub fn sql_ndjson(store: &Path, sql: &str) -> Vec<Value> {
    let out = ok(store, &["sql", "--format", "ndjson", "-c", sql]);
    json_lines(&String::from_utf8_lossy(&out.stdout))
}

pub fn count(store: &Path, sql: &str) -> u64 {
    let rows = sql_ndjson(store, sql);
    rows[0]
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_u64)
        .expect("a count")
}

/// A fresh store holding one fixture of `testdata/`; the folder lives as long as the `TempDir`.
pub fn fixture_store(rel: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(&store, &["ingest", testdata(rel).to_str().unwrap()]);
    (dir, store)
}

/// A fresh store holding `events` generated events (the raw log is returned too).
pub fn generated_store(events: u64, days: u32, seed: u64) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = generate(dir.path(), "audit.log", events, days, seed);
    ok(&store, &["ingest", log.to_str().unwrap()]);
    (dir, store, log)
}

/// What readers must agree on, whatever the files: per day, events, distinct (audit_id, stage),
/// events with a body.
pub const CENSUS_SQL: &str = "SELECT date, count(*) AS n, count(DISTINCT audit_id || '/' || stage) AS keys, \
     count(request_object) + count(response_object) AS bodies \
     FROM audit_events GROUP BY date ORDER BY date";

/// The rows of [`CENSUS_SQL`] by day.
pub fn census_of(rows: Vec<Value>) -> BTreeMap<String, (u64, u64, u64)> {
    rows.into_iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (
                r["date"].as_str().unwrap().to_owned(),
                (n("n"), n("keys"), n("bodies")),
            )
        })
        .collect()
}
