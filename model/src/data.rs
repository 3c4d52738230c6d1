//! Data sets: posteriordb-style JSON (an object of names to numbers or nested lists), read
//! with positions so that every data error points at the offending text of the data file.
//!
//! Fields are checked only when the model declares them (unused fields may hold anything).
//! Numbers are kept both as f64 and, when written as an integer that fits, as i64, so int
//! data is exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tessera_graph::threads::{Scope, ScopedJoinHandle, prefault_for_writing, spawn_beside};
use tessera_graph::{ConstData, Constant, Shape, Value};

use crate::error::{Diag, ErrorKind, ModelError, Source, Span};

/// Deepest list nesting accepted in a data file.
pub const MAX_DATA_DEPTH: usize = 32;

/// Bytes of a number array read before a second thread is asked to read rows further on
/// (smaller arrays are not worth a thread, which costs some 30 µs).
const SPLIT_AFTER_BYTES: usize = 32 << 10;

/// Bytes that must remain in the text for that split.
const SPLIT_MIN_REST_BYTES: usize = 64 << 10;

/// The share of the text left when the helper starts that the calling thread reads. The helper
/// also faults in the pages the caller will write (about a quarter of the work of reading the
/// values in them), so an even split had the caller wait for it. Logistic regression's data
/// stage: 3.07 ms in halves without faulting ahead, 2.86 ms with both (median of 25 fresh
/// processes each, interleaved).
const CALLER_SHARE: f64 = 0.6;

/// A JSON value with its span.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Number {
        value: f64,
        int: Option<i64>,
        span: Span,
    },
    /// A rectangular nest of numbers, the common shape of data, read in one pass without a
    /// node or span per number (element spans are found again in the text on an error).
    Array(NumArray),
    List {
        items: Vec<Json>,
        span: Span,
    },
    /// A string, bool, null or object: never valid data, but allowed in unused fields.
    Other {
        what: &'static str,
        span: Span,
    },
}

impl Json {
    fn span(&self) -> Span {
        match self {
            Json::Number { span, .. } | Json::List { span, .. } | Json::Other { span, .. } => *span,
            Json::Array(a) => a.span,
        }
    }
}

/// A rectangular nest of numbers: its shape and row-major values (shared, so that a graph
/// constant made of them is not a copy: copying a data matrix into fresh memory cost ~0.9 ms
/// of the first compile of the 1 MB logistic regression matrix).
#[derive(Clone, Debug, PartialEq)]
struct NumArray {
    shape: Vec<usize>,
    values: Arc<Vec<f64>>,
    /// The values as exact integers, while every number is an integer literal that fits i64.
    ints: Option<Arc<Vec<i64>>>,
    span: Span,
}

/// One field of a data set.
#[derive(Clone, Debug, PartialEq)]
struct Field {
    name_span: Span,
    value: Json,
}

/// Named data values: the data file of a model, whose text it borrows (for locating errors).
#[derive(Clone, Debug)]
pub struct DataSet<'t> {
    source: Source<'t>,
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

