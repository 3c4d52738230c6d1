//! Arithmetic rules: file cases (snapshots) and the guarded rules' must-not-fire cases.

mod common;

use common::{RULES, assert_fired, assert_not_fired, check, program};

fn unary_case(expr_lines: &str, out: &str) -> String {
    program("%x: f64[3], %y: f64[3]", "f64[3]", expr_lines, out)
}

#[test]
fn arith_file() {
    let cases = [
        ("x + 0, x · 1, x − 0, x / 1", "%0:f64[3] = add %x, 0.0:f64\n%1:f64[3] = mul %0, 1.0:f64\n%2:f64[3] = sub %1, 0.0:f64\n%3:f64[3] = div %2, 1.0:f64", "%3"),
        ("x + zeros[3] with x scalar broadcasts back", "%z:f64[3] = const [0.0, 0.0, 0.0]\n%s:f64[] = reduce_sum[axes=[0]] %x\n%0:f64[3] = add %s, %z", "%0"),
        ("neg(neg x), reciprocal(reciprocal x)", "%0:f64[3] = neg %x\n%1:f64[3] = neg %0\n%2:f64[3] = reciprocal %1\n%3:f64[3] = reciprocal %2", "%3"),
        ("constants gathered: ((2 + x) + 3) · 2 · 5", "%0:f64[3] = add 2.0:f64, %x\n%1:f64[3] = add %0, 3.0:f64\n%2:f64[3] = mul %1, 2.0:f64\n%3:f64[3] = mul %2, 5.0:f64", "%3"),
        ("x − c → x + (−c)", "%0:f64[3] = sub %x, 2.5:f64", "%0"),
        ("exp a · exp b → exp(a + b)", "%0:f64[3] = exp %x\n%1:f64[3] = exp %y\n%2:f64[3] = mul %0, %1", "%2"),
        ("pow(x, 2), pow(x, 0.5), pow(x, −1)", "%0:f64[3] = pow %x, 2.0:f64\n%1:f64[3] = pow %0, 0.5:f64\n%2:f64[3] = pow %1, -1.0:f64\n%3:f64[3] = add %2, %y", "%3"),
        ("sqrt(exp x)² → exp x (x ≥ 0 proven)", "%0:f64[3] = exp %x\n%1:f64[3] = sqrt %0\n%2:f64[3] = square %1", "%2"),
        ("x + (−y) → x − y; x · x → square", "%0:f64[3] = neg %y\n%1:f64[3] = add %x, %0\n%2:f64[3] = mul %1, %1", "%2"),
        ("x / s with s broadcast → x · (1/s); x · (1/y) → x / y", "%s:f64[] = reduce_sum[axes=[0]] %y\n%0:f64[3] = div %x, %s\n%1:f64[3] = reciprocal %y\n%2:f64[3] = mul %0, %1", "%2"),
    ];
    let mut out = String::new();
    for (title, body, ret) in cases {
        out.push_str(&check(title, &unary_case(body, ret), RULES));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn division_becomes_a_reciprocal_only_when_the_divisor_is_broadcast() {
    // Same shapes: one division per element either way, so x / y stays.
    assert_not_fired(&unary_case("%0:f64[3] = div %x, %y", "%0"), "div_by_broadcast");
    // x · (1/s) with s broadcast is the cheaper form already: it must not turn back.
    let scalar = "%s:f64[] = reduce_sum[axes=[0]] %y\n%r:f64[] = reciprocal %s\n%0:f64[3] = mul %x, %r";
    assert_not_fired(&unary_case(scalar, "%0"), "mul_recip");
    assert_fired(&unary_case("%s:f64[] = reduce_sum[axes=[0]] %y\n%0:f64[3] = div %x, %s", "%0"), "div_by_broadcast");
}

#[test]
fn sub_self_only_for_provably_finite() {
    // x − x with x an input (possibly inf or NaN) must stay.
    assert_not_fired(&unary_case("%0:f64[3] = sub %x, %x", "%0"), "sub_self");
    // sigmoid of a finite constant-derived value is finite.
    assert_fired(&unary_case("%c:f64[3] = const [1.0, 2.0, 3.0]\n%s:f64[3] = tanh %c\n%t:f64[3] = add %s, %x\n%u:f64[3] = sin %c\n%0:f64[3] = sub %u, %u\n%1:f64[3] = add %0, %t", "%1"), "fold_constants");
}

#[test]
fn div_self_only_for_nonzero_finite() {
    assert_not_fired(&unary_case("%0:f64[3] = div %x, %x", "%0"), "div_self");
}

#[test]
fn square_sqrt_needs_nonneg() {
    assert_not_fired(&unary_case("%0:f64[3] = sqrt %x\n%1:f64[3] = square %0", "%1"), "square_sqrt");
    assert_fired(&unary_case("%a:f64[3] = abs %x\n%0:f64[3] = sqrt %a\n%1:f64[3] = square %0", "%1"), "square_sqrt");
}

#[test]
fn mul_by_zero_is_never_removed() {
    let src = unary_case("%0:f64[3] = mul %x, 0.0:f64", "%0");
    let (g, _) = common::run(&src, RULES);
    assert!(tessera_graph::print(&g).contains("mul %x, 0.0:f64"));
}

#[test]
fn constants_right_only_when_the_other_side_is_not_constant() {
    assert_fired(&unary_case("%0:f64[3] = mul 2.0:f64, %x", "%0"), "const_right_mul");
    assert_not_fired(&unary_case("%0:f64[3] = mul %x, 2.0:f64", "%0"), "const_right_mul");
}
