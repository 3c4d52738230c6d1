//! Sampler overhead per leapfrog step beyond the log density, on a trivially cheap 1000-d
//! Gaussian, next to the cost of one gradient evaluation of a 1000-d Gaussian (iid: the cheap
//! density itself; dense: a general Gaussian, `x'Px` with a 1000 x 1000 precision matrix).
//!
//! Run: `cargo bench -p tessera-sampler --bench overhead`. Overhead per leapfrog =
//! `nuts/iid_1000d` (time per leapfrog step, sampler + density) − `gradient/iid_1000d`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use tessera_sampler::targets::{DenseGaussian, IidGaussian};
use tessera_sampler::{LogDensity, Settings, sample};

const DIM: usize = 1000;

/// Post-tuning sampling on one thread: the step size and metric of a tuned run, no tuning.
fn nuts_settings(density: &IidGaussian) -> Settings {
    let single = Settings {
        chains: 1,
        cores: 1,
        seed: 1,
        ..Settings::default()
    };
    let adapted = match sample(density, &single) {
        Ok(trace) => trace.chains[0].adaptation.clone(),
        Err(e) => panic!("{e}"),
    };
    Settings {
        tune: 0,
        draws: 1000,
        step_size: Some(adapted.step_size),
        inv_mass_diag: Some(adapted.inv_mass_diag),
        ..single
    }
}

/// A dense, well-conditioned precision matrix: `I + 0.5 / DIM` everywhere off the diagonal.
fn dense_gaussian() -> DenseGaussian {
    let mut precision = vec![0.5 / DIM as f64; DIM * DIM];
    for i in 0..DIM {
        precision[i * DIM + i] = 1.0;
    }
    match DenseGaussian::from_precision(DIM, precision) {
        Some(d) => d,
        None => unreachable!("the matrix has DIM * DIM entries"),
    }
}

fn gradient_benches(c: &mut Criterion) {
    let x: Vec<f64> = (0..DIM).map(|i| 0.3 * ((i + 1) as f64).sin()).collect();
    let mut grad = vec![0.0; DIM];
    let mut group = c.benchmark_group("gradient");
    let mut iid = IidGaussian::new(DIM);
    group.bench_function("iid_1000d", |b| {
        b.iter(|| iid.logp_grad(black_box(&x), black_box(&mut grad)))
    });
    let mut dense = dense_gaussian();
    group.bench_function("dense_1000d", |b| {
        b.iter(|| dense.logp_grad(black_box(&x), black_box(&mut grad)))
    });
    group.finish();
}

fn nuts_benches(c: &mut Criterion) {
    let density = IidGaussian::new(DIM);
    let settings = nuts_settings(&density);
    // The run is deterministic, so its number of leapfrog steps is known in advance.
    let leapfrogs = match sample(&density, &settings) {
        Ok(trace) => trace
            .chains
            .iter()
            .map(|ch| ch.grad_evals_tune + ch.grad_evals_sampling)
            .sum::<u64>(),
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("nuts");
    group.throughput(Throughput::Elements(leapfrogs));
    group.sample_size(20);
    group.bench_function("iid_1000d", |b| {
        b.iter(|| sample(black_box(&density), &settings))
    });
    group.finish();
}

mod group {
    // The macro generates an undocumented public function.
    #![allow(missing_docs)]
    use super::{gradient_benches, nuts_benches};
    criterion::criterion_group!(benches, gradient_benches, nuts_benches);
}

criterion_main!(group::benches);
