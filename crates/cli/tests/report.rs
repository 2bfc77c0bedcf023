//! `auditlake report` over the planted compliance scenario: every format, the JSON against the
//! views themselves, and the HTML as a browser renders it (headless Chromium).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

const FROM: &str = "2026-05-01";
const TO: &str = "2026-05-11";

/// A store with the compliance scenario, and a config file with the scope of the slt tests.
pub fn scenario() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = testdata("scenarios/compliance.jsonl");
    ok(
        &store,
        &["ingest", "--cluster", "fixtures", file.to_str().unwrap()],
    );
    let config = scope_config(dir.path());
    (dir, store, config)
}

/// A config file in `dir` with the scope of the slt tests (and a retention that keeps the
/// scenario's days).
pub fn scope_config(dir: &Path) -> PathBuf {
    let scope = std::fs::read_to_string(testdata("scope.toml")).unwrap();
    let config = dir.join("auditlake.toml");
    std::fs::write(
        &config,
        format!(
            "[retention]\nmax_age = \"400d\"\n\n[scope]\n{}",
            scope.replace("[business_hours]", "[scope.business_hours]")
        ),
    )
    .unwrap();
    config
}

fn report(store: &Path, config: Option<&Path>, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["report", "--from", FROM, "--to", TO];
    args.extend_from_slice(extra);
    let mut c = bin();
    c.arg("--store").arg(store);
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    c.args(&args).output().unwrap()
}

