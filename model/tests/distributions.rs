//! Every distribution's log density against scipy.stats (fixture made by
//! `scripts/make_scipy_fixture.py`), edge cases included: as graph builders on graph inputs,
//! with and without the support guards, and through the language's `D_lpdf` functions.

mod common;

use std::collections::HashMap;

use common::{array, close, fixture, num};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value as Json;
use tessera_graph::{DType, GraphBuilder, Value};
use tessera_model::{DataSet, DensityOptions, Dist, parse_model};

const REL: f64 = 1e-10;

fn value(data: &[f64], shape: &[usize], dtype: DType) -> Value {
    match dtype {
        DType::I64 => Value::I64(ArrayD::from_shape_vec(IxDyn(shape), data.iter().map(|&x| x as i64).collect()).unwrap()),
        _ => Value::F64(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap()),
    }
}

/// The log density of one case, built on graph inputs and run by the interpreter.
fn eval_case(dist: Dist, x: &Json, args: &[Json], opts: DensityOptions) -> f64 {
    let b = GraphBuilder::new("case");
    let mut inputs = HashMap::new();
    let (xd, xs) = array(x);
    let xv = b.input("x", dist.value_dtype(), &xs);
    inputs.insert("x".to_string(), value(&xd, &xs, dist.value_dtype()));
    let mut arg_vars = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let (ad, ash) = array(a);
        let name = format!("a{i}");
        arg_vars.push(b.input(&name, DType::F64, &ash));
        inputs.insert(name, value(&ad, &ash, DType::F64));
    }
    let lp = tessera_model::dist::log_density(&b, dist, &xv, &arg_vars, opts).unwrap();
    let total = if lp.dims().is_empty() { lp } else { lp.sum_all() };
    let g = b.finish(&[&total]).unwrap_or_else(|e| panic!("{}: {e}", dist.name()));
    tessera_graph::eval(&g, &inputs).unwrap()[0].to_scalar_f64().unwrap()
}

fn cases() -> Vec<(Dist, Vec<Json>)> {
    let f = fixture();
    f["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let dist = Dist::from_name(d["dist"].as_str().unwrap()).unwrap();
            (dist, d["cases"].as_array().unwrap().clone())
        })
        .collect()
}

#[test]
fn fixture_covers_every_distribution() {
    let covered: Vec<Dist> = cases().into_iter().map(|(d, _)| d).collect();
    for d in Dist::ALL {
        assert!(covered.contains(d), "{} has no scipy cases", d.name());
    }
}

#[test]
fn exact_densities_match_scipy_everywhere_including_edges() {
    let mut checked = 0;
    for (dist, cases) in cases() {
        for case in cases {
            let args = case["args"].as_array().unwrap();
            let want = num(&case["logp"]);
            let got = eval_case(dist, &case["x"], args, DensityOptions::default());
            assert!(close(got, want, REL), "{} at x={} args={:?}: got {got}, scipy {want}", dist.name(), case["x"], args);
            checked += 1;
        }
    }
    assert!(checked > 400, "only {checked} cases");
}

#[test]
fn plain_formulas_match_scipy_inside_the_support() {
    let mut checked = 0;
    for (dist, cases) in cases() {
        for case in cases.iter().filter(|c| c["interior"].as_bool().unwrap()) {
            let args = case["args"].as_array().unwrap();
            let want = num(&case["logp"]);
            let got = eval_case(dist, &case["x"], args, DensityOptions::INTERIOR);
            assert!(close(got, want, REL), "{} (interior) at x={} args={:?}: got {got}, scipy {want}", dist.name(), case["x"], args);
            checked += 1;
        }
    }
    assert!(checked > 250, "only {checked} interior cases");
}

/// Scalar distributions vectorized: all cases of one distribution as vectors in one graph
/// give the same elementwise values (broadcasting a scalar argument where cases share it).
#[test]
fn vectorized_scalar_densities_match_elementwise() {
    for (dist, cases) in cases() {
        if dist.shape_rule() != tessera_model::dist::ShapeRule::Elementwise {
            continue;
        }
        let n = cases.len();
        let b = GraphBuilder::new("v");
        let mut inputs = HashMap::new();
        let xs: Vec<f64> = cases.iter().map(|c| num(&c["x"])).collect();
        let x = b.input("x", DType::F64, &[n]);
        inputs.insert("x".to_string(), value(&xs, &[n], DType::F64));
        let mut args = Vec::new();
        for k in 0..dist.params().len() {
            let vals: Vec<f64> = cases.iter().map(|c| num(&c["args"][k])).collect();
            let name = format!("a{k}");
            args.push(b.input(&name, DType::F64, &[n]));
            inputs.insert(name, value(&vals, &[n], DType::F64));
        }
        let lp = tessera_model::dist::log_density(&b, dist, &x, &args, DensityOptions::default()).unwrap();
        let g = b.finish(&[&lp]).unwrap();
        let got = tessera_graph::eval(&g, &inputs).unwrap()[0].to_f64_vec();
        for (case, got) in cases.iter().zip(got) {
            let want = num(&case["logp"]);
            assert!(close(got, want, REL), "{} vectorized at x={}: got {got}, scipy {want}", dist.name(), case["x"]);
        }
    }
}

