//! Quantisation of clipped updates to `Z_2^b` and back (Kairouz, Liu,
//! Steinke 2021, §4).
//!
//! A client maps `x` to integers by `round_stochastic(x · scale)`, an
//! unbiased stochastic rounding, adds its integer noise, and reduces modulo
//! `2^b` (two's complement). The server's sum of `m` contributions is read
//! back as the centred representative in `[−2^(b−1), 2^(b−1))` and divided
//! by `scale`. The sum is exact as long as it never leaves that interval:
//! [`plan_bits`] chooses `b` so that it does with probability at least
//! `1 − 2^-40`. [`quantize_bounded`] is the conditional variant clients use
//! (see [`crate::distributed`] for the bound it enforces).

use rand::RngExt;
use rand_core::CryptoRng;

use crate::error::{Error, Result, check_positive, check_range};

/// Quantises `x` with scale `scale`: each value becomes `floor(v)` or
/// `floor(v) + 1` (with `v = x · scale`) with the probabilities that make
/// the result unbiased, then is reduced modulo `2^bits` into a `u64`.
///
/// # Errors
/// [`Error::InvalidParameter`] for a scale that is not finite and positive,
/// `bits` outside `1..=64`, or a value of `x` whose scaled magnitude does not
/// fit in 2^62.
pub fn quantize<R: CryptoRng + ?Sized>(
    x: &[f32],
    scale: f64,
    bits: u32,
    rng: &mut R,
) -> Result<Vec<u64>> {
    let scale = check_positive("scale", scale)?;
    let mask = ring_mask(bits)?;
    let scaled = scale_all(x, scale)?;
    Ok(reduce(&round_stochastic(&scaled, rng), mask))
}

/// How many times [`quantize_bounded`] re-rounds before giving up. With the
/// bound of [`crate::distributed::rounded_l2_bound`] one rounding fails with
/// probability at most `e^{-1/2}`, so all of them fail with probability
/// below `e^{-500}`.
pub const MAX_ROUNDING_TRIES: u32 = 1000;

/// Conditional randomized rounding (Kairouz, Liu, Steinke 2021,
/// Proposition 22): as [`quantize`], but the rounding is repeated until the
/// rounded integer vector has L2 norm at most `l2_bound`, so the bound that
/// privacy accounting assumes ([`crate::distributed::rounded_l2_bound`])
/// holds for every contribution, not only with high probability.
///
/// # Errors
/// As [`quantize`]; [`Error::InvalidParameter`] for a bound that is not
/// finite and positive; [`Error::DoesNotFit`] if no rounding within
/// [`MAX_ROUNDING_TRIES`] meets the bound (an input whose norm exceeds it).
pub fn quantize_bounded<R: CryptoRng + ?Sized>(
    x: &[f32],
    scale: f64,
    bits: u32,
    l2_bound: f64,
    rng: &mut R,
) -> Result<Vec<u64>> {
    let scale = check_positive("scale", scale)?;
    let bound = check_positive("l2-bound", l2_bound)?;
    let mask = ring_mask(bits)?;
    let scaled = scale_all(x, scale)?;
    // Compared exactly: Σ q² in u128 (saturating) against ⌊bound²⌋.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive finite f64 converts to u128 saturating, which only lowers the bound"
    )]
    let limit = (bound * bound).floor() as u128;
    for _ in 0..MAX_ROUNDING_TRIES {
        let rounded = round_stochastic(&scaled, rng);
        let norm_sq = rounded.iter().fold(0_u128, |acc, q| {
            let a = u128::from(q.unsigned_abs());
            acc.saturating_add(a.saturating_mul(a))
        });
        if norm_sq <= limit {
            return Ok(reduce(&rounded, mask));
        }
    }
    Err(Error::DoesNotFit {
        what: "the rounded update keeps exceeding its L2 bound: is the update clipped?",
    })
}

/// `x · scale`, each checked to be finite and below 2^62 in magnitude.
fn scale_all(x: &[f32], scale: f64) -> Result<Vec<f64>> {
    x.iter()
        .map(|v| {
            check_range(
                "update",
                f64::from(*v) * scale,
                -(2_f64.powi(62)),
                2_f64.powi(62),
                false,
                "|value · scale| < 2^62",
            )
        })
        .collect()
}

