//! RFC 3339 timestamps from the build epoch, without a date library.

use crate::oci::error::OciError;

/// The last second RFC 3339's four-digit year can express: `9999-12-31T23:59:59Z`.
const MAX_SECONDS: u64 = 253_402_300_799;

/// Formats seconds since the Unix epoch as RFC 3339 UTC with second precision,
/// `1970-01-01T00:00:00Z`: the form apko and the image-spec examples use.
pub fn rfc3339_utc(seconds: u64) -> Result<String, OciError> {
    if seconds > MAX_SECONDS {
        return Err(OciError::EpochOutOfRange { seconds });
    }
    let days = seconds / 86_400;
    let rem = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    Ok(format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60))
}

/// Unix seconds of an RFC 3339 time (`2024-01-02T03:04:05Z`, fractions and offsets allowed):
/// the inverse of [`rfc3339_utc`], for the `created` of configs read from registries. `None`
/// for anything else, or a time before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let (h, m) = (rest[1..3].parse::<i64>().ok()?, rest[4..6].parse::<i64>().ok()?);
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second - offset).ok()
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`, restricted to non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epochs() {
        let table = [
            (0, "1970-01-01T00:00:00Z"),
            (59, "1970-01-01T00:00:59Z"),
            (86_399, "1970-01-01T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (MAX_SECONDS, "9999-12-31T23:59:59Z"),
        ];
        for (seconds, text) in table {
            assert_eq!(rfc3339_utc(seconds).expect("in range"), text, "{seconds}");
        }
        assert_eq!(
            rfc3339_utc(MAX_SECONDS + 1).expect_err("out of range").to_string(),
            "build epoch 253402300800 is after 9999-12-31T23:59:59Z, which RFC 3339 cannot express"
        );
    }

    #[test]
    fn parses_rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56.123456789Z"), Some(1_709_210_096));
        assert_eq!(parse_rfc3339("2024-02-29T14:34:56+02:00"), Some(1_709_210_096));
        assert_eq!(parse_rfc3339("2024-02-29 12:34:56"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        for seconds in [0, 951_782_400, 1_700_000_000, MAX_SECONDS] {
            assert_eq!(parse_rfc3339(&rfc3339_utc(seconds).expect("in range")), Some(seconds));
        }
    }
}
