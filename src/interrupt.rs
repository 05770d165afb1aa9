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
/// chroot) and waits up to 30 s for it, so no mount outlives the build.
fn stop_children() {
    let pids: Vec<u32> = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for &pid in &pids {
        // SAFETY: signalling a process id we started.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for pid in pids {
        while std::time::Instant::now() < deadline {
            let mut status = 0;
            // SAFETY: reaps our own child without blocking.
            let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            if r != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
