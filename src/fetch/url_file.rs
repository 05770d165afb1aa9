//! Single files (the R, RStudio and Python installers): a fixed URL with a pinned
//! SHA-256, or a `latest` rule — an index page and a pattern with a `version` group —
//! that finds the newest release when the lock is written. Either way the lock pins the
//! exact URL and hash, and the file keeps its upstream name under the recipe's `path`.

use super::Cx;
use super::http::Expect;
use super::lock::{LockedFile, LockedSource};
use crate::recipe::plan_content::FilePlan;
use anyhow::{Context, Result, anyhow, bail};
use std::cmp::Ordering;

pub fn resolve(plan: &FilePlan, cx: &Cx) -> Result<LockedSource> {
    let url = match (&plan.url, &plan.latest) {
        (Some(u), _) => u.clone(),
        (None, Some((index, pattern))) => latest(index, pattern, cx)?,
        (None, None) => bail!("neither `url` nor `latest` is set"),
    };
    let expect = Expect {
        sha256: plan.sha256.clone(),
        ..Default::default()
    };
    let got = cx.client.download(cx.store, &url, &expect)?;
    let name = super::pypi::uv::filename_of(&got.final_url).or_else(|_| super::pypi::uv::filename_of(&url))?;
    Ok(LockedSource {
        inputs: String::new(),
        files: vec![LockedFile {
            url,
            size: got.size,
            sha256: got.sha256,
            // A `files:` download keeps the recipe's name for it; an installer keeps its own.
            path: Some(match &plan.target {
                Some(t) => t.clone(),
                None => format!("{}/{name}", plan.path),
            }),
            ..Default::default()
        }],
        refs: Default::default(),
        package_lock: None,
    })
}

/// The link on `index` whose `version` group is highest, as an absolute URL.
pub fn latest(index: &str, pattern: &str, cx: &Cx) -> Result<String> {
    let re = regex::Regex::new(pattern).with_context(|| format!("pattern `{pattern}`"))?;
    let (body, final_url) = cx.client.get(index)?;
    let page = String::from_utf8_lossy(&body);
    let base = url::Url::parse(&final_url).with_context(|| format!("`{final_url}` is not a URL"))?;
    let href = regex::Regex::new(r#"(?i)href\s*=\s*["']([^"']+)["']"#).map_err(|e| anyhow!("{e}"))?;
    let mut best: Option<(String, String)> = None;
    for cap in href.captures_iter(&page) {
        let link = &cap[1];
        let Some(m) = re.captures(link) else { continue };
        let Some(v) = m.name("version") else { continue };
        let v = v.as_str().to_string();
        if best
            .as_ref()
            .is_none_or(|(bv, _)| compare_versions(&v, bv) == Ordering::Greater)
        {
            best = Some((v, link.to_string()));
        }
    }
    let (_, link) = best.ok_or_else(|| anyhow!("no link on {index} matches `{pattern}`"))?;
    Ok(base
        .join(&link)
        .with_context(|| format!("joining {link} to {final_url}"))?
        .to_string())
}

/// Compares versions part by part, numbers numerically (`4.10.0` > `4.9.3`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<String> { s.split(['.', '-', '_']).map(str::to_string).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(n), Ok(m)) => n.cmp(&m),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(compare_versions("4.10.0", "4.9.3"), Ordering::Greater);
        assert_eq!(compare_versions("2024.12.1-563", "2024.12.1-467"), Ordering::Greater);
        assert_eq!(compare_versions("3.12", "3.12.1"), Ordering::Less);
    }
}
