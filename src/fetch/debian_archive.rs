//! Files from a Debian archive by package name and version, trusted only through the
//! archive's signature: `InRelease` must verify with `gpgv` against the given keyring; it
//! names the index (`Sources.xz`, `Packages.xz`) with its size and SHA-256; the index names
//! each file of the package with its size and SHA-256; every download is checked against
//! the line that named it. No URL is trusted for what it serves. (The firmware stage's
//! sources: Debian's u-boot source package and arm-trusted-firmware's bl31.)

use super::http::{Client, Expect};
use super::store::Store;
use crate::process::Cmd;
use anyhow::{Context, Result, anyhow, bail};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Debian's archive keys, as debian-archive-keyring installs them (what mmdebstrap trusts).
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Where to look, and whose signature counts.
#[derive(Debug, Clone)]
pub struct Archive {
    /// `http://deb.debian.org/debian`.
    pub base: String,
    pub suite: String,
    pub component: String,
    /// An OpenPGP keyring (`/usr/share/keyrings/debian-archive-keyring.gpg`).
    pub keyring: PathBuf,
}

/// One file a verified index named, now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
}

/// A package found in a verified index, and its files, downloaded and checked.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub package: String,
    pub version: String,
    pub files: Vec<ArchiveFile>,
}

impl Archive {
    fn dists(&self) -> String {
        format!("{}/dists/{}", self.base.trim_end_matches('/'), self.suite)
    }

    /// The Release text of `InRelease`, once `gpgv` accepted its signature.
    pub fn release(&self, client: &Client, work: &Path) -> Result<String> {
        let url = format!("{}/InRelease", self.dists());
        let (bytes, _) = client.get(&url).with_context(|| format!("fetching {url}"))?;
        let signed = work.join("InRelease");
        let plain = work.join("Release");
        fs_err::write(&signed, bytes)?;
        let _ = fs_err::remove_file(&plain);
        Cmd::new("gpgv")
            .arg("--keyring")
            .arg(&self.keyring)
            .arg("--output")
            .arg(&plain)
            .arg(&signed)
            .run()
            .map_err(|e| {
                anyhow!(
                    "{url}: its signature does not verify with the keyring {} ({e}); the archive or the keyring is not the one the recipe names",
                    self.keyring.display()
                )
            })?;
        Ok(fs_err::read_to_string(&plain)?)
    }

    /// Downloads the verified index at `path` under the suite (`main/source/Sources.xz`)
    /// and returns it decompressed.
    pub fn index(&self, client: &Client, store: &Store, release: &str, path: &str) -> Result<Vec<u8>> {
        let (sha256, size) = release_entry(release, path).ok_or_else(|| {
            anyhow!(
                "{}/InRelease lists no `{path}` (component or architecture missing?)",
                self.dists()
            )
        })?;
        let url = format!("{}/{path}", self.dists());
        let got = verified(client, store, &url, sha256, size)?;
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new(fs_err::File::open(store.path(&got.sha256))?)
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {url}"))?;
        Ok(out)
    }

    /// The source package `package` at `version`: the files of it the index lists that
    /// `want` takes (by name), each checked against the index.
    pub fn source(
        &self,
        client: &Client,
        store: &Store,
        work: &Path,
        (package, version): (&str, &str),
        want: &dyn Fn(&str) -> bool,
    ) -> Result<Fetched> {
        let release = self.release(client, work)?;
        let sources = self.index(
            client,
            store,
            &release,
            &format!("{}/source/Sources.xz", self.component),
        )?;
        let p = find(&sources, "Package", package, version)?;
        let dir = p
            .get("Directory")
            .ok_or_else(|| anyhow!("Sources: {package} {version} has no Directory"))?;
        let listed = checksums(p.get("Checksums-Sha256").unwrap_or_default())
            .with_context(|| format!("Sources: {package} {version}: Checksums-Sha256"))?;
        let files = listed
            .into_iter()
            .filter(|(_, _, name)| want(name))
            .map(|(sha256, size, name)| self.pool_file(client, store, &format!("{dir}/{name}"), &name, sha256, size))
            .collect::<Result<Vec<_>>>()?;
        Ok(Fetched {
            package: package.into(),
            version: version.into(),
            files,
        })
    }

    /// The binary package `package` at `version` for `arch` (its .deb).
    pub fn binary(
        &self,
        client: &Client,
        store: &Store,
        work: &Path,
        package: &str,
        version: &str,
        arch: &str,
    ) -> Result<Fetched> {
        let release = self.release(client, work)?;
        let packages = self.index(
            client,
            store,
            &release,
            &format!("{}/binary-{arch}/Packages.xz", self.component),
        )?;
        let p = find(&packages, "Package", package, version)?;
        let field = |k: &str| {
            p.get(k)
                .map(str::to_string)
                .ok_or_else(|| anyhow!("Packages: {package} {version} has no {k}"))
        };
        let filename = field("Filename")?;
        let size: u64 = field("Size")?.parse().context("Packages: Size")?;
        let name = filename.rsplit('/').next().unwrap_or_default().to_string();
        check_name(&name)?;
        let file = self.pool_file(client, store, &filename, &name, field("SHA256")?, size)?;
        Ok(Fetched {
            package: package.into(),
            version: version.into(),
            files: vec![file],
        })
    }

