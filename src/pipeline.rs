//! The whole pipeline as a library: model file + data → bound model → rewrite → gradient →
//! rewrite → Cranelift, with the time of every stage and node counts before/after rewriting.
//!
//! ```no_run
//! use tessera::pipeline::{PipelineOptions, compile_files};
//! use tessera::sampler::{Settings, sample};
//!
//! let model = compile_files("examples/eight_schools.tess".as_ref(), "examples/eight_schools.json".as_ref(), &PipelineOptions::default())?;
//! println!("compiled in {:.2} ms", model.times.compile_total().as_secs_f64() * 1e3);
//! let trace = sample(&model.density, &Settings::default())?;
//! let rows = model.summarize(&trace)?; // constrained scale, parameters and derived quantities
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_codegen::{ArgMut, ArgRef, CodegenError, CompileOptions, CompileStats, Compiled, LogDensityFn, Workspace, compile_with_stats};
use tessera_graph::{DType, Graph, with_gradients};
use tessera_model::{BoundModel, DataSet, parse_model};
use tessera_rewrite::{Pass, PipelineSettings, optimize};
use tessera_sampler::diagnostics::{DiagnosticsError, SummaryRow, summarize};
use tessera_sampler::{LogDensity, LogpError, Trace};

/// What can go wrong while turning a model file and its data into compiled functions.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not UTF-8 text.
    #[error("{path}:{line}:{column}: invalid UTF-8 (byte 0x{byte:02x}); the file must be UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in characters) of the first invalid byte.
        column: usize,
        /// The byte.
        byte: u8,
    },
    /// The model or its data is wrong; the message is rendered (file:line:col, underline).
    #[error("{0}")]
    Model(String),
    /// A graph transformation (rewrite or gradient) failed.
    #[error("{stage}: {message}")]
    Graph {
        /// The stage that failed.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Code generation failed.
    #[error("codegen ({what}): {source}")]
    Codegen {
        /// Which function was being compiled.
        what: &'static str,
        /// The codegen error.
        source: CodegenError,
    },
}

impl PipelineError {
    /// Whether the error is the user's (unreadable file, model or data error) rather than an
    /// internal failure.
    pub fn is_user_error(&self) -> bool {
        matches!(self, PipelineError::Io { .. } | PipelineError::NotUtf8 { .. } | PipelineError::Model(_))
    }
}

/// Whether the default pipeline runs the fusion pass (the one-line switch while codegen's
/// lowering of `Op::Fused` matures).
pub const FUSE_BY_DEFAULT: bool = true;

/// Switches of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Run the rewrite pipeline before and after differentiation.
    pub rewrite: bool,
    /// Run the rewrite pipeline's fusion pass (elementwise chains into `Op::Fused` kernels).
    pub fuse: bool,
    /// Cranelift options.
    pub compile: CompileOptions,
    /// Fall back to the reference interpreter when codegen cannot lower a graph (slow, but
    /// every model the language accepts can then be sampled).
    pub interpreter_fallback: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self { rewrite: true, fuse: FUSE_BY_DEFAULT, compile: CompileOptions::default(), interpreter_fallback: true }
    }
}

/// Wall time of every stage.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Parsing the model file (reading excluded).
    pub parse: Duration,
    /// Reading the data file's JSON (reading the file from disk excluded).
    pub data: Duration,
    /// Binding the data to the model (shape checks, data-only expressions, the graph).
    pub bind: Duration,
    /// Rewriting the log-density graph and then the gradient graph.
    pub rewrite: Duration,
    /// Building the symbolic gradient.
    pub gradient: Duration,
    /// Planning and building Cranelift IR of logp+gradient.
    pub lowering: Duration,
    /// Cranelift code generation and finalization of logp+gradient.
    pub cranelift: Duration,
    /// Compiling the constrained-values function (all its stages).
    pub constrained: Duration,
}

