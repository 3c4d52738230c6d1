//! Shapes and indexing: transpose and reshape chains collapsed, identity shape ops removed,
//! broadcasts folded into elementwise consumers, gathers of constant ranges turned into
//! slices, trivial scatter-adds removed, sums of scatter-adds into one tensor merged (the
//! gradient of a parameter vector read through several slices is one scatter, not a zero fill
//! and an add per slice; when its pieces land in blocks of consecutive places, just a
//! concatenation). Exact, except that merged scatter-adds may add updates that share an index
//! in another order.

use smallvec::SmallVec;
use tessera_graph::{Axes, ConstData, NodeId, Op, SliceRange};

use crate::engine::{Ctx, Rule, func_rule};

/// The shape and indexing rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        func_rule!(transpose_chain, ["transpose"], transpose_chain), // transpose_q(transpose_p x) → transpose_(p∘q) x; identity → x
        func_rule!(reshape_chain, ["reshape", "expand_dims", "squeeze"], reshape_chain), // reshape(reshape x) → reshape x; same shape → x
        func_rule!(broadcast_chain, ["broadcast_to"], broadcast_chain), // broadcast(broadcast x) → broadcast x; same shape → x
        func_rule!(broadcast_into_elementwise, ["*"], broadcast_into_elementwise), // f(broadcast a, b) → broadcast f(a, b)
        func_rule!(gather_range_to_slice, ["gather"], gather_range_to_slice), // take(a, [k, k+s, …]) → a[k::s]
        func_rule!(scatter_add_trivial, ["scatter_add"], scatter_add_trivial), // scatter_add(0, i) → 0; scatter_add(u, 0..n) → u
        func_rule!(scatter_add_merge, ["add"], scatter_add_merge), // scatter_add(u, i) + scatter_add(v, j) → scatter_add(u ++ v, i ++ j)
        func_rule!(scatter_add_blocks, ["scatter_add"], scatter_add_blocks), // scatter_add(a ++ b, [2, 3, 0, 1]) → b ++ a
        func_rule!(concat_flatten, ["concatenate"], concat_flatten), // (a ++ b) ++ c → a ++ b ++ c
    ]
}

fn transpose_chain(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let Op::Transpose { perm: outer } = ctx.op(id).clone() else { return None };
    let x = ctx.operand(id, 0);
    if outer.iter().enumerate().all(|(i, &p)| i == p) {
        return Some(x);
    }
    let Op::Transpose { perm: inner } = ctx.op(x).clone() else { return None };
    // result axis i = inner-result axis outer[i] = x axis inner[outer[i]]
    let perm: Axes = outer.iter().map(|&o| inner[o]).collect();
    let y = ctx.operand(x, 0);
    ctx.add(Op::Transpose { perm }, &[y])
}

/// Reshape-like ops (reshape, expand_dims, squeeze) keep the row-major element order, so a
/// chain of them is one reshape, and a reshape to the same shape is nothing.
fn reshape_chain(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let x = ctx.operand(id, 0);
    let want = ctx.ty(id).shape.clone();
    if ctx.ty(x).shape == want {
        return Some(x);
    }
    if !matches!(ctx.op(x), Op::Reshape { .. } | Op::ExpandDims { .. } | Op::Squeeze { .. }) {
        return None;
    }
    let y = ctx.operand(x, 0);
    if ctx.ty(y).shape == want {
        return Some(y);
    }
    ctx.add(Op::Reshape { shape: want }, &[y])
}

fn broadcast_chain(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let x = ctx.operand(id, 0);
    let want = ctx.ty(id).shape.clone();
    if ctx.ty(x).shape == want {
        return Some(x);
    }
    if !matches!(ctx.op(x), Op::BroadcastTo { .. }) {
        return None;
    }
    let y = ctx.operand(x, 0);
    ctx.add(Op::BroadcastTo { shape: want }, &[y])
}

/// An elementwise op reads its operands broadcast anyway: an explicit `broadcast_to` operand
/// is replaced by what it broadcasts (the engine broadcasts the result back if needed, so
/// e.g. `exp(broadcast(s))` computes one exp and broadcasts it).
fn broadcast_into_elementwise(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    // Checked before anything is copied: this rule is tried on every elementwise node.
    let operands = &ctx.g.node(id).operands;
    if !ctx.op(id).is_elementwise() || !operands.iter().any(|&o| matches!(ctx.op(o), Op::BroadcastTo { .. })) {
        return None;
    }
    let new: SmallVec<[NodeId; 3]> =
        operands.iter().map(|&o| if matches!(ctx.op(o), Op::BroadcastTo { .. }) { ctx.operand(o, 0) } else { o }).collect();
    let op = ctx.op(id).clone();
    ctx.add(op, &new)
}

/// The constant rank-1 index `[k, k+s, …, k+(n−1)s]` (s ≠ 0), as a slice range.
fn index_range(idx: &ConstData, extent: usize) -> Option<SliceRange> {
    let ConstData::I64(v) = idx else { return None };
    let (&first, rest) = v.split_first()?;
    let step = rest.first().map_or(1, |&second| second - first);
    if step == 0 || v.windows(2).any(|w| w[1] - w[0] != step) {
        return None;
    }
    let last = first + step * (v.len() as i64 - 1);
    if first < 0 || last < 0 || first as usize >= extent || last as usize >= extent {
        return None;
    }
    Some(SliceRange { start: first as usize, step, len: v.len() })
}

