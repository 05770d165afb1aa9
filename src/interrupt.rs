//! Ctrl-C and SIGTERM: remove the staging area of the build in progress and exit 130,
//! so an interrupted build leaves nothing under a final name and nothing half-written.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set as the handler starts: what fails after this fails because of the interruption.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Long-running children (mmdebstrap, steps), each in a process group of its own: the
/// handler, not the terminal, stops them, so they can clean up their own mounts first.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Installs the handler once; later calls do nothing.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        stop_children();
        if let Ok(dirs) = CLEANUP.lock() {
            for d in dirs.iter() {
                let _ = fs_err::remove_dir_all(d);
            }
        }
        eprintln!("imgbuild: interrupted; removed the unfinished outputs");
        std::process::exit(130);
    });
}

/// Whether Ctrl-C or SIGTERM arrived. The handler is then cleaning up and will exit
/// with 130; an error the interruption caused elsewhere must not exit first with 1.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Waits for the handler to finish (it exits the process); for the main thread once
/// [`interrupted`] is true.
pub fn wait_for_handler() -> ! {
    loop {
        std::thread::park();
    }
}

/// Registers a directory to remove if the build is interrupted.
pub fn remove_on_interrupt(dir: PathBuf) {
    if let Ok(mut dirs) = CLEANUP.lock() {
        dirs.push(dir);
    }
}

/// Forgets a directory (it was published or removed).
pub fn forget(dir: &std::path::Path) {
    if let Ok(mut dirs) = CLEANUP.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// Registers a child process to stop (and wait for) on interruption.
pub fn watch_child(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
}

/// Forgets a child that has ended.
pub fn unwatch_child(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|p| *p != pid);
    }
}

/// Asks each watched child to stop (SIGTERM: mmdebstrap then unmounts and removes its
/// chroot) and waits up to 30 s for it, so no mount outlives the build. mmdebstrap lets
/// the apt or dpkg run in progress finish first — minutes under qemu-user — so the
/// children still running then lose what runs in their group below them (apt, dpkg, a
/// maintainer script), and mmdebstrap cleans up at once; 30 s more for that.
fn stop_children() {
    let pids: Vec<u32> = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for &pid in &pids {
        // SAFETY: signalling a process id we started.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let left = wait_children(&pids, std::time::Duration::from_secs(30));
    for &pid in &left {
        for worker in group_workers(pid) {
            // SAFETY: a process of the group we started, not its leader.
            unsafe { libc::kill(worker as i32, libc::SIGKILL) };
        }
    }
    wait_children(&left, std::time::Duration::from_secs(30));
}

/// Reaps `pids` until `timeout`; returns those still running.
fn wait_children(pids: &[u32], timeout: std::time::Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + timeout;
    let mut left = Vec::new();
    for &pid in pids {
        let mut ended = false;
        while std::time::Instant::now() < deadline {
            let mut status = 0;
            // SAFETY: reaps our own child without blocking.
            let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            if r != 0 {
                ended = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if !ended {
            left.push(pid);
        }
    }
    left
}

/// The processes of `leader`'s process group other than mmdebstrap's own (the leader
/// and the forks that clean up): the work it waits for.
fn group_workers(leader: u32) -> Vec<u32> {
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != leader)
        .filter(|&pid| {
            let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid pgrp …`: comm may hold spaces, so count after `)`.
            let pgrp = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2));
            pgrp == Some(leader.to_string().as_str())
        })
        .filter(|&pid| {
            let cmdline = fs_err::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmdline).contains("mmdebstrap")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_workers_of_a_group_are_its_members_but_the_leader() {
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = leader.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut workers = group_workers(pid);
        while workers.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            workers = group_workers(pid);
        }
        assert_eq!(workers.len(), 2, "{workers:?}");
        assert!(!workers.contains(&pid));
        for w in &workers {
            let cmd = fs_err::read(format!("/proc/{w}/cmdline")).unwrap();
            assert!(String::from_utf8_lossy(&cmd).starts_with("sleep"), "{cmd:?}");
        }
        // SAFETY: signalling the group this test started.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        let _ = leader.wait();
    }
}
