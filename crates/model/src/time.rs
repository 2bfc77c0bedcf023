//! Timestamps as the apiserver writes them: RFC 3339, UTC, 6 fractional digits (`MicroTime`).

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Parses the canonical `MicroTime` form `2006-01-02T15:04:05.000000Z` without allocation.
/// Returns `None` for anything else (the caller falls back to [`parse_rfc3339`]).
pub fn parse_canonical(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, frac) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + frac)
}

/// Parses any RFC 3339 timestamp (offsets, any number of fractional digits), truncated to
/// microseconds.
pub fn parse_rfc3339(s: &str) -> Option<Micros> {
    let dt = DateTime::parse_from_rfc3339(s).ok()?;
    Some(dt.with_timezone(&Utc).timestamp_micros()).filter(|v| in_range(*v))
}

/// Whether a time is in years 0001 to 9999 UTC: the days a partition folder can name
/// (`date=YYYY-MM-DD`). `0000-01-01T00:00:00+01:00` is year -1 in UTC, and a partition of it
/// could not be read back.
pub fn in_range(v: Micros) -> bool {
    const DAY: i64 = 86_400_000_000;
    (days_from_civil(1, 1, 1) * DAY..days_from_civil(10_000, 1, 1) * DAY).contains(&v)
}

/// Parses a timestamp and says whether [`format_canonical`] gives back the same text.
pub fn parse(s: &str) -> Option<(Micros, bool)> {
    if let Some(v) = parse_canonical(s).filter(|v| in_range(*v)) {
        return Some((v, true));
    }
    parse_rfc3339(s).map(|v| (v, false))
}

/// Formats as the apiserver does: `2006-01-02T15:04:05.000000Z`.
pub fn format_canonical(micros: Micros) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => micros.to_string(),
    }
}

/// The UTC date (`YYYY-MM-DD`) and hour of a timestamp: its partition.
pub fn date_hour(micros: Micros) -> (i32, u32, u32, u32) {
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let hour = (secs.rem_euclid(86_400) / 3600) as u32;
    let (y, m, d) = civil_from_days(days);
    (y as i32, m as u32, d as u32, hour)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a number of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        for s in [
            "2026-03-19T10:30:00.050000Z",
            "1970-01-01T00:00:00.000000Z",
            "2024-02-29T23:59:59.999999Z",
            "1969-12-31T23:59:59.999999Z",
        ] {
            let v = parse_canonical(s).unwrap();
            assert_eq!(Some(v), parse_rfc3339(s), "{s}");
            assert_eq!(format_canonical(v), s);
        }
    }

    /// Times a partition folder cannot name are not timestamps of the store: one event of year
    /// -1 (as UTC reads `0000-01-01T00:00:00+01:00`) would make the table unreadable.
    #[test]
    fn times_outside_years_1_to_9999_are_refused() {
        assert_eq!(parse("0000-01-01T00:00:00+01:00"), None);
        assert_eq!(parse("0000-06-01T00:00:00.000000Z"), None);
        assert_eq!(parse_rfc3339("9999-12-31T23:00:00-02:00"), None);
        assert!(parse("0001-01-01T00:00:00.000000Z").is_some());
        assert!(parse("9999-12-31T23:59:59.999999Z").is_some());
    }

    #[test]
    fn non_canonical_forms() {
        assert_eq!(parse_canonical("2017-09-11T19:55:05Z"), None);
        let (v, canonical) = parse("2017-09-11T19:55:05Z").unwrap();
        assert!(!canonical);
        assert_eq!(format_canonical(v), "2017-09-11T19:55:05.000000Z");
        let (v2, _) = parse("2017-09-11T21:55:05+02:00").unwrap();
        assert_eq!(v, v2);
        assert_eq!(parse("2023-02-30T00:00:00.000000Z").map(|p| p.1), None);
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn partitions() {
        let v = parse_canonical("2026-03-19T10:30:00.000000Z").unwrap();
        assert_eq!(date_hour(v), (2026, 3, 19, 10));
        let v = parse_canonical("1969-12-31T23:00:00.000000Z").unwrap();
        assert_eq!(date_hour(v), (1969, 12, 31, 23));
    }
}
