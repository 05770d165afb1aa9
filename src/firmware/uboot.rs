//! U-Boot for a Rockchip board from Debian's u-boot source package (upstream tarball,
//! Debian's patches applied), `make BOARD_defconfig`, `make` with `BL31=` and
//! `SOURCE_DATE_EPOCH` (the changelog's date), cross-compiled natively. The outputs
//! (idbloader.img, u-boot.itb, u-boot-rockchip.bin; u-boot.bin for other boards) and the
//! `.config` are copied out of the tree. The stage cache is `super`'s.

use crate::process::Cmd;
use crate::recipe::plan_firmware::UBOOT_OUTPUTS;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The cross compiler's prefix (Debian's gcc-aarch64-linux-gnu).
pub const CROSS_COMPILE: &str = "aarch64-linux-gnu-";
/// Rockchip's loader files, in the order a recipe places them (SPL stage, then U-Boot).
pub const ROCKCHIP_OUTPUTS: &[&str] = &["idbloader.img", "u-boot.itb", "u-boot-rockchip.bin"];

/// One build.
pub struct Build<'a> {
    /// The u-boot source package, as the signed index named it.
    pub source: &'a crate::fetch::debian_archive::Fetched,
    /// The SoC's bl31.elf, for boards whose U-Boot embeds ARM Trusted Firmware.
    pub bl31: Option<&'a Path>,
    pub defconfig: &'a str,
    /// `SOURCE_DATE_EPOCH`; `None`: the date of the source's newest changelog entry.
    pub epoch: Option<i64>,
    /// Scratch space for the unpacked tree.
    pub work: &'a Path,
    /// Where the build's output goes, kept like a step's log.
    pub log: &'a Path,
    /// Parallel jobs.
    pub jobs: usize,
}

/// What the build made, in `out`: the files of [`UBOOT_OUTPUTS`] it made and `.config`
/// (as `u-boot.config`).
#[derive(Debug, Clone)]
pub struct Built {
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
    pub config: PathBuf,
}

impl Built {
    /// The made file called `name`.
    pub fn file(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == name))
            .map(PathBuf::as_path)
    }
}

/// The source has no such board configuration; `close` are the nearest it has.
#[derive(Debug, thiserror::Error)]
#[error("the u-boot source has no configs/{defconfig}; close ones: {}", .close.join(", "))]
pub struct NoDefconfig {
    pub defconfig: String,
    pub close: Vec<String>,
}

/// Builds U-Boot; the outputs go into `out`.
pub fn build(b: &Build, out: &Path) -> Result<Built> {
    // Before 30 s of unpacking: make's own word for a missing compiler comes last.
    let gcc = format!("{CROSS_COMPILE}gcc");
    if crate::process::programs::locate(&gcc).is_none() {
        bail!(crate::process::ProcessError::NotFound { program: gcc });
    }
    let tree = b.work.join("u-boot");
    if tree.exists() {
        fs_err::remove_dir_all(&tree)?;
    }
    super::sources::unpack_quilt(b.source, &tree)?;
    let configs = tree.join("configs");
    if !configs.join(b.defconfig).is_file() {
        bail!(NoDefconfig {
            defconfig: b.defconfig.into(),
            close: close_defconfigs(&configs, b.defconfig),
        });
    }
    let epoch = match b.epoch {
        Some(e) => e,
        None => super::changelog::epoch(&fs_err::read_to_string(tree.join("debian/changelog"))?)
            .with_context(|| format!("{} {}", b.source.package, b.source.version))?,
    };
    let make = |args: &[String]| -> Result<()> {
        Cmd::new("make")
            .arg("-C")
            .arg(&tree)
            .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"))
            .args(args)
            // binman needs a python3 with pyelftools: Debian's, not one earlier on PATH.
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("KBUILD_BUILD_TIMESTAMP", format!("@{epoch}"))
            .env("KBUILD_BUILD_USER", "imgbuild")
            .env("KBUILD_BUILD_HOST", "imgbuild")
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .run_logged(b.log)
            .with_context(|| {
                format!(
                    "building u-boot (make {}); the log is {}",
                    args.join(" "),
                    b.log.display()
                )
            })?;
        Ok(())
    };
    make(&[b.defconfig.to_string()])?;
    let mut args = vec![format!("-j{}", b.jobs.max(1))];
    if let Some(bl31) = b.bl31 {
        args.push(format!("BL31={}", bl31.display()));
    }
    make(&args)?;
    fs_err::create_dir_all(out)?;
    let mut files = Vec::new();
    for name in UBOOT_OUTPUTS {
        let from = tree.join(name);
        if from.is_file() {
            let to = out.join(name);
            fs_err::copy(&from, &to)?;
            files.push(to);
        }
    }
    let config = out.join("u-boot.config");
    fs_err::copy(tree.join(".config"), &config)?;
    let built = Built {
        out: out.to_path_buf(),
        files,
        config,
    };
    if b.bl31.is_some() {
        // A Rockchip board: the boot ROM starts idbloader.img, whose SPL loads u-boot.itb.
        let (Some(idb), Some(itb)) = (built.file("idbloader.img"), built.file("u-boot.itb")) else {
            bail!(
                "the u-boot build made no idbloader.img and u-boot.itb (is {} a Rockchip board's defconfig?)",
                b.defconfig
            );
        };
        check_outputs(&fs_err::read(idb)?, &fs_err::read(itb)?)
            .with_context(|| format!("the u-boot build for {}", b.defconfig))?;
    } else if built.file("u-boot.bin").is_none() {
        bail!("the u-boot build for {} made no u-boot.bin", b.defconfig);
    }
    Ok(built)
}

