//! GRUB for BIOS on a GPT disk, installed as `grub-bios-setup` would, without a device:
//! core.img is made by `grub-mkimage` from the root file system's own i386-pc modules
//! and written to the start of the BIOS boot partition; boot.img goes into the
//! protective MBR's code area, told where core.img starts; core.img's first sector
//! (diskboot) is told where the rest of it is. The field offsets are GRUB's
//! (include/grub/i386/pc/boot.h, grub-core/boot/i386/pc/diskboot.S); a test compares
//! the result with `grub-bios-setup`'s on the same image.

use crate::process::Cmd;
use crate::recipe::size::SECTOR;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Where Debian's grub-pc-bin keeps the i386-pc modules and images.
pub const MODULE_DIR: &str = "usr/lib/grub/i386-pc";
/// What core.img holds: enough to read the GPT and the ext4 root and find it by UUID;
/// everything else GRUB loads from `/boot/grub/i386-pc` once it has found the root.
const CORE_MODULES: &[&str] = &["biosdisk", "part_gpt", "ext2", "search"];

/// boot.img's BIOS parameter block, kept from the disk (GRUB_BOOT_MACHINE_BPB_START..END).
const BPB: std::ops::Range<usize> = 0x03..0x5a;
/// The NT disk signature and the partition table (…WINDOWS_NT_MAGIC..PART_END).
const TABLE: std::ops::Range<usize> = 0x1b8..0x1fe;
/// The sector core.img starts at, u64 (GRUB_BOOT_MACHINE_KERNEL_SECTOR).
const KERNEL_SECTOR: usize = 0x5c;
/// The BIOS drive to boot from, 0xff = the one the BIOS booted (…BOOT_DRIVE).
const BOOT_DRIVE: usize = 0x64;
/// Two bytes that skip boot.img's floppy check when set to `nop; nop` (…DRIVE_CHECK):
/// a USB stick can be given a floppy-like drive number by some BIOSes.
const DRIVE_CHECK: usize = 0x66;
/// diskboot's block list: entries of 12 bytes (start u64, sectors u16, segment u16)
/// growing down from the end of its sector; the first one says where the rest of
/// core.img is.
const FIRST_BLOCK: usize = 0x200 - 12;
/// The segment the rest of core.img is loaded to (GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20).
const LOAD_SEGMENT: u16 = 0x820;

/// Makes core.img: the modules from `modules` (a copy of the root's i386-pc directory),
/// `early` as its built-in configuration.
pub fn make_core(modules: &Path, early: &Path, out: &Path) -> Result<Vec<u8>> {
    Cmd::new("grub-mkimage")
        .args(["--format", "i386-pc", "--prefix", "/boot/grub"])
        .arg("--directory")
        .arg(modules)
        .arg("--config")
        .arg(early)
        .arg("--output")
        .arg(out)
        .args(CORE_MODULES)
        .run()
        .context("making GRUB's core.img (grub-mkimage)")?;
    Ok(fs_err::read(out)?)
}

/// Sector 0 of the disk: `boot` (boot.img) with the disk's own parameter block and
/// partition table kept from `disk` (the protective MBR), pointed at core.img at `core_lba`.
pub fn boot_sector(boot: &[u8], disk: &[u8; 512], core_lba: u64) -> Result<[u8; 512]> {
    if boot.len() != 512 || boot[0x1fe..] != [0x55, 0xaa] {
        bail!(
            "boot.img is {} bytes without a boot signature; is grub-pc-bin intact?",
            boot.len()
        );
    }
    let mut out = [0u8; 512];
    out.copy_from_slice(boot);
    out[BPB].copy_from_slice(&disk[BPB]);
    out[TABLE].copy_from_slice(&disk[TABLE]);
    out[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    out[BOOT_DRIVE] = 0xff;
    out[DRIVE_CHECK..DRIVE_CHECK + 2].copy_from_slice(&[0x90, 0x90]);
    Ok(out)
}

/// core.img with its first sector's block list naming the rest of it, at `core_lba`.
pub fn place_core(core: &[u8], core_lba: u64, room: u64) -> Result<Vec<u8>> {
    let sectors = (core.len() as u64).div_ceil(SECTOR);
    if sectors < 2 {
        bail!("core.img is {} bytes; grub-mkimage made no image", core.len());
    }
    if sectors * SECTOR > room {
        bail!(
            "core.img is {} bytes and the BIOS boot partition {room}; make the partition larger (1MiB holds it)",
            core.len()
        );
    }
    let rest = u16::try_from(sectors - 1).context("core.img is too large for its block list")?;
    let mut out = core.to_vec();
    out.resize((sectors * SECTOR) as usize, 0);
    let b = FIRST_BLOCK;
    out[b..b + 8].copy_from_slice(&(core_lba + 1).to_le_bytes());
    out[b + 8..b + 10].copy_from_slice(&rest.to_le_bytes());
    out[b + 10..b + 12].copy_from_slice(&LOAD_SEGMENT.to_le_bytes());
    // The next entry (below it) ends the list.
    out[b - 12..b].fill(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_sector_keeps_the_table_and_points_at_core() {
        let mut boot = vec![0xccu8; 512];
        boot[0x1fe] = 0x55;
        boot[0x1ff] = 0xaa;
        let mut disk = [0u8; 512];
        disk[0x1be..0x1ce].copy_from_slice(&[0, 0, 2, 0, 0xee, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
        disk[0x10] = 0x42;
        let s = boot_sector(&boot, &disk, 2048).unwrap();
        assert_eq!(s[0x1be..0x1ce], disk[0x1be..0x1ce], "the protective MBR's entry stays");
        assert_eq!(s[0x10], 0x42);
        assert_eq!(u64::from_le_bytes(s[0x5c..0x64].try_into().unwrap()), 2048);
        assert_eq!(s[0x64], 0xff);
        assert_eq!(s[0..3], [0xcc; 3], "boot.img's jump stays");
        assert!(boot_sector(&boot[..511], &disk, 1).is_err());
    }

    #[test]
    fn core_block_list_names_the_rest_of_core() {
        let core = vec![1u8; 512 * 3 + 10];
        let out = place_core(&core, 2048, 1 << 20).unwrap();
        assert_eq!(out.len(), 512 * 4);
        assert_eq!(u64::from_le_bytes(out[0x1f4..0x1fc].try_into().unwrap()), 2049);
        assert_eq!(u16::from_le_bytes(out[0x1fc..0x1fe].try_into().unwrap()), 3);
        assert_eq!(u16::from_le_bytes(out[0x1fe..0x200].try_into().unwrap()), 0x820);
        assert_eq!(out[0x1e8..0x1f4], [0; 12]);
        assert!(
            place_core(&core, 2048, 1024).is_err(),
            "too small a partition is refused"
        );
    }
}
