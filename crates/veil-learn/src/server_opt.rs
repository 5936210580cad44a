//! Server optimisers on the aggregated (mean) update: FedAvg, FedAdam and
//! FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
//! Algorithm 2).

use crate::error::{Error, Result};

/// Which server optimiser, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServerOptimizerKind {
    /// `x += η·Δ`.
    FedAvg {
        /// Server learning rate η.
        lr: f32,
    },
    /// Adam on the pseudo-gradient `−Δ`.
    FedAdam {
        /// η.
        lr: f32,
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// τ, the adaptivity.
        tau: f32,
    },
    /// Yogi on the pseudo-gradient `−Δ`.
    FedYogi {
        /// η.
        lr: f32,
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// τ.
        tau: f32,
    },
}

/// A server optimiser with its state (first and second moments).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptimizer {
    kind: ServerOptimizerKind,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl ServerOptimizer {
    /// A fresh optimiser for a model of `dimension` parameters. The second
    /// moment starts at `τ²` (the paper's `v₋₁ >= τ²`).
    ///
    /// # Errors
    /// [`Error::Config`] for a non-positive rate or τ, or β outside [0, 1).
    pub fn new(kind: ServerOptimizerKind, dimension: usize) -> Result<Self> {
        let (lr, betas, tau) = match kind {
            ServerOptimizerKind::FedAvg { lr } => (lr, None, 0.0),
            ServerOptimizerKind::FedAdam {
                lr,
                beta1,
                beta2,
                tau,
            }
            | ServerOptimizerKind::FedYogi {
                lr,
                beta1,
                beta2,
                tau,
            } => (lr, Some((beta1, beta2)), tau),
        };
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Config(
                "server learning rate must be positive".into(),
            ));
        }
        if let Some((b1, b2)) = betas
            && (!(0.0..1.0).contains(&b1)
                || !(0.0..1.0).contains(&b2)
                || tau.is_nan()
                || tau <= 0.0)
        {
            return Err(Error::Config(
                "server betas must be in [0, 1) and tau positive".into(),
            ));
        }
        Ok(Self {
            kind,
            m: vec![0.0; dimension],
            v: vec![tau * tau; dimension],
        })
    }

    /// Applies the mean client update `delta` to `model`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the lengths differ from the optimiser's.
    pub fn apply(&mut self, model: &mut [f32], delta: &[f32]) -> Result<()> {
        if model.len() != self.m.len() || delta.len() != self.m.len() {
            return Err(Error::Shape(format!(
                "model {} and update {} for an optimiser of {}",
                model.len(),
                delta.len(),
                self.m.len()
            )));
        }
        match self.kind {
            ServerOptimizerKind::FedAvg { lr } => {
                for (x, d) in model.iter_mut().zip(delta) {
                    *x += lr * d;
                }
            }
            ServerOptimizerKind::FedAdam {
                lr,
                beta1,
                beta2,
                tau,
            }
            | ServerOptimizerKind::FedYogi {
                lr,
                beta1,
                beta2,
                tau,
            } => {
                let yogi = matches!(self.kind, ServerOptimizerKind::FedYogi { .. });
                for (((x, d), m), v) in model
                    .iter_mut()
                    .zip(delta)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    *m = beta1 * *m + (1.0 - beta1) * d;
                    let d2 = d * d;
                    *v = if yogi {
                        *v - (1.0 - beta2) * d2 * (*v - d2).signum()
                    } else {
                        beta2 * *v + (1.0 - beta2) * d2
                    };
                    *x += lr * *m / (v.sqrt() + tau);
                }
            }
        }
        Ok(())
    }
}
