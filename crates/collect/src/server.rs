//! `auditlake serve`: the receiver for the apiserver's webhook backend and log shippers.
//!
//! HTTP/1.1 over rustls (or plain HTTP on a loopback address for tests). `POST /audit` takes an
//! `EventList`, an `Event`, a JSON array or newline-delimited events, gzip or not, and answers 200
//! only once the batch is fsync'd in the write-ahead log. Each client is authenticated (client
//! certificate against `--client-ca`, or a bearer token of the token file) and its identity picks
//! the `cluster` label of what it sends: no client can write under another's label.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auditlake_model::DecodeOptions;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::Collector;
use crate::body::{BodyError, decode_content, parse_body};
use crate::wal::WalError;

/// The longest a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections open at once, at most: beyond, new ones are closed at once.
pub const MAX_CONNECTIONS: usize = 4096;

/// How the receiver listens and whom it lets in.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `None`: plain HTTP (`--insecure-http`, loopback only).
    pub tls: Option<TlsFiles>,
    /// Bearer tokens and the identity each stands for.
    pub tokens: Vec<(String, String)>,
    /// Identity (`cn:<certificate subject CN>` or `token:<name in the token file>`) -> cluster
    /// label.
    pub clusters: HashMap<String, String>,
    /// The label of any authenticated client without an entry in `clusters`.
    pub default_cluster: Option<String>,
    /// Largest body taken, compressed or not (413 beyond).
    pub max_body_bytes: usize,
    /// Requests read and parsed at once (429 beyond): bounds memory with the body size.
    pub max_inflight: usize,
    pub decode: DecodeOptions,
    /// What bodies are read as (`--format`), as the flush's ingest reads them.
    pub format: auditlake_ingest::Format,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a token file: one `token,name` per line (the first two columns of the apiserver's
/// static token file); blank lines and `#` comments are skipped.
pub fn read_token_file(path: &Path) -> Result<Vec<(String, String)>, ServeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServeError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split(',').map(|c| c.trim().trim_matches('"'));
        let (Some(token), Some(name)) = (cols.next(), cols.next()) else {
            return Err(ServeError::Config(format!(
                "{}:{}: expected `token,name`",
                path.display(),
                i + 1
            )));
        };
        if token.len() < 16 || name.is_empty() {
            return Err(ServeError::Config(format!(
                "{}:{}: a token must have at least 16 characters and a name",
                path.display(),
                i + 1
            )));
        }
        out.push((token.to_owned(), name.to_owned()));
    }
    if out.is_empty() {
        return Err(ServeError::Config(format!(
            "{}: no tokens in the token file",
            path.display()
        )));
    }
    Ok(out)
}