impl StageTimes {
    /// Model file and data → callable logp+gradient: every stage except the constrained
    /// function.
    pub fn compile_total(&self) -> Duration {
        self.parse + self.data + self.bind + self.rewrite + self.gradient + self.lowering + self.cranelift
    }

    /// [`compile_total`](Self::compile_total) without reading the data JSON: what compiling
    /// costs once the data is in memory (the peers' compile times start there).
    pub fn compile_given_data(&self) -> Duration {
        self.compile_total() - self.data
    }

    /// Every stage, the constrained function included.
    pub fn total(&self) -> Duration {
        self.compile_total() + self.constrained
    }

    /// `(name, duration)` of every stage, in pipeline order.
    pub fn stages(&self) -> [(&'static str, Duration); 8] {
        [
            ("parse", self.parse),
            ("data", self.data),
            ("bind", self.bind),
            ("rewrite", self.rewrite),
            ("gradient", self.gradient),
            ("lowering", self.lowering),
            ("cranelift", self.cranelift),
            ("constrained", self.constrained),
        ]
    }
}

/// Live node counts of the graphs along the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// The log density as the model builds it.
    pub model: usize,
    /// The log density after rewriting.
    pub optimized: usize,
    /// Log density + gradient, as differentiation builds it.
    pub gradient: usize,
    /// Log density + gradient after rewriting (what is compiled).
    pub gradient_optimized: usize,
}

/// The intermediate graphs, kept for inspection (`tessera print --stage`).
#[derive(Clone, Debug)]
pub struct Graphs {
    /// The rewritten log density.
    pub optimized: Graph,
    /// The rewritten log density + gradient, as compiled.
    pub gradient: Graph,
}

/// Runs the rewrite pipeline (`tessera_rewrite::optimize`) on `graph`; without `fuse` the
/// fusion pass is left out (always before differentiation: fused nodes have no gradient rule).
fn rewrite_graph(graph: &Graph, fuse: bool) -> Result<Graph, PipelineError> {
    let mut settings = PipelineSettings::default();
    if !fuse {
        settings.passes.retain(|&p| p != Pass::Fuse);
    }
    optimize(graph, &settings).map(|(g, _)| g).map_err(|e| PipelineError::Graph { stage: "rewrite", message: e.to_string() })
}

/// Builds the rewritten log density and its rewritten gradient graph from a bound model.
pub fn optimize_model(bound: &BoundModel, opts: &PipelineOptions, times: &mut StageTimes) -> Result<(Graphs, NodeCounts), PipelineError> {
    let logp = bound.logp_graph();
    let t0 = Instant::now();
    let optimized = if opts.rewrite { rewrite_graph(logp, false)? } else { logp.clone() };
    let t1 = Instant::now();
    let name = optimized.inputs().first().and_then(|&id| optimized.input_name(id)).unwrap_or("theta").to_string();
    let with_grad = with_gradients(&optimized, &[name.as_str()])
        .map_err(|e| PipelineError::Graph { stage: "gradient", message: e.to_string() })?;
    let t2 = Instant::now();
    let gradient = if opts.rewrite { rewrite_graph(&with_grad, opts.fuse)? } else { with_grad.clone() };
    let t3 = Instant::now();
    times.rewrite += (t1 - t0) + (t3 - t2);
    times.gradient += t2 - t1;
    let counts = NodeCounts {
        model: logp.live_nodes().len(),
        optimized: optimized.live_nodes().len(),
        gradient: with_grad.live_nodes().len(),
        gradient_optimized: gradient.live_nodes().len(),
    };
    Ok((Graphs { optimized, gradient }, counts))
}

/// A model compiled end to end: the sampler's density, the constrained-values function, and
/// what the compilation took.
pub struct CompiledModel {
    /// The model bound to its data.
    pub bound: Arc<BoundModel>,
    /// The log density and its gradient on the unconstrained space (clone one per chain).
    pub density: ModelDensity,
    /// Maps unconstrained draws to the parameters' constrained values and derived quantities.
    pub constrained: ConstrainedFn,
    /// Names of the constrained values, flattened row-major (`beta[0]`, `L[0,1]`).
    pub names: Vec<String>,
    /// Time of every stage.
    pub times: StageTimes,
    /// Node counts before and after rewriting.
    pub nodes: NodeCounts,
    /// Cranelift statistics of logp+gradient (absent when interpreted).
    pub compile_stats: Option<CompileStats>,
    /// The intermediate graphs.
    pub graphs: Graphs,
    /// Why a function runs on the interpreter, if one does.
    pub fallbacks: Vec<String>,
}

