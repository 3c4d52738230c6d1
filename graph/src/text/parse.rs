//! The parser: reads the text form back into a [`Graph`], building it through
//! `Graph::input` / `Graph::add` / `Graph::constant` (so hash-consing and type inference
//! apply) and checking every binder's declared type against the inferred one.

use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;

use super::error::quote;
use super::lexer::{Tok, Token, lex};
use super::{MAX_ELEMENTS, MAX_EXTENT, MAX_RANK, ParseError};
use crate::{
    Axes, BinaryOp, ConstData, ConstScalar, Constant, DType, FusedKernel, FusedReduce, Graph, NodeId, Op, ReduceOp,
    ScalarInstr, Shape, SliceRange, TensorType, UnaryOp, instr_dtype,
};

type Result<T> = std::result::Result<T, ParseError>;

/// Parses a program in the text form. Errors carry the line and column of the offending
/// text, quote it and say what was expected; no input makes this panic.
pub fn parse(src: &str) -> Result<Graph> {
    // A leading byte-order mark (Windows editors write one) is not part of the text.
    let src = src.strip_prefix('\u{FEFF}').unwrap_or(src);
    let tokens = lex(src)?;
    let newlines = src.match_indices('\n').map(|(i, _)| i).collect();
    let mut parser = Parser { src, tokens, pos: 0, graph: Graph::new(""), names: HashMap::new(), newlines };
    parser.function()?;
    Ok(parser.graph)
}

impl std::str::FromStr for Graph {
    type Err = ParseError;

    /// Parses the text form (see [`parse`]).
    fn from_str(src: &str) -> Result<Graph> {
        parse(src)
    }
}

/// A name bound in the function: its node and where it was bound.
struct Binding {
    id: NodeId,
    line_of_definition: usize,
}

/// An attribute value as written, before it is checked against its op.
enum AttrValue {
    Int(usize),
    Bool(bool),
    DType(DType),
    List(Vec<usize>),
    Ranges(Vec<PyRange>),
    Reduce(ReduceOp),
}

/// A Python slice `start:stop:step` as written, with its token span.
struct PyRange {
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    span: (usize, usize),
}

/// An attribute `key=value` with the span of its key.
struct Attr {
    key: String,
    value: AttrValue,
    span: (usize, usize),
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    graph: Graph,
    names: HashMap<String, Binding>,
    /// Byte offsets of the newlines, so line numbers cost a binary search, not a scan.
    newlines: Vec<usize>,
}

/// An operand as written: its node and its token span (for error positions).
struct Operand {
    id: NodeId,
    span: (usize, usize),
}

impl<'a> Parser<'a> {
    // ---- token plumbing ----

