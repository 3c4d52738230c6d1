//! Symbolic gradients: every op's VJP against central finite differences of the reference
//! interpreter (first and second order), the example log densities against hand-derived
//! closed forms, snapshots of their gradient graphs, and the error cases.
//!
//! Finite differences and tolerances. Each input element xᵢ is stepped by
//! h = 1e-6·max(1, |xᵢ|) and ∂f/∂xᵢ ≈ (f(x + h) − f(x − h)) / 2h. The truncation error is
//! h²·|f‴|/6 ≲ 2e-13·|f‴|; on the domains used below |f‴| ≲ 1e4 (the worst is 1/x on
//! [0.2, 3]: 6/x⁴ ≤ 3750), so at most ~2e-9. The rounding error is about k·ε·|f|/h where f is
//! summed from k ≲ 30 terms, i.e. ≲ 7e-9·|f|. A correct gradient therefore agrees within
//! `RTOL·|fd| + ATOL·max(1, |f|)` with RTOL = 1e-6 and ATOL = 1e-7 (≥ 10× margin), while a
//! wrong rule is off by O(1). Linear-algebra ops get a looser RTOL (1e-5) because their
//! second-order terms are larger (condition numbers up to ~10 on the matrices drawn here).

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tessera_graph::{
    BinaryOp, DType, GradError, Graph, GraphBuilder, NodeId, Op, ReduceOp, UnaryOp, Value, Var, eval, grad, verify,
    with_gradients,
};

type Inputs = HashMap<String, Value>;

const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-7;
const RTOL_LINALG: f64 = 1e-5;

// ── finite-difference machinery ─────────────────────────────────────────────────────────

/// The first output of `g` as a scalar.
fn eval_cost(g: &Graph, inputs: &Inputs) -> f64 {
    let out = eval(g, inputs).unwrap_or_else(|e| panic!("eval failed: {e}"));
    out[0].to_scalar_f64().expect("scalar cost")
}

/// Central finite differences of the first output of `g` with respect to input `name`.
fn fd_gradient(g: &Graph, inputs: &Inputs, name: &str) -> ArrayD<f64> {
    let x = inputs[name].as_f64().expect("f64 input").clone();
    let shape = x.shape().to_vec();
    let flat: Vec<f64> = x.iter().copied().collect();
    let mut out = Vec::with_capacity(flat.len());
    for i in 0..flat.len() {
        let h = 1e-6 * flat[i].abs().max(1.0);
        let at = |xi: f64| {
            let mut v = flat.clone();
            v[i] = xi;
            let mut inp = inputs.clone();
            inp.insert(name.to_string(), Value::F64(ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap()));
            eval_cost(g, &inp)
        };
        let (xp, xm) = (flat[i] + h, flat[i] - h);
        out.push((at(xp) - at(xm)) / (xp - xm));
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).unwrap()
}

/// Checks the symbolic gradient of `g`'s first output w.r.t. `wrt` against finite
/// differences; returns a description of the first mismatch.
fn check_gradient(g: &Graph, inputs: &Inputs, wrt: &[&str], rtol: f64) -> Result<(), String> {
    let gg = with_gradients(g, wrt).map_err(|e| format!("grad failed: {e}"))?;
    verify(&gg).map_err(|e| format!("gradient graph does not verify: {e}"))?;
    let outs = eval(&gg, inputs).map_err(|e| format!("eval of gradient graph failed: {e}"))?;
    let n_out = g.outputs().len();
    let f = outs[0].to_scalar_f64().ok_or("cost is not scalar")?;
    let atol = ATOL * f.abs().max(1.0);
    for (k, name) in wrt.iter().enumerate() {
        let analytic = outs[n_out + k].as_f64().ok_or("gradient is not f64")?;
        let fd = fd_gradient(g, inputs, name);
        if analytic.shape() != fd.shape() {
            return Err(format!("%{name}: gradient shape {:?}, input shape {:?}", analytic.shape(), fd.shape()));
        }
        for (i, (a, d)) in analytic.iter().zip(fd.iter()).enumerate() {
            // written so that a NaN on either side fails
            let within = (a - d).abs() <= rtol * d.abs() + atol;
            if !within {
                return Err(format!("%{name}[{i}]: symbolic {a}, finite differences {d} (f = {f})"));
            }
        }
    }
    Ok(())
}

/// A graph whose cost is Σₖ vₖ·∇ₖf for random directions vₖ: its gradient is the
/// Hessian–vector product H v, so checking it against finite differences checks the
/// gradient of the gradient.
fn hessian_vector_graph(g: &Graph, wrt: &[&str], rng: &mut StdRng) -> Result<Graph, String> {
    let mut gg = with_gradients(g, wrt).map_err(|e| format!("grad failed: {e}"))?;
    let n_out = g.outputs().len();
    let grads: Vec<NodeId> = gg.outputs()[n_out..].to_vec();
    let mut total: Option<NodeId> = None;
    for gi in grads {
        let dims = gg.ty(gi).shape.dims().to_vec();
        let v = gg.constant(tessera_graph::constant_from_array(&uniform(rng, &dims, -1.0, 1.0)));
        let prod = gg.add(Op::Binary(BinaryOp::Mul), &[gi, v]).map_err(|e| e.to_string())?;
        let axes = (0..dims.len()).collect();
        let s =
            gg.add(Op::Reduce { kind: ReduceOp::Sum, axes, keepdims: false }, &[prod]).map_err(|e| e.to_string())?;
        total = Some(match total {
            Some(t) => gg.add(Op::Binary(BinaryOp::Add), &[t, s]).map_err(|e| e.to_string())?,
            None => s,
        });
    }
    gg.set_outputs(&[total.ok_or("no wrt")?]).map_err(|e| e.to_string())?;
    Ok(gg)
}

fn check_second_order(g: &Graph, inputs: &Inputs, wrt: &[&str], rng: &mut StdRng, rtol: f64) -> Result<(), String> {
    let hv = hessian_vector_graph(g, wrt, rng)?;
    check_gradient(&hv, inputs, wrt, rtol).map_err(|e| format!("second order: {e}"))
}

// ── random data ─────────────────────────────────────────────────────────────────────────

fn uniform(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// Magnitudes in [lo, hi] with random signs (away from zero).
fn signed(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|_| rng.random_range(lo..hi) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn random_shape(rng: &mut StdRng, min_rank: usize, max_rank: usize) -> Vec<usize> {
    let rank = rng.random_range(min_rank..=max_rank);
    (0..rank).map(|_| rng.random_range(1..=3)).collect()
}

/// A shape that broadcasts to `shape`: some leading axes dropped, some extents set to 1.
fn broadcastable_to(rng: &mut StdRng, shape: &[usize]) -> Vec<usize> {
    let drop = rng.random_range(0..=shape.len());
    shape[drop..].iter().map(|&d| if rng.random_bool(0.35) { 1 } else { d }).collect()
}

fn inputs_of(pairs: Vec<(&str, ArrayD<f64>)>) -> Inputs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), Value::F64(v))).collect()
}

