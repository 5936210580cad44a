//! An in-memory simulator of whole rounds (feature `test-util`).
//!
//! `n` clients and a server exchange real encoded messages through queues,
//! under a virtual clock and a seeded RNG. Clients can be scripted to crash
//! at any phase, and a hook sees every message in flight and may drop,
//! duplicate, corrupt or reorder it. Rounds are exactly repeatable.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "a test harness: misuse is a bug in the test"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use veil_crypto::ParticipantId;
use veil_crypto::prg::RingBits;
use veil_crypto::sign::IdentitySigningKey;
use zeroize::Zeroizing;

use crate::messages::ServerMessage;
use crate::{
    ClientSession, Error, Phase, Roster, RoundConfig, RoundResult, ServerEvent, ServerSession,
    SiteFloor,
};

/// The shape of a simulated round.
#[derive(Debug, Clone, Copy)]
pub struct SimParams {
    /// Number of clients.
    pub n: usize,
    /// Neighbour degree (`n - 1` for classic SecAgg).
    pub k: u32,
    /// Threshold.
    pub t: u32,
    /// Dimension.
    pub d: u32,
    /// Ring width.
    pub bits: u32,
    /// Seed of everything random.
    pub seed: u64,
    /// Whether ids are sparse random values rather than `0..n`.
    pub sparse_ids: bool,
    /// The colluders the round withstands (`c`, SPEC.md §9.1).
    pub max_corrupt: u32,
}

/// A message in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `true` from a client to the server.
    pub to_server: bool,
    /// The client at the other end.
    pub client: ParticipantId,
    /// The encoded message.
    pub bytes: Vec<u8>,
    /// How long the network holds it (virtual time); zero by default.
    pub delay: Duration,
}

impl Delivery {
    /// A message delivered without delay.
    #[must_use]
    pub fn new(to_server: bool, client: ParticipantId, bytes: Vec<u8>) -> Self {
        Self {
            to_server,
            client,
            bytes,
            delay: Duration::ZERO,
        }
    }
}

const OP_MESSAGE: u8 = 0;
const OP_TIMEOUT: u8 = 1;

fn push_op(script: &mut Vec<u8>, op: u8, index: u8, bytes: &[u8]) {
    script.push(op);
    script.push(index);
    script.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    script.extend_from_slice(bytes);
}

/// `(op, index, message, rest)`; `None` at the end or on a malformed op.
fn next_op(script: &[u8]) -> Option<(u8, u8, &[u8], &[u8])> {
    let (&op, rest) = script.split_first()?;
    match op % 3 {
        OP_MESSAGE => {
            let (&index, rest) = rest.split_first()?;
            let (len, rest) = rest.split_first_chunk::<2>()?;
            let len = usize::from(u16::from_be_bytes(*len));
            (rest.len() >= len).then(|| (OP_MESSAGE, index, &rest[..len], &rest[len..]))
        }
        OP_TIMEOUT => Some((OP_TIMEOUT, 0, &[][..], rest)),
        _ => {
            let (&index, rest) = rest.split_first()?;
            Some((2, index, &[][..], rest))
        }
    }
}

/// The protocol phase whose message `bytes` is, from its type tag.
#[must_use]
pub fn phase_of(bytes: &[u8]) -> Option<Phase> {
    crate::messages::peek_header(bytes)?.0.phase()
}

type Hook = Box<dyn FnMut(Delivery, &mut ChaCha20Rng) -> Vec<Delivery>>;

/// A simulated round.
pub struct Simulation {
    /// The round config.
    pub config: RoundConfig,
    /// The roster.
    pub roster: Roster,
    /// Every client's input.
    pub inputs: BTreeMap<ParticipantId, Vec<u64>>,
    /// A second copy, moved into each client's session when it starts, so
    /// that the timed client work does not include copying the input.
    session_inputs: BTreeMap<ParticipantId, Vec<u64>>,
    identities: BTreeMap<ParticipantId, IdentitySigningKey>,
    server: ServerSession,
    clients: BTreeMap<ParticipantId, ClientSession>,
    crash_at: BTreeMap<ParticipantId, Phase>,
    leave_after: BTreeMap<ParticipantId, Phase>,
    crashed: BTreeSet<ParticipantId>,
    hook: Option<Hook>,
    /// The site floor every simulated client holds (none by default: the
    /// test chose the config).
    floor: SiteFloor,
    now: Instant,
    rng: ChaCha20Rng,
    in_flight: VecDeque<Delivery>,
    /// Delayed messages and when they arrive.
    parked: Vec<(Instant, Delivery)>,
    client_rejections: Vec<(ParticipantId, Error)>,
    server_rejections: Vec<(ParticipantId, Error)>,
    costs: Costs,
}

