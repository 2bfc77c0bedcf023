//! Kubernetes audit policies (audit.k8s.io/v1 `Policy`): read with the apiserver's load-time
//! validation, and evaluated exactly as the apiserver evaluates them, restated from
//! `k8s.io/apiserver/pkg/audit/policy/checker.go` (see `../shared/spec/policy_semantics.md`).
//!
//! - [`Policy::from_yaml`] rejects what the apiserver rejects at start-up, naming the rule by index
//!   and the field (`rules[2].nonResourceURLs[0]: ...`).
//! - [`Policy::evaluate`] gives the level, the omitted stages and `omitManagedFields` of a request's
//!   [`Attributes`]: the first rule that matches wins; no match is level `None`.
//! - [`lint`] finds the CIS 3.2.1/3.2.2 omissions and the common mistakes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

mod lint;

pub use lint::{Finding, lint};

/// An audit level, in increasing order of what is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Metadata => "Metadata",
            Self::Request => "Request",
            Self::RequestResponse => "RequestResponse",
        }
    }
}

/// A stage of a request's processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestReceived => "RequestReceived",
            Self::ResponseStarted => "ResponseStarted",
            Self::ResponseComplete => "ResponseComplete",
            Self::Panic => "Panic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::RequestReceived,
            Self::ResponseStarted,
            Self::ResponseComplete,
            Self::Panic,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A group and its resources, as a rule names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// One rule, as written (before the policy's omitStages are merged in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub level: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    #[serde(default)]
    pub omit_stages: Vec<String>,
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: serde_yaml_ng::Value,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: bool,
}

/// A validated policy. `rules` keep their own omitStages; [`Policy::evaluate`] unions them with
/// the policy's, as the apiserver's evaluator does at construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    levels: Vec<Level>,
    /// Each rule's omitStages unioned with the policy's.
    omit: Vec<BTreeSet<Stage>>,
    pub omit_stages: BTreeSet<Stage>,
    pub omit_managed_fields: bool,
}

/// Why a policy does not load: where (`rules[2].level`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

/// Every reason a policy does not load (the apiserver reports them all at once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not a policy document: {0}")]
    Yaml(String),
    #[error("invalid audit policy: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Invalid>),
}

/// The attributes of a request that a policy matches on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `None` for a request without a user (it never matches a rule with users or userGroups).
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub verb: String,
    /// A resource request (objectRef), or a non-resource one (`path`).
    pub resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The URL path, without the query string.
    pub path: String,
}

impl Attributes {
    /// From the fields of a stored event: objectRef when there is one, else the request URI.
    /// The namespace of a request on `/api/v1/namespaces/<n>` is `<n>` (requestinfo.go).
    #[allow(clippy::too_many_arguments)]
    pub fn from_event(
        user: Option<&str>,
        groups: &[String],
        verb: Option<&str>,
        namespace: Option<&str>,
        api_group: Option<&str>,
        resource: Option<&str>,
        subresource: Option<&str>,
        name: Option<&str>,
        request_uri: Option<&str>,
    ) -> Self {
        let path = request_uri
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("")
            .to_owned();
        let resource_request = resource.is_some_and(|r| !r.is_empty());
        let mut namespace = namespace.unwrap_or("").to_owned();
        // Only a request on the namespace itself (`/api/v1/namespaces/<n>...`) is in it; a create
        // (POST /api/v1/namespaces) names the new namespace but is not in any.
        if resource == Some("namespaces")
            && namespace.is_empty()
            && let Some(n) = path
                .strip_prefix("/api/v1/namespaces/")
                .and_then(|rest| rest.split('/').next())
                .filter(|n| !n.is_empty())
        {
            namespace = n.to_owned();
        }
        Self {
            user: user.filter(|u| !u.is_empty()).map(str::to_owned),
            groups: groups.to_vec(),
            verb: verb.unwrap_or("").to_owned(),
            resource_request,
            namespace,
            api_group: api_group.unwrap_or("").to_owned(),
            resource: resource.unwrap_or("").to_owned(),
            subresource: subresource.unwrap_or("").to_owned(),
            name: name.unwrap_or("").to_owned(),
            path,
        }
    }
}

