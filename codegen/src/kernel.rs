//! The lowered program: a straight list of steps (loop-nest kernels and runtime calls) over
//! strided views of the inputs, outputs, constants and one planned workspace buffer.
//!
//! This is the contract between the planner (`plan.rs`, graph → program) and the emitter
//! (`emit/`, program → Cranelift IR). A kernel is one loop nest over an iteration domain; its
//! per-element work is a scalar [`Expr`] over its leaves, and every memory access is a base
//! pointer plus an offset plus one stride per domain axis, so broadcasting, transposes,
//! slices and diagonals are all just strides.

use smallvec::SmallVec;
use tessera_graph::{ConstData, DType, ReduceOp, TensorType};

use crate::expr::{Expr, Scalar};

/// Per-axis element strides (may be zero for broadcasting or negative for reversed slices).
pub type Strides = SmallVec<[i64; 4]>;

/// Where a buffer lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    /// The `k`-th input slice of the call.
    Input(usize),
    /// The `k`-th output slice of the call.
    Output(usize),
    /// The `k`-th constant owned by the compiled function.
    Const(usize),
    /// The workspace, at this byte offset.
    Workspace(usize),
}

/// A strided view: element `(i₀, …)` lives at `base + (offset + Σ iₖ·strides[k]) · size`.
#[derive(Clone, Debug, PartialEq)]
pub struct Strided {
    /// The buffer.
    pub base: Base,
    /// Offset of element `(0, …, 0)`, in elements.
    pub offset: i64,
    /// One stride per axis of the domain the view is read over, in elements.
    pub strides: Strides,
    /// Element type.
    pub dtype: DType,
}

/// A dynamically indexed axis: the address also adds `index[i] · axis_stride`.
#[derive(Clone, Debug, PartialEq)]
pub struct Indexed {
    /// The static part of the address (stride 0 on the index axes).
    pub data: Strided,
    /// The i64 indices, strided over the domain.
    pub index: Strided,
    /// The stride of the indexed axis, in elements.
    pub axis_stride: i64,
    /// The extent of the indexed axis (indices must lie in `0..axis_len`).
    pub axis_len: usize,
    /// The error code returned when an index is out of range; `None` when every index is
    /// known at compile time to be in range.
    pub check: Option<u32>,
    /// Scatter outputs only: further zeroed buffers laid out like `data`. The emitter may
    /// spread the updates over `data` and these, so that a run of equal indices is not one
    /// chain of read-modify-writes through memory; a later step adds them into `data`.
    pub spread: SmallVec<[Base; 4]>,
}

/// An input of a kernel's expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Leaf {
    /// A strided read.
    Direct(Strided),
    /// A gathered read (`take`).
    Gather(Indexed),
}

/// Where a kernel's results go.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A strided write (or read-modify-write for reductions).
    Direct(Strided),
    /// A scattered accumulation: `out[index] += value`.
    Scatter(Indexed),
}

/// How reduction values are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// a + b
    Sum,
    /// a · b
    Prod,
    /// max, NaN-propagating
    Max,
    /// min, NaN-propagating
    Min,
}

impl Combine {
    /// The combine of a plain reduction kind (`None` for mean and logsumexp, which are
    /// composed of several kernels).
    pub fn of(kind: ReduceOp) -> Option<Combine> {
        match kind {
            ReduceOp::Sum => Some(Combine::Sum),
            ReduceOp::Prod => Some(Combine::Prod),
            ReduceOp::Max => Some(Combine::Max),
            ReduceOp::Min => Some(Combine::Min),
            ReduceOp::Mean | ReduceOp::LogSumExp => None,
        }
    }

    /// The identity element: what an empty reduction yields and where an accumulator starts.
    pub fn identity(self, dtype: DType) -> Scalar {
        match (self, dtype) {
            (Combine::Sum, DType::I64) => Scalar::I64(0),
            (Combine::Prod, DType::I64) => Scalar::I64(1),
            (Combine::Max, DType::I64) => Scalar::I64(i64::MIN),
            (Combine::Min, DType::I64) => Scalar::I64(i64::MAX),
            (Combine::Sum, _) => Scalar::F64(0.0),
            (Combine::Prod, _) => Scalar::F64(1.0),
            (Combine::Max, _) => Scalar::F64(f64::NEG_INFINITY),
            (Combine::Min, _) => Scalar::F64(f64::INFINITY),
        }
    }
}

/// What a kernel does with the expression's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// One value per domain element, stored (or, for a scatter output, accumulated).
    Map,
    /// Values combined over the `reduced` domain axes; the output has stride 0 on them.
    /// `finish` (if any) maps the combined value (its leaf 0) to the stored one.
    Reduce {
        /// The combining operation.
        combine: Combine,
        /// Which domain axes are reduced.
        reduced: SmallVec<[bool; 4]>,
        /// Applied to each combined value before it is stored.
        finish: Option<Expr>,
    },
    /// Inclusive prefix sum along the last domain axis.
    Scan,
}

/// One result of a kernel: the value of expression node `root`, stored or reduced.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelOut {
    /// The expression node whose value this output receives.
    pub root: usize,
    /// Destination.
    pub out: Output,
    /// Map, reduce or scan.
    pub mode: Mode,
}

