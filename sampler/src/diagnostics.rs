//! Convergence diagnostics computed exactly as ArviZ 0.23 does (Vehtari et al. 2021):
//! rank-normalized split R-hat, bulk and tail ESS, MCSE of the mean and of the sd, the 94% HDI,
//! and the summary table with ArviZ's columns.
//!
//! Every function takes the draws of one quantity as chains (`&[C]` with `C: AsRef<[f64]>`,
//! e.g. `Vec<Vec<f64>>` indexed `[chain][draw]`), so callers can summarize any column:
//! unconstrained parameters, constrained ones, or derived quantities.

use std::fmt::Write as _;

use thiserror::Error;

use crate::special::normal_quantile;

/// Probability mass of the summary's highest-density interval (ArviZ's `stats.ci_prob`).
pub const HDI_PROB: f64 = 0.94;

/// ArviZ's threshold under which an array counts as constant (`np.finfo(float).resolution`).
const CONSTANT_RESOLUTION: f64 = 1e-15;

/// Why draws could not be summarized.
#[derive(Debug, Error, PartialEq)]
pub enum DiagnosticsError {
    /// `names` and `values` have different lengths.
    #[error("{names} names for {quantities} quantities")]
    NameCountMismatch {
        /// Number of names.
        names: usize,
        /// Number of quantities.
        quantities: usize,
    },
    /// The chains of a quantity have different numbers of draws.
    #[error("the chains of `{name}` have different lengths ({lengths:?})")]
    RaggedChains {
        /// The quantity.
        name: String,
        /// Draws per chain.
        lengths: Vec<usize>,
    },
    /// A quantity has no chains or no draws.
    #[error("`{0}` has no draws")]
    Empty(String),
}

/// One row of the summary table, with ArviZ's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Name of the quantity.
    pub name: String,
    /// Mean over all draws.
    pub mean: f64,
    /// Standard deviation over all draws (denominator `n - 1`).
    pub sd: f64,
    /// Lower end of the 94% HDI (ArviZ's `hdi_3%`).
    pub hdi_lower: f64,
    /// Upper end of the 94% HDI (ArviZ's `hdi_97%`).
    pub hdi_upper: f64,
    /// Monte Carlo standard error of the mean.
    pub mcse_mean: f64,
    /// Monte Carlo standard error of the sd.
    pub mcse_sd: f64,
    /// Bulk effective sample size.
    pub ess_bulk: f64,
    /// Tail effective sample size (5% and 95% quantiles).
    pub ess_tail: f64,
    /// Rank-normalized split R-hat (NaN with fewer than 2 chains).
    pub r_hat: f64,
}

/// Summaries of several quantities: `values[q][chain][draw]` is draw `draw` of chain `chain`
/// of quantity `names[q]`.
pub fn summarize(
    names: &[String],
    values: &[Vec<Vec<f64>>],
) -> Result<Vec<SummaryRow>, DiagnosticsError> {
    if names.len() != values.len() {
        return Err(DiagnosticsError::NameCountMismatch {
            names: names.len(),
            quantities: values.len(),
        });
    }
    // The quantities of one run usually have the same number of draws, so their rank
    // normalizations share one table of normal scores (rebuilt only if the count changes).
    let mut scores = NormalScores::default();
    names
        .iter()
        .zip(values)
        .map(|(name, chains)| summary_row_with(name, chains, &mut scores))
        .collect()
}

/// The summary of one quantity given as chains of equal length.
pub fn summary_row<C: AsRef<[f64]>>(
    name: &str,
    chains: &[C],
) -> Result<SummaryRow, DiagnosticsError> {
    summary_row_with(name, chains, &mut NormalScores::default())
}

