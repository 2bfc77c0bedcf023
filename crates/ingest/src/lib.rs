//! Ingest: audit logs and EventLists in, deduplicated Parquet files out.
//!
//! Start from [`ingest`] with [`Input`]s (see [`expand_inputs`]) and [`IngestOptions`].
//!
//! ```text
//!  reader thread            decode workers (N)              writer (caller's thread)
//!  files/stdin/.gz ─chunks─▶ lines ─▶ EventRow ─▶ Arrow ─▶ dedup by (audit_id, stage) against
//!  (bounded channel)         per-hour batches, rejects      the partition's stored keys ─▶
//!                                                           buffer ─▶ sort by ts ─▶ Parquet ─▶
//!                                                           atomic publish
//! ```
//!
//! The reader cuts JSON lines into chunks of whole lines, and streams a document spread over
//! lines (a pretty-printed `EventList` or array) item by item into chunks of the same size;
//! a line or item longer than [`IngestOptions::max_line_bytes`] is rejected with its first KiB
//! rather than held.
//!
//! Memory is bounded whatever the input: a few chunks in flight, one line or item at most, the
//! write buffer ([`IngestOptions::buffer_bytes`]), and the dedup keys (16 bytes per stored event)
//! of the hours touched.
//! A crash leaves only whole files behind; running the same ingest again stores what is missing
//! and counts the rest as duplicates.

mod error;
pub mod formats;
mod input;
mod lines;
mod pipeline;
mod rejects;

pub use error::{Error, Result};
pub use formats::Format;
pub use input::{Input, expand_inputs};
pub use pipeline::{IngestOptions, IngestSummary, Progress, ingest};
pub use rejects::Reject;
