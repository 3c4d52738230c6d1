//! The planner: lowers a graph to a [`Program`] of kernels and calls, decides which nodes are
//! views (strides only), which are computed inside their consumer's loop (elementwise chains
//! and gathers with one user), and where every computed buffer lives (outputs directly in the
//! caller's slices, the rest in one workspace whose slots are reused once their value is dead).

use std::collections::HashMap;

use smallvec::SmallVec;
use tessera_graph::{ConstData, DType, Graph, NodeId, Op, ReduceOp, Shape, TensorType, UnaryOp};

use crate::CodegenError;
use crate::expr::{Expr, ExprKind, Scalar};
use crate::kernel::{
    Base, Call, Combine, Indexed, Kernel, Leaf, Mode, Output, Program, Step, Strided, Strides, elem_size,
};

/// Choices of the planner.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Compute single-use elementwise nodes (and gathers) inside their consumer's loop.
    pub fuse: bool,
    /// Matrix products with at least this many multiply-adds (m·k·n) call
    /// `matrixmultiply::dgemm`; smaller ones are inline loops.
    pub dgemm_min_work: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { fuse: true, dgemm_min_work: 32 * 32 * 32 }
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
}

fn unsupported(g: &Graph, id: NodeId, reason: impl Into<String>) -> CodegenError {
    CodegenError::Unsupported { op: g.node(id).op.name().to_string(), node: id.to_string(), reason: reason.into() }
}

impl<'g> Planner<'g> {
    fn new(g: &'g Graph, opts: &'g PlanOptions) -> Result<Planner<'g>, CodegenError> {
        tessera_graph::verify(g).map_err(|e| CodegenError::InvalidGraph(e.to_string()))?;
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
        let frees = self.last_uses(&users);
        for (pos, &id) in self.live.clone().iter().enumerate() {
            if self.kind[id.index()] == Some(Kind::Materialized) {
                if self.base[id.index()].is_none() {
                    let off = self.alloc.alloc(self.bytes(id));
                    self.base[id.index()] = Some(Base::Workspace(off));
                }
                self.lower(id)?;
            }
            for &root in &frees[pos] {
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
        for &id in &self.live.clone() {
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
                _ if self.inlinable(id, users) => Kind::Inlined,
                _ => Kind::Materialized,
            };
            self.kind[id.index()] = Some(kind);
        }
    }