fn summary_row_with<C: AsRef<[f64]>>(
    name: &str,
    chains: &[C],
    scores: &mut NormalScores,
) -> Result<SummaryRow, DiagnosticsError> {
    let draws = Draws::new(name, chains)?;
    let ranked = Ranked::new(&draws);
    let (hdi_lower, hdi_upper) = hdi_of_sorted(&ranked.sorted, HDI_PROB);
    let valid = draws.is_valid(1);
    let nan_unless = |ok: bool, f: &dyn Fn() -> f64| if ok { f() } else { f64::NAN };
    // ess_bulk and the bulk half of R-hat use the same rank-normalized split draws.
    let bulk = valid.then(|| ranked.bulk_scores(scores));
    let r_hat = match &bulk {
        Some(bulk) if draws.is_valid(2) => ranked.rhat(bulk, scores),
        _ => f64::NAN,
    };
    Ok(SummaryRow {
        name: name.to_string(),
        mean: draws.mean(),
        sd: draws.sd(),
        hdi_lower,
        hdi_upper,
        mcse_mean: nan_unless(valid, &|| draws.mcse_mean(&ranked.split)),
        mcse_sd: nan_unless(valid, &|| draws.mcse_sd(&ranked.split)),
        ess_bulk: bulk.as_ref().map_or(f64::NAN, Draws::ess),
        ess_tail: nan_unless(valid, &|| ranked.ess_tail()),
        r_hat,
    })
}

/// Bulk effective sample size (ESS of the rank-normalized split chains).
pub fn ess_bulk<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, |d| {
        Ranked::new(d)
            .bulk_scores(&mut NormalScores::default())
            .ess()
    })
}

/// Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators.
pub fn ess_tail<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, |d| {
        ess_tail_of(&d.split(), &sorted_copy(&d.values))
    })
}

/// Effective sample size of the mean (split chains, not rank-normalized).
pub fn ess_mean<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, |d| d.split().ess())
}

/// Rank-normalized split R-hat: the larger of the bulk and the folded (tail) R-hat.
pub fn rhat<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 2, |d| {
        let ranked = Ranked::new(d);
        let mut scores = NormalScores::default();
        let bulk = ranked.bulk_scores(&mut scores);
        ranked.rhat(&bulk, &mut scores)
    })
}

/// Monte Carlo standard error of the mean.
pub fn mcse_mean<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, |d| d.mcse_mean(&d.split()))
}

/// Monte Carlo standard error of the standard deviation.
pub fn mcse_sd<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, |d| d.mcse_sd(&d.split()))
}

/// The highest-density interval of probability `prob` over all draws (ArviZ's unimodal `hdi`).
pub fn hdi<C: AsRef<[f64]>>(chains: &[C], prob: f64) -> (f64, f64) {
    match Draws::new("", chains) {
        Ok(d) => hdi_of_sorted(&sorted_copy(&d.values), prob),
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// Energy Bayesian fraction of missing information of one chain: `mean(diff(E)^2) / var(E)`.
pub fn bfmi(energy: &[f64]) -> f64 {
    if energy.len() < 2 {
        return f64::NAN;
    }
    let n = energy.len() as f64;
    let num = energy
        .windows(2)
        .map(|w| (w[1] - w[0]).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    num / variance(energy, 1.0)
}

/// The summary as a text table with ArviZ's columns and rounding (3 decimals, ESS as
/// integers, R-hat with 2 decimals).
pub fn format_summary(rows: &[SummaryRow]) -> String {
    let headers = [
        "mean",
        "sd",
        "hdi_3%",
        "hdi_97%",
        "mcse_mean",
        "mcse_sd",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let f3 = |x: f64| format!("{x:.3}");
            vec![
                f3(r.mean),
                f3(r.sd),
                f3(r.hdi_lower),
                f3(r.hdi_upper),
                f3(r.mcse_mean),
                f3(r.mcse_sd),
                format!("{:.0}", r.ess_bulk),
                format!("{:.0}", r.ess_tail),
                format!("{:.2}", r.r_hat),
            ]
        })
        .collect();
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(j, h)| {
            cells
                .iter()
                .map(|c| c[j].len())
                .max()
                .unwrap_or(0)
                .max(h.len())
        })
        .collect();
    let mut out = format!("{:name_width$}", "");
    for (h, w) in headers.iter().zip(&widths) {
        let _ = write!(out, "  {h:>w$}");
    }
    out.push('\n');
    for (row, cells) in rows.iter().zip(&cells) {
        let _ = write!(out, "{:name_width$}", row.name);
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {c:>w$}");
        }
        out.push('\n');
    }
    out
}

fn with_valid<C: AsRef<[f64]>>(chains: &[C], min_chains: usize, f: impl Fn(&Draws) -> f64) -> f64 {
    match Draws::new("", chains) {
        Ok(d) if d.is_valid(min_chains) => f(&d),
        _ => f64::NAN,
    }
}

