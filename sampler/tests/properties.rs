//! Property tests of the diagnostics and of the CmdStan name conversion.

use proptest::prelude::*;
use tessera_sampler::cmdstan_csv::cmdstan_name;
use tessera_sampler::diagnostics::{ess_bulk, hdi, rhat, summary_row};

/// 2 to 4 chains of 4 to 60 draws each (all chains the same length).
fn chains() -> impl Strategy<Value = Vec<Vec<f64>>> {
    (2usize..=4, 4usize..=60)
        .prop_flat_map(|(c, n)| prop::collection::vec(prop::collection::vec(-1e3f64..1e3, n), c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hdi_holds_94_percent_of_the_draws(chains in chains()) {
        let (lower, upper) = hdi(&chains, 0.94);
        let all: Vec<f64> = chains.iter().flatten().copied().collect();
        let inside = all.iter().filter(|&&x| lower <= x && x <= upper).count();
        prop_assert!(lower <= upper);
        prop_assert!(inside as f64 >= (0.94 * all.len() as f64).floor());
    }

    #[test]
    fn diagnostics_are_finite_and_rank_based(chains in chains(), exponent in -3i32..3) {
        let ess = ess_bulk(&chains);
        prop_assert!(ess.is_finite() && ess > 0.0);
        // Bulk ESS and R-hat only depend on ranks (also of the folded draws): scaling by a
        // power of two keeps them exactly (other maps could create or break ties by rounding).
        let scale = 2f64.powi(exponent);
        let mapped: Vec<Vec<f64>> = chains.iter().map(|c| c.iter().map(|x| scale * x).collect()).collect();
        prop_assert!((ess_bulk(&mapped) - ess).abs() <= 1e-9 * ess);
        let (r, r_mapped) = (rhat(&chains), rhat(&mapped));
        prop_assert!((r.is_nan() && r_mapped.is_nan()) || (r - r_mapped).abs() <= 1e-9 * r.abs());
        let row = summary_row("x", &chains);
        prop_assert!(row.is_ok_and(|row| row.sd >= 0.0 && row.hdi_lower <= row.mean.max(row.hdi_lower)));
    }

    #[test]
    fn bracket_names_convert_to_one_based_indices(base in "[a-z][a-z_0-9]{0,6}", indices in prop::collection::vec(0usize..1000, 1..4)) {
        let bracket = format!("{base}[{}]", indices.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let dotted = format!("{base}.{}", indices.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join("."));
        prop_assert_eq!(cmdstan_name(&bracket).ok(), Some(dotted.clone()));
        // Already converted names pass through unchanged.
        prop_assert_eq!(cmdstan_name(&dotted).ok(), Some(dotted));
    }
}
