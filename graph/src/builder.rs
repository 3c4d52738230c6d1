//! A builder that reads well from Rust: operator overloading and methods on [`Var`] handles.
//!
//! Errors (shape mismatches, bad axes) do not panic: the first one is recorded and returned by
//! [`GraphBuilder::finish`]; every value derived from a failed one is failed too.

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::rc::Rc;

use ndarray::{ArrayD, Dimension};
use smallvec::SmallVec;

use crate::{
    Axes, BinaryOp, ConstData, Constant, DType, Graph, GraphError, NodeId, Op, ReduceOp, Shape, SliceRange,
    TensorType, UnaryOp,
};

struct State {
    graph: Graph,
    error: Option<GraphError>,
}

/// Builds a [`Graph`] through [`Var`] handles.
pub struct GraphBuilder {
    state: Rc<RefCell<State>>,
}

/// A value under construction: a node of the builder's graph, or a failed value.
#[derive(Clone)]
pub struct Var {
    state: Rc<RefCell<State>>,
    id: Option<NodeId>,
}

/// A Python-style slice of one axis: `(start, stop, step)`, `None` for an omitted part.
pub type PySlice = (Option<i64>, Option<i64>, Option<i64>);

impl GraphBuilder {
    /// A builder of a graph named `name`.
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder { state: Rc::new(RefCell::new(State { graph: Graph::new(name), error: None })) }
    }

    /// Declares an input.
    pub fn input(&self, name: &str, dtype: DType, shape: &[usize]) -> Var {
        let result = self.state.borrow_mut().graph.input(name, TensorType::new(dtype, shape));
        self.wrap(result)
    }

    /// A constant.
    pub fn constant(&self, c: Constant) -> Var {
        let id = self.state.borrow_mut().graph.constant(c);
        self.wrap(Ok(id))
    }

    /// A scalar f64 constant.
    pub fn scalar(&self, x: f64) -> Var {
        self.constant(Constant::f64(x))
    }

    /// An f64 tensor constant from an ndarray array.
    pub fn array<D: Dimension>(&self, a: &ndarray::Array<f64, D>) -> Var {
        let shape = Shape::new(a.shape());
        let data: Vec<f64> = a.iter().copied().collect();
        self.constant_from(shape, ConstData::F64(data.into()))
    }

    /// An i64 tensor constant from an ndarray array (e.g. group indices for a gather).
    pub fn array_i64<D: Dimension>(&self, a: &ndarray::Array<i64, D>) -> Var {
        let shape = Shape::new(a.shape());
        let data: Vec<i64> = a.iter().copied().collect();
        self.constant_from(shape, ConstData::I64(data.into()))
    }

    fn constant_from(&self, shape: Shape, data: ConstData) -> Var {
        match Constant::new(shape, data) {
            Some(c) => self.constant(c),
            None => self.wrap(Err(GraphError::op("const", "data length does not match the shape"))),
        }
    }

    /// Finishes the graph with `outputs`, or returns the first error met while building.
    pub fn finish(self, outputs: &[&Var]) -> Result<Graph, GraphError> {
        let mut state = self.state.borrow_mut();
        if let Some(e) = state.error.take() {
            return Err(e);
        }
        let ids: Vec<NodeId> = outputs.iter().filter_map(|v| v.id).collect();
        if ids.len() != outputs.len() {
            return Err(GraphError::Invalid("an output comes from another builder or failed".into()));
        }
        state.graph.set_outputs(&ids)?;
        Ok(state.graph.clone())
    }

    fn wrap(&self, result: Result<NodeId, GraphError>) -> Var {
        wrap(&self.state, result)
    }
}

fn wrap(state: &Rc<RefCell<State>>, result: Result<NodeId, GraphError>) -> Var {
    let id = match result {
        Ok(id) => Some(id),
        Err(e) => {
            state.borrow_mut().error.get_or_insert(e);
            None
        }
    };
    Var { state: state.clone(), id }
}

/// Sorted, distinct axes: the canonical form ops require.
fn canonical_axes(axes: &[usize]) -> Axes {
    let mut a: Axes = axes.iter().copied().collect();
    a.sort_unstable();
    a.dedup();
    a
}

