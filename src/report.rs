//! What a sampling run reports: warnings, the `--summary-json` document, CmdStan CSV files of
//! the constrained draws.

use std::path::{Path, PathBuf};

use tessera_sampler::Trace;
use tessera_sampler::cmdstan_csv::{CmdStanConfig, CsvChain, CsvError, CsvRows, cmdstan_names, write_cmdstan_csv};
use tessera_sampler::diagnostics::SummaryRow;

use crate::pipeline::CompiledModel;

/// Bulk or tail ESS below this (100 per chain, at most 400) is reported as low.
pub fn low_ess_threshold(chains: usize) -> f64 {
    (100 * chains).min(400) as f64
}

/// Human-readable warnings about a run: divergences, R-hat above 1.01, low ESS, tree-depth
/// hits, failed or cancelled chains.
pub fn warnings(trace: &Trace, rows: &[SummaryRow]) -> Vec<String> {
    let mut out = Vec::new();
    let draws: usize = trace.chains.iter().map(|c| c.num_draws()).sum();
    let divergences = trace.divergences();
    if divergences > 0 {
        out.push(format!(
            "{divergences} of {draws} draws after tuning diverged: the posterior has regions the sampler cannot explore \
             (try --target-accept 0.95, or a non-centred parameterization)"
        ));
    }
    let depth_hits: usize = trace.chains.iter().flat_map(|c| &c.stats).filter(|s| s.max_tree_depth_reached).count();
    if depth_hits > 0 {
        out.push(format!(
            "{depth_hits} of {draws} draws hit the maximum tree depth {} (trajectories were cut short; try --max-treedepth {})",
            trace.settings.max_tree_depth,
            trace.settings.max_tree_depth + 2
        ));
    }
    if trace.chains.iter().filter(|c| c.num_draws() > 0).count() == 1 {
        out.push("with one chain, r_hat cannot be computed and convergence is not checked: run several chains (--chains 4)".into());
    }
    let bad_rhat: Vec<&SummaryRow> = rows.iter().filter(|r| r.r_hat > 1.01).collect();
    if let Some(worst) = bad_rhat.iter().max_by(|a, b| a.r_hat.total_cmp(&b.r_hat)) {
        out.push(format!("{} quantities have r_hat > 1.01 (worst: {} = {:.3}): the chains disagree", bad_rhat.len(), worst.name, worst.r_hat));
    }
    let threshold = low_ess_threshold(trace.chains.len());
    let low: Vec<&SummaryRow> = rows.iter().filter(|r| r.ess_bulk < threshold || r.ess_tail < threshold).collect();
    if let Some(worst) = low.iter().min_by(|a, b| a.ess_bulk.min(a.ess_tail).total_cmp(&b.ess_bulk.min(b.ess_tail))) {
        out.push(format!(
            "{} quantities have ess_bulk or ess_tail below {threshold:.0} (worst: {}, bulk {:.0}, tail {:.0}): estimates are unreliable",
            low.len(),
            worst.name,
            worst.ess_bulk,
            worst.ess_tail
        ));
    }
    for stuck in stuck_chains(trace) {
        out.push(format!(
            "chain {} never reached chain {}'s region: its log density (median {:.4e}) stays below every draw of chain {} (median {:.4e}), \
             so its draws do not represent the posterior (a chain stuck in a funnel's mouth, in a minor mode, or far from the mass \
             when parameters are on a scale far from 1, as in normal(1e6, 1e-3))",
            stuck.chain, stuck.reference, stuck.median_lp, stuck.reference, stuck.reference_median_lp
        ));
    }
    for (chain, err) in trace.errors() {
        out.push(format!("chain {chain} stopped early: {err}"));
    }
    if trace.cancelled {
        out.push("the run was cancelled; the summary uses the draws made so far".into());
    }
    out
}

/// A chain whose log density stayed far below another chain's for the whole run.
struct StuckChain {
    chain: usize,
    median_lp: f64,
    reference: usize,
    reference_median_lp: f64,
}

/// Chains that never overlap the best chain in log density: every draw's log density is lower
/// than the best chain's lowest by more than the best chain's own range (and 10 nats). R-hat
/// says the chains disagree; this says which chain is lost (stuck far from the mass, or in a
/// minor mode), which a user cannot read from the summary.
fn stuck_chains(trace: &Trace) -> Vec<StuckChain> {
    let ranges: Vec<(usize, f64, f64, f64)> = trace
        .chains
        .iter()
        .filter(|c| c.num_draws() > 0)
        .filter_map(|c| {
            let mut lp: Vec<f64> = c.stats.iter().map(|s| s.lp).filter(|x| x.is_finite()).collect();
            lp.sort_by(f64::total_cmp);
            Some((c.chain, *lp.first()?, lp[lp.len() / 2], *lp.last()?))
        })
        .collect();
    let Some(&(reference, ref_min, reference_median_lp, ref_max)) = ranges.iter().max_by(|a, b| a.2.total_cmp(&b.2)) else {
        return Vec::new();
    };
    let margin = (ref_max - ref_min).max(10.0);
    ranges
        .iter()
        .filter(|&&(_, _, _, max)| max < ref_min - margin)
        .map(|&(chain, _, median_lp, _)| StuckChain { chain, median_lp, reference, reference_median_lp })
        .collect()
}

