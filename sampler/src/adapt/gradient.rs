//! nutpie's gradient-based adaptation (nuts-rs): the diagonal metric minimizing the Fisher
//! divergence, `sqrt(var(draws) / var(gradients))`, recomputed every draw from a window of
//! recent draws that is switched for a fresher one as tuning goes (short windows early,
//! growing ones later), and a final phase where only the step size adapts.

use super::Action;
use super::dual_averaging::DualAverage;
use super::welford::Welford;
use crate::metric::DiagMetric;
use crate::nuts::{Point, TransitionStats};
use crate::settings::GradientAdaptation;

/// Draws and gradients seen since some switch: the foreground feeds the metric, the background
/// becomes the foreground at the next switch.
#[derive(Debug, Clone)]
struct DrawGradEstimator {
    draws: Welford,
    grads: Welford,
}

impl DrawGradEstimator {
    fn new(dim: usize) -> Self {
        Self {
            draws: Welford::new(dim),
            grads: Welford::new(dim),
        }
    }

    fn add(&mut self, q: &[f64], grad: &[f64]) {
        self.draws.add(q);
        self.grads.add(grad);
    }

    fn count(&self) -> usize {
        self.draws.count()
    }

    /// `sqrt(var(draws) / var(grads))` per coordinate (NaN where undefined).
    fn fisher_variance(&self) -> impl Iterator<Item = f64> + '_ {
        self.draws
            .variance()
            .zip(self.grads.variance())
            .map(|(vd, vg)| (vd / vg).sqrt())
    }
}

/// The gradient-based tuner.
#[derive(Debug, Clone)]
pub(crate) struct GradientTuner {
    settings: GradientAdaptation,
    early_end: usize,
    final_window_start: usize,
    foreground: DrawGradEstimator,
    background: DrawGradEstimator,
    window_size: usize,
    metric_is_initial: bool,
    pub(crate) dual: DualAverage,
}

impl GradientTuner {
    pub(crate) fn new(
        settings: &GradientAdaptation,
        tune: usize,
        target_accept: f64,
        dim: usize,
    ) -> Self {
        let step_size_window = (settings.final_step_size_fraction * tune as f64) as usize;
        Self {
            settings: settings.clone(),
            early_end: (settings.early_fraction * tune as f64) as usize,
            final_window_start: tune.saturating_sub(step_size_window),
            foreground: DrawGradEstimator::new(dim),
            background: DrawGradEstimator::new(dim),
            window_size: settings.first_window_size,
            metric_is_initial: true,
            dual: DualAverage::new(
                &settings.dual_averaging,
                target_accept,
                settings.initial_step_size,
            ),
        }
    }

    /// Starts from the initial point: metric `1 / |gradient|` (1 where the gradient vanishes).
    pub(crate) fn initialize(&mut self, point: &Point, metric: &mut DiagMetric) {
        self.foreground.add(&point.q, &point.grad);
        self.background.add(&point.q, &point.grad);
        metric.set_inv_mass(
            point
                .grad
                .iter()
                .map(|g| if g.abs() > 0.0 { 1.0 / g.abs() } else { 1.0 }),
        );
    }

    /// Learns from tuning draw number `draw` (0-based).
    pub(crate) fn after_draw(
        &mut self,
        draw: usize,
        stats: &TransitionStats,
        point: &Point,
        metric: &mut DiagMetric,
    ) -> Action {
        if draw >= self.final_window_start {
            self.dual.learn(stats.accept_stat_sym);
            return Action::Continue;
        }
        let is_early = draw < self.early_end;
        if draw == self.early_end {
            // Never shrink the window when the main phase starts.
            self.window_size = self.window_size.max(self.background.count());
        }
        if is_useful_for_metric(stats) {
            self.foreground.add(&point.q, &point.grad);
            self.background.add(&point.q, &point.grad);
        }
        let switch_after = if is_early {
            self.settings.early_window_size
        } else {
            self.window_size
        };
        let next_window = if is_early {
            self.settings.early_window_size
        } else {
            self.grown_window()
        };
        let is_late = draw + next_window > self.final_window_start;
        if self.background.count() >= switch_after && !is_late {
            self.foreground =
                std::mem::replace(&mut self.background, DrawGradEstimator::new(point.q.len()));
            if !is_early {
                self.window_size = next_window;
            }
        }
        let metric_changed = self.update_metric(metric);
        // Late in the main phase the step size targets the symmetric statistic, as nuts-rs.
        let accept = if is_late {
            stats.accept_stat_sym
        } else {
            stats.accept_stat
        };
        self.dual.learn(accept);
        if metric_changed && self.metric_is_initial {
            self.metric_is_initial = false;
            return Action::SearchStepSize;
        }
        Action::Continue
    }

    fn grown_window(&self) -> usize {
        let grown = (self.window_size as f64 * self.settings.window_growth).round() as usize;
        grown.max(self.window_size + 1)
    }

    /// Recomputes the metric from the foreground window once it holds three draws.
    fn update_metric(&self, metric: &mut DiagMetric) -> bool {
        if self.foreground.count() < 3 {
            return false;
        }
        metric.set_inv_mass(self.foreground.fisher_variance());
        true
    }
}

/// nuts-rs's filter: a draw where the chain did not move says nothing about the scales, and
/// after a divergence only a point well inside the trajectory is trusted.
fn is_useful_for_metric(stats: &TransitionStats) -> bool {
    if stats.diverging {
        stats.index_in_trajectory.abs() > 4
    } else {
        stats.index_in_trajectory != 0
    }
}
