//! Advisory file locks (flock) so two builds never build the same cache entry at once,
//! and recognition of temporary directories whose builder has died.

use anyhow::{Context, Result};
use std::os::fd::AsRawFd;
use std::path::Path;

/// An exclusive lock, released when dropped (or when the process dies).
pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    pub fn exclusive(path: &Path) -> Result<Lock> {
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; blocks until the lock is free.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("locking {}", path.display()));
        }
        Ok(Lock { _file: file })
    }
}

/// A `.tmp-<key>-<pid>` directory is stale when its process no longer runs.
pub fn is_stale(name: &str) -> bool {
    let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<i32>().ok()) else {
        return true;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive
}
