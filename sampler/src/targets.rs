//! Reference log densities with known answers, for tests, benchmarks and examples.

use std::convert::Infallible;

use crate::density::LogDensity;
use crate::kernels::dot;

/// The standard normal in `dim` dimensions: `log p(x) = -|x|^2 / 2`.
#[derive(Debug, Clone)]
pub struct IidGaussian {
    dim: usize,
}

impl IidGaussian {
    /// A standard normal of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl LogDensity for IidGaussian {
    type Error = Infallible;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Infallible> {
        for (g, &xi) in grad.iter_mut().zip(x) {
            *g = -xi;
        }
        Ok(-0.5 * dot(x, x))
    }
}

/// Independent normals `x_i ~ N(0, scale_i^2)`.
#[derive(Debug, Clone)]
pub struct DiagGaussian {
    inv_var: Vec<f64>,
}

impl DiagGaussian {
    /// Independent normals with the given standard deviations.
    pub fn new(scales: &[f64]) -> Self {
        Self {
            inv_var: scales.iter().map(|s| 1.0 / (s * s)).collect(),
        }
    }

    /// The `gaussian_100d` benchmark target: `s_i = sqrt(logspace(-2, 2, 100))`, i.e. variances
    /// from 0.01 to 100 (the eigenvalues of `../shared/bench-data/gaussian_100d.json`).
    pub fn gaussian_100d_scales() -> Vec<f64> {
        (0..100)
            .map(|i| 10f64.powf(-2.0 + 4.0 * i as f64 / 99.0).sqrt())
            .collect()
    }
}

impl LogDensity for DiagGaussian {
    type Error = Infallible;

    fn dim(&self) -> usize {
        self.inv_var.len()
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Infallible> {
        let mut quad = 0.0;
        for ((g, &xi), &w) in grad.iter_mut().zip(x).zip(&self.inv_var) {
            let gi = -w * xi;
            *g = gi;
            quad -= xi * gi;
        }
        Ok(-0.5 * quad)
    }
}

/// A zero-mean Gaussian given by its dense precision matrix `P`: `log p(x) = -x'Px / 2`.
#[derive(Debug, Clone)]
pub struct DenseGaussian {
    dim: usize,
    /// Row-major precision matrix.
    precision: Vec<f64>,
}

impl DenseGaussian {
    /// A Gaussian with the given row-major precision matrix (`dim * dim` entries, symmetric
    /// positive definite; not checked).
    pub fn from_precision(dim: usize, precision: Vec<f64>) -> Option<Self> {
        (precision.len() == dim * dim).then_some(Self { dim, precision })
    }

    /// The precision matrix, row-major.
    pub fn precision(&self) -> &[f64] {
        &self.precision
    }
}

impl LogDensity for DenseGaussian {
    type Error = Infallible;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Infallible> {
        for (row, g) in self.precision.chunks_exact(self.dim).zip(grad.iter_mut()) {
            *g = -dot(row, x);
        }
        Ok(0.5 * dot(grad, x))
    }
}

/// A Gaussian with an AR(1) correlation structure and log-spaced marginal variances: a dense
/// correlated target whose covariance is known in closed form.
#[derive(Debug, Clone)]
pub struct Ar1Gaussian {
    /// The density.
    pub density: DenseGaussian,
    /// Row-major covariance matrix.
    pub covariance: Vec<f64>,
}

impl Ar1Gaussian {
    /// Marginal variances `10^linspace(-log10_var_span, log10_var_span, dim)` and correlations
    /// `rho^|i-j|` (`|rho| < 1`). `dim = 20, rho = 0.5, span = 1.25` has condition number ~930.
    pub fn new(dim: usize, rho: f64, log10_var_span: f64) -> Self {
        let scales: Vec<f64> = (0..dim)
            .map(|i| {
                let t = if dim > 1 {
                    i as f64 / (dim - 1) as f64
                } else {
                    0.5
                };
                10f64
                    .powf(-log10_var_span + 2.0 * log10_var_span * t)
                    .sqrt()
            })
            .collect();
        let mut covariance = vec![0.0; dim * dim];
        let mut precision = vec![0.0; dim * dim];
        let c = 1.0 / (1.0 - rho * rho);
        for i in 0..dim {
            for j in 0..dim {
                let lag = i.abs_diff(j) as i32;
                covariance[i * dim + j] = rho.powi(lag) * scales[i] * scales[j];
                // The inverse AR(1) correlation matrix is tridiagonal.
                let inv_corr = match lag {
                    0 if i == 0 || i == dim - 1 => c,
                    0 => c * (1.0 + rho * rho),
                    1 => -c * rho,
                    _ => 0.0,
                };
                precision[i * dim + j] = inv_corr / (scales[i] * scales[j]);
            }
        }
        Self {
            density: DenseGaussian { dim, precision },
            covariance,
        }
    }

