//! Limits checked on a recipe file's text before it is parsed. The YAML parser's work
//! grows with the square of the nesting depth (200 KB of `[[[…` took 45 s to be refused),
//! and a recipe is a short hand-written file: one larger or deeper than any recipe could
//! be is refused at once, naming the file, the line and the limit.

use super::error::RecipeError;
use std::path::Path;

/// The largest recipe file read (the shipped ones are a few KiB).
pub const MAX_BYTES: u64 = 1 << 20;
/// The deepest nesting of flow collections (`[ … ]`, `{ … }`).
pub const MAX_FLOW_DEPTH: usize = 32;
/// The deepest indentation of a line, in columns (block collections nest by indenting).
pub const MAX_INDENT: usize = 160;

/// Refuses a file of more than [`MAX_BYTES`] before it is read whole.
pub fn check_size(path: &Path, len: u64) -> Result<(), RecipeError> {
    if len > MAX_BYTES {
        return Err(RecipeError::Parse {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!(
                "the file is larger than {MAX_BYTES} bytes, the most a recipe may have (is this the file you meant?)"
            ),
        });
    }
    Ok(())
}

/// Refuses text nested deeper than the limits above. Quoted strings and comments are
/// skipped, so brackets inside them do not count.
pub fn check_depth(path: &Path, text: &str) -> Result<(), RecipeError> {
    let too_deep = |line: usize, column: usize, message: String| RecipeError::Parse {
        file: path.to_path_buf(),
        line,
        column,
        message,
    };
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > MAX_INDENT {
            return Err(too_deep(
                n + 1,
                1,
                format!("indented {indent} columns; a recipe may nest at most {MAX_INDENT} columns deep"),
            ));
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (column, c) in line.char_indices() {
            match (quote, c) {
                (Some('\''), '\'') | (Some('"'), '"') if prev != '\\' => quote = None,
                (Some(_), _) => {}
                (None, '#') if prev == ' ' || prev == '\t' || column == 0 => break,
                // A quote opens a quoted scalar only where a token starts.
                (None, '\'' | '"') if column == 0 || matches!(prev, ' ' | '\t' | '[' | '{' | ',' | ':') => {
                    quote = Some(c)
                }
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(too_deep(
                            n + 1,
                            column + 1,
                            format!("brackets nested {depth} deep; a recipe may nest at most {MAX_FLOW_DEPTH}"),
                        ));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_recipes_pass_and_deep_ones_are_refused_with_their_place() {
        let p = Path::new("r.yaml");
        check_depth(
            p,
            "a: [1, {b: [2]}]\n# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nc: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
        )
        .unwrap();
        let deep = format!("x: 1\na: {}{}\n", "[".repeat(40), "]".repeat(40));
        let err = check_depth(p, &deep).unwrap_err().to_string();
        assert!(err.starts_with("r.yaml:2:36: brackets nested 33 deep"), "{err}");
        let indented = format!("a:\n{}b: 1\n", " ".repeat(200));
        assert!(
            check_depth(p, &indented)
                .unwrap_err()
                .to_string()
                .contains("r.yaml:2:1: indented 200")
        );
        assert!(
            check_size(p, MAX_BYTES + 1)
                .unwrap_err()
                .to_string()
                .contains("larger than 1048576 bytes")
        );
        check_size(p, 4096).unwrap();
    }
}
