//! U-Boot for a Rockchip board from Debian's u-boot source package (upstream tarball,
//! Debian's patches applied), `make BOARD_defconfig`, `make` with `BL31=` and
//! `SOURCE_DATE_EPOCH`, cross-compiled natively. The outputs (idbloader.img, u-boot.itb,
//! u-boot-rockchip.bin) and the `.config` are copied out of the tree.

use crate::process::Cmd;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The cross compiler's prefix (Debian's gcc-aarch64-linux-gnu).
pub const CROSS_COMPILE: &str = "aarch64-linux-gnu-";
/// What a Rockchip build makes, in the order a recipe places them.
pub const OUTPUTS: &[&str] = &["idbloader.img", "u-boot.itb", "u-boot-rockchip.bin"];

/// One build.
pub struct Build<'a> {
    /// The u-boot source package, as the signed index named it.
    pub source: &'a crate::fetch::debian_archive::Fetched,
    /// rk3399's bl31.elf.
    pub bl31: &'a Path,
    pub defconfig: &'a str,
    pub epoch: i64,
    /// Scratch space for the unpacked tree.
    pub work: &'a Path,
    /// Where the build's output goes, kept like a step's log.
    pub log: &'a Path,
    /// Parallel jobs.
    pub jobs: usize,
}

/// What the build made: each of [`OUTPUTS`] and `.config`, in `out`.
#[derive(Debug, Clone)]
pub struct Built {
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
    pub config: PathBuf,
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
        bail!(
            "firmware: the u-boot source has no configs/{}; close ones: {}",
            b.defconfig,
            close_defconfigs(&configs, b.defconfig).join(", ")
        );
    }
    let make = |args: &[String]| -> Result<()> {
        Cmd::new("make")
            .arg("-C")
            .arg(&tree)
            .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"))
            .args(args)
            // binman needs a python3 with pyelftools: Debian's, not one earlier on PATH.
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("SOURCE_DATE_EPOCH", b.epoch.to_string())
            .env("KBUILD_BUILD_TIMESTAMP", format!("@{}", b.epoch))
            .env("KBUILD_BUILD_USER", "imgbuild")
            .env("KBUILD_BUILD_HOST", "imgbuild")
            .env("LC_ALL", "C")
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
    make(&[format!("-j{}", b.jobs.max(1)), format!("BL31={}", b.bl31.display())])?;
    fs_err::create_dir_all(out)?;
    let mut files = Vec::new();
    for name in OUTPUTS {
        let from = tree.join(name);
        if !from.is_file() {
            bail!(
                "the u-boot build made no {name} (is {} a Rockchip board's defconfig?)",
                b.defconfig
            );
        }
        let to = out.join(name);
        fs_err::copy(&from, &to)?;
        files.push(to);
    }
    check_outputs(&fs_err::read(&files[0])?, &fs_err::read(&files[1])?)
        .with_context(|| format!("the u-boot build for {}", b.defconfig))?;
    let config = out.join("u-boot.config");
    fs_err::copy(tree.join(".config"), &config)?;
    Ok(Built {
        out: out.to_path_buf(),
        files,
        config,
    })
}

/// The stage cache's bucket for U-Boot builds (bump the version when the build changes).
const BUCKET: &str = "firmware-u-boot-v1";

/// [`build`] through the stage cache, keyed by exactly its inputs: the source files' and
/// bl31's SHA-256, the defconfig, the build time and the cross compiler's and make's
/// versions. Returns the outputs and whether they came from the cache.
pub fn cached(cache: &crate::cache::Cache, b: &Build) -> Result<(Built, bool)> {
    let version = |program: &str| -> Result<String> {
        let out = Cmd::new(program).arg("--version").run_stdout()?;
        Ok(out.lines().next().unwrap_or_default().to_string())
    };
    let sources: Vec<(&str, &str)> = b
        .source
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.sha256.as_str()))
        .collect();
    let inputs = serde_json::json!({
        "package": b.source.package,
        "version": b.source.version,
        "sources": sources,
        "bl31": crate::digest::sha256_file(b.bl31)?.0,
        "defconfig": b.defconfig,
        "epoch": b.epoch,
        "gcc": version(&format!("{CROSS_COMPILE}gcc"))?,
        "make": version("make")?,
    });
    let key = crate::cache::Key::new(BUCKET, &inputs);
    let describe = format!("u-boot {} {}", b.source.version, b.defconfig);
    let (dir, hit) = cache.get_or_build(BUCKET, &key, &describe, |tmp| build(b, tmp).map(|_| ()))?;
    let files = OUTPUTS.iter().map(|n| dir.join(n)).collect();
    Ok((
        Built {
            out: dir.clone(),
            files,
            config: dir.join("u-boot.config"),
        },
        hit,
    ))
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
