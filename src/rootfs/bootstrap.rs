//! The Debian bootstrap: mmdebstrap (root mode as root, unshare mode otherwise) writes
//! the root file system as a tar archive into the stage cache, keyed by every input that
//! shapes it. Downloaded .deb files are kept in the cache and fed back in, so changing
//! the package set downloads only what is new. Before mmdebstrap runs, the architecture's
//! emulator, the mirror, the suites and the keys are checked, each with a clear error.

use super::{Ctx, render};
use crate::cache::Key;
use crate::process::Cmd;
use crate::recipe::plan_rootfs::{BootstrapPlan, KeyPlan, SourcePlan};
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

/// Bumped when anything about how a bootstrap is made changes.
const BUCKET: &str = "rootfs-v1";
const ESSENTIAL_HOOK: &str = include_str!("hooks/essential.sh");
const CUSTOMIZE_HOOK: &str = include_str!("hooks/customize.sh");
/// Run by the customize hook: the byte-compilation every Python package's postinst asked for.
const PYCOMPILE: &str = include_str!("hooks/pycompile.py");
const HOST_PYTHON: &str = include_str!("hooks/host-python.sh");

/// The bootstrapped archive and its cache key.
pub struct Bootstrapped {
    pub tar: PathBuf,
    pub key: Key,
    pub cached: bool,
    /// The suite's Release date it was made with (None: an entry from before it was kept).
    pub epoch: Option<i64>,
}

/// Beside `rootfs.tar` in the cache entry: the SOURCE_DATE_EPOCH it was made with.
const EPOCH_FILE: &str = "epoch";

fn read_epoch(dir: &Path) -> Option<i64> {
    fs_err::read_to_string(dir.join(EPOCH_FILE)).ok()?.trim().parse().ok()
}

/// Bootstraps (or finds in the cache) the root file system.
pub fn bootstrap(b: &BootstrapPlan, ctx: &Ctx) -> Result<Bootstrapped> {
    crate::host::binfmt::check(&b.architecture).map_err(|p| crate::host::HostError(vec![p]))?;
    let version = Cmd::new("mmdebstrap")
        .arg("--version")
        .run_stdout()
        .map_err(|e| anyhow!(e))
        .context("mmdebstrap builds Debian root file systems")?;
    let preseed = if b.preseed.is_empty() {
        None
    } else {
        let dir = ctx.staging.path("preseed");
        for p in &b.preseed {
            render::render_dir(p, &dir, ctx.template).with_context(|| format!("rootfs.preseed: {}", p.display()))?;
        }
        Some(dir)
    };
    let keys = source_keys(&b.sources, ctx)?;
    let inputs = serde_json::json!({
        "plan": b,
        "mmdebstrap": version.trim(),
        "hooks": [ESSENTIAL_HOOK, CUSTOMIZE_HOOK, PYCOMPILE, HOST_PYTHON],
        "preseed": preseed.as_deref().map(render::tree_digest).transpose()?,
        "keys": keys.iter().map(|(_, sha)| sha).collect::<Vec<_>>(),
    });
    let key = Key::new(BUCKET, &inputs);
    let describe = format!(
        "{} {} {} ({} packages)",
        b.suite,
        b.architecture,
        b.variant,
        b.packages.len()
    );
    if let Some(dir) = ctx.cache.lookup(BUCKET, &key) {
        ctx.reporter
            .detail(&format!("bootstrap {describe}: cached {}", key.short()));
        return Ok(Bootstrapped {
            tar: dir.join("rootfs.tar"),
            key,
            cached: true,
            epoch: read_epoch(&dir),
        });
    }
    // Only a build needs the network: check it answers, so a typo in a suite or an
    // unreachable mirror is named before minutes of mmdebstrap.
    check_archive(&b.mirror, &b.suite, "rootfs")?;
    for s in &b.sources {
        for suite in &s.suites {
            check_archive(&s.uris, suite, &format!("rootfs.sources.{}", s.name))?;
        }
    }
    // The archive's own date (not the key: a cached bootstrap keeps the date it was made
    // with, as it keeps the packages).
    let epoch = super::epoch::release_date(&b.mirror, &b.suite)?;
    let (dir, cached) = ctx.cache.get_or_build(BUCKET, &key, &describe, |out| {
        run(b, ctx, preseed.as_deref(), epoch, &keys, &out.join("rootfs.tar"))?;
        fs_err::write(out.join(EPOCH_FILE), epoch.to_string())?;
        Ok(())
    })?;
    Ok(Bootstrapped {
        tar: dir.join("rootfs.tar"),
        key,
        cached,
        epoch: read_epoch(&dir),
    })
}

