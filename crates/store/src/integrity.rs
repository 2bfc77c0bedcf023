//! Tamper evidence: a digest in every commit, chained, optionally signed, and `verify`.
//!
//! Every entry of the transaction log carries, in its `commitInfo.auditlake.digest`, the SHA-256
//! of each data file it adds (hashed from the bytes in memory just before the upload: no second
//! read), each file's size, rows and `ts` range, the paths and sizes it removes, the commit's kind
//! and reason, its version, and the SHA-256 of the previous entry's bytes: a chain. With a signing
//! key (Ed25519, `auditlake keygen`), `commitInfo.auditlake.signature` signs the digest.
//!
//! Why in the commit itself rather than a `_digests/` object: the digest then lands atomically
//! with the change it describes (one create-only PUT), so a crash can never leave a commit
//! without its digest or a digest without its commit, and every Delta reader still reads the
//! entry (commitInfo is free-form).
//!
//! [`verify`] replays the chain from version 0: each entry present, in order, its digest matching
//! its own actions and naming the previous entry's hash, and (with a public key) signed by it;
//! then it hashes every live file of the window and lists the data folders for files that no
//! commit added.

use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::log::{Commit, Version};
use crate::{Error, Partition, Result, Store, paths};

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex; None when it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The fingerprint of a public key: the first 16 bytes of the SHA-256 of its 32 bytes, in hex.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..16])
}

/// A private key that signs every digest of this process's commits. Never kept in the store.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

fn key_err(path: &FsPath, e: impl std::fmt::Display) -> Error {
    Error::Key(format!("{}: {e}", path.display()))
}

impl Signer {
    /// Reads a PKCS#8 PEM private key (what `auditlake keygen` writes).
    pub fn from_pem_file(path: &FsPath) -> Result<Signer> {
        let text = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|e| key_err(path, e))?;
        Ok(Signer {
            fingerprint: fingerprint(&key.verifying_key()),
            key,
        })
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

/// A public key that digests are checked against.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    pub fingerprint: String,
}

impl PublicKey {
    /// Reads an SPKI PEM public key (what `auditlake keygen` writes).
    pub fn from_pem_file(path: &FsPath) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
        let key = VerifyingKey::from_public_key_pem(&text).map_err(|e| key_err(path, e))?;
        Ok(PublicKey {
            fingerprint: fingerprint(&key),
            key,
        })
    }
}

/// Writes a new key pair: `<name>.key` (PKCS#8 PEM, mode 0600) and `<name>.pub` (SPKI PEM).
/// Returns the paths and the key's fingerprint.
pub fn keygen(
    dir: &FsPath,
    name: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf, String)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    getrandom(&mut seed)?;
    let key = SigningKey::from_bytes(&seed);
    let private = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| Error::Key(e.to_string()))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| Error::Key(e.to_string()))?;
    std::fs::create_dir_all(dir)?;
    let (kp, pp) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&kp)
        .map_err(|e| key_err(&kp, e))?;
    f.write_all(private.as_bytes())?;
    f.sync_all()?;
    std::fs::write(&pp, public.as_bytes()).map_err(|e| key_err(&pp, e))?;
    Ok((kp, pp, fingerprint(&key.verifying_key())))
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)?;
    Ok(())
}

/// The digest of a commit about to be written as `version`, after the entry whose bytes hash to
/// `prev`.
pub(crate) fn digest(
    store: &Store,
    version: Version,
    prev: Option<&str>,
    actions: &str,
    c: &Commit,
) -> Result<Value> {
    let mut added = Vec::new();
    for f in &c.add {
        added.push(json!({
            "path": store.relative_path(&f.path)?,
            "size": f.size,
            "rows": f.rows,
            "min_ts": f.ts_range.0,
            "max_ts": f.ts_range.1,
            "sha256": f.sha256,
        }));
    }
    let mut removed = Vec::new();
    for f in &c.remove {
        removed.push(json!({
            "path": store.relative_path(&f.meta.location)?,
            "size": f.meta.size,
        }));
    }
    Ok(json!({
        "version": version,
        "prev": prev,
        "actions": actions,
        "kind": c.kind,
        "reason": c.reason,
        "added": added,
        "removed": removed,
    }))
}

/// What the signature of an object other than a log entry (evidence a report kept) covers: its
/// name in the store and the SHA-256 of its bytes, so that a signed object cannot be given
/// another's name.
fn object_message(name: &str, bytes: &[u8]) -> String {
    format!("auditlake object v1\n{name}\n{}", sha256_hex(bytes))
}