    fn peek(&self) -> &Tok<'a> {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn token(&self) -> &Token<'a> {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token<'a> {
        let t = self.token().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: &Token<'_>) -> &'a str {
        &self.src[t.start..t.end]
    }

    fn error_at(&self, span: (usize, usize), message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, span.0, span.1, message)
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        let t = self.token();
        self.error_at((t.start, t.end), message)
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> ParseError {
        let t = self.token();
        if t.tok == Tok::Eof {
            return self.error_here(format!("unexpected end of input, expected {what}"));
        }
        let found = t.tok.describe(self.text(t));
        self.error_here(format!("expected {what}, found {found}"))
    }

    fn expect(&mut self, tok: Tok<'static>, what: &str) -> Result<Token<'a>> {
        if *self.peek() == tok { Ok(self.advance()) } else { Err(self.expected(what)) }
    }

    fn eat(&mut self, tok: Tok<'static>) -> bool {
        let hit = *self.peek() == tok;
        if hit {
            self.advance();
        }
        hit
    }

    fn expect_keyword(&mut self, word: &str) -> Result<Token<'a>> {
        match self.peek() {
            Tok::Ident(w) if *w == word => Ok(self.advance()),
            _ => Err(self.expected(&format!("`{word}`"))),
        }
    }

    fn span(t: &Token<'_>) -> (usize, usize) {
        (t.start, t.end)
    }

    fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset.min(self.src.len())) + 1
    }

    // ---- the function ----

    fn function(&mut self) -> Result<()> {
        self.expect_keyword("func")?;
        let name = match self.peek().clone() {
            Tok::Global(n) => {
                self.advance();
                n.into_owned()
            }
            _ => return Err(self.expected("the function name `@name`")),
        };
        self.graph.set_name(name);
        self.expect(Tok::LParen, "`(` opening the parameter list")?;
        self.parameters()?;
        self.expect(Tok::Arrow, "`->` and the result type")?;
        let result_types = self.result_types()?;
        self.expect(Tok::LBrace, "`{` opening the body")?;
        loop {
            match self.peek() {
                Tok::Local(_) => self.binding()?,
                Tok::Ident("return") => break,
                Tok::RBrace => return Err(self.error_here("missing `return` before `}`")),
                Tok::Eof => return Err(self.expected("a binding `%name:type = op …` or `return`")),
                _ => return Err(self.expected("a binding `%name:type = op …` or `return`")),
            }
        }
        self.return_statement(&result_types)?;
        self.expect(Tok::RBrace, "`}` closing the body")?;
        if *self.peek() != Tok::Eof {
            return Err(self.expected("end of input after the function"));
        }
        Ok(())
    }

    fn parameters(&mut self) -> Result<()> {
        if self.eat(Tok::RParen) {
            return Ok(());
        }
        loop {
            let (name, span) = self.local_name("a parameter `%name: type`")?;
            self.check_fresh(&name, span)?;
            self.expect(Tok::Colon, "`:` and the parameter's type")?;
            let ty = self.tensor_type()?;
            let id = self.graph.input(&name, ty).map_err(|e| self.error_at(span, e.to_string()))?;
            self.names.insert(name, Binding { id, line_of_definition: self.line_of(span.0) });
            if self.eat(Tok::RParen) {
                return Ok(());
            }
            self.expect(Tok::Comma, "`,` or `)` in the parameter list")?;
        }
    }

    /// `T` or `(T1, T2, …)`, each with its span.
    fn result_types(&mut self) -> Result<Vec<(TensorType, (usize, usize))>> {
        let mut types = Vec::new();
        if !self.eat(Tok::LParen) {
            let start = self.token().start;
            let ty = self.tensor_type()?;
            types.push((ty, (start, self.tokens[self.pos.saturating_sub(1)].end)));
            return Ok(types);
        }
        if self.eat(Tok::RParen) {
            return Ok(types);
        }
        loop {
            let start = self.token().start;
            let ty = self.tensor_type()?;
            types.push((ty, (start, self.tokens[self.pos.saturating_sub(1)].end)));
            if self.eat(Tok::RParen) {
                return Ok(types);
            }
            self.expect(Tok::Comma, "`,` or `)` in the result types")?;
        }
    }

    fn local_name(&mut self, what: &str) -> Result<(String, (usize, usize))> {
        match self.peek().clone() {
            Tok::Local(n) => {
                let t = self.advance();
                Ok((n.into_owned(), Self::span(&t)))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn check_fresh(&self, name: &str, span: (usize, usize)) -> Result<()> {
        match self.names.get(name) {
            Some(b) => {
                let shown = quote(self.text_of(span));
                Err(self.error_at(span, format!("{shown} is already defined on line {}", b.line_of_definition)))
            }
            None => Ok(()),
        }
    }

    fn text_of(&self, span: (usize, usize)) -> &'a str {
        &self.src[span.0..span.1]
    }

    // ---- types ----

    /// `f64[3,4]`.
    fn tensor_type(&mut self) -> Result<TensorType> {
        let dtype = self.dtype()?;
        self.expect(Tok::LBracket, "`[` and the shape after the dtype (`[]` for a scalar)")?;
        let start = self.tokens[self.pos.saturating_sub(1)].start;
        let dims = self.usize_list_rest("an extent")?;
        let shape = self.checked_shape(dims, (start, self.tokens[self.pos.saturating_sub(1)].end))?;
        Ok(TensorType { dtype, shape })
    }

    fn dtype(&mut self) -> Result<DType> {
        let t = self.token().clone();
        match t.tok {
            Tok::Ident(w) => match DType::from_name(w) {
                Some(d) => {
                    self.advance();
                    Ok(d)
                }
                None => Err(self.error_here(format!("unknown dtype {}, expected `f64`, `i64` or `bool`", quote(w)))),
            },
            _ => Err(self.expected("a dtype (`f64`, `i64` or `bool`)")),
        }
    }

    /// A shape within the parser's limits (so no later size computation can overflow).
    fn checked_shape(&self, dims: Vec<usize>, span: (usize, usize)) -> Result<Shape> {
        if dims.len() > MAX_RANK {
            return Err(self.error_at(span, format!("rank {} is too large, at most {MAX_RANK} axes", dims.len())));
        }
        let size = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d).filter(|&s| s <= MAX_ELEMENTS));
        if size.is_none() {
            return Err(self.error_at(span, format!("shape has too many elements, at most {MAX_ELEMENTS}")));
        }
        Ok(Shape::new(&dims))
    }

    /// The rest of `[a, b, …]` after its `[`: unsigned integers.
    fn usize_list_rest(&mut self, what: &str) -> Result<Vec<usize>> {
        let mut items = Vec::new();
        if self.eat(Tok::RBracket) {
            return Ok(items);
        }
        loop {
            items.push(self.usize_value(what)?);
            if self.eat(Tok::RBracket) {
                return Ok(items);
            }
            self.expect(Tok::Comma, "`,` or `]`")?;
        }
    }

    /// An unsigned integer up to [`MAX_EXTENT`].
    fn usize_value(&mut self, what: &str) -> Result<usize> {
        let t = self.token().clone();
        let Tok::Number(text) = t.tok else { return Err(self.expected(what)) };
        let value = text.parse::<usize>().ok().filter(|&v| v <= MAX_EXTENT);
        match value {
            Some(v) => {
                self.advance();
                Ok(v)
            }
            None => Err(self.error_here(format!(
                "malformed integer {}, expected {what} (an integer from 0 to {MAX_EXTENT})",
                quote(text)
            ))),
        }
    }

    /// A signed integer whose magnitude is at most [`MAX_EXTENT`] (slice bounds and steps).
    fn small_i64(&mut self, what: &str) -> Result<i64> {
        let t = self.token().clone();
        let Tok::Number(text) = t.tok else { return Err(self.expected(what)) };
        let limit = MAX_EXTENT as i64;
        match text.parse::<i64>().ok().filter(|v| (-limit..=limit).contains(v)) {
            Some(v) => {
                self.advance();
                Ok(v)
            }
            None => Err(self.error_here(format!(
                "malformed integer {}, expected {what} (an integer of magnitude at most {MAX_EXTENT})",
                quote(text)
            ))),
        }
    }

    // ---- body ----

    fn binding(&mut self) -> Result<()> {
        let (name, name_span) = self.local_name("a binder `%name`")?;
        self.check_fresh(&name, name_span)?;
        self.expect(Tok::Colon, "`:` and the binder's type")?;
        let type_start = self.token().start;
        let declared = self.tensor_type()?;
        let type_span = (type_start, self.tokens[self.pos.saturating_sub(1)].end);
        self.expect(Tok::Equals, "`=`")?;
        let op_token = self.token().clone();
        let op_name = match op_token.tok {
            Tok::Ident(w) => w,
            _ => return Err(self.expected("an op name")),
        };
        self.advance();
        let op_span = Self::span(&op_token);
        let id = if op_name == "const" {
            let c = self.constant_value(&declared)?;
            self.graph.constant(c)
        } else {
            self.op_application(op_name, op_span)?
        };
        let inferred = self.graph.ty(id);
        if *inferred != declared {
            return Err(self.error_at(
                type_span,
                format!("declared type `{declared}` does not match the inferred type `{inferred}` of `{op_name}`"),
            ));
        }
        self.names.insert(name, Binding { id, line_of_definition: self.line_of(name_span.0) });
        Ok(())
    }

    /// `opname[attrs] operand, operand, …` after the op name.
    fn op_application(&mut self, op_name: &str, op_span: (usize, usize)) -> Result<NodeId> {
        if !is_op_name(op_name) {
            return Err(self.error_at(
                op_span,
                format!(
                    "unknown op {}, expected an op name such as `add`, `exp`, `reduce_sum`, `matmul` or `const`",
                    quote(op_name)
                ),
            ));
        }
        let attrs = if *self.peek() == Tok::LBracket { self.attributes()? } else { Vec::new() };
        if op_name == "fused" {
            return self.fused_application(op_span, attrs);
        }
        let operands = self.operand_list()?;
        let ids: Vec<NodeId> = operands.iter().map(|o| o.id).collect();
        let types: Vec<TensorType> = ids.iter().map(|&i| self.graph.ty(i).clone()).collect();
        let op = self.build_op(op_name, op_span, attrs, &types)?;
        self.graph.add(op, &ids).map_err(|e| self.error_at(op_span, e.to_string()))
    }

    fn operand_list(&mut self) -> Result<Vec<Operand>> {
        let mut operands = vec![self.operand()?];
        while self.eat(Tok::Comma) {
            operands.push(self.operand()?);
        }
        Ok(operands)
    }

    /// `%name` or an inline scalar literal `VALUE:DTYPE`.
    fn operand(&mut self) -> Result<Operand> {
        let t = self.token().clone();
        match &t.tok {
            Tok::Local(name) => {
                self.advance();
                match self.names.get(name.as_ref()) {
                    Some(b) => Ok(Operand { id: b.id, span: Self::span(&t) }),
                    None => Err(self.error_at(Self::span(&t), format!("undefined name {}", quote(self.text(&t))))),
                }
            }
            Tok::Number(_) | Tok::Ident(_) if is_literal_start(&t.tok) => {
                self.advance();
                if !self.eat(Tok::Colon) {
                    let text = self.text(&t);
                    return Err(self.error_at(
                        Self::span(&t),
                        format!("literal {} needs a dtype, as in `{text}:f64`", quote(text)),
                    ));
                }
                let dtype = self.dtype()?;
                let c = self.scalar_literal(&t, dtype)?;
                Ok(Operand { id: self.graph.constant(c), span: Self::span(&t) })
            }
            _ => Err(self.expected("an operand (`%name` or a literal such as `2.0:f64`)")),
        }
    }

    fn return_statement(&mut self, result_types: &[(TensorType, (usize, usize))]) -> Result<()> {
        let ret = self.expect_keyword("return")?;
        let operands = if *self.peek() == Tok::RBrace { Vec::new() } else { self.operand_list()? };
        if operands.len() != result_types.len() {
            return Err(self.error_at(
                Self::span(&ret),
                format!("`return` gives {} value(s), the signature declares {}", operands.len(), result_types.len()),
            ));
        }
        for (k, (o, (declared, _))) in operands.iter().zip(result_types).enumerate() {
            let actual = self.graph.ty(o.id);
            if actual != declared {
                return Err(self
                    .error_at(o.span, format!("output {k} has type `{actual}`, the signature declares `{declared}`")));
            }
        }
        let ids: Vec<NodeId> = operands.iter().map(|o| o.id).collect();
        self.graph.set_outputs(&ids).map_err(|e| self.error_at(Self::span(&ret), e.to_string()))
    }

    // ---- literals and constants ----

    /// The value of a scalar literal token as a constant of `dtype`.
    fn scalar_literal(&self, t: &Token<'_>, dtype: DType) -> Result<Constant> {
        let text = self.text(t);
        let bad = |want: &str| {
            self.error_at(Self::span(t), format!("malformed {} literal {}, expected {want}", dtype, quote(text)))
        };
        match dtype {
            DType::F64 => {
                parse_f64(text).map(Constant::f64).ok_or_else(|| bad("a number such as `1.5`, `-2e-3`, `inf` or `nan`"))
            }
            DType::I64 => text.parse::<i64>().map(Constant::i64).map_err(|_| bad("an integer")),
            DType::Bool => match text {
                "true" => Ok(Constant::bool(true)),
                "false" => Ok(Constant::bool(false)),
                _ => Err(bad("`true` or `false`")),
            },
        }
    }

    /// The value after `const`: nested lists matching the declared type, or a bare scalar.
    fn constant_value(&mut self, declared: &TensorType) -> Result<Constant> {
        let capacity = declared.shape.size().min(1 << 16);
        let mut elems = match declared.dtype {
            DType::F64 => Elems::F64(Vec::with_capacity(capacity)),
            DType::I64 => Elems::I64(Vec::with_capacity(capacity)),
            DType::Bool => Elems::Bool(Vec::with_capacity(capacity)),
        };
        let start = self.token().start;
        if declared.shape.is_scalar() {
            self.element(&mut elems, declared.dtype)?;
            // An optional `:dtype` suffix, as on inline literals, must agree.
            if self.eat(Tok::Colon) {
                let d = self.dtype()?;
                if d != declared.dtype {
                    return Err(self.error_at(
                        Self::span(&self.tokens[self.pos - 1]),
                        format!("literal dtype `{d}` differs from the declared `{}`", declared.dtype),
                    ));
                }
            }
        } else {
            self.nested(declared.shape.dims(), &mut elems, declared)?;
        }
        let data = match elems {
            Elems::F64(v) => ConstData::F64(Arc::from(v)),
            Elems::I64(v) => ConstData::I64(Arc::from(v)),
            Elems::Bool(v) => ConstData::Bool(Arc::from(v)),
        };
        let end = self.tokens[self.pos.saturating_sub(1)].end;
        Constant::new(declared.shape.clone(), data)
            .ok_or_else(|| self.error_at((start, end), format!("constant does not have the shape {}", declared.shape)))
    }

    fn nested(&mut self, dims: &[usize], elems: &mut Elems, declared: &TensorType) -> Result<()> {
        let Some((&n, rest)) = dims.split_first() else {
            return self.element(elems, declared.dtype);
        };
        self.expect(Tok::LBracket, &format!("`[` opening a list of {n} element(s) (declared type `{declared}`)"))?;
        for i in 0..n {
            if i > 0 && !self.eat(Tok::Comma) {
                return Err(
                    self.expected(&format!("`,`: this list must have {n} element(s) for `{declared}`, it has {i}"))
                );
            }
            self.nested(rest, elems, declared)?;
        }
        if *self.peek() != Tok::RBracket {
            return Err(self.expected(&format!("`]`: this list must have {n} element(s) for `{declared}`")));
        }
        self.advance();
        Ok(())
    }

    fn element(&mut self, elems: &mut Elems, dtype: DType) -> Result<()> {
        let t = self.token().clone();
        if !is_literal_start(&t.tok) {
            return Err(self.expected(&format!("a {dtype} value")));
        }
        let c = self.scalar_literal(&t, dtype)?;
        self.advance();
        match (elems, c.data()) {
            (Elems::F64(v), ConstData::F64(d)) => v.push(d[0]),
            (Elems::I64(v), ConstData::I64(d)) => v.push(d[0]),
            (Elems::Bool(v), ConstData::Bool(d)) => v.push(d[0]),
            _ => return Err(self.error_at(Self::span(&t), format!("expected a {dtype} value"))),
        }
        Ok(())
    }

    // ---- attributes ----

    /// `[key=value, …]`.
    fn attributes(&mut self) -> Result<Vec<Attr>> {
        self.expect(Tok::LBracket, "`[`")?;
        let mut attrs: Vec<Attr> = Vec::new();
        if self.eat(Tok::RBracket) {
            return Ok(attrs);
        }
        loop {
            let key_token = self.token().clone();
            let Tok::Ident(key) = key_token.tok else { return Err(self.expected("an attribute name")) };
            self.advance();
            let span = Self::span(&key_token);
            if attrs.iter().any(|a| a.key == key) {
                return Err(self.error_at(span, format!("attribute {} is given twice", quote(key))));
            }
            self.expect(Tok::Equals, "`=` after the attribute name")?;
            let value = self.attribute_value(key, span)?;
            attrs.push(Attr { key: key.to_string(), value, span });
            if self.eat(Tok::RBracket) {
                return Ok(attrs);
            }
            self.expect(Tok::Comma, "`,` or `]` in the attribute list")?;
        }
    }

    /// The value of attribute `key`; its form is fixed by the key.
    fn attribute_value(&mut self, key: &str, span: (usize, usize)) -> Result<AttrValue> {
        match key {
            "axes" | "perm" | "shape" => {
                let open = self.expect(Tok::LBracket, &format!("`[` opening the list `{key}`"))?;
                let items = self.usize_list_rest(if key == "shape" { "an extent" } else { "an axis" })?;
                if key == "shape" {
                    let end = self.tokens[self.pos.saturating_sub(1)].end;
                    self.checked_shape(items.clone(), (open.start, end))?;
                }
                Ok(AttrValue::List(items))
            }
            "axis" | "size" => Ok(AttrValue::Int(self.usize_value(if key == "axis" { "axis" } else { "size" })?)),
            "keepdims" | "reverse" | "lower" => match self.peek() {
                Tok::Ident("true") => {
                    self.advance();
                    Ok(AttrValue::Bool(true))
                }
                Tok::Ident("false") => {
                    self.advance();
                    Ok(AttrValue::Bool(false))
                }
                _ => Err(self.expected("`true` or `false`")),
            },
            "to" => Ok(AttrValue::DType(self.dtype()?)),
            "ranges" => self.ranges().map(AttrValue::Ranges),
            "reduce" => {
                let t = self.token().clone();
                let kind = match t.tok {
                    Tok::Ident(w) => ReduceOp::from_name(&format!("reduce_{w}")),
                    _ => None,
                };
                match kind {
                    Some(k) => {
                        self.advance();
                        Ok(AttrValue::Reduce(k))
                    }
                    None => Err(self.expected("a reduction (`sum`, `prod`, `max`, `min`, `mean` or `logsumexp`)")),
                }
            }
            _ => Err(self.error_at(
                span,
                format!(
                    "unknown attribute {}, expected one of axes, axis, keepdims, lower, perm, ranges, reduce, reverse, shape, size, to",
                    quote(key)
                ),
            )),
        }
    }

    /// `[start:stop:step, …]` (Python slices; each part optional).
    fn ranges(&mut self) -> Result<Vec<PyRange>> {
        self.expect(Tok::LBracket, "`[` opening the slice ranges")?;
        let mut ranges = Vec::new();
        if self.eat(Tok::RBracket) {
            return Ok(ranges);
        }
        loop {
            let start_offset = self.token().start;
            let start = self.optional_i64("a slice start")?;
            self.expect(Tok::Colon, "`:` in a slice range `start:stop:step`")?;
            let stop = self.optional_i64("a slice stop")?;
            let step = if self.eat(Tok::Colon) { self.optional_i64("a slice step")? } else { None };
            let end = self.tokens[self.pos.saturating_sub(1)].end;
            ranges.push(PyRange { start, stop, step, span: (start_offset, end) });
            if self.eat(Tok::RBracket) {
                return Ok(ranges);
            }
            self.expect(Tok::Comma, "`,` or `]` in the slice ranges")?;
        }
    }

    fn optional_i64(&mut self, what: &str) -> Result<Option<i64>> {
        if matches!(self.peek(), Tok::Number(_)) { self.small_i64(what).map(Some) } else { Ok(None) }
    }

    // ---- ops ----

    /// The op named `name` with attributes `attrs`, for operands of types `types`.
    fn build_op(&self, name: &str, op_span: (usize, usize), attrs: Vec<Attr>, types: &[TensorType]) -> Result<Op> {
        let mut attrs = Attrs { parser: self, op: name, op_span, attrs };
        let op = if let Some(u) = UnaryOp::from_name(name) {
            Op::Unary(u)
        } else if let Some(b) = BinaryOp::from_name(name) {
            Op::Binary(b)
        } else if let Some(kind) = ReduceOp::from_name(name) {
            let axes = attrs.axes("axes")?;
            let keepdims = attrs.optional_bool("keepdims")?.unwrap_or(false);
            Op::Reduce { kind, axes, keepdims }
        } else {
            match name {
                "where" => Op::Where,
                "matmul" => Op::Matmul,
                "outer" => Op::Outer,
                "cholesky" => Op::Cholesky,
                "logdet_chol" => Op::LogDetChol,
                "diag" => Op::Diag,
                "diag_matrix" => Op::DiagMatrix,
                "cast" => Op::Cast { to: attrs.dtype("to")? },
                "cumsum" => {
                    let axis = attrs.int("axis")?;
                    Op::Cumsum { axis, reverse: attrs.optional_bool("reverse")?.unwrap_or(false) }
                }
                "reshape" => Op::Reshape { shape: Shape::new(&attrs.list("shape")?) },
                "broadcast_to" => Op::BroadcastTo { shape: Shape::new(&attrs.list("shape")?) },
                "transpose" => Op::Transpose { perm: attrs.axes("perm")? },
                "expand_dims" => Op::ExpandDims { axis: attrs.int("axis")? },
                "squeeze" => Op::Squeeze { axes: attrs.axes("axes")? },
                "concatenate" => Op::Concatenate { axis: attrs.int("axis")? },
                "stack" => Op::Stack { axis: attrs.int("axis")? },
                "gather" => Op::Gather { axis: attrs.int("axis")? },
                "scatter_add" => {
                    let axis = attrs.int("axis")?;
                    Op::ScatterAdd { axis, size: attrs.int("size")? }
                }
                "triangular_solve" => Op::TriangularSolve { lower: attrs.bool("lower")? },
                "slice" => self.slice_op(&mut attrs, types)?,
                _ => return Err(self.error_at(op_span, format!("unknown op {}", quote(name)))),
            }
        };
        attrs.finish()?;
        Ok(op)
    }

    /// Normalizes the Python ranges against the operand's shape.
    fn slice_op(&self, attrs: &mut Attrs<'_, '_>, types: &[TensorType]) -> Result<Op> {
        let (ranges, span) = attrs.ranges("ranges")?;
        let Some(x) = types.first() else { return Err(self.error_at(attrs.op_span, "slice takes 1 operand")) };
        if ranges.len() != x.shape.rank() {
            return Err(self.error_at(
                span,
                format!("slice of `{x}` needs {} range(s), one per axis, got {}", x.shape.rank(), ranges.len()),
            ));
        }
        let mut out: SmallVec<[SliceRange; 4]> = SmallVec::new();
        for (axis, (r, &dim)) in ranges.iter().zip(x.shape.dims()).enumerate() {
            let range = SliceRange::from_python(r.start, r.stop, r.step, dim)
                .map_err(|msg| self.error_at(r.span, format!("slice: axis {axis} of `{x}`: {msg}")))?;
            out.push(range);
        }
        Ok(Op::Slice { ranges: out })
    }
}


