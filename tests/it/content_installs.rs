//! Packages installed into the root file system on the build host. npm applications
//! (`files: {DIR: {npm: NAME@VERSION}}`) from a fixture registry, with the host's real npm:
//! dependencies installed, devDependencies and install scripts left out, the lock
//! pinning the dependency tree, `--offline` rebuilds from the cache, and a tarball that
//! does not match the registry refused. Python packages (`files: {DIR: {pip: ...}}`)
//! from PyPI for another platform than the host's.

use crate::common::*;
use crate::http_fixture::Server;
use base64::Engine;
use sha2::Digest;
use std::path::Path;

/// Publishes `name@version` with `files` (path, content, executable) in the registry
/// at `root/registry`, adding it to the package's metadata.
fn publish(root: &Path, base: &str, name: &str, version: &str, files: &[(&str, &str, bool)]) {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let pkg = work.path().join("package");
    for (path, body, exec) in files {
        let p = pkg.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        let mode = if *exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let dir = root.join("registry").join(name);
    std::fs::create_dir_all(dir.join("-")).unwrap();
    let tgz = dir.join(format!("-/{name}-{version}.tgz"));
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(work.path())
        .arg("package")
        .status()
        .unwrap();
    assert!(status.success());
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(std::fs::read(&tgz).unwrap()))
    );
    let meta_path = dir.join("index.html");
    let mut meta: serde_json::Value = std::fs::read(&meta_path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| serde_json::json!({"name": name, "versions": {}, "dist-tags": {}}));
    let manifest: serde_json::Value =
        serde_json::from_str(files.iter().find(|f| f.0 == "package.json").unwrap().1).unwrap();
    let mut v = manifest.clone();
    v["dist"] = serde_json::json!({
        "tarball": format!("{base}/registry/{name}/-/{name}-{version}.tgz"),
        "integrity": integrity,
    });
    meta["versions"][version] = v;
    meta["dist-tags"]["latest"] = version.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
}

fn dep(version: &str) -> String {
    format!(r#"{{"name": "dep", "version": "{version}", "main": "index.js"}}"#)
}

const APP: &str = r#"{"name": "app", "version": "1.0.0", "bin": {"app": "cli.js"},
  "dependencies": {"dep": "^1.0.0"},
  "devDependencies": {"no-such-dev-tool": "^9.9.9"},
  "scripts": {"postinstall": "touch INSTALL-SCRIPT-RAN"}}"#;

fn registry(tmp: &Path) -> Server {
    let root = tmp.join("site");
    std::fs::create_dir_all(&root).unwrap();
    let server = Server::start(&root);
    publish(
        &root,
        &server.base,
        "dep",
        "1.0.0",
        &[
            ("package.json", &dep("1.0.0"), false),
            ("index.js", "module.exports = 'one';\n", false),
        ],
    );
    publish(
        &root,
        &server.base,
        "app",
        "1.0.0",
        &[
            ("package.json", APP, false),
            ("cli.js", "#!/usr/bin/env node\nconsole.log(require('dep'));\n", true),
        ],
    );
    server
}

