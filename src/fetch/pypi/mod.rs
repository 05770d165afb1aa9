//! The PyPI source: the full dependency closure of the recipe's requirements, resolved
//! by uv for every (Python version, platform) pair, wheels only (plus sdists when asked),
//! each file stored once, served as a PEP 503 simple index with `#sha256=` links and
//! `data-requires-python` — so `pip install --index-url http://SERVER/pypi/ ...` and
//! `pip download --platform ...` work offline.

mod download;
pub mod index;
pub mod uv;
pub mod wheel;

use super::Cx;
use super::http::Expect;
use super::lock::{LockedFile, LockedSource};
use super::pool::Job;
use crate::recipe::plan_content::PypiPlan;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// How many uv resolves run at once after the first: each mostly waits on the network.
const RESOLVERS: usize = 4;

/// Resolves every target and downloads the chosen wheels, each as soon as the first
/// target that needs it is resolved, then reads each wheel's `Requires-Python` from the
/// wheel itself.
///
/// The first resolve runs alone: it fills uv's cache, so where the index sends caching
/// headers (PyPI does) the others need no request for the pages and metadata it fetched.
/// Its wheels start downloading while the other targets resolve.
pub fn resolve(plan: &PypiPlan, cx: &Cx) -> Result<LockedSource> {
    let uv_cache = uv::cache_dir(cx.cache)?;
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
    if targets.is_empty() {
        bail!("no Python version or platform to resolve for");
    }
    let python = uv::interpreter(&uv_cache, &cx.scratch.join("uv-python"));
    // uv reads the index from where `content.fetch_from` says; what it chose is recorded
    // under the upstream URLs, like every other source's files.
    let index_url = cx.client.via(&plan.index_url);
    let compile = |i: usize| {
        let work = cx.scratch.join(format!("uv-{i}"));
        uv::compile(
            &uv::Wanted {
                requirements: &plan.requirements,
                no_deps: false,
            },
            &index_url,
            &targets[i],
            python.as_deref(),
            &work,
            &uv_cache,
            cx.client.timeouts(),
        )
        .map(|list| {
            list.into_iter()
                .map(|c| uv::Chosen {
                    url: cx.client.upstream(&c.url),
                    ..c
                })
                .collect()
        })
    };
    let mut chosen: BTreeMap<String, uv::Chosen> = BTreeMap::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    let downloads = download::Downloads::new(cx);
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..download::Downloads::workers() {
            s.spawn(|| downloads.work());
        }
        // However this block ends, the workers must be let go, or the scope never ends.
        let _closing = download::CloseOnDrop(&downloads);
        let (done, results) = mpsc::channel::<(usize, Result<Vec<uv::Chosen>>)>();
        let next = AtomicUsize::new(1);
        let (compile, n) = (&compile, targets.len());
        let first = done.clone();
        let resolvers = s.spawn(move || {
            let _ = first.send((0, compile(0)));
            std::thread::scope(|s| {
                for _ in 0..RESOLVERS.min(n.saturating_sub(1)) {
                    let (done, next) = (done.clone(), &next);
                    s.spawn(move || {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= n {
                                break;
                            }
                            let _ = done.send((i, compile(i)));
                        }
                    });
                }
            });
        });
        let mut queued = BTreeSet::new();
        for (i, result) in results {
            let t = &targets[i];
            match result {
                Ok(list) => {
                    let mut jobs = Vec::new();
                    for c in list {
                        let sha256 = c.sha256.to_ascii_lowercase();
                        if queued.insert(sha256.clone()) {
                            jobs.push(Job {
                                label: format!("{} {} for Python {} on {}", c.project, c.version, t.python, t.platform),
                                url: c.url.clone(),
                                expect: Expect {
                                    sha256: Some(sha256),
                                    size: c.size,
                                    md5: None,
                                },
                                fallback: None,
                            });
                        }
                        chosen.entry(c.url.clone()).or_insert(c);
                    }
                    if errors.is_empty() {
                        downloads.add(&format!("download (Python {} on {})", t.python, t.platform), jobs);
                    }
                }
                Err(e) => {
                    // The fetch fails: download nothing more.
                    downloads.cancel();
                    errors.push((i, format!("{e:#}")));
                }
            }
        }
        resolvers.join().map_err(|_| anyhow!("a resolver thread panicked"))
    })?;
    if !errors.is_empty() {
        errors.sort();
        bail!("{}", errors.into_iter().map(|(_, e)| e).collect::<Vec<_>>().join("\n"));
    }
    downloads.finish()?;
    // An sdist's `requires-python` comes with the index page it was found on.
    let mut sdist_requires: BTreeMap<String, Option<String>> = BTreeMap::new();
    if plan.sdists {
        let versions: Vec<(String, String)> = chosen
            .values()
            .map(|c| (c.project.clone(), c.version.clone()))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let sdists = parallel_map(&versions, |(project, version)| find_sdist(plan, cx, project, version))?;
        for (sdist, requires) in sdists {
            sdist_requires.insert(sdist.url.clone(), requires);
            chosen.entry(sdist.url.clone()).or_insert(sdist);
        }
    }
    let mut requires = requires_python(cx, &chosen, &sdist_requires)?;
    requires.extend(sdist_requires);
    let mut files = Vec::new();
    for c in chosen.values() {
        let sha256 = c.sha256.to_ascii_lowercase();
        let size = match cx.store.size(&sha256).or(c.size) {
            Some(s) => s,
            // The index did not say: download now to learn it (verified by hash).
            None => {
                let expect = Expect {
                    sha256: Some(sha256.clone()),
                    ..Default::default()
                };
                cx.client.download(cx.store, &c.url, &expect)?.size
            }
        };
        files.push(LockedFile {
            url: c.url.clone(),
            size,
            sha256,
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
        package_lock: None,
    })
}

