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
//! Memory is bounded: a few chunks in flight, the write buffer ([`IngestOptions::buffer_bytes`]),
//! and the dedup keys (16 bytes per stored event) of the hours touched.
//! A crash leaves only whole files behind; running the same ingest again stores what is missing
//! and counts the rest as duplicates.

mod error;
mod input;
mod pipeline;
mod rejects;

pub use error::{Error, Result};
pub use input::{Input, expand_inputs};
pub use pipeline::{IngestOptions, IngestSummary, Progress, ingest};
pub use rejects::Reject;
