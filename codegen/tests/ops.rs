//! Every op of the IR, over shapes with broadcasting and extent-1 axes: the JIT (under every
//! option set) gives the interpreter's results.

mod common;

use std::collections::HashMap;

use common::{check, check_inputs, random_inputs};
use ndarray::ArrayD;
use tessera_codegen::kernel::{Kernel, Output, Step};
use tessera_graph::{BinaryOp, DType, DTypeRule, GraphBuilder, ReduceOp, UnaryOp, Value};

/// Awkward f64 values for elementwise ops: zeros, infinities, NaN, subnormals, large values.
fn special_f64() -> Vec<f64> {
    vec![
        0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1e-310, -1e-310, 1e-20, 30.0, -30.0, 40.0, -40.0, 700.0, -700.0,
        800.0, -800.0, 1e300, -1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.999, 1.001, 3.0, -3.0, 0.1, 7.5,
    ]
}

/// The kernels the planner makes of the graph `src`, in order.
fn planned_kernels(src: &str) -> Vec<Kernel> {
    let graph = tessera_graph::parse(src).unwrap();
    let program = tessera_codegen::plan::plan(&graph, &Default::default()).unwrap();
    program
        .steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Kernel(k) => Some(k),
            Step::Call(_) => None,
        })
        .collect()
}

fn f64_value(dims: &[usize], data: Vec<f64>) -> Value {
    Value::F64(ArrayD::from_shape_vec(dims.to_vec(), data).unwrap())
}

#[test]
fn every_unary_op_on_special_values() {
    let xs = special_f64();
    let n = xs.len();
    for &op in UnaryOp::ALL {
        let dtypes: &[DType] = match op.dtype_rule() {
            DTypeRule::Numeric => &[DType::F64, DType::I64],
            DTypeRule::Logical => &[DType::Bool],
            _ => &[DType::F64],
        };
        for &dtype in dtypes {
            let b = GraphBuilder::new("u");
            let x = b.input("x", dtype, &[n]);
            let y = x.unary(op);
            let g = b.finish(&[&y]).unwrap();
            let value = match dtype {
                DType::F64 => f64_value(&[n], xs.clone()),
                DType::I64 => Value::I64(ArrayD::from_shape_vec(vec![n], (0..n as i64).map(|i| i * 7 - 50).collect()).unwrap()),
                DType::Bool => Value::Bool(ArrayD::from_shape_vec(vec![n], (0..n).map(|i| i % 3 == 0).collect()).unwrap()),
            };
            let inputs = HashMap::from([("x".to_string(), value)]);
            check_inputs(&g, &inputs, 1e-12);
        }
    }
}

#[test]
fn every_binary_op_with_broadcasting() {
    let shapes: &[(&[usize], &[usize])] = &[(&[3, 1], &[1, 5]), (&[5], &[3, 5]), (&[], &[7]), (&[2, 1, 3], &[4, 1]), (&[6], &[6])];
    for &op in BinaryOp::ALL {
        let dtypes: &[DType] = match op.dtype_rule() {
            DTypeRule::Numeric => &[DType::F64, DType::I64],
            DTypeRule::Compare { allows_bool: true } => &[DType::F64, DType::I64, DType::Bool],
            DTypeRule::Compare { allows_bool: false } => &[DType::F64, DType::I64],
            DTypeRule::Logical => &[DType::Bool],
            _ => &[DType::F64],
        };
        for &dtype in dtypes {
            for (k, &(sa, sb)) in shapes.iter().enumerate() {
                let b = GraphBuilder::new("bin");
                let x = b.input("x", dtype, sa);
                let y = b.input("y", dtype, sb);
                let z = x.binary(op, &y);
                let g = b.finish(&[&z]).unwrap();
                check_inputs(&g, &random_inputs(&g, 11 + k as u64), 1e-12);
            }
        }
    }
}

