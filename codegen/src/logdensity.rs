//! The log-density specialization: one flat `f64` parameter vector in, `(logp, gradient)`
//! out, with the model's data bound as constants of the compiled code.

use std::sync::Arc;

use tessera_graph::{DType, Graph};

use crate::compiled::Workspace;
use crate::{CodegenError, CompileOptions, CompileStats, Compiled, compile_with_stats};

/// A compiled `theta: f64[n] → (logp: f64[], grad: f64[n])`. Cloning shares the code and
/// makes a fresh workspace, so each sampler chain owns one clone.
pub struct LogDensityFn {
    compiled: Arc<Compiled>,
    ws: Workspace,
    dim: usize,
}

impl Clone for LogDensityFn {
    fn clone(&self) -> Self {
        LogDensityFn { compiled: self.compiled.clone(), ws: self.compiled.workspace(), dim: self.dim }
    }
}

impl std::fmt::Debug for LogDensityFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDensityFn").field("dim", &self.dim).finish()
    }
}

/// The error of a log-density evaluation: a real failure, never a non-finite log density
/// (that is returned as a value and the sampler treats it as a divergence).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct LogDensityError(#[from] pub CodegenError);

impl tessera_sampler::LogpError for LogDensityError {
    /// A failed run-time check (an index computed from the parameters falls outside its
    /// axis) says the point is invalid, like a NaN: recoverable. Wrong argument lengths or a
    /// foreign workspace are programming errors: not recoverable.
    fn is_recoverable(&self) -> bool {
        matches!(self.0, CodegenError::Runtime(_))
    }
}

impl tessera_sampler::LogDensity for LogDensityFn {
    type Error = LogDensityError;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        LogDensityFn::logp_grad(self, x, grad).map_err(LogDensityError)
    }
}

fn shape_error(msg: String) -> CodegenError {
    CodegenError::InvalidGraph(format!("a log density needs `theta: f64[n] -> (f64[], f64[n])`: {msg}"))
}

impl LogDensityFn {
    /// Compiles a log-density graph `theta: f64[n] → logp: f64[]` together with its symbolic
    /// gradient (built by `tessera_graph::with_gradients`).
    pub fn from_logp(logp: &Graph) -> Result<LogDensityFn, CodegenError> {
        Self::from_logp_with_options(logp, &CompileOptions::default()).map(|(f, _)| f)
    }

    /// As [`LogDensityFn::from_logp`], with compile options; the statistics include the time
    /// taken by the gradient construction (`gradient`, also counted in `total`).
    pub fn from_logp_with_options(
        logp: &Graph,
        opts: &CompileOptions,
    ) -> Result<(LogDensityFn, CompileStats), CodegenError> {
        let [theta] = logp.inputs() else {
            return Err(shape_error(format!("{} inputs", logp.inputs().len())));
        };
        let t0 = std::time::Instant::now();
        // `grad` on a copy, without `with_gradients`' compaction: compaction re-interns every
        // node, hashing all constant data (≈1 MB for logistic regression's X); the planner
        // only visits live nodes anyway.
        let mut with_grad = logp.clone();
        let &cost = logp.outputs().first().ok_or_else(|| shape_error("no output".into()))?;
        let grads = tessera_graph::grad(&mut with_grad, cost, &[*theta])
            .map_err(|e| CodegenError::InvalidGraph(format!("gradient: {e}")))?;
        with_grad
            .set_outputs(&[cost, grads[0]])
            .map_err(|e| CodegenError::InvalidGraph(format!("gradient: {e}")))?;
        let gradient = t0.elapsed();

        let (f, mut stats) = Self::with_options(&with_grad, opts)?;
        stats.gradient = gradient;
        stats.total += gradient;
        Ok((f, stats))
    }

    /// Compiles a graph with one input `f64[n]` and outputs `(logp: f64[], grad: f64[n])`.
    pub fn new(graph: &Graph) -> Result<LogDensityFn, CodegenError> {
        Self::with_options(graph, &CompileOptions::default()).map(|(f, _)| f)
    }

    /// As [`LogDensityFn::new`], with compile options, returning the compile statistics.
    pub fn with_options(graph: &Graph, opts: &CompileOptions) -> Result<(LogDensityFn, CompileStats), CodegenError> {
        let (compiled, stats) = compile_with_stats(graph, opts)?;
        let f = Self::from_compiled(Arc::new(compiled))?;
        Ok((f, stats))
    }

    /// Wraps an already compiled function of the right signature.
    pub fn from_compiled(compiled: Arc<Compiled>) -> Result<LogDensityFn, CodegenError> {
        let ins = compiled.inputs();
        let outs = compiled.outputs();
        let [(_, theta)] = ins else { return Err(shape_error(format!("{} inputs", ins.len()))) };
        if theta.dtype != DType::F64 || theta.shape.rank() != 1 {
            return Err(shape_error(format!("input has type {theta}")));
        }
        let dim = theta.shape.size();
        let [logp, grad] = outs else { return Err(shape_error(format!("{} outputs", outs.len()))) };
        if logp.dtype != DType::F64 || !logp.shape.is_scalar() || grad.dtype != DType::F64 || grad.shape != theta.shape {
            return Err(shape_error(format!("outputs have types {logp} and {grad}")));
        }
        let ws = compiled.workspace();
        Ok(LogDensityFn { compiled, ws, dim })
    }

    /// The number of parameters.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The shared compiled function.
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    /// Evaluates the log density at `x`, writing its gradient into `grad`.
    pub fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, CodegenError> {
        if x.len() != self.dim || grad.len() != self.dim {
            return Err(CodegenError::ArgMismatch {
                what: if x.len() != self.dim { "input" } else { "output" },
                index: 0,
                name: "theta".into(),
                expected: format!("f64 × {}", self.dim),
                got: format!("f64 × {} (x), {} (grad)", x.len(), grad.len()),
            });
        }
        if self.ws.owner_id() != self.compiled.workspace_owner() {
            return Err(CodegenError::ForeignWorkspace);
        }
        let mut logp = 0.0f64;
        let ins = [x.as_ptr().cast::<u8>()];
        let outs = [std::ptr::from_mut(&mut logp).cast::<u8>(), grad.as_mut_ptr().cast::<u8>()];
        // SAFETY: the signature was checked in `from_compiled` (one f64[n] input, outputs f64[]
        // and f64[n]); `x` and `grad` have n elements (checked above), `logp` is one f64, the
        // three buffers are distinct, and the workspace belongs to this function.
        let status = unsafe { self.compiled.run_raw(ins.as_ptr(), outs.as_ptr(), &mut self.ws) };
        self.compiled.status(status)?;
        Ok(logp)
    }
}