/// Through the language: `target += D_lpdf(x, args…)` on data vectors (evaluated when the
/// model is bound) sums to scipy's values.
#[test]
fn language_density_functions_match_scipy() {
    for (dist, cases) in cases() {
        if dist.shape_rule() != tessera_model::dist::ShapeRule::Elementwise {
            continue;
        }
        let finite: Vec<&Json> = cases.iter().filter(|c| num(&c["logp"]).is_finite()).collect();
        let n = finite.len();
        let xs: Vec<f64> = finite.iter().map(|c| num(&c["x"])).collect();
        let kind = if dist.is_discrete() { "int" } else { "real" };
        let mut text = format!("data N: int\ndata x: {kind}[N]\n");
        let mut json = format!("{{\"N\": {n}, \"x\": {:?}", xs.iter().map(|v| if dist.is_discrete() { format!("{}", *v as i64) } else { format!("{v:e}") }).collect::<Vec<_>>()).replace('"', "");
        json = json.replacen("{N: ", "{\"N\": ", 1).replacen(", x: ", ", \"x\": ", 1);
        let mut names = vec!["x".to_string()];
        for (k, (_, kind)) in dist.params().iter().enumerate() {
            let vals: Vec<String> = finite.iter().map(|c| {
                let v = num(&c["args"][k]);
                if *kind == tessera_model::dist::ArgKind::Trials { format!("{}", v as i64) } else { format!("{v:e}") }
            }).collect();
            let ty = if *kind == tessera_model::dist::ArgKind::Trials { "int" } else { "real" };
            text.push_str(&format!("data a{k}: {ty}[N]\n"));
            json.push_str(&format!(", \"a{k}\": [{}]", vals.join(", ")));
            names.push(format!("a{k}"));
        }
        json.push('}');
        text.push_str(&format!("target += {}({})\n", dist.density_fn_name(), names.join(", ")));
        let model = parse_model(&text, "dist.tess").unwrap_or_else(|e| panic!("{e}"));
        let data = DataSet::from_json(&json, "d.json").unwrap_or_else(|e| panic!("{e}\n{json}"));
        let bound = model.bind(&data).unwrap_or_else(|e| panic!("{e}"));
        let got = bound.logp_interp(&[]).unwrap();
        let want: f64 = finite.iter().map(|c| num(&c["logp"])).sum();
        assert!(close(got, want, 1e-9), "{}: language sum {got}, scipy {want}", dist.name());
    }
}

/// The symbolic gradient of each density with respect to its real arguments (and the value,
/// for continuous distributions) matches central finite differences at interior points.
#[test]
fn density_gradients_match_finite_differences() {
    let mut checked = 0;
    for (dist, cases) in cases() {
        for case in cases.iter().filter(|c| c["interior"].as_bool().unwrap()).take(6) {
            let b = GraphBuilder::new("g");
            let (xd, xs) = array(&case["x"]);
            let x = b.input("x", dist.value_dtype(), &xs);
            let mut inputs = HashMap::from([("x".to_string(), value(&xd, &xs, dist.value_dtype()))]);
            let mut wrt: Vec<String> = if dist.is_discrete() || dist == Dist::Dirichlet { vec![] } else { vec!["x".into()] };
            let mut args = Vec::new();
            for (k, a) in case["args"].as_array().unwrap().iter().enumerate() {
                let (ad, ash) = array(a);
                let name = format!("a{k}");
                args.push(b.input(&name, DType::F64, &ash));
                inputs.insert(name.clone(), value(&ad, &ash, DType::F64));
                let (_, kind) = dist.params()[k];
                // Trials are integers; covariance / Cholesky inputs are checked through models.
                if !matches!(kind, tessera_model::dist::ArgKind::Trials | tessera_model::dist::ArgKind::Covariance | tessera_model::dist::ArgKind::CholeskyFactor | tessera_model::dist::ArgKind::Probabilities) {
                    wrt.push(name);
                }
            }
            let lp = tessera_model::dist::log_density(&b, dist, &x, &args, DensityOptions::default()).unwrap();
            let total = if lp.dims().is_empty() { lp } else { lp.sum_all() };
            let g = b.finish(&[&total]).unwrap();
            let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
            let gg = tessera_graph::with_gradients(&g, &names).unwrap();
            let out = tessera_graph::eval(&gg, &inputs).unwrap();
            for (k, name) in wrt.iter().enumerate() {
                let sym = out[k + 1].to_f64_vec();
                let base = inputs[name].to_f64_vec();
                let shape = inputs[name].shape().dims().to_vec();
                for i in 0..base.len() {
                    let h = 1e-6 * base[i].abs().max(1e-2);
                    let at = |delta: f64| {
                        let mut v = base.clone();
                        v[i] += delta;
                        let mut inp = inputs.clone();
                        inp.insert(name.clone(), value(&v, &shape, DType::F64));
                        tessera_graph::eval(&g, &inp).unwrap()[0].to_scalar_f64().unwrap()
                    };
                    let fd = (at(h) - at(-h)) / (2.0 * h);
                    assert!(
                        (fd - sym[i]).abs() <= 1e-5 * fd.abs().max(1.0),
                        "{} d/d{name}[{i}] at x={} args={}: symbolic {}, finite difference {fd}",
                        dist.name(),
                        case["x"],
                        case["args"],
                        sym[i]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} partial derivatives checked");
}
