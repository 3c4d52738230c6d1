//! The standard normal quantile function (Wichura's AS241, accurate to about 1e-16).

/// The `p`-quantile of the standard normal; `-inf` / `+inf` at 0 / 1, NaN outside `[0, 1]`.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * central_ratio(r);
    }
    let r = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let x = if r <= 5.0 {
        intermediate_ratio(r - 1.6)
    } else {
        tail_ratio(r - 5.0)
    };
    if q < 0.0 { -x } else { x }
}

/// Horner evaluation of a polynomial with coefficients from the highest degree down.
fn horner(coefficients: &[f64], x: f64) -> f64 {
    coefficients.iter().fold(0.0, |acc, &c| acc * x + c)
}

fn central_ratio(r: f64) -> f64 {
    const NUM: [f64; 8] = [
        2509.0809287301227,
        33430.57558358813,
        67265.7709270087,
        45921.95393154987,
        13731.69376550946,
        1971.5909503065513,
        133.14166789178438,
        3.3871328727963665,
    ];
    const DEN: [f64; 8] = [
        5226.495278852854,
        28729.085735721943,
        39307.89580009271,
        21213.794301586597,
        5394.196021424751,
        687.1870074920579,
        42.31333070160091,
        1.0,
    ];
    horner(&NUM, r) / horner(&DEN, r)
}

fn intermediate_ratio(r: f64) -> f64 {
    const NUM: [f64; 8] = [
        0.0007745450142783414,
        0.022723844989269184,
        0.2417807251774506,
        1.2704582524523684,
        3.6478483247632045,
        5.769497221460691,
        4.630337846156546,
        1.4234371107496835,
    ];
    const DEN: [f64; 8] = [
        1.0507500716444169e-09,
        0.0005475938084995345,
        0.015198666563616457,
        0.14810397642748008,
        0.6897673349851,
        1.6763848301838038,
        2.053191626637759,
        1.0,
    ];
    horner(&NUM, r) / horner(&DEN, r)
}

fn tail_ratio(r: f64) -> f64 {
    const NUM: [f64; 8] = [
        2.0103343992922881e-07,
        2.7115555687434876e-05,
        0.0012426609473880784,
        0.026532189526576124,
        0.29656057182850487,
        1.7848265399172913,
        5.463784911164114,
        6.657904643501103,
    ];
    const DEN: [f64; 8] = [
        2.0442631033899397e-15,
        1.421511758316446e-07,
        1.8463183175100548e-05,
        0.0007868691311456133,
        0.014875361290850615,
        0.1369298809227358,
        0.599832206555888,
        1.0,
    ];
    horner(&NUM, r) / horner(&DEN, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_quantiles() {
        // Reference values from scipy.stats.norm.ppf.
        let cases = [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.025, -1.959_963_984_540_054),
            (0.8413447460685429, 1.0),
            (1e-10, -6.361_340_902_404_056),
            (0.999, 3.090_232_306_167_813),
            (1e-300, -37.047_096_299_361_2),
        ];
        for (p, expected) in cases {
            let x = normal_quantile(p);
            assert!(
                (x - expected).abs() <= 1e-13 * (1.0 + expected.abs()),
                "p={p}: {x} vs {expected}"
            );
        }
    }

    #[test]
    fn edges() {
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan());
        assert!(normal_quantile(f64::NAN).is_nan());
    }
}
