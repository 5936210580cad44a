//! Noise mechanisms.
//!
//! - [`gaussian`]: continuous Gaussian noise for central or local modes,
//!   `rand_distr::Normal` over a CSPRNG passed in.
//! - [`DiscreteGaussian`]: the exact sampler of Canonne, Kamath, Steinke
//!   (2020, "The Discrete Gaussian for Differential Privacy", Algorithms 1–3)
//!   in integer arithmetic only: Bernoulli(exp(−γ)) for rational `γ` by the
//!   alternating-series method, a discrete Laplace proposal, and rejection.
//!   `σ²` is held as the rational `⌈σ²·1024⌉ / 1024`, never below the
//!   variance asked for. Used for distributed noise: each client adds a
//!   share so that the sum over any `t` survivors carries the target
//!   variance ([`crate::plan::client_sigma`]).

use rand::RngExt;
use rand_core::CryptoRng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result, check_range};

/// The largest `σ` the discrete Gaussian sampler accepts (its integer
/// arithmetic is checked to fit 128 bits up to here).
pub const MAX_DISCRETE_SIGMA: f64 = 1e6;

/// The denominator of the rational `σ²`.
const VARIANCE_DENOMINATOR: u128 = 1024;

/// `n` samples of `N(0, σ²)`.
///
/// # Errors
/// [`Error::InvalidParameter`] unless `σ` is finite and `>= 0`.
pub fn gaussian<R: CryptoRng + ?Sized>(sigma: f64, n: usize, rng: &mut R) -> Result<Vec<f64>> {
    let sigma = check_range("noise", sigma, 0.0, f64::MAX, false, "a finite number >= 0")?;
    let normal = Normal::new(0.0, sigma).map_err(|_| Error::InvalidParameter {
        name: "noise",
        value: sigma,
        expected: "a finite number >= 0",
    })?;
    Ok((0..n).map(|_| normal.sample(rng)).collect())
}

/// The discrete Gaussian `N_Z(0, σ²)`: `P[x] ∝ exp(−x²/(2σ²))` on the integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscreteGaussian {
    /// `σ² = var_num / 1024`.
    var_num: u128,
    /// The discrete Laplace scale `t = ⌊σ⌋ + 1`.
    t: u128,
}

impl DiscreteGaussian {
    /// The discrete Gaussian of variance parameter `σ²` (rounded up to a
    /// multiple of 1/1024).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `σ` is finite, positive and at
    /// most [`MAX_DISCRETE_SIGMA`].
    #[expect(
        clippy::cast_possible_truncation,
        clippy::arithmetic_side_effects,
        reason = "σ <= 1e6 is checked, so σ²·1024 < 2^41 and ⌊σ⌋ + 1 fit exactly"
    )]
    pub fn new(sigma: f64) -> Result<Self> {
        let sigma = check_range(
            "noise",
            sigma,
            0.0,
            MAX_DISCRETE_SIGMA,
            true,
            "a number in (0, 1e6]",
        )?;
        let var_num = (sigma * sigma * VARIANCE_DENOMINATOR as f64).ceil() as u128;
        let t = sigma.floor() as u128 + 1;
        Ok(Self {
            var_num: var_num.max(1),
            t,
        })
    }

    /// The variance parameter actually used (`>=` the one asked for).
    #[must_use]
    pub fn sigma_squared(&self) -> f64 {
        self.var_num as f64 / VARIANCE_DENOMINATOR as f64
    }

    /// One sample (CKS Algorithm 3).
    pub fn sample<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        let (a, b, t) = (self.var_num, VARIANCE_DENOMINATOR, self.t);
        loop {
            let y = discrete_laplace(t, rng);
            // Accept with probability exp(-(|y| - σ²/t)² / (2σ²)), where
            // σ² = a/b: the exponent is (|y|·b·t − a)² / (2·a·b·t²). For
            // σ <= 1e6 every product fits 128 bits unless |y| exceeds about
            // 10^19, an event of probability below exp(-10^13): such a
            // proposal is rejected rather than computed wrongly.
            let y_abs = u128::from(y.unsigned_abs());
            let exponent = y_abs
                .checked_mul(b)
                .and_then(|v| v.checked_mul(t))
                .map(|v| v.abs_diff(a))
                .and_then(|diff| diff.checked_mul(diff))
                .zip(
                    a.checked_mul(2)
                        .and_then(|v| v.checked_mul(b))
                        .and_then(|v| v.checked_mul(t))
                        .and_then(|v| v.checked_mul(t)),
                );
            if let Some((num, den)) = exponent
                && bernoulli_exp(num, den, rng)
            {
                return y;
            }
        }
    }

    /// `n` samples.
    pub fn sample_n<R: CryptoRng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<i64> {
        (0..n).map(|_| self.sample(rng)).collect()
    }
}

