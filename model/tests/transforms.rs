//! Transforms: round trips, log-Jacobians against finite differences of the transform
//! (ln |det J| of the numerical Jacobian), and the graph form against the f64 form.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn, arr0, arr1};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_graph::{DType, GraphBuilder, Value};
use tessera_model::Transform;

fn transforms() -> Vec<(Transform, Vec<usize>)> {
    vec![
        (Transform::Identity, vec![3]),
        (Transform::Lower(arr0(0.0).into_dyn()), vec![]),
        (Transform::Lower(arr1(&[-1.0, 2.0, 0.5]).into_dyn()), vec![3]),
        (Transform::Upper(arr0(4.0).into_dyn()), vec![2, 2]),
        (Transform::LowerUpper(arr0(0.0).into_dyn(), arr0(1.0).into_dyn()), vec![]),
        (Transform::LowerUpper(arr0(-3.0).into_dyn(), arr1(&[-2.0, 5.0, 100.0]).into_dyn()), vec![3]),
        (Transform::Simplex, vec![1]),
        (Transform::Simplex, vec![2]),
        (Transform::Simplex, vec![3]),
        (Transform::Simplex, vec![6]),
        (Transform::Ordered, vec![1]),
        (Transform::Ordered, vec![2]),
        (Transform::Ordered, vec![5]),
        (Transform::OrderedLower(0.0), vec![3]),
        (Transform::OrderedLower(-2.5), vec![4]),
    ]
}

fn random_u(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-2.5..2.5)).collect()
}

#[test]
fn constrain_then_unconstrain_is_the_identity() {
    let mut rng = StdRng::seed_from_u64(11);
    for (t, shape) in transforms() {
        for _ in 0..20 {
            let u = random_u(&mut rng, t.unconstrained_size(&shape));
            let (x, _) = t.constrain(&u, &shape).unwrap();
            assert_eq!(x.len(), shape.iter().product::<usize>());
            let back = t.unconstrain(&x, &shape).unwrap();
            for (a, b) in u.iter().zip(&back) {
                assert!((a - b).abs() < 1e-9, "{t} {shape:?}: u {u:?} -> x {x:?} -> {back:?}");
            }
            // and the other way round: x -> u -> x
            let (again, _) = t.constrain(&back, &shape).unwrap();
            for (a, b) in x.iter().zip(&again) {
                assert!((a - b).abs() < 1e-12 * a.abs().max(1.0), "{t}: {x:?} vs {again:?}");
            }
        }
    }
}

#[test]
fn constrained_values_satisfy_the_constraint() {
    let mut rng = StdRng::seed_from_u64(5);
    for (t, shape) in transforms() {
        let u: Vec<f64> = (0..t.unconstrained_size(&shape)).map(|_| rng.random_range(-6.0..6.0)).collect();
        let (x, _) = t.constrain(&u, &shape).unwrap();
        match &t {
            Transform::Simplex => {
                assert!(x.iter().all(|v| *v > 0.0), "{x:?}");
                assert!((x.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
            Transform::Ordered | Transform::OrderedLower(_) => {
                assert!(x.windows(2).all(|w| w[0] < w[1]), "{x:?}");
                if let Transform::OrderedLower(a) = t {
                    assert!(x[0] > a);
                }
            }
            _ => {
                let (lo, hi) = t.range();
                assert!(x.iter().all(|v| *v > lo && *v < hi), "{t}: {x:?}");
            }
        }
    }
}

/// ln |det A| by Gaussian elimination with partial pivoting.
fn log_abs_det(mut a: Vec<Vec<f64>>) -> f64 {
    let n = a.len();
    let mut total = 0.0;
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).unwrap();
        a.swap(col, pivot);
        let p = a[col][col];
        total += p.abs().ln();
        let (top, bottom) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for row in bottom {
            let f = row[col] / p;
            for (x, q) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * q;
            }
        }
    }
    total
}

