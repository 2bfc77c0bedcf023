use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::DataType;
use auditlake_model::schema::col;
use auditlake_model::{DecodeOptions, EventBatchBuilder, EventRow, decode_document};
use auditlake_store::{Partition, RunId, Store, WriteOptions, encode_parquet};
use serde_json::value::RawValue;
use tokio::runtime::Handle;

use crate::input::Input;
use crate::rejects::Reject;
use crate::{Error, Result};

/// How an ingest runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The `cluster` label of every event stored by this ingest.
    pub cluster: Option<String>,
    pub decode: DecodeOptions,
    /// Decoded events held before files are written (estimated Arrow bytes).
    pub buffer_bytes: usize,
    /// A partition's buffer is written out as a file once it holds this many bytes.
    pub file_bytes: usize,
    pub write: WriteOptions,
    /// Decode threads.
    pub threads: usize,
    /// Lines per chunk handed to a decoder (bounded by `chunk_bytes` too).
    pub chunk_bytes: usize,
    /// A JSON document spread over lines (a pretty-printed `EventList`) is read whole up to this
    /// size.
    pub max_document_bytes: usize,
    /// Dedup keys (16 bytes each, plus hash-set overhead) held for days already written before
    /// the keys of idle days are dropped.
    pub max_dedup_keys: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            cluster: None,
            decode: DecodeOptions::default(),
            buffer_bytes: 192 << 20,
            file_bytes: 96 << 20,
            write: WriteOptions::default(),
            threads: thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_bytes: 2 << 20,
            max_document_bytes: 512 << 20,
            max_dedup_keys: 4_000_000,
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestSummary {
    pub inputs: usize,
    /// Events (and rejected inputs) read.
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    /// The first rejects, for the report on the terminal (all are kept in the store).
    pub first_rejects: Vec<Reject>,
    /// Where the rejected inputs were kept.
    pub rejected_paths: Vec<String>,
}

/// Receives progress as the ingest goes.
pub trait Progress: Send + Sync {
    /// An input is about to be read; `size` on disk when known.
    fn input(&self, _name: &str, _size: Option<u64>) {}
    /// Raw bytes read (compressed bytes for gzip inputs).
    fn bytes(&self, _n: u64) {}
    /// Events decoded so far.
    fn events(&self, _n: u64) {}
}

impl Progress for () {}

const KEEP_FIRST_REJECTS: usize = 20;
const REJECT_PART_BYTES: usize = 16 << 20;

/// A piece of input handed to a decoder.
struct Chunk {
    source: Arc<str>,
    first_line: u64,
    data: Vec<u8>,
    /// A whole JSON document (or a stream of them) spread over lines, not JSON lines.
    document: bool,
}

/// What a decoder made of a chunk.
#[derive(Default)]
struct Decoded {
    parts: Vec<(Partition, RecordBatch, Vec<u128>)>,
    rejects: Vec<Reject>,
    read: u64,
}

/// The dedup key of an event: `(audit_id, stage)`; events without an audit ID (not produced by
/// any apiserver, but possible in hand-made input) are keyed by their time and stage.
fn dedup_key(audit_id: Option<&str>, stage: Option<&str>, ts: i64) -> u128 {
    // Fixed seeds: keys are compared only within one process, but must be the same in every
    // thread of it.
    const S1: ahash::RandomState = ahash::RandomState::with_seeds(1, 2, 3, 4);
    const S2: ahash::RandomState = ahash::RandomState::with_seeds(5, 6, 7, 8);
    let h = |s: &ahash::RandomState| {
        let mut h = s.build_hasher();
        match audit_id {
            Some(id) => {
                h.write_u8(1);
                h.write(id.as_bytes());
            }
            None => {
                h.write_u8(0);
                h.write_i64(ts);
            }
        }
        h.write_u8(0xff);
        h.write(stage.unwrap_or("\0").as_bytes());
        h.finish()
    };
    (u128::from(h(&S1)) << 64) | u128::from(h(&S2))
}

