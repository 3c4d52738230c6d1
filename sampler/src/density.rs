//! The log-density trait the sampler draws from, and the error contract of its evaluations.

use std::convert::Infallible;

/// An error returned by a log-density evaluation.
///
/// A *recoverable* error (for example a numerical failure in a region of the parameter space
/// the model cannot evaluate) is treated like a divergence: the trajectory stops there and the
/// draw is flagged as divergent. A non-recoverable error stops the chain that hit it; the chain
/// reports the error in its [`ChainTrace`](crate::ChainTrace) while the other chains finish.
pub trait LogpError: std::error::Error + Send + Sync + 'static {
    /// Whether sampling may continue after this error (it then counts as a divergence).
    fn is_recoverable(&self) -> bool;
}

/// A differentiable log density on an unconstrained `dim()`-dimensional space.
///
/// The sampler calls [`logp_grad`](LogDensity::logp_grad) once per leapfrog step. Each chain
/// owns its own instance (see [`sample`](crate::sample)), so implementations may keep scratch
/// buffers in `&mut self`.
pub trait LogDensity {
    /// The error type of an evaluation.
    type Error: LogpError;

    /// Number of unconstrained parameters.
    fn dim(&self) -> usize;

    /// Returns `log p(x)` (up to an additive constant) and writes its gradient into `grad`.
    ///
    /// `x` and `grad` both have length [`dim`](LogDensity::dim). A non-finite return value is
    /// treated as a divergence, like a recoverable error.
    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error>;
}

/// Densities that cannot fail use `Infallible` as their error type.
impl LogpError for Infallible {
    fn is_recoverable(&self) -> bool {
        match *self {}
    }
}

impl<D: LogDensity + ?Sized> LogDensity for &mut D {
    type Error = D::Error;

    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        (**self).logp_grad(x, grad)
    }
}

impl<D: LogDensity + ?Sized> LogDensity for Box<D> {
    type Error = D::Error;

    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        (**self).logp_grad(x, grad)
    }
}
