//! A dishonest server, played by hand against real `ClientSession`s, with
//! colluding clients whose every secret it holds.
//!
//! The honest clients are veil's own sessions. The server decides what each
//! of them is shown (neighbour keys, envelopes, survivor sets, signatures);
//! the colluders advertise keys, deal shares and sign whatever the server
//! wants, and open every envelope an honest neighbour seals for them. At the
//! end the server pools what it learnt and tries to take an honest client's
//! input out of its masked input.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::agreement::{AgreementPublicKey, AgreementSecret};
use veil_crypto::envelope::EnvelopeContext;
use veil_crypto::prg;
use veil_crypto::shamir::{self, SecretScalar, Share, ShareIndex};
use veil_crypto::sign::{IdentitySigningKey, Signature, SignatureDomain};
use veil_secagg::graph::NeighbourGraph;
use veil_secagg::messages::{
    AdvertiseKeys, ClientMessage, ConsistencySignatures, NeighbourKeys, ServerMessage, ShareKind,
    SharesForYou, SharesPlaintext, SurvivorSet, UnmaskShares, survivor_set_message,
};
use veil_secagg::{ClientSession, Error, Roster, RoundConfig, SessionId, SiteFloor};

/// A client that works for the server.
pub(crate) struct Colluder {
    identity: IdentitySigningKey,
    encryption: AgreementSecret,
    mask_secret: SecretScalar,
    self_mask: SecretScalar,
    /// The shares of each honest neighbour's `(b, c)` it opened.
    opened: BTreeMap<u32, (Share, Share)>,
}

/// The dishonest server and the round it runs.
pub(crate) struct Server {
    pub(crate) config: RoundConfig,
    pub(crate) session: SessionId,
    pub(crate) graph: NeighbourGraph,
    pub(crate) honest: BTreeMap<u32, ClientSession>,
    pub(crate) colluders: BTreeMap<u32, Colluder>,
    /// The honest clients' inputs, to check what the server recovers.
    pub(crate) inputs: BTreeMap<u32, Vec<u64>>,
    adverts: BTreeMap<u32, AdvertiseKeys>,
    masked: BTreeMap<u32, Vec<u64>>,
    /// The survivor set each honest client signed.
    signed: BTreeMap<u32, (Vec<u32>, Signature)>,
    /// Advertisements the server shows instead of the real ones.
    pub(crate) forged_adverts: BTreeMap<u32, AdvertiseKeys>,
    /// What each honest client revealed.
    pub(crate) revealed: BTreeMap<u32, UnmaskShares>,
    /// Each honest client that refused, with its error.
    pub(crate) refused: BTreeMap<u32, Error>,
    rng: ChaCha20Rng,
    now: Instant,
}

/// The seed of the deployment's identity keys, the same in every run.
const IDENTITY_SEED: u64 = 0x7665_696c;

