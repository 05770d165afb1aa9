//! The facts of one build that every stage must agree on, decided once by the pipeline
//! and passed down as plain data: its time (SOURCE_DATE_EPOCH, and the date templates
//! show), imgbuild's version, and the host facts stages size their work by. No stage reads
//! the clock or the environment for these itself, so the file systems' timestamps, the
//! landing page's `build.date`, the manifest and the container's `created` never disagree,
//! and two builds of the same inputs on different days give the same bytes.

use std::fmt;

/// The build's facts once its time is known (after the root file system is prepared:
/// an unpinned time comes from the inputs, see `rootfs::epoch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Seconds since 1970: no file in any output is newer.
    pub epoch: i64,
    /// `YYYY-MM-DD` (UTC) of `epoch`: what `build.date` shows.
    pub date: String,
    /// imgbuild's version, as templates and manifests show it.
    pub version: &'static str,
    pub host: Host,
}

/// What stages need to know of the machine they run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Threads a compressor may use.
    pub threads: u32,
}

impl Host {
    pub fn detect() -> Host {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        Host { threads }
    }
}

impl BuildInfo {
    pub fn at(epoch: i64, host: Host) -> BuildInfo {
        BuildInfo {
            epoch,
            date: civil_date(epoch),
            version: env!("CARGO_PKG_VERSION"),
            host,
        }
    }

    /// The `build` object templates see: `{version, epoch, date}`.
    pub fn template_value(&self) -> serde_json::Value {
        serde_json::json!({"version": self.version, "epoch": self.epoch, "date": self.date})
    }
}

/// SOURCE_DATE_EPOCH that does not parse: the user's to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEpoch(pub String);

impl fmt::Display for BadEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SOURCE_DATE_EPOCH=`{}` is not a whole number of seconds", self.0)
    }
}

impl std::error::Error for BadEpoch {}

impl crate::fault::Fault for BadEpoch {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::User
    }
    fn hints(&self) -> Vec<String> {
        vec!["set it to seconds since 1970 (e.g. `date +%s`), or unset it to take the time from the inputs".into()]
    }
}

/// The pinned time: `env` (the SOURCE_DATE_EPOCH variable) wins over the recipe's
/// `source_date_epoch:`; None when neither pins it.
pub fn pinned_epoch(env: Option<&str>, recipe: Option<i64>) -> Result<Option<i64>, BadEpoch> {
    match env {
        Some(v) => v.trim().parse().map(Some).map_err(|_| BadEpoch(v.to_string())),
        None => Ok(recipe),
    }
}

/// [`pinned_epoch`] with this process's SOURCE_DATE_EPOCH.
pub fn pinned_epoch_from_env(recipe: Option<i64>) -> Result<Option<i64>, BadEpoch> {
    let env = std::env::var_os("SOURCE_DATE_EPOCH").map(|v| v.to_string_lossy().into_owned());
    pinned_epoch(env.as_deref(), recipe)
}

/// `YYYY-MM-DD` of a time (UTC).
pub fn civil_date(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time.
pub fn rfc3339(secs: i64) -> String {
    let s = secs.rem_euclid(86400);
    format!("{}T{:02}:{:02}:{:02}Z", civil_date(secs), s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_and_must_be_a_number() {
        assert_eq!(pinned_epoch(Some(" 1700000000\n"), Some(5)), Ok(Some(1_700_000_000)));
        assert_eq!(pinned_epoch(None, Some(5)), Ok(Some(5)));
        assert_eq!(pinned_epoch(None, None), Ok(None));
        let e = pinned_epoch(Some("yesterday"), Some(5)).unwrap_err();
        assert!(e.to_string().contains("SOURCE_DATE_EPOCH=`yesterday`"), "{e}");
    }

    #[test]
    fn dates_and_times_are_utc() {
        assert_eq!(civil_date(1_700_000_000), "2023-11-14");
        assert_eq!(civil_date(-1), "1969-12-31");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        let info = BuildInfo::at(86_400, Host { threads: 1 });
        assert_eq!(info.template_value()["date"], "1970-01-02");
        assert_eq!(info.template_value()["epoch"], 86_400);
    }
}
