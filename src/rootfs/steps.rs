//! The recipe's steps, run in the target one after another. Each step has a cache key
//! made of the step and the key before it; a step with secrets has none (nor has
//! anything after it: the plan runs those steps last). A keyed step's result — a whole
//! root archive — is stored when it is worth its space: the step ran for [`KEEP_AFTER`]
//! or longer (its time is stored beside it), or it is the last step with a key; so a
//! failed or interrupted build resumes after its last long step, redoing the quick ones
//! after it. The step where a later image of the run goes on is stored too, and stays
//! once the build succeeds only if that image looked it up. A rebuild resumes after the
//! last stored step whose key is unchanged.
//! Each step's output goes to `<out>/logs/NN-name.log`; a failing step names itself and
//! shows the tail of its log.

use super::Ctx;
use super::branch::{self, Layers};
use super::inroot::Root;
use crate::cache::Key;
use crate::process::Cmd;
use crate::recipe::plan_rootfs::{StepCommand, StepPlan};
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

const BUCKET: &str = "steps-v1";

/// A step that ran this long is kept in the cache even when later steps are too: a
/// root archive takes seconds to pack and a GB or two to keep, a quick step less to redo.
const KEEP_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `steps` on the archive `base` (whose cache key is `base_key`); returns the
/// resulting archive and its key (`uncached` when a step with secrets ran).
/// `epoch`: the build's time, handed to every step as SOURCE_DATE_EPOCH.
pub fn run(
    base: PathBuf,
    base_key: &Key,
    steps: &[StepPlan],
    ctx: &Ctx,
    epoch: Option<i64>,
) -> Result<(PathBuf, String)> {
    if steps.is_empty() {
        return Ok((base, base_key.hex.clone()));
    }
    let mut keys: Vec<Option<Key>> = Vec::new();
    let mut prev = Some(base_key.hex.clone());
    for s in steps {
        let key = match (&prev, s.secrets.is_empty()) {
            (Some(p), true) => Some(Key::new(
                BUCKET,
                &serde_json::json!({"prev": p, "name": s.name, "command": command_digest(s)?, "env": s.env, "epoch": epoch}),
            )),
            _ => None,
        };
        prev = key.as_ref().map(|k| k.hex.clone());
        keys.push(key);
    }
    // Resume after the last step whose result is kept (not every step's is).
    let mut start = 0;
    let mut tar = base;
    for (i, k) in keys.iter().enumerate().rev() {
        if let Some(dir) = k.as_ref().and_then(|k| ctx.cache.lookup(BUCKET, k)) {
            start = i + 1;
            tar = dir.join("rootfs.tar");
            break;
        }
    }
    let last_keyed = keys.iter().rposition(Option::is_some);
    // Of the stored steps before the one this image resumes from, a successful run keeps
    // only those worth their space (an earlier, failed run stored them all).
    for (i, k) in keys.iter().enumerate().take(start.saturating_sub(1)) {
        if let Some(k) = k
            && let Some(dir) = ctx.cache.peek(BUCKET, k)
            && took(&dir).is_some_and(|t| !worth_keeping(i, t, last_keyed))
        {
            ctx.cache.mark_transient(BUCKET, k);
        }
    }
    // A root directory an earlier image of this run left (see [`super::branch`]) at or
    // after that step: go on from there, with nothing unpacked. It has no archive of its
    // own unless the step was worth one.
    let left = (start.saturating_sub(1)..steps.len())
        .rev()
        .find_map(|i| keys[i].as_ref().and_then(|k| ctx.branches.get(&k.hex)).map(|d| (i, d)));
    if let Some((i, lower)) = &left
        && i + 1 == steps.len()
        && let Some(k) = &keys[*i]
    {
        // This image's steps all ran there: its root is that directory as it is.
        let (dir, _) = ctx
            .cache
            .get_or_build(BUCKET, k, &format!("step {}", steps[*i].name), |out| {
                super::dir::pack(lower, &out.join("rootfs.tar"))
            })?;
        start = steps.len();
        tar = dir.join("rootfs.tar");
    }
    let cached = left.as_ref().map_or(start, |(i, _)| start.max(i + 1));
    for s in &steps[..cached] {
        ctx.reporter.detail(&format!("step {}: cached", s.name));
    }
    if start == steps.len() {
        return Ok((tar, final_key(&keys)));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "steps: running steps in the target needs root (mounts and chroot); run imgbuild as root, e.g. with sudo"
        );
    }
    let layers = Layers {
        root: ctx.staging.path("root"),
        upper: ctx.staging.path("upper"),
        work: ctx.staging.path("work"),
    };
    let root = layers.root.clone();
    let mut overlay = None;
    if let Some((i, lower)) = left {
        match branch::mount(&lower, &layers) {
            Ok(o) => {
                ctx.reporter.detail(&format!(
                    "steps: on the root an earlier image left at step {}",
                    steps[i].name
                ));
                start = i + 1;
                overlay = Some(o);
            }
            // From the stored step instead.
            Err(e) => ctx
                .reporter
                .detail(&format!("steps: {e:#}; unpacking the archive instead")),
        }
    }
    if overlay.is_none() {
        extract(&tar, &root)?;
    }
    // Where a later image of the run parts from this one: leave the root directory as it
    // is there and go on in an overlay on it; true when it was left.
    let freeze_after = |i: usize, overlay: &mut Option<branch::Overlay>| -> bool {
        if Some(i + 1) != ctx.branch_at || overlay.is_some() {
            return false;
        }
        let Some(k) = keys[i].as_ref() else { return false };
        match branch::freeze(&layers, &ctx.staging.path("branch"), &k.hex, ctx.branches) {
            Ok(o) => {
                ctx.reporter.detail(&format!(
                    "steps: root left at step {} for a later image (not packed)",
                    steps[i].name
                ));
                *overlay = Some(o);
                true
            }
            Err(e) => {
                ctx.reporter.detail(&format!(
                    "steps: {e:#}; later images unpack the archive of step {}",
                    steps[i].name
                ));
                false
            }
        }
    };
    if let Some(i) = start.checked_sub(1) {
        freeze_after(i, &mut overlay);
    }
    for (i, s) in steps.iter().enumerate().skip(start) {
        let name = format!("step {}", s.name);
        let started = std::time::Instant::now();
        ctx.reporter.step(&name);
        run_step(&root, s, i, ctx, epoch)?;
        let took = started.elapsed();
        ctx.reporter.step_done(&name, took);
        let left_here = freeze_after(i, &mut overlay);
        // A quick step is not stored at all (packing a root takes seconds and GBs; a
        // failed build redoes the quick steps after the last stored one), unless a later
        // image of the run goes on from it and no root directory was left for it: that
        // one stays if the image looks it up.
        let worth = worth_keeping(i, took, last_keyed);
        let shared = Some(i + 1) == ctx.branch_at && !left_here;
        if let Some(k) = &keys[i]
            && (worth || shared)
        {
            let (dir, _) = ctx.cache.get_or_build(BUCKET, k, &format!("step {}", s.name), |out| {
                super::dir::pack(&root, &out.join("rootfs.tar"))?;
                fs_err::write(out.join(TOOK_FILE), took.as_secs_f64().to_string())?;
                Ok(())
            })?;
            if !worth {
                ctx.cache.mark_transient(BUCKET, k);
            }
            tar = dir.join("rootfs.tar");
        }
    }
    // The result must outlive the transient entries: the last step without a key packs it.
    if Some(steps.len() - 1) != last_keyed {
        tar = ctx.staging.path("rootfs-steps.tar");
        super::dir::pack(&root, &tar)?;
    }
    drop(overlay);
    Ok((tar, final_key(&keys)))
}