#[test]
fn binary_ops_on_special_values() {
    let xs = special_f64();
    let n = xs.len();
    let ys: Vec<f64> = xs.iter().rev().copied().collect();
    for &op in BinaryOp::ALL.iter().filter(|op| op.dtype_rule() != DTypeRule::Logical) {
        let b = GraphBuilder::new("bin");
        let x = b.input("x", DType::F64, &[n]);
        let y = b.input("y", DType::F64, &[n]);
        let g = b.finish(&[&x.binary(op, &y)]).unwrap();
        let inputs = HashMap::from([("x".to_string(), f64_value(&[n], xs.clone())), ("y".to_string(), f64_value(&[n], ys.clone()))]);
        check_inputs(&g, &inputs, 1e-12);
    }
}

#[test]
fn fused_elementwise_chain_with_broadcasting() {
    check(
        "func @f(%a: f64[4,6], %b: f64[6], %c: f64[4,1], %pos: f64[]) -> f64[4,6] {
  %0:f64[4,6] = mul %a, %b
  %1:f64[4,6] = add %0, %c
  %2:f64[4,6] = exp %1
  %3:f64[4,6] = log1p %2
  %4:f64[4,6] = softplus %1
  %5:f64[4,6] = sub %3, %4
  %6:f64[4,6] = div %5, %pos
  %7:f64[4,6] = sigmoid %6
  %8:f64[4,6] = log_sigmoid %0
  %9:f64[4,6] = add %7, %8
  %10:f64[] = log %pos
  %11:f64[4,6] = mul %9, %10
  return %11
}",
    );
}

#[test]
fn where_and_comparisons_broadcast() {
    check(
        "func @f(%c: bool[3,1], %a: f64[5], %b: f64[], %x: f64[3,5]) -> (f64[3,5], i64[3,5], bool[3,5]) {
  %0:f64[3,5] = where %c, %a, %b
  %1:bool[3,5] = gt %x, %a
  %2:f64[3,5] = where %1, %x, %0
  %3:i64[3,5] = cast[to=i64] %2
  %4:bool[3,5] = not %1
  %5:bool[3,5] = and %4, %c
  %6:i64[3,5] = where %5, %3, 7:i64
  return %2, %6, %5
}",
    );
}

#[test]
fn casts_between_every_dtype() {
    for from in [DType::F64, DType::I64, DType::Bool] {
        for to in [DType::F64, DType::I64, DType::Bool] {
            let b = GraphBuilder::new("cast");
            let x = b.input("x", from, &[special_f64().len()]);
            let g = b.finish(&[&x.cast(to)]).unwrap();
            let mut inputs = random_inputs(&g, 3);
            if from == DType::F64 {
                inputs.insert("x".into(), f64_value(&[special_f64().len()], special_f64()));
            }
            check_inputs(&g, &inputs, 0.0);
        }
    }
}

#[test]
fn reductions_over_every_axis_set() {
    let dims = [3usize, 1, 5, 2];
    let axis_sets: Vec<Vec<usize>> = (0u32..16).map(|m| (0..4).filter(|a| m & (1 << a) != 0).collect()).collect();
    for &kind in ReduceOp::ALL {
        let dtypes: &[DType] = if kind.needs_float() { &[DType::F64] } else { &[DType::F64, DType::I64] };
        for &dtype in dtypes {
            for axes in &axis_sets {
                for keepdims in [false, true] {
                    let b = GraphBuilder::new("r");
                    let x = b.input("x", dtype, &dims);
                    let g = b.finish(&[&x.reduce(kind, axes, keepdims)]).unwrap();
                    check_inputs(&g, &random_inputs(&g, 5), 1e-12);
                }
            }
        }
    }
}

#[test]
fn reductions_propagate_nan_and_handle_infinities() {
    let xs = special_f64();
    let n = xs.len();
    for &kind in ReduceOp::ALL {
        let b = GraphBuilder::new("r");
        let x = b.input("x", DType::F64, &[3, n]);
        let g = b.finish(&[&x.reduce(kind, &[1], false), &x.reduce(kind, &[0], true)]).unwrap();
        let mut data = xs.clone();
        data.extend((0..n).map(|i| i as f64 - 4.0));
        data.extend((0..n).map(|_| f64::NEG_INFINITY));
        let inputs = HashMap::from([("x".to_string(), f64_value(&[3, n], data))]);
        check_inputs(&g, &inputs, 1e-12);
    }
}