/// Draws of one quantity, chain-major (`chains` rows of `draws` values).
#[derive(Debug, Clone)]
struct Draws {
    chains: usize,
    draws: usize,
    values: Vec<f64>,
}

impl Draws {
    fn new<C: AsRef<[f64]>>(name: &str, chains: &[C]) -> Result<Self, DiagnosticsError> {
        let lengths: Vec<usize> = chains.iter().map(|c| c.as_ref().len()).collect();
        let draws = lengths.first().copied().unwrap_or(0);
        if lengths.iter().any(|&l| l != draws) {
            return Err(DiagnosticsError::RaggedChains {
                name: name.to_string(),
                lengths,
            });
        }
        if draws == 0 {
            return Err(DiagnosticsError::Empty(name.to_string()));
        }
        let values = chains
            .iter()
            .flat_map(|c| c.as_ref().iter().copied())
            .collect();
        Ok(Self {
            chains: chains.len(),
            draws,
            values,
        })
    }

    fn from_values(chains: usize, draws: usize, values: Vec<f64>) -> Self {
        Self {
            chains,
            draws,
            values,
        }
    }

    fn chain(&self, c: usize) -> &[f64] {
        &self.values[c * self.draws..(c + 1) * self.draws]
    }

    /// ArviZ's validity check: no NaN, at least 4 draws and `min_chains` chains.
    fn is_valid(&self, min_chains: usize) -> bool {
        self.draws >= 4 && self.chains >= min_chains && !self.values.iter().any(|v| v.is_nan())
    }

    fn mean(&self) -> f64 {
        mean(&self.values)
    }

    fn sd(&self) -> f64 {
        variance(&self.values, 1.0).sqrt()
    }

    /// Each chain cut into its first and last `draws / 2` draws (the middle draw of an odd
    /// chain is dropped); the first halves come first, as ArviZ stacks them.
    fn split(&self) -> Draws {
        let half = self.draws / 2;
        let mut values = Vec::with_capacity(2 * self.chains * half);
        for c in 0..self.chains {
            values.extend_from_slice(&self.chain(c)[..half]);
        }
        for c in 0..self.chains {
            values.extend_from_slice(&self.chain(c)[self.draws - half..]);
        }
        Draws::from_values(2 * self.chains, half, values)
    }

    fn map(&self, f: impl Fn(f64) -> f64) -> Draws {
        Draws::from_values(
            self.chains,
            self.draws,
            self.values.iter().map(|&v| f(v)).collect(),
        )
    }

    /// Ranks over all draws (ties averaged), mapped to normal scores with Blom's offset;
    /// `order` lists the draws in ascending order.
    fn rank_normalized(&self, order: &[usize], scores: &mut NormalScores) -> Draws {
        let scores = scores.for_count(self.values.len());
        let mut values = vec![0.0; self.values.len()];
        for_each_average_rank(&self.values, order, |i, twice_rank| {
            values[i] = scores.score(twice_rank);
        });
        Draws::from_values(self.chains, self.draws, values)
    }

    /// MCSE of the mean; `split` is `self.split()`, passed in to be shared.
    fn mcse_mean(&self, split: &Draws) -> f64 {
        let n = self.values.len() as f64;
        let mean = self.mean();
        let sum_sq: f64 = self.values.iter().map(|v| (v - mean).powi(2)).sum();
        (sum_sq / (n - 1.0) / split.ess()).sqrt()
    }

    /// MCSE of the sd; `split` is `self.split()`, passed in to be shared.
    fn mcse_sd(&self, split: &Draws) -> f64 {
        let mean = self.mean();
        let square = |v: f64| (v - mean).powi(2);
        let squared = self.map(square);
        let evar = squared.mean();
        // Squaring each draw commutes with splitting the chains.
        let ess = split.map(square).ess();
        let mean_fourth = mean_of(squared.values.iter().map(|s| s * s), squared.values.len());
        let varvar = (mean_fourth - evar * evar) / ess;
        (varvar / evar / 4.0).sqrt()
    }

    /// The classic (non-split) potential scale reduction of the chains as given.
    fn rhat_classic(&self) -> f64 {
        if self.values.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        let n = self.draws as f64;
        let chain_means: Vec<f64> = (0..self.chains).map(|c| mean(self.chain(c))).collect();
        let within = mean_of(
            (0..self.chains).map(|c| variance(self.chain(c), 1.0)),
            self.chains,
        );
        let between = n * variance(&chain_means, 1.0);
        ((between / within + n - 1.0) / n).sqrt()
    }