/// Wall-clock timing of a `sample` run, for the summary document.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunTiming {
    /// Model file → callable functions, in milliseconds.
    pub compile_ms: f64,
    /// Tuning, seconds (the slowest chain).
    pub tune_s: f64,
    /// Drawing after tuning, seconds (the slowest chain).
    pub sample_s: f64,
    /// The whole command, seconds.
    pub total_s: f64,
}

impl RunTiming {
    /// Tuning and sampling times of a trace (slowest chain of each), with the given compile
    /// and total times.
    pub fn of(trace: &Trace, compile_ms: f64, total_s: f64) -> Self {
        let max = |f: fn(&tessera_sampler::ChainTrace) -> f64| trace.chains.iter().map(f).fold(0.0, f64::max);
        RunTiming { compile_ms, tune_s: max(|c| c.timing.tune_seconds), sample_s: max(|c| c.timing.sampling_seconds), total_s }
    }
}

/// JSON has no NaN or infinity: those become null.
fn num(x: f64) -> serde_json::Value {
    if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null }
}

/// The `--summary-json` document: parameters with ArviZ's columns, divergences, chains,
/// draws, tune, gradient evaluations and timing.
pub fn summary_json(trace: &Trace, rows: &[SummaryRow], timing: &RunTiming) -> serde_json::Value {
    let parameters: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name, "mean": num(r.mean), "sd": num(r.sd),
                "hdi_3%": num(r.hdi_lower), "hdi_97%": num(r.hdi_upper),
                "mcse_mean": num(r.mcse_mean), "mcse_sd": num(r.mcse_sd),
                "ess_bulk": num(r.ess_bulk), "ess_tail": num(r.ess_tail), "r_hat": num(r.r_hat),
            })
        })
        .collect();
    let grad_evals: u64 = trace.chains.iter().map(|c| c.grad_evals_tune + c.grad_evals_sampling).sum();
    serde_json::json!({
        "parameters": parameters,
        "divergences": trace.divergences(),
        "chains": trace.chains.len(),
        "draws": trace.settings.draws,
        "tune": trace.settings.tune,
        "grad_evals": grad_evals,
        "timing": {
            "compile_ms": num(timing.compile_ms), "tune_s": num(timing.tune_s),
            "sample_s": num(timing.sample_s), "total_s": num(timing.total_s),
        },
    })
}

/// The CSV file of chain `chain` (0-based) for `--output PATH`: PATH itself for a single
/// chain, else `STEM_{chain+1}.EXT` beside it (ArviZ's `from_cmdstan` reads one file per chain).
pub fn csv_path(output: &Path, chain: usize, chains: usize) -> PathBuf {
    if chains == 1 {
        return output.to_path_buf();
    }
    let stem = output.file_stem().map_or_else(|| "draws".into(), |s| s.to_string_lossy().into_owned());
    let ext = output.extension().map_or_else(|| "csv".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}_{}.{ext}", chain + 1))
}

/// Writes every chain's constrained draws (parameters and derived quantities) as CmdStan CSV,
/// one file per chain (see [`csv_path`]); returns the paths written.
pub fn write_csv(model: &CompiledModel, trace: &Trace, output: &Path, model_name: &str) -> Result<Vec<PathBuf>, CsvError> {
    let names = cmdstan_names(&model.names)?;
    let values = model.constrained_values(trace);
    let mut paths = Vec::new();
    let usable: Vec<&tessera_sampler::ChainTrace> = trace.chains.iter().filter(|c| c.num_draws() > 0).collect();
    for (c, chain) in usable.iter().enumerate() {
        let n_draws = values.first().map_or(0, |q| q[c].len());
        let mut flat = Vec::with_capacity(n_draws * names.len());
        for d in 0..n_draws {
            flat.extend(values.iter().map(|q| q[c][d]));
        }
        let config = CmdStanConfig::from_settings(&trace.settings, chain.chain, model_name);
        let path = csv_path(output, chain.chain, trace.chains.len());
        let file = std::fs::File::create(&path)?;
        write_cmdstan_csv(
            file,
            &CsvChain {
                config: &config,
                names: &names,
                warmup: CsvRows { values: &[], stats: &[] },
                draws: CsvRows { values: &flat, stats: &chain.stats[..n_draws] },
                adaptation: &chain.adaptation,
                timing: chain.timing,
            },
        )?;
        paths.push(path);
    }
    Ok(paths)
}
