//! Accounting for distributed noise: the sum of the clients' discrete
//! Gaussian shares (Kairouz, Liu, Steinke 2021, "The Distributed Discrete
//! Gaussian Mechanism for Federated Learning with Secure Aggregation").
//!
//! A released sum holds `n` contributions. Each is an update clipped to L2
//! norm `C`, scaled by `γ`, rounded to integers by conditional randomized
//! rounding ([`crate::quantize::quantize_bounded`]), plus `N_Z(0, σ²)` noise
//! on every one of the `d` coordinates. The sum of `n` discrete Gaussians is
//! *not* a discrete Gaussian; KLS21 bound how far it is from one:
//!
//! - **Sensitivity after rounding** (KLS21 Theorem 1 / Proposition 22, with
//!   `β = e^{-1/2}` as the paper uses): with `c = C·γ`, a rounded update has
//!   `‖x̃‖₂ <= Δ₂ = min(c + √d, √(c² + d/4 + √(2 ln(1/β))·(c + √d/2)))`.
//!   The first bound always holds; the second is enforced by re-rounding
//!   until it does. For integer vectors `‖x̃‖₁ <= ‖x̃‖₂²`, so
//!   `Δ₁ = Δ₂·min(√d, Δ₂)`.
//! - **RDP of the sum** (KLS21 Proposition 14, eq. 17): with
//!   `τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1))` and `s = √n·σ`, at order `α`
//!
//!   ```text
//!   ε(α) = min( α/2·(Δ₂/s)² + τ·d,
//!               α/2·((Δ₂/s)² + 2·(Δ₁/s)·τ + τ²·d),
//!               α/2·(Δ₂/s + τ·√d)² )
//!   ```
//!
//!   valid for `σ >= 1/2`. Extra noise from more contributors is independent
//!   of the neighbouring client's data, so a sum of more than `n` shares is at
//!   least as private (post-processing).
//! - **Amplification by sampling** is not part of a release's accounting
//!   here: the coordinator sees the cohort it samples, so against it a
//!   round is accounted as if every client were in it (`q = 1`), an upper
//!   bound for any sampling rate. The exact analysis of the
//!   Poisson-subsampled Gaussian ([`crate::rdp`]) does not carry over to
//!   this mechanism; for those who see only the released models,
//!   [`epsilon_sampled`] credits Poisson sampling by the general bound of
//!   Zhu–Wang 2019 ([`crate::subsample`]).

use crate::error::{Error, Result, check_positive, check_range};
use crate::noise::MAX_DISCRETE_SIGMA;
use crate::rdp::RdpAccountant;

/// `β` of conditional randomized rounding: `e^{-1/2}`, as in KLS21.
pub const ROUNDING_BETA: f64 = 0.606_530_659_712_633_4;

/// `√(2·ln(1/β))` for [`ROUNDING_BETA`]: exactly 1.
const ROUNDING_SLACK: f64 = 1.0;

/// The largest model dimension accounted (the protocol's limit is 2^26).
pub const MAX_DIMENSION: u64 = 1 << 32;

/// The smallest per-client `σ` KLS21 Proposition 14 covers.
pub const MIN_CLIENT_SIGMA: f64 = 0.5;

/// The L2 norm bound `Δ₂` of an update of norm at most `scaled_clip`
/// (`C·γ`, in quantised units) after conditional randomized rounding in
/// `dimension` coordinates (see the module docs).
///
/// # Errors
/// [`Error::InvalidParameter`] for a non-positive or non-finite clip, or a
/// dimension outside `1..=2^32`.
pub fn rounded_l2_bound(scaled_clip: f64, dimension: u64) -> Result<f64> {
    let c = check_positive("clip-norm × scale", scaled_clip)?;
    let d = check_dimension(dimension)?;
    let always = c + d.sqrt();
    let conditional = (c * c + d / 4.0 + ROUNDING_SLACK * (c + d.sqrt() / 2.0)).sqrt();
    Ok(always.min(conditional))
}

