//! Dtype and shape inference: the typing rule of every op, returning an error that names the
//! op, the operand types and what was expected.

use smallvec::SmallVec;

use crate::{DType, GraphError, Op, ReduceOp, Shape, TensorType};

type Result<T> = std::result::Result<T, GraphError>;

/// The type of `op` applied to operands of types `args`.
pub fn infer(op: &Op, args: &[&TensorType]) -> Result<TensorType> {
    let name = op.name();
    let err = |msg: String| GraphError::op(name, msg);
    check_arity(op, args.len()).map_err(err)?;
    match op {
        Op::Input { ty, .. } => Ok(ty.clone()),
        Op::Const(c) => Ok(c.ty()),
        Op::Unary(u) => {
            let dtype = u.dtype_rule().result(args[0].dtype).map_err(|want| {
                err(format!("operand has type {}, expected {want}", args[0]))
            })?;
            Ok(TensorType { dtype, shape: args[0].shape.clone() })
        }
        Op::Binary(b) => {
            let (x, y) = (args[0], args[1]);
            if x.dtype != y.dtype {
                return Err(err(format!(
                    "operand dtypes differ: {x} and {y} (insert a cast to make them equal)"
                )));
            }
            let dtype = b
                .dtype_rule()
                .result(x.dtype)
                .map_err(|want| err(format!("operands have type {x} and {y}, expected {want}")))?;
            let shape = broadcast2(&x.shape, &y.shape).map_err(err)?;
            Ok(TensorType { dtype, shape })
        }
        Op::Where => {
            let (c, a, b) = (args[0], args[1], args[2]);
            if c.dtype != DType::Bool {
                return Err(err(format!("condition has type {c}, expected bool")));
            }
            if a.dtype != b.dtype {
                return Err(err(format!("branches have different dtypes: {a} and {b}")));
            }
            let shape = broadcast2(&c.shape, &a.shape)
                .and_then(|s| broadcast2(&s, &b.shape))
                .map_err(err)?;
            Ok(TensorType { dtype: a.dtype, shape })
        }
        Op::Cast { to } => Ok(TensorType { dtype: *to, shape: args[0].shape.clone() }),
        Op::Reduce { kind, axes, keepdims } => infer_reduce(*kind, axes, *keepdims, args[0]).map_err(err),
        Op::Cumsum { axis, .. } => {
            let x = args[0];
            numeric(x).map_err(err)?;
            check_axis(*axis, x.shape.rank()).map_err(err)?;
            Ok(x.clone())
        }
        Op::Reshape { shape } => {
            let x = args[0];
            if shape.size() != x.shape.size() {
                return Err(err(format!(
                    "cannot reshape {x} ({} elements) to {shape} ({} elements)",
                    x.shape.size(),
                    shape.size()
                )));
            }
            Ok(TensorType { dtype: x.dtype, shape: shape.clone() })
        }
        Op::Transpose { perm } => {
            let x = args[0];
            let rank = x.shape.rank();
            let mut seen = vec![false; rank];
            let valid = perm.len() == rank
                && perm.iter().all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
            if !valid {
                return Err(err(format!("perm {perm:?} is not a permutation of the {rank} axes of {x}")));
            }
            let dims: SmallVec<[usize; 4]> = perm.iter().map(|&p| x.shape.dims()[p]).collect();
            Ok(TensorType { dtype: x.dtype, shape: Shape(dims) })
        }
        Op::ExpandDims { axis } => {
            let x = args[0];
            if *axis > x.shape.rank() {
                return Err(err(format!("axis {axis} is out of range for {x} (at most {})", x.shape.rank())));
            }
            let mut dims = x.shape.0.clone();
            dims.insert(*axis, 1);
            Ok(TensorType { dtype: x.dtype, shape: Shape(dims) })
        }
        Op::Squeeze { axes } => {
            let x = args[0];
            check_axes(axes, x.shape.rank()).map_err(err)?;
            if let Some(&a) = axes.iter().find(|&&a| x.shape.dims()[a] != 1) {
                return Err(err(format!("axis {a} of {x} has extent {}, expected 1", x.shape.dims()[a])));
            }
            Ok(TensorType { dtype: x.dtype, shape: drop_axes(&x.shape, axes) })
        }
        Op::BroadcastTo { shape } => {
            let x = args[0];
            if !x.shape.broadcasts_to(shape) {
                return Err(err(format!("{x} does not broadcast to {shape}")));
            }
            Ok(TensorType { dtype: x.dtype, shape: shape.clone() })
        }
        Op::Concatenate { axis } => infer_concatenate(*axis, args).map_err(err),
        Op::Stack { axis } => {
            let first = args[0];
            if let Some(other) = args.iter().find(|t| **t != first) {
                return Err(err(format!("operands must have equal types, got {first} and {other}")));
            }
            if *axis > first.shape.rank() {
                return Err(err(format!("axis {axis} is out of range for stacking {first}")));
            }
            let mut dims = first.shape.0.clone();
            dims.insert(*axis, args.len());
            Ok(TensorType { dtype: first.dtype, shape: Shape(dims) })
        }
        Op::Slice { ranges } => {
            let x = args[0];
            if ranges.len() != x.shape.rank() {
                return Err(err(format!("{} ranges given for {x}, expected one per axis", ranges.len())));
            }
            for (axis, (r, &dim)) in ranges.iter().zip(x.shape.dims()).enumerate() {
                let last = r.start as i64 + r.step * (r.len as i64 - 1);
                // An empty range is canonically `start = 0`, so equal slices are equal ops.
                let in_bounds = if r.len == 0 { r.start == 0 } else { r.start < dim && (0..dim as i64).contains(&last) };
                if r.step == 0 || r.step == i64::MIN || !in_bounds {
                    return Err(err(format!(
                        "range {} is out of bounds for axis {axis} of {x}",
                        r.to_python()
                    )));
                }
            }
            let dims: SmallVec<[usize; 4]> = ranges.iter().map(|r| r.len).collect();
            Ok(TensorType { dtype: x.dtype, shape: Shape(dims) })
        }
        Op::Gather { axis } => {
            let (a, idx) = (args[0], args[1]);
            index_dtype(idx).map_err(err)?;
            check_axis(*axis, a.shape.rank()).map_err(err)?;
            let mut dims: SmallVec<[usize; 4]> = a.shape.dims()[..*axis].into();
            dims.extend_from_slice(idx.shape.dims());
            dims.extend_from_slice(&a.shape.dims()[axis + 1..]);
            Ok(TensorType { dtype: a.dtype, shape: Shape(dims) })
        }
        Op::ScatterAdd { axis, size } => {
            let (u, idx) = (args[0], args[1]);
            index_dtype(idx).map_err(err)?;
            numeric(u).map_err(err)?;
            let k = idx.shape.rank();
            let ud = u.shape.dims();
            let end = axis.checked_add(k).filter(|&e| e <= ud.len());
            if end.is_none_or(|e| &ud[*axis..e] != idx.shape.dims()) {
                return Err(err(format!(
                    "updates {u} must have the index shape {} at axis {axis}",
                    idx.shape
                )));
            }
            let mut dims: SmallVec<[usize; 4]> = ud[..*axis].into();
            dims.push(*size);
            dims.extend_from_slice(&ud[end.unwrap_or(ud.len())..]);
            Ok(TensorType { dtype: u.dtype, shape: Shape(dims) })
        }
        Op::Matmul => infer_matmul(args[0], args[1]).map_err(err),
        Op::Outer => {
            let (a, b) = (args[0], args[1]);
            same_float(a, b).map_err(err)?;
            if a.shape.rank() != 1 || b.shape.rank() != 1 {
                return Err(err(format!("operands must be vectors, got {a} and {b}")));
            }
            Ok(TensorType::new(DType::F64, [a.shape.dims()[0], b.shape.dims()[0]]))
        }
        Op::Cholesky | Op::LogDetChol | Op::Diag => {
            let m = args[0];
            square_float(m).map_err(err)?;
            let n = m.shape.dims()[0];
            Ok(match op {
                Op::Cholesky => m.clone(),
                Op::LogDetChol => TensorType::scalar(DType::F64),
                _ => TensorType::new(m.dtype, [n]),
            })
        }
        Op::TriangularSolve { .. } => {
            let (a, b) = (args[0], args[1]);
            square_float(a).map_err(err)?;
            same_float(a, b).map_err(err)?;
            let n = a.shape.dims()[0];
            if !(1..=2).contains(&b.shape.rank()) || b.shape.dims()[0] != n {
                return Err(err(format!(
                    "right-hand side {b} must be a vector or matrix with {n} rows to match {a}"
                )));
            }
            Ok(b.clone())
        }
        Op::Fused(k) => infer_fused(k, args),
        Op::DiagMatrix => {
            let v = args[0];
            if v.shape.rank() != 1 {
                return Err(err(format!("operand {v} must be a vector")));
            }
            let n = v.shape.dims()[0];
            Ok(TensorType::new(v.dtype, [n, n]))
        }
    }
}

