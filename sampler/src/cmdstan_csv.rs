//! CmdStan's CSV output format (one file per chain), readable by ArviZ's `from_cmdstan` and
//! cmdstanpy: configuration comments, the header (sampler columns then parameters named
//! `name.i.j` with 1-based indices), warmup rows when kept, the adaptation block, the draws and
//! the elapsed-time block. A reader for the same format is included (used by the tests).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::settings::{Adaptation, Settings};
use crate::trace::{AdaptationResult, DrawStats, Timing, Trace};

/// The sampler columns CmdStan writes before the parameters.
pub const SAMPLER_COLUMNS: [&str; 7] = [
    "lp__",
    "accept_stat__",
    "stepsize__",
    "treedepth__",
    "n_leapfrog__",
    "divergent__",
    "energy__",
];

/// Errors of writing or reading CmdStan CSV.
#[derive(Debug, Error)]
pub enum CsvError {
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A parameter name cannot be written in CmdStan's `name.i.j` form.
    #[error("invalid CmdStan column name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two parameters have the same column name.
    #[error("duplicate column name `{0}`")]
    DuplicateName(String),
    /// Values and statistics do not fit the column names.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// The chain index is not in the trace.
    #[error("chain {0} is not in the trace")]
    NoSuchChain(usize),
    /// A line of a CSV file could not be parsed.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What went wrong.
        message: String,
    },
}

/// Converts `beta[0]` / `L[0,1]` (0-based brackets) to CmdStan's `beta.1` / `L.1.2`; a name
/// without brackets is returned unchanged if it is already valid (`sigma`, `theta.3`).
pub fn cmdstan_name(name: &str) -> Result<String, CsvError> {
    let invalid = |reason: &str| CsvError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let Some(open) = name.find('[') else {
        validate_column_name(name)?;
        return Ok(name.to_string());
    };
    let inner = name[open + 1..]
        .strip_suffix(']')
        .ok_or_else(|| invalid("expected `]` at the end"))?;
    let mut out = name[..open].to_string();
    if out.is_empty() {
        return Err(invalid("empty base name"));
    }
    for index in inner.split(',') {
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| invalid("indices must be non-negative integers"))?;
        let _ = write!(out, ".{}", index + 1);
    }
    validate_column_name(&out)?;
    Ok(out)
}

/// [`cmdstan_name`] of every name.
pub fn cmdstan_names<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>, CsvError> {
    names.iter().map(|n| cmdstan_name(n.as_ref())).collect()
}

/// Checks that ArviZ can parse a column name: a base name without separators, optionally
/// followed by `.i` parts with positive integer (1-based) indices, not ending in `__`.
fn validate_column_name(name: &str) -> Result<(), CsvError> {
    let invalid = |reason: &str| {
        Err(CsvError::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return invalid("empty name");
    }
    if name
        .chars()
        .any(|c| c == ',' || c == '#' || c == '"' || c.is_whitespace() || c.is_control())
    {
        return invalid("names cannot contain commas, quotes, `#` or whitespace");
    }
    if name.ends_with("__") {
        return invalid("names ending in `__` are reserved for sampler statistics");
    }
    let mut parts = name.split('.');
    if parts.next().is_none_or(str::is_empty) {
        return invalid("empty base name");
    }
    if parts.any(|p| p.parse::<usize>().map_or(true, |i| i == 0)) {
        return invalid("indices after `.` must be positive integers (CmdStan is 1-based)");
    }
    Ok(())
}

/// The configuration comments of one chain's file.
#[derive(Debug, Clone, PartialEq)]
pub struct CmdStanConfig {
    /// Model name.
    pub model: String,
    /// 1-based chain id (CmdStan's `id`).
    pub chain_id: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Tuning iterations.
    pub num_warmup: usize,
    /// Posterior draws.
    pub num_samples: usize,
    /// Whether warmup rows are in the file.
    pub save_warmup: bool,
    /// Target acceptance statistic (`delta`).
    pub delta: f64,
    /// Dual-averaging `gamma`.
    pub gamma: f64,
    /// Dual-averaging `kappa`.
    pub kappa: f64,
    /// Dual-averaging `t0`.
    pub t0: f64,
    /// Stan window schedule: initial buffer.
    pub init_buffer: usize,
    /// Stan window schedule: terminal buffer.
    pub term_buffer: usize,
    /// Stan window schedule: first window.
    pub window: usize,
    /// Maximum tree depth.
    pub max_depth: u32,
    /// Step-size jitter.
    pub stepsize_jitter: f64,
    /// Radius of random initialization.
    pub init_radius: f64,
    /// Name of the adaptation scheme (a tessera-specific comment).
    pub adaptation: String,
}

impl CmdStanConfig {
    /// The configuration of chain `chain` (0-based) of a run with `settings`.
    pub fn from_settings(settings: &Settings, chain: usize, model: &str) -> Self {
        let da = settings.adaptation.dual_averaging();
        let (init_buffer, term_buffer, window, jitter) = match &settings.adaptation {
            Adaptation::StanWindowed(s) => (
                s.init_buffer,
                s.term_buffer,
                s.base_window,
                s.step_size_jitter,
            ),
            Adaptation::GradientBased(g) => {
                let early = (g.early_fraction * settings.tune as f64) as usize;
                let last = (g.final_step_size_fraction * settings.tune as f64) as usize;
                (early, last, g.first_window_size, g.step_size_jitter)
            }
        };
        Self {
            model: model.to_string(),
            chain_id: chain + 1,
            seed: settings.seed,
            num_warmup: settings.tune,
            num_samples: settings.draws,
            save_warmup: settings.keep_warmup,
            delta: settings.target_accept,
            gamma: da.gamma,
            kappa: da.kappa,
            t0: da.t0,
            init_buffer,
            term_buffer,
            window,
            max_depth: settings.max_tree_depth,
            stepsize_jitter: jitter,
            init_radius: settings.init_radius,
            adaptation: settings.adaptation.name().to_string(),
        }
    }
}

/// Rows of one part of a chain (warmup or posterior): `values` is flat, one row of
/// `names.len()` values per entry of `stats`.
#[derive(Debug, Clone, Copy)]
pub struct CsvRows<'a> {
    /// Parameter values, row-major.
    pub values: &'a [f64],
    /// Sampler statistics, one per row.
    pub stats: &'a [DrawStats],
}

