//! Live collection through the real binary: `auditlake serve` over real HTTPS with certificates
//! made here (rcgen), and `auditlake follow` on a log file rotated the way lumberjack does it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::Value;

use crate::common::*;

/// A CA and the certificates it issued, as PEM files in `dir`.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

struct Identity {
    cert: String,
    key: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    Identity {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    fn new(dir: &Path) -> (Pki, CertifiedIssuer<'static, KeyPair>) {
        let issuer = ca("auditlake test CA");
        let server = leaf(
            &issuer,
            "auditlake",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.crt"),
            server_cert: dir.join("tls.crt"),
            server_key: dir.join("tls.key"),
        };
        std::fs::write(&pki.ca, issuer.pem()).unwrap();
        std::fs::write(&pki.server_cert, server.cert).unwrap();
        std::fs::write(&pki.server_key, server.key).unwrap();
        (pki, issuer)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One audit event; `n` makes its audit ID and time.
fn event(n: u64, extra: &str) -> String {
    let (h, m, s) = (n / 3600 % 24, n / 60 % 60, n % 60);
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-4000-8000-{n:012}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{{"username":"system:admin","groups":["system:masters"]}},"sourceIPs":["10.0.0.1"],"objectRef":{{"resource":"pods","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-11-30T{h:02}:{m:02}:{s:02}.000000Z","stageTimestamp":"2026-11-30T{h:02}:{m:02}:{s:02}.100000Z"{extra}}}"#
    )
}

fn event_list(range: std::ops::Range<u64>) -> String {
    let items: Vec<String> = range.map(|n| event(n, "")).collect();
    event_list_of(&items)
}

fn event_list_of(items: &[String]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    )
}

/// `serve` over plain HTTP on loopback for the one cluster `prod`, committing every second.
const PLAIN_PROD: [&str; 5] = [
    "--insecure-http",
    "--cluster",
    "prod",
    "--flush-interval",
    "1s",
];

/// A running `auditlake serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(store: &str, wal: &Path, args: &[&str], env: &[(&str, String)]) -> Server {
        Self::start_on(free_port(), store, wal, args, env)
    }

    fn start_on(
        port: u16,
        store: &str,
        wal: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Server {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = wal.with_extension(format!("{port}.log"));
        let mut c = bin();
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .args(["--store", store, "serve", "--listen", &addr.to_string()])
            .arg("--wal")
            .arg(wal)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Server { child, addr, log };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                panic!("serve did not start: {}", s.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status once it has flushed.
    fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        let status = wait_for(&mut self.child, Duration::from_secs(120));
        assert!(
            status.success(),
            "serve did not stop cleanly: {}",
            self.log_text()
        );
        status
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn url(&self, https: bool, path: &str) -> String {
        format!(
            "{}://{}{path}",
            if https { "https" } else { "http" },
            self.addr
        )
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTPS client trusting `ca`, presenting `identity` when given.
fn client(ca: &Path, identity: Option<&Identity>) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(id.cert.as_bytes())
                    .map(|c| c.unwrap())
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Result<Reply, reqwest::Error> {
    let mut r = c.post(url).body(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply {
        status,
        body,
        retry_after,
    })
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(b).unwrap();
    z.finish().unwrap()
}

/// (cluster, rows, distinct audit_id/stage) per cluster.
fn by_cluster(store: &Path) -> BTreeMap<String, (u64, u64)> {
    sql_ndjson(
        store,
        "SELECT coalesce(cluster, '-') AS c, count(*) AS n, count(DISTINCT audit_id || '/' || stage) AS k FROM audit_events GROUP BY 1",
    )
    .into_iter()
    .map(|r| {
        (
            r["c"].as_str().unwrap().to_owned(),
            (r["n"].as_u64().unwrap(), r["k"].as_u64().unwrap()),
        )
    })
    .collect()
}

#[test]
fn serve_authenticates_binds_clusters_and_stores_once() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issuer) = Pki::new(dir.path());
    let a = leaf(
        &issuer,
        "apiserver-a",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let unmapped = leaf(
        &issuer,
        "apiserver-x",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = leaf(
        &ca("another CA"),
        "apiserver-a",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let token_b = "tok-b-0123456789abcdef";
    std::fs::write(
        dir.path().join("tokens.csv"),
        format!("{token_b},vector-b\n"),
    )
    .unwrap();
    let config = dir.path().join("auditlake.toml");
    std::fs::write(
        &config,
        "[serve.clusters]\n\"cn:apiserver-a\" = \"a\"\n\"token:vector-b\" = \"b\"\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let wal = dir.path().join("wal");
    let server = Server::start(
        store.to_str().unwrap(),
        &wal,
        &[
            "--config",
            config.to_str().unwrap(),
            "--tls-cert",
            pki.server_cert.to_str().unwrap(),
            "--tls-key",
            pki.server_key.to_str().unwrap(),
            "--client-ca",
            pki.ca.to_str().unwrap(),
            "--token-file",
            dir.path().join("tokens.csv").to_str().unwrap(),
            "--max-body-mb",
            "1",
            "--flush-interval",
            "1s",
        ],
        &[],
    );
    let url = server.url(true, "/audit");
    let ca_only = client(&pki.ca, None);
    let client_a = client(&pki.ca, Some(&a));
    let rt = rt();
    rt.block_on(async {
        // The apiserver's EventList, with a good certificate: cluster a.
        let r = post(&client_a, &url, event_list(0..5).into_bytes(), &[]).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["accepted"], 5);

        // The same batch twice more (a retry), and gzipped: stored once.
        for _ in 0..2 {
            let r = post(&client_a, &url, event_list(0..5).into_bytes(), &[]).await.unwrap();
            assert_eq!(r.status, 200);
        }
        let z = gzip(event_list(0..5).as_bytes());
        let r = post(&client_a, &url, z, &[("content-encoding", "gzip")]).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);

        // An event that claims another cluster is still labelled by the client's identity.
        let claim = event(5, r#","cluster":"b","annotations":{"cluster":"b"}"#);
        let r = post(&client_a, &url, claim.into_bytes(), &[]).await.unwrap();
        assert_eq!((r.status, r.body["accepted"].as_u64()), (200, Some(1)), "{}", r.body);

        // A certificate from another CA: the handshake fails.
        let e = post(&client(&pki.ca, Some(&stranger)), &url, event_list(100..101).into_bytes(), &[]).await;
        assert!(e.is_err(), "a certificate of another CA was let in");
        // Neither certificate nor token: 401. A wrong token: 401.
        let r = post(&ca_only, &url, event_list(100..101).into_bytes(), &[]).await.unwrap();
        assert_eq!(r.status, 401, "{}", r.body);
        let r = post(&ca_only, &url, event_list(100..101).into_bytes(), &[("authorization", "Bearer tok-b-0123456789abcdeX")]).await.unwrap();
        assert_eq!(r.status, 401);
        // A certificate of the right CA whose identity has no cluster: 403.
        let r = post(&client(&pki.ca, Some(&unmapped)), &url, event_list(100..101).into_bytes(), &[]).await.unwrap();
        assert_eq!(r.status, 403, "{}", r.body);

        // Vector's http sink with a token: newline-delimited, one line broken.
        let bearer = format!("Bearer {token_b}");
        let ndjson = format!("{}\n{}\n{{\"kind\": broken\n{}\n", event(10, ""), event(11, ""), event(12, ""));
        let r = post(&ca_only, &url, ndjson.into_bytes(), &[("authorization", &bearer)]).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!((r.body["accepted"].as_u64(), r.body["rejected"].as_u64()), (Some(3), Some(1)));
        assert_eq!(r.body["rejects"][0]["item"], 2);

        // An EventList with an item that is not an event: the others are stored.
        let list = format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},{{"kind":"Event","auditID":7}},{}]}}"#, event(20, ""), event(21, ""));
        let r = post(&client_a, &url, list.into_bytes(), &[]).await.unwrap();
        assert_eq!((r.status, r.body["accepted"].as_u64(), r.body["rejected"].as_u64()), (200, Some(2), Some(1)), "{}", r.body);

        // Not JSON at all: 400, nothing stored. Too large: 413, raw or inflated.
        let r = post(&client_a, &url, b"this is not json".to_vec(), &[]).await.unwrap();
        assert_eq!(r.status, 400);
        assert!(r.body["error"].as_str().unwrap().contains("not JSON"), "{}", r.body);
        // (curl, which waits for `100 Continue` before a large body, as the Go client can:
        // the receiver refuses it from its Content-Length without reading it.)
        let big = vec![b' '; (1 << 20) + 10];
        std::fs::write(dir.path().join("big.json"), &big).unwrap();
        std::fs::write(dir.path().join("a.crt"), &a.cert).unwrap();
        std::fs::write(dir.path().join("a.key"), &a.key).unwrap();
        let curl = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue", "--cacert"])
            .arg(&pki.ca)
            .arg("--cert")
            .arg(dir.path().join("a.crt"))
            .arg("--key")
            .arg(dir.path().join("a.key"))
            .arg("--data-binary")
            .arg(format!("@{}", dir.path().join("big.json").display()))
            .arg(&url)
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&curl.stdout), "413", "{}", String::from_utf8_lossy(&curl.stderr));
        let r = post(&client_a, &url, gzip(&big), &[("content-encoding", "gzip")]).await.unwrap();
        assert_eq!(r.status, 413, "{}", r.body);

        // Operability.
        let ready = client_a.get(server.url(true, "/readyz")).send().await.unwrap();
        assert_eq!(ready.status().as_u16(), 200);
        let metrics = client_a.get(server.url(true, "/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("auditlake_requests_total{code=\"401\"} 2"), "{metrics}");
        assert!(metrics.contains("auditlake_events_received_total 28"), "{metrics}");
        assert!(metrics.contains("auditlake_ack_latency_seconds_bucket"), "{metrics}");
    });
    // Plain HTTP is refused by the HTTPS listener.
    let plain = rt.block_on(post(
        &plain_client(),
        &server.url(false, "/audit"),
        event_list(0..1).into_bytes(),
        &[],
    ));
    assert!(plain.map(|r| r.status).unwrap_or(400) >= 400);
    server.stop();

    let counts = by_cluster(&store);
    // a: events 0..6 and 20, 21; b: 10, 11, 12. Nothing under any other label.
    assert_eq!(
        counts,
        BTreeMap::from([("a".to_owned(), (8, 8)), ("b".to_owned(), (3, 3))])
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE audit_id LIKE '%000000000100'"
        ),
        0
    );
    // The rejects are in the rejected area, not lost.
    let rejected: Vec<_> = walk(&store.join("_rejected"));
    assert!(!rejected.is_empty(), "no rejects kept");
    assert!(
        std::fs::read_dir(&wal)
            .unwrap()
            .filter_map(|e| e.ok())
            .all(|e| !e.file_name().to_string_lossy().ends_with(".wal")),
        "segments left in the WAL"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn serve_refuses_what_it_cannot_secure() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = Pki::new(dir.path());
    let wal = dir.path().join("wal");
    let store = dir.path().join("store");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--listen", "0.0.0.0:0", "--insecure-http", "--cluster", "x"],
            "loopback",
        ),
        (vec!["--listen", "127.0.0.1:0"], "--tls-cert"),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                pki.server_cert.to_str().unwrap(),
                "--tls-key",
                pki.server_key.to_str().unwrap(),
            ],
            "anyone could write",
        ),
        (
            vec!["--listen", "127.0.0.1:0", "--insecure-http"],
            "--cluster",
        ),
    ];
    for (args, message) in cases {
        let out = bin()
            .arg("--store")
            .arg(&store)
            .arg("serve")
            .arg("--wal")
            .arg(&wal)
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let _ = pki.dir;
}

