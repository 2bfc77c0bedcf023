//! Reading an input in bounded memory, whatever it holds: JSON lines one line at a time with a
//! cap on the line length ([`read_line`]), and a JSON document spread over lines one item at a
//! time ([`stream_document`]).
//!
//! Neither ever holds more than one line or one item (each at most the cap) plus a read buffer,
//! so a 10 GB line or a 10 GB pretty-printed `EventList` costs no more memory than a small one.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, BufRead, Read};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// How much of a text over the limit is kept, in its reject, to show what it was.
pub(crate) const KEPT_HEAD_BYTES: usize = 1024;

/// A byte count as people read limits: `64 MiB`, `16 KiB`, `100 bytes`.
pub(crate) fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A line was appended to the buffer, with its `\n` when it has one (the last line of an
    /// input may not).
    Text,
    /// A line longer than the limit: it was not appended, and was read past in bounded memory.
    TooLong {
        /// Its length in bytes, without its line end (`\n` or `\r\n`).
        len: u64,
        /// Its first [`KEPT_HEAD_BYTES`] bytes.
        head: Vec<u8>,
    },
    /// Nothing is left.
    End,
}

/// `fill_buf`, tried again when interrupted.
fn fill<R: BufRead + ?Sized>(r: &mut R) -> io::Result<&[u8]> {
    loop {
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    // Filled: this returns the same buffer (the borrow checker cannot yet see that returning the
    // first one is sound).
    r.fill_buf()
}

/// Appends the next line of `r` to `out`, unless it is longer than `max` bytes (without its line
/// end): then only its first KiB is kept and the rest is skipped up to the next `\n`, so that a
/// line of any length costs at most `max` bytes (`BufRead::read_until` would hold it whole).
pub(crate) fn read_line<R: BufRead + ?Sized>(
    r: &mut R,
    max: usize,
    out: &mut Vec<u8>,
) -> io::Result<Line> {
    let start = out.len();
    // The line so far, without `\n`; its last byte (a `\r` before the `\n` is a line end).
    let mut len = 0u64;
    let mut last = None;
    let mut any = false;
    let mut newline = false;
    // Set once the line is known to be too long: its head, and nothing more is kept.
    let mut head: Option<Vec<u8>> = None;
    let cut = |out: &mut Vec<u8>, keep: usize| {
        let end = start + keep.min(KEPT_HEAD_BYTES).min(out.len() - start);
        let h = out[start..end].to_vec();
        out.truncate(start);
        h
    };
    loop {
        let buf = fill(r)?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (piece, found) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        len += piece.len() as u64;
        if let Some(&b) = piece.last() {
            last = Some(b);
        }
        match &mut head {
            None => {
                out.extend_from_slice(piece);
                // One byte over the limit may still be the `\r` of a `\r\n`.
                if len > (max as u64).saturating_add(1) {
                    head = Some(cut(out, KEPT_HEAD_BYTES));
                }
            }
            Some(h) => {
                let room = KEPT_HEAD_BYTES - h.len();
                h.extend_from_slice(&piece[..room.min(piece.len())]);
            }
        }
        let used = piece.len() + usize::from(found);
        r.consume(used);
        if found {
            newline = true;
            break;
        }
    }
    if !any {
        return Ok(Line::End);
    }
    let len = len - u64::from(newline && last == Some(b'\r'));
    if head.is_none() && len > max as u64 {
        head = Some(cut(out, len as usize));
    }
    match head {
        Some(mut head) => {
            // Without the `\r` of a `\r\n` read into it.
            head.truncate(usize::try_from(len).unwrap_or(usize::MAX));
            Ok(Line::TooLong { len, head })
        }
        None => {
            if newline {
                out.push(b'\n');
            }
            Ok(Line::Text)
        }
    }
}

/// Skips the rest of the current line, its `\n` included. Returns whether there was a `\n`.
fn skip_line<R: BufRead + ?Sized>(r: &mut R) -> io::Result<bool> {
    loop {
        let buf = fill(r)?;
        if buf.is_empty() {
            return Ok(false);
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                r.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

/// One JSON text taken out of a document, for a decoder.
#[derive(Debug)]
pub(crate) struct Value {
    /// The line it starts on (exact for objects and arrays, which is what events are).
    pub line: u64,
    /// Its index in the top-level array or the `EventList`'s `items`.
    pub item: Option<usize>,
    pub text: Box<str>,
}

/// How [`stream_document`] ended.
#[derive(Debug)]
pub(crate) enum Streamed {
    /// At the end of the input.
    End,
    /// The sink asked to stop.
    Stopped,
    /// The document cannot be read on: not JSON, or one value of it longer than the limit. The
    /// reader is left at the start of line `next_line`.
    Broken {
        line: u64,
        item: Option<usize>,
        error: String,
        /// The first KiB of the value that was being read.
        head: Vec<u8>,
        next_line: u64,
    },
}

/// Hands each value of a JSON document spread over lines to `sink`, in bounded memory: each
/// element of a top-level array, each element of an `EventList`'s `items`, and any other
/// top-level value whole; a stream of such values (`jq .` output) is read to its end.
///
/// Documents are always streamed rather than read whole: memory then stays at one item (at most
/// `max` bytes) plus a read buffer whatever the document's size, the items are decoded by all the
/// decode threads rather than one, and there is a single path to test. The price is that a
/// document broken in the middle cannot be resynchronised: the value being read is reported as
/// [`Streamed::Broken`] with its first KiB, and the caller reads the rest of the input as JSON
/// lines, so that a file wrongly taken for a document (see `is_multiline_document`) loses at
/// most a line, and nothing of a broken one is dropped unreported.
///
/// An object with an `items` member is taken for an `EventList` unless a `kind` other than
/// `EventList` came before `items` (an apiserver writes `kind` first); its other members are
/// dropped, as the decoder of a whole `EventList` drops them. Any other object is handed over
/// whole (rebuilt from its members, each verbatim).
///
/// `sink` returns false to stop. Errors are those of reading the input.
pub(crate) fn stream_document<R: BufRead + ?Sized>(
    r: &mut R,
    first_line: u64,
    max: usize,
    sink: impl FnMut(Value) -> bool,
) -> io::Result<Streamed> {
    let state = State {
        pos: Position {
            line: Cell::new(first_line),
            since_mark: Cell::new(0),
            head_line: Cell::new(first_line),
            head: RefCell::new(Vec::new()),
            last: Cell::new(b'\n'),
            over: Cell::new(false),
            max: max as u64,
        },
        sink: RefCell::new(sink),
        stopped: Cell::new(false),
        item: Cell::new(None),
        value_line: Cell::new(first_line),
    };
    loop {
        // Between top-level values: whitespace, or the end.
        loop {
            let buf = fill(r)?;
            if buf.is_empty() {
                return Ok(Streamed::End);
            }
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            state.pos.note(&buf[..ws]);
            let more = ws < buf.len();
            r.consume(ws);
            if more {
                break;
            }
        }
        state.value_line.set(state.pos.line.get());
        state.pos.mark();
        state.item.set(None);
        // A deserializer per top-level value, dropped after it: serde_json reads no further than
        // the closing `}` or `]`, so nothing of the next value is lost.
        let mut de = serde_json::Deserializer::from_reader(Tracked {
            inner: &mut *r,
            pos: &state.pos,
        });
        let res = Top(&state).deserialize(&mut de);
        drop(de);
        let Err(e) = res else { continue };
        if state.stopped.get() {
            return Ok(Streamed::Stopped);
        }
        let pos = &state.pos;
        let over = pos.over.get();
        if e.is_io() && !over {
            return Err(io::Error::from(e));
        }
        let head = pos.head.take();
        let (line, what) = if over {
            (
                pos.head_line.get(),
                format!(
                    "a value of a document longer than the limit of {}; its first KiB is kept",
                    size_text(max)
                ),
            )
        } else {
            // serde_json counts lines from the start of this top-level value.
            let line = match e.line() {
                0 => pos.line.get(),
                l => state.value_line.get() + l as u64 - 1,
            };
            let at = format!(" at line {} column {}", e.line(), e.column());
            let full = e.to_string();
            let msg = full.strip_suffix(&at).unwrap_or(&full);
            (
                line,
                format!(
                    "invalid JSON in a document: {msg} at column {}; the first KiB of the value is kept",
                    e.column()
                ),
            )
        };
        let next_line = if pos.last.get() == b'\n' {
            pos.line.get()
        } else {
            skip_line(r)?;
            pos.line.get() + 1
        };
        return Ok(Streamed::Broken {
            line,
            item: state.item.get(),
            error: format!("{what}; the input is read on as JSON lines from line {next_line}"),
            head,
            next_line,
        });
    }
}

/// Where the reader is in the input, shared by the reader that serde_json pulls from and the
/// visitors that hand out values.
struct Position {
    /// The current line number.
    line: Cell<u64>,
    /// Bytes read since the start of the current value (the `,` and whitespace before it
    /// included), and the value's first KiB and the line that starts on.
    since_mark: Cell<u64>,
    head: RefCell<Vec<u8>>,
    head_line: Cell<u64>,
    /// The last byte read.
    last: Cell<u8>,
    /// Whether reading stopped because a value went over `max`.
    over: Cell<bool>,
    max: u64,
}

impl Position {
    fn note(&self, bytes: &[u8]) {
        let newlines = |b: &[u8]| b.iter().filter(|&&b| b == b'\n').count() as u64;
        let mut head = self.head.borrow_mut();
        let mut kept = bytes;
        if head.is_empty() {
            let lead = bytes
                .iter()
                .take_while(|&&b| b.is_ascii_whitespace() || b == b',')
                .count();
            kept = &bytes[lead..];
            if !kept.is_empty() {
                self.head_line
                    .set(self.line.get() + newlines(&bytes[..lead]));
            }
        }
        let room = KEPT_HEAD_BYTES.saturating_sub(head.len());
        head.extend_from_slice(&kept[..room.min(kept.len())]);
        self.line.set(self.line.get() + newlines(bytes));
        self.since_mark
            .set(self.since_mark.get() + bytes.len() as u64);
        if let Some(&b) = bytes.last() {
            self.last.set(b);
        }
    }

    /// A new value starts.
    fn mark(&self) {
        self.since_mark.set(0);
        self.head.borrow_mut().clear();
        self.head_line.set(self.line.get());
    }

    /// The line a value just read started on.
    fn line_of(&self, text: &str) -> u64 {
        let inside = text.bytes().filter(|&b| b == b'\n').count() as u64;
        self.line.get().saturating_sub(inside)
    }
}

/// The input as serde_json reads it: counted, and cut off once a value is longer than the limit.
struct Tracked<'p, R: ?Sized> {
    inner: &'p mut R,
    pos: &'p Position,
}

impl<R: BufRead + ?Sized> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let used = self.pos.since_mark.get();
        if used >= self.pos.max {
            self.pos.over.set(true);
            return Err(io::Error::other("a value longer than the limit"));
        }
        let room = usize::try_from(self.pos.max - used).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let n = self.inner.read(&mut buf[..n])?;
        self.pos.note(&buf[..n]);
        Ok(n)
    }
}

struct State<F> {
    pos: Position,
    sink: RefCell<F>,
    stopped: Cell<bool>,
    /// The item being read, for the reject of a broken document.
    item: Cell<Option<usize>>,
    /// The line the current top-level value starts on.
    value_line: Cell<u64>,
}

impl<F: FnMut(Value) -> bool> State<F> {
    fn emit<E: de::Error>(&self, line: u64, item: Option<usize>, text: Box<str>) -> Result<(), E> {
        let go_on = (self.sink.borrow_mut())(Value { line, item, text });
        if go_on {
            Ok(())
        } else {
            self.stopped.set(true);
            Err(E::custom("stopped"))
        }
    }

    /// Hands out each element of an array as it is read.
    fn items<'de, A: SeqAccess<'de>>(&self, mut seq: A) -> Result<(), A::Error> {
        for i in 0.. {
            self.item.set(Some(i));
            self.pos.mark();
            let Some(v) = seq.next_element::<Box<RawValue>>()? else {
                break;
            };
            let line = self.pos.line_of(v.get());
            self.emit(line, Some(i), v.into())?;
        }
        self.item.set(None);
        self.pos.mark();
        Ok(())
    }
}

/// A top-level value of a document.
struct Top<'s, F>(&'s State<F>);