/// Σ w·y with random weights of a shape broadcasting to y's (a lazy, non-trivial cotangent),
/// or plain Σ y (a scalar cotangent) a third of the time.
fn weighted_sum(b: &GraphBuilder, y: &Var, rng: &mut StdRng) -> Var {
    let dims = y.dims();
    let all: Vec<usize> = (0..dims.len()).collect();
    if rng.random_range(0..3) == 0 {
        return y.sum(&all);
    }
    let w_dims = broadcastable_to(rng, &dims);
    let w = b.array(&uniform(rng, &w_dims, -1.5, 1.5));
    (y * &w).sum(&all)
}

fn proptest_config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x7e55e7a), failure_persistence: None, ..Config::default() }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

// ── elementwise ops ─────────────────────────────────────────────────────────────────────

/// Random operand values inside `u`'s domain and away from its kinks and poles.
fn unary_point(u: UnaryOp, rng: &mut StdRng, shape: &[usize]) -> ArrayD<f64> {
    use UnaryOp::*;
    match u {
        Abs => signed(rng, shape, 0.2, 3.0),
        Log | Sqrt | Reciprocal => uniform(rng, shape, 0.2, 3.0),
        Log1p => uniform(rng, shape, -0.8, 3.0),
        Tan => uniform(rng, shape, -1.2, 1.2),
        Log1mexp => uniform(rng, shape, -3.0, -0.1),
        Logit => uniform(rng, shape, 0.05, 0.95),
        Lgamma | Digamma | Trigamma => uniform(rng, shape, 0.3, 5.0),
        // piecewise constant: stay between the integers
        Floor | Ceil => uniform(rng, shape, -3.0, 3.0).mapv(|x| x.floor() + 0.2 + 0.6 * (x - x.floor())),
        Sign => signed(rng, shape, 0.2, 3.0),
        _ => uniform(rng, shape, -3.0, 3.0),
    }
}

/// Unary ops with an f64 result (isfinite and not are bool-valued).
fn float_unary_ops() -> Vec<UnaryOp> {
    UnaryOp::ALL.iter().copied().filter(|u| !matches!(u, UnaryOp::IsFinite | UnaryOp::Not)).collect()
}

fn unary_case(u: UnaryOp, seed: u64) -> (Graph, Inputs, StdRng) {
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = random_shape(&mut rng, 0, 3);
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &shape);
    let cost = weighted_sum(&b, &x.unary(u), &mut rng);
    let g = b.finish(&[&cost]).unwrap();
    let inputs = inputs_of(vec![("x", unary_point(u, &mut rng, &shape))]);
    (g, inputs, rng)
}

proptest! {
    #![proptest_config(proptest_config(32))]

    #[test]
    fn unary_gradients_match_finite_differences(seed in any::<u64>()) {
        for u in float_unary_ops() {
            if u == UnaryOp::Trigamma {
                continue; // no rule: see trigamma_gradient_is_a_clear_error
            }
            let (g, inputs, mut rng) = unary_case(u, seed);
            check_gradient(&g, &inputs, &["x"], RTOL).map_err(|e| fail(format!("{}: {e}", u.name())))?;
            if u != UnaryOp::Digamma {
                check_second_order(&g, &inputs, &["x"], &mut rng, RTOL)
                    .map_err(|e| fail(format!("{}: {e}", u.name())))?;
            }
        }
    }
}

/// Random operand values for binary op `op`, away from poles, kinks and ties.
fn binary_points(op: BinaryOp, rng: &mut StdRng, sa: &[usize], sb: &[usize]) -> (ArrayD<f64>, ArrayD<f64>) {
    use BinaryOp::*;
    match op {
        Div => (uniform(rng, sa, -3.0, 3.0), signed(rng, sb, 0.5, 2.0)),
        Pow => (uniform(rng, sa, 0.3, 3.0), uniform(rng, sb, -2.0, 2.0)),
        // a on the quarter grid, b on the three-quarter grid: never within 0.5 of each other
        Maximum | Minimum => (
            uniform(rng, sa, -3.0, 3.0).mapv(|x| x.floor() + 0.25),
            uniform(rng, sb, -3.0, 3.0).mapv(|x| x.floor() + 0.75),
        ),
        _ => (uniform(rng, sa, -3.0, 3.0), uniform(rng, sb, -3.0, 3.0)),
    }
}

const DIFFERENTIABLE_BINARY: [BinaryOp; 8] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
    BinaryOp::LogAddExp,
];

proptest! {
    #![proptest_config(proptest_config(32))]

    /// Operand shapes are drawn so that each broadcasts to a common shape: gradients must
    /// sum over the broadcast axes.
    #[test]
    fn binary_gradients_match_finite_differences(seed in any::<u64>()) {
        for op in DIFFERENTIABLE_BINARY {
            let mut rng = StdRng::seed_from_u64(seed);
            let shape = random_shape(&mut rng, 0, 3);
            let (sa, sb) = (broadcastable_to(&mut rng, &shape), broadcastable_to(&mut rng, &shape));
            let b = GraphBuilder::new("f");
            let a = b.input("a", DType::F64, &sa);
            let c = b.input("b", DType::F64, &sb);
            let cost = weighted_sum(&b, &a.binary(op, &c), &mut rng);
            let g = b.finish(&[&cost]).unwrap();
            let (va, vb) = binary_points(op, &mut rng, &sa, &sb);
            let inputs = inputs_of(vec![("a", va), ("b", vb)]);
            let ctx = |e: String| fail(format!("{} {sa:?} {sb:?}: {e}", op.name()));
            check_gradient(&g, &inputs, &["a", "b"], RTOL).map_err(ctx)?;
            check_second_order(&g, &inputs, &["a", "b"], &mut rng, RTOL).map_err(ctx)?;
        }
    }

    #[test]
    fn where_routes_the_cotangent_by_condition(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let shape = random_shape(&mut rng, 0, 3);
        let (sc, sa, sb) =
            (broadcastable_to(&mut rng, &shape), broadcastable_to(&mut rng, &shape), broadcastable_to(&mut rng, &shape));
        let b = GraphBuilder::new("f");
        let cond = b.array(&uniform(&mut rng, &sc, -1.0, 1.0)).gt(&b.scalar(0.0));
        let x = b.input("a", DType::F64, &sa);
        let y = b.input("b", DType::F64, &sb);
        let cost = weighted_sum(&b, &Var::select(&cond, &x.exp(), &(&y * &y)), &mut rng);
        let g = b.finish(&[&cost]).unwrap();
        let inputs = inputs_of(vec![("a", uniform(&mut rng, &sa, -1.0, 1.0)), ("b", uniform(&mut rng, &sb, -1.0, 1.0))]);
        check_gradient(&g, &inputs, &["a", "b"], RTOL).map_err(fail)?;
        check_second_order(&g, &inputs, &["a", "b"], &mut rng, RTOL).map_err(fail)?;
    }
}