/// Whether step `i`'s archive stays once the run succeeds: it took long to make, or it is
/// the last one with a key (what an unchanged rebuild resumes from).
fn worth_keeping(i: usize, took: std::time::Duration, last_keyed: Option<usize>) -> bool {
    took >= KEEP_AFTER || Some(i) == last_keyed
}

/// How long a stored step took to run, beside its archive (entries stored before this was
/// recorded have none, and are kept).
const TOOK_FILE: &str = "took-seconds";

fn took(entry: &Path) -> Option<std::time::Duration> {
    let text = fs_err::read_to_string(entry.join(TOOK_FILE)).ok()?;
    std::time::Duration::try_from_secs_f64(text.trim().parse().ok()?).ok()
}

fn final_key(keys: &[Option<Key>]) -> String {
    keys.last()
        .and_then(|k| k.as_ref())
        .map(|k| k.hex.clone())
        .unwrap_or_else(|| "uncached (a step has secrets)".into())
}

fn command_digest(s: &StepPlan) -> Result<String> {
    Ok(match &s.command {
        StepCommand::Run(r) => format!("run:{r}"),
        StepCommand::Script(p) => {
            let data = fs_err::read(p).map_err(|e| crate::recipe::RecipeError::Input {
                message: format!("step `{}`: cannot read script {}: {e}", s.name, p.display()),
            })?;
            format!("script:{}", crate::digest::sha256_hex(&data))
        }
    })
}

