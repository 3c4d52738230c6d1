//! The graph: an arena of hash-consed nodes, its named inputs and its outputs.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use rustc_hash::{FxBuildHasher, FxHashMap};
use smallvec::SmallVec;

use crate::infer::infer;
use crate::{Constant, GraphError, Op, TensorType};

/// The id of a node in one graph. Ids are dense and an operand's id is always smaller than
/// its user's, so id order is a topological order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The id as an index into per-node tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the node at `index` (for per-node tables built by other crates).
    pub fn from_index(index: usize) -> NodeId {
        NodeId(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Operand list; most ops have one to three operands.
pub type Operands = SmallVec<[NodeId; 3]>;

/// A node: an op, its operands, and its inferred type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// Its operands, in order.
    pub operands: Operands,
    /// Its result type (inferred when the node was added).
    pub ty: TensorType,
}

/// The hash-consing hash: a node is identified by its op and operands (its type follows).
fn node_hash(op: &Op, operands: &Operands) -> u64 {
    FxBuildHasher.hash_one((op, operands))
}

/// A function of named tensor inputs to a list of outputs. Structurally equal nodes are one
/// node; dead nodes may remain in the arena but are never printed or compiled.
#[derive(Clone)]
pub struct Graph {
    name: String,
    nodes: Vec<Node>,
    /// The nodes' ids by [`node_hash`]; a node's op and operands are kept once, in `nodes`
    /// (a map keyed by them copied every op). FxHash: interning is the rewrite engine's hot
    /// path, and the keys are our own (no HashDoS).
    interned: HashTable<NodeId>,
    inputs: Vec<NodeId>,
    outputs: Vec<NodeId>,
}

impl Graph {
    /// An empty graph named `name` (printed as `func @name`).
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), nodes: Vec::new(), interned: HashTable::new(), inputs: Vec::new(), outputs: Vec::new() }
    }

    /// The function name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Declares (or returns the already declared) input `name` of type `ty`.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Result<NodeId, GraphError> {
        if let Some(&id) = self.inputs.iter().find(|&&id| self.input_name(id) == Some(name)) {
            let first = &self.nodes[id.index()].ty;
            if *first != ty {
                return Err(GraphError::InputRedeclared {
                    name: name.to_string(),
                    first: first.to_string(),
                    second: ty.to_string(),
                });
            }
            return Ok(id);
        }
        check_size(&Op::Input { name: Arc::from(name), ty: ty.clone() }, &ty)?;
        let id = self.intern(Op::Input { name: Arc::from(name), ty: ty.clone() }, Operands::new(), ty);
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a constant node.
    pub fn constant(&mut self, c: Constant) -> NodeId {
        let ty = c.ty();
        self.intern(Op::Const(c), Operands::new(), ty)
    }

    /// Adds `op` applied to `operands`, inferring its type; returns the existing node when an
    /// equal one is already present. Inputs must be declared with [`Graph::input`].
    pub fn add(&mut self, op: Op, operands: &[NodeId]) -> Result<NodeId, GraphError> {
        if let Op::Input { name, .. } = &op {
            return Err(GraphError::Invalid(format!("input %{name} must be declared with Graph::input")));
        }
        for &o in operands {
            if o.index() >= self.nodes.len() {
                return Err(GraphError::UnknownNode(o));
            }
        }
        let ty = {
            let arg_types: SmallVec<[&TensorType; 3]> = operands.iter().map(|o| &self.nodes[o.index()].ty).collect();
            infer(&op, &arg_types)?
        };
        check_size(&op, &ty)?;
        Ok(self.intern(op, operands.into(), ty))
    }

    fn intern(&mut self, op: Op, operands: Operands, ty: TensorType) -> NodeId {
        // One lookup (hashing a fused op's body once): most interned nodes are new.
        let nodes = &self.nodes;
        let same = |&id: &NodeId| {
            let n = &nodes[id.index()];
            n.op == op && n.operands == operands
        };
        let rehash = |&id: &NodeId| node_hash(&nodes[id.index()].op, &nodes[id.index()].operands);
        match self.interned.entry(node_hash(&op, &operands), same, rehash) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = NodeId::from_index(self.nodes.len());
                e.insert(id);
                self.nodes.push(Node { op, operands, ty });
                id
            }
        }
    }

    /// Sets the outputs (the `return` list).
    pub fn set_outputs(&mut self, outputs: &[NodeId]) -> Result<(), GraphError> {
        if let Some(&bad) = outputs.iter().find(|o| o.index() >= self.nodes.len()) {
            return Err(GraphError::UnknownNode(bad));
        }
        self.outputs = outputs.to_vec();
        Ok(())
    }

    /// The node with id `id`. Panics on a foreign id, which is a programming error: ids come
    /// only from this graph's own methods.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The node with id `id`, or `None` when it is not in this graph.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// The type of node `id`.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.node(id).ty
    }

    /// The declared inputs, in signature order.
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    /// The input named `name`.
    pub fn input_by_name(&self, name: &str) -> Option<NodeId> {
        self.inputs.iter().copied().find(|&id| self.input_name(id) == Some(name))
    }

    /// The name of input node `id` (`None` for other nodes).
    pub fn input_name(&self, id: NodeId) -> Option<&str> {
        match &self.nodes.get(id.index())?.op {
            Op::Input { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The outputs, in `return` order.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// Number of nodes in the arena, dead ones included.
    pub fn arena_len(&self) -> usize {
        self.nodes.len()
    }

    /// Every node id in the arena, in topological (id) order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).map(NodeId::from_index)
    }

    /// The live nodes (inputs, and everything the outputs depend on) in the canonical order:
    /// inputs in signature order, then a depth-first post-order from the outputs, operands
    /// left to right. This order depends only on the graph's structure, never on the order in
    /// which nodes were created, so printing and equality are deterministic.
    pub fn live_nodes(&self) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut order = Vec::new();
        for &i in &self.inputs {
            seen[i.index()] = true;
            order.push(i);
        }
        for &out in &self.outputs {
            self.post_order(out, &mut seen, &mut order);
        }
        order
    }

    fn post_order(&self, root: NodeId, seen: &mut [bool], order: &mut Vec<NodeId>) {
        // Iterative DFS: model graphs can be deep chains that would overflow a recursive walk.
        let mut stack: Vec<(NodeId, usize)> = vec![(root, 0)];
        while let Some((id, next)) = stack.pop() {
            if next == 0 && seen[id.index()] {
                continue;
            }
            let operands = &self.nodes[id.index()].operands;
            if let Some(&child) = operands.get(next) {
                stack.push((id, next + 1));
                if !seen[child.index()] {
                    stack.push((child, 0));
                }
            } else if !seen[id.index()] {
                seen[id.index()] = true;
                order.push(id);
            }
        }
    }

    /// Number of users of each node among the live nodes (outputs count as a use).
    pub fn use_counts(&self) -> Vec<usize> {
        self.use_counts_among(&self.live_nodes())
    }

    /// Number of users of each node among `live` (which must be [`Graph::live_nodes`]; passing
    /// it saves a walk when the caller has it); outputs count as a use.
    pub fn use_counts_among(&self, live: &[NodeId]) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for &id in live {
            for o in &self.nodes[id.index()].operands {
                counts[o.index()] += 1;
            }
        }
        for o in &self.outputs {
            counts[o.index()] += 1;
        }
        counts
    }

    /// A copy with only the live nodes, renumbered in canonical order.
    pub fn compact(&self) -> Graph {
        let mut out = Graph::new(self.name.clone());
        let mut map: FxHashMap<NodeId, NodeId> = FxHashMap::default();
        for id in self.live_nodes() {
            let node = &self.nodes[id.index()];
            let operands: Operands = node.operands.iter().map(|o| map[o]).collect();
            let new = out.intern(node.op.clone(), operands, node.ty.clone());
            if matches!(node.op, Op::Input { .. }) {
                out.inputs.push(new);
            }
            map.insert(id, new);
        }
        out.outputs = self.outputs.iter().map(|o| map[o]).collect();
        out
    }

    /// Renames the function.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }
}