    /// ArviZ's `_ess`: Geyer's initial positive and initial monotone sequences on the
    /// multi-chain autocorrelation, with `tau >= 1 / log10(total draws)`.
    fn ess(&self) -> f64 {
        if self.values.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        let total = (self.chains * self.draws) as f64;
        let (min, max) = self
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if max - min < CONSTANT_RESOLUTION {
            return total;
        }
        let autocov = AutoCovariance::new(self);
        let rho = autocov.geyer_rho();
        if rho.values.iter().any(|r| r.is_nan()) {
            return f64::NAN;
        }
        let tau = rho.integrated_time().max(1.0 / total.log10());
        total / tau
    }
}

/// One quantity's draws prepared for every diagnostic that needs ranks or order statistics,
/// so that the summary sorts them once instead of once per diagnostic.
struct Ranked {
    /// The split chains, on which ArviZ computes ESS and R-hat.
    split: Draws,
    /// Indices into `split.values` in ascending order.
    order: Vec<usize>,
    /// Every draw in ascending order (with odd chains, including the middle draws that
    /// splitting drops).
    sorted: Vec<f64>,
}

impl Ranked {
    fn new(draws: &Draws) -> Self {
        let split = draws.split();
        let order = ascending_order(&split.values);
        let sorted = if split.values.len() == draws.values.len() {
            // Splitting even chains only regroups the draws, so they sort to the same values.
            order.iter().map(|&i| split.values[i]).collect()
        } else {
            sorted_copy(&draws.values)
        };
        Self {
            split,
            order,
            sorted,
        }
    }

    /// ArviZ's `z_scale(split(x))`: the split draws rank-normalized over all of them.
    fn bulk_scores(&self, scores: &mut NormalScores) -> Draws {
        self.split.rank_normalized(&self.order, scores)
    }

    fn ess_tail(&self) -> f64 {
        ess_tail_of(&self.split, &self.sorted)
    }

    /// max(bulk, tail) with Python's `max` semantics (a NaN first argument wins);
    /// `bulk_scores` is `self.bulk_scores(..)`, passed in to be shared with ess_bulk.
    fn rhat(&self, bulk_scores: &Draws, scores: &mut NormalScores) -> f64 {
        let bulk = bulk_scores.rhat_classic();
        let tail = self.folded_scores(scores).rhat_classic();
        if tail > bulk { tail } else { bulk }
    }

    /// The split draws folded around the median of all draws, then rank-normalized.
    fn folded_scores(&self, scores: &mut NormalScores) -> Draws {
        let median = median_of_sorted(&self.sorted);
        let folded = self.split.map(|v| (v - median).abs());
        let order = self
            .folded_order(&folded.values, median)
            .unwrap_or_else(|| ascending_order(&folded.values));
        folded.rank_normalized(&order, scores)
    }

    /// The ascending order of `folded` (the split draws' distances to `median`) without a
    /// sort: in ascending order of the draws the distances fall up to the median and rise
    /// after it, so their order is a merge of those two runs. `None` when a distance is NaN
    /// (infinite draws), where the runs are no longer monotone.
    fn folded_order(&self, folded: &[f64], median: f64) -> Option<Vec<usize>> {
        if folded.iter().any(|f| f.is_nan()) {
            return None;
        }
        let values = &self.split.values;
        // `v - median` is monotone in `v` (rounding is monotone), so this is a partition.
        let below = self.order.partition_point(|&i| values[i] - median <= 0.0);
        let (falling, rising) = self.order.split_at(below);
        Some(merge_ascending(
            falling.iter().rev().copied(),
            rising.iter().copied(),
            folded,
        ))
    }
}

/// Tail ESS: the smaller ESS of the 5% and 95% quantile indicators of the `split` draws;
/// `sorted` holds all the draws in ascending order.
fn ess_tail_of(split: &Draws, sorted: &[f64]) -> f64 {
    let quantile_ess = |p: f64| {
        let q = quantile_type7(sorted, p);
        // The indicator of each draw commutes with splitting the chains.
        split.map(|v| if v <= q { 1.0 } else { 0.0 }).ess()
    };
    quantile_ess(0.05).min(quantile_ess(0.95))
}

