//! The CRAN mirror (`content: cran:`) against a CRAN-like repository served from a
//! temporary directory: real source packages (installed afterwards with R from the
//! mirror), fake Windows and macOS binaries, `PACKAGES` indexes with `MD5sum` fields.
//! Checks the dependency closure, the filtered indexes, the lock, the CRAN archive
//! fallback, offline re-fetches and the errors.

use crate::common::{fails, fetch_cmd as fetch, ok, write};
use crate::http_fixture::Server;
use sha2::Digest;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const ALL_TYPES: &[&str] = &[
    "source",
    "win.binary",
    "mac.binary.big-sur-x86_64",
    "mac.binary.big-sur-arm64",
];

/// Each type with its directory in the repository.
const TYPE_DIRS: &[(&str, &str)] = &[
    ("source", "src/contrib"),
    ("win.binary", "bin/windows/contrib/4.5"),
    ("mac.binary.big-sur-x86_64", "bin/macosx/big-sur-x86_64/contrib/4.5"),
    ("mac.binary.big-sur-arm64", "bin/macosx/big-sur-arm64/contrib/4.5"),
];

/// A package of the fixture repository.
struct Pkg {
    name: &'static str,
    version: &'static str,
    /// Dependency fields as PACKAGES and DESCRIPTION write them.
    deps: &'static [(&'static str, &'static str)],
    /// NAMESPACE lines besides `export(f…)`.
    imports: &'static str,
    /// The body of the package's one function.
    body: &'static str,
}

/// pkgA Imports pkgB and LinkingTo pkgE, pkgB Depends pkgC (>= 0.1) written on a
/// continuation line, pkgA Suggests pkgD (never mirrored).
const PKGS: &[Pkg] = &[
    Pkg {
        name: "pkgA",
        version: "1.0",
        deps: &[
            ("Imports", "pkgB, methods"),
            ("LinkingTo", "pkgE"),
            ("Suggests", "pkgD"),
        ],
        imports: "import(pkgB)\n",
        body: "paste(\"A\", fpkgB())",
    },
    Pkg {
        name: "pkgB",
        version: "0.2",
        deps: &[("Depends", "R (>= 3.5.0),\n    pkgC (>= 0.1)")],
        imports: "import(pkgC)\n",
        body: "paste(\"B\", fpkgC())",
    },
    Pkg {
        name: "pkgC",
        version: "0.1-1",
        deps: &[],
        imports: "",
        body: "\"C\"",
    },
    Pkg {
        name: "pkgD",
        version: "1.0",
        deps: &[("Imports", "utils")],
        imports: "",
        body: "\"D\"",
    },
    Pkg {
        name: "pkgE",
        version: "2.0",
        deps: &[],
        imports: "",
        body: "\"E\"",
    },
];