impl Var {
    /// The node id (`None` when the value failed).
    pub fn id(&self) -> Option<NodeId> {
        self.id
    }

    /// The value's type (`None` when it failed).
    pub fn ty(&self) -> Option<TensorType> {
        self.id.map(|id| self.state.borrow().graph.ty(id).clone())
    }

    /// The value's shape extents (empty when it failed).
    pub fn dims(&self) -> Vec<usize> {
        self.ty().map(|t| t.shape.dims().to_vec()).unwrap_or_default()
    }

    /// Applies `op` to `self` and `others`.
    pub fn apply(&self, op: Op, others: &[&Var]) -> Var {
        let mut ids: SmallVec<[NodeId; 3]> = SmallVec::new();
        ids.push(match self.id {
            Some(id) => id,
            None => return self.failed(),
        });
        for o in others {
            match o.id {
                Some(id) if Rc::ptr_eq(&o.state, &self.state) => ids.push(id),
                Some(_) => {
                    let e = GraphError::op(op.name(), "operands come from different builders");
                    return wrap(&self.state, Err(e));
                }
                None => return self.failed(),
            }
        }
        let result = self.state.borrow_mut().graph.add(op, &ids);
        wrap(&self.state, result)
    }

    fn failed(&self) -> Var {
        Var { state: self.state.clone(), id: None }
    }

    fn scalar_like(&self, x: f64) -> Var {
        let c = match self.ty().map(|t| t.dtype) {
            Some(DType::I64) if x.fract() == 0.0 => Constant::i64(x as i64),
            _ => Constant::f64(x),
        };
        let id = self.state.borrow_mut().graph.constant(c);
        wrap(&self.state, Ok(id))
    }

    /// Applies an elementwise unary op.
    pub fn unary(&self, op: UnaryOp) -> Var {
        self.apply(Op::Unary(op), &[])
    }

    /// Applies an elementwise binary op.
    pub fn binary(&self, op: BinaryOp, other: &Var) -> Var {
        self.apply(Op::Binary(op), &[other])
    }

    /// `where(cond, a, b)`.
    pub fn select(cond: &Var, a: &Var, b: &Var) -> Var {
        cond.apply(Op::Where, &[a, b])
    }

    /// Converts to `dtype`.
    pub fn cast(&self, dtype: DType) -> Var {
        self.apply(Op::Cast { to: dtype }, &[])
    }

    /// A reduction over `axes`.
    pub fn reduce(&self, kind: ReduceOp, axes: &[usize], keepdims: bool) -> Var {
        self.apply(Op::Reduce { kind, axes: canonical_axes(axes), keepdims }, &[])
    }

    /// Σ over `axes`.
    pub fn sum(&self, axes: &[usize]) -> Var {
        self.reduce(ReduceOp::Sum, axes, false)
    }

    /// Σ over every axis: a scalar.
    pub fn sum_all(&self) -> Var {
        let axes: Vec<usize> = (0..self.dims().len()).collect();
        self.sum(&axes)
    }

    /// Π over `axes`.
    pub fn prod(&self, axes: &[usize]) -> Var {
        self.reduce(ReduceOp::Prod, axes, false)
    }

    /// Maximum over `axes`.
    pub fn max(&self, axes: &[usize]) -> Var {
        self.reduce(ReduceOp::Max, axes, false)
    }

    /// Minimum over `axes`.
    pub fn min(&self, axes: &[usize]) -> Var {
        self.reduce(ReduceOp::Min, axes, false)
    }

    /// Mean over `axes`.
    pub fn mean(&self, axes: &[usize]) -> Var {
        self.reduce(ReduceOp::Mean, axes, false)
    }

    /// ln Σ exp over `axes`.
    pub fn logsumexp(&self, axes: &[usize]) -> Var {
        self.reduce(ReduceOp::LogSumExp, axes, false)
    }

    /// Inclusive cumulative sum along `axis`.
    pub fn cumsum(&self, axis: usize) -> Var {
        self.apply(Op::Cumsum { axis, reverse: false }, &[])
    }

    /// Reshape to `shape`.
    pub fn reshape(&self, shape: &[usize]) -> Var {
        self.apply(Op::Reshape { shape: Shape::new(shape) }, &[])
    }

