//! File-system helpers: the staging area where a build writes, and atomic publishing.
//!
//! A build writes everything under `<out>/.staging/`; only when every output is
//! complete are the files renamed to their final names. A crash, Ctrl-C or error
//! therefore never leaves a file under a final name, and the next run clears the
//! leftovers of an interrupted one.
//!
//! One build owns an output directory at a time (an flock on the directory, held until
//! the build ends; a second build fails at once). Publishing is
//! all-or-nothing as a set: the names are written to `.staging/.publishing` before the
//! first rename, so a crash part-way is completed by the next build before anything
//! else, and no image is ever left beside another build's checksum.

use anyhow::{Context, Result, bail};
use fs_err as fs;
use std::path::{Path, PathBuf};

/// Name of the staging directory inside an output directory.
pub const STAGING_DIR: &str = ".staging";
/// In the staging directory while its files are being renamed into place.
const JOURNAL: &str = ".publishing";

/// A directory where one build writes its outputs before publishing them.
#[derive(Debug)]
pub struct Staging {
    out_dir: PathBuf,
    dir: PathBuf,
    published: bool,
    /// The journal is written: the files belong to the output now, even half-renamed.
    committed: bool,
    /// The output directory's lock, held as long as this staging area lives.
    _lock: std::fs::File,
}

/// Locks the output directory itself (flock on the directory, so no lock file is left
/// behind) without waiting; fails at once when another build holds it.
fn lock_out_dir(out_dir: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let dir = fs::File::open(out_dir)?.into_parts().0;
    // SAFETY: flock on a file descriptor we own; LOCK_NB returns at once.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            bail!(
                "another imgbuild build is writing to {}; wait for it to finish, or give this one another --out",
                out_dir.display()
            );
        }
        return Err(err).with_context(|| format!("locking {}", out_dir.display()));
    }
    Ok(dir)
}

/// Finishes a publish that a crash interrupted: every name the journal lists that is
/// still staged is renamed into place, so the set is whole again.
fn complete_interrupted_publish(out_dir: &Path, dir: &Path) -> Result<()> {
    let journal = dir.join(JOURNAL);
    let Ok(list) = fs_err::read_to_string(&journal) else {
        return Ok(());
    };
    for name in list.lines().filter(|n| !n.is_empty() && !n.contains('/')) {
        let staged = dir.join(name);
        if staged.exists() {
            fs::rename(&staged, out_dir.join(name))?;
        }
    }
    sync_dir(out_dir);
    Ok(())
}

impl Staging {
    /// Creates a fresh staging directory in `out_dir`, removing what an interrupted run left.
    pub fn create(out_dir: &Path) -> Result<Self> {
        fs::create_dir_all(out_dir)?;
        // Absolute, because tools we run (mmdebstrap hooks) may change directory.
        let out_dir = &std::path::absolute(out_dir).with_context(|| format!("resolving {}", out_dir.display()))?;
        let lock = lock_out_dir(out_dir)?;
        let dir = out_dir.join(STAGING_DIR);
        if dir.exists() {
            complete_interrupted_publish(out_dir, &dir).context("completing the publish a crash interrupted")?;
            fs::remove_dir_all(&dir).context("clearing the staging area of an earlier run")?;
        }
        fs::create_dir_all(&dir)?;
        Ok(Staging {
            out_dir: out_dir.to_path_buf(),
            dir,
            published: false,
            committed: false,
            _lock: lock,
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

    /// Removes a staged scratch file or directory, if there (its work is done).
    pub fn discard(&self, name: &str) -> Result<()> {
        let p = self.dir.join(name);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&p)?,
            Ok(_) => fs::remove_file(&p)?,
            Err(_) => {}
        }
        Ok(())
    }

    /// Renames the named staged files to their final place in the output directory,
    /// replacing older outputs, then removes the staging directory.
    pub fn publish(mut self, names: &[String]) -> Result<Vec<PathBuf>> {
        let mut finals = Vec::new();
        for name in names {
            if name.contains('/') || !self.dir.join(name).exists() {
                bail!(
                    "internal: publishing `{name}`, which is not a file in {}",
                    self.dir.display()
                );
            }
        }
        // From here the set is committed: a crash is completed by the next build.
        let journal = self.dir.join(JOURNAL);
        fs::write(&journal, names.join("\n") + "\n")?;
        if let Ok(f) = fs_err::File::open(&journal) {
            let _ = f.sync_all();
        }
        sync_dir(&self.dir);
        self.committed = true;
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
        if !self.published && !self.committed {
            let _ = fs_err::remove_dir_all(&self.dir);
        }
    }
}

/// Flushes a directory's entries so renames survive a power cut (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(f) = fs_err::File::open(dir) {
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
            fs_err::write(s.path("a.img"), b"half").unwrap();
        }
        assert!(!tmp.path().join(STAGING_DIR).exists());
        assert!(!tmp.path().join("a.img").exists());
        let s = Staging::create(tmp.path()).unwrap();
        fs_err::write(s.path("a.img"), b"whole").unwrap();
        s.publish(&["a.img".to_string()]).unwrap();
        assert_eq!(fs_err::read(tmp.path().join("a.img")).unwrap(), b"whole");
        assert!(!tmp.path().join(STAGING_DIR).exists());
    }

    #[test]
    fn one_build_per_output_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Staging::create(tmp.path()).unwrap();
        fs_err::write(first.path("a.img"), b"first").unwrap();
        let err = Staging::create(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("another imgbuild build is writing to"), "{err}");
        assert!(
            first.path("a.img").exists(),
            "the second build removed the first's staging"
        );
        first.publish(&["a.img".to_string()]).unwrap();
        Staging::create(tmp.path()).expect("free again once the first is done");
    }

    #[test]
    fn a_publish_a_crash_interrupted_is_completed_by_the_next_build() {
        let tmp = tempfile::tempdir().unwrap();
        // The state a crash leaves after the journal and the first of two renames.
        let staging = tmp.path().join(STAGING_DIR);
        fs_err::create_dir_all(&staging).unwrap();
        fs_err::write(tmp.path().join("a.img"), b"new image").unwrap();
        fs_err::write(tmp.path().join("a.sha256"), b"old checksum").unwrap();
        fs_err::write(staging.join("a.sha256"), b"new checksum").unwrap();
        fs_err::write(staging.join(JOURNAL), "a.img\na.sha256\n").unwrap();
        let s = Staging::create(tmp.path()).unwrap();
        assert_eq!(fs_err::read(tmp.path().join("a.sha256")).unwrap(), b"new checksum");
        assert_eq!(fs_err::read(tmp.path().join("a.img")).unwrap(), b"new image");
        assert!(!s.path(JOURNAL).exists());
        // Without a journal (a crash before publishing) the staged files are dropped.
        drop(s);
        fs_err::create_dir_all(&staging).unwrap();
        fs_err::write(staging.join("a.sha256"), b"unpublished").unwrap();
        let _s = Staging::create(tmp.path()).unwrap();
        assert_eq!(fs_err::read(tmp.path().join("a.sha256")).unwrap(), b"new checksum");
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
        let back = fs_err::read(&p).unwrap();
        assert_eq!(back[(1 << 20) + 5], 1);
        assert_eq!(back[(17 << 20) + 7], 2);
    }
}
