//! The resolver: uv's `pip compile` run once per (Python version, platform) with
//! `--only-binary :all:` and `--format pylock.toml`, which names, for that target, exactly
//! the wheel of each package in the closure with its URL, size and SHA-256. uv is a
//! subprocess (argument vector, never a shell); its cache lives in imgbuild's cache so a
//! re-resolve is fast.

use crate::process::{Cmd, ProcessError};
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One wheel or sdist the resolver chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub project: String,
    pub version: String,
    pub filename: String,
    pub url: String,
    pub size: Option<u64>,
    pub sha256: String,
}

#[derive(Deserialize)]
struct Pylock {
    #[serde(default)]
    packages: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    wheels: Vec<LockFile>,
}

#[derive(Deserialize)]
struct LockFile {
    url: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// The uv program: `$IMGBUILD_UV`, else `uv` on PATH.
pub fn program() -> PathBuf {
    std::env::var_os("IMGBUILD_UV")
        .map(PathBuf::from)
        .unwrap_or_else(|| "uv".into())
}

/// What to resolve.
pub struct Target<'a> {
    pub python: &'a str,
    /// The platform as the recipe names it (for messages).
    pub platform: &'a str,
    /// uv's `--python-platform` value.
    pub uv_platform: &'a str,
}

/// uv's cache below imgbuild's, absolute: uv runs in a work directory of its own, where
/// a relative path (from `--cache-dir cache`) would give every run a throwaway cache.
pub fn cache_dir(cache: &crate::cache::Cache) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(cache.dir("uv-v1", "cache")?)?)
}

/// Any Python interpreter already on this machine, for `compile --python`.
///
/// uv wants an interpreter even when it resolves for another platform and version (it
/// would build sdists with it, which `--only-binary :all:` never does, and the choice
/// does not change the resolution). Asked for `--python-version X`, uv looks for that
/// version first and, when the host lacks it, tries to download one from GitHub: on
/// the benchmark machine that search and the failing download cost about 15 s per target,
/// five times the resolve itself. `uv python find` without a version request answers in
/// well under a second; `None` (no Python at all) leaves the choice to uv as before.
pub fn interpreter(uv_cache: &Path, work: &Path) -> Option<PathBuf> {
    fs_err::create_dir_all(work).ok()?;
    let out = Cmd::new(program())
        .args(["python", "find", "--no-config", "--no-project", "--no-python-downloads"])
        .env("UV_CACHE_DIR", uv_cache)
        .env("UV_NO_PROGRESS", "1")
        .cwd(work)
        .run_stdout()
        .ok()?;
    let path = PathBuf::from(out.trim());
    path.is_absolute().then_some(path)
}

/// Resolves `requirements` for one target; `work` is an empty directory of its own;
/// `python` is the interpreter uv may use (see [`interpreter`]).
/// What to resolve: the requirements, and whether their dependencies come too.
pub struct Wanted<'a> {
    pub requirements: &'a [String],
    /// Only what is named (the image's Debian packages provide the rest).
    pub no_deps: bool,
}

pub fn compile(
    wanted: &Wanted,
    index_url: &str,
    target: &Target,
    python: Option<&Path>,
    work: &Path,
    uv_cache: &Path,
    timeouts: crate::fetch::http::Timeouts,
) -> Result<Vec<Chosen>> {
    fs_err::create_dir_all(work)?;
    let req = work.join("requirements.in");
    fs_err::write(&req, wanted.requirements.join("\n") + "\n")?;
    let out = work.join("pylock.toml");
    let mut cmd = Cmd::new(program())
        .args([
            "pip",
            "compile",
            "--quiet",
            "--no-config",
            "--no-header",
            "--only-binary",
            ":all:",
        ])
        .args(["--format", "pylock.toml", "--python-version", target.python])
        .args(["--python-platform", target.uv_platform, "--index-url", index_url])
        .arg("--output-file")
        .arg(&out)
        .arg(&req)
        .env("UV_CACHE_DIR", uv_cache)
        .env("UV_NO_PROGRESS", "1")
        // uv's read timeout: the same no-progress limit as our own downloads.
        .env("UV_HTTP_TIMEOUT", timeouts.stall.as_secs().to_string())
        .cwd(work);
    if let Some(p) = python {
        cmd = cmd.arg("--python").arg(p).arg("--no-python-downloads");
    }
    if wanted.no_deps {
        cmd = cmd.arg("--no-deps");
    }
    if let Err(e) = cmd.run() {
        return Err(explain(e, target));
    }
    let text = fs_err::read_to_string(&out).with_context(|| format!("reading uv's output {}", out.display()))?;
    let all = parse(&text).with_context(|| format!("reading uv's output {}", out.display()))?;
    Ok(most_specific(all))
}

