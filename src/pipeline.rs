//! The build, as one flat sequence of stages: resolve the recipe, prepare the root file
//! system, assemble the image, publish the outputs. Each stage takes typed inputs and
//! returns a typed artifact; the staging area is removed on any failure.

use crate::fsx::Staging;
use crate::output::manifest::Input;
use crate::output::{self, Published};
use crate::recipe::plan::RootfsSource;
use crate::recipe::{self, Resolved};
use crate::report::{Reporter, step};
use crate::{image, interrupt, rootfs};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What the command line adds to a recipe.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Output directory; default `images/<name>`.
    pub out_dir: Option<PathBuf>,
    /// `--set NAME=VALUE` pairs.
    pub sets: Vec<(String, String)>,
}

/// Where a recipe's outputs go.
pub fn out_dir(resolved: &Resolved, opts: &BuildOptions) -> PathBuf {
    opts.out_dir
        .clone()
        .unwrap_or_else(|| Path::new("images").join(&resolved.plan.name))
}

/// Builds the recipe at `path`.
pub fn build(path: &Path, opts: &BuildOptions, reporter: &dyn Reporter) -> Result<Published> {
    let resolved = step(
        reporter,
        &format!("resolve recipe {}", path.display()),
        || recipe::resolve(path, &opts.sets),
    )?;
    let plan = &resolved.plan;
    let out = out_dir(&resolved, opts);
    let staging = Staging::create(&out)?;
    interrupt::remove_on_interrupt(staging.dir().to_path_buf());
    let result = build_in(&resolved, staging, reporter);
    interrupt::forget(&out.join(crate::fsx::STAGING_DIR));
    let published = result?;
    reporter.detail(&format!("{} published to {}", plan.name, out.display()));
    Ok(published)
}

fn build_in(resolved: &Resolved, staging: Staging, reporter: &dyn Reporter) -> Result<Published> {
    let plan = &resolved.plan;
    let tree = match &plan.rootfs {
        Some(src) => Some(step(reporter, "prepare root file system", || {
            rootfs::prepare(src, &staging)
        })?),
        None => None,
    };
    let assembled = image::assemble(plan, tree.as_ref(), &staging, reporter)?;
    let inputs = step(reporter, "hash inputs", || inputs(resolved, tree.as_ref()))?;
    output::publish(resolved, &assembled, inputs, staging, reporter)
}

/// Every input file with its digest, paths relative to the recipe's directory.
fn inputs(resolved: &Resolved, tree: Option<&rootfs::RootTree>) -> Result<Vec<Input>> {
    let plan = &resolved.plan;
    let base = plan.recipe_file.parent().unwrap_or(Path::new("."));
    let rel = |p: &Path| pathdiff(p, base);
    let mut out = Vec::new();
    let mut add = |role: &str, shown: String, p: &Path| -> Result<()> {
        let (sha256, size) = output::compress::sha256_file(p)?;
        out.push(Input {
            role: role.into(),
            path: shown,
            sha256,
            size,
        });
        Ok(())
    };
    for f in &plan.recipe_files {
        add("recipe", rel(f), f)?;
    }
    match (&plan.rootfs, tree) {
        (Some(RootfsSource::Tar(p)), _) => add("rootfs", rel(p), p)?,
        // A directory is recorded by the digest of the archive made from it.
        (Some(RootfsSource::Dir(d)), Some(t)) => add("rootfs", rel(d), &t.tar)?,
        _ => {}
    }
    for p in &plan.partitions {
        if let Some(src) = &p.source {
            add(&format!("partition {}", p.name), rel(src), src)?;
        }
    }
    for b in &plan.blobs {
        add(&format!("blob {}", b.name), rel(&b.file), &b.file)?;
    }
    Ok(out)
}

/// `path` relative to `base` when it lies below it, else as it is.
fn pathdiff(path: &Path, base: &Path) -> String {
    let norm = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, b) = (norm(path), norm(base));
    match p.strip_prefix(&b) {
        Ok(r) => r.display().to_string(),
        Err(_) => p.display().to_string(),
    }
}
