use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::DataType;
use auditlake_model::redact::mask_rejected;
use auditlake_model::schema::col;
use auditlake_model::{DecodeOptions, EventBatchBuilder, EventRow};
use auditlake_store::{
    Commit, CommitKind, DataFile, NewFile, Partition, RunId, Store, Version, WriteOptions,
    encode_parquet,
};
use tokio::runtime::Handle;

use crate::formats::{Format, decode_input};
use crate::input::Input;
use crate::lines::{self, Line, Streamed};
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
    /// The longest line, and the longest item of a document spread over lines, handed to a
    /// decoder; a longer one is rejected with its first KiB and skipped in bounded memory, so
    /// that one broken or hostile line costs neither memory nor the good events around it.
    /// Documents themselves have no size limit: they are streamed item by item
    /// (see `lines::stream_document` for why).
    pub max_line_bytes: usize,
    /// Dedup keys (16 bytes each, plus hash-set overhead) held for days already written before
    /// the keys of idle days are dropped.
    pub max_dedup_keys: usize,
    /// A stricter audit policy applied to what the apiserver recorded (`ingest --policy`).
    pub policy: Option<Arc<auditlake_policy::Policy>>,
    /// What the inputs are read as (`--format`): decided per line or document by default.
    pub format: Format,
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
            max_line_bytes: 64 << 20,
            max_dedup_keys: 4_000_000,
            policy: None,
            format: Format::Auto,
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
    /// Exact copies of events already stored or read earlier in the run, dropped.
    pub duplicates: u64,
    /// Distinct events that carry the audit ID and stage of another (stored, and listed by the
    /// `audit_id_reuse` detection).
    pub reused_ids: u64,
    pub rejected: u64,
    /// Events `--policy` dropped (level None, or an omitted stage), and those it slimmed
    /// (bodies removed below Request or RequestResponse).
    pub policy_dropped: u64,
    pub policy_slimmed: u64,
    /// Events decoded, by where they came from (`k8s`, `eks`, `aks`, `gke`), sorted.
    pub by_format: Vec<(&'static str, u64)>,
    pub files_written: u64,
    pub bytes_written: u64,
    /// Commits to the store's log, and the table version after the last.
    pub commits: u64,
    pub version: Option<auditlake_store::Version>,
    /// Events that another writer committed first while this run was committing (dropped here).
    pub raced: u64,
    /// The first rejects, for the report on the terminal (all are kept in the store).
    pub first_rejects: Vec<Reject>,
    /// Where the rejected inputs were kept.
    pub rejected_paths: Vec<String>,
    /// Where the time went, by stage.
    pub stages: StageTimes,
}

/// Where an ingest spent its time, by stage: each stage's busy time, summed over the threads
/// that run it (one reader, `decode_threads` decoders, one writer), so that the stages of a
/// run on N cores may add up to N times its wall time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimes {
    /// Reading and decompressing the inputs and cutting them into chunks of lines.
    pub read: Duration,
    /// Parsing JSON into events, redaction and the audit policy included.
    pub parse: Duration,
    /// Appending events to Arrow builders and finishing the batches.
    pub build: Duration,
    /// Dropping copies (ID keys, content digests, reading the keys of stored days) and
    /// buffering.
    pub dedup: Duration,
    /// Encoding Parquet.
    pub encode: Duration,
    /// Writing the data files to the store.
    pub write: Duration,
    /// Committing to the log (and catching up with other writers), checkpointing.
    pub commit: Duration,
    /// The reader waiting for a free decoder, and the writer waiting for decoded events: the
    /// stage that waits least is the one the others wait for.
    pub reader_waiting: Duration,
    pub writer_waiting: Duration,
    pub decode_threads: usize,
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
    kind: ChunkKind,
}

enum ChunkKind {
    /// JSON lines, the first numbered `first_line`. A line the reader could not hand over (too
    /// long) is blank in `data` and listed in `found`, so that line numbers stay right.
    Lines {
        first_line: u64,
        data: Vec<u8>,
        found: Vec<Found>,
    },
    /// JSON texts streamed out of a document spread over lines.
    Values(Vec<lines::Value>),
    /// Input the reader rejected itself.
    Found(Vec<Found>),
}

/// Input the reader rejects itself (a line too long, a broken document). It goes to a decoder
/// like any other input so that it becomes a [`Reject`] the way every other one does, through
/// `Decoder::reject` and its masking.
struct Found {
    line: u64,
    item: Option<usize>,
    error: String,
    raw: Vec<u8>,
}

/// What a decoder made of a chunk.
#[derive(Default)]
struct Decoded {
    parts: Vec<(Partition, RecordBatch, Vec<u128>)>,
    rejects: Vec<Reject>,
    read: u64,
    policy_dropped: u64,
    policy_slimmed: u64,
    by_format: HashMap<&'static str, u64>,
    /// Time decoding the chunk, and the part of it appending to the builders.
    decode: Duration,
    build: Duration,
}

/// `ingest --policy`: what a stricter policy keeps of a recorded event.
fn apply_policy(p: &auditlake_policy::Policy, row: &mut EventRow<'_>) -> auditlake_policy::Applied {
    let groups: Vec<String> = row
        .user_groups
        .iter()
        .flatten()
        .map(|g| g.to_string())
        .collect();
    let attrs = auditlake_policy::Attributes::from_event(
        row.user_name.as_deref(),
        &groups,
        row.verb.as_deref(),
        row.namespace.as_deref(),
        row.api_group.as_deref(),
        row.resource.as_deref(),
        row.subresource.as_deref(),
        row.name.as_deref(),
        row.request_uri.as_deref(),
    );
    let mut level = row.level.as_deref().map(str::to_owned);
    let (mut req, mut resp) = (row.request_object.is_some(), row.response_object.is_some());
    let applied = p.apply(
        &attrs,
        auditlake_policy::Recorded {
            stage: row.stage.as_deref(),
            level: &mut level,
            request_object: &mut req,
            response_object: &mut resp,
        },
    );
    if applied == auditlake_policy::Applied::Slimmed {
        if !req {
            row.request_object = None;
        }
        if !resp {
            row.response_object = None;
        }
        row.level = level.map(Into::into);
    }
    applied
}

