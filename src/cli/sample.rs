//! `tessera sample`: compile, sample with progress bars, print the summary and warnings, write
//! CSV and JSON.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera::pipeline::CompiledModel;
use tessera::report::{RunTiming, csv_path, summary_json, warnings, write_csv};
use tessera_sampler::diagnostics::format_summary;
use tessera_sampler::{CancelToken, ChainStatus, NoProgress, Progress, ProgressUpdate, Settings, Trace, sample_with};

use super::{CliError, emit};

/// Arguments of `tessera sample`.
#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// The model file (`.tess`).
    model: PathBuf,
    /// Its data (JSON).
    #[arg(long)]
    data: PathBuf,
    /// Number of chains.
    #[arg(long, default_value_t = 4)]
    chains: usize,
    /// Posterior draws per chain.
    #[arg(long, default_value_t = 1000)]
    draws: usize,
    /// Tuning (warmup) iterations per chain.
    #[arg(long, default_value_t = 1000)]
    tune: usize,
    /// Random seed (each chain's stream depends only on the seed and the chain index).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads (default: the machine's cores). The draws do not depend on it.
    #[arg(long)]
    cores: Option<usize>,
    /// Target acceptance statistic of step-size adaptation, in (0, 1).
    #[arg(long, default_value_t = 0.8)]
    target_accept: f64,
    /// Maximum tree depth (at most 2^depth - 1 leapfrog steps per draw).
    #[arg(long = "max-treedepth", default_value_t = 10)]
    max_treedepth: u32,
    /// Write the draws (constrained scale) as CmdStan CSV: this path for one chain, else
    /// `STEM_1.csv`, `STEM_2.csv`, … beside it (read with `arviz.from_cmdstan`); a directory
    /// (existing, or a path ending in `/`, created) gets `MODEL.csv` inside it. Checked before
    /// sampling.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write the summary, divergences, counts and timing as JSON.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// No progress output and no compile/timing lines (the summary and warnings still print).
    #[arg(long)]
    quiet: bool,
}

impl SampleArgs {
    fn settings(&self) -> Settings {
        Settings {
            chains: self.chains,
            draws: self.draws,
            tune: self.tune,
            seed: self.seed,
            cores: self.cores.unwrap_or(0),
            target_accept: self.target_accept,
            max_tree_depth: self.max_treedepth,
            ..Default::default()
        }
    }
}

