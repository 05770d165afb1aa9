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

/// The byte ranges the table occupies: the MBR's sector; for GPT the protective MBR,
/// the header and its 128 entries at the start and their backup at the end.
pub fn written(disk_size: u64, disk_id: DiskId) -> Vec<(u64, u64)> {
    match disk_id {
        DiskId::Mbr(_) => vec![(0, 512)],
        DiskId::Gpt(_) => vec![(0, 34 * 512), (disk_size.saturating_sub(33 * 512), disk_size)],
    }
}

/// Writes the partition table for an image of `disk_size` bytes.
pub fn write(image: &mut File, disk_size: u64, disk_id: DiskId, entries: &[TableEntry]) -> Result<()> {
    match disk_id {
        DiskId::Mbr(sig) => mbr::write(image, sig, entries),
        DiskId::Gpt(guid) => gpt::write(image, disk_size, guid, entries),
    }
}
