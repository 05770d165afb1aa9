//! `image.bootloader`: a PC's boot loaders, installed into the image from the root file
//! system's own Debian packages, without root, loop devices or mounts.
//!
//! - `grub_cfg`: the one grub.cfg both firmware paths end in, and the stubs that find it;
//! - `grub_bios`: core.img (grub-mkimage) and boot.img, patched as grub-bios-setup does;
//! - `tree_files`: finding the packages' files in the root file system and adding copies.
//!
//! [`prepare`] runs before the partitions are written: it adds the files that live in
//! file systems (grub.cfg, the modules GRUB loads, the ESP's loaders) to the tree and
//! makes core.img; [`write_bios`] writes what lives outside them once the table is there.

pub mod grub_bios;
pub mod grub_cfg;
pub mod tree_files;

use crate::fsx::Staging;
use crate::recipe::RecipeError;
use crate::recipe::plan::{PartitionPlan, Plan};
use crate::recipe::plan_boot::BootloaderPlan;
use crate::rootfs::{Entry, RootTree};
use anyhow::{Context, Result, anyhow};
use std::io::{Read, Seek, SeekFrom, Write};
use tree_files::TreeIndex;

/// Debian's signed shim (shim-signed), its MOK manager (shim-helpers-amd64-signed, a
/// dependency), and signed GRUB (grub-efi-amd64-signed).
const SHIM: &str = "usr/lib/shim/shimx64.efi.signed";
const MOK_MANAGER: &str = "usr/lib/shim/mmx64.efi.signed";
const SIGNED_GRUB: &str = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed";

/// The tree with the loaders' files added, and what goes outside the file systems.
pub struct Prepared {
    pub tree: RootTree,
    pub bios: Option<BiosLoader>,
}

/// GRUB for BIOS: boot.img for sector 0 and core.img for the BIOS boot partition.
pub struct BiosLoader {
    pub partition: String,
    pub boot_img: Vec<u8>,
    pub core_img: Vec<u8>,
}

/// Adds the boot loaders' files to a copy of `tree` and makes core.img.
pub fn prepare(plan: &Plan, boot: &BootloaderPlan, tree: &RootTree, staging: &Staging) -> Result<Prepared> {
    let part = |name: &str| -> Result<&PartitionPlan> {
        plan.partitions
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| anyhow!("image.bootloader: partition `{name}` is not in the plan"))
    };
    let root = part(&boot.root)?;
    let ids = grub_cfg::RootIds {
        fs_uuid: &root.fs_uuid,
        partuuid: &root.partuuid,
    };
    let mut added: Vec<Entry> = Vec::new();
    let mut out = tree.clone();
    out.pristine = false;
    let index = TreeIndex::new(tree);
    let need = |path: &str, loader: &str, package: &str| -> Result<&Entry> {
        index.file(path).ok_or_else(|| {
            anyhow::Error::new(RecipeError::Field {
                file: boot.defined_in.clone(),
                field: "image.bootloader.install".into(),
                message: format!(
                    "{loader} needs /{path}, which the root file system lacks; add `{package}` to `rootfs.packages`"
                ),
            })
        })
    };
    added.push(generated(
        &mut out,
        staging,
        "boot/grub/grub.cfg",
        &grub_cfg::main(boot, &ids),
    )?);
    let mut bios = None;
    if let Some(partition) = &boot.bios {
        let boot_img = need(
            &format!("{}/boot.img", grub_bios::MODULE_DIR),
            "grub-bios",
            "grub-pc-bin",
        )?;
        let boot_img = index.read(boot_img)?;
        // The modules GRUB loads once it has found the root, where grub-install puts
        // them; also the directory grub-mkimage reads.
        let modules = staging.path("grub-i386-pc");
        fs_err::create_dir_all(&modules)?;
        for e in index.files_in(grub_bios::MODULE_DIR) {
            let name = e.path.rsplit('/').next().unwrap_or_default();
            fs_err::write(modules.join(name), index.read(e)?)?;
            if name.ends_with(".mod") || name.ends_with(".lst") {
                added.push(tree_files::copy_at(e, &format!("boot/grub/i386-pc/{name}")));
            }
        }
        let early = staging.path("grub-early.cfg");
        fs_err::write(&early, grub_cfg::find_root(&ids))?;
        let core_img = grub_bios::make_core(&modules, &early, &staging.path("core.img"))?;
        bios = Some(BiosLoader {
            partition: partition.clone(),
            boot_img,
            core_img,
        });
    }
    if let Some(efi) = &boot.efi {
        let dir = efi.mount.trim_matches('/');
        let grub = need(SIGNED_GRUB, "grub-efi", "grub-efi-amd64-signed")?;
        if efi.shim {
            let shim = need(SHIM, "shim", "shim-signed")?;
            added.push(tree_files::copy_at(shim, &format!("{dir}/EFI/BOOT/BOOTX64.EFI")));
            added.push(tree_files::copy_at(grub, &format!("{dir}/EFI/BOOT/grubx64.efi")));
            // Shim starts the MOK manager when a key enrolment is pending.
            if let Some(mm) = index.file(MOK_MANAGER) {
                added.push(tree_files::copy_at(mm, &format!("{dir}/EFI/BOOT/mmx64.efi")));
            }
        } else {
            added.push(tree_files::copy_at(grub, &format!("{dir}/EFI/BOOT/BOOTX64.EFI")));
        }
        added.push(generated(
            &mut out,
            staging,
            &format!("{dir}/EFI/debian/grub.cfg"),
            &grub_cfg::efi_stub(&ids),
        )?);
    }
    let epoch = out.epoch;
    crate::rootfs::overlay::put_entries(&mut out, added, epoch)?;
    Ok(Prepared { tree: out, bios })
}

/// A file the image stage writes itself, as a new data file of the tree.
fn generated(tree: &mut RootTree, staging: &Staging, path: &str, text: &str) -> Result<Entry> {
    let data = staging.path(&format!("boot-{}", path.replace('/', "_")));
    fs_err::write(&data, text)?;
    Ok(tree_files::new_file(tree, path, data, text.len() as u64))
}

/// Writes core.img at the start of the BIOS boot partition (at `start`, `size` bytes) and
/// boot.img into sector 0, keeping the protective MBR's table. Returns the byte range
/// core.img took.
pub fn write_bios(image: &mut std::fs::File, loader: &BiosLoader, start: u64, size: u64) -> Result<(u64, u64)> {
    let lba = start / crate::recipe::size::SECTOR;
    let core = grub_bios::place_core(&loader.core_img, lba, size)?;
    let mut disk = [0u8; 512];
    image.seek(SeekFrom::Start(0))?;
    image.read_exact(&mut disk).context("reading the protective MBR")?;
    let sector = grub_bios::boot_sector(&loader.boot_img, &disk, lba)?;
    image.seek(SeekFrom::Start(0))?;
    image.write_all(&sector).context("writing boot.img")?;
    image.seek(SeekFrom::Start(start))?;
    image.write_all(&core).context("writing core.img")?;
    Ok((start, start + core.len() as u64))
}
