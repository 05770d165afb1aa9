//! Test helpers shared by `tests` and `tests_read`: running fsck.fat and
//! mtools (failing with the Debian package name when one is missing),
//! deterministic test data, and a fixture that creates source files and
//! images in a temp dir.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::*;

pub const MIB: u64 = 1 << 20;

/// Runs a host tool; fails (never skips) with the Debian package to install
/// when it is missing.
pub fn host_tool(tool: &str, args: &[&str]) -> Output {
    let package = crate::process::programs::package_for(tool)
        .unwrap_or_else(|| panic!("`{tool}` is not in src/process/programs.tsv: add it there"));
    Command::new(tool)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .env(
            "PATH",
            format!("{}:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}); install the Debian package {package}"))
}

/// `fsck.fat -n -v` on a whole-file volume: must exit 0 and report nothing
/// wrong. Returns its output (which ends with the used/total clusters line).
pub fn fsck(img: &Path) -> String {
    let out = host_tool("fsck.fat", &["-n", "-v", img.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lower = text.to_lowercase();
    for bad in [
        "corrupt", "wrong", "differ", "orphan", "invalid", "bad ", "mismatch", "dirty",
    ] {
        assert!(!lower.contains(bad), "fsck.fat reported {bad:?}:\n{text}");
    }
    assert!(out.status.success(), "fsck.fat failed ({}):\n{text}", out.status);
    text
}

/// Copies a volume out of a larger image so fsck.fat (which has no offset
/// option) can check it.
pub fn fsck_region(img: &Path, offset: u64, size: u64) -> String {
    let data = fs_err::read(img).unwrap();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(tmp.path(), &data[offset as usize..(offset + size) as usize]).unwrap();
    fsck(tmp.path())
}

fn mtools_target(img: &Path, offset: u64, path: &str) -> (String, String) {
    (format!("{}@@{offset}", img.display()), format!("::/{path}"))
}

/// File contents as mtools reads them.
pub fn mtype(img: &Path, offset: u64, path: &str) -> Vec<u8> {
    let (i, p) = mtools_target(img, offset, path);
    let out = host_tool("mtype", &["-i", &i, &p]);
    assert!(
        out.status.success(),
        "mtype {p}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Names in a directory as mtools lists them (`mdir -b`, one full path per
/// line, directories with a trailing '/').
pub fn mdir(img: &Path, offset: u64, dir: &str) -> Vec<String> {
    let (i, p) = mtools_target(img, offset, dir);
    let out = host_tool("mdir", &["-b", "-i", &i, &p]);
    assert!(
        out.status.success(),
        "mdir {p}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = if dir.is_empty() {
        "::/".to_string()
    } else {
        format!("::/{dir}/")
    };
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift), so data errors show.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Test fixture: a temp dir for sources and images, plus expected contents.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub expect: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            nodes: Vec::new(),
            expect: Vec::new(),
        }
    }
    fn src(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("src-{name}"))
    }
    /// Adds a file whose source is a whole file on disk.
    pub fn file(&mut self, path: &str, data: Vec<u8>) {
        let src = self.src(&self.nodes.len().to_string());
        fs_err::write(&src, &data).unwrap();
        self.nodes.push(Node {
            path: path.into(),
            kind: NodeKind::File(DataRange {
                path: src,
                offset: 0,
                len: data.len() as u64,
            }),
            mtime: 1_700_000_000 + self.nodes.len() as i64,
        });
        self.expect.push((path.into(), data));
    }
    pub fn dir(&mut self, path: &str) {
        self.nodes.push(Node {
            path: path.into(),
            kind: NodeKind::Dir,
            mtime: 1_600_000_000,
        });
    }
    /// An image file of `len` bytes (sparse, zero).
    pub fn image(&self, name: &str, len: u64) -> (PathBuf, File) {
        let p = self.dir.path().join(name);
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(len).unwrap();
        (p, f)
    }
    /// Checks every expected file with mtools and with FatReader.
    pub fn verify(&self, img: &Path, offset: u64, size: u64) {
        for (path, data) in &self.expect {
            assert!(mtype(img, offset, path) == *data, "mtype {path}: contents differ");
        }
        let mut r = FatReader::open(File::open(img).unwrap(), offset, size).unwrap();
        for (path, data) in &self.expect {
            assert!(r.read_file(path).unwrap() == *data, "FatReader {path}: contents differ");
        }
    }
}

pub fn opts(label: &str, fat_type: Option<FatType>) -> FatOptions {
    FatOptions {
        label: label.into(),
        volume_id: 0x1234_ABCD,
        fat_type,
        oem_name: *b"imgbuild",
    }
}
