//! Finding and reading the boot loaders' files in the root file system (following
//! symlinks as the running system would, inside the root only), and adding the files the
//! boot loaders need where the firmware looks for them.

use crate::rootfs::{Entry, EntryKind, RootTree};
use anyhow::{Context, Result};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};

/// Symlink hops before a path counts as a loop (the kernel's limit).
const MAX_HOPS: u32 = 40;

/// Path → entry position, built once for the lookups of one image.
pub struct TreeIndex<'a> {
    tree: &'a RootTree,
    index: HashMap<&'a str, usize>,
}

impl<'a> TreeIndex<'a> {
    pub fn new(tree: &'a RootTree) -> Self {
        let index = tree
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_str(), i))
            .collect();
        TreeIndex { tree, index }
    }

    /// The regular file at `path` (relative, no leading `/`), through symlinks and hard
    /// links; `None` when it is missing, dangling or not a file. An absolute symlink
    /// target restarts at the image's root, and `..` stops there, so nothing resolves
    /// outside the root file system.
    pub fn file(&self, path: &str) -> Option<&'a Entry> {
        let mut todo: VecDeque<String> = split(path);
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                done.pop();
                continue;
            }
            done.push(part);
            let e = &self.tree.entries[*self.index.get(done.join("/").as_str())?];
            match &e.kind {
                EntryKind::Symlink { target } => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return None;
                    }
                    done.pop();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    let mut next = split(target);
                    next.extend(todo.drain(..));
                    todo = next;
                }
                EntryKind::HardLink { target } if todo.is_empty() => {
                    return self.file(target);
                }
                _ => {}
            }
        }
        let e = &self.tree.entries[*self.index.get(done.join("/").as_str())?];
        matches!(e.kind, EntryKind::File { .. }).then_some(e)
    }

    /// Every regular file directly in directory `dir` (not through symlinked names).
    pub fn files_in(&self, dir: &str) -> Vec<&'a Entry> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.tree
            .entries
            .iter()
            .filter(|e| {
                e.path
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
                    && matches!(e.kind, EntryKind::File { .. })
            })
            .collect()
    }

    /// The bytes of a file entry.
    pub fn read(&self, e: &Entry) -> Result<Vec<u8>> {
        let EntryKind::File {
            size,
            data_offset,
            source,
        } = e.kind
        else {
            anyhow::bail!("/{} is not a regular file", e.path);
        };
        let path = &self.tree.sources[source as usize];
        let mut f = fs_err::File::open(path)?;
        f.seek(SeekFrom::Start(data_offset))
            .with_context(|| format!("reading /{} from {}", e.path, path.display()))?;
        let mut out = Vec::with_capacity(size as usize);
        f.take(size)
            .read_to_end(&mut out)
            .with_context(|| format!("reading /{} from {}", e.path, path.display()))?;
        Ok(out)
    }
}

fn split(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect()
}

/// A copy of file `e` at `path`, sharing its data (nothing is read or written), root's,
/// mode 0644.
pub fn copy_at(e: &Entry, path: &str) -> Entry {
    Entry {
        path: path.to_string(),
        kind: e.kind.clone(),
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: e.mtime,
        xattrs: vec![],
    }
}

/// A new file at `path` whose bytes are the data file `source` of the tree, whole.
pub fn new_file(tree: &mut RootTree, path: &str, data: std::path::PathBuf, size: u64) -> Entry {
    tree.sources.push(data);
    Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            size,
            data_offset: 0,
            source: (tree.sources.len() - 1) as u32,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: tree.epoch,
        xattrs: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: vec![],
        }
    }

    fn file(path: &str) -> Entry {
        entry(
            path,
            EntryKind::File {
                size: 1,
                data_offset: 0,
                source: 0,
            },
        )
    }

    fn link(path: &str, target: &str) -> Entry {
        entry(path, EntryKind::Symlink { target: target.into() })
    }

    fn tree(entries: Vec<Entry>) -> RootTree {
        RootTree {
            sources: vec![],
            entries,
            pristine: true,
            key: String::new(),
            epoch: 0,
        }
    }

    #[test]
    fn follows_alternatives_and_directory_links_inside_the_root() {
        let t = tree(vec![
            entry("usr", EntryKind::Dir),
            entry("usr/lib", EntryKind::Dir),
            entry("usr/lib/shim", EntryKind::Dir),
            file("usr/lib/shim/shimx64.efi.signed.latest"),
            link("usr/lib/shim/shimx64.efi.signed", "/etc/alternatives/shim"),
            entry("etc", EntryKind::Dir),
            entry("etc/alternatives", EntryKind::Dir),
            link(
                "etc/alternatives/shim",
                "../../../../usr/lib/shim/shimx64.efi.signed.latest",
            ),
            link("lib", "usr/lib"),
            link("loop", "loop"),
        ]);
        let i = TreeIndex::new(&t);
        let want = Some("usr/lib/shim/shimx64.efi.signed.latest");
        assert_eq!(i.file("usr/lib/shim/shimx64.efi.signed").map(|e| e.path.as_str()), want);
        assert_eq!(i.file("lib/shim/shimx64.efi.signed").map(|e| e.path.as_str()), want);
        assert!(i.file("loop").is_none());
        assert!(i.file("usr/lib/shim").is_none(), "a directory is not a file");
        assert!(i.file("usr/lib/grub/i386-pc/boot.img").is_none());
        assert_eq!(i.files_in("usr/lib/shim").len(), 1);
    }
}
