//! The in-memory transport: the same rounds as the QUIC server (cohort
//! sampling, config, task, the sessions, the release order, the ledger and
//! the state directory), with every client in this process and messages
//! handed over in memory. Deadlines are virtual: when no message is in
//! flight the clock jumps to the next one, so a client that sits a round out
//! costs nothing. For fast experiments; it exercises no network code.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, warn};
use veil_crypto::ParticipantId;
use veil_crypto::sign::IdentitySigningKey;
use veil_secagg::{ClientSession, RoundResult, ServerEvent, SiteFloor};

use super::{Coordinator, Flight, RoundPlan, ServerModel, ServerSummary};
use crate::client::{UpdateSource, client_input};
use crate::deployment::RosterFile;
use crate::error::{Error, Result};

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
    mut clients: Vec<MemoryClient>,
) -> Result<ServerSummary> {
    // No connections: the channel the network side would feed stays empty.
    let (_tx, rx) = mpsc::channel(1);
    let mut c = Coordinator::open(plan, roster, state_dir, model, initial_model, rx)?;
    let ids: Vec<ParticipantId> = clients.iter().map(|m| m.id).collect();
    if ids.len() < c.plan.min_clients {
        return Err(Error::Config(format!(
            "{} clients cannot make a cohort of min_clients = {}",
            ids.len(),
            c.plan.min_clients
        )));
    }
    let mut misses = 0_u32;
    let reason = loop {
        if let Some(stop) = c.stop_reason()? {
            break stop;
        }
        let flight = match c.sample_cohort(ids.clone()) {
            Some(cohort) => c.begin_round(cohort)?,
            None => None,
        };
        let Some(mut flight) = flight else {
            misses = misses.saturating_add(1);
            if misses > 10_000 {
                return Err(Error::Config(
                    "no usable cohort in 10000 draws: check sampling_rate and min_clients".into(),
                ));
            }
            continue;
        };
        misses = 0;
        let outcome = c.drive_in_memory(&mut flight, &mut clients);
        c.finish(flight, outcome)?;
    };
    Ok(ServerSummary {
        reason,
        released_rounds: c.counters.released_rounds,
        failed_rounds: c.failed_rounds,
    })
}

impl Coordinator {
    fn drive_in_memory(
        &mut self,
        flight: &mut Flight,
        clients: &mut [MemoryClient],
    ) -> core::result::Result<RoundResult, String> {
        let config = flight.session.config().clone();
        let mut now = Instant::now();
        let mut sessions = BTreeMap::new();
        for client in clients.iter_mut().filter(|m| config.contains(m.id)) {
            let started = client_input(
                &flight.task,
                config.ring.bits(),
                client.source.as_mut(),
                &mut self.rng,
            )
            .map_err(|e| e.to_string())
            .and_then(|contribution| {
                ClientSession::new(
                    config.clone(),
                    client.id,
                    client.identity.clone(),
                    &self.roster,
                    // The in-memory clients are the coordinator's own
                    // simulation of the sites: their floor is the config
                    // it chose.
                    &SiteFloor::none(),
                    contribution.input,
                    now,
                    &mut self.rng,
                )
                .map_err(|e| e.to_string())
            });
            match started {
                Ok(session) => {
                    sessions.insert(client.id, session);
                }
                Err(e) => warn!(participant = client.id, "round skipped: {e}"),
            }
        }
        // The server's config message is implicit here: each client
        // session was built from the config itself.
        let mut to_clients: VecDeque<(ParticipantId, Vec<u8>)> = VecDeque::new();
        while flight.session.poll_transmit().is_some() {}
        loop {
            let mut moved = false;
            for (id, session) in &mut sessions {
                while let Some(bytes) = session.poll_transmit() {
                    moved = true;
                    flight.bytes_in = flight.bytes_in.saturating_add(bytes.len() as u64);
                    if let Err(e) = flight
                        .session
                        .handle_message(*id, &bytes, now, &mut self.rng)
                    {
                        debug!(participant = id, "message refused: {e}");
                    }
                }
            }
            while let Some(out) = flight.session.poll_transmit() {
                to_clients.push_back(out);
            }
            while let Some((id, bytes)) = to_clients.pop_front() {
                moved = true;
                flight.bytes_out = flight.bytes_out.saturating_add(bytes.len() as u64);
                if let Some(session) = sessions.get_mut(&id) {
                    let _ = session.handle_message(&bytes, now, &mut self.rng);
                }
            }
            while let Some(event) = flight.session.poll_event() {
                match event {
                    ServerEvent::PhaseCompleted { phase, .. } => {
                        let ms = super::millis(flight.phase_started.elapsed());
                        flight.phase_started = Instant::now();
                        flight.phase_ms.push((format!("{phase:?}"), ms));
                    }
                    ServerEvent::PeerDropped {
                        participant, phase, ..
                    } => debug!(participant, ?phase, "participant dropped"),
                    ServerEvent::RoundComplete(result) => return Ok(result),
                    ServerEvent::Aborted(e) => return Err(e.to_string()),
                    _ => {}
                }
            }
            if !moved {
                // Nothing in flight: the next deadline has come.
                match flight.session.poll_timeout() {
                    Some(deadline) => {
                        now = now.max(deadline);
                        flight.session.handle_timeout(now, &mut self.rng);
                    }
                    None => return Err("the round stalled".into()),
                }
            }
        }
    }
}
