//! Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism
//! (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
//! Gaussian Mechanism").
//!
//! For noise multiplier `σ`, sampling rate `q` and order `α > 1`, one step
//! has RDP `log(A_α) / (α − 1)` with
//!
//! ```text
//! A_α = E_{z ~ N(0, σ²)} [ (1 − q + q·exp((2z − 1) / (2σ²)))^α ].
//! ```
//!
//! - integer `α`: the exact binomial expansion
//!   `A_α = Σ_i C(α, i) (1−q)^{α−i} q^i exp((i² − i) / (2σ²))`;
//! - fractional `α`: numerical integration of the expectation (composite
//!   Simpson on a grid of `σ/64`, over `[−40σ − 10, α + 40σ + 10]`), computed
//!   as `1 + E[expm1(α log f)]` when `A_α` is near 1 so small values do not
//!   cancel. This is exact up to quadrature error; it does not use the
//!   series of dp-accounting 0.6, which adds the absolute values of terms
//!   that alternate in sign for fractional `α` and so overstates `A_α`;
//! - `q = 1`: `α / (2σ²)`; `q = 0`: 0.
//!
//! Steps compose by adding RDP at each order. The conversion to
//! `(ε, δ)` is, by default, the one dp-accounting uses ([`Conversion::Improved`]:
//! Canonne, Kamath, Steinke 2020, Proposition 12 / Asoodeh et al. 2020,
//! eq. 20): `ε = r + log(1 − 1/α) − log(δα)/(α − 1)`, minimised over the
//! orders; [`Conversion::Classic`] is Mironov 2017, Proposition 3:
//! `ε = r − log(δ)/(α − 1)`.

use crate::error::{Result, check_positive, check_range, check_sampling_rate};

/// The orders dp-accounting uses by default: 1.1 to 10.9 by 0.1, 11 to 63,
/// and 128, 256, 512, 1024.
#[must_use]
pub fn default_orders() -> Vec<f64> {
    (1..100)
        .map(|x| 1.0 + f64::from(x) / 10.0)
        .chain((11..64).map(f64::from))
        .chain([128.0, 256.0, 512.0, 1024.0])
        .collect()
}

/// How RDP converts to `(ε, δ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Conversion {
    /// The bound dp-accounting uses (the default).
    #[default]
    Improved,
    /// Mironov 2017, Proposition 3.
    Classic,
}

/// An RDP accountant: the RDP spent so far at each order.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpAccountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        Self::new()
    }
}

impl RdpAccountant {
    /// An accountant over [`default_orders`] with nothing spent.
    #[must_use]
    pub fn new() -> Self {
        let orders = default_orders();
        let rdp = vec![0.0; orders.len()];
        Self { orders, rdp }
    }

    /// The orders.
    #[must_use]
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The RDP spent at each order.
    #[must_use]
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// Adds `steps` steps of the Poisson-subsampled Gaussian mechanism.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] unless `noise_multiplier` is finite
    /// and positive and `sampling_rate` is in `(0, 1]`.
    pub fn compose_subsampled_gaussian(
        &mut self,
        noise_multiplier: f64,
        sampling_rate: f64,
        steps: u64,
    ) -> Result<()> {
        let sigma = check_positive("noise-multiplier", noise_multiplier)?;
        let q = check_sampling_rate(sampling_rate)?;
        self.compose_curve(steps, |alpha| subsampled_gaussian_rdp(q, sigma, alpha));
        Ok(())
    }

    /// Adds `steps` times the RDP curve `curve(α)` at every order.
    pub(crate) fn compose_curve(&mut self, steps: u64, curve: impl Fn(f64) -> f64) {
        let steps = steps as f64;
        for (rdp, alpha) in self.rdp.iter_mut().zip(&self.orders) {
            *rdp += steps * curve(*alpha);
        }
    }

