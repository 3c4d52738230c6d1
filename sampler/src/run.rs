//! Running chains in parallel threads, with progress reports and cancellation.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::chain::run_chain;
use crate::density::LogDensity;
use crate::error::{ChainError, SampleError};
use crate::settings::Settings;
use crate::trace::{ChainTrace, Trace};

/// Where a chain stands, in a [`ProgressUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStatus {
    /// Still drawing.
    Running,
    /// All draws done.
    Finished,
    /// Stopped by an error (see [`ChainTrace::error`]).
    Failed,
    /// Stopped by cancellation.
    Cancelled,
}

/// The state of one chain, sent to the progress callback after every draw and once at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    /// Chain index.
    pub chain: usize,
    /// Draws done so far, tuning included.
    pub draws_done: usize,
    /// Total draws of the chain, tuning included.
    pub total_draws: usize,
    /// Whether the chain is still tuning.
    pub tuning: bool,
    /// Divergent draws after tuning so far.
    pub divergences: usize,
    /// Divergent draws during tuning so far.
    pub warmup_divergences: usize,
    /// Step size of the last draw.
    pub step_size: f64,
    /// Log-density evaluations so far.
    pub grad_evals: u64,
    /// Running, finished, failed or cancelled.
    pub status: ChainStatus,
}

/// Receives progress updates from every chain's thread; must be cheap (it is called after each
/// draw) and thread-safe. Any `Fn(&ProgressUpdate) + Sync` closure is one.
pub trait Progress: Sync {
    /// Called by the chain's thread after each draw and when the chain ends.
    fn update(&self, update: &ProgressUpdate);
}

impl<F: Fn(&ProgressUpdate) + Sync> Progress for F {
    fn update(&self, update: &ProgressUpdate) {
        self(update)
    }
}

/// A [`Progress`] that ignores every update.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _update: &ProgressUpdate) {}
}

/// A shared flag that stops a run between draws; the run then returns what it has, with
/// [`Trace::cancelled`] set. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every chain to stop after its current draw.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](CancelToken::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Samples `settings.chains` chains from `density`, each on its own clone, in parallel.
///
/// Equivalent to [`sample_with`] without progress reports or cancellation.
pub fn sample<D: LogDensity + Clone + Send>(
    density: &D,
    settings: &Settings,
) -> Result<Trace, SampleError> {
    sample_with(density, settings, &NoProgress, &CancelToken::new())
}

/// Samples `settings.chains` chains, each on its own clone of `density` (cloned on the calling
/// thread), on `settings.cores` threads. The draws depend only on the settings, never on the
/// number of threads.
///
/// A chain stopped by a non-recoverable log-density error (or a panic) reports it in
/// [`ChainTrace::error`] while the others finish; the run fails only if every chain failed.
pub fn sample_with<D: LogDensity + Clone + Send, P: Progress + ?Sized>(
    density: &D,
    settings: &Settings,
    progress: &P,
    cancel: &CancelToken,
) -> Result<Trace, SampleError> {
    let dim = density.dim();
    settings.validate(dim)?;
    let jobs: Vec<(usize, D)> = (0..settings.chains)
        .map(|chain| (chain, density.clone()))
        .collect();
    let chains = run_in_threads(jobs, worker_count(settings), &|(chain, density)| {
        guarded_chain(chain, dim, settings, progress, cancel, move || density)
    });
    collect_trace(dim, settings, chains, cancel)
}

/// Like [`sample_with`], but chain `i` samples from `factory(i)`, called on the chain's own
/// thread (so the density need not be `Send` or `Clone`). `dim` is the dimension every
/// instance must have; a chain whose instance differs fails with an error.
pub fn sample_with_factory<D: LogDensity, F: Fn(usize) -> D + Sync, P: Progress + ?Sized>(
    dim: usize,
    factory: F,
    settings: &Settings,
    progress: &P,
    cancel: &CancelToken,
) -> Result<Trace, SampleError> {
    settings.validate(dim)?;
    let jobs: Vec<usize> = (0..settings.chains).collect();
    let chains = run_in_threads(jobs, worker_count(settings), &|chain| {
        guarded_chain(chain, dim, settings, progress, cancel, || factory(chain))
    });
    collect_trace(dim, settings, chains, cancel)
}

