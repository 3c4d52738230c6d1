//! One chain from start to end: its random stream, initialization, tuning and drawing.

use std::time::Instant;

use rand::Rng;

use crate::adapt::{Action, Tuner};
use crate::density::LogDensity;
use crate::error::ChainError;
use crate::nuts::{Nuts, PointProblem, TransitionStats};
use crate::rng::ChainRng;
use crate::run::{CancelToken, ChainStatus, Progress, ProgressUpdate};
use crate::settings::Settings;
use crate::trace::{ChainTrace, DrawStats};

/// Runs chain `trace.chain` to completion (or error / cancellation), filling `trace`.
/// Writing into a caller-owned trace keeps the draws so far if the density panics.
pub(crate) fn run_chain<D: LogDensity>(
    trace: &mut ChainTrace,
    density: D,
    settings: &Settings,
    progress: &(impl Progress + ?Sized),
    cancel: &CancelToken,
) {
    let mut runner = ChainRunner::new(trace.chain, density, settings);
    let outcome = runner.run(trace, progress, cancel);
    let status = match outcome {
        Ok(()) if trace.cancelled => ChainStatus::Cancelled,
        Ok(()) => ChainStatus::Finished,
        Err(error) => {
            trace.error = Some(error);
            ChainStatus::Failed
        }
    };
    runner.report(trace, progress, status);
}

/// The mutable state of a running chain.
struct ChainRunner<'s, D: LogDensity> {
    settings: &'s Settings,
    nuts: Nuts<D>,
    tuner: Tuner,
    rng: ChainRng,
    draws_done: usize,
    /// Divergent posterior draws so far (kept for cheap progress reports).
    divergences: usize,
    step_size: f64,
}

impl<'s, D: LogDensity> ChainRunner<'s, D> {
    fn new(chain: usize, density: D, settings: &'s Settings) -> Self {
        let dim = density.dim();
        Self {
            settings,
            nuts: Nuts::new(density, settings.max_tree_depth, settings.max_energy_error),
            tuner: Tuner::new(settings, dim),
            rng: ChainRng::new(settings.seed, chain),
            draws_done: 0,
            divergences: 0,
            step_size: f64::NAN,
        }
    }

    fn run(
        &mut self,
        trace: &mut ChainTrace,
        progress: &(impl Progress + ?Sized),
        cancel: &CancelToken,
    ) -> Result<(), ChainError> {
        let start = Instant::now();
        let result = self.tune_and_draw(trace, progress, cancel, start);
        let elapsed = start.elapsed().as_secs_f64();
        if self.draws_done <= self.settings.tune {
            trace.timing.tune_seconds = elapsed;
            trace.grad_evals_tune = self.nuts.grad_evals;
        } else {
            trace.timing.sampling_seconds = elapsed - trace.timing.tune_seconds;
            trace.grad_evals_sampling = self.nuts.grad_evals - trace.grad_evals_tune;
        }
        trace.adaptation.step_size = self.tuner.adapted_step_size();
        trace.adaptation.inv_mass_diag = self.nuts.metric.inv_mass().to_vec();
        result
    }

    fn tune_and_draw(
        &mut self,
        trace: &mut ChainTrace,
        progress: &(impl Progress + ?Sized),
        cancel: &CancelToken,
        start: Instant,
    ) -> Result<(), ChainError> {
        trace.init_point = self.initialize(trace.chain)?;
        self.start_adaptation()?;
        self.reserve_storage(trace);
        let tune = self.settings.tune;
        for draw in 0..tune + self.settings.draws {
            if cancel.is_cancelled() {
                trace.cancelled = true;
                return Ok(());
            }
            if draw == tune {
                trace.timing.tune_seconds = start.elapsed().as_secs_f64();
                trace.grad_evals_tune = self.nuts.grad_evals;
            }
            let stats = self.one_draw(draw)?;
            if draw < tune {
                self.adapt(draw, &stats)?;
                trace.warmup_divergences += usize::from(stats.diverging);
            } else {
                self.divergences += usize::from(stats.diverging);
            }
            self.record(trace, draw, &stats);
            self.draws_done = draw + 1;
            self.report(trace, progress, ChainStatus::Running);
        }
        Ok(())
    }

    /// Reserves the trace's memory up front (growing it draw by draw copies it repeatedly);
    /// if the reservation fails the vectors simply grow as needed.
    fn reserve_storage(&self, trace: &mut ChainTrace) {
        let dim = self.nuts.density.dim();
        let draws = self.settings.draws;
        let _ = trace.stats.try_reserve_exact(draws);
        if let Some(values) = draws.checked_mul(dim) {
            let _ = trace.draws.try_reserve_exact(values);
        }
        if self.settings.keep_warmup {
            let tune = self.settings.tune;
            let _ = trace.warmup_stats.try_reserve_exact(tune);
            if let Some(values) = tune.checked_mul(dim) {
                let _ = trace.warmup_draws.try_reserve_exact(values);
            }
        }
    }