    /// The smallest `ε` over the orders at `δ`, and the order that gives it.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] unless `δ` is in `(0, 1)`.
    pub fn epsilon(&self, delta: f64, conversion: Conversion) -> Result<(f64, f64)> {
        let delta = check_range("delta", delta, 0.0, 1.0, true, "a number in (0, 1)")?;
        if delta >= 1.0 {
            return Err(crate::Error::InvalidParameter {
                name: "delta",
                value: delta,
                expected: "a number in (0, 1)",
            });
        }
        let mut best = (f64::INFINITY, 0.0);
        for (&r, &a) in self.rdp.iter().zip(&self.orders) {
            let eps = epsilon_at(r, a, delta, conversion);
            if eps < best.0 {
                best = (eps, a);
            }
        }
        Ok((best.0.max(0.0), best.1))
    }
}

/// `ε` at one order (see the module docs).
fn epsilon_at(r: f64, alpha: f64, delta: f64, conversion: Conversion) -> f64 {
    if r < 0.0 || r.is_nan() {
        return 0.0;
    }
    match conversion {
        Conversion::Classic => r - delta.ln() / (alpha - 1.0),
        Conversion::Improved => {
            if delta * delta + (-r).exp_m1() > 0.0 {
                0.0
            } else if alpha > 1.01 {
                r + (-1.0 / alpha).ln_1p() - (delta * alpha).ln() / (alpha - 1.0)
            } else {
                f64::INFINITY
            }
        }
    }
}

/// RDP of one step at order `alpha`.
#[must_use]
pub fn subsampled_gaussian_rdp(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    log_a(q, sigma, alpha) / (alpha - 1.0)
}

