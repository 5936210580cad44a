//! The server runtime: accepts authenticated clients into a pool, and for
//! each round samples a cohort, drives a [`ServerSession`] over their
//! connections, and releases the sum only after the privacy ledger, the
//! model checkpoint and the counters are on disk (SPEC.md §12.4–§12.5).
//!
//! Protocol decisions stay in veil-secagg; this module moves bytes and time:
//! it feeds the session the messages, disconnects and deadlines it needs.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use veil_crypto::ParticipantId;
use veil_crypto::prg::RingBits;
use veil_dp::ledger::{DistributedNoise, Ledger, RoundSpend};
use veil_secagg::messages::{max_client_message_len, peek_header};
use veil_secagg::{Roster, RoundConfig, RoundResult, ServerEvent, ServerSession};

mod blocking;
mod memory;

pub use memory::{MemoryClient, run_in_memory};

use self::blocking::session_call;
use crate::conn::{Caps, ReadEvent, SEND_QUEUE, spawn_reader, spawn_writer};
use crate::deployment::RosterFile;
use crate::error::{Error, Result};
use crate::frame::{FrameKind, encode_frame};
use crate::state::{Counters, StateDir};
use crate::task::Task;
use crate::tls::{Limits, close, peer_fingerprint, server_config};

/// How secure aggregation is parameterised for a cohort of `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecAggPlan {
    /// The expected fraction of a cohort that drops out.
    pub expected_dropout: f64,
    /// The tolerated fraction of corrupt clients.
    pub corrupt_fraction: f64,
    /// Use the complete graph (classic SecAgg) with this threshold instead
    /// of the recommended SecAgg+ parameters; capped at the cohort size.
    pub complete_graph_threshold: Option<u32>,
}

impl SecAggPlan {
    /// The SecAgg parameters of a cohort of `n` (SPEC.md §9.3): the
    /// recommendation for the expected dropout and corrupt fraction, or the
    /// complete graph with the configured threshold raised to the smallest
    /// valid one. The one place a round's `(k, t, c)` is chosen.
    ///
    /// # Errors
    /// [`veil_secagg::Error::InvalidConfig`] if no parameters fit `n` at the
    /// corrupt fraction.
    pub fn parameters(&self, n: usize) -> veil_secagg::Result<veil_secagg::Recommendation> {
        match self.complete_graph_threshold {
            Some(t) => veil_secagg::complete_graph_parameters(
                n,
                t,
                self.expected_dropout,
                self.corrupt_fraction,
            ),
            None => {
                veil_secagg::recommend_parameters(n, self.expected_dropout, self.corrupt_fraction)
            }
        }
    }
}

/// Central privacy settings: distributed discrete-Gaussian noise sized so
/// that any released sum of at least `min_clients` contributions carries
/// noise of standard deviation `noise_multiplier · clip_norm`. The ledger
/// accounts each release as the distributed discrete Gaussian of
/// `min_clients` shares (veil-dp `distributed`), without amplification by
/// sampling; calibrate `noise_multiplier` with
/// `veil privacy calibrate --min-survivors --dimension --scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrivacyPlan {
    /// The noise multiplier of the released sum.
    pub noise_multiplier: f64,
    /// `δ` of the ledger.
    pub delta: f64,
    /// The total `ε` the deployment may spend.
    pub budget: f64,
}

/// What each round does.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundPlan {
    /// The model dimension `d`.
    pub dimension: u32,
    /// Training rounds to release before the server stops; 0 for no limit.
    pub rounds: u64,
    /// The Poisson sampling rate `q` of clients from the pool.
    pub sampling_rate: f64,
    /// The smallest cohort a round starts with, and (with privacy) the
    /// fewest contributions a released sum may hold.
    pub min_clients: usize,
    /// The largest cohort; a larger sample is cut down at random.
    pub max_clients: usize,
    /// How long to wait, once `min_clients` are connected, for more to join
    /// before a round starts (a round starts at once when every roster
    /// client is connected).
    pub start_delay: Duration,
    /// The protocol's phase deadline.
    pub phase_timeout: Duration,
    /// Secure-aggregation parameters.
    pub secagg: SecAggPlan,
    /// The L2 clipping norm of an update.
    pub clip_norm: f64,
    /// The quantisation scale.
    pub scale: f64,
    /// Distributed DP; `None` releases sums without noise.
    pub privacy: Option<PrivacyPlan>,
    /// Keep every released sum under `sums/` (for audits and tests).
    pub keep_sums: bool,
}

impl RoundPlan {
    /// Per-client noise variance in quantised units (0 without privacy).
    #[must_use]
    pub fn noise_variance(&self) -> f64 {
        self.privacy.map_or(0.0, |p| {
            let sd = p.noise_multiplier * self.clip_norm * self.scale;
            sd * sd / self.min_clients.max(1) as f64
        })
    }

