//! `image.bootloader` checked against the layout: every loader finds the partition it
//! lives in (a BIOS boot partition for GRUB's core.img, a mounted ESP for the UEFI
//! files) and the root file system it boots, so a build never starts with a loader
//! that has nowhere to go.

use super::checker::Checker;
use super::error::RecipeError;
use super::model::{FsKind, LoaderKind, Recipe, TableKind};
use super::part_type::{self, PartType};
use serde::Serialize;
use std::path::PathBuf;

/// The menu waits this long unless the recipe says otherwise.
const DEFAULT_TIMEOUT: u32 = 3;

/// What the image stage installs, with the partitions it needs already found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootloaderPlan {
    /// GRUB for BIOS: the name of the `bios-boot` partition that holds core.img.
    pub bios: Option<String>,
    /// GRUB for UEFI on this ESP (by partition name), behind shim when `shim`.
    pub efi: Option<EfiPlan>,
    /// The partition mounted at `/` (kernel, initramfs and /boot/grub live there).
    pub root: String,
    pub title: String,
    pub kernel_args: String,
    pub timeout: u32,
    pub defined_in: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EfiPlan {
    pub esp: String,
    /// Its mount point in the root file system (`/boot/efi`): where the loader files go.
    pub mount: String,
    pub shim: bool,
}

const FIELD: &str = "image.bootloader";

/// What the check needs of a planned partition (`plan.rs` owns the full plan).
pub struct PartInfo<'a> {
    pub name: &'a str,
    pub kind: PartType,
    pub filesystem: FsKind,
    pub mount: Option<&'a str>,
}

/// Checks `image.bootloader` against the planned partitions.
pub fn bootloader(
    recipe: &Recipe,
    table: TableKind,
    partitions: &[PartInfo],
    ck: &Checker,
) -> Result<Option<BootloaderPlan>, RecipeError> {
    let Some(spec) = recipe.image.as_ref().and_then(|i| i.bootloader.as_ref()) else {
        return Ok(None);
    };
    let install = spec.install.clone().unwrap_or_default();
    let field = format!("{FIELD}.install");
    if install.is_empty() {
        return Err(ck.err(
            &field,
            "names no boot loader; list `grub-bios`, `grub-efi` and/or `shim`, or remove `image.bootloader`",
        ));
    }
    let has = |k: LoaderKind| install.contains(&k);
    if has(LoaderKind::Shim) && !has(LoaderKind::GrubEfi) {
        return Err(ck.err(&field, "`shim` starts GRUB for UEFI and needs it too; add `grub-efi`"));
    }
    let of_type = |name: &str| -> Option<&PartInfo> {
        let want = part_type::resolve(name, table).ok()?;
        partitions.iter().find(|p| p.kind == want)
    };
    let bios = if has(LoaderKind::GrubBios) {
        if table != TableKind::Gpt {
            return Err(ck.err(
                &field,
                "grub-bios is installed for a GPT disk (core.img in a BIOS boot partition); set `image.table: gpt`",
            ));
        }
        let p = of_type("bios-boot").ok_or_else(|| {
            ck.err(
                &field,
                "grub-bios needs a BIOS boot partition for core.img; add one to `image.partitions` with `type: bios-boot`, `filesystem: none`, `size: 1MiB`",
            )
        })?;
        if p.filesystem != FsKind::None {
            return Err(ck.err(
                &format!("image.partitions.{}.filesystem", p.name),
                "a BIOS boot partition holds GRUB's core.img and no file system; use `filesystem: none`",
            ));
        }
        Some(p.name.to_string())
    } else {
        None
    };
    let efi = if has(LoaderKind::GrubEfi) {
        let p = of_type("esp").filter(|p| p.filesystem == FsKind::Vfat).ok_or_else(|| {
            ck.err(
                &field,
                "grub-efi needs an EFI system partition; add one to `image.partitions` with `type: esp`, `filesystem: vfat`, `mount: /boot/efi`",
            )
        })?;
        let mount = p.mount.map(str::to_string).ok_or_else(|| {
            ck.err(
                &format!("image.partitions.{}.mount", p.name),
                "the ESP needs a mount point for the boot loader's files to land in; add `mount: /boot/efi`",
            )
        })?;
        Some(EfiPlan {
            esp: p.name.to_string(),
            mount,
            shim: has(LoaderKind::Shim),
        })
    } else {
        None
    };
    let root = partitions
        .iter()
        .find(|p| p.mount == Some("/"))
        .filter(|p| p.filesystem == FsKind::Ext4)
        .ok_or_else(|| {
            ck.err(
                FIELD,
                "GRUB boots the kernel from an ext4 root file system; give a partition `filesystem: ext4` with `mount: /`",
            )
        })?;
    if matches!(root.kind, PartType::Mbr(_)) && bios.is_some() {
        return Err(ck.err(&field, "grub-bios needs `image.table: gpt`"));
    }
    let title = spec
        .title
        .clone()
        .or_else(|| recipe.description.clone())
        .unwrap_or_else(|| "Debian GNU/Linux".to_string());
    check_menu_text(&title, &format!("{FIELD}.title"), ck)?;
    let kernel_args = spec.kernel_args.clone().unwrap_or_default();
    check_menu_text(&kernel_args, &format!("{FIELD}.kernel_args"), ck)?;
    Ok(Some(BootloaderPlan {
        bios,
        efi,
        root: root.name.to_string(),
        title,
        kernel_args,
        timeout: spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
        defined_in: super::merge::origin_of(ck.origins, FIELD, ck.main_file),
    }))
}

/// The text goes into grub.cfg inside quotes or as arguments: no quote, backslash,
/// newline or `$` that would change what GRUB reads.
fn check_menu_text(text: &str, field: &str, ck: &Checker) -> Result<(), RecipeError> {
    match text
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | '$' | '\n' | '\r' | ';' | '{' | '}'))
    {
        Some(c) => Err(ck.err(
            field,
            format!("`{c}` would change what GRUB reads in grub.cfg; remove it"),
        )),
        None => Ok(()),
    }
}
