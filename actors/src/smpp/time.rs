//! Calendar arithmetic without a date crate: RFC 3339 for the HTTP API and
//! SMPP's absolute time format (SMPP 3.4 §7.1.1) for `validity_period`.
//! Always UTC.

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01. Hinnant's
/// `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn civil(unix_ms: i64) -> Civil {
    let secs = unix_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        millis: unix_ms.rem_euclid(1000),
    }
}

/// Now, in unix milliseconds.
pub fn unix_ms() -> i64 {
    system_ms(std::time::SystemTime::now())
}

/// A wall-clock time in unix milliseconds (0 before the epoch).
pub fn system_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-11-22T07:00:17.006Z`
pub fn rfc3339(unix_ms: i64) -> String {
    let c = civil(unix_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into unix ms.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)? as u32, num(8, 2)? as u32);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &text[start..i.min(start + 3)];
        millis = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// SMPP absolute time, UTC: `YYMMDDhhmmsstnnp` with tenths, quarter-hour
/// offset `00` and `+`, e.g. `261122070017000+`.
pub fn smpp_absolute(unix_ms: i64) -> String {
    let c = civil(unix_ms);
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}{}00+",
        c.year.rem_euclid(100),
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.millis / 100
    )
}

/// Reads an SMPP time (SMPP 3.4 §7.1.1) as unix ms: absolute
/// `YYMMDDhhmmsstnnp` (`p` `+` or `-`: local time `nn` quarter hours ahead
/// of or behind UTC; years 2000–2099), or relative `YYMMDDhhmmss000R`,
/// added to `now_ms` (a year taken as 365 days, a month as 30). `None`
/// for anything else, an empty string included.
pub fn parse_smpp_time(text: &str, now_ms: i64) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || !b[..15].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |at: usize| i64::from(b[at] - b'0') * 10 + i64::from(b[at + 1] - b'0');
    let (yy, mo, dd, hh, mi, ss) = (num(0), num(2), num(4), num(6), num(8), num(10));
    if b[15] == b'R' {
        let days = yy * 365 + mo * 30 + dd;
        return Some(now_ms + ((days * 24 + hh) * 60 + mi) * 60_000 + ss * 1000);
    }
    let (month, day) = (u32::try_from(mo).ok()?, u32::try_from(dd).ok()?);
    let year = 2000 + yy;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hh > 23
        || mi > 59
        || ss > 59
    {
        return None;
    }
    let tenths = i64::from(b[12] - b'0');
    let offset_minutes = num(13) * 15;
    let offset_minutes = match b[15] {
        b'+' => offset_minutes,
        b'-' => -offset_minutes,
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hh * 3600 + mi * 60 + ss - offset_minutes * 60;
    Some(secs * 1000 + tenths * 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smpp_times_are_read_back_absolute_with_offsets_or_relative() {
        for ms in [951_782_400_000, 1_795_305_600_100, 4_102_444_799_900] {
            assert_eq!(parse_smpp_time(&smpp_absolute(ms), 0), Some(ms));
        }
        // 08:00 local, one hour (4 quarters) ahead of UTC, is 07:00 UTC.
        assert_eq!(
            parse_smpp_time("261122080000004+", 0),
            parse_smpp_time("261122070000000+", 0)
        );
        assert_eq!(
            parse_smpp_time("261122060000004-", 0),
            parse_smpp_time("261122070000000+", 0)
        );
        assert_eq!(
            parse_smpp_time("000001020304000R", 1_000),
            Some(1_000 + ((24 + 2) * 3600 + 3 * 60 + 4) * 1000)
        );
        for bad in [
            "",
            "261122",
            "261322070000000+",
            "261131070000000+",
            "2611220700000000",
            "26112207000000x+",
        ] {
            assert_eq!(parse_smpp_time(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn known_instants_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_305_600_123), "2026-11-22T00:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        for ms in [0, 951_782_400_000, 1_795_305_600_123, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-22T02:00:00+02:00"),
            parse_rfc3339("2026-11-22T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T00:00:00.5Z"),
            Some(1_795_305_600_500)
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T00:00:00",
            "2026-11-22T00:00:00.Z",
            "2026-11-22T00:00:00+0200",
            "２026-11-22T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn smpp_absolute_time_has_sixteen_characters() {
        let t = smpp_absolute(1_795_305_600_123);
        assert_eq!(t, "261122000000100+");
        assert_eq!(t.len(), 16);
    }
}
