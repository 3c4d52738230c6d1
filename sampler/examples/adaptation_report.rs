//! Measures both adaptation schemes on the test targets, the ESS per gradient evaluation on
//! `gaussian_100d`, and the sampler's overhead per leapfrog step (in CPU time, so that other
//! processes on the machine do not distort it); prints the markdown tables of
//! `sampler/ADAPTATION.md`.
//!
//! Run: `cargo run --release -p tessera-sampler --example adaptation_report [seeds] [section]`
//! with `section` one of `all` (default), `adaptation`, `nutpie`, `overhead`.

use std::time::Instant;

use tessera_sampler::diagnostics::{ess_bulk, ess_tail};
use tessera_sampler::targets::{Ar1Gaussian, DenseGaussian, DiagGaussian, IidGaussian};
use tessera_sampler::{
    Adaptation, GradientAdaptation, LogDensity, SampleError, Settings, StanAdaptation, Trace,
    sample,
};

/// Samples a fixed density with the given settings.
type Runner = Box<dyn Fn(&Settings) -> Result<Trace, SampleError>>;

/// A test target with its true marginal variances.
struct Target {
    name: &'static str,
    variances: Vec<f64>,
    run: Runner,
}

fn target<D: LogDensity + Clone + Send + 'static>(
    name: &'static str,
    density: D,
    variances: Vec<f64>,
) -> Target {
    Target {
        name,
        variances,
        run: Box::new(move |s| sample(&density, s)),
    }
}

fn targets() -> Vec<Target> {
    let scales = DiagGaussian::gaussian_100d_scales();
    let correlated = Ar1Gaussian::new(20, 0.5, 1.25);
    vec![
        target("iid_normal_100d", IidGaussian::new(100), vec![1.0; 100]),
        target(
            "gaussian_100d",
            DiagGaussian::new(&scales),
            scales.iter().map(|s| s * s).collect(),
        ),
        target(
            "correlated_20d",
            correlated.density.clone(),
            correlated.variances(),
        ),
    ]
}

fn schemes() -> Vec<Adaptation> {
    vec![
        Adaptation::GradientBased(GradientAdaptation::default()),
        Adaptation::StanWindowed(StanAdaptation::default()),
    ]
}

/// Figures of one run (averaged over its chains).
#[derive(Debug, Default, Clone, Copy)]
struct RunFigures {
    /// First tuning draw after which the averaged step size (the one sampling would use if
    /// tuning stopped there) stays within 10% of its final value.
    stable_at: f64,
    /// Worst ratio (>= 1) between adapted inverse mass and true variance, over chains.
    mass_ratio: f64,
    grad_per_draw: f64,
    min_ess_bulk_per_grad: f64,
    mean_ess_bulk_per_grad: f64,
    min_ess_bulk: f64,
    min_ess_tail: f64,
    divergences: f64,
    mean_accept: f64,
    seconds: f64,
}

fn stable_at(trace: &Trace) -> f64 {
    let per_chain = trace.chains.iter().map(|c| {
        let last = c.adaptation.step_size;
        let far = |s: &f64| (s / last).ln().abs() > 1.1f64.ln();
        c.warmup_stats
            .iter()
            .map(|s| s.step_size_bar)
            .collect::<Vec<_>>()
            .iter()
            .rposition(far)
            .map_or(0, |i| i + 1)
    });
    per_chain.map(|x| x as f64).sum::<f64>() / trace.chains.len() as f64
}

fn mass_ratio(trace: &Trace, variances: &[f64]) -> f64 {
    trace
        .chains
        .iter()
        .flat_map(|c| {
            c.adaptation
                .inv_mass_diag
                .iter()
                .zip(variances)
                .map(|(m, v)| (m / v).max(v / m))
        })
        .fold(1.0, f64::max)
}

fn figures(trace: &Trace, variances: &[f64], seconds: f64) -> RunFigures {
    let values = trace.parameter_values();
    let bulk: Vec<f64> = values.iter().map(|q| ess_bulk(q)).collect();
    let tail: Vec<f64> = values.iter().map(|q| ess_tail(q)).collect();
    let grads = trace.grad_evals_sampling() as f64;
    let draws: usize = trace.chains.iter().map(|c| c.num_draws()).sum();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    RunFigures {
        stable_at: stable_at(trace),
        mass_ratio: mass_ratio(trace, variances),
        grad_per_draw: grads / draws as f64,
        min_ess_bulk_per_grad: min(&bulk) / grads,
        mean_ess_bulk_per_grad: bulk.iter().sum::<f64>() / bulk.len() as f64 / grads,
        min_ess_bulk: min(&bulk),
        min_ess_tail: min(&tail),
        divergences: trace.divergences() as f64,
        mean_accept: trace
            .chains
            .iter()
            .flat_map(|c| c.stats.iter().map(|s| s.accept_stat))
            .sum::<f64>()
            / draws as f64,
        seconds,
    }
}