/// Runs `tessera sample`.
pub fn run(args: &SampleArgs) -> Result<(), CliError> {
    let start = Instant::now();
    if args.cores == Some(0) {
        return Err(CliError::Input("--cores must be at least 1".into()));
    }
    if args.draws == 0 {
        return Err(CliError::Input("--draws must be at least 1: the summary and diagnostics are computed from the draws".into()));
    }
    let name = args.model.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let draws = args.output.as_deref().map(|o| draws_path(o, &name)).transpose()?;
    check_outputs(draws.as_deref(), args.chains, args.summary_json.as_deref())?;
    let model = super::model::compile(&args.model, &args.data)?;
    let settings = args.settings();
    settings.validate(model.dim()).map_err(|e| CliError::Input(e.to_string()))?;
    if !args.quiet {
        eprintln!("{}", compile_line(&model));
        for note in &model.fallbacks {
            eprintln!("note: {note}");
        }
    }
    let t_sampling = Instant::now();
    let trace = sample_chains(&model, &settings, args.quiet)?;
    let sampling_wall_s = t_sampling.elapsed().as_secs_f64();
    let t_summary = Instant::now();
    let rows = model.summarize(&trace).map_err(|e| CliError::Internal(e.to_string()))?;
    let summary_s = t_summary.elapsed().as_secs_f64();
    emit(format_summary(&rows))?;
    let compile_ms = model.times.total().as_secs_f64() * 1e3;
    if !args.quiet {
        let timing = RunTiming::of(&trace, compile_ms, start.elapsed().as_secs_f64());
        let evals: u64 = trace.chains.iter().map(|c| c.grad_evals_tune + c.grad_evals_sampling).sum();
        eprintln!(
            "sampled {} chains x ({} tune + {} draws) in {:.3} s (tuning {:.3} s, drawing {:.3} s), {evals} gradient evaluations; sampling wall {:.3} s, summary {:.3} s, total {:.3} s",
            trace.chains.len(),
            settings.tune,
            settings.draws,
            timing.tune_s + timing.sample_s,
            timing.tune_s,
            timing.sample_s,
            sampling_wall_s,
            summary_s,
            timing.total_s
        );
    }
    for warning in warnings(&trace, &rows) {
        eprintln!("warning: {warning}");
    }
    // The small summary first: if writing the draws fails after all, the summary is kept.
    if let Some(path) = &args.summary_json {
        let timing = RunTiming::of(&trace, compile_ms, start.elapsed().as_secs_f64());
        let doc = summary_json(&trace, &rows, &timing);
        std::fs::write(path, format!("{doc:#}\n")).map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(output) = &draws {
        let paths = write_csv(&model, &trace, output, &name)
            .map_err(|e| CliError::Input(format!("cannot write {}: {e}", output.display())))?;
        if !args.quiet {
            let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            eprintln!("wrote {}", list.join(", "));
        }
    }
    Ok(())
}

/// Where `--output` puts the draws: the path itself, or `DIR/MODEL.csv` when it names a
/// directory: an existing one, or any path ending in a separator, which is created.
fn draws_path(output: &Path, model_name: &str) -> Result<PathBuf, CliError> {
    if output.as_os_str().to_string_lossy().ends_with(std::path::MAIN_SEPARATOR) && !output.exists() {
        std::fs::create_dir_all(output).map_err(|e| CliError::Input(format!("cannot create the directory {}: {e}", output.display())))?;
    }
    Ok(if output.is_dir() { output.join(format!("{model_name}.csv")) } else { output.to_path_buf() })
}

/// Checks before sampling that every output file can be written, so a long run is not lost to
/// a mistyped directory, and that the summary would not overwrite a draws file.
fn check_outputs(draws: Option<&Path>, chains: usize, summary: Option<&Path>) -> Result<(), CliError> {
    let csv_files: Vec<PathBuf> = draws.map(|d| (0..chains).map(|c| csv_path(d, c, chains)).collect()).unwrap_or_default();
    if let Some(summary) = summary
        && let Some(clash) = csv_files.iter().find(|p| same_file(p, summary))
    {
        return Err(CliError::Input(format!("--summary-json {} would overwrite the draws file {}", summary.display(), clash.display())));
    }
    for path in csv_files.iter().map(PathBuf::as_path).chain(summary) {
        check_writable(path).map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The directory a file path is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Whether two paths name the same file (their directories resolved, so `./a` is `a`).
fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        let dir = directory_of(p);
        (dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()), p.file_name().map(ToOwned::to_owned))
    };
    resolve(a) == resolve(b)
}

/// Whether `path` can be written, without changing it: an existing file is opened for
/// appending; a new one is created and removed again.
fn check_writable(path: &Path) -> Result<(), String> {
    let dir = directory_of(path);
    if !dir.is_dir() {
        return Err(format!("the directory {} does not exist", dir.display()));
    }
    if path.is_dir() {
        return Err("it is a directory".into());
    }
    if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).map(drop).map_err(|e| e.to_string())
    } else {
        std::fs::File::create(path).and_then(|_| std::fs::remove_file(path)).map_err(|e| e.to_string())
    }
}

