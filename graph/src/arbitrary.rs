//! Random well-typed graphs and input values for property tests (feature `testing`).
//!
//! [`arb_graph`] draws a recipe — input shapes, a list of steps made of small random
//! numbers, output picks — and builds a graph from it through [`Graph::add`], keeping only the
//! ops whose typing succeeds. Shrinking a failing case shrinks the recipe: fewer steps,
//! smaller numbers, which pick the first (simplest) options.
//!
//! ```
//! use proptest::prelude::*;
//! use tessera_graph::arbitrary::{GenConfig, arb_graph};
//!
//! proptest!(|(g in arb_graph(GenConfig::default()))| {
//!     tessera_graph::verify(&g).unwrap();
//! });
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ndarray::ArrayD;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use smallvec::SmallVec;

use crate::infer::infer;
use crate::{
    BinaryOp, ConstData, Constant, DType, Graph, NodeId, Op, ReduceOp, Shape, SliceRange, TensorType, UnaryOp, Value,
};

/// Which op families the generator may use. `Default` enables all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpFamilies {
    /// Elementwise unary ops (neg, exp, log, tanh, softplus, …).
    pub unary: bool,
    /// Elementwise binary ops with broadcasting (add, sub, mul, div, pow, logaddexp, maximum, …).
    pub binary: bool,
    /// Comparisons, logical ops, `isfinite`, `where` and bool→f64 casts (non-smooth).
    pub select: bool,
    /// f64→i64→f64 round trips with i64 arithmetic in between (non-smooth).
    pub cast: bool,
    /// Reductions over random axes, with and without keepdims.
    pub reduce: bool,
    /// Cumulative sums, forwards and reversed.
    pub cumsum: bool,
    /// reshape, transpose, expand_dims, squeeze, broadcast_to.
    pub shape: bool,
    /// concatenate and stack.
    pub join: bool,
    /// Static slices, negative steps included.
    pub slice: bool,
    /// gather and scatter_add with constant i64 indices (repeats included).
    pub gather: bool,
    /// matmul (all four forms), outer, diag, diag_matrix.
    pub linalg: bool,
    /// cholesky, triangular_solve (lower and upper), logdet_chol on SPD / triangular matrices
    /// built from the graph's values.
    pub factor: bool,
    /// Tensor (non-scalar) constants as operands of binary ops.
    pub constants: bool,
}

impl Default for OpFamilies {
    fn default() -> OpFamilies {
        OpFamilies {
            unary: true,
            binary: true,
            select: true,
            cast: true,
            reduce: true,
            cumsum: true,
            shape: true,
            join: true,
            slice: true,
            gather: true,
            linalg: true,
            factor: true,
            constants: true,
        }
    }
}

/// How ops defined on part of the real line (log, log1p, sqrt, reciprocal, div, pow, tan,
/// logit, log1mexp, lgamma, digamma, trigamma) are generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DomainPolicy {
    /// Applied to an operand first mapped into the domain (`softplus(x) + 0.25` for a
    /// positive argument, `0.9·sigmoid(x) + 0.05` for a probability, `tanh x` for tan,
    /// `−(softplus(x) + 0.25)` for log1mexp), so values stay finite. The arguments of exp
    /// and expm1 and the exponents of pow are bounded the same way (`3·tanh x`).
    #[default]
    Guarded,
    /// Applied to any operand: NaN and infinities may appear.
    Raw,
    /// Never generated.
    Excluded,
}

/// What [`arb_graph`] generates. `Default` gives small graphs over the whole op set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Most f64 inputs (at least one is always declared). Default 3.
    pub max_inputs: usize,
    /// Largest rank of an input. Default 3.
    pub max_rank: usize,
    /// Largest extent of an input axis (extents are 1..=this). Default 4.
    pub max_extent: usize,
    /// Most op applications attempted (at least one is); ill-typed ones are skipped. Default 16.
    pub max_steps: usize,
    /// Ops whose result would have more elements than this are skipped. Default 256.
    pub max_elements: usize,
    /// Ops whose result would have a larger rank than this are skipped. Default 4.
    pub max_result_rank: usize,
    /// Most outputs (at least one). Default 3.
    pub max_outputs: usize,
    /// Which op families may appear.
    pub families: OpFamilies,
    /// How domain-restricted ops appear.
    pub domain: DomainPolicy,
    /// Whether ops without a derivative everywhere may appear: abs, sign, floor, ceil,
    /// maximum, minimum, reduce_max, reduce_min, and the `select` and `cast` families.
    /// Default true; set false for gradient tests.
    pub non_smooth: bool,
    /// When true the graph has exactly one output: the sum of the chosen outputs, each
    /// reduced to a scalar (what a log density looks like). Default false.
    pub scalar_output: bool,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            max_inputs: 3,
            max_rank: 3,
            max_extent: 4,
            max_steps: 16,
            max_elements: 256,
            max_result_rank: 4,
            max_outputs: 3,
            families: OpFamilies::default(),
            domain: DomainPolicy::Guarded,
            non_smooth: true,
            scalar_output: false,
        }
    }
}