/// Everything written to one chain's file.
#[derive(Debug, Clone, Copy)]
pub struct CsvChain<'a> {
    /// Configuration comments.
    pub config: &'a CmdStanConfig,
    /// Parameter column names in CmdStan form (see [`cmdstan_name`]).
    pub names: &'a [String],
    /// Warmup rows, written only if `config.save_warmup`.
    pub warmup: CsvRows<'a>,
    /// Posterior rows.
    pub draws: CsvRows<'a>,
    /// Step size and inverse mass matrix written in the adaptation block.
    pub adaptation: &'a AdaptationResult,
    /// Written in the elapsed-time block.
    pub timing: Timing,
}

/// Writes one chain in CmdStan's CSV format. `num_samples` (and `num_warmup` when warmup is
/// saved) are written as the numbers of rows actually present, so a cancelled chain still
/// splits correctly in ArviZ.
pub fn write_cmdstan_csv<W: Write>(out: W, chain: &CsvChain<'_>) -> Result<(), CsvError> {
    validate_names(chain.names)?;
    check_rows("warmup", &chain.warmup, chain.names.len())?;
    check_rows("draws", &chain.draws, chain.names.len())?;
    let mut out = BufWriter::new(out);
    let config = chain.config;
    let num_warmup = if config.save_warmup {
        chain.warmup.stats.len()
    } else {
        config.num_warmup
    };
    write_config(&mut out, config, num_warmup, chain.draws.stats.len())?;
    writeln!(
        out,
        "{}",
        SAMPLER_COLUMNS
            .iter()
            .copied()
            .chain(chain.names.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(",")
    )?;
    if config.save_warmup {
        write_rows(&mut out, &chain.warmup, chain.names.len())?;
    }
    write_adaptation(&mut out, chain.adaptation)?;
    write_rows(&mut out, &chain.draws, chain.names.len())?;
    write_timing(&mut out, chain.timing)?;
    out.flush()?;
    Ok(())
}

/// Writes chain `chain` of `trace` (its unconstrained draws) under the CmdStan column `names`.
pub fn write_trace_chain<W: Write>(
    out: W,
    trace: &Trace,
    chain: usize,
    names: &[String],
    model: &str,
) -> Result<(), CsvError> {
    let c = trace
        .chains
        .get(chain)
        .ok_or(CsvError::NoSuchChain(chain))?;
    let config = CmdStanConfig::from_settings(&trace.settings, chain, model);
    write_cmdstan_csv(
        out,
        &CsvChain {
            config: &config,
            names,
            warmup: CsvRows {
                values: &c.warmup_draws,
                stats: &c.warmup_stats,
            },
            draws: CsvRows {
                values: &c.draws,
                stats: &c.stats,
            },
            adaptation: &c.adaptation,
            timing: c.timing,
        },
    )
}

/// Writes every chain of `trace` to `dir/{stem}_{id}.csv` (ids 1-based, as CmdStan) and returns
/// the paths.
pub fn write_trace_files(
    dir: &Path,
    stem: &str,
    trace: &Trace,
    names: &[String],
    model: &str,
) -> Result<Vec<PathBuf>, CsvError> {
    let mut paths = Vec::with_capacity(trace.chains.len());
    for chain in 0..trace.chains.len() {
        let path = dir.join(format!("{stem}_{}.csv", chain + 1));
        write_trace_chain(File::create(&path)?, trace, chain, names, model)?;
        paths.push(path);
    }
    Ok(paths)
}

fn validate_names(names: &[String]) -> Result<(), CsvError> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        validate_column_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(CsvError::DuplicateName(name.clone()));
        }
    }
    Ok(())
}

