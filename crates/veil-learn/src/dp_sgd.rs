//! Example-level DP-SGD for cross-silo clients (Abadi et al. 2016): each
//! step draws a Poisson batch (each row with probability `q = B / rows`),
//! clips every example's gradient to `C`, adds `N(0, (z·C)²)` to their sum
//! (veil-dp), divides by the expected batch size `q·rows`, and takes an SGD
//! step. The accountant (veil-dp's RDP) sees `epochs · ceil(rows / B)`
//! steps of the Poisson-subsampled Gaussian with rate `q` per round.

use candle_core::{Device, Tensor};
use rand::RngExt;
use rand_core::CryptoRng;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::{Model, ModelSpec};
use crate::train::LocalTraining;

/// DP-SGD settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSgd {
    /// Per-example gradient clipping norm `C`.
    pub clip_norm: f64,
    /// Noise multiplier `z`.
    pub noise_multiplier: f64,
}

/// The sampling rate and the steps of one round of local DP-SGD on `rows`
/// rows: `q = min(1, B / rows)`, `epochs · ceil(rows / B)` steps.
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "row counts are small")]
pub fn schedule(rows: usize, settings: &LocalTraining) -> (f64, u64) {
    let q = (settings.batch_size as f64 / rows.max(1) as f64).min(1.0);
    let steps = settings.epochs * rows.div_ceil(settings.batch_size.max(1));
    (q, steps as u64)
}

/// One client's round of DP-SGD from `global`; returns `trained − global`.
/// `settings.optimizer` is ignored (DP-SGD steps are plain SGD).
///
/// # Errors
/// [`Error::Config`] for bad settings; [`Error::Shape`] for a `global` of
/// the wrong length.
#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "small counts; f32 model"
)]
pub fn train_local_dp_sgd<R: CryptoRng + ?Sized>(
    spec: &ModelSpec,
    global: &[f32],
    data: &Dataset,
    settings: &LocalTraining,
    dp: &DpSgd,
    rng: &mut R,
) -> Result<Vec<f32>> {
    settings.check()?;
    if data.rows() == 0 {
        return Err(Error::Config("no rows to train on".into()));
    }
    let (q, steps) = schedule(data.rows(), settings);
    let expected_batch = q * data.rows() as f64;
    let mut params = global.to_vec();
    for _ in 0..steps {
        let model = Model::from_flat(spec, &params)?;
        let mut per_example = Vec::new();
        for r in 0..data.rows() {
            if rng.random::<f64>() >= q {
                continue;
            }
            let x = Tensor::from_slice(data.row(r), (1, data.dim()), &Device::Cpu)?;
            let y = Tensor::from_vec(
                vec![data.labels.get(r).copied().unwrap_or(0)],
                1,
                &Device::Cpu,
            )?;
            let loss = model.loss(&model.forward(&x)?, &y)?;
            let grads = loss.backward()?;
            let mut g = Vec::with_capacity(params.len());
            for v in model.vars() {
                match grads.get(v.as_tensor()) {
                    Some(t) => g.extend(t.flatten_all()?.to_vec1::<f32>()?),
                    None => g.extend(std::iter::repeat_n(0.0, v.as_tensor().elem_count())),
                }
            }
            per_example.push(g);
        }
        if per_example.is_empty() {
            // An empty Poisson batch still gets its noise.
            per_example.push(vec![0.0; params.len()]);
        }
        let noisy = veil_dp::dp_sgd::noisy_clipped_sum(
            &mut per_example,
            dp.clip_norm,
            dp.noise_multiplier,
            rng,
        )
        .map_err(|e| Error::Config(e.to_string()))?;
        for (p, s) in params.iter_mut().zip(noisy) {
            *p -= (settings.learning_rate * s / expected_batch) as f32;
        }
    }
    Ok(params.iter().zip(global).map(|(t, g)| t - g).collect())
}
