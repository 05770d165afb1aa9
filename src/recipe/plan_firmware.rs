//! Checks `firmware:` and the blobs that name its files, so a build never starts with a
//! boot loader it cannot make or a blob nothing makes.

use super::checker::Checker;
use super::error::RecipeError;
use super::model::Recipe;
use super::model_firmware::{FirmwareSourceKind, FirmwareSpec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The files a U-Boot build from source can make: Rockchip's two loader stages, the two
/// joined, and the plain binary other boards (and QEMU's `virt`) start.
pub const UBOOT_OUTPUTS: &[&str] = &["idbloader.img", "u-boot.itb", "u-boot-rockchip.bin", "u-boot.bin"];

/// One firmware, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirmwarePlan {
    pub name: String,
    pub source: FirmwareSource,
    /// The recipe file that set it (errors found later name it).
    pub defined_in: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FirmwareSource {
    Debian(UbootFromDebian),
    Url(Vec<PublishedFile>),
}

/// U-Boot built from a Debian source package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UbootFromDebian {
    pub mirror: String,
    pub suite: String,
    pub package: String,
    pub version: String,
    pub defconfig: String,
    pub bl31: Option<Bl31Plan>,
    /// `CONFIG_X` → the value the built `.config` must have.
    pub check_config: Vec<(String, String)>,
}

/// bl31.elf from a Debian arm64 binary package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bl31Plan {
    pub package: String,
    pub version: String,
    pub platform: String,
}

impl Bl31Plan {
    /// The file's path in the package.
    pub fn path(&self) -> String {
        format!("usr/lib/arm-trusted-firmware/{}/bl31.elf", self.platform)
    }
}

/// A published file, by URL and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedFile {
    pub name: String,
    pub url: String,
    pub sha256: String,
}

impl FirmwarePlan {
    /// The file names blobs may take from it.
    pub fn outputs(&self) -> Vec<String> {
        match &self.source {
            FirmwareSource::Debian(_) => UBOOT_OUTPUTS.iter().map(|s| s.to_string()).collect(),
            FirmwareSource::Url(files) => files.iter().map(|f| f.name.clone()).collect(),
        }
    }
}

/// Checks every entry of `firmware:`.
pub fn firmware(recipe: &Recipe, ck: &Checker) -> Result<Vec<FirmwarePlan>, RecipeError> {
    let rootfs = recipe.rootfs.as_ref();
    let mut out = Vec::new();
    for (name, spec) in recipe.firmware.iter().flatten() {
        let field = format!("firmware.{name}");
        if !is_name(name) {
            return Err(ck.err(
                &field,
                format!("`{name}` cannot name a firmware; use letters, digits, `-`, `_` and `.`"),
            ));
        }
        let Some(spec) = spec else { continue };
        let source = match spec.source {
            None => {
                return Err(ck.err(
                    &format!("{field}.source"),
                    "missing; write `source: debian` (built from Debian's source package) or `source: url` (published files)",
                ));
            }
            Some(FirmwareSourceKind::Debian) => {
                let default_suite = rootfs.and_then(|r| r.suite.clone());
                let default_mirror = rootfs.and_then(|r| r.mirror.clone());
                FirmwareSource::Debian(from_debian(spec, &field, default_suite, default_mirror, ck)?)
            }
            Some(FirmwareSourceKind::Url) => FirmwareSource::Url(published(spec, &field, ck)?),
        };
        out.push(FirmwarePlan {
            name: name.clone(),
            source,
            defined_in: super::merge::origin_of(ck.origins, &field, ck.main_file),
        });
    }
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A Debian package name or version: what the archive's indices can hold, nothing a
/// shell or a path could read otherwise.
fn is_debian_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.~:_".contains(c))
}

