use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::*;

fn end() -> DateTime<Utc> {
    // A Monday, midnight UTC: the window covers the week before.
    Utc.with_ymd_and_hms(2025, 4, 7, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn cfg(events: u64, days: u32, seed: u64) -> GenConfig {
    GenConfig {
        events,
        days,
        seed,
        end: end(),
    }
}

fn run(cfg: &GenConfig) -> (GenStats, Vec<u8>) {
    let mut buf = Vec::new();
    let stats = generate(cfg, &mut buf).expect("generate");
    (stats, buf)
}

/// 20k events over a week, parsed once and shared by the tests below.
struct Sample {
    stats: GenStats,
    raw: Vec<String>,
    events: Vec<Value>,
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let (stats, buf) = run(&cfg(20_000, 7, 42));
        let text = String::from_utf8(buf).expect("utf8");
        let raw: Vec<String> = text.lines().map(str::to_string).collect();
        let events = raw
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).expect("valid JSON line"))
            .collect();
        Sample { stats, raw, events }
    })
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn code(v: &Value) -> Option<i64> {
    v.get("responseStatus")?.get("code")?.as_i64()
}

/// Keys of the top-level object, in order of appearance.
fn top_level_keys(line: &str) -> Vec<String> {
    let b = line.as_bytes();
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    let mut expect_key = false;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => {
                depth += 1;
                expect_key = b[i] == b'{' && depth == 1;
            }
            b'}' | b']' => depth -= 1,
            b',' if depth == 1 => expect_key = true,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if expect_key && depth == 1 {
                    keys.push(line[start..i].to_string());
                    expect_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

#[test]
fn writes_exactly_the_requested_number_of_lines() {
    for n in [0u64, 1, 2, 3, 7, 100, 1234] {
        for days in [1, 3] {
            let (stats, buf) = run(&cfg(n, days, 7));
            let lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(lines, n, "lines for n={n} days={days}");
            assert_eq!(stats.events, n);
            assert_eq!(stats.bytes, buf.len() as u64);
            assert!(buf.is_empty() || buf.ends_with(b"\n"));
        }
    }
    assert_eq!(sample().raw.len(), 20_000);
    assert_eq!(sample().stats.events, 20_000);
}

#[test]
fn rejects_an_empty_window() {
    let err = generate(&cfg(10, 0, 1), Vec::new()).expect_err("days = 0");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(&cfg(3000, 2, 99)).1;
    let b = run(&cfg(3000, 2, 99)).1;
    let c = run(&cfg(3000, 2, 100)).1;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn every_line_is_an_event_in_apiserver_field_order() {
    const ORDER: &[&str] = &[
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
        "impersonatedUser",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "responseStatus",
        "requestObject",
        "responseObject",
        "requestReceivedTimestamp",
        "stageTimestamp",
        "annotations",
    ];
    let sample = sample();
    for (line, ev) in sample.raw.iter().zip(&sample.events) {
        let obj = ev.as_object().expect("object");
        for key in [
            "auditID",
            "stage",
            "verb",
            "user",
            "requestReceivedTimestamp",
            "stageTimestamp",
            "requestURI",
            "level",
        ] {
            assert!(obj.contains_key(key), "missing {key}: {line}");
        }
        assert_eq!(s(ev, &["kind"]), Some("Event"));
        assert_eq!(s(ev, &["apiVersion"]), Some("audit.k8s.io/v1"));
        let keys = top_level_keys(line);
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| {
                ORDER
                    .iter()
                    .position(|o| o == k)
                    .unwrap_or_else(|| panic!("unexpected key {k}"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "field order {keys:?}"
        );
        let id = s(ev, &["auditID"]).expect("auditID");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "v4 uuid {id}");
    }
}

#[test]
fn timestamps_are_microtime_inside_the_window_and_sorted() {
    let sample = sample();
    let end = end();
    let start = end - chrono::Duration::days(7);
    let mut last = String::new();
    for ev in &sample.events {
        let rr = s(ev, &["requestReceivedTimestamp"]).expect("rr");
        let st = s(ev, &["stageTimestamp"]).expect("st");
        for ts in [rr, st] {
            assert_eq!(ts.len(), 27, "{ts}");
            assert_eq!(&ts[19..20], ".");
            assert!(ts.ends_with('Z'));
            let t = DateTime::parse_from_rfc3339(ts).expect("rfc3339");
            assert!(t >= start && t < end, "{ts} outside window");
        }
        assert!(rr <= st, "received {rr} after stage {st}");
        assert!(st >= last.as_str(), "not sorted: {st} after {last}");
        last = st.to_string();
    }
    // Spread over the whole window: every day has events.
    let mut days: Vec<&str> = sample
        .events
        .iter()
        .filter_map(|e| s(e, &["stageTimestamp"]).map(|t| &t[..10]))
        .collect();
    days.dedup();
    assert_eq!(days.len(), 7, "{days:?}");
}

#[test]
fn average_event_is_about_a_kilobyte() {
    let sample = sample();
    let avg = sample.stats.bytes / sample.stats.events;
    assert!((500..=2000).contains(&avg), "average {avg} bytes");
}

#[test]
fn mix_contains_the_interesting_cases() {
    let sample = sample();
    let evs = &sample.events;
    let count = |f: &dyn Fn(&Value) -> bool| evs.iter().filter(|e| f(e)).count();

    let secret_reads = count(&|e| {
        s(e, &["objectRef", "resource"]) == Some("secrets")
            && matches!(s(e, &["verb"]), Some("get" | "list"))
            && !s(e, &["user", "username"])
                .unwrap_or("")
                .starts_with("system:")
    });
    assert!(secret_reads > 0, "human secret reads");
    assert_eq!(
        count(&|e| s(e, &["objectRef", "resource"]) == Some("secrets")
            && (e.get("requestObject").is_some() || e.get("responseObject").is_some())),
        0,
        "secret bodies are never logged"
    );

    let exec = count(&|e| {
        s(e, &["objectRef", "subresource"]) == Some("exec")
            && s(e, &["stage"]) == Some("ResponseStarted")
            && code(e) == Some(101)
    });
    assert!(exec > 0, "exec");
    assert!(
        evs.iter()
            .any(|e| s(e, &["objectRef", "subresource"]) == Some("exec")
                && s(e, &["requestURI"]).unwrap_or("").contains("&container=")),
        "exec URI has command and container"
    );

    let forbidden = count(&|e| code(e) == Some(403));
    assert!(forbidden > 0, "403");
    for e in evs.iter().filter(|e| code(e) == Some(403)) {
        assert_eq!(s(e, &["responseStatus", "reason"]), Some("Forbidden"));
        assert_eq!(
            s(e, &["annotations", "authorization.k8s.io/decision"]),
            Some("forbid")
        );
        assert!(
            s(e, &["responseStatus", "message"])
                .unwrap_or("")
                .contains("forbidden: User \""),
            "{e}"
        );
    }
    assert!(
        evs.iter().any(
            |e| code(e) == Some(403) && s(e, &["user", "username"]) == Some("system:anonymous")
        ),
        "anonymous 403"
    );

    let unauthorized: Vec<&Value> = evs.iter().filter(|e| code(e) == Some(401)).collect();
    assert!(!unauthorized.is_empty(), "401");
    for e in &unauthorized {
        assert_eq!(s(e, &["stage"]), Some("ResponseStarted"));
        assert_eq!(e.get("user"), Some(&serde_json::json!({})));
        assert!(
            s(e, &["responseStatus", "message"])
                .unwrap_or("")
                .starts_with("Authentication failed")
        );
    }

    let rbac_changes = count(&|e| {
        s(e, &["objectRef", "apiGroup"]) == Some("rbac.authorization.k8s.io")
            && matches!(
                s(e, &["verb"]),
                Some("create" | "update" | "patch" | "delete")
            )
            && code(e).is_some_and(|c| c < 300)
    });
    assert!(rbac_changes > 0, "RBAC changes");

    assert!(count(&|e| code(e) == Some(404)) > 0, "404");
    assert!(count(&|e| code(e) == Some(409)) > 0, "409");
    assert!(
        count(&|e| e.get("impersonatedUser").is_some()) > 0,
        "impersonation"
    );
    assert!(
        count(&|e| s(
            e,
            &["annotations", "pod-security.kubernetes.io/enforce-policy"]
        )
        .is_some())
            > 0,
        "pod security annotations"
    );
    assert!(
        count(&|e| s(e, &["objectRef", "resource"]) == Some("leases")
            && s(e, &["level"]) == Some("RequestResponse")
            && e.get("responseObject").is_some())
            > 0,
        "lease updates with bodies"
    );

    // Watches: ResponseStarted and ResponseComplete share an auditID, with code 200.
    let mut watch: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in evs.iter().filter(|e| s(e, &["verb"]) == Some("watch")) {
        assert_eq!(code(e).unwrap_or(200), 200);
        watch
            .entry(s(e, &["auditID"]).unwrap_or(""))
            .or_default()
            .push(s(e, &["stage"]).unwrap_or(""));
    }
    let pairs = watch
        .values()
        .filter(|st| st.contains(&"ResponseStarted") && st.contains(&"ResponseComplete"))
        .count();
    assert!(pairs > 10, "watch pairs: {pairs}");

    // RequestReceived for a small fraction, never alone.
    let rr = count(&|e| s(e, &["stage"]) == Some("RequestReceived"));
    assert!(rr > 100 && rr < 1200, "RequestReceived events: {rr}");
}

#[test]
fn authorized_events_carry_authorization_annotations() {
    for e in &sample().events {
        let stage = s(e, &["stage"]);
        if stage == Some("RequestReceived") || code(e) == Some(401) {
            assert!(e.get("annotations").is_none(), "{e}");
            continue;
        }
        let decision = s(e, &["annotations", "authorization.k8s.io/decision"]);
        assert!(matches!(decision, Some("allow" | "forbid")), "{e}");
        assert!(s(e, &["annotations", "authorization.k8s.io/reason"]).is_some());
    }
}

#[test]
fn people_work_office_hours_and_system_traffic_is_steady() {
    let evs = &sample().events;
    let is_person = |e: &Value| {
        let u = s(e, &["user", "username"]).unwrap_or("");
        !u.is_empty() && !u.starts_with("system:")
    };
    let people = evs.iter().filter(|e| is_person(e)).count();
    let share = people as f64 / evs.len() as f64;
    assert!((0.07..0.18).contains(&share), "human share {share}");

    let hour = |e: &Value| {
        s(e, &["stageTimestamp"])
            .and_then(|t| t[11..13].parse::<u32>().ok())
            .unwrap_or(0)
    };
    let weekday = |e: &Value| {
        s(e, &["stageTimestamp"])
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| chrono::Datelike::weekday(&t).number_from_monday() <= 5)
            .unwrap_or(false)
    };
    let day_people = evs
        .iter()
        .filter(|e| is_person(e) && weekday(e) && (9..17).contains(&hour(e)))
        .count();
    let night_people = evs
        .iter()
        .filter(|e| is_person(e) && weekday(e) && (hour(e) < 6 || hour(e) >= 22))
        .count();
    assert!(
        day_people > 10 * night_people.max(1),
        "day {day_people} vs night {night_people}"
    );
    let day_system = evs
        .iter()
        .filter(|e| !is_person(e) && (9..17).contains(&hour(e)))
        .count() as f64;
    let night_system = evs
        .iter()
        .filter(|e| !is_person(e) && (hour(e) < 6 || hour(e) >= 22))
        .count() as f64;
    // Eight hours each: system traffic is the same day and night.
    let ratio = day_system / night_system;
    assert!((0.85..1.2).contains(&ratio), "system day/night {ratio}");
}

#[test]
fn service_accounts_carry_uid_and_bound_token_claims() {
    let evs = &sample().events;
    let sa = evs
        .iter()
        .find(|e| s(e, &["user", "username"]) == Some("system:serviceaccount:kube-system:coredns"))
        .expect("coredns traffic");
    assert!(s(sa, &["user", "uid"]).is_some());
    let extra = sa["user"]["extra"].as_object().expect("extra");
    for key in [
        "authentication.kubernetes.io/credential-id",
        "authentication.kubernetes.io/pod-name",
        "authentication.kubernetes.io/pod-uid",
    ] {
        assert_eq!(extra[key].as_array().map(Vec::len), Some(1), "{key}");
    }
    assert!(
        extra["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("JTI=")
    );
    let kubelet = evs
        .iter()
        .find(|e| s(e, &["user", "username"]).is_some_and(|u| u.starts_with("system:node:")))
        .expect("kubelet traffic");
    assert!(
        kubelet["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("X509SHA256=")
    );
}

/// Release-mode throughput check: `cargo test --release -p auditlake-gen -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run in release mode"]
fn one_million_events_throughput() {
    let start = std::time::Instant::now();
    let stats = generate(&cfg(1_000_000, 30, 1), io::sink()).expect("generate");
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} events, {} bytes (avg {} B/event) in {secs:.2}s: {:.0} events/s, {:.0} MB/s",
        stats.events,
        stats.bytes,
        stats.bytes / stats.events,
        stats.events as f64 / secs,
        stats.bytes as f64 / secs / 1e6
    );
    assert_eq!(stats.events, 1_000_000);
}
