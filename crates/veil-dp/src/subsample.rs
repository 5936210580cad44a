//! Amplification by Poisson sampling for any mechanism whose RDP curve is
//! known: the general upper bound of Zhu and Wang 2019 ("Poisson Subsampled
//! Rényi Differential Privacy", ICML 2019, Theorem 6).
//!
//! **Theorem (Zhu–Wang 2019, Thm. 6).** Let `M` satisfy `(α, ε(α))`-RDP for
//! add-or-remove neighbours, and let each record enter the sample
//! independently with probability `γ`. For every integer `α >= 2`, `M`
//! applied to the sample satisfies `(α, ε'(α))`-RDP with
//!
//! ```text
//! ε'(α) <= 1/(α−1) · log( (1−γ)^{α−1}·(αγ − γ + 1)
//!                         + C(α,2)·γ²·(1−γ)^{α−2}·e^{ε(2)}
//!                         + 3·Σ_{ℓ=3..α} C(α,ℓ)·γ^ℓ·(1−γ)^{α−ℓ}·e^{(ℓ−1)·ε(ℓ)} )
//! ```
//!
//! It needs nothing of `M` but its curve, so it applies to the distributed
//! discrete Gaussian ([`crate::distributed`]), whose sum is not a Gaussian
//! and for which the exact analysis of [`crate::rdp`] does not hold. For the
//! Gaussian itself the bound is the exact binomial sum with the terms of
//! order 3 and up tripled, so it is never below the exact value (tested
//! against [`crate::rdp`]) and loses at most `log(3)/(α−1)`.
//!
//! Two facts make every order usable and the result never worse than not
//! sampling: subsampling never increases RDP (the sampled output is a
//! mixture of outputs of `M` on neighbouring inputs; Rényi divergence is
//! jointly quasi-convex), so the bound is capped at `ε(α)`; and RDP is
//! non-decreasing in the order, so a fractional order `α` takes the bound
//! at `⌈α⌉` (and orders in `(1, 2)` the bound at 2).
//!
//! **What sampling must be, for the credit to hold**: Poisson (each client
//! independently, with probability `γ`), and *secret from the adversary*.
//! A party that learns who was sampled gets no amplification. veil's
//! coordinator draws the cohort and sees it, and re-draws a cohort that
//! falls short of its minimum, so the service's ledger does not credit
//! sampling (see [`crate::ledger`]); this bound answers for those who see
//! only the released models.

use crate::error::{Result, check_sampling_rate};
use crate::rdp::RdpAccountant;

/// The bound at integer order `alpha >= 2`, given the curve at the integer
/// orders: `curve_at(ℓ)` is `ε(ℓ)` for `ℓ` in `2..=alpha`.
#[expect(
    clippy::cast_precision_loss,
    reason = "orders are at most a few thousand"
)]
fn bound_at(q: f64, alpha: u64, curve_at: &impl Fn(u64) -> f64) -> f64 {
    let a = alpha as f64;
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    // ℓ = 0 and 1 together: (1−γ)^{α−1}·(1 + (α−1)γ).
    let mut acc = (a - 1.0) * l1q + ((a - 1.0) * q).ln_1p();
    let mut ln_choose = a.ln(); // ln C(α, 1)
    for l in 2..=alpha {
        let fl = l as f64;
        ln_choose += ((a - fl + 1.0) / fl).ln();
        let eps = curve_at(l);
        if eps.is_nan() || eps == f64::INFINITY {
            return f64::INFINITY;
        }
        let factor = if l == 2 { 0.0 } else { 3.0_f64.ln() };
        let term = factor + ln_choose + fl * lq + (a - fl) * l1q + (fl - 1.0) * eps;
        acc = log_add(acc, term);
    }
    (acc / (a - 1.0)).max(0.0)
}

fn log_add(a: f64, b: f64) -> f64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// The integer order whose bound covers order `alpha`: `⌈α⌉`, at least 2.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "orders are finite, above 1 and at most a few thousand"
)]
fn covering_order(alpha: f64) -> u64 {
    alpha.ceil().max(2.0) as u64
}

/// The RDP at order `alpha > 1` of `M` run on a Poisson sample of rate `q`,
/// where `curve(α)` is the RDP of `M` (see the module docs). `q >= 1` is
/// `curve(alpha)` itself; `q == 0` is 0.
#[must_use]
#[expect(
    clippy::cast_precision_loss,
    reason = "orders are at most a few thousand"
)]
pub fn poisson_subsampled_rdp(q: f64, alpha: f64, curve: impl Fn(f64) -> f64) -> f64 {
    if q <= 0.0 {
        return 0.0;
    }
    let own = curve(alpha);
    if q >= 1.0 {
        return own;
    }
    let bound = bound_at(q, covering_order(alpha), &|l| curve(l as f64));
    own.min(bound)
}

