//! The integration tests: one binary driving the real `imgbuild` command in fresh
//! temporary directories, checking its images with independent tools (sfdisk,
//! fsck.fat, e2fsck, debugfs, mtools; skopeo, podman and umoci for container archives).

// Tests may call std::fs directly: a panic there names its line (clippy.toml is for src/).
#![allow(clippy::disallowed_methods)]

mod bad_inputs;
mod boot;
mod bootloader;
mod build;
mod cli;
mod common;
mod content;
mod content_cran;
mod content_default;
mod content_installs;
mod content_pypi;
mod content_site;
mod cross_day;
mod debian_archive;
mod errors;
mod firmware;
mod first_boot;
mod http_fixture;
mod images;
mod inspect;
mod oci;
mod release;
mod rootfs;
mod server;
mod structure;
