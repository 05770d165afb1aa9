//! The build time of a Debian source package: the date of its newest `debian/changelog`
//! entry, as Debian's own reproducible builds take it (`SOURCE_DATE_EPOCH`). It belongs
//! to the source, so the same version builds the same bytes on any day.

use anyhow::{Result, anyhow};

/// Seconds since 1970 of the first trailer line (` -- Name <mail>  Wed, 24 Jun 2026
/// 11:07:15 +0200`) of a changelog.
pub fn epoch(changelog: &str) -> Result<i64> {
    let line = changelog
        .lines()
        .find(|l| l.starts_with(" -- "))
        .ok_or_else(|| anyhow!("debian/changelog has no ` -- ` trailer line"))?;
    let date = line
        .split_once(">  ")
        .map(|(_, d)| d.trim())
        .ok_or_else(|| anyhow!("debian/changelog: `{line}` has no date after the address"))?;
    rfc2822(date).ok_or_else(|| anyhow!("debian/changelog: `{date}` is not an RFC 2822 date"))
}

/// `Wed, 24 Jun 2026 11:07:15 +0200` → seconds since 1970 (UTC).
fn rfc2822(date: &str) -> Option<i64> {
    let rest = date.split_once(", ").map_or(date, |(_, r)| r);
    let [day, month, year, time, zone] = rest.split_whitespace().collect::<Vec<_>>()[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let z: i64 = zone.get(1..)?.parse().ok()?;
    let offset = sign * ((z / 100) * 3600 + (z % 100) * 60);
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_entry_dates_the_source() {
        let c = "u-boot (2025.01-3+deb13u1) trixie; urgency=medium\n\n  * Fix.\n\n -- Andreas Henriksson <andreas@fatal.se>  Wed, 24 Jun 2026 11:07:15 +0200\n\nu-boot (2025.01-3) unstable\n\n -- X <x@y>  Mon, 01 Jan 2024 00:00:00 +0000\n";
        // `date -u -d '2026-06-24 09:07:15' +%s`
        assert_eq!(epoch(c).unwrap(), 1_782_292_035);
        assert_eq!(rfc2822("Thu, 01 Jan 1970 00:00:00 +0000"), Some(0));
        assert_eq!(rfc2822("Sat, 29 Feb 2020 23:59:59 -0130"), Some(1_583_026_199));
        assert!(epoch("no trailer\n").is_err());
        assert!(rfc2822("Wed, 24 Juni 2026 11:07:15 +0200").is_none());
    }
}
