//! The compliance controls shipped in `sql/compliance/<framework>/`, embedded in the binary.
//!
//! Each control is one SQL file: a header of `-- key: value` lines (the single source of the
//! control's documentation, read with [`Control::header`]) and one `CREATE VIEW` whose rows are
//! evidence with at least the columns of [`EVIDENCE_COLUMNS`]. [`AuditSession::open`] creates
//! every view and the `compliance_controls` table listing them.
//!
//! A report evaluates a control by selecting from its view (with a `ts` filter for the window):
//! no rows is a pass, rows are findings, and a control whose [`Control::requires`] names a scope
//! list that is empty ([`Scope::is_empty`]) is "not evaluable".
//!
//! [`AuditSession::open`]: crate::AuditSession::open
//! [`Scope::is_empty`]: crate::Scope::is_empty

/// A compliance control or detection: where its SQL lives, and the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// The folder under `sql/compliance/`: `pci-dss`, `soc2`, `hipaa`, `cis` or `detections`.
    pub framework: &'static str,
    /// The control's id in its framework (`10.2.1.2`, `CC6.1`, `164.312(b)`, `5.1.3`), with a
    /// `/suffix` where one framework item has several views (`CC7.2/failed-access-bursts`).
    pub id: &'static str,
    /// The view the file creates, which is also the file's name.
    pub view: &'static str,
    /// The whole file: header and `CREATE VIEW`.
    pub sql: &'static str,
}

/// The columns every control's view returns (it may return more after them).
pub const EVIDENCE_COLUMNS: [&str; 11] = [
    "ts",
    "audit_id",
    "cluster",
    "user_name",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "response_code",
    "reason",
];

/// The header keys every control file has; `requires` is there only when it applies.
pub const REQUIRED_HEADERS: [&str; 7] = [
    "control",
    "framework",
    "title",
    "finds",
    "why",
    "severity",
    "kind",
];

/// The framework folders, in report order.
pub const FRAMEWORKS: [&str; 5] = ["pci-dss", "soc2", "hipaa", "cis", "detections"];

/// A framework folder's name as a report titles it.
pub fn framework_title(framework: &str) -> &'static str {
    match framework {
        "pci-dss" => "PCI DSS v4.0",
        "soc2" => "SOC 2",
        "hipaa" => "HIPAA Security Rule",
        "cis" => "CIS Kubernetes Benchmark",
        "detections" => "Security detections",
        _ => "Other",
    }
}

/// What a control's rows are, from its `-- kind:` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// "Audit logs capture X": the rows are the record the requirement asks for. Rows are what
    /// meets it; a window without them, or rows without the details 10.2.2 requires, is a gap.
    Evidence,
    /// A violation or a detection: every row needs an answer; no rows is a pass.
    Finding,
}

impl Kind {
    /// As the header, JSON and `compliance_controls` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evidence => "evidence",
            Self::Finding => "finding",
        }
    }
}

macro_rules! controls {
    ($($fw:literal $id:literal $view:literal;)*) => {
        &[$(Control {
            framework: $fw,
            id: $id,
            view: $view,
            sql: include_str!(concat!("../../../sql/compliance/", $fw, "/", $view, ".sql")),
        }),*]
    };
}