fn check_dimension(dimension: u64) -> Result<f64> {
    if (1..=MAX_DIMENSION).contains(&dimension) {
        Ok(dimension as f64)
    } else {
        Err(Error::InvalidParameter {
            name: "dimension",
            value: dimension as f64,
            expected: "a whole number in 1..=2^32",
        })
    }
}

/// One release of the sum of `clients` discrete-Gaussian noise shares over
/// `dimension` coordinates, each contribution of norm at most `scaled_clip`
/// before rounding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistributedDiscreteGaussian {
    client_sigma: f64,
    clients: u64,
    dimension: u64,
    l2: f64,
    tau: f64,
}

impl DistributedDiscreteGaussian {
    /// The mechanism whose `clients` shares each have discrete-Gaussian
    /// parameter `client_sigma` (quantised units).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `client_sigma` outside
    /// `[1/2, 1e6]`, zero clients, or a bad clip or dimension.
    pub fn new(client_sigma: f64, clients: u64, dimension: u64, scaled_clip: f64) -> Result<Self> {
        let sigma = check_range(
            "client-sigma",
            client_sigma,
            MIN_CLIENT_SIGMA,
            MAX_DISCRETE_SIGMA,
            false,
            "a number in [0.5, 1e6] (quantised units)",
        )?;
        if clients == 0 {
            return Err(Error::InvalidParameter {
                name: "min-survivors",
                value: 0.0,
                expected: "a whole number >= 1",
            });
        }
        let l2 = rounded_l2_bound(scaled_clip, dimension)?;
        Ok(Self {
            client_sigma: sigma,
            clients,
            dimension,
            l2,
            tau: tau(sigma, clients),
        })
    }

    /// The mechanism whose sum has noise multiplier `noise_multiplier`
    /// against the clip: each of `clients` shares has
    /// `σ = noise_multiplier · scaled_clip / √clients`.
    ///
    /// # Errors
    /// As [`Self::new`], and for a noise multiplier that is not finite and
    /// positive.
    pub fn from_noise_multiplier(
        noise_multiplier: f64,
        clients: u64,
        dimension: u64,
        scaled_clip: f64,
    ) -> Result<Self> {
        let z = check_positive("noise-multiplier", noise_multiplier)?;
        let c = check_positive("clip-norm × scale", scaled_clip)?;
        Self::new(
            crate::plan::client_sigma(z, c, clients),
            clients,
            dimension,
            c,
        )
    }

    /// Each client's `σ` (quantised units).
    #[must_use]
    pub fn client_sigma(&self) -> f64 {
        self.client_sigma
    }

    /// `Δ₂`, the L2 sensitivity after rounding.
    #[must_use]
    pub fn l2_sensitivity(&self) -> f64 {
        self.l2
    }

    /// `Δ₁ = Δ₂·min(√d, Δ₂)`.
    #[must_use]
    pub fn l1_sensitivity(&self) -> f64 {
        self.l2 * (self.dimension as f64).sqrt().min(self.l2)
    }

    /// KLS21's `τ`: how far the sum is from one discrete Gaussian.
    #[must_use]
    pub fn tau(&self) -> f64 {
        self.tau
    }

    /// The noise multiplier of the sum against the rounded sensitivity,
    /// `√n·σ / Δ₂`.
    #[must_use]
    pub fn effective_noise_multiplier(&self) -> f64 {
        (self.clients as f64).sqrt() * self.client_sigma / self.l2
    }

    /// RDP of one release at order `alpha > 1` (KLS21 Proposition 14).
    #[must_use]
    pub fn rdp(&self, alpha: f64) -> f64 {
        let s = (self.clients as f64).sqrt() * self.client_sigma;
        let d = self.dimension as f64;
        let (l2, l1, tau) = (self.l2 / s, self.l1_sensitivity() / s, self.tau);
        let half = alpha / 2.0;
        let first = half * l2 * l2 + tau * d;
        let second = half * (l2 * l2 + 2.0 * l1 * tau + tau * tau * d);
        let third = half * (l2 + d.sqrt() * tau).powi(2);
        first.min(second).min(third)
    }
}