#[test]
fn pow_with_a_constant_integer_exponent_works_for_negative_bases() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[4]);
    let cost = (x.powf(3.0) + x.powf(2.0)).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let xs = ArrayD::from_shape_vec(IxDyn(&[4]), vec![-2.0, -0.5, 0.0, 1.5]).unwrap();
    let gg = with_gradients(&g, &["x"]).unwrap();
    let out = eval(&gg, &inputs_of(vec![("x", xs.clone())])).unwrap();
    let expected: Vec<f64> = xs.iter().map(|x| 3.0 * x * x + 2.0 * x).collect();
    assert_eq!(out[1].to_f64_vec(), expected);
}

#[test]
fn pow_exponent_gradient_is_zero_at_a_zero_base() {
    // d/db 0^b = 0 for b > 0 (the rule takes ln 0 as irrelevant there); a < 0 gives NaN.
    let b = GraphBuilder::new("f");
    let a = b.input("a", DType::F64, &[3]);
    let e = b.input("e", DType::F64, &[3]);
    let cost = a.pow(&e).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["e"]).unwrap();
    let inputs = inputs_of(vec![
        ("a", ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0, 2.0, -1.0]).unwrap()),
        ("e", ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.5, 2.0, 0.5]).unwrap()),
    ]);
    let de = eval(&gg, &inputs).unwrap()[1].to_f64_vec();
    assert_eq!(de[0], 0.0);
    assert!((de[1] - 4.0 * 2f64.ln()).abs() < 1e-14);
    assert!(de[2].is_nan());
}

#[test]
fn maximum_and_minimum_send_ties_to_the_first_operand() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2]);
    let y = b.input("y", DType::F64, &[2]);
    let cost = (x.maximum(&y) + x.minimum(&y) * 3.0).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["x", "y"]).unwrap();
    let v = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 2.0]).unwrap();
    let out = eval(&gg, &inputs_of(vec![("x", v.clone()), ("y", v)])).unwrap();
    assert_eq!(out[1].to_f64_vec(), vec![4.0, 4.0]);
    assert_eq!(out[2].to_f64_vec(), vec![0.0, 0.0]);
}

#[test]
fn stable_ops_have_stable_gradients_at_extreme_arguments() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let y = b.input("y", DType::F64, &[3]);
    let cost = (x.softplus() + x.log_sigmoid() + x.logaddexp(&y)).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["x", "y"]).unwrap();
    let xs = ArrayD::from_shape_vec(IxDyn(&[3]), vec![800.0, -800.0, 1000.0]).unwrap();
    let ys = ArrayD::from_shape_vec(IxDyn(&[3]), vec![800.0, 0.0, 1000.0]).unwrap();
    let out = eval(&gg, &inputs_of(vec![("x", xs), ("y", ys)])).unwrap();
    // softplus′ = σ(x), log_sigmoid′ = σ(−x), logaddexp′ = σ(x − y)
    assert_eq!(out[1].to_f64_vec(), vec![1.0 + 0.0 + 0.5, 0.0 + 1.0 + 0.0, 1.0 + 0.0 + 0.5]);
    assert_eq!(out[2].to_f64_vec(), vec![0.5, 1.0, 0.5]);
}

#[test]
fn floor_ceil_sign_and_comparisons_contribute_zero_without_nodes() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let int_part = x.floor() + x.ceil() + x.sign();
    let positive = Var::select(&x.gt(&b.scalar(0.0)), &b.scalar(1.0), &b.scalar(2.0));
    let truncated = x.cast(DType::I64).cast(DType::F64);
    let cost = (&int_part + &positive + &truncated + &x * 2.0).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["x"]).unwrap();
    let out =
        eval(&gg, &inputs_of(vec![("x", ArrayD::from_shape_vec(IxDyn(&[3]), vec![-1.5, 0.3, 2.7]).unwrap())])).unwrap();
    assert_eq!(out[1].to_f64_vec(), vec![2.0, 2.0, 2.0]);
    // The gradient is 2 broadcast to [3]: nothing is built for the piecewise-constant terms.
    let live = gg.live_nodes().len();
    let forward = g.live_nodes().len();
    assert!(live <= forward + 2, "forward {forward} nodes, with gradient {live}");
}

#[test]
fn gradient_of_an_unconnected_input_is_a_zeros_constant() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2]);
    let y = b.input("y", DType::F64, &[2, 3]);
    let cost = x.exp().sum(&[0]);
    let mut g = b.finish(&[&cost]).unwrap();
    let (cost, yid) = (g.outputs()[0], g.input_by_name("y").unwrap());
    let before = g.arena_len();
    let dy = grad(&mut g, cost, &[yid]).unwrap()[0];
    match &g.node(dy).op {
        Op::Const(c) => {
            assert_eq!(c.shape().dims(), &[2, 3]);
            assert_eq!(c.uniform_value(), Some(0.0));
        }
        other => panic!("expected a zeros constant, got {}", other.name()),
    }
    assert_eq!(g.arena_len(), before + 1, "only the zeros constant is added");
    let _ = y;
}

#[test]
fn cast_to_f64_is_the_identity_and_intermediate_wrt_nodes_give_total_derivatives() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2]);
    let y = &x.cast(DType::F64) * 2.0;
    let cost = y.exp().sum(&[0]);
    let mut g = b.finish(&[&cost]).unwrap();
    let grads = grad(&mut g, cost.id().unwrap(), &[x.id().unwrap(), y.id().unwrap()]).unwrap();
    let mut out_g = g.clone();
    out_g.set_outputs(&grads).unwrap();
    let xs = ndarray::arr1(&[0.5, -1.0]);
    let out = eval(&out_g, &inputs_of(vec![("x", xs.clone().into_dyn())])).unwrap();
    let ey: Vec<f64> = xs.iter().map(|v| (2.0 * v).exp()).collect();
    assert_eq!(out[0].to_f64_vec(), ey.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    assert_eq!(out[1].to_f64_vec(), ey);
}