fn load_tls(files: &TlsFiles, tokens_too: bool) -> Result<rustls::ServerConfig, ServeError> {
    let read_err = |p: &Path, e: &dyn std::fmt::Display| ServeError::File {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| read_err(&files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(read_err(&files.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| read_err(&files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| read_err(ca, &e))? {
                roots
                    .add(c.map_err(|e| read_err(ca, &e))?)
                    .map_err(|e| read_err(ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            // With tokens too, a client without a certificate may still come in with a token.
            let verifier = if tokens_too {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| read_err(ca, &e))?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| read_err(&files.cert, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The subject CN of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// Constant-time equality of two byte strings (the length is not hidden).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct State {
    opts: ServeOptions,
    collector: Collector,
    inflight: Arc<Semaphore>,
    shutting_down: AtomicBool,
}

impl State {
    /// The cluster label for a request, or the response refusing it.
    fn cluster_for(
        &self,
        cert_cn: Option<&str>,
        req: &Request<Incoming>,
    ) -> Result<Arc<str>, (StatusCode, String)> {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            // Firehose's HTTP endpoint delivery sends its access key in a header of its own.
            .or_else(|| {
                req.headers()
                    .get(FIREHOSE_ACCESS_KEY)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            });
        // Certificate and token identities live apart (`cn:…`, `token:…`), so that a
        // certificate whose CN is a token's name is not that token's client.
        let identity: Option<String> = match (cert_cn, bearer) {
            (Some(cn), _) => Some(format!("cn:{cn}")),
            (None, Some(token)) => {
                let mut found = None;
                for (t, name) in &self.opts.tokens {
                    if same(t.as_bytes(), token.as_bytes()) {
                        found = Some(name.clone());
                    }
                }
                match found {
                    Some(name) => Some(format!("token:{name}")),
                    None => {
                        return Err((StatusCode::UNAUTHORIZED, "unknown bearer token".into()));
                    }
                }
            }
            (None, None) => None,
        };
        let identity = match identity {
            Some(i) => i,
            // Plain HTTP on loopback without tokens: the one-cluster test setup.
            None if self.opts.tls.is_none() && self.opts.tokens.is_empty() => {
                return self.opts.default_cluster.as_deref().map(Arc::from).ok_or((
                    StatusCode::FORBIDDEN,
                    "no --cluster for anonymous clients".into(),
                ));
            }
            None => {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "a client certificate or a bearer token is required".into(),
                ));
            }
        };
        self.opts
            .clusters
            .get(&identity)
            .or(self.opts.default_cluster.as_ref())
            .map(|c| Arc::from(c.as_str()))
            .ok_or((
                StatusCode::FORBIDDEN,
                format!("the identity {identity:?} is not mapped to a cluster"),
            ))
    }
}

fn json_response(code: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{value}\n"))));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(code: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut r = json_response(code, serde_json::json!({ "error": message }));
    if code == StatusCode::TOO_MANY_REQUESTS || code == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    }
    r
}

async fn handle(
    state: Arc<State>,
    cert_cn: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let response = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if state.collector.ready() && !state.shutting_down.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "replaying the write-ahead log\n",
                )
            }
        }
        (&Method::GET, "/metrics") => {
            let mut r = text(
                StatusCode::OK,
                &state
                    .collector
                    .metrics
                    .render(&state.collector.wal.stats, state.collector.ready()),
            );
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::POST, "/audit") => {
            let r = receive(&state, cert_cn.as_deref(), req).await;
            if r.status() == StatusCode::OK {
                state
                    .collector
                    .metrics
                    .ack_seconds
                    .observe(started.elapsed());
            }
            r
        }
        (_, "/audit" | "/healthz" | "/readyz" | "/metrics") => {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error_response(StatusCode::NOT_FOUND, "no such path: POST to /audit"),
    };
    state.collector.metrics.request(response.status().as_u16());
    Ok(response)
}

fn text(code: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = code;
    r
}

/// The headers of Amazon Data Firehose's HTTP endpoint delivery: the access key configured on
/// the stream, and the request's ID, which the response must give back.
const FIREHOSE_ACCESS_KEY: &str = "x-amz-firehose-access-key";
const FIREHOSE_REQUEST_ID: &str = "x-amz-firehose-request-id";

/// A response as Firehose's HTTP endpoint delivery requires it: `{"requestId", "timestamp"}`,
/// with `errorMessage` when it failed (Firehose then retries the records).
async fn firehose_response(request_id: &str, r: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt as _;
    let status = r.status();
    let body = r
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut doc = serde_json::json!({
        "requestId": request_id,
        "timestamp": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    });
    if status != StatusCode::OK {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        doc["errorMessage"] = serde_json::Value::String(message);
    }
    json_response(status, doc)
}

async fn receive(
    state: &State,
    cert_cn: Option<&str>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let firehose = req
        .headers()
        .get(FIREHOSE_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let r = receive_batch(state, cert_cn, req).await;
    match firehose {
        Some(id) => firehose_response(&id, r).await,
        None => r,
    }
}

async fn receive_batch(
    state: &State,
    cert_cn: Option<&str>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let cluster = match state.cluster_for(cert_cn, &req) {
        Ok(c) => c,
        Err((code, msg)) => {
            let mut r = error_response(code, &msg);
            if code == StatusCode::UNAUTHORIZED {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return r;
        }
    };
    if state.shutting_down.load(Ordering::Relaxed) {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let limit = state.opts.max_body_bytes;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body ({len} bytes) is over the limit of {limit} bytes"),
        );
    }
    let wal = &state.collector.wal;
    if wal.would_overflow(0, state.collector.opts.max_wal_bytes) {
        return error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "the write-ahead log is full: the store is behind or unreachable; retry later",
        );
    }
    // The permit goes with the parse into its thread: a client that hangs up does not free it
    // while the parse still holds the body.
    let Ok(permit) = Arc::clone(&state.inflight).try_acquire_owned() else {
        return error_response(StatusCode::TOO_MANY_REQUESTS, "too many requests at once");
    };
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A body trickled in byte by byte would hold its slot for ever: it has a minute.
    let body = tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.into_body(), limit).collect());
    let Ok(body) = body.await else {
        return error_response(
            StatusCode::REQUEST_TIMEOUT,
            &format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
        );
    };
    let raw = match body {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the body is over the limit of {limit} bytes"),
                );
            }
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    let decode = state.opts.decode.clone();
    let format = state.opts.format;
    let parsed = tokio::task::spawn_blocking(move || {
        let body = decode_content(&raw, encoding.as_deref(), limit)?;
        parse_body(&body, &decode, format).map(|p| (p, permit))
    })
    .await;
    let (parsed, _permit) = match parsed {
        Ok(Ok(p)) => p,
        Ok(Err(e @ BodyError::TooLarge { .. })) => {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
        }
        Ok(Err(e @ BodyError::Encoding(_))) => {
            return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e.to_string());
        }
        Ok(Err(e)) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (accepted, rejected) = (parsed.accepted, parsed.rejected);
    let rejects = serde_json::to_value(&parsed.first_rejects).unwrap_or_default();
    match state.collector.append(cluster, parsed).await {
        Ok(()) => json_response(
            StatusCode::OK,
            serde_json::json!({ "accepted": accepted, "rejected": rejected, "rejects": rejects }),
        ),
        Err(e @ WalError::Full { .. }) => {
            error_response(StatusCode::TOO_MANY_REQUESTS, &e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "write-ahead log append failed");
            error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// Checks the options: who may connect and how.
pub fn check(opts: &ServeOptions, insecure_http: bool) -> Result<(), ServeError> {
    match (&opts.tls, insecure_http) {
        (Some(_), true) => Err(ServeError::Config(
            "--insecure-http and --tls-cert exclude each other".into(),
        )),
        (None, false) => Err(ServeError::Config(
            "serve needs --tls-cert and --tls-key (or --insecure-http on a loopback address, for tests)".into(),
        )),
        (None, true) if !opts.listen.ip().is_loopback() => Err(ServeError::Config(format!(
            "--insecure-http only listens on a loopback address, not {}",
            opts.listen
        ))),
        (Some(t), false) if t.client_ca.is_none() && opts.tokens.is_empty() => {
            Err(ServeError::Config(
                "anyone could write: give --client-ca (client certificates) and/or --token-file".into(),
            ))
        }
        (None, true) if opts.tokens.is_empty() && opts.default_cluster.is_none() => {
            Err(ServeError::Config("--insecure-http without tokens needs --cluster".into()))
        }
        _ => Ok(()),
    }
}

/// Serves until `stop` fires: then stops accepting, lets requests in progress finish (their
/// batches are in the WAL when they are answered) and returns.
pub async fn serve(
    opts: ServeOptions,
    collector: Collector,
    mut stop: watch::Receiver<bool>,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), ServeError> {
    let tls = match &opts.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(load_tls(
            files,
            !opts.tokens.is_empty(),
        )?))),
        None => None,
    };
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: opts.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: opts.listen,
        source,
    })?;
    tracing::info!(address = %local, tls = tls.is_some(), "listening");
    if let Some(b) = bound {
        let _ = b.send(local);
    }
    let state = Arc::new(State {
        inflight: Arc::new(Semaphore::new(opts.max_inflight.max(1))),
        opts,
        collector,
        shutting_down: AtomicBool::new(false),
    });
    let open = Arc::new(AtomicUsize::new(0));
    let (conn_stop_tx, conn_stop) = watch::channel(false);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "too many connections: closing a new one");
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let open = Arc::clone(&open);
        let mut conn_stop = conn_stop.clone();
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .keep_alive(true);
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            let cn: Option<Arc<str>> = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| common_name(c.as_ref()))
                                .map(Arc::from);
                            let st = Arc::clone(&state);
                            let svc = hyper::service::service_fn(move |req| {
                                handle(Arc::clone(&st), cn.clone(), req)
                            });
                            let conn = http.serve_connection(TokioIo::new(stream), svc);
                            drive(conn, &mut conn_stop).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => {
                    let st = Arc::clone(&state);
                    let svc =
                        hyper::service::service_fn(move |req| handle(Arc::clone(&st), None, req));
                    let conn = http.serve_connection(TokioIo::new(tcp), svc);
                    drive(conn, &mut conn_stop).await;
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    tracing::info!("stopping: no new connections; finishing requests in progress");
    state.shutting_down.store(true, Ordering::Relaxed);
    let _ = conn_stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs a connection until it ends, or until `stop`: then lets the request in progress finish.
async fn drive<I, S>(
    conn: hyper::server::conn::http1::Connection<I, S>,
    stop: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Full<Bytes>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}
