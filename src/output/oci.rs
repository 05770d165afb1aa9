//! The `oci` output: the root file system as one container image archive that
//! `podman load` and `docker load` both accept. It is an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) with a docker-archive `manifest.json` beside it
//! naming the same blobs: podman reads the layout, docker before 25 only the
//! `manifest.json`.
//!
//! The single layer is the whole root file system, written as a tar straight from the
//! [`RootTree`] through gzip into the archive, hashed on both sides as it passes (the
//! blob digest and the `diff_id`). Its tar header is written last, over a reserved
//! block, once its name (the digest) and size are known, so the layer is never copied
//! or read back.

use super::oci_tar::Archive;
use crate::digest::{HashingWriter, sha256_hex};
use crate::recipe::plan_oci::OciPlan;
use crate::report::Task;
use crate::rootfs::RootTree;
use crate::rootfs::entry::EntryKind;
use crate::rootfs::tar_write::{SourceFiles, TarWriter};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::io::{self, Write};
use std::path::Path;

const BLOCK: u64 = 512;
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The index annotation that names the image (`podman load` tags it from this).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Programs that are systemd when they are PID 1; systemd shuts down cleanly on
/// SIGRTMIN+3, not on the SIGTERM runtimes send by default.
const SYSTEMD_INITS: &[&str] = &[
    "/sbin/init",
    "/usr/sbin/init",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
];

/// One blob of the archive.
#[derive(Debug, Clone, Serialize)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

/// What went into the archive, for `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub tag: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub manifest: Blob,
    /// Its digest is the image ID docker and podman show.
    pub config: Blob,
    pub layer: Blob,
    /// sha256 of the uncompressed layer.
    pub diff_id: String,
    pub layer_uncompressed_size: u64,
}

/// Roughly the uncompressed layer's size (headers, padded data, the end marker; not
/// the pax records), for progress.
pub fn layer_size_estimate(tree: &RootTree) -> u64 {
    2 * BLOCK
        + tree
            .entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => BLOCK + size.div_ceil(BLOCK) * BLOCK,
                _ => BLOCK,
            })
            .sum::<u64>()
}

/// Writes the archive to `dest`; `name` is the recipe's, `epoch` the build's time.
pub fn write(
    name: &str,
    oci: &OciPlan,
    tree: &RootTree,
    epoch: i64,
    dest: &Path,
    task: &mut dyn Task,
) -> Result<ContainerReport> {
    let ctx = || format!("writing {}", dest.display());
    let mut archive = Archive::create(dest, epoch)?;
    archive
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .with_context(ctx)?;
    archive.dir("blobs/").with_context(ctx)?;
    archive.dir("blobs/sha256/").with_context(ctx)?;
    let layer = write_layer(&mut archive, tree, oci.level, task).with_context(ctx)?;

    let config = serde_json::to_vec(&config(name, oci, epoch, &layer.diff_id))?;
    let config_blob = add_blob(&mut archive, &config).with_context(ctx)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_blob.digest, "size": config_blob.size},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer.blob.digest, "size": layer.blob.size}],
    }))?;
    let manifest_blob = add_blob(&mut archive, &manifest).with_context(ctx)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": manifest_blob.digest,
            "size": manifest_blob.size,
            "platform": platform(oci),
            "annotations": {REF_NAME: oci.tag},
        }],
    });
    archive
        .file("index.json", &serde_json::to_vec(&index)?)
        .with_context(ctx)?;
    let docker = json!([{
        "Config": blob_path(&config_blob.digest),
        "RepoTags": [oci.tag],
        "Layers": [blob_path(&layer.blob.digest)],
    }]);
    archive
        .file("manifest.json", &serde_json::to_vec(&docker)?)
        .with_context(ctx)?;
    archive.finish().with_context(ctx)?;
    Ok(ContainerReport {
        tag: oci.tag.clone(),
        architecture: oci.platform.architecture.to_string(),
        variant: oci.platform.variant.map(str::to_string),
        manifest: manifest_blob,
        config: config_blob,
        layer: layer.blob,
        diff_id: layer.diff_id,
        layer_uncompressed_size: layer.uncompressed_size,
    })
}

