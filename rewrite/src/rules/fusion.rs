//! Fusion: maximal trees of elementwise ops, and an elementwise tree feeding a reduction,
//! become one `fused` node that codegen lowers as one loop.
//!
//! Policy (documented choice):
//! - An elementwise node (unary, binary, where, cast) is absorbed into its consumer when it
//!   has exactly one user, that user is elementwise or a reduction, and it is not an output.
//!   A node with several users is computed once and becomes an operand of each kernel that
//!   reads it: no recomputation, so fusion never adds arithmetic (recomputing cheap ops
//!   would save a buffer but cost work in every user; at model sizes memory traffic of one
//!   extra buffer is cheaper than repeated transcendental calls).
//! - Scalar constants are inlined as literals; other values are operands.
//! - A kernel is formed only when it saves something: at least two elementwise ops, or one
//!   elementwise op feeding a reduction. Kernels are capped at [`MAX_OPERANDS`] operands and
//!   [`MAX_INSTRUCTIONS`] instructions (larger trees stay unfused).
//! - Fusion runs last, after differentiation and all other passes: fused nodes have no
//!   gradient rule, and no other rule looks inside them.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use tessera_graph::{ConstScalar, FusedKernel, FusedReduce, Graph, GraphError, NodeId, Op, ScalarInstr};

/// Most operands of one kernel.
pub const MAX_OPERANDS: usize = 32;
/// Most instructions of one kernel.
pub const MAX_INSTRUCTIONS: usize = 256;

/// Counts of what fusion did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FusionStats {
    /// Elementwise kernels formed.
    pub elementwise: usize,
    /// Kernels ending in a reduction.
    pub with_reduction: usize,
    /// Elementwise ops absorbed into kernels.
    pub ops_fused: usize,
}

/// Fuses `g` (see the module docs). Dead nodes may remain in the result's arena.
pub fn fuse(g: &Graph) -> Result<(Graph, FusionStats), GraphError> {
    let live = g.live_nodes();
    let uses = g.use_counts();
    let mut is_output = vec![false; g.arena_len()];
    for o in g.outputs() {
        is_output[o.index()] = true;
    }
    // absorbed[n]: n's single user will compute it inside its kernel.
    let mut absorbed = vec![false; g.arena_len()];
    for &id in &live {
        let node = g.node(id);
        if !(node.op.is_elementwise() || matches!(node.op, Op::Reduce { .. })) {
            continue;
        }
        for &o in &node.operands {
            if g.node(o).op.is_elementwise() && uses[o.index()] == 1 && !is_output[o.index()] {
                absorbed[o.index()] = true;
            }
        }
    }
    let mut out = Graph::new(g.name());
    let mut map: FxHashMap<NodeId, NodeId> = FxHashMap::default();
    let mut stats = FusionStats::default();
    for &id in &live {
        let node = g.node(id);
        let new = match &node.op {
            Op::Input { name, ty } => out.input(name, ty.clone())?,
            Op::Const(c) => out.constant(c.clone()),
            _ if absorbed[id.index()] => continue,
            op => {
                let kernel = if op.is_elementwise() || matches!(op, Op::Reduce { .. }) {
                    build_kernel(g, id, &absorbed)
                } else {
                    None
                };
                match kernel {
                    Some((k, leaves, ops)) => {
                        if k.reduce.is_some() {
                            stats.with_reduction += 1;
                        } else {
                            stats.elementwise += 1;
                        }
                        stats.ops_fused += ops;
                        let operands: Vec<NodeId> = leaves.iter().map(|l| copy(g, *l, &mut out, &mut map)).collect::<Result<_, _>>()?;
                        out.add(Op::Fused(Arc::new(k)), &operands)?
                    }
                    None => copy(g, id, &mut out, &mut map)?,
                }
            }
        };
        map.insert(id, new);
    }
    let outputs: Vec<NodeId> = g.outputs().iter().map(|o| map.get(o).copied().ok_or(GraphError::UnknownNode(*o))).collect::<Result<_, _>>()?;
    out.set_outputs(&outputs)?;
    Ok((out, stats))
}

