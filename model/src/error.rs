//! Located errors of model and data files, rendered in the rustc/miette style.
//!
//! Every error the language or the data loader reports is a [`ModelError`]: what went wrong,
//! where (file, 1-based line and column, the offending byte span) and what was expected. Its
//! `Display` shows the source line with the span underlined:
//!
//! ```text
//! error: unknown name `thetaa`
//!  --> eight_schools.tess:12:12
//!    |
//! 12 | y ~ normal(thetaa, sigma)
//!    |            ^^^^^^ expected a declared name
//!    = help: did you mean `theta`?
//! ```

use std::fmt;
use std::sync::Arc;

/// A half-open byte range `start..end` in one source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end: end.max(start) }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// The class of an error, for programs that react to errors (tests, the CLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed text: unexpected character or token, unbalanced brackets, bad number.
    Syntax,
    /// A nesting depth or size limit was exceeded.
    Limit,
    /// A name that is not declared (or declared later).
    UnknownName,
    /// A function or distribution that does not exist.
    UnknownFunction,
    /// A name declared twice.
    Duplicate,
    /// A call with the wrong number (or names) of arguments.
    ArgCount,
    /// A value of the wrong kind (dtype, parameter where data is required, …).
    Type,
    /// Shapes that do not fit (broadcasting, matrix products, indices out of range).
    Shape,
    /// Malformed data file (invalid JSON).
    DataSyntax,
    /// A data field the model declares is missing from the data file.
    DataMissing,
    /// A data field of the wrong kind (a string, a ragged list, a non-integral int, …).
    DataType,
    /// A data field whose shape differs from the declaration.
    DataShape,
    /// A data value outside its declared bounds or its distribution's support.
    DataBound,
    /// (Warnings only.) A parameter transformed on the left of `~`, whose density then lacks
    /// the transform's log-Jacobian.
    Jacobian,
}

/// A place in a source file, with the line's text for rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file name as given by the caller.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// The offending byte span in the file.
    pub span: Span,
    /// The text of the line (without its newline).
    pub source_line: String,
    /// Width of the underline in characters (at least 1).
    pub width: usize,
}

/// A secondary location shown after the main one (e.g. "declared here").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// What the note says.
    pub message: String,
    /// Where it points.
    pub location: Location,
}

/// An error in a model or data file: message, location, expectation, optional help and notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    /// The class of error.
    pub kind: ErrorKind,
    /// One-line description of what is wrong.
    pub message: String,
    /// What was expected at the location (the label under the underline).
    pub expected: String,
    /// Where the error is (boxed: errors travel in `Result`s on cold paths and should keep
    /// the `Ok` side small).
    pub location: Box<Location>,
    /// A suggestion (e.g. a close name).
    pub help: Option<String>,
    /// Secondary locations.
    pub notes: Vec<Note>,
}

impl ModelError {
    /// The file name of the main location.
    pub fn file(&self) -> &str {
        &self.location.file
    }

    /// The 1-based line of the main location.
    pub fn line(&self) -> usize {
        self.location.line
    }

    /// The 1-based column of the main location.
    pub fn col(&self) -> usize {
        self.location.col
    }

    /// `(line, col)` of the main location.
    pub fn line_col(&self) -> (usize, usize) {
        (self.location.line, self.location.col)
    }
}

impl std::error::Error for ModelError {}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, "error")
    }
}

/// A located warning: rendered as a [`ModelError`] is, headed `warning:`; the model still
/// compiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelWarning(pub ModelError);

impl fmt::Display for ModelWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.render(f, "warning")
    }
}

impl ModelError {
    fn render(&self, f: &mut fmt::Formatter<'_>, severity: &str) -> fmt::Result {
        writeln!(f, "{severity}: {}", self.message)?;
        let gutter = self
            .notes
            .iter()
            .map(|n| n.location.line)
            .chain([self.location.line])
            .max()
            .unwrap_or(1)
            .to_string()
            .len();
        render_location(f, &self.location, &self.expected, gutter)?;
        if let Some(help) = &self.help {
            writeln!(f, "{:gutter$} = help: {help}", "")?;
        }
        for note in &self.notes {
            writeln!(f, "note: {}", note.message)?;
            render_location(f, &note.location, "", gutter)?;
        }
        Ok(())
    }
}

/// Longest source line shown in full; longer lines are cut to a window around the span.
const MAX_SHOWN_LINE: usize = 160;

fn render_location(f: &mut fmt::Formatter<'_>, loc: &Location, label: &str, gutter: usize) -> fmt::Result {
    writeln!(f, "{:gutter$}--> {}:{}:{}", "", loc.file, loc.line, loc.col)?;
    writeln!(f, "{:gutter$} |", "")?;
    let (shown, caret_col) = visible_line(&loc.source_line, loc.col - 1);
    writeln!(f, "{:>gutter$} | {shown}", loc.line)?;
    let width = loc.width.min(MAX_SHOWN_LINE);
    let carets = "^".repeat(width.max(1));
    if label.is_empty() {
        writeln!(f, "{:gutter$} | {:caret_col$}{carets}", "", "")
    } else {
        writeln!(f, "{:gutter$} | {:caret_col$}{carets} {label}", "", "")
    }
}