#[test]
fn reductions_of_empty_axes() {
    for &kind in &[ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Mean, ReduceOp::LogSumExp] {
        let b = GraphBuilder::new("r");
        let x = b.input("x", DType::F64, &[0, 3]);
        let g = b.finish(&[&x.reduce(kind, &[0], false), &x.reduce(kind, &[1], false)]).unwrap();
        check_inputs(&g, &random_inputs(&g, 1), 0.0);
    }
}

#[test]
fn fused_reduction_of_an_elementwise_chain() {
    check(
        "func @f(%x: f64[50], %y: f64[50], %m: f64[4,50]) -> (f64[], f64[4], f64[50]) {
  %0:f64[50] = mul %y, %x
  %1:f64[50] = softplus %x
  %2:f64[50] = sub %0, %1
  %3:f64[] = reduce_sum[axes=[0]] %2
  %4:f64[4,50] = mul %m, %x
  %5:f64[4] = reduce_max[axes=[1]] %4
  %6:f64[4,50] = exp %m
  %7:f64[50] = reduce_mean[axes=[0]] %6
  return %3, %5, %7
}",
    );
}

#[test]
fn cumsum_both_directions_every_axis() {
    for dtype in [DType::F64, DType::I64] {
        for axis in 0..3 {
            for reverse in [false, true] {
                let b = GraphBuilder::new("c");
                let x = b.input("x", dtype, &[3, 4, 5]);
                let y = x.apply(tessera_graph::Op::Cumsum { axis, reverse }, &[]);
                let z = y.transpose(&[2, 0, 1]);
                let g = b.finish(&[&y, &z]).unwrap();
                check_inputs(&g, &random_inputs(&g, 2), 1e-12);
            }
        }
    }
    check(
        "func @f(%x: f64[6,1]) -> (f64[6,1], f64[6,1]) {
  %0:f64[6,1] = cumsum[axis=1] %x
  %1:f64[6,1] = exp %x
  %2:f64[6,1] = cumsum[axis=0, reverse=true] %1
  return %0, %2
}",
    );
}

#[test]
fn views_reshape_transpose_expand_squeeze_broadcast() {
    check(
        "func @f(%x: f64[2,3,4], %v: f64[3]) -> (f64[4,3,2], f64[6,4], f64[24], f64[2,1,3,4], f64[3,4], f64[5,3], f64[4,6]) {
  %0:f64[4,3,2] = transpose[perm=[2, 1, 0]] %x
  %1:f64[6,4] = reshape[shape=[6,4]] %x
  %2:f64[24] = reshape[shape=[24]] %0
  %3:f64[2,1,3,4] = expand_dims[axis=1] %x
  %4:f64[1,3,4] = slice[ranges=[1:2:1, 0:3:1, 0:4:1]] %x
  %5:f64[3,4] = squeeze[axes=[0]] %4
  %6:f64[5,3] = broadcast_to[shape=[5,3]] %v
  %7:f64[4,6] = transpose[perm=[1, 0]] %1
  return %0, %1, %2, %3, %5, %6, %7
}",
    );
}

#[test]
fn views_feed_computations() {
    check(
        "func @f(%x: f64[2,3,4], %m: f64[4,4]) -> (f64[4,3,2], f64[3,8], f64[4]) {
  %0:f64[4,3,2] = transpose[perm=[2, 1, 0]] %x
  %1:f64[4,3,2] = exp %0
  %2:f64[3,2,4] = transpose[perm=[1, 0, 2]] %x
  %3:f64[3,8] = reshape[shape=[3,8]] %2
  %4:f64[3,8] = mul %3, 2.0:f64
  %5:f64[4] = diag %m
  %6:f64[4,1] = expand_dims[axis=1] %5
  %7:f64[4,4] = add %m, %6
  %8:f64[4] = reduce_sum[axes=[1]] %7
  return %1, %4, %8
}",
    );
}

