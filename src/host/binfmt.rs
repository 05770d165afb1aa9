//! Foreign architectures: running the target's programs (maintainer scripts, steps) on
//! this host needs qemu-user registered with binfmt_misc, with the `F` (fix binary) flag
//! so the interpreter is opened at registration and also works inside a chroot.
//!
//! Debian registers qemu two ways, and the fix differs: bookworm's qemu-user-static 7.2
//! puts its formats in binfmt-support's database (`update-binfmts --enable`);
//! bookworm-backports' and trixie's qemu 10 ship `/usr/lib/binfmt.d/qemu-*.conf` for
//! systemd-binfmt, which binfmt-support does not know. Without systemd running (a
//! container, a chroot) the .conf line itself can be written to the kernel's `register`.

use super::Problem;
use std::path::PathBuf;

/// The binfmt_misc entry naming the emulator for an architecture.
pub fn emulator(arch: &str) -> Option<&'static str> {
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

/// Where the host's qemu packaging keeps its registrations.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The kernel's binfmt_misc directory.
    pub binfmt_misc: PathBuf,
    /// systemd-binfmt's drop-in directory (qemu 10 and later).
    pub binfmt_d: PathBuf,
    /// binfmt-support's database (qemu 7.2 and earlier).
    pub binfmts_db: PathBuf,
    /// systemd-binfmt, when installed.
    pub systemd_binfmt: Option<PathBuf>,
}

