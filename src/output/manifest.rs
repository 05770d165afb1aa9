//! `manifest.json`: what went into an image and what came out — the resolved recipe,
//! every input with its sha256, the partition table (or the container image's blobs)
//! and the output files.

use crate::image::PartitionReport;
use crate::recipe::Recipe;
use serde::Serialize;

/// One input file and its digest.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub role: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// One published file.
#[derive(Debug, Clone, Serialize)]
pub struct OutputFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub imgbuild_version: String,
    pub name: String,
    pub source_date_epoch: i64,
    pub recipe: Recipe,
    /// What went in and what the root holds (its fields sit at the top level).
    #[serde(flatten)]
    pub record: Record,
    /// A disk image's layout (its fields sit at the top level, as they always have).
    #[serde(flatten)]
    pub image: Option<ImageReport>,
    /// A container image's name, platform and blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<super::oci::ContainerReport>,
    pub outputs: Vec<OutputFile>,
}

/// What the build read and what its root file system holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub inputs: Vec<Input>,
    /// Installed Debian packages and their versions, from the root's dpkg status.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub packages: std::collections::BTreeMap<String, String>,
    /// What the mirrors hold (the landing page's `content`), from the plan and the lock.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub content: serde_json::Value,
    /// Boot loaders the firmware stage made: their verified inputs and their files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub firmware: Vec<FirmwareRecord>,
}

/// One firmware as the manifest records it (no cache paths: the manifest is the same
/// whether it was built or came from the cache).
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareRecord {
    pub name: String,
    pub source: String,
    pub inputs: Vec<crate::firmware::Verified>,
    pub files: Vec<crate::firmware::Verified>,
    /// The Debian source it was built from, as the recipe named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debian: Option<crate::recipe::plan_firmware::UbootFromDebian>,
}

impl FirmwareRecord {
    pub fn of(made: &crate::firmware::Made) -> FirmwareRecord {
        FirmwareRecord {
            name: made.name.clone(),
            source: made.source.clone(),
            inputs: made.inputs.clone(),
            files: made
                .files
                .iter()
                .map(|f| crate::firmware::Verified {
                    name: f.name.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size,
                })
                .collect(),
            debian: made.debian.clone(),
        }
    }
}

/// What a disk image holds and where.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub table: String,
    pub disk_id: String,
    pub image_size: u64,
    pub partitions: Vec<PartitionReport>,
    pub blobs: Vec<crate::image::layout::Placed>,
    /// Byte ranges `[start, end)` holding data, as the image stage wrote them (what a
    /// release's bmap lists).
    pub mapped: Vec<(u64, u64)>,
}
