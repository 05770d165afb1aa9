//! [`FatReader`]: reads any FAT12/16/32 volume (ours or mkfs.fat's) from a
//! byte region of a file, for `imgbuild inspect`. It trusts nothing: every
//! cluster number, chain length and offset is checked against the volume, so
//! a damaged image gives a `Corrupt` error instead of a panic or a hang.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::dir;
use super::layout::{MAX_CLUSTERS_FAT12, MAX_CLUSTERS_FAT16};
use super::parse::{field, le16, le32, parse_dir};
use super::{DirEntryInfo, FatError, FatInfo, FatType};

/// Contiguous clusters are read in one call up to this many bytes.
const READ_CHUNK: u64 = 1 << 20;
/// Directories kept parsed at once.
const DIR_CACHE: usize = 64;

/// An open FAT volume. The first FAT is held in memory (a few MiB for
/// typical boot partitions) for chain lookups and the free count.
pub struct FatReader {
    file: File,
    offset: u64,
    size: u64,
    info: FatInfo,
    /// Byte offsets within the volume.
    root_start: u64,
    root_len: u64,
    data_start: u64,
    /// First cluster of the root directory on FAT32; 0 on FAT12/16.
    root_cluster: u32,
    fat: Vec<u8>,
    dirs: HashMap<u32, CachedDir>,
}

/// A parsed directory and its entries by folded long and short name.
struct CachedDir {
    entries: Vec<DirEntryInfo>,
    index: HashMap<String, usize>,
}

fn corrupt(reason: impl Into<String>) -> FatError {
    FatError::Corrupt { reason: reason.into() }
}

impl FatReader {
    /// Opens the volume of `size` bytes at byte `offset` of `image`.
    pub fn open(image: File, offset: u64, size: u64) -> Result<Self, FatError> {
        let not_fat = |reason: &str| FatError::NotFat {
            reason: reason.to_string(),
        };
        if size < 512 {
            return Err(not_fat("region smaller than one sector"));
        }
        let mut b = [0u8; 512];
        image.read_exact_at(&mut b, offset).map_err(|source| FatError::Image {
            offset,
            what: "reading the boot sector",
            source,
        })?;
        let bps = u32::from(le16(&b, 11));
        let spc = u32::from(b[13]);
        let reserved = u64::from(le16(&b, 14));
        let nfats = u64::from(b[16]);
        let root_entries = u64::from(le16(&b, 17));
        let total = match le16(&b, 19) {
            0 => u64::from(le32(&b, 32)),
            n => u64::from(n),
        };
        let fat16_len = u64::from(le16(&b, 22));
        let fat_len = if fat16_len != 0 {
            fat16_len
        } else {
            u64::from(le32(&b, 36))
        };
        if ![512, 1024, 2048, 4096].contains(&bps) || !spc.is_power_of_two() {
            return Err(not_fat("bad sector or cluster size in the boot sector"));
        }
        if reserved == 0 || nfats == 0 || fat_len == 0 || total == 0 {
            return Err(not_fat("boot sector has zero reserved sectors, FATs or size"));
        }
        let bps64 = u64::from(bps);
        let root_sectors = (root_entries * 32).div_ceil(bps64);
        let data_sector = reserved + nfats * fat_len + root_sectors;
        let clusters = total
            .checked_sub(data_sector)
            .ok_or_else(|| corrupt("metadata extends past the end of the volume"))?
            / u64::from(spc);
        // A zero 16-bit FAT size means the FAT32 BPB layout; otherwise the
        // cluster count alone decides, as the FAT specification says.
        let fat_type = if fat16_len == 0 {
            FatType::Fat32
        } else if clusters <= MAX_CLUSTERS_FAT12 {
            FatType::Fat12
        } else if clusters <= MAX_CLUSTERS_FAT16 {
            FatType::Fat16
        } else {
            return Err(corrupt(format!("FAT12/16 layout with {clusters} clusters")));
        };
        if total * bps64 > size {
            return Err(corrupt(format!(
                "volume claims {} bytes, region has {size}",
                total * bps64
            )));
        }
        let ext = if fat_type == FatType::Fat32 { 0x40 } else { 0x24 };
        let (volume_id, bs_label) = match b[ext + 2] {
            0x29 => (le32(&b, ext + 3), Some(field(&b[ext + 7..ext + 18]))),
            0x28 => (le32(&b, ext + 3), None),
            _ => (0, None),
        };
        let fat_bits = match fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        let fat_bytes = ((clusters + 2) * fat_bits).div_ceil(8);
        if fat_bytes > fat_len * bps64 {
            return Err(corrupt(format!("{clusters} clusters but the FAT has room for fewer")));
        }
        let mut fat = vec![0u8; fat_bytes as usize];
        let fat_at = offset + reserved * bps64;
        image
            .read_exact_at(&mut fat, fat_at)
            .map_err(|source| FatError::Image {
                offset: fat_at,
                what: "reading the FAT",
                source,
            })?;
        let cluster_size = u64::from(spc) * bps64;
        let mut r = FatReader {
            file: image,
            offset,
            size,
            info: FatInfo {
                fat_type,
                label: String::new(),
                volume_id,
                oem_name: field(&b[3..11]),
                bytes_per_sector: bps,
                cluster_size: cluster_size as u32,
                total_clusters: clusters,
                free_clusters: 0,
                used_bytes: 0,
                size_bytes: total * bps64,
            },
            root_start: (reserved + nfats * fat_len) * bps64,
            root_len: root_entries * 32,
            data_start: data_sector * bps64,
            root_cluster: if fat_type == FatType::Fat32 {
                le32(&b, 44) & 0x0FFF_FFFF
            } else {
                0
            },
            fat,
            dirs: HashMap::new(),
        };
        let free = (2..clusters + 2).filter(|&c| r.next(c as u32) == 0).count() as u64;
        r.info.free_clusters = free;
        r.info.used_bytes = (clusters - free) * cluster_size;
        let (_, dir_label) = r.read_dir(0)?;
        r.info.label = dir_label.or(bs_label).filter(|l| l != "NO NAME").unwrap_or_default();
        Ok(r)
    }