/// The signature of an object of the store (`name` relative to its root), as JSON bytes to keep
/// beside it.
pub fn sign_object(signer: &Signer, name: &str, bytes: &[u8]) -> Vec<u8> {
    let sig = signer.key.sign(object_message(name, bytes).as_bytes());
    json!({"key": signer.fingerprint, "ed25519": hex(&sig.to_bytes())})
        .to_string()
        .into_bytes()
}

/// Checks an object's signature ([`sign_object`]) against a public key; the error says what is
/// wrong (another key, or bytes or a name the signature does not cover).
pub fn check_object(
    key: &PublicKey,
    name: &str,
    bytes: &[u8],
    signature: &[u8],
) -> std::result::Result<(), String> {
    let sig: Value = serde_json::from_slice(signature).map_err(|e| format!("signature: {e}"))?;
    let signed_by = sig["key"].as_str().unwrap_or("no key");
    if signed_by != key.fingerprint {
        return Err(format!(
            "signed by key {signed_by}, not by {}",
            key.fingerprint
        ));
    }
    let ok = sig["ed25519"]
        .as_str()
        .and_then(unhex)
        .and_then(|b| Signature::from_slice(&b).ok())
        .is_some_and(|s| {
            key.key
                .verify(object_message(name, bytes).as_bytes(), &s)
                .is_ok()
        });
    if ok {
        Ok(())
    } else {
        Err("its signature does not cover its bytes (altered)".into())
    }
}

/// The signature of a digest: Ed25519 over its JSON text.
pub(crate) fn sign(signer: &Signer, digest: &Value) -> Value {
    let sig = signer.key.sign(digest.to_string().as_bytes());
    json!({"key": signer.fingerprint, "ed25519": hex(&sig.to_bytes())})
}

/// What verification found, one item each.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The log ends before a version known to exist (`--expect-version`, a report's): the
    /// newest entries were deleted, or the store rolled back.
    Truncated {
        expected: Version,
        found: Option<Version>,
    },
    /// A version of the log is missing (deleted from the middle of the chain).
    EntryMissing {
        version: Version,
    },
    /// An entry without a digest (written before digests, or by another writer).
    NoDigest {
        version: Version,
    },
    /// The digest names another version than the entry it is in (renamed or reordered).
    OutOfOrder {
        version: Version,
        says: Option<Version>,
    },
    /// The digest does not name the previous entry's hash: an entry before it was altered,
    /// inserted or removed.
    ChainBroken {
        version: Version,
        expected: Option<String>,
        found: Option<String>,
    },
    /// The digest does not describe the entry's actions (an action added, removed or edited).
    DigestMismatch {
        version: Version,
        detail: String,
    },
    Unsigned {
        version: Version,
    },
    /// Signed by another key, or the signature does not match the digest.
    BadSignature {
        version: Version,
        key: Option<String>,
    },
    /// Entries are signed but no public key was given: nothing about them is proven.
    SignaturesNotChecked {
        entries: u64,
    },
    /// What readers load (checkpoint, `_last_checkpoint`) is not what the chain of entries says.
    SnapshotMismatch {
        detail: String,
    },
    /// A live file whose bytes are not the ones committed.
    FileChanged {
        path: String,
        expected: String,
        found: String,
    },
    FileMissing {
        path: String,
    },
    /// A data file that no commit added (foreign, or written by a writer that died before its
    /// commit; `vacuum` deletes those after the grace period).
    FileNotInLog {
        path: String,
        size: u64,
    },
}

