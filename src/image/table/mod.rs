//! Partition tables: writes an MBR (mbrman) or a GPT with its protective MBR (gpt) into
//! the image file from the computed layout, with the recipe's deterministic identifiers.

mod gpt;
mod mbr;

use crate::recipe::part_type::PartType;
use crate::recipe::plan::DiskId;
use anyhow::Result;
use std::fs::File;

/// One table entry.
#[derive(Debug, Clone)]
pub struct TableEntry {
    pub start: u64,
    pub size: u64,
    pub kind: PartType,
    pub bootable: bool,
    /// GPT partition name (the label).
    pub name: String,
    /// GPT partition UUID (ignored for MBR).
    pub partuuid: Option<uuid::Uuid>,
}

/// Writes the partition table for an image of `disk_size` bytes.
pub fn write(image: &mut File, disk_size: u64, disk_id: DiskId, entries: &[TableEntry]) -> Result<()> {
    match disk_id {
        DiskId::Mbr(sig) => mbr::write(image, sig, entries),
        DiskId::Gpt(guid) => gpt::write(image, disk_size, guid, entries),
    }
}
