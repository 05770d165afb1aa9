//! The lock file beside a recipe (`pi-zero.yaml` → `pi-zero.lock`): for every content
//! source, a digest of the recipe inputs it was resolved from and every file it serves,
//! with URL, size and SHA-256. A build whose source inputs match the lock fetches exactly
//! those files, so two builds of a locked recipe serve identical content.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    /// Keyed by source id: `pypi`, `cran`, `site/<name>`, `file/<name>`, `git/<name>`.
    pub sources: BTreeMap<String, LockedSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    /// SHA-256 of the recipe settings the source was resolved from; when they change, the
    /// source is resolved again.
    pub inputs: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<LockedFile>,
    /// Git: ref name → commit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refs: BTreeMap<String, String>,
    /// npm: the package-lock npm resolved the package's dependencies to (npm verifies
    /// every dependency against its integrity hash when installing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_lock: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    pub url: String,
    pub size: u64,
    pub sha256: String,
    /// Where the file is served, relative to the content root. None for files placed
    /// by URL rather than by a locked path (a crawled site's pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A crawled URL that redirected: where it led.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// PyPI: the file's `Requires-Python`, served as `data-requires-python` so pip skips
    /// files made for other Python versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    /// CRAN: the package's stanza in its type's upstream `PACKAGES` index when it was
    /// locked. The mirror's `PACKAGES` is written from these, because CRAN rewrites its
    /// index daily and drops superseded versions from it: the lock alone must do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza: Option<String>,
}

/// The lock file that belongs to a recipe.
pub fn path_for(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock")
}

impl LockFile {
    /// Reads the lock; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<LockFile> {
        let text = match fs_err::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile {
                    version: VERSION,
                    ..Default::default()
                });
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let lock: LockFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid lock file; delete it and run `imgbuild fetch --update` to write a new one",
                path.display()
            )
        })?;
        if lock.version != VERSION {
            bail!(
                "{}: lock version {} is not {VERSION}; run `imgbuild fetch --update` to rewrite it",
                path.display(),
                lock.version
            );
        }
        Ok(lock)
    }

    /// Writes the lock atomically, sorted and pretty-printed so diffs stay readable.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::fsx::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_file_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.lock");
        assert_eq!(LockFile::read(&p).unwrap().sources.len(), 0, "missing is empty");
        let mut lock = LockFile {
            version: VERSION,
            ..Default::default()
        };
        lock.sources.insert(
            "pypi".into(),
            LockedSource {
                inputs: "ab".into(),
                files: vec![LockedFile {
                    url: "https://x/y.whl".into(),
                    size: 3,
                    sha256: "00".into(),
                    path: Some("pypi/y/y.whl".into()),
                    redirect: None,
                    requires_python: None,
                    stanza: Some("Package: y\nVersion: 1".into()),
                }],
                refs: Default::default(),
                package_lock: None,
            },
        );
        lock.write(&p).unwrap();
        assert_eq!(LockFile::read(&p).unwrap(), lock);
        fs_err::write(&p, "{").unwrap();
        let err = LockFile::read(&p).unwrap_err();
        assert!(err.to_string().contains("r.lock is not a valid lock file"), "{err}");
        assert_eq!(path_for(Path::new("recipes/pi.yaml")), Path::new("recipes/pi.lock"));
    }
}