/// ArviZ's unimodal HDI: the narrowest interval spanning `floor(prob * n)` sorted draws.
fn hdi_of_sorted(sorted: &[f64], prob: f64) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let width_in_draws = ((prob * n as f64).floor() as usize).min(n - 1);
    let n_intervals = n - width_in_draws;
    let mut best = 0;
    let mut best_width = f64::INFINITY;
    for i in 0..n_intervals {
        let width = sorted[i + width_in_draws] - sorted[i];
        if width < best_width {
            best_width = width;
            best = i;
        }
    }
    (sorted[best], sorted[best + width_in_draws])
}

/// Blom's normal scores `normal_quantile((r - 3/8) / (n + 1/4))` of the integer ranks `r`
/// of `n` draws, computed once and reused by every rank normalization of `n` draws.
#[derive(Debug, Default)]
struct NormalScores {
    by_rank: Vec<f64>,
}

impl NormalScores {
    /// The scores for `count` draws, recomputed only when `count` changes.
    fn for_count(&mut self, count: usize) -> &Self {
        if self.by_rank.len() != count {
            self.by_rank = (1..=count).map(|r| blom_score(r as f64, count)).collect();
        }
        self
    }

    /// The score of the rank `twice_rank / 2`; only ties give half ranks, which are rare
    /// enough to compute each time.
    fn score(&self, twice_rank: usize) -> f64 {
        let cached = match twice_rank % 2 {
            0 => (twice_rank / 2)
                .checked_sub(1)
                .and_then(|i| self.by_rank.get(i)),
            _ => None,
        };
        cached
            .copied()
            .unwrap_or_else(|| blom_score(twice_rank as f64 / 2.0, self.by_rank.len()))
    }
}

fn blom_score(rank: f64, count: usize) -> f64 {
    normal_quantile((rank - 0.375) / (count as f64 + 0.25))
}

/// Chains whose lagged sums `AutoCovariance::at` accumulates side by side.
const CHAIN_BLOCK: usize = 8;

/// Mean (over chains) autocovariance of centred chains, computed lag by lag on demand.
struct AutoCovariance {
    /// Centred draws stored draw-major in blocks of `CHAIN_BLOCK` chains
    /// (`centred[(block * draws + draw) * CHAIN_BLOCK + lane]`, zero-padded), so that one
    /// pass over the draws advances a block's sums together: they are independent, which
    /// lets the CPU overlap them, while each keeps its sequential order (and rounding).
    centred: Vec<f64>,
    chains: usize,
    draws: usize,
    mean_var: f64,
    var_plus: f64,
}

/// The autocorrelation sequence after Geyer's truncation.
struct Rho {
    values: Vec<f64>,
    /// ArviZ's `max_t` (may be -1).
    max_t: i64,
}

impl Rho {
    /// `-1 + 2 * sum(rho[..=max_t]) + rho[max_t + 1]`.
    fn integrated_time(&self) -> f64 {
        let head_end = (self.max_t + 1).max(0) as usize;
        let head: f64 = self.values[..head_end].iter().sum();
        -1.0 + 2.0 * head + self.values.get(head_end).copied().unwrap_or(0.0)
    }
}

impl AutoCovariance {
    fn new(draws: &Draws) -> Self {
        let n = draws.draws as f64;
        let chain_means: Vec<f64> = (0..draws.chains).map(|c| mean(draws.chain(c))).collect();
        let blocks = draws.chains.div_ceil(CHAIN_BLOCK);
        let mut centred = vec![0.0; blocks * draws.draws * CHAIN_BLOCK];
        for (c, m) in chain_means.iter().enumerate() {
            let (block, lane) = (c / CHAIN_BLOCK, c % CHAIN_BLOCK);
            for (i, v) in draws.chain(c).iter().enumerate() {
                centred[(block * draws.draws + i) * CHAIN_BLOCK + lane] = v - m;
            }
        }
        let mut this = Self {
            centred,
            chains: draws.chains,
            draws: draws.draws,
            mean_var: 0.0,
            var_plus: 0.0,
        };
        this.mean_var = this.at(0) * n / (n - 1.0);
        this.var_plus = this.mean_var * (n - 1.0) / n;
        if draws.chains > 1 {
            this.var_plus += variance(&chain_means, 1.0);
        }
        this
    }

