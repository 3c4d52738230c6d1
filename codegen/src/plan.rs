//! The planner: lowers a graph to a [`Program`] of kernels and calls, decides which nodes are
//! views (strides only), which are computed inside their consumer's loop (elementwise chains
//! and gathers with one user), and where every computed buffer lives (outputs directly in the
//! caller's slices, the rest in one workspace whose slots are reused once their value is dead).

use rustc_hash::FxHashMap;

use smallvec::SmallVec;
use tessera_graph::{ConstData, ConstScalar, DType, Graph, NodeId, Op, ReduceOp, ScalarInstr, Shape, TensorType, UnaryOp};

use crate::CodegenError;
use crate::expr::{Expr, ExprKind, Scalar};
use crate::kernel::{
    Base, Call, Combine, Indexed, Kernel, KernelOut, Leaf, Mode, Output, Program, Step, Strided, Strides, elem_size,
};

/// Choices of the planner.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Compute single-use elementwise nodes (and gathers) inside their consumer's loop.
    pub fuse: bool,
    /// Matrix·matrix products with at least this many multiply-adds (m·k·n) call
    /// `matrixmultiply::dgemm`; smaller ones, and products with a vector, are inline loops
    /// (0 forces dgemm for every f64 product).
    pub dgemm_min_work: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        // Measured (benches/matmul.rs): dgemm ties the loops at 8³ and wins 2.6× at 16³, 4.7×
        // at 32³; for logistic regression's 5000×25 products with a vector it loses 1.7×
        // (it packs the whole matrix on every call).
        PlanOptions { fuse: true, dgemm_min_work: 1024 }
    }
}

/// How a live node gets its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The `k`-th input.
    Input(usize),
    /// The `k`-th constant.
    Const(usize),
    /// Strides over its operand's buffer.
    View,
    /// Computed by its own steps into its own buffer.
    Materialized,
    /// Computed inside its only user's kernel; has no buffer.
    Inlined,
}

/// Longest chain of inlined nodes in one kernel expression.
const MAX_INLINE_DEPTH: usize = 64;

/// Candidates examined when looking for the next member of a fused group (bounds the
/// scheduling cost on very large graphs).
const GROUP_WINDOW: usize = 512;

/// Most reductions in one fused group: each keeps an accumulator (two with unrolling) live
/// across the loop, and past the vector registers they spill. A model of hundreds of separate
/// `~` statements over one domain made one loop of hundreds of accumulators, whose register
/// allocation grew superlinearly (a 400-statement model: 200 ms of Cranelift).
const MAX_GROUP_REDUCTIONS: usize = 6;

/// Most members of one fused group: a kernel's code grows with its members, and one kernel
/// is never split between compiled parts.
const MAX_GROUP_MEMBERS: usize = 24;

/// A node's iteration domain and role in a fused group.
type Role = (SmallVec<[usize; 4]>, GroupRole);

/// What a node does inside a horizontally fused kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupRole {
    /// One value per element of the domain.
    Map,
    /// A reduction of the whole domain.
    Reduce,
    /// A scatter-add of one update per element of the domain.
    Scatter,
}

/// A node's elements relative to the buffer of its storage root.
#[derive(Clone, Debug)]
struct Layout {
    root: NodeId,
    offset: i64,
    strides: Strides,
}

/// Row-major strides of `shape`, in elements.
pub fn contiguous(shape: &Shape) -> Strides {
    shape.strides().iter().map(|&s| s as i64).collect()
}

/// Whether `strides` walk `shape` in row-major order without gaps (axes of extent 1 ignored).
fn is_contiguous(shape: &Shape, strides: &[i64]) -> bool {
    let want = contiguous(shape);
    shape.dims().iter().zip(strides.iter().zip(&want)).all(|(&d, (s, w))| d <= 1 || s == w)
}

/// First-fit allocator of workspace slots (16-byte granules), with coalescing of free slots.
#[derive(Default)]
struct Allocator {
    free: Vec<(usize, usize)>,
    top: usize,
}

impl Allocator {
    fn round(bytes: usize) -> usize {
        bytes.div_ceil(16).max(1) * 16
    }

    fn alloc(&mut self, bytes: usize) -> usize {
        let size = Self::round(bytes);
        let best = self.free.iter().enumerate().filter(|(_, (_, s))| *s >= size).min_by_key(|(_, (_, s))| *s);
        if let Some((i, &(off, s))) = best {
            if s == size {
                self.free.remove(i);
            } else {
                self.free[i] = (off + size, s - size);
            }
            return off;
        }
        // Grow the last free slot if it ends at the top, else take fresh space.
        if let Some(i) = self.free.iter().position(|&(off, s)| off + s == self.top) {
            let (off, _) = self.free.remove(i);
            self.top = off + size;
            return off;
        }
        let off = self.top;
        self.top += size;
        off
    }

    fn release(&mut self, off: usize, bytes: usize) {
        let size = Self::round(bytes);
        self.free.push((off, size));
        self.free.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.free.len());
        for &(o, s) in &self.free {
            match merged.last_mut() {
                Some(last) if last.0 + last.1 == o => last.1 += s,
                _ => merged.push((o, s)),
            }
        }
        self.free = merged;
    }
}

/// Lowers `graph` to a program.
pub fn plan(graph: &Graph, opts: &PlanOptions) -> Result<Program, CodegenError> {
    Planner::new(graph, opts)?.run()
}

struct Planner<'g> {
    g: &'g Graph,
    opts: &'g PlanOptions,
    live: Vec<NodeId>,
    kind: Vec<Option<Kind>>,
    layout: Vec<Option<Layout>>,
    base: Vec<Option<Base>>,
    consts: Vec<ConstData>,
    steps: Vec<Step>,
    checks: Vec<String>,
    alloc: Allocator,
    /// Spread buffers of scatters whose kernel is being built (see [`Planner::spread_buffers`]).
    spread: Vec<Spread>,
}

/// The extra accumulation buffers of one scatter-add.
struct Spread {
    id: NodeId,
    /// The scatter's result buffer.
    own: Strided,
    /// One buffer per extra copy, laid out like `own`.
    bases: SmallVec<[Base; 4]>,
    /// The workspace block holding them: (offset, bytes).
    block: (usize, usize),
}

/// What the lowering relies on for memory safety: outputs exist, operands precede their
/// users, and every live node's type is what its op gives for its operands' types (so all
/// buffer sizes and strides derive from consistent shapes). Cheaper than the full verifier,
/// which also hashes every node (and so every constant's data) to find duplicates.
fn validate(g: &Graph) -> Result<(), CodegenError> {
    if let Some(&bad) = g.outputs().iter().find(|o| g.get(**o).is_none()) {
        return Err(CodegenError::InvalidGraph(format!("output {bad} is not a node")));
    }
    for &i in g.inputs() {
        if !matches!(g.get(i).map(|n| &n.op), Some(Op::Input { .. })) {
            return Err(CodegenError::InvalidGraph(format!("input {i} is not an input node")));
        }
    }
    for id in g.live_nodes() {
        let node = g.node(id);
        if let Some(&o) = node.operands.iter().find(|&&o| o >= id) {
            return Err(CodegenError::InvalidGraph(format!("{id} ({}) uses {o}, which does not precede it", node.op.name())));
        }
        let args: SmallVec<[&TensorType; 3]> = node.operands.iter().map(|&o| g.ty(o)).collect();
        let ty = tessera_graph::infer::infer(&node.op, &args).map_err(|e| CodegenError::InvalidGraph(e.to_string()))?;
        if ty != node.ty {
            return Err(CodegenError::InvalidGraph(format!("{id} ({}) has type {} but its operands give {ty}", node.op.name(), node.ty)));
        }
    }
    Ok(())
}

