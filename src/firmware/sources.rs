//! The firmware's inputs from the archive, laid out as the build tools want them: a
//! source package's files under their own names beside its .dsc, and one file out of a
//! binary package.

use crate::fetch::debian_archive::Fetched;
use crate::process::Cmd;
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

/// What of a 3.0 (quilt) source package the build needs: the upstream tarball and
/// Debian's (the .dsc only repeats what the signed index already said, and the
/// upstream signature is checked by Debian's maintainer, whose upload the index signs).
pub fn wanted(name: &str) -> bool {
    (name.contains(".orig.tar.") || name.contains(".debian.tar.")) && !name.ends_with(".asc")
}

/// Unpacks a 3.0 (quilt) source package into `tree` as `dpkg-source -x` would: the
/// upstream tarball, Debian's `debian/` over it, then each patch of
/// `debian/patches/series` in order.
pub fn unpack_quilt(src: &Fetched, tree: &Path) -> Result<()> {
    let find = |part: &str| {
        src.files.iter().find(|f| f.name.contains(part)).ok_or_else(|| {
            anyhow!(
                "{} {}: the archive lists no {part}* file (not a 3.0 (quilt) package?)",
                src.package,
                src.version
            )
        })
    };
    let (orig, debian) = (find(".orig.tar.")?, find(".debian.tar.")?);
    if tree.exists() {
        fs_err::remove_dir_all(tree)?;
    }
    fs_err::create_dir_all(tree)?;
    // GNU tar refuses members that would land outside the directory (absolute, `..`).
    for (file, strip) in [(orig, "--strip-components=1"), (debian, "--strip-components=0")] {
        Cmd::new("tar")
            .arg("-xf")
            .arg(&file.path)
            .arg("-C")
            .arg(tree)
            .arg(strip)
            .arg("--no-same-owner")
            .run()
            .with_context(|| format!("unpacking {}", file.name))?;
    }
    let patches = tree.join("debian/patches");
    let series = fs_err::read_to_string(patches.join("series")).unwrap_or_default();
    for name in series_entries(&series)? {
        Cmd::new("patch")
            .arg("-d")
            .arg(tree)
            .args(["-p1", "--forward", "--batch", "--quiet", "-i"])
            .arg(patches.join(name))
            .run()
            .with_context(|| format!("applying Debian's patch {name}"))?;
    }
    Ok(())
}

/// The patch names of a quilt `series` file, in order (comments and `-p1` dropped).
pub fn series_entries(series: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for line in series.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name.starts_with('/') || name.split('/').any(|c| c == "..") {
            bail!("debian/patches/series names `{name}`, which leaves debian/patches");
        }
        if line.split_whitespace().skip(1).any(|o| o != "-p1") {
            bail!("debian/patches/series: `{line}` asks for a patch level other than -p1");
        }
        out.push(name);
    }
    Ok(out)
}

/// The file at `path` (relative, as in the package: `usr/lib/arm-trusted-firmware/rk3399/bl31.elf`)
/// out of the binary package `deb`, unpacked into `dir`.
pub fn deb_file(deb: &Fetched, path: &str, dir: &Path) -> Result<PathBuf> {
    let file = deb
        .files
        .first()
        .ok_or_else(|| anyhow!("{} {}: no .deb", deb.package, deb.version))?;
    if path.split('/').any(|c| c == "..") {
        bail!("`{path}` leaves the package");
    }
    let _ = fs_err::remove_dir_all(dir);
    Cmd::new("dpkg-deb")
        .arg("-x")
        .arg(&file.path)
        .arg(dir)
        .run()
        .with_context(|| format!("unpacking {}", file.name))?;
    let found = dir.join(path.trim_start_matches('/'));
    if !found.is_file() {
        bail!(NotInPackage {
            package: deb.package.clone(),
            version: deb.version.clone(),
            path: path.into(),
            deb: file.name.clone(),
        });
    }
    Ok(found)
}

/// A binary package without the file asked for.
#[derive(Debug, thiserror::Error)]
#[error("{package} {version} has no /{path}; check the file's path in the package (`dpkg-deb -c {deb}`)")]
pub struct NotInPackage {
    pub package: String,
    pub version: String,
    pub path: String,
    pub deb: String,
}

/// The names of the directories in `dir` that hold a `bl31.elf` (an ATF package's platforms), sorted (empty when
/// there is no such directory).
pub fn subdirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs_err::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("bl31.elf").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn series_entries_in_order_without_comments() {
        let s = "# Debian's\na.patch\n\nsub/b.diff -p1 # why\n";
        assert_eq!(super::series_entries(s).unwrap(), ["a.patch", "sub/b.diff"]);
        assert!(super::series_entries("../x.patch\n").is_err());
        assert!(super::series_entries("x.patch -p0\n").is_err());
        assert!(super::wanted("u-boot_2025.01.orig.tar.bz2") && !super::wanted("u-boot_2025.01-3.dsc"));
        assert!(!super::wanted("u-boot_2025.01.orig.tar.bz2.asc"));
    }
}
