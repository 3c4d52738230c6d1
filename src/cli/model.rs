//! Loading a model file with its data, and the `tessera logp` report.

use std::fmt::Write;
use std::path::Path;

use tessera_graph::{Graph, with_gradients};
use tessera_model::{BoundModel, DataSet, parse_model};

use super::{CliError, read_file};

/// Which graph of a model to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The log density as the model builds it.
    Model,
    /// The log density with its gradient outputs added.
    Gradient,
}

/// Reads, parses and binds a model file to its JSON data. Model and data errors carry their
/// own file:line:column rendering.
pub fn load_model(model_path: &Path, data_path: &Path) -> Result<BoundModel, CliError> {
    let source = read_file(model_path)?;
    let model = parse_model(&source, &model_path.display().to_string()).map_err(|e| CliError::Rendered(e.to_string()))?;
    let json = read_file(data_path)?;
    let data = DataSet::from_json(&json, &data_path.display().to_string()).map_err(|e| CliError::Rendered(e.to_string()))?;
    model.bind(&data).map_err(|e| CliError::Rendered(e.to_string()))
}

/// The model's graph at `stage`.
pub fn model_graph(bound: &BoundModel, stage: Stage) -> Result<Graph, CliError> {
    match stage {
        Stage::Model => Ok(bound.logp_graph().clone()),
        Stage::Gradient => with_gradients(bound.logp_graph(), &["theta"]).map_err(|e| CliError::Internal(e.to_string())),
    }
}

/// Parses `--point`: a JSON array of `dim` numbers on the unconstrained scale.
pub fn parse_point(text: Option<&str>, dim: usize) -> Result<Vec<f64>, CliError> {
    let Some(text) = text else { return Ok(vec![0.0; dim]) };
    let values: Vec<f64> = serde_json::from_str(text)
        .map_err(|e| CliError::Input(format!("--point: expected a JSON array of {dim} numbers: {e}")))?;
    if values.len() != dim {
        return Err(CliError::Input(format!("--point has {} values, the model has {dim} unconstrained parameters", values.len())));
    }
    Ok(values)
}

/// The unconstrained layout, logp and gradient at `point`, as text or JSON.
pub fn logp_report(bound: &BoundModel, point: &[f64], json: bool) -> Result<String, CliError> {
    let (logp, grad) = bound.logp_and_grad_interp(point).map_err(|e| CliError::Input(e.to_string()))?;
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
        let report = serde_json::json!({
            "dim": bound.dim(), "layout": layout, "point": point,
            "logp": finite_or_string(logp),
            "grad": grad.iter().map(|&g| finite_or_string(g)).collect::<Vec<_>>(),
        });
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
