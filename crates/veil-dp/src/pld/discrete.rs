//! A privacy loss distribution on a grid: mass `ω_j` at loss `(lo + j)·h`
//! and mass `ω_∞` at `+∞`, with the connect-the-dots discretisation of a
//! privacy profile, composition by FFT convolution, pessimistic tail
//! truncation, and the exact `δ(ε)` and `ε(δ)` of the grid distribution.
//!
//! Every approximation here moves privacy loss *up* (or to `+∞`), never
//! down, so the `ε` read off the result bounds the true one from above:
//!
//! - connect-the-dots (Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022)
//!   builds the distribution whose profile equals the true `δ(ε)` at every
//!   grid point and is linear in `e^ε` between them. The true profile is
//!   convex in `e^ε`, so the chord lies above it; the result is a
//!   dominating pair and composes as one;
//! - the mass below the lowest grid point is put *at* that point, and the
//!   mass above the highest at `+∞` (`ω_∞ = δ(ε_top)`);
//! - after each convolution, tails of at most [`Composer::tail`] are cut
//!   the same way: the low tail to the first kept bucket, the high tail to
//!   `+∞`.

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// A privacy loss distribution on the grid `h·ℤ`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pld {
    /// The grid interval.
    h: f64,
    /// The grid index of `mass[0]`.
    lo: i64,
    /// The mass at each finite grid point.
    mass: Vec<f64>,
    /// The mass at `+∞`.
    inf: f64,
}

#[expect(
    clippy::cast_precision_loss,
    reason = "grid indices are far below 2^52"
)]
fn index_value(h: f64, i: i64) -> f64 {
    i as f64 * h
}

impl Pld {
    /// The distribution of no mechanism at all: all mass at loss 0.
    pub(crate) fn identity(h: f64) -> Self {
        Self {
            h,
            lo: 0,
            mass: vec![1.0],
            inf: 0.0,
        }
    }

    /// Connect-the-dots on the grid points `lo..=hi` of the profile `delta`.
    ///
    /// With `δ_i` the profile at the `i`-th point and
    /// `b_i = (δ_i − δ_{i+1}) / (e^h − 1)` (`b_top = 0`), the masses are
    /// `ω_i = e^h·b_{i−1} − b_i` for `i >= 1`, `ω_∞ = δ_top`, and the rest
    /// at the lowest point. Convexity of `δ` in `e^ε` makes every `ω_i`
    /// non-negative (rounding below zero is clamped).
    pub(crate) fn connect_the_dots(h: f64, lo: i64, hi: i64, delta: impl Fn(f64) -> f64) -> Self {
        let d: Vec<f64> = (lo..=hi)
            .map(|i| delta(index_value(h, i)))
            .scan(f64::INFINITY, |prev, v| {
                // A profile never increases; rounding may make it look so.
                *prev = v.min(*prev);
                Some(*prev)
            })
            .collect();
        let (grow, em1) = (h.exp(), h.exp_m1());
        let slope = |i: usize| match (d.get(i), d.get(i.saturating_add(1))) {
            (Some(a), Some(b)) => (a - b) / em1,
            _ => 0.0,
        };
        let mut mass = Vec::with_capacity(d.len());
        mass.push(0.0);
        let mut prev = slope(0);
        for i in 1..d.len() {
            let b = slope(i);
            mass.push((grow * prev - b).max(0.0));
            prev = b;
        }
        let inf = d.last().copied().unwrap_or(0.0);
        let finite: f64 = mass.iter().sum();
        if let Some(first) = mass.first_mut() {
            *first = (1.0 - finite - inf).max(0.0);
        }
        Self { h, lo, mass, inf }
    }

    /// The mass at `+∞`.
    #[cfg(test)]
    pub(crate) fn infinity_mass(&self) -> f64 {
        self.inf
    }