/// Reads each source's key file (or downloads and checks it) and returns its path and
/// sha256.
fn source_keys(sources: &[SourcePlan], ctx: &Ctx) -> Result<Vec<(Option<PathBuf>, String)>> {
    let mut out = Vec::new();
    for s in sources {
        match &s.key {
            KeyPlan::DebianKeyring => out.push((None, "debian-archive-keyring".into())),
            KeyPlan::File(p) => {
                let data = fs_err::read(p).map_err(|e| anyhow!("rootfs.sources.{}.key: cannot read {}: {e}; put the key file in the repository (paths are relative to the recipe)", s.name, p.display()))?;
                out.push((Some(p.clone()), crate::digest::sha256_hex(&data)));
            }
            KeyPlan::Url { url, fingerprint } => {
                let dest = ctx.staging.path(&format!("key-{}.asc", s.name));
                let data = crate::net::get_bytes(url)
                    .with_context(|| format!("rootfs.sources.{}.key_url: downloading {url}", s.name))?;
                fs_err::write(&dest, &data)?;
                let found = key_fingerprints(&dest)?;
                if !found.iter().any(|f| f == fingerprint) {
                    bail!(
                        "rootfs.sources.{}.fingerprint: the key at {url} has fingerprint(s) {} but the recipe pins {fingerprint}; refusing it",
                        s.name,
                        found.join(", ")
                    );
                }
                out.push((Some(dest), crate::digest::sha256_hex(&data)));
            }
        }
    }
    Ok(out)
}

/// Fingerprints of the keys in an OpenPGP file, via gpg.
fn key_fingerprints(path: &Path) -> Result<Vec<String>> {
    let out = Cmd::new("gpg")
        .args(["--batch", "--show-keys", "--with-colons", "--with-fingerprint"])
        .arg(path)
        .run_stdout()?;
    Ok(out
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .filter_map(|l| l.split(':').nth(9))
        .map(|f| f.to_uppercase())
        .collect())
}

/// Checks that `{mirror}/dists/{suite}/Release` (or InRelease) exists.
fn check_archive(mirror: &str, suite: &str, field: &str) -> Result<()> {
    let base = mirror.trim_end_matches('/');
    if let Some(path) = base.strip_prefix("file://") {
        let p = Path::new(path).join("dists").join(suite);
        if !p.join("Release").exists() && !p.join("InRelease").exists() {
            bail!(
                "{field}: `{suite}` is not in the archive at {mirror} (no dists/{suite}/Release); check the suite name"
            );
        }
        return Ok(());
    }
    match crate::net::head_ok(&format!("{base}/dists/{suite}/InRelease")) {
        Ok(true) => Ok(()),
        Ok(false) => bail!(
            "{field}: `{suite}` is not in the archive at {mirror} (no dists/{suite}/InRelease); check the suite name (e.g. bookworm, trixie, trixie-backports)"
        ),
        Err(e) => bail!(
            "{field}: the archive {mirror} cannot be reached ({e:#}); check the URL and the network, or build from the cache"
        ),
    }
}

