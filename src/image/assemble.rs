//! Builds the raw image: sizes every partition (content + margin for `auto`), computes
//! the layout, creates the sparse file and writes table, file systems and blobs. An
//! `auto` ext4 partition whose estimate proves short is grown and the image rebuilt.

use super::blobs;
use super::boot;
use super::content::{self, PartContent};
use super::fs::{self, ext4, fat};
use super::layout::{self, BlobRequest, Layout, PartRequest};
use super::table::{self, TableEntry};
use crate::build_info::BuildInfo;
use crate::fsx::Staging;
use crate::recipe::model::FsKind;
use crate::recipe::part_type::PartType;
use crate::recipe::plan::{Margin, PartSize, PartitionPlan, Plan};
use crate::recipe::size::align_up;
use crate::report::{Reporter, human_bytes, step};
use crate::rootfs::RootTree;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;

const MIB: u64 = 1 << 20;
/// How often an `auto` ext4 partition may be grown after mke2fs ran out of space.
const GROW_ATTEMPTS: u32 = 5;

/// What was written for one partition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionReport {
    pub name: String,
    pub number: u32,
    pub start: u64,
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub filesystem: FsKind,
    pub label: String,
    pub uuid: String,
    pub partuuid: String,
    pub mount: Option<String>,
    /// Bytes of file content placed in the partition.
    pub content_bytes: u64,
}

/// The raw image in the staging area.
#[derive(Debug)]
pub struct Assembled {
    pub image: PathBuf,
    pub layout: Layout,
    pub partitions: Vec<PartitionReport>,
    /// Byte ranges `[start, end)` of the image that hold data, from what each writer
    /// wrote (the table, FAT's used region, ext4's used blocks, raw sources, blobs): what
    /// a bmap lists.
    pub mapped: Vec<(u64, u64)>,
}

/// Builds the disk image target `file` in the staging area.
pub fn assemble(
    plan: &Plan,
    file: &str,
    tree: Option<&RootTree>,
    firmware: &crate::firmware::Outputs,
    info: &BuildInfo,
    staging: &Staging,
    reporter: &dyn Reporter,
) -> Result<Assembled> {
    let epoch = info.epoch;
    // The boot loaders' files join the tree before it is split among the partitions.
    let boot = match (&plan.bootloader, tree) {
        (Some(b), Some(t)) => Some(step(reporter, "prepare boot loaders", || {
            boot::prepare(plan, b, t, staging)
        })?),
        _ => None,
    };
    let tree = boot.as_ref().map(|b| &b.tree).or(tree);
    let bios = boot.as_ref().and_then(|b| b.bios.as_ref());
    let mounts: Vec<(String, String)> = plan
        .partitions
        .iter()
        .filter_map(|p| p.mount.clone().map(|m| (p.name.clone(), m)))
        .collect();
    let (mut contents, whole) = match tree {
        Some(t) => content::split(&t.entries, &mounts, epoch)?,
        None => (BTreeMap::new(), false),
    };
    if plan.partitions.iter().any(|p| p.filesystem == FsKind::Ext4) {
        ext4::check_version()?;
    }
    let blob_files = blobs::files(&plan.blobs, firmware)?;
    let blob_sizes: Vec<u64> = blob_files.iter().map(|(_, n)| *n).collect();
    for p in &plan.partitions {
        contents.entry(p.name.clone()).or_default();
    }
    let contents = Contents(contents);
    let content_of = &contents;
    let mut fat_nodes: BTreeMap<String, Vec<fat::Node>> = BTreeMap::new();
    for p in plan.partitions.iter().filter(|p| p.filesystem == FsKind::Vfat) {
        let sources = tree.map(|t| t.sources.as_slice()).unwrap_or(&[]);
        let nodes = fs::fat_nodes(
            content_of.of(p),
            sources,
            p.mount.as_deref().unwrap_or("/"),
            epoch,
            &p.name,
        )
        // What the root file system puts there is the recipe's doing: a user error.
        .map_err(|e| crate::recipe::RecipeError::Field {
            file: p.defined_in.clone(),
            field: format!("image.partitions.{}", p.name),
            message: format!("{e:#}"),
        })?;
        fat_nodes.insert(p.name.clone(), nodes);
    }
    let mut grow: BTreeMap<String, f64> = BTreeMap::new();
    for attempt in 0..=GROW_ATTEMPTS {
        let sizes = step(reporter, "size partitions", || {
            partition_sizes(plan, content_of, &fat_nodes, &grow)
        })?;
        let layout = compute_layout(plan, &sizes, &blob_sizes)?;
        match write_image(
            plan,
            file,
            tree,
            whole,
            &layout,
            content_of,
            &fat_nodes,
            &blob_files,
            bios,
            epoch,
            staging,
            reporter,
        ) {
            Ok((image, mapped)) => {
                let partitions = reports(plan, &layout, content_of);
                return Ok(Assembled {
                    image,
                    layout,
                    partitions,
                    mapped,
                });
            }
            Err(WriteError::TooSmall(name)) => {
                let p = plan
                    .partitions
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| anyhow!("unknown partition {name}"))?;
                let size = layout
                    .partitions
                    .iter()
                    .find(|l| l.name == name)
                    .map(|l| l.size)
                    .unwrap_or(0);
                match p.size {
                    PartSize::Auto(_) if attempt < GROW_ATTEMPTS => {
                        reporter.detail(&format!(
                            "partition {name}: {} was too small, growing",
                            human_bytes(size)
                        ));
                        *grow.entry(name).or_insert(1.0) *= 1.25;
                    }
                    _ => {
                        return Err(field_error(
                            p,
                            "size",
                            format!(
                                "{} is too small for the partition's content ({} of files); raise it or use `size: auto`",
                                human_bytes(size),
                                human_bytes(content_of.of(p).file_bytes())
                            ),
                        ));
                    }
                }
            }
            Err(WriteError::Other(e)) => return Err(e),
        }
    }
    bail!("could not size the image after {GROW_ATTEMPTS} attempts")
}

