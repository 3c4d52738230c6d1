//! The text form: printer, parser, round trips over random graphs, snapshots of example
//! graphs, error messages with positions, robustness on garbage, and the examples/ files.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::Arc;

use ndarray::{ArrayD, array};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use tessera_graph::arbitrary::{GenConfig, arb_graph};
use tessera_graph::{
    ConstData, Constant, DType, Graph, GraphBuilder, Op, ParseError, Shape, SliceRange, TensorType, Value, eval, parse,
    print, verify,
};

fn parse_ok(src: &str) -> Graph {
    parse(src).unwrap_or_else(|e| panic!("parse failed:\n{e}\n--- source ---\n{src}"))
}

fn parse_err(src: &str) -> ParseError {
    match parse(src) {
        Ok(g) => panic!("expected a parse error, got:\n{}", print(&g)),
        Err(e) => e,
    }
}

/// Asserts `parse(print(g)) == g` and that printing is a fixed point.
fn assert_round_trip(g: &Graph) {
    let text = print(g);
    let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n--- printed ---\n{text}"));
    assert_eq!(&back, g, "round trip changed the graph:\n{text}");
    assert_eq!(print(&back), text);
    verify(&back).unwrap();
}

// ---------------------------------------------------------------- the design's example

const LOGP: &str = "func @logp(%mu: f64[], %sigma: f64[], %x: f64[100]) -> f64[] {
  %0:f64[100] = sub %x, %mu
  %1:f64[100] = div %0, %sigma
  %2:f64[100] = mul %1, %1
  %3:f64[] = reduce_sum[axes=[0]] %2
  %4:f64[] = mul %3, -0.5:f64
  return %4
}
";

#[test]
fn design_example_parses_and_prints_identically() {
    let g = parse_ok(LOGP);
    assert_eq!(print(&g), LOGP);
    assert_eq!(g.to_string(), LOGP);
    assert_eq!(g.name(), "logp");
    assert_eq!(g.inputs().len(), 3);
    assert_eq!(g.live_nodes().len(), 3 + 5 + 1); // inputs, five ops, the constant −0.5
    let c = g.live_nodes().into_iter().find_map(|id| g.node(id).op.as_const().cloned()).unwrap();
    assert_eq!(c, Constant::f64(-0.5));
}

#[test]
fn parsed_graph_equals_the_builder_graph() {
    let b = GraphBuilder::new("logp");
    let mu = b.input("mu", DType::F64, &[]);
    let sigma = b.input("sigma", DType::F64, &[]);
    let x = b.input("x", DType::F64, &[100]);
    let z = (&x - &mu) / &sigma;
    let out = (&z * &z).sum(&[0]) * -0.5;
    let built = b.finish(&[&out]).unwrap();
    assert_eq!(parse_ok(LOGP), built);
    assert_eq!(print(&built), LOGP);
}

#[test]
fn whitespace_comments_and_named_binders_are_accepted() {
    let src = "// a comment line\n\
        func   @logp ( %mu : f64 [ ] ,%sigma:f64[],\n %x: f64[ 100 ] )->f64[]{ // trailing\n\
        \n\
        %d:f64[100]=sub %x,%mu\n\
        %z : f64[100] = div %d , %sigma   // z-score\n\
        %zz:f64[100] = mul %z, %z\n\
        %s:f64[] = reduce_sum [ axes = [ 0 ] ] %zz\n\
        %lp:f64[] = mul %s, -0.5 : f64\n\
        return %lp }";
    assert_eq!(print(&parse_ok(src)), LOGP);
}

#[test]
fn identical_lines_are_one_node() {
    let src = "func @f(%x: f64[3]) -> (f64[3], f64[3]) {
  %a:f64[3] = exp %x
  %b:f64[3] = exp %x
  return %a, %b
}
";
    let g = parse_ok(src);
    assert_eq!(g.outputs()[0], g.outputs()[1]);
    assert_eq!(print(&g), "func @f(%x: f64[3]) -> (f64[3], f64[3]) {\n  %0:f64[3] = exp %x\n  return %0, %0\n}\n");
}

// ---------------------------------------------------------------- constants

#[test]
fn scalar_constants_print_inline_in_shortest_round_trip_form() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[]);
    let mut acc = x.clone();
    for v in [-0.5, 1e-20, 2.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -0.0, 1e300, 0.1] {
        acc = &acc + &b.scalar(v);
    }
    let g = b.finish(&[&acc]).unwrap();
    let text = print(&g);
    for lit in
        ["-0.5:f64", "1e-20:f64", "2.0:f64", "inf:f64", "-inf:f64", "nan:f64", "-0.0:f64", "1e300:f64", "0.1:f64"]
    {
        assert!(text.contains(&format!(", {lit}\n")), "{lit} missing from\n{text}");
    }
    assert_round_trip(&g);
}

#[test]
fn nan_bit_patterns_survive_a_round_trip() {
    let odd_nan = f64::from_bits(0x7ff8_0000_0000_0001);
    let negative_nan = -f64::NAN;
    for v in [odd_nan, negative_nan] {
        let mut g = Graph::new("f");
        let c = g.constant(Constant::f64(v));
        g.set_outputs(&[c]).unwrap();
        let text = print(&g);
        assert!(text.contains(&format!("return nan0x{:016x}:f64", v.to_bits())), "{text}");
        assert_round_trip(&g);
    }
}

#[test]
fn integer_and_bool_scalars_print_with_their_dtype() {
    let mut g = Graph::new("f");
    let i = g.input("i", TensorType::new(DType::I64, [2])).unwrap();
    let p = g.input("p", TensorType::new(DType::Bool, [2])).unwrap();
    let three = g.constant(Constant::i64(-3));
    let t = g.constant(Constant::bool(true));
    let sum = g.add(Op::Binary(tessera_graph::BinaryOp::Add), &[i, three]).unwrap();
    let both = g.add(Op::Binary(tessera_graph::BinaryOp::And), &[p, t]).unwrap();
    g.set_outputs(&[sum, both, three]).unwrap();
    assert_eq!(
        print(&g),
        "func @f(%i: i64[2], %p: bool[2]) -> (i64[2], bool[2], i64[]) {
  %0:i64[2] = add %i, -3:i64
  %1:bool[2] = and %p, true:bool
  return %0, %1, -3:i64
}
"
    );
    assert_round_trip(&g);
}