impl<'de, F: FnMut(Value) -> bool> DeserializeSeed<'de> for Top<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<F: FnMut(Value) -> bool> Top<'_, F> {
    fn scalar<E: de::Error>(self, v: serde_json::Value) -> Result<(), E> {
        let s = self.0;
        s.emit(s.value_line.get(), None, v.to_string().into())
    }
}

impl<'de, F: FnMut(Value) -> bool> Visitor<'de> for Top<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.items(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let s = self.0;
        let mut members: Vec<(String, Box<RawValue>)> = Vec::new();
        // `Some(false)` once a `kind` other than `EventList` was read.
        let mut event_list = None;
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" && !streamed && event_list != Some(false) {
                match map.next_value_seed(Items(s))? {
                    None => streamed = true,
                    Some(v) => members.push((key, v)),
                }
                continue;
            }
            let v: Box<RawValue> = map.next_value()?;
            if key == "kind" {
                event_list = Some(serde_json::from_str::<&str>(v.get()).ok() == Some("EventList"));
            }
            members.push((key, v));
        }
        if streamed {
            return Ok(());
        }
        let mut text = String::from("{");
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::Value::from(k.as_str()).to_string());
            text.push(':');
            text.push_str(v.get());
        }
        text.push('}');
        s.emit(s.value_line.get(), None, text.into())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(v.into())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(v.into())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(serde_json::Value::Null)
    }
}

