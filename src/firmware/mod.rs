//! The firmware stage: boot loaders made on the build host for boards no Debian binary
//! package serves — the Radxa Rock 4C+ and 4SE's U-Boot — before the image stage places
//! them as blobs. Either built from a Debian source package (never under emulation),
//! with the sources trusted only through the archive's signature (`fetch::debian_archive`),
//! or downloaded as published files checked against their SHA-256.
//!
//! - `uboot`: unpack, configure the board's defconfig, cross-compile with Debian's
//!   gcc-aarch64-linux-gnu and the SoC's bl31 from arm-trusted-firmware;
//! - `sources`: a source package unpacked as dpkg-source would, one file of a .deb;
//! - `changelog`: the source's own date, the build's `SOURCE_DATE_EPOCH`.
//!
//! A build from source is cached by exactly what the recipe declares (package, version,
//! suite, archive, defconfig, bl31, the `.config` checks) and the cross toolchain's
//! versions: a Debian version names one set of bytes for good, so a cached build needs no
//! network.

pub mod changelog;
pub mod sources;
pub mod uboot;

use crate::cache::{Cache, Key};
use crate::fetch::debian_archive::{Archive, NotListed};
use crate::fetch::http::{Client, Expect};
use crate::fetch::store::Store;
use crate::process::Cmd;
use crate::recipe::RecipeError;
use crate::recipe::plan_firmware::{FirmwarePlan, FirmwareSource, PublishedFile, UbootFromDebian};
use crate::report::{Reporter, step};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The stage cache's bucket for U-Boot builds (bump when the build changes).
const BUCKET: &str = "firmware-u-boot-v2";
/// What a cache entry records of the inputs it was built from.
const PROVENANCE: &str = "provenance.json";
/// The build's log, kept in the cache entry so every build that uses it can show it.
const BUILD_LOG: &str = "build.log";

/// What the stage needs besides the plans.
pub struct Ctx<'a> {
    pub cache: &'a Cache,
    pub store: &'a Store,
    pub client: &'a Client,
    /// Scratch space (the unpacked trees).
    pub work: PathBuf,
    /// Where each build's log goes (`firmware-NAME.log`).
    pub log_dir: PathBuf,
    pub reporter: &'a dyn Reporter,
    pub jobs: usize,
    /// `--offline`: only the stage cache and the store may serve.
    pub offline: bool,
}

/// Every firmware the stage made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub made: Vec<Made>,
}

