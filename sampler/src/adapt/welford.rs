//! Welford's running mean and variance of vectors.

/// Running per-coordinate mean and sum of squared deviations.
#[derive(Debug, Clone)]
pub(crate) struct Welford {
    count: usize,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Welford {
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            count: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn add(&mut self, x: &[f64]) {
        self.count += 1;
        let inv_n = 1.0 / self.count as f64;
        for ((mean, m2), &xi) in self.mean.iter_mut().zip(&mut self.m2).zip(x) {
            let delta = xi - *mean;
            *mean += delta * inv_n;
            *m2 += delta * (xi - *mean);
        }
    }

    /// The sample variance (denominator `n - 1`) of every coordinate; NaN with fewer than two
    /// samples.
    pub(crate) fn variance(&self) -> impl Iterator<Item = f64> + '_ {
        let denominator = self.count as f64 - 1.0;
        self.m2.iter().map(move |m2| {
            if denominator > 0.0 {
                m2 / denominator
            } else {
                f64::NAN
            }
        })
    }

    pub(crate) fn reset(&mut self) {
        self.count = 0;
        self.mean.fill(0.0);
        self.m2.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_two_pass_variance() {
        let data = [[1.0, -2.0], [2.5, 0.0], [4.0, 7.0], [-1.0, 3.0]];
        let mut w = Welford::new(2);
        for row in &data {
            w.add(row);
        }
        for (j, var) in w.variance().enumerate() {
            let mean = data.iter().map(|r| r[j]).sum::<f64>() / 4.0;
            let expected = data.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / 3.0;
            assert!((var - expected).abs() < 1e-12);
        }
    }
}