    /// Mean over chains of the biased autocovariance at `lag` (as ArviZ's FFT computes it).
    fn at(&self, lag: usize) -> f64 {
        let n = self.draws;
        let per_chain = self
            .centred
            .chunks_exact(n * CHAIN_BLOCK)
            .flat_map(|block| lagged_sums(block, lag))
            .take(self.chains)
            .map(|sum| sum / n as f64);
        mean_of(per_chain, self.chains)
    }

    fn rho_at(&self, lag: usize) -> f64 {
        1.0 - (self.mean_var - self.at(lag)) / self.var_plus
    }

    /// ArviZ's initial positive sequence followed by the initial monotone sequence.
    fn geyer_rho(&self) -> Rho {
        let n = self.draws as i64;
        let mut rho = vec![0.0; self.draws.max(2)];
        let mut rho_even = 1.0;
        rho[0] = rho_even;
        let mut rho_odd = self.rho_at(1);
        rho[1] = rho_odd;
        let mut t: i64 = 1;
        while t < n - 3 && rho_even + rho_odd > 0.0 {
            let tu = t as usize;
            rho_even = self.rho_at(tu + 1);
            rho_odd = self.rho_at(tu + 2);
            if rho_even + rho_odd >= 0.0 {
                rho[tu + 1] = rho_even;
                rho[tu + 2] = rho_odd;
            }
            t += 2;
        }
        let max_t = t - 2;
        if rho_even > 0.0 {
            rho[(max_t + 1) as usize] = rho_even;
        }
        let mut t: i64 = 1;
        while t <= max_t - 2 {
            let tu = t as usize;
            if rho[tu + 1] + rho[tu + 2] > rho[tu - 1] + rho[tu] {
                rho[tu + 1] = (rho[tu - 1] + rho[tu]) / 2.0;
                rho[tu + 2] = rho[tu + 1];
            }
            t += 2;
        }
        Rho { values: rho, max_t }
    }
}

/// For each lane of a block of draw-major chains, the sum over draws of
/// `x[draw] * x[draw + lag]`.
fn lagged_sums(block: &[f64], lag: usize) -> [f64; CHAIN_BLOCK] {
    // -0.0 is where `Iterator::sum` starts, so the sums round exactly as a `sum()` would.
    let mut sums = [-0.0; CHAIN_BLOCK];
    let early = block.chunks_exact(CHAIN_BLOCK);
    let late = block[lag * CHAIN_BLOCK..].chunks_exact(CHAIN_BLOCK);
    for (a, b) in early.zip(late) {
        for ((sum, x), y) in sums.iter_mut().zip(a).zip(b) {
            *sum += x * y;
        }
    }
    sums
}

fn mean(values: &[f64]) -> f64 {
    mean_of(values.iter().copied(), values.len())
}

fn mean_of(values: impl Iterator<Item = f64>, n: usize) -> f64 {
    values.sum::<f64>() / n as f64
}

/// Two-pass variance with denominator `n - ddof`.
fn variance(values: &[f64], ddof: f64) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - ddof)
}

/// numpy's median of sorted values: the middle value, or the mean of the two middle values.
fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The values in ascending `f64::total_cmp` order. Values that compare equal have equal
/// bits, so an unstable sort gives exactly what a stable one would.
fn sorted_copy(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    sorted
}

/// Indices of `values` in ascending `f64::total_cmp` order, equal values by index (as a
/// stable sort would leave them).
fn ascending_order(values: &[f64]) -> Vec<usize> {
    let keyed = bucket_sorted(values).unwrap_or_else(|| {
        let mut keyed = keyed_by_value(values);
        keyed.sort_unstable();
        keyed
    });
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// `(key, index)` pairs: sorting integer keys, index included, is faster than sorting
/// indices through an indirect comparison, and the index makes the order fully determined.
fn keyed_by_value(values: &[f64]) -> Vec<(u64, usize)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (total_order_key(v), i))
        .collect()
}