/// The `.config` values `want` (`CONFIG_X` → `y`) that the built `config` does not have:
/// (name, wanted, found).
pub fn config_mismatches(config: &str, want: &[(String, String)]) -> Vec<(String, String, Option<String>)> {
    want.iter()
        .filter_map(|(name, value)| {
            let got = config_value(config, name);
            (got != Some(value.as_str())).then(|| (name.clone(), value.clone(), got.map(str::to_string)))
        })
        .collect()
}

/// Defconfigs whose name shares the board's first word (`rock-4c-plus` → `rock-*`), the
/// closest first.
fn close_defconfigs(configs: &Path, want: &str) -> Vec<String> {
    let stem = want.split(['-', '_']).next().unwrap_or(want);
    let mut found: Vec<String> = fs_err::read_dir(configs)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(stem))
                .collect()
        })
        .unwrap_or_default();
    // The longest shared start first: `rock-4c-rk3399` → `rock-4c-plus-…` before `rock-pi-4…`.
    let shared = |n: &str| n.bytes().zip(want.bytes()).take_while(|(a, b)| a == b).count();
    found.sort_by(|a, b| shared(b).cmp(&shared(a)).then(a.cmp(b)));
    found.truncate(8);
    if found.is_empty() {
        found.push("none".into());
    }
    found
}

/// The value of `CONFIG_NAME` in a `.config` (`y`, a number, a quoted string), `None`
/// when it is unset.
pub fn config_value<'a>(config: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    config.lines().find_map(|l| l.strip_prefix(&key))
}

/// Rockchip's boot ROM finds, on an RK3399, an RC4-scrambled header block at the start of
/// idbloader.img and the SPL at this offset, starting with [`RK3399_MAGIC`]
/// (`mkimage -T rksd`, tools/rkcommon.c).
pub const RK_SPL_START: usize = 0x800;
pub const RK3399_MAGIC: &[u8; 4] = b"RK33";
/// A FIT image (u-boot.itb) is a flattened device tree.
pub const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// What a Rockchip board's boot ROM and SPL need of the two loader files: the RK3399 SPL
/// header in idbloader.img, a FIT in u-boot.itb.
pub fn check_outputs(idbloader: &[u8], itb: &[u8]) -> Result<()> {
    if idbloader.get(RK_SPL_START..RK_SPL_START + 4) != Some(RK3399_MAGIC) {
        bail!("idbloader.img has no RK3399 SPL header at {RK_SPL_START:#x}: the board's boot ROM would not start it");
    }
    if itb.get(..4) != Some(&FDT_MAGIC) {
        bail!("u-boot.itb is not a FIT image (no device-tree magic): the SPL would not load it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_files_are_checked_for_what_the_board_reads() {
        let mut idb = vec![0u8; 0x1000];
        idb[RK_SPL_START..RK_SPL_START + 4].copy_from_slice(RK3399_MAGIC);
        let itb = [0xd0, 0x0d, 0xfe, 0xed, 0, 0];
        assert!(check_outputs(&idb, &itb).is_ok());
        assert!(check_outputs(&idb[..0x802], &itb).is_err(), "a short idbloader");
        assert!(check_outputs(&idb, &[0u8; 8]).is_err(), "not a FIT");
        idb[RK_SPL_START] = b'X';
        assert!(
            check_outputs(&idb, &itb)
                .unwrap_err()
                .to_string()
                .contains("RK3399 SPL header")
        );
    }

    #[test]
    fn config_values_are_read_as_kconfig_writes_them() {
        let c = "CONFIG_PMIC_RK8XX=y\n# CONFIG_SPL_FIT_SIGNATURE is not set\nCONFIG_DEFAULT_DEVICE_TREE=\"rockchip/rk3399-rock-4c-plus\"\n";
        assert_eq!(config_value(c, "CONFIG_PMIC_RK8XX"), Some("y"));
        assert_eq!(config_value(c, "CONFIG_SPL_FIT_SIGNATURE"), None);
        assert_eq!(
            config_value(c, "CONFIG_DEFAULT_DEVICE_TREE"),
            Some("\"rockchip/rk3399-rock-4c-plus\"")
        );
    }
}
