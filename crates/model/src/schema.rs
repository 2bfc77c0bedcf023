//! The `audit_events` table: its columns are a contract that views, reports, docs and users rely on.
//!
//! The JSON path each column comes from is documented in `docs/columns.md` and in the README.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column names, one constant each, so that no other crate spells them by hand.
pub mod col {
    pub const TS: &str = "ts";
    pub const STAGE_TS: &str = "stage_ts";
    pub const AUDIT_ID: &str = "audit_id";
    pub const STAGE: &str = "stage";
    pub const LEVEL: &str = "level";
    pub const VERB: &str = "verb";
    pub const REQUEST_URI: &str = "request_uri";
    pub const USER_NAME: &str = "user_name";
    pub const USER_UID: &str = "user_uid";
    pub const USER_GROUPS: &str = "user_groups";
    pub const USER_EXTRA: &str = "user_extra";
    pub const IMPERSONATED_USER_NAME: &str = "impersonated_user_name";
    pub const IMPERSONATED_USER_UID: &str = "impersonated_user_uid";
    pub const IMPERSONATED_USER_GROUPS: &str = "impersonated_user_groups";
    pub const SOURCE_IPS: &str = "source_ips";
    pub const USER_AGENT: &str = "user_agent";
    pub const RESOURCE: &str = "resource";
    pub const SUBRESOURCE: &str = "subresource";
    pub const NAMESPACE: &str = "namespace";
    pub const NAME: &str = "name";
    pub const API_GROUP: &str = "api_group";
    pub const API_VERSION: &str = "api_version";
    pub const OBJECT_UID: &str = "object_uid";
    pub const RESOURCE_VERSION: &str = "resource_version";
    pub const RESPONSE_CODE: &str = "response_code";
    pub const RESPONSE_STATUS: &str = "response_status";
    pub const RESPONSE_REASON: &str = "response_reason";
    pub const RESPONSE_MESSAGE: &str = "response_message";
    pub const REQUEST_OBJECT: &str = "request_object";
    pub const RESPONSE_OBJECT: &str = "response_object";
    pub const ANNOTATIONS: &str = "annotations";
    pub const AUTHZ_DECISION: &str = "authz_decision";
    pub const AUTHZ_REASON: &str = "authz_reason";
    pub const EVENT_API_VERSION: &str = "event_api_version";
    pub const CLUSTER: &str = "cluster";
    pub const UNMAPPED: &str = "unmapped";
    pub const SHAPE_FLAGS: &str = "shape_flags";
    pub const SOURCE_FORMAT: &str = "source_format";
    pub const ENVELOPE: &str = "envelope";
}

/// The values of the `source_format` column: where a row came from.
pub mod source {
    /// The apiserver's own Event (a log file, a webhook batch, a log shipper).
    pub const K8S: &str = "k8s";
    /// EKS, through CloudWatch Logs.
    pub const EKS: &str = "eks";
    /// AKS diagnostic settings.
    pub const AKS: &str = "aks";
    /// GKE, through Cloud Logging.
    pub const GKE: &str = "gke";
}

/// Bits of the `shape_flags` column: presence facts that the typed columns cannot express.
pub mod flags {
    /// `requestReceivedTimestamp` is not to be rebuilt from `ts` (it was absent, null, or is kept
    /// verbatim in `unmapped`; `ts` then came from a fallback field).
    pub const NO_REQUEST_RECEIVED_TS: i32 = 1;
    /// `stageTimestamp` is not to be rebuilt from `stage_ts`.
    pub const NO_STAGE_TS: i32 = 2;
    /// The event had `"kind": "Event"`.
    pub const KIND_EVENT: i32 = 4;
    /// Retention slimmed the event to Metadata level: its request and response bodies were
    /// dropped (`level` still says what the apiserver recorded).
    pub const SLIMMED: i32 = 8;
}

/// The partition column of the store's hive layout (`date=YYYY-MM-DD/`), the UTC day of `ts`.
pub const PARTITION_COLUMNS: [&str; 1] = ["date"];

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn str_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::{Int32, Utf8};
    let f = |name: &str, dt: DataType, nullable: bool| Field::new(name, dt, nullable);
    Arc::new(Schema::new(vec![
        f(col::TS, ts_type(), false),
        f(col::STAGE_TS, ts_type(), true),
        f(col::AUDIT_ID, Utf8, true),
        f(col::STAGE, Utf8, true),
        f(col::LEVEL, Utf8, true),
        f(col::VERB, Utf8, true),
        f(col::REQUEST_URI, Utf8, true),
        f(col::USER_NAME, Utf8, true),
        f(col::USER_UID, Utf8, true),
        f(col::USER_GROUPS, str_list(), true),
        f(col::USER_EXTRA, Utf8, true),
        f(col::IMPERSONATED_USER_NAME, Utf8, true),
        f(col::IMPERSONATED_USER_UID, Utf8, true),
        f(col::IMPERSONATED_USER_GROUPS, str_list(), true),
        f(col::SOURCE_IPS, str_list(), true),
        f(col::USER_AGENT, Utf8, true),
        f(col::RESOURCE, Utf8, true),
        f(col::SUBRESOURCE, Utf8, true),
        f(col::NAMESPACE, Utf8, true),
        f(col::NAME, Utf8, true),
        f(col::API_GROUP, Utf8, true),
        f(col::API_VERSION, Utf8, true),
        f(col::OBJECT_UID, Utf8, true),
        f(col::RESOURCE_VERSION, Utf8, true),
        f(col::RESPONSE_CODE, Int32, true),
        f(col::RESPONSE_STATUS, Utf8, true),
        f(col::RESPONSE_REASON, Utf8, true),
        f(col::RESPONSE_MESSAGE, Utf8, true),
        f(col::REQUEST_OBJECT, Utf8, true),
        f(col::RESPONSE_OBJECT, Utf8, true),
        f(col::ANNOTATIONS, Utf8, true),
        f(col::AUTHZ_DECISION, Utf8, true),
        f(col::AUTHZ_REASON, Utf8, true),
        f(col::EVENT_API_VERSION, Utf8, true),
        f(col::CLUSTER, Utf8, true),
        f(col::UNMAPPED, Utf8, true),
        f(col::SHAPE_FLAGS, Int32, false),
        // Added after the first release: at the end, so that the columns before keep their
        // places; files written before lack them and read as null.
        f(col::SOURCE_FORMAT, Utf8, true),
        f(col::ENVELOPE, Utf8, true),
    ]))
});

/// The Arrow schema of the `audit_events` table as stored in each Parquet file (the partition
/// column `date` lives in the path, not in the file).
pub fn audit_events_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// Columns holding JSON text (objects, or any JSON value for request/response bodies).
pub const JSON_COLUMNS: [&str; 5] = [
    col::USER_EXTRA,
    col::REQUEST_OBJECT,
    col::RESPONSE_OBJECT,
    col::ANNOTATIONS,
    col::UNMAPPED,
];