impl GenConfig {
    /// Graphs with a scalar output built only from ops differentiable everywhere on their
    /// (guarded) domain: for gradient tests against finite differences.
    pub fn smooth() -> GenConfig {
        GenConfig { non_smooth: false, domain: DomainPolicy::Guarded, scalar_output: true, ..GenConfig::default() }
    }
}

/// Number of random choices each step carries (reused cyclically when a step needs more).
const CHOICES: usize = 12;

/// One step of a recipe: random numbers that pick an op family, operands and attributes.
type Step = [u32; CHOICES];

/// Random well-typed graphs over f64 inputs named `x0, x1, …`, as configured.
pub fn arb_graph(config: GenConfig) -> impl Strategy<Value = Graph> {
    let shape = prop::collection::vec(1..=config.max_extent.max(1), 0..=config.max_rank);
    let inputs = prop::collection::vec(shape, 1..=config.max_inputs.max(1));
    let steps = prop::collection::vec(prop::array::uniform::<_, CHOICES>(any::<u32>()), 1..=config.max_steps.max(1));
    let outputs = prop::collection::vec(any::<u32>(), 1..=config.max_outputs.max(1));
    (inputs, steps, outputs).prop_map(move |(inputs, steps, outputs)| build(&config, &inputs, &steps, &outputs))
}

/// Values for every input of `graph`: f64 elements uniform in [−3, 3], i64 in 0..3, random bools.
pub fn arb_inputs(graph: &Graph) -> impl Strategy<Value = HashMap<String, Value>> + use<> {
    arb_inputs_in(graph, -3.0, 3.0)
}

/// Values for every input of `graph`, f64 elements uniform in [`lo`, `hi`].
pub fn arb_inputs_in(graph: &Graph, lo: f64, hi: f64) -> impl Strategy<Value = HashMap<String, Value>> + use<> {
    let per_input: Vec<BoxedStrategy<(String, Value)>> = graph
        .inputs()
        .iter()
        .map(|&id| {
            let name = graph.input_name(id).unwrap_or_default().to_string();
            let ty = graph.ty(id).clone();
            arb_value(ty, lo, hi).prop_map(move |v| (name.clone(), v)).boxed()
        })
        .collect();
    per_input.prop_map(|pairs| pairs.into_iter().collect())
}

/// A random value of type `ty`.
fn arb_value(ty: TensorType, lo: f64, hi: f64) -> BoxedStrategy<Value> {
    let dims: Vec<usize> = ty.shape.dims().to_vec();
    let n = ty.shape.size();
    match ty.dtype {
        DType::F64 => prop::collection::vec(lo..=hi, n).prop_map(move |v| Value::F64(array(&dims, v, 0.0))).boxed(),
        DType::I64 => prop::collection::vec(0i64..3, n).prop_map(move |v| Value::I64(array(&dims, v, 0))).boxed(),
        DType::Bool => {
            prop::collection::vec(any::<bool>(), n).prop_map(move |v| Value::Bool(array(&dims, v, false))).boxed()
        }
    }
}

/// An array of shape `dims` from `data` (whose length is the shape's size).
fn array<T: Clone>(dims: &[usize], data: Vec<T>, fill: T) -> ArrayD<T> {
    ArrayD::from_shape_vec(dims.to_vec(), data).unwrap_or_else(|_| ArrayD::from_elem(dims.to_vec(), fill))
}

/// Random graphs together with values for their inputs.
pub fn arb_graph_with_inputs(config: GenConfig) -> impl Strategy<Value = (Graph, HashMap<String, Value>)> {
    arb_graph(config).prop_flat_map(|g| {
        let inputs = arb_inputs(&g);
        (Just(g), inputs)
    })
}

/// One graph drawn from [`arb_graph`] with a fixed seed (for benchmarks and examples).
pub fn sample_graph(config: GenConfig, seed: u64) -> Option<Graph> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    arb_graph(config).new_tree(&mut runner).ok().map(|tree| tree.current())
}