/// Deepest nesting of calls accepted inside a kernel body (the printer binds deeper
/// expressions with `let`, so only hand-written text gets near it).
const MAX_KERNEL_DEPTH: usize = 256;

/// A kernel body being read: its instructions (structurally deduplicated), their dtypes,
/// the `let` names, and the operands' dtypes.
struct KernelBuilder {
    body: Vec<ScalarInstr>,
    dtypes: Vec<DType>,
    interned: HashMap<ScalarInstr, u16>,
    lets: HashMap<String, u16>,
    arg_dtypes: Vec<DType>,
}

impl KernelBuilder {
    /// Adds (or finds) an instruction, typing it with the plain ops' rules.
    fn push(&mut self, ins: ScalarInstr) -> std::result::Result<u16, String> {
        if let Some(&i) = self.interned.get(&ins) {
            return Ok(i);
        }
        if self.body.len() >= u16::MAX as usize {
            return Err(format!("the kernel body has more than {} instructions", u16::MAX));
        }
        let args = &self.arg_dtypes;
        let d = instr_dtype(&ins, &self.dtypes, &|a| args.get(a as usize).copied())?;
        let i = self.body.len() as u16;
        self.body.push(ins);
        self.dtypes.push(d);
        self.interned.insert(ins, i);
        Ok(i)
    }
}

