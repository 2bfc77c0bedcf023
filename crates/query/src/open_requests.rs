//! `open_requests`: the requests whose outcome the store does not hold. An exec, attach or
//! port-forward session still open (or whose ResponseComplete was lost) has only a ResponseStarted
//! event, a request interrupted early only its RequestReceived; `audit_requests` takes each such
//! request once, at the most complete stage recorded, from this table.
//!
//! Finding them is an anti-join of a day's partial events against its complete ones (all stages
//! of one request share `ts`, the requestReceivedTimestamp, so they are in the same day). Done in
//! every query, it made each control over a month 4x slower (0.6 s to 4.2 s, 650 MB, measured on
//! 10M events); so it is done once per day and kept for the session, keyed by the day's files
//! (a commit that changes a day's files recomputes that day only). A report's session also keeps
//! a closed day's open requests in the store (`_evidence/date=D/open_requests-<key>.parquet`,
//! signed like the controls' evidence) when one of its queries reads them: a month's took 13 s of
//! every report on 10M events. The caching and keeping are [`crate::daily::DailyTable`]'s. A
//! report's day-local controls find a whole day's open requests among the day's events in memory
//! instead ([`open_rows`], for [`crate::by_day`]).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use crate::daily::DayRows;
use crate::table::AuditEventsTable;

/// The stages that carry a request's outcome; an event without a stage (an old API version) is
/// taken as complete.
const COMPLETE: &str = "stage IS NULL OR stage IN ('ResponseComplete', 'Panic')";

/// The keys of the open requests of one day (`{day}`): each ResponseStarted without a complete
/// event of the same request, and each RequestReceived without any later stage. A request is its
/// audit ID and cluster within the day (two clusters may reuse an audit ID; `ts` is not part of
/// the key: an event without requestReceivedTimestamp takes its time from a fallback field that
/// differs per stage). Only the key columns are read:
/// the anti-joins over whole events (bodies included) took 4x longer.
fn keys_sql(day: &str) -> String {
    let key = |a: &str, b: &str| {
        format!(
            "{a}.audit_id = {b}.audit_id AND coalesce({a}.cluster, '') = coalesce({b}.cluster, '')"
        )
    };
    format!(
        "SELECT s.audit_id, s.ts, coalesce(s.cluster, '') AS cluster, s.stage FROM audit_events s \
           LEFT ANTI JOIN \
           (SELECT audit_id, ts, cluster FROM audit_events WHERE date = '{day}' AND ({COMPLETE})) c \
           ON {} WHERE s.date = '{day}' AND s.stage = 'ResponseStarted' \
         UNION ALL \
         SELECT r.audit_id, r.ts, coalesce(r.cluster, '') AS cluster, r.stage FROM audit_events r \
           LEFT ANTI JOIN \
           (SELECT audit_id, ts, cluster FROM audit_events \
            WHERE date = '{day}' AND (stage IS NULL OR stage <> 'RequestReceived')) c \
           ON {} WHERE r.date = '{day}' AND r.stage = 'RequestReceived'",
        key("s", "c"),
        key("r", "c")
    )
}

/// The whole events of those keys: the audit IDs as a list the scan filters on before it decodes
/// the other columns; the rows are then matched on the whole key.
fn rows_sql(day: &str, ids: &[&str]) -> String {
    let list: Vec<String> = ids
        .iter()
        .map(|id| format!("'{}'", id.replace('\'', "''")))
        .collect();
    format!(
        "SELECT * FROM audit_events WHERE date = '{day}' \
         AND stage IN ('ResponseStarted', 'RequestReceived') AND audit_id IN ({})",
        list.join(", ")
    )
}

type Key = (String, i64, String, String);

/// `(audit_id, ts, cluster, stage)` of each row; `cluster` "" for none.
fn keys_of(b: &RecordBatch, cols: [usize; 4]) -> Result<Vec<Option<Key>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
    let text = |i: usize| cast(b.column(i), &DataType::Utf8);
    let (id, cluster, stage) = (text(cols[0])?, text(cols[2])?, text(cols[3])?);
    let ts = cast(
        b.column(cols[1]),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let (id, cluster, stage) = (
        id.as_string::<i32>(),
        cluster.as_string::<i32>(),
        stage.as_string::<i32>(),
    );
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    Ok((0..b.num_rows())
        .map(|i| {
            (id.is_valid(i) && ts.is_valid(i) && stage.is_valid(i)).then(|| {
                (
                    id.value(i).to_owned(),
                    ts.value(i),
                    if cluster.is_valid(i) {
                        cluster.value(i).to_owned()
                    } else {
                        String::new()
                    },
                    stage.value(i).to_owned(),
                )
            })
        })
        .collect())
}

/// Computes a day's open requests (a [`DayRows`] of [`crate::daily::DailyTable`]).
pub(crate) struct OpenRequests {
    schema: SchemaRef,
}

impl OpenRequests {
    pub(crate) fn new(events: &AuditEventsTable) -> Self {
        Self {
            schema: events.schema(),
        }
    }
}

