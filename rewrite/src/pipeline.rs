//! The pipeline: one straight sequence of named passes.

use std::fmt;
use std::sync::LazyLock;

use tessera_graph::{Graph, verify};

use crate::engine::{Limits, PassStats, Rule, RuleSet, TraceEntry, run_pass};
use crate::rules::{arith, broadcast, exp_log, fold, fusion, reduce, stability};
use crate::{Report, RewriteError};

/// A pass of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pass {
    /// Normal forms (constants right, `x − c` as `x + (−c)`, constants gathered) so that
    /// later patterns need to match one spelling only.
    Canonicalize,
    /// Constant folding, algebraic identities, exp/log identities, reductions and shapes.
    Simplify,
    /// Naive forms to stable ops (log1p, expm1, softplus, log_sigmoid, log1mexp, logsumexp, …).
    Stabilize,
    /// Strength reduction (pow → square/sqrt/reciprocal, x·x → square, x + (−y) → x − y).
    Specialize,
    /// Elementwise chains and reductions of them into fused kernels.
    Fuse,
}

impl Pass {
    /// Every pass, in pipeline order.
    pub const ALL: [Pass; 5] = [Pass::Canonicalize, Pass::Simplify, Pass::Stabilize, Pass::Specialize, Pass::Fuse];

    /// The pass name (as in `--passes canonicalize,simplify`).
    pub fn name(self) -> &'static str {
        match self {
            Pass::Canonicalize => "canonicalize",
            Pass::Simplify => "simplify",
            Pass::Stabilize => "stabilize",
            Pass::Specialize => "specialize",
            Pass::Fuse => "fuse",
        }
    }

    /// The pass with this name.
    pub fn from_name(name: &str) -> Option<Pass> {
        Pass::ALL.into_iter().find(|p| p.name() == name.trim())
    }

    /// Parses a comma-separated list of pass names (the CLI's `--passes`).
    pub fn parse_list(list: &str) -> Result<Vec<Pass>, RewriteError> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| Pass::from_name(s).ok_or_else(|| RewriteError::UnknownPass(s.trim().to_string())))
            .collect()
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to run the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineSettings {
    /// The passes to run, in the order given (default: all five, in pipeline order).
    pub passes: Vec<Pass>,
    /// Most sweeps of one rule pass before it stops even if rules still fire (default 8;
    /// one sweep normally reaches the fixpoint and a second confirms it).
    pub max_iterations: usize,
    /// The graph size (arena nodes) at which rules stop building new nodes (default 2²⁴).
    pub max_nodes: usize,
    /// Record every rule firing in [`Report::trace`] (default off).
    pub trace: bool,
    /// Run the verifier after every pass and fail on a malformed graph (default off; tests
    /// turn it on).
    pub verify: bool,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings { passes: Pass::ALL.to_vec(), max_iterations: 8, max_nodes: 1 << 24, trace: false, verify: false }
    }
}

/// Statistics of one pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassReport {
    /// Which pass.
    pub pass: Pass,
    /// Live nodes before the pass.
    pub nodes_before: usize,
    /// Live nodes after it.
    pub nodes_after: usize,
    /// Firings per rule, sweeps, refusals and limits.
    pub stats: PassStats,
}

/// The groups of rules, each parsed once: the passes' sets share groups.
struct Groups {
    fold: Vec<Rule>,
    canonical: Vec<Rule>,
    identities: Vec<Rule>,
    specialize: Vec<Rule>,
    stability: Vec<Rule>,
    exp_log: Vec<Rule>,
    reduce: Vec<Rule>,
    broadcast: Vec<Rule>,
}

static GROUPS: LazyLock<Groups> = LazyLock::new(|| Groups {
    fold: fold::rules(),
    canonical: arith::canonical(),
    identities: arith::identities(),
    specialize: arith::specialize(),
    stability: stability::rules(),
    exp_log: exp_log::rules(),
    reduce: reduce::rules(),
    broadcast: broadcast::rules(),
});

