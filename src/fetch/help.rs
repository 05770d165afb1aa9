//! The page that tells people how to use what the server mirrors: `mirrors.html` at the
//! content root with copy-paste commands for pip and R, and the downloadable `pip.conf`
//! and `Rprofile` snippets it links. The address comes from `content.base_url`; the page
//! also rewrites it to the address it was loaded from, so it stays right when learners
//! reach the server by another name.

use super::lock::LockFile;
use super::pypi::index::escape;
use crate::recipe::plan_content::{ContentPlan, SourcePlan};
use anyhow::Result;
use std::path::Path;

pub fn write(plan: &ContentPlan, lock: &LockFile, out: &Path) -> Result<()> {
    let base = &plan.base_url;
    let mut sections = String::new();
    let mut snippets: Vec<(&str, String)> = Vec::new();
    for s in &plan.sources {
        match s {
            SourcePlan::Pypi(p) => {
                let url = format!("{base}/{}/", p.path);
                let host = url::Url::parse(base)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                let files = lock.sources.get("pypi").map(|e| e.files.len()).unwrap_or(0);
                sections.push_str(&format!(
                    "<h2>Python packages</h2>\n<p>{files} files for Python {} on {}.</p>\n<pre class=\"cmd\">pip install --index-url <span class=\"base\">{}</span>/{}/ --trusted-host {} PACKAGE</pre>\n<p>Or save <a href=\"pip.conf\">pip.conf</a> as <code>~/.config/pip/pip.conf</code> (Windows: <code>%APPDATA%\\pip\\pip.ini</code>) and use <code>pip install PACKAGE</code> as usual.</p>\n",
                    escape(&p.python.join(", ")),
                    escape(&p.platforms.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
                    escape(base),
                    escape(&p.path),
                    escape(&host)
                ));
                snippets.push((
                    "pip.conf",
                    format!("[global]\nindex-url = {url}\ntrusted-host = {host}\n"),
                ));
            }
            SourcePlan::Cran(c) => {
                sections.push_str(&format!(
                    "<h2>R packages</h2>\n<p>Packages for R {} ({}).</p>\n<pre class=\"cmd\">install.packages(\"PACKAGE\", repos = \"<span class=\"base\">{}</span>/{}\")</pre>\n<p>Or save <a href=\"Rprofile\">Rprofile</a> as <code>~/.Rprofile</code> and use <code>install.packages(\"PACKAGE\")</code> as usual.</p>\n",
                    escape(&c.r_version),
                    escape(&c.types.join(", ")),
                    escape(base),
                    escape(&c.path)
                ));
                snippets.push((
                    "Rprofile",
                    format!("local({{\n  options(repos = c(CRAN = \"{base}/{}\"))\n}})\n", c.path),
                ));
            }
            _ => {}
        }
    }
    let downloads: Vec<String> = super::summary::served_files(plan, lock)
        .iter()
        .map(|d| {
            format!(
                "<li><a href=\"{0}\">{1}</a> ({0})</li>",
                escape(&d.path),
                escape(&d.name)
            )
        })
        .collect();
    if !downloads.is_empty() {
        sections.push_str(&format!("<h2>Downloads</h2>\n<ul>\n{}\n</ul>\n", downloads.join("\n")));
    }
    if plan.sources.iter().any(|s| matches!(s, SourcePlan::Site(_))) {
        sections.push_str("<h2>Lessons</h2>\n<p><a href=\"lessons/index.html\">The lesson websites</a>, readable without the internet.</p>\n");
    }
    if sections.is_empty() {
        return Ok(());
    }
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Offline mirrors</title>\n<style>body{{font-family:sans-serif;max-width:50em;margin:auto;padding:1em}}pre{{background:#eee;padding:.5em;overflow-x:auto}}</style></head><body>\n<h1>Offline mirrors</h1>\n{sections}<script>\n// Show the address this page was loaded from, which is the one that works here.\nif (location.protocol.startsWith('http')) for (const e of document.querySelectorAll('.base')) e.textContent = location.origin;\n</script>\n</body></html>\n"
    );
    crate::fsx::write_atomic(&out.join("mirrors.html"), page.as_bytes())?;
    for (name, text) in snippets {
        crate::fsx::write_atomic(&out.join(name), text.as_bytes())?;
    }
    Ok(())
}