impl RdpAccountant {
    /// Adds `steps` releases of a mechanism with RDP curve `curve`, run on a
    /// Poisson sample of rate `sampling_rate`, by the general bound of
    /// Zhu–Wang 2019 ([`crate::subsample`]). The curve is evaluated once per
    /// integer order up to the largest order used.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] unless `sampling_rate` is in
    /// `(0, 1]`.
    #[expect(
        clippy::cast_precision_loss,
        reason = "orders are at most a few thousand"
    )]
    pub fn compose_poisson_subsampled(
        &mut self,
        sampling_rate: f64,
        steps: u64,
        curve: impl Fn(f64) -> f64,
    ) -> Result<()> {
        let q = check_sampling_rate(sampling_rate)?;
        if q >= 1.0 {
            self.compose_curve(steps, curve);
            return Ok(());
        }
        let top = self
            .orders()
            .iter()
            .copied()
            .map(covering_order)
            .max()
            .unwrap_or(2);
        // curve at 0, 1 (unused), 2, …, top.
        let at: Vec<f64> = (0..=top)
            .map(|l| if l < 2 { 0.0 } else { curve(l as f64) })
            .collect();
        let curve_at = |l: u64| {
            usize::try_from(l)
                .ok()
                .and_then(|i| at.get(i).copied())
                .unwrap_or(f64::INFINITY)
        };
        self.compose_curve(steps, |alpha| {
            curve(alpha).min(bound_at(q, covering_order(alpha), &curve_at))
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rdp::subsampled_gaussian_rdp;

    fn gaussian(z: f64) -> impl Fn(f64) -> f64 {
        move |alpha| alpha / (2.0 * z * z)
    }

    #[test]
    fn the_bound_is_never_below_the_exact_subsampled_gaussian() {
        for z in [0.5, 0.8, 1.0, 2.0, 5.0] {
            for q in [1e-4, 0.01, 0.1, 0.5, 0.99] {
                for alpha in (2..=64).chain([128, 256, 512, 1024]) {
                    let a = alpha as f64;
                    let exact = subsampled_gaussian_rdp(q, z, a);
                    let generic = poisson_subsampled_rdp(q, a, gaussian(z));
                    assert!(
                        generic >= exact * (1.0 - 1e-9) - 1e-15,
                        "z {z} q {q} α {alpha}: {generic} < {exact}"
                    );
                    // ... and loses at most log(3)/(α−1) (Zhu–Wang's gap),
                    // unless capped at the unsampled curve.
                    assert!(
                        generic <= exact + 3.0_f64.ln() / (a - 1.0) + 1e-9,
                        "z {z} q {q} α {alpha}: {generic} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn without_the_tripled_terms_the_gaussian_bound_is_exact() {
        // Checks the binomial skeleton: ℓ = 0, 1, 2 are exact, so at order 2
        // the bound equals the exact value.
        for z in [0.8, 1.0, 2.0] {
            for q in [0.01, 0.1] {
                let exact = subsampled_gaussian_rdp(q, z, 2.0);
                let generic = poisson_subsampled_rdp(q, 2.0, gaussian(z));
                assert!(
                    (generic - exact).abs() <= 1e-12 * exact.max(1e-300),
                    "{z} {q}"
                );
            }
        }
    }

    #[test]
    fn full_sampling_and_no_sampling_are_the_edges() {
        let g = gaussian(1.0);
        assert_eq!(poisson_subsampled_rdp(1.0, 7.5, &g), 3.75);
        assert_eq!(poisson_subsampled_rdp(0.0, 7.5, &g), 0.0);
        // Never worse than not sampling, even where the bound is loose.
        for alpha in [1.5, 2.0, 3.3, 100.0] {
            assert!(poisson_subsampled_rdp(0.9, alpha, &g) <= g(alpha));
        }
        // An infinite curve leaves the cap.
        assert_eq!(
            poisson_subsampled_rdp(0.1, 4.0, |_| f64::INFINITY),
            f64::INFINITY
        );
    }

    #[test]
    fn fractional_orders_take_the_next_integer_order() {
        let g = gaussian(1.0);
        let at3 = poisson_subsampled_rdp(0.01, 3.0, &g);
        assert_eq!(poisson_subsampled_rdp(0.01, 2.4, &g), at3.min(g(2.4)));
        let at2 = poisson_subsampled_rdp(0.01, 2.0, &g);
        assert_eq!(poisson_subsampled_rdp(0.01, 1.1, &g), at2.min(g(1.1)));
    }

    #[test]
    fn the_accountant_composes_the_same_curve() {
        let mut acc = RdpAccountant::new();
        acc.compose_poisson_subsampled(0.05, 10, gaussian(1.3))
            .unwrap();
        for (r, a) in acc.rdp().iter().zip(acc.orders()) {
            let one = poisson_subsampled_rdp(0.05, *a, gaussian(1.3));
            assert!((r - 10.0 * one).abs() <= 1e-12 * r.max(1e-300), "{a}");
        }
        assert!(
            acc.compose_poisson_subsampled(0.0, 1, gaussian(1.0))
                .is_err()
        );
        assert!(
            acc.compose_poisson_subsampled(1.5, 1, gaussian(1.0))
                .is_err()
        );
    }
}
