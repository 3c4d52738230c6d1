//! Models built from Rust (the language compiles to the same builder), and the bound model:
//! the flat parameter layout and the log-density and constrained-value graphs.
//!
//! While a model is built, each parameter is its own graph input; [`ModelBuilder::finish`]
//! replaces them by slices of one flat unconstrained vector `%theta`, in declaration order.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use ndarray::{ArrayD, IxDyn};
use rustc_hash::FxHashMap;
use tessera_graph::{DType, Graph, GraphBuilder, GraphError, NodeId, Op, SliceRange, Value, Var};

use crate::dist::{self, DensityOptions, Dist};
use crate::error::ModelWarning;
use crate::transform::Transform;

/// Largest number of elements of any tensor of a model (parameters, data, intermediates).
pub const MAX_ELEMENTS: usize = 1 << 26;

/// `Π shape`, or `None` when it overflows or exceeds [`MAX_ELEMENTS`].
pub fn checked_size(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS)
}

/// Where one parameter lives in the flat unconstrained vector.
///
/// The layout is stable: parameters in declaration order, each occupying
/// `theta[offset .. offset + size]`, its elements row-major. `size` is the number of
/// *unconstrained* values (K − 1 for a K-simplex); `shape` is the constrained shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    /// The parameter's name.
    pub name: String,
    /// Index of its first unconstrained value in `theta`.
    pub offset: usize,
    /// Number of unconstrained values.
    pub size: usize,
    /// Its shape on the constrained scale (empty for a scalar).
    pub shape: Vec<usize>,
    /// How unconstrained values map to constrained ones.
    pub transform: Transform,
}

impl fmt::Display for ParamLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} offset={} size={} shape={} transform={}",
            self.name,
            self.offset,
            self.size,
            dist::fmt_shape(&self.shape),
            self.transform
        )
    }
}

/// What kind of value a constrained-graph output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A parameter on its constrained scale.
    Param,
    /// A `derived` quantity.
    Derived,
}

/// One output of the constrained graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputInfo {
    /// The name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Parameter or derived quantity.
    pub kind: OutputKind,
}

