//! Elementwise ops with NumPy broadcasting: unary, binary, where and cast.
//!
//! The scalar semantics come from the op tables ([`UnaryOp::eval_f64`], [`BinaryOp::eval_f64`]
//! and friends); this module only maps them over (broadcast) arrays.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

use super::{EvalError, dtype_error, op_error};
use crate::{BinaryOp, DType, DTypeRule, Shape, UnaryOp, Value, special};

/// An elementwise unary op.
pub(super) fn unary(op: UnaryOp, x: &Value) -> Result<Value, EvalError> {
    match x {
        Value::F64(a) if op.dtype_rule() == DTypeRule::FloatPredicate => {
            Ok(Value::Bool(a.mapv(|v| op.eval_f64(v) != 0.0)))
        }
        Value::F64(a) if op.dtype_rule().result(DType::F64) == Ok(DType::F64) => {
            Ok(Value::F64(a.mapv(|v| op.eval_f64(v))))
        }
        // Probe once: the table answers `None` for ops that have no integer meaning.
        Value::I64(a) if op.eval_i64(0).is_some() => Ok(Value::I64(a.mapv(|v| op.eval_i64(v).unwrap_or(0)))),
        Value::Bool(a) if op == UnaryOp::Not => Ok(Value::Bool(a.mapv(|v| !v))),
        _ => Err(dtype_error(op.name(), &[x])),
    }
}

/// An elementwise binary op, broadcasting both operands to `shape`.
pub(super) fn binary(op: BinaryOp, x: &Value, y: &Value, shape: &Shape) -> Result<Value, EvalError> {
    let name = op.name();
    match (x, y) {
        (Value::F64(a), Value::F64(b)) if op.returns_bool() => {
            Ok(Value::Bool(zip2(name, a, b, shape, |p, q| op.eval_f64(p, q) != 0.0)?))
        }
        (Value::F64(a), Value::F64(b)) => Ok(Value::F64(zip2(name, a, b, shape, |p, q| op.eval_f64(p, q))?)),
        (Value::I64(a), Value::I64(b)) if op.compare_i64(0, 0).is_some() => {
            Ok(Value::Bool(zip2(name, a, b, shape, |p, q| op.compare_i64(p, q).unwrap_or(false))?))
        }
        (Value::I64(a), Value::I64(b)) if op.eval_i64(0, 0).is_some() => {
            Ok(Value::I64(zip2(name, a, b, shape, |p, q| op.eval_i64(p, q).unwrap_or(0))?))
        }
        (Value::Bool(a), Value::Bool(b)) if op.eval_bool(false, false).is_some() => {
            Ok(Value::Bool(zip2(name, a, b, shape, |p, q| op.eval_bool(p, q).unwrap_or(false))?))
        }
        _ => Err(dtype_error(name, &[x, y])),
    }
}

/// `where(cond, a, b)`, broadcasting all three to `shape`.
pub(super) fn select(cond: &Value, x: &Value, y: &Value, shape: &Shape) -> Result<Value, EvalError> {
    let Value::Bool(c) = cond else { return Err(dtype_error("where", &[cond, x, y])) };
    let c = broadcast_view("where", c, shape)?;
    match (x, y) {
        (Value::F64(a), Value::F64(b)) => Ok(Value::F64(select_arrays(&c, a, b, shape)?)),
        (Value::I64(a), Value::I64(b)) => Ok(Value::I64(select_arrays(&c, a, b, shape)?)),
        (Value::Bool(a), Value::Bool(b)) => Ok(Value::Bool(select_arrays(&c, a, b, shape)?)),
        _ => Err(dtype_error("where", &[cond, x, y])),
    }
}

/// Elementwise dtype conversion (see the module docs of the interpreter for the rules).
pub(super) fn cast(x: &Value, to: DType) -> Value {
    match (x, to) {
        (Value::F64(a), DType::I64) => Value::I64(a.mapv(special::f64_to_i64)),
        (Value::F64(a), DType::Bool) => Value::Bool(a.mapv(|v| v != 0.0)),
        (Value::I64(a), DType::F64) => Value::F64(a.mapv(|v| v as f64)),
        (Value::I64(a), DType::Bool) => Value::Bool(a.mapv(|v| v != 0)),
        (Value::Bool(a), DType::F64) => Value::F64(a.mapv(|v| f64::from(u8::from(v)))),
        (Value::Bool(a), DType::I64) => Value::I64(a.mapv(i64::from)),
        (Value::F64(_), DType::F64) | (Value::I64(_), DType::I64) | (Value::Bool(_), DType::Bool) => x.clone(),
    }
}

/// A view of `a` broadcast to `shape` (NumPy rules).
pub(super) fn broadcast_view<'a, T>(op: &str, a: &'a ArrayD<T>, shape: &Shape) -> Result<ArrayViewD<'a, T>, EvalError> {
    a.broadcast(IxDyn(shape.dims()))
        .ok_or_else(|| op_error(op, format!("operand shape {:?} does not broadcast to {shape}", a.shape())))
}

/// `f` applied to the pairs of elements of `a` and `b` broadcast to `shape`.
fn zip2<A: Copy, B: Copy, R>(
    op: &str,
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    shape: &Shape,
    f: impl Fn(A, B) -> R,
) -> Result<ArrayD<R>, EvalError> {
    let av = broadcast_view(op, a, shape)?;
    let bv = broadcast_view(op, b, shape)?;
    Ok(Zip::from(&av).and(&bv).map_collect(|&p, &q| f(p, q)))
}

/// Picks from `a` where `c` holds and from `b` elsewhere, all broadcast to `shape`.
fn select_arrays<T: Clone>(
    c: &ArrayViewD<'_, bool>,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    shape: &Shape,
) -> Result<ArrayD<T>, EvalError> {
    let av = broadcast_view("where", a, shape)?;
    let bv = broadcast_view("where", b, shape)?;
    Ok(Zip::from(c).and(&av).and(&bv).map_collect(|&c, p, q| if c { p.clone() } else { q.clone() }))
}
