//! The safe call boundary: argument checks, run-time index checks, calls from many threads,
//! workspaces, and freeing JIT memory on drop.

mod common;

use std::collections::HashMap;

use ndarray::ArrayD;
use tessera_codegen::{ArgMut, ArgRef, CodegenError, CompileOptions, Compiled, LogDensityFn, Workspace, compile, compile_with_stats};
use tessera_graph::{Graph, Value, parse};

const MODEL: &str = "func @m(%x: f64[64], %idx: i64[10], %flag: bool[64]) -> (f64[], f64[10], bool[64]) {
  %0:f64[64] = exp %x
  %1:f64[64] = softplus %x
  %2:f64[64] = mul %0, %1
  %3:f64[] = reduce_sum[axes=[0]] %2
  %4:f64[10] = gather[axis=0] %x, %idx
  %5:bool[64] = gt %x, 0.0:f64
  %6:bool[64] = and %5, %flag
  return %3, %4, %6
}";

fn model() -> Graph {
    parse(MODEL).unwrap()
}

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn compiled_is_send_and_sync() {
    assert_send_sync::<Compiled>();
    assert_send::<Workspace>();
    assert_send::<LogDensityFn>();
}

/// Runs the model through the typed API.
fn run(c: &Compiled, ws: &mut Workspace, x: &[f64], idx: &[i64], flag: &[bool]) -> Result<(f64, Vec<f64>, Vec<bool>), CodegenError> {
    let (mut s, mut g, mut b) = ([0.0], vec![0.0; 10], vec![false; 64]);
    c.call(ws, &[ArgRef::F64(x), ArgRef::I64(idx), ArgRef::Bool(flag)], &mut [ArgMut::F64(&mut s), ArgMut::F64(&mut g), ArgMut::Bool(&mut b)])?;
    Ok((s[0], g, b))
}

fn model_inputs() -> (Vec<f64>, Vec<i64>, Vec<bool>) {
    let x: Vec<f64> = (0..64).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let idx: Vec<i64> = (0..10).map(|i| (i * 7) % 64).collect();
    let flag: Vec<bool> = (0..64).map(|i| i % 3 != 0).collect();
    (x, idx, flag)
}

#[test]
fn typed_call_matches_the_interpreter() {
    let g = model();
    let c = compile(&g).unwrap();
    let (x, idx, flag) = model_inputs();
    let (s, gathered, b) = run(&c, &mut c.workspace(), &x, &idx, &flag).unwrap();
    let inputs = HashMap::from([
        ("x".to_string(), Value::F64(ArrayD::from_shape_vec(vec![64], x.clone()).unwrap())),
        ("idx".to_string(), Value::I64(ArrayD::from_shape_vec(vec![10], idx.clone()).unwrap())),
        ("flag".to_string(), Value::Bool(ArrayD::from_shape_vec(vec![64], flag.clone()).unwrap())),
    ]);
    let want = tessera_graph::eval(&g, &inputs).unwrap();
    assert!(common::close(s, want[0].to_scalar_f64().unwrap(), 1e-12, 0.0));
    assert_eq!(gathered, want[1].to_f64_vec());
    assert_eq!(Value::Bool(ArrayD::from_shape_vec(vec![64], b).unwrap()), want[2]);
}

#[test]
fn calls_from_many_threads_agree_bit_for_bit() {
    let c = compile(&model()).unwrap();
    let (x, idx, flag) = model_inputs();
    let reference = run(&c, &mut c.workspace(), &x, &idx, &flag).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut ws = c.workspace();
                    for _ in 0..500 {
                        let r = run(&c, &mut ws, &x, &idx, &flag).unwrap();
                        assert_eq!(r.0.to_bits(), reference.0.to_bits());
                        assert_eq!(r.1, reference.1);
                        assert_eq!(r.2, reference.2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn log_density_clones_share_code_and_run_in_parallel() {
    let (g, _) = {
        let b = tessera_graph::GraphBuilder::new("lp");
        let t = b.input("theta", tessera_graph::DType::F64, &[5]);
        let lp = (t.square() * -0.5).sum_all() + t.softplus().sum_all();
        (b.finish(&[&lp]).unwrap(), ())
    };
    let f = LogDensityFn::from_logp(&g).unwrap();
    let x = [0.1, -0.2, 0.3, 1.5, -2.0];
    let mut base = f.clone();
    let mut g0 = [0.0; 5];
    let l0 = base.logp_grad(&x, &mut g0).unwrap();
    // ∂/∂θ (−θ²/2 + softplus θ) = −θ + σ(θ)
    for (gi, &xi) in g0.iter().zip(&x) {
        assert!((gi - (-xi + 1.0 / (1.0 + (-xi).exp()))).abs() < 1e-14);
    }
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let mut mine = f.clone();
            scope.spawn(move || {
                let mut g = [0.0; 5];
                for _ in 0..1000 {
                    assert_eq!(mine.logp_grad(&x, &mut g).unwrap().to_bits(), l0.to_bits());
                    assert_eq!(g, g0);
                }
            });
        }
    });
    assert!(std::sync::Arc::ptr_eq(f.compiled(), base.compiled()));
}

