//! The host-program table (`programs.tsv` beside this file): every program imgbuild, its
//! tests and its CI scripts call on the build host, the Debian packages that provide it,
//! the lowest version that works and when it is needed. One table feeds the install
//! script, `imgbuild doctor`, the build's pre-flight check and the "missing program"
//! hints, so they cannot disagree.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The table as shipped (the install script reads the same file).
pub const TABLE: &str = include_str!("programs.tsv");

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub name: &'static str,
    /// Debian packages; the first provides the program. `pip:NAME==VERSION` entries come
    /// from PyPI (see the install script).
    pub packages: Vec<&'static str>,
    pub minimum: Option<&'static str>,
    /// Installed from bookworm-backports on Debian bookworm.
    pub backports: bool,
    pub used_by: Vec<Use>,
    /// The flag that prints the version, when the minimum is checked.
    pub version_flag: Option<&'static str>,
    pub why: &'static str,
}

/// When a program is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Use {
    /// Bootstrapping a Debian root file system (`rootfs.suite`).
    Bootstrap,
    /// A root file system of an architecture this host does not run natively.
    Foreign,
    /// Making an ext4 partition.
    Ext4,
    /// `image.bootloader` with `grub-bios` (core.img).
    Grub,
    /// Boot loaders built from Debian's source packages (the firmware stage).
    Firmware,
    /// `content.git`.
    Git,
    /// `content.pypi` and `files: {pip: ...}`.
    Pypi,
    /// `files: {npm: ...}`.
    Npm,
    /// `imgbuild boot-test`.
    BootTest,
    /// The tests.
    Test,
    /// The CI scripts and compiling imgbuild.
    Ci,
}

impl Use {
    fn parse(s: &str) -> Option<Use> {
        Some(match s {
            "bootstrap" => Use::Bootstrap,
            "foreign" => Use::Foreign,
            "ext4" => Use::Ext4,
            "grub" => Use::Grub,
            "firmware" => Use::Firmware,
            "git" => Use::Git,
            "pypi" => Use::Pypi,
            "npm" => Use::Npm,
            "boot-test" => Use::BootTest,
            "test" => Use::Test,
            "ci" => Use::Ci,
            _ => return None,
        })
    }
}

/// Every row of the table, parsed once. The table ships with the binary and a unit test
/// parses it, so a malformed row is a bug caught before release, never a user's problem.
pub fn all() -> &'static [Program] {
    static ROWS: OnceLock<Vec<Program>> = OnceLock::new();
    ROWS.get_or_init(|| parse(TABLE).unwrap_or_else(|e| panic!("src/process/programs.tsv: {e}")))
}

fn dash(s: &'static str) -> Option<&'static str> {
    (s != "-").then_some(s)
}

fn parse(table: &'static str) -> Result<Vec<Program>, String> {
    let mut rows = Vec::new();
    for (n, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&'static str> = line.split('\t').collect();
        let [name, packages, minimum, bookworm, used_by, version, why] = cols[..] else {
            return Err(format!("line {}: {} columns, expected 7", n + 1, cols.len()));
        };
        let used_by = used_by
            .split(',')
            .map(|u| Use::parse(u).ok_or_else(|| format!("line {}: unknown use `{u}`", n + 1)))
            .collect::<Result<_, _>>()?;
        rows.push(Program {
            name,
            packages: packages.split_whitespace().collect(),
            minimum: dash(minimum),
            backports: bookworm == "backports",
            used_by,
            version_flag: dash(version),
            why,
        });
    }
    Ok(rows)
}

/// The row of a program, by name or path (`/usr/sbin/mke2fs` is `mke2fs`).
pub fn find(program: &str) -> Option<&'static Program> {
    let name = Path::new(program).file_name()?.to_str()?;
    all().iter().find(|p| p.name == name)
}

/// The Debian package that provides a program (None for programs from PyPI or unknown).
pub fn package_for(program: &str) -> Option<&'static str> {
    find(program)
        .and_then(|p| p.packages.first().copied())
        .filter(|p| !p.starts_with("pip:"))
}

/// The command that installs a program on this host: apt (from backports where the table
/// says so and the host is bookworm) or the install script for PyPI tools.
pub fn install_command(p: &Program) -> String {
    match p.packages.first() {
        Some(pkg) if pkg.starts_with("pip:") => "ci/install-host-deps.sh".to_string(),
        _ if p.backports && host_is_bookworm() => {
            format!("apt-get install -t bookworm-backports {}", p.packages.join(" "))
        }
        _ => format!("apt-get install {}", p.packages.join(" ")),
    }
}

fn host_is_bookworm() -> bool {
    fs_err::read_to_string("/etc/os-release")
        .map(|t| t.lines().any(|l| l == "VERSION_CODENAME=bookworm"))
        .unwrap_or(false)
}

