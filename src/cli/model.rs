//! Loading a model file with its data, and the `tessera logp` report.

use std::fmt::Write;
use std::path::Path;

use tessera::pipeline::{CompiledModel, PipelineOptions, StageTimes, bind_model, compile_files, optimize_model};
use tessera_graph::Graph;
use tessera_sampler::LogDensity;

use super::{CliError, read_file};

/// Which graph of a model to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The log density as the model builds it.
    Model,
    /// The log density after the rewrite pipeline.
    Optimized,
    /// The rewritten log density with its gradient outputs added, rewritten again (what is compiled).
    Gradient,
}

/// Compiles a model file with its data and prints the model's warnings; model and data
/// errors carry their own file:line:column rendering.
pub fn compile(model_path: &Path, data_path: &Path) -> Result<CompiledModel, CliError> {
    let model = compile_files(model_path, data_path, &PipelineOptions::default())?;
    for warning in model.bound.warnings() {
        eprint!("{warning}");
    }
    Ok(model)
}

/// The model's graph at `stage` (nothing is compiled).
pub fn model_graph(model_path: &Path, data_path: &Path, stage: Stage) -> Result<Graph, CliError> {
    let source = read_file(model_path)?;
    let data = read_file(data_path)?;
    let mut times = StageTimes::default();
    let bound = bind_model(&source, &model_path.display().to_string(), &data, &data_path.display().to_string(), &mut times)?;
    if stage == Stage::Model {
        return Ok(bound.logp_graph().clone());
    }
    let (graphs, _) = optimize_model(&bound, &PipelineOptions::default(), &mut times)?;
    Ok(if stage == Stage::Optimized { graphs.optimized } else { graphs.gradient })
}

/// Parses `--point`: a JSON array of `dim` numbers on the unconstrained scale, inline or, as
/// `@FILE`, in a file (a command line cannot hold the point of a large model).
pub fn parse_point(text: Option<&str>, dim: usize) -> Result<Vec<f64>, CliError> {
    let Some(text) = text else { return Ok(vec![0.0; dim]) };
    let file;
    let (text, source) = match text.strip_prefix('@') {
        Some(path) => {
            file = read_file(Path::new(path))?;
            (file.as_str(), format!("--point {path}"))
        }
        None => (text, "--point".to_string()),
    };
    let values: Vec<f64> = serde_json::from_str(text)
        .map_err(|e| CliError::Input(format!("{source}: expected a JSON array of {dim} numbers: {e}")))?;
    if values.len() != dim {
        return Err(CliError::Input(format!("--point has {} values, the model has {dim} unconstrained parameters", values.len())));
    }
    Ok(values)
}

/// The unconstrained layout, logp and gradient at `point` (compiled function), as text or
/// JSON; with `check`, also by the reference interpreter, with the largest difference.
pub fn logp_report(model: &CompiledModel, point: &[f64], json: bool, check: bool) -> Result<String, CliError> {
    let mut density = model.density.clone();
    let mut grad = vec![0.0; model.dim()];
    let logp = density.logp_grad(point, &mut grad).map_err(|e| CliError::Input(e.to_string()))?;
    let interp = if check {
        let (lp, g) = model.bound.logp_and_grad_interp(point).map_err(|e| CliError::Input(e.to_string()))?;
        let diff = g.iter().zip(&grad).map(|(a, b)| (a - b).abs()).fold((lp - logp).abs(), f64::max);
        Some((lp, g, diff))
    } else {
        None
    };
    let bound = &model.bound;
    let mut out = String::new();
    if json {
        let layout: Vec<serde_json::Value> = bound
            .layout()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "offset": p.offset, "size": p.size,
                    "shape": p.shape, "transform": p.transform.to_string(),
                })
            })
            .collect();
        let mut report = serde_json::json!({
            "dim": bound.dim(), "layout": layout, "point": point,
            "logp": finite_or_string(logp),
            "grad": grad.iter().map(|&g| finite_or_string(g)).collect::<Vec<_>>(),
        });
        if let Some((lp, g, diff)) = &interp {
            report["interpreter"] = serde_json::json!({
                "logp": finite_or_string(*lp),
                "grad": g.iter().map(|&g| finite_or_string(g)).collect::<Vec<_>>(),
                "max_abs_difference": finite_or_string(*diff),
            });
        }
        let _ = write!(out, "{report:#}");
        return Ok(out);
    }
    let _ = writeln!(out, "unconstrained layout ({} values):", bound.dim());
    let _ = writeln!(out, "  {:<20} {:>6} {:>6}  {:<12} transform", "name", "offset", "size", "shape");
    for p in bound.layout() {
        let shape = format!("{:?}", p.shape);
        let _ = writeln!(out, "  {:<20} {:>6} {:>6}  {:<12} {}", p.name, p.offset, p.size, shape, p.transform);
    }
    let _ = writeln!(out, "logp = {logp:?}");
    let _ = writeln!(out, "grad = {grad:?}");
    if let Some((lp, g, diff)) = &interp {
        let _ = writeln!(out, "interpreter logp = {lp:?}");
        let _ = writeln!(out, "interpreter grad = {g:?}");
        let _ = writeln!(out, "max |compiled - interpreter| = {diff:e}");
    }
    for note in &model.fallbacks {
        let _ = writeln!(out, "note: {note}");
    }
    Ok(out)
}

/// JSON has no NaN or infinity: those become the strings "nan", "inf", "-inf".
fn finite_or_string(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else if x.is_nan() {
        serde_json::json!("nan")
    } else {
        serde_json::json!(if x > 0.0 { "inf" } else { "-inf" })
    }
}
