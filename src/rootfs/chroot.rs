//! Running a command inside the target root file system. imgbuild re-executes itself
//! (`imgbuild internal-run-in-root`) in a private mount namespace, mounts /proc, /sys
//! (read-only), a fresh /dev (tmpfs with the basic nodes, never the host's /dev) and
//! devpts there, chroots and execs the command. The mounts belong to that namespace
//! only, so they vanish when the command ends — on success, failure, Ctrl-C or even
//! SIGKILL of imgbuild (the child is killed with its parent) — and nothing is left
//! mounted on the host. A foreign architecture runs through binfmt_misc + qemu-user.

use anyhow::{Context, Result, bail};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).context("path contains a NUL byte")
}

fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| what.to_string());
    }
    Ok(())
}

fn mount(src: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: &str) -> Result<()> {
    let (s, t, f, d) = (
        CString::new(src)?,
        cstr(target)?,
        CString::new(fstype)?,
        CString::new(data)?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
    check(rc, &format!("mounting {fstype} on {}", target.display()))
}

fn mknod(path: &Path, major: u32, minor: u32) -> Result<()> {
    let p = cstr(path)?;
    // SAFETY: valid path; creates a character device node.
    let rc = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(major, minor)) };
    check(rc, &format!("creating {}", path.display()))?;
    // mknod honours the umask; the nodes must be usable by everyone.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
    Ok(())
}

/// Sets up the namespace and mounts, chroots into `root` and execs `argv` with exactly
/// `env`. Only returns on failure.
pub fn enter_and_exec(root: &Path, env: &[(String, String)], argv: &[String]) -> Result<std::convert::Infallible> {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = argv.split_first() else {
        bail!("nothing to run")
    };
    // SAFETY: plain syscalls with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        check(
            libc::unshare(libc::CLONE_NEWNS),
            "creating a private mount namespace (needs root)",
        )?;
    }
    let none = c"none";
    let slash = c"/";
    // SAFETY: valid strings; makes every mount private to this namespace.
    check(
        unsafe {
            libc::mount(
                none.as_ptr(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        },
        "making mounts private",
    )?;
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount("proc", &root.join("proc"), "proc", nosuid, "")?;
    mount("sysfs", &root.join("sys"), "sysfs", nosuid | libc::MS_RDONLY, "")?;
    let dev = root.join("dev");
    mount("tmpfs", &dev, "tmpfs", libc::MS_NOSUID, "mode=0755,size=16m")?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        mknod(&dev.join(name), major, minor)?;
    }
    std::fs::create_dir_all(dev.join("pts"))?;
    std::fs::create_dir_all(dev.join("shm"))?;
    mount(
        "devpts",
        &dev.join("pts"),
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))?;
    }
    // DNS for steps that download: the host's resolver configuration, visible only here.
    let resolv = root.join("etc/resolv.conf");
    if std::fs::symlink_metadata(&resolv).map(|m| m.is_file()).unwrap_or(false)
        && Path::new("/etc/resolv.conf").exists()
    {
        mount("/etc/resolv.conf", &resolv, "", libc::MS_BIND, "")?;
    }
    let r = cstr(root)?;
    // SAFETY: valid path.
    check(
        unsafe { libc::chroot(r.as_ptr()) },
        &format!("chroot into {}", root.display()),
    )?;
    std::env::set_current_dir("/")?;
    let err = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .exec();
    Err(err).with_context(|| {
        format!(
            "running `{program}` in the target (is it installed there? a foreign architecture needs qemu-user-static)"
        )
    })
}

/// The environment every step starts from.
pub fn base_env() -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("HOME", "/root"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C.UTF-8"),
        ("DEBIAN_FRONTEND", "noninteractive"),
        ("DEBCONF_NONINTERACTIVE_SEEN", "true"),
        ("TERM", "dumb"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
