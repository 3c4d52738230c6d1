//! The printer: one deterministic text form per graph.

use std::collections::HashSet;
use std::fmt::{self, Write};

use crate::{ConstData, Constant, FusedKernel, Graph, NodeId, Op, ScalarInstr, SliceRange, TensorType};

/// The text form of `graph`: the signature, one line per live non-input node in canonical
/// order (renumbered `%0, %1, …`; scalar constants inline), and the `return`.
pub fn print(graph: &Graph) -> String {
    let live = graph.live_nodes();
    let names = Names::new(graph, &live);
    let mut out = String::with_capacity(64 * live.len() + 64);
    write_signature(&mut out, graph);
    for &id in &live {
        let node = graph.node(id);
        if matches!(node.op, Op::Input { .. }) || is_inline_constant(&node.op) {
            continue;
        }
        out.push_str("  ");
        out.push_str(names.get(id));
        out.push(':');
        push_display(&mut out, &node.ty);
        out.push_str(" = ");
        write_op(&mut out, graph, &names, id);
        out.push('\n');
    }
    out.push_str("  return");
    for (i, &o) in graph.outputs().iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(names.get(o));
    }
    out.push_str("\n}\n");
    out
}

impl fmt::Display for Graph {
    /// The canonical text form (see [`print()`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}

/// Scalar constants have no line of their own; they print where they are used.
fn is_inline_constant(op: &Op) -> bool {
    matches!(op, Op::Const(c) if c.shape().is_scalar())
}

fn push_display(out: &mut String, x: &impl fmt::Display) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{x}");
}

fn write_signature(out: &mut String, graph: &Graph) {
    out.push_str("func ");
    write_name(out, '@', graph.name());
    out.push('(');
    for (i, &id) in graph.inputs().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_name(out, '%', graph.input_name(id).unwrap_or_default());
        out.push_str(": ");
        push_display(out, graph.ty(id));
    }
    out.push_str(") -> ");
    let outputs = graph.outputs();
    if outputs.len() == 1 {
        push_display(out, graph.ty(outputs[0]));
    } else {
        out.push('(');
        for (i, &o) in outputs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_display(out, graph.ty(o));
        }
        out.push(')');
    }
    out.push_str(" {\n");
}

/// `opname[attrs] operands` or `const [..]` for node `id`.
fn write_op(out: &mut String, graph: &Graph, names: &Names, id: NodeId) {
    let node = graph.node(id);
    if let Op::Const(c) = &node.op {
        out.push_str("const ");
        write_const_data(out, c);
        return;
    }
    out.push_str(node.op.name());
    let operand_types: Vec<&TensorType> = node.operands.iter().map(|&o| graph.ty(o)).collect();
    out.push_str(&format_attrs(&node.op, &operand_types));
    for (i, &o) in node.operands.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(names.get(o));
    }
    if let Op::Fused(k) = &node.op {
        out.push(' ');
        out.push_str(&format_kernel_body(k));
    }
}

/// The reduction's name inside `fused[reduce=…]`: the `reduce_` op name without its prefix.
pub(crate) fn reduce_short_name(kind: crate::ReduceOp) -> &'static str {
    kind.name().strip_prefix("reduce_").unwrap_or(kind.name())
}

/// Nesting depth beyond which a single-use instruction is bound with `let` anyway, so that
/// printing and parsing stay shallow.
const MAX_INLINE_DEPTH: usize = 64;

