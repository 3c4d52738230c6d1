//! Evaluation of fused kernels: the body runs instruction by instruction on whole arrays with
//! the plain ops' own code (so a fused node gives bit-for-bit the values of the unfused ops),
//! then the result is broadcast to the iteration shape and reduced like `Op::Reduce`.

use ndarray::IxDyn;

use super::{EvalError, elementwise, op_error, reduce};
use crate::{FusedKernel, ScalarInstr, Shape, Value};

/// The value of kernel `k` on operand values `args`; `out` is the node's result shape.
pub(super) fn fused(k: &FusedKernel, args: &[&Value], out: &Shape) -> Result<Value, EvalError> {
    let mut values: Vec<Value> = Vec::with_capacity(k.body.len());
    for ins in &k.body {
        let at = |i: u16| values.get(i as usize).ok_or_else(|| op_error("fused", format!("instruction {i} is read before it is computed")));
        let v = match *ins {
            ScalarInstr::Arg(a) => (*args.get(a as usize).ok_or_else(|| op_error("fused", format!("operand ${a} is missing")))?).clone(),
            ScalarInstr::Const(c) => Value::from_constant(&c.to_constant()),
            ScalarInstr::Unary(u, x) => elementwise::unary(u, at(x)?)?,
            ScalarInstr::Binary(b, x, y) => {
                let (p, q) = (at(x)?, at(y)?);
                let shape = shape_of(p).broadcast(&shape_of(q)).ok_or_else(|| op_error("fused", "operand shapes do not broadcast"))?;
                elementwise::binary(b, p, q, &shape)?
            }
            ScalarInstr::Where(c, x, y) => {
                let (pc, p, q) = (at(c)?, at(x)?, at(y)?);
                let shape = shape_of(pc)
                    .broadcast(&shape_of(p))
                    .and_then(|s| s.broadcast(&shape_of(q)))
                    .ok_or_else(|| op_error("fused", "operand shapes do not broadcast"))?;
                elementwise::select(pc, p, q, &shape)?
            }
            ScalarInstr::Cast(to, x) => elementwise::cast(at(x)?, to),
        };
        values.push(v);
    }
    let result = values.pop().ok_or_else(|| op_error("fused", "the kernel body is empty"))?;
    let iteration = args.iter().try_fold(Shape::scalar(), |s, a| s.broadcast(&shape_of(a)))
        .ok_or_else(|| op_error("fused", "operand shapes do not broadcast"))?;
    let full = broadcast_value(&result, &iteration)?;
    match &k.reduce {
        None => Ok(full),
        Some(r) => reduce::reduce(r.kind, &r.axes, &full, out),
    }
}

fn shape_of(v: &Value) -> Shape {
    v.shape()
}

/// `v` broadcast to `shape` (a copy; no-op when it already has that shape).
fn broadcast_value(v: &Value, shape: &Shape) -> Result<Value, EvalError> {
    if v.shape() == *shape {
        return Ok(v.clone());
    }
    let fail = || op_error("fused", format!("result does not broadcast to {shape}"));
    Ok(per_dtype!(v, a => a.broadcast(IxDyn(shape.dims())).ok_or_else(fail)?.to_owned()))
}
