//! A CRAN mirror for `install.packages()` without the internet: for every package type
//! (source, Windows and macOS binaries) the requested packages and their dependency
//! closure, laid out as CRAN lays them out, with `PACKAGES` / `PACKAGES.gz` indexes that
//! list exactly what was mirrored.
//!
//! Resolving reads each type's upstream index (stored and locked, so the tree can be
//! written again from the cache alone), computes the closure over `Depends`, `Imports`
//! and `LinkingTo`, and downloads every package file checked against the index's
//! `MD5sum` (and `SHA256` when present). Writing links the package files and derives
//! each filtered index from the locked upstream index — never from the network.

pub mod closure;
pub mod dcf;

use super::Cx;
use super::http::{Expect, FetchError};
use super::lock::{LockedFile, LockedSource};
use super::pool::{self, Job};
use crate::recipe::plan_content::CranPlan;
use anyhow::{Context, Result, anyhow, bail};
use dcf::Stanza;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

/// Where one package type lives in a CRAN repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub kind: String,
    /// The type's directory, relative to the repository root.
    pub dir: String,
    /// The extension of its package files.
    pub ext: &'static str,
}

impl Layout {
    pub fn of(kind: &str, r_version: &str) -> Result<Layout> {
        let (dir, ext) = match kind {
            "source" => ("src/contrib".to_string(), "tar.gz"),
            "win.binary" => (format!("bin/windows/contrib/{r_version}"), "zip"),
            "mac.binary.big-sur-x86_64" | "mac.binary.big-sur-arm64" => {
                let arch = kind.trim_start_matches("mac.binary.");
                (format!("bin/macosx/{arch}/contrib/{r_version}"), "tgz")
            }
            _ => bail!("unknown CRAN package type `{kind}`"),
        };
        Ok(Layout {
            kind: kind.to_string(),
            dir,
            ext,
        })
    }

    /// The upstream index URL: `PACKAGES.gz`, or the uncompressed `PACKAGES`.
    pub fn index_url(&self, repo: &str, gz: bool) -> String {
        format!("{repo}/{}/PACKAGES{}", self.dir, if gz { ".gz" } else { "" })
    }

    /// The file name of a package in this type's directory: the stanza's `File` field
    /// when it has one, else `{Package}_{Version}.{ext}`. Refuses names that are not a
    /// single plain path component (an index is input too).
    pub fn file_name(&self, st: &Stanza) -> Result<String> {
        let (pkg, version) = package_version(st)?;
        let name = match st.get("File") {
            Some(f) => f.to_string(),
            None => format!("{pkg}_{version}.{}", self.ext),
        };
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
        if !plain {
            bail!("package `{pkg}` (line {}): `{name}` is not a plain file name", st.line);
        }
        Ok(name)
    }
}

fn package_version(st: &Stanza) -> Result<(&str, &str)> {
    match (st.get("Package"), st.get("Version")) {
        (Some(p), Some(v)) if !p.is_empty() && !v.is_empty() => Ok((p, v)),
        _ => bail!("the stanza at line {} has no `Package` and `Version`", st.line),
    }
}

/// Index bytes as text: gzip is recognised by its magic number, not the URL.
fn decode(bytes: &[u8]) -> Result<String> {
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .context("not a valid gzip file")?;
        out
    } else {
        bytes.to_vec()
    };
    String::from_utf8(raw).map_err(|e| anyhow!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// Compares R package versions (`1.10-2` > `1.9.3`): numbers separated by `.` or `-`.
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> { v.split(['.', '-']).map(|x| x.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b)).then_with(|| a.cmp(b))
}

/// Package name → its stanza; when a package is listed twice, the higher version.
fn by_name(stanzas: &[Stanza]) -> Result<BTreeMap<String, &Stanza>> {
    let mut out: BTreeMap<String, &Stanza> = BTreeMap::new();
    for st in stanzas {
        let (pkg, version) = package_version(st)?;
        match out.get(pkg) {
            Some(old) if version_cmp(package_version(old)?.1, version).is_ge() => {}
            _ => {
                out.insert(pkg.to_string(), st);
            }
        }
    }
    Ok(out)
}

/// One type's upstream index: (bytes, URL, final URL after redirects).
fn fetch_index(plan: &CranPlan, layout: &Layout, cx: &Cx) -> Result<(Vec<u8>, String, String)> {
    let gz = layout.index_url(&plan.repo, true);
    match cx.client.get(&gz) {
        Ok((body, fin)) => Ok((body, gz, fin)),
        Err(FetchError::NotFound { .. }) => {
            let plain = layout.index_url(&plan.repo, false);
            match cx.client.get(&plain) {
                Ok((body, fin)) => Ok((body, plain, fin)),
                Err(FetchError::NotFound { .. }) => bail!(
                    "CRAN type `{}`: the repository has no index: neither {gz} nor {plain} exists; check `content.cran.repo` and `r_version` ({})",
                    layout.kind,
                    plan.r_version
                ),
                Err(e) => Err(anyhow!(e)).with_context(|| format!("CRAN type `{}`: fetching its index", layout.kind)),
            }
        }
        Err(e) => Err(anyhow!(e)).with_context(|| format!("CRAN type `{}`: fetching its index", layout.kind)),
    }
}