fn tensor_constant(dims: &[usize], data: ConstData) -> Constant {
    Constant::new(Shape::new(dims), data).unwrap()
}

#[test]
fn tensor_constants_print_as_nested_lists() {
    let mut g = Graph::new("consts");
    let eye = g.constant(tensor_constant(&[2, 2], ConstData::F64(Arc::new(vec![1.0, 0.0, 0.0, 1.0]))));
    let idx = g.constant(tensor_constant(&[2, 1, 3], ConstData::I64(Arc::new(vec![0, 1, 2, 3, 4, -5]))));
    let mask = g.constant(tensor_constant(&[3], ConstData::Bool(Arc::new(vec![true, false, true]))));
    let empty = g.constant(tensor_constant(&[0], ConstData::F64(Arc::new(vec![]))));
    let empty2 = g.constant(tensor_constant(&[2, 0], ConstData::F64(Arc::new(vec![]))));
    let empty3 = g.constant(tensor_constant(&[0, 3], ConstData::I64(Arc::new(vec![]))));
    g.set_outputs(&[eye, idx, mask, empty, empty2, empty3]).unwrap();
    let expected = "func @consts() -> (f64[2,2], i64[2,1,3], bool[3], f64[0], f64[2,0], i64[0,3]) {
  %0:f64[2,2] = const [[1.0, 0.0], [0.0, 1.0]]
  %1:i64[2,1,3] = const [[[0, 1, 2]], [[3, 4, -5]]]
  %2:bool[3] = const [true, false, true]
  %3:f64[0] = const []
  %4:f64[2,0] = const [[], []]
  %5:i64[0,3] = const []
  return %0, %1, %2, %3, %4, %5
}
";
    assert_eq!(print(&g), expected);
    assert_round_trip(&g);
}

#[test]
fn scalar_const_lines_are_accepted_and_merge_with_inline_literals() {
    let src = "func @f(%x: f64[]) -> f64[] {
  %c:f64[] = const 1.5
  %k:i64[] = const 7
  %d:f64[] = const 1.5:f64
  %0:f64[] = add %x, %c
  %1:f64[] = mul %0, %d
  %2:f64[] = sub %1, 1.5:f64
  return %2
}
";
    let g = parse_ok(src);
    let consts = g.live_nodes().into_iter().filter(|&id| g.node(id).op.as_const().is_some()).count();
    assert_eq!(consts, 1, "1.5 written three ways is one node");
    assert_eq!(
        print(&g),
        "func @f(%x: f64[]) -> f64[] {
  %0:f64[] = add %x, 1.5:f64
  %1:f64[] = mul %0, 1.5:f64
  %2:f64[] = sub %1, 1.5:f64
  return %2
}
"
    );
}

#[test]
fn integer_literals_are_accepted_as_f64_elements() {
    let src = "func @f() -> f64[2] {\n  %0:f64[2] = const [1, -2]\n  return %0\n}\n";
    let g = parse_ok(src);
    let c = g.node(g.outputs()[0]).op.as_const().unwrap().clone();
    assert_eq!(c, tensor_constant(&[2], ConstData::F64(Arc::new(vec![1.0, -2.0]))));
}

#[test]
fn large_constant_prints_and_parses() {
    // Logistic regression's design matrix: 25,000 × 5 = 125,000 elements.
    let (n, k) = (25_000, 5);
    let data: Vec<f64> = (0..n * k).map(|i| ((i * 7919) % 1000) as f64 / 997.0 - 0.5).collect();
    let mut g = Graph::new("big");
    let beta = g.input("beta", TensorType::new(DType::F64, [k])).unwrap();
    let x = g.constant(tensor_constant(&[n, k], ConstData::F64(Arc::from(data))));
    let eta = g.add(Op::Matmul, &[x, beta]).unwrap();
    g.set_outputs(&[eta]).unwrap();
    let text = print(&g);
    assert_eq!(text.lines().count(), 5);
    assert_round_trip(&g);
}

// ---------------------------------------------------------------- attributes

#[test]
fn every_attribute_prints_sorted_with_defaults_omitted() {
    let src = "func @attrs(%m: f64[3,4], %v: f64[4], %s: f64[1,3], %i: i64[5], %w: f64[3]) -> (f64[], f64[3,1], f64[3,4], f64[3,4], f64[12], f64[4,3], f64[1,3,4], f64[3], f64[2,3,4], f64[3,8], f64[2,3,4], f64[3,2], f64[5], f64[5], f64[3], f64[3], f64[3,3], f64[3,3], f64[], f64[3], f64[3], f64[3], f64[4,4], f64[3,4]) {
  %0:f64[] = reduce_sum[axes=[0, 1]] %m
  %1:f64[3,1] = reduce_logsumexp[axes=[1], keepdims=true] %m
  %2:f64[3,4] = cumsum[axis=1] %m
  %3:f64[3,4] = cumsum[axis=0, reverse=true] %m
  %4:f64[12] = reshape[shape=[12]] %m
  %5:f64[4,3] = transpose[perm=[1, 0]] %m
  %6:f64[1,3,4] = expand_dims[axis=0] %m
  %7:f64[3] = squeeze[axes=[0]] %s
  %8:f64[2,3,4] = broadcast_to[shape=[2,3,4]] %m
  %9:f64[3,8] = concatenate[axis=1] %m, %m
  %10:f64[2,3,4] = stack[axis=0] %m, %m
  %11:f64[3,2] = slice[ranges=[0:3:1, 3::-2]] %m
  %12:f64[5] = cast[to=f64] %i
  %13:f64[5] = gather[axis=0] %v, %i
  %14:f64[3] = scatter_add[axis=0, size=3] %13, %i
  %15:f64[3] = matmul %m, %v
  %16:f64[3,3] = outer %w, %w
  %17:f64[3,3] = cholesky %16
  %18:f64[] = logdet_chol %17
  %19:f64[3] = triangular_solve[lower=true] %17, %w
  %20:f64[3] = triangular_solve[lower=false] %17, %w
  %21:f64[3] = diag %16
  %22:f64[4,4] = diag_matrix %v
  %23:f64[3,4] = where true:bool, %m, 0.0:f64
  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23
}
";
    let g = parse_ok(src);
    // The canonical order happens to be the order written, so the text prints back unchanged.
    assert_eq!(print(&g), src);
    assert_round_trip(&g);
}

