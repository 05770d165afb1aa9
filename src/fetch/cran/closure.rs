//! The packages a CRAN mirror must hold so that `install.packages()` works offline: the
//! requested ones and, transitively, everything they name in `Depends`, `Imports` and
//! `LinkingTo` — what R itself installs by default (`dependencies = NA`). `Suggests` and
//! `Enhances` are not followed; R and its base packages come with every R installation.

use super::dcf::Stanza;
use std::collections::{BTreeMap, VecDeque};

/// The fields whose packages must be present for an installation to succeed.
pub const DEP_FIELDS: &[&str] = &["Depends", "Imports", "LinkingTo"];

/// Packages that ship with R and are never in a repository index.
pub const BASE_PACKAGES: &[&str] = &[
    "base",
    "compiler",
    "datasets",
    "graphics",
    "grDevices",
    "grid",
    "methods",
    "parallel",
    "splines",
    "stats",
    "stats4",
    "tcltk",
    "tools",
    "utils",
];

/// Package names in a dependency field: version constraints such as `(>= 1.0)` and
/// whitespace (continuation lines included) dropped; `R` and base packages skipped.
pub fn dep_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|item| {
            let name = item.split('(').next().unwrap_or("");
            let name: String = name.chars().filter(|c| !c.is_whitespace()).collect();
            let skip = name.is_empty() || name == "R" || BASE_PACKAGES.contains(&name.as_str());
            (!skip).then_some(name)
        })
        .collect()
}

/// The dependencies of one package, in field order, each once.
pub fn deps(stanza: &Stanza) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for field in DEP_FIELDS {
        for name in stanza.get(field).map(dep_names).unwrap_or_default() {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// A package the closure needs but the index lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub package: String,
    /// The requested package first, then each package that pulled in the next; empty
    /// when the missing package itself was requested.
    pub chain: Vec<String>,
}

/// Every package reachable from `roots` in `index` (name → stanza), by name; or every
/// needed package the index lacks, each with the shortest chain that needs it.
pub fn closure<'a>(
    index: &BTreeMap<String, &'a Stanza>,
    roots: &[String],
) -> Result<BTreeMap<String, &'a Stanza>, Vec<Missing>> {
    let mut found: BTreeMap<String, &Stanza> = BTreeMap::new();
    let mut missing: Vec<Missing> = Vec::new();
    let mut queue: VecDeque<(String, Vec<String>)> = roots.iter().map(|r| (r.clone(), Vec::new())).collect();
    while let Some((name, chain)) = queue.pop_front() {
        if found.contains_key(&name) || missing.iter().any(|m| m.package == name) {
            continue;
        }
        let Some(stanza) = index.get(&name) else {
            missing.push(Missing { package: name, chain });
            continue;
        };
        found.insert(name.clone(), stanza);
        for dep in deps(stanza) {
            let mut next = chain.clone();
            next.push(name.clone());
            queue.push_back((dep, next));
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        missing.sort_by(|a, b| a.package.cmp(&b.package));
        Err(missing)
    }
}

/// The error for packages missing from the index of one type: each package with who
/// needs it, the index URL, and what to do about it.
pub fn missing_message(kind: &str, index_url: &str, r_version: &str, missing: &[Missing], known: &[&str]) -> String {
    let mut lines = vec![format!(
        "CRAN type `{kind}`: {} not in the index {index_url}:",
        match missing.len() {
            1 => "1 package is".to_string(),
            n => format!("{n} packages are"),
        }
    )];
    for m in missing {
        let why = if m.chain.is_empty() {
            "requested in content.cran.packages".to_string()
        } else {
            format!("needed by {} → {}", m.chain.join(" → "), m.package)
        };
        let hint = match near(&m.package, known) {
            Some(n) if m.chain.is_empty() => format!("; did you mean `{n}`?"),
            _ => String::new(),
        };
        lines.push(format!("  {} ({why}){hint}", m.package));
    }
    lines.push(if kind == "source" {
        "hint: CRAN package names are case-sensitive; check the spelling, or `content.cran.repo` if it is not CRAN"
            .to_string()
    } else {
        format!(
            "hint: the repository has no `{kind}` build of these for R {r_version} (binaries lag behind source packages, or fail to build for some platforms); drop `{kind}` from content.cran.types, or the package that needs them"
        )
    });
    lines.join("\n")
}

