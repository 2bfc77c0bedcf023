//! The same commands against a real S3-compatible server on loopback (moto, which
//! `scripts/test` installs with pip), through object_store's S3 client: no mock of the client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

pub struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(port: u16, request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

pub fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is needed to run moto, the S3 server of the tests");
    let moto = Moto { child, port };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The port may accept before the server answers (two servers starting at once): retry.
    let create = format!(
        "PUT /auditlake HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut r = String::new();
    for _ in 0..100 {
        r = http(port, &create).unwrap_or_else(|e| e.to_string());
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(r.starts_with("HTTP/1.1 200"), "bucket not created: {r}");
    moto
}

impl Moto {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Points the command's S3 client at this server (the standard AWS_* variables).
    pub fn configure(&self, c: &mut Command) {
        c.env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        )
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    }
}

fn s3(moto: &Moto, args: &[&str]) -> Output {
    let mut c = bin();
    moto.configure(&mut c);
    c.args(["--store", "s3://auditlake/clusters/prod"])
        .args(args);
    c.output().unwrap()
}

fn s3_ok(moto: &Moto, args: &[&str]) -> Output {
    let out = s3(moto, args);
    assert!(
        out.status.success(),
        "auditlake {args:?} on S3 failed: {}",
        stderr(&out)
    );
    out
}

fn count_s3(moto: &Moto, sql: &str) -> u64 {
    let out = s3_ok(moto, &["sql", "--format", "csv", "-c", sql]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a count")
}

#[test]
fn ingest_query_export_and_dedup_on_s3() {
    let moto = start_moto();
    let dir = tempfile::tempdir().unwrap();
    let log = generate(dir.path(), "audit.log", 20_000, 2, 21);
    let s = summary(&s3_ok(
        &moto,
        &["ingest", "--cluster", "prod", log.to_str().unwrap()],
    ));
    assert_eq!((s["read"], s["stored"]), (20_000, 20_000));
    // Bad input on S3: rejected, kept in the store, exit code 3.
    let bad = s3(
        &moto,
        &[
            "ingest",
            testdata("ingest/good_and_bad.log").to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("s3://auditlake/clusters/prod/_rejected/"),
        "{}",
        stderr(&bad)
    );
    // Again: all duplicates.
    let s = summary(&s3_ok(&moto, &["ingest", log.to_str().unwrap()]));
    assert_eq!((s["stored"], s["duplicates"]), (0, 20_000));
    assert_eq!(count_s3(&moto, "SELECT count(*) FROM audit_events"), 20_004);
    assert_eq!(
        count_s3(
            &moto,
            "SELECT count(*) FROM audit_events WHERE cluster = 'prod'"
        ),
        20_000
    );
    let hour = count_s3(
        &moto,
        "SELECT count(*) FROM audit_events WHERE ts >= '2026-03-19T10:00:00Z' AND ts < '2026-03-19T11:00:00Z'",
    );
    assert!(hour > 0 && hour < 20_000);
    // Export gives back what went in (the generated events, by key, and the 4 good fixture lines).
    let out = s3_ok(
        &moto,
        &["export", "--from", "2026-03-18", "--to", "2026-03-20"],
    );
    let back = by_key(json_lines(&String::from_utf8_lossy(&out.stdout)));
    let orig = by_key(json_lines(&std::fs::read_to_string(&log).unwrap()));
    assert_eq!(back.len(), 20_004);
    let same = orig
        .iter()
        .filter(|(k, v)| back.get(*k) == Some(*v))
        .count();
    let with_secret_bodies = orig
        .values()
        .filter(|e| {
            e["objectRef"]["resource"] == "secrets"
                && (e.get("requestObject").is_some() || e.get("responseObject").is_some())
        })
        .count();
    assert_eq!(same + with_secret_bodies, 20_000);
    let stats = s3_ok(&moto, &["stats", "--format", "csv"]);
    assert!(
        stderr(&stats).contains("20004 events"),
        "{}",
        stderr(&stats)
    );
}

#[test]
fn sql_cannot_write_under_the_store_prefix_on_s3() {
    let moto = start_moto();
    s3_ok(
        &moto,
        &[
            "ingest",
            testdata("ingest/secret_bodies.jsonl").to_str().unwrap(),
        ],
    );
    let copy = |to: &str| format!("COPY (SELECT * FROM audit_events) TO '{to}' STORED AS PARQUET");
    // Every key under the store's prefix with its ETag (moto answers unsigned ListObjectsV2).
    let listed = || {
        let r = http(
            moto.port,
            &format!(
                "GET /auditlake?list-type=2&prefix=clusters/prod/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                moto.port
            ),
        )
        .unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        let mut keys: Vec<String> = r
            .split("<Contents>")
            .skip(1)
            .map(|c| c.split("<StorageClass>").next().unwrap_or(c).to_owned())
            .map(|c| c.replace(|ch: char| ch.is_whitespace(), ""))
            .map(|c| {
                // Key and ETag, not LastModified order details.
                let key = c
                    .split("<Key>")
                    .nth(1)
                    .and_then(|k| k.split("</Key>").next())
                    .unwrap_or("")
                    .to_owned();
                let etag = c
                    .split("<ETag>")
                    .nth(1)
                    .and_then(|k| k.split("</ETag>").next())
                    .unwrap_or("")
                    .to_owned();
                format!("{key} {etag}")
            })
            .collect();
        keys.sort();
        assert!(keys.iter().any(|k| k.contains("date=2026-03-19/")), "{r}");
        keys
    };
    let before = listed();
    for to in [
        "s3://auditlake/clusters/prod/date=2026-03-19/x.parquet",
        "s3://auditlake/clusters/prod/_commits/forged.json",
        "s3://auditlake/clusters/prod/x.parquet",
        "s3://auditlake/clusters/prod/date=2031-01-01/",
        "s3://AUDITLAKE/clusters/prod/date=2026-03-19/x.parquet",
    ] {
        let out = s3(&moto, &["sql", "-c", &copy(to)]);
        assert!(!out.status.success(), "COPY to {to} must fail");
        assert!(
            stderr(&out).contains("refused")
                || stderr(&out).contains("read-only")
                || stderr(&out).contains("No suitable object store"),
            "{to}: {}",
            stderr(&out)
        );
    }
    let ext = s3(
        &moto,
        &[
            "sql",
            "-c",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://auditlake/clusters/prod/date=2026-03-19/'",
        ],
    );
    assert!(!ext.status.success());
    assert!(stderr(&ext).contains("refused"), "{}", stderr(&ext));
    assert_eq!(listed(), before);
    // The same bucket outside the store's prefix is somewhere else.
    s3_ok(
        &moto,
        &[
            "sql",
            "-c",
            "COPY (SELECT audit_id FROM audit_events) TO 's3://auditlake/exports/ids.csv' STORED AS CSV",
        ],
    );
    assert_eq!(count_s3(&moto, "SELECT count(*) FROM audit_events"), 4);
}