/// An error of the Rust model-building API.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A request that does not fit (duplicate name, bad transform, shapes that do not fit).
    #[error("{0}")]
    Invalid(String),
    /// A graph construction error.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// An error of evaluating a bound model with the reference interpreter.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InterpError {
    /// `theta` (or a constrained vector) has the wrong length.
    #[error("expected {expected} values, got {got}")]
    Length {
        /// The model's size.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The interpreter failed.
    #[error(transparent)]
    Eval(#[from] tessera_graph::EvalError),
    /// The symbolic gradient failed.
    #[error(transparent)]
    Grad(#[from] tessera_graph::GradError),
    /// A graph error while assembling the gradient graph.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A value outside a parameter's constrained space.
    #[error("parameter `{name}`: {message}")]
    Transform {
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
}

struct ParamEntry {
    layout: ParamLayout,
    input: String,
    value: Var,
}

/// Builds a model from Rust: parameters, log-density terms and derived quantities.
///
/// ```
/// use tessera_model::{Dist, ModelBuilder, Transform};
/// let mut m = ModelBuilder::new();
/// let mu = m.param("mu", &[], Transform::Identity).unwrap();
/// let zero = m.graph().scalar(0.0);
/// let one = m.graph().scalar(1.0);
/// m.observe(Dist::Normal, &mu, &[&zero, &one]).unwrap();
/// let model = m.finish().unwrap();
/// assert_eq!(model.dim(), 1);
/// ```
pub struct ModelBuilder {
    gb: GraphBuilder,
    params: Vec<ParamEntry>,
    next_offset: usize,
    terms: Vec<Var>,
    derived: Vec<(String, Var)>,
}

impl Default for ModelBuilder {
    fn default() -> Self {
        ModelBuilder::new()
    }
}

impl ModelBuilder {
    /// An empty model.
    pub fn new() -> ModelBuilder {
        ModelBuilder { gb: GraphBuilder::new("logp"), params: Vec::new(), next_offset: 0, terms: Vec::new(), derived: Vec::new() }
    }

    /// The graph builder, for constants and for building expressions.
    pub fn graph(&self) -> &GraphBuilder {
        &self.gb
    }

    fn name_taken(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.layout.name == name) || self.derived.iter().any(|(n, _)| n == name)
    }

    /// Declares a parameter of `shape` with `transform`; returns its constrained value. Its
    /// log-Jacobian is added to the log density (a parameter without a prior is flat on its
    /// constrained space).
    pub fn param(&mut self, name: &str, shape: &[usize], transform: Transform) -> Result<Var, BuildError> {
        if self.name_taken(name) {
            return Err(BuildError::Invalid(format!("`{name}` is declared twice")));
        }
        if checked_size(shape).is_none() {
            return Err(BuildError::Invalid(format!("parameter `{name}` of shape {} is too large", dist::fmt_shape(shape))));
        }
        transform.validate(shape).map_err(|m| BuildError::Invalid(format!("parameter `{name}`: {m}")))?;
        let size = transform.unconstrained_size(shape);
        if self.next_offset.checked_add(size).is_none_or(|end| end > MAX_ELEMENTS) {
            return Err(BuildError::Invalid("the model has too many parameters".into()));
        }
        let input = format!("__unconstrained_{name}");
        let u = self.gb.input(&input, DType::F64, &[size]);
        let (value, log_jac) = transform
            .constrain_var(&self.gb, &u, shape)
            .map_err(|m| BuildError::Invalid(format!("parameter `{name}`: {m}")))?;
        if value.id().is_none() || log_jac.as_ref().is_some_and(|l| l.id().is_none()) {
            return Err(BuildError::Invalid(format!("parameter `{name}`: the transform could not be built")));
        }
        self.terms.extend(log_jac);
        let layout = ParamLayout { name: name.to_string(), offset: self.next_offset, size, shape: shape.to_vec(), transform };
        self.next_offset += size;
        self.params.push(ParamEntry { layout, input, value: value.clone() });
        Ok(value)
    }

    /// The transform's range if `x` is exactly a parameter's value.
    fn param_range(&self, x: &Var) -> Option<(f64, f64)> {
        let id = x.id()?;
        self.params.iter().find(|p| p.value.id() == Some(id)).map(|p| p.layout.transform.range())
    }

    /// The elementwise log density of `dist` at `x` (int/bool values and arguments are
    /// converted as needed), with shapes checked by [`dist::density_shape`].
    pub fn log_density(&self, dist: Dist, x: &Var, args: &[&Var], opts: DensityOptions) -> Result<Var, BuildError> {
        let x_ty = x.ty().ok_or_else(|| BuildError::Invalid("the value failed to build".into()))?;
        let x = if x_ty.dtype == dist.value_dtype() { x.clone() } else { x.cast(dist.value_dtype()) };
        let mut real_args = Vec::with_capacity(args.len());
        for a in args {
            let ty = a.ty().ok_or_else(|| BuildError::Invalid("an argument failed to build".into()))?;
            real_args.push(if ty.dtype == DType::F64 { (*a).clone() } else { a.cast(DType::F64) });
        }
        let arg_dims: Vec<Vec<usize>> = real_args.iter().map(Var::dims).collect();
        let arg_refs: Vec<&[usize]> = arg_dims.iter().map(Vec::as_slice).collect();
        dist::density_shape(dist, &x.dims(), &arg_refs).map_err(|m| BuildError::Invalid(format!("{}: {m}", dist.name())))?;
        dist::log_density(&self.gb, dist, &x, &real_args, opts).map_err(|m| BuildError::Invalid(format!("{}: {m}", dist.name())))
    }

    /// `x ~ dist(args)`: adds the summed log density. The arguments must broadcast to `x`'s
    /// shape (a value smaller than its arguments would count densities more than once).
    pub fn observe(&mut self, dist: Dist, x: &Var, args: &[&Var]) -> Result<(), BuildError> {
        let arg_dims: Vec<Vec<usize>> = args.iter().map(|a| a.dims()).collect();
        let arg_refs: Vec<&[usize]> = arg_dims.iter().map(Vec::as_slice).collect();
        let shape = dist::density_shape(dist, &x.dims(), &arg_refs).map_err(|m| BuildError::Invalid(format!("{}: {m}", dist.name())))?;
        if shape.out != shape.value_batch {
            return Err(BuildError::Invalid(format!(
                "{}: the arguments broadcast to shape {}, larger than the value's {}",
                dist.name(),
                dist::fmt_shape(&shape.out),
                dist::fmt_shape(&shape.value_batch)
            )));
        }
        let inside = match (self.param_range(x), dist.support().interior()) {
            (Some((lo, hi)), Some((slo, shi))) => lo >= slo && hi <= shi,
            _ => false,
        };
        let opts = if inside { DensityOptions::INTERIOR } else { DensityOptions::default() };
        let lp = self.log_density(dist, x, args, opts)?;
        self.add_target(&lp);
        Ok(())
    }

    /// `target += term`: adds the sum of `term` (converted to f64).
    pub fn add_target(&mut self, term: &Var) {
        let t = match term.ty().map(|t| t.dtype) {
            Some(DType::F64) | None => term.clone(),
            Some(_) => term.cast(DType::F64),
        };
        self.terms.push(if t.dims().is_empty() { t } else { t.sum_all() });
    }

    /// Saves `value` with the draws under `name`.
    pub fn derived(&mut self, name: &str, value: &Var) -> Result<(), BuildError> {
        if self.name_taken(name) {
            return Err(BuildError::Invalid(format!("`{name}` is declared twice")));
        }
        let v = match value.ty().map(|t| t.dtype) {
            Some(DType::F64) | None => value.clone(),
            Some(_) => value.cast(DType::F64),
        };
        self.derived.push((name.to_string(), v));
        Ok(())
    }

    /// The layout so far.
    pub fn layout(&self) -> Vec<ParamLayout> {
        self.params.iter().map(|p| p.layout.clone()).collect()
    }

    /// Assembles the log-density and constrained-value graphs over one flat `%theta`.
    pub fn finish(self) -> Result<BoundModel, BuildError> {
        let mut terms = self.terms.iter();
        let logp = match terms.next() {
            Some(first) => terms.fold(first.clone(), |acc, t| acc + t),
            None => self.gb.scalar(0.0),
        };
        let mut outputs: Vec<&Var> = vec![&logp];
        let mut infos = Vec::new();
        for p in &self.params {
            outputs.push(&p.value);
            infos.push(OutputInfo { name: p.layout.name.clone(), shape: p.layout.shape.clone(), kind: OutputKind::Param });
        }
        for (name, v) in &self.derived {
            outputs.push(v);
            infos.push(OutputInfo { name: name.clone(), shape: v.dims(), kind: OutputKind::Derived });
        }
        let graph = self.gb.finish(&outputs)?;
        let layout: Vec<ParamLayout> = self.params.iter().map(|p| p.layout.clone()).collect();
        let inputs: HashMap<&str, &ParamLayout> = self.params.iter().map(|p| (p.input.as_str(), &p.layout)).collect();
        let dim = self.next_offset;
        let flat = flatten_params(&graph, &inputs, dim)?;
        let logp = select_outputs(&flat, &flat.outputs()[..1], "logp")?;
        let constrained = select_outputs(&flat, &flat.outputs()[1..], "constrained")?;
        if logp.ty(logp.outputs()[0]) != &tessera_graph::TensorType::scalar(DType::F64) {
            return Err(BuildError::Invalid(format!("the log density has type {}, expected f64[]", logp.ty(logp.outputs()[0]))));
        }
        Ok(BoundModel { layout, dim, logp, constrained, outputs: infos, grad: OnceLock::new(), warnings: Vec::new() })
    }
}

/// A copy of `graph` whose parameter inputs are slices of one input `%theta: f64[dim]`.
fn flatten_params(graph: &Graph, params: &HashMap<&str, &ParamLayout>, dim: usize) -> Result<Graph, GraphError> {
    let mut out = Graph::new("logp");
    let theta = out.input("theta", tessera_graph::TensorType::new(DType::F64, [dim]))?;
    let mut map: FxHashMap<NodeId, NodeId> = FxHashMap::default();
    for id in graph.live_nodes() {
        let node = graph.node(id);
        let new = match &node.op {
            Op::Input { name, .. } => {
                let p = params.get(name.as_ref()).ok_or_else(|| GraphError::Invalid(format!("unexpected input %{name}")))?;
                let range = SliceRange::contiguous(p.offset, p.size);
                out.add(Op::Slice { ranges: std::iter::once(range).collect() }, &[theta])?
            }
            Op::Const(c) => out.constant(c.clone()),
            op => {
                let operands: Vec<NodeId> = node.operands.iter().map(|o| map[o]).collect();
                out.add(op.clone(), &operands)?
            }
        };
        map.insert(id, new);
    }
    let outputs: Vec<NodeId> = graph.outputs().iter().map(|o| map[o]).collect();
    out.set_outputs(&outputs)?;
    Ok(out)
}

fn select_outputs(graph: &Graph, outputs: &[NodeId], name: &str) -> Result<Graph, GraphError> {
    let mut g = graph.clone();
    g.set_outputs(outputs)?;
    let mut g = g.compact();
    g.set_name(name);
    Ok(g)
}

/// A model bound to its data: the flat parameter layout, the log density and the
/// constrained values as graphs of one input `%theta: f64[dim]`.
pub struct BoundModel {
    layout: Vec<ParamLayout>,
    dim: usize,
    logp: Graph,
    constrained: Graph,
    outputs: Vec<OutputInfo>,
    grad: OnceLock<Result<Graph, InterpError>>,
    /// What compiles but is probably wrong (set by the language's binder).
    pub(crate) warnings: Vec<ModelWarning>,
}

impl fmt::Debug for BoundModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundModel").field("dim", &self.dim).field("layout", &self.layout).finish()
    }
}

