//! The fetch stage: mirror content (PyPI, CRAN, web sites, single files, Git
//! repositories) resolved and downloaded on the build host, verified, kept in a
//! content-addressed store shared by every recipe, pinned by a lock file beside the recipe,
//! and laid out as a directory tree that the rootfs stage adds to the image (or that
//! `imgbuild fetch --out DIR` publishes).
//!
//! Per source: when the lock holds an entry resolved from the same recipe settings, its
//! files are used exactly; otherwise the source is resolved afresh (online) and the lock
//! is rewritten. Then every locked file missing from the store is downloaded in parallel,
//! and the tree is written from the store alone.

pub mod cran;
pub mod debian_archive;
pub mod dns;
pub mod git;
pub mod help;
pub mod http;
pub mod lock;
pub mod npm;
pub mod pip_install;
pub mod pool;
pub mod publish;
pub mod pypi;
pub mod refused;
pub mod site;
pub mod store;
pub mod summary;
pub mod url_file;

use crate::cache::{Cache, Key};
use crate::recipe::plan_content::{ContentPlan, SourcePlan};
use crate::report::{Reporter, human_bytes, step};
use anyhow::{Context, Result, bail};
use lock::{LockFile, LockedSource};
use std::path::{Path, PathBuf};

/// How the lock may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchOptions {
    /// Resolve every source again, ignoring the lock (`--update`).
    pub update: bool,
    /// Use only the lock and the store; never touch the network (`--offline`).
    pub offline: bool,
    /// Fail instead of changing the lock (`--locked`).
    pub locked: bool,
    /// Time limits of every download (`--net-timeout`, `--net-deadline`).
    pub timeouts: http::Timeouts,
}

/// What every source needs while resolving and writing.
pub struct Cx<'a> {
    pub client: &'a http::Client,
    pub store: &'a store::Store,
    pub cache: &'a Cache,
    pub reporter: &'a dyn Reporter,
    /// Scratch space for resolver output and the like.
    pub scratch: &'a Path,
    /// `--offline`: tools run by a source (npm) must not use the network either.
    pub offline: bool,
}

/// Figures for the summary line and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: usize,
    /// Bytes of the files the tree serves (each stored once).
    pub bytes: u64,
    /// Bytes received from the network during this run.
    pub downloaded: u64,
    /// Sources resolved afresh (not taken from the lock).
    pub resolved: Vec<String>,
}

