//! The raw `firmware:` section: boot loaders made on the build host for boards no Debian
//! binary package serves (the Radxa Rock 4C+'s U-Boot), by name. `image.blobs` place their
//! files on the disk as `NAME/FILE` (`u-boot/idbloader.img`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a firmware's files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareSourceKind {
    /// Built from a Debian source package, fetched by name and version through the
    /// archive's signed index, cross-compiled natively.
    Debian,
    /// Published files, each by URL and SHA-256.
    Url,
}

/// One firmware, e.g. `u-boot`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareSpec {
    /// `debian` (built from Debian's source package) or `url` (published files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<FirmwareSourceKind>,
    /// The Debian source package (default `u-boot`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Its exact Debian version (`2025.01-3+deb13u1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Debian suite whose signed index names that version (default: `rootfs.suite`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The archive (default: `rootfs.mirror`, else `http://deb.debian.org/debian`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// The board's U-Boot configuration (`rock-4c-plus-rk3399_defconfig`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defconfig: Option<String>,
    /// The ARM Trusted Firmware a Rockchip U-Boot embeds, from Debian's arm64 binary package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bl31: Option<Bl31Spec>,
    /// Values the built `.config` must have (`CONFIG_PMIC_RK8XX: y`): a source whose
    /// defconfig says otherwise fails the build instead of making a board that won't start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_config: Option<IndexMap<String, String>>,
    /// For `source: url`: the files by the name blobs use (`idbloader.img`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<IndexMap<String, Option<FirmwareFileSpec>>>,
}

/// `bl31`: one file of Debian's arm-trusted-firmware package.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bl31Spec {
    /// The binary package (default `arm-trusted-firmware`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Its exact Debian version (`2.12.1+dfsg-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The SoC (`rk3399`): the file is `/usr/lib/arm-trusted-firmware/<platform>/bl31.elf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// A published firmware file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareFileSpec {
    pub url: String,
    /// Its SHA-256 (64 hex digits): the download is refused when it differs.
    pub sha256: String,
}
