//! File-system helpers: the staging area where a build writes, and atomic publishing.
//!
//! A build writes everything under `<out>/.staging/`; only when every output is
//! complete are the files renamed to their final names. A crash, Ctrl-C or error
//! therefore never leaves a file under a final name, and the next run clears the
//! leftovers of an interrupted one.

use anyhow::{Context, Result};
use fs_err as fs;
use std::path::{Path, PathBuf};

/// Name of the staging directory inside an output directory.
pub const STAGING_DIR: &str = ".staging";

/// A directory where one build writes its outputs before publishing them.
#[derive(Debug)]
pub struct Staging {
    out_dir: PathBuf,
    dir: PathBuf,
    published: bool,
}

impl Staging {
    /// Creates a fresh staging directory in `out_dir`, removing what an interrupted run left.
    pub fn create(out_dir: &Path) -> Result<Self> {
        fs::create_dir_all(out_dir)?;
        // Absolute, because tools we run (mmdebstrap hooks) may change directory.
        let out_dir = &std::path::absolute(out_dir).with_context(|| format!("resolving {}", out_dir.display()))?;
        let dir = out_dir.join(STAGING_DIR);
        if dir.exists() {
            fs::remove_dir_all(&dir).context("clearing the staging area of an earlier run")?;
        }
        fs::create_dir_all(&dir)?;
        Ok(Staging {
            out_dir: out_dir.to_path_buf(),
            dir,
            published: false,
        })
    }

    /// The staging directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the staging directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Renames the named staged files to their final place in the output directory,
    /// replacing older outputs, then removes the staging directory.
    pub fn publish(mut self, names: &[String]) -> Result<Vec<PathBuf>> {
        let mut finals = Vec::new();
        for name in names {
            let dest = self.out_dir.join(name);
            fs::rename(self.dir.join(name), &dest)?;
            finals.push(dest);
        }
        sync_dir(&self.out_dir);
        self.published = true;
        fs::remove_dir_all(&self.dir)?;
        Ok(finals)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Flushes a directory's entries so renames survive a power cut (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Copies `len` bytes from `src` at `src_off` into `dst` at `dst_off`, skipping runs of
/// zeros so the destination stays sparse.
pub fn copy_range_sparse(
    src: &std::fs::File,
    src_off: u64,
    dst: &std::fs::File,
    dst_off: u64,
    len: u64,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        src.read_exact_at(&mut buf[..n], src_off + done)?;
        write_nonzero_at(dst, &buf[..n], dst_off + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Writes `data` at `off`, leaving 4 KiB blocks that are entirely zero unwritten (holes).
pub fn write_nonzero_at(dst: &std::fs::File, data: &[u8], off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    const BLOCK: usize = 4096;
    let mut i = 0;
    while i < data.len() {
        let end = (i + BLOCK).min(data.len());
        // Extend the run of non-zero blocks as far as it goes, then write it in one call.
        if data[i..end].iter().any(|&b| b != 0) {
            let mut j = end;
            while j < data.len() {
                let e = (j + BLOCK).min(data.len());
                if data[j..e].iter().all(|&b| b == 0) {
                    break;
                }
                j = e;
            }
            dst.write_all_at(&data[i..j], off + i as u64)?;
            i = j;
        } else {
            i = end;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_is_removed_unless_published() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let s = Staging::create(tmp.path()).unwrap();
            std::fs::write(s.path("a.img"), b"half").unwrap();
        }
        assert!(!tmp.path().join(STAGING_DIR).exists());
        assert!(!tmp.path().join("a.img").exists());
        let s = Staging::create(tmp.path()).unwrap();
        std::fs::write(s.path("a.img"), b"whole").unwrap();
        s.publish(&["a.img".to_string()]).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a.img")).unwrap(), b"whole");
        assert!(!tmp.path().join(STAGING_DIR).exists());
    }

    #[test]
    fn sparse_writes_leave_holes() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("img");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        f.set_len(64 << 20).unwrap();
        let mut data = vec![0u8; 32 << 20];
        data[5] = 1;
        data[(16 << 20) + 7] = 2;
        write_nonzero_at(&f, &data, 1 << 20).unwrap();
        let meta = f.metadata().unwrap();
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        let back = std::fs::read(&p).unwrap();
        assert_eq!(back[(1 << 20) + 5], 1);
        assert_eq!(back[(17 << 20) + 7], 2);
    }
}
