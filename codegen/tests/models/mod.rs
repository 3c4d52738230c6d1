//! The benchmark models (logistic regression, hierarchical radon, eight schools non-centered)
//! on ../shared/bench-data: each as a log-density graph over a flat unconstrained `theta`
//! (built with `GraphBuilder`, data as constants) and as a hand-written Rust function of the
//! same math with a closed-form gradient, written for speed. Shared by the tests and the
//! benchmark (`#[path]`-included).
#![allow(dead_code)]

use std::f64::consts::PI;

use ndarray::{Array1, Array2};
use serde_json::Value as Json;
use tessera_graph::{DType, Graph, GraphBuilder, Var};

/// ln √(2π)
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Reads `../shared/bench-data/NAME.json`.
fn data(name: &str) -> Json {
    let path = format!("{}/../../shared/bench-data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(v: &Json) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// `theta[i]` as a scalar.
fn at(theta: &Var, i: i64) -> Var {
    theta.slice(&[(Some(i), Some(i + 1), None)]).reshape(&[])
}

/// `theta[lo..hi]`.
fn range(theta: &Var, lo: i64, hi: i64) -> Var {
    theta.slice(&[(Some(lo), Some(hi), None)])
}

/// A hand-written log density with its gradient.
pub trait Hand {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// logp(x), writing ∇logp into `grad`.
    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
}

/// The evaluation point of peers.md: `x_i = 0.3·sin(i + 1)`.
pub fn peer_point(dim: usize) -> Vec<f64> {
    (0..dim).map(|i| 0.3 * ((i + 1) as f64).sin()).collect()
}

// ------------------------------------------------------------------ logistic regression

/// logistic_regression: β ~ N(0, 1)^25, y_i ~ Bernoulli(logit = X_i·β), N = 5000.
pub struct Logistic {
    x: Vec<f64>,
    y: Vec<f64>,
    n: usize,
    d: usize,
}

pub fn logistic() -> (Graph, Logistic) {
    let j = data("logistic_regression");
    let rows: Vec<Vec<f64>> = j["X"].as_array().expect("X").iter().map(floats).collect();
    let (n, d) = (rows.len(), rows[0].len());
    let x: Vec<f64> = rows.concat();
    let y = floats(&j["y"]);
    let b = GraphBuilder::new("logistic_regression");
    let beta = b.input("beta", DType::F64, &[d]);
    let xm = b.array(&Array2::from_shape_vec((n, d), x.clone()).expect("X shape"));
    let yv = b.array(&Array1::from(y.clone()));
    let eta = xm.matmul(&beta);
    let lik = (&yv * &eta - eta.softplus()).sum_all();
    let prior = (beta.square() * -0.5).sum_all() - d as f64 * LN_SQRT_2PI;
    let g = b.finish(&[&(lik + prior)]).expect("logistic graph");
    (g, Logistic { x, y, n, d })
}

impl Hand for Logistic {
    fn dim(&self) -> usize {
        self.d
    }

    fn logp_grad(&mut self, beta: &[f64], grad: &mut [f64]) -> f64 {
        let d = self.d;
        let mut lp = -(d as f64) * LN_SQRT_2PI;
        for (g, &b) in grad.iter_mut().zip(beta) {
            *g = -b;
            lp -= 0.5 * b * b;
        }
        // One pass over X: the row's dot product, then its contribution to Xᵀ(y − σ(η)).
        for (row, &yi) in self.x.chunks_exact(d).zip(&self.y) {
            let mut acc = [0.0f64; 4];
            let mut chunks = row.chunks_exact(4);
            let mut bs = beta.chunks_exact(4);
            for (r, bb) in (&mut chunks).zip(&mut bs) {
                for k in 0..4 {
                    acc[k] += r[k] * bb[k];
                }
            }
            let tail: f64 = chunks.remainder().iter().zip(bs.remainder()).map(|(a, b)| a * b).sum();
            let eta = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
            let e = (-eta.abs()).exp();
            lp += yi * eta - (eta.max(0.0) + e.ln_1p());
            let sig = if eta >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            let r = yi - sig;
            for (g, &a) in grad.iter_mut().zip(row) {
                *g += r * a;
            }
        }
        let _ = self.n;
        lp
    }
}

// ------------------------------------------------------------------ hierarchical radon

/// hierarchical_radon, non-centered: μ_a ~ N(0, 10), σ_a ~ HalfNormal(5), b ~ N(0, 10),
/// σ ~ HalfNormal(5), a_raw ~ N(0, 1)^85, a = μ_a + σ_a·a_raw,
/// y_i ~ N(a[g_i] + b·x_i, σ); σ_a and σ log-transformed (with their log-Jacobians).
/// θ = [μ_a, ln σ_a, b, ln σ, a_raw…] (89 parameters).
pub struct Radon {
    group: Vec<usize>,
    x: Vec<f64>,
    y: Vec<f64>,
    j: usize,
    a: Vec<f64>,
    da: Vec<f64>,
}

/// ln of the HalfNormal(s) normalizing constant: ln(2/(s√(2π))).
fn half_normal_const(s: f64) -> f64 {
    2f64.ln() - s.ln() - LN_SQRT_2PI
}

pub fn radon() -> (Graph, Radon) {
    let j = data("hierarchical_radon");
    let group: Vec<i64> = j["group"].as_array().expect("group").iter().map(|g| g.as_i64().expect("int")).collect();
    let x = floats(&j["x"]);
    let y = floats(&j["y"]);
    let ngroups = j["J"].as_u64().expect("J") as usize;
    let b = GraphBuilder::new("hierarchical_radon");
    let theta = b.input("theta", DType::F64, &[4 + ngroups]);
    let mu_a = at(&theta, 0);
    let log_sigma_a = at(&theta, 1);
    let slope = at(&theta, 2);
    let log_sigma = at(&theta, 3);
    let a_raw = range(&theta, 4, 4 + ngroups as i64);
    let sigma_a = log_sigma_a.exp();
    let sigma = log_sigma.exp();
    let a = &mu_a + &sigma_a * &a_raw;
    let g = b.array_i64(&Array1::from(group.clone()));
    let xv = b.array(&Array1::from(x.clone()));
    let yv = b.array(&Array1::from(y.clone()));
    let mu = a.gather(&g, 0) + &slope * &xv;
    let z = (&yv - &mu) / &sigma;
    let n = y.len() as f64;
    let lik = z.square().sum_all() * -0.5 - &log_sigma * n - n * LN_SQRT_2PI;
    let normal = |v: &Var, s: f64| v.square() * (-0.5 / (s * s)) - (s.ln() + LN_SQRT_2PI);
    let half_normal = |v: &Var, s: f64| v.square() * (-0.5 / (s * s)) + half_normal_const(s);
    let priors = normal(&mu_a, 10.0)
        + half_normal(&sigma_a, 5.0)
        + &log_sigma_a
        + normal(&slope, 10.0)
        + half_normal(&sigma, 5.0)
        + &log_sigma
        + (a_raw.square() * -0.5).sum_all()
        - ngroups as f64 * LN_SQRT_2PI;
    let graph = b.finish(&[&(lik + priors)]).expect("radon graph");
    let hand = Radon {
        group: group.iter().map(|&g| g as usize).collect(),
        x,
        y,
        j: ngroups,
        a: vec![0.0; ngroups],
        da: vec![0.0; ngroups],
    };
    (graph, hand)
}

impl Hand for Radon {
    fn dim(&self) -> usize {
        4 + self.j
    }

    fn logp_grad(&mut self, th: &[f64], grad: &mut [f64]) -> f64 {
        let (mu_a, lsa, b, ls) = (th[0], th[1], th[2], th[3]);
        let a_raw = &th[4..];
        let (sa, s) = (lsa.exp(), ls.exp());
        let inv_s = 1.0 / s;
        for (a, &r) in self.a.iter_mut().zip(a_raw) {
            *a = mu_a + sa * r;
        }
        self.da.fill(0.0);
        let (mut ssq, mut gb) = (0.0, 0.0);
        for ((&gi, &xi), &yi) in self.group.iter().zip(&self.x).zip(&self.y) {
            let z = (yi - self.a[gi] - b * xi) * inv_s;
            ssq += z * z;
            let t = z * inv_s; // ∂(−z²/2)/∂μ
            self.da[gi] += t;
            gb += t * xi;
        }
        let n = self.y.len() as f64;
        let mut lp = -0.5 * ssq - n * ls - n * LN_SQRT_2PI;
        // priors
        lp += -0.5 * mu_a * mu_a / 100.0 - (10f64.ln() + LN_SQRT_2PI);
        lp += -0.5 * sa * sa / 25.0 + half_normal_const(5.0) + lsa;
        lp += -0.5 * b * b / 100.0 - (10f64.ln() + LN_SQRT_2PI);
        lp += -0.5 * s * s / 25.0 + half_normal_const(5.0) + ls;
        let mut sum_da = 0.0;
        let mut da_raw = 0.0;
        for ((g, &r), &d) in grad[4..].iter_mut().zip(a_raw).zip(&self.da) {
            lp -= 0.5 * r * r;
            *g = sa * d - r;
            sum_da += d;
            da_raw += d * r;
        }
        lp -= self.j as f64 * LN_SQRT_2PI;
        grad[0] = sum_da - mu_a / 100.0;
        grad[1] = sa * da_raw - sa * sa / 25.0 + 1.0;
        grad[2] = gb - b / 100.0;
        grad[3] = ssq - n - s * s / 25.0 + 1.0;
        lp
    }
}

// ------------------------------------------------------------------ eight schools

/// eight_schools_noncentered: μ ~ N(0, 5), τ ~ HalfCauchy(5), θ̃ ~ N(0, 1)^8,
/// y_j ~ N(μ + τ·θ̃_j, σ_j); τ log-transformed. θ = [μ, ln τ, θ̃…] (10 parameters).
pub struct EightSchools {
    y: Vec<f64>,
    inv_sigma: Vec<f64>,
    /// Every additive constant of the log density.
    konst: f64,
}

pub fn eight_schools() -> (Graph, EightSchools) {
    let j = data("eight_schools_noncentered");
    let y = floats(&j["y"]);
    let sigma = floats(&j["sigma"]);
    let k = y.len() as i64;
    let b = GraphBuilder::new("eight_schools_noncentered");
    let theta = b.input("theta", DType::F64, &[2 + k as usize]);
    let mu = at(&theta, 0);
    let log_tau = at(&theta, 1);
    let tt = range(&theta, 2, 2 + k);
    let tau = log_tau.exp();
    let yv = b.array(&Array1::from(y.clone()));
    let sv = b.array(&Array1::from(sigma.clone()));
    let z = (&yv - (&mu + &tau * &tt)) / &sv;
    let log_sigma_sum: f64 = sigma.iter().map(|s| s.ln()).sum();
    let lik = (z.square() * -0.5).sum_all() - (log_sigma_sum + k as f64 * LN_SQRT_2PI);
    let prior_mu = mu.square() * (-0.5 / 25.0) - (5f64.ln() + LN_SQRT_2PI);
    let prior_tau = (&tau * 0.2).square().log1p() * -1.0 + (2.0 / (5.0 * PI)).ln() + &log_tau;
    let prior_tt = (tt.square() * -0.5).sum_all() - k as f64 * LN_SQRT_2PI;
    let graph = b.finish(&[&(lik + prior_mu + prior_tau + prior_tt)]).expect("eight schools graph");
    let konst = -(5f64.ln() + LN_SQRT_2PI) + (2.0 / (5.0 * PI)).ln() - log_sigma_sum - 2.0 * k as f64 * LN_SQRT_2PI;
    (graph, EightSchools { y, inv_sigma: sigma.iter().map(|s| 1.0 / s).collect(), konst })
}

impl Hand for EightSchools {
    fn dim(&self) -> usize {
        2 + self.y.len()
    }

    fn logp_grad(&mut self, th: &[f64], grad: &mut [f64]) -> f64 {
        let (mu, lt) = (th[0], th[1]);
        let tau = lt.exp();
        let u = 0.2 * tau;
        let mut lp = self.konst - 0.5 * mu * mu / 25.0 - (u * u).ln_1p() + lt;
        let (mut gmu, mut gtau) = (-mu / 25.0, 0.0);
        for (((&t, &y), &is), g) in th[2..].iter().zip(&self.y).zip(&self.inv_sigma).zip(&mut grad[2..]) {
            let z = (y - mu - tau * t) * is;
            lp -= 0.5 * (z * z + t * t);
            let w = z * is; // ∂(−z²/2)/∂(μ + τθ̃)
            gmu += w;
            gtau += w * t;
            *g = w * tau - t;
        }
        grad[0] = gmu;
        // d/d ln τ: τ·∂/∂τ of the likelihood, −2u²/(1 + u²) from the prior, +1 from the Jacobian.
        grad[1] = tau * gtau - 2.0 * u * u / (1.0 + u * u) + 1.0;
        lp
    }
}
