//! Volume geometry: which FAT type and cluster size a size gets, where the
//! FATs, the FAT12/16 root directory and the data region sit, and how many
//! clusters result. Also encodes the boot sector (BPB) and the FAT32 FSInfo
//! sector from that geometry.

use super::{FatError, FatType};

pub const SECTOR: u64 = 512;
/// Fixed root directory size on FAT12/16, as mkfs.fat uses for disks.
pub const ROOT_ENTRIES_FAT16: u32 = 512;
pub const NUM_FATS: u32 = 2;
pub const MEDIA: u8 = 0xF8;
/// The cluster-count limits that decide the FAT type (Microsoft's FAT spec;
/// Linux and fsck.fat detect the type the same way, so they must be exact).
pub const MAX_CLUSTERS_FAT12: u64 = 4084;
pub const MAX_CLUSTERS_FAT16: u64 = 65524;
pub const MIN_CLUSTERS_FAT32: u64 = 65525;
/// Highest cluster count FAT32 can address (cluster numbers end at 0x0FFFFFF6).
pub const MAX_CLUSTERS_FAT32: u64 = 0x0FFF_FFF5;
/// 32 KiB clusters: larger ones are not understood by every implementation.
const MAX_SPC: u32 = 64;

/// Where everything sits, in 512-byte sectors relative to the volume start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub fat_type: FatType,
    pub total_sectors: u32,
    pub sectors_per_cluster: u32,
    pub reserved_sectors: u32,
    pub fat_sectors: u32,
    /// Entries of the fixed root directory; 0 on FAT32.
    pub root_entries: u32,
    pub cluster_count: u64,
}

impl Geometry {
    pub fn cluster_size(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * SECTOR
    }
    pub fn fat_start(&self, copy: u32) -> u64 {
        u64::from(self.reserved_sectors + copy * self.fat_sectors) * SECTOR
    }
    pub fn root_dir_start(&self) -> u64 {
        self.fat_start(NUM_FATS)
    }
    pub fn data_start(&self) -> u64 {
        self.root_dir_start() + u64::from(self.root_entries) * 32
    }
    /// Byte offset of a data cluster (numbered from 2) within the volume.
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_start() + u64::from(cluster - 2) * self.cluster_size()
    }
}

/// Why a size cannot take a given FAT type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsuitable {
    /// Too few clusters even with the smallest cluster size.
    TooSmall,
    /// Too many clusters even with the largest cluster size.
    TooLarge,
}

fn bits(t: FatType) -> u64 {
    match t {
        FatType::Fat12 => 12,
        FatType::Fat16 => 16,
        FatType::Fat32 => 32,
    }
}

/// Lays out a volume of `total` sectors with a fixed type and cluster size,
/// without checking the type's cluster-count range. `None` if it cannot fit
/// even its metadata.
pub fn compute(total: u64, fat_type: FatType, spc: u32) -> Option<Geometry> {
    let (min_reserved, root_entries) = match fat_type {
        FatType::Fat32 => (32u64, 0u32),
        _ => (1, ROOT_ENTRIES_FAT16),
    };
    let root_sectors = u64::from(root_entries) * 32 / SECTOR;
    let spc64 = u64::from(spc);
    // Size the FAT for the clusters there would be without any FAT; that
    // over-estimates slightly, and a FAT larger than needed is valid.
    let est_clusters = total.checked_sub(min_reserved + root_sectors)? / spc64;
    let fat_sectors = ((est_clusters + 2) * bits(fat_type)).div_ceil(8 * SECTOR);
    let meta = min_reserved + NUM_FATS as u64 * fat_sectors + root_sectors;
    // Pad the reserved area so the data region starts on a cluster boundary
    // (as mkfs.fat does): clusters then line up with flash erase blocks and
    // 4 KiB pages when the partition itself is aligned.
    let pad = (spc64 - meta % spc64) % spc64;
    let data_start = meta + pad;
    let cluster_count = total.checked_sub(data_start)? / spc64;
    if cluster_count == 0 {
        return None;
    }
    Some(Geometry {
        fat_type,
        total_sectors: u32::try_from(total).ok()?,
        sectors_per_cluster: spc,
        reserved_sectors: u32::try_from(min_reserved + pad).ok()?,
        fat_sectors: u32::try_from(fat_sectors).ok()?,
        root_entries,
        cluster_count,
    })
}

fn in_range(t: FatType, clusters: u64) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let (lo, hi) = match t {
        FatType::Fat12 => (1, MAX_CLUSTERS_FAT12),
        FatType::Fat16 => (MAX_CLUSTERS_FAT12 + 1, MAX_CLUSTERS_FAT16),
        FatType::Fat32 => (MIN_CLUSTERS_FAT32, MAX_CLUSTERS_FAT32),
    };
    if clusters < lo {
        Less
    } else if clusters > hi {
        Greater
    } else {
        Equal
    }
}

