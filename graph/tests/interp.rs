//! The reference interpreter against independently computed values: mpmath/scipy/numpy
//! results, hand derivations and brute-force index loops, edge cases included.

use std::collections::HashMap;
use std::f64::consts::{E, LN_2, PI, SQRT_2};

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_graph::{
    BinaryOp, Constant, DType, EvalError, Graph, GraphBuilder, Op, PySlice, ReduceOp, TensorType, UnaryOp, Value, Var,
    eval, eval_checked, eval_nodes, eval_op, verify,
};

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `(x, op(x))`.
type UnaryCase = (f64, f64);
/// `(a, b, op(a, b))`.
type BinaryCase = (f64, f64, f64);
type Axes = &'static [usize];
type Dims = &'static [usize];

// ---------------------------------------------------------------------------------------------
// helpers

fn f64s(shape: &[usize], data: &[f64]) -> Value {
    Value::F64(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap())
}

fn i64s(shape: &[usize], data: &[i64]) -> Value {
    Value::I64(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap())
}

fn bools(shape: &[usize], data: &[bool]) -> Value {
    Value::Bool(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap())
}

fn input_map(inputs: &[(&str, Value)]) -> HashMap<String, Value> {
    inputs.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()
}

/// Evaluates a verified graph.
fn run(g: &Graph, inputs: &[(&str, Value)]) -> Result<Vec<Value>, EvalError> {
    verify(g).unwrap();
    eval(g, &input_map(inputs))
}

/// Evaluates a single-output graph built by `build` from a builder.
fn run1(inputs: &[(&str, Value)], build: impl FnOnce(&GraphBuilder) -> Var) -> Value {
    let b = GraphBuilder::new("f");
    let out = build(&b);
    let g = b.finish(&[&out]).unwrap();
    let mut outs = run(&g, inputs).unwrap();
    assert_eq!(outs.len(), 1);
    outs.remove(0)
}

/// Declares inputs typed like the given values, then builds.
fn run_on(inputs: &[(&str, Value)], build: impl FnOnce(&[Var]) -> Var) -> Value {
    run1(inputs, |b| {
        let vars: Vec<Var> = inputs.iter().map(|(n, v)| b.input(n, v.dtype(), v.shape().dims())).collect();
        build(&vars)
    })
}

/// `got` equals `want` to relative tolerance `rel`; NaN matches NaN, and zeros and infinities
/// must match exactly.
fn close(got: f64, want: f64, rel: f64) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else if want == 0.0 || want.is_infinite() {
        got == want
    } else {
        (got - want).abs() <= rel * want.abs()
    }
}

/// Checks dtype, shape and elements (compared as f64, bool as 0/1).
#[track_caller]
fn check(got: &Value, dtype: DType, shape: &[usize], want: &[f64], rel: f64) {
    assert_eq!(got.dtype(), dtype, "dtype of {got:?}");
    assert_eq!(got.shape().dims(), shape, "shape of {got:?}");
    let elems = got.to_f64_vec();
    assert_eq!(elems.len(), want.len());
    for (i, (&g, &w)) in elems.iter().zip(want).enumerate() {
        assert!(close(g, w, rel), "element {i}: got {g:e}, want {w:e} (all: {elems:?})");
    }
}

/// All multi-indices of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &d in shape {
        out = out.into_iter().flat_map(|prefix| (0..d).map(move |i| [prefix.clone(), vec![i]].concat())).collect();
    }
    out
}

