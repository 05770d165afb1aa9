//! Files from a Debian archive are trusted only through its signed InRelease: a local
//! archive signed with a throw-away key, served over HTTP, checked with the real gpgv.

use crate::common::*;
use crate::http_fixture::Server;
use imgbuild::fetch::debian_archive::Archive;
use imgbuild::fetch::http::Client;
use imgbuild::fetch::store::Store;
use sha2::{Digest, Sha256};
use std::path::Path;

fn gpg(home: &Path) -> std::process::Command {
    let mut c = tool("gpg");
    c.arg("--homedir")
        .arg(home)
        .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]);
    c
}

/// A key in its own home, exported as the keyring gpgv reads.
fn key(dir: &Path, name: &str) -> std::path::PathBuf {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    ok(gpg(&home).args([
        "--quick-gen-key",
        &format!("{name} <{name}@example.org>"),
        "ed25519",
        "sign",
        "never",
    ]));
    let out = ok(gpg(&home).arg("--export"));
    let keyring = dir.join(format!("{name}.gpg"));
    std::fs::write(&keyring, out.stdout).unwrap();
    home
}

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// dists/test/InRelease → main/source/Sources.xz → pool/main/h/hello/{dsc, tarball}.
fn archive(root: &Path, home: &Path) {
    let pool = root.join("pool/main/h/hello");
    std::fs::create_dir_all(&pool).unwrap();
    let files = [
        ("hello_1.0-1.dsc", b"Format: 3.0 (quilt)\nSource: hello\n".to_vec()),
        ("hello_1.0.orig.tar.gz", vec![7u8; 3000]),
    ];
    let mut listed = String::new();
    for (name, body) in &files {
        std::fs::write(pool.join(name), body).unwrap();
        listed.push_str(&format!(" {} {} {name}\n", sha(body), body.len()));
    }
    let sources = format!(
        "Package: hello\nVersion: 0.9-1\nDirectory: pool/main/h/hello\n\nPackage: hello\nVersion: 1.0-1\nDirectory: pool/main/h/hello\nChecksums-Sha256:\n{listed}"
    );
    let dists = root.join("dists/test");
    std::fs::create_dir_all(dists.join("main/source")).unwrap();
    let plain = dists.join("main/source/Sources");
    std::fs::write(&plain, sources).unwrap();
    ok(tool("xz").arg("-kf").arg(&plain));
    let xz = std::fs::read(dists.join("main/source/Sources.xz")).unwrap();
    let release = format!(
        "Suite: test\nSHA256:\n {} {} main/source/Sources.xz\n",
        sha(&xz),
        xz.len()
    );
    std::fs::write(dists.join("Release"), release).unwrap();
    ok(gpg(home)
        .arg("--clearsign")
        .arg("-o")
        .arg(dists.join("InRelease"))
        .arg(dists.join("Release")));
}

#[test]
fn a_source_package_is_fetched_only_through_the_signed_index() {
    tool("gpgv");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = key(dir, "archive");
    key(dir, "stranger");
    let root = dir.join("www");
    archive(&root, &home);
    let server = Server::start(&root);
    let store = Store::open(&dir.join("cache")).unwrap();
    let client = Client::new(vec![]);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let at = |keyring: &str| Archive {
        base: server.url("").trim_end_matches('/').to_string(),
        suite: "test".into(),
        component: "main".into(),
        keyring: dir.join(keyring),
    };

    let only_tarball = at("archive.gpg")
        .source(&client, &store, &work, ("hello", "1.0-1"), &|n| n.ends_with(".tar.gz"))
        .unwrap();
    assert_eq!(only_tarball.files.len(), 1, "only the files asked for are fetched");
    let got = at("archive.gpg")
        .source(&client, &store, &work, ("hello", "1.0-1"), &|_| true)
        .unwrap();
    assert_eq!(got.files.len(), 2);
    assert_eq!(std::fs::read(&got.files[1].path).unwrap(), vec![7u8; 3000]);

    let e = at("stranger.gpg")
        .source(&client, &store, &work, ("hello", "1.0-1"), &|_| true)
        .unwrap_err();
    assert!(format!("{e:#}").contains("does not verify with the keyring"), "{e:#}");

    let e = at("archive.gpg")
        .source(&client, &store, &work, ("hello", "2.0-1"), &|_| true)
        .unwrap_err();
    assert!(format!("{e:#}").contains("hello 0.9-1, 1.0-1 but not 2.0-1"), "{e:#}");

    // A file changed on the server after the index was signed: refused.
    std::fs::write(
        root.join("pool/main/h/hello/hello_1.0-1.dsc"),
        b"Format: 3.0 (quilt)\nSource: evil\n",
    )
    .unwrap();
    let fresh = Store::open(&dir.join("cache2")).unwrap();
    let e = at("archive.gpg")
        .source(&client, &fresh, &work, ("hello", "1.0-1"), &|_| true)
        .unwrap_err();
    assert!(format!("{e:#}").contains("mismatch"), "{e:#}");
}
