//! Every link of an HTML page or a style sheet, found and optionally replaced in one walk:
//! the crawler walks a page to learn what it links to (changing nothing), the writer walks
//! it again to point each link at the mirrored file — so the two agree on what a link is.

use anyhow::{Result, anyhow};
use lol_html::html_content::ContentType;
use lol_html::{HtmlRewriter, Settings, element, text};
use regex::bytes::{Captures, Regex};
use std::cell::RefCell;
use std::sync::LazyLock;
use url::Url;

/// What a link asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Another document (followed when it is below the start page's directory).
    Page,
    /// Something the page needs to display (fetched from the same origin anywhere).
    Requisite,
}

/// Called with each http(s) link (absolute, without its fragment); returns the new link
/// (without fragment) or None to leave it as written.
pub type Visit<'a> = dyn FnMut(&Url, Kind) -> Option<String> + 'a;

/// Attributes holding one URL: (selector, attribute, kind).
const ATTRS: &[(&str, &str, Kind)] = &[
    ("a[href]", "href", Kind::Page),
    ("area[href]", "href", Kind::Page),
    ("iframe[src]", "src", Kind::Page),
    ("frame[src]", "src", Kind::Page),
    ("img[src]", "src", Kind::Requisite),
    ("script[src]", "src", Kind::Requisite),
    ("source[src]", "src", Kind::Requisite),
    ("video[src]", "src", Kind::Requisite),
    ("audio[src]", "src", Kind::Requisite),
    ("track[src]", "src", Kind::Requisite),
    ("embed[src]", "src", Kind::Requisite),
    ("input[src]", "src", Kind::Requisite),
    ("object[data]", "data", Kind::Requisite),
    ("video[poster]", "poster", Kind::Requisite),
    ("audio[poster]", "poster", Kind::Requisite),
];

/// `<link rel=…>` values whose target the page needs.
const REQUISITE_RELS: &[&str] = &[
    "stylesheet",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "mask-icon",
    "preload",
    "modulepreload",
    "manifest",
];

struct Walk<'a, 'b> {
    base: Url,
    visit: &'b mut Visit<'a>,
    style: String,
}

impl Walk<'_, '_> {
    /// The replacement for an attribute value holding one URL (entities escaped), if it
    /// changes.
    fn attr(&mut self, raw: &str, kind: Kind) -> Option<String> {
        let value = unescape(raw);
        let new = link(&self.base, value.trim(), kind, self.visit)?;
        (new != value).then(|| escape(&new))
    }

    fn srcset(&mut self, raw: &str) -> Option<String> {
        let value = unescape(raw);
        let mut changed = false;
        let parts: Vec<String> = value
            .split(',')
            .map(|cand| {
                let cand = cand.trim();
                let (u, desc) = cand.split_once(char::is_whitespace).unwrap_or((cand, ""));
                match link(&self.base, u, Kind::Requisite, self.visit) {
                    Some(n) if n != u => {
                        changed = true;
                        if desc.is_empty() {
                            n
                        } else {
                            format!("{n} {}", desc.trim())
                        }
                    }
                    _ => cand.to_string(),
                }
            })
            .collect();
        changed.then(|| escape(&parts.join(", ")))
    }
}

/// Resolves `value` against `base` and asks `visit` about it; keeps the fragment.
fn link(base: &Url, value: &str, kind: Kind, visit: &mut Visit) -> Option<String> {
    if value.is_empty() || value.starts_with('#') {
        return None;
    }
    let mut u = base.join(value).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let fragment = u.fragment().map(str::to_string);
    u.set_fragment(None);
    let mut new = visit(&u, kind)?;
    if let Some(f) = fragment {
        new.push('#');
        new.push_str(&f);
    }
    Some(new)
}