/// Decodes chunks into per-partition batches.
struct Decoder<'o> {
    opts: &'o IngestOptions,
    builders: HashMap<Partition, (EventBatchBuilder, Vec<u128>)>,
    out: Decoded,
}

impl<'o> Decoder<'o> {
    fn new(opts: &'o IngestOptions) -> Self {
        Self {
            opts,
            builders: HashMap::new(),
            out: Decoded::default(),
        }
    }

    fn accept(&mut self, row: &EventRow<'_>) {
        let p = Partition::of(row.ts);
        let (b, keys) = self
            .builders
            .entry(p)
            .or_insert_with(|| (EventBatchBuilder::new(), Vec::new()));
        b.append(row, self.opts.cluster.as_deref());
        keys.push(dedup_key(
            row.audit_id.as_deref(),
            row.stage.as_deref(),
            row.ts,
        ));
    }

    fn reject(
        &mut self,
        source: &Arc<str>,
        line: u64,
        item: Option<usize>,
        error: String,
        raw: &[u8],
    ) {
        let (raw, lossy) = match std::str::from_utf8(raw) {
            Ok(s) => (s.to_owned(), false),
            Err(_) => (String::from_utf8_lossy(raw).into_owned(), true),
        };
        self.out.rejects.push(Reject {
            source: source.to_string(),
            line,
            item,
            error,
            raw,
            lossy,
        });
    }

    /// One JSON text (a line, or one value of a document); `outer_item` is its index when it is
    /// an element of a JSON array, and names it in rejects.
    fn text(&mut self, source: &Arc<str>, line: u64, text: &str, outer_item: Option<usize>) {
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        let res = decode_document(text, &self.opts.decode, |item, raw, r| match r {
            Ok(row) => rows.push(row),
            Err(e) => bad.push((item, e.to_string(), raw)),
        });
        self.out.read += rows.len() as u64;
        for row in &rows {
            self.accept(row);
        }
        for (item, e, raw) in bad {
            self.out.read += 1;
            self.reject(source, line, outer_item.or(item), e, raw.as_bytes());
        }
        if let Err(e) = res {
            self.out.read += 1;
            self.reject(source, line, outer_item, e.to_string(), text.as_bytes());
        }
    }

    fn chunk(&mut self, c: &Chunk) {
        if c.document {
            self.document(c);
            return;
        }
        for (this, raw) in (c.first_line..).zip(c.data.split(|&b| b == b'\n')) {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match std::str::from_utf8(raw) {
                Ok(text) => self.text(&c.source, this, text, None),
                Err(e) => {
                    self.out.read += 1;
                    self.reject(&c.source, this, None, format!("not UTF-8 text: {e}"), raw);
                }
            }
        }
    }

    /// A document over many lines: a stream of JSON values, each an event, an EventList, or an
    /// array of events.
    fn document(&mut self, c: &Chunk) {
        let text = match std::str::from_utf8(&c.data) {
            Ok(t) => t,
            Err(e) => {
                self.out.read += 1;
                self.reject(
                    &c.source,
                    c.first_line,
                    None,
                    format!("not UTF-8 text: {e}"),
                    &c.data,
                );
                return;
            }
        };
        let line_at = |offset: usize| {
            c.first_line
                + text.as_bytes()[..offset.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64
        };
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        loop {
            let start = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(v)) => {
                    let begin = start + text[start..].len() - text[start..].trim_start().len();
                    let line = line_at(begin);
                    match serde_json::from_str::<Vec<&RawValue>>(v.get()) {
                        Ok(items) => {
                            for (i, item) in items.into_iter().enumerate() {
                                self.text(&c.source, line, item.get(), Some(i));
                            }
                        }
                        Err(_) => self.text(&c.source, line, v.get(), None),
                    }
                }
                Some(Err(e)) => {
                    let rest = &text[start..];
                    let begin = start + rest.len() - rest.trim_start().len();
                    self.out.read += 1;
                    self.reject(
                        &c.source,
                        line_at(begin),
                        None,
                        format!("invalid JSON: {e}; the rest of the document is kept here"),
                        rest.trim().as_bytes(),
                    );
                    break;
                }
            }
        }
    }

    fn finish(mut self) -> Result<Decoded> {
        for (p, (mut b, keys)) in self.builders.drain() {
            self.out.parts.push((p, b.finish()?, keys));
        }
        Ok(self.out)
    }
}

