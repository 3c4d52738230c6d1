//! Helpers shared by the integration tests: MCSE-derived moment checks.

#![allow(dead_code)]

use tessera_sampler::Trace;
use tessera_sampler::diagnostics::summary_row;

/// How many Monte Carlo standard errors an estimate may be from the truth.
pub const MCSE_TOLERANCE: f64 = 4.0;

/// Checks every coordinate's posterior mean against 0 and sd against `true_sd` within
/// `MCSE_TOLERANCE` standard errors (ArviZ's `mcse_mean` / `mcse_sd`), and R-hat < 1.01.
pub fn check_moments(trace: &Trace, true_sd: &[f64]) {
    let values = trace.parameter_values();
    assert_eq!(values.len(), true_sd.len());
    for (i, (chains, &sd)) in values.iter().zip(true_sd).enumerate() {
        let row = match summary_row(&format!("x[{i}]"), chains) {
            Ok(row) => row,
            Err(e) => panic!("{e}"),
        };
        assert!(
            row.mean.abs() <= MCSE_TOLERANCE * row.mcse_mean,
            "x[{i}]: mean {} with mcse {}",
            row.mean,
            row.mcse_mean
        );
        assert!(
            (row.sd - sd).abs() <= MCSE_TOLERANCE * row.mcse_sd,
            "x[{i}]: sd {} vs {sd} with mcse_sd {}",
            row.sd,
            row.mcse_sd
        );
        assert!(row.r_hat < 1.01, "x[{i}]: r_hat {}", row.r_hat);
    }
}

/// Checks that every chain's adapted inverse mass matrix is within a factor `factor` of the
/// true marginal variances.
pub fn check_mass_matrix(trace: &Trace, variances: &[f64], factor: f64) {
    for chain in &trace.chains {
        for (i, (m, v)) in chain
            .adaptation
            .inv_mass_diag
            .iter()
            .zip(variances)
            .enumerate()
        {
            let ratio = (m / v).max(v / m);
            assert!(
                ratio <= factor,
                "chain {} x[{i}]: inverse mass {m} vs variance {v}",
                chain.chain
            );
        }
    }
}