/// The `(key, index)` pairs of `values` sorted by first dealing them into equal-width
/// buckets of value: the buckets come in value order, so only each bucket's few pairs need
/// sorting, which is close to linear time for draws. `None` for non-finite values.
fn bucket_sorted(values: &[f64]) -> Option<Vec<(u64, usize)>> {
    let (lowest, highest) = finite_range(values)?;
    let buckets = values.len() / 2 + 1;
    let scale = (buckets - 1) as f64 / (highest - lowest);
    if !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    // Each rounding step is monotone, so a larger value never lands in an earlier bucket.
    let bucket_of = |v: f64| (((v - lowest) * scale) as usize).min(buckets - 1);
    let mut starts = vec![0; buckets + 1];
    for &v in values {
        starts[bucket_of(v) + 1] += 1;
    }
    for b in 1..=buckets {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut keyed = vec![(0, 0); values.len()];
    for (i, &v) in values.iter().enumerate() {
        let b = bucket_of(v);
        keyed[next[b]] = (total_order_key(v), i);
        next[b] += 1;
    }
    for bucket in starts.windows(2) {
        keyed[bucket[0]..bucket[1]].sort_unstable();
    }
    Some(keyed)
}

/// The smallest and largest value, or `None` if any value is NaN or infinite.
fn finite_range(values: &[f64]) -> Option<(f64, f64)> {
    values
        .iter()
        .try_fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            v.is_finite().then(|| (lo.min(v), hi.max(v)))
        })
}

/// An unsigned key ordered as `f64::total_cmp` orders the values.
fn total_order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        // Negative: larger magnitudes must come first.
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Merges two sequences of indices, each ascending in `keys`, into one ascending order.
fn merge_ascending(
    mut first: impl Iterator<Item = usize>,
    mut second: impl Iterator<Item = usize>,
    keys: &[f64],
) -> Vec<usize> {
    let mut merged = Vec::with_capacity(keys.len());
    let (mut a, mut b) = (first.next(), second.next());
    loop {
        match (a, b) {
            (Some(i), Some(j)) if keys[i] <= keys[j] => {
                merged.push(i);
                a = first.next();
            }
            (Some(_), Some(j)) => {
                merged.push(j);
                b = second.next();
            }
            (Some(i), None) => {
                merged.push(i);
                merged.extend(first);
                break;
            }
            (None, Some(j)) => {
                merged.push(j);
                merged.extend(second);
                break;
            }
            (None, None) => break,
        }
    }
    merged
}

/// The type-7 quantile of sorted values, computed with the same floating-point steps as
/// scipy's `mquantiles(alphap=1, betap=1)` that ArviZ uses, so that draws equal to the
/// quantile fall on the same side of it.
fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n < 2 {
        return sorted.first().copied().unwrap_or(f64::NAN);
    }
    // scipy: m = alphap + p * (1 - alphap - betap) with alphap = betap = 1, exactly 1 - p.
    let m = 1.0 - p;
    let aleph = n as f64 * p + m;
    let k = aleph.clamp(1.0, (n - 1) as f64).floor();
    let gamma = (aleph - k).clamp(0.0, 1.0);
    let k = k as usize;
    (1.0 - gamma) * sorted[k - 1] + gamma * sorted[k]
}

/// Calls `visit(i, twice_rank)` for every index `i` of `order` (the ascending order of
/// `values`) with twice its 1-based rank, ties (`==`, so never NaNs) sharing the mean of
/// their ranks as in scipy's `rankdata(method="average")`. Doubled to stay an integer.
fn for_each_average_rank(values: &[f64], order: &[usize], mut visit: impl FnMut(usize, usize)) {
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) share the mean of the 1-based ranks start+1..=end.
        let twice_rank = start + 1 + end;
        for &i in &order[start..end] {
            visit(i, twice_rank);
        }
        start = end;
    }
}

