//! Where a crawled URL lives in the mirror. The site's scope is the directory of its
//! start page (`https://host/lesson/` → `/lesson/`): URLs below it keep their path
//! relative to it, other URLs of the same origin go under `_root/<path>`, and URLs of
//! other origins are not mirrored. Paths are percent-decoded and checked, so no URL can
//! name a file outside the site's directory.

use anyhow::{Result, bail};
use url::Url;

/// The directory out-of-prefix files of the same origin go to.
pub const ROOT_DIR: &str = "_root";

/// The start page's origin and directory.
#[derive(Debug, Clone)]
pub struct Scope {
    origin: url::Origin,
    /// The directory path, starting and ending with `/`.
    prefix: String,
}

impl Scope {
    pub fn new(start: &Url) -> Scope {
        let path = start.path();
        let prefix = match path.rfind('/') {
            Some(i) => path[..=i].to_string(),
            None => "/".to_string(),
        };
        Scope {
            origin: start.origin(),
            prefix,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn same_origin(&self, u: &Url) -> bool {
        u.origin() == self.origin
    }

    /// A page here is followed: same origin, path below the start's directory.
    pub fn in_prefix(&self, u: &Url) -> bool {
        self.same_origin(u) && u.path().starts_with(&self.prefix)
    }

    /// The file `u` is stored as, relative to the site's directory: None for another
    /// origin, an error for a path that can't be a safe file name.
    pub fn local_path(&self, u: &Url) -> Result<Option<String>> {
        if !self.same_origin(u) {
            return Ok(None);
        }
        let (root, rest) = match u.path().strip_prefix(&self.prefix) {
            Some(rest) => (None, rest),
            None => (Some(ROOT_DIR), u.path().trim_start_matches('/')),
        };
        let mut parts: Vec<String> = root.map(str::to_string).into_iter().collect();
        let segments: Vec<&str> = rest.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if seg.is_empty() && last {
                parts.push("index.html".into());
                continue;
            }
            let name = decode(seg);
            let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']);
            if bad {
                bail!("{u}: the path segment `{seg}` can't be a file name in the mirror");
            }
            parts.push(name);
        }
        if let Some(q) = u.query() {
            let last = parts.pop().unwrap_or_default();
            parts.push(with_suffix(&last, &short_hash(q)));
        }
        Ok(Some(parts.join("/")))
    }
}

/// The first 8 hex digits of the SHA-256 of `s`.
pub fn short_hash(s: &str) -> String {
    crate::digest::sha256_hex(s.as_bytes())[..8].to_string()
}

/// `name` with `-suffix` before its extension (`a.html` → `a-x.html`, `a` → `a-x`).
pub fn with_suffix(name: &str, suffix: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{}-{suffix}{}", &name[..i], &name[i..]),
        _ => format!("{name}-{suffix}"),
    }
}

/// Percent-decodes a path segment; a segment that does not decode to UTF-8 stays as it
/// is (its `%` signs are then part of the file name).
pub fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| seg.to_string())
}

/// Percent-encodes a file name for use in a relative link.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &c in name.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The link from the page at `from` to the file at `to` (both relative to the site).
pub fn relative(from: &str, to: &str) -> String {
    let from_dirs: Vec<&str> = from.split('/').collect();
    let from_dirs = &from_dirs[..from_dirs.len() - 1];
    let to_parts: Vec<&str> = to.split('/').collect();
    let (to_dirs, _) = to_parts.split_at(to_parts.len() - 1);
    let common = from_dirs.iter().zip(to_dirs).take_while(|(a, b)| a == b).count();
    let mut link = "../".repeat(from_dirs.len() - common);
    let rest: Vec<String> = to_parts[common..].iter().map(|p| encode(p)).collect();
    link.push_str(&rest.join("/"));
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(start: &str, u: &str) -> Result<Option<String>> {
        Scope::new(&Url::parse(start).unwrap()).local_path(&Url::parse(u).unwrap())
    }

    #[test]
    fn maps_urls_to_files() {
        let s = "https://h.org/lesson/";
        let m = |u| map(s, u).unwrap();
        assert_eq!(m("https://h.org/lesson/"), Some("index.html".into()));
        assert_eq!(
            m("https://h.org/lesson/episodes/02/"),
            Some("episodes/02/index.html".into())
        );
        assert_eq!(m("https://h.org/lesson/a%20b.html"), Some("a b.html".into()));
        assert_eq!(m("https://h.org/assets/site.css"), Some("_root/assets/site.css".into()));
        assert_eq!(m("https://h.org/"), Some("_root/index.html".into()));
        assert_eq!(m("https://other.org/lesson/x.html"), None);
        assert_eq!(
            m("http://h.org/lesson/x.html"),
            None,
            "another scheme is another origin"
        );
        let q = m("https://h.org/lesson/p.html?x=1").unwrap();
        assert!(q.starts_with("p-") && q.ends_with(".html") && q.len() == "p-12345678.html".len());
        assert_ne!(q, m("https://h.org/lesson/p.html?x=2").unwrap());
        assert_eq!(
            m("https://h.org/lesson/dir/?a").unwrap().len(),
            "dir/index-12345678.html".len()
        );
        // The start page's own directory, not the page, is the prefix.
        assert_eq!(
            map("https://h.org/lesson/start.html", "https://h.org/lesson/x.html").unwrap(),
            Some("x.html".into())
        );
    }

    #[test]
    fn refuses_traversal() {
        let s = "https://h.org/lesson/";
        for u in [
            "https://h.org/lesson/%2e%2e/x",
            "https://h.org/lesson/a/%2E%2E%2F%2E%2E%2Fetc/passwd",
            "https://h.org/lesson/..%2f..%2fetc",
            "https://h.org/lesson/a%2fb",
            "https://h.org/lesson/a%5cb",
            "https://h.org/lesson/a//b",
            "https://h.org/lesson/%00",
        ] {
            let r = map(s, u);
            // The URL parser itself removes `..` segments; whatever is left must not escape.
            match r {
                Err(e) => assert!(e.to_string().contains("can't be a file name"), "{e}"),
                Ok(Some(p)) => {
                    assert!(
                        crate::fetch::safe_join(std::path::Path::new("/x"), &p).is_ok(),
                        "{u} → {p}"
                    )
                }
                Ok(None) => panic!("{u}"),
            }
        }
        assert!(map(s, "https://h.org/lesson/a%2fb").is_err());
        assert!(map(s, "https://h.org/lesson/..%2f..%2fetc").is_err());
    }

    #[test]
    fn links_relative_to_the_page() {
        assert_eq!(relative("index.html", "episodes/01.html"), "episodes/01.html");
        assert_eq!(relative("episodes/01.html", "index.html"), "../index.html");
        assert_eq!(relative("episodes/01.html", "episodes/02/index.html"), "02/index.html");
        assert_eq!(relative("a/b/c.html", "a/d/e.png"), "../d/e.png");
        assert_eq!(
            relative("a/b/c.html", "_root/assets/site.css"),
            "../../_root/assets/site.css"
        );
        assert_eq!(relative("x.html", "x.html"), "x.html");
        assert_eq!(relative("x.html", "a b/c:d#?.html"), "a%20b/c%3Ad%23%3F.html");
        assert_eq!(decode("a%20b%zz%"), "a b%zz%");
        assert_eq!(with_suffix(".htaccess", "1"), ".htaccess-1");
    }
}
