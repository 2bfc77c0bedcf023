//! The `auditlake` command tested as a user meets it: the real binary, real files.

mod collect;
mod common;
mod delta;
mod evidence;
mod ingest;
mod integrity;
mod maintain;
mod policy;
mod providers;
mod repl;
mod report;
mod s3;
mod sql;
