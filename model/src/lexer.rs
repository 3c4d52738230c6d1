//! The tokenizer of the model language: names, numbers, punctuation and line ends.
//!
//! Line ends inside `(…)` and `[…]` are not tokens (a statement may continue over several
//! lines while a bracket is open, as in Python); `#` starts a comment to the end of the line.

use crate::error::{Diag, ErrorKind, Span};

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A name or keyword.
    Ident(String),
    /// An integer literal.
    Int(i64),
    /// A real literal.
    Real(f64),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `=`
    Assign,
    /// `+=`
    PlusAssign,
    /// `~`
    Tilde,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `^`
    Caret,
    /// `@`
    At,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// End of a statement's line.
    Newline,
    /// End of the file.
    Eof,
}

impl Tok {
    /// How the token is shown in messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Real(x) => format!("`{x}`"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    /// The punctuation's text (empty for names, numbers and line ends).
    pub fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Assign => "=",
            Tok::PlusAssign => "+=",
            Tok::Tilde => "~",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Caret => "^",
            Tok::At => "@",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Ident(_) | Tok::Int(_) | Tok::Real(_) | Tok::Newline | Tok::Eof => "",
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it is.
    pub span: Span,
}

/// Splits `text` into tokens, ending with [`Tok::Eof`]. Consecutive line ends are merged.
pub fn tokenize(text: &str) -> Result<Vec<Token>, Diag> {
    Lexer { text, bytes: text.as_bytes(), pos: 0, open: Vec::new(), out: Vec::new() }.run()
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Open brackets (to drop line ends inside them).
    open: Vec<u8>,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn run(mut self) -> Result<Vec<Token>, Diag> {
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            let start = self.pos;
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    if self.open.is_empty() {
                        self.push_newline(start);
                    }
                }
                b'#' => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.ident(),
                b'0'..=b'9' => self.number()?,
                b'.' if self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => self.number()?,
                _ => self.punct(start)?,
            }
        }
        self.push_newline(self.pos);
        let end = self.pos;
        self.out.push(Token { tok: Tok::Eof, span: Span::new(end, end) });
        Ok(self.out)
    }

    fn push_newline(&mut self, at: usize) {
        if !matches!(self.out.last(), None | Some(Token { tok: Tok::Newline, .. })) {
            self.out.push(Token { tok: Tok::Newline, span: Span::new(at, at + 1) });
        }
    }

    fn ident(&mut self) {
        let start = self.pos;
        while self.pos < self.bytes.len() && (self.bytes[self.pos].is_ascii_alphanumeric() || self.bytes[self.pos] == b'_') {
            self.pos += 1;
        }
        let name = self.text[start..self.pos].to_string();
        self.out.push(Token { tok: Tok::Ident(name), span: Span::new(start, self.pos) });
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), Diag> {
        let start = self.pos;
        let mut real = false;
        self.digits();
        if self.bytes.get(self.pos) == Some(&b'.') {
            real = true;
            self.pos += 1;
            self.digits();
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            real = true;
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                let span = Span::new(start, self.pos);
                return Err(Diag::new(ErrorKind::Syntax, span, "malformed number: the exponent has no digits")
                    .expected("a number such as `1e-3`"));
            }
        }
        if self.bytes.get(self.pos).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') {
            let end = self.pos + 1;
            return Err(Diag::new(ErrorKind::Syntax, Span::new(start, end), "malformed number: a letter follows the digits")
                .expected("an operator or a space after the number"));
        }
        let span = Span::new(start, self.pos);
        let text = &self.text[start..self.pos];
        let tok = if real {
            let x: f64 = text.parse().map_err(|_| Diag::new(ErrorKind::Syntax, span, "malformed number"))?;
            if !x.is_finite() {
                return Err(Diag::new(ErrorKind::Syntax, span, format!("number `{text}` is too large for a 64-bit float"))
                    .expected("a number of magnitude below 1.8e308"));
            }
            Tok::Real(x)
        } else {
            let i: i64 = text.parse().map_err(|_| {
                Diag::new(ErrorKind::Syntax, span, format!("integer `{text}` is too large"))
                    .expected("an integer below 2^63 (write a real such as `1e20` for large reals)")
            })?;
            Tok::Int(i)
        };
        self.out.push(Token { tok, span });
        Ok(())
    }

    fn punct(&mut self, start: usize) -> Result<(), Diag> {
        let c = self.bytes[start];
        let next = self.bytes.get(start + 1).copied();
        let (tok, len) = match (c, next) {
            (b'+', Some(b'=')) => (Tok::PlusAssign, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'=', Some(b'=')) => (Tok::EqEq, 2),
            (b'!', Some(b'=')) => (Tok::Ne, 2),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b',', _) => (Tok::Comma, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'=', _) => (Tok::Assign, 1),
            (b'~', _) => (Tok::Tilde, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'^', _) => (Tok::Caret, 1),
            (b'@', _) => (Tok::At, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            _ => return Err(self.stray(start)),
        };
        match tok {
            Tok::LParen => self.open.push(b'('),
            Tok::LBracket => self.open.push(b'['),
            Tok::RParen | Tok::RBracket => {
                // A mismatched closer is the parser's to report; here it only ends the nesting.
                self.open.pop();
            }
            _ => {}
        }
        self.pos += len;
        self.out.push(Token { tok, span: Span::new(start, start + len) });
        Ok(())
    }

    fn stray(&self, start: usize) -> Diag {
        let ch = self.text[start..].chars().next().unwrap_or('?');
        let span = Span::new(start, start + ch.len_utf8());
        let shown = if ch.is_control() { format!("{:?}", ch) } else { format!("`{ch}`") };
        let diag = Diag::new(ErrorKind::Syntax, span, format!("unexpected character {shown}"))
            .expected("a name, a number, an operator or a bracket");
        match ch {
            ';' => diag.help("statements end at the end of the line; no `;` is needed"),
            '{' | '}' => diag.help("blocks are not part of the language: one statement per line"),
            '"' | '\'' => diag.help("the language has no strings"),
            '!' => diag.help("use `!=` for \"not equal\""),
            '&' | '|' => diag.help("combine conditions with `where`, or multiply 0/1 indicators"),
            _ => diag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_names_and_operators() {
        assert_eq!(
            kinds("x+=1.5e2^-3 # c\n"),
            vec![
                Tok::Ident("x".into()),
                Tok::PlusAssign,
                Tok::Real(150.0),
                Tok::Caret,
                Tok::Minus,
                Tok::Int(3),
                Tok::Newline,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn line_ends_inside_brackets_are_not_tokens() {
        assert_eq!(
            kinds("f(a,\n b)\n\n\ny"),
            vec![
                Tok::Ident("f".into()),
                Tok::LParen,
                Tok::Ident("a".into()),
                Tok::Comma,
                Tok::Ident("b".into()),
                Tok::RParen,
                Tok::Newline,
                Tok::Ident("y".into()),
                Tok::Newline,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn huge_numbers_are_errors() {
        assert!(tokenize("1e999").unwrap_err().message.contains("too large"));
        assert!(tokenize("99999999999999999999").unwrap_err().message.contains("too large"));
    }
}
