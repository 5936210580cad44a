//! `veil simulate`: a whole federated training run on this machine. A
//! server and every client run in this process and talk real QUIC (mutual
//! TLS) on 127.0.0.1 through veil-net; each client trains with veil-learn
//! on its own rows, and its update is clipped, quantised, noised (veil-dp)
//! and masked (veil-secagg) before it leaves.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use veil_learn::dataset::{Dataset, Standardizer, load_indices, parse_indices};
use veil_learn::dp_sgd::{DpSgd, schedule, train_local_dp_sgd};
use veil_learn::eval::{Metrics, evaluate};
use veil_learn::model::{Architecture, ModelSpec};
use veil_learn::partition::{Partition, partition};
use veil_learn::server_opt::{ServerOptimizer, ServerOptimizerKind};
use veil_learn::train::{LocalOptimizer, LocalTraining, train_local};
use veil_net::client::{UpdateSource, run_client};
use veil_net::local::LocalDeployment;
use veil_net::server::{
    PrivacyPlan, RoundPlan, RoundReport, SecAggPlan, ServerModel, bind, run_in_memory, run_server,
};
use veil_net::task::Task;

mod plots;

const EMBEDDED_CSV: &str = include_str!("../../../data/breast_cancer.csv");
const EMBEDDED_TEST: &str = include_str!("../../../data/breast_cancer.test_idx.txt");

/// Differential privacy of a simulated run.
/// 2^16 quanta per clipping norm: rounding moves the mean by less than
/// 2^-16·C per coordinate, and adds a negligible `d/4` to the squared
/// sensitivity the privacy accounting charges.
const SCALED_CLIP: f64 = 65_536.0;

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

/// How the server and clients exchange messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Transport {
    /// Real QUIC with mutual TLS on 127.0.0.1.
    Quic,
    /// In memory, with virtual deadlines (fast experiments; no network code).
    Memory,
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
    /// `logistic`, or `mlp:W1,W2,…` (hidden widths). Default logistic.
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
    #[arg(long)]
    epsilon: Option<f64>,
    /// Noise multiplier, instead of a target epsilon.
    #[arg(long)]
    noise_multiplier: Option<f64>,
    /// Delta. Default 1e-5.
    #[arg(long)]
    delta: Option<f64>,
    /// L2 clipping norm of each client's update. Default 1.
    #[arg(long)]
    clip_norm: Option<f64>,
    /// Probability that a client sits out a round (it is then dropped at the
    /// phase deadline and the round goes on). Default 0.
    #[arg(long)]
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
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Server optimiser. Default fedavg.
    #[arg(long, value_enum)]
    server_optimizer: Option<ServerOpt>,
    /// Server learning rate. Default 1 (FedAvg), 0.05 (FedAdam, FedYogi).
    #[arg(long)]
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
}

#[cfg(test)]
impl SimulateArgs {
    /// The `clients` setting, for tests of the example file.
    pub(crate) fn clients(&self) -> Option<usize> {
        self.clients
    }
}

fn pick<T: Clone>(flag: Option<&T>, file: Option<&T>, default: T) -> T {
    flag.or(file).cloned().unwrap_or(default)
}

struct Settings {
    data_name: String,
    train: Dataset,
    test: Dataset,
    spec: ModelSpec,
    clients: usize,
    rounds: u64,
    partition: Partition,
    partition_text: String,
    dp: DpMode,
    epsilon: Option<f64>,
    noise_multiplier: Option<f64>,
    delta: f64,
    clip_norm: f64,
    dropout: f64,
    min_survivors: usize,
    phase_timeout: Duration,
    local: LocalTraining,
    server: ServerOptimizerKind,
    seed: u64,
    out: PathBuf,
    transport: Transport,
}

