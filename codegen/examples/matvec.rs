//! Times logistic regression's two products separately (a development aid for the loop
//! emitter): `X·β` (short reduced rows) and `rᵀX` (register tiles).
use std::hint::black_box;
use std::time::Instant;

use tessera_codegen::{ArgMut, ArgRef, compile};
use tessera_graph::parse;

fn main() {
    let x: Vec<f64> = (0..125_000).map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0).collect();
    let b: Vec<f64> = (0..25).map(|i| i as f64 * 0.01).collect();
    let r: Vec<f64> = (0..5000).map(|i| (i % 7) as f64 * 0.1).collect();
    for (name, src, second, n_out) in [
        ("X·β", "func @a(%x: f64[5000,25], %b: f64[25]) -> f64[5000] {\n  %0:f64[5000] = matmul %x, %b\n  return %0\n}", &b, 5000),
        ("rᵀX", "func @a(%x: f64[5000,25], %r: f64[5000]) -> f64[25] {\n  %0:f64[25] = matmul %r, %x\n  return %0\n}", &r, 25),
    ] {
        let c = compile(&parse(src).unwrap()).unwrap();
        let mut ws = c.workspace();
        let mut out = vec![0.0; n_out];
        let mut best = f64::MAX;
        for _ in 0..200 {
            let t = Instant::now();
            for _ in 0..10 {
                c.call(&mut ws, &[ArgRef::F64(&x), ArgRef::F64(second)], &mut [ArgMut::F64(&mut out)]).unwrap();
                black_box(&out);
            }
            best = best.min(t.elapsed().as_secs_f64() / 10.0);
        }
        println!("{name}: {:.1} µs", best * 1e6);
    }
}
