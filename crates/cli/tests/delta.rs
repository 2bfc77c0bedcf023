//! The store as a Delta Lake table: concurrent writers store every event once, `--as-of` reads
//! the past, an independent Delta reader (DuckDB's `delta_scan`, on delta-kernel-rs) counts what
//! auditlake counts, and a store in the layout before the log becomes a table.
//!
//! Races are made exact with the hold points of `auditlake_store::log::hold_point`: one writer is
//! held just before its commit while another commits, then released.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::s3::{Moto, start_moto};

/// A store, local or on the loopback S3 server.
enum Target {
    Local(PathBuf),
    S3(Moto, String),
}

impl Target {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = bin();
        match self {
            Self::Local(store) => {
                c.arg("--store").arg(store);
            }
            Self::S3(moto, url) => {
                moto.configure(&mut c);
                c.args(["--store", url]);
            }
        }
        c.args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run auditlake");
        assert!(
            out.status.success(),
            "auditlake {args:?} failed: {}",
            stderr(&out)
        );
        out
    }

    fn rows(&self, args: &[&str], sql: &str) -> Vec<serde_json::Value> {
        let mut a = vec!["sql", "--format", "ndjson"];
        a.extend_from_slice(args);
        a.extend(["-c", sql]);
        json_lines(&String::from_utf8_lossy(&self.ok(&a).stdout))
    }

    /// Per day: events, distinct (audit_id, stage), bodies.
    fn census_as_of(&self, args: &[&str]) -> BTreeMap<String, (u64, u64, u64)> {
        census_of(self.rows(args, CENSUS_SQL))
    }

    fn census(&self) -> BTreeMap<String, (u64, u64, u64)> {
        self.census_as_of(&[])
    }

    /// Starts a command held at a hold point; returns once it is held.
    fn held(&self, args: &[&str], point: &str, dir: &Path) -> Held {
        let release = dir.join(format!("release-{point}-{}", rand_suffix()));
        let mut c = self.command(args);
        c.env("AUDITLAKE_HOLD", point)
            .env("AUDITLAKE_HOLD_FILE", &release)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().expect("spawn auditlake");
        let marker = PathBuf::from(format!("{}.held", release.display()));
        let start = Instant::now();
        while !marker.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "auditlake {args:?} never reached {point}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Held {
            child,
            release,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn rand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A process held at a hold point.
struct Held {
    child: Child,
    release: PathBuf,
    args: Vec<String>,
}

impl Held {
    /// Lets it go on and waits for it to succeed.
    fn finish(self) -> Output {
        std::fs::write(&self.release, "go").unwrap();
        let out = self.child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "auditlake {:?} failed: {}",
            self.args,
            stderr(&out)
        );
        out
    }
}

/// The lines of `log` from `from` to `to` (fractions of the whole), as a new file.
fn slice(log: &Path, name: &str, from: f64, to: f64) -> PathBuf {
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = (
        (lines.len() as f64 * from) as usize,
        (lines.len() as f64 * to) as usize,
    );
    let p = log.with_file_name(name);
    std::fs::write(&p, lines[a..b].join("\n") + "\n").unwrap();
    p
}

/// What a single ingest of `log` into a fresh store gives: the expected census.
fn reference(dir: &Path, logs: &[&Path]) -> BTreeMap<String, (u64, u64, u64)> {
    let t = Target::Local(dir.join(format!("reference-{}", rand_suffix())));
    for l in logs {
        t.ok(&["ingest", l.to_str().unwrap()]);
    }
    t.census()
}

fn version_of(out: &Output) -> u64 {
    let err = stderr(out);
    err.split("table version ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no table version in: {err}"))
}

