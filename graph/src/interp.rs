//! The reference interpreter: evaluates a graph on ndarray values and so defines what every op means.
//!
//! It is the oracle that rewrites, gradients and the JIT are tested against, so it favours
//! obviousness over speed (matrix products still go through ndarray's `dot`, so model-sized
//! graphs evaluate in milliseconds). Semantics fixed here, beyond the op docs in [`crate::Op`]:
//!
//! - Inputs are checked against the graph's signature first: a missing, unknown or mistyped
//!   input is an error, never a panic; every op's operand types are re-inferred before it runs.
//! - `cast` f64 → i64 truncates toward zero; NaN and ±inf give 0, finite values beyond the i64
//!   range saturate ([`crate::special::f64_to_i64`]). To bool is `≠ 0` (so NaN is true);
//!   bool → number is 0 / 1.
//! - Integer arithmetic wraps (NumPy's behaviour), including in sums, products and matmul;
//!   [`eval_checked`] makes a wrapped result, and a cast to i64 of a float outside its range,
//!   an error instead (for data expressions, where a wrapped size or index is silently wrong).
//! - `gather` / `scatter_add` indices must lie in `0..extent`: unlike NumPy's `take`, negative
//!   indices do not count from the end; they are reported as out of range.
//! - Sums are sequential left to right in row-major order; `mean` of nothing is NaN,
//!   `logsumexp` of nothing is −inf (and of all −inf is −inf), `sum`/`prod` give 0 / 1.
//! - `cholesky` reads only the lower triangle and returns an all-NaN matrix when the matrix is
//!   not (numerically) positive definite; `triangular_solve` reads only the triangle it solves
//!   with, and a zero pivot gives IEEE infinities/NaN rather than an error.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::infer::infer;
use crate::{Graph, GraphError, NodeId, Op, TensorType, Value};

/// Applies `$body` to the array inside a [`Value`] of any dtype, rewrapping the result in the
/// same variant (for ops that only move elements around).
macro_rules! per_dtype {
    ($value:expr, $array:ident => $body:expr) => {
        match $value {
            Value::F64($array) => Value::F64($body),
            Value::I64($array) => Value::I64($body),
            Value::Bool($array) => Value::Bool($body),
        }
    };
}

mod elementwise;
mod fused;
mod linalg;
mod reduce;
mod structural;

/// What can go wrong while evaluating a graph. Messages name the input or op and the problem.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The graph declares an input that was not given.
    #[error("missing input %{name} (declared {expected})")]
    MissingInput {
        /// The input name.
        name: String,
        /// Its declared type.
        expected: TensorType,
    },
    /// An input was given with a dtype or shape other than the declared one.
    #[error("input %{name} has type {got}, but the graph declares {expected}")]
    InputType {
        /// The input name.
        name: String,
        /// The declared type.
        expected: TensorType,
        /// The type of the value given.
        got: TensorType,
    },
    /// A value was given for a name the graph does not declare (usually a typo).
    #[error("unknown input %{name}: the graph's inputs are {known}")]
    UnknownInput {
        /// The name given.
        name: String,
        /// The declared input names, for the message.
        known: String,
    },
    /// A gather or scatter-add index outside `0..extent`.
    #[error("{op}: index {index} is out of range for axis {axis} of extent {extent}")]
    IndexOutOfRange {
        /// The op's text-form name.
        op: &'static str,
        /// The offending index value.
        index: i64,
        /// The indexed axis.
        axis: usize,
        /// The extent of that axis.
        extent: usize,
    },
    /// An i64 result that does not fit in 64 bits ([`eval_checked`] only).
    #[error("`{op}` overflows: its exact result does not fit in a 64-bit int")]
    IntOverflow {
        /// The op's text-form name.
        op: &'static str,
    },
    /// The operands do not fit the op (e.g. [`eval_op`] called with values of the wrong types).
    #[error(transparent)]
    Type(#[from] GraphError),
    /// Anything else that went wrong while running an op.
    #[error("{op}: {message}")]
    Op {
        /// The op's text-form name.
        op: String,
        /// What went wrong.
        message: String,
    },
}

