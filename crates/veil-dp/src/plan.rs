//! The privacy plan of a deployment's rounds: the one place that turns a
//! noise multiplier and the rounds' shape into each client's noise, what a
//! released round spends, and the ring width a sum needs.
//!
//! Distributed noise is sized so that any released sum of at least
//! `min_contributions` contributions carries noise of standard deviation at
//! least `z · C · γ` (noise multiplier `z`, clip norm `C`, scale `γ`): each
//! client adds a discrete Gaussian of `σ = z·C·γ / √min_contributions`
//! ([`client_sigma`]). A round is accounted as the distributed discrete
//! Gaussian of `min_contributions` such shares ([`crate::distributed`]),
//! whatever the sum holds: crediting only the fewest keeps the guarantee
//! when the rest add no noise.

use crate::error::Result;
use crate::ledger::{DistributedNoise, RoundSpend};
use crate::quantize::plan_bits;

/// Each client's discrete-Gaussian `σ` (quantised units) such that
/// `shares` of them sum to noise multiplier `noise_multiplier` against the
/// clip `scaled_clip = C·γ`: `z · C·γ / √shares`.
#[must_use]
pub fn client_sigma(noise_multiplier: f64, scaled_clip: f64, shares: u64) -> f64 {
    noise_multiplier * scaled_clip / (shares.max(1) as f64).sqrt()
}

/// The inverse of [`client_sigma`]: the noise multiplier of `shares`
/// discrete-Gaussian shares of `σ = client_sigma` against `scaled_clip`,
/// `√shares · σ / (C·γ)`.
#[must_use]
pub fn noise_multiplier_of(client_sigma: f64, scaled_clip: f64, shares: u64) -> f64 {
    (shares as f64).sqrt() * client_sigma / scaled_clip
}

/// Distributed noise and its budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseBudget {
    /// The noise multiplier `z` of a released sum.
    pub noise_multiplier: f64,
    /// `δ` of the ledger.
    pub delta: f64,
    /// The total `ε` the deployment may spend.
    pub budget: f64,
}

/// What every round of a deployment releases, from the privacy side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReleasePlan {
    /// The L2 clipping norm `C` of an update.
    pub clip_norm: f64,
    /// The quantisation scale `γ`.
    pub scale: f64,
    /// The model dimension `d`.
    pub dimension: u64,
    /// The fewest contributions a released sum may hold: the noise shares
    /// each round is credited with.
    pub min_contributions: u64,
    /// The most contributions a sum may hold (sizes the ring).
    pub max_contributions: u64,
    /// The Poisson sampling rate of clients (recorded; distributed noise is
    /// accounted without amplification by sampling).
    pub sampling_rate: f64,
    /// Distributed noise; `None` releases sums without noise.
    pub noise: Option<NoiseBudget>,
}

impl ReleasePlan {
    /// Each client's noise `σ` in quantised units (`0` without noise).
    #[must_use]
    pub fn client_sigma(&self) -> f64 {
        self.noise.map_or(0.0, |n| {
            client_sigma(
                n.noise_multiplier,
                self.clip_norm * self.scale,
                self.min_contributions,
            )
        })
    }

    /// Each client's noise variance per coordinate, quantised units.
    #[must_use]
    pub fn client_variance(&self) -> f64 {
        let s = self.client_sigma();
        s * s
    }

    /// What a released round of `contributions` spends (`None` without
    /// noise): `min_contributions` discrete-Gaussian shares.
    #[must_use]
    pub fn spend(&self, round: u64, contributions: u64) -> Option<RoundSpend> {
        self.noise?;
        Some(RoundSpend::distributed(
            round,
            DistributedNoise::new(
                self.client_sigma(),
                self.scale,
                self.dimension,
                self.min_contributions,
            ),
            self.sampling_rate,
            self.clip_norm,
            contributions,
        ))
    }

    /// The ring width: wide enough that a sum of `max_contributions`
    /// contributions, noise included, does not wrap (`1 − 2^-40`,
    /// [`plan_bits`]).
    ///
    /// # Errors
    /// [`Error::DoesNotFit`] if no width up to 64 bits is enough;
    /// [`Error::InvalidParameter`] for a bad clip or scale.
    pub fn ring_bits(&self) -> Result<u32> {
        let m = self.max_contributions.max(1);
        let noise_sd_sum = (self.client_variance() * m as f64).sqrt();
        plan_bits(m, self.clip_norm, self.scale, noise_sd_sum).map(|p| p.bits)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::float_cmp, reason = "test code")]
mod tests {
    use super::*;

    fn plan(noise_multiplier: f64, scale: f64) -> ReleasePlan {
        ReleasePlan {
            clip_norm: 1.0,
            scale,
            dimension: 1000,
            min_contributions: 4,
            max_contributions: 10,
            sampling_rate: 1.0,
            noise: Some(NoiseBudget {
                noise_multiplier,
                delta: 1e-5,
                budget: 10.0,
            }),
        }
    }

    #[test]
    fn the_client_sigma_and_its_inverse_agree() {
        let sigma = client_sigma(2.0, 1024.0, 4);
        assert_eq!(sigma, 1024.0);
        assert_eq!(noise_multiplier_of(sigma, 1024.0, 4), 2.0);
        assert_eq!(plan(2.0, 1024.0).client_variance(), 1024.0 * 1024.0);
    }

    #[test]
    fn a_round_spends_the_fewest_shares_whatever_the_sum_holds() {
        let p = plan(2.0, 1024.0);
        let (few, many) = (p.spend(1, 4).unwrap(), p.spend(1, 10).unwrap());
        assert_eq!((few.participants, many.participants), (4, 10));
        assert!((few.noise_multiplier - 2.0).abs() < 1e-12);
        assert_eq!(few.noise_multiplier, many.noise_multiplier);
        assert_eq!(many.distributed.map(|d| d.shares), Some(4));
        let none = ReleasePlan { noise: None, ..p };
        assert!(none.spend(1, 4).is_none());
        assert_eq!(none.client_variance(), 0.0);
    }

    #[test]
    fn noise_the_accountant_cannot_cover_is_refused_by_the_spend() {
        plan(1.0, 1024.0).spend(0, 4).unwrap().validate().unwrap();
        // σ per client = 1·1·0.5/√4 = 0.25 quanta: below KLS21's 1/2.
        let err = plan(1.0, 0.5).spend(0, 4).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("client-sigma"), "{err}");
    }

    #[test]
    fn the_ring_holds_the_largest_sum_and_its_noise() {
        let quiet = ReleasePlan {
            noise: None,
            ..plan(1.0, 1024.0)
        };
        // 10 contributions of norm <= 1024 quanta need 2^(b-1) > 10·1024 + 10.
        assert_eq!(quiet.ring_bits().unwrap(), 15);
        assert!(plan(1000.0, 1024.0).ring_bits().unwrap() > 15);
        let huge = ReleasePlan {
            scale: 1e30,
            ..quiet
        };
        assert!(huge.ring_bits().is_err());
    }
}