/// Unbiased stochastic rounding of values below 2^62 in magnitude.
#[expect(
    clippy::cast_possible_truncation,
    reason = "|value| < 2^62 is checked by scale_all, so its floor fits an i64 exactly"
)]
fn round_stochastic<R: CryptoRng + ?Sized>(scaled: &[f64], rng: &mut R) -> Vec<i64> {
    scaled
        .iter()
        .map(|s| {
            let floor = s.floor();
            let up = rng.random::<f64>() < s - floor;
            (floor as i64).saturating_add(i64::from(up))
        })
        .collect()
}

/// Two's complement: a negative value reduces modulo `2^bits`.
fn reduce(values: &[i64], mask: u64) -> Vec<u64> {
    values.iter().map(|q| (*q as u64) & mask).collect()
}

/// Adds integer `noise` to quantised `values`, modulo `2^bits`.
///
/// # Errors
/// [`Error::LengthMismatch`] if the lengths differ; bad `bits` as
/// [`quantize`].
pub fn add_noise(values: &mut [u64], noise: &[i64], bits: u32) -> Result<()> {
    let mask = ring_mask(bits)?;
    if values.len() != noise.len() {
        return Err(Error::LengthMismatch {
            expected: values.len(),
            got: noise.len(),
        });
    }
    for (v, n) in values.iter_mut().zip(noise) {
        *v = v.wrapping_add(*n as u64) & mask;
    }
    Ok(())
}

/// Reads a sum modulo `2^bits` back as real numbers: each element's centred
/// representative in `[−2^(bits−1), 2^(bits−1))`, divided by `scale`.
///
/// # Errors
/// As [`quantize`].
pub fn dequantize_sum(sum: &[u64], scale: f64, bits: u32) -> Result<Vec<f64>> {
    let scale = check_positive("scale", scale)?;
    let mask = ring_mask(bits)?;
    let half = 1_u128 << bits.saturating_sub(1);
    let modulus = 1_u128 << bits;
    Ok(sum
        .iter()
        .map(|v| {
            let v = u128::from(v & mask);
            let centred = if v >= half {
                -((modulus.saturating_sub(v)) as f64)
            } else {
                v as f64
            };
            centred / scale
        })
        .collect())
}

fn ring_mask(bits: u32) -> Result<u64> {
    if !(1..=64).contains(&bits) {
        return Err(Error::InvalidParameter {
            name: "bits",
            value: f64::from(bits),
            expected: "a whole number in 1..=64",
        });
    }
    Ok(u64::MAX >> 64_u32.saturating_sub(bits))
}

/// A quantisation plan: the ring width and scale for a round.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct QuantizationPlan {
    /// Bits per coordinate.
    pub bits: u32,
    /// The scale applied before rounding.
    pub scale: f64,
}

