//! The server's state machine (SPEC.md §11.2).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use rand_core::CryptoRng;
use veil_crypto::agreement::{AgreementPublicKey, AgreementSecret};
use veil_crypto::prg::{self, MaskSeed, MaskSign};
use veil_crypto::shamir::{Reconstructor, SecretScalar, Share, ShareCommitment, ShareIndex};
use veil_crypto::sign::{IdentityVerifyingKey, Signature, SignatureDomain};
use veil_crypto::{ParticipantId, RoundId};

use crate::config::{Roster, RoundConfig, SessionId};
use crate::error::{Error, Result, Violation};
use crate::graph::NeighbourGraph;
use crate::messages::{
    Abort, AdvertiseKeys, ClientMessage, ConsistencySignatures, MaskedInput, MessageType,
    NeighbourKeys, ServerMessage, ShareKeys, ShareKind, SharesForYou, SurvivorSet, UnmaskShares,
    survivor_set_message,
};
use crate::packing;
use crate::phase::Phase;

/// The released result of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundResult {
    /// The round.
    pub round: RoundId,
    /// The sum modulo `2^b` of the inputs of `included`.
    pub sum: Vec<u64>,
    /// The clients whose inputs are in the sum (the survivor set).
    pub included: Vec<ParticipantId>,
}

/// What a server session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A phase closed with this many participants going on.
    PhaseCompleted {
        /// The phase that closed.
        phase: Phase,
        /// How many participants take part in the next phase.
        remaining: usize,
    },
    /// A participant left the round: silent past the deadline,
    /// disconnected, or removed for the error given.
    PeerDropped {
        /// Who.
        participant: ParticipantId,
        /// In which phase.
        phase: Phase,
        /// Why, if it broke a rule; `None` if it went silent or disconnected.
        reason: Option<Error>,
    },
    /// The round completed; the sum may be released.
    RoundComplete(RoundResult),
    /// The round failed; nothing is released.
    Aborted(Error),
}

/// Phase 1: collecting advertised keys.
struct CollectKeys {
    received: BTreeMap<ParticipantId, AdvertiseKeys>,
    /// Every public key advertised so far, to refuse reuse.
    keys_seen: BTreeSet<AgreementPublicKey>,
}

/// Phase 2: collecting share envelopes.
struct CollectShares {
    u1: BTreeMap<ParticipantId, AdvertiseKeys>,
    received: BTreeMap<ParticipantId, ShareKeys>,
}

/// A dealer's commitments, by holder: (to the share of b, to the share of c).
type Commitments = BTreeMap<ParticipantId, (ShareCommitment, ShareCommitment)>;

/// What phase 3 onwards keep of the earlier phases.
struct Transcript {
    u1: BTreeMap<ParticipantId, AdvertiseKeys>,
    /// For each client of `U2` (the clients whose envelopes were forwarded),
    /// the senders whose envelopes it received.
    views: BTreeMap<ParticipantId, Vec<ParticipantId>>,
    /// Each dealer's commitments to the shares it dealt.
    commitments: BTreeMap<ParticipantId, Commitments>,
}

/// Phase 3: collecting masked inputs.
struct CollectMasked {
    transcript: Transcript,
    received: BTreeMap<ParticipantId, MaskedInput>,
}

/// What phase 4 onwards keep of phase 3.
struct Survivors {
    transcript: Transcript,
    /// `U3`, increasing.
    u3: Vec<ParticipantId>,
    /// Packed masked inputs of `U3`.
    masked: BTreeMap<ParticipantId, Vec<u8>>,
    /// For each client of `U3`: the peers it masked with.
    masked_with: BTreeMap<ParticipantId, Vec<ParticipantId>>,
}

/// Phase 4: collecting signatures over the survivor set.
struct CollectSignatures {
    survivors: Survivors,
    /// What each survivor signs: the session id and `U3` (built once, not
    /// once per signature).
    signed: Vec<u8>,
    received: BTreeMap<ParticipantId, Signature>,
}

/// Phase 5: collecting unmask shares.
struct CollectUnmask {
    survivors: Survivors,
    received: BTreeMap<ParticipantId, UnmaskShares>,
}

/// The session's phase: one variant per phase, holding exactly its data.
enum State {
    CollectKeys(CollectKeys),
    CollectShares(CollectShares),
    CollectMasked(CollectMasked),
    CollectSignatures(CollectSignatures),
    CollectUnmask(CollectUnmask),
    Done,
    Failed(Error),
}