#[test]
fn gradient_nodes_share_the_forward_pass() {
    // ∂/∂x Σ exp(x) = exp(x): hash-consing makes the gradient the forward node itself.
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[5]);
    let ex = x.exp();
    let cost = ex.sum(&[0]);
    let mut g = b.finish(&[&cost]).unwrap();
    let dx = grad(&mut g, cost.id().unwrap(), &[x.id().unwrap()]).unwrap()[0];
    assert_eq!(dx, ex.id().unwrap());
}

// ── reductions and cumsum ───────────────────────────────────────────────────────────────

/// Distinct values (no ties) for max/min; magnitudes in [0.5, 1.5] for prod.
fn reduce_point(kind: ReduceOp, rng: &mut StdRng, shape: &[usize]) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    match kind {
        ReduceOp::Max | ReduceOp::Min => {
            let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.37 - 1.0).collect();
            v.shuffle(rng);
            ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
        }
        ReduceOp::Prod => signed(rng, shape, 0.5, 1.5),
        _ => uniform(rng, shape, -2.0, 2.0),
    }
}

proptest! {
    #![proptest_config(proptest_config(32))]

    #[test]
    fn reduction_gradients_match_finite_differences(seed in any::<u64>()) {
        for &kind in ReduceOp::ALL {
            let mut rng = StdRng::seed_from_u64(seed);
            let shape = random_shape(&mut rng, 1, 3);
            let axes: Vec<usize> = (0..shape.len()).filter(|_| rng.random_bool(0.5)).collect();
            let keepdims = rng.random_bool(0.5);
            let b = GraphBuilder::new("f");
            let x = b.input("x", DType::F64, &shape);
            // square the result so the cotangent reaching the reduction depends on x
            let r = x.reduce(kind, &axes, keepdims);
            let cost = weighted_sum(&b, &(&r * &r), &mut rng);
            let g = b.finish(&[&cost]).unwrap();
            let inputs = inputs_of(vec![("x", reduce_point(kind, &mut rng, &shape))]);
            let ctx = |e: String| fail(format!("{} {shape:?} axes {axes:?} keepdims {keepdims}: {e}", kind.name()));
            check_gradient(&g, &inputs, &["x"], RTOL).map_err(ctx)?;
            check_second_order(&g, &inputs, &["x"], &mut rng, RTOL).map_err(ctx)?;
        }
    }

    #[test]
    fn cumsum_gradient_is_a_reverse_cumsum(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let shape = random_shape(&mut rng, 1, 3);
        let axis = rng.random_range(0..shape.len());
        let reverse = rng.random_bool(0.5);
        let b = GraphBuilder::new("f");
        let x = b.input("x", DType::F64, &shape);
        let c = x.apply(Op::Cumsum { axis, reverse }, &[]);
        let cost = weighted_sum(&b, &c.sin(), &mut rng);
        let g = b.finish(&[&cost]).unwrap();
        let inputs = inputs_of(vec![("x", uniform(&mut rng, &shape, -1.0, 1.0))]);
        check_gradient(&g, &inputs, &["x"], RTOL).map_err(fail)?;
        check_second_order(&g, &inputs, &["x"], &mut rng, RTOL).map_err(fail)?;
    }
}

#[test]
fn max_reduction_splits_the_cotangent_among_ties() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2, 4]);
    let cost = (x.max(&[1]) * b.array(&ndarray::arr1(&[1.0, 10.0]))).sum(&[0]) + x.min(&[0, 1]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["x"]).unwrap();
    let xs = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![1.0, 3.0, 3.0, 2.0, 5.0, -1.0, 0.0, -1.0]).unwrap();
    let out = eval(&gg, &inputs_of(vec![("x", xs)])).unwrap();
    assert_eq!(out[1].to_f64_vec(), vec![0.0, 0.5, 0.5, 0.0, 10.0, 0.5, 0.0, 0.5]);
}

#[test]
fn prod_gradient_is_prod_over_x_and_nan_at_zeros() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let cost = x.prod(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["x"]).unwrap();
    let out = eval(&gg, &inputs_of(vec![("x", ndarray::arr1(&[2.0, 3.0, 5.0]).into_dyn())])).unwrap();
    assert_eq!(out[1].to_f64_vec(), vec![15.0, 10.0, 6.0]);
    let out = eval(&gg, &inputs_of(vec![("x", ndarray::arr1(&[0.0, 3.0, 5.0]).into_dyn())])).unwrap();
    assert!(out[1].to_f64_vec()[0].is_nan(), "documented: prod/x is 0/0 at a zero");
}

// ── shape ops, slicing, indexing ────────────────────────────────────────────────────────

/// A random structural op applied to `x` of shape `shape` (and the ops' other operands).
fn random_structural(b: &GraphBuilder, x: &Var, shape: &[usize], rng: &mut StdRng, which: usize) -> Var {
    let rank = shape.len();
    match which {
        0 => {
            // reshape to a shuffled factorization of the same size
            let mut dims = shape.to_vec();
            dims.shuffle(rng);
            dims.push(1);
            x.reshape(&dims)
        }
        1 => {
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.shuffle(rng);
            x.transpose(&perm)
        }
        2 => x.expand_dims(rng.random_range(0..=rank)),
        3 => {
            let e = x.expand_dims(rng.random_range(0..=rank)).expand_dims(0);
            let ones: Vec<usize> = e.dims().iter().enumerate().filter(|(_, d)| **d == 1).map(|(i, _)| i).collect();
            let keep = rng.random_range(1..=ones.len());
            e.squeeze(&ones[..keep])
        }
        4 => {
            // broadcast to a shape with new leading axes and 1-axes expanded
            let mut target: Vec<usize> = (0..rng.random_range(0..=2)).map(|_| rng.random_range(1..=3)).collect();
            target.extend(shape.iter().map(|&d| if d == 1 { rng.random_range(1..=3) } else { d }));
            x.broadcast_to(&target)
        }
        5 => {
            let axis = rng.random_range(0..rank);
            let other_dims: Vec<usize> =
                shape.iter().enumerate().map(|(i, &d)| if i == axis { rng.random_range(1..=2) } else { d }).collect();
            let y = b.input("y", DType::F64, &other_dims);
            let c = x.exp().concatenate(&[&y, x], axis);
            x.concatenate(&[&c], axis)
        }
        6 => {
            let y = b.input("y", DType::F64, shape);
            x.stack(&[&y.sin(), x], rng.random_range(0..=rank))
        }
        7 => {
            let spec: Vec<tessera_graph::PySlice> = shape
                .iter()
                .map(|&d| {
                    let d = d as i64;
                    match rng.random_range(0..4) {
                        0 => (None, None, None),
                        1 => (Some(rng.random_range(0..d)), None, Some(rng.random_range(1..=2))),
                        2 => (None, None, Some(-rng.random_range(1..=2))),
                        _ => (Some(d - 1), Some(rng.random_range(-1..d - 1).max(0)), Some(-1)),
                    }
                })
                .collect();
            x.slice(&spec)
        }
        8 => {
            let axis = rng.random_range(0..rank);
            let idx_shape = random_shape(rng, 0, 2);
            let n: usize = idx_shape.iter().product();
            let idx: Vec<i64> = (0..n).map(|_| rng.random_range(0..shape[axis] as i64)).collect();
            let idx = b.array_i64(&ArrayD::from_shape_vec(IxDyn(&idx_shape), idx).unwrap());
            x.gather(&idx, axis)
        }
        _ => {
            // scatter_add: x plays the updates; indices along its first axis, with repeats
            let size = rng.random_range(1..=3);
            let idx: Vec<i64> = (0..shape[0]).map(|_| rng.random_range(0..size as i64)).collect();
            let idx = b.array_i64(&ndarray::Array1::from(idx));
            x.scatter_add(&idx, 0, size)
        }
    }
}

