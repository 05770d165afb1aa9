//! The GUID partition table: protective MBR, primary header and entries at the start,
//! backup entries and header at the end, all GUIDs from the recipe (never random).

use super::TableEntry;
use crate::recipe::part_type::PartType;
use crate::recipe::size::SECTOR;
use anyhow::{Context, Result, bail};
use gpt::disk::LogicalBlockSize;
use std::collections::BTreeMap;
use std::fs::File;

/// GPT attribute bit 2: legacy BIOS bootable.
const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

pub fn write(image: &mut File, disk_size: u64, guid: uuid::Uuid, entries: &[TableEntry]) -> Result<()> {
    let total_lba = disk_size / SECTOR;
    let pmbr = gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(total_lba - 1).unwrap_or(u32::MAX));
    pmbr.overwrite_lba0(image).context("writing the protective MBR")?;

    let mut parts = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let PartType::Gpt(type_guid) = e.kind else {
            bail!("partition {} has an MBR type in a GPT", i + 1);
        };
        let part_guid = e.partuuid.context("GPT partition without a UUID")?;
        parts.insert(
            i as u32 + 1,
            gpt::partition::Partition {
                part_type_guid: gpt::partition_types::Type {
                    guid: type_guid,
                    os: gpt::partition_types::OperatingSystem::None,
                },
                part_guid,
                first_lba: e.start / SECTOR,
                last_lba: (e.start + e.size) / SECTOR - 1,
                flags: if e.bootable { LEGACY_BIOS_BOOTABLE } else { 0 },
                name: e.name.clone(),
            },
        );
    }
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(&mut *image, Some(guid))
        .context("creating the GPT")?;
    disk.update_partitions(parts).context("filling the GPT")?;
    disk.write().context("writing the GPT")?;
    Ok(())
}
