//! Scalar expressions to Cranelift values, one element at a time (`Lanes::One`) or two f64
//! elements at a time (`Lanes::Two`, f64x2 with i64x2 masks for booleans).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};
use tessera_graph::{BinaryOp, DType, UnaryOp};

use super::{CacheKey, Emitter};
use crate::CodegenError;
use crate::expr::{Expr, ExprKind, Scalar};
use crate::kernel::Combine;
use crate::runtime;

/// How many elements one evaluation of an expression handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lanes {
    /// One element (f64, i64 or i8 values).
    One,
    /// Two f64 elements (f64x2 values; booleans as i64x2 all-ones/all-zeros masks).
    Two,
}

fn bad_dtype(op: &str, dtype: DType) -> CodegenError {
    CodegenError::Unsupported { op: op.to_string(), node: "expression".into(), reason: format!("operand dtype {dtype}") }
}

/// Whether `e` can be evaluated two f64 lanes at a time for results `roots`: f64 results,
/// f64 leaves, and booleans only as comparison masks consumed by logic ops or `where`.
pub(crate) fn vectorizable(e: &Expr, roots: &[usize]) -> bool {
    if !roots.iter().all(|&r| e.nodes.get(r).is_some_and(|n| n.dtype == DType::F64)) {
        return false;
    }
    e.nodes.iter().all(|n| match n.kind {
        ExprKind::Leaf(_) => n.dtype == DType::F64,
        ExprKind::Const(_) => true,
        ExprKind::Unary(op, a) => {
            let from = e.nodes[a].dtype;
            match op {
                UnaryOp::Not => from == DType::Bool,
                _ => from == DType::F64,
            }
        }
        ExprKind::Binary(op, a, _) => {
            let from = e.nodes[a].dtype;
            match op {
                BinaryOp::And | BinaryOp::Or => from == DType::Bool,
                _ => from == DType::F64,
            }
        }
        ExprKind::Where(_, a, _) => e.nodes[a].dtype == DType::F64,
        ExprKind::Cast(a) => e.nodes[a].dtype == n.dtype,
    })
}

/// Rough count of the Cranelift instructions one vector evaluation of `e` emits: what the
/// loop emitter weighs unrolling against (compile time grows with it, and a long body hides
/// the latency of a reduction's add chain by itself).
pub(crate) fn vector_cost(e: &Expr, inline_math: bool) -> usize {
    use UnaryOp::*;
    e.nodes
        .iter()
        .map(|n| match n.kind {
            ExprKind::Leaf(_) | ExprKind::Const(_) | ExprKind::Cast(_) => 1,
            ExprKind::Unary(Neg | Abs | Sqrt | Square | Not, _) => 1,
            ExprKind::Unary(op, _) if inline_math && has_inline_vector_form(op) => 50,
            // Per-lane calls of a scalar function.
            ExprKind::Unary(..) => 12,
            ExprKind::Binary(..) | ExprKind::Where(..) => 2,
        })
        .sum()
}

/// Whether `op` has inline f64x2 code (see `Emitter::unary_x2`).
fn has_inline_vector_form(op: UnaryOp) -> bool {
    matches!(op, UnaryOp::Exp | UnaryOp::Log | UnaryOp::Log1p | UnaryOp::Softplus | UnaryOp::LogSigmoid | UnaryOp::Sigmoid)
}

/// Whether `e` uses an op with inline vector code (a long serial polynomial chain).
pub(crate) fn has_inline_math(e: &Expr) -> bool {
    e.nodes.iter().any(|n| matches!(n.kind, ExprKind::Unary(op, _) if has_inline_vector_form(op)))
}

