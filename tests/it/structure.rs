//! The crate's module graph points one way: a top-level module (a folder or file under
//! `src/`) that names another through `crate::…` never is named back, directly or round a
//! longer circle. Test code (`#[cfg(test)]` onwards) may import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
            let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
            if top == "main" || top == "lib" || rel.contains("tests") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let names = g.entry(top.clone()).or_default();
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    names.insert(name);
                }
            }
        }
    }
    g
}

/// A circle in `g`, if there is one (as the list of modules round it).
fn circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys().find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_in_one_direction() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(g.len() > 10, "read {} modules", g.len());
    assert!(g["pipeline"].contains("output"), "the scan sees imports");
    if let Some(c) = circle(&g) {
        panic!("modules import each other in a circle: {}", c.join(" → "));
    }
}

#[test]
fn a_circle_is_found() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert!(circle(&g).is_none());
}

/// Every test outside the fast tier (no network, no root) is ignored with a reason that
/// names its tier, and its name ends with `_tier_<tier>` so `ci/test.sh` can run the
/// tier on its own (`cargo test -- --ignored _tier_root`); no other test is ignored.
#[test]
fn slow_tests_are_labelled_with_their_tier() {
    const TIERS: [&str; 4] = ["root", "debian", "pypi", "qemu"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("tests"), root.join("src")];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, l) in lines.iter().enumerate() {
            let marker = concat!("#[", "ignore");
            if let Some(rest) = l.strip_prefix(marker) {
                let tier = rest
                    .strip_prefix(" = \"tier ")
                    .and_then(|r| r.split_once(':'))
                    .map(|(t, _)| t)
                    .filter(|t| TIERS.contains(t))
                    .unwrap_or_else(|| panic!("{}:{}: `{l}` names no tier of {TIERS:?}", p.display(), i + 1));
                let f = lines[i + 1..].iter().find(|l| l.starts_with("fn ")).unwrap();
                assert!(
                    f.contains(&format!("_tier_{tier}(")),
                    "{}: `{f}` is in tier {tier}: end its name with `_tier_{tier}`",
                    p.display()
                );
                seen += 1;
            } else if l.starts_with("fn ") && l.contains("_tier_") {
                let before = &lines[i.saturating_sub(3)..i];
                assert!(
                    before.iter().any(|b| b.starts_with(marker)),
                    "{}: `{l}` is named for a tier but not ignored",
                    p.display()
                );
            }
        }
    }
    assert!(seen >= 10, "found {seen} tier tests");
}

/// The pipeline's layers, lowest first: a module may name only modules of lower layers,
/// so no import runs back up (recipe → fetch | rootfs → image → output → verify, with the
/// shared leaves below and `doctor`, `pipeline`, `cli` on top). A new module needs a layer.
const LAYERS: &[&[&str]] = &[
    &["digest", "fault", "fsx", "interrupt", "net", "report", "rootpath"],
    &["build_info", "cache", "process"],
    &["recipe"],
    &["codec", "host"],
    &["fetch", "rootfs"],
    &["firmware"],
    &["image"],
    &["output"],
    &["verify"],
    &["doctor", "release"],
    &["pipeline"],
    &["cli"],
];

#[test]
fn every_import_points_down_the_layers() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    for (from, names) in &g {
        let Some(a) = layer(from) else {
            panic!("module `{from}` is in no layer of tests/it/structure.rs: add it where it belongs");
        };
        for to in names {
            let b = layer(to).unwrap_or_else(|| panic!("`{from}` names `{to}`, which is in no layer"));
            assert!(
                b < a,
                "`{from}` (layer {a}) names `{to}` (layer {b}): an import that runs back up"
            );
        }
    }
}