/// What a policy decides for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: BTreeSet<Stage>,
    pub omit_managed_fields: bool,
    /// The index of the rule that matched (none: no rule matched).
    pub rule: Option<usize>,
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl Policy {
    /// Reads and validates a policy document.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let doc: Document =
            serde_yaml_ng::from_str(text).map_err(|e| Error::Yaml(e.to_string()))?;
        let mut errors = Vec::new();
        let mut bad = |field: String, message: &str| {
            errors.push(Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if doc.api_version.as_deref() != Some("audit.k8s.io/v1") {
            bad(
                "apiVersion".into(),
                &format!(
                    "must be audit.k8s.io/v1, not {:?}",
                    doc.api_version.as_deref().unwrap_or("")
                ),
            );
        }
        if doc.kind.as_deref() != Some("Policy") {
            bad("kind".into(), "must be Policy");
        }
        if doc.rules.is_empty() {
            bad("rules".into(), "a policy needs at least one rule");
        }
        let stages = |list: &[String], at: &str, bad: &mut dyn FnMut(String, &str)| {
            let mut out = BTreeSet::new();
            for (j, s) in list.iter().enumerate() {
                match Stage::parse(s) {
                    Some(st) => {
                        out.insert(st);
                    }
                    None => bad(
                        format!("{at}omitStages[{j}]"),
                        &format!(
                            "{s:?} is not a stage: RequestReceived, ResponseStarted, ResponseComplete or Panic"
                        ),
                    ),
                }
            }
            out
        };
        let policy_omit = stages(&doc.omit_stages, "", &mut bad);
        let mut levels = Vec::new();
        let mut omit = Vec::new();
        for (i, r) in doc.rules.iter().enumerate() {
            let at = format!("rules[{i}].");
            let level = match r.level.as_deref() {
                None | Some("") => {
                    bad(format!("{at}level"), "required");
                    Level::None
                }
                Some(l) => match serde_yaml_ng::from_str::<Level>(l) {
                    Ok(l) => l,
                    Err(_) => {
                        bad(
                            format!("{at}level"),
                            &format!(
                                "{l:?} is not a level: None, Metadata, Request or RequestResponse"
                            ),
                        );
                        Level::None
                    }
                },
            };
            levels.push(level);
            let mut o = stages(&r.omit_stages, &at, &mut bad);
            o.extend(policy_omit.iter().copied());
            omit.push(o);
            for (j, u) in r.non_resource_urls.iter().enumerate() {
                let f = format!("{at}nonResourceURLs[{j}]");
                if u != "*" && !u.starts_with('/') {
                    bad(
                        f.clone(),
                        &format!("{u:?} must be \"*\" or start with \"/\""),
                    );
                }
                if u.find('*').is_some_and(|i| i != u.len() - 1) {
                    bad(
                        f,
                        &format!("{u:?}: \"*\" is allowed only as the final character"),
                    );
                }
            }
            if !r.non_resource_urls.is_empty()
                && (!r.resources.is_empty() || !r.namespaces.is_empty())
            {
                bad(
                    format!("{at}nonResourceURLs"),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            for (j, g) in r.resources.iter().enumerate() {
                if !(g.group.is_empty() || g.group == "*" || is_dns_subdomain(&g.group)) {
                    bad(
                        format!("{at}resources[{j}].group"),
                        &format!(
                            "{:?} is not a group: \"\", \"*\" or a DNS subdomain (no version)",
                            g.group
                        ),
                    );
                }
                if !g.resource_names.is_empty() && g.resources.is_empty() {
                    bad(
                        format!("{at}resources[{j}].resourceNames"),
                        "resourceNames requires at least one resource",
                    );
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(Self {
            rules: doc.rules,
            levels,
            omit,
            omit_stages: policy_omit,
            omit_managed_fields: doc.omit_managed_fields,
        })
    }

    /// The level of rule `i`.
    pub fn level(&self, i: usize) -> Level {
        self.levels[i]
    }

    /// What the apiserver records of a request with these attributes.
    pub fn evaluate(&self, a: &Attributes) -> Decision {
        for (i, r) in self.rules.iter().enumerate() {
            if rule_matches(r, a) {
                return Decision {
                    level: self.levels[i],
                    omit_stages: self.omit[i].clone(),
                    omit_managed_fields: r.omit_managed_fields.unwrap_or(self.omit_managed_fields),
                    rule: Some(i),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages.clone(),
            omit_managed_fields: self.omit_managed_fields,
            rule: None,
        }
    }
}

/// What [`Policy::apply`] did to a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Kept as recorded.
    Kept,
    /// Kept with less than was recorded (bodies removed, level lowered).
    Slimmed,
    /// Not kept: the policy gives it level None, or omits its stage.
    Dropped,
}

/// The recorded parts of an event that a stricter policy can take away.
pub struct Recorded<'a> {
    pub stage: Option<&'a str>,
    pub level: &'a mut Option<String>,
    pub request_object: &'a mut bool,
    pub response_object: &'a mut bool,
}

impl Policy {
    /// Applies the policy to an event the apiserver recorded under another (ingest --policy):
    /// an event at level None or in an omitted stage is dropped; below Request its request body
    /// goes, below RequestResponse its response body; the recorded level is lowered to the
    /// policy's. A policy never adds what was not recorded. (`omitManagedFields` is not applied:
    /// removing managedFields would rewrite the bodies.)
    pub fn apply(&self, a: &Attributes, r: Recorded<'_>) -> Applied {
        let d = self.evaluate(a);
        let omitted = r
            .stage
            .and_then(Stage::parse)
            .is_some_and(|s| d.omit_stages.contains(&s));
        if d.level == Level::None || omitted {
            return Applied::Dropped;
        }
        let mut slimmed = false;
        if d.level < Level::Request && *r.request_object {
            *r.request_object = false;
            slimmed = true;
        }
        if d.level < Level::RequestResponse && *r.response_object {
            *r.response_object = false;
            slimmed = true;
        }
        let recorded = r
            .level
            .as_deref()
            .and_then(|l| serde_yaml_ng::from_str::<Level>(l).ok());
        if recorded.is_some_and(|l| l > d.level) {
            *r.level = Some(d.level.as_str().to_owned());
            slimmed = true;
        }
        if slimmed {
            Applied::Slimmed
        } else {
            Applied::Kept
        }
    }
}

pub(crate) fn rule_matches(r: &Rule, a: &Attributes) -> bool {
    if !r.users.is_empty() && !a.user.as_ref().is_some_and(|u| r.users.contains(u)) {
        return false;
    }
    let in_a_group = a.user.is_some() && a.groups.iter().any(|g| r.user_groups.contains(g));
    if !r.user_groups.is_empty() && !in_a_group {
        return false;
    }
    if !r.verbs.is_empty() && !r.verbs.contains(&a.verb) {
        return false;
    }
    if !r.namespaces.is_empty() || !r.resources.is_empty() {
        return resource_matches(r, a);
    }
    if !r.non_resource_urls.is_empty() {
        return !a.resource_request && r.non_resource_urls.iter().any(|s| path_matches(s, &a.path));
    }
    true
}

fn resource_matches(r: &Rule, a: &Attributes) -> bool {
    if !a.resource_request {
        return false;
    }
    if !r.namespaces.is_empty() && !r.namespaces.contains(&a.namespace) {
        return false;
    }
    if r.resources.is_empty() {
        return true;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    for gr in &r.resources {
        if gr.group != a.api_group && gr.group != "*" {
            continue;
        }
        if gr.resources.is_empty() {
            return true;
        }
        if !gr.resource_names.is_empty() && !gr.resource_names.contains(&a.name) {
            continue;
        }
        for res in &gr.resources {
            if *res == combined || res == "*" {
                return true;
            }
            if let Some(sub) = res.strip_prefix("*/")
                && !a.subresource.is_empty()
                && sub == a.subresource
            {
                return true;
            }
            if let Some(base) = res.strip_suffix("/*")
                && base == a.resource
            {
                return true;
            }
        }
    }
    false
}

fn path_matches(spec: &str, path: &str) -> bool {
    spec == "*"
        || spec == path
        || (spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*')))
}

#[cfg(test)]
mod tests;
