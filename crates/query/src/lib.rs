//! SQL over an auditlake store, in process, with DataFusion.
//!
//! Start from [`AuditSession::open`]: it registers the `audit_events` table (with its hive
//! partition column `date`), the JSON functions (`json_get_str(request_object, 'spec',
//! …)`, `annotations->>'authorization.k8s.io/decision'`), the views of `sql/views/`, the compliance
//! scope ([`auditlake_compliance::scope`]: a `scope` table and functions such as `is_admin(user_name, user_groups)`) and
//! the compliance controls of `sql/compliance/` ([`CONTROLS`], `compliance_controls`).
//!
//! Time pruning: a predicate on `ts` (or `date`) picks the days whose files are opened
//! ([`table::AuditEventsTable`]); inside a day, files are sorted by `ts`, so row-group statistics
//! and the page index skip all but the hour asked about.
//!
//! Maintenance (compaction, retention) is in [`maintain`].

mod by_day;
pub mod compliance;
pub mod count_by;
mod daily;
mod error;
mod guard;
mod hash64;
mod lazy;
pub mod maintain;
mod open_requests;
mod reuse;
mod session;
pub mod table;
pub mod views;

pub use auditlake_compliance::{CONTROLS, Control, Scope};
pub use error::{Error, Result, is_not_found};
pub use session::{AuditSession, QueryOptions};

/// Helpers for the unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use datafusion::arrow::array::{AsArray, RecordBatch};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;

    /// Column `col` of every batch as text ("" for NULL).
    pub(crate) fn strings(batches: &[RecordBatch], col: usize) -> Vec<String> {
        let mut out = Vec::new();
        for b in batches {
            let text = cast(b.column(col), &DataType::Utf8).expect("cast to text");
            out.extend(
                text.as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or("").to_owned()),
            );
        }
        out
    }
}
