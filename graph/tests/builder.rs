//! Builder, hash-consing, type inference and verifier behaviour.

use tessera_graph::{DType, GraphBuilder, GraphError, verify};

#[test]
fn structurally_equal_nodes_are_one_node() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let a = x.exp() + 1.0;
    let c = x.exp() + 1.0;
    assert_eq!(a.id(), c.id());
    let g = b.finish(&[&a]).unwrap();
    verify(&g).unwrap();
    assert_eq!(g.live_nodes().len(), 4); // x, exp, 1.0, add
}

#[test]
fn graphs_equal_regardless_of_creation_order() {
    let b1 = GraphBuilder::new("f");
    let x1 = b1.input("x", DType::F64, &[]);
    let unused = x1.sin();
    let out1 = x1.exp() * x1.log();
    let _ = unused;
    let g1 = b1.finish(&[&out1]).unwrap();

    let b2 = GraphBuilder::new("f");
    let x2 = b2.input("x", DType::F64, &[]);
    let l = x2.log();
    let e = x2.exp();
    let out2 = &e * &l;
    let g2 = b2.finish(&[&out2]).unwrap();
    assert_eq!(g1, g2);
}

#[test]
fn broadcasting_follows_numpy() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3, 1]);
    let y = b.input("y", DType::F64, &[1, 4]);
    assert_eq!((&x + &y).dims(), vec![3, 4]);
}

#[test]
fn shape_mismatch_is_an_error_naming_op_and_shapes() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[3]);
    let y = b.input("y", DType::F64, &[4]);
    let z = &x + &y;
    let err = b.finish(&[&z]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "add: operand shapes [3] and [4] do not broadcast (trailing extents must be equal or 1)"
    );
}

#[test]
fn matmul_inner_dimension_mismatch() {
    let b = GraphBuilder::new("f");
    let m = b.input("m", DType::F64, &[2, 3]);
    let v = b.input("v", DType::F64, &[4]);
    let err = b.finish(&[&m.matmul(&v)]).unwrap_err();
    assert_eq!(err.to_string(), "matmul: inner dimensions differ: f64[2,3] and f64[4] (3 vs 4)");
}

#[test]
fn gather_index_must_be_i64() {
    let b = GraphBuilder::new("f");
    let a = b.input("a", DType::F64, &[5]);
    let idx = b.input("idx", DType::F64, &[3]);
    let err = b.finish(&[&a.gather(&idx, 0)]).unwrap_err();
    assert_eq!(err.to_string(), "gather: index has type f64[3], expected i64");
}

#[test]
fn out_of_range_slice_is_an_error() {
    let b = GraphBuilder::new("f");
    let a = b.input("a", DType::F64, &[5]);
    let err = b.finish(&[&a.slice(&[(Some(2), Some(9), None)])]).unwrap_err();
    assert_eq!(err.to_string(), "slice: axis 0: slice stop 9 is out of range for an axis of extent 5");
}

#[test]
fn negative_step_slices_reverse() {
    let b = GraphBuilder::new("f");
    let a = b.input("a", DType::F64, &[5]);
    assert_eq!(a.slice(&[(None, None, Some(-1))]).dims(), vec![5]);
    assert_eq!(a.slice(&[(Some(3), Some(0), Some(-2))]).dims(), vec![2]);
}

#[test]
fn type_error_names_expected_dtype() {
    let b = GraphBuilder::new("f");
    let i = b.input("i", DType::I64, &[2]);
    let err = b.finish(&[&i.exp()]).unwrap_err();
    assert_eq!(err, GraphError::op("exp", "operand has type i64[2], expected f64"));
}
