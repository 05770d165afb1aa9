//! ext4 partitions, made by e2fsprogs' `mke2fs -d ARCHIVE` straight into the image file
//! at the partition's offset: no root, no loop device, no mount. Deterministic: fixed
//! UUID and hash seed, SOURCE_DATE_EPOCH, and our own mke2fs.conf so the host's defaults
//! do not leak into the image.

use crate::process::{Cmd, ProcessError};
use crate::recipe::size::align_up;
use crate::rootfs::entry::{Entry, EntryKind};
use std::path::{Path, PathBuf};

const BLOCK: u64 = 4096;
const INODE_SIZE: u64 = 256;

/// Features every Debian release from bullseye on can mount and fsck; pinned so the
/// image does not depend on the build host's /etc/mke2fs.conf.
const MKE2FS_CONF: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

/// Why making an ext4 file system failed.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error("{found} cannot read a tar archive; imgbuild needs e2fsprogs 1.47.1 or newer (bookworm has 1.47.0)")]
    TooOld { found: String },
    #[error("the content does not fit in {size} bytes")]
    TooSmall { size: u64 },
    #[error(transparent)]
    Tool(#[from] ProcessError),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl crate::fault::Fault for Ext4Error {
    fn kind(&self) -> crate::fault::Kind {
        match self {
            Ext4Error::TooSmall { .. } => crate::fault::Kind::User,
            Ext4Error::Tool(e) => e.kind(),
            _ => crate::fault::Kind::Environment,
        }
    }
    fn hints(&self) -> Vec<String> {
        match self {
            Ext4Error::TooOld { .. } => vec!["run `ci/install-host-deps.sh`, or on Debian bookworm enable bookworm-backports and run `apt-get install -t bookworm-backports e2fsprogs libarchive13`".into()],
            Ext4Error::Tool(e) => e.hints(),
            Ext4Error::Io { source, .. } if crate::fault::is_disk_full(source) => vec![crate::fault::DISK_FULL_HINT.into()],
            _ => Vec::new(),
        }
    }
}

/// Inputs to one `mke2fs` run.
pub struct Ext4Job<'a> {
    pub image: &'a Path,
    pub offset: u64,
    pub size: u64,
    /// A tar archive of exactly this partition's content.
    pub archive: &'a Path,
    pub label: &'a str,
    pub uuid: &'a str,
    pub epoch: i64,
    /// Number of entries (for the inode density).
    pub entries: u64,
    /// Directory to write our mke2fs.conf into.
    pub scratch: &'a Path,
}

/// Checks that mke2fs can read tar archives (e2fsprogs ≥ 1.47.1).
pub fn check_version() -> Result<String, Ext4Error> {
    let out = Cmd::new("mke2fs").arg("-V").run()?;
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    let version = first.split_whitespace().nth(1).unwrap_or_default();
    let nums: Vec<u32> = version.split('.').map(|n| n.parse().unwrap_or(0)).collect();
    let (a, b, c) = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    );
    if (a, b, c) < (1, 47, 1) {
        return Err(Ext4Error::TooOld { found: first });
    }
    Ok(first)
}

/// A size that should hold `entries`; the caller adds the recipe's margin, and
/// [`make`] reports [`Ext4Error::TooSmall`] if the estimate was short.
pub fn estimate(entries: &[Entry]) -> u64 {
    let mut blocks = 0u64;
    let mut dir_bytes: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for e in entries {
        match &e.kind {
            EntryKind::File { size, .. } => blocks += size.div_ceil(BLOCK) + size / (BLOCK * 340 * 4),
            EntryKind::Symlink { target } if target.len() > 59 => blocks += 1,
            _ => {}
        }
        if e.xattrs.iter().map(|(k, v)| k.len() + v.len() + 16).sum::<usize>() > 96 {
            blocks += 1;
        }
        if !e.path.is_empty() {
            let name = e.path.rsplit('/').next().unwrap_or_default();
            *dir_bytes.entry(crate::rootpath::parent(&e.path)).or_default() += align_up(8 + name.len() as u64, 4);
        }
    }
    // Directories: their entries plus `.`/`..`, and htree index blocks for big ones.
    blocks += dir_bytes
        .values()
        .map(|b| (b + 24).div_ceil(BLOCK) * 11 / 10 + 1)
        .sum::<u64>();
    let inodes = entries.len() as u64 + 16;
    let data = blocks * BLOCK + inodes * INODE_SIZE * 2;
    let with_meta = data + data / 16 + (4 << 20);
    with_meta + journal_bytes(with_meta)
}

