//! Stability rules: file cases (snapshots) and the four cases of the issue shown both ways.

mod common;

use std::collections::HashMap;

use common::{RULES, assert_fired, assert_not_fired, check, program};
use ndarray::{ArrayD, IxDyn};
use tessera_graph::{Value, eval, parse};
use tessera_rewrite::{PipelineSettings, optimize};

fn cases() -> Vec<(&'static str, String)> {
    vec![
        ("log(1 + exp x) → softplus", program("%x: f64[3]", "f64[3]", "%0:f64[3] = exp %x\n%1:f64[3] = add 1.0:f64, %0\n%2:f64[3] = log %1", "%2")),
        ("log(1 + x) → log1p", program("%x: f64[3]", "f64[3]", "%0:f64[3] = add %x, 1.0:f64\n%1:f64[3] = log %0", "%1")),
        ("exp(x) − 1 → expm1", program("%x: f64[3]", "f64[3]", "%0:f64[3] = exp %x\n%1:f64[3] = sub %0, 1.0:f64", "%1")),
        ("log(sigmoid x) → log_sigmoid", program("%x: f64[3]", "f64[3]", "%0:f64[3] = sigmoid %x\n%1:f64[3] = log %0", "%1")),
        ("log(1 − sigmoid x) → log_sigmoid(−x)", program("%x: f64[3]", "f64[3]", "%0:f64[3] = sigmoid %x\n%1:f64[3] = sub 1.0:f64, %0\n%2:f64[3] = log %1", "%2")),
        ("log(1 − exp x) → log1mexp", program("%x: f64[3]", "f64[3]", "%n:f64[3] = neg %x\n%0:f64[3] = exp %n\n%1:f64[3] = sub 1.0:f64, %0\n%2:f64[3] = log %1", "%2")),
        ("log(sum(exp x)) → logsumexp", program("%x: f64[2,3]", "f64[2]", "%0:f64[2,3] = exp %x\n%1:f64[2] = reduce_sum[axes=[1]] %0\n%2:f64[2] = log %1", "%2")),
        ("log(sum(exp x), keepdims) → logsumexp keepdims", program("%x: f64[2,3]", "f64[1,3]", "%0:f64[2,3] = exp %x\n%1:f64[1,3] = reduce_sum[axes=[0], keepdims=true] %0\n%2:f64[1,3] = log %1", "%2")),
        ("log(exp a + exp b) → logaddexp", program("%a: f64[3], %b: f64[]", "f64[3]", "%0:f64[3] = exp %a\n%1:f64[] = exp %b\n%2:f64[3] = add %0, %1\n%3:f64[3] = log %2", "%3")),
        ("where(c, g, 0)/x → where(c, g/x, 0) (gradient NaN hazard)", program("%c: bool[3], %g: f64[3], %x: f64[3]", "f64[3]", "%0:f64[3] = where %c, %g, 0.0:f64\n%1:f64[3] = div %0, %x", "%1")),
    ]
}

#[test]
fn stability_file() {
    let mut out = String::new();
    for (title, src) in cases() {
        out.push_str(&check(title, &src, RULES));
    }
    insta::assert_snapshot!(out);
}

fn scalar_in(name: &str, v: f64) -> HashMap<String, Value> {
    HashMap::from([(name.to_string(), Value::scalar(v))])
}

/// (program, input value, naive result predicate, stable expected value)
fn issue_cases() -> Vec<(String, HashMap<String, Value>, f64, f64)> {
    let ln2 = std::f64::consts::LN_2;
    vec![
        (program("%x: f64[]", "f64[]", "%0:f64[] = exp %x\n%1:f64[] = add %0, 1.0:f64\n%2:f64[] = log %1", "%2"), scalar_in("x", 800.0), f64::INFINITY, 800.0),
        (program("%x: f64[]", "f64[]", "%0:f64[] = sigmoid %x\n%1:f64[] = log %0", "%1"), scalar_in("x", -800.0), f64::NEG_INFINITY, -800.0),
        (
            program("%x: f64[2]", "f64[]", "%0:f64[2] = exp %x\n%1:f64[] = reduce_sum[axes=[0]] %0\n%2:f64[] = log %1", "%2"),
            HashMap::from([("x".to_string(), Value::F64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1000.0, 1000.0]).unwrap()))]),
            f64::INFINITY,
            1000.0 + ln2,
        ),
        (program("%x: f64[]", "f64[]", "%0:f64[] = add %x, 1.0:f64\n%1:f64[] = log %0", "%1"), scalar_in("x", 1e-20), 0.0, 1e-20),
    ]
}

#[test]
fn issue_cases_before_and_after() {
    for (src, inputs, naive, stable) in issue_cases() {
        let g = parse(&src).unwrap();
        let before = eval(&g, &inputs).unwrap()[0].to_scalar_f64().unwrap();
        assert_eq!(before, naive, "naive value of\n{src}");
        let settings = PipelineSettings { verify: true, ..PipelineSettings::default() };
        let (opt, _) = optimize(&g, &settings).unwrap();
        let after = eval(&opt, &inputs).unwrap()[0].to_scalar_f64().unwrap();
        assert!((after - stable).abs() <= 1e-12 * stable.abs(), "{after} vs {stable}\n{}", tessera_graph::print(&opt));
    }
}

#[test]
fn where_sink_needs_a_zero_branch() {
    let fires = program("%c: bool[3], %g: f64[3], %x: f64[3]", "f64[3]", "%0:f64[3] = where %c, %g, 0.0:f64\n%1:f64[3] = mul %0, %x", "%1");
    assert_fired(&fires, "where_mul_sink");
    let not = program("%c: bool[3], %g: f64[3], %x: f64[3]", "f64[3]", "%0:f64[3] = where %c, %g, 1.0:f64\n%1:f64[3] = mul %0, %x", "%1");
    assert_not_fired(&not, "where_mul_sink");
}

#[test]
fn where_sink_turns_nan_into_zero_where_discarded() {
    // g/x with x = 0 where the select discards: 0/0 = NaN before, 0 after.
    let src = program("%c: bool[2], %g: f64[2], %x: f64[2]", "f64[2]", "%0:f64[2] = where %c, %g, 0.0:f64\n%1:f64[2] = div %0, %x", "%1");
    let g = parse(&src).unwrap();
    let inputs = HashMap::from([
        ("c".to_string(), Value::Bool(ArrayD::from_shape_vec(IxDyn(&[2]), vec![true, false]).unwrap())),
        ("g".to_string(), Value::F64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![3.0, 5.0]).unwrap())),
        ("x".to_string(), Value::F64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![2.0, 0.0]).unwrap())),
    ]);
    let before = eval(&g, &inputs).unwrap()[0].to_f64_vec();
    assert!(before[1].is_nan());
    let (opt, _) = optimize(&g, &PipelineSettings::default()).unwrap();
    assert_eq!(eval(&opt, &inputs).unwrap()[0].to_f64_vec(), vec![1.5, 0.0]);
}
