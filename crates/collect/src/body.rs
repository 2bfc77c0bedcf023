//! What a request body holds: an `EventList` (what the apiserver's webhook backend sends), a
//! single `Event`, a JSON array of events, or newline-delimited events (what Vector's `http` sink
//! and Fluent Bit's `http` output send from a tailed log file).
//!
//! Managed providers' envelopes (a Firehose HTTP endpoint delivery, a Pub/Sub push, AKS
//! `records`) are JSON too, and are read as `--format` says, as the ingest reads them.
//!
//! The body is checked item by item with the decoder the ingest uses ([`decode_input`]), so the
//! counts a client is told are the ones the store ends up with: good items are stored, the others
//! are kept in the rejected area (masked like every reject). Both go to the write-ahead log as one
//! JSON text per line, which the ingest then reads like any log file.

use std::io::Read;

use auditlake_ingest::formats::{Format, decode_input};
use auditlake_model::decode::DecodeOptions;
use serde_json::value::RawValue;

/// Rejects reported back to the client (all are counted, and all are kept in the store).
const REPORTED_REJECTS: usize = 10;

/// A body that cannot be taken at all: nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not valid gzip: {0}")]
    Gzip(String),
    #[error("the body is not UTF-8 text: {0}")]
    NotUtf8(String),
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is empty")]
    Empty,
    #[error("unsupported Content-Encoding {0:?}: send identity or gzip")]
    Encoding(String),
}

/// An item of the body that is not an event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemReject {
    /// The item's index in the body (0-based: the `EventList` item, array element or line).
    pub item: usize,
    pub error: String,
}

/// A body, split into items and checked.
#[derive(Debug, Default)]
pub struct Parsed {
    /// One JSON text per line, each ending with `\n`: every item, good or not.
    pub lines: Vec<u8>,
    pub accepted: u64,
    pub rejected: u64,
    pub first_rejects: Vec<ItemReject>,
}

impl Parsed {
    fn push(&mut self, index: usize, text: &str, opts: &DecodeOptions, format: Format) {
        // The ingest reads each line with `decode_input` (an item may itself be an
        // EventList): counted the same way here, so the client is told what the store gets.
        let reject = |this: &mut Self, e: String| {
            this.rejected += 1;
            if this.first_rejects.len() < REPORTED_REJECTS {
                this.first_rejects.push(ItemReject {
                    item: index,
                    error: e,
                });
            }
        };
        let mut errors = Vec::new();
        let mut good = 0;
        match decode_input(text, format, opts, &mut |_, _, row| match row {
            Ok(_) => good += 1,
            Err(e) => errors.push(e.to_string()),
        }) {
            Ok(()) => {
                self.accepted += good;
                for e in errors {
                    reject(self, e);
                }
            }
            Err(e) => reject(self, e.to_string()),
        }
        // A raw line break can only be whitespace between tokens in valid JSON (inside strings
        // it is escaped), so replacing it keeps the text's meaning and makes it one line. An
        // invalid item is kept as it came, on one line, for the rejected area.
        self.lines.extend(
            text.trim()
                .bytes()
                .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
        self.lines.push(b'\n');
    }
}

/// Decompresses the body when `encoding` says gzip, never past `limit` bytes.
pub fn decode_content(
    raw: &[u8],
    encoding: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => Ok(raw.to_vec()),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit + 1));
            let mut dec = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
            dec.read_to_end(&mut out)
                .map_err(|e| BodyError::Gzip(e.to_string()))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            Ok(out)
        }
        Some(other) => Err(BodyError::Encoding(other.to_owned())),
    }
}

