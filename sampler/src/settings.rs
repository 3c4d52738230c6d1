//! Sampler settings: plain `Default` structs whose fields document what they control.

use crate::error::SampleError;

/// Everything that controls a sampling run.
///
/// ```
/// let settings = tessera_sampler::Settings { draws: 500, seed: 7, ..Default::default() };
/// assert_eq!(settings.tune, 1000);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Number of tuning (warmup) iterations per chain. Default 1000.
    pub tune: usize,
    /// Number of posterior draws per chain kept after tuning. Default 1000.
    pub draws: usize,
    /// Number of chains. Default 4.
    pub chains: usize,
    /// Number of worker threads; 0 uses the machine's available parallelism. The draws do not
    /// depend on this value. Default 0.
    pub cores: usize,
    /// Seed of the run. Each chain's random stream depends only on `(seed, chain index)`.
    /// Default 42.
    pub seed: u64,
    /// Target mean acceptance statistic of the step-size adaptation. Default 0.8.
    pub target_accept: f64,
    /// Maximum number of trajectory doublings per draw (at most `2^max_tree_depth - 1`
    /// leapfrog steps). Default 10.
    pub max_tree_depth: u32,
    /// A leapfrog step whose energy exceeds the initial energy by more than this is a
    /// divergence (a non-finite energy always is). Default 1000.
    pub max_energy_error: f64,
    /// How the step size and the diagonal mass matrix are adapted during tuning.
    /// Default: [`Adaptation::GradientBased`] (chosen by measurement, see `ADAPTATION.md`).
    pub adaptation: Adaptation,
    /// Caller-given initial points on the unconstrained space: empty means random
    /// initialization, one point is used by every chain, otherwise exactly one per chain.
    /// Default empty.
    pub initial_points: Vec<Vec<f64>>,
    /// Random initial points are drawn uniformly from `[-init_radius, init_radius]` in every
    /// coordinate (Stan's convention). Default 2.
    pub init_radius: f64,
    /// Number of random initial points tried per chain before giving up while the log density
    /// or its gradient is not finite. Default 100.
    pub max_init_attempts: usize,
    /// Whether the tuning draws are stored in the trace (and written to CSV). Default false.
    pub keep_warmup: bool,
    /// Initial step size. `None` searches one with Stan's heuristic (from the adaptation's
    /// `initial_step_size`); with `tune = 0` a given value is used for every draw (up to jitter).
    /// Default `None`.
    pub step_size: Option<f64>,
    /// Initial diagonal of the inverse mass matrix (length `dim`). `None` starts from the
    /// adaptation's own guess (identity for Stan's scheme, `1 / |gradient|` for nutpie's; the
    /// identity when `tune = 0`); with `tune = 0` a given value is used for every draw, e.g. to
    /// reuse an earlier run's [`AdaptationResult`](crate::AdaptationResult). Default `None`.
    pub inv_mass_diag: Option<Vec<f64>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tune: 1000,
            draws: 1000,
            chains: 4,
            cores: 0,
            seed: 42,
            target_accept: 0.8,
            max_tree_depth: 10,
            max_energy_error: 1000.0,
            adaptation: Adaptation::default(),
            initial_points: Vec::new(),
            init_radius: 2.0,
            max_init_attempts: 100,
            keep_warmup: false,
            step_size: None,
            inv_mass_diag: None,
        }
    }
}

/// The adaptation scheme used during tuning.
#[derive(Debug, Clone, PartialEq)]
pub enum Adaptation {
    /// nutpie's scheme: the diagonal mass matrix is `sqrt(var(draws) / var(gradients))`,
    /// recomputed every draw from a window of recent draws that grows during tuning.
    GradientBased(GradientAdaptation),
    /// Stan's scheme: the diagonal mass matrix is the regularized variance of the draws in
    /// windows of doubling length (75 / 25, 50, 100, ... / 50 for 1000 tuning draws).
    StanWindowed(StanAdaptation),
}

impl Default for Adaptation {
    fn default() -> Self {
        Adaptation::GradientBased(GradientAdaptation::default())
    }
}

