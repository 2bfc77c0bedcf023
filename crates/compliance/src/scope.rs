//! The compliance scope: which namespaces hold regulated data, who is an administrator, which
//! identities are automation, when business hours are, and the thresholds of the stream controls.
//!
//! A control in `sql/compliance/` is written once and reads its scope from the session, never from
//! constants in its SQL. [`Scope`] is read from TOML ([`Scope::from_toml`], [`Scope::load`]; in a
//! larger configuration file it is the `[scope]` table, since `Scope` implements `Deserialize`),
//! every key is optional, and an unknown key is an error that names it. Each default is documented
//! on its field and in `sql/compliance/README.md`.
//!
//! # In SQL
//!
//! The query crate's `AuditSession::open` registers (through [`Scope::register`]):
//!
//! | name | what it is |
//! |---|---|
//! | `scope` table (`setting`, `value`) | one row per value of every setting, for reading and reports |
//! | `scope_match('setting', text)` | `text` matches one of the glob patterns of a list setting |
//! | `scope_match_any('setting', list)` | any element of a `List<Utf8>` (e.g. `user_groups`) matches |
//! | `scope_int('setting')` | a numeric setting as `BIGINT` (folded to a constant at planning) |
//! | `is_admin(user_name, user_groups)` | `admin_users`, `break_glass_users` or a group in `admin_groups` |
//! | `is_automation(user_name, user_groups)` | `automation_users` or a group in `automation_groups` |
//! | `in_business_hours(ts)` | `ts` falls on a business day, `start_hour <= local hour < end_hour` |
//! | `business_local_time(ts)` | `ts` in the business-hours time zone, as text: `2026-05-04 18:30 Mon Europe/Berlin` |
//!
//! Patterns are globs: `*` matches any run of characters (also none, also `:`), every other
//! character matches itself, case-sensitively (Kubernetes names are case-sensitive). A setting name
//! that is not a literal or not known is a planning error, so a typo in a control fails when the
//! control is planned (on first use; the unit tests plan every control), not silently at run time.
//!
//! NULL in, NULL out is not what a control wants from a predicate: the matchers return `false` for
//! a NULL value (a request without a user is not an administrator's), `in_business_hours(NULL)` and
//! `business_local_time(NULL)` are NULL.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike, Utc, Weekday};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, TimeUnit};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the compliance controls need to know about the organisation. Every field has a default;
/// see each field for it and for which controls read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// Namespaces of the PCI DSS cardholder data environment (globs). Default empty: PCI
    /// 10.2.1.1 is then not evaluable (its `requires` header names this setting).
    pub cde_namespaces: Vec<String>,
    /// Namespaces holding electronic protected health information (HIPAA; globs). Default empty:
    /// the HIPAA controls that require it are not evaluable.
    pub ephi_namespaces: Vec<String>,
    /// User names with administrative access (globs). Default `kubernetes-admin` (the kubeadm
    /// admin credential).
    pub admin_users: Vec<String>,
    /// Groups whose members are administrators. Default `system:masters` (bypasses RBAC
    /// altogether) and `kubeadm:cluster-admins` (kubeadm >= 1.29 binds it to cluster-admin).
    pub admin_groups: Vec<String>,
    /// Non-human identities (globs): service accounts, control-plane components, nodes, managed
    /// service agents. Changes and sessions by these are "automation"; everything else is a person.
    pub automation_users: Vec<String>,
    /// Groups whose members are automation. Default `system:serviceaccounts`, `system:nodes`.
    pub automation_groups: Vec<String>,
    /// The control plane itself (globs): components whose routine reads of secrets, pod creation
    /// for ReplicaSets, token requests for pods and cleanups are the cluster working, not access
    /// to review. Narrower than `automation_users`: a CI service account is automation, not
    /// control plane.
    pub control_plane_users: Vec<String>,
    /// Emergency accounts (globs). Any use is evidence (PCI 10.2.1.2; SOC 2 CC7.2); they count as
    /// administrators. Default empty.
    pub break_glass_users: Vec<String>,
    /// Namespaces whose objects are system-level for PCI 10.2.1.7. Default `kube-system`,
    /// `kube-public`, `kube-node-lease`.
    pub system_namespaces: Vec<String>,
    /// Namespaces where the audit pipeline runs (log shipper, auditlake's receiver), for PCI
    /// 10.2.1.3 access to audit logs. Default `auditlake`.
    pub audit_log_namespaces: Vec<String>,
    /// When people are expected to work; administrative activity outside is an anomaly (CC7.2).
    pub business_hours: BusinessHours,
    /// A burst of failed access is this many 401/403 responses to one identity ...
    pub failed_access_burst_count: u32,
    /// ... within this many minutes (SOC 2 CC7.2). Defaults 10 in 5 minutes.
    pub failed_access_burst_minutes: u32,
    /// A silence longer than this between two consecutive events of a cluster is a gap in the
    /// audit trail (PCI 10.2.1.6). Default 60: a live API server logs leases and controller
    /// traffic every few seconds unless the policy drops them.
    pub max_event_gap_minutes: u32,
    /// PCI DSS 10.5.1: audit history kept. Default 365 days.
    pub retention_days_kept: u32,
    /// PCI DSS 10.5.1: of which immediately available for analysis. Default 90 days (everything in
    /// an auditlake store is queryable, so this is checked against the same span).
    pub retention_days_queryable: u32,
    /// CIS Kubernetes Benchmark 1.2.17 (`--audit-log-maxage`): minimum days of audit history.
    /// Default 30.
    pub cis_min_retention_days: u32,
}

