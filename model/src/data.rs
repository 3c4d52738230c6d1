//! Data sets: posteriordb-style JSON (an object of names to numbers or nested lists), read
//! with positions so that every data error points at the offending text of the data file.
//!
//! Fields are checked only when the model declares them (unused fields may hold anything).
//! Numbers are kept both as f64 and, when written as an integer that fits, as i64, so int
//! data is exact.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use tessera_graph::Value;

use crate::error::{Diag, ErrorKind, ModelError, Source, Span};

/// Deepest list nesting accepted in a data file.
pub const MAX_DATA_DEPTH: usize = 32;

/// A JSON value with its span.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Number { value: f64, int: Option<i64>, span: Span },
    List { items: Vec<Json>, span: Span },
    /// A string, bool, null or object: never valid data, but allowed in unused fields.
    Other { what: &'static str, span: Span },
}

impl Json {
    fn span(&self) -> Span {
        match self {
            Json::Number { span, .. } | Json::List { span, .. } | Json::Other { span, .. } => *span,
        }
    }
}

/// One field of a data set.
#[derive(Clone, Debug, PartialEq)]
struct Field {
    name_span: Span,
    value: Json,
}

/// Named data values: the data file of a model.
#[derive(Clone, Debug)]
pub struct DataSet {
    source: Source,
    fields: HashMap<String, Field>,
    order: Vec<String>,
}

/// The element kind a declaration asks of a data field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    /// Integral numbers, read as i64.
    Int,
    /// Any numbers, read as f64.
    Real,
}

/// A problem with one field, located in the data file (the binder adds the declaration).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldIssue {
    /// The class of error.
    pub kind: ErrorKind,
    /// Where in the data file.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What was expected.
    pub expected: String,
}

impl DataSet {
    /// Reads a JSON data file; `file_name` is used in error messages.
    pub fn from_json(text: &str, file_name: &str) -> Result<DataSet, ModelError> {
        let source = Source::new(file_name, text);
        let fields = JsonParser { text, bytes: text.as_bytes(), pos: 0, depth: 0 }
            .document()
            .map_err(|d| source.error(d))?;
        let mut map = HashMap::new();
        let mut order = Vec::new();
        for (name, field) in fields {
            if let Some(first) = map.get(&name).map(|f: &Field| f.name_span) {
                let d = Diag::new(ErrorKind::DataSyntax, field.name_span, format!("field `{name}` appears twice"))
                    .expected("each field once")
                    .note(first, "first given here");
                return Err(source.error(d));
            }
            order.push(name.clone());
            map.insert(name, field);
        }
        Ok(DataSet { source, fields: map, order })
    }

    /// An empty data set (fill it with [`DataSet::insert`]).
    pub fn new(name: &str) -> DataSet {
        DataSet { source: Source::new(name, ""), fields: HashMap::new(), order: Vec::new() }
    }

    /// Adds (or replaces) a field from an array value (f64 or i64; bool as 0/1 ints).
    pub fn insert(&mut self, name: &str, value: &Value) {
        let span = Span::default();
        let numbers: Vec<(f64, Option<i64>)> = match value {
            Value::F64(a) => a.iter().map(|&v| (v, None)).collect(),
            Value::I64(a) => a.iter().map(|&v| (v as f64, Some(v))).collect(),
            Value::Bool(a) => a.iter().map(|&v| (f64::from(u8::from(v)), Some(i64::from(v)))).collect(),
        };
        let shape = value.shape();
        let json = nest(&numbers, shape.dims(), span);
        if !self.fields.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.fields.insert(name.to_string(), Field { name_span: span, value: json });
    }

    /// The field names in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Whether the data set has a field `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// The data file (for rendering errors located in it).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The span of field `name`'s value in the data file.
    pub fn value_span(&self, name: &str) -> Option<Span> {
        self.fields.get(name).map(|f| f.value.span())
    }

    /// The span of the `k`-th number (row-major) of field `name` in the data file.
    pub fn element_span(&self, name: &str, k: usize) -> Option<Span> {
        let mut items = Vec::new();
        leaves(&self.fields.get(name)?.value, &mut items);
        items.get(k).map(|j| j.span())
    }

    /// Reads field `name` as `kind` elements of exactly `shape` (a scalar or a list of one
    /// element stands for a shape of size 1; `[]` for any empty shape). `None` when missing.
    pub fn read(&self, name: &str, kind: ElemKind, shape: &[usize]) -> Option<Result<Value, FieldIssue>> {
        let field = self.fields.get(name)?;
        Some(read_field(name, &field.value, kind, shape))
    }
}

