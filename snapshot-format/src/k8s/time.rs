//! Go's text forms of times and durations, as Kubernetes' JSON uses them: RFC 3339 in UTC
//! (`2006-01-02T15:04:05Z`, or with `.000000` microseconds for `MicroTime`) and
//! `time.Duration.String()` (`1h2m3s`, `500ms`).

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch: Go's zero `time.Time`.
pub(crate) const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Formats a Unix time in UTC as RFC 3339; with `micros`, adds six fractional digits.
pub(crate) fn format_rfc3339(seconds: i64, micros: Option<u32>) -> String {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(27);
    if year < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:04}", year.unsigned_abs()));
    out.push_str(&format!(
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    ));
    if let Some(us) = micros {
        out.push_str(&format!(".{us:06}"));
    }
    out.push('Z');
    out
}

/// Parses RFC 3339 (`2006-01-02T15:04:05[.frac](Z|±07:00)`) to Unix seconds and
/// nanoseconds. Accepts years of more than four digits and a leading `-`, so everything
/// [`format_rfc3339`] writes parses back.
pub(crate) fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let year_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(4..=12).contains(&year_len) {
        return None;
    }
    let mut year = digits(&rest[..year_len])?;
    if neg {
        year = -year;
    }
    let r = &rest[year_len..];
    // -MM-DDTHH:MM:SS
    if r.len() < 15
        || r[0] != b'-'
        || r[3] != b'-'
        || !matches!(r[6], b'T' | b't')
        || r[9] != b':'
        || r[12] != b':'
    {
        return None;
    }
    let month = digits(&r[1..3])?;
    let day = digits(&r[4..6])?;
    let hour = digits(&r[7..9])?;
    let minute = digits(&r[10..12])?;
    let second = digits(&r[13..15])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut r = &r[15..];
    let mut nanos: u32 = 0;
    if let Some(frac) = r.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, c) in frac[..n].iter().enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
        }
        for _ in n..9 {
            nanos *= 10;
        }
        r = &frac[n..];
    }
    let offset = match r {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days
        .checked_mul(86_400)?
        .checked_add(hour * 3600 + minute * 60 + second)?
        .checked_sub(offset)?;
    Some((seconds, nanos))
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(v)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.Duration.String()`.
pub(crate) fn format_duration(nanos: i64) -> String {
    // Built backwards, like Go does, then reversed.
    let mut rev: Vec<u8> = Vec::with_capacity(32);
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let prec;
        rev.push(b's');
        if u == 0 {
            return "0s".to_string();
        } else if u < 1_000 {
            prec = 0;
            rev.push(b'n');
        } else if u < 1_000_000 {
            prec = 3;
            rev.extend_from_slice(&[0xb5, 0xc2]); // "µ" (U+00B5), reversed
        } else {
            prec = 6;
            rev.push(b'm');
        }
        u = push_fraction(&mut rev, u, prec);
        push_int(&mut rev, u);
    } else {
        rev.push(b's');
        u = push_fraction(&mut rev, u, 9);
        push_int(&mut rev, u % 60);
        u /= 60;
        if u > 0 {
            rev.push(b'm');
            push_int(&mut rev, u % 60);
            u /= 60;
            if u > 0 {
                rev.push(b'h');
                push_int(&mut rev, u);
            }
        }
    }
    if neg {
        rev.push(b'-');
    }
    rev.reverse();
    String::from_utf8(rev).unwrap_or_default()
}

/// Go's `fmtFrac`: the fraction of `v / 10^prec` without trailing zeros; returns the rest.
fn push_fraction(rev: &mut Vec<u8>, mut v: u64, prec: u32) -> u64 {
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            rev.push(b'0' + digit);
        }
        v /= 10;
    }
    if print {
        rev.push(b'.');
    }
    v
}

fn push_int(rev: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        rev.push(b'0');
    }
    while v > 0 {
        rev.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
}

/// Go's `time.ParseDuration`.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let bad = || format!("invalid Go duration {orig:?}");
    let mut s = s.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    const OVERFLOW: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(bad());
        }
        // integer part
        let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &s[..n] {
            if v > (OVERFLOW - 1) / 10 {
                return Err(bad());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > OVERFLOW {
                return Err(bad());
            }
        }
        let pre = n > 0;
        s = &s[n..];
        // fraction
        let mut f: u64 = 0;
        let mut scale = 1.0f64;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..n] {
                if overflow {
                    continue;
                }
                if f > (OVERFLOW - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > OVERFLOW {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = n > 0;
            s = &s[n..];
        }
        if !pre && !post {
            return Err(bad());
        }
        // unit
        let n = s
            .iter()
            .take_while(|&&c| !(c == b'.' || c.is_ascii_digit()))
            .count();
        if n == 0 {
            return Err(format!("missing unit in Go duration {orig:?}"));
        }
        let unit: u64 = match &s[..n] {
            b"ns" => 1,
            b"us" | [0xc2, 0xb5, b's'] | [0xce, 0xbc, b's'] => 1_000, // us, µs, μs
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return Err(format!("unknown unit in Go duration {orig:?}")),
        };
        s = &s[n..];
        if v > OVERFLOW / unit {
            return Err(bad());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > OVERFLOW {
                return Err(bad());
            }
        }
        total += v;
        if total > OVERFLOW {
            return Err(bad());
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(format_rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_199_149_261, None), "2008-01-01T01:01:01Z");
        assert_eq!(
            format_rfc3339(1_199_149_261, Some(42)),
            "2008-01-01T01:01:01.000042Z"
        );
        assert_eq!(
            format_rfc3339(GO_ZERO_TIME_UNIX, None),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            parse_rfc3339("2008-01-01T01:01:01Z"),
            Some((1_199_149_261, 0))
        );
        assert_eq!(
            parse_rfc3339("2008-01-01T02:01:01.5+01:00"),
            Some((1_199_149_261, 500_000_000))
        );
        assert_eq!(parse_rfc3339("2008-02-30T01:01:01Z"), None);
        assert_eq!(parse_rfc3339("2008-01-01 01:01:01Z"), None);
        for s in [
            i64::MIN / 2,
            -1,
            0,
            951_782_400,
            4_102_444_800,
            i64::MAX / 2,
        ] {
            let text = format_rfc3339(s, None);
            assert_eq!(parse_rfc3339(&text), Some((s, 0)), "{text}");
        }
        // Extreme values must not panic.
        format_rfc3339(i64::MIN, None);
        format_rfc3339(i64::MAX, Some(999_999));
    }

    #[test]
    fn durations_match_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (500_000_000, "500ms"),
            (1_000_000_000, "1s"),
            (3_723_000_000_000, "1h2m3s"),
            (3_600_000_000_000, "1h0m0s"),
            (-90_000_000_000, "-1m30s"),
            (1_500_000_000, "1.5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (i64::MAX, "2562047h47m16.854775807s"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_duration(ns), text);
            assert_eq!(parse_duration(text), Ok(ns), "{text}");
        }
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("10us"), Ok(10_000));
        assert!(parse_duration("1").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("9999999999999999999h").is_err());
    }
}
