//! Helpers shared by the integration tests: fixtures, model files, tolerant comparisons.

#![allow(dead_code)]

use serde_json::Value as Json;
use tessera_model::{BoundModel, DataSet, parse_model};

/// The crate's directory.
pub fn crate_dir() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

/// The scipy fixture (see `scripts/make_scipy_fixture.py`).
pub fn fixture() -> Json {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/scipy_logpdf.json", crate_dir())).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// A fixture number: a JSON number or one of "inf", "-inf", "nan".
pub fn num(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().expect("f64"),
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Json::String(s) if s == "nan" => f64::NAN,
        other => panic!("not a number: {other}"),
    }
}

/// Nested lists flattened row-major, with their shape.
pub fn array(v: &Json) -> (Vec<f64>, Vec<usize>) {
    match v {
        Json::Array(items) => {
            let mut data = Vec::new();
            let mut inner = Vec::new();
            for item in items {
                let (d, s) = array(item);
                data.extend(d);
                inner = s;
            }
            let mut shape = vec![items.len()];
            shape.extend(inner);
            (data, shape)
        }
        other => (vec![num(other)], vec![]),
    }
}

/// Whether `got` equals `want` within a relative tolerance (infinities must match exactly).
pub fn close(got: f64, want: f64, rel: f64) -> bool {
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= rel * want.abs().max(1.0)
}

/// Reads a model file under `tests/models/`.
pub fn model_source(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/models/{rel}", crate_dir())).expect("model file")
}

/// Parses and binds `tests/models/<rel>` to the JSON data text.
pub fn bind(rel: &str, data_json: &str) -> BoundModel {
    let model = parse_model(&model_source(rel), rel).unwrap_or_else(|e| panic!("{e}"));
    let data = DataSet::from_json(data_json, "data.json").unwrap_or_else(|e| panic!("{e}"));
    model.bind(&data).unwrap_or_else(|e| panic!("{e}"))
}

/// The maximum relative difference between the symbolic gradient and central finite
/// differences of the interpreted log density at `theta`.
pub fn gradient_error(model: &BoundModel, theta: &[f64]) -> f64 {
    let (_, grad) = model.logp_and_grad_interp(theta).expect("gradient");
    assert_eq!(grad.len(), theta.len());
    let mut worst: f64 = 0.0;
    for i in 0..theta.len() {
        let h = 1e-5 * theta[i].abs().max(1.0);
        let (mut up, mut down) = (theta.to_vec(), theta.to_vec());
        up[i] += h;
        down[i] -= h;
        let fd = (model.logp_interp(&up).unwrap() - model.logp_interp(&down).unwrap()) / (2.0 * h);
        worst = worst.max((fd - grad[i]).abs() / fd.abs().max(1.0));
    }
    worst
}