#[test]
fn slices_with_negative_steps() {
    check(
        "func @f(%x: f64[7,5], %v: i64[9]) -> (f64[4,5], f64[7,2], f64[2,3], i64[4], f64[4]) {
  %0:f64[4,5] = slice[ranges=[6::-2, 0:5:1]] %x
  %1:f64[7,2] = slice[ranges=[0:7:1, 4:0:-3]] %x
  %2:f64[2,3] = slice[ranges=[1:5:2, 4::-2]] %x
  %3:i64[4] = slice[ranges=[8:0:-2]] %v
  %4:f64[2,3] = exp %2
  %5:f64[6] = reshape[shape=[6]] %4
  %6:f64[4] = slice[ranges=[5:1:-1]] %5
  return %0, %1, %2, %3, %6
}",
    );
}

#[test]
fn concatenate_and_stack() {
    check(
        "func @f(%a: f64[2,3], %b: f64[2,1], %c: f64[3,2], %i: i64[2], %j: i64[2], %d: f64[1,2]) -> (f64[2,7], f64[7,2], f64[2,2,3], i64[2,2], f64[3,2,2]) {
  %0:f64[2,3] = transpose[perm=[1, 0]] %c
  %1:f64[2,7] = concatenate[axis=1] %a, %b, %0
  %2:f64[3,2] = transpose[perm=[1, 0]] %a
  %3:f64[7,2] = concatenate[axis=0] %2, %c, %d
  %4:f64[2,2,3] = stack[axis=1] %a, %0
  %5:i64[2,2] = stack[axis=0] %i, %j
  %6:f64[3,2,2] = stack[axis=2] %2, %c
  return %1, %3, %4, %5, %6
}",
    );
}

#[test]
fn gather_every_axis_and_dtype() {
    check(
        "func @f(%a: f64[4,3], %idx4: i64[5], %idx3: i64[2,2], %b: bool[4], %k: i64[4]) -> (f64[5,3], f64[4,2,2], bool[5], i64[2,2], f64[5,3]) {
  %0:f64[5,3] = gather[axis=0] %a, %idx4
  %1:f64[4,2,2] = gather[axis=1] %a, %idx3
  %2:bool[5] = gather[axis=0] %b, %idx4
  %3:i64[2,2] = gather[axis=0] %k, %idx3
  %4:f64[5,3] = exp %0
  %5:f64[4,3] = mul %a, 2.0:f64
  %6:f64[5,3] = gather[axis=0] %5, %idx4
  %7:f64[5,3] = add %4, %6
  return %0, %1, %2, %3, %7
}",
    );
    check(
        "func @f(%a: f64[4], %x: f64[6]) -> f64[] {
  %0:i64[6] = const [3, 0, 0, 2, 1, 3]
  %1:f64[6] = gather[axis=0] %a, %0
  %2:f64[6] = mul %1, %x
  %3:f64[] = reduce_sum[axes=[0]] %2
  return %3
}",
    );
}

#[test]
fn scatter_add_accumulates_repeats() {
    check(
        "func @f(%u: f64[5,3], %idx4: i64[5], %w: f64[4,2,2], %idx3: i64[2,2], %k: i64[5]) -> (f64[4,3], f64[4,3], i64[4]) {
  %0:f64[4,3] = scatter_add[axis=0, size=4] %u, %idx4
  %1:f64[4,3] = scatter_add[axis=1, size=3] %w, %idx3
  %2:i64[4] = scatter_add[axis=0, size=4] %k, %idx4
  return %0, %1, %2
}",
    );
    check(
        "func @f(%u: f64[6]) -> f64[3] {
  %0:i64[6] = const [2, 0, 0, 2, 1, 2]
  %1:f64[6] = exp %u
  %2:f64[3] = scatter_add[axis=0, size=3] %1, %0
  return %2
}",
    );
}

