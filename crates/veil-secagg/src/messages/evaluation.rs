//! The input of an evaluation round (SPEC.md §10.14): what a site adds to
//! the secure sum when it evaluates the global model on its held-out rows,
//! and how the server reads the released sum back into counts. No site's
//! own metric leaves it; the server learns the sums over the included
//! sites only.
//!
//! The input is bounded by construction, so that the round's clip never
//! changes it and each release has the same sensitivity as a training
//! round's (`EVALUATION_CLIP_NORM`): every count is divided by the task's
//! `row_cap`, a site with more than `row_cap` held-out rows counts at weight
//! `row_cap / rows`, and each row's loss is capped at [`LOSS_CAP`].

use crate::error::{Error, Result};

/// Bins of the positive-class probability in a binary task's score
/// histograms (what the server's ROC-AUC is computed from).
pub const AUC_BINS: usize = 20;
/// The most a row's loss adds to the loss sum (nats of cross-entropy).
pub const LOSS_CAP: f64 = 8.0;
/// The L2 norm no evaluation input exceeds (its examples, correct, loss and
/// histogram parts are each at most 1 in L2 norm), and the clip of an
/// evaluation round.
pub const EVALUATION_CLIP_NORM: f64 = 2.0;

/// The most a regression row's squared error adds, and the bound of its
/// squared label, in the standardised label's units (the label is clamped
/// to `±√16 = ±4` standard deviations).
pub const SQUARED_ERROR_CAP: f64 = 16.0;

/// The bound of a regression row's standardised label.
const LABEL_CAP: f64 = 4.0;

/// The length of an evaluation input for a task of `classes` classes:
/// examples, correct, loss, and for two classes the score histograms of
/// the negatives and the positives ([`AUC_BINS`] each); for a regression
/// (`classes = 0`) examples, squared error, `Σy` and `Σy²`.
#[must_use]
pub fn evaluation_len(classes: usize) -> usize {
    match classes {
        0 => 4,
        2 => 3 + 2 * AUC_BINS,
        _ => 3,
    }
}

/// A site's (or, read back from a sum, all included sites') evaluation
/// counts.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationCounts {
    /// Rows evaluated.
    pub examples: f64,
    /// Rows classified correctly.
    pub correct: f64,
    /// The sum of the rows' losses, each capped at [`LOSS_CAP`].
    pub loss: f64,
    /// For a binary task, per bin of the positive-class probability
    /// (`[b/AUC_BINS, (b+1)/AUC_BINS)`, the last bin closed): the
    /// negatives' and the positives' counts. Empty otherwise.
    pub histogram: Vec<[f64; 2]>,
    /// For a regression (where `loss` is the sum of squared errors, each
    /// capped at [`SQUARED_ERROR_CAP`], and `correct` is 0): the sum of the
    /// standardised labels and of their squares, each label clamped to
    /// `±4`. `None` for a classification.
    pub labels: Option<[f64; 2]>,
}

/// The bin of a positive-class probability `p`.
#[must_use]
pub fn auc_bin(p: f64) -> usize {
    if p.is_nan() {
        return 0;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..AUC_BINS first"
    )]
    let b = (p.clamp(0.0, 1.0) * AUC_BINS as f64).floor() as usize;
    b.min(AUC_BINS - 1)
}

impl EvaluationCounts {
    /// No rows yet, for a task of `classes` classes.
    #[must_use]
    pub fn new(classes: usize) -> Self {
        Self {
            examples: 0.0,
            correct: 0.0,
            loss: 0.0,
            histogram: if classes == 2 {
                vec![[0.0; 2]; AUC_BINS]
            } else {
                Vec::new()
            },
            labels: (classes == 0).then_some([0.0; 2]),
        }
    }

    /// Counts one regression row: its standardised label `y` and the
    /// model's prediction (clamped and capped as [`Self::labels`] says).
    pub fn add_regression(&mut self, y: f64, prediction: f64) {
        self.examples += 1.0;
        let y = if y.is_finite() {
            y.clamp(-LABEL_CAP, LABEL_CAP)
        } else {
            0.0
        };
        let error = (prediction - y).powi(2);
        self.loss += if error.is_finite() {
            error.min(SQUARED_ERROR_CAP)
        } else {
            SQUARED_ERROR_CAP
        };
        if let Some([sum, squares]) = self.labels.as_mut() {
            *sum += y;
            *squares += y * y;
        }
    }

    /// Counts one row: its true class, whether it was classified correctly,
    /// its loss, and (binary tasks) its positive-class probability.
    pub fn add(&mut self, label: u32, correct: bool, loss: f64, positive_probability: f64) {
        self.examples += 1.0;
        if correct {
            self.correct += 1.0;
        }
        self.loss += if loss.is_finite() {
            loss.clamp(0.0, LOSS_CAP)
        } else {
            LOSS_CAP
        };
        let bin = auc_bin(positive_probability);
        if let Some(slot) = self.histogram.get_mut(bin) {
            let class = usize::from(label == 1);
            if let Some(c) = slot.get_mut(class) {
                *c += 1.0;
            }
        }
    }

