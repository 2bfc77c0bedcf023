//! Tamper evidence through the real binary: `auditlake keygen`, `--signing-key`, `auditlake verify`.
//! Each way of altering a store is done to it from outside (as someone with write access to the
//! disk or bucket but not the key would) and must be found and named, with exit code 5.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::*;

struct Keys {
    key: PathBuf,
    public: PathBuf,
}

fn keygen(dir: &Path, name: &str) -> Keys {
    let out = bin()
        .args(["keygen", "--out"])
        .arg(dir)
        .args(["--name", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    Keys {
        key: dir.join(format!("{name}.key")),
        public: dir.join(format!("{name}.pub")),
    }
}

fn signed(store: &Path, keys: &Keys, args: &[&str]) -> Output {
    let mut a = vec!["--signing-key", keys.key.to_str().unwrap()];
    a.extend_from_slice(args);
    ok(store, &a)
}

fn verify(store: &Path, keys: &Keys) -> (i32, Value) {
    let out = run(
        store,
        &[
            "verify",
            "--public-key",
            keys.public.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("verify printed no JSON: {}", stderr(&out)));
    (out.status.code().unwrap_or(-1), v)
}

/// Verification of `store` exits 5 and names exactly `expected`, in order; returns its report.
fn assert_found(store: &Path, keys: &Keys, expected: &[&str]) -> Value {
    let (code, v) = verify(store, keys);
    let expected: Vec<String> = expected.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!((code, kinds(&v)), (5, expected), "{v:#}");
    v
}

fn kinds(v: &Value) -> Vec<String> {
    v["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// A signed store of two ingests (two files a day) over four days.
fn signed_store(dir: &Path, keys: &Keys) -> PathBuf {
    let store = dir.join("store");
    let a = generate(dir, "a.log", 4000, 4, 1);
    let b = generate(dir, "b.log", 4000, 4, 2);
    signed(&store, keys, &["ingest", a.to_str().unwrap()]);
    signed(&store, keys, &["ingest", b.to_str().unwrap()]);
    store
}

fn data_files(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(store).unwrap().flatten() {
        if d.file_name().to_string_lossy().starts_with("date=") {
            for f in std::fs::read_dir(d.path()).unwrap().flatten() {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

fn entry(store: &Path, v: u64) -> PathBuf {
    store.join(format!("_delta_log/{v:020}.json"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

#[test]
fn a_clean_store_verifies_after_compaction_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path(), "k");
    let store = signed_store(dir.path(), &keys);
    let (code, v) = verify(&store, &keys);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["report"]["signed"], v["report"]["entries"]);
    assert_eq!(v["report"]["files_hashed"], 8);

    // Compaction (2 files a day into 1), slimming and retention are legitimate change.
    signed(&store, &keys, &["compact", "--vacuum-grace", "0s"]);
    let end = chrono::DateTime::parse_from_rfc3339("2026-03-20T00:00:00Z")
        .unwrap()
        .to_utc();
    let days_old = (chrono::Utc::now() - end).num_days();
    signed(
        &store,
        &keys,
        &[
            "retain",
            "--max-age",
            &format!("{}d", days_old + 3),
            "--slim-after",
            &format!("{}d", days_old),
            "--vacuum-grace",
            "0s",
        ],
    );
    let (code, v) = verify(&store, &keys);
    assert_eq!(code, 0, "{v:#}");
    assert!(v["report"]["entries"].as_u64().unwrap() >= 5, "{v:#}");
    let kinds_in_log: Vec<String> = (0..v["report"]["entries"].as_u64().unwrap())
        .map(|i| {
            let text = std::fs::read_to_string(entry(&store, i)).unwrap();
            let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            first["commitInfo"]["auditlake"]["digest"]["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for k in ["create", "ingest", "compact", "retain", "slim"] {
        assert!(
            kinds_in_log.iter().any(|x| x == k),
            "no {k} commit in {kinds_in_log:?}"
        );
    }
    // Removed files waiting for vacuum are not "in no commit".
    let (code, _) = verify(&store, &keys);
    assert_eq!(code, 0);
}

#[test]
fn every_alteration_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path(), "k");
    let other = keygen(dir.path(), "other");
    let pristine = signed_store(dir.path(), &keys);
    let case = |name: &str| {
        let s = dir.path().join(name);
        copy_dir(&pristine, &s);
        s
    };

    // One byte flipped in a data file.
    let s = case("flipped");
    let f = data_files(&s)[1].clone();
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&f, bytes).unwrap();
    let v = assert_found(&s, &keys, &["file_changed"]);
    let name = f.file_name().unwrap().to_string_lossy().into_owned();
    assert!(v["findings"][0].as_str().unwrap().contains(&name), "{v:#}");

    // A data file deleted.
    let s = case("deleted");
    let f = data_files(&s)[2].clone();
    std::fs::remove_file(&f).unwrap();
    assert_found(&s, &keys, &["file_missing"]);

    // A foreign Parquet file of valid events dropped into a day.
    let s = case("foreign");
    let elsewhere = dir.path().join("elsewhere");
    let c = generate(dir.path(), "c.log", 500, 1, 3);
    ok(&elsewhere, &["ingest", c.to_str().unwrap()]);
    let foreign = data_files(&elsewhere)[0].clone();
    let day = foreign.parent().unwrap().file_name().unwrap().to_owned();
    std::fs::create_dir_all(s.join(&day)).unwrap();
    std::fs::copy(
        &foreign,
        s.join(&day)
            .join("part-99990101T000000.000Z-00000000-00001.parquet"),
    )
    .unwrap();
    assert_found(&s, &keys, &["file_not_in_log"]);

    // A digest rewritten: a file's hash in version 1 replaced (with the file changed to match,
    // as a careful forger would): the signature and the chain give it away.
    let s = case("rewritten");
    let e = entry(&s, 1);
    let text = std::fs::read_to_string(&e).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let added = &mut lines[0]["commitInfo"]["auditlake"]["digest"]["added"][0];
    let path = s.join(added["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    added["sha256"] = Value::String(sha256_of(&bytes));
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(
        &e,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    assert_found(&s, &keys, &["chain_broken", "bad_signature"]);

    // A digest (entry) removed from the middle of the chain.
    let s = case("removed");
    std::fs::remove_file(entry(&s, 1)).unwrap();
    let (code, v) = verify(&s, &keys);
    assert_eq!(code, 5, "{v:#}");
    let k = kinds(&v);
    assert!(
        k.contains(&"entry_missing".to_owned()) && k.contains(&"chain_broken".to_owned()),
        "{v:#}"
    );

    // An action slipped into the newest entry (a file taken out of the table): the digest no
    // longer matches, and the next writer refuses to chain onto it.
    let s = case("slipped");
    let e = entry(&s, 2);
    let mut text = std::fs::read_to_string(&e).unwrap();
    let victim = data_files(&s)[0].clone();
    let rel = victim
        .strip_prefix(&s)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let size = victim.metadata().unwrap().len();
    text.push_str(&format!(
        "{{\"remove\":{{\"path\":\"{rel}\",\"deletionTimestamp\":1,\"dataChange\":true,\"size\":{size}}}}}\n"
    ));
    std::fs::write(&e, text).unwrap();
    let (code, v) = verify(&s, &keys);
    assert_eq!(code, 5, "{v:#}");
    assert!(kinds(&v).contains(&"digest_mismatch".to_owned()), "{v:#}");
    let c = dir.path().join("c.log");
    let out = run(
        &s,
        &[
            "--signing-key",
            keys.key.to_str().unwrap(),
            "ingest",
            c.to_str().unwrap(),
        ],
    );
    assert!(
        !out.status.success() && stderr(&out).contains("was altered"),
        "{}",
        stderr(&out)
    );

    // `_last_checkpoint` pointed far ahead: what readers load is not the log; verify lists the
    // log rather than trust it, and says so.
    let s = case("checkpoint");
    std::fs::write(
        s.join("_delta_log/_last_checkpoint"),
        r#"{"version":1000000000000000,"size":3}"#,
    )
    .unwrap();
    assert_found(&s, &keys, &["snapshot_mismatch"]);

    // The newest entry deleted (with its files): only a version recorded elsewhere shows it.
    let s = case("truncated");
    let text = std::fs::read_to_string(entry(&s, 2)).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for f in first["commitInfo"]["auditlake"]["digest"]["added"]
        .as_array()
        .unwrap()
    {
        std::fs::remove_file(s.join(f["path"].as_str().unwrap())).unwrap();
    }
    std::fs::remove_file(entry(&s, 2)).unwrap();
    let (code, _) = verify(&s, &keys);
    assert_eq!(code, 0, "a truncated chain is a shorter chain");
    let out = run(
        &s,
        &[
            "verify",
            "--public-key",
            keys.public.to_str().unwrap(),
            "--expect-version",
            "2",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(kinds(&v).contains(&"truncated".to_owned()), "{v:#}");

    // Signed entries checked without the public key prove nothing: not clean.
    let out = run(&pristine, &["verify", "--format", "json"]);
    assert_eq!(out.status.code(), Some(5));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        kinds(&v),
        vec!["signatures_not_checked".to_owned()],
        "{v:#}"
    );

    // The store re-signed with another key: every entry is wrongly signed for the real key.
    let s = dir.path().join("resigned");
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    signed(&s, &other, &["ingest", a.to_str().unwrap()]);
    signed(&s, &other, &["ingest", b.to_str().unwrap()]);
    assert_found(&s, &keys, &["bad_signature"; 3]);
    // ... and an unsigned commit among signed ones is named too.
    let s = case("unsigned");
    ok(&s, &["ingest", dir.path().join("c.log").to_str().unwrap()]);
    assert_found(&s, &keys, &["unsigned"]);
}

fn sha256_of(b: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The same alterations on the loopback S3 server, made with another S3 client (boto3, moto's
/// own) behind the store's back: one store (prefix) per alteration.
#[test]
fn verify_on_s3_finds_every_alteration() {
    let moto = crate::s3::start_moto();
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path(), "k");
    let other = keygen(dir.path(), "other");
    let a = generate(dir.path(), "a.log", 3000, 2, 5);
    let b = generate(dir.path(), "b.log", 3000, 2, 6);
    let s3 = |prefix: &str, key: &Keys, args: &[&str]| {
        let mut c = bin();
        moto.configure(&mut c);
        c.args([
            "--store",
            &format!("s3://auditlake/{prefix}"),
            "--signing-key",
            key.key.to_str().unwrap(),
        ])
        .args(args);
        let out = c.output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 5),
            "{args:?}: {}",
            stderr(&out)
        );
        out
    };
    let cases = [
        "clean",
        "flipped",
        "deleted",
        "foreign",
        "rewritten",
        "removed",
    ];
    for prefix in cases {
        s3(prefix, &keys, &["ingest", a.to_str().unwrap()]);
        s3(prefix, &keys, &["ingest", b.to_str().unwrap()]);
    }
    s3("resigned", &other, &["ingest", a.to_str().unwrap()]);
    s3("resigned", &other, &["ingest", b.to_str().unwrap()]);
    let script = format!(
        r#"
import boto3, json
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
B = "auditlake"
def data(prefix):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=B, Prefix=prefix + "/date=")["Contents"])
def get(key):
    return bytearray(s3.get_object(Bucket=B, Key=key)["Body"].read())
k = data("flipped")[0]; body = get(k); body[len(body) // 2] ^= 1
s3.put_object(Bucket=B, Key=k, Body=bytes(body))
s3.delete_object(Bucket=B, Key=data("deleted")[1])
k = data("foreign")[0]
s3.put_object(Bucket=B, Key=k.rsplit("/", 1)[0] + "/part-99990101T000000.000Z-00000000-00001.parquet", Body=bytes(get(data("clean")[0])))
e = "rewritten/_delta_log/00000000000000000001.json"
lines = get(e).decode().splitlines()
info = json.loads(lines[0])
info["commitInfo"]["auditlake"]["digest"]["added"][0]["sha256"] = "0" * 64
lines[0] = json.dumps(info)
s3.put_object(Bucket=B, Key=e, Body=("\n".join(lines) + "\n").encode())
s3.delete_object(Bucket=B, Key="removed/_delta_log/00000000000000000001.json")
"#,
        port = moto.port()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let verify = |prefix: &str| -> (i32, Vec<String>) {
        let out = s3(
            prefix,
            &keys,
            &[
                "verify",
                "--public-key",
                keys.public.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
        (out.status.code().unwrap_or(-1), kinds(&v))
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(verify("clean"), (0, vec![]));
    assert_eq!(verify("flipped"), (5, s(&["file_changed"])));
    assert_eq!(verify("deleted"), (5, s(&["file_missing"])));
    assert_eq!(verify("foreign"), (5, s(&["file_not_in_log"])));
    assert_eq!(
        verify("rewritten"),
        (5, s(&["chain_broken", "bad_signature", "file_changed"]))
    );
    let (code, found) = verify("removed");
    assert_eq!(code, 5);
    assert!(
        found.contains(&"entry_missing".to_owned()) && found.contains(&"chain_broken".to_owned()),
        "{found:?}"
    );
    assert_eq!(verify("resigned"), (5, s(&["bad_signature"; 3])));
}

/// A report carries the verification of its window: clean on the signed store; after a file of
/// the window is altered, the JSON says so and the HTML says it at the top (read by a browser).
#[test]
fn reports_carry_the_verification_of_their_window() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path(), "k");
    let store = signed_store(dir.path(), &keys);
    let report = |format: &str| {
        run(
            &store,
            &[
                "report",
                "--framework",
                "pci-dss",
                "--from",
                "2026-03-16",
                "--to",
                "2026-03-20",
                "--public-key",
                keys.public.to_str().unwrap(),
                "--format",
                format,
            ],
        )
    };
    let out = report("json");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["integrity"]["clean"], true, "{:#}", v["integrity"]);
    assert_eq!(v["integrity"]["files_hashed"], 8);
    assert_eq!(v["integrity"]["key"].as_str().map(str::len), Some(32));
    // The scope it was computed with, as a hash that changes with the scope.
    let default_scope = v["scope_sha256"].as_str().unwrap().to_owned();
    assert_eq!(default_scope.len(), 64);
    let config = dir.path().join("scoped.toml");
    std::fs::write(&config, "[scope]\ncde_namespaces = [\"payments\"]\n").unwrap();
    let out = run(
        &store,
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "--framework",
            "pci-dss",
            "--from",
            "2026-03-16",
            "--to",
            "2026-03-20",
            "--no-verify",
            "--format",
            "json",
        ],
    );
    let scoped: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    assert_ne!(scoped["scope_sha256"].as_str().unwrap(), default_scope);
    assert!(scoped["integrity"].is_null());

    let f = data_files(&store)[3].clone();
    let mut bytes = std::fs::read(&f).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0x10;
    std::fs::write(&f, bytes).unwrap();
    let name = f.file_name().unwrap().to_string_lossy().into_owned();
    let out = report("json");
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    assert_eq!(v["integrity"]["clean"], false);
    assert!(
        v["integrity"]["findings"][0]
            .as_str()
            .unwrap()
            .contains(&name),
        "{:#}",
        v["integrity"]
    );

    let html = dir.path().join("r.html");
    std::fs::write(&html, report("html").stdout).unwrap();
    let dom = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is needed for this test: ./scripts/test installs Debian's chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let at = dom.find("id=\"integrity\"").expect("no integrity block");
    assert!(
        at < dom.find("id=\"totals\"").unwrap(),
        "the verification comes first"
    );
    assert!(
        dom[at..].contains("data-clean=\"false\"") && dom[at..at + 2000].contains(&name),
        "{}",
        &dom[at..]
    );
}

/// Evidence a report kept under `_evidence/` is signed with the writers' key, and a report that
/// checks a key reads only what that key signed: evidence kept unsigned, or altered by someone
/// with write access to the store (a day's evidence replaced by an empty one, to hide a finding),
/// is computed again from the table, with a warning.
#[test]
fn kept_report_evidence_is_read_only_when_signed_by_the_key() {
    use crate::report::{control, report_kept_with, scenario};
    let (dir, store, config) = scenario();
    let keys = keygen(dir.path(), "k");
    let (from, to) = ("2026-05-01", "2026-05-11");
    let public = ["--public-key", keys.public.to_str().unwrap()];
    let signing = ["--signing-key", keys.key.to_str().unwrap()];
    let view = "det_anonymous_allowed";
    let rows = |r: &Value| control(r, view)["rows"].as_u64().unwrap();

    // Kept unsigned (no key), then checked under a key: nothing is read, nothing kept.
    let (full, [_, all, kept, _], _) = report_kept_with(&store, &config, from, to, &[]);
    assert_eq!(kept, all);
    assert_eq!(rows(&full), 1);
    let (r, counts, err) = report_kept_with(&store, &config, from, to, &public);
    assert_eq!(counts[..3], [0, all, 0], "{err}");
    assert!(err.contains("not signed"), "{err}");
    assert_eq!(r["controls"], full["controls"]);

    // A writer's key signs what it keeps; a reader with the public key reads it all.
    let mut both = public.to_vec();
    both.extend(signing);
    let (_, counts, err) = report_kept_with(&store, &config, from, to, &both);
    assert_eq!(counts[..3], [0, all, all], "{err}");
    let (r, counts, err) = report_kept_with(&store, &config, from, to, &public);
    assert_eq!(counts[..3], [all, 0, 0], "{err}");
    assert!(!err.contains("warning:"), "{err}");
    assert_eq!(r["controls"], full["controls"]);

    // The day's finding hidden: its evidence replaced by the same control's empty evidence of
    // another day (a valid file, its signature left in place).
    let kept_file = |date: &str| {
        let d = store.join(format!("_evidence/date={date}"));
        std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.starts_with(&format!("{view}-")) && n.ends_with(".parquet")
            })
            .unwrap_or_else(|| panic!("no kept {view} in {}", d.display()))
    };
    std::fs::copy(kept_file("2026-05-09"), kept_file("2026-05-04")).unwrap();
    let (r, counts, err) = report_kept_with(&store, &config, from, to, &public);
    assert_eq!(counts[..3], [all - 1, 1, 0], "{err}");
    assert!(
        err.contains(&format!("{view}-")) && err.contains("altered"),
        "{err}"
    );
    assert_eq!(rows(&r), 1, "the finding is still reported");
    assert_eq!(r["controls"], full["controls"]);
    // Checking no key, a report believes the forgery: what the key is for.
    let (r, _, _) = report_kept_with(&store, &config, from, to, &[]);
    assert_eq!(rows(&r), 0);
}
