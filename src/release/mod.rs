//! The release stage: from built outputs, the directory a maintainer uploads — each
//! image compressed for download (multi-block xz, or zstd) with its own and the raw
//! image's size and sha256 (which Raspberry Pi Imager checks), its bmap, parts under the
//! hosting limit, a container archive as it is, `SHA256SUMS`, `release.json`, the
//! Raspberry Pi Imager repository file ([`imager`]) and the release notes ([`notes`]).

pub mod bmap;
pub mod built;
pub mod imager;
pub mod notes;
pub mod parts;

use crate::build_info::Host;
use crate::fsx::Staging;
use crate::recipe::model::Compression;
use crate::report::Reporter;
use anyhow::Result;
use built::{Built, Payload};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How a release is cut.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// Files larger than this are also published as parts (see [`parts`]).
    pub part_limit: u64,
    /// `xz` (default) or `zstd`, for disk images.
    pub compression: Compression,
    /// The release assets' base URL (`--url`); default each recipe's `release.url`, else
    /// the release directory as a `file://` URL.
    pub url: Option<String>,
    /// A host without the asset limit holding the whole downloads (`--whole-url`).
    pub whole_url: Option<String>,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        ReleaseOptions {
            part_limit: parts::DEFAULT_LIMIT,
            compression: Compression::Xz,
            url: None,
            whole_url: None,
        }
    }
}

/// One released image or container archive.
#[derive(Debug, Clone, Serialize)]
pub struct Released {
    pub name: String,
    /// Its name for people (`release.title`, else the recipe's name).
    pub title: String,
    pub description: String,
    /// The download: `NAME.img.xz` (`.img.zst`), or a container's `NAME.oci.tar`.
    pub file: String,
    pub download_size: u64,
    pub download_sha256: String,
    /// The image it decompresses to (Imager's `extract_size` / `extract_sha256`); none
    /// for a container archive, which is used as it is.
    pub extract_size: Option<u64>,
    pub extract_sha256: Option<String>,
    /// The bmap of a disk image.
    pub bmap: Option<String>,
    pub bmap_sha256: Option<String>,
    /// Empty when the download is under the limit.
    pub parts: Vec<parts::Part>,
    pub source_date_epoch: i64,
    /// `YYYY-MM-DD` of the build's time (Imager's `release_date`).
    pub release_date: String,
    /// Raspberry Pi Imager device tags (an entry in its repository file when any).
    pub devices: Vec<String>,
    pub boards: Vec<String>,
    pub suite: Option<String>,
    pub architecture: Option<String>,
    pub website: Option<String>,
    /// A container archive's image name and tag.
    pub container_tag: Option<String>,
}

/// The UTC date of a Unix time, `YYYY-MM-DD`.
fn date_of(epoch: i64) -> String {
    crate::build_info::civil_date(epoch)
}

/// Copies `from` to `to`, hashing as it goes: (sha256, size).
fn copy_hashed(from: &Path, to: &Path) -> Result<(String, u64)> {
    copy_reader_hashed(fs_err::File::open(from)?, to)
}

/// Writes what `input` reads to `to`, hashing as it goes: (sha256, size).
fn copy_reader_hashed(mut input: impl std::io::Read, to: &Path) -> Result<(String, u64)> {
    use std::io::Write;
    let out = std::io::BufWriter::with_capacity(1 << 20, fs_err::File::create(to)?);
    let mut w = crate::digest::HashingWriter::new(out);
    std::io::copy(&mut input, &mut w)?;
    let (mut inner, sha256, size) = w.finish();
    inner.flush()?;
    Ok((sha256, size))
}

