//! Scalar expressions: the per-element computation of a kernel, as a small DAG over its leaves.
//!
//! A plain elementwise node lowers to a one-op expression; a chain of elementwise nodes (or a
//! future `Op::Fused` node of the rewrite crate) lowers to a larger one. The emitter in
//! `emit::scalar` turns an expression into Cranelift values, once per element (or per pair of
//! elements in vector loops).

use tessera_graph::{BinaryOp, DType, UnaryOp};

/// A scalar constant of one of the IR's dtypes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// An f64 value.
    F64(f64),
    /// An i64 value.
    I64(i64),
    /// A bool value.
    Bool(bool),
}

impl Scalar {
    /// The dtype of the constant.
    pub fn dtype(self) -> DType {
        match self {
            Scalar::F64(_) => DType::F64,
            Scalar::I64(_) => DType::I64,
            Scalar::Bool(_) => DType::Bool,
        }
    }
}

/// One node of an expression; operands are indices of earlier nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExprKind {
    /// The value of leaf `k` of the kernel at the current element.
    Leaf(usize),
    /// A constant.
    Const(Scalar),
    /// An elementwise unary op.
    Unary(UnaryOp, usize),
    /// An elementwise binary op.
    Binary(BinaryOp, usize, usize),
    /// `where(cond, a, b)`.
    Where(usize, usize, usize),
    /// A dtype conversion to the node's dtype.
    Cast(usize),
}

/// An expression node with its result dtype.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExprNode {
    /// What the node computes.
    pub kind: ExprKind,
    /// Its result dtype.
    pub dtype: DType,
}

/// A scalar expression DAG in topological order; `root` is the result.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Expr {
    /// The nodes; every operand index is smaller than its user's index.
    pub nodes: Vec<ExprNode>,
    /// The node whose value is the expression's value.
    pub root: usize,
}

impl Expr {
    /// An empty expression (add nodes with [`Expr::push`]).
    pub fn new() -> Expr {
        Expr::default()
    }

    /// The expression that is just leaf `k` of dtype `dtype` (a copy kernel).
    pub fn leaf(k: usize, dtype: DType) -> Expr {
        let mut e = Expr::new();
        e.push(ExprKind::Leaf(k), dtype);
        e
    }

    /// The expression that is just a constant (a fill kernel).
    pub fn constant(c: Scalar) -> Expr {
        let mut e = Expr::new();
        e.push(ExprKind::Const(c), c.dtype());
        e
    }

    /// Appends a node, makes it the root and returns its index.
    pub fn push(&mut self, kind: ExprKind, dtype: DType) -> usize {
        self.nodes.push(ExprNode { kind, dtype });
        self.root = self.nodes.len() - 1;
        self.root
    }

    /// The result dtype.
    pub fn dtype(&self) -> DType {
        self.nodes.get(self.root).map_or(DType::F64, |n| n.dtype)
    }

    /// Number of leaves referenced (one more than the largest leaf index).
    pub fn leaf_count(&self) -> usize {
        self.nodes
            .iter()
            .filter_map(|n| match n.kind {
                ExprKind::Leaf(k) => Some(k + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Copies `other`'s nodes into this expression, mapping its leaf `k` to the node
    /// `leaf_map[k]` of this expression; returns the index of `other`'s root here.
    pub fn splice(&mut self, other: &Expr, leaf_map: &[usize]) -> usize {
        let base = self.nodes.len();
        let mut map = Vec::with_capacity(other.nodes.len());
        for node in &other.nodes {
            let kind = match node.kind {
                ExprKind::Leaf(k) => {
                    map.push(leaf_map[k]);
                    continue;
                }
                ExprKind::Const(c) => ExprKind::Const(c),
                ExprKind::Unary(op, a) => ExprKind::Unary(op, map[a]),
                ExprKind::Binary(op, a, b) => ExprKind::Binary(op, map[a], map[b]),
                ExprKind::Where(c, a, b) => ExprKind::Where(map[c], map[a], map[b]),
                ExprKind::Cast(a) => ExprKind::Cast(map[a]),
            };
            self.nodes.push(ExprNode { kind, dtype: node.dtype });
            map.push(self.nodes.len() - 1);
        }
        let root = map.get(other.root).copied().unwrap_or(base);
        self.root = root;
        root
    }
}