impl Emitter<'_> {
    /// The value of `e`'s root given its leaves' values.
    pub(crate) fn expr_root(&mut self, e: &Expr, leaves: &[Value], lanes: Lanes) -> Result<Value, CodegenError> {
        Ok(self.expr(e, leaves, lanes)?[e.root])
    }

    /// The values of every node of `e` given its leaves' values.
    pub(crate) fn expr(&mut self, e: &Expr, leaves: &[Value], lanes: Lanes) -> Result<Vec<Value>, CodegenError> {
        let mut vals: Vec<Value> = Vec::with_capacity(e.nodes.len());
        for node in &e.nodes {
            let v = match node.kind {
                ExprKind::Leaf(k) => leaves[k],
                ExprKind::Const(c) => self.constant(c, lanes),
                ExprKind::Unary(op, a) => self.unary(op, vals[a], e.nodes[a].dtype, lanes)?,
                ExprKind::Binary(op, a, b) => self.binary(op, vals[a], vals[b], e.nodes[a].dtype, lanes)?,
                ExprKind::Where(c, a, b) => self.select(vals[c], vals[a], vals[b], lanes),
                ExprKind::Cast(a) => self.cast(vals[a], e.nodes[a].dtype, node.dtype, lanes)?,
            };
            vals.push(v);
        }
        Ok(vals)
    }

    /// Both lanes `x`, as one constant-pool vector (a single load when lowered).
    pub(crate) fn f64x2(&mut self, x: f64) -> Value {
        self.splat_const(types::F64X2, x.to_bits())
    }

    /// A scalar f64 constant.
    pub(crate) fn f64(&mut self, x: f64) -> Value {
        self.cached(CacheKey::Const(types::F64, u128::from(x.to_bits())), |em| em.b.ins().f64const(x))
    }

    fn constant(&mut self, c: Scalar, lanes: Lanes) -> Value {
        match (c, lanes) {
            (Scalar::F64(x), Lanes::One) => self.f64(x),
            (Scalar::I64(x), Lanes::One) => self.b.ins().iconst(types::I64, x),
            (Scalar::Bool(x), Lanes::One) => self.b.ins().iconst(types::I8, i64::from(x)),
            (Scalar::F64(x), Lanes::Two) => self.f64x2(x),
            (Scalar::Bool(x), Lanes::Two) => {
                let s = self.b.ins().iconst(types::I64, if x { -1 } else { 0 });
                self.b.ins().splat(types::I64X2, s)
            }
            // Not produced: `vectorizable` rejects i64 expressions.
            (Scalar::I64(x), Lanes::Two) => {
                let s = self.b.ins().iconst(types::I64, x);
                self.b.ins().splat(types::I64X2, s)
            }
        }
    }

    fn unary(&mut self, op: UnaryOp, x: Value, dtype: DType, lanes: Lanes) -> Result<Value, CodegenError> {
        if lanes == Lanes::Two {
            return self.unary_x2(op, x);
        }
        let ins = self.b.ins();
        Ok(match (dtype, op) {
            (DType::F64, UnaryOp::Neg) => ins.fneg(x),
            (DType::F64, UnaryOp::Abs) => ins.fabs(x),
            (DType::F64, UnaryOp::Sqrt) => ins.sqrt(x),
            (DType::F64, UnaryOp::Square) => ins.fmul(x, x),
            (DType::F64, UnaryOp::Reciprocal) => {
                let one = ins.f64const(1.0);
                self.b.ins().fdiv(one, x)
            }
            (DType::F64, UnaryOp::Floor) => ins.floor(x),
            (DType::F64, UnaryOp::Ceil) => ins.ceil(x),
            (DType::F64, UnaryOp::IsFinite) => {
                let a = ins.fabs(x);
                let inf = self.b.ins().f64const(f64::INFINITY);
                self.b.ins().fcmp(FloatCC::LessThan, a, inf)
            }
            (DType::F64, UnaryOp::Sign) => {
                // 1 if x > 0, −1 if x < 0, else x·0 (±0 → 0, NaN → NaN), as `special::sign`.
                let zero = ins.f64const(0.0);
                let z = self.b.ins().fmul(x, zero);
                let one = self.b.ins().f64const(1.0);
                let m1 = self.b.ins().f64const(-1.0);
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let neg = self.b.ins().select(lt, m1, z);
                self.b.ins().select(gt, one, neg)
            }
            (DType::F64, op) => match runtime::unary_symbol(op) {
                Some(name) => self.call(name, &[x])?[0],
                None => return Err(bad_dtype(op.name(), dtype)),
            },
            (DType::I64, UnaryOp::Neg) => ins.ineg(x),
            (DType::I64, UnaryOp::Abs) => ins.iabs(x),
            (DType::I64, UnaryOp::Square) => ins.imul(x, x),
            (DType::I64, UnaryOp::Sign) => {
                let m1 = ins.iconst(types::I64, -1);
                let one = self.b.ins().iconst(types::I64, 1);
                let lo = self.b.ins().smax(x, m1);
                self.b.ins().smin(lo, one)
            }
            (DType::Bool, UnaryOp::Not) => {
                let one = ins.iconst(types::I8, 1);
                self.b.ins().bxor(x, one)
            }
            (dtype, op) => return Err(bad_dtype(op.name(), dtype)),
        })
    }

    fn binary(&mut self, op: BinaryOp, a: Value, b: Value, dtype: DType, lanes: Lanes) -> Result<Value, CodegenError> {
        use BinaryOp::*;
        if lanes == Lanes::Two && matches!(op, Pow | LogAddExp) {
            return self.split2(op, a, b);
        }
        let ins = self.b.ins();
        Ok(match (dtype, op) {
            (DType::F64, Add) => ins.fadd(a, b),
            (DType::F64, Sub) => ins.fsub(a, b),
            (DType::F64, Mul) => ins.fmul(a, b),
            (DType::F64, Div) => ins.fdiv(a, b),
            (DType::F64, Maximum) => ins.fmax(a, b),
            (DType::F64, Minimum) => ins.fmin(a, b),
            (DType::F64, Lt) => ins.fcmp(FloatCC::LessThan, a, b),
            (DType::F64, Le) => ins.fcmp(FloatCC::LessThanOrEqual, a, b),
            (DType::F64, Gt) => ins.fcmp(FloatCC::GreaterThan, a, b),
            (DType::F64, Ge) => ins.fcmp(FloatCC::GreaterThanOrEqual, a, b),
            (DType::F64, Eq) => ins.fcmp(FloatCC::Equal, a, b),
            (DType::F64, Ne) => ins.fcmp(FloatCC::NotEqual, a, b),
            (DType::F64, Pow | LogAddExp) => match runtime::binary_symbol(op) {
                Some(name) => self.call(name, &[a, b])?[0],
                None => return Err(bad_dtype(op.name(), dtype)),
            },
            (DType::I64, Add) => ins.iadd(a, b),
            (DType::I64, Sub) => ins.isub(a, b),
            (DType::I64, Mul) => ins.imul(a, b),
            (DType::I64, Maximum) => ins.smax(a, b),
            (DType::I64, Minimum) => ins.smin(a, b),
            (DType::I64, Lt) => ins.icmp(IntCC::SignedLessThan, a, b),
            (DType::I64, Le) => ins.icmp(IntCC::SignedLessThanOrEqual, a, b),
            (DType::I64, Gt) => ins.icmp(IntCC::SignedGreaterThan, a, b),
            (DType::I64, Ge) => ins.icmp(IntCC::SignedGreaterThanOrEqual, a, b),
            (DType::I64 | DType::Bool, Eq) => ins.icmp(IntCC::Equal, a, b),
            (DType::I64 | DType::Bool, Ne) => ins.icmp(IntCC::NotEqual, a, b),
            (DType::Bool, And) => ins.band(a, b),
            (DType::Bool, Or) => ins.bor(a, b),
            (dtype, op) => return Err(bad_dtype(op.name(), dtype)),
        })
    }

    fn select(&mut self, c: Value, a: Value, b: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => self.b.ins().select(c, a, b),
            Lanes::Two => {
                let mask = self.b.ins().bitcast(types::F64X2, MemFlagsData::new(), c);
                self.b.ins().bitselect(mask, a, b)
            }
        }
    }

    fn cast(&mut self, x: Value, from: DType, to: DType, lanes: Lanes) -> Result<Value, CodegenError> {
        if from == to {
            return Ok(x);
        }
        if lanes == Lanes::Two {
            return Err(bad_dtype("cast", from));
        }
        let ins = self.b.ins();
        Ok(match (from, to) {
            // Truncation toward zero, saturating; NaN and ±inf → 0 (`special::f64_to_i64`).
            (DType::F64, DType::I64) => {
                let t = ins.fcvt_to_sint_sat(types::I64, x);
                let a = self.b.ins().fabs(x);
                let inf = self.b.ins().f64const(f64::INFINITY);
                let finite = self.b.ins().fcmp(FloatCC::LessThan, a, inf);
                let zero = self.b.ins().iconst(types::I64, 0);
                self.b.ins().select(finite, t, zero)
            }
            (DType::F64, DType::Bool) => {
                let zero = ins.f64const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, zero)
            }
            (DType::I64, DType::F64) => ins.fcvt_from_sint(types::F64, x),
            (DType::I64, DType::Bool) => ins.icmp_imm_s(IntCC::NotEqual, x, 0),
            (DType::Bool, DType::F64) => {
                let wide = ins.uextend(types::I64, x);
                self.b.ins().fcvt_from_sint(types::F64, wide)
            }
            (DType::Bool, DType::I64) => ins.uextend(types::I64, x),
            _ => x,
        })
    }

    /// Two lanes of a unary op: inline vector code where there is some, else per lane.
    fn unary_x2(&mut self, op: UnaryOp, x: Value) -> Result<Value, CodegenError> {
        let ins = self.b.ins();
        Ok(match op {
            UnaryOp::Neg => ins.fneg(x),
            UnaryOp::Abs => ins.fabs(x),
            UnaryOp::Sqrt => ins.sqrt(x),
            UnaryOp::Square => ins.fmul(x, x),
            UnaryOp::Reciprocal => {
                let one = self.f64x2(1.0);
                self.b.ins().fdiv(one, x)
            }
            UnaryOp::IsFinite => {
                let a = ins.fabs(x);
                let inf = self.f64x2(f64::INFINITY);
                self.b.ins().fcmp(FloatCC::LessThan, a, inf)
            }
            UnaryOp::Not => ins.bnot(x),
            UnaryOp::Exp if self.opts.inline_math => self.exp_x2(x),
            UnaryOp::Log if self.opts.inline_math => self.log_x2(x),
            UnaryOp::Log1p if self.opts.inline_math => self.log1p_x2(x),
            UnaryOp::Softplus if self.opts.inline_math => self.softplus_x2(x),
            UnaryOp::LogSigmoid if self.opts.inline_math => {
                let n = self.b.ins().fneg(x);
                let s = self.softplus_x2(n);
                self.b.ins().fneg(s)
            }
            UnaryOp::Sigmoid if self.opts.inline_math => self.sigmoid_x2(x),
            _ => return self.split1(op, x),
        })
    }

    /// Applies scalar unary `op` to each lane of `x`.
    fn split1(&mut self, op: UnaryOp, x: Value) -> Result<Value, CodegenError> {
        let lo = self.b.ins().extractlane(x, 0);
        let hi = self.b.ins().extractlane(x, 1);
        let r0 = self.unary(op, lo, DType::F64, Lanes::One)?;
        let r1 = self.unary(op, hi, DType::F64, Lanes::One)?;
        let v = self.b.ins().scalar_to_vector(types::F64X2, r0);
        Ok(self.b.ins().insertlane(v, r1, 1))
    }

    /// Applies scalar binary `op` to each lane pair.
    fn split2(&mut self, op: BinaryOp, a: Value, b: Value) -> Result<Value, CodegenError> {
        let mut r = [a; 2];
        for (lane, slot) in r.iter_mut().enumerate() {
            let x = self.b.ins().extractlane(a, lane as u8);
            let y = self.b.ins().extractlane(b, lane as u8);
            *slot = self.binary(op, x, y, DType::F64, Lanes::One)?;
        }
        let v = self.b.ins().scalar_to_vector(types::F64X2, r[0]);
        Ok(self.b.ins().insertlane(v, r[1], 1))
    }

    /// The identity of `combine` (scalar or two lanes).
    pub(crate) fn identity(&mut self, combine: Combine, dtype: DType, lanes: Lanes) -> Value {
        let c = combine.identity(dtype);
        self.constant(c, lanes)
    }

    /// `combine(acc, v)` (max/min propagate NaN, like the interpreter).
    pub(crate) fn combine(&mut self, combine: Combine, dtype: DType, acc: Value, v: Value) -> Value {
        let ins = self.b.ins();
        match (combine, dtype) {
            (Combine::Sum, DType::I64) => ins.iadd(acc, v),
            (Combine::Prod, DType::I64) => ins.imul(acc, v),
            (Combine::Max, DType::I64) => ins.smax(acc, v),
            (Combine::Min, DType::I64) => ins.smin(acc, v),
            (Combine::Sum, _) => ins.fadd(acc, v),
            (Combine::Prod, _) => ins.fmul(acc, v),
            (Combine::Max, _) => ins.fmax(acc, v),
            (Combine::Min, _) => ins.fmin(acc, v),
        }
    }
}
