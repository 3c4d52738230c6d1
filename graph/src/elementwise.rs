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
            | Softplus | LogSigmoid | Log1mexp | Logit | Lgamma | Digamma | Erf | Erfc | Floor
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
