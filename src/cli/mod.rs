//! Command definitions and dispatch of the `tessera` tool.

mod bench;
mod inputs;
mod inspect;
mod model;
mod sample;
mod validate;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tessera_graph::{Graph, eval, parse, print, summary, to_dot, verify, with_gradients};

/// tessera: a tensor graph compiler backend for probabilistic programming.
#[derive(Parser, Debug)]
#[command(name = "tessera", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse, verify and print a graph (`.ir`), or a model's graph (`.tess` with `--data`).
    Print {
        #[command(flatten)]
        source: GraphSource,
        /// Also print a summary (node counts by op, sizes of intermediates).
        #[arg(long)]
        summary: bool,
    },
    /// Print a graph as Graphviz DOT (`tessera dot g.ir | dot -Tpng > g.png`).
    Dot {
        #[command(flatten)]
        source: GraphSource,
    },
    /// Compile a model and sample its posterior with NUTS; prints the summary table.
    Sample(sample::SampleArgs),
    /// Compile time of every stage and logp+gradient time per evaluation of a model.
    Bench(bench::BenchArgs),
    /// Sample posteriordb cases (`NAME.tess`, `NAME.json`, `NAME.reference.json` in DIR) and
    /// check every reference mean within 4 Monte Carlo standard errors.
    Validate(validate::ValidateArgs),
    /// A model's unconstrained layout, and its log density and gradient at a point.
    Logp {
        /// The model file (`.tess`).
        model: PathBuf,
        /// Its data (JSON: names to numbers or nested lists).
        #[arg(long)]
        data: PathBuf,
        /// The unconstrained point, a JSON array, or `@FILE` for one in a file (default: all
        /// zeros).
        #[arg(long)]
        point: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also evaluate with the reference interpreter and report the largest difference.
        #[arg(long)]
        check: bool,
    },
    /// Evaluate a graph with the reference interpreter; prints the outputs as JSON.
    Eval {
        /// A graph in the text form (`.ir`).
        file: PathBuf,
        /// JSON object mapping each input name to a number or nested list.
        #[arg(long)]
        inputs: PathBuf,
    },
    /// Print the graph with the gradient of its first output added as further outputs.
    Grad {
        /// A graph in the text form (`.ir`).
        file: PathBuf,
        /// Comma-separated input names to differentiate with respect to.
        #[arg(long, value_delimiter = ',', required = true)]
        wrt: Vec<String>,
        /// Also print node counts before and after adding the gradient.
        #[arg(long)]
        stats: bool,
    },
    /// Run the rewrite pipeline on a graph and print the optimized graph.
    Opt {
        /// A graph in the text form (`.ir`).
        file: PathBuf,
        /// Comma-separated passes to run, in order (default: canonicalize, simplify,
        /// stabilize, specialize, fuse).
        #[arg(long)]
        passes: Option<String>,
        /// Print every rule firing: rule, node before, node after.
        #[arg(long)]
        trace: bool,
        /// Print how often each rule fired, per pass.
        #[arg(long)]
        stats: bool,
    },
    /// Optimize and JIT-compile a graph; print the time of every stage.
    Compile {
        /// A graph in the text form (`.ir`).
        file: PathBuf,
        /// Add the gradient of the first output with respect to these inputs first.
        #[arg(long, value_delimiter = ',')]
        wrt: Vec<String>,
        /// Print the Cranelift IR (`--emit clif`) instead of the statistics.
        #[arg(long, value_parser = ["clif"])]
        emit: Option<String>,
    },
}

/// A graph file, or a model file with its data.
#[derive(clap::Args, Debug)]
struct GraphSource {
    /// A graph in the text form (`.ir`) or a model (`.tess`, needs `--data`).
    file: PathBuf,
    /// The model's data (JSON); makes FILE a model.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Which graph of a model to show.
    #[arg(long, value_enum, default_value = "model")]
    stage: model::Stage,
}

impl GraphSource {
    fn load(&self) -> Result<Graph, CliError> {
        match &self.data {
            Some(data) => model::model_graph(&self.file, data, self.stage),
            None if self.file.extension().is_some_and(|e| e == "tess") => {
                Err(CliError::Input(format!("{} is a model: give its data with --data DATA.json", self.file.display())))
            }
            None => load_graph(&self.file),
        }
    }
}

