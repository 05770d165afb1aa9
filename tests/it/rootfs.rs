//! The Debian root file system stage with real mmdebstrap (an amd64 minbase, native, so
//! it is the one slow build the suite makes): steps in the target, overlays, templates,
//! secrets, the stage cache, failures and interruptions. The bootstrap is shared through
//! one cache directory under target/, so it is built once per machine.

use crate::common::*;
use std::path::{Path, PathBuf};

fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/it-cache")
}

/// `imgbuild -v` building `recipe` into `out` with the suite's shared stage cache.
fn build_into(out: &Path, recipe: &Path) -> std::process::Command {
    let mut c = imgbuild();
    c.arg("-v")
        .arg("--cache-dir")
        .arg(shared_cache())
        .arg("--out")
        .arg(out)
        .arg(recipe);
    c
}

/// `imgbuild cache list` of the cache these tests share.
fn shared_cache_list() -> String {
    text(&ok(imgbuild()
        .arg("cache")
        .arg("list")
        .arg("--cache-dir")
        .arg(shared_cache())))
}

fn recipe(dir: &Path, steps: &str) -> PathBuf {
    write(
        dir,
        "ov/etc/motd.j2",
        "{{ greeting }} from {{ recipe.name }}; root is PARTUUID={{ partitions.root.partuuid }}\n",
    );
    let tool = write(dir, "ov/usr/local/bin/tool", "#!/bin/sh\necho tool\n");
    std::fs::set_permissions(tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write(
        dir,
        "deb.yaml",
        &format!(
            "vars: {{greeting: hello}}
rootfs:
  suite: bookworm
  architecture: amd64
  variant: minbase
  packages: [python3-yaml, ca-certificates]
steps:
{steps}
overlays: [ov]
files:
  /etc/motd: {{mode: '0640', owner: '0:4'}}
image:
  table: gpt
  partitions:
    root: {{filesystem: ext4, mount: /}}
output: {{compression: none}}
"
        ),
    )
}

fn root_fs(tmp: &Path, img: &Path) -> PathBuf {
    let (_, parts) = sfdisk(img);
    let fs = tmp.join("root.ext4");
    extract(img, &parts[0], &fs);
    fs
}

/// What the bootstrap defers (byte-compilation, the certificate store) was done once at
/// the end, for the target's paths, and the real programs are back in place.
fn deferred_work_was_done(fs: &Path) {
    let diversions = debugfs(fs, "cat /var/lib/dpkg/diversions");
    for program in ["/usr/bin/py3compile", "/usr/sbin/update-ca-certificates"] {
        assert!(!diversions.contains(program), "{program} still diverted:\n{diversions}");
        let stat = debugfs(fs, &format!("stat {program}"));
        assert!(
            stat.contains("Type: regular"),
            "{program} is not the real program: {stat}"
        );
    }
    let pyc = debugfs(
        fs,
        "cat /usr/lib/python3/dist-packages/yaml/__pycache__/__init__.cpython-311.pyc",
    );
    assert!(pyc.len() > 1000, "no bytecode for python3-yaml: {} bytes", pyc.len());
    assert!(
        pyc.contains("/usr/lib/python3/dist-packages/yaml/__init__.py") && !pyc.contains("mmdebstrap."),
        "the bytecode names another path than the target's"
    );
    // python3-minimal's private directory (`py3compile -p python3-minimal /usr/share/python3/`).
    assert!(
        debugfs(fs, "ls /usr/share/python3/debpython/__pycache__").contains("files.cpython-311.pyc"),
        "debpython not byte-compiled"
    );
    let bundle = debugfs(fs, "cat /etc/ssl/certs/ca-certificates.crt");
    assert!(
        bundle.matches("BEGIN CERTIFICATE").count() > 100,
        "certificate bundle: {} bytes",
        bundle.len()
    );
    let certs = debugfs(fs, "ls -l /etc/ssl/certs");
    let pem = debugfs(fs, "stat /etc/ssl/certs/ISRG_Root_X1.pem");
    assert!(
        pem.contains("Fast link dest: \"/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt\""),
        "the certificate's link is not the target's path: {pem}"
    );
    // openssl's hash link (ISRG Root X1's subject hash is 4042bcee).
    let hash = debugfs(fs, "stat /etc/ssl/certs/4042bcee.0");
    assert!(
        hash.contains("Fast link dest: \"ISRG_Root_X1.pem\""),
        "no hash link: {hash}\n{certs}"
    );
}

#[test]
#[ignore = "tier debian: bootstraps from the Debian archive, as root (mmdebstrap, chroot steps)"]
fn debian_root_with_steps_overlays_secrets_and_cache_tier_debian() {
    let tmp = tempfile::tempdir().unwrap();
    let steps = "  - {name: marker, run: 'echo from-step > /etc/step-marker; test -e /dev/null && test -e /proc/self && echo ok > /root/mounts-seen'}
  - {name: secret, run: 'printf %s \"$TOKEN\" | sha256sum > /root/token.sha', secrets: [TOKEN], env: {MODE: test}}";
    let r = recipe(tmp.path(), steps);
    let out = tmp.path().join("out");
    let build = |extra: &[&str]| {
        let mut c = imgbuild();
        // `--offline`: run in a network namespace with no network at all.
        if extra.first() == Some(&"--offline") {
            c = std::process::Command::new("unshare");
            c.env_remove("SOURCE_DATE_EPOCH")
                .arg("--net")
                .arg(env!("CARGO_BIN_EXE_imgbuild"));
        }
        let extra: Vec<&str> = extra.iter().copied().filter(|a| *a != "--offline").collect();
        c.env("TOKEN", "s3cret-value")
            .arg("-v")
            .arg("--cache-dir")
            .arg(shared_cache())
            .arg("--out")
            .arg(&out)
            .args(&extra)
            .arg(&r);
        let o = ok(&mut c);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    build(&[]);
    let img = out.join("deb.img");
    let fs = root_fs(tmp.path(), &img);
    e2fsck_clean(&fs);
    assert_eq!(debugfs(&fs, "cat /etc/step-marker"), "from-step\n");
    assert_eq!(
        debugfs(&fs, "cat /root/mounts-seen"),
        "ok\n",
        "steps see /dev and /proc"
    );
    let token = debugfs(&fs, "cat /root/token.sha");
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"s3cret-value"))
    };
    assert!(token.starts_with(&want), "the secret reached the step: {token}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(!manifest.contains("s3cret-value"), "secret in manifest");
    // The manifest lists the root's packages as its own dpkg says (release notes read it).
    let packages = &serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["packages"];
    let status = debugfs(&fs, "cat /var/lib/dpkg/status");
    let dpkg = status
        .split("\n\n")
        .find(|s| s.starts_with("Package: dpkg\n"))
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Version: ")))
        .expect("dpkg in the status file");
    assert_eq!(packages["dpkg"].as_str(), Some(dpkg), "{packages}");
    assert!(packages.as_object().unwrap().len() > 50, "{packages}");
    for log in std::fs::read_dir(out.join("logs")).unwrap() {
        assert!(
            !std::fs::read_to_string(log.unwrap().path())
                .unwrap()
                .contains("s3cret-value"),
            "secret in a log"
        );
    }
    let partuuid = sfdisk(&img).1[0].uuid.clone().unwrap().to_lowercase();
    assert_eq!(
        debugfs(&fs, "cat /etc/motd"),
        format!("hello from deb; root is PARTUUID={partuuid}\n")
    );
    let motd = debugfs(&fs, "stat /etc/motd");
    assert!(motd.contains("Mode:  0640") && motd.contains("Group:     4"), "{motd}");
    assert!(debugfs(&fs, "stat /usr/local/bin/tool").contains("Mode:  0755"));
    assert!(
        !debugfs(&fs, "ls -l /usr/sbin").contains("policy-rc.d"),
        "policy-rc.d left in the image"
    );
    assert!(
        mounts_under(tmp.path()).is_empty() && mounts_under(&shared_cache()).is_empty(),
        "mounts left behind"
    );
    deferred_work_was_done(&fs);

    // An overlay-only change reuses the bootstrap and the cached step, with no network.
    write(tmp.path(), "ov/etc/motd.j2", "changed {{ greeting }}\n");
    let log = build(&["--offline", "--set", "greeting=hi"]);
    assert!(log.contains("cached"), "bootstrap not cached:\n{log}");
    assert!(log.contains("step marker: cached"), "step not cached:\n{log}");
    assert!(
        log.contains("imgbuild: step secret"),
        "a step with secrets always runs:\n{log}"
    );
    let fs = root_fs(tmp.path(), &img);
    assert_eq!(debugfs(&fs, "cat /etc/motd"), "changed hi\n");

    let list = shared_cache_list();
    assert!(
        list.contains("rootfs-v1") && list.contains("bookworm amd64 minbase") && list.contains("steps-v1"),
        "{list}"
    );
}

