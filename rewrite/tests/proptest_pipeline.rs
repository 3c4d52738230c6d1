//! Random graphs and inputs: the interpreter gives the same values before and after the
//! whole pipeline (verifier on after every pass), and the optimized graph round-trips through
//! the text form.
//!
//! Tolerance: rewrites reassociate constant chains, distribute scalar factors out of sums,
//! merge reductions (another summation order), replace n-fold sums by products and pow by
//! square/sqrt/reciprocal. Each changes a result by a few ulps of the intermediate values,
//! and graphs of at most 16 ops over inputs in [−3, 3] (guarded domains, so intermediates
//! stay moderate) amplify that by far less than 10³, so |a − b| ≤ 1e-9 · max(1, |a|, |b|);
//! NaN must stay NaN and infinities must stay equal. With raw domains the stabilizing
//! rewrites are *meant* to change results where the naive form overflows or hits 0 · inf,
//! so there a non-finite value before may become any value after.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tessera_graph::arbitrary::{DomainPolicy, GenConfig, arb_graph, arb_inputs};
use tessera_graph::{Graph, eval, parse, print};
use tessera_rewrite::{PipelineSettings, optimize};

fn agree(before: f64, after: f64, allow_improvement: bool) -> bool {
    if before.is_nan() || after.is_nan() {
        return (before.is_nan() && after.is_nan()) || (allow_improvement && !before.is_finite());
    }
    if before.is_infinite() || after.is_infinite() {
        return before == after || (allow_improvement && !before.is_finite());
    }
    (before - after).abs() <= 1e-9 * before.abs().max(after.abs()).max(1.0)
}

fn check(g: &Graph, inputs: &std::collections::HashMap<String, tessera_graph::Value>, allow_improvement: bool) -> Result<(), TestCaseError> {
    let settings = PipelineSettings { verify: true, ..PipelineSettings::default() };
    let (opt, _) = optimize(g, &settings).map_err(|e| TestCaseError::fail(format!("{e}\n{}", print(g))))?;
    prop_assert_eq!(&parse(&print(&opt)).unwrap(), &opt);
    let Ok(before) = eval(g, inputs) else { return Ok(()) };
    let after = eval(&opt, inputs).map_err(|e| TestCaseError::fail(format!("{e}\n{}\n{}", print(g), print(&opt))))?;
    for (b, a) in before.iter().zip(&after) {
        prop_assert_eq!(b.ty(), a.ty());
        for (x, y) in b.to_f64_vec().iter().zip(a.to_f64_vec()) {
            prop_assert!(agree(*x, y, allow_improvement), "before {} after {}\n{}\n{}", x, y, print(g), print(&opt));
        }
    }
    Ok(())
}

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x7e55e7a), failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn pipeline_preserves_values(
        (g, inputs) in arb_graph(GenConfig::default()).prop_flat_map(|g| { let i = arb_inputs(&g); (Just(g), i) })
    ) {
        check(&g, &inputs, false)?;
    }

    #[test]
    fn pipeline_preserves_log_densities(
        (g, inputs) in arb_graph(GenConfig { max_steps: 24, ..GenConfig::smooth() }).prop_flat_map(|g| { let i = arb_inputs(&g); (Just(g), i) })
    ) {
        check(&g, &inputs, false)?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn pipeline_on_raw_domains_only_improves_non_finite_values(
        (g, inputs) in arb_graph(GenConfig { domain: DomainPolicy::Raw, ..GenConfig::default() }).prop_flat_map(|g| { let i = arb_inputs(&g); (Just(g), i) })
    ) {
        check(&g, &inputs, true)?;
    }
}
