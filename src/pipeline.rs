//! The build, as one flat sequence of stages: resolve the recipe, prepare the root file
//! system, assemble the image (or, for `output.format: oci`, pack it as a container
//! image), publish the outputs. Each stage takes typed inputs and
//! returns a typed artifact; the staging area is removed on any failure.

use crate::build_info::BuildInfo;
use crate::cache::Cache;
use crate::fsx::Staging;
use crate::output::manifest::Input;
use crate::output::{self, Published};
use crate::recipe::plan::{RootfsSource, Target};
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
    /// `--no-cache`: build every stage afresh (results are still stored).
    pub no_cache: bool,
    /// Cache directory (default: [`Cache::default_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// How content sources use the lock file and the network.
    pub fetch: crate::fetch::FetchOptions,
}

/// Where an image's outputs go: `--out` (or `--out/<name>` when the recipe makes several
/// images), else `images/<name>`.
pub fn out_dir(resolved: &Resolved, opts: &BuildOptions) -> PathBuf {
    out_dir_of(resolved, opts, false)
}

fn out_dir_of(resolved: &Resolved, opts: &BuildOptions, several: bool) -> PathBuf {
    match &opts.out_dir {
        Some(d) if several => d.join(&resolved.plan.name),
        Some(d) => d.clone(),
        None => Path::new("images").join(&resolved.plan.name),
    }
}

/// Every output directory a build of the recipe at `path` writes (one per image).
pub fn out_dirs(images: &[Resolved], opts: &BuildOptions) -> Vec<PathBuf> {
    images.iter().map(|r| out_dir_of(r, opts, images.len() > 1)).collect()
}

/// Builds the recipe at `path`: its image, or each of its `images:`. The images share
/// the content (fetched once) and whatever their root file systems have in common: a
/// stage with the same inputs is built once (its cache key), so one bootstrap and the
/// common steps serve them all. Nothing is published unless every image was built.
pub fn build(path: &Path, opts: &BuildOptions, reporter: &dyn Reporter) -> Result<Vec<Published>> {
    let images = step(reporter, &format!("resolve recipe {}", path.display()), || {
        recipe::resolve_all(path, &opts.sets)
    })?;
    for r in &images {
        if r.plan.targets.is_empty() {
            anyhow::bail!(crate::recipe::RecipeError::Field {
                file: r.plan.recipe_file.clone(),
                field: "image".into(),
                message:
                    "missing; this recipe only has `content:`, which `imgbuild fetch RECIPE` writes to a directory"
                        .into(),
            });
        }
    }
    if let Some(other) = images.iter().find(|r| r.plan.content != images[0].plan.content) {
        anyhow::bail!(crate::recipe::RecipeError::Field {
            file: other.plan.recipe_file.clone(),
            field: "content".into(),
            message: format!(
                "image {} would fetch other content than {}: content is fetched once for all the images, so its variables and conditions must not differ between them",
                other.plan.name, images[0].plan.name
            ),
        });
    }
    let outs = out_dirs(&images, opts);
    step(reporter, "check this host", || {
        preflight(path, &images, opts, &outs, reporter)
    })?;
    let mut stagings = Vec::new();
    for out in &outs {
        let staging = Staging::create(out)?;
        interrupt::remove_on_interrupt(staging.dir().to_path_buf());
        stagings.push(staging);
    }
    let cache = Cache::open(
        opts.cache_dir.clone().unwrap_or_else(Cache::default_dir),
        !opts.no_cache,
    )?;
    let result = build_all(&images, &cache, &outs, stagings, opts.fetch, reporter);
    for out in &outs {
        interrupt::forget(&out.join(crate::fsx::STAGING_DIR));
    }
    let published = result?;
    for (r, out) in images.iter().zip(&outs) {
        reporter.detail(&format!("{} published to {}", r.plan.name, out.display()));
    }
    Ok(published)
}

/// `imgbuild doctor`'s checks for these images, before anything slow: a missing program,
/// an unregistered emulator or a full disk stop the build with the fixes; an unreachable
/// host is a warning (the cache and the lock may hold all it would give).
fn preflight(
    path: &Path,
    images: &[Resolved],
    opts: &BuildOptions,
    outs: &[PathBuf],
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut needs = crate::doctor::Needs::default();
    for (resolved, out) in images.iter().zip(outs) {
        let dirs = crate::doctor::Dirs {
            out: out.to_path_buf(),
            cache: opts.cache_dir.clone().unwrap_or_else(Cache::default_dir),
        };
        needs.add(path, resolved, &dirs, &opts.sets);
    }
    let problems = crate::doctor::check_host(&needs);
    if !problems.is_empty() {
        anyhow::bail!(crate::host::HostError(problems));
    }
    if !opts.fetch.offline {
        for p in crate::doctor::check_network(&needs, std::time::Duration::from_secs(3)) {
            reporter.warn(&p.to_string());
        }
    }
    Ok(())
}