#[test]
fn wrong_arguments_are_errors_not_crashes() {
    let c = compile(&model()).unwrap();
    let (x, idx, flag) = model_inputs();
    let mut ws = c.workspace();
    // too short
    assert!(matches!(run(&c, &mut ws, &x[..63], &idx, &flag), Err(CodegenError::ArgMismatch { what: "input", index: 0, .. })));
    // too long
    let long: Vec<f64> = x.iter().chain(&[1.0]).copied().collect();
    assert!(matches!(run(&c, &mut ws, &long, &idx, &flag), Err(CodegenError::ArgMismatch { .. })));
    // wrong dtype
    let (mut s, mut g, mut b) = ([0.0], vec![0.0; 10], vec![false; 64]);
    let idx_f: Vec<f64> = idx.iter().map(|&i| i as f64).collect();
    let err = c
        .call(&mut ws, &[ArgRef::F64(&x), ArgRef::F64(&idx_f), ArgRef::Bool(&flag)], &mut [ArgMut::F64(&mut s), ArgMut::F64(&mut g), ArgMut::Bool(&mut b)])
        .unwrap_err();
    assert!(err.to_string().contains("%idx"), "{err}");
    // wrong output length and dtype
    let mut short = [0.0; 9];
    let err = c
        .call(&mut ws, &[ArgRef::F64(&x), ArgRef::I64(&idx), ArgRef::Bool(&flag)], &mut [ArgMut::F64(&mut s), ArgMut::F64(&mut short), ArgMut::Bool(&mut b)])
        .unwrap_err();
    assert!(matches!(err, CodegenError::ArgMismatch { what: "output", index: 1, .. }));
    let mut as_i64 = vec![0i64; 10];
    assert!(c
        .call(&mut ws, &[ArgRef::F64(&x), ArgRef::I64(&idx), ArgRef::Bool(&flag)], &mut [ArgMut::F64(&mut s), ArgMut::I64(&mut as_i64), ArgMut::Bool(&mut b)])
        .is_err());
    // wrong counts
    assert!(matches!(
        c.call(&mut ws, &[ArgRef::F64(&x)], &mut []),
        Err(CodegenError::ArgCount { what: "inputs", expected: 3, got: 1 })
    ));
    // another function's workspace
    let other = compile(&model()).unwrap();
    assert_eq!(run(&c, &mut other.workspace(), &x, &idx, &flag).unwrap_err(), CodegenError::ForeignWorkspace);
    // the log density checks its slices too
    let b = tessera_graph::GraphBuilder::new("lp");
    let t = b.input("theta", tessera_graph::DType::F64, &[3]);
    let lp = (t.square() * -0.5).sum_all();
    let mut f = LogDensityFn::from_logp(&b.finish(&[&lp]).unwrap()).unwrap();
    assert!(f.logp_grad(&[1.0, 2.0], &mut [0.0; 3]).is_err());
    assert!(f.logp_grad(&[1.0, 2.0, 3.0], &mut [0.0; 2]).is_err());
    assert!(f.logp_grad(&[1.0, 2.0, 3.0], &mut [0.0; 3]).is_ok());
}

