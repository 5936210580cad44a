//! The learning adapters between veil-learn and the service: a client's
//! update source that trains its model on its own rows, and the server
//! model that applies a server optimiser (FedAvg, FedAdam, FedYogi) to each
//! released mean update. `veil simulate` uses both; `veil server` uses the
//! optimiser.

use rand::RngExt;
use rand::rngs::ChaCha20Rng;
use veil_learn::dataset::Dataset;
use veil_learn::dp_sgd::{DpSgd, train_local_dp_sgd};
use veil_learn::model::ModelSpec;
use veil_learn::server_opt::{ServerOptimizer, ServerOptimizerKind};
use veil_learn::train::{LocalTraining, train_local};
use veil_net::client::{SourceError, UpdateSource};
use veil_round::{ModelError, RoundReport, ServerModel};
use veil_secagg::messages::Task;

/// A client that trains `spec` on its own rows each round.
pub(crate) struct TrainingSource {
    pub(crate) spec: ModelSpec,
    pub(crate) data: Dataset,
    pub(crate) local: LocalTraining,
    /// Seeds the local shuffles (mixed with the training round).
    pub(crate) seed: u64,
    /// The probability of sitting a round out (simulated dropout; 0 in
    /// service).
    pub(crate) dropout: f64,
    pub(crate) rng: ChaCha20Rng,
    /// Example-level DP-SGD, with a generator seeded from the OS (noise
    /// must be unpredictable).
    pub(crate) dp_sgd: Option<(DpSgd, ChaCha20Rng)>,
}

/// Why a training source has no update this round.
#[derive(Debug, thiserror::Error)]
enum NoUpdate {
    #[error("simulated dropout: this client sits the round out")]
    SimulatedDropout,
    #[error(transparent)]
    Training(#[from] veil_learn::Error),
}

impl UpdateSource for TrainingSource {
    fn update(&mut self, task: &Task) -> Result<Vec<f32>, SourceError> {
        if self.dropout > 0.0 && self.rng.random::<f64>() < self.dropout {
            return Err(NoUpdate::SimulatedDropout.into());
        }
        let trained = match &mut self.dp_sgd {
            Some((dp, noise_rng)) => train_local_dp_sgd(
                &self.spec,
                &task.model,
                &self.data,
                &self.local,
                dp,
                noise_rng,
            ),
            None => train_local(
                &self.spec,
                &task.model,
                &self.data,
                &self.local,
                self.seed ^ task.training_round.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
        };
        Ok(trained.map_err(NoUpdate::from)?)
    }
}

/// What the server does after each release (evaluation, reporting).
pub(crate) type OnRelease = Box<dyn FnMut(&RoundReport, &[f32]) + Send>;

/// The server model: a veil-learn server optimiser, and an optional
/// observer of each release.
pub(crate) struct Learner {
    optimizer: ServerOptimizer,
    on_release: Option<OnRelease>,
}

impl Learner {
    /// A learner for a model of `dimension` parameters.
    pub(crate) fn new(
        kind: ServerOptimizerKind,
        dimension: usize,
        on_release: Option<OnRelease>,
    ) -> Result<Self, veil_learn::Error> {
        Ok(Self {
            optimizer: ServerOptimizer::new(kind, dimension)?,
            on_release,
        })
    }
}

impl ServerModel for Learner {
    fn apply(&mut self, model: &mut [f32], mean_update: &[f32]) -> Result<(), ModelError> {
        Ok(self.optimizer.apply(model, mean_update)?)
    }

    fn released(&mut self, report: &RoundReport, model: &[f32]) {
        if let Some(f) = self.on_release.as_mut() {
            f(report, model);
        }
    }
}
