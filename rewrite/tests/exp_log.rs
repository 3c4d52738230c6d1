//! Exp/log identities: file cases (snapshots) and the domain guard of exp(log x).

mod common;

use common::{RULES, assert_fired, assert_not_fired, check, program};

#[test]
fn exp_log_file() {
    let cases = [
        ("log(exp x) → x", "%0:f64[3] = exp %x\n%1:f64[3] = log %0", "%1"),
        ("log(exp x) inside a larger expression", "%0:f64[3] = exp %x\n%1:f64[3] = log %0\n%2:f64[3] = add %1, %x\n%3:f64[3] = exp %2", "%3"),
        ("exp(log(square x)) → square x", "%0:f64[3] = square %x\n%1:f64[3] = log %0\n%2:f64[3] = exp %1", "%2"),
        ("log(1/x) → −log x", "%0:f64[3] = reciprocal %x\n%1:f64[3] = log %0", "%1"),
        ("log1p(expm1 x) → x", "%0:f64[3] = expm1 %x\n%1:f64[3] = log1p %0", "%1"),
    ];
    let mut out = String::new();
    for (title, body, ret) in cases {
        out.push_str(&check(title, &program("%x: f64[3]", "f64[3]", body, ret), RULES));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn exp_log_needs_nonneg() {
    // x may be negative: exp(log x) is NaN there, x is not.
    assert_not_fired(&program("%x: f64[3]", "f64[3]", "%0:f64[3] = log %x\n%1:f64[3] = exp %0", "%1"), "exp_log");
    assert_fired(&program("%x: f64[3]", "f64[3]", "%a:f64[3] = abs %x\n%0:f64[3] = log %a\n%1:f64[3] = exp %0", "%1"), "exp_log");
}
