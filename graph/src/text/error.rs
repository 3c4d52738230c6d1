//! Parse errors of the text form: position, offending text, expectation, and a rendering
//! with the source line and a caret underline.

/// An error in a text-form program. `Display` renders it as
///
/// ```text
/// 3:14: unknown op `foo`, expected an op name such as `add`, `exp` or `reduce_sum`
///   %1:f64[] = foo %x
///              ^^^
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// The offending text (empty at the end of the input).
    pub found: String,
    /// What is wrong and what was expected, quoting the offending text.
    pub message: String,
    /// The source line holding the offending text, for the underline.
    pub source_line: String,
    /// Number of characters to underline.
    pub width: usize,
}

impl ParseError {
    /// An error about the bytes `start..end` of `src`.
    pub(crate) fn at(src: &str, start: usize, end: usize, message: impl Into<String>) -> ParseError {
        let start = floor_char_boundary(src, start.min(src.len()));
        let end = floor_char_boundary(src, end.clamp(start, src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = src[..start].matches('\n').count() + 1;
        let column = src[line_start..start].chars().count() + 1;
        let found = &src[start..end.min(line_end).max(start)];
        let width = found.chars().count().max(1);
        ParseError {
            line,
            column,
            found: src[start..end].to_string(),
            message: message.into(),
            source_line: src[line_start..line_end].trim_end_matches('\r').to_string(),
            width,
        }
    }

    /// The message with its position, source line and underline.
    fn render(&self) -> String {
        // Control characters would shift the caret; show them as spaces or `?`.
        let shown: String = self
            .source_line
            .chars()
            .map(|c| {
                if c == '\t' {
                    ' '
                } else if c.is_control() {
                    '?'
                } else {
                    c
                }
            })
            .collect();
        let pad = " ".repeat(self.column.saturating_sub(1));
        let carets = "^".repeat(self.width);
        format!("{}:{}: {}\n{}\n{}{}", self.line, self.column, self.message, shown, pad, carets)
    }
}

/// Quotes offending text for a message: backticks, control characters escaped, long text cut.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::from("`");
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