/// The ID key of an event: `(audit_id, stage)`; events without an audit ID (not produced by any
/// apiserver, but possible in hand-made input) are keyed by their time and stage.
///
/// Dedup is two steps. An event whose ID key is new is kept, at the cost of one hash. An event
/// whose ID key was seen is compared by its content digest
/// ([`auditlake_model::digest::content_digests`]) with every event of its day: an exact copy
/// (a retried batch, overlapping rotations, a file ingested twice) is dropped, and a distinct
/// event that reuses the ID (the client chose it with the `Audit-ID` header) is kept. Digests of
/// a day are computed only once some ID of that day repeats.
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
        let started = Instant::now();
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
        self.out.build += started.elapsed();
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
        // Rejected text is kept for inspection, never with a credential in it.
        let raw = mask_rejected(&raw, &self.opts.decode.redact);
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
        let opts = self.opts;
        let mut bad = Vec::new();
        let res = decode_input(text, opts.format, &opts.decode, &mut |item, raw, r| {
            self.out.read += 1;
            let mut row = match r {
                Ok(row) => row,
                Err(e) => {
                    bad.push((item, e.to_string(), raw.to_owned()));
                    return;
                }
            };
            let format = row
                .source_format
                .unwrap_or(auditlake_model::schema::source::K8S);
            *self.out.by_format.entry(format).or_default() += 1;
            if let Some(p) = &opts.policy {
                match apply_policy(p, &mut row) {
                    auditlake_policy::Applied::Dropped => {
                        self.out.policy_dropped += 1;
                        return;
                    }
                    auditlake_policy::Applied::Slimmed => self.out.policy_slimmed += 1,
                    auditlake_policy::Applied::Kept => {}
                }
            }
            self.accept(&row);
        });
        for (item, e, raw) in bad {
            self.reject(source, line, outer_item.or(item), e, raw.as_bytes());
        }
        if let Err(e) = res {
            self.out.read += 1;
            self.reject(source, line, outer_item, e.to_string(), text.as_bytes());
        }
    }

    fn chunk(&mut self, c: &Chunk) {
        match &c.kind {
            ChunkKind::Lines {
                first_line,
                data,
                found,
            } => self.lines(&c.source, *first_line, data, found),
            ChunkKind::Values(values) => {
                for v in values {
                    self.text(&c.source, v.line, &v.text, v.item);
                }
            }
            ChunkKind::Found(found) => {
                for f in found {
                    self.found(&c.source, f);
                }
            }
        }
    }

    fn found(&mut self, source: &Arc<str>, f: &Found) {
        self.out.read += 1;
        self.reject(source, f.line, f.item, f.error.clone(), &f.raw);
    }

    fn lines(&mut self, source: &Arc<str>, first_line: u64, data: &[u8], found: &[Found]) {
        let mut found = found.iter().peekable();
        for (this, raw) in (first_line..).zip(split_lines(data)) {
            while let Some(f) = found.next_if(|f| f.line <= this) {
                self.found(source, f);
            }
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match std::str::from_utf8(raw) {
                Ok(text) => self.text(source, this, text, None),
                Err(e) => {
                    self.out.read += 1;
                    self.reject(source, this, None, format!("not UTF-8 text: {e}"), raw);
                }
            }
        }
        for f in found {
            self.found(source, f);
        }
    }

    fn finish(mut self) -> Result<Decoded> {
        let started = Instant::now();
        for (p, (mut b, keys)) in self.builders.drain() {
            self.out.parts.push((p, b.finish()?, keys));
        }
        self.out.build += started.elapsed();
        Ok(self.out)
    }
}

/// The pieces of `data` between `\n`s, as `data.split(|&b| b == b'\n')` gives them (the last one
/// after the last `\n`, empty when `data` ends with one), found with SIMD (memchr) rather than a
/// byte at a time.
fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', data)
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let end = end.unwrap_or(data.len());
            let line = &data[start..end];
            start = end + 1;
            line
        })
}

/// Reads inputs and cuts them into chunks of whole lines, or streams the items of a document
/// spread over lines; in bounded memory either way.
/// The reader's end of the channel to the decoders, timing how long it waits on them.
struct ChunkSender {
    tx: SyncSender<Chunk>,
    waiting: std::cell::Cell<Duration>,
}

impl ChunkSender {
    fn new(tx: SyncSender<Chunk>) -> Self {
        Self {
            tx,
            waiting: Default::default(),
        }
    }

    /// False when the decoders are gone.
    fn send(&self, c: Chunk) -> bool {
        let started = Instant::now();
        let ok = self.tx.send(c).is_ok();
        self.waiting.set(self.waiting.get() + started.elapsed());
        ok
    }
}

/// Reads every input; the reader's busy time and waiting time.
fn read_inputs(
    inputs: &[Input],
    opts: &IngestOptions,
    progress: &Arc<dyn Progress>,
    tx: &ChunkSender,
) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    read_each(inputs, opts, progress, tx)?;
    let waiting = tx.waiting.get();
    Ok((started.elapsed().saturating_sub(waiting), waiting))
}

fn read_each(
    inputs: &[Input],
    opts: &IngestOptions,
    progress: &Arc<dyn Progress>,
    tx: &ChunkSender,
) -> Result<()> {
    for input in inputs {
        let name: Arc<str> = Arc::from(input.name());
        progress.input(&name, input.size());
        let p = Arc::clone(progress);
        let r = input.open(move |n| p.bytes(n))?;
        let go_on = read_input(&name, r, opts, tx).map_err(|source| Error::Input {
            name: name.to_string(),
            source,
        })?;
        if !go_on {
            // The writer stopped (it failed); its error is the one reported.
            return Ok(());
        }
    }
    Ok(())
}