fn mean_figures(runs: &[RunFigures]) -> RunFigures {
    let n = runs.len() as f64;
    let avg = |f: fn(&RunFigures) -> f64| runs.iter().map(f).sum::<f64>() / n;
    RunFigures {
        stable_at: avg(|r| r.stable_at),
        mass_ratio: runs.iter().map(|r| r.mass_ratio).fold(1.0, f64::max),
        grad_per_draw: avg(|r| r.grad_per_draw),
        min_ess_bulk_per_grad: avg(|r| r.min_ess_bulk_per_grad),
        mean_ess_bulk_per_grad: avg(|r| r.mean_ess_bulk_per_grad),
        min_ess_bulk: avg(|r| r.min_ess_bulk),
        min_ess_tail: avg(|r| r.min_ess_tail),
        divergences: avg(|r| r.divergences),
        mean_accept: avg(|r| r.mean_accept),
        seconds: avg(|r| r.seconds),
    }
}

fn run_many(
    target: &Target,
    adaptation: &Adaptation,
    tune: usize,
    seeds: u64,
) -> Result<RunFigures, SampleError> {
    let mut runs = Vec::new();
    for seed in 1..=seeds {
        let settings = Settings {
            tune,
            draws: 1000,
            chains: 4,
            seed,
            keep_warmup: true,
            adaptation: adaptation.clone(),
            ..Settings::default()
        };
        let start = Instant::now();
        let trace = (target.run)(&settings)?;
        runs.push(figures(
            &trace,
            &target.variances,
            start.elapsed().as_secs_f64(),
        ));
    }
    Ok(mean_figures(&runs))
}

fn main() -> Result<(), SampleError> {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let section = std::env::args().nth(2).unwrap_or_else(|| "all".into());
    if section == "all" || section == "adaptation" {
        adaptation_tables(seeds)?;
    }
    if section == "all" || section == "nutpie" {
        nutpie_comparison(seeds)?;
    }
    if section == "all" || section == "overhead" {
        overhead_report()?;
    }
    Ok(())
}

/// Both schemes on every target and tuning length.
fn adaptation_tables(seeds: u64) -> Result<(), SampleError> {
    println!(
        "Means over {seeds} seeds (seeds 1..={seeds}); 4 chains x 1000 draws; mass ratio = worst over seeds and chains.\n"
    );
    println!(
        "| target | adaptation | tune | step size stable after | mass matrix worst ratio | grad evals / draw | min ESS_bulk / grad | mean ESS_bulk / grad | min ESS_bulk | min ESS_tail | mean accept_stat | divergences |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for target in targets() {
        for adaptation in schemes() {
            for tune in [1000, 400, 200, 100] {
                let f = run_many(&target, &adaptation, tune, seeds)?;
                println!(
                    "| {} | {} | {tune} | {:.0} | {:.2} | {:.2} | {:.4} | {:.4} | {:.0} | {:.0} | {:.3} | {:.1} |",
                    target.name,
                    adaptation.name(),
                    f.stable_at,
                    f.mass_ratio,
                    f.grad_per_draw,
                    f.min_ess_bulk_per_grad,
                    f.mean_ess_bulk_per_grad,
                    f.min_ess_bulk,
                    f.min_ess_tail,
                    f.mean_accept,
                    f.divergences
                );
            }
        }
    }
    Ok(())
}

/// CPU seconds used by this process so far (utime + stime from `/proc/self/stat`, in clock
/// ticks of 10 ms); wall-clock seconds where `/proc` is not available.
fn cpu_seconds(start: Instant) -> f64 {
    let from_proc = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<f64> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            // After the command name: state (not numeric, skipped), then ppid ...; utime and
            // stime are the 14th and 15th fields of the line, i.e. numeric fields 10 and 11 here.
            Some((fields.get(10)? + fields.get(11)?) / 100.0)
        });
    from_proc.unwrap_or_else(|| start.elapsed().as_secs_f64())
}

/// CPU seconds per call of `f`, over at least `budget` CPU seconds. Calls run in batches of
/// about 50 ms so that reading the CPU clock (a `/proc` read) costs nothing per call.
fn cpu_per_call(budget: f64, mut f: impl FnMut()) -> f64 {
    let probe = Instant::now();
    for _ in 0..10 {
        f();
    }
    let per_call = probe.elapsed().as_secs_f64() / 10.0;
    let batch = ((0.05 / per_call.max(1e-9)) as u64).max(1);
    let start = Instant::now();
    let begin = cpu_seconds(start);
    let mut calls = 0u64;
    while cpu_seconds(start) - begin < budget {
        for _ in 0..batch {
            f();
        }
        calls += batch;
    }
    (cpu_seconds(start) - begin) / calls as f64
}

