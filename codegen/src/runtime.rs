//! The Rust functions that compiled code calls: elementwise math (with exactly the
//! interpreter's semantics, by calling the graph crate's own scalar definitions), dense linear
//! algebra, and Cranelift's libcalls. Every symbol the emitter can reference is registered
//! with the JIT builder here, so resolution never falls back to `dlsym`.

use cranelift_codegen::ir::LibCall;
use tessera_graph::{BinaryOp, UnaryOp};

/// A parameter or result type of a registered function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// f64
    F64,
    /// i64
    I64,
    /// a pointer
    Ptr,
}

/// A registered function: its symbol name, address and signature.
pub(crate) struct Symbol {
    pub name: &'static str,
    pub addr: *const u8,
    pub params: &'static [Ty],
    pub returns: &'static [Ty],
}

const F1: &[Ty] = &[Ty::F64];
const F2: &[Ty] = &[Ty::F64, Ty::F64];

/// Declares one `extern "C"` wrapper per unary op that compiled code calls, the table from
/// op to symbol name, and the registration list.
macro_rules! unary_wrappers {
    ($($op:ident => $name:ident),* $(,)?) => {
        $(
            extern "C" fn $name(x: f64) -> f64 {
                UnaryOp::$op.eval_f64(x)
            }
        )*

        /// The symbol implementing `op`, for the ops compiled code calls.
        pub(crate) fn unary_symbol(op: UnaryOp) -> Option<&'static str> {
            match op {
                $(UnaryOp::$op => Some(stringify!($name)),)*
                _ => None,
            }
        }

        fn unary_symbols() -> Vec<Symbol> {
            vec![$(Symbol { name: stringify!($name), addr: $name as *const u8, params: F1, returns: F1 },)*]
        }
    };
}

unary_wrappers! {
    Exp => tessera_exp,
    Expm1 => tessera_expm1,
    Log => tessera_log,
    Log1p => tessera_log1p,
    Sin => tessera_sin,
    Cos => tessera_cos,
    Tan => tessera_tan,
    Tanh => tessera_tanh,
    Sigmoid => tessera_sigmoid,
    Softplus => tessera_softplus,
    LogSigmoid => tessera_log_sigmoid,
    Log1mexp => tessera_log1mexp,
    Logit => tessera_logit,
    Lgamma => tessera_lgamma,
    Digamma => tessera_digamma,
    Trigamma => tessera_trigamma,
    Erf => tessera_erf,
    Erfc => tessera_erfc,
}

extern "C" fn tessera_pow(a: f64, b: f64) -> f64 {
    BinaryOp::Pow.eval_f64(a, b)
}

extern "C" fn tessera_logaddexp(a: f64, b: f64) -> f64 {
    BinaryOp::LogAddExp.eval_f64(a, b)
}

/// The symbol implementing binary `op`, for the ops compiled code calls.
pub(crate) fn binary_symbol(op: BinaryOp) -> Option<&'static str> {
    match op {
        BinaryOp::Pow => Some("tessera_pow"),
        BinaryOp::LogAddExp => Some("tessera_logaddexp"),
        _ => None,
    }
}

