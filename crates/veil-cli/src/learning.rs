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
use veil_learn::eval::predict;
use veil_learn::model::ModelSpec;
use veil_learn::server_opt::{ServerOptimizer, ServerOptimizerKind};
use veil_learn::train::{LocalTraining, train_local};
use veil_net::client::{SiteDataError, SourceError, UpdateSource};
use veil_round::{ModelError, RoundReport, ServerModel};
use veil_secagg::messages::{EvaluationCounts, FeatureSums, Purpose, Task, TrainingSpec, held_out};

/// What the server does after each release (reporting, checkpoints): a
/// training round's with its new model, an evaluation round's
/// (`report.evaluation` set) with the model it evaluated.
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

    fn measured(&mut self, report: &RoundReport, model: &[f32]) {
        self.released(report, model);
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

/// Where a site's rows come from.
pub(crate) enum Rows {
    /// The site's CSV, read and checked against the task's columns and
    /// classes when a task first names them.
    Csv {
        /// The file.
        path: PathBuf,
        /// Its delimiter.
        format: CsvFormat,
    },
    /// Rows already in memory (`veil simulate`'s sites), as raw as a CSV's:
    /// the task's standardisation applies to them too.
    Given(Dataset),
}

/// A site's rows, checked against a task's schema and split at its
/// holdout.
struct Checked {
    schema: Schema,
    holdout: f64,
    train: Dataset,
    held_out: Dataset,
}

/// Why a site has no update this round.
#[derive(Debug, thiserror::Error)]
enum NoUpdate {
    #[error("simulated dropout: this client sits the round out")]
    SimulatedDropout,
    #[error(transparent)]
    Training(#[from] veil_learn::Error),
}

/// A site: it trains the task's model, as the task's training spec says,
/// on its own rows, which never leave it except inside the clipped, noised,
/// masked update. The one learning path of `veil client` and
/// `veil simulate`.
pub(crate) struct Site {
    rows: Rows,
    /// Seeds the local shuffles (mixed with the training round).
    seed: u64,
    /// The rows as checked against the schema of the tasks so far, split
    /// at the task's holdout: the schema, the holdout, the training rows,
    /// the held-out rows.
    checked: Option<Checked>,
    /// The probability of sitting a round out, and its generator
    /// (`veil simulate`'s dropout; none in service).
    pub(crate) dropout: Option<(f64, ChaCha20Rng)>,
    /// Example-level DP-SGD, with a generator seeded from the OS (noise
    /// must be unpredictable).
    pub(crate) dp_sgd: Option<(DpSgd, ChaCha20Rng)>,
}

impl Site {
    pub(crate) fn new(rows: Rows, seed: u64) -> Self {
        Self {
            rows,
            seed,
            checked: None,
            dropout: None,
            dp_sgd: None,
        }
    }

    /// The site's rows for `schema`, checked against it, split into the
    /// training rows and the rows held out at `holdout` (once per schema
    /// and holdout).
    fn rows(&mut self, schema: &Schema, holdout: f64) -> Result<&Checked, SiteDataError> {
        if self
            .checked
            .as_ref()
            .is_none_or(|c| &c.schema != schema || c.holdout.to_bits() != holdout.to_bits())
        {
            let data = match &self.rows {
                Rows::Csv { path, format } => {
                    Dataset::load_csv_for(path, *format, schema, true)
                        .map_err(|e| SiteDataError(e.to_string()))?
                        .0
                }
                Rows::Given(data) => {
                    if data.feature_names != schema.features
                        || data
                            .labels
                            .iter()
                            .any(|l| *l as usize >= schema.classes.len())
                    {
                        return Err(SiteDataError(
                            "the site's rows do not have the task's columns and classes".into(),
                        ));
                    }
                    data.clone()
                }
            };
            let (out, kept): (Vec<usize>, Vec<usize>) =
                (0..data.rows()).partition(|i| held_out(*i, holdout));
            self.checked = Some(Checked {
                schema: schema.clone(),
                holdout,
                train: data.subset(&kept),
                held_out: data.subset(&out),
            });
        }
        self.checked
            .as_ref()
            .ok_or_else(|| SiteDataError("no rows".into()))
    }

    /// The site's evaluation counts of the task's model on its held-out
    /// rows (SPEC.md §10.14).
    fn evaluation(
        &mut self,
        task: &Task,
        spec: &TrainingSpec,
        model: &ModelSpec,
    ) -> Result<EvaluationCounts, SourceError> {
        let mut rows = self.rows(&schema(spec), spec.holdout)?.held_out.clone();
        if let Some((mean, std)) = &spec.standardization {
            Standardizer::from_parts(mean.clone(), std.clone())?.apply(&mut rows);
        }
        let mut counts = EvaluationCounts::new(spec.classes.len());
        if rows.rows() == 0 {
            return Ok(counts);
        }
        let predicted = predict(model, &task.model, &rows).map_err(NoUpdate::from)?;
        for ((label, class), p) in rows
            .labels
            .iter()
            .zip(&predicted.classes)
            .zip(&predicted.probabilities)
        {
            let p_label = p.get(*label as usize).copied().unwrap_or(0.0);
            let loss = -f64::from(p_label.max(f32::MIN_POSITIVE)).ln();
            let positive = p.get(1).copied().map_or(0.0, f64::from);
            counts.add(*label, label == class, loss, positive);
        }
        Ok(counts)
    }
}

impl UpdateSource for Site {
    fn update(&mut self, task: &Task) -> Result<Vec<f32>, SourceError> {
        if let Some((p, rng)) = &mut self.dropout
            && rng.random::<f64>() < *p
        {
            return Err(NoUpdate::SimulatedDropout.into());
        }
        let spec = task
            .training
            .as_ref()
            .ok_or_else(|| SiteDataError("the task names no model to train".into()))?;
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
        match &task.purpose {
            Purpose::Evaluate { row_cap } => {
                return Ok(self.evaluation(task, spec, &model)?.to_input(*row_cap));
            }
            Purpose::Statistics { row_cap, bounds } => {
                // The raw training rows' per-feature sums (SPEC.md §10.15).
                let rows = &self.rows(&schema(spec), spec.holdout)?.train;
                let mut sums = FeatureSums::new(rows.dim());
                for i in 0..rows.rows() {
                    sums.add(rows.row(i), bounds);
                }
                return Ok(sums.to_input(*row_cap, bounds));
            }
            _ => {}
        }
        let local = local_training(spec);
        let seed = self.seed ^ task.training_round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut data = self.rows(&schema(spec), spec.holdout)?.train.clone();
        if let Some((mean, std)) = &spec.standardization {
            Standardizer::from_parts(mean.clone(), std.clone())?.apply(&mut data);
        }
        let trained = match &mut self.dp_sgd {
            Some((dp, noise_rng)) => {
                train_local_dp_sgd(&model, &task.model, &data, &local, dp, noise_rng)
            }
            None => train_local(&model, &task.model, &data, &local, seed),
        };
        Ok(trained.map_err(NoUpdate::from)?)
    }
}