#[test]
#[ignore = "tier debian: bootstraps from the Debian archive, as root (mmdebstrap, chroot steps)"]
fn failing_step_names_itself_shows_its_log_and_leaves_nothing_tier_debian() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(
        tmp.path(),
        "  - {name: breaks, run: 'echo about to fail; echo detail >&2; exit 3'}",
    );
    let out = tmp.path().join("out");
    let (code, err) = fails(
        imgbuild()
            .arg("--cache-dir")
            .arg(shared_cache())
            .arg("--out")
            .arg(&out)
            .arg(&r),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("step `breaks` failed (exit status 3)") && err.contains("about to fail") && err.contains("detail"),
        "{err}"
    );
    assert!(out.join("logs/01-breaks.log").is_file());
    assert!(!out.join("deb.img").exists() && !out.join(".staging").exists());
    assert!(mounts_under(tmp.path()).is_empty(), "mounts left behind");
    // Fixed, the next run resumes from the cached bootstrap.
    let r = recipe(tmp.path(), "  - {name: breaks, run: 'true'}");
    let o = ok(&mut build_into(&out, &r));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cached"));
}

/// Processes whose command line is exactly `sleep SECONDS`.
fn sleeping(seconds: &str) -> Vec<u32> {
    let want = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .collect()
}