impl Parser<'_> {
    /// `fused[attrs] %a, %b { body }` after the op name and attributes.
    fn fused_application(&mut self, op_span: (usize, usize), attrs: Vec<Attr>) -> Result<NodeId> {
        let mut attrs = Attrs { parser: self, op: "fused", op_span, attrs };
        let kind = attrs.optional_reduce("reduce")?;
        let axes = attrs.optional_axes("axes")?;
        let keepdims = attrs.optional_bool("keepdims")?;
        attrs.finish()?;
        let reduce = match (kind, axes) {
            (Some(kind), Some(axes)) => Some(FusedReduce { kind, axes, keepdims: keepdims.unwrap_or(false) }),
            (None, None) if keepdims.is_none() => None,
            (None, _) => return Err(self.error_at(op_span, "`fused` with `axes` or `keepdims` needs `reduce=…`")),
            (Some(_), None) => return Err(self.error_at(op_span, "`fused[reduce=…]` needs `axes=[…]`")),
        };
        let operands = if *self.peek() == Tok::LBrace { Vec::new() } else { self.operand_list()? };
        let ids: Vec<NodeId> = operands.iter().map(|o| o.id).collect();
        let arg_dtypes: Vec<DType> = ids.iter().map(|&i| self.graph.ty(i).dtype).collect();
        let mut kb =
            KernelBuilder { body: Vec::new(), dtypes: Vec::new(), interned: HashMap::new(), lets: HashMap::new(), arg_dtypes };
        self.expect(Tok::LBrace, "`{` opening the kernel body")?;
        while matches!(self.peek(), Tok::Ident("let")) {
            self.advance();
            let name_token = self.token().clone();
            let Tok::Ident(name) = name_token.tok else { return Err(self.expected("a name after `let`")) };
            self.advance();
            if self.kernel_call_name(name) || name == "let" {
                return Err(self.error_at(Self::span(&name_token), format!("{} is an op name, not a `let` name", quote(name))));
            }
            if kb.lets.contains_key(name) {
                return Err(self.error_at(Self::span(&name_token), format!("{} is already bound", quote(name))));
            }
            self.expect(Tok::Equals, "`=` after the `let` name")?;
            let value = self.kernel_expr(&mut kb, 0)?;
            self.expect(Tok::Semicolon, "`;` ending the `let`")?;
            kb.lets.insert(name.to_string(), value);
        }
        let result = self.kernel_expr(&mut kb, 0)?;
        self.expect(Tok::RBrace, "`}` closing the kernel body")?;
        // The result may be an instruction read earlier (e.g. a bare `t0`): everything it
        // depends on precedes it, so cutting the body after it makes it the last one.
        kb.body.truncate(result as usize + 1);
        let kernel = FusedKernel::new(kb.body, reduce).map_err(|e| self.error_at(op_span, e.to_string()))?;
        self.graph.add(Op::Fused(Arc::new(kernel)), &ids).map_err(|e| self.error_at(op_span, e.to_string()))
    }

    fn kernel_call_name(&self, name: &str) -> bool {
        UnaryOp::from_name(name).is_some() || BinaryOp::from_name(name).is_some() || matches!(name, "where" | "cast")
    }

    /// One expression of a kernel body; returns its instruction.
    fn kernel_expr(&mut self, kb: &mut KernelBuilder, depth: usize) -> Result<u16> {
        let t = self.token().clone();
        let span = Self::span(&t);
        if depth > MAX_KERNEL_DEPTH {
            return Err(self.error_at(span, format!("kernel expression nested deeper than {MAX_KERNEL_DEPTH}; bind parts with `let`")));
        }
        let at = |p: &Self, m: String| p.error_at(span, m);
        match t.tok {
            Tok::Arg(digits) => {
                self.advance();
                let i = digits.parse::<u16>().ok().filter(|&i| (i as usize) < kb.arg_dtypes.len());
                let Some(i) = i else {
                    return Err(at(self, format!("no operand {}: the kernel has {} operand(s)", quote(self.text(&t)), kb.arg_dtypes.len())));
                };
                kb.push(ScalarInstr::Arg(i)).map_err(|m| at(self, m))
            }
            Tok::Number(_) | Tok::Ident(_) if is_literal_start(&t.tok) => {
                self.advance();
                if !self.eat(Tok::Colon) {
                    let text = self.text(&t);
                    return Err(at(self, format!("literal {} needs a dtype, as in `{text}:f64`", quote(text))));
                }
                let dtype = self.dtype()?;
                let c = self.scalar_literal(&t, dtype)?;
                let lit = ConstScalar::from_constant(&c).ok_or_else(|| at(self, "expected a scalar literal".into()))?;
                kb.push(ScalarInstr::Const(lit)).map_err(|m| at(self, m))
            }
            Tok::Ident(name) if self.kernel_call_name(name) => {
                self.advance();
                let cast_to = if name == "cast" {
                    let attrs = if *self.peek() == Tok::LBracket { self.attributes()? } else { Vec::new() };
                    let mut attrs = Attrs { parser: self, op: "cast", op_span: span, attrs };
                    let to = attrs.dtype("to")?;
                    attrs.finish()?;
                    Some(to)
                } else {
                    None
                };
                self.expect(Tok::LParen, &format!("`(` after `{name}`"))?;
                let mut args = vec![self.kernel_expr(kb, depth + 1)?];
                while self.eat(Tok::Comma) {
                    args.push(self.kernel_expr(kb, depth + 1)?);
                }
                self.expect(Tok::RParen, "`)` closing the call")?;
                let arity_error = |p: &Self, want: usize| {
                    at(p, format!("`{name}` takes {want} operand(s), got {}", args.len()))
                };
                let ins = if let Some(to) = cast_to {
                    if args.len() != 1 {
                        return Err(arity_error(self, 1));
                    }
                    ScalarInstr::Cast(to, args[0])
                } else if let Some(u) = UnaryOp::from_name(name) {
                    if args.len() != 1 {
                        return Err(arity_error(self, 1));
                    }
                    ScalarInstr::Unary(u, args[0])
                } else if let Some(b) = BinaryOp::from_name(name) {
                    if args.len() != 2 {
                        return Err(arity_error(self, 2));
                    }
                    ScalarInstr::Binary(b, args[0], args[1])
                } else {
                    if args.len() != 3 {
                        return Err(arity_error(self, 3));
                    }
                    ScalarInstr::Where(args[0], args[1], args[2])
                };
                kb.push(ins).map_err(|m| at(self, format!("`{name}`: {m}")))
            }
            Tok::Ident(name) => {
                if let Some(&i) = kb.lets.get(name) {
                    self.advance();
                    return Ok(i);
                }
                let looks_like_call = matches!(self.tokens.get(self.pos + 1).map(|t| &t.tok), Some(Tok::LParen | Tok::LBracket));
                if looks_like_call {
                    Err(at(self, format!("unknown op {} in a kernel body, expected an elementwise op, `where` or `cast`", quote(name))))
                } else {
                    Err(at(self, format!("undefined name {} in the kernel body", quote(name))))
                }
            }
            _ => Err(self.expected("a kernel expression (`$0`, a literal, a `let` name or a call such as `exp($0)`)")),
        }
    }
}