/// A rule set of the groups picked from [`GROUPS`], in order.
fn rule_set_of(pick: impl FnOnce(&'static Groups) -> Vec<&'static [Rule]>) -> RuleSet {
    RuleSet::new(pick(&GROUPS).into_iter().flatten().cloned().collect())
}

static CANONICALIZE: LazyLock<RuleSet> = LazyLock::new(|| rule_set_of(|g| vec![&g.fold, &g.canonical]));
static SIMPLIFY: LazyLock<RuleSet> =
    LazyLock::new(|| rule_set_of(|g| vec![&g.fold, &g.canonical, &g.identities, &g.exp_log, &g.reduce, &g.broadcast]));
static STABILIZE: LazyLock<RuleSet> = LazyLock::new(|| {
    rule_set_of(|g| vec![&g.fold, &g.stability, &g.canonical, &g.identities, &g.exp_log, &g.reduce, &g.broadcast])
});
static SPECIALIZE: LazyLock<RuleSet> =
    LazyLock::new(|| rule_set_of(|g| vec![&g.fold, &g.identities, &g.specialize, &g.exp_log, &g.broadcast]));

/// The rule set of a rule pass (`None` for fusion, which is not rule-driven).
pub fn rule_set(pass: Pass) -> Option<&'static RuleSet> {
    match pass {
        Pass::Canonicalize => Some(&CANONICALIZE),
        Pass::Simplify => Some(&SIMPLIFY),
        Pass::Stabilize => Some(&STABILIZE),
        Pass::Specialize => Some(&SPECIALIZE),
        Pass::Fuse => None,
    }
}

/// Optimizes `graph`: the passes of `settings`, each to a fixpoint. Returns the optimized
/// (compacted) graph and a report of what fired.
///
/// The passes, and why each is there:
/// 1. canonicalize — one spelling per expression, so later patterns match one form;
/// 2. simplify — fold constants through the interpreter, apply identities, merge
///    reductions, drop shape no-ops and dead nodes: less work for everything after;
/// 3. stabilize — rewrite naive forms into the stable ops while the naive forms are still
///    recognisable (before strength reduction changes their spelling);
/// 4. specialize — cheaper ops for the same value (pow → square, …) once no pattern needs
///    the general form;
/// 5. fuse — last, so every other rule sees plain ops, and codegen gets one loop per chain.
pub fn optimize(graph: &Graph, settings: &PipelineSettings) -> Result<(Graph, Report), RewriteError> {
    let limits = Limits { max_iterations: settings.max_iterations, max_nodes: settings.max_nodes };
    // No compaction up front: every pass walks only the live nodes.
    let mut g = graph.clone();
    let mut live = g.live_nodes().len();
    let mut report = Report { nodes_before: live, nodes_after: 0, passes: Vec::new(), trace: Vec::new() };
    let mut trace: Vec<TraceEntry> = Vec::new();
    for &pass in &settings.passes {
        let nodes_before = live;
        let stats = match rule_set(pass) {
            Some(set) => {
                let (next, next_live, stats) =
                    run_pass(g, set, pass.name(), limits, settings.trace.then_some(&mut trace)).map_err(RewriteError::Graph)?;
                (g, live) = (next, next_live);
                stats
            }
            None => {
                let (next, fs) = fusion::fuse(&g).map_err(RewriteError::Graph)?;
                g = next;
                live = g.live_nodes().len();
                let mut stats = PassStats { iterations: 1, ..PassStats::default() };
                for (name, k) in [("fuse_elementwise", fs.elementwise), ("fuse_reduction", fs.with_reduction)] {
                    if k > 0 {
                        stats.firings.push((name, k));
                    }
                }
                stats
            }
        };
        if settings.verify {
            verify(&g).map_err(|e| RewriteError::Verify { pass: pass.name(), message: e.to_string() })?;
        }
        report.passes.push(PassReport { pass, nodes_before, nodes_after: live, stats });
    }
    // Rule passes leave rewritten nodes behind in the arena; fusion builds only live ones.
    let g = if g.arena_len() == live { g } else { g.compact() };
    report.nodes_after = g.live_nodes().len();
    report.trace = trace;
    Ok((g, report))
}
