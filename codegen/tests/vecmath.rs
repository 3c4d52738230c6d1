//! Accuracy of the inline f64x2 exp, log and log1p (and softplus, sigmoid built on them)
//! against std over sweeps and special values (0, ±inf, NaN, subnormals, huge arguments).

use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_codegen::{CompileOptions, compile_with_stats};
use tessera_graph::{DType, GraphBuilder, UnaryOp, Value};

/// Distance in units in the last place (0 when equal or both NaN).
fn ulps(a: f64, b: f64) -> u64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    let ord = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 { i64::MIN.wrapping_sub(bits) } else { bits }
    };
    ord(a).abs_diff(ord(b))
}

/// Evaluates `op` over `xs` with the JIT (an even count, so every element takes the vector
/// path); also checks that the code really is vector code.
fn jit_eval(op: UnaryOp, xs: &[f64]) -> Vec<f64> {
    assert!(xs.len().is_multiple_of(2));
    let b = GraphBuilder::new("v");
    let x = b.input("x", DType::F64, &[xs.len()]);
    let g = b.finish(&[&x.unary(op)]).unwrap();
    let opts = CompileOptions { clif_text: true, ..CompileOptions::default() };
    let (compiled, stats) = compile_with_stats(&g, &opts).unwrap();
    let clif = stats.clif.unwrap();
    assert!(clif.contains("f64x2"), "expected vector code for {}", op.name());
    assert!(!clif.contains("call"), "expected inline code for {}, found a call:\n{clif}", op.name());
    let input = Value::F64(ArrayD::from_shape_vec(vec![xs.len()], xs.to_vec()).unwrap());
    compiled.call_values(&[input]).unwrap()[0].to_f64_vec()
}

fn specials() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        1e-310,
        -1e-310,
        f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
        f64::MAX,
        f64::MIN,
        1e300,
        -1e300,
        1.0,
        -1.0,
        -0.9999999999999999,
        709.782712893384,
        709.7827128933841,
        710.0,
        -745.1332191019411,
        -745.1332191019412,
        -746.0,
        -708.4,
        1e-20,
        -1e-20,
        0.41421356237309503,
        -0.29289321881345254,
        std::f64::consts::LN_2,
        std::f64::consts::SQRT_2,
        std::f64::consts::FRAC_1_SQRT_2,
    ];
    if v.len() % 2 == 1 {
        v.push(2.0);
    }
    v
}

/// The worst distance from `reference` over `xs`, with the argument where it occurs.
fn worst(op: UnaryOp, xs: &[f64], reference: impl Fn(f64) -> f64) -> (u64, f64) {
    let got = jit_eval(op, xs);
    let w = xs.iter().zip(&got).map(|(&x, &y)| (ulps(y, reference(x)), x)).max_by_key(|p| p.0).unwrap_or((0, 0.0));
    eprintln!("{}: worst {} ulp at {} over {} arguments", op.name(), w.0, w.1, xs.len());
    w
}

fn sweep(rng: &mut StdRng, lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect();
    v.extend((0..n).map(|_| rng.random_range(lo..hi)));
    v
}

#[test]
fn exp_within_two_ulp_of_std() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut xs = sweep(&mut rng, -745.2, 709.8, 100_000);
    xs.extend(sweep(&mut rng, -1.0, 1.0, 50_000));
    xs.extend((0..50_000).map(|_| rng.random_range(-1e-6..1e-6)));
    xs.extend(specials());
    let (u, at) = worst(UnaryOp::Exp, &xs, f64::exp);
    assert!(u <= 2, "exp: {u} ulp at {at}");
}

#[test]
fn log_within_two_ulp_of_std() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut xs: Vec<f64> = (0..100_000).map(|_| rng.random_range(-745.0f64..709.0).exp()).collect();
    xs.extend(sweep(&mut rng, 0.0, 3.0, 50_000));
    xs.extend((0..20_000).map(|i| f64::from_bits(1 + i * 1_000_003)));
    xs.extend((0..20_000).map(|_| -rng.random_range(0.0..10.0)));
    xs.extend(specials());
    let (u, at) = worst(UnaryOp::Log, &xs, f64::ln);
    assert!(u <= 2, "log: {u} ulp at {at}");
}

#[test]
fn log1p_within_two_ulp_of_std() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut xs = sweep(&mut rng, -1.0, 1.0, 100_000);
    xs.extend((0..50_000).map(|_| rng.random_range(-745.0f64..709.0).exp()));
    xs.extend((0..50_000).map(|_| -rng.random_range(-745.0f64..0.0).exp()));
    xs.extend((0..20_000).map(|_| rng.random_range(-1e-8..1e-8)));
    xs.extend((0..20_000).map(|_| -rng.random_range(1.0..100.0)));
    xs.extend(specials());
    let (u, at) = worst(UnaryOp::Log1p, &xs, f64::ln_1p);
    assert!(u <= 2, "log1p: {u} ulp at {at}");
}

#[test]
fn softplus_log_sigmoid_and_sigmoid_match_the_reference_closely() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut xs = sweep(&mut rng, -800.0, 800.0, 50_000);
    xs.extend(sweep(&mut rng, -40.0, 40.0, 50_000));
    xs.extend(specials());
    for op in [UnaryOp::Softplus, UnaryOp::LogSigmoid, UnaryOp::Sigmoid] {
        // Another (equally valid) formula than `special`: a few ulp apart at most.
        let (u, at) = worst(op, &xs, |x| op.eval_f64(x));
        assert!(u <= 4, "{}: {u} ulp at {at}", op.name());
    }
}
