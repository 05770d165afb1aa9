//! Ctrl-C and SIGTERM: remove the staging area of the build in progress and exit 130,
//! so an interrupted build leaves nothing under a final name and nothing half-written.

use std::path::PathBuf;
use std::sync::Mutex;

static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the handler once; later calls do nothing.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if let Ok(dirs) = CLEANUP.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        eprintln!("imgbuild: interrupted; removed the unfinished outputs");
        std::process::exit(130);
    });
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
