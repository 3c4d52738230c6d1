//! `tessera opt` and `tessera compile`: the rewrite pipeline and the JIT on a graph file.

use std::fmt::Write;
use std::time::Instant;

use tessera_codegen::{CompileOptions, compile_with_stats, emit_clif};
use tessera_graph::{Graph, print, with_gradients};
use tessera_rewrite::{Pass, PipelineSettings, optimize};

use super::CliError;

/// Runs the rewrite pipeline (all passes, or the comma-separated `passes`) and returns the
/// printed optimized graph, followed by the per-rule counts and trace when asked for.
pub fn opt_report(graph: &Graph, passes: Option<&str>, trace: bool, stats: bool) -> Result<String, CliError> {
    let mut settings = PipelineSettings { trace, ..PipelineSettings::default() };
    if let Some(list) = passes {
        settings.passes = Pass::parse_list(list).map_err(|e| CliError::Input(format!("--passes: {e}")))?;
    }
    let (optimized, report) = optimize(graph, &settings).map_err(|e| CliError::Internal(e.to_string()))?;
    let mut out = print(&optimized);
    if stats || trace {
        // As comments, so the output still parses as a graph.
        out.push('\n');
        for line in report.to_string().lines() {
            let _ = writeln!(out, "// {line}");
        }
    }
    Ok(out)
}

/// Optimizes (and optionally differentiates) a graph, compiles it, and reports the time of
/// every stage; with `emit_clif`, the Cranelift IR instead.
pub fn compile_report(graph: &Graph, wrt: &[String], emit_clif_text: bool) -> Result<String, CliError> {
    let start = Instant::now();
    let graph = if wrt.is_empty() {
        graph.clone()
    } else {
        let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
        with_gradients(graph, &names).map_err(|e| CliError::Input(e.to_string()))?
    };
    let gradient_time = start.elapsed();
    let start = Instant::now();
    let (optimized, report) =
        optimize(&graph, &PipelineSettings::default()).map_err(|e| CliError::Internal(e.to_string()))?;
    let rewrite_time = start.elapsed();
    let opts = CompileOptions::default();
    if emit_clif_text {
        return emit_clif(&optimized, &opts).map_err(|e| CliError::Input(e.to_string()));
    }
    let (_compiled, stats) = compile_with_stats(&optimized, &opts).map_err(|e| CliError::Input(e.to_string()))?;
    let mut out = String::new();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let _ = writeln!(out, "gradient   {:>9.3} ms", ms(gradient_time));
    let _ = writeln!(out, "rewrite    {:>9.3} ms  ({} → {} nodes)", ms(rewrite_time), report.nodes_before, report.nodes_after);
    let _ = write!(out, "{stats}");
    Ok(out)
}
