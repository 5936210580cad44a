//! The server runtime: accepts authenticated clients into a pool and runs
//! the deployment's rounds by driving veil-round's [`Coordinator`] over
//! their connections; a round is released only after the privacy ledger,
//! the model checkpoint and the counters are on disk (SPEC.md §12.4–§12.5).
//!
//! Every decision (who is in a round, when it starts, what is sent, when
//! to release) is the coordinator's; this module moves bytes and time and
//! carries out its actions:
//! - `admission`: the endpoint, the accept loop, the handshake, the roster;
//! - `driver`: the QUIC driver of the coordinator;
//! - `memory`: the in-memory driver, every client in this process;
//! - `blocking`: keeping the runtime responsive while a round unmasks.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tracing::{info, warn};
use veil_dp::ledger::Ledger;
use veil_round::{Coordinator, Counters, Resume};
pub use veil_round::{
    EvaluationPlan, EvaluationRecord, KeepModel, PrivacyPlan, RoundPlan, RoundReport, SecAggPlan,
    ServerModel, StatisticsPlan, StatisticsRecord, StopReason,
};

mod admission;
mod blocking;
mod driver;
mod memory;

pub use admission::bind;
pub use memory::{MemoryClient, run_in_memory};

use crate::deployment::RosterFile;
use crate::error::Result;
use crate::state::StateDir;
use crate::tls::{Limits, close};

/// Everything the server needs.
pub struct ServerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The deployment CA's certificates.
    pub ca: Vec<CertificateDer<'static>>,
    /// The server's certificate chain.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
    /// The deployment roster.
    pub roster: RosterFile,
    /// The state directory.
    pub state_dir: PathBuf,
    /// What rounds do.
    pub plan: RoundPlan,
    /// Connection limits.
    pub limits: Limits,
    /// How long a handshake and the client's first frame may take.
    pub handshake_timeout: Duration,
    /// The server optimiser and release observer.
    pub model: Box<dyn ServerModel>,
    /// The model a new state directory starts from (zeros if `None`).
    pub initial_model: Option<Vec<f32>>,
    /// Threads a round's final unmasking may use (0 counts as 1); the
    /// round's one long computation, so `veil server` defaults to every
    /// core.
    pub unmask_threads: usize,
}

/// Every core this process may use: the default for
/// [`ServerOptions::unmask_threads`].
#[must_use]
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl core::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// A summary of a server run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerSummary {
    /// Why it stopped.
    pub reason: StopReason,
    /// Training rounds released in total (this run and earlier ones).
    pub released_rounds: u64,
    /// Rounds that aborted or were discarded in this run.
    pub failed_rounds: u64,
}

impl ServerSummary {
    fn of(reason: StopReason, coordinator: &Coordinator) -> Self {
        Self {
            reason,
            released_rounds: coordinator.counters().released_rounds,
            failed_rounds: coordinator.failed_rounds(),
        }
    }
}

/// Refuses a ledger whose tail is not the one the state recorded (SPEC.md
/// §12.5): truncated, or replaced. One line past the state is a release
/// interrupted between its ledger line and its state, and stays counted.
fn check_ledger_tail(state: &StateDir, ledger: &Ledger, counters: &mut Counters) -> Result<()> {
    let summary = ledger.summary();
    let Some(lines) = counters.ledger_lines else {
        // A state written before the tail was recorded: adopt the ledger.
        warn!(
            "{}: records no ledger tail; taking the ledger's {} lines as they are",
            state.root().display(),
            summary.rounds
        );
        counters.ledger_lines = Some(summary.rounds);
        counters.ledger_tail = summary.line_hashes.last().copied();
        return Ok(());
    };
    match veil_dp::ledger::check_tail(summary, lines, counters.ledger_tail.as_ref()) {
        Ok(veil_dp::ledger::TailCheck::OneAhead) => {
            warn!(
                "{}: one line past the state: a release was interrupted after its ledger line; it stays counted",
                state.ledger_path().display()
            );
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(crate::error::bad_file(&state.ledger_path(), e.to_string())),
    }
}

/// Opens the state directory (resuming from it) and its ledger, and the
/// coordinator over them.
fn open_coordinator(
    plan: RoundPlan,
    roster: &RosterFile,
    state_dir: &Path,
    model: Box<dyn ServerModel>,
    initial_model: Option<&[f32]>,
) -> Result<(StateDir, Coordinator)> {
    plan.check()?;
    let (state, restored) = StateDir::open(state_dir, plan.dimension, initial_model)?;
    let ledger = match plan.privacy {
        Some(p) => Some(Ledger::open(&state.read_ledger()?, p.budget, p.delta)?),
        None => None,
    };
    let mut counters = restored.counters;
    if let Some(l) = &ledger {
        check_ledger_tail(&state, l, &mut counters)?;
    }
    if restored.resumed {
        info!(
            released_rounds = restored.counters.released_rounds,
            next_round_id = restored.counters.next_round_id,
            epsilon = ledger.as_ref().map(|l| l.summary().epsilon),
            "resumed from {}",
            state.root().display()
        );
    }
    let mut seed = [0_u8; 32];
    rand::RngExt::fill(&mut rand::rng(), &mut seed);
    let coordinator = Coordinator::new(
        plan,
        roster.protocol_roster(),
        roster.entries().len(),
        Resume {
            counters,
            model: restored.model,
            ledger,
            standardization: state.read_standardization()?,
        },
        model,
        seed,
    )?;
    Ok((state, coordinator))
}

/// Runs the server on `endpoint` (from [`bind`]) until its rounds are done,
/// the budget is spent, or `shutdown` resolves.
///
/// # Errors
/// Configuration, state-directory and ledger errors; a failure to persist
/// a round stops the server before that round is released.
pub async fn run_server(
    options: ServerOptions,
    endpoint: quinn::Endpoint,
    shutdown: impl Future<Output = ()>,
) -> Result<ServerSummary> {
    let local = endpoint.local_addr().ok();
    info!(address = ?local, clients = options.roster.entries().len(), "listening");
    let (state, mut coordinator) = open_coordinator(
        options.plan,
        &options.roster,
        &options.state_dir,
        options.model,
        options.initial_model.as_deref(),
    )?;
    coordinator.set_unmask_threads(options.unmask_threads);
    let (tx, rx) = mpsc::channel(1024);
    let accept = tokio::spawn(admission::accept_loop(
        endpoint.clone(),
        options.roster.clone(),
        options.limits.max_connections,
        options.handshake_timeout,
        tx,
    ));
    let mut driver = driver::QuicDriver::new(coordinator, state, rx);
    let result = tokio::select! {
        r = driver.run() => r,
        () = shutdown => Ok(StopReason::Shutdown),
    };
    let code = match &result {
        Ok(StopReason::RoundsDone | StopReason::BudgetExhausted) => close::DONE,
        _ => close::SHUTDOWN,
    };
    driver.close_all(code);
    accept.abort();
    endpoint.close(code.into(), b"server stops");
    // Let the close frames leave before the endpoint is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    let reason = result?;
    let summary = ServerSummary::of(reason, driver.coordinator());
    info!(
        ?reason,
        released = summary.released_rounds,
        "server stopped"
    );
    Ok(summary)
}
