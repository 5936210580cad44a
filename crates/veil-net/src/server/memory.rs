//! The in-memory driver: the same coordinator as the QUIC server (cohort
//! sampling, config, task, the sessions, the release order, the ledger and
//! the state directory), with every client in this process and messages
//! handed over in memory. Each client receives the task and the round
//! config as a QUIC client does and builds its session from them.
//! Deadlines are virtual: when no message is in flight the clock jumps to
//! the next one, so a client that sits a round out costs nothing. For fast
//! experiments; it exercises no network code.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use tracing::{debug, warn};
use veil_crypto::ParticipantId;
use veil_crypto::sign::IdentitySigningKey;
use veil_round::{Action, Coordinator};
use veil_secagg::messages::{ClientMessage, Decline, DeclineReason, MessageType, ServerMessage};
use veil_secagg::{ClientSession, Roster, SiteFloor};

use super::{RoundPlan, ServerModel, ServerSummary, open_coordinator};
use crate::client::{ReceivedTask, UpdateSource, client_input};
use crate::deployment::RosterFile;
use crate::error::{ConfigError, Error, Result};

/// One client of an in-memory run.
pub struct MemoryClient {
    /// Its participant id (the roster's).
    pub id: ParticipantId,
    /// Its identity key.
    pub identity: IdentitySigningKey,
    /// Where its updates come from.
    pub source: Box<dyn UpdateSource>,
}

impl core::fmt::Debug for MemoryClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryClient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Draws in a row without a round after which an in-memory run gives up.
const MAX_MISSED_DRAWS: u64 = 10_000;

/// Runs `plan`'s rounds with `clients` in memory, releasing into
/// `state_dir` exactly as [`super::run_server`] does.
///
/// # Errors
/// As [`super::run_server`]: configuration, state-directory, ledger and
/// optimiser errors.
pub fn run_in_memory(
    plan: RoundPlan,
    roster: &RosterFile,
    state_dir: &Path,
    model: Box<dyn ServerModel>,
    initial_model: Option<&[f32]>,
    clients: Vec<MemoryClient>,
) -> Result<ServerSummary> {
    let min_clients = plan.min_clients;
    let (state, mut c) = open_coordinator(plan, roster, state_dir, model, initial_model)?;
    if clients.len() < min_clients {
        return Err(ConfigError::TooFewClients {
            clients: clients.len(),
            min_clients,
        }
        .into());
    }
    let mut net = Memory {
        roster: roster.protocol_roster(),
        sites: clients
            .into_iter()
            .map(|client| {
                (
                    client.id,
                    Site {
                        client,
                        task: None,
                        session: None,
                    },
                )
            })
            .collect(),
        to_clients: VecDeque::new(),
        rng: ChaCha20Rng::from_rng(&mut rand::rng()),
        now: Instant::now(),
    };
    let ids: Vec<ParticipantId> = net.sites.keys().copied().collect();
    for id in &ids {
        c.connected(*id, net.now)?;
    }
    // Clients the coordinator disconnected (for a violation) rejoin once
    // their round has ended.
    let mut left: Vec<ParticipantId> = Vec::new();
    loop {
        net.now = net.now.max(Instant::now());
        while let Some(action) = c.poll_action() {
            match action {
                Action::SaveCounters(counters) => state.save_counters(&counters)?,
                Action::RoundStarted { .. } => net.new_round(),
                Action::Send { to, message } => net.to_clients.push_back((to, message)),
                Action::Disconnect { participant, .. } => {
                    if let Some(site) = net.sites.get_mut(&participant) {
                        site.session = None;
                    }
                    left.push(participant);
                }
                Action::Ended(record) => {
                    state.append_round(&record)?;
                    for id in left.drain(..) {
                        c.connected(id, net.now)?;
                    }
                }
                Action::Release(release) => {
                    state.save_release(&release)?;
                    c.released(&release.record);
                    for id in left.drain(..) {
                        c.connected(id, net.now)?;
                    }
                }
                Action::Stop(reason) => return Ok(ServerSummary::of(reason, &c)),
                _ => {}
            }
        }
        if c.missed_draws() > MAX_MISSED_DRAWS {
            return Err(ConfigError::NoCohort(MAX_MISSED_DRAWS).into());
        }
        if net.exchange(&mut c)? {
            continue;
        }
        // Nothing in flight: the next deadline has come.
        match c.poll_timeout() {
            Some(deadline) => {
                net.now = net.now.max(deadline);
                c.handle_timeout(net.now)?;
            }
            None => return Err(ConfigError::Stalled.into()),
        }
    }
}