const STRUCTURAL_NAMES: [&str; 10] = [
    "reshape",
    "transpose",
    "expand_dims",
    "squeeze",
    "broadcast_to",
    "concatenate",
    "stack",
    "slice",
    "gather",
    "scatter_add",
];

proptest! {
    #![proptest_config(proptest_config(48))]

    #[test]
    fn structural_gradients_match_finite_differences(seed in any::<u64>()) {
        for (which, name) in STRUCTURAL_NAMES.iter().enumerate() {
            let mut rng = StdRng::seed_from_u64(seed);
            let shape = random_shape(&mut rng, 1, 3);
            let b = GraphBuilder::new("f");
            let x = b.input("x", DType::F64, &shape);
            let y = random_structural(&b, &x, &shape, &mut rng, which);
            // a nonlinearity after the op makes the cotangent reaching it depend on x
            let cost = weighted_sum(&b, &(&y * &y), &mut rng);
            let g = b.finish(&[&cost]).map_err(|e| fail(format!("{name}: building: {e}")))?;
            let mut inputs = inputs_of(vec![("x", uniform(&mut rng, &shape, -1.0, 1.0))]);
            let mut wrt = vec!["x"];
            if let Some(yid) = g.input_by_name("y") {
                let dims = g.ty(yid).shape.dims().to_vec();
                inputs.insert("y".into(), Value::F64(uniform(&mut rng, &dims, -1.0, 1.0)));
                wrt.push("y");
            }
            let ctx = |e: String| fail(format!("{name} on {shape:?}: {e}"));
            check_gradient(&g, &inputs, &wrt, RTOL).map_err(ctx)?;
            check_second_order(&g, &inputs, &wrt, &mut rng, RTOL).map_err(ctx)?;
        }
    }
}

#[test]
fn gather_gradient_accumulates_repeated_indices() {
    let b = GraphBuilder::new("f");
    let a = b.input("a", DType::F64, &[3]);
    let idx = b.array_i64(&ndarray::arr1(&[2, 0, 2, 2]));
    let cost = (a.gather(&idx, 0) * b.array(&ndarray::arr1(&[1.0, 2.0, 3.0, 4.0]))).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["a"]).unwrap();
    let out = eval(&gg, &inputs_of(vec![("a", ndarray::arr1(&[0.1, 0.2, 0.3]).into_dyn())])).unwrap();
    assert_eq!(out[1].to_f64_vec(), vec![2.0, 0.0, 8.0]);
}

// ── linear algebra ──────────────────────────────────────────────────────────────────────

proptest! {
    #![proptest_config(proptest_config(32))]

    #[test]
    fn matmul_gradients_match_in_all_four_forms(seed in any::<u64>()) {
        for (ra, rb) in [(1, 1), (2, 1), (1, 2), (2, 2)] {
            let mut rng = StdRng::seed_from_u64(seed);
            let (m, k, p) = (rng.random_range(1..=3), rng.random_range(1..=3), rng.random_range(1..=3));
            let sa: Vec<usize> = if ra == 1 { vec![k] } else { vec![m, k] };
            let sb: Vec<usize> = if rb == 1 { vec![k] } else { vec![k, p] };
            let b = GraphBuilder::new("f");
            let x = b.input("a", DType::F64, &sa);
            let y = b.input("b", DType::F64, &sb);
            let prod = x.matmul(&y);
            let cost = weighted_sum(&b, &(&prod * &prod), &mut rng);
            let g = b.finish(&[&cost]).unwrap();
            let inputs = inputs_of(vec![("a", uniform(&mut rng, &sa, -1.0, 1.0)), ("b", uniform(&mut rng, &sb, -1.0, 1.0))]);
            let ctx = |e: String| fail(format!("matmul {sa:?}·{sb:?}: {e}"));
            check_gradient(&g, &inputs, &["a", "b"], RTOL).map_err(ctx)?;
            check_second_order(&g, &inputs, &["a", "b"], &mut rng, RTOL).map_err(ctx)?;
        }
    }

    #[test]
    fn outer_gradient_matches(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (m, n) = (rng.random_range(1..=4), rng.random_range(1..=4));
        let b = GraphBuilder::new("f");
        let x = b.input("a", DType::F64, &[m]);
        let y = b.input("b", DType::F64, &[n]);
        let cost = weighted_sum(&b, &x.outer(&y).tanh(), &mut rng);
        let g = b.finish(&[&cost]).unwrap();
        let inputs = inputs_of(vec![("a", uniform(&mut rng, &[m], -1.0, 1.0)), ("b", uniform(&mut rng, &[n], -1.0, 1.0))]);
        check_gradient(&g, &inputs, &["a", "b"], RTOL).map_err(fail)?;
        check_second_order(&g, &inputs, &["a", "b"], &mut rng, RTOL).map_err(fail)?;
    }

    /// Only the lower triangle of the operand is read, so the upper triangle's finite
    /// differences are zero and so must the gradient's be.
    #[test]
    fn cholesky_gradient_matches(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(1..=4);
        let b = GraphBuilder::new("f");
        let a = b.input("a", DType::F64, &[n, n]);
        let cost = weighted_sum(&b, &a.cholesky(), &mut rng);
        let g = b.finish(&[&cost]).unwrap();
        let inputs = inputs_of(vec![("a", spd(&mut rng, n))]);
        check_gradient(&g, &inputs, &["a"], RTOL_LINALG).map_err(fail)?;
        check_second_order(&g, &inputs, &["a"], &mut rng, RTOL_LINALG).map_err(fail)?;
    }

    #[test]
    fn triangular_solve_gradient_matches(seed in any::<u64>()) {
        for lower in [true, false] {
            let mut rng = StdRng::seed_from_u64(seed);
            let n = rng.random_range(1..=4);
            let sb: Vec<usize> = if rng.random_bool(0.5) { vec![n] } else { vec![n, rng.random_range(1..=3)] };
            let b = GraphBuilder::new("f");
            let a = b.input("a", DType::F64, &[n, n]);
            let rhs = b.input("b", DType::F64, &sb);
            let x = a.triangular_solve(&rhs, lower);
            let cost = weighted_sum(&b, &(&x * &x), &mut rng);
            let g = b.finish(&[&cost]).unwrap();
            let inputs = inputs_of(vec![("a", well_conditioned_triangle(&mut rng, n)), ("b", uniform(&mut rng, &sb, -1.0, 1.0))]);
            let ctx = |e: String| fail(format!("lower={lower} b {sb:?}: {e}"));
            check_gradient(&g, &inputs, &["a", "b"], RTOL_LINALG).map_err(ctx)?;
            check_second_order(&g, &inputs, &["a", "b"], &mut rng, RTOL_LINALG).map_err(ctx)?;
        }
    }

    #[test]
    fn logdet_diag_and_diag_matrix_gradients_match(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(1..=4);
        let b = GraphBuilder::new("f");
        let l = b.input("l", DType::F64, &[n, n]);
        let v = b.input("v", DType::F64, &[n]);
        let d = l.diag();
        let cost = l.logdet_chol() + weighted_sum(&b, &(&d * &d), &mut rng)
            + weighted_sum(&b, &(v.diag_matrix().matmul(&l)).sin(), &mut rng);
        let g = b.finish(&[&cost]).unwrap();
        let mut lv = uniform(&mut rng, &[n, n], -1.0, 1.0);
        for i in 0..n {
            lv[[i, i]] = rng.random_range(0.5..2.0);
        }
        let inputs = inputs_of(vec![("l", lv), ("v", uniform(&mut rng, &[n], -1.0, 1.0))]);
        check_gradient(&g, &inputs, &["l", "v"], RTOL).map_err(fail)?;
        check_second_order(&g, &inputs, &["l", "v"], &mut rng, RTOL).map_err(fail)?;
    }
}

