//! The flat parameter layout is stable and documented: parameters in declaration order, each a
//! contiguous block of its unconstrained size, row-major within the parameter.

mod common;

use ndarray::{arr0, arr1};
use tessera_model::{DataSet, ParamLayout, Transform, parse_model};

fn layout_text(layout: &[ParamLayout]) -> String {
    layout.iter().map(|p| format!("{p}\n")).collect()
}

#[test]
fn eight_schools_layout() {
    let model = common::bind("eight_schools.tess", r#"{"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}"#);
    let l = model.layout();
    assert_eq!(l.len(), 3);
    assert_eq!((l[0].name.as_str(), l[0].offset, l[0].size, l[0].shape.as_slice()), ("mu", 0, 1, &[][..]));
    assert_eq!(l[0].transform, Transform::Identity);
    assert_eq!((l[1].name.as_str(), l[1].offset, l[1].size, l[1].shape.as_slice()), ("tau", 1, 1, &[][..]));
    assert_eq!(l[1].transform, Transform::Lower(arr0(0.0).into_dyn()));
    assert_eq!((l[2].name.as_str(), l[2].offset, l[2].size, l[2].shape.as_slice()), ("theta_tilde", 2, 8, &[8][..]));
    insta::assert_snapshot!(layout_text(l), @r"
    mu offset=0 size=1 shape=[] transform=identity
    tau offset=1 size=1 shape=[] transform=lower=0
    theta_tilde offset=2 size=8 shape=[8] transform=identity
    ");
}

const MIXED: &str = "\
data K: int
data lo: vector[2]
param M: matrix[2, 3]
param s: simplex[K]
param o: ordered[3]
param p: ordered<lower=0>[2]
param b: vector<lower=lo, upper=1>[2]
param c: real<upper=-K>
target += sum(M) + sum(log(s)) + sum(o) + sum(p) + sum(b) + c
";

#[test]
fn layout_of_matrix_simplex_ordered_and_bounded_parameters() {
    let model = parse_model(MIXED, "mixed.tess").unwrap();
    let data = DataSet::from_json(r#"{"K": 4, "lo": [-1, 0.5]}"#, "d.json").unwrap();
    let bound = model.bind(&data).unwrap();
    let l = bound.layout();
    let blocks: Vec<(&str, usize, usize, Vec<usize>)> = l.iter().map(|p| (p.name.as_str(), p.offset, p.size, p.shape.clone())).collect();
    assert_eq!(
        blocks,
        [
            ("M", 0, 6, vec![2, 3]),
            ("s", 6, 3, vec![4]),
            ("o", 9, 3, vec![3]),
            ("p", 12, 2, vec![2]),
            ("b", 14, 2, vec![2]),
            ("c", 16, 1, vec![]),
        ]
    );
    assert_eq!(bound.dim(), 17);
    assert_eq!(l[4].transform, Transform::LowerUpper(arr1(&[-1.0, 0.5]).into_dyn(), arr0(1.0).into_dyn()));
    assert_eq!(l[5].transform, Transform::Upper(arr0(-4.0).into_dyn()));
    insta::assert_snapshot!(layout_text(l), @r"
    M offset=0 size=6 shape=[2,3] transform=identity
    s offset=6 size=3 shape=[4] transform=simplex
    o offset=9 size=3 shape=[3] transform=ordered
    p offset=12 size=2 shape=[2] transform=ordered, lower=0
    b offset=14 size=2 shape=[2] transform=lower=array[2], upper=1
    c offset=16 size=1 shape=[] transform=upper=-4
    ");
    // Row-major within a matrix, and the constrained outputs in the same order.
    let names = bound.output_names();
    assert_eq!(&names[..6], ["M[0,0]", "M[0,1]", "M[0,2]", "M[1,0]", "M[1,1]", "M[1,2]"]);
    assert_eq!(&names[6..10], ["s[0]", "s[1]", "s[2]", "s[3]"]);
    assert_eq!(names.len(), 6 + 4 + 3 + 2 + 2 + 1);
    let theta: Vec<f64> = (0..17).map(|i| 0.1 * i as f64).collect();
    let out = bound.constrained_interp(&theta).unwrap();
    assert_eq!(&out[..6], &theta[..6]);
    assert!((out[6..10].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(out, bound.constrain(&theta).unwrap());
}

#[test]
fn the_logp_graph_has_one_input_and_one_scalar_output() {
    let model = parse_model(MIXED, "mixed.tess").unwrap();
    let bound = model.bind(&DataSet::from_json(r#"{"K": 4, "lo": [-1, 0.5]}"#, "d.json").unwrap()).unwrap();
    for g in [bound.logp_graph(), bound.constrained_graph()] {
        assert_eq!(g.inputs().len(), 1);
        assert_eq!(g.ty(g.inputs()[0]).to_string(), "f64[17]");
        tessera_graph::verify(g).unwrap();
    }
    let g = bound.logp_graph();
    assert_eq!(g.outputs().len(), 1);
    assert_eq!(g.ty(g.outputs()[0]).to_string(), "f64[]");
    assert_eq!(bound.constrained_graph().outputs().len(), 6);
}

/// Flat priors: a parameter without `~` contributes only its log-Jacobian.
#[test]
fn parameters_without_priors_contribute_their_log_jacobian() {
    let model = parse_model("param s: real<lower=0>\nparam p: simplex[3]\n", "m.tess").unwrap();
    let bound = model.bind(&DataSet::new("d.json")).unwrap();
    let theta = [0.7, 0.2, -0.4];
    let lp = bound.logp_interp(&theta).unwrap();
    let (_, lj_s) = Transform::Lower(arr0(0.0).into_dyn()).constrain(&theta[..1], &[]).unwrap();
    let (_, lj_p) = Transform::Simplex.constrain(&theta[1..], &[3]).unwrap();
    assert!((lp - (lj_s + lj_p)).abs() < 1e-14, "{lp} vs {}", lj_s + lj_p);
    assert!((lj_s - 0.7).abs() < 1e-15);
}