/// How the fixture repository deviates from a healthy one.
#[derive(Default)]
struct Faults {
    /// Packages left out of the `mac.binary.big-sur-x86_64` index.
    missing_from_mac_x86: &'static [&'static str],
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn md5(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// A source package as `R CMD build` would lay it out: `pkg/DESCRIPTION`,
/// `pkg/NAMESPACE`, `pkg/R/f.R`, gzipped tar.
fn source_tarball(p: &Pkg) -> Vec<u8> {
    let mut desc = format!(
        "Package: {}\nVersion: {}\nTitle: Fixture Package {0}\nDescription: A tiny package for the imgbuild CRAN test.\nLicense: MIT\nAuthor: imgbuild tests\nMaintainer: imgbuild tests <tests@example.org>\n",
        p.name, p.version
    );
    for (k, v) in p.deps {
        desc.push_str(&format!("{k}: {v}\n"));
    }
    let namespace = format!("export(f{})\n{}", p.name, p.imports);
    let code = format!("f{} <- function() {}\n", p.name, p.body);
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let entries = [
        ("DESCRIPTION".to_string(), desc),
        ("NAMESPACE".to_string(), namespace),
        (format!("R/f{}.R", p.name), code),
    ];
    for (path, body) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_size(body.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("{}/{path}", p.name), body.as_bytes())
            .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A package's stanza in a PACKAGES index.
fn stanza(p: &Pkg, file: &[u8], extra: &str) -> String {
    let mut s = format!("Package: {}\nVersion: {}\n", p.name, p.version);
    for (k, v) in p.deps {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s.push_str(&format!(
        "License: MIT\n{extra}MD5sum: {}\nNeedsCompilation: no\n",
        md5(file)
    ));
    s
}

/// Writes one type's directory: package files and its index (`PACKAGES` always,
/// `PACKAGES.gz` when `gz`). Returns package → stanza text.
fn write_type(dir: &Path, files: &[(&Pkg, String, Vec<u8>, String)], gz: bool) -> BTreeMap<String, String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut stanzas = BTreeMap::new();
    for (p, name, bytes, extra) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
        stanzas.insert(p.name.to_string(), stanza(p, bytes, extra));
    }
    // Upstream order is not alphabetical, so the filtered index must sort.
    let index: Vec<&str> = stanzas.values().rev().map(String::as_str).collect();
    let index = index.join("\n");
    std::fs::write(dir.join("PACKAGES"), &index).unwrap();
    if gz {
        std::fs::write(dir.join("PACKAGES.gz"), gzip(index.as_bytes())).unwrap();
    }
    stanzas
}

/// The fixture repository: its directory, server, and every index's stanzas by type.
struct Repo {
    tmp: tempfile::TempDir,
    server: Server,
    stanzas: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl Repo {
    fn root(&self) -> &Path {
        self.server.root()
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// A recipe mirroring `packages` for `types` from this repository.
    fn recipe(&self, packages: &[&str], types: &[&str]) -> PathBuf {
        write(
            self.dir(),
            "recipe.yaml",
            &format!(
                "name: cran-test\ncontent:\n  cran:\n    repo: {}\n    packages: [{}]\n    r_version: \"4.5\"\n    types: [{}]\n",
                self.server.base,
                packages.join(", "),
                types.join(", ")
            ),
        )
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }
}

/// Builds and serves the CRAN-like repository: source packages under `src/contrib`,
/// fake zip/tgz binaries for Windows and both macOS architectures (the arm64 index only
/// as uncompressed `PACKAGES`, so the fallback from `PACKAGES.gz` is exercised, and the
/// Windows pkgC stanza with a `File:` field).
fn cran_repo(faults: Faults) -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let mut stanzas = BTreeMap::new();
    let source: Vec<_> = PKGS
        .iter()
        .map(|p| {
            (
                p,
                format!("{}_{}.tar.gz", p.name, p.version),
                source_tarball(p),
                String::new(),
            )
        })
        .collect();
    stanzas.insert("source", write_type(&root.join("src/contrib"), &source, true));
    let win: Vec<_> = PKGS
        .iter()
        .map(|p| {
            let (name, extra) = if p.name == "pkgC" {
                let f = format!("{}_{}-win.zip", p.name, p.version);
                (f.clone(), format!("File: {f}\n"))
            } else {
                (format!("{}_{}.zip", p.name, p.version), String::new())
            };
            let blob = format!("PK\x03\x04 fake Windows build of {} {}", p.name, p.version);
            (p, name, blob.into_bytes(), extra)
        })
        .collect();
    stanzas.insert(
        "win.binary",
        write_type(&root.join("bin/windows/contrib/4.5"), &win, true),
    );
    for (kind, arch, gz) in [
        ("mac.binary.big-sur-x86_64", "big-sur-x86_64", true),
        ("mac.binary.big-sur-arm64", "big-sur-arm64", false),
    ] {
        let mac: Vec<_> = PKGS
            .iter()
            .filter(|p| !(arch == "big-sur-x86_64" && faults.missing_from_mac_x86.contains(&p.name)))
            .map(|p| {
                let blob = gzip(format!("fake {arch} build of {} {}", p.name, p.version).as_bytes());
                (p, format!("{}_{}.tgz", p.name, p.version), blob, String::new())
            })
            .collect();
        stanzas.insert(
            kind,
            write_type(&root.join(format!("bin/macosx/{arch}/contrib/4.5")), &mac, gz),
        );
    }
    let server = Server::start(&root);
    Repo { tmp, server, stanzas }
}

/// Every file under `dir`, relative path → SHA-256.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256(&std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The lock's CRAN files.
fn lock_files(recipe: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(recipe.with_extension("lock")).expect("the lock file");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["sources"]["cran"]["files"].as_array().expect("cran files").clone()
}

/// Rscript, or a failure saying how to get it: the mirror is only proven by R using it.
fn rscript() -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("Rscript").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "Rscript is missing: install r-base-core (the CRAN test installs the mirrored packages with R)"
    );
    Command::new("Rscript")
}

