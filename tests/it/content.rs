//! Content sources against local HTTP fixtures (the installer hosts are unreachable
//! here): pinned and `latest` files, resumed and retried downloads, hash mismatches,
//! 404s, `--offline` with a cold cache, Git mirrors, and content inside a built image.

use crate::common::{fetch_cmd as fetch, git_in, *};
use crate::http_fixture::Server;
use sha2::Digest;
use std::path::Path;
use std::process::Command;

fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A fixture "installer host": an index page linking three R versions.
fn installer_site(root: &Path) -> Vec<u8> {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::create_dir_all(root.join("bin/windows/base")).unwrap();
    std::fs::write(root.join("bin/windows/base/R-4.10.0-win.exe"), &big).unwrap();
    std::fs::write(root.join("bin/windows/base/R-4.9.3-win.exe"), b"old").unwrap();
    std::fs::write(root.join("bin/windows/base/R-4.2.1-win.exe"), b"older").unwrap();
    std::fs::write(
        root.join("bin/windows/base/index.html"),
        "<a href=\"R-4.9.3-win.exe\">4.9.3</a> <a href='R-4.10.0-win.exe'>new</a> <a href=\"R-4.2.1-win.exe\">x</a>",
    )
    .unwrap();
    std::fs::write(root.join("python.pkg"), b"python installer").unwrap();
    big
}

#[test]
fn files_latest_resume_retry_and_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let big = installer_site(&site);
    let server = Server::start(&site);
    // The first answer breaks off halfway; the second must resume with a Range request.
    server.truncate("/bin/windows/base/R-4.10.0-win.exe", 1);
    // The pinned file answers 503 twice before it works.
    server.fail("/python.pkg", 2);
    let recipe = write(
        tmp.path(),
        "dl.yaml",
        &format!(
            "content:\n  files:\n    r-windows:\n      latest: {{index: \"{}\", pattern: 'R-(?P<version>[0-9.]+)-win\\.exe$'}}\n      path: R/windows\n    python-mac:\n      url: {}\n      sha256: \"{}\"\n      path: python\n",
            server.url("/bin/windows/base/"),
            server.url("/python.pkg"),
            sha(b"python installer")
        ),
    );
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    ok(&mut fetch(&recipe, &out, &cache));
    assert_eq!(
        std::fs::read(out.join("R/windows/R-4.10.0-win.exe")).unwrap(),
        big,
        "the highest version, whole"
    );
    assert_eq!(
        std::fs::read(out.join("python/python.pkg")).unwrap(),
        b"python installer"
    );
    let log = server.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /bin/windows/base/R-4.10.0-win.exe range=bytes=")),
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.starts_with("GET /python.pkg")).count(),
        3,
        "{log:?}"
    );
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("dl.lock")).unwrap()).unwrap();
    let r = &lock["sources"]["file/r-windows"]["files"][0];
    assert_eq!(r["sha256"], sha(&big));
    assert_eq!(r["size"], big.len() as u64);
    let page = std::fs::read_to_string(out.join("mirrors.html")).unwrap();
    assert!(page.contains("R/windows/R-4.10.0-win.exe"), "{page}");

    // A newer release upstream changes nothing while the lock holds...
    std::fs::write(site.join("bin/windows/base/R-4.11.0-win.exe"), b"newer").unwrap();
    let index = site.join("bin/windows/base/index.html");
    let mut text = std::fs::read_to_string(&index).unwrap();
    text.push_str("<a href=\"R-4.11.0-win.exe\">newer</a>");
    std::fs::write(&index, text).unwrap();
    let before = server.log().len();
    ok(&mut fetch(&recipe, &out, &cache));
    assert_eq!(server.log().len(), before, "a locked, cached fetch makes no request");
    assert!(out.join("R/windows/R-4.10.0-win.exe").is_file());
    // ...until --update.
    ok(fetch(&recipe, &out, &cache).arg("--update"));
    assert!(out.join("R/windows/R-4.11.0-win.exe").is_file());
    assert!(
        !out.join("R/windows/R-4.10.0-win.exe").exists(),
        "the old mirror was replaced"
    );
}

