//! Evaluation on held-out rows: mean loss, accuracy, and ROC-AUC for
//! binary tasks; for a regression the mean squared error and R².

use candle_core::D;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::model::{Model, ModelSpec};
use crate::train::batch;

/// Test metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// Mean loss (a regression's: the mean squared error, in the units the
    /// targets are in).
    pub loss: f64,
    /// Fraction classified correctly (NaN for a regression).
    pub accuracy: f64,
    /// ROC-AUC of the positive class (binary tasks only).
    pub auc: Option<f64>,
    /// The coefficient of determination `1 − SSE/SST` (a regression only).
    pub r2: Option<f64>,
}

/// A model's predictions for some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The predicted class id of each row.
    pub classes: Vec<u32>,
    /// Each row's probability of each class (`classes.len()` per row; a
    /// binary model's two are `1 − p` and `p`).
    pub probabilities: Vec<Vec<f32>>,
    /// Each row's score for ROC-AUC (a binary model's logit), if binary.
    pub scores: Option<Vec<f32>>,
    /// A regression's predictions, one per row, in the units of the
    /// targets it was trained on (the other fields are then empty).
    pub values: Option<Vec<f32>>,
}

/// Predicts `data`'s rows with the flat model `params`.
///
/// # Errors
/// As [`Model::from_flat`].
pub fn predict(spec: &ModelSpec, params: &[f32], data: &Dataset) -> Result<Predictions> {
    let model = Model::from_flat(spec, params)?;
    let rows: Vec<usize> = (0..data.rows()).collect();
    let (x, _) = batch(data, &rows)?;
    let logits = model.forward(&x)?;
    if spec.is_regression() {
        return Ok(Predictions {
            classes: Vec::new(),
            probabilities: Vec::new(),
            scores: None,
            values: Some(logits.flatten_all()?.to_vec1::<f32>()?),
        });
    }
    if spec.outputs() == 1 {
        let z = logits.flatten_all()?.to_vec1::<f32>()?;
        let probabilities = z
            .iter()
            .map(|v| {
                let p = 1.0 / (1.0 + (-v).exp());
                vec![1.0 - p, p]
            })
            .collect();
        Ok(Predictions {
            classes: z.iter().map(|v| u32::from(*v > 0.0)).collect(),
            probabilities,
            scores: Some(z),
            values: None,
        })
    } else {
        let p = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
        Ok(Predictions {
            classes: logits.argmax(D::Minus1)?.to_vec1::<u32>()?,
            probabilities: p,
            scores: None,
            values: None,
        })
    }
}

/// The confusion matrix of `predicted` against `labels` over `classes`
/// classes: `matrix[true][predicted]` counts rows.
#[must_use]
pub fn confusion(predicted: &[u32], labels: &[u32], classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0_u64; classes]; classes];
    for (p, l) in predicted.iter().zip(labels) {
        if let Some(cell) = m
            .get_mut(*l as usize)
            .and_then(|row| row.get_mut(*p as usize))
        {
            *cell = cell.saturating_add(1);
        }
    }
    m
}

/// Evaluates the flat model `params` on `data`.
///
/// # Errors
/// As [`Model::from_flat`].
pub fn evaluate(spec: &ModelSpec, params: &[f32], data: &Dataset) -> Result<Metrics> {
    let model = Model::from_flat(spec, params)?;
    let rows: Vec<usize> = (0..data.rows()).collect();
    let (x, y) = batch(data, &rows)?;
    let logits = model.forward(&x)?;
    let loss = f64::from(model.loss(&logits, &y)?.to_scalar::<f32>()?);
    if spec.is_regression() {
        let z = logits.flatten_all()?.to_vec1::<f32>()?;
        let t: Vec<f32> = rows.iter().map(|&r| data.target(r)).collect();
        return Ok(Metrics {
            loss,
            accuracy: f64::NAN,
            auc: None,
            r2: r2(&z, &t),
        });
    }
    let labels = &data.labels;
    let (predicted, auc) = if spec.outputs() == 1 {
        let z = logits.flatten_all()?.to_vec1::<f32>()?;
        let predicted: Vec<u32> = z.iter().map(|v| u32::from(*v > 0.0)).collect();
        (predicted, Some(roc_auc(&z, labels)))
    } else {
        (logits.argmax(D::Minus1)?.to_vec1::<u32>()?, None)
    };
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    #[expect(clippy::cast_precision_loss, reason = "row counts are small")]
    let accuracy = correct as f64 / data.rows().max(1) as f64;
    Ok(Metrics {
        loss,
        accuracy,
        auc,
        r2: None,
    })
}

/// The coefficient of determination of `predicted` against `targets`,
/// `1 − Σ(t − p)² / Σ(t − t̄)²` (`None` without rows or when the targets
/// do not vary).
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "row counts are small")]
pub fn r2(predicted: &[f32], targets: &[f32]) -> Option<f64> {
    let n = targets.len() as f64;
    if targets.is_empty() {
        return None;
    }
    let mean = targets.iter().map(|t| f64::from(*t)).sum::<f64>() / n;
    let total: f64 = targets.iter().map(|t| (f64::from(*t) - mean).powi(2)).sum();
    let residual: f64 = predicted
        .iter()
        .zip(targets)
        .map(|(p, t)| (f64::from(*t) - f64::from(*p)).powi(2))
        .sum();
    (total > 0.0).then(|| 1.0 - residual / total)
}

/// ROC-AUC: the probability that a random positive scores above a random
/// negative, ties counting one half (the Mann–Whitney statistic, with
/// average ranks for ties). `0.5` if either class is absent.
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "row counts are small")]
pub fn roc_auc(scores: &[f32], labels: &[u32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0_f64; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = average;
        }
        i = j + 1;
    }
    let positives = labels.iter().filter(|l| **l == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l == 1)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}