/// Every control, grouped by framework in [`FRAMEWORKS`] order. A view may select from views
/// listed before it.
pub const CONTROLS: &[Control] = controls![
    "pci-dss" "10.2.1.1" "pci_10_2_1_1_cde_access";
    "pci-dss" "10.2.1.2" "pci_10_2_1_2_admin_actions";
    "pci-dss" "10.2.1.3" "pci_10_2_1_3_audit_log_access";
    "pci-dss" "10.2.1.4" "pci_10_2_1_4_invalid_access";
    "pci-dss" "10.2.1.5" "pci_10_2_1_5_credential_changes";
    "pci-dss" "10.2.1.6" "pci_10_2_1_6_logging_gaps";
    "pci-dss" "10.2.1.7" "pci_10_2_1_7_system_objects";
    "pci-dss" "10.2.2" "pci_10_2_2_missing_fields";
    "pci-dss" "10.5.1" "pci_10_5_1_retention";
    "soc2" "CC6.1" "soc2_cc6_1_logical_access";
    "soc2" "CC6.2/CC6.3" "soc2_cc6_2_access_provisioning";
    "soc2" "CC6.6/CC6.8" "soc2_cc6_6_remote_and_privileged_access";
    "soc2" "CC7.2/failed-access-bursts" "soc2_cc7_2_failed_access_bursts";
    "soc2" "CC7.2/anonymous-access" "soc2_cc7_2_anonymous_access";
    "soc2" "CC7.2/off-hours-admin" "soc2_cc7_2_off_hours_admin";
    "soc2" "CC8.1" "soc2_cc8_1_manual_changes";
    "hipaa" "164.312(b)" "hipaa_164_312_b_audit_controls";
    "hipaa" "164.308(a)(1)(ii)(D)" "hipaa_164_308_a_1_ii_d_activity_review";
    "hipaa" "164.308(a)(4)" "hipaa_164_308_a_4_ephi_access";
    "hipaa" "164.312(c)(1)" "hipaa_164_312_c_1_integrity";
    "hipaa" "164.308(a)(5)(ii)(C)" "hipaa_164_308_a_5_ii_c_login_monitoring";
    "cis" "1.2.1" "cis_1_2_1_anonymous_auth";
    "cis" "1.2.17" "cis_1_2_17_audit_retention";
    "cis" "3.2.2/secret-bodies" "cis_3_2_2_secret_bodies";
    "cis" "3.2.2/coverage" "cis_3_2_2_policy_coverage";
    "cis" "5.1.1" "cis_5_1_1_cluster_admin";
    "cis" "5.1.2" "cis_5_1_2_secret_access";
    "cis" "5.1.3" "cis_5_1_3_wildcard_roles";
    "cis" "5.1.4" "cis_5_1_4_pod_creation";
    "cis" "5.1.5" "cis_5_1_5_default_service_accounts";
    "cis" "5.1.7" "cis_5_1_7_system_masters";
    "cis" "5.1.8" "cis_5_1_8_bind_impersonate_escalate";
    "detections" "privileged-pod" "det_privileged_pod";
    "detections" "host-network-pod" "det_host_network_pod";
    "detections" "host-pid-pod" "det_host_pid_pod";
    "detections" "host-path-pod" "det_host_path_pod";
    "detections" "exec-attach" "det_exec_attach";
    "detections" "cluster-admin-binding" "det_cluster_admin_binding";
    "detections" "wildcard-clusterrole" "det_wildcard_clusterrole";
    "detections" "anonymous-allowed" "det_anonymous_allowed";
    "detections" "secrets-listed-by-sa" "det_secrets_listed_by_service_account";
    "detections" "token-request-other-sa" "det_token_request_other_sa";
    "detections" "ephemeral-container" "det_ephemeral_container";
    "detections" "node-proxy" "det_node_proxy";
    "detections" "event-deletion" "det_event_deletion";
    "detections" "audit-id-reuse" "audit_id_reuse";
];

impl Control {
    /// The value of a `-- key: value` header line of the control's file.
    pub fn header(&self, key: &str) -> Option<String> {
        sql_header(self.sql, key)
    }

    /// The framework and its reference, e.g. "PCI DSS v4.0 Requirement 10.2.1.2".
    pub fn reference(&self) -> String {
        self.header("framework").unwrap_or_default()
    }

    /// One line naming what the control checks.
    pub fn title(&self) -> String {
        self.header("title").unwrap_or_default()
    }

    /// What an evidence row is.
    pub fn finds(&self) -> String {
        self.header("finds").unwrap_or_default()
    }

    /// Why it matters to an auditor or an incident responder.
    pub fn why(&self) -> String {
        self.header("why").unwrap_or_default()
    }

    /// `high`, `medium` or `low`.
    pub fn severity(&self) -> String {
        self.header("severity").unwrap_or_default()
    }

    /// Evidence or finding (the `-- kind:` header; a file without a valid one fails the unit
    /// tests, and is taken as a finding control).
    pub fn kind(&self) -> Kind {
        match self.header("kind").as_deref() {
            Some("evidence") => Kind::Evidence,
            _ => Kind::Finding,
        }
    }

    /// Whether the control's rows for a UTC day depend on that day's events alone, so that a
    /// report may keep them per day ([`crate::kept`]). A control whose SQL looks across rows (an
    /// aggregate, a window function, a join: bursts and silences across midnight, retention,
    /// audit-ID reuse) says `-- evaluated: over the whole window` and is evaluated whole.
    pub fn day_local(&self) -> bool {
        self.header("evaluated").is_none()
    }

    /// The scope list setting without which the control cannot be evaluated, if any.
    pub fn requires(&self) -> Option<String> {
        self.header("requires")
    }