/// Whether `name` is an op of the text form (other than `const`).
fn is_op_name(name: &str) -> bool {
    const STRUCTURAL: &[&str] = &[
        "fused",
        "where",
        "matmul",
        "outer",
        "cholesky",
        "logdet_chol",
        "diag",
        "diag_matrix",
        "cast",
        "cumsum",
        "reshape",
        "broadcast_to",
        "transpose",
        "expand_dims",
        "squeeze",
        "concatenate",
        "stack",
        "gather",
        "scatter_add",
        "triangular_solve",
        "slice",
    ];
    UnaryOp::from_name(name).is_some()
        || BinaryOp::from_name(name).is_some()
        || ReduceOp::from_name(name).is_some()
        || STRUCTURAL.contains(&name)
}

/// Whether a token can begin a scalar literal.
fn is_literal_start(tok: &Tok<'_>) -> bool {
    match tok {
        Tok::Number(_) => true,
        Tok::Ident(w) => matches!(*w, "true" | "false" | "inf" | "nan") || w.starts_with("nan0x"),
        _ => false,
    }
}

/// An f64 literal: decimal / exponent forms, `inf`, `-inf`, `nan`, and `nan0x…` bit patterns.
fn parse_f64(text: &str) -> Option<f64> {
    match text {
        "inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("nan0x") {
        let x = u64::from_str_radix(hex, 16).ok().map(f64::from_bits)?;
        return x.is_nan().then_some(x);
    }
    // Only plain decimal forms: Rust's parser would also take words like `infinity`.
    let body = text.strip_prefix('-').unwrap_or(text);
    let plain = body.starts_with(|c: char| c.is_ascii_digit())
        && body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if plain { text.parse::<f64>().ok() } else { None }
}

