//! Numerical stability: steer naive forms to the stable ops (log1p, expm1, softplus,
//! log_sigmoid, log1mexp, logaddexp, reduce_logsumexp).
//!
//! Patterns are written against the canonical form (constants on the right of `add`,
//! `x − c` as `x + (−c)`), with the `sub`/`log1p` spellings added where canonicalization
//! leaves them. All rewrites are mathematically exact; they only remove overflow, underflow
//! and cancellation.
//!
//! The gradient hazard: the VJP of `where(c, f(x), y)` sends `where(c, g, 0)` into f's rule,
//! which multiplies (or divides) it by f′(x); where the condition is false and f′(x) is
//! inf or NaN (log at 0, sqrt at 0, …) this gives 0 · inf = NaN although the branch was
//! discarded. `where_mul_sink` / `where_div_sink` move the product inside the select, so the
//! discarded branch yields exactly 0. They change a result only where the original was NaN
//! (0 · inf, 0 · NaN, 0/0) at positions the select discards.

use crate::engine::{Rule, rule};

/// The stabilization rules (tried in this order: softplus before log1p, so that
/// `log(1 + eˣ)` becomes softplus rather than `log1p(eˣ)`; `log1p(eˣ)` is covered too).
pub(crate) fn rules() -> Vec<Rule> {
    vec![
        rule!(softplus_of_log, "log(add(exp(?x), 1.0))" => "softplus(?x)"),        // ln(1 + eˣ) → softplus x
        rule!(softplus_of_log1p, "log1p(exp(?x))" => "softplus(?x)"),              // log1p(eˣ) → softplus x
        rule!(log1mexp_of_log, "log(sub(1.0, exp(?x)))" => "log1mexp(?x)"),       // ln(1 − eˣ) → log1mexp x
        rule!(log1mexp_of_log1p, "log1p(neg(exp(?x)))" => "log1mexp(?x)"),        // log1p(−eˣ) → log1mexp x
        rule!(log1mexp_of_expm1, "log(neg(expm1(?x)))" => "log1mexp(?x)"),        // ln(−(eˣ − 1)) → log1mexp x
        rule!(log_sigmoid_of_log, "log(sigmoid(?x))" => "log_sigmoid(?x)"),       // ln σ(x) → log_sigmoid x
        rule!(log_one_minus_sigmoid, "log(sub(1.0, sigmoid(?x)))" => "log_sigmoid(neg(?x))"), // ln(1 − σ(x)) → log_sigmoid(−x)
        rule!(log1p_neg_sigmoid, "log1p(neg(sigmoid(?x)))" => "log_sigmoid(neg(?x))"), // log1p(−σ(x)) → log_sigmoid(−x)
        rule!(neg_softplus_neg, "neg(softplus(neg(?x)))" => "log_sigmoid(?x)"),   // −softplus(−x) → log_sigmoid x
        rule!(logaddexp_of_log, "log(add(exp(?a), exp(?b)))" => "logaddexp(?a, ?b)"), // ln(eᵃ + eᵇ) → logaddexp(a, b)
        rule!(logsumexp_of_log, "log(reduce_sum[?k](exp(?x)))" => "reduce_logsumexp[?k](?x)"), // ln Σ eˣ → logsumexp x (same axes, keepdims)
        rule!(log1p_of_log, "log(add(?x, 1.0))" => "log1p(?x)"),                  // ln(x + 1) → log1p x
        rule!(expm1_of_add, "add(exp(?x), -1.0)" => "expm1(?x)"),                 // eˣ + (−1) → expm1 x
        rule!(expm1_of_sub, "sub(exp(?x), 1.0)" => "expm1(?x)"),                  // eˣ − 1 → expm1 x
        rule!(where_mul_sink, "mul(where(?c, ?a, 0.0), ?y)" => "where(?c, mul(?a, ?y), 0.0)"),     // where(c, a, 0)·y → where(c, a·y, 0)
        rule!(where_mul_sink_else, "mul(where(?c, 0.0, ?a), ?y)" => "where(?c, 0.0, mul(?a, ?y))"), // where(c, 0, a)·y → where(c, 0, a·y)
        rule!(where_mul_sink_left, "mul(?y, where(?c, ?a, 0.0))" => "where(?c, mul(?y, ?a), 0.0)"), // y·where(c, a, 0) → where(c, y·a, 0)
        rule!(where_div_sink, "div(where(?c, ?a, 0.0), ?y)" => "where(?c, div(?a, ?y), 0.0)"),     // where(c, a, 0)/y → where(c, a/y, 0)
        rule!(where_div_sink_else, "div(where(?c, 0.0, ?a), ?y)" => "where(?c, 0.0, div(?a, ?y))"), // where(c, 0, a)/y → where(c, 0, a/y)
    ]
}