/// An error in a partition's recipe field (exit status 2, like every recipe error).
fn field_error(p: &PartitionPlan, key: &str, message: String) -> anyhow::Error {
    anyhow::Error::new(crate::recipe::RecipeError::Field {
        file: p.defined_in.clone(),
        field: format!("image.partitions.{}.{key}", p.name),
        message,
    })
}

/// Each partition's share of the root file system (empty for those without a mount).
struct Contents(BTreeMap<String, PartContent>);

impl Contents {
    fn of(&self, p: &PartitionPlan) -> &PartContent {
        &self.0[&p.name]
    }
}

fn with_margin(content: u64, m: Margin) -> u64 {
    let extra = ((content as f64) * m.percent / 100.0) as u64;
    align_up(content + extra.max(m.min), MIB)
}

fn partition_sizes(
    plan: &Plan,
    content_of: &Contents,
    fat_nodes: &BTreeMap<String, Vec<fat::Node>>,
    grow: &BTreeMap<String, f64>,
) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for p in &plan.partitions {
        let field = |k: &str| format!("{}: image.partitions.{}.{k}", p.defined_in.display(), p.name);
        let needed = match p.filesystem {
            FsKind::Vfat => {
                fat::min_size(&fat_nodes[&p.name], &fat_options(p)).map_err(|e| crate::recipe::RecipeError::Field {
                    file: p.defined_in.clone(),
                    field: format!("image.partitions.{}.size", p.name),
                    message: e.to_string(),
                })?
            }
            FsKind::Ext4 => ext4::estimate(&content_of.of(p).entries),
            FsKind::Raw => {
                let src = p
                    .source
                    .as_ref()
                    .ok_or_else(|| anyhow!("{}: missing", field("source")))?;
                fs_err::metadata(src)
                    .with_context(|| format!("{}: cannot read the file", field("source")))?
                    .len()
            }
            FsKind::None => 0,
        };
        let size = match p.size {
            PartSize::Fixed(n) => {
                // ext4's estimate is deliberately generous, so only mke2fs decides for ext4.
                if p.filesystem != FsKind::Ext4 && needed > n {
                    return Err(field_error(
                        p,
                        "size",
                        format!(
                            "{} is too small for the content, which needs {}; raise it or use `size: auto`",
                            human_bytes(n),
                            human_bytes(needed)
                        ),
                    ));
                }
                n
            }
            PartSize::Auto(m) => {
                let factor = grow.get(&p.name).copied().unwrap_or(1.0);
                with_margin((needed as f64 * factor) as u64, m)
            }
        };
        out.push(size);
    }
    Ok(out)
}