    /// The event details this control's SQL relies on that a managed provider may not record,
    /// read from the SQL itself and from the shared views it selects from (comments and column
    /// aliases left out), so that it cannot fall out of date.
    pub fn details(&self) -> Vec<Detail> {
        let mut words = code_words(self.sql);
        // The shared views it reads, and those they read.
        for _ in 0..SHARED_VIEWS.len() {
            let more: Vec<String> = SHARED_VIEWS
                .iter()
                .filter(|(name, _)| words.contains(*name))
                .flat_map(|(_, sql)| code_words(sql))
                .filter(|w| !words.contains(w))
                .collect();
            if more.is_empty() {
                break;
            }
            words.extend(more);
        }
        Detail::ALL
            .into_iter()
            .filter(|d| d.columns().iter().any(|c| words.contains(*c)))
            .collect()
    }
}

/// The views of `sql/views/` that controls select from (the query crate creates them; listed
/// here too so that [`Control::details`] can read them).
pub const SHARED_VIEWS: &[(&str, &str)] = &[
    (
        "audit_requests",
        include_str!("../../../sql/views/audit_requests.sql"),
    ),
    (
        "incomplete_records",
        include_str!("../../../sql/views/incomplete_records.sql"),
    ),
    (
        "workload_pod_specs",
        include_str!("../../../sql/views/workload_pod_specs.sql"),
    ),
    (
        "secret_access",
        include_str!("../../../sql/views/secret_access.sql"),
    ),
    (
        "forbidden_requests",
        include_str!("../../../sql/views/forbidden_requests.sql"),
    ),
    ("pod_exec", include_str!("../../../sql/views/pod_exec.sql")),
    (
        "rbac_changes",
        include_str!("../../../sql/views/rbac_changes.sql"),
    ),
    (
        "failed_access",
        include_str!("../../../sql/views/failed_access.sql"),
    ),
    (
        "events_by_day",
        include_str!("../../../sql/views/events_by_day.sql"),
    ),
    (
        "audit_id_keys",
        include_str!("../../../sql/views/audit_id_keys.sql"),
    ),
    (
        "event_buckets",
        include_str!("../../../sql/views/event_buckets.sql"),
    ),
    (
        "truncated_records",
        include_str!("../../../sql/views/truncated_records.sql"),
    ),
];

/// The identifiers SQL uses, lower-cased: comments left out, and a column alias (`AS name`)
/// counted as a definition, not a use.
fn code_words(sql: &str) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    for line in sql.lines() {
        let code = line
            .split("--")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut alias = false;
        for w in code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
        {
            if std::mem::take(&mut alias) {
                continue;
            }
            if w == "as" {
                alias = true;
                continue;
            }
            out.insert(w.to_owned());
        }
    }
    out
}

/// An event detail some sources do not record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    UserGroups,
    Level,
    Impersonation,
    /// The request's query string, where `dryRun=All` says a request changed nothing (the
    /// `dry_run` column of the `audit_requests` view).
    DryRun,
}

impl Detail {
    pub const ALL: [Detail; 4] = [
        Detail::UserGroups,
        Detail::Level,
        Detail::Impersonation,
        Detail::DryRun,
    ];

    /// The `audit_events` columns that hold it.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Detail::UserGroups => &["user_groups", "impersonated_user_groups"],
            Detail::Level => &["level"],
            Detail::Impersonation => &["impersonated_user_name", "impersonated_user_groups"],
            Detail::DryRun => &["dry_run"],
        }
    }

    /// What a report says a source lacks.
    pub fn lacking(self) -> &'static str {
        match self {
            Detail::UserGroups => "no user groups",
            Detail::Level => "no audit level",
            Detail::Impersonation => "no impersonated user",
            Detail::DryRun => "no request query string, so dry runs cannot be told from changes",
        }
    }
}

/// The details each `source_format` does not record: GKE's LogEntries carry no audit level, no
/// user groups and no query string (its `resourceName` is the path), and auditlake maps no
/// impersonation from them. (Their stage comes from `operation.first`/`last`; the views treat a
/// missing stage as a complete request anyway, as for v1beta1 events.)
pub fn not_recorded(source_format: &str) -> &'static [Detail] {
    match source_format {
        "gke" => &[
            Detail::UserGroups,
            Detail::Level,
            Detail::Impersonation,
            Detail::DryRun,
        ],
        _ => &[],
    }
}