/// Each wheel's `Requires-Python` (`known`, the sdists', is skipped): from its own core
/// metadata, read from the store (it was downloaded while resolving), else from its PEP
/// 658 metadata file (`<URL>.metadata`), fetched in parallel. A file without one is
/// served without the attribute, which pip accepts.
fn requires_python(
    cx: &Cx,
    chosen: &BTreeMap<String, uv::Chosen>,
    known: &BTreeMap<String, Option<String>>,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    let mut ask = Vec::new();
    for c in chosen.values().filter(|c| !known.contains_key(&c.url)) {
        let stored = cx.store.path(&c.sha256.to_ascii_lowercase());
        if !(c.filename.ends_with(".whl") && stored.is_file()) {
            ask.push(&c.url);
            continue;
        }
        match wheel::metadata(&stored) {
            Ok(text) => {
                out.insert(c.url.clone(), metadata_field(&text, "Requires-Python"));
            }
            Err(e) => {
                cx.reporter.detail(&format!("{}: {e:#}; asking the index", c.filename));
                ask.push(&c.url);
            }
        }
    }
    let found = parallel_map(&ask, |url| {
        Ok(match cx.client.get(&format!("{url}.metadata")) {
            Ok((body, _)) => metadata_field(&String::from_utf8_lossy(&body), "Requires-Python"),
            Err(super::http::FetchError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        })
    })?;
    out.extend(ask.into_iter().cloned().zip(found));
    Ok(out)
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
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
}

fn project_page(plan: &PypiPlan, cx: &Cx, project: &str) -> Result<ProjectPage> {
    let url = format!("{}/{project}/", plan.index_url);
    let (body, final_url) = cx
        .client
        .get_accept(&url, Some("application/vnd.pypi.simple.v1+json"))?;
    let mut page: ProjectPage = serde_json::from_slice(&body)
        .with_context(|| format!("{url}: not a PEP 691 JSON project page; does the index support it?"))?;
    for f in &mut page.files {
        if let Ok(abs) = url::Url::parse(&final_url).and_then(|b| b.join(&f.url)) {
            f.url = abs.to_string();
        }
    }
    Ok(page)
}

/// The sdist of `project` at `version` and its `requires-python`, from the PEP 691 page.
fn find_sdist(plan: &PypiPlan, cx: &Cx, project: &str, version: &str) -> Result<(uv::Chosen, Option<String>)> {
    let page = project_page(plan, cx, &index::normalize(project))?;
    let f = page
        .files
        .into_iter()
        .find(|f| is_sdist_of(&f.filename, project, version))
        .ok_or_else(|| anyhow!("`{project}` {version} has no source distribution on {}", plan.index_url))?;
    let sha256 = f
        .hashes
        .get("sha256")
        .cloned()
        .ok_or_else(|| anyhow!("{}: the index gives no sha256", f.url))?;
    let requires = f.requires_python.filter(|r| !r.trim().is_empty());
    let sdist = uv::Chosen {
        project: project.into(),
        version: version.into(),
        filename: f.filename,
        url: f.url,
        size: f.size,
        sha256,
    };
    Ok((sdist, requires))
}

/// Whether `filename` is the source distribution `<name>-<version>.tar.gz` (or `.zip`)
/// of `project` at `version`, however the name is spelled (`PyYAML`, `zope.interface`).
fn is_sdist_of(filename: &str, project: &str, version: &str) -> bool {
    let lower = filename.to_ascii_lowercase();
    let Some(stem) = lower.strip_suffix(".tar.gz").or_else(|| lower.strip_suffix(".zip")) else {
        return false;
    };
    stem.rsplit_once('-').is_some_and(|(name, v)| {
        v == version.to_ascii_lowercase() && index::normalize(name) == index::normalize(project)
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
    fn recognises_the_sdist_of_a_version() {
        use super::is_sdist_of;
        assert!(is_sdist_of("idna-3.20.tar.gz", "idna", "3.20"));
        assert!(is_sdist_of("PyYAML-6.0.3.tar.gz", "pyyaml", "6.0.3"));
        assert!(is_sdist_of("zope.interface-7.0.zip", "zope-interface", "7.0"));
        assert!(is_sdist_of(
            "charset_normalizer-3.5.2.tar.gz",
            "charset-normalizer",
            "3.5.2"
        ));
        assert!(!is_sdist_of("idna-3.2.tar.gz", "idna", "3.20"));
        assert!(!is_sdist_of("idna-3.20-py3-none-any.whl", "idna", "3.20"));
        assert!(!is_sdist_of("idna-ng-3.20.tar.gz", "idna", "3.20"));
    }

    #[test]
    fn reads_requires_python_from_core_metadata() {
        let text = "Metadata-Version: 2.1\nName: x\nRequires-Python: >=3.9\n\nRequires-Python: body\n";
        assert_eq!(super::metadata_field(text, "requires-python").as_deref(), Some(">=3.9"));
        assert_eq!(super::metadata_field("Name: x\n", "Requires-Python"), None);
    }
}