/// The number of operands `op` takes, checked against `n`.
fn check_arity(op: &Op, n: usize) -> std::result::Result<(), String> {
    let (lo, hi) = match op {
        Op::Input { .. } | Op::Const(_) => (0, 0),
        Op::Unary(_)
        | Op::Cast { .. }
        | Op::Reduce { .. }
        | Op::Cumsum { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::ExpandDims { .. }
        | Op::Squeeze { .. }
        | Op::BroadcastTo { .. }
        | Op::Slice { .. }
        | Op::Cholesky
        | Op::LogDetChol
        | Op::Diag
        | Op::DiagMatrix => (1, 1),
        Op::Binary(_) | Op::Gather { .. } | Op::ScatterAdd { .. } | Op::Matmul | Op::Outer | Op::TriangularSolve { .. } => {
            (2, 2)
        }
        Op::Where => (3, 3),
        Op::Concatenate { .. } | Op::Stack { .. } => (1, usize::MAX),
        Op::Fused(k) => (k.arity(), u16::MAX as usize),
    };
    if n < lo || n > hi {
        let want = if lo == hi { lo.to_string() } else { format!("at least {lo}") };
        return Err(format!("takes {want} operand(s), got {n}"));
    }
    Ok(())
}

/// NumPy broadcast of two shapes, with an error naming both.
pub fn broadcast2(a: &Shape, b: &Shape) -> std::result::Result<Shape, String> {
    a.broadcast(b).ok_or_else(|| {
        format!("operand shapes {a} and {b} do not broadcast (trailing extents must be equal or 1)")
    })
}

fn numeric(x: &TensorType) -> std::result::Result<(), String> {
    if x.dtype.is_numeric() { Ok(()) } else { Err(format!("operand has type {x}, expected f64 or i64")) }
}

fn index_dtype(idx: &TensorType) -> std::result::Result<(), String> {
    if idx.dtype == DType::I64 { Ok(()) } else { Err(format!("index has type {idx}, expected i64")) }
}

fn same_float(a: &TensorType, b: &TensorType) -> std::result::Result<(), String> {
    if a.dtype == DType::F64 && b.dtype == DType::F64 {
        Ok(())
    } else {
        Err(format!("operands have types {a} and {b}, expected f64"))
    }
}

fn square_float(m: &TensorType) -> std::result::Result<(), String> {
    let d = m.shape.dims();
    if m.dtype != DType::F64 || d.len() != 2 || d[0] != d[1] {
        return Err(format!("operand has type {m}, expected a square f64 matrix"));
    }
    Ok(())
}

fn check_axis(axis: usize, rank: usize) -> std::result::Result<(), String> {
    if axis < rank { Ok(()) } else { Err(format!("axis {axis} is out of range for rank {rank}")) }
}

/// Axes must be in range, sorted and distinct (the canonical form, so equal ops compare equal).
fn check_axes(axes: &[usize], rank: usize) -> std::result::Result<(), String> {
    if let Some(&a) = axes.iter().find(|&&a| a >= rank) {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("axes {axes:?} must be sorted and distinct"));
    }
    Ok(())
}