#[test]
fn bad_downloads_are_clear_errors_and_keep_the_old_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    installer_site(&site);
    let server = Server::start(&site);
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let good = write(
        tmp.path(),
        "good.yaml",
        &format!(
            "content:\n  files:\n    py:\n      url: {}\n      sha256: \"{}\"\n      path: python\n",
            server.url("/python.pkg"),
            sha(b"python installer")
        ),
    );
    ok(&mut fetch(&good, &out, &cache));
    let before = digests(&out);

    let mismatch = write(
        tmp.path(),
        "bad.yaml",
        &format!(
            "content:\n  files:\n    py:\n      url: {}\n      sha256: \"{}\"\n      path: python\n",
            server.url("/python.pkg"),
            "0".repeat(64)
        ),
    );
    let (code, err) = fails(&mut fetch(&mismatch, &out, &cache));
    assert_eq!(code, 1);
    assert!(err.contains("python.pkg: sha256 mismatch: expected 0000"), "{err}");
    assert_eq!(digests(&out), before, "the mirror is untouched");

    let missing = write(
        tmp.path(),
        "missing.yaml",
        &format!(
            "content:\n  files:\n    py:\n      url: {}\n      sha256: \"{}\"\n      path: python\n",
            server.url("/nope.pkg"),
            "0".repeat(64)
        ),
    );
    let (_, err) = fails(&mut fetch(&missing, &out, &cache));
    assert!(err.contains("/nope.pkg: not found (HTTP 404)"), "{err}");
    assert_eq!(digests(&out), before);
    assert!(!out.join(".imgbuild-new").exists(), "no half-written tree");

    // Offline with a cold cache: every missing file listed, nothing fetched.
    let n = server.log().len();
    let (code, err) = fails(fetch(&good, &tmp.path().join("out2"), &tmp.path().join("cold")).arg("--offline"));
    assert!(
        err.contains("--offline: 1 files (16 B) are not in the cache") && err.contains("/python.pkg"),
        "{err}"
    );
    assert!(err.contains("\nhint: run the same command without --offline"), "{err}");
    assert_eq!(code, 2, "{err}");
    assert_eq!(server.log().len(), n, "offline means offline");

    // A recipe error names file and field.
    let bad = write(
        tmp.path(),
        "nosha.yaml",
        "content:\n  files:\n    py:\n      url: https://example.org/x.exe\n      path: x\n",
    );
    let (code, err) = fails(&mut fetch(&bad, &out, &cache));
    assert_eq!(code, 2);
    assert!(err.contains("nosha.yaml: content.files.py.sha256: missing"), "{err}");
}

#[test]
fn git_repositories_are_mirrored_bare_at_the_locked_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("lesson");
    let git = |args: &[&str]| git_in(&repo, args);
    std::fs::create_dir_all(&repo).unwrap();
    git(&["init", "-q"]);
    std::fs::write(repo.join("README.md"), "lesson\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "first"]);
    git(&["tag", "v1"]);
    let recipe = write(
        tmp.path(),
        "git.yaml",
        &format!(
            "content:\n  git:\n    shell-lesson:\n      url: file://{}\n",
            repo.display()
        ),
    );
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    ok(&mut fetch(&recipe, &out, &cache));
    let first = String::from_utf8(git(&["rev-parse", "HEAD"]).stdout).unwrap();
    // A later upstream commit is not served until --update.
    std::fs::write(repo.join("README.md"), "changed\n").unwrap();
    git(&["commit", "-qam", "second"]);
    ok(&mut fetch(&recipe, &out, &cache));
    let bare = out.join("git/shell-lesson.git");
    let served =
        ok(Command::new("git")
            .arg("--git-dir")
            .arg(&bare)
            .args(["rev-parse", "refs/heads/main", "refs/tags/v1"]));
    let text = String::from_utf8(served.stdout).unwrap();
    assert!(text.starts_with(first.trim()), "{text} vs {first}");
    let clone = tmp.path().join("clone");
    ok(Command::new("git").arg("clone").arg("-q").arg(&bare).arg(&clone));
    assert_eq!(std::fs::read_to_string(clone.join("README.md")).unwrap(), "lesson\n");
}

#[test]
fn content_lands_in_the_image_web_root() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    installer_site(&site);
    let server = Server::start(&site);
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = write(
        tmp.path(),
        "img.yaml",
        &format!(
            "{ONE_PARTITION}content:
  files:
    py:
      url: {}
      sha256: \"{}\"
      path: python
",
            server.url("/python.pkg"),
            sha(b"python installer")
        ),
    );
    let out = tmp.path().join("out");
    ok(imgbuild()
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .arg(&recipe));
    let img = out.join("img.img");
    let (_, parts) = sfdisk(&img);
    let root = tmp.path().join("root.ext4");
    extract(&img, &parts[0], &root);
    e2fsck_clean(&root);
    assert_eq!(
        debugfs(&root, "cat /var/www/html/python/python.pkg"),
        "python installer"
    );
    assert!(debugfs(&root, "cat /var/www/html/mirrors.html").contains("python/python.pkg"));
    // Served to the web server's user, whatever the cache's private modes are.
    for path in ["/var/www/html/python/python.pkg", "/var/www/html/mirrors.html"] {
        assert!(
            debugfs(&root, &format!("stat {path}")).contains("Mode:  0644"),
            "{path}"
        );
    }
    assert!(debugfs(&root, "stat /var/www/html/python").contains("Mode:  0755"));
    assert!(
        tmp.path().join("img.lock").is_file(),
        "a build without a lock writes one"
    );
}