    /// Whether `id` can be computed inside its only user's loop: an elementwise op or a gather,
    /// not an output, whose single user iterates exactly over `id`'s shape.
    fn inlinable(&self, id: NodeId, users: &[SmallVec<[NodeId; 2]>]) -> bool {
        let node = self.g.node(id);
        let producer_ok = node.op.is_elementwise() || matches!(node.op, Op::Gather { .. });
        if !self.opts.fuse || !producer_ok || self.g.outputs().contains(&id) || users[id.index()].len() != 1 {
            return false;
        }
        let user = self.g.node(users[id.index()][0]);
        match &user.op {
            op if op.is_elementwise() => user.ty.shape == node.ty.shape,
            Op::Reduce { kind, .. } => *kind != ReduceOp::LogSumExp,
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

    /// For each position of the live order, the storage roots whose last use is there.
    fn last_uses(&self, users: &[SmallVec<[NodeId; 2]>]) -> Vec<Vec<NodeId>> {
        let n = self.live.len();
        let mut pos = vec![usize::MAX; self.g.arena_len()];
        for (p, &id) in self.live.iter().enumerate() {
            pos[id.index()] = p;
        }
        // Inlined nodes run at their (transitive) user's position.
        let mut at = pos.clone();
        for &id in self.live.iter().rev() {
            if self.kind[id.index()] == Some(Kind::Inlined)
                && let Some(&u) = users[id.index()].first()
            {
                at[id.index()] = at[u.index()];
            }
        }
        let mut last = vec![None::<usize>; self.g.arena_len()];
        for &id in &self.live {
            for &o in &self.g.node(id).operands {
                if let Some(l) = &self.layout[o.index()] {
                    let r = l.root.index();
                    last[r] = Some(last[r].map_or(at[id.index()], |p: usize| p.max(at[id.index()])));
                }
            }
        }
        for &o in self.g.outputs() {
            if let Some(l) = &self.layout[o.index()] {
                last[l.root.index()] = Some(usize::MAX);
            }
        }
        let mut frees = vec![Vec::new(); n];
        for (i, l) in last.iter().enumerate() {
            if let Some(p) = *l
                && p < n
            {
                frees[p].push(NodeId::from_index(i));
            }
        }
        frees
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

    /// The run-time check code for indices `idx` into an axis of extent `len` (`None` when the
    /// indices are constants already known to be in range).
    fn index_check(&mut self, user: NodeId, idx: NodeId, len: usize) -> Option<u32> {
        if let Op::Const(c) = &self.g.node(idx).op
            && let ConstData::I64(v) = c.data()
            && v.iter().all(|&i| i >= 0 && (i as u64) < len as u64)
        {
            return None;
        }
        let op = self.g.node(user).op.name();
        Some(self.add_check(format!("{op} at node {user}: an index is outside 0..{len}")))
    }

    fn push_kernel(&mut self, id: NodeId, mut kb: KernelBuilder, out: Output, mode: Mode) {
        let label = format!("{} {}", self.g.node(id).op.name(), id);
        for leaf in &mut kb.leaves {
            if let Leaf::Gather(ix) = leaf
                && ix.check == Some(0)
            {
                let what = format!("gather inside {label}: an index is outside 0..{}", ix.axis_len);
                ix.check = Some(self.add_check(what));
            }
        }
        self.steps.push(Step::Kernel(Kernel { domain: kb.domain, leaves: kb.leaves, expr: kb.expr, out, mode, label }));
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
            Op::Cumsum { axis, reverse } => {
                let src_shape = self.ty(ops[0]).shape.dims();
                let mut kb = KernelBuilder::new(src_shape);
                kb.value(self, ops[0])?;
                let out = self.own(id)?;
                let rank = shape.len();
                let mut k = Kernel {
                    domain: kb.domain,
                    leaves: kb.leaves,
                    expr: kb.expr,
                    out: Output::Direct(out),
                    mode: Mode::Scan,
                    label: format!("cumsum {id}"),
                };
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
            Op::ScatterAdd { axis, size } => self.lower_scatter(id, *axis, *size)?,
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

    fn lower_reduce(&mut self, id: NodeId, kind: ReduceOp, axes: &[usize], keepdims: bool) -> Result<(), CodegenError> {
        let src = self.g.node(id).operands[0];
        let src_shape = self.ty(src).shape.dims().to_vec();
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
        let mut kb = KernelBuilder::new(&src_shape);
        let x = kb.value(self, src)?;
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

    fn lower_scatter(&mut self, id: NodeId, axis: usize, size: usize) -> Result<(), CodegenError> {
        let ops = &self.g.node(id).operands;
        let (upd, idx) = (ops[0], ops[1]);
        let own = self.own(id)?;
        let zero = if own.dtype == DType::I64 { Scalar::I64(0) } else { Scalar::F64(0.0) };
        let shape = self.ty(id).shape.dims().to_vec();
        self.fill(id, &shape, own.clone(), zero);
        let upd_shape = self.ty(upd).shape.dims().to_vec();
        let k = self.ty(idx).shape.rank();
        let post = upd_shape.len() - axis - k;
        let mut kb = KernelBuilder::new(&upd_shape);
        kb.value(self, upd)?;
        let idx_acc = self.access(idx)?;
        let data_strides: Strides = own.strides[..axis]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, k))
            .chain(own.strides[axis + 1..].iter().copied())
            .collect();
        let index_strides: Strides =
            std::iter::repeat_n(0, axis).chain(idx_acc.strides.iter().copied()).chain(std::iter::repeat_n(0, post)).collect();
        let check = self.index_check(id, idx, size);
        let out = Output::Scatter(Indexed {
            data: Strided { strides: data_strides, ..own.clone() },
            index: Strided { strides: index_strides, ..idx_acc },
            axis_stride: own.strides[axis],
            axis_len: size,
            check,
        });
        self.push_kernel(id, kb, out, Mode::Map);
        Ok(())
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
        if dtype == DType::F64 && m * k * n >= self.opts.dgemm_min_work {
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
    memo: HashMap<NodeId, usize>,
}

impl KernelBuilder {
    fn new(domain: &[usize]) -> KernelBuilder {
        KernelBuilder { domain: SmallVec::from_slice(domain), leaves: Vec::new(), expr: Expr::new(), memo: HashMap::new() }
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
            _ => return Err(unsupported(p.g, id, "not an elementwise op")),
        };
        Ok(self.expr.push(kind, dtype))
    }

    /// The gathered leaf of node `id` (its shape is this kernel's domain).
    fn gather_leaf(&mut self, p: &Planner<'_>, id: NodeId, axis: usize) -> Result<Leaf, CodegenError> {
        let ops = &p.g.node(id).operands;
        let (a, idx) = (p.access(ops[0])?, p.access(ops[1])?);
        let len = p.ty(ops[0]).shape.dims()[axis];
        let k = p.ty(ops[1]).shape.rank();
        let post = self.domain.len() - axis - k;
        let data_strides: Strides = a.strides[..axis]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, k))
            .chain(a.strides[axis + 1..].iter().copied())
            .collect();
        let index_strides: Strides =
            std::iter::repeat_n(0, axis).chain(idx.strides.iter().copied()).chain(std::iter::repeat_n(0, post)).collect();
        // Code 0 is a placeholder: `push_kernel` numbers the checks of the finished kernel.
        let check = if index_in_range(p, ops[1], len) { None } else { Some(0) };
        Ok(Leaf::Gather(Indexed {
            data: Strided { strides: data_strides, ..a.clone() },
            index: Strided { strides: index_strides, ..idx },
            axis_stride: a.strides[axis],
            axis_len: len,
            check,
        }))
    }

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