/// The shape without the listed axes.
pub fn drop_axes(shape: &Shape, axes: &[usize]) -> Shape {
    Shape(shape.dims().iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect())
}

fn infer_reduce(kind: ReduceOp, axes: &[usize], keepdims: bool, x: &TensorType) -> std::result::Result<TensorType, String> {
    check_axes(axes, x.shape.rank())?;
    if kind.needs_float() && x.dtype != DType::F64 {
        return Err(format!("operand has type {x}, expected f64"));
    }
    numeric(x)?;
    if kind.needs_nonempty() && axes.iter().any(|&a| x.shape.dims()[a] == 0) {
        return Err(format!("cannot reduce the empty axes of {x}: no identity"));
    }
    let shape = if keepdims {
        Shape(x.shape.dims().iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect())
    } else {
        drop_axes(&x.shape, axes)
    };
    Ok(TensorType { dtype: x.dtype, shape })
}

fn infer_concatenate(axis: usize, args: &[&TensorType]) -> std::result::Result<TensorType, String> {
    let first = args[0];
    check_axis(axis, first.shape.rank())?;
    let mut total = 0;
    for t in args {
        let compatible = t.dtype == first.dtype
            && t.shape.rank() == first.shape.rank()
            && t.shape.dims().iter().zip(first.shape.dims()).enumerate().all(|(i, (a, b))| i == axis || a == b);
        if !compatible {
            return Err(format!("operands {first} and {t} differ in dtype or in an extent other than axis {axis}"));
        }
        total += t.shape.dims()[axis];
    }
    let mut dims = first.shape.0.clone();
    dims[axis] = total;
    Ok(TensorType { dtype: first.dtype, shape: Shape(dims) })
}