#[test]
fn scatter_add_along_runs_of_constant_indices_spreads_its_updates() {
    // Rows sorted by group: 37 updates in runs into 5 (and 2) groups, alone, sharing a loop
    // with reductions, and with too few updates to be worth spreading.
    let runs = |n: usize, k: usize| (0..n).map(|i| (i * k / n).to_string()).collect::<Vec<_>>().join(", ");
    let src = format!(
        "func @f(%u: f64[37], %v: f64[9]) -> (f64[5], f64[], f64[2], f64[5]) {{
  %0:i64[37] = const [{}]
  %1:f64[37] = exp %u
  %2:f64[5] = scatter_add[axis=0, size=5] %1, %0
  %3:f64[] = reduce_sum[axes=[0]] %1
  %4:i64[37] = const [{}]
  %5:f64[2] = scatter_add[axis=0, size=2] %u, %4
  %6:i64[9] = const [{}]
  %7:f64[5] = scatter_add[axis=0, size=5] %v, %6
  return %2, %3, %5, %7
}}",
        runs(37, 5),
        runs(37, 2),
        runs(9, 5)
    );
    check(&src);
    let spread: Vec<usize> = planned_kernels(&src)
        .iter()
        .flat_map(|k| {
            k.outs.iter().filter_map(|o| match &o.out {
                Output::Scatter(ix) => Some(ix.spread.len()),
                Output::Direct(_) => None,
            })
        })
        .collect();
    assert_eq!(spread, [3, 3, 0], "extra buffers per scatter (37 into 5 and into 2: four in all; 9 into 5: none)");
}

#[test]
fn matmul_every_form_and_outer() {
    check(
        "func @f(%a: f64[3,4], %b: f64[4,5], %v: f64[4], %w: f64[3], %c: f64[5,4]) -> (f64[3,5], f64[3], f64[5], f64[], f64[3,4], f64[3,5], f64[4,4]) {
  %0:f64[3,5] = matmul %a, %b
  %1:f64[3] = matmul %a, %v
  %2:f64[5] = matmul %v, %b
  %3:f64[] = matmul %v, %v
  %4:f64[3,4] = outer %w, %v
  %5:f64[4,5] = transpose[perm=[1, 0]] %c
  %6:f64[3,5] = matmul %a, %5
  %7:f64[4,3] = transpose[perm=[1, 0]] %a
  %8:f64[4,4] = matmul %7, %a
  return %0, %1, %2, %3, %4, %6, %8
}",
    );
    check(
        "func @f(%a: i64[3,4], %b: i64[4,2], %v: i64[4]) -> (i64[3,2], i64[3], i64[], i64[2]) {
  %0:i64[3,2] = matmul %a, %b
  %1:i64[3] = matmul %a, %v
  %2:i64[] = matmul %v, %v
  %3:i64[2] = matmul %v, %b
  return %0, %1, %2, %3
}",
    );
}

#[test]
fn large_matrix_vector_products() {
    check(
        "func @f(%x: f64[300,25], %beta: f64[25], %r: f64[300]) -> (f64[300], f64[25], f64[25,25]) {
  %0:f64[300] = matmul %x, %beta
  %1:f64[25] = matmul %r, %x
  %2:f64[25,300] = transpose[perm=[1, 0]] %x
  %3:f64[25,25] = matmul %2, %x
  return %0, %1, %3
}",
    );
}

#[test]
fn cholesky_solve_logdet_diag() {
    check(
        "func @f(%x: f64[4,4], %b: f64[4], %bm: f64[4,3]) -> (f64[4,4], f64[4], f64[4,3], f64[], f64[4], f64[4,4], f64[4]) {
  %0:f64[4,4] = transpose[perm=[1, 0]] %x
  %1:f64[4,4] = matmul %x, %0
  %2:f64[4] = const [1.0, 2.0, 3.0, 4.0]
  %3:f64[4,4] = diag_matrix %2
  %4:f64[4,4] = add %1, %3
  %5:f64[4,4] = cholesky %4
  %6:f64[4] = triangular_solve[lower=true] %5, %b
  %7:f64[4,4] = transpose[perm=[1, 0]] %5
  %8:f64[4,3] = triangular_solve[lower=false] %7, %bm
  %9:f64[] = logdet_chol %5
  %10:f64[4] = diag %5
  %11:f64[4,4] = cholesky %x
  %12:f64[4] = triangular_solve[lower=false] %x, %b
  return %5, %6, %8, %9, %10, %11, %12
}",
    );
}