/// Reads inputs and cuts them into chunks of whole lines.
fn read_inputs(
    inputs: &[Input],
    opts: &IngestOptions,
    progress: &Arc<dyn Progress>,
    tx: &SyncSender<Chunk>,
) -> Result<()> {
    for input in inputs {
        let name: Arc<str> = Arc::from(input.name());
        progress.input(&name, input.size());
        let p = Arc::clone(progress);
        let mut r = input.open(move |n| p.bytes(n))?;
        let io_err = |source| Error::Input {
            name: name.to_string(),
            source,
        };
        let mut line_no = 1u64;
        let mut first = true;
        loop {
            let mut data = Vec::with_capacity(opts.chunk_bytes + (64 << 10));
            let first_line = line_no;
            while data.len() < opts.chunk_bytes {
                let n = r.read_until(b'\n', &mut data).map_err(io_err)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
            }
            if data.is_empty() {
                break;
            }
            let document = first && is_multiline_document(&data);
            first = false;
            if document {
                // Read the whole document; a document this large is not what the apiserver
                // writes, so it is bounded.
                let mut limited = std::io::Read::take(
                    &mut r,
                    (opts.max_document_bytes - data.len().min(opts.max_document_bytes)) as u64 + 1,
                );
                std::io::Read::read_to_end(&mut limited, &mut data).map_err(io_err)?;
                if data.len() > opts.max_document_bytes {
                    return Err(Error::Input {
                        name: name.to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "a JSON document spread over lines larger than {} MiB; write it as JSON lines",
                                opts.max_document_bytes >> 20
                            ),
                        ),
                    });
                }
            }
            let chunk = Chunk {
                source: Arc::clone(&name),
                first_line,
                data,
                document,
            };
            if tx.send(chunk).is_err() {
                // The writer stopped (it failed); its error is the one reported.
                return Ok(());
            }
            if document {
                break;
            }
        }
    }
    Ok(())
}

/// Whether an input is one JSON value spread over several lines (pretty-printed), rather than JSON
/// lines: its first non-blank line is not a complete JSON value but the start of one.
fn is_multiline_document(data: &[u8]) -> bool {
    let Some(line) = data
        .split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
    else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let t = text.trim();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return false;
    }
    match serde_json::from_str::<serde::de::IgnoredAny>(t) {
        Ok(_) => false,
        Err(e) => e.is_eof(),
    }
}

/// One day's events waiting to be written.
struct PartBuffer {
    batches: Vec<RecordBatch>,
    bytes: usize,
    keys: HashSet<u128>,
    last_touched: u64,
}

struct Writer<'a> {
    store: &'a Store,
    rt: &'a Handle,
    opts: &'a IngestOptions,
    run: RunId,
    seq: u32,
    parts: HashMap<Partition, PartBuffer>,
    buffered: usize,
    tick: u64,
    summary: IngestSummary,
    rejected: Vec<u8>,
    rejected_seq: u32,
}

