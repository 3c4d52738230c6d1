//! A summary of a graph: node counts by op, inputs, outputs, and the memory its constants and
//! intermediate values take.

use std::collections::BTreeMap;
use std::fmt;

use crate::{DType, Graph, Op, TensorType};

/// Counts and sizes describing a graph's live nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The function name.
    pub name: String,
    /// Number of live nodes (inputs and constants included).
    pub live_nodes: usize,
    /// Live nodes by op name (`input`, `const`, `add`, `reduce_sum`, …).
    pub op_counts: BTreeMap<&'static str, usize>,
    /// The inputs, in signature order, with their types.
    pub inputs: Vec<(String, TensorType)>,
    /// The types of the outputs, in `return` order.
    pub outputs: Vec<TensorType>,
    /// Number of live constant nodes.
    pub constants: usize,
    /// Bytes of the live constants' elements.
    pub constant_bytes: usize,
    /// Number of intermediate nodes (live nodes other than inputs and constants).
    pub intermediates: usize,
    /// Bytes of all intermediate values (8 per f64 / i64 element, 1 per bool).
    pub intermediate_bytes: usize,
}

/// Bytes one element of `dtype` takes.
fn element_bytes(dtype: DType) -> usize {
    match dtype {
        DType::F64 | DType::I64 => 8,
        DType::Bool => 1,
    }
}

/// Bytes a value of type `ty` takes.
fn bytes(ty: &TensorType) -> usize {
    ty.shape.dims().iter().fold(element_bytes(ty.dtype), |acc, &d| acc.saturating_mul(d))
}

/// The summary of `graph`'s live nodes.
pub fn summary(graph: &Graph) -> Summary {
    let live = graph.live_nodes();
    let mut s = Summary {
        name: graph.name().to_string(),
        live_nodes: live.len(),
        op_counts: BTreeMap::new(),
        inputs: graph
            .inputs()
            .iter()
            .map(|&i| (graph.input_name(i).unwrap_or_default().to_string(), graph.ty(i).clone()))
            .collect(),
        outputs: graph.outputs().iter().map(|&o| graph.ty(o).clone()).collect(),
        constants: 0,
        constant_bytes: 0,
        intermediates: 0,
        intermediate_bytes: 0,
    };
    for id in live {
        let node = graph.node(id);
        *s.op_counts.entry(node.op.name()).or_default() += 1;
        match node.op {
            Op::Input { .. } => {}
            Op::Const(_) => {
                s.constants += 1;
                s.constant_bytes = s.constant_bytes.saturating_add(bytes(&node.ty));
            }
            _ => {
                s.intermediates += 1;
                s.intermediate_bytes = s.intermediate_bytes.saturating_add(bytes(&node.ty));
            }
        }
    }
    s
}

/// `1234567 B (1.2 MiB)`; plain bytes below 1 KiB.
fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    format!("{n} B ({x:.1} {})", UNITS[unit])
}

impl fmt::Display for Summary {
    /// A short aligned table:
    ///
    /// ```text
    /// func @logp            9   live nodes
    ///   inputs              3   %mu: f64[], %sigma: f64[], %x: f64[100]
    ///   outputs             1   f64[]
    ///   constants           1   8 B
    ///   intermediates       5   2416 B (2.4 KiB)
    /// ops
    ///   const               1
    ///   …
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|(n, t)| {
                let mut s = String::new();
                crate::text::write_name(&mut s, '%', n);
                format!("{s}: {t}")
            })
            .collect();
        let outputs: Vec<String> = self.outputs.iter().map(TensorType::to_string).collect();
        let width = self.op_counts.keys().map(|k| k.len()).max().unwrap_or(0).max(14);
        writeln!(f, "{:<w$}  {:>5}   live nodes", format!("func @{}", self.name), self.live_nodes, w = width + 2)?;
        let row = |f: &mut fmt::Formatter<'_>, label: &str, count: usize, detail: &str| {
            writeln!(f, "  {label:<width$}  {count:>5}   {detail}")
        };
        row(f, "inputs", self.inputs.len(), &inputs.join(", "))?;
        row(f, "outputs", self.outputs.len(), &outputs.join(", "))?;
        row(f, "constants", self.constants, &human_bytes(self.constant_bytes))?;
        row(f, "intermediates", self.intermediates, &human_bytes(self.intermediate_bytes))?;
        writeln!(f, "ops")?;
        for (op, count) in &self.op_counts {
            writeln!(f, "  {op:<width$}  {count:>5}")?;
        }
        Ok(())
    }
}
