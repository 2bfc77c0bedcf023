//! The auditlake store: where events live and how files appear in it.
//!
//! Start from [`Store::open`] with a path or URL (`./auditlake-data`, `file:///srv/audit`,
//! `s3://bucket/prefix`). Every read and write goes through `object_store`, so S3 is a
//! configuration change, not a rewrite.
//!
//! ```text
//! <root>/
//!   _delta_log/<version>.json                   the transaction log (Delta Lake), see [`log`]
//!   date=2026-03-19/part-<run>-<seq>.parquet   events of a UTC day, sorted by ts, zstd, page index
//!   _rejected/<run>-<seq>.jsonl                 bad input kept for inspection
//! ```
//!
//! The log is the truth: a data file is part of the store from the commit that adds it until the
//! commit that removes it. Names starting with `_` are ignored by Spark, Hive, Trino and Delta
//! readers.

mod error;
pub mod guard;
pub mod integrity;
pub mod legacy;
pub mod log;
pub mod paths;
mod store;
pub mod writer;

pub use error::{Error, Result, is_not_found_error};
pub use guard::{ReadOnlyUnder, StoreBounds};
pub use log::{AsOf, Commit, CommitKind, LogEntry, NewFile, Snapshot, Version};
pub use paths::{DataFilePath, Partition, RunId};
pub use store::{DataFile, Store};
pub use writer::{Encoded, FileEncoder, WriteOptions, encode_parquet};