/// Where a simulated round spent its time and bytes: wall time inside the
/// sessions' calls (the simulator's own queueing is not counted).
#[derive(Debug, Clone, Default)]
pub struct Costs {
    /// Time inside all client sessions together, creation included.
    pub client_time: Duration,
    /// Time inside the server session, creation included.
    pub server_time: Duration,
    /// Time inside each client session, by the phase of the message it was
    /// handling (the critical path of a round whose clients run at once is
    /// the server's time plus, per phase, the slowest client's).
    pub client_time_by_phase: BTreeMap<(Phase, ParticipantId), Duration>,
    /// Bytes each client sent.
    pub sent_by: BTreeMap<ParticipantId, usize>,
    /// Bytes each client received.
    pub received_by: BTreeMap<ParticipantId, usize>,
}

impl Costs {
    /// The round's latency if every client ran on its own machine and the
    /// network were free: the server's time plus, for each phase, the
    /// slowest client's time in it.
    #[must_use]
    pub fn critical_path(&self) -> Duration {
        let mut slowest: BTreeMap<Phase, Duration> = BTreeMap::new();
        for (&(phase, _), &t) in &self.client_time_by_phase {
            let e = slowest.entry(phase).or_default();
            *e = (*e).max(t);
        }
        self.server_time + slowest.values().sum::<Duration>()
    }
}

/// How a simulated round ended.
#[derive(Debug)]
pub struct Outcome {
    /// The released result, if the round completed.
    pub result: Option<RoundResult>,
    /// The server's abort reason, if it failed.
    pub server_error: Option<Error>,
    /// Every server event, in order.
    pub server_events: Vec<ServerEvent>,
    /// Each client's final error, if it failed.
    pub client_errors: BTreeMap<ParticipantId, Error>,
    /// Clients that completed their part.
    pub completed: BTreeSet<ParticipantId>,
    /// Virtual time the round took.
    pub elapsed: Duration,
    /// Every error a client's `handle_message` returned, in order, including
    /// refusals after it completed.
    pub client_rejections: Vec<(ParticipantId, Error)>,
    /// Every error the server's `handle_message` returned, by sender.
    pub server_rejections: Vec<(ParticipantId, Error)>,
    /// Time and bytes.
    pub costs: Costs,
}