#[test]
fn the_json_report_shows_what_each_control_view_finds() {
    let (_dir, store, config) = scenario();
    let out = report(
        &store,
        Some(&config),
        &["--format", "json", "--max-evidence", "5"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let controls = r["controls"].as_array().unwrap();
    let n_controls = count(&store, "SELECT count(*) FROM compliance_controls");
    assert_eq!(controls.len() as u64, n_controls);
    assert_eq!(r["window_from"], "2026-05-01T00:00:00.000000Z");
    // Days of the window without events stand out: those the store has no event for.
    let missing: Vec<&str> = r["days_without_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let have: Vec<String> = sql_ndjson(
        &store,
        &format!("SELECT DISTINCT date FROM audit_events WHERE ts >= '{FROM}' AND ts < '{TO}'"),
    )
    .into_iter()
    .map(|r| r["date"].as_str().unwrap().to_owned())
    .collect();
    let expected: Vec<String> = (1..=10)
        .map(|d| format!("2026-05-{d:02}"))
        .filter(|d| !have.contains(d))
        .collect();
    assert_eq!(missing, expected);
    assert!(missing.contains(&"2026-05-01") && missing.len() < 10);

    // Each control's evidence is the first rows of its view in the window, by time.
    let mut script = String::new();
    for c in controls {
        let view = c["view"].as_str().unwrap();
        script.push_str(&format!(
            "SELECT '{view}' AS v, audit_id, (SELECT count(*) FROM {view} WHERE ts >= '{FROM}' AND ts < '{TO}') AS total \
             FROM {view} WHERE ts >= '{FROM}' AND ts < '{TO}' ORDER BY ts, audit_id LIMIT 5;\n"
        ));
    }
    let script_path = store.with_file_name("evidence.sql");
    std::fs::write(&script_path, script).unwrap();
    let mut c = bin();
    c.arg("--store").arg(&store).arg("--config").arg(&config);
    let out = c
        .args([
            "sql",
            "--format",
            "ndjson",
            "-f",
            script_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json_lines(&String::from_utf8_lossy(&out.stdout));
    let mut statuses = std::collections::BTreeMap::new();
    for c in controls {
        let view = c["view"].as_str().unwrap();
        let expected: Vec<&Value> = rows.iter().filter(|r| r["v"] == view).collect();
        let shown: Vec<&Value> = c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["audit_id"])
            .collect();
        let want: Vec<&Value> = expected.iter().map(|r| &r["audit_id"]).collect();
        assert_eq!(shown, want, "{view}");
        let total = expected.first().map_or(0, |r| r["total"].as_u64().unwrap());
        assert_eq!(c["rows"].as_u64(), Some(total), "{view}");
        let status = c["status"].as_str().unwrap();
        match c["kind"].as_str().unwrap() {
            "finding" => assert_eq!(status == "findings", total > 0, "{view}: {status}"),
            // The window has days without events: no evidence can exist for them.
            "evidence" => {
                assert_eq!(status, "gap", "{view}");
                assert!(
                    c["gaps"][0].as_str().unwrap().contains("2026-05-01"),
                    "{view}: {}",
                    c["gaps"]
                );
                assert!(total > 0, "{view}: the scenario plants its evidence");
            }
            k => panic!("{view}: kind {k}"),
        }
        *statuses.entry(status.to_owned()).or_insert(0) += 1;
    }
    // The scenario plants events for every control and the scope names the regulated namespaces.
    assert!(
        statuses.get("findings").copied().unwrap_or(0) >= 30,
        "{statuses:?}"
    );
    assert_eq!(statuses.get("gap"), Some(&11), "{statuses:?}");
    assert_eq!(statuses.get("not_evaluable"), None, "{statuses:?}");
    // The summary counts findings to answer, not evidence rows.
    let finding_rows: u64 = controls
        .iter()
        .filter(|c| c["status"] == "findings")
        .map(|c| c["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(
        r["totals"]["findings_to_answer"].as_u64(),
        Some(finding_rows)
    );
    assert_eq!(r["summary"].as_array().unwrap().len(), 5);
    let privileged = controls
        .iter()
        .find(|c| c["view"] == "det_privileged_pod")
        .unwrap();
    assert!(
        privileged["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["audit_id"] == "privileged-deployment-by-person"),
        "{privileged}"
    );
}

#[test]
fn without_a_scope_the_cardholder_controls_are_not_evaluable() {
    let (_dir, store, _config) = scenario();
    let out = report(
        &store,
        None,
        &["--framework", "pci-dss", "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control_id"] == "10.2.1.1")
        .unwrap();
    assert_eq!(c["status"], "not_evaluable");
    assert!(
        c["not_evaluable"]
            .as_str()
            .unwrap()
            .contains("cde_namespaces"),
        "{c}"
    );
    assert!(
        r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["framework"] == "pci-dss")
    );

    // An empty window has nothing to evaluate; a bad framework is named.
    let out = report(&store, None, &["--framework", "iso27001"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown framework \"iso27001\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn markdown_csv_and_the_findings_exit_code() {
    let (_dir, store, config) = scenario();
    let out = report(
        &store,
        Some(&config),
        &["--framework", "cis", "--format", "md"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.starts_with("# Compliance report: CIS Kubernetes Benchmark"),
        "{md}"
    );
    assert!(md.contains("| CIS Kubernetes Benchmark | 5.1.3 |"), "{md}");
    assert!(
        md.contains("**Days without any audit event: 2026-05-01"),
        "{md}"
    );

    let out = report(
        &store,
        Some(&config),
        &["--framework", "soc2", "--format", "csv"],
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("framework,control_id,title,kind,severity,status,rows,ts,audit_id")
    );
    assert!(lines.all(|l| l.starts_with("soc2,")), "{csv}");

    let out = report(
        &store,
        Some(&config),
        &["--framework", "detections", "--fail-on-findings"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

/// The HTML report as Chromium renders it: the DOM after load, and a screenshot kept in
/// target/ for a person to look at.
#[test]
fn the_html_report_renders_in_a_browser() {
    let (dir, store, config) = scenario();
    let html = dir.path().join("report.html");
    let out = report(
        &store,
        Some(&config),
        &["--format", "html", "--out", html.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("<script"), "self-contained and static");
    for external in ["<link", "<img", "src=", "@import", "url(", "href=\"http"] {
        assert!(
            !page.contains(external),
            "no external resources: {external}"
        );
    }

    let url = format!("file://{}", html.display());
    let chromium = |args: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(args)
            .arg(&url)
            .output()
            .expect("chromium is needed for this test: ./scripts/test installs Debian's chromium")
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(dom.status.success(), "{}", stderr(&dom));
    let dom = String::from_utf8_lossy(&dom.stdout);
    let n_controls = count(&store, "SELECT count(*) FROM compliance_controls") as usize;
    assert_eq!(dom.matches("<tr data-view=").count(), n_controls);
    assert_eq!(dom.matches("<svg").count(), 2, "two charts");
    assert!(dom.contains("id=\"missing-days\""));
    assert!(
        dom.contains("<title>2026-05-04: "),
        "a bar per day with its count"
    );
    assert!(dom.contains("privileged-deployment-by-person"));

    assert!(dom.contains("id=\"summary\""), "the per-framework summary");
    for card in ["met", "gaps", "not-evaluable", "findings-to-answer"] {
        assert!(dom.contains(&format!("id=\"{card}\"")), "{card}");
    }

    // The summary fits the first screen of a laptop (1280x800): measured in the page as Chromium
    // lays it out, by a probe page that frames the report.
    let probe = dir.path().join("probe.html");
    std::fs::write(
        &probe,
        "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"f\" src=\"report.html\" \
         style=\"width:1280px;height:800px;border:0\"></iframe><pre id=\"out\"></pre><script>\
         document.getElementById('f').onload=function(){var d=this.contentDocument;\
         var s=d.getElementById('summary').getBoundingClientRect();\
         var t=d.getElementById('totals').getBoundingClientRect();\
         document.getElementById('out').textContent='layout '+Math.round(t.top)+' '+Math.round(s.bottom)+' end';};\
         </script></body></html>",
    )
    .unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .output()
        .unwrap();
    let probed = String::from_utf8_lossy(&out.stdout);
    let layout = probed
        .split("layout ")
        .nth(1)
        .and_then(|s| s.split(" end").next())
        .unwrap_or_else(|| panic!("the probe measured nothing: {probed}"));
    let [top, bottom]: [i64; 2] = layout
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    assert!(top > 0 && top < bottom, "{layout}");
    assert!(
        bottom <= 800,
        "the summary ends at {bottom}px, below the first screen"
    );

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let out = chromium(&[
        "--window-size=1280,2200",
        &format!("--screenshot={}", shot.display()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

/// `auditlake schedule --run-now` runs the config's schedules once and writes each report where
/// its `out` says; a bad schedule is refused before anything runs.
#[test]
fn scheduled_reports_are_written_to_their_folder() {
    let (dir, store, config) = scenario();
    let out_dir = dir.path().join("reports");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[schedule]]\nname = \"yearly-cis\"\ncron = \"0 6 1 1 *\"\nframework = \"cis\"\nwindow = \"1000d\"\nformat = \"json\"\nout = \"{}\"\n",
        out_dir.display()
    ));
    std::fs::write(&config, &text).unwrap();
    let mut c = bin();
    c.arg("--store").arg(&store).arg("--config").arg(&config);
    let out = c.args(["schedule", "--run-now"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("yearly-cis-") && name.ends_with("Z.json"),
        "{name}"
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(r["frameworks"], serde_json::json!(["cis"]));
    assert!(
        r["totals"]["findings"].as_u64().unwrap() > 0,
        "{}",
        r["totals"]
    );

    std::fs::write(
        &config,
        text.replace("cron = \"0 6 1 1 *\"", "cron = \"0 25 * * *\""),
    )
    .unwrap();
    let mut c = bin();
    c.arg("--store").arg(&store).arg("--config").arg(&config);
    let out = c.args(["schedule", "--run-now"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid cron expression"),
        "{}",
        stderr(&out)
    );
}

/// Machine-readable reports carry the evidence, not a sample: every row of every control's view
/// in the window, unless --max-evidence asks for fewer; CSV cells a spreadsheet would run as a
/// formula are neutralised.
#[test]
fn json_and_csv_carry_every_evidence_row_and_csv_cells_are_not_formulas() {
    let (dir, store, _log) = generated_store(20_000, 30, 12);
    let (from, to) = ("2026-02-18", "2026-03-20");
    let args = |format: &str| -> Vec<String> {
        ["report", "--from", from, "--to", to, "--format", format]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let run_report = |extra: &[&str], format: &str| {
        let mut a = args(format);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(&store, &a)
    };
    let r: Value = serde_json::from_slice(&run_report(&[], "json").stdout).unwrap();
    let mut big = 0;
    for c in r["controls"].as_array().unwrap() {
        let view = c["view"].as_str().unwrap();
        let n = count(
            &store,
            &format!("SELECT count(*) FROM {view} WHERE ts >= '{from}' AND ts < '{to}'"),
        );
        if c["status"] == "not_evaluable" {
            continue;
        }
        assert_eq!(c["rows"].as_u64(), Some(n), "{view}");
        assert_eq!(
            c["evidence"].as_array().map_or(0, Vec::len) as u64,
            n,
            "{view}: every evidence row"
        );
        if n > 25 {
            big += 1;
        }
    }
    assert!(big > 0, "some control has more than a page of evidence");
    // NDJSON streams the same rows after the report and its controls.
    let lines = json_lines(&String::from_utf8_lossy(&run_report(&[], "ndjson").stdout));
    assert_eq!(lines[0]["record"], "report");
    assert!(lines[0].get("controls").is_none());
    let controls = r["controls"].as_array().unwrap();
    assert_eq!(
        lines.iter().filter(|l| l["record"] == "control").count(),
        controls.len()
    );
    for c in controls {
        let streamed = lines
            .iter()
            .filter(|l| l["record"] == "evidence" && l["view"] == c["view"])
            .count();
        let rows = if c["status"] == "not_evaluable" {
            0
        } else {
            c["rows"].as_u64().unwrap()
        };
        assert_eq!(streamed as u64, rows, "{}", c["view"]);
    }
    // --max-evidence still caps, and the default of md says how to get the rest.
    let capped: Value =
        serde_json::from_slice(&run_report(&["--max-evidence", "3"], "json").stdout).unwrap();
    assert!(
        capped["controls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["evidence"].as_array().map_or(0, Vec::len) <= 3)
    );
    let md = String::from_utf8_lossy(&run_report(&[], "md").stdout).into_owned();
    assert!(
        md.contains("every row: `--format json`"),
        "{}",
        &md[..2000.min(md.len())]
    );

    // A client's text that a spreadsheet would run: an exec by a user named like a formula.
    let evil = dir.path().join("evil.log");
    std::fs::write(
        &evil,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"e1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web/exec?command=sh","verb":"create","user":{"username":"=HYPERLINK(\"http://203.0.113.9/x\",\"ok\")","groups":["system:authenticated"]},"sourceIPs":["203.0.113.9"],"objectRef":{"resource":"pods","namespace":"default","name":"web","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"2026-03-19T12:00:00.000000Z","stageTimestamp":"2026-03-19T12:00:01.000000Z"}"#.to_owned() + "\n",
    )
    .unwrap();
    ok(&store, &["ingest", evil.to_str().unwrap()]);
    let csv = String::from_utf8_lossy(&run_report(&[], "csv").stdout).into_owned();
    let line = csv
        .lines()
        .find(|l| l.contains(",e1,"))
        .expect("the exec is evidence");
    assert!(line.contains("'=HYPERLINK"), "{line}");
    for cell in line.split(',') {
        let cell = cell.trim_start_matches('"');
        assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell} in {line}");
    }
}

/// The control of a JSON report whose view is `view`.
pub fn control<'a>(r: &'a Value, view: &str) -> &'a Value {
    r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["view"] == view)
        .unwrap_or_else(|| panic!("no control {view}"))
}

/// The compliance scenario on three consecutive days (2026-05-04 to 06), each day a copy of the
/// scenario's Monday with its own audit IDs; `keep` picks the days, `edit` changes each event.
fn scenario_days(keep: &[u32], edit: &dyn Fn(&mut Value)) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, _, config) = scenario();
    let store = dir.path().join("days");
    let text = std::fs::read_to_string(testdata("scenarios/compliance.jsonl")).unwrap();
    let mut out = String::new();
    for day in keep {
        for line in text.lines().filter(|l| l.contains("2026-05-04T")) {
            let shifted = line.replace("2026-05-04T", &format!("2026-05-{:02}T", 4 + day));
            let mut e: Value = serde_json::from_str(&shifted).unwrap();
            let id = format!("{}-d{day}", e["auditID"].as_str().unwrap());
            e["auditID"] = Value::String(id);
            edit(&mut e);
            out.push_str(&e.to_string());
            out.push('\n');
        }
    }
    let file = dir.path().join("days.jsonl");
    std::fs::write(&file, out).unwrap();
    ok(
        &store,
        &["ingest", "--cluster", "fixtures", file.to_str().unwrap()],
    );
    (dir, store, config)
}

/// `auditlake report --format json` of `[from, to)` over a store, with a config file and extra
/// arguments; it must succeed.
fn run_report_json(
    store: &Path,
    config: &Path,
    from: &str,
    to: &str,
    extra: &[&str],
) -> std::process::Output {
    let out = bin()
        .arg("--store")
        .arg(store)
        .arg("--config")
        .arg(config)
        .args(["report", "--from", from, "--to", to, "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// The JSON report of `[from, to)` over a store, with a config file.
pub fn report_json(store: &Path, config: &Path, from: &str, to: &str) -> Value {
    let out = run_report_json(store, config, from, to, &[]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn statuses(store: &Path, config: &Path) -> (Value, BTreeMap<String, (String, String)>) {
    let r = report_json(store, config, "2026-05-04", "2026-05-07");
    let by_view = r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["view"].as_str().unwrap().to_owned(),
                (
                    c["kind"].as_str().unwrap().to_owned(),
                    c["status"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    (r, by_view)
}

/// Evidence controls are `evidenced` on complete data, and a `gap` when a day of the window has
/// no events or when their events lack a detail 10.2.2 requires; finding controls keep their
/// status when a day is missing.
#[test]
fn evidence_is_evidenced_on_complete_data_and_a_gap_when_a_day_or_a_field_is_missing() {
    let (_dir, store, config) = scenario_days(&[0, 1, 2], &|_| {});
    let (r, complete) = statuses(&store, &config);
    let evidence: Vec<&String> = complete
        .iter()
        .filter(|(_, (k, _))| k == "evidence")
        .map(|(v, _)| v)
        .collect();
    assert_eq!(evidence.len(), 11, "{complete:?}");
    for v in &evidence {
        assert_eq!(complete[*v].1, "evidenced", "{v}");
    }
    let admin = control(&r, "pci_10_2_1_2_admin_actions");
    assert_eq!(admin["per_day"].as_array().unwrap().len(), 3, "{admin}");
    assert!(
        !admin["summary"]["per_identity"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let sample = admin["sample"].as_array().unwrap();
    assert!(!sample.is_empty() && sample.len() as u64 <= admin["rows"].as_u64().unwrap());
    // The sample is reproducible: the same window draws the same rows.
    let (again, _) = statuses(&store, &config);
    let again = control(&again, "pci_10_2_1_2_admin_actions")["sample"].clone();
    assert_eq!(admin["sample"], again);
    assert_eq!(r["totals"]["gaps"], 0);

    // The middle day removed: every evidence control has a gap that names it.
    let (_dir2, store2, _) = scenario_days(&[0, 2], &|_| {});
    let (r2, holed) = statuses(&store2, &config);
    for v in &evidence {
        assert_eq!(holed[*v].1, "gap", "{v}");
        let c = control(&r2, v);
        assert!(
            c["gaps"].to_string().contains("2026-05-05"),
            "{v}: {}",
            c["gaps"]
        );
    }
    for (v, (kind, status)) in &complete {
        if kind == "finding" {
            assert_eq!(&holed[v].1, status, "{v}: finding controls unchanged");
        }
    }

    // Events without source IPs: the evidence is incomplete (10.2.2), and says so.
    let (_dir3, store3, _) = scenario_days(&[0, 1, 2], &|e| {
        e.as_object_mut().unwrap().remove("sourceIPs");
    });
    let (r3, stripped) = statuses(&store3, &config);
    for v in &evidence {
        assert_eq!(stripped[*v].1, "gap", "{v}");
        let c = control(&r3, v);
        assert!(
            c["gaps"].to_string().contains("origination (source IP)"),
            "{v}: {}",
            c["gaps"]
        );
    }
    assert_eq!(stripped["pci_10_2_2_missing_fields"].1, "findings");
}

/// An exec session whose ResponseComplete is not recorded (still open, or lost) is a request of
/// `audit_requests` at the most complete stage recorded, once, and the exec controls find it.
#[test]
fn an_exec_session_still_open_is_found_by_the_exec_controls() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let event = |id: &str, user: &str, stage: &str, code: Option<u16>| {
        let status = code.map_or(String::new(), |c| {
            format!(r#","responseStatus":{{"metadata":{{}},"code":{c}}}"#)
        });
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"{stage}","requestURI":"/api/v1/namespaces/shop/pods/web-0/exec?command=sh&stdin=true","verb":"create","user":{{"username":"{user}","groups":["system:authenticated"]}},"sourceIPs":["198.51.100.7"],"objectRef":{{"resource":"pods","namespace":"shop","name":"web-0","apiVersion":"v1","subresource":"exec"}}{status},"requestReceivedTimestamp":"2026-05-04T10:00:00.000000Z","stageTimestamp":"2026-05-04T10:00:01.000000Z"}}"#
        )
    };
    let lines = [
        // Open: only its ResponseStarted (101, switching protocols).
        event("open-exec", "alice", "ResponseStarted", Some(101)),
        // Completed: three stages, one request.
        event("done-exec", "bob", "RequestReceived", None),
        event("done-exec", "bob", "ResponseStarted", Some(101)),
        event("done-exec", "bob", "ResponseComplete", Some(101)),
        // Received only: the apiserver stopped before it answered.
        event("received-exec", "carol", "RequestReceived", None),
    ];
    let file = dir.path().join("exec.log");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    ok(&store, &["ingest", file.to_str().unwrap()]);
    let rows = sql_ndjson(
        &store,
        "SELECT audit_id, stage, outcome_recorded FROM audit_requests ORDER BY audit_id",
    );
    let got: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["audit_id"].as_str().unwrap().to_owned(),
                r["stage"].as_str().unwrap().to_owned(),
                r["outcome_recorded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("done-exec".into(), "ResponseComplete".into(), true),
            ("open-exec".into(), "ResponseStarted".into(), false),
            ("received-exec".into(), "RequestReceived".into(), false),
        ]
    );
    for view in ["det_exec_attach", "soc2_cc6_6_remote_and_privileged_access"] {
        let found = sql_ndjson(
            &store,
            &format!("SELECT audit_id, reason FROM {view} ORDER BY audit_id"),
        );
        let ids: Vec<&str> = found
            .iter()
            .map(|r| r["audit_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["done-exec", "open-exec", "received-exec"], "{view}");
        assert!(
            found[1]["reason"].as_str().unwrap().contains("still open"),
            "{view}: {}",
            found[1]
        );
    }
    // Its end arrives: the same request, now complete, once.
    let end = dir.path().join("end.log");
    std::fs::write(
        &end,
        event("open-exec", "alice", "ResponseComplete", Some(101)) + "\n",
    )
    .unwrap();
    ok(&store, &["ingest", end.to_str().unwrap()]);
    let rows = sql_ndjson(
        &store,
        "SELECT stage FROM audit_requests WHERE audit_id = 'open-exec'",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["stage"], "ResponseComplete");
}

/// A report keeps a closed day's evidence of an open session (its open requests are found among
/// the day's events as the day is evaluated, not kept apart); when the end of the session
/// arrives, the day is computed again and the session is reported complete.
#[test]
fn kept_open_requests_follow_a_late_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let config = scope_config(dir.path());
    let event = |stage: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"long-exec","stage":"{stage}","requestURI":"/api/v1/namespaces/shop/pods/web-0/exec?command=sh","verb":"create","user":{{"username":"alice","groups":["system:authenticated"]}},"sourceIPs":["198.51.100.7"],"objectRef":{{"resource":"pods","namespace":"shop","name":"web-0","apiVersion":"v1","subresource":"exec"}},"responseStatus":{{"metadata":{{}},"code":101}},"requestReceivedTimestamp":"2026-05-04T10:00:00.000000Z","stageTimestamp":"2026-05-04T10:00:01.000000Z"}}"#
        ) + "\n"
    };
    let file = dir.path().join("a.log");
    std::fs::write(&file, event("ResponseStarted")).unwrap();
    ok(&store, &["ingest", file.to_str().unwrap()]);
    let (from, to) = ("2026-05-04", "2026-05-05");
    let reason = |r: &Value| control(r, "det_exec_attach")["evidence"][0]["reason"].clone();
    let (open, _) = report_kept(&store, &config, from, to, &[]);
    assert!(
        reason(&open).to_string().contains("still open"),
        "{}",
        reason(&open)
    );
    assert_kept(&store, "2026-05-04", "det_exec_attach-");
    let (again, [read, computed, ..]) = report_kept(&store, &config, from, to, &[]);
    assert_eq!((computed, again.clone()), (0, open.clone()), "{read}");

    std::fs::write(&file, event("ResponseComplete")).unwrap();
    ok(&store, &["ingest", file.to_str().unwrap()]);
    let (done, [_, computed, ..]) = report_kept(&store, &config, from, to, &[]);
    assert!(computed > 0);
    assert!(
        !reason(&done).to_string().contains("still open"),
        "{}",
        reason(&done)
    );
    let (full, _) = report_kept(&store, &config, from, to, &["--recompute"]);
    same(&done, &full, "after the session's end");
}

/// The failures a report keeps per closed day (`failed_access`) follow a late event: nine
/// refusals around midnight are no burst; a tenth, late into the first (closed) day, makes one
/// that spans both days, and the kept day is computed again.
#[test]
fn a_late_failure_completes_a_burst_across_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let config = scope_config(dir.path());
    let refused = |id: &str, at: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/secrets","verb":"list","user":{{"username":"mallory","groups":["system:authenticated"]}},"sourceIPs":["203.0.113.9"],"objectRef":{{"resource":"secrets","namespace":"shop","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":403}},"requestReceivedTimestamp":"{at}","stageTimestamp":"{at}","annotations":{{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}}}"#
        ) + "\n"
    };
    let mut nine = String::new();
    for i in 0..5 {
        nine += &refused(
            &format!("f{i}"),
            &format!("2026-05-04T23:58:{:02}.000000Z", i * 10),
        );
    }
    for i in 5..9 {
        nine += &refused(
            &format!("f{i}"),
            &format!("2026-05-05T00:01:{:02}.000000Z", i * 5),
        );
    }
    let file = dir.path().join("nine.log");
    std::fs::write(&file, nine).unwrap();
    ok(&store, &["ingest", file.to_str().unwrap()]);
    let (from, to) = ("2026-05-04", "2026-05-06");
    let bursts = |r: &Value| {
        let c = control(r, "soc2_cc7_2_failed_access_bursts");
        let mut ids: Vec<String> = c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["audit_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        (c["rows"].as_u64().unwrap(), ids)
    };
    let (first, [_, computed, ..]) = report_kept(&store, &config, from, to, &[]);
    assert!(computed > 0);
    assert_eq!(bursts(&first), (0, vec![]), "nine failures are no burst");
    assert_kept(&store, "2026-05-04", "failed_access-");
    let (again, [_, computed, ..]) = report_kept(&store, &config, from, to, &[]);
    assert_eq!((computed, &again), (0, &first));

    let late = dir.path().join("late.log");
    std::fs::write(&late, refused("f-late", "2026-05-04T23:59:30.000000Z")).unwrap();
    ok(&store, &["ingest", late.to_str().unwrap()]);
    let (after, [_, computed, ..]) = report_kept(&store, &config, from, to, &[]);
    assert!(computed > 0, "the late day is computed again");
    let mut ten: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
    ten.push("f-late".into());
    ten.sort();
    assert_eq!(bursts(&after), (10, ten), "a burst across midnight");
    let (full, _) = report_kept(&store, &config, from, to, &["--recompute"]);
    same(&after, &full, "after the late failure");
}

/// The audit ID keys of a closed day are kept; a later request on another day that reuses one
/// of its audit IDs is found against those kept keys, both events listed.
#[test]
fn a_reused_audit_id_on_a_later_day_is_found_against_the_kept_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let config = scope_config(dir.path());
    let event = |id: &str, verb: &str, at: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/configmaps/app","verb":"{verb}","user":{{"username":"alice","groups":["system:authenticated"]}},"sourceIPs":["203.0.113.7"],"objectRef":{{"resource":"configmaps","namespace":"shop","name":"app","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"{at}","stageTimestamp":"{at}"}}"#
        ) + "\n"
    };
    // Forty requests on the first day; three of their IDs are reused on the next day, so that
    // the repeats are found by merging the days' keys, not by where they happen to sit.
    let first: String = (0..40)
        .map(|i| {
            event(
                &format!("id-{i}"),
                "get",
                &format!("2026-05-04T10:00:{i:02}.000000Z"),
            )
        })
        .collect();
    let file = dir.path().join("first.log");
    std::fs::write(&file, first).unwrap();
    ok(&store, &["ingest", file.to_str().unwrap()]);
    let (from, to) = ("2026-05-04", "2026-05-07");
    let reuse = |r: &Value| {
        let c = control(r, "audit_id_reuse");
        let mut rows: Vec<(String, String)> = c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["audit_id"].as_str().unwrap().to_owned(),
                    e["verb"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        rows.sort();
        (c["rows"].as_u64().unwrap(), rows)
    };
    let (before, _) = report_kept(&store, &config, from, to, &[]);
    assert_eq!(reuse(&before), (0, vec![]));
    assert_kept(&store, "2026-05-04", "audit_id_keys-");

    let later = dir.path().join("later.log");
    let reused: String = [5, 17, 30]
        .iter()
        .map(|i| {
            event(
                &format!("id-{i}"),
                "delete",
                &format!("2026-05-05T09:00:{i:02}.000000Z"),
            )
        })
        .collect();
    std::fs::write(&later, reused).unwrap();
    ok(&store, &["ingest", later.to_str().unwrap()]);
    let (after, [read, ..]) = report_kept(&store, &config, from, to, &[]);
    assert!(read > 0, "the first day's evidence is read back");
    let mut pairs = Vec::new();
    for i in [17, 30, 5] {
        for verb in ["delete", "get"] {
            pairs.push((format!("id-{i}"), verb.to_owned()));
        }
    }
    assert_eq!(reuse(&after), (6, pairs), "the reuse across days");
    let (full, _) = report_kept(&store, &config, from, to, &["--recompute"]);
    same(&after, &full, "after the reuse");
}

/// Fails unless a file named `prefix...` is kept under `_evidence/date=<date>/`.
fn assert_kept(store: &Path, date: &str, prefix: &str) {
    let kept: Vec<String> = std::fs::read_dir(store.join(format!("_evidence/date={date}")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.iter().any(|n| n.starts_with(prefix)), "{kept:?}");
}

/// The JSON report of `[from, to)` with extra arguments, without its `generated_at`, and the
/// counts of its `evidence:` line on standard error: (read, computed, kept, closed days). No
/// warnings.
fn report_kept(
    store: &Path,
    config: &Path,
    from: &str,
    to: &str,
    extra: &[&str],
) -> (Value, [u64; 4]) {
    let (r, counts, err) = report_kept_with(store, config, from, to, extra);
    assert!(!err.contains("warning:"), "{err}");
    (r, counts)
}

/// [`report_kept`], with the warnings: standard error is returned.
pub fn report_kept_with(
    store: &Path,
    config: &Path,
    from: &str,
    to: &str,
    extra: &[&str],
) -> (Value, [u64; 4], String) {
    let out = run_report_json(store, config, from, to, extra);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("evidence: "))
        .unwrap_or_else(|| panic!("no evidence line: {err}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4, "{line}");
    let mut r: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The retention controls measure up to now: times of the report's day stand for "now".
    let today = r["generated_at"].as_str().unwrap()[..11].to_owned();
    r.as_object_mut().unwrap().remove("generated_at");
    fn now_as_now(v: &mut Value, today: &str) {
        match v {
            Value::String(s) if s.starts_with(today) => *s = "now".into(),
            Value::Array(a) => a.iter_mut().for_each(|v| now_as_now(v, today)),
            Value::Object(o) => o.values_mut().for_each(|v| now_as_now(v, today)),
            _ => {}
        }
    }
    now_as_now(&mut r, &today);
    (r, [numbers[0], numbers[1], numbers[2], numbers[3]], err)
}

/// Fails with the first place where two JSON values differ.
fn same(a: &Value, b: &Value, what: &str) {
    fn diff(a: &Value, b: &Value, at: String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                x.keys()
                    .chain(y.keys())
                    .find_map(|k| match (x.get(k), y.get(k)) {
                        (Some(p), Some(q)) => diff(p, q, format!("{at}.{k}")),
                        (p, q) => Some(format!("{at}.{k}: {p:?} against {q:?}")),
                    })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| diff(p, q, format!("{at}[{i}]"))),
            _ if a == b => None,
            _ => Some(format!("{at}: {a} against {b}")),
        }
    }
    if let Some(d) = diff(a, b, String::new()) {
        panic!("{what}: the reports differ at {d}");
    }
}

/// The evidence kept per closed day gives the report a full recomputation gives, on the
/// compliance scenario and on a generated month: the first run computes and keeps every closed
/// day, the second reads them all, and `--recompute` reads none (and keeps what it computed).
#[test]
fn kept_evidence_gives_the_report_a_recomputation_gives() {
    let (dir, store, config) = scenario();
    let generated = dir.path().join("generated");
    let log = generate(dir.path(), "month.log", 20_000, 30, 7);
    ok(&generated, &["ingest", log.to_str().unwrap()]);
    for (store, from, to) in [(&store, FROM, TO), (&generated, "2026-02-18", "2026-03-20")] {
        let (first, [read, computed, kept, days]) = report_kept(store, &config, from, to, &[]);
        assert_eq!(read, 0, "{store:?}: nothing kept yet");
        assert!(
            days > 0 && computed >= days && kept == computed,
            "{store:?}"
        );
        let (second, [read2, computed2, kept2, days2]) = report_kept(store, &config, from, to, &[]);
        assert_eq!(
            (read2, computed2, kept2, days2),
            (computed, 0, 0, days),
            "{store:?}: every control-day read"
        );
        same(&first, &second, &format!("{store:?}: kept"));
        let (full, [read3, computed3, kept3, _]) =
            report_kept(store, &config, from, to, &["--recompute"]);
        assert_eq!((read3, kept3), (0, computed), "{store:?}");
        assert_eq!(computed3, computed, "{store:?}");
        same(
            &full,
            &second,
            &format!("{store:?}: kept evidence = a recomputation"),
        );
        assert!(
            first["controls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["rows"].as_u64() > Some(0)),
            "{store:?}: the report has evidence"
        );
    }
}

/// A late event ingested into a closed day recomputes that day's evidence only, and shows in
/// the report; a changed scope recomputes every day.
#[test]
fn a_late_event_recomputes_its_day_and_a_changed_scope_every_day() {
    let (dir, store, config) = scenario_days(&[0, 1, 2], &|_| {});
    let (from, to) = ("2026-05-04", "2026-05-07");
    let (before, [_, computed, _, days]) = report_kept(&store, &config, from, to, &[]);
    assert_eq!(days, 3);
    let per_day = computed / days;
    assert_eq!(computed, per_day * days);

    // A copy of the Monday's first event, late, into the closed Tuesday.
    let text = std::fs::read_to_string(testdata("scenarios/compliance.jsonl")).unwrap();
    let line = text.lines().find(|l| l.contains("2026-05-04T")).unwrap();
    let mut late: Value =
        serde_json::from_str(&line.replace("2026-05-04T", "2026-05-05T")).unwrap();
    late["auditID"] = Value::String("late-arrival-1".into());
    let file = dir.path().join("late.jsonl");
    std::fs::write(&file, late.to_string() + "\n").unwrap();
    ok(
        &store,
        &["ingest", "--cluster", "fixtures", file.to_str().unwrap()],
    );
    let (after, [read, computed, kept, _]) = report_kept(&store, &config, from, to, &[]);
    assert_eq!(
        (read, computed, kept),
        (2 * per_day, per_day, per_day),
        "only the late event's day is computed"
    );
    assert_ne!(before, after, "the late event changes the report");
    assert_eq!(
        before["events_in_window"].as_u64().unwrap() + 1,
        after["events_in_window"]
    );
    let (full, _) = report_kept(&store, &config, from, to, &["--recompute"]);
    same(&after, &full, "after the late event");

    // Another scope: every day is computed again.
    let scoped = std::fs::read_to_string(&config).unwrap();
    assert!(scoped.contains("\"card-*\"]"));
    let changed = dir.path().join("changed.toml");
    std::fs::write(
        &changed,
        scoped.replace("\"card-*\"]", "\"card-*\", \"ledger\"]"),
    )
    .unwrap();
    let (_, [read, computed, kept, _]) = report_kept(&store, &changed, from, to, &[]);
    assert_eq!((read, computed, kept), (0, per_day * days, per_day * days));

    // Retention deletes a day's kept evidence with the day.
    let kept_files = |date: &str| {
        std::fs::read_dir(store.join(format!("_evidence/date={date}")))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert!(kept_files("2026-05-05") > 0);
    let out = ok(
        &store,
        &[
            "retain",
            "--max-age",
            "30d",
            "--now",
            "2026-06-05T12:00:00Z",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("report evidence"), "{said}");
    assert_eq!(kept_files("2026-05-04") + kept_files("2026-05-05"), 0);
    assert!(kept_files("2026-05-06") > 0);
}