#[test]
fn attributes_parse_in_any_order_and_print_sorted() {
    let src = "func @f(%m: f64[3,4]) -> (f64[3,1], f64[3,4]) {
  %0:f64[3,1] = reduce_max[keepdims=true, axes=[1]] %m
  %1:f64[3,4] = cumsum[reverse=true, axis=0] %m
  %2:f64[3,4] = cumsum[axis=0, reverse=false] %m
  return %0, %1
}
";
    let text = print(&parse_ok(src));
    assert!(text.contains("reduce_max[axes=[1], keepdims=true] %m"), "{text}");
    assert!(text.contains("cumsum[axis=0, reverse=true] %m"), "{text}");
}

/// Every Python slice of small axes prints to a form that parses back to the same range.
#[test]
fn slice_ranges_round_trip_exhaustively() {
    let mut checked = 0;
    for dim in 0..=5usize {
        let bound = dim as i64 + 1;
        let ends: Vec<Option<i64>> = std::iter::once(None).chain((-bound..=bound).map(Some)).collect();
        for step in [-3i64, -2, -1, 1, 2, 3] {
            for &start in &ends {
                for &stop in &ends {
                    let Ok(range) = SliceRange::from_python(start, stop, Some(step), dim) else { continue };
                    let mut g = Graph::new("s");
                    let x = g.input("x", TensorType::new(DType::F64, [dim])).unwrap();
                    let s = g.add(Op::Slice { ranges: [range].into_iter().collect() }, &[x]).unwrap();
                    g.set_outputs(&[s]).unwrap();
                    assert_round_trip(&g);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} slices checked");
}

#[test]
fn python_slice_forms_are_normalized() {
    let src = "func @f(%x: f64[5]) -> (f64[5], f64[5], f64[2], f64[3]) {
  %0:f64[5] = slice[ranges=[::-1]] %x
  %1:f64[5] = slice[ranges=[:]] %x
  %2:f64[2] = slice[ranges=[-2:]] %x
  %3:f64[3] = slice[ranges=[0:5:2]] %x
  return %0, %1, %2, %3
}
";
    let g = parse_ok(src);
    let text = print(&g);
    assert!(text.contains("slice[ranges=[4::-1]] %x"), "{text}");
    assert!(text.contains("slice[ranges=[0:5:1]] %x"), "{text}");
    assert!(text.contains("slice[ranges=[3:5:1]] %x"), "{text}");
    // 0, 2, 4: the stop printed is just past the last element, inside the axis bounds.
    assert!(text.contains("slice[ranges=[0:5:2]] %x"), "{text}");
    assert_round_trip(&g);
}

// ---------------------------------------------------------------- names

#[test]
fn odd_names_are_quoted_and_round_trip() {
    let mut g = Graph::new("my func");
    let a = g.input("a b", TensorType::scalar(DType::F64)).unwrap();
    let zero = g.input("0", TensorType::scalar(DType::F64)).unwrap();
    let q = g.input("say \"hi\"\\\n", TensorType::scalar(DType::F64)).unwrap();
    let e = g.add(Op::Unary(tessera_graph::UnaryOp::Exp), &[a]).unwrap();
    let s = g.add(Op::Binary(tessera_graph::BinaryOp::Add), &[e, zero]).unwrap();
    let t = g.add(Op::Binary(tessera_graph::BinaryOp::Add), &[s, q]).unwrap();
    g.set_outputs(&[t]).unwrap();
    let text = print(&g);
    assert_eq!(
        text,
        "func @\"my func\"(%\"a b\": f64[], %0: f64[], %\"say \\\"hi\\\"\\\\\\n\": f64[]) -> f64[] {
  %1:f64[] = exp %\"a b\"
  %2:f64[] = add %1, %0
  %3:f64[] = add %2, %\"say \\\"hi\\\"\\\\\\n\"
  return %3
}
"
    );
    assert_round_trip(&g);
}

// ---------------------------------------------------------------- determinism and snapshots

#[test]
fn graphs_built_in_different_orders_print_identically() {
    let b1 = GraphBuilder::new("f");
    let x1 = b1.input("x", DType::F64, &[3]);
    let y1 = b1.input("y", DType::F64, &[3]);
    let _dead = (&x1 * &y1).sin();
    let a1 = x1.exp();
    let c1 = y1.log();
    let out1 = (&a1 + &c1).sum(&[0]);
    let g1 = b1.finish(&[&out1, &a1]).unwrap();

    let b2 = GraphBuilder::new("f");
    let x2 = b2.input("x", DType::F64, &[3]);
    let y2 = b2.input("y", DType::F64, &[3]);
    let c2 = y2.log();
    let _other_dead = y2.tanh() * 3.0;
    let a2 = x2.exp();
    let out2 = (&a2 + &c2).sum(&[0]);
    let g2 = b2.finish(&[&out2, &a2]).unwrap();

    assert_eq!(print(&g1), print(&g2));
    assert_eq!(
        print(&g1),
        "func @f(%x: f64[3], %y: f64[3]) -> (f64[], f64[3]) {
  %0:f64[3] = exp %x
  %1:f64[3] = log %y
  %2:f64[3] = add %0, %1
  %3:f64[] = reduce_sum[axes=[0]] %2
  return %3, %0
}
"
    );
}