/// One in-memory client and its round state.
struct Site {
    client: MemoryClient,
    /// The round's task, once received.
    task: Option<ReceivedTask>,
    session: Option<ClientSession>,
}

struct Memory {
    roster: Roster,
    sites: BTreeMap<ParticipantId, Site>,
    to_clients: VecDeque<(ParticipantId, Arc<Vec<u8>>)>,
    rng: ChaCha20Rng,
    now: Instant,
}

impl Memory {
    fn new_round(&mut self) {
        for site in self.sites.values_mut() {
            site.task = None;
            site.session = None;
        }
    }

    /// Hands every queued message to its receiver; `true` if anything moved.
    fn exchange(&mut self, c: &mut Coordinator) -> Result<bool> {
        let mut moved = false;
        while let Some((to, message)) = self.to_clients.pop_front() {
            moved = true;
            if let Some(reply) = self.deliver(to, &message) {
                c.handle_message(to, &reply, self.now)?;
            }
        }
        for (id, site) in &mut self.sites {
            let Some(session) = site.session.as_mut() else {
                continue;
            };
            while let Some(bytes) = session.poll_transmit() {
                moved = true;
                c.handle_message(*id, &bytes, self.now)?;
            }
        }
        Ok(moved)
    }

    /// Gives `to` a message from the server; returns a `Decline` to send
    /// back if the client refuses the round.
    fn deliver(&mut self, to: ParticipantId, message: &[u8]) -> Option<Vec<u8>> {
        let site = self.sites.get_mut(&to)?;
        if MessageType::peek(message) == Some(MessageType::Task) {
            match ReceivedTask::decode(message, usize::MAX) {
                Ok(task) => site.task = Some(task),
                Err(e) => warn!(participant = to, "bad task: {e}"),
            }
            return None;
        }
        if let Some(session) = site.session.as_mut() {
            let _ = session.handle_message(message, self.now, &mut self.rng);
            return None;
        }
        let task = site.task.take()?;
        let started = start(site, &self.roster, &task, message, self.now, &mut self.rng);
        match started {
            Ok(session) => {
                site.session = Some(session);
                None
            }
            Err(e) => {
                warn!(participant = to, "round declined: {e}");
                Some(
                    ClientMessage::Decline(Decline {
                        reason: DeclineReason::Other,
                    })
                    .encode(task.round),
                )
            }
        }
    }
}

/// A client's session for the round whose task it holds and whose config
/// `message` is.
fn start(
    site: &mut Site,
    roster: &Roster,
    received: &ReceivedTask,
    message: &[u8],
    now: Instant,
    rng: &mut ChaCha20Rng,
) -> Result<ClientSession> {
    let config = match ServerMessage::decode(message, None)? {
        (_, ServerMessage::RoundConfig(config)) => config,
        (_, other) => {
            debug!(kind = ?other.message_type(), "message before the round config ignored");
            return Err(Error::Frame("no round config after the task"));
        }
    };
    if !received.matches(&config) {
        return Err(Error::Frame("the config does not match the task"));
    }
    let contribution = client_input(
        &received.task,
        config.ring.bits(),
        site.client.source.as_mut(),
        rng,
    )?;
    Ok(ClientSession::new(
        config,
        site.client.id,
        site.client.identity.clone(),
        roster,
        // The in-memory clients are the coordinator's own simulation of
        // the sites: their floor is the config it chose.
        &SiteFloor::none(),
        contribution.input,
        now,
        rng,
    )?)
}