impl std::fmt::Debug for CompiledModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModel").field("dim", &self.dim()).field("names", &self.names).field("times", &self.times).finish()
    }
}

/// Reads a text file (model, data or graph). A file that is not UTF-8 is an error naming the
/// line and column of its first invalid byte.
pub fn read_text(path: &Path) -> Result<String, PipelineError> {
    let bytes = std::fs::read(path).map_err(|source| PipelineError::Io { path: path.display().to_string(), source })?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = &bytes[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        PipelineError::NotUtf8 {
            path: path.display().to_string(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
            // Characters before the byte on its line, as an editor counts them: the prefix is
            // valid UTF-8, so counting the bytes that start a character is exact.
            column: 1 + valid[line_start..].iter().filter(|&&b| (b as i8) >= -0x40).count(),
            byte: bytes.get(valid.len()).copied().unwrap_or(0),
        }
    })
}

/// Reads a model file and its JSON data and compiles them.
pub fn compile_files(model_path: &Path, data_path: &Path, opts: &PipelineOptions) -> Result<CompiledModel, PipelineError> {
    let source = read_text(model_path)?;
    let data = read_text(data_path)?;
    compile_model(&source, &model_path.display().to_string(), &data, &data_path.display().to_string(), opts)
}

/// Parses and binds a model; the two first stages of the pipeline.
pub fn bind_model(source: &str, model_name: &str, data_json: &str, data_name: &str, times: &mut StageTimes) -> Result<BoundModel, PipelineError> {
    let t0 = Instant::now();
    let model = parse_model(source, model_name).map_err(|e| PipelineError::Model(e.to_string()))?;
    let t1 = Instant::now();
    let data = DataSet::from_json(data_json, data_name).map_err(|e| PipelineError::Model(e.to_string()))?;
    let t2 = Instant::now();
    let bound = model.bind(&data).map_err(|e| PipelineError::Model(e.to_string()))?;
    times.parse = t1 - t0;
    times.data = t2 - t1;
    times.bind = t2.elapsed();
    Ok(bound)
}

/// Compiles a model's source text with its JSON data text (names are used in messages).
pub fn compile_model(source: &str, model_name: &str, data_json: &str, data_name: &str, opts: &PipelineOptions) -> Result<CompiledModel, PipelineError> {
    let mut times = StageTimes::default();
    let bound = Arc::new(bind_model(source, model_name, data_json, data_name, &mut times)?);
    let (graphs, nodes) = optimize_model(&bound, opts, &mut times)?;
    let mut fallbacks = Vec::new();
    let (density, compile_stats) = match LogDensityFn::with_options(&graphs.gradient, &opts.compile) {
        Ok((f, stats)) => {
            times.lowering = stats.plan + stats.lower;
            times.cranelift = stats.compile + stats.finalize;
            (ModelDensity::Compiled(f), Some(stats))
        }
        Err(e) if opts.interpreter_fallback => {
            fallbacks.push(format!("logp+gradient runs on the interpreter: {e}"));
            (ModelDensity::Interpreted(InterpretedDensity { graph: Arc::new(graphs.gradient.clone()), dim: bound.dim() }), None)
        }
        Err(source) => return Err(PipelineError::Codegen { what: "logp+gradient", source }),
    };
    let t0 = Instant::now();
    let constrained = match compile_with_stats(bound.constrained_graph(), &opts.compile) {
        Ok((c, _)) => ConstrainedFn::compiled(Arc::new(c)),
        Err(e) if opts.interpreter_fallback => {
            fallbacks.push(format!("constrained values run on the interpreter: {e}"));
            ConstrainedFn::Interpreted(bound.clone())
        }
        Err(source) => return Err(PipelineError::Codegen { what: "constrained values", source }),
    };
    times.constrained = t0.elapsed();
    let names = bound.output_names();
    Ok(CompiledModel { bound, density, constrained, names, times, nodes, compile_stats, graphs, fallbacks })
}

