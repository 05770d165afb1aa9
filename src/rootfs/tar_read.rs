//! Indexes a tar archive of a root file system without unpacking it: every entry with
//! its metadata and the offset of its bytes, so later stages copy data straight from the
//! archive. Paths are normalised and any entry that would escape the root is refused.

use super::entry::{Entry, EntryKind};
use super::error::ArchiveError;
use crate::rootpath::normalize;
use anyhow::{Context, Result, bail};
use std::path::Path;
use tar::EntryType;

/// Reads the index of the uncompressed tar archive at `path`.
pub fn index(path: &Path) -> Result<Vec<Entry>> {
    Ok(index_completed(path)?.0)
}

/// [`index`], saying whether directories the archive lacks were added.
pub fn index_completed(path: &Path) -> Result<(Vec<Entry>, bool)> {
    let file = fs_err::File::open(path)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut out = Vec::new();
    let entries = archive
        .entries()
        .with_context(|| format!("reading tar archive {}", path.display()))?;
    for item in entries {
        // The tar reader's own message quotes the header's bytes: for a file that is not
        // an archive at all, that is noise; say where it stopped instead.
        let mut e = item.map_err(|_| {
            let after = out
                .last()
                .map(|e: &Entry| format!(" after the entry `{}`", e.path.escape_debug()))
                .unwrap_or_default();
            ArchiveError::new(
                path,
                None,
                format!("not a readable tar archive: entry {} has a corrupt header{after}", out.len() + 1),
            )
            .fix("is it compressed, truncated or another format? imgbuild reads tar, plain or compressed with gzip, xz or zstd")
        })?;
        let raw_path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let rel = normalize(&raw_path).map_err(|m| ArchiveError::new(path, None, format!("archive entry {m}")))?;
        let mut xattrs = Vec::new();
        let (mut uid, mut gid, mut mtime) = (None, None, None);
        if let Some(pax) = e.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let key = ext.key().unwrap_or_default();
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                } else if key.starts_with("GNU.sparse.") {
                    return Err(ArchiveError::new(
                        path,
                        Some(&raw_path),
                        "is a sparse archive member (GNU.sparse), which imgbuild does not read",
                    )
                    .fix("create the archive without --sparse")
                    .into());
                } else if key == "uid" || key == "gid" {
                    let id = ext.value().ok().and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{}: `{}` has a PAX {key} that is not a number; recreate the archive",
                            path.display(),
                            raw_path.escape_debug()
                        )
                    })?;
                    if key == "uid" { uid = Some(id) } else { gid = Some(id) }
                } else if key == "mtime" {
                    mtime = ext.value().ok().and_then(|v| v.split('.').next()?.parse().ok());
                }
            }
        }
        let h = e.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let uid = owner_id(uid, h.uid(), "uid", path, &raw_path)?;
        let gid = owner_id(gid, h.gid(), "gid", path, &raw_path)?;
        let mtime = mtime.unwrap_or(h.mtime().unwrap_or(0) as i64);
        let link = || -> Result<String> {
            Ok(e.link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default())
        };
        let dev = || {
            (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            )
        };
        let kind = match h.entry_type() {
            EntryType::Directory => EntryKind::Dir,
            EntryType::Regular | EntryType::Continuous => EntryKind::File {
                size: e.size(),
                data_offset: e.raw_file_position(),
                source: 0,
            },
            EntryType::Symlink => EntryKind::Symlink { target: link()? },
            EntryType::Link => {
                let target = normalize(&link()?)
                    .map_err(|m| anyhow::anyhow!("{}: hard link `{raw_path}` points to {m}", path.display()))?;
                EntryKind::HardLink { target }
            }
            EntryType::Char => {
                let (major, minor) = dev();
                EntryKind::CharDevice { major, minor }
            }
            EntryType::Block => {
                let (major, minor) = dev();
                EntryKind::BlockDevice { major, minor }
            }
            EntryType::Fifo => EntryKind::Fifo,
            EntryType::GNUSparse => bail!(
                "{}: `{raw_path}` is a GNU sparse member, which imgbuild does not read; create the archive without --sparse",
                path.display()
            ),
            other => bail!(
                "{}: `{raw_path}` has tar entry type {other:?}, which a root file system cannot hold",
                path.display()
            ),
        };
        out.push(Entry {
            path: rel,
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        });
    }
    complete_parents(path, out)
}

/// What mke2fs would otherwise fail on deep inside, with its own command line: an entry
/// whose parent is missing gets the directory (root's, 0755, as tar would make it; the
/// bool says some were added, so the archive can no longer be used as it is), an entry
/// whose parent is not a directory, or a hard link to a file the archive has not had yet,
/// is refused naming the archive and the entry.
fn complete_parents(archive: &Path, entries: Vec<Entry>) -> Result<(Vec<Entry>, bool)> {
    use std::collections::HashMap;
    let mut is_dir: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    let mut added = false;
    for e in entries {
        let mut missing = Vec::new();
        let mut parent = e.path.rsplit_once('/').map_or("", |(p, _)| p).to_string();
        while !parent.is_empty() {
            match is_dir.get(&parent) {
                Some(true) => break,
                Some(false) => bail!(
                    "{}: `{}` lies below `{parent}`, which is not a directory in the archive; recreate the archive without it",
                    archive.display(),
                    e.path.escape_debug()
                ),
                None => {
                    let up = parent.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                    missing.push(std::mem::replace(&mut parent, up));
                }
            }
        }
        for dir in missing.into_iter().rev() {
            is_dir.insert(dir.clone(), true);
            out.push(Entry::new_dir(dir, e.mtime));
            added = true;
        }
        if let EntryKind::HardLink { target } = &e.kind
            && is_dir.get(target.as_str()) != Some(&false)
        {
            bail!(
                "{}: hard link `{}` points to `{}`, which is not a file earlier in the archive; recreate the archive with the file before its links",
                archive.display(),
                e.path.escape_debug(),
                target.escape_debug()
            );
        }
        is_dir.insert(e.path.clone(), matches!(e.kind, EntryKind::Dir));
        out.push(e);
    }
    Ok((out, added))
}

/// An entry's uid or gid: the PAX value if there is one, else the header's (an empty
/// header field, as some writers leave it, is 0). File systems hold 32-bit ids; a larger
/// one would be truncated into another owner, so it is refused.
fn owner_id(pax: Option<u64>, header: std::io::Result<u64>, what: &str, archive: &Path, entry: &str) -> Result<u64> {
    let id = pax.unwrap_or_else(|| header.unwrap_or(0));
    if id > u64::from(u32::MAX) {
        return Err(ArchiveError::new(
            archive,
            Some(entry),
            format!("has {what} {id}, above the 32-bit ids a file system holds"),
        )
        .fix("fix the owner in the archive")
        .into());
    }
    Ok(id)
}