/// Two ingests of overlapping files at once: the second to commit finds the first's events among
/// its own and drops them; an ingest during a compaction, a compaction during an ingest, and an
/// ingest during retention: every event once.
fn concurrent_writers(t: &Target, dir: &Path) {
    let log = generate(dir, "audit.log", 12_000, 3, 91);
    let a = slice(&log, "a.log", 0.0, 0.7);
    let b = slice(&log, "b.log", 0.3, 1.0);
    let expected = reference(dir, &[&log]);

    // Ingest A is held before its commit; B commits all of its events; A then loses the race
    // for the next version and must not store the 40% they share again.
    let held = t.held(
        &["ingest", a.to_str().unwrap()],
        "ingest-before-commit",
        dir,
    );
    t.ok(&["ingest", b.to_str().unwrap()]);
    let out = held.finish();
    assert!(
        stderr(&out).contains("committed by another writer first"),
        "the race did not happen: {}",
        stderr(&out)
    );
    assert_eq!(t.census(), expected, "two ingests at once");

    // A compaction held before its commit while an ingest of new and old events commits.
    let more = generate(dir, "more.log", 3_000, 3, 92);
    let expected = reference(dir, &[&log, &more]);
    let held = t.held(&["compact"], "rewrite-before-commit", dir);
    t.ok(&["ingest", more.to_str().unwrap(), log.to_str().unwrap()]);
    held.finish();
    assert_eq!(t.census(), expected, "an ingest during a compaction");

    // An ingest held before its commit while a compaction replaces the files it read keys from.
    let third = generate(dir, "third.log", 3_000, 3, 93);
    let expected = reference(dir, &[&log, &more, &third]);
    let held = t.held(
        &["ingest", third.to_str().unwrap(), more.to_str().unwrap()],
        "ingest-before-commit",
        dir,
    );
    t.ok(&["compact"]);
    held.finish();
    assert_eq!(t.census(), expected, "a compaction during an ingest");

    // Retention, held before it deletes the oldest day, while an ingest adds to every day.
    let fourth = generate(dir, "fourth.log", 3_000, 3, 94);
    let expected = reference(dir, &[&log, &more, &third, &fourth]);
    let oldest = expected.keys().next().unwrap().clone();
    let days: Vec<&String> = expected.keys().collect();
    let now = format!("{}T00:00:00Z", next_day(days[days.len() - 1]));
    let held = t.held(
        &["retain", "--max-age", "2d", "--now", &now],
        "retain-before-commit",
        dir,
    );
    t.ok(&["ingest", fourth.to_str().unwrap()]);
    held.finish();
    let after = t.census();
    // The day deleted is the one retention saw; what the ingest added to it meanwhile is newer
    // than the retention's snapshot and stays, counted once.
    let mut expected_rest = expected.clone();
    expected_rest.remove(&oldest);
    for (day, v) in &expected_rest {
        assert_eq!(
            after.get(day),
            Some(v),
            "{day} after retention beside an ingest"
        );
    }
    if let Some(kept) = after.get(&oldest) {
        assert!(kept.0 < expected[&oldest].0, "{oldest} was not deleted");
        assert_eq!(kept.0, kept.1, "{oldest}: a key stored twice");
    }
}

fn next_day(date: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    (d + chrono::Days::new(1)).format("%Y-%m-%d").to_string()
}

#[test]
fn concurrent_writers_store_every_event_once_locally() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers(&Target::Local(dir.path().join("store")), dir.path());
}

#[test]
fn concurrent_writers_store_every_event_once_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers(
        &Target::S3(start_moto(), "s3://auditlake/concurrent".into()),
        dir.path(),
    );
}

