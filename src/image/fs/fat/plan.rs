//! From the caller's flat node list to a placed filesystem: builds the
//! directory tree (implicit parents, duplicate and case-clash checks), gives
//! every name its short name, sizes every directory, and allocates clusters.
//! Also computes `min_size`, using the same fit test as the writer so that
//! writing at exactly that size succeeds.

use std::collections::HashMap;

use super::dir::{self, ShortName};
use super::layout::{self, Geometry, Unsuitable};
use super::{DataRange, FatError, FatType, Node, NodeKind};

pub const ROOT: usize = 0;
const MIB: u64 = 1 << 20;
/// A directory holds at most 65536 entries (the FAT specification's limit).
const MAX_DIR_ENTRIES: u64 = 65_536;

#[derive(Debug)]
pub enum Kind {
    Dir { children: Vec<usize> },
    File(DataRange),
}

#[derive(Debug)]
pub struct TreeNode {
    /// Last path component; empty for the root.
    pub name: String,
    /// Full path, for error messages.
    pub path: String,
    pub mtime: i64,
    pub parent: usize,
    pub kind: Kind,
    /// Short name within the parent (unused for the root).
    pub short: ShortName,
    /// Whether the node came from the input (an implicit directory takes the
    /// newest mtime below it instead).
    explicit: bool,
}

impl TreeNode {
    pub fn children(&self) -> &[usize] {
        match &self.kind {
            Kind::Dir { children } => children,
            Kind::File(_) => &[],
        }
    }
}

/// The directory tree; node 0 is the root.
#[derive(Debug)]
pub struct Tree {
    pub nodes: Vec<TreeNode>,
    /// Newest mtime of any node: the root has no entry of its own, so the
    /// volume label entry gets this.
    pub newest: i64,
}

fn new_node(name: &str, path: &str, mtime: i64, parent: usize, kind: Kind, explicit: bool) -> TreeNode {
    TreeNode {
        name: name.to_string(),
        path: path.to_string(),
        mtime,
        parent,
        kind,
        short: ShortName {
            name: [b' '; 11],
            nt_flags: 0,
            needs_lfn: false,
        },
        explicit,
    }
}

impl Tree {
    pub fn build(input: &[Node]) -> Result<Tree, FatError> {
        // Sorting by path bytes makes the result independent of input order.
        let mut sorted: Vec<&Node> = input.iter().collect();
        sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let mut nodes = vec![new_node("", "", 0, ROOT, Kind::Dir { children: Vec::new() }, true)];
        // (parent, folded name) -> node: finds both exact repeats and names
        // that differ only in case.
        let mut by_name: HashMap<(usize, String), usize> = HashMap::new();
        let mut newest = i64::MIN;
        for node in sorted {
            let invalid = |reason: String| FatError::InvalidPath {
                path: node.path.clone(),
                reason,
            };
            if node.path.is_empty() {
                return Err(invalid("empty path".into()));
            }
            if node.path.starts_with('/') {
                return Err(invalid("paths must be relative (no leading '/')".into()));
            }
            if let NodeKind::File(r) = &node.kind {
                if r.len > u64::from(u32::MAX) {
                    return Err(FatError::FileTooLarge {
                        path: node.path.clone(),
                        len: r.len,
                    });
                }
            }
            newest = newest.max(node.mtime);
            let comps: Vec<&str> = node.path.split('/').collect();
            let mut parent = ROOT;
            for (i, comp) in comps.iter().enumerate() {
                dir::validate_name(comp).map_err(invalid)?;
                let path = comps[..=i].join("/");
                let last = i + 1 == comps.len();
                let key = (parent, dir::fold(comp));
                if let Some(&found) = by_name.get(&key) {
                    let existing = &mut nodes[found];
                    if existing.name != *comp {
                        return Err(FatError::NameClash {
                            first: existing.path.clone(),
                            second: path,
                        });
                    }
                    match (&existing.kind, last, &node.kind) {
                        (Kind::File(_), false, _) => {
                            return Err(FatError::ParentIsFile {
                                path: existing.path.clone(),
                                child: node.path.clone(),
                            });
                        }
                        (Kind::Dir { .. }, true, NodeKind::Dir) if !existing.explicit => {
                            existing.explicit = true;
                            existing.mtime = node.mtime;
                        }
                        (_, true, _) => return Err(FatError::Duplicate { path }),
                        (Kind::Dir { .. }, false, _) => {
                            if !existing.explicit {
                                existing.mtime = existing.mtime.max(node.mtime);
                            }
                        }
                    }
                    parent = found;
                    continue;
                }
                let (kind, explicit) = match (&node.kind, last) {
                    (NodeKind::File(r), true) => (Kind::File(r.clone()), true),
                    (_, l) => (Kind::Dir { children: Vec::new() }, l),
                };
                let idx = nodes.len();
                nodes.push(new_node(comp, &path, node.mtime, parent, kind, explicit));
                if let Kind::Dir { children } = &mut nodes[parent].kind {
                    children.push(idx);
                }
                by_name.insert(key, idx);
                parent = idx;
            }
        }
        let mut tree = Tree {
            nodes,
            newest: if newest == i64::MIN { 0 } else { newest },
        };
        tree.name_children()?;
        Ok(tree)
    }