impl<'t> DataSet<'t> {
    /// Reads a JSON data file; `file_name` is used in error messages.
    pub fn from_json(text: &'t str, file_name: &str) -> Result<DataSet<'t>, ModelError> {
        let text = crate::without_bom(text);
        let source = Source::borrowed(file_name, text);
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
    pub fn new(name: &str) -> DataSet<'t> {
        DataSet { source: Source::borrowed(name, ""), fields: HashMap::new(), order: Vec::new() }
    }

    /// Adds (or replaces) a field from an array value (f64 or i64; bool as 0/1 ints).
    pub fn insert(&mut self, name: &str, value: &Value) {
        let span = Span::default();
        let ints: Option<Vec<i64>> = match value {
            Value::F64(_) => None,
            Value::I64(a) => Some(a.iter().copied().collect()),
            Value::Bool(a) => Some(a.iter().map(|&v| i64::from(v)).collect()),
        };
        let json = Json::Array(NumArray {
            shape: value.shape().dims().to_vec(),
            values: Arc::new(value.to_f64_vec()),
            ints: ints.map(Arc::new),
            span,
        });
        if !self.fields.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.fields.insert(
            name.to_string(),
            Field {
                name_span: span,
                value: json,
            },
        );
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
    pub fn source(&self) -> &Source<'t> {
        &self.source
    }

    /// The span of field `name`'s value in the data file.
    pub fn value_span(&self, name: &str) -> Option<Span> {
        self.fields.get(name).map(|f| f.value.span())
    }

    /// The span of the `k`-th number (row-major) of field `name` in the data file.
    pub fn element_span(&self, name: &str, k: usize) -> Option<Span> {
        match &self.fields.get(name)?.value {
            Json::Array(a) => number_spans(self.source.text(), a.span).get(k).copied(),
            value => {
                let mut numbers = Vec::new();
                numbers_of(value, &mut numbers);
                numbers.get(k).map(|n| n.2)
            }
        }
    }

    /// Reads field `name` as `kind` elements of exactly `shape` (a scalar or a list of one
    /// element stands for a shape of size 1; `[]` for any empty shape). `None` when missing.
    pub fn read(&self, name: &str, kind: ElemKind, shape: &[usize]) -> Option<Result<Value, FieldIssue>> {
        Some(self.read_constant(name, kind, shape)?.map(|c| Value::from_constant(&c)))
    }

    /// Reads field `name` like [`DataSet::read`], as a graph constant that shares the data set's
    /// elements when they are stored as read (a data matrix is the largest thing a model binds).
    pub fn read_constant(&self, name: &str, kind: ElemKind, shape: &[usize]) -> Option<Result<Constant, FieldIssue>> {
        let field = self.fields.get(name)?;
        let elements = match &field.value {
            Json::Array(a) => read_array(name, a, kind, shape, self.source.text()),
            value => read_field(name, value, kind, shape),
        };
        Some(elements.and_then(|e| e.into_constant(shape, field.value.span())))
    }
}

/// The row-major elements of a field read as data, shared with the data set when they are
/// stored as read.
enum Elements {
    F64(Arc<Vec<f64>>),
    I64(Arc<Vec<i64>>),
}

impl Elements {
    fn into_constant(self, shape: &[usize], span: Span) -> Result<Constant, FieldIssue> {
        let data = match self {
            Elements::F64(data) => ConstData::F64(data),
            Elements::I64(data) => ConstData::I64(data),
        };
        let len = data.len();
        Constant::new(Shape::new(shape), data).ok_or_else(|| {
            let message = format!("internal shape error: {len} elements for shape {}", crate::dist::fmt_shape(shape));
            issue(ErrorKind::DataShape, span, message, "")
        })
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
    // Rows of a list the one-pass reader refused (ragged, or holding a non-number) are arrays.
    if let Json::Array(a) = probe {
        shape.extend_from_slice(&a.shape);
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
        (Json::Array(a), _) if a.shape == shape => Ok(()),
        (Json::Array(a), _) => Err(issue(
            ErrorKind::DataType,
            a.span,
            format!(
                "`{}` has shape {} unlike its siblings: lists must be rectangular",
                at(path),
                crate::dist::fmt_shape(&a.shape)
            ),
            format!("shape {}", crate::dist::fmt_shape(shape)),
        )),
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

/// The numbers of `value` in row-major order, each with its span (an array's numbers carry
/// the array's span).
fn numbers_of(value: &Json, out: &mut Vec<(f64, Option<i64>, Span)>) {
    match value {
        Json::Number { value, int, span } => out.push((*value, *int, *span)),
        Json::Array(a) => out.extend(
            a.values
                .iter()
                .enumerate()
                .map(|(k, &v)| (v, a.ints.as_ref().map(|i| i[k]), a.span)),
        ),
        Json::List { items, .. } => items.iter().for_each(|i| numbers_of(i, out)),
        Json::Other { span, .. } => out.push((f64::NAN, None, *span)),
    }
}

/// Checks that data of shape `got` can stand for a declaration of `shape`.
fn check_shape(name: &str, got: &[usize], shape: &[usize], span: Span) -> Result<(), FieldIssue> {
    let too_large = || {
        issue(
            ErrorKind::Limit,
            span,
            format!("data field `{name}` is too large"),
            "a smaller data set",
        )
    };
    let size = crate::builder::checked_size(shape).ok_or_else(too_large)?;
    let got_size = crate::builder::checked_size(got).ok_or_else(too_large)?;
    let lenient = got_size == size && (got.is_empty() || size == 0 || got.len() == 1);
    if got != shape && !lenient {
        let what = if shape.is_empty() {
            "a single number".to_string()
        } else {
            format!("shape {}", crate::dist::fmt_shape(shape))
        };
        return Err(issue(
            ErrorKind::DataShape,
            span,
            format!(
                "data field `{name}` has shape {}, expected {}",
                crate::dist::fmt_shape(got),
                what
            ),
            what,
        ));
    }
    Ok(())
}

fn read_field(
    name: &str,
    value: &Json,
    kind: ElemKind,
    shape: &[usize],
) -> Result<Elements, FieldIssue> {
    let got = json_shape(name, value)?;
    check_shape(name, &got, shape, value.span())?;
    let mut numbers = Vec::new();
    numbers_of(value, &mut numbers);
    let index_of = |k: usize| index_text(shape, k);
    match kind {
        ElemKind::Real => {
            if let Some(k) = numbers.iter().position(|n| !n.0.is_finite()) {
                return Err(not_finite(name, &index_of(k), numbers[k].2));
            }
            Ok(Elements::F64(Arc::new(numbers.iter().map(|n| n.0).collect())))
        }
        ElemKind::Int => {
            let mut data = Vec::with_capacity(numbers.len());
            for (k, &(v, int, span)) in numbers.iter().enumerate() {
                data.push(int_element(name, &index_of(k), v, int, span)?);
            }
            Ok(Elements::I64(Arc::new(data)))
        }
    }
}

/// Reads a number array (the fast path of [`read_field`]); `text` is the data file's text,
/// searched again for the location of a bad element.
fn read_array(
    name: &str,
    a: &NumArray,
    kind: ElemKind,
    shape: &[usize],
    text: &str,
) -> Result<Elements, FieldIssue> {
    check_shape(name, &a.shape, shape, a.span)?;
    let span_of = |k: usize| number_spans(text, a.span).get(k).copied().unwrap_or(a.span);
    match kind {
        ElemKind::Real => {
            if let Some(k) = first_non_finite(&a.values) {
                return Err(not_finite(name, &index_text(shape, k), span_of(k)));
            }
            Ok(Elements::F64(a.values.clone()))
        }
        ElemKind::Int => {
            let data = match &a.ints {
                Some(ints) => ints.clone(),
                None => {
                    // Some number is not an integer literal: read the literals again for
                    // exact integers and a located error.
                    let spans = number_spans(text, a.span);
                    let mut data = Vec::with_capacity(a.values.len());
                    for (k, &v) in a.values.iter().enumerate() {
                        let span = spans.get(k).copied().unwrap_or(a.span);
                        let literal = text.get(span.start..span.end).unwrap_or("");
                        let int = scan_number(literal, 0).and_then(|n| n.int);
                        data.push(int_element(name, &index_text(shape, k), v, int, span)?);
                    }
                    Arc::new(data)
                }
            };
            Ok(Elements::I64(data))
        }
    }
}

/// The index of the first element that is not finite, if any. Data is almost always finite,
/// so a branch-free pass (vectorized) checks that first; only then is the element sought.
fn first_non_finite(values: &[f64]) -> Option<usize> {
    if values.iter().fold(true, |all, v| all & v.is_finite()) {
        return None;
    }
    values.iter().position(|v| !v.is_finite())
}

fn not_finite(name: &str, index: &str, span: Span) -> FieldIssue {
    issue(
        ErrorKind::DataType,
        span,
        format!("`{name}{index}` is too large for a 64-bit float"),
        "a finite number",
    )
}

/// A number read as int data: exact when written as an integer literal, else when integral.
fn int_element(
    name: &str,
    index: &str,
    v: f64,
    int: Option<i64>,
    span: Span,
) -> Result<i64, FieldIssue> {
    if let Some(i) = int.or_else(|| (v.fract() == 0.0 && v.abs() < 9.2e18).then_some(v as i64)) {
        return Ok(i);
    }
    let why = if v.fract() != 0.0 {
        "is not an integer"
    } else {
        "is too large for a 64-bit integer"
    };
    Err(issue(
        ErrorKind::DataType,
        span,
        format!("int data `{name}{index}` = {v} {why}"),
        "an integer",
    ))
}

/// The spans of the number literals inside `span` of `text` (an array's numbers, in order).
fn number_spans(text: &str, span: Span) -> Vec<Span> {
    let bytes = text.as_bytes();
    let end = span.end.min(bytes.len());
    let mut spans = Vec::new();
    let mut pos = span.start.min(end);
    while pos < end {
        if matches!(bytes[pos], b'-' | b'0'..=b'9') {
            let start = pos;
            while pos < end && in_number(bytes[pos]) {
                pos += 1;
            }
            spans.push(Span::new(start, pos));
        } else {
            pos += 1;
        }
    }
    spans
}

/// Whether `b` can be part of a JSON number literal.
fn in_number(b: u8) -> bool {
    matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
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
            Some(b'[') => {
                if let Some(array) = self.number_array() {
                    return Ok(Json::Array(array));
                }
                self.pos = start;
                self.list()
            }
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
        match scan_number(self.text, start) {
            Some(n) => {
                self.pos = n.end;
                Ok(Json::Number {
                    value: n.value,
                    int: n.int,
                    span: Span::new(start, n.end),
                })
            }
            None => {
                let mut end = start + 1;
                while end < self.bytes.len() && in_number(self.bytes[end]) {
                    end += 1;
                }
                let span = Span::new(start, end);
                Err(self.err(
                    span,
                    format!("invalid JSON number `{}`", &self.text[start..end]),
                    "a number such as `-1.5e3`",
                ))
            }
        }
    }

    /// A rectangular nest of numbers starting at the current `[`, read in one pass; `None`
    /// (with the position unspecified) for anything else — empty or ragged lists, non-numbers,
    /// syntax errors — which the general reader then reads or reports.
    fn number_array(&mut self) -> Option<NumArray> {
        if self.bytes.len() - self.pos < SPLIT_AFTER_BYTES + SPLIT_MIN_REST_BYTES {
            return self.number_array_helped(None);
        }
        let (progress, published, stop) = (AtomicUsize::new(0), AtomicUsize::new(usize::MAX), AtomicBool::new(false));
        let text = self.text;
        // The helper never panics (its failures are `None`), and is always joined.
        tessera_graph::threads::scope(|scope| {
            let mut helper = RowHelper { scope, text, progress: &progress, published: &published, stop: &stop, state: HelperState::Idle };
            let array = self.number_array_helped(Some(&mut helper));
            helper.finish();
            array
        })
        .ok()
        .flatten()
    }

    /// [`number_array`](Self::number_array), where `helper` may read a large array's later rows
    /// on another thread. Its rows are taken only when this reader reaches the
    /// very row they start at, in the state it would read them in, so the result — values,
    /// shape, or `None` — is the same as without it.
    fn number_array_helped(&mut self, mut helper: Option<&mut RowHelper<'_, '_>>) -> Option<NumArray> {
        let start = self.pos;
        // Extent of the lists at each depth (set when the first one closes), items so far in
        // each open list above the rows, and the depth of the rows (the lists of numbers).
        let mut extents: Vec<Option<usize>> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let mut row_depth = None;
        let mut values = Vec::new();
        let mut ints = Some(Vec::new());
        loop {
            // A list.
            self.skip_ws();
            if *self.bytes.get(self.pos)? != b'[' {
                return None;
            }
            self.pos += 1;
            let depth = open.len();
            if depth >= MAX_DATA_DEPTH {
                return None;
            }
            if extents.len() <= depth {
                extents.resize(depth + 1, None);
            }
            self.skip_ws();
            if !matches!(self.bytes.get(self.pos)?, b'-' | b'0'..=b'9') {
                if row_depth.is_some_and(|d| depth >= d) {
                    return None;
                }
                open.push(0);
                continue;
            }
            if *row_depth.get_or_insert(depth) != depth {
                return None;
            }
            let helped = match (helper.as_deref_mut(), open.last_mut()) {
                // The reader's own loop would count every row but the last (counted below).
                (Some(h), Some(items)) => h.rows_at(self.pos, start, &values, &ints).inspect(|run| *items += run.rows - 1),
                _ => None,
            };
            if values.capacity() == 0 {
                self.reserve_rows(&mut values, &mut ints, depth > 0);
            }
            let n = match helped {
                Some(run) => run.append_to(&mut values, &mut ints, &mut self.pos),
                None => self.number_row(&mut values, &mut ints)?,
            };
            if *extents[depth].get_or_insert(n) != n {
                return None;
            }
            // After a list: `,` and the next one, or `]` closing the enclosing lists.
            loop {
                let Some(items) = open.last_mut() else {
                    let shape: Vec<usize> = extents.into_iter().collect::<Option<_>>()?;
                    let size = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                    let complete = shape.len() == row_depth? + 1 && size == Some(values.len());
                    let span = Span::new(start, self.pos);
                    return complete.then(|| NumArray { shape, values: Arc::new(fitted(values)), ints: ints.map(|v| Arc::new(fitted(v))), span });
                };
                *items += 1;
                self.skip_ws();
                match self.bytes.get(self.pos)? {
                    b',' => {
                        self.pos += 1;
                        break;
                    }
                    b']' => {
                        self.pos += 1;
                        let items = open.pop()?;
                        if *extents[open.len()].get_or_insert(items) != items {
                            return None;
                        }
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Makes room for the numbers of the array whose first row starts at the position: that
    /// row's count (found by one scan for its `]`), times, for `nested` rows, the rows of its
    /// length that the rest of the text could hold (unused capacity is address space, not
    /// memory, and is given back by [`fitted`]). Growing by doubling copied every array about
    /// once more and touched about twice its pages, at ~2 µs per fresh page on a VM.
    fn reserve_rows(&self, values: &mut Vec<f64>, ints: &mut Option<Vec<i64>>, nested: bool) {
        let rest = &self.bytes[self.pos..];
        let Some(close) = memchr::memchr(b']', rest) else { return };
        let row = 1 + count_byte(&rest[..close], b',');
        let n = if nested { row.saturating_mul(rest.len() / (close + 2)) } else { row };
        // A reservation the system refuses only means growing as needed.
        let _ = values.try_reserve_exact(n);
        // Integer data is kept exactly too, while the numbers are integer literals.
        if let Some(ints) = ints.as_mut().filter(|_| scan_number(self.text, self.pos).is_some_and(|n| n.int.is_some())) {
            let _ = ints.try_reserve_exact(n);
        }
    }

    /// The numbers of a list through its `]` (the position is at its first number), appended
    /// to `values`, and to `ints` while every one is an integer literal; returns how many.
    /// (Not inlined: on its own its loop compiles to some 30 fewer instructions per number than
    /// inside [`JsonParser::value`], 30.2M -> 25.9M for the logistic regression's data.)
    #[inline(never)]
    fn number_row(&mut self, values: &mut Vec<f64>, ints: &mut Option<Vec<i64>>) -> Option<usize> {
        let first = values.len();
        loop {
            let n = scan_number(self.text, self.pos)?;
            self.pos = n.end;
            values.push(n.value);
            if let Some(list) = ints {
                match n.int {
                    Some(i) => list.push(i),
                    None => *ints = None,
                }
            }
            self.skip_ws();
            match self.bytes.get(self.pos)? {
                b',' => {
                    self.pos += 1;
                    self.skip_ws();
                }
                b']' => {
                    self.pos += 1;
                    return Some(values.len() - first);
                }
                _ => return None,
            }
        }
    }

    /// Whether another row of numbers follows the row that ends at the position, as the loop of
    /// [`number_array`](Self::number_array) reads it: `,` then `[` then a number (the position is
    /// then at the number).
    fn next_row_follows(&mut self) -> bool {
        for expected in [b',', b'['] {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&expected) {
                return false;
            }
            self.pos += 1;
        }
        self.skip_ws();
        matches!(self.bytes.get(self.pos), Some(b'-' | b'0'..=b'9'))
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

/// How many of `bytes` are `b` (in 32-byte chunks, which the compiler vectorizes).
fn count_byte(bytes: &[u8], b: u8) -> usize {
    let chunks = bytes.chunks_exact(32);
    let tail = chunks.remainder().iter().filter(|&&x| x == b).count();
    chunks.map(|c| usize::from(c.iter().map(|&x| u8::from(x == b)).sum::<u8>())).sum::<usize>() + tail
}

/// `v` without capacity it will not use (an array's room is reserved from an estimate).
fn fitted<T>(mut v: Vec<T>) -> Vec<T> {
    if v.capacity() - v.len() > v.len() / 8 {
        v.shrink_to_fit();
    }
    v
}

/// Consecutive rows of numbers of one length, read by a helper thread.
struct RowRun {
    /// One past the `]` of the last row.
    end: usize,
    /// The length of every row.
    row_len: usize,
    rows: usize,
    values: Vec<f64>,
    /// The values as exact integers, while every number is an integer literal.
    ints: Option<Vec<i64>>,
}

impl RowRun {
    /// Appends the rows' numbers as [`JsonParser::number_row`] would have, moves `pos` past
    /// them, and returns the row length.
    fn append_to(self, values: &mut Vec<f64>, ints: &mut Option<Vec<i64>>, pos: &mut usize) -> usize {
        values.extend_from_slice(&self.values);
        match (ints.as_mut(), self.ints) {
            (Some(list), Some(more)) => list.extend_from_slice(&more),
            _ => *ints = None,
        }
        *pos = self.end;
        self.row_len
    }
}

/// A second thread reading the rows of a large number array from about the middle of the
/// text that remains when it starts (where a data file's one big matrix usually is), while
/// the calling thread reads up to there.
struct RowHelper<'scope, 'env> {
    scope: &'scope Scope<'env>,
    text: &'env str,
    /// The row the calling thread is at: a helper that starts late (the other core was busy)
    /// still takes its share of what is left rather than rows already read.
    progress: &'env AtomicUsize,
    /// Where the helper's first row starts, once it has found one.
    published: &'env AtomicUsize,
    /// Set when the array is read: the helper gives up.
    stop: &'env AtomicBool,
    state: HelperState<'scope>,
}

enum HelperState<'scope> {
    Idle,
    Running(ScopedJoinHandle<'scope, Option<RowRun>>),
    Done,
}

impl RowHelper<'_, '_> {
    /// At the first number of a row at `pos` of the array starting at `array_start`: the
    /// helper's rows if they start here. Starts the helper once the array has proved large.
    /// `values` and `ints` are where this thread puts the numbers so far.
    fn rows_at(&mut self, pos: usize, array_start: usize, values: &Vec<f64>, ints: &Option<Vec<i64>>) -> Option<RowRun> {
        match &self.state {
            HelperState::Idle if pos - array_start >= SPLIT_AFTER_BYTES && self.text.len() - pos >= SPLIT_MIN_REST_BYTES => {
                self.progress.store(pos, Ordering::Relaxed);
                let buffers = Buffers::of(values, ints);
                let ahead = Ahead { buffers, pos, values_per_byte: buffers.len as f64 / (pos - array_start) as f64 };
                self.start(ahead);
                None
            }
            HelperState::Running(_) if self.published.load(Ordering::Acquire) == pos => {
                let HelperState::Running(handle) = std::mem::replace(&mut self.state, HelperState::Done) else { return None };
                handle.join().ok().flatten()
            }
            HelperState::Running(_) => {
                self.progress.store(pos, Ordering::Relaxed);
                None
            }
            _ => None,
        }
    }

    fn start(&mut self, ahead: Ahead) {
        let (text, progress, published, stop) = (self.text, self.progress, self.published, self.stop);
        let helper = move || rows_from(text, progress.load(Ordering::Relaxed), published, stop, ahead);
        let spawned = spawn_beside(self.scope, "tessera-data-rows", helper);
        // Without a thread (the system refused one), this thread reads every row.
        self.state = spawned.map_or(HelperState::Done, HelperState::Running);
    }

    /// Stops the helper and waits for it (its rows, if not taken, are not needed).
    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let HelperState::Running(handle) = self.state {
            // A helper that failed only loses its rows, which this thread has read.
            let _ = handle.join();
        }
    }
}

/// The helper's work: [`CALLER_SHARE`] of the way from `progress` to the end of the text, finds
/// the start of a row that follows another (`],[` and a number), publishes it, and reads rows
/// of the same length until something other than another row follows. `None` if it finds no
/// row, a row is malformed or of another length (the calling thread then reads them itself,
/// and reports them as without a helper), or when stopped. It also faults in the pages the
/// calling thread will write, as `ahead` estimates them: those of its own rows first (it
/// reaches them soon), and, once its rows are read, those it will copy them to.
fn rows_from(text: &str, progress: usize, published: &AtomicUsize, stop: &AtomicBool, ahead: Ahead) -> Option<RowRun> {
    let rest = text.len().saturating_sub(progress);
    let from = progress + (rest as f64 * CALLER_SHARE) as usize;
    let mut p = JsonParser { text, bytes: text.as_bytes(), pos: from, depth: 0 };
    loop {
        let close = memchr::memchr(b']', p.bytes.get(p.pos..)?)?;
        p.pos += close + 1;
        if p.next_row_follows() {
            break;
        }
    }
    published.store(p.pos, Ordering::Release);
    let copied_to = ahead.index_at(p.pos);
    ahead.prefault(ahead.index_at(progress), copied_to);
    let (mut values, mut ints) = (Vec::new(), Some(Vec::new()));
    p.reserve_rows(&mut values, &mut ints, true);
    let row_len = p.number_row(&mut values, &mut ints)?;
    let mut rows = 1;
    loop {
        let end = p.pos;
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if !p.next_row_follows() {
            ahead.prefault(copied_to, copied_to + values.len());
            return Some(RowRun { end, row_len, rows, values, ints });
        }
        if p.number_row(&mut values, &mut ints)? != row_len {
            return None;
        }
        rows += 1;
    }
}

/// Where the calling thread keeps an array's values (and their exact integers, while it does).
#[derive(Clone, Copy)]
struct Buffers {
    /// Addresses and capacities (in elements) of the values' and the integers' vectors.
    start: [(usize, usize); 2],
    /// Values in them.
    len: usize,
}

impl Buffers {
    fn of(values: &Vec<f64>, ints: &Option<Vec<i64>>) -> Buffers {
        let ints = ints.as_ref().map_or((0, 0), |v| (v.as_ptr() as usize, v.capacity()));
        Buffers { start: [(values.as_ptr() as usize, values.capacity()), ints], len: values.len() }
    }
}

/// The calling thread's buffers as the helper sees them when it starts: the pages the caller
/// is yet to write can be faulted in beside it. The addresses are only used for that; if the
/// caller's vectors have moved by then, faulting pages in elsewhere changes no memory.
#[derive(Clone, Copy)]
struct Ahead {
    buffers: Buffers,
    /// The text offset at which the buffers held `buffers.len` values.
    pos: usize,
    /// Values per byte of the array's text so far.
    values_per_byte: f64,
}

impl Ahead {
    /// The estimated index of the value at text offset `pos`.
    fn index_at(&self, pos: usize) -> usize {
        self.buffers.len + (pos.saturating_sub(self.pos) as f64 * self.values_per_byte) as usize
    }

    /// Faults in the pages of values `from..to` of each buffer, for writing.
    fn prefault(&self, from: usize, to: usize) {
        const ELEM: usize = std::mem::size_of::<f64>(); // and of i64
        for (start, capacity) in self.buffers.start {
            let to = to.min(capacity);
            if from < to {
                prefault_for_writing(start + from * ELEM, (to - from) * ELEM);
            }
        }
    }
}

/// A number literal read in one pass.
struct ScannedNumber {
    /// Offset one past its last byte.
    end: usize,
    value: f64,
    /// Its exact value, when written as an integer that fits i64.
    int: Option<i64>,
}

/// Reads the JSON number starting at `pos` (`None` if malformed). Numbers of at most 15
/// significant digits and a small decimal exponent — most data — take Clinger's fast path:
/// the mantissa and the power of ten are exact doubles, so one multiplication or division
/// rounds correctly. Up to 19 significant digits (what `repr` of a double writes) with a
/// small exponent take [`exact_decimal`]; everything else goes to the standard library's
/// parser.
#[inline(always)]
fn scan_number(text: &str, pos: usize) -> Option<ScannedNumber> {
    let bytes = text.as_bytes();
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let start = pos;
    let mut pos = pos;
    let negative = bytes.get(pos) == Some(&b'-');
    pos += usize::from(negative);
    // A one-digit integer part ("0.35", "-1.2", "3,") is the common case: skip the SWAR probe.
    let (int_end, mut mantissa) = match (bytes.get(pos), bytes.get(pos + 1)) {
        (Some(&d), Some(next)) if d.is_ascii_digit() && !next.is_ascii_digit() => (pos + 1, u64::from(d - b'0')),
        _ => digit_run(bytes, pos, 0),
    };
    if int_end == pos {
        return None;
    }
    let mut digits = int_end - pos;
    pos = int_end;
    let mut fraction_digits = 0;
    if bytes.get(pos) == Some(&b'.') {
        let (end, m) = digit_run(bytes, pos + 1, mantissa);
        fraction_digits = end - (pos + 1);
        if fraction_digits == 0 {
            return None;
        }
        (pos, mantissa) = (end, m);
        digits += fraction_digits;
    }
    let mut exponent: i64 = 0;
    let has_exponent = matches!(bytes.get(pos), Some(b'e' | b'E'));
    if has_exponent {
        pos += 1;
        let exp_negative = bytes.get(pos) == Some(&b'-');
        pos += usize::from(matches!(bytes.get(pos), Some(b'+' | b'-')));
        let from = pos;
        while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
            exponent = (exponent * 10 + i64::from(b - b'0')).min(1 << 40);
            pos += 1;
        }
        if pos == from {
            return None;
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    let integral = fraction_digits == 0 && !has_exponent;
    let power = exponent - fraction_digits as i64;
    // 15 digits keep the mantissa below 2^53 (and far from wrapping).
    let magnitude = if digits <= 15 && power.abs() <= 22 {
        // Below 2^53, so the signed conversion (one instruction) is exact.
        let m = mantissa as i64 as f64;
        Some(if power < 0 { m / POW10[power.unsigned_abs() as usize] } else { m * POW10[power as usize] })
    } else {
        significant_digits(bytes, start + usize::from(negative), digits).filter(|&n| n <= 19).and_then(|_| exact_decimal(mantissa, power))
    };
    let value = match magnitude {
        // The sign set without a branch: signs in data are random, and the mispredicted branch
        // cost ~18 % of reading logistic regression's matrix (2.19 -> 1.80 ms on one core).
        Some(v) => f64::from_bits(v.to_bits() | (u64::from(negative) << 63)),
        None => text.get(start..pos)?.parse().ok()?,
    };
    let int = if !integral {
        None
    } else if digits <= 18 {
        let m = mantissa as i64;
        Some(if negative { -m } else { m })
    } else {
        text.get(start..pos)?.parse().ok()
    };
    Some(ScannedNumber {
        end: pos,
        value,
        int,
    })
}

/// The number of significant digits among the `digits` digits of the literal whose first digit
/// is at `from` (leading zeros, as in `0.0025`, do not count); `digits` itself when at most 19.
fn significant_digits(bytes: &[u8], from: usize, digits: usize) -> Option<usize> {
    if digits <= 19 {
        return Some(digits);
    }
    let zeros = bytes.get(from..)?.iter().take_while(|&&b| b == b'0' || b == b'.').filter(|&&b| b == b'0').count();
    Some(digits - zeros)
}

/// `mantissa · 10^power` correctly rounded (ties to even), for a mantissa of at most 19
/// digits and `-21 <= power <= 19`; `None` outside that range. 128-bit integer arithmetic
/// makes it exact: a non-negative power gives an integer below 2^128, whose conversion
/// rounds correctly; a negative power `-k` divides the mantissa, shifted to 128 bits, by
/// 10^k < 2^70, which leaves a quotient of at least 57 bits — the 53 kept, the rounding bit,
/// and a sticky bit from the rest and the remainder.
fn exact_decimal(mantissa: u64, power: i64) -> Option<f64> {
    if mantissa == 0 {
        return Some(0.0);
    }
    const POW10: [u128; 22] = {
        let mut table = [1u128; 22];
        let mut k = 1;
        while k < table.len() {
            table[k] = table[k - 1] * 10;
            k += 1;
        }
        table
    };
    if (0..=19).contains(&power) {
        return Some((u128::from(mantissa) * POW10[power as usize]) as f64);
    }
    if !(-21..0).contains(&power) {
        return None;
    }
    let shift_in = mantissa.leading_zeros() + 64;
    let (n, d) = (u128::from(mantissa) << shift_in, POW10[power.unsigned_abs() as usize]);
    let q = n / d;
    let r = n - q * d;
    let shift_out = 128 - q.leading_zeros() - 54;
    let kept = q >> shift_out;
    let sticky = q & ((1u128 << shift_out) - 1) != 0 || r != 0;
    let mut m = (kept >> 1) as u64;
    if kept & 1 == 1 && (sticky || m & 1 == 1) {
        m += 1;
    }
    // m ≤ 2^53 is exact, and so is the scaling: the value is between 10^-21 and 2^64, far
    // from the subnormals.
    let exponent = i64::from(shift_out) + 1 - i64::from(shift_in);
    Some(m as f64 * f64::from_bits(((exponent + 1023) as u64) << 52))
}

/// Reads the digits from `pos` into `mantissa` (wrapping past 19 digits; callers count them):
/// returns the end of the digits and the new mantissa.
#[inline(always)]
fn digit_run(bytes: &[u8], mut pos: usize, mut mantissa: u64) -> (usize, u64) {
    while let Some(eight) = eight_digits(bytes, pos) {
        mantissa = mantissa.wrapping_mul(100_000_000).wrapping_add(eight);
        pos += 8;
    }
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(bytes[pos] - b'0'));
        pos += 1;
    }
    (pos, mantissa)
}

/// The value of the eight ASCII digits at `pos`, if there are eight (SWAR: the digits of one
/// little-endian u64 are combined pairwise in three multiplications, as in simdjson and
/// fast_float; digit-by-digit parsing is one dependent multiply-add per digit).
#[inline(always)]
fn eight_digits(bytes: &[u8], pos: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(pos..pos.checked_add(8)?)?.try_into().ok()?;
    let v = u64::from_le_bytes(chunk);
    let all_digits = ((v & 0xF0F0_F0F0_F0F0_F0F0) | ((v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)) == 0x3333_3333_3333_3333;
    if !all_digits {
        return None;
    }
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = v - 0x3030_3030_3030_3030;
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v = ((v & MASK).wrapping_mul(MUL1).wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))) >> 32;
    Some(v & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

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

    /// Long mantissas (16–19 significant digits, as `repr` writes doubles) take the exact
    /// 128-bit path and agree bit for bit with the standard library, ties and near-ties too.
    #[test]
    fn long_mantissas_round_like_std_parse() {
        use proptest::prelude::*;
        let scaled = (1u64..10_000_000_000_000_000_000, -21i64..=19).prop_map(|(m, p)| format!("{m}e{p}"));
        let fractions = (0usize..4, "[1-9][0-9]{15,18}").prop_map(|(zeros, digits)| format!("0.{}{digits}", "0".repeat(zeros)));
        // A double printed to 18 digits with its last digits nudged: near the midpoints.
        let near_ties = (1e-6f64..1e6, 0u32..3, 0i64..1000).prop_map(|(x, nudge, digit)| {
            let text = format!("{x:.17e}");
            let (digits, exp) = text.split_once('e').unwrap();
            let digits = &digits[..digits.len() - nudge as usize];
            format!("{digits}{}e{exp}", digit % 10)
        });
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 6000, ..ProptestConfig::default() });
        runner
            .run(&prop_oneof![scaled, fractions, near_ties], |text| {
                let n = scan_number(&text, 0).expect("a valid literal");
                let want: f64 = text.parse().unwrap();
                prop_assert_eq!(n.value.to_bits(), want.to_bits(), "{}", text);
                Ok(())
            })
            .unwrap();
        // Exact ties between two doubles round to the even one.
        for text in ["9007199254740993.0", "9007199254740995.0", "-9007199254740993.00", "18014398509481986.0", "0.1000000000000000055511151231257827"] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(scan_number(text, 0).unwrap().value.to_bits(), want.to_bits(), "{text}");
        }
    }

    /// The number reader agrees bit for bit with the standard library's parser, on the fast
    /// path (≤ 15 digits, small exponents) and off it.
    #[test]
    fn scan_number_matches_std_parse() {
        use proptest::prelude::*;
        let literal = (
            any::<bool>(),
            "[0-9]{1,22}",
            proptest::option::of("[0-9]{1,22}"),
            proptest::option::of((any::<bool>(), 0i32..400)),
        )
            .prop_map(|(neg, int, frac, exp)| {
                let mut s = String::from(if neg { "-" } else { "" });
                s += &int;
                if let Some(f) = frac {
                    s += ".";
                    s += &f;
                }
                if let Some((eneg, e)) = exp {
                    s += &format!("e{}{e}", if eneg { "-" } else { "+" });
                }
                s
            });
        let floats = any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:?}"));
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 4000,
            ..ProptestConfig::default()
        });
        runner
            .run(&prop_oneof![literal, floats], |text| {
                let n = scan_number(&text, 0).expect("a valid literal");
                prop_assert_eq!(n.end, text.len());
                let want: f64 = text.parse().unwrap();
                prop_assert_eq!(n.value.to_bits(), want.to_bits(), "{}", text);
                let integral = !text.contains(['.', 'e']);
                prop_assert_eq!(
                    n.int,
                    if integral {
                        text.parse::<i64>().ok()
                    } else {
                        None
                    },
                    "{}",
                    text
                );
                Ok(())
            })
            .unwrap();
        for bad in ["-", "1.", ".5", "1e", "1e+", "--1"] {
            assert!(
                scan_number(bad, 0).is_none_or(|n| n.end < bad.len()),
                "{bad}"
            );
        }
    }