/// 1-based ranks with ties given their average rank (scipy's `rankdata(method="average")`).
#[cfg(test)]
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut ranks = vec![0.0; values.len()];
    for_each_average_rank(values, &ascending_order(values), |i, twice_rank| {
        ranks[i] = twice_rank as f64 / 2.0;
    });
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfmi_is_arvizs_ratio() {
        // mean(diff^2) = (1 + 4 + 9) / 3, var(ddof = 1) = 21 / 3.
        assert!((bfmi(&[1.0, 2.0, 4.0, 7.0]) - 2.0 / 3.0).abs() < 1e-15);
        assert!(bfmi(&[1.0]).is_nan());
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }

    #[test]
    fn type7_quantiles_match_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_type7(&sorted, 0.5), 2.5);
        assert!((quantile_type7(&sorted, 0.05) - 1.15).abs() < 1e-12);
        assert_eq!(quantile_type7(&sorted, 1.0), 4.0);
    }

    #[test]
    fn constant_draws_have_full_ess_and_nan_rhat() {
        let chains = vec![vec![2.0; 10]; 3];
        assert_eq!(ess_bulk(&chains), 30.0);
        assert!(rhat(&chains).is_nan());
        assert_eq!(hdi(&chains, 0.94), (2.0, 2.0));
    }

    #[test]
    fn too_few_draws_or_chains_give_nan() {
        assert!(ess_bulk(&[vec![1.0, 2.0, 3.0]]).is_nan());
        assert!(rhat(&[vec![1.0, 2.0, 3.0, 4.0, 5.0]]).is_nan());
        assert!(ess_bulk(&[vec![1.0, 2.0, 3.0, 4.0, 5.0]]).is_finite());
    }

    #[test]
    fn ragged_chains_are_an_error() {
        let err = summary_row("a", &[vec![1.0; 5], vec![1.0; 6]]);
        assert!(matches!(err, Err(DiagnosticsError::RaggedChains { .. })));
        let names = vec!["a".to_string()];
        assert!(matches!(
            summarize(&names, &[]),
            Err(DiagnosticsError::NameCountMismatch { .. })
        ));
    }

    #[test]
    fn table_has_arviz_columns() {
        let chains = vec![(0..20).map(|i| (i as f64 * 0.7).sin()).collect::<Vec<_>>(); 2];
        let Ok(row) = summary_row("theta", &chains) else {
            panic!("valid draws")
        };
        let table = format_summary(&[row]);
        assert!(
            table
                .lines()
                .next()
                .is_some_and(|h| h.contains("hdi_3%") && h.contains("r_hat"))
        );
        assert!(table.contains("theta"));
    }

    /// The order a stable sort by `f64::total_cmp` gives, for comparison.
    fn stable_order(values: &[f64]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        order
    }

    #[test]
    fn ascending_order_is_the_stable_total_order() {
        let spread: Vec<f64> = (0..200)
            .map(|i| ((i * 37) % 101) as f64 * 0.3 - 7.0)
            .collect();
        let cases = [
            spread.clone(),
            spread.iter().map(|v| v.round()).collect(),
            vec![0.0, -0.0, 1.0, -0.0, 0.0, -1.0, 1e-300, -1e-300],
            vec![
                3.0,
                f64::NAN,
                -1.0,
                f64::INFINITY,
                -f64::NAN,
                f64::NEG_INFINITY,
                3.0,
            ],
            vec![-1e308, 1e308, 0.0, 5.0, -5.0],
            vec![2.0; 9],
            vec![7.0],
        ];
        for values in cases {
            assert_eq!(
                ascending_order(&values),
                stable_order(&values),
                "{values:?}"
            );
        }
    }

    #[test]
    fn folded_order_sorts_the_distances_to_the_median() {
        let chains: Vec<Vec<f64>> = (0..4)
            .map(|c| {
                (0..31)
                    .map(|i| ((i * 17 + c * 5) % 23) as f64 / 2.0)
                    .collect()
            })
            .collect();
        let Ok(draws) = Draws::new("x", &chains) else {
            panic!("valid draws")
        };
        let ranked = Ranked::new(&draws);
        let median = median_of_sorted(&ranked.sorted);
        let folded = ranked.split.map(|v| (v - median).abs());
        let Some(order) = ranked.folded_order(&folded.values, median) else {
            panic!("finite draws have a folded order")
        };
        let in_order: Vec<f64> = order.iter().map(|&i| folded.values[i]).collect();
        let mut sorted = folded.values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(in_order, sorted);
    }

    #[test]
    fn bulk_scores_are_shared_between_rows_of_different_sizes() {
        let short = vec![vec![1.0, 3.0, 2.0, 5.0, 4.0, 0.5]; 2];
        let long = vec![(0..40).map(|i| ((i * 7) % 13) as f64).collect::<Vec<_>>(); 3];
        let names = vec!["short".to_string(), "long".to_string(), "again".to_string()];
        let Ok(rows) = summarize(&names, &[short.clone(), long.clone(), short.clone()]) else {
            panic!("valid draws")
        };
        for (row, chains) in rows.iter().zip([&short, &long, &short]) {
            let Ok(alone) = summary_row(&row.name, chains) else {
                panic!("valid draws")
            };
            assert_eq!(row, &alone);
        }
    }
}