#[async_trait]
impl DayRows for OpenRequests {
    fn name(&self) -> &str {
        "open_requests"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn key(&self) -> Vec<String> {
        vec![keys_sql("{day}"), rows_sql("{day}", &["{ids}"])]
    }

    async fn compute(&self, ctx: &SessionContext, day: &str) -> Result<Vec<RecordBatch>> {
        let mut open: HashSet<Key> = HashSet::new();
        for b in ctx.sql(&keys_sql(day)).await?.collect().await? {
            open.extend(keys_of(&b, [0, 1, 2, 3])?.into_iter().flatten());
        }
        let schema = self.schema();
        let mut batches = Vec::new();
        let mut ids: Vec<&str> = open.iter().map(|k| k.0.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let col = |name: &str| schema.index_of(name);
        let cols = [col("audit_id")?, col("ts")?, col("cluster")?, col("stage")?];
        for chunk in ids.chunks(4096) {
            for b in ctx.sql(&rows_sql(day, chunk)).await?.collect().await? {
                let keep: BooleanArray = keys_of(&b, cols)?
                    .into_iter()
                    .map(|k| Some(k.is_some_and(|k| open.contains(&k))))
                    .collect();
                let b = filter_record_batch(&b, &keep)?;
                if b.num_rows() > 0 {
                    // The query's fields may differ from the table's in nullability only.
                    batches.push(RecordBatch::try_new(
                        Arc::clone(&schema),
                        b.columns().to_vec(),
                    )?);
                }
            }
        }
        Ok(batches)
    }
}

/// The open requests among one whole day's events held in memory (`batches`, with the audit ID,
/// ts, cluster and stage at `cols`): the rows [`OpenRequests`] finds with its two anti-joins over
/// the day's files, each batch filtered to them.
pub(crate) fn open_rows(batches: &[RecordBatch], cols: [usize; 4]) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::{Array, AsArray, StringViewArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    let views = |b: &RecordBatch, i: usize| -> Result<StringViewArray> {
        Ok(cast(b.column(i), &DataType::Utf8View)?
            .as_string_view()
            .clone())
    };
    let columns: Vec<[StringViewArray; 3]> = batches
        .iter()
        .map(|b| Ok([views(b, cols[0])?, views(b, cols[2])?, views(b, cols[3])?]))
        .collect::<Result<_>>()?;
    fn key(c: &[StringViewArray; 3], i: usize) -> Option<(&str, &str)> {
        c[0].is_valid(i).then(|| {
            (
                c[0].value(i),
                if c[1].is_valid(i) { c[1].value(i) } else { "" },
            )
        })
    }
    // The requests that may be open (a ResponseStarted or RequestReceived event), then for each
    // whether it has a complete event, and whether it has any event past RequestReceived.
    fn stage(c: &[StringViewArray; 3], i: usize) -> Option<&str> {
        c[2].is_valid(i).then(|| c[2].value(i))
    }
    let mut seen: datafusion::common::HashMap<(&str, &str), (bool, bool)> = Default::default();
    for c in &columns {
        for i in 0..c[0].len() {
            if matches!(stage(c, i), Some("ResponseStarted" | "RequestReceived"))
                && let Some(k) = key(c, i)
            {
                seen.insert(k, (false, false));
            }
        }
    }
    for c in &columns {
        for i in 0..c[0].len() {
            let Some(k) = key(c, i) else { continue };
            let Some((complete, later)) = seen.get_mut(&k) else {
                continue;
            };
            let s = stage(c, i);
            *complete |= matches!(s, None | Some("ResponseComplete" | "Panic"));
            *later |= s != Some("RequestReceived");
        }
    }
    let mut out = Vec::new();
    for (b, c) in batches.iter().zip(&columns) {
        let ts = b.column(cols[1]);
        let keep: BooleanArray = (0..b.num_rows())
            .map(|i| {
                let open = ts.is_valid(i)
                    && key(c, i)
                        .and_then(|k| seen.get(&k))
                        .is_some_and(|&(complete, later)| match stage(c, i) {
                            Some("ResponseStarted") => !complete,
                            Some("RequestReceived") => !later,
                            _ => false,
                        });
                Some(open)
            })
            .collect();
        let b = filter_record_batch(b, &keep)?;
        if b.num_rows() > 0 {
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringViewArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    /// Each kind of request once: open ones are a ResponseStarted without a complete event and a
    /// RequestReceived without any later one, per audit ID and cluster; NULL IDs are never open.
    #[test]
    fn open_rows_are_the_unfinished_requests_of_the_day() {
        let rows: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("a"), None, Some("RequestReceived")), // only received: open
            (Some("b"), None, Some("RequestReceived")),
            (Some("b"), None, Some("ResponseStarted")), // started, no end: open
            (Some("c"), None, Some("RequestReceived")),
            (Some("c"), None, Some("ResponseStarted")),
            (Some("c"), None, Some("ResponseComplete")), // complete: none open
            (Some("d"), Some("x"), Some("RequestReceived")), // open in cluster x
            (Some("d"), Some("y"), Some("ResponseComplete")),
            (None, None, Some("RequestReceived")), // no ID: not open
            (Some("e"), None, Some("ResponseStarted")),
            (Some("e"), None, None), // no stage (old API): complete
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("audit_id", DataType::Utf8View, true),
            Field::new("ts", DataType::Int64, false),
            Field::new("cluster", DataType::Utf8View, true),
            Field::new("stage", DataType::Utf8View, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<StringViewArray>()),
                Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
                Arc::new(rows.iter().map(|r| r.1).collect::<StringViewArray>()),
                Arc::new(rows.iter().map(|r| r.2).collect::<StringViewArray>()),
            ],
        )
        .unwrap();
        // Split in two batches: a request's events may be in different batches.
        let batches = [batch.slice(0, 4), batch.slice(4, rows.len() - 4)];
        let open = super::open_rows(&batches, [0, 1, 2, 3]).unwrap();
        let ts: Vec<i64> = open
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ts, vec![0, 2, 6]);
    }
}
