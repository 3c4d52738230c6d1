//! Shared helpers of the rewrite tests: run the pipeline on a text-form case (with the
//! verifier on after every pass), check the interpreter agrees before and after, and render
//! the case for a snapshot.

#![allow(dead_code)]

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use tessera_graph::{DType, Graph, Op, Value, eval, parse, print};
use tessera_rewrite::{Pass, PipelineSettings, Report, optimize};

/// Deterministic test inputs: f64 values in (0.2, 1.9) (so log/sqrt/div are defined), i64
/// values 0..3, bools alternating.
pub fn inputs_for(g: &Graph) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    for (k, &id) in g.inputs().iter().enumerate() {
        let Op::Input { name, ty } = &g.node(id).op else { continue };
        let n = ty.shape.size();
        let shape = IxDyn(ty.shape.dims());
        let v = match ty.dtype {
            DType::F64 => Value::F64(ArrayD::from_shape_vec(shape, (0..n).map(|i| 0.2 + ((i * 7 + k * 3) % 17) as f64 / 10.0).collect()).unwrap()),
            DType::I64 => Value::I64(ArrayD::from_shape_vec(shape, (0..n).map(|i| ((i + k) % 3) as i64).collect()).unwrap()),
            DType::Bool => Value::Bool(ArrayD::from_shape_vec(shape, (0..n).map(|i| (i + k) % 2 == 0).collect()).unwrap()),
        };
        m.insert(name.to_string(), v);
    }
    m
}

/// Whether two f64 values agree: both NaN, equal, or within 1e-9 relative.
pub fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Runs `passes` on the program `src` and returns the optimized graph and report, after
/// checking the verifier after each pass and the interpreter's values before and after.
pub fn run(src: &str, passes: &[Pass]) -> (Graph, Report) {
    let g = parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let settings = PipelineSettings { passes: passes.to_vec(), trace: true, verify: true, ..PipelineSettings::default() };
    let (opt, report) = optimize(&g, &settings).unwrap();
    assert_eq!(parse(&print(&opt)).unwrap(), opt, "round trip of the optimized graph");
    let inputs = inputs_for(&g);
    let before = eval(&g, &inputs).unwrap();
    let after = eval(&opt, &inputs).unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.ty(), a.ty());
        for (x, y) in b.to_f64_vec().iter().zip(a.to_f64_vec()) {
            assert!(close(*x, y), "before {x} after {y}\n{}\n{}", print(&g), print(&opt));
        }
    }
    (opt, report)
}

/// The snapshot text of one case: input, output, and the trace.
pub fn check(title: &str, src: &str, passes: &[Pass]) -> String {
    let (opt, report) = run(src, passes);
    let mut s = format!("=== {title}\n{src}--- after\n{}", print(&opt));
    for t in &report.trace {
        s.push_str(&format!("  fired [{}] {}: {} → {}\n", t.pass, t.rule, t.before, t.after));
    }
    s.push('\n');
    s
}

/// The rule passes (no fusion), as the file tests use them.
pub const RULES: &[Pass] = &[Pass::Canonicalize, Pass::Simplify, Pass::Stabilize, Pass::Specialize];

/// A program `func @t(SIG) -> RET { BODY return OUT }`.
pub fn program(sig: &str, ret: &str, body: &str, out: &str) -> String {
    let mut s = format!("func @t({sig}) -> {ret} {{\n");
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(&format!("  return {out}\n}}\n"));
    s
}

/// Asserts that `rule` does not fire on the program.
pub fn assert_not_fired(src: &str, rule: &str) {
    let (_, report) = run(src, RULES);
    assert_eq!(report.count(rule), 0, "{rule} fired on\n{src}\n{report}");
}

/// Asserts that `rule` fires on the program.
pub fn assert_fired(src: &str, rule: &str) {
    let (_, report) = run(src, RULES);
    assert!(report.count(rule) > 0, "{rule} did not fire on\n{src}\n{report}");
}
