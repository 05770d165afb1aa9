//! The validated build plan: a rendered recipe with defaults applied, sizes parsed,
//! paths resolved and identifiers derived. Every check that needs only the recipe
//! happens here, before any stage runs; errors name the file and field.

use super::checker::Checker;
use super::error::RecipeError;
use super::ids;
use super::merge::origin_of;
use super::model::{Compression, FsKind, OutputFormat, Recipe, TableKind};
use super::part_type::{self, PartType};
use super::plan_oci;
use super::size::{SECTOR, SizeSpec, parse_size};
use crate::rootpath::mount_point;
use serde::Serialize;
use std::path::PathBuf;

/// Default alignment of partition starts: 1 MiB, as every modern partitioner does.
pub const DEFAULT_ALIGNMENT: u64 = 1 << 20;
/// Default margin of an `auto` partition: 10% of its content, at least 16 MiB.
pub const DEFAULT_MARGIN_PERCENT: f64 = 10.0;
pub const DEFAULT_MARGIN_MIN: u64 = 16 << 20;

/// Where the root file system comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsSource {
    Tar(PathBuf),
    Dir(PathBuf),
    Bootstrap(super::plan_rootfs::BootstrapPlan),
}

/// The disk's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DiskId {
    Mbr(u32),
    Gpt(uuid::Uuid),
}

impl std::fmt::Display for DiskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskId::Mbr(id) => write!(f, "0x{id:08x}"),
            DiskId::Gpt(g) => write!(f, "{g}"),
        }
    }
}

/// How an `auto` partition grows beyond its content.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Margin {
    pub percent: f64,
    pub min: u64,
}

/// Partition size after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartSize {
    Fixed(u64),
    Auto(Margin),
}

/// One partition, ready to build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionPlan {
    pub name: String,
    /// 1-based partition number, in recipe order.
    pub number: u32,
    pub label: String,
    pub kind: PartType,
    pub filesystem: FsKind,
    pub size: PartSize,
    pub start: Option<u64>,
    pub alignment: u64,
    pub bootable: bool,
    /// Normalised absolute mount point (`/`, `/boot/firmware`).
    pub mount: Option<String>,
    /// For `raw`: the file written into the partition.
    pub source: Option<PathBuf>,
    /// File system UUID as fstab writes it (`UUID=`).
    pub fs_uuid: String,
    /// Partition UUID as the kernel shows it (`PARTUUID=`).
    pub partuuid: String,
    /// For `vfat`: the FAT variant asked for, or none for automatic.
    pub fat_bits: Option<u8>,
    /// The recipe file that defines this partition (for errors found while building).
    pub defined_in: PathBuf,
}

/// A raw file at a fixed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobPlan {
    pub name: String,
    pub source: BlobSource,
    pub offset: u64,
    pub defined_in: PathBuf,
}

/// Where a blob's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BlobSource {
    /// A file beside the recipe.
    File(PathBuf),
    /// A file the `firmware:` stage makes: (firmware name, file name).
    Firmware(String, String),
}

/// What the build publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputPlan {
    pub compression: Compression,
    pub level: Option<u32>,
    pub keep_raw: bool,
    /// Some: `output.format: oci`, a container image archive instead of a disk image.
    pub oci: Option<super::plan_oci::OciPlan>,
}

/// One thing a build makes and publishes, named once here so no stage works out what
/// it is building from the recipe's other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A partitioned disk image, `file` raw (compressed: `file` + the compression's
    /// extension), laid out by the plan's `table` and `partitions`.
    DiskImage { name: String, file: String },
    /// A container image archive (`output.format: oci`) of the root file system.
    Container { name: String, file: String },
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::DiskImage { name, .. } | Target::Container { name, .. } => name,
        }
    }

    /// The file it is published as (a disk image's raw file).
    pub fn file(&self) -> &str {
        match self {
            Target::DiskImage { file, .. } | Target::Container { file, .. } => file,
        }
    }

    /// Every file name a build of a target called `name` may have published: what a new
    /// build that did not make it again removes.
    pub fn every_file(name: &str) -> Vec<String> {
        let raw = format!("{name}.img");
        ["", ".xz", ".zst", ".gz"]
            .iter()
            .map(|ext| format!("{raw}{ext}"))
            .chain([format!("{name}.oci.tar")])
            .collect()
    }
}