    /// The site's input to an evaluation round with `row_cap`: every count
    /// divided by `row_cap` (and by `rows / row_cap` more past the cap),
    /// the loss by [`LOSS_CAP`] too; its L2 norm is at most
    /// [`EVALUATION_CLIP_NORM`].
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the protocol's inputs are f32"
    )]
    pub fn to_input(&self, row_cap: u32) -> Vec<f32> {
        let cap = f64::from(row_cap.max(1));
        let per_row = 1.0 / cap.max(self.examples);
        let mut out = Vec::with_capacity(self.histogram.len().saturating_mul(2).saturating_add(4));
        out.push(self.examples * per_row);
        if let Some([sum, squares]) = self.labels {
            out.push(self.loss / SQUARED_ERROR_CAP * per_row);
            out.push(sum / LABEL_CAP * per_row);
            out.push(squares / SQUARED_ERROR_CAP * per_row);
            return out.into_iter().map(|v| v as f32).collect();
        }
        out.push(self.correct * per_row);
        out.push(self.loss / LOSS_CAP * per_row);
        out.extend(self.histogram.iter().map(|[neg, _]| neg * per_row));
        out.extend(self.histogram.iter().map(|[_, pos]| pos * per_row));
        out.into_iter().map(|v| v as f32).collect()
    }

    /// Reads a released sum of evaluation inputs (dequantised, not divided
    /// by the number of sites) back into counts at `row_cap`. Noise may
    /// make a count negative: each is floored at 0, and `correct` capped at
    /// `examples`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `sum` is not an evaluation input's
    /// length for `classes`.
    pub fn from_sum(sum: &[f32], row_cap: u32, classes: usize) -> Result<Self> {
        if sum.len() != evaluation_len(classes) {
            return Err(Error::InvalidConfig(
                "an evaluation sum's length does not match the task's classes",
            ));
        }
        let cap = f64::from(row_cap);
        let at = |i: usize| sum.get(i).map_or(0.0, |v| (f64::from(*v) * cap).max(0.0));
        let examples = at(0);
        if classes == 0 {
            let signed = sum.get(2).map_or(0.0, |v| f64::from(*v) * cap);
            return Ok(Self {
                examples,
                correct: 0.0,
                loss: at(1) * SQUARED_ERROR_CAP,
                histogram: Vec::new(),
                labels: Some([signed * LABEL_CAP, at(3) * SQUARED_ERROR_CAP]),
            });
        }
        let bins = if classes == 2 { AUC_BINS } else { 0 };
        Ok(Self {
            examples,
            correct: at(1).min(examples),
            loss: at(2) * LOSS_CAP,
            histogram: (0..bins)
                .map(|b| [at(b.saturating_add(3)), at(b.saturating_add(3 + AUC_BINS))])
                .collect(),
            labels: None,
        })
    }

    /// The fraction of rows classified correctly (`None` without rows, or
    /// for a regression).
    #[must_use]
    pub fn accuracy(&self) -> Option<f64> {
        (self.examples >= 0.5 && self.labels.is_none()).then(|| self.correct / self.examples)
    }

    /// A regression's coefficient of determination,
    /// `1 − SSE / (Σy² − (Σy)²/rows)` (`None` for a classification, without
    /// rows, or when the labels do not vary).
    #[must_use]
    pub fn r2(&self) -> Option<f64> {
        let [sum, squares] = self.labels?;
        if self.examples < 0.5 {
            return None;
        }
        let total = squares - sum * sum / self.examples;
        (total > 1e-9 * self.examples).then(|| 1.0 - self.loss / total)
    }

    /// The mean loss per row (`None` without rows).
    #[must_use]
    pub fn mean_loss(&self) -> Option<f64> {
        (self.examples >= 0.5).then(|| self.loss / self.examples)
    }

    /// ROC-AUC from the score histograms: the probability that a random
    /// positive scores above a random negative, a pair in one bin counting
    /// one half (`None` for a task that is not binary, or without both
    /// classes).
    #[must_use]
    pub fn auc(&self) -> Option<f64> {
        let negatives: f64 = self.histogram.iter().map(|[n, _]| n).sum();
        let positives: f64 = self.histogram.iter().map(|[_, p]| p).sum();
        if self.histogram.is_empty() || negatives < 0.5 || positives < 0.5 {
            return None;
        }
        let mut below = 0.0;
        let mut pairs = 0.0;
        for [neg, pos] in &self.histogram {
            pairs += pos * (below + neg / 2.0);
            below += neg;
        }
        Some((pairs / (positives * negatives)).clamp(0.0, 1.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::float_cmp, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_the_input_and_the_sum() {
        let mut a = EvaluationCounts::new(2);
        a.add(1, true, 0.1, 0.97);
        a.add(0, true, 0.2, 0.03);
        a.add(0, false, 20.0, 0.99);
        let mut b = EvaluationCounts::new(2);
        b.add(1, false, f64::NAN, 0.4);
        let (ia, ib) = (a.to_input(100), b.to_input(100));
        assert_eq!(ia.len(), evaluation_len(2));
        let norm = ia.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        assert!(norm <= EVALUATION_CLIP_NORM);
        let sum: Vec<f32> = ia.iter().zip(&ib).map(|(x, y)| x + y).collect();
        let total = EvaluationCounts::from_sum(&sum, 100, 2).unwrap();
        assert!((total.examples - 4.0).abs() < 1e-4);
        assert!((total.correct - 2.0).abs() < 1e-4);
        // 0.1 + 0.2 + 8 (capped) + 8 (not finite).
        assert!((total.loss - 16.3).abs() < 1e-4);
        assert!((total.accuracy().unwrap() - 0.5).abs() < 1e-4);
        // Positives at bins 19 and 8; negatives at 0 and 19: of the 4
        // pairs, (19 vs 0) 1, (19 vs 19) 1/2, (8 vs 0) 1, (8 vs 19) 0.
        assert!((total.auc().unwrap() - 2.5 / 4.0).abs() < 1e-4);
    }

    #[test]
    fn a_site_past_the_cap_counts_at_the_cap_and_stays_in_the_clip() {
        let mut a = EvaluationCounts::new(2);
        for i in 0..1000 {
            a.add(i % 2, true, LOSS_CAP, 1.0);
        }
        let input = a.to_input(10);
        let norm = input
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(norm <= EVALUATION_CLIP_NORM + 1e-6, "{norm}");
        let back = EvaluationCounts::from_sum(&input, 10, 2).unwrap();
        assert!((back.examples - 10.0).abs() < 1e-4);
        assert!((back.accuracy().unwrap() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_multiclass_input_has_no_histogram_and_a_wrong_length_is_refused() {
        let mut a = EvaluationCounts::new(5);
        a.add(3, true, 0.5, 0.0);
        assert_eq!(a.to_input(10).len(), 3);
        assert!(EvaluationCounts::from_sum(&[0.0; 4], 10, 5).is_err());
        assert!(
            EvaluationCounts::from_sum(&[0.1, 0.1, 0.0], 10, 5)
                .unwrap()
                .auc()
                .is_none()
        );
    }

    #[test]
    fn bins_cover_the_unit_interval() {
        assert_eq!(auc_bin(0.0), 0);
        assert_eq!(auc_bin(1.0), AUC_BINS - 1);
        assert_eq!(auc_bin(0.5), AUC_BINS / 2);
        assert_eq!(auc_bin(f64::NAN), 0);
        assert_eq!(auc_bin(-3.0), 0);
    }

    #[test]
    fn regression_counts_survive_the_input_and_give_r2() {
        // Two sites' standardised labels and predictions.
        let rows_a = [(1.0, 0.8), (-0.5, -0.2), (9.0, 9.0)];
        let rows_b = [(0.3, f64::NAN), (-1.2, -1.0)];
        let mut a = EvaluationCounts::new(0);
        let mut b = EvaluationCounts::new(0);
        for (y, p) in rows_a {
            a.add_regression(y, p);
        }
        for (y, p) in rows_b {
            b.add_regression(y, p);
        }
        assert_eq!(a.accuracy(), None);
        let (ia, ib) = (a.to_input(10), b.to_input(10));
        assert_eq!(ia.len(), evaluation_len(0));
        let norm = ia.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        assert!(norm <= EVALUATION_CLIP_NORM);
        let sum: Vec<f32> = ia.iter().zip(&ib).map(|(x, y)| x + y).collect();
        let c = EvaluationCounts::from_sum(&sum, 10, 0).unwrap();
        assert!((c.examples - 5.0).abs() < 1e-5);
        // 9.0 is clamped to 4: its error is (9 − 4)² = 25, capped at 16;
        // the NaN prediction counts 16.
        let sse = 0.04 + 0.09 + 16.0 + 16.0 + 0.04;
        assert!((c.loss - sse).abs() < 1e-4, "{}", c.loss);
        let ys = [1.0, -0.5, 4.0, 0.3, -1.2_f64];
        let (sy, syy) = (
            ys.iter().sum::<f64>(),
            ys.iter().map(|y| y * y).sum::<f64>(),
        );
        let [s, ss] = c.labels.unwrap();
        assert!((s - sy).abs() < 1e-5 && (ss - syy).abs() < 1e-4);
        let r2 = c.r2().unwrap();
        assert!(
            (r2 - (1.0 - sse / (syy - sy * sy / 5.0))).abs() < 1e-4,
            "{r2}"
        );
        // A wrong length is refused; classification counts have no R².
        assert!(EvaluationCounts::from_sum(&sum[..3], 10, 0).is_err());
        assert_eq!(EvaluationCounts::new(2).r2(), None);
    }
}
