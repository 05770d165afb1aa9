//! Writing into a root file system under construction without ever leaving it. A Debian
//! root holds absolute symlinks (`/etc/resolv.conf -> /run/...`, alternatives), and a
//! downloaded or hostile tree may hold `usr -> /home/someone`: a host-side `root.join(p)`
//! followed by open/mkdir/mount would then write into the host. Every path here is
//! resolved by the kernel with openat2(RESOLVE_IN_ROOT), so `/` and `..` stop at the root
//! and an absolute symlink means the root's own directory, as it will on the device.
//! Magic links (`/proc/self/...`) are refused outright.

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::io;
use std::path::{Component, Path, PathBuf};

/// An open root directory; every method takes paths relative to it (a leading `/` is
/// the root itself).
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

/// A path inside the root: only normal components (`.`, `..` and the root are dropped
/// or refused before the kernel sees them, so error messages name what was asked).
fn components(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} climbs out of its directory (`..`)", rel.display()),
                ));
            }
        }
    }
    Ok(out)
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| with_path(e.into(), path))?;
        Ok(Root {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// The host path of the root (for messages and chroot).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self, rel: &Path) -> PathBuf {
        self.path.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// Opens `rel`, every symlink on the way resolved inside the root.
    pub fn open_in(&self, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let parts = components(rel)?;
        let inner: PathBuf = if parts.is_empty() {
            PathBuf::from(".")
        } else {
            parts.iter().collect()
        };
        rustix::fs::openat2(
            &self.dir,
            &inner,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        )
        .map_err(|e| with_path(e.into(), &self.shown(rel)))
    }

    /// An existing directory inside the root, as an O_PATH descriptor.
    pub fn dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        self.open_in(rel, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// Makes `rel` and its missing parents (mode 0755) inside the root; returns the
    /// directory. A component that is a symlink is followed inside the root.
    pub fn create_dir_all(&self, rel: &Path) -> io::Result<OwnedFd> {
        let parts = components(rel)?;
        let mut prefix = PathBuf::new();
        let mut here = self.dir(Path::new("."))?;
        for part in parts {
            prefix.push(part);
            here = match self.dir(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match rustix::fs::mkdirat(&here, part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(with_path(e.into(), &self.shown(&prefix))),
                    }
                    self.dir(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(here)
    }

    /// Creates the new file `rel` holding `body` with `mode`, unless something (a file,
    /// a symlink, anything) already has that name: then None, and it is left as it is.
    /// The file is removed again when the returned [`Placed`] is dropped.
    pub fn place_new(&self, rel: &Path, body: &[u8], mode: u32) -> io::Result<Option<Placed>> {
        let (parent, name) = self.split(rel)?;
        let parent = self.create_dir_all(&parent)?;
        let fd = match rustix::fs::openat(
            &parent,
            &name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::EXIST) => return Ok(None),
            Err(e) => return Err(with_path(e.into(), &self.shown(rel))),
        };
        // The directory's O_PATH descriptor serves unlinkat later.
        let placed = Placed { parent, name };
        let mut file = std::fs::File::from(fd);
        io::Write::write_all(&mut file, body).map_err(|e| with_path(e, &self.shown(rel)))?;
        // The umask must not narrow the mode asked for.
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| with_path(e.into(), &self.shown(rel)))?;
        Ok(Some(placed))
    }

    /// A character device node `rel` (mode 0666, whatever the umask).
    pub fn mknod_char(&self, rel: &Path, major: u32, minor: u32) -> io::Result<()> {
        let (parent, name) = self.split(rel)?;
        let parent = self.dir(&parent)?;
        let dev = rustix::fs::makedev(major, minor);
        rustix::fs::mknodat(
            &parent,
            &name,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            dev,
        )
        .map_err(|e| with_path(e.into(), &self.shown(rel)))?;
        rustix::fs::chmodat(&parent, &name, Mode::from_raw_mode(0o666), AtFlags::empty())
            .map_err(|e| with_path(e.into(), &self.shown(rel)))
    }

    /// A symlink `rel` pointing at `target` (the target is text: it is not followed).
    pub fn symlink(&self, target: &str, rel: &Path) -> io::Result<()> {
        let (parent, name) = self.split(rel)?;
        let parent = self.dir(&parent)?;
        rustix::fs::symlinkat(target, &parent, &name).map_err(|e| with_path(e.into(), &self.shown(rel)))
    }

    /// Whether `rel` is a regular file (not a symlink to one).
    pub fn is_plain_file(&self, rel: &Path) -> bool {
        self.open_in(rel, OFlags::PATH | OFlags::NOFOLLOW)
            .and_then(|fd| rustix::fs::fstat(&fd).map_err(io::Error::from))
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
    }

    fn split(&self, rel: &Path) -> io::Result<(PathBuf, std::ffi::OsString)> {
        let mut parts = components(rel)?;
        let Some(name) = parts.pop() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names the root itself", self.shown(rel).display()),
            ));
        };
        Ok((parts.iter().collect(), name.to_os_string()))
    }
}

