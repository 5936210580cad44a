//! The privacy profile (hockey-stick divergence) of one step of the
//! Poisson-subsampled Gaussian mechanism, in closed form.
//!
//! With `φ_μ` the density of `N(μ, σ²)` and `M = (1 − q)·φ_0 + q·φ_1` (the
//! output when the distinguished example is sampled with probability `q`,
//! sensitivity 1), the two neighbouring relations are
//!
//! - [`Relation::Remove`]: `P = M`, `Q = φ_0`; the privacy loss
//!   `L(x) = log(1 − q + q·exp((2x − 1)/(2σ²)))` increases in `x` and is
//!   at least `log(1 − q)`;
//! - [`Relation::Add`]: `P = φ_0`, `Q = M`; `L(x)` is minus the above,
//!   decreases in `x` and is below `−log(1 − q)`.
//!
//! Because `L` is monotone, `{L > ε}` is a half-line `{x > x_ε}` (remove)
//! or `{x < x_ε}` (add), and `δ(ε) = P(L > ε) − e^ε·Q(L > ε)` is a
//! difference of normal tails. Everything is computed from `log Φ̄` so that
//! neither `e^ε` nor small tails overflow or underflow.

use core::f64::consts::{PI, SQRT_2};

/// A neighbouring relation (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    /// The distinguished example is in the first data set, not the second.
    Remove,
    /// The distinguished example is in the second data set, not the first.
    Add,
}

/// `log Φ̄(z) = log P(N(0, 1) > z)`, accurate in both tails.
pub(crate) fn log_normal_tail(z: f64) -> f64 {
    if z < 30.0 {
        (0.5 * libm::erfc(z / SQRT_2)).ln()
    } else {
        // The asymptotic series of Mills' ratio; at z >= 30 the first
        // omitted term is below 1e-13 relative.
        let r = 1.0 / (z * z);
        let series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r)));
        -0.5 * z * z - (z * (2.0 * PI).sqrt()).ln() + series.ln()
    }
}

/// `Φ̄(z)`.
fn normal_tail(z: f64) -> f64 {
    log_normal_tail(z).exp()
}

/// `log(e^ε − c)` for `0 < c < e^ε`, without overflow.
fn log_exp_minus(eps: f64, c: f64) -> f64 {
    if c == 0.0 {
        return eps;
    }
    eps + (-c * (-eps).exp()).ln_1p()
}

/// One step of the Poisson-subsampled Gaussian in one relation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Profile {
    pub(crate) sigma: f64,
    pub(crate) q: f64,
    pub(crate) relation: Relation,
}

impl Profile {
    /// The smallest privacy loss, if it is bounded below.
    pub(crate) fn min_loss(&self) -> Option<f64> {
        match self.relation {
            Relation::Remove if self.q < 1.0 => Some((-self.q).ln_1p()),
            _ => None,
        }
    }

    /// The largest privacy loss, if it is bounded above.
    pub(crate) fn max_loss(&self) -> Option<f64> {
        match self.relation {
            Relation::Add if self.q < 1.0 => Some(-(-self.q).ln_1p()),
            _ => None,
        }
    }

    /// The threshold `x_ε` of `{L > ε}`, or `None` when `ε` is outside the
    /// range of the loss (below the minimum for remove, above the maximum
    /// for add).
    fn threshold(&self, eps: f64) -> Option<f64> {
        let (s2, q) = (self.sigma * self.sigma, self.q);
        let log_ratio = match self.relation {
            // exp((2x − 1)/(2σ²)) = (e^ε − 1 + q)/q
            Relation::Remove => {
                if self.min_loss().is_some_and(|m| eps <= m) {
                    return None;
                }
                log_exp_minus(eps, 1.0 - q) - q.ln()
            }
            // exp((2x − 1)/(2σ²)) = (e^−ε − 1 + q)/q
            Relation::Add => {
                if self.max_loss().is_some_and(|m| eps >= m) {
                    return None;
                }
                log_exp_minus(-eps, 1.0 - q) - q.ln()
            }
        };
        Some(s2 * log_ratio + 0.5)
    }

