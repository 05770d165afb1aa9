//! Indexes a tar archive of a root file system without unpacking it: every entry with
//! its metadata and the offset of its bytes, so later stages copy data straight from the
//! archive. Paths are normalised and any entry that would escape the root is refused.

use super::entry::{Entry, EntryKind, normalize};
use anyhow::{Context, Result, bail};
use std::path::Path;
use tar::EntryType;

/// Reads the index of the uncompressed tar archive at `path`.
pub fn index(path: &Path) -> Result<Vec<Entry>> {
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
            anyhow::anyhow!(
                "{}: not a readable tar archive: entry {} has a corrupt header{after}; is it compressed, truncated or another format? (imgbuild reads uncompressed tar)",
                path.display(),
                out.len() + 1
            )
        })?;
        let raw_path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let rel = normalize(&raw_path).map_err(|m| anyhow::anyhow!("{}: archive entry {m}", path.display()))?;
        let mut xattrs = Vec::new();
        let (mut uid, mut gid, mut mtime) = (None, None, None);
        if let Some(pax) = e.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let key = ext.key().unwrap_or_default();
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                } else if key.starts_with("GNU.sparse.") {
                    bail!(
                        "{}: `{raw_path}` is a sparse archive member (GNU.sparse), which imgbuild does not read; create the archive without --sparse",
                        path.display()
                    );
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
    check_structure(path, &out)?;
    Ok(out)
}

/// What mke2fs and mkfs would otherwise fail on deep inside, with their own command
/// line: an entry whose parent directory is not in the archive before it, and a hard
/// link to a file the archive has not had yet.
fn check_structure(archive: &Path, entries: &[Entry]) -> Result<()> {
    use std::collections::HashMap;
    let mut seen: HashMap<&str, bool> = HashMap::new(); // path -> is a directory
    for e in entries {
        let parent = e.path.rsplit_once('/').map_or("", |(p, _)| p);
        if !parent.is_empty() && seen.get(parent) != Some(&true) {
            bail!(
                "{}: `{}` comes before its directory `{parent}` (or the archive has none); recreate the archive with its directories, parents first",
                archive.display(),
                e.path.escape_debug()
            );
        }
        if let EntryKind::HardLink { target } = &e.kind
            && seen.get(target.as_str()) != Some(&false)
        {
            bail!(
                "{}: hard link `{}` points to `{}`, which is not a file earlier in the archive; recreate the archive with the file before its links",
                archive.display(),
                e.path.escape_debug(),
                target.escape_debug()
            );
        }
        seen.insert(&e.path, matches!(e.kind, EntryKind::Dir));
    }
    Ok(())
}

/// An entry's uid or gid: the PAX value if there is one, else the header's (an empty
/// header field, as some writers leave it, is 0). File systems hold 32-bit ids; a larger
/// one would be truncated into another owner, so it is refused.
fn owner_id(pax: Option<u64>, header: std::io::Result<u64>, what: &str, archive: &Path, entry: &str) -> Result<u64> {
    let id = pax.unwrap_or_else(|| header.unwrap_or(0));
    if id > u64::from(u32::MAX) {
        bail!(
            "{}: `{}` has {what} {id}, above the 32-bit ids a file system holds; fix the owner in the archive",
            archive.display(),
            entry.escape_debug()
        );
    }
    Ok(id)
}