/// Builds nested lists of `shape` from row-major numbers.
fn nest(numbers: &[(f64, Option<i64>)], shape: &[usize], span: Span) -> Json {
    match shape.split_first() {
        None => {
            let (value, int) = numbers.first().copied().unwrap_or((f64::NAN, None));
            Json::Number { value, int, span }
        }
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product();
            let items = (0..n).map(|i| nest(&numbers[i * stride..(i + 1) * stride], rest, span)).collect();
            Json::List { items, span }
        }
    }
}

fn issue(kind: ErrorKind, span: Span, message: String, expected: impl Into<String>) -> FieldIssue {
    FieldIssue { kind, span, message, expected: expected.into() }
}

/// The shape of nested lists, checking that they are rectangular and hold only numbers.
fn json_shape(name: &str, value: &Json) -> Result<Vec<usize>, FieldIssue> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Json::List { items, .. } = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    check_rect(name, value, &shape, &mut Vec::new())?;
    Ok(shape)
}

/// Checks that `value` is a rectangular nest of numbers of `shape`. `path` holds the indices of
/// `value` inside the field; it is formatted only for an error (this runs once per element).
fn check_rect(name: &str, value: &Json, shape: &[usize], path: &mut Vec<usize>) -> Result<(), FieldIssue> {
    let at = |path: &[usize]| format!("{name}{}", path.iter().map(|i| format!("[{i}]")).collect::<String>());
    match (value, shape.split_first()) {
        (Json::Number { .. }, None) => Ok(()),
        (Json::List { items, span }, Some((&n, rest))) => {
            if items.len() != n {
                return Err(issue(
                    ErrorKind::DataType,
                    *span,
                    format!("`{}` has {} elements but its first sibling has {n}: lists must be rectangular", at(path), items.len()),
                    format!("{n} elements"),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                path.push(i);
                check_rect(name, item, rest, path)?;
                path.pop();
            }
            Ok(())
        }
        (Json::Other { what, span }, _) => Err(issue(
            ErrorKind::DataType,
            *span,
            format!("`{}` is {what}, not a number", at(path)),
            "a number or a list of numbers",
        )),
        (Json::Number { span, .. }, Some(_)) => Err(issue(
            ErrorKind::DataType,
            *span,
            format!("`{}` is a number where its siblings are lists: lists must be rectangular", at(path)),
            "a list",
        )),
        (Json::List { span, .. }, None) => Err(issue(
            ErrorKind::DataType,
            *span,
            format!("`{}` is a list where its siblings are numbers: lists must be rectangular", at(path)),
            "a number",
        )),
    }
}

fn leaves<'a>(value: &'a Json, out: &mut Vec<&'a Json>) {
    match value {
        Json::List { items, .. } => items.iter().for_each(|i| leaves(i, out)),
        other => out.push(other),
    }
}

fn read_field(name: &str, value: &Json, kind: ElemKind, shape: &[usize]) -> Result<Value, FieldIssue> {
    let got = json_shape(name, value)?;
    let too_large = || issue(ErrorKind::Limit, value.span(), format!("data field `{name}` is too large"), "a smaller data set");
    let size = crate::builder::checked_size(shape).ok_or_else(too_large)?;
    let got_size = crate::builder::checked_size(&got).ok_or_else(too_large)?;
    let lenient = got_size == size && (got.is_empty() || size == 0 || got.len() == 1);
    if got != shape && !lenient {
        let what = if shape.is_empty() { "a single number".to_string() } else { format!("shape {}", crate::dist::fmt_shape(shape)) };
        return Err(issue(
            ErrorKind::DataShape,
            value.span(),
            format!("data field `{name}` has shape {}, expected {}", crate::dist::fmt_shape(&got), what),
            what,
        ));
    }
    let mut items = Vec::with_capacity(size);
    leaves(value, &mut items);
    let numbers: Vec<(f64, Option<i64>, Span)> = items
        .iter()
        .map(|j| match j {
            Json::Number { value, int, span } => (*value, *int, *span),
            other => (f64::NAN, None, other.span()),
        })
        .collect();
    let index_of = |k: usize| index_text(shape, k);
    match kind {
        ElemKind::Real => {
            if let Some(k) = numbers.iter().position(|n| !n.0.is_finite()) {
                return Err(issue(
                    ErrorKind::DataType,
                    numbers[k].2,
                    format!("`{name}{}` is too large for a 64-bit float", index_of(k)),
                    "a finite number",
                ));
            }
            let data: Vec<f64> = numbers.iter().map(|n| n.0).collect();
            Ok(Value::F64(ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| internal(value, e))?))
        }
        ElemKind::Int => {
            let mut data = Vec::with_capacity(numbers.len());
            for (k, &(v, int, span)) in numbers.iter().enumerate() {
                let as_int = int.or_else(|| (v.fract() == 0.0 && v.abs() < 9.2e18).then_some(v as i64));
                match as_int {
                    Some(i) => data.push(i),
                    None => {
                        let why = if v.fract() != 0.0 { "is not an integer" } else { "is too large for a 64-bit integer" };
                        return Err(issue(
                            ErrorKind::DataType,
                            span,
                            format!("int data `{name}{}` = {v} {why}", index_of(k)),
                            "an integer",
                        ));
                    }
                }
            }
            Ok(Value::I64(ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| internal(value, e))?))
        }
    }
}

