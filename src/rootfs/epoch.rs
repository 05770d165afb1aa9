//! The build's time (SOURCE_DATE_EPOCH) when none is pinned: one the inputs determine, so
//! two builds of the same inputs at different times give the same image. For a Debian
//! bootstrap it is the `Date:` of the suite's signed Release file when it was
//! bootstrapped (kept with the cached bootstrap); for an archive or a directory, its
//! newest file. Every timestamp in the root file system is clamped to it, whatever
//! mmdebstrap, a step or a maintainer script wrote.

use super::RootTree;
use anyhow::{Context, Result, anyhow};

/// The `Date:` of `{mirror}/dists/{suite}/InRelease` (a local mirror's Release or
/// InRelease file), as seconds since 1970.
pub fn release_date(mirror: &str, suite: &str) -> Result<i64> {
    let text = match mirror
        .strip_prefix("file://")
        .or_else(|| mirror.starts_with('/').then_some(mirror))
    {
        Some(dir) => {
            let d = std::path::Path::new(dir).join("dists").join(suite);
            fs_err::read(d.join("InRelease")).or_else(|_| fs_err::read(d.join("Release")))?
        }
        None => crate::net::get_bytes(&format!("{}/dists/{suite}/InRelease", mirror.trim_end_matches('/')))?,
    };
    parse_release_date(&String::from_utf8_lossy(&text))
        .ok_or_else(|| anyhow!("{mirror} dists/{suite}/InRelease has no `Date:` line that parses"))
        .context("the build's default time comes from the suite's Release date; pin `source_date_epoch:` instead")
}

/// `Date: Sat, 15 Nov 2025 08:21:12 UTC` → seconds since 1970 (UTC or +0000 only, as
/// the Debian archive writes it).
pub fn parse_release_date(release: &str) -> Option<i64> {
    let line = release.lines().find_map(|l| l.strip_prefix("Date:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let [_, day, month, year, time, zone] = words.as_slice() else {
        return None;
    };
    if !matches!(*zone, "UTC" | "GMT" | "+0000") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else { return None };
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Every entry no newer than `epoch`; a changed tree is no longer the archive as it is.
pub fn clamp(tree: &mut RootTree, epoch: i64) {
    for e in &mut tree.entries {
        if e.mtime > epoch {
            e.mtime = epoch;
            tree.pristine = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_dates_parse_and_round_trip() {
        let release = "Origin: Debian\nSuite: stable\nDate: Sat, 15 Nov 2025 08:21:12 UTC\nValid-Until: x\n";
        let t = parse_release_date(release).unwrap();
        assert_eq!(crate::build_info::civil_date(t), "2025-11-15");
        assert_eq!(t % 86400, 8 * 3600 + 21 * 60 + 12);
        assert_eq!(parse_release_date("Date: Thu, 01 Jan 1970 00:00:00 UTC\n"), Some(0));
        assert_eq!(
            parse_release_date("Date: Tue, 29 Feb 2028 23:59:59 +0000\n")
                .map(crate::build_info::civil_date)
                .as_deref(),
            Some("2028-02-29")
        );
        assert_eq!(parse_release_date("Date: Sat, 15 Nov 2025 08:21:12 CET\n"), None);
        assert_eq!(parse_release_date("Suite: stable\n"), None);
        assert_eq!(crate::build_info::civil_date(1_700_000_000), "2023-11-14");
    }
}
