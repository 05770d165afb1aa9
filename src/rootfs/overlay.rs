//! Overlays and per-path attributes, applied to the root file system's index rather than
//! to a copy of it: an overlay file becomes an entry whose data is the file in the
//! repository (or its rendered `.j2` template in the staging area). Nothing here follows
//! a symlink, and no path may pass through a symlink in the tree or leave the root.

use super::entry::{Entry, EntryKind};
use super::{RootTree, render};
use crate::recipe::plan_rootfs::FilePlan;
use crate::rootpath::{normalize, parent};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Applies overlay directories in order, then the `files:` downloads (a tree laid out
/// like the root), then the `files` attributes.
pub fn apply(
    tree: &mut RootTree,
    overlays: &[std::path::PathBuf],
    downloads: Option<&Path>,
    files: &[FilePlan],
    ctx: &serde_json::Value,
    scratch: &Path,
    epoch: i64,
) -> Result<()> {
    let mut index = index_of(tree);
    for (n, dir) in overlays.iter().enumerate() {
        add_dir(
            tree,
            &mut index,
            dir,
            "",
            Some((ctx, scratch, n)),
            Modes::AsInRepository,
            epoch,
        )?;
    }
    if let Some(dir) = downloads {
        add_dir(tree, &mut index, dir, "", None, Modes::Published, epoch)?;
    }
    for f in files {
        let i = *index
            .get(&f.path)
            .ok_or_else(|| anyhow!("files./{}: no such path in the root file system", f.path))?;
        let e = &mut tree.entries[i];
        if let Some(m) = f.mode {
            e.mode = m;
        }
        if let Some((u, g)) = f.owner {
            e.uid = u;
            e.gid = g;
        }
    }
    if !overlays.is_empty() || downloads.is_some() || !files.is_empty() {
        tree.pristine = false;
    }
    Ok(())
}

/// Where the modes of added files come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Modes {
    /// An overlay's files keep the modes they have in the repository (scripts stay
    /// executable, a key file stays private).
    AsInRepository,
    /// Fetched files (content, `files:` downloads) are served to everyone: 0644 files and
    /// 0755 directories, whatever the cache's own modes are (its files are private);
    /// files the owner may run stay runnable (0755: an npm package's scripts).
    /// A `files:` entry's `mode` still applies afterwards.
    Published,
}

