//! `auditlake policy suggest`: a policy from the stored history that keeps the evidence of every
//! control and detection and drops the requests nothing uses, largest first.
//!
//! The skeleton is what CIS 3.2.2 and the controls need: Secrets, ConfigMaps and TokenReviews at
//! Metadata; writes at Request (their bodies: RBAC, workload specs); everything else at Metadata;
//! RequestReceived omitted. Drop rules (`level: None` for a verb, a verb on a resource, or one
//! identity's verb on a resource) are added for the largest groups of requests that no control's
//! rows contain. The suggestion is then
//! simulated; a control that would still lose rows gets a RequestResponse rule for what it reads,
//! placed first, and the simulation runs again (at most three rounds).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use auditlake_compliance::CONTROLS;
use auditlake_policy::Policy;
use auditlake_query::{AuditSession, QueryOptions};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};

use crate::config::Config;
use crate::simulate::{WHOLE_HISTORY, simulate, window_sql};

#[derive(clap::Args)]
pub struct SuggestArgs {
    /// The history to learn from.
    #[command(flatten)]
    pub window: crate::policy::Window,
    /// Say whether the suggestion stays under this many bytes of events a day (as JSON).
    #[arg(long, value_name = "BYTES_PER_DAY")]
    pub budget: Option<u64>,
    /// Drop rules to consider, largest first.
    #[arg(long, default_value_t = 25)]
    pub max_drop_rules: usize,
}

/// The control whose rows are credentials' bodies that the policy recorded: a suggestion that
/// takes its rows away is the point, not a loss.
const BODIES_RECORDED: &str = "cis_3_2_2_secret_bodies";

/// One group of requests: who, which verb, which resource, how many events.
struct Reads {
    user: String,
    verb: String,
    group: String,
    resource: String,
    events: u64,
}

