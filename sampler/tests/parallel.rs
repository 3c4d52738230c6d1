//! Parallel chains: thread-count independence, progress reports and cancellation.

use std::sync::Mutex;

use tessera_sampler::targets::{DiagGaussian, IidGaussian};
use tessera_sampler::{
    CancelToken, ChainStatus, NoProgress, ProgressUpdate, Settings, Trace, sample, sample_with,
    sample_with_factory,
};

fn run(settings: &Settings) -> Trace {
    match sample(&DiagGaussian::new(&[0.5, 1.0, 3.0, 10.0]), settings) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn assert_identical(a: &Trace, b: &Trace) {
    assert_eq!(a.chains.len(), b.chains.len());
    for (x, y) in a.chains.iter().zip(&b.chains) {
        // Bit-identical draws, statistics and adaptation results.
        assert_eq!(x.draws, y.draws, "chain {}", x.chain);
        assert_eq!(x.stats.len(), y.stats.len());
        for (s, t) in x.stats.iter().zip(&y.stats) {
            assert_eq!(
                (s.lp.to_bits(), s.n_leapfrog, s.step_size.to_bits()),
                (t.lp.to_bits(), t.n_leapfrog, t.step_size.to_bits())
            );
        }
        assert_eq!(x.adaptation, y.adaptation);
        assert_eq!(x.init_point, y.init_point);
    }
}

#[test]
fn draws_are_bit_identical_with_1_and_4_threads() {
    let base = Settings {
        tune: 200,
        draws: 200,
        chains: 4,
        seed: 31,
        ..Settings::default()
    };
    let one = run(&Settings {
        cores: 1,
        ..base.clone()
    });
    let four = run(&Settings {
        cores: 4,
        ..base.clone()
    });
    assert_identical(&one, &four);
    // Three threads for four chains: an uneven split gives the same draws too.
    assert_identical(
        &one,
        &run(&Settings {
            cores: 3,
            ..base.clone()
        }),
    );
    let other_seed = run(&Settings { seed: 32, ..base });
    assert_ne!(one.chains[0].draws, other_seed.chains[0].draws);
    assert_ne!(one.chains[0].draws, one.chains[1].draws);
}

#[test]
fn the_factory_and_the_clone_entry_points_agree() {
    let settings = Settings {
        tune: 100,
        draws: 100,
        chains: 2,
        seed: 33,
        ..Settings::default()
    };
    let cloned = match sample(&IidGaussian::new(3), &settings) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let built = match sample_with_factory(
        3,
        |_| IidGaussian::new(3),
        &settings,
        &NoProgress,
        &CancelToken::new(),
    ) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert_identical(&cloned, &built);
}

#[test]
fn progress_reports_every_draw_and_the_end_of_each_chain() {
    let settings = Settings {
        tune: 50,
        draws: 60,
        chains: 3,
        seed: 34,
        ..Settings::default()
    };
    let updates = Mutex::new(Vec::new());
    let record = |u: &ProgressUpdate| {
        if let Ok(mut v) = updates.lock() {
            v.push(u.clone());
        }
    };
    let trace = match sample_with(
        &IidGaussian::new(2),
        &settings,
        &record,
        &CancelToken::new(),
    ) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(!trace.cancelled);
    let updates = updates.into_inner().unwrap_or_default();
    for chain in 0..3 {
        let mine: Vec<&ProgressUpdate> = updates.iter().filter(|u| u.chain == chain).collect();
        assert_eq!(
            mine.len(),
            110 + 1,
            "one update per draw plus the final one"
        );
        assert!(mine.windows(2).all(|w| w[0].draws_done <= w[1].draws_done));
        assert!(
            mine[..50]
                .iter()
                .all(|u| u.total_draws == 110 && u.status == ChainStatus::Running)
        );
        assert!(mine[0].tuning && !mine[109].tuning);
        let last = mine[110];
        assert_eq!((last.draws_done, last.status), (110, ChainStatus::Finished));
        assert!(last.step_size > 0.0 && last.grad_evals > 110);
    }
}

#[test]
fn cancellation_returns_the_draws_so_far() {
    let settings = Settings {
        tune: 100,
        draws: 100_000,
        chains: 2,
        seed: 35,
        ..Settings::default()
    };
    let cancel = CancelToken::new();
    let stop_early = |u: &ProgressUpdate| {
        if u.draws_done >= 150 {
            cancel.cancel();
        }
    };
    let trace = match sample_with(&IidGaussian::new(2), &settings, &stop_early, &cancel) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(trace.cancelled);
    for chain in &trace.chains {
        assert!(chain.cancelled && chain.error.is_none());
        assert!(chain.num_draws() < 100_000);
        assert_eq!(chain.draws.len(), 2 * chain.num_draws());
    }
}
