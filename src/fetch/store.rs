//! The content-addressed store shared by every recipe: each downloaded file lives once,
//! named by its SHA-256, under `<cache>/content-v1/sha256/<2 hex>/<62 hex>`. A file is
//! only ever put there after its hash was checked, by a rename from the same directory
//! tree, so a reader never sees part of one.

use anyhow::{Context, Result, bail};
use fs_err as fs;
use std::path::{Path, PathBuf};

/// The bucket name in the cache directory (bump the version when the layout changes).
pub const BUCKET: &str = "content-v1";

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn open(cache_root: &Path) -> Result<Store> {
        let root = cache_root.join(BUCKET);
        for d in ["sha256", "partial"] {
            fs::create_dir_all(root.join(d))?;
        }
        Ok(Store { root })
    }

    /// Where the file with this digest lives (whether or not it is there yet).
    pub fn path(&self, sha256: &str) -> PathBuf {
        let (a, b) = sha256.split_at(2.min(sha256.len()));
        self.root.join("sha256").join(a).join(b)
    }

    pub fn has(&self, sha256: &str) -> bool {
        self.path(sha256).is_file()
    }

    /// The size of a stored file, if it is there.
    pub fn size(&self, sha256: &str) -> Option<u64> {
        fs_err::metadata(self.path(sha256)).ok().map(|m| m.len())
    }

    /// The directory of partial downloads (kept between runs so they can resume).
    pub fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    /// Moves a verified file into the store. `file` must be inside the cache directory
    /// tree (same file system) so the rename is atomic.
    pub fn insert(&self, file: &Path, sha256: &str) -> Result<PathBuf> {
        let dest = self.path(sha256);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(file, &dest)?;
        Ok(dest)
    }

    /// Stores bytes made here (for example a generated index) and returns their digest.
    pub fn insert_bytes(&self, bytes: &[u8]) -> Result<String> {
        let sha = crate::digest::sha256_hex(bytes);
        if !self.has(&sha) {
            let tmp = tempfile::NamedTempFile::new_in(self.partial_dir())?;
            fs::write(tmp.path(), bytes)?;
            let (_, path) = tmp.keep().context("keeping a temporary file")?;
            self.insert(&path, &sha)?;
        }
        Ok(sha)
    }

    /// Reads a stored file (for indexes and pages that are parsed, not only copied).
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        let p = self.path(sha256);
        fs::read(&p).with_context(|| format!("content {sha256} is missing from the cache"))
    }

    /// Puts the stored file at `dest`: a hard link when the destination is on the same
    /// file system (no bytes copied, nothing stored twice), else a copy. Stored files are
    /// read-only so a link can't be used to change the store.
    pub fn materialize(&self, sha256: &str, dest: &Path) -> Result<()> {
        let src = self.path(sha256);
        if !src.is_file() {
            bail!("content {sha256} is missing from the cache (for {})", dest.display());
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        if fs_err::hard_link(&src, dest).is_err() {
            fs::copy(&src, dest)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_digest_and_links_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sha = store.insert_bytes(b"hello").unwrap();
        assert_eq!(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert!(
            store
                .path(&sha)
                .ends_with("sha256/2c/f24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        let out = dir.path().join("out/a/b.txt");
        store.materialize(&sha, &out).unwrap();
        assert_eq!(fs_err::read(&out).unwrap(), b"hello");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs_err::metadata(&out).unwrap().nlink(), 2, "linked, not copied");
        let err = store.materialize(&"0".repeat(64), &dir.path().join("x")).unwrap_err();
        assert!(err.to_string().contains("missing from the cache"), "{err}");
    }
}