    #[test]
    fn number_arrays_are_read_in_one_pass_and_agree_with_the_general_reader() {
        let text = r#"{"a": [[1, 2.5, -3e2], [4, 5, 6]], "b": [7], "c": [[1, 2], [3]], "d": [1, [2]], "e": [[], []]}"#;
        let d = DataSet::from_json(text, "d.json").unwrap();
        assert!(
            matches!(&d.fields["a"].value, Json::Array(a) if a.shape == [2, 3] && a.ints.is_none())
        );
        assert!(
            matches!(&d.fields["b"].value, Json::Array(a) if a.shape == [1] && a.ints.as_deref().map(Vec::as_slice) == Some(&[7][..]))
        );
        // Ragged, mixed and empty lists take the general reader.
        for name in ["c", "d", "e"] {
            assert!(matches!(&d.fields[name].value, Json::List { .. }), "{name}");
        }
        assert_eq!(
            d.read("a", ElemKind::Real, &[2, 3])
                .unwrap()
                .unwrap()
                .to_f64_vec(),
            vec![1.0, 2.5, -300.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(
            d.read("e", ElemKind::Real, &[2, 0])
                .unwrap()
                .unwrap()
                .to_f64_vec(),
            Vec::<f64>::new()
        );
        // The short row is the one blamed.
        assert_eq!(
            d.read("c", ElemKind::Real, &[2, 2]).unwrap().unwrap_err().message,
            "`c[1]` has shape [1] unlike its siblings: lists must be rectangular"
        );
        let mixed = DataSet::from_json(r#"{"m": [[1, 2], [3, 4], "x"]}"#, "d.json").unwrap();
        assert_eq!(mixed.read("m", ElemKind::Real, &[3, 2]).unwrap().unwrap_err().message, "`m[2]` is a string, not a number");
        assert!(
            d.read("d", ElemKind::Real, &[2])
                .unwrap()
                .unwrap_err()
                .message
                .contains("rectangular")
        );
        let e = d.read("a", ElemKind::Real, &[3, 2]).unwrap().unwrap_err();
        assert_eq!(
            e.message,
            "data field `a` has shape [2,3], expected shape [3,2]"
        );
    }

    #[test]
    fn bad_elements_of_number_arrays_are_located() {
        let text =
            "{\"x\": [[1, 2],\n  [3, 1e999]], \"k\": [1, 2.5], \"big\": [9007199254740993, 1e3]}";
        let d = DataSet::from_json(text, "d.json").unwrap();
        let e = d.read("x", ElemKind::Real, &[2, 2]).unwrap().unwrap_err();
        assert_eq!(e.message, "`x[1,1]` is too large for a 64-bit float");
        let at = d.source().locate(e.span);
        assert_eq!((at.line, at.col), (2, 7));
        let e = d.read("k", ElemKind::Int, &[2]).unwrap().unwrap_err();
        assert_eq!(e.message, "int data `k[1]` = 2.5 is not an integer");
        assert_eq!(&text[e.span.start..e.span.end], "2.5");
        assert_eq!(
            d.element_span("x", 3).map(|s| &text[s.start..s.end]),
            Some("1e999")
        );
        // Integer literals stay exact even beside a non-integer literal.
        let big = d.read("big", ElemKind::Int, &[2]).unwrap().unwrap();
        assert_eq!(
            big,
            Value::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![9007199254740993, 1000]).unwrap())
        );
    }

    /// A large array is read with a helper thread taking the rows from about the middle of the
    /// text; whatever the helper finds there, the result is the one-thread reader's.
    #[test]
    fn large_number_arrays_read_with_a_helper_agree_with_one_thread() {
        let number = |i: usize| if i.is_multiple_of(3) { format!("{}", i % 97) } else { format!("-{}.{:04}e-1", i % 89, i % 9973) };
        let row = |r: usize, len: usize| format!("[{}]", (0..len).map(|j| number(r * len + j)).collect::<Vec<_>>().join(", "));
        let int_row = |r: usize| format!("[{}]", (0..9).map(|j| (r * 9 + j).to_string()).collect::<Vec<_>>().join(", "));
        let bad_row = "[1, 2, 3, 4, 5, 6, 7, 8, 9.]".to_string();
        let big = 12_000;
        let odd = big * 3 / 4;
        let matrix = |rows: usize, pick: &dyn Fn(usize) -> String| format!("[{}]", (0..rows).map(pick).collect::<Vec<_>>().join(",\n "));
        let cases = [
            (matrix(big, &|r| row(r, 9)), true),
            (matrix(big, &int_row), true),
            // A real number among integers, a short row, a bad number, far into the array.
            (matrix(big, &|r| if r == odd { row(r, 9) } else { int_row(r) }), true),
            (matrix(big, &|r| if r == odd { row(r, 8) } else { row(r, 9) }), false),
            (matrix(big, &|r| if r == odd { bad_row.clone() } else { row(r, 9) }), false),
            // Three dimensions; a large array followed by another; brackets in a string after.
            (format!("[{}]", (0..big / 4).map(|m| matrix(4, &|r| row(m * 4 + r, 9))).collect::<Vec<_>>().join(",")), true),
            (format!("{}, {}", matrix(big / 2, &|r| row(r, 9)), matrix(big, &|r| row(r, 9))), true),
            (format!("{}, \"{}\"", matrix(big / 4, &|r| row(r, 9)), "],[1, 2],[3, 4]".repeat(20_000)), true),
        ];
        fn reader(text: &str) -> JsonParser<'_> {
            JsonParser { text, bytes: text.as_bytes(), pos: 0, depth: 0 }
        }
        for (text, valid) in &cases {
            let alone = reader(text).number_array_helped(None);
            assert_eq!(alone.is_some(), *valid);
            assert_eq!(reader(text).number_array(), alone);
        }
        let text = format!("{{\"x\": {}}}", matrix(big, &|r| if r == odd { bad_row.clone() } else { row(r, 9) }));
        let e = DataSet::from_json(&text, "d.json").unwrap_err();
        assert_eq!((e.line(), e.col(), e.message.as_str()), (odd + 1, 27, "invalid JSON number `9.`"));
    }

    #[test]
    fn count_byte_counts_in_chunks_and_tail() {
        for len in [0, 1, 31, 32, 33, 64, 95, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| if i % 3 == 0 || i % 7 == 0 { b',' } else { b'7' }).collect();
            assert_eq!(count_byte(&bytes, b','), bytes.iter().filter(|&&b| b == b',').count(), "{len} bytes");
        }
    }

    #[test]
    fn index_text_is_row_major() {
        assert_eq!(index_text(&[2, 3], 4), "[1,1]");
        assert_eq!(index_text(&[], 0), "");
    }
}
