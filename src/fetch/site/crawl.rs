//! The crawl: breadth-first from the start page, a level at a time, each level's URLs
//! fetched in parallel into the content store. Pages are followed below the start page's
//! directory; what a page needs (images, scripts, style sheets and what they import) is
//! fetched from anywhere on the same origin; nothing else is requested.

use super::rewrite::{self, Kind};
use super::urlmap::Scope;
use super::{FileKind, file_kind};
use crate::fetch::Cx;
use crate::fetch::http::{Expect, FetchError, Fetched};
use crate::fetch::lock::LockedFile;
use crate::fetch::pool::WORKERS;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use url::Url;

/// How many pages a site may have: far more than any lesson, few enough that a URL
/// naming a whole web site stops early. A site with more is an error, not a truncated
/// mirror (missing pages would only show up as broken links in a classroom).
pub const MAX_PAGES: usize = 5000;

struct Crawl<'a, 'c> {
    cx: &'a Cx<'c>,
    name: &'a str,
    scope: Scope,
    max_pages: usize,
    pages: usize,
    /// Every URL requested or queued (without fragment).
    seen: BTreeSet<String>,
    /// The page that first linked to a URL, for messages.
    from: BTreeMap<String, String>,
    files: BTreeMap<String, LockedFile>,
    next: Vec<(Url, Kind)>,
    missing: Vec<String>,
    errors: Vec<String>,
}

/// Crawls the site at `start`; the locked files, sorted by URL. Fails as soon as more
/// than `max_pages` pages are known, before fetching them.
pub fn crawl(name: &str, start: &str, cx: &Cx, max_pages: usize) -> Result<Vec<LockedFile>> {
    let mut start = Url::parse(start).with_context(|| format!("`{start}` is not a URL"))?;
    start.set_fragment(None);
    let first = fetch_level(cx, std::slice::from_ref(&start)).pop();
    let fetched = match first {
        Some(Ok(f)) => f,
        Some(Err(e @ FetchError::NotFound { .. })) => bail!("the start page {start} was not found: {e}"),
        Some(Err(e)) => return Err(e).with_context(|| format!("fetching the start page {start}")),
        None => bail!("fetching the start page {start}: no answer"),
    };
    let final_start = parse_final(&fetched, &start);
    let mut c = Crawl {
        cx,
        name,
        scope: Scope::new(&final_start),
        max_pages,
        pages: 1,
        seen: BTreeSet::from([start.to_string(), final_start.to_string()]),
        from: BTreeMap::new(),
        files: BTreeMap::new(),
        next: Vec::new(),
        missing: Vec::new(),
        errors: Vec::new(),
    };
    cx.reporter.detail(&format!(
        "site {name}: crawling {final_start} (pages below {})",
        c.scope.prefix()
    ));
    c.absorb(&start, Kind::Page, Ok(fetched))?;
    let mut level = 1;
    while !c.next.is_empty() {
        let batch = std::mem::take(&mut c.next);
        let urls: Vec<Url> = batch.iter().map(|(u, _)| u.clone()).collect();
        cx.reporter
            .detail(&format!("site {name}: level {level}, {} URLs", urls.len()));
        for ((u, kind), r) in batch.iter().zip(fetch_level(cx, &urls)) {
            c.absorb(u, *kind, r)?;
        }
        level += 1;
    }
    if !c.errors.is_empty() {
        bail!(
            "{} of the site's files could not be fetched:\n  {}",
            c.errors.len(),
            c.errors.join("\n  ")
        );
    }
    if !c.missing.is_empty() {
        const SHOWN: usize = 10;
        let more = c.missing.len().saturating_sub(SHOWN);
        let mut list = c.missing[..c.missing.len().min(SHOWN)].join("\n  ");
        if more > 0 {
            list.push_str(&format!("\n  … and {more} more"));
        }
        cx.reporter.warn(&format!(
            "site {name}: {} linked files are missing upstream and stay broken in the mirror:\n  {list}",
            c.missing.len()
        ));
    }
    Ok(c.files.into_values().collect())
}

fn parse_final(f: &Fetched, asked: &Url) -> Url {
    let mut u = Url::parse(&f.final_url).unwrap_or_else(|_| asked.clone());
    u.set_fragment(None);
    u
}