/// The log-Jacobian equals ln |det J| of the central finite-difference Jacobian of the map from
/// the unconstrained values to the free constrained ones (all but the last for a simplex,
/// which the others determine).
#[test]
fn log_jacobian_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(3);
    for (t, shape) in transforms() {
        let n = t.unconstrained_size(&shape);
        if n == 0 {
            let (_, lj) = t.constrain(&[], &shape).unwrap();
            assert_eq!(lj, 0.0);
            continue;
        }
        for _ in 0..5 {
            let u = random_u(&mut rng, n);
            let (_, lj) = t.constrain(&u, &shape).unwrap();
            let h = 1e-6;
            let columns: Vec<Vec<f64>> = (0..n)
                .map(|j| {
                    let (mut up, mut down) = (u.clone(), u.clone());
                    up[j] += h;
                    down[j] -= h;
                    let (xu, _) = t.constrain(&up, &shape).unwrap();
                    let (xd, _) = t.constrain(&down, &shape).unwrap();
                    (0..n).map(|i| (xu[i] - xd[i]) / (2.0 * h)).collect()
                })
                .collect();
            let jac: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| columns[j][i]).collect()).collect();
            let fd = log_abs_det(jac);
            assert!((fd - lj).abs() < 1e-6 * lj.abs().max(1.0), "{t} {shape:?} at {u:?}: log-Jacobian {lj}, finite differences {fd}");
        }
    }
}

/// The graph form (what the sampler runs) computes what the f64 form computes.
#[test]
fn graph_transforms_agree_with_the_f64_transforms() {
    let mut rng = StdRng::seed_from_u64(9);
    for (t, shape) in transforms() {
        let n = t.unconstrained_size(&shape);
        let b = GraphBuilder::new("t");
        let u_var = b.input("u", DType::F64, &[n]);
        let (x_var, lj_var) = t.constrain_var(&b, &u_var, &shape).unwrap();
        let lj_var = lj_var.unwrap_or_else(|| b.scalar(0.0));
        let g = b.finish(&[&x_var, &lj_var]).unwrap();
        assert_eq!(g.ty(g.outputs()[0]).shape.dims(), shape.as_slice());
        for _ in 0..5 {
            let u = random_u(&mut rng, n);
            let inputs = HashMap::from([("u".to_string(), Value::F64(ArrayD::from_shape_vec(IxDyn(&[n]), u.clone()).unwrap()))]);
            let out = tessera_graph::eval(&g, &inputs).unwrap();
            let (x, lj) = t.constrain(&u, &shape).unwrap();
            for (a, b) in out[0].to_f64_vec().iter().zip(&x) {
                assert!((a - b).abs() < 1e-12 * b.abs().max(1.0), "{t}: graph {a}, f64 {b}");
            }
            let glj = out[1].to_scalar_f64().unwrap();
            assert!((glj - lj).abs() < 1e-12 * lj.abs().max(1.0), "{t}: graph log-Jacobian {glj}, f64 {lj}");
        }
    }
}

#[test]
fn unconstrain_rejects_values_outside_the_constrained_space() {
    let lower = Transform::Lower(arr0(1.0).into_dyn());
    assert!(lower.unconstrain(&[0.5], &[]).unwrap_err().contains("above the lower bound 1"));
    assert!(Transform::Simplex.unconstrain(&[0.5, 0.6], &[2]).unwrap_err().contains("sum to"));
    assert!(Transform::Ordered.unconstrain(&[1.0, 1.0], &[2]).unwrap_err().contains("increase"));
    let unit = Transform::LowerUpper(arr0(0.0).into_dyn(), arr0(1.0).into_dyn());
    assert!(unit.unconstrain(&[1.0], &[]).unwrap_err().contains("strictly between 0 and 1"));
}

#[test]
fn extreme_unconstrained_values_stay_finite_and_in_range() {
    let (x, lj) = Transform::Simplex.constrain(&[800.0, -800.0, 0.0], &[4]).unwrap();
    assert!(x.iter().all(|v| v.is_finite() && *v >= 0.0) && (x.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{x:?}");
    assert!(lj.is_finite() || lj == f64::NEG_INFINITY);
    let unit = Transform::LowerUpper(arr0(0.0).into_dyn(), arr0(1.0).into_dyn());
    let (x, lj) = unit.constrain(&[-40.0], &[]).unwrap();
    // ln σ(−40) + ln σ(40) = −40 − 2 ln(1 + e^−40)
    let want = -40.0 - 2.0 * (-40f64).exp().ln_1p();
    assert!(x[0] > 0.0 && x[0] < 1e-17 && (lj - want).abs() < 1e-12, "{x:?} {lj}");
}
