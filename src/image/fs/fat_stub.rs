#![allow(dead_code, unused_variables)]
use std::path::PathBuf;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRange { pub path: PathBuf, pub offset: u64, pub len: u64 }
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind { Dir, File(DataRange) }
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node { pub path: String, pub kind: NodeKind, pub mtime: i64 }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType { Fat12, Fat16, Fat32 }
pub struct FatOptions { pub label: String, pub volume_id: u32, pub fat_type: Option<FatType>, pub oem_name: [u8; 8] }
#[derive(Debug, thiserror::Error)]
pub enum FatError { #[error("stub")] Stub }
pub fn min_size(nodes: &[Node], opts: &FatOptions) -> Result<u64, FatError> { Err(FatError::Stub) }
pub struct WriteStats;
pub fn write(image: &std::fs::File, offset: u64, size: u64, nodes: &[Node], opts: &FatOptions) -> Result<WriteStats, FatError> { Err(FatError::Stub) }
pub struct FatInfo { pub fat_type: FatType, pub label: String, pub volume_id: u32, pub cluster_size: u32, pub total_clusters: u64, pub free_clusters: u64, pub used_bytes: u64 }
pub struct FatReader;
impl FatReader {
    pub fn open(image: std::fs::File, offset: u64, size: u64) -> Result<Self, FatError> { Err(FatError::Stub) }
    pub fn info(&self) -> FatInfo { unimplemented!() }
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FatError> { Err(FatError::Stub) }
}
