//! The output stage: compresses and checksums the raw image, writes the manifest and the
//! `.sha256` file, then publishes everything from the staging area under final names.

pub mod compress;
pub mod manifest;

use crate::fsx::Staging;
use crate::image::Assembled;
use crate::recipe::Resolved;
use crate::recipe::model::{Compression, TableKind};
use crate::report::{Reporter, human_bytes};
use anyhow::Result;
use manifest::{Input, Manifest, OutputFile};
use std::path::PathBuf;

/// The published files.
#[derive(Debug)]
pub struct Published {
    pub files: Vec<PathBuf>,
    pub manifest: Manifest,
}

/// Compresses, checksums, writes the manifest and publishes.
pub fn publish(
    resolved: &Resolved,
    assembled: &Assembled,
    inputs: Vec<Input>,
    staging: Staging,
    reporter: &dyn Reporter,
) -> Result<Published> {
    let plan = &resolved.plan;
    let raw_name = format!("{}.img", plan.name);
    let mut outputs = Vec::new();
    let mut names = Vec::new();
    let raw_hash;
    if let Some(ext) = compress::extension(plan.output.compression) {
        let name = format!("{raw_name}.{ext}");
        let mut task = reporter.task(&format!("compress {ext}"), assembled.layout.size);
        let c = compress::compress(
            &assembled.image,
            &staging.path(&name),
            plan.output.compression,
            plan.output.level,
            task.as_mut(),
        )?;
        task.finish();
        reporter.detail(&format!(
            "{name}: {} ({:.1}% of {})",
            human_bytes(c.size),
            c.size as f64 * 100.0 / c.raw_size.max(1) as f64,
            human_bytes(c.raw_size)
        ));
        raw_hash = (c.raw_sha256.clone(), c.raw_size);
        outputs.push(OutputFile {
            name: name.clone(),
            sha256: c.sha256,
            size: c.size,
        });
        names.push(name);
    } else {
        raw_hash = crate::report::step(reporter, "checksum image", || compress::sha256_file(&assembled.image))?;
    }
    if plan.output.keep_raw || plan.output.compression == Compression::None {
        outputs.insert(
            0,
            OutputFile {
                name: raw_name.clone(),
                sha256: raw_hash.0.clone(),
                size: raw_hash.1,
            },
        );
        names.insert(0, raw_name.clone());
    } else {
        fs_err::remove_file(&assembled.image)?;
    }
    let sums: String = outputs.iter().map(|o| format!("{}  {}\n", o.sha256, o.name)).collect();
    let sums_name = format!("{}.sha256", plan.name);
    fs_err::write(staging.path(&sums_name), sums)?;
    let manifest = Manifest {
        imgbuild_version: env!("CARGO_PKG_VERSION").to_string(),
        name: plan.name.clone(),
        source_date_epoch: assembled.epoch,
        recipe: resolved.recipe.clone(),
        inputs,
        table: match plan.table {
            TableKind::Mbr => "mbr".into(),
            TableKind::Gpt => "gpt".into(),
        },
        disk_id: plan.disk_id.to_string(),
        image_size: assembled.layout.size,
        partitions: assembled.partitions.clone(),
        blobs: assembled.layout.blobs.clone(),
        outputs,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    fs_err::write(staging.path("manifest.json"), json)?;
    names.push(sums_name);
    names.push("manifest.json".into());
    let files = staging.publish(&names)?;
    // An earlier build's outputs that this one does not replace (another compression,
    // or the raw image with `keep_raw: false`) would be stale next to the new ones.
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        for ext in ["", ".xz", ".zst", ".gz"] {
            let name = format!("{raw_name}{ext}");
            if !names.contains(&name) {
                let _ = fs_err::remove_file(dir.join(&name));
            }
        }
    }
    Ok(Published { files, manifest })
}