/// Sends each batch once over plain HTTP, counting acknowledgements in `progress`; returns the
/// acknowledged batches.
fn send_batches(
    url: &str,
    batches: &[std::ops::Range<u64>],
    progress: &AtomicUsize,
    pace: Duration,
) -> BTreeSet<usize> {
    let rt = rt();
    let c = plain_client();
    let mut acked = BTreeSet::new();
    rt.block_on(async {
        for (i, b) in batches.iter().enumerate() {
            tokio::time::sleep(pace).await;
            if let Ok(r) = post(&c, url, event_list(b.clone()).into_bytes(), &[]).await
                && r.status == 200
            {
                acked.insert(i);
                progress.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    acked
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let wal = dir.path().join("wal");
    let port = free_port();
    let args = PLAIN_PROD;
    let batches: Vec<std::ops::Range<u64>> = (0..1000).map(|i| i * 20..i * 20 + 20).collect();
    let server = Server::start_on(port, store.to_str().unwrap(), &wal, &args, &[]);
    let url = server.url(false, "/audit");
    let progress = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (url, batches, progress) = (url.clone(), batches.clone(), Arc::clone(&progress));
        // About 100 batches a second (the apiserver sends at most 10 a second, with bursts of 15).
        std::thread::spawn(move || {
            send_batches(&url, &batches, &progress, Duration::from_millis(10))
        })
    };
    // Kill mid-stream, once a flush has committed some: some batches are committed, some only
    // in the WAL, one maybe half-written.
    while progress.load(Ordering::SeqCst) < 60 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    let acked_before = sender.join().unwrap();
    assert!(
        !acked_before.is_empty() && acked_before.len() < batches.len(),
        "{} acked before the kill",
        acked_before.len()
    );
    let acked_ids: BTreeSet<u64> = acked_before
        .iter()
        .flat_map(|i| batches[*i].clone())
        .collect();

    // Restart on the same WAL: the acknowledged batches are replayed before /readyz is ready.
    let server = Server::start_on(port, store.to_str().unwrap(), &wal, &args, &[]);
    let rt = rt();
    eventually(
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            let url = server.url(false, "/readyz");
            rt.block_on(async {
                let r = plain_client().get(url).send().await;
                r.is_ok_and(|r| r.status().as_u16() == 200)
            })
        },
        || format!("never ready: {}", server.log_text()),
    );
    let stored: BTreeSet<u64> = sql_ndjson(&store, "SELECT audit_id FROM audit_events")
        .iter()
        .map(|r| {
            r["audit_id"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let lost: Vec<_> = acked_ids.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost after the kill, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // The apiserver retries everything not acknowledged, and some acknowledged ones again.
    let rest: Vec<_> = (0..batches.len())
        .filter(|i| !acked_before.contains(i) || i % 7 == 0)
        .map(|i| batches[i].clone())
        .collect();
    let acked = send_batches(&url, &rest, &AtomicUsize::new(0), Duration::ZERO);
    assert_eq!(acked.len(), rest.len(), "{}", server.log_text());
    server.stop();
    assert_eq!(
        by_cluster(&store),
        BTreeMap::from([("prod".to_owned(), (20_000, 20_000))])
    );
}

/// A TCP proxy in front of the S3 server that can be cut (connections refused and dropped).
struct Cut {
    port: u16,
    down: Arc<AtomicBool>,
}

impl Cut {
    fn new(to: u16) -> Cut {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&down);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(a) = conn else { continue };
                if d.load(Ordering::Relaxed) {
                    let _ = a.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(b) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)]
                {
                    let d = Arc::clone(&d);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 64 << 10];
                        loop {
                            if d.load(Ordering::Relaxed) {
                                break;
                            }
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Cut { port, down }
    }
}

#[test]
fn s3_outage_is_absorbed_by_the_wal_and_backpressure_bounds_it() {
    let moto = crate::s3::start_moto();
    let cut = Cut::new(moto.port());
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let env = vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", cut.port)),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ];
    let s3_store = "s3://auditlake/live";
    // A WAL bound of 1 MiB: about 2,000 of these events.
    let server = Server::start(
        s3_store,
        &wal,
        &[&PLAIN_PROD[..], &["--wal-max-mb", "1"]].concat(),
        &env,
    );
    let url = server.url(false, "/audit");
    let rt = rt();
    let c = plain_client();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut next = 0u64;
    let mut send = |acked: &mut BTreeSet<u64>, n: u64| -> Reply {
        let r = rt
            .block_on(post(&c, &url, event_list(next..next + n).into_bytes(), &[]))
            .unwrap();
        if r.status == 200 {
            acked.extend(next..next + n);
            next += n;
        }
        r
    };
    for _ in 0..4 {
        assert_eq!(send(&mut acked, 50).status, 200);
    }
    // S3 goes away: batches are still acknowledged, into the WAL.
    cut.down.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..4 {
        let r = send(&mut acked, 50);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // ... until the WAL holds its bound: then 429 with Retry-After, and nothing grows.
    let mut refused = None;
    for _ in 0..100 {
        let r = send(&mut acked, 100);
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the WAL grew past its bound without a 429");
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.retry_after.is_some());
    let wal_bytes: u64 = walk(&wal)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(wal_bytes <= 1 << 20, "the WAL holds {wal_bytes} bytes");
    // S3 is back: the WAL drains, batches are taken again.
    cut.down.store(false, Ordering::Relaxed);
    eventually(
        Duration::from_secs(120),
        Duration::from_millis(500),
        || send(&mut acked, 50).status == 200,
        || format!("the WAL never drained: {}", server.log_text()),
    );
    server.stop();
    let out = {
        let mut c = bin();
        for (k, v) in &env {
            c.env(k, v);
        }
        c.args([
            "--store",
            s3_store,
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*), count(DISTINCT audit_id) FROM audit_events",
        ]);
        c.output().unwrap()
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        text.lines().nth(1),
        Some(format!("{},{}", acked.len(), acked.len()).as_str()),
        "{text}{}",
        stderr(&out)
    );
}

/// A running `auditlake follow`.
fn follow(store: &Path, state: &Path, log: &Path) -> Child {
    bin()
        .arg("--store")
        .arg(store)
        .arg("follow")
        .arg(log)
        .arg("--state")
        .arg(state)
        .args(["--cluster", "prod", "--flush-interval", "1s"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.with_extension("log")).unwrap())
        .spawn()
        .unwrap()
}

fn append_lines(path: &Path, range: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in range {
        writeln!(f, "{}", event(n, "")).unwrap();
    }
}

/// lumberjack's rotation: rename to `audit-<timestamp>.log`, a new `audit.log`; gzip later.
fn rotate(log: &Path, stamp: &str) -> PathBuf {
    let to = log.with_file_name(format!("audit-{stamp}.log"));
    std::fs::rename(log, &to).unwrap();
    std::fs::File::create(log).unwrap();
    to
}

fn gzip_file(path: &Path) {
    let data = std::fs::read(path).unwrap();
    std::fs::write(path.with_extension("log.gz"), gzip(&data)).unwrap();
    std::fs::remove_file(path).unwrap();
}

fn wait_stored(store: &Path, n: u64) {
    let stored = || {
        if store.join("_delta_log").exists() {
            count(store, "SELECT count(DISTINCT audit_id) FROM audit_events")
        } else {
            0
        }
    };
    eventually(
        Duration::from_secs(60),
        Duration::from_millis(300),
        || stored() >= n,
        || format!("{} of {n} events stored", stored()),
    );
}

/// Polls `done` every `pause` until it holds; fails with `what` after `limit`.
fn eventually(
    limit: Duration,
    pause: Duration,
    mut done: impl FnMut() -> bool,
    what: impl Fn() -> String,
) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{}", what());
        std::thread::sleep(pause);
    }
}

/// A store, the follower's state folder and the log file's path (in a folder of its own).
fn follow_dirs() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (store, state) = (dir.path().join("store"), dir.path().join("state"));
    (dir, store, state, logs.join("audit.log"))
}

#[test]
fn follow_survives_rotation_gzip_and_sigkill() {
    let (_dir, store, state, log) = follow_dirs();
    append_lines(&log, 0..300);
    let mut f = follow(&store, &state, &log);
    wait_stored(&store, 300);
    // A partial last line waits for its end.
    {
        let mut w = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let e = event(300, "");
        w.write_all(&e.as_bytes()[..40]).unwrap();
        w.flush().unwrap();
        std::thread::sleep(Duration::from_millis(800));
        writeln!(w, "{}", &e[40..]).unwrap();
    }
    append_lines(&log, 301..400);
    let old = rotate(&log, "2026-11-30T10-00-00.000");
    append_lines(&log, 400..500);
    std::thread::sleep(Duration::from_millis(700));
    // Killed while (maybe) in the middle of things; meanwhile the old file is gzipped and more
    // is written and rotated.
    f.kill().unwrap();
    f.wait().unwrap();
    gzip_file(&old);
    append_lines(&log, 500..600);
    let old2 = rotate(&log, "2026-11-30T11-00-00.000");
    append_lines(&log, 600..700);
    let mut f = follow(&store, &state, &log);
    std::thread::sleep(Duration::from_millis(1200));
    f.kill().unwrap();
    f.wait().unwrap();
    gzip_file(&old2);
    append_lines(&log, 700..800);
    let mut f = follow(&store, &state, &log);
    wait_stored(&store, 800);
    signal(&f, "TERM");
    let status = wait_for(&mut f, Duration::from_secs(60));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(state.with_extension("log")).unwrap_or_default()
    );
    assert_eq!(
        by_cluster(&store),
        BTreeMap::from([("prod".to_owned(), (800, 800))])
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE audit_id LIKE '%000000000300'"
        ),
        1
    );
}