/// A uniform integer in `[0, bound)`, `bound > 0`, by rejection.
fn uniform_below<R: CryptoRng + ?Sized>(bound: u128, rng: &mut R) -> u128 {
    let Some(rejected) = u128::MAX.checked_rem(bound) else {
        return 0;
    };
    let zone = u128::MAX.wrapping_sub(rejected);
    loop {
        let v = (u128::from(rng.random::<u64>()) << 64) | u128::from(rng.random::<u64>());
        if v < zone {
            return v.checked_rem(bound).unwrap_or(0);
        }
    }
}

/// Bernoulli(n/d), `0 <= n <= d`, `d > 0`.
fn bernoulli<R: CryptoRng + ?Sized>(n: u128, d: u128, rng: &mut R) -> bool {
    uniform_below(d, rng) < n
}

/// Bernoulli(exp(−n/d)) for `n/d >= 0` (CKS Algorithm 1).
fn bernoulli_exp<R: CryptoRng + ?Sized>(n: u128, d: u128, rng: &mut R) -> bool {
    let mut n = n;
    // exp(-γ) = exp(-1)^⌊γ⌋ · exp(-(γ - ⌊γ⌋)).
    while n > d {
        if !bernoulli_exp_at_most_one(1, 1, rng) {
            return false;
        }
        n = n.saturating_sub(d);
    }
    bernoulli_exp_at_most_one(n, d, rng)
}

/// Bernoulli(exp(−n/d)) for `0 <= n/d <= 1`.
fn bernoulli_exp_at_most_one<R: CryptoRng + ?Sized>(n: u128, d: u128, rng: &mut R) -> bool {
    let mut k: u128 = 1;
    loop {
        // A ~ Bernoulli(γ / k) = Bernoulli(n / (d·k)). k passes 2^64 with
        // probability below 1/(2^64)!; d·k cannot overflow before then.
        let accept = d.checked_mul(k).is_some_and(|dk| bernoulli(n, dk, rng));
        if !accept {
            return k & 1 == 1;
        }
        k = k.saturating_add(1);
    }
}

