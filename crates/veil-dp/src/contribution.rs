//! One client's contribution to a distributed-DP round, and the server's
//! read-back of the sum (ARCHITECTURE "One round, as data").
//!
//! Client: clip to L2 norm `C` → quantise with scale `s` (conditional
//! randomized rounding, so the rounded norm meets the bound that
//! [`crate::distributed`] accounts) → add its share of discrete-Gaussian noise → reduce
//! modulo `2^b`. Server: the centred read-back of the masked sum, divided by
//! `s` and by the number of contributions, is the mean update.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::clip::clip_l2;
use crate::distributed::rounded_l2_bound;
use crate::error::{Error, Result, check_positive, check_range};
use crate::noise::DiscreteGaussian;
use crate::quantize::{add_noise, dequantize_sum, quantize_bounded};

/// A client's input for the ring, and the update's norm before clipping
/// (for adaptive clipping).
///
/// The input is secret until masked: it is the client's update and its
/// share of the noise, which the server must never see alone. It zeroizes
/// on drop and never prints (`Debug` shows its length only).
#[non_exhaustive]
pub struct Contribution {
    /// The quantised, noised update, each element below `2^bits`.
    pub input: Zeroizing<Vec<u64>>,
    /// The L2 norm of the update before clipping.
    pub pre_clip_norm: f64,
}

impl core::fmt::Debug for Contribution {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Contribution")
            .field(
                "input",
                &format_args!("<{} secret elements>", self.input.len()),
            )
            .field("pre_clip_norm", &self.pre_clip_norm)
            .finish()
    }
}

/// Clips `update` (in place) to `clip_norm`, quantises it with `scale` into
/// `Z_2^bits`, and adds discrete-Gaussian noise of variance
/// `noise_variance` (quantised units; `0` for none) to every coordinate.
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad clip norm, scale, `bits`, noise
/// variance, or a non-finite update.
pub fn contribute<R: CryptoRng + ?Sized>(
    update: &mut [f32],
    clip_norm: f64,
    scale: f64,
    bits: u32,
    noise_variance: f64,
    rng: &mut R,
) -> Result<Contribution> {
    let pre_clip_norm = clip_l2(update, clip_norm)?;
    let scale = check_positive("scale", scale)?;
    let l2_bound = rounded_l2_bound(clip_norm * scale, update.len() as u64)?;
    let mut input = Zeroizing::new(quantize_bounded(update, scale, bits, l2_bound, rng)?);
    let variance = check_range(
        "noise-variance",
        noise_variance,
        0.0,
        f64::MAX,
        false,
        "a finite number >= 0",
    )?;
    if variance > 0.0 {
        // This client's noise share: secret, like the input it hides.
        let noise =
            Zeroizing::new(DiscreteGaussian::new(variance.sqrt())?.sample_n(input.len(), rng));
        add_noise(&mut input, &noise, bits)?;
    }
    Ok(Contribution {
        input,
        pre_clip_norm,
    })
}

/// The mean update from the sum of `contributions` clients' inputs.
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad scale or `bits`, or no
/// contributions.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the mean update is used as f32, the model's precision"
)]
pub fn mean_update(sum: &[u64], scale: f64, bits: u32, contributions: usize) -> Result<Vec<f32>> {
    if contributions == 0 {
        return Err(Error::InvalidParameter {
            name: "contributions",
            value: 0.0,
            expected: "at least one contribution",
        });
    }
    let m = contributions as f64;
    Ok(dequantize_sum(sum, scale, bits)?
        .into_iter()
        .map(|v| (v / m) as f32)
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    #[test]
    fn the_mean_of_exact_contributions_is_exact() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let updates = [vec![0.25_f32, -0.5, 0.0], vec![-0.75, 0.25, 0.125]];
        let bits = 20;
        let mut sum = vec![0_u64; 3];
        for u in &updates {
            let mut u = u.clone();
            let c = contribute(&mut u, 10.0, 1024.0, bits, 0.0, &mut rng).unwrap();
            for (s, v) in sum.iter_mut().zip(c.input.iter()) {
                *s = (*s + v) & ((1 << bits) - 1);
            }
        }
        let mean = mean_update(&sum, 1024.0, bits, 2).unwrap();
        assert_eq!(mean, vec![-0.25, -0.125, 0.0625]);
    }

    #[test]
    fn clipping_happens_before_quantisation() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut u = vec![3.0_f32, 4.0];
        let c = contribute(&mut u, 1.0, 1000.0, 16, 0.0, &mut rng).unwrap();
        assert!((c.pre_clip_norm - 5.0).abs() < 1e-9);
        let back = dequantize_sum(&c.input, 1000.0, 16).unwrap();
        assert!((back[0] - 0.6).abs() <= 1e-3 && (back[1] - 0.8).abs() <= 1e-3);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut u = vec![1.0_f32];
        assert!(contribute(&mut u, 1.0, 10.0, 16, -1.0, &mut rng).is_err());
        assert!(contribute(&mut u, 0.0, 10.0, 16, 0.0, &mut rng).is_err());
        assert!(mean_update(&[1], 10.0, 16, 0).is_err());
    }

    #[test]
    fn a_contribution_never_prints_its_input() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut u = vec![0.25_f32, -0.5, 0.125];
        let c = contribute(&mut u, 1.0, 1000.0, 16, 4.0, &mut rng).unwrap();
        let text = format!("{c:?}");
        assert!(text.contains("<3 secret elements>"), "{text}");
        for v in c.input.iter() {
            assert!(
                !text.contains(&v.to_string()) || v.to_string().len() < 2,
                "{text}"
            );
        }
    }
}