impl Control {
    /// Controls of one framework folder (`all` for every control).
    pub fn of_framework(framework: &str) -> impl Iterator<Item = &'static Control> {
        let all = framework == "all";
        CONTROLS
            .iter()
            .filter(move |c| all || c.framework == framework)
    }

    /// The control that creates `view`.
    pub fn by_view(view: &str) -> Option<&'static Control> {
        CONTROLS.iter().find(|c| c.view == view)
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A control evaluated per day must not look across rows: its rows for a day would then
    /// depend on other days, and kept evidence would be wrong.
    #[test]
    fn controls_that_look_across_rows_are_evaluated_whole() {
        let across = regex::Regex::new(
            r"(?i)group\s+by|\bover\s*\(|\bjoin\b|\b(min|max|count|sum|avg|lead|lag|now|row_number|rank|first_value|last_value)\s*\(|\bdistinct\b",
        )
        .unwrap();
        let body = |sql: &str| {
            sql.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut whole = Vec::new();
        for c in CONTROLS {
            let looks_across = across.is_match(&body(c.sql));
            assert!(
                !looks_across || !c.day_local(),
                "{} looks across rows but is evaluated per day: add `-- evaluated: over the whole \
                 window, not per day: <why>`",
                c.view
            );
            if !c.day_local() {
                whole.push(c.view);
            }
        }
        assert_eq!(whole.len(), 7, "{whole:?}");
        // Nor may it read what looks across rows: a whole-window control's view, or a shared
        // view (not computed per day) that does. HIPAA 164.312(b) lists the logging gaps, and
        // kept per day it missed a gap that a later day's first event closed.
        let looks_across_views: Vec<&str> = CONTROLS
            .iter()
            .filter(|c| !c.day_local())
            .map(|c| c.view)
            .chain(
                SHARED_VIEWS
                    .iter()
                    .filter(|(_, sql)| {
                        sql_header(sql, "per day").is_none() && across.is_match(&body(sql))
                    })
                    .map(|(name, _)| *name),
            )
            .collect();
        for c in CONTROLS.iter().filter(|c| c.day_local()) {
            let words = code_words(c.sql);
            for v in &looks_across_views {
                assert!(
                    !words.contains(*v),
                    "{} is evaluated per day but reads {v}, which looks across rows",
                    c.view
                );
            }
        }
    }

    #[test]
    fn details_are_read_from_the_controls_and_the_views_they_read() {
        let by_view = |v: &str| CONTROLS.iter().find(|c| c.view == v).unwrap().details();
        assert_eq!(
            by_view("cis_5_1_7_system_masters"),
            [Detail::UserGroups, Detail::Impersonation]
        );
        assert_eq!(by_view("cis_3_2_2_secret_bodies"), [Detail::Level]);
        // Through workload_pod_specs, which leaves dry runs out.
        assert_eq!(by_view("det_privileged_pod"), [Detail::DryRun]);
        assert!(by_view("cis_5_1_2_secret_access").is_empty());
        // audit_requests defines dry_run (an alias): reading the view is not relying on it.
        assert!(!code_words(SHARED_VIEWS[0].1).contains("dry_run"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/views");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), SHARED_VIEWS.len());
    }

    #[test]
    fn every_control_has_its_header_and_names_its_view() {
        let mut views = HashSet::new();
        for c in CONTROLS {
            assert!(
                FRAMEWORKS.contains(&c.framework),
                "{}: framework folder",
                c.view
            );
            for key in REQUIRED_HEADERS {
                let v = c.header(key).unwrap_or_default();
                assert!(
                    !v.is_empty(),
                    "{}: header `-- {key}:` missing or empty",
                    c.view
                );
            }
            assert_eq!(
                c.header("control").as_deref(),
                Some(c.id),
                "{}: -- control: vs id",
                c.view
            );
            assert!(
                ["high", "medium", "low"].contains(&c.severity().as_str()),
                "{}: severity {:?}",
                c.view,
                c.severity()
            );
            assert!(
                matches!(c.header("kind").as_deref(), Some("evidence" | "finding")),
                "{}: kind {:?}",
                c.view,
                c.header("kind")
            );
            if let Some(r) = c.requires() {
                assert_eq!(
                    crate::Scope::default().is_empty(&r),
                    Some(true),
                    "{}: requires names a list setting that is empty by default: {r}",
                    c.view
                );
            }
            assert!(
                c.sql.contains(&format!("CREATE VIEW {} AS", c.view)),
                "{}: the file creates a view of its own name",
                c.view
            );
            assert_eq!(
                c.sql.matches("CREATE VIEW").count(),
                1,
                "{}: one view per file",
                c.view
            );
            assert!(views.insert(c.view), "{}: listed twice", c.view);
        }
        let ids: HashSet<_> = CONTROLS.iter().map(|c| (c.framework, c.id)).collect();
        assert_eq!(
            ids.len(),
            CONTROLS.len(),
            "control ids are unique per framework"
        );
    }

    #[test]
    fn every_sql_file_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/compliance");
        for fw in FRAMEWORKS {
            for entry in std::fs::read_dir(root.join(fw)).expect("framework folder") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "sql") {
                    let view = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    assert!(
                        Control::by_view(view).is_some_and(|c| c.framework == fw),
                        "{} is not in CONTROLS",
                        path.display()
                    );
                }
            }
        }
    }
}
