//! The learning adapters between veil-learn and the service: a client's
//! update source that trains its model on its own rows (in memory for
//! `veil simulate`, from the site's CSV for `veil client`), the reading of
//! a task's training spec, and the server model that applies a server
//! optimiser (FedAvg, FedAdam, FedYogi) to each released mean update.

use std::path::PathBuf;

use rand::RngExt;
use rand::rngs::ChaCha20Rng;
use veil_learn::dataset::{CsvFormat, Dataset, Schema, Standardizer};
use veil_learn::dp_sgd::{DpSgd, train_local_dp_sgd};
use veil_learn::model::ModelSpec;
use veil_learn::server_opt::{ServerOptimizer, ServerOptimizerKind};
use veil_learn::train::{LocalTraining, train_local};
use veil_net::client::{SiteDataError, SourceError, UpdateSource};
use veil_round::{ModelError, RoundReport, ServerModel};
use veil_secagg::messages::{Task, TrainingSpec};

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

/// The model a training spec describes.
pub(crate) fn model_spec(spec: &TrainingSpec) -> Result<ModelSpec, veil_learn::Error> {
    let model = ModelSpec {
        architecture: spec.architecture.parse()?,
        inputs: spec.features.len(),
        classes: spec.classes.len(),
    };
    model.check()?;
    Ok(model)
}

/// The local training a training spec describes.
pub(crate) fn local_training(spec: &TrainingSpec) -> LocalTraining {
    LocalTraining {
        optimizer: match spec.optimizer {
            veil_secagg::messages::LocalOptimizer::Adam => veil_learn::train::LocalOptimizer::Adam,
            _ => veil_learn::train::LocalOptimizer::Sgd,
        },
        epochs: spec.epochs as usize,
        batch_size: spec.batch_size as usize,
        learning_rate: spec.learning_rate,
    }
}

/// The columns a training spec expects of a site's CSV.
pub(crate) fn schema(spec: &TrainingSpec) -> Schema {
    Schema {
        features: spec.features.clone(),
        classes: spec.classes.clone(),
    }
}

/// A site that trains the task's model on its own CSV: the rows are read
/// (and checked against the task's columns and classes) when a task first
/// names them, standardised as the task says, and never leave the site
/// except inside the masked, clipped, noised update.
pub(crate) struct CsvSite {
    path: PathBuf,
    format: CsvFormat,
    seed: u64,
    /// The rows as read, for the schema they were checked against.
    rows: Option<(Schema, Dataset)>,
}

impl CsvSite {
    pub(crate) fn new(path: PathBuf, format: CsvFormat, seed: u64) -> Self {
        Self {
            path,
            format,
            seed,
            rows: None,
        }
    }

    /// Reads and checks the CSV against `schema` (once per schema).
    pub(crate) fn rows(&mut self, schema: &Schema) -> Result<&Dataset, SiteDataError> {
        if self.rows.as_ref().is_none_or(|(s, _)| s != schema) {
            let (data, _) = Dataset::load_csv_for(&self.path, self.format, schema, true)
                .map_err(|e| SiteDataError(e.to_string()))?;
            self.rows = Some((schema.clone(), data));
        }
        self.rows
            .as_ref()
            .map(|(_, d)| d)
            .ok_or_else(|| SiteDataError("no rows".into()))
    }
}

impl UpdateSource for CsvSite {
    fn update(&mut self, task: &Task) -> Result<Vec<f32>, SourceError> {
        let spec = task
            .training
            .as_ref()
            .ok_or_else(|| SiteDataError("the task names no model to train on this CSV".into()))?;
        let model = model_spec(spec)?;
        if model.num_params() != task.model.len() {
            return Err(SiteDataError(format!(
                "the task's model has {} values, a {} model of {} features and {} classes has {}",
                task.model.len(),
                spec.architecture,
                spec.features.len(),
                spec.classes.len(),
                model.num_params()
            ))
            .into());
        }
        let local = local_training(spec);
        let seed = self.seed ^ task.training_round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut data = self.rows(&schema(spec))?.clone();
        if let Some((mean, std)) = &spec.standardization {
            Standardizer::from_parts(mean.clone(), std.clone())?.apply(&mut data);
        }
        Ok(train_local(&model, &task.model, &data, &local, seed)?)
    }
}