    /// A caller-given point, or uniform(-r, r) points until one has a finite log density and
    /// gradient.
    fn initialize(&mut self, chain: usize) -> Result<Vec<f64>, ChainError> {
        let given = &self.settings.initial_points;
        if let Some(point) = given.get(chain).or_else(|| {
            if given.len() == 1 {
                given.first()
            } else {
                None
            }
        }) {
            return match self.nuts.set_position(point) {
                Ok(Ok(())) => Ok(point.clone()),
                Ok(Err(PointProblem::NotFinite(why))) => Err(ChainError::InvalidInitialPoint(why)),
                Err(e) => Err(ChainError::LogDensity(Box::new(e))),
            };
        }
        let radius = self.settings.init_radius;
        let mut point = vec![0.0; self.nuts.density.dim()];
        let mut last_problem = String::from("none tried");
        for _ in 0..self.settings.max_init_attempts {
            for x in point.iter_mut() {
                *x = radius * (2.0 * self.rng.random::<f64>() - 1.0);
            }
            match self.nuts.set_position(&point) {
                Ok(Ok(())) => return Ok(point),
                Ok(Err(PointProblem::NotFinite(why))) => last_problem = why,
                Err(e) => return Err(ChainError::LogDensity(Box::new(e))),
            }
        }
        Err(ChainError::Initialization {
            attempts: self.settings.max_init_attempts,
            last_problem,
        })
    }

    /// Initial metric and step size (given, or found by the step-size search).
    fn start_adaptation(&mut self) -> Result<(), ChainError> {
        let (point, metric) = self.nuts.point_and_metric();
        let start = self.tuner.initialize(point, metric);
        if let Some(diag) = &self.settings.inv_mass_diag {
            metric.set_inv_mass(diag.iter().copied());
        }
        match self.settings.step_size {
            Some(step_size) => self.tuner.step_size_found(step_size),
            None => self.search_step_size(start)?,
        }
        if self.settings.tune == 0 {
            self.tuner.finish_tuning();
        }
        Ok(())
    }

    fn search_step_size(&mut self, start: f64) -> Result<(), ChainError> {
        let found = self
            .nuts
            .find_step_size(start, &mut self.rng)
            .map_err(|e| ChainError::LogDensity(Box::new(e)))?;
        self.tuner.step_size_found(found);
        Ok(())
    }

    fn one_draw(&mut self, draw: usize) -> Result<TransitionStats, ChainError> {
        self.step_size = self.tuner.step_size(draw, &mut self.rng);
        self.nuts
            .transition(self.step_size, &mut self.rng)
            .map_err(|e| ChainError::LogDensity(Box::new(e)))
    }

    /// Feeds tuning draw `draw` to the adaptation; searches a new step size when the metric
    /// asks for it, and fixes the final step size after the last tuning draw.
    fn adapt(&mut self, draw: usize, stats: &TransitionStats) -> Result<(), ChainError> {
        let (point, metric) = self.nuts.point_and_metric();
        if self.tuner.after_draw(draw, stats, point, metric) == Action::SearchStepSize {
            self.search_step_size(self.tuner.search_start())?;
        }
        if draw + 1 == self.settings.tune {
            self.tuner.finish_tuning();
        }
        Ok(())
    }

    fn record(&self, trace: &mut ChainTrace, draw: usize, stats: &TransitionStats) {
        let draw_stats = DrawStats {
            lp: stats.logp,
            accept_stat: stats.accept_stat,
            step_size: self.step_size,
            step_size_bar: self.tuner.averaged_step_size(),
            tree_depth: stats.depth,
            n_leapfrog: stats.n_leapfrog,
            diverging: stats.diverging,
            energy: stats.energy,
            energy_error: stats.energy_error,
            max_tree_depth_reached: stats.max_depth_reached,
            logp_error: stats.logp_error,
        };
        let q = &self.nuts.current().q;
        if draw >= self.settings.tune {
            trace.draws.extend_from_slice(q);
            trace.stats.push(draw_stats);
        } else if self.settings.keep_warmup {
            trace.warmup_draws.extend_from_slice(q);
            trace.warmup_stats.push(draw_stats);
        }
    }

    fn report(&self, trace: &ChainTrace, progress: &(impl Progress + ?Sized), status: ChainStatus) {
        let tuning = self.draws_done < self.settings.tune;
        progress.update(&ProgressUpdate {
            chain: trace.chain,
            draws_done: self.draws_done,
            total_draws: self.settings.tune + self.settings.draws,
            tuning,
            divergences: self.divergences,
            warmup_divergences: trace.warmup_divergences,
            step_size: self.step_size,
            grad_evals: self.nuts.grad_evals,
            status,
        });
    }
}
