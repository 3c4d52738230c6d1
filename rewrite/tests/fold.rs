//! Constant folding and selects with constant conditions.

mod common;

use common::{RULES, assert_not_fired, check, program};

#[test]
fn fold_file() {
    let cases = [
        ("constant subexpressions fold through the interpreter", "%x: f64[3]", "f64[3]", "%c:f64[3] = const [1.0, 2.0, 3.0]\n%0:f64[3] = exp %c\n%1:f64[3] = mul %0, 2.0:f64\n%2:f64[3] = add %x, %1", "%2"),
        ("where with a constant condition", "%x: f64[3], %y: f64[3]", "f64[3]", "%0:f64[3] = where true:bool, %x, %y\n%1:f64[3] = where false:bool, %x, %0", "%1"),
        ("dead nodes are dropped", "%x: f64[3]", "f64[3]", "%0:f64[3] = exp %x\n%1:f64[3] = log %x\n%2:f64[3] = add %0, %0", "%2"),
        ("constants joined along the first axis fold to their data end to end", "%x: f64[3,2]", "f64[3,2]", "%a:f64[2,2] = const [[1.0, 2.0], [3.0, 4.0]]\n%b:f64[1,2] = const [[5.0, 6.0]]\n%0:f64[3,2] = concatenate[axis=0] %a, %b\n%1:f64[3,2] = mul %x, %0", "%1"),
    ];
    let mut out = String::new();
    for (title, sig, ret, body, r) in cases {
        out.push_str(&check(title, &program(sig, ret, body, r), RULES));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn large_broadcasts_are_not_materialized() {
    let src = program("%x: f64[1000]", "f64[1000]", "%0:f64[1000] = broadcast_to[shape=[1000]] 2.0:f64\n%1:f64[1000] = exp %0\n%2:f64[1000] = add %x, %1", "%2");
    let (g, _) = common::run(&src, RULES);
    assert!(!tessera_graph::print(&g).contains("const ["), "{g}");
    assert_not_fired(&program("%x: f64[3]", "f64[3]", "%0:f64[3] = exp %x", "%0"), "fold_constants");
}
