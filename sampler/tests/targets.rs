//! Sampling targets with known answers; tolerances come from the Monte Carlo standard errors.

mod common;

use common::{check_mass_matrix, check_moments};
use tessera_sampler::targets::{Ar1Gaussian, DiagGaussian, Funnel, IidGaussian};
use tessera_sampler::{Adaptation, Settings, StanAdaptation, sample};

fn settings(seed: u64) -> Settings {
    Settings {
        seed,
        ..Settings::default()
    }
}

#[test]
fn iid_normal_100d_means_within_4_mcse_and_sds_within_10_percent() {
    let trace = match sample(&IidGaussian::new(100), &settings(11)) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let rows = match trace.summary(&trace.default_names()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    for row in &rows {
        assert!(
            row.mean.abs() <= 4.0 * row.mcse_mean,
            "{}: mean {} mcse {}",
            row.name,
            row.mean,
            row.mcse_mean
        );
        assert!((row.sd - 1.0).abs() <= 0.1, "{}: sd {}", row.name, row.sd);
        assert!(row.r_hat < 1.01, "{}: r_hat {}", row.name, row.r_hat);
    }
    assert_eq!(trace.divergences(), 0);
}

/// Whether `../shared/bench-data/gaussian_100d.json` (when present) has the scales we use.
fn scales_match_bench_data(scales: &[f64]) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/bench-data/gaussian_100d.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("note: {path} not found; using the documented recipe sqrt(logspace(-2, 2, 100))");
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        panic!("bad JSON in {path}")
    };
    let data: Vec<f64> = json["scales"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!(data.len(), scales.len());
    for (a, b) in data.iter().zip(scales) {
        assert!((a - b).abs() <= 1e-12 * b, "{a} vs {b}");
    }
}

#[test]
fn scaled_gaussian_100d_moments_and_mass_matrix_with_both_adaptations() {
    let scales = DiagGaussian::gaussian_100d_scales();
    scales_match_bench_data(&scales);
    let variances: Vec<f64> = scales.iter().map(|s| s * s).collect();
    let density = DiagGaussian::new(&scales);
    for adaptation in [
        Adaptation::default(),
        Adaptation::StanWindowed(StanAdaptation::default()),
    ] {
        let trace = match sample(
            &density,
            &Settings {
                adaptation,
                ..settings(12)
            },
        ) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        check_moments(&trace, &scales);
        check_mass_matrix(&trace, &variances, 2.0);
    }
}

#[test]
fn gaussian_with_standard_deviations_from_001_to_100() {
    // The literal reading of "scales from 0.01 to 100": eight orders of magnitude of variance.
    let scales: Vec<f64> = (0..100)
        .map(|i| 10f64.powf(-2.0 + 4.0 * i as f64 / 99.0))
        .collect();
    let variances: Vec<f64> = scales.iter().map(|s| s * s).collect();
    let density = DiagGaussian::new(&scales);
    for adaptation in [
        Adaptation::default(),
        Adaptation::StanWindowed(StanAdaptation::default()),
    ] {
        let trace = match sample(
            &density,
            &Settings {
                adaptation,
                ..settings(15)
            },
        ) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        check_moments(&trace, &scales);
        check_mass_matrix(&trace, &variances, 2.0);
    }
}

/// Largest eigenvalue of a symmetric positive definite matrix by power iteration.
fn largest_eigenvalue(matrix: &[f64], dim: usize) -> f64 {
    let mut v = vec![1.0; dim];
    let mut lambda = 0.0;
    for _ in 0..2000 {
        let w: Vec<f64> = matrix
            .chunks_exact(dim)
            .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        lambda = norm / v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = w.iter().map(|x| x / norm).collect();
    }
    lambda
}

#[test]
fn correlated_gaussian_with_condition_number_1e3() {
    let target = Ar1Gaussian::new(20, 0.5, 1.25);
    let condition = largest_eigenvalue(&target.covariance, 20)
        * largest_eigenvalue(target.density.precision(), 20);
    assert!(
        (500.0..2000.0).contains(&condition),
        "condition number {condition}"
    );
    let variances = target.variances();
    let sds: Vec<f64> = variances.iter().map(|v| v.sqrt()).collect();
    let trace = match sample(&target.density, &settings(13)) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    check_moments(&trace, &sds);
    check_mass_matrix(&trace, &variances, 2.0);
}

#[test]
fn neals_funnel_completes_and_reports_divergences() {
    let settings = Settings {
        tune: 300,
        draws: 300,
        chains: 2,
        seed: 14,
        ..Settings::default()
    };
    let trace = match sample(&Funnel::new(10), &settings) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(trace.errors().next().is_none());
    for chain in &trace.chains {
        assert_eq!(chain.num_draws(), 300);
        assert!(chain.draws.iter().all(|x| x.is_finite()));
        assert!(
            chain
                .stats
                .iter()
                .all(|s| s.tree_depth <= 10 && s.n_leapfrog < 1024)
        );
    }
    assert!(
        trace.divergences() > 0,
        "the funnel's neck should make NUTS diverge"
    );
}
