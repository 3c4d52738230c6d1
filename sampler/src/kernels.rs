//! The vector loops of a leapfrog step and of the U-turn check, written so the compiler
//! vectorizes them: inputs are re-sliced to one length (no bounds checks in the loop) and sums
//! use `LANES` independent accumulators (a single accumulator serializes on the add latency).
//! The summation order is fixed, so results do not depend on the thread a chain runs on.

/// Number of independent partial sums in reductions.
const LANES: usize = 4;

/// Sums the lanes of a partial-sum vector in a fixed order.
fn sum_lanes(acc: [f64; LANES]) -> f64 {
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// First half of a leapfrog step: `p' = p + half * g`, `q' = q + eps * inv_mass * p'`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn half_kick_and_drift(
    q_new: &mut [f64],
    p_new: &mut [f64],
    q: &[f64],
    p: &[f64],
    grad: &[f64],
    inv_mass: &[f64],
    half: f64,
    eps: f64,
) {
    let n = q_new.len().min(p_new.len()).min(q.len()).min(p.len()).min(grad.len()).min(inv_mass.len());
    let (q_new, p_new, q, p, grad, inv_mass) = (&mut q_new[..n], &mut p_new[..n], &q[..n], &p[..n], &grad[..n], &inv_mass[..n]);
    for i in 0..n {
        let pi = p[i] + half * grad[i];
        p_new[i] = pi;
        q_new[i] = q[i] + eps * inv_mass[i] * pi;
    }
}

/// Second half of a leapfrog step: `p += half * g`, `v = inv_mass * p`; returns `p·v`.
pub(crate) fn half_kick_with_velocity(p: &mut [f64], v: &mut [f64], grad: &[f64], inv_mass: &[f64], half: f64) -> f64 {
    let n = p.len().min(v.len()).min(grad.len()).min(inv_mass.len());
    let (p, v, grad, inv_mass) = (&mut p[..n], &mut v[..n], &grad[..n], &inv_mass[..n]);
    let mut acc = [0.0; LANES];
    let body = n - n % LANES;
    for base in (0..body).step_by(LANES) {
        for (lane, a) in acc.iter_mut().enumerate() {
            let i = base + lane;
            let pi = p[i] + half * grad[i];
            p[i] = pi;
            let vi = pi * inv_mass[i];
            v[i] = vi;
            *a += pi * vi;
        }
    }
    let mut total = sum_lanes(acc);
    for i in body..n {
        let pi = p[i] + half * grad[i];
        p[i] = pi;
        let vi = pi * inv_mass[i];
        v[i] = vi;
        total += pi * vi;
    }
    total
}

/// Momentum `p = z * sqrt_mass` from standard normals `z` (already in `p`), velocity
/// `v = inv_mass * p`; returns `p·v`.
pub(crate) fn scale_momentum(p: &mut [f64], v: &mut [f64], sqrt_mass: &[f64], inv_mass: &[f64]) -> f64 {
    let n = p.len().min(v.len()).min(sqrt_mass.len()).min(inv_mass.len());
    let (p, v, sqrt_mass, inv_mass) = (&mut p[..n], &mut v[..n], &sqrt_mass[..n], &inv_mass[..n]);
    let mut acc = [0.0; LANES];
    let body = n - n % LANES;
    for base in (0..body).step_by(LANES) {
        for (lane, a) in acc.iter_mut().enumerate() {
            let i = base + lane;
            let pi = p[i] * sqrt_mass[i];
            p[i] = pi;
            let vi = pi * inv_mass[i];
            v[i] = vi;
            *a += pi * vi;
        }
    }
    let mut total = sum_lanes(acc);
    for i in body..n {
        let pi = p[i] * sqrt_mass[i];
        p[i] = pi;
        let vi = pi * inv_mass[i];
        v[i] = vi;
        total += pi * vi;
    }
    total
}

/// The vectors of the U-turn checks when joining a left tree `L` and a right tree `R`.
pub(crate) struct TurnInputs<'a> {
    /// Momentum sum of `L`.
    pub(crate) rho_left: &'a [f64],
    /// Momentum sum of `R`.
    pub(crate) rho_right: &'a [f64],
    /// Velocity at the first point of `L`.
    pub(crate) v_start: &'a [f64],
    /// Velocity at the last point of `R`.
    pub(crate) v_end: &'a [f64],
    /// Momentum and velocity at the last point of `L`.
    pub(crate) p_left_end: &'a [f64],
    /// See `p_left_end`.
    pub(crate) v_left_end: &'a [f64],
    /// Momentum and velocity at the first point of `R`.
    pub(crate) p_right_start: &'a [f64],
    /// See `p_right_start`.
    pub(crate) v_right_start: &'a [f64],
}

