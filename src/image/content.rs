//! Which part of the root file system goes into which partition: like fstab, each entry
//! goes to the partition with the deepest mount point above it. Paths are rebased onto
//! the partition's root; a hard link whose target lands in another partition becomes a
//! copy of the target's data.

use crate::rootfs::entry::{Entry, EntryKind};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, HashMap};

/// The entries one partition holds, paths relative to its mount point.
#[derive(Debug, Clone, Default)]
pub struct PartContent {
    /// Entries in archive order; `""` is the partition's root directory.
    pub entries: Vec<Entry>,
}

impl PartContent {
    /// Sum of regular file sizes, each stored once.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

/// Splits `entries` among `mounts` (partition name, normalised mount point). Returns the
/// content per partition name and whether the `/` partition holds the archive unchanged.
pub fn split(
    entries: &[Entry],
    mounts: &[(String, String)],
    epoch: i64,
) -> Result<(BTreeMap<String, PartContent>, bool)> {
    let mut out: BTreeMap<String, PartContent> = mounts
        .iter()
        .map(|(n, _)| (n.clone(), PartContent::default()))
        .collect();
    // Deepest mount point first so the first match is the right one.
    let mut by_depth: Vec<(&str, &str)> = mounts
        .iter()
        .map(|(n, m)| (n.as_str(), m.trim_start_matches('/')))
        .collect();
    by_depth.sort_by_key(|(_, m)| std::cmp::Reverse(if m.is_empty() { 0 } else { m.split('/').count() }));
    let owner = |path: &str| -> (usize, String) {
        for (i, (_, m)) in by_depth.iter().enumerate() {
            if m.is_empty() {
                return (i, path.to_string());
            }
            if path == *m {
                return (i, String::new());
            }
            if let Some(rest) = path.strip_prefix(m).and_then(|r| r.strip_prefix('/')) {
                return (i, rest.to_string());
            }
        }
        (usize::MAX, path.to_string())
    };
    let files: HashMap<&str, &Entry> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .map(|e| (e.path.as_str(), e))
        .collect();
    let mut whole_archive = true;
    let mut seen_mounts: Vec<&str> = Vec::new();
    for e in entries {
        let (idx, rel) = owner(&e.path);
        let Some((name, mount)) = by_depth.get(idx) else {
            bail!(
                "`/{}` is outside every mount point; add a partition with `mount: /`",
                e.path
            );
        };
        if !mount.is_empty() {
            whole_archive = false;
            if rel.is_empty() {
                // The mount point directory also stays in the parent as an empty directory.
                seen_mounts.push(mount);
                let (pidx, prel) = parent_owner(&by_depth, idx, &e.path);
                if let Some((pname, _)) = by_depth.get(pidx) {
                    push(
                        &mut out,
                        pname,
                        Entry {
                            path: prel,
                            ..e.clone()
                        },
                    );
                }
            }
        }
        let mut entry = Entry { path: rel, ..e.clone() };
        if let EntryKind::HardLink { target } = &e.kind {
            let (tidx, trel) = owner(target);
            if tidx == idx {
                entry.kind = EntryKind::HardLink { target: trel };
            } else {
                let Some(t) = files.get(target.as_str()) else {
                    bail!(
                        "hard link `/{}` points to `/{target}`, which is not an earlier regular file in the archive",
                        e.path
                    );
                };
                entry.kind = t.kind.clone();
            }
        }
        push(&mut out, name, entry);
    }
    // A mount point missing from the archive is created, so the partition has a root
    // and the parent has a directory to mount it on.
    for (name, mount) in &by_depth {
        if mount.is_empty() || seen_mounts.contains(mount) {
            continue;
        }
        let dir = |path: String| Entry::new_dir(path, epoch);
        let idx = by_depth.iter().position(|(n, _)| n == name).unwrap_or(0);
        let (pidx, prel) = parent_owner(&by_depth, idx, mount);
        if let Some((pname, _)) = by_depth.get(pidx) {
            push(&mut out, pname, dir(prel));
        }
        out.entry(name.to_string())
            .or_default()
            .entries
            .insert(0, dir(String::new()));
    }
    Ok((out, whole_archive))
}

/// The partition (other than `skip`) that holds `path`, and `path` relative to it.
fn parent_owner(by_depth: &[(&str, &str)], skip: usize, path: &str) -> (usize, String) {
    for (i, (_, m)) in by_depth.iter().enumerate() {
        if i == skip {
            continue;
        }
        if m.is_empty() {
            return (i, path.to_string());
        }
        if let Some(rest) = path.strip_prefix(m).and_then(|r| r.strip_prefix('/')) {
            return (i, rest.to_string());
        }
    }
    (usize::MAX, String::new())
}

fn push(out: &mut BTreeMap<String, PartContent>, name: &str, e: Entry) {
    out.entry(name.to_string()).or_default().entries.push(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
            xattrs: vec![],
        }
    }
    fn file(p: &str, off: u64) -> Entry {
        Entry {
            kind: EntryKind::File {
                size: 3,
                data_offset: off,
                source: 0,
            },
            ..dir(p)
        }
    }

    fn mounts() -> Vec<(String, String)> {
        vec![("boot".into(), "/boot/firmware".into()), ("root".into(), "/".into())]
    }

    fn paths(c: &PartContent) -> Vec<&str> {
        c.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn entries_go_to_the_deepest_mount() {
        let entries = vec![
            dir(""),
            dir("boot"),
            dir("boot/firmware"),
            file("boot/firmware/config.txt", 512),
            dir("etc"),
            file("etc/hostname", 1024),
        ];
        let (parts, whole) = split(&entries, &mounts(), 0).unwrap();
        assert!(!whole);
        assert_eq!(
            paths(&parts["root"]),
            ["", "boot", "boot/firmware", "etc", "etc/hostname"]
        );
        assert_eq!(paths(&parts["boot"]), ["", "config.txt"]);
    }

    #[test]
    fn cross_partition_hard_link_becomes_a_copy() {
        let mut link = dir("boot/firmware/k");
        link.kind = EntryKind::HardLink {
            target: "vmlinuz".into(),
        };
        let entries = vec![dir(""), file("vmlinuz", 4096), dir("boot"), dir("boot/firmware"), link];
        let (parts, _) = split(&entries, &mounts(), 0).unwrap();
        let k = parts["boot"].entries.iter().find(|e| e.path == "k").unwrap();
        assert_eq!(
            k.kind,
            EntryKind::File {
                size: 3,
                data_offset: 4096,
                source: 0
            }
        );
    }

    #[test]
    fn missing_mount_point_is_created() {
        let entries = vec![dir(""), file("etc", 0)];
        let (parts, _) = split(&entries, &mounts(), 42).unwrap();
        assert_eq!(paths(&parts["boot"]), [""]);
        assert!(paths(&parts["root"]).contains(&"boot/firmware"));
    }

    #[test]
    fn single_root_partition_keeps_the_archive() {
        let entries = vec![dir(""), file("etc", 0)];
        let (_, whole) = split(&entries, &[("root".into(), "/".into())], 0).unwrap();
        assert!(whole);
    }
}
