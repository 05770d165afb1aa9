//! Python packages installed into the root file system (`files: {DIR: {pip: ...}}`), e.g.
//! extra libraries for JupyterHub's notebooks: resolved by uv for the image's Python and
//! platform (wheels only: nothing is built, on the host or under emulation), each wheel
//! locked and stored like the PyPI mirror's, then installed into the directory by uv on
//! the build host from the stored wheels alone.

use super::Cx;
use super::lock::{LockedFile, LockedSource};
use super::pypi::uv;
use crate::process::Cmd;
use crate::recipe::plan_pip::PipPlan;
use anyhow::{Context, Result, bail};
use std::path::Path;

pub fn resolve(plan: &PipPlan, cx: &Cx) -> Result<LockedSource> {
    let cache = uv::cache_dir(cx.cache)?;
    let python = uv::interpreter(&cache, &cx.scratch.join("uv-python"));
    let target = uv::Target {
        python: &plan.python,
        platform: &plan.uv_platform,
        uv_platform: &plan.uv_platform,
    };
    let work = cx
        .scratch
        .join(format!("pip-{}", crate::digest::sha256_hex(plan.target.as_bytes())));
    let chosen = uv::compile(
        &uv::Wanted {
            requirements: &plan.requirements,
            no_deps: plan.no_deps,
        },
        &cx.client.via(&plan.index_url),
        &target,
        python.as_deref(),
        &work,
        &cache,
        cx.client.timeouts(),
    )?;
    // The download step fetches them all in parallel, checked by hash; only a wheel whose
    // size uv did not report is fetched here, to learn it.
    let mut files = Vec::new();
    for c in chosen {
        let size = match c.size {
            Some(n) => n,
            None => {
                let expect = super::http::Expect {
                    sha256: Some(c.sha256.clone()),
                    ..Default::default()
                };
                cx.client.download(cx.store, &c.url, &expect)?.size
            }
        };
        files.push(LockedFile {
            url: cx.client.upstream(&c.url),
            size,
            sha256: c.sha256,
            ..Default::default()
        });
    }
    Ok(LockedSource {
        files,
        ..Default::default()
    })
}

/// Installs the locked wheels into `out/target` (no index, no dependency resolution:
/// the lock is the whole closure). Scripts go: their `#!` would name the build host's
/// Python. A directory that already holds packages (Debian's own, from the bootstrap)
/// keeps them: this tree is added on top.
pub fn materialize(plan: &PipPlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    let dest = super::safe_join(out, &plan.target)?;
    let wheels = tempfile::tempdir_in(cx.scratch)?;
    let mut args = Vec::new();
    for f in &entry.files {
        let name = uv::filename_of(&f.url)?;
        if !name.ends_with(".whl") || name.contains('/') {
            bail!("`{}` is not a wheel; run `imgbuild fetch --update`", f.url);
        }
        let path = wheels.path().join(&name);
        cx.store.materialize(&f.sha256, &path)?;
        args.push(path);
    }
    let cache = uv::cache_dir(cx.cache)?;
    let mut cmd = Cmd::new(uv::program())
        .args([
            "pip",
            "install",
            "--quiet",
            "--no-config",
            "--no-deps",
            "--no-index",
            "--link-mode",
            "copy",
        ])
        .args(["--only-binary", ":all:", "--python-version", &plan.python])
        .args(["--python-platform", &plan.uv_platform])
        .arg("--target")
        .arg(&dest)
        .args(&args)
        .env("UV_CACHE_DIR", &cache)
        .env("UV_NO_PROGRESS", "1")
        .cwd(wheels.path());
    if let Some(p) = uv::interpreter(&cache, &cx.scratch.join("uv-python")) {
        cmd = cmd.arg("--python").arg(p).arg("--no-python-downloads");
    }
    cmd.run()
        .with_context(|| format!("installing {} wheels into /{}", args.len(), plan.target))?;
    let bin = dest.join("bin");
    if bin.is_dir() {
        fs_err::remove_dir_all(&bin).with_context(|| format!("removing {}", bin.display()))?;
    }
    // uv's lock for concurrent installs into the directory, not part of it.
    let _ = fs_err::remove_file(dest.join(".lock"));
    Ok(())
}
