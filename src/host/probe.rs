//! Quick probes of the host: is a program there at the version needed, does mke2fs read
//! tar archives, is there disk space. Each answers in well under a second.

use super::Problem;
use crate::process::Cmd;
use crate::process::programs::{self, Program};
use std::path::Path;

/// The program is on this host at the version the table asks for.
pub fn program(p: &Program) -> Result<(), Problem> {
    let Some(path) = programs::locate(p.name) else {
        return Err(Problem::new(
            format!("`{}` is missing ({})", p.name, p.why),
            programs::install_command(p),
        ));
    };
    version(p, &path)
}

/// The program at `path` is at least the table's minimum version.
fn version(p: &Program, path: &Path) -> Result<(), Problem> {
    let (Some(minimum), Some(flag)) = (p.minimum, p.version_flag) else {
        return Ok(());
    };
    let out = match Cmd::new(path).arg(flag).run() {
        Ok(o) => o,
        Err(e) => {
            return Err(Problem::new(
                format!(
                    "`{} {flag}` does not run: {}",
                    path.display(),
                    first_line(&e.to_string())
                ),
                programs::install_command(p),
            ));
        }
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let need = programs::parse_version(minimum).unwrap_or_default();
    match programs::version_in(&text) {
        Some(have) if programs::at_least(&have, &need) => Ok(()),
        have => Err(Problem::new(
            format!(
                "`{}` is version {}, imgbuild needs {minimum} or newer",
                p.name,
                have.map(|v| v.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
                    .unwrap_or_else(|| "unknown".into())
            ),
            programs::install_command(p),
        )),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// `mke2fs -d` reads a tar archive (e2fsprogs ≥ 1.47.1 built with libarchive, and the
/// library installed): tried on a one-file archive in a scratch directory.
pub fn mke2fs_reads_tar() -> Result<(), Problem> {
    let fix = programs::find("mke2fs")
        .map(programs::install_command)
        .unwrap_or_else(|| "apt-get install e2fsprogs libarchive13".into());
    let fail = |why: String| Problem::new(format!("mke2fs cannot read a tar archive: {why}"), fix.clone());
    let tmp = tempfile::tempdir().map_err(|e| fail(format!("no scratch directory: {e}")))?;
    let tar = tmp.path().join("probe.tar");
    write_probe_tar(&tar).map_err(|e| fail(format!("writing {}: {e}", tar.display())))?;
    let img = tmp.path().join("probe.ext4");
    Cmd::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tar)
        .arg(&img)
        .arg("1M")
        .env("MKE2FS_CONFIG", "/dev/null")
        .run()
        .map(|_| ())
        .map_err(|e| fail(first_line(&e.to_string()).to_string()))
}

fn write_probe_tar(path: &Path) -> std::io::Result<()> {
    let mut b = tar::Builder::new(fs_err::File::create(path)?);
    let mut h = tar::Header::new_ustar();
    let body = b"imgbuild doctor\n";
    h.set_path("probe.txt")?;
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &body[..])?;
    b.into_inner()?.sync_all()
}

/// Bytes free for root (builds run as root) on the file system holding `dir`, or its
/// nearest existing parent.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let mut d = std::path::absolute(dir).ok()?;
    while !d.exists() {
        d = d.parent()?.to_path_buf();
    }
    let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a plain struct statvfs fills in.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bfree as u64 * st.f_frsize as u64)
}

/// At least `need` bytes free where `dir` lives.
pub fn disk_space(dir: &Path, need: u64, what: &str) -> Result<(), Problem> {
    match free_bytes(dir) {
        Some(free) if free < need => Err(Problem::new(
            format!(
                "{} has {} free; {what} needs about {}",
                dir.display(),
                crate::report::human_bytes(free),
                crate::report::human_bytes(need)
            ),
            format!(
                "free space there (`imgbuild cache prune`), or point --out / --cache-dir at a disk with {} free",
                crate::report::human_bytes(need)
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_its_install_command() {
        let p = Program {
            name: "imgbuild-no-such-program",
            packages: vec!["nftables"],
            minimum: None,
            backports: false,
            used_by: vec![],
            version_flag: None,
            why: "a test",
        };
        let e = program(&p).unwrap_err();
        assert!(e.what.contains("`imgbuild-no-such-program` is missing"), "{e:?}");
        assert_eq!(e.fix, "apt-get install nftables");
    }

    #[test]
    fn versions_below_the_minimum_are_problems() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let tool = tmp.path().join("fake-mke2fs");
        fs_err::write(&tool, "#!/bin/sh\necho 'mke2fs 1.47.0 (5-Feb-2023)' >&2\n").unwrap();
        fs_err::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut p = programs::find("mke2fs").unwrap().clone();
        let e = version(&p, &tool).unwrap_err();
        assert!(e.what.contains("version 1.47.0, imgbuild needs 1.47.1"), "{e:?}");
        assert!(e.fix.contains("e2fsprogs libarchive13"), "{e:?}");
        p.minimum = Some("1.46");
        assert!(version(&p, &tool).is_ok());
    }

    #[test]
    fn disk_space_is_measured() {
        assert!(free_bytes(Path::new("/tmp/imgbuild-no-such-dir/below")).is_some());
        let e = disk_space(Path::new("/tmp"), u64::MAX, "a test").unwrap_err();
        assert!(e.what.contains("free; a test needs"), "{e:?}");
        assert!(disk_space(Path::new("/tmp"), 1, "a test").is_ok());
    }
}