#[test]
fn out_of_range_indices_are_run_time_errors() {
    let c = compile(&model()).unwrap();
    let (x, mut idx, flag) = model_inputs();
    let mut ws = c.workspace();
    for bad in [64, -1, i64::MAX, i64::MIN] {
        idx[3] = bad;
        let err = run(&c, &mut ws, &x, &idx, &flag).unwrap_err();
        assert!(matches!(&err, CodegenError::Runtime(m) if m.contains("gather")), "{err}");
    }
    idx[3] = 63;
    assert!(run(&c, &mut ws, &x, &idx, &flag).is_ok());
    let scatter = parse(
        "func @s(%u: f64[4], %i: i64[4]) -> f64[3] {
  %0:f64[3] = scatter_add[axis=0, size=3] %u, %i
  return %0
}",
    )
    .unwrap();
    let c = compile(&scatter).unwrap();
    let mut out = [0.0; 3];
    let mut ws = c.workspace();
    let err = c.call(&mut ws, &[ArgRef::F64(&[1.0; 4]), ArgRef::I64(&[0, 1, 3, 2])], &mut [ArgMut::F64(&mut out)]).unwrap_err();
    assert!(matches!(&err, CodegenError::Runtime(m) if m.contains("scatter_add")), "{err}");
    c.call(&mut ws, &[ArgRef::F64(&[1.0, 2.0, 3.0, 4.0]), ArgRef::I64(&[0, 1, 0, 2])], &mut [ArgMut::F64(&mut out)]).unwrap();
    assert_eq!(out, [4.0, 2.0, 4.0]);
}

/// A program split into one function per step runs its parts in order: the same results as
/// one function, and a check failing in a later part is reported as that check's error.
#[test]
fn parts_run_in_order_and_stop_at_a_failed_check() {
    let opts = CompileOptions { part_budget: 1, ..CompileOptions::default() };
    let (split, stats) = compile_with_stats(&model(), &opts).unwrap();
    assert!(stats.parts > 1, "{} parts", stats.parts);
    let whole = compile(&model()).unwrap();
    let (x, mut idx, flag) = model_inputs();
    let mut ws = split.workspace();
    assert_eq!(run(&split, &mut ws, &x, &idx, &flag).unwrap(), run(&whole, &mut whole.workspace(), &x, &idx, &flag).unwrap());
    idx[3] = 64;
    let err = run(&split, &mut ws, &x, &idx, &flag).unwrap_err();
    assert!(matches!(&err, CodegenError::Runtime(m) if m.contains("gather")), "{err}");
}

#[test]
fn workspace_contents_between_calls_do_not_matter() {
    // scatter_add and reductions must initialize what they accumulate into.
    let g = parse(
        "func @s(%u: f64[4], %m: f64[3,4]) -> (f64[3], f64[4]) {
  %0:i64[4] = const [0, 2, 2, 1]
  %1:f64[4] = exp %u
  %2:f64[3] = scatter_add[axis=0, size=3] %1, %0
  %3:f64[3] = mul %2, 2.0:f64
  %4:f64[4] = reduce_sum[axes=[0]] %m
  %5:f64[4] = mul %4, 3.0:f64
  return %3, %5
}",
    )
    .unwrap();
    let c = compile(&g).unwrap();
    let mut ws = c.workspace();
    let u = [0.1, 0.2, 0.3, 0.4];
    let m: Vec<f64> = (0..12).map(|i| i as f64).collect();
    let mut first = ([0.0; 3], [0.0; 4]);
    for call in 0..3 {
        let (mut a, mut b) = ([0.0; 3], [0.0; 4]);
        c.call(&mut ws, &[ArgRef::F64(&u), ArgRef::F64(&m)], &mut [ArgMut::F64(&mut a), ArgMut::F64(&mut b)]).unwrap();
        if call == 0 {
            first = (a, b);
        }
        assert_eq!((a, b), first);
    }
    assert_eq!(first.1, [36.0, 45.0, 54.0, 63.0]);
}

/// Resident set size in bytes (Linux), `None` elsewhere.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn dropping_frees_the_jit_memory() {
    let g = model();
    let cycle = || {
        let c = compile(&g).unwrap();
        let (x, idx, flag) = model_inputs();
        run(&c, &mut c.workspace(), &x, &idx, &flag).unwrap();
    };
    for _ in 0..100 {
        cycle();
    }
    let Some(before) = rss() else { return };
    for _ in 0..1000 {
        cycle();
    }
    let after = rss().unwrap_or(before);
    // Leaking the code pages would cost ≥ 4 KiB per module: ≥ 4 MB here.
    let growth = after.saturating_sub(before);
    assert!(growth < 1_500_000, "RSS grew by {growth} bytes over 1000 compile+drop cycles");
}