/// An [`EvalError::Op`].
fn op_error(op: &str, message: impl Into<String>) -> EvalError {
    EvalError::Op { op: op.to_string(), message: message.into() }
}

/// Evaluates `graph` on `inputs` (keyed by input name) and returns its outputs in `return` order.
/// Intermediate values are dropped as soon as their last user has run.
pub fn eval(graph: &Graph, inputs: &HashMap<String, Value>) -> Result<Vec<Value>, EvalError> {
    let values = run(graph, inputs, true, IntOverflow::Wrap)?;
    graph.outputs().iter().map(|&o| value_of(&values, o).cloned()).collect()
}

/// [`eval`], except that integer overflow is an error: an i64 result that wrapped, or a cast to
/// i64 of a NaN, an infinity or a float beyond the i64 range.
pub fn eval_checked(graph: &Graph, inputs: &HashMap<String, Value>) -> Result<Vec<Value>, EvalError> {
    let values = run(graph, inputs, true, IntOverflow::Error)?;
    graph.outputs().iter().map(|&o| value_of(&values, o).cloned()).collect()
}

/// Evaluates `graph` on `inputs` and returns the value of every live node (inputs included).
pub fn eval_nodes(graph: &Graph, inputs: &HashMap<String, Value>) -> Result<HashMap<NodeId, Value>, EvalError> {
    let values = run(graph, inputs, false, IntOverflow::Wrap)?;
    Ok(values.into_iter().enumerate().filter_map(|(i, v)| v.map(|v| (NodeId::from_index(i), v))).collect())
}

/// Evaluates one op on operand values, checking them against the op's typing rule and the
/// expected result type `out_ty` first (this is what constant folding calls). Input nodes have
/// no operands to compute from and give an error.
pub fn eval_op(op: &Op, args: &[&Value], out_ty: &TensorType) -> Result<Value, EvalError> {
    let arg_types: SmallVec<[TensorType; 3]> = args.iter().map(|v| v.ty()).collect();
    let arg_refs: SmallVec<[&TensorType; 3]> = arg_types.iter().collect();
    if !matches!(op, Op::Input { .. }) {
        let inferred = infer(op, &arg_refs)?;
        if inferred != *out_ty {
            return Err(op_error(op.name(), format!("operands give type {inferred}, but the node's type is {out_ty}")));
        }
    }
    check_size(op, out_ty)?;
    let value = compute(op, args, out_ty)?;
    let got = value.ty();
    if got != *out_ty {
        // A bug in the interpreter itself; reported rather than returned as a wrong value.
        return Err(op_error(op.name(), format!("interpreter produced {got}, expected {out_ty}")));
    }
    Ok(value)
}

/// What i64 arithmetic does with a result that does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IntOverflow {
    /// Wraps modulo 2^64, as NumPy and the compiled code do.
    Wrap,
    /// Is an error.
    Error,
}

/// The largest magnitude an f64 may have and still be an i64: 2^63 (exclusive above).
const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;

/// An error if the i64 result `value` of `op` wrapped. The op is run again on f64 copies of its
/// integer operands: that result is within rounding error of the exact one, while a wrapped
/// result differs from the exact one by a multiple of 2^64, so a distance of 2^63 or more
/// means it wrapped. (Rounding error reaches 2^63 only for operands beyond ~2^100.)
fn check_int_overflow(op: &Op, args: &[&Value], out: &TensorType, value: &Value) -> Result<(), EvalError> {
    let overflow = || EvalError::IntOverflow { op: op.name() };
    let Value::I64(wrapped) = value else { return Ok(()) };
    match (op, args.first()) {
        (Op::Cast { .. }, Some(Value::F64(x))) => {
            return if x.iter().all(|v| (-I64_BOUND..I64_BOUND).contains(v)) { Ok(()) } else { Err(overflow()) };
        }
        (Op::Unary(_) | Op::Binary(_) | Op::Reduce { .. } | Op::Cumsum { .. } | Op::Matmul | Op::ScatterAdd { .. }, _) => {}
        _ => return Ok(()),
    }
    let is_index = |i: usize| matches!(op, Op::ScatterAdd { .. }) && i == 1;
    let floats: SmallVec<[Value; 3]> = args
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::I64(a) if !is_index(i) => Value::F64(a.mapv(|x| x as f64)),
            other => (*other).clone(),
        })
        .collect();
    let refs: SmallVec<[&Value; 3]> = floats.iter().collect();
    let Value::F64(exact) = compute(op, &refs, &TensorType { dtype: crate::DType::F64, shape: out.shape.clone() })? else {
        return Ok(());
    };
    let wrapped_away = exact.iter().zip(wrapped.iter()).any(|(&e, &w)| {
        let distance = (e - w as f64).abs();
        distance.is_nan() || distance >= I64_BOUND
    });
    if wrapped_away { Err(overflow()) } else { Ok(()) }
}