fn flat(shape: &[usize], index: &[usize]) -> usize {
    index.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

fn random_vec(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

// ---------------------------------------------------------------------------------------------
// elementwise

/// Reference values: mpmath at 40 digits unless the comment says otherwise.
#[rustfmt::skip]
fn unary_table() -> Vec<(UnaryOp, Vec<UnaryCase>)> {
    use UnaryOp::*;
    vec![
        (Neg, vec![(1.5, -1.5), (-0.0, 0.0), (f64::INFINITY, f64::NEG_INFINITY)]),
        (Abs, vec![(-2.5, 2.5), (3.0, 3.0), (f64::NEG_INFINITY, f64::INFINITY)]),
        (Sign, vec![(-3.0, -1.0), (0.0, 0.0), (7.5, 1.0), (f64::NAN, f64::NAN)]),
        (Exp, vec![(1.0, E), (0.0, 1.0), (-800.0, 0.0), (800.0, f64::INFINITY)]),
        (Expm1, vec![(1e-10, 1.00000000005e-10), (1.0, E - 1.0)]),
        (Log, vec![(E, 1.0), (1.0, 0.0), (0.0, f64::NEG_INFINITY), (-1.0, f64::NAN)]),
        (Log1p, vec![(1e-20, 1e-20), (E - 1.0, 1.0), (-1.0, f64::NEG_INFINITY)]),
        (Sqrt, vec![(2.0, SQRT_2), (0.0, 0.0), (-1.0, f64::NAN)]),
        (Square, vec![(3.0, 9.0), (-1.5, 2.25)]),
        (Reciprocal, vec![(4.0, 0.25), (0.0, f64::INFINITY), (-0.5, -2.0)]),
        (Sin, vec![(PI / 6.0, 0.5), (-PI / 2.0, -1.0)]),
        (Cos, vec![(PI / 3.0, 0.5), (0.0, 1.0)]),
        (Tan, vec![(PI / 4.0, 1.0)]),
        (Tanh, vec![(0.5, 0.46211715726000974), (800.0, 1.0)]),
        (Sigmoid, vec![(0.0, 0.5), (2.0, 0.8807970779778824), (-30.0, 9.357622968839299e-14), (-800.0, 0.0), (800.0, 1.0)]),
        (Softplus, vec![(0.0, LN_2), (3.0, 3.048587351573742), (40.0, 40.0), (800.0, 800.0), (-50.0, 1.9287498479639178e-22)]),
        (LogSigmoid, vec![(0.0, -LN_2), (3.0, -0.04858735157374206), (-40.0, -40.0), (-800.0, -800.0)]),
        (Log1mexp, vec![(-LN_2, -LN_2), (-0.1, -2.3521684610440907), (-1e-20, -46.051701859880914),
                        (-50.0, -1.9287498479639178e-22), (0.0, f64::NEG_INFINITY), (0.5, f64::NAN)]),
        (Logit, vec![(0.5, 0.0), (0.9, 2.1972245773362196), (0.75, 3f64.ln())]),
        (Lgamma, vec![(0.5, 0.5723649429247001), (-0.5, 1.2655121234846454), (-2.5, -0.056243716497674054),
                      (1.0, 0.0), (1e6, 12815504.569147611)]),
        (Digamma, vec![(1.0, -EULER_GAMMA), (1e-8, -100000000.57721564), (-1.5, 0.7031566406452432),
                       (100.0, 4.600161852738087), (0.0, f64::NAN)]),
        // scipy.special.polygamma(1, x)
        (Trigamma, vec![(1.0, 1.6449340668482264), (0.5, 4.934802200544679), (-1.5, 9.379246644989124),
                        (30.0, 0.033895060357739946), (-2.0, f64::NAN)]),
        (Erf, vec![(0.5, 0.5204998778130465), (-2.0, -0.9953222650189527), (0.0, 0.0)]),
        (Erfc, vec![(5.0, 1.537459794428035e-12), (10.0, 2.088487583762545e-45), (0.0, 1.0)]),
        (Floor, vec![(-1.5, -2.0), (2.7, 2.0), (3.0, 3.0)]),
        (Ceil, vec![(-1.5, -1.0), (2.2, 3.0), (3.0, 3.0)]),
    ]
}

#[test]
fn unary_ops_on_f64_match_reference_values() {
    let table = unary_table();
    for (op, cases) in &table {
        let (xs, want): (Vec<f64>, Vec<f64>) = cases.iter().copied().unzip();
        let got = run_on(&[("x", f64s(&[xs.len()], &xs))], |v| v[0].unary(*op));
        // 4 ulp-level agreement with 40-digit references (lgamma and digamma: a few more)
        let rel = if matches!(op, UnaryOp::Lgamma | UnaryOp::Digamma | UnaryOp::Trigamma) { 1e-14 } else { 1e-15 };
        check(&got, DType::F64, &[xs.len()], &want, rel);
    }
    // Every op is covered here or, for the bool-valued ones, in its own test.
    for op in UnaryOp::ALL {
        let bool_valued = matches!(op, UnaryOp::IsFinite | UnaryOp::Not);
        assert!(bool_valued || table.iter().any(|(o, _)| o == op), "{} has no reference values", op.name());
    }
}

#[test]
fn issue_edge_cases_are_exact() {
    let eval1 = |op: UnaryOp, x: f64| run_on(&[("x", Value::scalar(x))], |v| v[0].unary(op)).to_f64_vec()[0];
    assert_eq!(eval1(UnaryOp::Log1p, 1e-20), 1e-20);
    assert_eq!(eval1(UnaryOp::Softplus, 800.0), 800.0);
    assert_eq!(eval1(UnaryOp::LogSigmoid, -800.0), -800.0);
    // lgamma(1e6): scipy.special.gammaln gives 12815504.569147612, mpmath ...611 (1 ulp apart)
    assert!((eval1(UnaryOp::Lgamma, 1e6) - 12_815_504.569_147_612).abs() <= 4e-9);
    // ψ(x) = −1/x − γ + (π²/6)x + O(x²) near 0
    let x = 1e-8;
    let series = -1.0 / x - EULER_GAMMA + PI * PI / 6.0 * x;
    assert!((eval1(UnaryOp::Digamma, x) - series).abs() <= 1e-7, "{}", eval1(UnaryOp::Digamma, x));
    let lse = run_on(&[("x", f64s(&[2], &[1000.0, 1000.0]))], |v| v[0].logsumexp(&[0]));
    assert_eq!(lse.to_f64_vec(), vec![1000.0 + LN_2]);
}

#[test]
fn bool_valued_unary_ops() {
    let x = f64s(&[5], &[0.0, -3.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
    let got = run_on(&[("x", x)], |v| v[0].isfinite());
    check(&got, DType::Bool, &[5], &[1.0, 1.0, 0.0, 0.0, 0.0], 0.0);
    let got = run_on(&[("p", bools(&[2], &[true, false]))], |v| v[0].not());
    check(&got, DType::Bool, &[2], &[0.0, 1.0], 0.0);
}

#[test]
fn integer_unary_ops_wrap_like_numpy() {
    let x = i64s(&[4], &[-3, 0, 5, i64::MIN]);
    let cases: [(UnaryOp, [i64; 4]); 4] = [
        (UnaryOp::Neg, [3, 0, -5, i64::MIN]),
        (UnaryOp::Abs, [3, 0, 5, i64::MIN]),
        (UnaryOp::Sign, [-1, 0, 1, -1]),
        (UnaryOp::Square, [9, 0, 25, 0]),
    ];
    for (op, want) in cases {
        let got = run_on(&[("x", x.clone())], |v| v[0].unary(op));
        assert_eq!(got, i64s(&[4], &want), "{}", op.name());
    }
}

#[rustfmt::skip]
fn binary_table() -> Vec<(BinaryOp, Vec<BinaryCase>)> {
    use BinaryOp::*;
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    vec![
        (Add, vec![(1.5, 2.25, 3.75), (inf, -inf, nan)]),
        (Sub, vec![(1.5, 2.25, -0.75)]),
        (Mul, vec![(1.5, -4.0, -6.0), (0.0, inf, nan)]),
        (Div, vec![(1.0, 4.0, 0.25), (1.0, 0.0, inf), (0.0, 0.0, nan)]),
        (Pow, vec![(2.0, 0.5, SQRT_2), (1.5, -2.5, 0.36288736930121157), (-8.0, 1.0 / 3.0, nan), (0.0, 0.0, 1.0)]),
        (Maximum, vec![(1.0, 2.0, 2.0), (nan, 2.0, nan), (2.0, nan, nan), (-inf, -1.0, -1.0)]),
        (Minimum, vec![(1.0, 2.0, 1.0), (nan, 2.0, nan), (2.0, nan, nan)]),
        (LogAddExp, vec![(1.0, 2.0, 2.313261687518223), (1000.0, 1000.0, 1000.0 + LN_2), (-800.0, -801.0, -799.6867383124818),
                         (-inf, -inf, -inf), (inf, inf, inf), (0.0, -800.0, 0.0), (nan, 1.0, nan)]),
        (Lt, vec![(1.0, 2.0, 1.0), (2.0, 2.0, 0.0), (nan, 1.0, 0.0)]),
        (Le, vec![(2.0, 2.0, 1.0), (3.0, 2.0, 0.0), (nan, nan, 0.0)]),
        (Gt, vec![(3.0, 2.0, 1.0), (2.0, 2.0, 0.0), (1.0, nan, 0.0)]),
        (Ge, vec![(2.0, 2.0, 1.0), (1.0, 2.0, 0.0)]),
        (Eq, vec![(2.0, 2.0, 1.0), (0.0, -0.0, 1.0), (nan, nan, 0.0)]),
        (Ne, vec![(2.0, 2.0, 0.0), (nan, nan, 1.0), (1.0, 2.0, 1.0)]),
    ]
}

#[test]
fn binary_ops_on_f64_match_reference_values() {
    let table = binary_table();
    for (op, cases) in &table {
        let a: Vec<f64> = cases.iter().map(|c| c.0).collect();
        let b: Vec<f64> = cases.iter().map(|c| c.1).collect();
        let want: Vec<f64> = cases.iter().map(|c| c.2).collect();
        let n = a.len();
        let got = run_on(&[("a", f64s(&[n], &a)), ("b", f64s(&[n], &b))], |v| v[0].binary(*op, &v[1]));
        let dtype = if op.returns_bool() { DType::Bool } else { DType::F64 };
        check(&got, dtype, &[n], &want, 1e-15);
    }
    for op in BinaryOp::ALL {
        let logical = matches!(op, BinaryOp::And | BinaryOp::Or);
        assert!(logical || table.iter().any(|(o, _)| o == op), "{} has no reference values", op.name());
    }
}

#[test]
fn binary_ops_on_i64_and_bool() {
    let a = i64s(&[3], &[7, -2, i64::MAX]);
    let b = i64s(&[3], &[3, 5, 1]);
    let ins = [("a", a), ("b", b)];
    let int_cases: [(BinaryOp, [i64; 3]); 5] = [
        (BinaryOp::Add, [10, 3, i64::MIN]),
        (BinaryOp::Sub, [4, -7, i64::MAX - 1]),
        (BinaryOp::Mul, [21, -10, i64::MAX]),
        (BinaryOp::Maximum, [7, 5, i64::MAX]),
        (BinaryOp::Minimum, [3, -2, 1]),
    ];
    for (op, want) in int_cases {
        assert_eq!(run_on(&ins, |v| v[0].binary(op, &v[1])), i64s(&[3], &want), "{}", op.name());
    }
    let cmp_cases: [(BinaryOp, [bool; 3]); 6] = [
        (BinaryOp::Lt, [false, true, false]),
        (BinaryOp::Le, [false, true, false]),
        (BinaryOp::Gt, [true, false, true]),
        (BinaryOp::Ge, [true, false, true]),
        (BinaryOp::Eq, [false, false, false]),
        (BinaryOp::Ne, [true, true, true]),
    ];
    for (op, want) in cmp_cases {
        assert_eq!(run_on(&ins, |v| v[0].binary(op, &v[1])), bools(&[3], &want), "{}", op.name());
    }
    let p = bools(&[4], &[false, false, true, true]);
    let q = bools(&[4], &[false, true, false, true]);
    let ins = [("p", p), ("q", q)];
    let bool_cases: [(BinaryOp, [bool; 4]); 4] = [
        (BinaryOp::And, [false, false, false, true]),
        (BinaryOp::Or, [false, true, true, true]),
        (BinaryOp::Eq, [true, false, false, true]),
        (BinaryOp::Ne, [false, true, true, false]),
    ];
    for (op, want) in bool_cases {
        assert_eq!(run_on(&ins, |v| v[0].binary(op, &v[1])), bools(&[4], &want), "{}", op.name());
    }
}

#[test]
fn broadcasting_3x1_with_1x4() {
    let a = f64s(&[3, 1], &[1.0, 2.0, 3.0]);
    let b = f64s(&[1, 4], &[10.0, 20.0, 30.0, 40.0]);
    let got = run_on(&[("a", a.clone()), ("b", b.clone())], |v| &v[0] + &v[1]);
    #[rustfmt::skip]
    let want = [11.0, 21.0, 31.0, 41.0,
                12.0, 22.0, 32.0, 42.0,
                13.0, 23.0, 33.0, 43.0];
    check(&got, DType::F64, &[3, 4], &want, 0.0);
    // the other way round, with a non-commutative op: b − a
    let got = run_on(&[("a", a), ("b", b)], |v| &v[1] - &v[0]);
    let want: Vec<f64> = (0..12).map(|k| 10.0 * (k % 4 + 1) as f64 - (k / 4 + 1) as f64).collect();
    check(&got, DType::F64, &[3, 4], &want, 0.0);
}

#[test]
fn broadcasting_extends_rank_and_scalars() {
    // (2,3,1) with (4,) → (2,3,4); then with a scalar
    let a_data: Vec<f64> = (0..6).map(f64::from).collect();
    let ins = [("a", f64s(&[2, 3, 1], &a_data)), ("b", f64s(&[4], &[1.0, 2.0, 3.0, 4.0])), ("s", Value::scalar(0.5))];
    let got = run_on(&ins, |v| &(&v[0] * &v[1]) + &v[2]);
    let want: Vec<f64> =
        indices(&[2, 3, 4]).iter().map(|i| a_data[i[0] * 3 + i[1]] * (i[2] + 1) as f64 + 0.5).collect();
    check(&got, DType::F64, &[2, 3, 4], &want, 0.0);
}

#[test]
fn where_selects_with_broadcasting_on_every_dtype() {
    let c = bools(&[2, 1], &[true, false]);
    let got = run_on(&[("c", c.clone()), ("a", f64s(&[3], &[1.0, 2.0, 3.0])), ("b", Value::scalar(-1.0))], |v| {
        Var::select(&v[0], &v[1], &v[2])
    });
    check(&got, DType::F64, &[2, 3], &[1.0, 2.0, 3.0, -1.0, -1.0, -1.0], 0.0);
    let got = run_on(&[("c", c.clone()), ("a", i64s(&[2, 2], &[1, 2, 3, 4])), ("b", i64s(&[2], &[7, 8]))], |v| {
        Var::select(&v[0], &v[1], &v[2])
    });
    assert_eq!(got, i64s(&[2, 2], &[1, 2, 7, 8]));
    let got = run_on(&[("c", c), ("a", bools(&[], &[true])), ("b", bools(&[1, 2], &[false, true]))], |v| {
        Var::select(&v[0], &v[1], &v[2])
    });
    assert_eq!(got, bools(&[2, 2], &[true, true, false, true]));
}

#[test]
fn casts_between_every_pair_of_dtypes() {
    let x = f64s(&[8], &[2.7, -2.7, 0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300]);
    let got = run_on(&[("x", x.clone())], |v| v[0].cast(DType::I64));
    // truncation toward zero; NaN and ±inf give 0; beyond the range saturates
    assert_eq!(got, i64s(&[8], &[2, -2, 0, 0, 0, 0, 0, i64::MAX]));
    let got = run_on(&[("x", x.clone())], |v| v[0].cast(DType::Bool));
    assert_eq!(got, bools(&[8], &[true, true, false, false, true, true, true, true]));
    let got = run_on(&[("x", x.clone())], |v| v[0].cast(DType::F64));
    check(&got, DType::F64, &[8], &x.to_f64_vec(), 0.0);

    let n = i64s(&[4], &[-3, 0, 1, i64::MAX]);
    let got = run_on(&[("n", n.clone())], |v| v[0].cast(DType::F64));
    check(&got, DType::F64, &[4], &[-3.0, 0.0, 1.0, 2f64.powi(63)], 0.0);
    assert_eq!(run_on(&[("n", n.clone())], |v| v[0].cast(DType::Bool)), bools(&[4], &[true, false, true, true]));
    assert_eq!(run_on(&[("n", n.clone())], |v| v[0].cast(DType::I64)), n);

    let p = bools(&[2], &[true, false]);
    check(&run_on(&[("p", p.clone())], |v| v[0].cast(DType::F64)), DType::F64, &[2], &[1.0, 0.0], 0.0);
    assert_eq!(run_on(&[("p", p.clone())], |v| v[0].cast(DType::I64)), i64s(&[2], &[1, 0]));
    assert_eq!(run_on(&[("p", p.clone())], |v| v[0].cast(DType::Bool)), p);
}

// ---------------------------------------------------------------------------------------------
// reductions and cumsum

/// The reduction of `xs` computed the textbook way.
fn naive_reduce(kind: ReduceOp, xs: &[f64]) -> f64 {
    match kind {
        ReduceOp::Sum => xs.iter().sum(),
        ReduceOp::Prod => xs.iter().product(),
        ReduceOp::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ReduceOp::Min => xs.iter().copied().fold(f64::INFINITY, f64::min),
        ReduceOp::Mean => xs.iter().sum::<f64>() / xs.len() as f64,
        ReduceOp::LogSumExp => xs.iter().map(|x| x.exp()).sum::<f64>().ln(),
    }
}

#[test]
fn reductions_over_every_axis_set_match_brute_force() {
    let shape = [2, 3, 4];
    let mut rng = StdRng::seed_from_u64(7);
    let data = random_vec(&mut rng, 24);
    let x = f64s(&shape, &data);
    for kind in ReduceOp::ALL.iter().copied() {
        for mask in 1..8u32 {
            let axes: Vec<usize> = (0..3).filter(|a| mask & (1 << a) != 0).collect();
            let kept_shape: Vec<usize> = (0..3).map(|a| if axes.contains(&a) { 1 } else { shape[a] }).collect();
            let want: Vec<f64> = indices(&kept_shape)
                .iter()
                .map(|out| {
                    let lane: Vec<f64> = indices(&shape)
                        .iter()
                        .filter(|i| (0..3).all(|a| axes.contains(&a) || i[a] == out[a]))
                        .map(|i| data[flat(&shape, i)])
                        .collect();
                    naive_reduce(kind, &lane)
                })
                .collect();
            for keepdims in [false, true] {
                let got = run_on(&[("x", x.clone())], |v| v[0].reduce(kind, &axes, keepdims));
                let out_shape: Vec<usize> = if keepdims {
                    kept_shape.clone()
                } else {
                    (0..3).filter(|a| !axes.contains(a)).map(|a| shape[a]).collect()
                };
                check(&got, DType::F64, &out_shape, &want, 1e-13);
            }
        }
    }
}

#[test]
fn reduction_edge_cases() {
    let nan = f64::NAN;
    let ninf = f64::NEG_INFINITY;
    let cases: Vec<(ReduceOp, Vec<f64>, f64)> = vec![
        (ReduceOp::LogSumExp, vec![1000.0, 1000.0], 1000.0 + LN_2),
        (ReduceOp::LogSumExp, vec![-1000.0, -1000.0, -1000.0], -1000.0 + 3f64.ln()),
        (ReduceOp::LogSumExp, vec![1.0, 2.0, 3.0], 3.40760596444438),
        (ReduceOp::LogSumExp, vec![ninf, ninf], ninf),
        (ReduceOp::LogSumExp, vec![ninf, 0.0], 0.0),
        (ReduceOp::LogSumExp, vec![f64::INFINITY, 1.0], f64::INFINITY),
        (ReduceOp::LogSumExp, vec![nan, 1.0], nan),
        (ReduceOp::Max, vec![1.0, nan, 3.0], nan),
        (ReduceOp::Min, vec![1.0, nan, 3.0], nan),
        (ReduceOp::Max, vec![ninf, ninf], ninf),
        (ReduceOp::Mean, vec![1.0, 2.0, 6.0], 3.0),
        (ReduceOp::Prod, vec![1.5, -2.0, 4.0], -12.0),
        (ReduceOp::Sum, vec![0.1, 0.2, 0.3], 0.1 + 0.2 + 0.3),
        // reductions of nothing: identities, and NaN / −inf where there is none
        (ReduceOp::Sum, vec![], 0.0),
        (ReduceOp::Prod, vec![], 1.0),
        (ReduceOp::Mean, vec![], nan),
        (ReduceOp::LogSumExp, vec![], ninf),
    ];
    for (kind, xs, want) in cases {
        let got = run_on(&[("x", f64s(&[xs.len()], &xs))], |v| v[0].reduce(kind, &[0], false));
        assert!(close(got.to_f64_vec()[0], want, 1e-15), "{}({xs:?}) = {got:?}, want {want}", kind.name());
    }
    // an empty axis among non-empty ones keeps the other extents
    let got = run_on(&[("x", f64s(&[2, 0], &[]))], |v| v[0].reduce(ReduceOp::Sum, &[1], true));
    check(&got, DType::F64, &[2, 1], &[0.0, 0.0], 0.0);
}

#[test]
fn integer_reductions() {
    let x = i64s(&[2, 3], &[1, -2, 3, 4, 5, -6]);
    // (reduction, axes, result shape, result)
    let cases: [(ReduceOp, Axes, Dims, &[i64]); 5] = [
        (ReduceOp::Sum, &[0], &[3], &[5, 3, -3]),
        (ReduceOp::Sum, &[0, 1], &[], &[5]),
        (ReduceOp::Prod, &[1], &[2], &[-6, -120]),
        (ReduceOp::Max, &[1], &[2], &[3, 5]),
        (ReduceOp::Min, &[0], &[3], &[1, -2, -6]),
    ];
    for (kind, axes, shape, want) in cases {
        let got = run_on(&[("x", x.clone())], |v| v[0].reduce(kind, axes, false));
        assert_eq!(got, i64s(shape, want), "{} over {axes:?}", kind.name());
    }
    let wraps = run_on(&[("x", i64s(&[2], &[i64::MAX, 1]))], |v| v[0].sum(&[0]));
    assert_eq!(wraps, i64s(&[], &[i64::MIN]));
}

#[test]
fn cumsum_in_both_directions_along_each_axis() {
    let x = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cases: [(usize, bool, [f64; 6]); 4] = [
        (0, false, [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]),
        (1, false, [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]),
        (0, true, [5.0, 7.0, 9.0, 4.0, 5.0, 6.0]),
        (1, true, [6.0, 5.0, 3.0, 15.0, 11.0, 6.0]),
    ];
    for (axis, reverse, want) in cases {
        let got = run_on(&[("x", x.clone())], |v| v[0].apply(Op::Cumsum { axis, reverse }, &[]));
        check(&got, DType::F64, &[2, 3], &want, 0.0);
    }
    let got = run_on(&[("n", i64s(&[4], &[1, -2, 3, 10]))], |v| v[0].apply(Op::Cumsum { axis: 0, reverse: true }, &[]));
    assert_eq!(got, i64s(&[4], &[12, 11, 13, 10]));
}

// ---------------------------------------------------------------------------------------------
// shape ops

#[test]
fn reshape_expand_dims_and_squeeze_keep_row_major_order() {
    let data: Vec<f64> = (0..6).map(f64::from).collect();
    let x = f64s(&[2, 3], &data);
    let got = run_on(&[("x", x.clone())], |v| v[0].reshape(&[3, 2]));
    check(&got, DType::F64, &[3, 2], &data, 0.0);
    // a transposed operand reshapes in its own (logical) row-major order
    let got = run_on(&[("x", x.clone())], |v| v[0].t().reshape(&[6]));
    check(&got, DType::F64, &[6], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0], 0.0);
    let got = run_on(&[("x", x.clone())], |v| v[0].expand_dims(1));
    check(&got, DType::F64, &[2, 1, 3], &data, 0.0);
    let got = run_on(&[("x", f64s(&[1, 3, 1], &[7.0, 8.0, 9.0]))], |v| v[0].squeeze(&[0, 2]));
    check(&got, DType::F64, &[3], &[7.0, 8.0, 9.0], 0.0);
    let got = run_on(&[("b", bools(&[2, 2], &[true, false, false, true]))], |v| v[0].reshape(&[4]));
    assert_eq!(got, bools(&[4], &[true, false, false, true]));
}

#[test]
fn transpose_of_rank_3_under_every_permutation() {
    let shape = [2, 3, 4];
    let data: Vec<f64> = (0..24).map(f64::from).collect();
    let perms: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for perm in perms {
        let got = run_on(&[("x", f64s(&shape, &data))], |v| v[0].transpose(&perm));
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        // result index o reads operand index i with i[perm[t]] = o[t]
        let want: Vec<f64> = indices(&out_shape)
            .iter()
            .map(|o| {
                let mut i = [0; 3];
                for t in 0..3 {
                    i[perm[t]] = o[t];
                }
                data[flat(&shape, &i)]
            })
            .collect();
        check(&got, DType::F64, &out_shape, &want, 0.0);
    }
    let got = run_on(&[("n", i64s(&[2, 2], &[1, 2, 3, 4]))], |v| v[0].t());
    assert_eq!(got, i64s(&[2, 2], &[1, 3, 2, 4]));
}

#[test]
fn broadcast_to_repeats_along_new_and_unit_axes() {
    let got = run_on(&[("x", f64s(&[3, 1], &[1.0, 2.0, 3.0]))], |v| v[0].broadcast_to(&[2, 3, 2]));
    check(&got, DType::F64, &[2, 3, 2], &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0], 0.0);
    let got = run_on(&[("p", bools(&[], &[true]))], |v| v[0].broadcast_to(&[2]));
    assert_eq!(got, bools(&[2], &[true, true]));
}

#[test]
fn concatenate_and_stack_on_every_axis_and_dtype() {
    let a = f64s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b = f64s(&[2, 1], &[5.0, 6.0]);
    let got = run_on(&[("a", a.clone()), ("b", b)], |v| v[0].concatenate(&[&v[1]], 1));
    check(&got, DType::F64, &[2, 3], &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0], 0.0);
    let got = run_on(&[("a", a.clone()), ("c", f64s(&[1, 2], &[7.0, 8.0]))], |v| v[0].concatenate(&[&v[1], &v[0]], 0));
    check(&got, DType::F64, &[5, 2], &[1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0], 0.0);
    let got = run_on(&[("n", i64s(&[2], &[1, 2])), ("m", i64s(&[1], &[3]))], |v| v[0].concatenate(&[&v[1]], 0));
    assert_eq!(got, i64s(&[3], &[1, 2, 3]));

    let a2 = f64s(&[2, 2], &[5.0, 6.0, 7.0, 8.0]);
    let stacked = |axis: usize| run_on(&[("a", a.clone()), ("b", a2.clone())], |v| v[0].stack(&[&v[1]], axis));
    check(&stacked(0), DType::F64, &[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 0.0);
    check(&stacked(1), DType::F64, &[2, 2, 2], &[1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0], 0.0);
    check(&stacked(2), DType::F64, &[2, 2, 2], &[1.0, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 8.0], 0.0);
    let got =
        run_on(&[("p", bools(&[2], &[true, false])), ("q", bools(&[2], &[false, false]))], |v| v[0].stack(&[&v[1]], 1));
    assert_eq!(got, bools(&[2, 2], &[true, false, false, false]));
}

#[test]
fn slices_with_negative_steps_match_numpy() {
    let v10: Vec<f64> = (0..10).map(f64::from).collect();
    // (spec, numpy's x[spec] for x = arange(10))
    let cases: Vec<(PySlice, Vec<f64>)> = vec![
        ((None, None, Some(-1)), (0..10).rev().map(f64::from).collect()),
        ((Some(8), Some(1), Some(-3)), vec![8.0, 5.0, 2.0]),
        ((Some(-1), None, Some(-2)), vec![9.0, 7.0, 5.0, 3.0, 1.0]),
        ((Some(2), Some(7), Some(2)), vec![2.0, 4.0, 6.0]),
        ((Some(-3), None, None), vec![7.0, 8.0, 9.0]),
        ((Some(5), Some(5), None), vec![]),
        ((Some(3), Some(4), Some(-1)), vec![]),
    ];
    for (spec, want) in cases {
        let got = run_on(&[("x", f64s(&[10], &v10))], |v| v[0].slice(&[spec]));
        check(&got, DType::F64, &[want.len()], &want, 0.0);
    }
    // numpy: arange(12).reshape(3, 4)[2:0:-1, ::-2] = [[11, 9], [7, 5]]
    let data: Vec<f64> = (0..12).map(f64::from).collect();
    let got =
        run_on(&[("x", f64s(&[3, 4], &data))], |v| v[0].slice(&[(Some(2), Some(0), Some(-1)), (None, None, Some(-2))]));
    check(&got, DType::F64, &[2, 2], &[11.0, 9.0, 7.0, 5.0], 0.0);
    let got = run_on(&[("n", i64s(&[4], &[1, 2, 3, 4]))], |v| v[0].slice(&[(None, None, Some(-3))]));
    assert_eq!(got, i64s(&[2], &[4, 1]));
}

#[test]
fn gather_with_repeated_indices_on_any_axis() {
    let data: Vec<f64> = (0..6).map(f64::from).collect(); // [[0,1,2],[3,4,5]]
    let a = f64s(&[2, 3], &data);
    let got = run_on(&[("a", a.clone()), ("i", i64s(&[4], &[1, 1, 0, 1]))], |v| v[0].gather(&v[1], 0));
    check(&got, DType::F64, &[4, 3], &[3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 0.0);
    let got = run_on(&[("a", a.clone()), ("i", i64s(&[3], &[2, 2, 0]))], |v| v[0].gather(&v[1], 1));
    check(&got, DType::F64, &[2, 3], &[2.0, 2.0, 0.0, 5.0, 5.0, 3.0], 0.0);
    // a 2-D index on the middle axis: shape a[:1] + idx.shape + a[2:]
    let got = run_on(&[("a", a), ("i", i64s(&[2, 2], &[0, 2, 2, 1]))], |v| v[0].gather(&v[1], 1));
    check(&got, DType::F64, &[2, 2, 2], &[0.0, 2.0, 2.0, 1.0, 3.0, 5.0, 5.0, 4.0], 0.0);
    // a scalar index drops the axis; other dtypes gather alike
    let got = run_on(&[("a", i64s(&[3], &[10, 20, 30])), ("i", i64s(&[], &[2]))], |v| v[0].gather(&v[1], 0));
    assert_eq!(got, i64s(&[], &[30]));
    let got = run_on(&[("p", bools(&[2], &[true, false])), ("i", i64s(&[3], &[1, 0, 1]))], |v| v[0].gather(&v[1], 0));
    assert_eq!(got, bools(&[3], &[false, true, false]));
}

#[test]
fn scatter_add_accumulates_repeated_indices() {
    let u = f64s(&[4], &[1.0, 2.0, 4.0, 8.0]);
    let got = run_on(&[("u", u), ("i", i64s(&[4], &[2, 0, 2, 2]))], |v| v[0].scatter_add(&v[1], 0, 3));
    check(&got, DType::F64, &[3], &[2.0, 0.0, 13.0], 0.0);
    let u = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = run_on(&[("u", u), ("i", i64s(&[3], &[1, 1, 0]))], |v| v[0].scatter_add(&v[1], 1, 2));
    check(&got, DType::F64, &[2, 2], &[3.0, 3.0, 6.0, 9.0], 0.0);
    let got =
        run_on(&[("u", i64s(&[3], &[5, 6, 7])), ("i", i64s(&[3], &[0, 0, 0]))], |v| v[0].scatter_add(&v[1], 0, 2));
    assert_eq!(got, i64s(&[2], &[18, 0]));
}

#[test]
fn scatter_add_is_the_adjoint_of_gather() {
    // ⟨gather(a, idx), u⟩ = ⟨a, scatter_add(u, idx)⟩ for every a, u
    let mut rng = StdRng::seed_from_u64(42);
    let configs: [(&[usize], usize, &[usize]); 4] =
        [(&[5], 0, &[8]), (&[4, 3], 0, &[6]), (&[3, 5, 2], 1, &[2, 4]), (&[2, 6], 1, &[])];
    for (a_shape, axis, idx_shape) in configs {
        let extent = a_shape[axis];
        let n_idx: usize = idx_shape.iter().product();
        let idx: Vec<i64> = (0..n_idx).map(|_| rng.random_range(0..extent as i64)).collect();
        let a = f64s(a_shape, &random_vec(&mut rng, a_shape.iter().product()));
        let g_shape: Vec<usize> = [&a_shape[..axis], idx_shape, &a_shape[axis + 1..]].concat();
        let u = f64s(&g_shape, &random_vec(&mut rng, g_shape.iter().product()));
        let ins = [("a", a.clone()), ("u", u.clone()), ("i", i64s(idx_shape, &idx))];
        let b = GraphBuilder::new("adjoint");
        let vars: Vec<Var> = ins.iter().map(|(n, v)| b.input(n, v.dtype(), v.shape().dims())).collect();
        let gathered = vars[0].gather(&vars[2], axis);
        let scattered = vars[1].scatter_add(&vars[2], axis, extent);
        let g = b.finish(&[&gathered, &scattered]).unwrap();
        let outs = run(&g, &ins).unwrap();
        let dot = |x: &Value, y: &Value| x.to_f64_vec().iter().zip(y.to_f64_vec()).map(|(p, q)| p * q).sum::<f64>();
        let (lhs, rhs) = (dot(&outs[0], &u), dot(&a, &outs[1]));
        assert_eq!(outs[1].shape().dims(), a_shape);
        assert!((lhs - rhs).abs() <= 1e-12 * (1.0 + lhs.abs()), "{a_shape:?} axis {axis}: {lhs} vs {rhs}");
    }
}

// ---------------------------------------------------------------------------------------------
// linear algebra

#[test]
fn matmul_in_all_four_forms() {
    let m = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let v3 = f64s(&[3], &[1.0, -1.0, 2.0]);
    let v2 = f64s(&[2], &[2.0, -1.0]);
    let n = f64s(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 2.0, -1.0]);
    let prod = |x: &Value, y: &Value| run_on(&[("x", x.clone()), ("y", y.clone())], |v| v[0].matmul(&v[1]));
    check(&prod(&v3, &v3), DType::F64, &[], &[6.0], 0.0);
    check(&prod(&m, &v3), DType::F64, &[2], &[5.0, 11.0], 0.0);
    check(&prod(&v2, &m), DType::F64, &[3], &[-2.0, -1.0, 0.0], 0.0);
    check(&prod(&m, &n), DType::F64, &[2, 2], &[7.0, -1.0, 16.0, -1.0], 0.0);
    let mi = i64s(&[2, 2], &[1, 2, 3, 4]);
    let vi = i64s(&[2], &[5, -1]);
    assert_eq!(prod(&mi, &mi), i64s(&[2, 2], &[7, 10, 15, 22]));
    assert_eq!(prod(&mi, &vi), i64s(&[2], &[3, 11]));
    assert_eq!(prod(&vi, &mi), i64s(&[2], &[2, 6]));
    assert_eq!(prod(&vi, &vi), i64s(&[], &[26]));
}

#[test]
fn logistic_regression_sized_matmul_matches_naive_loops() {
    let (n, k) = (5000, 25);
    let mut rng = StdRng::seed_from_u64(3);
    let x = random_vec(&mut rng, n * k);
    let beta = random_vec(&mut rng, k);
    let y: Vec<f64> = (0..n).map(|_| f64::from(u8::from(rng.random::<bool>()))).collect();
    let ins = [("X", f64s(&[n, k], &x)), ("beta", f64s(&[k], &beta)), ("y", f64s(&[n], &y))];
    let got = run_on(&ins, |v| {
        let eta = v[0].matmul(&v[1]);
        (&(&v[2] * &eta) - &eta.softplus()).sum(&[0])
    });
    let want: f64 = (0..n)
        .map(|i| {
            let eta: f64 = (0..k).map(|j| x[i * k + j] * beta[j]).sum();
            y[i] * eta - (1.0 + eta.exp()).ln()
        })
        .sum();
    check(&got, DType::F64, &[], &[want], 1e-12);
}

#[test]
fn outer_product() {
    let got = run_on(&[("a", f64s(&[2], &[1.0, -2.0])), ("b", f64s(&[3], &[3.0, 4.0, 0.5]))], |v| v[0].outer(&v[1]));
    check(&got, DType::F64, &[2, 3], &[3.0, 4.0, 0.5, -6.0, -8.0, -1.0], 0.0);
}

/// A known lower factor and `A = L Lᵀ` as numpy computes it.
#[rustfmt::skip]
fn spd_5x5() -> (Vec<f64>, Vec<f64>) {
    let l = vec![
        2.0, 0.0, 0.0, 0.0, 0.0,
        1.0, 3.0, 0.0, 0.0, 0.0,
        -1.0, 0.5, 1.5, 0.0, 0.0,
        0.5, -2.0, 1.0, 2.5, 0.0,
        3.0, 1.0, -0.5, 0.25, 1.2,
    ];
    let a = vec![
        4.0, 2.0, -2.0, 1.0, 6.0,
        2.0, 10.0, 0.5, -5.5, 6.0,
        -2.0, 0.5, 3.5, 0.0, -3.25,
        1.0, -5.5, 0.0, 11.5, -0.375,
        6.0, 6.0, -3.25, -0.375, 11.7525,
    ];
    (l, a)
}

#[test]
fn cholesky_of_a_5x5_spd_matrix() {
    let (l_known, a) = spd_5x5();
    let got = run_on(&[("A", f64s(&[5, 5], &a))], |v| v[0].cholesky());
    check(&got, DType::F64, &[5, 5], &l_known, 1e-14);
    let l = got.to_f64_vec();
    for i in 0..5 {
        for j in 0..5 {
            if j > i {
                assert_eq!(l[i * 5 + j], 0.0, "L[{i},{j}] above the diagonal");
            }
            let llt: f64 = (0..5).map(|k| l[i * 5 + k] * l[j * 5 + k]).sum();
            assert!((llt - a[i * 5 + j]).abs() <= 1e-13, "(L Lᵀ)[{i},{j}] = {llt}, A = {}", a[i * 5 + j]);
        }
    }
    // only the lower triangle is read
    let mut garbage_upper = a.clone();
    for i in 0..5 {
        for j in i + 1..5 {
            garbage_upper[i * 5 + j] = 1e6 * (i + j) as f64;
        }
    }
    assert_eq!(run_on(&[("A", f64s(&[5, 5], &garbage_upper))], |v| v[0].cholesky()), got);
}

#[test]
fn cholesky_of_a_non_positive_definite_matrix_is_nan() {
    for m in [[1.0, 2.0, 2.0, 1.0], [-1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, f64::NAN]] {
        let got = run_on(&[("A", f64s(&[2, 2], &m))], |v| v[0].cholesky());
        check(&got, DType::F64, &[2, 2], &[f64::NAN; 4], 0.0);
    }
}

#[test]
fn triangular_solve_residuals_for_both_triangles_and_rhs_forms() {
    let (l, _) = spd_5x5();
    let mut rng = StdRng::seed_from_u64(11);
    let upper: Vec<f64> = (0..25).map(|k| l[(k % 5) * 5 + k / 5]).collect(); // Lᵀ
    for (lower, tri) in [(true, &l), (false, &upper)] {
        // fill the ignored triangle with garbage: it must not be read
        let a: Vec<f64> = (0..25)
            .map(|k| {
                let (i, j) = (k / 5, k % 5);
                let ignored = if lower { j > i } else { j < i };
                if ignored { 99.0 } else { tri[k] }
            })
            .collect();
        for rhs_shape in [vec![5], vec![5, 3]] {
            let cols = rhs_shape.get(1).copied().unwrap_or(1);
            let b = random_vec(&mut rng, 5 * cols);
            let got = run_on(&[("A", f64s(&[5, 5], &a)), ("b", f64s(&rhs_shape, &b))], |v| {
                v[0].triangular_solve(&v[1], lower)
            });
            assert_eq!(got.shape().dims(), &rhs_shape[..]);
            let x = got.to_f64_vec();
            for i in 0..5 {
                for c in 0..cols {
                    let ax: f64 = (0..5).map(|j| tri[i * 5 + j] * x[j * cols + c]).sum();
                    assert!(
                        (ax - b[i * cols + c]).abs() <= 1e-13,
                        "lower={lower} row {i} col {c}: {ax} vs {}",
                        b[i * cols + c]
                    );
                }
            }
        }
    }
}

#[test]
fn logdet_chol_diag_and_diag_matrix() {
    let (l, a) = spd_5x5();
    // det(A) = Π Lᵢᵢ² = (2·3·1.5·2.5·1.2)² = 27²
    let got = run_on(&[("L", f64s(&[5, 5], &l))], |v| v[0].logdet_chol());
    check(&got, DType::F64, &[], &[2.0 * 27f64.ln()], 1e-15);
    let got = run_on(&[("A", f64s(&[5, 5], &a))], |v| v[0].diag());
    check(&got, DType::F64, &[5], &[4.0, 10.0, 3.5, 11.5, 11.7525], 0.0);
    let got = run_on(&[("d", f64s(&[2], &[3.0, -1.0]))], |v| v[0].diag_matrix());
    check(&got, DType::F64, &[2, 2], &[3.0, 0.0, 0.0, -1.0], 0.0);
    let got = run_on(&[("d", i64s(&[3], &[1, 2, 3]))], |v| v[0].diag_matrix());
    assert_eq!(got, i64s(&[3, 3], &[1, 0, 0, 0, 2, 0, 0, 0, 3]));
    let got = run_on(&[("d", bools(&[2], &[true, true]))], |v| v[0].diag_matrix());
    assert_eq!(got, bools(&[2, 2], &[true, false, false, true]));
}

// ---------------------------------------------------------------------------------------------
// whole-graph evaluation and errors

fn small_graph() -> Graph {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let idx = b.input("idx", DType::I64, &[2]);
    let out = x.exp().gather(&idx, 0).sum(&[0]);
    b.finish(&[&out, &x]).unwrap()
}

#[test]
fn eval_returns_outputs_in_order_and_eval_nodes_every_live_node() {
    let g = small_graph();
    let ins = input_map(&[("x", f64s(&[3], &[0.0, 1.0, 2.0])), ("idx", i64s(&[2], &[2, 2]))]);
    let outs = eval(&g, &ins).unwrap();
    assert_eq!(outs.len(), 2);
    check(&outs[0], DType::F64, &[], &[2.0 * 2f64.exp()], 1e-15);
    assert_eq!(outs[1], ins["x"]);
    let all = eval_nodes(&g, &ins).unwrap();
    let live = g.live_nodes();
    assert_eq!(all.len(), live.len());
    for id in live {
        assert_eq!(all[&id].ty(), *g.ty(id), "node {id}");
    }
    assert_eq!(all[&g.outputs()[0]], outs[0]);
}

#[test]
fn eval_op_folds_one_node_and_checks_operand_types() {
    let a = f64s(&[2], &[1.0, 4.0]);
    let out_ty = TensorType::new(DType::F64, [2]);
    let got = eval_op(&Op::Unary(UnaryOp::Sqrt), &[&a], &out_ty).unwrap();
    check(&got, DType::F64, &[2], &[1.0, 2.0], 0.0);
    let c = Constant::i64(3);
    assert_eq!(eval_op(&Op::Const(c), &[], &TensorType::scalar(DType::I64)).unwrap(), i64s(&[], &[3]));
    let err = eval_op(&Op::Unary(UnaryOp::Sqrt), &[&a], &TensorType::new(DType::F64, [3])).unwrap_err();
    assert_eq!(err.to_string(), "sqrt: operands give type f64[2], but the node's type is f64[3]");
    let n = i64s(&[2], &[1, 2]);
    let err = eval_op(&Op::Binary(BinaryOp::Add), &[&a, &n], &out_ty).unwrap_err();
    assert!(matches!(err, EvalError::Type(_)), "{err:?}");
    assert!(err.to_string().starts_with("add: operand dtypes differ: f64[2] and i64[2]"), "{err}");
}

#[test]
fn missing_input_is_an_error_naming_it() {
    let g = small_graph();
    let err = eval(&g, &input_map(&[("x", f64s(&[3], &[0.0; 3]))])).unwrap_err();
    assert_eq!(err.to_string(), "missing input %idx (declared i64[2])");
}

#[test]
fn input_of_the_wrong_shape_or_dtype_is_an_error() {
    let g = small_graph();
    let err = eval(&g, &input_map(&[("x", f64s(&[4], &[0.0; 4])), ("idx", i64s(&[2], &[0, 1]))])).unwrap_err();
    assert_eq!(err.to_string(), "input %x has type f64[4], but the graph declares f64[3]");
    let err = eval(&g, &input_map(&[("x", f64s(&[3], &[0.0; 3])), ("idx", f64s(&[2], &[0.0, 1.0]))])).unwrap_err();
    assert_eq!(err.to_string(), "input %idx has type f64[2], but the graph declares i64[2]");
}

#[test]
fn unknown_input_is_an_error_listing_the_declared_ones() {
    let g = small_graph();
    let ins = [("x", f64s(&[3], &[0.0; 3])), ("idx", i64s(&[2], &[0, 1])), ("y", Value::scalar(1.0))];
    let err = eval(&g, &input_map(&ins)).unwrap_err();
    assert_eq!(err.to_string(), "unknown input %y: the graph's inputs are %x, %idx");
}

#[test]
fn out_of_range_indices_are_errors_naming_op_index_and_extent() {
    let g = small_graph();
    for (bad, index) in [([0, 3], 3), ([-1, 0], -1)] {
        let err = eval(&g, &input_map(&[("x", f64s(&[3], &[0.0; 3])), ("idx", i64s(&[2], &bad))])).unwrap_err();
        assert_eq!(err, EvalError::IndexOutOfRange { op: "gather", index, axis: 0, extent: 3 });
        assert_eq!(err.to_string(), format!("gather: index {index} is out of range for axis 0 of extent 3"));
    }
    let b = GraphBuilder::new("s");
    let u = b.input("u", DType::F64, &[2, 2]);
    let i = b.input("i", DType::I64, &[2]);
    let out = u.scatter_add(&i, 1, 4);
    let g = b.finish(&[&out]).unwrap();
    let err = run(&g, &[("u", f64s(&[2, 2], &[1.0; 4])), ("i", i64s(&[2], &[1, 4]))]).unwrap_err();
    assert_eq!(err.to_string(), "scatter_add: index 4 is out of range for axis 1 of extent 4");
}

#[test]
fn inputs_in_any_memory_layout_evaluate_in_logical_order() {
    // a column-major (transposed) input array: logical [[0, 1, 2], [3, 4, 5]]
    let fortran = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]).unwrap().reversed_axes();
    assert!(!fortran.is_standard_layout());
    let x = Value::F64(fortran);
    let ins = [("x", x.clone()), ("i", i64s(&[2], &[1, 1]))];
    let got = run_on(&ins, |v| v[0].gather(&v[1], 1));
    check(&got, DType::F64, &[2, 2], &[1.0, 1.0, 4.0, 4.0], 0.0);
    let got = run_on(&[("x", x.clone())], |v| v[0].reshape(&[6]));
    check(&got, DType::F64, &[6], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 0.0);
    let got = run_on(&[("x", x.clone()), ("v", f64s(&[3], &[1.0, 1.0, 1.0]))], |v| v[0].matmul(&v[1]));
    check(&got, DType::F64, &[2], &[3.0, 12.0], 0.0);
    let got = run_on(&[("x", x.clone()), ("i", i64s(&[3], &[0, 2, 0]))], |v| v[0].scatter_add(&v[1], 1, 3));
    check(&got, DType::F64, &[2, 3], &[2.0, 0.0, 1.0, 8.0, 0.0, 4.0], 0.0);
    let got = run_on(&[("x", x)], |v| v[0].sum(&[1]));
    check(&got, DType::F64, &[2], &[3.0, 12.0], 0.0);
}