/// Reports each new `I: ` line of mmdebstrap's log until `done`.
fn follow_phases(log: &Path, done: &std::sync::atomic::AtomicBool, reporter: &dyn crate::report::Reporter) {
    let mut seen = 0usize;
    loop {
        let finished = done.load(std::sync::atomic::Ordering::Relaxed);
        if let Ok(text) = fs_err::read_to_string(log) {
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("I: ")).collect();
            for l in lines.iter().skip(seen) {
                reporter.step(&format!("  mmdebstrap: {}", l.trim_start_matches("I: ")));
            }
            seen = seen.max(lines.len());
        }
        if finished {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn write_exec(path: &Path, body: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The apt configuration of the finished system: the main mirror in sources.list, each
/// extra source as a deb822 file with its key.
fn apt_dir(b: &BootstrapPlan, keys: &[(Option<PathBuf>, String)], dir: &Path) -> Result<()> {
    fs_err::create_dir_all(dir.join("sources.list.d"))?;
    fs_err::create_dir_all(dir.join("keyrings"))?;
    fs_err::write(
        dir.join("sources.list"),
        format!("deb {} {} {}\n", b.mirror, b.suite, b.components.join(" ")),
    )?;
    for (s, (key, _)) in b.sources.iter().zip(keys) {
        let signed_by = match key {
            Some(k) => {
                let ext = if fs_err::read(k).map(|d| d.starts_with(b"-----BEGIN")).unwrap_or(false) {
                    "asc"
                } else {
                    "gpg"
                };
                let name = format!("{}.{ext}", s.name);
                fs_err::copy(k, dir.join("keyrings").join(&name))?;
                format!("/etc/apt/keyrings/{name}")
            }
            None => "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
        };
        fs_err::write(
            dir.join("sources.list.d").join(format!("{}.sources", s.name)),
            format!(
                "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\nSigned-By: {signed_by}\n",
                s.uris,
                s.suites.join(" "),
                s.components.join(" ")
            ),
        )?;
    }
    Ok(())
}

fn run(
    b: &BootstrapPlan,
    ctx: &Ctx,
    preseed: Option<&Path>,
    epoch: i64,
    keys: &[(Option<PathBuf>, String)],
    out: &Path,
) -> Result<()> {
    let hooks = ctx.staging.path("hooks");
    fs_err::create_dir_all(&hooks)?;
    write_exec(&hooks.join("essential.sh"), ESSENTIAL_HOOK)?;
    write_exec(&hooks.join("customize.sh"), CUSTOMIZE_HOOK)?;
    fs_err::write(hooks.join("pycompile.py"), PYCOMPILE)?;
    fs_err::write(hooks.join("host-python.sh"), HOST_PYTHON)?;
    let apt = ctx.staging.path("apt");
    apt_dir(b, keys, &apt)?;
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = Cmd::new("mmdebstrap")
        .arg(format!("--mode={}", if is_root { "root" } else { "unshare" }))
        .arg(format!("--variant={}", b.variant))
        .arg(format!("--architectures={}", b.architecture))
        .arg(format!("--components={}", b.components.join(",")))
        .arg("--aptopt=Acquire::Retries \"3\"")
        // A mirror that stops answering fails the download, not the build forever.
        .arg("--aptopt=Acquire::http::Timeout \"30\"")
        // Preseeded configuration files are ours: keep them without asking (dpkg would
        // otherwise stop at a conffile prompt with no terminal to answer it).
        .arg("--dpkgopt=force-confdef")
        .arg("--dpkgopt=force-confold")
        // No fsync per unpacked file: a failed bootstrap is thrown away, never resumed.
        .arg("--dpkgopt=force-unsafe-io")
        .env("IMGBUILD_APT_DIR", &apt)
        .env("IMGBUILD_HOOKS", &hooks)
        // mmdebstrap then clamps every timestamp and drops the logs that hold the clock.
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
    if !b.packages.is_empty() {
        cmd = cmd.arg(format!("--include={}", b.packages.join(",")));
    }
    for (_, (key, _)) in b.sources.iter().zip(keys) {
        if let Some(k) = key {
            cmd = cmd.arg(format!("--keyring={}", k.display()));
        }
    }
    if keys.iter().any(|(k, _)| k.is_some()) {
        cmd = cmd.arg("--keyring=/etc/apt/trusted.gpg.d");
    }
    if let Some(p) = preseed {
        cmd = cmd.env("IMGBUILD_PRESEED", p);
    }
    if !b.initramfs_modules.is_empty() {
        let list = ctx.staging.path("initramfs-modules");
        fs_err::write(&list, b.initramfs_modules.join("\n") + "\n")?;
        cmd = cmd.env("IMGBUILD_INITRAMFS_MODULES", &list);
    }
    cmd = cmd.arg(format!("--essential-hook={}", hooks.join("essential.sh").display()));
    // Keep downloaded packages: fed in before the download, saved after installing.
    let debs = ctx.cache.dir("debs-v1", &format!("{}-{}", b.suite, b.architecture))?;
    let debs_text = debs.display().to_string();
    if !debs_text.contains(char::is_whitespace) {
        cmd = cmd
            .arg("--skip=essential/unlink")
            .arg("--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives")
            .arg(format!("--setup-hook=sync-in {debs_text} /var/cache/apt/archives/"))
            .arg(format!("--customize-hook=sync-out /var/cache/apt/archives {debs_text}"));
    } else {
        ctx.reporter.warn(&format!(
            "the cache path {debs_text} contains white space: downloaded packages are not kept"
        ));
    }
    cmd = cmd.arg(format!("--customize-hook={}", hooks.join("customize.sh").display()));
    // dpkg's log says which maintainer script took the time (bench/dpkg-time.py reads
    // it); mmdebstrap removes it from the root.
    let log_dir = ctx.log_dir.display().to_string();
    if !log_dir.contains(char::is_whitespace) {
        fs_err::create_dir_all(&ctx.log_dir)?;
        cmd = cmd.arg(format!("--customize-hook=copy-out /var/log/dpkg.log {log_dir}"));
    }
    cmd = cmd
        .arg(&b.suite)
        .arg(out)
        .arg(format!("deb {} {} {}", b.mirror, b.suite, b.components.join(" ")));
    for s in &b.sources {
        for suite in &s.suites {
            cmd = cmd.arg(format!("deb {} {suite} {}", s.uris, s.components.join(" ")));
        }
    }
    let log = ctx.log_dir.join("mmdebstrap.log");
    ctx.reporter.detail(&format!("running {cmd}"));
    let started = std::time::Instant::now();
    // mmdebstrap runs for minutes: show its phases ("I: ..." lines) as it reaches them.
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| follow_phases(&log, &done, ctx.reporter));
        let r = crate::process::run_logged(&cmd, &log);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    match result {
        Ok(()) => {
            ctx.reporter.detail(&format!(
                "mmdebstrap took {:.0}s (log: {})",
                started.elapsed().as_secs_f64(),
                log.display()
            ));
            Ok(())
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "bootstrapping {} {} with mmdebstrap failed; full log: {}",
                b.suite,
                b.architecture,
                log.display()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::HOST_PYTHON;
    use std::path::Path;

    fn script(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        fs_err::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What host-python.sh prints for `version` with `dirs` as PATH.
    fn host_python(version: &str, dirs: &[&Path]) -> String {
        let path = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", HOST_PYTHON, "host-python.sh", version])
            .env("PATH", format!("{path}:/usr/bin:/bin"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn the_host_python_must_run_and_be_the_targets_version() {
        let tmp = tempfile::tempdir().unwrap();
        let (shim, wrong, real) = (
            tmp.path().join("shim"),
            tmp.path().join("wrong"),
            tmp.path().join("real"),
        );
        for d in [&shim, &wrong, &real] {
            fs_err::create_dir(d).unwrap();
        }
        // A pyenv shim names every version and fails for one that is not selected.
        script(
            &shim,
            "python3.99",
            "echo 'pyenv: python3.99: command not found' >&2; exit 127",
        );
        // A python3.99 that is really another version.
        script(&wrong, "python3.99", "exec python3 \"$@\"");
        assert_eq!(host_python("3.99", &[&shim, &wrong]), "", "no usable python3.99");
        // One that reports 3.99 (the check asks the interpreter itself).
        script(
            &real,
            "python3.99",
            "[ \"$1\" = -I ] && [ \"$2\" = -c ] && [ \"$4\" = 3.99 ] && exit 0; exit 1",
        );
        assert_eq!(
            host_python("3.99", &[&shim, &real]),
            "",
            "only the first on PATH is asked"
        );
        assert_eq!(
            host_python("3.99", &[&real, &shim]),
            real.join("python3.99").display().to_string()
        );
    }
}
