//! The verifier: checks every structural invariant of a graph.

use std::collections::HashSet;

use smallvec::SmallVec;

use crate::infer::infer;
use crate::{Graph, GraphError, Op, TensorType};

/// Checks that `graph` is well formed: operands precede their users, every node's type is
/// what inference gives, no two live nodes are structurally equal, inputs are distinct input
/// nodes, and outputs exist.
pub fn verify(graph: &Graph) -> Result<(), GraphError> {
    let invalid = |msg: String| Err(GraphError::Invalid(msg));
    let mut names = HashSet::new();
    for &id in graph.inputs() {
        let Some(node) = graph.get(id) else { return invalid(format!("input {id} is not a node")) };
        let Op::Input { name, ty } = &node.op else {
            return invalid(format!("input {id} is a {} node, expected an input", node.op.name()));
        };
        if !names.insert(name.clone()) {
            return invalid(format!("input %{name} is declared twice"));
        }
        if *ty != node.ty {
            return invalid(format!("input %{name} has type {} but declares {ty}", node.ty));
        }
    }
    if let Some(&bad) = graph.outputs().iter().find(|o| graph.get(**o).is_none()) {
        return invalid(format!("output {bad} is not a node"));
    }
    let mut structural = HashSet::new();
    for id in graph.live_nodes() {
        let node = graph.node(id);
        for &o in &node.operands {
            if o >= id {
                return invalid(format!("{id} ({}) uses {o}, which does not precede it", node.op.name()));
            }
        }
        if matches!(node.op, Op::Input { .. }) && !graph.inputs().contains(&id) {
            return invalid(format!("{id} is an input node missing from the signature"));
        }
        let args: SmallVec<[&TensorType; 3]> = node.operands.iter().map(|&o| graph.ty(o)).collect();
        let inferred = infer(&node.op, &args)?;
        if inferred != node.ty {
            return invalid(format!("{id} ({}) has type {} but its operands give {inferred}", node.op.name(), node.ty));
        }
        if !structural.insert((&node.op, &node.operands)) {
            return invalid(format!("{id} ({}) duplicates an earlier node", node.op.name()));
        }
    }
    Ok(())
}
