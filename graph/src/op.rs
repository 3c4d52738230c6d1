//! The op set of the IR. Elementwise ops are rows of the tables in [`crate::elementwise`];
//! structural ops are variants here, so every stage's exhaustive `match` names each of them.

use smallvec::SmallVec;
use std::sync::Arc;

use crate::{BinaryOp, Constant, DType, Shape, TensorType, UnaryOp};

/// A small list of axes (reductions, permutations, squeezes).
pub type Axes = SmallVec<[usize; 4]>;

/// The reduction applied by [`Op::Reduce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    /// Σ
    Sum,
    /// Π
    Prod,
    /// maximum (NaN propagates)
    Max,
    /// minimum (NaN propagates)
    Min,
    /// arithmetic mean
    Mean,
    /// ln Σ exp, computed stably
    LogSumExp,
}

impl ReduceOp {
    /// Every reduction.
    pub const ALL: &'static [ReduceOp] =
        &[ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean, ReduceOp::LogSumExp];

    /// The op name in the text form (`reduce_sum`, …).
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Prod => "reduce_prod",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
            ReduceOp::Mean => "reduce_mean",
            ReduceOp::LogSumExp => "reduce_logsumexp",
        }
    }

    /// The reduction with this text-form name.
    pub fn from_name(name: &str) -> Option<ReduceOp> {
        ReduceOp::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// Whether the reduction needs f64 input (mean and logsumexp do; the others take i64 too).
    pub fn needs_float(self) -> bool {
        matches!(self, ReduceOp::Mean | ReduceOp::LogSumExp)
    }

    /// Whether an empty reduction has no value (max, min, logsumexp of nothing is an error
    /// for max/min; sum/prod/mean/logsumexp have identities 0, 1, NaN, −inf).
    pub fn needs_nonempty(self) -> bool {
        matches!(self, ReduceOp::Max | ReduceOp::Min)
    }
}

/// A normalized static slice of one axis: `len` elements starting at `start`, `step` apart
/// (`step` may be negative, never zero). Canonical, so equal slices are equal ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SliceRange {
    /// Index of the first element taken.
    pub start: usize,
    /// Distance between taken elements; negative walks backwards.
    pub step: i64,
    /// Number of elements taken.
    pub len: usize,
}

impl SliceRange {
    /// The whole axis of extent `dim`, forwards.
    pub fn full(dim: usize) -> SliceRange {
        SliceRange { start: 0, step: 1, len: dim }
    }

    /// `len` consecutive elements from `start`, forwards; an empty range is canonical
    /// (`start = 0`) whatever `start` is, as the shape rule requires.
    pub fn contiguous(start: usize, len: usize) -> SliceRange {
        SliceRange { start: if len == 0 { 0 } else { start }, step: 1, len }
    }

    /// Normalizes Python-style `start:stop:step` on an axis of extent `dim`. Negative start
    /// and stop count from the end, as in NumPy. Unlike NumPy, bounds outside the axis are
    /// an error (a static slice that silently clamps usually hides a model bug).
    pub fn from_python(
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        dim: usize,
    ) -> Result<SliceRange, String> {
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err("slice step must not be 0".into());
        }
        if step == i64::MIN || dim > i64::MAX as usize {
            return Err(format!("slice step {step} is out of range"));
        }
        let n = dim as i64;
        let resolve = |i: i64, what: &str, allow_end: bool| -> Result<i64, String> {
            let j = if i < 0 { i + n } else { i };
            let hi = if allow_end { n } else { n - 1 };
            if j < 0 || j > hi {
                Err(format!("slice {what} {i} is out of range for an axis of extent {dim}"))
            } else {
                Ok(j)
            }
        };
        let (start, stop) = if step > 0 {
            let start = match start {
                Some(s) => resolve(s, "start", true)?,
                None => 0,
            };
            let stop = match stop {
                Some(s) => resolve(s, "stop", true)?,
                None => n,
            };
            (start, stop.max(start))
        } else {
            let start = match start {
                Some(s) => resolve(s, "start", false)?,
                None => n - 1,
            };
            let stop = match stop {
                Some(s) => resolve(s, "stop", true)?,
                None => -1,
            };
            (start, stop.min(start))
        };
        let span = (stop - start).abs();
        let len = (span + step.abs() - 1) / step.abs();
        let start = if len == 0 { 0 } else { start };
        Ok(SliceRange { start: start as usize, step, len: len as usize })
    }

    /// Index (in the sliced axis) of the `k`-th element taken.
    pub fn index(&self, k: usize) -> usize {
        (self.start as i64 + self.step * k as i64) as usize
    }

    /// Whether this range takes the whole axis of extent `dim` in order.
    pub fn is_full(&self, dim: usize) -> bool {
        self.step == 1 && self.start == 0 && self.len == dim
    }

    /// The range in the text form's Python syntax (`start:stop:step`, stop omitted when the
    /// range runs to the end of the axis backwards).
    pub fn to_python(&self) -> String {
        if self.len == 0 {
            return format!("{0}:{0}:{1}", self.start, self.step);
        }
        let last = self.start as i64 + self.step * (self.len as i64 - 1);
        // Forwards: just past the last element, so the stop never overshoots the axis end.
        // Backwards: one step past it, omitted (runs to the start) when that is below 0.
        let stop = if self.step > 0 { last + 1 } else { last + self.step };
        if stop < 0 {
            format!("{}::{}", self.start, self.step)
        } else {
            format!("{}:{}:{}", self.start, stop, self.step)
        }
    }
}