/// One loop nest: for every element of `domain`, evaluate `expr` over `leaves` once and feed
/// each output. Several outputs share the loads and the arithmetic (horizontal fusion); the
/// planner only groups maps over the whole domain with reductions that reduce every axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Iteration domain extents.
    pub domain: SmallVec<[usize; 4]>,
    /// The expression's inputs.
    pub leaves: Vec<Leaf>,
    /// The per-element computation (a DAG; each output names its root).
    pub expr: Expr,
    /// The results.
    pub outs: Vec<KernelOut>,
    /// Graph nodes this kernel computes (for statistics and debugging).
    pub label: String,
}

impl Kernel {
    /// A kernel with one output, the value of `expr`'s root.
    pub fn single(domain: SmallVec<[usize; 4]>, leaves: Vec<Leaf>, expr: Expr, out: Output, mode: Mode, label: String) -> Kernel {
        let root = expr.root;
        Kernel { domain, leaves, expr, outs: vec![KernelOut { root, out, mode }], label }
    }

    /// Every strided access of the kernel (leaves, index arrays and the outputs).
    pub fn strided_mut(&mut self) -> Vec<&mut Strided> {
        let mut all = Vec::new();
        for leaf in &mut self.leaves {
            match leaf {
                Leaf::Direct(s) => all.push(s),
                Leaf::Gather(ix) => {
                    all.push(&mut ix.data);
                    all.push(&mut ix.index);
                }
            }
        }
        for o in &mut self.outs {
            match &mut o.out {
                Output::Direct(s) => all.push(s),
                Output::Scatter(ix) => {
                    all.push(&mut ix.data);
                    all.push(&mut ix.index);
                }
            }
        }
        all
    }

    /// The reduced-axis masks of the reduction outputs.
    pub fn reduced_mut(&mut self) -> Vec<&mut SmallVec<[bool; 4]>> {
        self.outs
            .iter_mut()
            .filter_map(|o| match &mut o.mode {
                Mode::Reduce { reduced, .. } => Some(reduced),
                _ => None,
            })
            .collect()
    }

    /// Reorders the domain axes: new axis `i` is old axis `perm[i]`.
    pub fn permute_domain(&mut self, perm: &[usize]) {
        self.domain = perm.iter().map(|&p| self.domain[p]).collect();
        for reduced in self.reduced_mut() {
            *reduced = perm.iter().map(|&p| reduced[p]).collect();
        }
        for s in self.strided_mut() {
            s.strides = perm.iter().map(|&p| s.strides[p]).collect();
        }
    }

    /// Walks domain axis `axis` backwards (for reverse cumsum).
    pub fn flip_axis(&mut self, axis: usize) {
        let n = self.domain[axis] as i64;
        for s in self.strided_mut() {
            if n > 0 {
                s.offset += (n - 1) * s.strides[axis];
            }
            s.strides[axis] = -s.strides[axis];
        }
    }
}

/// A call of a registered Rust kernel (dense linear algebra).
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// Lower Cholesky factor of the `n×n` matrix `a` into `out` (NaN-filled if not SPD).
    Cholesky {
        /// Matrix size.
        n: usize,
        /// The matrix (two strides).
        a: Strided,
        /// The factor (two strides).
        out: Strided,
    },
    /// Solves `a · x = b` for triangular `a` (`n×n`), `b` with `m` columns.
    TriangularSolve {
        /// Lower (else upper) triangular.
        lower: bool,
        /// Rows.
        n: usize,
        /// Right-hand-side columns.
        m: usize,
        /// The triangular matrix (two strides).
        a: Strided,
        /// The right-hand side (two strides; column stride 0 for a vector).
        b: Strided,
        /// The solution (two strides).
        out: Strided,
    },
    /// `out = a · b` with `a` `m×k`, `b` `k×n` (general strides), by `matrixmultiply::dgemm`.
    Dgemm {
        /// Rows of `a`.
        m: usize,
        /// Inner dimension.
        k: usize,
        /// Columns of `b`.
        n: usize,
        /// Left factor.
        a: Strided,
        /// Right factor.
        b: Strided,
        /// Product.
        out: Strided,
    },
}

/// A step of the program.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A loop nest.
    Kernel(Kernel),
    /// A call to a registered Rust kernel.
    Call(Call),
}

/// A whole lowered graph.
#[derive(Clone, Debug)]
pub struct Program {
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Bytes of workspace needed.
    pub workspace_bytes: usize,
    /// Constants addressed by [`Base::Const`].
    pub consts: Vec<ConstData>,
    /// Input names and types, in signature order.
    pub inputs: Vec<(String, TensorType)>,
    /// Output types, in return order.
    pub outputs: Vec<TensorType>,
    /// Descriptions of the run-time checks; code `k` (1-based) is `checks[k - 1]`.
    pub checks: Vec<String>,
}

/// Bytes per element of a dtype in buffers (bool is one byte, 0 or 1).
pub fn elem_size(dtype: DType) -> usize {
    match dtype {
        DType::F64 | DType::I64 => 8,
        DType::Bool => 1,
    }
}
