//! Registers the compliance controls of [`auditlake_compliance::CONTROLS`] in a session: each
//! control's view (planned on first use) and the `compliance_controls` table listing them.

use std::sync::Arc;

use auditlake_compliance::{CONTROLS, Control};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DataFusionError;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::Result;
use crate::lazy::LazyViewSchema;

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
        ("kind", false, text(&|c| Some(c.kind().as_str().to_owned()))),
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
    use std::sync::Arc;

    use auditlake_compliance::CONTROLS;
    use auditlake_compliance::controls::EVIDENCE_COLUMNS;
    use datafusion::arrow::array::RecordBatch;
    use datafusion::arrow::datatypes::DataType;

    use crate::{AuditSession, QueryOptions};

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