/// Adds the files below `dir` at `prefix` (relative to the root) — rendering `*.j2`
/// templates when `templates` (context, scratch directory, overlay number) is given.
fn add_dir(
    tree: &mut RootTree,
    index: &mut HashMap<String, usize>,
    dir: &Path,
    prefix: &str,
    templates: Option<(&serde_json::Value, &Path, usize)>,
    modes: Modes,
    epoch: i64,
) -> Result<()> {
    if !dir.is_dir() {
        return Err(crate::recipe::RecipeError::Input {
            message: format!(
                "overlays: {} is not a directory; paths are relative to the recipe",
                dir.display()
            ),
        }
        .into());
    }
    for host in render::walk(dir)? {
        let rel_host = host.strip_prefix(dir).unwrap_or(&host).to_string_lossy().into_owned();
        let meta = fs_err::symlink_metadata(&host)?;
        let (rel_text, template) = match (rel_host.strip_suffix(".j2"), templates) {
            (Some(stem), Some(_)) if meta.is_file() => (stem.to_string(), true),
            _ => (rel_host.clone(), false),
        };
        let rel_text = if prefix.is_empty() {
            rel_text
        } else {
            format!("{prefix}/{rel_text}")
        };
        let rel = normalize(&rel_text).map_err(|m| anyhow!("overlay {}: {m}", dir.display()))?;
        check_no_symlink_parent(tree, index, &rel).map_err(|m| anyhow!("overlay {}: `/{rel}` {m}", dir.display()))?;
        let kind = if meta.is_dir() {
            EntryKind::Dir
        } else if meta.file_type().is_symlink() {
            EntryKind::Symlink {
                target: fs_err::read_link(&host)?.to_string_lossy().into_owned(),
            }
        } else if meta.is_file() {
            let (path, size) = if let (true, Some((ctx, scratch, n))) = (template, templates) {
                let text =
                    fs_err::read_to_string(&host).with_context(|| format!("reading template {}", host.display()))?;
                let out = scratch.join(format!("overlay-{n}-{}", tree.sources.len()));
                fs_err::write(&out, render::render_text(&text, ctx, &host)?)?;
                let size = fs_err::metadata(&out)?.len();
                (out, size)
            } else {
                (host.clone(), meta.len())
            };
            tree.sources.push(path);
            EntryKind::File {
                size,
                data_offset: 0,
                source: (tree.sources.len() - 1) as u32,
            }
        } else {
            bail!(
                "overlay {}: `{rel_host}` is not a file, directory or symlink",
                dir.display()
            );
        };
        // The repository's owner means nothing in the image: overlays are root's.
        let mode = if meta.file_type().is_symlink() {
            0o777
        } else if modes == Modes::Published {
            let runnable = meta.permissions().mode() & 0o100 != 0;
            if meta.is_dir() || runnable { 0o755 } else { 0o644 }
        } else {
            meta.permissions().mode() & 0o7777
        };
        let entry = Entry {
            path: rel.clone(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: meta.mtime().min(epoch),
            xattrs: vec![],
        };
        put(tree, index, entry, epoch)?;
    }
    Ok(())
}

/// Adds a finished directory tree (fetched content) at `dest` in the root file system,
/// files as they are: nothing is rendered, owners are root's.
pub fn add_tree(tree: &mut RootTree, dir: &Path, dest: &str, epoch: i64) -> Result<()> {
    let mut index = index_of(tree);
    let prefix = normalize(dest).map_err(|m| anyhow!("content.dest: {m}"))?;
    add_dir(tree, &mut index, dir, &prefix, None, Modes::Published, epoch)?;
    tree.pristine = false;
    Ok(())
}

/// Adds or replaces each of `entries`, creating missing parent directories (the image
/// stage's boot loader files).
pub fn put_entries(tree: &mut RootTree, entries: Vec<Entry>, epoch: i64) -> Result<()> {
    let mut index = index_of(tree);
    for e in entries {
        check_no_symlink_parent(tree, &index, &e.path).map_err(|m| anyhow!("`/{}` {m}", e.path))?;
        put(tree, &mut index, e, epoch)?;
    }
    tree.pristine = false;
    Ok(())
}

/// Path → position of every entry, for lookups while entries are added.
pub fn index_of(tree: &RootTree) -> HashMap<String, usize> {
    tree.entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.clone(), i))
        .collect()
}

/// Refuses a path whose parent directories include a symlink: writing through it would
/// put the file somewhere other than where it is named.
pub fn check_no_symlink_parent(tree: &RootTree, index: &HashMap<String, usize>, rel: &str) -> Result<(), String> {
    let mut p = parent(rel);
    while !p.is_empty() {
        if let Some(&i) = index.get(p)
            && matches!(tree.entries[i].kind, EntryKind::Symlink { .. })
        {
            return Err(format!("would be written through the symlink `/{p}`"));
        }
        p = parent(p);
    }
    Ok(())
}