impl Writer<'_> {
    /// The dedup keys of what is already stored in a partition.
    fn stored_keys(&self, p: &Partition) -> Result<HashSet<u128>> {
        let mut keys = HashSet::new();
        let files = self.rt.block_on(self.store.partition_files(p))?;
        for f in files {
            let batches = self.rt.block_on(
                self.store
                    .read_file(&f, Some(&[col::TS, col::AUDIT_ID, col::STAGE])),
            )?;
            for b in batches {
                let id = cast(b.column(1), &DataType::Utf8)?;
                let stage = cast(b.column(2), &DataType::Utf8)?;
                let ts = b
                    .column(0)
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
                let (id, stage) = (id.as_string::<i32>(), stage.as_string::<i32>());
                for i in 0..b.num_rows() {
                    let id = id.is_valid(i).then(|| id.value(i));
                    let st = stage.is_valid(i).then(|| stage.value(i));
                    keys.insert(dedup_key(id, st, ts.value(i)));
                }
            }
        }
        Ok(keys)
    }

    fn add(&mut self, d: Decoded) -> Result<()> {
        self.tick += 1;
        self.summary.read += d.read;
        for r in d.rejects {
            self.summary.rejected += 1;
            r.to_json_line(&mut self.rejected);
            if self.summary.first_rejects.len() < KEEP_FIRST_REJECTS {
                self.summary.first_rejects.push(r);
            }
        }
        if self.rejected.len() >= REJECT_PART_BYTES {
            self.flush_rejected()?;
        }
        for (p, batch, keys) in d.parts {
            if !self.parts.contains_key(&p) {
                let stored = self.stored_keys(&p)?;
                self.parts.insert(
                    p,
                    PartBuffer {
                        batches: Vec::new(),
                        bytes: 0,
                        keys: stored,
                        last_touched: 0,
                    },
                );
            }
            let Some(buf) = self.parts.get_mut(&p) else {
                return Err(Error::Internal("partition buffer vanished".into()));
            };
            buf.last_touched = self.tick;
            let mask: BooleanArray = keys.iter().map(|k| Some(buf.keys.insert(*k))).collect();
            let kept = mask.true_count();
            self.summary.duplicates += (keys.len() - kept) as u64;
            if kept == 0 {
                continue;
            }
            let batch = if kept == keys.len() {
                batch
            } else {
                filter_record_batch(&batch, &mask)?
            };
            let size = batch.get_array_memory_size();
            buf.bytes += size;
            buf.batches.push(batch);
            self.buffered += size;
            if buf.bytes >= self.opts.file_bytes {
                self.flush(&p)?;
            }
        }
        if self.buffered > self.opts.buffer_bytes {
            // Days no longer receiving events first (time-ordered input completes them one by
            // one), then the largest.
            let mut order: Vec<(u64, std::cmp::Reverse<usize>, Partition)> = self
                .parts
                .iter()
                .filter(|(_, b)| b.bytes > 0)
                .map(|(p, b)| (b.last_touched, std::cmp::Reverse(b.bytes), *p))
                .collect();
            order.sort();
            for (_, _, p) in order {
                if self.buffered <= self.opts.buffer_bytes / 2 {
                    break;
                }
                self.flush(&p)?;
            }
        }
        // Keys of many days or events: drop those of idle, flushed days (re-read from their
        // files if events for them come again), so that memory stays bounded on long inputs.
        let keys: usize = self.parts.values().map(|b| b.keys.len()).sum();
        if self.parts.len() > 2048 || keys > self.opts.max_dedup_keys {
            let tick = self.tick;
            self.parts
                .retain(|_, b| b.bytes > 0 || tick - b.last_touched < 64);
        }
        Ok(())
    }

    fn flush(&mut self, p: &Partition) -> Result<()> {
        let Some(buf) = self.parts.get_mut(p) else {
            return Ok(());
        };
        if buf.batches.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut buf.batches);
        self.buffered -= buf.bytes;
        buf.bytes = 0;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes = encode_parquet(&batches, &self.opts.write)?;
        drop(batches);
        let len = bytes.len() as u64;
        self.seq += 1;
        self.rt
            .block_on(self.store.publish_data_file(p, &self.run, self.seq, bytes))?;
        self.summary.stored += rows as u64;
        self.summary.files_written += 1;
        self.summary.bytes_written += len;
        Ok(())
    }

    fn flush_rejected(&mut self) -> Result<()> {
        if self.rejected.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.rejected);
        self.rejected_seq += 1;
        let path = self
            .rt
            .block_on(self.store.put_rejected(&self.run, self.rejected_seq, data))?;
        self.summary.rejected_paths.push(path);
        Ok(())
    }

    fn finish(mut self) -> Result<IngestSummary> {
        let mut all: Vec<Partition> = self.parts.keys().copied().collect();
        all.sort();
        for p in all {
            self.flush(&p)?;
        }
        self.flush_rejected()?;
        Ok(self.summary)
    }
}