/// The expected filtered index of a type: the stanzas of `pkgs`, sorted by name.
fn expected_index(repo: &Repo, kind: &str, pkgs: &[&str]) -> String {
    let st = &repo.stanzas[kind];
    pkgs.iter().map(|p| st[*p].as_str()).collect::<Vec<_>>().join("\n")
}

const MIRRORED: &[&str] = &["pkgA", "pkgB", "pkgC", "pkgE"];

#[test]
fn cran_mirrors_the_dependency_closure_for_every_type_and_r_installs_it() {
    let repo = cran_repo(Faults::default());
    let s = &repo.server;
    // A busy index, a download cut short (resumed), a package file that redirects.
    s.fail("/src/contrib/PACKAGES.gz", 1);
    s.truncate("/src/contrib/pkgB_0.2.tar.gz", 1);
    std::fs::create_dir_all(repo.root().join("moved")).unwrap();
    std::fs::copy(
        repo.root().join("bin/windows/contrib/4.5/pkgA_1.0.zip"),
        repo.root().join("moved/pkgA_1.0.zip"),
    )
    .unwrap();
    s.redirect("/bin/windows/contrib/4.5/pkgA_1.0.zip", &s.url("moved/pkgA_1.0.zip"));
    let recipe = repo.recipe(&["pkgA"], ALL_TYPES);
    let out = repo.path("out");
    ok(&mut fetch(&recipe, &out, &repo.path("cache")));

    let cran = out.join("cran");
    let got: Vec<String> = tree(&cran).into_keys().collect();
    let mut want = Vec::new();
    for (dir, names) in [
        (
            "src/contrib",
            [
                "pkgA_1.0.tar.gz",
                "pkgB_0.2.tar.gz",
                "pkgC_0.1-1.tar.gz",
                "pkgE_2.0.tar.gz",
            ],
        ),
        (
            "bin/windows/contrib/4.5",
            ["pkgA_1.0.zip", "pkgB_0.2.zip", "pkgC_0.1-1-win.zip", "pkgE_2.0.zip"],
        ),
        (
            "bin/macosx/big-sur-x86_64/contrib/4.5",
            ["pkgA_1.0.tgz", "pkgB_0.2.tgz", "pkgC_0.1-1.tgz", "pkgE_2.0.tgz"],
        ),
        (
            "bin/macosx/big-sur-arm64/contrib/4.5",
            ["pkgA_1.0.tgz", "pkgB_0.2.tgz", "pkgC_0.1-1.tgz", "pkgE_2.0.tgz"],
        ),
    ] {
        for n in names.iter().chain(&["PACKAGES", "PACKAGES.gz"]) {
            want.push(format!("{dir}/{n}"));
        }
    }
    want.sort();
    assert_eq!(
        got, want,
        "the closure of pkgA (LinkingTo too), no pkgD (Suggests), every type"
    );

    for (kind, dir) in TYPE_DIRS {
        let index = std::fs::read_to_string(cran.join(dir).join("PACKAGES")).unwrap();
        assert_eq!(
            index,
            expected_index(&repo, kind, MIRRORED),
            "{kind}: the upstream stanzas of the mirrored packages, sorted"
        );
        assert!(!index.contains("pkgD_") && !index.contains("Package: pkgD"), "{index}");
        let gz = std::fs::read(cran.join(dir).join("PACKAGES.gz")).unwrap();
        assert_eq!(gunzip(&gz), index.as_bytes(), "{kind}: PACKAGES.gz");
    }
    assert!(
        std::fs::read_to_string(cran.join("bin/windows/contrib/4.5/PACKAGES"))
            .unwrap()
            .contains("File: pkgC_0.1-1-win.zip\n"),
        "a File: field is kept and honoured"
    );

    // The lock: every served file with its stanza from the upstream index, and not the
    // indexes themselves (CRAN rewrites them daily).
    let files = lock_files(&recipe);
    let served = tree(&out);
    for f in &files {
        let sha = f["sha256"].as_str().unwrap();
        assert_eq!(sha.len(), 64, "{f}");
        assert!(f["size"].as_u64().unwrap() > 0, "{f}");
        let p = f["path"].as_str().expect("every locked CRAN file is served");
        assert_eq!(served.get(p).map(String::as_str), Some(sha), "{p}");
        let (kind, _) = TYPE_DIRS
            .iter()
            .find(|(_, dir)| p.starts_with(&format!("cran/{dir}/")))
            .expect("a type's directory");
        let stanza = format!("{}\n", f["stanza"].as_str().expect("a stanza"));
        assert!(repo.stanzas[kind].values().any(|s| *s == stanza), "{kind}: {stanza}");
        let md5sum = md5(&std::fs::read(out.join(p)).unwrap());
        assert!(stanza.contains(&format!("MD5sum: {md5sum}\n")), "{p}: {stanza}");
    }
    assert_eq!(files.len(), 16, "{files:#?}");
    let redirected: Vec<_> = files.iter().filter(|f| f.get("redirect").is_some()).collect();
    assert_eq!(redirected.len(), 1, "{redirected:#?}");
    assert_eq!(
        redirected[0]["redirect"].as_str(),
        Some(s.url("moved/pkgA_1.0.zip").as_str())
    );

    let log = s.log();
    let count = |line: &str| log.iter().filter(|l| *l == line).count();
    assert_eq!(
        count("GET /src/contrib/PACKAGES.gz"),
        2,
        "the 503 was retried: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /src/contrib/pkgB_0.2.tar.gz range=bytes=")),
        "the cut download resumed: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("pkgD")),
        "Suggests are not fetched: {log:#?}"
    );
    assert_eq!(
        count("GET /bin/macosx/big-sur-arm64/contrib/4.5/PACKAGES"),
        1,
        "PACKAGES where there is no PACKAGES.gz: {log:#?}"
    );

    // R installs pkgA from the mirror, pulling pkgB and pkgC from it, and not pkgD.
    let lib = repo.path("Rlib");
    let stdout = r_install_pkg_a(&repo, &cran, &lib);
    assert!(stdout.contains("RESULT: A B C"), "{stdout}");
    assert!(stdout.contains("INSTALLED: pkgA pkgB pkgC pkgE \n"), "{stdout}");
    for p in MIRRORED {
        assert!(lib.join(p).join("DESCRIPTION").is_file(), "{p} installed");
    }
    assert!(!lib.join("pkgD").exists(), "pkgD is only suggested");
}

