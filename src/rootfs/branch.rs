//! Where the images of one recipe part ways. Images built together share their bootstrap
//! and their first steps; each image after the first used to unpack the shared step's
//! archive (a whole root file system, GBs) before running its own steps on it. Instead,
//! the first image stops at the branch point, keeps its root directory as it is there
//! (read-only from then on) and goes on in an overlay mount on top of it; each later
//! image that resumes from that step mounts its own overlay on the same directory, with
//! nothing to unpack. Packing reads the merged view, so the archives are the same as
//! without the overlay.
//!
//! The mounts live in a mount namespace of the build's own (the main thread enters it
//! before the first mount): the kernel removes them when imgbuild ends, however it ends;
//! the interrupt handler, which runs in the host's namespace, sees plain directories.
//! Where overlay mounts are not possible (no overlayfs, no CAP_SYS_ADMIN) the image
//! unpacks the archive as before.

use super::inroot::fd_path;
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The frozen root directories of this run, by the key of the step they stopped after.
#[derive(Debug, Default)]
pub struct Branches {
    dirs: RefCell<HashMap<String, PathBuf>>,
}

impl Branches {
    /// The frozen root directory left at the step with this key, if an image left one.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        self.dirs.borrow().get(key).cloned()
    }

    fn add(&self, key: &str, dir: PathBuf) {
        self.dirs.borrow_mut().insert(key.to_string(), dir);
    }

    /// Hands over every frozen directory, to be removed once the last image that could
    /// resume from one has run its steps.
    pub fn take_all(&self) -> Vec<PathBuf> {
        self.dirs.borrow_mut().drain().map(|(_, dir)| dir).collect()
    }
}

/// How many leading steps the image shares with a later image of the run (the longest
/// such prefix; steps with secrets are never shared), when the image has steps of its
/// own after it: where it leaves its root directory for the others.
pub fn branch_point<T: PartialEq>(own: &[T], later: &[&[T]], shareable: impl Fn(&T) -> bool) -> Option<usize> {
    let common = |other: &[T]| {
        own.iter()
            .zip(other)
            .take_while(|(a, b)| a == b && shareable(a))
            .count()
    };
    later
        .iter()
        .map(|o| common(o))
        .max()
        .filter(|&n| n > 0 && n < own.len())
}

/// An overlay mounted at `root`; unmounted when dropped.
#[derive(Debug)]
pub struct Overlay {
    root: PathBuf,
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.root.as_os_str().as_bytes()) {
            // SAFETY: a valid path; a lazy unmount has no other precondition.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The scratch directories of an image's overlay, beside its root directory.
pub struct Layers {
    /// Where the steps see the merged tree.
    pub root: PathBuf,
    /// This image's changes.
    pub upper: PathBuf,
    /// The overlay's own scratch.
    pub work: PathBuf,
}

/// Turns the plain root directory `layers.root` into the branch `frozen` (renamed, not
/// copied) and mounts an overlay of it back at `layers.root`; on failure, puts the
/// directory back and returns why, so the caller goes on without a branch.
pub fn freeze(layers: &Layers, frozen: &Path, key: &str, branches: &Branches) -> Result<Overlay> {
    fs_err::rename(&layers.root, frozen)?;
    fs_err::create_dir(&layers.root)?;
    match mount(frozen, layers) {
        Ok(o) => {
            branches.add(key, frozen.to_path_buf());
            Ok(o)
        }
        Err(e) => {
            fs_err::remove_dir(&layers.root)?;
            fs_err::rename(frozen, &layers.root)?;
            Err(e)
        }
    }
}

/// Mounts an overlay of the read-only `lower` and this image's fresh upper layer at
/// `layers.root` (created empty).
pub fn mount(lower: &Path, layers: &Layers) -> Result<Overlay> {
    private_namespace()?;
    for d in [&layers.root, &layers.upper, &layers.work] {
        if d.exists() {
            fs_err::remove_dir_all(d)?;
        }
        fs_err::create_dir_all(d)?;
    }
    // The directories are named by descriptor: a path with a comma or colon would end
    // the option it stands in.
    let open = |p: &Path| fs_err::File::open(p).map(|f| f.into_parts().0);
    let (lower_fd, upper_fd, work_fd) = (open(lower)?, open(&layers.upper)?, open(&layers.work)?);
    // index=on keeps hard links whole when one name is written; no redirects or
    // metadata-only copies, so the upper layer holds plain files and directories.
    let options = format!(
        "lowerdir={},upperdir={},workdir={},index=on,redirect_dir=off,metacopy=off",
        fd_path(&lower_fd).display(),
        fd_path(&upper_fd).display(),
        fd_path(&work_fd).display()
    );
    let (source, fstype) = (c"overlay", c"overlay");
    let target = CString::new(layers.root.as_os_str().as_bytes()).context("path contains a NUL byte")?;
    let data = CString::new(options).context("overlay options contain a NUL byte")?;
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "mounting an overlay of {} at {}",
                lower.display(),
                layers.root.display()
            )
        });
    }
    Ok(Overlay {
        root: layers.root.clone(),
    })
}

/// Moves the main thread (and every process and thread it starts from now on) into a
/// mount namespace of its own, once; its mounts never reach the host and end with it.
fn private_namespace() -> Result<()> {
    static ENTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let entered = ENTERED.get_or_init(|| {
        // SAFETY: plain system calls with constant arguments.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(format!(
                    "creating a private mount namespace: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(format!("making mounts private: {}", std::io::Error::last_os_error()));
            }
        }
        Ok(())
    });
    entered.clone().map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable(s: &&str) -> bool {
        !s.starts_with("secret")
    }

    #[test]
    fn the_branch_is_the_longest_prefix_shared_with_a_later_image() {
        let own = ["a", "b", "c", "d"];
        assert_eq!(branch_point(&own, &[&["a", "x"], &["a", "b", "y"]], shareable), Some(2));
    }

    #[test]
    fn no_branch_without_a_shared_step_or_own_steps_after_it() {
        let own = ["a", "b"];
        assert_eq!(branch_point(&own, &[&["x", "b"]], shareable), None);
        assert_eq!(branch_point(&own, &[&["a", "b", "c"]], shareable), None);
        assert_eq!(branch_point(&own, &[], shareable), None);
    }

    #[test]
    fn steps_with_secrets_are_never_shared() {
        let own = ["a", "secret", "c"];
        assert_eq!(branch_point(&own, &[&["a", "secret", "d"]], shareable), Some(1));
    }
}
