//! Transforms from the unconstrained space to each parameter's constrained space, with the
//! log-Jacobian the sampler's density must include.
//!
//! | transform | constrained x from unconstrained u | ln \|det J\| |
//! |---|---|---|
//! | identity | x = u | 0 |
//! | lower a | x = a + eᵘ | Σ u |
//! | upper b | x = b − eᵘ | Σ u |
//! | lower a, upper b | x = a + (b − a)·σ(u) | Σ ln(b − a) + ln σ(u) + ln σ(−u) |
//! | simplex (K) | Stan's stick-breaking, K − 1 free values | see [`Transform::Simplex`] |
//! | ordered (K) | x₀ = u₀, xₖ = xₖ₋₁ + e^{uₖ} (a cumsum) | Σₖ₌₁ uₖ |
//! | ordered, lower a | xₖ = a + Σⱼ≤ₖ e^{uⱼ} | Σ u |
//!
//! Each transform exists twice: on f64 slices (initial values, mapping reference draws to the
//! unconstrained space, tests) and as a graph builder (what the sampler runs). Tests check
//! that they agree, that they invert, and that the log-Jacobian matches finite differences.

use std::fmt;

use ndarray::{ArrayD, IxDyn};
use tessera_graph::special::softplus;
use tessera_graph::{GraphBuilder, Var};

/// A parameter's transform. Bounds are arrays broadcastable to the parameter's shape (a
/// 0-dimensional array for a scalar bound).
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    /// Unconstrained.
    Identity,
    /// x > lower.
    Lower(ArrayD<f64>),
    /// x < upper.
    Upper(ArrayD<f64>),
    /// lower < x < upper.
    LowerUpper(ArrayD<f64>, ArrayD<f64>),
    /// A vector of K non-negative values summing to 1; K − 1 unconstrained values. Stan's
    /// stick-breaking: zₖ = σ(uₖ − ln(K − 1 − k)), xₖ = zₖ·(1 − Σⱼ₍ⱼ<ₖ₎ xⱼ) for k < K − 1,
    /// the last takes the rest; ln |det J| = Σₖ ln zₖ + ln(1 − zₖ) + ln(1 − Σⱼ<ₖ xⱼ). The offset
    /// makes u = 0 the uniform simplex.
    Simplex,
    /// A strictly increasing vector.
    Ordered,
    /// A strictly increasing vector above a scalar lower bound (`ordered<lower=0>` is Stan's
    /// `positive_ordered`).
    OrderedLower(f64),
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Identity => f.write_str("identity"),
            Transform::Lower(a) => write!(f, "lower={}", show_bound(a)),
            Transform::Upper(b) => write!(f, "upper={}", show_bound(b)),
            Transform::LowerUpper(a, b) => write!(f, "lower={}, upper={}", show_bound(a), show_bound(b)),
            Transform::Simplex => f.write_str("simplex"),
            Transform::Ordered => f.write_str("ordered"),
            Transform::OrderedLower(a) => write!(f, "ordered, lower={a}"),
        }
    }
}

fn show_bound(a: &ArrayD<f64>) -> String {
    match a.ndim() {
        0 => a.iter().next().map_or_else(String::new, |v| v.to_string()),
        _ => format!("array{:?}", a.shape()),
    }
}

/// Broadcast `a` to `shape` and take its elements in row-major order.
fn expand(a: &ArrayD<f64>, shape: &[usize]) -> Result<Vec<f64>, String> {
    let view = a
        .broadcast(IxDyn(shape))
        .ok_or_else(|| format!("bound of shape {:?} does not broadcast to the parameter's shape {shape:?}", a.shape()))?;
    Ok(view.iter().copied().collect())
}

fn log_sigmoid(u: f64) -> f64 {
    -softplus(-u)
}

fn sigmoid(u: f64) -> f64 {
    tessera_graph::special::sigmoid(u)
}

/// −ln(K − 1 − k) for k = 0..K−1: the stick-breaking offsets of a K-simplex.
fn simplex_offsets(k: usize) -> Vec<f64> {
    (0..k.saturating_sub(1)).map(|i| -((k - 1 - i) as f64).ln()).collect()
}

