//! Inline loop nests against `matrixmultiply::dgemm` (a registered symbol) for matrix
//! products: square matrices of growing size, and logistic regression's 5000×25 products
//! (`X·β` and `rᵀX`). Prints a table; the default threshold (`dgemm_min_work`) comes from it.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::ArrayD;
use tessera_codegen::{ArgMut, ArgRef, CompileOptions, compile_with_stats};
use tessera_graph::{Graph, Value, parse};

fn fill(dims: &[usize]) -> Value {
    let n: usize = dims.iter().product();
    Value::F64(ArrayD::from_shape_vec(dims.to_vec(), (0..n).map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0).collect()).unwrap())
}

/// Minimum over interleaved rounds of the per-call time of each closure.
fn min_times(fs: &mut [&mut dyn FnMut()], rounds: usize) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; fs.len()];
    for _ in 0..rounds {
        for (k, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..20 {
                f();
            }
            best[k] = best[k].min(t.elapsed() / 20);
        }
    }
    best
}

fn time_graph(g: &Graph, inputs: &[Value]) -> (Duration, Duration) {
    let loops = CompileOptions { dgemm_min_work: usize::MAX, ..CompileOptions::default() };
    let dgemm = CompileOptions { dgemm_min_work: 0, ..CompileOptions::default() };
    let (cl, _) = compile_with_stats(g, &loops).unwrap();
    let (cd, _) = compile_with_stats(g, &dgemm).unwrap();
    let data: Vec<Vec<f64>> = inputs.iter().map(Value::to_f64_vec).collect();
    let args: Vec<ArgRef<'_>> = data.iter().map(|d| ArgRef::F64(d)).collect();
    let sizes: Vec<usize> = cl.outputs().iter().map(|t| t.shape.size()).collect();
    let mut bufs_l: Vec<Vec<f64>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
    let mut bufs_d = bufs_l.clone();
    let (mut wl, mut wd) = (cl.workspace(), cd.workspace());
    let mut a = || {
        let mut outs: Vec<ArgMut<'_>> = bufs_l.iter_mut().map(|b| ArgMut::F64(b)).collect();
        cl.call(&mut wl, black_box(&args), &mut outs).unwrap();
    };
    let mut b = || {
        let mut outs: Vec<ArgMut<'_>> = bufs_d.iter_mut().map(|b| ArgMut::F64(b)).collect();
        cd.call(&mut wd, black_box(&args), &mut outs).unwrap();
    };
    let t = min_times(&mut [&mut a, &mut b], 15);
    (t[0], t[1])
}

fn table(_: &mut Criterion) {
    println!("\n{:<34} {:>12} {:>12}", "product", "loops µs", "dgemm µs");
    for n in [8usize, 16, 32, 48, 64, 128] {
        let src = format!(
            "func @mm(%a: f64[{n},{n}], %b: f64[{n},{n}]) -> f64[{n},{n}] {{\n  %0:f64[{n},{n}] = matmul %a, %b\n  return %0\n}}"
        );
        let g = parse(&src).unwrap();
        let (l, d) = time_graph(&g, &[fill(&[n, n]), fill(&[n, n])]);
        println!("{:<34} {:>12.3} {:>12.3}", format!("{n}×{n} · {n}×{n}"), l.as_secs_f64() * 1e6, d.as_secs_f64() * 1e6);
    }
    let src = "func @lr(%x: f64[5000,25], %b: f64[25], %r: f64[5000]) -> (f64[5000], f64[25]) {
  %0:f64[5000] = matmul %x, %b
  %1:f64[25] = matmul %r, %x
  return %0, %1
}";
    let g = parse(src).unwrap();
    let (l, d) = time_graph(&g, &[fill(&[5000, 25]), fill(&[25]), fill(&[5000])]);
    println!("{:<34} {:>12.3} {:>12.3}", "5000×25 · 25  and  5000 · 5000×25", l.as_secs_f64() * 1e6, d.as_secs_f64() * 1e6);
}

criterion_group!(benches, table);
criterion_main!(benches);
