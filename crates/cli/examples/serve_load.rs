//! Load on `auditlake serve` the way the apiserver's webhook backend makes it: `EventList`s of
//! 400 events, 10 senders at once, each waiting for its acknowledgement before the next batch,
//! over HTTPS with a client certificate, on loopback, for a bounded time.
//!
//! `cargo run --release --example serve_load -- BINARY STORE_DIR SECONDS [SENDERS]`; run by
//! benches/serve_load.sh. Prints the sustained events/s acknowledged, p50/p99/max latency, the
//! server's RSS each second, and its fsync count and time from /metrics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const BATCH: u64 = 400;

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![eku];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// An event like the generator's: ~1.2 KB of JSON, distinct audit IDs.
fn event(n: u64) -> String {
    let (h, m, s, us) = (
        n / 3_600_000 % 24,
        n / 60_000 % 60,
        n / 1000 % 60,
        n % 1000 * 1000,
    );
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"6a1e{n:08x}-0000-4000-8000-0000{n:08x}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/payments/pods/web-{m}?timeout=30s","verb":"get","user":{{"username":"system:serviceaccount:payments:deployer","uid":"1c5e8b1e-4b43-4a8a-9f0e-2f6f0e7a9d01","groups":["system:serviceaccounts","system:serviceaccounts:payments","system:authenticated"]}},"sourceIPs":["10.12.{}.{}"],"userAgent":"kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46","objectRef":{{"resource":"pods","namespace":"payments","name":"web-{m}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-11-30T{h:02}:{m:02}:{s:02}.{us:06}Z","stageTimestamp":"2026-11-30T{h:02}:{m:02}:{s:02}.{us:06}Z","annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"deployer/payments\" of Role \"deployer\" to ServiceAccount \"deployer/payments\""}}}}"#,
        n % 250,
        n / 250 % 250
    )
}

