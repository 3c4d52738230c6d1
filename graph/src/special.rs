//! Numerically careful scalar functions shared by the interpreter (and, later, codegen's runtime).

/// −1, 0 or 1 with the sign of `x`; NaN stays NaN and ±0 gives 0.
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x * 0.0 // 0 for ±0, NaN for NaN
    }
}

/// 1/(1 + e⁻ˣ), without overflow for large negative x.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + eˣ): exact for large x (returns x), uses log1p(eˣ) otherwise.
pub fn softplus(x: f64) -> f64 {
    if x > 33.3 {
        // e^-x < 2^-48: ln(1+e^x) = x + ln(1+e^-x) = x to double precision.
        x + (-x).exp()
    } else if x > -37.0 {
        x.exp().ln_1p()
    } else {
        x.exp()
    }
}

/// ln(1 − eˣ) for x ≤ 0 (Mächler's switch at −ln 2); NaN for x > 0, −inf at 0.
pub fn log1mexp(x: f64) -> f64 {
    if x > 0.0 {
        f64::NAN
    } else if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

/// ln(x/(1 − x)).
pub fn logit(x: f64) -> f64 {
    (x / (1.0 - x)).ln()
}

/// ln(eᵃ + eᵇ) without overflow; equal infinities give that infinity.
pub fn logaddexp(a: f64, b: f64) -> f64 {
    if a == b {
        // also covers ±inf == ±inf, where a - b would be NaN
        return a + std::f64::consts::LN_2;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if hi.is_nan() || lo.is_nan() {
        return f64::NAN;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// max with NaN propagation (NumPy's `maximum`).
pub fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// min with NaN propagation (NumPy's `minimum`).
pub fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

/// ln Σ exp(xᵢ) over a slice, shifted by the maximum; −inf for an empty slice.
pub fn logsumexp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, |m, x| if x > m || x.is_nan() { x } else { m });
    if max.is_nan() {
        return f64::NAN;
    }
    if max.is_infinite() {
        // all −inf gives −inf; any +inf gives +inf
        return max;
    }
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Digamma ψ(x): reflection for x < 0, recurrence up to x ≥ 10, then the asymptotic series.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    if x <= 0.0 && x == x.floor() {
        // poles at 0, −1, −2, …
        return f64::NAN;
    }
    if x < 0.0 {
        // ψ(1 − x) − ψ(x) = π cot(πx)
        let pi = std::f64::consts::PI;
        return digamma(1.0 - x) - pi / (pi * x).tan();
    }
    let mut acc = 0.0;
    let mut x = x;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // ψ(x) ~ ln x − 1/(2x) − Σ B₂ₖ/(2k x²ᵏ)
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0))))));
    acc + x.ln() - 0.5 * inv - series
}

/// The f64 → i64 conversion of `cast`: truncates toward zero; NaN and ±inf give 0 (they have
/// no integer value), finite values beyond the i64 range saturate to `i64::MIN` / `i64::MAX`.
pub fn f64_to_i64(x: f64) -> i64 {
    if x.is_finite() { x as i64 } else { 0 }
}

/// Trigamma ψ′(x) (needed by digamma's derivative): recurrence then asymptotic series.
pub fn trigamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x <= 0.0 && x == x.floor() {
        return f64::NAN;
    }
    if x < 0.0 {
        // ψ′(1 − x) + ψ′(x) = π² / sin²(πx)
        let pi = std::f64::consts::PI;
        let s = (pi * x).sin();
        return -trigamma(1.0 - x) + pi * pi / (s * s);
    }
    // Shift up to z ≥ 10, evaluate the series there, then add the recurrence terms
    // 1/(x+k)² from the smallest to the largest so the rounding errors stay at the ulp level.
    let shift = if x < 10.0 { (10.0 - x).ceil() as usize } else { 0 };
    let z = x + shift as f64;
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // ψ′(z) ~ 1/z + 1/(2z²) + Σ B₂ₖ / z²ᵏ⁺¹
    let series = inv
        * inv2
        * (1.0 / 6.0
            - inv2
                * (1.0 / 30.0
                    - inv2
                        * (1.0 / 42.0
                            - inv2 * (1.0 / 30.0 - inv2 * (5.0 / 66.0 - inv2 * (691.0 / 2730.0 - inv2 * (7.0 / 6.0)))))));
    let mut acc = series + 0.5 * inv2 + inv;
    for k in (0..shift).rev() {
        let t = x + k as f64;
        acc += 1.0 / (t * t);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_known_values() {
        // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2
        let gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + gamma).abs() < 1e-14);
        assert!((digamma(0.5) + gamma + 2.0 * std::f64::consts::LN_2).abs() < 1e-14);
        // ψ(x) ≈ −1/x − γ near 0
        let x = 1e-8;
        assert!((digamma(x) - (-1.0 / x - gamma)).abs() / (1.0 / x) < 1e-12);
        // reflection: ψ(−0.5) = ψ(1.5) + π cot(−π/2)·(−1)… known value 0.03648997397857652
        assert!((digamma(-0.5) - 0.036_489_973_978_576_52).abs() < 1e-13);
    }

    #[test]
    fn trigamma_known_values() {
        let pi2_6 = std::f64::consts::PI.powi(2) / 6.0;
        assert!((trigamma(1.0) - pi2_6).abs() < 1e-13, "{} vs {pi2_6}", trigamma(1.0));
        assert!((trigamma(0.5) - std::f64::consts::PI.powi(2) / 2.0).abs() < 1e-13);
    }

    #[test]
    fn stable_forms_at_extremes() {
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(-softplus(800.0), -800.0);
        assert_eq!(softplus(-800.0), 0.0);
        assert_eq!(logaddexp(1000.0, 1000.0), 1000.0 + std::f64::consts::LN_2);
        assert!((log1mexp(-1e-20) - (1e-20f64).ln()).abs() < 1e-12);
        assert_eq!(log1mexp(-800.0), 0.0);
        assert!(log1mexp(0.5).is_nan());
    }
}
