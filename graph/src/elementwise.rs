//! The elementwise ops: one row per op (text name, dtype rule, scalar reference semantics).
//!
//! Every stage that handles elementwise ops (type inference, interpreter, gradient, codegen)
//! matches exhaustively on [`UnaryOp`] / [`BinaryOp`], so adding a row here makes the compiler
//! list every place that must learn about it.

use crate::DType;

/// How an elementwise op maps operand dtypes to its result dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DTypeRule {
    /// f64 operands only; result f64.
    Float,
    /// f64 or i64 operands (all the same dtype); result has that dtype.
    Numeric,
    /// f64 operand; result bool (e.g. `isfinite`).
    FloatPredicate,
    /// Operands of one dtype (numeric for ordering comparisons); result bool.
    Compare {
        /// Whether bool operands are allowed (only for `eq` / `ne`).
        allows_bool: bool,
    },
    /// bool operands only; result bool.
    Logical,
}

impl DTypeRule {
    /// The result dtype for operands of dtype `d`, or a description of what was expected.
    pub fn result(self, d: DType) -> Result<DType, &'static str> {
        match (self, d) {
            (DTypeRule::Float, DType::F64) => Ok(DType::F64),
            (DTypeRule::Float, _) => Err("f64"),
            (DTypeRule::Numeric, DType::F64 | DType::I64) => Ok(d),
            (DTypeRule::Numeric, _) => Err("f64 or i64"),
            (DTypeRule::FloatPredicate, DType::F64) => Ok(DType::Bool),
            (DTypeRule::FloatPredicate, _) => Err("f64"),
            (DTypeRule::Compare { allows_bool: true }, _) => Ok(DType::Bool),
            (DTypeRule::Compare { allows_bool: false }, DType::F64 | DType::I64) => Ok(DType::Bool),
            (DTypeRule::Compare { allows_bool: false }, _) => Err("f64 or i64"),
            (DTypeRule::Logical, DType::Bool) => Ok(DType::Bool),
            (DTypeRule::Logical, _) => Err("bool"),
        }
    }
}