    /// What a released round of `participants` contributions spends: the
    /// distributed discrete Gaussian of `min_clients` of their noise shares
    /// (veil-dp's `distributed` accounting, including the rounding's
    /// sensitivity). Crediting only the fewest shares a sum may hold keeps
    /// the guarantee when the rest add no noise.
    #[must_use]
    pub fn spend(&self, round: u64, participants: usize) -> RoundSpend {
        RoundSpend::distributed(
            round,
            DistributedNoise::new(
                self.noise_variance().sqrt(),
                self.scale,
                u64::from(self.dimension),
                self.min_clients as u64,
            ),
            self.sampling_rate,
            self.clip_norm,
            participants as u64,
        )
    }

    /// The ring width: wide enough that a sum of `max_clients`
    /// contributions does not wrap (veil-dp's plan, `1 − 2^-40`).
    ///
    /// # Errors
    /// [`Error::Config`] if no width up to 64 bits is enough.
    pub fn ring_bits(&self) -> Result<u32> {
        let m = self.max_clients.max(1) as u64;
        let noise_sd_sum = (self.noise_variance() * m as f64).sqrt();
        veil_dp::quantize::plan_bits(m, self.clip_norm, self.scale, noise_sd_sum)
            .map(|p| p.bits)
            .map_err(|e| Error::Config(e.to_string()))
    }

    fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.dimension == 0 || self.dimension > veil_secagg::config::MAX_DIMENSION {
            return bad("dimension must be in 1..=2^26");
        }
        if !(self.sampling_rate > 0.0 && self.sampling_rate <= 1.0) {
            return bad("sampling_rate must be in (0, 1]");
        }
        if self.min_clients < 2 || self.max_clients < self.min_clients {
            return bad("need 2 <= min_clients <= max_clients");
        }
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return bad("clip_norm must be finite and positive");
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return bad("scale must be finite and positive");
        }
        if self.privacy.is_some() {
            // The ledger's accountant must cover the noise each client adds.
            if let Err(e) = self.spend(0, self.min_clients).validate() {
                return Err(Error::Config(format!("privacy: {e}")));
            }
        }
        if self.phase_timeout.is_zero() || self.phase_timeout > Duration::from_secs(86_400) {
            return bad("phase_timeout must be in (0, 1 day]");
        }
        for n in [self.min_clients, self.max_clients] {
            if let Err(e) = self.secagg.parameters(n) {
                return Err(Error::Config(format!(
                    "secagg: no parameters for a cohort of {n} ({e}); lower secagg.corrupt_fraction or raise min_clients"
                )));
            }
        }
        self.ring_bits().map(|_| ())
    }
}

/// What a released round was, for [`ServerModel::released`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RoundReport {
    /// The training round released.
    pub training_round: u64,
    /// Its protocol round id.
    pub round_id: u64,
    /// Participants the round started with.
    pub participants: usize,
    /// Contributions in the released sum.
    pub included: usize,
    /// Frame bytes received from and sent to the participants.
    pub bytes_in: u64,
    /// Frame bytes sent.
    pub bytes_out: u64,
    /// UDP bytes received from the participants' connections.
    pub udp_bytes_in: u64,
    /// UDP bytes sent to them.
    pub udp_bytes_out: u64,
    /// From round start to release, in milliseconds.
    pub total_ms: u64,
    /// Cumulative `ε` after the round, with privacy on.
    pub epsilon: Option<f64>,
}

/// How the server turns a released mean update into the next global model,
/// and what it does after each release (evaluation, reporting). The server
/// optimiser's state lives here and is not persisted by the runtime.
pub trait ServerModel: Send {
    /// Applies the mean of the included clients' updates to `model`.
    ///
    /// # Errors
    /// A message; the round is then not released.
    fn apply(&mut self, model: &mut [f32], mean_update: &[f32])
    -> core::result::Result<(), String>;

    /// Called after a round is released and persisted.
    fn released(&mut self, report: &RoundReport, model: &[f32]) {
        let _ = (report, model);
    }
}

/// FedAvg: `model += lr · mean update`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FedAvg {
    /// The server learning rate.
    pub lr: f32,
}

impl ServerModel for FedAvg {
    fn apply(
        &mut self,
        model: &mut [f32],
        mean_update: &[f32],
    ) -> core::result::Result<(), String> {
        for (w, u) in model.iter_mut().zip(mean_update) {
            *w += self.lr * u;
        }
        Ok(())
    }
}

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

/// How a server run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The configured number of rounds was released.
    RoundsDone,
    /// The next round would exceed the privacy budget.
    BudgetExhausted,
    /// The caller asked it to stop.
    Shutdown,
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

