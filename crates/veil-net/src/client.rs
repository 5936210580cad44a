//! The client runtime: connects (with retry and backoff), waits for a
//! round's task and config, computes its input from the caller's
//! [`UpdateSource`] (clip, quantise, noise: veil-dp), drives a
//! [`ClientSession`], and waits for the next round (SPEC.md §12.4).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use veil_crypto::ParticipantId;
use veil_crypto::RoundId;
use veil_crypto::sign::IdentitySigningKey;
use veil_secagg::messages::{
    ABORT_DISCARDED, ClientMessage, Decline, DeclineReason, MAX_ROUND_CONFIG_LEN, MessageType,
    ServerMessage, Task, max_server_message_len, max_task_len,
};
use veil_secagg::{ClientEvent, ClientSession, Roster, RoundConfig, SiteFloor};

use crate::client_state::ClientState;
use crate::conn::{Caps, ReadEvent, SEND_QUEUE, spawn_reader, spawn_writer};
use crate::deployment::RosterFile;
use crate::error::{ConfigError, ConnectionError, Error, Result};
use crate::frame::{FrameKind, encode_frame};
use crate::pki::fingerprint;
use crate::tls::{Limits, client_config, close};

/// Why an [`UpdateSource`] has no update.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// A source's error that no later round can mend: the site's data does
/// not fit the task (a missing, extra or reordered column, a label outside
/// the classes). The client declines the round, so the server goes on
/// without it, and then stops with [`Error::SiteData`]: nothing of the
/// site's rows is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDataError(pub String);

impl core::fmt::Display for SiteDataError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SiteDataError {}

/// Where a client's update comes from: local training (veil-learn), or
/// any vector the caller supplies.
pub trait UpdateSource: Send {
    /// The client's update for `task` (a change to `task.model`), before
    /// clipping. An error skips this round for this client.
    ///
    /// # Errors
    /// Whatever prevents an update; it is logged and the client declines
    /// the round.
    fn update(&mut self, task: &Task) -> core::result::Result<Vec<f32>, SourceError>;
}

/// Reconnection with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Give up after this many consecutive failed attempts (`None`: never).
    pub max_attempts: Option<u32>,
}

/// Everything a client needs.
pub struct ClientOptions {
    /// The server's address.
    pub server: SocketAddr,
    /// The name in the server's certificate.
    pub server_name: String,
    /// The deployment CA's certificates.
    pub ca: Vec<CertificateDer<'static>>,
    /// This client's certificate chain.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// This client's TLS key.
    pub key: PrivateKeyDer<'static>,
    /// This client's identity key (signs its advertised keys).
    pub identity: IdentitySigningKey,
    /// The deployment roster.
    pub roster: RosterFile,
    /// Connection limits.
    pub limits: Limits,
    /// The largest model this client accepts.
    pub max_dimension: u32,
    /// Reconnection policy.
    pub backoff: Backoff,
    /// Leave after this many completed rounds (`None`: until the server
    /// finishes).
    pub max_rounds: Option<u64>,
    /// Fault injection for tests of dropout handling; `None` in service.
    pub fault: Option<Fault>,
    /// The weakest round this site joins (SPEC.md §9.5).
    pub floor: SiteFloor,
    /// The least noise this site accepts: the noise multiplier of the
    /// noise that the honest shares of a round's smallest sum carry (`t - c`
    /// shares, SPEC.md §9.3); `0` accepts any.
    pub min_noise_multiplier: f64,
    /// Where the client records the round ids it took part in
    /// ([`ClientState`]), and its own privacy ledger; `None` keeps them for
    /// this run only.
    pub state_dir: Option<std::path::PathBuf>,
    /// This site's own privacy budget, enforced by its own ledger (SPEC.md
    /// §12.4); `None` takes the coordinator's accounting on trust.
    pub site_budget: Option<SiteBudget>,
}

/// A site's own privacy budget: the total `ε` at `δ` its data may spend,
/// by its own accounting of the rounds it joins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteBudget {
    /// The total `ε`.
    pub epsilon: f64,
    /// `δ`.
    pub delta: f64,
}

/// A site's ledger: the rounds it joined, as it accounts them, and the file
/// it keeps them in (none without a state directory).
struct SiteLedger {
    ledger: veil_dp::ledger::Ledger,
    path: Option<std::path::PathBuf>,
}

