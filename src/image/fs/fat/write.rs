//! Emits a planned filesystem into the image: boot sector (and FAT32
//! FSInfo and backups), both FATs, every directory, and file data streamed
//! from the sources. All writes go through [`Out`], which skips zero blocks
//! so the image stays sparse.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::dir::{self, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID};
use super::layout::{self, Geometry, SECTOR, Unsuitable};
use super::plan::{self, Allocation, Kind, ROOT, Tree};
use super::{FatError, FatOptions, FatType, Node, WriteStats};

/// Sparse-block granularity: the usual filesystem block size.
const BLOCK: u64 = 4096;
/// Read buffer for file data: large enough for throughput, small enough
/// that big files never sit in memory whole.
const CHUNK: usize = 1 << 20;

/// Validates the label; `None` for an empty one.
pub fn check_label(label: &str) -> Result<Option<[u8; 11]>, FatError> {
    let bad = |reason: &str| FatError::InvalidLabel {
        label: label.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = label.trim_end_matches(' ');
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.len() > 11 {
        return Err(bad("longer than 11 characters"));
    }
    if trimmed.starts_with(' ') {
        return Err(bad("cannot start with a space"));
    }
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'()-@^_`{}~".contains(c))
    {
        return Err(bad(
            "only ASCII letters, digits, spaces and !#$%&'()-@^_`{}~ are allowed",
        ));
    }
    let mut out = [b' '; 11];
    out[..trimmed.len()].copy_from_slice(trimmed.to_ascii_uppercase().as_bytes());
    Ok(Some(out))
}

/// Writes a volume's bytes at `base` in the image, skipping blocks of zeros.
struct Out<'a> {
    file: &'a File,
    base: u64,
}

impl Out<'_> {
    /// Writes `buf` at volume offset `at`. Zero blocks (aligned to the image
    /// file, where holes live) are skipped: the region is zero already.
    fn put(&self, at: u64, buf: &[u8]) -> Result<(), FatError> {
        let mut pos = self.base + at;
        let mut rest = buf;
        let mut pending: Option<(u64, usize, usize)> = None; // (pos, start, len)
        let mut off = 0usize;
        while !rest.is_empty() {
            let to_boundary = (BLOCK - pos % BLOCK) as usize;
            let n = to_boundary.min(rest.len());
            let nonzero = rest[..n].iter().any(|&b| b != 0);
            match (&mut pending, nonzero) {
                (Some((_, _, len)), true) => *len += n,
                (None, true) => pending = Some((pos, off, n)),
                (Some(_), false) => self.flush(buf, pending.take())?,
                (None, false) => {}
            }
            pos += n as u64;
            off += n;
            rest = &rest[n..];
        }
        self.flush(buf, pending)
    }

    fn flush(&self, buf: &[u8], run: Option<(u64, usize, usize)>) -> Result<(), FatError> {
        if let Some((pos, start, len)) = run {
            self.file
                .write_all_at(&buf[start..start + len], pos)
                .map_err(|source| FatError::Image {
                    offset: pos,
                    what: "writing",
                    source,
                })?;
        }
        Ok(())
    }
}

pub fn write(image: &File, offset: u64, size: u64, nodes: &[Node], opts: &FatOptions) -> Result<WriteStats, FatError> {
    let label = check_label(&opts.label)?;
    let tree = Tree::build(nodes)?;
    let too_small = |tree: &Tree| -> FatError {
        match plan::min_size(tree, opts.fat_type, label.is_some()) {
            Ok(needed) => FatError::TooSmall { size, needed },
            Err(e) => e,
        }
    };
    let g = match layout::choose(size, opts.fat_type) {
        Ok(g) => g,
        Err((_, Unsuitable::TooSmall)) => return Err(too_small(&tree)),
        Err(e) => return Err(layout::unsuitable_error(size, e)),
    };
    let needed = plan::clusters_needed(&tree, &g, label.is_some());
    if !plan::check_fit(&tree, &g, label.is_some(), needed)? {
        return Err(too_small(&tree));
    }
    let meta = image.metadata().map_err(|source| FatError::Image {
        offset,
        what: "reading metadata",
        source,
    })?;
    // Block devices report length 0; only a regular file can be checked.
    if meta.is_file() && meta.len() < offset + size {
        return Err(FatError::ImageTooShort {
            len: meta.len(),
            end: offset + size,
        });
    }
    let alloc = plan::allocate(&tree, &g, label.is_some());
    let out = Out {
        file: image,
        base: offset,
    };
    let params = layout::BootParams {
        oem_name: opts.oem_name,
        volume_id: opts.volume_id,
        label: label.as_ref().unwrap_or(b"NO NAME    "),
        hidden_sectors: u32::try_from(offset / SECTOR).unwrap_or(0),
    };
    write_boot(&out, &g, &params, alloc.used)?;
    write_fats(&out, &g, &alloc)?;
    write_dirs(&out, &g, &tree, &alloc, label.as_ref())?;
    write_data(&out, &g, &tree, &alloc)?;
    Ok(WriteStats {
        fat_type: g.fat_type,
        cluster_size: g.cluster_size() as u32,
        clusters_used: alloc.used,
        clusters_total: g.cluster_count,
        written: g.data_start() + alloc.used * g.cluster_size(),
    })
}

fn write_boot(out: &Out, g: &Geometry, p: &layout::BootParams, used: u64) -> Result<(), FatError> {
    let boot = layout::boot_sector(g, p);
    out.put(0, &boot)?;
    if g.fat_type != FatType::Fat32 {
        return Ok(());
    }
    let free = g.cluster_count - used;
    let next = 2 + used;
    let next_free = if free == 0 { u32::MAX } else { next as u32 };
    let info = layout::fsinfo_sector(free as u32, next_free);
    // FAT32 boot records span three sectors, each ending in 0x55AA; the
    // backup copy of all three starts at sector 6.
    let mut third = [0u8; 512];
    third[510] = 0x55;
    third[511] = 0xAA;
    for (at, sector) in [(1, &info), (2, &third), (6, &boot), (7, &info), (8, &third)] {
        out.put(at * SECTOR, sector)?;
    }
    Ok(())
}