/// Fetches everything `plan` names and writes the tree into `out` (which must not exist
/// yet); downloads for the root file system (`files:` with a `url`) go below `root_out`
/// (with `imgbuild fetch`, None: they are only locked and cached). The lock at
/// `lock_path` is read, and rewritten when a source was resolved; the lock in force is
/// returned with the figures (the landing page lists what it pins).
pub fn fetch(
    plan: &ContentPlan,
    lock_path: &Path,
    opts: FetchOptions,
    cache: &Cache,
    out: &Path,
    root_out: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<(Stats, LockFile)> {
    let store = store::Store::open(cache.root())?;
    let client = http::Client::with_timeouts(plan.fetch_from.clone(), opts.timeouts);
    let scratch = tempfile::tempdir_in(store.partial_dir()).context("creating a scratch directory in the cache")?;
    let cx = Cx {
        client: &client,
        store: &store,
        cache,
        reporter,
        scratch: scratch.path(),
        offline: opts.offline,
    };
    let old = LockFile::read(lock_path)?;
    let mut lock = LockFile {
        version: lock::VERSION,
        sources: Default::default(),
    };
    let mut stats = Stats::default();
    for source in &plan.sources {
        let id = source.id();
        let inputs = Key::new("content-inputs-v1", source).hex;
        let entry = match old.sources.get(&id) {
            Some(e) if e.inputs == inputs && !opts.update && !outdated(source, e) => e.clone(),
            found => {
                let why = match found {
                    _ if opts.update => "--update",
                    Some(e) if e.inputs == inputs => "its entry was written by an older imgbuild",
                    Some(_) => "its recipe settings changed since the lock was written",
                    None => "it is not in the lock",
                };
                if opts.offline {
                    bail!(refused::Refused::new(
                        format!("--offline: content `{id}` must be resolved ({why}), which needs the network"),
                        "run the same command without --offline first",
                    ));
                }
                if opts.locked && !opts.update {
                    bail!(refused::Refused::new(
                        format!(
                            "--locked: content `{id}`: the lock {} is out of date ({why})",
                            lock_path.display()
                        ),
                        "run `imgbuild fetch --update`, or drop --locked",
                    ));
                }
                let mut e = step(reporter, &format!("resolve {id}"), || resolve(source, &cx))
                    .with_context(|| format!("content `{id}`"))?;
                e.inputs = inputs;
                stats.resolved.push(id.clone());
                e
            }
        };
        lock.sources.insert(id, entry);
    }
    ensure_stored(plan, &lock, &cx, opts.offline)?;
    fs_err::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    step(reporter, "write content tree", || -> Result<()> {
        for source in &plan.sources {
            let id = source.id();
            let entry = &lock.sources[&id];
            let dest = match source {
                s if s.is_root_file() => match root_out {
                    Some(r) => r,
                    None => continue,
                },
                _ => out,
            };
            materialize(source, entry, &cx, dest)
                .with_context(|| format!("content `{id}`: writing {}", source.path()))?;
        }
        let sites: Vec<&crate::recipe::plan_content::SitePlan> = plan
            .sources
            .iter()
            .filter_map(|s| match s {
                SourcePlan::Site(site) => Some(site),
                _ => None,
            })
            .collect();
        if !sites.is_empty() {
            site::write_index(&sites, out)?;
        }
        help::write(plan, &lock, out)
    })?;
    for (id, e) in &lock.sources {
        // Crawled pages are placed by URL rather than by a locked path; a redirect is
        // only a pointer to another entry.
        let site = id.starts_with("site/");
        for f in e
            .files
            .iter()
            .filter(|f| f.path.is_some() || (site && f.redirect.is_none()))
        {
            stats.files += 1;
            stats.bytes += f.size;
        }
    }
    // Nothing to pin (every source switched off) writes no lock beside the recipe.
    let nothing = lock.sources.is_empty() && old.sources.is_empty();
    if lock != old && !nothing {
        if opts.locked {
            bail!(refused::Refused::new(
                format!("--locked: the lock {} would change", lock_path.display()),
                "run `imgbuild fetch --update`, or drop --locked",
            ));
        }
        lock.write(lock_path)?;
        reporter.detail(&format!("wrote {}", lock_path.display()));
    }
    stats.downloaded = client.downloaded();
    reporter.detail(&format!(
        "content: {} files, {} served, {} downloaded",
        stats.files,
        human_bytes(stats.bytes),
        human_bytes(stats.downloaded)
    ));
    Ok((stats, lock))
}

/// A lock entry in a format this version no longer builds from (the inputs alone can't
/// tell), so it is resolved again like a changed one.
fn outdated(source: &SourcePlan, entry: &LockedSource) -> bool {
    match source {
        SourcePlan::Cran(_) => cran::outdated(entry),
        _ => false,
    }
}

fn resolve(source: &SourcePlan, cx: &Cx) -> Result<LockedSource> {
    match source {
        SourcePlan::Pypi(p) => pypi::resolve(p, cx),
        SourcePlan::Cran(c) => cran::resolve(c, cx),
        SourcePlan::Site(s) => site::resolve(s, cx),
        SourcePlan::File(f) => url_file::resolve(f, cx),
        SourcePlan::Git(g) => git::resolve(g, cx),
        SourcePlan::Npm(n) => npm::resolve(n, cx),
        SourcePlan::Pip(p) => pip_install::resolve(p, cx),
    }
}

fn materialize(source: &SourcePlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    match source {
        SourcePlan::Pypi(p) => pypi::materialize(p, entry, cx, out),
        SourcePlan::Cran(c) => cran::materialize(c, entry, cx, out),
        SourcePlan::Site(s) => site::materialize(s, entry, cx, out),
        SourcePlan::File(_) => place_files(entry, cx, out),
        SourcePlan::Git(g) => git::materialize(g, entry, cx, out),
        SourcePlan::Npm(n) => installed(source, entry, cx, out, "npm".as_ref(), |tree| {
            npm::materialize(n, entry, cx, tree)
        }),
        SourcePlan::Pip(p) => installed(source, entry, cx, out, &pypi::uv::program(), |tree| {
            pip_install::materialize(p, entry, cx, tree)
        }),
    }
}

/// npm and pip installs take minutes, and their result depends only on the plan, its
/// lock entry, the address rewrites and the installing tool: each is made once into the
/// stage cache, then hard-linked into `out` (an overlay-only rebuild reinstalls nothing).
fn installed(
    source: &SourcePlan,
    entry: &LockedSource,
    cx: &Cx,
    out: &Path,
    tool: &Path,
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    const BUCKET: &str = "installs-v1";
    let version = crate::process::Cmd::new(tool).arg("--version").run_stdout()?;
    let key = Key::new(
        BUCKET,
        &serde_json::json!({"source": source, "entry": entry, "via": cx.client.rewrites(), "tool": version.trim()}),
    );
    let (dir, cached) = cx
        .cache
        .get_or_build(BUCKET, &key, &format!("install {}", source.id()), |tmp| {
            install(&tmp.join("tree"))
        })?;
    if cached {
        cx.reporter
            .detail(&format!("{}: installed tree cached {}", source.id(), key.short()));
    }
    link_tree(&dir.join("tree"), out)
}

/// Recreates the tree `src` below `dest`: directories made, files hard-linked (copied
/// across file systems), symlinks copied as links.
fn link_tree(src: &Path, dest: &Path) -> Result<()> {
    fs_err::create_dir_all(dest)?;
    for e in fs_err::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dest.join(e.file_name()));
        let kind = e.file_type()?;
        if kind.is_dir() {
            link_tree(&from, &to)?;
            fs_err::set_permissions(&to, fs_err::metadata(&from)?.permissions())?;
        } else if kind.is_symlink() {
            let _ = fs_err::remove_file(&to);
            std::os::unix::fs::symlink(fs_err::read_link(&from)?, &to)
                .with_context(|| format!("linking {}", to.display()))?;
        } else {
            let _ = fs_err::remove_file(&to);
            if fs_err::hard_link(&from, &to).is_err() {
                fs_err::copy(&from, &to)?;
            }
        }
    }
    Ok(())
}

