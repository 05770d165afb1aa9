//! Recipe errors. Each renders as one line that names the file, the place in it (line
//! and column, or the field's dotted path) and what to do about it.

use std::fmt;
use std::path::PathBuf;

/// Everything that can be wrong with a recipe. These are the user's errors: they exit
/// with status 2, tool failures with 1.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read recipe {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, an unknown key or a wrong type, found while parsing one file.
    #[error("{}:{line}:{column}: {message}", .file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: `extends` forms a cycle: {}", .chain[0].display(), show_chain(.chain))]
    Cycle { chain: Vec<PathBuf> },
    /// A value that parsed but makes no sense (a size that does not parse, overlapping
    /// partitions, a missing field ...). `field` is the dotted path, e.g.
    /// `image.partitions.root.size`.
    #[error("{}: {}: {message}", .file.display(), FieldPath(.field))]
    Field {
        file: PathBuf,
        field: String,
        message: String,
    },
    #[error("--set {key}: {message}")]
    Set { key: String, message: String },
    /// A command line that cannot run as given (a missing option clap cannot require).
    #[error("{message}")]
    CommandLine { message: String },
    /// Something the recipe names (a directory, an archive, a script, an overlay's
    /// template) found missing or wrong when a stage uses it; `message` names it.
    #[error("{message}")]
    Input { message: String },
}

struct FieldPath<'a>(&'a str);

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(top level)")
        } else {
            f.write_str(self.0)
        }
    }
}

fn show_chain(chain: &[PathBuf]) -> String {
    chain
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turns a serde message such as "unknown field `partiton`, expected one of `a`, `b`"
/// into one that suggests the nearest valid name.
pub fn suggest_in_message(message: &str) -> String {
    for what in ["unknown field", "unknown variant"] {
        let Some(rest) = message.find(what).map(|i| &message[i + what.len()..]) else {
            continue;
        };
        let names: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let Some((bad, valid)) = names.split_first() else {
            continue;
        };
        let prefix = &message[..message.find(what).unwrap_or(0)];
        let noun = if what == "unknown field" { "field" } else { "value" };
        let list = valid.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
        return match did_you_mean(bad, valid.iter().copied()) {
            Some(best) => {
                format!("{prefix}unknown {noun} `{bad}`, did you mean `{best}`? (valid: {list})")
            }
            None if valid.is_empty() => format!("{prefix}unknown {noun} `{bad}`"),
            None => format!("{prefix}unknown {noun} `{bad}` (valid: {list})"),
        };
    }
    message.to_string()
}

impl crate::fault::Fault for RecipeError {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_nearest_field() {
        let m = suggest_in_message("image: unknown field `partiton`, expected one of `table`, `partitions`, `blobs`");
        assert_eq!(
            m,
            "image: unknown field `partiton`, did you mean `partitions`? (valid: `table`, `partitions`, `blobs`)"
        );
    }

    #[test]
    fn no_suggestion_for_unrelated_word() {
        let m = suggest_in_message("unknown field `zzz`, expected `table` or `blobs`");
        assert_eq!(m, "unknown field `zzz` (valid: `table`, `blobs`)");
    }

    #[test]
    fn suggests_nearest_variant() {
        let m = suggest_in_message("unknown variant `ext5`, expected one of `vfat`, `ext4`, `raw`, `none`");
        assert!(m.contains("did you mean `ext4`?"), "{m}");
    }
}
