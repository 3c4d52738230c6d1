//! The three benchmark models: compile time (graph → callable, gradient included) and
//! logp+gradient time of the JIT against hand-written Rust of the same math; variants switch
//! off one optimization each (fusion, vector loops, inline vector math, dgemm vs loops).
//! After criterion's runs, a summary table prints the ratios next to nutpie's figures.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/models/mod.rs"]
mod models;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use models::{Hand, eight_schools, logistic, peer_point, radon};
use tessera_codegen::{CompileOptions, LogDensityFn};
use tessera_graph::Graph;

/// nutpie's logp+grad per call (µs) and compile time (s, fresh) from ../shared/peers.md.
fn nutpie(name: &str) -> (f64, f64) {
    match name {
        "logistic_regression" => (238.32, 6.48),
        "hierarchical_radon" => (3.93, 7.60),
        "eight_schools_noncentered" => (1.69, 5.66),
        _ => (f64::NAN, f64::NAN),
    }
}

fn models() -> Vec<(&'static str, Graph, Box<dyn Hand>)> {
    let (g1, h1) = logistic();
    let (g2, h2) = radon();
    let (g3, h3) = eight_schools();
    vec![
        ("logistic_regression", g1, Box::new(h1)),
        ("hierarchical_radon", g2, Box::new(h2)),
        ("eight_schools_noncentered", g3, Box::new(h3)),
    ]
}

fn variants() -> Vec<(&'static str, CompileOptions)> {
    let base = CompileOptions::default();
    vec![
        ("jit", base.clone()),
        ("jit, dgemm for every matmul", CompileOptions { dgemm_min_work: 0, ..base.clone() }),
        ("jit, loops for every matmul", CompileOptions { dgemm_min_work: usize::MAX, ..base.clone() }),
        ("jit, no fusion", CompileOptions { fuse: false, ..base.clone() }),
        ("jit, scalar loops", CompileOptions { vectorize: false, ..base.clone() }),
        ("jit, calls for exp/log", CompileOptions { inline_math: false, ..base }),
    ]
}

fn bench(c: &mut Criterion) {
    for (name, graph, mut hand) in models() {
        let dim = hand.dim();
        let x = peer_point(dim);
        let mut grad = vec![0.0; dim];
        let mut group = c.benchmark_group(name);
        group.bench_function("compile (gradient + plan + CLIF + Cranelift)", |b| {
            b.iter(|| LogDensityFn::from_logp(black_box(&graph)).expect("compile"))
        });
        group.bench_function("hand-written logp+grad", |b| b.iter(|| hand.logp_grad(black_box(&x), &mut grad)));
        for (label, opts) in variants() {
            let (mut f, _) = LogDensityFn::from_logp_with_options(&graph, &opts).expect("compile");
            group.bench_function(format!("{label} logp+grad"), |b| {
                b.iter(|| f.logp_grad(black_box(&x), &mut grad).expect("call"))
            });
        }
        group.finish();
    }
}

/// Per-call times of `fs` (interleaved batches of ~2 ms, so load from other processes hits
/// every candidate alike), the minimum over `rounds` batches each: the least disturbed figure
/// on a shared machine.
fn min_times(fs: &mut [&mut dyn FnMut()], rounds: usize) -> Vec<Duration> {
    let batches: Vec<u32> = fs
        .iter_mut()
        .map(|f| {
            let start = Instant::now();
            let mut calls = 0u32;
            while start.elapsed() < Duration::from_millis(2) {
                f();
                calls += 1;
            }
            calls.max(1)
        })
        .collect();
    let mut best = vec![Duration::MAX; fs.len()];
    for _ in 0..rounds {
        for (k, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..batches[k] {
                f();
            }
            best[k] = best[k].min(t.elapsed() / batches[k]);
        }
    }
    best
}

/// The table of the closing note: compile time, per-call times, ratios, nutpie beside them.
fn summary(_: &mut Criterion) {
    println!("\n{:<27} {:>11} {:>12} {:>12} {:>7} {:>12} {:>12}", "model", "compile ms", "jit µs", "hand µs", "ratio", "nutpie µs", "nutpie cmp s");
    for (name, graph, mut hand) in models() {
        let dim = hand.dim();
        let x = peer_point(dim);
        let mut grad = vec![0.0; dim];
        let mut compile_once = || {
            black_box(LogDensityFn::from_logp(&graph).expect("compile"));
        };
        let compile = min_times(&mut [&mut compile_once], 15)[0];
        let (mut f, stats) = LogDensityFn::from_logp_with_options(&graph, &CompileOptions::default()).expect("compile");
        let mut g2 = grad.clone();
        let mut jit_call = || {
            black_box(f.logp_grad(black_box(&x), &mut grad).expect("call"));
        };
        let mut hand_call = || {
            black_box(hand.logp_grad(black_box(&x), &mut g2));
        };
        let t = min_times(&mut [&mut jit_call, &mut hand_call], 31);
        let (jit, hand_t) = (t[0], t[1]);
        let (nut_eval, nut_compile) = nutpie(name);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{:<27} {:>11.2} {:>12.3} {:>12.3} {:>7.2} {:>12.2} {:>12.2}",
            name,
            compile.as_secs_f64() * 1e3,
            us(jit),
            us(hand_t),
            jit.as_secs_f64() / hand_t.as_secs_f64(),
            nut_eval,
            nut_compile
        );
        println!("  compile stages:\n{}", indent(&stats.to_string()));
        for (label, opts) in variants().into_iter().skip(1) {
            let (mut v, _) = LogDensityFn::from_logp_with_options(&graph, &opts).expect("compile");
            let mut g3 = vec![0.0; dim];
            let mut call = || {
                black_box(v.logp_grad(black_box(&x), &mut g3).expect("call"));
            };
            let t = min_times(&mut [&mut call], 21)[0];
            println!("  {label:<34} {:>10.3} µs  ({:.2}× hand)", us(t), t.as_secs_f64() / hand_t.as_secs_f64());
        }
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

criterion_group!(benches, bench, summary);
criterion_main!(benches);