/// A package file to download.
struct Want {
    /// Relative to the source's directory: `{layout.dir}/{file}`.
    rel: String,
    job: Job,
}

/// Resolves the closure of the requested packages for every type and downloads it.
pub fn resolve(plan: &CranPlan, cx: &Cx) -> Result<LockedSource> {
    let mut indexes = Vec::new();
    let mut wants = Vec::new();
    for kind in &plan.types {
        let layout = Layout::of(kind, &plan.r_version)?;
        let (bytes, url, fin) = fetch_index(plan, &layout, cx)?;
        let read = |what: &str| format!("CRAN type `{kind}`: {what} {url}");
        let text = decode(&bytes).with_context(|| read("reading the index"))?;
        let stanzas = dcf::parse(&text).with_context(|| read("parsing the index"))?;
        let index = by_name(&stanzas).with_context(|| read("parsing the index"))?;
        let chosen = closure::closure(&index, &plan.packages).map_err(|missing| {
            let known: Vec<&str> = index.keys().map(String::as_str).collect();
            anyhow!(closure::missing_message(kind, &url, &plan.r_version, &missing, &known))
        })?;
        let sha256 = cx.store.insert_bytes(&bytes)?;
        indexes.push(LockedFile {
            size: bytes.len() as u64,
            sha256,
            path: None,
            redirect: (fin != url).then_some(fin),
            requires_python: None,
            url: url.clone(),
        });
        for (pkg, st) in chosen {
            let file = layout.file_name(st).with_context(|| read("in the index"))?;
            let version = st.get("Version").unwrap_or_default();
            let expect = Expect {
                sha256: st.get("SHA256").map(str::to_ascii_lowercase),
                size: None,
                md5: st.get("MD5sum").map(str::to_ascii_lowercase),
            };
            wants.push(Want {
                rel: format!("{}/{file}", layout.dir),
                job: Job {
                    label: format!("CRAN {kind} {pkg} {version}"),
                    url: format!("{}/{}/{file}", plan.repo, layout.dir),
                    expect,
                    // CRAN keeps a source package here once a newer version replaced it.
                    fallback: (kind == "source").then(|| format!("{}/src/contrib/Archive/{pkg}/{file}", plan.repo)),
                },
            });
        }
    }
    wants.sort_by(|a, b| a.rel.cmp(&b.rel));
    let jobs: Vec<Job> = wants.iter().map(|w| w.job.clone()).collect();
    let fetched = pool::fetch_many(cx, &jobs, 0)?;
    indexes.sort_by(|a, b| a.url.cmp(&b.url));
    let mut files = indexes;
    for (w, f) in wants.iter().zip(fetched) {
        files.push(LockedFile {
            redirect: (f.final_url != f.url).then_some(f.final_url),
            url: f.url,
            size: f.size,
            sha256: f.sha256,
            path: Some(format!("{}/{}", plan.path, w.rel)),
            requires_python: None,
        });
    }
    Ok(LockedSource {
        inputs: String::new(),
        files,
        refs: Default::default(),
    })
}

/// Links the package files and writes each type's `PACKAGES` and `PACKAGES.gz`: the
/// stanzas of the mirrored packages, as the locked upstream index has them, by name.
pub fn materialize(plan: &CranPlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    super::place_files(entry, cx, out)?;
    for kind in &plan.types {
        let layout = Layout::of(kind, &plan.r_version)?;
        let dir = format!("{}/{}", plan.path, layout.dir);
        let text = filtered_index(plan, &layout, entry, cx)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(text.as_bytes())?;
        let gz = gz.finish()?;
        for (name, bytes) in [("PACKAGES", text.as_bytes()), ("PACKAGES.gz", gz.as_slice())] {
            let path = super::safe_join(out, &format!("{dir}/{name}"))?;
            let write = || -> Result<()> {
                if let Some(parent) = path.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                fs_err::write(&path, bytes)?;
                Ok(())
            };
            write().with_context(|| format!("CRAN type `{kind}`: writing {dir}/{name}"))?;
        }
    }
    Ok(())
}