/// `sql --as-of` and `report --as-of` read the store as it stood: by version and by time, after
/// a later ingest; a report re-run as of the version it records gives the same evidence.
#[test]
fn as_of_reads_the_past_and_reports_reproduce() {
    let dir = tempfile::tempdir().unwrap();
    let t = Target::Local(dir.path().join("store"));
    let first = generate(dir.path(), "first.log", 3_000, 2, 5);
    let v1 = version_of(&t.ok(&["ingest", first.to_str().unwrap()]));
    let before = t.census();
    let report = |extra: &[&str]| {
        let mut a = vec![
            "report",
            "--format",
            "json",
            "--from",
            "2026-01-01",
            "--to",
            "2027-01-01",
        ];
        a.extend_from_slice(extra);
        serde_json::from_slice::<serde_json::Value>(&t.ok(&a).stdout).unwrap()
    };
    let r1 = report(&[]);
    assert_eq!(r1["table_version"].as_u64(), Some(v1));
    std::thread::sleep(Duration::from_millis(1100));
    let between = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(Duration::from_millis(1100));

    let second = generate(dir.path(), "second.log", 3_000, 2, 6);
    let v2 = version_of(&t.ok(&["ingest", second.to_str().unwrap()]));
    assert!(v2 > v1);
    assert_ne!(t.census(), before, "the second ingest added nothing");
    let v1s = v1.to_string();
    assert_eq!(
        t.census_as_of(&["--as-of", &v1s]),
        before,
        "as of a version"
    );
    assert_eq!(
        t.census_as_of(&["--as-of", &between]),
        before,
        "as of a time"
    );

    // The same report, as of the version the first one recorded: the same evidence rows.
    let again = report(&["--as-of", &v1s]);
    assert_eq!(again["table_version"], r1["table_version"]);
    assert_eq!(
        again["controls"], r1["controls"],
        "evidence differs as of the same version"
    );
    assert_eq!(again["events_in_window"], r1["events_in_window"]);
    assert_ne!(report(&[])["events_in_window"], r1["events_in_window"]);

    // Versions that do not exist, and times before the history: clear errors.
    let out = t
        .command(&["sql", "--as-of", "999", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not committed yet"),
        "{}",
        stderr(&out)
    );
    let out = t
        .command(&[
            "sql",
            "--as-of",
            "2001-01-01",
            "-c",
            "SELECT count(*) FROM audit_events",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("history starts later"),
        "{}",
        stderr(&out)
    );
}

/// The Python that has DuckDB 1.4.4 with its Delta extension (`scripts/test` makes the venv).
fn delta_python() -> (PathBuf, PathBuf) {
    let python = std::env::var_os("AUDITLAKE_DELTA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/auditlake-duckdb-delta/bin/python")
        });
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which makes a venv with duckdb==1.4.4 and duckdb-ext-delta",
        python.display()
    );
    let ext = std::process::Command::new(&python)
        .args([
            "-c",
            "import duckdb_ext, pathlib; p = pathlib.Path(list(duckdb_ext.__path__)[0]); \
             print(next(p.rglob('delta.duckdb_extension')))",
        ])
        .output()
        .unwrap();
    assert!(ext.status.success(), "{}", stderr(&ext));
    (
        python,
        PathBuf::from(String::from_utf8_lossy(&ext.stdout).trim()),
    )
}

fn delta_scan_count(store: &Path) -> u64 {
    let (python, ext) = delta_python();
    let script = format!(
        "import duckdb\ncon = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})\n\
         con.execute(\"LOAD '{}'\")\n\
         print(con.execute(\"SELECT count(*), count(DISTINCT audit_id || '/' || stage) FROM delta_scan('{}')\").fetchall()[0][0])",
        ext.display(),
        store.display()
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "delta_scan: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// DuckDB's `delta_scan` (an independent Delta reader) counts what auditlake counts after an
/// ingest, a compaction, slimming and retention; plain-Parquet readers do too once vacuum has
/// deleted the removed files.
#[test]
fn duckdb_delta_scan_counts_what_auditlake_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let t = Target::Local(store.clone());
    let total = |t: &Target| -> u64 {
        t.rows(&[], "SELECT count(*) AS n FROM audit_events")[0]["n"]
            .as_u64()
            .unwrap()
    };
    for seed in [1, 2, 3] {
        let log = generate(dir.path(), &format!("l{seed}.log"), 3_000, 4, seed);
        t.ok(&["ingest", log.to_str().unwrap()]);
    }
    assert_eq!(delta_scan_count(&store), total(&t), "after ingest");
    t.ok(&["compact"]);
    assert_eq!(delta_scan_count(&store), total(&t), "after compaction");
    let days: Vec<String> = t.census().keys().cloned().collect();
    let now = format!("{}T00:00:00Z", next_day(&days[days.len() - 1]));
    t.ok(&["retain", "--slim-after", "2d", "--now", &now]);
    assert_eq!(delta_scan_count(&store), total(&t), "after slimming");
    t.ok(&["retain", "--max-age", "3d", "--now", &now]);
    let n = total(&t);
    assert_eq!(delta_scan_count(&store), n, "after retention");
    assert!(n > 0 && t.census().len() == 3, "{:?}", t.census());

    // Files removed by those commits are still on disk (grace period): a plain-Parquet glob
    // would count them. Vacuum with no grace deletes them; then the glob agrees as well.
    let out = t.ok(&["vacuum", "--grace", "0s"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deleted"),
        "{}",
        stderr(&out)
    );
    let script = format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT count(*) FROM read_parquet('{}/date=*/*.parquet', hive_partitioning = true)\").fetchall()[0][0])",
        store.display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), n.to_string());
    assert_eq!(delta_scan_count(&store), n, "after vacuum");
}