/// Chooses the ring width for `clients` contributions, each an update of L2
/// norm at most `clip_norm` quantised with `scale`, plus integer noise whose
/// sum has standard deviation at most `noise_std_sum` (in scaled units), so
/// that a coordinate of the sum stays inside `[−2^(b−1), 2^(b−1))` with
/// probability at least `1 − 2^-40`.
///
/// Bound used for one coordinate: `|Σ x_i·scale| <= clients·clip_norm·scale`
/// (each coordinate is at most the update's norm), plus `clients` for
/// rounding (each rounding moves a value by less than 1), plus `k·σ_sum`
/// noise with `k = 7.6` (a Gaussian tail `2·P[Z > 7.6] < 2^-40`; discrete
/// Gaussian and Skellam tails are no heavier at these widths).
///
/// # Errors
/// [`Error::InvalidParameter`] for non-finite or non-positive inputs;
/// [`Error::DoesNotFit`] if more than 64 bits would be needed.
#[expect(
    clippy::cast_possible_truncation,
    reason = "log2 of a finite positive f64 is below 1100 in magnitude; bits is checked <= 64"
)]
pub fn plan_bits(
    clients: u64,
    clip_norm: f64,
    scale: f64,
    noise_std_sum: f64,
) -> Result<QuantizationPlan> {
    let c = check_positive("clip-norm", clip_norm)?;
    let scale = check_positive("scale", scale)?;
    let sigma = check_range(
        "noise",
        noise_std_sum,
        0.0,
        f64::MAX,
        false,
        "a finite number >= 0",
    )?;
    let m = clients.max(1) as f64;
    let bound = m * c * scale + m + 7.6 * sigma;
    // Need 2^(b-1) > bound.
    let bits = (bound.log2().floor() as i64).saturating_add(2).max(2);
    if bits > 64 {
        return Err(Error::DoesNotFit {
            what: "the sum needs more than 64 bits per coordinate: lower the scale",
        });
    }
    Ok(QuantizationPlan {
        bits: bits as u32,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    #[test]
    fn stochastic_rounding_is_unbiased() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let x = vec![0.3_f32; 200_000];
        let q = quantize(&x, 1.0, 8, &mut rng).unwrap();
        let mean = q.iter().sum::<u64>() as f64 / q.len() as f64;
        // Bernoulli(0.3): sd of the mean = sqrt(0.21 / 2e5) ≈ 0.001.
        assert!((mean - 0.3).abs() < 0.005, "{mean}");
    }

    #[test]
    fn negative_values_wrap_and_come_back() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let q = quantize(&[-2.0, 3.0, -0.0], 4.0, 16, &mut rng).unwrap();
        assert_eq!(q, vec![65536 - 8, 12, 0]);
        assert_eq!(dequantize_sum(&q, 4.0, 16).unwrap(), vec![-2.0, 3.0, 0.0]);
    }

    #[test]
    fn plan_fits_the_worst_case() {
        let p = plan_bits(100, 1.0, 1000.0, 50.0).unwrap();
        let bound = 100.0 * 1000.0 + 100.0 + 7.6 * 50.0;
        assert!(2_f64.powi(p.bits as i32 - 1) > bound);
        assert!(2_f64.powi(p.bits as i32 - 2) <= bound, "not wasteful");
        assert!(plan_bits(100, 1.0, 1e30, 0.0).is_err());
        assert!(plan_bits(100, f64::NAN, 1.0, 0.0).is_err());
    }

    #[test]
    fn bounded_rounding_meets_its_bound_and_stays_close_to_unbiased() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        // 400 values of 0.5: a free rounding has ‖q‖² ~ Binomial(400, 1/2),
        // mean 200, sd 10. A bound of √195 needs re-rounding most times.
        let x = vec![0.5_f32; 400];
        let bound = 195_f64.sqrt();
        for _ in 0..20 {
            let q = quantize_bounded(&x, 1.0, 16, bound, &mut rng).unwrap();
            let ones = q.iter().filter(|v| **v == 1).count();
            assert!(q.iter().all(|v| *v <= 1) && ones <= 195, "{ones}");
        }
        // A bound the input itself exceeds can never be met.
        assert!(matches!(
            quantize_bounded(&[10.0], 1.0, 16, 5.0, &mut rng),
            Err(Error::DoesNotFit { .. })
        ));
        assert!(quantize_bounded(&[1.0], 1.0, 16, 0.0, &mut rng).is_err());
        assert!(quantize_bounded(&[1.0], 1.0, 16, f64::NAN, &mut rng).is_err());
    }

    #[test]
    fn a_clipped_vector_meets_the_kls21_bound_unbiased() {
        // Norm 55 against a clip of 100: the rounding meets the bound of
        // rounded_l2_bound and keeps its mean.
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let d = 10_000_usize;
        let v = 0.55_f32;
        let x = vec![v; d];
        let bound = crate::distributed::rounded_l2_bound(100.0, d as u64).unwrap();
        let q = quantize_bounded(&x, 1.0, 16, bound, &mut rng).unwrap();
        let mean = q.iter().sum::<u64>() as f64 / d as f64;
        assert!((mean - f64::from(v)).abs() < 0.01, "{mean} vs {v}");
    }

    #[test]
    fn bad_bits_and_scales_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        assert!(quantize(&[1.0], 1.0, 0, &mut rng).is_err());
        assert!(quantize(&[1.0], 1.0, 65, &mut rng).is_err());
        assert!(quantize(&[1.0], 0.0, 8, &mut rng).is_err());
        assert!(quantize(&[f32::NAN], 1.0, 8, &mut rng).is_err());
        assert!(quantize(&[f32::INFINITY], 1.0, 8, &mut rng).is_err());
    }
}
