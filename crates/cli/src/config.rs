//! The config file (`auditlake.toml`): retention, the compliance scope, report schedules.
//!
//! Found at `--config PATH`, else `$AUDITLAKE_CONFIG`, else `./auditlake.toml` when it exists;
//! without one every setting has its default and retention refuses to delete anything.
//!
//! ```toml
//! [retention]
//! max_age = "400d"     # delete days entirely older than this (d, w, h, or y = 365 days)
//! slim_after = "90d"   # drop request/response bodies of days older than this
//!
//! [[redact.rules]]     # credentials in a cluster's own resources, beside the built-in rules
//! resource = "databases"
//! group = "db.example.com"
//! paths = ["/spec/password", "/**/credentials/*"]
//!
//! [scope]              # who and what the compliance controls look at (sql/compliance/README.md)
//! cde_namespaces = ["payments", "card-*"]
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub retention: Retention,
    /// The compliance scope: see `sql/compliance/README.md`.
    pub scope: auditlake_query::Scope,
    /// Scheduled reports, run by `auditlake schedule`.
    pub schedule: Vec<crate::schedule::Schedule>,
    /// Redaction rules added to the built-in ones (Secrets, TokenReviews, TokenRequests).
    pub redact: Redact,
    /// `auditlake serve` and `follow`: see crates/cli/src/collect.rs.
    pub serve: crate::collect::ServeConfig,
    /// Signing and verification keys: see `auditlake keygen`, `auditlake verify`.
    pub integrity: crate::integrity::IntegrityConfig,
}

/// `[[redact.rules]]`: `resource` (plural, optionally `resource/subresource`), `group`, `kind`,
/// and `paths`, JSON pointers with `*` and `**` segments.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Redact {
    pub rules: Vec<auditlake_model::redact::RedactRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub max_age: Option<String>,
    pub slim_after: Option<String>,
    /// How long files that a rewrite or retention removed stay on disk (for readers of older
    /// snapshots) before they are deleted; 1h by default.
    pub vacuum_grace: Option<String>,
}

impl Config {
    /// The config file named by `explicit`, or `./auditlake.toml` if present, or the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("auditlake.toml");
                if !p.exists() {
                    return Ok((Self::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let config: Self = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        config
            .scope
            .validate()
            .with_context(|| format!("invalid [scope] in the config file {}", path.display()))?;
        Ok((config, Some(path)))
    }
}

/// Parses an age: `400d`, `52w`, `36h`, `1y` (365 days).
pub fn parse_age(s: &str) -> Result<chrono::TimeDelta> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("cannot read {s:?} as an age: use e.g. 400d, 52w, 36h or 1y"))?;
    Ok(match unit {
        "s" => chrono::TimeDelta::seconds(n),
        "min" => chrono::TimeDelta::minutes(n),
        "h" => chrono::TimeDelta::hours(n),
        "d" | "" => chrono::TimeDelta::days(n),
        "w" => chrono::TimeDelta::weeks(n),
        "y" => chrono::TimeDelta::days(n * 365),
        other => bail!("unknown unit {other:?} in age {s:?}: use s, min, h, d, w or y"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_config() {
        assert_eq!(parse_age("400d").unwrap(), chrono::TimeDelta::days(400));
        assert_eq!(parse_age("1y").unwrap(), chrono::TimeDelta::days(365));
        assert_eq!(parse_age("36h").unwrap(), chrono::TimeDelta::hours(36));
        assert_eq!(parse_age("90min").unwrap(), chrono::TimeDelta::minutes(90));
        assert_eq!(parse_age("0s").unwrap(), chrono::TimeDelta::zero());
        assert!(parse_age("3 months").is_err());
        let c: Config = toml::from_str("[retention]\nmax_age = \"400d\"\n").unwrap();
        assert_eq!(c.retention.max_age.as_deref(), Some("400d"));
        let err = toml::from_str::<Config>("[retention]\nmax_days = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_days"), "{err}");
    }
}