/// A kernel body as `{ let t0 = sub($0, $1); square(div(t0, $2)) }`: operands are `$i`,
/// literals `VALUE:DTYPE`, single-use instructions nest as calls, multi-use ones are bound.
pub(crate) fn format_kernel_body(k: &FusedKernel) -> String {
    let n = k.body.len();
    let mut uses = vec![0usize; n];
    for ins in &k.body {
        for o in ins.operands() {
            uses[o as usize] += 1;
        }
    }
    let is_leaf = |i: usize| matches!(k.body[i], ScalarInstr::Arg(_) | ScalarInstr::Const(_));
    let mut bound = vec![false; n];
    let mut depth = vec![0usize; n];
    for i in 0..n {
        let d = 1 + k.body[i].operands().filter(|&o| !bound[o as usize]).map(|o| depth[o as usize]).max().unwrap_or(0);
        bound[i] = i + 1 < n && !is_leaf(i) && (uses[i] >= 2 || d > MAX_INLINE_DEPTH);
        depth[i] = if bound[i] { 1 } else { d };
    }
    let mut names: Vec<Option<String>> = vec![None; n];
    let mut out = String::from("{ ");
    let mut next = 0;
    for i in 0..n {
        if bound[i] {
            let expr = kernel_expr(k, i, &names);
            let name = format!("t{next}");
            next += 1;
            push_display(&mut out, &format_args!("let {name} = {expr}; "));
            names[i] = Some(name);
        }
    }
    out.push_str(&kernel_expr(k, n - 1, &names));
    out.push_str(" }");
    out
}

/// Instruction `i` as an expression, nesting unbound operands.
fn kernel_expr(k: &FusedKernel, i: usize, names: &[Option<String>]) -> String {
    let sub = |o: u16| match &names[o as usize] {
        Some(name) => name.clone(),
        None => kernel_expr(k, o as usize, names),
    };
    match k.body[i] {
        ScalarInstr::Arg(a) => format!("${a}"),
        ScalarInstr::Const(c) => format_scalar(&c.to_constant()),
        ScalarInstr::Unary(u, x) => format!("{}({})", u.name(), sub(x)),
        ScalarInstr::Binary(b, x, y) => format!("{}({}, {})", b.name(), sub(x), sub(y)),
        ScalarInstr::Where(c, x, y) => format!("where({}, {}, {})", sub(c), sub(x), sub(y)),
        ScalarInstr::Cast(to, x) => format!("cast[to={to}]({})", sub(x)),
    }
}

/// The names operands print as: `%input`, `%k` for numbered nodes, `VALUE:DTYPE` for scalar
/// constants. Shared by the printer and the DOT export so both number nodes alike.
pub(crate) struct Names {
    refs: Vec<String>,
}

impl Names {
    /// Numbers the live nodes of `graph` (given in canonical order).
    pub(crate) fn new(graph: &Graph, live: &[NodeId]) -> Names {
        let input_names: HashSet<&str> = graph.inputs().iter().filter_map(|&i| graph.input_name(i)).collect();
        let mut refs = vec![String::new(); graph.arena_len()];
        let mut next = 0usize;
        for &id in live {
            let node = graph.node(id);
            refs[id.index()] = match &node.op {
                Op::Input { name, .. } => {
                    let mut s = String::new();
                    write_name(&mut s, '%', name);
                    s
                }
                Op::Const(c) if c.shape().is_scalar() => format_scalar(c),
                _ => {
                    // An input literally named like a number keeps its name; skip that number.
                    while input_names.contains(next.to_string().as_str()) {
                        next += 1;
                    }
                    next += 1;
                    format!("%{}", next - 1)
                }
            };
        }
        Names { refs }
    }

    /// How node `id` is referred to.
    pub(crate) fn get(&self, id: NodeId) -> &str {
        self.refs.get(id.index()).map_or("%?", String::as_str)
    }
}

