//! The `audit_events` table: a listing table over the store whose `ts` predicates also prune
//! partitions.

use std::sync::Arc;

use async_trait::async_trait;
use auditlake_model::schema::{PARTITION_COLUMNS, col as column};
use auditlake_store::Partition;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, col, lit,
};
use datafusion::physical_plan::ExecutionPlan;

/// `audit_events`: a [`ListingTable`] that turns predicates on `ts` into predicates on the
/// `date`/`hour` partition columns before listing files. Read-only: it has no insert, update or
/// delete.
#[derive(Debug)]
pub struct AuditEventsTable {
    inner: ListingTable,
}

impl AuditEventsTable {
    pub fn new(inner: ListingTable) -> Self {
        Self { inner }
    }
}

/// Microseconds of a timestamp literal, whatever its unit.
fn micros(v: &ScalarValue) -> Option<(i64, i64)> {
    // (floor, ceil) in microseconds
    Some(match v {
        ScalarValue::TimestampMicrosecond(Some(x), _) => (*x, *x),
        ScalarValue::TimestampNanosecond(Some(x), _) => {
            (x.div_euclid(1000), (x + 999).div_euclid(1000))
        }
        ScalarValue::TimestampMillisecond(Some(x), _) => (x * 1000, x * 1000),
        ScalarValue::TimestampSecond(Some(x), _) => (x * 1_000_000, x * 1_000_000),
        ScalarValue::Date32(Some(d)) => (
            i64::from(*d) * 86_400_000_000,
            i64::from(*d) * 86_400_000_000,
        ),
        _ => return None,
    })
}

fn is_ts(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => c.name == column::TS,
        Expr::Cast(c) => is_ts(&c.expr),
        Expr::TryCast(c) => is_ts(&c.expr),
        _ => false,
    }
}

fn literal(e: &Expr) -> Option<(i64, i64)> {
    match e {
        Expr::Literal(v, _) => micros(v),
        Expr::Cast(c) => literal(&c.expr),
        _ => None,
    }
}

/// The time range `[lo, hi)` that a set of filters allows, in microseconds.
pub fn ts_bounds(filters: &[Expr]) -> (Option<i64>, Option<i64>) {
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    let mut lower = |v: i64| lo = Some(lo.map_or(v, |l| l.max(v)));
    let mut upper = |v: i64| hi = Some(hi.map_or(v, |h| h.min(v)));
    for f in filters {
        match f {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, lit) = if is_ts(left) {
                    (*op, literal(right))
                } else if is_ts(right) {
                    match op.swap() {
                        Some(o) => (o, literal(left)),
                        None => continue,
                    }
                } else {
                    continue;
                };
                let Some((floor, ceil)) = lit else { continue };
                match op {
                    Operator::Gt | Operator::GtEq => lower(floor),
                    Operator::Lt => upper(ceil),
                    Operator::LtEq => upper(ceil + 1),
                    Operator::Eq => {
                        lower(floor);
                        upper(ceil + 1);
                    }
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_ts(expr) => {
                if let Some((floor, _)) = literal(low) {
                    lower(floor);
                }
                if let Some((_, ceil)) = literal(high) {
                    upper(ceil + 1);
                }
            }
            _ => {}
        }
    }
    (lo, hi)
}

/// Predicates on `date` and `hour` that keep exactly the partitions overlapping `[lo, hi)`.
pub fn partition_filters(lo: Option<i64>, hi: Option<i64>) -> Vec<Expr> {
    let [date, hour] = PARTITION_COLUMNS;
    let mut out = Vec::new();
    if let Some(lo) = lo {
        let p = Partition::of(lo);
        let d = p.date();
        let h = format!("{:02}", p.hour);
        out.push(col(date).gt_eq(lit(d.clone())));
        out.push(col(date).gt(lit(d)).or(col(hour).gt_eq(lit(h))));
    }
    if let Some(hi) = hi {
        // The last microsecond allowed.
        let p = Partition::of(hi - 1);
        let d = p.date();
        let h = format!("{:02}", p.hour);
        out.push(col(date).lt_eq(lit(d.clone())));
        out.push(col(date).lt(lit(d)).or(col(hour).lt_eq(lit(h))));
    }
    out
}

#[async_trait]
impl TableProvider for AuditEventsTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (lo, hi) = ts_bounds(filters);
        let mut all = filters.to_vec();
        all.extend(partition_filters(lo, hi));
        self.inner.scan(state, projection, &all, limit).await
    }
}