impl Adaptation {
    /// A short name for reports ("gradient_based" or "stan_windowed").
    pub fn name(&self) -> &'static str {
        match self {
            Adaptation::GradientBased(_) => "gradient_based",
            Adaptation::StanWindowed(_) => "stan_windowed",
        }
    }

    /// The dual-averaging constants of the step-size adaptation.
    pub fn dual_averaging(&self) -> &DualAveraging {
        match self {
            Adaptation::GradientBased(g) => &g.dual_averaging,
            Adaptation::StanWindowed(s) => &s.dual_averaging,
        }
    }
}

/// Constants of Nesterov dual averaging of the log step size (Hoffman & Gelman 2014, as Stan).
#[derive(Debug, Clone, PartialEq)]
pub struct DualAveraging {
    /// Regularization scale. Default 0.05.
    pub gamma: f64,
    /// Iteration offset that damps the first updates. Default 10.
    pub t0: f64,
    /// Decay exponent of the iterate averaging. Default 0.75.
    pub kappa: f64,
}

impl Default for DualAveraging {
    fn default() -> Self {
        Self {
            gamma: 0.05,
            t0: 10.0,
            kappa: 0.75,
        }
    }
}

/// Settings of Stan's windowed adaptation (CmdStan defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct StanAdaptation {
    /// Initial fast interval (step size only). Default 75.
    pub init_buffer: usize,
    /// Final fast interval (step size only). Default 50.
    pub term_buffer: usize,
    /// Length of the first slow (mass matrix) window; later windows double. Default 25.
    pub base_window: usize,
    /// Step size the first step-size search starts from. Default 1.
    pub initial_step_size: f64,
    /// Uniform relative jitter of the step size (`eps * U(1 - j, 1 + j)`). Default 0.
    pub step_size_jitter: f64,
    /// Dual-averaging constants.
    pub dual_averaging: DualAveraging,
}

impl Default for StanAdaptation {
    fn default() -> Self {
        Self {
            init_buffer: 75,
            term_buffer: 50,
            base_window: 25,
            initial_step_size: 1.0,
            step_size_jitter: 0.0,
            dual_averaging: DualAveraging::default(),
        }
    }
}

/// Settings of nutpie's gradient-based adaptation (nuts-rs defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct GradientAdaptation {
    /// Fraction of tuning in the early phase, where the estimate switches to a fresh window
    /// every `early_window_size` draws. Default 0.3.
    pub early_fraction: f64,
    /// Fraction of tuning at the end where the mass matrix is frozen and only the step size
    /// adapts (with the symmetric acceptance statistic). Default 0.15.
    pub final_step_size_fraction: f64,
    /// Window length of the early phase. Default 10.
    pub early_window_size: usize,
    /// Length of the first window after the early phase. Default 80.
    pub first_window_size: usize,
    /// Growth factor of the window length after each switch. Default 1.5.
    pub window_growth: f64,
    /// Step size the first step-size search starts from. Default 0.1.
    pub initial_step_size: f64,
    /// Uniform relative jitter of the step size (`eps * U(1 - j, 1 + j)`), also after tuning.
    /// Default 0.1 (as nutpie).
    pub step_size_jitter: f64,
    /// Dual-averaging constants.
    pub dual_averaging: DualAveraging,
}

impl Default for GradientAdaptation {
    fn default() -> Self {
        Self {
            early_fraction: 0.3,
            final_step_size_fraction: 0.15,
            early_window_size: 10,
            first_window_size: 80,
            window_growth: 1.5,
            initial_step_size: 0.1,
            step_size_jitter: 0.1,
            dual_averaging: DualAveraging::default(),
        }
    }
}