impl SiteLedger {
    fn open(dir: Option<&std::path::Path>, budget: SiteBudget) -> Result<Self> {
        let path = dir.map(|d| d.join("ledger.jsonl"));
        let bytes = match &path {
            Some(p) => crate::files::read_if_present(p)?,
            None => Vec::new(),
        };
        Ok(Self {
            ledger: veil_dp::ledger::Ledger::open(&bytes, budget.epsilon, budget.delta)?,
            path,
        })
    }

    /// What joining `config` under `task` spends, as this site sees it:
    /// the distributed discrete Gaussian of the `t − c` honest shares of
    /// the smallest sum the server can form, at this site's own `σ`.
    fn spend(config: &RoundConfig, task: &Task) -> veil_dp::ledger::RoundSpend {
        let honest = u64::from(config.threshold.saturating_sub(config.max_corrupt));
        veil_dp::ledger::RoundSpend::distributed(
            config.round,
            veil_dp::ledger::DistributedNoise::new(
                task.noise_variance.sqrt(),
                task.scale,
                u64::from(config.dimension),
                honest,
            ),
            1.0,
            task.clip_norm,
            config.participants.len() as u64,
        )
    }

    /// Records `config`'s round if the budget allows it, the line synced
    /// before the client sends anything; else why not.
    fn record(&mut self, config: &RoundConfig, task: &Task) -> core::result::Result<f64, String> {
        if task.noise_variance <= 0.0 {
            return Err("the round adds no noise: its epsilon is unbounded".into());
        }
        let budget = self.ledger.summary().budget;
        let recorded = match self.ledger.record_round(&Self::spend(config, task)) {
            Ok(r) => r,
            Err(veil_dp::Error::BudgetExceeded { would_be, .. }) => {
                return Err(format!(
                    "it would take this site's epsilon from {:.4} to {would_be:.4}, past its budget {budget}",
                    self.ledger.summary().epsilon
                ));
            }
            Err(e) => {
                return Err(format!(
                    "it cannot be accounted against this site's budget: {e}"
                ));
            }
        };
        if let Some(p) = &self.path {
            crate::files::append_synced(p, &recorded.line).map_err(|e| e.to_string())?;
        }
        Ok(recorded.epsilon)
    }
}

/// A fault to inject (testing only): the client stops taking part at a
/// chosen point of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Go silent once this message type has been received (a server
    /// message) or sent (a client message), in the first round, as a
    /// process that hung or was killed there would: the server learns of
    /// it only from its deadline or the connection's idle timeout.
    StallAfter(MessageType),
    /// Leave at the same point: deliver what was sent, close the
    /// connection ([`close::LEAVING`]) and end the run with
    /// [`ClientStop::Left`], as a client application that quits there
    /// would. The server learns of it at once.
    LeaveAfter(MessageType),
}

impl Fault {
    fn point(self) -> MessageType {
        match self {
            Self::StallAfter(kind) | Self::LeaveAfter(kind) => kind,
        }
    }
}

impl core::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("server", &self.server)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// How a client run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientStop {
    /// The server finished its rounds.
    ServerDone,
    /// This client completed its `max_rounds`.
    RoundsDone,
    /// The caller asked it to stop.
    Shutdown,
    /// An injected [`Fault::LeaveAfter`] made it leave mid-round.
    Left,
}

/// A summary of a client run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientSummary {
    /// Why it stopped.
    pub reason: ClientStop,
    /// This client's participant id.
    pub id: ParticipantId,
    /// Training rounds it completed.
    pub completed: u64,
    /// Statistics and evaluation rounds it completed (SPEC.md §10.14,
    /// §10.15).
    pub summaries: u64,
    /// Rounds that failed or aborted for it.
    pub failed: u64,
}

