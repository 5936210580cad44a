//! The input of a statistics round (SPEC.md §10.15): each site's per-feature
//! count, sum and sum of squares of its training rows, so that every site
//! standardises with the statistics of all rows without pooling them. The
//! server learns the sums over the included sites only.
//!
//! The input is bounded by construction (norm at most
//! [`super::EVALUATION_CLIP_NORM`], like an evaluation's): each value is
//! clipped to `[−bound, bound]` of its feature and divided by the bound, a
//! site's counts are divided by `max(row_cap, rows)`, and each of the sums
//! and the squares is divided by `√features`.

use crate::error::{Error, Result};

/// The length of a statistics input for `features` features: the rows,
/// then each feature's sum, then each feature's sum of squares.
#[must_use]
pub fn statistics_len(features: usize) -> usize {
    features.saturating_mul(2).saturating_add(1)
}

/// The smallest standard deviation a statistics round reports as found, as
/// a fraction of the feature's bound; below it (a constant feature, or
/// noise that made the variance negative) the deviation is `bound / √3`,
/// a uniform value's on `[−bound, bound]`.
pub const MIN_STD_FRACTION: f64 = 1e-6;

/// A site's (or, read back from a sum, all included sites') per-feature
/// sums of its rows, each value clipped to its feature's bound.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSums {
    /// Rows counted.
    pub rows: f64,
    /// Per feature: the sum of its (clipped) values.
    pub sum: Vec<f64>,
    /// Per feature: the sum of their squares.
    pub sum_of_squares: Vec<f64>,
}

impl FeatureSums {
    /// No rows yet, over `features` features.
    #[must_use]
    pub fn new(features: usize) -> Self {
        Self {
            rows: 0.0,
            sum: vec![0.0; features],
            sum_of_squares: vec![0.0; features],
        }
    }

    /// Counts one row of raw values, clipping each to its feature's bound
    /// (a value that is not finite counts as 0).
    pub fn add(&mut self, row: &[f32], bounds: &[f32]) {
        self.rows += 1.0;
        for (((s, q), x), b) in self
            .sum
            .iter_mut()
            .zip(self.sum_of_squares.iter_mut())
            .zip(row)
            .zip(bounds)
        {
            let b = f64::from(*b);
            let x = f64::from(*x);
            let x = if x.is_finite() { x.clamp(-b, b) } else { 0.0 };
            *s += x;
            *q += x * x;
        }
    }

