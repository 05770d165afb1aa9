//! What kind of failure an error is, and what to do about it, as data: every typed error
//! of a stage implements [`Fault`], and `main` renders `error:` / `caused by:` / `hint:`
//! lines and picks the exit code from the [`Kind`] — never from the message's text.

use std::path::{Path, PathBuf};

/// Whose move it is after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The recipe, the command line or an input the user named is wrong: exit 2.
    User,
    /// A tool, the host, a disk or the network failed: exit 1.
    Environment,
    /// Ctrl-C or a signal stopped the build: exit 130.
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::User => 2,
            Kind::Environment => 1,
            Kind::Interrupted => 130,
        }
    }
}

/// A typed error that knows its kind and, where there is one, the way out.
pub trait Fault: std::error::Error {
    fn kind(&self) -> Kind;
    /// Lines telling the user what to do, each without the leading `hint: `.
    fn hints(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a full disk's hint says.
pub const DISK_FULL_HINT: &str = "a disk is full; free space there, or point --out or --cache-dir at a larger disk, then run again (finished stages are reused from the cache)";

/// Less than this free on a file system counts as full.
const FULL_BELOW: u64 = 1 << 20;

/// Whether the file system holding `path` (or, when it does not exist, its nearest
/// existing parent) has (all but) no space left. Programs report ENOSPC in their own
/// words; this asks the file system instead.
pub fn is_full(path: &Path) -> bool {
    let mut p = path;
    loop {
        if let Ok(st) = rustix::fs::statvfs(p) {
            return st.f_bavail.saturating_mul(st.f_frsize) < FULL_BELOW;
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return false,
        }
    }
}

/// The first of `paths` on a full file system.
pub fn full_among<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Option<PathBuf> {
    paths.into_iter().find(|p| is_full(p)).map(Path::to_path_buf)
}

/// An I/O error that is a full disk (ENOSPC, or EDQUOT: a quota is as full).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(libc::ENOSPC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_kinds() {
        assert_eq!(Kind::User.exit_code(), 2);
        assert_eq!(Kind::Environment.exit_code(), 1);
        assert_eq!(Kind::Interrupted.exit_code(), 130);
    }

    #[test]
    fn a_disk_with_room_is_not_full_and_missing_paths_ask_their_parent() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!is_full(tmp.path()));
        assert!(!is_full(&tmp.path().join("not/yet/made")));
        assert_eq!(full_among([tmp.path()]), None);
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(libc::ENOENT)));
    }
}