/// Business hours in one time zone. Defaults: Monday to Friday, 08:00 to 18:00, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusinessHours {
    /// First hour of the working day, 0-23, inclusive.
    pub start_hour: u32,
    /// Hour the working day ends, 1-24, exclusive (18 means until 17:59:59).
    pub end_hour: u32,
    /// Working days, as three-letter English names (`Mon` ... `Sun`, any case).
    pub days: Vec<String>,
    /// An IANA time zone name (`Europe/Berlin`, daylight saving applied) or a fixed offset
    /// (`+01:00`, `-05:00`, `UTC`).
    pub timezone: String,
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self {
            start_hour: 8,
            end_hour: 18,
            days: strings(&["Mon", "Tue", "Wed", "Thu", "Fri"]),
            timezone: "UTC".to_owned(),
        }
    }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            cde_namespaces: Vec::new(),
            ephi_namespaces: Vec::new(),
            admin_users: strings(&["kubernetes-admin"]),
            admin_groups: strings(&["system:masters", "kubeadm:cluster-admins"]),
            automation_users: strings(&[
                "system:serviceaccount:*",
                "system:kube-*",
                "system:node:*",
                "system:apiserver",
                "system:volume-scheduler",
                "eks:*",
                "aksService",
            ]),
            automation_groups: strings(&["system:serviceaccounts", "system:nodes"]),
            control_plane_users: strings(&[
                "system:kube-*",
                "system:node:*",
                "system:apiserver",
                "system:volume-scheduler",
                "system:serviceaccount:kube-system:*",
                "eks:*",
                "aksService",
            ]),
            break_glass_users: Vec::new(),
            system_namespaces: strings(&["kube-system", "kube-public", "kube-node-lease"]),
            audit_log_namespaces: strings(&["auditlake"]),
            business_hours: BusinessHours::default(),
            failed_access_burst_count: 10,
            failed_access_burst_minutes: 5,
            max_event_gap_minutes: 60,
            retention_days_kept: 365,
            retention_days_queryable: 90,
            cis_min_retention_days: 30,
        }
    }
}