/// Largest element count of one tensor (2⁴⁰ elements, 8 TiB of f64): anything larger is a
/// shape bug, and rejecting it keeps every later size computation free of overflow.
pub const MAX_ELEMENTS: usize = 1 << 40;

fn check_size(op: &Op, ty: &TensorType) -> Result<(), GraphError> {
    match ty.shape.checked_size() {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        _ => Err(GraphError::op(op.name(), format!("result type {ty} has more than 2^40 elements"))),
    }
}

impl PartialEq for Graph {
    /// Graphs are values: equal when their canonical forms are equal, whatever the order in
    /// which their nodes were created.
    fn eq(&self, other: &Graph) -> bool {
        if self.name != other.name || self.inputs.len() != other.inputs.len() || self.outputs.len() != other.outputs.len() {
            return false;
        }
        let (a, b) = (self.live_nodes(), other.live_nodes());
        if a.len() != b.len() {
            return false;
        }
        let mut pos_a = vec![usize::MAX; self.nodes.len()];
        let mut pos_b = vec![usize::MAX; other.nodes.len()];
        for (k, (&x, &y)) in a.iter().zip(&b).enumerate() {
            pos_a[x.index()] = k;
            pos_b[y.index()] = k;
            let (nx, ny) = (&self.nodes[x.index()], &other.nodes[y.index()]);
            let same_operands = nx.operands.len() == ny.operands.len()
                && nx.operands.iter().zip(&ny.operands).all(|(p, q)| pos_a[p.index()] == pos_b[q.index()]);
            if nx.op != ny.op || nx.ty != ny.ty || !same_operands {
                return false;
            }
        }
        self.outputs.iter().zip(&other.outputs).all(|(p, q)| pos_a[p.index()] == pos_b[q.index()])
    }
}

impl Eq for Graph {}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph(@{}, {} live nodes)", self.name, self.live_nodes().len())
    }
}
