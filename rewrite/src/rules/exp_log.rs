//! Exponential and logarithm identities.
//!
//! - `log(exp x) → x`: exact in exact arithmetic, and better in floating point (exp overflows
//!   at x > 709.78, the rewrite does not).
//! - `exp(log x) → x` only if x is provably ≥ 0 (or NaN): for x < 0, log x is NaN and so is
//!   the original, while x is not.
//! - `log1p(expm1 x) → x`: expm1 > −1 always, so log1p is defined; exact up to rounding.
//! - `log(1/x) → −log x`, `log(√x) → ½ log x`: same domain (NaN for x < 0 either way; ±inf at 0
//!   and inf agree), more accurate.
//! - `exp(x) · exp(y)` is in [`crate::rules::arith`].

use crate::engine::{Rule, rule};

/// The exp/log identities.
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        rule!(log_exp, "log(exp(?x))" => "?x"),                       // ln eˣ → x
        rule!(exp_log, "exp(log(?x))" => "?x", if "nonneg(?x)"),       // e^(ln x) → x   (x ≥ 0)
        rule!(log1p_expm1, "log1p(expm1(?x))" => "?x"),               // ln(1 + (eˣ − 1)) → x
        rule!(log_recip, "log(reciprocal(?x))" => "neg(log(?x))"),   // ln(1/x) → −ln x
        rule!(log_sqrt, "log(sqrt(?x))" => "mul(log(?x), 0.5)"),      // ln √x → ½ ln x
        rule!(exp_neg_log, "exp(neg(log(?x)))" => "reciprocal(?x)", if "nonneg(?x)"), // e^(−ln x) → 1/x   (x ≥ 0)
    ]
}
