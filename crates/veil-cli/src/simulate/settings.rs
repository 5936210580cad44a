//! The settings of `veil simulate`: flags, the `--config` TOML file and the
//! defaults, resolved into one [`Settings`]; the data set loaded and split.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;
use veil_learn::dataset::{Dataset, Standardizer, load_indices, parse_indices};
use veil_learn::model::{Architecture, ModelSpec};
use veil_learn::partition::Partition;
use veil_learn::server_opt::ServerOptimizerKind;
use veil_learn::train::{LocalOptimizer, LocalTraining};

const EMBEDDED_CSV: &str = include_str!("../../../../data/breast_cancer.csv");
const EMBEDDED_TEST: &str = include_str!("../../../../data/breast_cancer.test_idx.txt");

/// Differential privacy of a simulated run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DpMode {
    /// No noise: the released sums are not differentially private.
    Off,
    /// Each client adds its share of discrete-Gaussian noise before masking.
    Distributed,
    /// Example-level DP-SGD inside each client's training (cross-silo).
    DpSgd,
}

/// What the label is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// Class ids (whole numbers 0..=65535).
    Classification,
    /// A real number: a squared loss, reported as MSE and R².
    Regression,
}

/// How the server and clients exchange messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Transport {
    /// Real QUIC with mutual TLS on 127.0.0.1.
    Quic,
    /// In memory, with virtual deadlines (fast experiments; no network code).
    Memory,
}

/// Where a simulated run's standardisation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Standardize {
    /// A secure statistics round before training, as a deployment runs it:
    /// only the sums of the sites' rows reach the server.
    Secure,
    /// Fitted on the pooled training rows: a simulation shortcut, standing
    /// for statistics the operator knows (a deployment's `[task] mean`,
    /// `std`).
    Pooled,
}

/// Local optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LocalOpt {
    /// SGD.
    Sgd,
    /// Adam.
    Adam,
}

/// Server optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ServerOpt {
    /// FedAvg.
    Fedavg,
    /// FedAdam (Reddi et al. 2021).
    Fedadam,
    /// FedYogi (Reddi et al. 2021).
    Fedyogi,
}

/// Every setting of a run; each is a flag, a key of the `--config` TOML
/// file (see `examples/simulate.toml`), or its default. Flags win.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimulateArgs {
    /// A TOML file with any of the settings below.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// A CSV data set (last column `label`); its test split is
    /// `<name>.test_idx.txt` beside it. Default: the embedded breast-cancer set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// `classification` (default) or `regression` (the label is a number,
    /// e.g. data/diabetes.csv).
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// `logistic` (classification), `linear` (regression), `mlp:W1,W2,…`
    /// (hidden widths), or `cnn:C` (C 3x3 kernels; square image rows, such
    /// as data/digits.csv). Default logistic, or linear for a regression.
    #[arg(long)]
    model: Option<String>,
    /// Number of clients. Default 20.
    #[arg(long)]
    clients: Option<usize>,
    /// Training rounds. Default 20.
    #[arg(long)]
    rounds: Option<u64>,
    /// `iid`, or `dirichlet:ALPHA` (non-IID by label). Default dirichlet:0.5.
    #[arg(long)]
    partition: Option<String>,
    /// Differential privacy: `off`, `distributed` (client-level, noise in the
    /// sum) or `dp-sgd` (example-level, noise in each client's training).
    /// Default distributed.
    #[arg(long, value_enum)]
    dp: Option<DpMode>,
    /// Target epsilon over the run (calibrates the noise). Default 8.
    #[arg(long, allow_negative_numbers = true)]
    epsilon: Option<f64>,
    /// Noise multiplier, instead of a target epsilon.
    #[arg(long, allow_negative_numbers = true, conflicts_with = "epsilon")]
    noise_multiplier: Option<f64>,
    /// Delta. Default 1e-5.
    #[arg(long, allow_negative_numbers = true)]
    delta: Option<f64>,
    /// L2 clipping norm of each client's update. Default 0.3 (chosen on a
    /// validation split of the training rows, never the test rows).
    #[arg(long, allow_negative_numbers = true)]
    clip_norm: Option<f64>,
    /// Probability that a client sits out a round (it is then dropped at the
    /// phase deadline and the round goes on). Default 0.
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f64>,
    /// The fewest contributions a released sum may hold; with DP the noise
    /// is sized for it. Default: all clients without dropout, else
    /// `clients · (1 − 2·dropout)`.
    #[arg(long)]
    min_survivors: Option<usize>,
    /// Phase deadline in milliseconds. Default 3000.
    #[arg(long)]
    phase_timeout_ms: Option<u64>,
    /// Local optimiser. Default sgd.
    #[arg(long, value_enum)]
    local_optimizer: Option<LocalOpt>,
    /// Local epochs per round. Default 5.
    #[arg(long)]
    local_epochs: Option<usize>,
    /// Local batch size. Default 16.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Local learning rate. Default 0.1.
    #[arg(long, allow_negative_numbers = true)]
    learning_rate: Option<f64>,
    /// Server optimiser. Default fedavg.
    #[arg(long, value_enum)]
    server_optimizer: Option<ServerOpt>,
    /// Server learning rate. Default 1 (FedAvg), 0.05 (FedAdam, FedYogi).
    #[arg(long, allow_negative_numbers = true)]
    server_lr: Option<f32>,
    /// Seed of the partition, the initial model and local shuffles.
    #[arg(long)]
    seed: Option<u64>,
    /// The run directory (must not exist). Default `runs/<unix time>`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `quic` (default) or `memory`.
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Secure evaluation after every N-th training round (and the last):
    /// each site evaluates the global model on its held-out rows and the
    /// server learns only the sums. With DP each evaluation is a release
    /// the ledger accounts. Default 0 (off).
    #[arg(long)]
    evaluate_every: Option<u64>,
    /// The fraction of each site's rows held out of training for the
    /// secure evaluation. Default 0.2 when evaluating, else 0.
    #[arg(long, allow_negative_numbers = true)]
    holdout: Option<f64>,
    /// Where the standardisation comes from: `secure` (a statistics round
    /// over the sites' rows) or `pooled` (fitted on all training rows, a
    /// simulation shortcut). Default: secure without DP; pooled with DP,
    /// whose noise on a few sites' sums would swamp the statistics.
    #[arg(long, value_enum)]
    standardize: Option<Standardize>,
}