/// `log A_α`.
#[must_use]
#[expect(
    clippy::cast_possible_truncation,
    reason = "an integral alpha below 1e6 converts to u64 exactly"
)]
pub fn log_a(q: f64, sigma: f64, alpha: f64) -> f64 {
    if alpha.fract() == 0.0 && alpha < 1e6 {
        log_a_int(q, sigma, alpha as u64)
    } else {
        log_a_frac(q, sigma, alpha)
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// The exact binomial sum, in log space.
fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let a = alpha as f64;
    let mut ln_choose = 0.0_f64;
    let mut acc = f64::NEG_INFINITY;
    for i in 0..=alpha {
        let fi = i as f64;
        if i > 0 {
            ln_choose += ((a - fi + 1.0) / fi).ln();
        }
        let term = ln_choose + fi * lq + (a - fi) * l1q + (fi * fi - fi) / (2.0 * sigma * sigma);
        acc = log_add(acc, term);
    }
    acc
}

/// The most grid points one fractional order may integrate over: enough for
/// any noise multiplier above about 0.002 at the default orders.
const MAX_GRID_POINTS: f64 = (1 << 20) as f64;

/// Numerical integration of `A_α` (see the module docs).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the grid size is a positive count far below 2^53"
)]
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let lo = -40.0 * sigma - 10.0;
    let hi = alpha + 40.0 * sigma + 10.0;
    let points = ((hi - lo) / (sigma / 64.0)).ceil();
    if points.is_nan() || points > MAX_GRID_POINTS {
        // Tiny noise: the grid would be huge (and the privacy cost is
        // enormous anyway). Excluding this order is sound: every order
        // bounds epsilon on its own, so the minimum only gets larger.
        return f64::INFINITY;
    }
    let mut n = points as usize;
    n = n.max(4000);
    n = n.saturating_add(n & 1); // Simpson needs an even number of intervals
    let h = (hi - lo) / n as f64;
    let (l1q, lq) = ((-q).ln_1p(), q.ln());
    let two_s2 = 2.0 * sigma * sigma;
    let log_norm = -(sigma * (2.0 * core::f64::consts::PI).sqrt()).ln();
    let point = |i: usize| {
        let z = lo + h * i as f64;
        let log_phi = -z * z / two_s2 + log_norm;
        let v = alpha * log_add(l1q, lq + (2.0 * z - 1.0) / two_s2);
        let w = if i == 0 || i == n {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        (log_phi, v, w)
    };
    let peak = (0..=n)
        .map(|i| {
            let (lp, v, _) = point(i);
            lp + v
        })
        .fold(f64::NEG_INFINITY, f64::max);
    if peak < 20.0 {
        // A = 1 + D with D = E[expm1(v)]: no cancellation near A = 1.
        let d: f64 = (0..=n)
            .map(|i| {
                let (lp, v, w) = point(i);
                let term = if v < 30.0 {
                    lp.exp() * v.exp_m1()
                } else {
                    (lp + v).exp() - lp.exp()
                };
                w * term
            })
            .sum::<f64>()
            * h
            / 3.0;
        d.ln_1p()
    } else {
        let s: f64 = (0..=n)
            .map(|i| {
                let (lp, v, w) = point(i);
                w * (lp + v - peak).exp()
            })
            .sum::<f64>()
            * h
            / 3.0;
        peak + s.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_agrees_with_the_exact_sum_at_integer_orders() {
        for sigma in [0.5, 1.0, 2.0, 10.0] {
            for q in [0.001, 0.01, 0.3, 0.9] {
                for alpha in [2_u64, 3, 7, 20, 50] {
                    let exact = log_a_int(q, sigma, alpha);
                    let integrated = log_a_frac(q, sigma, alpha as f64);
                    let tol = 1e-9_f64.max(exact.abs() * 1e-8);
                    assert!(
                        (exact - integrated).abs() <= tol,
                        "sigma {sigma} q {q} alpha {alpha}: {exact} vs {integrated}"
                    );
                }
            }
        }
    }

    #[test]
    fn full_sampling_is_the_gaussian_mechanism() {
        let mut acc = RdpAccountant::new();
        acc.compose_subsampled_gaussian(2.0, 1.0, 3).unwrap();
        for (r, a) in acc.rdp().iter().zip(acc.orders()) {
            assert!((r - 3.0 * a / 8.0).abs() < 1e-12);
        }
    }

    #[test]
    fn rdp_grows_with_steps_and_sampling_and_shrinks_with_noise() {
        let eps = |sigma, q, t| {
            let mut acc = RdpAccountant::new();
            acc.compose_subsampled_gaussian(sigma, q, t).unwrap();
            acc.epsilon(1e-5, Conversion::Improved).unwrap().0
        };
        assert!(eps(1.0, 0.01, 100) < eps(1.0, 0.01, 1000));
        assert!(eps(1.0, 0.01, 100) < eps(1.0, 0.1, 100));
        assert!(eps(2.0, 0.01, 100) < eps(1.0, 0.01, 100));
    }

    #[test]
    fn improved_conversion_is_never_worse_than_classic() {
        let mut acc = RdpAccountant::new();
        acc.compose_subsampled_gaussian(1.1, 0.01, 1000).unwrap();
        let improved = acc.epsilon(1e-5, Conversion::Improved).unwrap().0;
        let classic = acc.epsilon(1e-5, Conversion::Classic).unwrap().0;
        assert!(improved <= classic && improved > 0.5 * classic);
    }

    #[test]
    fn tiny_noise_is_answered_quickly_and_never_understated() {
        // A grid of σ/64 would need ~10^12 points here: the fractional
        // orders are excluded and the integer orders still bound epsilon.
        let mut acc = RdpAccountant::new();
        acc.compose_subsampled_gaussian(1e-8, 0.5, 1).unwrap();
        let (eps, order) = acc.epsilon(1e-5, Conversion::Improved).unwrap();
        assert!(eps > 1e6, "{eps}");
        assert_eq!(order.fract(), 0.0);
        let mut tiny = RdpAccountant::new();
        tiny.compose_subsampled_gaussian(f64::MIN_POSITIVE, 0.5, 1)
            .unwrap();
        assert!(!tiny.epsilon(1e-5, Conversion::Improved).unwrap().0.is_nan());
    }

    #[test]
    fn bad_parameters_are_named() {
        let mut acc = RdpAccountant::new();
        for (sigma, q) in [
            (0.0, 0.1),
            (-1.0, 0.1),
            (f64::NAN, 0.1),
            (f64::INFINITY, 0.1),
            (1.0, 0.0),
            (1.0, 1.5),
            (1.0, f64::NAN),
        ] {
            assert!(
                acc.compose_subsampled_gaussian(sigma, q, 1).is_err(),
                "{sigma} {q}"
            );
        }
        for delta in [0.0, 1.0, -1e-5, f64::NAN, 2.0] {
            assert!(acc.epsilon(delta, Conversion::Improved).is_err(), "{delta}");
        }
    }
}