/// The list settings usable in `scope_match` / `scope_match_any`.
const LIST_SETTINGS: [&str; 10] = [
    "cde_namespaces",
    "ephi_namespaces",
    "admin_users",
    "admin_groups",
    "automation_users",
    "automation_groups",
    "control_plane_users",
    "break_glass_users",
    "system_namespaces",
    "audit_log_namespaces",
];

impl Scope {
    /// Parses the scope from TOML text whose top-level keys are the fields of [`Scope`].
    pub fn from_toml(text: &str) -> Result<Self> {
        let scope: Scope = toml::from_str(text).map_err(|e| Error::Scope {
            origin: "TOML".to_owned(),
            message: e.to_string(),
        })?;
        scope.validate()?;
        Ok(scope)
    }

    /// Reads and parses a scope file; errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Scope {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Scope { message, .. } => Error::Scope { origin, message },
            other => other,
        })
    }

    /// Checks what serde cannot: hours in range, day and time zone names.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Scope {
                origin: "scope".to_owned(),
                message,
            })
        };
        let h = &self.business_hours;
        if h.start_hour > 23 || h.end_hour > 24 || h.start_hour >= h.end_hour {
            return bad(format!(
                "business_hours: start_hour ({}) must be 0-23 and below end_hour ({}, at most 24)",
                h.start_hour, h.end_hour
            ));
        }
        for d in &h.days {
            if parse_weekday(d).is_none() {
                return bad(format!(
                    "business_hours.days: `{d}` is not a day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
                ));
            }
        }
        if let Err(e) = parse_timezone(&h.timezone) {
            return bad(format!("business_hours.timezone: {e}"));
        }
        if self.failed_access_burst_count == 0 || self.failed_access_burst_minutes == 0 {
            return bad(
                "failed_access_burst_count and failed_access_burst_minutes must be at least 1"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Every setting as `(name, values)`, in the order of the fields: the rows of the `scope`
    /// table. Numbers are written in decimal; nested keys as `business_hours.start_hour`.
    pub fn settings(&self) -> Vec<(&'static str, Vec<String>)> {
        let h = &self.business_hours;
        let n = |v: u32| vec![v.to_string()];
        vec![
            ("cde_namespaces", self.cde_namespaces.clone()),
            ("ephi_namespaces", self.ephi_namespaces.clone()),
            ("admin_users", self.admin_users.clone()),
            ("admin_groups", self.admin_groups.clone()),
            ("automation_users", self.automation_users.clone()),
            ("automation_groups", self.automation_groups.clone()),
            ("control_plane_users", self.control_plane_users.clone()),
            ("break_glass_users", self.break_glass_users.clone()),
            ("system_namespaces", self.system_namespaces.clone()),
            ("audit_log_namespaces", self.audit_log_namespaces.clone()),
            ("business_hours.start_hour", n(h.start_hour)),
            ("business_hours.end_hour", n(h.end_hour)),
            ("business_hours.days", h.days.clone()),
            ("business_hours.timezone", vec![h.timezone.clone()]),
            (
                "failed_access_burst_count",
                n(self.failed_access_burst_count),
            ),
            (
                "failed_access_burst_minutes",
                n(self.failed_access_burst_minutes),
            ),
            ("max_event_gap_minutes", n(self.max_event_gap_minutes)),
            ("retention_days_kept", n(self.retention_days_kept)),
            ("retention_days_queryable", n(self.retention_days_queryable)),
            ("cis_min_retention_days", n(self.cis_min_retention_days)),
        ]
    }

    /// Whether a list setting is empty, e.g. to report a control whose `requires` names it as
    /// "not evaluable". `None` for a name that is not a list setting.
    pub fn is_empty(&self, setting: &str) -> Option<bool> {
        self.list(setting).map(<[String]>::is_empty)
    }

    fn list(&self, setting: &str) -> Option<&[String]> {
        Some(match setting {
            "cde_namespaces" => &self.cde_namespaces,
            "ephi_namespaces" => &self.ephi_namespaces,
            "admin_users" => &self.admin_users,
            "admin_groups" => &self.admin_groups,
            "automation_users" => &self.automation_users,
            "automation_groups" => &self.automation_groups,
            "control_plane_users" => &self.control_plane_users,
            "break_glass_users" => &self.break_glass_users,
            "system_namespaces" => &self.system_namespaces,
            "audit_log_namespaces" => &self.audit_log_namespaces,
            _ => return None,
        })
    }

    fn int(&self, setting: &str) -> Option<i64> {
        let h = &self.business_hours;
        Some(i64::from(match setting {
            "failed_access_burst_count" => self.failed_access_burst_count,
            "failed_access_burst_minutes" => self.failed_access_burst_minutes,
            "max_event_gap_minutes" => self.max_event_gap_minutes,
            "retention_days_kept" => self.retention_days_kept,
            "retention_days_queryable" => self.retention_days_queryable,
            "cis_min_retention_days" => self.cis_min_retention_days,
            "business_hours.start_hour" => h.start_hour,
            "business_hours.end_hour" => h.end_hour,
            _ => return None,
        }))
    }

    /// SHA-256 (hex) of every setting, defaults included, as JSON: the same scope gives the same
    /// hash, whatever the config file's layout. Reports record it.
    pub fn sha256(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_string(self).unwrap_or_default();
        sha2::Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Registers the `scope` table and the scope functions in a session.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        self.validate()?;
        let (mut settings, mut values) = (Vec::new(), Vec::new());
        for (name, vals) in self.settings() {
            for v in vals {
                settings.push(name);
                values.push(v);
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("setting", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(settings)),
                Arc::new(StringArray::from(values)),
            ],
        )
        .map_err(DataFusionError::from)?;
        ctx.register_table(
            "scope",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;

        let compiled = Arc::new(Compiled::new(self));
        for kind in [
            Kind::Match,
            Kind::MatchAny,
            Kind::Int,
            Kind::IsAdmin,
            Kind::IsAutomation,
            Kind::InBusinessHours,
            Kind::BusinessLocalTime,
        ] {
            ctx.register_udf(ScalarUDF::new_from_impl(ScopeUdf::new(
                kind,
                Arc::clone(&compiled),
            )));
        }
        Ok(())
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    match s.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Some(Weekday::Mon),
        "tue" | "tuesday" => Some(Weekday::Tue),
        "wed" | "wednesday" => Some(Weekday::Wed),
        "thu" | "thursday" => Some(Weekday::Thu),
        "fri" | "friday" => Some(Weekday::Fri),
        "sat" | "saturday" => Some(Weekday::Sat),
        "sun" | "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

fn parse_timezone(s: &str) -> std::result::Result<Zone, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset")));
    }
    if let Some(rest) = t.strip_prefix(['+', '-']) {
        let sign = if t.starts_with('-') { -1 } else { 1 };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let offset = match (h.parse::<i32>(), m.parse::<i32>()) {
            (Ok(h), Ok(m)) if h <= 14 && m < 60 => {
                FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            }
            _ => None,
        };
        return offset
            .map(Zone::Fixed)
            .ok_or_else(|| format!("`{s}` is not an offset like +01:00"));
    }
    t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
        format!("`{s}` is neither an IANA time zone (Europe/Berlin) nor an offset (+01:00)")
    })
}