/// The line as displayed (control characters blanked so the caret stays aligned, long lines
/// cut around column `col0`), and the caret's 0-based column in it.
fn visible_line(line: &str, col0: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if chars.len() <= MAX_SHOWN_LINE {
        return (chars.into_iter().collect(), col0);
    }
    let start = col0.saturating_sub(60);
    let end = (start + MAX_SHOWN_LINE).min(chars.len());
    let mut shown = String::new();
    let mut caret = col0 - start;
    if start > 0 {
        shown.push('…');
        caret += 1;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

/// A source text with its name, which turns spans into [`Location`]s. The text is owned
/// (`Source<'static>`, from [`Source::new`]) or borrowed ([`Source::borrowed`]).
#[derive(Clone, Debug)]
pub struct Source<'t> {
    name: Arc<str>,
    text: Text<'t>,
}

#[derive(Clone, Debug)]
enum Text<'t> {
    Shared(Arc<str>),
    Borrowed(&'t str),
}

impl Source<'static> {
    /// A source `text` called `name` in error messages. Lines are counted only when an error
    /// is located (data files run to megabytes and most are never located in).
    pub fn new(name: &str, text: &str) -> Source<'static> {
        Source { name: Arc::from(name), text: Text::Shared(Arc::from(text)) }
    }
}

impl<'t> Source<'t> {
    /// A source that borrows its `text`: a data file of megabytes is not copied (copying it
    /// was a third of the time of reading the logistic regression's data, page faults and all).
    pub fn borrowed(name: &str, text: &'t str) -> Source<'t> {
        Source { name: Arc::from(name), text: Text::Borrowed(text) }
    }

    /// The file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text.
    pub fn text(&self) -> &str {
        match &self.text {
            Text::Shared(text) => text,
            Text::Borrowed(text) => text,
        }
    }

    /// The text of `span` (empty when it is out of range or not on char boundaries).
    pub fn slice(&self, span: Span) -> &str {
        self.text().get(span.start..span.end).unwrap_or("")
    }

    /// The location of `span`: line, column, the line's text and the underline width.
    pub fn locate(&self, span: Span) -> Location {
        let text = self.text();
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let before = &text[..start];
        let line_idx = before.bytes().filter(|&b| b == b'\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let col = text[line_start..start].chars().count() + 1;
        let width = text[start..end.min(line_end).max(start)].chars().count().max(1);
        Location {
            file: self.name.to_string(),
            line: line_idx + 1,
            col,
            span: Span::new(start, end),
            source_line: line_text.to_string(),
            width,
        }
    }

    /// An error at `span` of this source.
    pub fn error(&self, diag: Diag) -> ModelError {
        ModelError {
            kind: diag.kind,
            message: diag.message,
            expected: diag.expected,
            location: Box::new(self.locate(diag.span)),
            help: diag.help,
            notes: diag.notes.into_iter().map(|(span, message)| Note { message, location: self.locate(span) }).collect(),
        }
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An error located by spans in one source, before it is turned into a [`ModelError`].
/// The parser and the binder produce these; [`Source::error`] renders them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    /// The class of error.
    pub kind: ErrorKind,
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What was expected (label under the span).
    pub expected: String,
    /// A suggestion.
    pub help: Option<String>,
    /// Secondary spans in the same source.
    pub notes: Vec<(Span, String)>,
}

impl Diag {
    /// An error of `kind` at `span`.
    pub fn new(kind: ErrorKind, span: Span, message: impl Into<String>) -> Diag {
        Diag { kind, span, message: message.into(), expected: String::new(), help: None, notes: Vec::new() }
    }

    /// Sets the label saying what was expected.
    pub fn expected(mut self, expected: impl Into<String>) -> Diag {
        self.expected = expected.into();
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line if there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Diag {
        self.help = help;
        self
    }

    /// Adds a secondary location.
    pub fn note(mut self, span: Span, message: impl Into<String>) -> Diag {
        self.notes.push((span, message.into()));
        self
    }
}

/// The declared name closest to `name` (edit distance at most a third of its length, at
/// most 3, and less than the length of both, so `x` does not suggest `J`), for "did you mean".
pub fn closest_name<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let len = name.chars().count();
    let limit = (len / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= limit && *d < len && *d < c.chars().count())
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c.to_string())
}

/// "did you mean `x`?" for the closest candidate, if any.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest_name(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Levenshtein distance (insert, delete, substitute), on chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_chars_from_one() {
        let src = Source::new("m.tess", "ab\ncdé f\n");
        let loc = src.locate(Span::new(8, 9)); // 'f' after the 2-byte é
        assert_eq!((loc.line, loc.col, loc.width), (2, 5, 1));
        assert_eq!(loc.source_line, "cdé f");
    }

    #[test]
    fn empty_span_at_end_of_file_still_underlines_one_char() {
        let src = Source::new("m.tess", "x");
        let loc = src.locate(Span::new(1, 1));
        assert_eq!((loc.line, loc.col, loc.width), (1, 2, 1));
    }

    #[test]
    fn edit_distance_suggests_close_names_only() {
        assert_eq!(closest_name("thetaa", ["theta", "tau", "mu"]), Some("theta".into()));
        assert_eq!(closest_name("q", ["theta", "tau"]), None);
        assert_eq!(closest_name("x", ["J", "y"]), None);
        assert_eq!(closest_name("sigm", ["sigma"]), Some("sigma".into()));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
