//! Example-level DP-SGD (Abadi et al. 2016), for cross-silo training: each
//! step clips every example's gradient to `C` and adds `N(0, (z·C)²)` to
//! their sum. The training loop lives in veil-learn; the accounting is the
//! same RDP accountant with `q = batch size / examples` (Poisson batches)
//! and one step per batch.

use rand_core::CryptoRng;

use crate::clip::clip_l2;
use crate::error::{Error, Result, check_range};
use crate::noise::gaussian;

/// Clips each row of `per_example` (one gradient per example, all of
/// length `d`) to L2 norm `clip_norm`, sums them, and adds Gaussian noise of
/// standard deviation `noise_multiplier · clip_norm` to each coordinate.
/// Returns the noisy sum (divide by the expected batch size to average).
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad clip norm or noise multiplier, or
/// non-finite gradients; [`Error::LengthMismatch`] if rows differ in length.
pub fn noisy_clipped_sum<R: CryptoRng + ?Sized>(
    per_example: &mut [Vec<f32>],
    clip_norm: f64,
    noise_multiplier: f64,
    rng: &mut R,
) -> Result<Vec<f64>> {
    let z = check_range(
        "noise-multiplier",
        noise_multiplier,
        0.0,
        f64::MAX,
        false,
        "a finite number >= 0",
    )?;
    let d = per_example.first().map_or(0, Vec::len);
    let mut sum = vec![0.0_f64; d];
    for g in per_example.iter_mut() {
        if g.len() != d {
            return Err(Error::LengthMismatch {
                expected: d,
                got: g.len(),
            });
        }
        clip_l2(g, clip_norm)?;
        for (s, x) in sum.iter_mut().zip(g.iter()) {
            *s += f64::from(*x);
        }
    }
    for (s, n) in sum.iter_mut().zip(gaussian(z * clip_norm, d, rng)?) {
        *s += n;
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    #[test]
    fn without_noise_it_is_the_sum_of_clipped_gradients() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut g = vec![vec![3.0_f32, 4.0], vec![0.3, 0.4]];
        let s = noisy_clipped_sum(&mut g, 1.0, 0.0, &mut rng).unwrap();
        assert!((s[0] - 0.9).abs() < 1e-6 && (s[1] - 1.2).abs() < 1e-6);
    }

    #[test]
    fn noise_has_the_calibrated_scale() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut g = vec![vec![0.0_f32; 50_000]];
        let s = noisy_clipped_sum(&mut g, 2.0, 1.5, &mut rng).unwrap();
        let var = s.iter().map(|x| x * x).sum::<f64>() / s.len() as f64;
        assert!((var.sqrt() - 3.0).abs() < 0.05, "{}", var.sqrt());
    }

    #[test]
    fn ragged_or_bad_input_is_refused() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        assert!(noisy_clipped_sum(&mut [vec![1.0], vec![1.0, 2.0]], 1.0, 1.0, &mut rng).is_err());
        assert!(noisy_clipped_sum(&mut [vec![f32::NAN]], 1.0, 1.0, &mut rng).is_err());
        assert!(noisy_clipped_sum(&mut [vec![1.0]], 1.0, -1.0, &mut rng).is_err());
    }
}
