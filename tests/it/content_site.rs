//! `content: sites:` end to end: a lesson web site served by the local HTTP fixture is
//! crawled by `imgbuild fetch`, and the mirror must work without the server — every link
//! either leads to a mirrored file or is an absolute link to something not mirrored.

use crate::common::*;
use crate::http_fixture::Server;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SITE: &str = "lessons/software-carpentry/mylesson";

/// Writes the fixture site (links need the server's address, so it starts first).
fn site(root: &Path, base: &str) {
    let w = |p: &str, body: &str| {
        write(root, p, body);
    };
    w(
        "lesson/index.html",
        &format!(
            r##"<!DOCTYPE html><html><head><title>Lesson</title>
<link rel="stylesheet" href="css/lesson.css"><link rel="stylesheet" href="/assets/site.css">
<link rel="icon" href="{base}/lesson/img/logo.png"><script src="js/app.js"></script></head>
<body><img src="img/logo.png" alt="logo"><img src="img/missing.png" alt="gone">
<a href="episodes/01.html">One</a> <a href="episodes/01.html#section-1">One, part 1</a>
<a href="episodes/02/">Two</a> <a href="{base}/lesson/episodes/02/#top">Two, absolute</a>
<a href="old.html">Old name of one</a> <a href="/other/page.html">Elsewhere on the host</a>
<a href="https://example.org/">Off site</a> <a href="#top">Top</a>
</body></html>"##
        ),
    );
    w(
        "lesson/episodes/01.html",
        r#"<!DOCTYPE html><html><head><link rel="stylesheet" href="/lesson/css/lesson.css"></head>
<body><h2 id="section-1">Part 1</h2><a href="../index.html">Home</a> <a href="02/#top">Next</a>
<img src="../img/logo.png" style="border-image: url('../img/bg.png') 30"></body></html>"#,
    );
    w(
        "lesson/episodes/02/index.html",
        &format!(
            r#"<!DOCTYPE html><html><head><style>body {{ background: url(../../img/bg.png) }}</style></head>
<body id="top"><a href="../01.html">Back</a> <a href="{base}/lesson/">Home</a>
<img src="../../img/logo.png" srcset="../../img/logo.png 1x, /lesson/img/logo2x.png 2x">
<a href="../../../other/page.html">Elsewhere again</a></body></html>"#
        ),
    );
    w(
        "lesson/css/lesson.css",
        "@font-face { font-family: F; src: url(\"../fonts/f.woff2\") format(\"woff2\"); }\n\
         body { background: url(../img/bg.png); }\n",
    );
    w("lesson/fonts/f.woff2", "wOF2 font bytes");
    w("lesson/img/bg.png", "PNG background");
    w("lesson/img/logo.png", "PNG logo");
    w("lesson/img/logo2x.png", "PNG logo 2x");
    w("lesson/js/app.js", "console.log('lesson');\n");
    w("assets/site.css", "header { background: url('/assets/shared.png') }\n");
    w("assets/shared.png", "PNG shared");
    w("other/page.html", "<!DOCTYPE html><p>not part of the lesson</p>");
}

fn recipe(dir: &Path, url: &str) -> PathBuf {
    write(
        dir,
        "site.yaml",
        &format!(
            "name: site-test\ncontent:\n  sites:\n    mylesson:\n      url: {url}\n      group: software-carpentry\n"
        ),
    )
}

fn fetch(recipe: &Path, out: &Path, cache: &Path, extra: &[&str]) -> std::process::Output {
    ok(fetch_cmd(recipe, out, cache).args(extra))
}