impl Finding {
    pub fn describe(&self) -> String {
        match self {
            Self::Truncated { expected, found } => format!(
                "the log ends at version {}, but version {expected} was recorded: entries were deleted or the store rolled back",
                found.map_or("(none)".to_owned(), |v| v.to_string())
            ),
            Self::EntryMissing { version } => format!("version {version} of the log is missing"),
            Self::NoDigest { version } => format!("version {version} has no digest"),
            Self::OutOfOrder { version, says } => format!(
                "version {version} holds the digest of version {}",
                says.map_or("?".to_owned(), |v| v.to_string())
            ),
            Self::ChainBroken {
                version,
                expected,
                found,
            } => format!(
                "version {version} does not follow the entry before it (its digest names {}, the entry before hashes to {})",
                found.as_deref().unwrap_or("nothing"),
                expected.as_deref().unwrap_or("nothing")
            ),
            Self::DigestMismatch { version, detail } => {
                format!("version {version}: the digest does not match the entry ({detail})")
            }
            Self::Unsigned { version } => format!("version {version} is not signed"),
            Self::BadSignature { version, key } => format!(
                "version {version} is wrongly signed (key {})",
                key.as_deref().unwrap_or("?")
            ),
            Self::SignaturesNotChecked { entries } => format!(
                "{entries} entries are signed, but no public key was given: their signatures are not checked"
            ),
            Self::SnapshotMismatch { detail } => {
                format!("what readers load differs from the log's entries: {detail}")
            }
            Self::FileChanged {
                path,
                expected,
                found,
            } => {
                format!("{path} was changed: SHA-256 {found}, committed {expected}")
            }
            Self::FileMissing { path } => format!("{path} is missing"),
            Self::FileNotInLog { path, size } => {
                format!("{path} ({size} bytes) is in no commit")
            }
        }
    }
}

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Days `[from, to)` whose files are hashed (all when None); the chain is always whole.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub public_key: Option<PublicKey>,
    /// A version known to exist (recorded by an earlier report or verification, kept outside
    /// the store): a log ending before it was truncated.
    pub expect_version: Option<Version>,
}

/// What [`verify`] checked and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The latest version, and how many entries were checked.
    pub version: Option<Version>,
    pub entries: u64,
    pub signed: u64,
    pub key: Option<String>,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Live {
    size: u64,
    rows: Option<u64>,
    sha256: Option<String>,
    partition: Partition,
}

/// One entry as verification reads it.
#[derive(Debug, Default)]
struct Checked {
    digest: Option<Value>,
    /// (path, size) of the entry's add and remove actions.
    adds: Vec<(String, u64)>,
    removes: Vec<(String, u64)>,
    findings: Vec<Finding>,
    /// Some(true) signed by the key, Some(false) signed but not checked, None unsigned.
    signed: Option<bool>,
}

