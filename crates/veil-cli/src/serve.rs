//! `veil server` and `veil client`: the long-running service commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tracing::{info, warn};
use veil_learn::checkpoint::ModelCard;
use veil_learn::dataset::{CsvFormat, Standardizer};
use veil_learn::server_opt::ServerOptimizerKind;
use veil_net::client::UpdateSource;
use veil_net::client::{ClientOptions, ClientStop, Fault, run_client};
use veil_net::deployment::{RosterFile, load_identity};
use veil_net::pki::{load_certs, load_key};
use veil_net::server::RoundReport;
use veil_net::server::{
    EvaluationPlan, PrivacyPlan, RoundPlan, SecAggPlan, ServerOptions, StatisticsPlan, StopReason,
    bind, run_server,
};
use veil_net::synthetic::SyntheticSource;
use veil_secagg::messages::LocalOptimizer;
use veil_secagg::messages::MessageType;

use crate::config::{self, ClientFile, ServerFile, Source, check, resolve};
use crate::failure::Failure;
use crate::learning::{Learner, OnRelease, Rows, Site, model_spec};

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The server's TOML config (see examples/server.toml).
    #[arg(long)]
    config: PathBuf,
    /// Overrides `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Overrides `state_dir`.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Overrides `rounds.rounds` (0: no limit).
    #[arg(long)]
    rounds: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// The client's TOML config (see examples/client.toml).
    #[arg(long)]
    config: PathBuf,
    /// Overrides `server`.
    #[arg(long)]
    server: Option<SocketAddr>,
    /// Overrides `max_rounds`.
    #[arg(long)]
    max_rounds: Option<u64>,
    /// The site's rows: train the server's task on this CSV (overrides
    /// `data`, and implies `source = "csv"`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The CSV's field delimiter (overrides `delimiter`).
    #[arg(long)]
    delimiter: Option<char>,
    /// Testing only: go silent in the first round once this message is
    /// received or sent (round-config, advertise-keys, share-keys,
    /// masked-input, consistency-signature).
    #[arg(long, hide = true, value_parser = parse_fault)]
    fault_stall_after: Option<MessageType>,
    /// Testing only: leave (close the connection and exit) in the first
    /// round once this message is received or sent.
    #[arg(long, hide = true, value_parser = parse_fault, conflicts_with = "fault_stall_after")]
    fault_leave_after: Option<MessageType>,
}