/// Unpacks an archive as it is: owners, modes, xattrs, device nodes (needs root).
fn extract(tar: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        fs_err::remove_dir_all(dest)?;
    }
    fs_err::create_dir_all(dest)?;
    Cmd::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(dest)
        .run()?;
    Ok(())
}

fn run_step(root: &Path, s: &StepPlan, index: usize, ctx: &Ctx, epoch: Option<i64>) -> Result<()> {
    let safe: String = s
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let log = ctx.log_dir.join(format!("{:02}-{safe}.log", index + 1));
    let _ = fs_err::remove_file(&log);
    // Each file is placed inside the root (its own symlinks resolved there, never on the
    // host) and removed after the step. No services start while packages install.
    let in_root = Root::open(root)?;
    let place = |path: &str, body: &[u8], mode: u32| {
        in_root
            .place_new(Path::new(path), body, mode)
            .with_context(|| format!("step `{}`: setting up {path} in the target", s.name))
    };
    let _policy = place("usr/sbin/policy-rc.d", b"#!/bin/sh\nexit 101\n", 0o755)?;
    let _resolv = place("etc/resolv.conf", b"", 0o644)?;
    let mut script = None;
    let argv: Vec<String> = match &s.command {
        StepCommand::Run(r) => vec!["/bin/sh".into(), "-ec".into(), r.clone()],
        StepCommand::Script(p) => {
            let body = fs_err::read(p).map_err(|e| crate::recipe::RecipeError::Input {
                message: format!("step `{}`: cannot read script {}: {e}", s.name, p.display()),
            })?;
            let inside = format!("/tmp/imgbuild-step-{}", index + 1);
            script = place(&inside, &body, 0o755)?;
            if script.is_none() {
                bail!(
                    "step `{}`: {inside} already exists in the target; remove it from the root file system",
                    s.name
                );
            }
            vec![inside]
        }
    };
    // /proc/self/exe is this very program even after its file was replaced on disk (a
    // rebuild during a long build); the path current_exe() reports then no longer is.
    let exe = match std::path::Path::new("/proc/self/exe") {
        p if p.exists() => p.to_path_buf(),
        _ => std::env::current_exe().context("finding imgbuild's own executable")?,
    };
    let mut cmd = Cmd::new(exe).arg("internal-run-in-root").arg("--root").arg(root);
    if let Some(t) = epoch {
        cmd = cmd.arg(format!("--env=SOURCE_DATE_EPOCH={t}"));
    }
    for (k, v) in &s.env {
        // One word `--env=K=V`: a value starting with `-` stays a value.
        cmd = cmd.arg(format!("--env={k}={v}"));
    }
    for secret in &s.secrets {
        let name = &secret.name;
        match std::env::var(name) {
            // Secrets travel in the environment, never on a command line or in a log.
            Ok(value) => cmd = cmd.secret_env(name, value).arg("--pass").arg(name),
            Err(_) if secret.optional => {}
            Err(_) => bail!(
                "step `{}` needs the secret `{name}`: set it in the environment of imgbuild",
                s.name
            ),
        }
    }
    cmd = cmd.arg("--").args(&argv);
    let result = cmd.run_logged(&log);
    drop(script);
    result.map_err(|e| {
        let status = match &e {
            crate::process::ProcessError::Failed { status, .. } => status.clone(),
            other => other.to_string(),
        };
        let tail = String::from_utf8_lossy(&crate::process::log_tail(&log))
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        anyhow!(
            "step `{}` failed ({status}); the end of {}:\n{tail}",
            s.name,
            log.display()
        )
    })
}