/// Rejects results whose element count overflows (e.g. a `broadcast_to` or `scatter_add` to an
/// absurd static shape), which would otherwise abort in the allocator's size arithmetic.
fn check_size(op: &Op, ty: &TensorType) -> Result<(), EvalError> {
    let max_elements = isize::MAX as usize / std::mem::size_of::<f64>();
    let size = ty.shape.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match size {
        Some(n) if n <= max_elements && crate::memory::can_allocate(n * std::mem::size_of::<f64>()) => Ok(()),
        Some(n) if n <= max_elements => {
            Err(op_error(op.name(), format!("result type {ty} needs {} bytes, more than this machine can allocate", n * std::mem::size_of::<f64>())))
        }
        _ => Err(op_error(op.name(), format!("result type {ty} has too many elements to allocate"))),
    }
}

/// Evaluates the live nodes in canonical (topological) order. With `release`, a value is
/// dropped once all its users have run, unless it is an output.
fn run(graph: &Graph, inputs: &HashMap<String, Value>, release: bool, ints: IntOverflow) -> Result<Vec<Option<Value>>, EvalError> {
    check_inputs(graph, inputs)?;
    let live = graph.live_nodes();
    let mut remaining_uses = vec![0usize; graph.arena_len()];
    for &id in &live {
        for o in &graph.node(id).operands {
            remaining_uses[o.index()] += 1;
        }
    }
    let mut is_output = vec![false; graph.arena_len()];
    for o in graph.outputs() {
        is_output[o.index()] = true;
    }
    let mut values: Vec<Option<Value>> = vec![None; graph.arena_len()];
    for &id in &live {
        let node = graph.node(id);
        let value = match &node.op {
            Op::Input { name, ty } => bound_input(inputs, name, ty)?.clone(),
            op => {
                let args = node
                    .operands
                    .iter()
                    .map(|&o| value_of(&values, o))
                    .collect::<Result<SmallVec<[&Value; 3]>, EvalError>>()?;
                let value = eval_op(op, &args, &node.ty)?;
                if ints == IntOverflow::Error {
                    check_int_overflow(op, &args, &node.ty, &value)?;
                }
                value
            }
        };
        values[id.index()] = Some(value);
        if release {
            for &o in &node.operands {
                remaining_uses[o.index()] -= 1;
                if remaining_uses[o.index()] == 0 && !is_output[o.index()] {
                    values[o.index()] = None;
                }
            }
        }
    }
    Ok(values)
}

/// The computed value of node `id`.
fn value_of(values: &[Option<Value>], id: NodeId) -> Result<&Value, EvalError> {
    values
        .get(id.index())
        .and_then(Option::as_ref)
        .ok_or_else(|| op_error("eval", format!("node {id} is used before it is computed (the graph is malformed)")))
}