/// Ctrl-C (to imgbuild alone, or to its whole process group as a terminal sends it),
/// SIGTERM and SIGKILL while a step runs: the step and everything it started end, no
/// mount is left, and (but for SIGKILL, which nothing can catch) the exit code is 130
/// and nothing but the logs is left in --out. After SIGKILL the next run builds.
#[test]
#[ignore = "tier debian: bootstraps from the Debian archive, as root (mmdebstrap, chroot steps)"]
fn interrupted_step_leaves_no_mounts_and_no_outputs_tier_debian() {
    use std::os::unix::process::CommandExt;
    let cases = [
        ("SIGINT", libc::SIGINT, false),
        ("SIGINT to the group", libc::SIGINT, true),
        ("SIGTERM", libc::SIGTERM, false),
        ("SIGKILL", libc::SIGKILL, false),
    ];
    for (i, (what, signal, group)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        // Distinct durations name this run's processes.
        let (bg, fg) = (
            format!("{}", 70000 + 10 * i + std::process::id() as usize % 7),
            format!("{}", 80000 + 10 * i + std::process::id() as usize % 7),
        );
        let r = recipe(
            tmp.path(),
            &format!("  - {{name: slow, run: 'sleep {bg} & touch /tmp/started; sleep {fg}'}}"),
        );
        let out = tmp.path().join("out");
        let mut child = imgbuild()
            .arg("--cache-dir")
            .arg(shared_cache())
            .arg("--out")
            .arg(&out)
            .arg(&r)
            .process_group(0)
            .stderr(std::fs::File::create(tmp.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let started = out.join(".staging/root/tmp/started");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(900);
        while !started.exists() || sleeping(&fg).is_empty() {
            assert!(std::time::Instant::now() < deadline, "{what}: the step never started");
            assert!(child.try_wait().unwrap().is_none(), "{what}: the build ended early");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let target = if group { -(child.id() as i32) } else { child.id() as i32 };
        unsafe { libc::kill(target, signal) };
        let status = child.wait().unwrap();
        let said = std::fs::read_to_string(tmp.path().join("stderr")).unwrap_or_default();
        if signal == libc::SIGKILL {
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(libc::SIGKILL)
            );
        } else {
            assert_eq!(status.code(), Some(130), "{what}: {said}");
        }
        // The kernel ends the step's namespace as its first process dies: allow a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !(sleeping(&bg).is_empty() && sleeping(&fg).is_empty()) {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: the step's processes survived: {:?} {:?}",
                sleeping(&bg),
                sleeping(&fg)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            mounts_under(tmp.path()).is_empty(),
            "{what}: mounts left: {:?}",
            mounts_under(tmp.path())
        );
        if signal == libc::SIGKILL {
            // The staging directory is the next run's to clear; the bootstrap is cached.
            let r = recipe(tmp.path(), "  - {name: quick, run: 'true'}");
            ok(imgbuild()
                .arg("--cache-dir")
                .arg(shared_cache())
                .arg("--out")
                .arg(&out)
                .arg(&r));
            assert!(out.join("deb.img").is_file() && !out.join(".staging").exists());
            continue;
        }
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "logs")
            .collect();
        assert!(left.is_empty(), "{what}: left {left:?}");
    }
}

