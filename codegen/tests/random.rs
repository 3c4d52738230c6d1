//! Property tests: random well-typed graphs (the graph crate's generator) compiled under every
//! option set give the interpreter's results on random inputs (NaN equals NaN); so do their
//! symbolic gradients.

mod common;

use std::collections::HashMap;

use common::{close, option_sets};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tessera_codegen::compile_with_stats;
use tessera_graph::arbitrary::{DomainPolicy, GenConfig, arb_graph, arb_graph_with_inputs, arb_inputs};
use tessera_graph::{Graph, Value};

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0xc0de_9e17), failure_persistence: None, ..Config::default() }
}

/// Checks every option set against the interpreter; `Err` describes the first mismatch.
fn jit_matches(graph: &Graph, inputs: &HashMap<String, Value>) -> Result<(), TestCaseError> {
    let Ok(want) = tessera_graph::eval(graph, inputs) else {
        return Ok(()); // the interpreter rejects these inputs (e.g. an index out of range)
    };
    for (label, opts) in option_sets() {
        let (compiled, _) =
            compile_with_stats(graph, &opts).map_err(|e| TestCaseError::fail(format!("[{label}] compile: {e}\n{graph}")))?;
        let got = compiled.call_named(inputs).map_err(|e| TestCaseError::fail(format!("[{label}] call: {e}\n{graph}")))?;
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            prop_assert_eq!(g.ty(), w.ty(), "[{}] output {} of\n{}", label, k, graph);
            let (gv, wv) = (g.to_f64_vec(), w.to_f64_vec());
            // Vector sums reassociate and inline exp/log differ from std by an ulp or two;
            // cancellation can magnify that, so compare against the larger magnitude.
            let scale = wv.iter().filter(|x| x.is_finite()).fold(1.0f64, |m, x| m.max(x.abs()));
            for (i, (a, b)) in gv.iter().zip(&wv).enumerate() {
                prop_assert!(
                    close(*a, *b, 1e-9, 1e-9 * scale),
                    "[{}] output {} element {}: jit {} vs interpreter {}\n{}",
                    label, k, i, a, b, graph
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn random_graphs(case in arb_graph_with_inputs(GenConfig::default())) {
        let (graph, inputs) = case;
        jit_matches(&graph, &inputs)?;
    }
}

proptest! {
    #![proptest_config(config(100))]

    #[test]
    fn random_graphs_with_nan_and_inf(case in arb_graph_with_inputs(GenConfig { domain: DomainPolicy::Raw, ..GenConfig::default() })) {
        let (graph, inputs) = case;
        jit_matches(&graph, &inputs)?;
    }

    #[test]
    fn bigger_random_graphs(case in arb_graph_with_inputs(GenConfig { max_extent: 9, max_steps: 24, max_elements: 2000, ..GenConfig::default() })) {
        let (graph, inputs) = case;
        jit_matches(&graph, &inputs)?;
    }

    #[test]
    fn gradients_of_random_graphs(case in arb_graph(GenConfig::smooth()).prop_filter_map("no gradient", |g| {
        let names: Vec<String> = g.inputs().iter().filter_map(|&i| g.input_name(i).map(str::to_string)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        tessera_graph::with_gradients(&g, &refs).ok()
    }).prop_flat_map(|g| { let inputs = arb_inputs(&g); (Just(g), inputs) })) {
        let (graph, inputs) = case;
        jit_matches(&graph, &inputs)?;
    }
}