/// Everything a build needs, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    /// What the build makes: empty for a content-only recipe (`imgbuild fetch`).
    pub targets: Vec<Target>,
    pub recipe_file: PathBuf,
    pub recipe_files: Vec<PathBuf>,
    pub rootfs: Option<RootfsSource>,
    pub table: TableKind,
    pub image_size: SizeSpec,
    pub alignment: u64,
    pub disk_id: DiskId,
    pub partitions: Vec<PartitionPlan>,
    pub blobs: Vec<BlobPlan>,
    /// `firmware:`: boot loaders made on the build host, which blobs may name.
    pub firmware: Vec<super::plan_firmware::FirmwarePlan>,
    /// `image.bootloader`: GRUB and shim for a PC's BIOS and UEFI.
    pub bootloader: Option<super::plan_boot::BootloaderPlan>,
    pub output: OutputPlan,
    pub source_date_epoch: Option<i64>,
    pub steps: Vec<super::plan_rootfs::StepPlan>,
    pub overlays: Vec<PathBuf>,
    pub files: Vec<super::plan_rootfs::FilePlan>,
    pub content: Option<super::plan_content::ContentPlan>,
    /// Web services, in recipe order.
    pub services: Vec<ServicePlan>,
    /// `cluster:`: the teaching cluster the image belongs to.
    pub cluster: Option<super::plan_cluster::ClusterPlan>,
}

/// A web service the landing page links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    pub name: String,
    pub title: String,
    pub path: String,
    pub description: String,
}