/// The index of one type for the mirror, from the locked upstream index in the store.
fn filtered_index(plan: &CranPlan, layout: &Layout, entry: &LockedSource, cx: &Cx) -> Result<String> {
    let kind = &layout.kind;
    let urls = [layout.index_url(&plan.repo, true), layout.index_url(&plan.repo, false)];
    let Some(index) = entry.files.iter().find(|f| f.path.is_none() && urls.contains(&f.url)) else {
        bail!(
            "CRAN type `{kind}`: the lock has no index for it ({}); run `imgbuild fetch --update`",
            urls[0]
        );
    };
    let read = |what: &str| format!("CRAN type `{kind}`: {what} {} (locked)", index.url);
    let bytes = cx
        .store
        .read(&index.sha256)
        .with_context(|| read("reading the index"))?;
    let text = decode(&bytes).with_context(|| read("reading the index"))?;
    let stanzas = dcf::parse(&text).with_context(|| read("parsing the index"))?;
    let prefix = format!("{}/{}/", plan.path, layout.dir);
    let locked: BTreeSet<&str> = entry
        .files
        .iter()
        .filter_map(|f| f.path.as_deref()?.strip_prefix(&prefix))
        .filter(|name| !name.contains('/'))
        .collect();
    let mut chosen: BTreeMap<&str, &Stanza> = BTreeMap::new();
    let mut served: BTreeSet<String> = BTreeSet::new();
    for st in &stanzas {
        let (Ok(file), Ok((pkg, _))) = (layout.file_name(st), package_version(st)) else {
            continue;
        };
        if locked.contains(file.as_str()) && !chosen.contains_key(pkg) {
            chosen.insert(pkg, st);
            served.insert(file);
        }
    }
    if let Some(stray) = locked.iter().find(|f| !served.contains(**f)) {
        bail!(
            "CRAN type `{kind}`: the locked index {} does not list {prefix}{stray}; the lock is inconsistent, run `imgbuild fetch --update`",
            index.url
        );
    }
    Ok(dcf::render(chosen.values().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_follow_cran() {
        let st = dcf::parse("Package: pkgA\nVersion: 1.0-2\n").unwrap().remove(0);
        let cases = [
            ("source", "src/contrib/pkgA_1.0-2.tar.gz"),
            ("win.binary", "bin/windows/contrib/4.5/pkgA_1.0-2.zip"),
            (
                "mac.binary.big-sur-x86_64",
                "bin/macosx/big-sur-x86_64/contrib/4.5/pkgA_1.0-2.tgz",
            ),
            (
                "mac.binary.big-sur-arm64",
                "bin/macosx/big-sur-arm64/contrib/4.5/pkgA_1.0-2.tgz",
            ),
        ];
        for (kind, want) in cases {
            let l = Layout::of(kind, "4.5").unwrap();
            assert_eq!(format!("{}/{}", l.dir, l.file_name(&st).unwrap()), want);
        }
        for kind in crate::recipe::plan_content::CRAN_TYPES {
            Layout::of(kind, "4.5").unwrap();
        }
        let l = Layout::of("source", "4.5").unwrap();
        assert_eq!(
            l.index_url("https://r.example", true),
            "https://r.example/src/contrib/PACKAGES.gz"
        );
        let st = dcf::parse("Package: x\nVersion: 1\nFile: x_1-special.tar.gz\n")
            .unwrap()
            .remove(0);
        assert_eq!(l.file_name(&st).unwrap(), "x_1-special.tar.gz", "File: is honoured");
        let st = dcf::parse("Package: x\nVersion: 1\nFile: ../../etc/passwd\n")
            .unwrap()
            .remove(0);
        let err = l.file_name(&st).unwrap_err();
        assert!(err.to_string().contains("is not a plain file name"), "{err}");
        let st = dcf::parse("Package: x\n").unwrap().remove(0);
        assert!(l.file_name(&st).is_err(), "no version");
    }

    #[test]
    fn duplicate_stanzas_keep_the_higher_version() {
        let s =
            dcf::parse("Package: a\nVersion: 1.10\n\nPackage: a\nVersion: 1.9.3\n\nPackage: b\nVersion: 1\n").unwrap();
        let idx = by_name(&s).unwrap();
        assert_eq!(idx["a"].get("Version"), Some("1.10"));
        assert_eq!(idx.len(), 2);
        assert!(version_cmp("1.0-10", "1.0-9").is_gt());
    }

    #[test]
    fn gzip_is_recognised_by_content() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"Package: a\n").unwrap();
        assert_eq!(decode(&gz.finish().unwrap()).unwrap(), "Package: a\n");
        assert_eq!(decode(b"Package: b\n").unwrap(), "Package: b\n");
        assert!(decode(&[0x1f, 0x8b, 0, 1]).is_err());
    }
}
