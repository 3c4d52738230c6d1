//! Symbolic reverse-mode differentiation: gradients are new nodes of the same graph.
//!
//! [`grad`] walks the nodes that lie on a path from the `wrt` nodes to the cost in reverse
//! topological (id) order, asks each node's VJP rule for its operands' cotangent
//! contributions, and sums contributions with `add`. Because the gradient nodes go through
//! [`Graph::add`], hash-consing shares every subexpression with the forward pass.
//!
//! What carries a gradient: f64 values only. Integer and bool values have none (asking for
//! one is an error); index operands (gather, scatter_add), `where` conditions, comparisons,
//! casts to integer or bool, and the piecewise-constant ops floor, ceil and sign contribute
//! exactly zero, so no node is built for them. An op whose derivative is not expressible
//! (digamma: its derivative trigamma is not an op) is an error naming it when it lies on a
//! path to the cost, never a silent zero.
//!
//! Small graphs by construction: cotangents are lazy (a scalar `1.0` stands for a tensor of
//! ones, see [`emit`]), carry their sign as a flag (so negations cancel or turn sums into
//! subtractions), constant factors fold, identities (`1·x`, `x/1`) are never built, and
//! branches that do not reach the cost get no node at all.
//!
//! Known limitation (shared with PyTensor): in `where(c, f(x), …)` the masked-out branch
//! receives `0·f′(x)`, which is NaN where `f′(x)` is infinite (e.g. `sqrt` at 0). The cure is
//! a rewrite that moves the multiplication inside the `where`.

mod emit;
mod rules;

pub(crate) use emit::Emit;

use crate::{Constant, DType, Graph, GraphError, NodeId, Op, TensorType, UnaryOp};

/// Why a gradient could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GradError {
    /// The cost is not a scalar f64.
    #[error("the cost must be a scalar f64, got {ty}")]
    CostNotScalar {
        /// The cost's type.
        ty: String,
    },
    /// A gradient was asked for an integer or bool value.
    #[error("{dtype} value {value} has no gradient (only f64 values do)")]
    NoGradient {
        /// The value's dtype.
        dtype: DType,
        /// The value: `%name` for an input, `#id` otherwise.
        value: String,
    },
    /// An op on a path from a `wrt` node to the cost has no gradient rule.
    #[error("no gradient rule for `{op}`: {reason}")]
    NoRule {
        /// The op's text-form name.
        op: String,
        /// Why there is none.
        reason: String,
    },
    /// A name given to [`with_gradients`] is not an input of the graph.
    #[error("unknown input %{name}; the graph's inputs are: {available}")]
    UnknownInput {
        /// The name asked for.
        name: String,
        /// The graph's inputs, comma separated.
        available: String,
    },
    /// The graph has no output to differentiate.
    #[error("the graph has no output to differentiate")]
    NoOutput,
    /// A node id that is not in the graph.
    #[error("node {0} does not exist in this graph")]
    UnknownNode(NodeId),
    /// Building a gradient node failed (a bug in a rule: rules only build well-typed nodes).
    #[error("while building the gradient: {0}")]
    Graph(#[from] GraphError),
    /// A rule broke an invariant of the gradient construction (a bug, reported not panicked).
    #[error("internal gradient error: {0}")]
    Internal(String),
}

