//! The views shipped in `sql/views/`, embedded in the binary so that it works from anywhere.

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
    "workload_pod_specs",
    "secret_access",
    "forbidden_requests",
    "pod_exec",
    "rbac_changes"
];

impl View {
    /// The value of a `-- key: value` header line (see [`sql_header`]).
    pub fn header(&self, key: &str) -> Option<String> {
        sql_header(self.sql, key)
    }
}

/// The value of a `-- key: value` line in the header of a shipped SQL file (views and compliance
/// controls); continuation lines start with `--` and at least two spaces and are joined with one
/// space. `None` when the key is absent.
pub fn sql_header(sql: &str, key: &str) -> Option<String> {
    let prefix = format!("-- {key}:");
    let mut lines = sql.lines().skip_while(|l| !l.starts_with(&prefix));
    let first = lines.next()?.strip_prefix(&prefix)?.trim().to_owned();
    let more: Vec<&str> = lines
        .take_while(|l| l.starts_with("--  "))
        .map(|l| l.trim_start_matches('-').trim())
        .collect();
    Some(
        std::iter::once(first.as_str())
            .chain(more)
            .collect::<Vec<_>>()
            .join(" "),
    )
}
