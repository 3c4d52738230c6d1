//! Cranelift lowering of optimized graphs to native functions (log density and gradient).
//!
//! Pipeline: [`plan`](crate::plan) turns a graph into a program of loop-nest kernels and
//! runtime calls over strided views (views cost nothing, single-use elementwise chains run
//! inside their consumer's loop, buffers live in one planned workspace); `emit` turns the
//! program into one Cranelift function; [`compile`] finalizes it into a [`Compiled`] that
//! checks its arguments and frees its code on drop. [`LogDensityFn`] specializes this to
//! `theta → (logp, grad)` for the sampler.
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

pub use compile::{CompileOptions, CompileStats, OptLevel, compile, compile_with_stats};
pub use compiled::{ArgMut, ArgRef, Compiled, Workspace};
pub use error::CodegenError;
pub use logdensity::{LogDensityError, LogDensityFn};
