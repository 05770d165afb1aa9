//! The versions of the packages a root file system holds, read from its own dpkg
//! status (`/var/lib/dpkg/status`): what the manifest records and release notes show.

use super::tar_write::{DataSource, SourceFiles};
use super::{EntryKind, RootTree};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// The dpkg status file's path in a root.
const STATUS: &str = "var/lib/dpkg/status";

/// Every installed package (`Status: install ok installed`) and its version; empty when
/// the root has no dpkg status (a root from an archive of something else).
pub fn installed(tree: &RootTree) -> Result<BTreeMap<String, String>> {
    let Some(data) = read_file(tree, STATUS)? else {
        return Ok(BTreeMap::new());
    };
    Ok(parse_status(&String::from_utf8_lossy(&data)))
}

/// The bytes of one regular file of the tree, by its relative path.
pub fn read_file(tree: &RootTree, path: &str) -> Result<Option<Vec<u8>>> {
    let Some(entry) = tree.entries.iter().rev().find(|e| e.path == path) else {
        return Ok(None);
    };
    if !matches!(entry.kind, EntryKind::File { .. }) {
        return Ok(None);
    }
    let mut data = Vec::new();
    SourceFiles::new(&tree.sources)
        .copy_to(entry, &mut data)
        .with_context(|| format!("reading /{path} of the root file system"))?;
    Ok(Some(data))
}

/// Package name → version of the installed stanzas of a dpkg status file.
pub fn parse_status(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
        };
        if let (Some(p), Some(v), Some("install ok installed")) = (field("Package"), field("Version"), field("Status"))
        {
            out.insert(p.to_string(), v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_stanzas_only() {
        let status = "Package: nginx\nStatus: install ok installed\nVersion: 1.22.1-9\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                      Package: hostapd\nStatus: install ok installed\nArchitecture: arm64\nVersion: 2:2.10-12\nDescription: x\n Version: not this\n";
        let got = parse_status(status);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got["nginx"], "1.22.1-9");
        assert_eq!(got["hostapd"], "2:2.10-12");
    }
}