/// `τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1))`. The terms fall with `k`
/// and all lie in `[exp(−2π²σ²), exp(−π²σ²)]`, so once the first is 0 in
/// f64 the sum is too.
fn tau(sigma: f64, clients: u64) -> f64 {
    let a = 2.0 * core::f64::consts::PI.powi(2) * sigma * sigma;
    if (-a / 2.0).exp() == 0.0 {
        return 0.0;
    }
    let mut sum = 0.0;
    for k in 1..clients {
        let k = k as f64;
        let term = (-a * k / (k + 1.0)).exp();
        sum += term;
        // The terms fall with k: past k = 10^4 every later one is taken to
        // be this one, an upper bound (and within a factor exp(a/10^4) of
        // the truth), so τ costs at most 10^4 terms.
        if k >= 1e4 {
            let rest = clients.saturating_sub(1) as f64 - k;
            sum += rest * term;
            break;
        }
    }
    10.0 * sum
}

impl RdpAccountant {
    /// Adds `steps` releases of the distributed discrete Gaussian
    /// (accounted without amplification by sampling; see
    /// [`crate::distributed`]).
    pub fn compose_distributed_discrete_gaussian(
        &mut self,
        mechanism: &DistributedDiscreteGaussian,
        steps: u64,
    ) {
        self.compose_curve(steps, |alpha| mechanism.rdp(alpha));
    }

    /// Adds `steps` releases of the distributed discrete Gaussian run on a
    /// Poisson sample of clients of rate `sampling_rate`, by the general
    /// bound of Zhu–Wang 2019 ([`crate::subsample`]); sound only against a
    /// party that does not learn the sample.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `sampling_rate` is in `(0, 1]`.
    pub fn compose_sampled_distributed_discrete_gaussian(
        &mut self,
        mechanism: &DistributedDiscreteGaussian,
        sampling_rate: f64,
        steps: u64,
    ) -> Result<()> {
        self.compose_poisson_subsampled(sampling_rate, steps, |alpha| mechanism.rdp(alpha))
    }
}

/// A distributed deployment's shape: what [`epsilon`] and
/// [`noise_multiplier`] need besides the noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deployment {
    /// Noise shares in every released sum (the fewest survivors `t`).
    pub clients: u64,
    /// The model dimension `d`.
    pub dimension: u64,
    /// The clipping norm times the quantisation scale, `C·γ`.
    pub scaled_clip: f64,
}

/// `ε` at `δ` after `rounds` releases whose sums have noise multiplier
/// `noise_multiplier` (the sum's std over `C·γ`), by RDP with the improved
/// conversion.
///
/// # Errors
/// As [`DistributedDiscreteGaussian::from_noise_multiplier`] and
/// [`RdpAccountant::epsilon`]; zero rounds.
pub fn epsilon(
    noise_multiplier: f64,
    rounds: u64,
    delta: f64,
    deployment: &Deployment,
) -> Result<f64> {
    epsilon_sampled(noise_multiplier, 1.0, rounds, delta, deployment)
}

/// As [`epsilon`], with each client in each round independently with
/// probability `sampling_rate`, credited by the general bound of Zhu–Wang
/// 2019 ([`crate::subsample`]). This holds against those who do not learn
/// who was sampled (those who see only the released models), not against
/// the coordinator that drew the cohort; `sampling_rate = 1` is
/// [`epsilon`].
///
/// # Errors
/// As [`epsilon`], and for a sampling rate outside `(0, 1]`.
pub fn epsilon_sampled(
    noise_multiplier: f64,
    sampling_rate: f64,
    rounds: u64,
    delta: f64,
    deployment: &Deployment,
) -> Result<f64> {
    crate::calibrate::check_steps(rounds)?;
    let m = DistributedDiscreteGaussian::from_noise_multiplier(
        noise_multiplier,
        deployment.clients,
        deployment.dimension,
        deployment.scaled_clip,
    )?;
    let mut acc = RdpAccountant::new();
    acc.compose_sampled_distributed_discrete_gaussian(&m, sampling_rate, rounds)?;
    Ok(acc.epsilon(delta, crate::rdp::Conversion::Improved)?.0)
}

