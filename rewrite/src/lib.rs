//! Rewrite engine and the optimization/stabilization pipeline: named directional rules (a
//! small pattern language plus Rust-function rules) run to a fixpoint per pass, then fusion.
//!
//! ```
//! use tessera_rewrite::{PipelineSettings, optimize};
//! let g = tessera_graph::parse(
//!     "func @f(%x: f64[]) -> f64[] {\n  %0:f64[] = exp %x\n  %1:f64[] = add %0, 1.0:f64\n  %2:f64[] = log %1\n  return %2\n}\n",
//! ).unwrap();
//! let (opt, report) = optimize(&g, &PipelineSettings::default()).unwrap();
//! assert!(tessera_graph::print(&opt).contains("softplus %x"));
//! assert_eq!(report.count("softplus_of_log"), 1);
//! ```

mod engine;
mod pattern;
mod pipeline;
mod report;
pub mod rules;

pub use engine::{Ctx, PassStats, Rule, RuleFn, RuleSet, TraceEntry, expr};
pub use pipeline::{Pass, PassReport, PipelineSettings, optimize, rule_set};
pub use report::Report;

/// What can go wrong in the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// Building a node failed (a bug in a rule that the engine could not contain).
    #[error("rewrite: {0}")]
    Graph(#[from] tessera_graph::GraphError),
    /// The verifier rejected the graph after a pass (only with `PipelineSettings::verify`).
    #[error("rewrite: the graph after pass `{pass}` is malformed: {message}")]
    Verify {
        /// The pass after which the verifier failed.
        pass: &'static str,
        /// The verifier's message.
        message: String,
    },
    /// `--passes` named a pass that does not exist.
    #[error("unknown pass `{0}`, expected one of canonicalize, simplify, stabilize, specialize, fuse")]
    UnknownPass(String),
}
