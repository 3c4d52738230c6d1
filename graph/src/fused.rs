//! The fused elementwise kernel ([`Op::Fused`](crate::Op::Fused)): a small SSA scalar program
//! applied elementwise over the broadcast of its operands, optionally followed by a reduction.
//!
//! The rewrite pipeline's fusion pass builds these so that codegen can emit one loop for a
//! chain of elementwise ops (and the reduction they feed). Kernels are always kept in one
//! canonical form (see [`FusedKernel::new`]), so structurally equal programs hash-cons to one
//! node and the text form reads back to the same kernel.

use rustc_hash::FxHashMap;

use crate::infer::broadcast2;
use crate::{Axes, BinaryOp, Constant, DType, GraphError, ReduceOp, Shape, TensorType, UnaryOp};

/// A scalar literal inside a kernel (f64 stored by its bits, so hashing and equality are exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConstScalar {
    /// An f64, as `f64::to_bits`.
    F64(u64),
    /// An i64.
    I64(i64),
    /// A bool.
    Bool(bool),
}

impl ConstScalar {
    /// The literal's dtype.
    pub fn dtype(self) -> DType {
        match self {
            ConstScalar::F64(_) => DType::F64,
            ConstScalar::I64(_) => DType::I64,
            ConstScalar::Bool(_) => DType::Bool,
        }
    }

    /// The literal as a rank-0 constant.
    pub fn to_constant(self) -> Constant {
        match self {
            ConstScalar::F64(b) => Constant::f64(f64::from_bits(b)),
            ConstScalar::I64(v) => Constant::i64(v),
            ConstScalar::Bool(v) => Constant::bool(v),
        }
    }

    /// The literal of a rank-0 constant (`None` for other shapes).
    pub fn from_constant(c: &Constant) -> Option<ConstScalar> {
        if !c.shape().is_scalar() {
            return None;
        }
        Some(match c.data() {
            crate::ConstData::F64(v) => ConstScalar::F64(v[0].to_bits()),
            crate::ConstData::I64(v) => ConstScalar::I64(v[0]),
            crate::ConstData::Bool(v) => ConstScalar::Bool(v[0]),
        })
    }
}

/// One SSA instruction of a kernel; operands are indices of earlier instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarInstr {
    /// The element of operand `i` (broadcast to the iteration shape).
    Arg(u16),
    /// A scalar literal.
    Const(ConstScalar),
    /// An elementwise unary op.
    Unary(UnaryOp, u16),
    /// An elementwise binary op.
    Binary(BinaryOp, u16, u16),
    /// `where(cond, a, b)`.
    Where(u16, u16, u16),
    /// Conversion to a dtype.
    Cast(DType, u16),
}

impl ScalarInstr {
    /// The instructions this one reads.
    pub fn operands(&self) -> impl Iterator<Item = u16> {
        let (n, ops) = match *self {
            ScalarInstr::Arg(_) | ScalarInstr::Const(_) => (0, [0, 0, 0]),
            ScalarInstr::Unary(_, a) | ScalarInstr::Cast(_, a) => (1, [a, 0, 0]),
            ScalarInstr::Binary(_, a, b) => (2, [a, b, 0]),
            ScalarInstr::Where(c, a, b) => (3, [c, a, b]),
        };
        ops.into_iter().take(n)
    }

    /// A copy with every operand index mapped through `f`.
    pub fn map_operands(&self, mut f: impl FnMut(u16) -> u16) -> ScalarInstr {
        match *self {
            ScalarInstr::Arg(_) | ScalarInstr::Const(_) => *self,
            ScalarInstr::Unary(u, a) => ScalarInstr::Unary(u, f(a)),
            ScalarInstr::Cast(d, a) => ScalarInstr::Cast(d, f(a)),
            ScalarInstr::Binary(b, x, y) => ScalarInstr::Binary(b, f(x), f(y)),
            ScalarInstr::Where(c, x, y) => ScalarInstr::Where(f(c), f(x), f(y)),
        }
    }

    /// The instruction's name in the text form (`$` for operands, `const` for literals).
    pub fn name(&self) -> &'static str {
        match self {
            ScalarInstr::Arg(_) => "$",
            ScalarInstr::Const(_) => "const",
            ScalarInstr::Unary(u, _) => u.name(),
            ScalarInstr::Binary(b, _, _) => b.name(),
            ScalarInstr::Where(..) => "where",
            ScalarInstr::Cast(..) => "cast",
        }
    }
}

/// The reduction applied after the elementwise body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FusedReduce {
    /// Which reduction.
    pub kind: ReduceOp,
    /// Reduced axes of the iteration shape (sorted, distinct).
    pub axes: Axes,
    /// Keep the reduced axes with extent 1.
    pub keepdims: bool,
}

/// A scalar program over the broadcast of the operands, optionally reduced. The last
/// instruction is the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FusedKernel {
    /// The SSA body, in canonical order (see [`FusedKernel::new`]).
    pub body: Vec<ScalarInstr>,
    /// The reduction of the elementwise result, if any.
    pub reduce: Option<FusedReduce>,
}