/// Reads one input into chunks; false when the decoders are gone.
fn read_input(
    name: &Arc<str>,
    mut r: Box<dyn BufRead + Send>,
    opts: &IngestOptions,
    tx: &ChunkSender,
) -> std::io::Result<bool> {
    let send = |kind| {
        tx.send(Chunk {
            source: Arc::clone(name),
            kind,
        })
    };
    let mut line_no = 1u64;
    let mut first = true;
    loop {
        let first_line = line_no;
        let (data, found) = read_lines(&mut r, &mut line_no, first, opts)?;
        if data.is_empty() {
            return Ok(true);
        }
        if !std::mem::take(&mut first) || !is_multiline_document(&data) {
            if !send(ChunkKind::Lines {
                first_line,
                data,
                found,
            }) {
                return Ok(false);
            }
            continue;
        }
        if !found.is_empty() && !send(ChunkKind::Found(found)) {
            return Ok(false);
        }
        // The lines already read are the start of the document.
        let mut doc: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(data).chain(r));
        let mut values = Vec::new();
        let mut bytes = 0;
        let streamed = lines::stream_document(&mut doc, first_line, opts.max_line_bytes, |v| {
            bytes += v.text.len();
            values.push(v);
            if bytes < opts.chunk_bytes {
                return true;
            }
            bytes = 0;
            send(ChunkKind::Values(std::mem::take(&mut values)))
        })?;
        if !values.is_empty() && !send(ChunkKind::Values(values)) {
            return Ok(false);
        }
        match streamed {
            Streamed::End => return Ok(true),
            Streamed::Stopped => return Ok(false),
            Streamed::Broken {
                line,
                item,
                error,
                head,
                next_line,
            } => {
                let found = Found {
                    line,
                    item,
                    error,
                    raw: head,
                };
                if !send(ChunkKind::Found(vec![found])) {
                    return Ok(false);
                }
                // What follows is read as JSON lines: nothing is dropped unreported, and an input
                // wrongly taken for a document loses at most a line.
                line_no = next_line;
                r = doc;
            }
        }
    }
}

/// Reads whole lines for one chunk: about `chunk_bytes` of them, and at least one. The first line
/// of an input does not count, so that the first chunk holds lines after it for
/// [`is_multiline_document`] to look at however long the first one is.
fn read_lines<R: BufRead + ?Sized>(
    r: &mut R,
    line_no: &mut u64,
    first: bool,
    opts: &IngestOptions,
) -> std::io::Result<(Vec<u8>, Vec<Found>)> {
    let capacity = opts.chunk_bytes + (64 << 10);
    let mut data = Vec::with_capacity(capacity);
    let mut found = Vec::new();
    let mut budget = opts.chunk_bytes;
    let mut kept = 0;
    loop {
        let before = data.len();
        match lines::read_line(r, opts.max_line_bytes, &mut data)? {
            Line::End => break,
            Line::Text => {}
            Line::TooLong { len, head } => {
                // A blank line in its place keeps the line numbers right; the memory grown while
                // it was read is given back.
                data.push(b'\n');
                data.shrink_to(capacity);
                kept += head.len();
                found.push(Found {
                    line: *line_no,
                    item: None,
                    error: format!(
                        "line longer than the limit of {} ({len} bytes); its first KiB is kept",
                        lines::size_text(opts.max_line_bytes)
                    ),
                    raw: head,
                });
            }
        }
        if first && before == 0 {
            budget = budget.saturating_add(data.len());
        }
        *line_no += 1;
        if data.len() + kept >= budget {
            break;
        }
    }
    Ok((data, found))
}

/// Whether an input is JSON values spread over lines (a pretty-printed `EventList` or array)
/// rather than JSON lines, judged from the first non-blank lines of its first chunk.
///
/// A first line that is a complete JSON value, or not the start of one, makes JSON lines. A first
/// line cut short is either the start of a document or one broken line (a truncated event), so
/// the lines after it decide: a line that is complete once its trailing `,` is dropped is an
/// element of an array spread over lines (a document); a line that is a complete object by
/// itself is the next event of JSON lines (the first line is then one reject, and the good events
/// after it are stored). With neither (a pretty-printed single event, whose lines are `"key":
/// value`), it is a document.
fn is_multiline_document(data: &[u8]) -> bool {
    const LOOK_AT: usize = 16;
    let parse = |l: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(l).map(|_| ());
    let complete = |l: &[u8]| parse(l).is_ok();
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty())
        .take(LOOK_AT);
    let Some(first) = lines.next() else {
        return false;
    };
    if !(first.starts_with(b"{") || first.starts_with(b"[")) {
        return false;
    }
    match parse(first) {
        Ok(()) => return false,
        Err(e) if !e.is_eof() => return false,
        Err(_) => {}
    }
    // A lone `[` opens an array whatever follows (`[`, then one compact element per line, is
    // how `gcloud logging read --format=json` and others print a short array); as JSON lines it
    // could only be one broken line.
    if first == b"[" {
        return true;
    }
    let rest: Vec<&[u8]> = lines.collect();
    let array_element = |l: &&[u8]| {
        l.strip_suffix(b",")
            .is_some_and(|l| complete(l.trim_ascii()))
    };
    if rest.iter().any(array_element) {
        return true;
    }
    !rest.iter().any(|l| l.starts_with(b"{") && complete(l))
}

/// One day's events waiting to be written, and what dedup knows of the day.
///
/// A copy of an event has the event's time, so only stored files whose time range holds the
/// time of an incoming event can hold its original: a day's files are read when an event falls
/// in their range, not all at once. A receiver that flushes every minute reads the file or two
/// its new events overlap, not the whole day again and again.
struct PartBuffer {
    batches: Vec<RecordBatch>,
    bytes: usize,
    /// ID keys of the stored events read so far and of those kept by this run.
    ids: HashSet<u128>,
    /// Content digests of the stored events read so far and of those kept by this run, once
    /// some ID of the day repeated.
    digests: Option<DayDigests>,
    /// Stored files of the day whose ID keys are not in `ids` yet.
    unread_ids: Vec<DataFile>,
    /// Stored files of the day whose digests are not in `digests` yet (those this run committed
    /// while `digests` was None among them).
    unread_digests: Vec<DataFile>,
    /// Every file of the day this buffer has listed, read or committed.
    known: HashSet<String>,
    last_touched: u64,
}

impl PartBuffer {
    fn new(files: Vec<DataFile>) -> Self {
        Self {
            batches: Vec::new(),
            bytes: 0,
            ids: HashSet::new(),
            digests: None,
            known: files.iter().map(|f| f.meta.location.to_string()).collect(),
            unread_ids: files.clone(),
            unread_digests: files,
            last_touched: 0,
        }
    }

    /// Files the store lists that this buffer has not seen (another writer's appends, a
    /// compaction's outputs) become unread; files no longer listed are forgotten.
    fn relisted(&mut self, files: Vec<DataFile>) {
        let listed: HashSet<String> = files.iter().map(|f| f.meta.location.to_string()).collect();
        self.unread_ids
            .retain(|f| listed.contains(f.meta.location.as_ref()));
        self.unread_digests
            .retain(|f| listed.contains(f.meta.location.as_ref()));
        for f in files {
            self.add_unread(f);
        }
    }