    /// `δ(ε) = ω_∞ + Σ_j ω_j (1 − e^{ε − ε_j})_+`.
    pub(crate) fn delta(&self, eps: f64) -> f64 {
        let above: f64 = self
            .mass
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let l = index_value(self.h, self.lo.saturating_add_unsigned(j as u64));
                if l > eps {
                    -m * (eps - l).exp_m1()
                } else {
                    0.0
                }
            })
            .sum();
        (self.inf + above).min(1.0)
    }

    /// The smallest `ε` with `δ(ε) <= target` (`+∞` if the mass at `+∞`
    /// alone exceeds it). Between grid points `δ(ε) = A − e^{ε − ε_i}·S`
    /// exactly, so the answer is solved for, not interpolated.
    pub(crate) fn epsilon(&self, target: f64) -> f64 {
        // A: mass strictly above ε_i (with +∞); S: Σ_{j>i} ω_j e^{ε_i − ε_j}.
        let (mut a, mut s) = (self.inf, 0.0_f64);
        let shrink = (-self.h).exp();
        for (j, &m) in self.mass.iter().enumerate().rev() {
            let at = index_value(self.h, self.lo.saturating_add_unsigned(j as u64));
            if a - s > target {
                if s <= 0.0 {
                    return f64::INFINITY;
                }
                return at + ((a - target) / s).ln();
            }
            a += m;
            s = shrink * (s + m);
        }
        // Below the lowest point: δ(ε) = A − e^{ε − ε_{lo−1}}·S.
        let at = index_value(self.h, self.lo.saturating_sub(1));
        if s <= 0.0 || a <= target {
            return f64::NEG_INFINITY;
        }
        at + ((a - target) / s).ln()
    }
}

/// Composition by FFT convolution, with pessimistic tail truncation.
pub(crate) struct Composer {
    planner: RealFftPlanner<f64>,
    /// The most mass cut from each tail after each convolution.
    tail: f64,
    /// The most grid points a self-composition may transform.
    max_points: usize,
}

/// The smallest `2^a·3^b·5^c >= n`: a size realfft transforms quickly.
fn fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p5 = 1_usize;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut m = p35;
            while m < n {
                m = m.saturating_mul(2);
            }
            best = best.min(m);
            p35 = p35.saturating_mul(3);
        }
        p5 = p5.saturating_mul(5);
    }
    best
}

impl Composer {
    pub(crate) fn new(tail: f64, max_points: usize) -> Self {
        Self {
            planner: RealFftPlanner::new(),
            tail,
            max_points,
        }
    }

    /// The composition of two mechanisms: the convolution of their
    /// distributions (on the same grid).
    pub(crate) fn convolve(&mut self, a: &Pld, b: &Pld) -> Pld {
        debug_assert!((a.h - b.h).abs() <= f64::EPSILON * a.h);
        let n = conv_len(a.mass.len(), b.mass.len());
        let mass = if a.mass.len().min(b.mass.len()) <= 64 {
            direct(&a.mass, &b.mass)
        } else {
            self.fft(&a.mass, &b.mass, n)
        };
        let mut out = Pld {
            h: a.h,
            lo: a.lo.saturating_add(b.lo),
            mass,
            inf: a.inf + b.inf - a.inf * b.inf,
        };
        self.truncate(&mut out);
        out
    }