impl FusedKernel {
    /// A kernel in canonical form: only the instructions the result depends on, structurally
    /// equal instructions merged, ordered as a depth-first post-order from the result
    /// (operands left to right). Two bodies computing the same expression DAG give the same
    /// kernel, and this is the order in which the text form is read back. Errors when an
    /// operand index does not refer to an earlier instruction or the body is empty.
    pub fn new(body: Vec<ScalarInstr>, reduce: Option<FusedReduce>) -> Result<FusedKernel, GraphError> {
        let err = |m: String| GraphError::op("fused", m);
        if body.is_empty() {
            return Err(err("the kernel body is empty".into()));
        }
        if body.len() > u16::MAX as usize {
            return Err(err(format!("the kernel body has {} instructions, at most {}", body.len(), u16::MAX)));
        }
        for (i, ins) in body.iter().enumerate() {
            if let Some(bad) = ins.operands().find(|&o| o as usize >= i) {
                return Err(err(format!("instruction {i} reads instruction {bad}, which does not precede it")));
            }
        }
        let mut out: Vec<ScalarInstr> = Vec::with_capacity(body.len());
        let mut interned: FxHashMap<ScalarInstr, u16> = FxHashMap::default();
        let mut new_index: Vec<Option<u16>> = vec![None; body.len()];
        // Iterative DFS (bodies of long chains would overflow a recursive walk).
        let mut stack: Vec<(usize, usize)> = vec![(body.len() - 1, 0)];
        while let Some((i, next)) = stack.pop() {
            if new_index[i].is_some() {
                continue;
            }
            let ops: Vec<u16> = body[i].operands().collect();
            if let Some(&child) = ops.get(next) {
                stack.push((i, next + 1));
                if new_index[child as usize].is_none() {
                    stack.push((child as usize, 0));
                }
                continue;
            }
            let mapped = body[i].map_operands(|o| new_index[o as usize].unwrap_or(0));
            let idx = *interned.entry(mapped).or_insert_with(|| {
                out.push(mapped);
                (out.len() - 1) as u16
            });
            new_index[i] = Some(idx);
        }
        Ok(FusedKernel { body: out, reduce })
    }

    /// The number of operands the body reads (one more than the largest `$i`).
    pub fn arity(&self) -> usize {
        self.body.iter().filter_map(|i| if let ScalarInstr::Arg(a) = i { Some(*a as usize + 1) } else { None }).max().unwrap_or(0)
    }

    /// The dtype of every instruction for operands of types `args`, checked with the same
    /// rules as the plain ops.
    pub fn dtypes(&self, args: &[&TensorType]) -> Result<Vec<DType>, GraphError> {
        let mut dtypes: Vec<DType> = Vec::with_capacity(self.body.len());
        for (i, ins) in self.body.iter().enumerate() {
            let d = instr_dtype(ins, &dtypes, &|a| args.get(a as usize).map(|t| t.dtype))
                .map_err(|m| GraphError::op("fused", format!("instruction {i} ({}): {m}", ins.name())))?;
            dtypes.push(d);
        }
        Ok(dtypes)
    }

    /// The iteration shape: the NumPy broadcast of all operand shapes.
    pub fn iteration_shape(args: &[&TensorType]) -> Result<Shape, GraphError> {
        let mut shape = Shape::scalar();
        for t in args {
            shape = broadcast2(&shape, &t.shape).map_err(|m| GraphError::op("fused", m))?;
        }
        Ok(shape)
    }
}

/// The dtype of one instruction given the dtypes of the earlier ones and of the operands
/// (`arg(i)`), or a message saying what was expected.
pub fn instr_dtype(ins: &ScalarInstr, dtypes: &[DType], arg: &dyn Fn(u16) -> Option<DType>) -> Result<DType, String> {
    let at = |i: u16| dtypes.get(i as usize).copied().ok_or_else(|| format!("reads instruction {i}, which does not precede it"));
    match *ins {
        ScalarInstr::Arg(a) => arg(a).ok_or_else(|| format!("operand ${a} does not exist")),
        ScalarInstr::Const(c) => Ok(c.dtype()),
        ScalarInstr::Unary(u, x) => {
            let d = at(x)?;
            u.dtype_rule().result(d).map_err(|want| format!("operand has dtype {d}, expected {want}"))
        }
        ScalarInstr::Binary(b, x, y) => {
            let (p, q) = (at(x)?, at(y)?);
            if p != q {
                return Err(format!("operand dtypes differ: {p} and {q}"));
            }
            b.dtype_rule().result(p).map_err(|want| format!("operands have dtype {p}, expected {want}"))
        }
        ScalarInstr::Where(c, x, y) => {
            let (dc, p, q) = (at(c)?, at(x)?, at(y)?);
            if dc != DType::Bool {
                return Err(format!("condition has dtype {dc}, expected bool"));
            }
            if p != q {
                return Err(format!("branches have different dtypes: {p} and {q}"));
            }
            Ok(p)
        }
        ScalarInstr::Cast(to, x) => at(x).map(|_| to),
    }
}
