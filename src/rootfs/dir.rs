//! Turns a directory holding a root file system into the canonical tar archive, keeping
//! owners, modes, hard links, symlinks, device nodes and readable xattrs, in a sorted,
//! reproducible order.

use super::entry::{Entry, EntryKind};
use super::tar_write::{DataSource, TarWriter};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

struct HostFiles<'a> {
    root: &'a Path,
}

impl DataSource for HostFiles<'_> {
    fn copy_to(&mut self, entry: &Entry, out: &mut dyn Write) -> io::Result<u64> {
        let mut f = fs_err::File::open(self.root.join(&entry.path))?;
        io::copy(&mut f, out)
    }
}

/// Packs `root` into a pax tar at `dest`.
pub fn pack(root: &Path, dest: &Path) -> Result<()> {
    let meta = fs_err::symlink_metadata(root)?;
    if !meta.is_dir() {
        anyhow::bail!("rootfs.dir {} is not a directory", root.display());
    }
    let out = std::io::BufWriter::new(fs_err::File::create(dest)?);
    let mut tar = TarWriter::new(out);
    let mut seen: HashMap<(u64, u64), String> = HashMap::new();
    let mut src = HostFiles { root };
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let host = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let entry = describe(&host, &rel, &mut seen)?;
        tar.append(&entry, &mut src)
            .with_context(|| format!("packing {}", host.display()))?;
        if entry.is_dir() {
            let mut names: Vec<String> = fs_err::read_dir(&host)?
                .map(|d| d.map(|d| d.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<_>>()?;
            // Reverse-sorted onto the stack so entries come out in sorted order.
            names.sort();
            for n in names.into_iter().rev() {
                stack.push(if rel.is_empty() { n } else { format!("{rel}/{n}") });
            }
        }
    }
    tar.finish()?;
    Ok(())
}

fn describe(host: &PathBuf, rel: &str, seen: &mut HashMap<(u64, u64), String>) -> Result<Entry> {
    let m = fs_err::symlink_metadata(host)?;
    let ft = m.file_type();
    let dev = || {
        let rdev = m.rdev();
        (libc::major(rdev), libc::minor(rdev))
    };
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        let t = fs_err::read_link(host)?;
        EntryKind::Symlink {
            target: t.to_string_lossy().into_owned(),
        }
    } else if ft.is_file() {
        if m.nlink() > 1 {
            if let Some(first) = seen.get(&(m.dev(), m.ino())) {
                EntryKind::HardLink { target: first.clone() }
            } else {
                seen.insert((m.dev(), m.ino()), rel.to_string());
                EntryKind::File {
                    size: m.len(),
                    data_offset: 0,
                    source: 0,
                }
            }
        } else {
            EntryKind::File {
                size: m.len(),
                data_offset: 0,
                source: 0,
            }
        }
    } else if ft.is_char_device() {
        let (major, minor) = dev();
        EntryKind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        let (major, minor) = dev();
        EntryKind::BlockDevice { major, minor }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else {
        anyhow::bail!("{}: sockets cannot be stored in an image", host.display());
    };
    let mut xattrs = Vec::new();
    if !ft.is_symlink() {
        // Unreadable namespaces (trusted.* as non-root) are skipped, not fatal.
        if let Ok(names) = xattr::list(host) {
            let mut names: Vec<_> = names.collect();
            names.sort();
            for n in names {
                if let Ok(Some(v)) = xattr::get(host, &n) {
                    xattrs.push((n.to_string_lossy().into_owned(), v));
                }
            }
        }
    }
    Ok(Entry {
        path: rel.to_string(),
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid() as u64,
        gid: m.gid() as u64,
        mtime: m.mtime(),
        xattrs,
    })
}