fn text_rows(
    batches: &[datafusion::arrow::array::RecordBatch],
    cols: usize,
) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for b in batches {
        let c: Vec<_> = (0..cols)
            .map(|i| cast(b.column(i), &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        for i in 0..b.num_rows() {
            out.push(
                c.iter()
                    .map(|a| {
                        let a = a.as_string::<i32>();
                        if a.is_valid(i) {
                            a.value(i).to_owned()
                        } else {
                            String::new()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn render(drops: &[Reads], keep: &[(String, String)], ndays: u64, from: &str, to: &str) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Suggested by auditlake from the audit history of {from} to {to}.\n\
         # Every rule says why it is there; `auditlake policy simulate` shows what it keeps.\n\
         apiVersion: audit.k8s.io/v1\nkind: Policy\n\
         # Every request once: its RequestReceived stage is never needed.\n\
         omitStages: [RequestReceived]\nrules:"
    );
    for (verb, resource) in keep {
        let _ = writeln!(
            y,
            "  # A control reads the response of these requests: kept in full.\n  - level: RequestResponse\n    verbs: [{}]\n    resources:\n      - group: \"*\"\n        resources: [{}]",
            yaml_str(verb),
            yaml_str(resource)
        );
    }
    let _ = writeln!(
        y,
        "  # CIS 3.2.2: their bodies are credentials, so Metadata at most.\n  - level: Metadata\n    resources:\n      - group: \"\"\n        resources: [secrets, configmaps]\n      - group: authentication.k8s.io\n        resources: [tokenreviews]"
    );
    for d in drops {
        let who = if d.user.is_empty() {
            "anyone"
        } else {
            d.user.as_str()
        };
        let what = if d.resource.is_empty() {
            "any resource"
        } else {
            d.resource.as_str()
        };
        let _ = writeln!(
            y,
            "  # Drops {} events a day: {who} {} {what}; no control or detection uses them.\n  - level: None",
            d.events / ndays.max(1),
            d.verb,
        );
        if !d.user.is_empty() {
            let _ = writeln!(y, "    users: [{}]", yaml_str(&d.user));
        }
        let _ = writeln!(y, "    verbs: [{}]", yaml_str(&d.verb));
        if !d.resource.is_empty() {
            let _ = writeln!(
                y,
                "    resources:\n      - group: {}\n        resources: [{}]",
                yaml_str(&d.group),
                yaml_str(&d.resource)
            );
        }
    }
    let _ = writeln!(
        y,
        "  # Changes with their request bodies: what was granted (RBAC) or deployed (pod specs).\n  - level: Request\n    verbs: [create, update, patch, delete, deletecollection]\n  # Everything else, sessions (exec, port-forward) and anonymous requests included, at Metadata.\n  - level: Metadata"
    );
    y
}

pub fn run(store: &str, config: &Config, a: SuggestArgs) -> Result<ExitCode> {
    let (from, to) = a.window.bounds()?;
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let opts = QueryOptions {
        scope: config.scope.clone(),
        ..Default::default()
    };
    let session = rt.block_on(AuditSession::open(store.clone(), &opts))?;
    let window = window_sql(from, to);
    let collect = |sql: String| -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
        rt.block_on(async { Ok(session.sql(&sql).await?.collect().await?) })
    };
    // What some control's rows contain: (user, verb, resource).
    let mut used: BTreeSet<(String, String, String)> = BTreeSet::new();
    for c in CONTROLS
        .iter()
        .filter(|c| !WHOLE_HISTORY.contains(&c.view) && c.view != BODIES_RECORDED)
    {
        let rows = text_rows(
            &collect(format!(
                "SELECT DISTINCT coalesce(user_name, ''), coalesce(verb, ''), coalesce(resource, '') FROM {} WHERE {window}",
                c.view
            ))?,
            3,
        )?;
        used.extend(
            rows.into_iter()
                .map(|r| (r[0].clone(), r[1].clone(), r[2].clone())),
        );
    }
    // Requests by how much they weigh, at three grains: a verb for everyone, a verb on a resource
    // for everyone, one identity's verb on a resource. The coarsest grain nothing uses wins (a
    // lease renewal or an Event written by a controller is no control's evidence).
    let reads = |group_by: &str, cols: &str, width: usize| -> Result<Vec<(Vec<String>, u64)>> {
        let batches = collect(format!(
            "SELECT {cols}, count(*) AS n FROM audit_events \
             WHERE {window} AND verb IS NOT NULL AND resource IS NOT NULL \
             AND resource NOT IN ('secrets', 'configmaps', 'tokenreviews') \
             GROUP BY {group_by} ORDER BY n DESC, {group_by}"
        ))?;
        let counts: Vec<u64> = batches
            .iter()
            .flat_map(|b| {
                let n = b.column(width).as_primitive::<Int64Type>();
                (0..b.num_rows()).map(move |i| n.value(i) as u64)
            })
            .collect();
        Ok(text_rows(&batches, width)?
            .into_iter()
            .zip(counts)
            .collect())
    };
    let sensitive = |r: &str| matches!(r, "secrets" | "configmaps" | "tokenreviews");
    let used_by = |verb: &str, resource: Option<&str>, user: Option<&str>| {
        used.iter().any(|(u, v, r)| {
            v == verb
                && !sensitive(r)
                && resource.is_none_or(|x| x == r)
                && user.is_none_or(|x| x == u)
        })
    };
    let mut drops: Vec<Reads> = Vec::new();
    let mut whole_verbs: Vec<String> = Vec::new();
    for (r, events) in reads("verb", "verb", 1)? {
        if !used_by(&r[0], None, None) {
            whole_verbs.push(r[0].clone());
            drops.push(Reads {
                user: String::new(),
                verb: r[0].clone(),
                group: String::new(),
                resource: String::new(),
                events,
            });
        }
    }
    let mut whole_resources: Vec<(String, String)> = Vec::new();
    for (r, events) in reads(
        "verb, coalesce(api_group, ''), resource",
        "verb, coalesce(api_group, ''), resource",
        3,
    )? {
        if drops.len() >= a.max_drop_rules {
            break;
        }
        if !whole_verbs.contains(&r[0]) && !used_by(&r[0], Some(&r[2]), None) {
            whole_resources.push((r[0].clone(), r[2].clone()));
            drops.push(Reads {
                user: String::new(),
                verb: r[0].clone(),
                group: r[1].clone(),
                resource: r[2].clone(),
                events,
            });
        }
    }
    for (r, events) in reads(
        "user_name, verb, coalesce(api_group, ''), resource",
        "coalesce(user_name, ''), verb, coalesce(api_group, ''), resource",
        4,
    )? {
        if drops.len() >= a.max_drop_rules {
            break;
        }
        let covered = whole_verbs.contains(&r[1])
            || whole_resources
                .iter()
                .any(|(v, res)| *v == r[1] && *res == r[3]);
        if !r[0].is_empty() && !covered && !used_by(&r[1], Some(&r[3]), Some(&r[0])) {
            drops.push(Reads {
                user: r[0].clone(),
                verb: r[1].clone(),
                group: r[2].clone(),
                resource: r[3].clone(),
                events,
            });
        }
    }
    let ndays = ((to - from) / 86_400_000_000).max(1) as u64;
    let (f, t) = (
        auditlake_model::time::format_canonical(from),
        auditlake_model::time::format_canonical(to),
    );
    let mut keep: Vec<(String, String)> = Vec::new();
    let mut round = 0;
    let (yaml, sim) = loop {
        round += 1;
        let yaml = render(&drops, &keep, ndays, &f, &t);
        let policy = Policy::from_yaml(&yaml)?;
        let sim = simulate(&rt, &store, config, &policy, "the suggestion", from, to)?;
        let losing: Vec<&str> = sim
            .changed_controls
            .iter()
            .filter(|c| c.candidate_rows < c.recorded_rows && c.view != BODIES_RECORDED)
            .map(|c| c.view.as_str())
            .collect();
        if losing.is_empty() || round == 3 {
            break (yaml, sim);
        }
        // Keep in full what the losing controls read, and drop nothing they read.
        for view in losing {
            let rows = text_rows(
                &collect(format!(
                    "SELECT DISTINCT coalesce(verb, ''), coalesce(resource, '') FROM {view} WHERE {window} AND resource IS NOT NULL"
                ))?,
                2,
            )?;
            for r in rows
                .into_iter()
                .filter(|r| !matches!(r[1].as_str(), "secrets" | "configmaps" | "tokenreviews"))
            {
                let k = (r[0].clone(), r[1].clone());
                if !keep.contains(&k) {
                    keep.push(k);
                }
            }
        }
        drops.retain(|d| {
            !keep
                .iter()
                .any(|(v, r)| *v == d.verb && (d.resource.is_empty() || *r == d.resource))
        });
    };
    print!("{yaml}");
    eprint!("{}", crate::simulate::markdown(&sim));
    if let Some(b) = a.budget {
        let per_day = sim.kept_bytes / ndays;
        if per_day > b {
            eprintln!(
                "\nThe suggestion keeps {per_day} bytes a day, over the budget of {b}: what remains is evidence some control uses."
            );
        } else {
            eprintln!("\nThe suggestion keeps {per_day} bytes a day, within the budget of {b}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