fn parse_model(s: &str, inputs: usize, classes: usize) -> Result<ModelSpec, String> {
    let architecture = match s {
        "logistic" => Architecture::Logistic,
        _ => {
            let widths = s
                .strip_prefix("mlp:")
                .ok_or_else(|| format!("model {s:?}: use `logistic` or `mlp:W1,W2,…`"))?;
            let hidden = widths
                .split(',')
                .map(|w| w.trim().parse::<usize>().ok().filter(|w| *w > 0))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("model {s:?}: hidden widths must be positive integers"))?;
            Architecture::Mlp { hidden }
        }
    };
    Ok(ModelSpec {
        architecture,
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

fn load_data(path: Option<&Path>) -> Result<(String, Dataset, Vec<usize>), String> {
    match path {
        None => {
            let data = Dataset::parse_csv(EMBEDDED_CSV, Path::new("breast_cancer.csv"))
                .map_err(|e| e.to_string())?;
            let test = parse_indices(EMBEDDED_TEST, Path::new("breast_cancer.test_idx.txt"))
                .map_err(|e| e.to_string())?;
            Ok(("breast_cancer.csv (embedded)".into(), data, test))
        }
        Some(p) => {
            let data = Dataset::load_csv(p).map_err(|e| e.to_string())?;
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

fn settings(args: &SimulateArgs) -> Result<Settings, String> {
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
    let (data_name, data, test_idx) = load_data(data_path.as_deref())?;
    let (mut train, mut test) = data.split(&test_idx).map_err(|e| e.to_string())?;
    let scaler = Standardizer::fit(&train);
    scaler.apply(&mut train);
    scaler.apply(&mut test);
    let model = pick(args.model.as_ref(), file.model.as_ref(), "logistic".into());
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
        spec,
        clients,
        rounds: pick(args.rounds.as_ref(), file.rounds.as_ref(), 20),
        partition: parse_partition(&partition_text)?,
        partition_text,
        dp: pick(args.dp.as_ref(), file.dp.as_ref(), DpMode::Distributed),
        epsilon: args.epsilon.or(file.epsilon),
        noise_multiplier: args.noise_multiplier.or(file.noise_multiplier),
        delta: pick(args.delta.as_ref(), file.delta.as_ref(), 1e-5),
        clip_norm: pick(args.clip_norm.as_ref(), file.clip_norm.as_ref(), 1.0),
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
    })
}

/// One client: its rows, its training settings, and the simulated dropout.
struct LearnSource {
    spec: ModelSpec,
    data: Dataset,
    local: LocalTraining,
    seed: u64,
    dropout: f64,
    rng: ChaCha20Rng,
    /// Example-level DP-SGD, with a generator seeded from the OS (noise
    /// must be unpredictable).
    dp_sgd: Option<(DpSgd, ChaCha20Rng)>,
}

impl UpdateSource for LearnSource {
    fn update(&mut self, task: &Task) -> Result<Vec<f32>, String> {
        if self.dropout > 0.0 && self.rng.random::<f64>() < self.dropout {
            return Err("simulated dropout: this client sits the round out".into());
        }
        match &mut self.dp_sgd {
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
        }
        .map_err(|e| e.to_string())
    }
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Serialize)]
struct RoundRow {
    round: u64,
    included: usize,
    participants: usize,
    test_loss: f64,
    test_accuracy: f64,
    test_auc: Option<f64>,
    epsilon: Option<f64>,
    ms: u64,
    bytes_up_per_client: u64,
    bytes_down_per_client: u64,
    udp_bytes_up_per_client: u64,
    udp_bytes_down_per_client: u64,
}

/// The server side: optimiser, evaluation, checkpoint, progress.
struct LearnServer {
    optimizer: ServerOptimizer,
    spec: ModelSpec,
    test: Dataset,
    checkpoint: PathBuf,
    rows: Arc<Mutex<Vec<RoundRow>>>,
    progress: ProgressBar,
    /// With DP-SGD: the largest example-level ε of any client after each
    /// round (the server's own ledger is off then).
    example_epsilon: Vec<f64>,
}

impl ServerModel for LearnServer {
    fn apply(&mut self, model: &mut [f32], mean_update: &[f32]) -> Result<(), String> {
        self.optimizer
            .apply(model, mean_update)
            .map_err(|e| e.to_string())
    }

    fn released(&mut self, report: &RoundReport, model: &[f32]) {
        let metrics = evaluate(&self.spec, model, &self.test).unwrap_or(Metrics {
            loss: f64::NAN,
            accuracy: f64::NAN,
            auc: None,
        });
        if let Err(e) = veil_learn::checkpoint::save(&self.checkpoint, &self.spec, model) {
            self.progress
                .println(format!("checkpoint not written: {e}"));
        }
        let n = report.participants.max(1) as u64;
        let row = RoundRow {
            round: report.training_round,
            included: report.included,
            participants: report.participants,
            test_loss: metrics.loss,
            test_accuracy: metrics.accuracy,
            test_auc: metrics.auc,
            epsilon: report.epsilon.or_else(|| {
                usize::try_from(report.training_round)
                    .ok()
                    .and_then(|r| self.example_epsilon.get(r.wrapping_sub(1)).copied())
            }),
            ms: report.total_ms,
            bytes_up_per_client: report.bytes_in / n,
            bytes_down_per_client: report.bytes_out / n,
            udp_bytes_up_per_client: report.udp_bytes_in / n,
            udp_bytes_down_per_client: report.udp_bytes_out / n,
        };
        self.progress.set_message(format!(
            "acc {:.3}{}",
            row.test_accuracy,
            row.epsilon
                .map(|e| format!("  ε {e:.2}"))
                .unwrap_or_default()
        ));
        self.progress.inc(1);
        if let Ok(mut rows) = self.rows.lock() {
            rows.push(row);
        }
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

pub(crate) fn run(args: &SimulateArgs) -> Result<String, String> {
    let s = settings(args)?;
    let started = Instant::now();
    std::fs::create_dir_all(&s.out).map_err(|e| format!("{}: {e}", s.out.display()))?;
    let parts =
        partition(&s.train.labels, s.clients, s.partition, s.seed).map_err(|e| e.to_string())?;
    let d = s.spec.num_params();
    let dimension = u32::try_from(d).map_err(|_| "model too large".to_owned())?;
    // Example-level DP-SGD: each client calibrates its own noise for its
    // sampling rate and steps; ε is per client, at the example level.
    let mut dp_sgd_plans = Vec::new();
    let mut example_epsilon = Vec::new();
    if s.dp == DpMode::DpSgd {
        for rows in &parts {
            let (q, steps) = schedule(rows.len(), &s.local);
            let total = steps.saturating_mul(s.rounds);
            let z = match s.noise_multiplier {
                Some(z) => z,
                None => veil_dp::calibrate::noise_multiplier(
                    s.epsilon.unwrap_or(8.0),
                    s.delta,
                    q,
                    total,
                )
                .map_err(|e| e.to_string())?,
            };
            dp_sgd_plans.push((z, q, steps));
        }
        for r in 1..=s.rounds {
            let mut worst = 0.0_f64;
            for &(z, q, steps) in &dp_sgd_plans {
                let eps = veil_dp::calibrate::epsilon(
                    z,
                    q,
                    steps.saturating_mul(r),
                    s.delta,
                    veil_dp::rdp::Conversion::Improved,
                )
                .map_err(|e| e.to_string())?;
                worst = worst.max(eps);
            }
            example_epsilon.push(worst);
        }
    }
    let privacy = match s.dp {
        DpMode::Off | DpMode::DpSgd => None,
        DpMode::Distributed => {
            // Calibrated for the distributed discrete Gaussian the ledger
            // accounts: the fewest shares a released sum holds, the model's
            // dimension and the scaled clip (SCALED_CLIP quanta).
            let z = match s.noise_multiplier {
                Some(z) => z,
                None => veil_dp::distributed::noise_multiplier(
                    s.epsilon.unwrap_or(8.0),
                    s.delta,
                    s.rounds,
                    &veil_dp::distributed::Deployment {
                        clients: s.min_survivors as u64,
                        dimension: u64::from(dimension),
                        scaled_clip: SCALED_CLIP,
                    },
                )
                .map_err(|e| e.to_string())?,
            };
            Some(PrivacyPlan {
                noise_multiplier: z,
                delta: s.delta,
                // The budget is what the run was calibrated for, plus the
                // calibration's tolerance.
                budget: s.epsilon.unwrap_or(f64::MAX / 4.0) * 1.001 + 1e-9,
            })
        }
    };
    // The recommended parameters for 5 % colluding clients (SPEC §9.3):
    // SecAgg+ where a sparse graph completes the round, else the complete
    // graph (classic SecAgg) with its smallest valid threshold.
    let expected_dropout = s.dropout.max(0.05);
    let secagg = SecAggPlan {
        expected_dropout,
        corrupt_fraction: 0.05,
        complete_graph_threshold: None,
    };
    let rec = secagg
        .parameters(s.clients)
        .map_err(|e| format!("secure aggregation for {} clients: {e}", s.clients))?;
    let secagg_text = format!(
        "{} with k = {}, t = {} for a full cohort, withstanding {} colluding client{}",
        if rec.complete {
            "classic SecAgg"
        } else {
            "SecAgg+"
        },
        rec.degree,
        rec.threshold,
        rec.max_corrupt,
        if rec.max_corrupt == 1 { "" } else { "s" }
    );
    let plan = RoundPlan {
        dimension,
        rounds: s.rounds,
        sampling_rate: 1.0,
        min_clients: s.min_survivors,
        max_clients: s.clients,
        start_delay: Duration::from_secs(10),
        phase_timeout: s.phase_timeout,
        secagg,
        clip_norm: s.clip_norm,
        scale: SCALED_CLIP / s.clip_norm,
        privacy,
        keep_sums: false,
    };
    let deployment = LocalDeployment::generate(s.clients).map_err(|e| e.to_string())?;
    let rows = Arc::new(Mutex::new(Vec::new()));
    let progress = ProgressBar::new(s.rounds);
    progress.set_style(
        ProgressStyle::with_template("round {pos}/{len} [{bar:30}] {elapsed} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let initial = s.spec.init(s.seed);
    let server_model = LearnServer {
        optimizer: ServerOptimizer::new(s.server, d).map_err(|e| e.to_string())?,
        spec: s.spec.clone(),
        test: s.test.clone(),
        checkpoint: s.out.join("model.safetensors"),
        rows: Arc::clone(&rows),
        progress: progress.clone(),
        example_epsilon,
    };
    let options = deployment.server_options(
        s.out.join("state"),
        plan,
        Box::new(server_model),
        Some(initial),
    );
    let mut sources = Vec::with_capacity(parts.len());
    for (i, rows) in parts.iter().enumerate() {
        sources.push(LearnSource {
            spec: s.spec.clone(),
            data: s.train.subset(rows),
            local: s.local,
            seed: s.seed.wrapping_add(i as u64 + 1),
            dropout: s.dropout,
            rng: ChaCha20Rng::seed_from_u64(s.seed.wrapping_mul(31).wrapping_add(i as u64)),
            dp_sgd: dp_sgd_plans.get(i).map(|&(z, _, _)| {
                (
                    DpSgd {
                        clip_norm: s.clip_norm,
                        noise_multiplier: z,
                    },
                    ChaCha20Rng::from_rng(&mut rand::rng()),
                )
            }),
        });
    }
    let summary = match s.transport {
        Transport::Quic => run_quic(&deployment, options, sources, dimension)?,
        Transport::Memory => {
            let clients = sources
                .into_iter()
                .enumerate()
                .map(|(i, source)| deployment.memory_client(i, Box::new(source)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            run_in_memory(
                options.plan,
                &deployment.roster,
                &options.state_dir,
                options.model,
                options.initial_model.as_deref(),
                clients,
            )
            .map_err(|e| e.to_string())?
        }
    };
    progress.finish();
    let rows = rows.lock().map_err(|_| "metrics lost".to_owned())?.clone();
    write_metrics(&s.out, &rows)?;
    plots::draw(
        &s.out,
        &rows.iter().map(plots::Point::from_row).collect::<Vec<_>>(),
    )?;
    let last = rows.last().ok_or("no round was released")?;
    let mut text = format!(
        "veil simulate: {}, {} clients ({}), {}, {} rounds {} in {:.1} s\n",
        s.data_name,
        s.clients,
        s.partition_text,
        match &s.spec.architecture {
            Architecture::Logistic => "logistic regression".to_owned(),
            Architecture::Mlp { hidden } => format!("MLP {hidden:?}"),
        },
        summary.released_rounds,
        match s.transport {
            Transport::Quic => "over QUIC on 127.0.0.1",
            Transport::Memory => "in memory",
        },
        started.elapsed().as_secs_f64()
    );
    text += &format!(
        "test accuracy {:.4}{}, loss {:.4} (held-out rows: {})\n",
        last.test_accuracy,
        last.test_auc
            .map(|a| format!(", ROC-AUC {a:.4}"))
            .unwrap_or_default(),
        last.test_loss,
        s.test.rows()
    );
    text += &match (s.dp, last.epsilon, privacy) {
        (DpMode::Distributed, Some(eps), Some(p)) => format!(
            "privacy: distributed discrete Gaussian, noise multiplier {:.4}, epsilon {eps:.3} at delta {} (ledger: {})\n",
            p.noise_multiplier,
            s.delta,
            s.out.join("state/ledger.jsonl").display()
        ),
        (DpMode::DpSgd, Some(eps), _) => {
            let zs: Vec<f64> = dp_sgd_plans.iter().map(|p| p.0).collect();
            let lo = zs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = zs.iter().copied().fold(0.0, f64::max);
            format!(
                "privacy: example-level DP-SGD in each client (clip {}, noise multipliers {lo:.3}..{hi:.3}), epsilon {eps:.3} at delta {} for the worst client; the sums carry no further noise\n",
                s.clip_norm, s.delta
            )
        }
        _ => "privacy: off (the released sums carry no noise)\n".to_owned(),
    };
    text += &format!("secure aggregation: {secagg_text}\n");
    let (up, down, unit): (Vec<u64>, Vec<u64>, &str) = match s.transport {
        Transport::Quic => (
            rows.iter().map(|r| r.udp_bytes_up_per_client).collect(),
            rows.iter().map(|r| r.udp_bytes_down_per_client).collect(),
            "UDP",
        ),
        Transport::Memory => (
            rows.iter().map(|r| r.bytes_up_per_client).collect(),
            rows.iter().map(|r| r.bytes_down_per_client).collect(),
            "messages",
        ),
    };
    text += &format!(
        "per round: {} B up and {} B down per client ({unit}, median), {} ms (median)\n",
        median(up),
        median(down),
        median(rows.iter().map(|r| r.ms).collect()),
    );
    text += &format!(
        "run directory: {} (metrics.csv, metrics.json, model.safetensors, accuracy_loss.png, epsilon.png, state/)",
        s.out.display()
    );
    Ok(text)
}

/// Runs the server and the clients over real QUIC on 127.0.0.1.
fn run_quic(
    deployment: &LocalDeployment,
    options: veil_net::server::ServerOptions,
    sources: Vec<LearnSource>,
    dimension: u32,
) -> Result<veil_net::server::ServerSummary, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let endpoint = bind(&options).map_err(|e| e.to_string())?;
        let addr = endpoint.local_addr().map_err(|e| e.to_string())?;
        let server = tokio::spawn(run_server(options, endpoint, std::future::pending()));
        let mut clients = Vec::new();
        for (i, mut source) in sources.into_iter().enumerate() {
            let options = deployment
                .client_options(i, addr, dimension)
                .map_err(|e| e.to_string())?;
            clients.push(tokio::spawn(async move {
                run_client(options, &mut source, std::future::pending()).await
            }));
        }
        let summary = server
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        for c in clients {
            c.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        Ok(summary)
    })
}

fn write_metrics(out: &Path, rows: &[RoundRow]) -> Result<(), String> {
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut csv = String::from(
        "round,included,participants,test_loss,test_accuracy,test_auc,epsilon,ms,bytes_up_per_client,bytes_down_per_client,udp_bytes_up_per_client,udp_bytes_down_per_client\n",
    );
    for r in rows {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.round,
            r.included,
            r.participants,
            r.test_loss,
            r.test_accuracy,
            opt(r.test_auc),
            opt(r.epsilon),
            r.ms,
            r.bytes_up_per_client,
            r.bytes_down_per_client,
            r.udp_bytes_up_per_client,
            r.udp_bytes_down_per_client
        );
    }
    let w = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes)
            .map_err(|e| format!("{}: {e}", out.join(name).display()))
    };
    w("metrics.csv", csv.as_bytes())?;
    w(
        "metrics.json",
        serde_json::to_string_pretty(rows)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )
}