/// The six dot products of the generalized U-turn criterion with Stan's extra checks:
/// `(rho_L + rho_R)` with both end velocities, `(rho_L + p_R,start)` with `v_start` and
/// `v_R,start`, and `(rho_R + p_L,end)` with `v_L,end` and `v_end`.
#[allow(clippy::needless_range_loop)] // index loops over re-sliced inputs vectorize best
pub(crate) fn turning_dots(t: &TurnInputs<'_>) -> [f64; 6] {
    let n = [t.rho_left, t.rho_right, t.v_start, t.v_end, t.p_left_end, t.v_left_end, t.p_right_start, t.v_right_start]
        .iter()
        .map(|s| s.len())
        .min()
        .unwrap_or(0);
    let (rl, rr, vs, ve) = (&t.rho_left[..n], &t.rho_right[..n], &t.v_start[..n], &t.v_end[..n]);
    let (ple, vle, prs, vrs) = (&t.p_left_end[..n], &t.v_left_end[..n], &t.p_right_start[..n], &t.v_right_start[..n]);
    let mut acc = [[0.0; LANES]; 6];
    let body = n - n % LANES;
    for base in (0..body).step_by(LANES) {
        for lane in 0..LANES {
            let i = base + lane;
            let full = rl[i] + rr[i];
            let extended_left = rl[i] + prs[i];
            let extended_right = rr[i] + ple[i];
            acc[0][lane] += full * vs[i];
            acc[1][lane] += full * ve[i];
            acc[2][lane] += extended_left * vs[i];
            acc[3][lane] += extended_left * vrs[i];
            acc[4][lane] += extended_right * vle[i];
            acc[5][lane] += extended_right * ve[i];
        }
    }
    let mut dots = acc.map(sum_lanes);
    for i in body..n {
        let full = rl[i] + rr[i];
        let extended_left = rl[i] + prs[i];
        let extended_right = rr[i] + ple[i];
        dots[0] += full * vs[i];
        dots[1] += full * ve[i];
        dots[2] += extended_left * vs[i];
        dots[3] += extended_left * vrs[i];
        dots[4] += extended_right * vle[i];
        dots[5] += extended_right * ve[i];
    }
    dots
}

/// `((a + b)·x, (a + b)·y)`: the U-turn check of two single points.
#[allow(clippy::needless_range_loop)] // index loops over re-sliced inputs vectorize best
pub(crate) fn sum_dot2(a: &[f64], b: &[f64], x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = a.len().min(b.len()).min(x.len()).min(y.len());
    let (a, b, x, y) = (&a[..n], &b[..n], &x[..n], &y[..n]);
    let mut acc = [[0.0; LANES]; 2];
    let body = n - n % LANES;
    for base in (0..body).step_by(LANES) {
        for lane in 0..LANES {
            let i = base + lane;
            let s = a[i] + b[i];
            acc[0][lane] += s * x[i];
            acc[1][lane] += s * y[i];
        }
    }
    let [mut dx, mut dy] = acc.map(sum_lanes);
    for i in body..n {
        let s = a[i] + b[i];
        dx += s * x[i];
        dy += s * y[i];
    }
    (dx, dy)
}

/// `a·b` with `LANES` partial sums.
#[allow(clippy::needless_range_loop)] // index loops over re-sliced inputs vectorize best
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; LANES];
    let body = n - n % LANES;
    for base in (0..body).step_by(LANES) {
        for lane in 0..LANES {
            acc[lane] += a[base + lane] * b[base + lane];
        }
    }
    let mut total = sum_lanes(acc);
    for i in body..n {
        total += a[i] * b[i];
    }
    total
}

/// `dst += src`.
pub(crate) fn add_assign(dst: &mut [f64], src: &[f64]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst = a + b`.
pub(crate) fn add_into(dst: &mut [f64], a: &[f64], b: &[f64]) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = x + y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn kernels_match_naive_loops_for_every_remainder() {
        for n in [0, 1, 3, 4, 5, 9, 17] {
            let v = |k: f64| (0..n).map(|i| ((i as f64 + 1.0) * k).sin()).collect::<Vec<f64>>();
            let (a, b, x, y) = (v(1.0), v(2.0), v(3.0), v(4.0));
            let s: Vec<f64> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
            let (dx, dy) = sum_dot2(&a, &b, &x, &y);
            assert!((dx - naive_dot(&s, &x)).abs() < 1e-12 && (dy - naive_dot(&s, &y)).abs() < 1e-12);

            let (mut p, mut vel) = (a.clone(), vec![0.0; n]);
            let kinetic = half_kick_with_velocity(&mut p, &mut vel, &b, &x, 0.1);
            let expected_p: Vec<f64> = a.iter().zip(&b).map(|(p, g)| p + 0.1 * g).collect();
            assert_eq!(p, expected_p);
            assert!((kinetic - naive_dot(&p, &vel)).abs() < 1e-12);

            let inputs = TurnInputs {
                rho_left: &a,
                rho_right: &b,
                v_start: &x,
                v_end: &y,
                p_left_end: &x,
                v_left_end: &a,
                p_right_start: &y,
                v_right_start: &b,
            };
            let dots = turning_dots(&inputs);
            let left_ext: Vec<f64> = a.iter().zip(&y).map(|(p, q)| p + q).collect();
            let right_ext: Vec<f64> = b.iter().zip(&x).map(|(p, q)| p + q).collect();
            let expected = [
                naive_dot(&s, &x),
                naive_dot(&s, &y),
                naive_dot(&left_ext, &x),
                naive_dot(&left_ext, &b),
                naive_dot(&right_ext, &a),
                naive_dot(&right_ext, &y),
            ];
            for (d, e) in dots.iter().zip(expected) {
                assert!((d - e).abs() < 1e-12);
            }
        }
    }
}