impl Outcome {
    /// The participants the server dropped, with their reasons.
    #[must_use]
    pub fn dropped(&self) -> BTreeMap<ParticipantId, Option<Error>> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::PeerDropped {
                    participant,
                    reason,
                    ..
                } => Some((*participant, reason.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Simulation {
    /// A round with fresh identities, random inputs and a random graph seed.
    ///
    /// # Panics
    /// If the parameters make an invalid config (see [`Simulation::try_new`]).
    #[must_use]
    pub fn new(p: SimParams) -> Self {
        Self::try_new(p).expect("valid simulation parameters")
    }

    /// As [`Simulation::new`], for parameters from outside the program.
    ///
    /// # Errors
    /// If the parameters make an invalid ring or config (too many clients
    /// for 32-bit ids included).
    pub fn try_new(p: SimParams) -> Result<Self, Error> {
        let n = u32::try_from(p.n)
            .ok()
            .filter(|&n| n < u32::MAX)
            .ok_or(Error::InvalidConfig("too many clients for 32-bit ids"))?;
        let mut rng = ChaCha20Rng::seed_from_u64(p.seed);
        let participants: Vec<ParticipantId> = if p.sparse_ids {
            let mut set = BTreeSet::new();
            while set.len() < p.n {
                set.insert(rng.random_range(0..u32::MAX - 1));
            }
            set.into_iter().collect()
        } else {
            (0..n).collect()
        };
        let ring =
            RingBits::new(p.bits).map_err(|_| Error::InvalidConfig("ring width out of range"))?;
        let mut graph_seed = [0_u8; 32];
        rng.fill(&mut graph_seed);
        let config = RoundConfig::new(
            rng.random_range(0..u64::MAX),
            participants.clone(),
            p.d,
            ring,
            p.t,
            p.k,
            p.max_corrupt,
            1000,
            graph_seed,
        )?;
        let mut roster = Roster::new();
        let mut identities = BTreeMap::new();
        let mut inputs = BTreeMap::new();
        for &id in &participants {
            let key = IdentitySigningKey::generate(&mut rng);
            roster.insert(id, key.verifying_key());
            identities.insert(id, key);
            let input = (0..p.d)
                .map(|_| rng.random::<u64>() & ring.mask())
                .collect();
            inputs.insert(id, input);
        }
        let now = Instant::now();
        let started = Instant::now();
        let server = ServerSession::new(config.clone(), &roster, now)?;
        let server_time = started.elapsed();
        Ok(Self {
            config,
            roster,
            session_inputs: inputs.clone(),
            inputs,
            identities,
            server,
            clients: BTreeMap::new(),
            crash_at: BTreeMap::new(),
            leave_after: BTreeMap::new(),
            crashed: BTreeSet::new(),
            hook: None,
            floor: SiteFloor::none(),
            now,
            rng,
            in_flight: VecDeque::new(),
            parked: Vec::new(),
            client_rejections: Vec::new(),
            server_rejections: Vec::new(),
            costs: Costs {
                server_time,
                ..Costs::default()
            },
        })
    }

    /// Lets the server's final unmasking use up to `threads` threads
    /// ([`ServerSession::set_unmask_threads`]); the default is 1.
    pub fn set_server_threads(&mut self, threads: usize) {
        self.server.set_unmask_threads(threads);
    }

    /// Replaces the clients' inputs, in participant order (each element
    /// below `2^b`, `d` of them).
    pub fn set_inputs(&mut self, inputs: Vec<Vec<u64>>) {
        for (id, input) in self.config.participants.clone().into_iter().zip(inputs) {
            self.session_inputs.insert(id, input.clone());
            self.inputs.insert(id, input);
        }
    }

    /// Client `id` crashes instead of sending its message of `phase` (and
    /// sends nothing after).
    pub fn crash(&mut self, id: ParticipantId, phase: Phase) {
        self.crash_at.insert(id, phase);
    }

    /// Client `id` sends its message of `phase`, then leaves: the server
    /// is told of the disconnect as soon as that message is delivered (as a
    /// transport tells it when a connection closes), and the client takes no
    /// further part.
    pub fn leave(&mut self, id: ParticipantId, phase: Phase) {
        self.leave_after.insert(id, phase);
    }

    /// Gives every client `floor` as its site floor.
    pub fn set_floor(&mut self, floor: SiteFloor) {
        self.floor = floor;
    }

    /// Every message in flight passes through `hook`, which returns what is
    /// delivered instead (nothing, the message, copies, altered bytes; the
    /// order of the returned list is the delivery order).
    pub fn set_hook(
        &mut self,
        hook: impl FnMut(Delivery, &mut ChaCha20Rng) -> Vec<Delivery> + 'static,
    ) {
        self.hook = Some(Box::new(hook));
    }

    /// Runs an honest round and returns it as a script for
    /// [`Simulation::replay_to_server`] (every message the server received,
    /// in order) and for [`Simulation::replay_to_client`] (every message
    /// `client` received). Used to seed the fuzz corpus.
    ///
    /// # Panics
    /// If the honest round does not complete.
    #[must_use]
    pub fn record_scripts(mut self, client: ParticipantId) -> (Vec<u8>, Vec<u8>) {
        let ids = self.config.participants.clone();
        let log = std::rc::Rc::new(std::cell::RefCell::new((Vec::new(), Vec::new())));
        let sink = log.clone();
        self.set_hook(move |d, _| {
            let mut log = sink.borrow_mut();
            if d.to_server {
                let index = ids.iter().position(|id| *id == d.client).unwrap() as u8;
                push_op(&mut log.0, OP_MESSAGE, index, &d.bytes);
            } else if d.client == client {
                push_op(&mut log.1, OP_MESSAGE, 0, &d.bytes);
            }
            vec![d]
        });
        let outcome = self.run();
        assert!(outcome.result.is_some(), "the recorded round completes");
        let log = log.borrow();
        (log.0.clone(), log.1.clone())
    }

    /// Feeds a script of operations to a fresh server of this round, in
    /// place of the clients: `0, sender index, u16 length, message` delivers
    /// a message; `1` lets the phase deadline pass; `2, sender index`
    /// disconnects a participant. Malformed operations end the script.
    #[must_use]
    pub fn replay_to_server(mut self, script: &[u8]) -> Outcome {
        let ids = self.config.participants.clone();
        let mut rest = script;
        while let Some((op, index, bytes, tail)) = next_op(rest) {
            rest = tail;
            let id = ids[usize::from(index) % ids.len()];
            match op {
                OP_MESSAGE => self.deliver(Delivery::new(true, id, bytes.to_vec())),
                OP_TIMEOUT => {
                    self.now += self.config.phase_timeout();
                    self.server.handle_timeout(self.now, &mut self.rng);
                }
                _ => self.server.handle_disconnect(id, self.now, &mut self.rng),
            }
        }
        self.clients.clear();
        self.run()
    }

    /// Feeds a script (as for [`Simulation::replay_to_server`]; the sender
    /// index is ignored) of server messages to a fresh session of the
    /// round's first participant. Returns every error it returned.
    ///
    /// # Panics
    /// If a failed session does not return the same error again, or a
    /// session that is not done refuses a message without failing.
    #[must_use]
    pub fn replay_to_client(mut self, script: &[u8]) -> Vec<Error> {
        let me = self.config.participants[0];
        let mut session = ClientSession::new(
            self.config.clone(),
            me,
            self.identities[&me].clone(),
            &self.roster,
            &self.floor,
            Zeroizing::new(self.inputs[&me].clone()),
            self.now,
            &mut self.rng,
        )
        .unwrap();
        let mut errors = Vec::new();
        let mut rest = script;
        while let Some((op, _, bytes, tail)) = next_op(rest) {
            rest = tail;
            let before = session.phase();
            match op {
                OP_MESSAGE => {
                    if let Err(e) = session.handle_message(bytes, self.now, &mut self.rng) {
                        // Failure is sticky: the same error from every later call.
                        if session.phase() == Phase::Failed {
                            assert_eq!(
                                session.handle_message(bytes, self.now, &mut self.rng).err(),
                                Some(e.clone())
                            );
                        } else {
                            assert_eq!(
                                before,
                                Phase::Done,
                                "only a completed session refuses without failing"
                            );
                        }
                        errors.push(e);
                    }
                }
                _ => {
                    self.now += self.config.phase_timeout() * 5;
                    session.handle_timeout(self.now);
                }
            }
            while session.poll_transmit().is_some() {}
        }
        errors
    }

    /// The exact sum modulo `2^b` of the inputs of `included`.
    #[must_use]
    pub fn expected_sum(&self, included: &[ParticipantId]) -> Vec<u64> {
        let ring = self.config.ring;
        let mut sum = vec![0_u64; self.config.d()];
        for id in included {
            for (s, v) in sum.iter_mut().zip(&self.inputs[id]) {
                *s = ring.add(*s, *v);
            }
        }
        sum
    }

    fn collect(&mut self) {
        let mut out = Vec::new();
        while let Some((to, bytes)) = self.server.poll_transmit() {
            out.push(Delivery::new(false, to, bytes));
        }
        for (&id, client) in &mut self.clients {
            while let Some(bytes) = client.poll_transmit() {
                out.push(Delivery::new(true, id, bytes));
            }
        }
        for d in out {
            if d.to_server {
                let crash = self.crash_at.get(&d.client).copied();
                if self.crashed.contains(&d.client)
                    || crash.is_some_and(|c| phase_of(&d.bytes).is_some_and(|p| p >= c))
                {
                    self.crashed.insert(d.client);
                    continue;
                }
            }
            let delivered = match &mut self.hook {
                Some(hook) => hook(d, &mut self.rng),
                None => vec![d],
            };
            for d in delivered {
                if d.delay.is_zero() {
                    self.in_flight.push_back(d);
                } else {
                    self.parked.push((self.now + d.delay, d));
                }
            }
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let started = Instant::now();
        let to_server = d.to_server;
        let (client, phase) = (d.client, phase_of(&d.bytes));
        if to_server {
            *self.costs.sent_by.entry(d.client).or_default() += d.bytes.len();
        } else {
            *self.costs.received_by.entry(d.client).or_default() += d.bytes.len();
        }
        self.deliver_untimed(d);
        let spent = started.elapsed();
        if to_server {
            self.costs.server_time += spent;
        } else {
            self.costs.client_time += spent;
            if let Some(phase) = phase {
                *self
                    .costs
                    .client_time_by_phase
                    .entry((phase, client))
                    .or_default() += spent;
            }
        }
    }

    fn deliver_untimed(&mut self, d: Delivery) {
        if d.to_server {
            if let Err(e) = self
                .server
                .handle_message(d.client, &d.bytes, self.now, &mut self.rng)
            {
                self.server_rejections.push((d.client, e));
            }
            if let Some(&leave) = self.leave_after.get(&d.client)
                && phase_of(&d.bytes) == Some(leave)
            {
                self.crashed.insert(d.client);
                self.server
                    .handle_disconnect(d.client, self.now, &mut self.rng);
            }
            return;
        }
        if self.crashed.contains(&d.client) {
            return;
        }
        if let Some(client) = self.clients.get_mut(&d.client) {
            if let Err(e) = client.handle_message(&d.bytes, self.now, &mut self.rng) {
                self.client_rejections.push((d.client, e));
            }
            return;
        }
        // No session yet: this must be the round config.
        if let Ok((_, ServerMessage::RoundConfig(config))) = ServerMessage::decode(&d.bytes, None) {
            let identity = self.identities[&d.client].clone();
            let input = self
                .session_inputs
                .remove(&d.client)
                .unwrap_or_else(|| self.inputs[&d.client].clone());
            if let Ok(session) = ClientSession::new(
                config,
                d.client,
                identity,
                &self.roster,
                &self.floor,
                Zeroizing::new(input),
                self.now,
                &mut self.rng,
            ) {
                self.clients.insert(d.client, session);
            }
        }
    }

    /// Runs the round to its end.
    pub fn run(mut self) -> Outcome {
        let start = self.now;
        for _ in 0..1_000_000 {
            self.collect();
            if let Some(d) = self.in_flight.pop_front() {
                self.deliver(d);
                continue;
            }
            let next = self
                .clients
                .iter()
                .filter(|(id, _)| !self.crashed.contains(id))
                .filter_map(|(_, c)| c.poll_timeout())
                .chain(self.server.poll_timeout())
                .chain(self.parked.iter().map(|(at, _)| *at))
                .min();
            let Some(next) = next else { break };
            self.now = self.now.max(next);
            // Messages whose delay is over arrive before deadlines fire.
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = core::mem::take(&mut self.parked)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            self.parked = later;
            if !due.is_empty() {
                self.in_flight.extend(due.into_iter().map(|(_, d)| d));
                continue;
            }
            let started = Instant::now();
            self.server.handle_timeout(self.now, &mut self.rng);
            self.costs.server_time += started.elapsed();
            for client in self.clients.values_mut() {
                client.handle_timeout(self.now);
            }
        }
        let mut outcome = Outcome {
            result: None,
            server_error: None,
            server_events: Vec::new(),
            client_errors: BTreeMap::new(),
            completed: BTreeSet::new(),
            elapsed: self.now - start,
            client_rejections: core::mem::take(&mut self.client_rejections),
            server_rejections: core::mem::take(&mut self.server_rejections),
            costs: core::mem::take(&mut self.costs),
        };
        while let Some(e) = self.server.poll_event() {
            match &e {
                ServerEvent::RoundComplete(r) => outcome.result = Some(r.clone()),
                ServerEvent::Aborted(err) => outcome.server_error = Some(err.clone()),
                _ => {}
            }
            outcome.server_events.push(e);
        }
        for (&id, client) in &mut self.clients {
            while let Some(e) = client.poll_event() {
                match e {
                    crate::ClientEvent::Completed => {
                        outcome.completed.insert(id);
                    }
                    crate::ClientEvent::Aborted(err) => {
                        outcome.client_errors.insert(id, err);
                    }
                    _ => {}
                }
            }
        }
        outcome
    }
}
