//! Local training: a client's epochs of SGD or Adam on its own rows,
//! returning the change to the global model (the update it contributes).

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, SGD};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand::seq::SliceRandom;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::{Model, ModelSpec};

/// The local optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalOptimizer {
    /// Plain stochastic gradient descent.
    Sgd,
    /// Adam (β = 0.9, 0.999; no weight decay), fresh each round.
    Adam,
}

/// Local training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalTraining {
    /// The optimiser.
    pub optimizer: LocalOptimizer,
    /// Passes over the client's rows per round.
    pub epochs: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Step size.
    pub learning_rate: f64,
}

impl LocalTraining {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::Config("epochs and batch size must be >= 1".into()));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::Config("learning rate must be positive".into()));
        }
        Ok(())
    }
}

/// A batch's inputs and labels as tensors (u32 class ids, or a
/// regression's f32 targets).
///
/// # Errors
/// [`Error::Candle`] if the tensors cannot be made.
pub fn batch(data: &Dataset, rows: &[usize]) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(rows.len() * data.dim());
    for &r in rows {
        x.extend_from_slice(data.row(r));
    }
    let x = Tensor::from_vec(x, (rows.len(), data.dim()), &Device::Cpu)?;
    let y = if data.is_regression() {
        let t: Vec<f32> = rows.iter().map(|&r| data.target(r)).collect();
        Tensor::from_vec(t, rows.len(), &Device::Cpu)?
    } else {
        let l: Vec<u32> = rows
            .iter()
            .map(|&r| data.labels.get(r).copied().unwrap_or(0))
            .collect();
        Tensor::from_vec(l, rows.len(), &Device::Cpu)?
    };
    Ok((x, y))
}

/// Trains from `global` on `data` and returns `trained − global`.
///
/// # Errors
/// [`Error::Config`] for bad settings or empty data; [`Error::Shape`] for a
/// `global` of the wrong length.
pub fn train_local(
    spec: &ModelSpec,
    global: &[f32],
    data: &Dataset,
    settings: &LocalTraining,
    seed: u64,
) -> Result<Vec<f32>> {
    settings.check()?;
    if data.rows() == 0 {
        return Err(Error::Config("no rows to train on".into()));
    }
    let model = Model::from_flat(spec, global)?;
    let vars = model.vars().to_vec();
    type Step = Box<dyn FnMut(&Tensor) -> Result<()>>;
    let mut opt: Step = match settings.optimizer {
        LocalOptimizer::Sgd => {
            let mut sgd = SGD::new(vars, settings.learning_rate)?;
            Box::new(move |loss| Ok(sgd.backward_step(loss)?))
        }
        LocalOptimizer::Adam => {
            let mut adam = AdamW::new(
                vars,
                ParamsAdamW {
                    lr: settings.learning_rate,
                    weight_decay: 0.0,
                    ..ParamsAdamW::default()
                },
            )?;
            Box::new(move |loss| Ok(adam.backward_step(loss)?))
        }
    };
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut rows: Vec<usize> = (0..data.rows()).collect();
    for _ in 0..settings.epochs {
        rows.shuffle(&mut rng);
        for chunk in rows.chunks(settings.batch_size) {
            let (x, y) = batch(data, chunk)?;
            let loss = model.loss(&model.forward(&x)?, &y)?;
            opt(&loss)?;
        }
    }
    let trained = model.to_flat()?;
    Ok(trained.iter().zip(global).map(|(t, g)| t - g).collect())
}
