//! Graphviz DOT export: a petgraph picture of the live nodes, readable at fifty nodes.
//!
//! Op nodes are rounded boxes labelled `%k = op[attrs]` over their result type (numbered as in
//! the text form); inputs are blue ellipses at the top; tensor constants grey boxes; scalar
//! constants small plain-text nodes next to each use; outputs yellow `output k` nodes. Edges
//! run from operand to user and carry the operand position when an op has several operands.

use std::fmt;

use petgraph::dot::{Config, Dot};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::text::{Names, format_attrs, format_scalar};
use crate::{Graph, NodeId, Op, TensorType};

/// How a node of the picture is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Input,
    TensorConst,
    ScalarConst,
    Op,
    Output,
}

/// A node of the picture: its kind and its (unescaped) label.
struct DotNode {
    kind: Kind,
    label: String,
    /// Whether the node's value is returned (drawn with a heavier border).
    returned: bool,
}

/// An edge: the operand position, shown when the user has several operands.
struct DotEdge {
    position: Option<usize>,
}

// petgraph's `Dot` needs displayable weights; labels are written by the attribute getters.
impl fmt::Display for DotNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl fmt::Display for DotEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{p}"),
            None => Ok(()),
        }
    }
}

/// The DOT text of `graph`'s live nodes. Deterministic: the same graph always gives the
/// same text, whatever the order its nodes were created in.
pub fn to_dot(graph: &Graph) -> String {
    let picture = build_picture(graph);
    let config = [Config::GraphContentOnly, Config::NodeNoLabel, Config::EdgeNoLabel];
    let edge_attrs = |_: &DiGraph<DotNode, DotEdge>, e: petgraph::graph::EdgeReference<'_, DotEdge>| {
        match e.weight().position {
            // At the arrow head, next to the user, where the operand order matters.
            Some(p) => format!("headlabel=\"{p}\", labeldistance=1.6, labelfontcolor=\"#1f5fbf\""),
            None => String::new(),
        }
    };
    let node_attrs = |_: &DiGraph<DotNode, DotEdge>, (_, n): (NodeIndex, &DotNode)| node_style(n);
    let body = Dot::with_attr_getters(&picture, &config, &edge_attrs, &node_attrs);

    let mut out = String::new();
    out.push_str(&format!("digraph {} {{\n", quoted(graph.name())));
    out.push_str("    rankdir=TB;\n");
    out.push_str(&format!(
        "    label={}; labelloc=t; fontname=\"Helvetica\";\n",
        quoted(&format!("func @{}", graph.name()))
    ));
    out.push_str("    node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\", arrowsize=0.7];\n");
    out.push_str(&body.to_string());
    let inputs: Vec<String> =
        picture.node_indices().filter(|&i| picture[i].kind == Kind::Input).map(|i| i.index().to_string()).collect();
    if !inputs.is_empty() {
        // Inputs side by side at the top, so data flows downwards from them.
        out.push_str(&format!("    {{ rank=source; {}; }}\n", inputs.join("; ")));
    }
    out.push_str("}\n");
    out
}

/// The petgraph picture: one node per live node (one per use for scalar constants), edges
/// in operand order, then one node per output.
fn build_picture(graph: &Graph) -> DiGraph<DotNode, DotEdge> {
    let live = graph.live_nodes();
    let names = Names::new(graph, &live);
    let mut picture = DiGraph::new();
    let mut index: Vec<Option<NodeIndex>> = vec![None; graph.arena_len()];
    let returned = |id: NodeId| graph.outputs().contains(&id);
    for &id in &live {
        let node = graph.node(id);
        let (kind, label) = match &node.op {
            Op::Input { .. } => (Kind::Input, format!("{}\n{}", names.get(id), node.ty)),
            Op::Const(c) if c.shape().is_scalar() => continue,
            Op::Const(_) => (Kind::TensorConst, format!("{} = const\n{}", names.get(id), node.ty)),
            op => {
                let types: Vec<&TensorType> = node.operands.iter().map(|&o| graph.ty(o)).collect();
                let mut head = format!("{} = {}{}", names.get(id), op.name(), format_attrs(op, &types));
                if let Op::Fused(k) = op {
                    // The inner scalar expression, so a fused node reads like the ops it replaced.
                    head.push(' ');
                    head.push_str(&crate::text::format_kernel_body(k));
                }
                (Kind::Op, format!("{}\n{}", wrap(&head, 48), node.ty))
            }
        };
        let n = picture.add_node(DotNode { kind, label, returned: returned(id) });
        index[id.index()] = Some(n);
        let several = node.operands.len() > 1;
        for (pos, &o) in node.operands.iter().enumerate() {
            let source = operand_node(&mut picture, &mut index, graph, o);
            picture.add_edge(source, n, DotEdge { position: several.then_some(pos) });
        }
    }
    for (k, &o) in graph.outputs().iter().enumerate() {
        let source = operand_node(&mut picture, &mut index, graph, o);
        let out = picture.add_node(DotNode { kind: Kind::Output, label: format!("output {k}"), returned: false });
        picture.add_edge(source, out, DotEdge { position: None });
    }
    picture
}

/// The picture node an edge from operand `o` starts at: a fresh small node for a scalar
/// constant (so a constant used everywhere does not pull long edges across the picture).
fn operand_node(
    picture: &mut DiGraph<DotNode, DotEdge>,
    index: &mut [Option<NodeIndex>],
    graph: &Graph,
    o: NodeId,
) -> NodeIndex {
    if let Some(n) = index.get(o.index()).copied().flatten() {
        return n;
    }
    let label = match &graph.node(o).op {
        Op::Const(c) => {
            let literal = format_scalar(c);
            literal.strip_suffix(":f64").map(str::to_string).unwrap_or(literal)
        }
        op => op.name().to_string(),
    };
    picture.add_node(DotNode { kind: Kind::ScalarConst, label, returned: false })
}

/// The DOT attributes of a picture node.
fn node_style(n: &DotNode) -> String {
    let style = match n.kind {
        Kind::Input => "shape=ellipse, style=filled, fillcolor=\"#cfe2ff\"",
        Kind::TensorConst => "shape=box, style=filled, fillcolor=\"#e9ecef\"",
        Kind::ScalarConst => "shape=plaintext, fontsize=9, fontcolor=\"#444444\"",
        Kind::Op => "shape=box, style=rounded",
        Kind::Output => "shape=cds, style=filled, fillcolor=\"#ffe08a\", fontsize=10",
    };
    let border = if n.returned { ", penwidth=2.2" } else { "" };
    format!("label={}, {style}{border}", quoted(&n.label))
}

/// A DOT string literal: quotes and backslashes escaped, line breaks as `\n`.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Breaks a long label after commas so wide attribute lists do not stretch the picture.
fn wrap(s: &str, width: usize) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut line = 0;
    for c in s.chars() {
        out.push(c);
        line += 1;
        if c == ',' && line >= width {
            out.push('\n');
            line = 0;
        }
    }
    out
}
