//! Arithmetic: canonical forms, identities, and strength reduction.
//!
//! Documented choices (IEEE semantics):
//! - `x + 0 → x`, `x − 0 → x`: exact except that `−0 + 0` is `+0`; the sign of a zero is
//!   not preserved (nothing in a log density depends on it).
//! - `x · 1 → x`, `x / 1 → x`, `neg(neg x) → x`, `x · −1 → neg x`, `pow(x, 1) → x`: exact.
//! - `reciprocal(reciprocal x) → x`: exact except for subnormal x (1/x overflows to inf, and
//!   1/inf = 0 ≠ x); the rewrite is the more accurate one.
//! - `x − x → 0` only if x is provably finite (inf − inf and NaN − NaN are NaN);
//!   `x / x → 1` only if x is provably finite and nonzero (0/0, inf/inf, NaN/NaN are NaN).
//! - `x · 0` is never rewritten: inf · 0 and NaN · 0 are NaN.
//! - Gathering constants, `(x + a) + b → x + (a + b)` and `(x · a) · b → x · (a · b)`,
//!   reassociates: results may differ in the last bits (and at overflow edges).
//! - `exp a · exp b → exp(a + b)`: equal up to rounding; better where exp a overflows and
//!   exp b underflows (inf · 0 = NaN before, a finite value after).
//! - `pow(x, 2) → square x`, `pow(x, −1) → reciprocal x`: equal up to pow's rounding.
//!   `pow(x, 0.5) → sqrt x` differs only at x = −inf (pow gives +inf, sqrt NaN) and at −0.
//! - `x / y → x · (1/y)` when y is broadcast (fewer elements than the result): one division
//!   instead of one per element (Stan's normal_lpdf does the same with `inv(sigma)`); within
//!   an ulp, except where 1/y is not a normal number (|y| < 2⁻¹⁰²² or |y| > 2¹⁰²²). Its
//!   inverse `x · (1/y) → x / y` applies only when y is not broadcast.
//! - `square(sqrt x) → x` and `sqrt x · sqrt x → x` only if x is provably ≥ 0 (else sqrt is NaN).

use crate::engine::{Rule, rule};

/// Canonical forms: constants to the right of commutative ops, `x − c → x + (−c)` so that
/// constants gather in sums, constant chains gathered.
pub(crate) fn canonical() -> Vec<Rule> {
    vec![
        rule!(const_right_add, "add(?c, ?x)" => "add(?x, ?c)", if "is_const(?c), not_const(?x)"), // c + x → x + c
        rule!(const_right_mul, "mul(?c, ?x)" => "mul(?x, ?c)", if "is_const(?c), not_const(?x)"), // c · x → x · c
        rule!(sub_const_to_add, "sub(?x, ?c)" => "add(?x, neg(?c))", if "is_const(?c), not_const(?x)"), // x − c → x + (−c)
        rule!(gather_add_consts, "add(add(?x, ?a), ?b)" => "add(?x, add(?a, ?b))", if "is_const(?a), is_const(?b)"), // (x + a) + b → x + (a + b)
        rule!(gather_mul_consts, "mul(mul(?x, ?a), ?b)" => "mul(?x, mul(?a, ?b))", if "is_const(?a), is_const(?b)"), // (x · a) · b → x · (a · b)
        rule!(mul_minus_one, "mul(?x, -1.0)" => "neg(?x)"), // x · −1 → −x
    ]
}

/// Algebraic identities (each guarded where IEEE semantics require, see the module docs).
pub(crate) fn identities() -> Vec<Rule> {
    vec![
        rule!(add_zero, "add(?x, 0.0)" => "?x"),            // x + 0 → x
        rule!(sub_zero, "sub(?x, 0.0)" => "?x"),            // x − 0 → x
        rule!(mul_one, "mul(?x, 1.0)" => "?x"),             // x · 1 → x
        rule!(div_one, "div(?x, 1.0)" => "?x"),             // x / 1 → x
        rule!(pow_one, "pow(?x, 1.0)" => "?x"),             // x¹ → x
        rule!(neg_neg, "neg(neg(?x))" => "?x"),             // −(−x) → x
        rule!(recip_recip, "reciprocal(reciprocal(?x))" => "?x"), // 1/(1/x) → x
        rule!(sub_self, "sub(?x, ?x)" => "0.0", if "finite(?x)"), // x − x → 0   (x finite)
        rule!(div_self, "div(?x, ?x)" => "1.0", if "nonzero_finite(?x)"), // x / x → 1   (x finite, ≠ 0)
        rule!(sub_neg, "sub(?x, neg(?y))" => "add(?x, ?y)"), // x − (−y) → x + y
        rule!(neg_of_sub, "neg(sub(?x, ?y))" => "sub(?y, ?x)"), // −(x − y) → y − x
        rule!(mul_neg_neg, "mul(neg(?x), neg(?y))" => "mul(?x, ?y)"), // (−x)(−y) → xy
        rule!(mul_exp_exp, "mul(exp(?a), exp(?b))" => "exp(add(?a, ?b))"), // eᵃ · eᵇ → eᵃ⁺ᵇ
        rule!(div_exp_exp, "div(exp(?a), exp(?b))" => "exp(sub(?a, ?b))"), // eᵃ / eᵇ → eᵃ⁻ᵇ
        rule!(square_sqrt, "square(sqrt(?x))" => "?x", if "nonneg(?x)"), // (√x)² → x   (x ≥ 0)
        rule!(mul_sqrt_sqrt, "mul(sqrt(?x), sqrt(?x))" => "?x", if "nonneg(?x)"), // √x · √x → x   (x ≥ 0)
        rule!(sqrt_square, "sqrt(square(?x))" => "abs(?x)"), // √(x²) → |x|
        rule!(abs_abs, "abs(abs(?x))" => "abs(?x)"),         // ||x|| → |x|
        rule!(abs_neg, "abs(neg(?x))" => "abs(?x)"),         // |−x| → |x|
    ]
}

/// Strength reduction: cheaper ops for the same value.
pub(crate) fn specialize() -> Vec<Rule> {
    vec![
        rule!(pow_two, "pow(?x, 2.0)" => "square(?x)"),          // x² → square x
        rule!(pow_half, "pow(?x, 0.5)" => "sqrt(?x)"),           // x^½ → √x   (IEEE pow differs at −inf, −0 only: +inf, +0)
        rule!(pow_minus_one, "pow(?x, -1.0)" => "reciprocal(?x)"), // x⁻¹ → 1/x
        rule!(pow_zero, "pow(?x, 0.0)" => "1.0"),                 // x⁰ → 1   (IEEE: pow(NaN, 0) = 1 too)
        rule!(mul_self, "mul(?x, ?x)" => "square(?x)"),          // x · x → square x
        rule!(div_one_by, "div(1.0, ?x)" => "reciprocal(?x)"),   // 1/x → reciprocal x
        rule!(add_neg_right, "add(?x, neg(?y))" => "sub(?x, ?y)"), // x + (−y) → x − y
        rule!(add_neg_left, "add(neg(?y), ?x)" => "sub(?x, ?y)"),  // (−y) + x → x − y
        rule!(mul_recip, "mul(?x, reciprocal(?y))" => "div(?x, ?y)", if "same_shape(?y, ?root)"), // x · (1/y) → x / y   (y not broadcast)
        rule!(div_by_broadcast, "div(?x, ?y)" => "mul(?x, reciprocal(?y))", if "smaller(?y, ?root)"), // x / y → x · (1/y)   (y broadcast: one division)
    ]
}