/// Walks an HTML page at `page`, replacing links as `visit` says. A `<base href>` is
/// honoured and then removed (the rewritten links are relative to the page itself).
pub fn html(body: &[u8], page: &Url, visit: &mut Visit) -> Result<Vec<u8>> {
    let walk = RefCell::new(Walk {
        base: page.clone(),
        visit,
        style: String::new(),
    });
    let w = &walk;
    let mut handlers = vec![
        element!("base[href]", move |el| {
            let mut w = w.borrow_mut();
            if let Some(v) = el.get_attribute("href")
                && let Ok(b) = w.base.join(unescape(&v).trim())
            {
                w.base = b;
            }
            el.remove_attribute("href");
            Ok(())
        }),
        element!("link[href]", move |el| {
            let rel = el.get_attribute("rel").unwrap_or_default().to_ascii_lowercase();
            let kind = if rel.split_whitespace().any(|r| REQUISITE_RELS.contains(&r)) {
                Kind::Requisite
            } else {
                Kind::Page
            };
            if set(el, "href", |v| w.borrow_mut().attr(v, kind))? {
                // A rewritten style sheet no longer matches a Subresource Integrity hash.
                el.remove_attribute("integrity");
            }
            Ok(())
        }),
        element!("img[srcset], source[srcset]", move |el| {
            set(el, "srcset", |v| w.borrow_mut().srcset(v)).map(drop)
        }),
        element!("[style]", move |el| {
            set(el, "style", |v| {
                let mut w = w.borrow_mut();
                let value = unescape(v);
                let base = w.base.clone();
                let new = css(value.as_bytes(), &base, w.visit);
                (new != value.as_bytes()).then(|| escape(&String::from_utf8_lossy(&new)))
            })
            .map(drop)
        }),
        element!("meta[http-equiv][content]", move |el| {
            let equiv = el.get_attribute("http-equiv").unwrap_or_default();
            if !equiv.eq_ignore_ascii_case("refresh") {
                return Ok(());
            }
            set(el, "content", |v| {
                let value = unescape(v);
                let at = value.to_ascii_lowercase().find("url=")? + 4;
                let target = value[at..].trim().trim_matches(['\'', '"']);
                let new = w.borrow_mut().attr(target, Kind::Page)?;
                Some(format!("{}{new}", escape(&value[..at])))
            })
            .map(drop)
        }),
        text!("style", move |t| {
            let mut w = w.borrow_mut();
            w.style.push_str(t.as_str());
            if t.last_in_text_node() {
                let sheet = std::mem::take(&mut w.style);
                let base = w.base.clone();
                let new = css(sheet.as_bytes(), &base, w.visit);
                t.replace(&String::from_utf8_lossy(&new), ContentType::Html);
            } else {
                t.remove();
            }
            Ok(())
        }),
    ];
    for &(selector, attr, kind) in ATTRS {
        handlers.push(element!(selector, move |el| {
            if set(el, attr, |v| w.borrow_mut().attr(v, kind))? {
                el.remove_attribute("integrity");
            }
            Ok(())
        }));
    }
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    let settings = handlers
        .into_iter()
        .fold(Settings::new(), |s, h| s.append_element_content_handler(h));
    let mut rewriter = HtmlRewriter::new(settings, |c: &[u8]| out.extend_from_slice(c));
    rewriter.write(body).map_err(|e| anyhow!("{page}: {e}"))?;
    rewriter.end().map_err(|e| anyhow!("{page}: {e}"))?;
    Ok(out)
}

type Changed = std::result::Result<bool, Box<dyn std::error::Error + Send + Sync>>;

/// Sets `attr` to `new(old)` when that gives a value; says whether it did.
fn set(el: &mut lol_html::html_content::Element, attr: &str, new: impl FnOnce(&str) -> Option<String>) -> Changed {
    if let Some(v) = el.get_attribute(attr)
        && let Some(n) = new(&v)
    {
        el.set_attribute(attr, &n)?;
        return Ok(true);
    }
    Ok(false)
}

static CSS_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)|@import\s+(?:"([^"]*)"|'([^']*)')"#)
        .expect("valid regex")
});

/// Walks a style sheet (a file, a `<style>` block or a `style` attribute) whose URLs are
/// relative to `base`: `url(…)` and `@import "…"`. Everything else is kept byte for byte.
pub fn css(sheet: &[u8], base: &Url, visit: &mut Visit) -> Vec<u8> {
    CSS_URL
        .replace_all(sheet, |c: &Captures| {
            let whole = c.get(0).map(|m| m.as_bytes()).unwrap_or_default();
            let (i, m) = match (1..=5).find_map(|i| c.get(i).map(|m| (i, m))) {
                Some(found) => found,
                None => return whole.to_vec(),
            };
            let Ok(value) = std::str::from_utf8(m.as_bytes()) else {
                return whole.to_vec();
            };
            match link(base, value.trim(), Kind::Requisite, visit) {
                Some(new) if new != value => {
                    let q = if matches!(i, 2 | 5) { '\'' } else { '"' };
                    let new = new.replace(q, if q == '"' { "%22" } else { "%27" });
                    match i {
                        1..=3 => format!("url({q}{new}{q})").into_bytes(),
                        _ => format!("@import {q}{new}{q}").into_bytes(),
                    }
                }
                _ => whole.to_vec(),
            }
        })
        .into_owned()
}

/// Decodes the character references a URL attribute may hold (`&amp;`, `&#39;`, …).
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let n = name.strip_prefix('#')?;
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an attribute value (lol_html escapes the double quotes itself).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
}