/// Proof that a phase closed with at least `t` participants; only
/// [`ServerSession::threshold_met`] makes one, and every phase transition
/// requires it.
struct ThresholdMet(());

/// The server's side of one round.
pub struct ServerSession {
    config: RoundConfig,
    /// The session id every signature of the round is under.
    session: SessionId,
    graph: NeighbourGraph,
    identities: BTreeMap<ParticipantId, IdentityVerifyingKey>,
    state: State,
    /// Participants still in the round and not yet answered in this phase.
    waiting: BTreeSet<ParticipantId>,
    /// Participants dropped so far.
    dropped: BTreeSet<ParticipantId>,
    transmit: VecDeque<(ParticipantId, Vec<u8>)>,
    events: VecDeque<ServerEvent>,
    deadline: Option<Instant>,
    /// Threads the final unmasking may use.
    unmask_threads: usize,
}

impl core::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerSession")
            .field("round", &self.config.round)
            .field("phase", &self.phase())
            .field("waiting", &self.waiting.len())
            .field("dropped", &self.dropped.len())
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// Starts the round: queues the config for every participant and waits
    /// for their keys until `now + phase_timeout`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the config is invalid or the roster lacks
    /// a participant's identity key.
    pub fn new(config: RoundConfig, roster: &Roster, now: Instant) -> Result<Self> {
        config.validate()?;
        let mut identities = BTreeMap::new();
        for &id in &config.participants {
            let key = roster.get(id).ok_or(Error::InvalidConfig(
                "the roster lacks a participant's identity key",
            ))?;
            identities.insert(id, *key);
        }
        let message = ServerMessage::RoundConfig(config.clone()).encode(config.round);
        let transmit = config
            .participants
            .iter()
            .map(|id| (*id, message.clone()))
            .collect();
        let waiting = config.participants.iter().copied().collect();
        let deadline = now.checked_add(config.phase_timeout());
        Ok(Self {
            graph: config.graph(),
            session: crate::messages::session_id(&config),
            config,
            identities,
            state: State::CollectKeys(CollectKeys {
                received: BTreeMap::new(),
                keys_seen: BTreeSet::new(),
            }),
            waiting,
            dropped: BTreeSet::new(),
            transmit,
            events: VecDeque::new(),
            deadline,
            unmask_threads: 1,
        })
    }

    /// Lets the final unmasking (the PRG expansions that remove the masks
    /// from the sum) run on up to `threads` threads; 1, the default, keeps
    /// the whole session on the caller's thread. The result does not depend
    /// on it.
    pub fn set_unmask_threads(&mut self, threads: usize) {
        self.unmask_threads = threads.max(1);
    }

    /// The round.
    #[must_use]
    pub fn round(&self) -> RoundId {
        self.config.round
    }

    /// The round config.
    #[must_use]
    pub fn config(&self) -> &RoundConfig {
        &self.config
    }

    /// The phase the server is collecting.
    #[must_use]
    pub fn phase(&self) -> Phase {
        match self.state {
            State::CollectKeys(_) => Phase::AdvertiseKeys,
            State::CollectShares(_) => Phase::ShareKeys,
            State::CollectMasked(_) => Phase::MaskedInput,
            State::CollectSignatures(_) => Phase::ConsistencyCheck,
            State::CollectUnmask(_) => Phase::Unmask,
            State::Done => Phase::Done,
            State::Failed(_) => Phase::Failed,
        }
    }

    /// The participants the current phase still waits for.
    #[must_use]
    pub fn waiting_for(&self) -> Vec<ParticipantId> {
        self.waiting.iter().copied().collect()
    }

    /// The next message to send, with its recipient.
    pub fn poll_transmit(&mut self) -> Option<(ParticipantId, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`ServerSession::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Tells the session the time. Past the deadline the phase closes with
    /// whoever answered; the silent are dropped.
    pub fn handle_timeout<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        if self.deadline.is_some_and(|d| now >= d) && !self.is_terminal() {
            let phase = self.phase();
            for id in core::mem::take(&mut self.waiting) {
                self.drop_peer(id, phase, None);
            }
            self.close_phase(now, rng);
        }
    }

    /// A participant's connection closed: it is dropped.
    pub fn handle_disconnect<R: CryptoRng + ?Sized>(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        rng: &mut R,
    ) {
        if self.is_terminal()
            || self.dropped.contains(&participant)
            || !self.config.contains(participant)
        {
            return;
        }
        self.waiting.remove(&participant);
        let phase = self.phase();
        self.drop_peer(participant, phase, None);
        if self.waiting.is_empty() {
            self.close_phase(now, rng);
        }
    }

    /// The operator ends the round: nothing is released.
    pub fn abort(&mut self) {
        if !self.is_terminal() {
            self.fail(Error::OperatorAbort {
                round: self.config.round,
            });
        }
    }

    /// Handles one message from `from`.
    ///
    /// # Errors
    /// An error about the message; its sender is then dropped from the round
    /// (see [`ServerEvent::PeerDropped`]) and the round goes on without it.
    /// After the round ended, every message is refused.
    pub fn handle_message<R: CryptoRng + ?Sized>(
        &mut self,
        from: ParticipantId,
        bytes: &[u8],
        now: Instant,
        rng: &mut R,
    ) -> Result<()> {
        let round = self.config.round;
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        if !self.waiting.contains(&from) {
            if !self.config.contains(from) {
                return Err(self.forbidden(from, Violation::UnknownParticipant(from)));
            }
            let error = self.forbidden(from, Violation::NotExpected(from));
            // A participant still in the round that sends again (a duplicate,
            // or a message for a later phase) loses its place; one already
            // dropped, or a round that ended, is not affected.
            if !self.is_terminal() && !self.dropped.contains(&from) {
                self.forget(from);
                let phase = self.phase();
                self.drop_peer(from, phase, Some(error.clone()));
                if self.waiting.is_empty() {
                    self.close_phase(now, rng);
                }
            }
            return Err(error);
        }
        let phase = self.phase();
        let checked = ClientMessage::decode(bytes, &self.config).and_then(|(r, m)| {
            if r == round {
                Ok(m)
            } else {
                Err(Error::Forbidden {
                    round,
                    participant: Some(from),
                    violation: Violation::WrongRound {
                        expected: round,
                        got: r,
                    },
                })
            }
        });
        let result = checked.and_then(|m| self.accept(from, m));
        self.waiting.remove(&from);
        if let Err(e) = &result {
            self.drop_peer(from, phase, Some(e.clone()));
        }
        if self.waiting.is_empty() {
            self.close_phase(now, rng);
        }
        result
    }

    fn is_terminal(&self) -> bool {
        matches!(self.state, State::Done | State::Failed(_))
    }

    fn forbidden(&self, from: ParticipantId, violation: Violation) -> Error {
        Error::Forbidden {
            round: self.config.round,
            participant: Some(from),
            violation,
        }
    }

    /// Removes what `from` contributed to the phase being collected.
    fn forget(&mut self, from: ParticipantId) {
        self.waiting.remove(&from);
        match &mut self.state {
            State::CollectKeys(s) => {
                s.received.remove(&from);
            }
            State::CollectShares(s) => {
                s.received.remove(&from);
            }
            State::CollectMasked(s) => {
                s.received.remove(&from);
            }
            State::CollectSignatures(s) => {
                s.received.remove(&from);
            }
            State::CollectUnmask(s) => {
                s.received.remove(&from);
            }
            State::Done | State::Failed(_) => {}
        }
    }

    /// Removes `participant` from the round and tells it so (if it is still
    /// connected, it stops waiting).
    fn drop_peer(&mut self, participant: ParticipantId, phase: Phase, reason: Option<Error>) {
        if self.dropped.insert(participant) {
            let code = reason.as_ref().map_or(
                Error::TooFewSurvivors {
                    round: self.config.round,
                    phase,
                    survivors: 0,
                    needed: 0,
                }
                .abort_code(),
                Error::abort_code,
            );
            self.transmit.push_back((
                participant,
                ServerMessage::Abort(Abort { code }).encode(self.config.round),
            ));
            self.events.push_back(ServerEvent::PeerDropped {
                participant,
                phase,
                reason,
            });
        }
    }

    /// Checks and stores one expected participant's message.
    fn accept(&mut self, from: ParticipantId, message: ClientMessage) -> Result<()> {
        let round = self.config.round;
        let received_type = message.message_type();
        match (&mut self.state, message) {
            (State::CollectKeys(s), ClientMessage::AdvertiseKeys(keys)) => {
                let identity = self
                    .identities
                    .get(&from)
                    .ok_or(Error::Internal("every participant has an identity"))?;
                if !keys.verify(&self.session, from, identity) {
                    return Err(self.forbidden(from, Violation::BadKeySignature(from)));
                }
                let reused = keys.encryption_key == keys.mask_key
                    || s.keys_seen.contains(&keys.encryption_key)
                    || s.keys_seen.contains(&keys.mask_key);
                if reused {
                    return Err(self.forbidden(from, Violation::ReusedPublicKey(from)));
                }
                s.keys_seen.insert(keys.encryption_key);
                s.keys_seen.insert(keys.mask_key);
                s.received.insert(from, keys);
                Ok(())
            }
            (State::CollectShares(s), ClientMessage::ShareKeys(shares)) => {
                for (to, _) in &shares.entries {
                    if !self.graph.are_neighbours(from, *to) || !s.u1.contains_key(to) {
                        return Err(Error::Forbidden {
                            round,
                            participant: Some(from),
                            violation: Violation::NotANeighbour(*to),
                        });
                    }
                }
                // One commitment pair per holder: the dealer and each receiver.
                let mut holders: Vec<ParticipantId> =
                    shares.entries.iter().map(|(to, _)| *to).collect();
                holders.push(from);
                holders.sort_unstable();
                let committed: Vec<ParticipantId> =
                    shares.commitments.iter().map(|(h, _, _)| *h).collect();
                if holders != committed {
                    return Err(self.forbidden(from, Violation::BadCommitments(from)));
                }
                s.received.insert(from, shares);
                Ok(())
            }
            (State::CollectMasked(s), ClientMessage::MaskedInput(input)) => {
                let view = s
                    .transcript
                    .views
                    .get(&from)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if let Some(v) = input
                    .excluded
                    .iter()
                    .find(|v| view.binary_search(v).is_err())
                {
                    return Err(Error::Forbidden {
                        round,
                        participant: Some(from),
                        violation: Violation::BadExclusion(*v),
                    });
                }
                s.received.insert(from, input);
                Ok(())
            }
            (State::CollectSignatures(s), ClientMessage::ConsistencySignature(sig)) => {
                let identity = self
                    .identities
                    .get(&from)
                    .ok_or(Error::Internal("every participant has an identity"))?;
                if identity
                    .verify(
                        SignatureDomain::CONSISTENCY_CHECK,
                        &s.signed,
                        &sig.signature,
                    )
                    .is_err()
                {
                    return Err(Error::Forbidden {
                        round,
                        participant: Some(from),
                        violation: Violation::BadConsistencySignature(from),
                    });
                }
                s.received.insert(from, sig.signature);
                Ok(())
            }
            (State::CollectUnmask(s), ClientMessage::UnmaskShares(shares)) => {
                let my_index = ShareIndex::for_participant(from)?;
                // A client holds shares of itself and of the peers it masked with.
                let holds = |owner: ParticipantId| {
                    owner == from
                        || s.survivors
                            .masked_with
                            .get(&from)
                            .is_some_and(|peers| peers.binary_search(&owner).is_ok())
                };
                for e in &shares.entries {
                    if e.share.index() != my_index {
                        return Err(self.forbidden(from, Violation::WrongShareIndex(e.about)));
                    }
                    let survived = s.survivors.u3.binary_search(&e.about).is_ok();
                    let kind_ok = match e.kind {
                        ShareKind::SelfMask => survived,
                        ShareKind::MaskKey => !survived,
                    };
                    if !kind_ok || !holds(e.about) {
                        return Err(self.forbidden(from, Violation::WrongShareKind(e.about)));
                    }
                    let committed = s
                        .survivors
                        .transcript
                        .commitments
                        .get(&e.about)
                        .and_then(|by_holder| by_holder.get(&from))
                        .map(|(b, c)| match e.kind {
                            ShareKind::SelfMask => b,
                            ShareKind::MaskKey => c,
                        });
                    match committed {
                        Some(c) if c.opens_to(round, e.about, e.kind as u8, &e.share) => {}
                        Some(_) => {
                            return Err(
                                self.forbidden(from, Violation::ShareCommitmentMismatch(e.about))
                            );
                        }
                        None => {
                            return Err(self.forbidden(from, Violation::WrongShareKind(e.about)));
                        }
                    }
                }
                s.received.insert(from, shares);
                Ok(())
            }
            // A client that refuses the round leaves it, and says why.
            (_, ClientMessage::Decline(d)) => Err(Error::Declined {
                round,
                participant: from,
                reason: d.reason,
            }),
            (_, _) => Err(Error::UnexpectedMessage {
                round,
                participant: Some(from),
                phase: self.phase(),
                expected: self.expected(),
                received: received_type,
            }),
        }
    }

    fn expected(&self) -> MessageType {
        match self.state {
            State::CollectKeys(_) => MessageType::AdvertiseKeys,
            State::CollectShares(_) => MessageType::ShareKeys,
            State::CollectMasked(_) => MessageType::MaskedInput,
            State::CollectSignatures(_) => MessageType::ConsistencySignature,
            State::CollectUnmask(_) | State::Done | State::Failed(_) => MessageType::UnmaskShares,
        }
    }

    /// Checks that `count` participants go on; a proof if so.
    fn threshold_met(&self, phase: Phase, count: usize) -> Result<ThresholdMet> {
        let needed = self.config.t();
        if count < needed {
            return Err(Error::TooFewSurvivors {
                round: self.config.round,
                phase,
                survivors: count,
                needed,
            });
        }
        Ok(ThresholdMet(()))
    }

    /// Closes the current phase with whoever answered.
    fn close_phase<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        let phase = self.phase();
        let state = core::mem::replace(&mut self.state, State::Done);
        let next = match state {
            State::CollectKeys(s) => self.close_keys(s),
            State::CollectShares(s) => self.close_shares(s),
            State::CollectMasked(s) => self.close_masked(s),
            State::CollectSignatures(s) => self.close_signatures(s),
            State::CollectUnmask(s) => match self.unmask(s, rng) {
                Ok(result) => {
                    self.deadline = None;
                    self.waiting.clear();
                    self.events.push_back(ServerEvent::PhaseCompleted {
                        phase,
                        remaining: result.included.len(),
                    });
                    self.events.push_back(ServerEvent::RoundComplete(result));
                    return;
                }
                Err(e) => Err(e),
            },
            State::Done | State::Failed(_) => return,
        };
        match next {
            Ok(state) => {
                self.state = state;
                self.events.push_back(ServerEvent::PhaseCompleted {
                    phase,
                    remaining: self.waiting.len(),
                });
                self.deadline = now.checked_add(self.config.phase_timeout());
            }
            Err(e) => self.fail(e),
        }
    }

    /// Sends `message` to `to` and waits for its answer, unless `to` was
    /// dropped: one that answered the phase just closed and then
    /// disconnected is neither sent to nor waited for (its answer still
    /// counts; later phases treat it as dropped where it went silent).
    fn send(&mut self, to: ParticipantId, message: &ServerMessage) {
        if self.dropped.contains(&to) {
            return;
        }
        self.transmit
            .push_back((to, message.encode(self.config.round)));
        self.waiting.insert(to);
    }

    /// What `u`'s neighbours sent in this phase, in increasing id order.
    fn neighbours_entries<T: Copy>(
        &self,
        u: ParticipantId,
        received: &BTreeMap<ParticipantId, T>,
    ) -> Vec<(ParticipantId, T)> {
        self.graph
            .neighbours(u)
            .into_iter()
            .filter_map(|v| received.get(&v).map(|x| (v, *x)))
            .collect()
    }

    fn close_keys(&mut self, s: CollectKeys) -> Result<State> {
        let _proof = self.threshold_met(Phase::AdvertiseKeys, s.received.len())?;
        for &u in s.received.keys() {
            let entries = self.neighbours_entries(u, &s.received);
            self.send(u, &ServerMessage::NeighbourKeys(NeighbourKeys { entries }));
        }
        Ok(State::CollectShares(CollectShares {
            u1: s.received,
            received: BTreeMap::new(),
        }))
    }

    fn close_shares(&mut self, s: CollectShares) -> Result<State> {
        let _proof = self.threshold_met(Phase::ShareKeys, s.received.len())?;
        let mut inbox: BTreeMap<ParticipantId, Vec<(ParticipantId, Vec<u8>)>> = BTreeMap::new();
        for (&from, shares) in &s.received {
            for (to, sealed) in &shares.entries {
                // Only clients that sent their own envelopes go on.
                if s.received.contains_key(to) {
                    inbox.entry(*to).or_default().push((from, sealed.clone()));
                }
            }
        }
        let mut views = BTreeMap::new();
        for &u in s.received.keys() {
            let entries = inbox.remove(&u).unwrap_or_default();
            views.insert(u, entries.iter().map(|(v, _)| *v).collect());
            self.send(u, &ServerMessage::SharesForYou(SharesForYou { entries }));
        }
        let commitments = s
            .received
            .into_iter()
            .map(|(dealer, shares)| {
                let by_holder = shares
                    .commitments
                    .into_iter()
                    .map(|(holder, b, c)| (holder, (b, c)))
                    .collect();
                (dealer, by_holder)
            })
            .collect();
        Ok(State::CollectMasked(CollectMasked {
            transcript: Transcript {
                u1: s.u1,
                views,
                commitments,
            },
            received: BTreeMap::new(),
        }))
    }

    fn close_masked(&mut self, s: CollectMasked) -> Result<State> {
        // A client excluded by a peer is treated as dropped: its input is
        // not summed and its secrets are recovered as a dropped client's.
        let excluded: BTreeSet<ParticipantId> = s
            .received
            .values()
            .flat_map(|m| m.excluded.iter().copied())
            .collect();
        let mut masked = BTreeMap::new();
        let mut masked_with = BTreeMap::new();
        for (u, input) in s.received {
            if excluded.contains(&u) {
                self.drop_peer(u, Phase::MaskedInput, None);
                continue;
            }
            let view = s.transcript.views.get(&u).cloned().unwrap_or_default();
            let peers = view
                .into_iter()
                .filter(|v| !input.excluded.contains(v))
                .collect();
            masked_with.insert(u, peers);
            masked.insert(u, input.packed);
        }
        let u3: Vec<ParticipantId> = masked.keys().copied().collect();
        let _proof = self.threshold_met(Phase::MaskedInput, u3.len())?;
        let survivor_set = ServerMessage::SurvivorSet(SurvivorSet {
            survivors: u3.clone(),
        });
        for &u in &u3 {
            self.send(u, &survivor_set);
        }
        let signed = survivor_set_message(&self.session, &u3);
        Ok(State::CollectSignatures(CollectSignatures {
            signed,
            survivors: Survivors {
                transcript: s.transcript,
                u3,
                masked,
                masked_with,
            },
            received: BTreeMap::new(),
        }))
    }

    fn close_signatures(&mut self, s: CollectSignatures) -> Result<State> {
        let _proof = self.threshold_met(Phase::ConsistencyCheck, s.received.len())?;
        // Clients reveal only with a quorum's signatures (SPEC.md §9.3).
        let quorum = self.config.quorum();
        if s.received.len() < quorum {
            return Err(Error::TooFewSurvivors {
                round: self.config.round,
                phase: Phase::ConsistencyCheck,
                survivors: s.received.len(),
                needed: quorum,
            });
        }
        // A quorum's signatures, the first Q signers in id order, are all a
        // client needs (with its own, if it is not among them, it counts Q +
        // 1): one message for every signer, of Q entries rather than all.
        let message = ServerMessage::ConsistencySignatures(ConsistencySignatures {
            entries: s
                .received
                .iter()
                .take(quorum)
                .map(|(v, sig)| (*v, *sig))
                .collect(),
        });
        for &u in s.received.keys() {
            self.send(u, &message);
        }
        Ok(State::CollectUnmask(CollectUnmask {
            survivors: s.survivors,
            received: BTreeMap::new(),
        }))
    }

    /// Sums the survivors' masked inputs and removes every mask left in the
    /// sum (SPEC.md §11.3).
    fn unmask<R: CryptoRng + ?Sized>(
        &mut self,
        s: CollectUnmask,
        rng: &mut R,
    ) -> Result<RoundResult> {
        let _proof = self.threshold_met(Phase::Unmask, s.received.len())?;
        let round = self.config.round;
        let ring = self.config.ring;
        let survivors = &s.survivors;

        let mut sum = vec![0_u64; self.config.d()];
        for packed in survivors.masked.values() {
            packing::unpack_add(packed, ring, &mut sum)?;
        }

        // Secrets to reconstruct: b_u of every survivor, c_v of every client
        // that shared keys but is not a survivor and that a survivor masked with.
        let mut needed: Vec<(ParticipantId, ShareKind)> = survivors
            .u3
            .iter()
            .map(|u| (*u, ShareKind::SelfMask))
            .collect();
        let dropped: BTreeSet<ParticipantId> = survivors
            .masked_with
            .values()
            .flatten()
            .copied()
            .filter(|v| survivors.u3.binary_search(v).is_err())
            .collect();
        needed.extend(dropped.iter().map(|v| (*v, ShareKind::MaskKey)));

        // The revealed shares by owner and kind, holders in increasing order:
        // one pass over everything revealed.
        let mut revealed: BTreeMap<(ParticipantId, u8), (Vec<ParticipantId>, Vec<Share>)> =
            BTreeMap::new();
        for (holder, shares) in &s.received {
            for e in &shares.entries {
                let slot = revealed.entry((e.about, e.kind as u8)).or_default();
                slot.0.push(*holder);
                slot.1.push(e.share.clone());
            }
        }
        let mut reconstructors: BTreeMap<Vec<ParticipantId>, Reconstructor> = BTreeMap::new();
        let mut seeds: Vec<(MaskSeed, MaskSign)> = Vec::new();
        for (owner, kind) in needed {
            let (holders, shares) = revealed.remove(&(owner, kind as u8)).unwrap_or_default();
            if holders.len() < self.config.t() {
                return Err(Error::TooFewSurvivors {
                    round,
                    phase: Phase::Unmask,
                    survivors: holders.len(),
                    needed: self.config.t(),
                });
            }
            let reconstructor = match reconstructors.entry(holders) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let indices = v
                        .key()
                        .iter()
                        .map(|h| ShareIndex::for_participant(*h))
                        .collect::<core::result::Result<Vec<_>, _>>()?;
                    v.insert(Reconstructor::new(&indices, self.config.t(), rng)?)
                }
            };
            let secret = reconstructor.reconstruct(&shares).map_err(|e| match e {
                veil_crypto::Error::InconsistentShares { .. } => Error::Inconsistent {
                    round,
                    participant: owner,
                },
                other => Error::Crypto(other),
            })?;
            match kind {
                ShareKind::SelfMask => {
                    seeds.push((secret.self_mask_seed(round, owner), MaskSign::Subtract));
                }
                ShareKind::MaskKey => self.pairwise_seeds(survivors, owner, &secret, &mut seeds)?,
            }
        }
        let plan: Vec<(&MaskSeed, MaskSign)> = seeds.iter().map(|(s, sign)| (s, *sign)).collect();
        prg::apply_masks_parallel(&plan, ring, &mut sum, self.unmask_threads)?;
        Ok(RoundResult {
            round,
            sum,
            included: survivors.u3.clone(),
        })
    }

    /// The seeds that remove dropped client `v`'s pairwise masks from the
    /// survivors that masked with it.
    fn pairwise_seeds(
        &self,
        survivors: &Survivors,
        v: ParticipantId,
        c_v: &SecretScalar,
        seeds: &mut Vec<(MaskSeed, MaskSign)>,
    ) -> Result<()> {
        let round = self.config.round;
        let secret = AgreementSecret::from_scalar(c_v);
        for (&u, peers) in &survivors.masked_with {
            if peers.binary_search(&v).is_err() {
                continue;
            }
            let mask_key: AgreementPublicKey = survivors
                .transcript
                .u1
                .get(&u)
                .map(|k| k.mask_key)
                .ok_or(Error::Internal("a survivor advertised keys"))?;
            let seed = secret.agree(&mask_key)?.pairwise_mask_seed(round, v, u);
            // u added the mask if u < v and subtracted it otherwise; undo it.
            let sign = if u < v {
                MaskSign::Subtract
            } else {
                MaskSign::Add
            };
            seeds.push((seed, sign));
        }
        Ok(())
    }

    fn fail(&mut self, error: Error) {
        let code = error.abort_code();
        let abort = ServerMessage::Abort(Abort { code }).encode(self.config.round);
        self.transmit.clear();
        let active: Vec<ParticipantId> = self
            .config
            .participants
            .iter()
            .copied()
            .filter(|id| !self.dropped.contains(id))
            .collect();
        for id in active {
            self.transmit.push_back((id, abort.clone()));
        }
        self.waiting.clear();
        self.deadline = None;
        self.state = State::Failed(error.clone());
        self.events.push_back(ServerEvent::Aborted(error));
    }
}