/// Checks one entry on its own: its shape, its digest against its actions, its signature.
fn check_entry(version: Version, bytes: &[u8], key: Option<&PublicKey>) -> Checked {
    let mut c = Checked::default();
    let mismatch = |c: &mut Checked, detail: String| {
        c.findings.push(Finding::DigestMismatch { version, detail })
    };
    let mut info: Option<Value> = None;
    let first_end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(m)) if m.len() == 1 => m,
            _ => {
                mismatch(&mut c, format!("line {} is not one action", i + 1));
                continue;
            }
        };
        let (action, body) = value.into_iter().next().unwrap_or_default();
        match action.as_str() {
            "commitInfo" if i == 0 => info = Some(body),
            "add" | "remove" => {
                let entry = (
                    crate::log::percent_decode(body["path"].as_str().unwrap_or_default()),
                    body["size"].as_u64().unwrap_or(0),
                );
                if action == "add" {
                    c.adds.push(entry);
                } else {
                    c.removes.push(entry);
                }
            }
            "protocol" | "metaData" if version == 0 => {}
            // Columns an older store lacked, added by a commit of their own.
            "metaData"
                if info
                    .as_ref()
                    .is_some_and(|i| i["auditlake"]["kind"] == "schema") => {}
            other => mismatch(&mut c, format!("line {}: a {other} action", i + 1)),
        }
    }
    let Some(digest) = info
        .as_ref()
        .map(|i| i["auditlake"]["digest"].clone())
        .filter(|d| d.is_object())
    else {
        c.findings.push(Finding::NoDigest { version });
        return c;
    };
    let says = digest["version"].as_u64();
    if says != Some(version) {
        c.findings.push(Finding::OutOfOrder { version, says });
    }
    // Every line after the commitInfo, byte for byte.
    if digest["actions"].as_str() != Some(sha256_hex(&bytes[first_end..]).as_str()) {
        mismatch(
            &mut c,
            "the entry's actions are not the ones the digest hashed".into(),
        );
    }
    let listed = |key: &str| -> Vec<(String, u64)> {
        let mut l: Vec<(String, u64)> = digest[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["path"].as_str().unwrap_or_default().to_owned(),
                    f["size"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        l.sort();
        l
    };
    let (mut ea, mut er) = (c.adds.clone(), c.removes.clone());
    ea.sort();
    er.sort();
    if listed("added") != ea {
        mismatch(
            &mut c,
            format!(
                "the entry adds {} file(s), the digest lists others",
                ea.len()
            ),
        );
    }
    if listed("removed") != er {
        mismatch(
            &mut c,
            format!(
                "the entry removes {} file(s), the digest lists others",
                er.len()
            ),
        );
    }
    let signature = info
        .as_ref()
        .map(|i| i["auditlake"]["signature"].clone())
        .filter(|s| s.is_object());
    match (&signature, key) {
        (None, _) => c.findings.push(Finding::Unsigned { version }),
        (Some(sig), Some(pk)) => {
            let ok = sig["ed25519"]
                .as_str()
                .and_then(unhex)
                .and_then(|b| Signature::from_slice(&b).ok())
                .is_some_and(|s| pk.key.verify(digest.to_string().as_bytes(), &s).is_ok());
            if ok {
                c.signed = Some(true);
            } else {
                c.findings.push(Finding::BadSignature {
                    version,
                    key: sig["key"].as_str().map(str::to_owned),
                });
            }
        }
        (Some(_), None) => c.signed = Some(false),
    }
    c.digest = Some(digest);
    c
}

/// Whether a writer may chain its commit onto the entry `bytes` (version `version`): an entry
/// whose digest does not match its own actions, or that is signed by another key than the
/// writer's, was altered after it was written. An entry without a digest (written before
/// digests) or unsigned is chained onto, and `verify` names it.
pub(crate) fn check_before_chaining(
    version: Version,
    bytes: &[u8],
    signer: Option<&Signer>,
) -> std::result::Result<(), String> {
    let key = signer.map(Signer::public_key);
    let c = check_entry(version, bytes, key.as_ref());
    let bad: Vec<String> = c
        .findings
        .iter()
        .filter(|f| !matches!(f, Finding::NoDigest { .. } | Finding::Unsigned { .. }))
        .map(Finding::describe)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

/// The versions of the log's JSON entries, from a listing (not from `_last_checkpoint`, which
/// anyone with write access could point anywhere).
async fn listed_versions(store: &Store) -> Result<Vec<Version>> {
    let dir = store.root.clone().join(crate::log::LOG_DIR);
    let mut out = Vec::new();
    let mut listing = store.object_store.list(Some(&dir));
    while let Some(meta) = listing.try_next().await.map_err(|e| store.err(e))? {
        if let Some(v) = meta
            .location
            .filename()
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<Version>().ok())
        {
            out.push(v);
        }
    }
    out.sort();
    Ok(out)
}

/// Checks the chain of digests and the live files of the window.
pub async fn verify(store: &Store, opts: &VerifyOptions) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        key: opts.public_key.as_ref().map(|k| k.fingerprint.clone()),
        ..Default::default()
    };
    let versions = listed_versions(store).await?;
    let latest = versions.last().copied();
    if let Some(expected) = opts.expect_version
        && latest.is_none_or(|l| l < expected)
    {
        report.findings.push(Finding::Truncated {
            expected,
            found: latest,
        });
    }
    let Some(latest) = latest else {
        return Ok(report);
    };
    report.version = Some(latest);
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut removed: HashMap<String, u64> = HashMap::new();
    let mut prev_hash: Option<String> = None;
    let mut unchecked = 0u64;
    for v in 0..=latest {
        let Some(bytes) = store.read_entry_bytes(v).await? else {
            report.findings.push(Finding::EntryMissing { version: v });
            prev_hash = None;
            continue;
        };
        report.entries += 1;
        let hash = sha256_hex(&bytes);
        let c = check_entry(v, &bytes, opts.public_key.as_ref());
        report.findings.extend(c.findings.iter().cloned());
        match c.signed {
            Some(true) => report.signed += 1,
            Some(false) => unchecked += 1,
            None => {}
        }
        if let Some(digest) = &c.digest {
            let found = digest["prev"].as_str().map(str::to_owned);
            if v > 0 && found != prev_hash {
                report.findings.push(Finding::ChainBroken {
                    version: v,
                    expected: prev_hash.clone(),
                    found,
                });
            }
            // A compaction only rewrites: it may drop exact copies, never add events.
            if digest["kind"] == "compact" {
                let before: Option<u64> = c
                    .removes
                    .iter()
                    .map(|(p, _)| live.get(p).and_then(|l| l.rows))
                    .sum();
                let after: u64 = digest["added"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["rows"].as_u64())
                    .sum();
                if let Some(before) = before
                    && after > before
                {
                    report.findings.push(Finding::DigestMismatch {
                        version: v,
                        detail: format!("a compaction of {before} events wrote {after}"),
                    });
                }
            }
        }
        for (p, size) in &c.removes {
            live.remove(p);
            removed.insert(p.clone(), *size);
        }
        let hashed: HashMap<String, &Value> = c
            .digest
            .as_ref()
            .and_then(|d| d["added"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["path"].as_str()?.to_owned(), f)))
            .collect();
        for (p, size) in &c.adds {
            let Some(partition) = partition_of(p) else {
                continue;
            };
            let f = hashed.get(p);
            live.insert(
                p.clone(),
                Live {
                    size: *size,
                    rows: f.and_then(|f| f["rows"].as_u64()),
                    sha256: f.and_then(|f| f["sha256"].as_str().map(str::to_owned)),
                    partition,
                },
            );
        }
        prev_hash = Some(hash);
    }
    if unchecked > 0 {
        report
            .findings
            .push(Finding::SignaturesNotChecked { entries: unchecked });
    }
    // What readers load (delta-rs: the last checkpoint and the entries after it) must be the
    // file set the entries say.
    match store.snapshot(None).await {
        Ok(snap) => {
            let loaded: HashMap<String, u64> = snap
                .files
                .iter()
                .filter_map(|f| {
                    Some((paths::relative(&store.root, &f.meta.location)?, f.meta.size))
                })
                .collect();
            if snap.version != Some(latest) {
                report.findings.push(Finding::SnapshotMismatch {
                    detail: format!(
                        "readers load version {}, the log ends at {latest}",
                        snap.version.map_or("(none)".to_owned(), |v| v.to_string())
                    ),
                });
            }
            let mut extra: Vec<&String> =
                loaded.keys().filter(|p| !live.contains_key(*p)).collect();
            let mut lost: Vec<&String> = live.keys().filter(|p| !loaded.contains_key(*p)).collect();
            extra.sort();
            lost.sort();
            if !extra.is_empty() || !lost.is_empty() {
                report.findings.push(Finding::SnapshotMismatch {
                    detail: format!(
                        "readers see {} file(s) the entries do not hold ({}) and miss {} ({})",
                        extra.len(),
                        extra
                            .iter()
                            .take(3)
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        lost.len(),
                        lost.iter()
                            .take(3)
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        Err(e) => report.findings.push(Finding::SnapshotMismatch {
            detail: format!("the table cannot be loaded: {e}"),
        }),
    }
    let in_window = |p: &Partition| {
        opts.from.is_none_or(|f| p.end() > f) && opts.to.is_none_or(|t| p.start() < t)
    };
    // Every live file of the window, hashed.
    let mut files: BTreeMap<&String, &Live> = BTreeMap::new();
    for (p, l) in &live {
        if in_window(&l.partition) {
            files.insert(p, l);
        }
    }
    for (rel, l) in files {
        let path = paths::from_relative(&store.root, rel);
        match store.get_bytes(&path).await {
            Ok(bytes) => {
                report.files_hashed += 1;
                report.bytes_hashed += bytes.len() as u64;
                let found = sha256_hex(&bytes);
                match &l.sha256 {
                    Some(expected) if *expected != found => {
                        report.findings.push(Finding::FileChanged {
                            path: rel.clone(),
                            expected: expected.clone(),
                            found,
                        })
                    }
                    None if bytes.len() as u64 != l.size => {
                        report.findings.push(Finding::FileChanged {
                            path: rel.clone(),
                            expected: format!("{} bytes", l.size),
                            found: format!("{} bytes", bytes.len()),
                        })
                    }
                    _ => {}
                }
            }
            Err(e) if crate::is_not_found_error(&e) => report
                .findings
                .push(Finding::FileMissing { path: rel.clone() }),
            Err(e) => return Err(e),
        }
    }
    // Data files that no commit added.
    let mut listing = store.object_store.list(Some(&store.root));
    while let Some(meta) = listing.try_next().await.map_err(|e| store.err(e))? {
        let Some(rel) = paths::relative(&store.root, &meta.location) else {
            continue;
        };
        if !rel.starts_with("date=") || !rel.ends_with(".parquet") {
            continue;
        }
        let Some(partition) = partition_of(&rel) else {
            continue;
        };
        if !in_window(&partition) || live.contains_key(&rel) || removed.contains_key(&rel) {
            continue;
        }
        report.findings.push(Finding::FileNotInLog {
            path: rel,
            size: meta.size,
        });
    }
    report.findings.sort();
    report.findings.dedup();
    Ok(report)
}

fn partition_of(rel: &str) -> Option<Partition> {
    Partition::parse(rel.split('/').next()?)
}