impl Settings {
    /// Checks the settings against a density of dimension `dim`.
    pub fn validate(&self, dim: usize) -> Result<(), SampleError> {
        let invalid = |msg: String| Err(SampleError::InvalidSettings(msg));
        if dim == 0 {
            return invalid("the log density has dimension 0".into());
        }
        if self.chains == 0 {
            return invalid("chains must be at least 1".into());
        }
        if self.tune.checked_add(self.draws).is_none() {
            return invalid("tune + draws overflows".into());
        }
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return invalid(format!(
                "target_accept must be in (0, 1), got {}",
                self.target_accept
            ));
        }
        if self.max_tree_depth == 0 || self.max_tree_depth > 30 {
            return invalid(format!(
                "max_tree_depth must be in 1..=30, got {}",
                self.max_tree_depth
            ));
        }
        if self.max_energy_error.is_nan() || self.max_energy_error <= 0.0 {
            return invalid(format!(
                "max_energy_error must be positive, got {}",
                self.max_energy_error
            ));
        }
        if !(self.init_radius.is_finite() && self.init_radius >= 0.0) {
            return invalid(format!(
                "init_radius must be finite and >= 0, got {}",
                self.init_radius
            ));
        }
        if self.initial_points.is_empty() && self.max_init_attempts == 0 {
            return invalid("max_init_attempts must be at least 1".into());
        }
        self.validate_initial_points(dim)?;
        self.validate_initial_adaptation(dim)?;
        self.validate_adaptation()
    }

    fn validate_initial_points(&self, dim: usize) -> Result<(), SampleError> {
        let n = self.initial_points.len();
        if n > 1 && n != self.chains {
            return Err(SampleError::InvalidSettings(format!(
                "initial_points must hold 0, 1 or `chains` ({}) points, got {n}",
                self.chains
            )));
        }
        for (i, point) in self.initial_points.iter().enumerate() {
            if point.len() != dim {
                return Err(SampleError::InvalidSettings(format!(
                    "initial point {i} has length {}, the density has dimension {dim}",
                    point.len()
                )));
            }
            if let Some(j) = point.iter().position(|v| !v.is_finite()) {
                return Err(SampleError::InvalidSettings(format!(
                    "initial point {i} has a non-finite value at index {j}"
                )));
            }
        }
        Ok(())
    }

    fn validate_initial_adaptation(&self, dim: usize) -> Result<(), SampleError> {
        if let Some(eps) = self.step_size
            && !(eps.is_finite() && eps > 0.0)
        {
            return Err(SampleError::InvalidSettings(format!(
                "step_size must be positive, got {eps}"
            )));
        }
        if let Some(diag) = &self.inv_mass_diag {
            if diag.len() != dim {
                return Err(SampleError::InvalidSettings(format!(
                    "inv_mass_diag has length {}, the density has dimension {dim}",
                    diag.len()
                )));
            }
            if let Some(i) = diag.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(SampleError::InvalidSettings(format!(
                    "inv_mass_diag[{i}] must be finite and positive, got {}",
                    diag[i]
                )));
            }
        }
        Ok(())
    }

    fn validate_adaptation(&self) -> Result<(), SampleError> {
        let invalid = |msg: String| Err(SampleError::InvalidSettings(msg));
        let da = self.adaptation.dual_averaging();
        if !(da.gamma > 0.0 && da.t0 >= 0.0 && da.kappa > 0.0 && da.kappa <= 1.0) {
            return invalid(format!(
                "dual averaging needs gamma > 0, t0 >= 0, 0 < kappa <= 1; got {da:?}"
            ));
        }
        let (initial, jitter) = match &self.adaptation {
            Adaptation::GradientBased(g) => {
                let fractions_ok = (0.0..1.0).contains(&g.early_fraction)
                    && (0.0..1.0).contains(&g.final_step_size_fraction)
                    && g.early_fraction + g.final_step_size_fraction < 1.0;
                if !fractions_ok {
                    return invalid(format!(
                        "early_fraction and final_step_size_fraction must be in [0, 1) with a sum below 1; got {} and {}",
                        g.early_fraction, g.final_step_size_fraction
                    ));
                }
                if g.early_window_size == 0
                    || g.first_window_size == 0
                    || g.window_growth.is_nan()
                    || g.window_growth < 1.0
                {
                    return invalid("window sizes must be positive and window_growth >= 1".into());
                }
                (g.initial_step_size, g.step_size_jitter)
            }
            Adaptation::StanWindowed(s) => {
                if s.base_window == 0 {
                    return invalid("base_window must be at least 1".into());
                }
                (s.initial_step_size, s.step_size_jitter)
            }
        };
        if !(initial.is_finite() && initial > 0.0) {
            return invalid(format!("initial_step_size must be positive, got {initial}"));
        }
        if !(0.0..1.0).contains(&jitter) {
            return invalid(format!("step_size_jitter must be in [0, 1), got {jitter}"));
        }
        Ok(())
    }
}