    /// Permute axes.
    pub fn transpose(&self, perm: &[usize]) -> Var {
        self.apply(Op::Transpose { perm: perm.iter().copied().collect() }, &[])
    }

    /// Matrix transpose (reverses the axes).
    pub fn t(&self) -> Var {
        let perm: Vec<usize> = (0..self.dims().len()).rev().collect();
        self.transpose(&perm)
    }

    /// Inserts an axis of extent 1.
    pub fn expand_dims(&self, axis: usize) -> Var {
        self.apply(Op::ExpandDims { axis }, &[])
    }

    /// Removes axes of extent 1.
    pub fn squeeze(&self, axes: &[usize]) -> Var {
        self.apply(Op::Squeeze { axes: canonical_axes(axes) }, &[])
    }

    /// NumPy `broadcast_to`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Var {
        self.apply(Op::BroadcastTo { shape: Shape::new(shape) }, &[])
    }

    /// Concatenates `self` and `others` along `axis`.
    pub fn concatenate(&self, others: &[&Var], axis: usize) -> Var {
        self.apply(Op::Concatenate { axis }, others)
    }

    /// Stacks `self` and `others` along a new axis.
    pub fn stack(&self, others: &[&Var], axis: usize) -> Var {
        self.apply(Op::Stack { axis }, others)
    }

    /// Python-style slicing, one `(start, stop, step)` per leading axis; later axes are whole.
    pub fn slice(&self, spec: &[PySlice]) -> Var {
        let dims = self.dims();
        if spec.len() > dims.len() && self.id.is_some() {
            let e = GraphError::op("slice", format!("{} ranges given for rank {}", spec.len(), dims.len()));
            return wrap(&self.state, Err(e));
        }
        let mut ranges = SmallVec::new();
        for (axis, &dim) in dims.iter().enumerate() {
            let range = match spec.get(axis) {
                Some(&(start, stop, step)) => match SliceRange::from_python(start, stop, step, dim) {
                    Ok(r) => r,
                    Err(msg) => return wrap(&self.state, Err(GraphError::op("slice", format!("axis {axis}: {msg}")))),
                },
                None => SliceRange::full(dim),
            };
            ranges.push(range);
        }
        self.apply(Op::Slice { ranges }, &[])
    }

    /// `take(self, idx, axis)`.
    pub fn gather(&self, idx: &Var, axis: usize) -> Var {
        self.apply(Op::Gather { axis }, &[idx])
    }

    /// Adds `self` (updates) into zeros with extent `size` on `axis`, at `idx`.
    pub fn scatter_add(&self, idx: &Var, axis: usize, size: usize) -> Var {
        self.apply(Op::ScatterAdd { axis, size }, &[idx])
    }

    /// Matrix product (vector·vector, matrix·vector, vector·matrix, matrix·matrix).
    pub fn matmul(&self, other: &Var) -> Var {
        self.apply(Op::Matmul, &[other])
    }

    /// Alias of [`Var::matmul`].
    pub fn dot(&self, other: &Var) -> Var {
        self.matmul(other)
    }

    /// Outer product of two vectors.
    pub fn outer(&self, other: &Var) -> Var {
        self.apply(Op::Outer, &[other])
    }

    /// Lower Cholesky factor.
    pub fn cholesky(&self) -> Var {
        self.apply(Op::Cholesky, &[])
    }

    /// Solves `self · x = b` for triangular `self`.
    pub fn triangular_solve(&self, b: &Var, lower: bool) -> Var {
        self.apply(Op::TriangularSolve { lower }, &[b])
    }

    /// log det(L Lᵀ) from a Cholesky factor.
    pub fn logdet_chol(&self) -> Var {
        self.apply(Op::LogDetChol, &[])
    }

    /// The diagonal of a square matrix.
    pub fn diag(&self) -> Var {
        self.apply(Op::Diag, &[])
    }

    /// A diagonal matrix from a vector.
    pub fn diag_matrix(&self) -> Var {
        self.apply(Op::DiagMatrix, &[])
    }

    /// `self ^ other`.
    pub fn pow(&self, other: &Var) -> Var {
        self.binary(BinaryOp::Pow, other)
    }

    /// `self ^ x` for a scalar exponent.
    pub fn powf(&self, x: f64) -> Var {
        self.binary(BinaryOp::Pow, &self.scalar_like(x))
    }
}

