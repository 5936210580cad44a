//! `veil server` and `veil client`: the long-running service commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use veil_learn::server_opt::ServerOptimizerKind;
use veil_net::client::{ClientOptions, ClientStop, Fault, run_client};
use veil_net::deployment::{RosterFile, load_identity};
use veil_net::pki::{load_certs, load_key};
use veil_net::server::{
    PrivacyPlan, RoundPlan, SecAggPlan, ServerOptions, StopReason, bind, run_server,
};
use veil_net::synthetic::SyntheticSource;
use veil_secagg::messages::MessageType;

use crate::config::{self, ClientFile, ServerFile, Source, check, resolve};
use crate::failure::Failure;
use crate::learning::Learner;

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
    let tls = &file.tls;
    let e = |err: veil_net::Error| err.to_string();
    let plan = RoundPlan {
        dimension: r.dimension,
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
        privacy: file.privacy.as_ref().map(|p| PrivacyPlan {
            noise_multiplier: p.noise_multiplier,
            delta: p.delta,
            budget: p.budget,
        }),
        keep_sums: r.keep_sums,
        training: None,
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
    let learner = Learner::new(
        ServerOptimizerKind::FedAvg { lr: r.server_lr },
        plan.dimension as usize,
        None,
    )
    .map_err(|err| format!("{}: rounds.server_lr: {err}", path.display()))?;
    Ok(ServerOptions {
        listen: args.listen.unwrap_or(file.listen),
        ca: load_certs(&resolve(path, &tls.ca)).map_err(e)?,
        cert_chain: load_certs(&resolve(path, &tls.cert)).map_err(e)?,
        key: load_key(&resolve(path, &tls.key)).map_err(e)?,
        roster: RosterFile::load(&resolve(path, &tls.roster)).map_err(e)?,
        state_dir: args
            .state_dir
            .clone()
            .unwrap_or_else(|| resolve(path, &file.state_dir)),
        plan,
        limits: file.limits.limits(),
        handshake_timeout: file.limits.handshake_timeout(),
        model: Box::new(learner),
        initial_model: None,
        unmask_threads: file.limits.unmask_threads(),
    })
}

/// The server config's key of a round plan's field.
fn config_key(field: &str) -> String {
    match field {
        "phase_timeout" => "rounds.phase_timeout_ms".to_owned(),
        f if f.contains('.') || f == "privacy" || f == "secagg" => f.to_owned(),
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

fn client_options(args: &ClientArgs) -> Result<(ClientOptions, Source), String> {
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
        },
        file.source,
    ))
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
    let mut source = match source {
        Source::Synthetic => SyntheticSource::new(&name),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let summary = run_client(options, &mut source, shutdown_signal()).await?;
        let why = match summary.reason {
            ClientStop::ServerDone => "the server finished",
            ClientStop::RoundsDone => "its rounds are done",
            ClientStop::Left => "an injected fault made it leave mid-round",
            _ => "it was asked to stop",
        };
        Ok(format!(
            "client {name:?} (participant {}) stopped ({why}): {} rounds completed, {} failed",
            summary.id, summary.completed, summary.failed
        ))
    })
}