fn parse_fault(s: &str) -> Result<MessageType, String> {
    Ok(match s {
        "round-config" => MessageType::RoundConfig,
        "advertise-keys" => MessageType::AdvertiseKeys,
        "share-keys" => MessageType::ShareKeys,
        "masked-input" => MessageType::MaskedInput,
        "consistency-signature" => MessageType::ConsistencySignature,
        _ => return Err(format!("unknown fault point {s:?}")),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn server_options(args: &ServerArgs) -> Result<ServerOptions, String> {
    let path = &args.config;
    let file: ServerFile = config::load(path)?;
    let r = &file.rounds;
    check(
        path,
        "limits.unmask_threads",
        file.limits
            .unmask_threads
            .is_none_or(|t| (1..=1024).contains(&t)),
        "must be in 1..=1024",
    )?;
    let task = file
        .task
        .as_ref()
        .map(|t| task_from_file(t).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?;
    let dimension = match (&task, r.dimension) {
        (Some(t), Some(d)) if t.dimension != d => {
            return Err(format!(
                "{}: rounds.dimension: {d}, but the task's model has {} parameters (leave it out)",
                path.display(),
                t.dimension
            ));
        }
        (Some(t), _) => t.dimension,
        (None, Some(d)) => d,
        (None, None) => {
            return Err(format!(
                "{}: rounds.dimension: needed without a [task]",
                path.display()
            ));
        }
    };
    let tls = &file.tls;
    let e = |err: veil_net::Error| err.to_string();
    let plan = RoundPlan {
        dimension,
        rounds: args.rounds.unwrap_or(r.rounds),
        sampling_rate: r.sampling_rate,
        min_clients: r.min_clients,
        max_clients: r.max_clients,
        start_delay: Duration::from_millis(r.start_delay_ms),
        phase_timeout: Duration::from_millis(r.phase_timeout_ms),
        secagg: SecAggPlan {
            expected_dropout: file.secagg.expected_dropout,
            corrupt_fraction: file.secagg.corrupt_fraction,
            complete_graph_threshold: file.secagg.complete_graph_threshold,
        },
        clip_norm: r.clip_norm,
        scale: r.scale,
        privacy: None,
        keep_sums: r.keep_sums,
        training: task.as_ref().map(|t| t.training.clone()),
        evaluation: file.evaluation.as_ref().map(|e| EvaluationPlan {
            every: e.every,
            row_cap: e.row_cap,
        }),
        statistics: match &file.statistics {
            None => None,
            Some(st) => Some(StatisticsPlan {
                row_cap: st.row_cap,
                bounds: match (&st.bounds, st.bound, &task) {
                    (Some(b), None, _) => b.clone(),
                    (None, Some(b), Some(t)) => vec![b; t.training.columns()],
                    (None, Some(_), None) => Vec::new(),
                    _ => {
                        return Err(format!(
                            "{}: statistics: give `bound` (one for every feature) or `bounds` (one per feature), not both",
                            path.display()
                        ));
                    }
                },
            }),
        },
    };
    let mut plan = plan;
    plan.privacy = match &file.privacy {
        None => None,
        Some(p) => Some(privacy_plan(p, &plan).map_err(|e| format!("{}: {e}", path.display()))?),
    };
    // The plan's one check; its fields are the config file's keys.
    if let Err(err) = plan.check() {
        return Err(match err {
            veil_round::Error::Plan { field, problem } => {
                format!("{}: {}: {problem}", path.display(), config_key(field))
            }
            other => format!("{}: {other}", path.display()),
        });
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| resolve(path, &file.state_dir));
    let (optimizer, on_release, initial_model) = match task {
        Some(t) => {
            let delta = plan.privacy.map(|p| p.delta);
            // A restarted server's statistics round is done already: its
            // checkpoints carry what it released.
            let mut card = t.card;
            let released =
                veil_net::state::read_standardization(&state_dir.join("standardization.json"))
                    .map_err(|err| format!("{}: {err}", path.display()))?;
            if let Some((mean, std)) = released {
                card.standardization = Some(
                    Standardizer::from_parts(mean, std)
                        .map_err(|err| format!("{}: {err}", state_dir.display()))?,
                );
            }
            let initial = match &file.task.as_ref().and_then(|f| f.initial_model.clone()) {
                Some(p) => {
                    let at = resolve(path, p);
                    veil_learn::checkpoint::load(&at, &t.model)
                        .map_err(|err| format!("{}: task.initial_model: {err}", path.display()))?
                }
                None => t.model.init(1),
            };
            (
                t.server,
                Some(checkpoint_writer(
                    state_dir.join("checkpoint.safetensors"),
                    card,
                    delta,
                )),
                Some(initial),
            )
        }
        None => (ServerOptimizerKind::FedAvg { lr: r.server_lr }, None, None),
    };
    let learner = Learner::new(optimizer, plan.dimension as usize, on_release)
        .map_err(|err| format!("{}: server optimiser: {err}", path.display()))?;
    Ok(ServerOptions {
        listen: args.listen.unwrap_or(file.listen),
        ca: load_certs(&resolve(path, &tls.ca)).map_err(e)?,
        cert_chain: load_certs(&resolve(path, &tls.cert)).map_err(e)?,
        key: load_key(&resolve(path, &tls.key)).map_err(e)?,
        roster: RosterFile::load(&resolve(path, &tls.roster)).map_err(e)?,
        state_dir,
        plan,
        limits: file.limits.limits(),
        handshake_timeout: file.limits.handshake_timeout(),
        model: Box::new(learner),
        initial_model,
        unmask_threads: file.limits.unmask_threads(),
    })
}

/// The server config's key of a round plan's field.
fn config_key(field: &str) -> String {
    match field {
        "phase_timeout" => "rounds.phase_timeout_ms".to_owned(),
        f if f.contains('.')
            || ["privacy", "secagg", "task", "evaluation", "statistics"].contains(&f) =>
        {
            f.to_owned()
        }
        f => format!("rounds.{f}"),
    }
}

pub(crate) fn server(args: &ServerArgs) -> Result<String, Failure> {
    let options = server_options(args)?;
    let rt = runtime()?;
    rt.block_on(async {
        let endpoint = bind(&options)?;
        let summary = run_server(options, endpoint, shutdown_signal()).await?;
        let why = match summary.reason {
            StopReason::RoundsDone => "its rounds are done",
            StopReason::BudgetExhausted => "the privacy budget is spent",
            _ => "it was asked to stop",
        };
        Ok(format!(
            "server stopped ({why}): {} training rounds released, {} failed in this run",
            summary.released_rounds, summary.failed_rounds
        ))
    })
}

/// A server's task, read from its `[task]` table.
struct ServerTask {
    training: veil_secagg::messages::TrainingSpec,
    model: veil_learn::model::ModelSpec,
    dimension: u32,
    server: ServerOptimizerKind,
    /// The card of each checkpoint, its round and privacy filled in per
    /// release.
    card: ModelCard,
}

/// The `[privacy]` table as a plan: a noise multiplier and a budget, or a
/// target ε the plan calibrates its noise for (the budget then that ε).
fn privacy_plan(p: &config::Privacy, plan: &RoundPlan) -> Result<PrivacyPlan, String> {
    let (noise_multiplier, budget) = match (p.noise_multiplier, p.epsilon, p.budget) {
        (Some(z), None, Some(budget)) => (z, budget),
        (Some(_), None, None) => {
            return Err("privacy.budget: needed with a noise_multiplier".into());
        }
        (None, Some(epsilon), budget) => {
            if !(epsilon.is_finite() && epsilon > 0.0) {
                return Err(format!(
                    "privacy.epsilon: {epsilon} is not a finite number > 0"
                ));
            }
            let z = plan.calibrate(epsilon, p.delta).map_err(|e| match e {
                veil_round::Error::Plan { field, problem } => format!("{field}: {problem}"),
                other => format!("privacy.epsilon: {other}"),
            })?;
            info!(
                epsilon,
                delta = p.delta,
                releases = plan.releases(),
                noise_multiplier = z,
                "noise calibrated for the run's releases"
            );
            (z, budget.unwrap_or(epsilon))
        }
        (Some(_), Some(_), _) => {
            return Err("privacy: give noise_multiplier or epsilon, not both".into());
        }
        (None, None, _) => {
            return Err("privacy: give noise_multiplier (with budget) or epsilon".into());
        }
    };
    Ok(PrivacyPlan {
        noise_multiplier,
        delta: p.delta,
        budget,
    })
}

fn task_from_file(t: &config::TaskFile) -> Result<ServerTask, String> {
    let optimizer = match t.local_optimizer.as_str() {
        "sgd" => LocalOptimizer::Sgd,
        "adam" => LocalOptimizer::Adam,
        other => {
            return Err(format!(
                "task.local_optimizer: {other:?} is not sgd or adam"
            ));
        }
    };
    match (t.kind.as_str(), t.classes.is_empty()) {
        ("classification", false) | ("regression", true) => {}
        ("classification", true) => {
            return Err(
                "task.classes: a classification names its classes (or kind = \"regression\")"
                    .into(),
            );
        }
        ("regression", false) => {
            return Err("task.classes: a regression has none (the label is a number)".into());
        }
        (other, _) => {
            return Err(format!(
                "task.kind: {other:?} is not classification or regression"
            ));
        }
    }
    let standardization = match (&t.mean, &t.std) {
        (Some(m), Some(s)) => Some((m.clone(), s.clone())),
        (None, None) => None,
        _ => return Err("task.mean and task.std: both or neither".into()),
    };
    let training = veil_secagg::messages::TrainingSpec {
        architecture: t.model.clone(),
        features: t.features.clone(),
        classes: t.classes.clone(),
        optimizer,
        epochs: t.epochs,
        batch_size: t.batch_size,
        learning_rate: t.learning_rate,
        holdout: t.holdout,
        standardization,
    };
    training.validate().map_err(|e| format!("task.{e}"))?;
    let model = model_spec(&training).map_err(|e| format!("task.model: {e}"))?;
    let dimension = u32::try_from(model.num_params())
        .ok()
        .filter(|d| *d <= veil_secagg::config::MAX_DIMENSION)
        .ok_or("task.model: more than 2^26 parameters")?;
    let lr = |default: f32| t.server_lr.unwrap_or(default);
    let server = match t.server_optimizer.as_str() {
        "fedavg" => ServerOptimizerKind::FedAvg { lr: lr(1.0) },
        "fedadam" => ServerOptimizerKind::FedAdam {
            lr: lr(0.05),
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
        },
        "fedyogi" => ServerOptimizerKind::FedYogi {
            lr: lr(0.05),
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
        },
        other => {
            return Err(format!(
                "task.server_optimizer: {other:?} is not fedavg, fedadam or fedyogi"
            ));
        }
    };
    let card = ModelCard {
        architecture: model.architecture.clone(),
        features: training.features.clone(),
        classes: training.classes.clone(),
        standardization: match &training.standardization {
            Some((m, s)) => Some(
                Standardizer::from_parts(m.clone(), s.clone())
                    .map_err(|e| format!("task.mean/std: {e}"))?,
            ),
            None => None,
        },
        training_round: 0,
        privacy: None,
    };
    Ok(ServerTask {
        training,
        model,
        dimension,
        server,
        card,
    })
}

/// Writes the released model with its card after each release (the
/// deployment's deliverable, `veil predict --model`), atomically.
fn checkpoint_writer(path: PathBuf, mut card: ModelCard, delta: Option<f64>) -> OnRelease {
    Box::new(move |report: &RoundReport, model: &[f32]| {
        if let Some(st) = &report.statistics {
            // The standardisation every site uses from now on, and so the
            // model's.
            match Standardizer::from_parts(st.mean.clone(), st.std.clone()) {
                Ok(s) => card.standardization = Some(s),
                Err(e) => warn!("released statistics not usable as a standardisation: {e}"),
            }
            return;
        }
        if report.evaluation.is_some() {
            // An evaluation round: the model did not change.
            return;
        }
        card.training_round = report.training_round;
        card.privacy = report.epsilon.zip(delta);
        let written = veil_learn::checkpoint::encode_card(&card, model)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                veil_net::files::write_atomic(&path, &bytes, false).map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => info!(
                round = report.training_round,
                "checkpoint written to {}",
                path.display()
            ),
            Err(e) => warn!("checkpoint not written: {e}"),
        }
    })
}

/// Where a client's updates come from.
enum SiteSource {
    Synthetic,
    Csv(PathBuf, CsvFormat),
}

fn client_options(args: &ClientArgs) -> Result<(ClientOptions, SiteSource), String> {
    let path = &args.config;
    let file: ClientFile = config::load(path)?;
    check(
        path,
        "max_dimension",
        (1..=veil_secagg::config::MAX_DIMENSION).contains(&file.max_dimension),
        "must be in 1..=67108864",
    )?;
    check(
        path,
        "idle_timeout_ms",
        (100..=600_000).contains(&file.idle_timeout_ms),
        "must be in 100..=600000",
    )?;
    let tls = &file.tls;
    let e = |err: veil_net::Error| err.to_string();
    Ok((
        ClientOptions {
            server: args.server.unwrap_or(file.server),
            server_name: file.server_name.clone(),
            ca: load_certs(&resolve(path, &tls.ca)).map_err(e)?,
            cert_chain: load_certs(&resolve(path, &tls.cert)).map_err(e)?,
            key: load_key(&resolve(path, &tls.key)).map_err(e)?,
            identity: load_identity(&resolve(path, &file.identity)).map_err(e)?,
            roster: RosterFile::load(&resolve(path, &tls.roster)).map_err(e)?,
            limits: veil_net::tls::Limits {
                idle_timeout: Duration::from_millis(file.idle_timeout_ms),
                max_connections: 1,
            },
            max_dimension: file.max_dimension,
            backoff: file.backoff.backoff(),
            max_rounds: args.max_rounds.or(file.max_rounds),
            fault: args
                .fault_stall_after
                .map(Fault::StallAfter)
                .or(args.fault_leave_after.map(Fault::LeaveAfter)),
            floor: file.floor.floor(path)?,
            min_noise_multiplier: file.floor.min_noise_multiplier,
            state_dir: Some(resolve(path, &file.state_dir(path))),
            site_budget: match &file.privacy {
                None => None,
                Some(p) => {
                    if !(p.budget.is_finite() && p.budget > 0.0) {
                        return Err(format!(
                            "{}: privacy.budget: must be finite and positive",
                            path.display()
                        ));
                    }
                    if !(p.delta > 0.0 && p.delta < 1.0) {
                        return Err(format!(
                            "{}: privacy.delta: must be in (0, 1)",
                            path.display()
                        ));
                    }
                    Some(veil_net::client::SiteBudget {
                        epsilon: p.budget,
                        delta: p.delta,
                    })
                }
            },
        },
        site_source(args, &file)?,
    ))
}

fn site_source(args: &ClientArgs, file: &ClientFile) -> Result<SiteSource, String> {
    let path = &args.config;
    let csv = args.data.is_some() || file.source == Source::Csv;
    if !csv {
        return Ok(SiteSource::Synthetic);
    }
    let data = match (&args.data, &file.data) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => resolve(path, d),
        (None, None) => {
            return Err(format!(
                "{}: data: needed with source = \"csv\" (or give --data)",
                path.display()
            ));
        }
    };
    let delimiter = args.delimiter.or(file.delimiter).unwrap_or(',');
    let delimiter = u8::try_from(delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| format!("{}: delimiter: one ASCII character", path.display()))?;
    Ok(SiteSource::Csv(data, CsvFormat { delimiter }))
}

pub(crate) fn client(args: &ClientArgs) -> Result<String, Failure> {
    let (options, source) = client_options(args)?;
    let name = options
        .cert_chain
        .first()
        .and_then(|c| {
            options
                .roster
                .by_fingerprint(&veil_net::pki::fingerprint(c))
        })
        .map(|entry| entry.name.clone())
        .ok_or("this client's certificate is not in the roster")?;
    let mut source: Box<dyn UpdateSource> = match source {
        SiteSource::Synthetic => Box::new(SyntheticSource::new(&name)),
        SiteSource::Csv(path, format) => {
            // Each site shuffles its rows with its own seed.
            let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            Box::new(Site::new(Rows::Csv { path, format }, seed))
        }
    };
    let rt = runtime()?;
    rt.block_on(async {
        let summary = run_client(options, source.as_mut(), shutdown_signal()).await?;
        let why = match summary.reason {
            ClientStop::ServerDone => "the server finished",
            ClientStop::RoundsDone => "its rounds are done",
            ClientStop::Left => "an injected fault made it leave mid-round",
            _ => "it was asked to stop",
        };
        Ok(format!(
            "client {name:?} (participant {}) stopped ({why}): {} training rounds completed{}, {} failed",
            summary.id,
            summary.completed,
            if summary.summaries > 0 {
                format!(
                    " (and {} statistics or evaluation rounds)",
                    summary.summaries
                )
            } else {
                String::new()
            },
            summary.failed
        ))
    })
}