    /// `p` composed with itself `times` times, in one transform: the
    /// spectrum raised to the power `times` (Koskela, Jälkö, Honkela 2020).
    ///
    /// The transform is circular, so it is sized to hold the window of the
    /// composed distribution outside which Chernoff bounds put at most
    /// [`Composer::tail`] mass on each side. That mass lands at unknown
    /// places inside the window; adding both bounds to the mass at `+∞`
    /// keeps the result an upper bound.
    ///
    /// `None` if the window needs more than the composer's `max_points`.
    pub(crate) fn self_compose(&mut self, p: &Pld, times: u64) -> Option<Pld> {
        if times <= 1 {
            return Some(if times == 1 {
                p.clone()
            } else {
                Pld::identity(p.h)
            });
        }
        let (from, to) = chernoff_window(p, times, self.tail);
        let width = usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX);
        let needed = width.saturating_add(1).max(p.mass.len());
        if needed > self.max_points {
            return None;
        }
        let size = fast_len(needed);
        let forward = self.planner.plan_fft_forward(size);
        let inverse = self.planner.plan_fft_inverse(size);
        let mut input = forward.make_input_vec();
        input
            .iter_mut()
            .zip(&p.mass)
            .for_each(|(slot, &v)| *slot = v);
        let mut spectrum = forward.make_output_vec();
        // Sizes come from the plans themselves, so neither call can fail.
        let _ = forward.process(&mut input, &mut spectrum);
        for c in &mut spectrum {
            // The accountant refuses more than u32::MAX steps.
            *c = c.powu(u32::try_from(times).unwrap_or(u32::MAX));
        }
        clear_edges(&mut spectrum, size);
        let mut circular = inverse.make_output_vec();
        let _ = inverse.process(&mut spectrum, &mut circular);
        #[expect(clippy::cast_precision_loss, reason = "an FFT size, far below 2^52")]
        let scale = 1.0 / size as f64;
        // The sum of `times` draws has grid index times·lo + (Σ offsets);
        // the offsets' sum lands at position (Σ offsets) mod size.
        let base =
            p.lo.saturating_mul(i64::try_from(times).unwrap_or(i64::MAX));
        let size_i = i64::try_from(size).unwrap_or(i64::MAX);
        let mass = (from..=to)
            .map(|k| {
                let pos = usize::try_from(k.saturating_sub(base).rem_euclid(size_i)).unwrap_or(0);
                circular.get(pos).map_or(0.0, |v| (v * scale).max(0.0))
            })
            .collect();
        let finite = (1.0 - p.inf).powf(steps_f64(times));
        let mut out = Pld {
            h: p.h,
            lo: from,
            mass,
            inf: (1.0 - finite + 2.0 * self.tail).min(1.0),
        };
        self.truncate(&mut out);
        Some(out)
    }

    fn fft(&mut self, a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let size = fast_len(n);
        let forward = self.planner.plan_fft_forward(size);
        let inverse = self.planner.plan_fft_inverse(size);
        let spectrum = |x: &[f64]| {
            let mut input = forward.make_input_vec();
            input.iter_mut().zip(x).for_each(|(slot, &v)| *slot = v);
            let mut out = forward.make_output_vec();
            // Sizes come from the plan itself, so this cannot fail.
            let _ = forward.process(&mut input, &mut out);
            out
        };
        let (fa, fb) = (spectrum(a), spectrum(b));
        let mut product: Vec<_> = fa
            .iter()
            .zip(&fb)
            .map(|(&x, &y)| core::ops::Mul::mul(x, y))
            .collect();
        clear_edges(&mut product, size);
        let mut out = inverse.make_output_vec();
        let _ = inverse.process(&mut product, &mut out);
        #[expect(clippy::cast_precision_loss, reason = "an FFT size, far below 2^52")]
        let scale = 1.0 / size as f64;
        out.truncate(n);
        out.iter_mut().for_each(|v| *v = (*v * scale).max(0.0));
        out
    }

    /// Cuts tails of at most `tail` mass: the low one up to the first kept
    /// point, the high one to `+∞`.
    fn truncate(&self, p: &mut Pld) {
        let mut low = 0.0;
        let mut start = 0;
        while let Some(&m) = p.mass.get(start) {
            if low + m > self.tail || start.saturating_add(1) >= p.mass.len() {
                break;
            }
            low += m;
            start = start.saturating_add(1);
        }
        let mut high = 0.0;
        let mut end = p.mass.len();
        while end > start.saturating_add(1) {
            let Some(&m) = p.mass.get(end.saturating_sub(1)) else {
                break;
            };
            if high + m > self.tail {
                break;
            }
            high += m;
            end = end.saturating_sub(1);
        }
        p.mass.truncate(end);
        p.mass.drain(..start);
        if let Some(first) = p.mass.first_mut() {
            *first += low;
        }
        p.inf += high;
        p.lo = p.lo.saturating_add_unsigned(start as u64);
    }
}

