//! The benchmark models: the hand-written gradients agree with finite differences, and the
//! JIT-compiled graphs (logp + symbolic gradient) agree with the hand-written functions.

mod models;

use models::{Hand, eight_schools, logistic, peer_point, radon};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_codegen::LogDensityFn;
use tessera_graph::Graph;
use tessera_sampler::LogDensity;

fn points(dim: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pts = vec![peer_point(dim), vec![0.0; dim]];
    pts.extend((0..3).map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect()));
    pts
}

/// Central differences of the hand-written logp agree with its closed-form gradient.
fn check_hand_gradient(hand: &mut dyn Hand, seed: u64, rtol: f64) {
    let dim = hand.dim();
    for x in points(dim, seed) {
        let mut g = vec![0.0; dim];
        hand.logp_grad(&x, &mut g);
        let mut scratch = vec![0.0; dim];
        for i in 0..dim {
            let h = 1e-5 * (1.0 + x[i].abs());
            let mut xp = x.clone();
            xp[i] += h;
            let fp = hand.logp_grad(&xp, &mut scratch);
            xp[i] -= 2.0 * h;
            let fm = hand.logp_grad(&xp, &mut scratch);
            let fd = (fp - fm) / (2.0 * h);
            let tol = rtol * (1.0 + fd.abs().max(g[i].abs()));
            assert!((fd - g[i]).abs() <= tol, "∂/∂x{i}: closed form {} vs finite difference {fd}", g[i]);
        }
    }
}

/// The JIT's logp and gradient agree with the hand-written ones.
fn check_jit(graph: &Graph, hand: &mut dyn Hand, seed: u64) {
    let mut f = LogDensityFn::from_logp(graph).expect("compile");
    assert_eq!(LogDensity::dim(&f), hand.dim());
    let dim = hand.dim();
    for x in points(dim, seed) {
        let (mut gj, mut gh) = (vec![0.0; dim], vec![0.0; dim]);
        let lj = LogDensity::logp_grad(&mut f, &x, &mut gj).expect("call");
        let lh = hand.logp_grad(&x, &mut gh);
        assert!((lj - lh).abs() <= 1e-10 * lh.abs().max(1.0), "logp: jit {lj} vs hand {lh}");
        for i in 0..dim {
            assert!((gj[i] - gh[i]).abs() <= 1e-9 * (1.0 + gh[i].abs()), "grad {i}: jit {} vs hand {}", gj[i], gh[i]);
        }
    }
    // The interpreter agrees too (at the peers' point).
    let x = peer_point(dim);
    let inputs = std::collections::HashMap::from([(
        graph.input_name(graph.inputs()[0]).unwrap().to_string(),
        tessera_graph::Value::F64(ndarray::ArrayD::from_shape_vec(vec![dim], x.clone()).unwrap()),
    )]);
    let want = tessera_graph::eval(graph, &inputs).unwrap()[0].to_scalar_f64().unwrap();
    let mut g = vec![0.0; dim];
    let got = f.logp_grad(&x, &mut g).unwrap();
    assert!((got - want).abs() <= 1e-10 * want.abs().max(1.0), "logp: jit {got} vs interpreter {want}");
}

#[test]
fn logistic_regression_hand_gradient_matches_finite_differences() {
    check_hand_gradient(&mut logistic().1, 1, 1e-6);
}

#[test]
fn hierarchical_radon_hand_gradient_matches_finite_differences() {
    check_hand_gradient(&mut radon().1, 2, 1e-6);
}

#[test]
fn eight_schools_hand_gradient_matches_finite_differences() {
    check_hand_gradient(&mut eight_schools().1, 3, 1e-6);
}

#[test]
fn logistic_regression_jit_matches_hand_written() {
    let (g, mut h) = logistic();
    check_jit(&g, &mut h, 4);
}

#[test]
fn hierarchical_radon_jit_matches_hand_written() {
    let (g, mut h) = radon();
    check_jit(&g, &mut h, 5);
}

#[test]
fn eight_schools_jit_matches_hand_written() {
    let (g, mut h) = eight_schools();
    check_jit(&g, &mut h, 6);
}
