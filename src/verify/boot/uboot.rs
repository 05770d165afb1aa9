//! A U-Boot board's image (the Rock 4C+, 4SE): the static checks of `rockchip`, the
//! board's U-Boot `.config` against what its recipe demanded, then what QEMU can boot —
//! U-Boot built from the same Debian source for QEMU's `virt` machine
//! (`qemu_arm64_defconfig`, through the firmware stage and its cache), starting the
//! image's own extlinux entry on a copy whose device-tree line is dropped (QEMU supplies
//! its own tree).
//!
//! The build's `manifest.json` beside the image names the U-Boot source; its
//! `logs/firmware-NAME.config` is the board's configuration.

use super::rockchip::{self, Checked};
use crate::firmware;
use crate::recipe::plan_firmware::{FirmwarePlan, FirmwareSource, UbootFromDebian};
use crate::report::Reporter;
use crate::verify::inspect::{FoundPartition, Inspection};
use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};

/// U-Boot's configuration for QEMU's arm64 `virt` machine, in every U-Boot source.
pub const QEMU_DEFCONFIG: &str = "qemu_arm64_defconfig";

/// What the boot needs, and what the static checks found.
pub struct Prepared {
    pub bios: PathBuf,
    pub root: FoundPartition,
    /// Files to write into the copy: the extlinux.conf without its device-tree line.
    pub replace: Vec<(String, String)>,
    pub checked: Checked,
}

/// The image's build record beside it.
fn manifest(image: &Path) -> Result<(PathBuf, serde_json::Value)> {
    let dir = image
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = dir.join("manifest.json");
    let bytes = fs_err::read(&path).map_err(|_| {
        anyhow!(
            "{}: a U-Boot board's boot test needs the build's manifest.json beside the image (it names the U-Boot source to build for QEMU); run it on the build's output directory",
            path.display()
        )
    })?;
    let v = serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
    Ok((path, v))
}

/// The firmware the manifest records as built from a Debian source: (name, source).
fn debian_firmware(manifest: &serde_json::Value) -> Vec<(String, UbootFromDebian)> {
    manifest["firmware"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let name = f["name"].as_str()?.to_string();
            let source: UbootFromDebian = serde_json::from_value(f.get("debian")?.clone()).ok()?;
            Some((name, source))
        })
        .collect()
}

/// Runs the static checks and builds (or takes from the cache) U-Boot for QEMU.
pub fn prepare(
    image: &Path,
    before: &Inspection,
    cache_dir: &Path,
    work: &Path,
    reporter: &dyn Reporter,
) -> Result<Prepared> {
    let mut checked = crate::report::step(reporter, "check the loaders, extlinux entry and device tree", || {
        rockchip::check(image, before, work)
    })?;
    let (manifest_path, manifest) = manifest(image)?;
    let built = debian_firmware(&manifest);
    let (name, board) = built.first().cloned().ok_or_else(|| {
        anyhow!(
            "{}: records no U-Boot built from a Debian source (`firmware:` with `source: debian`), which the QEMU boot is built from",
            manifest_path.display()
        )
    })?;
    let logs = manifest_path.with_file_name("logs");
    let config_path = logs.join(format!("firmware-{name}.config"));
    match fs_err::read_to_string(&config_path) {
        Ok(config) => rockchip::check_config(&config, &board.check_config, &mut checked),
        Err(_) => checked.failures.push(format!(
            "the board's U-Boot configuration {} is missing (the build keeps it there)",
            config_path.display()
        )),
    }
    let (root, text) = checked
        .extlinux
        .clone()
        .ok_or_else(|| anyhow!("{}: nothing for U-Boot to boot (see the checks above)", image.display()))?;
    let path = rockchip::find_extlinux(image, before)
        .map(|(_, p, _)| p.to_string())
        .unwrap_or_else(|| rockchip::EXTLINUX_PATHS[0].to_string());

    // The same source, configured for QEMU's virt: no bl31, U-Boot runs at EL1 there.
    let qemu = FirmwarePlan {
        name: format!("{name}-qemu"),
        source: FirmwareSource::Debian(UbootFromDebian {
            defconfig: QEMU_DEFCONFIG.into(),
            bl31: None,
            check_config: vec![("CONFIG_BOOTMETH_EXTLINUX".into(), "y".into())],
            ..board
        }),
        defined_in: manifest_path.clone(),
    };
    let cache = crate::cache::Cache::open(cache_dir.to_path_buf(), true)?;
    let store = crate::fetch::store::Store::open(cache.root())?;
    let client = crate::fetch::http::Client::new(Vec::new());
    let made = firmware::build(
        std::slice::from_ref(&qemu),
        &firmware::Ctx {
            cache: &cache,
            store: &store,
            client: &client,
            work: work.join("firmware"),
            log_dir: logs,
            reporter,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            offline: false,
        },
    )?;
    let bios = made
        .file(&qemu.name, "u-boot.bin")
        .ok_or_else(|| anyhow!("the U-Boot build for QEMU made no u-boot.bin"))?
        .to_path_buf();
    Ok(Prepared {
        bios,
        root,
        replace: vec![(path, super::extlinux::without_fdt(&text))],
        checked,
    })
}

/// Whether U-Boot's log shows it booting a bootflow by the extlinux method (not, say, an
/// EFI boot manager entry): what a u-boot-virt pass must come from.
pub fn booted_extlinux(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("Booting bootflow") && l.trim_end().ends_with("with extlinux"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_an_extlinux_bootflow_counts() {
        let log = "Scanning bootdev 'virtio-blk#32.bootdev':\n  1  extlinux     ready   virtio       1  virtio-blk#32.bootdev.par /boot/extlinux/extlinux.conf\n** Booting bootflow 'virtio-blk#32.bootdev.part_1' with extlinux\r\n";
        assert!(super::booted_extlinux(log));
        assert!(!super::booted_extlinux("** Booting bootflow '<NULL>' with efi_mgr\n"));
    }
}
