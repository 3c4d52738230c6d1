//! What a run produces: unconstrained draws, per-draw statistics, adaptation results, timing.

use crate::diagnostics::{self, DiagnosticsError, SummaryRow};
use crate::error::ChainError;
use crate::settings::Settings;

/// Statistics of one draw (one NUTS transition), named as in Stan / ArviZ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawStats {
    /// Log density at the draw (Stan's `lp__`).
    pub lp: f64,
    /// Mean Metropolis acceptance probability over the trajectory's leapfrog steps.
    pub accept_stat: f64,
    /// Step size used for this draw.
    pub step_size: f64,
    /// The averaged (dual-averaging) step size after this draw: the step size sampling would
    /// use if tuning ended here; after tuning, the final step size.
    pub step_size_bar: f64,
    /// Number of successful trajectory doublings.
    pub tree_depth: u32,
    /// Number of leapfrog steps (= gradient evaluations) of the trajectory.
    pub n_leapfrog: u64,
    /// Whether the trajectory diverged (energy error above the threshold, a non-finite energy,
    /// or a recoverable log-density error).
    pub diverging: bool,
    /// Hamiltonian at the draw.
    pub energy: f64,
    /// Hamiltonian at the draw minus the Hamiltonian at the start of the trajectory.
    pub energy_error: f64,
    /// Whether the trajectory stopped at the maximum tree depth.
    pub max_tree_depth_reached: bool,
    /// Whether the divergence (if any) came from a recoverable log-density error.
    pub logp_error: bool,
}

/// The adaptation result of one chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdaptationResult {
    /// Step size used after tuning (before jitter).
    pub step_size: f64,
    /// Diagonal of the inverse mass matrix after tuning.
    pub inv_mass_diag: Vec<f64>,
}

/// Wall-clock time of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timing {
    /// Seconds spent on initialization and tuning.
    pub tune_seconds: f64,
    /// Seconds spent drawing after tuning.
    pub sampling_seconds: f64,
}

/// Everything one chain produced.
#[derive(Debug)]
pub struct ChainTrace {
    /// Chain index (0-based).
    pub chain: usize,
    /// Number of unconstrained parameters.
    pub dim: usize,
    /// The initial point (empty if initialization failed).
    pub init_point: Vec<f64>,
    /// Tuning draws, flat and draw-major (`dim` values per draw); empty unless
    /// [`Settings::keep_warmup`].
    pub warmup_draws: Vec<f64>,
    /// Statistics of the kept tuning draws.
    pub warmup_stats: Vec<DrawStats>,
    /// Posterior draws, flat and draw-major (`dim` values per draw).
    pub draws: Vec<f64>,
    /// Statistics of the posterior draws.
    pub stats: Vec<DrawStats>,
    /// Step size and inverse mass matrix after tuning.
    pub adaptation: AdaptationResult,
    /// Wall-clock time.
    pub timing: Timing,
    /// Log-density evaluations during initialization and tuning.
    pub grad_evals_tune: u64,
    /// Log-density evaluations after tuning.
    pub grad_evals_sampling: u64,
    /// Number of divergent tuning draws (kept or not).
    pub warmup_divergences: usize,
    /// Why the chain stopped early, if it did (the draws so far are kept).
    pub error: Option<ChainError>,
    /// Whether the run was cancelled before this chain finished.
    pub cancelled: bool,
}

impl ChainTrace {
    /// An empty trace for chain `chain` of a `dim`-dimensional density.
    pub(crate) fn new(chain: usize, dim: usize) -> Self {
        Self {
            chain,
            dim,
            init_point: Vec::new(),
            warmup_draws: Vec::new(),
            warmup_stats: Vec::new(),
            draws: Vec::new(),
            stats: Vec::new(),
            adaptation: AdaptationResult::default(),
            timing: Timing::default(),
            grad_evals_tune: 0,
            grad_evals_sampling: 0,
            warmup_divergences: 0,
            error: None,
            cancelled: false,
        }
    }

    /// Number of posterior draws.
    pub fn num_draws(&self) -> usize {
        self.stats.len()
    }

    /// Posterior draw `i` (`dim` values), if it exists.
    pub fn draw(&self, i: usize) -> Option<&[f64]> {
        self.draws.get(i * self.dim..(i + 1) * self.dim)
    }

    /// The posterior draws as rows of `dim` values.
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.draws.chunks_exact(self.dim.max(1))
    }

    /// The kept tuning draws as rows of `dim` values.
    pub fn warmup_rows(&self) -> impl Iterator<Item = &[f64]> {
        self.warmup_draws.chunks_exact(self.dim.max(1))
    }

    /// Number of divergent posterior draws.
    pub fn divergences(&self) -> usize {
        self.stats.iter().filter(|s| s.diverging).count()
    }
}

/// The result of a run: one [`ChainTrace`] per chain, ordered by chain index.
#[derive(Debug)]
pub struct Trace {
    /// Number of unconstrained parameters.
    pub dim: usize,
    /// The settings of the run.
    pub settings: Settings,
    /// Per-chain results.
    pub chains: Vec<ChainTrace>,
    /// Whether the run was cancelled (chains then hold what they had drawn).
    pub cancelled: bool,
}

impl Trace {
    /// Default parameter names `x[0]`, `x[1]`, ... for the unconstrained coordinates.
    pub fn default_names(&self) -> Vec<String> {
        (0..self.dim).map(|i| format!("x[{i}]")).collect()
    }

    /// The posterior draws as `[parameter][chain][draw]`, the shape the diagnostics take.
    /// Chains are truncated to the shortest one with draws (a failed or cancelled chain may
    /// have fewer); chains without draws are left out.
    pub fn parameter_values(&self) -> Vec<Vec<Vec<f64>>> {
        self.values_of(|row, out| out.extend_from_slice(row), self.dim)
    }

    /// Derived quantities per draw as `[quantity][chain][draw]`: `f` receives one posterior
    /// draw and appends `n_quantities` values (e.g. constrained parameters) to its buffer.
    pub fn values_of(
        &self,
        mut f: impl FnMut(&[f64], &mut Vec<f64>),
        n_quantities: usize,
    ) -> Vec<Vec<Vec<f64>>> {
        let usable: Vec<&ChainTrace> = self.chains.iter().filter(|c| c.num_draws() > 0).collect();
        let n_draws = usable.iter().map(|c| c.num_draws()).min().unwrap_or(0);
        let mut out = vec![vec![Vec::with_capacity(n_draws); usable.len()]; n_quantities];
        let mut buffer = Vec::with_capacity(n_quantities);
        for (c, chain) in usable.iter().enumerate() {
            for row in chain.rows().take(n_draws) {
                buffer.clear();
                f(row, &mut buffer);
                for (q, &value) in buffer.iter().enumerate().take(n_quantities) {
                    out[q][c].push(value);
                }
            }
        }
        out
    }

    /// ArviZ-style summary of the unconstrained parameters under `names` (one per coordinate).
    pub fn summary(&self, names: &[String]) -> Result<Vec<SummaryRow>, DiagnosticsError> {
        diagnostics::summarize(names, &self.parameter_values())
    }

    /// Number of divergent posterior draws over all chains.
    pub fn divergences(&self) -> usize {
        self.chains.iter().map(ChainTrace::divergences).sum()
    }

    /// Log-density evaluations after tuning, over all chains.
    pub fn grad_evals_sampling(&self) -> u64 {
        self.chains.iter().map(|c| c.grad_evals_sampling).sum()
    }

    /// The chains that stopped with an error, as `(chain, error)`.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &ChainError)> {
        self.chains
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| (c.chain, e)))
    }
}
