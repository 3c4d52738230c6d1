//! The vector loops of a leapfrog step and of the U-turn check, written so the compiler
//! vectorizes them: inputs are split into fixed-size chunks (no bounds checks in the loop) and
//! sums use independent partial sums per lane (a single accumulator serializes on the add
//! latency). The summation order is fixed, so results do not depend on the thread a chain runs
//! on.

/// Lanes of the loops with one or two sums (4 vector accumulators of two f64 on SSE2).
const LANES: usize = 8;
/// Lanes of the U-turn loop, which keeps six sums: one SSE2 register each, no spills.
const TURN_LANES: usize = 2;

/// Sums partial sums in a fixed order.
fn sum_lanes<const N: usize>(acc: [f64; N]) -> f64 {
    acc.iter().sum()
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
    let outputs = q_new.iter_mut().zip(p_new.iter_mut());
    let inputs = q.iter().zip(p).zip(grad).zip(inv_mass);
    for ((q_new, p_new), (((&q, &p), &g), &inv_m)) in outputs.zip(inputs) {
        let pi = p + half * g;
        *p_new = pi;
        *q_new = q + eps * inv_m * pi;
    }
}

/// Second half of a leapfrog step: `p += half * g`, `v = inv_mass * p`; returns `p·v`.
pub(crate) fn half_kick_with_velocity(
    p: &mut [f64],
    v: &mut [f64],
    grad: &[f64],
    inv_mass: &[f64],
    half: f64,
) -> f64 {
    let kick = |p: &mut f64, v: &mut f64, g: f64, inv_m: f64| {
        let pi = *p + half * g;
        *p = pi;
        let vi = pi * inv_m;
        *v = vi;
        pi * vi
    };
    let (p_chunks, p_rest) = p.as_chunks_mut::<LANES>();
    let (v_chunks, v_rest) = v.as_chunks_mut::<LANES>();
    let (g_chunks, g_rest) = grad.as_chunks::<LANES>();
    let (m_chunks, m_rest) = inv_mass.as_chunks::<LANES>();
    let mut acc = [0.0; LANES];
    for (((p, v), g), m) in p_chunks
        .iter_mut()
        .zip(v_chunks)
        .zip(g_chunks)
        .zip(m_chunks)
    {
        for lane in 0..LANES {
            acc[lane] += kick(&mut p[lane], &mut v[lane], g[lane], m[lane]);
        }
    }
    let mut total = sum_lanes(acc);
    for (((p, v), &g), &m) in p_rest.iter_mut().zip(v_rest).zip(g_rest).zip(m_rest) {
        total += kick(p, v, g, m);
    }
    total
}

