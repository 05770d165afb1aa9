//! The lesson-site link rewriter on any page: every link it is asked about is an http(s)
//! URL, and the rewritten page comes back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use imgbuild::fetch::site::rewrite;

fuzz_target!(|data: &[u8]| {
    let page = url::Url::parse("https://example.github.io/lesson/episodes/01.html").expect("a URL");
    let mut visit = |u: &url::Url, _kind: rewrite::Kind| {
        assert!(matches!(u.scheme(), "http" | "https"), "asked about {u}");
        Some("local.html".to_string())
    };
    let _ = rewrite::html(data, &page, &mut visit);
    let _ = rewrite::css(data, &page, &mut visit);
});