    /// `δ(ε)`, the hockey-stick divergence `sup_S P(S) − e^ε Q(S)`.
    pub(crate) fn delta(&self, eps: f64) -> f64 {
        let (s, q) = (self.sigma, self.q);
        let Some(x) = self.threshold(eps) else {
            return match self.relation {
                // every outcome has loss > ε
                Relation::Remove => -eps.exp_m1(),
                // no outcome has loss > ε
                Relation::Add => 0.0,
            };
        };
        let d = match self.relation {
            // P(x > x_ε) − e^ε Q(x > x_ε)
            //   = q Φ̄((x−1)/σ) − (e^ε − 1 + q) Φ̄(x/σ)
            Relation::Remove => {
                let a = q.ln() + log_normal_tail((x - 1.0) / s);
                let b = log_exp_minus(eps, 1.0 - q) + log_normal_tail(x / s);
                a.exp() - b.exp()
            }
            // P(x < x_ε) − e^ε Q(x < x_ε)
            //   = (1 − (1−q) e^ε) Φ(x/σ) − q e^ε Φ((x−1)/σ)
            Relation::Add => {
                let keep = if q < 1.0 {
                    (-(1.0 - q) * eps.exp()).ln_1p()
                } else {
                    0.0
                };
                let a = keep + log_normal_tail(-x / s);
                let b = q.ln() + eps + log_normal_tail((1.0 - x) / s);
                a.exp() - b.exp()
            }
        };
        d.clamp(0.0, 1.0)
    }

    /// `P(L <= ε)`, the mass of the loss at or below `ε`.
    pub(crate) fn mass_below(&self, eps: f64) -> f64 {
        let (s, q) = (self.sigma, self.q);
        match (self.relation, self.threshold(eps)) {
            (Relation::Remove, None) => 0.0,
            (Relation::Add, None) => 1.0,
            // P = M, {L <= ε} = {x <= x_ε}
            (Relation::Remove, Some(x)) => {
                (1.0 - q) * normal_tail(-x / s) + q * normal_tail((1.0 - x) / s)
            }
            // P = φ_0, {L <= ε} = {x >= x_ε}
            (Relation::Add, Some(x)) => normal_tail(x / s),
        }
    }
}

/// `δ(ε)` of the Gaussian mechanism whose privacy loss is `N(μ²/2, μ²)`
/// (sensitivity over noise `μ`; both relations agree):
/// `Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2)` (Balle and Wang 2018).
pub(crate) fn gaussian_delta(mu: f64, eps: f64) -> f64 {
    let a = log_normal_tail(eps / mu - mu / 2.0);
    let b = eps + log_normal_tail(eps / mu + mu / 2.0);
    (a.exp() - b.exp()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_matches_known_values() {
        // Φ̄(0) = 1/2, Φ̄(1.959963985) = 0.025, Φ̄(40) from the series
        // against log Φ̄(z) ≈ −z²/2 − log(z √(2π)).
        assert!((log_normal_tail(0.0) - 0.5_f64.ln()).abs() < 1e-15);
        assert!((normal_tail(1.959_963_984_540_054) - 0.025).abs() < 1e-15);
        assert!((normal_tail(-8.0) - 1.0).abs() < 1e-15);
        let z = 40.0_f64;
        let asym = -0.5 * z * z - (z * (2.0 * PI).sqrt()).ln();
        assert!((log_normal_tail(z) - asym).abs() < 1e-3);
        // Continuity where the two branches meet.
        let (below, above) = (log_normal_tail(29.999_999), log_normal_tail(30.0));
        assert!((below - above).abs() < 1e-4, "{below} vs {above}");
    }

    #[test]
    fn full_sampling_is_the_gaussian_mechanism() {
        for relation in [Relation::Remove, Relation::Add] {
            let p = Profile {
                sigma: 2.0,
                q: 1.0,
                relation,
            };
            for eps in [0.0, 0.3, 1.0, 4.0] {
                let (a, b) = (p.delta(eps), gaussian_delta(0.5, eps));
                assert!((a - b).abs() < 1e-14, "{relation:?} {eps}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn the_profile_is_a_decreasing_convex_function_of_exp_eps() {
        for relation in [Relation::Remove, Relation::Add] {
            let p = Profile {
                sigma: 0.8,
                q: 0.05,
                relation,
            };
            let h = 0.01;
            let d: Vec<f64> = (-300..400).map(|i| p.delta(f64::from(i) * h)).collect();
            for w in d.windows(3) {
                assert!(w[1] <= w[0] + 1e-15);
                // slopes in e^ε: (d0 − d1) >= (d1 − d2)/e^h, up to rounding
                assert!((w[0] - w[1]) * h.exp() + 1e-14 >= w[1] - w[2], "{w:?}");
            }
        }
    }

    #[test]
    fn extreme_arguments_stay_finite() {
        for relation in [Relation::Remove, Relation::Add] {
            for (sigma, q) in [(0.01, 0.5), (1e4, 1e-9), (0.5, 1.0), (3.0, 0.999)] {
                let p = Profile { sigma, q, relation };
                for eps in [-800.0, -40.0, 0.0, 1e-9, 30.0, 800.0, 1e6] {
                    let d = p.delta(eps);
                    let m = p.mass_below(eps);
                    assert!((0.0..=1.0).contains(&d), "{p:?} {eps}: {d}");
                    assert!((0.0..=1.0).contains(&m), "{p:?} {eps}: {m}");
                }
            }
        }
    }
}
