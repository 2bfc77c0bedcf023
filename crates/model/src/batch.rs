//! Building Arrow record batches of the `audit_events` schema from decoded rows.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::decode::EventRow;
use crate::schema::audit_events_schema;

/// Accumulates [`EventRow`]s column by column.
pub struct EventBatchBuilder {
    ts: TimestampMicrosecondBuilder,
    stage_ts: TimestampMicrosecondBuilder,
    strs: Vec<StringBuilder>,
    lists: Vec<ListBuilder<StringBuilder>>,
    response_code: Int32Builder,
    shape_flags: Int32Builder,
    rows: usize,
    bytes: usize,
}

// Indexes into `strs`, in schema order.
const S_AUDIT_ID: usize = 0;
const S_STAGE: usize = 1;
const S_LEVEL: usize = 2;
const S_VERB: usize = 3;
const S_REQUEST_URI: usize = 4;
const S_USER_NAME: usize = 5;
const S_USER_UID: usize = 6;
const S_USER_EXTRA: usize = 7;
const S_IMP_NAME: usize = 8;
const S_IMP_UID: usize = 9;
const S_USER_AGENT: usize = 10;
const S_RESOURCE: usize = 11;
const S_SUBRESOURCE: usize = 12;
const S_NAMESPACE: usize = 13;
const S_NAME: usize = 14;
const S_API_GROUP: usize = 15;
const S_API_VERSION: usize = 16;
const S_OBJECT_UID: usize = 17;
const S_RESOURCE_VERSION: usize = 18;
const S_RESPONSE_STATUS: usize = 19;
const S_RESPONSE_REASON: usize = 20;
const S_RESPONSE_MESSAGE: usize = 21;
const S_REQUEST_OBJECT: usize = 22;
const S_RESPONSE_OBJECT: usize = 23;
const S_ANNOTATIONS: usize = 24;
const S_AUTHZ_DECISION: usize = 25;
const S_AUTHZ_REASON: usize = 26;
const S_EVENT_API_VERSION: usize = 27;
const S_CLUSTER: usize = 28;
const S_UNMAPPED: usize = 29;
const S_SOURCE_FORMAT: usize = 30;
const S_ENVELOPE: usize = 31;
const N_STRS: usize = 32;