/// Momentum `p = z * sqrt_mass` from standard normals `z` (already in `p`), velocity
/// `v = inv_mass * p`; returns `p·v`.
pub(crate) fn scale_momentum(
    p: &mut [f64],
    v: &mut [f64],
    sqrt_mass: &[f64],
    inv_mass: &[f64],
) -> f64 {
    let scale = |p: &mut f64, v: &mut f64, s: f64, inv_m: f64| {
        let pi = *p * s;
        *p = pi;
        let vi = pi * inv_m;
        *v = vi;
        pi * vi
    };
    let (p_chunks, p_rest) = p.as_chunks_mut::<LANES>();
    let (v_chunks, v_rest) = v.as_chunks_mut::<LANES>();
    let (s_chunks, s_rest) = sqrt_mass.as_chunks::<LANES>();
    let (m_chunks, m_rest) = inv_mass.as_chunks::<LANES>();
    let mut acc = [0.0; LANES];
    for (((p, v), s), m) in p_chunks
        .iter_mut()
        .zip(v_chunks)
        .zip(s_chunks)
        .zip(m_chunks)
    {
        for lane in 0..LANES {
            acc[lane] += scale(&mut p[lane], &mut v[lane], s[lane], m[lane]);
        }
    }
    let mut total = sum_lanes(acc);
    for (((p, v), &s), &m) in p_rest.iter_mut().zip(v_rest).zip(s_rest).zip(m_rest) {
        total += scale(p, v, s, m);
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

/// The six products of one coordinate (see [`turning_dots`]), in the order of its result.
#[allow(clippy::too_many_arguments)]
fn turn_terms(
    rl: f64,
    rr: f64,
    vs: f64,
    ve: f64,
    ple: f64,
    vle: f64,
    prs: f64,
    vrs: f64,
) -> [f64; 6] {
    let full = rl + rr;
    let extended_left = rl + prs;
    let extended_right = rr + ple;
    [
        full * vs,
        full * ve,
        extended_left * vs,
        extended_left * vrs,
        extended_right * vle,
        extended_right * ve,
    ]
}

/// The six dot products of the generalized U-turn criterion with Stan's extra checks:
/// `(rho_L + rho_R)` with both end velocities, `(rho_L + p_R,start)` with `v_start` and
/// `v_R,start`, and `(rho_R + p_L,end)` with `v_L,end` and `v_end`.
pub(crate) fn turning_dots(t: &TurnInputs<'_>) -> [f64; 6] {
    const L: usize = TURN_LANES;
    let (rl, rl_rest) = t.rho_left.as_chunks::<L>();
    let (rr, rr_rest) = t.rho_right.as_chunks::<L>();
    let (vs, vs_rest) = t.v_start.as_chunks::<L>();
    let (ve, ve_rest) = t.v_end.as_chunks::<L>();
    let (ple, ple_rest) = t.p_left_end.as_chunks::<L>();
    let (vle, vle_rest) = t.v_left_end.as_chunks::<L>();
    let (prs, prs_rest) = t.p_right_start.as_chunks::<L>();
    let (vrs, vrs_rest) = t.v_right_start.as_chunks::<L>();
    let chunks = rl
        .iter()
        .zip(rr)
        .zip(vs)
        .zip(ve)
        .zip(ple)
        .zip(vle)
        .zip(prs)
        .zip(vrs);
    let mut acc = [[0.0; L]; 6];
    for (((((((rl, rr), vs), ve), ple), vle), prs), vrs) in chunks {
        for lane in 0..L {
            let terms = turn_terms(
                rl[lane], rr[lane], vs[lane], ve[lane], ple[lane], vle[lane], prs[lane], vrs[lane],
            );
            for (a, term) in acc.iter_mut().zip(terms) {
                a[lane] += term;
            }
        }
    }
    let mut dots = acc.map(sum_lanes);
    let rest = rl_rest
        .iter()
        .zip(rr_rest)
        .zip(vs_rest)
        .zip(ve_rest)
        .zip(ple_rest)
        .zip(vle_rest)
        .zip(prs_rest)
        .zip(vrs_rest);
    for (((((((&rl, &rr), &vs), &ve), &ple), &vle), &prs), &vrs) in rest {
        for (d, term) in dots
            .iter_mut()
            .zip(turn_terms(rl, rr, vs, ve, ple, vle, prs, vrs))
        {
            *d += term;
        }
    }
    dots
}

/// `((a + b)·x, (a + b)·y)`: the U-turn check of two single points.
pub(crate) fn sum_dot2(a: &[f64], b: &[f64], x: &[f64], y: &[f64]) -> (f64, f64) {
    let (ac, a_rest) = a.as_chunks::<LANES>();
    let (bc, b_rest) = b.as_chunks::<LANES>();
    let (xc, x_rest) = x.as_chunks::<LANES>();
    let (yc, y_rest) = y.as_chunks::<LANES>();
    let mut acc = [[0.0; LANES]; 2];
    for (((a, b), x), y) in ac.iter().zip(bc).zip(xc).zip(yc) {
        for lane in 0..LANES {
            let s = a[lane] + b[lane];
            acc[0][lane] += s * x[lane];
            acc[1][lane] += s * y[lane];
        }
    }
    let [mut dx, mut dy] = acc.map(sum_lanes);
    for (((&a, &b), &x), &y) in a_rest.iter().zip(b_rest).zip(x_rest).zip(y_rest) {
        let s = a + b;
        dx += s * x;
        dy += s * y;
    }
    (dx, dy)
}

/// `a·b` with `LANES` partial sums.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ac, a_rest) = a.as_chunks::<LANES>();
    let (bc, b_rest) = b.as_chunks::<LANES>();
    let mut acc = [0.0; LANES];
    for (a, b) in ac.iter().zip(bc) {
        for lane in 0..LANES {
            acc[lane] += a[lane] * b[lane];
        }
    }
    let mut total = sum_lanes(acc);
    for (&a, &b) in a_rest.iter().zip(b_rest) {
        total += a * b;
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
        for n in [0, 1, 3, 4, 5, 8, 9, 17, 33] {
            let v = |k: f64| {
                (0..n)
                    .map(|i| ((i as f64 + 1.0) * k).sin())
                    .collect::<Vec<f64>>()
            };
            let (a, b, x, y) = (v(1.0), v(2.0), v(3.0), v(4.0));
            let s: Vec<f64> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
            let (dx, dy) = sum_dot2(&a, &b, &x, &y);
            assert!(
                (dx - naive_dot(&s, &x)).abs() < 1e-12 && (dy - naive_dot(&s, &y)).abs() < 1e-12
            );

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
