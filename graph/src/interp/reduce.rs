//! Reductions over any set of axes, and cumulative sums.

use ndarray::{ArrayD, Axis, IxDyn};

use super::{EvalError, dtype_error, op_error};
use crate::{ReduceOp, Shape, Value, special};

/// `kind` over `axes` (sorted, distinct); `out_shape` is the result shape, with or without the
/// reduced axes kept as extent 1 (the element order is the same either way).
pub(super) fn reduce(kind: ReduceOp, axes: &[usize], x: &Value, out_shape: &Shape) -> Result<Value, EvalError> {
    let name = kind.name();
    match x {
        Value::F64(a) => Ok(Value::F64(reduce_lanes(name, a, axes, out_shape, |lane| reduce_f64(kind, lane))?)),
        Value::I64(a) if !kind.needs_float() => {
            Ok(Value::I64(reduce_lanes(name, a, axes, out_shape, |lane| reduce_i64(kind, lane))?))
        }
        _ => Err(dtype_error(name, &[x])),
    }
}

/// Inclusive cumulative sum along `axis`, from the end when `reverse`.
pub(super) fn cumsum(x: &Value, axis: usize, reverse: bool) -> Result<Value, EvalError> {
    match x {
        Value::F64(a) => Ok(Value::F64(cumsum_lanes(a, axis, reverse, |s, v| s + v)?)),
        Value::I64(a) => Ok(Value::I64(cumsum_lanes(a, axis, reverse, i64::wrapping_add)?)),
        Value::Bool(_) => Err(dtype_error("cumsum", &[x])),
    }
}

/// Applies `f` to each lane of the reduced axes. The kept axes are moved to the front (in
/// order) and the reduced ones to the back, so each result element's inputs are one
/// contiguous row-major run.
fn reduce_lanes<T: Copy, R>(
    op: &str,
    a: &ArrayD<T>,
    axes: &[usize],
    out_shape: &Shape,
    f: impl Fn(&[T]) -> R,
) -> Result<ArrayD<R>, EvalError> {
    let rank = a.ndim();
    if axes.iter().any(|&ax| ax >= rank) || axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(op_error(op, format!("axes {axes:?} are not sorted, distinct axes of rank {rank}")));
    }
    let kept = (0..rank).filter(|i| !axes.contains(i));
    let perm: Vec<usize> = kept.chain(axes.iter().copied()).collect();
    let moved: Vec<T> = a.view().permuted_axes(IxDyn(&perm)).iter().copied().collect();
    let lane_len: usize = axes.iter().map(|&ax| a.shape()[ax]).product();
    let results: Vec<R> = if lane_len == 0 {
        // Reducing empty axes: every result is the reduction of nothing.
        (0..out_shape.size()).map(|_| f(&[])).collect()
    } else {
        moved.chunks_exact(lane_len).map(f).collect()
    };
    ArrayD::from_shape_vec(IxDyn(out_shape.dims()), results)
        .map_err(|e| op_error(op, format!("cannot shape the result as {out_shape}: {e}")))
}

/// One f64 reduction of a lane (NaN propagates through max and min).
fn reduce_f64(kind: ReduceOp, lane: &[f64]) -> f64 {
    match kind {
        ReduceOp::Sum => lane.iter().sum(),
        ReduceOp::Prod => lane.iter().product(),
        ReduceOp::Max => lane.iter().copied().fold(f64::NEG_INFINITY, special::nan_max),
        ReduceOp::Min => lane.iter().copied().fold(f64::INFINITY, special::nan_min),
        ReduceOp::Mean => lane.iter().sum::<f64>() / lane.len() as f64,
        ReduceOp::LogSumExp => special::logsumexp(lane.iter().copied()),
    }
}

/// One i64 reduction of a lane (wrapping; mean and logsumexp take f64 only and never get here).
fn reduce_i64(kind: ReduceOp, lane: &[i64]) -> i64 {
    match kind {
        ReduceOp::Sum | ReduceOp::Mean | ReduceOp::LogSumExp => lane.iter().fold(0, |s, &v| s.wrapping_add(v)),
        ReduceOp::Prod => lane.iter().fold(1, |s, &v| s.wrapping_mul(v)),
        ReduceOp::Max => lane.iter().copied().fold(i64::MIN, i64::max),
        ReduceOp::Min => lane.iter().copied().fold(i64::MAX, i64::min),
    }
}

/// Running sums of every lane along `axis`.
fn cumsum_lanes<T: Copy + Default>(
    a: &ArrayD<T>,
    axis: usize,
    reverse: bool,
    add: impl Fn(T, T) -> T,
) -> Result<ArrayD<T>, EvalError> {
    if axis >= a.ndim() {
        return Err(op_error("cumsum", format!("axis {axis} is out of range for rank {}", a.ndim())));
    }
    let mut out = a.to_owned();
    for mut lane in out.lanes_mut(Axis(axis)) {
        if reverse {
            lane.invert_axis(Axis(0));
        }
        let mut acc = T::default();
        for v in lane.iter_mut() {
            acc = add(acc, *v);
            *v = acc;
        }
    }
    Ok(out)
}