/// An operation: what a node computes from its operands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A named function parameter.
    Input {
        /// The parameter name (without `%`).
        name: Arc<str>,
        /// Its declared type.
        ty: TensorType,
    },
    /// A constant tensor.
    Const(Constant),
    /// Elementwise op of one operand.
    Unary(UnaryOp),
    /// Elementwise op of two operands, NumPy broadcasting.
    Binary(BinaryOp),
    /// `where(cond, a, b)`: elementwise select, all three broadcast.
    Where,
    /// Elementwise conversion (f64→i64 truncates toward zero; to bool is `≠ 0`).
    Cast {
        /// Target dtype.
        to: DType,
    },
    /// Reduction over `axes` (sorted, distinct), dropping them unless `keepdims`.
    Reduce {
        /// Which reduction.
        kind: ReduceOp,
        /// Reduced axes, sorted ascending, no repeats.
        axes: Axes,
        /// Keep the reduced axes with extent 1.
        keepdims: bool,
    },
    /// Inclusive cumulative sum along `axis`; `reverse` sums from the end (its own adjoint).
    Cumsum {
        /// The axis.
        axis: usize,
        /// Sum from the last element backwards.
        reverse: bool,
    },
    /// Same elements in row-major order, new shape of the same size.
    Reshape {
        /// The new shape.
        shape: Shape,
    },
    /// Axis permutation: result axis `i` is operand axis `perm[i]`.
    Transpose {
        /// A permutation of `0..rank`.
        perm: Axes,
    },
    /// Inserts an axis of extent 1 at `axis` (`x[:, None]`).
    ExpandDims {
        /// Position of the new axis in the result.
        axis: usize,
    },
    /// Removes the listed axes, each of extent 1.
    Squeeze {
        /// Axes to remove, sorted ascending.
        axes: Axes,
    },
    /// NumPy `broadcast_to`.
    BroadcastTo {
        /// Target shape.
        shape: Shape,
    },
    /// Joins operands along an existing axis.
    Concatenate {
        /// The axis.
        axis: usize,
    },
    /// Joins operands of equal shape along a new axis.
    Stack {
        /// Position of the new axis in the result.
        axis: usize,
    },
    /// Static strided slicing, one range per axis.
    Slice {
        /// One normalized range per operand axis.
        ranges: SmallVec<[SliceRange; 4]>,
    },
    /// `take(a, idx, axis)`: operands `(a, idx: i64)`; result shape
    /// `a.shape[..axis] ++ idx.shape ++ a.shape[axis+1..]`.
    Gather {
        /// The axis of `a` that is indexed.
        axis: usize,
    },
    /// Adjoint of gather: operands `(updates, idx: i64)`; adds each update into a zero tensor
    /// whose `axis` has extent `size`; repeated indices accumulate.
    ScatterAdd {
        /// The axis of the result that is indexed.
        axis: usize,
        /// Extent of that axis in the result.
        size: usize,
    },
    /// Matrix product of vectors and matrices: v·v → scalar, M·v → vector, v·M → vector,
    /// M·M → matrix.
    Matmul,
    /// Outer product of two vectors.
    Outer,
    /// Lower Cholesky factor of a symmetric positive definite matrix (NaN-filled when the
    /// matrix is not positive definite, so a sampler sees a divergence, not a crash).
    Cholesky,
    /// Solves `A x = b` with `A` triangular (operands `(A, b)`, `b` a vector or matrix).
    TriangularSolve {
        /// Whether `A` is lower (else upper) triangular; the other triangle is ignored.
        lower: bool,
    },
    /// `log det(L Lᵀ) = 2 Σ ln Lᵢᵢ` from a Cholesky factor `L`.
    LogDetChol,
    /// The diagonal of a square matrix.
    Diag,
    /// A square matrix with the vector on its diagonal.
    DiagMatrix,
    /// A fused elementwise kernel (optionally followed by a reduction) over its operands,
    /// built by the rewrite pipeline's fusion pass (see [`crate::FusedKernel`]).
    Fused(Arc<crate::FusedKernel>),
}

impl Op {
    /// The op's name in the text form.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Const(_) => "const",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Where => "where",
            Op::Cast { .. } => "cast",
            Op::Reduce { kind, .. } => kind.name(),
            Op::Cumsum { .. } => "cumsum",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::ExpandDims { .. } => "expand_dims",
            Op::Squeeze { .. } => "squeeze",
            Op::BroadcastTo { .. } => "broadcast_to",
            Op::Concatenate { .. } => "concatenate",
            Op::Stack { .. } => "stack",
            Op::Slice { .. } => "slice",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Matmul => "matmul",
            Op::Outer => "outer",
            Op::Cholesky => "cholesky",
            Op::TriangularSolve { .. } => "triangular_solve",
            Op::LogDetChol => "logdet_chol",
            Op::Diag => "diag",
            Op::DiagMatrix => "diag_matrix",
            Op::Fused(_) => "fused",
        }
    }

    /// Whether the op is elementwise (unary, binary, where, cast).
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. })
    }

    /// The constant, if this is a constant op.
    pub fn as_const(&self) -> Option<&Constant> {
        match self {
            Op::Const(c) => Some(c),
            _ => None,
        }
    }
}