fn ln_2pi() -> f64 {
    (2.0 * PI).ln()
}

fn normal_logp_graph() -> Graph {
    let b = GraphBuilder::new("normal_logp");
    let mu = b.input("mu", DType::F64, &[]);
    let sigma = b.input("sigma", DType::F64, &[]);
    let x = b.input("x", DType::F64, &[5]);
    let z = (&x - &mu) / &sigma;
    let lp = z.square().sum(&[0]) * -0.5 - sigma.log() * 5.0 - 2.5 * ln_2pi();
    b.finish(&[&lp]).unwrap()
}

fn logistic_regression_graph() -> Graph {
    let b = GraphBuilder::new("logistic_regression");
    let beta = b.input("beta", DType::F64, &[2]);
    let x = b.array(&array![[1.0, 0.5], [1.0, -1.25], [1.0, 2.0], [1.0, 0.0], [1.0, -0.75], [1.0, 1.5]]);
    let y = b.array(&array![1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    let eta = x.matmul(&beta);
    let loglik = (&y * &eta - eta.softplus()).sum(&[0]);
    let prior = beta.square().sum(&[0]) * -0.5 - ln_2pi();
    b.finish(&[&(&loglik + &prior)]).unwrap()
}

fn hierarchical_graph() -> Graph {
    let b = GraphBuilder::new("hierarchical");
    let mu_a = b.input("mu_a", DType::F64, &[]);
    let log_sigma_a = b.input("log_sigma_a", DType::F64, &[]);
    let a_raw = b.input("a_raw", DType::F64, &[3]);
    let log_sigma_y = b.input("log_sigma_y", DType::F64, &[]);
    let county = b.array_i64(&array![0i64, 0, 1, 2, 2, 2]);
    let y = b.array(&array![0.5, 0.25, -1.0, 2.0, 1.75, 2.5]);
    let a = &mu_a + &(log_sigma_a.exp() * &a_raw);
    let yhat = a.gather(&county, 0);
    let sigma_y = log_sigma_y.exp();
    let loglik = (((&y - &yhat) / &sigma_y).square().sum(&[0]) * -0.5) - &log_sigma_y * 6.0;
    let prior = (a_raw.square().sum(&[0]) + mu_a.square()) * -0.5;
    let lp = loglik + prior + &log_sigma_a + &log_sigma_y;
    b.finish(&[&lp]).unwrap()
}

#[test]
fn snapshot_normal_logp() {
    let g = normal_logp_graph();
    assert_round_trip(&g);
    insta::assert_snapshot!(print(&g));
}

#[test]
fn snapshot_logistic_regression() {
    let g = logistic_regression_graph();
    assert_round_trip(&g);
    insta::assert_snapshot!(print(&g));
}

#[test]
fn snapshot_hierarchical_with_gather() {
    let g = hierarchical_graph();
    assert_round_trip(&g);
    insta::assert_snapshot!(print(&g));
}

// ---------------------------------------------------------------- errors

const HEADER: &str = "func @f(%x: f64[4], %y: f64[3], %A: f64[2,3], %v: f64[4], %i: i64[2], %r: f64[2]) -> f64[4] {\n";

/// A program with `body` between the common header and `return %x }`.
fn program(body: &str) -> String {
    format!("{HEADER}{body}  return %x\n}}\n")
}

/// Asserts the error's position and message.
fn assert_error(src: &str, line: usize, column: usize, message: &str) {
    let e = parse_err(src);
    assert_eq!((e.line, e.column, e.message.as_str()), (line, column, message), "\n{e}");
}

#[test]
fn error_unknown_op() {
    assert_error(
        &program("  %0:f64[4] = frobnicate %x\n"),
        2,
        15,
        "unknown op `frobnicate`, expected an op name such as `add`, `exp`, `reduce_sum`, `matmul` or `const`",
    );
}

#[test]
fn error_undefined_name() {
    assert_error(&program("  %0:f64[4] = exp %foo\n"), 2, 19, "undefined name `%foo`");
    // A name is defined only after its line: no forward references.
    assert_error(&program("  %0:f64[4] = exp %1\n  %1:f64[4] = exp %x\n"), 2, 19, "undefined name `%1`");
}

#[test]
fn error_redefined_name() {
    assert_error(&program("  %0:f64[4] = exp %x\n  %0:f64[4] = log %x\n"), 3, 3, "`%0` is already defined on line 2");
    assert_error(&program("  %y:f64[4] = exp %x\n"), 2, 3, "`%y` is already defined on line 1");
    assert_error(
        "func @f(%x: f64[], %x: f64[]) -> f64[] {\n  return %x\n}\n",
        1,
        20,
        "`%x` is already defined on line 1",
    );
}

#[test]
fn error_type_annotation_mismatch() {
    assert_error(
        &program("  %0:f64[3] = exp %x\n"),
        2,
        6,
        "declared type `f64[3]` does not match the inferred type `f64[4]` of `exp`",
    );
    assert_error(
        &program("  %0:i64[4] = exp %x\n"),
        2,
        6,
        "declared type `i64[4]` does not match the inferred type `f64[4]` of `exp`",
    );
}

#[test]
fn error_shape_mismatch_in_binary_op() {
    assert_error(
        &program("  %0:f64[4] = add %x, %y\n"),
        2,
        15,
        "add: operand shapes [4] and [3] do not broadcast (trailing extents must be equal or 1)",
    );
}

#[test]
fn error_matmul_inner_dimensions() {
    assert_error(
        &program("  %0:f64[2] = matmul %A, %v\n"),
        2,
        15,
        "matmul: inner dimensions differ: f64[2,3] and f64[4] (3 vs 4)",
    );
}

#[test]
fn error_gather_index_dtype() {
    assert_error(
        &program("  %0:f64[2] = gather[axis=0] %x, %r\n"),
        2,
        15,
        "gather: index has type f64[2], expected i64",
    );
}

#[test]
fn error_dtype_mismatch_between_operands() {
    assert_error(
        &program("  %0:f64[4] = mul %x, 2:i64\n"),
        2,
        15,
        "mul: operand dtypes differ: f64[4] and i64[] (insert a cast to make them equal)",
    );
}

#[test]
fn error_out_of_range_static_slice() {
    assert_error(
        &program("  %0:f64[4] = slice[ranges=[0:9:1]] %x\n"),
        2,
        29,
        "slice: axis 0 of `f64[4]`: slice stop 9 is out of range for an axis of extent 4",
    );
    assert_error(
        &program("  %0:f64[4] = slice[ranges=[:, :]] %x\n"),
        2,
        21,
        "slice of `f64[4]` needs 1 range(s), one per axis, got 2",
    );
    assert_error(
        &program("  %0:f64[4] = slice[ranges=[::0]] %x\n"),
        2,
        29,
        "slice: axis 0 of `f64[4]`: slice step must not be 0",
    );
}

#[test]
fn error_malformed_numbers() {
    assert_error(
        &program("  %0:f64[4] = mul %x, 1.5.2:f64\n"),
        2,
        23,
        "malformed f64 literal `1.5.2`, expected a number such as `1.5`, `-2e-3`, `inf` or `nan`",
    );
    assert_error(
        &program("  %0:f64[4] = add %x, 1.5:i64\n"),
        2,
        23,
        "malformed i64 literal `1.5`, expected an integer",
    );
    assert_error(&program("  %0:f64[4] = add %x, 2.0\n"), 2, 23, "literal `2.0` needs a dtype, as in `2.0:f64`");
    assert_error(
        &program("  %0:f64[4] = add %x, 99999999999999999999:i64\n"),
        2,
        23,
        "malformed i64 literal `99999999999999999999`, expected an integer",
    );
}

#[test]
fn error_malformed_types() {
    assert_error(
        "func @f(%x: f32[3]) -> f64[] {\n  return %x\n}\n",
        1,
        13,
        "unknown dtype `f32`, expected `f64`, `i64` or `bool`",
    );
    assert_error(
        "func @f(%x: f64[3x]) -> f64[] {\n  return %x\n}\n",
        1,
        17,
        "malformed integer `3x`, expected an extent (an integer from 0 to 1099511627776)",
    );
    assert_error(
        "func @f(%x: f64) -> f64[] {\n  return %x\n}\n",
        1,
        16,
        "expected `[` and the shape after the dtype (`[]` for a scalar), found `)`",
    );
    assert_error(
        "func @f(%x: f64[1099511627776,1099511627776]) -> f64[] {\n  return %x\n}\n",
        1,
        16,
        "shape has too many elements, at most 281474976710656",
    );
}

#[test]
fn error_malformed_attributes() {
    assert_error(
        &program("  %0:f64[] = reduce_sum[axes=0] %x\n"),
        2,
        30,
        "expected `[` opening the list `axes`, found `0`",
    );
    assert_error(
        &program("  %0:f64[] = reduce_sum[foo=1] %x\n"),
        2,
        25,
        "unknown attribute `foo`, expected one of axes, axis, keepdims, lower, perm, ranges, reduce, reverse, shape, size, to",
    );
    assert_error(
        &program("  %0:f64[] = reduce_sum %x\n"),
        2,
        14,
        "`reduce_sum` needs the attribute `axes` (as in `reduce_sum[axes=[0]]`)",
    );
    assert_error(&program("  %0:f64[4] = exp[axis=0] %x\n"), 2, 19, "`exp` takes no attribute `axis`");
    assert_error(&program("  %0:f64[4] = cumsum[axis=0, axis=0] %x\n"), 2, 30, "attribute `axis` is given twice");
    assert_error(
        &program("  %0:f64[4] = cast[to=f16] %x\n"),
        2,
        23,
        "unknown dtype `f16`, expected `f64`, `i64` or `bool`",
    );
    assert_error(
        &program("  %0:f64[4] = triangular_solve %A, %x\n"),
        2,
        15,
        "`triangular_solve` needs the attribute `lower` (as in `triangular_solve[lower=true]`)",
    );
}

#[test]
fn error_constant_shape() {
    assert_error(
        &program("  %0:f64[2,2] = const [[1.0, 2.0], [3.0]]\n"),
        2,
        40,
        "expected `,`: this list must have 2 element(s) for `f64[2,2]`, it has 1, found `]`",
    );
    assert_error(
        &program("  %0:f64[2] = const [1.0, 2.0, 3.0]\n"),
        2,
        30,
        "expected `]`: this list must have 2 element(s) for `f64[2]`, found `,`",
    );
    assert_error(
        &program("  %0:bool[1] = const [1]\n"),
        2,
        23,
        "malformed bool literal `1`, expected `true` or `false`",
    );
}

#[test]
fn error_missing_return_and_end_of_input() {
    assert_error("func @f(%x: f64[]) -> f64[] {\n  %0:f64[] = exp %x\n}\n", 3, 1, "missing `return` before `}`");
    assert_error(
        "func @f(%x: f64[]) -> f64[] {\n  %0:f64[] = exp %x\n",
        3,
        1,
        "unexpected end of input, expected a binding `%name:type = op …` or `return`",
    );
    assert_error(
        "func @f(%x: f64[]) -> f64[] {\n  return %x\n",
        3,
        1,
        "unexpected end of input, expected `}` closing the body",
    );
    assert_error("", 1, 1, "unexpected end of input, expected `func`");
    assert_error(
        "func @f(%x: f64[]) -> f64[] {\n  return %x\n}\n}\n",
        4,
        1,
        "expected end of input after the function, found `}`",
    );
}

#[test]
fn error_return_types() {
    assert_error(
        "func @f(%x: f64[]) -> f64[] {\n  return %x, %x\n}\n",
        2,
        3,
        "`return` gives 2 value(s), the signature declares 1",
    );
    assert_error(
        "func @f(%x: f64[]) -> f64[2] {\n  return %x\n}\n",
        2,
        10,
        "output 0 has type `f64[]`, the signature declares `f64[2]`",
    );
}

#[test]
fn error_garbage_bytes() {
    assert_error(&program("  %0:f64[4] = exp %x $\n"), 2, 22, "unexpected character `$`");
    assert_error(&program("  %0:f64[4] = exp %x\u{0}\n"), 2, 21, "unexpected character `\\0`");
    // A leading byte-order mark is skipped (columns count from the first visible character);
    // anywhere else it is a stray character.
    assert_error("\u{feff}func", 1, 5, "unexpected end of input, expected the function name `@name`");
    assert_error("func \u{feff}", 1, 6, "unexpected character `\u{feff}`");
    assert_error("func @\"unterminated", 1, 6, "unterminated quoted name, expected a closing `\"`");
}

#[test]
fn error_display_shows_position_source_line_and_caret() {
    let e = parse_err(&program("  %0:f64[4] = frobnicate %x\n"));
    assert_eq!(
        e.to_string(),
        "2:15: unknown op `frobnicate`, expected an op name such as `add`, `exp`, `reduce_sum`, `matmul` or `const`\n\
         \x20 %0:f64[4] = frobnicate %x\n\
         \x20             ^^^^^^^^^^"
    );
    assert_eq!(e.found, "frobnicate");
}

// ---------------------------------------------------------------- properties

fn all_ops_config() -> GenConfig {
    GenConfig { max_steps: 16, ..GenConfig::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x7e55e7a), ..ProptestConfig::default() })]

    #[test]
    fn print_parse_round_trip(g in arb_graph(all_ops_config())) {
        let text = print(&g);
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &g, "{}", text);
        prop_assert_eq!(print(&back), text);
        prop_assert!(verify(&back).is_ok());
    }

    #[test]
    fn round_trip_of_smooth_scalar_graphs(g in arb_graph(GenConfig::smooth())) {
        prop_assert_eq!(g.outputs().len(), 1);
        prop_assert!(g.ty(g.outputs()[0]).shape.is_scalar());
        let back = parse(&print(&g)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, g);
    }
}

