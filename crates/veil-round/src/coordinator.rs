//! The round coordinator: a sans-IO state machine over a deployment's
//! rounds (see the crate docs).
//!
//! Between rounds it waits until the pool holds every roster client, or
//! `min_clients` for `start_delay`; then it draws a cohort, takes the next
//! round id (asking for the counters to be persisted before anything is
//! sent, so a crash never reuses it), and starts a [`ServerSession`]. It
//! relays the session's messages and events until the round completes or
//! aborts, and then releases: ledger line, model, sum and counters in one
//! [`Action::Release`] whose parts the driver persists in that order before
//! it carries out any later action.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, info, warn};
use veil_crypto::ParticipantId;
use veil_crypto::prg::RingBits;
use veil_dp::ledger::Ledger;
use veil_secagg::messages::{
    ABORT_DISCARDED, Abort, EvaluationCounts, FeatureSums, Purpose, ServerMessage, Task,
    max_client_message_len, peek_header,
};
use veil_secagg::{Phase, Roster, RoundConfig, RoundResult, ServerEvent, ServerSession};

use crate::error::{Error, ModelError, Result};
use crate::plan::RoundPlan;
use crate::record::{
    Counters, EvaluationRecord, Outcome, RoundKind, RoundRecord, RoundReport, StatisticsRecord,
};

/// How the server turns a released mean update into the next global model,
/// and what it does after each release (evaluation, reporting). The server
/// optimiser's state lives here and is not persisted by the coordinator.
pub trait ServerModel: Send {
    /// Applies the mean of the included clients' updates to `model`.
    ///
    /// # Errors
    /// Whatever prevents it; the round is then not released and the run
    /// stops.
    fn apply(
        &mut self,
        model: &mut [f32],
        mean_update: &[f32],
    ) -> core::result::Result<(), ModelError>;

    /// Called after a training round is released and persisted.
    fn released(&mut self, report: &RoundReport, model: &[f32]) {
        let _ = (report, model);
    }

    /// Called after a round that measured rather than trained (an
    /// evaluation or statistics round) is released and persisted, with the
    /// current model (`report.evaluation` or `report.statistics` holds what
    /// it found).
    fn measured(&mut self, report: &RoundReport, model: &[f32]) {
        let _ = (report, model);
    }
}

/// A server model that keeps the model as it is: for benchmarks and
/// protocol tests, where only the released sums matter. (The server
/// optimisers, FedAvg among them, are veil-learn's.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepModel;

impl ServerModel for KeepModel {
    fn apply(
        &mut self,
        _model: &mut [f32],
        _mean_update: &[f32],
    ) -> core::result::Result<(), ModelError> {
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The configured number of rounds was released.
    RoundsDone,
    /// The next round would exceed the privacy budget.
    BudgetExhausted,
    /// The caller asked it to stop.
    Shutdown,
}

/// A released round, to persist in this order: the ledger line (appended
/// and synced), the model and the sum (each replaced atomically), the
/// counters, the record. Then call [`Coordinator::released`]. An
/// evaluation round releases no model and no sum (its record holds the
/// counts).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Release {
    /// The ledger line (with privacy on).
    pub ledger_line: Option<Vec<u8>>,
    /// The new global model (`None` for an evaluation round).
    pub model: Option<Vec<f32>>,
    /// The released sum, when the plan keeps sums.
    pub sum: Option<Vec<u64>>,
    /// A statistics round's result: the per-feature mean and standard
    /// deviation every site standardises with from now on (persist it: a
    /// restarted server resumes with it, [`Resume::standardization`]).
    pub standardization: Option<(Vec<f32>, Vec<f32>)>,
    /// The counters, with the round released.
    pub counters: Counters,
    /// The round's record (a transport adds its wire counters).
    pub record: RoundRecord,
}