/// Runs the client until the server finishes, `max_rounds` complete, or
/// `shutdown` resolves.
///
/// # Errors
/// [`Error::Config`] if this client's certificate or identity is not the
/// roster's; [`Error::Connection`] if the server refuses the certificate at
/// the handshake (not retried) or `max_attempts` connections fail.
pub async fn run_client(
    options: ClientOptions,
    source: &mut dyn UpdateSource,
    shutdown: impl Future<Output = ()>,
) -> Result<ClientSummary> {
    let cert = options
        .cert_chain
        .first()
        .ok_or(ConfigError::NoCertificate)?;
    let entry = options
        .roster
        .by_fingerprint(&fingerprint(cert))
        .ok_or(ConfigError::NotInRoster)?;
    if entry.identity != hex::encode(options.identity.verifying_key().to_bytes()) {
        return Err(ConfigError::WrongIdentity {
            name: entry.name.clone(),
        }
        .into());
    }
    let id = entry.id;
    let bind = if options.server.is_ipv6() {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(ConnectionError::Endpoint)?;
    endpoint.set_default_client_config(client_config(
        &options.ca,
        options.cert_chain.clone(),
        options.key.clone_key(),
        &options.limits,
    )?);
    let state = match &options.state_dir {
        Some(dir) => ClientState::open(dir)?,
        None => ClientState::in_memory(),
    };
    let mut worker = Worker {
        id,
        state,
        roster: options.roster.protocol_roster(),
        options: &options,
        rng: ChaCha20Rng::from_rng(&mut rand::rng()),
        completed: 0,
        summaries: 0,
        failed: 0,
        summary_round: false,
        last_completed: None,
        ledger: options
            .site_budget
            .map(|b| SiteLedger::open(options.state_dir.as_deref(), b))
            .transpose()?,
    };
    let result = tokio::select! {
        r = worker.run(&endpoint, source) => r,
        () = shutdown => Ok(ClientStop::Shutdown),
    };
    endpoint.close(close::LEAVING.into(), b"client leaves");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    Ok(ClientSummary {
        reason: result?,
        id,
        completed: worker.completed,
        summaries: worker.summaries,
        failed: worker.failed,
    })
}

/// A round's task as a client received it: its round id, the task, and the
/// digest of the message's bytes (SPEC.md §10.13).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReceivedTask {
    pub(crate) round: RoundId,
    pub(crate) task: Task,
    digest: [u8; 32],
}

impl ReceivedTask {
    /// Decodes a Task message whose model has at most `max_dimension`
    /// values.
    pub(crate) fn decode(bytes: &[u8], max_dimension: usize) -> veil_secagg::Result<Self> {
        let (round, task) = Task::decode(bytes, max_dimension)?;
        Ok(Self {
            round,
            task,
            digest: veil_crypto::kdf::task_digest(bytes),
        })
    }

    /// Whether `config` is the round this task announced: the same round
    /// id, the task's input length (the model's, or an evaluation's), and
    /// this task's digest, which binds the task into the round's session
    /// id and so into every signature.
    pub(crate) fn matches(&self, config: &RoundConfig) -> bool {
        config.round == self.round
            && config.d() == self.task.input_len()
            && config.task_digest == self.digest
    }
}

/// The largest message a client accepts outside a round: a round config,
/// or a task of up to `max_dimension` values.
pub(crate) fn between_rounds_cap(max_dimension: u32) -> usize {
    let max_d = usize::try_from(max_dimension).unwrap_or(usize::MAX);
    MAX_ROUND_CONFIG_LEN.max(max_task_len(max_d))
}

/// A client's input for a round: its source's update (or evaluation) for
/// `task`, clipped, quantised into `Z_2^bits` and noised as the task says
/// (veil-dp).
///
/// # Errors
/// [`Error::Source`] if the source fails or returns the wrong length;
/// [`Error::Privacy`] if veil-dp refuses the task's parameters.
pub(crate) fn client_input<R: rand_core::CryptoRng + ?Sized>(
    task: &Task,
    bits: u32,
    source: &mut dyn UpdateSource,
    rng: &mut R,
) -> Result<veil_dp::contribution::Contribution> {
    let mut update = source.update(task).map_err(Error::Source)?;
    if update.len() != task.input_len() {
        return Err(Error::Source(
            format!(
                "the input has {} values, the round {}",
                update.len(),
                task.input_len()
            )
            .into(),
        ));
    }
    Ok(veil_dp::contribution::contribute(
        &mut update,
        task.clip_norm,
        task.scale,
        bits,
        task.noise_variance,
        rng,
    )?)
}

struct Worker<'a> {
    id: ParticipantId,
    /// The round ids taken part in.
    state: ClientState,
    roster: Roster,
    options: &'a ClientOptions,
    rng: ChaCha20Rng,
    completed: u64,
    summaries: u64,
    failed: u64,
    /// Whether the current session is a statistics or evaluation round.
    summary_round: bool,
    /// The round this client last completed, and whether it was a
    /// statistics or evaluation round, until the next one starts.
    last_completed: Option<(RoundId, bool)>,
    /// The site's own ledger, with a site budget.
    ledger: Option<SiteLedger>,
}