    /// Sorts each directory's children by name bytes and assigns their
    /// short names.
    fn name_children(&mut self) -> Result<(), FatError> {
        for d in 0..self.nodes.len() {
            let mut children = match &mut self.nodes[d].kind {
                Kind::Dir { children } => std::mem::take(children),
                Kind::File(_) => continue,
            };
            children.sort_by(|&a, &b| self.nodes[a].name.as_bytes().cmp(self.nodes[b].name.as_bytes()));
            let names: Vec<&str> = children.iter().map(|&c| self.nodes[c].name.as_str()).collect();
            let shorts = dir::assign_short_names(&names);
            for (&c, s) in children.iter().zip(shorts) {
                self.nodes[c].short = s;
            }
            self.nodes[d].kind = Kind::Dir { children };
            let entries = self.dir_slots(d, true);
            if entries > MAX_DIR_ENTRIES {
                return Err(FatError::DirTooLarge {
                    path: self.nodes[d].path.clone(),
                    entries,
                });
            }
        }
        Ok(())
    }

    /// 32-byte slots a directory needs: `.`/`..` (or the label in the root),
    /// plus each child's long-name entries and short entry.
    pub fn dir_slots(&self, d: usize, label: bool) -> u64 {
        let own = if d == ROOT { u64::from(label) } else { 2 };
        own + self.nodes[d]
            .children()
            .iter()
            .map(|&c| {
                let n = &self.nodes[c];
                1 + if n.short.needs_lfn {
                    dir::lfn_entry_count(&n.name) as u64
                } else {
                    0
                }
            })
            .sum::<u64>()
    }

    /// Directories in pre-order: each directory before its subdirectories.
    pub fn dirs_preorder(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(d) = stack.pop() {
            out.push(d);
            let subdirs = self.nodes[d].children().iter().rev();
            stack.extend(subdirs.filter(|&&c| matches!(self.nodes[c].kind, Kind::Dir { .. })));
        }
        out
    }

    /// Clusters a node occupies with the given cluster size; the FAT12/16
    /// root lives in its own region and takes none.
    pub fn clusters_of(&self, idx: usize, cluster_size: u64, fat32: bool, label: bool) -> u64 {
        match &self.nodes[idx].kind {
            Kind::File(r) => r.len.div_ceil(cluster_size),
            Kind::Dir { .. } if idx == ROOT && !fat32 => 0,
            Kind::Dir { .. } => (self.dir_slots(idx, label) * 32).div_ceil(cluster_size).max(1),
        }
    }
}

