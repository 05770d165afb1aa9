//! A built output as the release reads it: its `manifest.json` (the resolved recipe, the
//! layout's mapped ranges, the root's packages, the mirrors) and the file to publish.

use crate::recipe::model::ReleaseSpec;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What is published for a built output.
#[derive(Debug)]
pub enum Payload {
    /// A disk image: compressed for download, with its bmap.
    Disk {
        /// The raw image; it may be gone when the build's `.img.xz` is here (a CI job
        /// hands the compressed image on), and is then unpacked from that.
        raw: PathBuf,
        /// The raw image's sha256 and size, as the build recorded them.
        raw_digest: Option<(String, u64)>,
        /// The build's own multi-block `.img.xz`, its sha256 and size: the release
        /// takes it as it is rather than compressing the image again.
        xz: Option<(PathBuf, String, u64)>,
        mapped: Vec<(u64, u64)>,
    },
    /// A container image archive (its layer is compressed already): published as it is.
    Container { archive: PathBuf, tag: String },
}

/// One built output.
#[derive(Debug)]
pub struct Built {
    pub name: String,
    pub payload: Payload,
    pub epoch: i64,
    pub description: String,
    pub release: ReleaseSpec,
    pub suite: Option<String>,
    pub architecture: Option<String>,
    pub packages: BTreeMap<String, String>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// What the mirrors hold (see [`crate::fetch::summary`]); `null` without content.
    pub content: serde_json::Value,
}

/// The parts of a manifest the release reads.
#[derive(Deserialize)]
struct Manifest {
    name: String,
    #[serde(default)]
    source_date_epoch: i64,
    #[serde(default)]
    recipe: serde_json::Value,
    table: Option<String>,
    mapped: Option<Vec<(u64, u64)>>,
    container: Option<serde_json::Value>,
    #[serde(default)]
    packages: BTreeMap<String, String>,
    #[serde(default)]
    content: serde_json::Value,
    #[serde(default)]
    outputs: Vec<OutputFile>,
}

#[derive(Deserialize)]
struct OutputFile {
    name: String,
    sha256: String,
    size: u64,
}

/// Reads the output directory `dir` of one build.
pub fn read(dir: &Path) -> Result<Built> {
    let path = dir.join("manifest.json");
    let text = fs_err::read(&path)
        .with_context(|| format!("{} holds no built image; build its recipe first", dir.display()))?;
    let m: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("{}: not an imgbuild manifest", path.display()))?;
    let name = m.name;
    let payload = match (&m.table, &m.container) {
        (Some(_), _) => {
            let mapped = m.mapped.with_context(|| {
                format!(
                    "{}: no `mapped` ranges (built by an older imgbuild); build `{name}` again",
                    path.display()
                )
            })?;
            let raw_name = format!("{name}.img");
            let xz_name = format!("{raw_name}.xz");
            let output = |n: &str| m.outputs.iter().find(|o| o.name == n);
            let raw = dir.join(&raw_name);
            let xz = output(&xz_name)
                .map(|o| (dir.join(&xz_name), o.sha256.clone(), o.size))
                .filter(|(p, _, _)| p.is_file());
            if !raw.is_file() && xz.is_none() {
                bail!(
                    "{}: the raw image is missing; build `{name}` with `output.keep_raw: true` (the default)",
                    raw.display()
                );
            }
            Payload::Disk {
                raw_digest: output(&raw_name).map(|o| (o.sha256.clone(), o.size)),
                raw,
                xz,
                mapped,
            }
        }
        (None, Some(c)) => {
            let archive = dir.join(format!("{name}.oci.tar"));
            if !archive.is_file() {
                bail!(
                    "{}: the container archive is missing; build `{name}` again",
                    archive.display()
                );
            }
            let tag = c["tag"].as_str().unwrap_or(&name).to_string();
            Payload::Container { archive, tag }
        }
        (None, None) => bail!("{}: `{name}` made no image to release", path.display()),
    };
    let recipe = &m.recipe;
    let release: ReleaseSpec = match recipe.get("release") {
        Some(v) => serde_json::from_value(v.clone()).with_context(|| format!("{}: recipe.release", path.display()))?,
        None => ReleaseSpec::default(),
    };
    let text_of = |v: &serde_json::Value| v.as_str().map(str::to_string);
    Ok(Built {
        name,
        payload,
        epoch: m.source_date_epoch,
        description: text_of(&recipe["description"]).unwrap_or_default(),
        release,
        suite: text_of(&recipe["rootfs"]["suite"]),
        architecture: text_of(&recipe["rootfs"]["architecture"]),
        packages: m.packages,
        vars: recipe["vars"].as_object().cloned().unwrap_or_default(),
        content: m.content,
    })
}
