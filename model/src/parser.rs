//! The parser: tokens to statements, by recursive descent with precedence levels.
//!
//! Precedence, loosest first: comparisons (not chained), `+ -`, `* / @`, unary minus, `^`
//! (right-associative; its right operand may carry a sign: `2^-1`), then calls and
//! subscripts. So `-x^2` is `-(x^2)`, as in mathematics and Python.
//!
//! Nesting is limited ([`MAX_NESTING`] open brackets / unary signs, [`MAX_DEPTH`] levels of
//! tree), so no input can overflow the stack of the parser or of later passes.

use crate::ast::{Arg, BaseType, BinOp, Expr, ExprKind, Ident, IndexItem, Stmt, StmtKind, TypeDecl};
use crate::error::{Diag, ErrorKind, Span, did_you_mean};
use crate::lexer::{Tok, Token, tokenize};

/// Most brackets or signs open at once in one expression.
pub const MAX_NESTING: usize = 64;
/// Deepest expression tree (a chain `a + b + … ` of n terms is n levels deep).
pub const MAX_DEPTH: usize = 1000;

/// Words that cannot be used as names.
pub const KEYWORDS: &[&str] = &["data", "param", "let", "derived", "target", "None"];

/// Parses a whole model file into statements.
pub fn parse(text: &str) -> Result<Vec<Stmt>, Diag> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0, nesting: 0 };
    let mut stmts = Vec::new();
    loop {
        while p.peek() == &Tok::Newline {
            p.pos += 1;
        }
        if p.peek() == &Tok::Eof {
            return Ok(stmts);
        }
        stmts.push(p.statement()?);
    }
}