impl Crawl<'_, '_> {
    /// Records one answer and queues what it links to.
    fn absorb(&mut self, asked: &Url, kind: Kind, result: Result<Fetched, FetchError>) -> Result<()> {
        let f = match result {
            Ok(f) => f,
            Err(e @ (FetchError::NotFound { .. } | FetchError::Status { .. })) => {
                let from = self.from.get(asked.as_str()).map(String::as_str).unwrap_or("?");
                self.missing.push(format!("{e} (linked from {from})"));
                return Ok(());
            }
            Err(e) => {
                self.errors.push(e.to_string());
                return Ok(());
            }
        };
        let target = parse_final(&f, asked);
        let wanted = match kind {
            Kind::Page => self.scope.in_prefix(&target),
            Kind::Requisite => self.scope.same_origin(&target),
        };
        if !wanted || !matches!(self.scope.local_path(&target), Ok(Some(_))) {
            // Redirected away: the link stays absolute, to the URL as written.
            return Ok(());
        }
        let locked = |url: &Url, redirect: Option<String>| LockedFile {
            url: url.to_string(),
            size: f.size,
            sha256: f.sha256.clone(),
            path: None,
            redirect,
            requires_python: None,
            stanza: None,
        };
        if target != *asked {
            self.files
                .insert(asked.to_string(), locked(asked, Some(target.to_string())));
            self.seen.insert(target.to_string());
        }
        if self.files.contains_key(target.as_str()) {
            return Ok(());
        }
        self.files.insert(target.to_string(), locked(&target, None));
        let file_kind = file_kind(&target, self.cx.store, &f.sha256)?;
        if file_kind == FileKind::Other || (file_kind == FileKind::Html && !self.scope.in_prefix(&target)) {
            return Ok(());
        }
        let body = self.cx.store.read(&f.sha256)?;
        let mut found = Vec::new();
        let mut visit = |u: &Url, k: Kind| {
            found.push((u.clone(), k));
            None
        };
        if file_kind == FileKind::Html {
            rewrite::html(&body, &target, &mut visit)?;
        } else {
            rewrite::css(&body, &target, &mut visit);
        }
        for (u, k) in found {
            self.queue(u, k, &target)?;
        }
        Ok(())
    }

    fn queue(&mut self, u: Url, kind: Kind, from: &Url) -> Result<()> {
        let wanted = match kind {
            Kind::Page => self.scope.in_prefix(&u),
            Kind::Requisite => self.scope.same_origin(&u),
        };
        if !wanted || self.seen.contains(u.as_str()) {
            return Ok(());
        }
        self.seen.insert(u.to_string());
        if let Err(e) = self.scope.local_path(&u) {
            self.cx
                .reporter
                .warn(&format!("site {}: not mirrored: {e:#} (linked from {from})", self.name));
            return Ok(());
        }
        if kind == Kind::Page {
            self.pages += 1;
            if self.pages > self.max_pages {
                bail!(
                    "site `{name}`: more than {max} pages below {origin}{prefix}, the limit for one site \
                     (so that a URL naming a whole web site stops early); \
                     set `content.sites.{name}.url` to the directory of one lesson",
                    name = self.name,
                    max = self.max_pages,
                    origin = u.origin().ascii_serialization(),
                    prefix = self.scope.prefix()
                );
            }
        }
        self.from.insert(u.to_string(), from.to_string());
        self.next.push((u, kind));
        Ok(())
    }
}

/// Downloads `urls` into the store with a few threads; answers in the order of `urls`.
fn fetch_level(cx: &Cx, urls: &[Url]) -> Vec<Result<Fetched, FetchError>> {
    let queue = Mutex::new(urls.iter().enumerate());
    let results: Mutex<Vec<Option<Result<Fetched, FetchError>>>> = Mutex::new((0..urls.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(urls.len()) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((i, u)) = next else { break };
                    let r = cx.client.download(cx.store, u.as_str(), &Expect::default());
                    if let Ok(mut res) = results.lock() {
                        res[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .zip(urls)
        .map(|(r, u)| {
            r.unwrap_or_else(|| {
                Err(FetchError::Network {
                    url: u.to_string(),
                    message: "not fetched".into(),
                    attempts: 0,
                })
            })
        })
        .collect()
}