/// The path through /proc that reaches exactly the object `fd` was opened on, for the
/// system calls that take only paths (mount): the kernel follows it to that object,
/// whatever has been renamed or replaced by a symlink since.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// A file placed for the duration of something; removed when dropped.
#[derive(Debug)]
pub struct Placed {
    parent: OwnedFd,
    name: std::ffi::OsString,
}

impl Drop for Placed {
    fn drop(&mut self) {
        let _ = rustix::fs::unlinkat(&self.parent, &self.name, AtFlags::empty());
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let host = tmp.path().join("host");
        fs_err::create_dir_all(root.join("etc")).unwrap();
        fs_err::create_dir_all(&host).unwrap();
        (tmp, root, host)
    }

    #[test]
    fn an_absolute_symlink_to_the_host_is_the_roots_own_directory() {
        let (_tmp, root, host) = tree();
        std::os::unix::fs::symlink(&host, root.join("usr")).unwrap();
        let r = Root::open(&root).unwrap();
        // Dangling inside the root: an error naming the path, nothing made on the host.
        let err = r.place_new(Path::new("usr/sbin/policy-rc.d"), b"x", 0o755).unwrap_err();
        assert!(err.to_string().contains("root/usr"), "{err}");
        fs_err::create_dir_all(root.join(host.strip_prefix("/").unwrap())).unwrap();
        let placed = r.place_new(Path::new("usr/sbin/policy-rc.d"), b"x", 0o755).unwrap();
        assert!(placed.is_some());
        assert_eq!(fs_err::read_dir(&host).unwrap().count(), 0, "wrote into the host");
        // The link's target, read inside the root: <root>/<host path>.
        let inside = root.join(host.strip_prefix("/").unwrap()).join("sbin/policy-rc.d");
        assert_eq!(fs_err::read(&inside).unwrap(), b"x");
        drop(placed);
        assert!(!inside.exists(), "not removed on drop");
    }

    #[test]
    fn dot_dot_in_a_symlink_stops_at_the_root() {
        let (_tmp, root, host) = tree();
        std::os::unix::fs::symlink("../../../../../../host", root.join("etc/up")).unwrap();
        fs_err::create_dir_all(root.join("host")).unwrap();
        let r = Root::open(&root).unwrap();
        r.create_dir_all(Path::new("etc/up/made")).unwrap();
        assert!(!host.join("made").exists());
        assert!(root.join("host/made").is_dir());
        assert!(r.create_dir_all(Path::new("../escape")).is_err());
    }

    #[test]
    fn an_existing_name_is_left_alone_and_a_new_file_gets_its_mode() {
        let (_tmp, root, _host) = tree();
        std::os::unix::fs::symlink("/run/resolv.conf", root.join("etc/resolv.conf")).unwrap();
        let r = Root::open(&root).unwrap();
        assert!(r.place_new(Path::new("etc/resolv.conf"), b"", 0o644).unwrap().is_none());
        assert!(!r.is_plain_file(Path::new("etc/resolv.conf")));
        let placed = r
            .place_new(Path::new("etc/hosts"), b"127.0.0.1 localhost\n", 0o640)
            .unwrap()
            .unwrap();
        assert!(r.is_plain_file(Path::new("/etc/hosts")));
        let mode = fs_err::metadata(root.join("etc/hosts")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o640);
        drop(placed);
    }
}
