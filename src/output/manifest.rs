//! `manifest.json`: what went into an image and what came out — the resolved recipe,
//! every input with its sha256, the partition table and the output files.

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
    pub inputs: Vec<Input>,
    pub table: String,
    pub disk_id: String,
    pub image_size: u64,
    pub partitions: Vec<PartitionReport>,
    pub blobs: Vec<crate::image::layout::Placed>,
    pub outputs: Vec<OutputFile>,
}