fn compile_line(model: &CompiledModel) -> String {
    let t = &model.times;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    format!(
        "compiled {} parameters in {:.2} ms (parse {:.2}, data {:.2}, bind {:.2}, rewrite {:.2}, gradient {:.2}, lowering {:.2}, cranelift {:.2}, constrained {:.2}); \
         {} nodes -> {} after rewriting, {} with gradient",
        model.dim(),
        ms(t.total()),
        ms(t.parse),
        ms(t.data),
        ms(t.bind),
        ms(t.rewrite),
        ms(t.gradient),
        ms(t.lowering),
        ms(t.cranelift),
        ms(t.constrained),
        model.nodes.model,
        model.nodes.optimized,
        model.nodes.gradient_optimized
    )
}

fn sample_chains(model: &CompiledModel, settings: &Settings, quiet: bool) -> Result<Trace, CliError> {
    let cancel = CancelToken::new();
    let result = if quiet {
        sample_with(&model.density, settings, &NoProgress, &cancel)
    } else if std::io::stderr().is_terminal() {
        let bars = Bars::new(settings);
        let result = sample_with(&model.density, settings, &bars, &cancel);
        bars.finish();
        result
    } else {
        sample_with(&model.density, settings, &PlainLines::new(settings), &cancel)
    };
    result.map_err(|e| match e {
        tessera_sampler::SampleError::InvalidSettings(msg) => CliError::Input(msg),
        e => CliError::Failed(format!("sampling failed: {e}")),
    })
}

/// The message of a chain's progress: phase, divergences, step size.
fn progress_message(u: &ProgressUpdate) -> String {
    let phase = match u.status {
        ChainStatus::Running if u.tuning => "tuning",
        ChainStatus::Running => "sampling",
        ChainStatus::Finished => "done",
        ChainStatus::Failed => "FAILED",
        ChainStatus::Cancelled => "cancelled",
    };
    format!("{phase}, {} divergences, step size {:.3}", u.divergences + u.warmup_divergences, u.step_size)
}

/// One indicatif bar per chain (on a terminal).
struct Bars {
    _multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl Bars {
    fn new(settings: &Settings) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("chain {prefix:>2} [{bar:30}] {pos:>5}/{len} {per_sec:>12} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let total = (settings.tune + settings.draws) as u64;
        let bars = (0..settings.chains)
            .map(|c| {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(c.to_string());
                bar
            })
            .collect();
        Bars { _multi: multi, bars }
    }

    fn finish(&self) {
        for bar in &self.bars {
            bar.finish();
        }
    }
}

impl Progress for Bars {
    fn update(&self, u: &ProgressUpdate) {
        let Some(bar) = self.bars.get(u.chain) else { return };
        bar.set_position(u.draws_done as u64);
        // Formatting costs more than a cheap model's draw: refresh the message every 16 draws.
        if u.draws_done.is_multiple_of(16) || u.status != ChainStatus::Running || u.draws_done == 1 {
            bar.set_message(progress_message(u));
        }
    }
}

/// Plain progress lines (stderr is not a terminal): one per chain at every quarter and at the end.
struct PlainLines {
    /// Per chain: the last quarter reported, and when its first update came.
    chains: Mutex<Vec<(usize, Option<Instant>)>>,
}

impl PlainLines {
    fn new(settings: &Settings) -> Self {
        PlainLines { chains: Mutex::new(vec![(0, None); settings.chains]) }
    }
}

impl Progress for PlainLines {
    fn update(&self, u: &ProgressUpdate) {
        // Running chains report quarters 1..=3; the end (finished or not) is reported once.
        let quarter = if u.status == ChainStatus::Running { (4 * u.draws_done / u.total_draws.max(1)).min(3) } else { 4 };
        let Ok(mut chains) = self.chains.lock() else { return };
        let Some((last, start)) = chains.get_mut(u.chain) else { return };
        let start = *start.get_or_insert_with(Instant::now);
        if quarter <= *last {
            return;
        }
        *last = quarter;
        let rate = u.draws_done as f64 / start.elapsed().as_secs_f64().max(1e-9);
        eprintln!("chain {}: {}/{} draws, {rate:.0} draws/s, {}", u.chain, u.draws_done, u.total_draws, progress_message(u));
    }
}