/// Starting cluster size (sectors) for a size, following the usual
/// Microsoft/mkfs.fat tables; `for_type` then nudges it into range.
fn preferred_spc(t: FatType, bytes: u64) -> u32 {
    const MIB: u64 = 1 << 20;
    match t {
        FatType::Fat32 => match bytes {
            b if b < 260 * MIB => 1,
            b if b < 8192 * MIB => 8,
            b if b < 16384 * MIB => 16,
            b if b < 32768 * MIB => 32,
            _ => 64,
        },
        FatType::Fat16 => match bytes {
            b if b <= 16 * MIB => 2,
            b if b <= 128 * MIB => 4,
            b if b <= 256 * MIB => 8,
            b if b <= 512 * MIB => 16,
            b if b <= 1024 * MIB => 32,
            _ => 64,
        },
        FatType::Fat12 => 1,
    }
}

/// Geometry for `total` sectors of a fixed type: start from the preferred
/// cluster size and halve or double it until the cluster count lies in the
/// type's range.
pub fn for_type(total: u64, t: FatType) -> Result<Geometry, Unsuitable> {
    let mut spc = preferred_spc(t, total * SECTOR);
    let mut tried_smaller = false;
    loop {
        let geo = compute(total, t, spc);
        let order = geo.map_or(std::cmp::Ordering::Less, |g| in_range(t, g.cluster_count));
        match (order, geo) {
            (std::cmp::Ordering::Equal, Some(g)) => return Ok(g),
            (std::cmp::Ordering::Greater, _) if !tried_smaller && spc < MAX_SPC => spc *= 2,
            (std::cmp::Ordering::Greater, _) => return Err(Unsuitable::TooLarge),
            (_, _) if spc > 1 => {
                tried_smaller = true;
                spc /= 2;
            }
            _ => return Err(Unsuitable::TooSmall),
        }
    }
}

/// Geometry for a volume of `size` bytes: the requested type, or the first
/// of FAT32, FAT16, FAT12 that the size allows.
pub fn choose(size: u64, requested: Option<FatType>) -> Result<Geometry, (FatType, Unsuitable)> {
    let total = size / SECTOR;
    if total > u64::from(u32::MAX) {
        return Err((requested.unwrap_or(FatType::Fat32), Unsuitable::TooLarge));
    }
    match requested {
        Some(t) => for_type(total, t).map_err(|e| (t, e)),
        None => for_type(total, FatType::Fat32)
            .or_else(|_| for_type(total, FatType::Fat16))
            .or_else(|_| for_type(total, FatType::Fat12))
            .map_err(|e| (FatType::Fat12, e)),
    }
}

pub fn unsuitable_error(size: u64, (fat_type, why): (FatType, Unsuitable)) -> FatError {
    let reason = match why {
        Unsuitable::TooSmall => "too few sectors for the minimum cluster count".to_string(),
        Unsuitable::TooLarge => "too many clusters even with 32 KiB clusters".to_string(),
    };
    FatError::UnsuitableSize { size, fat_type, reason }
}