/// Node `id` of `g` in `out`, built plainly together with any operands not built yet (the
/// absorbed nodes of a kernel that was not formed). Iterative: an unfused chain can be long.
fn copy(g: &Graph, id: NodeId, out: &mut Graph, map: &mut FxHashMap<NodeId, NodeId>) -> Result<NodeId, GraphError> {
    let mut stack = vec![id];
    while let Some(&top) = stack.last() {
        if map.contains_key(&top) {
            stack.pop();
            continue;
        }
        let node = g.node(top);
        let pending: Vec<NodeId> = node.operands.iter().copied().filter(|o| !map.contains_key(o)).collect();
        if !pending.is_empty() {
            stack.extend(pending);
            continue;
        }
        let operands: Vec<NodeId> = node.operands.iter().map(|o| map[o]).collect();
        let n = match &node.op {
            Op::Const(c) => out.constant(c.clone()),
            Op::Input { name, ty } => out.input(name, ty.clone())?,
            op => out.add(op.clone(), &operands)?,
        };
        map.insert(top, n);
        stack.pop();
    }
    map.get(&id).copied().ok_or(GraphError::UnknownNode(id))
}

/// The kernel rooted at `root` (an elementwise node or a reduction of one), its operand
/// nodes, and the number of elementwise ops it absorbs; `None` when no kernel is worth it.
fn build_kernel(g: &Graph, root: NodeId, absorbed: &[bool]) -> Option<(FusedKernel, Vec<NodeId>, usize)> {
    let node = g.node(root);
    let (body_root, reduce) = match &node.op {
        Op::Reduce { kind, axes, keepdims } => {
            let x = node.operands[0];
            if !absorbed[x.index()] {
                return None;
            }
            (x, Some(FusedReduce { kind: *kind, axes: axes.clone(), keepdims: *keepdims }))
        }
        _ => (root, None),
    };
    let mut b = KernelBuild { g, absorbed, body: Vec::new(), leaves: Vec::new(), ops: 0, memo: FxHashMap::default() };
    b.emit(body_root, 0)?;
    let worth = if reduce.is_some() { b.ops >= 1 } else { b.ops >= 2 };
    if !worth || b.leaves.len() > MAX_OPERANDS || b.body.len() > MAX_INSTRUCTIONS {
        return None;
    }
    let k = FusedKernel::new(b.body, reduce).ok()?;
    Some((k, b.leaves, b.ops))
}

struct KernelBuild<'g> {
    g: &'g Graph,
    absorbed: &'g [bool],
    body: Vec<ScalarInstr>,
    leaves: Vec<NodeId>,
    ops: usize,
    memo: FxHashMap<NodeId, u16>,
}

impl KernelBuild<'_> {
    fn push(&mut self, ins: ScalarInstr) -> Option<u16> {
        if self.body.len() >= MAX_INSTRUCTIONS {
            return None;
        }
        self.body.push(ins);
        Some((self.body.len() - 1) as u16)
    }

    /// Emits node `id` (the kernel's root or an absorbed node) and what it reads.
    fn emit(&mut self, id: NodeId, depth: usize) -> Option<u16> {
        if let Some(&i) = self.memo.get(&id) {
            return Some(i);
        }
        // Every level adds an instruction, so deeper trees exceed the size cap anyway.
        if depth > MAX_INSTRUCTIONS {
            return None;
        }
        let node = self.g.node(id);
        let mut args: Vec<u16> = Vec::with_capacity(node.operands.len());
        for &o in &node.operands {
            let on = self.g.node(o);
            let i = if self.absorbed[o.index()] {
                self.emit(o, depth + 1)?
            } else if let Some(c) = on.op.as_const().and_then(ConstScalar::from_constant) {
                self.push(ScalarInstr::Const(c))?
            } else {
                let k = match self.leaves.iter().position(|&l| l == o) {
                    Some(k) => k,
                    None => {
                        self.leaves.push(o);
                        self.leaves.len() - 1
                    }
                };
                self.push(ScalarInstr::Arg(u16::try_from(k).ok()?))?
            };
            args.push(i);
        }
        let ins = match &node.op {
            Op::Unary(u) => ScalarInstr::Unary(*u, args[0]),
            Op::Binary(b) => ScalarInstr::Binary(*b, args[0], args[1]),
            Op::Where => ScalarInstr::Where(args[0], args[1], args[2]),
            Op::Cast { to } => ScalarInstr::Cast(*to, args[0]),
            _ => return None,
        };
        self.ops += 1;
        let i = self.push(ins)?;
        self.memo.insert(id, i);
        Some(i)
    }
}
