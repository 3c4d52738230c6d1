//! The diagonal Euclidean metric: inverse mass matrix and the square root of the mass matrix.

/// A diagonal mass matrix `M`, stored as `M^-1` (for velocities) and `sqrt(M)` (for momenta).
#[derive(Debug, Clone)]
pub(crate) struct DiagMetric {
    inv_mass: Vec<f64>,
    sqrt_mass: Vec<f64>,
}

/// Bounds of an adapted inverse-mass entry; outside them the trajectory would be numerically
/// meaningless (nuts-rs uses the same limits).
pub(crate) const INV_MASS_MIN: f64 = 1e-20;
/// See [`INV_MASS_MIN`].
pub(crate) const INV_MASS_MAX: f64 = 1e20;

impl DiagMetric {
    /// The identity metric of dimension `dim`.
    pub(crate) fn identity(dim: usize) -> Self {
        Self {
            inv_mass: vec![1.0; dim],
            sqrt_mass: vec![1.0; dim],
        }
    }

    /// The inverse mass matrix diagonal.
    pub(crate) fn inv_mass(&self) -> &[f64] {
        &self.inv_mass
    }

    /// The square root of the mass matrix diagonal (the scale of the momentum draws).
    pub(crate) fn sqrt_mass(&self) -> &[f64] {
        &self.sqrt_mass
    }

    /// Sets the inverse mass matrix entry by entry; a non-finite or non-positive proposal keeps
    /// the previous entry, so one degenerate coordinate cannot poison the trajectory.
    pub(crate) fn set_inv_mass(&mut self, proposal: impl Iterator<Item = f64>) {
        for ((inv, sqrt_m), value) in self
            .inv_mass
            .iter_mut()
            .zip(&mut self.sqrt_mass)
            .zip(proposal)
        {
            if value.is_finite() && value > 0.0 {
                let clamped = value.clamp(INV_MASS_MIN, INV_MASS_MAX);
                *inv = clamped;
                *sqrt_m = clamped.recip().sqrt();
            }
        }
    }
}
