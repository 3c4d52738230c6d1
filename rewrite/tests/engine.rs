//! The engine and pipeline API: every shipped rule parses, pass lists, the report and trace,
//! type preservation, limits.

use tessera_graph::parse;
use tessera_rewrite::{Pass, PipelineSettings, RewriteError, optimize, rule_set};

#[test]
fn every_shipped_rule_parses_and_names_are_unique_per_pass() {
    for pass in Pass::ALL {
        let Some(set) = rule_set(pass) else { continue };
        for r in set.rules() {
            assert_eq!(r.error(), None, "rule {} of {pass}", r.name);
        }
        let mut names: Vec<&str> = set.rules().iter().map(|r| r.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate rule names in {pass}");
    }
}

#[test]
fn pass_lists_parse_and_reject_unknown_names() {
    assert_eq!(Pass::parse_list("canonicalize, fuse").unwrap(), vec![Pass::Canonicalize, Pass::Fuse]);
    assert_eq!(Pass::parse_list("simplify,frobnicate"), Err(RewriteError::UnknownPass("frobnicate".into())));
}

const SRC: &str = "func @f(%x: f64[4]) -> f64[] {\n  %0:f64[4] = exp %x\n  %1:f64[4] = add 1.0:f64, %0\n  %2:f64[4] = log %1\n  %3:f64[] = reduce_sum[axes=[0]] %2\n  return %3\n}\n";

#[test]
fn report_counts_and_trace_are_displayed() {
    let g = parse(SRC).unwrap();
    let settings = PipelineSettings { trace: true, verify: true, ..PipelineSettings::default() };
    let (opt, report) = optimize(&g, &settings).unwrap();
    assert_eq!(tessera_graph::print(&opt), "func @f(%x: f64[4]) -> f64[] {\n  %0:f64[] = fused[axes=[0], reduce=sum] %x { softplus($0) }\n  return %0\n}\n");
    assert_eq!(report.count("const_right_add"), 1);
    assert_eq!(report.count("softplus_of_log"), 1);
    assert_eq!(report.count("fuse_reduction"), 1);
    assert_eq!((report.nodes_before, report.nodes_after), (6, 2));
    let text = report.to_string();
    assert!(text.contains("[stabilize] softplus_of_log: log(add(exp(%x), 1.0:f64)) → softplus(%x)"), "{text}");
    assert!(text.contains("pass stabilize"), "{text}");
    // Without the trace flag nothing is recorded.
    let (_, quiet) = optimize(&g, &PipelineSettings::default()).unwrap();
    assert!(quiet.trace.is_empty());
}

#[test]
fn selected_passes_only() {
    let g = parse(SRC).unwrap();
    let settings = PipelineSettings { passes: vec![Pass::Canonicalize], ..PipelineSettings::default() };
    let (opt, report) = optimize(&g, &settings).unwrap();
    assert_eq!(report.passes.len(), 1);
    assert!(tessera_graph::print(&opt).contains("log %"));
}

#[test]
fn node_limit_stops_rewriting_without_error() {
    let g = parse(SRC).unwrap();
    let settings = PipelineSettings { max_nodes: 1, passes: vec![Pass::Stabilize], ..PipelineSettings::default() };
    let (opt, report) = optimize(&g, &settings).unwrap();
    assert!(report.passes[0].stats.hit_node_limit);
    assert_eq!(opt, g);
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    use tessera_graph::{DType, Graph, Op, TensorType, UnaryOp};
    let mut g = Graph::new("chain");
    let mut x = g.input("x", TensorType::new(DType::F64, [3])).unwrap();
    for _ in 0..5000 {
        x = g.add(Op::Unary(UnaryOp::Sin), &[x]).unwrap();
    }
    g.set_outputs(&[x]).unwrap();
    let (opt, _) = optimize(&g, &PipelineSettings { verify: true, ..PipelineSettings::default() }).unwrap();
    let inputs = std::collections::HashMap::from([("x".to_string(), tessera_graph::Value::F64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[3]), 0.5)))]);
    let want = (0..5000).fold(0.5f64, |v, _| v.sin());
    assert_eq!(tessera_graph::eval(&opt, &inputs).unwrap()[0].to_f64_vec(), vec![want; 3]);
}