impl CompiledModel {
    /// The number of unconstrained parameters.
    pub fn dim(&self) -> usize {
        self.bound.dim()
    }

    /// The constrained values (parameters then derived quantities) of every posterior draw, as
    /// `[quantity][chain][draw]`. A draw the function fails on gives NaNs.
    pub fn constrained_values(&self, trace: &Trace) -> Vec<Vec<Vec<f64>>> {
        let mut f = self.constrained.clone();
        let n = self.names.len();
        trace.values_of(
            |row, out| {
                if f.eval_into(row, out).is_err() {
                    out.clear();
                    out.resize(n, f64::NAN);
                }
            },
            n,
        )
    }

    /// ArviZ-style summary of the constrained values of a run (quantities split over the
    /// machine's cores: the rank-normalized diagnostics cost more than sampling a cheap model).
    pub fn summarize(&self, trace: &Trace) -> Result<Vec<SummaryRow>, DiagnosticsError> {
        let values = self.constrained_values(trace);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(values.len().div_ceil(8)).max(1);
        if threads == 1 {
            return summarize(&self.names, &values);
        }
        let chunk = values.len().div_ceil(threads);
        let parts: Vec<Result<Vec<SummaryRow>, DiagnosticsError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .names
                .chunks(chunk)
                .zip(values.chunks(chunk))
                .map(|(names, values)| scope.spawn(move || summarize(names, values)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| summarize(&[], &[]))).collect()
        });
        let mut rows = Vec::with_capacity(values.len());
        for part in parts {
            rows.extend(part?);
        }
        if rows.len() != values.len() {
            // A worker panicked (it returned no rows): redo the whole summary on this thread.
            return summarize(&self.names, &values);
        }
        Ok(rows)
    }
}

/// The error of a log-density evaluation by either back end.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DensityError {
    /// The compiled function failed.
    #[error(transparent)]
    Compiled(#[from] tessera_codegen::LogDensityError),
    /// The interpreter failed (a point the model cannot evaluate).
    #[error("interpreter: {0}")]
    Interpreted(String),
}

impl LogpError for DensityError {
    fn is_recoverable(&self) -> bool {
        match self {
            DensityError::Compiled(e) => e.is_recoverable(),
            DensityError::Interpreted(_) => true,
        }
    }
}

/// The log density of a model: compiled, or interpreted when codegen cannot lower it.
#[derive(Clone, Debug)]
pub enum ModelDensity {
    /// Cranelift-compiled logp+gradient.
    Compiled(LogDensityFn),
    /// The reference interpreter on the logp+gradient graph.
    Interpreted(InterpretedDensity),
}

impl LogDensity for ModelDensity {
    type Error = DensityError;