impl Transform {
    /// Checks that the transform fits a parameter of `shape`: simplex and ordered need a
    /// vector (a simplex at least one element), bounds must broadcast, be finite and have
    /// lower < upper.
    pub fn validate(&self, shape: &[usize]) -> Result<(), String> {
        match self {
            Transform::Identity => Ok(()),
            Transform::Simplex if shape.len() != 1 => Err("a simplex must be a vector".into()),
            Transform::Simplex if shape[0] == 0 => Err("a simplex needs at least one element".into()),
            Transform::Ordered | Transform::OrderedLower(_) if shape.len() != 1 => Err("an ordered value must be a vector".into()),
            Transform::Simplex | Transform::Ordered => Ok(()),
            Transform::OrderedLower(a) => finite(&[*a], "lower"),
            Transform::Lower(a) => finite(&expand(a, shape)?, "lower"),
            Transform::Upper(b) => finite(&expand(b, shape)?, "upper"),
            Transform::LowerUpper(a, b) => {
                let (lo, hi) = (expand(a, shape)?, expand(b, shape)?);
                finite(&lo, "lower")?;
                finite(&hi, "upper")?;
                match lo.iter().zip(&hi).position(|(l, h)| l >= h) {
                    Some(i) => Err(format!("lower bound {} is not below upper bound {} (element {i})", lo[i], hi[i])),
                    None => Ok(()),
                }
            }
        }
    }

    /// The number of unconstrained values for a parameter of `shape`.
    pub fn unconstrained_size(&self, shape: &[usize]) -> usize {
        let size: usize = shape.iter().product();
        match self {
            Transform::Simplex => size.saturating_sub(1),
            _ => size,
        }
    }

    /// An open interval `(lo, hi)` holding every constrained value (for skipping support
    /// guards of densities).
    pub fn range(&self) -> (f64, f64) {
        let min = |a: &ArrayD<f64>| a.iter().copied().fold(f64::INFINITY, f64::min);
        let max = |a: &ArrayD<f64>| a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match self {
            Transform::Identity | Transform::Ordered => (f64::NEG_INFINITY, f64::INFINITY),
            Transform::Lower(a) => (min(a), f64::INFINITY),
            Transform::Upper(b) => (f64::NEG_INFINITY, max(b)),
            Transform::LowerUpper(a, b) => (min(a), max(b)),
            Transform::Simplex => (0.0, 1.0),
            Transform::OrderedLower(a) => (*a, f64::INFINITY),
        }
    }

    /// Maps unconstrained `u` to the constrained values (row-major, `shape`) and the
    /// log-Jacobian.
    pub fn constrain(&self, u: &[f64], shape: &[usize]) -> Result<(Vec<f64>, f64), String> {
        let want = self.unconstrained_size(shape);
        if u.len() != want {
            return Err(format!("expected {want} unconstrained values, got {}", u.len()));
        }
        Ok(match self {
            Transform::Identity => (u.to_vec(), 0.0),
            Transform::Lower(a) => {
                let a = expand(a, shape)?;
                (u.iter().zip(&a).map(|(u, a)| a + u.exp()).collect(), u.iter().sum())
            }
            Transform::Upper(b) => {
                let b = expand(b, shape)?;
                (u.iter().zip(&b).map(|(u, b)| b - u.exp()).collect(), u.iter().sum())
            }
            Transform::LowerUpper(a, b) => {
                let (a, b) = (expand(a, shape)?, expand(b, shape)?);
                let x = u.iter().zip(a.iter().zip(&b)).map(|(u, (a, b))| a + (b - a) * sigmoid(*u)).collect();
                let lj = u.iter().zip(a.iter().zip(&b)).map(|(u, (a, b))| (b - a).ln() + log_sigmoid(*u) + log_sigmoid(-u)).sum();
                (x, lj)
            }
            Transform::Simplex => simplex_constrain(u),
            Transform::Ordered => {
                let mut x = Vec::with_capacity(u.len());
                for (k, &uk) in u.iter().enumerate() {
                    x.push(if k == 0 { uk } else { x[k - 1] + uk.exp() });
                }
                (x, u.iter().skip(1).sum())
            }
            Transform::OrderedLower(a) => {
                let mut acc = *a;
                (u.iter().map(|uk| {
                    acc += uk.exp();
                    acc
                })
                .collect(), u.iter().sum())
            }
        })
    }

