//! Web sites (Carpentries lessons), mirrored for offline reading — what `wget -r -k -p -N`
//! did, reproducibly: [`resolve`] crawls the site and locks every file it fetched, raw as
//! served; [`materialize`] lays the site out from the lock and the store alone, with every
//! link to a mirrored file made relative and every other link absolute.

mod crawl;
mod index_page;
pub mod rewrite;
#[cfg(test)]
mod tests;
mod urlmap;

pub use crawl::MAX_PAGES;
pub use index_page::write_index;

use super::lock::LockedSource;
use super::store::Store;
use super::{Cx, safe_join};
use crate::recipe::plan_content::SitePlan;
use anyhow::{Context, Result, bail};
use fs_err as fs;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use url::Url;
use urlmap::Scope;

/// Crawls the site and locks every file fetched (sorted by URL); a redirected URL is
/// locked with where it led, and its target under its own URL.
pub fn resolve(plan: &SitePlan, cx: &Cx) -> Result<LockedSource> {
    let files = crawl::crawl(&plan.name, &plan.url, cx, MAX_PAGES).with_context(|| format!("crawling {}", plan.url))?;
    Ok(LockedSource {
        inputs: String::new(),
        files,
        refs: Default::default(),
        package_lock: None,
    })
}

/// Writes the site into `out/<plan.path>` from the lock and the store: HTML pages and
/// style sheets with their links rewritten, everything else linked from the store.
pub fn materialize(plan: &SitePlan, entry: &LockedSource, cx: &Cx, out: &Path) -> Result<()> {
    let site = Site::from_lock(plan, entry, cx.store)?;
    for (url, (local, kind, sha)) in &site.files {
        let dest = safe_join(out, &format!("{}/{local}", plan.path))?;
        let page = Url::parse(url)?;
        let mut visit = |u: &Url, _| Some(site.link(local, u));
        let body = match kind {
            FileKind::Other => {
                cx.store.materialize(sha, &dest)?;
                continue;
            }
            FileKind::Html => rewrite::html(&cx.store.read(sha)?, &page, &mut visit)?,
            FileKind::Css => rewrite::css(&cx.store.read(sha)?, &page, &mut visit),
        };
        write(&dest, &body)?;
    }
    // The lessons index links to the site's `index.html`; a site that starts elsewhere
    // gets one that leads there.
    if !site.taken.contains_key("index.html")
        && let Some(start) = site.lookup(&site.start)
    {
        let link = urlmap::relative("index.html", start);
        let html = format!(
            "<!DOCTYPE html>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0; url={0}\">\n<a href=\"{0}\">{0}</a>\n",
            index_page::escape(&link)
        );
        write(&safe_join(out, &format!("{}/index.html", plan.path))?, html.as_bytes())?;
    }
    Ok(())
}

fn write(dest: &Path, body: &[u8]) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(dest, body)?;
    Ok(())
}

/// What a mirrored file is: by its URL's extension; a directory URL is an index page; a
/// name without extension is sniffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Html,
    Css,
    Other,
}

pub(crate) fn file_kind(u: &Url, store: &Store, sha: &str) -> Result<FileKind> {
    let name = u.path().rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        // A directory's index page.
        return Ok(FileKind::Html);
    }
    let ext = urlmap::decode(name)
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    Ok(match ext.as_deref() {
        Some("html" | "htm" | "xhtml") => FileKind::Html,
        Some("css") => FileKind::Css,
        Some(_) => FileKind::Other,
        None => {
            let mut head = Vec::new();
            fs::File::open(store.path(sha))?.take(512).read_to_end(&mut head)?;
            if sniff_html(&head) {
                FileKind::Html
            } else {
                FileKind::Other
            }
        }
    })
}

fn sniff_html(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    ["<!doctype html", "<html", "<head"].iter().any(|p| t.starts_with(p))
}

/// The locked site: where each URL is written and where redirected URLs lead.
struct Site {
    start: String,
    /// URL → (path relative to the site, kind, sha256).
    files: BTreeMap<String, (String, FileKind, String)>,
    /// URLs whose content another URL's file already holds → that file.
    shared: BTreeMap<String, String>,
    redirects: BTreeMap<String, String>,
    /// Paths written → their sha256.
    taken: BTreeMap<String, String>,
}

impl Site {
    fn from_lock(plan: &SitePlan, entry: &LockedSource, store: &Store) -> Result<Site> {
        let mut start = Url::parse(&plan.url).with_context(|| format!("`{}` is not a URL", plan.url))?;
        start.set_fragment(None);
        let mut site = Site {
            start: start.to_string(),
            files: BTreeMap::new(),
            shared: BTreeMap::new(),
            redirects: BTreeMap::new(),
            taken: BTreeMap::new(),
        };
        for f in &entry.files {
            if let Some(to) = &f.redirect {
                site.redirects.insert(f.url.clone(), to.clone());
            }
        }
        let final_start = site.resolve(&site.start).to_string();
        let scope = Scope::new(&Url::parse(&final_start)?);
        let mut sorted: Vec<_> = entry.files.iter().filter(|f| f.redirect.is_none()).collect();
        sorted.sort_by(|a, b| a.url.cmp(&b.url));
        for f in sorted {
            let u = Url::parse(&f.url).with_context(|| format!("the lock names `{}`, not a URL", f.url))?;
            let Some(mut local) = scope
                .local_path(&u)
                .context("the lock names a URL the mirror can't hold")?
            else {
                bail!(
                    "the lock names {}, which is not on the site's origin {}; run `imgbuild fetch --update`",
                    f.url,
                    start.origin().ascii_serialization()
                );
            };
            let kind = file_kind(&u, store, &f.sha256)?;
            let lower = local.to_ascii_lowercase();
            if kind == FileKind::Html && !lower.ends_with(".html") && !lower.ends_with(".htm") {
                local.push_str(".html");
            }
            match site.taken.get(&local) {
                // `dir/` and `dir/index.html`: one file.
                Some(sha) if *sha == f.sha256 => {
                    site.shared.insert(f.url.clone(), local);
                    continue;
                }
                Some(_) => local = urlmap::with_suffix(&local, &urlmap::short_hash(&f.url)),
                None => {}
            }
            safe_join(Path::new("/"), &local)?;
            site.taken.insert(local.clone(), f.sha256.clone());
            site.files.insert(f.url.clone(), (local, kind, f.sha256.clone()));
        }
        Ok(site)
    }

    /// Where a chain of redirects from `url` ends (loops are cut).
    fn resolve<'a>(&'a self, mut url: &'a str) -> &'a str {
        for _ in 0..20 {
            match self.redirects.get(url) {
                Some(to) => url = to,
                None => break,
            }
        }
        url
    }

    /// The mirrored file `url` leads to, if any.
    fn lookup(&self, url: &str) -> Option<&str> {
        let url = self.resolve(url);
        match self.files.get(url) {
            Some((p, _, _)) => Some(p),
            None => self.shared.get(url).map(String::as_str),
        }
    }

    /// The link a page at `from` should use for `u` (fragment already removed): the
    /// relative path of its mirrored file, else the absolute URL.
    fn link(&self, from: &str, u: &Url) -> String {
        match self.lookup(u.as_str()) {
            Some(to) => urlmap::relative(from, to),
            None => u.to_string(),
        }
    }
}
