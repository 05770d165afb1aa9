//! Raw blobs (boot loaders such as Rockchip's idbloader and u-boot) written at fixed
//! offsets outside the partitions.

use crate::recipe::plan::BlobPlan;
use anyhow::{Context, Result};

/// The size of each blob's file, checked to exist.
pub fn sizes(blobs: &[BlobPlan]) -> Result<Vec<u64>> {
    blobs
        .iter()
        .map(|b| {
            fs_err::metadata(&b.file).map(|m| m.len()).with_context(|| {
                format!(
                    "{}: image.blobs.{}.file: cannot read the blob; fix the path (relative to the recipe)",
                    b.defined_in.display(),
                    b.name
                )
            })
        })
        .collect()
}

/// Copies each blob into the image at its offset.
pub fn write(image: &std::fs::File, blobs: &[BlobPlan], sizes: &[u64]) -> Result<()> {
    for (b, &len) in blobs.iter().zip(sizes) {
        let src = fs_err::File::open(&b.file)?;
        crate::fsx::copy_range_sparse(src.file(), 0, image, b.offset, len)
            .with_context(|| format!("writing blob `{}` from {}", b.name, b.file.display()))?;
    }
    Ok(())
}
