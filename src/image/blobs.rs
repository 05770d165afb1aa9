//! Raw blobs (boot loaders such as Rockchip's idbloader and u-boot) written at fixed
//! offsets outside the partitions: files beside the recipe, or made by the firmware stage.

use crate::firmware::Outputs;
use crate::recipe::plan::{BlobPlan, BlobSource};
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;

/// Each blob's file and its size, checked to exist.
pub fn files(blobs: &[BlobPlan], firmware: &Outputs) -> Result<Vec<(PathBuf, u64)>> {
    blobs
        .iter()
        .map(|b| {
            let file = match &b.source {
                BlobSource::File(f) => f.clone(),
                BlobSource::Firmware(name, file) => firmware.file(name, file).map(PathBuf::from).ok_or_else(|| {
                    anyhow!(
                        "{}: image.blobs.{}.firmware: the firmware stage made no {name}/{file} (its build makes only the files its board's configuration asks for); name a file it made",
                        b.defined_in.display(),
                        b.name
                    )
                })?,
            };
            let len = fs_err::metadata(&file).map(|m| m.len()).with_context(|| {
                format!(
                    "{}: image.blobs.{}.file: cannot read the blob; fix the path (relative to the recipe)",
                    b.defined_in.display(),
                    b.name
                )
            })?;
            Ok((file, len))
        })
        .collect()
}

/// Copies each blob into the image at its offset.
pub fn write(image: &std::fs::File, blobs: &[BlobPlan], files: &[(PathBuf, u64)]) -> Result<()> {
    for (b, (path, len)) in blobs.iter().zip(files) {
        let src = fs_err::File::open(path)?;
        crate::fsx::copy_range_sparse(src.file(), 0, image, b.offset, *len)
            .with_context(|| format!("writing blob `{}` from {}", b.name, path.display()))?;
    }
    Ok(())
}
