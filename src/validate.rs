//! Validation against posteriordb reference posteriors: sample each case, compare every
//! reference mean within 4·sqrt(mcse_ref² + mcse_run²).
//!
//! A case is three files in one directory: `NAME.tess`, `NAME.json` (data) and
//! `NAME.reference.json` (the posteriordb summary: `parameters.{name}.{mean, mcse_mean}` on
//! the constrained scale, 0-based names — derived quantities included).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tessera_sampler::{Settings, sample};

use crate::pipeline::{PipelineOptions, compile_files};

/// The z-score bound of the check.
pub const Z_BOUND: f64 = 4.0;

/// One posterior to validate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The posterior's name (file stem).
    pub name: String,
    /// The model file.
    pub model: PathBuf,
    /// The data file.
    pub data: PathBuf,
    /// The reference summary.
    pub reference: PathBuf,
}

/// Every case in `dir` (sorted by name): each `NAME.tess` with a `NAME.json` and a
/// `NAME.reference.json` beside it.
pub fn find_cases(dir: &Path) -> std::io::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "tess") {
            continue;
        }
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        let data = dir.join(format!("{name}.json"));
        let reference = dir.join(format!("{name}.reference.json"));
        if data.exists() && reference.exists() {
            cases.push(Case { name, model: path, data, reference });
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// The check of one reference quantity.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The quantity's name (`theta[0]`).
    pub name: String,
    /// Reference mean.
    pub ref_mean: f64,
    /// Reference MCSE of the mean.
    pub ref_mcse: f64,
    /// This run's mean.
    pub mean: f64,
    /// This run's MCSE of the mean.
    pub mcse: f64,
    /// `(mean - ref_mean) / sqrt(ref_mcse² + mcse²)`.
    pub z: f64,
}

/// The result of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The posterior's name.
    pub name: String,
    /// Unconstrained dimension (0 if compilation failed).
    pub dim: usize,
    /// Every reference quantity's check.
    pub checks: Vec<Check>,
    /// Divergent draws after tuning.
    pub divergences: usize,
    /// Smallest bulk ESS over the checked quantities.
    pub min_ess_bulk: f64,
    /// Largest R-hat over the checked quantities.
    pub max_rhat: f64,
    /// Compile time, milliseconds.
    pub compile_ms: f64,
    /// Wall time of sampling, seconds.
    pub sample_s: f64,
    /// Why the case could not be run, if it could not.
    pub error: Option<String>,
}

impl Outcome {
    /// Whether every quantity is within the bound and the case ran.
    pub fn passed(&self) -> bool {
        self.error.is_none() && !self.checks.is_empty() && self.checks.iter().all(|c| c.z.abs() <= Z_BOUND)
    }

    /// The check with the largest |z|.
    pub fn worst(&self) -> Option<&Check> {
        self.checks.iter().max_by(|a, b| a.z.abs().total_cmp(&b.z.abs()))
    }
}

/// The settings of a validation run: 4 chains, 1000 tuning and 1000 draws, `seed`.
pub fn validation_settings(seed: u64) -> Settings {
    Settings { chains: 4, tune: 1000, draws: 1000, seed, ..Default::default() }
}

/// Samples one case and checks it.
pub fn run_case(case: &Case, settings: &Settings) -> Outcome {
    let mut outcome = Outcome {
        name: case.name.clone(),
        dim: 0,
        checks: Vec::new(),
        divergences: 0,
        min_ess_bulk: f64::NAN,
        max_rhat: f64::NAN,
        compile_ms: f64::NAN,
        sample_s: f64::NAN,
        error: None,
    };
    if let Err(e) = run_case_into(case, settings, &mut outcome) {
        outcome.error = Some(e);
    }
    outcome
}

fn run_case_into(case: &Case, settings: &Settings, outcome: &mut Outcome) -> Result<(), String> {
    let reference = read_reference(&case.reference)?;
    let model = compile_files(&case.model, &case.data, &PipelineOptions::default()).map_err(|e| e.to_string())?;
    outcome.dim = model.dim();
    outcome.compile_ms = model.times.total().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    let trace = sample(&model.density, settings).map_err(|e| e.to_string())?;
    outcome.sample_s = t0.elapsed().as_secs_f64();
    outcome.divergences = trace.divergences();
    let rows = model.summarize(&trace).map_err(|e| e.to_string())?;
    for (name, ref_mean, ref_mcse) in reference {
        let row = rows.iter().find(|r| r.name == name).ok_or_else(|| format!("the model has no quantity `{name}`"))?;
        let z = (row.mean - ref_mean) / (ref_mcse * ref_mcse + row.mcse_mean * row.mcse_mean).sqrt();
        outcome.min_ess_bulk = outcome.min_ess_bulk.min(row.ess_bulk);
        outcome.max_rhat = outcome.max_rhat.max(row.r_hat);
        outcome.checks.push(Check { name, ref_mean, ref_mcse, mean: row.mean, mcse: row.mcse_mean, z: if z.is_nan() { f64::INFINITY } else { z } });
    }
    Ok(())
}

/// `(name, mean, mcse_mean)` of every reference quantity, in the file's parameter order.
pub fn read_reference(path: &Path) -> Result<Vec<(String, f64, f64)>, String> {
    let text = crate::pipeline::read_text(path).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let params = json["parameters"].as_object().ok_or_else(|| format!("{}: no `parameters` object", path.display()))?;
    let order: Vec<String> = match json["parameter_order"].as_array() {
        Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
        None => params.keys().cloned().collect(),
    };
    order
        .into_iter()
        .map(|name| {
            let p = &params[&name];
            match (p["mean"].as_f64(), p["mcse_mean"].as_f64()) {
                (Some(m), Some(s)) => Ok((name, m, s)),
                _ => Err(format!("{}: `{name}` lacks mean or mcse_mean", path.display())),
            }
        })
        .collect()
}

/// The table of outcomes: pass/fail, worst |z| and where, and run statistics.
pub fn format_table(outcomes: &[Outcome]) -> String {
    let w = outcomes.iter().map(|o| o.name.len()).max().unwrap_or(9).max(9);
    let mut out = format!(
        "{:w$}  {:>4}  {:>6}  {:>7}  {:<18}  {:>5}  {:>8}  {:>6}  {:>10}  {:>8}\n",
        "posterior", "dim", "result", "worst z", "at", "divs", "min ess", "max rh", "compile ms", "sample s"
    );
    for o in outcomes {
        let (z, at) = o.worst().map_or((f64::NAN, "-".to_string()), |c| (c.z, c.name.clone()));
        let result = if o.passed() { "pass" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{:w$}  {:>4}  {:>6}  {:>7.2}  {:<18}  {:>5}  {:>8.0}  {:>6.3}  {:>10.2}  {:>8.2}",
            o.name, o.dim, result, z, at, o.divergences, o.min_ess_bulk, o.max_rhat, o.compile_ms, o.sample_s
        );
        if let Some(e) = &o.error {
            let _ = writeln!(out, "    error: {}", e.lines().next().unwrap_or(""));
        }
    }
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let _ = writeln!(out, "{passed} of {} posteriors pass (|z| <= {Z_BOUND} on every reference mean)", outcomes.len());
    out
}