impl Sources {
    pub fn system() -> Sources {
        Sources {
            binfmt_misc: "/proc/sys/fs/binfmt_misc".into(),
            binfmt_d: "/usr/lib/binfmt.d".into(),
            binfmts_db: "/usr/share/binfmts".into(),
            systemd_binfmt: ["/usr/lib/systemd/systemd-binfmt", "/lib/systemd/systemd-binfmt"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        }
    }
}

/// Checks that `arch` runs here; the problem names the command that fixes it.
pub fn check(arch: &str) -> Result<(), Problem> {
    check_with(arch, &Sources::system())
}

pub fn check_with(arch: &str, s: &Sources) -> Result<(), Problem> {
    if is_native(arch) {
        return Ok(());
    }
    let Some(emu) = emulator(arch) else {
        return Err(Problem::new(
            format!(
                "rootfs.architecture: imgbuild does not know how to emulate `{arch}` on this {} host",
                host_arch()
            ),
            "build on a host of that architecture",
        ));
    };
    let mount = format!("mount -t binfmt_misc binfmt_misc {}", s.binfmt_misc.display());
    let register = register_command(emu, s);
    if !s.binfmt_misc.join("status").exists() {
        let fix = match &register {
            Some(r) => format!("{mount} && {r}"),
            None => mount,
        };
        return Err(Problem::new(
            format!(
                "building for {arch} needs binfmt_misc, which is not mounted at {}",
                s.binfmt_misc.display()
            ),
            fix,
        ));
    }
    let Some(register) = register else {
        return Err(Problem::new(
            format!("building for {arch} needs qemu-user-static, which is not installed"),
            crate::process::programs::find(emu)
                .map(crate::process::programs::install_command)
                .unwrap_or_else(|| "apt-get install qemu-user-static".into()),
        ));
    };
    let entry = s.binfmt_misc.join(emu);
    let Ok(text) = fs_err::read_to_string(&entry) else {
        return Err(Problem::new(
            format!(
                "building for {arch} needs {emu} registered with binfmt_misc ({} is missing)",
                entry.display()
            ),
            register,
        ));
    };
    if !text.lines().any(|l| l.trim() == "enabled") {
        return Err(Problem::new(
            format!("the binfmt_misc entry {} is disabled", entry.display()),
            register,
        ));
    }
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:")).unwrap_or_default();
    if !flags.contains('F') {
        return Err(Problem::new(
            format!(
                "{} is registered without the F (fix binary) flag, so it cannot run inside a chroot",
                entry.display()
            ),
            format!("echo -1 > {} && {register}", entry.display()),
        ));
    }
    // With F the kernel holds the interpreter open, so a deleted one (a removed chroot,
    // an upgraded package) still works: its name says nothing more.
    Ok(())
}

/// The command that registers `emu` the way this host's qemu packaging does it, or None
/// when no packaging of it is installed.
fn register_command(emu: &str, s: &Sources) -> Option<String> {
    let conf = s.binfmt_d.join(format!("{emu}.conf"));
    if conf.is_file() {
        return Some(match &s.systemd_binfmt {
            Some(tool) => format!("{} {}", tool.display(), conf.display()),
            // systemd-binfmt's own file format is the kernel's register line.
            None => format!("cat {} > {}", conf.display(), s.binfmt_misc.join("register").display()),
        });
    }
    if s.binfmts_db.join(emu).is_file() {
        return Some(format!("update-binfmts --enable {emu}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        _tmp: tempfile::TempDir,
        s: Sources,
    }

    fn fake(mounted: bool, binfmt_d: bool, db: bool, systemd: bool) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let s = Sources {
            binfmt_misc: tmp.path().join("binfmt_misc"),
            binfmt_d: tmp.path().join("binfmt.d"),
            binfmts_db: tmp.path().join("binfmts"),
            systemd_binfmt: systemd.then(|| tmp.path().join("systemd-binfmt")),
        };
        for d in [&s.binfmt_misc, &s.binfmt_d, &s.binfmts_db] {
            fs_err::create_dir_all(d).unwrap();
        }
        if mounted {
            fs_err::write(s.binfmt_misc.join("status"), "enabled\n").unwrap();
        }
        if binfmt_d {
            fs_err::write(
                s.binfmt_d.join("qemu-aarch64.conf"),
                ":qemu-aarch64:M::\\x7fELF:\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF\n",
            )
            .unwrap();
        }
        if db {
            fs_err::write(s.binfmts_db.join("qemu-aarch64"), "package qemu-user-static\n").unwrap();
        }
        Fake { _tmp: tmp, s }
    }

    fn entry(f: &Fake, body: &str) {
        fs_err::write(f.s.binfmt_misc.join("qemu-aarch64"), body).unwrap();
    }

    #[test]
    fn native_needs_nothing() {
        let f = fake(false, false, false, false);
        assert!(check_with(host_arch(), &f.s).is_ok());
    }

    // arm64 is native on an arm64 host: these tests emulate it from anywhere else.
    #[cfg(not(target_arch = "aarch64"))]
    #[test]
    fn each_packaging_gets_its_own_fix() {
        // systemd-binfmt packaging, systemd-binfmt installed.
        let f = fake(true, true, false, true);
        let p = check_with("arm64", &f.s).unwrap_err();
        assert!(p.what.contains("qemu-aarch64 registered"), "{p:?}");
        assert!(
            p.fix.ends_with(&format!(
                "systemd-binfmt {}",
                f.s.binfmt_d.join("qemu-aarch64.conf").display()
            )),
            "{p:?}"
        );
        // The same packaging without systemd: the .conf line goes to `register`.
        let f = fake(true, true, false, false);
        let p = check_with("arm64", &f.s).unwrap_err();
        assert!(
            p.fix.starts_with("cat ") && p.fix.ends_with("binfmt_misc/register"),
            "{p:?}"
        );
        // binfmt-support's database.
        let f = fake(true, false, true, false);
        let p = check_with("arm64", &f.s).unwrap_err();
        assert_eq!(p.fix, "update-binfmts --enable qemu-aarch64");
        // Nothing installed.
        let f = fake(true, false, false, false);
        let p = check_with("arm64", &f.s).unwrap_err();
        assert!(
            p.what.contains("not installed") && p.fix.contains("qemu-user-static"),
            "{p:?}"
        );
        // Not mounted: mount, then register.
        let f = fake(false, true, false, false);
        let p = check_with("arm64", &f.s).unwrap_err();
        assert!(p.what.contains("not mounted"), "{p:?}");
        assert!(
            p.fix.starts_with("mount -t binfmt_misc") && p.fix.contains("&& cat "),
            "{p:?}"
        );
    }

    #[cfg(not(target_arch = "aarch64"))]
    #[test]
    fn registrations_need_enabled_and_the_f_flag() {
        let f = fake(true, true, false, false);
        entry(
            &f,
            "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\n",
        );
        assert!(check_with("arm64", &f.s).unwrap_err().what.contains("disabled"));
        entry(&f, "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OC\n");
        let p = check_with("arm64", &f.s).unwrap_err();
        assert!(p.what.contains("F (fix binary)"), "{p:?}");
        assert!(p.fix.starts_with("echo -1 > "), "{p:?}");
        entry(
            &f,
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\n",
        );
        assert!(check_with("arm64", &f.s).is_ok());
    }
}