/// A list of glob patterns, split into exact names (a hash lookup) and patterns with `*`.
#[derive(Debug, Default)]
struct Patterns {
    exact: HashSet<String>,
    globs: Vec<Vec<String>>,
}

impl Patterns {
    fn new(patterns: &[String]) -> Self {
        let mut p = Self::default();
        for pat in patterns {
            if pat.contains('*') {
                p.globs.push(pat.split('*').map(str::to_owned).collect());
            } else {
                p.exact.insert(pat.clone());
            }
        }
        p
    }

    fn matches(&self, s: &str) -> bool {
        self.exact.contains(s) || self.globs.iter().any(|g| glob_parts_match(g, s))
    }
}

/// Whether `s` matches a glob pattern with `*` wildcards (the only special character).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<String> = pattern.split('*').map(str::to_owned).collect();
    glob_parts_match(&parts, s)
}

/// `parts` is a pattern split at `*`: the first part anchors the start, the last the end, the
/// ones between are found left to right (greedy-leftmost is enough for `*`-only globs).
fn glob_parts_match(parts: &[String], s: &str) -> bool {
    match parts {
        [] => s.is_empty(),
        [only] => s == only,
        [first, middle @ .., last] => {
            let Some(mut rest) = s.strip_prefix(first.as_str()) else {
                return false;
            };
            for m in middle {
                match rest.find(m.as_str()) {
                    Some(i) => rest = &rest[i + m.len()..],
                    None => return false,
                }
            }
            rest.len() >= last.len() && rest.ends_with(last.as_str())
        }
    }
}