/// The imaginary parts of the first (and, for even sizes, last) coefficients
/// of a real signal's spectrum are zero in exact arithmetic; clears the
/// rounding, which the inverse real transform refuses.
fn clear_edges(spectrum: &mut [Complex<f64>], size: usize) {
    if let Some(first) = spectrum.first_mut() {
        first.im = 0.0;
    }
    if size.is_multiple_of(2)
        && let Some(last) = spectrum.last_mut()
    {
        last.im = 0.0;
    }
}

#[expect(clippy::cast_precision_loss, reason = "a step count; 2^53 is absurd")]
fn steps_f64(t: u64) -> f64 {
    t as f64
}

/// The grid indices `[from, to]` outside which the `times`-fold composition
/// of `p` has at most `tail` finite mass on each side, by Chernoff bounds
/// over a grid of exponents `λ`:
/// `P(S >= a) <= exp(times·ln M(λ) − λa)` with `M(λ) = Σ_j ω_j e^{λ k_j}`
/// (and the same for `−λ` below).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "indices are bounded by the full support, far below 2^52"
)]
pub(crate) fn chernoff_window(p: &Pld, times: u64, tail: f64) -> (i64, i64) {
    let t = steps_f64(times);
    let first = p.lo;
    let last =
        p.lo.saturating_add_unsigned(p.mass.len().saturating_sub(1) as u64);
    let full = (
        first.saturating_mul(times as i64),
        last.saturating_mul(times as i64),
    );
    // Offsets from the mean keep λ·k small.
    let total: f64 = p.mass.iter().sum();
    if total <= 0.0 {
        return (full.0, full.0);
    }
    let mean = p
        .mass
        .iter()
        .enumerate()
        .map(|(j, m)| m * j as f64)
        .sum::<f64>()
        / total;
    let top = p.mass.len().saturating_sub(1) as f64;
    // K(λ) = ln Σ_j ω_j e^{λ(j − mean)}, by Horner's rule in r = e^{−|λ|}
    // from the end that dominates, so no term can overflow: for λ > 0,
    // Σ ω_j e^{λ(j − top)} = (((ω_0 r + ω_1) r + ω_2) r + ...).
    let ln_m = |lambda: f64| {
        let r = (-lambda.abs()).exp();
        let sum = if lambda > 0.0 {
            p.mass.iter().fold(0.0, |acc, &m| acc * r + m)
        } else {
            p.mass.iter().rev().fold(0.0, |acc, &m| acc * r + m)
        };
        // The sum is at least the last mass added; if that is so small
        // that terms may have underflowed, this λ gives no bound.
        if sum < 1e-250 {
            return f64::INFINITY;
        }
        let edge = if lambda > 0.0 { top - mean } else { -mean };
        lambda * edge + sum.ln()
    };
    let log_inv_tail = -tail.ln();
    let (mut up, mut down) = (f64::INFINITY, f64::INFINITY);
    for i in -90..=10 {
        let lambda = 10_f64.powf(f64::from(i) / 10.0);
        up = up.min((t * ln_m(lambda) + log_inv_tail) / lambda);
        down = down.min((t * ln_m(-lambda) + log_inv_tail) / lambda);
    }
    // Offsets of the sum from times·(first + mean).
    let centre = t * (first as f64 + mean);
    let from = ((centre - down).floor() as i64).clamp(full.0, full.1);
    let to = ((centre + up).ceil() as i64).clamp(from, full.1);
    (from, to)
}

/// The length of the full convolution of two non-empty sequences.
fn conv_len(a: usize, b: usize) -> usize {
    a.saturating_add(b).saturating_sub(1)
}

