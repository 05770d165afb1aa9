//! FAT12/16/32 filesystems built directly inside a byte region of an image
//! file, without root, loop devices or mounts, and read back for `inspect`.
//!
//! This file owns the public API: the input model ([`Node`], [`DataRange`],
//! [`FatOptions`]), the results ([`WriteStats`], [`FatInfo`],
//! [`DirEntryInfo`]) and the error type. The work is split into:
//! - `layout`: geometry (cluster size, FAT size, alignment) and the boot
//!   sector / FSInfo encoding;
//! - `dir`: names (8.3 short names, long file names), directory entries and
//!   DOS timestamps;
//! - `plan`: turning the flat node list into a directory tree, sizing every
//!   directory and allocating clusters; also `min_size`;
//! - `write`: emitting the bytes (sparse, deterministic);
//! - `read`: [`FatReader`], which reads any FAT12/16/32 volume, with `parse`
//!   decoding directory entries;
//! - `tests`, `tests_read` (with shared helpers in `test_util`): checks
//!   against fsck.fat and mtools.

mod dir;
mod layout;
mod parse;
mod plan;
mod read;
mod write;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_read;

use std::io;
use std::path::PathBuf;

pub use read::FatReader;

/// Where a file's bytes come from: a byte range of a file on disk (a whole
/// file, or a member inside an uncompressed tar archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRange {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File(DataRange),
}

/// One entry to place in the filesystem. `path` is relative, '/'-separated,
/// no leading '/', no '.' or '..' components, UTF-8 (non-ASCII names get long
/// file names). Parent directories may be implicit; they are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: String,
    pub kind: NodeKind,
    /// Modification time, unix seconds (UTC). Clamped to the DOS range
    /// 1980..=2107 when stored.
    pub mtime: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl std::fmt::Display for FatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// Volume label, up to 11 characters. Lowercase ASCII is uppercased;
    /// it is written to the boot sector and as a volume-label entry in the
    /// root directory. Empty means no label ("NO NAME" in the boot sector).
    pub label: String,
    /// Volume serial number; the caller derives it deterministically.
    pub volume_id: u32,
    /// `None` picks FAT32 when the size allows at least 65525 clusters,
    /// else FAT16, else FAT12.
    pub fat_type: Option<FatType>,
    /// OEM name in the boot sector, e.g. `*b"imgbuild"`.
    pub oem_name: [u8; 8],
}

impl Default for FatOptions {
    fn default() -> Self {
        FatOptions {
            label: String::new(),
            volume_id: 0,
            fat_type: None,
            oem_name: *b"imgbuild",
        }
    }
}

/// What [`write()`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    pub fat_type: FatType,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Clusters holding directories and file data.
    pub clusters_used: u64,
    /// Clusters in the data region.
    pub clusters_total: u64,
    /// Bytes from the partition's start that were written: the reserved sectors, the
    /// FATs, the FAT12/16 root directory and the clusters in use (allocated from the first).
    pub written: u64,
}

/// Summary of an existing volume, from [`FatReader::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatInfo {
    pub fat_type: FatType,
    /// From the root's volume-label entry, else the boot sector, trailing
    /// spaces trimmed; empty when neither has one (or it says "NO NAME").
    pub label: String,
    pub volume_id: u32,
    pub oem_name: String,
    pub bytes_per_sector: u32,
    pub cluster_size: u32,
    pub total_clusters: u64,
    /// Clusters whose FAT entry is 0.
    pub free_clusters: u64,
    /// `(total_clusters - free_clusters) * cluster_size`.
    pub used_bytes: u64,
    /// Size the boot sector claims (total sectors × sector size).
    pub size_bytes: u64,
}

/// One entry of a directory listing, from [`FatReader::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// Long name when present and intact, else the short name (with the NT
    /// lowercase flags applied).
    pub name: String,
    /// The 8.3 name as stored, e.g. `README~1.TXT`.
    pub short_name: String,
    pub is_dir: bool,
    pub size: u64,
    /// Last modification, unix seconds, read as UTC.
    pub mtime: i64,
    /// First data cluster; 0 for empty files.
    pub first_cluster: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("{first:?} and {second:?} differ only in letter case, but FAT names are case-insensitive")]
    NameClash { first: String, second: String },
    #[error("path {path:?} is given twice")]
    Duplicate { path: String },
    #[error("{path:?} is a file, but {child:?} needs it to be a directory")]
    ParentIsFile { path: String, child: String },
    #[error("invalid volume label {label:?}: {reason}")]
    InvalidLabel { label: String, reason: String },
    #[error("file {path:?} is {len} bytes; FAT files hold at most 4 GiB - 1 byte")]
    FileTooLarge { path: String, len: u64 },
    #[error("directory {path:?} needs {entries} entries; a FAT directory holds at most 65536")]
    DirTooLarge { path: String, entries: u64 },
    #[error(
        "the {fat_type} root directory needs {entries} entries but holds only {max}; use FAT32 or move files into subdirectories"
    )]
    RootDirFull { fat_type: FatType, entries: u64, max: u64 },
    #[error("a filesystem of {size} bytes is too small for this content: {needed} bytes are needed")]
    TooSmall { size: u64, needed: u64 },
    #[error("{size} bytes cannot hold a {fat_type} filesystem: {reason}")]
    UnsuitableSize {
        size: u64,
        fat_type: FatType,
        reason: String,
    },
    #[error("the image is {len} bytes, shorter than the filesystem's end at byte {end}")]
    ImageTooShort { len: u64, end: u64 },
    #[error("cannot read {} (source of {node:?})", path.display())]
    Source {
        path: PathBuf,
        node: String,
        #[source]
        source: io::Error,
    },
    #[error("{} ended early: {node:?} needs {expected} bytes from offset {offset}, only {got} were there", path.display())]
    SourceTooShort {
        path: PathBuf,
        node: String,
        offset: u64,
        expected: u64,
        got: u64,
    },
    #[error("I/O error on the image at byte {offset} ({what})")]
    Image {
        offset: u64,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("not a FAT filesystem: {reason}")]
    NotFat { reason: String },
    #[error("corrupt FAT filesystem: {reason}")]
    Corrupt { reason: String },
    #[error("{path:?} not found in the FAT filesystem")]
    NotFound { path: String },
    #[error("{path:?} is a directory")]
    IsADirectory { path: String },
    #[error("{path:?} is not a directory")]
    NotADirectory { path: String },
}

/// Smallest partition size in bytes (a multiple of 1 MiB) that holds `nodes`
/// with the given options, FAT overhead and directory clusters included.
/// Callers wanting headroom add their margin to this.
pub fn min_size(nodes: &[Node], opts: &FatOptions) -> Result<u64, FatError> {
    let label = write::check_label(&opts.label)?;
    let tree = plan::Tree::build(nodes)?;
    plan::min_size(&tree, opts.fat_type, label.is_some())
}

/// Writes a complete FAT filesystem of exactly `size` bytes at byte `offset`
/// of `image`, which must already be at least `offset + size` bytes long and
/// zero in that region (e.g. freshly `set_len`). Only non-zero blocks are
/// written, so the image stays sparse. The output depends only on the
/// arguments and the source bytes: no clock, no randomness.
///
/// The boot sector's "hidden sectors" field is set to `offset / 512`, which
/// is the partition's start LBA when `image` is a whole disk image.
pub fn write(
    image: &std::fs::File,
    offset: u64,
    size: u64,
    nodes: &[Node],
    opts: &FatOptions,
) -> Result<WriteStats, FatError> {
    write::write(image, offset, size, nodes, opts)
}
