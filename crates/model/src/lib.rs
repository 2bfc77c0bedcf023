//! The Kubernetes audit event model of auditlake and its Arrow schema. No I/O.
//!
//! Start from [`decode::decode_document`], which turns one JSON text (an `Event`, an `EventList`, or
//! an older v1beta1/v1alpha1 event) into [`decode::EventRow`]s, and from [`batch::EventBatchBuilder`],
//! which turns rows into Arrow [`RecordBatch`](arrow::record_batch::RecordBatch)es with the
//! [`schema::audit_events_schema`]. [`encode::row_to_json`] is the way back: it rebuilds, from a
//! stored row, a JSON value equal to the one that went in.
//!
//! ```text
//!  JSON text ──decode──▶ EventRow ──EventBatchBuilder──▶ RecordBatch ──(store)──▶ Parquet
//!                                                              │
//!  JSON value ◀──────────────── encode::row_to_json ◀──────────┘
//! ```
//!
//! Lossless by construction: every key of the event is either held by a typed column, when its
//! value has the type the column expects, or kept verbatim in the `unmapped` column (a JSON object
//! with the same nesting as the event). Presence that columns cannot express (a timestamp that was
//! absent, `kind: "Event"`) is recorded in `shape_flags`.

pub mod batch;
pub mod decode;
pub mod digest;
pub mod encode;
pub mod redact;
pub mod schema;
pub mod time;

pub use batch::EventBatchBuilder;
pub use decode::{DecodeError, DecodeOptions, EventRow, decode_document};
pub use schema::audit_events_schema;
