//! The `auditlake` command tested as a user meets it: the real binary, real files.

mod common;
mod ingest;
mod repl;
mod s3;
mod sql;
