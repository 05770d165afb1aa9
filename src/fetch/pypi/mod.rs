//! The PyPI source: the full dependency closure of the recipe's requirements, resolved
//! by uv for every (Python version, platform) pair, wheels only (plus sdists when asked),
//! each file stored once, served as a PEP 503 simple index with `#sha256=` links and
//! `data-requires-python` — so `pip install --index-url http://SERVER/pypi/ ...` and
//! `pip download --platform ...` work offline.

pub mod index;
pub mod uv;

use super::Cx;
use super::lock::{LockedFile, LockedSource};
use crate::recipe::plan_content::PypiPlan;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// Resolves every target, then looks up each chosen file's `Requires-Python`.
pub fn resolve(plan: &PypiPlan, cx: &Cx) -> Result<LockedSource> {
    let uv_cache = cx.cache.dir("uv-v1", "cache")?;
    let targets: Vec<uv::Target> = plan
        .python
        .iter()
        .flat_map(|py| {
            plan.platforms.iter().map(move |(name, uvp)| uv::Target {
                python: py,
                platform: name,
                uv_platform: uvp,
            })
        })
        .collect();
    // The first resolve fills uv's cache with the metadata every other target shares;
    // the rest then run a few at a time.
    let compile = |i: usize, t: &uv::Target| {
        let work = cx.scratch.join(format!("uv-{i}"));
        uv::compile(&plan.requirements, &plan.index_url, t, &work, &uv_cache)
    };
    let mut results = vec![compile(0, &targets[0])];
    let rest: Vec<(usize, &uv::Target)> = targets.iter().enumerate().skip(1).collect();
    results.extend(parallel_map(&rest, |(i, t)| Ok(compile(*i, t)))?);
    let mut chosen: BTreeMap<String, uv::Chosen> = BTreeMap::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(list) => {
                for c in list {
                    chosen.entry(c.url.clone()).or_insert(c);
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    if plan.sdists {
        let versions: BTreeMap<String, String> = chosen
            .values()
            .map(|c| (c.project.clone(), c.version.clone()))
            .collect();
        for (project, version) in versions {
            let sdist = find_sdist(plan, cx, &project, &version)?;
            chosen.entry(sdist.url.clone()).or_insert(sdist);
        }
    }
    let requires = requires_python(cx, &chosen)?;
    let mut files = Vec::new();
    for c in chosen.values() {
        let size = match c.size {
            Some(s) => s,
            // The index did not say: download now to learn it (verified by hash).
            None => {
                let expect = super::http::Expect {
                    sha256: Some(c.sha256.clone()),
                    ..Default::default()
                };
                cx.client.download(cx.store, &c.url, &expect)?.size
            }
        };
        files.push(LockedFile {
            url: c.url.clone(),
            size,
            sha256: c.sha256.to_ascii_lowercase(),
            path: Some(format!("{}/{}/{}", plan.path, index::normalize(&c.project), c.filename)),
            redirect: None,
            requires_python: requires.get(&c.url).cloned().flatten(),
            stanza: None,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(LockedSource {
        inputs: String::new(),
        files,
        refs: Default::default(),
    })
}

/// Each wheel's `Requires-Python`, from its PEP 658 metadata file (`<wheel URL>.metadata`,
/// a few kilobytes) fetched in parallel; a file without one is served without the
/// attribute, which pip accepts.
fn requires_python(cx: &Cx, chosen: &BTreeMap<String, uv::Chosen>) -> Result<BTreeMap<String, Option<String>>> {
    let urls: Vec<&String> = chosen.keys().collect();
    let found = parallel_map(&urls, |url| {
        Ok(match cx.client.get(&format!("{url}.metadata")) {
            Ok((body, _)) => metadata_field(&String::from_utf8_lossy(&body), "Requires-Python"),
            Err(super::http::FetchError::NotFound { .. }) => None,
            Err(e) => return Err(anyhow!("{e}")),
        })
    })?;
    Ok(urls.into_iter().cloned().zip(found).collect())
}

/// A header field of core metadata (an email-style header block).
fn metadata_field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|v| !v.is_empty())
}

#[derive(serde::Deserialize)]
struct ProjectPage {
    files: Vec<PageFile>,
}

#[derive(serde::Deserialize)]
struct PageFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
}

fn project_page(plan: &PypiPlan, cx: &Cx, project: &str) -> Result<ProjectPage> {
    let url = format!("{}/{project}/", plan.index_url);
    let (body, final_url) = cx
        .client
        .get_accept(&url, Some("application/vnd.pypi.simple.v1+json"))
        .map_err(|e| anyhow!("{e}"))?;
    let mut page: ProjectPage = serde_json::from_slice(&body)
        .with_context(|| format!("{url}: not a PEP 691 JSON project page; does the index support it?"))?;
    for f in &mut page.files {
        if let Ok(abs) = url::Url::parse(&final_url).and_then(|b| b.join(&f.url)) {
            f.url = abs.to_string();
        }
    }
    Ok(page)
}

fn find_sdist(plan: &PypiPlan, cx: &Cx, project: &str, version: &str) -> Result<uv::Chosen> {
    let page = project_page(plan, cx, &index::normalize(project))?;
    let stem = format!("{}-{version}", index::normalize(project).replace('-', "_"));
    let f = page
        .files
        .into_iter()
        .find(|f| {
            let lower = f.filename.to_ascii_lowercase().replace('-', "_");
            (lower.ends_with(".tar.gz") || lower.ends_with(".zip")) && lower.starts_with(&format!("{stem}."))
        })
        .ok_or_else(|| anyhow!("`{project}` {version} has no source distribution on {}", plan.index_url))?;
    let sha256 = f
        .hashes
        .get("sha256")
        .cloned()
        .ok_or_else(|| anyhow!("{}: the index gives no sha256", f.url))?;
    Ok(uv::Chosen {
        project: project.into(),
        version: version.into(),
        filename: f.filename,
        url: f.url,
        size: f.size,
        sha256,
    })
}

/// Runs `f` over `items` on a few threads, keeping the order; the first error wins.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let chunk = items.len().div_ceil(super::pool::WORKERS).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().map_err(|_| anyhow!("a worker thread panicked"))??);
        }
        Ok(out)
    })
}

/// Links the files and writes the simple index.
pub fn materialize(plan: &PypiPlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    super::place_files(entry, cx, out)?;
    index::write(&super::safe_join(out, &plan.path)?, &plan.path, &entry.files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_requires_python_from_core_metadata() {
        let text = "Metadata-Version: 2.1\nName: x\nRequires-Python: >=3.9\n\nRequires-Python: body\n";
        assert_eq!(super::metadata_field(text, "requires-python").as_deref(), Some(">=3.9"));
        assert_eq!(super::metadata_field("Name: x\n", "Requires-Python"), None);
    }
}
