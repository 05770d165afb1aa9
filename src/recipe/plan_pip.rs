//! A `files:` directory filled by Python packages installed for the image's Python
//! (`/usr/local/lib/python3.11/dist-packages: {pip: {packages: [pandas], python: "3.11"}}`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipPlan {
    pub requirements: Vec<String>,
    /// The image's Python version (`3.11` on Debian bookworm).
    pub python: String,
    /// uv's `--python-platform` for the image.
    pub uv_platform: String,
    pub index_url: String,
    /// The directory in the root file system (no leading `/`).
    pub target: String,
}

/// uv's platform for a Debian architecture: manylinux_2_28 wheels run on bookworm's glibc
/// 2.36 and anything newer.
pub fn platform_for(architecture: &str) -> Option<&'static str> {
    Some(match architecture {
        "amd64" => "x86_64-manylinux_2_28",
        "arm64" => "aarch64-manylinux_2_28",
        _ => return None,
    })
}