/// The `items` of an `EventList`: streamed when an array (`None`), else kept as a member
/// (`Some`), for the decoder to reject the list as it would a whole one.
struct Items<'s, F>(&'s State<F>);

impl<'de, F: FnMut(Value) -> bool> DeserializeSeed<'de> for Items<'_, F> {
    type Value = Option<Box<RawValue>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn raw<E: de::Error>(v: serde_json::Value) -> Result<Option<Box<RawValue>>, E> {
    RawValue::from_string(v.to_string())
        .map(Some)
        .map_err(E::custom)
}

impl<'de, F: FnMut(Value) -> bool> Visitor<'de> for Items<'_, F> {
    type Value = Option<Box<RawValue>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the items of an EventList")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.items(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        raw(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        raw(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        raw(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        raw(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        raw(v.into())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        raw(v.into())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        raw(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut r = io::BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let l = read_line(&mut r, max, &mut buf).unwrap();
            if l == Line::End {
                return out;
            }
            out.push((l, buf));
        }
    }

    #[test]
    fn a_line_over_the_cap_is_skipped_with_its_head_and_length() {
        let long = [b'a'; 3000];
        let mut input = b"{}\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\n[1]\n");
        let got = lines(&input, 100);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], (Line::Text, b"{}\n".to_vec()));
        assert_eq!(
            got[1],
            (
                Line::TooLong {
                    len: 3000,
                    head: vec![b'a'; KEPT_HEAD_BYTES]
                },
                Vec::new()
            )
        );
        assert_eq!(got[2], (Line::Text, b"[1]\n".to_vec()));
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_kept_and_one_byte_more_is_not() {
        let got = lines(b"aaaa\naaaaa\n", 4);
        assert_eq!(got[0], (Line::Text, b"aaaa\n".to_vec()));
        assert_eq!(
            got[1],
            (
                Line::TooLong {
                    len: 5,
                    head: b"aaaaa".to_vec()
                },
                Vec::new()
            )
        );
        // No cap at all.
        assert_eq!(
            lines(b"aaaa\n", usize::MAX),
            vec![(Line::Text, b"aaaa\n".to_vec())]
        );
        // The same at the end of the input, without a `\n`.
        assert_eq!(lines(b"aaaa", 4), vec![(Line::Text, b"aaaa".to_vec())]);
        assert!(matches!(
            lines(b"aaaaa", 4)[0].0,
            Line::TooLong { len: 5, .. }
        ));
    }

    #[test]
    fn crlf_does_not_count_against_the_cap_but_a_lone_cr_does() {
        let got = lines(b"aaaa\r\nbbbb\r\r\n", 4);
        assert_eq!(got[0], (Line::Text, b"aaaa\r\n".to_vec()));
        assert!(
            matches!(&got[1].0, Line::TooLong { len: 5, head } if head == b"bbbb\r"),
            "{got:?}"
        );
        // A `\r` that ends the input is not a line end.
        assert!(matches!(
            lines(b"aaaa\r", 4)[0].0,
            Line::TooLong { len: 5, .. }
        ));
    }

    #[test]
    fn the_last_line_without_a_newline_and_blank_lines_are_lines() {
        let got = lines(b"\n{}\n\nlast", 64);
        let texts: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(texts, vec![&b"\n"[..], b"{}\n", b"\n", b"last"]);
        assert!(got.iter().all(|(l, _)| *l == Line::Text));
        assert!(lines(b"", 64).is_empty());
    }

    fn stream(input: &str, max: usize) -> (Vec<Value>, Streamed, String) {
        let mut r = io::BufReader::with_capacity(16, input.as_bytes());
        let mut got = Vec::new();
        let end = stream_document(&mut r, 1, max, |v| {
            got.push(v);
            true
        })
        .unwrap();
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        (got, end, rest)
    }

    #[test]
    fn items_of_a_pretty_eventlist_come_one_by_one_with_their_lines() {
        let doc = "{\n  \"kind\": \"EventList\",\n  \"items\": [\n    {\n      \"a\": 1\n    },\n    {\"b\": [2,\n 3]}\n  ]\n}\n[\n{\"c\":3}, 4]\n{\"kind\":\"Event\", \"x\": [1]}\n";
        let (got, end, _) = stream(doc, 1 << 20);
        assert!(matches!(end, Streamed::End), "{end:?}");
        let got: Vec<(u64, Option<usize>, &str)> =
            got.iter().map(|v| (v.line, v.item, &*v.text)).collect();
        assert_eq!(
            got,
            vec![
                (4, Some(0), "{\n      \"a\": 1\n    }"),
                (7, Some(1), "{\"b\": [2,\n 3]}"),
                (12, Some(0), "{\"c\":3}"),
                (12, Some(1), "4"),
                (13, None, "{\"kind\":\"Event\",\"x\":[1]}"),
            ]
        );
    }

    #[test]
    fn a_broken_document_says_where_and_leaves_the_reader_at_the_next_line() {
        let doc = "[\n{\"a\": 1},\n{\"b\": tru },\n{\"c\": 3}\n]\n";
        let (got, end, rest) = stream(doc, 1 << 20);
        assert_eq!(got.len(), 1);
        let Streamed::Broken {
            line,
            item,
            error,
            head,
            next_line,
        } = end
        else {
            panic!("{end:?}")
        };
        assert_eq!((line, item, next_line), (3, Some(1), 4), "{error}");
        assert!(error.starts_with("invalid JSON in a document: "), "{error}");
        assert!(error.contains("at column"), "{error}");
        assert!(head.starts_with(b"{\"b\": tru "), "{head:?}");
        assert_eq!(rest, "{\"c\": 3}\n]\n");
    }

    #[test]
    fn an_item_over_the_cap_stops_the_stream_in_bounded_memory() {
        let big = "x".repeat(5000);
        let doc = format!("[\n{{\"a\": 1}},\n{{\"b\": \"{big}\"}},\n{{\"c\": 3}}\n]\n");
        let (got, end, rest) = stream(&doc, 100);
        assert_eq!(got.len(), 1);
        let Streamed::Broken {
            line,
            item,
            error,
            head,
            next_line,
        } = end
        else {
            panic!("{end:?}")
        };
        assert_eq!((line, item, next_line), (3, Some(1), 4), "{error}");
        assert!(
            error.starts_with("a value of a document longer than the limit of 100 bytes"),
            "{error}"
        );
        assert!(head.starts_with(b"{\"b\": \"xxx"), "{head:?}");
        assert!(head.len() <= 100);
        assert_eq!(rest, "{\"c\": 3}\n]\n");
    }

    #[test]
    fn deep_nesting_in_a_document_neither_overflows_nor_panics() {
        let deep = "[".repeat(100_000);
        let (got, end, _) = stream(&format!("[{deep}\n{{}}\n"), 1 << 20);
        assert!(got.is_empty());
        assert!(matches!(end, Streamed::Broken { .. }), "{end:?}");
        let closed = format!("{{\"items\": [{deep}{}]}}", "]".repeat(100_000));
        let (got, end, _) = stream(&closed, 1 << 20);
        assert!(matches!(end, Streamed::End), "{end:?}");
        assert_eq!(got.len(), 1, "one item, for the decoder to reject");
        assert_eq!(got[0].text.len(), 200_000);
    }
}
