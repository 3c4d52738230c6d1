//! `tessera bench`: compile time of every stage, logp+gradient time per evaluation, dimension,
//! node counts before and after rewriting.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tessera::pipeline::{CompiledModel, PipelineOptions, StageTimes, compile_model};
use tessera_sampler::LogDensity;

use super::{CliError, emit, read_file};

/// Arguments of `tessera bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The model file (`.tess`).
    model: PathBuf,
    /// Its data (JSON).
    #[arg(long)]
    data: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Number of compilations whose stage times are reported as medians.
    #[arg(long, default_value_t = 5)]
    compiles: usize,
    /// Seconds of logp+gradient calls to time (at least 1).
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

/// Runs `tessera bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if args.compiles == 0 {
        return Err(CliError::Input("--compiles must be at least 1".into()));
    }
    if !(args.seconds >= 1.0 && args.seconds.is_finite()) {
        return Err(CliError::Input("--seconds must be at least 1".into()));
    }
    let source = read_file(&args.model)?;
    let data = read_file(&args.data)?;
    let (model_name, data_name) = (args.model.display().to_string(), args.data.display().to_string());
    let opts = PipelineOptions::default();
    let first = compile_model(&source, &model_name, &data, &data_name, &opts)?;
    let mut runs = vec![first.times];
    for _ in 1..args.compiles {
        runs.push(compile_model(&source, &model_name, &data, &data_name, &opts)?.times);
    }
    let median = median_times(&runs);
    let point: Vec<f64> = (1..=first.dim()).map(|i| 0.3 * (i as f64).sin()).collect();
    let eval = time_evaluations(&first, &point, Duration::from_secs_f64(args.seconds))?;
    let name = args.model.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    if args.json {
        emit(format_args!("{:#}\n", bench_json(&name, &first, &runs[0], &median, &eval)))?;
    } else {
        emit(bench_text(&name, &first, &runs[0], &median, &eval))?;
    }
    Ok(())
}

/// Timing of logp+gradient calls.
struct EvalTiming {
    /// Median seconds per call.
    median_s: f64,
    /// Calls made.
    calls: u64,
    /// The log density at the point.
    logp: f64,
}

/// Calls logp+gradient in batches (a batch lasts at least ~20 µs so the clock's cost does not
/// count) for at least `budget`, and returns the median per-call time over the batches.
fn time_evaluations(model: &CompiledModel, point: &[f64], budget: Duration) -> Result<EvalTiming, CliError> {
    let mut density = model.density.clone();
    let mut grad = vec![0.0; model.dim()];
    let mut call = |grad: &mut [f64]| density.logp_grad(point, grad).map_err(|e| CliError::Failed(format!("logp+gradient failed: {e}")));
    let logp = call(&mut grad)?;
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            call(&mut grad)?;
        }
        if t.elapsed() >= Duration::from_micros(20) || batch >= 1 << 20 {
            break;
        }
        batch *= 2;
    }
    let start = Instant::now();
    let mut per_call = Vec::new();
    while start.elapsed() < budget || per_call.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(call(&mut grad)?);
        }
        per_call.push(t.elapsed().as_secs_f64() / batch as f64);
    }
    let calls = per_call.len() as u64 * batch;
    per_call.sort_by(f64::total_cmp);
    Ok(EvalTiming { median_s: per_call[per_call.len() / 2], calls, logp })
}

/// Stage-by-stage medians over several compilations.
fn median_times(runs: &[StageTimes]) -> StageTimes {
    let med = |f: fn(&StageTimes) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    StageTimes {
        parse: med(|t| t.parse),
        data: med(|t| t.data),
        bind: med(|t| t.bind),
        rewrite: med(|t| t.rewrite),
        gradient: med(|t| t.gradient),
        lowering: med(|t| t.lowering),
        cranelift: med(|t| t.cranelift),
        constrained: med(|t| t.constrained),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_json(name: &str, model: &CompiledModel, first: &StageTimes, median: &StageTimes, eval: &EvalTiming) -> serde_json::Value {
    let stages = |t: &StageTimes| {
        let mut map = serde_json::Map::new();
        for (stage, d) in t.stages() {
            map.insert(format!("{stage}_ms"), serde_json::json!(ms(d)));
        }
        map.insert("compile_ms".into(), serde_json::json!(ms(t.compile_total())));
        map.insert("compile_given_data_ms".into(), serde_json::json!(ms(t.compile_given_data())));
        map.insert("total_ms".into(), serde_json::json!(ms(t.total())));
        serde_json::Value::Object(map)
    };
    let n = &model.nodes;
    serde_json::json!({
        "model": name,
        "dim": model.dim(),
        "compile_first": stages(first),
        "compile_median": stages(median),
        "compiled": model.compile_stats.is_some(),
        "eval_us": eval.median_s * 1e6,
        "eval_calls": eval.calls,
        "logp": if eval.logp.is_finite() { serde_json::json!(eval.logp) } else { serde_json::Value::Null },
        "nodes": {
            "model": n.model, "optimized": n.optimized,
            "gradient": n.gradient, "gradient_optimized": n.gradient_optimized,
        },
        "code_bytes": model.compile_stats.as_ref().map(|s| s.code_bytes),
        "fallbacks": model.fallbacks,
    })
}

fn bench_text(name: &str, model: &CompiledModel, first: &StageTimes, median: &StageTimes, eval: &EvalTiming) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "model {name}: {} unconstrained parameters", model.dim());
    let _ = writeln!(out, "{:<12} {:>12} {:>12}", "stage", "first ms", "median ms");
    for ((stage, a), (_, b)) in first.stages().iter().zip(median.stages()) {
        let _ = writeln!(out, "{stage:<12} {:>12.3} {:>12.3}", ms(*a), ms(b));
    }
    let _ = writeln!(out, "{:<12} {:>12.3} {:>12.3}   (model file -> callable logp+gradient)", "compile", ms(first.compile_total()), ms(median.compile_total()));
    let _ = writeln!(out, "{:<12} {:>12.3} {:>12.3}   (the same without reading the data JSON)", "given data", ms(first.compile_given_data()), ms(median.compile_given_data()));
    let _ = writeln!(out, "{:<12} {:>12.3} {:>12.3}   (with the constrained-values function)", "total", ms(first.total()), ms(median.total()));
    let n = &model.nodes;
    let _ = writeln!(
        out,
        "nodes: logp {} -> {} after rewriting; logp+gradient {} -> {} after rewriting",
        n.model, n.optimized, n.gradient, n.gradient_optimized
    );
    let _ = writeln!(out, "logp+gradient: {:.3} us per evaluation (median over {} calls), logp = {:?}", eval.median_s * 1e6, eval.calls, eval.logp);
    for note in &model.fallbacks {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