/// Elements of a constant being read.
enum Elems {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// The attributes of one op, consumed key by key; leftovers are an error.
struct Attrs<'p, 'a> {
    parser: &'p Parser<'a>,
    op: &'p str,
    op_span: (usize, usize),
    attrs: Vec<Attr>,
}

impl Attrs<'_, '_> {
    fn take(&mut self, key: &str) -> Option<Attr> {
        let i = self.attrs.iter().position(|a| a.key == key)?;
        Some(self.attrs.remove(i))
    }

    fn missing(&self, key: &str, form: &str) -> ParseError {
        self.parser.error_at(
            self.op_span,
            format!("`{}` needs the attribute `{key}` (as in `{}[{key}={form}]`)", self.op, self.op),
        )
    }

    fn int(&mut self, key: &str) -> Result<usize> {
        match self.take(key) {
            Some(Attr { value: AttrValue::Int(v), .. }) => Ok(v),
            _ => Err(self.missing(key, "0")),
        }
    }

    fn list(&mut self, key: &str) -> Result<Vec<usize>> {
        match self.take(key) {
            Some(Attr { value: AttrValue::List(v), .. }) => Ok(v),
            _ => Err(self.missing(key, "[0]")),
        }
    }

    fn axes(&mut self, key: &str) -> Result<Axes> {
        self.list(key).map(|v| v.into_iter().collect())
    }

