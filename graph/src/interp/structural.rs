//! Shape ops: reshape, transpose, broadcast, concatenate, stack, slice, gather, scatter-add.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use super::elementwise::broadcast_view;
use super::{EvalError, dtype_error, op_error};
use crate::{DType, Shape, SliceRange, Value};

/// The same elements in row-major order with shape `shape` (reshape, expand_dims, squeeze).
pub(super) fn reshape(op: &str, x: &Value, shape: &Shape) -> Result<Value, EvalError> {
    Ok(per_dtype!(x, a => reshape_array(op, a, shape)?))
}

/// Axis permutation: result axis `i` is operand axis `perm[i]`.
pub(super) fn transpose(x: &Value, perm: &[usize]) -> Result<Value, EvalError> {
    let rank = x.shape().rank();
    let mut seen = vec![false; rank];
    let is_permutation = perm.len() == rank && perm.iter().all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
    if !is_permutation {
        return Err(op_error("transpose", format!("{perm:?} is not a permutation of {rank} axes")));
    }
    Ok(per_dtype!(x, a => a.view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned()))
}

/// NumPy `broadcast_to`.
pub(super) fn broadcast_to(x: &Value, shape: &Shape) -> Result<Value, EvalError> {
    Ok(per_dtype!(x, a => broadcast_view("broadcast_to", a, shape)?.as_standard_layout().into_owned()))
}

/// Joins same-dtype operands with `$join`, an expression over `$views` (the operands' array
/// views) that is generic in the element type, so it is expanded once per dtype.
macro_rules! join_same_dtype {
    ($op:expr, $args:expr, $views:ident => $join:expr) => {{
        let (op, args): (&str, &[&Value]) = ($op, $args);
        let shape_error = |e: ndarray::ShapeError| op_error(op, format!("operands do not fit together: {e}"));
        match args.first().map(|v| v.dtype()) {
            None => Err(op_error(op, "needs at least one operand")),
            Some(DType::F64) => {
                let $views = views(op, args, Value::as_f64)?;
                $join.map(Value::F64).map_err(shape_error)
            }
            Some(DType::I64) => {
                let $views = views(op, args, Value::as_i64)?;
                $join.map(Value::I64).map_err(shape_error)
            }
            Some(DType::Bool) => {
                let $views = views(op, args, Value::as_bool)?;
                $join.map(Value::Bool).map_err(shape_error)
            }
        }
    }};
}

/// Joins the operands along an existing axis.
pub(super) fn concatenate(args: &[&Value], axis: usize) -> Result<Value, EvalError> {
    join_same_dtype!("concatenate", args, views => ndarray::concatenate(Axis(axis), &views))
}

/// Joins operands of equal shape along a new axis.
pub(super) fn stack(args: &[&Value], axis: usize) -> Result<Value, EvalError> {
    join_same_dtype!("stack", args, views => ndarray::stack(Axis(axis), &views))
}

/// Views of every operand's array of one dtype (an error if any operand has another dtype).
fn views<'a, T>(
    op: &str,
    args: &[&'a Value],
    pick: fn(&'a Value) -> Option<&'a ArrayD<T>>,
) -> Result<Vec<ArrayViewD<'a, T>>, EvalError> {
    args.iter().map(|&v| pick(v).map(|a| a.view())).collect::<Option<Vec<_>>>().ok_or_else(|| dtype_error(op, args))
}

/// Static strided slicing, one normalized range per axis (negative steps walk backwards).
pub(super) fn slice(x: &Value, ranges: &[SliceRange]) -> Result<Value, EvalError> {
    let dims = x.shape();
    if ranges.len() != dims.rank() {
        return Err(op_error("slice", format!("{} ranges given for shape {dims}", ranges.len())));
    }
    let slices = ranges
        .iter()
        .zip(dims.dims())
        .enumerate()
        .map(|(axis, (&r, &dim))| {
            ndarray_slice(r, dim).ok_or_else(|| {
                op_error("slice", format!("range {} is out of bounds for axis {axis} of shape {dims}", r.to_python()))
            })
        })
        .collect::<Result<Vec<Slice>, EvalError>>()?;
    let pick = |d: ndarray::AxisDescription| slices[d.axis.index()];
    Ok(per_dtype!(x, a => a.slice_each_axis(pick).as_standard_layout().into_owned()))
}

/// The ndarray slice taking the same elements in the same order as `r` on an axis of extent
/// `dim`, or `None` when `r` leaves the axis. ndarray walks a negative-step slice from the end
/// of its half-open range, so the range is given as `[lowest, highest]` taken element.
fn ndarray_slice(r: SliceRange, dim: usize) -> Option<Slice> {
    if r.len == 0 {
        return Some(Slice::new(0, Some(0), 1));
    }
    let first = i64::try_from(r.start).ok()?;
    let last = first.checked_add(r.step.checked_mul(i64::try_from(r.len - 1).ok()?)?)?;
    let (lo, hi) = (first.min(last), first.max(last));
    let in_bounds = r.step != 0 && lo >= 0 && usize::try_from(hi).is_ok_and(|hi| hi < dim);
    in_bounds.then(|| Slice::new(lo as isize, Some(hi as isize + 1), r.step as isize))
}