    /// A stored file this buffer has read nothing of.
    fn add_unread(&mut self, f: DataFile) {
        if self.known.insert(f.meta.location.to_string()) {
            self.unread_ids.push(f.clone());
            self.unread_digests.push(f);
        }
    }
}

/// The times of a batch's events, sorted: which stored files can hold copies of them.
struct Times(Vec<i64>);

impl Times {
    fn of<'b>(batches: impl IntoIterator<Item = &'b RecordBatch>) -> Result<Self> {
        let mut t = Vec::new();
        for b in batches {
            let ts = b
                .column_by_name(col::TS)
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>())
                .ok_or_else(|| Error::Internal("stored batch without ts".into()))?;
            t.extend(ts.values().iter().copied());
        }
        t.sort_unstable();
        Ok(Self(t))
    }

    /// Whether an event falls in the file's time range (a file of unknown range may hold any).
    fn hit(&self, f: &DataFile) -> bool {
        let Some((lo, hi)) = f.ts_range else {
            return true;
        };
        let i = self.0.partition_point(|&t| t < lo);
        self.0.get(i).is_some_and(|&t| t <= hi)
    }

    /// The files an event falls in, taken out of `files`.
    fn take_hits(&self, files: &mut Vec<DataFile>) -> Vec<DataFile> {
        let (hit, rest) = std::mem::take(files).into_iter().partition(|f| self.hit(f));
        *files = rest;
        hit
    }
}

/// What dedup compares a repeated ID's event with: the full digests of the day's events, and the
/// body-less digests of its slimmed ones (whose bodies retention dropped).
#[derive(Default)]
struct DayDigests {
    full: HashSet<u128>,
    slimmed: HashSet<u128>,
}

impl DayDigests {
    fn add(&mut self, d: &auditlake_model::digest::Digest) {
        if d.slimmed {
            self.slimmed.insert(d.meta);
        } else {
            self.full.insert(d.full);
        }
    }

    /// Whether the event is a copy of one here.
    fn contains(&self, d: &auditlake_model::digest::Digest) -> bool {
        self.full.contains(&d.full) || self.slimmed.contains(&d.meta)
    }

    /// Whether the event is a copy of one already here; if not, it is added.
    fn insert_new(&mut self, d: &auditlake_model::digest::Digest) -> bool {
        if self.contains(d) {
            return false;
        }
        self.add(d);
        true
    }

    fn len(&self) -> usize {
        self.full.len() + self.slimmed.len()
    }
}

/// Tries a read of a day's files again when a file it listed was removed meanwhile (a compaction
/// committed between the listing and the read): `relist` makes the next listing, which shows its
/// replacement.
fn retry_not_found<S, T>(
    s: &mut S,
    mut f: impl FnMut(&mut S) -> Result<T>,
    mut relist: impl FnMut(&mut S) -> Result<()>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        match f(s) {
            Err(Error::Store(e)) if e.is_not_found() && attempt < 5 => {
                attempt += 1;
                relist(s)?;
            }
            other => return other,
        }
    }
}

/// A data file written and not yet committed, with its rows (kept until the commit lands, in
/// case a concurrent writer committed some of the same events first).
struct Pending {
    partition: Partition,
    batches: Vec<RecordBatch>,
    file: NewFile,
}

/// The ID keys of a batch's rows.
fn batch_keys(b: &RecordBatch) -> Result<Vec<u128>> {
    let column = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::Internal(format!("stored batch without {name}")))
    };
    let id = cast(column(col::AUDIT_ID)?, &DataType::Utf8)?;
    let stage = cast(column(col::STAGE)?, &DataType::Utf8)?;
    let ts = column(col::TS)?.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let (id, stage) = (id.as_string::<i32>(), stage.as_string::<i32>());
    Ok((0..b.num_rows())
        .map(|i| {
            let id = id.is_valid(i).then(|| id.value(i));
            let st = stage.is_valid(i).then(|| stage.value(i));
            dedup_key(id, st, ts.value(i))
        })
        .collect())
}

struct Writer<'a> {
    store: &'a Store,
    rt: &'a Handle,
    opts: &'a IngestOptions,
    run: RunId,
    seq: u32,
    /// The table version this run's view of the stored keys is at least as new as.
    version: Version,
    parts: HashMap<Partition, PartBuffer>,
    buffered: usize,
    tick: u64,
    summary: IngestSummary,
    rejected: Vec<u8>,
    rejected_seq: u32,
    /// Time in `flush`, so that `add` can tell its own time from the flushes it calls.
    flushing: Duration,
}