impl BoundModel {
    /// The number of unconstrained values (the length of `theta`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Warnings about the model (a parameter transformed on the left of `~`), rendered with
    /// their location.
    pub fn warnings(&self) -> &[ModelWarning] {
        &self.warnings
    }

    /// Where each parameter lives in `theta` (declaration order).
    pub fn layout(&self) -> &[ParamLayout] {
        &self.layout
    }

    /// The log density: input `%theta: f64[dim]`, one output, the scalar log density on the
    /// unconstrained space (log-Jacobians included; data are constants).
    pub fn logp_graph(&self) -> &Graph {
        &self.logp
    }

    /// The constrained values: input `%theta`, outputs every parameter on its constrained
    /// scale (declaration order) then every `derived` quantity.
    pub fn constrained_graph(&self) -> &Graph {
        &self.constrained
    }

    /// The constrained graph's outputs: names, shapes and kinds.
    pub fn outputs(&self) -> &[OutputInfo] {
        &self.outputs
    }

    /// The flattened output names, row-major: `mu`, `beta[0]`, `L[0,1]`.
    pub fn output_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for o in &self.outputs {
            let n: usize = o.shape.iter().product();
            if o.shape.is_empty() {
                names.push(o.name.clone());
            } else {
                names.extend((0..n).map(|k| format!("{}{}", o.name, crate::data::index_text(&o.shape, k))));
            }
        }
        names
    }

    /// The log-density graph with its gradient: outputs `[logp, dlogp/dtheta]`.
    pub fn logp_grad_graph(&self) -> Result<&Graph, InterpError> {
        self.grad.get_or_init(|| Ok(tessera_graph::with_gradients(&self.logp, &["theta"])?)).as_ref().map_err(Clone::clone)
    }

    fn theta_input(&self, theta: &[f64]) -> Result<HashMap<String, Value>, InterpError> {
        if theta.len() != self.dim {
            return Err(InterpError::Length { expected: self.dim, got: theta.len() });
        }
        let a = ArrayD::from_shape_vec(IxDyn(&[self.dim]), theta.to_vec()).map_err(|_| InterpError::Length { expected: self.dim, got: theta.len() })?;
        Ok(HashMap::from([("theta".to_string(), Value::F64(a))]))
    }

    /// The log density at `theta`, by the reference interpreter.
    pub fn logp_interp(&self, theta: &[f64]) -> Result<f64, InterpError> {
        let out = tessera_graph::eval(&self.logp, &self.theta_input(theta)?)?;
        Ok(out.first().and_then(Value::to_scalar_f64).unwrap_or(f64::NAN))
    }

    /// The log density and its gradient at `theta`, by the reference interpreter on the
    /// symbolic gradient graph.
    pub fn logp_and_grad_interp(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), InterpError> {
        let g = self.logp_grad_graph()?;
        let out = tessera_graph::eval(g, &self.theta_input(theta)?)?;
        let lp = out.first().and_then(Value::to_scalar_f64).unwrap_or(f64::NAN);
        let grad = out.get(1).map(Value::to_f64_vec).unwrap_or_default();
        Ok((lp, grad))
    }

    /// Every constrained output at `theta`, flattened in [`BoundModel::output_names`] order,
    /// by the reference interpreter.
    pub fn constrained_interp(&self, theta: &[f64]) -> Result<Vec<f64>, InterpError> {
        let out = tessera_graph::eval(&self.constrained, &self.theta_input(theta)?)?;
        Ok(out.iter().flat_map(Value::to_f64_vec).collect())
    }

    /// The number of constrained parameter values (the flat length [`BoundModel::unconstrain`]
    /// takes).
    pub fn constrained_param_len(&self) -> usize {
        self.layout.iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }

    /// Maps `theta` to the parameters' constrained values (declaration order, row-major)
    /// with the f64 transforms (no graph evaluation).
    pub fn constrain(&self, theta: &[f64]) -> Result<Vec<f64>, InterpError> {
        if theta.len() != self.dim {
            return Err(InterpError::Length { expected: self.dim, got: theta.len() });
        }
        let mut out = Vec::with_capacity(self.constrained_param_len());
        for p in &self.layout {
            let (x, _) = p
                .transform
                .constrain(&theta[p.offset..p.offset + p.size], &p.shape)
                .map_err(|message| InterpError::Transform { name: p.name.clone(), message })?;
            out.extend(x);
        }
        Ok(out)
    }

    /// Maps constrained parameter values (declaration order, row-major) to `theta`.
    pub fn unconstrain(&self, constrained: &[f64]) -> Result<Vec<f64>, InterpError> {
        let want = self.constrained_param_len();
        if constrained.len() != want {
            return Err(InterpError::Length { expected: want, got: constrained.len() });
        }
        let mut theta = Vec::with_capacity(self.dim);
        let mut pos = 0;
        for p in &self.layout {
            let n: usize = p.shape.iter().product();
            let u = p
                .transform
                .unconstrain(&constrained[pos..pos + n], &p.shape)
                .map_err(|message| InterpError::Transform { name: p.name.clone(), message })?;
            theta.extend(u);
            pos += n;
        }
        Ok(theta)
    }
}