/// Overhead of the sampler per leapfrog step on the 1000-d standard normal, after tuning.
fn overhead_report() -> Result<(), SampleError> {
    const DIM: usize = 1000;
    let density = IidGaussian::new(DIM);
    let tuned = sample(
        &density,
        &Settings {
            chains: 1,
            cores: 1,
            ..Settings::default()
        },
    )?;
    let adapted = &tuned.chains[0].adaptation;
    let settings = Settings {
        tune: 0,
        draws: 1000,
        chains: 1,
        cores: 1,
        step_size: Some(adapted.step_size),
        inv_mass_diag: Some(adapted.inv_mass_diag.clone()),
        ..Settings::default()
    };
    let probe = sample(&density, &settings)?;
    let leapfrogs = probe.chains[0].grad_evals_tune + probe.chains[0].grad_evals_sampling;
    let per_run = cpu_per_call(3.0, || {
        let _ = std::hint::black_box(sample(&density, &settings));
    });
    let per_leapfrog = per_run / leapfrogs as f64;
    let x: Vec<f64> = (0..DIM).map(|i| 0.3 * ((i + 1) as f64).sin()).collect();
    let mut grad = vec![0.0; DIM];
    let mut iid = IidGaussian::new(DIM);
    let iid_grad = cpu_per_call(2.0, || {
        let _ = std::hint::black_box(iid.logp_grad(std::hint::black_box(&x), &mut grad));
    });
    let mut precision = vec![0.5 / DIM as f64; DIM * DIM];
    for i in 0..DIM {
        precision[i * DIM + i] = 1.0;
    }
    let mut dense = DenseGaussian::from_precision(DIM, precision)
        .ok_or_else(|| SampleError::InvalidSettings("shape".into()))?;
    let dense_grad = cpu_per_call(2.0, || {
        let _ = std::hint::black_box(dense.logp_grad(std::hint::black_box(&x), &mut grad));
    });
    let overhead = per_leapfrog - iid_grad;
    println!(
        "\nOverhead per leapfrog step, 1000-d standard normal after tuning (step size {:.3}, {:.2} leapfrog steps per draw), CPU time:\n",
        adapted.step_size,
        leapfrogs as f64 / 1000.0
    );
    println!("| quantity | microseconds | ratio |");
    println!("|---|---|---|");
    println!(
        "| sampler time per leapfrog step (incl. density) | {:.3} | |",
        per_leapfrog * 1e6
    );
    println!(
        "| gradient, iid 1000-d Gaussian (the density sampled) | {:.3} | |",
        iid_grad * 1e6
    );
    println!(
        "| gradient, dense 1000-d Gaussian (x'Px) | {:.3} | |",
        dense_grad * 1e6
    );
    println!(
        "| overhead per leapfrog step | {:.3} | {:.2}x the iid gradient, {:.2}% of the dense gradient |",
        overhead * 1e6,
        overhead / iid_grad,
        100.0 * overhead / dense_grad
    );
    Ok(())
}

/// The peers.md setup: gaussian_100d, 4 chains x 1000 draws, default settings.
fn nutpie_comparison(seeds: u64) -> Result<(), SampleError> {
    let density = DiagGaussian::new(&DiagGaussian::gaussian_100d_scales());
    println!("\ngaussian_100d with default settings (tune 1000), 4 x 1000 draws, per seed:\n");
    println!(
        "| seed | min ESS_bulk | grad evals after tuning | min ESS_bulk / grad eval | sampling seconds (4 chains) |"
    );
    println!("|---|---|---|---|---|");
    for seed in 1..=seeds {
        let settings = Settings {
            seed,
            ..Settings::default()
        };
        let trace = sample(&density, &settings)?;
        let values = trace.parameter_values();
        let min_bulk = values
            .iter()
            .map(|q| ess_bulk(q))
            .fold(f64::INFINITY, f64::min);
        let grads = trace.grad_evals_sampling();
        let seconds = trace
            .chains
            .iter()
            .map(|c| c.timing.sampling_seconds)
            .fold(0.0, f64::max);
        println!(
            "| {seed} | {min_bulk:.0} | {grads} | {:.3} | {seconds:.3} |",
            min_bulk / grads as f64
        );
    }
    println!(
        "| nutpie (peers.md) | 5746 | 28000 | {:.3} | |",
        5746.0 / 28000.0
    );
    Ok(())
}