/// Writes the release of the outputs built into `dirs` to `out`.
pub fn make(dirs: &[PathBuf], out: &Path, opts: &ReleaseOptions, reporter: &dyn Reporter) -> Result<Vec<Released>> {
    let built: Vec<Built> = dirs.iter().map(|d| built::read(d)).collect::<Result<_>>()?;
    let staging = Staging::create(out)?;
    crate::interrupt::remove_on_interrupt(staging.dir().to_path_buf());
    let threads = Host::detect().threads;
    let mut released = Vec::new();
    let mut names = Vec::new();
    for b in &built {
        let r = release_one(b, opts, threads, &staging, reporter)?;
        names.push(r.file.clone());
        names.extend(r.bmap.iter().cloned());
        names.extend(r.parts.iter().map(|p| p.name.clone()));
        released.push(r);
    }
    let assets = match opts
        .url
        .clone()
        .or_else(|| built.iter().find_map(|b| b.release.url.clone()))
    {
        Some(u) => u,
        None => format!("file://{}", std::path::absolute(out)?.display()),
    };
    let whole = opts
        .whole_url
        .clone()
        .or_else(|| built.iter().find_map(|b| b.release.whole_url.clone()));
    let urls = imager::Urls {
        assets: &assets,
        whole: whole.as_deref(),
    };
    let repo = imager::repository(&released, &urls)?;
    fs_err::write(staging.path(imager::FILE), serde_json::to_vec_pretty(&repo)?)?;
    fs_err::write(staging.path(imager::ICON), imager::ICON_SVG)?;
    fs_err::write(staging.path(notes::FILE), notes::write(&released, &built, &urls))?;
    let mut sums = String::new();
    for r in &released {
        sums.push_str(&format!("{}  {}\n", r.download_sha256, r.file));
        if let (Some(b), Some(s)) = (&r.bmap, &r.bmap_sha256) {
            sums.push_str(&format!("{s}  {b}\n"));
        }
        for p in &r.parts {
            sums.push_str(&format!("{}  {}\n", p.sha256, p.name));
        }
    }
    fs_err::write(staging.path("SHA256SUMS"), sums)?;
    fs_err::write(staging.path("release.json"), serde_json::to_vec_pretty(&released)?)?;
    names.extend(["SHA256SUMS", "release.json", imager::FILE, imager::ICON, notes::FILE].map(String::from));
    // What an earlier release into `out` published and this one does not (a download
    // in other parts, or of another compression) goes: the directory is this release.
    let earlier = earlier_files(out);
    let dir = staging.dir().to_path_buf();
    staging.publish(&names)?;
    crate::interrupt::forget(&dir);
    for stale in earlier.iter().filter(|n| !names.contains(n)) {
        let path = out.join(stale);
        if path.is_file() {
            fs_err::remove_file(&path)?;
        }
    }
    Ok(released)
}

/// The files the release.json in `out` lists (none when there is none, or it is not ours).
fn earlier_files(out: &Path) -> Vec<String> {
    let Ok(data) = fs_err::read(out.join("release.json")) else {
        return Vec::new();
    };
    let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&data) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for r in &list {
        for key in ["file", "bmap"] {
            names.extend(r[key].as_str().map(String::from));
        }
        for p in r["parts"].as_array().into_iter().flatten() {
            names.extend(p["name"].as_str().map(String::from));
        }
    }
    // Only plain file names: a hand-edited list must not reach outside `out`.
    names.retain(|n| !n.is_empty() && !n.contains('/') && n != ".." && n != ".");
    names
}

/// The build's `.img.xz` taken as the download: copied (checked against the build's
/// sha256 as it goes), with the raw image's digest from the build, or from unpacking
/// it into `staging` when the raw image is not here. Returns the download's and the
/// raw image's (size, sha256) and the raw image to map.
type Digests = ((u64, String), (u64, String), PathBuf);
fn reuse_xz(
    b: &Built,
    (xz, sha256, size): &(PathBuf, String, u64),
    raw: &Path,
    raw_digest: Option<&(String, u64)>,
    file: &str,
    staging: &Staging,
    reporter: &dyn Reporter,
) -> Result<Digests> {
    let (got, got_size) = crate::report::step(reporter, &format!("copy {file} as built"), || {
        copy_hashed(xz, &staging.path(file))
    })?;
    if &got != sha256 || got_size != *size {
        anyhow::bail!(
            "{}: changed since `{}` was built (sha256 {got}, the manifest says {sha256}); build it again",
            xz.display(),
            b.name
        );
    }
    match raw_digest.filter(|_| raw.is_file()) {
        Some((raw_sha, raw_size)) => Ok(((got_size, got), (*raw_size, raw_sha.clone()), raw.to_path_buf())),
        None => {
            let unpacked = staging.path(&format!("{}.img", b.name));
            let (raw_sha, raw_size) = unpack_xz(xz, &unpacked, reporter)?;
            Ok(((got_size, got), (raw_size, raw_sha), unpacked))
        }
    }
}