#[cfg(test)]
impl SimulateArgs {
    /// The `clients` setting, for tests of the example file.
    pub(crate) fn clients(&self) -> Option<usize> {
        self.clients
    }
}

impl Settings {
    /// What the partition splits by: the class ids, or a regression's
    /// target quintiles (so that `dirichlet:ALPHA` skews sites by label
    /// there too).
    pub(super) fn strata(&self) -> Vec<u32> {
        let Some(targets) = &self.train.targets else {
            return self.train.labels.clone();
        };
        let mut sorted: Vec<f32> = targets.clone();
        sorted.sort_by(f32::total_cmp);
        let cut = |q: usize| {
            sorted
                .get(sorted.len().saturating_mul(q) / 5)
                .copied()
                .unwrap_or(0.0)
        };
        let cuts = [cut(1), cut(2), cut(3), cut(4)];
        targets
            .iter()
            .map(|t| cuts.iter().filter(|c| t >= *c).count() as u32)
            .collect()
    }
}

fn pick<T: Clone>(flag: Option<&T>, file: Option<&T>, default: T) -> T {
    flag.or(file).cloned().unwrap_or(default)
}

/// Every setting of a run, resolved.
pub(super) struct Settings {
    pub(super) data_name: String,
    /// The training rows, raw: each site standardises its own share with
    /// the task's standardisation.
    pub(super) train: Dataset,
    /// The test rows, raw (the simulation's own evaluation of each
    /// released model, standardised as the sites are).
    pub(super) test: Dataset,
    /// The standardisation fitted on the union of the training rows (used
    /// with `--standardize pooled`).
    pub(super) scaler: Standardizer,
    pub(super) spec: ModelSpec,
    pub(super) clients: usize,
    pub(super) rounds: u64,
    pub(super) partition: Partition,
    pub(super) partition_text: String,
    pub(super) dp: DpMode,
    pub(super) epsilon: Option<f64>,
    pub(super) noise_multiplier: Option<f64>,
    pub(super) delta: f64,
    pub(super) clip_norm: f64,
    pub(super) dropout: f64,
    pub(super) min_survivors: usize,
    pub(super) phase_timeout: Duration,
    pub(super) local: LocalTraining,
    pub(super) server: ServerOptimizerKind,
    pub(super) seed: u64,
    pub(super) out: PathBuf,
    pub(super) transport: Transport,
    /// Secure evaluation after every this many training rounds (0: none).
    pub(super) evaluate_every: u64,
    /// The fraction of each site's rows held out.
    pub(super) holdout: f64,
    /// Where the standardisation comes from.
    pub(super) standardize: Standardize,
}

fn parse_model(s: &str, inputs: usize, classes: usize) -> Result<ModelSpec, String> {
    Ok(ModelSpec {
        architecture: s.parse::<Architecture>().map_err(|e| e.to_string())?,
        inputs,
        classes,
    })
}

fn parse_partition(s: &str) -> Result<Partition, String> {
    if s == "iid" {
        return Ok(Partition::Iid);
    }
    s.strip_prefix("dirichlet:")
        .and_then(|a| a.parse::<f64>().ok())
        .filter(|a| a.is_finite() && *a > 0.0)
        .map(|alpha| Partition::Dirichlet { alpha })
        .ok_or_else(|| format!("partition {s:?}: use `iid` or `dirichlet:ALPHA` with ALPHA > 0"))
}

