use super::rewrite::{self, Kind};
use super::*;
use crate::fetch::lock::LockedFile;
use std::collections::BTreeMap;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// Rewrites `html` at `page`, mapping URLs below https://h.org/l/ to `L:<url path>` and
/// recording every URL seen.
fn rewrite_html(html: &str, page: &str) -> (String, Vec<(String, Kind)>) {
    let mut seen = Vec::new();
    let mut visit = |u: &Url, k: Kind| {
        seen.push((u.to_string(), k));
        u.as_str().strip_prefix("https://h.org/l/").map(|p| format!("L:{p}"))
    };
    let out = rewrite::html(html.as_bytes(), &url(page), &mut visit).unwrap();
    (String::from_utf8(out).unwrap(), seen)
}

#[test]
fn rewrites_html_links_and_requisites() {
    let (out, seen) = rewrite_html(
        r##"<a href="a.html#x">a</a><a href="#top">t</a><a href="mailto:x@y">m</a>
<img src="i.png" srcset="i.png 1x, /l/i2.png 2x, https://cdn.org/i.png 3x">
<link rel="stylesheet" href="s.css" integrity="sha384-x"><link rel="canonical" href="https://h.org/l/p/">
<script src="../../x.js?a=1&amp;b=2"></script><video poster="v.jpg"><source src="v.mp4"></video>
<div style="background: url('bg.png')">d</div><style>@import "imp.css"; p { background: url(p.png) }</style>
<meta http-equiv="refresh" content="0; url=new.html">"##,
        "https://h.org/l/p/",
    );
    assert!(out.contains(r#"<a href="L:p/a.html#x">"#), "{out}");
    assert!(
        out.contains(r##"<a href="#top">"##) && out.contains(r#"href="mailto:x@y""#),
        "{out}"
    );
    assert!(
        out.contains(r#"srcset="L:p/i.png 1x, L:i2.png 2x, https://cdn.org/i.png 3x""#),
        "{out}"
    );
    assert!(
        out.contains(r#"<link rel="stylesheet" href="L:p/s.css">"#),
        "integrity dropped: {out}"
    );
    assert!(
        out.contains(r#"<script src="../../x.js?a=1&amp;b=2">"#),
        "left as written: {out}"
    );
    assert!(
        out.contains(r#"poster="L:p/v.jpg""#) && out.contains(r#"src="L:p/v.mp4""#),
        "{out}"
    );
    assert!(out.contains(r#"style="background: url('L:p/bg.png')""#), "{out}");
    assert!(
        out.contains(r#"@import "L:p/imp.css"; p { background: url("L:p/p.png") }"#),
        "{out}"
    );
    assert!(out.contains(r#"content="0; url=L:p/new.html""#), "{out}");
    let kind = |u: &str| seen.iter().find(|(s, _)| s == u).map(|(_, k)| *k);
    assert_eq!(kind("https://h.org/l/p/a.html"), Some(Kind::Page));
    assert_eq!(kind("https://h.org/l/p/"), Some(Kind::Page));
    assert_eq!(kind("https://h.org/l/p/s.css"), Some(Kind::Requisite));
    assert_eq!(kind("https://h.org/l/p/bg.png"), Some(Kind::Requisite));
    assert_eq!(kind("https://h.org/x.js?a=1&b=2"), Some(Kind::Requisite));
    assert!(seen.iter().all(|(u, _)| u.starts_with("http")), "{seen:?}");
}

#[test]
fn honours_and_removes_base_href() {
    let (out, _) = rewrite_html(
        r#"<head><base href="https://h.org/l/sub/"></head><a href="x.html">x</a>"#,
        "https://h.org/l/",
    );
    assert!(
        out.contains(r#"<base>"#) && out.contains(r#"href="L:sub/x.html""#),
        "{out}"
    );
}

#[test]
fn rewrites_css_urls_and_imports() {
    let css = br#"@import url("a.css"); @import 'b.css';
@font-face { src: url(../fonts/f.woff2) format("woff2"), url( "data:font/woff;base64,AA" ); }
.x { background: URL('/img/bg.png') } .y { background: url(https://cdn.org/z.png) }"#;
    let mut visit = |u: &Url, _| Some(format!("<{}>", u.path()));
    let out = rewrite::css(css, &url("https://h.org/l/css/main.css"), &mut visit);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(r#"@import url("</l/css/a.css>")"#), "{out}");
    assert!(out.contains(r#"@import '</l/css/b.css>'"#), "{out}");
    assert!(
        out.contains(r#"src: url("</l/fonts/f.woff2>") format("woff2")"#),
        "{out}"
    );
    assert!(
        out.contains(r#"url( "data:font/woff;base64,AA" )"#),
        "data: untouched: {out}"
    );
    assert!(
        out.contains(r#"url('</img/bg.png>')"#) && out.contains("url(\"</z.png>\")"),
        "{out}"
    );
}

#[test]
fn unescapes_attribute_values() {
    assert_eq!(rewrite::unescape("a&amp;b&#39;c&#x41;&bogus;&"), "a&b'cA&bogus;&");
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    cache: crate::cache::Cache,
    client: crate::fetch::http::Client,
    out: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cache = crate::cache::Cache::open(dir.path().join("cache"), true).unwrap();
        Fixture {
            store: Store::open(cache.root()).unwrap(),
            cache,
            client: crate::fetch::http::Client::default(),
            out: dir.path().join("out"),
            _dir: dir,
        }
    }

    fn file(&self, url: &str, body: &str, redirect: Option<&str>) -> LockedFile {
        LockedFile {
            url: url.into(),
            size: body.len() as u64,
            sha256: self.store.insert_bytes(body.as_bytes()).unwrap(),
            path: None,
            redirect: redirect.map(str::to_string),
            requires_python: None,
            stanza: None,
        }
    }

    fn cx(&self) -> Cx<'_> {
        Cx {
            client: &self.client,
            store: &self.store,
            cache: &self.cache,
            reporter: &crate::report::Silent,
            scratch: &self.out,
            offline: false,
        }
    }

    fn materialize(&self, plan: &SitePlan, files: Vec<LockedFile>) -> Result<()> {
        let entry = LockedSource {
            files,
            ..Default::default()
        };
        materialize(plan, &entry, &self.cx(), &self.out)
    }

    fn read(&self, p: &str) -> String {
        fs_err::read_to_string(self.out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }
}

fn plan(url: &str) -> SitePlan {
    SitePlan {
        name: "l".into(),
        url: url.into(),
        group: "g".into(),
        title: "L".into(),
        path: "lessons/g/l".into(),
    }
}

#[test]
fn materializes_from_the_lock_alone() {
    let fx = Fixture::new();
    let page = r#"<a href="e/1.html#s">1</a> <a href="old.html">old</a> <a href="/other/">o</a>
<a href="https://example.org/">x</a> <a href="e/?q=1">q</a> <a href="gone.html">g</a>
<link rel="stylesheet" href="/assets/site.css"><img src="e/i.png">"#;
    let files = vec![
        fx.file("https://h.org/l", page, Some("https://h.org/l/")),
        fx.file("https://h.org/l/", page, None),
        fx.file("https://h.org/l/old.html", "one", Some("https://h.org/l/e/1.html")),
        fx.file("https://h.org/l/e/1.html", r#"<a href="../">up</a>"#, None),
        fx.file("https://h.org/l/e/?q=1", "<!DOCTYPE html>q", None),
        fx.file("https://h.org/l/e/i.png", "PNG", None),
        fx.file("https://h.org/assets/site.css", "b{background:url(../l/e/i.png)}", None),
    ];
    fx.materialize(&plan("https://h.org/l"), files).unwrap();
    let index = fx.read("lessons/g/l/index.html");
    let q = format!("e/index-{}.html", urlmap::short_hash("q=1"));
    for want in [
        r#"href="e/1.html#s""#,
        r#"href="e/1.html">old"#,
        r#"href="https://h.org/other/""#,
        r#"href="https://example.org/""#,
        &format!(r#"href="{q}""#),
        r#"href="https://h.org/l/gone.html""#,
        r#"href="_root/assets/site.css""#,
        r#"src="e/i.png""#,
    ] {
        assert!(index.contains(want), "{want} in {index}");
    }
    assert_eq!(fx.read("lessons/g/l/e/1.html"), r#"<a href="../index.html">up</a>"#);
    assert_eq!(
        fx.read("lessons/g/l/_root/assets/site.css"),
        r#"b{background:url("../../e/i.png")}"#
    );
    assert_eq!(fx.read(&format!("lessons/g/l/{q}")), "<!DOCTYPE html>q");
    assert_eq!(fx.read("lessons/g/l/e/i.png"), "PNG");
    assert!(
        !fx.out.join("lessons/g/l/old.html").exists(),
        "redirects are links, not files"
    );
}

#[test]
fn refuses_lock_entries_outside_the_site() {
    for bad in ["https://h.org/l/a%2f..%2f..%2fx", "https://evil.org/l/x.html"] {
        let fx = Fixture::new();
        let files = vec![fx.file("https://h.org/l/", "<p>", None), fx.file(bad, "x", None)];
        let err = fx.materialize(&plan("https://h.org/l/"), files).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("can't") || msg.contains("not on the site's origin"),
            "{msg}"
        );
    }
}

#[test]
fn writes_the_lessons_index() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |name: &str, group: &str, title: &str| SitePlan {
        name: name.into(),
        url: format!("https://h.org/{name}/"),
        group: group.into(),
        title: title.into(),
        path: format!("lessons/{group}/{name}"),
    };
    let a = mk("shell-novice", "software-carpentry", "The Unix <Shell> & you");
    let b = mk("mine", "sites", "Mine");
    let c = mk("ecology", "data-carpentry", "Ecology");
    write_index(&[&a, &b, &c], dir.path()).unwrap();
    let html = fs_err::read_to_string(dir.path().join("lessons/index.html")).unwrap();
    assert!(
        html.contains(r#"<a href="software-carpentry/shell-novice/index.html">The Unix &lt;Shell&gt; &amp; you</a>"#),
        "{html}"
    );
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
    assert!(at("Data Carpentry") < at("Software Carpentry") && at("Software Carpentry") < at("<h2>sites"));
    assert!(at("data-carpentry/ecology/index.html") < at("sites/mine/index.html"));
    assert!(!html.contains("Library Carpentry"), "empty groups are left out");
}

/// Serves `pages` (path → body) over HTTP on localhost, one request per connection;
/// returns the base URL and the paths requested so far.
fn serve(pages: BTreeMap<String, String>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            // The headers are not needed; read them so the client sees a clean close.
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            seen.lock().unwrap().push(path.clone());
            let head = match pages.get(&path) {
                Some(body) => format!("200 OK\r\nContent-Length: {}\r\n", body.len()),
                None => "404 Not Found\r\nContent-Length: 0\r\n".to_string(),
            };
            let body = pages.get(&path).map(String::as_str).unwrap_or("");
            let _ = write!(stream, "HTTP/1.1 {head}Connection: close\r\n\r\n{body}");
        }
    });
    (base, log)
}

#[test]
fn a_site_with_more_pages_than_the_limit_is_an_error_before_they_are_fetched() {
    let mut pages = BTreeMap::new();
    let links: String = (1..=4).map(|i| format!(r#"<a href="p{i}.html">{i}</a>"#)).collect();
    pages.insert(
        "/l/".to_string(),
        format!(r#"<link rel="stylesheet" href="s.css">{links}"#),
    );
    for i in 1..=4 {
        pages.insert(format!("/l/p{i}.html"), format!("<p>page {i}</p>"));
    }
    pages.insert("/l/s.css".to_string(), "p{}".to_string());
    let (base, log) = serve(pages);
    let start = format!("{base}/l/");
    let fx = Fixture::new();

    // Five pages (the style sheet is not a page): exactly the limit is fine.
    let files = crawl::crawl("l", &start, &fx.cx(), 5).unwrap();
    assert_eq!(files.len(), 6, "{files:#?}");

    log.lock().unwrap().clear();
    let err = crawl::crawl("l", &start, &fx.cx(), 4).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "site `l`: more than 4 pages below {start}, the limit for one site (so that a URL naming a whole web site stops early); set `content.sites.l.url` to the directory of one lesson"
        )
    );
    assert_eq!(*log.lock().unwrap(), ["/l/"], "nothing past the start page was fetched");
}