/// `take(a, idx, axis)`: `out_shape` is `a.shape[..axis] ++ idx.shape ++ a.shape[axis+1..]`.
pub(super) fn gather(a: &Value, idx: &Value, axis: usize, out_shape: &Shape) -> Result<Value, EvalError> {
    let Value::I64(idx_array) = idx else { return Err(dtype_error("gather", &[a, idx])) };
    let dims = a.shape();
    let extent =
        *dims.dims().get(axis).ok_or_else(|| op_error("gather", format!("axis {axis} is out of range for {dims}")))?;
    let flat = checked_indices("gather", idx_array, axis, extent)?;
    let blocks = Blocks::around(dims.dims(), axis);
    Ok(per_dtype!(a, arr => gather_array(arr, &flat, blocks, out_shape)?))
}

/// Adjoint of gather: adds `updates` into zeros whose `axis` has extent `size`, at `idx`
/// (repeated indices accumulate).
pub(super) fn scatter_add(
    updates: &Value,
    idx: &Value,
    axis: usize,
    size: usize,
    out_shape: &Shape,
) -> Result<Value, EvalError> {
    let Value::I64(idx_array) = idx else { return Err(dtype_error("scatter_add", &[updates, idx])) };
    let flat = checked_indices("scatter_add", idx_array, axis, size)?;
    if out_shape.dims().get(axis) != Some(&size) {
        return Err(op_error("scatter_add", format!("result shape {out_shape} has no axis {axis} of extent {size}")));
    }
    let blocks = Blocks::around(out_shape.dims(), axis);
    match updates {
        Value::F64(u) => Ok(Value::F64(scatter_array(u, &flat, blocks, out_shape, |s, v| s + v)?)),
        Value::I64(u) => Ok(Value::I64(scatter_array(u, &flat, blocks, out_shape, i64::wrapping_add)?)),
        Value::Bool(_) => Err(dtype_error("scatter_add", &[updates, idx])),
    }
}

/// The row-major factorization of a shape around one axis: `outer` blocks of `extent`
/// rows of `inner` contiguous elements.
#[derive(Clone, Copy)]
struct Blocks {
    outer: usize,
    extent: usize,
    inner: usize,
}

impl Blocks {
    fn around(dims: &[usize], axis: usize) -> Blocks {
        let outer = dims.iter().take(axis).product();
        let extent = dims.get(axis).copied().unwrap_or(1);
        let inner = dims.iter().skip(axis + 1).product();
        Blocks { outer, extent, inner }
    }
}

/// Every index of `idx` in row-major order, each checked to lie in `0..extent`.
fn checked_indices(op: &'static str, idx: &ArrayD<i64>, axis: usize, extent: usize) -> Result<Vec<usize>, EvalError> {
    idx.iter()
        .map(|&i| {
            usize::try_from(i).ok().filter(|&u| u < extent).ok_or(EvalError::IndexOutOfRange {
                op,
                index: i,
                axis,
                extent,
            })
        })
        .collect()
}

fn reshape_array<T: Clone>(op: &str, a: &ArrayD<T>, shape: &Shape) -> Result<ArrayD<T>, EvalError> {
    ArrayD::from_shape_vec(IxDyn(shape.dims()), a.iter().cloned().collect())
        .map_err(|e| op_error(op, format!("cannot arrange {} elements as {shape}: {e}", a.len())))
}

/// Copies row `idx[j]` of each outer block of `a` (laid out as `blocks`) in index order.
fn gather_array<T: Clone>(
    a: &ArrayD<T>,
    idx: &[usize],
    blocks: Blocks,
    out_shape: &Shape,
) -> Result<ArrayD<T>, EvalError> {
    let standard = a.as_standard_layout();
    let data = standard.as_slice().ok_or_else(|| op_error("gather", "operand is not contiguous"))?;
    let Blocks { outer, extent, inner } = blocks;
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for block in 0..outer {
        for &i in idx {
            let start = (block * extent + i) * inner;
            let row = data.get(start..start + inner).ok_or_else(|| op_error("gather", "row outside the operand"))?;
            out.extend_from_slice(row);
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape.dims()), out)
        .map_err(|e| op_error("gather", format!("cannot shape the result as {out_shape}: {e}")))
}

/// Adds row `j` of each outer block of `updates` into row `idx[j]` of a zero result laid out
/// as `blocks`.
fn scatter_array<T: Copy + Default>(
    updates: &ArrayD<T>,
    idx: &[usize],
    blocks: Blocks,
    out_shape: &Shape,
    add: impl Fn(T, T) -> T,
) -> Result<ArrayD<T>, EvalError> {
    let Blocks { outer, extent, inner } = blocks;
    let standard = updates.as_standard_layout();
    let data = standard.as_slice().ok_or_else(|| op_error("scatter_add", "updates are not contiguous"))?;
    if data.len() != outer * idx.len() * inner {
        return Err(op_error(
            "scatter_add",
            format!("updates of shape {:?} do not match {} indices into {out_shape}", updates.shape(), idx.len()),
        ));
    }
    let mut out = vec![T::default(); outer * extent * inner];
    for block in 0..outer {
        for (j, &i) in idx.iter().enumerate() {
            let src = (block * idx.len() + j) * inner;
            let dst = (block * extent + i) * inner;
            let (Some(source), Some(target)) = (data.get(src..src + inner), out.get_mut(dst..dst + inner)) else {
                return Err(op_error("scatter_add", "row outside the operand or result"));
            };
            for (t, &s) in target.iter_mut().zip(source) {
                *t = add(*t, s);
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape.dims()), out)
        .map_err(|e| op_error("scatter_add", format!("cannot shape the result as {out_shape}: {e}")))
}
