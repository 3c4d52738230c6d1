//! The VJP rule of every structural op (one exhaustive `match` over [`Op`], so a new op does
//! not compile until it has a rule or an explicit "no rule" error). Elementwise ops' rules live
//! next to their tables in [`crate::elementwise`].
//!
//! A rule receives the node, its (lazy) cotangent `g` and which operands want a gradient,
//! and returns one contribution per operand: for elementwise ops in the result's broadcast
//! shape (the driver sums broadcast axes away), for every other op something that broadcasts
//! to the operand's shape.
//!
//! Documented choices:
//! - `reduce_max` / `reduce_min`: the cotangent is split equally among tied extremal positions
//!   (a convex combination of one-hot subgradients, hence a valid subgradient).
//! - `reduce_prod`: ∂/∂xᵢ is computed as prod/xᵢ, which is NaN (0/0) where xᵢ = 0.
//! - `cholesky`: the operand is read through its lower triangle only (as LAPACK does), so the
//!   gradient is lower triangular: tril(S + Sᵀ) with the diagonal halved, where
//!   S = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ and Φ keeps the lower triangle with the diagonal halved
//!   (Murray 2016; PyTensor's `CholeskyGrad`).
//! - `triangular_solve`: only the triangle of A that is read receives a gradient.
//! - `fused`: no rule (a `NoRule` error): fusion runs after differentiation in the pipeline.

use smallvec::{SmallVec, smallvec};

use super::GradError;
use super::emit::{Built, Emit};
use crate::{Axes, DType, Node, NodeId, Op, ReduceOp, Shape, SliceRange};

/// One contribution per operand (`None`: no gradient flows to that operand).
pub(crate) type Contributions = SmallVec<[Option<NodeId>; 3]>;

/// Whether operand `k` of `op` can carry a gradient (when it is f64). Index operands,
/// conditions and piecewise-constant ops (floor, ceil, sign) cut the flow: their
/// contribution is exactly zero almost everywhere, so no node is built for them.
pub(crate) fn carries_gradient(op: &Op, k: usize) -> bool {
    match op {
        Op::Unary(u) => !u.derivative_is_zero(),
        Op::Gather { .. } | Op::ScatterAdd { .. } => k == 0,
        Op::Where => k != 0,
        _ => true,
    }
}