/// The most classes a data set may have before `simulate` asks whether
/// its label is a number.
const MAX_INFERRED_CLASSES: usize = 100;

fn load_data(path: Option<&Path>, kind: Kind) -> Result<(String, Dataset, Vec<usize>), String> {
    match path {
        None if kind == Kind::Regression => Err(
            "kind regression: give --data (the embedded set is a classification), e.g. data/diabetes.csv"
                .into(),
        ),
        None => {
            let data = Dataset::parse_csv(EMBEDDED_CSV, Path::new("breast_cancer.csv"))
                .map_err(|e| e.to_string())?;
            let test = parse_indices(EMBEDDED_TEST, Path::new("breast_cancer.test_idx.txt"))
                .map_err(|e| e.to_string())?;
            Ok(("breast_cancer.csv (embedded)".into(), data, test))
        }
        Some(p) => {
            let data = match kind {
                Kind::Classification => Dataset::load_csv(p),
                Kind::Regression => Dataset::load_csv_regression(p),
            }
            .map_err(|e| e.to_string())?;
            if data.classes > MAX_INFERRED_CLASSES {
                return Err(format!(
                    "{}: its label has {} classes; if it is a number, pass --kind regression",
                    p.display(),
                    data.classes
                ));
            }
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
            let idx = p.with_file_name(format!("{stem}.test_idx.txt"));
            let test = if idx.exists() {
                load_indices(&idx).map_err(|e| e.to_string())?
            } else {
                // No fixed split: every fifth row is a test row.
                (0..data.rows()).filter(|i| i % 5 == 4).collect()
            };
            Ok((p.display().to_string(), data, test))
        }
    }
}