/// Adds or replaces an entry, creating missing parent directories first.
fn put(tree: &mut RootTree, index: &mut HashMap<String, usize>, entry: Entry, epoch: i64) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = parent(&entry.path);
    while !p.is_empty() && !index.contains_key(p) {
        missing.push(p.to_string());
        p = parent(p);
    }
    for dir in missing.into_iter().rev() {
        index.insert(dir.clone(), tree.entries.len());
        tree.entries.push(Entry::new_dir(dir, epoch));
    }
    match index.get(&entry.path) {
        // An existing directory keeps its attributes; an overlay only adds to it.
        Some(&i) if tree.entries[i].is_dir() && entry.is_dir() => {}
        Some(&i) if tree.entries[i].is_dir() => bail!("overlay file `/{}` would replace a directory", entry.path),
        Some(&i) if entry.is_dir() && matches!(tree.entries[i].kind, EntryKind::Symlink { .. }) => {
            let EntryKind::Symlink { target } = &tree.entries[i].kind else {
                unreachable!()
            };
            bail!(
                "overlay directory `/{}` is a symlink to `{target}` in the root file system; put the overlay's files under `{target}` instead",
                entry.path
            )
        }
        Some(&i) => tree.entries[i] = entry,
        None => {
            index.insert(entry.path.clone(), tree.entries.len());
            tree.entries.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> RootTree {
        let dir = |p: &str| Entry {
            path: p.into(),
            kind: EntryKind::Dir,
            mode: 0o700,
            uid: 0,
            gid: 0,
            mtime: 1,
            xattrs: vec![],
        };
        let mut link = dir("lib");
        link.kind = EntryKind::Symlink {
            target: "/usr/lib".into(),
        };
        RootTree {
            sources: vec!["base.tar".into()],
            entries: vec![dir(""), dir("etc"), link],
            pristine: true,
            key: String::new(),
            epoch: 0,
        }
    }

    fn overlay(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, body) in files {
            let path = d.path().join(p);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, body).unwrap();
        }
        d
    }

    #[test]
    fn adds_files_renders_templates_and_keeps_directory_attributes() {
        let mut t = tree();
        let ov = overlay(&[("etc/hostname.j2", "{{ hostname }}\n"), ("etc/new/deep.conf", "x=1\n")]);
        let scratch = tempfile::tempdir().unwrap();
        let ctx = serde_json::json!({"hostname": "lab"});
        let files = [FilePlan {
            path: "etc/new/deep.conf".into(),
            mode: Some(0o600),
            owner: Some((0, 42)),
        }];
        apply(
            &mut t,
            &[ov.path().to_path_buf()],
            None,
            &files,
            &ctx,
            scratch.path(),
            100,
        )
        .unwrap();
        let get = |p: &str| t.entries.iter().find(|e| e.path == p).unwrap().clone();
        assert_eq!(get("etc").mode, 0o700, "an existing directory keeps its mode");
        let EntryKind::File { source, .. } = get("etc/hostname").kind else {
            panic!()
        };
        assert_eq!(fs_err::read_to_string(&t.sources[source as usize]).unwrap(), "lab\n");
        assert!(get("etc/new").is_dir(), "missing parents are created");
        let deep = get("etc/new/deep.conf");
        assert_eq!((deep.mode, deep.uid, deep.gid), (0o600, 0, 42));
        assert!(!t.pristine);
        let pos = |p: &str| t.entries.iter().position(|e| e.path == p).unwrap();
        assert!(pos("etc/new") < pos("etc/new/deep.conf"), "parents come first");
    }

    #[test]
    fn refuses_paths_through_symlinks_and_files_over_directories() {
        let scratch = tempfile::tempdir().unwrap();
        let ctx = serde_json::json!({});
        let mut t = tree();
        let ov = overlay(&[("lib/evil.so", "x")]);
        let err = apply(&mut t, &[ov.path().to_path_buf()], None, &[], &ctx, scratch.path(), 1).unwrap_err();
        assert!(err.to_string().contains("`/lib` is a symlink to `/usr/lib`"), "{err}");
        let mut t = tree();
        let ov = overlay(&[("etc", "not a dir")]);
        let err = apply(&mut t, &[ov.path().to_path_buf()], None, &[], &ctx, scratch.path(), 1).unwrap_err();
        assert!(err.to_string().contains("would replace a directory"), "{err}");
        let mut t = tree();
        let files = [FilePlan {
            path: "etc/missing".into(),
            mode: Some(0o600),
            owner: None,
        }];
        let err = apply(&mut t, &[], None, &files, &ctx, scratch.path(), 1).unwrap_err();
        assert!(err.to_string().contains("files./etc/missing: no such path"), "{err}");
    }

    #[test]
    fn template_errors_name_the_file() {
        let scratch = tempfile::tempdir().unwrap();
        let mut t = tree();
        let ov = overlay(&[("etc/x.j2", "{{ nope }}")]);
        let err = apply(
            &mut t,
            &[ov.path().to_path_buf()],
            None,
            &[],
            &serde_json::json!({}),
            scratch.path(),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("x.j2: template error"), "{err}");
    }
}
