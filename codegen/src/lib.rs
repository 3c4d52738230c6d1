//! Cranelift lowering of optimized graphs to native functions (log density and gradient).
//!
//! Pipeline: [`plan`](crate::plan) turns a graph into a program of loop-nest kernels and
//! runtime calls over strided views (reshape/transpose/slice/broadcast/diag cost nothing;
//! single-use elementwise chains, gathers and `Op::Fused` bodies run inside their consumer's
//! loop; maps, whole-domain reductions and scatter-adds over one domain share one loop;
//! buffers live in one workspace planned by liveness); `emit` turns the program into one
//! Cranelift function (f64x2 inner loops with inline exp/log/log1p, register accumulators
//! and tiles for reductions, calls to registered Rust functions for the rest, dgemm for
//! matrix products); [`compile`] finalizes it into a [`Compiled`] that checks its arguments
//! and frees its code on drop. [`LogDensityFn`] specializes this to `theta → (logp, grad)`
//! for the sampler.
//!
//! Element storage: f64 and i64 as 8 bytes, bool as one byte holding 0 or 1 (Rust's `bool`),
//! all row-major.

mod compile;
mod compiled;
mod emit;
mod error;
pub mod expr;
pub mod kernel;
mod logdensity;
pub mod plan;
mod runtime;

pub use compile::{CompileOptions, CompileStats, OptLevel, compile, compile_with_stats, emit_clif};
pub use compiled::{ArgMut, ArgRef, Compiled, Workspace};
pub use error::CodegenError;
pub use logdensity::{LogDensityError, LogDensityFn};