#[test]
fn cholesky_of_a_non_positive_definite_matrix_is_nan() {
    let g = tessera_graph::parse(
        "func @f(%x: f64[2,2]) -> f64[2,2] {
  %0:f64[2,2] = cholesky %x
  return %0
}",
    )
    .unwrap();
    let inputs = HashMap::from([("x".to_string(), f64_value(&[2, 2], vec![1.0, 2.0, 2.0, 1.0]))]);
    check_inputs(&g, &inputs, 0.0);
    let got = tessera_codegen::compile(&g).unwrap().call_named(&inputs).unwrap();
    assert!(got[0].to_f64_vec().iter().all(|v| v.is_nan()));
}

#[test]
fn diag_matrix_of_every_dtype() {
    check(
        "func @f(%v: f64[3], %k: i64[3], %b: bool[3]) -> (f64[3,3], i64[3,3], bool[3,3]) {
  %0:f64[3,3] = diag_matrix %v
  %1:i64[3,3] = diag_matrix %k
  %2:bool[3,3] = diag_matrix %b
  return %0, %1, %2
}",
    );
}

#[test]
fn outputs_that_are_inputs_constants_or_repeated() {
    check(
        "func @f(%x: f64[3], %k: i64[2]) -> (f64[3], f64[3], i64[2], f64[2], f64[3], f64[3]) {
  %0:f64[3] = exp %x
  %1:f64[2] = const [1.5, -2.0]
  return %x, %0, %k, %1, %0, %0
}",
    );
}

#[test]
fn scalar_and_size_one_shapes() {
    check(
        "func @f(%a: f64[], %b: f64[1], %c: f64[1,1,1], %d: f64[1,3]) -> (f64[], f64[1,1,1], f64[1,3], f64[1]) {
  %0:f64[] = exp %a
  %1:f64[1,1,1] = mul %c, %b
  %2:f64[1,3] = add %d, %a
  %3:f64[1] = reduce_sum[axes=[1, 2]] %1
  %4:f64[1,3] = cumsum[axis=1] %2
  return %0, %1, %4, %3
}",
    );
}

#[test]
fn fused_nodes_map_and_reduce() {
    check(
        "func @f(%x: f64[6], %mu: f64[], %sigma: f64[]) -> f64[] {
  %0:f64[] = fused[axes=[0], reduce=sum] %x, %mu, %sigma { let t0 = sub($0, $1); add(square(div(t0, $2)), mul(t0, -0.5:f64)) }
  return %0
}",
    );
    check(
        "func @f(%a: f64[3,1], %b: f64[5], %c: bool[3,5], %k: i64[3,5]) -> (f64[3,5], f64[5], f64[3,1], i64[3,5]) {
  %0:f64[3,5] = fused %a, %b, %c { where($2, exp(add($0, $1)), softplus($1)) }
  %1:f64[5] = fused[axes=[0], reduce=logsumexp] %a, %b { mul($0, $1) }
  %2:f64[3,1] = fused[axes=[1], keepdims=true, reduce=max] %a, %b { sub($0, $1) }
  %3:f64[3,5] = exp %0
  %4:i64[3,5] = fused %k, %3 { add($0, cast[to=i64](mul($1, 3.0:f64))) }
  return %3, %1, %2, %4
}",
    );
}

#[test]
fn gathers_and_scatters_through_constant_progressions() {
    check(
        "func @f(%a: f64[5,3], %u: f64[3,2], %w: f64[2,2,3], %v: f64[3,4]) -> (f64[3,3], f64[5,3], f64[2,2,3], f64[1,3], f64[5,3], f64[4,2], f64[5,3], f64[3,4]) {
  %0:i64[3] = const [1, 2, 3]
  %1:f64[3,3] = gather[axis=0] %a, %0
  %2:i64[3] = const [4, 2, 0]
  %3:f64[3,3] = gather[axis=0] %a, %2
  %4:f64[3,3] = exp %3
  %5:f64[5,3] = scatter_add[axis=0, size=5] %4, %2
  %6:i64[2,2] = const [[0, 1], [2, 3]]
  %7:f64[2,2,3] = gather[axis=0] %a, %6
  %8:i64[1] = const [2]
  %9:f64[1,3] = gather[axis=0] %a, %8
  %10:f64[5,3] = scatter_add[axis=0, size=5] %w, %6
  %11:i64[2] = const [1, 1]
  %12:f64[2,3] = transpose[perm=[1, 0]] %u
  %13:f64[4,2] = scatter_add[axis=0, size=4] %u, %0
  %14:f64[2,3] = slice[ranges=[0:2:1, 0:3:1]] %12
  %15:f64[5,3] = scatter_add[axis=0, size=5] %14, %11
  %16:i64[4] = const [0, 1, 2, 3]
  %17:f64[3,4] = scatter_add[axis=1, size=4] %v, %16
  return %1, %5, %7, %9, %10, %13, %15, %17
}",
    );
}

