//! File systems written into partitions: ext4 through mke2fs, FAT natively. This file
//! turns a partition's share of the root file system into what each writer takes.

pub mod ext4;
pub mod ext4_used;
pub mod fat;

use crate::image::content::PartContent;
use crate::rootfs::entry::EntryKind;
use crate::rootfs::tar_write::{SourceFiles, TarWriter};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Writes a partition's entries as a tar archive for `mke2fs -d`.
pub fn write_partition_archive(content: &PartContent, sources: &[PathBuf], dest: &Path) -> Result<()> {
    let mut data = SourceFiles::new(sources);
    let out = io::BufWriter::new(fs_err::File::create(dest)?);
    let mut tar = TarWriter::new(out);
    for e in &content.entries {
        tar.append(e, &mut data)
            .with_context(|| format!("writing {} into {}", e.path, dest.display()))?;
    }
    tar.finish().with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

/// Turns a partition's entries into FAT nodes whose data stays in the archive. FAT holds
/// only directories and regular files: anything else is an error naming the path.
pub fn fat_nodes(
    content: &PartContent,
    sources: &[PathBuf],
    mount: &str,
    epoch: i64,
    partition: &str,
) -> Result<Vec<fat::Node>> {
    let files: HashMap<&str, (u32, u64, u64)> = content
        .entries
        .iter()
        .filter_map(|e| match e.kind {
            EntryKind::File {
                size,
                data_offset,
                source,
            } => Some((e.path.as_str(), (source, data_offset, size))),
            _ => None,
        })
        .collect();
    let mut nodes = Vec::new();
    for e in &content.entries {
        if e.path.is_empty() {
            continue;
        }
        let range = |(source, offset, len): (u32, u64, u64)| fat::DataRange {
            path: sources.get(source as usize).cloned().unwrap_or_default(),
            offset,
            len,
        };
        let kind = match &e.kind {
            EntryKind::Dir => fat::NodeKind::Dir,
            EntryKind::File {
                size,
                data_offset,
                source,
            } => fat::NodeKind::File(range((*source, *data_offset, *size))),
            EntryKind::HardLink { target } => match files.get(target.as_str()) {
                Some(r) => fat::NodeKind::File(range(*r)),
                None => bail!(
                    "hard link `{}/{}` points to `{target}`, which is not a regular file",
                    mount.trim_end_matches('/'),
                    e.path
                ),
            },
            other => bail!(
                "partition `{partition}` is FAT, which cannot hold `{}/{}` ({}); keep such files out of `{mount}`",
                mount.trim_end_matches('/'),
                e.path,
                kind_name(other)
            ),
        };
        // Clamp to the build's timestamp, as reproducible builds do.
        nodes.push(fat::Node {
            path: e.path.clone(),
            kind,
            mtime: e.mtime.min(epoch),
        });
    }
    Ok(nodes)
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Dir => "a directory",
        EntryKind::File { .. } => "a file",
        EntryKind::Symlink { .. } => "a symbolic link",
        EntryKind::HardLink { .. } => "a hard link",
        EntryKind::CharDevice { .. } => "a character device",
        EntryKind::BlockDevice { .. } => "a block device",
        EntryKind::Fifo => "a FIFO",
    }
}
