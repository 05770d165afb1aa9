//! npm packages installed as applications (`files: {/opt/etherpad/src: {npm:
//! ep_etherpad-lite@1.8.14}}`): the package's own files at the target with its production
//! dependencies in `node_modules`, as its authors run it from a checkout.
//!
//! Resolving downloads the package (checked against the registry's integrity hash), asks
//! npm for a package-lock of its dependencies and keeps that in the recipe's lock. Every
//! build then installs exactly that lock with the host's npm, which checks each tarball's
//! integrity, caches them below imgbuild's cache, and never runs install scripts: the
//! scripts would run on the build host, and native add-ons built there would be for the
//! wrong machine. Optional dependencies are left out for the same reason (they are
//! almost always native add-ons with a pure-JS fallback).

use super::Cx;
use super::http::Expect;
use super::lock::{LockedFile, LockedSource};
use crate::process::Cmd;
use crate::recipe::plan_npm::NpmPlan;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use sha2::Digest;
use std::path::Path;

pub fn resolve(plan: &NpmPlan, cx: &Cx) -> Result<LockedSource> {
    let (tarball, integrity) = find_version(plan, cx)?;
    let got = cx.client.download(cx.store, &tarball, &Expect::default())?;
    check_integrity(&cx.store.path(&got.sha256), &integrity)
        .with_context(|| format!("{}@{} from {tarball}", plan.name, plan.version))?;
    let dir = tempfile::tempdir_in(cx.scratch)?;
    unpack(&cx.store.path(&got.sha256), dir.path())?;
    prepare_manifest(dir.path())?;
    npm(plan, cx, dir.path(), "resolving its dependencies")
        .arg("--package-lock-only")
        .run()
        .with_context(|| format!("resolving the dependencies of {}@{}", plan.name, plan.version))?;
    let text =
        fs_err::read_to_string(dir.path().join("package-lock.json")).context("npm wrote no package-lock.json")?;
    let mut package_lock: serde_json::Value = serde_json::from_str(&text).context("npm's package-lock.json")?;
    // npm names where it resolved each package from: with `content.fetch_from` that is
    // the stand-in (npm 9 writes it; npm 10 and later keep registry.npmjs.org). The lock
    // keeps upstream either way, so it is the same wherever it was made.
    map_resolved(&mut package_lock, |u| cx.client.upstream(u));
    Ok(LockedSource {
        inputs: String::new(),
        files: vec![LockedFile {
            url: cx.client.upstream(&tarball),
            size: got.size,
            sha256: got.sha256,
            ..Default::default()
        }],
        refs: Default::default(),
        package_lock: Some(package_lock),
    })
}

/// Unpacks the locked package at `out/target` and installs its locked dependencies.
pub fn materialize(plan: &NpmPlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    let (Some(file), Some(package_lock)) = (entry.files.first(), &entry.package_lock) else {
        bail!("its lock entry has no package or package-lock; run `imgbuild fetch --update`");
    };
    let dest = super::safe_join(out, &plan.target)?;
    fs_err::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    unpack(&cx.store.path(&file.sha256), &dest)?;
    prepare_manifest(&dest)?;
    // ... and npm installs from where this build downloads (`fetch_from`), whichever npm.
    let mut package_lock = package_lock.clone();
    map_resolved(&mut package_lock, |u| cx.client.via(u));
    fs_err::write(
        dest.join("package-lock.json"),
        serde_json::to_string_pretty(&package_lock)?,
    )?;
    let mut cmd = npm(plan, cx, &dest, "installing").args(["--no-save", "--omit=dev"]);
    cmd = cmd.arg(if cx.offline { "--offline" } else { "--prefer-offline" });
    cmd.run().map_err(|e| {
        let hint = if cx.offline {
            "\nhint: --offline needs every package in imgbuild's npm cache; run once without --offline"
        } else {
            ""
        };
        anyhow!("{e}{hint}")
    })?;
    Ok(())
}

/// Rewrites every package's `resolved` URL in a package-lock (lockfile v2/v3 `packages`
/// and v1 `dependencies`, nested).
fn map_resolved(lock: &mut serde_json::Value, f: impl Fn(&str) -> String + Copy) {
    match lock {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(s) if k == "resolved" => *s = f(s),
                    _ => map_resolved(v, f),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| map_resolved(v, f)),
        _ => {}
    }
}

/// `npm install` in `dir` with the flags every run shares.
fn npm(plan: &NpmPlan, cx: &Cx, dir: &Path, doing: &str) -> Cmd {
    cx.reporter
        .detail(&format!("npm: {doing} {}@{}", plan.name, plan.version));
    Cmd::new("npm")
        .cwd(dir)
        .args([
            "install",
            "--omit=optional",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
        ])
        .arg("--cache")
        .arg(cx.cache.root().join("npm"))
        .arg("--registry")
        .arg(cx.client.via(&plan.registry))
        .arg(format!("--fetch-timeout={}", cx.client.timeouts().stall.as_millis()))
        .arg("--fetch-retries=2")
}