/// Splits and checks a (decompressed) body.
pub fn parse_body(body: &[u8], opts: &DecodeOptions, format: Format) -> Result<Parsed, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotUtf8(e.to_string()))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }
    let mut parsed = Parsed::default();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(trimmed).map_err(|e| BodyError::NotJson(e.to_string()))?;
        for (i, item) in items.iter().enumerate() {
            parsed.push(i, item.get(), opts, format);
        }
        return Ok(parsed);
    }
    // One JSON value (an EventList or an Event), or several on their own lines.
    match serde_json::from_str::<&RawValue>(trimmed) {
        Ok(_) => {
            if let Some(items) = event_list_items(trimmed)? {
                for (i, item) in items.iter().enumerate() {
                    parsed.push(i, item.get(), opts, format);
                }
            } else {
                parsed.push(0, trimmed, opts, format);
            }
            Ok(parsed)
        }
        Err(whole) => {
            let mut lines = trimmed.lines().filter(|l| !l.trim().is_empty()).peekable();
            // Newline-delimited only if the first line is a JSON text of its own; otherwise the
            // body is simply broken, and the parser's message for the whole body says where.
            let first_ok = lines
                .peek()
                .is_some_and(|l| serde_json::from_str::<&RawValue>(l).is_ok());
            if !first_ok || trimmed.lines().filter(|l| !l.trim().is_empty()).count() < 2 {
                return Err(BodyError::NotJson(whole.to_string()));
            }
            for (i, line) in lines.enumerate() {
                parsed.push(i, line, opts, format);
            }
            Ok(parsed)
        }
    }
}

/// The items of an `EventList` document, or `None` for any other object.
fn event_list_items(text: &str) -> Result<Option<Vec<&RawValue>>, BodyError> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        kind: Option<&'a str>,
        #[serde(borrow)]
        items: Option<&'a RawValue>,
    }
    let Ok(head) = serde_json::from_str::<Head<'_>>(text) else {
        return Ok(None);
    };
    if head.kind != Some("EventList") {
        return Ok(None);
    }
    let Some(items) = head.items else {
        return Ok(Some(Vec::new()));
    };
    if items.get().trim() == "null" {
        return Ok(Some(Vec::new()));
    }
    serde_json::from_str(items.get())
        .map(Some)
        .map_err(|e| BodyError::NotJson(format!("EventList items: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"},"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.100000Z"}"#;

    fn parse(s: &str) -> Result<Parsed, BodyError> {
        parse_body(s.as_bytes(), &DecodeOptions::default(), Format::Auto)
    }

    #[test]
    fn shapes() {
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{EVENT},{{"kind":"Event"}},{EVENT}]}}"#
        );
        let p = parse(&list).unwrap();
        assert_eq!((p.accepted, p.rejected), (2, 1));
        assert_eq!(p.first_rejects[0].item, 1);
        assert_eq!(p.lines.iter().filter(|b| **b == b'\n').count(), 3);

        let p = parse(EVENT).unwrap();
        assert_eq!((p.accepted, p.rejected), (1, 0));
        let p = parse(&format!("[{EVENT},\n {EVENT}]")).unwrap();
        assert_eq!((p.accepted, p.rejected), (2, 0));
        let p = parse(&format!("{EVENT}\n{EVENT}\nnot json\n")).unwrap();
        assert_eq!((p.accepted, p.rejected), (2, 1));
        assert_eq!(p.first_rejects[0].item, 2);

        // A pretty-printed event is stored as one line.
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(EVENT).unwrap(),
        )
        .unwrap();
        let p = parse(&pretty).unwrap();
        assert_eq!(p.accepted, 1);
        assert_eq!(p.lines.iter().filter(|b| **b == b'\n').count(), 1);
    }

    #[test]
    fn broken_bodies() {
        assert!(matches!(parse("not json"), Err(BodyError::NotJson(_))));
        assert!(matches!(parse("{\"kind\": "), Err(BodyError::NotJson(_))));
        assert!(matches!(parse("  \n"), Err(BodyError::Empty)));
        assert!(matches!(
            parse_body(&[0xff, 0xfe], &DecodeOptions::default(), Format::Auto),
            Err(BodyError::NotUtf8(_))
        ));
        assert!(matches!(
            parse(&format!("{EVENT}]")),
            Err(BodyError::NotJson(_))
        ));
    }

    #[test]
    fn gzip_is_bounded() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b' '; 100_000]).unwrap();
        let z = gz.finish().unwrap();
        assert_eq!(
            decode_content(&z, Some("gzip"), 100_000).unwrap().len(),
            100_000
        );
        assert!(matches!(
            decode_content(&z, Some("gzip"), 99_999),
            Err(BodyError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_content(b"xx", Some("gzip"), 10),
            Err(BodyError::Gzip(_))
        ));
        assert!(matches!(
            decode_content(b"xx", Some("br"), 10),
            Err(BodyError::Encoding(_))
        ));
    }
}
