//! The checked plan of the `content:` section: named sets and lesson groups expanded,
//! defaults applied, URLs, versions, platforms and destination paths checked — so the
//! fetch stage never sees an ill-formed source.

use super::catalogue::{
    CRAN_SETS, CRAN_TYPES, DEFAULT_BASE_URL, DEFAULT_CRAN_REPO, DEFAULT_DEST, DEFAULT_PYPI_INDEX, LESSONS,
    PYPI_PLATFORMS, PYPI_SETS,
};
use super::checker::Checker;
use super::error::RecipeError;
use super::merge_list::MergeList;
use super::model::Recipe;
use super::model_content::{ContentSpec, CranSpec, PypiSpec, UrlSpec};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentPlan {
    /// Destination in the root file system, without the leading `/`.
    pub dest: String,
    pub base_url: String,
    pub sources: Vec<SourcePlan>,
    /// (upstream prefix, prefix to download from instead), longest upstream first.
    pub fetch_from: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcePlan {
    Pypi(PypiPlan),
    Cran(CranPlan),
    Site(SitePlan),
    File(FilePlan),
    Git(GitPlan),
    /// A `files:` directory filled by an npm package.
    Npm(super::plan_npm::NpmPlan),
    /// A `files:` directory filled by Python packages.
    Pip(super::plan_pip::PipPlan),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PypiPlan {
    pub requirements: Vec<String>,
    pub python: Vec<String>,
    /// (name as written, uv target)
    pub platforms: Vec<(String, String)>,
    pub sdists: bool,
    pub index_url: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CranPlan {
    pub packages: Vec<String>,
    pub r_version: String,
    pub types: Vec<String>,
    pub repo: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SitePlan {
    pub name: String,
    pub url: String,
    pub group: String,
    pub title: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilePlan {
    pub name: String,
    pub url: Option<String>,
    pub sha256: Option<String>,
    /// (index page, pattern with a `version` group)
    pub latest: Option<(String, String)>,
    /// Directory under the content root.
    pub path: String,
    /// Instead, this exact path in the root file system (no leading `/`): a `files:`
    /// entry with a `url`, e.g. a service's binary.
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GitPlan {
    pub name: String,
    pub url: String,
    pub path: String,
}

impl SourcePlan {
    /// The key of the source in the lock file.
    pub fn id(&self) -> String {
        match self {
            SourcePlan::Pypi(_) => "pypi".into(),
            SourcePlan::Cran(_) => "cran".into(),
            SourcePlan::Site(s) => format!("site/{}", s.name),
            SourcePlan::File(f) => match &f.target {
                Some(t) => format!("rootfs/{t}"),
                None => format!("file/{}", f.name),
            },
            SourcePlan::Git(g) => format!("git/{}", g.name),
            SourcePlan::Npm(n) => format!("rootfs/{}", n.target),
            SourcePlan::Pip(p) => format!("rootfs/{}", p.target),
        }
    }

    /// A `files:` download into the root file system rather than served content.
    pub fn is_root_file(&self) -> bool {
        matches!(self, SourcePlan::File(f) if f.target.is_some())
            || matches!(self, SourcePlan::Npm(_) | SourcePlan::Pip(_))
    }

    /// The directory the source fills, relative to the content root.
    pub fn path(&self) -> &str {
        match self {
            SourcePlan::Pypi(p) => &p.path,
            SourcePlan::Cran(c) => &c.path,
            SourcePlan::Site(s) => &s.path,
            SourcePlan::File(f) => &f.path,
            SourcePlan::Git(g) => &g.path,
            SourcePlan::Npm(n) => &n.target,
            SourcePlan::Pip(p) => &p.target,
        }
    }
}

pub(super) fn items(list: &Option<MergeList<String>>) -> Vec<String> {
    list.as_ref().map(|l| l.items.clone()).unwrap_or_default()
}

/// Checks the `content:` section; None when the recipe has none.
pub fn content(recipe: &Recipe, ck: &Checker) -> Result<Option<ContentPlan>, RecipeError> {
    let downloads = root_files(recipe, ck)?;
    let none = ContentSpec::default();
    let spec = match &recipe.content {
        Some(spec) => spec,
        None if downloads.is_empty() => return Ok(None),
        None => &none,
    };
    let dest = match &spec.dest {
        Some(d) => crate::rootpath::mount_point(d).map_err(|m| ck.err("content.dest", m))?,
        None => format!("/{DEFAULT_DEST}"),
    };
    if dest == "/" {
        return Err(ck.err(
            "content.dest",
            "content can't fill the whole root file system; use a directory such as `/var/www/html`",
        ));
    }
    let base_url = spec.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.into());
    check_url(&base_url, "content.base_url", ck)?;
    let mut sources = Vec::new();
    if let Some(p) = &spec.pypi {
        sources.push(SourcePlan::Pypi(pypi(p, ck)?));
    }
    if let Some(c) = &spec.cran {
        sources.push(SourcePlan::Cran(cran(c, ck)?));
    }
    sources.extend(sites(spec, ck)?);
    for (name, f) in spec.files.iter().flatten() {
        let Some(f) = f else { continue };
        sources.push(SourcePlan::File(file(name, f, ck)?));
    }
    for (name, g) in spec.git.iter().flatten() {
        let Some(g) = g else { continue };
        let field = format!("content.git.{name}");
        check_name(name, &field, ck)?;
        check_url_or_path(&g.url, &format!("{field}.url"), ck)?;
        let path = g.path.clone().unwrap_or_else(|| format!("git/{name}.git"));
        sources.push(SourcePlan::Git(super::plan_content::GitPlan {
            name: name.clone(),
            url: g.url.clone(),
            path: rel_path(&path, &format!("{field}.path"), ck)?,
        }));
    }
    sources.extend(downloads);
    // Two sources filling one directory would overwrite each other (files share theirs).
    let mut seen = BTreeSet::new();
    for s in &sources {
        if !matches!(s, SourcePlan::File(_) | SourcePlan::Npm(_) | SourcePlan::Pip(_))
            && !seen.insert(s.path().to_string())
        {
            return Err(ck.err(
                "content",
                format!("two sources write to `{}`; give one a different `path`", s.path()),
            ));
        }
    }
    Ok(Some(ContentPlan {
        dest: dest.trim_start_matches('/').to_string(),
        base_url: base_url.trim_end_matches('/').to_string(),
        sources,
        fetch_from: fetch_from(spec, ck)?,
    }))
}

/// Checks `content.fetch_from`: whole-directory prefixes (ending in `/`), so
/// `https://example.org/` can't also match `https://example.org.evil/`.
fn fetch_from(spec: &ContentSpec, ck: &Checker) -> Result<Vec<(String, String)>, RecipeError> {
    let mut out = Vec::new();
    for (from, to) in spec.fetch_from.iter().flatten() {
        let field = format!("content.fetch_from.{from}");
        for u in [from, to] {
            check_url(u, &field, ck)?;
            if !u.ends_with('/') {
                return Err(ck.err(&field, format!("`{u}` must end with `/` (a directory prefix)")));
            }
        }
        out.push((from.clone(), to.clone()));
    }
    out.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

fn expand_sets(
    sets: &[String],
    known: &[(&str, &[&str])],
    field: &str,
    ck: &Checker,
) -> Result<Vec<String>, RecipeError> {
    let mut out = Vec::new();
    for s in sets {
        let Some((_, pkgs)) = known.iter().find(|(n, _)| n == s) else {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            return Err(ck.err(field, format!("unknown set `{s}`; known sets: {}", names.join(", "))));
        };
        out.extend(pkgs.iter().map(|p| p.to_string()));
    }
    Ok(out)
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

/// One requirement as the resolver reads it from a requirements file: a name with
/// optional extras, version and marker. Not an option (`-r FILE`, `--index-url`), and
/// one line only, so nothing a recipe lists can make the resolver read another file.
pub fn check_requirement(r: &str, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    let bad = r.trim().is_empty()
        || r.trim_start().starts_with('-')
        || r.chars().any(char::is_control)
        // A direct reference to a host file would read outside what the recipe lists.
        || r.contains("file:")
        || r.contains(char::is_whitespace) && !r.contains(['<', '>', '=', '~', ';', '@']);
    if bad {
        return Err(ck.err(
            field,
            format!(
                "`{}` is not a requirement such as `numpy` or `pandas>=2`",
                r.escape_debug()
            ),
        ));
    }
    Ok(())
}

fn pypi(p: &PypiSpec, ck: &Checker) -> Result<PypiPlan, RecipeError> {
    let mut reqs = items(&p.packages);
    reqs.extend(expand_sets(&items(&p.sets), PYPI_SETS, "content.pypi.sets", ck)?);
    let reqs = dedup(reqs);
    if reqs.is_empty() {
        return Err(ck.err(
            "content.pypi.packages",
            "no packages; list some or name a set (`sets: [software-carpentry]`)",
        ));
    }
    for r in &reqs {
        check_requirement(r, "content.pypi.packages", ck)?;
    }
    let python = dedup(items(&p.python));
    if python.is_empty() {
        return Err(ck.err(
            "content.pypi.python",
            "missing; list Python versions such as `[\"3.12\"]`",
        ));
    }
    for v in &python {
        let ok = v
            .strip_prefix("3.")
            .is_some_and(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(ck.err(
                "content.pypi.python",
                format!("`{v}` is not a Python version such as \"3.12\""),
            ));
        }
    }
    let mut platforms = Vec::new();
    for name in dedup(items(&p.platforms)) {
        let target = PYPI_PLATFORMS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string());
        let target = match target {
            Some(t) => t,
            None if name.contains('-') => name.clone(),
            None => {
                let names: Vec<&str> = PYPI_PLATFORMS.iter().map(|(n, _)| *n).collect();
                return Err(ck.err(
                    "content.pypi.platforms",
                    format!(
                        "unknown platform `{name}`; use one of {} or a uv target such as `aarch64-manylinux_2_36`",
                        names.join(", ")
                    ),
                ));
            }
        };
        platforms.push((name, target));
    }
    if platforms.is_empty() {
        return Err(ck.err(
            "content.pypi.platforms",
            "missing; list platforms such as `[win_amd64, macosx_arm64]`",
        ));
    }
    let index_url = p.index_url.clone().unwrap_or_else(|| DEFAULT_PYPI_INDEX.into());
    check_url(&index_url, "content.pypi.index_url", ck)?;
    Ok(PypiPlan {
        requirements: reqs,
        python,
        platforms,
        sdists: p.sdists.unwrap_or(false),
        index_url: index_url.trim_end_matches('/').to_string(),
        path: rel_path(p.path.as_deref().unwrap_or("pypi"), "content.pypi.path", ck)?,
    })
}

fn cran(c: &CranSpec, ck: &Checker) -> Result<CranPlan, RecipeError> {
    let mut pkgs = items(&c.packages);
    pkgs.extend(expand_sets(&items(&c.sets), CRAN_SETS, "content.cran.sets", ck)?);
    let pkgs = dedup(pkgs);
    if pkgs.is_empty() {
        return Err(ck.err(
            "content.cran.packages",
            "no packages; list some or name a set (`sets: [data-carpentry]`)",
        ));
    }
    for p in &pkgs {
        if !p.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.') {
            return Err(ck.err("content.cran.packages", format!("`{p}` is not a CRAN package name")));
        }
    }
    let r_version = c.r_version.clone().ok_or_else(|| {
        ck.err(
            "content.cran.r_version",
            "missing; give the R version the binaries are for, e.g. \"4.5\"",
        )
    })?;
    let ok = r_version.split('.').count() == 2
        && r_version
            .split('.')
            .all(|x| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit()));
    if !ok {
        return Err(ck.err(
            "content.cran.r_version",
            format!("`{r_version}` is not an R version X.Y such as \"4.5\""),
        ));
    }
    let mut types = dedup(items(&c.types));
    if types.is_empty() {
        types = CRAN_TYPES.iter().map(|t| t.to_string()).collect();
    }
    for t in &types {
        if !CRAN_TYPES.contains(&t.as_str()) {
            return Err(ck.err(
                "content.cran.types",
                format!("unknown type `{t}`; use {}", CRAN_TYPES.join(", ")),
            ));
        }
    }
    let repo = c.repo.clone().unwrap_or_else(|| DEFAULT_CRAN_REPO.into());
    check_url(&repo, "content.cran.repo", ck)?;
    Ok(CranPlan {
        packages: pkgs,
        r_version,
        types,
        repo: repo.trim_end_matches('/').to_string(),
        path: rel_path(c.path.as_deref().unwrap_or("cran"), "content.cran.path", ck)?,
    })
}

fn sites(spec: &ContentSpec, ck: &Checker) -> Result<Vec<SourcePlan>, RecipeError> {
    let mut out = Vec::new();
    for group in dedup(items(&spec.lessons)) {
        let Some((_, base, names)) = LESSONS.iter().find(|(g, _, _)| *g == group) else {
            let groups: Vec<&str> = LESSONS.iter().map(|(g, _, _)| *g).collect();
            return Err(ck.err(
                "content.lessons",
                format!("unknown lesson group `{group}`; use {}", groups.join(", ")),
            ));
        };
        for name in *names {
            out.push(SourcePlan::Site(SitePlan {
                name: name.to_string(),
                url: format!("{base}{name}/"),
                group: group.clone(),
                title: name.to_string(),
                path: format!("lessons/{group}/{name}"),
            }));
        }
    }
    for (name, s) in spec.sites.iter().flatten() {
        let Some(s) = s else { continue };
        let field = format!("content.sites.{name}");
        check_name(name, &field, ck)?;
        check_url(&s.url, &format!("{field}.url"), ck)?;
        let group = s.group.clone().unwrap_or_else(|| "sites".into());
        check_name(&group, &format!("{field}.group"), ck)?;
        // A site named like a built-in lesson replaces it.
        out.retain(|o| !matches!(o, SourcePlan::Site(x) if x.name == *name));
        out.push(SourcePlan::Site(SitePlan {
            name: name.clone(),
            url: s.url.clone(),
            title: s.title.clone().unwrap_or_else(|| name.clone()),
            path: format!("lessons/{group}/{name}"),
            group,
        }));
    }
    Ok(out)
}

fn file(name: &str, f: &UrlSpec, ck: &Checker) -> Result<FilePlan, RecipeError> {
    let field = format!("content.files.{name}");
    check_name(name, &field, ck)?;
    file_at(&field, name, f, ck)
}

fn file_at(field: &str, name: &str, f: &UrlSpec, ck: &Checker) -> Result<FilePlan, RecipeError> {
    let field = field.to_string();
    if let Some(u) = &f.url {
        check_url(u, &format!("{field}.url"), ck)?;
    }
    if let Some(s) = &f.sha256
        && (s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ck.err(&format!("{field}.sha256"), "not a SHA-256 (64 hex digits)"));
    }
    let latest = match &f.latest {
        Some(l) => {
            check_url(&l.index, &format!("{field}.latest.index"), ck)?;
            let re = regex::Regex::new(&l.pattern).map_err(|e| {
                ck.err(
                    &format!("{field}.latest.pattern"),
                    format!("not a regular expression: {e}"),
                )
            })?;
            if !re.capture_names().any(|n| n == Some("version")) {
                return Err(ck.err(
                    &format!("{field}.latest.pattern"),
                    "needs a named group `(?P<version>...)`",
                ));
            }
            Some((l.index.clone(), l.pattern.clone()))
        }
        None => None,
    };
    match (&f.url, &latest, &f.sha256) {
        (Some(_), Some(_), _) => return Err(ck.err(&field, "give either `url` or `latest`, not both")),
        (None, None, _) => {
            return Err(ck.err(
                &format!("{field}.url"),
                "missing; give `url` (with `sha256`) or a `latest` rule",
            ));
        }
        (Some(_), None, None) => {
            return Err(ck.err(
                &format!("{field}.sha256"),
                "missing; pin the file's SHA-256, or use a `latest` rule and let the lock pin it",
            ));
        }
        _ => {}
    }
    Ok(FilePlan {
        name: name.into(),
        url: f.url.clone(),
        sha256: f.sha256.as_ref().map(|s| s.to_ascii_lowercase()),
        latest,
        path: if f.path == "." {
            String::new()
        } else {
            rel_path(&f.path, &format!("{field}.path"), ck)?
        },
        target: None,
    })
}

/// `files:` entries with a `url`, `latest`, `npm` or `pip`: downloads into the root file
/// system.
fn root_files(recipe: &Recipe, ck: &Checker) -> Result<Vec<SourcePlan>, RecipeError> {
    let mut out = Vec::new();
    for (path, attrs) in recipe.files.iter().flatten() {
        let Some(a) = attrs
            .as_ref()
            .filter(|a| a.url.is_some() || a.latest.is_some() || a.npm.is_some() || a.pip.is_some())
        else {
            continue;
        };
        let field = format!("files.{path}");
        let target = crate::rootpath::normalize(path).map_err(|m| ck.err(&field, m))?;
        let fillers = [
            a.url.is_some() || a.latest.is_some() || a.sha256.is_some(),
            a.npm.is_some(),
            a.pip.is_some(),
        ];
        if fillers.iter().filter(|f| **f).count() > 1 {
            return Err(ck.err(
                &field,
                "give one of `url` (or `latest`), `npm` or `pip`: each fills the path by itself",
            ));
        }
        if let Some(p) = &a.pip {
            let arch = recipe.rootfs.as_ref().and_then(|r| r.architecture.as_deref());
            out.extend(super::plan_pip::plan(p, arch, &field, target, ck)?.map(SourcePlan::Pip));
            continue;
        }
        if let Some(spec) = &a.npm {
            out.push(SourcePlan::Npm(super::plan_npm::plan(spec, &field, target, ck)?));
            continue;
        }
        let parent = target.rsplit_once('/').map_or("", |(d, _)| d);
        let spec = UrlSpec {
            url: a.url.clone(),
            sha256: a.sha256.clone(),
            latest: a.latest.clone(),
            path: if parent.is_empty() { ".".into() } else { parent.into() },
        };
        let mut plan = file_at(&field, &target, &spec, ck)?;
        plan.target = Some(target);
        out.push(SourcePlan::File(plan));
    }
    Ok(out)
}

fn check_name(name: &str, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ck.err(
            field,
            format!("`{name}` may only use letters, digits, `-`, `_` and `.`"),
        ))
    }
}

pub(super) fn check_url(u: &str, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => Ok(()),
        _ => Err(ck.err(field, format!("`{u}` is not an http(s) URL"))),
    }
}

fn check_url_or_path(u: &str, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https" | "file" | "git" | "ssh") => Ok(()),
        _ => Err(ck.err(
            field,
            format!("`{u}` is not a clone URL (https://, file://, git:// or ssh://)"),
        )),
    }
}

/// A destination below the content root: relative, no `..`, no empty parts.
fn rel_path(p: &str, field: &str, ck: &Checker) -> Result<String, RecipeError> {
    let trimmed = p.trim_matches('/');
    let bad =
        trimmed.is_empty() || p.starts_with('/') || trimmed.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(ck.err(
            field,
            format!("`{p}` must be a relative path below the content root, without `..`"),
        ));
    }
    Ok(trimmed.to_string())
}
