//! `audit_id_candidates`: the keys `hash64(cluster, audit_id, stage)` that occur more than once
//! among the store's events, found from the per-day table `audit_id_keys` (each day's keys,
//! sorted, kept per closed day by reports).
//!
//! A month of keys is 10M integers from 30 sorted runs: a run-adaptive sort merges them and the
//! repeats are neighbours, in a fraction of the time a `GROUP BY` takes to hash them (1.0 s for
//! 10M integers). `audit_id_reuse` then checks the candidates against the events exactly.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::daily::DailyTable;

#[derive(Debug)]
pub(crate) struct RepeatedKeys {
    keys: Arc<DailyTable>,
    schema: SchemaRef,
}

impl RepeatedKeys {
    /// Over `keys`, a per-day table whose first column is the sorted `UInt64` keys of a day.
    pub(crate) fn new(keys: Arc<DailyTable>) -> Self {
        Self {
            keys,
            schema: Arc::new(Schema::new(vec![Field::new("h", DataType::UInt64, false)])),
        }
    }
}

/// The values occurring more than once in `values`, each once, in order.
pub(crate) fn repeated(mut values: Vec<u64>) -> Vec<u64> {
    // Stable sort: it finds the sorted runs (one per day) and merges them.
    values.sort();
    let mut out = Vec::new();
    for w in values.windows(2) {
        if w[0] == w[1] && out.last() != Some(&w[0]) {
            out.push(w[0]);
        }
    }
    out
}

#[async_trait]
impl TableProvider for RepeatedKeys {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        // A repeat is judged over every day of the store: no filter narrows the days.
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut values = Vec::new();
        for b in self.keys.batches(state, &[]).await? {
            let h = b
                .column(0)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| {
                    DataFusionError::Internal("audit_id_keys: h is not UInt64".into())
                })?;
            values.extend(h.iter().flatten());
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![Arc::new(UInt64Array::from(repeated(values)))],
        )?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::repeated;

    #[test]
    fn repeats_within_a_run_and_across_runs_are_found_once() {
        // Two sorted runs (two days): 5 twice in the first, 7 in both, 9 three times.
        assert_eq!(repeated(vec![1, 5, 5, 7, 9, 2, 7, 9, 9, 11]), vec![5, 7, 9]);
        assert_eq!(repeated(vec![3, 1, 2]), Vec::<u64>::new());
        assert_eq!(repeated(Vec::new()), Vec::<u64>::new());
    }
}