fn gather_range_to_slice(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let Op::Gather { axis } = *ctx.op(id) else { return None };
    let (a, idx) = (ctx.operand(id, 0), ctx.operand(id, 1));
    let c = ctx.as_const(idx)?;
    if c.shape().rank() != 1 {
        return None;
    }
    let dims = ctx.ty(a).shape.dims().to_vec();
    let range = index_range(c.data(), dims[axis])?;
    let ranges = dims.iter().enumerate().map(|(i, &d)| if i == axis { range } else { SliceRange::full(d) }).collect();
    ctx.add(Op::Slice { ranges }, &[a])
}

fn scatter_add_trivial(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let Op::ScatterAdd { size, .. } = *ctx.op(id) else { return None };
    let (u, idx) = (ctx.operand(id, 0), ctx.operand(id, 1));
    // Adding zeros anywhere gives zeros (the engine broadcasts the scalar to the shape).
    if ctx.as_const(u).and_then(|c| c.uniform_value()) == Some(0.0) {
        let dtype = ctx.ty(u).dtype;
        return ctx.scalar(0.0, dtype);
    }
    // Indices 0, 1, …, size−1 put every update in its own place: the result is the updates.
    let c = ctx.as_const(idx)?;
    let r = index_range(c.data(), size)?;
    (c.shape().rank() == 1 && r.start == 0 && r.step == 1 && r.len == size).then_some(u)
}

fn scatter_add_merge(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let (a, b) = (ctx.operand(id, 0), ctx.operand(id, 1));
    let (&Op::ScatterAdd { axis, size }, &Op::ScatterAdd { axis: axis_b, size: size_b }) = (ctx.op(a), ctx.op(b)) else {
        return None;
    };
    // Only when the two scatters go away (else the graph grows) and their indices are lists.
    let (u, i, v, j) = (ctx.operand(a, 0), ctx.operand(a, 1), ctx.operand(b, 0), ctx.operand(b, 1));
    let lists = ctx.ty(i).shape.rank() == 1 && ctx.ty(j).shape.rank() == 1;
    if (axis, size) != (axis_b, size_b) || !lists || ctx.uses(a) != 1 || ctx.uses(b) != 1 {
        return None;
    }
    let updates = ctx.add(Op::Concatenate { axis }, &[u, v])?;
    let index = ctx.add(Op::Concatenate { axis: 0 }, &[i, j])?;
    ctx.add(Op::ScatterAdd { axis, size }, &[updates, index])
}

/// The pieces of `id` along `axis`: the operands of a concatenation on that axis, else `id`.
fn pieces(ctx: &Ctx<'_>, id: NodeId, axis: usize) -> SmallVec<[NodeId; 4]> {
    match ctx.op(id) {
        Op::Concatenate { axis: a } if *a == axis => ctx.g.node(id).operands.iter().copied().collect(),
        _ => SmallVec::from_elem(id, 1),
    }
}

/// A scatter-add whose constant list of indices sends each piece of its (concatenated)
/// updates to its own block of consecutive places, the blocks tiling the result: the pieces
/// concatenated in the order of their blocks (no zero fill, no indexed adds).
fn scatter_add_blocks(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let Op::ScatterAdd { axis, size } = *ctx.op(id) else { return None };
    let (u, idx) = (ctx.operand(id, 0), ctx.operand(id, 1));
    let c = ctx.as_const(idx)?;
    let ConstData::I64(v) = c.data() else { return None };
    if c.shape().rank() != 1 || v.len() != size {
        return None;
    }
    let parts = pieces(ctx, u, axis);
    let mut blocks: Vec<(i64, NodeId)> = Vec::with_capacity(parts.len());
    let mut at = 0;
    for &p in &parts {
        let len = ctx.ty(p).shape.dims()[axis];
        let block = v.get(at..at + len)?;
        if block.windows(2).any(|w| w[1] != w[0] + 1) {
            return None;
        }
        blocks.push((*block.first()?, p));
        at += len;
    }
    blocks.sort_unstable_by_key(|&(start, _)| start);
    // Consecutive blocks from 0 with no gap or overlap cover 0..size exactly once.
    let mut next = 0;
    for &(start, p) in &blocks {
        if start != next {
            return None;
        }
        next += ctx.ty(p).shape.dims()[axis] as i64;
    }
    let ordered: SmallVec<[NodeId; 4]> = blocks.iter().map(|&(_, p)| p).collect();
    match ordered.as_slice() {
        [single] => Some(*single),
        _ => ctx.add(Op::Concatenate { axis }, &ordered),
    }
}

/// A concatenation's operands that are themselves concatenations on the same axis, used
/// nowhere else, are spliced in: one copy of every piece instead of one per level.
fn concat_flatten(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let Op::Concatenate { axis } = *ctx.op(id) else { return None };
    let operands = ctx.g.node(id).operands.clone();
    let nested = |o: NodeId| matches!(ctx.op(o), Op::Concatenate { axis: a } if *a == axis) && ctx.uses(o) == 1;
    if !operands.iter().any(|&o| nested(o)) {
        return None;
    }
    let flat: SmallVec<[NodeId; 8]> =
        operands.iter().flat_map(|&o| if nested(o) { pieces(ctx, o, axis) } else { SmallVec::from_elem(o, 1) }).collect();
    ctx.add(Op::Concatenate { axis }, &flat)
}
