//! Node construction for gradient rules: ops with light algebraic simplification and the
//! shape bookkeeping of reverse mode (undoing broadcasts, re-inserting reduced axes).
//!
//! Cotangents are kept *lazy*: a cotangent of a node of shape `S` may have any shape that
//! broadcasts to `S` (a scalar `1.0` stands for a tensor of ones). Rules that need the full
//! tensor call [`Emit::materialize`]; elementwise rules multiply through without it, which
//! keeps gradient graphs free of broadcast nodes that a later pass would have to remove.

use smallvec::SmallVec;

use super::GradError;
use crate::{Axes, BinaryOp, ConstData, Constant, DType, Graph, NodeId, Op, ReduceOp, Shape, UnaryOp};

/// The result of building one gradient node.
pub(crate) type Built = Result<NodeId, GradError>;

/// Adds gradient nodes to a graph (hash-consed, so they share work with the forward pass).
pub(crate) struct Emit<'g> {
    graph: &'g mut Graph,
}

impl<'g> Emit<'g> {
    /// An emitter adding to `graph`.
    pub(crate) fn new(graph: &'g mut Graph) -> Emit<'g> {
        Emit { graph }
    }

    /// The graph being extended.
    pub(crate) fn graph(&self) -> &Graph {
        self.graph
    }

    /// The graph being extended, mutably (for nodes the helpers do not cover).
    pub(crate) fn graph_mut(&mut self) -> &mut Graph {
        self.graph
    }

    /// The shape of node `id`.
    pub(crate) fn shape(&self, id: NodeId) -> Shape {
        self.graph.ty(id).shape.clone()
    }

    /// Whether node `id` is a scalar (a lazy cotangent of that shape broadcasts to anything).
    pub(crate) fn is_scalar(&self, id: NodeId) -> bool {
        self.graph.ty(id).shape.is_scalar()
    }

    /// Adds `op(operands)` unchanged.
    pub(crate) fn op(&mut self, op: Op, operands: &[NodeId]) -> Built {
        Ok(self.graph.add(op, operands)?)
    }

    /// A scalar f64 constant.
    pub(crate) fn scalar(&mut self, x: f64) -> NodeId {
        self.graph.constant(Constant::f64(x))
    }

    /// An f64 constant of `shape` with row-major `data`.
    pub(crate) fn tensor(&mut self, shape: Shape, data: Vec<f64>) -> Built {
        let c = Constant::new(shape, ConstData::F64(data.into()))
            .ok_or_else(|| GradError::Internal("constant data does not match its shape".into()))?;
        Ok(self.graph.constant(c))
    }

    /// An i64 vector constant (static indices for scatter/gather rules).
    pub(crate) fn indices(&mut self, data: Vec<i64>) -> Built {
        let shape = Shape::new(&[data.len()]);
        let c = Constant::new(shape, ConstData::I64(data.into()))
            .ok_or_else(|| GradError::Internal("index data does not match its shape".into()))?;
        Ok(self.graph.constant(c))
    }

    /// The value of a rank-0 f64 constant node.
    fn scalar_value(&self, id: NodeId) -> Option<f64> {
        let node = self.graph.node(id);
        match &node.op {
            Op::Const(c) if node.ty.dtype == DType::F64 => c.scalar_value(),
            _ => None,
        }
    }

    /// `u(x)`, folded when `x` is a scalar constant; `neg(neg(y))` is `y`.
    pub(crate) fn unary(&mut self, u: UnaryOp, x: NodeId) -> Built {
        if let Some(v) = self.scalar_value(x)
            && u.dtype_rule().result(DType::F64) == Ok(DType::F64)
        {
            return Ok(self.scalar(u.eval_f64(v)));
        }
        if u == UnaryOp::Neg
            && let Op::Unary(UnaryOp::Neg) = self.graph.node(x).op
        {
            return Ok(self.graph.node(x).operands[0]);
        }
        self.op(Op::Unary(u), &[x])
    }

    /// `a ∘ b`, folded when both are scalar constants, and without identity operations
    /// (`1·x`, `x/1`, `0+x`, `x−0`, `x¹`) or multiplications by −1 (a `neg` instead).
    /// Dropping a scalar constant never changes the result type: a scalar broadcasts to
    /// the other operand's shape.
    pub(crate) fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Built {
        let (ca, cb) = (self.scalar_value(a), self.scalar_value(b));
        let f64_operands = self.graph.ty(a).dtype == DType::F64 && self.graph.ty(b).dtype == DType::F64;
        if let (Some(x), Some(y)) = (ca, cb)
            && !op.returns_bool()
        {
            return Ok(self.scalar(op.eval_f64(x, y)));
        }
        if f64_operands {
            use BinaryOp::*;
            match (op, ca, cb) {
                (Mul, Some(1.0), _) | (Add, Some(0.0), _) => return Ok(b),
                (Mul | Div, _, Some(1.0)) | (Add | Sub, _, Some(0.0)) | (Pow, _, Some(1.0)) => return Ok(a),
                (Mul, Some(-1.0), _) => return self.neg(b),
                (Mul | Div, _, Some(-1.0)) => return self.neg(a),
                (Sub, Some(0.0), _) => return self.neg(b),
                _ => {}
            }
        }
        self.op(Op::Binary(op), &[a, b])
    }

    /// `−x`.
    pub(crate) fn neg(&mut self, x: NodeId) -> Built {
        self.unary(UnaryOp::Neg, x)
    }

    /// `a + b`.
    pub(crate) fn add(&mut self, a: NodeId, b: NodeId) -> Built {
        self.binary(BinaryOp::Add, a, b)
    }

    /// `a − b`.
    pub(crate) fn sub(&mut self, a: NodeId, b: NodeId) -> Built {
        self.binary(BinaryOp::Sub, a, b)
    }

    /// `a · b`.
    pub(crate) fn mul(&mut self, a: NodeId, b: NodeId) -> Built {
        self.binary(BinaryOp::Mul, a, b)
    }

    /// `a / b`.
    pub(crate) fn div(&mut self, a: NodeId, b: NodeId) -> Built {
        self.binary(BinaryOp::Div, a, b)
    }

    /// `x · c` for a scalar `c`.
    pub(crate) fn scale(&mut self, x: NodeId, c: f64) -> Built {
        let c = self.scalar(c);
        self.mul(x, c)
    }

    /// `c − x` for a scalar `c`.
    pub(crate) fn rsub(&mut self, c: f64, x: NodeId) -> Built {
        let c = self.scalar(c);
        self.sub(c, x)
    }

    /// `x + c` for a scalar `c`.
    pub(crate) fn add_scalar(&mut self, x: NodeId, c: f64) -> Built {
        let c = self.scalar(c);
        self.add(x, c)
    }

    /// `where(cond, a, b)`.
    pub(crate) fn select(&mut self, cond: NodeId, a: NodeId, b: NodeId) -> Built {
        self.op(Op::Where, &[cond, a, b])
    }

    /// Σ over `axes` (nothing when `axes` is empty).
    pub(crate) fn reduce_sum(&mut self, x: NodeId, axes: &[usize], keepdims: bool) -> Built {
        if axes.is_empty() {
            return Ok(x);
        }
        self.op(Op::Reduce { kind: ReduceOp::Sum, axes: Axes::from_slice(axes), keepdims }, &[x])
    }

    /// `x` reshaped to `shape` (nothing when it already has it).
    pub(crate) fn reshape(&mut self, x: NodeId, shape: &Shape) -> Built {
        if self.graph.ty(x).shape == *shape {
            return Ok(x);
        }
        self.op(Op::Reshape { shape: shape.clone() }, &[x])
    }

    /// Matrix transpose.
    pub(crate) fn transpose2(&mut self, x: NodeId) -> Built {
        self.op(Op::Transpose { perm: Axes::from_slice(&[1, 0]) }, &[x])
    }

    /// A lazy cotangent made a full tensor of `shape` (a `broadcast_to` when needed).
    pub(crate) fn materialize(&mut self, g: NodeId, shape: &Shape) -> Built {
        if self.graph.ty(g).shape == *shape {
            return Ok(g);
        }
        self.op(Op::BroadcastTo { shape: shape.clone() }, &[g])
    }

    /// Undoes a broadcast: `h` is a (lazy) cotangent of a value of shape `out` that was
    /// broadcast from `target`; the result broadcasts to `target` and is the sum of the
    /// cotangent over every broadcast axis. Axes along which `h` itself is lazy (extent 1)
    /// are not summed but scaled by their extent in `out`.
    pub(crate) fn sum_to(&mut self, h: NodeId, target: &Shape, out: &Shape) -> Built {
        let hs = self.shape(h);
        let rank = out.rank();
        if hs.rank() > rank || target.rank() > rank {
            return Err(GradError::Internal(format!("cannot unbroadcast {hs} to {target} from {out}")));
        }
        let pad = rank - hs.rank();
        let mut sum_axes: SmallVec<[usize; 4]> = SmallVec::new();
        let mut factor = 1.0;
        for (axis, &s) in out.dims().iter().enumerate() {
            if target.padded_dim(rank, axis) == s {
                continue;
            }
            if hs.padded_dim(rank, axis) == 1 {
                factor *= s as f64;
            } else {
                sum_axes.push(axis - pad);
            }
        }
        // The result's shape: `h`'s with summed axes of extent 1, leading 1s dropped down to
        // the target's rank (they are all 1: every axis beyond it was broadcast).
        let mut kept: SmallVec<[usize; 4]> =
            hs.dims().iter().enumerate().map(|(i, &d)| if sum_axes.contains(&i) { 1 } else { d }).collect();
        while kept.len() > target.rank() && kept.first() == Some(&1) {
            kept.remove(0);
        }
        let want = Shape(kept);
        let dropped = crate::infer::drop_axes(&hs, &sum_axes);
        let summed = if sum_axes.is_empty() {
            h
        } else {
            let keepdims = dropped != want && hs.rank() == want.rank();
            self.reduce_sum(h, &sum_axes, keepdims)?
        };
        let shaped = self.reshape(summed, &want)?;
        if factor == 1.0 { Ok(shaped) } else { self.scale(shaped, factor) }
    }

    /// A value `v` of a reduction's result shape (`axes` of an operand of shape `x` reduced,
    /// with or without `keepdims`) made to broadcast against the operand: reduced axes come
    /// back with extent 1. Nothing to do when they are kept, when `v` is a scalar, or when
    /// they are the leading axes (NumPy aligns shapes on the right).
    pub(crate) fn unreduce(&mut self, v: NodeId, x: &Shape, axes: &[usize], keepdims: bool) -> Built {
        let leading = axes.iter().enumerate().all(|(i, &a)| i == a);
        if keepdims || leading || self.is_scalar(v) {
            return Ok(v);
        }
        let reduced = crate::infer::drop_axes(x, axes);
        let full = self.materialize(v, &reduced)?;
        let kept = Shape(x.dims().iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect());
        self.reshape(full, &kept)
    }

    /// An n×n f64 mask: 1 strictly below the diagonal, `diag` on it, `upper` above it.
    pub(crate) fn triangle_mask(&mut self, n: usize, lower: f64, diag: f64, upper: f64) -> Built {
        let data = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                match i.cmp(&j) {
                    std::cmp::Ordering::Greater => lower,
                    std::cmp::Ordering::Equal => diag,
                    std::cmp::Ordering::Less => upper,
                }
            })
            .collect();
        self.tensor(Shape::new(&[n, n]), data)
    }
}