/// Unary methods named as the ops of the text form.
macro_rules! unary_methods {
    ($($method:ident => $op:ident),* $(,)?) => {
        impl Var {
            $(
                #[doc = concat!("Elementwise `", stringify!($method), "`.")]
                pub fn $method(&self) -> Var {
                    self.unary(UnaryOp::$op)
                }
            )*
        }
    };
}

unary_methods! {
    abs => Abs, sign => Sign, exp => Exp, expm1 => Expm1, log => Log, log1p => Log1p, sqrt => Sqrt,
    square => Square, reciprocal => Reciprocal, sin => Sin, cos => Cos, tan => Tan, tanh => Tanh,
    sigmoid => Sigmoid, softplus => Softplus, log_sigmoid => LogSigmoid, log1mexp => Log1mexp,
    logit => Logit, lgamma => Lgamma, digamma => Digamma, erf => Erf, erfc => Erfc, floor => Floor,
    ceil => Ceil, isfinite => IsFinite, not => Not,
}

/// Binary methods named as the ops of the text form.
macro_rules! binary_methods {
    ($($method:ident => $op:ident),* $(,)?) => {
        impl Var {
            $(
                #[doc = concat!("Elementwise `", stringify!($method), "` (NumPy broadcasting).")]
                pub fn $method(&self, other: &Var) -> Var {
                    self.binary(BinaryOp::$op, other)
                }
            )*
        }
    };
}

binary_methods! {
    maximum => Maximum, minimum => Minimum, logaddexp => LogAddExp, lt => Lt, le => Le, gt => Gt,
    ge => Ge, eq => Eq, ne => Ne, and => And, or => Or,
}

/// `+ - * /` between vars and with f64 scalars, owned or borrowed.
macro_rules! arith_operators {
    ($($trait:ident $method:ident $op:ident),*) => {$(
        impl $trait<&Var> for &Var {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var { self.binary(BinaryOp::$op, rhs) }
        }
        impl $trait<Var> for Var {
            type Output = Var;
            fn $method(self, rhs: Var) -> Var { self.binary(BinaryOp::$op, &rhs) }
        }
        impl $trait<&Var> for Var {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var { self.binary(BinaryOp::$op, rhs) }
        }
        impl $trait<Var> for &Var {
            type Output = Var;
            fn $method(self, rhs: Var) -> Var { self.binary(BinaryOp::$op, &rhs) }
        }
        impl $trait<f64> for &Var {
            type Output = Var;
            fn $method(self, rhs: f64) -> Var { self.binary(BinaryOp::$op, &self.scalar_like(rhs)) }
        }
        impl $trait<f64> for Var {
            type Output = Var;
            fn $method(self, rhs: f64) -> Var { self.binary(BinaryOp::$op, &self.scalar_like(rhs)) }
        }
        impl $trait<&Var> for f64 {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var { rhs.scalar_like(self).binary(BinaryOp::$op, rhs) }
        }
        impl $trait<Var> for f64 {
            type Output = Var;
            fn $method(self, rhs: Var) -> Var { rhs.scalar_like(self).binary(BinaryOp::$op, &rhs) }
        }
    )*};
}

arith_operators!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div);

impl Neg for &Var {
    type Output = Var;
    fn neg(self) -> Var {
        self.unary(UnaryOp::Neg)
    }
}

impl Neg for Var {
    type Output = Var;
    fn neg(self) -> Var {
        self.unary(UnaryOp::Neg)
    }
}

/// Converts an ndarray f64 array to a constant (helper for tests and front ends).
pub fn constant_from_array(a: &ArrayD<f64>) -> Constant {
    let data: Vec<f64> = a.iter().copied().collect();
    // The data is the array's own elements, so the length always matches the shape.
    Constant::new(Shape::new(a.shape()), ConstData::F64(data.into())).unwrap_or_else(|| Constant::f64(f64::NAN))
}