#[test]
fn serve_follows_a_log_file_on_the_same_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let wal = dir.path().join("wal");
    let log = dir.path().join("audit.log");
    append_lines(&log, 0..100);
    let follow_arg = log.to_str().unwrap().to_owned();
    let server = Server::start(
        store.to_str().unwrap(),
        &wal,
        &[&PLAIN_PROD[..], &["--follow", &follow_arg]].concat(),
        &[],
    );
    let r = rt()
        .block_on(post(
            &plain_client(),
            &server.url(false, "/audit"),
            event_list(100..150).into_bytes(),
            &[],
        ))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    append_lines(&log, 150..200);
    wait_stored(&store, 200);
    server.stop();
    assert_eq!(
        by_cluster(&store),
        BTreeMap::from([("prod".to_owned(), (200, 200))])
    );
    assert!(wal.join("follow/follow.json").exists());
}

/// Two rotations, both gzipped, while the follower sleeps at the end of the first file: it
/// finds the files after it by their content (the inode of a gzipped file is new), not by a
/// list made before.
#[test]
fn follow_finds_files_rotated_and_gzipped_behind_it() {
    let (_dir, store, state, log) = follow_dirs();
    append_lines(&log, 0..100);
    let mut f = follow(&store, &state, &log);
    wait_stored(&store, 100);
    append_lines(&log, 100..150);
    let t1 = rotate(&log, "2026-11-30T10-00-00.000");
    append_lines(&log, 150..250);
    let t2 = rotate(&log, "2026-11-30T11-00-00.000");
    gzip_file(&t1);
    gzip_file(&t2);
    append_lines(&log, 250..300);
    wait_stored(&store, 300);
    signal(&f, "TERM");
    assert!(wait_for(&mut f, Duration::from_secs(60)).success());
    assert_eq!(
        by_cluster(&store),
        BTreeMap::from([("prod".to_owned(), (300, 300))])
    );
}

