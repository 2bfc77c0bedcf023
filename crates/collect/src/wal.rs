//! The write-ahead log: what was acknowledged and is not yet committed to the store.
//!
//! A folder of segments `<seq>.wal`, numbered in order. A segment is a run of frames
//! `[len u32][crc32 u32][cluster len u16][cluster][payload]` (little-endian; the CRC covers
//! the length and everything after the CRC), one per batch, the payload being the batch's items as JSON lines.
//! One thread appends: it takes every batch waiting, writes their frames, calls `fdatasync` once
//! for all of them (group commit) and only then answers each, so an acknowledgement always means
//! "on disk". A segment is sealed when it reaches the flush size or the flush timer fires; the
//! flusher commits sealed segments to the store in order and deletes each once all its events
//! are committed. At start-up every segment found is sealed and flushed first (replay).
//!
//! A crash can leave the last frame of the newest segment half-written: that batch was never
//! acknowledged, and reading stops there. Anywhere else (a segment sealed normally, a bad frame
//! with data after it) a bad frame is corruption: the frames before it are flushed, and the
//! segment is kept as `<seq>.wal.corrupt` for the operator (logged and counted).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc, oneshot};

const HEADER: usize = 10;
/// Batches (or bytes) written before one fsync, at most.
const GROUP_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("the write-ahead log is full ({bytes} bytes waiting for the store, bound {bound})")]
    Full { bytes: u64, bound: u64 },
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the write-ahead log {0} is in use by another process")]
    Locked(String),
    #[error("the write-ahead log is shut down")]
    Closed,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A sealed segment, waiting for the flusher.
#[derive(Debug, Clone)]
pub struct Segment {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// Whether its last frame may be half-written without that being corruption: the newest
    /// segment a killed process left, or one sealed after a failed write.
    pub may_be_torn: bool,
}

/// The batches of a segment, by cluster label, as read back.
#[derive(Debug, Default)]
pub struct SegmentData {
    /// Cluster label ("" for none) -> the JSON lines of every batch, in order.
    pub by_cluster: BTreeMap<String, Vec<u8>>,
    pub frames: u64,
    /// Set when a bad frame had data after it (corruption, not a torn tail).
    pub corrupt_at: Option<u64>,
    /// Set when the segment ends in a half-written frame (a batch never acknowledged).
    pub torn_at: Option<u64>,
}

/// Reads a segment's frames, stopping at a torn or corrupt one.
pub fn read_segment(path: &Path) -> Result<SegmentData, WalError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    let mut out = SegmentData::default();
    let mut at = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        let bad = |out: &mut SegmentData, end: usize| {
            if end >= data.len() {
                out.torn_at = Some(at as u64);
            } else {
                out.corrupt_at = Some(at as u64);
            }
        };
        if rest.len() < HEADER {
            bad(&mut out, data.len());
            break;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
        let clen = u16::from_le_bytes(rest[8..10].try_into().unwrap_or_default()) as usize;
        let end = HEADER + clen + len;
        if rest.len() < end {
            bad(&mut out, data.len());
            break;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&rest[0..4]);
        h.update(&rest[8..end]);
        if h.finalize() != crc {
            bad(&mut out, at + end);
            break;
        }
        let cluster = String::from_utf8_lossy(&rest[HEADER..HEADER + clen]).into_owned();
        out.by_cluster
            .entry(cluster)
            .or_default()
            .extend_from_slice(&rest[HEADER + clen..end]);
        out.frames += 1;
        at += end;
    }
    Ok(out)
}

fn frame(cluster: &str, payload: &[u8], out: &mut Vec<u8>) {
    let c = cluster.as_bytes();
    let c = &c[..c.len().min(u16::MAX as usize)];
    let mut h = crc32fast::Hasher::new();
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(&(c.len() as u16).to_le_bytes());
    h.update(c);
    h.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&(c.len() as u16).to_le_bytes());
    out.extend_from_slice(c);
    out.extend_from_slice(payload);
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// What the WAL holds, shared with the flusher and the metrics.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Bytes in segments not yet deleted.
    pub bytes: AtomicU64,
    pub segments: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Microseconds spent in fsync, in total.
    pub fsync_micros: AtomicU64,
    /// When the first batch of each segment not yet deleted was written.
    pub first_write: Mutex<BTreeMap<u64, SystemTime>>,
}

impl WalStats {
    /// Age of the oldest acknowledged batch not yet committed.
    pub fn oldest_age(&self) -> Option<Duration> {
        let first = self.first_write.lock().ok()?;
        let t = first.values().next()?;
        Some(SystemTime::now().duration_since(*t).unwrap_or_default())
    }
}

/// The sealed segments, oldest first, and a bell for the flusher.
#[derive(Debug, Default)]
pub struct Sealed {
    pub queue: Mutex<std::collections::VecDeque<Segment>>,
    pub bell: Notify,
}