    fn bool(&mut self, key: &str) -> Result<bool> {
        self.optional_bool(key)?.ok_or_else(|| self.missing(key, "true"))
    }

    fn optional_bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(Attr { value: AttrValue::Bool(b), .. }) => Ok(Some(b)),
            Some(_) => Err(self.missing(key, "true")),
        }
    }

    fn dtype(&mut self, key: &str) -> Result<DType> {
        match self.take(key) {
            Some(Attr { value: AttrValue::DType(d), .. }) => Ok(d),
            _ => Err(self.missing(key, "f64")),
        }
    }

    fn optional_reduce(&mut self, key: &str) -> Result<Option<ReduceOp>> {
        match self.take(key) {
            None => Ok(None),
            Some(Attr { value: AttrValue::Reduce(r), .. }) => Ok(Some(r)),
            Some(_) => Err(self.missing(key, "sum")),
        }
    }

    fn optional_axes(&mut self, key: &str) -> Result<Option<Axes>> {
        match self.take(key) {
            None => Ok(None),
            Some(Attr { value: AttrValue::List(v), .. }) => Ok(Some(v.into_iter().collect())),
            Some(_) => Err(self.missing(key, "[0]")),
        }
    }

    fn ranges(&mut self, key: &str) -> Result<(Vec<PyRange>, (usize, usize))> {
        match self.take(key) {
            Some(Attr { value: AttrValue::Ranges(r), span, .. }) => Ok((r, span)),
            _ => Err(self.missing(key, "[0:2:1]")),
        }
    }

    /// Errors on an attribute the op does not take.
    fn finish(self) -> Result<()> {
        match self.attrs.first() {
            Some(a) => Err(self.parser.error_at(a.span, format!("`{}` takes no attribute {}", self.op, quote(&a.key)))),
            None => Ok(()),
        }
    }
}