impl Writer<'_> {
    /// The stored batches of some files, only the named columns.
    fn read_files(&self, files: &[DataFile], columns: &[&str]) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for f in files {
            out.extend(self.rt.block_on(self.store.read_file(f, Some(columns)))?);
        }
        Ok(out)
    }

    /// The ID keys of the events of some stored files.
    fn keys_of(&self, files: &[DataFile]) -> Result<HashSet<u128>> {
        let mut keys = HashSet::new();
        for b in self.read_files(files, &[col::TS, col::AUDIT_ID, col::STAGE])? {
            keys.extend(batch_keys(&b)?);
        }
        Ok(keys)
    }

    /// The content digests of the events of some stored files, added to `out`.
    fn digests_of(&self, files: &[DataFile], out: &mut DayDigests) -> Result<()> {
        let columns = auditlake_model::digest::digest_columns();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        for b in self.read_files(files, &columns)? {
            for d in auditlake_model::digest::content_digests(&b)? {
                out.add(&d);
            }
        }
        Ok(())
    }

    fn part(&mut self, p: &Partition) -> Result<&mut PartBuffer> {
        self.parts
            .get_mut(p)
            .ok_or_else(|| Error::Internal("partition buffer vanished".into()))
    }

    fn relist(&mut self, p: &Partition) -> Result<()> {
        let files = self.rt.block_on(self.store.partition_files(p))?;
        self.part(p)?.relisted(files);
        Ok(())
    }

    /// Reads the ID keys of the day's stored files that an event of `times` falls in.
    fn read_ids(&mut self, p: &Partition, times: &Times) -> Result<()> {
        retry_not_found(
            self,
            |w| {
                let hit = times.take_hits(&mut w.part(p)?.unread_ids);
                match w.keys_of(&hit) {
                    Ok(keys) => {
                        w.part(p)?.ids.extend(keys);
                        Ok(())
                    }
                    Err(e) => {
                        w.part(p)?.unread_ids.extend(hit);
                        Err(e)
                    }
                }
            },
            |w| w.relist(p),
        )
    }

    /// Makes the day's digests hold those of every stored file an event of `times` falls in, and
    /// of this run's buffered events.
    fn read_digests(&mut self, p: &Partition, times: &Times) -> Result<()> {
        retry_not_found(
            self,
            |w| {
                let buf = w.part(p)?;
                let mut digests = match buf.digests.take() {
                    Some(d) => d,
                    None => {
                        let mut d = DayDigests::default();
                        for b in &buf.batches {
                            for x in auditlake_model::digest::content_digests(b)? {
                                d.add(&x);
                            }
                        }
                        d
                    }
                };
                let hit = times.take_hits(&mut buf.unread_digests);
                let read = w.digests_of(&hit, &mut digests);
                let buf = w.part(p)?;
                buf.digests = Some(digests);
                if read.is_err() {
                    buf.unread_digests.extend(hit);
                }
                read
            },
            |w| w.relist(p),
        )
    }

    fn add(&mut self, d: Decoded) -> Result<()> {
        let started = Instant::now();
        let flushing = self.flushing;
        let r = self.add_decoded(d);
        self.summary.stages.dedup += started.elapsed().saturating_sub(self.flushing - flushing);
        r
    }

    fn add_decoded(&mut self, d: Decoded) -> Result<()> {
        self.tick += 1;
        self.summary.stages.parse += d.decode.saturating_sub(d.build);
        self.summary.stages.build += d.build;
        self.summary.read += d.read;
        self.summary.policy_dropped += d.policy_dropped;
        self.summary.policy_slimmed += d.policy_slimmed;
        for (f, n) in d.by_format {
            match self.summary.by_format.iter_mut().find(|(g, _)| *g == f) {
                Some((_, m)) => *m += n,
                None => {
                    self.summary.by_format.push((f, n));
                    self.summary.by_format.sort_unstable();
                }
            }
        }
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
                let files = self.rt.block_on(self.store.partition_files(&p))?;
                self.parts.insert(p, PartBuffer::new(files));
            }
            let times = Times::of([&batch])?;
            self.read_ids(&p, &times)?;
            let tick = self.tick;
            let buf = self.part(&p)?;
            buf.last_touched = tick;
            // The ID keys go in first: an event whose ID is new is a new event, at one hash (the
            // common case); digests are needed only once an ID repeats in the day, and only
            // those of the files the batch's events fall in.
            let new_ids: Vec<bool> = keys.iter().map(|k| buf.ids.insert(*k)).collect();
            let repeated = new_ids.iter().any(|&n| !n);
            let mask: BooleanArray = if buf.digests.is_none() && !repeated {
                BooleanArray::from(vec![true; keys.len()])
            } else {
                if repeated {
                    self.read_digests(&p, &times)?;
                }
                let Some(digests) = self.parts.get_mut(&p).and_then(|b| b.digests.as_mut()) else {
                    return Err(Error::Internal("partition digests vanished".into()));
                };
                let batch_digests = auditlake_model::digest::content_digests(&batch)?;
                new_ids
                    .iter()
                    .zip(batch_digests)
                    .map(|(&new_id, d)| {
                        let new_event = digests.insert_new(&d);
                        if new_event && !new_id {
                            self.summary.reused_ids += 1;
                        }
                        Some(new_event)
                    })
                    .collect()
            };
            let Some(buf) = self.parts.get_mut(&p) else {
                return Err(Error::Internal("partition buffer vanished".into()));
            };
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
                self.flush(&[p])?;
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
            let mut freed = 0;
            let mut chosen = Vec::new();
            for (_, _, p) in order {
                if self.buffered - freed <= self.opts.buffer_bytes / 2 {
                    break;
                }
                freed += self.parts[&p].bytes;
                chosen.push(p);
            }
            self.flush(&chosen)?;
        }
        // Keys of many days or events: drop those of idle, flushed days (re-read from their
        // files if events for them come again), so that memory stays bounded on long inputs.
        let keys: usize = self
            .parts
            .values()
            .map(|b| b.ids.len() + b.digests.as_ref().map_or(0, DayDigests::len))
            .sum();
        if self.parts.len() > 2048 || keys > self.opts.max_dedup_keys {
            let tick = self.tick;
            self.parts
                .retain(|_, b| b.bytes > 0 || tick - b.last_touched < 64);
        }
        Ok(())
    }

    /// Writes a file for each of the partitions' buffered events and commits them all in one
    /// commit.
    fn flush(&mut self, partitions: &[Partition]) -> Result<()> {
        let started = Instant::now();
        let r = self.flush_partitions(partitions);
        self.flushing += started.elapsed();
        r
    }

    fn flush_partitions(&mut self, partitions: &[Partition]) -> Result<()> {
        let mut pending = Vec::new();
        for p in partitions {
            let Some(buf) = self.parts.get_mut(p) else {
                continue;
            };
            if buf.batches.is_empty() {
                continue;
            }
            let batches = std::mem::take(&mut buf.batches);
            self.buffered -= buf.bytes;
            buf.bytes = 0;
            pending.push(self.write_pending(*p, batches)?);
        }
        let committing = Instant::now();
        let r = self.commit(&mut pending);
        self.summary.stages.commit += committing.elapsed();
        r?;
        for p in pending {
            self.summary.stored += p.file.rows;
            self.summary.files_written += 1;
            self.summary.bytes_written += p.file.size;
        }
        Ok(())
    }

    /// Commits the pending files in one commit, catching up with other writers.
    fn commit(&mut self, pending: &mut Vec<Pending>) -> Result<()> {
        for attempt in 0.. {
            if pending.is_empty() {
                return Ok(());
            }
            if attempt == 1000 {
                return Err(Error::Internal(format!(
                    "gave up committing after {attempt} tries: other writers kept committing \
                     version {} first",
                    self.version + 1
                )));
            }
            let rows: u64 = pending.iter().map(|p| p.file.rows).sum();
            let mut commit = Commit::new(
                CommitKind::Ingest,
                self.run.as_str(),
                format!("{rows} events in {} files", pending.len()),
            );
            commit.add = pending.iter().map(|p| p.file.clone()).collect();
            auditlake_store::log::hold_point("ingest-before-commit");
            if let Some(v) = self
                .rt
                .block_on(self.store.try_commit(Some(self.version), &commit))?
            {
                self.version = v;
                self.summary.version = Some(v);
                self.summary.commits += 1;
                // The day's new file: its ID keys are the buffer's already, its digests too
                // once the day has them.
                for f in pending.iter() {
                    if let Some(buf) = self.parts.get_mut(&f.partition) {
                        let file = f.file.data_file();
                        buf.known.insert(file.meta.location.to_string());
                        if buf.digests.is_none() {
                            buf.unread_digests.push(file);
                        }
                    }
                }
                break;
            }
            self.catch_up(pending)?;
        }
        Ok(())
    }

    fn write_pending(
        &mut self,
        partition: Partition,
        batches: Vec<RecordBatch>,
    ) -> Result<Pending> {
        let encoding = Instant::now();
        let enc = encode_parquet(&batches, &self.opts.write)?;
        self.summary.stages.encode += encoding.elapsed();
        let writing = Instant::now();
        self.seq += 1;
        let ts_range = enc
            .ts_range
            .unwrap_or((partition.start(), partition.start()));
        let file = self.rt.block_on(self.store.write_data_file(
            &partition, &self.run, self.seq, enc.bytes, enc.rows, ts_range,
        ))?;
        self.summary.stages.write += writing.elapsed();
        Ok(Pending {
            partition,
            batches,
            file,
        })
    }

    /// Another writer committed the version this run meant to write. Its appends (and any since)
    /// may hold events that this run holds too: those of their files that the pending events'
    /// times fall in are read, and pending events that are already stored are dropped from their
    /// files (which are written again without them) before the next try. The appends join the
    /// days' unread files, read when later events fall in them.
    fn catch_up(&mut self, pending: &mut Vec<Pending>) -> Result<()> {
        let entries = self.rt.block_on(self.store.entries_after(self.version))?;
        let Some(last) = entries.last() else {
            // The entry we lost to is not readable yet: try again shortly.
            std::thread::sleep(std::time::Duration::from_millis(50));
            return Ok(());
        };
        let mut appended: HashMap<Partition, Vec<DataFile>> = HashMap::new();
        for e in &entries {
            // Compaction outputs (no data change) hold events already stored.
            for (f, _) in e.add.iter().filter(|(_, dc)| *dc) {
                appended.entry(f.partition).or_default().push(f.clone());
            }
        }
        self.version = last.version;
        for (p, files) in appended {
            if let Some(buf) = self.parts.get_mut(&p) {
                for f in &files {
                    buf.add_unread(f.clone());
                }
            }
            let Some(i) = pending.iter().position(|x| x.partition == p) else {
                continue;
            };
            let times = Times::of(&pending[i].batches)?;
            let mut theirs_files = files;
            theirs_files.retain(|f| times.hit(f));
            // An append a later compaction merged is read from the day's files as listed now.
            let mut relist = |files: &mut Vec<DataFile>| {
                *files = self.rt.block_on(self.store.partition_files(&p))?;
                files.retain(|f| times.hit(f));
                Ok(())
            };
            let stored = retry_not_found(&mut theirs_files, |f| self.keys_of(f), &mut relist)?;
            let ours: Vec<Vec<u128>> = pending[i]
                .batches
                .iter()
                .map(batch_keys)
                .collect::<Result<_>>()?;
            if !ours.iter().flatten().any(|k| stored.contains(k)) {
                continue;
            }
            // Same keys: the same event when the content digests agree too.
            let theirs = retry_not_found(
                &mut theirs_files,
                |f| {
                    let mut d = DayDigests::default();
                    self.digests_of(f, &mut d)?;
                    Ok(d)
                },
                &mut relist,
            )?;
            let mut kept = Vec::new();
            let mut dropped = 0u64;
            for (b, keys) in pending[i].batches.iter().zip(&ours) {
                let digests = auditlake_model::digest::content_digests(b)?;
                let mask: BooleanArray = keys
                    .iter()
                    .zip(&digests)
                    .map(|(k, d)| {
                        let copy = stored.contains(k) && theirs.contains(d);
                        Some(!copy)
                    })
                    .collect();
                dropped += (b.num_rows() - mask.true_count()) as u64;
                if mask.true_count() > 0 {
                    kept.push(filter_record_batch(b, &mask)?);
                }
            }
            if dropped == 0 {
                continue;
            }
            self.summary.duplicates += dropped;
            self.summary.raced += dropped;
            let old = pending.remove(i);
            self.rt
                .block_on(self.store.delete_uncommitted(&old.file.path))?;
            if !kept.is_empty() {
                let again = self.write_pending(p, kept)?;
                pending.push(again);
            }
        }
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
        self.flush(&all)?;
        self.flush_rejected()?;
        if self.summary.commits > 0 {
            let started = Instant::now();
            // Readers replay the entries after the last checkpoint; keep that tail short. A
            // failed checkpoint only makes later loads slower: the events are committed.
            if let Err(e) = self.rt.block_on(self.store.checkpoint_if_behind(20)) {
                eprintln!("warning: checkpoint after the ingest failed: {e}");
            }
            self.summary.stages.commit += started.elapsed();
        }
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
    // The table to write to (created, or migrated from the folders of an older store).
    let version = rt.block_on(store.ensure_table())?;
    let threads = opts.threads.max(1);
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(threads * 2);
    // Decoded chunks waiting for the writer: deep enough that the decoders go on while it
    // encodes a file (a burst of a tenth of a second or more on one thread); with a queue of two
    // per decoder they stopped within milliseconds and left a core idle for the rest of it.
    let (out_tx, out_rx) = sync_channel::<Result<Decoded>>(threads * DECODED_PER_THREAD);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));

    let mut writer = Writer {
        store,
        rt,
        opts,
        run: RunId::new(),
        seq: 0,
        version,
        parts: HashMap::new(),
        buffered: 0,
        tick: 0,
        summary: IngestSummary {
            inputs: inputs.len(),
            ..Default::default()
        },
        rejected: Vec::new(),
        rejected_seq: 0,
        flushing: Duration::ZERO,
    };
    writer.summary.stages.decode_threads = threads;
    let chunk_tx = ChunkSender::new(chunk_tx);

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
        let mut waited = Instant::now();
        for d in out_rx.iter() {
            writer.summary.stages.writer_waiting += waited.elapsed();
            let step = d.and_then(|d| {
                progress.events(d.read);
                writer.add(d)
            });
            if let Err(e) = step {
                result = Err(e);
                break;
            }
            waited = Instant::now();
        }
        // On error, dropping the receiver stops the workers and the reader.
        drop(out_rx);
        let read = reader
            .join()
            .map_err(|_| Error::Internal("reader thread panicked".into()))?;
        result?;
        let (reading, waiting) = read?;
        writer.summary.stages.read = reading;
        writer.summary.stages.reader_waiting = waiting;
        writer.finish()
    })
}

