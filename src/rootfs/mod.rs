//! The root file system stage: bootstraps it from Debian (or takes a tar archive or a
//! directory), runs the recipe's steps in it, and applies overlays — ending with the
//! canonical form every later stage reads: an indexed tar archive plus the data files
//! overlays added.

pub mod bootstrap;
pub mod branch;
pub mod chroot;
pub mod dir;
pub mod entry;
pub mod epoch;
pub mod error;
pub mod inroot;
pub mod overlay;
pub mod packages;
pub mod render;
pub mod stamp;
pub mod steps;
pub mod tar_read;
pub mod tar_write;

use crate::cache::{Cache, Key};
use crate::fsx::Staging;
use crate::recipe::Plan;
use crate::recipe::plan::RootfsSource;
use crate::report::{Reporter, step};
use anyhow::{Context, Result, bail};
pub use entry::{Entry, EntryKind};
pub use error::ArchiveError;
use std::path::{Path, PathBuf};

/// What the stage needs besides the plan.
pub struct Ctx<'a> {
    pub cache: &'a Cache,
    pub staging: &'a Staging,
    pub reporter: &'a dyn Reporter,
    /// Template context for the bootstrap's preseed files: the recipe's variables and
    /// layout, with per-image values as placeholders (see [`stamp`]) and no build time
    /// (decided after the bootstrap), so the bootstrap is keyed by what it installs.
    pub template: &'a serde_json::Value,
    /// Where step and mmdebstrap logs go (kept after a failure).
    pub log_dir: PathBuf,
    /// Fetched content: the tree on the host and where it goes in the root file system.
    pub content: Option<(PathBuf, String)>,
    /// `files:` downloads: a tree laid out like the root file system.
    pub downloads: Option<PathBuf>,
    /// The root directories earlier images of the run left where they part ways.
    pub branches: &'a branch::Branches,
    /// Before which step this image leaves its root directory for a later image (the
    /// steps they share end there), if one does.
    pub branch_at: Option<usize>,
}

/// What these stages leave in an image's staging area that its publishing does not read,
/// removed once the image is written: the extracted root (with its overlay layers), the
/// archives it was read from and the files overlays added. (A root directory a later
/// image goes on from, `branch`, stays until every image has run its steps; the content,
/// which later images read too, stays.)
pub const SCRATCH: &[&str] = &[
    "root",
    "upper",
    "work",
    "rootfs-steps.tar",
    "rootfs.tar",
    "stamped",
    "overlays",
];

/// The root file system: an index of entries whose file data lives in `sources`.
#[derive(Debug, Clone)]
pub struct RootTree {
    /// Data files; `sources[0]` is the root file system archive.
    pub sources: Vec<PathBuf>,
    pub entries: Vec<Entry>,
    /// True while the entries are exactly the archive's (it can be used as it is).
    pub pristine: bool,
    /// The cache key of the archive (bootstrap and steps), for manifests.
    pub key: String,
    /// The build's time: no entry is newer (see [`epoch`]).
    pub epoch: i64,
}

/// The newest modification time among `entries`.
fn newest(entries: &[Entry]) -> i64 {
    entries.iter().map(|e| e.mtime).max().unwrap_or(0)
}

