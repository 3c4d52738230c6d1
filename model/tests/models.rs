//! End to end: model files bound to data give the log density that an independent numpy/scipy
//! implementation gives (fixture), symbolic gradients that match finite differences, and
//! constrained outputs with stable names.

mod common;

use common::{bind, close, fixture, gradient_error, num};
use tessera_model::{DataSet, OutputKind, parse_model};

const EIGHT_SCHOOLS_DATA: &str = r#"{"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}"#;

fn points(section: &serde_json::Value) -> Vec<(Vec<f64>, f64)> {
    section["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["theta"].as_array().unwrap().iter().map(num).collect(), num(&p["logp"])))
        .collect()
}

#[test]
fn eight_schools_log_density_matches_scipy() {
    let model = bind("eight_schools.tess", EIGHT_SCHOOLS_DATA);
    assert_eq!(model.dim(), 10);
    let f = fixture();
    let pts = points(&f["eight_schools"]);
    assert_eq!(pts.len(), 3);
    for (theta, want) in pts {
        let got = model.logp_interp(&theta).unwrap();
        assert!(close(got, want, 1e-12), "logp at {theta:?}: {got}, scipy {want}");
    }
}

/// At θ = 0 (μ = 0, τ = 1, θ̃ = 0) the log density by hand:
/// ln N(0|0,5) + ln HalfCauchy(1|5) + ln 1 (Jacobian) + 8 ln N(0|0,1) + Σ ln N(y|0,σ).
#[test]
fn eight_schools_at_zero_by_hand() {
    let model = bind("eight_schools.tess", EIGHT_SCHOOLS_DATA);
    let ln_norm = |x: f64, m: f64, s: f64| -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
    let half_cauchy = (2.0 / (std::f64::consts::PI * 5.0 * (1.0 + 1.0 / 25.0))).ln();
    let y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
    let s = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];
    let want = ln_norm(0.0, 0.0, 5.0) + half_cauchy + 8.0 * ln_norm(0.0, 0.0, 1.0)
        + y.iter().zip(&s).map(|(y, s)| ln_norm(*y, 0.0, *s)).sum::<f64>();
    let got = model.logp_interp(&[0.0; 10]).unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn eight_schools_gradient_matches_finite_differences() {
    let model = bind("eight_schools.tess", EIGHT_SCHOOLS_DATA);
    for (theta, _) in points(&fixture()["eight_schools"]) {
        let err = gradient_error(&model, &theta);
        assert!(err < 1e-6, "gradient error {err} at {theta:?}");
    }
    let (lp, grad) = model.logp_and_grad_interp(&[0.0; 10]).unwrap();
    assert!(lp.is_finite() && grad.iter().all(|g| g.is_finite()));
}

#[test]
fn eight_schools_constrained_outputs() {
    let model = bind("eight_schools.tess", EIGHT_SCHOOLS_DATA);
    let names = model.output_names();
    assert_eq!(names.len(), 2 + 8 + 8);
    assert_eq!(&names[..4], ["mu", "tau", "theta_tilde[0]", "theta_tilde[1]"]);
    assert_eq!(names[10], "theta[0]");
    assert_eq!(names[17], "theta[7]");
    let kinds: Vec<OutputKind> = model.outputs().iter().map(|o| o.kind).collect();
    assert_eq!(kinds, [OutputKind::Param, OutputKind::Param, OutputKind::Param, OutputKind::Derived]);
    let theta: Vec<f64> = (0..10).map(|i| 0.3 * i as f64 - 1.0).collect();
    let out = model.constrained_interp(&theta).unwrap();
    let (mu, tau) = (theta[0], theta[1].exp());
    assert_eq!(out[0], mu);
    assert!((out[1] - tau).abs() < 1e-15);
    for j in 0..8 {
        assert_eq!(out[2 + j], theta[2 + j]);
        assert!((out[10 + j] - (mu + tau * theta[2 + j])).abs() < 1e-12);
    }
    // The f64 transforms agree with the graph, and invert.
    let params = model.constrain(&theta).unwrap();
    assert_eq!(params.len(), model.constrained_param_len());
    assert_eq!(&params[..], &out[..10]);
    let back = model.unconstrain(&params).unwrap();
    assert!(back.iter().zip(&theta).all(|(a, b)| (a - b).abs() < 1e-12));
}

#[test]
fn wrong_theta_length_is_an_error() {
    let model = bind("eight_schools.tess", EIGHT_SCHOOLS_DATA);
    let e = model.logp_interp(&[0.0; 3]).unwrap_err();
    assert_eq!(e.to_string(), "expected 10 values, got 3");
}

fn posteriordb(name: &str) -> tessera_model::BoundModel {
    let data = std::fs::read_to_string(format!("{}/tests/fixtures/posteriordb/{name}.json", common::crate_dir())).unwrap();
    bind(&format!("posteriordb/{name}.tess"), &data)
}

/// Unconstrained dimensions from the posteriordb README table.
const DIMS: &[(&str, usize)] = &[
    ("eight_schools-eight_schools_noncentered", 10),
    ("kidiq-kidscore_momiq", 3),
    ("kidiq-kidscore_interaction", 5),
    ("kidiq_with_mom_work-kidscore_mom_work", 5),
    ("earnings-earn_height", 3),
    ("earnings-logearn_interaction_z", 5),
    ("mesquite-mesquite", 8),
    ("mesquite-logmesquite", 8),
    ("nes2000-nes", 10),
    ("kilpisjarvi_mod-kilpisjarvi", 3),
    ("sblrc-blr", 6),
    ("low_dim_gauss_mix-low_dim_gauss_mix", 5),
    ("gp_pois_regr-gp_regr", 3),
    ("gp_pois_regr-gp_pois_regr", 13),
    ("arK-arK", 7),
    ("arma-arma11", 4),
];

#[test]
fn posteriordb_models_match_independent_numpy_implementations() {
    let f = fixture();
    let models = f["models"].as_array().unwrap();
    assert_eq!(models.len(), DIMS.len());
    for entry in models {
        let name = entry["name"].as_str().unwrap();
        let model = posteriordb(name);
        let dim = DIMS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d).unwrap();
        assert_eq!(model.dim(), dim, "{name}");
        for (theta, want) in points(entry) {
            let got = model.logp_interp(&theta).unwrap();
            assert!(close(got, want, 1e-9), "{name}: logp {got}, numpy {want} at {theta:?}");
        }
    }
}

