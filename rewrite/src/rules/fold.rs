//! Constant folding through the reference interpreter, and selects with constant conditions.
//!
//! Folding evaluates a node whose operands are all constants with `tessera_graph::eval_op`, so
//! the folded value is by definition what the interpreter would compute. It is skipped for
//! `broadcast_to` and for results larger than [`MAX_FOLDED_ELEMENTS`] (or larger than every
//! operand, or for a concatenation than all of them): materializing a broadcast as a big
//! constant costs memory and helps nobody.
//! Note: folding happens in every pass, so a wholly constant unstable expression such as
//! `log(sigmoid(-800.0))` folds to the interpreter's value (−inf) before stabilization can
//! see it; stabilization is about expressions of inputs.

use std::sync::Arc;

use tessera_graph::{ConstData, Constant, NodeId, Op, Value, eval_op};

use crate::engine::{Ctx, Rule, func_rule, rule, value_to_constant};

/// The elements of constants joined end to end, which is their concatenation along the first
/// axis (row-major): one copy, where the interpreter's concatenation copies three times. A
/// gradient gathering hundreds of parameters' indices folds one such join per parameter.
fn joined(consts: &[&Constant]) -> Option<ConstData> {
    fn join<'c, T: Copy + 'c>(parts: impl Iterator<Item = Option<&'c [T]>>) -> Option<Arc<Vec<T>>> {
        let mut out = Vec::new();
        for part in parts {
            out.extend_from_slice(part?);
        }
        Some(Arc::new(out))
    }
    match consts.first()?.data() {
        ConstData::F64(_) => join(consts.iter().map(|c| if let ConstData::F64(v) = c.data() { Some(v.as_slice()) } else { None })).map(ConstData::F64),
        ConstData::I64(_) => join(consts.iter().map(|c| if let ConstData::I64(v) = c.data() { Some(v.as_slice()) } else { None })).map(ConstData::I64),
        ConstData::Bool(_) => join(consts.iter().map(|c| if let ConstData::Bool(v) = c.data() { Some(v.as_slice()) } else { None })).map(ConstData::Bool),
    }
}

/// Largest constant (in elements) that folding creates.
pub const MAX_FOLDED_ELEMENTS: usize = 1 << 16;

/// The folding rules.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        func_rule!(fold_constants, ["*"], fold_constants), // f(c₁, …, cₙ) → eval f(c₁, …, cₙ)
        rule!(where_true, "where(1.0, ?a, ?b)" => "?a"),   // where(true, a, b) → a
        rule!(where_false, "where(0.0, ?a, ?b)" => "?b"),  // where(false, a, b) → b
        rule!(where_same, "where(?c, ?a, ?a)" => "?a"),    // where(c, a, a) → a
    ]
}

fn fold_constants(ctx: &mut Ctx<'_>, id: NodeId) -> Option<NodeId> {
    let node = ctx.g.node(id);
    if matches!(node.op, Op::Input { .. } | Op::Const(_) | Op::BroadcastTo { .. }) || node.operands.is_empty() {
        return None;
    }
    let consts: Vec<&Constant> = node.operands.iter().map(|&o| ctx.g.node(o).op.as_const()).collect::<Option<_>>()?;
    // Joining constants copies each element once; anything else may not grow the data.
    let limit = match node.op {
        Op::Concatenate { .. } | Op::Stack { .. } => consts.iter().map(|c| c.shape().size()).sum(),
        _ => consts.iter().map(|c| c.shape().size()).max().unwrap_or(1).max(1),
    };
    let size = node.ty.shape.size();
    // Checked before the operands are copied out: data matrices are often all-constant
    // operands of nodes too large to fold.
    if size > MAX_FOLDED_ELEMENTS || size > limit {
        return None;
    }
    if let Op::Concatenate { axis: 0 } = node.op
        && let Some(data) = joined(&consts)
    {
        let c = Constant::new(node.ty.shape.clone(), data)?;
        return Some(ctx.constant(c));
    }
    let args: Vec<Value> = consts.into_iter().map(Value::from_constant).collect();
    let refs: Vec<&Value> = args.iter().collect();
    let value = eval_op(&node.op, &refs, &node.ty).ok()?;
    let c = value_to_constant(&value)?;
    Some(ctx.constant(c))
}