/// Fragments of the text form, valid and not, for token soups.
const FRAGMENTS: &[&str] = &[
    "func",
    "@f",
    "@",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "%x",
    "%0",
    "%1",
    "%",
    ":",
    ",",
    "=",
    "->",
    "-",
    "f64",
    "i64",
    "bool",
    "f64[]",
    "f64[3]",
    "i64[2,2]",
    "return",
    "const",
    "exp",
    "add",
    "matmul",
    "gather",
    "slice",
    "reduce_sum",
    "[axes=[0]]",
    "[axis=0]",
    "[ranges=[::-1]]",
    "[ranges=[0:9:1]]",
    "[shape=[3,4]]",
    "-0.5:f64",
    "3:i64",
    "true:bool",
    "nan",
    "inf",
    "1e400",
    "1.5.2",
    "99999999999999999999",
    "\n",
    "//",
    "\"",
    "%\"a",
    "[[1.0, 2.0]]",
    "[",
    "]]",
    "\u{0}",
    "é",
    "🦀",
    "\t",
    "where",
    "cast[to=i64]",
    "scatter_add[axis=0, size=3]",
    "triangular_solve[lower=true]",
    "f64[1099511627776,1099511627776]",
    "reshape[shape=[1099511627776,1099511627776]]",
    "slice[ranges=[9223372036854775807::9223372036854775807]]",
    "slice[ranges=[:-9223372036854775808:-9223372036854775808]]",
];

