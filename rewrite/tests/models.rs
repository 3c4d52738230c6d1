//! Node counts of real gradient graphs before and after the pipeline (examples/*.ir and
//! model-crate models), with the interpreter agreeing on the values before and after.

mod common;

use tessera_graph::{Graph, eval, parse, with_gradients};
use tessera_model::{DataSet, parse_model};
use tessera_rewrite::{PipelineSettings, optimize};

fn root() -> String {
    format!("{}/..", env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str, wrt: &[&str]) -> Graph {
    let src = std::fs::read_to_string(format!("{}/examples/{name}.ir", root())).unwrap();
    with_gradients(&parse(&src).unwrap(), wrt).unwrap()
}

fn model(name: &str) -> Graph {
    let src = std::fs::read_to_string(format!("{}/model/tests/models/posteriordb/{name}.tess", root())).unwrap();
    let data = std::fs::read_to_string(format!("{}/model/tests/fixtures/posteriordb/{name}.json", root())).unwrap();
    let m = parse_model(&src, name).unwrap();
    let bound = m.bind(&DataSet::from_json(&data, name).unwrap()).unwrap();
    bound.logp_grad_graph().unwrap().clone()
}

/// Inputs at which the log densities are finite: the test helper's values in (0.2, 1.9).
fn agree(g: &Graph, opt: &Graph) {
    let inputs = common::inputs_for(g);
    let before = eval(g, &inputs).unwrap();
    let after = eval(opt, &inputs).unwrap();
    for (b, a) in before.iter().zip(&after) {
        for (x, y) in b.to_f64_vec().iter().zip(a.to_f64_vec()) {
            assert!((x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-8 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
}

#[test]
fn gradient_graph_node_counts() {
    let graphs: Vec<(&str, Graph)> = vec![
        ("examples/normal", example("normal", &["mu", "sigma"])),
        ("examples/logistic_regression", example("logistic_regression", &["beta"])),
        ("examples/hierarchical", example("hierarchical", &["mu_a", "log_sigma_a", "a_raw", "b", "log_sigma_y"])),
        ("eight_schools_noncentered", model("eight_schools-eight_schools_noncentered")),
        ("kidiq-kidscore_interaction", model("kidiq-kidscore_interaction")),
        ("arK-arK", model("arK-arK")),
        ("gp_pois_regr-gp_pois_regr", model("gp_pois_regr-gp_pois_regr")),
        ("low_dim_gauss_mix", model("low_dim_gauss_mix-low_dim_gauss_mix")),
    ];
    let mut table = format!("{:<32} {:>7} {:>8} {:>6} {:>7}\n", "gradient graph", "before", "no fuse", "after", "fused");
    let settings = PipelineSettings { verify: true, ..PipelineSettings::default() };
    let mut no_fuse = settings.clone();
    no_fuse.passes.pop();
    for (name, g) in graphs {
        let (opt, report) = optimize(&g, &settings).unwrap();
        let (unfused, _) = optimize(&g, &no_fuse).unwrap();
        agree(&g, &unfused);
        agree(&g, &opt);
        let fused = opt.live_nodes().iter().filter(|&&id| matches!(opt.node(id).op, tessera_graph::Op::Fused(_))).count();
        assert!(report.nodes_after <= report.nodes_before, "{name}: {report}");
        table.push_str(&format!(
            "{name:<32} {:>7} {:>8} {:>6} {:>7}\n",
            report.nodes_before,
            unfused.live_nodes().len(),
            report.nodes_after,
            fused
        ));
    }
    insta::assert_snapshot!(table);
}
