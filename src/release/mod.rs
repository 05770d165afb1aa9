//! The release stage (issue 14, in progress): from built images, the directory a
//! maintainer uploads — each image compressed for download (xz in multiple blocks, its
//! own and the raw image's size and sha256, which Raspberry Pi Imager checks), its bmap,
//! parts under the hosting limit, `SHA256SUMS`, and `release.json` with those facts for
//! the Imager repository and the notes that follow.

pub mod bmap;
pub mod parts;

use crate::build_info::Host;
use crate::fsx::Staging;
use crate::recipe::model::Compression;
use crate::report::Reporter;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How a release is cut.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// Files larger than this are also published as parts (see [`parts`]).
    pub part_limit: u64,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        ReleaseOptions {
            part_limit: parts::DEFAULT_LIMIT,
        }
    }
}

/// One released image.
#[derive(Debug, Clone, Serialize)]
pub struct Released {
    pub name: String,
    /// The download: `NAME.img.xz`.
    pub file: String,
    pub download_size: u64,
    pub download_sha256: String,
    /// The image it decompresses to (Imager's `extract_size` / `extract_sha256`).
    pub extract_size: u64,
    pub extract_sha256: String,
    pub bmap: String,
    pub bmap_sha256: String,
    /// Empty when the download is under the limit.
    pub parts: Vec<parts::Part>,
    pub source_date_epoch: i64,
}

/// A built image: its output directory's manifest and raw image.
struct Built {
    name: String,
    raw: PathBuf,
    mapped: Vec<(u64, u64)>,
    epoch: i64,
}

fn read_built(dir: &Path) -> Result<Built> {
    let path = dir.join("manifest.json");
    let text = fs_err::read(&path)
        .with_context(|| format!("{} holds no built image; build its recipe first", dir.display()))?;
    let m: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: not a manifest", path.display()))?;
    let name = m["name"].as_str().context("manifest without `name`")?.to_string();
    if m["table"].is_null() {
        bail!(
            "{}: `{name}` is not a disk image (a container is released as its archive)",
            path.display()
        );
    }
    let mapped: Vec<(u64, u64)> = serde_json::from_value(m["mapped"].clone()).map_err(|_| {
        anyhow::anyhow!(
            "{}: no `mapped` ranges (built by an older imgbuild); build `{name}` again",
            path.display()
        )
    })?;
    let raw = dir.join(format!("{name}.img"));
    if !raw.is_file() {
        bail!(
            "{}: the raw image is missing; build `{name}` with `output.keep_raw: true` (the default)",
            raw.display()
        );
    }
    Ok(Built {
        name,
        raw,
        mapped,
        epoch: m["source_date_epoch"].as_i64().unwrap_or(0),
    })
}

/// Writes the release of the images built into `dirs` to `out`.
pub fn make(dirs: &[PathBuf], out: &Path, opts: &ReleaseOptions, reporter: &dyn Reporter) -> Result<Vec<Released>> {
    let built: Vec<Built> = dirs.iter().map(|d| read_built(d)).collect::<Result<_>>()?;
    let staging = Staging::create(out)?;
    crate::interrupt::remove_on_interrupt(staging.dir().to_path_buf());
    let threads = Host::detect().threads;
    let mut released = Vec::new();
    let mut names = Vec::new();
    for b in &built {
        let file = format!("{}.img.xz", b.name);
        let size = fs_err::metadata(&b.raw)?.len();
        let mut task = reporter.task(&format!("compress {file}"), size);
        let c = crate::output::compress::compress(
            &b.raw,
            &staging.path(&file),
            Compression::Xz,
            Some(6),
            threads,
            task.as_mut(),
        )?;
        task.finish();
        let bmap = format!("{}.bmap", b.name);
        let bmap_sha256 = crate::report::step(reporter, &format!("write {bmap}"), || {
            bmap::write(&b.raw, &b.mapped, &staging.path(&bmap))
        })?;
        let parts = parts::split(&staging.path(&file), &file, opts.part_limit, staging.dir())?;
        names.push(file.clone());
        names.push(bmap.clone());
        names.extend(parts.iter().map(|p| p.name.clone()));
        released.push(Released {
            name: b.name.clone(),
            file,
            download_size: c.size,
            download_sha256: c.sha256,
            extract_size: c.raw_size,
            extract_sha256: c.raw_sha256,
            bmap,
            bmap_sha256,
            parts,
            source_date_epoch: b.epoch,
        });
    }
    let mut sums = String::new();
    for r in &released {
        sums.push_str(&format!("{}  {}\n", r.download_sha256, r.file));
        sums.push_str(&format!("{}  {}\n", r.bmap_sha256, r.bmap));
        for p in &r.parts {
            sums.push_str(&format!("{}  {}\n", p.sha256, p.name));
        }
    }
    fs_err::write(staging.path("SHA256SUMS"), sums)?;
    fs_err::write(staging.path("release.json"), serde_json::to_vec_pretty(&released)?)?;
    names.push("SHA256SUMS".into());
    names.push("release.json".into());
    let dir = staging.dir().to_path_buf();
    staging.publish(&names)?;
    crate::interrupt::forget(&dir);
    // Parts an earlier release of a larger download left would not join to this one.
    for r in &released {
        for n in r.parts.len() + 1.. {
            let stale = out.join(format!("{}.{n:03}", r.file));
            if !stale.exists() {
                break;
            }
            fs_err::remove_file(&stale)?;
        }
    }
    Ok(released)
}