/// A root whose own tree links `/tmp`, `/proc` and `/etc/resolv.conf` to a host
/// directory: a step's script, its mounts and its DNS set-up go inside the root (the
/// links are resolved there, as on the device), never into the host directory.
#[test]
#[ignore = "tier debian: bootstraps from the Debian archive, as root (mmdebstrap, chroot steps)"]
fn a_roots_symlinks_to_the_host_are_followed_inside_the_root_only_tier_debian() {
    let tmp = tempfile::tempdir().unwrap();
    // The minbase bootstrap the other tests build, as a plain tree.
    let base = recipe(tmp.path(), "  - {name: noop, run: 'true'}");
    ok(imgbuild()
        .arg("--cache-dir")
        .arg(shared_cache())
        .arg("--out")
        .arg(tmp.path().join("base-out"))
        .arg(&base));
    let tar = std::fs::read_dir(shared_cache().join("rootfs-v1"))
        .unwrap()
        .map(|e| e.unwrap().path().join("rootfs.tar"))
        .find(|p| p.is_file())
        .expect("the cached bootstrap");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let status = std::process::Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(&tar)
        .arg("-C")
        .arg(&tree)
        .status()
        .unwrap();
    assert!(status.success());
    // The host directory the links name, with a file the step's script would meet
    // there; the root holds its own directory of that name, where the links lead.
    // (Not under /tmp, which the root links there: the link would loop.)
    let host_tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let host = host_tmp.path().join("host");
    std::fs::create_dir_all(host.join("proc")).unwrap();
    write(&host, "imgbuild-step-1", "the host's own file\n");
    std::fs::create_dir_all(tree.join(host.strip_prefix("/").unwrap()).join("proc")).unwrap();
    for (name, target) in [
        ("tmp", host.clone()),
        ("proc", host.join("proc")),
        ("etc/resolv.conf", host.join("resolv.conf")),
    ] {
        let p = tree.join(name);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            let _ = std::fs::remove_file(&p);
        }
        std::os::unix::fs::symlink(&target, &p).unwrap();
    }
    write(
        tmp.path(),
        "step.sh",
        "#!/bin/sh\nset -e\necho from-the-step > /var/tmp/ran\ntest -e /proc/self/status\n",
    );
    let r = write(
        tmp.path(),
        "linked.yaml",
        &format!(
            "rootfs: {{dir: {}}}
steps:
  - {{name: linked, script: step.sh}}
image:
  table: gpt
  partitions:
    root: {{filesystem: ext4, mount: /}}
output: {{compression: none}}
",
            tree.display()
        ),
    );
    let before: Vec<_> = walk(&host);
    ok(imgbuild()
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg(&r));
    assert_eq!(walk(&host), before, "the build wrote into the host directory");
    assert!(mounts_under(tmp.path()).is_empty(), "{:?}", mounts_under(tmp.path()));
    // The script ran (placed in the root's own <host path> directory) and saw /proc
    // mounted where the root's link leads.
    let fs = root_fs(tmp.path(), &tmp.path().join("out/linked.img"));
    assert_eq!(debugfs(&fs, "cat /var/tmp/ran").trim(), "from-the-step");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            all.extend(walk(&p));
        }
        all.push(p);
    }
    all.sort();
    all
}

