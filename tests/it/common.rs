//! Helpers shared by the integration tests: running imgbuild and host tools, making
//! root-file-system fixtures, reading partitions back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The image's partition as sfdisk reports it.
#[derive(Debug, Clone)]
pub struct SfPart {
    pub start: u64,
    pub size: u64,
    pub kind: String,
    pub uuid: Option<String>,
    pub bootable: bool,
}

pub fn imgbuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgbuild"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs a command, failing the test with its output if it fails.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs imgbuild expecting failure; returns (exit code, stderr).
pub fn fails(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("run imgbuild");
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host tool the tests need, or a failure naming its Debian package (from the
/// host-program table, which must list every program the tests call).
pub fn tool(name: &str) -> Command {
    use imgbuild::process::programs;
    let install = programs::find(name)
        .map(programs::install_command)
        .unwrap_or_else(|| panic!("`{name}` is not in src/process/programs.tsv: add it there"));
    assert!(
        programs::locate(name).is_some(),
        "`{name}` is missing: run `ci/install-host-deps.sh` (or `{install}`)"
    );
    let mut c = Command::new(name);
    c.env(
        "PATH",
        format!("{}:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default()),
    );
    c
}

/// Partitions as `sfdisk --json` sees them.
pub fn sfdisk(image: &Path) -> (String, Vec<SfPart>) {
    let out = ok(tool("sfdisk").arg("--json").arg(image));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sfdisk json");
    let t = &v["partitiontable"];
    let parts = t["partitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| SfPart {
                    start: p["start"].as_u64().unwrap() * 512,
                    size: p["size"].as_u64().unwrap() * 512,
                    kind: p["type"].as_str().unwrap().to_string(),
                    uuid: p["uuid"].as_str().map(str::to_string),
                    bootable: p["bootable"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    (t["label"].as_str().unwrap().to_string(), parts)
}

/// Copies one partition out of an image into its own file (for fsck tools).
pub fn extract(image: &Path, part: &SfPart, dest: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(image).unwrap();
    f.seek(SeekFrom::Start(part.start)).unwrap();
    let mut out = std::fs::File::create(dest).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = part.size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

/// Runs `debugfs -R CMD` on an ext4 file system image and returns its stdout.
pub fn debugfs(fs: &Path, cmd: &str) -> String {
    let out = ok(tool("debugfs").arg("-R").arg(cmd).arg(fs));
    text(&out)
}

/// `e2fsck -fn`: must exit 0.
pub fn e2fsck_clean(fs: &Path) {
    let out = tool("e2fsck").arg("-fn").arg(fs).output().unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn found problems:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fsck.fat -n`: must exit 0 and report nothing wrong.
pub fn fsck_fat_clean(fs: &Path) {
    let out = tool("fsck.fat").arg("-n").arg(fs).output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fsck.fat -n failed:\n{all}");
    for bad in ["corrupt", "Wrong", "wrong", "Free cluster summary", "differ"] {
        assert!(!all.contains(bad), "fsck.fat -n reported `{bad}`:\n{all}");
    }
}

/// Reads a file from a FAT file system image with mtools.
pub fn mtype(fs: &Path, path: &str) -> Vec<u8> {
    let out = ok(tool("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(fs)
        .arg(format!("::{path}")));
    out.stdout
}

/// Writes a file next to the test's recipe.
pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, body).unwrap();
    p
}

/// `security.capability` granting cap_net_raw (bit 13), effective: VFS_CAP_REVISION_2.
pub fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

pub const LONG_NAME: &str = "a-file-name-that-is-much-longer-than-one-hundred-bytes-so-that-tar-needs-an-extension-header-to-store-it-and-file-systems-need-long-names.txt";
pub const UNICODE_NAME: &str = "café-ünïcode-日本語.txt";
pub const MANY: usize = 2000;

/// The size of the sparse fixture file: mostly a hole, with data at its end.
pub const SPARSE_SIZE: u64 = 8 << 20;

/// Builds a root file system archive exercising everything the image must keep:
/// ownership, setuid, hard links (also across partitions), symlinks, device nodes, a
/// FIFO, a `security.capability` xattr, empty and sparse files, long and non-ASCII names,
/// and a directory of 2,000 entries. `/boot/firmware` holds FAT-friendly content.
pub fn rootfs_tar(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(f);
    let dirs = [
        "",
        "boot",
        "boot/firmware",
        "boot/firmware/overlays",
        "etc",
        "usr",
        "usr/bin",
        "usr/share",
        "usr/share/many",
        "dev",
        "run",
        "var",
        "home",
        "home/usér",
    ];
    for d in dirs {
        let mut hd = header(
            tar::EntryType::Directory,
            if d == "home/usér" { 0o700 } else { 0o755 },
            if d == "home/usér" { 1001 } else { 0 },
            0,
        );
        b.append_data(&mut hd, format!("./{d}"), std::io::empty()).unwrap();
    }
    let file = |b: &mut tar::Builder<std::fs::File>, path: &str, mode: u32, uid: u64, data: &[u8]| {
        let mut hd = header(tar::EntryType::Regular, mode, uid, data.len() as u64);
        b.append_data(&mut hd, format!("./{path}"), data).unwrap();
    };
    file(
        &mut b,
        "boot/firmware/config.txt",
        0o644,
        0,
        b"arm_64bit=1\nenable_uart=1\n",
    );
    file(
        &mut b,
        "boot/firmware/cmdline.txt",
        0o644,
        0,
        b"console=serial0,115200 root=LABEL=root\n",
    );
    file(
        &mut b,
        &format!("boot/firmware/overlays/{}", &LONG_NAME[..100]),
        0o644,
        0,
        b"long overlay name\n",
    );
    file(
        &mut b,
        &format!("boot/firmware/{UNICODE_NAME}"),
        0o644,
        0,
        "non-ASCII on FAT\n".as_bytes(),
    );
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    file(&mut b, "boot/firmware/kernel8.img", 0o644, 0, &big);
    file(&mut b, "etc/hostname", 0o644, 0, b"fixture\n");
    file(
        &mut b,
        "etc/fstab",
        0o644,
        0,
        b"LABEL=root / ext4 defaults 0 1\nLABEL=BOOT /boot/firmware vfat defaults 0 2\n",
    );
    file(&mut b, "etc/empty", 0o600, 0, b"");
    file(&mut b, "usr/bin/passwd", 0o4755, 0, b"#!/bin/sh\necho setuid\n");
    b.append_pax_extensions([("SCHILY.xattr.security.capability", cap_net_raw().as_slice())])
        .unwrap();
    file(&mut b, "usr/bin/ping", 0o755, 0, b"#!/bin/sh\necho ping\n");
    file(&mut b, &format!("usr/share/{LONG_NAME}"), 0o644, 0, b"long name\n");
    file(
        &mut b,
        &format!("home/usér/{UNICODE_NAME}"),
        0o640,
        1001,
        "bonjour\n".as_bytes(),
    );
    let mut sparse = vec![0u8; SPARSE_SIZE as usize];
    sparse[SPARSE_SIZE as usize - 4..].copy_from_slice(b"END\n");
    file(&mut b, "var/sparse.bin", 0o644, 0, &sparse);
    for i in 0..MANY {
        file(
            &mut b,
            &format!("usr/share/many/entry-{i:04}-with-a-longer-name.txt"),
            0o644,
            0,
            format!("{i}\n").as_bytes(),
        );
    }
    // GNU tar gives a hard link entry its target's mode; a symlink's mode is 0777.
    let link = |b: &mut tar::Builder<std::fs::File>, kind: tar::EntryType, path: &str, target: &str, mode: u32| {
        let mut hd = header(kind, mode, 0, 0);
        b.append_link(&mut hd, format!("./{path}"), target).unwrap();
    };
    link(
        &mut b,
        tar::EntryType::Link,
        "usr/bin/passwd-link",
        "./usr/bin/passwd",
        0o4755,
    );
    link(
        &mut b,
        tar::EntryType::Link,
        "boot/firmware/hostname-copy",
        "./etc/hostname",
        0o644,
    );
    link(&mut b, tar::EntryType::Symlink, "usr/bin/pong", "ping", 0o777);
    link(
        &mut b,
        tar::EntryType::Symlink,
        "etc/localtime",
        "/usr/share/zoneinfo/Etc/UTC",
        0o777,
    );
    let dev = |b: &mut tar::Builder<std::fs::File>, kind: tar::EntryType, path: &str, major: u32, minor: u32| {
        let mut hd = header(kind, 0o666, 0, 0);
        hd.set_device_major(major).unwrap();
        hd.set_device_minor(minor).unwrap();
        b.append_data(&mut hd, format!("./{path}"), std::io::empty()).unwrap();
    };
    dev(&mut b, tar::EntryType::Char, "dev/null", 1, 3);
    dev(&mut b, tar::EntryType::Block, "dev/loop0", 7, 0);
    dev(&mut b, tar::EntryType::Fifo, "run/initctl", 0, 0);
    b.finish().unwrap();
}

fn header(kind: tar::EntryType, mode: u32, uid: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

/// `imgbuild fetch RECIPE --out OUT --cache-dir CACHE`, with retries made fast.
pub fn fetch_cmd(recipe: &Path, out: &Path, cache: &Path) -> Command {
    let mut c = imgbuild();
    c.env("IMGBUILD_RETRY_BACKOFF_MS", "1")
        .arg("fetch")
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache);
    c
}

/// Every file below `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Relative path → SHA-256 of every file below `dir`.
pub fn digests(dir: &Path) -> Vec<(String, String)> {
    use sha2::Digest;
    walk(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())))
        })
        .collect()
}

/// `git ARGS` in `dir` with a fixed identity and default branch `main`, for fixtures.
pub fn git_in(dir: &Path, args: &[&str]) -> Output {
    ok(Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir))
}

/// A one-partition ext4 image of the `rootfs_tar` fixture; tests append their sections.
pub const ONE_PARTITION: &str = "rootfs: {tar: rootfs.tar}
source_date_epoch: 1700000000
image:
  table: mbr
  partitions:
    root: {type: linux, filesystem: ext4, size: auto, mount: /}
output: {compression: none}
";

/// The mount table's lines that name a path under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy().to_string();
    info.lines().filter(|l| l.contains(&d)).map(str::to_string).collect()
}