fn npm_recipe(tmp: &Path, server: &Server, spec: &str) -> std::path::PathBuf {
    write(
        tmp,
        "npm.yaml",
        &format!(
            "{ONE_PARTITION}content:
  fetch_from: {{\"https://registry.npmjs.org/\": \"{}/registry/\"}}
files:
  /opt/app: {{npm: \"{spec}\"}}
",
            server.base
        ),
    )
}

/// Builds `recipe` (a one-partition image) into `dir/out` with the shared cache and
/// `extra` options, and returns its root file system extracted and checked by e2fsck.
fn build_root(dir: &Path, recipe: &Path, out: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(out);
    ok(imgbuild()
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(extra)
        .arg(recipe));
    let name = recipe.file_stem().unwrap().to_string_lossy();
    let image = out.join(format!("{name}.img"));
    let (_, parts) = sfdisk(&image);
    let root = dir.join(format!("{}.ext4", out.display()));
    extract(&image, &parts[0], &root);
    e2fsck_clean(&root);
    root
}

#[test]
fn npm_packages_are_installed_with_their_locked_dependencies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = registry(tmp.path());
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = npm_recipe(tmp.path(), &server, "app@latest");
    let build = |out: &str, extra: &[&str]| build_root(tmp.path(), &recipe, out, extra);
    let root = build("one", &[]);
    assert_eq!(
        debugfs(&root, "cat /opt/app/node_modules/dep/index.js"),
        "module.exports = 'one';\n"
    );
    let manifest = debugfs(&root, "cat /opt/app/package.json");
    assert!(
        manifest.contains("\"dep\"") && !manifest.contains("no-such-dev-tool"),
        "{manifest}"
    );
    let cli = debugfs(&root, "stat /opt/app/cli.js");
    assert!(
        cli.contains("Mode:  0755"),
        "the package's scripts stay runnable: {cli}"
    );
    assert!(
        !debugfs(&root, "ls /opt/app").contains("INSTALL-SCRIPT-RAN"),
        "install scripts never run on the build host"
    );
    let lock = std::fs::read_to_string(tmp.path().join("npm.lock")).unwrap();
    assert!(
        lock.contains("rootfs/opt/app") && lock.contains("package_lock"),
        "{lock}"
    );
    assert!(
        lock.contains("https://registry.npmjs.org/app/-/app-1.0.0.tgz"),
        "the lock names upstream: {lock}"
    );
    assert!(!lock.contains("127.0.0.1"), "the lock never names the fixture: {lock}");

    // A newer dependency upstream changes nothing while the lock pins the tree...
    publish(
        server.root(),
        &server.base,
        "dep",
        "1.0.1",
        &[
            ("package.json", &dep("1.0.1"), false),
            ("index.js", "module.exports = 'two';\n", false),
        ],
    );
    let root = build("two", &["--locked"]);
    assert_eq!(
        debugfs(&root, "cat /opt/app/node_modules/dep/index.js"),
        "module.exports = 'one';\n"
    );
    // ... and the cache alone rebuilds it, with no request to the registry.
    let before = server.log().len();
    let root = build("three", &["--offline"]);
    assert_eq!(
        debugfs(&root, "cat /opt/app/node_modules/dep/index.js"),
        "module.exports = 'one';\n"
    );
    assert_eq!(
        server.log().len(),
        before,
        "--offline made requests: {:?}",
        &server.log()[before..]
    );
}

#[test]
fn a_package_that_does_not_match_the_registry_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = registry(tmp.path());
    // The tarball changes after the registry published its integrity.
    let tgz = server.root().join("registry/app/-/app-1.0.0.tgz");
    let mut bytes = std::fs::read(&tgz).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&tgz, bytes).unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = npm_recipe(tmp.path(), &server, "app@1.0.0");
    let (_, err) = fails(
        imgbuild()
            .arg("--out")
            .arg(tmp.path().join("out"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .arg(&recipe),
    );
    assert!(err.contains("the registry says"), "{err}");
    assert!(!tmp.path().join("out/npm.img").exists());

    let bad = npm_recipe(tmp.path(), &server, "app@^1");
    let (_, err) = fails(imgbuild().arg("--out").arg(tmp.path().join("out")).arg(&bad));
    assert!(
        err.contains("files./opt/app.npm") && err.contains("ranges are not pinned"),
        "{err}"
    );
}

/// `files: {DIR: {pip: ...}}`: wheels for the image's Python and platform (here arm64's,
/// on an amd64 host), installed with their dependencies from the lock, no scripts.
#[test]
#[ignore = "tier pypi: resolves and downloads from PyPI (uv, pip)"]
fn pip_packages_are_installed_for_the_images_platform_tier_pypi() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = write(
        tmp.path(),
        "pip.yaml",
        &format!(
            "{ONE_PARTITION}files:
  /usr/local/lib/python3.11/dist-packages:
    pip: {{packages: [python-dateutil, markupsafe], python: \"3.11\", platform: aarch64-manylinux_2_28}}
"
        ),
    );
    let build = |out: &str, extra: &[&str]| build_root(tmp.path(), &recipe, out, extra);
    let root = build("one", &[]);
    let dir = "/usr/local/lib/python3.11/dist-packages";
    let listing = debugfs(&root, &format!("ls -l {dir}"));
    for want in ["dateutil", "tzdata", "markupsafe"] {
        assert!(listing.contains(want), "{want} (dependencies too): {listing}");
    }
    assert!(
        !listing.contains(" bin"),
        "scripts would name the host's Python: {listing}"
    );
    assert!(!listing.contains(".lock"), "uv's own lock file stays out: {listing}");
    let native = debugfs(&root, &format!("ls {dir}/markupsafe"));
    assert!(
        native.contains("aarch64-linux-gnu.so"),
        "the image's platform: {native}"
    );
    let lock = std::fs::read_to_string(tmp.path().join("pip.lock")).unwrap();
    assert!(
        lock.contains("rootfs/usr/local/lib/python3.11/dist-packages") && lock.contains("tzdata-"),
        "{lock}"
    );

    // The installed code runs: copied out, imported by this machine's Python.
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    debugfs(&root, &format!("rdump {dir} {}", site.display()));
    ok(std::process::Command::new("python3")
        .env("PYTHONPATH", site.join("dist-packages"))
        .args([
            "-c",
            "from dateutil.relativedelta import relativedelta; print(relativedelta(months=1))",
        ]));

    // Rebuilt from the lock and the cache alone.
    let root = build("two", &["--offline"]);
    assert!(debugfs(&root, &format!("ls {dir}/markupsafe")).contains("aarch64-linux-gnu.so"));
}

#[test]
fn a_files_entry_names_one_filler_and_pip_needs_the_images_python() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    for (body, field, why) in [
        (
            "/opt/x: {npm: \"a@1\", url: \"https://example.org/a\"}",
            "files./opt/x",
            "give one of",
        ),
        (
            "/opt/x: {pip: {packages: [six]}}",
            "files./opt/x.pip.python",
            "the image's Python version",
        ),
        (
            "/opt/x: {pip: {packages: [six], python: \"3.11\"}}",
            "files./opt/x.pip.platform",
            "no default without `rootfs.architecture`",
        ),
    ] {
        let r = write(tmp.path(), "bad.yaml", &format!("{ONE_PARTITION}files:\n  {body}\n"));
        let (_, err) = fails(imgbuild().arg("check").arg(&r));
        assert!(err.contains(field) && err.contains(why), "{body}: {err}");
    }
}