/// `serve --policy`: a stricter policy than the apiserver's, applied to what it sends. Events at
/// None are not stored, bodies are removed below Request, and /metrics counts both.
#[test]
fn serve_applies_a_stricter_policy_and_counts_what_it_keeps_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let wal = dir.path().join("wal");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  namespaces: [noisy]\n- level: Metadata\n",
    )
    .unwrap();
    // 0..40 in the noisy namespace (dropped), 40..100 recorded at RequestResponse with bodies
    // (kept at Metadata: bodies removed).
    let items: Vec<String> = (0..100)
        .map(|n| {
            let e = event(
                n,
                r#","requestObject":{"kind":"Pod","spec":{"x":1}},"responseObject":{"kind":"Pod"}"#,
            )
            .replace(r#""level":"Metadata""#, r#""level":"RequestResponse""#);
            if n < 40 {
                e.replace("namespaces/default", "namespaces/noisy")
                    .replace(r#""namespace":"default""#, r#""namespace":"noisy""#)
            } else {
                e
            }
        })
        .collect();
    let body = event_list_of(&items);
    let policy_arg = policy.to_str().unwrap().to_owned();
    let server = Server::start(
        store.to_str().unwrap(),
        &wal,
        &[&PLAIN_PROD[..], &["--policy", &policy_arg]].concat(),
        &[],
    );
    let rt = rt();
    let r = rt
        .block_on(post(
            &plain_client(),
            &server.url(false, "/audit"),
            body.into_bytes(),
            &[],
        ))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let metrics_url = server.url(false, "/metrics");
    let metrics = || {
        rt.block_on(async {
            let m = plain_client().get(&metrics_url).send().await.unwrap();
            m.text().await.unwrap()
        })
    };
    eventually(
        Duration::from_secs(60),
        Duration::from_millis(100),
        || metrics().contains("auditlake_events_policy_dropped_total 40"),
        || format!("the policy's drops never counted: {}", server.log_text()),
    );
    let m = metrics();
    assert!(
        m.contains("auditlake_events_policy_slimmed_total 60"),
        "{m}"
    );
    assert!(m.contains("auditlake_events_stored_total 60"), "{m}");
    server.stop();
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events"), 60);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE namespace = 'noisy' OR request_object IS NOT NULL OR response_object IS NOT NULL OR level <> 'Metadata'"
        ),
        0
    );
}

