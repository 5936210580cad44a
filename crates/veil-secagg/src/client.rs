//! The client's state machine (SPEC.md §11.1).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand_core::CryptoRng;
use veil_crypto::agreement::{AgreementPublicKey, AgreementSecret, SharedSecret};
use veil_crypto::envelope::EnvelopeContext;
use veil_crypto::prg::{self, MaskSeed, MaskSign};
use veil_crypto::shamir::{self, SecretScalar, Share, ShareCommitment, ShareIndex};
use veil_crypto::sign::{
    self, IdentitySigningKey, IdentityVerifyingKey, Signature, SignatureDomain, Signed,
};
use veil_crypto::{ParticipantId, RoundId};
use zeroize::Zeroizing;

use crate::config::{Roster, RoundConfig, SessionId};
use crate::error::{Error, Result, Violation};
use crate::messages::{
    AdvertiseKeys, ClientMessage, ConsistencySignature, ConsistencySignatures, MaskedInput,
    MessageType, NeighbourKeys, ServerMessage, ShareKeys, ShareKind, SharesForYou, SharesPlaintext,
    SurvivorSet, UnmaskShare, UnmaskShares, survivor_set_message,
};
use crate::packing;
use crate::phase::Phase;
use crate::site_floor::SiteFloor;

/// How many phase timeouts a client waits for the server's next message.
const CLIENT_WAIT_PHASES: u32 = 4;

/// What a client session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The client finished a phase and sent its message.
    PhaseCompleted(Phase),
    /// The client revealed its unmask shares: its part of the round is done.
    Completed,
    /// The round failed for this client (sticky).
    Aborted(Error),
}

/// One client's secrets for the round. Every field zeroizes on drop.
struct Secrets {
    /// `b_u`, whose HKDF output seeds the self mask.
    self_mask: SecretScalar,
    /// `c_u`, the mask-agreement private key.
    mask_key: SecretScalar,
    /// The envelope-agreement private key.
    encryption: AgreementSecret,
    /// The input vector in `Z_2^b`.
    input: Zeroizing<Vec<u64>>,
}

/// Phase 1 sent; waiting for the neighbours' keys.
struct AwaitNeighbourKeys {
    secrets: Secrets,
    /// The two public keys this client advertised (encryption, mask), so
    /// that no neighbour may advertise them again.
    advertised: [AgreementPublicKey; 2],
}

/// Phase 2 sent; waiting for the envelopes sealed for this client.
struct AwaitShares {
    self_mask: SecretScalar,
    input: Zeroizing<Vec<u64>>,
    /// Neighbours that advertised valid keys, with the envelope secret
    /// agreed with each in phase 2 (kept, so opening their envelopes needs
    /// no second agreement; zeroized on drop).
    peers: BTreeMap<ParticipantId, SharedSecret>,
    /// Pairwise mask seeds with those peers.
    seeds: BTreeMap<ParticipantId, MaskSeed>,
    /// This client's own shares of its two secrets.
    own: HeldShares,
}

/// The shares this client holds of one peer's (or its own) secrets.
#[derive(Clone)]
struct HeldShares {
    self_mask: Share,
    mask_key: Share,
}

/// Phase 3 sent; waiting for the survivor set.
struct AwaitSurvivors {
    /// Shares held, by owner: the peers masked with, and this client.
    held: BTreeMap<ParticipantId, HeldShares>,
    /// Neighbours whose envelopes were rejected.
    excluded: Vec<ParticipantId>,
}

/// Phase 4 sent; waiting for the neighbours' signatures.
struct AwaitSignatures {
    held: BTreeMap<ParticipantId, HeldShares>,
    survivors: Vec<ParticipantId>,
}

/// The session's phase: one variant per phase, holding exactly its data.
enum State {
    AwaitNeighbourKeys(AwaitNeighbourKeys),
    AwaitShares(Box<AwaitShares>),
    AwaitSurvivors(AwaitSurvivors),
    AwaitSignatures(AwaitSignatures),
    Done,
    Failed(Error),
}

