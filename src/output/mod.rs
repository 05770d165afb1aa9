//! The output stage: compresses and checksums the raw image (or writes the container
//! image archive), writes the manifest and the `.sha256` file, then publishes everything
//! from the staging area under final names.

pub mod compress;
pub mod manifest;
pub mod oci;
mod oci_tar;

use crate::build_info::BuildInfo;
use crate::fsx::Staging;
use crate::image::Assembled;
use crate::recipe::Resolved;
use crate::recipe::model::{Compression, TableKind};
use crate::report::{Reporter, human_bytes};
use crate::rootfs::RootTree;
use anyhow::{Context, Result};
use manifest::{ImageReport, Manifest, OutputFile, Record};
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
    file: &str,
    assembled: &Assembled,
    info: &BuildInfo,
    record: Record,
    staging: Staging,
    reporter: &dyn Reporter,
) -> Result<Published> {
    let plan = &resolved.plan;
    let raw_name = file.to_string();
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
            info.host.threads,
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
        raw_hash = crate::report::step(reporter, "checksum image", || {
            crate::digest::sha256_file(&assembled.image)
        })?;
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
    let manifest = Manifest {
        imgbuild_version: info.version.to_string(),
        name: plan.name.clone(),
        source_date_epoch: info.epoch,
        recipe: resolved.recipe.clone(),
        record,
        image: Some(ImageReport {
            table: match plan.table {
                TableKind::Mbr => "mbr".into(),
                TableKind::Gpt => "gpt".into(),
            },
            disk_id: plan.disk_id.to_string(),
            image_size: assembled.layout.size,
            partitions: assembled.partitions.clone(),
            blobs: assembled.layout.blobs.clone(),
            mapped: assembled.mapped.clone(),
        }),
        container: None,
        outputs,
    };
    finish(manifest, names, staging)
}

/// Writes the container image archive (`output.format: oci`), checksums it, writes the
/// manifest and publishes.
pub fn publish_oci(
    resolved: &Resolved,
    file: &str,
    tree: &RootTree,
    info: &BuildInfo,
    record: Record,
    staging: Staging,
    reporter: &dyn Reporter,
) -> Result<Published> {
    let plan = &resolved.plan;
    let spec = plan
        .output
        .oci
        .as_ref()
        .context("publish_oci needs `output.format: oci`")?;
    let epoch = info.epoch;
    let name = file.to_string();
    let path = staging.path(&name);
    let mut task = reporter.task(
        &format!("write container image {}", spec.tag),
        oci::layer_size_estimate(tree),
    );
    let report = oci::write(&plan.name, spec, tree, epoch, &path, task.as_mut())?;
    task.finish();
    reporter.detail(&format!(
        "{name}: layer {} (gzip, {} uncompressed), image ID {}",
        human_bytes(report.layer.size),
        human_bytes(report.layer_uncompressed_size),
        report.config.digest
    ));
    // The layer was hashed as it was written; the archive around it is hashed here,
    // since its layer header was filled in last.
    let (sha256, size) = crate::report::step(reporter, "checksum container archive", || {
        crate::digest::sha256_file(&path)
    })?;
    let manifest = Manifest {
        imgbuild_version: info.version.to_string(),
        name: plan.name.clone(),
        source_date_epoch: epoch,
        recipe: resolved.recipe.clone(),
        record,
        image: None,
        container: Some(report),
        outputs: vec![OutputFile {
            name: name.clone(),
            sha256,
            size,
        }],
    };
    finish(manifest, vec![name], staging)
}

/// Writes the `.sha256` file and `manifest.json` beside the staged outputs, publishes
/// them all, and removes what an earlier build left that this one did not replace.
fn finish(manifest: Manifest, mut names: Vec<String>, staging: Staging) -> Result<Published> {
    let sums: String = manifest
        .outputs
        .iter()
        .map(|o| format!("{}  {}\n", o.sha256, o.name))
        .collect();
    let sums_name = format!("{}.sha256", manifest.name);
    fs_err::write(staging.path(&sums_name), sums)?;
    let json = serde_json::to_vec_pretty(&manifest)?;
    fs_err::write(staging.path("manifest.json"), json)?;
    names.push(sums_name);
    names.push("manifest.json".into());
    let files = staging.publish(&names)?;
    // Another compression, the raw image with `keep_raw: false`, or the other format
    // would be stale next to the new outputs.
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        for name in crate::recipe::plan::Target::every_file(&manifest.name) {
            if !names.contains(&name) {
                let _ = fs_err::remove_file(dir.join(&name));
            }
        }
    }
    Ok(Published { files, manifest })
}