fn from_debian(
    spec: &FirmwareSpec,
    field: &str,
    default_suite: Option<String>,
    default_mirror: Option<String>,
    ck: &Checker,
) -> Result<UbootFromDebian, RecipeError> {
    let f = |k: &str| format!("{field}.{k}");
    if spec.files.is_some() {
        return Err(ck.err(&f("files"), "only `source: url` takes `files`"));
    }
    let version = spec.version.clone().ok_or_else(|| {
        ck.err(
            &f("version"),
            "missing; give the source package's exact Debian version (`2025.01-3+deb13u1`, as `apt-cache showsrc u-boot` lists)",
        )
    })?;
    let package = spec.package.clone().unwrap_or_else(|| "u-boot".into());
    for (k, v) in [("version", &version), ("package", &package)] {
        if !is_debian_word(v) {
            return Err(ck.err(&f(k), format!("`{v}` is no Debian package {k}")));
        }
    }
    let suite = spec.suite.clone().or(default_suite).ok_or_else(|| {
        ck.err(
            &f("suite"),
            "missing; name the Debian suite whose index lists the version (`suite: trixie`)",
        )
    })?;
    if !is_debian_word(&suite) {
        return Err(ck.err(&f("suite"), format!("`{suite}` is no Debian suite name")));
    }
    let mirror = spec
        .mirror
        .clone()
        .or(default_mirror)
        .unwrap_or_else(|| super::plan_rootfs::DEFAULT_MIRROR.into());
    if !(mirror.starts_with("http://") || mirror.starts_with("https://") || mirror.starts_with("file://")) {
        return Err(ck.err(&f("mirror"), format!("`{mirror}` is no http(s):// or file:// URL")));
    }
    let defconfig = spec.defconfig.clone().ok_or_else(|| {
        ck.err(
            &f("defconfig"),
            "missing; name the board's U-Boot configuration (`rock-4c-plus-rk3399_defconfig`, a file in the source's configs/)",
        )
    })?;
    let plain = defconfig
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !defconfig.ends_with("_defconfig") || !plain || defconfig.starts_with('.') {
        return Err(ck.err(
            &f("defconfig"),
            format!("`{defconfig}` is no defconfig name; write the file name in configs/, e.g. `rock-4c-plus-rk3399_defconfig`"),
        ));
    }
    let bl31 = match &spec.bl31 {
        None => None,
        Some(b) => {
            let version = b.version.clone().ok_or_else(|| {
                ck.err(
                    &f("bl31.version"),
                    "missing; give arm-trusted-firmware's exact Debian version (`2.12.1+dfsg-1`)",
                )
            })?;
            let platform = b.platform.clone().ok_or_else(|| {
                ck.err(
                    &f("bl31.platform"),
                    "missing; name the SoC (`rk3399`): the file is /usr/lib/arm-trusted-firmware/<platform>/bl31.elf",
                )
            })?;
            let package = b.package.clone().unwrap_or_else(|| "arm-trusted-firmware".into());
            for (k, v) in [("bl31.version", &version), ("bl31.package", &package)] {
                if !is_debian_word(v) {
                    return Err(ck.err(&f(k), format!("`{v}` is no Debian package name or version")));
                }
            }
            if !is_name(&platform) {
                return Err(ck.err(
                    &f("bl31.platform"),
                    format!("`{platform}` is no platform directory name"),
                ));
            }
            Some(Bl31Plan {
                package,
                version,
                platform,
            })
        }
    };
    let mut check_config = Vec::new();
    for (k, v) in spec.check_config.iter().flatten() {
        let ok = k.starts_with("CONFIG_") && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(ck.err(
                &f("check_config"),
                format!("`{k}` is no Kconfig symbol; write it as the .config does (`CONFIG_PMIC_RK8XX`)"),
            ));
        }
        check_config.push((k.clone(), v.clone()));
    }
    Ok(UbootFromDebian {
        mirror,
        suite,
        package,
        version,
        defconfig,
        bl31,
        check_config,
    })
}

fn published(spec: &FirmwareSpec, field: &str, ck: &Checker) -> Result<Vec<PublishedFile>, RecipeError> {
    let f = |k: &str| format!("{field}.{k}");
    for (k, set) in [
        ("version", spec.version.is_some()),
        ("defconfig", spec.defconfig.is_some()),
        ("bl31", spec.bl31.is_some()),
        ("package", spec.package.is_some()),
        ("suite", spec.suite.is_some()),
        ("check_config", spec.check_config.is_some()),
    ] {
        if set {
            return Err(ck.err(&f(k), "only `source: debian` takes it; `source: url` takes `files`"));
        }
    }
    let mut out = Vec::new();
    for (name, file) in spec.files.iter().flatten() {
        let ff = format!("{field}.files.{name}");
        if !is_name(name) {
            return Err(ck.err(&ff, format!("`{name}` is no file name")));
        }
        let Some(file) = file else { continue };
        let url = &file.url;
        if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("file://")) {
            return Err(ck.err(&format!("{ff}.url"), format!("`{url}` is no http(s):// or file:// URL")));
        }
        let sha = file.sha256.to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ck.err(&format!("{ff}.sha256"), "not a SHA-256 (64 hex digits)"));
        }
        out.push(PublishedFile {
            name: name.clone(),
            url: url.clone(),
            sha256: sha,
        });
    }
    if out.is_empty() {
        return Err(ck.err(
            &f("files"),
            "missing; list the published files by name, each with `url` and `sha256`",
        ));
    }
    Ok(out)
}

/// A blob's `firmware: NAME/FILE`, checked against what `firmware` makes: (name, file).
pub fn blob_source(
    text: &str,
    field: &str,
    firmware: &[FirmwarePlan],
    ck: &Checker,
) -> Result<(String, String), RecipeError> {
    let Some((name, file)) = text.split_once('/') else {
        return Err(ck.err(
            field,
            format!("`{text}` names no firmware file; write `NAME/FILE` (`u-boot/idbloader.img`)"),
        ));
    };
    let Some(fw) = firmware.iter().find(|f| f.name == name) else {
        let known: Vec<&str> = firmware.iter().map(|f| f.name.as_str()).collect();
        return Err(ck.err(
            field,
            format!(
                "`{name}` is no firmware of this recipe ({}); add it under `firmware:`",
                if known.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has {}", known.join(", "))
                }
            ),
        ));
    };
    let outputs = fw.outputs();
    if !outputs.iter().any(|o| o == file) {
        return Err(ck.err(
            field,
            format!("firmware `{name}` makes no `{file}`; it makes {}", outputs.join(", ")),
        ));
    }
    Ok((name.to_string(), file.to_string()))
}
