//! A CRAN mirror for `install.packages()` without the internet: for every package type
//! (source, Windows and macOS binaries) the requested packages and their dependency
//! closure, laid out as CRAN lays them out, with `PACKAGES` / `PACKAGES.gz` indexes that
//! list exactly what was mirrored.
//!
//! Resolving reads each type's upstream index, computes the closure over `Depends`,
//! `Imports` and `LinkingTo`, and downloads every package file checked against the
//! index's `MD5sum` (and `SHA256` when present). The lock keeps each package's stanza
//! of that index, not the index itself: CRAN rewrites `PACKAGES.gz` daily, so its bytes
//! can't be fetched again by hash. Writing links the package files and renders each
//! filtered index from the locked stanzas — never from the network. A locked source
//! package that has since moved to `src/contrib/Archive/<pkg>/` is fetched from there.

pub mod closure;
pub mod dcf;

use super::Cx;
use super::http::{Expect, FetchError};
use super::lock::{LockedFile, LockedSource};
use super::pool::{self, Job};
use crate::recipe::plan_content::CranPlan;
use anyhow::{Context, Result, anyhow, bail};
use dcf::Stanza;
use std::collections::BTreeMap;
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

/// One type's upstream index: (bytes, URL).
fn fetch_index(plan: &CranPlan, layout: &Layout, cx: &Cx) -> Result<(Vec<u8>, String)> {
    let gz = layout.index_url(&plan.repo, true);
    match cx.client.get(&gz) {
        Ok((body, _)) => Ok((body, gz)),
        Err(FetchError::NotFound { .. }) => {
            let plain = layout.index_url(&plan.repo, false);
            match cx.client.get(&plain) {
                Ok((body, _)) => Ok((body, plain)),
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
    /// Its stanza in the upstream index, as written there.
    stanza: String,
    job: Job,
}

/// Where CRAN keeps a source package once a newer version replaced it.
fn archive_url(plan: &CranPlan, pkg: &str, file: &str) -> String {
    format!("{}/src/contrib/Archive/{pkg}/{file}", plan.repo)
}

/// For a locked source package not already locked from the archive: its archive URL,
/// where CRAN will have moved it once it is superseded.
pub fn fallback(plan: &CranPlan, f: &LockedFile) -> Option<String> {
    let file = f
        .path
        .as_deref()?
        .strip_prefix(&format!("{}/src/contrib/", plan.path))
        .filter(|name| !name.contains('/'))?;
    let st = dcf::parse(f.stanza.as_deref()?).ok()?.into_iter().next()?;
    let url = archive_url(plan, st.get("Package")?, file);
    (url != f.url).then_some(url)
}

/// Whether a lock entry predates locked stanzas (it locked the upstream indexes, which
/// can't be fetched again once CRAN rewrites them): such an entry is resolved again.
pub fn outdated(entry: &LockedSource) -> bool {
    entry.files.iter().any(|f| f.path.is_none() || f.stanza.is_none())
}

/// Resolves the closure of the requested packages for every type and downloads it.
pub fn resolve(plan: &CranPlan, cx: &Cx) -> Result<LockedSource> {
    let mut wants = Vec::new();
    for kind in &plan.types {
        let layout = Layout::of(kind, &plan.r_version)?;
        let (bytes, url) = fetch_index(plan, &layout, cx)?;
        let read = |what: &str| format!("CRAN type `{kind}`: {what} {url}");
        let text = decode(&bytes).with_context(|| read("reading the index"))?;
        let stanzas = dcf::parse(&text).with_context(|| read("parsing the index"))?;
        let index = by_name(&stanzas).with_context(|| read("parsing the index"))?;
        let chosen = closure::closure(&index, &plan.packages).map_err(|missing| {
            let known: Vec<&str> = index.keys().map(String::as_str).collect();
            anyhow!(closure::missing_message(kind, &url, &plan.r_version, &missing, &known))
        })?;
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
                stanza: st.text.clone(),
                job: Job {
                    label: format!("CRAN {kind} {pkg} {version}"),
                    url: format!("{}/{}/{file}", plan.repo, layout.dir),
                    expect,
                    fallback: (kind == "source").then(|| archive_url(plan, &pkg, &file)),
                },
            });
        }
    }
    wants.sort_by(|a, b| a.rel.cmp(&b.rel));
    let jobs: Vec<Job> = wants.iter().map(|w| w.job.clone()).collect();
    let fetched = pool::fetch_many(cx, &jobs, 0)?;
    let files = wants
        .into_iter()
        .zip(fetched)
        .map(|(w, f)| LockedFile {
            redirect: (f.final_url != f.url).then_some(f.final_url),
            url: f.url,
            size: f.size,
            sha256: f.sha256,
            path: Some(format!("{}/{}", plan.path, w.rel)),
            requires_python: None,
            stanza: Some(w.stanza),
        })
        .collect();
    Ok(LockedSource {
        inputs: String::new(),
        files,
        refs: Default::default(),
        package_lock: None,
    })
}