/// A store written before the log (data files in `date=…/` folders, no `_delta_log`) is read
/// from its folders, becomes a table with `migrate` (counts and keys checked), and on its first
/// write otherwise.
#[test]
fn a_store_without_a_log_becomes_a_table() {
    let dir = tempfile::tempdir().unwrap();
    for explicit in [true, false] {
        let store = dir.path().join(format!("store-{explicit}"));
        let t = Target::Local(store.clone());
        let log = generate(dir.path(), "old.log", 4_000, 3, 11);
        t.ok(&["ingest", log.to_str().unwrap()]);
        let before = t.census();
        // The layout before the log: the same files, no log.
        std::fs::remove_dir_all(store.join("_delta_log")).unwrap();
        assert_eq!(t.census(), before, "read from the folders");
        let out = t
            .command(&["sql", "--as-of", "0", "-c", "SELECT 1"])
            .output()
            .unwrap();
        assert!(
            stderr(&out).contains("no transaction log yet"),
            "{}",
            stderr(&out)
        );
        if explicit {
            let out = t.ok(&["migrate"]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("migrated: 3 files, 4000 events"), "{text}");
            assert!(store.join("_delta_log").is_dir());
        } else {
            // The first write migrates: the same events are duplicates of what it takes in.
            let out = t.ok(&["ingest", log.to_str().unwrap()]);
            assert_eq!(summary(&out)["stored"], 0, "{}", stderr(&out));
        }
        assert_eq!(t.census(), before);
        assert_eq!(delta_scan_count(&store), 4000);
        let again = t.ok(&["migrate"]);
        assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    }
}

/// Compaction drops exact copies of an event that a store somehow holds (here: a file copied
/// into its day's folder of a store without a log, then migrated), and keeps events that only
/// share an audit ID and stage.
#[test]
fn compaction_drops_exact_copies_left_in_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let t = Target::Local(store.clone());
    let log = generate(dir.path(), "one.log", 3_000, 1, 21);
    t.ok(&["ingest", log.to_str().unwrap()]);
    let before = t.census();
    std::fs::remove_dir_all(store.join("_delta_log")).unwrap();
    let day = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("date=")
        })
        .unwrap();
    let file = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&file, day.join("part-copy-00001.parquet")).unwrap();
    t.ok(&["migrate"]);
    let doubled = t.census();
    let date = day.file_name().unwrap().to_string_lossy()["date=".len()..].to_owned();
    let (n, keys, _) = doubled[&date];
    assert_eq!(n, 2 * keys, "the copy is in the table: {doubled:?}");
    assert_eq!(keys, before[&date].0);
    let out = t.ok(&["compact"]);
    assert!(
        stderr(&out).contains(&format!("dropped {keys} exact copies")),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.census(), before);
}
