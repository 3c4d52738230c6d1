//! Shared helpers of the codegen tests: random inputs, closeness, and the JIT-vs-interpreter check.
#![allow(dead_code)]

use std::collections::HashMap;

use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_codegen::{CompileOptions, compile_with_stats};
use tessera_graph::{DType, Graph, Value};

/// Deterministic random inputs for every input of `graph`: f64 uniform in [-2, 2] (positive
/// in (0.1, 3) for inputs whose name starts with `pos`), i64 in `0..4` (or `0..n` for names
/// `idxN`), bool fair coins.
pub fn random_inputs(graph: &Graph, seed: u64) -> HashMap<String, Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for &id in graph.inputs() {
        let name = graph.input_name(id).unwrap().to_string();
        let ty = graph.ty(id);
        let dims = ty.shape.dims().to_vec();
        let n = ty.shape.size();
        let v = match ty.dtype {
            DType::F64 => {
                let data: Vec<f64> = (0..n)
                    .map(|_| if name.starts_with("pos") { rng.random_range(0.1..3.0) } else { rng.random_range(-2.0..2.0) })
                    .collect();
                Value::F64(ArrayD::from_shape_vec(dims, data).unwrap())
            }
            DType::I64 => {
                let hi: i64 = name.strip_prefix("idx").and_then(|s| s.parse().ok()).unwrap_or(4);
                let data: Vec<i64> = (0..n).map(|_| rng.random_range(0..hi)).collect();
                Value::I64(ArrayD::from_shape_vec(dims, data).unwrap())
            }
            DType::Bool => {
                let data: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
                Value::Bool(ArrayD::from_shape_vec(dims, data).unwrap())
            }
        };
        out.insert(name, v);
    }
    out
}

/// Whether two f64 agree: equal (infinities included), both NaN, or within `rtol`/`atol`.
pub fn close(a: f64, b: f64, rtol: f64, atol: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= atol + rtol * a.abs().max(b.abs())
}

/// Panics (with `what`) unless the values have equal types and close elements.
pub fn assert_values_close(what: &str, got: &Value, want: &Value, rtol: f64) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    match (got, want) {
        (Value::F64(g), Value::F64(w)) => {
            for (i, (x, y)) in g.iter().zip(w.iter()).enumerate() {
                assert!(close(*x, *y, rtol, 1e-12), "{what}: element {i}: jit {x} vs interpreter {y}");
            }
        }
        _ => assert_eq!(got, want, "{what}"),
    }
}

/// The option sets every check compiles with: defaults, and each optimization switched off.
pub fn option_sets() -> Vec<(&'static str, CompileOptions)> {
    let base = CompileOptions { verifier: true, ..CompileOptions::default() };
    vec![
        ("default", base.clone()),
        ("no fusion", CompileOptions { fuse: false, ..base.clone() }),
        ("scalar", CompileOptions { vectorize: false, ..base.clone() }),
        ("no inline math", CompileOptions { inline_math: false, ..base.clone() }),
        ("dgemm always", CompileOptions { dgemm_min_work: 0, ..base.clone() }),
        ("one part per step", CompileOptions { part_budget: 1, ..base }),
    ]
}

/// Compiles `graph` with every option set and checks the results against the interpreter.
pub fn check_inputs(graph: &Graph, inputs: &HashMap<String, Value>, rtol: f64) {
    let want = tessera_graph::eval(graph, inputs).unwrap_or_else(|e| panic!("interpreter: {e}\n{graph}"));
    for (label, opts) in option_sets() {
        let (compiled, _) = compile_with_stats(graph, &opts).unwrap_or_else(|e| panic!("[{label}] compile: {e}\n{graph}"));
        let got = compiled.call_named(inputs).unwrap_or_else(|e| panic!("[{label}] call: {e}\n{graph}"));
        assert_eq!(got.len(), want.len());
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_values_close(&format!("[{label}] output {k} of\n{graph}"), g, w, rtol);
        }
    }
}

/// Parses `src`, draws inputs (seed 7) and checks the JIT against the interpreter.
pub fn check(src: &str) {
    let graph = tessera_graph::parse(src).unwrap_or_else(|e| panic!("parse: {e}\n{src}"));
    let inputs = random_inputs(&graph, 7);
    check_inputs(&graph, &inputs, 1e-12);
}