/// Checks `services`.
fn services(recipe: &Recipe, ck: &Checker) -> Result<Vec<ServicePlan>, RecipeError> {
    let mut out = Vec::new();
    for (name, spec) in recipe.services.iter().flatten() {
        let Some(s) = spec else { continue };
        let absolute = s.path.starts_with("http://") || s.path.starts_with("https://");
        if !s.path.starts_with('/') && !absolute {
            return Err(ck.err(
                &format!("services.{name}.path"),
                format!(
                    "`{}` is neither a path on the server (`/gitea/`) nor an http(s) URL",
                    s.path
                ),
            ));
        }
        out.push(ServicePlan {
            name: name.clone(),
            title: s.title.clone(),
            path: s.path.clone(),
            description: s.description.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Identifiers derived (or pinned) per partition, computed before templating so that
/// templates can use them.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionIds {
    pub number: u32,
    pub label: String,
    pub uuid: String,
    pub partuuid: String,
}

/// The table kind, or an error saying how to choose one.
pub fn table_of(recipe: &Recipe, ck: &Checker) -> Result<TableKind, RecipeError> {
    plan_oci::check_format(recipe, ck)?;
    // Without a disk there is no table; identifiers derived for one are unused.
    if recipe.image.is_none() {
        return Ok(TableKind::Mbr);
    }
    recipe.image.as_ref().and_then(|i| i.table).ok_or_else(|| {
        ck.err(
            "image.table",
            "missing; write `table: mbr` (Raspberry Pi) or `table: gpt`",
        )
    })
}

/// A recipe with `content:` and no `image:` (nor a container) only feeds `imgbuild fetch`.
pub fn content_only(recipe: &Recipe) -> bool {
    recipe.image.is_none() && recipe.content.is_some() && plan_oci::format_of(recipe) == OutputFormat::Image
}

/// Derives or parses the disk ID and each partition's IDs.
pub fn derive_ids(
    name: &str,
    recipe: &Recipe,
    ck: &Checker,
) -> Result<(DiskId, indexmap::IndexMap<String, PartitionIds>), RecipeError> {
    let table = table_of(recipe, ck)?;
    let image = recipe.image.clone().unwrap_or_default();
    let disk_id = match (table, image.disk_id.as_deref()) {
        (TableKind::Mbr, Some(t)) => DiskId::Mbr(ids::parse_mbr_disk_id(t).map_err(|m| ck.err("image.disk_id", m))?),
        (TableKind::Gpt, Some(t)) => DiskId::Gpt(ids::parse_uuid(t).map_err(|m| ck.err("image.disk_id", m))?),
        (TableKind::Mbr, None) => DiskId::Mbr(ids::derive_u32(name, "disk")),
        (TableKind::Gpt, None) => DiskId::Gpt(ids::derive_uuid(name, "disk")),
    };
    let mut out = indexmap::IndexMap::new();
    for (i, (pname, spec)) in image.partitions.iter().flatten().enumerate() {
        let spec = spec.clone().unwrap_or_default();
        let field = format!("image.partitions.{pname}");
        let number = i as u32 + 1;
        let fs = spec.filesystem.unwrap_or(FsKind::Ext4);
        let label = spec.label.clone().unwrap_or_else(|| pname.clone());
        let label = if fs == FsKind::Vfat {
            label.to_uppercase()
        } else {
            label
        };
        let uuid = match (fs, spec.uuid.as_deref()) {
            (FsKind::Vfat, Some(t)) => {
                ids::fat_volume_id_text(ids::parse_fat_volume_id(t).map_err(|m| ck.err(&format!("{field}.uuid"), m))?)
            }
            (FsKind::Vfat, None) => ids::fat_volume_id_text(ids::derive_u32(name, &format!("partition/{pname}/fs"))),
            (_, Some(t)) => ids::parse_uuid(t)
                .map_err(|m| ck.err(&format!("{field}.uuid"), m))?
                .to_string(),
            (_, None) => ids::derive_uuid(name, &format!("partition/{pname}/fs")).to_string(),
        };
        let partuuid = match (disk_id, spec.partuuid.as_deref()) {
            (DiskId::Mbr(_), Some(_)) => {
                return Err(ck.err(&format!("{field}.partuuid"), "MBR partition UUIDs follow from `image.disk_id` (`<disk_id>-<number>`); pin `image.disk_id` instead"));
            }
            (DiskId::Mbr(d), None) => ids::mbr_partuuid(d, number),
            (DiskId::Gpt(_), Some(t)) => ids::parse_uuid(t)
                .map_err(|m| ck.err(&format!("{field}.partuuid"), m))?
                .to_string(),
            (DiskId::Gpt(_), None) => ids::derive_uuid(name, &format!("partition/{pname}/partuuid")).to_string(),
        };
        out.insert(
            pname.clone(),
            PartitionIds {
                number,
                label,
                uuid,
                partuuid,
            },
        );
    }
    Ok((disk_id, out))
}

/// Checks a rendered recipe and builds the plan.
pub fn plan(
    name: String,
    recipe: &Recipe,
    recipe_files: Vec<PathBuf>,
    ck: &Checker,
    ids: (DiskId, indexmap::IndexMap<String, PartitionIds>),
) -> Result<Plan, RecipeError> {
    check_name(&name, ck)?;
    let table = table_of(recipe, ck)?;
    let image = recipe.image.clone().unwrap_or_default();
    let alignment = match &image.alignment {
        Some(t) => ck.alignment("image.alignment", t)?,
        None => DEFAULT_ALIGNMENT,
    };
    let image_size = parse_size(image.size.as_deref().unwrap_or("auto")).map_err(|m| ck.err("image.size", m))?;
    let rootfs = rootfs_source(recipe, ck)?;
    let (disk_id, part_ids) = ids;
    let mut partitions = Vec::new();
    for (pname, spec) in image.partitions.iter().flatten() {
        let spec = spec.clone().unwrap_or_default();
        let field = format!("image.partitions.{pname}");
        let f = |k: &str| format!("{field}.{k}");
        check_partition_name(pname, &field, ck)?;
        let pid = &part_ids[pname];
        let filesystem = spec.filesystem.ok_or_else(|| {
            ck.err(
                &f("filesystem"),
                "missing; write `filesystem: vfat`, `ext4`, `raw` or `none`",
            )
        })?;
        let kind_text = spec
            .kind
            .clone()
            .unwrap_or_else(|| part_type::default_name(filesystem).to_string());
        let kind = part_type::resolve(&kind_text, table).map_err(|m| ck.err(&f("type"), m))?;
        let size = match parse_size(spec.size.as_deref().unwrap_or("auto")).map_err(|m| ck.err(&f("size"), m))? {
            SizeSpec::Fixed(n) => {
                if n == 0 || n % SECTOR != 0 {
                    return Err(ck.err(&f("size"), format!("{n} bytes is not a positive multiple of 512 bytes")));
                }
                if spec.margin.is_some() {
                    return Err(ck.err(
                        &f("margin"),
                        "a margin only applies to `size: auto`; remove it or set `size: auto`",
                    ));
                }
                PartSize::Fixed(n)
            }
            SizeSpec::Auto => {
                if filesystem == FsKind::None {
                    return Err(ck.err(&f("size"), "a partition with `filesystem: none` has no content to measure; give a fixed size such as `1MiB`"));
                }
                let m = spec.margin.clone().unwrap_or_default();
                let percent = m.percent.unwrap_or(DEFAULT_MARGIN_PERCENT);
                if !(0.0..=1000.0).contains(&percent) {
                    return Err(ck.err(&f("margin.percent"), format!("{percent} is not between 0 and 1000")));
                }
                let min = match &m.min {
                    Some(t) => ck.bytes(&f("margin.min"), t)?,
                    None => DEFAULT_MARGIN_MIN,
                };
                PartSize::Auto(Margin { percent, min })
            }
        };
        let start = spec.start.as_deref().map(|t| ck.bytes(&f("start"), t)).transpose()?;
        if let Some(s) = start
            && s % SECTOR != 0
        {
            return Err(ck.err(&f("start"), format!("{s} is not a multiple of 512 bytes")));
        }
        let part_alignment = match &spec.alignment {
            Some(t) => ck.alignment(&f("alignment"), t)?,
            None => alignment,
        };
        let mount = spec
            .mount
            .as_deref()
            .map(|m| mount_point(m).map_err(|e| ck.err(&f("mount"), e)))
            .transpose()?;
        if mount.is_some() && !matches!(filesystem, FsKind::Vfat | FsKind::Ext4) {
            return Err(ck.err(
                &f("mount"),
                "only `vfat` and `ext4` partitions can take part of the root file system",
            ));
        }
        let source = match (filesystem, &spec.source) {
            (FsKind::Raw, Some(s)) => Some(ck.path(&f("source"), s)),
            (FsKind::Raw, None) => {
                return Err(ck.err(&f("source"), "missing; a `raw` partition needs `source: FILE`"));
            }
            (_, Some(_)) => {
                return Err(ck.err(&f("source"), "only `filesystem: raw` partitions take a `source`"));
            }
            (_, None) => None,
        };
        let fat_bits = match (filesystem, spec.fat) {
            (FsKind::Vfat, Some(b @ (12 | 16 | 32))) => Some(b),
            (FsKind::Vfat, Some(b)) => {
                return Err(ck.err(&f("fat"), format!("`{b}` is not a FAT variant; write 12, 16 or 32")));
            }
            (_, Some(_)) => {
                return Err(ck.err(&f("fat"), "only `vfat` partitions have a FAT variant"));
            }
            (_, None) => None,
        };
        // The label as rendered now (IDs were derived from an earlier, partial rendering).
        let label = spec.label.clone().unwrap_or_else(|| pname.clone());
        let label = if filesystem == FsKind::Vfat {
            label.to_uppercase()
        } else {
            label
        };
        check_label(&label, filesystem, &f("label"), ck)?;
        partitions.push(PartitionPlan {
            name: pname.clone(),
            number: pid.number,
            label,
            kind,
            filesystem,
            size,
            start,
            alignment: part_alignment,
            bootable: spec.bootable.unwrap_or(false),
            mount,
            source,
            fs_uuid: pid.uuid.clone(),
            partuuid: pid.partuuid.clone(),
            fat_bits,
            defined_in: origin_of(ck.origins, &field, ck.main_file),
        });
    }
    let oci = plan_oci::oci(recipe, &name, ck)?;
    if !content_only(recipe) && oci.is_none() {
        check_partitions(&partitions, table, rootfs.is_some(), ck)?;
    }
    let firmware = super::plan_firmware::firmware(recipe, ck)?;
    let blobs = blobs(&image, &firmware, ck)?;
    let infos: Vec<super::plan_boot::PartInfo> = partitions
        .iter()
        .map(|p| super::plan_boot::PartInfo {
            name: &p.name,
            kind: p.kind,
            filesystem: p.filesystem,
            mount: p.mount.as_deref(),
        })
        .collect();
    let bootloader = super::plan_boot::bootloader(recipe, table, &infos, ck)?;
    let out = recipe.output.clone().unwrap_or_default();
    let output = OutputPlan {
        compression: out.compression.unwrap_or(Compression::Xz),
        level: out.level,
        keep_raw: out.keep_raw.unwrap_or(true),
        oci,
    };
    if output.oci.is_none() {
        check_level(&output, ck)?;
    }
    check_release(recipe.release.as_ref(), ck)?;
    if output.compression == Compression::None && !output.keep_raw {
        return Err(ck.err(
            "output.keep_raw",
            "with `compression: none` the raw image is the only output; remove `keep_raw: false`",
        ));
    }
    if recipe.content.is_some() && rootfs.is_none() && !content_only(recipe) {
        return Err(ck.err(
            "content",
            "content goes into the root file system, and this recipe has no `rootfs`; add one, or drop `image` to use the recipe with `imgbuild fetch`",
        ));
    }
    let targets = if output.oci.is_some() {
        vec![Target::Container {
            name: name.clone(),
            file: format!("{name}.oci.tar"),
        }]
    } else if !partitions.is_empty() {
        vec![Target::DiskImage {
            name: name.clone(),
            file: format!("{name}.img"),
        }]
    } else {
        Vec::new()
    };
    Ok(Plan {
        targets,
        name,
        recipe_file: ck.main_file.to_path_buf(),
        recipe_files,
        rootfs,
        table,
        image_size,
        alignment,
        disk_id,
        partitions,
        blobs,
        firmware,
        bootloader,
        output,
        source_date_epoch: recipe.source_date_epoch,
        steps: super::plan_rootfs::steps(recipe, ck)?,
        overlays: super::plan_rootfs::overlays(recipe, ck),
        files: super::plan_rootfs::files(recipe, ck)?,
        content: super::plan_content::content(recipe, ck)?,
        services: services(recipe, ck)?,
        cluster: super::plan_cluster::cluster(recipe, ck)?,
    })
}

fn check_name(name: &str, ck: &Checker) -> Result<(), RecipeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ck.err(
            "name",
            format!("`{name}` cannot name output files; use letters, digits, `-`, `_` and `.` (at most 64)"),
        ))
    }
}