fn check_rows(part: &str, rows: &CsvRows<'_>, n_columns: usize) -> Result<(), CsvError> {
    if rows.values.len() != rows.stats.len() * n_columns {
        return Err(CsvError::Shape(format!(
            "{part}: {} values for {} rows of {n_columns} columns",
            rows.values.len(),
            rows.stats.len()
        )));
    }
    Ok(())
}

fn write_config(
    out: &mut impl Write,
    c: &CmdStanConfig,
    num_warmup: usize,
    num_samples: usize,
) -> std::io::Result<()> {
    let lines = [
        format!("model = {}", c.model),
        "method = sample (Default)".to_string(),
        "  sample".to_string(),
        format!("    num_samples = {num_samples}"),
        format!("    num_warmup = {num_warmup}"),
        format!("    save_warmup = {}", c.save_warmup),
        "    thin = 1 (Default)".to_string(),
        "    adapt".to_string(),
        format!("      engaged = {}", c.num_warmup > 0),
        format!("      gamma = {}", config_float(c.gamma)),
        format!("      delta = {}", config_float(c.delta)),
        format!("      kappa = {}", config_float(c.kappa)),
        format!("      t0 = {}", config_float(c.t0)),
        format!("      init_buffer = {}", c.init_buffer),
        format!("      term_buffer = {}", c.term_buffer),
        format!("      window = {}", c.window),
        "    algorithm = hmc (Default)".to_string(),
        "      hmc".to_string(),
        "        engine = nuts (Default)".to_string(),
        "          nuts".to_string(),
        format!("            max_depth = {}", c.max_depth),
        "        metric = diag_e (Default)".to_string(),
        format!(
            "        stepsize_jitter = {}",
            config_float(c.stepsize_jitter)
        ),
        format!("id = {}", c.chain_id),
        format!("init = {}", config_float(c.init_radius)),
        "random".to_string(),
        format!("  seed = {}", c.seed),
        format!("tessera_adaptation = {}", c.adaptation),
    ];
    for line in lines {
        writeln!(out, "# {line}")?;
    }
    Ok(())
}

/// Integral values as integers (`t0 = 10`), others with a decimal point, as CmdStan prints them.
fn config_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format_value(x)
    }
}

fn write_adaptation(out: &mut impl Write, adaptation: &AdaptationResult) -> std::io::Result<()> {
    writeln!(out, "# Adaptation terminated")?;
    writeln!(out, "# Step size = {}", format_value(adaptation.step_size))?;
    writeln!(out, "# Diagonal elements of inverse mass matrix:")?;
    let diag: Vec<String> = adaptation
        .inv_mass_diag
        .iter()
        .map(|&v| format_value(v))
        .collect();
    writeln!(out, "# {}", diag.join(", "))
}

fn write_rows(out: &mut impl Write, rows: &CsvRows<'_>, n_columns: usize) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, stats) in rows.stats.iter().enumerate() {
        line.clear();
        let _ = write!(
            line,
            "{},{},{},{},{},{},{}",
            format_value(stats.lp),
            format_value(stats.accept_stat),
            format_value(stats.step_size),
            stats.tree_depth,
            stats.n_leapfrog,
            u8::from(stats.diverging),
            format_value(stats.energy)
        );
        for &v in &rows.values[i * n_columns..(i + 1) * n_columns] {
            line.push(',');
            line.push_str(&format_value(v));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn write_timing(out: &mut impl Write, timing: Timing) -> std::io::Result<()> {
    let total = timing.tune_seconds + timing.sampling_seconds;
    writeln!(out, "# ")?;
    writeln!(
        out,
        "#  Elapsed Time: {:.6} seconds (Warm-up)",
        timing.tune_seconds
    )?;
    writeln!(
        out,
        "#                {:.6} seconds (Sampling)",
        timing.sampling_seconds
    )?;
    writeln!(out, "#                {total:.6} seconds (Total)")?;
    writeln!(out, "# ")
}

/// Shortest round-trip decimal, in exponent form for very large or small magnitudes (Rust's
/// `Display` would print hundreds of digits); `nan`, `inf`, `-inf` as numpy reads them.
fn format_value(x: f64) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        }
    } else if x == 0.0 || (1e-5..1e16).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A parsed CmdStan CSV file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CmdStanCsv {
    /// `key = value` pairs of the comments (indentation and ` (Default)` removed), in order.
    pub config: Vec<(String, String)>,
    /// Column names of the header.
    pub columns: Vec<String>,
    /// Warmup rows (the first `save_warmup * num_warmup` rows, as ArviZ splits them).
    pub warmup: Vec<Vec<f64>>,
    /// Posterior rows.
    pub draws: Vec<Vec<f64>>,
    /// The adapted step size.
    pub step_size: Option<f64>,
    /// The diagonal of the inverse mass matrix.
    pub inv_mass_diag: Option<Vec<f64>>,
    /// Seconds of warmup, sampling and total from the elapsed-time block.
    pub elapsed: [Option<f64>; 3],
}

