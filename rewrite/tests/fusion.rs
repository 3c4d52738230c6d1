//! Fusion: elementwise chains and reductions of them become fused kernels.

mod common;

use common::{check, program};
use tessera_rewrite::Pass;

const ALL: &[Pass] = &[Pass::Canonicalize, Pass::Simplify, Pass::Stabilize, Pass::Specialize, Pass::Fuse];

#[test]
fn fusion_file() {
    let cases = [
        ("normal log density → one fused reduction", "%x: f64[20], %mu: f64[], %sigma: f64[]", "f64[]", "%0:f64[20] = sub %x, %mu\n%1:f64[20] = div %0, %sigma\n%2:f64[20] = square %1\n%3:f64[] = reduce_sum[axes=[0]] %2\n%4:f64[] = mul %3, -0.5:f64", "%4"),
        ("shared subexpression is an operand, not recomputed", "%x: f64[4]", "(f64[4], f64[4])", "%0:f64[4] = exp %x\n%1:f64[4] = add %0, 1.0:f64\n%2:f64[4] = mul %1, %x\n%3:f64[4] = sin %0\n%4:f64[4] = cos %3", "%2, %4"),
        ("single op is left alone", "%x: f64[4]", "f64[4]", "%0:f64[4] = exp %x", "%0"),
        ("where and cast inside a kernel", "%x: f64[4], %y: f64[4]", "f64[4]", "%0:bool[4] = gt %x, %y\n%1:f64[4] = cast[to=f64] %0\n%2:f64[4] = where %0, %x, %1\n%3:f64[4] = exp %2", "%3"),
    ];
    let mut out = String::new();
    for (title, sig, ret, body, r) in cases {
        out.push_str(&check(title, &program(sig, ret, body, r), ALL));
    }
    insta::assert_snapshot!(out);
}
