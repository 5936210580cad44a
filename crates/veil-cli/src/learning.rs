//! The learning adapters between veil-learn and the service: a client's
//! update source that trains its model on its own rows (in memory for
//! `veil simulate`, from the site's CSV for `veil client`), the reading of
//! a task's training spec, and the server model that applies a server
//! optimiser (FedAvg, FedAdam, FedYogi) to each released mean update.

use std::path::PathBuf;

use rand::RngExt;
use rand::rngs::ChaCha20Rng;
use veil_dp::ledger::{Ledger, RoundSpend};
use veil_learn::dataset::{CsvFormat, Dataset, Schema, Standardizer};
use veil_learn::dp_sgd::{DpSgd, schedule, train_local_dp_sgd};
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
    /// Example-level DP-SGD, and the site's ledger of it.
    pub(crate) dp_sgd: Option<SiteDpSgd>,
}

/// Example-level DP-SGD at a site: its settings, a generator seeded from
/// the OS (noise must be unpredictable), and the site's own ledger, which
/// records every round of local steps (one `poisson_subsampled_gaussian`
/// line with `steps`) before the update leaves, and refuses a round past
/// the site's budget.
pub(crate) struct SiteDpSgd {
    dp: DpSgd,
    rng: ChaCha20Rng,
    ledger: Ledger,
    /// The ledger's file (appended and synced per round), if kept.
    path: Option<PathBuf>,
}