/// One line of `rounds.jsonl`.
#[derive(Debug, Serialize)]
struct RoundRecord {
    round_id: u64,
    training_round: u64,
    outcome: &'static str,
    detail: Option<String>,
    participants: Vec<ParticipantId>,
    included: Vec<ParticipantId>,
    degree: u32,
    threshold: u32,
    ring_bits: u32,
    bytes_in: u64,
    bytes_out: u64,
    udp_bytes_in: u64,
    udp_bytes_out: u64,
    phase_ms: Vec<(String, u64)>,
    total_ms: u64,
    epsilon: Option<f64>,
}

enum Inbound {
    Connected {
        conn: quinn::Connection,
        send: mpsc::Sender<Arc<Vec<u8>>>,
        caps: Arc<Caps>,
        generation: u64,
    },
    Read(ReadEvent),
}

struct Peer {
    conn: quinn::Connection,
    send: mpsc::Sender<Arc<Vec<u8>>>,
    caps: Arc<Caps>,
    generation: u64,
}

/// The address the endpoint is bound to; useful with port 0.
///
/// # Errors
/// [`Error::Connection`] if the socket cannot be bound.
pub fn bind(options: &ServerOptions) -> Result<quinn::Endpoint> {
    let config = server_config(
        &options.ca,
        options.cert_chain.clone(),
        options.key.clone_key(),
        options.roster.fingerprints(),
        &options.limits,
    )?;
    quinn::Endpoint::server(config, options.listen)
        .map_err(|e| Error::Connection(format!("cannot listen on {}: {e}", options.listen)))
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

    let (tx, rx) = mpsc::channel(1024);
    let accept = tokio::spawn(accept_loop(
        endpoint.clone(),
        options.roster.clone(),
        options.limits.max_connections,
        options.handshake_timeout,
        tx,
    ));
    let mut coordinator = Coordinator::open(
        options.plan,
        &options.roster,
        &options.state_dir,
        options.model,
        options.initial_model.as_deref(),
        rx,
    )?;
    coordinator.unmask_threads = options.unmask_threads;
    let result = tokio::select! {
        r = coordinator.run() => r,
        () = shutdown => Ok(StopReason::Shutdown),
    };
    let code = match &result {
        Ok(StopReason::RoundsDone | StopReason::BudgetExhausted) => close::DONE,
        _ => close::SHUTDOWN,
    };
    for peer in coordinator.pool.values() {
        peer.conn.close(code.into(), b"server stops");
    }
    accept.abort();
    endpoint.close(code.into(), b"server stops");
    // Let the close frames leave before the endpoint is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    let reason = result?;
    info!(
        ?reason,
        released = coordinator.counters.released_rounds,
        "server stopped"
    );
    Ok(ServerSummary {
        reason,
        released_rounds: coordinator.counters.released_rounds,
        failed_rounds: coordinator.failed_rounds,
    })
}

type Tagged = (ParticipantId, u64, Inbound);

async fn accept_loop(
    endpoint: quinn::Endpoint,
    roster: RosterFile,
    max_connections: usize,
    handshake_timeout: Duration,
    out: mpsc::Sender<Tagged>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut generation = 0_u64;
    while let Some(incoming) = endpoint.accept().await {
        if live.load(Ordering::Relaxed) >= max_connections {
            debug!(peer = %incoming.remote_address(), "connection refused: at the limit");
            incoming.refuse();
            continue;
        }
        generation = generation.wrapping_add(1);
        let guard = ConnGuard::new(&live);
        let roster = roster.clone();
        let out = out.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            match tokio::time::timeout(handshake_timeout, admit(incoming, &roster)).await {
                Ok(Ok((id, conn, send, recv))) => {
                    serve_connection(id, generation, conn, send, recv, out).await;
                }
                Ok(Err(e)) => info!(%peer, "connection refused: {e}"),
                Err(_) => info!(%peer, "connection refused: handshake timed out"),
            }
            drop(guard);
        });
    }
}

/// Counts a live connection until dropped.
struct ConnGuard(Arc<AtomicUsize>);

impl ConnGuard {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(live))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes the handshake, maps the certificate to a roster id, and reads
/// the client's Hello on its stream.
async fn admit(
    incoming: quinn::Incoming,
    roster: &RosterFile,
) -> Result<(
    ParticipantId,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
)> {
    let conn = incoming
        .await
        .map_err(|e| Error::Connection(e.to_string()))?;
    let fingerprint =
        peer_fingerprint(&conn).ok_or_else(|| Error::Connection("no client certificate".into()))?;
    // The verifier admitted only roster certificates; look the id up.
    let id = roster
        .by_fingerprint(&fingerprint)
        .map(|e| e.id)
        .ok_or_else(|| Error::Connection("certificate not in the roster".into()))?;
    let (send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| Error::Connection(e.to_string()))?;
    let hello = crate::frame::read_frame(&mut recv, |k| (k == FrameKind::Hello).then_some(0))
        .await?
        .ok_or(Error::Frame("stream ended before Hello"))?;
    if hello.0 != FrameKind::Hello {
        return Err(Error::Frame("first frame is not Hello"));
    }
    Ok((id, conn, send, recv))
}

