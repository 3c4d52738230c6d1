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
    names
        .iter()
        .zip(values)
        .map(|(name, chains)| summary_row(name, chains))
        .collect()
}

/// The summary of one quantity given as chains of equal length.
pub fn summary_row<C: AsRef<[f64]>>(
    name: &str,
    chains: &[C],
) -> Result<SummaryRow, DiagnosticsError> {
    let draws = Draws::new(name, chains)?;
    let (hdi_lower, hdi_upper) = draws.hdi(HDI_PROB);
    let valid = draws.is_valid(1);
    let nan_unless = |ok: bool, f: &dyn Fn() -> f64| if ok { f() } else { f64::NAN };
    Ok(SummaryRow {
        name: name.to_string(),
        mean: draws.mean(),
        sd: draws.sd(),
        hdi_lower,
        hdi_upper,
        mcse_mean: nan_unless(valid, &|| draws.mcse_mean()),
        mcse_sd: nan_unless(valid, &|| draws.mcse_sd()),
        ess_bulk: nan_unless(valid, &|| draws.ess_bulk()),
        ess_tail: nan_unless(valid, &|| draws.ess_tail()),
        r_hat: nan_unless(draws.is_valid(2), &|| draws.rhat()),
    })
}

/// Bulk effective sample size (ESS of the rank-normalized split chains).
pub fn ess_bulk<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, Draws::ess_bulk)
}

/// Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators.
pub fn ess_tail<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, Draws::ess_tail)
}

/// Effective sample size of the mean (split chains, not rank-normalized).
pub fn ess_mean<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, |d| d.split().ess())
}

/// Rank-normalized split R-hat: the larger of the bulk and the folded (tail) R-hat.
pub fn rhat<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 2, Draws::rhat)
}

/// Monte Carlo standard error of the mean.
pub fn mcse_mean<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, Draws::mcse_mean)
}

/// Monte Carlo standard error of the standard deviation.
pub fn mcse_sd<C: AsRef<[f64]>>(chains: &[C]) -> f64 {
    with_valid(chains, 1, Draws::mcse_sd)
}

/// The highest-density interval of probability `prob` over all draws (ArviZ's unimodal `hdi`).
pub fn hdi<C: AsRef<[f64]>>(chains: &[C], prob: f64) -> (f64, f64) {
    match Draws::new("", chains) {
        Ok(d) => d.hdi(prob),
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

    /// Ranks over all draws (ties averaged), mapped to normal scores with Blom's offset.
    fn z_scale(&self) -> Draws {
        let n = self.values.len() as f64;
        let ranks = average_ranks(&self.values);
        let values = ranks
            .iter()
            .map(|r| normal_quantile((r - 0.375) / (n + 0.25)))
            .collect();
        Draws::from_values(self.chains, self.draws, values)
    }

    fn ess_bulk(&self) -> f64 {
        self.split().z_scale().ess()
    }

    fn ess_tail(&self) -> f64 {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let quantile_ess = |p: f64| {
            let q = quantile_type7(&sorted, p);
            self.map(|v| if v <= q { 1.0 } else { 0.0 }).split().ess()
        };
        quantile_ess(0.05).min(quantile_ess(0.95))
    }

    /// max(bulk, tail) with Python's `max` semantics (a NaN first argument wins).
    fn rhat(&self) -> f64 {
        let bulk = self.split().z_scale().rhat_classic();
        let median = median(&self.values);
        let tail = self
            .map(|v| (v - median).abs())
            .split()
            .z_scale()
            .rhat_classic();
        if tail > bulk { tail } else { bulk }
    }

    fn mcse_mean(&self) -> f64 {
        let n = self.values.len() as f64;
        let mean = self.mean();
        let sum_sq: f64 = self.values.iter().map(|v| (v - mean).powi(2)).sum();
        (sum_sq / (n - 1.0) / self.split().ess()).sqrt()
    }

    fn mcse_sd(&self) -> f64 {
        let mean = self.mean();
        let squared = self.map(|v| (v - mean).powi(2));
        let evar = squared.mean();
        let ess = squared.split().ess();
        let mean_fourth = mean_of(squared.values.iter().map(|s| s * s), squared.values.len());
        let varvar = (mean_fourth - evar * evar) / ess;
        (varvar / evar / 4.0).sqrt()
    }

    fn hdi(&self, prob: f64) -> (f64, f64) {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let width_in_draws = ((prob * n as f64).floor() as usize).min(n.saturating_sub(1));
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

/// Lazily computed mean (over chains) autocovariance of centred chains.
struct AutoCovariance {
    centred: Vec<Vec<f64>>,
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
        let centred: Vec<Vec<f64>> = (0..draws.chains)
            .map(|c| {
                let chain = draws.chain(c);
                let m = mean(chain);
                chain.iter().map(|v| v - m).collect()
            })
            .collect();
        let chain_means: Vec<f64> = (0..draws.chains).map(|c| mean(draws.chain(c))).collect();
        let mut this = Self {
            centred,
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
        let per_chain = self.centred.iter().map(|c| {
            c[..n - lag]
                .iter()
                .zip(&c[lag..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / n as f64
        });
        mean_of(per_chain, self.centred.len())
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

/// numpy's median: the middle value, or the mean of the two middle values.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
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

/// 1-based ranks with ties given their average rank (scipy's `rankdata(method="average")`).
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) share the mean of the 1-based ranks start+1..=end.
        let shared = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = shared;
        }
        start = end;
    }
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
}