impl Server {
    /// Starts the round: the participants not in `colluders` are honest
    /// sessions holding `floor`. `Err` if a session refuses the config.
    pub(crate) fn new(
        config: RoundConfig,
        colluders: &[u32],
        floor: &SiteFloor,
        seed: u64,
    ) -> Result<Self, Error> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let now = Instant::now();
        // Identities belong to the deployment, not the round: every run of
        // the harness has the same roster, so a signature carried from one
        // run to another fails only for what the runs' session ids bind.
        let mut identity_rng = ChaCha20Rng::seed_from_u64(IDENTITY_SEED);
        let keys: BTreeMap<u32, IdentitySigningKey> = config
            .participants
            .iter()
            .map(|id| (*id, IdentitySigningKey::generate(&mut identity_rng)))
            .collect();
        let mut roster = Roster::new();
        for (id, key) in &keys {
            roster.insert(*id, key.verifying_key());
        }
        let mut honest = BTreeMap::new();
        let mut inputs = BTreeMap::new();
        let mut bad = BTreeMap::new();
        for (&id, key) in &keys {
            if let Some(&c) = colluders.iter().find(|c| **c == id) {
                bad.insert(
                    c,
                    Colluder {
                        identity: key.clone(),
                        encryption: AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)),
                        mask_secret: SecretScalar::random(&mut rng),
                        self_mask: SecretScalar::random(&mut rng),
                        opened: BTreeMap::new(),
                    },
                );
                continue;
            }
            let input: Vec<u64> = (0..config.d())
                .map(|i| (u64::from(id) * 1_000 + i as u64 * 7 + 1) & config.ring.mask())
                .collect();
            let session = ClientSession::new(
                config.clone(),
                id,
                key.clone(),
                &roster,
                floor,
                zeroize::Zeroizing::new(input.clone()),
                now,
                &mut rng,
            )?;
            honest.insert(id, session);
            inputs.insert(id, input);
        }
        Ok(Self {
            session: veil_secagg::messages::session_id(&config),
            graph: config.graph(),
            config,
            honest,
            colluders: bad,
            inputs,
            adverts: BTreeMap::new(),
            masked: BTreeMap::new(),
            signed: BTreeMap::new(),
            forged_adverts: BTreeMap::new(),
            revealed: BTreeMap::new(),
            refused: BTreeMap::new(),
            rng,
            now,
        })
    }

    /// The signature honest client `u` gave, with the set it signed.
    pub(crate) fn signature_of(&self, u: u32) -> Option<&(Vec<u32>, Signature)> {
        self.signed.get(&u)
    }

    /// The advertisement participant `u` sent.
    pub(crate) fn advert_of(&self, u: u32) -> Option<AdvertiseKeys> {
        self.adverts.get(&u).copied()
    }

    fn t(&self) -> usize {
        self.config.t()
    }

    /// The next message honest client `u` sent, if it sent one.
    fn receive(&mut self, u: u32) -> Option<ClientMessage> {
        let bytes = self.honest.get_mut(&u)?.poll_transmit()?;
        Some(ClientMessage::decode(&bytes, &self.config).unwrap().1)
    }

    /// Shows honest client `u` a message; records a refusal.
    fn show(&mut self, u: u32, message: ServerMessage) {
        let bytes = message.encode(self.config.round);
        let session = self.honest.get_mut(&u).unwrap();
        if let Err(e) = session.handle_message(&bytes, self.now, &mut self.rng) {
            self.refused.entry(u).or_insert(e);
        }
    }

    fn honest_ids(&self) -> Vec<u32> {
        self.honest.keys().copied().collect()
    }

    fn envelope(round: u64, sender: u32, receiver: u32) -> EnvelopeContext {
        EnvelopeContext {
            round,
            phase: 2,
            sender,
            receiver,
        }
    }

    /// Phases 1 to 3, played honestly towards every honest client (every
    /// neighbour's keys and envelopes are delivered), while the colluders
    /// open what is sealed for them.
    pub(crate) fn run_to_masked_inputs(&mut self) {
        let round = self.config.round;
        for u in self.honest_ids() {
            if let Some(ClientMessage::AdvertiseKeys(keys)) = self.receive(u) {
                self.adverts.insert(u, keys);
            }
        }
        for (&v, c) in &self.colluders {
            let encryption_key = c.encryption.public_key();
            let mask_key = AgreementSecret::from_scalar(&c.mask_secret).public_key();
            let signature = c.identity.sign(
                SignatureDomain::ADVERTISE_KEYS,
                &AdvertiseKeys::signed_message(&self.session, v, &encryption_key, &mask_key),
            );
            self.adverts.insert(
                v,
                AdvertiseKeys {
                    encryption_key,
                    mask_key,
                    signature,
                },
            );
        }
        let mut shown = self.adverts.clone();
        shown.extend(self.forged_adverts.clone());
        for u in self.honest_ids() {
            let entries = self
                .graph
                .neighbours(u)
                .into_iter()
                .filter_map(|v| shown.get(&v).map(|a| (v, *a)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect();
            self.show(u, ServerMessage::NeighbourKeys(NeighbourKeys { entries }));
        }
        // Phase 2: route the honest envelopes; the colluders open theirs.
        let mut inbox: BTreeMap<u32, BTreeMap<u32, Vec<u8>>> = BTreeMap::new();
        for u in self.honest_ids() {
            let Some(ClientMessage::ShareKeys(shares)) = self.receive(u) else {
                continue;
            };
            for (to, sealed) in shares.entries {
                if let Some(c) = self.colluders.get_mut(&to) {
                    let opened = c
                        .encryption
                        .agree(&self.adverts[&u].encryption_key)
                        .unwrap()
                        .opening_key(Self::envelope(round, u, to))
                        .open(&[], &sealed)
                        .unwrap();
                    let p = SharesPlaintext::decode(opened.as_bytes()).unwrap();
                    c.opened
                        .insert(u, (p.self_mask_share.clone(), p.mask_key_share.clone()));
                } else {
                    inbox.entry(to).or_default().insert(u, sealed);
                }
            }
        }
        // The colluders deal real shares to their honest neighbours, so
        // that the honest clients mask with them and count them as holders.
        let t = self.t();
        for (&v, c) in &self.colluders {
            let holders: Vec<u32> = core::iter::once(v)
                .chain(self.graph.neighbours(v))
                .collect();
            let indices: Vec<ShareIndex> = holders
                .iter()
                .map(|h| ShareIndex::for_participant(*h).unwrap())
                .collect();
            let b = shamir::split(&c.self_mask, t, &indices, &mut self.rng).unwrap();
            let cc = shamir::split(&c.mask_secret, t, &indices, &mut self.rng).unwrap();
            for ((h, b), cc) in holders.iter().zip(b).zip(cc) {
                if !self.honest.contains_key(h) {
                    continue;
                }
                let plaintext = SharesPlaintext {
                    sender: v,
                    receiver: *h,
                    self_mask_share: b,
                    mask_key_share: cc,
                };
                let sealed = c
                    .encryption
                    .agree(&self.adverts[h].encryption_key)
                    .unwrap()
                    .sealing_key(Self::envelope(round, v, *h))
                    .seal(&[], &plaintext.encode())
                    .unwrap();
                inbox.entry(*h).or_default().insert(v, sealed);
            }
        }
        for u in self.honest_ids() {
            let entries = inbox.remove(&u).unwrap_or_default().into_iter().collect();
            self.show(u, ServerMessage::SharesForYou(SharesForYou { entries }));
        }
        for u in self.honest_ids() {
            if let Some(ClientMessage::MaskedInput(m)) = self.receive(u) {
                assert!(m.excluded.is_empty(), "every envelope opens");
                let y = veil_secagg::packing::unpack(&m.packed, self.config.d(), self.config.ring)
                    .unwrap();
                self.masked.insert(u, y);
            }
        }
    }

    /// Phase 4: shows each honest client the survivor set `view` gives it
    /// (`None`: nothing, as if the server lost it), and collects what it
    /// signs.
    pub(crate) fn show_survivor_sets(&mut self, view: impl Fn(u32) -> Option<Vec<u32>>) {
        for u in self.honest_ids() {
            let Some(survivors) = view(u) else { continue };
            self.show(
                u,
                ServerMessage::SurvivorSet(SurvivorSet {
                    survivors: survivors.clone(),
                }),
            );
            if let Some(ClientMessage::ConsistencySignature(s)) = self.receive(u) {
                self.signed.insert(u, (survivors, s.signature));
            }
        }
    }

    /// Phase 5: forwards to each honest signer every signature over the set
    /// it signed: the honest ones that signed the same set, and the
    /// colluders' (who sign any set the server likes). Collects the shares
    /// revealed.
    pub(crate) fn forward_signatures(&mut self) {
        self.forward_signatures_with(&BTreeMap::new());
    }

    /// As [`Server::forward_signatures`], adding `extra` signatures (ones
    /// the server kept from elsewhere) under their signers' names.
    pub(crate) fn forward_signatures_with(&mut self, extra: &BTreeMap<u32, Signature>) {
        let signers: Vec<u32> = self.signed.keys().copied().collect();
        for u in signers {
            let set = self.signed[&u].0.clone();
            let message = survivor_set_message(&self.session, &set);
            let mut entries: BTreeMap<u32, Signature> = self
                .signed
                .iter()
                .filter(|(_, (s, _))| *s == set)
                .map(|(w, (_, sig))| (*w, *sig))
                .collect();
            entries.extend(extra.iter().map(|(v, s)| (*v, *s)));
            for (&v, c) in &self.colluders {
                if set.binary_search(&v).is_ok() {
                    entries.insert(
                        v,
                        c.identity
                            .sign(SignatureDomain::CONSISTENCY_CHECK, &message),
                    );
                }
            }
            self.show(
                u,
                ServerMessage::ConsistencySignatures(ConsistencySignatures {
                    entries: entries.into_iter().collect(),
                }),
            );
            if let Some(ClientMessage::UnmaskShares(shares)) = self.receive(u) {
                self.revealed.insert(u, shares);
            }
        }
    }

    /// Every share of `owner`'s secret `kind` the server holds: those
    /// honest clients revealed, and those its colluders opened.
    pub(crate) fn shares_of(&self, owner: u32, kind: ShareKind) -> Vec<Share> {
        let mut out: Vec<Share> = self
            .revealed
            .values()
            .flat_map(|r| r.entries.iter())
            .filter(|e| e.about == owner && e.kind == kind)
            .map(|e| e.share.clone())
            .collect();
        for c in self.colluders.values() {
            if let Some((b, cc)) = c.opened.get(&owner) {
                out.push(if kind == ShareKind::SelfMask {
                    b.clone()
                } else {
                    cc.clone()
                });
            }
        }
        out
    }

    /// `owner`'s secret `kind`, if the server holds `t` shares of it.
    pub(crate) fn secret_of(&mut self, owner: u32, kind: ShareKind) -> Option<SecretScalar> {
        let shares = self.shares_of(owner, kind);
        (shares.len() >= self.t())
            .then(|| shamir::reconstruct(&shares, self.t(), &mut self.rng).unwrap())
    }

    /// The mask-agreement secret of `v`: a colluder's own, or reconstructed.
    fn mask_secret_of(&mut self, v: u32) -> Option<SecretScalar> {
        if let Some(c) = self.colluders.get(&v) {
            return Some(
                SecretScalar::from_canonical_bytes(&*c.mask_secret.export_bytes()).unwrap(),
            );
        }
        self.secret_of(v, ShareKind::MaskKey)
    }

    /// Honest client `target`'s input, if what the server learnt removes
    /// every mask from its masked input: its self-mask secret, and for each
    /// neighbour it masked with, the mask-agreement secret of one side of
    /// the pair.
    pub(crate) fn recover_input(&mut self, target: u32) -> Option<Vec<u64>> {
        let round = self.config.round;
        let ring = self.config.ring;
        let mut y = self.masked.get(&target)?.clone();
        let b = self.secret_of(target, ShareKind::SelfMask)?;
        prg::sub_mask(&b.self_mask_seed(round, target), ring, &mut y).unwrap();
        let own = self.mask_secret_of(target);
        for v in self.graph.neighbours(target) {
            let (secret, peer_key): (SecretScalar, AgreementPublicKey) = match &own {
                Some(c) => (
                    SecretScalar::from_canonical_bytes(&*c.export_bytes()).unwrap(),
                    self.adverts[&v].mask_key,
                ),
                None => (self.mask_secret_of(v)?, self.adverts[&target].mask_key),
            };
            let seed = AgreementSecret::from_scalar(&secret)
                .agree(&peer_key)
                .unwrap()
                .pairwise_mask_seed(round, target, v);
            if target < v {
                prg::sub_mask(&seed, ring, &mut y).unwrap();
            } else {
                prg::add_mask(&seed, ring, &mut y).unwrap();
            }
        }
        Some(y)
    }

    /// Whether the server can take `target`'s input out of its masked
    /// input; panics if it "recovers" a wrong vector (the harness itself
    /// would be wrong).
    pub(crate) fn breaks(&mut self, target: u32) -> bool {
        match self.recover_input(target) {
            Some(x) => {
                assert_eq!(x, self.inputs[&target], "a recovery must be exact");
                true
            }
            None => false,
        }
    }
}
