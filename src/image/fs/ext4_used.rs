//! The blocks an ext4 file system we made uses, from its own accounting: each block
//! group's bitmap, and for a group whose bitmap mke2fs left uninitialised
//! (`BLOCK_UNINIT`) the metadata such a group holds (a superblock backup and the group
//! descriptors), plus every group's bitmaps and inode table wherever flex_bg put them.
//! This is what a bmap must list for the file system to read back — not a scan of which
//! bytes of the image file happen to be allocated.

use std::io::{Read, Seek, SeekFrom};

const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
const BLOCK_UNINIT: u16 = 0x2;

fn u16_at(b: &[u8], o: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[o], b[o + 1]]))
}

fn u32_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]))
}

fn is_power_of(mut n: u64, base: u64) -> bool {
    while n > 1 && n % base == 0 {
        n /= base;
    }
    n == 1
}

/// Byte ranges `[start, end)`, relative to the file system's start, of every block in use.
pub fn used_ranges<F: Read + Seek>(f: &mut F, offset: u64) -> std::io::Result<Vec<(u64, u64)>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("ext4: {what}"));
    let mut sb = vec![0u8; 1024];
    f.seek(SeekFrom::Start(offset + 1024))?;
    f.read_exact(&mut sb)?;
    if u16_at(&sb, 0x38) != 0xEF53 {
        return Err(bad("no superblock"));
    }
    let block = 1024u64 << u32_at(&sb, 0x18).min(6);
    let incompat = u32_at(&sb, 0x60) as u32;
    let blocks = u32_at(&sb, 0x04)
        | if incompat & INCOMPAT_64BIT != 0 {
            u32_at(&sb, 0x150) << 32
        } else {
            0
        };
    let first = u32_at(&sb, 0x14);
    let per_group = u32_at(&sb, 0x20);
    let inodes_per_group = u32_at(&sb, 0x28);
    let inode_size = u16_at(&sb, 0x58).max(128);
    let reserved_gdt = u16_at(&sb, 0xCE);
    let desc_size = if incompat & INCOMPAT_64BIT != 0 {
        u16_at(&sb, 0xFE).max(32)
    } else {
        32
    };
    let sparse = u32_at(&sb, 0x64) as u32 & RO_COMPAT_SPARSE_SUPER != 0;
    let sparse2 = u32_at(&sb, 0x5C) as u32 & COMPAT_SPARSE_SUPER2 != 0;
    let backups = [u32_at(&sb, 0x24C), u32_at(&sb, 0x250)];
    if per_group == 0 || blocks <= first {
        return Err(bad("a superblock with no blocks"));
    }
    let groups = (blocks - first).div_ceil(per_group);
    let gdt_blocks = (groups * desc_size).div_ceil(block);
    let has_super = |g: u64| {
        g == 0
            || if sparse2 {
                backups.contains(&g)
            } else {
                !sparse || g == 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
            }
    };
    let mut gdt = vec![0u8; (gdt_blocks * block) as usize];
    f.seek(SeekFrom::Start(offset + (first + 1) * block))?;
    f.read_exact(&mut gdt)?;
    let mut used: Vec<(u64, u64)> = Vec::new();
    let mut mark = |from: u64, count: u64| {
        let end = (from + count).min(blocks);
        if from < end {
            used.push((from * block, end * block));
        }
    };
    // The boot block before the superblock (1 KiB blocks start at block 1).
    mark(0, first + 1);
    let itable_blocks = (inodes_per_group * inode_size).div_ceil(block);
    let mut bitmap = vec![0u8; block as usize];
    for g in 0..groups {
        let d = &gdt[(g * desc_size) as usize..((g + 1) * desc_size) as usize];
        let hi = |o: usize| if desc_size >= 64 { u32_at(d, o) << 32 } else { 0 };
        let block_bitmap = u32_at(d, 0x00) | hi(0x20);
        let inode_bitmap = u32_at(d, 0x04) | hi(0x24);
        let inode_table = u32_at(d, 0x08) | hi(0x28);
        let flags = u16_at(d, 0x12) as u16;
        let start = first + g * per_group;
        mark(block_bitmap, 1);
        mark(inode_bitmap, 1);
        mark(inode_table, itable_blocks);
        if has_super(g) {
            mark(start, 1 + gdt_blocks + reserved_gdt);
        }
        if flags & BLOCK_UNINIT != 0 {
            continue;
        }
        f.seek(SeekFrom::Start(offset + block_bitmap * block))?;
        f.read_exact(&mut bitmap)?;
        let mut run: Option<u64> = None;
        for i in 0..=per_group.min(blocks - start) {
            let set = i < per_group.min(blocks - start) && bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0;
            match (set, run) {
                (true, None) => run = Some(i),
                (false, Some(r)) => {
                    mark(start + r, i - r);
                    run = None;
                }
                _ => {}
            }
        }
    }
    used.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(used.len());
    for (s, e) in used {
        match merged.last_mut() {
            Some(p) if s <= p.1 => p.1 = p.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Ok(merged)
}