/// Why this client does not take part in a round; the server is told the
/// reason in a `Decline`.
#[derive(Debug)]
struct Declined {
    round: u64,
    reason: DeclineReason,
    why: String,
    /// The site's data does not fit the task: stop after declining.
    fatal: bool,
}

enum Ended {
    Stop(ClientStop),
    Lost(String),
    /// The site's data does not fit the task ([`SiteDataError`]).
    Fatal(String),
    /// The injected fault fired: stay connected and silent, or leave.
    Stalled,
}

/// Whether a connection error is the peer refusing this client's
/// credentials at the handshake (a TLS alert: QUIC crypto error codes
/// 0x100..=0x1ff), which no retry can fix.
fn refused_credentials(e: &quinn::ConnectionError) -> bool {
    let crypto = |code: quinn::TransportErrorCode| (0x100..=0x1ff).contains(&u64::from(code));
    match e {
        quinn::ConnectionError::ConnectionClosed(c) => crypto(c.error_code),
        quinn::ConnectionError::TransportError(t) => crypto(t.code),
        _ => false,
    }
}

impl Worker<'_> {
    async fn run(
        &mut self,
        endpoint: &quinn::Endpoint,
        source: &mut dyn UpdateSource,
    ) -> Result<ClientStop> {
        let backoff = self.options.backoff;
        let mut failures = 0_u32;
        loop {
            let attempt = endpoint
                .connect(self.options.server, &self.options.server_name)
                .map_err(ConnectionError::from)?;
            match tokio::time::timeout(backoff.connect_timeout, attempt).await {
                Ok(Ok(conn)) => {
                    failures = 0;
                    info!(id = self.id, server = %self.options.server, "connected");
                    match self.serve(&conn, source).await {
                        Ended::Stop(stop) => {
                            conn.close(close::LEAVING.into(), b"client leaves");
                            return Ok(stop);
                        }
                        Ended::Stalled => {}
                        Ended::Fatal(why) => {
                            conn.close(close::LEAVING.into(), b"client leaves");
                            return Err(Error::SiteData(why));
                        }
                        Ended::Lost(why) => {
                            // With TLS 1.3 the server checks the client's
                            // certificate after the client's handshake is
                            // done: a refusal arrives as the close reason.
                            if let Some(reason) = conn.close_reason()
                                && refused_credentials(&reason)
                            {
                                return Err(ConnectionError::RefusedByServer(reason).into());
                            }
                            warn!(id = self.id, "connection lost: {why}");
                        }
                    }
                }
                Ok(Err(e)) if refused_credentials(&e) => {
                    return Err(ConnectionError::RefusedByServer(e).into());
                }
                Ok(Err(e)) => {
                    failures = failures.saturating_add(1);
                    debug!(id = self.id, "connection failed: {e}");
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    debug!(id = self.id, "connection attempt timed out");
                }
            }
            if backoff.max_attempts.is_some_and(|m| failures >= m) {
                return Err(ConnectionError::Unreachable {
                    server: self.options.server,
                    attempts: failures,
                }
                .into());
            }
            let exp = failures.min(16);
            let wait = backoff
                .initial
                .saturating_mul(1_u32 << exp.min(10))
                .min(backoff.max);
            // Jitter spreads reconnecting clients out.
            let jitter = wait.mul_f64(rand::RngExt::random::<f64>(&mut self.rng) * 0.5);
            tokio::time::sleep(wait.saturating_sub(jitter)).await;
        }
    }

    /// Serves one connection until it ends.
    async fn serve(&mut self, conn: &quinn::Connection, source: &mut dyn UpdateSource) -> Ended {
        let (send, recv) = match conn.open_bi().await {
            Ok(s) => s,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let (queue, queue_rx) = mpsc::channel::<Arc<Vec<u8>>>(SEND_QUEUE);
        let writer = spawn_writer(send, queue_rx);
        let caps = Caps::refuse_all();
        caps.set(
            FrameKind::SecAgg,
            Some(between_rounds_cap(self.options.max_dimension)),
        );
        let (read_tx, mut read_rx) = mpsc::channel(4);
        let reader = spawn_reader(recv, Arc::clone(&caps), (), read_tx);
        let hello_sent = encode_frame(FrameKind::Hello, &[])
            .is_ok_and(|hello| queue.try_send(Arc::new(hello)).is_ok());
        let ended = if hello_sent {
            let ended = self.rounds(conn, &caps, &queue, &mut read_rx, source).await;
            if matches!(ended, Ended::Stalled)
                && matches!(self.options.fault, Some(Fault::LeaveAfter(_)))
            {
                warn!(id = self.id, fault = ?self.options.fault, "fault injected: the client leaves");
                reader.abort();
                drop(queue);
                // The writer finishes the stream and waits until the server
                // has acknowledged every byte and the end of the stream (QUIC
                // retransmits both), so the last message arrives and the
                // server learns that this client left even if the close
                // below is lost. No shorter bound: a large masked input
                // behind a busy server may take long; a dead connection
                // ends the wait.
                let _ = writer.await;
                return Ended::Stop(ClientStop::Left);
            }
            if matches!(ended, Ended::Stalled) {
                // Let the writer take the last message and the connection
                // carry it out, so the fault point is exact.
                while queue.capacity() < SEND_QUEUE {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                warn!(id = self.id, fault = ?self.options.fault, "fault injected: the client is silent from now on");
                // The writer flushes what was queued; then nothing more.
                std::future::pending::<()>().await;
            }
            ended
        } else {
            Ended::Lost("cannot send Hello".into())
        };
        reader.abort();
        drop(queue);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        ended
    }

    async fn rounds(
        &mut self,
        conn: &quinn::Connection,
        caps: &Caps,
        queue: &mpsc::Sender<Arc<Vec<u8>>>,
        read_rx: &mut mpsc::Receiver<((), ReadEvent)>,
        source: &mut dyn UpdateSource,
    ) -> Ended {
        let mut task: Option<ReceivedTask> = None;
        let mut session: Option<ClientSession> = None;
        loop {
            let deadline = session.as_ref().and_then(ClientSession::poll_timeout);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                e = read_rx.recv() => e,
                () = sleep => {
                    if let Some(s) = session.as_mut() {
                        s.handle_timeout(Instant::now());
                    }
                    if let Some(end) = self.pump(&mut session, queue) {
                        return end;
                    }
                    continue;
                }
            };
            let Some(((), event)) = event else {
                return Ended::Lost("reader ended".into());
            };
            match event {
                ReadEvent::Closed(why) => {
                    if let Some(quinn::ConnectionError::ApplicationClosed(c)) = conn.close_reason()
                        && c.error_code == close::DONE.into()
                    {
                        info!(id = self.id, "the server finished its rounds");
                        return Ended::Stop(ClientStop::ServerDone);
                    }
                    let reason = conn.close_reason().map_or(why, |r| r.to_string());
                    return Ended::Lost(reason);
                }
                ReadEvent::Frame(FrameKind::SecAgg, bytes)
                    if MessageType::peek(&bytes) == Some(MessageType::Task) =>
                {
                    let max_d = usize::try_from(self.options.max_dimension).unwrap_or(usize::MAX);
                    match ReceivedTask::decode(&bytes, max_d) {
                        Ok(t) => {
                            debug!(id = self.id, round = t.round, "task received");
                            if let Some(mut old) = session.take() {
                                old.abort();
                            }
                            task = Some(t);
                        }
                        Err(e) => {
                            conn.close(close::VIOLATION.into(), b"bad task");
                            return Ended::Lost(format!("the server sent a bad task: {e}"));
                        }
                    }
                }
                ReadEvent::Frame(FrameKind::SecAgg, bytes)
                    if session.is_none()
                        && MessageType::peek(&bytes) == Some(MessageType::Abort) =>
                {
                    self.discarded(&bytes);
                }
                ReadEvent::Frame(FrameKind::SecAgg, bytes) => {
                    if self.fault_fires(&bytes) {
                        return Ended::Stalled;
                    }
                    if let Some(s) = session.as_mut() {
                        debug!(id = self.id, kind = ?MessageType::peek(&bytes), "received");
                        let _ = s.handle_message(&bytes, Instant::now(), &mut self.rng);
                    } else if let Some(t) = task.take() {
                        match self.start(&t, &bytes, source) {
                            Ok(s) => {
                                caps.set(
                                    FrameKind::SecAgg,
                                    Some(
                                        max_server_message_len(s.config())
                                            .max(between_rounds_cap(self.options.max_dimension)),
                                    ),
                                );
                                session = Some(s);
                            }
                            Err(declined) => {
                                self.failed = self.failed.saturating_add(1);
                                warn!(
                                    id = self.id,
                                    round = declined.round,
                                    reason = %declined.reason,
                                    "this client declines the round: {}",
                                    declined.why
                                );
                                // The server learns which rule refused it.
                                let decline = ClientMessage::Decline(Decline {
                                    reason: declined.reason,
                                })
                                .encode(declined.round);
                                if let Ok(frame) = encode_frame(FrameKind::SecAgg, &decline) {
                                    let _ = queue.try_send(Arc::new(frame));
                                }
                                if declined.fatal {
                                    return Ended::Fatal(declined.why);
                                }
                            }
                        }
                    } else {
                        debug!(id = self.id, "message without a task ignored");
                    }
                }
                ReadEvent::Frame(kind, _) => {
                    conn.close(close::VIOLATION.into(), b"unexpected frame");
                    return Ended::Lost(format!("the server sent an unexpected {kind:?} frame"));
                }
            }
            if let Some(end) = self.pump(&mut session, queue) {
                return end;
            }
        }
    }

    /// Starts a session from the round config in `bytes` and the task, or
    /// says why this client declines the round. The site's floor and the
    /// record of round ids are checked before the update is computed, and
    /// the round id is recorded before anything is sent.
    fn start(
        &mut self,
        received: &ReceivedTask,
        bytes: &[u8],
        source: &mut dyn UpdateSource,
    ) -> core::result::Result<ClientSession, Declined> {
        let task = &received.task;
        self.summary_round = !matches!(task.purpose, veil_secagg::messages::Purpose::Train);
        let other = |why: String| Declined {
            round: received.round,
            reason: DeclineReason::Other,
            why,
            fatal: false,
        };
        let config = match ServerMessage::decode(bytes, None) {
            Ok((_, ServerMessage::RoundConfig(config))) => config,
            Ok(_) => return Err(other("the server sent no round config".into())),
            Err(e) => return Err(other(format!("the round config does not decode: {e}"))),
        };
        let round = config.round;
        if !received.matches(&config) {
            return Err(other(
                "the config does not match the task (round, dimension or task digest)".into(),
            ));
        }
        if let Err(refusal) = self.options.floor.check(&config) {
            return Err(Declined {
                round,
                reason: refusal.reason,
                why: refusal.to_string(),
                fatal: false,
            });
        }
        check_noise(&config, task, self.options.min_noise_multiplier)?;
        match self.state.take(round) {
            Ok(Ok(())) => {}
            Ok(Err(reused)) => {
                return Err(Declined {
                    round,
                    reason: DeclineReason::ReusedRound,
                    why: format!(
                        "round id {} is not above {}, the last round this client took part in: a server must never reuse a round id",
                        reused.round, reused.last
                    ),
                    fatal: false,
                });
            }
            Err(e) => return Err(other(format!("cannot record the round id: {e}"))),
        }
        // The site's own budget: the round is recorded (its line synced)
        // before anything of it is sent, or declined.
        if let Some(l) = self.ledger.as_mut() {
            match l.record(&config, task) {
                Ok(eps) => info!(
                    id = self.id,
                    round,
                    epsilon = eps,
                    "site ledger: round recorded"
                ),
                Err(why) => {
                    return Err(Declined {
                        round,
                        reason: DeclineReason::Budget,
                        why: format!("round {round}: {why}"),
                        fatal: false,
                    });
                }
            }
        }
        let started = Instant::now();
        let contribution =
            client_input(task, config.ring.bits(), source, &mut self.rng).map_err(|e| {
                let fatal = matches!(&e, Error::Source(s) if s.is::<SiteDataError>());
                Declined {
                    fatal,
                    ..other(e.to_string())
                }
            })?;
        info!(
            id = self.id,
            round,
            training_round = task.training_round,
            pre_clip_norm = contribution.pre_clip_norm,
            ms = started.elapsed().as_millis() as u64,
            "input ready"
        );
        ClientSession::new(
            config,
            self.id,
            self.options.identity.clone(),
            &self.roster,
            &self.options.floor,
            contribution.input,
            Instant::now(),
            &mut self.rng,
        )
        .map_err(|e| other(e.to_string()))
    }

    /// Whether the injected fault fires on this message (first round only).
    fn fault_fires(&self, bytes: &[u8]) -> bool {
        let Some(fault) = self.options.fault else {
            return false;
        };
        self.completed == 0 && MessageType::peek(bytes) == Some(fault.point())
    }

    /// An `Abort` between rounds: with code 10 for the round this client
    /// last completed, the server discarded that round's sum (SPEC.md
    /// §10.4), and it counts as failed, not completed.
    fn discarded(&mut self, bytes: &[u8]) {
        let Ok((round, ServerMessage::Abort(abort))) = ServerMessage::decode(bytes, None) else {
            debug!(id = self.id, "malformed abort between rounds ignored");
            return;
        };
        if abort.code == ABORT_DISCARDED
            && let Some((last, summary)) = self.last_completed
            && last == round
        {
            self.last_completed = None;
            if summary {
                self.summaries = self.summaries.saturating_sub(1);
            } else {
                self.completed = self.completed.saturating_sub(1);
            }
            self.failed = self.failed.saturating_add(1);
            warn!(
                id = self.id,
                round, "the server discarded the round's sum: it counts as failed"
            );
        } else {
            debug!(
                id = self.id,
                round,
                code = abort.code,
                "abort between rounds ignored"
            );
        }
    }

    /// Sends what the session queued and handles its events; `Some` ends
    /// the connection.
    fn pump(
        &mut self,
        session: &mut Option<ClientSession>,
        queue: &mpsc::Sender<Arc<Vec<u8>>>,
    ) -> Option<Ended> {
        let s = session.as_mut()?;
        while let Some(bytes) = s.poll_transmit() {
            debug!(id = self.id, kind = ?MessageType::peek(&bytes), "sending");
            let Ok(frame) = encode_frame(FrameKind::SecAgg, &bytes) else {
                return Some(Ended::Lost("message too long to frame".into()));
            };
            let stall = self.fault_fires(&bytes);
            if queue.try_send(Arc::new(frame)).is_err() {
                return Some(Ended::Lost("the send queue is full".into()));
            }
            if stall {
                return Some(Ended::Stalled);
            }
        }
        let mut finished = false;
        while let Some(event) = s.poll_event() {
            match event {
                ClientEvent::Completed => {
                    if self.summary_round {
                        self.summaries = self.summaries.saturating_add(1);
                    } else {
                        self.completed = self.completed.saturating_add(1);
                    }
                    self.last_completed = Some((s.round(), self.summary_round));
                    info!(id = self.id, round = s.round(), "round completed");
                    finished = true;
                }
                ClientEvent::Aborted(e) => {
                    self.failed = self.failed.saturating_add(1);
                    warn!(id = self.id, round = s.round(), "round ended: {e}");
                    finished = true;
                }
                ClientEvent::PhaseCompleted(phase) => {
                    debug!(id = self.id, round = s.round(), ?phase, "phase done");
                }
                _ => {}
            }
        }
        if finished {
            *session = None;
            if self.options.max_rounds.is_some_and(|m| self.completed >= m) {
                return Some(Ended::Stop(ClientStop::RoundsDone));
            }
        }
        None
    }
}

