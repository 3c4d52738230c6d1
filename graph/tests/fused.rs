//! The fused op: text form round trip, parse errors with positions, type inference, and
//! interpreter values equal (bit for bit) to the unfused ops it stands for.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use tessera_graph::{
    BinaryOp, ConstScalar, FusedKernel, FusedReduce, Graph, Op, ReduceOp, ScalarInstr, UnaryOp, eval, parse, print,
    verify,
};

const NORMAL_FUSED: &str = "\
func @f(%x: f64[4], %mu: f64[], %sigma: f64[]) -> f64[] {
  %0:f64[] = fused[axes=[0], reduce=sum] %x, %mu, %sigma { let t0 = sub($0, $1); add(square(div(t0, $2)), mul(t0, -0.5:f64)) }
  return %0
}
";

const NORMAL_PLAIN: &str = "\
func @f(%x: f64[4], %mu: f64[], %sigma: f64[]) -> f64[] {
  %0:f64[4] = sub %x, %mu
  %1:f64[4] = div %0, %sigma
  %2:f64[4] = square %1
  %3:f64[4] = mul %0, -0.5:f64
  %4:f64[4] = add %2, %3
  %5:f64[] = reduce_sum[axes=[0]] %4
  return %5
}
";

fn inputs() -> HashMap<String, tessera_graph::Value> {
    let mut m = HashMap::new();
    m.insert("x".into(), tessera_graph::Value::F64(ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.3, -1.2, 2.5, 7.0]).unwrap()));
    m.insert("mu".into(), tessera_graph::Value::scalar(0.7));
    m.insert("sigma".into(), tessera_graph::Value::scalar(1.3));
    m
}

#[test]
fn fused_text_round_trips_exactly() {
    let g = parse(NORMAL_FUSED).unwrap();
    assert_eq!(print(&g), NORMAL_FUSED);
    assert_eq!(parse(&print(&g)).unwrap(), g);
    verify(&g).unwrap();
}

#[test]
fn fused_equals_unfused_bit_for_bit() {
    let fused = eval(&parse(NORMAL_FUSED).unwrap(), &inputs()).unwrap();
    let plain = eval(&parse(NORMAL_PLAIN).unwrap(), &inputs()).unwrap();
    let (a, b) = (fused[0].to_scalar_f64().unwrap(), plain[0].to_scalar_f64().unwrap());
    assert_eq!(a.to_bits(), b.to_bits());
    // Independent value: Σ ((x−μ)/σ)² − ½ Σ (x−μ).
    let xs = [0.3, -1.2, 2.5, 7.0];
    let want: f64 = xs.iter().map(|x: &f64| ((x - 0.7) / 1.3f64).powi(2) - 0.5 * (x - 0.7)).sum();
    assert!((a - want).abs() < 1e-12);
}

#[test]
fn elementwise_kernel_with_where_cast_and_keepdims() {
    let src = "\
func @g(%a: f64[2,3], %b: f64[3]) -> (f64[2,3], f64[2,1]) {
  %0:f64[2,3] = fused %a, %b { let t0 = gt($0, $1); where(t0, $0, cast[to=f64](t0)) }
  %1:f64[2,1] = fused[axes=[1], keepdims=true, reduce=max] %a, %b { exp(add($0, $1)) }
  return %0, %1
}
";
    let g = parse(src).unwrap();
    assert_eq!(print(&g), src);
    let mut m = HashMap::new();
    m.insert("a".into(), tessera_graph::Value::F64(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1., 5., -2., 0., 3., 4.]).unwrap()));
    m.insert("b".into(), tessera_graph::Value::F64(ArrayD::from_shape_vec(IxDyn(&[3]), vec![0., 4., 4.]).unwrap()));
    let out = eval(&g, &m).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![1., 5., 0., 0., 0., 0.]);
    let want = [(5f64 + 4.).exp(), (4f64 + 4.).exp()];
    assert_eq!(out[1].to_f64_vec(), want.to_vec());
}

#[test]
fn kernels_are_canonical_whatever_the_instruction_order() {
    use ScalarInstr::*;
    // exp($1) * $0 built in two orders, with a dead instruction and a duplicate.
    let a = FusedKernel::new(vec![Arg(0), Arg(1), Unary(UnaryOp::Exp, 1), Binary(BinaryOp::Mul, 2, 0)], None).unwrap();
    let b = FusedKernel::new(
        vec![Arg(1), Unary(UnaryOp::Exp, 0), Arg(0), Const(ConstScalar::F64(1.0f64.to_bits())), Arg(1), Unary(UnaryOp::Exp, 4), Binary(BinaryOp::Mul, 5, 2)],
        None,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.body.len(), 4);
    assert!(FusedKernel::new(vec![Unary(UnaryOp::Exp, 0)], None).is_err());
}

#[test]
fn fused_type_errors_from_the_graph_api() {
    use ScalarInstr::*;
    let mut g = Graph::new("t");
    let x = g.input("x", tessera_graph::TensorType::new(tessera_graph::DType::I64, [3])).unwrap();
    let k = FusedKernel::new(vec![Arg(0), Unary(UnaryOp::Exp, 0)], None).unwrap();
    let e = g.add(Op::Fused(Arc::new(k)), &[x]).unwrap_err();
    assert!(e.to_string().contains("expected f64"), "{e}");
    let sum = FusedKernel::new(vec![Arg(0)], Some(FusedReduce { kind: ReduceOp::Sum, axes: [1].into_iter().collect(), keepdims: false })).unwrap();
    assert!(g.add(Op::Fused(Arc::new(sum)), &[x]).is_err());
}

fn err_at(body_line: &str) -> (usize, usize, String) {
    let src = format!("func @f(%x: f64[3], %n: i64[3]) -> f64[3] {{\n{body_line}\n  return %0\n}}\n");
    let e = parse(&src).unwrap_err();
    (e.line, e.column, e.message)
}

#[test]
fn malformed_bodies_give_positioned_errors() {
    let (l, c, m) = err_at("  %0:f64[3] = fused %x { frob($0) }");
    assert_eq!((l, c), (2, 26));
    assert!(m.contains("unknown op `frob`"), "{m}");
    let (l, c, m) = err_at("  %0:f64[3] = fused %x { exp($1) }");
    assert_eq!((l, c), (2, 30));
    assert!(m.contains("no operand `$1`"), "{m}");
    let (l, c, m) = err_at("  %0:f64[3] = fused %x { exp(t3) }");
    assert_eq!((l, c), (2, 30));
    assert!(m.contains("undefined name `t3`"), "{m}");
    let (l, c, m) = err_at("  %0:f64[3] = fused %x, %n { add($0, $1) }");
    assert_eq!((l, c), (2, 30));
    assert!(m.contains("dtypes differ"), "{m}");
    let (l, c, m) = err_at("  %0:f64[3] = fused %x { let t0 = exp($0) t0 }");
    assert_eq!((l, c), (2, 43));
    assert!(m.contains("`;`"), "{m}");
    let (l, _, m) = err_at("  %0:f64[3] = fused %x { exp($0, $0) }");
    assert_eq!(l, 2);
    assert!(m.contains("takes 1 operand"), "{m}");
}