fn infer_matmul(a: &TensorType, b: &TensorType) -> std::result::Result<TensorType, String> {
    if a.dtype != b.dtype || !a.dtype.is_numeric() {
        return Err(format!("operands have types {a} and {b}, expected equal numeric dtypes"));
    }
    let (ad, bd) = (a.shape.dims(), b.shape.dims());
    let (inner_a, inner_b, dims): (usize, usize, SmallVec<[usize; 4]>) = match (ad.len(), bd.len()) {
        (1, 1) => (ad[0], bd[0], SmallVec::new()),
        (2, 1) => (ad[1], bd[0], SmallVec::from_slice(&[ad[0]])),
        (1, 2) => (ad[0], bd[0], SmallVec::from_slice(&[bd[1]])),
        (2, 2) => (ad[1], bd[0], SmallVec::from_slice(&[ad[0], bd[1]])),
        _ => return Err(format!("operands must be vectors or matrices, got {a} and {b}")),
    };
    if inner_a != inner_b {
        return Err(format!("inner dimensions differ: {a} and {b} ({inner_a} vs {inner_b})"));
    }
    Ok(TensorType { dtype: a.dtype, shape: Shape(dims) })
}

/// A fused kernel: each instruction typed by the plain ops' rules; the result is the body's
/// dtype over the iteration shape (the operands' broadcast), reduced when the kernel reduces.
fn infer_fused(k: &crate::FusedKernel, args: &[&TensorType]) -> Result<TensorType> {
    let dtypes = k.dtypes(args)?;
    let shape = crate::FusedKernel::iteration_shape(args)?;
    let dtype = *dtypes.last().ok_or_else(|| GraphError::op("fused", "the kernel body is empty"))?;
    let elementwise = TensorType { dtype, shape };
    match &k.reduce {
        None => Ok(elementwise),
        Some(r) => infer_reduce(r.kind, &r.axes, r.keepdims, &elementwise).map_err(|m| GraphError::op("fused", m)),
    }
}