fn valid_program() -> impl Strategy<Value = String> {
    arb_graph(GenConfig::default()).prop_map(|g| print(&g))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0xf022), ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_random_strings(s in "\\PC{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&s);
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parse_never_panics_on_token_soup(tokens in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60)) {
        let _ = parse(&tokens.join(" "));
        let _ = parse(&format!("func @f(%x: f64[3]) -> f64[3] {{ {} return %x }}", tokens.join(" ")));
    }

    #[test]
    fn parse_never_panics_on_damaged_programs(src in valid_program(), cut in any::<prop::sample::Index>(), c in any::<char>(), at in any::<prop::sample::Index>()) {
        let chars: Vec<char> = src.chars().collect();
        let cut = cut.index(chars.len() + 1);
        let truncated: String = chars[..cut].iter().collect();
        if let Ok(g) = parse(&truncated) {
            prop_assert!(verify(&g).is_ok());
        }
        let mut mutated = chars.clone();
        if !mutated.is_empty() {
            let i = at.index(mutated.len());
            mutated[i] = c;
        }
        let mutated: String = mutated.into_iter().collect();
        if let Ok(g) = parse(&mutated) {
            prop_assert!(verify(&g).is_ok());
        }
    }
}

#[test]
fn parse_rejects_extreme_sizes_without_panicking() {
    for body in [
        "  %0:f64[4] = slice[ranges=[9223372036854775807::9223372036854775807]] %x\n",
        "  %0:f64[4] = slice[ranges=[::-9223372036854775808]] %x\n",
        "  %0:f64[4] = slice[ranges=[1099511627776::1099511627776]] %x\n",
        "  %0:f64[4] = reshape[shape=[1099511627776,1099511627776,1099511627776]] %x\n",
        "  %0:f64[4] = scatter_add[axis=1099511627776, size=1099511627776] %x, %i\n",
        "  %0:f64[4] = expand_dims[axis=18446744073709551615] %x\n",
        "  %0:f64[4] = broadcast_to[shape=[1099511627776,1099511627776,1099511627776]] %x\n",
    ] {
        assert!(parse(&program(body)).is_err(), "{body}");
    }
    // Deep nesting is bounded by the declared rank, never by the input.
    let deep = format!("func @f() -> f64[1] {{\n  %0:f64[1] = const {}\n  return %0\n}}\n", "[".repeat(100_000));
    assert!(parse(&deep).is_err());
    let rank = format!("func @f(%x: f64[{}]) -> f64[] {{\n  return %x\n}}\n", vec!["1"; 40].join(","));
    assert_eq!(parse_err(&rank).message, "rank 40 is too large, at most 32 axes");
}