/// Builds the graph a recipe describes.
fn build(config: &GenConfig, inputs: &[Vec<usize>], steps: &[Step], outputs: &[u32]) -> Graph {
    let mut b = Builder {
        cfg: config,
        g: Graph::new("random"),
        f64s: Vec::new(),
        i64s: Vec::new(),
        bools: Vec::new(),
        used: HashSet::new(),
    };
    for (i, dims) in inputs.iter().enumerate() {
        if let Ok(id) = b.g.input(&format!("x{i}"), TensorType::new(DType::F64, dims.as_slice())) {
            b.f64s.push(id);
        }
    }
    let families = b.families();
    let mut last = b.f64s.last().copied();
    for step in steps {
        let mut ch = Choices { c: step, k: 0 };
        if families.is_empty() {
            break;
        }
        let family = families[ch.below(families.len())];
        if let Some(id) = b.family(family, &mut ch)
            && b.g.ty(id).dtype == DType::F64
        {
            last = Some(id);
        }
    }
    b.finish(last, outputs);
    b.g
}

#[derive(Clone, Copy, Debug)]
enum Family {
    Unary,
    Binary,
    Select,
    Cast,
    Reduce,
    Cumsum,
    Shape,
    Join,
    Slice,
    Gather,
    Linalg,
    Factor,
}

/// The random numbers of one step, consumed in order.
struct Choices<'s> {
    c: &'s Step,
    k: usize,
}

impl Choices<'_> {
    fn next(&mut self) -> u32 {
        // Past the end, reuse the numbers mixed with the round, so later picks still vary.
        let round = (self.k / CHOICES) as u32;
        let v = self.c[self.k % CHOICES] ^ round.wrapping_mul(0x9E37_79B9);
        self.k += 1;
        v
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.next() as usize % n }
    }

    fn flip(&mut self) -> bool {
        self.next() % 2 == 1
    }

    /// A value in [−3, 3] on a grid of 0.25 (exactly representable, so printing is short).
    fn value(&mut self) -> f64 {
        (self.below(25) as f64 - 12.0) * 0.25
    }
}

/// Where a guarded operand is mapped before an op that needs it there.
#[derive(Clone, Copy)]
enum Domain {
    /// (0.25, ∞): log, sqrt, reciprocal, lgamma, …
    Positive,
    /// (−∞, −0.25): log1mexp.
    Negative,
    /// (0.05, 0.95): logit.
    Probability,
    /// (−1, 1) ⊂ (−π/2, π/2): tan.
    HalfPi,
    /// (−3, 3): arguments of exp / expm1 and exponents of pow, so values stay finite.
    Bounded,
}

/// How the generator treats a unary op.
enum UnaryClass {
    /// Defined and differentiable everywhere, values stay moderate.
    Smooth,
    /// Defined everywhere but overflows for large arguments.
    Growth,
    /// Not differentiable everywhere.
    NonSmooth,
    /// Defined (or smooth) only on a domain.
    Restricted(Domain),
    /// Returns or takes bool: generated by the `select` family.
    Predicate,
}

/// The class of every unary op. Exhaustive, so a new op must be classified here.
fn classify(u: UnaryOp) -> UnaryClass {
    use UnaryOp::*;
    match u {
        Neg | Square | Sin | Cos | Tanh | Sigmoid | Softplus | LogSigmoid | Erf | Erfc => UnaryClass::Smooth,
        Exp | Expm1 => UnaryClass::Growth,
        Abs | Sign | Floor | Ceil => UnaryClass::NonSmooth,
        Log | Log1p | Sqrt | Reciprocal | Lgamma | Digamma | Trigamma => UnaryClass::Restricted(Domain::Positive),
        Tan => UnaryClass::Restricted(Domain::HalfPi),
        Logit => UnaryClass::Restricted(Domain::Probability),
        Log1mexp => UnaryClass::Restricted(Domain::Negative),
        IsFinite | Not => UnaryClass::Predicate,
    }
}

struct Builder<'c> {
    cfg: &'c GenConfig,
    g: Graph,
    /// f64 values usable as operands (inputs and op results, not constants).
    f64s: Vec<NodeId>,
    /// i64 op results.
    i64s: Vec<NodeId>,
    /// bool op results.
    bools: Vec<NodeId>,
    /// Nodes some op uses as an operand.
    used: HashSet<NodeId>,
}