fn compute_layout(plan: &Plan, sizes: &[u64], blob_sizes: &[u64]) -> Result<Layout> {
    let parts: Vec<PartRequest> = plan
        .partitions
        .iter()
        .zip(sizes)
        .map(|(p, &size)| PartRequest {
            name: p.name.clone(),
            size,
            start: p.start,
            alignment: p.alignment,
        })
        .collect();
    let blobs: Vec<BlobRequest> = plan
        .blobs
        .iter()
        .zip(blob_sizes)
        .map(|(b, &len)| BlobRequest {
            name: b.name.clone(),
            offset: b.offset,
            len,
        })
        .collect();
    layout::compute(plan.table, plan.image_size, plan.alignment, &parts, &blobs).map_err(|e| {
        let (file, field) = match &e {
            layout::LayoutError::StartTooEarly { name, .. }
            | layout::LayoutError::Misaligned { name, .. }
            | layout::LayoutError::MbrLimit { name, .. } => {
                let p = plan.partitions.iter().find(|p| &p.name == name);
                (
                    p.map(|p| p.defined_in.clone()),
                    format!("image.partitions.{name}.start"),
                )
            }
            layout::LayoutError::BlobOverlap { blob, .. } => {
                let b = plan.blobs.iter().find(|b| &b.name == blob);
                (b.map(|b| b.defined_in.clone()), format!("image.blobs.{blob}"))
            }
            layout::LayoutError::TooLarge { field, name, .. } => {
                let defined_in = name.as_ref().and_then(|n| {
                    plan.partitions
                        .iter()
                        .find(|p| &p.name == n)
                        .map(|p| p.defined_in.clone())
                        .or_else(|| plan.blobs.iter().find(|b| &b.name == n).map(|b| b.defined_in.clone()))
                });
                (defined_in, field.clone())
            }
            _ => (None, "image.size".to_string()),
        };
        let file = file.unwrap_or_else(|| plan.recipe_file.clone());
        anyhow::Error::new(crate::recipe::RecipeError::Field {
            file,
            field,
            message: e.to_string(),
        })
    })
}

fn fat_options(p: &PartitionPlan) -> fat::FatOptions {
    fat::FatOptions {
        label: p.label.clone(),
        volume_id: u32::from_str_radix(&p.fs_uuid.replace('-', ""), 16).unwrap_or(0),
        fat_type: match p.fat_bits {
            Some(12) => Some(fat::FatType::Fat12),
            Some(16) => Some(fat::FatType::Fat16),
            Some(32) => Some(fat::FatType::Fat32),
            _ => None,
        },
        oem_name: *b"imgbuild",
    }
}