/// Unpacks a built `.img.xz` to `to`: (sha256, size) of the raw image.
fn unpack_xz(xz: &Path, to: &Path, reporter: &dyn Reporter) -> Result<(String, u64)> {
    crate::report::step(reporter, &format!("unpack {}", xz.display()), || {
        let input = liblzma::read::XzDecoder::new_multi_decoder(std::io::BufReader::new(fs_err::File::open(xz)?));
        copy_reader_hashed(input, to)
    })
}

/// Compresses (or copies), maps, splits and hashes one built output into `staging`.
fn release_one(
    b: &Built,
    opts: &ReleaseOptions,
    threads: u32,
    staging: &Staging,
    reporter: &dyn Reporter,
) -> Result<Released> {
    let (file, download, extract, bmap) = match &b.payload {
        Payload::Disk {
            raw,
            raw_digest,
            xz,
            mapped,
        } => {
            let ext = crate::output::compress::extension(opts.compression).unwrap_or("xz");
            let file = format!("{}.img.{ext}", b.name);
            let (download, extract, raw) = match xz.as_ref().filter(|_| opts.compression == Compression::Xz) {
                Some(built_xz) => reuse_xz(b, built_xz, raw, raw_digest.as_ref(), &file, staging, reporter)?,
                None => {
                    let raw = match xz {
                        Some((xz, ..)) if !raw.is_file() => {
                            let unpacked = staging.path(&format!("{}.img", b.name));
                            unpack_xz(xz, &unpacked, reporter)?;
                            unpacked
                        }
                        _ => raw.clone(),
                    };
                    let size = fs_err::metadata(&raw)?.len();
                    let mut task = reporter.task(&format!("compress {file}"), size);
                    let c = crate::output::compress::compress(
                        &raw,
                        &staging.path(&file),
                        opts.compression,
                        None,
                        threads,
                        task.as_mut(),
                    )?;
                    task.finish();
                    ((c.size, c.sha256), (c.raw_size, c.raw_sha256), raw)
                }
            };
            let bmap = format!("{}.bmap", b.name);
            let bmap_sha256 = crate::report::step(reporter, &format!("write {bmap}"), || {
                bmap::write(&raw, mapped, &staging.path(&bmap))
            })?;
            if raw.starts_with(staging.dir()) {
                fs_err::remove_file(&raw)?;
            }
            (file, download, Some(extract), Some((bmap, bmap_sha256)))
        }
        Payload::Container { archive, .. } => {
            let file = format!("{}.oci.tar", b.name);
            let (sha256, size) = crate::report::step(reporter, &format!("copy {file}"), || {
                copy_hashed(archive, &staging.path(&file))
            })?;
            (file, (size, sha256), None, None)
        }
    };
    let parts = parts::split(&staging.path(&file), &file, opts.part_limit, staging.dir())?;
    let list = |l: &Option<crate::recipe::merge_list::MergeList<String>>| {
        l.as_ref().map(|l| l.items.clone()).unwrap_or_default()
    };
    Ok(Released {
        name: b.name.clone(),
        title: b.release.title.clone().unwrap_or_else(|| b.name.clone()),
        description: b.description.clone(),
        file,
        download_size: download.0,
        download_sha256: download.1,
        extract_size: extract.as_ref().map(|e| e.0),
        extract_sha256: extract.map(|e| e.1),
        bmap_sha256: bmap.as_ref().map(|b| b.1.clone()),
        bmap: bmap.map(|b| b.0),
        parts,
        source_date_epoch: b.epoch,
        release_date: date_of(b.epoch),
        devices: list(&b.release.imager_devices),
        boards: list(&b.release.boards),
        suite: b.suite.clone(),
        architecture: b.architecture.clone(),
        website: b.release.website.clone(),
        container_tag: match &b.payload {
            Payload::Container { tag, .. } => Some(tag.clone()),
            Payload::Disk { .. } => None,
        },
    })
}