/// Both FAT copies, covering only the entries in use (the rest is zero =
/// free). Every allocation is one contiguous run.
fn write_fats(out: &Out, g: &Geometry, alloc: &Allocation) -> Result<(), FatError> {
    let entries = 2 + alloc.used as usize;
    let (mask, bytes) = match g.fat_type {
        FatType::Fat12 => (0xFFFu32, (entries * 3).div_ceil(2)),
        FatType::Fat16 => (0xFFFF, entries * 2),
        FatType::Fat32 => (0x0FFF_FFFF, entries * 4),
    };
    let mut fat = vec![0u8; bytes];
    let mut set = |n: usize, v: u32| match g.fat_type {
        FatType::Fat12 => {
            let at = n + n / 2;
            let (lo, hi) = if n % 2 == 0 {
                (v as u8, (fat[at + 1] & 0xF0) | ((v >> 8) as u8 & 0x0F))
            } else {
                ((fat[at] & 0x0F) | ((v as u8) << 4), (v >> 4) as u8)
            };
            fat[at] = lo;
            fat[at + 1] = hi;
        }
        FatType::Fat16 => fat[n * 2..n * 2 + 2].copy_from_slice(&(v as u16).to_le_bytes()),
        FatType::Fat32 => fat[n * 4..n * 4 + 4].copy_from_slice(&v.to_le_bytes()),
    };
    // Entry 0 repeats the media byte; entry 1 is end-of-chain with the
    // "clean" bits set.
    set(0, (mask & !0xFF) | u32::from(layout::MEDIA));
    set(1, mask);
    for &idx in &alloc.order {
        let (first, count) = alloc.runs[idx];
        for c in first..first + count - 1 {
            set(c as usize, c + 1);
        }
        set((first + count - 1) as usize, mask);
    }
    for copy in 0..layout::NUM_FATS {
        out.put(g.fat_start(copy), &fat)?;
    }
    Ok(())
}

/// Builds and writes every directory.
fn write_dirs(
    out: &Out,
    g: &Geometry,
    tree: &Tree,
    alloc: &Allocation,
    label: Option<&[u8; 11]>,
) -> Result<(), FatError> {
    for d in tree.dirs_preorder() {
        let node = &tree.nodes[d];
        let (first, count) = alloc.runs[d];
        let fixed_root = d == ROOT && g.fat_type != FatType::Fat32;
        let len = if fixed_root {
            u64::from(g.root_entries) * 32
        } else {
            u64::from(count) * g.cluster_size()
        };
        let mut buf = Vec::with_capacity(len as usize);
        let t = dir::dos_time(node.mtime);
        if d == ROOT {
            if let Some(l) = label {
                let t = dir::dos_time(tree.newest);
                buf.extend_from_slice(&dir::short_entry(l, ATTR_VOLUME_ID, 0, 0, 0, t));
            }
        } else {
            // ".." of a directory directly below the root points to cluster
            // 0, on FAT32 too.
            let parent = if node.parent == ROOT {
                0
            } else {
                alloc.runs[node.parent].0
            };
            buf.extend_from_slice(&dir::short_entry(b".          ", ATTR_DIRECTORY, 0, first, 0, t));
            buf.extend_from_slice(&dir::short_entry(b"..         ", ATTR_DIRECTORY, 0, parent, 0, t));
        }
        for &c in node.children() {
            let child = &tree.nodes[c];
            let (attr, size) = match &child.kind {
                Kind::Dir { .. } => (ATTR_DIRECTORY, 0),
                // Checked against u32::MAX when the tree was built.
                Kind::File(r) => (ATTR_ARCHIVE, r.len as u32),
            };
            let s = &child.short;
            if s.needs_lfn {
                for e in dir::lfn_entries(&child.name, &s.name) {
                    buf.extend_from_slice(&e);
                }
            }
            let t = dir::dos_time(child.mtime);
            buf.extend_from_slice(&dir::short_entry(&s.name, attr, s.nt_flags, alloc.runs[c].0, size, t));
        }
        debug_assert!(buf.len() as u64 <= len);
        let at = if fixed_root {
            g.root_dir_start()
        } else {
            g.cluster_offset(first)
        };
        out.put(at, &buf)?;
    }
    Ok(())
}

/// Copies every file's bytes from its source range into its clusters.
fn write_data(out: &Out, g: &Geometry, tree: &Tree, alloc: &Allocation) -> Result<(), FatError> {
    let mut buf = vec![0u8; CHUNK];
    for &idx in &alloc.order {
        let node = &tree.nodes[idx];
        let Kind::File(range) = &node.kind else {
            continue;
        };
        let source_err = |source: io::Error| FatError::Source {
            path: range.path.clone(),
            node: node.path.clone(),
            source,
        };
        let src = File::open(&range.path).map_err(source_err)?;
        let start = g.cluster_offset(alloc.runs[idx].0);
        let mut done = 0u64;
        while done < range.len {
            let want = (range.len - done).min(CHUNK as u64) as usize;
            let got = read_full(&src, &mut buf[..want], range.offset + done).map_err(source_err)?;
            if got < want {
                return Err(FatError::SourceTooShort {
                    path: range.path.clone(),
                    node: node.path.clone(),
                    offset: range.offset,
                    expected: range.len,
                    got: done + got as u64,
                });
            }
            out.put(start + done, &buf[..want])?;
            done += want as u64;
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(f: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