/// Links the package files and writes each type's `PACKAGES` and `PACKAGES.gz`: the
/// locked stanzas of the mirrored packages, by name.
pub fn materialize(plan: &CranPlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    super::place_files(entry, cx, out)?;
    for kind in &plan.types {
        let layout = Layout::of(kind, &plan.r_version)?;
        let dir = format!("{}/{}", plan.path, layout.dir);
        let text = filtered_index(&layout, &format!("{dir}/"), entry)?;
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

/// The index of one type for the mirror: the stanzas locked with the package files
/// served under `prefix`, sorted by package name. Each stanza must name its own file
/// (a lock file is input too).
fn filtered_index(layout: &Layout, prefix: &str, entry: &LockedSource) -> Result<String> {
    let kind = &layout.kind;
    let mut chosen: BTreeMap<String, Stanza> = BTreeMap::new();
    for f in &entry.files {
        let Some(name) = f.path.as_deref().and_then(|p| p.strip_prefix(prefix)) else {
            continue;
        };
        let bad = |why: &str| {
            anyhow!("CRAN type `{kind}`: the lock's entry for {prefix}{name} {why}; run `imgbuild fetch --update`")
        };
        let text = f.stanza.as_deref().ok_or_else(|| bad("has no `stanza`"))?;
        let mut stanzas = dcf::parse(text).map_err(|e| bad(&format!("has a malformed `stanza` ({e})")))?;
        let st = match (stanzas.pop(), stanzas.is_empty()) {
            (Some(st), true) => st,
            _ => return Err(bad("has a `stanza` that is not exactly one package")),
        };
        let (pkg, _) = package_version(&st).map_err(|e| bad(&format!("has a `stanza` without a package ({e})")))?;
        if layout.file_name(&st).ok().as_deref() != Some(name) {
            return Err(bad("has a `stanza` that names another file"));
        }
        if chosen.contains_key(pkg) {
            return Err(bad(&format!("repeats package `{pkg}`")));
        }
        chosen.insert(pkg.to_string(), st);
    }
    if chosen.is_empty() {
        bail!("CRAN type `{kind}`: the lock has no packages under {prefix}; run `imgbuild fetch --update`");
    }
    Ok(dcf::render(chosen.values()))
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
        for kind in crate::recipe::catalogue::CRAN_TYPES {
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

    fn plan() -> CranPlan {
        CranPlan {
            packages: vec!["a".into()],
            r_version: "4.5".into(),
            types: vec!["source".into()],
            repo: "https://r.example".into(),
            path: "cran".into(),
        }
    }

    fn locked(url: &str, path: &str, stanza: &str) -> LockedFile {
        LockedFile {
            url: url.into(),
            path: Some(path.into()),
            stanza: Some(stanza.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_locked_source_package_falls_back_to_the_archive() {
        let p = plan();
        let f = locked(
            "https://r.example/src/contrib/a_1.tar.gz",
            "cran/src/contrib/a_1.tar.gz",
            "Package: a\nVersion: 1",
        );
        assert_eq!(
            fallback(&p, &f).as_deref(),
            Some("https://r.example/src/contrib/Archive/a/a_1.tar.gz")
        );
        let archived = LockedFile {
            url: "https://r.example/src/contrib/Archive/a/a_1.tar.gz".into(),
            ..f.clone()
        };
        assert_eq!(fallback(&p, &archived), None, "already the archive");
        let win = locked(
            "https://r.example/bin/windows/contrib/4.5/a_1.zip",
            "cran/bin/windows/contrib/4.5/a_1.zip",
            "Package: a\nVersion: 1",
        );
        assert_eq!(fallback(&p, &win), None, "CRAN archives source packages only");
    }

    #[test]
    fn the_index_is_rendered_from_the_locked_stanzas() {
        let layout = Layout::of("source", "4.5").unwrap();
        let prefix = "cran/src/contrib/";
        let b = locked("u", "cran/src/contrib/b_2.tar.gz", "Package: b\nVersion: 2\nMD5sum: 00");
        let a = locked(
            "u",
            "cran/src/contrib/a_1.tar.gz",
            "Package: a\nVersion: 1\nImports: b,\n  c",
        );
        let other = locked("u", "cran/bin/windows/contrib/4.5/a_1.zip", "Package: a\nVersion: 1");
        let entry = |files: Vec<LockedFile>| LockedSource {
            files,
            ..Default::default()
        };
        let text = filtered_index(&layout, prefix, &entry(vec![b.clone(), a.clone(), other])).unwrap();
        assert_eq!(
            text,
            "Package: a\nVersion: 1\nImports: b,\n  c\n\nPackage: b\nVersion: 2\nMD5sum: 00\n"
        );
        let wrong = LockedFile {
            stanza: Some("Package: b\nVersion: 3".into()),
            ..b.clone()
        };
        let bare = LockedFile { stanza: None, ..a };
        for (f, why) in [
            (wrong, "names another file"),
            (bare, "has no `stanza`"),
            (
                locked(
                    "u",
                    "cran/src/contrib/b_2.tar.gz",
                    "Package: b\nVersion: 2\n\nPackage: c\nVersion: 1",
                ),
                "not exactly one package",
            ),
        ] {
            let err = filtered_index(&layout, prefix, &entry(vec![f]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
            assert!(
                err.starts_with("CRAN type `source`: the lock's entry for cran/src/contrib/"),
                "{err}"
            );
            assert!(err.ends_with("run `imgbuild fetch --update`"), "{err}");
        }
        assert!(
            outdated(&entry(vec![LockedFile { path: None, ..b }])),
            "an upstream index"
        );
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
