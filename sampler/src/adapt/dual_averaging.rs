//! Nesterov dual averaging of the log step size (Hoffman & Gelman 2014), with Stan's update.

use crate::settings::DualAveraging;

/// The dual-averaging state; `mu = log(10 eps0)` as in Stan and nuts-rs.
#[derive(Debug, Clone)]
pub(crate) struct DualAverage {
    constants: DualAveraging,
    target: f64,
    mu: f64,
    counter: f64,
    s_bar: f64,
    log_step: f64,
    log_step_bar: f64,
}

impl DualAverage {
    /// A fresh state centred on `10 * step_size`.
    pub(crate) fn new(constants: &DualAveraging, target: f64, step_size: f64) -> Self {
        let mut state = Self {
            constants: constants.clone(),
            target,
            mu: 0.0,
            counter: 0.0,
            s_bar: 0.0,
            log_step: 0.0,
            log_step_bar: 0.0,
        };
        state.restart(step_size);
        state
    }

    /// Forgets the history and re-centres on `10 * step_size` (Stan does this after every
    /// mass-matrix update).
    pub(crate) fn restart(&mut self, step_size: f64) {
        self.mu = (10.0 * step_size).ln();
        self.counter = 0.0;
        self.s_bar = 0.0;
        self.log_step = step_size.ln();
        self.log_step_bar = 0.0;
    }

    /// One update with the acceptance statistic of the last draw.
    pub(crate) fn learn(&mut self, accept_stat: f64) {
        // A NaN statistic would poison the average; it means "nothing was accepted".
        let accept = if accept_stat.is_finite() {
            accept_stat.min(1.0)
        } else {
            0.0
        };
        self.counter += 1.0;
        let eta = 1.0 / (self.counter + self.constants.t0);
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept);
        self.log_step = self.mu - self.s_bar * self.counter.sqrt() / self.constants.gamma;
        let weight = self.counter.powf(-self.constants.kappa);
        self.log_step_bar = (1.0 - weight) * self.log_step_bar + weight * self.log_step;
    }

    /// The current iterate `exp(x)` (used while tuning).
    pub(crate) fn step_size(&self) -> f64 {
        self.log_step.exp()
    }

    /// The averaged iterate `exp(x_bar)` (used after tuning); the current iterate if no update
    /// happened since the last restart.
    pub(crate) fn final_step_size(&self) -> f64 {
        if self.counter > 0.0 {
            self.log_step_bar.exp()
        } else {
            self.step_size()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_update_matches_stan_formula() {
        let mut da = DualAverage::new(&DualAveraging::default(), 0.8, 1.0);
        da.learn(0.5);
        // s_bar = (0.8 - 0.5) / 11; x = log(10) - s_bar * 1 / 0.05.
        let expected = 10f64.ln() - (0.3 / 11.0) / 0.05;
        assert!((da.step_size().ln() - expected).abs() < 1e-12);
        assert!((da.final_step_size().ln() - expected).abs() < 1e-12);
    }

    #[test]
    fn converges_to_the_step_size_that_hits_the_target() {
        // A synthetic acceptance curve exp(-eps): the target 0.8 is hit at eps = -ln 0.8.
        let mut da = DualAverage::new(&DualAveraging::default(), 0.8, 1.0);
        for _ in 0..2000 {
            let accept = (-da.step_size()).exp();
            da.learn(accept);
        }
        let wanted = -(0.8f64.ln());
        assert!((da.final_step_size() - wanted).abs() / wanted < 0.02);
    }
}