    /// Maps constrained values (row-major, `shape`) back to the unconstrained space; an error
    /// names the first value outside the constrained space.
    pub fn unconstrain(&self, x: &[f64], shape: &[usize]) -> Result<Vec<f64>, String> {
        let size: usize = shape.iter().product();
        if x.len() != size {
            return Err(format!("expected {size} constrained values, got {}", x.len()));
        }
        let outside = |i: usize, what: &str| Err(format!("value {} (element {i}) is not {what}", x[i]));
        match self {
            Transform::Identity => Ok(x.to_vec()),
            Transform::Lower(a) => {
                let a = expand(a, shape)?;
                if let Some(i) = (0..size).find(|&i| x[i].is_nan() || x[i] <= a[i]) {
                    return outside(i, &format!("above the lower bound {}", a[i]));
                }
                Ok(x.iter().zip(&a).map(|(x, a)| (x - a).ln()).collect())
            }
            Transform::Upper(b) => {
                let b = expand(b, shape)?;
                if let Some(i) = (0..size).find(|&i| x[i].is_nan() || x[i] >= b[i]) {
                    return outside(i, &format!("below the upper bound {}", b[i]));
                }
                Ok(x.iter().zip(&b).map(|(x, b)| (b - x).ln()).collect())
            }
            Transform::LowerUpper(a, b) => {
                let (a, b) = (expand(a, shape)?, expand(b, shape)?);
                if let Some(i) = (0..size).find(|&i| x[i].is_nan() || x[i] <= a[i] || x[i] >= b[i]) {
                    return outside(i, &format!("strictly between {} and {}", a[i], b[i]));
                }
                Ok((0..size).map(|i| tessera_graph::special::logit((x[i] - a[i]) / (b[i] - a[i]))).collect())
            }
            Transform::Simplex => simplex_unconstrain(x),
            Transform::Ordered | Transform::OrderedLower(_) => {
                let lower = match self {
                    Transform::OrderedLower(a) => Some(*a),
                    _ => None,
                };
                let mut u = Vec::with_capacity(size);
                for k in 0..size {
                    let prev = if k == 0 { lower } else { Some(x[k - 1]) };
                    match prev {
                        None => u.push(x[k]),
                        Some(p) if x[k] > p => u.push((x[k] - p).ln()),
                        Some(p) => return outside(k, &format!("above {p} (values must increase strictly)")),
                    }
                }
                Ok(u)
            }
        }
    }

    /// The graph form: `u` is the parameter's slice of the unconstrained vector (a vector of
    /// [`Transform::unconstrained_size`] elements); returns the constrained value of `shape`
    /// and the scalar log-Jacobian (`None` when it is identically 0).
    pub fn constrain_var(&self, b: &GraphBuilder, u: &Var, shape: &[usize]) -> Result<(Var, Option<Var>), String> {
        self.validate(shape)?;
        let size: usize = shape.iter().product();
        let shaped = || if u.dims() == shape { u.clone() } else { u.reshape(shape) };
        Ok(match self {
            Transform::Identity => (shaped(), None),
            Transform::Lower(a) => (add_bound(b, a, &shaped().exp(), 1.0), Some(u.sum_all())),
            Transform::Upper(ub) => (add_bound(b, ub, &shaped().exp(), -1.0), Some(u.sum_all())),
            Transform::LowerUpper(a, ub) => {
                let width = ub - a;
                let log_width: f64 = expand(&width.mapv(f64::ln), shape)?.iter().sum();
                let ur = shaped();
                let scaled = if width.iter().all(|w| *w == 1.0) { ur.sigmoid() } else { b.array(&width) * ur.sigmoid() };
                let x = add_bound(b, a, &scaled, 1.0);
                let lj = (ur.log_sigmoid() + (-&ur).log_sigmoid()).sum_all();
                (x, Some(if log_width == 0.0 { lj } else { lj + log_width }))
            }
            Transform::Simplex if size == 1 => (b.array(&ndarray::arr1(&[1.0])), None),
            Transform::Simplex => {
                let offsets = ndarray::Array1::from(simplex_offsets(size));
                let w = u + b.array(&offsets);
                let log_z = w.log_sigmoid();
                let log_1mz = (-&w).log_sigmoid();
                // ln of the stick left before piece k: the exclusive cumulative sum of ln(1 − z).
                let log_rest = log_1mz.cumsum(0) - &log_1mz;
                let head = (&log_rest + &log_z).exp();
                let last = log_1mz.sum_all().exp().reshape(&[1]);
                let lj = (log_z + log_1mz + log_rest).sum_all();
                (head.concatenate(&[&last], 0), Some(lj))
            }
            Transform::Ordered if size <= 1 => (shaped(), None),
            Transform::Ordered => {
                let first = u.slice(&[(Some(0), Some(1), None)]);
                let rest = u.slice(&[(Some(1), None, None)]);
                (first.concatenate(&[&rest.exp()], 0).cumsum(0), Some(rest.sum_all()))
            }
            Transform::OrderedLower(a) => {
                let x = u.exp().cumsum(0);
                (if *a == 0.0 { x } else { x + *a }, Some(u.sum_all()))
            }
        })
    }
}

