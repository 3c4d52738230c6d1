//! The report of a pipeline run: per-pass node counts and rule firings, and the trace.

use std::fmt;

use crate::{PassReport, TraceEntry};

/// What the pipeline did. `Display` prints the per-pass table and, when recorded, the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Live nodes of the input graph.
    pub nodes_before: usize,
    /// Live nodes of the result.
    pub nodes_after: usize,
    /// One entry per pass run, in order.
    pub passes: Vec<PassReport>,
    /// Every firing, in order (empty unless `PipelineSettings::trace`).
    pub trace: Vec<TraceEntry>,
}

impl Report {
    /// Total firings of the rule named `rule` over all passes.
    pub fn count(&self, rule: &str) -> usize {
        self.passes.iter().flat_map(|p| &p.stats.firings).filter(|(n, _)| *n == rule).map(|(_, k)| k).sum()
    }

    /// Total firings of all rules.
    pub fn total(&self) -> usize {
        self.passes.iter().flat_map(|p| &p.stats.firings).map(|(_, k)| k).sum()
    }
}

impl fmt::Display for Report {
    /// ```text
    /// nodes: 63 → 21
    /// pass canonicalize   63 → 60 nodes, 2 sweeps
    ///   sub_const_to_add        3
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nodes: {} → {}", self.nodes_before, self.nodes_after)?;
        for p in &self.passes {
            let s = &p.stats;
            let sweeps = if s.iterations == 1 { "1 sweep".to_string() } else { format!("{} sweeps", s.iterations) };
            write!(f, "pass {:<13} {} → {} nodes, {sweeps}", p.pass.name(), p.nodes_before, p.nodes_after)?;
            if s.hit_iteration_limit {
                f.write_str(" (iteration limit reached)")?;
            }
            if s.hit_node_limit {
                f.write_str(" (node limit reached)")?;
            }
            writeln!(f)?;
            for (name, k) in &s.firings {
                writeln!(f, "  {name:<28} {k}")?;
            }
            for (name, k) in &s.refused {
                writeln!(f, "  {name:<28} {k} refused (type would change)")?;
            }
        }
        if !self.trace.is_empty() {
            writeln!(f, "trace:")?;
            for t in &self.trace {
                writeln!(f, "  [{}] {}: {} → {}", t.pass, t.rule, t.before, t.after)?;
            }
        }
        Ok(())
    }
}