/// Ingests `inputs` into `store`. Must be called outside of an async context; `rt` runs the store's
/// I/O.
pub fn ingest(
    store: &Store,
    inputs: &[Input],
    opts: &IngestOptions,
    progress: Arc<dyn Progress>,
    rt: &Handle,
) -> Result<IngestSummary> {
    // Staging files of a run that died long ago; a live run's are younger than this.
    if store.is_local() {
        rt.block_on(store.clean_staging(chrono::TimeDelta::hours(6)))?;
    }
    let threads = opts.threads.max(1);
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(threads * 2);
    let (out_tx, out_rx) = sync_channel::<Result<Decoded>>(threads * 2);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));

    let mut writer = Writer {
        store,
        rt,
        opts,
        run: RunId::new(),
        seq: 0,
        parts: HashMap::new(),
        buffered: 0,
        tick: 0,
        summary: IngestSummary {
            inputs: inputs.len(),
            ..Default::default()
        },
        rejected: Vec::new(),
        rejected_seq: 0,
    };

    thread::scope(|s| -> Result<IngestSummary> {
        let reader_progress = Arc::clone(&progress);
        let reader = s.spawn(move || read_inputs(inputs, opts, &reader_progress, &chunk_tx));
        for _ in 0..threads {
            let rx = Arc::clone(&chunk_rx);
            let tx = out_tx.clone();
            s.spawn(move || decode_worker(&rx, &tx, opts));
        }
        drop(out_tx);
        drop(chunk_rx);
        let mut result = Ok(());
        for d in out_rx.iter() {
            let step = d.and_then(|d| {
                progress.events(d.read);
                writer.add(d)
            });
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        // On error, dropping the receiver stops the workers and the reader.
        drop(out_rx);
        let read = reader
            .join()
            .map_err(|_| Error::Internal("reader thread panicked".into()))?;
        result?;
        read?;
        writer.finish()
    })
}

fn decode_worker(
    rx: &Mutex<Receiver<Chunk>>,
    tx: &SyncSender<Result<Decoded>>,
    opts: &IngestOptions,
) {
    loop {
        let chunk = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let mut d = Decoder::new(opts);
        d.chunk(&chunk);
        drop(chunk);
        if tx.send(d.finish()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a tiny key budget the keys of written hours are dropped and re-read from their files:
    /// dedup still holds across the whole run.
    #[test]
    fn dedup_survives_dropping_the_keys_of_idle_hours() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let cfg = auditlake_gen::GenConfig {
            events: 6_000,
            days: 3,
            seed: 5,
            end: chrono::DateTime::from_timestamp(1_773_964_800, 0).unwrap(),
        };
        auditlake_gen::generate(&cfg, std::fs::File::create(&log).unwrap()).unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap(), &[]).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let opts = IngestOptions {
            max_dedup_keys: 100,
            chunk_bytes: 64 << 10,
            buffer_bytes: 1 << 20,
            file_bytes: 256 << 10,
            threads: 1,
            ..Default::default()
        };
        let inputs = vec![Input::File(log.clone()), Input::File(log)];
        let s = ingest(&store, &inputs, &opts, Arc::new(()), rt.handle()).unwrap();
        assert_eq!(
            (s.read, s.stored, s.duplicates, s.rejected),
            (12_000, 6_000, 6_000, 0)
        );
    }
}