    pub fn info(&self) -> FatInfo {
        self.info.clone()
    }

    /// FAT entry for cluster `c` (the next cluster, 0 = free).
    fn next(&self, c: u32) -> u32 {
        let c = c as usize;
        match self.info.fat_type {
            FatType::Fat12 => {
                let v = le16(&self.fat, c + c / 2);
                u32::from(if c % 2 == 1 { v >> 4 } else { v & 0xFFF })
            }
            FatType::Fat16 => u32::from(le16(&self.fat, c * 2)),
            FatType::Fat32 => le32(&self.fat, c * 4) & 0x0FFF_FFFF,
        }
    }

    fn is_end(&self, v: u32) -> bool {
        v >= match self.info.fat_type {
            FatType::Fat12 => 0xFF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }

    fn valid(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) < self.info.total_clusters + 2
    }

    /// The cluster chain from `first`, at most `limit` clusters long.
    fn chain(&self, first: u32, limit: u64) -> Result<Vec<u32>, FatError> {
        let mut out = Vec::new();
        let mut c = first;
        while (out.len() as u64) < limit {
            if !self.valid(c) {
                return Err(corrupt(format!(
                    "chain from cluster {first} reaches invalid cluster {c}"
                )));
            }
            out.push(c);
            // A chain longer than the volume has clusters must loop.
            if out.len() as u64 > self.info.total_clusters {
                return Err(corrupt(format!("cluster chain from {first} loops")));
            }
            let n = self.next(c);
            if self.is_end(n) {
                break;
            }
            c = n;
        }
        Ok(out)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<(), FatError> {
        if at + buf.len() as u64 > self.size {
            return Err(corrupt(format!("read at byte {at} past the end of the volume")));
        }
        let offset = self.offset + at;
        self.file.read_exact_at(buf, offset).map_err(|source| FatError::Image {
            offset,
            what: "reading",
            source,
        })
    }

    /// Streams the clusters of a chain to `out`, `len` bytes in total;
    /// contiguous clusters are read together.
    fn copy_chain(
        &self,
        first: u32,
        len: u64,
        out: &mut dyn FnMut(&[u8]) -> Result<(), FatError>,
    ) -> Result<(), FatError> {
        let cs = u64::from(self.info.cluster_size);
        let chain = self.chain(first, len.div_ceil(cs))?;
        if (chain.len() as u64) * cs < len {
            return Err(corrupt(format!(
                "chain from cluster {first} is shorter than {len} bytes"
            )));
        }
        let mut done = 0u64;
        let mut i = 0;
        while done < len {
            let mut run = 1;
            while i + run < chain.len()
                && chain[i + run] == chain[i] + run as u32
                && (run as u64 + 1) * cs <= READ_CHUNK
            {
                run += 1;
            }
            let n = (run as u64 * cs).min(len - done);
            let mut buf = vec![0u8; n as usize];
            self.read_at(&mut buf, self.data_start + u64::from(chain[i] - 2) * cs)?;
            out(&buf)?;
            done += n;
            i += run;
        }
        Ok(())
    }

    /// Entries of the directory starting at `cluster` (0 = root), and the
    /// volume label entry if one is there.
    fn read_dir(&self, cluster: u32) -> Result<(Vec<DirEntryInfo>, Option<String>), FatError> {
        let mut bytes = Vec::new();
        if cluster == 0 && self.info.fat_type != FatType::Fat32 {
            bytes.resize(self.root_len as usize, 0);
            self.read_at(&mut bytes, self.root_start)?;
        } else {
            let first = if cluster == 0 { self.root_cluster } else { cluster };
            // A directory holds at most 65536 entries (2 MiB); a longer
            // chain is damage, and is not read into memory.
            let cs = u64::from(self.info.cluster_size);
            let n = self.chain(first, (65_536 * 32u64).div_ceil(cs))?.len() as u64;
            self.copy_chain(first, n * cs, &mut |b| {
                bytes.extend_from_slice(b);
                Ok(())
            })?;
        }
        Ok(parse_dir(&bytes, self.info.fat_type == FatType::Fat32))
    }

    /// The parsed directory at `cluster` (0 = root), cached: looking up
    /// every file of a 2,000-entry directory must not re-read it each time.
    fn cached(&mut self, cluster: u32) -> Result<&CachedDir, FatError> {
        if !self.dirs.contains_key(&cluster) {
            let (entries, _) = self.read_dir(cluster)?;
            let mut index = HashMap::new();
            for (i, e) in entries.iter().enumerate() {
                index.entry(dir::fold(&e.short_name)).or_insert(i);
                index.entry(dir::fold(&e.name)).or_insert(i);
            }
            // Bounded, so walking a huge tree does not hold all of it.
            if self.dirs.len() >= DIR_CACHE {
                self.dirs.clear();
            }
            self.dirs.insert(cluster, CachedDir { entries, index });
        }
        self.dirs
            .get(&cluster)
            .ok_or_else(|| corrupt("directory cache lost an entry"))
    }

    /// Finds the entry for a '/'-separated path; `None` for the root.
    fn lookup(&mut self, path: &str) -> Result<Option<DirEntryInfo>, FatError> {
        let mut cluster = 0u32;
        let mut found: Option<DirEntryInfo> = None;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            if found.as_ref().is_some_and(|f| !f.is_dir) {
                return Err(FatError::NotADirectory { path: path.to_string() });
            }
            let d = self.cached(cluster)?;
            let hit = d
                .index
                .get(&dir::fold(comp))
                .map(|&i| d.entries[i].clone())
                .ok_or_else(|| FatError::NotFound { path: path.to_string() })?;
            if hit.is_dir && hit.first_cluster == 0 {
                return Err(corrupt(format!("directory {comp:?} has no cluster")));
            }
            cluster = hit.first_cluster;
            found = Some(hit);
        }
        Ok(found)
    }

