//! The auditlake store: where events live and how files appear in it.
//!
//! Start from [`Store::open`] with a path or URL (`./auditlake-data`, `file:///srv/audit`,
//! `s3://bucket/prefix`). Every read and write goes through `object_store`, so S3 is a
//! configuration change, not a rewrite.
//!
//! ```text
//! <root>/
//!   date=2026-03-19/part-<run>-<seq>.parquet   events of a UTC day, sorted by ts, zstd, page index
//!   _rejected/<run>-<seq>.jsonl                 bad input kept for inspection
//!   _staging/…                                  files being written (local ingest, rewrites)
//!   _commits/<run>.json                         rewrites (compaction, slimming), see [`commit`]
//!   _maintenance.lock                           held by the one compact/retain run
//! ```
//!
//! A data file appears atomically: on S3 a PUT is atomic; on a local disk the file is written under
//! `_staging/` (a name no reader globs: it starts with `_` and does not end in `.parquet`) and
//! renamed into its partition. Names starting with `_` are ignored by Spark, Hive and Trino, and
//! `**/*.parquet` globs (DuckDB) never match a staging file.

pub mod commit;
mod error;
pub mod guard;
pub mod paths;
mod store;
pub mod writer;

pub use error::{Error, Result, is_not_found_error};
pub use guard::{ReadOnlyUnder, StoreBounds};
pub use paths::{DataFilePath, Partition, RunId};
pub use store::{DataFile, Store};
pub use writer::{FileEncoder, WriteOptions, encode_parquet};
