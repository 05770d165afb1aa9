//! Git repositories mirrored bare (to seed Gitea with lesson repositories): cloned with
//! `git clone --mirror` into the cache (`git-v1/<digest of URL>.git`), refreshed with
//! `git remote update` when the lock is written, and pinned by the lock to the commit of
//! every branch and tag. The tree gets a fresh bare copy whose refs are exactly the
//! locked ones.

use super::Cx;
use super::lock::LockedSource;
use crate::process::Cmd;
use crate::recipe::plan_content::GitPlan;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn mirror_dir(plan: &GitPlan, cx: &Cx) -> Result<PathBuf> {
    let d = cx.cache.dir("git-v1", "")?;
    Ok(d.join(format!("{}.git", &crate::digest::sha256_hex(plan.url.as_bytes())[..32])))
}

fn git() -> Cmd {
    // No prompts, no user or system config: the same behaviour on every host.
    Cmd::new("git")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
}

/// git's own form of `content.fetch_from`, so the mirror's remote stays the upstream URL.
fn git_via(cx: &Cx) -> Cmd {
    // A transfer below 1 KB/s for the no-progress limit is given up, as our own are.
    let stall = cx.client.timeouts().stall.as_secs();
    let mut cmd = git()
        .args(["-c", "http.lowSpeedLimit=1000", "-c"])
        .arg(format!("http.lowSpeedTime={stall}"));
    for (from, to) in cx.client.rewrites() {
        cmd = cmd.arg("-c").arg(format!("url.{to}.insteadOf={from}"));
    }
    cmd
}

pub fn resolve(plan: &GitPlan, cx: &Cx) -> Result<LockedSource> {
    let dir = mirror_dir(plan, cx)?;
    let _lock = crate::cache::lock::Lock::exclusive(&dir.with_extension("lock"))?;
    if dir.join("HEAD").is_file() {
        git_via(cx)
            .arg("--git-dir")
            .arg(&dir)
            .args(["remote", "update", "--prune"])
            .run()
            .with_context(|| format!("updating the mirror of {}", plan.url))?;
    } else {
        let tmp = dir.with_extension("partial");
        let _ = fs_err::remove_dir_all(&tmp);
        git_via(cx)
            .args(["clone", "--mirror", "--quiet", "--", &plan.url])
            .arg(&tmp)
            .run()
            .with_context(|| format!("cloning {}", plan.url))?;
        fs_err::rename(&tmp, &dir)?;
    }
    Ok(LockedSource {
        inputs: String::new(),
        files: vec![],
        refs: refs(&dir)?,
        package_lock: None,
    })
}

/// Branches and tags of a bare repository → commit (or tag object) id.
fn refs(dir: &Path) -> Result<BTreeMap<String, String>> {
    let out = git()
        .arg("--git-dir")
        .arg(dir)
        .args([
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ])
        .run_stdout()?;
    let refs: BTreeMap<String, String> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, name)| (name.to_string(), id.to_string()))
        .collect();
    if refs.is_empty() {
        bail!("{} has no branches or tags", dir.display());
    }
    Ok(refs)
}

pub fn materialize(plan: &GitPlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    let src = mirror_dir(plan, cx)?;
    if !src.join("HEAD").is_file() {
        bail!(super::refused::Refused::new(
            format!("--offline: the mirror of {} is not in the cache", plan.url),
            "run the same command without --offline first",
        ));
    }
    let dest = super::safe_join(out, &plan.path)?;
    if let Some(parent) = dest.parent() {
        fs_err::create_dir_all(parent)?;
    }
    git().args(["init", "--bare", "--quiet"]).arg(&dest).run()?;
    // Exactly the locked refs, whatever the cached mirror has learnt since.
    let mut push = git().arg("--git-dir").arg(&src).args(["push", "--quiet"]).arg(&dest);
    for (name, id) in &entry.refs {
        push = push.arg(format!("{id}:{name}"));
    }
    push.run().with_context(|| {
        format!(
            "copying the locked refs of {} (is the cache missing commits?)",
            plan.url
        )
    })?;
    if let Some(head) = entry
        .refs
        .keys()
        .find(|r| *r == "refs/heads/main" || *r == "refs/heads/master")
    {
        git()
            .arg("--git-dir")
            .arg(&dest)
            .args(["symbolic-ref", "HEAD", head])
            .run()?;
    }
    // Served over plain HTTP (dumb protocol) as well as read by Gitea.
    git().arg("--git-dir").arg(&dest).args(["update-server-info"]).run()?;
    Ok(())
}