/// The journal mke2fs creates for a file system of `bytes` (e2fsprogs' default sizes).
fn journal_bytes(bytes: u64) -> u64 {
    let blocks = bytes / BLOCK;
    let j = match blocks {
        b if b < 2048 => 0,
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131072,
        _ => 262144,
    };
    j * BLOCK
}

/// Bytes per inode: the usual 16 KiB, denser when many small files would run out of
/// inodes. Never sparser than the default, so growing the file system at first boot
/// keeps a sensible inode count.
fn inode_ratio(size: u64, entries: u64) -> u64 {
    let want = size / (entries.max(1) * 3 / 2 + 64);
    let mut ratio = 16384;
    while ratio > BLOCK && ratio > want {
        ratio /= 2;
    }
    ratio
}

/// Runs mke2fs for one partition.
pub fn make(job: &Ext4Job) -> Result<(), Ext4Error> {
    let conf = job.scratch.join("mke2fs.conf");
    fs_err::write(&conf, MKE2FS_CONF).map_err(|source| Ext4Error::Io {
        path: conf.clone(),
        source,
    })?;
    let blocks = job.size / BLOCK;
    let cmd = Cmd::new("mke2fs")
        .env("MKE2FS_CONFIG", &conf)
        .env("SOURCE_DATE_EPOCH", job.epoch.to_string())
        .env("E2FSPROGS_FAKE_TIME", job.epoch.to_string())
        .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
        .arg("-i")
        .arg(inode_ratio(job.size, job.entries).to_string())
        .arg("-L")
        .arg(job.label)
        .arg("-U")
        .arg(job.uuid)
        .arg("-E")
        .arg(format!(
            "offset={},hash_seed={},lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
            job.offset, job.uuid
        ))
        .arg("-d")
        .arg(job.archive)
        .arg(job.image)
        .arg(blocks.to_string());
    match cmd.run() {
        Ok(_) => Ok(()),
        // The disk holding the image filled, not the partition (the gateway asked the
        // file system; mke2fs words both alike): a recipe change would not help.
        Err(ProcessError::Failed {
            full_disk: Some(path), ..
        }) => Err(Ext4Error::Io {
            path,
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        }),
        // mke2fs's own words are its only report that the content outgrew the size.
        Err(ProcessError::Failed { stderr_tail, .. }) if is_space_error(&stderr_tail) => {
            Err(Ext4Error::TooSmall { size: job.size })
        }
        Err(e) => Err(e.into()),
    }
}

fn is_space_error(stderr: &str) -> bool {
    [
        "Could not allocate block",
        "No space left",
        "Could not allocate inode",
        "No free space",
        "Could not allocate",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_ratio_gets_denser_for_many_small_files() {
        assert_eq!(inode_ratio(1 << 30, 1000), 16384);
        assert_eq!(inode_ratio(16 << 20, 4000), 2048.max(BLOCK));
        assert!(inode_ratio(16 << 20, 4000) >= BLOCK);
    }

    #[test]
    fn journal_sizes_follow_e2fsprogs() {
        assert_eq!(journal_bytes(4 << 20), 0);
        assert_eq!(journal_bytes(64 << 20), 4 << 20);
        assert_eq!(journal_bytes(512 << 20), 16 << 20);
        assert_eq!(journal_bytes(3 << 30), 64 << 20);
    }
}