/// Where a program is: PATH first, then the sbin directories a non-root PATH lacks.
pub fn locate(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/sbin",
                "/sbin",
                // grub-pc-bin keeps grub-bios-setup beside its modules.
                "/usr/lib/grub/i386-pc",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs_err::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first dotted number in a program's version output (`mke2fs 1.47.2 (1-Jan-2025)`,
/// `QEMU emulator version 10.0.2 (Debian ...)`).
pub fn version_in(text: &str) -> Option<Vec<u64>> {
    let re = regex::Regex::new(r"(\d+)((?:\.\d+)+)?").ok()?;
    // Skip numbers glued to letters (`x86_64`, `ed25519`): they are not versions.
    re.captures_iter(text).find_map(|c| {
        let m = c.get(0)?;
        let before = text[..m.start()].chars().next_back();
        if before.is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
            return None;
        }
        m.as_str().split('.').map(|n| n.parse().ok()).collect()
    })
}

/// `a >= b` for dotted versions (`1.47.2 >= 1.47.1`; missing parts count as 0).
pub fn at_least(have: &[u64], need: &[u64]) -> bool {
    let n = have.len().max(need.len());
    let part = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| part(have, i).cmp(&part(need, i)))
        .find(|o| o.is_ne())
        .is_none_or(|o| o.is_gt())
}

/// Parses `1.47.1` into its numbers.
pub fn parse_version(v: &str) -> Option<Vec<u64>> {
    v.split('.').map(|n| n.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_each_program_once() {
        let rows = parse(TABLE).unwrap();
        assert!(rows.len() > 20);
        let mut names: Vec<_> = rows.iter().map(|r| r.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a program is listed twice");
        for r in &rows {
            assert!(!r.packages.is_empty(), "{}: no package", r.name);
            if let Some(m) = r.minimum {
                assert!(parse_version(m).is_some(), "{}: minimum `{m}`", r.name);
                assert!(r.version_flag.is_some(), "{}: a minimum needs a version flag", r.name);
            }
        }
    }

    #[test]
    fn packages_and_install_commands_come_from_the_table() {
        assert_eq!(package_for("/usr/sbin/mke2fs"), Some("e2fsprogs"));
        assert_eq!(package_for("dnsmasq"), Some("dnsmasq-base"));
        assert_eq!(package_for("uv"), None);
        assert_eq!(package_for("no-such-program"), None);
        let nft = find("nft").unwrap();
        assert_eq!(install_command(nft), "apt-get install nftables");
        assert_eq!(install_command(find("uv").unwrap()), "ci/install-host-deps.sh");
    }

    #[test]
    fn versions_are_read_from_what_programs_print() {
        assert_eq!(version_in("mke2fs 1.47.2 (1-Jan-2025)"), Some(vec![1, 47, 2]));
        assert_eq!(
            version_in("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)"),
            Some(vec![10, 0, 2])
        );
        assert_eq!(version_in("qemu-x86_64 version 7.2.0"), Some(vec![7, 2, 0]));
        assert_eq!(version_in("9.2.0\n"), Some(vec![9, 2, 0]));
        assert!(at_least(&[1, 47, 2], &[1, 47, 1]));
        assert!(at_least(&[1, 47, 1], &[1, 47, 1]));
        assert!(!at_least(&[1, 47, 0], &[1, 47, 1]));
        assert!(at_least(&[10], &[7, 2]));
        assert!(!at_least(&[0, 13], &[0, 13, 9]));
    }
}

/// The table lists every program the code calls: a scan of the sources for the ways
/// they start programs (the gateway, std's Command, the tests' helpers, QEMU's names).
#[cfg(test)]
mod coverage {
    use super::find;
    use std::path::Path;

    /// Names in the sources that are not programs: the gateway's own tests of a missing
    /// program and of display.
    const NOT_PROGRAMS: &[&str] = &["x", "fsck.fat-definitely-missing", "/nonexistent/mke2fs"];

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs_err::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn every_program_the_code_calls_is_in_the_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for d in ["src", "tests"] {
            rust_files(&root.join(d), &mut files);
        }
        let call = regex::Regex::new(r#"(?:Cmd::new|Command::new|\btool|\bmtools|\bhost_tool)\(\s*"([^"]+)""#).unwrap();
        let qemu = regex::Regex::new(r#""(qemu-system-[a-z0-9_]+)""#).unwrap();
        let mut seen = 0;
        let mut missing = Vec::new();
        for f in &files {
            let text = fs_err::read_to_string(f).unwrap();
            let names = call
                .captures_iter(&text)
                .chain(qemu.captures_iter(&text))
                .map(|c| c[1].to_string());
            for name in names {
                if NOT_PROGRAMS.contains(&name.as_str()) {
                    continue;
                }
                seen += 1;
                if find(&name).is_none() {
                    missing.push(format!("{}: `{name}`", f.strip_prefix(root).unwrap().display()));
                }
            }
        }
        assert!(
            seen > 30,
            "the scan found only {seen} program calls: is the pattern stale?"
        );
        assert!(
            missing.is_empty(),
            "programs called but not in src/process/programs.tsv:\n{}",
            missing.join("\n")
        );
    }
}
