//! Inspection views: the DOT export and the summary.

use tessera_graph::{DType, Graph, GraphBuilder, parse, summary, to_dot};

const LOGP: &str = "func @logp(%mu: f64[], %sigma: f64[], %x: f64[100]) -> f64[] {
  %0:f64[100] = sub %x, %mu
  %1:f64[100] = div %0, %sigma
  %2:f64[100] = mul %1, %1
  %3:f64[] = reduce_sum[axes=[0]] %2
  %4:f64[] = mul %3, -0.5:f64
  return %4
}
";

fn logp() -> Graph {
    parse(LOGP).unwrap()
}

/// The node statements (`  N [ … ]`) of a DOT text.
fn node_lines(dot: &str) -> Vec<&str> {
    dot.lines()
        .filter(|l| {
            let t = l.trim_start();
            t.split_once(' ').is_some_and(|(id, rest)| id.parse::<usize>().is_ok() && rest.starts_with('['))
        })
        .collect()
}

fn edge_lines(dot: &str) -> Vec<&str> {
    dot.lines().filter(|l| l.contains(" -> ")).collect()
}

#[test]
fn dot_has_one_node_per_value_and_one_edge_per_operand() {
    let dot = to_dot(&logp());
    // 3 inputs + 5 ops + 1 inline scalar (−0.5) + 1 output marker.
    assert_eq!(node_lines(&dot).len(), 10, "{dot}");
    // sub, div, mul: 2 each; reduce_sum: 1; mul by −0.5: 2; the output marker: 1.
    assert_eq!(edge_lines(&dot).len(), 10, "{dot}");
    assert!(dot.starts_with("digraph \"logp\" {\n"));
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn dot_labels_show_binder_op_attributes_and_type() {
    let dot = to_dot(&logp());
    for label in [
        "label=\"%mu\\nf64[]\"",
        "label=\"%x\\nf64[100]\"",
        "label=\"%0 = sub\\nf64[100]\"",
        "label=\"%3 = reduce_sum[axes=[0]]\\nf64[]\"",
        "label=\"-0.5\"",
        "label=\"output 0\"",
    ] {
        assert!(dot.contains(label), "{label} missing from\n{dot}");
    }
}

#[test]
fn dot_edges_carry_operand_positions_only_for_several_operands() {
    let dot = to_dot(&logp());
    let edges = edge_lines(&dot);
    let labelled = edges.iter().filter(|e| e.contains("headlabel=\"0\"") || e.contains("headlabel=\"1\"")).count();
    assert_eq!(labelled, 8, "four binary ops × two operands:\n{dot}");
    // `%2 = mul %1, %1` uses %1 twice: two distinct edges, positions 0 and 1.
    let nodes = node_lines(&dot);
    let index_of = |needle: &str| {
        nodes.iter().find(|l| l.contains(needle)).and_then(|l| l.trim_start().split(' ').next()).unwrap().to_string()
    };
    let (one, two) = (index_of("%1 = div"), index_of("%2 = mul"));
    let between: Vec<&&str> =
        edges.iter().filter(|e| e.trim_start().starts_with(&format!("{one} -> {two} "))).collect();
    assert_eq!(between.len(), 2, "{dot}");
    assert!(between[0].contains("headlabel=\"0\"") && between[1].contains("headlabel=\"1\""));
}

#[test]
fn dot_styles_inputs_constants_and_outputs_apart() {
    let b = GraphBuilder::new("styles");
    let x = b.input("x", DType::F64, &[2]);
    let c = b.array(&ndarray::array![1.0, 2.0]);
    let y = (&x * &c) + 3.0;
    let g = b.finish(&[&y]).unwrap();
    let dot = to_dot(&g);
    let line = |needle: &str| *node_lines(&dot).iter().find(|l| l.contains(needle)).unwrap();
    assert!(line("%x").contains("shape=ellipse") && line("%x").contains("fillcolor=\"#cfe2ff\""));
    assert!(line("= const").contains("fillcolor=\"#e9ecef\""));
    assert!(line("label=\"3.0\"").contains("shape=plaintext"));
    assert!(line("output 0").contains("fillcolor=\"#ffe08a\""));
    assert!(line("= add").contains("penwidth"), "the returned node has a heavier border");
    assert!(!line("= mul").contains("penwidth"));
    assert!(dot.contains("{ rank=source; 0; }"));
}

#[test]
fn dot_is_deterministic_and_independent_of_construction_order() {
    let build = |dead_first: bool| {
        let b = GraphBuilder::new("f");
        let x = b.input("x", DType::F64, &[3]);
        if dead_first {
            let _ = x.sin() * 2.0;
        }
        let out = (x.exp() + x.log()).sum(&[0]);
        b.finish(&[&out]).unwrap()
    };
    assert_eq!(to_dot(&build(true)), to_dot(&build(false)));
}

#[test]
fn dot_escapes_quotes_in_names() {
    let mut g = Graph::new("say \"hi\"");
    let x = g.input("a\"b", tessera_graph::TensorType::scalar(DType::F64)).unwrap();
    g.set_outputs(&[x]).unwrap();
    let dot = to_dot(&g);
    assert!(dot.starts_with("digraph \"say \\\"hi\\\"\" {"), "{dot}");
    assert!(dot.contains(r#"label="%\"a\\\"b\"\nf64[]""#), "{dot}");
}

#[test]
fn dot_of_a_sixty_node_graph_has_every_live_node() {
    let src = include_str!("fixtures/hierarchical_grad.ir");
    let g = parse(src).unwrap();
    let live = g.live_nodes();
    let scalar_consts =
        live.iter().filter(|&&id| g.node(id).op.as_const().is_some_and(|c| c.shape().is_scalar())).count();
    let scalar_uses: usize = live
        .iter()
        .flat_map(|&id| g.node(id).operands.clone())
        .chain(g.outputs().iter().copied())
        .filter(|&o| g.node(o).op.as_const().is_some_and(|c| c.shape().is_scalar()))
        .count();
    let dot = to_dot(&g);
    assert!(live.len() >= 50);
    assert_eq!(node_lines(&dot).len(), live.len() - scalar_consts + scalar_uses + g.outputs().len());
    let operand_edges: usize = live.iter().map(|&id| g.node(id).operands.len()).sum();
    assert_eq!(edge_lines(&dot).len(), operand_edges + g.outputs().len());
}

#[test]
fn dot_snapshot_of_a_small_graph() {
    let src = "func @f(%x: f64[3], %i: i64[2]) -> (f64[], f64[2]) {
  %0:f64[3] = exp %x
  %1:f64[2] = gather[axis=0] %0, %i
  %2:f64[] = reduce_sum[axes=[0]] %1
  %3:f64[] = mul %2, 2.0:f64
  return %3, %1
}
";
    insta::assert_snapshot!(to_dot(&parse(src).unwrap()));
}

// ---------------------------------------------------------------- summary

#[test]
fn summary_counts_ops_and_bytes() {
    let s = summary(&logp());
    assert_eq!(s.name, "logp");
    assert_eq!(s.live_nodes, 9);
    let counts: Vec<(&str, usize)> = s.op_counts.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(counts, vec![("const", 1), ("div", 1), ("input", 3), ("mul", 2), ("reduce_sum", 1), ("sub", 1)]);
    assert_eq!(s.inputs.len(), 3);
    assert_eq!(s.outputs.len(), 1);
    assert_eq!((s.constants, s.constant_bytes), (1, 8));
    // sub, div, mul: 100 f64 each; reduce_sum and the last mul: one f64 each.
    assert_eq!((s.intermediates, s.intermediate_bytes), (5, 3 * 800 + 2 * 8));
}

#[test]
fn summary_counts_bool_as_one_byte_and_ignores_dead_nodes() {
    let b = GraphBuilder::new("f");
    let x = b.input("x", DType::F64, &[10]);
    let _dead = x.exp();
    let mask = x.gt(&b.scalar(0.0));
    let g = b.finish(&[&mask]).unwrap();
    let s = summary(&g);
    assert_eq!((s.intermediates, s.intermediate_bytes), (1, 10));
    assert_eq!(s.live_nodes, 3);
}

#[test]
fn summary_display_is_an_aligned_table() {
    insta::assert_snapshot!(summary(&logp()).to_string());
}