async fn serve_connection(
    id: ParticipantId,
    generation: u64,
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    out: mpsc::Sender<Tagged>,
) {
    let caps = Caps::refuse_all();
    let (queue_tx, queue_rx) = mpsc::channel(SEND_QUEUE);
    let writer = spawn_writer(send, queue_rx);
    let connected = Inbound::Connected {
        conn: conn.clone(),
        send: queue_tx,
        caps: Arc::clone(&caps),
        generation,
    };
    if out.send((id, generation, connected)).await.is_err() {
        return;
    }
    let (read_tx, mut read_rx) = mpsc::channel(4);
    let reader = spawn_reader(recv, caps, (), read_tx);
    while let Some(((), event)) = read_rx.recv().await {
        let closed = matches!(event, ReadEvent::Closed(_));
        if out
            .send((id, generation, Inbound::Read(event)))
            .await
            .is_err()
            || closed
        {
            break;
        }
    }
    reader.abort();
    writer.abort();
}

struct Coordinator {
    roster: Roster,
    roster_size: usize,
    plan: RoundPlan,
    state: StateDir,
    counters: Counters,
    model: Vec<f32>,
    ledger: Option<Ledger>,
    pool: BTreeMap<ParticipantId, Peer>,
    rx: mpsc::Receiver<Tagged>,
    rng: ChaCha20Rng,
    failed_rounds: u64,
    server_model: Box<dyn ServerModel>,
    unmask_threads: usize,
}

/// A round in flight, with its bookkeeping.
struct Flight {
    session: ServerSession,
    task: Task,
    started: Instant,
    phase_started: Instant,
    phase_ms: Vec<(String, u64)>,
    bytes_in: u64,
    bytes_out: u64,
    /// Each participant's connection UDP counters (received, sent) when
    /// the round started, to report what the round put on the wire.
    udp_start: BTreeMap<ParticipantId, (u64, u64)>,
}

impl Coordinator {
    /// Opens the state directory (resuming from it) and the ledger.
    fn open(
        plan: RoundPlan,
        roster: &RosterFile,
        state_dir: &std::path::Path,
        server_model: Box<dyn ServerModel>,
        initial_model: Option<&[f32]>,
        rx: mpsc::Receiver<Tagged>,
    ) -> Result<Self> {
        plan.check()?;
        if roster.entries().len() < plan.min_clients {
            return Err(Error::Config(format!(
                "the roster lists {} clients, fewer than min_clients = {}: no round could start",
                roster.entries().len(),
                plan.min_clients
            )));
        }
        let (state, restored) = StateDir::open(state_dir, plan.dimension, initial_model)?;
        let ledger = match plan.privacy {
            Some(p) => Some(Ledger::open(&state.ledger_path(), p.budget, p.delta)?),
            None => None,
        };
        if restored.resumed {
            info!(
                released_rounds = restored.counters.released_rounds,
                next_round_id = restored.counters.next_round_id,
                epsilon = ledger.as_ref().map(|l| l.summary().epsilon),
                "resumed from {}",
                state.root().display()
            );
        }
        Ok(Self {
            roster: roster.protocol_roster(),
            roster_size: roster.entries().len(),
            plan,
            state,
            counters: restored.counters,
            model: restored.model,
            ledger,
            pool: BTreeMap::new(),
            rx,
            rng: ChaCha20Rng::from_rng(&mut rand::rng()),
            failed_rounds: 0,
            server_model,
            unmask_threads: 1,
        })
    }

    async fn run(&mut self) -> Result<StopReason> {
        loop {
            if let Some(stop) = self.stop_reason()? {
                return Ok(stop);
            }
            self.wait_for_pool().await;
            let pool: Vec<ParticipantId> = self.pool.keys().copied().collect();
            let Some(cohort) = self.sample_cohort(pool) else {
                tokio::time::sleep(self.plan.start_delay.max(Duration::from_millis(50))).await;
                continue;
            };
            self.run_round(cohort).await?;
        }
    }

    /// Whether the run is over: its rounds are released, or the next round
    /// would take `ε` past the budget.
    fn stop_reason(&self) -> Result<Option<StopReason>> {
        if self.plan.rounds > 0 && self.counters.released_rounds >= self.plan.rounds {
            return Ok(Some(StopReason::RoundsDone));
        }
        if let (Some(ledger), Some(p)) = (&self.ledger, self.plan.privacy) {
            // The fewest shares a released sum may hold.
            let spend = self
                .plan
                .spend(self.counters.next_round_id, self.plan.min_clients);
            let next = ledger.epsilon_after(&spend)?;
            if next > p.budget {
                warn!(
                    spent = ledger.summary().epsilon,
                    next,
                    budget = p.budget,
                    "privacy budget exhausted: no further round"
                );
                return Ok(Some(StopReason::BudgetExhausted));
            }
        }
        Ok(None)
    }

