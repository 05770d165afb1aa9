//! Parts under a hosting limit: GitHub refuses a release asset of 2 GiB or more, so a
//! larger file is also published as `FILE.001`, `FILE.002`, … each under the limit, with
//! a sha256 per part; joined in order (`cat`, `copy /b`) they are the file again.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Just under GitHub's 2 GiB limit for a release asset.
pub const DEFAULT_LIMIT: u64 = 2 * 1024 * 1024 * 1024 - 1024 * 1024;

/// One part: its file name, size and sha256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Part {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Splits `file` (named `name`) into parts of at most `limit` bytes in `dir`; none when
/// the file is already under the limit.
pub fn split(file: &Path, name: &str, limit: u64, dir: &Path) -> Result<Vec<Part>> {
    let len = fs_err::metadata(file)?.len();
    if len <= limit || limit == 0 {
        return Ok(Vec::new());
    }
    let mut input = std::io::BufReader::with_capacity(1 << 20, fs_err::File::open(file)?);
    let mut parts = Vec::new();
    let mut left = len;
    while left > 0 {
        let part_name = format!("{name}.{:03}", parts.len() + 1);
        let take = left.min(limit);
        let out = fs_err::File::create(dir.join(&part_name))?;
        let mut w = crate::digest::HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, out));
        let copied =
            std::io::copy(&mut (&mut input).take(take), &mut w).with_context(|| format!("writing {part_name}"))?;
        let (mut inner, sha256, size) = w.finish();
        inner.flush()?;
        debug_assert_eq!(copied, size);
        parts.push(Part {
            name: part_name,
            size,
            sha256,
        });
        left -= take;
    }
    Ok(parts)
}