    fn pool_file(
        &self,
        client: &Client,
        store: &Store,
        rel: &str,
        name: &str,
        sha256: String,
        size: u64,
    ) -> Result<ArchiveFile> {
        check_name(name)?;
        if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
            bail!("the index names `{rel}`, which leaves the archive");
        }
        let url = format!("{}/{rel}", self.base.trim_end_matches('/'));
        let got = verified(client, store, &url, sha256, size)?;
        Ok(ArchiveFile {
            name: name.into(),
            sha256: got.sha256.clone(),
            size: got.size,
            path: store.path(&got.sha256),
        })
    }
}

/// Downloads `url` into the store, refused unless it has the size and SHA-256 a verified
/// index gave.
fn verified(client: &Client, store: &Store, url: &str, sha256: String, size: u64) -> Result<super::http::Fetched> {
    let expect = Expect {
        sha256: Some(sha256),
        size: Some(size),
        md5: None,
    };
    Ok(client.download(store, url, &expect)?)
}

/// A file name from an index: one path component, nothing that escapes a directory.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        bail!("the index names a file `{name}`, which is not a plain file name");
    }
    Ok(())
}

/// The SHA-256 and size the Release text lists for `path`.
pub fn release_entry(release: &str, path: &str) -> Option<(String, u64)> {
    let mut in_sha256 = false;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if in_sha256
            && let [sha, size, p] = line.split_whitespace().collect::<Vec<_>>()[..]
            && p == path
        {
            return Some((sha.to_string(), size.parse().ok()?));
        }
    }
    None
}

/// `Checksums-Sha256`'s lines: (sha256, size, name).
pub fn checksums(field: &str) -> Result<Vec<(String, u64, String)>> {
    field
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [sha, size, name] if sha.len() == 64 => Ok((sha.to_string(), size.parse()?, name.to_string())),
            _ => bail!("`{l}` is not `SHA256 SIZE NAME`"),
        })
        .collect()
}

/// A package or version the verified index does not list: the recipe names something the
/// archive does not have (a user's error, which names what there is).
#[derive(Debug, thiserror::Error)]
pub enum NotListed {
    #[error("the archive's index has no package `{name}`; check the name and the suite")]
    Package { name: String },
    #[error("the archive has {name} {} but not {version}; set the version to one of those", .versions.join(", "))]
    Version {
        name: String,
        version: String,
        versions: Vec<String>,
    },
}

/// The paragraph of a deb822 index whose `key` is `name` and whose Version is `version`;
/// [`NotListed`], naming the versions the index has, when there is none.
pub fn find(index: &[u8], key: &str, name: &str, version: &str) -> Result<deb822_fast::Paragraph> {
    let mut versions = Vec::new();
    for p in deb822_fast::Deb822::iter_paragraphs_from_reader(std::io::BufReader::new(index)) {
        let p = p.map_err(|e| anyhow!("reading the index: {e}"))?;
        if p.get(key) != Some(name) {
            continue;
        }
        let v = p.get("Version").unwrap_or_default().to_string();
        if v == version {
            return Ok(p);
        }
        versions.push(v);
    }
    if versions.is_empty() {
        bail!(NotListed::Package { name: name.into() })
    }
    bail!(NotListed::Version {
        name: name.into(),
        version: version.into(),
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "Origin: Debian\nSuite: stable\nMD5Sum:\n 1d209ffe1717ad7bc81d6bae1a858725 10538456 main/source/Sources.xz\nSHA256:\n 5b9a010e6730e4019e90fcb81c92ad59f061955890d691b7d111637d3f8d3dab  9614816 main/binary-arm64/Packages.xz\n b449439c113900c8607c1005f7a1ec0704d0f3b7376ba312b2150c79e4e4e06c 10538456 main/source/Sources.xz\n";

    #[test]
    fn release_entries_come_from_the_sha256_list_only() {
        let (sha, size) = release_entry(RELEASE, "main/source/Sources.xz").unwrap();
        assert_eq!(sha, "b449439c113900c8607c1005f7a1ec0704d0f3b7376ba312b2150c79e4e4e06c");
        assert_eq!(size, 10_538_456);
        assert!(release_entry(RELEASE, "contrib/source/Sources.xz").is_none());
    }

    #[test]
    fn finds_the_version_asked_for_or_says_which_there_are() {
        let index = b"Package: u-boot\nVersion: 2025.01-3+deb13u1\nDirectory: pool/main/u/u-boot\nChecksums-Sha256:\n 21dbfd7fe193b127636814284b109382589eaa544a159d4b73b1cdae20a0094f 4329 u-boot_2025.01-3+deb13u1.dsc\n cdef7d507c93f1bbd9f015ea9bc21fa074268481405501945abc6f854d5b686f 32890299 u-boot_2025.01.orig.tar.bz2\n\nPackage: other\nVersion: 1\n";
        let p = find(index, "Package", "u-boot", "2025.01-3+deb13u1").unwrap();
        let files = checksums(p.get("Checksums-Sha256").unwrap()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].1, 32_890_299);
        assert_eq!(files[1].2, "u-boot_2025.01.orig.tar.bz2");
        let e = find(index, "Package", "u-boot", "2024.01").unwrap_err().to_string();
        assert!(e.contains("u-boot 2025.01-3+deb13u1 but not 2024.01"), "{e}");
        assert!(
            find(index, "Package", "nope", "1")
                .unwrap_err()
                .to_string()
                .contains("no package `nope`")
        );
        assert!(checksums(" abc 1 x").is_err());
        assert!(check_name("../x").is_err() && check_name("a.dsc").is_ok());
    }
}
