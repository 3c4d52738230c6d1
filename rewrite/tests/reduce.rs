//! Reduction rules: file cases (snapshots) and guards.

mod common;

use common::{RULES, assert_fired, assert_not_fired, check, program};

#[test]
fn reduce_file() {
    let cases = [
        ("Σ broadcast(scalar) → v · count", "%x: f64[]", "f64[]", "%0:f64[4,3] = broadcast_to[shape=[4,3]] %x\n%1:f64[] = reduce_sum[axes=[0, 1]] %0", "%1"),
        ("Σ over the broadcast axis of a row", "%x: f64[3]", "f64[3]", "%0:f64[4,3] = broadcast_to[shape=[4,3]] %x\n%1:f64[3] = reduce_sum[axes=[0]] %0", "%1"),
        ("Σ over both axes of a broadcast row", "%x: f64[3]", "f64[]", "%0:f64[4,3] = broadcast_to[shape=[4,3]] %x\n%1:f64[] = reduce_sum[axes=[0, 1]] %0", "%1"),
        ("max of a broadcast, keepdims", "%x: f64[3]", "f64[1,3]", "%0:f64[4,3] = broadcast_to[shape=[4,3]] %x\n%1:f64[1,3] = reduce_max[axes=[0], keepdims=true] %0", "%1"),
        ("Σ c·x → c·Σ x for scalar c", "%x: f64[5], %c: f64[]", "f64[]", "%0:f64[5] = mul %c, %x\n%1:f64[] = reduce_sum[axes=[0]] %0", "%1"),
        ("nested sums merged", "%x: f64[2,3,4]", "f64[3]", "%0:f64[3,4] = reduce_sum[axes=[0]] %x\n%1:f64[3] = reduce_sum[axes=[1]] %0", "%1"),
        ("nested max, inner keepdims", "%x: f64[2,3,4]", "f64[1,3]", "%0:f64[1,3,4] = reduce_max[axes=[0], keepdims=true] %x\n%1:f64[1,3] = reduce_max[axes=[2]] %0", "%1"),
        ("Σ −x → −Σ x", "%x: f64[5]", "f64[]", "%0:f64[5] = neg %x\n%1:f64[] = reduce_sum[axes=[0]] %0", "%1"),
    ];
    let mut out = String::new();
    for (title, sig, ret, body, r) in cases {
        out.push_str(&check(title, &program(sig, ret, body, r), RULES));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn sum_scale_needs_a_scalar_factor() {
    let vector = program("%x: f64[5], %c: f64[5]", "f64[]", "%0:f64[5] = mul %x, %c\n%1:f64[] = reduce_sum[axes=[0]] %0", "%1");
    assert_not_fired(&vector, "sum_scale_right");
    let scalar = program("%x: f64[5], %c: f64[]", "f64[]", "%0:f64[5] = mul %x, %c\n%1:f64[] = reduce_sum[axes=[0]] %0", "%1");
    assert_fired(&scalar, "sum_scale_right");
}

#[test]
fn nested_reductions_of_different_kinds_stay() {
    let src = program("%x: f64[2,3]", "f64[]", "%0:f64[3] = reduce_max[axes=[0]] %x\n%1:f64[] = reduce_sum[axes=[0]] %0", "%1");
    assert_not_fired(&src, "reduce_nested");
}

#[test]
fn broadcast_to_empty_axis_is_not_a_count() {
    let src = program("%x: f64[]", "f64[]", "%0:f64[0] = broadcast_to[shape=[0]] %x\n%1:f64[] = reduce_sum[axes=[0]] %0", "%1");
    assert_not_fired(&src, "reduce_of_broadcast");
}