/// The contributions of node `y` (with cotangent `g`) to its operands' cotangents.
pub(crate) fn vjp(
    e: &mut Emit<'_>,
    y: NodeId,
    node: &Node,
    g: NodeId,
    want: &[bool],
) -> Result<Contributions, GradError> {
    let x = |k: usize| node.operands[k];
    let out = node.ty.shape.clone();
    let only = |c: NodeId| -> Contributions { smallvec![Some(c)] };
    Ok(match &node.op {
        Op::Input { .. } | Op::Const(_) => SmallVec::new(),
        Op::Unary(u) => smallvec![u.vjp(e, x(0), y, g)?],
        Op::Binary(b) => {
            let [ga, gb] = b.vjp(e, x(0), x(1), y, g, [want[0], want[1]])?;
            smallvec![ga, gb]
        }
        Op::Where => {
            let zero = e.scalar(0.0);
            let ga = if want[1] { Some(e.select(x(0), g, zero)?) } else { None };
            let gb = if want[2] { Some(e.select(x(0), zero, g)?) } else { None };
            smallvec![None, ga, gb]
        }
        Op::Cast { to } => {
            // Only f64 → f64 carries a gradient (an integer or bool result is never active).
            if *to != DType::F64 {
                return Err(GradError::Internal("gradient requested through a cast to a non-float dtype".into()));
            }
            only(g)
        }
        Op::Reduce { kind, axes, keepdims } => only(reduce_vjp(e, *kind, axes, *keepdims, x(0), y, g)?),
        Op::Cumsum { axis, reverse } => {
            let full = e.materialize(g, &out)?;
            only(e.op(Op::Cumsum { axis: *axis, reverse: !*reverse }, &[full])?)
        }
        Op::Reshape { .. } | Op::Squeeze { .. } => {
            let xs = e.shape(x(0));
            only(reshape_back(e, g, &out, &xs)?)
        }
        Op::ExpandDims { axis } => {
            // When the new axis lies in the cotangent's implicit leading padding, dropping it
            // changes nothing; otherwise reshape back.
            let gr = e.shape(g).rank();
            if *axis < out.rank() - gr {
                only(g)
            } else {
                let xs = e.shape(x(0));
                only(reshape_back(e, g, &out, &xs)?)
            }
        }
        Op::Transpose { perm } => {
            if e.is_scalar(g) {
                only(g)
            } else {
                let mut inverse: Axes = smallvec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inverse[p] = i;
                }
                let full = e.materialize(g, &out)?;
                only(e.op(Op::Transpose { perm: inverse }, &[full])?)
            }
        }
        Op::BroadcastTo { shape } => {
            let xs = e.shape(x(0));
            only(e.sum_to(g, &xs, shape)?)
        }
        Op::Concatenate { axis } => concatenate_vjp(e, node, *axis, g, want)?,
        Op::Stack { axis } => stack_vjp(e, node, *axis, g, want)?,
        Op::Slice { ranges } => {
            let xs = e.shape(x(0));
            only(slice_vjp(e, ranges, &xs, &out, g)?)
        }
        Op::Gather { axis } => {
            let size = e.shape(x(0)).dims()[*axis];
            let full = e.materialize(g, &out)?;
            smallvec![Some(e.op(Op::ScatterAdd { axis: *axis, size }, &[full, x(1)])?), None]
        }
        Op::ScatterAdd { axis, .. } => {
            let full = e.materialize(g, &out)?;
            smallvec![Some(e.op(Op::Gather { axis: *axis }, &[full, x(1)])?), None]
        }
        Op::Matmul => matmul_vjp(e, x(0), x(1), &out, g, want)?,
        Op::Outer => {
            let full = e.materialize(g, &out)?;
            let ga = if want[0] { Some(e.op(Op::Matmul, &[full, x(1)])?) } else { None };
            let gb = if want[1] { Some(e.op(Op::Matmul, &[x(0), full])?) } else { None };
            smallvec![ga, gb]
        }
        Op::Cholesky => only(cholesky_vjp(e, y, &out, g)?),
        Op::TriangularSolve { lower } => triangular_solve_vjp(e, *lower, x(0), y, &out, g, want)?,
        Op::LogDetChol => {
            // ∂/∂L = diag(2 / Lᵢᵢ): only the diagonal is read.
            let two_g = e.scale(g, 2.0)?;
            let d = e.op(Op::Diag, &[x(0)])?;
            let v = e.div(two_g, d)?;
            only(e.op(Op::DiagMatrix, &[v])?)
        }
        Op::Diag => {
            let full = e.materialize(g, &out)?;
            only(e.op(Op::DiagMatrix, &[full])?)
        }
        Op::DiagMatrix => {
            // A scalar cotangent stands for a constant matrix, whose diagonal is that scalar.
            if e.is_scalar(g) {
                only(g)
            } else {
                let full = e.materialize(g, &out)?;
                only(e.op(Op::Diag, &[full])?)
            }
        }
        // Gradients are taken before fusion in the rewrite pipeline, so a fused node never
        // needs one; differentiate the unfused graph instead.
        Op::Fused(_) => {
            return Err(GradError::NoRule {
                op: "fused".to_string(),
                reason: "fused kernels are built after differentiation; take the gradient of the unfused graph"
                    .to_string(),
            });
        }
    })
}

/// The cotangent of a reshape-like op (same elements, new shape) taken back to `xs`.
fn reshape_back(e: &mut Emit<'_>, g: NodeId, out: &Shape, xs: &Shape) -> Built {
    if e.is_scalar(g) {
        return Ok(g);
    }
    let full = e.materialize(g, out)?;
    e.reshape(full, xs)
}