#[test]
fn long_elementwise_chains_compile_without_deep_recursion() {
    let b = GraphBuilder::new("chain");
    let x = b.input("x", DType::F64, &[9]);
    let mut y = x.clone();
    for k in 0..3000 {
        y = if k % 2 == 0 { &y * 0.5 + 1.0 } else { y.tanh() };
    }
    let g = b.finish(&[&y.sum_all()]).unwrap();
    check_inputs(&g, &random_inputs(&g, 9), 1e-12);
}

#[test]
fn clif_text_and_statistics() {
    let g = tessera_graph::parse(
        "func @f(%x: f64[100]) -> f64[] {
  %0:f64[100] = exp %x
  %1:f64[] = reduce_sum[axes=[0]] %0
  return %1
}",
    )
    .unwrap();
    let clif = tessera_codegen::emit_clif(&g, &tessera_codegen::CompileOptions::default()).unwrap();
    assert!(clif.starts_with("function"), "{clif}");
    assert!(clif.contains("f64x2"), "expected a vector loop:\n{clif}");
    let opts = tessera_codegen::CompileOptions { clif_text: true, ..Default::default() };
    let (_, stats) = tessera_codegen::compile_with_stats(&g, &opts).unwrap();
    assert_eq!(stats.kernels, 1);
    assert_eq!(stats.calls, 0);
    assert!(stats.clif_instructions > 10 && stats.code_bytes > 0);
    assert!(stats.total >= stats.compile);
    assert_eq!(stats.clif.as_deref(), Some(clif.as_str()));
    assert!(stats.to_string().contains("cranelift"));
}

#[test]
fn reductions_into_a_short_inner_axis() {
    // [reduced…, short kept] reductions keep a tile of outputs in registers.
    check(
        "func @f(%x: f64[6,7], %y: f64[3,4,5], %v: f64[40], %m: f64[40,9]) -> (f64[7], f64[5], f64[1,7], f64[9], f64[2,5]) {
  %0:f64[7] = reduce_mean[axes=[0]] %x
  %1:f64[5] = reduce_sum[axes=[0, 1]] %y
  %2:f64[1,7] = reduce_max[axes=[0], keepdims=true] %x
  %3:f64[9] = matmul %v, %m
  %4:f64[3,4,5] = exp %y
  %5:f64[4,5] = reduce_prod[axes=[0]] %4
  %6:f64[2,5] = slice[ranges=[0:4:2, 0:5:1]] %5
  return %0, %1, %2, %3, %6
}",
    );
}

/// Many sibling reductions over one domain are spread over several kernels (a bounded number
/// of accumulators per loop), and still give the interpreter's results.
#[test]
fn sibling_reductions_share_loops_in_bounded_groups() {
    let n = 40;
    let params: Vec<String> = (0..n).map(|i| format!("%x{i}: f64[10]")).collect();
    let returns = vec!["f64[]"; n].join(", ");
    let body: Vec<String> = (0..n).map(|i| format!("  %{i}:f64[] = reduce_sum[axes=[0]] %x{i}")).collect();
    let results: Vec<String> = (0..n).map(|i| format!("%{i}")).collect();
    let src = format!("func @f({}) -> ({returns}) {{\n{}\n  return {}\n}}", params.join(", "), body.join("\n"), results.join(", "));
    check(&src);
    let per_kernel: Vec<usize> = planned_kernels(&src).iter().map(|k| k.outs.len()).collect();
    assert_eq!(per_kernel.iter().sum::<usize>(), n);
    assert!(per_kernel.len() > 1 && per_kernel.iter().all(|&k| (2..=8).contains(&k)), "reductions per kernel: {per_kernel:?}");
}