/// What the driver must do, in the order given.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Persist the counters before carrying out any later action: a round
    /// id was taken.
    SaveCounters(Counters),
    /// A round starts: from now on each participant may send messages of up
    /// to `client_cap` bytes (keep the cap after the round, so a late
    /// message is stale rather than a violation).
    RoundStarted {
        /// The protocol round id.
        round: u64,
        /// The cohort.
        participants: Vec<ParticipantId>,
        /// The largest message a participant may send in the round.
        client_cap: usize,
    },
    /// Send `message` (one encoded veil-secagg message) to `to`. If it
    /// cannot be queued, disconnect `to` and report
    /// [`Coordinator::disconnected`].
    Send {
        /// The recipient.
        to: ParticipantId,
        /// The encoded message (shared by all recipients of a broadcast).
        message: Arc<Vec<u8>>,
    },
    /// Close `participant`'s connection: it broke a rule. It has left the
    /// pool already.
    Disconnect {
        /// Who.
        participant: ParticipantId,
        /// Why, for the close frame and the log.
        reason: &'static str,
    },
    /// A round ended without a release: append its record.
    Ended(Box<RoundRecord>),
    /// A round is released: persist it (see [`Release`]).
    Release(Box<Release>),
    /// The run is over.
    Stop(StopReason),
}

/// Where a run starts: the state a driver restored, or a new deployment's.
#[derive(Debug)]
pub struct Resume {
    /// The counters.
    pub counters: Counters,
    /// The global model.
    pub model: Vec<f32>,
    /// The privacy ledger, opened from its file, when the plan has privacy.
    pub ledger: Option<Ledger>,
    /// The standardisation a statistics round released before a restart.
    pub standardization: Option<(Vec<f32>, Vec<f32>)>,
}

/// A round in flight, with its bookkeeping.
struct Flight {
    session: ServerSession,
    purpose: Purpose,
    training_round: u64,
    started: Instant,
    phase_started: Instant,
    phase_ms: Vec<(String, u64)>,
    bytes_in: u64,
    bytes_out: u64,
}

enum State {
    /// Between rounds: since when the pool has held `min_clients`, and
    /// when to try again after a draw that gave no round.
    Idle {
        enough_since: Option<Instant>,
        retry_at: Option<Instant>,
    },
    Round(Box<Flight>),
    Stopped,
}

/// The least wait before another draw after one that gave no round.
const REDRAW_WAIT: Duration = Duration::from_millis(50);

/// The round coordinator.
pub struct Coordinator {
    plan: RoundPlan,
    roster: Roster,
    roster_size: usize,
    counters: Counters,
    model: Vec<f32>,
    ledger: Option<Ledger>,
    server_model: Box<dyn ServerModel>,
    rng: ChaCha20Rng,
    unmask_threads: usize,
    pool: BTreeSet<ParticipantId>,
    state: State,
    actions: VecDeque<Action>,
    failed_rounds: u64,
    missed_draws: u64,
    /// The training round whose model was last evaluated (or skipped after
    /// a failed evaluation round).
    evaluated_through: u64,
    /// Whether the stop rules were checked since the last round ended
    /// (they change only when a round ends).
    stop_checked: bool,
}