/// Installs pkgA with R from the mirror at `cran` into the new library `lib`; R's
/// output, with `RESULT:` (what pkgA computes) and `INSTALLED:` lines.
fn r_install_pkg_a(repo: &Repo, cran: &Path, lib: &Path) -> String {
    std::fs::create_dir_all(lib).unwrap();
    let script = format!(
        r#"lib <- "{lib}"
.libPaths(c(lib, .libPaths()))
options(warn = 1)
install.packages("pkgA", repos = "file://{repo}", type = "source", lib = lib)
library(pkgA, lib.loc = lib)
cat("RESULT:", fpkgA(), "\n")
cat("INSTALLED:", sort(rownames(installed.packages(lib.loc = lib))), "\n")
"#,
        lib = lib.display(),
        repo = cran.display()
    );
    let r = ok(rscript()
        .arg("--vanilla")
        .arg("-e")
        .arg(&script)
        .env("HOME", repo.dir())
        .env("R_LIBS_USER", lib));
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[test]
fn cran_offline_refetch_from_the_warm_cache_is_byte_identical() {
    let repo = cran_repo(Faults::default());
    let recipe = repo.recipe(&["pkgA"], ALL_TYPES);
    let cache = repo.path("cache");
    ok(&mut fetch(&recipe, &repo.path("out1"), &cache));
    let lock = std::fs::read(recipe.with_extension("lock")).unwrap();
    let requests = repo.server.log().len();
    ok(fetch(&recipe, &repo.path("out2"), &cache)
        .arg("--offline")
        .arg("--locked"));
    let (a, b) = (tree(&repo.path("out1")), tree(&repo.path("out2")));
    assert_eq!(tree(&repo.path("out1/cran")).len(), 4 * (4 + 2), "{a:#?}");
    assert_eq!(a, b, "same files, same bytes");
    assert_eq!(repo.server.log().len(), requests, "offline: not one request");
    assert_eq!(
        std::fs::read(recipe.with_extension("lock")).unwrap(),
        lock,
        "lock unchanged"
    );
}

#[test]
fn cran_offline_with_an_empty_cache_lists_the_missing_files() {
    let repo = cran_repo(Faults::default());
    let recipe = repo.recipe(&["pkgA"], &["source", "win.binary"]);
    ok(&mut fetch(&recipe, &repo.path("out1"), &repo.path("cache1")));
    let out = repo.path("out2");
    let (_, err) = fails(fetch(&recipe, &out, &repo.path("cache2")).arg("--offline"));
    assert!(err.contains("--offline: 8 files"), "{err}");
    for f in lock_files(&recipe) {
        let url = f["url"].as_str().unwrap();
        assert!(err.contains(url), "{url} is listed:\n{err}");
    }
    let (url, archive) = (
        repo.server.url("src/contrib/pkgB_0.2.tar.gz"),
        repo.server.url("src/contrib/Archive/pkgB/pkgB_0.2.tar.gz"),
    );
    assert!(err.contains(&format!("{url} or {archive} (")), "{err}");
    assert!(!out.join("cran").exists(), "nothing published");
}

#[test]
fn cran_unknown_package_is_an_error_naming_it_and_the_type() {
    let repo = cran_repo(Faults::default());
    let recipe = repo.recipe(&["pkgZ", "pkga"], &["source"]);
    let out = repo.path("out");
    let (_, err) = fails(&mut fetch(&recipe, &out, &repo.path("cache")));
    let index = repo.server.url("src/contrib/PACKAGES.gz");
    assert!(
        err.contains(&format!("CRAN type `source`: 2 packages are not in the index {index}")),
        "{err}"
    );
    assert!(err.contains("pkgZ (requested in content.cran.packages)"), "{err}");
    assert!(
        err.contains("pkga (requested in content.cran.packages); did you mean `pkgA`?"),
        "{err}"
    );
    assert!(!out.join("cran").exists());
    assert!(!recipe.with_extension("lock").exists(), "no lock for a failed fetch");
}

#[test]
fn cran_dependency_missing_from_a_binary_index_is_an_error_for_that_type() {
    let repo = cran_repo(Faults {
        missing_from_mac_x86: &["pkgC"],
    });
    let recipe = repo.recipe(&["pkgA"], &["source", "mac.binary.big-sur-x86_64"]);
    let out = repo.path("out");
    let (_, err) = fails(&mut fetch(&recipe, &out, &repo.path("cache")));
    let index = repo.server.url("bin/macosx/big-sur-x86_64/contrib/4.5/PACKAGES.gz");
    assert!(
        err.contains(&format!(
            "CRAN type `mac.binary.big-sur-x86_64`: 1 package is not in the index {index}"
        )),
        "{err}"
    );
    assert!(err.contains("pkgC (needed by pkgA → pkgB → pkgC)"), "{err}");
    assert!(
        err.contains("no `mac.binary.big-sur-x86_64` build of these for R 4.5"),
        "{err}"
    );
    assert!(
        err.contains("drop `mac.binary.big-sur-x86_64` from content.cran.types"),
        "{err}"
    );
    assert!(!out.join("cran").exists());
    assert!(
        !repo
            .server
            .log()
            .iter()
            .any(|l| l.ends_with(".tgz") || l.ends_with(".tar.gz")),
        "nothing downloaded before the closure is known: {:#?}",
        repo.server.log()
    );
}

#[test]
fn cran_md5_mismatch_fails_and_publishes_nothing() {
    let repo = cran_repo(Faults::default());
    let tarball = repo.root().join("src/contrib/pkgC_0.1-1.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tarball, bytes).unwrap();
    let recipe = repo.recipe(&["pkgA"], &["source"]);
    let out = repo.path("out");
    let (_, err) = fails(&mut fetch(&recipe, &out, &repo.path("cache")));
    let url = repo.server.url("src/contrib/pkgC_0.1-1.tar.gz");
    assert!(err.contains(&format!("{url}: MD5 mismatch")), "{err}");
    assert!(err.contains("CRAN source pkgC 0.1-1"), "{err}");
    assert!(!out.join("cran").exists(), "nothing published");
    assert!(!recipe.with_extension("lock").exists(), "no lock for a failed fetch");
}

#[test]
fn cran_missing_package_file_is_an_error_naming_the_url() {
    let repo = cran_repo(Faults::default());
    std::fs::remove_file(repo.root().join("src/contrib/pkgB_0.2.tar.gz")).unwrap();
    std::fs::remove_file(repo.root().join("bin/windows/contrib/4.5/pkgC_0.1-1-win.zip")).unwrap();
    let recipe = repo.recipe(&["pkgA"], &["source", "win.binary"]);
    let out = repo.path("out");
    let (_, err) = fails(&mut fetch(&recipe, &out, &repo.path("cache")));
    for path in [
        "src/contrib/Archive/pkgB/pkgB_0.2.tar.gz",
        "bin/windows/contrib/4.5/pkgC_0.1-1-win.zip",
    ] {
        let url = repo.server.url(path);
        assert!(err.contains(&format!("{url}: not found (HTTP 404)")), "{url}:\n{err}");
    }
    assert!(
        err.contains(&format!(
            "{} → {}",
            repo.server.url("src/contrib/pkgB_0.2.tar.gz"),
            repo.server.url("src/contrib/Archive/pkgB/pkgB_0.2.tar.gz")
        )),
        "says where it looked first: {err}"
    );
    assert!(!out.join("cran").exists(), "nothing published");
}

#[test]
fn cran_falls_back_to_the_archive_for_a_moved_source_package() {
    let repo = cran_repo(Faults::default());
    let archive = repo.root().join("src/contrib/Archive/pkgC");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::rename(
        repo.root().join("src/contrib/pkgC_0.1-1.tar.gz"),
        archive.join("pkgC_0.1-1.tar.gz"),
    )
    .unwrap();
    let recipe = repo.recipe(&["pkgA"], &["source"]);
    let out = repo.path("out");
    ok(&mut fetch(&recipe, &out, &repo.path("cache")));
    let served = std::fs::read(out.join("cran/src/contrib/pkgC_0.1-1.tar.gz")).unwrap();
    assert_eq!(served, std::fs::read(archive.join("pkgC_0.1-1.tar.gz")).unwrap());
    let files = lock_files(&recipe);
    let c = files
        .iter()
        .find(|f| f["path"].as_str() == Some("cran/src/contrib/pkgC_0.1-1.tar.gz"))
        .expect("pkgC locked");
    assert_eq!(
        c["url"].as_str(),
        Some(repo.server.url("src/contrib/Archive/pkgC/pkgC_0.1-1.tar.gz").as_str()),
        "the lock names the URL that served it"
    );
    let index = std::fs::read_to_string(out.join("cran/src/contrib/PACKAGES")).unwrap();
    assert_eq!(index, expected_index(&repo, "source", MIRRORED));
}

/// Rewrites a type's upstream index (`PACKAGES`, and `PACKAGES.gz` where there is one),
/// as CRAN does every day.
fn rewrite_index(repo: &Repo, dir: &str, edit: impl Fn(&str) -> String) {
    let d = repo.root().join(dir);
    let old = std::fs::read_to_string(d.join("PACKAGES")).unwrap();
    let new = edit(&old);
    assert_ne!(new, old, "{dir}: the edit changes the index");
    std::fs::write(d.join("PACKAGES"), &new).unwrap();
    if d.join("PACKAGES.gz").exists() {
        std::fs::write(d.join("PACKAGES.gz"), gzip(new.as_bytes())).unwrap();
    }
}

#[test]
fn cran_locked_build_with_a_cold_cache_survives_a_rewritten_upstream_index() {
    let repo = cran_repo(Faults::default());
    let recipe = repo.recipe(&["pkgA"], ALL_TYPES);
    ok(&mut fetch(&recipe, &repo.path("out1"), &repo.path("cache1")));
    let lock = std::fs::read(recipe.with_extension("lock")).unwrap();
    // The next day: an unmirrored package has a new version and a new package appeared.
    for (_, dir) in TYPE_DIRS {
        rewrite_index(&repo, dir, |text| {
            let bumped = text.replace("Package: pkgD\nVersion: 1.0\n", "Package: pkgD\nVersion: 1.1\n");
            format!(
                "{bumped}\nPackage: pkgN\nVersion: 0.1\nLicense: MIT\nMD5sum: {}\n",
                md5(b"new")
            )
        });
    }
    let before = repo.server.log().len();
    ok(fetch(&recipe, &repo.path("out2"), &repo.path("cache2")).arg("--locked"));
    assert_eq!(
        tree(&repo.path("out1")),
        tree(&repo.path("out2")),
        "the same files and indexes, byte for byte"
    );
    assert_eq!(
        std::fs::read(recipe.with_extension("lock")).unwrap(),
        lock,
        "lock unchanged"
    );
    let log = repo.server.log().split_off(before);
    assert!(
        !log.iter().any(|l| l.contains("PACKAGES")),
        "a locked build does not read upstream indexes: {log:#?}"
    );
    assert_eq!(log.len(), 16, "each locked file once: {log:#?}");
}

/// pkgC as released after the lock was written.
const PKG_C_NEXT: Pkg = Pkg {
    name: "pkgC",
    version: "0.2",
    deps: &[],
    imports: "",
    body: "\"C2\"",
};

#[test]
fn cran_locked_build_with_a_cold_cache_takes_a_superseded_source_from_the_archive() {
    let repo = cran_repo(Faults::default());
    let recipe = repo.recipe(&["pkgA"], &["source", "win.binary"]);
    ok(&mut fetch(&recipe, &repo.path("out1"), &repo.path("cache1")));
    // CRAN releases pkgC 0.2: the index lists it instead of 0.1-1, which moves to the
    // archive.
    let contrib = repo.root().join("src/contrib");
    let archived = contrib.join("Archive/pkgC/pkgC_0.1-1.tar.gz");
    std::fs::create_dir_all(archived.parent().unwrap()).unwrap();
    std::fs::rename(contrib.join("pkgC_0.1-1.tar.gz"), &archived).unwrap();
    let next = source_tarball(&PKG_C_NEXT);
    std::fs::write(contrib.join("pkgC_0.2.tar.gz"), &next).unwrap();
    let (old, new) = (&repo.stanzas["source"]["pkgC"], stanza(&PKG_C_NEXT, &next, ""));
    rewrite_index(&repo, "src/contrib", |text| text.replace(old.as_str(), &new));

    let out = repo.path("out2");
    ok(fetch(&recipe, &out, &repo.path("cache2")).arg("--locked"));
    assert_eq!(tree(&repo.path("out1")), tree(&out), "same files, same bytes");
    let log = repo.server.log();
    for line in [
        "GET /src/contrib/pkgC_0.1-1.tar.gz",
        "GET /src/contrib/Archive/pkgC/pkgC_0.1-1.tar.gz",
    ] {
        assert!(log.iter().any(|l| l == line), "{line}: {log:#?}");
    }
    let index = std::fs::read_to_string(out.join("cran/src/contrib/PACKAGES")).unwrap();
    assert!(index.contains("Package: pkgC\nVersion: 0.1-1\n"), "{index}");
    let stdout = r_install_pkg_a(&repo, &out.join("cran"), &repo.path("Rlib"));
    assert!(stdout.contains("RESULT: A B C"), "the locked pkgC, not 0.2: {stdout}");

    // Gone from the archive too: the error names both places it looked.
    std::fs::remove_file(&archived).unwrap();
    let (_, err) = fails(fetch(&recipe, &repo.path("out3"), &repo.path("cache3")).arg("--locked"));
    let (url, archive) = (
        repo.server.url("src/contrib/pkgC_0.1-1.tar.gz"),
        repo.server.url("src/contrib/Archive/pkgC/pkgC_0.1-1.tar.gz"),
    );
    assert!(err.contains(&format!("{url} → {archive}: ")), "{err}");
    assert!(err.contains(&format!("{archive}: not found (HTTP 404)")), "{err}");
    assert!(!repo.path("out3/cran").exists(), "nothing published");
}

#[test]
fn cran_lock_entry_from_an_older_imgbuild_is_resolved_again() {
    let repo = cran_repo(Faults::default());
    let recipe = repo.recipe(&["pkgA"], &["source"]);
    let cache = repo.path("cache");
    ok(&mut fetch(&recipe, &repo.path("out1"), &cache));
    let lock_path = recipe.with_extension("lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    // The format before stanzas were locked: the upstream index, and no stanzas.
    let mut v: serde_json::Value = serde_json::from_str(&lock).unwrap();
    let files = v["sources"]["cran"]["files"].as_array_mut().unwrap();
    for f in files.iter_mut() {
        f.as_object_mut().unwrap().remove("stanza");
    }
    let index = std::fs::read(repo.root().join("src/contrib/PACKAGES.gz")).unwrap();
    files.insert(
        0,
        serde_json::json!({
            "url": repo.server.url("src/contrib/PACKAGES.gz"),
            "size": index.len(),
            "sha256": sha256(&index),
        }),
    );
    std::fs::write(&lock_path, serde_json::to_string_pretty(&v).unwrap()).unwrap();

    let (code, err) = fails(fetch(&recipe, &repo.path("out2"), &cache).arg("--locked"));
    assert!(err.contains("(its entry was written by an older imgbuild)"), "{err}");
    assert!(
        err.contains("\nhint: run `imgbuild fetch --update`, or drop --locked"),
        "{err}"
    );
    assert_eq!(code, 2, "--locked refusing is the command line's choice: {err}");
    ok(&mut fetch(&recipe, &repo.path("out3"), &cache));
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        lock,
        "the lock as this version writes it"
    );
    assert_eq!(tree(&repo.path("out1")), tree(&repo.path("out3")));
}