/// One firmware's files and where they came from (the manifest records it).
#[derive(Debug, Clone, Serialize)]
pub struct Made {
    pub name: String,
    /// For people: `u-boot 2025.01-3+deb13u1 (trixie), rock-4c-plus-rk3399_defconfig`.
    pub source: String,
    pub files: Vec<MadeFile>,
    /// The verified inputs (source tarballs, the .deb bl31 came from), by name.
    pub inputs: Vec<Verified>,
    /// The built `.config`, for a build from source.
    pub config: Option<PathBuf>,
    /// True when it came from the stage cache.
    pub cached: bool,
    /// What it was built from, for a build from a Debian source package (a boot test
    /// builds the same source for QEMU from it).
    pub debian: Option<UbootFromDebian>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MadeFile {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// A file checked against the index (or recipe) that named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

impl Outputs {
    /// The file `file` of firmware `name`.
    pub fn file(&self, name: &str, file: &str) -> Option<&Path> {
        self.made
            .iter()
            .find(|m| m.name == name)?
            .files
            .iter()
            .find(|f| f.name == file)
            .map(|f| f.path.as_path())
    }
}

/// Makes every firmware of the plan.
pub fn build(plans: &[FirmwarePlan], ctx: &Ctx) -> Result<Outputs> {
    let mut made = Vec::new();
    for plan in plans {
        let m = match &plan.source {
            FirmwareSource::Debian(u) => step(
                ctx.reporter,
                &format!("firmware {}: u-boot {} {}", plan.name, u.version, u.defconfig),
                || from_debian(plan, u, ctx),
            )?,
            FirmwareSource::Url(files) => step(ctx.reporter, &format!("firmware {}: download", plan.name), || {
                published(plan, files, ctx)
            })?,
        };
        if m.cached {
            ctx.reporter
                .detail(&format!("firmware {}: from the stage cache", plan.name));
        }
        made.push(m);
    }
    Ok(Outputs { made })
}

/// What a cached U-Boot build is keyed by: everything the recipe says of what it builds
/// (not `check_config`, which is checked on every use), and the toolchain that compiles it.
pub fn uboot_key(u: &UbootFromDebian) -> Result<Key> {
    let version = |program: &str| -> Result<String> {
        let out = Cmd::new(program).arg("--version").run_stdout()?;
        Ok(out.lines().next().unwrap_or_default().to_string())
    };
    let inputs = serde_json::json!({
        "archive": u.mirror.trim_end_matches('/'),
        "suite": u.suite,
        "package": u.package,
        "version": u.version,
        "defconfig": u.defconfig,
        "bl31": u.bl31,
        "gcc": version(&format!("{}gcc", uboot::CROSS_COMPILE))?,
        "make": version("make")?,
    });
    Ok(Key::new(BUCKET, &inputs))
}

fn from_debian(plan: &FirmwarePlan, u: &UbootFromDebian, ctx: &Ctx) -> Result<Made> {
    let gcc = format!("{}gcc", uboot::CROSS_COMPILE);
    if crate::process::programs::locate(&gcc).is_none() {
        anyhow::bail!(crate::process::ProcessError::NotFound { program: gcc });
    }
    let key = uboot_key(u)?;
    let describe = format!("{} {} ({}), {}", u.package, u.version, u.suite, u.defconfig);
    if ctx.offline && ctx.cache.lookup(BUCKET, &key).is_none() {
        anyhow::bail!(crate::fetch::refused::Refused::new(
            format!(
                "firmware.{}: {describe} is not in the stage cache, and --offline forbids fetching its sources",
                plan.name
            ),
            "build once without --offline to fetch and build it",
        ));
    }
    let (dir, hit) = ctx
        .cache
        .get_or_build(BUCKET, &key, &describe, |tmp| build_from_debian(plan, u, ctx, tmp))?;
    check_config(plan, u, &dir.join("u-boot.config"))?;
    // The build's log and .config beside the image's other logs, built now or not.
    fs_err::create_dir_all(&ctx.log_dir)?;
    if hit {
        fs_err::copy(
            dir.join(BUILD_LOG),
            ctx.log_dir.join(format!("firmware-{}.log", plan.name)),
        )?;
    }
    fs_err::copy(
        dir.join("u-boot.config"),
        ctx.log_dir.join(format!("firmware-{}.config", plan.name)),
    )?;
    let inputs: Vec<Verified> = serde_json::from_slice(&fs_err::read(dir.join(PROVENANCE))?)
        .with_context(|| format!("reading {}", dir.join(PROVENANCE).display()))?;
    let mut files = Vec::new();
    for name in crate::recipe::plan_firmware::UBOOT_OUTPUTS {
        let path = dir.join(name);
        if path.is_file() {
            let (sha256, size) = crate::digest::sha256_file(&path)?;
            files.push(MadeFile {
                name: name.to_string(),
                path,
                sha256,
                size,
            });
        }
    }
    Ok(Made {
        name: plan.name.clone(),
        source: describe,
        files,
        inputs,
        config: Some(dir.join("u-boot.config")),
        cached: hit,
        debian: Some(u.clone()),
    })
}

/// A recipe error on `firmware.NAME.FIELD`.
fn field_error(plan: &FirmwarePlan, field: &str, message: String) -> anyhow::Error {
    RecipeError::Field {
        file: plan.defined_in.clone(),
        field: format!("firmware.{}.{field}", plan.name),
        message,
    }
    .into()
}

/// A package or version the archive lacks is the recipe's error, on `field`.
fn not_listed(plan: &FirmwarePlan, field: &str, e: anyhow::Error) -> anyhow::Error {
    match e.chain().find_map(|c| c.downcast_ref::<NotListed>()) {
        Some(n) => field_error(plan, field, n.to_string()),
        None => e,
    }
}

fn build_from_debian(plan: &FirmwarePlan, u: &UbootFromDebian, ctx: &Ctx, out: &Path) -> Result<()> {
    let work = ctx.work.join(&plan.name);
    fs_err::create_dir_all(&work)?;
    let archive = Archive {
        base: u.mirror.clone(),
        suite: u.suite.clone(),
        component: "main".into(),
        keyring: crate::fetch::debian_archive::DEBIAN_KEYRING.into(),
    };
    let src = archive
        .source(ctx.client, ctx.store, &work, (&u.package, &u.version), &sources::wanted)
        .map_err(|e| not_listed(plan, "version", e))?;
    let mut inputs: Vec<Verified> = src
        .files
        .iter()
        .map(|f| Verified {
            name: f.name.clone(),
            sha256: f.sha256.clone(),
            size: f.size,
        })
        .collect();
    let bl31 = match &u.bl31 {
        None => None,
        Some(b) => {
            let deb = archive
                .binary(ctx.client, ctx.store, &work, &b.package, &b.version, "arm64")
                .map_err(|e| not_listed(plan, "bl31.version", e))?;
            inputs.extend(deb.files.iter().map(|f| Verified {
                name: f.name.clone(),
                sha256: f.sha256.clone(),
                size: f.size,
            }));
            let unpacked = work.join("bl31-package");
            match sources::deb_file(&deb, &b.path(), &unpacked) {
                Ok(p) => Some(p),
                Err(e) if e.downcast_ref::<sources::NotInPackage>().is_some() => {
                    let platforms = sources::subdirs(&unpacked.join("usr/lib/arm-trusted-firmware"));
                    return Err(field_error(
                        plan,
                        "bl31.platform",
                        format!(
                            "{} {} has no /{}; its platforms with a bl31: {}",
                            b.package,
                            b.version,
                            b.path(),
                            if platforms.is_empty() {
                                "none".into()
                            } else {
                                platforms.join(", ")
                            }
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    };
    let log = ctx.log_dir.join(format!("firmware-{}.log", plan.name));
    fs_err::create_dir_all(&ctx.log_dir)?;
    let job = uboot::Build {
        source: &src,
        bl31: bl31.as_deref(),
        defconfig: &u.defconfig,
        epoch: None,
        work: &work,
        log: &log,
        jobs: ctx.jobs,
    };
    // The .config is kept in the entry; the recipe's checks run on every use of it.
    uboot::build(&job, out).map_err(|e| match e.downcast_ref::<uboot::NoDefconfig>() {
        Some(n) => field_error(plan, "defconfig", format!("{n}")),
        None => e,
    })?;
    let _ = fs_err::remove_dir_all(&work);
    fs_err::copy(&log, out.join(BUILD_LOG))?;
    fs_err::write(out.join(PROVENANCE), serde_json::to_vec_pretty(&inputs)?)?;
    Ok(())
}

/// The recipe's `check_config` against the built `.config`: a miss is the recipe's error.
fn check_config(plan: &FirmwarePlan, u: &UbootFromDebian, config: &Path) -> Result<()> {
    let wrong = uboot::config_mismatches(&fs_err::read_to_string(config)?, &u.check_config);
    if wrong.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = wrong
        .iter()
        .map(|(n, want, got)| format!("{n}={want} (built: {})", got.as_deref().unwrap_or("not set")))
        .collect();
    Err(field_error(
        plan,
        "check_config",
        format!(
            "{} built from {} {} has {}; choose the board's own defconfig or a source version that has it",
            u.defconfig,
            u.package,
            u.version,
            list.join(", ")
        ),
    ))
}

fn published(plan: &FirmwarePlan, files: &[PublishedFile], ctx: &Ctx) -> Result<Made> {
    let mut made = Vec::new();
    let mut cached = true;
    for f in files {
        cached &= ctx.store.has(&f.sha256);
        if ctx.offline && !ctx.store.has(&f.sha256) {
            anyhow::bail!(crate::fetch::refused::Refused::new(
                format!(
                    "firmware.{}.files.{}: {} is not in the download store, and --offline forbids fetching it",
                    plan.name, f.name, f.url
                ),
                "build once without --offline to download it",
            ));
        }
        let expect = Expect {
            sha256: Some(f.sha256.clone()),
            ..Default::default()
        };
        let got = ctx
            .client
            .download(ctx.store, &f.url, &expect)
            .with_context(|| format!("firmware.{}.files.{}", plan.name, f.name))?;
        made.push(MadeFile {
            name: f.name.clone(),
            path: ctx.store.path(&got.sha256),
            sha256: got.sha256,
            size: got.size,
        });
    }
    Ok(Made {
        name: plan.name.clone(),
        source: format!("{} published file(s)", files.len()),
        inputs: made
            .iter()
            .map(|m| Verified {
                name: m.name.clone(),
                sha256: m.sha256.clone(),
                size: m.size,
            })
            .collect(),
        files: made,
        config: None,
        cached,
        debian: None,
    })
}