    /// The site's input to a statistics round with `row_cap` and the
    /// features' `bounds`: norm at most `√3`.
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "the protocol's inputs are f32; features <= 4096"
    )]
    pub fn to_input(&self, row_cap: u32, bounds: &[f32]) -> Vec<f32> {
        let w = 1.0 / f64::from(row_cap.max(1)).max(self.rows);
        let root = (self.sum.len().max(1) as f64).sqrt();
        let mut out = Vec::with_capacity(statistics_len(self.sum.len()));
        out.push(self.rows * w);
        out.extend(
            self.sum
                .iter()
                .zip(bounds)
                .map(|(s, b)| s / f64::from(*b) * w / root),
        );
        out.extend(
            self.sum_of_squares
                .iter()
                .zip(bounds)
                .map(|(q, b)| q / f64::from(*b).powi(2) * w / root),
        );
        out.into_iter().map(|v| v as f32).collect()
    }

    /// Reads a released sum of statistics inputs (dequantised, not divided
    /// by the number of sites) back into sums at `row_cap` and `bounds`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `sum` is not a statistics input's length
    /// for `bounds.len()` features.
    #[expect(clippy::cast_precision_loss, reason = "features <= 4096")]
    pub fn from_sum(sum: &[f32], row_cap: u32, bounds: &[f32]) -> Result<Self> {
        let f = bounds.len();
        if sum.len() != statistics_len(f) {
            return Err(Error::InvalidConfig(
                "a statistics sum's length does not match the task's features",
            ));
        }
        let cap = f64::from(row_cap);
        let root = (f.max(1) as f64).sqrt();
        let at = |i: usize| sum.get(i).map_or(0.0, |v| f64::from(*v));
        Ok(Self {
            rows: (at(0) * cap).max(0.0),
            sum: bounds
                .iter()
                .enumerate()
                .map(|(j, b)| at(j.saturating_add(1)) * cap * root * f64::from(*b))
                .collect(),
            sum_of_squares: bounds
                .iter()
                .enumerate()
                .map(|(j, b)| {
                    (at(j.saturating_add(1).saturating_add(f)) * cap * root * f64::from(*b).powi(2))
                        .max(0.0)
                })
                .collect(),
        })
    }

    /// The per-feature mean and standard deviation of the counted rows
    /// (population; a deviation below [`MIN_STD_FRACTION`] of its bound is
    /// replaced by `bound / √3`); `None` without at least one row.
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the task's standardisation is f32"
    )]
    pub fn standardization(&self, bounds: &[f32]) -> Option<(Vec<f32>, Vec<f32>)> {
        if self.rows < 1.0 {
            return None;
        }
        let mut mean = Vec::with_capacity(bounds.len());
        let mut std = Vec::with_capacity(bounds.len());
        for ((s, q), b) in self.sum.iter().zip(&self.sum_of_squares).zip(bounds) {
            let b = f64::from(*b);
            let m = (s / self.rows).clamp(-b, b);
            let var = q / self.rows - m * m;
            mean.push(m as f32);
            let sd = var.max(0.0).sqrt();
            std.push(if sd > MIN_STD_FRACTION * b {
                sd as f32
            } else {
                (b / 3_f64.sqrt()) as f32
            });
        }
        Some((mean, std))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn sums_survive_the_input_and_the_sum_and_give_the_pooled_statistics() {
        let bounds = [10.0_f32, 1000.0];
        let rows_a = [[1.0_f32, 100.0], [3.0, 300.0]];
        let rows_b = [[5.0_f32, 500.0], [50.0, f32::NAN]];
        let mut a = FeatureSums::new(2);
        let mut b = FeatureSums::new(2);
        for r in &rows_a {
            a.add(r, &bounds);
        }
        for r in &rows_b {
            b.add(r, &bounds);
        }
        let (ia, ib) = (a.to_input(4, &bounds), b.to_input(4, &bounds));
        assert_eq!(ia.len(), statistics_len(2));
        for input in [&ia, &ib] {
            let norm = input.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
            assert!(norm.sqrt() <= 3_f64.sqrt() + 1e-6);
        }
        let sum: Vec<f32> = ia.iter().zip(&ib).map(|(x, y)| x + y).collect();
        let total = FeatureSums::from_sum(&sum, 4, &bounds).unwrap();
        assert!((total.rows - 4.0).abs() < 1e-4);
        // 50 is clipped to 10; NaN counts as 0.
        assert!((total.sum[0] - 19.0).abs() < 1e-3, "{total:?}");
        assert!((total.sum[1] - 900.0).abs() < 1e-2, "{total:?}");
        assert!((total.sum_of_squares[0] - 135.0).abs() < 1e-2, "{total:?}");
        let (mean, std) = total.standardization(&bounds).unwrap();
        assert!((mean[0] - 4.75).abs() < 1e-4);
        assert!((std[0] - (135.0_f32 / 4.0 - 4.75 * 4.75).sqrt()).abs() < 1e-3);
        assert!(FeatureSums::from_sum(&sum[1..], 4, &bounds).is_err());
    }

    #[test]
    fn a_constant_feature_gets_a_uniform_deviation_and_no_rows_none() {
        let bounds = [2.0_f32];
        let mut a = FeatureSums::new(1);
        a.add(&[1.0], &bounds);
        a.add(&[1.0], &bounds);
        let (_, std) = a.standardization(&bounds).unwrap();
        assert!((f64::from(std[0]) - 2.0 / 3_f64.sqrt()).abs() < 1e-6);
        assert!(FeatureSums::new(1).standardization(&bounds).is_none());
    }
}
