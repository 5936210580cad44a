//! Calibration: the smallest noise multiplier that meets a target `(ε, δ)`.

use crate::error::{Error, Result, check_positive};
use crate::pld::PldAccountant;
use crate::rdp::{Conversion, RdpAccountant};

/// Which accountant turns a noise multiplier into `ε`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accountant {
    /// Rényi DP with this conversion to `(ε, δ)`.
    Rdp(Conversion),
    /// Privacy loss distributions ([`crate::pld`]).
    Pld,
}

impl Default for Accountant {
    fn default() -> Self {
        Self::Rdp(Conversion::Improved)
    }
}

/// `ε` after `steps` steps, by `accountant`.
///
/// # Errors
/// As [`epsilon`], and for PLD more than [`crate::pld::MAX_STEPS`] steps.
pub fn epsilon_by(
    accountant: Accountant,
    noise_multiplier: f64,
    sampling_rate: f64,
    steps: u64,
    delta: f64,
) -> Result<f64> {
    match accountant {
        Accountant::Rdp(conversion) => {
            epsilon(noise_multiplier, sampling_rate, steps, delta, conversion)
        }
        Accountant::Pld => {
            let mut acc = PldAccountant::new();
            acc.compose_subsampled_gaussian(noise_multiplier, sampling_rate, steps)?;
            acc.epsilon(delta)
        }
    }
}

/// The largest noise multiplier the search tries.
pub const MAX_NOISE_MULTIPLIER: f64 = 1e4;

/// `ε` after `steps` steps at `noise_multiplier` and `sampling_rate`.
///
/// # Errors
/// As [`RdpAccountant::compose_subsampled_gaussian`] and
/// [`RdpAccountant::epsilon`].
pub fn epsilon(
    noise_multiplier: f64,
    sampling_rate: f64,
    steps: u64,
    delta: f64,
    conversion: Conversion,
) -> Result<f64> {
    let mut acc = RdpAccountant::new();
    acc.compose_subsampled_gaussian(noise_multiplier, sampling_rate, steps)?;
    Ok(acc.epsilon(delta, conversion)?.0)
}

/// The smallest noise multiplier `σ` (to `1e-4` relative, rounded up so the
/// target is always met) with `ε(σ) <= target_epsilon` at `δ`, by bisection.
///
/// # Errors
/// [`Error::InvalidParameter`] for a target, rate, step count or `δ` out of
/// range; [`Error::CalibrationFailed`] if even [`MAX_NOISE_MULTIPLIER`] does
/// not reach the target.
pub fn noise_multiplier(
    target_epsilon: f64,
    delta: f64,
    sampling_rate: f64,
    steps: u64,
) -> Result<f64> {
    noise_multiplier_by(
        Accountant::default(),
        target_epsilon,
        delta,
        sampling_rate,
        steps,
    )
}

/// As [`noise_multiplier`], with `ε` computed by `accountant`.
///
/// # Errors
/// As [`noise_multiplier`] and [`epsilon_by`].
pub fn noise_multiplier_by(
    accountant: Accountant,
    target_epsilon: f64,
    delta: f64,
    sampling_rate: f64,
    steps: u64,
) -> Result<f64> {
    let target = check_positive("epsilon", target_epsilon)?;
    check_steps(steps)?;
    smallest_noise_multiplier(target, |s| {
        epsilon_by(accountant, s, sampling_rate, steps, delta)
    })
}

/// Refuses zero steps, naming `rounds`.
pub(crate) fn check_steps(steps: u64) -> Result<()> {
    if steps == 0 {
        return Err(Error::InvalidParameter {
            name: "rounds",
            value: 0.0,
            expected: "a whole number >= 1",
        });
    }
    Ok(())
}

/// The smallest noise multiplier `σ` in `(1e-3, MAX_NOISE_MULTIPLIER]`
/// (to `1e-4` relative, rounded up) with `eps(σ) <= target`, by doubling
/// then bisection; `eps` must not increase with `σ`.
pub(crate) fn smallest_noise_multiplier(
    target: f64,
    eps: impl Fn(f64) -> Result<f64>,
) -> Result<f64> {
    let (mut lo, mut hi) = (1e-3, 1.0);
    while eps(hi)? > target {
        lo = hi;
        hi *= 2.0;
        if hi > MAX_NOISE_MULTIPLIER {
            return Err(Error::CalibrationFailed {
                target,
                limit: MAX_NOISE_MULTIPLIER,
            });
        }
    }
    while (hi - lo) / hi > 1e-4 {
        let mid = 0.5 * (lo + hi);
        if eps(mid)? > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_meets_the_target_tightly() {
        for (target, q, steps) in [(1.0, 0.01, 1000_u64), (3.0, 0.1, 100), (8.0, 1.0, 10)] {
            let sigma = noise_multiplier(target, 1e-5, q, steps).unwrap();
            let at = epsilon(sigma, q, steps, 1e-5, Conversion::Improved).unwrap();
            let below =
                epsilon(sigma * (1.0 - 2e-4), q, steps, 1e-5, Conversion::Improved).unwrap();
            assert!(at <= target, "{at} > {target}");
            assert!(
                below > target,
                "not the smallest: {below} <= {target} at {sigma}"
            );
        }
    }

    #[test]
    fn pld_calibration_needs_less_noise_than_rdp() {
        let (q, steps) = (0.01, 1000);
        let rdp = noise_multiplier(1.0, 1e-5, q, steps).unwrap();
        let pld = noise_multiplier_by(Accountant::Pld, 1.0, 1e-5, q, steps).unwrap();
        let at = epsilon_by(Accountant::Pld, pld, q, steps, 1e-5).unwrap();
        let below = epsilon_by(Accountant::Pld, pld * (1.0 - 2e-4), q, steps, 1e-5).unwrap();
        assert!(at <= 1.0 && below > 1.0, "{pld}: {at}, {below}");
        assert!(pld < rdp, "PLD {pld} vs RDP {rdp}");
    }

    #[test]
    fn an_unreachable_target_is_reported() {
        // Even noise multiplier 10^4 spends about 5e-4 in one full-batch
        // round at delta 1e-5: a target of 1e-6 cannot be met.
        assert_eq!(
            noise_multiplier(1e-6, 1e-5, 1.0, 1),
            Err(Error::CalibrationFailed {
                target: 1e-6,
                limit: MAX_NOISE_MULTIPLIER
            })
        );
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(noise_multiplier(0.0, 1e-5, 0.1, 10).is_err());
        assert!(noise_multiplier(f64::NAN, 1e-5, 0.1, 10).is_err());
        assert!(noise_multiplier(1.0, 1e-5, 0.1, 0).is_err());
        assert!(noise_multiplier(1.0, 1e-5, 0.0, 10).is_err());
        assert!(noise_multiplier(1.0, 2.0, 0.1, 10).is_err());
    }
}
