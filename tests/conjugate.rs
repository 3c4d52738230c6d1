//! Conjugate models with closed-form posteriors, compiled by the pipeline and sampled: every
//! posterior mean within 4 Monte Carlo standard errors, every sd within 10%.

use tessera::pipeline::{PipelineOptions, compile_model};
use tessera::sampler::{Settings, sample};

/// Samples `source` with `data` and returns the summary rows by name.
fn posterior(source: &str, data: &str, seed: u64) -> Vec<tessera::sampler::SummaryRow> {
    let model = compile_model(source, "test.tess", data, "data.json", &PipelineOptions::default()).unwrap();
    assert!(model.fallbacks.is_empty(), "{:?}", model.fallbacks);
    let settings = Settings { chains: 4, tune: 500, draws: 1000, seed, ..Default::default() };
    let trace = sample(&model.density, &settings).unwrap();
    assert_eq!(trace.divergences(), 0);
    model.summarize(&trace).unwrap()
}

fn check(rows: &[tessera::sampler::SummaryRow], name: &str, mean: f64, sd: f64) {
    let row = rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no {name}"));
    let z = (row.mean - mean) / row.mcse_mean;
    assert!(z.abs() < 4.0, "{name}: mean {} vs exact {mean} (mcse {}, z {z:.2})", row.mean, row.mcse_mean);
    assert!((row.sd / sd - 1.0).abs() < 0.1, "{name}: sd {} vs exact {sd}", row.sd);
    assert!(row.r_hat < 1.01, "{name}: r_hat {}", row.r_hat);
}

#[test]
fn normal_normal() {
    // mu ~ N(1, 3), y_i ~ N(mu, 2): posterior precision 1/9 + n/4, mean (1/9 + Σy/4) / precision.
    let y = [2.5, 0.3, 4.1, 1.7, 3.2];
    let precision = 1.0 / 9.0 + y.len() as f64 / 4.0;
    let mean = (1.0 / 9.0 + y.iter().sum::<f64>() / 4.0) / precision;
    let src = "data N: int\ndata y: vector[N]\nparam mu: real\nmu ~ normal(1, 3)\ny ~ normal(mu, 2)\n";
    let rows = posterior(src, r#"{"N": 5, "y": [2.5, 0.3, 4.1, 1.7, 3.2]}"#, 1);
    check(&rows, "mu", mean, precision.powf(-0.5));
}

/// Mean and sd of Beta(a, b).
fn beta_moments(a: f64, b: f64) -> (f64, f64) {
    (a / (a + b), (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt())
}

#[test]
fn beta_binomial() {
    // p ~ Beta(2, 3), k = 7 of n = 20: posterior Beta(9, 16).
    let src = "data n: int\ndata k: int\nparam p: real<lower=0, upper=1>\np ~ beta(2, 3)\nk ~ binomial(n, p)\n";
    let rows = posterior(src, r#"{"n": 20, "k": 7}"#, 2);
    let (mean, sd) = beta_moments(9.0, 16.0);
    check(&rows, "p", mean, sd);
}

#[test]
fn gamma_poisson() {
    // lambda ~ Gamma(3, rate 2), counts y: posterior Gamma(3 + Σy, rate 2 + n).
    let y = [4, 2, 5, 3, 6, 1];
    let (shape, rate) = (3.0 + y.iter().sum::<i32>() as f64, 2.0 + y.len() as f64);
    let src = "data N: int\ndata y: int<lower=0>[N]\nparam lambda: real<lower=0>\nlambda ~ gamma(3, 2)\ny ~ poisson(lambda)\n";
    let rows = posterior(src, r#"{"N": 6, "y": [4, 2, 5, 3, 6, 1]}"#, 3);
    check(&rows, "lambda", shape / rate, shape.sqrt() / rate);
}

#[test]
fn dirichlet_categorical() {
    // p ~ Dirichlet(1, 2, 3), outcomes with counts (3, 1, 4): posterior Dirichlet(4, 3, 7),
    // whose marginals are Beta(alpha_k, alpha_0 - alpha_k).
    let src = "data N: int\ndata y: int<lower=0, upper=2>[N]\nparam p: simplex[3]\np ~ dirichlet([1.0, 2.0, 3.0])\ny ~ categorical(p)\n";
    let rows = posterior(src, r#"{"N": 8, "y": [0, 2, 1, 2, 0, 2, 0, 2]}"#, 4);
    let alpha = [4.0, 3.0, 7.0];
    let total: f64 = alpha.iter().sum();
    for (k, a) in alpha.iter().enumerate() {
        let (mean, sd) = beta_moments(*a, total - a);
        check(&rows, &format!("p[{k}]"), mean, sd);
    }
}
