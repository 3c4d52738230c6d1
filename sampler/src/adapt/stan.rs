//! Stan's windowed adaptation: step size by dual averaging restarted after every metric
//! update, diagonal metric from the regularized variance of the draws in doubling windows.

use super::Action;
use super::dual_averaging::DualAverage;
use super::welford::Welford;
use crate::metric::DiagMetric;
use crate::settings::StanAdaptation;

/// Stan's slow-window schedule (`windowed_adaptation.hpp`), counted in tuning iterations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowSchedule {
    num_warmup: usize,
    init_buffer: usize,
    term_buffer: usize,
    window_size: usize,
    next_window_end: usize,
    counter: usize,
    /// Stan does no metric adaptation with fewer than 20 warmup iterations.
    enabled: bool,
}

impl WindowSchedule {
    pub(crate) fn new(
        num_warmup: usize,
        init_buffer: usize,
        term_buffer: usize,
        base_window: usize,
    ) -> Self {
        let enabled = num_warmup >= 20;
        // Too short a warmup for the requested buffers: 15% / 75% / 10% as Stan does.
        let (init_buffer, term_buffer, base_window) =
            if init_buffer + base_window + term_buffer > num_warmup {
                let init = (0.15 * num_warmup as f64) as usize;
                let term = (0.1 * num_warmup as f64) as usize;
                (init, term, num_warmup.saturating_sub(init + term))
            } else {
                (init_buffer, term_buffer, base_window)
            };
        Self {
            num_warmup,
            init_buffer,
            term_buffer,
            window_size: base_window,
            next_window_end: (init_buffer + base_window).saturating_sub(1),
            counter: 0,
            enabled,
        }
    }

    /// The last iteration of the final slow window.
    fn last_slow_iteration(&self) -> usize {
        self.num_warmup.saturating_sub(self.term_buffer + 1)
    }

    fn in_slow_window(&self) -> bool {
        self.enabled
            && self.counter >= self.init_buffer
            && self.counter < self.num_warmup.saturating_sub(self.term_buffer)
            && self.counter != self.num_warmup
    }

    fn at_window_end(&self) -> bool {
        self.enabled && self.counter == self.next_window_end && self.counter != self.num_warmup
    }

    /// Doubles the window; stretches it to the terminal buffer when the one after it would not fit.
    fn compute_next_window(&mut self) {
        if self.next_window_end == self.last_slow_iteration() {
            return;
        }
        self.window_size *= 2;
        self.next_window_end = self.counter + self.window_size;
        if self.next_window_end != self.last_slow_iteration() {
            let boundary = self.next_window_end + 2 * self.window_size;
            if boundary >= self.num_warmup.saturating_sub(self.term_buffer) {
                self.next_window_end = self.last_slow_iteration();
            }
        }
    }
}

/// The Stan tuner: schedule, variance estimator and dual averaging.
#[derive(Debug, Clone)]
pub(crate) struct StanTuner {
    schedule: WindowSchedule,
    estimator: Welford,
    pub(crate) dual: DualAverage,
}

impl StanTuner {
    pub(crate) fn new(
        settings: &StanAdaptation,
        tune: usize,
        target_accept: f64,
        dim: usize,
    ) -> Self {
        Self {
            schedule: WindowSchedule::new(
                tune,
                settings.init_buffer,
                settings.term_buffer,
                settings.base_window,
            ),
            estimator: Welford::new(dim),
            dual: DualAverage::new(
                &settings.dual_averaging,
                target_accept,
                settings.initial_step_size,
            ),
        }
    }

    /// Learns from tuning draw `q` with acceptance statistic `accept_stat`.
    pub(crate) fn after_draw(
        &mut self,
        accept_stat: f64,
        q: &[f64],
        metric: &mut DiagMetric,
    ) -> Action {
        self.dual.learn(accept_stat);
        if self.schedule.in_slow_window() {
            self.estimator.add(q);
        }
        let window_ended = self.schedule.at_window_end();
        if window_ended {
            self.schedule.compute_next_window();
            self.update_metric(metric);
        }
        self.schedule.counter += 1;
        if window_ended {
            Action::SearchStepSize
        } else {
            Action::Continue
        }
    }

    /// Stan's regularization: shrink the window's variance towards 1e-3 with weight 5/(n+5).
    fn update_metric(&mut self, metric: &mut DiagMetric) {
        let n = self.estimator.count() as f64;
        let shrink = n / (n + 5.0);
        let prior = 1e-3 * 5.0 / (n + 5.0);
        metric.set_inv_mass(self.estimator.variance().map(|var| shrink * var + prior));
        self.estimator.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_ends(num_warmup: usize) -> Vec<usize> {
        let mut schedule = WindowSchedule::new(num_warmup, 75, 50, 25);
        let mut ends = Vec::new();
        for _ in 0..num_warmup {
            if schedule.at_window_end() {
                ends.push(schedule.counter);
                schedule.compute_next_window();
            }
            schedule.counter += 1;
        }
        ends
    }

    #[test]
    fn default_schedule_matches_cmdstan() {
        assert_eq!(window_ends(1000), vec![99, 149, 249, 449, 949]);
    }

    #[test]
    fn short_warmup_is_rescaled_and_tiny_warmup_disables_the_metric() {
        // 100 iterations: 15 / 75 / 10, one window ending at 89.
        assert_eq!(window_ends(100), vec![89]);
        assert!(window_ends(19).is_empty());
    }
}
