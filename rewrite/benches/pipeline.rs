//! The whole pipeline on log densities with gradients of growing hierarchical models
//! (G groups written as separate per-group terms): about 100, 1,000 and 10,000 nodes.
//! Divide the reported time by the node count printed at start-up for µs per node.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tessera_graph::{Graph, parse, with_gradients};
use tessera_rewrite::{PipelineSettings, optimize};

/// A varying-intercept model with `groups` groups of 5 observations, each group its own
/// terms (no vectorization, as a naive front end writes it), and its gradient.
fn hierarchical(groups: usize) -> Graph {
    let mut s = format!("func @h(%mu: f64[], %log_tau: f64[], %log_sigma: f64[], %a: f64[{groups}]) -> f64[] {{\n");
    s.push_str("  %tau:f64[] = exp %log_tau\n  %sigma:f64[] = exp %log_sigma\n  %ls:f64[] = mul %log_sigma, -5.0:f64\n");
    let mut acc = String::from("%ls");
    for g in 0..groups {
        let ys: Vec<String> = (0..5).map(|i| format!("{:?}", ((g * 5 + i) as f64 * 0.37).sin() * 2.0)).collect();
        s.push_str(&format!(
            "  %ag{g}:f64[1] = slice[ranges=[{g}:{}:1]] %a\n  %as{g}:f64[] = reshape[shape=[]] %ag{g}\n  %t{g}:f64[] = mul %tau, %as{g}\n  %m{g}:f64[] = add %mu, %t{g}\n  %y{g}:f64[5] = const [{}]\n  %d{g}:f64[5] = sub %y{g}, %m{g}\n  %z{g}:f64[5] = div %d{g}, %sigma\n  %q{g}:f64[5] = square %z{g}\n  %s{g}:f64[] = reduce_sum[axes=[0]] %q{g}\n  %l{g}:f64[] = mul %s{g}, -0.5:f64\n  %p{g}:f64[] = pow %as{g}, 2.0:f64\n  %pp{g}:f64[] = mul -0.5:f64, %p{g}\n  %e{g}:f64[] = add %l{g}, %pp{g}\n  %acc{g}:f64[] = add {acc}, %e{g}\n",
            g + 1,
            ys.join(", ")
        ));
        acc = format!("%acc{g}");
    }
    s.push_str(&format!("  %lp:f64[] = sub {acc}, 1.8378770664093453:f64\n  return %lp\n}}\n"));
    let g = parse(&s).expect("benchmark model parses");
    with_gradients(&g, &["mu", "log_tau", "log_sigma", "a"]).expect("gradient")
}

fn bench(c: &mut Criterion) {
    let settings = PipelineSettings::default();
    for groups in [3, 33, 340] {
        let g = hierarchical(groups);
        let nodes = g.live_nodes().len();
        let (opt, _) = optimize(&g, &settings).expect("pipeline");
        eprintln!("groups {groups}: {nodes} nodes → {} after the pipeline", opt.live_nodes().len());
        c.bench_function(&format!("pipeline/{nodes}_nodes"), |b| {
            b.iter_batched(|| g.clone(), |g| optimize(&g, &settings).expect("pipeline"), BatchSize::LargeInput)
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
