//! The PyPI mirror against real PyPI and real pip: the closure mirrored for several
//! platforms and Python versions must let `pip download --platform ...` and
//! `pip install` work from the mirror alone; resolver failures name the package.

use crate::common::{digests, fails, fetch_cmd as fetch, ok, walk};
use std::collections::BTreeSet;
use std::process::Command;

/// The build host's `python3` version, `X.Y` (pip in the tests runs on it).
fn host_python() -> String {
    let out = ok(Command::new("python3").args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// pip's `--platform` tags for each recipe platform (pip does not widen manylinux tags).
fn pip_platforms(name: &str) -> Vec<String> {
    let many = |arch: &str| {
        let mut v: Vec<String> = (17..=28).rev().map(|m| format!("manylinux_2_{m}_{arch}")).collect();
        v.push(format!("manylinux2014_{arch}"));
        v
    };
    match name {
        "win_amd64" => vec!["win_amd64".into()],
        "macosx_arm64" => vec!["macosx_14_0_arm64".into()],
        "macosx_x86_64" => vec!["macosx_14_0_x86_64".into()],
        "manylinux_x86_64" => many("x86_64"),
        "manylinux_aarch64" => many("aarch64"),
        other => panic!("no pip tags for {other}"),
    }
}

fn pip() -> Command {
    let mut c = Command::new("python3");
    c.args(["-m", "pip"])
        .env_remove("PIP_FIND_LINKS")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    c
}

const PLATFORMS: &[&str] = &[
    "win_amd64",
    "macosx_arm64",
    "macosx_x86_64",
    "manylinux_x86_64",
    "manylinux_aarch64",
];

#[test]
#[ignore = "tier pypi: resolves and downloads from PyPI (uv, pip)"]
fn mirrors_the_closure_for_every_platform_and_pip_installs_from_it_tier_pypi() {
    let dir = tempfile::tempdir().unwrap();
    let py = host_python();
    let other = if py == "3.12" { "3.13" } else { "3.12" };
    let recipe = dir.path().join("mirror.yaml");
    std::fs::write(
        &recipe,
        format!(
            "name: mirror\ncontent:\n  pypi:\n    packages: [requests, pyyaml]\n    python: [\"{py}\", \"{other}\"]\n    platforms: [{}]\n",
            PLATFORMS.join(", ")
        ),
    )
    .unwrap();
    let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
    ok(&mut fetch(&recipe, &out, &cache));
    let index = format!("file://{}/pypi/", out.display());

    // Each file once: names and contents unique.
    let wheels: Vec<_> = walk(&out.join("pypi"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    let names: BTreeSet<_> = wheels.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
    assert_eq!(names.len(), wheels.len(), "a wheel stored twice");
    let page = std::fs::read_to_string(out.join("pypi/pyyaml/index.html")).unwrap();
    assert!(page.contains("#sha256="), "{page}");

    // The closure is complete for every platform and Python version.
    for version in [py.as_str(), other] {
        for plat in PLATFORMS {
            let dl = dir.path().join(format!("dl-{version}-{plat}"));
            let mut c = pip();
            c.args([
                "download",
                "--no-cache-dir",
                "--only-binary",
                ":all:",
                "--python-version",
                version,
            ]);
            for tag in pip_platforms(plat) {
                c.args(["--platform", &tag]);
            }
            c.args(["--index-url", &index, "-d"])
                .arg(&dl)
                .args(["requests", "pyyaml"]);
            ok(&mut c);
            let got: Vec<_> = std::fs::read_dir(&dl)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(
                got.iter().any(|n| n.to_string_lossy().starts_with("pyyaml-")),
                "{plat} {version}: {got:?}"
            );
        }
    }

    // And installs into a virtual environment of the build host.
    let venv = dir.path().join("venv");
    ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    ok(Command::new(venv.join("bin/pip")).env_remove("PIP_FIND_LINKS").args([
        "install",
        "--no-cache-dir",
        "--index-url",
        &index,
        "requests",
        "pyyaml",
    ]));
    ok(Command::new(venv.join("bin/python")).args(["-c", "import requests, yaml; print(yaml.safe_load('a: 1'))"]));

    // The lock pins it: an offline re-fetch from the cache gives the same tree.
    let lock = std::fs::read_to_string(dir.path().join("mirror.lock")).unwrap();
    assert!(lock.contains("\"sha256\""), "{lock}");
    let again = dir.path().join("again");
    ok(fetch(&recipe, &again, &cache).arg("--offline"));
    assert_eq!(digests(&out), digests(&again), "the locked tree differs");
}

#[test]
#[ignore = "tier pypi: resolves and downloads from PyPI (uv, pip)"]
fn resolver_failures_name_the_package_and_platform_tier_pypi() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // docopt is published as a source distribution only.
    let recipe = dir.path().join("nowheel.yaml");
    std::fs::write(
        &recipe,
        "name: nowheel\ncontent:\n  pypi:\n    packages: [docopt]\n    python: [\"3.12\"]\n    platforms: [win_amd64]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (code, err) = fails(&mut fetch(&recipe, &out, &cache));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("docopt") && err.contains("Python 3.12 on win_amd64"),
        "{err}"
    );
    assert!(!out.join("pypi").exists(), "nothing published");
    assert!(!dir.path().join("nowheel.lock").exists(), "no lock written");

    let recipe = dir.path().join("conflict.yaml");
    std::fs::write(
        &recipe,
        "name: conflict\ncontent:\n  pypi:\n    packages: [\"requests==2.31.0\", \"urllib3<1.21\"]\n    python: [\"3.12\"]\n    platforms: [manylinux_x86_64]\n",
    )
    .unwrap();
    let (_, err) = fails(&mut fetch(&recipe, &out, &cache));
    assert!(
        err.contains("requests") && err.contains("urllib3") && err.contains("manylinux_x86_64"),
        "{err}"
    );
}

#[test]
#[ignore = "tier pypi: resolves and downloads from PyPI (uv, pip)"]
fn sdists_are_mirrored_beside_the_wheels_when_asked_tier_pypi() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("sdists.yaml");
    std::fs::write(
        &recipe,
        "name: sdists\ncontent:\n  pypi:\n    packages: [pyyaml]\n    sdists: true\n    python: [\"3.12\"]\n    platforms: [win_amd64]\n",
    )
    .unwrap();
    let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
    ok(&mut fetch(&recipe, &out, &cache));
    let files: Vec<String> = std::fs::read_dir(out.join("pypi/pyyaml"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let sdist = files
        .iter()
        .find(|n| n.to_ascii_lowercase().starts_with("pyyaml-") && n.ends_with(".tar.gz"))
        .unwrap_or_else(|| panic!("no sdist: {files:?}"));
    assert!(files.iter().any(|n| n.ends_with("win_amd64.whl")), "{files:?}");
    let page = std::fs::read_to_string(out.join("pypi/pyyaml/index.html")).unwrap();
    let link = page.lines().find(|l| l.contains(sdist.as_str())).unwrap_or_default();
    assert!(
        link.contains("#sha256=") && link.contains("data-requires-python"),
        "{page}"
    );
}

/// A PyPI mirror on the LAN (here: imgbuild's own mirror, served over HTTP) stands in
/// for pypi.org through `content.fetch_from`: uv resolves against it, the files come from
/// it, and the lock and the new mirror still name only upstream hosts.
#[test]
#[ignore = "tier pypi: resolves and downloads from PyPI (uv, pip)"]
fn a_local_pypi_mirror_stands_in_for_pypi_through_fetch_from_tier_pypi() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = dir.path().join("upstream.yaml");
    std::fs::write(
        &upstream,
        "name: upstream\ncontent:\n  pypi:\n    packages: [six]\n    python: [\"3.12\"]\n    platforms: [manylinux_x86_64]\n",
    )
    .unwrap();
    let (lan, cache) = (dir.path().join("lan"), dir.path().join("cache"));
    ok(&mut fetch(&upstream, &lan, &cache));
    let srv = crate::http_fixture::Server::start(&lan);
    let recipe = dir.path().join("via.yaml");
    std::fs::write(
        &recipe,
        format!(
            "name: via\ncontent:\n  pypi:\n    packages: [six]\n    python: [\"3.12\"]\n    platforms: [manylinux_x86_64]\n  fetch_from:\n    \"https://pypi.org/simple/\": \"{}\"\n",
            srv.url("pypi/")
        ),
    )
    .unwrap();
    // A cache of its own: every file must come from the LAN mirror.
    let out = dir.path().join("out");
    ok(&mut fetch(&recipe, &out, &dir.path().join("cache2")));
    assert!(
        srv.log().iter().any(|l| l.contains("/pypi/six/") && l.contains(".whl")),
        "{:?}",
        srv.log()
    );
    let lock = std::fs::read_to_string(dir.path().join("via.lock")).unwrap();
    assert!(lock.contains("https://pypi.org/simple/six/"), "{lock}");
    assert!(!lock.contains(&srv.base), "the lock names the LAN mirror: {lock}");
    let wheels: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
}