/// uv lists every wheel that fits the target; pip takes the most specific one, so only
/// those are kept: a CPython-version ABI wheel beats an abi3 one, which beats a pure one.
pub fn most_specific(all: Vec<Chosen>) -> Vec<Chosen> {
    let mut best: std::collections::BTreeMap<String, u8> = Default::default();
    for c in &all {
        let r = rank(&c.filename);
        let e = best.entry(c.project.clone()).or_insert(r);
        *e = (*e).max(r);
    }
    all.into_iter()
        .filter(|c| rank(&c.filename) == best[&c.project])
        .collect()
}

fn rank(filename: &str) -> u8 {
    let stem = filename.strip_suffix(".whl").unwrap_or(filename);
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    // rsplitn gives platform, abi, python, rest.
    match (parts.first(), parts.get(1)) {
        (Some(_), Some(&"abi3")) => 1,
        (Some(&"any"), Some(&"none")) => 0,
        (Some(_), Some(&"none")) => 1,
        (Some(_), Some(_)) => 2,
        _ => 0,
    }
}

/// Turns uv's failure into one message that names the target and keeps uv's reasons.
fn explain(e: ProcessError, t: &Target) -> anyhow::Error {
    match e {
        ProcessError::NotFound { .. } => anyhow!(
            "the resolver `uv` is not installed; install it with `pip install uv` (or ci/install-host-deps.sh), or point IMGBUILD_UV at it"
        ),
        ProcessError::Failed { stderr_tail, .. } => {
            let reasons: Vec<&str> = stderr_tail
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("hint:") && *l != "×")
                .map(|l| {
                    l.trim_start_matches("error: ")
                        .trim_start_matches("cause: ")
                        .trim_start_matches("╰─▶ ")
                })
                .filter(|l| *l != "No solution found when resolving dependencies:")
                .collect();
            anyhow!(
                "cannot resolve the wheels for Python {} on {} ({}): {}",
                t.python,
                t.platform,
                t.uv_platform,
                reasons.join(" ")
            )
        }
        other => anyhow!(other),
    }
}

/// Reads a pylock.toml: every wheel with its hash.
pub fn parse(text: &str) -> Result<Vec<Chosen>> {
    let lock: Pylock = toml::from_str(text)?;
    let mut out = Vec::new();
    for p in lock.packages {
        let version = p.version.unwrap_or_default();
        if p.wheels.is_empty() {
            bail!("`{}` {version} has no wheel in the resolution", p.name);
        }
        for w in p.wheels {
            let url = w.url.ok_or_else(|| anyhow!("`{}`: a wheel without a URL", p.name))?;
            let sha256 = w
                .hashes
                .get("sha256")
                .cloned()
                .ok_or_else(|| anyhow!("`{}`: {url} has no sha256 in the index", p.name))?;
            out.push(Chosen {
                project: p.name.clone(),
                version: version.clone(),
                filename: filename_of(&url)?,
                url,
                size: w.size,
                sha256,
            });
        }
    }
    Ok(out)
}

/// The last path segment of a URL, percent-decoded, checked to be a plain file name.
pub fn filename_of(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    let last = parsed.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let name = percent_decode(last);
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        bail!("`{url}` does not end in a file name");
    }
    Ok(name)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("x"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pylock() {
        let text = r#"
lock-version = "1.0"
[[packages]]
name = "numpy"
version = "2.5.5"
wheels = [{ url = "https://files.example/numpy-2.5.5-cp312-cp312-win_amd64.whl", size = 10, hashes = { sha256 = "ab" } }]
"#;
        let c = parse(text).unwrap();
        assert_eq!(c[0].filename, "numpy-2.5.5-cp312-cp312-win_amd64.whl");
        assert_eq!((c[0].size, c[0].sha256.as_str()), (Some(10), "ab"));
        let bad = text.replace(", hashes = { sha256 = \"ab\" }", "");
        assert!(parse(&bad).unwrap_err().to_string().contains("no sha256"));
        let pick = |f: &str| Chosen {
            project: "c".into(),
            version: "1".into(),
            filename: f.into(),
            url: f.into(),
            size: None,
            sha256: String::new(),
        };
        let kept = most_specific(vec![
            pick("c-1-py3-none-any.whl"),
            pick("c-1-cp37-abi3-win_amd64.whl"),
            pick("c-1-cp312-cp312-win_amd64.whl"),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].filename, "c-1-cp312-cp312-win_amd64.whl");
        assert_eq!(most_specific(vec![pick("c-1-py3-none-any.whl")]).len(), 1);
        assert_eq!(filename_of("https://x/a/b%2Bc.whl").unwrap(), "b+c.whl");
        assert!(filename_of("https://x/a/").is_err());
    }
}