#[test]
fn posteriordb_model_gradients_match_finite_differences() {
    let f = fixture();
    for entry in f["models"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let model = posteriordb(name);
        let (theta, _) = points(entry).remove(0);
        let err = gradient_error(&model, &theta);
        assert!(err < 1e-5, "{name}: gradient error {err}");
    }
}

/// diamonds: the posteriordb data is 2.3 MB, so the test binds the model to a small synthetic
/// design of the same structure (intercept column first) and checks it against a direct sum.
#[test]
fn diamonds_model_on_synthetic_data() {
    let (n, k) = (30usize, 25usize);
    let x: Vec<Vec<f64>> = (0..n).map(|i| (0..k).map(|j| if j == 0 { 1.0 } else { ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0 }).collect()).collect();
    let y: Vec<f64> = (0..n).map(|i| 7.0 + (i as f64) / 10.0).collect();
    let data = serde_json::json!({"N": n, "K": k, "Y": y, "X": x, "prior_only": 0}).to_string();
    let model = bind("posteriordb/diamonds-diamonds.tess", &data);
    assert_eq!(model.dim(), 26);
    let theta: Vec<f64> = (0..26).map(|i| 0.05 * i as f64 - 0.4).collect();
    // by hand: centred predictors, Normal / Student-t / half-Student-t terms, log-Jacobian of sigma
    let means: Vec<f64> = (1..k).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
    let (b, intercept, sigma) = (&theta[..24], theta[24], theta[25].exp());
    let ln_norm = |v: f64, m: f64, s: f64| -0.5 * ((v - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
    let ln_t3 = |v: f64, m: f64, s: f64| {
        let nu: f64 = 3.0;
        libm::lgamma((nu + 1.0) / 2.0) - libm::lgamma(nu / 2.0) - 0.5 * (nu * std::f64::consts::PI).ln() - s.ln()
            - (nu + 1.0) / 2.0 * (1.0 + ((v - m) / s).powi(2) / nu).ln()
    };
    let mut want = b.iter().map(|v| ln_norm(*v, 0.0, 1.0)).sum::<f64>() + ln_t3(intercept, 8.0, 10.0) + 2f64.ln() + ln_t3(sigma, 0.0, 10.0) + theta[25];
    for i in 0..n {
        let mu = intercept + (1..k).map(|j| (x[i][j] - means[j - 1]) * b[j - 1]).sum::<f64>();
        want += ln_norm(y[i], mu, sigma);
    }
    let got = model.logp_interp(&theta).unwrap();
    assert!(close(got, want, 1e-11), "{got} vs {want}");
    assert!(gradient_error(&model, &theta) < 1e-6);
}

/// Data-only work is done once at bind time: the log-density graph of logearn_interaction_z
/// holds the standardized heights as a constant, not the mean/sd computation.
#[test]
fn data_preprocessing_is_folded_into_constants() {
    let model = posteriordb("earnings-logearn_interaction_z");
    let g = model.logp_graph();
    let names: Vec<&str> = g.live_nodes().iter().map(|&id| g.node(id).op.name()).collect();
    assert!(!names.contains(&"reduce_mean"), "{names:?}");
    assert_eq!(g.inputs().len(), 1);
    assert_eq!(g.input_name(g.inputs()[0]), Some("theta"));
}

#[test]
fn a_model_without_parameters_has_dimension_zero() {
    let model = parse_model("data y: real\ntarget += normal_lpdf(y, 0, 1)\n", "m.tess").unwrap();
    let bound = model.bind(&DataSet::from_json(r#"{"y": 0.5}"#, "d.json").unwrap()).unwrap();
    assert_eq!(bound.dim(), 0);
    let want = -0.125 - 0.5 * (2.0 * std::f64::consts::PI).ln();
    assert!((bound.logp_interp(&[]).unwrap() - want).abs() < 1e-15);
}

/// The Rust API builds the same model as the language: same layout, same log density.
#[test]
fn rust_api_builds_the_same_model_as_the_language() {
    use ndarray::{arr0, arr1};
    use tessera_model::{Dist, ModelBuilder, Transform};
    let mut m = ModelBuilder::new();
    let y = m.graph().array(&arr1(&[28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]));
    let sigma = m.graph().array(&arr1(&[15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]));
    let (zero, one, five) = (m.graph().scalar(0.0), m.graph().scalar(1.0), m.graph().scalar(5.0));
    let mu = m.param("mu", &[], Transform::Identity).unwrap();
    let tau = m.param("tau", &[], Transform::Lower(arr0(0.0).into_dyn())).unwrap();
    let theta_tilde = m.param("theta_tilde", &[8], Transform::Identity).unwrap();
    let theta = &mu + &tau * &theta_tilde;
    m.derived("theta", &theta).unwrap();
    m.observe(Dist::Normal, &mu, &[&zero, &five]).unwrap();
    m.observe(Dist::HalfCauchy, &tau, &[&five]).unwrap();
    m.observe(Dist::Normal, &theta_tilde, &[&zero, &one]).unwrap();
    m.observe(Dist::Normal, &y, &[&theta, &sigma]).unwrap();
    let api = m.finish().unwrap();
    let lang = bind("eight_schools.tess", EIGHT_SCHOOLS_DATA);
    assert_eq!(api.layout(), lang.layout());
    assert_eq!(api.output_names(), lang.output_names());
    for (theta, want) in points(&fixture()["eight_schools"]) {
        let got = api.logp_interp(&theta).unwrap();
        assert!(close(got, want, 1e-12), "{got} vs {want}");
        assert!(close(got, lang.logp_interp(&theta).unwrap(), 1e-14));
    }
    // A value smaller than its arguments is refused by the API too.
    let mut m = ModelBuilder::new();
    let x = m.param("x", &[], Transform::Identity).unwrap();
    let locs = m.graph().array(&arr1(&[0.0, 1.0]));
    let s = m.graph().scalar(1.0);
    assert!(m.observe(Dist::Normal, &x, &[&locs, &s]).unwrap_err().to_string().contains("larger than the value's"));
    let Err(e) = m.param("x", &[2], Transform::Identity) else { panic!("a duplicate parameter was accepted") };
    assert!(e.to_string().contains("declared twice"), "{e}");
}

/// Negative entries of a data index array count from the end of the axis; indices already in
/// range enter the graph unchanged. Both give the log density of the same gathered elements.
#[test]
fn negative_data_indices_count_from_the_end() {
    let source = "data i: int[4]\ndata y: vector[4]\nparam mu: vector[3]\nmu ~ normal(0, 1)\ny ~ normal(mu[i], 1)\n";
    let model = parse_model(source, "m.tess").unwrap();
    let y = r#""y": [0.5, -1.0, 2.0, 0.25]"#;
    let bound = |idx: &str| model.bind(&DataSet::from_json(&format!(r#"{{"i": {idx}, {y}}}"#), "d.json").unwrap()).unwrap();
    let theta = [0.3, -0.7, 1.9];
    let (negative, positive) = (bound("[-1, 0, -3, 2]"), bound("[2, 0, 0, 2]"));
    let want = positive.logp_interp(&theta).unwrap();
    assert!(close(negative.logp_interp(&theta).unwrap(), want, 1e-14));
    let by_hand: f64 = [0.5 - 1.9, -1.0 - 0.3, 2.0 - 0.3, 0.25 - 1.9].iter().chain(&theta).map(|r| -0.5 * r * r - 0.5 * (2.0 * std::f64::consts::PI).ln()).sum();
    assert!(close(want, by_hand, 1e-12), "{want} vs {by_hand}");
}
