//! Foreign architectures: running the target's programs (maintainer scripts, steps) on
//! this host needs qemu-user-static registered with binfmt_misc, with the `F` (fix
//! binary) flag so it also works inside a chroot. Checked before anything runs.

use anyhow::{Result, bail};
use std::path::Path;

/// The binfmt_misc entry and Debian package naming the emulator for an architecture.
fn emulator(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "arm64" => "qemu-aarch64",
        "armel" | "armhf" => "qemu-arm",
        "i386" => "qemu-i386",
        "amd64" => "qemu-x86_64",
        "riscv64" => "qemu-riscv64",
        "ppc64el" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "mips64el" => "qemu-mips64el",
        "loong64" => "qemu-loongarch64",
        _ => return None,
    })
}

/// The build host's Debian architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        other => other,
    }
}

/// Whether programs of `arch` run natively here.
pub fn is_native(arch: &str) -> bool {
    let host = host_arch();
    host == arch || (host == "amd64" && arch == "i386") || (host == "arm64" && matches!(arch, "armhf" | "armel"))
}

/// Fails with the exact commands that fix it when `arch` cannot run here.
pub fn check(arch: &str) -> Result<()> {
    check_in(arch, Path::new("/proc/sys/fs/binfmt_misc"))
}

fn check_in(arch: &str, binfmt: &Path) -> Result<()> {
    if is_native(arch) {
        return Ok(());
    }
    let Some(emu) = emulator(arch) else {
        bail!(
            "rootfs.architecture: imgbuild does not know how to emulate `{arch}` on this {} host",
            host_arch()
        );
    };
    let fix = format!(
        "apt-get install qemu-user-static binfmt-support && (mountpoint -q {0} || mount -t binfmt_misc binfmt_misc {0}) && update-binfmts --enable {emu}",
        binfmt.display()
    );
    if !binfmt.join("status").exists() {
        bail!(
            "building for {arch} needs binfmt_misc, which is not mounted at {}\nhint: as root run: {fix}",
            binfmt.display()
        );
    }
    let entry = binfmt.join(emu);
    let Ok(text) = std::fs::read_to_string(&entry) else {
        bail!(
            "building for {arch} needs qemu-user-static registered with binfmt_misc ({} is missing)\nhint: as root run: {fix}",
            entry.display()
        );
    };
    if !text.lines().any(|l| l.trim() == "enabled") {
        bail!(
            "the binfmt_misc entry {} is disabled\nhint: as root run: update-binfmts --enable {emu}",
            entry.display()
        );
    }
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:")).unwrap_or_default();
    if !flags.contains('F') {
        bail!(
            "{} is registered without the F (fix binary) flag, so it cannot run inside a chroot\nhint: install Debian's qemu-user-static, which registers it with F, then run: update-binfmts --enable {emu}",
            entry.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(dir: &Path, entry: Option<&str>) {
        std::fs::write(dir.join("status"), "enabled\n").unwrap();
        if let Some(body) = entry {
            std::fs::write(dir.join("qemu-aarch64"), body).unwrap();
        }
    }

    #[test]
    fn native_needs_nothing() {
        assert!(check_in(host_arch(), Path::new("/nonexistent")).is_ok());
    }

    #[test]
    fn missing_pieces_say_how_to_fix() {
        if host_arch() == "arm64" {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = check_in("arm64", &tmp.path().join("nope")).unwrap_err().to_string();
        assert!(
            err.contains("not mounted") && err.contains("mount -t binfmt_misc"),
            "{err}"
        );
        fake(tmp.path(), None);
        let err = check_in("arm64", tmp.path()).unwrap_err().to_string();
        assert!(err.contains("update-binfmts --enable qemu-aarch64"), "{err}");
        fake(
            tmp.path(),
            Some("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n"),
        );
        assert!(
            check_in("arm64", tmp.path())
                .unwrap_err()
                .to_string()
                .contains("disabled")
        );
        fake(
            tmp.path(),
            Some("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OC\n"),
        );
        assert!(
            check_in("arm64", tmp.path())
                .unwrap_err()
                .to_string()
                .contains("F (fix binary)")
        );
        fake(
            tmp.path(),
            Some("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\n"),
        );
        assert!(check_in("arm64", tmp.path()).is_ok());
    }
}
