//! Running a command inside the target root file system. imgbuild re-executes itself
//! (`imgbuild internal-run-in-root`, the helper) in a private mount namespace and a new
//! PID namespace. The helper forks the namespace's first process, which mounts /proc,
//! /sys (read-only), a fresh /dev (tmpfs with the basic nodes, never the host's /dev) and
//! devpts, chroots and execs the command. Every mount point is opened inside the root
//! (see [`super::inroot`]), so a symlink in the tree cannot put a mount on the host.
//!
//! Why a PID namespace: when its first process ends, the kernel kills everything else in
//! it, so nothing a step started (a daemon, a backgrounded `sleep`) outlives the step. The
//! helper and that process each die with their parent (PDEATHSIG), so SIGKILL of imgbuild
//! ends the whole tree; on SIGINT, SIGTERM or SIGHUP the helper kills the namespace and
//! waits for it. The mounts belong to the mount namespace only and vanish with it: nothing
//! is ever left mounted on the host. A foreign architecture runs through binfmt_misc +
//! qemu-user.

use super::inroot::{Root, fd_path};
use anyhow::{Context, Result, bail};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).context("path contains a NUL byte")
}

fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| what.to_string());
    }
    Ok(())
}

/// Mounts on the directory `target` was opened on (shown as `shown` in errors).
fn mount(
    src: &str,
    target: &impl rustix::fd::AsFd,
    shown: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    let (s, t, f, d) = (
        CString::new(src)?,
        cstr(&fd_path(target))?,
        CString::new(fstype)?,
        CString::new(data)?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
    check(rc, &format!("mounting {fstype} on {shown}"))
}

/// The namespace's first process, as the helper sees it (for the signal handler).
static NAMESPACE_INIT: AtomicI32 = AtomicI32::new(0);

extern "C" fn kill_namespace(_signal: libc::c_int) {
    let pid = NAMESPACE_INIT.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; the pid is our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Sets up the namespaces, runs `argv` chrooted into `root` with exactly `env` and
/// returns its exit code (128 + the signal that ended it).
pub fn run_in_root(root: &Path, env: &[(String, String)], argv: &[String]) -> Result<i32> {
    if argv.is_empty() {
        bail!("nothing to run")
    }
    // SAFETY: plain syscalls with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        check(
            libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID),
            "creating private mount and PID namespaces (needs root)",
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
    let root = Root::open(root).with_context(|| format!("opening the root file system {}", root.display()))?;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only calls kill(2).
        unsafe { libc::signal(signal, kill_namespace as *const () as libc::sighandler_t) };
    }
    // SAFETY: the helper is single-threaded here; the child only makes system calls and
    // execs (or exits).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("starting the step's first process");
    }
    if pid == 0 {
        let err = namespace_init(&root, env, argv).unwrap_err();
        eprintln!("error: {err:#}");
        // SAFETY: ends the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(127) };
    }
    NAMESPACE_INIT.store(pid, Ordering::SeqCst);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(std::io::Error::last_os_error()).context("waiting for the step");
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// The PID namespace's first process: mounts, chroot, exec. Only returns on failure.
fn namespace_init(root: &Root, env: &[(String, String)], argv: &[String]) -> Result<std::convert::Infallible> {
    use std::os::unix::process::CommandExt;
    // SAFETY: plain syscalls; back to default signal handling for the command.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        "proc",
        &root.create_dir_all(Path::new("proc"))?,
        "/proc",
        "proc",
        nosuid,
        "",
    )?;
    mount(
        "sysfs",
        &root.create_dir_all(Path::new("sys"))?,
        "/sys",
        "sysfs",
        nosuid | libc::MS_RDONLY,
        "",
    )?;
    mount(
        "tmpfs",
        &root.create_dir_all(Path::new("dev"))?,
        "/dev",
        "tmpfs",
        libc::MS_NOSUID,
        "mode=0755,size=16m",
    )?;
    // Opened again: the fresh tmpfs now covers the directory.
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        root.mknod_char(&Path::new("dev").join(name), major, minor)?;
    }
    let pts = root.create_dir_all(Path::new("dev/pts"))?;
    root.create_dir_all(Path::new("dev/shm"))?;
    mount(
        "devpts",
        &pts,
        "/dev/pts",
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
        root.symlink(target, &Path::new("dev").join(link))?;
    }
    // DNS for steps that download: the host's resolver configuration, visible only here,
    // and only over a plain file of the root's (a symlink stays as it is).
    let resolv = Path::new("etc/resolv.conf");
    if root.is_plain_file(resolv) && Path::new("/etc/resolv.conf").exists() {
        let target = root.open_in(resolv, rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW)?;
        mount("/etc/resolv.conf", &target, "/etc/resolv.conf", "", libc::MS_BIND, "")?;
    }
    let r = cstr(root.path())?;
    // SAFETY: valid path.
    check(
        unsafe { libc::chroot(r.as_ptr()) },
        &format!("chroot into {}", root.path().display()),
    )?;
    std::env::set_current_dir("/")?;
    let (program, args) = argv.split_first().context("nothing to run")?;
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