#[test]
fn an_absurdly_large_static_result_is_an_error_not_an_abort() {
    // Rejected when the node is built, so no evaluator ever sees such a shape.
    let b = GraphBuilder::new("big");
    let x = b.input("x", DType::F64, &[1]);
    let huge = x.broadcast_to(&[1 << 40, 1 << 40]);
    let err = b.finish(&[&huge]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "broadcast_to: result type f64[1099511627776,1099511627776] has more than 2^40 elements"
    );
}

#[test]
fn zero_extent_tensors_flow_through_every_shape_and_linear_algebra_op() {
    let empty = f64s(&[2, 0], &[]);
    let no_idx = i64s(&[0], &[]);
    let ins = [("e", empty.clone()), ("i", no_idx.clone()), ("m", f64s(&[0, 3], &[]))];
    let b = GraphBuilder::new("empty");
    let v: Vec<Var> = ins.iter().map(|(n, val)| b.input(n, val.dtype(), val.shape().dims())).collect();
    let z = b.constant(Constant::filled_f64([0, 0].into(), 0.0));
    let outs = [
        v[0].matmul(&v[2]),                             // (2,0)·(0,3) = zeros (2,3)
        v[0].t().gather(&v[1], 0),                      // (0,2)
        v[0].gather(&v[1], 1).scatter_add(&v[1], 1, 4), // zeros (2,4)
        v[0].apply(Op::Cumsum { axis: 1, reverse: true }, &[]),
        v[0].reduce(ReduceOp::Max, &[0], false), // shape (0): no lane is empty
        v[0].concatenate(&[&v[0]], 1),
        v[0].slice(&[(None, None, Some(-1))]),
        z.cholesky(),
        z.triangular_solve(&z, true),
        z.logdet_chol(),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let g = b.finish(&refs).unwrap();
    let got = run(&g, &ins).unwrap();
    check(&got[0], DType::F64, &[2, 3], &[0.0; 6], 0.0);
    check(&got[1], DType::F64, &[0, 2], &[], 0.0);
    check(&got[2], DType::F64, &[2, 4], &[0.0; 8], 0.0);
    check(&got[3], DType::F64, &[2, 0], &[], 0.0);
    check(&got[4], DType::F64, &[0], &[], 0.0);
    check(&got[5], DType::F64, &[2, 0], &[], 0.0);
    check(&got[6], DType::F64, &[2, 0], &[], 0.0);
    check(&got[7], DType::F64, &[0, 0], &[], 0.0);
    check(&got[8], DType::F64, &[0, 0], &[], 0.0);
    check(&got[9], DType::F64, &[], &[0.0], 0.0);
}

/// `eval_checked` reports i64 results that wrapped (and casts of floats beyond the i64 range)
/// where `eval` wraps, and accepts exact results that fit even when partial sums wrapped.
#[test]
fn checked_evaluation_reports_integer_overflow_and_only_overflow() {
    let both = |inputs: &[(&str, Value)], build: &dyn Fn(&GraphBuilder) -> Var| {
        let b = GraphBuilder::new("f");
        let out = build(&b);
        let g = b.finish(&[&out]).unwrap();
        let wrapped = eval(&g, &input_map(inputs)).map(|mut v| v.remove(0));
        (wrapped, eval_checked(&g, &input_map(inputs)).map(|mut v| v.remove(0)))
    };
    let big = i64::MAX / 2 + 1; // 2^62
    let x = || i64s(&[3], &[big, big, -big]);
    type Case = (&'static str, Vec<(&'static str, Value)>, Box<dyn Fn(&GraphBuilder) -> Var>);
    let overflows: Vec<Case> = vec![
        ("add", vec![("x", x())], Box::new(|b| &b.input("x", DType::I64, &[3]) + &b.input("x", DType::I64, &[3]))),
        ("mul", vec![("x", x())], Box::new(|b| &b.input("x", DType::I64, &[3]) * &b.input("x", DType::I64, &[3]))),
        ("cumsum", vec![("x", x())], Box::new(|b| b.input("x", DType::I64, &[3]).cumsum(0))),
        ("matmul", vec![("m", i64s(&[1, 2], &[big, big])), ("v", i64s(&[2], &[1, 1]))], Box::new(|b| b.input("m", DType::I64, &[1, 2]).matmul(&b.input("v", DType::I64, &[2])))),
        ("cast", vec![("f", f64s(&[2], &[1.0, 1e19]))], Box::new(|b| b.input("f", DType::F64, &[2]).cast(DType::I64))),
        ("cast", vec![("f", f64s(&[1], &[f64::NAN]))], Box::new(|b| b.input("f", DType::F64, &[1]).cast(DType::I64))),
    ];
    for (op, inputs, build) in &overflows {
        let (wrapped, checked) = both(inputs, build.as_ref());
        assert!(wrapped.is_ok(), "{op}: eval wraps: {wrapped:?}");
        assert!(matches!(checked, Err(EvalError::IntOverflow { op: name }) if name.contains(op)), "{op}: {checked:?}");
    }
    // 2^62 + 2^62 wraps, then − 2^62 brings the exact sum 2^62 back in range.
    let (wrapped, checked) = both(&[("x", x())], &|b: &GraphBuilder| b.input("x", DType::I64, &[3]).sum_all());
    assert_eq!(checked.unwrap(), wrapped.unwrap());
    let (_, checked) = both(&[("f", f64s(&[2], &[-9.2e18, 3.7]))], &|b: &GraphBuilder| b.input("f", DType::F64, &[2]).cast(DType::I64));
    assert_eq!(checked.unwrap(), i64s(&[2], &[-9_200_000_000_000_000_000, 3]));
}