/// An expression and the depth of its tree.
type Parsed = Result<(Expr, usize), Diag>;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.token().tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        let i = (self.pos + k).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn token(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn span(&self) -> Span {
        self.token().span
    }

    fn prev_end(&self) -> usize {
        self.pos.checked_sub(1).map_or(0, |i| self.tokens[i].span.end)
    }

    fn bump(&mut self) -> Token {
        let t = self.token().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &str) -> Diag {
        let eof = self.tokens.last().map_or(0, |t| t.span.start);
        let at_end = matches!(self.peek(), Tok::Eof | Tok::Newline) && self.span().start >= eof;
        let found = if at_end { "end of file".to_string() } else { self.peek().describe() };
        Diag::new(ErrorKind::Syntax, self.error_span(), format!("expected {expected}, found {found}")).expected(expected.to_string())
    }

    /// The current token's span; at the end of the file, the end of the last token (so the
    /// error shows the line that is cut short, not an empty line after it).
    fn error_span(&self) -> Span {
        let eof = self.tokens.last().map_or(0, |t| t.span.start);
        let at_end = matches!(self.peek(), Tok::Eof | Tok::Newline) && self.span().start >= eof;
        if !at_end {
            return self.span();
        }
        let end = self.tokens.iter().rev().find(|t| !matches!(t.tok, Tok::Eof | Tok::Newline)).map_or(0, |t| t.span.end);
        Span::new(end, end)
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<Span, Diag> {
        if self.peek() == tok { Ok(self.bump().span) } else { Err(self.unexpected(expected)) }
    }

    /// Expects the closer of the bracket opened at `open`.
    fn close(&mut self, tok: &Tok, open: Span, what: &str) -> Result<Span, Diag> {
        if self.peek() == tok {
            return Ok(self.bump().span);
        }
        let sym = tok.symbol();
        Err(self.unexpected(&format!("{what} or `{sym}`")).note(open, format!("the bracket opened here is not closed by `{sym}`")))
    }

    fn ident(&mut self, what: &str) -> Result<Ident, Diag> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn enter(&mut self) -> Result<(), Diag> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(Diag::new(
                ErrorKind::Limit,
                self.span(),
                format!("expression nested too deeply (more than {MAX_NESTING} levels of brackets or signs)"),
            )
            .expected("a less deeply nested expression")
            .help("split the expression with `let` locals"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    // ---- statements -------------------------------------------------------------------

    fn statement(&mut self) -> Result<Stmt, Diag> {
        let start = self.span().start;
        let kind = match (self.peek().clone(), self.peek_at(1).clone()) {
            (Tok::Ident(kw), _) if kw == "data" || kw == "param" => {
                self.bump();
                let name = self.declared_name(&format!("a name after `{kw}`"))?;
                self.expect(&Tok::Colon, &format!("`:` and a type after `{kw} {}`", name.name))?;
                let ty = self.type_decl()?;
                if kw == "data" { StmtKind::Data { name, ty } } else { StmtKind::Param { name, ty } }
            }
            (Tok::Ident(kw), _) if kw == "let" || kw == "derived" => {
                self.bump();
                let name = self.declared_name(&format!("a name after `{kw}`"))?;
                self.expect(&Tok::Assign, &format!("`=` after `{kw} {}`", name.name))?;
                let (value, _) = self.expr()?;
                if kw == "let" { StmtKind::Let { name, value } } else { StmtKind::Derived { name, value } }
            }
            (Tok::Ident(kw), _) if kw == "target" => {
                self.bump();
                self.expect(&Tok::PlusAssign, "`+=` after `target`")?;
                let (value, _) = self.expr()?;
                StmtKind::Target { value }
            }
            (Tok::Ident(name), Tok::Assign) => {
                let span = self.span();
                return Err(Diag::new(ErrorKind::Syntax, span, format!("assignment to `{name}` needs `let` or `derived`"))
                    .expected("a statement: data, param, let, derived, target += or EXPR ~ DIST(…)")
                    .help(format!("write `let {name} = …` for a local or `derived {name} = …` to save it with the draws")));
            }
            _ => self.sample()?,
        };
        let span = Span::new(start, self.prev_end());
        match self.peek() {
            Tok::Newline | Tok::Eof => {
                self.bump();
                Ok(Stmt { kind, span })
            }
            Tok::RParen | Tok::RBracket => {
                let sym = self.peek().symbol();
                Err(self.unexpected("end of line").help(format!("this `{sym}` has no matching opening bracket")))
            }
            _ => Err(self.unexpected("end of line").help("write one statement per line")),
        }
    }

    fn declared_name(&mut self, what: &str) -> Result<Ident, Diag> {
        let name = self.ident(what)?;
        if KEYWORDS.contains(&name.name.as_str()) {
            return Err(Diag::new(ErrorKind::Syntax, name.span, format!("`{}` is a keyword and cannot be a name", name.name))
                .expected("a name that is not a keyword"));
        }
        Ok(name)
    }

    fn sample(&mut self) -> Result<StmtKind, Diag> {
        let (lhs, _) = self.expr()?;
        if self.peek() != &Tok::Tilde {
            let found = self.peek().describe();
            return Err(Diag::new(ErrorKind::Syntax, self.span(), format!("expected `~` after the expression, found {found}"))
                .expected("`~ DIST(…)`")
                .help("a statement is `data`, `param`, `let`, `derived`, `target += …` or `EXPR ~ DIST(…)`"));
        }
        self.bump();
        let dist = self.ident("a distribution name after `~`")?;
        let open = self.expect(&Tok::LParen, &format!("`(` after `{}`", dist.name))?;
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                let (arg, _) = self.expr()?;
                args.push(arg);
                if self.eat(&Tok::Comma) {
                    if self.eat(&Tok::RParen) {
                        break;
                    }
                    continue;
                }
                self.close(&Tok::RParen, open, "`,`")?;
                break;
            }
        }
        let rhs_span = Span::new(dist.span.start, self.prev_end());
        Ok(StmtKind::Sample { lhs, dist, args, rhs_span })
    }

    fn type_decl(&mut self) -> Result<TypeDecl, Diag> {
        let base_name = self.ident("a type (int, real, vector, matrix, simplex or ordered)")?;
        let base = BaseType::from_name(&base_name.name).ok_or_else(|| {
            Diag::new(ErrorKind::Syntax, base_name.span, format!("unknown type `{}`", base_name.name))
                .expected("int, real, vector, matrix, simplex or ordered")
                .maybe_help(did_you_mean(&base_name.name, ["int", "real", "vector", "matrix", "simplex", "ordered"]))
        })?;
        let (mut lower, mut upper) = (None, None);
        if self.peek() == &Tok::Lt {
            let open = self.bump().span;
            loop {
                let key = self.ident("`lower` or `upper`")?;
                let slot = match key.name.as_str() {
                    "lower" => &mut lower,
                    "upper" => &mut upper,
                    other => {
                        return Err(Diag::new(ErrorKind::Syntax, key.span, format!("unknown bound `{other}`"))
                            .expected("`lower` or `upper`")
                            .maybe_help(did_you_mean(other, ["lower", "upper"])));
                    }
                };
                if slot.is_some() {
                    return Err(Diag::new(ErrorKind::Duplicate, key.span, format!("bound `{}` given twice", key.name))
                        .expected("each bound at most once"));
                }
                self.expect(&Tok::Assign, &format!("`=` after `{}`", key.name))?;
                // Bounds are parsed above comparisons, so the closing `>` ends them.
                let (bound, _) = self.additive()?;
                *slot = Some(bound);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            self.close(&Tok::Gt, open, "`,`")?;
        }
        let mut dims = Vec::new();
        if self.peek() == &Tok::LBracket {
            let open = self.bump().span;
            loop {
                let (d, _) = self.expr()?;
                dims.push(d);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            self.close(&Tok::RBracket, open, "`,`")?;
        }
        let span = Span::new(base_name.span.start, self.prev_end());
        Ok(TypeDecl { base, base_span: base_name.span, lower, upper, dims, span })
    }

    // ---- expressions ------------------------------------------------------------------

    fn expr(&mut self) -> Parsed {
        self.enter()?;
        let result = self.comparison();
        self.leave();
        result
    }

    fn comparison(&mut self) -> Parsed {
        let lhs = self.additive()?;
        let Some(op) = comparison_op(self.peek()) else { return Ok(lhs) };
        self.bump();
        let rhs = self.additive()?;
        if comparison_op(self.peek()).is_some() {
            return Err(Diag::new(ErrorKind::Syntax, self.span(), "comparisons cannot be chained")
                .expected("end of the comparison")
                .help("compare two values at a time, e.g. `where(a < b, …)`"));
        }
        binary(op, lhs, rhs)
    }

    fn additive(&mut self) -> Parsed {
        self.left_assoc(Self::multiplicative, |t| match t {
            Tok::Plus => Some(BinOp::Add),
            Tok::Minus => Some(BinOp::Sub),
            _ => None,
        })
    }

    fn multiplicative(&mut self) -> Parsed {
        self.left_assoc(Self::unary, |t| match t {
            Tok::Star => Some(BinOp::Mul),
            Tok::Slash => Some(BinOp::Div),
            Tok::At => Some(BinOp::MatMul),
            _ => None,
        })
    }

    /// One left-associative precedence level: `operand (op operand)*`.
    fn left_assoc(&mut self, operand: fn(&mut Self) -> Parsed, op_of: fn(&Tok) -> Option<BinOp>) -> Parsed {
        let mut lhs = operand(self)?;
        while let Some(op) = op_of(self.peek()) {
            self.bump();
            let rhs = operand(self)?;
            lhs = binary(op, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Parsed {
        match self.peek() {
            Tok::Minus | Tok::Plus => {
                let sign = self.bump();
                self.enter()?;
                let operand = self.unary();
                self.leave();
                let (e, d) = operand?;
                if sign.tok == Tok::Plus {
                    return Ok((e, d));
                }
                let span = sign.span.to(e.span);
                depth_checked(Expr { kind: ExprKind::Neg(Box::new(e)), span }, d + 1)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Parsed {
        let base = self.postfix()?;
        if self.peek() != &Tok::Caret {
            return Ok(base);
        }
        self.bump();
        self.enter()?;
        let exponent = self.unary();
        self.leave();
        binary(BinOp::Pow, base, exponent?)
    }

    fn postfix(&mut self) -> Parsed {
        let (mut e, mut d) = self.primary()?;
        loop {
            match self.peek() {
                Tok::LParen => {
                    let ExprKind::Name(name) = &e.kind else {
                        return Err(Diag::new(ErrorKind::Syntax, self.span(), "only functions can be called")
                            .expected("an operator or end of line"));
                    };
                    let func = Ident { name: name.clone(), span: e.span };
                    let (args, arg_depth) = self.call_args()?;
                    let span = Span::new(func.span.start, self.prev_end());
                    (e, d) = depth_checked(Expr { kind: ExprKind::Call { func, args }, span }, arg_depth + 1)?;
                }
                Tok::LBracket => {
                    let (items, item_depth) = self.subscript()?;
                    let span = Span::new(e.span.start, self.prev_end());
                    let depth = d.max(item_depth) + 1;
                    (e, d) = depth_checked(Expr { kind: ExprKind::Index { base: Box::new(e), items }, span }, depth)?;
                }
                _ => return Ok((e, d)),
            }
        }
    }

    fn call_args(&mut self) -> Result<(Vec<Arg>, usize), Diag> {
        let open = self.bump().span;
        let mut args: Vec<Arg> = Vec::new();
        let mut depth = 0;
        if self.eat(&Tok::RParen) {
            return Ok((args, depth));
        }
        loop {
            let keyword = match (self.peek().clone(), self.peek_at(1)) {
                (Tok::Ident(name), Tok::Assign) => {
                    let span = self.bump().span;
                    self.bump();
                    Some(Ident { name, span })
                }
                _ => None,
            };
            if keyword.is_none()
                && let Some(kw) = args.iter().find_map(|a| a.keyword.as_ref())
            {
                return Err(Diag::new(ErrorKind::Syntax, self.span(), "positional argument after a keyword argument")
                    .expected("`name=value`")
                    .note(kw.span, "keyword argument given here"));
            }
            let (value, d) = self.expr()?;
            depth = depth.max(d);
            args.push(Arg { keyword, value });
            if self.eat(&Tok::Comma) {
                if self.eat(&Tok::RParen) {
                    break;
                }
                continue;
            }
            self.close(&Tok::RParen, open, "`,`")?;
            break;
        }
        Ok((args, depth))
    }

    fn subscript(&mut self) -> Result<(Vec<IndexItem>, usize), Diag> {
        let open = self.bump().span;
        let mut items = Vec::new();
        let mut depth = 0;
        loop {
            let item = match self.peek() {
                Tok::Ident(n) if n == "None" => IndexItem::NewAxis(self.bump().span),
                Tok::Colon => self.slice(None, &mut depth)?,
                Tok::RBracket if items.is_empty() => {
                    return Err(self.unexpected("an index, a slice or `None`"));
                }
                _ => {
                    let (e, d) = self.expr()?;
                    depth = depth.max(d);
                    if self.peek() == &Tok::Colon { self.slice(Some(e), &mut depth)? } else { IndexItem::Expr(e) }
                }
            };
            items.push(item);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.close(&Tok::RBracket, open, "`,`")?;
        Ok((items, depth))
    }

    /// A slice whose start (if any) is parsed; the current token is its first `:`.
    fn slice(&mut self, start: Option<Expr>, depth: &mut usize) -> Result<IndexItem, Diag> {
        let begin = start.as_ref().map_or(self.span().start, |e| e.span.start);
        self.bump();
        let mut part = |p: &mut Parser| -> Result<Option<Expr>, Diag> {
            if matches!(p.peek(), Tok::Colon | Tok::Comma | Tok::RBracket) {
                return Ok(None);
            }
            let (e, d) = p.expr()?;
            *depth = (*depth).max(d);
            Ok(Some(e))
        };
        let stop = part(self)?;
        let step = if self.eat(&Tok::Colon) { part(self)? } else { None };
        Ok(IndexItem::Slice { start, stop, step, span: Span::new(begin, self.prev_end()) })
    }

    fn primary(&mut self) -> Parsed {
        let token = self.token().clone();
        match token.tok {
            Tok::Int(i) => {
                self.bump();
                Ok((Expr { kind: ExprKind::Int(i), span: token.span }, 1))
            }
            Tok::Real(x) => {
                self.bump();
                Ok((Expr { kind: ExprKind::Real(x), span: token.span }, 1))
            }
            Tok::Ident(name) => {
                if name == "None" {
                    return Err(Diag::new(ErrorKind::Syntax, token.span, "`None` is only allowed inside a subscript")
                        .expected("a value")
                        .help("`x[:, None]` adds an axis of extent 1"));
                }
                if KEYWORDS.contains(&name.as_str()) {
                    return Err(Diag::new(ErrorKind::Syntax, token.span, format!("`{name}` is a keyword, not a value"))
                        .expected("a value")
                        .help("statements start at the beginning of a line"));
                }
                self.bump();
                Ok((Expr { kind: ExprKind::Name(name), span: token.span }, 1))
            }
            Tok::LParen => {
                self.bump();
                let (e, d) = self.expr()?;
                self.close(&Tok::RParen, token.span, "an operator")?;
                Ok((e, d))
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                let mut depth = 0;
                loop {
                    if self.peek() == &Tok::RBracket && !items.is_empty() {
                        break;
                    }
                    let (e, d) = self.expr()?;
                    depth = depth.max(d);
                    items.push(e);
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                self.close(&Tok::RBracket, token.span, "`,`")?;
                let span = Span::new(token.span.start, self.prev_end());
                depth_checked(Expr { kind: ExprKind::List(items), span }, depth + 1)
            }
            _ => Err(self.unexpected("a value (a number, a name, `(` or `[`)")),
        }
    }
}

fn comparison_op(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Lt => BinOp::Lt,
        Tok::Le => BinOp::Le,
        Tok::Gt => BinOp::Gt,
        Tok::Ge => BinOp::Ge,
        Tok::EqEq => BinOp::Eq,
        Tok::Ne => BinOp::Ne,
        _ => return None,
    })
}

fn binary(op: BinOp, (lhs, dl): (Expr, usize), (rhs, dr): (Expr, usize)) -> Parsed {
    let span = lhs.span.to(rhs.span);
    depth_checked(Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span }, dl.max(dr) + 1)
}

fn depth_checked(e: Expr, depth: usize) -> Parsed {
    if depth > MAX_DEPTH {
        return Err(Diag::new(ErrorKind::Limit, e.span, format!("expression too deep (more than {MAX_DEPTH} levels)"))
            .expected("a smaller expression")
            .help("split it with `let` locals, or sum many terms with `sum([…])`"));
    }
    Ok((e, depth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> Expr {
        match parse(&format!("target += {text}")).unwrap().remove(0).kind {
            StmtKind::Target { value } => value,
            other => panic!("not a target statement: {other:?}"),
        }
    }

    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(i) => i.to_string(),
            ExprKind::Real(x) => format!("{x:?}"),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Neg(a) => format!("(-{})", show(a)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", show(a), op.symbol(), show(b)),
            ExprKind::Call { func, args } => {
                let args: Vec<String> = args
                    .iter()
                    .map(|a| match &a.keyword {
                        Some(k) => format!("{}={}", k.name, show(&a.value)),
                        None => show(&a.value),
                    })
                    .collect();
                format!("{}({})", func.name, args.join(", "))
            }
            ExprKind::Index { base, items } => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        IndexItem::Expr(e) => show(e),
                        IndexItem::NewAxis(_) => "None".into(),
                        IndexItem::Slice { start, stop, step, .. } => {
                            let part = |p: &Option<Expr>| p.as_ref().map(show).unwrap_or_default();
                            format!("{}:{}:{}", part(start), part(stop), part(step))
                        }
                    })
                    .collect();
                format!("{}[{}]", show(base), items.join(", "))
            }
            ExprKind::List(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
        }
    }

    #[test]
    fn power_binds_tighter_than_unary_minus_and_is_right_associative() {
        assert_eq!(show(&expr("-x^2")), "(-(x ^ 2))");
        assert_eq!(show(&expr("a^b^c")), "(a ^ (b ^ c))");
        assert_eq!(show(&expr("2^-1")), "(2 ^ (-1))");
        assert_eq!(show(&expr("a - b - c")), "((a - b) - c)");
        assert_eq!(show(&expr("a + b * c @ d < 1")), "((a + ((b * c) @ d)) < 1)");
    }

    #[test]
    fn subscripts_slices_calls_and_lists() {
        assert_eq!(show(&expr("x[:, None]")), "x[::, None]");
        assert_eq!(show(&expr("a[1:]")), "a[1::]");
        assert_eq!(show(&expr("a[:n-1]")), "a[:(n - 1):]");
        assert_eq!(show(&expr("a[a:b:c]")), "a[a:b:c]");
        assert_eq!(show(&expr("X[i, j]")), "X[i, j]");
        assert_eq!(show(&expr("stack([a, b], axis=1)")), "stack([a, b], axis=1)");
    }

    #[test]
    fn statements_of_every_kind() {
        let stmts = parse("data J: int\nparam s: vector<lower=0, upper=J>[J] # c\nlet a = 1\nderived b = a\ny ~ normal(0, 1)\ntarget += a\n").unwrap();
        assert_eq!(stmts.len(), 6);
        let StmtKind::Param { ty, .. } = &stmts[1].kind else { panic!() };
        assert_eq!(ty.base, BaseType::Vector);
        assert!(ty.lower.is_some() && ty.upper.is_some());
        assert_eq!(ty.dims.len(), 1);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("target += {}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(parse(&deep).unwrap_err().kind, ErrorKind::Limit);
        let long = format!("target += x{}", " + x".repeat(10_000));
        assert_eq!(parse(&long).unwrap_err().kind, ErrorKind::Limit);
        let signs = format!("target += {}x", "-".repeat(10_000));
        assert_eq!(parse(&signs).unwrap_err().kind, ErrorKind::Limit);
    }
}
