//! The block map of an image for `bmaptool copy` (bmap format 2.0): which 4 KiB blocks
//! hold data, each run with the SHA-256 of its bytes, and the map's own SHA-256 (computed
//! with that field all zeros, as bmaptool checks it). The runs come from what the image
//! stage wrote, not from scanning the file.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// bmaptool's block size for images.
pub const BLOCK: u64 = 4096;

/// Byte ranges `[start, end)` → sorted, merged, inclusive block ranges within `size`.
pub fn blocks(ranges: &[(u64, u64)], size: u64) -> Vec<(u64, u64)> {
    let last_block = size.div_ceil(BLOCK).saturating_sub(1);
    let mut b: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|(s, e)| e > s && *s < size)
        .map(|&(s, e)| (s / BLOCK, ((e.min(size) - 1) / BLOCK).min(last_block)))
        .collect();
    b.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(b.len());
    for (first, last) in b {
        match out.last_mut() {
            Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

/// The bmap text of `image` (its length is the image size) mapping the byte `ranges`.
pub fn render(image: &Path, ranges: &[(u64, u64)]) -> Result<String> {
    let mut f = fs_err::File::open(image)?;
    let size = f.metadata()?.len();
    let map = blocks(ranges, size);
    let mapped: u64 = map.iter().map(|(a, b)| b - a + 1).sum();
    let count = size.div_ceil(BLOCK);
    let mut body = String::new();
    let mut buf = vec![0u8; 1 << 20];
    for &(first, last) in &map {
        let start = first * BLOCK;
        let end = ((last + 1) * BLOCK).min(size);
        f.seek(SeekFrom::Start(start))?;
        let mut left = end - start;
        let mut h = Sha256::new();
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n])
                .with_context(|| format!("reading {} at byte {}", image.display(), end - left))?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        let sum = hex::encode(h.finalize());
        let blocks = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        writeln!(body, "        <Range chksum=\"{sum}\"> {blocks} </Range>")?;
    }
    let percent = if count == 0 {
        0.0
    } else {
        mapped as f64 * 100.0 / count as f64
    };
    let head = |checksum: &str| {
        format!(
            "<?xml version=\"1.0\" ?>\n\
<!-- Written by imgbuild: the blocks of this image that hold data. bmaptool copies only\n\
     these and checks each range's sha256 as it writes. -->\n\
<bmap version=\"2.0\">\n\
    <ImageSize> {size} </ImageSize>\n\
    <BlockSize> {BLOCK} </BlockSize>\n\
    <BlocksCount> {count} </BlocksCount>\n\
    <!-- {percent:.1}% of the image is mapped -->\n\
    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n\
    <ChecksumType> sha256 </ChecksumType>\n\
    <!-- Computed with this field as 64 zeros. -->\n\
    <BmapFileChecksum> {checksum} </BmapFileChecksum>\n\
    <BlockMap>\n\
{body}    </BlockMap>\n\
</bmap>\n"
        )
    };
    let zeroed = head(&"0".repeat(64));
    let sum = hex::encode(Sha256::digest(zeroed.as_bytes()));
    Ok(head(&sum))
}

/// Writes the bmap of `image` to `dest`; returns its sha256.
pub fn write(image: &Path, ranges: &[(u64, u64)], dest: &Path) -> Result<String> {
    let text = render(image, ranges)?;
    fs_err::write(dest, &text)?;
    Ok(crate::digest::sha256_hex(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_become_merged_inclusive_blocks_within_the_image() {
        assert_eq!(blocks(&[(0, 512)], 10 * BLOCK), [(0, 0)]);
        assert_eq!(blocks(&[(4096, 8192), (0, 1), (8192, 8193)], 10 * BLOCK), [(0, 2)]);
        assert_eq!(blocks(&[(5 * BLOCK, 100 * BLOCK)], 10 * BLOCK + 7), [(5, 10)]);
        assert_eq!(blocks(&[(3, 3), (20 * BLOCK, 21 * BLOCK)], 10 * BLOCK), []);
    }
}