/// The scope in the form the functions evaluate it.
#[derive(Debug)]
struct Compiled {
    scope: Scope,
    lists: Vec<(&'static str, Patterns)>,
    days: Vec<Weekday>,
    zone: Zone,
}

impl Compiled {
    fn new(scope: &Scope) -> Self {
        let lists = LIST_SETTINGS
            .iter()
            .map(|name| (*name, Patterns::new(scope.list(name).unwrap_or_default())))
            .collect();
        let h = &scope.business_hours;
        Self {
            scope: scope.clone(),
            lists,
            days: h.days.iter().filter_map(|d| parse_weekday(d)).collect(),
            zone: parse_timezone(&h.timezone)
                .unwrap_or(Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset"))),
        }
    }

    fn list(&self, name: &str) -> Option<&Patterns> {
        self.lists.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    }

    /// `micros` in the business-hours zone: `2026-05-04 18:30 Mon Europe/Berlin`.
    fn local_time(&self, micros: i64) -> Option<String> {
        let utc = DateTime::<Utc>::from_timestamp_micros(micros)?;
        let local = match self.zone {
            Zone::Fixed(z) => z
                .from_utc_datetime(&utc.naive_utc())
                .format("%Y-%m-%d %H:%M %a"),
            Zone::Named(z) => z
                .from_utc_datetime(&utc.naive_utc())
                .format("%Y-%m-%d %H:%M %a"),
        };
        Some(format!("{local} {}", self.scope.business_hours.timezone))
    }

    fn in_business_hours(&self, micros: i64) -> Option<bool> {
        let utc = DateTime::<Utc>::from_timestamp_micros(micros)?;
        let (day, hour) = match self.zone {
            Zone::Fixed(z) => {
                let t = z.from_utc_datetime(&utc.naive_utc());
                (t.weekday(), t.hour())
            }
            Zone::Named(z) => {
                let t = z.from_utc_datetime(&utc.naive_utc());
                (t.weekday(), t.hour())
            }
        };
        let h = &self.scope.business_hours;
        Some(self.days.contains(&day) && hour >= h.start_hour && hour < h.end_hour)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Match,
    MatchAny,
    Int,
    IsAdmin,
    IsAutomation,
    InBusinessHours,
    BusinessLocalTime,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Match => "scope_match",
            Kind::MatchAny => "scope_match_any",
            Kind::Int => "scope_int",
            Kind::IsAdmin => "is_admin",
            Kind::IsAutomation => "is_automation",
            Kind::InBusinessHours => "in_business_hours",
            Kind::BusinessLocalTime => "business_local_time",
        }
    }
}

/// One scope function; all share the compiled scope of their session.
#[derive(Debug)]
struct ScopeUdf {
    kind: Kind,
    scope: Arc<Compiled>,
    signature: Signature,
}

impl PartialEq for ScopeUdf {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.scope, &other.scope)
    }
}

impl Eq for ScopeUdf {}

impl Hash for ScopeUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        (Arc::as_ptr(&self.scope) as usize).hash(state);
    }
}

