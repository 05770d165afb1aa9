//! Paths inside a root file system, in the one canonical form every stage uses: relative,
//! `/`-separated, no `.`, empty parts or `..` (recipes' `files:` and `content.dest`,
//! mount points, overlay and archive entries). A leaf, so the recipe checks and the root
//! file system agree without importing each other.

/// Normalises an archive path (`./etc/x`, `/etc/x`, `etc//x/`) to `etc/x`, refusing any
/// path that would leave the root file system.
pub fn normalize(path: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "`{path}` would land outside the root file system (it contains `..`)"
                ));
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// The parent directory of a normalised path (`""` for top-level entries).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

/// A mount point in canonical form (`/boot//firmware/` → `/boot/firmware`): absolute,
/// never `..`.
pub fn mount_point(m: &str) -> Result<String, String> {
    if !m.starts_with('/') {
        return Err(format!(
            "mount point `{m}` must be an absolute path such as `/boot/firmware`"
        ));
    }
    match normalize(m) {
        Ok(rel) => Ok(format!("/{rel}")),
        Err(_) => Err(format!("mount point `{m}` must not contain `..`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_escapes() {
        assert_eq!(normalize("./etc//hostname/").unwrap(), "etc/hostname");
        assert_eq!(normalize("/etc/x").unwrap(), "etc/x");
        assert_eq!(normalize("./").unwrap(), "");
        assert!(normalize("../etc/passwd").unwrap_err().contains("outside"));
        assert!(normalize("etc/../../x").is_err());
        assert_eq!(parent("etc/ssh/sshd_config"), "etc/ssh");
        assert_eq!(parent("etc"), "");
    }

    #[test]
    fn mount_points_are_absolute_and_canonical() {
        assert_eq!(mount_point("/boot//firmware/").unwrap(), "/boot/firmware");
        assert_eq!(mount_point("/").unwrap(), "/");
        assert!(mount_point("boot").unwrap_err().contains("absolute"));
        assert!(mount_point("/boot/../etc").unwrap_err().contains(".."));
    }
}