/// Reductions: the cotangent comes back over the reduced axes, weighted by ∂y/∂x.
fn reduce_vjp(
    e: &mut Emit<'_>,
    kind: ReduceOp,
    axes: &[usize],
    keepdims: bool,
    x: NodeId,
    y: NodeId,
    g: NodeId,
) -> Built {
    let xs = e.shape(x);
    let gb = e.unreduce(g, &xs, axes, keepdims)?;
    match kind {
        ReduceOp::Sum => Ok(gb),
        ReduceOp::Mean => {
            let n: usize = axes.iter().map(|&a| xs.dims()[a]).product();
            e.scale(gb, 1.0 / n as f64)
        }
        ReduceOp::Prod => {
            let yb = e.unreduce(y, &xs, axes, keepdims)?;
            let num = e.mul(gb, yb)?;
            e.div(num, x)
        }
        ReduceOp::LogSumExp => {
            let yb = e.unreduce(y, &xs, axes, keepdims)?;
            let centered = e.sub(x, yb)?;
            let softmax = e.unary(crate::UnaryOp::Exp, centered)?;
            e.mul(gb, softmax)
        }
        ReduceOp::Max | ReduceOp::Min => {
            let yb = e.unreduce(y, &xs, axes, keepdims)?;
            let hit = e.binary(crate::BinaryOp::Eq, x, yb)?;
            let mask = e.op(Op::Cast { to: DType::F64 }, &[hit])?;
            let ties = e.reduce_sum(mask, axes, true)?;
            let share = e.div(gb, ties)?;
            e.mul(mask, share)
        }
    }
}

/// Concatenate: each operand gets its slab of the cotangent.
fn concatenate_vjp(
    e: &mut Emit<'_>,
    node: &Node,
    axis: usize,
    g: NodeId,
    want: &[bool],
) -> Result<Contributions, GradError> {
    if node.operands.len() == 1 || e.is_scalar(g) {
        return Ok(want.iter().map(|&w| w.then_some(g)).collect());
    }
    let out = node.ty.shape.clone();
    let full = e.materialize(g, &out)?;
    let mut offset = 0;
    let mut result = Contributions::new();
    for (k, &o) in node.operands.iter().enumerate() {
        let len = e.shape(o).dims()[axis];
        result.push(if want[k] { Some(slab(e, full, &out, axis, offset, len)?) } else { None });
        offset += len;
    }
    Ok(result)
}

/// Stack: each operand gets its slice of the cotangent along the new axis.
fn stack_vjp(e: &mut Emit<'_>, node: &Node, axis: usize, g: NodeId, want: &[bool]) -> Result<Contributions, GradError> {
    if e.is_scalar(g) {
        return Ok(want.iter().map(|&w| w.then_some(g)).collect());
    }
    let out = node.ty.shape.clone();
    let full = e.materialize(g, &out)?;
    let mut result = Contributions::new();
    for (k, &wanted) in want.iter().enumerate() {
        result.push(if wanted {
            let one = slab(e, full, &out, axis, k, 1)?;
            Some(e.op(Op::Squeeze { axes: smallvec![axis] }, &[one])?)
        } else {
            None
        });
    }
    Ok(result)
}

/// `x[..., offset:offset+len, ...]` on `axis`.
fn slab(e: &mut Emit<'_>, x: NodeId, shape: &Shape, axis: usize, offset: usize, len: usize) -> Built {
    let ranges = shape
        .dims()
        .iter()
        .enumerate()
        .map(|(a, &d)| if a == axis { SliceRange::contiguous(offset, len) } else { SliceRange::full(d) })
        .collect();
    e.op(Op::Slice { ranges }, &[x])
}

/// Slice: the cotangent is placed back at the taken positions, zeros elsewhere, one
/// `scatter_add` with a constant index per sliced axis (distinct indices, so adding is
/// placing; negative and non-unit steps are just other index lists).
fn slice_vjp(e: &mut Emit<'_>, ranges: &[SliceRange], xs: &Shape, out: &Shape, g: NodeId) -> Built {
    let identity = ranges.iter().zip(xs.dims()).all(|(r, &d)| r.is_full(d));
    if identity {
        return Ok(g);
    }
    let mut acc = e.materialize(g, out)?;
    for (axis, (r, &dim)) in ranges.iter().zip(xs.dims()).enumerate() {
        if r.is_full(dim) {
            continue;
        }
        let idx = e.indices((0..r.len).map(|k| r.index(k) as i64).collect())?;
        acc = e.op(Op::ScatterAdd { axis, size: dim }, &[acc, idx])?;
    }
    Ok(acc)
}