impl ScopeUdf {
    fn new(kind: Kind, scope: Arc<Compiled>) -> Self {
        let arity = match kind {
            Kind::Int | Kind::InBusinessHours | Kind::BusinessLocalTime => 1,
            _ => 2,
        };
        Self {
            kind,
            scope,
            // Immutable: the result depends only on the arguments and this session's scope, so
            // DataFusion folds calls with constant arguments (`scope_int('...')`) while planning.
            signature: Signature::any(arity, Volatility::Immutable),
        }
    }

    /// The setting named by a literal first argument, checked at planning time.
    fn setting<'a>(&self, arg: Option<&'a ScalarValue>) -> datafusion::common::Result<&'a str> {
        let name = match arg {
            Some(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => s.as_str(),
            _ => {
                return plan_err!(
                    "{}: the setting name must be a string literal",
                    self.kind.name()
                );
            }
        };
        let known = match self.kind {
            Kind::Int => self.scope.scope.int(name).is_some(),
            _ => self.scope.list(name).is_some(),
        };
        if !known {
            let names: Vec<&str> = match self.kind {
                Kind::Int => self
                    .scope
                    .scope
                    .settings()
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| self.scope.scope.int(n).is_some())
                    .collect(),
                _ => LIST_SETTINGS.to_vec(),
            };
            return plan_err!(
                "{}: unknown scope setting '{name}' (known: {})",
                self.kind.name(),
                names.join(", ")
            );
        }
        Ok(name)
    }
}

/// The memo of [`Texts::matches`] and [`any_matches`]: DataFusion's hash map (foldhash), whose
/// keys here are one batch's strings.
type MemoMap<K, V> = datafusion::common::HashMap<K, V>;

/// A string argument's rows: `Utf8View` as it comes (the table's strings), anything else cast to
/// `Utf8`.
enum Texts {
    View(StringViewArray),
    Plain(StringArray),
}

impl Texts {
    fn of(value: &ColumnarValue, rows: usize) -> datafusion::common::Result<Self> {
        let array = value.to_array(rows)?;
        if let Some(v) = array.as_any().downcast_ref::<StringViewArray>() {
            return Ok(Self::View(v.clone()));
        }
        let array = cast(&array, &DataType::Utf8)?;
        Ok(Self::Plain(
            array
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .unwrap_or_else(|| StringArray::new_null(rows)),
        ))
    }

    /// Whether each row matches: `false` for NULL. Each distinct value is matched once per
    /// call (a scan's strings repeat: the user names of a day are a few hundred), keyed by its
    /// 16-byte view where the strings are views (equal views are equal strings).
    fn matches(&self, matches: impl Fn(&str) -> bool) -> Vec<bool> {
        match self {
            Self::View(a) => {
                let mut seen: MemoMap<u128, bool> = MemoMap::default();
                (0..a.len())
                    .map(|i| {
                        a.is_valid(i)
                            && *seen
                                .entry(a.views()[i])
                                .or_insert_with(|| matches(a.value(i)))
                    })
                    .collect()
            }
            Self::Plain(a) => {
                let mut seen: MemoMap<&str, bool> = MemoMap::default();
                a.iter()
                    .map(|v| v.is_some_and(|v| *seen.entry(v).or_insert_with(|| matches(v))))
                    .collect()
            }
        }
    }
}

/// `List<Utf8>` (or NULL) as a list array of strings.
fn lists_of(value: &ColumnarValue, rows: usize) -> datafusion::common::Result<Option<ListArray>> {
    let array = value.to_array(rows)?;
    if array.data_type() == &DataType::Null {
        return Ok(None);
    }
    let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let array = match cast(&array, &target) {
        Ok(a) => a,
        Err(e) => return exec_err!("expected a list of strings (like user_groups): {e}"),
    };
    Ok(array.as_any().downcast_ref::<ListArray>().cloned())
}