/// Runs the shared part of the stage: source → steps → index, every entry clamped to the
/// build's time, decided here (see [`epoch`]); then [`add_files`].
pub fn prepare(plan: &Plan, source: &RootfsSource, ctx: &Ctx, pinned: Option<i64>) -> Result<RootTree> {
    let mut input_epoch = None;
    let (base, key) = match source {
        RootfsSource::Tar(p) => {
            if !p.is_file() {
                return Err(crate::recipe::RecipeError::Input {
                    message: format!(
                        "rootfs.tar: {} does not exist; build or download it first, or fix the path (relative to the recipe)",
                        p.display()
                    ),
                }
                .into());
            }
            let tar = decompress_if_needed(p, ctx.staging)?;
            let (sha, _) = crate::digest::sha256_file(&tar)?;
            (tar, Key::new("archive-v1", &sha))
        }
        RootfsSource::Dir(d) => {
            if !d.is_dir() {
                return Err(crate::recipe::RecipeError::Input {
                    message: format!(
                        "rootfs.dir: {} is not a directory; fix the path (relative to the recipe)",
                        d.display()
                    ),
                }
                .into());
            }
            let dest = ctx.staging.path("rootfs.tar");
            step(ctx.reporter, "pack root directory", || dir::pack(d, &dest))
                .with_context(|| format!("packing rootfs.dir {}", d.display()))?;
            let (sha, _) = crate::digest::sha256_file(&dest)?;
            (dest, Key::new("archive-v1", &sha))
        }
        RootfsSource::Bootstrap(b) => {
            let done = step(
                ctx.reporter,
                &format!("bootstrap {} {} (mmdebstrap)", b.suite, b.architecture),
                || bootstrap::bootstrap(b, ctx),
            )?;
            input_epoch = done.epoch;
            (done.tar, done.key)
        }
    };
    if let RootfsSource::Bootstrap(b) = source
        && !plan.steps.is_empty()
    {
        crate::host::binfmt::check(&b.architecture).map_err(|p| crate::host::HostError(vec![p]))?;
    }
    // The time is decided before the steps, which run with it: pinned, else the inputs'
    // (a step's own files carry the build's clock, so they never decide it).
    let decided = match (pinned.or(input_epoch), plan.steps.is_empty()) {
        (Some(t), _) => Some(t),
        (None, false) => Some(newest(&tar_read::index(&base)?)),
        (None, true) => None,
    };
    let (tar, key) = steps::run(base, &key, &plan.steps, ctx, decided)?;
    let (entries, completed) = step(ctx.reporter, "index root file system", || {
        tar_read::index_completed(&tar)
    })?;
    let epoch = decided.unwrap_or_else(|| newest(&entries));
    let mut tree = RootTree {
        sources: vec![tar],
        entries,
        pristine: !completed,
        key,
        epoch,
    };
    check_paths(&tree)?;
    epoch::clamp(&mut tree, epoch);
    Ok(tree)
}

/// Adds what comes from the host, on top of the prepared root: overlays (their `*.j2`
/// rendered with `template`, which carries the build's facts), `files:` downloads and the
/// fetched content. Every added entry is no newer than the tree's time.
/// First the per-image values the shared stages saw as placeholders (`per_image`, from
/// [`stamp::shared_context`]) are written into the files that hold them.
pub fn add_files(
    tree: &mut RootTree,
    plan: &Plan,
    ctx: &Ctx,
    template: &serde_json::Value,
    per_image: &[(String, String)],
) -> Result<()> {
    let epoch = tree.epoch;
    // Only a preseed is rendered before this point: without one there is nothing to find.
    if let Some(RootfsSource::Bootstrap(b)) = &plan.rootfs
        && !b.preseed.is_empty()
    {
        let stamped = step(ctx.reporter, "stamp per-image values", || {
            stamp::apply(tree, per_image, &ctx.staging.path("stamped"))
        })?;
        ctx.reporter
            .detail(&format!("per-image values written into {}", stamped.join(", ")));
    }
    if !plan.overlays.is_empty() || ctx.downloads.is_some() || !plan.files.is_empty() {
        let scratch = ctx.staging.path("overlays");
        fs_err::create_dir_all(&scratch)?;
        step(ctx.reporter, "apply overlays", || {
            overlay::apply(
                tree,
                &plan.overlays,
                ctx.downloads.as_deref(),
                &plan.files,
                template,
                &scratch,
                epoch,
            )
        })?;
    }
    if let Some((dir, dest)) = &ctx.content {
        step(ctx.reporter, &format!("add content at /{dest}"), || {
            overlay::add_tree(tree, dir, dest, epoch)
        })?;
    }
    Ok(())
}

/// Refuses archive entries that sit below a symlink (they would be written through it).
fn check_paths(tree: &RootTree) -> Result<()> {
    let index = overlay::index_of(tree);
    for e in &tree.entries {
        overlay::check_no_symlink_parent(tree, &index, &e.path)
            .map_err(|m| ArchiveError::new(&tree.sources[0], None, format!("archive entry `/{}` {m}", e.path)))?;
    }
    Ok(())
}

/// Compressed archives are unpacked once into the staging area, since later stages
/// copy file data from the archive by offset.
fn decompress_if_needed(path: &Path, staging: &Staging) -> Result<PathBuf> {
    let mut magic = [0u8; 6];
    {
        use std::io::Read;
        let mut f = fs_err::File::open(path)?;
        let n = f.read(&mut magic)?;
        if n < 4 {
            bail!("rootfs.tar: {} is not a tar archive (too short)", path.display());
        }
    }
    let Some(reader) = crate::codec::decoder(path, crate::codec::detect(&magic))? else {
        return Ok(path.to_path_buf());
    };
    let dest = staging.path("rootfs.tar");
    let mut out = std::io::BufWriter::new(fs_err::File::create(&dest)?);
    let mut reader = std::io::BufReader::new(reader);
    std::io::copy(&mut reader, &mut out).with_context(|| format!("decompressing {}", path.display()))?;
    Ok(dest)
}
