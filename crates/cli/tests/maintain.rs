//! Compaction and retention as a store lives them: several ingests, compactions killed at each
//! step of the commit protocol, retention; against a local folder and against S3 (moto).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;
use crate::s3::{Moto, start_moto};

enum Target {
    Local(PathBuf),
    S3(Moto),
}

impl Target {
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = bin();
        c.envs(env.iter().copied());
        match self {
            Self::Local(store) => {
                c.arg("--store").arg(store);
            }
            Self::S3(moto) => {
                moto.configure(&mut c);
                c.args(["--store", "s3://auditlake/maintained"]);
            }
        }
        c.args(args).output().expect("run auditlake")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args, &[]);
        assert!(
            out.status.success(),
            "auditlake {args:?} failed: {}",
            stderr(&out)
        );
        out
    }

    /// Runs `compact` with a failpoint that aborts the process, as a kill would.
    fn killed_compact(&self, failpoint: &str) {
        let out = self.run(&["compact"], &[("AUDITLAKE_FAILPOINT", failpoint)]);
        assert!(
            !out.status.success(),
            "compact was not killed at {failpoint}"
        );
        assert!(
            stderr(&out).contains(&format!("failpoint {failpoint}")),
            "{}",
            stderr(&out)
        );
    }

    fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        json_lines(&String::from_utf8_lossy(
            &self.ok(&["sql", "--format", "ndjson", "-c", sql]).stdout,
        ))
    }

    /// What readers must agree on, whatever the files: events, distinct (audit_id, stage),
    /// events with a body, per day.
    fn census(&self) -> BTreeMap<String, (u64, u64, u64)> {
        census_of(self.rows(CENSUS_SQL))
    }

    /// Data files per day, from `stats`.
    fn files_per_day(&self) -> BTreeMap<String, u64> {
        let out = self.ok(&["stats", "--format", "ndjson"]);
        json_lines(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .map(|r| {
                (
                    r["date"].as_str().unwrap().to_owned(),
                    r["files"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

/// Deals the lines of a log into `n` parts, each spanning every day: `n` ingests that each add
/// a file to every day.
fn split(log: &Path, n: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut parts = vec![String::new(); n];
    for (i, line) in text.lines().enumerate() {
        parts[i % n].push_str(line);
        parts[i % n].push('\n');
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let p = log.with_extension(format!("part{i}"));
            std::fs::write(&p, part).unwrap();
            p
        })
        .collect()
}

fn lifecycle(t: &Target, dir: &Path) {
    let log = generate(dir, "audit.log", 24_000, 4, 77);
    let parts = split(&log, 4);
    for p in &parts[..3] {
        t.ok(&["ingest", p.to_str().unwrap()]);
    }
    let before = t.census();
    let days: Vec<String> = before.keys().cloned().collect();
    assert_eq!(days.len(), 4, "{before:?}");
    let files = t.files_per_day();
    assert!(files.values().all(|&n| n == 3), "{files:?}");

    // Killed before its first commit: outputs written that no commit adds; nothing changed.
    t.killed_compact("before-commit");
    assert_eq!(t.census(), before);
    assert_eq!(t.files_per_day(), files);

    // Killed right after its first commit: that day is compacted, the others untouched, and
    // readers count every event once.
    t.killed_compact("after-commit");
    assert_eq!(
        t.census(),
        before,
        "a reader saw the killed compaction's day twice or not at all"
    );
    let after_kill = t.files_per_day();
    assert_eq!(
        after_kill.values().filter(|&&n| n == 1).count(),
        1,
        "{after_kill:?}"
    );

    // The next run does the rest.
    t.ok(&["compact"]);
    assert_eq!(t.census(), before);
    assert!(
        t.files_per_day().values().all(|&n| n == 1),
        "{:?}",
        t.files_per_day()
    );
    // Nothing left to do: a second run changes nothing.
    let again = String::from_utf8_lossy(&t.ok(&["compact"]).stdout).into_owned();
    assert!(again.contains("compacted 0 days"), "{again}");

    // A later ingest adds small files next to the compacted ones; a compaction killed before its
    // commit leaves readers counting each event once, and the next one merges them.
    t.ok(&["ingest", parts[3].to_str().unwrap()]);
    let grown = t.census();
    assert!(grown.values().map(|v| v.0).sum::<u64>() > before.values().map(|v| v.0).sum::<u64>());
    t.killed_compact("before-commit");
    assert_eq!(t.census(), grown);
    t.ok(&["compact"]);
    assert_eq!(t.census(), grown);
    assert!(t.files_per_day().values().all(|&n| n == 1));

    // Retention refuses to guess.
    let out = t.run(&["retain"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no retention policy"),
        "{}",
        stderr(&out)
    );

    // Slim the two oldest days: bodies gone, every event still there.
    let now = "2026-03-20T00:00:00Z";
    t.ok(&["retain", "--slim-after", "2d", "--now", now]);
    let slimmed = t.census();
    for (i, day) in days.iter().enumerate() {
        let (n, keys, bodies) = slimmed[day];
        assert_eq!((n, keys), (grown[day].0, grown[day].1), "{day}");
        if i < 2 {
            assert_eq!(bodies, 0, "{day} still has bodies");
        } else {
            assert_eq!(bodies, grown[day].2, "{day} lost bodies");
        }
    }
    assert!(
        grown[&days[0]].2 > 0,
        "the generated data has bodies to drop"
    );
    let flagged = t.rows(&format!(
        "SELECT count(*) AS n FROM audit_events WHERE shape_flags & 8 = 8 AND date = '{}'",
        days[0]
    ));
    assert_eq!(flagged[0]["n"].as_u64(), Some(grown[&days[0]].0));

    // Delete the oldest day.
    let out = t.ok(&["retain", "--max-age", "3d", "--now", now, "--dry-run"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("would delete 1 days"));
    assert_eq!(t.census(), slimmed);
    t.ok(&["retain", "--max-age", "3d", "--now", now]);
    let mut expected = slimmed.clone();
    expected.remove(&days[0]);
    assert_eq!(t.census(), expected);
}

#[test]
fn compaction_and_retention_on_a_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let t = Target::Local(dir.path().join("store"));
    lifecycle(&t, dir.path());
    // DuckDB, reading the files directly, counts the same once vacuum has deleted what the
    // commits removed (and the outputs of the killed runs).
    t.ok(&["vacuum", "--grace", "0s"]);
    if let Target::Local(store) = &t {
        let glob = store.join("date=*/*.parquet");
        let script = format!(
            "import duckdb\nprint(duckdb.sql(\"SELECT count(*) FROM read_parquet('{}', hive_partitioning = true)\").fetchall()[0][0])",
            glob.display()
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let duck: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(duck, count(store, "SELECT count(*) FROM audit_events"));
    }
}

#[test]
fn compaction_and_retention_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(&Target::S3(start_moto()), dir.path());
}