enum Msg {
    Append {
        cluster: Arc<str>,
        payload: Vec<u8>,
        done: oneshot::Sender<Result<(), WalError>>,
    },
    Seal(oneshot::Sender<()>),
}

/// The appending side of the WAL; cheap to clone.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Msg>,
    pub stats: Arc<WalStats>,
    pub sealed: Arc<Sealed>,
    pub dir: PathBuf,
}

pub struct WalOptions {
    pub dir: PathBuf,
    /// A segment is sealed at this size.
    pub segment_bytes: u64,
    /// Batches are refused once the segments not yet committed hold this much.
    pub max_bytes: u64,
}

impl Wal {
    /// Opens (creates) the WAL folder, locks it, seals what a previous run left (replay) and
    /// starts the appending thread.
    pub fn open(opts: WalOptions) -> Result<(Wal, std::thread::JoinHandle<()>), WalError> {
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(WalError::Locked(dir.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let stats = Arc::new(WalStats::default());
        let sealed = Arc::new(Sealed::default());
        let mut found: Vec<(u64, PathBuf, u64)> = Vec::new();
        let mut max_seq = 0;
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            // Quarantined segments keep their numbers: a new segment never takes one.
            if let Some(seq) = name
                .strip_suffix(".wal.corrupt")
                .and_then(|n| n.parse::<u64>().ok())
            {
                max_seq = max_seq.max(seq);
            }
            let Some(seq) = name
                .strip_suffix(".wal")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry.metadata().map_err(io_err(&entry.path()))?.len();
            found.push((seq, entry.path(), len));
        }
        found.sort();
        let newest = found.last().map(|f| f.0);
        let next_seq = found.last().map_or(0, |f| f.0).max(max_seq) + 1;
        {
            let mut q = sealed.queue.lock().map_err(|_| WalError::Closed)?;
            let mut first = stats.first_write.lock().map_err(|_| WalError::Closed)?;
            for (seq, path, bytes) in found {
                let mtime = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| SystemTime::now());
                first.insert(seq, mtime);
                stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                stats.segments.fetch_add(1, Ordering::Relaxed);
                q.push_back(Segment {
                    seq,
                    path,
                    bytes,
                    may_be_torn: Some(seq) == newest,
                });
            }
        }
        let (tx, rx) = mpsc::channel(4096);
        let wal = Wal {
            tx,
            stats: Arc::clone(&stats),
            sealed: Arc::clone(&sealed),
            dir: dir.clone(),
        };
        let mut appender = Appender {
            dir,
            opts,
            stats,
            sealed,
            current: None,
            next_seq,
            torn: false,
            _lock: lock,
        };
        let handle = std::thread::Builder::new()
            .name("wal-append".into())
            .spawn(move || appender.run(rx))
            .map_err(io_err(&wal.dir))?;
        Ok((wal, handle))
    }

    /// Appends one batch; returns once it is on disk.
    pub async fn append(&self, cluster: Arc<str>, payload: Vec<u8>) -> Result<(), WalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Msg::Append {
                cluster,
                payload,
                done,
            })
            .await
            .map_err(|_| WalError::Closed)?;
        rx.await.map_err(|_| WalError::Closed)?
    }

    /// Seals the current segment (if it holds anything) for the flusher.
    pub async fn seal(&self) -> Result<(), WalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Msg::Seal(done))
            .await
            .map_err(|_| WalError::Closed)?;
        rx.await.map_err(|_| WalError::Closed)
    }

    /// Whether a batch of `n` more bytes would pass the bound.
    pub fn would_overflow(&self, n: u64, bound: u64) -> bool {
        self.stats.bytes.load(Ordering::Relaxed) + n > bound
    }
}

struct Current {
    seq: u64,
    path: PathBuf,
    file: File,
    bytes: u64,
}

struct Appender {
    dir: PathBuf,
    opts: WalOptions,
    stats: Arc<WalStats>,
    sealed: Arc<Sealed>,
    current: Option<Current>,
    next_seq: u64,
    /// The current segment saw a failed write (its last frame may be partial).
    torn: bool,
    _lock: File,
}