/// Proof that a quorum of the round (SPEC.md §9.3), this client included,
/// signed the survivor set it received under the session id. Only
/// [`ClientSession::verify_consistency`] makes one, and revealing shares
/// requires it.
struct SurvivorSetAgreed(());

/// A client's side of one round.
///
/// Created when the client has the round config and its input; it queues its
/// phase 1 message at once. Feed it the server's messages with
/// [`ClientSession::handle_message`], deadlines with
/// [`ClientSession::handle_timeout`], and send what
/// [`ClientSession::poll_transmit`] returns.
pub struct ClientSession {
    config: RoundConfig,
    /// The session id: the hash of the whole config, under which this
    /// client signs.
    session: SessionId,
    me: ParticipantId,
    my_index: ShareIndex,
    /// `N(me)`, increasing.
    neighbours: Vec<ParticipantId>,
    /// The deployment roster (shared, not copied): the neighbours sign
    /// their keys, and every survivor signs the survivor set.
    identities: Roster,
    identity: IdentitySigningKey,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    deadline: Option<Instant>,
}

impl core::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSession")
            .field("round", &self.config.round)
            .field("me", &self.me)
            .field("phase", &self.phase())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// Starts participant `me`'s side of the round in `config` with `input`
    /// (each element below `2^b`; secret, so it arrives zeroizing and is
    /// masked in place), and queues its advertised keys.
    ///
    /// `roster` is the deployment's, not the server's: neighbours'
    /// signatures are checked against it. `floor` is the site's own
    /// (SPEC.md §9.5): a round weaker than it is refused before anything is
    /// sent.
    ///
    /// # Errors
    /// [`Error::BelowFloor`] if the config is valid but weaker than `floor`
    /// (the caller tells the server with a `Decline` naming the reason);
    /// [`Error::InvalidConfig`] if the config is invalid, `me` is not a
    /// participant, or the roster lacks a participant's key, or holds
    /// another key for `me`; [`Error::InvalidInput`] if the input has the
    /// wrong length or an element `>= 2^b`.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is an independent input of the session: config, identity, roster, floor, input, time, randomness"
    )]
    pub fn new<R: CryptoRng + ?Sized>(
        config: RoundConfig,
        me: ParticipantId,
        identity: IdentitySigningKey,
        roster: &Roster,
        floor: &SiteFloor,
        input: Zeroizing<Vec<u64>>,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        floor.check(&config).map_err(Error::BelowFloor)?;
        if !config.contains(me) {
            return Err(Error::InvalidConfig(
                "this client is not a participant of the round",
            ));
        }
        if roster.get(me) != Some(&identity.verifying_key()) {
            return Err(Error::InvalidConfig(
                "the roster does not hold this client's identity key",
            ));
        }
        if input.len() != config.d() {
            return Err(Error::InvalidInput(
                "input length differs from the round's dimension",
            ));
        }
        let mask = config.ring.mask();
        if input.iter().any(|v| *v > mask) {
            return Err(Error::InvalidInput("input element not below 2^b"));
        }
        let neighbours = config.graph().neighbours(me);
        if !roster.covers(&config) {
            return Err(Error::InvalidConfig(
                "the roster lacks a participant's identity key",
            ));
        }
        let identities = roster.clone();
        let session = crate::messages::session_id(&config);
        let my_index = ShareIndex::for_participant(me)?;

        let secrets = Secrets {
            self_mask: SecretScalar::random(rng),
            mask_key: SecretScalar::random(rng),
            encryption: AgreementSecret::from_scalar(&SecretScalar::random(rng)),
            input,
        };
        let encryption_key = secrets.encryption.public_key();
        let mask_key = AgreementSecret::from_scalar(&secrets.mask_key).public_key();
        let signature = identity.sign(
            SignatureDomain::ADVERTISE_KEYS,
            &AdvertiseKeys::signed_message(&session, me, &encryption_key, &mask_key),
        );
        let advertise = ClientMessage::AdvertiseKeys(AdvertiseKeys {
            encryption_key,
            mask_key,
            signature,
        });
        let mut session = Self {
            session,
            me,
            my_index,
            neighbours,
            identities,
            identity,
            state: State::AwaitNeighbourKeys(AwaitNeighbourKeys {
                secrets,
                advertised: [encryption_key, mask_key],
            }),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            deadline: None,
            config,
        };
        session.send(&advertise, Phase::AdvertiseKeys, now);
        Ok(session)
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

    /// This client's id.
    #[must_use]
    pub fn id(&self) -> ParticipantId {
        self.me
    }

    /// The phase whose message this client sent last.
    #[must_use]
    pub fn phase(&self) -> Phase {
        match self.state {
            State::AwaitNeighbourKeys(_) => Phase::AdvertiseKeys,
            State::AwaitShares(_) => Phase::ShareKeys,
            State::AwaitSurvivors(_) => Phase::MaskedInput,
            State::AwaitSignatures(_) => Phase::ConsistencyCheck,
            State::Done => Phase::Done,
            State::Failed(_) => Phase::Failed,
        }
    }

    /// The next message to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`ClientSession::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Tells the session the time; past its deadline it fails.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            let phase = self.phase();
            let _ = self.fail(Error::Timeout {
                round: self.config.round,
                phase,
            });
        }
    }

    /// The operator ends the round for this client.
    pub fn abort(&mut self) {
        if !matches!(self.state, State::Done | State::Failed(_)) {
            let _ = self.fail(Error::OperatorAbort {
                round: self.config.round,
            });
        }
    }

    /// Handles one message from the server.
    ///
    /// # Errors
    /// Any error is also the session's final state (it is sticky, and every
    /// later call returns it), except after completion, where a further
    /// message is refused without changing the completed state.
    pub fn handle_message<R: CryptoRng + ?Sized>(
        &mut self,
        bytes: &[u8],
        now: Instant,
        rng: &mut R,
    ) -> Result<()> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Done => return Err(self.after_completion(bytes)),
            _ => {}
        }
        let (round, message) = match ServerMessage::decode(bytes, Some(&self.config)) {
            Ok(m) => m,
            Err(e) => return self.fail(e),
        };
        if round != self.config.round {
            return self.fail(self.server_violation(Violation::WrongRound {
                expected: self.config.round,
                got: round,
            }));
        }
        if let ServerMessage::Abort(a) = message {
            return self.fail(self.server_violation(Violation::ServerAborted(a.code)));
        }
        let state = core::mem::replace(&mut self.state, State::Done);
        let step = match (state, message) {
            (State::AwaitNeighbourKeys(s), ServerMessage::NeighbourKeys(m)) => self
                .on_neighbour_keys(s, &m, rng)
                .map(|(next, out)| (State::AwaitShares(Box::new(next)), out, Phase::ShareKeys)),
            (State::AwaitShares(s), ServerMessage::SharesForYou(m)) => self
                .on_shares(*s, &m)
                .map(|(next, out)| (State::AwaitSurvivors(next), out, Phase::MaskedInput)),
            (State::AwaitSurvivors(s), ServerMessage::SurvivorSet(m)) => self
                .on_survivors(s, m)
                .map(|(next, out)| (State::AwaitSignatures(next), out, Phase::ConsistencyCheck)),
            (State::AwaitSignatures(s), ServerMessage::ConsistencySignatures(m)) => self
                .on_signatures(s, &m)
                .map(|out| (State::Done, out, Phase::Unmask)),
            (state, message) => {
                self.state = state;
                let expected = self.expected();
                return self.fail(Error::UnexpectedMessage {
                    round: self.config.round,
                    participant: None,
                    phase: self.phase(),
                    expected,
                    received: message.message_type(),
                });
            }
        };
        match step {
            Ok((next, out, phase)) => {
                self.state = next;
                self.send(&out, phase, now);
                if matches!(self.state, State::Done) {
                    self.deadline = None;
                    self.events.push_back(ClientEvent::Completed);
                }
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    /// What the current phase waits for.
    fn expected(&self) -> MessageType {
        match self.state {
            State::AwaitNeighbourKeys(_) => MessageType::NeighbourKeys,
            State::AwaitShares(_) => MessageType::SharesForYou,
            State::AwaitSurvivors(_) => MessageType::SurvivorSet,
            State::AwaitSignatures(_) | State::Done | State::Failed(_) => {
                MessageType::ConsistencySignatures
            }
        }
    }

    /// A message after the shares were revealed. A new survivor set or new
    /// signatures would ask for shares again, possibly the other secret of a
    /// peer: refused.
    fn after_completion(&self, bytes: &[u8]) -> Error {
        match ServerMessage::decode(bytes, Some(&self.config)) {
            Ok((_, ServerMessage::SurvivorSet(_) | ServerMessage::ConsistencySignatures(_))) => {
                self.server_violation(Violation::SecondUnmaskRequest)
            }
            Ok((_, m)) => Error::UnexpectedMessage {
                round: self.config.round,
                participant: None,
                phase: Phase::Done,
                expected: MessageType::Abort,
                received: m.message_type(),
            },
            Err(e) => e,
        }
    }

    fn server_violation(&self, violation: Violation) -> Error {
        Error::Forbidden {
            round: self.config.round,
            participant: None,
            violation,
        }
    }

    fn send(&mut self, message: &ClientMessage, phase: Phase, now: Instant) {
        self.transmit.push_back(message.encode(self.config.round));
        self.events.push_back(ClientEvent::PhaseCompleted(phase));
        self.deadline = now.checked_add(
            self.config
                .phase_timeout()
                .saturating_mul(CLIENT_WAIT_PHASES),
        );
    }

    /// Enters the failed state: secrets are dropped (and so zeroized),
    /// nothing more is sent, and every later call returns `error`.
    fn fail(&mut self, error: Error) -> Result<()> {
        self.state = State::Failed(error.clone());
        self.transmit.clear();
        self.deadline = None;
        self.events.push_back(ClientEvent::Aborted(error.clone()));
        Err(error)
    }

    fn holders_needed(&self, have: usize, phase: Phase) -> Result<()> {
        let needed = self.config.t();
        if have < needed {
            return Err(Error::TooFewSurvivors {
                round: self.config.round,
                phase,
                survivors: have,
                needed,
            });
        }
        Ok(())
    }

    /// Phase 2: check the neighbours' keys, share `b` and `c` among them and
    /// this client, and seal each neighbour's shares.
    fn on_neighbour_keys<R: CryptoRng + ?Sized>(
        &self,
        s: AwaitNeighbourKeys,
        m: &NeighbourKeys,
        rng: &mut R,
    ) -> Result<(AwaitShares, ClientMessage)> {
        let round = self.config.round;
        let secrets = s.secrets;
        let my_mask = AgreementSecret::from_scalar(&secrets.mask_key);
        let mut seen: Vec<[u8; 32]> = s.advertised.iter().map(|k| k.to_bytes()).collect();
        let mut signed = Vec::with_capacity(m.entries.len());
        for (v, keys) in &m.entries {
            let identity = self
                .identities
                .get(*v)
                .filter(|_| self.neighbours.binary_search(v).is_ok())
                .ok_or_else(|| self.server_violation(Violation::NotANeighbour(*v)))?;
            signed.push((
                *v,
                identity,
                keys.signed_message_for(&self.session, *v),
                &keys.signature,
            ));
        }
        verify_forwarded(SignatureDomain::ADVERTISE_KEYS, &signed)
            .map_err(|v| self.server_violation(Violation::BadKeySignature(v)))?;
        let mut seeds = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for (v, keys) in &m.entries {
            let v = *v;
            let (e, k) = (keys.encryption_key.to_bytes(), keys.mask_key.to_bytes());
            if e == k || seen.contains(&e) || seen.contains(&k) {
                return Err(self.server_violation(Violation::ReusedPublicKey(v)));
            }
            seen.extend([e, k]);
            // A neighbour that signed a key of small order is malicious:
            // neither share with it nor mask with it.
            let (Ok(enc), Ok(mask)) = (
                secrets.encryption.agree(&keys.encryption_key),
                my_mask.agree(&keys.mask_key),
            ) else {
                continue;
            };
            seeds.insert(v, mask.pairwise_mask_seed(round, self.me, v));
            peers.insert(v, enc);
        }
        self.holders_needed(peers.len().saturating_add(1), Phase::ShareKeys)?;

        let mut indices = Vec::with_capacity(peers.len().saturating_add(1));
        indices.push(self.my_index);
        for v in peers.keys() {
            indices.push(ShareIndex::for_participant(*v)?);
        }
        let t = self.config.t();
        let b_shares = shamir::split(&secrets.self_mask, t, &indices, rng)?;
        let c_shares = shamir::split(&secrets.mask_key, t, &indices, rng)?;
        let commit = |holder: ParticipantId, b: &Share, c: &Share| {
            (
                holder,
                ShareCommitment::compute(round, self.me, ShareKind::SelfMask as u8, b),
                ShareCommitment::compute(round, self.me, ShareKind::MaskKey as u8, c),
            )
        };
        let mut commitments: Vec<(ParticipantId, ShareCommitment, ShareCommitment)> =
            core::iter::once(self.me)
                .chain(peers.keys().copied())
                .zip(b_shares.iter().zip(&c_shares))
                .map(|(holder, (b, c))| commit(holder, b, c))
                .collect();
        commitments.sort_unstable_by_key(|(h, _, _)| *h);
        let mut pairs = b_shares.into_iter().zip(c_shares);
        let own = pairs
            .next()
            .map(|(b, c)| HeldShares {
                self_mask: b,
                mask_key: c,
            })
            .ok_or(Error::Internal("a sharing has a share for its owner"))?;
        let mut entries = Vec::with_capacity(peers.len());
        for ((v, shared), (b, c)) in peers.iter().zip(pairs) {
            let plaintext = SharesPlaintext {
                sender: self.me,
                receiver: *v,
                self_mask_share: b,
                mask_key_share: c,
            };
            let ctx = EnvelopeContext {
                round,
                phase: Phase::ShareKeys.number(),
                sender: self.me,
                receiver: *v,
            };
            let sealed = shared.sealing_key(ctx).seal(&[], &plaintext.encode())?;
            entries.push((*v, sealed));
        }
        Ok((
            AwaitShares {
                self_mask: secrets.self_mask,
                input: secrets.input,
                peers,
                seeds,
                own,
            },
            ClientMessage::ShareKeys(ShareKeys {
                commitments,
                entries,
            }),
        ))
    }

    /// Phase 3: open the envelopes, exclude any that fail, and mask the input
    /// with the self mask and one pairwise mask per remaining sender.
    fn on_shares(
        &self,
        s: AwaitShares,
        m: &SharesForYou,
    ) -> Result<(AwaitSurvivors, ClientMessage)> {
        let round = self.config.round;
        let mut held = BTreeMap::new();
        let mut excluded = Vec::new();
        for (v, sealed) in &m.entries {
            let v = *v;
            let Some(shared) = s.peers.get(&v) else {
                return Err(self.server_violation(Violation::NotANeighbour(v)));
            };
            match self.open_shares(shared, v, sealed) {
                Some(h) => {
                    held.insert(v, h);
                }
                None => excluded.push(v),
            }
        }
        // This client masks with every neighbour whose shares it holds; with
        // itself that must be at least t holders, or its self mask would be
        // removed with too few pairwise masks left to hide its input.
        self.holders_needed(held.len().saturating_add(1), Phase::MaskedInput)?;

        let self_seed = s.self_mask.self_mask_seed(round, self.me);
        let mut plan: Vec<(&MaskSeed, MaskSign)> = vec![(&self_seed, MaskSign::Add)];
        for v in held.keys() {
            let seed = s
                .seeds
                .get(v)
                .ok_or(Error::Internal("a peer with shares has a mask seed"))?;
            // The lower id adds the pairwise mask, the higher subtracts it.
            let sign = if self.me < *v {
                MaskSign::Add
            } else {
                MaskSign::Subtract
            };
            plan.push((seed, sign));
        }
        // The input is masked in place: after this it holds y_u, and it is
        // zeroized when dropped like the input was.
        let mut y = s.input;
        prg::apply_masks(&plan, self.config.ring, &mut y)?;
        let packed = packing::pack(&y, self.config.ring);
        held.insert(self.me, s.own);
        Ok((
            AwaitSurvivors {
                held,
                excluded: excluded.clone(),
            },
            ClientMessage::MaskedInput(MaskedInput { excluded, packed }),
        ))
    }

    /// Opens `v`'s envelope and checks its content; `None` if anything is
    /// wrong (the caller excludes `v`).
    fn open_shares(
        &self,
        shared: &SharedSecret,
        v: ParticipantId,
        sealed: &[u8],
    ) -> Option<HeldShares> {
        let ctx = EnvelopeContext {
            round: self.config.round,
            phase: Phase::ShareKeys.number(),
            sender: v,
            receiver: self.me,
        };
        let opened = shared.opening_key(ctx).open(&[], sealed).ok()?;
        let p = SharesPlaintext::decode(opened.as_bytes()).ok()?;
        let ok = p.sender == v
            && p.receiver == self.me
            && p.self_mask_share.index() == self.my_index
            && p.mask_key_share.index() == self.my_index;
        ok.then(|| HeldShares {
            self_mask: p.self_mask_share.clone(),
            mask_key: p.mask_key_share.clone(),
        })
    }

    /// Phase 4: check the survivor set against this client's view and sign it.
    fn on_survivors(
        &self,
        s: AwaitSurvivors,
        m: SurvivorSet,
    ) -> Result<(AwaitSignatures, ClientMessage)> {
        let survivors = m.survivors;
        if let Some(v) = survivors.iter().find(|v| !self.config.contains(**v)) {
            return Err(self.server_violation(Violation::UnknownParticipant(*v)));
        }
        if survivors.binary_search(&self.me).is_err() {
            return Err(self.server_violation(Violation::NotExpected(self.me)));
        }
        let mut in_view = 0_usize;
        for v in survivors
            .iter()
            .filter(|v| self.neighbours.binary_search(v).is_ok())
        {
            if s.excluded.contains(v) || !s.held.contains_key(v) {
                return Err(self.server_violation(Violation::SurvivorNotInView(*v)));
            }
            in_view = in_view.saturating_add(1);
        }
        self.holders_needed(in_view.saturating_add(1), Phase::ConsistencyCheck)?;
        self.holders_needed(survivors.len(), Phase::ConsistencyCheck)?;
        // A set smaller than the quorum can never gather its signatures.
        if survivors.len() < self.config.quorum() {
            return Err(Error::TooFewSurvivors {
                round: self.config.round,
                phase: Phase::ConsistencyCheck,
                survivors: survivors.len(),
                needed: self.config.quorum(),
            });
        }
        let signature = self.identity.sign(
            SignatureDomain::CONSISTENCY_CHECK,
            &survivor_set_message(&self.session, &survivors),
        );
        Ok((
            AwaitSignatures {
                held: s.held,
                survivors,
            },
            ClientMessage::ConsistencySignature(ConsistencySignature { signature }),
        ))
    }

    /// Checks the survivors' signatures over the survivor set this client
    /// signed, under the session id: with this client's own, at least the
    /// round's quorum `floor((n + c) / 2) + 1` must have signed (SPEC.md
    /// §9.3, §11.1.5). An honest participant signs one set per session, and
    /// two quorums share an honest participant even when all `c` colluders
    /// sign both: so no two clients that reveal were shown different sets.
    fn verify_consistency(
        &self,
        s: &AwaitSignatures,
        m: &ConsistencySignatures,
    ) -> Result<SurvivorSetAgreed> {
        let message = survivor_set_message(&self.session, &s.survivors);
        let mut signed = Vec::with_capacity(m.entries.len());
        for (v, signature) in &m.entries {
            // This client's own signature is its own statement: not
            // counted again.
            if *v == self.me {
                continue;
            }
            let Some(identity) = self.identities.get(*v) else {
                return Err(self.server_violation(Violation::UnknownParticipant(*v)));
            };
            if s.survivors.binary_search(v).is_err() {
                return Err(self.server_violation(Violation::SurvivorNotInView(*v)));
            }
            signed.push((*v, identity, message.as_slice(), signature));
        }
        verify_forwarded(SignatureDomain::CONSISTENCY_CHECK, &signed).map_err(|v| {
            Error::Forbidden {
                round: self.config.round,
                participant: Some(v),
                violation: Violation::BadConsistencySignature(v),
            }
        })?;
        let signers = signed.len().saturating_add(1);
        let quorum = self.config.quorum();
        if signers < quorum {
            return Err(Error::TooFewSurvivors {
                round: self.config.round,
                phase: Phase::Unmask,
                survivors: signers,
                needed: quorum,
            });
        }
        Ok(SurvivorSetAgreed(()))
    }

    /// Phase 5: for each owner of shares held, reveal the self-mask share if
    /// it survived and the mask-key share if it dropped; never both.
    fn on_signatures(
        &self,
        s: AwaitSignatures,
        m: &ConsistencySignatures,
    ) -> Result<ClientMessage> {
        let proof = self.verify_consistency(&s, m)?;
        Ok(ClientMessage::UnmaskShares(reveal(&s, proof)))
    }
}

/// Checks the signatures the server forwarded as one batch (SPEC.md §7: the
/// server checked each strictly before forwarding it). `Err(v)`: `v`'s
/// signature is the first that does not verify.
fn verify_forwarded<M: AsRef<[u8]>>(
    domain: SignatureDomain,
    entries: &[(ParticipantId, &IdentityVerifyingKey, M, &Signature)],
) -> core::result::Result<(), ParticipantId> {
    let batch: Vec<Signed<'_>> = entries
        .iter()
        .map(|(_, key, message, signature)| Signed {
            key,
            message: message.as_ref(),
            signature,
        })
        .collect();
    // The index is always within the batch; `MAX` only keeps this total.
    sign::verify_batch(domain, &batch).map_err(|rejected| {
        entries
            .get(rejected.index)
            .map_or(ParticipantId::MAX, |(v, ..)| *v)
    })
}

/// The shares to reveal, given the proof that the survivor set is agreed.
fn reveal(s: &AwaitSignatures, _proof: SurvivorSetAgreed) -> UnmaskShares {
    let entries = s
        .held
        .iter()
        .map(|(owner, h)| {
            if s.survivors.binary_search(owner).is_ok() {
                UnmaskShare {
                    about: *owner,
                    kind: ShareKind::SelfMask,
                    share: h.self_mask.clone(),
                }
            } else {
                UnmaskShare {
                    about: *owner,
                    kind: ShareKind::MaskKey,
                    share: h.mask_key.clone(),
                }
            }
        })
        .collect();
    UnmaskShares { entries }
}