/// Where each node's clusters start, and how many (all runs contiguous).
pub struct Allocation {
    /// Per node: (first cluster, cluster count); (0, 0) for empty files and
    /// the FAT12/16 root.
    pub runs: Vec<(u32, u32)>,
    /// Nodes in allocation order, i.e. ascending first cluster.
    pub order: Vec<usize>,
    pub used: u64,
}

/// Lays out clusters from cluster 2 in pre-order: the FAT32 root first (so it
/// is at cluster 2), then each directory followed by its files.
pub fn allocate(tree: &Tree, g: &Geometry, label: bool) -> Allocation {
    let cs = g.cluster_size();
    let fat32 = g.fat_type == FatType::Fat32;
    let mut runs = vec![(0u32, 0u32); tree.nodes.len()];
    let mut order = Vec::new();
    let mut next: u64 = 2;
    let mut take = |idx: usize, runs: &mut Vec<(u32, u32)>| {
        let n = tree.clusters_of(idx, cs, fat32, label);
        if n > 0 {
            // Fits in u32: callers check `needed <= cluster_count` first.
            runs[idx] = (next as u32, n as u32);
            order.push(idx);
            next += n;
        }
    };
    for d in tree.dirs_preorder() {
        take(d, &mut runs);
        for &c in tree.nodes[d].children() {
            if matches!(tree.nodes[c].kind, Kind::File(_)) {
                take(c, &mut runs);
            }
        }
    }
    Allocation {
        runs,
        order,
        used: next - 2,
    }
}

/// Clusters all nodes need with the given geometry.
pub fn clusters_needed(tree: &Tree, g: &Geometry, label: bool) -> u64 {
    let fat32 = g.fat_type == FatType::Fat32;
    (0..tree.nodes.len())
        .map(|i| tree.clusters_of(i, g.cluster_size(), fat32, label))
        .sum()
}

/// Whether the tree fits the geometry, given the clusters it needs with
/// that geometry's cluster size: `Ok(false)` when clusters run short, an
/// error when the fixed FAT12/16 root directory overflows.
pub fn check_fit(tree: &Tree, g: &Geometry, label: bool, needed: u64) -> Result<bool, FatError> {
    if g.fat_type != FatType::Fat32 {
        let entries = tree.dir_slots(ROOT, label);
        if entries > u64::from(g.root_entries) {
            return Err(FatError::RootDirFull {
                fat_type: g.fat_type,
                entries,
                max: u64::from(g.root_entries),
            });
        }
    }
    Ok(needed <= g.cluster_count)
}

/// Smallest multiple of 1 MiB whose geometry fits the tree.
pub fn min_size(tree: &Tree, fat_type: Option<FatType>, label: bool) -> Result<u64, FatError> {
    // Start from the raw data size: nothing smaller can fit, and stepping up
    // from there stays short (overhead is a few percent).
    let raw: u64 = tree
        .nodes
        .iter()
        .map(|n| match &n.kind {
            Kind::File(r) => r.len,
            Kind::Dir { .. } => 0,
        })
        .sum();
    let mut size = (raw / MIB).max(1) * MIB;
    let mut root_full = None;
    // The clusters needed depend only on cluster size and type, so each
    // combination is summed over the tree once.
    let mut needed_memo: HashMap<(FatType, u32), u64> = HashMap::new();
    loop {
        match layout::choose(size, fat_type) {
            Ok(g) => {
                let needed = *needed_memo
                    .entry((g.fat_type, g.sectors_per_cluster))
                    .or_insert_with(|| clusters_needed(tree, &g, label));
                match check_fit(tree, &g, label, needed) {
                    Ok(true) => return Ok(size),
                    Ok(false) => {}
                    // With a fixed FAT12/16 type a full root never fits.
                    Err(e) if fat_type.is_some() => return Err(e),
                    Err(e) => root_full = Some(e),
                }
            }
            Err((_, Unsuitable::TooSmall)) => {}
            Err(e @ (_, Unsuitable::TooLarge)) => {
                return Err(root_full.unwrap_or_else(|| layout::unsuitable_error(size, e)));
            }
        }
        size += MIB;
    }
}
