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
}