fn unsupported(g: &Graph, id: NodeId, reason: impl Into<String>) -> CodegenError {
    CodegenError::Unsupported { op: g.node(id).op.name().to_string(), node: id.to_string(), reason: reason.into() }
}

impl<'g> Planner<'g> {
    fn new(g: &'g Graph, opts: &'g PlanOptions) -> Result<Planner<'g>, CodegenError> {
        validate(g)?;
        let n = g.arena_len();
        Ok(Planner {
            g,
            opts,
            live: g.live_nodes(),
            kind: vec![None; n],
            layout: vec![None; n],
            base: vec![None; n],
            consts: Vec::new(),
            steps: Vec::new(),
            checks: Vec::new(),
            alloc: Allocator::default(),
            spread: Vec::new(),
        })
    }

    fn ty(&self, id: NodeId) -> &'g TensorType {
        &self.g.node(id).ty
    }

    fn run(mut self) -> Result<Program, CodegenError> {
        let users = self.users();
        self.classify(&users);
        self.layouts()?;
        self.assign_outputs();
        let groups = self.schedule();
        let mut at = vec![usize::MAX; self.g.arena_len()];
        for (gi, group) in groups.iter().enumerate() {
            for &m in group {
                at[m.index()] = gi;
            }
        }
        // Inlined nodes run where their (transitive) user runs.
        for &id in self.live.iter().rev() {
            if self.kind[id.index()] == Some(Kind::Inlined)
                && let Some(&u) = users[id.index()].first()
            {
                at[id.index()] = at[u.index()];
            }
        }
        let frees = self.last_uses(&at, groups.len());
        for (gi, group) in groups.iter().enumerate() {
            // Members of a fused group whose every user is in the group are never stored.
            let stored: Vec<bool> = group
                .iter()
                .map(|&m| {
                    group.len() == 1
                        || self.g.outputs().contains(&m)
                        || matches!(self.group_role(m), Some((_, GroupRole::Reduce | GroupRole::Scatter)))
                        || users[m.index()].iter().any(|u| at[u.index()] != gi)
                })
                .collect();
            for (&m, &keep) in group.iter().zip(&stored) {
                if keep && self.base[m.index()].is_none() {
                    let off = self.alloc.alloc(self.bytes(m));
                    self.base[m.index()] = Some(Base::Workspace(off));
                }
            }
            if group.len() == 1 {
                self.lower(group[0])?;
            } else {
                self.lower_group(group, &stored)?;
            }
            for &root in &frees[gi] {
                if let Some(Base::Workspace(off)) = self.base[root.index()] {
                    self.alloc.release(off, self.bytes(root));
                }
            }
        }
        self.copy_outputs();
        let inputs = self
            .g
            .inputs()
            .iter()
            .map(|&id| (self.g.input_name(id).unwrap_or_default().to_string(), self.ty(id).clone()))
            .collect();
        let outputs = self.g.outputs().iter().map(|&o| self.ty(o).clone()).collect();
        Ok(Program {
            steps: self.steps,
            workspace_bytes: self.alloc.top,
            consts: self.consts,
            inputs,
            outputs,
            checks: self.checks,
        })
    }

    fn bytes(&self, id: NodeId) -> usize {
        let t = self.ty(id);
        t.shape.size() * elem_size(t.dtype)
    }

    /// Distinct users of every live node.
    fn users(&self) -> Vec<SmallVec<[NodeId; 2]>> {
        let mut users: Vec<SmallVec<[NodeId; 2]>> = vec![SmallVec::new(); self.g.arena_len()];
        for &id in &self.live {
            for &o in &self.g.node(id).operands {
                if !users[o.index()].contains(&id) {
                    users[o.index()].push(id);
                }
            }
        }
        users
    }

    fn classify(&mut self, users: &[SmallVec<[NodeId; 2]>]) {
        let inputs = self.g.inputs();
        // Depth of the inlined expression tree under each node: capped so that building a
        // kernel's expression (recursive over inlined operands) never runs deep.
        let mut depth = vec![0usize; self.g.arena_len()];
        for &id in &self.live.clone() {
            let below = self.g.node(id).operands.iter().map(|o| depth[o.index()]).max().unwrap_or(0);
            let node = self.g.node(id);
            let kind = match &node.op {
                Op::Input { .. } => Kind::Input(inputs.iter().position(|&i| i == id).unwrap_or(0)),
                Op::Const(c) => {
                    self.consts.push(c.data().clone());
                    Kind::Const(self.consts.len() - 1)
                }
                Op::Transpose { .. }
                | Op::ExpandDims { .. }
                | Op::Squeeze { .. }
                | Op::BroadcastTo { .. }
                | Op::Slice { .. }
                | Op::Diag
                | Op::Reshape { .. } => Kind::View, // reshape may turn Materialized in `layouts`
                _ if below < MAX_INLINE_DEPTH && self.inlinable(id, users) => Kind::Inlined,
                _ => Kind::Materialized,
            };
            if kind == Kind::Inlined {
                depth[id.index()] = below + 1;
            }
            self.kind[id.index()] = Some(kind);
        }
    }

    /// Whether `id` can be computed inside its only user's loop: an elementwise op or a gather,
    /// not an output, whose single user iterates exactly over `id`'s shape.
    fn inlinable(&self, id: NodeId, users: &[SmallVec<[NodeId; 2]>]) -> bool {
        let node = self.g.node(id);
        let producer_ok = node.op.is_elementwise()
            || matches!(&node.op, Op::Gather { .. })
            || matches!(&node.op, Op::Fused(f) if f.reduce.is_none());
        if !self.opts.fuse || !producer_ok || self.g.outputs().contains(&id) || users[id.index()].len() != 1 {
            return false;
        }
        let user = self.g.node(users[id.index()][0]);
        match &user.op {
            op if op.is_elementwise() => user.ty.shape == node.ty.shape,
            Op::Reduce { kind, .. } => *kind != ReduceOp::LogSumExp,
            Op::Fused(f) => {
                // The operand must span the whole iteration domain (else it would be recomputed).
                let arg_types: Vec<&TensorType> = user.operands.iter().map(|&o| self.ty(o)).collect();
                let not_lse = f.reduce.as_ref().is_none_or(|r| r.kind != ReduceOp::LogSumExp);
                not_lse && tessera_graph::FusedKernel::iteration_shape(&arg_types).is_ok_and(|s| s == node.ty.shape)
            }
            Op::Cumsum { .. } => true,
            Op::ScatterAdd { .. } => user.operands[0] == id && user.operands[1] != id,
            _ => false,
        }
    }

    fn layouts(&mut self) -> Result<(), CodegenError> {
        for &id in &self.live.clone() {
            let node = self.g.node(id);
            let own = || Layout { root: id, offset: 0, strides: contiguous(&node.ty.shape) };
            let layout = match self.kind[id.index()] {
                Some(Kind::Inlined) | None => continue,
                Some(Kind::View) => {
                    let src = node.operands[0];
                    let from = self.layout[src.index()]
                        .clone()
                        .ok_or_else(|| unsupported(self.g, id, "view of a value without a buffer"))?;
                    match self.view(id, &from) {
                        Some(l) => l,
                        None => {
                            self.kind[id.index()] = Some(Kind::Materialized);
                            own()
                        }
                    }
                }
                Some(_) => own(),
            };
            self.layout[id.index()] = Some(layout);
        }
        Ok(())
    }

    /// The layout of view node `id` over its operand's layout `from` (`None`: needs a copy).
    fn view(&self, id: NodeId, from: &Layout) -> Option<Layout> {
        let node = self.g.node(id);
        let src_shape = &self.ty(node.operands[0]).shape;
        let s = &from.strides;
        let mut offset = from.offset;
        let strides: Strides = match &node.op {
            Op::Transpose { perm } => perm.iter().map(|&p| s[p]).collect(),
            Op::ExpandDims { axis } => {
                let mut t = s.clone();
                t.insert(*axis, 0);
                t
            }
            Op::Squeeze { axes } => s.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &x)| x).collect(),
            Op::BroadcastTo { shape } => broadcast_strides(src_shape, s, shape.dims()),
            Op::Slice { ranges } => {
                for (r, &st) in ranges.iter().zip(s) {
                    if r.len > 0 {
                        offset += r.start as i64 * st;
                    }
                }
                ranges.iter().zip(s).map(|(r, &st)| st * r.step).collect()
            }
            Op::Diag => SmallVec::from_slice(&[s[0] + s[1]]),
            Op::Reshape { shape } => {
                if !is_contiguous(src_shape, s) {
                    return None;
                }
                contiguous(shape)
            }
            _ => return None,
        };
        Some(Layout { root: from.root, offset, strides })
    }

    /// Materialized nodes that are outputs are computed straight into the caller's slice.
    fn assign_outputs(&mut self) {
        for (k, &o) in self.g.outputs().iter().enumerate() {
            if self.kind[o.index()] == Some(Kind::Materialized) && self.base[o.index()].is_none() {
                self.base[o.index()] = Some(Base::Output(k));
            }
        }
        for &id in &self.live {
            match self.kind[id.index()] {
                Some(Kind::Input(k)) => self.base[id.index()] = Some(Base::Input(k)),
                Some(Kind::Const(k)) => self.base[id.index()] = Some(Base::Const(k)),
                _ => {}
            }
        }
    }

    /// For each group, the storage roots whose last use is in it (`at`: the group of every
    /// computed or inlined node).
    fn last_uses(&self, at: &[usize], groups: usize) -> Vec<Vec<NodeId>> {
        let mut last = vec![None::<usize>; self.g.arena_len()];
        for &id in &self.live {
            let pos = at[id.index()];
            if pos == usize::MAX {
                continue; // inputs, constants and views run nowhere
            }
            for &o in &self.g.node(id).operands {
                if let Some(l) = &self.layout[o.index()] {
                    let r = l.root.index();
                    last[r] = Some(last[r].map_or(pos, |p: usize| p.max(pos)));
                }
            }
        }
        for &o in self.g.outputs() {
            if let Some(l) = &self.layout[o.index()] {
                last[l.root.index()] = Some(usize::MAX);
            }
        }
        let mut frees = vec![Vec::new(); groups];
        for (i, l) in last.iter().enumerate() {
            if let Some(p) = *l
                && p < groups
            {
                frees[p].push(NodeId::from_index(i));
            }
        }
        frees
    }

    /// How node `id` can take part in a horizontally fused kernel: its iteration domain and
    /// whether it is a map over that domain or a reduction of all of it.
    fn group_role(&self, id: NodeId) -> Option<Role> {
        let node = self.g.node(id);
        let full = |axes: &[usize], rank: usize| axes.len() == rank;
        match &node.op {
            op if op.is_elementwise() => Some((SmallVec::from_slice(node.ty.shape.dims()), GroupRole::Map)),
            Op::Gather { .. } => Some((SmallVec::from_slice(node.ty.shape.dims()), GroupRole::Map)),
            Op::ScatterAdd { .. } => Some((SmallVec::from_slice(self.ty(node.operands[0]).shape.dims()), GroupRole::Scatter)),
            Op::Reduce { kind, axes, .. } => {
                let dims = self.ty(node.operands[0]).shape.dims();
                (*kind != ReduceOp::LogSumExp && full(axes, dims.len())).then(|| (SmallVec::from_slice(dims), GroupRole::Reduce))
            }
            Op::Fused(f) => {
                let args: Vec<&TensorType> = node.operands.iter().map(|&o| self.ty(o)).collect();
                let shape = tessera_graph::FusedKernel::iteration_shape(&args).ok()?;
                match &f.reduce {
                    None => Some((SmallVec::from_slice(shape.dims()), GroupRole::Map)),
                    Some(r) if r.kind != ReduceOp::LogSumExp && full(&r.axes, shape.rank()) => {
                        Some((SmallVec::from_slice(shape.dims()), GroupRole::Reduce))
                    }
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }

    /// The computed nodes `id` reads, each with whether every read is a direct operand
    /// (possibly through inlined nodes) rather than through a view.
    fn needs(&self, id: NodeId) -> Vec<(NodeId, bool)> {
        let mut out: Vec<(NodeId, bool)> = Vec::new();
        // A gather reads its operands at computed positions, and a scatter its indices from
        // their buffer: neither element by element.
        let operands_of = |n: NodeId, direct: bool| {
            let op = &self.g.node(n).op;
            let gathers = matches!(op, Op::Gather { .. });
            let scatters = matches!(op, Op::ScatterAdd { .. });
            self.g.node(n).operands.iter().enumerate().map(move |(k, &o)| (o, direct && !gathers && !(scatters && k == 1)))
        };
        let mut stack: Vec<(NodeId, bool)> = operands_of(id, true).collect();
        let note = |n: NodeId, direct: bool, out: &mut Vec<(NodeId, bool)>| match out.iter_mut().find(|(m, _)| *m == n) {
            Some(e) => e.1 &= direct,
            None => out.push((n, direct)),
        };
        while let Some((o, direct)) = stack.pop() {
            match self.kind[o.index()] {
                Some(Kind::Materialized) => note(o, direct, &mut out),
                Some(Kind::Inlined) => stack.extend(operands_of(o, direct)),
                Some(Kind::View) => {
                    if let Some(l) = &self.layout[o.index()]
                        && self.kind[l.root.index()] == Some(Kind::Materialized)
                    {
                        note(l.root, false, &mut out);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The order of execution: groups of computed nodes, each group one kernel. Greedy: take
    /// the first ready node, then keep adding ready nodes over the same domain that read
    /// earlier members only directly (so every member's value is at hand element by element).
    fn schedule(&self) -> Vec<Vec<NodeId>> {
        let mut remaining: Vec<NodeId> =
            self.live.iter().copied().filter(|&id| self.kind[id.index()] == Some(Kind::Materialized)).collect();
        let needs: FxHashMap<NodeId, Vec<(NodeId, bool)>> = remaining.iter().map(|&id| (id, self.needs(id))).collect();
        let roles: FxHashMap<NodeId, Option<Role>> =
            remaining.iter().map(|&id| (id, if self.opts.fuse { self.group_role(id) } else { None })).collect();
        let mut done = vec![false; self.g.arena_len()];
        let mut groups = Vec::new();
        while !remaining.is_empty() {
            let ready = |n: &NodeId, done: &[bool]| needs[n].iter().all(|(m, _)| done[m.index()]);
            let first = remaining.iter().position(|n| ready(n, &done)).unwrap_or(0);
            let head = remaining.remove(first);
            let mut group = vec![head];
            if let Some((domain, role)) = &roles[&head] {
                let mut maps: Vec<NodeId> = if *role == GroupRole::Map { vec![head] } else { Vec::new() };
                let mut reductions = usize::from(*role == GroupRole::Reduce);
                while group.len() < MAX_GROUP_MEMBERS {
                    let joins = |n: &NodeId| {
                        matches!(&roles[n], Some((d, r)) if d == domain && (*r != GroupRole::Reduce || reductions < MAX_GROUP_REDUCTIONS))
                            && needs[n].iter().all(|(m, direct)| done[m.index()] || (*direct && maps.contains(m)))
                    };
                    let Some(j) = remaining.iter().take(GROUP_WINDOW).position(joins) else { break };
                    let n = remaining.remove(j);
                    match &roles[&n] {
                        Some((_, GroupRole::Map)) => maps.push(n),
                        Some((_, GroupRole::Reduce)) => reductions += 1,
                        _ => {}
                    }
                    group.push(n);
                }
            }
            for m in &group {
                done[m.index()] = true;
            }
            groups.push(group);
        }
        groups
    }

    /// One kernel computing every member of a fused group (see [`Planner::schedule`]).
    fn lower_group(&mut self, group: &[NodeId], stored: &[bool]) -> Result<(), CodegenError> {
        let Some((domain, _)) = self.group_role(group[0]) else {
            return Err(unsupported(self.g, group[0], "not a fusable node"));
        };
        let count: usize = domain.iter().product();
        let mut kb = KernelBuilder::new(&domain);
        let mut outs = Vec::new();
        for (&m, &keep) in group.iter().zip(stored) {
            match self.group_role(m) {
                Some((_, GroupRole::Map)) => {
                    let root = kb.expr_of_op(self, m)?;
                    kb.memo.insert(m, root);
                    if keep {
                        outs.push(KernelOut { root, out: Output::Direct(self.own(m)?), mode: Mode::Map });
                    }
                }
                Some((_, GroupRole::Reduce)) => {
                    let node = self.g.node(m);
                    let (root, kind) = match &node.op {
                        Op::Reduce { kind, .. } => (kb.value(self, node.operands[0])?, *kind),
                        Op::Fused(f) => {
                            let kind = f.reduce.as_ref().map_or(ReduceOp::Sum, |r| r.kind);
                            (kb.fused_body(self, m)?, kind)
                        }
                        _ => return Err(unsupported(self.g, m, "not a reduction")),
                    };
                    let (combine, finish) = match Combine::of(kind) {
                        Some(c) => (c, None),
                        None => {
                            let mut f = Expr::leaf(0, DType::F64);
                            let n = f.push(ExprKind::Const(Scalar::F64(count as f64)), DType::F64);
                            f.push(ExprKind::Binary(tessera_graph::BinaryOp::Div, 0, n), DType::F64);
                            (Combine::Sum, Some(f))
                        }
                    };
                    let out = Strided { strides: SmallVec::from_elem(0, domain.len()), ..self.own(m)? };
                    let mode = Mode::Reduce { combine, reduced: SmallVec::from_elem(true, domain.len()), finish };
                    outs.push(KernelOut { root, out: Output::Direct(out), mode });
                }
                Some((_, GroupRole::Scatter)) => {
                    let root = kb.value(self, self.g.node(m).operands[0])?;
                    // The zeroing step goes before this group's kernel.
                    let out = self.scatter_output(m)?;
                    outs.push(KernelOut { root, out, mode: Mode::Map });
                }
                None => return Err(unsupported(self.g, m, "not a fusable node")),
            }
        }
        let names: Vec<String> = group.iter().map(|&m| format!("{} {m}", self.g.node(m).op.name())).collect();
        let label = names.join(", ");
        let mut kernel = Kernel { domain: kb.domain, leaves: kb.leaves, expr: kb.expr, outs, label: label.clone() };
        self.number_checks(&mut kernel.leaves, &label);
        self.steps.push(Step::Kernel(kernel));
        self.merge_spread();
        Ok(())
    }

    /// The strided access of node `id` over its own shape.
    fn access(&self, id: NodeId) -> Result<Strided, CodegenError> {
        let l = self.layout[id.index()].as_ref().ok_or_else(|| unsupported(self.g, id, "value has no buffer"))?;
        let base = self.base[l.root.index()].ok_or_else(|| unsupported(self.g, id, "buffer not placed"))?;
        Ok(Strided { base, offset: l.offset, strides: l.strides.clone(), dtype: self.ty(id).dtype })
    }

    /// Node `id`'s own buffer with row-major strides (for nodes being computed).
    fn own(&self, id: NodeId) -> Result<Strided, CodegenError> {
        let base = self.base[id.index()].ok_or_else(|| unsupported(self.g, id, "buffer not placed"))?;
        Ok(Strided { base, offset: 0, strides: contiguous(&self.ty(id).shape), dtype: self.ty(id).dtype })
    }

    fn add_check(&mut self, what: String) -> u32 {
        self.checks.push(what);
        self.checks.len() as u32
    }

    /// `(start, step)` when `idx` is a constant arithmetic progression in row-major order
    /// lying inside `0..len` (then a gather or scatter through it is just a strided access).
    fn progression(&self, idx: NodeId, len: usize) -> Option<(i64, i64)> {
        const_progression(self.g, idx, len)
    }

    /// The run-time check code for indices `idx` into an axis of extent `len` (`None` when the
    /// indices are constants already known to be in range).
    fn index_check(&mut self, user: NodeId, idx: NodeId, len: usize) -> Option<u32> {
        if index_in_range(self, idx, len) {
            return None;
        }
        let op = self.g.node(user).op.name();
        Some(self.add_check(format!("{op} at node {user}: an index is outside 0..{len}")))
    }

    /// Numbers the placeholder checks (code 0) of gathered leaves.
    fn number_checks(&mut self, leaves: &mut [Leaf], label: &str) {
        for leaf in leaves {
            if let Leaf::Gather(ix) = leaf
                && ix.check == Some(0)
            {
                let what = format!("gather inside {label}: an index is outside 0..{}", ix.axis_len);
                ix.check = Some(self.add_check(what));
            }
        }
    }

    fn push_kernel(&mut self, id: NodeId, mut kb: KernelBuilder, out: Output, mode: Mode) {
        let label = format!("{} {}", self.g.node(id).op.name(), id);
        self.number_checks(&mut kb.leaves, &label);
        self.steps.push(Step::Kernel(Kernel::single(kb.domain, kb.leaves, kb.expr, out, mode, label)));
    }

    /// A kernel storing `value` into every element of `out` (strided over `domain`).
    fn fill(&mut self, id: NodeId, domain: &[usize], out: Strided, value: Scalar) {
        let kb = KernelBuilder { expr: Expr::constant(value), ..KernelBuilder::new(domain) };
        self.push_kernel(id, kb, Output::Direct(out), Mode::Map);
    }

    /// A kernel copying `src` into `out`, both strided over `domain`.
    fn copy(&mut self, id: NodeId, domain: &[usize], src: Strided, out: Strided) {
        let mut kb = KernelBuilder::new(domain);
        let dtype = src.dtype;
        kb.leaves.push(Leaf::Direct(src));
        kb.expr = Expr::leaf(0, dtype);
        self.push_kernel(id, kb, Output::Direct(out), Mode::Map);
    }

    fn lower(&mut self, id: NodeId) -> Result<(), CodegenError> {
        let node = self.g.node(id);
        let ops = &node.operands;
        let shape = node.ty.shape.dims();
        match &node.op {
            Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. } | Op::Gather { .. } => {
                let mut kb = KernelBuilder::new(shape);
                kb.expr_of_op(self, id)?;
                let out = Output::Direct(self.own(id)?);
                self.push_kernel(id, kb, out, Mode::Map);
            }
            Op::Reduce { kind, axes, keepdims } => self.lower_reduce(id, *kind, axes, *keepdims)?,
            Op::Fused(f) => {
                let arg_types: Vec<&TensorType> = ops.iter().map(|&o| self.ty(o)).collect();
                let domain = tessera_graph::FusedKernel::iteration_shape(&arg_types)
                    .map_err(|e| unsupported(self.g, id, e.to_string()))?;
                let mut kb = KernelBuilder::new(domain.dims());
                let x = kb.fused_body(self, id)?;
                match &f.reduce {
                    None => {
                        let out = Output::Direct(self.own(id)?);
                        self.push_kernel(id, kb, out, Mode::Map);
                    }
                    Some(r) => self.reduce_kernels(id, kb, x, r.kind, &r.axes, r.keepdims)?,
                }
            }
            Op::Cumsum { axis, reverse } => {
                let src_shape = self.ty(ops[0]).shape.dims();
                let mut kb = KernelBuilder::new(src_shape);
                kb.value(self, ops[0])?;
                let out = self.own(id)?;
                let rank = shape.len();
                let mut k = Kernel::single(kb.domain, kb.leaves, kb.expr, Output::Direct(out), Mode::Scan, format!("cumsum {id}"));
                if *reverse {
                    k.flip_axis(*axis);
                }
                let perm: Vec<usize> = (0..rank).filter(|&a| a != *axis).chain([*axis]).collect();
                k.permute_domain(&perm);
                self.steps.push(Step::Kernel(k));
            }
            Op::Reshape { .. } => {
                // Not a view (the operand is not contiguous): copy in row-major order.
                let src = self.access(ops[0])?;
                let src_shape = self.ty(ops[0]).shape.clone();
                let out = Strided { strides: contiguous(&src_shape), ..self.own(id)? };
                self.copy(id, src_shape.dims(), src, out);
            }
            Op::Concatenate { axis } => {
                let out = self.own(id)?;
                let mut start = 0i64;
                for &o in ops {
                    let src = self.access(o)?;
                    let dims = self.ty(o).shape.dims();
                    let dst = Strided { offset: out.offset + start * out.strides[*axis], ..out.clone() };
                    self.copy(id, dims, src, dst);
                    start += dims[*axis] as i64;
                }
            }
            Op::Stack { axis } => {
                let out = self.own(id)?;
                for (k, &o) in ops.iter().enumerate() {
                    let src = self.access(o)?;
                    let dims = self.ty(o).shape.dims();
                    let mut strides = out.strides.clone();
                    let step = strides.remove(*axis);
                    let dst = Strided { offset: out.offset + k as i64 * step, strides, ..out.clone() };
                    self.copy(id, dims, src, dst);
                }
            }
            Op::ScatterAdd { .. } => self.lower_scatter(id)?,
            Op::Matmul => self.lower_matmul(id)?,
            Op::Outer => {
                let (a, b) = (self.access(ops[0])?, self.access(ops[1])?);
                let mut kb = KernelBuilder::new(shape);
                let la = kb.leaf(Strided { strides: SmallVec::from_slice(&[a.strides[0], 0]), ..a });
                let lb = kb.leaf(Strided { strides: SmallVec::from_slice(&[0, b.strides[0]]), ..b });
                kb.expr.push(ExprKind::Binary(tessera_graph::BinaryOp::Mul, la, lb), DType::F64);
                let out = Output::Direct(self.own(id)?);
                self.push_kernel(id, kb, out, Mode::Map);
            }
            Op::Cholesky => {
                let call = Call::Cholesky { n: shape[0], a: self.access(ops[0])?, out: self.own(id)? };
                self.steps.push(Step::Call(call));
            }
            Op::TriangularSolve { lower } => {
                let a = self.access(ops[0])?;
                let (b, out) = (self.access(ops[1])?, self.own(id)?);
                let m = if shape.len() == 2 { shape[1] } else { 1 };
                let as_matrix = |s: Strided| {
                    if s.strides.len() == 1 { Strided { strides: SmallVec::from_slice(&[s.strides[0], 0]), ..s } } else { s }
                };
                let call = Call::TriangularSolve { lower: *lower, n: shape[0], m, a, b: as_matrix(b), out: as_matrix(out) };
                self.steps.push(Step::Call(call));
            }
            Op::LogDetChol => {
                let l = self.access(ops[0])?;
                let n = self.ty(ops[0]).shape.dims()[0];
                let mut kb = KernelBuilder::new(&[n]);
                let leaf = kb.leaf(Strided { strides: SmallVec::from_slice(&[l.strides[0] + l.strides[1]]), ..l });
                kb.expr.push(ExprKind::Unary(UnaryOp::Log, leaf), DType::F64);
                let mut finish = Expr::leaf(0, DType::F64);
                let two = finish.push(ExprKind::Const(Scalar::F64(2.0)), DType::F64);
                finish.push(ExprKind::Binary(tessera_graph::BinaryOp::Mul, two, 0), DType::F64);
                let out = Strided { strides: SmallVec::from_slice(&[0]), ..self.own(id)? };
                let mode = Mode::Reduce { combine: Combine::Sum, reduced: SmallVec::from_slice(&[true]), finish: Some(finish) };
                self.push_kernel(id, kb, Output::Direct(out), mode);
            }
            Op::DiagMatrix => {
                let out = self.own(id)?;
                let n = shape[0];
                let zero = match out.dtype {
                    DType::F64 => Scalar::F64(0.0),
                    DType::I64 => Scalar::I64(0),
                    DType::Bool => Scalar::Bool(false),
                };
                self.fill(id, shape, out.clone(), zero);
                let src = self.access(ops[0])?;
                let diag = Strided { strides: SmallVec::from_slice(&[out.strides[0] + out.strides[1]]), ..out };
                self.copy(id, &[n], src, diag);
            }
            Op::Input { .. }
            | Op::Const(_)
            | Op::Transpose { .. }
            | Op::ExpandDims { .. }
            | Op::Squeeze { .. }
            | Op::BroadcastTo { .. }
            | Op::Slice { .. }
            | Op::Diag => return Err(unsupported(self.g, id, "expected a view or a leaf, not a computed node")),
        }
        Ok(())
    }

    /// Reduces node `id`'s operand (a plain reduction).
    fn lower_reduce(&mut self, id: NodeId, kind: ReduceOp, axes: &[usize], keepdims: bool) -> Result<(), CodegenError> {
        let src = self.g.node(id).operands[0];
        let src_shape = self.ty(src).shape.dims().to_vec();
        let mut kb = KernelBuilder::new(&src_shape);
        let x = kb.value(self, src)?;
        self.reduce_kernels(id, kb, x, kind, axes, keepdims)
    }

    /// The kernels reducing expression node `x` of `kb` (over `kb`'s domain) into node `id`.
    fn reduce_kernels(
        &mut self,
        id: NodeId,
        mut kb: KernelBuilder,
        x: usize,
        kind: ReduceOp,
        axes: &[usize],
        keepdims: bool,
    ) -> Result<(), CodegenError> {
        let src_shape = kb.domain.to_vec();
        let rank = src_shape.len();
        let reduced: SmallVec<[bool; 4]> = (0..rank).map(|a| axes.contains(&a)).collect();
        let own = self.own(id)?;
        // The output's strides over the operand's axes: 0 on reduced ones.
        let out_strides = |s: &Strides| -> Strides {
            let mut it = s.iter();
            (0..rank)
                .map(|a| {
                    if keepdims {
                        let st = *it.next().unwrap_or(&0);
                        if reduced[a] { 0 } else { st }
                    } else if reduced[a] {
                        0
                    } else {
                        *it.next().unwrap_or(&0)
                    }
                })
                .collect()
        };
        let out = Strided { strides: out_strides(&own.strides), ..own.clone() };
        let count: usize = axes.iter().map(|&a| src_shape[a]).product();
        kb.expr.root = x;
        let dtype = self.ty(id).dtype;
        if let Some(combine) = Combine::of(kind) {
            let mode = Mode::Reduce { combine, reduced, finish: None };
            self.push_kernel(id, kb, Output::Direct(out), mode);
            return Ok(());
        }
        if kind == ReduceOp::Mean {
            let mut finish = Expr::leaf(0, dtype);
            let n = finish.push(ExprKind::Const(Scalar::F64(count as f64)), DType::F64);
            finish.push(ExprKind::Binary(tessera_graph::BinaryOp::Div, 0, n), DType::F64);
            let mode = Mode::Reduce { combine: Combine::Sum, reduced, finish: Some(finish) };
            self.push_kernel(id, kb, Output::Direct(out), mode);
            return Ok(());
        }
        // logsumexp: m = max x; s = Σ exp(x − m); out = m + ln s (or m when m is not finite).
        let bytes = self.bytes(id);
        let tmp_off = self.alloc.alloc(bytes);
        let m_own = Strided { base: Base::Workspace(tmp_off), offset: 0, strides: own.strides.clone(), dtype };
        let m_dom = Strided { strides: out_strides(&m_own.strides), ..m_own.clone() };
        let max_mode = Mode::Reduce { combine: Combine::Max, reduced: reduced.clone(), finish: None };
        self.push_kernel(id, kb.clone(), Output::Direct(m_dom.clone()), max_mode);
        let m_leaf = kb.leaf(m_dom);
        let d = kb.expr.push(ExprKind::Binary(tessera_graph::BinaryOp::Sub, x, m_leaf), DType::F64);
        kb.expr.push(ExprKind::Unary(UnaryOp::Exp, d), DType::F64);
        let sum_mode = Mode::Reduce { combine: Combine::Sum, reduced, finish: None };
        self.push_kernel(id, kb, Output::Direct(out), sum_mode);
        let out_shape = self.ty(id).shape.dims().to_vec();
        let mut fin = KernelBuilder::new(&out_shape);
        let s = fin.leaf(own.clone());
        let m = fin.leaf(m_own);
        let e = &mut fin.expr;
        let ln = e.push(ExprKind::Unary(UnaryOp::Log, s), DType::F64);
        let sum = e.push(ExprKind::Binary(tessera_graph::BinaryOp::Add, m, ln), DType::F64);
        let finite = e.push(ExprKind::Unary(UnaryOp::IsFinite, m), DType::Bool);
        e.push(ExprKind::Where(finite, sum, m), DType::F64);
        self.push_kernel(id, fin, Output::Direct(own), Mode::Map);
        self.alloc.release(tmp_off, bytes);
        Ok(())
    }

    fn lower_scatter(&mut self, id: NodeId) -> Result<(), CodegenError> {
        let upd = self.g.node(id).operands[0];
        let out = self.scatter_output(id)?;
        let mut kb = KernelBuilder::new(self.ty(upd).shape.dims());
        kb.value(self, upd)?;
        self.push_kernel(id, kb, out, Mode::Map);
        self.merge_spread();
        Ok(())
    }

    /// Zeroes scatter-add node `id`'s buffer (a step of its own) and returns where its
    /// updates (iterated over their own shape) go: a strided store when the indices are a
    /// constant progression of distinct values, else an indexed accumulation.
    fn scatter_output(&mut self, id: NodeId) -> Result<Output, CodegenError> {
        let node = self.g.node(id);
        let Op::ScatterAdd { axis, size } = node.op else { return Err(unsupported(self.g, id, "not a scatter_add")) };
        let (upd, idx) = (node.operands[0], node.operands[1]);
        let own = self.own(id)?;
        let zero = if own.dtype == DType::I64 { Scalar::I64(0) } else { Scalar::F64(0.0) };
        let shape = self.ty(id).shape.dims().to_vec();
        let upd_rank = self.ty(upd).shape.rank();
        let idx_shape = self.ty(idx).shape.clone();
        let k = idx_shape.rank();
        let data_strides = indexed_axis_strides(&own.strides, axis, k);
        let data = Strided { strides: data_strides, ..own.clone() };
        // Distinct constant indices in a progression: a strided store (after zeroing the rest).
        let distinct = |step: i64| step != 0 || idx_shape.size() <= 1;
        if let Some((start, step)) = self.progression(idx, size).filter(|&(_, step)| distinct(step)) {
            let covers_all = start == 0 && step == 1 && idx_shape.size() == size;
            if !covers_all {
                self.fill(id, &shape, own.clone(), zero);
            }
            return Ok(Output::Direct(progression_view(&data, axis, own.strides[axis], &idx_shape, start, step)));
        }
        self.fill(id, &shape, own.clone(), zero);
        let idx_acc = self.access(idx)?;
        let post = upd_rank - axis - k;
        let index_strides = index_axis_strides(&idx_acc.strides, axis, post);
        let check = self.index_check(id, idx, size);
        let spread = self.spread_buffers(id, idx, &own);
        Ok(Output::Scatter(Indexed {
            data,
            index: Strided { strides: index_strides, ..idx_acc },
            axis_stride: own.strides[axis],
            axis_len: size,
            check,
            spread,
        }))
    }

    /// Zeroed workspace buffers for scatter-add `id` to spread its updates over, when its
    /// indices are constants in runs (e.g. rows sorted by group): consecutive updates of one
    /// element would otherwise wait on each other's store. Their sum is added into the result
    /// by [`Planner::merge_spread`] after the scatter's kernel.
    fn spread_buffers(&mut self, id: NodeId, idx: NodeId, own: &Strided) -> SmallVec<[Base; 4]> {
        let size = self.ty(id).shape.size();
        let copies = spread_copies(self.g, idx, size);
        if copies < 2 || own.dtype != DType::F64 || self.ty(id).shape.rank() != 1 {
            return SmallVec::new();
        }
        let bytes = self.bytes(id);
        let extra = copies - 1;
        let off = self.alloc.alloc(extra * bytes);
        let block = Strided { base: Base::Workspace(off), offset: 0, strides: SmallVec::from_elem(1, 1), dtype: DType::F64 };
        self.fill(id, &[extra * size], block, Scalar::F64(0.0));
        let bases: SmallVec<[Base; 4]> = (0..extra).map(|k| Base::Workspace(off + k * bytes)).collect();
        self.spread.push(Spread { id, own: own.clone(), bases: bases.clone(), block: (off, extra * bytes) });
        bases
    }

    /// Adds the spread buffers of the scatters just lowered into their results, and frees them.
    fn merge_spread(&mut self) {
        for Spread { id, own, bases, block } in std::mem::take(&mut self.spread) {
            let mut kb = KernelBuilder::new(self.ty(id).shape.dims());
            let mut sum = kb.leaf(own.clone());
            for &base in &bases {
                let x = kb.leaf(Strided { base, ..own.clone() });
                sum = kb.expr.push(ExprKind::Binary(tessera_graph::BinaryOp::Add, sum, x), DType::F64);
            }
            self.push_kernel(id, kb, Output::Direct(own), Mode::Map);
            self.alloc.release(block.0, block.1);
        }
    }

    fn lower_matmul(&mut self, id: NodeId) -> Result<(), CodegenError> {
        let ops = &self.g.node(id).operands;
        let (a, b) = (self.access(ops[0])?, self.access(ops[1])?);
        let (ad, bd) = (self.ty(ops[0]).shape.dims().to_vec(), self.ty(ops[1]).shape.dims().to_vec());
        let out = self.own(id)?;
        let dtype = out.dtype;
        // Every form as (m, k, n) with matrix strides; a vector is a 1-row or 1-column matrix.
        let (m, k, n) = match (ad.len(), bd.len()) {
            (1, 1) => (1, ad[0], 1),
            (2, 1) => (ad[0], ad[1], 1),
            (1, 2) => (1, ad[0], bd[1]),
            _ => (ad[0], ad[1], bd[1]),
        };
        let sa: [i64; 2] = if ad.len() == 1 { [0, a.strides[0]] } else { [a.strides[0], a.strides[1]] };
        let sb: [i64; 2] = if bd.len() == 1 { [b.strides[0], 0] } else { [b.strides[0], b.strides[1]] };
        let so: [i64; 2] = match (ad.len(), bd.len()) {
            (1, 1) => [0, 0],
            (2, 1) => [out.strides[0], 0],
            (1, 2) => [0, out.strides[0]],
            _ => [out.strides[0], out.strides[1]],
        };
        let with = |s: &Strided, st: [i64; 2]| Strided { strides: SmallVec::from_slice(&st), ..s.clone() };
        // dgemm packs its operands: a win for matrix·matrix, a loss for products with a
        // vector (measured on logistic regression's 5000×25 products), unless forced.
        let matrices = ad.len() == 2 && bd.len() == 2;
        if dtype == DType::F64 && (matrices || self.opts.dgemm_min_work == 0) && m * k * n >= self.opts.dgemm_min_work {
            let call = Call::Dgemm { m, k, n, a: with(&a, sa), b: with(&b, sb), out: with(&out, so) };
            self.steps.push(Step::Call(call));
            return Ok(());
        }
        // Domain (m, n, k), reducing k: out[i, j] = Σ_l a[i, l] b[l, j].
        let mut kb = KernelBuilder::new(&[m, n, k]);
        let la = kb.leaf(Strided { strides: SmallVec::from_slice(&[sa[0], 0, sa[1]]), ..a });
        let lb = kb.leaf(Strided { strides: SmallVec::from_slice(&[0, sb[1], sb[0]]), ..b });
        kb.expr.push(ExprKind::Binary(tessera_graph::BinaryOp::Mul, la, lb), dtype);
        let out = Strided { strides: SmallVec::from_slice(&[so[0], so[1], 0]), ..out };
        let mode = Mode::Reduce { combine: Combine::Sum, reduced: SmallVec::from_slice(&[false, false, true]), finish: None };
        self.push_kernel(id, kb, Output::Direct(out), mode);
        Ok(())
    }

    /// Outputs not computed in place (inputs, constants, views, repeated outputs) are copied.
    fn copy_outputs(&mut self) {
        for (k, &o) in self.g.outputs().iter().enumerate() {
            if self.base[o.index()] == Some(Base::Output(k)) {
                continue;
            }
            let Ok(src) = self.access(o) else { continue };
            let t = self.ty(o);
            let dst = Strided { base: Base::Output(k), offset: 0, strides: contiguous(&t.shape), dtype: t.dtype };
            let dims = t.shape.dims().to_vec();
            self.copy(o, &dims, src, dst);
        }
    }
}

/// Strides of a view broadcast from `shape` (with `strides`) to `target` (NumPy rules).
pub fn broadcast_strides(shape: &Shape, strides: &[i64], target: &[usize]) -> Strides {
    let pad = target.len() - shape.rank();
    (0..target.len())
        .map(|a| {
            if a < pad {
                0
            } else {
                let d = shape.dims()[a - pad];
                if d == 1 { 0 } else { strides[a - pad] }
            }
        })
        .collect()
}

/// Builds one kernel's leaves and expression over a fixed domain.
#[derive(Clone)]
struct KernelBuilder {
    domain: SmallVec<[usize; 4]>,
    leaves: Vec<Leaf>,
    expr: Expr,
    memo: FxHashMap<NodeId, usize>,
}

impl KernelBuilder {
    fn new(domain: &[usize]) -> KernelBuilder {
        KernelBuilder { domain: SmallVec::from_slice(domain), leaves: Vec::new(), expr: Expr::new(), memo: FxHashMap::default() }
    }

    /// Adds a direct leaf and returns its expression node.
    fn leaf(&mut self, s: Strided) -> usize {
        let dtype = s.dtype;
        let k = match self.leaves.iter().position(|l| *l == Leaf::Direct(s.clone())) {
            Some(k) => k,
            None => {
                self.leaves.push(Leaf::Direct(s));
                self.leaves.len() - 1
            }
        };
        self.expr.push(ExprKind::Leaf(k), dtype)
    }

    /// The expression node giving node `id`'s value at the current domain element.
    fn value(&mut self, p: &Planner<'_>, id: NodeId) -> Result<usize, CodegenError> {
        if let Some(&e) = self.memo.get(&id) {
            return Ok(e);
        }
        let e = if p.kind[id.index()] == Some(Kind::Inlined) {
            self.expr_of_op(p, id)?
        } else {
            let s = p.access(id)?;
            let shape = &p.ty(id).shape;
            let strides = broadcast_strides(shape, &s.strides, &self.domain);
            let s = Strided { strides, ..s };
            match single_constant(p, &s, &self.domain) {
                Some(c) => self.expr.push(ExprKind::Const(c), s.dtype),
                None => self.leaf(s),
            }
        };
        self.memo.insert(id, e);
        Ok(e)
    }

    /// The expression computing elementwise (or gather) node `id` from its operands' values.
    fn expr_of_op(&mut self, p: &Planner<'_>, id: NodeId) -> Result<usize, CodegenError> {
        let node = p.g.node(id);
        let ops = &node.operands;
        let dtype = node.ty.dtype;
        let kind = match &node.op {
            Op::Unary(u) => ExprKind::Unary(*u, self.value(p, ops[0])?),
            Op::Binary(b) => {
                let x = self.value(p, ops[0])?;
                ExprKind::Binary(*b, x, self.value(p, ops[1])?)
            }
            Op::Where => {
                let c = self.value(p, ops[0])?;
                let a = self.value(p, ops[1])?;
                ExprKind::Where(c, a, self.value(p, ops[2])?)
            }
            Op::Cast { .. } => ExprKind::Cast(self.value(p, ops[0])?),
            Op::Gather { axis } => {
                let leaf = self.gather_leaf(p, id, *axis)?;
                self.leaves.push(leaf);
                ExprKind::Leaf(self.leaves.len() - 1)
            }
            Op::Fused(f) if f.reduce.is_none() => return self.fused_body(p, id),
            _ => return Err(unsupported(p.g, id, "not an elementwise op")),
        };
        Ok(self.expr.push(kind, dtype))
    }

    /// The expression of fused node `id`'s body (its `$i` are the operands' values over this
    /// kernel's domain); returns the result's expression node.
    fn fused_body(&mut self, p: &Planner<'_>, id: NodeId) -> Result<usize, CodegenError> {
        let node = p.g.node(id);
        let Op::Fused(f) = &node.op else { return Err(unsupported(p.g, id, "not a fused node")) };
        let arg_types: Vec<&TensorType> = node.operands.iter().map(|&o| p.ty(o)).collect();
        let dtypes = f.dtypes(&arg_types).map_err(|e| unsupported(p.g, id, e.to_string()))?;
        let mut vals: Vec<usize> = Vec::with_capacity(f.body.len());
        for (ins, &dtype) in f.body.iter().zip(&dtypes) {
            let at = |i: u16| vals.get(i as usize).copied().ok_or_else(|| unsupported(p.g, id, "malformed kernel body"));
            let kind = match *ins {
                ScalarInstr::Arg(a) => {
                    let &o = node.operands.get(a as usize).ok_or_else(|| unsupported(p.g, id, "missing operand"))?;
                    vals.push(self.value(p, o)?);
                    continue;
                }
                ScalarInstr::Const(c) => ExprKind::Const(match c {
                    ConstScalar::F64(bits) => Scalar::F64(f64::from_bits(bits)),
                    ConstScalar::I64(v) => Scalar::I64(v),
                    ConstScalar::Bool(v) => Scalar::Bool(v),
                }),
                ScalarInstr::Unary(u, x) => ExprKind::Unary(u, at(x)?),
                ScalarInstr::Binary(b, x, y) => ExprKind::Binary(b, at(x)?, at(y)?),
                ScalarInstr::Where(c, x, y) => ExprKind::Where(at(c)?, at(x)?, at(y)?),
                ScalarInstr::Cast(_, x) => ExprKind::Cast(at(x)?),
            };
            vals.push(self.expr.push(kind, dtype));
        }
        let root = *vals.last().ok_or_else(|| unsupported(p.g, id, "empty kernel body"))?;
        self.expr.root = root;
        Ok(root)
    }

    /// The gathered leaf of node `id` (its shape is this kernel's domain).
    fn gather_leaf(&mut self, p: &Planner<'_>, id: NodeId, axis: usize) -> Result<Leaf, CodegenError> {
        let ops = &p.g.node(id).operands;
        let (a, idx) = (p.access(ops[0])?, p.access(ops[1])?);
        let len = p.ty(ops[0]).shape.dims()[axis];
        let k = p.ty(ops[1]).shape.rank();
        let post = self.domain.len() - axis - k;
        let data_strides = indexed_axis_strides(&a.strides, axis, k);
        let index_strides = index_axis_strides(&idx.strides, axis, post);
        let data = Strided { strides: data_strides, ..a.clone() };
        if let Some((start, step)) = p.progression(ops[1], len) {
            let view = progression_view(&data, axis, a.strides[axis], &p.ty(ops[1]).shape, start, step);
            return Ok(Leaf::Direct(view));
        }
        // Code 0 is a placeholder: `push_kernel` numbers the checks of the finished kernel.
        let check = if index_in_range(p, ops[1], len) { None } else { Some(0) };
        Ok(Leaf::Gather(Indexed {
            data,
            index: Strided { strides: index_strides, ..idx },
            axis_stride: a.strides[axis],
            axis_len: len,
            check,
            spread: SmallVec::new(),
        }))
    }

}

/// `(start, step)` when `idx` is a constant arithmetic progression (row-major) inside `0..len`.
fn const_progression(g: &Graph, idx: NodeId, len: usize) -> Option<(i64, i64)> {
    let Op::Const(c) = &g.node(idx).op else { return None };
    let ConstData::I64(v) = c.data() else { return None };
    let (&start, rest) = v.split_first()?;
    let step = rest.first().map_or(0, |&x| x.wrapping_sub(start));
    let in_range = |i: i64| i >= 0 && (i as u64) < len as u64;
    let follows = v.iter().enumerate().all(|(k, &x)| Some(x) == step.checked_mul(k as i64).and_then(|d| start.checked_add(d)));
    (follows && in_range(start) && in_range(*v.last()?)).then_some((start, step))
}

/// How many buffers a scatter-add of constant rank-1 indices `idx` into `size` elements
/// should spread its updates over (1: just its result). Worth it when at least a quarter of
/// the indices repeat the one before (runs, as in rows sorted by group) and the extra
/// buffers (zeroed, then added) hold at most half as many elements as there are updates.
/// The emitter gives the lanes of its unrolled vectors a buffer each; more buffers than it
/// has lanes (four, for the usual unroll of two) were measured to cost more than they save.
fn spread_copies(g: &Graph, idx: NodeId, size: usize) -> usize {
    let Op::Const(c) = &g.node(idx).op else { return 1 };
    let ConstData::I64(v) = c.data() else { return 1 };
    if c.shape().rank() != 1 {
        return 1;
    }
    let repeats = v.windows(2).filter(|w| w[0] == w[1]).count();
    if repeats * 4 < v.len() {
        return 1;
    }
    [4, 2].into_iter().find(|&copies| 2 * (copies - 1) * size <= v.len()).unwrap_or(1)
}

/// The strides of a gathered/scattered view when the indices (of shape `idx_shape`, placed at
/// `axis`) are the progression `start + step·k`: the index axes walk the indexed axis.
fn progression_view(data: &Strided, axis: usize, axis_stride: i64, idx_shape: &Shape, start: i64, step: i64) -> Strided {
    let rm = contiguous(idx_shape);
    let mut strides = data.strides.clone();
    for (d, &r) in rm.iter().enumerate() {
        strides[axis + d] = step * r * axis_stride;
    }
    Strided { offset: data.offset + start * axis_stride, strides, ..data.clone() }
}

/// Whether constant indices `idx` all lie in `0..len`.
fn index_in_range(p: &Planner<'_>, idx: NodeId, len: usize) -> bool {
    matches!(&p.g.node(idx).op, Op::Const(c)
        if matches!(c.data(), ConstData::I64(v) if v.iter().all(|&i| i >= 0 && (i as u64) < len as u64)))
}

/// The value of a view of a constant that reads one element everywhere in `domain`.
fn single_constant(p: &Planner<'_>, s: &Strided, domain: &[usize]) -> Option<Scalar> {
    let Base::Const(k) = s.base else { return None };
    let varies = s.strides.iter().zip(domain).any(|(&st, &d)| st != 0 && d > 1);
    if varies || domain.contains(&0) {
        return None;
    }
    let i = usize::try_from(s.offset).ok()?;
    Some(match &p.consts[k] {
        ConstData::F64(v) => Scalar::F64(*v.get(i)?),
        ConstData::I64(v) => Scalar::I64(*v.get(i)?),
        ConstData::Bool(v) => Scalar::Bool(*v.get(i)?),
    })
}

/// Strides of a tensor indexed along `axis` by a rank-`k` index, over the gather/scatter
/// domain: the indexed axis becomes `k` axes of stride 0 (the index supplies the offset).
fn indexed_axis_strides(strides: &[i64], axis: usize, k: usize) -> Strides {
    strides[..axis].iter().copied().chain(std::iter::repeat_n(0, k)).chain(strides[axis + 1..].iter().copied()).collect()
}

/// Strides of the indices over the gather/scatter domain: `axis` leading axes and `post`
/// trailing ones of stride 0 around the index's own axes.
fn index_axis_strides(idx_strides: &[i64], axis: usize, post: usize) -> Strides {
    std::iter::repeat_n(0, axis).chain(idx_strides.iter().copied()).chain(std::iter::repeat_n(0, post)).collect()
}
