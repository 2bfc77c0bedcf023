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

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DataFusionError;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::Result;
use crate::lazy::LazyViewSchema;
use crate::views::sql_header;

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
pub const REQUIRED_HEADERS: [&str; 6] =
    ["control", "framework", "title", "finds", "why", "severity"];

/// The framework folders, in report order.
pub const FRAMEWORKS: [&str; 5] = ["pci-dss", "soc2", "hipaa", "cis", "detections"];

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

    /// The scope list setting without which the control cannot be evaluated, if any.
    pub fn requires(&self) -> Option<String> {
        self.header("requires")
    }

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

/// Adds every control's view (planned on first use) and the `compliance_controls` table.
pub(crate) fn register(ctx: &SessionContext, schema: &LazyViewSchema) -> Result<()> {
    for c in CONTROLS {
        schema.add_pending(c.view, format!("compliance control {}", c.view), c.sql);
    }
    let text = |f: &dyn Fn(&Control) -> Option<String>| {
        Arc::new(CONTROLS.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<(&str, bool, Arc<StringArray>)> = vec![
        ("framework", false, text(&|c| Some(c.framework.to_owned()))),
        ("control_id", false, text(&|c| Some(c.id.to_owned()))),
        ("title", false, text(&|c| Some(c.title()))),
        ("view", false, text(&|c| Some(c.view.to_owned()))),
        ("severity", false, text(&|c| Some(c.severity()))),
        ("requires", true, text(&|c| c.requires())),
        ("finds", false, text(&|c| Some(c.finds()))),
        ("why", false, text(&|c| Some(c.why()))),
        ("reference", false, text(&|c| Some(c.reference()))),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, nullable, _)| Field::new(*n, DataType::Utf8, *nullable))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns.into_iter().map(|(_, _, a)| a as _).collect(),
    )
    .map_err(DataFusionError::from)?;
    ctx.register_table(
        "compliance_controls",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{AuditSession, QueryOptions};

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

    #[tokio::test]
    async fn every_view_returns_the_evidence_columns_and_the_table_lists_them_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            auditlake_store::Store::open(dir.path().to_str().expect("utf-8"), &[]).expect("store");
        let session = AuditSession::open(store, &QueryOptions::default())
            .await
            .expect("session opens with every control");
        for c in CONTROLS {
            let df = session
                .sql(&format!("SELECT * FROM {}", c.view))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", c.view));
            let names: Vec<String> = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            assert_eq!(
                &names[..EVIDENCE_COLUMNS.len()],
                &EVIDENCE_COLUMNS.map(str::to_owned)[..],
                "{}: evidence columns",
                c.view
            );
            // Runs, too: over an empty store only the retention controls find something (one
            // "no audit events at all" row each).
            let batches = df
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", c.view));
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let expected = usize::from(matches!(
                c.view,
                "pci_10_5_1_retention" | "cis_1_2_17_audit_retention"
            ));
            assert_eq!(rows, expected, "{}: rows over an empty store", c.view);
        }
        let batches = session
            .sql("SELECT count(*) AS n, count(DISTINCT view) AS v FROM compliance_controls")
            .await
            .expect("compliance_controls")
            .collect()
            .await
            .expect("runs");
        let n = datafusion::arrow::compute::cast(batches[0].column(0), &DataType::UInt64)
            .expect("cast");
        let n = n
            .as_any()
            .downcast_ref::<datafusion::arrow::array::UInt64Array>()
            .expect("u64")
            .value(0);
        assert_eq!(n as usize, CONTROLS.len());
    }

    /// PCI DSS 10.2.1.6 is per cluster: a cluster that goes quiet, or stops while another goes on,
    /// is found; a cluster that logs steadily to the newest event is not.
    #[test]
    fn logging_gaps_are_found_per_cluster() {
        use std::io::Write;

        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            auditlake_store::Store::open(dir.path().join("store").to_str().expect("utf-8"), &[])
                .expect("store");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").expect("t0");
        // east: every 5 minutes from 00:00 to 12:00. west: 00:00 to 03:00, silent until 05:00, then
        // on to 08:00 and no more.
        let clusters: [(&str, Vec<i64>); 2] = [
            ("east", (0..=144).map(|i| i * 5).collect()),
            ("west", (0..=36).chain(60..=96).map(|i| i * 5).collect()),
        ];
        for (cluster, minutes) in &clusters {
            let path = dir.path().join(format!("{cluster}.log"));
            let mut f = std::fs::File::create(&path).expect("log");
            for m in minutes {
                let ts = (t0 + chrono::Duration::minutes(*m))
                    .to_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ");
                writeln!(
                    f,
                    r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{cluster}-{m:04}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/configmaps","verb":"list","user":{{"username":"system:kube-scheduler"}},"sourceIPs":["10.0.0.1"],"objectRef":{{"resource":"configmaps","namespace":"kube-system","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{ts}","stageTimestamp":"{ts}"}}"#
                )
                .expect("write");
            }
            drop(f);
            let inputs =
                auditlake_ingest::expand_inputs(&[path.display().to_string()]).expect("inputs");
            let opts = auditlake_ingest::IngestOptions {
                cluster: Some((*cluster).to_owned()),
                ..Default::default()
            };
            auditlake_ingest::ingest(&store, &inputs, &opts, Arc::new(()), rt.handle())
                .expect("ingest");
        }
        let rows = rt.block_on(async {
            let session = AuditSession::open(store, &QueryOptions::default())
                .await
                .expect("session");
            let batches = session
                .sql("SELECT cluster, audit_id, reason FROM pci_10_2_1_6_logging_gaps ORDER BY cluster, ts")
                .await
                .expect("plans")
                .collect()
                .await
                .expect("runs");
            let (c, a, r) = (
                crate::test_util::strings(&batches, 0),
                crate::test_util::strings(&batches, 1),
                crate::test_util::strings(&batches, 2),
            );
            c.into_iter()
                .zip(a)
                .zip(r)
                .map(|((c, a), r)| (c, a, r))
                .collect::<Vec<_>>()
        });
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(
            (rows[0].0.as_str(), rows[0].1.as_str()),
            ("west", "west-0180")
        );
        assert!(rows[0].2.contains("for 2.0 hours"), "{}", rows[0].2);
        assert!(rows[0].2.contains("next event west-0300"), "{}", rows[0].2);
        assert_eq!(
            (rows[1].0.as_str(), rows[1].1.as_str()),
            ("west", "west-0480")
        );
        assert!(rows[1].2.contains("audit logging stopped"), "{}", rows[1].2);
        assert!(rows[1].2.contains("(4.0 hours)"), "{}", rows[1].2);
    }
}
