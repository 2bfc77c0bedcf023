//! SQL over an auditlake store, in process, with DataFusion.
//!
//! Start from [`AuditSession::open`]: it registers the `audit_events` table (with its hive
//! partition column `date`), the JSON functions (`json_get_str(request_object, 'spec',
//! …)`, `annotations->>'authorization.k8s.io/decision'`), the views of `sql/views/`, the compliance
//! scope ([`scope`]: a `scope` table and functions such as `is_admin(user_name, user_groups)`) and
//! the compliance controls of `sql/compliance/` ([`compliance::CONTROLS`], `compliance_controls`).
//!
//! Time pruning: a predicate on `ts` (or `date`) picks the days whose files are opened
//! ([`table::AuditEventsTable`]); inside a day, files are sorted by `ts`, so row-group statistics
//! and the page index skip all but the hour asked about.
//!
//! Maintenance (compaction, retention) is in [`maintain`].

pub mod compliance;
pub mod count_by;
mod error;
mod lazy;
pub mod maintain;
pub mod scope;
mod session;
pub mod table;
pub mod views;

pub use compliance::{CONTROLS, Control};
pub use error::{Error, Result};
pub use scope::Scope;
pub use session::{AuditSession, QueryOptions};