fn check_partition_name(name: &str, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ck.err(field, format!("partition name `{name}` must start with a letter and use only letters, digits and `_` (templates refer to it as `partitions.{name}`)")))
    }
}

fn check_label(label: &str, fs: FsKind, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    let problem = match fs {
        FsKind::Vfat if label.len() > 11 || !label.is_ascii() => Some("a FAT label is at most 11 ASCII characters"),
        FsKind::Vfat if label.chars().any(|c| "\"*+,./:;<=>?[\\]|".contains(c)) => {
            Some("a FAT label cannot contain \" * + , . / : ; < = > ? [ \\ ] |")
        }
        FsKind::Ext4 if label.len() > 16 => Some("an ext4 label is at most 16 bytes"),
        _ if label.encode_utf16().count() > 36 => Some("a partition name is at most 36 characters"),
        _ => None,
    };
    match problem {
        Some(p) => Err(ck.err(field, format!("label `{label}` is too long or invalid: {p}"))),
        None => Ok(()),
    }
}

fn check_partitions(
    parts: &[PartitionPlan],
    table: TableKind,
    has_rootfs: bool,
    ck: &Checker,
) -> Result<(), RecipeError> {
    if parts.is_empty() {
        return Err(ck.err(
            "image.partitions",
            "the image has no partitions; add at least one under `image.partitions`",
        ));
    }
    if table == TableKind::Mbr && parts.len() > 4 {
        return Err(ck.err(
            "image.partitions",
            format!(
                "an MBR holds at most 4 primary partitions, the recipe has {}; use `table: gpt`",
                parts.len()
            ),
        ));
    }
    if table == TableKind::Gpt && parts.len() > 128 {
        return Err(ck.err("image.partitions", "a GPT holds at most 128 partitions"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for p in parts {
        if let Some(m) = &p.mount {
            if seen.contains(&m.as_str()) {
                return Err(ck.err(
                    &format!("image.partitions.{}.mount", p.name),
                    format!("two partitions are mounted at `{m}`"),
                ));
            }
            seen.push(m);
        }
    }
    if has_rootfs && !seen.contains(&"/") {
        return Err(ck.err(
            "image.partitions",
            "the recipe has a `rootfs` but no partition with `mount: /` to hold it",
        ));
    }
    if !has_rootfs && let Some(p) = parts.iter().find(|p| p.mount.is_some()) {
        return Err(ck.err(
            &format!("image.partitions.{}.mount", p.name),
            "a partition has a mount point but the recipe has no `rootfs`; add `rootfs: {tar: FILE}` or remove `mount`",
        ));
    }
    Ok(())
}

fn rootfs_source(recipe: &Recipe, ck: &Checker) -> Result<Option<RootfsSource>, RecipeError> {
    let Some(r) = &recipe.rootfs else {
        return Ok(None);
    };
    match (&r.tar, &r.dir, &r.suite) {
        (Some(t), None, None) => Ok(Some(RootfsSource::Tar(ck.path("rootfs.tar", t)))),
        (None, Some(d), None) => Ok(Some(RootfsSource::Dir(ck.path("rootfs.dir", d)))),
        (None, None, Some(_)) => Ok(Some(RootfsSource::Bootstrap(super::plan_rootfs::bootstrap(r, ck)?))),
        (None, None, None) => Err(ck.err(
            "rootfs",
            "give the root file system as `suite: bookworm` (+ `architecture`), `tar: FILE.tar` or `dir: DIRECTORY`",
        )),
        _ => Err(ck.err("rootfs", "give exactly one of `suite`, `tar` or `dir`")),
    }
}

fn blobs(
    image: &super::model::ImageSpec,
    firmware: &[super::plan_firmware::FirmwarePlan],
    ck: &Checker,
) -> Result<Vec<BlobPlan>, RecipeError> {
    let mut out = Vec::new();
    for (bname, spec) in image.blobs.iter().flatten() {
        let spec = spec.clone().unwrap_or_default();
        let field = format!("image.blobs.{bname}");
        let source = match (&spec.file, &spec.firmware) {
            (Some(file), None) => BlobSource::File(ck.path(&format!("{field}.file"), file)),
            (None, Some(fw)) => {
                let (name, file) = super::plan_firmware::blob_source(fw, &format!("{field}.firmware"), firmware, ck)?;
                BlobSource::Firmware(name, file)
            }
            (Some(_), Some(_)) => {
                return Err(ck.err(&field, "give either `file` or `firmware`, not both"));
            }
            (None, None) => {
                return Err(ck.err(
                    &format!("{field}.file"),
                    "missing; a blob needs `file: PATH` or `firmware: NAME/FILE`",
                ));
            }
        };
        let offset = match (&spec.offset, spec.sector) {
            (Some(t), None) => ck.bytes(&format!("{field}.offset"), t)?,
            (None, Some(s)) => s
                .checked_mul(SECTOR)
                .ok_or_else(|| ck.err(&format!("{field}.sector"), "sector number too large"))?,
            (Some(_), Some(_)) => {
                return Err(ck.err(&field, "give either `offset` or `sector`, not both"));
            }
            (None, None) => {
                return Err(ck.err(&field, "missing its place; give `sector: 64` or `offset: 32KiB`"));
            }
        };
        out.push(BlobPlan {
            name: bname.clone(),
            source,
            offset,
            defined_in: origin_of(ck.origins, &field, ck.main_file),
        });
    }
    Ok(out)
}

/// Imager tags it knows, and base URLs that a file name can follow.
fn check_release(release: Option<&crate::recipe::model::ReleaseSpec>, ck: &Checker) -> Result<(), RecipeError> {
    let Some(r) = release else { return Ok(()) };
    for tag in r.imager_devices.iter().flat_map(|d| d.items.iter()) {
        if !super::catalogue::IMAGER_DEVICES.iter().any(|(t, _)| t == tag) {
            let known: Vec<&str> = super::catalogue::IMAGER_DEVICES.iter().map(|(t, _)| *t).collect();
            return Err(ck.err(
                "release.imager_devices",
                format!(
                    "`{tag}` is no Raspberry Pi Imager device tag; use one of {}",
                    known.join(", ")
                ),
            ));
        }
    }
    for (field, url) in [("release.url", &r.url), ("release.whole_url", &r.whole_url)] {
        if let Some(u) = url {
            if !(u.starts_with("https://") || u.starts_with("http://") || u.starts_with("file://")) {
                return Err(ck.err(field, format!("`{u}` is no http(s):// or file:// URL")));
            }
        }
    }
    Ok(())
}

fn check_level(out: &OutputPlan, ck: &Checker) -> Result<(), RecipeError> {
    let Some(level) = out.level else {
        return Ok(());
    };
    let range = match out.compression {
        Compression::Xz => 0..=9,
        Compression::Zstd => 1..=19,
        Compression::Gz => 1..=9,
        Compression::None => return Err(ck.err("output.level", "`compression: none` has no level")),
    };
    if range.contains(&level) {
        Ok(())
    } else {
        Err(ck.err(
            "output.level",
            format!(
                "level {level} is outside {}..={} for {:?}",
                range.start(),
                range.end(),
                out.compression
            )
            .to_lowercase(),
        ))
    }
}