/// `bound + sign · v`, leaving out a bound that is 0 everywhere.
fn add_bound(b: &GraphBuilder, bound: &ArrayD<f64>, v: &Var, sign: f64) -> Var {
    let zero = bound.iter().all(|x| *x == 0.0);
    match (zero, sign > 0.0) {
        (true, true) => v.clone(),
        (true, false) => -v,
        (false, true) => b.array(bound) + v,
        (false, false) => b.array(bound) - v,
    }
}

fn finite(values: &[f64], what: &str) -> Result<(), String> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(format!("{what} bound {v} is not finite")),
        None => Ok(()),
    }
}

fn simplex_constrain(u: &[f64]) -> (Vec<f64>, f64) {
    let k = u.len() + 1;
    let offsets = simplex_offsets(k);
    let mut x = Vec::with_capacity(k);
    let (mut log_rest, mut lj) = (0.0, 0.0);
    for (uk, off) in u.iter().zip(&offsets) {
        let w = uk + off;
        let (log_z, log_1mz) = (log_sigmoid(w), log_sigmoid(-w));
        x.push((log_rest + log_z).exp());
        lj += log_z + log_1mz + log_rest;
        log_rest += log_1mz;
    }
    x.push(log_rest.exp());
    (x, lj)
}

fn simplex_unconstrain(x: &[f64]) -> Result<Vec<f64>, String> {
    if let Some(i) = x.iter().position(|v| v.is_nan() || *v < 0.0) {
        return Err(format!("value {} (element {i}) of a simplex is negative", x[i]));
    }
    let total: f64 = x.iter().sum();
    if (total - 1.0).abs() > 1e-8 {
        return Err(format!("simplex values sum to {total}, not 1"));
    }
    let offsets = simplex_offsets(x.len());
    let mut rest = 1.0;
    let mut u = Vec::with_capacity(offsets.len());
    for (xk, off) in x.iter().zip(&offsets) {
        let z = (xk / rest).clamp(0.0, 1.0);
        u.push(tessera_graph::special::logit(z) - off);
        rest -= xk;
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_the_uniform_simplex() {
        let (x, _) = Transform::Simplex.constrain(&[0.0; 3], &[4]).unwrap();
        for v in x {
            assert!((v - 0.25).abs() < 1e-15);
        }
    }

    #[test]
    fn bounds_must_fit() {
        let t = Transform::LowerUpper(ndarray::arr0(1.0).into_dyn(), ndarray::arr0(1.0).into_dyn());
        assert!(t.validate(&[2]).unwrap_err().contains("not below"));
        assert!(Transform::Simplex.validate(&[2, 2]).is_err());
        assert!(Transform::Lower(ndarray::arr1(&[0.0, 1.0]).into_dyn()).validate(&[3]).is_err());
    }

    #[test]
    fn display_names_the_bounds() {
        let t = Transform::LowerUpper(ndarray::arr0(0.0).into_dyn(), ndarray::arr0(1.0).into_dyn());
        assert_eq!(t.to_string(), "lower=0, upper=1");
        assert_eq!(Transform::Simplex.to_string(), "simplex");
    }
}
