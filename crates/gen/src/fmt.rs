//! Byte-level formatting helpers: JSON strings escaped the way Go's `encoding/json` escapes them,
//! `metav1.MicroTime` / `metav1.Time` timestamps, UUIDs and Go duration strings.
//!
//! Everything appends to a `Vec<u8>` so that an event is rendered without intermediate allocations.

use rand::Rng;
use rand::rngs::SmallRng;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Microseconds per second.
pub(crate) const SEC: i64 = 1_000_000;
/// Microseconds per millisecond.
pub(crate) const MS: i64 = 1_000;

/// Appends `s` as a quoted JSON string.
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    push_escaped(buf, s);
    buf.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string.
///
/// Go's encoder (which the apiserver uses) also escapes `<`, `>`, `&`, U+2028 and U+2029, so a
/// request URI like `?a=1&b=2` is written as `?a=1\u0026b=2`. We do the same for byte-identical shapes.
pub(crate) fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let rep: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            b'<' => b"\\u003c",
            b'>' => b"\\u003e",
            b'&' => b"\\u0026",
            0x00..=0x1f => {
                buf.extend_from_slice(&b[last..i]);
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[(c >> 4) as usize]);
                buf.push(HEX[(c & 0xf) as usize]);
                i += 1;
                last = i;
                continue;
            }
            0xE2 if i + 2 < b.len()
                && b[i + 1] == 0x80
                && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) =>
            {
                buf.extend_from_slice(&b[last..i]);
                buf.extend_from_slice(if b[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                last = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&b[last..i]);
        buf.extend_from_slice(rep);
        i += 1;
        last = i;
    }
    buf.extend_from_slice(&b[last..]);
}