/// Decoded chunks (about 2 MiB of input each) that may wait for the writer, per decode thread.
const DECODED_PER_THREAD: usize = 12;

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
        let started = Instant::now();
        let mut d = Decoder::new(opts);
        d.chunk(&chunk);
        drop(chunk);
        let d = d.finish().map(|mut d| {
            d.decode = started.elapsed();
            d
        });
        if tx.send(d).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_the_slice_split_does() {
        for data in [&b""[..], b"a", b"a\n", b"\n", b"a\nbc\n\nd", b"\n\n"] {
            let ours: Vec<&[u8]> = split_lines(data).collect();
            let std: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(data));
        }
    }

    fn is_doc(text: &str) -> bool {
        is_multiline_document(text.as_bytes())
    }

    #[test]
    fn a_first_line_cut_short_before_good_lines_is_json_lines() {
        let good = r#"{"kind":"Event","auditID":"a","stage":"ResponseComplete"}"#;
        let cut = &good[..30];
        assert!(!is_doc(&format!("{cut}\n{good}\n{good}\n")));
        // Blank lines and a line that is not JSON in between change nothing.
        assert!(!is_doc(&format!("\n{cut}\r\n\nnot json\n{good}\n")));
        // 100k `[` on the first line: one broken line, not the start of a document.
        assert!(!is_doc(&format!("{}\n{good}\n", "[".repeat(100_000))));
        // A complete first line, as before.
        assert!(!is_doc(&format!("{good}\n{cut}\n")));
    }

    #[test]
    fn pretty_printed_documents_and_arrays_over_lines_are_documents() {
        assert!(is_doc(include_str!(
            "../../../testdata/ingest/eventlist_webhook.json"
        )));
        assert!(is_doc("[\n{\"a\":1},\n{\"b\":2}\n]\n"));
        assert!(is_doc("[{\"a\":1},\n{\"b\":2},\n{\"c\":3}]\n"));
        // A single pretty-printed event: no line decides, so a document, as before.
        assert!(is_doc(
            "{\n  \"kind\": \"Event\",\n  \"user\": {\n    \"username\": \"a\"\n  }\n}\n"
        ));
    }

    /// `n` generated events, one JSON line each.
    fn events(n: u64) -> Vec<String> {
        let cfg = auditlake_gen::GenConfig {
            events: n,
            days: 1,
            seed: 9,
            end: chrono::DateTime::from_timestamp(1_773_964_800, 0).unwrap(),
        };
        let mut out = Vec::new();
        auditlake_gen::generate(&cfg, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn ingest_bytes(name: &str, text: &[u8], opts: &IngestOptions) -> IngestSummary {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap(), &[]).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        ingest(
            &store,
            &[Input::File(path)],
            opts,
            Arc::new(()),
            rt.handle(),
        )
        .unwrap()
    }

    fn small() -> IngestOptions {
        IngestOptions {
            chunk_bytes: 16 << 10,
            max_line_bytes: 64 << 10,
            buffer_bytes: 1 << 20,
            file_bytes: 256 << 10,
            threads: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_line_over_the_cap_is_one_reject_with_its_line_and_first_kib() {
        let ev = events(40);
        let long = format!(
            r#"{{"kind":"Event","auditID":"x","requestObject":"{}"}}"#,
            "a".repeat(300_000)
        );
        let mut text = ev[..20].join("\n");
        text += &format!("\n{long}\r\n");
        text += &ev[20..].join("\n");
        let s = ingest_bytes("long.log", text.as_bytes(), &small());
        assert_eq!((s.stored, s.rejected, s.read), (40, 1, 41));
        let r = &s.first_rejects[0];
        assert_eq!(r.location(), format!("{}:21", r.source));
        assert!(r.source.ends_with("long.log"));
        assert_eq!(
            r.error,
            format!(
                "line longer than the limit of 64 KiB ({} bytes); its first KiB is kept",
                long.len()
            )
        );
        assert_eq!(r.raw, long[..1024]);
    }

    #[test]
    fn deep_nesting_on_a_line_is_one_reject_and_nothing_overflows() {
        let ev = events(3);
        let open = "[".repeat(100_000);
        let closed = format!("{open}{}", "]".repeat(100_000));
        let nested_field = format!(r#"{{"kind":"Event","x":{closed}}}"#);
        for first in [open.as_str(), ev[0].as_str()] {
            let text = [first, &ev[0], &open, &ev[1], &closed, &nested_field, &ev[2]].join("\n");
            let s = ingest_bytes("deep.log", text.as_bytes(), &small());
            assert_eq!(s.stored, 3, "{:?}", s.first_rejects);
            let lines: Vec<u64> = s.first_rejects.iter().map(|r| r.line).collect();
            if first == open {
                assert_eq!(lines, vec![1, 3, 5, 6], "{:?}", s.first_rejects);
            } else {
                assert_eq!(lines, vec![3, 5, 6], "{:?}", s.first_rejects);
            }
        }
    }

    /// Pretty-printed, the EventList spans thousands of lines and many chunks: it is streamed,
    /// each event with the line its item starts on, in chunks of about `chunk_bytes` whatever the
    /// size of the document (`items` before `kind`, as `jq` sorts keys, is still an EventList).
    #[test]
    fn a_large_pretty_eventlist_is_streamed_in_bounded_chunks() {
        let items: Vec<serde_json::Value> = events(2_000)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let doc = serde_json::to_string_pretty(&serde_json::json!({
            "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items,
        }))
        .unwrap();
        let item_lines: Vec<u64> = (1..)
            .zip(doc.lines())
            .filter(|(_, l)| *l == "    {")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(item_lines.len(), 2_000);
        let opts = small();
        assert!(doc.len() > 50 * opts.chunk_bytes);
        let (tx, rx) = sync_channel::<Chunk>(2);
        let name: Arc<str> = Arc::from("list.json");
        let (sizes, lines, read, rejects) = thread::scope(|s| {
            let (opts, name) = (&opts, &name);
            let reader = s.spawn(move || {
                let tx = ChunkSender::new(tx);
                read_input(name, Box::new(std::io::Cursor::new(doc)), opts, &tx)
            });
            let (mut sizes, mut lines) = (Vec::new(), Vec::new());
            let mut d = Decoder::new(opts);
            for c in rx.iter() {
                let ChunkKind::Values(v) = &c.kind else {
                    panic!("a document is handed over as values");
                };
                sizes.push(v.iter().map(|v| v.text.len()).sum::<usize>());
                lines.extend(v.iter().map(|v| v.line));
                d.chunk(&c);
            }
            assert!(reader.join().unwrap().unwrap());
            (sizes, lines, d.out.read, d.out.rejects.len())
        });
        assert_eq!((read, rejects), (2_000, 0));
        assert_eq!(lines, item_lines);
        assert!(sizes.len() > 50, "{sizes:?}");
        assert!(
            sizes
                .iter()
                .all(|&n| n < opts.chunk_bytes + opts.max_line_bytes),
            "{sizes:?}"
        );
    }

    #[test]
    fn a_document_broken_midway_goes_on_as_json_lines_and_keeps_the_good_events() {
        let ev = events(31);
        let huge = format!(
            r#"{{"kind":"Event","auditID":"x","requestObject":"{}"}}"#,
            "a".repeat(100_000)
        );
        // Past the first chunk (which the document decision reads as lines), on line 32.
        let text = format!("[\n{},\n{huge},\n{}\n]\n", ev[..30].join(",\n"), ev[30]);
        assert!(text.find(&huge).unwrap() > small().chunk_bytes + ev[0].len());
        let s = ingest_bytes("doc.json", text.as_bytes(), &small());
        let mut r = s.first_rejects.clone();
        r.sort_by_key(|r| r.line);
        assert_eq!((s.stored, s.rejected), (31, 2), "{r:?}");
        assert_eq!((r[0].line, r[0].item), (32, Some(30)));
        assert_eq!(
            r[0].error,
            "a value of a document longer than the limit of 64 KiB; its first KiB is kept; \
             the input is read on as JSON lines from line 33"
        );
        assert_eq!(r[0].raw, huge[..1024]);
        assert_eq!((r[1].line, r[1].item), (34, None), "the closing `]`");
    }

    /// Ingests one file with the default options.
    fn ingest_file(
        store: &Store,
        rt: &tokio::runtime::Runtime,
        log: std::path::PathBuf,
    ) -> Result<IngestSummary> {
        ingest(
            store,
            &[Input::File(log)],
            &IngestOptions::default(),
            Arc::new(()),
            rt.handle(),
        )
    }

    /// A day's read retries when a listed file vanished (a compaction removed it): the store's
    /// NotFound is recognised, and the read is done again from a new listing.
    #[test]
    fn a_read_of_a_vanished_file_is_retried_from_a_new_listing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap(), &[]).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let line = r#"{"auditID":"a","stage":"ResponseComplete","verb":"get","requestReceivedTimestamp":"2026-03-19T10:00:00Z"}"#;
        let log = dir.path().join("a.log");
        std::fs::write(&log, format!("{line}\n")).unwrap();
        ingest_file(&store, &rt, log).unwrap();
        let files = rt.block_on(store.list_data_files(None)).unwrap();
        std::fs::remove_file(format!("/{}", files[0].meta.location)).unwrap();
        let err = rt.block_on(store.read_file(&files[0], None)).unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let mut calls = 0;
        let mut relists = 0;
        let out = retry_not_found(
            &mut calls,
            |calls| {
                *calls += 1;
                if *calls < 3 {
                    return Err(Error::Store(
                        rt.block_on(store.read_file(&files[0], None)).unwrap_err(),
                    ));
                }
                Ok(*calls)
            },
            |_| {
                relists += 1;
                Ok(())
            },
        );
        assert_eq!(
            (out.unwrap(), relists),
            (3, 2),
            "a new listing before each retry"
        );
        let mut calls = 0;
        let out: Result<()> = retry_not_found(
            &mut calls,
            |calls| {
                *calls += 1;
                Err(Error::Store(
                    rt.block_on(store.read_file(&files[0], None)).unwrap_err(),
                ))
            },
            |_| Ok(()),
        );
        assert!(
            out.is_err() && calls == 6,
            "gives up after 5 retries: {calls}"
        );
    }

    /// Dedup reads only the stored files that an incoming event's time falls in: with an earlier
    /// hour's file gone behind the store's back, a later hour still ingests, and its copies are
    /// still found; an event at the gone file's time needs it, and the read fails by name.
    #[test]
    fn dedup_reads_only_the_files_an_event_falls_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap(), &[]).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let line = |id: &str, hour: u32| {
            format!(
                r#"{{"auditID":"{id}","stage":"ResponseComplete","verb":"get","requestReceivedTimestamp":"2026-03-19T{hour:02}:00:00Z"}}"#
            )
        };
        let run = |name: &str, lines: &[String]| {
            let log = dir.path().join(name);
            std::fs::write(&log, lines.join("\n") + "\n").unwrap();
            ingest_file(&store, &rt, log)
        };
        run("ten.log", &[line("a", 10), line("b", 10)]).unwrap();
        run("twelve.log", &[line("c", 12), line("d", 12)]).unwrap();
        let files = rt.block_on(store.list_data_files(None)).unwrap();
        let ten = files
            .iter()
            .find(|f| {
                f.ts_range.is_some_and(|(lo, _)| {
                    auditlake_model::time::format_canonical(lo).contains("T10:")
                })
            })
            .expect("the 10:00 file");
        std::fs::remove_file(format!("/{}", ten.meta.location)).unwrap();
        // A copy of 12:00's events and a new one at 12:00: the gone file is not needed.
        let s = run("again.log", &[line("c", 12), line("d", 12), line("e", 12)]).unwrap();
        assert_eq!((s.stored, s.duplicates), (1, 2));
        // An event at 10:00 can be a copy of what the gone file held: it must be read.
        let err = run("late.log", &[line("a", 10)]).unwrap_err();
        assert!(
            err.to_string().contains("not found") || err.to_string().contains("No such"),
            "{err}"
        );
    }

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