/// Links every locked file that has a destination into the tree.
pub fn place_files(entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    for f in &entry.files {
        if let Some(p) = &f.path {
            cx.store.materialize(&f.sha256, &safe_join(out, p)?)?;
        }
    }
    Ok(())
}

/// `root/rel`, refusing anything that would leave `root` (a lock file is input too).
pub fn safe_join(root: &Path, rel: &str) -> Result<PathBuf> {
    let bad = rel.is_empty()
        || rel.starts_with('/')
        || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || rel.contains('\0');
    if bad {
        bail!("`{rel}` is not a safe relative path");
    }
    Ok(root.join(rel))
}

/// Downloads every locked file missing from the store (all of them checked by hash);
/// offline, lists exactly what is missing instead.
fn ensure_stored(plan: &ContentPlan, lock: &LockFile, cx: &Cx, offline: bool) -> Result<()> {
    let mut jobs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for source in &plan.sources {
        let id = source.id();
        for f in &lock.sources[&id].files {
            if !cx.store.has(&f.sha256) && seen.insert(f.sha256.clone()) {
                jobs.push(pool::Job::locked(&id, f, fallback(source, f)));
            }
        }
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let total: u64 = jobs.iter().filter_map(|j| j.expect.size).sum();
    if offline {
        let list: Vec<String> = jobs
            .iter()
            .map(|j| {
                let or = j.fallback.as_ref().map(|f| format!(" or {f}")).unwrap_or_default();
                format!(
                    "  {}: {}{or} ({})",
                    j.label,
                    j.url,
                    human_bytes(j.expect.size.unwrap_or(0))
                )
            })
            .collect();
        bail!(refused::Refused::new(
            format!(
                "--offline: {} files ({}) are not in the cache:\n{}",
                jobs.len(),
                human_bytes(total),
                list.join("\n")
            ),
            "run the same command without --offline where the network is reachable",
        ));
    }
    step(
        cx.reporter,
        &format!("download {} files ({})", jobs.len(), human_bytes(total)),
        || pool::fetch_many(cx, &jobs, total).map(|_| ()),
    )
}

/// Where else a locked file may be found now: upstreams move files after the lock was
/// written (CRAN archives a source package once a newer version replaces it).
fn fallback(source: &SourcePlan, f: &lock::LockedFile) -> Option<String> {
    match source {
        SourcePlan::Cran(c) => cran::fallback(c, f),
        _ => None,
    }
}