/// Matrix products in their four forms.
fn matmul_vjp(
    e: &mut Emit<'_>,
    a: NodeId,
    b: NodeId,
    out: &Shape,
    g: NodeId,
    want: &[bool],
) -> Result<Contributions, GradError> {
    let (ra, rb) = (e.shape(a).rank(), e.shape(b).rank());
    let g = e.materialize(g, out)?;
    let (ga, gb) = match (ra, rb) {
        // a·b scalar: ∂/∂a = g b, ∂/∂b = g a
        (1, 1) => (lazy(want[0], || e.mul(g, b))?, lazy(want[1], || e.mul(g, a))?),
        // A v: Ā = g ⊗ v, v̄ = gᵀ A
        (2, 1) => (lazy(want[0], || e.op(Op::Outer, &[g, b]))?, lazy(want[1], || e.op(Op::Matmul, &[g, a]))?),
        // vᵀ M: v̄ = M g, M̄ = v ⊗ g
        (1, 2) => (lazy(want[0], || e.op(Op::Matmul, &[b, g]))?, lazy(want[1], || e.op(Op::Outer, &[a, g]))?),
        // A B: Ā = G Bᵀ, B̄ = Aᵀ G
        _ => {
            let ga = if want[0] {
                let bt = e.transpose2(b)?;
                Some(e.op(Op::Matmul, &[g, bt])?)
            } else {
                None
            };
            let gb = if want[1] {
                let at = e.transpose2(a)?;
                Some(e.op(Op::Matmul, &[at, g])?)
            } else {
                None
            };
            (ga, gb)
        }
    };
    Ok(smallvec![ga, gb])
}

/// Builds a contribution only when it is wanted.
fn lazy(wanted: bool, build: impl FnOnce() -> Built) -> Result<Option<NodeId>, GradError> {
    if wanted { build().map(Some) } else { Ok(None) }
}

/// Cholesky (Murray 2016, as PyTensor's `CholeskyGrad`), with L = y lower triangular:
/// P = Φ(Lᵀ L̄), Sᵀ = L⁻ᵀ (L⁻ᵀ P)ᵀ, Ā = Φ(S + Sᵀ). Only the lower triangle of L̄ enters
/// (Lᵀ L̄ restricted to the lower triangle reads only it), so no mask on L̄ is needed.
fn cholesky_vjp(e: &mut Emit<'_>, l: NodeId, out: &Shape, g: NodeId) -> Built {
    let n = out.dims()[0];
    let g = e.materialize(g, out)?;
    let half = e.triangle_mask(n, 1.0, 0.5, 0.0)?;
    let lt = e.transpose2(l)?;
    let ltg = e.op(Op::Matmul, &[lt, g])?;
    let p = e.mul(ltg, half)?;
    let upper_solve = Op::TriangularSolve { lower: false };
    let x = e.op(upper_solve.clone(), &[lt, p])?;
    let xt = e.transpose2(x)?;
    let st = e.op(upper_solve, &[lt, xt])?;
    let s = e.transpose2(st)?;
    let sym = e.add(s, st)?;
    e.mul(sym, half)
}

/// Triangular solve x = A⁻¹ b: b̄ = A⁻ᵀ ḡ, Ā = −b̄ xᵀ restricted to the triangle of A that
/// is read.
fn triangular_solve_vjp(
    e: &mut Emit<'_>,
    lower: bool,
    a: NodeId,
    x: NodeId,
    out: &Shape,
    g: NodeId,
    want: &[bool],
) -> Result<Contributions, GradError> {
    let g = e.materialize(g, out)?;
    let at = e.transpose2(a)?;
    let gb = e.op(Op::TriangularSolve { lower: !lower }, &[at, g])?;
    let ga = if want[0] {
        let n = e.shape(a).dims()[0];
        let product = if out.rank() == 1 {
            e.op(Op::Outer, &[gb, x])?
        } else {
            let xt = e.transpose2(x)?;
            e.op(Op::Matmul, &[gb, xt])?
        };
        let mask = if lower { e.triangle_mask(n, 1.0, 1.0, 0.0)? } else { e.triangle_mask(n, 0.0, 1.0, 1.0)? };
        let masked = e.mul(product, mask)?;
        Some(e.neg(masked)?)
    } else {
        None
    };
    Ok(smallvec![ga, want[1].then_some(gb)])
}