#[test]
fn files_with_a_url_are_downloaded_into_the_root_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let big = installer_site(&site);
    let server = Server::start(&site);
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = write(
        tmp.path(),
        "bin.yaml",
        &format!(
            "{ONE_PARTITION}files:
  /usr/bin/tool: {{url: \"{}\", sha256: \"{}\", mode: \"0755\"}}
  /usr/bin/newest:
    latest: {{index: \"{}\", pattern: 'R-(?P<version>[0-9.]+)-win\\.exe$'}}
    mode: \"0700\"
    owner: \"1000:1000\"
",
            server.url("/python.pkg"),
            sha(b"python installer"),
            server.url("/bin/windows/base/"),
        ),
    );
    let out = tmp.path().join("out");
    let build = |out: &Path| {
        ok(imgbuild()
            .arg("--out")
            .arg(out)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .arg(&recipe))
    };
    build(&out);
    let img = out.join("bin.img");
    let (_, parts) = sfdisk(&img);
    let root = tmp.path().join("root.ext4");
    extract(&img, &parts[0], &root);
    e2fsck_clean(&root);
    assert_eq!(debugfs(&root, "cat /usr/bin/tool"), "python installer");
    let tool = debugfs(&root, "stat /usr/bin/tool");
    assert!(tool.contains("Mode:  0755"), "{tool}");
    let newest = debugfs(&root, "stat /usr/bin/newest");
    assert!(
        newest.contains("Mode:  0700") && newest.contains("User:  1000"),
        "{newest}"
    );
    assert!(
        newest.contains(&format!("Size: {}", big.len())),
        "the newest release: {newest}"
    );
    assert!(
        !debugfs(&root, "ls /var/www").contains("html"),
        "downloads alone make no web root"
    );
    let lock = std::fs::read_to_string(tmp.path().join("bin.lock")).unwrap();
    assert!(
        lock.contains("rootfs/usr/bin/newest") && lock.contains("R-4.10.0-win.exe"),
        "{lock}"
    );

    // The lock pins what `latest` found: a newer upstream release changes nothing.
    std::fs::write(site.join("bin/windows/base/R-4.11.0-win.exe"), b"newer").unwrap();
    std::fs::write(
        site.join("bin/windows/base/index.html"),
        "<a href=\"R-4.11.0-win.exe\">4.11.0</a> <a href='R-4.10.0-win.exe'>4.10.0</a>",
    )
    .unwrap();
    let again = tmp.path().join("again");
    build(&again);
    extract(&again.join("bin.img"), &parts[0], &root);
    assert!(debugfs(&root, "stat /usr/bin/newest").contains(&format!("Size: {}", big.len())));
}

/// A server that never answers, one that stalls in the middle of a body and one that
/// drips a byte at a time: each download fails within `--net-deadline` (plus one
/// no-progress limit), naming the URL and the limits to raise, and nothing reaches the
/// output.
#[test]
fn stalled_servers_fail_within_the_deadline_naming_the_url() {
    use crate::http_fixture::Slow;
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("big.bin"), vec![7u8; 4096]).unwrap();
    let server = Server::start(&site);
    for (name, how) in [
        ("no-answer", Slow::NoAnswer),
        ("stall", Slow::StallMidBody),
        ("drip", Slow::Drip(300)),
    ] {
        let path = format!("/{name}/big.bin");
        std::fs::create_dir_all(site.join(name)).unwrap();
        std::fs::copy(site.join("big.bin"), site.join(name).join("big.bin")).unwrap();
        server.slow(&path, how);
        let recipe = write(
            tmp.path(),
            &format!("{name}.yaml"),
            &format!(
                "content:\n  files:\n    f:\n      url: {}\n      sha256: \"{}\"\n      path: f\n",
                server.url(&path),
                sha(&[7u8; 4096])
            ),
        );
        let out = tmp.path().join(format!("out-{name}"));
        let started = std::time::Instant::now();
        let (code, err) = fails(
            fetch(&recipe, &out, &tmp.path().join("cache"))
                .arg("--net-timeout")
                .arg("2")
                .arg("--net-deadline")
                .arg("5"),
        );
        let took = started.elapsed().as_secs_f64();
        assert_eq!(code, 1, "{name}: {err}");
        assert!(took < 12.0, "{name}: took {took:.1} s, the deadline is 5 s");
        assert!(err.contains(&server.url(&path)), "{name}: the URL is not named: {err}");
        assert!(
            err.contains("--net-deadline") || err.contains("--net-timeout"),
            "{name}: {err}"
        );
        assert!(!out.join("f/big.bin").exists(), "{name}: a half file was published");
    }
}