/// A random symmetric positive definite matrix M Mᵀ + n·I (condition number ≲ 10).
fn spd(rng: &mut StdRng, n: usize) -> ArrayD<f64> {
    let m = uniform(rng, &[n, n], -1.0, 1.0).into_dimensionality::<ndarray::Ix2>().unwrap();
    let a = m.dot(&m.t()) + ndarray::Array2::<f64>::eye(n) * n as f64;
    a.into_dyn()
}

/// A triangular-solve operand: diagonal of magnitude in [1, 2], small entries elsewhere
/// (both triangles filled: the solve must ignore the other one).
fn well_conditioned_triangle(rng: &mut StdRng, n: usize) -> ArrayD<f64> {
    let mut a = uniform(rng, &[n, n], -0.4, 0.4);
    for i in 0..n {
        a[[i, i]] = rng.random_range(1.0..2.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    }
    a
}

#[test]
fn logdet_of_cholesky_has_the_inverse_as_gradient() {
    // d/dA log det A = A⁻¹ for symmetric A; cholesky reads the lower triangle only, so the
    // gradient is A⁻¹ on the diagonal, 2·A⁻¹ below it and 0 above.
    let b = GraphBuilder::new("f");
    let a = b.input("a", DType::F64, &[2, 2]);
    let cost = a.cholesky().logdet_chol();
    let g = b.finish(&[&cost]).unwrap();
    let gg = with_gradients(&g, &["a"]).unwrap();
    let av = ndarray::arr2(&[[4.0, 99.0], [2.0, 3.0]]).into_dyn(); // upper entry ignored
    let out = eval(&gg, &inputs_of(vec![("a", av)])).unwrap();
    let det = 4.0 * 3.0 - 2.0 * 2.0;
    let inv = [3.0 / det, -2.0 / det, -2.0 / det, 4.0 / det];
    let expected = [inv[0], 0.0, 2.0 * inv[2], inv[3]];
    assert!((out[0].to_scalar_f64().unwrap() - f64::ln(det)).abs() < 1e-14);
    for (got, want) in out[1].to_f64_vec().iter().zip(expected) {
        assert!((got - want).abs() < 1e-14, "{:?} vs {expected:?}", out[1].to_f64_vec());
    }
}

// ── example log densities ───────────────────────────────────────────────────────────────

// The three models are built exactly as examples/{normal,logistic_regression,hierarchical}.ir
// (checked by `builder_models_are_the_example_files`), so the closed forms below hold for the
// example files the CLI differentiates.

/// examples/normal.ir: −½ Σ ((x − μ)/σ)² − n ln σ − n/2 ln 2π with n = 20.
fn normal_model() -> Graph {
    let b = GraphBuilder::new("normal");
    let mu = b.input("mu", DType::F64, &[]);
    let sigma = b.input("sigma", DType::F64, &[]);
    let x = b.input("x", DType::F64, &[20]);
    let z = (&x - &mu) / &sigma;
    let logp = z.square().sum(&[0]) * -0.5 - sigma.log() * 20.0 - 18.37877066409345;
    b.finish(&[&logp]).unwrap()
}

/// examples/logistic_regression.ir: Σ [y η − softplus(η)] − ½ Σ β² − 5/2 ln 2π, η = Xβ,
/// 50 observations, 5 coefficients.
fn logistic_model() -> Graph {
    let b = GraphBuilder::new("logistic_regression");
    let beta = b.input("beta", DType::F64, &[5]);
    let x = b.input("X", DType::F64, &[50, 5]);
    let y = b.input("y", DType::F64, &[50]);
    let eta = x.matmul(&beta);
    let lik = (&y * &eta - eta.softplus()).sum(&[0]);
    let prior = beta.square().sum(&[0]) * -0.5 + -4.594692666023363;
    let logp = lik + prior;
    b.finish(&[&logp]).unwrap()
}

const GROUPS: usize = 8;
const HOUSEHOLDS: usize = 40;

/// examples/hierarchical.ir: non-centered varying intercepts a = μₐ + σₐ·a_raw indexed by
/// %county (a gather), y ~ N(a[county] + b·x, σy), standard normal priors, half-normal
/// scales on the log scale with their Jacobians.
fn hierarchical_model() -> Graph {
    let bld = GraphBuilder::new("hierarchical");
    let mu_a = bld.input("mu_a", DType::F64, &[]);
    let ls_a = bld.input("log_sigma_a", DType::F64, &[]);
    let a_raw = bld.input("a_raw", DType::F64, &[GROUPS]);
    let b = bld.input("b", DType::F64, &[]);
    let ls_y = bld.input("log_sigma_y", DType::F64, &[]);
    let county = bld.input("county", DType::I64, &[HOUSEHOLDS]);
    let x = bld.input("x", DType::F64, &[HOUSEHOLDS]);
    let y = bld.input("y", DType::F64, &[HOUSEHOLDS]);
    let sigma_a = ls_a.exp();
    let a = &mu_a + &(&sigma_a * &a_raw);
    let yhat = a.gather(&county, 0) + &b * &x;
    let sigma_y = ls_y.exp();
    let r = (&y - &yhat) / &sigma_y;
    let lik = r.square().sum(&[0]) * -0.5 - &ls_y * 40.0;
    let squares = a_raw.square().sum(&[0]) + mu_a.square() + b.square() + sigma_a.square() + sigma_y.square();
    let logp = lik + squares * -0.5 + (&ls_a + &ls_y) + -46.39850936552309;
    bld.finish(&[&logp]).unwrap()
}

fn example_file(name: &str) -> Graph {
    let path = format!("{}/../examples/{name}.ir", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    tessera_graph::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn builder_models_are_the_example_files() {
    // If an example file changes, update its builder twin above (and the closed forms).
    assert_eq!(normal_model(), example_file("normal"));
    assert_eq!(logistic_model(), example_file("logistic_regression"));
    assert_eq!(hierarchical_model(), example_file("hierarchical"));
}

fn array1(v: Vec<f64>) -> ArrayD<f64> {
    ndarray::Array1::from(v).into_dyn()
}

fn scalar(x: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(&[]), x)
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn normal_gradient_matches_closed_form_and_finite_differences() {
    let n = 20;
    let g = normal_model();
    let gg = with_gradients(&g, &["mu", "sigma"]).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..4 {
        let (mu, sigma) = (rng.random_range(-2.0..2.0), rng.random_range(0.3..3.0));
        let x: Vec<f64> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
        let inputs = inputs_of(vec![("mu", scalar(mu)), ("sigma", scalar(sigma)), ("x", array1(x.clone()))]);
        check_gradient(&g, &inputs, &["mu", "sigma"], RTOL).unwrap();
        let out = eval(&gg, &inputs).unwrap();
        // ∂/∂μ = Σ(x − μ)/σ², ∂/∂σ = −n/σ + Σ(x − μ)²/σ³
        let s1: f64 = x.iter().map(|xi| xi - mu).sum();
        let s2: f64 = x.iter().map(|xi| (xi - mu).powi(2)).sum();
        assert_close(&out[1].to_f64_vec(), &[s1 / sigma.powi(2)], 1e-12, "d/dmu");
        assert_close(&out[2].to_f64_vec(), &[-(n as f64) / sigma + s2 / sigma.powi(3)], 1e-12, "d/dsigma");
    }
}

#[test]
fn logistic_gradient_matches_closed_form_and_finite_differences() {
    let (n, d) = (50, 5);
    let g = logistic_model();
    let gg = with_gradients(&g, &["beta"]).unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..4 {
        let beta: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let xm = uniform(&mut rng, &[n, d], -1.5, 1.5);
        let y: Vec<f64> = (0..n).map(|_| if rng.random_bool(0.5) { 1.0 } else { 0.0 }).collect();
        let inputs = inputs_of(vec![("beta", array1(beta.clone())), ("X", xm.clone()), ("y", array1(y.clone()))]);
        check_gradient(&g, &inputs, &["beta"], RTOL).unwrap();
        // ∂/∂β = Xᵀ(y − σ(Xβ)) − β
        let expected: Vec<f64> = (0..d)
            .map(|j| {
                let lik: f64 = (0..n)
                    .map(|i| {
                        let eta: f64 = (0..d).map(|k| xm[[i, k]] * beta[k]).sum();
                        xm[[i, j]] * (y[i] - 1.0 / (1.0 + (-eta).exp()))
                    })
                    .sum();
                lik - beta[j]
            })
            .collect();
        assert_close(&eval(&gg, &inputs).unwrap()[1].to_f64_vec(), &expected, 1e-12, "d/dbeta");
    }
}

const HIERARCHICAL_PARAMS: [&str; 5] = ["mu_a", "log_sigma_a", "a_raw", "b", "log_sigma_y"];

#[test]
fn hierarchical_gradient_matches_closed_form_and_finite_differences() {
    let (n, groups) = (HOUSEHOLDS, GROUPS);
    let g = hierarchical_model();
    let gg = with_gradients(&g, &HIERARCHICAL_PARAMS).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..4 {
        let (mu, lsa, b, lsy) = (
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
        );
        let a_raw: Vec<f64> = (0..groups).map(|_| rng.random_range(-2.0..2.0)).collect();
        let county: Vec<i64> = (0..n).map(|_| rng.random_range(0..groups as i64)).collect();
        let x: Vec<f64> = (0..n).map(|_| if rng.random_bool(0.2) { 1.0 } else { 0.0 }).collect();
        let y: Vec<f64> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
        let mut inputs = inputs_of(vec![
            ("mu_a", scalar(mu)),
            ("log_sigma_a", scalar(lsa)),
            ("a_raw", array1(a_raw.clone())),
            ("b", scalar(b)),
            ("log_sigma_y", scalar(lsy)),
            ("x", array1(x.clone())),
            ("y", array1(y.clone())),
        ]);
        inputs.insert("county".into(), Value::I64(ndarray::Array1::from(county.clone()).into_dyn()));
        check_gradient(&g, &inputs, &HIERARCHICAL_PARAMS, RTOL).unwrap();

        // r = (y − a[county] − b x)/σy with a = μ + σa·a_raw; S_j = Σ_{i in group j} r_i/σy
        // (the scatter sums of gather's adjoint).
        let (sa, sy) = (lsa.exp(), lsy.exp());
        let r: Vec<f64> = (0..n).map(|i| (y[i] - (mu + sa * a_raw[county[i] as usize]) - b * x[i]) / sy).collect();
        let mut by_group = vec![0.0; groups];
        for i in 0..n {
            by_group[county[i] as usize] += r[i] / sy;
        }
        let d_mu = r.iter().sum::<f64>() / sy - mu;
        let d_lsa = sa * (0..groups).map(|j| a_raw[j] * by_group[j]).sum::<f64>() - sa * sa + 1.0;
        let d_a_raw: Vec<f64> = (0..groups).map(|j| sa * by_group[j] - a_raw[j]).collect();
        let d_b = (0..n).map(|i| r[i] * x[i]).sum::<f64>() / sy - b;
        let d_lsy = r.iter().map(|ri| ri * ri).sum::<f64>() - n as f64 - sy * sy + 1.0;
        let out = eval(&gg, &inputs).unwrap();
        assert_close(&out[1].to_f64_vec(), &[d_mu], 1e-12, "d/dmu_a");
        assert_close(&out[2].to_f64_vec(), &[d_lsa], 1e-12, "d/dlog_sigma_a");
        assert_close(&out[3].to_f64_vec(), &d_a_raw, 1e-12, "d/da_raw");
        assert_close(&out[4].to_f64_vec(), &[d_b], 1e-12, "d/db");
        assert_close(&out[5].to_f64_vec(), &[d_lsy], 1e-12, "d/dlog_sigma_y");
    }
}

#[test]
fn example_log_density_gradients_of_gradients_match() {
    let mut rng = StdRng::seed_from_u64(4);
    let g = normal_model();
    let inputs =
        inputs_of(vec![("mu", scalar(0.3)), ("sigma", scalar(1.7)), ("x", uniform(&mut rng, &[20], -2.0, 2.0))]);
    check_second_order(&g, &inputs, &["mu", "sigma"], &mut rng, RTOL).unwrap();
    let g = logistic_model();
    let inputs = inputs_of(vec![
        ("beta", uniform(&mut rng, &[5], -1.0, 1.0)),
        ("X", uniform(&mut rng, &[50, 5], -1.0, 1.0)),
        ("y", uniform(&mut rng, &[50], 0.0, 1.0).mapv(f64::round)),
    ]);
    check_second_order(&g, &inputs, &["beta"], &mut rng, RTOL).unwrap();
}

/// The examples with their gradients, as (name, forward graph, gradient graph).
fn example_gradients() -> Vec<(&'static str, Graph, Graph)> {
    let cases = [
        ("normal", normal_model(), vec!["mu", "sigma"]),
        ("logistic", logistic_model(), vec!["beta"]),
        ("hierarchical", hierarchical_model(), HIERARCHICAL_PARAMS.to_vec()),
    ];
    cases.into_iter().map(|(name, g, wrt)| (name, g.clone(), with_gradients(&g, &wrt).unwrap())).collect()
}

#[test]
fn example_gradient_graphs_snapshot() {
    for (name, _, gg) in example_gradients() {
        verify(&gg).unwrap();
        let text = tessera_graph::print(&gg);
        assert_eq!(tessera_graph::parse(&text).unwrap(), gg, "{name}: the printed gradient graph parses back");
        insta::assert_snapshot!(name, text);
    }
}

/// Node counts (live nodes, scalar constants included) of each example before and after
/// adding its gradient: the gradient must stay a small multiple of the forward pass.
#[test]
fn example_gradient_graphs_are_small() {
    let mut table = String::from("example       forward  forward+gradient\n");
    for (name, g, gg) in example_gradients() {
        let (forward, total) = (g.live_nodes().len(), gg.live_nodes().len());
        table.push_str(&format!("{name:<13} {forward:>7}  {total:>16}\n"));
        assert!(total <= 2 * forward + 12, "{name}: {forward} forward nodes, {total} with the gradient");
        // No node of the gradient is a zeros constant or a multiplication by one.
        for id in gg.live_nodes() {
            let node = gg.node(id);
            if let Op::Const(c) = &node.op {
                assert_ne!(c.uniform_value(), Some(0.0), "{name}: zeros constant in the gradient");
            }
            if let Op::Binary(BinaryOp::Mul) = node.op {
                for &o in &node.operands {
                    let one = gg.node(o).op.as_const().and_then(|c| c.uniform_value()) == Some(1.0);
                    assert!(!one, "{name}: multiplication by one");
                }
            }
        }
    }
    insta::assert_snapshot!("node_counts", table);
}

// ── errors ──────────────────────────────────────────────────────────────────────────────

#[test]
fn integer_and_bool_values_have_no_gradient() {
    let g = hierarchical_model();
    let err = with_gradients(&g, &["a_raw", "county"]).unwrap_err();
    assert_eq!(err.to_string(), "i64 value %county has no gradient (only f64 values do)");

    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2]);
    let positive = x.gt(&b.scalar(0.0));
    let cost = x.sum(&[0]);
    let mut g = b.finish(&[&cost]).unwrap();
    let err = grad(&mut g, cost.id().unwrap(), &[positive.id().unwrap()]).unwrap_err();
    assert_eq!(err.to_string(), format!("bool value {} has no gradient (only f64 values do)", positive.id().unwrap()));
}

#[test]
fn the_cost_must_be_a_scalar_f64() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let y = x.exp();
    let g = b.finish(&[&y]).unwrap();
    let err = with_gradients(&g, &["x"]).unwrap_err();
    assert_eq!(err.to_string(), "the cost must be a scalar f64, got f64[3]");
    assert_eq!(err, GradError::CostNotScalar { ty: "f64[3]".into() });

    let b = GraphBuilder::new("f");
    let n = b.input("n", DType::I64, &[3]);
    let total = n.sum(&[0]);
    let mut g = b.finish(&[&total]).unwrap();
    let err = grad(&mut g, total.id().unwrap(), &[]).unwrap_err();
    assert_eq!(err.to_string(), "the cost must be a scalar f64, got i64[]");
}