/// Resolves the flags, the `--config` file and the defaults; loads and
/// splits the data set and standardises it.
pub(super) fn settings(args: &SimulateArgs) -> Result<Settings, String> {
    let file: SimulateArgs = match &args.config {
        Some(p) => crate::config::load(p)?,
        None => SimulateArgs::default(),
    };
    let data_path = args.data.as_ref().or(file.data.as_ref()).map(|p| {
        if args.data.is_none()
            && let Some(c) = &args.config
        {
            crate::config::resolve(c, p)
        } else {
            p.clone()
        }
    });
    let kind = pick(args.kind.as_ref(), file.kind.as_ref(), Kind::Classification);
    let (data_name, data, test_idx) = load_data(data_path.as_deref(), kind)?;
    let (train, test) = data.split(&test_idx).map_err(|e| e.to_string())?;
    // Fitted on the union of the training rows: what `--standardize pooled`
    // sends the sites (a deployment cannot pool rows; the secure statistics
    // round is what `--standardize secure` runs instead).
    let scaler = Standardizer::fit(&train);
    let model = pick(
        args.model.as_ref(),
        file.model.as_ref(),
        match kind {
            Kind::Classification => "logistic".into(),
            Kind::Regression => "linear".into(),
        },
    );
    let spec = parse_model(&model, train.dim(), data.classes)?;
    spec.check().map_err(|e| e.to_string())?;
    let clients = pick(args.clients.as_ref(), file.clients.as_ref(), 20);
    if !(2..=1000).contains(&clients) {
        return Err(format!("clients: {clients} is not in 2..=1000"));
    }
    let partition_text = pick(
        args.partition.as_ref(),
        file.partition.as_ref(),
        "dirichlet:0.5".into(),
    );
    let evaluate_every = pick(
        args.evaluate_every.as_ref(),
        file.evaluate_every.as_ref(),
        0,
    );
    let holdout = pick(
        args.holdout.as_ref(),
        file.holdout.as_ref(),
        if evaluate_every > 0 { 0.2 } else { 0.0 },
    );
    if !(0.0..=0.5).contains(&holdout) || (evaluate_every > 0 && holdout <= 0.0) {
        return Err(format!(
            "holdout: {holdout} is not in (0, 0.5] (secure evaluation needs held-out rows)"
        ));
    }
    let dp = pick(args.dp.as_ref(), file.dp.as_ref(), DpMode::Distributed);
    let epsilon = args.epsilon.or(file.epsilon);
    let noise_multiplier = args.noise_multiplier.or(file.noise_multiplier);
    if epsilon.is_some() && noise_multiplier.is_some() {
        return Err(
            "epsilon and noise-multiplier: give one (a target epsilon calibrates the noise)".into(),
        );
    }
    if dp == DpMode::Off && (epsilon.is_some() || noise_multiplier.is_some()) {
        return Err(
            "epsilon or noise-multiplier with --dp off: no noise is added, so neither applies"
                .into(),
        );
    }
    let positive = |name: &str, v: Option<f64>| match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(format!("{name}: {x} is not a finite number > 0"))
        }
        _ => Ok(()),
    };
    positive("epsilon", epsilon)?;
    positive("noise-multiplier", noise_multiplier)?;
    positive("clip-norm", args.clip_norm.or(file.clip_norm))?;
    positive("learning-rate", args.learning_rate.or(file.learning_rate))?;
    positive(
        "server-lr",
        args.server_lr.or(file.server_lr).map(f64::from),
    )?;
    if let Some(d) = args.delta.or(file.delta)
        && !(d > 0.0 && d < 1.0)
    {
        return Err(format!("delta: {d} is not in (0, 1)"));
    }
    let standardize = pick(
        args.standardize.as_ref(),
        file.standardize.as_ref(),
        if dp == DpMode::Off {
            Standardize::Secure
        } else {
            Standardize::Pooled
        },
    );
    if dp == DpMode::DpSgd && (standardize == Standardize::Secure || evaluate_every > 0) {
        // DP-SGD noises the training steps only: a statistics or
        // evaluation sum would reach the server with no noise at all.
        return Err(format!(
            "{}: with --dp dp-sgd its sums would carry no noise (DP-SGD noises only the training steps); use --dp distributed",
            if evaluate_every > 0 {
                "evaluate-every"
            } else {
                "standardize secure"
            }
        ));
    }
    let dropout = pick(args.dropout.as_ref(), file.dropout.as_ref(), 0.0);
    if !(0.0..0.5).contains(&dropout) {
        return Err(format!("dropout: {dropout} is not in [0, 0.5)"));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "clients <= 1000 and dropout < 0.5"
    )]
    let default_min = ((clients as f64) * (1.0 - 2.0 * dropout)).floor().max(2.0) as usize;
    let min_survivors = pick(
        args.min_survivors.as_ref(),
        file.min_survivors.as_ref(),
        default_min,
    );
    if !(2..=clients).contains(&min_survivors) {
        return Err(format!(
            "min-survivors: {min_survivors} is not in 2..={clients}"
        ));
    }
    let local = LocalTraining {
        optimizer: match pick(
            args.local_optimizer.as_ref(),
            file.local_optimizer.as_ref(),
            LocalOpt::Sgd,
        ) {
            LocalOpt::Sgd => LocalOptimizer::Sgd,
            LocalOpt::Adam => LocalOptimizer::Adam,
        },
        epochs: pick(args.local_epochs.as_ref(), file.local_epochs.as_ref(), 5),
        batch_size: pick(args.batch_size.as_ref(), file.batch_size.as_ref(), 16),
        learning_rate: pick(
            args.learning_rate.as_ref(),
            file.learning_rate.as_ref(),
            0.1,
        ),
    };
    local.check().map_err(|e| e.to_string())?;
    let server_opt = pick(
        args.server_optimizer.as_ref(),
        file.server_optimizer.as_ref(),
        ServerOpt::Fedavg,
    );
    let adaptive_lr = pick(args.server_lr.as_ref(), file.server_lr.as_ref(), 0.05);
    let server = match server_opt {
        ServerOpt::Fedavg => ServerOptimizerKind::FedAvg {
            lr: pick(args.server_lr.as_ref(), file.server_lr.as_ref(), 1.0),
        },
        ServerOpt::Fedadam => ServerOptimizerKind::FedAdam {
            lr: adaptive_lr,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
        },
        ServerOpt::Fedyogi => ServerOptimizerKind::FedYogi {
            lr: adaptive_lr,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
        },
    };
    let out = match args.out.as_ref().or(file.out.as_ref()) {
        Some(p) => p.clone(),
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from("runs").join(secs.to_string())
        }
    };
    if out.exists() {
        return Err(format!(
            "{}: the run directory exists; choose another with --out",
            out.display()
        ));
    }
    Ok(Settings {
        data_name,
        train,
        test,
        scaler,
        spec,
        clients,
        rounds: pick(args.rounds.as_ref(), file.rounds.as_ref(), 20),
        partition: parse_partition(&partition_text)?,
        partition_text,
        dp,
        epsilon,
        noise_multiplier,
        delta: pick(args.delta.as_ref(), file.delta.as_ref(), 1e-5),
        clip_norm: pick(args.clip_norm.as_ref(), file.clip_norm.as_ref(), 0.3),
        dropout,
        min_survivors,
        phase_timeout: Duration::from_millis(pick(
            args.phase_timeout_ms.as_ref(),
            file.phase_timeout_ms.as_ref(),
            3000,
        )),
        local,
        server,
        seed: pick(args.seed.as_ref(), file.seed.as_ref(), 1),
        out,
        transport: pick(
            args.transport.as_ref(),
            file.transport.as_ref(),
            Transport::Quic,
        ),
        evaluate_every,
        holdout,
        standardize,
    })
}
