//! NUTS sampler with adaptation, parallel chains and diagnostics; depends on no other workspace crate.
//!
//! The input is any [`LogDensity`] (a dimension and `logp_grad`); [`sample`] runs the chains
//! and returns a [`Trace`] of unconstrained draws with per-draw statistics, adaptation results
//! and timing. [`diagnostics`] computes ArviZ's convergence statistics on any quantity, and
//! [`cmdstan_csv`] writes files ArviZ's `from_cmdstan` reads.
//!
//! Layout: `density` (the trait), `settings`, `nuts` (trajectory and tree, with `kernels`
//! for its vector loops and `metric`), `adapt` (dual averaging; Stan's windowed and nutpie's
//! gradient-based diagonal mass matrix), `chain` (one chain: initialization, tuning, drawing;
//! `rng` its random stream), `run` (parallel chains, progress, cancellation), `trace`
//! (results), `diagnostics`, `cmdstan_csv`, `targets` (reference densities).
//! Measurements behind the default adaptation are in `sampler/ADAPTATION.md`.
//!
//! ```
//! use tessera_sampler::{Settings, sample, targets::IidGaussian};
//!
//! let settings = Settings { tune: 200, draws: 200, chains: 2, ..Default::default() };
//! let trace = sample(&IidGaussian::new(3), &settings)?;
//! let rows = trace.summary(&trace.default_names())?;
//! assert_eq!(rows.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adapt;
mod chain;
pub mod cmdstan_csv;
mod density;
pub mod diagnostics;
mod error;
mod kernels;
mod metric;
mod nuts;
mod rng;
mod run;
mod settings;
mod special;
pub mod targets;
mod trace;

pub use density::{LogDensity, LogpError};
pub use diagnostics::{SummaryRow, summarize};
pub use error::{BoxedLogpError, ChainError, SampleError};
pub use run::{
    CancelToken, ChainStatus, NoProgress, Progress, ProgressUpdate, sample, sample_with,
    sample_with_factory,
};
pub use settings::{Adaptation, DualAveraging, GradientAdaptation, Settings, StanAdaptation};
pub use trace::{AdaptationResult, ChainTrace, DrawStats, Timing, Trace};
