//! Time bounds given on the command line.

use anyhow::{Result, bail};
use auditlake_model::time::{Micros, days_from_civil, parse_rfc3339};

/// Parses an `--as-of`: a table version (digits) or a time as [`parse_time`] reads it.
pub fn parse_as_of(s: &str) -> Result<auditlake_store::AsOf> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: u64 = s
            .parse()
            .map_err(|_| anyhow::anyhow!("version {s} is too large"))?;
        return Ok(auditlake_store::AsOf::Version(v));
    }
    Ok(auditlake_store::AsOf::Time(parse_time(s)?))
}

/// Parses `2026-03-19T10:30:00Z` (any RFC 3339), `2026-03-19T10:30` (UTC), `2026-03-19` (midnight UTC), or
/// `now`.
pub fn parse_time(s: &str) -> Result<Micros> {
    if s == "now" {
        return Ok(chrono::Utc::now().timestamp_micros());
    }
    if let Some(v) = parse_rfc3339(s) {
        return Ok(v);
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        return Ok(dt.and_utc().timestamp_micros());
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(dt.and_utc().timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        use chrono::Datelike;
        let days = days_from_civil(
            i64::from(d.year()),
            i64::from(d.month()),
            i64::from(d.day()),
        );
        return Ok(days * 86_400_000_000);
    }
    bail!(
        "cannot read {s:?} as a time: use RFC 3339 (2026-03-19T10:30:00Z), a date (2026-03-19) or now"
    )
}

/// Optional `--from`/`--to` bounds as `[from, to)`, open ends as the extremes.
pub fn parse_bounds(from: Option<&str>, to: Option<&str>) -> Result<(Micros, Micros)> {
    let from = from.map(parse_time).transpose()?.unwrap_or(Micros::MIN);
    let to = to.map(parse_time).transpose()?.unwrap_or(Micros::MAX);
    Ok((from, to))
}