/// A known name close to `name`: the same but for case, or a near spelling.
fn near<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&name.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(score, _)| *score > 0.92)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::super::dcf;
    use super::*;

    const INDEX: &str = "\
Package: pkgA
Version: 1.0
Depends: R (>= 3.5.0), methods
Imports: pkgB (>= 0.2),
  utils, stats
LinkingTo: pkgL
Suggests: pkgD, pkgE
Enhances: pkgF

Package: pkgB
Version: 0.2
Depends: pkgC(>=0.1), grDevices,

Package: pkgC
Version: 0.1
Imports: pkgA

Package: pkgL
Version: 3

Package: pkgD
Version: 1
";

    fn index(stanzas: &[Stanza]) -> BTreeMap<String, &Stanza> {
        stanzas
            .iter()
            .map(|s| (s.get("Package").unwrap().to_string(), s))
            .collect()
    }

    #[test]
    fn dependency_fields_drop_versions_whitespace_r_and_base_packages() {
        assert_eq!(
            dep_names("R (>= 3.5.0), methods, pkgB (>= 0.2),\n  utils, stats4,\tpkg.C(< 2),"),
            vec!["pkgB", "pkg.C"]
        );
        assert_eq!(dep_names(""), Vec::<String>::new());
        let s = dcf::parse(INDEX).unwrap();
        assert_eq!(
            deps(&s[0]),
            vec!["pkgB", "pkgL"],
            "Suggests and Enhances are not followed"
        );
    }

    #[test]
    fn closure_follows_depends_imports_linkingto_and_cycles() {
        let s = dcf::parse(INDEX).unwrap();
        let idx = index(&s);
        let got = closure(&idx, &["pkgA".into()]).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), ["pkgA", "pkgB", "pkgC", "pkgL"]);
        assert!(!got.contains_key("pkgD"), "Suggests are not mirrored");
        let got = closure(&idx, &["pkgC".into(), "pkgD".into()]).unwrap();
        assert_eq!(got.len(), 5, "a cycle (pkgC imports pkgA) ends: {:?}", got.keys());
    }

    #[test]
    fn missing_packages_are_reported_with_their_chain() {
        let s = dcf::parse(INDEX).unwrap();
        let mut idx = index(&s);
        idx.remove("pkgC");
        let err = closure(&idx, &["pkgA".into(), "pkga".into()]).unwrap_err();
        assert_eq!(
            err,
            vec![
                Missing {
                    package: "pkgC".into(),
                    chain: vec!["pkgA".into(), "pkgB".into()]
                },
                Missing {
                    package: "pkga".into(),
                    chain: vec![]
                },
            ]
        );
        let known: Vec<&str> = idx.keys().map(String::as_str).collect();
        let url = "https://cran.example/bin/windows/contrib/4.5/PACKAGES.gz";
        let msg = missing_message("win.binary", url, "4.5", &err, &known);
        assert!(
            msg.starts_with(&format!(
                "CRAN type `win.binary`: 2 packages are not in the index {url}:"
            )),
            "{msg}"
        );
        assert!(msg.contains("  pkgC (needed by pkgA → pkgB → pkgC)\n"), "{msg}");
        assert!(
            msg.contains("  pkga (requested in content.cran.packages); did you mean `pkgA`?"),
            "{msg}"
        );
        assert!(msg.contains("no `win.binary` build of these for R 4.5"), "{msg}");
        assert!(msg.contains("drop `win.binary` from content.cran.types"), "{msg}");
        let one = &err[..1];
        let msg = missing_message("source", "u", "4.5", one, &known);
        assert!(
            msg.starts_with("CRAN type `source`: 1 package is not in the index u:"),
            "{msg}"
        );
        assert!(msg.contains("case-sensitive"), "{msg}");
    }
}