// ---------------------------------------------------------------- examples/

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn example(name: &str) -> Graph {
    let path = examples_dir().join(name);
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&src).unwrap_or_else(|e| panic!("{}:{e}", path.display()))
}

#[test]
fn every_example_file_parses_verifies_and_round_trips() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ir") {
            let g = example(path.file_name().unwrap().to_str().unwrap());
            verify(&g).unwrap();
            assert_round_trip(&g);
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for name in ["normal.ir", "logistic_regression.ir", "hierarchical.ir"] {
        assert!(seen.iter().any(|s| s == name), "{name} missing from examples/");
    }
}

fn f64_array(dims: &[usize], data: Vec<f64>) -> Value {
    Value::F64(ArrayD::from_shape_vec(dims.to_vec(), data).unwrap())
}

fn eval_scalar(g: &Graph, inputs: &HashMap<String, Value>) -> f64 {
    let out = eval(g, inputs).unwrap();
    out[0].to_scalar_f64().unwrap()
}

fn normal_logpdf(x: f64, mu: f64, sigma: f64) -> f64 {
    -0.5 * ((x - mu) / sigma).powi(2) - sigma.ln() - 0.5 * ln_2pi()
}

#[test]
fn normal_example_matches_the_density_at_its_inputs_file() {
    let g = example("normal.ir");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(examples_dir().join("normal.inputs.json")).unwrap()).unwrap();
    let mu = json["mu"].as_f64().unwrap();
    let sigma = json["sigma"].as_f64().unwrap();
    let x: Vec<f64> = json["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(x.len(), 20);
    let inputs = HashMap::from([
        ("mu".to_string(), Value::scalar(mu)),
        ("sigma".to_string(), Value::scalar(sigma)),
        ("x".to_string(), f64_array(&[20], x.clone())),
    ]);
    let expected: f64 = x.iter().map(|&xi| normal_logpdf(xi, mu, sigma)).sum();
    // scipy.stats.norm(1.5, 2.0).logpdf(x).sum() for the file's x.
    assert!((expected - -41.380345525292356).abs() < 1e-12);
    let got = eval_scalar(&g, &inputs);
    assert!((got - expected).abs() < 1e-12 * expected.abs(), "{got} vs {expected}");
}

#[test]
fn logistic_regression_example_matches_a_direct_computation() {
    let g = example("logistic_regression.ir");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let beta: Vec<f64> = (0..5).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x: Vec<f64> = (0..250).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<f64> = (0..50).map(|_| f64::from(u8::from(rng.random_bool(0.5)))).collect();
    let mut expected = 0.0;
    for i in 0..50 {
        let eta: f64 = (0..5).map(|j| x[i * 5 + j] * beta[j]).sum();
        let p = 1.0 / (1.0 + (-eta).exp());
        expected += if y[i] == 1.0 { p.ln() } else { (1.0 - p).ln() };
    }
    expected += beta.iter().map(|&b| normal_logpdf(b, 0.0, 1.0)).sum::<f64>();
    let inputs = HashMap::from([
        ("beta".to_string(), f64_array(&[5], beta)),
        ("X".to_string(), f64_array(&[50, 5], x)),
        ("y".to_string(), f64_array(&[50], y)),
    ]);
    let got = eval_scalar(&g, &inputs);
    assert!((got - expected).abs() < 1e-10 * expected.abs(), "{got} vs {expected}");
}

#[test]
fn hierarchical_example_matches_a_direct_computation() {
    let g = example("hierarchical.ir");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mu_a = 0.3;
    let (log_sigma_a, log_sigma_y, b) = (-0.4, 0.2, 0.7);
    let a_raw: Vec<f64> = (0..8).map(|_| rng.random_range(-2.0..2.0)).collect();
    let county: Vec<i64> = (0..40).map(|_| rng.random_range(0..8)).collect();
    let x: Vec<f64> = (0..40).map(|_| rng.random_range(0.0..1.0)).collect();
    let y: Vec<f64> = (0..40).map(|_| rng.random_range(-1.0..2.0)).collect();
    let (sigma_a, sigma_y) = (f64::exp(log_sigma_a), f64::exp(log_sigma_y));
    let half_normal = |s: f64| 2f64.ln() + normal_logpdf(s, 0.0, 1.0);
    let a: Vec<f64> = a_raw.iter().map(|r| mu_a + sigma_a * r).collect();
    let mut expected: f64 = (0..40).map(|i| normal_logpdf(y[i], a[county[i] as usize] + b * x[i], sigma_y)).sum();
    expected += normal_logpdf(mu_a, 0.0, 1.0) + normal_logpdf(b, 0.0, 1.0);
    expected += a_raw.iter().map(|&r| normal_logpdf(r, 0.0, 1.0)).sum::<f64>();
    expected += half_normal(sigma_a) + half_normal(sigma_y) + log_sigma_a + log_sigma_y;
    let inputs = HashMap::from([
        ("mu_a".to_string(), Value::scalar(mu_a)),
        ("log_sigma_a".to_string(), Value::scalar(log_sigma_a)),
        ("a_raw".to_string(), f64_array(&[8], a_raw)),
        ("b".to_string(), Value::scalar(b)),
        ("log_sigma_y".to_string(), Value::scalar(log_sigma_y)),
        ("county".to_string(), Value::I64(ArrayD::from_shape_vec(vec![40], county).unwrap())),
        ("x".to_string(), f64_array(&[40], x)),
        ("y".to_string(), f64_array(&[40], y)),
    ]);
    let got = eval_scalar(&g, &inputs);
    assert!((got - expected).abs() < 1e-10 * expected.abs(), "{got} vs {expected}");
}

