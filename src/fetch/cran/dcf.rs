//! Debian control format, as CRAN's `PACKAGES` indexes use it: stanzas separated by blank
//! lines, each line `Field: value`, a line starting with a space or tab continuing the
//! value above. Each stanza keeps its original text so a filtered index can repeat it
//! byte for byte.

use anyhow::{Result, bail};

/// One stanza (one package in a `PACKAGES` index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// Fields in the order they appear; continuation lines joined with `\n`, each
    /// line trimmed.
    pub fields: Vec<(String, String)>,
    /// The stanza's lines as written (without the blank lines around it).
    pub text: String,
    /// 1-based line number of its first line, for errors.
    pub line: usize,
}

impl Stanza {
    /// The value of a field (names are case-sensitive, as in R's `read.dcf`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Parses a whole index. A line that is neither `Field: value` nor a continuation is an
/// error naming its line number.
pub fn parse(text: &str) -> Result<Vec<Stanza>> {
    let mut out = Vec::new();
    let mut cur: Option<Stanza> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let n = i + 1;
        if line.trim().is_empty() {
            out.extend(cur.take());
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(st) = cur.as_mut() else {
                bail!("line {n}: a continuation line (starting with a space) before any field");
            };
            let Some((_, value)) = st.fields.last_mut() else {
                unreachable!("a stanza starts with a field");
            };
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(line.trim());
            st.text.push('\n');
            st.text.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            bail!("line {n}: `{}` is not `Field: value`", truncate(line));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!("line {n}: `{}` is not `Field: value`", truncate(line));
        }
        let st = cur.get_or_insert_with(|| Stanza {
            fields: Vec::new(),
            text: String::new(),
            line: n,
        });
        if !st.text.is_empty() {
            st.text.push('\n');
        }
        st.text.push_str(line);
        st.fields.push((name.to_string(), value.trim().to_string()));
    }
    out.extend(cur);
    Ok(out)
}

fn truncate(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// Writes stanzas back as an index: their original text, a blank line between them.
pub fn render<'a>(stanzas: impl IntoIterator<Item = &'a Stanza>) -> String {
    let mut out = String::new();
    for (i, s) in stanzas.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&s.text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "Package: A3\r
Version: 1.0.0\r
Depends: R (>= 2.15.0), xtable,\r
        pbapply\r
Suggests: randomForest, e1071\r
License: GPL (>= 2)\r
MD5sum: 027ebdd8affce8f0effaecfcd5f5ade2\r
NeedsCompilation: no\r
\r
\r
Package: abc\r
Version: 2.2.1\r
Imports:\r
\tabc.data,\r
\tnnet\r
";

    #[test]
    fn parses_stanzas_fields_and_continuation_lines() {
        let s = parse(INDEX).unwrap();
        assert_eq!(s.len(), 2, "two blank lines still separate just two stanzas");
        assert_eq!(s[0].get("Package"), Some("A3"));
        assert_eq!(s[0].get("Depends"), Some("R (>= 2.15.0), xtable,\npbapply"));
        assert_eq!(s[0].get("License"), Some("GPL (>= 2)"), "colons after the first stay");
        assert_eq!(s[0].get("package"), None, "field names are case-sensitive");
        assert_eq!(s[0].line, 1);
        assert_eq!(s[1].line, 11);
        assert_eq!(
            s[1].get("Imports"),
            Some("abc.data,\nnnet"),
            "value starting on the next line"
        );
        assert!(
            s[0].text
                .starts_with("Package: A3\nVersion: 1.0.0\nDepends: R (>= 2.15.0), xtable,\n        pbapply")
        );
        assert!(s[0].text.ends_with("NeedsCompilation: no"));
        assert_eq!(
            render(&s[1..]),
            "Package: abc\nVersion: 2.2.1\nImports:\n\tabc.data,\n\tnnet\n"
        );
        let again = render(&s);
        let fields = |v: &[Stanza]| v.iter().map(|s| (s.fields.clone(), s.text.clone())).collect::<Vec<_>>();
        assert_eq!(fields(&parse(&again).unwrap()), fields(&s), "rendering keeps the text");
        assert!(again.contains("NeedsCompilation: no\n\nPackage: abc\n"));
    }

    #[test]
    fn rejects_malformed_lines_with_their_number() {
        let err = parse("Package: a\nVersion 1\n").unwrap_err();
        assert!(
            err.to_string().contains("line 2: `Version 1` is not `Field: value`"),
            "{err}"
        );
        let err = parse("  indented first\n").unwrap_err();
        assert!(err.to_string().contains("line 1: a continuation line"), "{err}");
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("\n\n").unwrap(), vec![]);
    }
}
