//! The PEP 503 simple index: `<root>/index.html` lists the projects, and
//! `<root>/<normalized-name>/index.html` links each file (stored beside it) with
//! `#sha256=` and `data-requires-python`. Static files, so any web server (or a
//! `file://` URL) serves it.

use crate::fetch::lock::LockedFile;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// PEP 503 name normalization: lower case, runs of `-`, `_` and `.` become `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Escapes text for HTML attribute values and content.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the index pages for `files` (their paths start with `prefix/<project>/`).
pub fn write(root: &Path, prefix: &str, files: &[LockedFile]) -> Result<()> {
    let mut projects: BTreeMap<String, Vec<(&str, &LockedFile)>> = BTreeMap::new();
    for f in files {
        let Some(rel) = f
            .path
            .as_deref()
            .and_then(|p| p.strip_prefix(prefix))
            .map(|p| p.trim_start_matches('/'))
        else {
            continue;
        };
        if let Some((project, filename)) = rel.split_once('/') {
            projects.entry(project.to_string()).or_default().push((filename, f));
        }
    }
    let mut top = String::from(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Simple index</title></head><body>\n",
    );
    for (project, list) in &mut projects {
        list.sort_by(|a, b| a.0.cmp(b.0));
        top.push_str(&format!("<a href=\"{0}/\">{0}</a><br>\n", escape(project)));
        let mut page = format!(
            "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for {0}</title></head><body>\n<h1>Links for {0}</h1>\n",
            escape(project)
        );
        for (filename, f) in list.iter() {
            let rp = match &f.requires_python {
                Some(r) => format!(" data-requires-python=\"{}\"", escape(r)),
                None => String::new(),
            };
            page.push_str(&format!(
                "<a href=\"{0}#sha256={1}\"{rp}>{0}</a><br>\n",
                escape(filename),
                f.sha256
            ));
        }
        page.push_str("</body></html>\n");
        crate::fsx::write_atomic(&root.join(project).join("index.html"), page.as_bytes())?;
    }
    top.push_str("</body></html>\n");
    crate::fsx::write_atomic(&root.join("index.html"), top.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_pep_503() {
        assert_eq!(normalize("Foo.Bar__baz-"), "foo-bar-baz");
        assert_eq!(normalize("charset_normalizer"), "charset-normalizer");
    }

    #[test]
    fn writes_project_pages_with_hashes() {
        let d = tempfile::tempdir().unwrap();
        let f = LockedFile {
            url: "https://x/numpy-2.whl".into(),
            size: 1,
            sha256: "ab".into(),
            path: Some("pypi/numpy/numpy-2.whl".into()),
            requires_python: Some(">=3.10".into()),
            ..Default::default()
        };
        write(d.path(), "pypi", &[f]).unwrap();
        let page = fs_err::read_to_string(d.path().join("numpy/index.html")).unwrap();
        assert!(
            page.contains("<a href=\"numpy-2.whl#sha256=ab\" data-requires-python=\"&gt;=3.10\">"),
            "{page}"
        );
        let top = fs_err::read_to_string(d.path().join("index.html")).unwrap();
        assert!(top.contains("<a href=\"numpy/\">numpy</a>"), "{top}");
    }
}
