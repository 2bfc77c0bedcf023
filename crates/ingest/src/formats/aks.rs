//! AKS: diagnostic settings write records `{category, operationName, resourceId, time,
//! properties: {log, pod, stream}}`, one per line in a storage account's `PT1H.json` blobs, or as
//! `{"records": [...]}` documents from an Event Hub. `properties.log` is the Event as a JSON
//! string (with a trailing newline), sometimes as an object.
//!
//! Only the categories `kube-audit` and `kube-audit-admin` hold audit events; records of the
//! others (`kube-apiserver`, `guard`, ...) are rejected with their category named.

use serde_json::{Map, Value};

use super::{Bad, Format, Leaf, Provider, Unwrapped, envelope_error, inner_event};
use auditlake_model::schema::source;

pub(crate) struct Aks;

const AUDIT_CATEGORIES: [&str; 2] = ["kube-audit", "kube-audit-admin"];

fn is_record(m: &Map<String, Value>) -> bool {
    m.contains_key("properties") && (m.contains_key("category") || m.contains_key("resourceId"))
}

impl Provider for Aks {
    fn format(&self) -> Format {
        Format::Aks
    }

    fn recognises(&self, m: &Map<String, Value>) -> bool {
        is_record(m)
            || m.get("records").is_some_and(|r| {
                r.as_array().is_some_and(|r| {
                    !r.is_empty() && r.iter().all(|r| r.as_object().is_some_and(is_record))
                })
            })
    }

    fn unwrap(&self, mut m: Map<String, Value>, item: Option<usize>, out: &mut Vec<Unwrapped>) {
        if !is_record(&m)
            && let Some(Value::Array(records)) = m.remove("records")
        {
            for (i, r) in records.into_iter().enumerate() {
                if let Value::Object(r) = r {
                    out.push(record(r, Some(i)));
                }
            }
            return;
        }
        out.push(record(m, item));
    }
}

/// The cluster a resource ID `/SUBSCRIPTIONS/…/MANAGEDCLUSTERS/<name>` is for. Azure Monitor
/// writes resource IDs upper-cased and Azure names are case-insensitive, so the name is given
/// in lower case (as `az aks list` shows it for a name created in lower case).
fn cluster_of(resource_id: &str) -> Option<String> {
    let lower = resource_id.to_ascii_lowercase();
    // The resource type's segment, not a resource group that happens to be named so.
    const TYPE: &str = "/providers/microsoft.containerservice/managedclusters/";
    let at = match lower.rfind(TYPE) {
        Some(i) => i + TYPE.len(),
        None => lower.rfind("/managedclusters/")? + "/managedclusters/".len(),
    };
    let name = lower[at..].split('/').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

fn record(mut r: Map<String, Value>, item: Option<usize>) -> Unwrapped {
    let raw = |r: &Map<String, Value>| Value::Object(r.clone()).to_string();
    let category = r
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !AUDIT_CATEGORIES.contains(&category.as_str()) {
        let what = if category.is_empty() {
            "an AKS diagnostic record without a category".to_owned()
        } else {
            format!("an AKS diagnostic record of category {category:?}")
        };
        return Err(Bad {
            item,
            raw: raw(&r),
            error: envelope_error(format!(
                "{what}, not an audit event (only kube-audit and kube-audit-admin hold audit events)"
            )),
        });
    }
    let cluster = r
        .get("resourceId")
        .and_then(Value::as_str)
        .and_then(cluster_of);
    let log = match r.get_mut("properties") {
        // Taken out only when it can be an event, so that a reject keeps the record whole.
        Some(Value::Object(p)) if p.get("log").is_some_and(|l| l.is_string() || l.is_object()) => {
            p.remove("log")
        }
        Some(Value::Object(p)) if p.contains_key("log") => {
            let kind = super::json_kind(&p["log"]);
            return Err(Bad {
                item,
                raw: raw(&r),
                error: envelope_error(format!(
                    "AKS properties.log is a JSON {kind}, not an audit event"
                )),
            });
        }
        _ => None,
    };
    let Some(log) = log else {
        return Err(Bad {
            item,
            raw: raw(&r),
            error: envelope_error(format!("AKS: a {category} record without properties.log")),
        });
    };
    match inner_event(log, "AKS properties.log") {
        Ok((event, marker)) => {
            if let Some(Value::Object(p)) = r.get_mut("properties") {
                p.insert("log".into(), marker);
            }
            Ok(Leaf {
                item,
                event,
                envelope: Some(Value::Object(r)),
                source: source::AKS,
                cluster,
                authz_decision: None,
            })
        }
        Err(error) => Err(Bad {
            item,
            raw: raw(&r),
            error,
        }),
    }
}