    /// Waits until the pool holds every roster client, or `min_clients`
    /// for `start_delay`.
    async fn wait_for_pool(&mut self) {
        let mut enough_since: Option<Instant> = None;
        loop {
            let n = self.pool.len();
            if n >= self.roster_size {
                return;
            }
            if n >= self.plan.min_clients {
                let since = *enough_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.plan.start_delay {
                    return;
                }
            } else {
                enough_since = None;
            }
            let wait = enough_since.map_or(Duration::from_secs(3600), |s| {
                self.plan.start_delay.saturating_sub(s.elapsed())
            });
            if let Ok(Some((id, generation, inbound))) =
                tokio::time::timeout(wait, self.rx.recv()).await
            {
                self.between_rounds(id, generation, inbound);
            }
        }
    }

    fn between_rounds(&mut self, id: ParticipantId, generation: u64, inbound: Inbound) {
        match inbound {
            Inbound::Connected {
                conn,
                send,
                caps,
                generation,
            } => self.admit(id, generation, conn, send, caps),
            Inbound::Read(ReadEvent::Closed(why)) => {
                self.remove(id, generation, &why);
            }
            Inbound::Read(ReadEvent::Frame(..)) => {
                // Only a late message of the round just ended gets here (the
                // caps refuse anything else), and it is stale.
                debug!(participant = id, "stale message between rounds ignored");
            }
        }
    }

    fn admit(
        &mut self,
        id: ParticipantId,
        generation: u64,
        conn: quinn::Connection,
        send: mpsc::Sender<Arc<Vec<u8>>>,
        caps: Arc<Caps>,
    ) {
        info!(participant = id, peer = %conn.remote_address(), "client connected");
        if let Some(old) = self.pool.insert(
            id,
            Peer {
                conn,
                send,
                caps,
                generation,
            },
        ) {
            old.conn.close(close::REPLACED.into(), b"replaced");
        }
    }

    fn remove(&mut self, id: ParticipantId, generation: u64, why: &str) -> bool {
        if self
            .pool
            .get(&id)
            .is_some_and(|p| p.generation == generation)
        {
            if let Some(p) = self.pool.remove(&id) {
                p.conn.close(close::VIOLATION.into(), b"closed");
            }
            info!(participant = id, "client left: {why}");
            return true;
        }
        false
    }

    /// Poisson sampling with rate `q` from the pool, as the accountant
    /// assumes; `None` if fewer than `min_clients` were drawn.
    fn sample_cohort(&mut self, available: Vec<ParticipantId>) -> Option<Vec<ParticipantId>> {
        let q = self.plan.sampling_rate;
        let mut cohort: Vec<ParticipantId> = available
            .into_iter()
            .filter(|_| q >= 1.0 || self.rng.random::<f64>() < q)
            .collect();
        if cohort.len() < self.plan.min_clients {
            debug!(
                sampled = cohort.len(),
                min = self.plan.min_clients,
                "cohort too small; sampling again"
            );
            return None;
        }
        while cohort.len() > self.plan.max_clients {
            let i = self.rng.random_range(0..cohort.len());
            cohort.swap_remove(i);
        }
        cohort.sort_unstable();
        Some(cohort)
    }

    fn round_config(&mut self, cohort: Vec<ParticipantId>, round: u64) -> Result<RoundConfig> {
        let n = cohort.len();
        let rec = self.plan.secagg.parameters(n)?;
        let timeout_ms = u32::try_from(self.plan.phase_timeout.as_millis()).unwrap_or(u32::MAX);
        let ring =
            RingBits::new(self.plan.ring_bits()?).map_err(|e| Error::Config(e.to_string()))?;
        let mut seed = [0_u8; 32];
        self.rng.fill(&mut seed);
        Ok(RoundConfig::new(
            round,
            cohort,
            self.plan.dimension,
            ring,
            rec.threshold,
            rec.degree,
            rec.max_corrupt,
            timeout_ms,
            seed,
        )?)
    }

