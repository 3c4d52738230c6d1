//! Reductions: of broadcasts (value times count), scalar factors pulled out of sums, nested
//! reductions merged, reductions over no axes removed.
//!
//! Documented choices:
//! - `Σ broadcast(v) → v · count` (and `mean`/`max`/`min` of a broadcast → v): sequential
//!   summation of n copies and one product agree up to rounding. Only when every broadcast
//!   axis that is reduced has extent > 0 (a sum of nothing is 0, but inf · 0 would be NaN).
//! - `Σ (c · x) → c · Σ x` for a scalar c: distributivity, equal up to rounding; if c is
//!   infinite and x mixes zeros and nonzeros the original is NaN and the rewrite ±inf (both
//!   signal a degenerate density).
//! - The factor is pulled out only when the product has no other user (otherwise it stays
//!   alive beside the new nodes and the graph grows).
//! - Nested reductions of one kind merge (sum of sums, max of maxes, …; mean of means over a
//!   rectangular block is the mean): equal up to the summation order.

use smallvec::SmallVec;
use tessera_graph::{Axes, NodeId, Op, ReduceOp, Shape};

use crate::engine::{Ctx, Rule, func_rule, rule};

/// The reduction rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        rule!(sum_scale_right, "reduce_sum[?k](?m@mul(?x, ?c))" => "mul(reduce_sum[?k](?x), ?c)", if "scalar(?c), not_const(?x), single_use(?m)"), // Σ x·c → (Σ x)·c   (c scalar)
        rule!(sum_scale_left, "reduce_sum[?k](?m@mul(?c, ?x))" => "mul(reduce_sum[?k](?x), ?c)", if "scalar(?c), not_const(?x), single_use(?m)"),  // Σ c·x → (Σ x)·c   (c scalar)
        rule!(sum_div_scalar, "reduce_sum[?k](?m@div(?x, ?c))" => "div(reduce_sum[?k](?x), ?c)", if "scalar(?c), single_use(?m)"),                 // Σ x/c → (Σ x)/c   (c scalar)
        rule!(sum_neg, "reduce_sum[?k](?m@neg(?x))" => "neg(reduce_sum[?k](?x))", if "single_use(?m)"),                                                  // Σ −x → −Σ x
        func_rule!(reduce_of_broadcast, ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min"], reduce_of_broadcast), // Σ broadcast(v) → v·count
        func_rule!(reduce_nested, ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_mean", "reduce_logsumexp"], reduce_nested), // R_a(R_b x) → R_(a∪b) x
        func_rule!(reduce_no_axes, ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_mean", "reduce_logsumexp"], reduce_no_axes), // R_∅ x → x
    ]
}

fn reduce_parts(ctx: &Ctx<'_>, id: NodeId) -> Option<(ReduceOp, Axes, bool, NodeId)> {
    match ctx.op(id) {
        Op::Reduce { kind, axes, keepdims } => Some((*kind, axes.clone(), *keepdims, ctx.operand(id, 0))),
        _ => None,
    }
}

/// A reduction over no axes is the identity (logsumexp of one element is that element).
fn reduce_no_axes(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let (_, axes, _, x) = reduce_parts(ctx, id)?;
    axes.is_empty().then_some(x)
}

/// `R[axes](broadcast_to(v))`: reduced axes along which v is broadcast contribute a factor
/// (sum) or nothing (mean, max, min); axes where v has its own extent are still reduced, on v.
fn reduce_of_broadcast(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let (kind, axes, keepdims, b) = reduce_parts(ctx, id)?;
    let Op::BroadcastTo { shape: target } = ctx.op(b).clone() else { return None };
    let v = ctx.operand(b, 0);
    let vshape = ctx.ty(v).shape.clone();
    let pad = target.rank() - vshape.rank();
    let mut count = 1usize;
    let mut own: Axes = Axes::new(); // reduced axes where v has its own extent (v's numbering)
    let mut dropped: Vec<usize> = Vec::new(); // reduced extent-1 axes of v (v's numbering)
    for &a in &axes {
        let within = a.checked_sub(pad);
        match within {
            Some(va) if vshape.dims()[va] == target.dims()[a] => own.push(va),
            _ => {
                count *= target.dims()[a];
                if let Some(va) = within {
                    dropped.push(va);
                }
            }
        }
    }
    if count == 0 {
        return None;
    }
    let mut w = v;
    if !own.is_empty() {
        w = ctx.add(Op::Reduce { kind, axes: own.clone(), keepdims }, &[w])?;
    }
    if !keepdims && !dropped.is_empty() {
        // The broadcast axes of v that were reduced have extent 1: drop them.
        let gone: Vec<usize> = own.iter().copied().chain(dropped.iter().copied()).collect();
        let dims: SmallVec<[usize; 4]> = vshape.dims().iter().enumerate().filter(|(a, _)| !gone.contains(a)).map(|(_, &d)| d).collect();
        w = ctx.add(Op::Reshape { shape: Shape(dims) }, &[w])?;
    }
    if kind == ReduceOp::Sum && count > 1 {
        let dtype = ctx.ty(w).dtype;
        let c = ctx.scalar(count as f64, dtype)?;
        w = ctx.add(Op::Binary(tessera_graph::BinaryOp::Mul), &[w, c])?;
    }
    // w broadcasts to the result shape; the engine adds the broadcast where needed.
    Some(w)
}

/// `R[a](R[b](x))` of one kind → one reduction over the union, in x's axes.
fn reduce_nested(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let (kind, outer_axes, outer_keep, inner) = reduce_parts(ctx, id)?;
    let (inner_kind, inner_axes, inner_keep, x) = reduce_parts(ctx, inner)?;
    if kind != inner_kind {
        return None;
    }
    let rank = ctx.ty(x).shape.rank();
    // Axes of the intermediate result, in x's numbering.
    let surviving: Vec<usize> = if inner_keep { (0..rank).collect() } else { (0..rank).filter(|a| !inner_axes.contains(a)).collect() };
    let mut merged: Vec<usize> = inner_axes.to_vec();
    merged.extend(outer_axes.iter().map(|&a| surviving[a]));
    merged.sort_unstable();
    merged.dedup();
    let axes: Axes = merged.into_iter().collect();
    let want = ctx.ty(id).shape.clone();
    if inner_keep == outer_keep {
        return ctx.add(Op::Reduce { kind, axes, keepdims: outer_keep }, &[x]);
    }
    let r = ctx.add(Op::Reduce { kind, axes, keepdims: true }, &[x])?;
    ctx.add(Op::Reshape { shape: want }, &[r])
}