const L_USER_GROUPS: usize = 0;
const L_IMP_GROUPS: usize = 1;
const L_SOURCE_IPS: usize = 2;

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    pub fn new() -> Self {
        Self {
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            stage_ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            strs: (0..N_STRS).map(|_| StringBuilder::new()).collect(),
            lists: (0..3)
                .map(|_| ListBuilder::new(StringBuilder::new()))
                .collect(),
            response_code: Int32Builder::new(),
            shape_flags: Int32Builder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// An estimate of the memory the appended rows take, for bounding buffers.
    pub fn estimated_bytes(&self) -> usize {
        self.bytes + self.rows * 160
    }

    fn s(&mut self, i: usize, v: Option<&Cow<'_, str>>) {
        match v {
            Some(v) => {
                self.bytes += v.len();
                self.strs[i].append_value(v);
            }
            None => self.strs[i].append_null(),
        }
    }

    fn l(&mut self, i: usize, v: Option<&Vec<Cow<'_, str>>>) {
        match v {
            Some(items) => {
                for item in items {
                    self.bytes += item.len() + 4;
                    self.lists[i].values().append_value(item);
                }
                self.lists[i].append(true);
            }
            None => self.lists[i].append(false),
        }
    }

    /// Appends one event, labelled with `cluster`.
    pub fn append(&mut self, r: &EventRow<'_>, cluster: Option<&str>) {
        self.ts.append_value(r.ts);
        self.stage_ts.append_option(r.stage_ts);
        self.s(S_AUDIT_ID, r.audit_id.as_ref());
        self.s(S_STAGE, r.stage.as_ref());
        self.s(S_LEVEL, r.level.as_ref());
        self.s(S_VERB, r.verb.as_ref());
        self.s(S_REQUEST_URI, r.request_uri.as_ref());
        self.s(S_USER_NAME, r.user_name.as_ref());
        self.s(S_USER_UID, r.user_uid.as_ref());
        self.l(L_USER_GROUPS, r.user_groups.as_ref());
        self.s(S_USER_EXTRA, r.user_extra.as_ref());
        self.s(S_IMP_NAME, r.impersonated_user_name.as_ref());
        self.s(S_IMP_UID, r.impersonated_user_uid.as_ref());
        self.l(L_IMP_GROUPS, r.impersonated_user_groups.as_ref());
        self.l(L_SOURCE_IPS, r.source_ips.as_ref());
        self.s(S_USER_AGENT, r.user_agent.as_ref());
        self.s(S_RESOURCE, r.resource.as_ref());
        self.s(S_SUBRESOURCE, r.subresource.as_ref());
        self.s(S_NAMESPACE, r.namespace.as_ref());
        self.s(S_NAME, r.name.as_ref());
        self.s(S_API_GROUP, r.api_group.as_ref());
        self.s(S_API_VERSION, r.api_version.as_ref());
        self.s(S_OBJECT_UID, r.object_uid.as_ref());
        self.s(S_RESOURCE_VERSION, r.resource_version.as_ref());
        self.response_code.append_option(r.response_code);
        self.s(S_RESPONSE_STATUS, r.response_status.as_ref());
        self.s(S_RESPONSE_REASON, r.response_reason.as_ref());
        self.s(S_RESPONSE_MESSAGE, r.response_message.as_ref());
        self.s(S_REQUEST_OBJECT, r.request_object.as_ref());
        self.s(S_RESPONSE_OBJECT, r.response_object.as_ref());
        self.s(S_ANNOTATIONS, r.annotations.as_ref());
        self.s(S_AUTHZ_DECISION, r.authz_decision.as_ref());
        self.s(S_AUTHZ_REASON, r.authz_reason.as_ref());
        self.s(S_EVENT_API_VERSION, r.event_api_version.as_ref());
        let cluster = cluster.or(r.envelope_cluster.as_deref());
        self.s(S_CLUSTER, cluster.map(Cow::Borrowed).as_ref());
        let unmapped = r.unmapped.as_deref().map(Cow::Borrowed);
        self.s(S_UNMAPPED, unmapped.as_ref());
        self.shape_flags.append_value(r.shape_flags);
        let source = r.source_format.unwrap_or(crate::schema::source::K8S);
        self.s(S_SOURCE_FORMAT, Some(&Cow::Borrowed(source)));
        let envelope = r.envelope.as_deref().map(Cow::Borrowed);
        self.s(S_ENVELOPE, envelope.as_ref());
        self.rows += 1;
    }

    /// The rows appended so far as one batch; the builder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut s: Vec<ArrayRef> = self
            .strs
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let mut l: Vec<ArrayRef> = self
            .lists
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let mut take =
            |i: usize| std::mem::replace(&mut s[i], Arc::new(StringBuilder::new().finish()));
        let mut take_l = |i: usize| {
            std::mem::replace(
                &mut l[i],
                Arc::new(ListBuilder::new(StringBuilder::new()).finish()),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.stage_ts.finish()),
            take(S_AUDIT_ID),
            take(S_STAGE),
            take(S_LEVEL),
            take(S_VERB),
            take(S_REQUEST_URI),
            take(S_USER_NAME),
            take(S_USER_UID),
            take_l(L_USER_GROUPS),
            take(S_USER_EXTRA),
            take(S_IMP_NAME),
            take(S_IMP_UID),
            take_l(L_IMP_GROUPS),
            take_l(L_SOURCE_IPS),
            take(S_USER_AGENT),
            take(S_RESOURCE),
            take(S_SUBRESOURCE),
            take(S_NAMESPACE),
            take(S_NAME),
            take(S_API_GROUP),
            take(S_API_VERSION),
            take(S_OBJECT_UID),
            take(S_RESOURCE_VERSION),
            Arc::new(self.response_code.finish()),
            take(S_RESPONSE_STATUS),
            take(S_RESPONSE_REASON),
            take(S_RESPONSE_MESSAGE),
            take(S_REQUEST_OBJECT),
            take(S_RESPONSE_OBJECT),
            take(S_ANNOTATIONS),
            take(S_AUTHZ_DECISION),
            take(S_AUTHZ_REASON),
            take(S_EVENT_API_VERSION),
            take(S_CLUSTER),
            take(S_UNMAPPED),
            Arc::new(self.shape_flags.finish()),
            take(S_SOURCE_FORMAT),
            take(S_ENVELOPE),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(audit_events_schema(), columns)
    }
}