impl Appender {
    fn run(&mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut buf = Vec::new();
        let mut waiting: Vec<oneshot::Sender<Result<(), WalError>>> = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut msgs = vec![first];
            let mut size = 0usize;
            while size < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(m) => {
                        if let Msg::Append { payload, .. } = &m {
                            size += payload.len();
                        }
                        msgs.push(m);
                    }
                    Err(_) => break,
                }
            }
            let mut seals = Vec::new();
            buf.clear();
            for m in msgs {
                match m {
                    Msg::Append {
                        cluster,
                        payload,
                        done,
                    } => {
                        let bytes = self.stats.bytes.load(Ordering::Relaxed) + buf.len() as u64;
                        if bytes + payload.len() as u64 > self.opts.max_bytes {
                            let _ = done.send(Err(WalError::Full {
                                bytes,
                                bound: self.opts.max_bytes,
                            }));
                            continue;
                        }
                        frame(&cluster, &payload, &mut buf);
                        waiting.push(done);
                    }
                    Msg::Seal(done) => seals.push(done),
                }
            }
            let result = if buf.is_empty() {
                Ok(())
            } else {
                self.write(&buf)
            };
            for done in waiting.drain(..) {
                let _ = done.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(WalError::Io {
                        path: self.dir.display().to_string(),
                        source: std::io::Error::other(e.to_string()),
                    }),
                });
            }
            if let Err(e) = &result {
                tracing::error!(error = %e, "write-ahead log append failed");
                // A failed write may have left a partial frame: start a new segment.
                self.torn = true;
                self.seal_current();
            }
            let full = self
                .current
                .as_ref()
                .is_some_and(|c| c.bytes >= self.opts.segment_bytes);
            if full || !seals.is_empty() {
                self.seal_current();
            }
            for s in seals {
                let _ = s.send(());
            }
        }
        self.seal_current();
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), WalError> {
        if self.current.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let path = segment_path(&self.dir, seq);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            if let Ok(mut f) = self.stats.first_write.lock() {
                f.insert(seq, SystemTime::now());
            }
            self.stats.segments.fetch_add(1, Ordering::Relaxed);
            self.current = Some(Current {
                seq,
                path,
                file,
                bytes: 0,
            });
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(WalError::Closed);
        };
        cur.file.write_all(buf).map_err(io_err(&cur.path))?;
        let started = std::time::Instant::now();
        cur.file.sync_data().map_err(io_err(&cur.path))?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.stats
            .fsync_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        cur.bytes += buf.len() as u64;
        self.stats
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn seal_current(&mut self) {
        let Some(cur) = self.current.take() else {
            return;
        };
        if let Ok(mut q) = self.sealed.queue.lock() {
            q.push_back(Segment {
                seq: cur.seq,
                path: cur.path,
                bytes: cur.bytes,
                may_be_torn: std::mem::take(&mut self.torn),
            });
        }
        self.sealed.bell.notify_one();
    }
}

/// Deletes a flushed segment and forgets it.
pub fn delete_segment(dir: &Path, stats: &WalStats, seg: &Segment) -> Result<(), WalError> {
    std::fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
    sync_dir(dir)?;
    forget(stats, seg);
    Ok(())
}

/// Keeps a corrupt segment aside (`.corrupt`) once its good frames are flushed.
pub fn quarantine_segment(
    dir: &Path,
    stats: &WalStats,
    seg: &Segment,
) -> Result<PathBuf, WalError> {
    let to = seg.path.with_extension("wal.corrupt");
    std::fs::rename(&seg.path, &to).map_err(io_err(&seg.path))?;
    sync_dir(dir)?;
    forget(stats, seg);
    Ok(to)
}

pub(crate) fn forget(stats: &WalStats, seg: &Segment) {
    stats.bytes.fetch_sub(
        seg.bytes.min(stats.bytes.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    stats.segments.fetch_sub(1, Ordering::Relaxed);
    if let Ok(mut f) = stats.first_write.lock() {
        f.remove(&seg.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_torn_tails_stop_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.wal");
        let mut buf = Vec::new();
        frame("a", b"{\"x\":1}\n", &mut buf);
        frame("b", b"{\"x\":2}\n", &mut buf);
        frame("a", b"{\"x\":3}\n", &mut buf);
        std::fs::write(&p, &buf).unwrap();
        let d = read_segment(&p).unwrap();
        assert_eq!(d.frames, 3);
        assert_eq!(d.by_cluster["a"], b"{\"x\":1}\n{\"x\":3}\n");
        assert_eq!(d.by_cluster["b"], b"{\"x\":2}\n");
        assert!(d.torn_at.is_none() && d.corrupt_at.is_none());

        // Half of the last frame written: torn, the first two are read.
        let cut = buf.len() - 5;
        std::fs::write(&p, &buf[..cut]).unwrap();
        let d = read_segment(&p).unwrap();
        assert_eq!((d.frames, d.corrupt_at), (2, None));
        assert!(d.torn_at.is_some());

        // A flipped byte in the middle frame with a good frame after it: corruption.
        let mut bad = buf.clone();
        let second = HEADER + 1 + 8 + HEADER + 1 + 2;
        bad[second] ^= 0x20;
        std::fs::write(&p, &bad).unwrap();
        let d = read_segment(&p).unwrap();
        assert_eq!(d.frames, 1);
        assert!(d.corrupt_at.is_some());
    }
}
