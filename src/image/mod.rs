//! The image stage: splits the root file system among partitions, sizes them, lays the
//! disk out, and writes the partition table, file systems, blobs and a PC's boot
//! loaders into one sparse image file — without root, loop devices or mounts.

pub mod assemble;
pub mod blobs;
pub mod boot;
pub mod content;
pub mod fs;
pub mod layout;
pub mod table;

pub use assemble::{Assembled, PartitionReport, assemble};
