//! imgbuild: flashable disk images for offline teaching servers, built from declarative
//! YAML recipes without root, loop devices or mounts.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`recipe`] (YAML → plan) → [`fetch`] (mirror content, lock, content store) → [`rootfs`] (root file system as a tar archive) →
//! [`image`] (layout, partition table, file systems) → [`output`] (compress, checksum,
//! manifest, publish; or a container image archive) → [`verify`] (inspect). [`pipeline`] calls them in order.

pub mod build_info;
pub mod cache;
pub mod cli;
pub mod codec;
pub mod digest;
pub mod doctor;
pub mod fault;
pub mod fetch;
pub mod firmware;
pub mod fsx;
pub mod host;
pub mod image;
pub mod interrupt;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod process;
pub mod recipe;
pub mod release;
pub mod report;
pub mod rootfs;
pub mod rootpath;
pub mod verify;
