//! Recognises what a partition holds by its superblock (ext4, FAT) and reads the
//! label, UUID and space figures, straight from the image file.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// What a partition holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FsInfo {
    /// `ext4`, `ext2/3`, `vfat (FAT32)`, ... or `unknown`.
    pub kind: String,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub size: Option<u64>,
    pub used: Option<u64>,
}

/// Probes the region at `offset` of `size` bytes.
pub fn probe(image: &File, offset: u64, size: u64) -> std::io::Result<FsInfo> {
    if let Some(info) = probe_ext(image, offset)? {
        return Ok(info);
    }
    if let Ok(reader) = crate::image::fs::fat::FatReader::open(image.try_clone()?, offset, size) {
        let i = reader.info();
        let bits = match i.fat_type {
            crate::image::fs::fat::FatType::Fat12 => 12,
            crate::image::fs::fat::FatType::Fat16 => 16,
            crate::image::fs::fat::FatType::Fat32 => 32,
        };
        return Ok(FsInfo {
            kind: format!("vfat (FAT{bits})"),
            label: Some(i.label.trim().to_string()).filter(|l| !l.is_empty()),
            uuid: Some(crate::recipe::ids::fat_volume_id_text(i.volume_id)),
            size: Some(i.total_clusters * i.cluster_size as u64),
            used: Some(i.used_bytes),
        });
    }
    Ok(FsInfo {
        kind: "unknown".into(),
        label: None,
        uuid: None,
        size: None,
        used: None,
    })
}

fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as u64
}

fn probe_ext(image: &File, offset: u64) -> std::io::Result<Option<FsInfo>> {
    let mut sb = [0u8; 1024];
    if image.read_exact_at(&mut sb, offset + 1024).is_err() {
        return Ok(None);
    }
    if u16::from_le_bytes([sb[0x38], sb[0x39]]) != 0xEF53 {
        return Ok(None);
    }
    let incompat = le32(&sb, 0x60);
    let is_64bit = incompat & 0x80 != 0;
    let block = 1024u64 << le32(&sb, 0x18);
    let mut blocks = le32(&sb, 0x04);
    let mut free = le32(&sb, 0x0C);
    if is_64bit {
        blocks |= le32(&sb, 0x150) << 32;
        free |= le32(&sb, 0x158) << 32;
    }
    let extents = incompat & 0x40 != 0;
    let label_bytes = &sb[0x78..0x88];
    let label = String::from_utf8_lossy(label_bytes.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
    let uuid = uuid::Uuid::from_slice(&sb[0x68..0x78]).map(|u| u.to_string()).ok();
    Ok(Some(FsInfo {
        kind: if extents { "ext4".into() } else { "ext2/ext3".into() },
        label: Some(label).filter(|l| !l.is_empty()),
        uuid,
        size: Some(blocks * block),
        used: Some((blocks - free.min(blocks)) * block),
    }))
}