    /// Marginal variances (the diagonal of the covariance).
    pub fn variances(&self) -> Vec<f64> {
        let dim = self.density.dim;
        (0..dim).map(|i| self.covariance[i * dim + i]).collect()
    }
}

/// Neal's funnel: `v ~ N(0, 3^2)`, `x_i ~ N(0, exp(v))` for `i = 1..dim-1`; parameters
/// ordered `(v, x_1, ..., x_{dim-1})`. Its neck makes NUTS diverge.
#[derive(Debug, Clone)]
pub struct Funnel {
    dim: usize,
}

impl Funnel {
    /// A funnel with `dim - 1` funnel coordinates (`dim >= 2`).
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl LogDensity for Funnel {
    type Error = Infallible;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp_grad(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64, Infallible> {
        let Some((&v, xs)) = x.split_first() else {
            return Ok(0.0);
        };
        let n = xs.len() as f64;
        let inv_var = (-v).exp();
        let mut sum_sq = 0.0;
        for (g, &xi) in grad[1..].iter_mut().zip(xs) {
            *g = -xi * inv_var;
            sum_sq += xi * xi;
        }
        grad[0] = -v / 9.0 - 0.5 * n + 0.5 * sum_sq * inv_var;
        Ok(-v * v / 18.0 - 0.5 * n * v - 0.5 * sum_sq * inv_var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite differences of `logp` against the analytic gradient.
    fn check_gradient<D: LogDensity>(mut density: D, x: &[f64]) {
        let mut grad = vec![0.0; x.len()];
        let Ok(_) = density.logp_grad(x, &mut grad) else {
            panic!("evaluation failed")
        };
        let mut scratch = vec![0.0; x.len()];
        for i in 0..x.len() {
            let h = 1e-6;
            let mut xp = x.to_vec();
            xp[i] += h;
            let mut xm = x.to_vec();
            xm[i] -= h;
            let (Ok(fp), Ok(fm)) = (
                density.logp_grad(&xp, &mut scratch),
                density.logp_grad(&xm, &mut scratch),
            ) else {
                panic!("evaluation failed")
            };
            let fd = (fp - fm) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                "coordinate {i}: {fd} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = [0.3, -0.7, 1.1];
        check_gradient(IidGaussian::new(3), &x);
        check_gradient(DiagGaussian::new(&[0.5, 2.0, 3.0]), &x);
        let precision = vec![2.0, 0.5, 0.1, 0.5, 1.0, 0.2, 0.1, 0.2, 3.0];
        let Some(dense) = DenseGaussian::from_precision(3, precision) else {
            panic!("shape")
        };
        check_gradient(dense, &x);
        check_gradient(Funnel::new(3), &x);
    }

    #[test]
    fn ar1_precision_inverts_the_covariance() {
        let target = Ar1Gaussian::new(6, 0.5, 1.0);
        let (cov, prec) = (&target.covariance, target.density.precision());
        for i in 0..6 {
            for j in 0..6 {
                let product: f64 = (0..6).map(|k| cov[i * 6 + k] * prec[k * 6 + j]).sum();
                let identity = if i == j { 1.0 } else { 0.0 };
                assert!((product - identity).abs() < 1e-12, "({i},{j}): {product}");
            }
        }
    }

    #[test]
    fn gaussian_100d_scales_span_variances_from_001_to_100() {
        let scales = DiagGaussian::gaussian_100d_scales();
        assert_eq!(scales.len(), 100);
        assert!((scales[0] * scales[0] - 0.01).abs() < 1e-15);
        assert!((scales[99] * scales[99] - 100.0).abs() < 1e-11);
    }
}