enum WriteError {
    TooSmall(String),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for WriteError {
    fn from(e: E) -> Self {
        WriteError::Other(e.into())
    }
}

#[allow(clippy::too_many_arguments)]
fn write_image(
    plan: &Plan,
    file: &str,
    tree: Option<&RootTree>,
    whole: bool,
    layout: &Layout,
    content_of: &Contents,
    fat_nodes: &BTreeMap<String, Vec<fat::Node>>,
    blob_files: &[(PathBuf, u64)],
    bios: Option<&boot::BiosLoader>,
    epoch: i64,
    staging: &Staging,
    reporter: &dyn Reporter,
) -> Result<(PathBuf, Vec<(u64, u64)>), WriteError> {
    let path = staging.path(file);
    let mut image = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    image
        .set_len(layout.size)
        .with_context(|| format!("sizing {}", path.display()))?;
    step(
        reporter,
        &format!(
            "write {} partition table ({})",
            match plan.table {
                crate::recipe::model::TableKind::Mbr => "MBR",
                _ => "GPT",
            },
            human_bytes(layout.size)
        ),
        || {
            let entries: Vec<TableEntry> = plan
                .partitions
                .iter()
                .zip(&layout.partitions)
                .map(|(p, l)| TableEntry {
                    start: l.start,
                    size: l.size,
                    kind: p.kind,
                    bootable: p.bootable,
                    name: p.label.clone(),
                    partuuid: uuid::Uuid::parse_str(&p.partuuid).ok(),
                })
                .collect();
            table::write(&mut image, layout.size, plan.disk_id, &entries)
        },
    )?;
    let mut mapped = table::written(layout.size, plan.disk_id);
    for (p, l) in plan.partitions.iter().zip(&layout.partitions) {
        let name = format!(
            "write partition {} ({}, {})",
            p.name,
            fs_name(p.filesystem),
            human_bytes(l.size)
        );
        let start = std::time::Instant::now();
        reporter.step(&name);
        match p.filesystem {
            FsKind::Ext4 => {
                let content = content_of.of(p);
                let archive = match tree {
                    Some(t) if whole && t.pristine && p.mount.as_deref() == Some("/") => t.sources[0].clone(),
                    Some(t) => {
                        let a = staging.path(&format!("part-{}.tar", p.name));
                        fs::write_partition_archive(content, &t.sources, &a)?;
                        a
                    }
                    None => {
                        let a = staging.path(&format!("part-{}.tar", p.name));
                        fs::write_partition_archive(&empty_root(epoch), &[], &a)?;
                        a
                    }
                };
                let job = ext4::Ext4Job {
                    image: &path,
                    offset: l.start,
                    size: l.size,
                    archive: &archive,
                    label: &p.label,
                    uuid: &p.fs_uuid,
                    epoch,
                    entries: content.entries.len() as u64,
                    scratch: staging.dir(),
                };
                match ext4::make(&job) {
                    Ok(()) => {
                        let used = fs::ext4_used::used_ranges(&mut &image, l.start)
                            .with_context(|| format!("reading back the ext4 of partition `{}`", p.name))?;
                        mapped.extend(used.into_iter().map(|(s, e)| (l.start + s, l.start + e)));
                    }
                    Err(ext4::Ext4Error::TooSmall { .. }) => {
                        return Err(WriteError::TooSmall(p.name.clone()));
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("making ext4 in partition `{}`", p.name))
                            .into());
                    }
                }
            }
            FsKind::Vfat => {
                let nodes = &fat_nodes[&p.name];
                let stats = fat::write(&image, l.start, l.size, nodes, &fat_options(p))
                    .with_context(|| format!("{}: image.partitions.{}", p.defined_in.display(), p.name))?;
                mapped.push((l.start, l.start + stats.written));
            }
            FsKind::Raw => {
                let src_path = p
                    .source
                    .as_ref()
                    .ok_or_else(|| anyhow!("raw partition without source"))?;
                let src = fs_err::File::open(src_path)?;
                let len = src.metadata()?.len();
                crate::fsx::copy_range_sparse(src.file(), 0, &image, l.start, len)
                    .with_context(|| format!("copying {} into partition `{}`", src_path.display(), p.name))?;
                mapped.push((l.start, l.start + len));
            }
            FsKind::None => {}
        }
        reporter.step_done(&name, start.elapsed());
    }
    if !plan.blobs.is_empty() {
        step(reporter, "write blobs", || {
            blobs::write(&image, &plan.blobs, blob_files)
        })?;
        mapped.extend(
            layout
                .blobs
                .iter()
                .zip(blob_files)
                .map(|(b, (_, n))| (b.start, b.start + n)),
        );
    }
    if let Some(loader) = bios {
        let l = plan
            .partitions
            .iter()
            .zip(&layout.partitions)
            .find(|(p, _)| p.name == loader.partition)
            .map(|(_, l)| l)
            .ok_or_else(|| anyhow!("BIOS boot partition `{}` is not in the layout", loader.partition))?;
        let range = step(reporter, "install GRUB for BIOS (boot.img, core.img)", || {
            boot::write_bios(&mut image, loader, l.start, l.size)
        })?;
        mapped.push(range);
    }
    image
        .sync_all()
        .with_context(|| format!("flushing {}", path.display()))?;
    mapped.sort_unstable();
    Ok((path, mapped))
}

fn empty_root(epoch: i64) -> PartContent {
    PartContent {
        entries: vec![crate::rootfs::Entry::new_dir("", epoch)],
    }
}

fn fs_name(fs: FsKind) -> &'static str {
    match fs {
        FsKind::Vfat => "vfat",
        FsKind::Ext4 => "ext4",
        FsKind::Raw => "raw",
        FsKind::None => "empty",
    }
}

fn reports(plan: &Plan, layout: &Layout, content_of: &Contents) -> Vec<PartitionReport> {
    plan.partitions
        .iter()
        .zip(&layout.partitions)
        .map(|(p, l)| PartitionReport {
            name: p.name.clone(),
            number: p.number,
            start: l.start,
            size: l.size,
            kind: match p.kind {
                PartType::Mbr(_) | PartType::Gpt(_) => p.kind.to_string(),
            },
            filesystem: p.filesystem,
            label: p.label.clone(),
            uuid: p.fs_uuid.clone(),
            partuuid: p.partuuid.clone(),
            mount: p.mount.clone(),
            content_bytes: content_of.of(p).file_bytes(),
        })
        .collect()
}