/// The tarball URL and integrity of the version (or dist-tag) the plan names.
fn find_version(plan: &NpmPlan, cx: &Cx) -> Result<(String, String)> {
    let url = format!(
        "{}/{}",
        plan.registry.trim_end_matches('/'),
        plan.name.replace('/', "%2f")
    );
    let (body, _) = cx.client.get_accept(&url, Some("application/json"))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{url} is not npm package metadata"))?;
    let versions = doc["versions"]
        .as_object()
        .ok_or_else(|| anyhow!("{url} lists no versions"))?;
    let version = match doc["dist-tags"][&plan.version].as_str() {
        Some(v) => v.to_string(),
        None => plan.version.clone(),
    };
    let Some(meta) = versions.get(&version) else {
        let recent: Vec<&str> = versions.keys().rev().take(5).map(String::as_str).collect();
        bail!(
            "{} has no version or dist-tag `{}` (recent versions: {})",
            plan.name,
            plan.version,
            recent.join(", ")
        );
    };
    let dist = &meta["dist"];
    match (dist["tarball"].as_str(), dist["integrity"].as_str()) {
        (Some(t), Some(i)) => Ok((t.to_string(), i.to_string())),
        _ => bail!("{url}: version {version} has no tarball with an integrity hash"),
    }
}

/// Checks a file against an npm `sha512-BASE64` integrity string.
fn check_integrity(file: &Path, integrity: &str) -> Result<()> {
    let Some(want) = integrity.split_whitespace().find_map(|i| i.strip_prefix("sha512-")) else {
        bail!("the registry gives no sha512 integrity (`{integrity}`)");
    };
    let mut hasher = sha2::Sha512::new();
    std::io::copy(&mut fs_err::File::open(file)?, &mut hasher)?;
    let got = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
    if got != want {
        bail!("the package's sha512 is {got}, but the registry says {want}");
    }
    Ok(())
}

/// Unpacks an npm tarball (its files below `package/`) into `dest`: regular files and
/// directories only, each path checked to stay inside `dest`.
fn unpack(tgz: &Path, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let file = fs_err::File::open(tgz).with_context(|| format!("opening {}", tgz.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().context("reading the package tarball")? {
        let mut entry = entry.context("reading the package tarball")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        // The top directory is `package/` by convention, but any name is allowed.
        let Some((_, rel)) = path.trim_end_matches('/').split_once('/') else {
            continue;
        };
        let target = super::safe_join(dest, rel).with_context(|| format!("package tarball entry `{path}`"))?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs_err::create_dir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
                let mut out = fs_err::File::create(&target)?;
                std::io::copy(&mut entry, &mut out)?;
                let mode = if exec { 0o755 } else { 0o644 };
                out.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            // Metadata for the entries that follow, not files.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => bail!("package tarball entry `{path}` is a {other:?}, not a file or directory"),
        }
    }
    if !dest.join("package.json").is_file() {
        bail!("the package tarball has no package.json");
    }
    Ok(())
}

/// Drops `devDependencies` from the unpacked package.json: they are never installed, and
/// npm would otherwise resolve them (and stop at conflicts among them).
fn prepare_manifest(dir: &Path) -> Result<()> {
    let path = dir.join("package.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(&path)?).context("the package's package.json")?;
    if let Some(obj) = manifest.as_object_mut()
        && obj.remove("devDependencies").is_some()
    {
        fs_err::write(&path, serde_json::to_string_pretty(&manifest)? + "\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_urls_are_mapped_in_every_lockfile_shape() {
        let mut lock = serde_json::json!({
            "packages": {"": {"name": "app"}, "node_modules/dep": {"resolved": "http://stand-in/dep.tgz"}},
            "dependencies": {"dep": {"resolved": "http://stand-in/dep.tgz", "dependencies": {"sub": {"resolved": "http://stand-in/sub.tgz"}}}}
        });
        map_resolved(&mut lock, |u| {
            u.replace("http://stand-in/", "https://registry.npmjs.org/")
        });
        let text = lock.to_string();
        assert!(!text.contains("stand-in"), "{text}");
        assert_eq!(text.matches("https://registry.npmjs.org/").count(), 3, "{text}");
        assert_eq!(lock["packages"][""]["name"], "app");
    }

    fn tgz(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(f.reopen().unwrap(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // `append_data` refuses `..`; write the raw name to test the check.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
        f
    }

    #[test]
    fn unpack_strips_the_top_directory() {
        let t = tgz(&[("package/package.json", b"{}"), ("package/lib/a.js", b"1")]);
        let d = tempfile::tempdir().unwrap();
        unpack(t.path(), d.path()).unwrap();
        assert_eq!(fs_err::read(d.path().join("lib/a.js")).unwrap(), b"1");
    }

    #[test]
    fn unpack_refuses_paths_that_leave_the_target() {
        let t = tgz(&[("package/package.json", b"{}"), ("package/../../evil", b"x")]);
        let d = tempfile::tempdir().unwrap();
        let err = format!("{:#}", unpack(t.path(), &d.path().join("t")).unwrap_err());
        assert!(err.contains("not a safe relative path"), "{err}");
        assert!(!d.path().join("evil").exists());
    }

    #[test]
    fn integrity_is_checked() {
        let f = tempfile::NamedTempFile::new().unwrap();
        fs_err::write(f.path(), b"hello").unwrap();
        let good = "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==";
        check_integrity(f.path(), good).unwrap();
        let err = check_integrity(f.path(), "sha512-AAAA").unwrap_err().to_string();
        assert!(err.contains("registry says"), "{err}");
    }

    #[test]
    fn dev_dependencies_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        fs_err::write(
            d.path().join("package.json"),
            r#"{"name":"x","dependencies":{"a":"1"},"devDependencies":{"b":"2"}}"#,
        )
        .unwrap();
        prepare_manifest(d.path()).unwrap();
        let text = fs_err::read_to_string(d.path().join("package.json")).unwrap();
        assert!(text.contains("\"a\"") && !text.contains("devDependencies"), "{text}");
    }
}