fn internal(value: &Json, e: ndarray::ShapeError) -> FieldIssue {
    issue(ErrorKind::DataShape, value.span(), format!("internal shape error: {e}"), "")
}

/// `[i,j]` for the k-th row-major element of `shape` (empty for scalars).
pub fn index_text(shape: &[usize], mut k: usize) -> String {
    if shape.is_empty() {
        return String::new();
    }
    let mut idx = vec![0; shape.len()];
    for (axis, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[axis] = k % d;
            k /= d;
        }
    }
    format!("[{}]", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","))
}

struct JsonParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

type JResult<T> = Result<T, Diag>;

impl JsonParser<'_> {
    fn err(&self, span: Span, message: impl Into<String>, expected: &str) -> Diag {
        Diag::new(ErrorKind::DataSyntax, span, message).expected(expected.to_string())
    }

    fn here(&self) -> Span {
        let end = self.text[self.pos..].chars().next().map_or(self.pos, |c| self.pos + c.len_utf8());
        Span::new(self.pos, end)
    }

    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of file".into(),
            Some(c) if c.is_control() => format!("{c:?}"),
            Some(c) => format!("`{c}`"),
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.bytes.len() && matches!(self.bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, expected: &str) -> JResult<()> {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(self.here(), format!("invalid JSON: expected {expected}, found {}", self.found()), expected))
        }
    }

    fn document(mut self) -> JResult<Vec<(String, Field)>> {
        self.skip_ws();
        if self.bytes.get(self.pos) != Some(&b'{') {
            return Err(self.err(
                self.here(),
                format!("a data file must be a JSON object of names to values, found {}", self.found()),
                "`{`",
            ));
        }
        let fields = self.object_fields()?;
        self.skip_ws();
        if self.pos < self.bytes.len() {
            return Err(self.err(self.here(), format!("invalid JSON: unexpected {} after the data object", self.found()), "end of file"));
        }
        Ok(fields)
    }

    /// The fields of an object; the current byte is its `{`.
    fn object_fields(&mut self) -> JResult<Vec<(String, Field)>> {
        self.pos += 1;
        let mut fields = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(fields);
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.err(self.here(), format!("invalid JSON: expected a field name in quotes, found {}", self.found()), "`\"name\"`"));
            }
            let name = self.string()?;
            let name_span = Span::new(start, self.pos);
            self.expect(b':', "`:`")?;
            let value = self.value()?;
            fields.push((name, Field { name_span, value }));
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(fields);
                }
                _ => return Err(self.err(self.here(), format!("invalid JSON: expected `,` or `}}`, found {}", self.found()), "`,` or `}`")),
            }
        }
    }

    fn value(&mut self) -> JResult<Json> {
        self.skip_ws();
        let start = self.pos;
        match self.bytes.get(self.pos) {
            Some(b'[') => self.list(),
            Some(b'{') => {
                self.nest()?;
                self.object_fields()?;
                self.depth -= 1;
                Ok(Json::Other { what: "an object", span: Span::new(start, self.pos) })
            }
            Some(b'"') => {
                self.string()?;
                Ok(Json::Other { what: "a string", span: Span::new(start, self.pos) })
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't' | b'f' | b'n') => {
                for (word, what) in [("true", "a boolean"), ("false", "a boolean"), ("null", "null (a missing value)")] {
                    if self.text[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok(Json::Other { what, span: Span::new(start, self.pos) });
                    }
                }
                Err(self.err(self.here(), format!("invalid JSON: unexpected {}", self.found()), "a value"))
            }
            _ => Err(self.err(self.here(), format!("invalid JSON: expected a value, found {}", self.found()), "a number, a list or an object")),
        }
    }

    fn nest(&mut self) -> JResult<()> {
        self.depth += 1;
        if self.depth > MAX_DATA_DEPTH {
            return Err(Diag::new(ErrorKind::Limit, self.here(), format!("data nested more than {MAX_DATA_DEPTH} levels deep"))
                .expected(format!("at most {MAX_DATA_DEPTH} levels of lists")));
        }
        Ok(())
    }

    fn list(&mut self) -> JResult<Json> {
        let start = self.pos;
        self.nest()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                items.push(self.value()?);
                self.skip_ws();
                match self.bytes.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => {
                        return Err(self
                            .err(self.here(), format!("invalid JSON: expected `,` or `]`, found {}", self.found()), "`,` or `]`")
                            .note(Span::new(start, start + 1), "the list starts here"));
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(Json::List { items, span: Span::new(start, self.pos) })
    }

    fn number(&mut self) -> JResult<Json> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.pos < p.bytes.len() && p.bytes[p.pos].is_ascii_digit() {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let mut integral = true;
        let mut ok = digits(self) > 0;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            integral = false;
            ok &= digits(self) > 0;
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            integral = false;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            ok &= digits(self) > 0;
        }
        let span = Span::new(start, self.pos);
        let text = &self.text[start..self.pos];
        let value: f64 = match text.parse() {
            Ok(v) if ok => v,
            _ => return Err(self.err(span, format!("invalid JSON number `{text}`"), "a number such as `-1.5e3`")),
        };
        let int = if integral { text.parse::<i64>().ok() } else { None };
        Ok(Json::Number { value, int, span })
    }

    /// A string literal (the current byte is its opening quote); returns its text.
    fn string(&mut self) -> JResult<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return Err(self.err(Span::new(start, self.pos), "invalid JSON: unterminated string", "a closing `\"`"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.text[self.pos..].chars().next() else { continue };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'u' => {
                            let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                            let code = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match code {
                                Some(ch) => {
                                    out.push(ch);
                                    self.pos += 4;
                                }
                                None => out.push('\u{fffd}'),
                            }
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_nested_lists_with_shapes() {
        let d = DataSet::from_json(r#"{"J": 2, "y": [[1, 2.5], [3, 4]], "s": "ignored"}"#, "d.json").unwrap();
        assert_eq!(d.read("J", ElemKind::Int, &[]).unwrap().unwrap(), Value::I64(ArrayD::from_elem(IxDyn(&[]), 2)));
        let y = d.read("y", ElemKind::Real, &[2, 2]).unwrap().unwrap();
        assert_eq!(y.to_f64_vec(), vec![1.0, 2.5, 3.0, 4.0]);
        assert!(d.read("missing", ElemKind::Real, &[]).is_none());
    }

    #[test]
    fn int_data_must_be_integral() {
        let d = DataSet::from_json("{\"k\": [1, 2.5]}", "d.json").unwrap();
        let e = d.read("k", ElemKind::Int, &[2]).unwrap().unwrap_err();
        assert_eq!(e.message, "int data `k[1]` = 2.5 is not an integer");
        assert_eq!(d.source().locate(e.span).col, 11);
    }

    #[test]
    fn ragged_lists_and_strings_in_used_fields_are_errors() {
        let d = DataSet::from_json(r#"{"x": [[1, 2], [3]], "s": ["a"]}"#, "d.json").unwrap();
        assert!(d.read("x", ElemKind::Real, &[2, 2]).unwrap().unwrap_err().message.contains("rectangular"));
        assert!(d.read("s", ElemKind::Real, &[1]).unwrap().unwrap_err().message.contains("a string"));
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = DataSet::from_json("{\n  \"a\": [1, 2,, 3]\n}", "d.json").unwrap_err();
        assert_eq!((e.line(), e.col()), (2, 14));
        assert_eq!(e.kind, ErrorKind::DataSyntax);
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(DataSet::from_json(&deep, "d.json").unwrap_err().kind, ErrorKind::Limit);
    }

    #[test]
    fn index_text_is_row_major() {
        assert_eq!(index_text(&[2, 3], 4), "[1,1]");
        assert_eq!(index_text(&[], 0), "");
    }
}