    /// Streams a file's contents to `out`; returns its size.
    pub fn read_file_to(&mut self, path: &str, out: &mut dyn Write) -> Result<u64, FatError> {
        let e = self
            .lookup(path)?
            .ok_or_else(|| FatError::IsADirectory { path: path.to_string() })?;
        if e.is_dir {
            return Err(FatError::IsADirectory { path: path.to_string() });
        }
        if e.size > 0 {
            self.copy_chain(e.first_cluster, e.size, &mut |b| {
                out.write_all(b).map_err(|source| FatError::Image {
                    offset: 0,
                    what: "writing extracted data",
                    source,
                })
            })?;
        }
        Ok(e.size)
    }

    /// A file's contents; path is '/'-separated and matched case-insensitively
    /// against long and short names.
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FatError> {
        let mut v = Vec::new();
        self.read_file_to(path, &mut v)?;
        Ok(v)
    }

    /// Entries of a directory ("" or "/" for the root), without `.`, `..`
    /// and the volume label, in on-disk order.
    pub fn list(&mut self, dir: &str) -> Result<Vec<DirEntryInfo>, FatError> {
        let cluster = match self.lookup(dir)? {
            None => 0,
            Some(e) if e.is_dir => e.first_cluster,
            Some(_) => {
                return Err(FatError::NotADirectory { path: dir.to_string() });
            }
        };
        Ok(self.cached(cluster)?.entries.clone())
    }
}