// ---------------------------------------------------------------- the generator itself

fn sample(config: &GenConfig, seeds: std::ops::Range<u64>) -> Vec<Graph> {
    seeds.map(|s| tessera_graph::arbitrary::sample_graph(config.clone(), s).unwrap()).collect()
}

/// The text names of every op of the IR (other than `input` and `const`).
fn every_op_name() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = tessera_graph::UnaryOp::ALL.iter().map(|u| u.name()).collect();
    names.extend(tessera_graph::BinaryOp::ALL.iter().map(|b| b.name()));
    names.extend(tessera_graph::ReduceOp::ALL.iter().map(|r| r.name()));
    names.extend([
        "where",
        "cast",
        "cumsum",
        "reshape",
        "transpose",
        "expand_dims",
        "squeeze",
        "broadcast_to",
        "concatenate",
        "stack",
        "slice",
        "gather",
        "scatter_add",
        "matmul",
        "outer",
        "cholesky",
        "triangular_solve",
        "logdet_chol",
        "diag",
        "diag_matrix",
    ]);
    names
}

#[test]
fn generator_covers_the_whole_op_set() {
    let graphs = sample(&GenConfig::default(), 0..300);
    let mut seen = std::collections::HashSet::new();
    let (mut negative_step, mut keepdims, mut upper_solve) = (false, false, false);
    let mut matmul_forms = std::collections::HashSet::new();
    for g in &graphs {
        verify(g).unwrap();
        for id in g.live_nodes() {
            let node = g.node(id);
            seen.insert(node.op.name());
            match &node.op {
                Op::Slice { ranges } => negative_step |= ranges.iter().any(|r| r.step < 0),
                Op::Reduce { keepdims: true, .. } => keepdims = true,
                Op::TriangularSolve { lower: false } => upper_solve = true,
                Op::Matmul => {
                    let ranks: Vec<usize> = node.operands.iter().map(|&o| g.ty(o).shape.rank()).collect();
                    matmul_forms.insert(ranks);
                }
                _ => {}
            }
        }
    }
    let missing: Vec<&str> = every_op_name().into_iter().filter(|n| !seen.contains(n)).collect();
    assert!(missing.is_empty(), "ops never generated: {missing:?}");
    assert!(negative_step && keepdims && upper_solve);
    assert_eq!(matmul_forms.len(), 4, "vec·vec, mat·vec, vec·mat, mat·mat: {matmul_forms:?}");
}

#[test]
fn smooth_configuration_avoids_non_smooth_ops_and_evaluates_finitely() {
    use proptest::strategy::ValueTree;
    let non_smooth = [
        "abs",
        "sign",
        "floor",
        "ceil",
        "maximum",
        "minimum",
        "reduce_max",
        "reduce_min",
        "where",
        "cast",
        "lt",
        "le",
        "gt",
        "ge",
        "eq",
        "ne",
        "and",
        "or",
        "not",
        "isfinite",
    ];
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for g in sample(&GenConfig::smooth(), 0..200) {
        for id in g.live_nodes() {
            assert!(!non_smooth.contains(&g.node(id).op.name()), "{}", print(&g));
        }
        assert_eq!(g.outputs().len(), 1);
        let inputs = tessera_graph::arbitrary::arb_inputs(&g).new_tree(&mut runner).unwrap().current();
        let out = eval(&g, &inputs).unwrap();
        let x = out[0].to_scalar_f64().unwrap();
        assert!(x.is_finite(), "{x} from\n{}", print(&g));
    }
}

#[test]
fn generated_graphs_evaluate_without_errors() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for g in sample(&GenConfig::default(), 0..200) {
        let inputs = tessera_graph::arbitrary::arb_inputs(&g).new_tree(&mut runner).unwrap().current();
        for (name, v) in &inputs {
            let id = g.input_by_name(name).unwrap();
            assert_eq!(&v.ty(), g.ty(id));
            assert!(v.to_f64_vec().iter().all(|x| (-3.0..=3.0).contains(x)));
        }
        let out = eval(&g, &inputs).unwrap_or_else(|e| panic!("{e}\n{}", print(&g)));
        assert_eq!(out.len(), g.outputs().len());
    }
}

#[test]
fn restricted_families_are_respected() {
    let config = GenConfig {
        families: tessera_graph::arbitrary::OpFamilies {
            unary: true,
            binary: false,
            select: false,
            cast: false,
            reduce: true,
            cumsum: false,
            shape: false,
            join: false,
            slice: false,
            gather: false,
            linalg: false,
            factor: false,
            constants: false,
        },
        domain: tessera_graph::arbitrary::DomainPolicy::Excluded,
        ..GenConfig::default()
    };
    let allowed = [
        "neg",
        "exp",
        "expm1",
        "square",
        "sin",
        "cos",
        "tanh",
        "sigmoid",
        "softplus",
        "log_sigmoid",
        "erf",
        "erfc",
        "abs",
        "sign",
        "floor",
        "ceil",
    ];
    for g in sample(&config, 0..100) {
        for id in g.live_nodes() {
            let name = g.node(id).op.name();
            assert!(
                name == "input" || name.starts_with("reduce_") || allowed.contains(&name),
                "{name} in\n{}",
                print(&g)
            );
        }
    }
}