    fn dim(&self) -> usize {
        match self {
            ModelDensity::Compiled(f) => f.dim(),
            ModelDensity::Interpreted(f) => f.dim,
        }
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, DensityError> {
        match self {
            ModelDensity::Compiled(f) => LogDensity::logp_grad(f, x, grad).map_err(DensityError::Compiled),
            ModelDensity::Interpreted(f) => f.logp_grad(x, grad),
        }
    }
}

/// The reference interpreter evaluating a `theta → (logp, grad)` graph.
#[derive(Clone, Debug)]
pub struct InterpretedDensity {
    graph: Arc<Graph>,
    dim: usize,
}

impl InterpretedDensity {
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, DensityError> {
        let err = |e: &dyn std::fmt::Display| DensityError::Interpreted(e.to_string());
        let theta = ndarray::ArrayD::from_shape_vec(vec![x.len()], x.to_vec()).map_err(|e| err(&e))?;
        let inputs = std::collections::HashMap::from([("theta".to_string(), tessera_graph::Value::F64(theta))]);
        let out = tessera_graph::eval(&self.graph, &inputs).map_err(|e| err(&e))?;
        let lp = out.first().and_then(tessera_graph::Value::to_scalar_f64).unwrap_or(f64::NAN);
        let g = out.get(1).map(tessera_graph::Value::to_f64_vec).unwrap_or_default();
        if g.len() != grad.len() {
            return Err(DensityError::Interpreted(format!("gradient has {} values, expected {}", g.len(), grad.len())));
        }
        grad.copy_from_slice(&g);
        Ok(lp)
    }
}

/// Maps an unconstrained point to the constrained values and derived quantities (flattened in
/// [`CompiledModel::names`] order). Cloning gives an independent workspace.
pub enum ConstrainedFn {
    /// Compiled with Cranelift.
    Compiled {
        /// The function.
        function: Arc<Compiled>,
        /// Its scratch memory.
        workspace: Workspace,
        /// One buffer per output.
        buffers: Vec<OutputBuffer>,
    },
    /// Run by the reference interpreter.
    Interpreted(Arc<BoundModel>),
}

/// The storage of one output of a compiled function.
#[derive(Clone, Debug)]
pub enum OutputBuffer {
    /// f64 values.
    F64(Vec<f64>),
    /// i64 values.
    I64(Vec<i64>),
    /// bool values.
    Bool(Vec<bool>),
}

impl Clone for ConstrainedFn {
    fn clone(&self) -> Self {
        match self {
            ConstrainedFn::Compiled { function, .. } => ConstrainedFn::compiled(function.clone()),
            ConstrainedFn::Interpreted(b) => ConstrainedFn::Interpreted(b.clone()),
        }
    }
}

impl std::fmt::Debug for ConstrainedFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConstrainedFn::Compiled { function, .. } => f.debug_tuple("Compiled").field(function).finish(),
            ConstrainedFn::Interpreted(_) => f.write_str("Interpreted"),
        }
    }
}

impl ConstrainedFn {
    fn compiled(function: Arc<Compiled>) -> Self {
        let buffers = function
            .outputs()
            .iter()
            .map(|t| {
                let n = t.shape.size();
                match t.dtype {
                    DType::F64 => OutputBuffer::F64(vec![0.0; n]),
                    DType::I64 => OutputBuffer::I64(vec![0; n]),
                    DType::Bool => OutputBuffer::Bool(vec![false; n]),
                }
            })
            .collect();
        ConstrainedFn::Compiled { workspace: function.workspace(), function, buffers }
    }

    /// Appends the constrained values at `theta` to `out` (cleared first).
    pub fn eval_into(&mut self, theta: &[f64], out: &mut Vec<f64>) -> Result<(), String> {
        out.clear();
        match self {
            ConstrainedFn::Compiled { function, workspace, buffers } => {
                let mut outs: Vec<ArgMut<'_>> = buffers
                    .iter_mut()
                    .map(|b| match b {
                        OutputBuffer::F64(v) => ArgMut::F64(v),
                        OutputBuffer::I64(v) => ArgMut::I64(v),
                        OutputBuffer::Bool(v) => ArgMut::Bool(v),
                    })
                    .collect();
                function.call(workspace, &[ArgRef::F64(theta)], &mut outs).map_err(|e| e.to_string())?;
                for b in buffers.iter() {
                    match b {
                        OutputBuffer::F64(v) => out.extend_from_slice(v),
                        OutputBuffer::I64(v) => out.extend(v.iter().map(|&x| x as f64)),
                        OutputBuffer::Bool(v) => out.extend(v.iter().map(|&x| f64::from(u8::from(x)))),
                    }
                }
            }
            ConstrainedFn::Interpreted(bound) => out.extend(bound.constrained_interp(theta).map_err(|e| e.to_string())?),
        }
        Ok(())
    }
}