/// The recipe's content, fetched once for every image.
struct Content {
    /// The web root on the host and where it goes in the root file system.
    served: Option<(PathBuf, String)>,
    /// `files:` downloads, laid out like the root file system.
    downloads: Option<PathBuf>,
    /// What the mirrors hold (templates and manifests).
    summary: serde_json::Value,
}

fn fetch_content(
    plan: &crate::recipe::Plan,
    cache: &Cache,
    staging: &Staging,
    fetch_opts: crate::fetch::FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Content> {
    let Some(c) = &plan.content else {
        return Ok(Content {
            served: None,
            downloads: None,
            summary: crate::fetch::summary::of(None, &Default::default()),
        });
    };
    let dir = staging.path("content");
    let root_files = staging.path("rootfs-files");
    let lock = crate::fetch::lock::path_for(&plan.recipe_file);
    let (_, locked) = crate::fetch::fetch(c, &lock, fetch_opts, cache, &dir, Some(&root_files), reporter)?;
    // `files:` downloads alone make no web root.
    let served = c.sources.iter().any(|s| !s.is_root_file());
    Ok(Content {
        served: served.then(|| (dir, c.dest.clone())),
        downloads: root_files.is_dir().then_some(root_files),
        summary: crate::fetch::summary::of(Some(c), &locked),
    })
}

/// Builds every image into its staging area, then publishes them all.
fn build_all(
    images: &[Resolved],
    cache: &Cache,
    outs: &[PathBuf],
    stagings: Vec<Staging>,
    fetch_opts: crate::fetch::FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Published>> {
    // Content first: a bad package name fails in seconds, not after the bootstrap. It
    // lives in the first image's staging area, which is published last.
    let content = fetch_content(&images[0].plan, cache, &stagings[0], fetch_opts, reporter)?;
    let mut built = Vec::new();
    let branches = rootfs::branch::Branches::default();
    let shared = Shared {
        cache,
        content: &content,
        branches: &branches,
        fetch_opts,
    };
    for (i, ((resolved, out), staging)) in images.iter().zip(outs).zip(&stagings).enumerate() {
        if images.len() > 1 {
            reporter.detail(&format!("image {}", resolved.plan.name));
        }
        let later: Vec<&[_]> = images[i + 1..].iter().map(|r| r.plan.steps.as_slice()).collect();
        let branch_at = rootfs::branch::branch_point(&resolved.plan.steps, &later, |s| s.secrets.is_empty());
        built.push(build_one(
            resolved,
            &shared,
            branch_at,
            &out.join("logs"),
            staging,
            reporter,
        )?);
    }
    // Every image has run its steps: the root directories they shared go, in the
    // background (tens of thousands of files) while the later images are checksummed.
    // They are in the first image's staging area, so it is published last, after them.
    let shared_roots = branches.take_all();
    let mut removing = Some(std::thread::spawn(move || -> std::io::Result<()> {
        for dir in shared_roots {
            fs_err::remove_dir_all(dir)?;
        }
        Ok(())
    }));
    let mut published = Vec::new();
    for (i, ((resolved, staging), b)) in images.iter().zip(stagings).zip(built).enumerate().rev() {
        if i == 0
            && let Some(r) = removing.take()
        {
            r.join()
                .map_err(|_| anyhow::anyhow!("removing the shared root directories panicked"))??;
        }
        published.push(b.publish(resolved, staging, reporter)?);
    }
    published.reverse();
    let dropped = cache.drop_transient();
    if dropped > 0 {
        reporter.detail(&format!(
            "stage cache: {dropped} quick steps' archives dropped (kept only to resume a failed build)"
        ));
    }
    Ok(published)
}

/// One image, built and waiting to be published.
enum Built {
    Disk {
        file: String,
        assembled: crate::image::Assembled,
        info: BuildInfo,
        record: crate::output::manifest::Record,
    },
    Container {
        file: String,
        tree: rootfs::RootTree,
        info: BuildInfo,
        record: crate::output::manifest::Record,
    },
}

impl Built {
    fn publish(self, resolved: &Resolved, staging: Staging, reporter: &dyn Reporter) -> Result<Published> {
        match self {
            Built::Disk {
                file,
                assembled,
                info,
                record,
            } => output::publish(resolved, &file, &assembled, &info, record, staging, reporter),
            Built::Container {
                file,
                tree,
                info,
                record,
            } => output::publish_oci(resolved, &file, &tree, &info, record, staging, reporter),
        }
    }
}

/// What the images of one run share.
struct Shared<'a> {
    cache: &'a Cache,
    content: &'a Content,
    branches: &'a rootfs::branch::Branches,
    fetch_opts: crate::fetch::FetchOptions,
}

fn build_one(
    resolved: &Resolved,
    shared: &Shared,
    branch_at: Option<usize>,
    log_dir: &Path,
    staging: &Staging,
    reporter: &dyn Reporter,
) -> Result<Built> {
    let Shared {
        cache,
        content,
        branches,
        fetch_opts,
    } = *shared;
    let plan = &resolved.plan;
    let pinned = crate::build_info::pinned_epoch_from_env(plan.source_date_epoch)?;
    let host = crate::build_info::Host::detect();
    // The bootstrap's preseed sees no build time: it is decided from the bootstrap.
    let mut template = template_context(resolved, None);
    // Templates (the landing page) list what was actually mirrored; so does the manifest.
    let content_summary = if plan.content.is_some() {
        content.summary.clone()
    } else {
        serde_json::Value::Null
    };
    if let Some(ctx) = template.as_object_mut() {
        ctx.insert("content".into(), content.summary.clone());
    }
    // Boot loaders before the root file system: a wrong defconfig fails in a minute, not
    // after the bootstrap.
    let firmware = if plan.firmware.is_empty() {
        crate::firmware::Outputs::default()
    } else {
        let store = crate::fetch::store::Store::open(cache.root())?;
        let client = crate::fetch::http::Client::with_timeouts(Vec::new(), fetch_opts.timeouts);
        crate::firmware::build(
            &plan.firmware,
            &crate::firmware::Ctx {
                cache,
                store: &store,
                client: &client,
                work: staging.path("firmware"),
                log_dir: log_dir.to_path_buf(),
                reporter,
                jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
                offline: fetch_opts.offline,
            },
        )?
    };
    let (tree, info) = match &plan.rootfs {
        Some(src) => {
            // The shared stages see placeholders for what differs between images.
            let (shared, per_image) = rootfs::stamp::shared_context(&template);
            let ctx = rootfs::Ctx {
                cache,
                staging,
                reporter,
                template: &shared,
                log_dir: log_dir.to_path_buf(),
                content: content.served.clone(),
                downloads: content.downloads.clone(),
                branches,
                branch_at,
            };
            let mut tree = rootfs::prepare(plan, src, &ctx, pinned)?;
            // The one place the build's facts are decided: the root's time (pinned, or
            // its inputs'), so `build.date` is the file systems' date.
            let info = BuildInfo::at(tree.epoch, host);
            let mut full = template.clone();
            set_build(&mut full, &info);
            rootfs::add_files(&mut tree, plan, &ctx, &full, &per_image)?;
            (Some(tree), info)
        }
        None => (None, BuildInfo::at(pinned.unwrap_or(0), host)),
    };
    // One target per image: the publishing stage writes one manifest.
    let [target] = plan.targets.as_slice() else {
        anyhow::bail!(
            "{} targets in one image: imgbuild builds one per image",
            plan.targets.len()
        );
    };
    match target {
        Target::Container { file, .. } => {
            // The plan guarantees a rootfs for `output.format: oci`.
            let tree = tree.ok_or_else(|| anyhow::anyhow!("a container image needs a root file system"))?;
            let record = step(reporter, "hash inputs", || {
                record(resolved, Some(&tree), &content_summary, &firmware)
            })?;
            Ok(Built::Container {
                file: file.clone(),
                tree,
                info,
                record,
            })
        }
        Target::DiskImage { file, .. } => {
            let assembled = image::assemble(plan, file, tree.as_ref(), &firmware, &info, staging, reporter)?;
            let record = step(reporter, "hash inputs", || {
                record(resolved, tree.as_ref(), &content_summary, &firmware)
            })?;
            // The image is written: its root's scratch copies (GBs each) go now, not when
            // every image of the recipe is built and published.
            for name in rootfs::SCRATCH {
                staging.discard(name)?;
            }
            for p in &plan.partitions {
                staging.discard(&format!("part-{}.tar", p.name))?;
            }
            Ok(Built::Disk {
                file: file.clone(),
                assembled,
                info,
                record,
            })
        }
    }
}

fn set_build(template: &mut serde_json::Value, info: &BuildInfo) {
    if let Some(ctx) = template.as_object_mut() {
        ctx.insert("build".into(), info.template_value());
    }
}

/// What `*.j2` overlay and preseed files can use: the recipe's variables at the top
/// level and under `vars`, `partitions.<name>.{uuid,partuuid,label,number,mount}`,
/// `image.disk_id`, `recipe.name`, `services`, `cluster` (see [`crate::recipe::plan_cluster`]), `build.{version,date,epoch}` and (added once fetched)
/// `content` (see [`crate::fetch::summary`]). Without `info` (the preseed, rendered before
/// the build's time is known) `build` has only `version`.
pub fn template_context(resolved: &Resolved, info: Option<&BuildInfo>) -> serde_json::Value {
    let plan = &resolved.plan;
    let mut ctx = resolved.vars.clone();
    ctx.insert("vars".into(), serde_json::Value::Object(resolved.vars.clone()));
    let parts: serde_json::Map<String, serde_json::Value> = plan
        .partitions
        .iter()
        .map(|p| (p.name.clone(), serde_json::json!({"uuid": p.fs_uuid, "partuuid": p.partuuid, "label": p.label, "number": p.number, "mount": p.mount})))
        .collect();
    ctx.insert("partitions".into(), serde_json::Value::Object(parts));
    ctx.insert(
        "image".into(),
        serde_json::json!({"disk_id": plan.disk_id.to_string(), "name": plan.name}),
    );
    ctx.insert("recipe".into(), serde_json::json!({"name": plan.name}));
    ctx.insert(
        "services".into(),
        serde_json::to_value(&plan.services).unwrap_or_default(),
    );
    ctx.insert(
        "cluster".into(),
        serde_json::to_value(&plan.cluster).unwrap_or_default(),
    );
    let build = match info {
        Some(i) => i.template_value(),
        None => serde_json::json!({"version": env!("CARGO_PKG_VERSION")}),
    };
    ctx.insert("build".into(), build);
    serde_json::Value::Object(ctx)
}

/// The manifest's record: the inputs, the root's Debian packages and the mirrors.
fn record(
    resolved: &Resolved,
    tree: Option<&rootfs::RootTree>,
    content: &serde_json::Value,
    firmware: &crate::firmware::Outputs,
) -> Result<crate::output::manifest::Record> {
    Ok(crate::output::manifest::Record {
        inputs: inputs(resolved, tree)?,
        packages: tree.map(rootfs::packages::installed).transpose()?.unwrap_or_default(),
        content: content.clone(),
        firmware: firmware
            .made
            .iter()
            .map(crate::output::manifest::FirmwareRecord::of)
            .collect(),
    })
}

/// Every input file with its digest, paths relative to the recipe's directory.
fn inputs(resolved: &Resolved, tree: Option<&rootfs::RootTree>) -> Result<Vec<Input>> {
    let plan = &resolved.plan;
    let base = plan.recipe_file.parent().unwrap_or(Path::new("."));
    let rel = |p: &Path| pathdiff(p, base);
    let mut out = Vec::new();
    let mut add = |role: &str, shown: String, p: &Path| -> Result<()> {
        let (sha256, size) = crate::digest::sha256_file(p)?;
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
        (Some(RootfsSource::Dir(d)), Some(t)) => add("rootfs", rel(d), &t.sources[0])?,
        _ => {}
    }
    for p in &plan.partitions {
        if let Some(src) = &p.source {
            add(&format!("partition {}", p.name), rel(src), src)?;
        }
    }
    for b in &plan.blobs {
        if let crate::recipe::plan::BlobSource::File(f) = &b.source {
            add(&format!("blob {}", b.name), rel(f), f)?;
        }
    }
    for st in &plan.steps {
        if let crate::recipe::plan_rootfs::StepCommand::Script(p) = &st.command {
            add(&format!("step {}", st.name), rel(p), p)?;
        }
    }
    // A bootstrapped root file system is identified by its stage key: a digest of
    // everything that went into it (suite, packages, keys, hooks, mmdebstrap version).
    if let (Some(RootfsSource::Bootstrap(_)), Some(t)) = (&plan.rootfs, tree) {
        out.push(Input {
            role: "rootfs (bootstrap + steps, stage key)".into(),
            path: "stage cache".into(),
            sha256: t.key.clone(),
            size: 0,
        });
    }
    for o in &plan.overlays {
        out.push(Input {
            role: "overlay (tree digest)".into(),
            path: rel(o),
            sha256: rootfs::render::tree_digest(o)?,
            size: 0,
        });
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

#[cfg(test)]
mod tests {}