impl Builder<'_> {
    fn families(&self) -> Vec<Family> {
        let f = &self.cfg.families;
        let smooth = self.cfg.non_smooth;
        [
            (f.unary, Family::Unary),
            (f.binary, Family::Binary),
            (f.select && smooth, Family::Select),
            (f.cast && smooth, Family::Cast),
            (f.reduce, Family::Reduce),
            (f.cumsum, Family::Cumsum),
            (f.shape, Family::Shape),
            (f.join, Family::Join),
            (f.slice, Family::Slice),
            (f.gather, Family::Gather),
            (f.linalg, Family::Linalg),
            (f.factor, Family::Factor),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        // Elementwise ops make up most of real graphs (and have the most variants): weight them.
        .flat_map(|(_, fam)| {
            std::iter::repeat_n(fam, if matches!(fam, Family::Unary | Family::Binary) { 3 } else { 1 })
        })
        .collect()
    }

    fn family(&mut self, family: Family, ch: &mut Choices<'_>) -> Option<NodeId> {
        match family {
            Family::Unary => self.unary(ch),
            Family::Binary => self.binary(ch),
            Family::Select => self.select(ch),
            Family::Cast => self.cast(ch),
            Family::Reduce => self.reduce(ch),
            Family::Cumsum => self.cumsum(ch),
            Family::Shape => self.shape_op(ch),
            Family::Join => self.join(ch),
            Family::Slice => self.slice(ch),
            Family::Gather => self.gather(ch),
            Family::Linalg => self.linalg(ch),
            Family::Factor => self.factor(ch),
        }
    }

    // ---- plumbing ----

    /// Adds `op` if it types and stays within the size limits; records the result by dtype.
    fn add(&mut self, op: Op, operands: &[NodeId]) -> Option<NodeId> {
        let ty = {
            let types: SmallVec<[&TensorType; 3]> = operands.iter().map(|&o| self.g.ty(o)).collect();
            infer(&op, &types).ok()?
        };
        if ty.shape.size() > self.cfg.max_elements || ty.shape.rank() > self.cfg.max_result_rank {
            return None;
        }
        let id = self.g.add(op, operands).ok()?;
        self.used.extend(operands.iter().copied());
        let pool = match ty.dtype {
            DType::F64 => &mut self.f64s,
            DType::I64 => &mut self.i64s,
            DType::Bool => &mut self.bools,
        };
        if !pool.contains(&id) {
            pool.push(id);
        }
        Some(id)
    }

    fn unary_op(&mut self, op: UnaryOp, x: NodeId) -> Option<NodeId> {
        self.add(Op::Unary(op), &[x])
    }

    fn binary_op(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Option<NodeId> {
        self.add(Op::Binary(op), &[a, b])
    }

    fn scalar(&mut self, x: f64) -> NodeId {
        self.g.constant(Constant::f64(x))
    }

    fn dims(&self, id: NodeId) -> Vec<usize> {
        self.g.ty(id).shape.dims().to_vec()
    }

    /// An f64 operand, biased towards results nothing uses yet, so that most of what is
    /// built ends up live and graphs grow deep, not only wide.
    fn pick(&self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let n = self.f64s.len();
        if n == 0 {
            return None;
        }
        if ch.below(3) > 0 {
            let unused: Vec<NodeId> = self.f64s.iter().copied().filter(|id| !self.used.contains(id)).collect();
            if !unused.is_empty() {
                return Some(unused[ch.below(unused.len())]);
            }
        }
        Some(self.f64s[ch.below(n)])
    }

    /// An f64 operand whose type satisfies `pred`.
    fn pick_where(&self, ch: &mut Choices<'_>, pred: impl Fn(&TensorType) -> bool) -> Option<NodeId> {
        let fits: Vec<NodeId> = self.f64s.iter().copied().filter(|&id| pred(self.g.ty(id))).collect();
        if fits.is_empty() {
            return None;
        }
        let i = if ch.flip() { fits.len() - 1 } else { ch.below(fits.len()) };
        Some(fits[i])
    }

    /// A second operand broadcasting with `a`: another value, a scalar or tensor constant,
    /// or `a` itself.
    fn partner(&mut self, ch: &mut Choices<'_>, a: NodeId) -> Option<NodeId> {
        let shape = self.g.ty(a).shape.clone();
        match ch.below(4) {
            0 => Some(self.scalar(ch.value())),
            1 if self.cfg.families.constants => {
                // A constant of `a`'s shape with some axes collapsed to 1 (or dropped in front).
                let mut dims: Vec<usize> = shape.dims().iter().map(|&d| if ch.flip() { 1 } else { d }).collect();
                let drop = ch.below(dims.len() + 1);
                dims.drain(..drop);
                let n: usize = dims.iter().product();
                let data: Vec<f64> = (0..n).map(|_| ch.value()).collect();
                let c = Constant::new(Shape::new(&dims), ConstData::F64(Arc::from(data)))?;
                Some(self.g.constant(c))
            }
            2 => Some(a),
            _ => self.pick_where(ch, |t| t.shape.broadcast(&shape).is_some()).or(Some(a)),
        }
    }

    /// `x` mapped into `domain`.
    fn guard(&mut self, domain: Domain, x: NodeId) -> Option<NodeId> {
        match domain {
            Domain::Positive => self.positive(x),
            Domain::Negative => {
                let p = self.positive(x)?;
                self.unary_op(UnaryOp::Neg, p)
            }
            Domain::Probability => {
                let s = self.unary_op(UnaryOp::Sigmoid, x)?;
                let scale = self.scalar(0.9);
                let scaled = self.binary_op(BinaryOp::Mul, s, scale)?;
                let shift = self.scalar(0.05);
                self.binary_op(BinaryOp::Add, scaled, shift)
            }
            Domain::HalfPi => self.unary_op(UnaryOp::Tanh, x),
            Domain::Bounded => {
                let t = self.unary_op(UnaryOp::Tanh, x)?;
                let three = self.scalar(3.0);
                self.binary_op(BinaryOp::Mul, t, three)
            }
        }
    }

    /// `softplus(x) + 0.25`: positive and bounded away from 0.
    fn positive(&mut self, x: NodeId) -> Option<NodeId> {
        let s = self.unary_op(UnaryOp::Softplus, x)?;
        let c = self.scalar(0.25);
        self.binary_op(BinaryOp::Add, s, c)
    }

    // ---- families ----

    fn unary(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let options: Vec<(UnaryOp, Option<Domain>)> = UnaryOp::ALL
            .iter()
            .filter_map(|&u| match classify(u) {
                UnaryClass::Smooth => Some((u, None)),
                UnaryClass::Growth => Some((u, Some(Domain::Bounded))),
                UnaryClass::NonSmooth => self.cfg.non_smooth.then_some((u, None)),
                UnaryClass::Restricted(d) => (self.cfg.domain != DomainPolicy::Excluded).then_some((u, Some(d))),
                UnaryClass::Predicate => None,
            })
            .collect();
        let (op, domain) = options[ch.below(options.len())];
        let mut x = self.pick(ch)?;
        if let (Some(d), DomainPolicy::Guarded) = (domain, self.cfg.domain) {
            x = self.guard(d, x)?;
        }
        self.unary_op(op, x)
    }

    fn binary(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        use BinaryOp::*;
        let mut options = vec![Add, Sub, Mul, LogAddExp];
        if self.cfg.non_smooth {
            options.extend([Maximum, Minimum]);
        }
        if self.cfg.domain != DomainPolicy::Excluded {
            options.extend([Div, Pow]);
        }
        let op = options[ch.below(options.len())];
        let a = self.pick(ch)?;
        let b = self.partner(ch, a)?;
        let (mut a, mut b) = if ch.flip() { (b, a) } else { (a, b) };
        if self.cfg.domain == DomainPolicy::Guarded {
            match op {
                Div => b = self.positive(b)?,
                Pow => {
                    a = self.positive(a)?;
                    b = self.guard(Domain::Bounded, b)?;
                }
                _ => {}
            }
        }
        self.binary_op(op, a, b)
    }

    fn select(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        use BinaryOp::*;
        let a = self.pick(ch)?;
        let mut cond = match ch.below(4) {
            0 => self.unary_op(UnaryOp::IsFinite, a)?,
            _ => {
                let cmp = [Lt, Le, Gt, Ge, Eq, Ne][ch.below(6)];
                let c = self.partner(ch, a)?;
                self.binary_op(cmp, a, c)?
            }
        };
        match ch.below(4) {
            0 => cond = self.unary_op(UnaryOp::Not, cond)?,
            1 => {
                let shape = self.g.ty(cond).shape.clone();
                let other: Vec<NodeId> =
                    self.bools.iter().copied().filter(|&o| self.g.ty(o).shape.broadcast(&shape).is_some()).collect();
                if !other.is_empty() {
                    let o = other[ch.below(other.len())];
                    cond = self.binary_op([And, Or][ch.below(2)], cond, o)?;
                }
            }
            _ => {}
        }
        if ch.below(3) == 0 {
            return self.add(Op::Cast { to: DType::F64 }, &[cond]);
        }
        let t = self.partner(ch, a)?;
        let e = self.partner(ch, a)?;
        self.add(Op::Where, &[cond, t, e])
    }

    fn cast(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let x = self.pick(ch)?;
        let mut i = self.add(Op::Cast { to: DType::I64 }, &[x])?;
        i = match ch.below(5) {
            0 => {
                let c = self.g.constant(Constant::i64(ch.below(5) as i64 - 2));
                self.binary_op([BinaryOp::Add, BinaryOp::Mul, BinaryOp::Maximum][ch.below(3)], i, c)?
            }
            1 => self.unary_op([UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Square][ch.below(3)], i)?,
            2 if !self.dims(i).is_empty() => {
                let axis = ch.below(self.dims(i).len());
                self.add(Op::Cumsum { axis, reverse: ch.flip() }, &[i])?
            }
            3 => {
                let rank = self.dims(i).len();
                let axes = random_axes(ch, rank);
                self.add(Op::Reduce { kind: ReduceOp::Sum, axes, keepdims: ch.flip() }, &[i])?
            }
            _ => i,
        };
        self.add(Op::Cast { to: DType::F64 }, &[i])
    }

    fn reduce(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        use ReduceOp::*;
        let kinds: &[ReduceOp] =
            if self.cfg.non_smooth { &[Sum, Mean, LogSumExp, Prod, Max, Min] } else { &[Sum, Mean, LogSumExp, Prod] };
        let kind = kinds[ch.below(kinds.len())];
        let x = self.pick(ch)?;
        let axes = random_axes(ch, self.dims(x).len());
        self.add(Op::Reduce { kind, axes, keepdims: ch.flip() }, &[x])
    }

    fn cumsum(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let x = self.pick_where(ch, |t| t.shape.rank() >= 1)?;
        let axis = ch.below(self.dims(x).len());
        self.add(Op::Cumsum { axis, reverse: ch.flip() }, &[x])
    }

    fn shape_op(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        match ch.below(5) {
            0 => {
                let x = self.pick(ch)?;
                let shapes = reshapes(self.g.ty(x).shape.size());
                let shape = shapes[ch.below(shapes.len())].clone();
                self.add(Op::Reshape { shape: Shape::new(&shape) }, &[x])
            }
            1 => {
                let x = self.pick(ch)?;
                let mut perm: Vec<usize> = (0..self.dims(x).len()).collect();
                for i in (1..perm.len()).rev() {
                    perm.swap(i, ch.below(i + 1));
                }
                self.add(Op::Transpose { perm: perm.into_iter().collect() }, &[x])
            }
            2 => {
                let x = self.pick(ch)?;
                let axis = ch.below(self.dims(x).len() + 1);
                self.add(Op::ExpandDims { axis }, &[x])
            }
            3 => {
                let x = self.pick_where(ch, |t| t.shape.dims().contains(&1))?;
                let ones: Vec<usize> =
                    self.dims(x).iter().enumerate().filter(|(_, d)| **d == 1).map(|(i, _)| i).collect();
                let mut axes: SmallVec<[usize; 4]> = ones.iter().copied().filter(|_| ch.flip()).collect();
                if axes.is_empty() {
                    axes.push(ones[ch.below(ones.len())]);
                }
                self.add(Op::Squeeze { axes }, &[x])
            }
            _ => {
                let x = self.pick(ch)?;
                let extent = self.cfg.max_extent.max(1);
                let mut dims: Vec<usize> =
                    self.dims(x).iter().map(|&d| if d == 1 { ch.below(extent) + 1 } else { d }).collect();
                if ch.flip() {
                    dims.insert(0, ch.below(extent) + 1);
                }
                self.add(Op::BroadcastTo { shape: Shape::new(&dims) }, &[x])
            }
        }
    }

    fn join(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        if ch.flip() {
            let x = self.pick_where(ch, |t| t.shape.rank() >= 1)?;
            let ty = self.g.ty(x).clone();
            let axis = ch.below(ty.shape.rank());
            let fits = |t: &TensorType| {
                t.shape.rank() == ty.shape.rank()
                    && t.shape.dims().iter().zip(ty.shape.dims()).enumerate().all(|(i, (a, b))| i == axis || a == b)
            };
            let mut operands = vec![x];
            for _ in 0..ch.below(3) {
                operands.push(self.pick_where(ch, fits).unwrap_or(x));
            }
            if operands.len() == 1 {
                operands.push(x);
            }
            self.add(Op::Concatenate { axis }, &operands)
        } else {
            let x = self.pick(ch)?;
            let ty = self.g.ty(x).clone();
            let axis = ch.below(ty.shape.rank() + 1);
            let mut operands = vec![x];
            for _ in 0..ch.below(3) {
                operands.push(self.pick_where(ch, |t| *t == ty).unwrap_or(x));
            }
            self.add(Op::Stack { axis }, &operands)
        }
    }

    fn slice(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let x = self.pick(ch)?;
        let mut ranges: SmallVec<[SliceRange; 4]> = SmallVec::new();
        for d in self.dims(x) {
            let step = [1, -1, 2, -2, 3][ch.below(5)];
            let n = d as i64;
            let bound = |ch: &mut Choices<'_>| if ch.flip() { None } else { Some(ch.below(2 * d + 1) as i64 - n) };
            let (start, stop) = (bound(ch), bound(ch));
            let range = match SliceRange::from_python(start, stop, Some(step), d) {
                Ok(r) if r.len > 0 => r,
                _ => SliceRange::from_python(None, None, Some(step), d).ok()?,
            };
            ranges.push(range);
        }
        self.add(Op::Slice { ranges }, &[x])
    }

    fn gather(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        if ch.flip() {
            let a = self.pick_where(ch, |t| t.shape.rank() >= 1)?;
            let dims = self.dims(a);
            let axis = ch.below(dims.len());
            let idx_dims: Vec<usize> = (0..ch.below(3)).map(|_| ch.below(3) + 1).collect();
            let idx = self.index_constant(ch, &idx_dims, dims[axis])?;
            self.add(Op::Gather { axis }, &[a, idx])
        } else {
            let u = self.pick(ch)?;
            let dims = self.dims(u);
            let axis = ch.below(dims.len() + 1);
            let k = ch.below((dims.len() - axis).min(2) + 1);
            let size = ch.below(self.cfg.max_extent.max(1)) + 1;
            let idx = self.index_constant(ch, &dims[axis..axis + k], size)?;
            self.add(Op::ScatterAdd { axis, size }, &[u, idx])
        }
    }

    /// An i64 constant of shape `dims` with entries in `0..bound` (repeats likely).
    fn index_constant(&mut self, ch: &mut Choices<'_>, dims: &[usize], bound: usize) -> Option<NodeId> {
        let n: usize = dims.iter().product();
        let data: Vec<i64> = (0..n).map(|_| ch.below(bound) as i64).collect();
        let c = Constant::new(Shape::new(dims), ConstData::I64(Arc::from(data)))?;
        Some(self.g.constant(c))
    }

    fn linalg(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        match ch.below(4) {
            0 => self.matmul(ch),
            1 => {
                let a = self.pick_where(ch, |t| t.shape.rank() == 1)?;
                let b = self.pick_where(ch, |t| t.shape.rank() == 1)?;
                self.add(Op::Outer, &[a, b])
            }
            2 => {
                let m = match self.pick_where(ch, |t| matches!(t.shape.dims(), [m, n] if m == n)) {
                    Some(m) => m,
                    None => {
                        let v = self.pick_where(ch, |t| t.shape.rank() == 1)?;
                        self.add(Op::Outer, &[v, v])?
                    }
                };
                self.add(Op::Diag, &[m])
            }
            _ => {
                let v = self.pick_where(ch, |t| t.shape.rank() == 1)?;
                self.add(Op::DiagMatrix, &[v])
            }
        }
    }

    /// One of the four matmul forms, the partner taken from the pool when one fits, else
    /// derived from the first operand.
    fn matmul(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let (a_rank, b_rank) = [(1, 1), (2, 1), (1, 2), (2, 2)][ch.below(4)];
        let a = self.pick_where(ch, |t| t.shape.rank() == a_rank)?;
        let inner = *self.dims(a).last()?;
        let fits = |t: &TensorType| t.shape.rank() == b_rank && t.shape.dims()[0] == inner;
        let b = match (self.pick_where(ch, fits), a_rank, b_rank) {
            (Some(b), _, _) => b,
            (None, 1, 1) => a,
            (None, 2, 1) => {
                self.add(Op::Reduce { kind: ReduceOp::Sum, axes: [0].into_iter().collect(), keepdims: false }, &[a])?
            }
            (None, 1, _) => self.add(Op::Outer, &[a, a])?,
            (None, _, _) => self.add(Op::Transpose { perm: [1, 0].into_iter().collect() }, &[a])?,
        };
        self.add(Op::Matmul, &[a, b])
    }

    /// A symmetric positive definite matrix from `x`: `x xᵀ + I` (x flattened to a vector
    /// first unless it is a matrix).
    fn spd(&mut self, x: NodeId) -> Option<NodeId> {
        let dims = self.dims(x);
        let gram = if dims.len() == 2 {
            let xt = self.add(Op::Transpose { perm: [1, 0].into_iter().collect() }, &[x])?;
            self.add(Op::Matmul, &[x, xt])?
        } else {
            let v = if dims.len() == 1 {
                x
            } else {
                self.add(Op::Reshape { shape: Shape::new(&[dims.iter().product()]) }, &[x])?
            };
            self.add(Op::Outer, &[v, v])?
        };
        let n = self.dims(gram)[0];
        let eye: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { 1.0 } else { 0.0 }).collect();
        let eye = self.g.constant(Constant::new(Shape::new(&[n, n]), ConstData::F64(Arc::from(eye)))?);
        self.add(Op::Binary(BinaryOp::Add), &[gram, eye])
    }

    fn factor(&mut self, ch: &mut Choices<'_>) -> Option<NodeId> {
        let x = self.pick(ch)?;
        let s = self.spd(x)?;
        let l = self.add(Op::Cholesky, &[s])?;
        let n = self.dims(l)[0];
        match ch.below(3) {
            0 => self.add(Op::LogDetChol, &[l]),
            choice => {
                let b = self.pick_where(ch, |t| matches!(t.shape.dims(), [m] | [m, _] if *m == n));
                let b = match b {
                    Some(b) => b,
                    None => self.add(Op::Diag, &[s])?,
                };
                if choice == 1 {
                    self.add(Op::TriangularSolve { lower: true }, &[l, b])
                } else {
                    let u = self.add(Op::Transpose { perm: [1, 0].into_iter().collect() }, &[l])?;
                    self.add(Op::TriangularSolve { lower: false }, &[u, b])
                }
            }
        }
    }

    /// Sets the outputs: the last f64 result first (so the graph is deep), then random picks
    /// among the f64 results nothing uses yet (so little of what was built is dead), or among
    /// all f64 values when there are none.
    fn finish(&mut self, last: Option<NodeId>, picks: &[u32]) {
        let sinks: Vec<NodeId> = self
            .f64s
            .iter()
            .copied()
            .filter(|&id| !self.used.contains(&id) && Some(id) != last && !self.g.inputs().contains(&id))
            .collect();
        let candidates = if sinks.is_empty() { self.f64s.clone() } else { sinks };
        let mut outputs: Vec<NodeId> = last.into_iter().collect();
        for &p in picks.iter().skip(1) {
            if !candidates.is_empty() {
                outputs.push(candidates[p as usize % candidates.len()]);
            }
        }
        if self.cfg.scalar_output {
            let mut total: Option<NodeId> = None;
            for o in outputs {
                let rank = self.g.ty(o).shape.rank();
                let Some(s) =
                    self.add(Op::Reduce { kind: ReduceOp::Sum, axes: (0..rank).collect(), keepdims: false }, &[o])
                else {
                    continue;
                };
                total = match total {
                    None => Some(s),
                    Some(t) => self.add(Op::Binary(BinaryOp::Add), &[t, s]).or(Some(t)),
                };
            }
            outputs = total.into_iter().collect();
        }
        // Ids come from this graph, so setting them cannot fail.
        let _ = self.g.set_outputs(&outputs);
    }
}

/// A random subset of `0..rank`, sorted.
fn random_axes(ch: &mut Choices<'_>, rank: usize) -> SmallVec<[usize; 4]> {
    (0..rank).filter(|_| ch.flip()).collect()
}

/// Shapes with `size` elements: flat, split in two at each divisor, with unit axes.
fn reshapes(size: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![size], vec![size, 1], vec![1, size]];
    if size == 1 {
        out.push(Vec::new());
    }
    for d in 2..size {
        if size.is_multiple_of(d) {
            out.push(vec![d, size / d]);
            if size / d > 2 && (size / d).is_multiple_of(2) {
                out.push(vec![d, 2, size / d / 2]);
            }
        }
    }
    out
}