impl core::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Coordinator")
            .field("plan", &self.plan)
            .field("counters", &self.counters)
            .field("pool", &self.pool.len())
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Coordinator {
    /// A coordinator for `plan` over `roster` (of `roster_size` clients),
    /// resuming from `resume`, with `server_model` as the optimiser and
    /// `seed` for its randomness (cohort draws, graph seeds, the session's
    /// nonces).
    ///
    /// # Errors
    /// [`Error::Plan`] if the plan fails its check, the roster cannot make
    /// a cohort, the resumed state does not fit the plan, or privacy is on
    /// without a ledger.
    pub fn new(
        plan: RoundPlan,
        roster: Roster,
        roster_size: usize,
        resume: Resume,
        server_model: Box<dyn ServerModel>,
        seed: [u8; 32],
    ) -> Result<Self> {
        plan.check()?;
        let mut plan = plan;
        if let Some(restored) = resume.standardization {
            match plan.training.as_mut() {
                Some(t) if plan.statistics.is_some() => {
                    t.standardization = Some(restored);
                    t.validate().map_err(|e| Error::plan("statistics", e))?;
                }
                _ => {
                    return Err(Error::plan(
                        "statistics",
                        "the state holds released statistics, the plan has no statistics round",
                    ));
                }
            }
        }
        if roster_size < plan.min_clients {
            return Err(Error::plan(
                "min_clients",
                format!(
                    "the roster lists {roster_size} clients, fewer than min_clients = {}: no round could start",
                    plan.min_clients
                ),
            ));
        }
        if resume.counters.dimension != plan.dimension
            || resume.model.len() != plan.dimension as usize
        {
            return Err(Error::plan(
                "dimension",
                format!(
                    "the resumed state holds a model of {} values, the plan {}",
                    resume.model.len(),
                    plan.dimension
                ),
            ));
        }
        if plan.privacy.is_some() != resume.ledger.is_some() {
            return Err(Error::plan(
                "privacy",
                "a plan with privacy needs its ledger, and only such a plan",
            ));
        }
        Ok(Self {
            evaluated_through: resume.counters.released_rounds,
            plan,
            roster,
            roster_size,
            counters: resume.counters,
            model: resume.model,
            ledger: resume.ledger,
            server_model,
            rng: ChaCha20Rng::from_seed(seed),
            unmask_threads: 1,
            pool: BTreeSet::new(),
            state: State::Idle {
                enough_since: None,
                retry_at: None,
            },
            actions: VecDeque::new(),
            failed_rounds: 0,
            missed_draws: 0,
            stop_checked: false,
        })
    }

    /// Threads a round's final unmasking may use (0 counts as 1).
    pub fn set_unmask_threads(&mut self, threads: usize) {
        self.unmask_threads = threads;
    }

    /// The counters as the coordinator holds them.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Rounds that aborted, were discarded or could not start in this run.
    #[must_use]
    pub fn failed_rounds(&self) -> u64 {
        self.failed_rounds
    }

    /// Draws in a row that gave no round (too small a cohort, or no
    /// parameters for it); 0 once a round starts.
    #[must_use]
    pub fn missed_draws(&self) -> u64 {
        self.missed_draws
    }

    /// The global model.
    #[must_use]
    pub fn model(&self) -> &[f32] {
        &self.model
    }

    /// The phase of the round in flight, if any: a driver that must keep
    /// other work going while the unmask phase computes the sum asks this
    /// before a call.
    #[must_use]
    pub fn phase(&self) -> Option<Phase> {
        match &self.state {
            State::Round(f) => Some(f.session.phase()),
            _ => None,
        }
    }

    /// The id of the round in flight, if any.
    #[must_use]
    pub fn round(&self) -> Option<u64> {
        match &self.state {
            State::Round(f) => Some(f.session.config().round),
            _ => None,
        }
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Round(f) => f.session.poll_timeout(),
            State::Idle {
                retry_at: Some(at), ..
            } => Some(*at),
            State::Idle {
                enough_since: Some(since),
                ..
            } => since.checked_add(self.plan.start_delay),
            State::Idle { .. } | State::Stopped => None,
        }
    }

    /// A deadline may have passed.
    ///
    /// # Errors
    /// As [`Self::connected`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        if let State::Round(f) = &mut self.state {
            f.session.handle_timeout(now, &mut self.rng);
            self.pump(now)?;
        }
        self.advance(now)
    }

    /// `id` connected (again: a participant of the round in flight that
    /// reconnects lost its round state and is dropped from the round).
    ///
    /// # Errors
    /// Fatal errors of the run: a ledger that cannot account the next
    /// round, a session that cannot start, an optimiser that fails.
    pub fn connected(&mut self, id: ParticipantId, now: Instant) -> Result<()> {
        let again = !self.pool.insert(id);
        if again {
            self.drop_from_round(id, now);
        }
        self.pump(now)?;
        self.advance(now)
    }

    /// `id`'s connection ended (or could not take a message).
    ///
    /// # Errors
    /// As [`Self::connected`].
    pub fn disconnected(&mut self, id: ParticipantId, now: Instant) -> Result<()> {
        if self.pool.remove(&id) {
            info!(participant = id, "client left");
            self.drop_from_round(id, now);
        }
        self.pump(now)?;
        self.advance(now)
    }

    /// A veil-secagg message from `id`. A message of an earlier round, or
    /// one between rounds, is stale and ignored (a client may send before
    /// it learns that a round ended); a message from outside the round's
    /// cohort is a violation.
    ///
    /// # Errors
    /// As [`Self::connected`].
    pub fn handle_message(&mut self, id: ParticipantId, bytes: &[u8], now: Instant) -> Result<()> {
        if !self.pool.contains(&id) {
            return Ok(());
        }
        let State::Round(f) = &mut self.state else {
            debug!(participant = id, "stale message between rounds ignored");
            return Ok(());
        };
        let round = f.session.config().round;
        if peek_header(bytes).is_some_and(|(_, r)| r < round) {
            debug!(participant = id, "stale message ignored");
            return Ok(());
        }
        if !f.session.config().contains(id) {
            warn!(participant = id, "message from outside the cohort");
            self.pool.remove(&id);
            self.actions.push_back(Action::Disconnect {
                participant: id,
                reason: "unexpected message",
            });
            return Ok(());
        }
        f.bytes_in = f.bytes_in.saturating_add(bytes.len() as u64);
        if let Err(e) = f.session.handle_message(id, bytes, now, &mut self.rng) {
            debug!(participant = id, "message refused: {e}");
        }
        self.pump(now)?;
        self.advance(now)
    }

    /// After a [`Action::Release`] was persisted: tells the server model,
    /// with the record as persisted (a transport's wire counters in it).
    pub fn released(&mut self, record: &RoundRecord) {
        let report = RoundReport::from(record);
        match record.kind {
            RoundKind::Train => self.server_model.released(&report, &self.model),
            _ => self.server_model.measured(&report, &self.model),
        }
    }

    /// What the next round sums: an evaluation of the latest model when
    /// one is due (after every `every`-th training round, and after the
    /// last), else a training round.
    fn next_purpose(&self) -> Purpose {
        if let Some(statistics) = self.plan.statistics_purpose()
            && self
                .plan
                .training
                .as_ref()
                .is_some_and(|t| t.standardization.is_none())
        {
            return statistics;
        }
        let released = self.counters.released_rounds;
        match (self.plan.evaluation, self.plan.evaluation_purpose()) {
            (Some(e), Some(purpose))
                if released > self.evaluated_through
                    && (released.is_multiple_of(e.every)
                        || (self.plan.rounds > 0 && released >= self.plan.rounds)) =>
            {
                purpose
            }
            _ => Purpose::Train,
        }
    }

    fn drop_from_round(&mut self, id: ParticipantId, now: Instant) {
        if let State::Round(f) = &mut self.state
            && f.session.config().contains(id)
        {
            f.session.handle_disconnect(id, now, &mut self.rng);
        }
    }

    /// Between rounds: stops, or starts a round when the pool is ready.
    fn advance(&mut self, now: Instant) -> Result<()> {
        let State::Idle {
            enough_since,
            retry_at,
        } = &mut self.state
        else {
            return Ok(());
        };
        if retry_at.is_some_and(|at| now < at) {
            return Ok(());
        }
        *retry_at = None;
        let n = self.pool.len();
        let ready = if n >= self.roster_size {
            true
        } else if n >= self.plan.min_clients {
            let since = *enough_since.get_or_insert(now);
            now.saturating_duration_since(since) >= self.plan.start_delay
        } else {
            *enough_since = None;
            false
        };
        if !self.stop_checked {
            if let Some(stop) = self.stop_reason()? {
                self.state = State::Stopped;
                self.actions.push_back(Action::Stop(stop));
                return Ok(());
            }
            self.stop_checked = true;
        }
        if !ready {
            return Ok(());
        }
        let flight = match self.sample_cohort() {
            Some(cohort) => self.begin_round(cohort, now)?,
            None => None,
        };
        match flight {
            Some(flight) => {
                self.missed_draws = 0;
                self.state = State::Round(flight);
                self.pump(now)
            }
            None => {
                self.missed_draws = self.missed_draws.saturating_add(1);
                let wait = self.plan.start_delay.max(REDRAW_WAIT);
                if let State::Idle { retry_at, .. } = &mut self.state {
                    *retry_at = now.checked_add(wait);
                }
                Ok(())
            }
        }
    }

    /// Whether the run is over: its rounds are released, or the next round
    /// would take `ε` past the budget.
    fn stop_reason(&self) -> Result<Option<StopReason>> {
        let purpose = self.next_purpose();
        if self.plan.rounds > 0
            && self.counters.released_rounds >= self.plan.rounds
            && purpose == Purpose::Train
        {
            return Ok(Some(StopReason::RoundsDone));
        }
        if let (Some(ledger), Some(p)) = (&self.ledger, self.plan.privacy) {
            // The fewest shares a released sum may hold.
            if let Some(spend) = self
                .plan
                .release_plan_for(&purpose)
                .spend(self.counters.next_round_id, self.plan.min_clients as u64)
            {
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
        }
        Ok(None)
    }

    /// Poisson sampling with rate `q` from the pool, as the accountant
    /// assumes; `None` if fewer than `min_clients` were drawn.
    fn sample_cohort(&mut self) -> Option<Vec<ParticipantId>> {
        let q = self.plan.sampling_rate;
        let rng = &mut self.rng;
        let mut cohort: Vec<ParticipantId> = self
            .pool
            .iter()
            .copied()
            .filter(|_| q >= 1.0 || rng.random::<f64>() < q)
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

    fn round_config(
        &mut self,
        cohort: Vec<ParticipantId>,
        round: u64,
        purpose: Purpose,
    ) -> Result<RoundConfig> {
        let n = cohort.len();
        let rec = self.plan.secagg.parameters(n)?;
        let timeout_ms = u32::try_from(self.plan.phase_timeout.as_millis()).unwrap_or(u32::MAX);
        let ring = RingBits::new(self.plan.ring_bits_for(&purpose)?)
            .map_err(|e| Error::plan("scale", e.to_string()))?;
        let mut seed = [0_u8; 32];
        self.rng.fill(&mut seed);
        Ok(RoundConfig::new(
            round,
            cohort,
            self.plan.dimension_for(&purpose),
            ring,
            rec.threshold,
            rec.degree,
            rec.max_corrupt,
            timeout_ms,
            seed,
        )?)
    }

    /// Takes the next round id (to be persisted before anything is sent),
    /// builds the config and the task, and starts the session. `None` if no
    /// config fits this cohort.
    fn begin_round(
        &mut self,
        cohort: Vec<ParticipantId>,
        now: Instant,
    ) -> Result<Option<Box<Flight>>> {
        let round = self.counters.next_round_id;
        let purpose = self.next_purpose();
        let training_round = match purpose {
            Purpose::Train => self.counters.released_rounds.saturating_add(1),
            _ => self.counters.released_rounds,
        };
        self.counters.next_round_id = round.saturating_add(1);
        self.actions.push_back(Action::SaveCounters(self.counters));
        let config = match self.round_config(cohort, round, purpose.clone()) {
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
        let release = self.plan.release_plan_for(&purpose);
        let task = Task {
            training_round,
            purpose: purpose.clone(),
            clip_norm: release.clip_norm,
            scale: release.scale,
            noise_variance: release.client_variance(),
            training: self.plan.training.clone(),
            model: self.model.clone(),
        };
        info!(
            round,
            training_round,
            kind = ?RoundKind::of(&purpose),
            n = config.n(),
            k = config.degree,
            t = config.threshold,
            bits = config.ring.bits(),
            d = config.dimension,
            "round started"
        );
        // The config carries the task's digest: the session id, and so
        // every signature of the round, binds the task (SPEC.md §10.13).
        let message = Arc::new(task.encode(round));
        let config = config.with_task_digest(veil_crypto::kdf::task_digest(&message));
        let mut session = ServerSession::new(config.clone(), &self.roster, now)?;
        session.set_unmask_threads(self.unmask_threads);
        self.actions.push_back(Action::RoundStarted {
            round,
            participants: config.participants.clone(),
            client_cap: max_client_message_len(&config),
        });
        let task_bytes = (message.len() as u64).saturating_mul(config.n() as u64);
        for to in &config.participants {
            self.actions.push_back(Action::Send {
                to: *to,
                message: Arc::clone(&message),
            });
        }
        Ok(Some(Box::new(Flight {
            session,
            purpose,
            training_round,
            started: now,
            phase_started: now,
            phase_ms: Vec::new(),
            bytes_in: 0,
            bytes_out: task_bytes,
        })))
    }

    /// Queues what the round's session sent and handles its events; on the
    /// round's end, finishes it.
    fn pump(&mut self, now: Instant) -> Result<()> {
        let State::Round(f) = &mut self.state else {
            return Ok(());
        };
        let round = f.session.config().round;
        let mut done = None;
        loop {
            while let Some((to, bytes)) = f.session.poll_transmit() {
                f.bytes_out = f.bytes_out.saturating_add(bytes.len() as u64);
                self.actions.push_back(Action::Send {
                    to,
                    message: Arc::new(bytes),
                });
            }
            let Some(event) = f.session.poll_event() else {
                break;
            };
            match event {
                ServerEvent::PhaseCompleted { phase, remaining } => {
                    let ms = millis(now.saturating_duration_since(f.phase_started));
                    f.phase_started = now;
                    f.phase_ms.push((format!("{phase:?}"), ms));
                    info!(round, ?phase, remaining, ms, "phase done");
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
                            round,
                            participant,
                            reason = %reason,
                            "participant declined the round: its site's {reason} refuses it"
                        );
                        continue;
                    }
                    warn!(
                        round,
                        participant,
                        ?phase,
                        reason = reason.as_ref().map(ToString::to_string),
                        "participant dropped"
                    );
                    if reason.is_some() && self.pool.remove(&participant) {
                        self.actions.push_back(Action::Disconnect {
                            participant,
                            reason: "protocol violation",
                        });
                    }
                }
                ServerEvent::RoundComplete(result) => done = Some(Ok(result)),
                ServerEvent::Aborted(e) => done = Some(Err(e.to_string())),
                _ => {}
            }
        }
        let Some(outcome) = done else {
            return Ok(());
        };
        let State::Round(flight) = core::mem::replace(
            &mut self.state,
            State::Idle {
                enough_since: None,
                retry_at: None,
            },
        ) else {
            return Ok(());
        };
        self.finish(*flight, outcome, now)
    }

    /// Ends a completed round without a release: logs why, records it,
    /// and tells the participants in its sum.
    fn discard(&mut self, mut record: RoundRecord, why: String) {
        warn!(
            round = record.round_id,
            "sum discarded, nothing released: {why}"
        );
        record.outcome = Outcome::Discarded;
        record.detail = Some(why);
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        self.tell_discarded(record.round_id, &record.included);
        self.actions.push_back(Action::Ended(Box::new(record)));
    }

    /// Tells each participant whose input was in a discarded sum that the
    /// round did not count (SPEC.md §10.4, code 10).
    fn tell_discarded(&mut self, round: u64, included: &[ParticipantId]) {
        let message = Arc::new(
            ServerMessage::Abort(Abort {
                code: ABORT_DISCARDED,
            })
            .encode(round),
        );
        for to in included {
            if self.pool.contains(to) {
                self.actions.push_back(Action::Send {
                    to: *to,
                    message: Arc::clone(&message),
                });
            }
        }
    }

    fn finish(
        &mut self,
        flight: Flight,
        outcome: core::result::Result<RoundResult, String>,
        now: Instant,
    ) -> Result<()> {
        self.stop_checked = false;
        let config = flight.session.config();
        if let Purpose::Evaluate { .. } = flight.purpose {
            // Evaluated or not, this model's evaluation is over: a failed
            // evaluation round is not retried, and training goes on.
            self.evaluated_through = flight.training_round;
        }
        let mut record = RoundRecord {
            round_id: config.round,
            training_round: flight.training_round,
            kind: RoundKind::of(&flight.purpose),
            outcome: Outcome::Aborted,
            detail: None,
            participants: config.participants.clone(),
            included: Vec::new(),
            degree: config.degree,
            threshold: config.threshold,
            ring_bits: config.ring.bits(),
            bytes_in: flight.bytes_in,
            bytes_out: flight.bytes_out,
            udp_bytes_in: 0,
            udp_bytes_out: 0,
            phase_ms: flight.phase_ms,
            total_ms: millis(now.saturating_duration_since(flight.started)),
            epsilon: None,
            evaluation: None,
            statistics: None,
        };
        let result = match outcome {
            Ok(r) => r,
            Err(e) => {
                warn!(round = config.round, "round aborted, nothing released: {e}");
                record.detail = Some(e);
                self.failed_rounds = self.failed_rounds.saturating_add(1);
                self.actions.push_back(Action::Ended(Box::new(record)));
                return Ok(());
            }
        };
        record.included.clone_from(&result.included);
        if self.ledger.is_some() && result.included.len() < self.plan.min_clients {
            let why = format!(
                "{} contributions, fewer than the {} the noise is sized for",
                result.included.len(),
                self.plan.min_clients
            );
            self.discard(record, why);
            return Ok(());
        }
        let release = self.plan.release_plan_for(&flight.purpose);
        // A summary round's sum, read back before anything is recorded: a
        // statistics sum that counts no rows is discarded, like a short
        // sum, with nothing in the ledger.
        let summary = match &flight.purpose {
            Purpose::Train => None,
            _ => Some(veil_dp::contribution::mean_update(
                &result.sum,
                release.scale,
                config.ring.bits(),
                1,
            )?),
        };
        let mut statistics = None;
        if let (Purpose::Statistics { row_cap, bounds }, Some(sum)) = (&flight.purpose, &summary) {
            let sums = FeatureSums::from_sum(sum, *row_cap, bounds)?;
            match sums.standardization(bounds) {
                Some((mean, std)) => {
                    statistics = Some(StatisticsRecord {
                        rows: sums.rows,
                        mean,
                        std,
                    });
                }
                None => {
                    // Nothing to standardise with: the round is tried again.
                    self.discard(record, "the statistics sums count no rows".into());
                    return Ok(());
                }
            }
        }
        // 1. The ledger line, to be synced before anything is released.
        let mut ledger_line = None;
        if let (Some(ledger), Some(spend)) = (
            self.ledger.as_mut(),
            release.spend(config.round, result.included.len() as u64),
        ) {
            let recorded = ledger.record_round(&spend)?;
            record.epsilon = Some(recorded.epsilon);
            ledger_line = Some(recorded.line);
            // The state that follows the line records the ledger's new tail.
            self.counters.ledger_lines = Some(ledger.summary().rounds);
            self.counters.ledger_tail = Some(recorded.hash);
        }
        if let Some(found) = statistics {
            info!(
                round = config.round,
                included = result.included.len(),
                rows = found.rows,
                "statistics released: every site standardises with them from now on"
            );
            let standardization = (found.mean.clone(), found.std.clone());
            if let Some(t) = self.plan.training.as_mut() {
                t.standardization = Some(standardization.clone());
            }
            record.statistics = Some(found);
            record.outcome = Outcome::Released;
            self.actions.push_back(Action::Release(Box::new(Release {
                ledger_line,
                model: None,
                sum: None,
                standardization: Some(standardization),
                counters: self.counters,
                record,
            })));
            return Ok(());
        }
        if let (Purpose::Evaluate { row_cap }, Some(sum)) = (&flight.purpose, &summary) {
            let classes = self.plan.training.as_ref().map_or(0, |t| t.classes.len());
            let counts = EvaluationCounts::from_sum(sum, *row_cap, classes)?;
            // A regression's label deviation turns its mean squared error
            // back into the label's units.
            let label_std = self.plan.training.as_ref().and_then(|t| {
                let (_, std) = t.standardization.as_ref()?;
                t.is_regression()
                    .then(|| std.get(t.features.len()).copied())
                    .flatten()
            });
            let found = EvaluationRecord {
                examples: counts.examples,
                accuracy: counts.accuracy(),
                loss: counts.mean_loss(),
                auc: counts.auc(),
                r2: counts.r2(),
                mse: counts
                    .labels
                    .and(counts.mean_loss())
                    .map(|m| m * f64::from(label_std.unwrap_or(1.0)).powi(2)),
                count_noise_std: self.plan.privacy.map(|p| {
                    p.noise_multiplier
                        * veil_secagg::messages::EVALUATION_CLIP_NORM
                        * f64::from(*row_cap)
                }),
            };
            info!(
                round = config.round,
                training_round = flight.training_round,
                included = result.included.len(),
                examples = found.examples,
                accuracy = found.accuracy,
                loss = found.loss,
                auc = found.auc,
                r2 = found.r2,
                mse = found.mse,
                count_noise_std = found.count_noise_std,
                "evaluation released"
            );
            record.evaluation = Some(found);
            record.outcome = Outcome::Released;
            self.actions.push_back(Action::Release(Box::new(Release {
                ledger_line,
                model: None,
                sum: None,
                standardization: None,
                counters: self.counters,
                record,
            })));
            return Ok(());
        }
        let mean = veil_dp::contribution::mean_update(
            &result.sum,
            self.plan.scale,
            config.ring.bits(),
            result.included.len(),
        )?;
        // 2. The model.
        let mut next = self.model.clone();
        self.server_model
            .apply(&mut next, &mean)
            .map_err(Error::Model)?;
        self.model.clone_from(&next);
        // 3. The counters: the round is released.
        self.counters.released_rounds = flight.training_round;
        record.outcome = Outcome::Released;
        self.actions.push_back(Action::Release(Box::new(Release {
            ledger_line,
            model: Some(next),
            sum: self.plan.keep_sums.then_some(result.sum),
            standardization: None,
            counters: self.counters,
            record,
        })));
        Ok(())
    }
}