#[test]
fn bootstrap_inputs_are_checked_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "image:\n  table: gpt\n  partitions:\n    root: {filesystem: ext4, mount: /}\n";
    let cases = [
        (
            "rootfs: {suite: bookworm, architecture: arm65}\n",
            "unknown architecture `arm65`; did you mean `arm64`?",
        ),
        (
            "rootfs: {suite: 'Book worm', architecture: amd64}\n",
            "rootfs.suite: `Book worm` is not a suite name",
        ),
        (
            "rootfs: {suite: bookworm, architecture: amd64, packages: ['a,b']}\n",
            "rootfs.packages: `a,b` is not a package name",
        ),
        (
            "rootfs: {suite: bookworm, architecture: amd64, sources: {x: {uris: 'http://deb.debian.org/debian', suites: bookworm}}}\n",
            "rootfs.sources.x: missing its signing key",
        ),
    ];
    for (rootfs, want) in cases {
        let r = write(tmp.path(), "bad.yaml", &format!("{rootfs}{base}"));
        let (code, err) = fails(imgbuild().arg("check").arg(&r));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "want `{want}` in:\n{err}");
    }
    let cache = tmp.path().join("cache");
    let build_err = |rootfs: &str| {
        let r = write(tmp.path(), "bad.yaml", &format!("{rootfs}{base}"));
        let (code, err) = fails(
            imgbuild()
                .arg("--cache-dir")
                .arg(&cache)
                .arg("--out")
                .arg(tmp.path().join("out"))
                .arg(&r),
        );
        assert_ne!(code, 0);
        err
    };
    let err = build_err("rootfs: {suite: bookworm, architecture: amd64, mirror: 'http://127.0.0.1:9/debian'}\n");
    assert!(
        err.contains("the archive http://127.0.0.1:9/debian cannot be reached"),
        "{err}"
    );
    std::fs::create_dir_all(tmp.path().join("mirror/dists/bookworm")).unwrap();
    std::fs::write(tmp.path().join("mirror/dists/bookworm/Release"), "x").unwrap();
    let err = build_err(&format!(
        "rootfs: {{suite: bookwrm, architecture: amd64, mirror: 'file://{}/mirror'}}\n",
        tmp.path().display()
    ));
    assert!(err.contains("`bookwrm` is not in the archive"), "{err}");
    let err = build_err(
        "rootfs: {suite: bookworm, architecture: amd64, sources: {x: {uris: 'http://deb.debian.org/debian', suites: bookworm, key: nokey.asc}}}\n",
    );
    assert!(
        err.contains("rootfs.sources.x.key: cannot read") && err.contains("nokey.asc"),
        "{err}"
    );
    assert!(!tmp.path().join("out/bad.img").exists());
}