    /// Takes the next round id (persisted before anything is sent, so a
    /// crash never reuses it), builds the config and the task, and starts
    /// the session. `None` if no config fits this cohort.
    fn begin_round(&mut self, cohort: Vec<ParticipantId>) -> Result<Option<Flight>> {
        let round = self.counters.next_round_id;
        let training_round = self.counters.released_rounds.saturating_add(1);
        self.counters.next_round_id = round.saturating_add(1);
        self.state.save_counters(&self.counters)?;
        let config = match self.round_config(cohort, round) {
            Ok(c) => c,
            Err(e) => {
                // Parameters depend on the cohort size; another draw may fit.
                warn!(
                    round,
                    "round skipped: {e} (set secagg.complete_graph_threshold or lower secagg.corrupt_fraction for small cohorts)"
                );
                self.failed_rounds = self.failed_rounds.saturating_add(1);
                return Ok(None);
            }
        };
        let task = Task {
            training_round,
            round,
            clip_norm: self.plan.clip_norm,
            scale: self.plan.scale,
            noise_variance: self.plan.noise_variance(),
            model: self.model.clone(),
        };
        info!(
            round,
            training_round,
            n = config.n(),
            k = config.degree,
            t = config.threshold,
            bits = config.ring.bits(),
            d = config.dimension,
            "round started"
        );
        let now = Instant::now();
        let mut session = ServerSession::new(config.clone(), &self.roster, now)?;
        session.set_unmask_threads(self.unmask_threads);
        Ok(Some(Flight {
            session,
            task,
            started: now,
            phase_started: now,
            phase_ms: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            udp_start: self.udp_counters(&config.participants),
        }))
    }

    async fn run_round(&mut self, cohort: Vec<ParticipantId>) -> Result<()> {
        let Some(mut flight) = self.begin_round(cohort)? else {
            tokio::time::sleep(self.plan.start_delay.max(Duration::from_millis(100))).await;
            return Ok(());
        };
        let config = flight.session.config().clone();
        let client_cap = max_client_message_len(&config);
        for id in &config.participants {
            if let Some(peer) = self.pool.get(id) {
                peer.caps.set(FrameKind::SecAgg, Some(client_cap));
            }
        }
        let task_frame = Arc::new(encode_frame(FrameKind::Task, &flight.task.encode())?);
        for id in config.participants.clone() {
            self.send(&mut flight, id, Arc::clone(&task_frame));
        }
        let outcome = self.drive(&mut flight).await;
        // The participants keep this round's cap afterwards: a message they
        // sent before learning that the round ended arrives late, and is
        // ignored as stale rather than treated as a violation.
        self.finish(flight, outcome)
    }

    /// Queues a frame for `id`; a missing or full queue drops it from the
    /// round (a slow client never blocks the others).
    fn send(&mut self, flight: &mut Flight, id: ParticipantId, frame: Arc<Vec<u8>>) {
        let len = frame.len() as u64;
        let ok = self
            .pool
            .get(&id)
            .is_some_and(|p| p.send.try_send(frame).is_ok());
        if ok {
            flight.bytes_out = flight.bytes_out.saturating_add(len);
        } else {
            warn!(participant = id, "cannot reach the client: dropped");
            if let Some(p) = self.pool.remove(&id) {
                p.conn.close(close::VIOLATION.into(), b"not reading");
            }
            let phase = flight.session.phase();
            session_call(phase, || {
                flight
                    .session
                    .handle_disconnect(id, Instant::now(), &mut self.rng);
            });
        }
    }

    fn pump(&mut self, flight: &mut Flight) -> Option<core::result::Result<RoundResult, String>> {
        while let Some((id, bytes)) = flight.session.poll_transmit() {
            match encode_frame(FrameKind::SecAgg, &bytes) {
                Ok(frame) => self.send(flight, id, Arc::new(frame)),
                Err(e) => warn!("cannot frame a message: {e}"),
            }
        }
        let mut done = None;
        while let Some(event) = flight.session.poll_event() {
            match event {
                ServerEvent::PhaseCompleted { phase, remaining } => {
                    let ms = millis(flight.phase_started.elapsed());
                    flight.phase_started = Instant::now();
                    flight.phase_ms.push((format!("{phase:?}"), ms));
                    info!(
                        round = flight.task.round,
                        ?phase,
                        remaining,
                        ms,
                        "phase done"
                    );
                }
                ServerEvent::PeerDropped {
                    participant,
                    phase,
                    reason,
                } => {
                    // A client that declined the round broke no rule: it
                    // says which of its site's rules the round broke, and
                    // stays connected for the next round.
                    if let Some(veil_secagg::Error::Declined { reason, .. }) = &reason {
                        warn!(
                            round = flight.task.round,
                            participant,
                            reason = %reason,
                            "participant declined the round: its site's {reason} refuses it"
                        );
                        continue;
                    }
                    warn!(
                        round = flight.task.round,
                        participant,
                        ?phase,
                        reason = reason.as_ref().map(ToString::to_string),
                        "participant dropped"
                    );
                    if reason.is_some()
                        && let Some(p) = self.pool.remove(&participant)
                    {
                        p.conn.close(close::VIOLATION.into(), b"protocol violation");
                    }
                }
                ServerEvent::RoundComplete(result) => done = Some(Ok(result)),
                ServerEvent::Aborted(e) => done = Some(Err(e.to_string())),
                _ => {}
            }
        }
        // Messages queued by the last events (aborts) go out too.
        while let Some((id, bytes)) = flight.session.poll_transmit() {
            if let Ok(frame) = encode_frame(FrameKind::SecAgg, &bytes) {
                self.send(flight, id, Arc::new(frame));
            }
        }
        done
    }