fn worker_count(settings: &Settings) -> usize {
    let cores = if settings.cores == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        settings.cores
    };
    cores.clamp(1, settings.chains.max(1))
}

/// Runs one chain, turning a panic of the density (or of the sampler) into a chain error that
/// keeps the draws made so far.
fn guarded_chain<D: LogDensity, P: Progress + ?Sized>(
    chain: usize,
    dim: usize,
    settings: &Settings,
    progress: &P,
    cancel: &CancelToken,
    make_density: impl FnOnce() -> D,
) -> ChainTrace {
    let mut trace = ChainTrace::new(chain, dim);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let density = make_density();
        if density.dim() != dim {
            trace.error = Some(ChainError::DimensionMismatch {
                expected: dim,
                found: density.dim(),
            });
            return;
        }
        run_chain(&mut trace, density, settings, progress, cancel);
    }));
    if let Err(payload) = outcome {
        trace.error = Some(ChainError::Panicked(panic_message(payload.as_ref())));
        report_panicked_chain(&trace, settings, progress);
    }
    trace
}

/// The final progress update of a chain that panicked, rebuilt from what its trace holds (the
/// number of draws done is exact only if warmup draws were kept).
fn report_panicked_chain<P: Progress + ?Sized>(
    trace: &ChainTrace,
    settings: &Settings,
    progress: &P,
) {
    let sampled = trace.num_draws();
    let draws_done = if sampled > 0 {
        settings.tune + sampled
    } else {
        trace.warmup_stats.len()
    };
    let last_step = trace
        .stats
        .last()
        .or(trace.warmup_stats.last())
        .map_or(f64::NAN, |s| s.step_size);
    progress.update(&ProgressUpdate {
        chain: trace.chain,
        draws_done,
        total_draws: settings.tune + settings.draws,
        tuning: draws_done < settings.tune,
        divergences: trace.divergences(),
        warmup_divergences: trace.warmup_divergences,
        step_size: last_step,
        grad_evals: trace.grad_evals_tune + trace.grad_evals_sampling,
        status: ChainStatus::Failed,
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `work` on every job using `workers` scoped threads, each taking the next job not yet
/// started (chains differ in length, so a fixed assignment can leave one core idle while
/// another still has two chains to run). Results come back in job order.
fn run_in_threads<J: Send, T: Send>(
    jobs: Vec<J>,
    workers: usize,
    work: &(impl Fn(J) -> T + Sync),
) -> Vec<Option<T>> {
    let n_jobs = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let next = || queue.lock().ok().and_then(|mut q| q.next());
    let mut results: Vec<Option<T>> = (0..n_jobs).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(n_jobs))
            .filter_map(|w| {
                let run_jobs = || {
                    let mut done = Vec::new();
                    while let Some((i, job)) = next() {
                        done.push((i, work(job)));
                    }
                    done
                };
                // A thread the OS refuses to start runs no job; the others take its share.
                std::thread::Builder::new()
                    .name(format!("tessera-chain-worker-{w}"))
                    .spawn_scoped(scope, run_jobs)
                    .ok()
            })
            .collect();
        for handle in handles {
            // Chains catch their own panics, so a worker can only fail in pathological cases;
            // its chains are then reported as lost by `collect_trace`.
            if let Ok(done) = handle.join() {
                for (i, result) in done {
                    results[i] = Some(result);
                }
            }
        }
    });
    results
}

fn collect_trace(
    dim: usize,
    settings: &Settings,
    chains: Vec<Option<ChainTrace>>,
    cancel: &CancelToken,
) -> Result<Trace, SampleError> {
    let chains: Vec<ChainTrace> = chains
        .into_iter()
        .enumerate()
        .map(|(chain, trace)| {
            trace.unwrap_or_else(|| {
                let mut lost = ChainTrace::new(chain, dim);
                lost.error = Some(ChainError::Panicked(
                    "its worker thread could not start or died".into(),
                ));
                lost
            })
        })
        .collect();
    if chains.iter().all(|c| c.error.is_some()) {
        let errors = chains
            .into_iter()
            .filter_map(|c| c.error.map(|e| (c.chain, e)))
            .collect();
        return Err(SampleError::AllChainsFailed(errors));
    }
    let cancelled = cancel.is_cancelled() && chains.iter().any(|c| c.cancelled);
    Ok(Trace {
        dim,
        settings: settings.clone(),
        chains,
        cancelled,
    })
}