#[test]
fn unknown_input_names_are_errors_listing_the_inputs() {
    let g = normal_model();
    let err = with_gradients(&g, &["mu", "tau"]).unwrap_err();
    assert_eq!(err.to_string(), "unknown input %tau; the graph's inputs are: %mu, %sigma, %x");
}

#[test]
fn trigamma_gradient_is_a_clear_error() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2]);
    let y = b.input("y", DType::F64, &[2]);
    let cost = (x.unary(UnaryOp::Trigamma) + y.exp()).sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let err = with_gradients(&g, &["x"]).unwrap_err();
    assert_eq!(err.to_string(), "no gradient rule for `trigamma`: its derivative, tetragamma, is not an op of the IR");
    // Off the path from the wrt inputs to the cost, trigamma is no obstacle.
    assert!(with_gradients(&g, &["y"]).is_ok());

    // digamma′ = trigamma, so digamma has a gradient but not a second one; lgamma has both.
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[2]);
    let cost = x.digamma().sum(&[0]);
    let g = b.finish(&[&cost]).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let err =
        hessian_vector_graph(&g, &["x"], &mut rng).and_then(|h| with_gradients(&h, &["x"]).map_err(|e| e.to_string()));
    assert_eq!(err.unwrap_err(), "no gradient rule for `trigamma`: its derivative, tetragamma, is not an op of the IR");
}

#[test]
fn graphs_without_outputs_or_with_foreign_nodes_are_errors() {
    let mut g = Graph::new("empty");
    assert_eq!(with_gradients(&g, &[]).unwrap_err(), GradError::NoOutput);
    let bogus = NodeId::from_index(7);
    assert_eq!(grad(&mut g, bogus, &[]).unwrap_err().to_string(), "node #7 does not exist in this graph");
}