/// Writes `sigil` and `name`, quoting names that are not bare words of `[A-Za-z0-9_.]`.
pub(crate) fn write_name(out: &mut String, sigil: char, name: &str) {
    out.push(sigil);
    let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if bare {
        out.push_str(name);
        return;
    }
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => push_display(out, &format_args!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A scalar constant as an inline literal: `-0.5:f64`, `3:i64`, `true:bool`.
pub(crate) fn format_scalar(c: &Constant) -> String {
    let mut s = String::new();
    write_element(&mut s, c.data(), 0);
    s.push(':');
    s.push_str(c.data().dtype().name());
    s
}

/// Element `i`: f64 in Rust's shortest round-trip form (`inf`, `-inf`, `nan`; a NaN with
/// another bit pattern as `nan0x…` so that it survives a round trip bit for bit).
fn write_element(out: &mut String, data: &ConstData, i: usize) {
    match data {
        ConstData::F64(v) => write_f64(out, v[i]),
        ConstData::I64(v) => push_display(out, &v[i]),
        ConstData::Bool(v) => out.push_str(if v[i] { "true" } else { "false" }),
    }
}

fn write_f64(out: &mut String, x: f64) {
    if x.is_nan() {
        if x.to_bits() == f64::NAN.to_bits() {
            out.push_str("nan");
        } else {
            push_display(out, &format_args!("nan0x{:016x}", x.to_bits()));
        }
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    } else {
        push_display(out, &format_args!("{x:?}"));
    }
}

/// Nested lists, row-major: `[[1.0, 0.0], [0.0, 1.0]]`; a scalar as its bare value.
fn write_const_data(out: &mut String, c: &Constant) {
    let mut next = 0;
    write_nested(out, c.shape().dims(), c.data(), &mut next);
}

fn write_nested(out: &mut String, dims: &[usize], data: &ConstData, next: &mut usize) {
    let Some((&n, rest)) = dims.split_first() else {
        write_element(out, data, *next);
        *next += 1;
        return;
    };
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        write_nested(out, rest, data, next);
    }
    out.push(']');
}

/// The attribute list of `op` (`[axes=[0], keepdims=true]`), sorted by key, defaults
/// omitted; empty for ops without attributes. Slices need their operand's type.
pub(crate) fn format_attrs(op: &Op, operand_types: &[&TensorType]) -> String {
    let list = |xs: &[usize]| {
        let items: Vec<String> = xs.iter().map(usize::to_string).collect();
        format!("[{}]", items.join(", "))
    };
    let attrs: Vec<String> = match op {
        Op::Input { .. }
        | Op::Const(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Where
        | Op::Matmul
        | Op::Outer
        | Op::Cholesky
        | Op::LogDetChol
        | Op::Diag
        | Op::DiagMatrix => Vec::new(),
        Op::Cast { to } => vec![format!("to={to}")],
        Op::Reduce { axes, keepdims, .. } => {
            let mut a = vec![format!("axes={}", list(axes))];
            if *keepdims {
                a.push("keepdims=true".into());
            }
            a
        }
        Op::Cumsum { axis, reverse } => {
            let mut a = vec![format!("axis={axis}")];
            if *reverse {
                a.push("reverse=true".into());
            }
            a
        }
        Op::Reshape { shape } | Op::BroadcastTo { shape } => vec![format!("shape={shape}")],
        Op::Transpose { perm } => vec![format!("perm={}", list(perm))],
        Op::ExpandDims { axis } | Op::Concatenate { axis } | Op::Stack { axis } | Op::Gather { axis } => {
            vec![format!("axis={axis}")]
        }
        Op::Squeeze { axes } => vec![format!("axes={}", list(axes))],
        Op::Slice { ranges } => {
            let dims = operand_types.first().map(|t| t.shape.dims()).unwrap_or_default();
            let items: Vec<String> =
                ranges.iter().enumerate().map(|(i, r)| python_range(r, dims.get(i).copied().unwrap_or(0))).collect();
            vec![format!("ranges=[{}]", items.join(", "))]
        }
        Op::ScatterAdd { axis, size } => vec![format!("axis={axis}"), format!("size={size}")],
        Op::TriangularSolve { lower } => vec![format!("lower={lower}")],
        Op::Fused(k) => match &k.reduce {
            None => Vec::new(),
            Some(r) => {
                let mut a = vec![format!("axes={}", list(&r.axes))];
                if r.keepdims {
                    a.push("keepdims=true".into());
                }
                a.push(format!("reduce={}", reduce_short_name(r.kind)));
                a
            }
        },
    };
    if attrs.is_empty() { String::new() } else { format!("[{}]", attrs.join(", ")) }
}

/// The Python form of a range on an axis of extent `dim`, chosen so that
/// `SliceRange::from_python` gives the range back exactly: [`SliceRange::to_python`], except
/// for an empty backwards range on an empty axis, where no start index exists.
pub(crate) fn python_range(r: &SliceRange, dim: usize) -> String {
    if r.step < 0 && r.len == 0 && dim == 0 { format!("::{}", r.step) } else { r.to_python() }
}
