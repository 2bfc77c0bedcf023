//! `auditlake follow`: the apiserver's audit log file, followed across rotation.
//!
//! The apiserver writes `audit.log` through lumberjack: on rotation the file is renamed
//! `audit-<timestamp>.log` (gzipped later to `.log.gz` with `--audit-log-compress`) and a new
//! `audit.log` is created. The follower reads whole lines only (it waits at a partial last line),
//! finishes a rotated file before it moves to the new one, and appends what it read to the
//! write-ahead log. Only once a batch is durable there does it write its checkpoint: the file's
//! identity (device, inode, and its first bytes as a fingerprint that survives gzip) and the
//! offset. A restart resumes from the checkpoint, in the live file or in the rotated (even
//! gzipped) file it was reading, then reads every file rotated after it: nothing is skipped, and
//! lines read twice after a crash are exact copies the flush drops.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::Collector;

/// Bytes of a file's beginning kept as its fingerprint.
const HEAD: usize = 256;

#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub path: PathBuf,
    /// Where the checkpoint is kept.
    pub state_dir: PathBuf,
    pub cluster: Option<String>,
    /// How often the end of the file is looked at again.
    pub poll: Duration,
    /// Lines appended to the WAL at most in one batch.
    pub batch_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the checkpoint {path} is unreadable: {message}")]
    State { path: String, message: String },
    #[error("{0}")]
    Wal(#[from] crate::WalError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FollowError + '_ {
    move |source| FollowError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The checkpoint: where the next unread line starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Checkpoint {
    dev: u64,
    ino: u64,
    /// Offset in the file's content (decompressed, for a gzipped rotated file).
    offset: u64,
    /// Hex of the file's first bytes (up to 256) read so far.
    head: String,
    /// The fingerprint of the file finished before this one (to find the next one when this
    /// one was checkpointed before any byte of it was read).
    prev_head: String,
}

use auditlake_store::integrity::hex;

/// The bytes of a checkpoint's hex fingerprint (none when it is not hex).
fn unhex(s: &str) -> Vec<u8> {
    auditlake_store::integrity::unhex(s).unwrap_or_default()
}

/// Whether a file's content (decompressed for `.gz`) begins with `head`.
fn starts_with(p: &Path, head: &[u8]) -> bool {
    first_bytes(p).is_ok_and(|b| b.starts_with(head))
}

/// A file being read.
struct Source {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    dev: u64,
    ino: u64,
    offset: u64,
    head: Vec<u8>,
    /// A rotated file: read to its end, then the next.
    finished: bool,
    /// The partial line at the end of what was read.
    pending: Vec<u8>,
}

impl Source {
    fn open(path: &Path, offset: u64, finished: bool) -> Result<Source, FollowError> {
        let file = File::open(path).map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        let gz = is_gz(path);
        let mut head = first_bytes(path)?;
        let reader: Box<dyn Read + Send> = if gz {
            let mut r = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
            std::io::copy(&mut (&mut r).take(offset), &mut std::io::sink())
                .map_err(io_err(path))?;
            Box::new(r)
        } else {
            let mut file = file;
            file.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
            Box::new(file)
        };
        head.truncate(offset.min(HEAD as u64) as usize);
        Ok(Source {
            path: path.to_path_buf(),
            reader,
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
            head,
            finished: finished || gz,
            pending: Vec::new(),
        })
    }
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The first bytes of a file's content (decompressed for `.gz`).
fn first_bytes(path: &Path) -> Result<Vec<u8>, FollowError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut out = Vec::with_capacity(HEAD);
    let r: Box<dyn Read> = if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // A gzip file still being written can end early: what was read is enough.
    let _ = r.take(HEAD as u64).read_to_end(&mut out);
    Ok(out)
}

/// The rotated files of `path` (`<stem>-<timestamp><.ext>[.gz]`), oldest first.
fn rotated(path: &Path) -> Result<Vec<PathBuf>, FollowError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (stem, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let prefix = format!("{stem}-");
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let Some(n) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let base = n.strip_suffix(".gz").unwrap_or(&n);
        if n.starts_with(&prefix) && base.ends_with(ext) && base.len() > prefix.len() + ext.len() {
            // Timestamps sort as text; a file being gzipped has both names: keep the plain one.
            let key = base.to_owned();
            if n.ends_with(".gz") && out.iter().any(|(k, _)| *k == key) {
                continue;
            }
            out.retain(|(k, p)| !(*k == key && is_gz(p)));
            out.push((key, entry.path()));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

pub struct Follower {
    opts: FollowOptions,
    collector: Collector,
    state_path: PathBuf,
    prev_head: Vec<u8>,
}

impl Follower {
    pub fn new(opts: FollowOptions, collector: Collector) -> Result<Follower, FollowError> {
        std::fs::create_dir_all(&opts.state_dir).map_err(io_err(&opts.state_dir))?;
        let state_path = opts.state_dir.join("follow.json");
        Ok(Follower {
            opts,
            collector,
            state_path,
            prev_head: Vec::new(),
        })
    }

    fn load(&self) -> Result<Option<Checkpoint>, FollowError> {
        match std::fs::read(&self.state_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| FollowError::State {
                    path: self.state_path.display().to_string(),
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&self.state_path)(e)),
        }
    }

    fn save(&self, src: &Source) -> Result<(), FollowError> {
        let c = Checkpoint {
            dev: src.dev,
            ino: src.ino,
            offset: src.offset,
            head: hex(&src.head),
            prev_head: hex(&self.prev_head),
        };
        let tmp = self.state_path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &self.state_path)?;
            File::open(&self.opts.state_dir)?.sync_all()
        };
        write().map_err(io_err(&self.state_path))
    }

    /// Where to start: the checkpoint's file and offset (in the live file, or in a rotated one,
    /// even gzipped since), or the file after the one finished last.
    fn resume(&mut self) -> Result<Source, FollowError> {
        let live = self.opts.path.clone();
        let Some(cp) = self.load()? else {
            return self.open_live();
        };
        self.prev_head = unhex(&cp.prev_head);
        let head = unhex(&cp.head);
        let same_file =
            |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.dev() == cp.dev && m.ino() == cp.ino);
        if same_file(&live) && starts_with(&live, &head) {
            return Source::open(&live, cp.offset, false);
        }
        let rotated = rotated(&live)?;
        let found = rotated.iter().find(|p| {
            (same_file(p) && starts_with(p, &head))
                || (!head.is_empty() && is_gz(p) && starts_with(p, &head))
        });
        if let Some(p) = found {
            tracing::info!(file = %p.display(), offset = cp.offset, "resuming in a rotated file");
            return Source::open(p, cp.offset, true);
        }
        // Checkpointed before the first byte of a file that has since been rotated: the file
        // after the one finished before it.
        if !self.prev_head.is_empty() {
            let prev = self.prev_head.clone();
            return self.open_next(&prev, None);
        }
        tracing::warn!(checkpoint = %self.state_path.display(),
            "the file of the checkpoint is gone (rotated away and deleted?): following the live file from its start");
        self.open_live()
    }

    /// The file after the one whose content begins with `head` (or, for an empty one, has the
    /// inode `ino`): the next rotated file by name, else the live file. Listed afresh each time,
    /// so that files rotated or gzipped meanwhile are found by their content, not their inode.
    fn open_next(&self, head: &[u8], ino: Option<(u64, u64)>) -> Result<Source, FollowError> {
        for attempt in 0..50 {
            let rotated = rotated(&self.opts.path)?;
            let at = rotated.iter().position(|p| {
                if head.is_empty() {
                    ino.is_some_and(|(dev, ino)| {
                        std::fs::metadata(p).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
                    })
                } else {
                    starts_with(p, head)
                }
            });
            let next = match at {
                Some(i) if i + 1 < rotated.len() => Some(rotated[i + 1].clone()),
                _ => None,
            };
            let opened = match &next {
                Some(p) => Source::open(p, 0, true),
                None => Source::open(&self.opts.path, 0, false),
            };
            match opened {
                // Gzipped away between the listing and the open, or the live file between
                // lumberjack's rename and create: look again.
                Err(FollowError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempt < 49 =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
        self.open_live()
    }

    fn open_live(&self) -> Result<Source, FollowError> {
        let mut tries = 0;
        loop {
            match Source::open(&self.opts.path, 0, false) {
                Err(FollowError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// Reads and appends until `stop`; a checkpoint follows each durable batch.
    pub fn run(
        mut self,
        rt: tokio::runtime::Handle,
        stop: watch::Receiver<bool>,
    ) -> Result<(), FollowError> {
        let cluster: Arc<str> = Arc::from(self.opts.cluster.clone().unwrap_or_default());
        // The live file may not exist yet (the apiserver starting): wait for it.
        while !self.opts.path.exists() && self.load()?.is_none() {
            if *stop.borrow() {
                return Ok(());
            }
            std::thread::sleep(self.opts.poll);
        }
        let mut src = self.resume()?;
        self.save(&src)?;
        let mut buf = vec![0u8; self.opts.batch_bytes.max(64 << 10)];
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let n = src.reader.read(&mut buf).map_err(io_err(&src.path))?;
            if n > 0 {
                src.pending.extend_from_slice(&buf[..n]);
                // Whole lines only; the rest waits for its end.
                if let Some(end) = src.pending.iter().rposition(|b| *b == b'\n') {
                    let rest = src.pending.split_off(end + 1);
                    let lines = std::mem::replace(&mut src.pending, rest);
                    self.append(&rt, &cluster, &mut src, lines)?;
                }
                continue;
            }
            // At the end of what is written.
            if src.finished {
                if !src.pending.is_empty() {
                    // A rotated file that ends without a line break: its last line is all there is.
                    let mut lines = std::mem::take(&mut src.pending);
                    lines.push(b'\n');
                    self.append(&rt, &cluster, &mut src, lines)?;
                }
                let (head, ino) = (src.head.clone(), (src.dev, src.ino));
                src = self.open_next(&head, Some(ino))?;
                self.prev_head = head;
                self.save(&src)?;
                continue;
            }
            match std::fs::metadata(&self.opts.path) {
                Ok(m) if m.dev() != src.dev || m.ino() != src.ino => {
                    // Rotated: finish the old file (still open), then the files after it.
                    src.finished = true;
                    tracing::info!(file = %src.path.display(), "rotated; finishing the old file");
                }
                Ok(m) if m.len() < src.offset + src.pending.len() as u64 => {
                    tracing::warn!(file = %src.path.display(), "the file was truncated: reading it from its start");
                    src = self.open_live()?;
                    self.save(&src)?;
                }
                _ => std::thread::sleep(self.opts.poll),
            }
        }
    }

    fn append(
        &mut self,
        rt: &tokio::runtime::Handle,
        cluster: &Arc<str>,
        src: &mut Source,
        lines: Vec<u8>,
    ) -> Result<(), FollowError> {
        let n = lines.len() as u64;
        if src.head.len() < HEAD {
            let take = (HEAD - src.head.len()).min(lines.len());
            src.head.extend_from_slice(&lines[..take]);
        }
        let count = lines.iter().filter(|b| **b == b'\n').count() as u64;
        // Retry while the WAL is full (the store unreachable): the file keeps the lines.
        loop {
            match rt.block_on(
                self.collector
                    .wal
                    .append(Arc::clone(cluster), lines.clone()),
            ) {
                Ok(()) => break,
                Err(crate::WalError::Full { .. }) => std::thread::sleep(Duration::from_secs(1)),
                Err(e) => return Err(e.into()),
            }
        }
        self.collector
            .metrics
            .follow_lines
            .fetch_add(count, Ordering::Relaxed);
        src.offset += n;
        self.save(src)
    }
}