/// Whether any element of each row's list matches (`false` for a NULL list or none), each
/// distinct element matched once.
fn any_matches(lists: Option<&ListArray>, rows: usize, patterns: &Patterns) -> Vec<bool> {
    let Some(lists) = lists else {
        return vec![false; rows];
    };
    let Some(values) = lists.values().as_any().downcast_ref::<StringArray>() else {
        return vec![false; rows];
    };
    let offsets = lists.value_offsets();
    let mut seen: MemoMap<&str, bool> = MemoMap::default();
    (0..lists.len())
        .map(|row| {
            lists.is_valid(row)
                && (offsets[row] as usize..offsets[row + 1] as usize).any(|j| {
                    values.is_valid(j)
                        && *seen
                            .entry(values.value(j))
                            .or_insert_with(|| patterns.matches(values.value(j)))
                })
        })
        .collect()
}

impl ScalarUDFImpl for ScopeUdf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(match self.kind {
            Kind::Int => DataType::Int64,
            Kind::BusinessLocalTime => DataType::Utf8,
            _ => DataType::Boolean,
        })
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> datafusion::common::Result<FieldRef> {
        if matches!(self.kind, Kind::Match | Kind::MatchAny | Kind::Int) {
            self.setting(args.scalar_arguments.first().copied().flatten())?;
        }
        let (dt, nullable) = match self.kind {
            Kind::Int => (DataType::Int64, false),
            Kind::InBusinessHours => (DataType::Boolean, true),
            Kind::BusinessLocalTime => (DataType::Utf8, true),
            _ => (DataType::Boolean, false),
        };
        Ok(Arc::new(Field::new(self.name(), dt, nullable)))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let rows = args.number_rows;
        let scope = &self.scope;
        let literal = |i: usize| match args.args.get(i) {
            Some(ColumnarValue::Scalar(s)) => Some(s),
            _ => None,
        };
        let out: ArrayRef = match self.kind {
            Kind::Int => {
                let name = self.setting(literal(0))?;
                let v = scope.scope.int(name).unwrap_or_default();
                return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(v))));
            }
            Kind::Match => {
                let patterns = scope.list(self.setting(literal(0))?).expect("checked");
                let values = Texts::of(&args.args[1], rows)?;
                Arc::new(BooleanArray::from(values.matches(|v| patterns.matches(v))))
            }
            Kind::MatchAny => {
                let patterns = scope.list(self.setting(literal(0))?).expect("checked");
                let lists = lists_of(&args.args[1], rows)?;
                Arc::new(BooleanArray::from(any_matches(
                    lists.as_ref(),
                    rows,
                    patterns,
                )))
            }
            Kind::IsAdmin | Kind::IsAutomation => {
                let (users, groups) = if self.kind == Kind::IsAdmin {
                    ("admin_users", "admin_groups")
                } else {
                    ("automation_users", "automation_groups")
                };
                let (users, groups) = (
                    scope.list(users).expect("known"),
                    scope.list(groups).expect("known"),
                );
                let break_glass = scope.list("break_glass_users").expect("known");
                let names = Texts::of(&args.args[0], rows)?;
                let lists = lists_of(&args.args[1], rows)?;
                let by_name = names.matches(|n| {
                    users.matches(n) || (self.kind == Kind::IsAdmin && break_glass.matches(n))
                });
                let by_group = any_matches(lists.as_ref(), rows, groups);
                Arc::new(BooleanArray::from(
                    by_name
                        .iter()
                        .zip(&by_group)
                        .map(|(n, g)| *n || *g)
                        .collect::<Vec<bool>>(),
                ))
            }
            Kind::InBusinessHours | Kind::BusinessLocalTime => {
                let array = args.args[0].to_array(rows)?;
                let array = cast(
                    &array,
                    &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                )?;
                let Some(ts) = array.as_any().downcast_ref::<TimestampMicrosecondArray>() else {
                    return exec_err!("{}: expected a timestamp", self.kind.name());
                };
                if self.kind == Kind::InBusinessHours {
                    Arc::new(
                        ts.iter()
                            .map(|t| t.and_then(|t| scope.in_business_hours(t)))
                            .collect::<BooleanArray>(),
                    )
                } else {
                    Arc::new(
                        ts.iter()
                            .map(|t| t.and_then(|t| scope.local_time(t)))
                            .collect::<StringArray>(),
                    )
                }
            }
        };
        // A call whose arguments were all scalars returns a scalar.
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "system:serviceaccount:*",
            "system:serviceaccount:ci:deployer"
        ));
        assert!(glob_match("system:kube-*", "system:kube-scheduler"));
        assert!(!glob_match("system:kube-*", "system:kubelet"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXcYYb"));
        assert!(!glob_match("a*bc", "abc-bc-x"));
        assert!(glob_match("a*bc", "abc-bc"));
        assert!(glob_match("*-prod", "payments-prod"));
        assert!(!glob_match("*-prod", "payments-prod2"));
        assert!(
            !glob_match("ab*ba", "aba"),
            "overlapping ends must not share characters"
        );
        assert!(glob_match("payments", "payments"));
        assert!(!glob_match("payments", "Payments"), "case-sensitive");
        let p = Patterns::new(&strings(&["kube-system", "team-*"]));
        assert!(p.matches("kube-system") && p.matches("team-a") && !p.matches("default"));
    }

    #[test]
    fn defaults_and_partial_toml() {
        let s = Scope::from_toml("cde_namespaces = [\"payments\", \"card-*\"]\n[business_hours]\ntimezone = \"Europe/Berlin\"\n").unwrap();
        assert_eq!(s.cde_namespaces, strings(&["payments", "card-*"]));
        assert_eq!(s.business_hours.timezone, "Europe/Berlin");
        assert_eq!(
            s.business_hours.start_hour, 8,
            "unset nested keys keep their defaults"
        );
        assert_eq!(s.admin_groups, Scope::default().admin_groups);
        assert_eq!(Scope::from_toml("").unwrap(), Scope::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Scope::from_toml("cde_namespace = [\"payments\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `cde_namespace`"), "{e}");
        assert!(e.contains("cde_namespaces"), "lists the known keys: {e}");
        let e = Scope::from_toml("[business_hours]\nstart = 9")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `start`"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        let e = Scope::from_toml("[business_hours]\ntimezone = \"Mars/Olympus\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = Scope::from_toml("[business_hours]\nstart_hour = 18\nend_hour = 8")
            .unwrap_err()
            .to_string();
        assert!(e.contains("start_hour"), "{e}");
        let e = Scope::from_toml("[business_hours]\ndays = [\"Mo\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`Mo`"), "{e}");
        let e = Scope::from_toml("admin_users = \"root\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin_users") || e.contains("sequence"), "{e}");
    }

    #[test]
    fn business_hours_in_a_named_zone() {
        let mut s = Scope::default();
        s.business_hours.timezone = "Europe/Berlin".into();
        let c = Compiled::new(&s);
        let at = |t: &str| {
            let t = DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros();
            c.in_business_hours(t).unwrap()
        };
        // Summer (UTC+2): 06:30Z is 08:30 local; winter (UTC+1): 06:30Z is 07:30 local.
        assert!(at("2026-07-01T06:30:00Z"));
        assert!(!at("2026-01-07T06:30:00Z"));
        assert!(!at("2026-07-01T16:00:00Z"), "18:00 local is after hours");
        assert!(!at("2026-07-04T10:00:00Z"), "Saturday");
        s.business_hours.timezone = "-05:00".into();
        let c = Compiled::new(&s);
        let at = |t: &str| {
            let t = DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros();
            c.in_business_hours(t).unwrap()
        };
        assert!(!at("2026-07-01T12:59:00Z"), "07:59 at -05:00");
        assert!(at("2026-07-01T13:00:00Z"), "08:00 at -05:00");
    }
}