/// The image config: platform, run-time defaults and the layer's diff_id.
fn config(name: &str, oci: &OciPlan, epoch: i64, diff_id: &str) -> Value {
    let created = crate::build_info::rfc3339(epoch);
    let mut run = Map::new();
    run.insert("Env".into(), json!(oci.env));
    run.insert("Cmd".into(), json!(oci.cmd));
    if !oci.ports.is_empty() {
        let ports: Map<String, Value> = oci.ports.iter().map(|p| (p.clone(), json!({}))).collect();
        run.insert("ExposedPorts".into(), Value::Object(ports));
    }
    if !oci.labels.is_empty() {
        let labels: Map<String, Value> = oci.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        run.insert("Labels".into(), Value::Object(labels));
    }
    if oci.cmd.first().is_some_and(|c| SYSTEMD_INITS.contains(&c.as_str())) {
        run.insert("StopSignal".into(), json!("SIGRTMIN+3"));
    }
    let mut cfg = Map::new();
    cfg.insert("created".into(), json!(created));
    if let Value::Object(p) = platform(oci) {
        cfg.extend(p);
    }
    cfg.insert("config".into(), Value::Object(run));
    cfg.insert("rootfs".into(), json!({"type": "layers", "diff_ids": [diff_id]}));
    cfg.insert(
        "history".into(),
        json!([{"created": created, "created_by": format!("imgbuild {} (recipe {name})", env!("CARGO_PKG_VERSION"))}]),
    );
    Value::Object(cfg)
}

/// `{architecture, [variant], os}` as configs and index entries spell it.
fn platform(oci: &OciPlan) -> Value {
    let mut p = Map::new();
    p.insert("architecture".into(), json!(oci.platform.architecture));
    if let Some(v) = oci.platform.variant {
        p.insert("variant".into(), json!(v));
    }
    p.insert("os".into(), json!("linux"));
    Value::Object(p)
}

/// `sha256:<hex>` → `blobs/sha256/<hex>`.
fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

struct Layer {
    blob: Blob,
    diff_id: String,
    uncompressed_size: u64,
}

/// Streams the tree as a tar through gzip into the archive, hashing both sides.
fn write_layer(archive: &mut Archive, tree: &RootTree, level: u32, task: &mut dyn Task) -> Result<Layer> {
    let header_at = archive.reserve_header()?;
    let (diff_hex, uncompressed_size, digest_hex, size) = {
        let compressed = HashingWriter::new(&mut *archive);
        // A fixed header time and OS byte: the same tree gives the same bytes on any host.
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(compressed, flate2::Compression::new(level));
        let plain = HashingWriter::new(Progress { inner: gz, task });
        let mut tar = TarWriter::new(plain);
        let mut data = SourceFiles::new(&tree.sources);
        for e in &tree.entries {
            tar.append(e, &mut data)
                .with_context(|| format!("adding /{} to the container layer", e.path))?;
        }
        let (progress, diff_hex, uncompressed_size) = tar.finish()?.finish();
        let (_, digest_hex, size) = progress.inner.finish()?.finish();
        (diff_hex, uncompressed_size, digest_hex, size)
    };
    let digest = format!("sha256:{digest_hex}");
    archive.complete_header(header_at, &blob_path(&digest))?;
    Ok(Layer {
        blob: Blob { digest, size },
        diff_id: format!("sha256:{diff_hex}"),
        uncompressed_size,
    })
}

/// Adds a blob to the archive under its digest.
fn add_blob(archive: &mut Archive, data: &[u8]) -> io::Result<Blob> {
    let digest = format!("sha256:{}", sha256_hex(data));
    archive.file(&blob_path(&digest), data)?;
    Ok(Blob {
        digest,
        size: data.len() as u64,
    })
}

/// Reports uncompressed bytes as they pass.
struct Progress<'a, W: Write> {
    inner: W,
    task: &'a mut dyn Task,
}

impl<W: Write> Write for Progress<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::plan_oci::{Platform, platform_of};

    fn plan(cmd: &str) -> OciPlan {
        OciPlan {
            tag: "srv:latest".into(),
            platform: platform_of("armhf").unwrap_or(Platform {
                architecture: "arm",
                variant: None,
            }),
            cmd: vec![cmd.into()],
            ports: vec!["80/tcp".into(), "53/udp".into()],
            env: vec!["PATH=/bin".into()],
            labels: vec![("a".into(), "b".into())],
            level: 6,
        }
    }

    #[test]
    fn config_names_platform_ports_and_systemds_stop_signal() {
        let c = config("srv", &plan("/sbin/init"), 1_700_000_000, "sha256:ab");
        assert_eq!(c["created"], "2023-11-14T22:13:20Z");
        assert_eq!(c["architecture"], "arm");
        assert_eq!(c["variant"], "v7");
        assert_eq!(c["os"], "linux");
        assert_eq!(c["config"]["Cmd"], json!(["/sbin/init"]));
        assert_eq!(c["config"]["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["config"]["Labels"], json!({"a": "b"}));
        assert_eq!(c["config"]["StopSignal"], "SIGRTMIN+3");
        assert_eq!(c["rootfs"], json!({"type": "layers", "diff_ids": ["sha256:ab"]}));
        let other = config("srv", &plan("/usr/sbin/nginx"), 0, "sha256:ab");
        assert!(other["config"].get("StopSignal").is_none());
        assert_eq!(other["created"], "1970-01-01T00:00:00Z");
    }
}