/// The smallest noise multiplier of the sum (to `1e-4` relative, rounded
/// up) whose distributed discrete Gaussian meets `(target_epsilon, δ)` after
/// `rounds` releases. Multipliers that would give a client `σ < 1/2`
/// count as not meeting the target.
///
/// # Errors
/// As [`epsilon`]; [`Error::CalibrationFailed`] if no multiplier up to
/// [`crate::calibrate::MAX_NOISE_MULTIPLIER`] reaches the target.
pub fn noise_multiplier(
    target_epsilon: f64,
    delta: f64,
    rounds: u64,
    deployment: &Deployment,
) -> Result<f64> {
    let target = check_positive("epsilon", target_epsilon)?;
    crate::calibrate::check_steps(rounds)?;
    check_range("delta", delta, 0.0, 1.0, true, "a number in (0, 1)")?;
    // Surfaces a bad deployment before the search.
    rounded_l2_bound(deployment.scaled_clip, deployment.dimension)?;
    if deployment.clients == 0 {
        return Err(Error::InvalidParameter {
            name: "min-survivors",
            value: 0.0,
            expected: "a whole number >= 1",
        });
    }
    let floor = MIN_CLIENT_SIGMA * (deployment.clients as f64).sqrt() / deployment.scaled_clip;
    crate::calibrate::smallest_noise_multiplier(target, |z| {
        if z < floor {
            return Ok(f64::INFINITY);
        }
        epsilon(z, rounds, delta, deployment)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rdp::{Conversion, subsampled_gaussian_rdp};

    #[test]
    fn beta_is_exp_minus_one_half() {
        assert!((ROUNDING_BETA - (-0.5_f64).exp()).abs() < 1e-16);
        assert!(((2.0 * (1.0 / ROUNDING_BETA).ln()).sqrt() - ROUNDING_SLACK).abs() < 1e-15);
    }

    #[test]
    fn the_rounding_bound_is_kls21s() {
        // d large against c: the conditional bound wins.
        let (c, d) = (100.0_f64, 10_000_u64);
        let b = rounded_l2_bound(c, d).unwrap();
        let conditional = (c * c + 2500.0 + (c + 50.0)).sqrt();
        assert!((b - conditional).abs() < 1e-12 && b < c + 100.0);
        // With β = e^{-1/2} the conditional bound is below c + √d for every
        // d >= 1 (2c√d + 3d/4 > c + √d/2); one coordinate for example:
        assert!((rounded_l2_bound(0.5, 1).unwrap() - 1.5_f64.sqrt()).abs() < 1e-12);
        assert!(rounded_l2_bound(0.0, 10).is_err());
        assert!(rounded_l2_bound(1.0, 0).is_err());
        assert!(rounded_l2_bound(f64::NAN, 10).is_err());
    }

    #[test]
    fn with_large_sigma_it_is_the_gaussian_of_the_rounded_sensitivity() {
        // σ = 50 per client: τ underflows to 0, and the RDP is exactly that
        // of a Gaussian of std √n·σ and sensitivity Δ₂.
        let m = DistributedDiscreteGaussian::new(50.0, 20, 1000, 400.0).unwrap();
        assert_eq!(m.tau(), 0.0);
        let z = m.effective_noise_multiplier();
        for alpha in [1.5, 2.0, 10.0, 128.0] {
            let gauss = subsampled_gaussian_rdp(1.0, z, alpha);
            assert!((m.rdp(alpha) - gauss).abs() <= 1e-12 * gauss, "{alpha}");
        }
    }

    #[test]
    fn tau_for_many_clients_is_bounded_above_cheaply() {
        let sigma = 0.5_f64;
        let a = 2.0 * core::f64::consts::PI.powi(2) * sigma * sigma;
        let n = 50_000_u64;
        let direct: f64 = (1..n)
            .map(|k| (-a * k as f64 / (k as f64 + 1.0)).exp())
            .sum();
        let fast = DistributedDiscreteGaussian::new(sigma, n, 10, 10.0)
            .unwrap()
            .tau();
        assert!(
            fast >= 10.0 * direct && fast <= 10.0 * direct * (1.0 + 1e-3),
            "{fast}"
        );
    }

    #[test]
    fn tau_matches_the_direct_sum_and_hurts_small_sigma() {
        let sigma = 0.6_f64;
        let a = 2.0 * core::f64::consts::PI.powi(2) * sigma * sigma;
        let direct: f64 = (1..5)
            .map(|k| (-a * k as f64 / (k as f64 + 1.0)).exp())
            .sum();
        let m = DistributedDiscreteGaussian::new(sigma, 5, 100, 10.0).unwrap();
        assert!((m.tau() - 10.0 * direct).abs() < 1e-15);
        // A small σ pays for τ: more RDP than the Gaussian of the same std.
        let gauss = subsampled_gaussian_rdp(1.0, m.effective_noise_multiplier(), 2.0);
        assert!(m.rdp(2.0) > gauss);
    }

    #[test]
    fn rounding_costs_privacy_at_a_coarse_scale() {
        // The same noise multiplier against the clip, at two scales: at a
        // coarse scale rounding inflates Δ₂ and ε grows.
        let eps = |scaled_clip: f64| {
            let m =
                DistributedDiscreteGaussian::from_noise_multiplier(1.0, 10, 100_000, scaled_clip)
                    .unwrap();
            let mut acc = RdpAccountant::new();
            acc.compose_distributed_discrete_gaussian(&m, 100);
            acc.epsilon(1e-5, Conversion::Improved).unwrap().0
        };
        let (fine, coarse) = (eps(1e5), eps(100.0));
        let mut gauss = RdpAccountant::new();
        gauss.compose_subsampled_gaussian(1.0, 1.0, 100).unwrap();
        let exact = gauss.epsilon(1e-5, Conversion::Improved).unwrap().0;
        assert!(fine >= exact && fine < exact * 1.01, "{fine} vs {exact}");
        assert!(coarse > 2.0 * fine, "{coarse} vs {fine}");
    }

    #[test]
    fn calibration_meets_the_target_and_needs_more_noise_than_the_gaussian() {
        let deployment = Deployment {
            clients: 20,
            dimension: 100_000,
            scaled_clip: 2000.0,
        };
        let z = noise_multiplier(3.0, 1e-5, 100, &deployment).unwrap();
        let at = epsilon(z, 100, 1e-5, &deployment).unwrap();
        let below = epsilon(z * (1.0 - 2e-4), 100, 1e-5, &deployment).unwrap();
        assert!(at <= 3.0 && below > 3.0, "{z}: {at}, {below}");
        let gauss = crate::calibrate::noise_multiplier(3.0, 1e-5, 1.0, 100).unwrap();
        // Δ₂ ≈ 2000·(1 + 1.6e-3) here: a little more noise than the Gaussian.
        assert!(z > gauss && z < gauss * 1.01, "{z} vs {gauss}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let ok = Deployment {
            clients: 10,
            dimension: 10,
            scaled_clip: 100.0,
        };
        assert!(epsilon(1.0, 0, 1e-5, &ok).is_err());
        assert!(noise_multiplier(1.0, 1e-5, 0, &ok).is_err());
        assert!(noise_multiplier(1.0, 0.0, 10, &ok).is_err());
        assert!(noise_multiplier(1.0, 1e-5, 10, &Deployment { clients: 0, ..ok }).is_err());
        assert!(noise_multiplier(1.0, 1e-5, 10, &Deployment { dimension: 0, ..ok }).is_err());
        assert!(DistributedDiscreteGaussian::new(0.4, 10, 10, 1.0).is_err());
        assert!(DistributedDiscreteGaussian::new(f64::NAN, 10, 10, 1.0).is_err());
        assert!(DistributedDiscreteGaussian::new(2e6, 10, 10, 1.0).is_err());
        assert!(DistributedDiscreteGaussian::new(1.0, 0, 10, 1.0).is_err());
        assert!(DistributedDiscreteGaussian::new(1.0, 10, 0, 1.0).is_err());
        assert!(DistributedDiscreteGaussian::from_noise_multiplier(-1.0, 10, 10, 1.0).is_err());
    }
}