/// Returns `s` as a quoted, escaped JSON string (for strings rendered once and reused).
pub(crate) fn json_str(s: &str) -> String {
    let mut buf = Vec::with_capacity(s.len() + 2);
    push_json_str(&mut buf, s);
    // Escaping only ever inserts ASCII, so the result is valid UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

/// Appends the decimal form of `v`.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `v` zero-padded to at least `width` digits.
fn push_padded(buf: &mut Vec<u8>, v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(tmp.len() - width.min(tmp.len()));
    buf.extend_from_slice(&tmp[start..]);
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn push_date_time(buf: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        buf.push(b'-');
    }
    push_padded(buf, y.unsigned_abs(), 4);
    buf.push(b'-');
    push_padded(buf, u64::from(m), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(d), 2);
    buf.push(b'T');
    push_padded(buf, sod / 3600, 2);
    buf.push(b':');
    push_padded(buf, sod / 60 % 60, 2);
    buf.push(b':');
    push_padded(buf, sod % 60, 2);
}

/// Appends a `metav1.MicroTime`: `2006-01-02T15:04:05.000000Z` (always six fractional digits).
pub(crate) fn push_micro_time(buf: &mut Vec<u8>, micros: i64) {
    push_date_time(buf, micros.div_euclid(SEC));
    buf.push(b'.');
    push_padded(buf, micros.rem_euclid(SEC) as u64, 6);
    buf.push(b'Z');
}

/// Appends a `metav1.Time` (whole seconds): `2006-01-02T15:04:05Z`.
pub(crate) fn push_time(buf: &mut Vec<u8>, micros: i64) {
    push_date_time(buf, micros.div_euclid(SEC));
    buf.push(b'Z');
}

/// `metav1.Time` as a String, for bodies assembled with `format!`.
pub(crate) fn time_str(micros: i64) -> String {
    let mut buf = Vec::with_capacity(20);
    push_time(&mut buf, micros);
    String::from_utf8(buf).unwrap_or_default()
}

/// `metav1.MicroTime` as a String, for bodies assembled with `format!`.
pub(crate) fn micro_time_str(micros: i64) -> String {
    let mut buf = Vec::with_capacity(27);
    push_micro_time(&mut buf, micros);
    String::from_utf8(buf).unwrap_or_default()
}

/// A random (version 4, RFC 4122 variant) UUID drawn from the seeded generator.
pub(crate) fn uuid_v4(rng: &mut SmallRng) -> u128 {
    with_v4_bits(rng.random::<u128>())
}

fn with_v4_bits(r: u128) -> u128 {
    (r & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
}

/// SplitMix64 step: a cheap, well-mixed hash used to derive stable values from a key.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A UUID that is a pure function of `(key, n)`: used for identifiers that must be stable without
/// being stored (object UIDs, rotating token ids).
pub(crate) fn hashed_uuid(key: u64, n: u64) -> u128 {
    let a = mix64(key ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
    let b = mix64(a ^ 0x5851_F42D_4C95_7F2D);
    with_v4_bits((u128::from(a) << 64) | u128::from(b))
}

/// Appends `u` in the canonical 8-4-4-4-12 lowercase hex form.
pub(crate) fn push_uuid(buf: &mut Vec<u8>, u: u128) {
    let mut out = [0u8; 36];
    let mut j = 0;
    for i in 0..32 {
        if i == 8 || i == 12 || i == 16 || i == 20 {
            out[j] = b'-';
            j += 1;
        }
        let nib = (u >> (124 - 4 * i)) & 0xF;
        out[j] = HEX[nib as usize];
        j += 1;
    }
    buf.extend_from_slice(&out);
}

/// A UUID as a String, for bodies and pre-rendered identities.
pub(crate) fn uuid_str(u: u128) -> String {
    let mut buf = Vec::with_capacity(36);
    push_uuid(&mut buf, u);
    String::from_utf8(buf).unwrap_or_default()
}

/// `n` lowercase hex digits drawn from `rng` (certificate fingerprints, container ids).
pub(crate) fn random_hex(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| HEX[rng.random_range(0..16)] as char)
        .collect()
}

/// The alphabet Kubernetes uses for generated name suffixes (`rand.String`, no vowels or look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A generated-name suffix such as the `x7k2p` in `payments-api-6d8f7c9b4-x7k2p`.
pub(crate) fn name_suffix(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

/// Appends a Go `time.Duration.String()` rendering of `micros` (`1.503241s`, `512.3ms`, `7m49s`).
pub(crate) fn push_go_duration(buf: &mut Vec<u8>, micros: i64) {
    let us = micros.max(0) as u64;
    if us == 0 {
        buf.extend_from_slice(b"0s");
    } else if us < 1_000 {
        push_u64(buf, us);
        buf.extend_from_slice("µs".as_bytes());
    } else if us < 1_000_000 {
        push_u64(buf, us / 1_000);
        push_fraction(buf, us % 1_000, 3);
        buf.extend_from_slice(b"ms");
    } else {
        let secs = us / 1_000_000;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            push_u64(buf, h);
            buf.push(b'h');
        }
        if h > 0 || m > 0 {
            push_u64(buf, m);
            buf.push(b'm');
        }
        push_u64(buf, s);
        push_fraction(buf, us % 1_000_000, 6);
        buf.push(b's');
    }
}

/// Go duration string as a String.
pub(crate) fn go_duration(micros: i64) -> String {
    let mut buf = Vec::with_capacity(16);
    push_go_duration(&mut buf, micros);
    String::from_utf8(buf).unwrap_or_default()
}

/// Appends `.ddd` with trailing zeros trimmed (nothing when `frac` is zero).
fn push_fraction(buf: &mut Vec<u8>, frac: u64, digits: usize) {
    if frac == 0 {
        return;
    }
    let mut tmp = Vec::with_capacity(digits);
    push_padded(&mut tmp, frac, digits);
    while tmp.last() == Some(&b'0') {
        tmp.pop();
    }
    buf.push(b'.');
    buf.extend_from_slice(&tmp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).expect("utf8")
    }

    #[test]
    fn micro_time_matches_go_layout() {
        // 2025-04-01T13:33:59.447869Z
        let t = 1_743_514_439 * SEC + 447_869;
        assert_eq!(s(|b| push_micro_time(b, t)), "2025-04-01T13:33:59.447869Z");
        assert_eq!(s(|b| push_time(b, t)), "2025-04-01T13:33:59Z");
        assert_eq!(s(|b| push_micro_time(b, 0)), "1970-01-01T00:00:00.000000Z");
        // Leap day.
        assert_eq!(
            s(|b| push_micro_time(b, 951_782_400 * SEC + 5)),
            "2000-02-29T00:00:00.000005Z"
        );
    }

    #[test]
    fn escaping_follows_go() {
        assert_eq!(
            s(|b| push_json_str(b, "a\"b\\c&d<e>\n\u{1}\u{2028}é")),
            r#""a\"b\\c\u0026d\u003ce\u003e\n\u0001\u2028é""#
        );
    }

    #[test]
    fn durations_follow_go() {
        assert_eq!(go_duration(1_503_241), "1.503241s");
        assert_eq!(go_duration(512_300), "512.3ms");
        assert_eq!(go_duration(469 * SEC), "7m49s");
        assert_eq!(go_duration(300 * SEC), "5m0s");
        assert_eq!(go_duration(3), "3µs");
        assert_eq!(go_duration(3_723 * SEC), "1h2m3s");
    }

    #[test]
    fn uuids_are_v4() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..100 {
            let u = uuid_str(uuid_v4(&mut rng));
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        }
    }
}