/// Adds to `graph` the gradient of the scalar f64 `cost` with respect to each node of `wrt`
/// and returns, per `wrt` node, a node of the same type holding it (a zeros constant when
/// the cost does not depend on that node).
///
/// Gradients are total derivatives: when `wrt` holds a node and one of its ancestors, the
/// ancestor's gradient includes the paths through the node.
pub fn grad(graph: &mut Graph, cost: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>, GradError> {
    check_request(graph, cost, wrt)?;
    let n = cost.index() + 1;
    let active = active_nodes(graph, n, wrt);
    let needed = needed_nodes(graph, cost, &active);
    let first_new = graph.arena_len();
    let mut cotangent: Vec<Option<Signed>> = vec![None; n];
    let mut e = Emit::new(graph);
    if needed[cost.index()] {
        cotangent[cost.index()] = Some(Signed { node: e.scalar(1.0), negated: false });
    }
    for index in (0..n).rev() {
        let (true, Some(g)) = (needed[index], cotangent[index]) else { continue };
        let id = NodeId::from_index(index);
        let node = e.graph().node(id).clone();
        let want: Vec<bool> = node
            .operands
            .iter()
            .enumerate()
            .map(|(k, o)| needed[o.index()] && rules::carries_gradient(&node.op, k))
            .collect();
        if !want.contains(&true) {
            continue;
        }
        let contributions = rules::vjp(&mut e, id, &node, g.node, &want)?;
        for (k, &operand) in node.operands.iter().enumerate() {
            let Some(Some(c)) = contributions.get(k).filter(|_| want[k]) else { continue };
            let operand_shape = e.shape(operand);
            let mut c = Signed::strip(e.graph(), *c, first_new, g.negated);
            if node.op.is_elementwise() {
                c.node = e.sum_to(c.node, &operand_shape, &node.ty.shape)?;
            }
            if !e.shape(c.node).broadcasts_to(&operand_shape) {
                return Err(GradError::Internal(format!(
                    "the {} rule gave a cotangent of shape {} for an operand of shape {operand_shape}",
                    node.op.name(),
                    e.shape(c.node)
                )));
            }
            let slot = &mut cotangent[operand.index()];
            *slot = Some(match *slot {
                Some(previous) => previous.accumulate(&mut e, c)?,
                None => c,
            });
        }
    }
    wrt.iter()
        .map(|&w| {
            let shape = e.shape(w);
            match cotangent.get(w.index()).copied().flatten() {
                Some(g) => {
                    let full = e.materialize(g.node, &shape)?;
                    if g.negated { e.neg(full) } else { Ok(full) }
                }
                None => Ok(e.graph_mut().constant(Constant::filled_f64(shape, 0.0))),
            }
        })
        .collect()
}

/// A cotangent with a pending negation. Every VJP rule is linear in the cotangent, so a
/// negation commutes through all of them: carrying it as a flag instead of a `neg` node lets
/// negations cancel or become subtractions when contributions are summed.
#[derive(Clone, Copy, Debug)]
struct Signed {
    node: NodeId,
    negated: bool,
}

impl Signed {
    /// The contribution `c` of a rule applied to a cotangent negated or not: an outermost
    /// `neg` built by this gradient (never one of the forward pass, which is computed anyway)
    /// becomes a flag.
    fn strip(graph: &Graph, c: NodeId, first_new: usize, negated: bool) -> Signed {
        let node = graph.node(c);
        match node.op {
            Op::Unary(UnaryOp::Neg) if c.index() >= first_new => Signed { node: node.operands[0], negated: !negated },
            _ => Signed { node: c, negated },
        }
    }

    /// `self + other`, as an `add` or a `sub` (and a pending negation when both are negated).
    fn accumulate(self, e: &mut Emit<'_>, other: Signed) -> Result<Signed, GradError> {
        Ok(match (self.negated, other.negated) {
            (false, false) => Signed { node: e.add(self.node, other.node)?, negated: false },
            (true, true) => Signed { node: e.add(self.node, other.node)?, negated: true },
            (false, true) => Signed { node: e.sub(self.node, other.node)?, negated: false },
            (true, false) => Signed { node: e.sub(other.node, self.node)?, negated: false },
        })
    }
}

/// The cost must be a scalar f64 and every `wrt` node an f64 node of this graph.
fn check_request(graph: &Graph, cost: NodeId, wrt: &[NodeId]) -> Result<(), GradError> {
    let cost_node = graph.get(cost).ok_or(GradError::UnknownNode(cost))?;
    if cost_node.ty != TensorType::scalar(DType::F64) {
        return Err(GradError::CostNotScalar { ty: cost_node.ty.to_string() });
    }
    for &w in wrt {
        let node = graph.get(w).ok_or(GradError::UnknownNode(w))?;
        if node.ty.dtype != DType::F64 {
            let value = graph.input_name(w).map_or_else(|| w.to_string(), |name| format!("%{name}"));
            return Err(GradError::NoGradient { dtype: node.ty.dtype, value });
        }
    }
    Ok(())
}

/// Nodes (among the first `n`) whose value depends differentiably on a `wrt` node.
fn active_nodes(graph: &Graph, n: usize, wrt: &[NodeId]) -> Vec<bool> {
    let mut active = vec![false; n];
    for w in wrt.iter().filter(|w| w.index() < n) {
        active[w.index()] = true;
    }
    let first = wrt.iter().map(|w| w.index()).min().unwrap_or(n);
    for index in first..n {
        let node = graph.node(NodeId::from_index(index));
        if active[index] || node.ty.dtype != DType::F64 {
            continue;
        }
        active[index] =
            node.operands.iter().enumerate().any(|(k, o)| active[o.index()] && rules::carries_gradient(&node.op, k));
    }
    active
}

/// Active nodes the cost depends on through active nodes: the ones that get a cotangent.
fn needed_nodes(graph: &Graph, cost: NodeId, active: &[bool]) -> Vec<bool> {
    let mut needed = vec![false; active.len()];
    needed[cost.index()] = active[cost.index()];
    for index in (0..active.len()).rev() {
        if !needed[index] {
            continue;
        }
        let node = graph.node(NodeId::from_index(index));
        for (k, o) in node.operands.iter().enumerate() {
            if active[o.index()] && rules::carries_gradient(&node.op, k) {
                needed[o.index()] = true;
            }
        }
    }
    needed
}

/// A copy of `graph` whose outputs are its own followed by the gradient of its first output
/// with respect to each named input (dead nodes swept). Unknown names are errors naming the
/// name and listing the inputs.
pub fn with_gradients(graph: &Graph, wrt: &[&str]) -> Result<Graph, GradError> {
    let mut g = graph.clone();
    let &cost = g.outputs().first().ok_or(GradError::NoOutput)?;
    let ids = wrt
        .iter()
        .map(|&name| {
            g.input_by_name(name)
                .ok_or_else(|| GradError::UnknownInput { name: name.to_string(), available: available_inputs(graph) })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let grads = grad(&mut g, cost, &ids)?;
    let mut outputs = g.outputs().to_vec();
    outputs.extend(grads);
    g.set_outputs(&outputs)?;
    Ok(g.compact())
}

/// The graph's input names, `%`-prefixed and comma separated (or "none").
fn available_inputs(graph: &Graph) -> String {
    let names: Vec<String> =
        graph.inputs().iter().filter_map(|&i| graph.input_name(i)).map(|n| format!("%{n}")).collect();
    if names.is_empty() { "none".to_string() } else { names.join(", ") }
}