/// Checks that every declared input is given with its declared type and nothing else is.
fn check_inputs(graph: &Graph, inputs: &HashMap<String, Value>) -> Result<(), EvalError> {
    for &id in graph.inputs() {
        if let Op::Input { name, ty } = &graph.node(id).op {
            bound_input(inputs, name, ty)?;
        }
    }
    let mut unknown: Vec<&String> = inputs.keys().filter(|name| graph.input_by_name(name).is_none()).collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        let known: Vec<String> =
            graph.inputs().iter().filter_map(|&id| graph.input_name(id)).map(|n| format!("%{n}")).collect();
        let known = if known.is_empty() { "(none)".to_string() } else { known.join(", ") };
        return Err(EvalError::UnknownInput { name: name.to_string(), known });
    }
    Ok(())
}

/// The value given for input `name`, checked against its declared type.
fn bound_input<'a>(inputs: &'a HashMap<String, Value>, name: &str, ty: &TensorType) -> Result<&'a Value, EvalError> {
    let value =
        inputs.get(name).ok_or_else(|| EvalError::MissingInput { name: name.to_string(), expected: ty.clone() })?;
    let got = value.ty();
    if got != *ty {
        return Err(EvalError::InputType { name: name.to_string(), expected: ty.clone(), got });
    }
    Ok(value)
}

/// Runs `op` on operands whose types have been checked against its typing rule.
fn compute(op: &Op, args: &[&Value], out: &TensorType) -> Result<Value, EvalError> {
    let name = op.name();
    let arg = |i: usize| args.get(i).copied().ok_or_else(|| op_error(name, format!("missing operand {i}")));
    match op {
        Op::Input { name, .. } => {
            Err(op_error("input", format!("%{name} has no operands to compute it from: bind it in the inputs map")))
        }
        Op::Const(c) => Ok(Value::from_constant(c)),
        Op::Unary(u) => elementwise::unary(*u, arg(0)?),
        Op::Binary(b) => elementwise::binary(*b, arg(0)?, arg(1)?, &out.shape),
        Op::Where => elementwise::select(arg(0)?, arg(1)?, arg(2)?, &out.shape),
        Op::Cast { to } => Ok(elementwise::cast(arg(0)?, *to)),
        Op::Reduce { kind, axes, .. } => reduce::reduce(*kind, axes, arg(0)?, &out.shape),
        Op::Cumsum { axis, reverse } => reduce::cumsum(arg(0)?, *axis, *reverse),
        // Reshape, expand_dims and squeeze keep the row-major element order: only the shape changes.
        Op::Reshape { .. } | Op::ExpandDims { .. } | Op::Squeeze { .. } => {
            structural::reshape(name, arg(0)?, &out.shape)
        }
        Op::Transpose { perm } => structural::transpose(arg(0)?, perm),
        Op::BroadcastTo { shape } => structural::broadcast_to(arg(0)?, shape),
        Op::Concatenate { axis } => structural::concatenate(args, *axis),
        Op::Stack { axis } => structural::stack(args, *axis),
        Op::Slice { ranges } => structural::slice(arg(0)?, ranges),
        Op::Gather { axis } => structural::gather(arg(0)?, arg(1)?, *axis, &out.shape),
        Op::ScatterAdd { axis, size } => structural::scatter_add(arg(0)?, arg(1)?, *axis, *size, &out.shape),
        Op::Matmul => linalg::matmul(arg(0)?, arg(1)?, &out.shape),
        Op::Outer => linalg::outer(arg(0)?, arg(1)?),
        Op::Cholesky => linalg::cholesky(arg(0)?),
        Op::TriangularSolve { lower } => linalg::triangular_solve(arg(0)?, arg(1)?, *lower),
        Op::LogDetChol => linalg::logdet_chol(arg(0)?),
        Op::Diag => linalg::diag(arg(0)?),
        Op::DiagMatrix => linalg::diag_matrix(arg(0)?),
        Op::Fused(k) => fused::fused(k, args, &out.shape),
    }
}

/// An error for operands of a dtype the op does not take (unreachable after type inference,
/// kept so the interpreter never panics).
fn dtype_error(op: &str, args: &[&Value]) -> EvalError {
    let types: Vec<String> = args.iter().map(|v| v.ty().to_string()).collect();
    op_error(op, format!("cannot evaluate on operands of type {}", types.join(", ")))
}
