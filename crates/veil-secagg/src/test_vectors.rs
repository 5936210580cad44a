//! The generator of `protocol/test-vectors/round.json` (feature `test-util`):
//! one whole small round, with every party's secrets, every message in
//! delivery order, and the released sum.
//!
//! Four clients, classic SecAgg (k = 3, t = 3, one colluder withstood, so a
//! quorum of 3), d = 4, b = 16; client 3
//! crashes after sending its shares, so the server removes its pairwise
//! masks. Each client draws from its own ChaCha20Rng seeded with its id; the
//! secrets it draws first (b, c, then the envelope key, SPEC.md §11.1 step 1)
//! are recorded, so an independent implementation can recompute every
//! public key, open every envelope and recompute every masked input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs,
    reason = "test-vector generation from fixed, valid inputs"
)]

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use veil_crypto::prg::RingBits;
use veil_crypto::shamir::SecretScalar;
use veil_crypto::sign::IdentitySigningKey;

use crate::messages::ServerMessage;
use crate::{ClientSession, Roster, RoundConfig, ServerEvent, ServerSession, SiteFloor};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigVector {
    pub round: u64,
    pub participants: Vec<u32>,
    pub dimension: u32,
    pub ring_bits: u32,
    pub threshold: u32,
    pub degree: u32,
    pub max_corrupt: u32,
    pub phase_timeout_ms: u32,
    pub graph_seed: String,
    /// `SHA-256(label("veil/1 task-digest") || the Task message)`.
    pub task_digest: String,
    /// `SHA-256(label("veil/1 session-id") || the RoundConfig message)`.
    pub session_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientVector {
    pub id: u32,
    /// The RFC 8032 seed of the identity key.
    pub identity_seed: String,
    pub identity_public: String,
    pub input: Vec<u64>,
    /// `LE32(b_u)`, `LE32(c_u)`, `LE32(e_u)`.
    pub self_mask_secret: String,
    pub mask_key_secret: String,
    pub encryption_secret: String,
    /// The phase at which it crashes, if it does.
    pub crashes_before: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// `"server"` or a client id.
    pub from: String,
    pub to: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoundVector {
    pub description: String,
    /// The Task message the server sent every participant before the
    /// RoundConfig (SPEC.md §10.13); the config carries its digest.
    pub task: String,
    pub config: ConfigVector,
    pub clients: Vec<ClientVector>,
    pub transcript: Vec<TranscriptEntry>,
    pub included: Vec<u32>,
    pub sum: Vec<u64>,
}

/// The task of the vector's round.
#[must_use]
pub fn vector_task() -> crate::messages::Task {
    // Logistic regression on three features: three weights and a bias.
    crate::messages::Task {
        training_round: 1,
        purpose: crate::messages::Purpose::Train,
        clip_norm: 1.0,
        scale: 1024.0,
        noise_variance: 0.0,
        training: Some(crate::messages::TrainingSpec {
            architecture: "logistic".into(),
            features: vec!["age".into(), "dose mg".into(), "weight".into()],
            classes: vec!["no".into(), "yes".into()],
            optimizer: crate::messages::LocalOptimizer::Sgd,
            epochs: 5,
            batch_size: 16,
            learning_rate: 0.1,
            holdout: 0.2,
            standardization: Some((vec![40.0, 2.5, 70.0], vec![12.0, 1.0, 9.5])),
        }),
        model: vec![0.0, 0.5, -0.25, 1.0],
    }
}

/// The round config of the vector, with its task's digest.
#[must_use]
pub fn vector_config() -> RoundConfig {
    let round = 0x7665_696c_0000_0001;
    let digest = veil_crypto::kdf::task_digest(&vector_task().encode(round));
    RoundConfig::new(
        round,
        vec![0, 1, 2, 3],
        4,
        RingBits::new(16).unwrap(),
        3,
        3,
        1,
        1000,
        [0x67; 32],
    )
    .unwrap()
    .with_task_digest(digest)
}

/// Runs the round and records it.
#[must_use]
pub fn round_vector() -> RoundVector {
    let config = vector_config();
    let crashes: BTreeMap<u32, u8> = [(3_u32, 6_u8)].into_iter().collect(); // before MaskedInput
    let mut roster = Roster::new();
    let mut identities = BTreeMap::new();
    let mut clients_v = Vec::new();
    let mut rngs = BTreeMap::new();
    for &id in &config.participants {
        let seed = [id as u8 + 1; 32];
        let key = IdentitySigningKey::from_seed(&seed);
        roster.insert(id, key.verifying_key());
        let input: Vec<u64> = (0..4).map(|j| u64::from(1000 * id + 7 * j + 1)).collect();
        let rng = ChaCha20Rng::seed_from_u64(u64::from(id));
        // The secrets ClientSession::new draws first, in this order.
        let mut probe = ChaCha20Rng::seed_from_u64(u64::from(id));
        let b = SecretScalar::random(&mut probe);
        let c = SecretScalar::random(&mut probe);
        let e = SecretScalar::random(&mut probe);
        clients_v.push(ClientVector {
            id,
            identity_seed: hex::encode(seed),
            identity_public: hex::encode(key.verifying_key().to_bytes()),
            input,
            self_mask_secret: hex::encode(*b.export_bytes()),
            mask_key_secret: hex::encode(*c.export_bytes()),
            encryption_secret: hex::encode(*e.export_bytes()),
            crashes_before: crashes.get(&id).map(|_| "MaskedInput".to_owned()),
        });
        identities.insert(id, key);
        rngs.insert(id, rng);
    }
    let now = Instant::now();
    let mut server_rng = ChaCha20Rng::seed_from_u64(1000);
    let mut server = ServerSession::new(config.clone(), &roster, now).unwrap();
    let mut clients: BTreeMap<u32, ClientSession> = BTreeMap::new();
    let mut crashed = std::collections::BTreeSet::new();
    let mut transcript = Vec::new();
    let mut queue: VecDeque<(Option<u32>, u32, Vec<u8>)> = VecDeque::new(); // (from client, client, bytes)
    let mut time = now;
    loop {
        while let Some((to, bytes)) = server.poll_transmit() {
            queue.push_back((None, to, bytes));
        }
        for (&id, c) in &mut clients {
            while let Some(bytes) = c.poll_transmit() {
                let tag = crate::messages::peek_header(&bytes).map(|(ty, _)| ty as u8);
                if crashes.get(&id).is_some_and(|at| tag >= Some(*at)) || crashed.contains(&id) {
                    crashed.insert(id);
                    continue;
                }
                queue.push_back((Some(id), id, bytes));
            }
        }
        let Some((from, client, bytes)) = queue.pop_front() else {
            match server.poll_timeout() {
                Some(deadline) => {
                    time = time.max(deadline);
                    server.handle_timeout(time, &mut server_rng);
                    continue;
                }
                None => break,
            }
        };
        transcript.push(TranscriptEntry {
            from: from.map_or("server".into(), |id| id.to_string()),
            to: if from.is_some() {
                "server".into()
            } else {
                client.to_string()
            },
            message: hex::encode(&bytes),
        });
        match from {
            Some(id) => {
                let _ = server.handle_message(id, &bytes, time, &mut server_rng);
            }
            None if crashed.contains(&client) => {}
            None => match clients.get_mut(&client) {
                Some(c) => {
                    let _ = c.handle_message(&bytes, time, rngs.get_mut(&client).unwrap());
                }
                None => {
                    let (_, ServerMessage::RoundConfig(cfg)) =
                        ServerMessage::decode(&bytes, None).unwrap()
                    else {
                        panic!("first message is the config");
                    };
                    let input = clients_v
                        .iter()
                        .find(|c| c.id == client)
                        .unwrap()
                        .input
                        .clone();
                    let session = ClientSession::new(
                        cfg,
                        client,
                        identities[&client].clone(),
                        &roster,
                        &SiteFloor::default(),
                        zeroize::Zeroizing::new(input),
                        time,
                        rngs.get_mut(&client).unwrap(),
                    )
                    .unwrap();
                    clients.insert(client, session);
                }
            },
        }
    }
    let mut result = None;
    while let Some(e) = server.poll_event() {
        if let ServerEvent::RoundComplete(r) = e {
            result = Some(r);
        }
    }
    let result = result.expect("the vector round completes");
    RoundVector {
        description: "One round (SPEC.md §9-§11): 4 clients, k = 3, t = 3, c = 1 (quorum 3), \
                      d = 4, b = 16; client 3 crashes after ShareKeys. Each client's secrets are b, c, e of \
                      §11.1 step 1; the transcript lists every message in delivery order, after \
                      the Task (`task`) whose digest the RoundConfig carries."
            .into(),
        task: hex::encode(vector_task().encode(config.round)),
        config: ConfigVector {
            round: config.round,
            participants: config.participants.clone(),
            dimension: config.dimension,
            ring_bits: config.ring.bits(),
            threshold: config.threshold,
            degree: config.degree,
            max_corrupt: config.max_corrupt,
            phase_timeout_ms: config.phase_timeout_ms,
            graph_seed: hex::encode(config.graph_seed),
            task_digest: hex::encode(config.task_digest),
            session_id: hex::encode(crate::messages::session_id(&config)),
        },
        clients: clients_v,
        transcript,
        included: result.included,
        sum: result.sum,
    }
}

/// The JSON of `protocol/test-vectors/round.json`.
#[must_use]
pub fn round_vector_json() -> String {
    let mut s = serde_json::to_string_pretty(&round_vector()).unwrap();
    s.push('\n');
    s
}