/// Two images of one package set under different names share the bootstrap and the
/// steps (they are keyed by what they install); each gets its own partition ID and name,
/// in the preseed's file and in what a step derived from it (as raspi-firmware's hook
/// writes the PARTUUID into cmdline.txt), with no placeholder left.
#[test]
#[ignore = "tier debian: bootstraps from the Debian archive, as root (mmdebstrap, chroot steps)"]
fn per_image_values_stay_out_of_the_shared_bootstrap_tier_debian() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "pre/etc/default/imgbuild-id.j2",
        "ROOTPART=PARTUUID={{ partitions.root.partuuid }}\nNAME={{ recipe.name }}\nCONSOLES={{ consoles }}\n",
    );
    write(
        tmp.path(),
        "first.yaml",
        "vars: {consoles: ttyS0}
rootfs: {suite: bookworm, architecture: amd64, variant: minbase, preseed: [pre]}
steps:
  - {name: derive, run: '. /etc/default/imgbuild-id; echo \"root=$ROOTPART\" > /etc/derived-cmdline'}
image:
  table: gpt
  partitions:
    root: {filesystem: ext4, mount: /}
output: {compression: none}
",
    );
    write(tmp.path(), "second.yaml", "name: second\nextends: first.yaml\n");
    let build = |name: &str| {
        let out = tmp.path().join(format!("out-{name}"));
        let o = ok(&mut build_into(&out, &tmp.path().join(format!("{name}.yaml"))));
        (
            out.join(format!("{name}.img")),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (first, _) = build("first");
    let (second, log) = build("second");
    assert!(
        log.lines()
            .any(|l| l.contains("bootstrap bookworm amd64 minbase") && l.contains(": cached")),
        "bootstrap not shared:\n{log}"
    );
    assert!(log.contains("step derive: cached"), "step not shared:\n{log}");
    let mut ids = Vec::new();
    for (img, name) in [(&first, "first"), (&second, "second")] {
        let partuuid = sfdisk(img).1[0].uuid.clone().unwrap().to_lowercase();
        let fs = root_fs(tmp.path(), img);
        assert_eq!(
            debugfs(&fs, "cat /etc/default/imgbuild-id"),
            format!("ROOTPART=PARTUUID={partuuid}\nNAME={name}\nCONSOLES=ttyS0\n")
        );
        assert_eq!(
            debugfs(&fs, "cat /etc/derived-cmdline"),
            format!("root=PARTUUID={partuuid}\n")
        );
        e2fsck_clean(&fs);
        ids.push(partuuid);
    }
    assert_ne!(ids[0], ids[1], "each image has its own partition ID");
}

/// A recipe with two `images:` builds their shared root once — the bootstrap and the
/// steps they have in common — also under `--no-cache`, then each image's own step on it:
/// the second on the root directory the first left there (an overlay; nothing unpacked),
/// giving the same image as a build of the second image alone.
#[test]
#[ignore = "tier debian: bootstraps from the Debian archive, as root (mmdebstrap, chroot steps)"]
fn images_of_one_recipe_share_their_bootstrap_and_common_steps_tier_debian() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write(
        tmp.path(),
        "pair.yaml",
        "rootfs: {suite: bookworm, architecture: amd64, variant: minbase}
steps:
  - {name: pair-quick, run: 'echo quick > /etc/quick'}
  - {name: shared, run: 'echo shared > /etc/shared; echo gone > /etc/gone'}
image:
  table: gpt
  partitions:
    root: {filesystem: ext4, mount: /}
output: {compression: none}
images:
  a:
    steps: [{name: own, run: 'echo a > /etc/own; echo a >> /etc/shared; ln /etc/quick /etc/quick-link'}]
  b:
    steps: [{name: own, run: 'echo b > /etc/own; echo b >> /etc/quick; rm /etc/gone'}]
  c: {}
",
    );
    let out = tmp.path().join("out");
    let o = ok(build_into(&out, &recipe).arg("--no-cache"));
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let cached = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains(": cached"))
            .count()
    };
    assert_eq!(
        cached("bootstrap bookworm amd64 minbase"),
        2,
        "the later images reuse the bootstrap:\n{log}"
    );
    assert_eq!(
        cached("step shared"),
        2,
        "the later images reuse the common step:\n{log}"
    );
    assert_eq!(cached("step own"), 0, "each image runs its own step:\n{log}");
    assert!(
        log.contains("steps: on the root an earlier image left at step shared"),
        "the second image unpacked the shared step's archive:\n{log}"
    );
    // A quick step is not stored, nor is the shared one when its root directory is left
    // for the second image; each image's last step is.
    let list = shared_cache_list();
    assert!(
        !list.contains("step pair-quick"),
        "a quick step's archive was kept:\n{list}"
    );
    assert!(
        log.contains("steps: root left at step shared for a later image (not packed)"),
        "the first image did not leave its root for the second:\n{log}"
    );
    assert!(
        list.matches("step own").count() >= 2,
        "each image's last step is stored:\n{list}"
    );
    let img = |name: &str| out.join(format!("pair-{name}/pair-{name}.img"));
    let fs = root_fs(tmp.path(), &img("a"));
    assert_eq!(debugfs(&fs, "cat /etc/shared"), "shared\na\n");
    assert_eq!(debugfs(&fs, "cat /etc/own"), "a\n");
    assert_eq!(debugfs(&fs, "cat /etc/gone"), "gone\n");
    e2fsck_clean(&fs);
    // The second image's changes stay its own: what it changed, removed or left.
    let fs = root_fs(tmp.path(), &img("b"));
    assert_eq!(debugfs(&fs, "cat /etc/shared"), "shared\n");
    assert_eq!(debugfs(&fs, "cat /etc/quick"), "quick\nb\n");
    assert_eq!(debugfs(&fs, "cat /etc/own"), "b\n");
    assert!(
        debugfs(&fs, "stat /etc/quick-link").is_empty() && debugfs(&fs, "stat /etc/gone").is_empty(),
        "the first image's link is in the second, or a removed file is back"
    );
    e2fsck_clean(&fs);
    // The third image has no steps of its own: its root is the one left at the shared step.
    let fs = root_fs(tmp.path(), &img("c"));
    assert_eq!(debugfs(&fs, "cat /etc/shared"), "shared\n");
    assert_eq!(debugfs(&fs, "cat /etc/quick"), "quick\n");
    assert!(
        debugfs(&fs, "stat /etc/own").is_empty(),
        "another image's step is in the third"
    );
    e2fsck_clean(&fs);
    // The same image as a build of the second one alone, which runs every step itself
    // (`--no-cache`) in a plain directory.
    let alone = write(
        tmp.path(),
        "pair-b-alone.yaml",
        &format!("name: pair\nextends: {}\nimages:\n  a: ~\n  c: ~\n", recipe.display()),
    );
    let out_alone = tmp.path().join("alone");
    ok(build_into(&out_alone, &alone).arg("--no-cache"));
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert!(
        bytes(&img("b")) == bytes(&out_alone.join("pair-b.img")),
        "the second image built beside the first differs from the same image built alone"
    );
}