/// Every file below `dir`, by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Every link in a mirrored page or style sheet, as written.
fn links(text: &str) -> Vec<String> {
    let attr = Regex::new(r#"(?:href|src|poster)="([^"]*)""#).unwrap();
    let srcset = Regex::new(r#"srcset="([^"]*)""#).unwrap();
    let css = Regex::new(r#"url\(\s*["']?([^"')]*)["']?\s*\)"#).unwrap();
    let mut out: Vec<String> = attr
        .captures_iter(text)
        .chain(css.captures_iter(text))
        .map(|c| c[1].replace("&amp;", "&"))
        .collect();
    for c in srcset.captures_iter(text) {
        out.extend(
            c[1].split(',')
                .filter_map(|s| s.split_whitespace().next())
                .map(String::from),
        );
    }
    out
}

#[test]
fn mirrors_a_lesson_site_that_works_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("www"));
    site(server.root(), &server.base);
    server.redirect("/lesson/old.html", &server.url("/lesson/episodes/01.html"));
    // A busy server and a dropped connection are retried (and resumed), not broken links.
    server.fail("/lesson/js/app.js", 2);
    server.truncate("/lesson/fonts/f.woff2", 1);
    let recipe = recipe(tmp.path(), &server.url("/lesson/"));
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let run = fetch(&recipe, &out, &cache, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("img/missing.png"),
        "a missing requisite is a warning: {stderr}"
    );

    let root = out.join(SITE);
    let files = tree(&root);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "_root/assets/shared.png",
            "_root/assets/site.css",
            "css/lesson.css",
            "episodes/01.html",
            "episodes/02/index.html",
            "fonts/f.woff2",
            "img/bg.png",
            "img/logo.png",
            "img/logo2x.png",
            "index.html",
            "js/app.js",
        ],
    );
    // Every link leads into the mirror, or out of it by an absolute URL to something not
    // mirrored (the server is no longer needed for anything mirrored).
    let mut absolute = Vec::new();
    for (rel, body) in &files {
        if !(rel.ends_with(".html") || rel.ends_with(".css")) {
            continue;
        }
        let text = String::from_utf8(body.clone()).unwrap();
        for link in links(&text) {
            let target = link.split('#').next().unwrap();
            if target.is_empty() {
                continue;
            }
            if target.starts_with("http://") || target.starts_with("https://") {
                absolute.push(target.to_string());
                continue;
            }
            assert!(!link.contains("127.0.0.1") && !target.starts_with('/'), "{rel}: {link}");
            let file = root.join(rel).parent().unwrap().join(target);
            let file = file
                .canonicalize()
                .unwrap_or_else(|e| panic!("{rel}: {link} → {}: {e}", file.display()));
            assert!(
                file.starts_with(out.canonicalize().unwrap()),
                "{rel}: {link} leaves the mirror"
            );
            assert!(file.is_file(), "{rel}: {link}");
        }
    }
    absolute.sort();
    absolute.dedup();
    let mut want = vec![
        "https://example.org/".to_string(),
        server.url("/lesson/img/missing.png"),
        server.url("/other/page.html"),
    ];
    want.sort();
    assert_eq!(absolute, want);
    let index = String::from_utf8(files["index.html"].clone()).unwrap();
    for want in [
        r#"href="episodes/01.html#section-1""#,
        r#"href="episodes/02/index.html#top""#,
        r#"href="episodes/01.html">Old name of one"#,
        r#"href="_root/assets/site.css""#,
        r##"href="#top""##,
    ] {
        assert!(index.contains(want), "{want} in {index}");
    }
    let css = String::from_utf8(files["css/lesson.css"].clone()).unwrap();
    assert!(
        css.contains(r#"url("../fonts/f.woff2")"#) && css.contains("url(../img/bg.png)"),
        "{css}"
    );

    let log = server.log();
    assert!(
        !log.iter().any(|l| l.contains("/other/")),
        "out-of-prefix page requested: {log:?}"
    );
    // The lock names every file fetched, the redirect included.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("site.lock")).unwrap()).unwrap();
    let locked = lock["sources"]["site/mylesson"]["files"].as_array().unwrap();
    let urls: Vec<&str> = locked.iter().map(|f| f["url"].as_str().unwrap()).collect();
    let mut sorted = urls.clone();
    sorted.sort();
    assert_eq!(urls, sorted, "sorted by URL");
    assert!(
        log.iter().any(|l| l.starts_with("GET /lesson/fonts/f.woff2 range=")),
        "{log:?}"
    );
    for l in &log {
        let path = l.strip_prefix("GET ").unwrap().split(' ').next().unwrap();
        if path != "/lesson/img/missing.png" {
            assert!(urls.contains(&server.url(path).as_str()), "{path} not locked: {urls:?}");
        }
    }
    let mut want: Vec<String> = files
        .keys()
        .map(|f| match f.strip_prefix("_root/") {
            Some(f) => server.url(f),
            None => server.url(&format!("lesson/{}", f.replace("index.html", ""))),
        })
        .chain([server.url("lesson/index.html"), server.url("lesson/old.html")])
        .collect();
    want.sort();
    assert_eq!(urls, want, "every file, the redirect and the index page by both names");
    let old = locked
        .iter()
        .find(|f| f["url"] == server.url("/lesson/old.html"))
        .unwrap();
    assert_eq!(old["redirect"], server.url("/lesson/episodes/01.html"));

    // Offline, from the lock and the warm cache: the same tree, and no request.
    let out2 = tmp.path().join("out2");
    fetch(&recipe, &out2, &cache, &["--offline"]);
    assert_eq!(server.log().len(), log.len(), "--offline made requests");
    assert!(tree(&out2) == tree(&out), "offline tree differs");
}

#[test]
fn a_missing_start_page_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("www"));
    std::fs::create_dir_all(server.root()).unwrap();
    let url = server.url("/nothing/");
    let recipe = recipe(tmp.path(), &url);
    let mut c = imgbuild();
    c.env("IMGBUILD_RETRY_BACKOFF_MS", "1")
        .arg("fetch")
        .arg(&recipe)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"));
    let (_, err) = fails(&mut c);
    assert!(err.contains(&url) && err.contains("not found"), "{err}");
}