/// Direct convolution, for a short operand.
fn direct(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; conv_len(a.len(), b.len())];
    for (i, &x) in a.iter().enumerate() {
        if let Some(row) = out.get_mut(i..i.saturating_add(b.len())) {
            row.iter_mut().zip(b).for_each(|(o, &y)| *o += x * y);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pld(h: f64, lo: i64, mass: Vec<f64>, inf: f64) -> Pld {
        Pld { h, lo, mass, inf }
    }

    #[test]
    fn epsilon_inverts_delta_exactly() {
        let p = pld(0.1, -3, vec![0.1, 0.2, 0.3, 0.2, 0.1, 0.05, 0.05], 1e-4);
        for target in [0.5, 0.1, 0.03, 1e-3] {
            let eps = p.epsilon(target);
            assert!(
                (p.delta(eps) - target).abs() < 1e-12,
                "{target}: {eps} gives {}",
                p.delta(eps)
            );
        }
        assert_eq!(p.epsilon(1e-5), f64::INFINITY, "inf mass 1e-4 > 1e-5");
    }

    #[test]
    fn fft_and_direct_convolution_agree() {
        let a: Vec<f64> = (0..300).map(|i| f64::from(i % 7) + 1.0).collect();
        let total: f64 = a.iter().sum();
        let a: Vec<f64> = a.iter().map(|v| v / total).collect();
        let b: Vec<f64> = a.iter().rev().copied().collect();
        let mut c = Composer::new(0.0, 1 << 20);
        let fft = c.fft(&a, &b, a.len() + b.len() - 1);
        let slow = direct(&a, &b);
        assert_eq!(fft.len(), slow.len());
        for (x, y) in fft.iter().zip(&slow) {
            assert!((x - y).abs() < 1e-15, "{x} vs {y}");
        }
    }

    #[test]
    fn truncation_moves_mass_up_and_keeps_the_total() {
        let c = Composer::new(0.011, 1 << 20);
        let mut p = pld(
            1.0,
            0,
            vec![0.005, 0.005, 0.48, 0.48, 0.02, 0.005, 0.005],
            0.0,
        );
        c.truncate(&mut p);
        assert_eq!(p.lo, 2);
        assert_eq!(p.mass, vec![0.49, 0.48, 0.02]);
        assert!((p.inf - 0.01).abs() < 1e-15);
    }

    #[test]
    fn the_chord_never_falls_below_the_profile() {
        use crate::pld::gaussian::{Profile, Relation};
        for relation in [Relation::Remove, Relation::Add] {
            let profile = Profile {
                sigma: 1.0,
                q: 0.3,
                relation,
            };
            let p = Pld::connect_the_dots(0.1, -40, 60, |e| profile.delta(e));
            let total: f64 = p.mass.iter().sum::<f64>() + p.infinity_mass();
            assert!((total - 1.0).abs() < 1e-12);
            let mut gap = 0.0_f64;
            for i in -300..600 {
                let e = f64::from(i) * 0.01;
                let (chord, exact) = (p.delta(e), profile.delta(e));
                assert!(
                    chord + 1e-12 >= exact,
                    "{relation:?} {e}: {chord} < {exact}"
                );
                gap = gap.max(chord - exact);
            }
            // and close: second order in h, largest at the kink of the
            // remove profile at its minimum loss log(1 − q)
            assert!(gap < 5e-3, "{relation:?}: {gap}");
        }
    }

    #[test]
    fn fast_lengths_are_smooth_and_not_smaller() {
        for n in [1, 7, 100, 1000, 1025, 65_537, 1_000_001] {
            let m = fast_len(n);
            assert!(m >= n && m <= n.next_power_of_two());
            let mut r = m;
            for p in [2, 3, 5] {
                while r.is_multiple_of(p) {
                    r /= p;
                }
            }
            assert_eq!(r, 1, "{m}");
        }
    }
}