impl CmdStanCsv {
    /// The value of configuration key `key`, if present.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The posterior values of column `name`.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.columns.iter().position(|c| c == name)?;
        Some(self.draws.iter().map(|row| row[j]).collect())
    }
}

/// Reads a CmdStan CSV file (the same layout as ArviZ's `from_cmdstan` expects).
pub fn read_cmdstan_csv<R: BufRead>(input: R) -> Result<CmdStanCsv, CsvError> {
    let mut csv = CmdStanCsv::default();
    let mut rows = Vec::new();
    let mut expect_metric = false;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let line_no = i + 1;
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            parse_comment(&mut csv, comment, &mut expect_metric, line_no)?;
        } else if trimmed.is_empty() {
            continue;
        } else if csv.columns.is_empty() {
            csv.columns = trimmed.split(',').map(str::to_string).collect();
        } else {
            rows.push(parse_row(trimmed, csv.columns.len(), line_no)?);
        }
    }
    let num = |key: &str| csv.config_value(key).and_then(|v| v.parse::<usize>().ok());
    let saved = match csv.config_value("save_warmup") {
        Some("true") | Some("1") => num("num_warmup").unwrap_or(0),
        _ => 0,
    };
    let saved = saved.min(rows.len());
    csv.draws = rows.split_off(saved);
    csv.warmup = rows;
    Ok(csv)
}

fn parse_comment(
    csv: &mut CmdStanCsv,
    comment: &str,
    expect_metric: &mut bool,
    line: usize,
) -> Result<(), CsvError> {
    let text = comment.trim().trim_end_matches("(Default)").trim();
    if *expect_metric {
        *expect_metric = false;
        let values: Result<Vec<f64>, _> =
            text.split(',').map(|v| v.trim().parse::<f64>()).collect();
        csv.inv_mass_diag = Some(values.map_err(|e| CsvError::Parse {
            line,
            message: format!("inverse mass matrix: {e}"),
        })?);
        return Ok(());
    }
    if text.contains("inverse mass matrix") {
        *expect_metric = true;
    } else if let Some(value) = text.strip_prefix("Step size =") {
        let value = value.trim().parse().map_err(|e| CsvError::Parse {
            line,
            message: format!("step size: {e}"),
        })?;
        csv.step_size = Some(value);
    } else if text.contains("seconds (") {
        let number = text
            .trim_start_matches("Elapsed Time:")
            .split_whitespace()
            .next()
            .unwrap_or("");
        let value = number.parse().ok();
        let slot = if text.contains("(Warm-up)") {
            0
        } else if text.contains("(Sampling)") {
            1
        } else {
            2
        };
        csv.elapsed[slot] = value;
    } else if let Some((key, value)) = text.split_once('=') {
        csv.config
            .push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(())
}

fn parse_row(line: &str, n_columns: usize, line_no: usize) -> Result<Vec<f64>, CsvError> {
    let values: Vec<f64> = line
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| CsvError::Parse {
            line: line_no,
            message: e.to_string(),
        })?;
    if values.len() != n_columns {
        return Err(CsvError::Parse {
            line: line_no,
            message: format!("{} values for {n_columns} columns", values.len()),
        });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_names_become_one_based_dotted_names() {
        let converted = cmdstan_names(&["beta[0]", "L[0,1]", "L[2, 10]", "sigma", "theta.3"]);
        assert_eq!(
            converted.ok(),
            Some(vec![
                "beta.1".into(),
                "L.1.2".into(),
                "L.3.11".into(),
                "sigma".into(),
                "theta.3".into()
            ])
        );
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in [
            "", "beta[", "beta[x]", "beta[-1]", "[0]", "a,b", "lp__", "theta.0", "a b", "x.y",
        ] {
            assert!(cmdstan_name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn values_round_trip_through_their_text_form() {
        for x in [
            0.0,
            -1.5,
            1e-7,
            123456.789,
            1e300,
            -2.5e-300,
            std::f64::consts::PI,
        ] {
            assert_eq!(format_value(x).parse::<f64>().ok(), Some(x));
        }
        assert_eq!(format_value(f64::NAN), "nan");
        assert_eq!(format_value(f64::NEG_INFINITY), "-inf");
    }
}
