//! One file-system object of the root file system, as read from (or written to) the
//! canonical tar archive: path, kind, ownership, mode, time, xattrs and where its bytes are.

/// What kind of object an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file whose `size` bytes start at `data_offset` in data file `source`
    /// (an index into [`super::RootTree::sources`]; 0 is the root file system archive).
    File {
        size: u64,
        data_offset: u64,
        source: u32,
    },
    Symlink {
        target: String,
    },
    /// A hard link to an earlier entry's `target` path (normalised, relative).
    HardLink {
        target: String,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One object in the root file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, normalised, '/'-separated; `""` is the root directory itself.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (no file-type bits).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Extended attributes (e.g. `security.capability`), name and raw value.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// A directory imgbuild creates itself (a missing parent or mount point): root's, 0755.
    pub fn new_dir(path: impl Into<String>, mtime: i64) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: vec![],
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}
