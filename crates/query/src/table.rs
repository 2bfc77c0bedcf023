//! The `audit_events` table: the store's files, with `ts` and `date` predicates picking the days.

use std::sync::Arc;

use async_trait::async_trait;
use auditlake_model::audit_events_schema;
use auditlake_model::schema::{PARTITION_COLUMNS, col as column};
use auditlake_store::{AsOf, Partition, Snapshot, Store, Version};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{ScalarValue, project_schema};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

/// `audit_events`: the store's Parquet files with the `date` partition column. The files come
/// from the transaction log's snapshot ([`Store::snapshot`]: no LIST of the store), and a
/// predicate on `ts` or `date` picks the days, and the files by their `ts` range, before any file
/// is opened. Read-only: it has no insert, update or delete.
#[derive(Debug)]
pub struct AuditEventsTable {
    store: Store,
    /// The version read when pinned (`--as-of`), its snapshot loaded at the first scan.
    pinned: Option<Version>,
    pinned_snapshot: tokio::sync::OnceCell<Snapshot>,
    /// The table's columns: the files' (with strings as Utf8View) and the partition column.
    schema: SchemaRef,
    /// What the scan reads from each file.
    file_schema: SchemaRef,
    object_store_url: ObjectStoreUrl,
}

impl AuditEventsTable {
    pub fn new(store: Store, pinned: Option<Version>) -> Result<Self> {
        // Strings are read as Utf8View: a dictionary-encoded column (user_name, verb, resource…)
        // then decodes to views into the dictionary page instead of copying every value, which
        // made GROUP BY user_name over 10M events 1.45x slower than DuckDB (measured).
        let mut fields: Vec<Field> = audit_events_schema()
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if f.data_type() == &DataType::Utf8 {
                    f.with_data_type(DataType::Utf8View)
                } else {
                    f
                }
            })
            .collect();
        let file_schema = Arc::new(Schema::new(fields.clone()));
        fields.extend(
            PARTITION_COLUMNS
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, false)),
        );
        let object_store_url = ObjectStoreUrl::parse(store.object_store_url().as_str())?;
        Ok(Self {
            store,
            pinned,
            pinned_snapshot: tokio::sync::OnceCell::new(),
            schema: Arc::new(Schema::new(fields)),
            file_schema,
            object_store_url,
        })
    }
}

impl AuditEventsTable {
    /// The snapshot a scan reads now: the pinned version's, or the latest.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let external = |e: auditlake_store::Error| DataFusionError::External(Box::new(e));
        Ok(match self.pinned {
            Some(v) => self
                .pinned_snapshot
                .get_or_try_init(|| self.store.snapshot(Some(AsOf::Version(v))))
                .await
                .map_err(external)?
                .clone(),
            None => self.store.snapshot(None).await.map_err(external)?,
        })
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

/// The days `[lo, hi)` that predicates on the `date` partition column allow, in microseconds.
fn date_bounds(filters: &[Expr]) -> (Option<i64>, Option<i64>) {
    let day = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => {
            Partition::parse(&format!("date={s}")).map(|p| (p.start(), p.end()))
        }
        _ => None,
    };
    let is_date = |e: &Expr| matches!(e, Expr::Column(c) if c.name == PARTITION_COLUMNS[0]);
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    for f in filters {
        if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = f {
            let (op, value) = if is_date(left) {
                (*op, day(right))
            } else if is_date(right) {
                match op.swap() {
                    Some(o) => (o, day(left)),
                    None => continue,
                }
            } else {
                continue;
            };
            let Some((start, end)) = value else { continue };
            let (l, h) = match op {
                Operator::Eq => (Some(start), Some(end)),
                Operator::GtEq => (Some(start), None),
                Operator::Gt => (Some(end), None),
                Operator::LtEq => (None, Some(end)),
                Operator::Lt => (None, Some(start)),
                _ => (None, None),
            };
            if let Some(l) = l {
                lo = Some(lo.map_or(l, |x| x.max(l)));
            }
            if let Some(h) = h {
                hi = Some(hi.map_or(h, |x| x.min(h)));
            }
        }
    }
    (lo, hi)
}

/// The time range `[lo, hi)` that predicates on `ts` and `date` together allow.
pub fn scan_range(filters: &[Expr]) -> Option<(i64, i64)> {
    let (tlo, thi) = ts_bounds(filters);
    let (dlo, dhi) = date_bounds(filters);
    let lo = tlo.into_iter().chain(dlo).max();
    let hi = thi.into_iter().chain(dhi).min();
    (lo.is_some() || hi.is_some()).then(|| (lo.unwrap_or(i64::MIN), hi.unwrap_or(i64::MAX)))
}

#[async_trait]
impl TableProvider for AuditEventsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Every filter is also evaluated after the scan; the scan uses them to pick files
        // (`ts`, `date`) and, through the physical optimizer, to prune row groups and pages.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let range = scan_range(filters);
        let files = self.snapshot().await?.files_in(range);
        if files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        // Largest files first, each to the group with the fewest bytes so far.
        let groups_n = state.config().target_partitions().clamp(1, files.len());
        let mut files: Vec<_> = files.into_iter().collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.meta.size));
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); groups_n];
        for f in files {
            let date = f.partition.date();
            let size = f.meta.size;
            let pf = PartitionedFile::new_from_meta(f.meta)
                .with_partition_values(vec![ScalarValue::Utf8(Some(date))]);
            if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
                g.0 += size;
                g.1.push(pf);
            }
        }
        let groups: Vec<FileGroup> = groups
            .into_iter()
            .filter(|g| !g.1.is_empty())
            .map(|g| FileGroup::new(g.1))
            .collect();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(
                PARTITION_COLUMNS
                    .iter()
                    .map(|c| Arc::new(Field::new(*c, DataType::Utf8, false)))
                    .collect::<Vec<_>>(),
            )
            .build();
        let source = format.file_source(table_schema);
        let config = FileScanConfigBuilder::new(self.object_store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}
