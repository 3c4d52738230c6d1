//! `tessera validate`: sample posteriordb cases and check them against the reference means.

use std::path::PathBuf;

use tessera::validate::{find_cases, format_table, run_case, validation_settings};

use super::{CliError, emit};

/// Arguments of `tessera validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Directory of cases: `NAME.tess`, `NAME.json`, `NAME.reference.json`.
    dir: PathBuf,
    /// Only these cases (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Random seed of every run.
    #[arg(long, default_value_t = 20240601)]
    seed: u64,
    /// Tuning iterations per chain (the validation protocol uses 1000).
    #[arg(long, default_value_t = 1000)]
    tune: usize,
    /// Draws per chain (the validation protocol uses 1000).
    #[arg(long, default_value_t = 1000)]
    draws: usize,
    /// Print one JSON object per case instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `tessera validate`; fails (exit code 1) if any case fails.
pub fn run(args: &ValidateArgs) -> Result<(), CliError> {
    let mut cases = find_cases(&args.dir).map_err(|e| CliError::Input(format!("cannot read {}: {e}", args.dir.display())))?;
    if let Some(missing) = args.only.iter().find(|n| !cases.iter().any(|c| &c.name == *n)) {
        return Err(CliError::Input(format!("no case `{missing}` in {}", args.dir.display())));
    }
    if !args.only.is_empty() {
        cases.retain(|c| args.only.contains(&c.name));
    }
    if cases.is_empty() {
        return Err(CliError::Input(format!("no cases (NAME.tess + NAME.json + NAME.reference.json) in {}", args.dir.display())));
    }
    let settings = tessera_sampler::Settings { tune: args.tune, draws: args.draws, ..validation_settings(args.seed) };
    let mut outcomes = Vec::new();
    for case in &cases {
        let outcome = run_case(case, &settings);
        if args.json {
            let worst = outcome.worst();
            let line = serde_json::json!({
                "name": outcome.name, "passed": outcome.passed(), "dim": outcome.dim,
                "worst_z": worst.map(|c| c.z).filter(|z| z.is_finite()), "worst_at": worst.map(|c| c.name.clone()),
                "divergences": outcome.divergences, "error": outcome.error,
            });
            emit(format_args!("{line}\n"))?;
        } else {
            eprintln!("{}: {}", outcome.name, if outcome.passed() { "pass" } else { "FAIL" });
        }
        outcomes.push(outcome);
    }
    if !args.json {
        emit(format_table(&outcomes))?;
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    if failed > 0 {
        return Err(CliError::Failed(format!("{failed} of {} posteriors failed validation", outcomes.len())));
    }
    Ok(())
}
