//! Deterministic identifiers: disk identifier, partition UUIDs and file system UUIDs are
//! derived from the image name and the partition's name (so the same recipe always gives
//! the same IDs, and fstab/cmdline.txt written before the image exists agree with it),
//! unless the recipe pins them.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Bumped if the derivation ever changes, so old and new IDs cannot collide by accident.
const DERIVATION: &str = "imgbuild-ids-v1";

/// Derives 16 bytes from the image name and a purpose string.
fn derive_bytes(image: &str, purpose: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(DERIVATION.as_bytes());
    h.update([0]);
    h.update(image.as_bytes());
    h.update([0]);
    h.update(purpose.as_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// A UUID derived from the image name and purpose, laid out as a version-4 UUID.
pub fn derive_uuid(image: &str, purpose: &str) -> Uuid {
    uuid::Builder::from_random_bytes(derive_bytes(image, purpose)).into_uuid()
}

/// A 32-bit identifier (MBR disk signature, FAT volume ID); never zero.
pub fn derive_u32(image: &str, purpose: &str) -> u32 {
    let b = derive_bytes(image, purpose);
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(1)
}

/// Formats a FAT volume ID the way blkid and fstab show it: `1234-ABCD`.
pub fn fat_volume_id_text(id: u32) -> String {
    format!("{:04X}-{:04X}", id >> 16, id & 0xffff)
}

/// Parses `1234-ABCD` (or `1234abcd`, `0x1234abcd`) as a FAT volume ID.
pub fn parse_fat_volume_id(text: &str) -> Result<u32, String> {
    let t = text.trim().trim_start_matches("0x").replace('-', "");
    if t.len() != 8 {
        return Err(format!(
            "`{text}` is not a FAT volume ID; write 8 hex digits such as `1234-ABCD`"
        ));
    }
    u32::from_str_radix(&t, 16)
        .map_err(|_| format!("`{text}` is not a FAT volume ID; write 8 hex digits such as `1234-ABCD`"))
}

/// Parses an MBR disk identifier: `0x1234abcd` or `1234abcd`.
pub fn parse_mbr_disk_id(text: &str) -> Result<u32, String> {
    let t = text.trim().trim_start_matches("0x");
    if t.len() != 8 {
        return Err(format!(
            "`{text}` is not an MBR disk identifier; write 8 hex digits such as `0x1234abcd`"
        ));
    }
    u32::from_str_radix(t, 16)
        .map_err(|_| format!("`{text}` is not an MBR disk identifier; write 8 hex digits such as `0x1234abcd`"))
}

/// Parses a UUID/GUID.
pub fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim())
        .map_err(|_| format!("`{text}` is not a UUID; write one like `7d4c1ee5-5d5e-4b1c-9a6c-1a2b3c4d5e6f`"))
}

/// The PARTUUID Linux shows for partition `number` of an MBR disk: `1234abcd-02`.
pub fn mbr_partuuid(disk_id: u32, number: u32) -> String {
    format!("{disk_id:08x}-{number:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derive_uuid("pi4", "partition/root/partuuid");
        assert_eq!(a, derive_uuid("pi4", "partition/root/partuuid"));
        assert_ne!(a, derive_uuid("pi5", "partition/root/partuuid"));
        assert_ne!(a, derive_uuid("pi4", "partition/boot/partuuid"));
        assert_eq!(a.get_version_num(), 4);
    }

    #[test]
    fn text_forms() {
        assert_eq!(fat_volume_id_text(0x1234abcd), "1234-ABCD");
        assert_eq!(parse_fat_volume_id("1234-ABCD"), Ok(0x1234abcd));
        assert_eq!(parse_mbr_disk_id("0x1234abcd"), Ok(0x1234abcd));
        assert!(parse_mbr_disk_id("0x123").is_err());
        assert_eq!(mbr_partuuid(0x1234abcd, 2), "1234abcd-02");
        assert!(parse_uuid("nope").unwrap_err().contains("not a UUID"));
    }
}
