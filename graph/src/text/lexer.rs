//! The lexer of the text form: names (`%x`, `@f`, quoted `%"a b"`), identifiers, numbers,
//! punctuation; `//` comments and all whitespace are skipped.

use std::borrow::Cow;

use super::ParseError;
use super::error::quote;

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'a> {
    /// `%name`: an input or a binder.
    Local(Cow<'a, str>),
    /// `@name`: the function name.
    Global(Cow<'a, str>),
    /// A bare word: keyword, op name, dtype, `true`, `inf`, …
    Ident(&'a str),
    /// A numeric literal as written (`3`, `-0.5`, `1e-20`, `-inf`); validated by the parser.
    Number(&'a str),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `=`
    Equals,
    /// `;` (ends a `let` inside a fused kernel body)
    Semicolon,
    /// `$3`: operand 3 of a fused kernel, the digits as written.
    Arg(&'a str),
    /// `->`
    Arrow,
    /// End of the input.
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self, text: &str) -> String {
        match self {
            Tok::Eof => "end of input".to_string(),
            _ => quote(text),
        }
    }
}

/// A token with its byte span in the source.
#[derive(Clone, Debug)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub start: usize,
    pub end: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut lexer = Lexer { src, pos: 0, tokens: Vec::new() };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token<'a>>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn push(&mut self, tok: Tok<'a>, start: usize) {
        self.tokens.push(Token { tok, start, end: self.pos });
    }

    fn error(&self, start: usize, end: usize, message: String) -> ParseError {
        ParseError::at(self.src, start, end, message)
    }

    /// Advances past characters satisfying `pred`; returns the text taken.
    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !pred(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.src[start..self.pos]
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '/' if self.peek2() == Some('/') => {
                    self.take_while(|c| c != '\n');
                }
                '(' | ')' | '{' | '}' | '[' | ']' | ',' | ':' | '=' => {
                    self.pos += 1;
                    let tok = match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '{' => Tok::LBrace,
                        '}' => Tok::RBrace,
                        '[' => Tok::LBracket,
                        ']' => Tok::RBracket,
                        ',' => Tok::Comma,
                        ':' => Tok::Colon,
                        _ => Tok::Equals,
                    };
                    self.push(tok, start);
                }
                ';' => {
                    self.pos += 1;
                    self.push(Tok::Semicolon, start);
                }
                '$' if self.peek2().is_some_and(|c| c.is_ascii_digit()) => {
                    self.pos += 1;
                    let digits = self.take_while(|c| c.is_ascii_alphanumeric());
                    self.push(Tok::Arg(digits), start);
                }
                '-' if self.peek2() == Some('>') => {
                    self.pos += 2;
                    self.push(Tok::Arrow, start);
                }
                '-' if self.peek2().is_some_and(|c| c.is_ascii_alphanumeric()) => {
                    self.pos += 1;
                    self.number_or_word_rest();
                    self.push(Tok::Number(&self.src[start..self.pos]), start);
                }
                c if c.is_ascii_digit() => {
                    self.number_or_word_rest();
                    self.push(Tok::Number(&self.src[start..self.pos]), start);
                }
                '%' | '@' => {
                    self.pos += 1;
                    let name = self.name(start, c)?;
                    let tok = if c == '%' { Tok::Local(name) } else { Tok::Global(name) };
                    self.push(tok, start);
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let word = self.take_while(is_ident_char);
                    self.push(Tok::Ident(word), start);
                }
                other => {
                    let end = start + other.len_utf8();
                    return Err(self.error(start, end, format!("unexpected character {}", quote(&other.to_string()))));
                }
            }
        }
        let end = self.src.len();
        self.tokens.push(Token { tok: Tok::Eof, start: end, end });
        Ok(())
    }

    /// The rest of a number: digits, letters, `.`, `_`, and a sign right after an exponent
    /// `e`. Malformed numbers are taken whole so the parser can quote them.
    fn number_or_word_rest(&mut self) {
        let mut prev = ' ';
        while let Some(c) = self.peek() {
            let sign_of_exponent = (c == '+' || c == '-') && (prev == 'e' || prev == 'E');
            if !(is_name_char(c) || sign_of_exponent) {
                break;
            }
            self.pos += 1;
            prev = c;
        }
    }

    /// A name after `%` or `@`: bare (`[A-Za-z0-9_.]+`) or a quoted string with escapes.
    fn name(&mut self, start: usize, sigil: char) -> Result<Cow<'a, str>, ParseError> {
        if self.peek() == Some('"') {
            return self.quoted(start).map(Cow::Owned);
        }
        let name = self.take_while(is_name_char);
        if name.is_empty() {
            let end = self.pos + self.peek().map_or(0, char::len_utf8);
            return Err(self.error(start, end, format!("expected a name after `{sigil}`")));
        }
        Ok(Cow::Borrowed(name))
    }

    /// A quoted name: `"…"` with `\"`, `\\`, `\n`, `\t`, `\r` and `\u{…}` escapes.
    fn quoted(&mut self, start: usize) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, self.pos, "unterminated quoted name, expected a closing `\"`".into()));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => return Err(self.error(start, at, "unterminated quoted name, expected a closing `\"`".into())),
                '\\' => out.push(self.escape(at)?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, at: usize) -> Result<char, ParseError> {
        let c = self.peek();
        self.pos += c.map_or(0, char::len_utf8);
        match c {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('u') if self.peek() == Some('{') => {
                self.pos += 1;
                let hex = self.take_while(|c| c.is_ascii_hexdigit());
                let closed = self.peek() == Some('}');
                if closed {
                    self.pos += 1;
                }
                let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                match ch {
                    Some(ch) if closed && hex.len() <= 6 => Ok(ch),
                    _ => Err(self.error(
                        at,
                        self.pos,
                        "malformed `\\u{…}` escape, expected a Unicode scalar in hex".into(),
                    )),
                }
            }
            _ => Err(self.error(at, self.pos, "unknown escape, expected one of \\\" \\\\ \\n \\t \\r \\u{…}".into())),
        }
    }
}
