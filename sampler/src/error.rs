//! Errors of a sampling run (whole run) and of a single chain.

use thiserror::Error;

/// The boxed error of a log-density evaluation, kept with its source chain.
pub type BoxedLogpError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a sampling run as a whole failed.
#[derive(Debug, Error)]
pub enum SampleError {
    /// The settings are inconsistent with each other or with the density.
    #[error("invalid sampler settings: {0}")]
    InvalidSettings(String),
    /// Every chain failed; each entry is `(chain index, error)`.
    #[error("all {} chains failed; chain {}: {}", .0.len(), .0.first().map_or(0, |e| e.0), .0.first().map_or(String::new(), |e| e.1.to_string()))]
    AllChainsFailed(Vec<(usize, ChainError)>),
}

/// Why one chain stopped early. The other chains are unaffected.
#[derive(Debug, Error)]
pub enum ChainError {
    /// No random initial point had a finite log density and gradient.
    #[error(
        "no initial point with finite log density and gradient found in {attempts} attempts (last problem: {last_problem})"
    )]
    Initialization {
        /// How many points were tried.
        attempts: usize,
        /// What was wrong with the last point tried.
        last_problem: String,
    },
    /// The caller-given initial point has a non-finite log density or gradient.
    #[error("the given initial point is not usable: {0}")]
    InvalidInitialPoint(String),
    /// The log density returned a non-recoverable error.
    #[error("log density failed (non-recoverable): {0}")]
    LogDensity(BoxedLogpError),
    /// The density built for this chain has another dimension than announced.
    #[error("the density of this chain has dimension {found}, expected {expected}")]
    DimensionMismatch {
        /// The announced dimension.
        expected: usize,
        /// The instance's dimension.
        found: usize,
    },
    /// The log density (or the sampler) panicked; the message is the panic payload.
    #[error("chain panicked: {0}")]
    Panicked(String),
}
