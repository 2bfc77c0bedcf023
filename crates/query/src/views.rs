//! The views shipped in `sql/views/`, embedded in the binary so that it works from anywhere.

use auditlake_compliance::controls::sql_header;

/// A view: its name, the header text of its file, and its `CREATE VIEW` statement.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! views {
    ($($name:literal),* $(,)?) => {
        &[$(View { name: $name, sql: include_str!(concat!("../../../sql/views/", $name, ".sql")) }),*]
    };
}

/// Every built-in view, in the order they are created.
pub const VIEWS: &[View] = views![
    "audit_requests",
    "incomplete_records",
    "workload_pod_specs",
    "secret_access",
    "forbidden_requests",
    "pod_exec",
    "rbac_changes",
    "failed_access",
    "events_by_day",
    "audit_id_keys",
    "event_buckets",
    "truncated_records"
];

impl View {
    /// Whether the view is computed a UTC day at a time (a `-- per day:` header; its SQL is a
    /// query of the day `{day}`, not a `CREATE VIEW`) and kept per closed day by reports
    /// ([`crate::daily`]).
    pub fn per_day(&self) -> bool {
        self.header("per day").is_some()
    }

    /// The value of a `-- key: value` header line (see [`sql_header`]).
    pub fn header(&self, key: &str) -> Option<String> {
        sql_header(self.sql, key)
    }
}