/// A failure of a command: bad input (exit code 2), a failed check or an internal failure
/// (exit code 1).
#[derive(Debug)]
pub enum CliError {
    /// A check the command performs failed (for example a validation case).
    Failed(String),
    /// The user's files or arguments are wrong.
    Input(String),
    /// The user's input is wrong, with a message already rendered (file:line:col, underline).
    Rendered(String),
    /// Something failed that is not the user's input.
    Internal(String),
    /// Standard output was closed by its reader (`tessera … | head`): the command stops
    /// quietly with the exit code of a process ended by SIGPIPE.
    OutputClosed,
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) | CliError::Rendered(_) => 2,
            CliError::Internal(_) | CliError::Failed(_) => 1,
            CliError::OutputClosed => 141,
        }
    }
}

impl From<tessera::pipeline::PipelineError> for CliError {
    fn from(e: tessera::pipeline::PipelineError) -> Self {
        match e {
            tessera::pipeline::PipelineError::Model(msg) => CliError::Rendered(msg),
            e if e.is_user_error() => CliError::Input(e.to_string()),
            e => CliError::Internal(e.to_string()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(msg) => write!(f, "error: {msg}"),
            CliError::Rendered(msg) => write!(f, "{msg}"),
            CliError::Internal(msg) => write!(f, "internal error: {msg}"),
            CliError::Failed(msg) => write!(f, "error: {msg}"),
            CliError::OutputClosed => Ok(()),
        }
    }
}

/// Writes `text` to standard output; a reader that has gone away ends the command quietly
/// ([`CliError::OutputClosed`]), any other write failure is an error.
pub fn emit(text: impl fmt::Display) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match write!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::OutputClosed),
        Err(e) => Err(CliError::Internal(format!("cannot write to standard output: {e}"))),
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Print { source, summary: with_summary } => {
            let graph = source.load()?;
            emit(print(&graph))?;
            if with_summary {
                emit(format_args!("\n{}\n", summary(&graph)))?;
            }
        }
        Command::Dot { source } => emit(to_dot(&source.load()?))?,
        Command::Sample(args) => sample::run(&args)?,
        Command::Bench(args) => bench::run(&args)?,
        Command::Validate(args) => validate::run(&args)?,
        Command::Logp { model, data, point, json, check } => {
            let compiled = model::compile(&model, &data)?;
            let point = model::parse_point(point.as_deref(), compiled.dim())?;
            emit(model::logp_report(&compiled, &point, json, check)?)?;
        }
        Command::Opt { file, passes, trace, stats } => {
            emit(inspect::opt_report(&load_graph(&file)?, passes.as_deref(), trace, stats)?)?;
        }
        Command::Compile { file, wrt, emit: emit_clif } => {
            emit(inspect::compile_report(&load_graph(&file)?, &wrt, emit_clif.is_some())?)?;
        }
        Command::Eval { file, inputs } => {
            let graph = load_graph(&file)?;
            let text = read_file(&inputs)?;
            let values = inputs::parse_inputs(&graph, &text).map_err(|e| CliError::Input(format!("{}: {e}", inputs.display())))?;
            let outputs = eval(&graph, &values).map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
            emit(format_args!("{}\n", inputs::outputs_to_json(&outputs)))?;
        }
        Command::Grad { file, wrt, stats } => {
            let graph = load_graph(&file)?;
            let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
            let with_grad = with_gradients(&graph, &names).map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
            emit(print(&with_grad))?;
            if stats {
                emit(format_args!("\n// live nodes: {} forward, {} with gradient\n", graph.live_nodes().len(), with_grad.live_nodes().len()))?;
            }
        }
    }
    Ok(())
}

/// Reads a file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<String, CliError> {
    tessera::pipeline::read_text(path).map_err(|e| CliError::Input(e.to_string()))
}

/// Reads, parses and verifies a graph file.
fn load_graph(path: &Path) -> Result<Graph, CliError> {
    let text = read_file(path)?;
    let graph = parse(&text).map_err(|e| CliError::Input(format!("{}:{e}", path.display())))?;
    verify(&graph).map_err(|e| CliError::Internal(format!("{}: parsed graph fails verification: {e}", path.display())))?;
    Ok(graph)
}
