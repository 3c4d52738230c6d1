//! Step-size and mass-matrix adaptation during tuning: Stan's windowed scheme and nutpie's
//! gradient-based scheme behind one interface used by the chain driver.

mod dual_averaging;
mod gradient;
mod stan;
mod welford;

use rand::Rng;

use crate::metric::DiagMetric;
use crate::nuts::{Point, TransitionStats};
use crate::settings::{Adaptation, Settings};

use dual_averaging::DualAverage;
use gradient::GradientTuner;
use stan::StanTuner;

/// What the chain driver must do after a tuning draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing.
    Continue,
    /// The metric changed: search a new step size from [`Tuner::search_start`] and report it
    /// with [`Tuner::step_size_found`].
    SearchStepSize,
}

/// The adaptation state of one chain.
#[derive(Debug, Clone)]
pub(crate) struct Tuner {
    scheme: Scheme,
    tune: usize,
    jitter: f64,
    initial_step_size: f64,
    /// The step size after tuning, fixed when tuning ends.
    final_step_size: Option<f64>,
}

// One tuner exists per chain, so the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Scheme {
    Stan(StanTuner),
    Gradient(GradientTuner),
}

impl Tuner {
    pub(crate) fn new(settings: &Settings, dim: usize) -> Self {
        let tune = settings.tune;
        let target = settings.target_accept;
        let (scheme, jitter, initial_step_size) = match &settings.adaptation {
            Adaptation::StanWindowed(s) => (
                Scheme::Stan(StanTuner::new(s, tune, target, dim)),
                s.step_size_jitter,
                s.initial_step_size,
            ),
            Adaptation::GradientBased(g) => (
                Scheme::Gradient(GradientTuner::new(g, tune, target, dim)),
                g.step_size_jitter,
                g.initial_step_size,
            ),
        };
        Self {
            scheme,
            tune,
            jitter,
            initial_step_size,
            final_step_size: None,
        }
    }

    /// Sets the initial metric from the initial point; returns where the first step-size
    /// search starts.
    pub(crate) fn initialize(&mut self, point: &Point, metric: &mut DiagMetric) -> f64 {
        if let Scheme::Gradient(g) = &mut self.scheme
            && self.tune > 0
        {
            g.initialize(point, metric);
        }
        self.initial_step_size
    }

    /// Where a step-size search after a metric change starts.
    pub(crate) fn search_start(&self) -> f64 {
        self.dual().step_size()
    }

    /// Restarts the dual averaging around the step size a search found.
    pub(crate) fn step_size_found(&mut self, step_size: f64) {
        self.dual_mut().restart(step_size);
    }

    /// Fixes the step size used after tuning (call after the last tuning draw, or right after
    /// the initial step-size search when there is no tuning).
    pub(crate) fn finish_tuning(&mut self) {
        self.final_step_size = Some(self.dual().final_step_size());
    }

    /// Learns from tuning draw number `draw` (0-based).
    pub(crate) fn after_draw(
        &mut self,
        draw: usize,
        stats: &TransitionStats,
        point: &Point,
        metric: &mut DiagMetric,
    ) -> Action {
        if draw >= self.tune {
            return Action::Continue;
        }
        match &mut self.scheme {
            Scheme::Stan(s) => s.after_draw(stats.accept_stat, &point.q, metric),
            Scheme::Gradient(g) => g.after_draw(draw, stats, point, metric),
        }
    }

    /// The step size of draw number `draw`: the current dual-averaging iterate while tuning,
    /// the averaged one afterwards, each with the configured jitter.
    pub(crate) fn step_size<R: Rng + ?Sized>(&mut self, draw: usize, rng: &mut R) -> f64 {
        let nominal = self.nominal_step_size(draw);
        if self.jitter > 0.0 {
            nominal * (1.0 + self.jitter * (2.0 * rng.random::<f64>() - 1.0))
        } else {
            nominal
        }
    }

    /// The step size without jitter.
    pub(crate) fn nominal_step_size(&self, draw: usize) -> f64 {
        match self.final_step_size {
            Some(eps) if draw >= self.tune => eps,
            _ => self.dual().step_size(),
        }
    }

    /// The averaged step size so far (the final one once tuning ended).
    pub(crate) fn averaged_step_size(&self) -> f64 {
        self.final_step_size
            .unwrap_or_else(|| self.dual().final_step_size())
    }

    /// The adapted step size reported after tuning.
    pub(crate) fn adapted_step_size(&self) -> f64 {
        self.final_step_size
            .unwrap_or_else(|| self.dual().final_step_size())
    }

    fn dual(&self) -> &DualAverage {
        match &self.scheme {
            Scheme::Stan(s) => &s.dual,
            Scheme::Gradient(g) => &g.dual,
        }
    }

    fn dual_mut(&mut self) -> &mut DualAverage {
        match &mut self.scheme {
            Scheme::Stan(s) => &mut s.dual,
            Scheme::Gradient(g) => &mut g.dual,
        }
    }
}