/// Refuses a round whose smallest sum carries less noise than the site's
/// `min_noise_multiplier` (`0` accepts any): the `t - c` honest shares that
/// any sum the server can form holds at the least (SPEC.md §9.3), as the
/// distributed discrete Gaussian of veil-dp. Noise too small for veil-dp to
/// account (a share below half a quantum) counts as none.
fn check_noise(config: &RoundConfig, task: &Task, min: f64) -> core::result::Result<(), Declined> {
    if min <= 0.0 {
        return Ok(());
    }
    let honest = u64::from(config.threshold.saturating_sub(config.max_corrupt));
    let z = veil_dp::distributed::DistributedDiscreteGaussian::new(
        task.noise_variance.sqrt(),
        honest,
        u64::from(config.dimension),
        task.clip_norm * task.scale,
    )
    .map_or(0.0, |m| m.effective_noise_multiplier());
    if z < min {
        return Err(Declined {
            round: config.round,
            reason: DeclineReason::Noise,
            why: format!(
                "round {}: the {honest} honest noise shares of its smallest sum give noise multiplier {z:.4}, below this site's floor min_noise_multiplier = {min}",
                config.round
            ),
            fatal: false,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use veil_crypto::prg::RingBits;

    use super::*;

    fn task(noise_variance: f64) -> Task {
        Task {
            training_round: 1,
            purpose: veil_secagg::messages::Purpose::Train,
            clip_norm: 1.0,
            scale: 1024.0,
            noise_variance,
            training: None,
            model: vec![0.0; 100],
        }
    }

    #[test]
    fn a_config_matches_only_the_task_whose_digest_it_carries() {
        let shown = task(0.0);
        let other = Task {
            model: vec![1.0; 100],
            ..task(0.0)
        };
        let config = |digest| {
            RoundConfig::new(
                4,
                (0..10).collect(),
                100,
                RingBits::new(32).unwrap(),
                6,
                9,
                2,
                1000,
                [0; 32],
            )
            .unwrap()
            .with_task_digest(digest)
        };
        let bytes = shown.encode(4);
        let received = ReceivedTask::decode(&bytes, 100).unwrap();
        assert!(received.matches(&config(veil_crypto::kdf::task_digest(&bytes))));
        // The same config for another task, a config for no task, another
        // round or another dimension: refused.
        let other_digest = veil_crypto::kdf::task_digest(&other.encode(4));
        assert!(!received.matches(&config(other_digest)));
        assert!(!received.matches(&config([0; 32])));
        let later = ReceivedTask::decode(&shown.encode(5), 100).unwrap();
        assert!(!later.matches(&config(veil_crypto::kdf::task_digest(&shown.encode(5)))));
        let small = Task {
            model: vec![0.0; 99],
            ..task(0.0)
        };
        let small_bytes = small.encode(4);
        let small = ReceivedTask::decode(&small_bytes, 100).unwrap();
        assert!(!small.matches(&config(veil_crypto::kdf::task_digest(&small_bytes))));
        // An evaluation's input is its counts, not the model: a config of
        // the model's dimension for an evaluation task is refused, one of
        // the counts' length accepted.
        let spec = veil_secagg::messages::TrainingSpec {
            architecture: "logistic".into(),
            features: (0..99).map(|i| format!("x{i}")).collect(),
            classes: vec!["no".into(), "yes".into()],
            optimizer: veil_secagg::messages::LocalOptimizer::Sgd,
            epochs: 1,
            batch_size: 8,
            learning_rate: 0.1,
            holdout: 0.2,
            standardization: None,
        };
        let evaluate = Task {
            purpose: veil_secagg::messages::Purpose::Evaluate { row_cap: 10 },
            training: Some(spec),
            ..task(0.0)
        };
        let bytes = evaluate.encode(4);
        let digest = veil_crypto::kdf::task_digest(&bytes);
        let received = ReceivedTask::decode(&bytes, 100).unwrap();
        assert!(!received.matches(&config(digest)), "d = the model's 100");
        let counts = RoundConfig::new(
            4,
            (0..10).collect(),
            u32::try_from(veil_secagg::messages::evaluation_len(2)).unwrap(),
            RingBits::new(32).unwrap(),
            6,
            9,
            2,
            1000,
            [0; 32],
        )
        .unwrap()
        .with_task_digest(digest);
        assert!(received.matches(&counts));
    }

    #[test]
    fn the_noise_floor_counts_only_the_honest_shares_of_the_smallest_sum() {
        // t = 6, c = 2: the smallest sum holds 4 honest noise shares.
        let config = RoundConfig::new(
            4,
            (0..10).collect(),
            100,
            RingBits::new(32).unwrap(),
            6,
            9,
            2,
            1000,
            [0; 32],
        )
        .unwrap();
        // Each share with sigma = 1024 quanta: 4 shares give about
        // 2 * 1024 / (1024 + rounding) ~ 1.99.
        let enough = task(1024.0 * 1024.0);
        check_noise(&config, &enough, 1.9).unwrap();
        let refusal = check_noise(&config, &enough, 2.1).err().unwrap();
        assert_eq!(refusal.reason, DeclineReason::Noise);
        assert!(
            refusal.why.contains("4 honest noise shares"),
            "{}",
            refusal.why
        );
        // No noise at all is refused by any positive floor, accepted by 0.
        assert!(check_noise(&config, &task(0.0), 0.1).is_err());
        check_noise(&config, &task(0.0), 0.0).unwrap();
    }
}