/// Declares an op enum together with its text names, so name and variant cannot drift apart.
macro_rules! op_table {
    ($(#[$meta:meta])* $enum:ident { $( $(#[$doc:meta])* $variant:ident = $name:literal, )* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $enum {
            $( $(#[$doc])* $variant, )*
        }

        impl $enum {
            /// Every op of this kind, in declaration order.
            pub const ALL: &'static [$enum] = &[$($enum::$variant,)*];

            /// The op's name in the text form.
            pub fn name(self) -> &'static str {
                match self { $($enum::$variant => $name,)* }
            }

            /// The op with this text-form name.
            pub fn from_name(name: &str) -> Option<$enum> {
                match name { $($name => Some($enum::$variant),)* _ => None }
            }
        }
    };
}

op_table! {
    /// Elementwise ops of one operand.
    UnaryOp {
        /// −x
        Neg = "neg",
        /// |x|
        Abs = "abs",
        /// −1, 0 or 1 (NaN stays NaN)
        Sign = "sign",
        /// eˣ
        Exp = "exp",
        /// eˣ − 1, accurate near 0
        Expm1 = "expm1",
        /// ln x
        Log = "log",
        /// ln(1 + x), accurate near 0
        Log1p = "log1p",
        /// √x
        Sqrt = "sqrt",
        /// x²
        Square = "square",
        /// 1/x
        Reciprocal = "reciprocal",
        /// sin x
        Sin = "sin",
        /// cos x
        Cos = "cos",
        /// tan x
        Tan = "tan",
        /// tanh x
        Tanh = "tanh",
        /// 1/(1 + e⁻ˣ)
        Sigmoid = "sigmoid",
        /// ln(1 + eˣ), stable for large |x|
        Softplus = "softplus",
        /// ln σ(x) = −softplus(−x)
        LogSigmoid = "log_sigmoid",
        /// ln(1 − eˣ) for x < 0, stable near 0 and for large −x
        Log1mexp = "log1mexp",
        /// ln(x/(1 − x))
        Logit = "logit",
        /// ln |Γ(x)|
        Lgamma = "lgamma",
        /// ψ(x) = d/dx ln Γ(x)
        Digamma = "digamma",
        /// ψ′(x), the derivative of digamma
        Trigamma = "trigamma",
        /// error function
        Erf = "erf",
        /// 1 − erf(x), accurate for large x
        Erfc = "erfc",
        /// ⌊x⌋
        Floor = "floor",
        /// ⌈x⌉
        Ceil = "ceil",
        /// x is neither infinite nor NaN
        IsFinite = "isfinite",
        /// logical not
        Not = "not",
    }
}

op_table! {
    /// Elementwise ops of two operands (NumPy broadcasting).
    BinaryOp {
        /// a + b
        Add = "add",
        /// a − b
        Sub = "sub",
        /// a · b
        Mul = "mul",
        /// a / b
        Div = "div",
        /// aᵇ
        Pow = "pow",
        /// max(a, b); NaN if either is NaN
        Maximum = "maximum",
        /// min(a, b); NaN if either is NaN
        Minimum = "minimum",
        /// ln(eᵃ + eᵇ), stable
        LogAddExp = "logaddexp",
        /// a < b
        Lt = "lt",
        /// a ≤ b
        Le = "le",
        /// a > b
        Gt = "gt",
        /// a ≥ b
        Ge = "ge",
        /// a = b
        Eq = "eq",
        /// a ≠ b
        Ne = "ne",
        /// a ∧ b
        And = "and",
        /// a ∨ b
        Or = "or",
    }
}

impl UnaryOp {
    /// Which operand dtypes the op takes and what it returns.
    pub fn dtype_rule(self) -> DTypeRule {
        use UnaryOp::*;
        match self {
            Neg | Abs | Sign | Square => DTypeRule::Numeric,
            Exp | Expm1 | Log | Log1p | Sqrt | Reciprocal | Sin | Cos | Tan | Tanh | Sigmoid
            | Softplus | LogSigmoid | Log1mexp | Logit | Lgamma | Digamma | Trigamma | Erf | Erfc | Floor
            | Ceil => DTypeRule::Float,
            IsFinite => DTypeRule::FloatPredicate,
            Not => DTypeRule::Logical,
        }
    }

    /// Reference semantics on f64 (the oracle for rewrites and codegen).
    pub fn eval_f64(self, x: f64) -> f64 {
        use crate::special;
        use UnaryOp::*;
        match self {
            Neg => -x,
            Abs => x.abs(),
            Sign => special::sign(x),
            Exp => x.exp(),
            Expm1 => x.exp_m1(),
            Log => x.ln(),
            Log1p => x.ln_1p(),
            Sqrt => x.sqrt(),
            Square => x * x,
            Reciprocal => 1.0 / x,
            Sin => x.sin(),
            Cos => x.cos(),
            Tan => x.tan(),
            Tanh => x.tanh(),
            Sigmoid => special::sigmoid(x),
            Softplus => special::softplus(x),
            LogSigmoid => -special::softplus(-x),
            Log1mexp => special::log1mexp(x),
            Logit => special::logit(x),
            Lgamma => libm::lgamma(x),
            Digamma => special::digamma(x),
            Trigamma => special::trigamma(x),
            Erf => libm::erf(x),
            Erfc => libm::erfc(x),
            Floor => x.floor(),
            Ceil => x.ceil(),
            IsFinite => f64::from(u8::from(x.is_finite())),
            Not => f64::from(u8::from(x == 0.0)),
        }
    }

    /// Reference semantics on i64 for the ops whose rule admits i64 (`None` otherwise).
    /// Integer overflow wraps, as in NumPy.
    pub fn eval_i64(self, x: i64) -> Option<i64> {
        use UnaryOp::*;
        match self {
            Neg => Some(x.wrapping_neg()),
            Abs => Some(x.wrapping_abs()),
            Sign => Some(x.signum()),
            Square => Some(x.wrapping_mul(x)),
            _ => None,
        }
    }
}

impl BinaryOp {
    /// Which operand dtypes the op takes and what it returns.
    pub fn dtype_rule(self) -> DTypeRule {
        use BinaryOp::*;
        match self {
            Add | Sub | Mul | Maximum | Minimum => DTypeRule::Numeric,
            Div | Pow | LogAddExp => DTypeRule::Float,
            Lt | Le | Gt | Ge => DTypeRule::Compare { allows_bool: false },
            Eq | Ne => DTypeRule::Compare { allows_bool: true },
            And | Or => DTypeRule::Logical,
        }
    }

    /// Whether the op's result is bool (comparisons and logical ops).
    pub fn returns_bool(self) -> bool {
        matches!(
            self.dtype_rule(),
            DTypeRule::Compare { .. } | DTypeRule::Logical | DTypeRule::FloatPredicate
        )
    }

    /// Reference semantics on f64. Comparisons and logical ops return 1.0 / 0.0.
    pub fn eval_f64(self, a: f64, b: f64) -> f64 {
        use crate::special;
        use BinaryOp::*;
        let truth = |t: bool| f64::from(u8::from(t));
        match self {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
            Pow => a.powf(b),
            Maximum => special::nan_max(a, b),
            Minimum => special::nan_min(a, b),
            LogAddExp => special::logaddexp(a, b),
            Lt => truth(a < b),
            Le => truth(a <= b),
            Gt => truth(a > b),
            Ge => truth(a >= b),
            Eq => truth(a == b),
            Ne => truth(a != b),
            And => truth(a != 0.0 && b != 0.0),
            Or => truth(a != 0.0 || b != 0.0),
        }
    }

    /// Reference semantics on i64 for arithmetic ops (wrapping, as NumPy); `None` for ops
    /// whose rule does not admit i64 arithmetic results.
    pub fn eval_i64(self, a: i64, b: i64) -> Option<i64> {
        use BinaryOp::*;
        match self {
            Add => Some(a.wrapping_add(b)),
            Sub => Some(a.wrapping_sub(b)),
            Mul => Some(a.wrapping_mul(b)),
            Maximum => Some(a.max(b)),
            Minimum => Some(a.min(b)),
            _ => None,
        }
    }

    /// Reference semantics of comparisons on i64 (`None` for non-comparisons).
    pub fn compare_i64(self, a: i64, b: i64) -> Option<bool> {
        use BinaryOp::*;
        match self {
            Lt => Some(a < b),
            Le => Some(a <= b),
            Gt => Some(a > b),
            Ge => Some(a >= b),
            Eq => Some(a == b),
            Ne => Some(a != b),
            _ => None,
        }
    }

    /// Reference semantics on bool for logical ops and `eq`/`ne` (`None` otherwise).
    pub fn eval_bool(self, a: bool, b: bool) -> Option<bool> {
        use BinaryOp::*;
        match self {
            And => Some(a && b),
            Or => Some(a || b),
            Eq => Some(a == b),
            Ne => Some(a != b),
            _ => None,
        }
    }
}

// ── Gradient rules (reverse mode), next to the op tables ────────────────────────────────
// Each rule returns the cotangent contribution in the result's (broadcast) shape; the
// gradient driver sums broadcast axes away. Rules only build ops that have rules themselves,
// so gradients of gradients work.

use crate::NodeId;
use crate::grad::{Emit, GradError};

/// 2/√π, the scale of erf's derivative.
const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

impl UnaryOp {
    /// Whether no gradient flows through the op: its derivative is zero wherever it exists
    /// (floor, ceil, sign are piecewise constant) or its result is bool (isfinite, not).
    pub fn derivative_is_zero(self) -> bool {
        use UnaryOp::*;
        matches!(self, Sign | Floor | Ceil | IsFinite | Not)
    }

    /// The contribution `g · f′(x)` to the operand's cotangent, where `y = f(x)` is the node
    /// itself (reused where the derivative is a function of the result). `None` for the ops
    /// of [`UnaryOp::derivative_is_zero`]; an error for digamma, whose derivative (trigamma)
    /// is not an op of the IR.
    pub(crate) fn vjp(self, e: &mut Emit<'_>, x: NodeId, y: NodeId, g: NodeId) -> Result<Option<NodeId>, GradError> {
        use UnaryOp::*;
        let contribution = match self {
            Sign | Floor | Ceil | IsFinite | Not => return Ok(None),
            Neg => e.neg(g)?,
            // |x|′ = sign x (0 at the kink, a valid subgradient)
            Abs => {
                let s = e.unary(Sign, x)?;
                e.mul(g, s)?
            }
            Exp => e.mul(g, y)?,
            Expm1 => {
                let ex = e.unary(Exp, x)?;
                e.mul(g, ex)?
            }
            Log => e.div(g, x)?,
            Log1p => {
                let d = e.add_scalar(x, 1.0)?;
                e.div(g, d)?
            }
            // √x′ = 1/(2√x)
            Sqrt => {
                let h = e.scale(g, 0.5)?;
                e.div(h, y)?
            }
            Square => {
                let h = e.scale(g, 2.0)?;
                e.mul(h, x)?
            }
            // (1/x)′ = −1/x² = −y²
            Reciprocal => {
                let y2 = e.unary(Square, y)?;
                let d = e.mul(g, y2)?;
                e.neg(d)?
            }
            Sin => {
                let c = e.unary(Cos, x)?;
                e.mul(g, c)?
            }
            Cos => {
                let s = e.unary(Sin, x)?;
                let d = e.mul(g, s)?;
                e.neg(d)?
            }
            // tan′ = 1 + tan²
            Tan => {
                let y2 = e.unary(Square, y)?;
                let d = e.add_scalar(y2, 1.0)?;
                e.mul(g, d)?
            }
            // tanh′ = 1 − tanh²
            Tanh => {
                let y2 = e.unary(Square, y)?;
                let d = e.rsub(1.0, y2)?;
                e.mul(g, d)?
            }
            // σ′ = σ(x)·σ(−x), accurate where 1 − σ(x) would cancel
            Sigmoid => {
                let s = complement_sigmoid(e, x)?;
                let d = e.mul(y, s)?;
                e.mul(g, d)?
            }
            Softplus => {
                let s = e.unary(Sigmoid, x)?;
                e.mul(g, s)?
            }
            // (ln σ(x))′ = σ(−x)
            LogSigmoid => {
                let s = complement_sigmoid(e, x)?;
                e.mul(g, s)?
            }
            // ln(1 − eˣ)′ = −eˣ/(1 − eˣ) = −1/expm1(−x)
            Log1mexp => {
                let nx = e.neg(x)?;
                let d = e.unary(Expm1, nx)?;
                let q = e.div(g, d)?;
                e.neg(q)?
            }
            // logit′ = 1/(x(1 − x))
            Logit => {
                let one_minus = e.rsub(1.0, x)?;
                let d = e.mul(x, one_minus)?;
                e.div(g, d)?
            }
            Lgamma => {
                let d = e.unary(Digamma, x)?;
                e.mul(g, d)?
            }
            Digamma => {
                let d = e.unary(Trigamma, x)?;
                e.mul(g, d)?
            }
            Trigamma => {
                return Err(GradError::NoRule {
                    op: self.name().to_string(),
                    reason: "its derivative, tetragamma, is not an op of the IR".to_string(),
                });
            }
            // erf′ = 2/√π · e^(−x²); erfc′ = −erf′
            Erf | Erfc => {
                let h = e.scale(g, TWO_OVER_SQRT_PI)?;
                let x2 = e.unary(Square, x)?;
                let nx2 = e.neg(x2)?;
                let ex = e.unary(Exp, nx2)?;
                let d = e.mul(h, ex)?;
                if self == Erf { d } else { e.neg(d)? }
            }
        };
        Ok(Some(contribution))
    }
}

/// σ(−x) = 1 − σ(x), computed without cancellation.
fn complement_sigmoid(e: &mut Emit<'_>, x: NodeId) -> Result<NodeId, GradError> {
    let nx = e.neg(x)?;
    e.unary(UnaryOp::Sigmoid, nx)
}

impl BinaryOp {
    /// The contributions to the two operands' cotangents of `y = a ∘ b` with cotangent `g`,
    /// built only where `want` asks. Comparisons and logical ops have bool results and never
    /// carry a gradient (`None`).
    ///
    /// - `maximum`/`minimum`: the cotangent goes to the selected operand; ties send it to the
    ///   first operand `a`.
    /// - `pow`: ∂/∂a = b·a^(b−1); ∂/∂b = y·ln a, taken as 0 where a = 0 (the limit for b > 0)
    ///   and NaN for a < 0, where aᵇ is not differentiable in b.
    /// - `logaddexp`: ∂/∂a = σ(a − b), ∂/∂b = σ(b − a) (the softmax weights, stable).
    pub(crate) fn vjp(
        self,
        e: &mut Emit<'_>,
        a: NodeId,
        b: NodeId,
        y: NodeId,
        g: NodeId,
        want: [bool; 2],
    ) -> Result<[Option<NodeId>; 2], GradError> {
        use BinaryOp::*;
        let [wa, wb] = want;
        Ok(match self {
            Add => [wa.then_some(g), wb.then_some(g)],
            Sub => [wa.then_some(g), if wb { Some(e.neg(g)?) } else { None }],
            Mul => [
                if wa { Some(e.mul(g, b)?) } else { None },
                if wb { Some(e.mul(g, a)?) } else { None },
            ],
            // ∂/∂a = g/b; ∂/∂b = −g·a/b² = −(g/b)·y
            Div => {
                let ga = e.div(g, b)?;
                let gb = if wb {
                    let q = e.mul(ga, y)?;
                    Some(e.neg(q)?)
                } else {
                    None
                };
                [wa.then_some(ga), gb]
            }
            Pow => {
                let ga = if wa {
                    let one = e.scalar(1.0);
                    let bm1 = e.binary(Sub, b, one)?;
                    let p = e.binary(Pow, a, bm1)?;
                    let gbexp = e.mul(g, b)?;
                    Some(e.mul(gbexp, p)?)
                } else {
                    None
                };
                let gb = if wb {
                    let zero = e.scalar(0.0);
                    let at_zero = e.binary(Eq, a, zero)?;
                    let ln = e.unary(UnaryOp::Log, a)?;
                    let safe_ln = e.select(at_zero, zero, ln)?;
                    let gy = e.mul(g, y)?;
                    Some(e.mul(gy, safe_ln)?)
                } else {
                    None
                };
                [ga, gb]
            }
            Maximum | Minimum => {
                let pick_a = e.binary(if self == Maximum { Ge } else { Le }, a, b)?;
                let zero = e.scalar(0.0);
                [
                    if wa { Some(e.select(pick_a, g, zero)?) } else { None },
                    if wb { Some(e.select(pick_a, zero, g)?) } else { None },
                ]
            }
            LogAddExp => {
                let d = e.sub(a, b)?;
                let ga = if wa {
                    let s = e.unary(UnaryOp::Sigmoid, d)?;
                    Some(e.mul(g, s)?)
                } else {
                    None
                };
                let gb = if wb {
                    let s = complement_sigmoid(e, d)?;
                    Some(e.mul(g, s)?)
                } else {
                    None
                };
                [ga, gb]
            }
            Lt | Le | Gt | Ge | Eq | Ne | And | Or => [None, None],
        })
    }
}
