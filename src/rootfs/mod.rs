//! The root file system stage: brings the recipe's root file system into the canonical
//! form every later stage reads — one uncompressed pax tar archive plus its index.

pub mod dir;
pub mod entry;
pub mod tar_read;
pub mod tar_write;

use crate::fsx::Staging;
use crate::recipe::plan::RootfsSource;
use anyhow::{Context, Result, bail};
pub use entry::{Entry, EntryKind};
use std::path::{Path, PathBuf};

/// The root file system as an indexed tar archive.
#[derive(Debug)]
pub struct RootTree {
    /// The uncompressed tar archive (the recipe's own, or one in the staging area).
    pub tar: PathBuf,
    /// Its entries in archive order.
    pub entries: Vec<Entry>,
}

impl RootTree {
    /// The newest modification time: the default SOURCE_DATE_EPOCH.
    pub fn newest_mtime(&self) -> i64 {
        self.entries.iter().map(|e| e.mtime).max().unwrap_or(0)
    }
}

/// Brings the recipe's root file system into canonical form.
pub fn prepare(source: &RootfsSource, staging: &Staging) -> Result<RootTree> {
    let tar = match source {
        RootfsSource::Tar(p) => {
            if !p.is_file() {
                bail!(
                    "rootfs.tar: {} does not exist; build or download it first, or fix the path (relative to the recipe)",
                    p.display()
                );
            }
            decompress_if_needed(p, staging)?
        }
        RootfsSource::Dir(d) => {
            if !d.is_dir() {
                bail!(
                    "rootfs.dir: {} is not a directory; fix the path (relative to the recipe)",
                    d.display()
                );
            }
            let dest = staging.path("rootfs.tar");
            dir::pack(d, &dest).with_context(|| format!("packing rootfs.dir {}", d.display()))?;
            dest
        }
    };
    let entries = tar_read::index(&tar)?;
    Ok(RootTree { tar, entries })
}

/// Compressed archives are unpacked once into the staging area, since later stages
/// copy file data from the archive by offset.
fn decompress_if_needed(path: &Path, staging: &Staging) -> Result<PathBuf> {
    let mut magic = [0u8; 6];
    {
        use std::io::Read;
        let mut f = fs_err::File::open(path)?;
        let n = f.read(&mut magic)?;
        if n < 4 {
            bail!(
                "rootfs.tar: {} is not a tar archive (too short)",
                path.display()
            );
        }
    }
    let reader: Box<dyn std::io::Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(fs_err::File::open(path)?))
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(
            fs_err::File::open(path)?,
        ))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::new(fs_err::File::open(path)?)?)
    } else {
        return Ok(path.to_path_buf());
    };
    let dest = staging.path("rootfs.tar");
    let mut out = std::io::BufWriter::new(fs_err::File::create(&dest)?);
    let mut reader = std::io::BufReader::new(reader);
    std::io::copy(&mut reader, &mut out)
        .with_context(|| format!("decompressing {}", path.display()))?;
    Ok(dest)
}
