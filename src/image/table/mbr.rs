//! The MBR (DOS) partition table: four primary entries and a disk signature, which is
//! what every Raspberry Pi boots from.

use super::TableEntry;
use crate::recipe::part_type::PartType;
use crate::recipe::size::SECTOR;
use anyhow::{Context, Result, bail};
use std::fs::File;

pub fn write(image: &mut File, signature: u32, entries: &[TableEntry]) -> Result<()> {
    if entries.len() > 4 {
        bail!("an MBR holds at most 4 primary partitions");
    }
    let mut mbr = mbrman::MBR::new_from(image, SECTOR as u32, signature.to_le_bytes()).context("creating the MBR")?;
    for (i, e) in entries.iter().enumerate() {
        let PartType::Mbr(sys) = e.kind else {
            bail!("partition {} has a GPT type in an MBR", i + 1);
        };
        mbr[i + 1] = mbrman::MBRPartitionEntry {
            boot: if e.bootable {
                mbrman::BOOT_ACTIVE
            } else {
                mbrman::BOOT_INACTIVE
            },
            // LBA-only entries: CHS is meaningless for disks this size and nothing we
            // boot reads it (firmware and Linux use the LBA fields).
            first_chs: mbrman::CHS::empty(),
            sys,
            last_chs: mbrman::CHS::empty(),
            starting_lba: u32::try_from(e.start / SECTOR).context("partition start beyond 2 TiB")?,
            sectors: u32::try_from(e.size / SECTOR).context("partition size beyond 2 TiB")?,
        };
    }
    mbr.write_into(image).context("writing the MBR")?;
    Ok(())
}