/// The discrete Laplace distribution with scale `t` (CKS Algorithm 2):
/// `P[x] ∝ exp(−|x|/t)`.
fn discrete_laplace<R: CryptoRng + ?Sized>(t: u128, rng: &mut R) -> i64 {
    loop {
        let u = uniform_below(t, rng);
        if !bernoulli_exp(u, t, rng) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp(1, 1, rng) {
            v = v.saturating_add(1);
        }
        // An overflow needs v near 2^100, probability exp(-2^100): rejected.
        let Some(x) = t.checked_mul(v).and_then(|tv| tv.checked_add(u)) else {
            continue;
        };
        let negative = rng.random::<bool>();
        if negative && x == 0 {
            continue;
        }
        // A value beyond i64 is as improbable as the overflow above: rejected.
        let Ok(x) = i64::try_from(x) else {
            continue;
        };
        return if negative { x.wrapping_neg() } else { x };
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    /// Mean and variance of samples.
    fn moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn bernoulli_exp_has_the_right_rate() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        for (n, d) in [(1_u128, 2_u128), (3, 2), (0, 1), (5, 1)] {
            let trials = 200_000;
            let hits = (0..trials)
                .filter(|_| bernoulli_exp(n, d, &mut rng))
                .count() as f64;
            let p = (-(n as f64) / d as f64).exp();
            let sd = (p * (1.0 - p) / trials as f64).sqrt();
            assert!(
                (hits / trials as f64 - p).abs() <= 5.0 * sd + 1e-9,
                "exp(-{n}/{d})"
            );
        }
    }

    #[test]
    fn discrete_gaussian_moments_and_shape() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        for sigma in [0.7_f64, 3.0, 25.0] {
            let dg = DiscreteGaussian::new(sigma).unwrap();
            let n = 200_000;
            let xs: Vec<f64> = dg
                .sample_n(n, &mut rng)
                .into_iter()
                .map(|x| x as f64)
                .collect();
            let (mean, var) = moments(&xs);
            // The discrete Gaussian's variance is within a hair of σ² for
            // σ >= 1 (and below it for smaller σ).
            let v = dg.sigma_squared();
            assert!(
                mean.abs() < 5.0 * (v / n as f64).sqrt(),
                "sigma {sigma}: mean {mean}"
            );
            let expected_var = if sigma >= 1.0 { v } else { exact_variance(v) };
            let se = expected_var * (2.0 / n as f64).sqrt();
            assert!(
                (var - expected_var).abs() < 5.0 * se,
                "sigma {sigma}: var {var} vs {expected_var}"
            );
        }
    }

    /// The variance of N_Z(0, s²), summed directly.
    fn exact_variance(s2: f64) -> f64 {
        let (mut z, mut m2) = (0.0, 0.0);
        for x in -200_i32..=200 {
            let w = (-(f64::from(x) * f64::from(x)) / (2.0 * s2)).exp();
            z += w;
            m2 += w * f64::from(x) * f64::from(x);
        }
        m2 / z
    }

    #[test]
    fn discrete_gaussian_goodness_of_fit() {
        // Chi-squared against the exact probabilities on -8..=8, sigma = 2.
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let dg = DiscreteGaussian::new(2.0).unwrap();
        let n = 100_000;
        let mut counts = [0_u64; 17];
        let mut tail = 0_u64;
        for _ in 0..n {
            let x = dg.sample(&mut rng);
            match usize::try_from(x + 8) {
                Ok(i) if i < 17 => counts[i] += 1,
                _ => tail += 1,
            }
        }
        let z: f64 = (-200..=200)
            .map(|x: i32| (-(f64::from(x).powi(2)) / 8.0).exp())
            .sum();
        let mut chi2 = 0.0;
        for (i, c) in counts.iter().enumerate() {
            let x = i as f64 - 8.0;
            let e = n as f64 * (-(x * x) / 8.0).exp() / z;
            chi2 += (*c as f64 - e).powi(2) / e;
        }
        // 16 degrees of freedom: P[chi2 > 39.25] = 0.001.
        assert!(chi2 < 39.25, "chi2 = {chi2}");
        assert!(tail < 10, "mass beyond 4 sigma: {tail}");
    }

    #[test]
    fn gaussian_moments() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let xs = gaussian(3.0, 200_000, &mut rng).unwrap();
        let (mean, var) = moments(&xs);
        assert!(mean.abs() < 0.04);
        assert!((var - 9.0).abs() < 0.2);
    }

    #[test]
    fn parameters_are_checked() {
        assert!(DiscreteGaussian::new(0.0).is_err());
        assert!(DiscreteGaussian::new(f64::NAN).is_err());
        assert!(DiscreteGaussian::new(2e6).is_err());
        assert!(DiscreteGaussian::new(1.5).unwrap().sigma_squared() >= 2.25);
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        assert!(gaussian(-1.0, 1, &mut rng).is_err());
    }

    #[test]
    fn the_largest_sigma_does_not_overflow() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let dg = DiscreteGaussian::new(MAX_DISCRETE_SIGMA).unwrap();
        let xs: Vec<f64> = dg
            .sample_n(2000, &mut rng)
            .into_iter()
            .map(|x| x as f64)
            .collect();
        let (_, var) = moments(&xs);
        assert!((var.sqrt() / MAX_DISCRETE_SIGMA - 1.0).abs() < 0.1);
    }
}
