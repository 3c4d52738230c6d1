//! The language's size limits hold through the whole pipeline: the deepest expression the
//! parser accepts is rewritten, differentiated and compiled on a default 2 MB thread stack.

use tessera::pipeline::{PipelineOptions, compile_model};
use tessera_sampler::LogDensity;

#[test]
fn deepest_accepted_chain_compiles_on_a_default_thread_stack() {
    // `b[i] * x + …`: the index and the product add two levels under the chain's `+`.
    let terms = tessera_model::MAX_DEPTH - 5;
    let sum: Vec<String> = (0..terms).map(|i| format!("b[{i}] * x")).collect();
    let src = format!("data x: real\nparam b: vector[{terms}]\nb ~ normal(0, 1)\ntarget += -0.5 * ({})^2\n", sum.join(" + "));
    let model = compile_model(&src, "chain.tess", r#"{"x": 0.5}"#, "d.json", &PipelineOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let theta: Vec<f64> = (0..terms).map(|i| ((i % 7) as f64 - 3.0) / 10.0).collect();
    let mut grad = vec![0.0; terms];
    let lp = model.density.clone().logp_grad(&theta, &mut grad).unwrap();
    let (want, want_grad) = model.bound.logp_and_grad_interp(&theta).unwrap();
    assert!((lp - want).abs() <= 1e-9 * want.abs(), "{lp} vs {want}");
    assert!(grad.iter().zip(&want_grad).all(|(g, w)| (g - w).abs() <= 1e-9 * (1.0 + w.abs())));
}
