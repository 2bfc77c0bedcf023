//! SQL over an auditlake store, in process, with DataFusion.
//!
//! Start from [`AuditSession::open`]: it registers the `audit_events` table (with its hive
//! partition column `date`), the JSON functions (`json_get_str(request_object, 'spec',
//! …)`, `annotations->>'authorization.k8s.io/decision'`), and the views of `sql/views/`.
//!
//! Time pruning: a predicate on `ts` (or `date`) picks the days whose files are opened
//! ([`table::AuditEventsTable`]); inside a day, files are sorted by `ts`, so row-group statistics
//! and the page index skip all but the hour asked about.
//!
//! Maintenance (compaction, retention) is in [`maintain`].

mod error;
pub mod maintain;
mod session;
pub mod table;
pub mod views;

pub use error::{Error, Result};
pub use session::{AuditSession, QueryOptions};