impl SiteDpSgd {
    /// DP-SGD at `dp`, with a ledger of budget `budget` at `delta`, kept in
    /// `path` if given (an existing ledger there is replayed and continued).
    pub(crate) fn new(
        dp: DpSgd,
        rng: ChaCha20Rng,
        budget: f64,
        delta: f64,
        path: Option<PathBuf>,
    ) -> Result<Self, String> {
        let bytes = match &path {
            Some(p) => veil_net::files::read_if_present(p).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let ledger = Ledger::open(&bytes, budget, delta).map_err(|e| match &path {
            Some(p) => format!("{}: {e}", p.display()),
            None => e.to_string(),
        })?;
        Ok(Self {
            dp,
            rng,
            ledger,
            path,
        })
    }

    /// Records a round of local DP-SGD on `rows` rows (the site's own round
    /// count is the line's round id), if the budget allows; the line is
    /// synced before the update is made.
    fn record(&mut self, rows: usize, local: &LocalTraining) -> Result<f64, SiteDataError> {
        let (q, steps) = schedule(rows, local);
        let round = self
            .ledger
            .summary()
            .last_round
            .map_or(1, |r| r.saturating_add(1));
        let spend = RoundSpend::new(
            round,
            self.dp.noise_multiplier,
            q,
            self.dp.clip_norm,
            rows as u64,
        )
        .with_steps(steps);
        let recorded = self.ledger.record_round(&spend).map_err(|e| match e {
            veil_dp::Error::BudgetExceeded { would_be, budget } => SiteDataError(format!(
                "DP-SGD: another round would take this site's epsilon from {:.4} to {would_be:.4}, past its budget {budget}",
                self.ledger.summary().epsilon
            )),
            other => SiteDataError(format!("DP-SGD: the round cannot be accounted: {other}")),
        })?;
        if let Some(p) = &self.path {
            veil_net::files::append_synced(p, &recorded.line)
                .map_err(|e| SiteDataError(e.to_string()))?;
        }
        Ok(recorded.epsilon)
    }
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
                    let regression = schema.classes.is_empty();
                    if data.feature_names != schema.features
                        || data.is_regression() != regression
                        || (!regression
                            && data
                                .labels
                                .iter()
                                .any(|l| *l as usize >= schema.classes.len()))
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
        if spec.is_regression() && spec.standardization.is_none() {
            return Err(SiteDataError(
                "a regression is evaluated in its standardised label's units: the task has no standardisation".into(),
            )
            .into());
        }
        let mut rows = self.rows(&schema(spec), spec.holdout)?.held_out.clone();
        if let Some((mean, std)) = &spec.standardization {
            Standardizer::from_parts(mean.clone(), std.clone())?.apply(&mut rows);
        }
        let mut counts = EvaluationCounts::new(spec.classes.len());
        if rows.rows() == 0 {
            return Ok(counts);
        }
        let predicted = predict(model, &task.model, &rows).map_err(NoUpdate::from)?;
        if let Some(values) = &predicted.values {
            // A regression, in the standardised label's units.
            for (i, v) in values.iter().enumerate() {
                counts.add_regression(f64::from(rows.target(i)), f64::from(*v));
            }
            return Ok(counts);
        }
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
                // A regression's label is one more column.
                let rows = &self.rows(&schema(spec), spec.holdout)?.train;
                let mut sums = FeatureSums::new(spec.columns());
                let mut row = Vec::with_capacity(spec.columns());
                for i in 0..rows.rows() {
                    row.clear();
                    row.extend_from_slice(rows.row(i));
                    if rows.is_regression() {
                        row.push(rows.target(i));
                    }
                    sums.add(&row, bounds);
                }
                return Ok(sums.to_input(*row_cap, bounds));
            }
            _ => {}
        }
        if spec.is_regression() && spec.standardization.is_none() {
            // The model predicts the standardised label (SPEC.md §10.13).
            return Err(SiteDataError(
                "a regression task needs a standardisation of its label: a statistics round or the task's mean and std".into(),
            )
            .into());
        }
        let local = local_training(spec);
        let seed = self.seed ^ task.training_round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut data = self.rows(&schema(spec), spec.holdout)?.train.clone();
        if let Some((mean, std)) = &spec.standardization {
            Standardizer::from_parts(mean.clone(), std.clone())?.apply(&mut data);
        }
        let trained = match &mut self.dp_sgd {
            Some(site) => {
                site.record(data.rows(), &local)?;
                train_local_dp_sgd(&model, &task.model, &data, &local, &site.dp, &mut site.rng)
            }
            None => train_local(&model, &task.model, &data, &local, seed),
        };
        Ok(trained.map_err(NoUpdate::from)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_dp_sgd_site_records_each_round_and_refuses_one_past_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let dp = DpSgd {
            clip_norm: 1.0,
            noise_multiplier: 1.0,
        };
        let open = || {
            SiteDpSgd::new(
                dp,
                ChaCha20Rng::seed_from_u64(1),
                8.0,
                1e-5,
                Some(path.clone()),
            )
            .unwrap()
        };
        let local = LocalTraining {
            optimizer: veil_learn::train::LocalOptimizer::Sgd,
            epochs: 1,
            batch_size: 10,
            learning_rate: 0.1,
        };
        let mut site = open();
        let mut accepted = 0;
        let refusal = loop {
            match site.record(100, &local) {
                Ok(eps) => {
                    assert!(eps <= 8.0);
                    accepted += 1;
                }
                Err(e) => break e.0,
            }
            assert!(accepted < 1000, "the budget never ran out");
        };
        assert!(accepted >= 1, "{refusal}");
        assert!(accepted >= 2, "{refusal}");
        assert!(refusal.contains("past its budget 8"), "{refusal}");
        // The file holds exactly the accepted rounds, and a site reopened
        // from it (a restart) refuses at once.
        let summary = veil_dp::ledger::replay(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(summary.rounds, accepted);
        assert!(open().record(100, &local).is_err());
    }

    /// A regression site's rows: y = 3·x0 − x1 + noise-free offsets.
    fn regression_rows() -> Dataset {
        let n = 40;
        let mut features = Vec::new();
        let mut targets = Vec::new();
        for i in 0..n {
            #[expect(clippy::cast_precision_loss, reason = "small")]
            let (a, b) = (i as f32 / 7.0, (i % 5) as f32);
            features.extend([a, b]);
            targets.push(100.0 + 3.0 * a - b + if i % 3 == 0 { 2.0 } else { -1.0 });
        }
        Dataset {
            feature_names: vec!["a".into(), "b".into()],
            features,
            labels: vec![0; n],
            classes: 0,
            targets: Some(targets),
        }
    }

    fn regression_task(purpose: Purpose, model: Vec<f32>, data: &Dataset) -> Task {
        let scaler = Standardizer::fit(data);
        Task {
            training_round: 1,
            purpose,
            clip_norm: 2.0,
            scale: 256.0,
            noise_variance: 0.0,
            training: Some(TrainingSpec {
                architecture: "linear".into(),
                features: data.feature_names.clone(),
                classes: Vec::new(),
                optimizer: veil_secagg::messages::LocalOptimizer::Sgd,
                epochs: 2,
                batch_size: 8,
                learning_rate: 0.1,
                holdout: 0.25,
                standardization: Some((scaler.mean().to_vec(), scaler.std().to_vec())),
            }),
            model,
        }
    }

    #[test]
    fn a_regression_site_s_evaluation_input_gives_the_r2_of_its_held_out_rows() {
        let data = regression_rows();
        let model = vec![0.8_f32, -0.2, 0.05];
        let task = regression_task(Purpose::Evaluate { row_cap: 100 }, model.clone(), &data);
        let mut site = Site::new(Rows::Given(data.clone()), 1);
        let input = site.update(&task).unwrap();
        assert_eq!(input.len(), 4);
        let counts = EvaluationCounts::from_sum(&input, 100, 0).unwrap();
        // The same rows, held out and standardised by hand.
        let out: Vec<usize> = (0..data.rows()).filter(|i| held_out(*i, 0.25)).collect();
        let mut rows = data.subset(&out);
        Standardizer::fit(&data).apply(&mut rows);
        let spec = ModelSpec {
            architecture: veil_learn::model::Architecture::Linear,
            inputs: 2,
            classes: 0,
        };
        let predicted = predict(&spec, &model, &rows).unwrap().values.unwrap();
        let targets: Vec<f32> = (0..rows.rows()).map(|i| rows.target(i)).collect();
        let central = veil_learn::eval::r2(&predicted, &targets).unwrap();
        assert!((counts.examples - out.len() as f64).abs() < 1e-4);
        let secure = counts.r2().unwrap();
        assert!((secure - central).abs() < 1e-4, "{secure} vs {central}");
    }

    #[test]
    fn a_regression_site_sums_its_label_as_one_more_column_and_trains_only_standardised() {
        let data = regression_rows();
        let mut task = regression_task(
            Purpose::Statistics {
                row_cap: 100,
                bounds: vec![10.0, 10.0, 200.0],
            },
            vec![0.0; 3],
            &data,
        );
        let mut site = Site::new(Rows::Given(data.clone()), 1);
        let input = site.update(&task).unwrap();
        assert_eq!(input.len(), veil_secagg::messages::statistics_len(3));
        let sums = FeatureSums::from_sum(&input, 100, &[10.0, 10.0, 200.0]).unwrap();
        let kept: Vec<usize> = (0..data.rows()).filter(|i| !held_out(*i, 0.25)).collect();
        let label_sum: f64 = kept.iter().map(|&i| f64::from(data.target(i))).sum();
        assert!(
            (sums.sum[2] - label_sum).abs() < 1e-2 * label_sum,
            "{:?}",
            sums.sum
        );
        // Training without a standardisation of the label is refused.
        task.purpose = Purpose::Train;
        if let Some(t) = task.training.as_mut() {
            t.standardization = None;
        }
        let err = site.update(&task).unwrap_err().to_string();
        assert!(err.contains("standardisation"), "{err}");
    }
}