    async fn drive(&mut self, flight: &mut Flight) -> core::result::Result<RoundResult, String> {
        loop {
            if let Some(done) = self.pump(flight) {
                return done;
            }
            let deadline = flight.session.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                inbound = self.rx.recv() => match inbound {
                    Some((id, generation, inbound)) => self.in_round(flight, id, generation, inbound),
                    None => return Err("the accept loop ended".into()),
                },
                () = sleep => {
                    let phase = flight.session.phase();
                    session_call(phase, || flight.session.handle_timeout(Instant::now(), &mut self.rng));
                }
            }
        }
    }

    fn in_round(
        &mut self,
        flight: &mut Flight,
        id: ParticipantId,
        generation: u64,
        inbound: Inbound,
    ) {
        let participant = flight.session.config().contains(id);
        let phase = flight.session.phase();
        match inbound {
            Inbound::Connected {
                conn,
                send,
                caps,
                generation,
            } => {
                // A reconnecting participant lost its round state.
                let replaced = self.pool.contains_key(&id);
                self.admit(id, generation, conn, send, caps);
                if participant && replaced {
                    session_call(phase, || {
                        flight
                            .session
                            .handle_disconnect(id, Instant::now(), &mut self.rng);
                    });
                }
            }
            Inbound::Read(ReadEvent::Closed(why)) => {
                if self.remove(id, generation, &why) && participant {
                    session_call(phase, || {
                        flight
                            .session
                            .handle_disconnect(id, Instant::now(), &mut self.rng);
                    });
                }
            }
            Inbound::Read(ReadEvent::Frame(kind, bytes)) => {
                if self
                    .pool
                    .get(&id)
                    .is_none_or(|p| p.generation != generation)
                {
                    return;
                }
                // A late message of an earlier round is stale, not hostile.
                if kind == FrameKind::SecAgg
                    && peek_header(&bytes).is_some_and(|(_, r)| r < flight.task.round)
                {
                    debug!(participant = id, "stale message ignored");
                    return;
                }
                if kind != FrameKind::SecAgg || !participant {
                    warn!(participant = id, ?kind, "unexpected frame: disconnected");
                    self.remove(id, generation, "unexpected frame");
                    return;
                }
                flight.bytes_in = flight.bytes_in.saturating_add(bytes.len() as u64);
                let handled = session_call(phase, || {
                    flight
                        .session
                        .handle_message(id, &bytes, Instant::now(), &mut self.rng)
                });
                if let Err(e) = handled {
                    debug!(participant = id, "message refused: {e}");
                }
            }
        }
    }

    /// The UDP bytes (received, sent) of each participant's connection.
    fn udp_counters(&self, ids: &[ParticipantId]) -> BTreeMap<ParticipantId, (u64, u64)> {
        ids.iter()
            .filter_map(|id| {
                let stats = self.pool.get(id)?.conn.stats();
                Some((*id, (stats.udp_rx.bytes, stats.udp_tx.bytes)))
            })
            .collect()
    }

    fn finish(
        &mut self,
        flight: Flight,
        outcome: core::result::Result<RoundResult, String>,
    ) -> Result<()> {
        let config = flight.session.config().clone();
        // Wire bytes of the participants still connected (a dropped
        // client's connection is gone, and with it its counters).
        let (mut udp_in, mut udp_out) = (0_u64, 0_u64);
        for (id, (rx, tx)) in self.udp_counters(&config.participants) {
            let (rx0, tx0) = flight.udp_start.get(&id).copied().unwrap_or((rx, tx));
            udp_in = udp_in.saturating_add(rx.saturating_sub(rx0));
            udp_out = udp_out.saturating_add(tx.saturating_sub(tx0));
        }
        let mut record = RoundRecord {
            round_id: config.round,
            training_round: flight.task.training_round,
            outcome: "aborted",
            detail: None,
            participants: config.participants.clone(),
            included: Vec::new(),
            degree: config.degree,
            threshold: config.threshold,
            ring_bits: config.ring.bits(),
            bytes_in: flight.bytes_in,
            bytes_out: flight.bytes_out,
            udp_bytes_in: udp_in,
            udp_bytes_out: udp_out,
            phase_ms: flight.phase_ms,
            total_ms: millis(flight.started.elapsed()),
            epsilon: None,
        };
        let result = match outcome {
            Ok(r) => r,
            Err(e) => {
                warn!(round = config.round, "round aborted, nothing released: {e}");
                record.detail = Some(e);
                self.failed_rounds = self.failed_rounds.saturating_add(1);
                return self.state.append_round(&record);
            }
        };
        record.included.clone_from(&result.included);
        if self.ledger.is_some() && result.included.len() < self.plan.min_clients {
            let why = format!(
                "{} contributions, fewer than the {} the noise is sized for",
                result.included.len(),
                self.plan.min_clients
            );
            warn!(
                round = config.round,
                "sum discarded, nothing released: {why}"
            );
            record.outcome = "discarded";
            record.detail = Some(why);
            self.failed_rounds = self.failed_rounds.saturating_add(1);
            return self.state.append_round(&record);
        }
        let bits = config.ring.bits();
        let mean = veil_dp::contribution::mean_update(
            &result.sum,
            self.plan.scale,
            bits,
            result.included.len(),
        )?;
        // 1. The privacy ledger, synced, before anything is released.
        if let Some(ledger) = self.ledger.as_mut() {
            let spend = self.plan.spend(config.round, result.included.len());
            record.epsilon = Some(ledger.record_round(&spend)?);
        }
        // 2. The model and the sum, atomically.
        let mut next = self.model.clone();
        self.server_model
            .apply(&mut next, &mean)
            .map_err(|e| Error::Config(format!("server optimiser: {e}")))?;
        self.model = next;
        self.state.save_model(&self.model)?;
        if self.plan.keep_sums {
            self.state
                .save_sum(flight.task.training_round, &result.sum)?;
        }
        // 3. The counters: the round is released.
        self.counters.released_rounds = flight.task.training_round;
        self.state.save_counters(&self.counters)?;
        record.outcome = "released";
        self.state.append_round(&record)?;
        let n = config.n().max(1) as u64;
        info!(
            round = config.round,
            training_round = flight.task.training_round,
            participants = config.n(),
            included = result.included.len(),
            dropped = config.n().saturating_sub(result.included.len()),
            bytes_in_per_client = record.bytes_in / n,
            bytes_out_per_client = record.bytes_out / n,
            udp_in_per_client = record.udp_bytes_in / n,
            udp_out_per_client = record.udp_bytes_out / n,
            total_ms = record.total_ms,
            epsilon = record.epsilon,
            "round released"
        );
        let report = RoundReport {
            training_round: flight.task.training_round,
            round_id: config.round,
            participants: config.n(),
            included: record.included.len(),
            bytes_in: record.bytes_in,
            bytes_out: record.bytes_out,
            udp_bytes_in: record.udp_bytes_in,
            udp_bytes_out: record.udp_bytes_out,
            total_ms: record.total_ms,
            epsilon: record.epsilon,
        };
        self.server_model.released(&report, &self.model);
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(privacy: Option<PrivacyPlan>, scale: f64) -> RoundPlan {
        RoundPlan {
            dimension: 1000,
            rounds: 3,
            sampling_rate: 1.0,
            min_clients: 4,
            max_clients: 10,
            start_delay: Duration::from_secs(1),
            phase_timeout: Duration::from_secs(5),
            secagg: SecAggPlan {
                expected_dropout: 0.1,
                corrupt_fraction: 0.05,
                complete_graph_threshold: Some(3),
            },
            clip_norm: 1.0,
            scale,
            privacy,
            keep_sums: false,
        }
    }

    #[test]
    fn privacy_the_accountant_cannot_cover_is_refused_at_start() {
        let privacy = Some(PrivacyPlan {
            noise_multiplier: 1.0,
            delta: 1e-5,
            budget: 10.0,
        });
        plan(privacy, 1024.0).check().unwrap();
        plan(None, 0.5).check().unwrap();
        // σ per client = 1·1·0.5/√4 = 0.25 quanta: below KLS21's 1/2.
        let err = plan(privacy, 0.5).check().unwrap_err().to_string();
        assert!(
            err.contains("privacy") && err.contains("client-sigma"),
            "{err}"
        );
    }

    #[test]
    fn a_round_spends_the_threshold_s_shares_whatever_the_sum_holds() {
        let privacy = Some(PrivacyPlan {
            noise_multiplier: 2.0,
            delta: 1e-5,
            budget: 10.0,
        });
        let p = plan(privacy, 1024.0);
        let (few, many) = (p.spend(1, 4), p.spend(1, 10));
        assert_eq!((few.participants, many.participants), (4, 10));
        // Both credit min_clients = 4 shares: the same noise multiplier, 2.
        assert!((few.noise_multiplier - 2.0).abs() < 1e-12);
        assert_eq!(few.noise_multiplier, many.noise_multiplier);
        assert_eq!(many.distributed.map(|d| d.shares), Some(4));
    }
}
