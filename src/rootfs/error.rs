//! The root file system stage's own errors: an archive (the user's `rootfs.tar`, the
//! packed `rootfs.dir`, or what the recipe's steps left) that no image may be made of.
//! Each names the archive and the entry; the fix is a hint.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{}: {}{problem}", .archive.display(), .entry.as_deref().map(|e| format!("`{}` ", e.escape_debug())).unwrap_or_default())]
pub struct ArchiveError {
    pub archive: PathBuf,
    /// The entry at fault, when it is one entry.
    pub entry: Option<String>,
    pub problem: String,
    pub fix: Option<String>,
}

impl ArchiveError {
    pub fn new(archive: impl Into<PathBuf>, entry: Option<&str>, problem: impl Into<String>) -> ArchiveError {
        ArchiveError {
            archive: archive.into(),
            entry: entry.map(str::to_string),
            problem: problem.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> ArchiveError {
        self.fix = Some(fix.into());
        self
    }
}

/// What goes into the root is the recipe's doing: the user's to fix.
impl crate::fault::Fault for ArchiveError {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::User
    }
    fn hints(&self) -> Vec<String> {
        self.fix.iter().cloned().collect()
    }
}
