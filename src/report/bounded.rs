//! Error text for a terminal: foreign text (a file's contents, a server's answer, an
//! archive's bytes) can end up inside an error message, and must not flood the screen or
//! reach the terminal as control characters. Every line is cut to a length and has its
//! control characters shown as escapes; a message keeps at most a screenful of lines.

/// The longest line shown, in characters.
pub const MAX_LINE: usize = 400;
/// The most lines one message keeps (a failing step shows the end of its log).
pub const MAX_LINES: usize = 40;

/// `line` with control characters escaped (`\x1b`, `\r`…) and cut to [`MAX_LINE`]
/// characters, saying how much was left out.
pub fn line(text: &str) -> String {
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown >= MAX_LINE {
            out.push_str(&format!("… ({} more characters)", text.chars().count() - shown));
            break;
        }
        match c {
            '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Every line of `text` through [`line`], the first [`MAX_LINES`] of them.
pub fn lines(text: &str) -> Vec<String> {
    let all: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = all.iter().take(MAX_LINES).map(|l| line(l)).collect();
    if all.len() > MAX_LINES {
        out.push(format!("… ({} more lines)", all.len() - MAX_LINES));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_is_cut() {
        assert_eq!(line("bad\u{1b}[2Jtar\r\u{7}"), "bad\\u{1b}[2Jtar\\r\\u{7}");
        let long = "x".repeat(MAX_LINE + 25);
        let cut = line(&long);
        assert!(cut.ends_with("… (25 more characters)") && cut.starts_with(&"x".repeat(MAX_LINE)));
        assert_eq!(line("naïve ünïcode"), "naïve ünïcode");
        let many = "l\n".repeat(MAX_LINES + 3);
        let shown = lines(&many);
        assert_eq!(shown.len(), MAX_LINES + 1);
        assert_eq!(shown.last().unwrap(), "… (3 more lines)");
    }
}