// Cranelift's libcalls, used when the CPU lacks an instruction (e.g. `roundsd` without SSE4.1).
extern "C" fn tessera_libcall_floor(x: f64) -> f64 {
    x.floor()
}
extern "C" fn tessera_libcall_ceil(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn tessera_libcall_trunc(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn tessera_libcall_nearest(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn tessera_libcall_fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}
extern "C" fn tessera_libcall_floorf(x: f32) -> f32 {
    x.floor()
}
extern "C" fn tessera_libcall_ceilf(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn tessera_libcall_truncf(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn tessera_libcall_nearestf(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn tessera_libcall_fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// The libcalls compiled code may reference, with their registered implementations.
fn libcall_symbols() -> Vec<(LibCall, &'static str, *const u8)> {
    vec![
        (LibCall::FloorF64, "tessera_libcall_floor", tessera_libcall_floor as *const u8),
        (LibCall::CeilF64, "tessera_libcall_ceil", tessera_libcall_ceil as *const u8),
        (LibCall::TruncF64, "tessera_libcall_trunc", tessera_libcall_trunc as *const u8),
        (LibCall::NearestF64, "tessera_libcall_nearest", tessera_libcall_nearest as *const u8),
        (LibCall::FmaF64, "tessera_libcall_fma", tessera_libcall_fma as *const u8),
        (LibCall::FloorF32, "tessera_libcall_floorf", tessera_libcall_floorf as *const u8),
        (LibCall::CeilF32, "tessera_libcall_ceilf", tessera_libcall_ceilf as *const u8),
        (LibCall::TruncF32, "tessera_libcall_truncf", tessera_libcall_truncf as *const u8),
        (LibCall::NearestF32, "tessera_libcall_nearestf", tessera_libcall_nearestf as *const u8),
        (LibCall::FmaF32, "tessera_libcall_fmaf", tessera_libcall_fmaf as *const u8),
    ]
}

/// The symbol name of a libcall (an unregistered libcall gets a name nothing resolves, and
/// the compiler reports it as an error before finalizing).
pub(crate) fn libcall_name(call: LibCall) -> String {
    libcall_symbols()
        .into_iter()
        .find(|(c, _, _)| *c == call)
        .map_or_else(|| format!("tessera_unregistered_{call}"), |(_, name, _)| name.to_string())
}

/// Whether a libcall has a registered implementation.
pub(crate) fn libcall_registered(call: LibCall) -> bool {
    libcall_symbols().iter().any(|(c, _, _)| *c == call)
}

/// Lower Cholesky factor of the `n×n` matrix at `a` (row stride `rs`, column stride `cs`,
/// lower triangle read) into the row-major `n×n` buffer at `out`; NaN-filled when the matrix
/// is not positive definite.
///
/// # Safety
/// `a` must address every element `a[i·rs + j·cs]` for `i, j < n`, and `out` must be valid for
/// `n·n` writes and not overlap `a`.
unsafe extern "C" fn tessera_cholesky(a: *const f64, rs: i64, cs: i64, n: i64, out: *mut f64) {
    let n = n as usize;
    let at = |i: usize, j: usize| {
        // SAFETY: the planner passes a view of an n×n operand, so (i, j) < n is in bounds.
        unsafe { *a.offset(i as isize * rs as isize + j as isize * cs as isize) }
    };
    // SAFETY: `out` is the node's own row-major n×n buffer, disjoint from the operand.
    let l = unsafe { std::slice::from_raw_parts_mut(out, n * n) };
    l.fill(0.0);
    for j in 0..n {
        // Same summation order as the interpreter: the dot product first, then the subtraction.
        let pivot = at(j, j) - (0..j).map(|k| l[j * n + k] * l[j * n + k]).sum::<f64>();
        if !(pivot > 0.0 && pivot.is_finite()) {
            l.fill(f64::NAN);
            return;
        }
        let ljj = pivot.sqrt();
        l[j * n + j] = ljj;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            l[i * n + j] = (at(i, j) - dot) / ljj;
        }
    }
}

/// Solves `A X = B` for triangular `A` (`n×n`, strides `ars`, `acs`; only the `lower` or upper
/// triangle read) and `B` (`n×m`, strides `brs`, `bcs`), writing `X` (strides `ors`, `ocs`).
///
/// # Safety
/// Every pointer must address the elements its strides and extents describe; `out` must not
/// overlap `a` or `b`.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn tessera_trisolve(
    lower: i64,
    n: i64,
    m: i64,
    a: *const f64,
    ars: i64,
    acs: i64,
    b: *const f64,
    brs: i64,
    bcs: i64,
    out: *mut f64,
    ors: i64,
    ocs: i64,
) {
    let (n, m) = (n as usize, m as usize);
    // SAFETY (all three closures): indices stay below the extents the planner passed.
    let a_at = |i: usize, j: usize| unsafe { *a.offset(i as isize * ars as isize + j as isize * acs as isize) };
    let b_at = |i: usize, c: usize| unsafe { *b.offset(i as isize * brs as isize + c as isize * bcs as isize) };
    let o_ptr = |i: usize, c: usize| unsafe { out.offset(i as isize * ors as isize + c as isize * ocs as isize) };
    // Row by row, all right-hand sides at once: row i of X is B's row i minus Σ_j A[i,j]·(row j
    // of X), accumulated over j in the same order (from −0.0, as `Sum` starts) as one dot
    // product per element would, so the results are bit-identical to column-by-column
    // substitution, but the inner loop streams along rows instead of striding down columns
    // (a Gaussian process's 400×400 solves were cache-bound).
    // On the stack for the usual few right-hand sides: this runs in every logp+gradient call.
    let mut acc: smallvec::SmallVec<[f64; 16]> = smallvec::smallvec![-0.0f64; m];
    let mut solve_row = |i: usize, others: std::ops::Range<usize>| {
        acc.fill(-0.0);
        for j in others {
            let aij = a_at(i, j);
            if ocs == 1 {
                // SAFETY: row j of the output (m contiguous elements, as ocs == 1) was written
                // earlier, and `out` does not overlap `acc`.
                let xj = unsafe { std::slice::from_raw_parts(o_ptr(j, 0), m) };
                acc.iter_mut().zip(xj).for_each(|(s, &x)| *s += aij * x);
            } else {
                // SAFETY: (j, c) is inside the n×m output, written earlier.
                acc.iter_mut().enumerate().for_each(|(c, s)| *s += aij * unsafe { *o_ptr(j, c) });
            }
        }
        let aii = a_at(i, i);
        for (c, s) in acc.iter().enumerate() {
            // SAFETY: (i, c) is inside the n×m output.
            unsafe { *o_ptr(i, c) = (b_at(i, c) - s) / aii };
        }
    };
    if lower != 0 {
        (0..n).for_each(|i| solve_row(i, 0..i));
    } else {
        (0..n).rev().for_each(|i| solve_row(i, i + 1..n));
    }
}

/// `C = A·B` by `matrixmultiply::dgemm` (A `m×k`, B `k×n`, C `m×n`, general strides).
///
/// # Safety
/// The pointers must address the elements their strides and extents describe; `c` must not
/// overlap `a` or `b`.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn tessera_dgemm(
    m: i64,
    k: i64,
    n: i64,
    a: *const f64,
    rsa: i64,
    csa: i64,
    b: *const f64,
    rsb: i64,
    csb: i64,
    c: *mut f64,
    rsc: i64,
    csc: i64,
) {
    // matrixmultiply wants non-aliasing C strides; a stride over an extent of 1 is never used,
    // so give it a harmless non-zero value.
    let rsc = if m <= 1 { 1 } else { rsc };
    let csc = if n <= 1 { 1 } else { csc };
    // SAFETY: forwarded from this function's contract.
    unsafe {
        matrixmultiply::dgemm(
            m as usize,
            k as usize,
            n as usize,
            1.0,
            a,
            rsa as isize,
            csa as isize,
            b,
            rsb as isize,
            csb as isize,
            0.0,
            c,
            rsc as isize,
            csc as isize,
        );
    }
}

const CHOLESKY_PARAMS: &[Ty] = &[Ty::Ptr, Ty::I64, Ty::I64, Ty::I64, Ty::Ptr];
const SOLVE_PARAMS: &[Ty] =
    &[Ty::I64, Ty::I64, Ty::I64, Ty::Ptr, Ty::I64, Ty::I64, Ty::Ptr, Ty::I64, Ty::I64, Ty::Ptr, Ty::I64, Ty::I64];
const GEMM_PARAMS: &[Ty] =
    &[Ty::I64, Ty::I64, Ty::I64, Ty::Ptr, Ty::I64, Ty::I64, Ty::Ptr, Ty::I64, Ty::I64, Ty::Ptr, Ty::I64, Ty::I64];

/// Every function compiled code may call by name.
pub(crate) fn symbols() -> Vec<Symbol> {
    let mut all = unary_symbols();
    all.push(Symbol { name: "tessera_pow", addr: tessera_pow as *const u8, params: F2, returns: F1 });
    all.push(Symbol { name: "tessera_logaddexp", addr: tessera_logaddexp as *const u8, params: F2, returns: F1 });
    all.push(Symbol { name: "tessera_cholesky", addr: tessera_cholesky as *const u8, params: CHOLESKY_PARAMS, returns: &[] });
    all.push(Symbol { name: "tessera_trisolve", addr: tessera_trisolve as *const u8, params: SOLVE_PARAMS, returns: &[] });
    all.push(Symbol { name: "tessera_dgemm", addr: tessera_dgemm as *const u8, params: GEMM_PARAMS, returns: &[] });
    all
}

/// Registers every symbol (functions and libcalls) with a JIT builder.
pub(crate) fn register(jb: &mut cranelift_jit::JITBuilder) {
    for s in symbols() {
        jb.symbol(s.name, s.addr);
    }
    for (_, name, addr) in libcall_symbols() {
        jb.symbol(name, addr);
    }
}

/// The signature of registered function `name`.
pub(crate) fn signature_of(name: &str) -> Option<(&'static [Ty], &'static [Ty])> {
    symbols().into_iter().find(|s| s.name == name).map(|s| (s.params, s.returns))
}