/// Fields of the boot sector that do not come from the geometry.
pub struct BootParams<'a> {
    pub oem_name: [u8; 8],
    pub volume_id: u32,
    /// 11 bytes, space padded; "NO NAME    " when unlabelled.
    pub label: &'a [u8; 11],
    /// Sectors before the volume on the disk (its start LBA).
    pub hidden_sectors: u32,
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Encodes the boot sector (BIOS parameter block plus a tiny boot stub).
pub fn boot_sector(g: &Geometry, p: &BootParams) -> [u8; 512] {
    let mut b = [0u8; 512];
    let fat32 = g.fat_type == FatType::Fat32;
    // The extended BPB ends at 0x5A on FAT32 and at 0x3E otherwise; the jump
    // skips over it to the stub.
    let code_at: usize = if fat32 { 0x5A } else { 0x3E };
    b[0] = 0xEB;
    b[1] = (code_at - 2) as u8;
    b[2] = 0x90;
    b[3..11].copy_from_slice(&p.oem_name);
    put16(&mut b, 11, SECTOR as u16);
    b[13] = g.sectors_per_cluster as u8;
    put16(&mut b, 14, g.reserved_sectors as u16);
    b[16] = NUM_FATS as u8;
    put16(&mut b, 17, g.root_entries as u16);
    if !fat32 && g.total_sectors < 0x10000 {
        put16(&mut b, 19, g.total_sectors as u16);
    } else {
        put32(&mut b, 32, g.total_sectors);
    }
    b[21] = MEDIA;
    if !fat32 {
        put16(&mut b, 22, g.fat_sectors as u16);
    }
    // CHS geometry is meaningless for images; these are the usual LBA-era
    // values.
    put16(&mut b, 24, 63);
    put16(&mut b, 26, 255);
    put32(&mut b, 28, p.hidden_sectors);
    let ext = if fat32 {
        put32(&mut b, 36, g.fat_sectors);
        put16(&mut b, 40, 0); // flags: FAT mirroring on
        put16(&mut b, 42, 0); // version 0.0
        put32(&mut b, 44, 2); // root directory cluster
        put16(&mut b, 48, 1); // FSInfo sector
        put16(&mut b, 50, 6); // backup boot sector
        0x40
    } else {
        0x24
    };
    b[ext] = 0x80; // drive number: hard disk
    b[ext + 2] = 0x29; // extended boot signature: the next three fields are valid
    put32(&mut b, ext + 3, p.volume_id);
    b[ext + 7..ext + 18].copy_from_slice(p.label);
    let fs_type: &[u8; 8] = match g.fat_type {
        FatType::Fat12 => b"FAT12   ",
        FatType::Fat16 => b"FAT16   ",
        FatType::Fat32 => b"FAT32   ",
    };
    b[ext + 18..ext + 26].copy_from_slice(fs_type);
    // Boot stub: `int 0x18` asks the BIOS to try the next boot device; if it
    // returns, halt forever.
    b[code_at..code_at + 5].copy_from_slice(&[0xCD, 0x18, 0xF4, 0xEB, 0xFD]);
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

/// FAT32 FSInfo sector: free cluster count and where to look for the next
/// free cluster, so drivers need not scan the FAT at mount.
pub fn fsinfo_sector(free: u32, next_free: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    put32(&mut b, 0, 0x4161_5252);
    put32(&mut b, 484, 0x6141_7272);
    put32(&mut b, 488, free);
    put32(&mut b, 492, next_free);
    put32(&mut b, 508, 0xAA55_0000);
    b
}

#[cfg(test)]
mod unit {
    use super::*;
    const MIB: u64 = 1 << 20;

    #[test]
    fn type_boundaries_are_respected() {
        for mib in [1u64, 2, 3, 4, 8, 16, 32, 33, 34, 40, 64, 128, 256, 300, 1024, 9000] {
            let g = choose(mib * MIB, None).unwrap();
            let c = g.cluster_count;
            match g.fat_type {
                FatType::Fat12 => assert!(c <= MAX_CLUSTERS_FAT12),
                FatType::Fat16 => assert!((4085..=65524).contains(&c)),
                FatType::Fat32 => assert!(c >= 65525),
            }
            assert_eq!(g.data_start() % g.cluster_size(), 0, "data aligned");
            // The FAT must have an entry for every cluster plus the two
            // reserved ones.
            assert!(u64::from(g.fat_sectors) * 512 * 8 / bits(g.fat_type) >= c + 2);
        }
        // Sweep: every geometry any size gets must be self-consistent.
        let sizes = (1..20_000u64).map(|k| k * 32 * 1024).chain((1..2048).map(|g| g << 30));
        for size in sizes {
            for t in [None, Some(FatType::Fat12), Some(FatType::Fat16), Some(FatType::Fat32)] {
                let Ok(g) = choose(size, t) else { continue };
                let c = g.cluster_count;
                assert_eq!(in_range(g.fat_type, c), std::cmp::Ordering::Equal, "{size} {t:?}");
                assert!(u64::from(g.fat_sectors) * 512 * 8 / bits(g.fat_type) >= c + 2);
                assert_eq!(g.data_start() % g.cluster_size(), 0);
                assert!(g.data_start() + c * g.cluster_size() <= size);
                assert!(g.reserved_sectors <= 0xFFFF && g.sectors_per_cluster <= 128);
            }
        }
        assert_eq!(choose(32 * MIB, None).unwrap().fat_type, FatType::Fat16);
        assert_eq!(choose(34 * MIB, None).unwrap().fat_type, FatType::Fat32);
        assert_eq!(choose(MIB, None).unwrap().fat_type, FatType::Fat12);
        let g = choose(1024 * MIB, None).unwrap();
        assert_eq!((g.fat_type, g.cluster_size()), (FatType::Fat32, 4096));
        assert!(choose(1024 * MIB, Some(FatType::Fat12)).is_err());
        assert!(choose(MIB, Some(FatType::Fat32)).is_err());
    }
}