/// Managed providers push too: a Firehose HTTP endpoint delivery (its access key header, its
/// response shape), a Pub/Sub push, an AKS Event Hub document. Stored under the cluster the
/// client's identity maps to, whatever cluster the envelope names.
#[test]
fn serve_takes_provider_envelopes_under_the_clients_cluster() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let wal = dir.path().join("wal");
    let token = "tok-providers-0123456789";
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, format!("{token},pushers\n")).unwrap();
    let config = dir.path().join("auditlake.toml");
    std::fs::write(&config, "[serve.clusters]\n\"token:pushers\" = \"prod\"\n").unwrap();
    let server = Server::start(
        store.to_str().unwrap(),
        &wal,
        &[
            "--config",
            config.to_str().unwrap(),
            "--insecure-http",
            "--token-file",
            tokens.to_str().unwrap(),
            "--flush-interval",
            "1s",
        ],
        &[],
    );
    let url = server.url(false, "/audit");
    let rt = rt();
    let c = plain_client();
    let send = |body: String, headers: &[(&str, &str)]| {
        rt.block_on(post(&c, &url, body.into_bytes(), headers))
            .unwrap()
    };

    // Firehose: records of base64, gzipped subscription documents naming another cluster.
    let data = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1",
        "logGroup": "/aws/eks/other/cluster", "logStream": "kube-apiserver-audit-1",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": "1", "timestamp": 1, "message": event(1, "")},
                      {"id": "2", "timestamp": 1, "message": event(2, "")}]});
    let firehose = serde_json::json!({"requestId": "req-1", "timestamp": 1,
        "records": [{"data": b64(&gzip(data.to_string().as_bytes()))}]});
    let wrong = send(
        firehose.to_string(),
        &[
            ("X-Amz-Firehose-Request-Id", "req-0"),
            ("X-Amz-Firehose-Access-Key", "nope"),
        ],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.body["requestId"], "req-0", "{}", wrong.body);
    assert!(
        wrong.body["errorMessage"].as_str().is_some(),
        "{}",
        wrong.body
    );
    let r = send(
        firehose.to_string(),
        &[
            ("X-Amz-Firehose-Request-Id", "req-1"),
            ("X-Amz-Firehose-Access-Key", token),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["requestId"], "req-1", "{}", r.body);
    assert!(r.body["timestamp"].as_u64().is_some(), "{}", r.body);

    // Pub/Sub push of a GKE LogEntry, and an AKS records document.
    let entry = serde_json::json!({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": "jane@example.com"}, "methodName": "io.k8s.core.v1.pods.list",
        "resourceName": "core/v1/namespaces/default/pods", "serviceName": "k8s.io", "status": {"code": 0}},
        "insertId": "gke-1", "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "gk"}},
        "timestamp": "2026-11-30T01:00:00.000000Z"});
    let push = serde_json::json!({"message": {"data": b64(entry.to_string().as_bytes()), "messageId": "m1"},
        "subscription": "projects/p/subscriptions/audit"});
    let bearer = format!("Bearer {token}");
    let r = send(push.to_string(), &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
    let aks = serde_json::json!({"records": [
        {"category": "kube-audit", "resourceId": "/x/MANAGEDCLUSTERS/OTHER", "properties": {"log": event(3, "")}},
        {"category": "guard", "resourceId": "/x/MANAGEDCLUSTERS/OTHER", "properties": {"log": "guard says hi"}}]});
    let r = send(aks.to_string(), &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{}",
        r.body
    );
    assert!(
        r.body.to_string().contains("category \\\"guard\\\""),
        "{}",
        r.body
    );

    wait_stored(&store, 4);
    server.stop();
    assert_eq!(
        sql_ndjson(
            &store,
            "SELECT source_format, cluster, count(*) AS n FROM audit_events GROUP BY 1, 2 ORDER BY 1"
        ),
        vec![
            serde_json::json!({"source_format": "aks", "cluster": "prod", "n": 1}),
            serde_json::json!({"source_format": "eks", "cluster": "prod", "n": 2}),
            serde_json::json!({"source_format": "gke", "cluster": "prod", "n": 1}),
        ]
    );
}