/// A counter's value in Prometheus text.
fn metric_of(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bin, store, seconds) = (
        PathBuf::from(&args[1]),
        PathBuf::from(&args[2]),
        args[3].parse::<u64>().unwrap(),
    );
    let senders: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let work = store.with_extension("serve-load");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "load CA");
    let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let (scert, skey) = leaf(
        &issuer,
        "auditlake",
        vec!["127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (ccert, ckey) = leaf(
        &issuer,
        "kube-apiserver",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let w = |name: &str, text: &str| {
        let p = work.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (ca, sc, sk) = (
        w("ca.crt", &issuer.pem()),
        w("tls.crt", &scert),
        w("tls.key", &skey),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(&bin)
        .arg("--store")
        .arg(&store)
        .args(["serve", "--listen", &addr, "--cluster", "load"])
        .arg("--wal")
        .arg(work.join("wal"))
        .arg("--tls-cert")
        .arg(&sc)
        .arg("--tls-key")
        .arg(&sk)
        .arg("--client-ca")
        .arg(&ca)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(&addr).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = server.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = make_client(&ca, &ccert, &ckey);
    let url = format!("https://{addr}/audit");
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // When the first batch was refused (the WAL at its bound): from then on the receiver
    // acknowledges as fast as it commits, the sustained figure.
    let first_refusal = Arc::new(AtomicU64::new(u64::MAX));
    let started = Instant::now();
    let mut rss = Vec::new();
    let latencies = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..senders {
            let (client, url, next, acked, failed, stop, first_refusal) = (
                client.clone(),
                url.clone(),
                Arc::clone(&next),
                Arc::clone(&acked),
                Arc::clone(&failed),
                Arc::clone(&stop),
                Arc::clone(&first_refusal),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let first = next.fetch_add(BATCH, Ordering::Relaxed);
                    let items: Vec<String> = (first..first + BATCH).map(event).collect();
                    let body = format!(
                        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                        items.join(",")
                    );
                    let t = Instant::now();
                    match client.post(&url).body(body).send().await {
                        Ok(r) if r.status().as_u16() == 200 => {
                            let _ = r.bytes().await;
                            lat.push((t - started, t.elapsed()));
                            acked.fetch_add(BATCH, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_refusal.fetch_min(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                            let _ = r.bytes().await;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat
            }));
        }
        let mut last = 0;
        for s in 1..=seconds {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + Duration::from_secs(s))).await;
            let a = acked.load(Ordering::Relaxed);
            let stored = match client.get(format!("https://{addr}/metrics")).send().await {
                Ok(r) => metric_of(&r.text().await.unwrap_or_default(), "auditlake_events_stored_total"),
                Err(_) => 0.0,
            };
            rss.push((s, a - last, stored as u64, rss_kib(pid)));
            last = a;
        }
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let secs = started.elapsed().as_secs_f64();
    let metrics = rt.block_on(async {
        client
            .get(format!("https://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let metric = |name: &str| metric_of(&metrics, name);
    let bound_at = first_refusal.load(Ordering::Relaxed);
    let bounded: Vec<Duration> = latencies
        .iter()
        .filter(|(at, _)| at.as_millis() as u64 >= bound_at)
        .map(|(_, l)| *l)
        .collect();
    let mut lat: Vec<Duration> = latencies.iter().map(|(_, l)| *l).collect();
    lat.sort();
    let pct = |lat: &[Duration], p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let total = acked.load(Ordering::Relaxed);
    println!(
        "| second | events acknowledged | events stored (total) | server RSS (MiB) |\n|---:|---:|---:|---:|"
    );
    for (s, n, stored, kib) in &rss {
        println!("| {s} | {n} | {stored} | {:.0} |", *kib as f64 / 1024.0);
    }
    println!();
    println!(
        "senders: {senders} x EventList of {BATCH}; {secs:.1} s; {total} events acknowledged: {:.0} events/s",
        total as f64 / secs
    );
    println!(
        "ack latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} batches; {} refused or failed",
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        lat.len(),
        failed.load(Ordering::Relaxed)
    );
    if bound_at != u64::MAX {
        let from = bound_at as f64 / 1e3;
        let mut b = bounded;
        b.sort();
        let acked_after: u64 = (b.len() as u64) * BATCH;
        let stored_at = |t: f64| {
            rss.iter()
                .find(|(s, ..)| *s as f64 >= t)
                .map_or(0, |(_, _, stored, _)| *stored)
        };
        let (s0, s1) = (from.ceil(), secs.floor());
        println!(
            "sustained, from the first refusal at {from:.1} s (the WAL at its bound): {:.0} events/s \
             acknowledged, {:.0} events/s committed to the store; ack latency p50 {:.1} ms, p99 {:.1} ms",
            acked_after as f64 / (secs - from),
            (stored_at(s1) - stored_at(s0)) as f64 / (s1 - s0).max(1.0),
            pct(&b, 0.50).as_secs_f64() * 1e3,
            pct(&b, 0.99).as_secs_f64() * 1e3,
        );
    } else {
        println!("no batch was refused: the receiver kept up with the senders throughout");
    }
    let fsyncs = metric("auditlake_wal_fsyncs_total");
    let fsync_s = metric("auditlake_wal_fsync_seconds_total");
    println!(
        "fsync: {fsyncs:.0} calls ({:.1} batches each), {:.2} ms each on average, {:.1}% of the run",
        lat.len() as f64 / fsyncs.max(1.0),
        fsync_s * 1e3 / fsyncs.max(1.0),
        fsync_s / secs * 100.0
    );
    println!(
        "flushes: {:.0} committed, {:.0} failed; events stored so far {:.0}",
        metric("auditlake_flushes_total"),
        metric("auditlake_flush_failures_total"),
        metric("auditlake_events_stored_total")
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let _ = Path::new(&work);
}

fn make_client(ca: &Path, cert: &str, key: &str) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}
