//! `protocol/test-vectors/round.json`: the committed file is what the
//! generator produces, and every step of the round checks out when replayed
//! from the file alone with the primitives, as an independent implementation
//! would: public keys from the recorded secrets, signatures, envelopes,
//! commitments, every masked input recomputed from its input and secrets,
//! the revealed shares reconstructing the recorded secrets, and the sum.

use std::collections::BTreeMap;
use std::path::PathBuf;

use subtle::ConstantTimeEq;
use veil_crypto::agreement::AgreementSecret;
use veil_crypto::envelope::EnvelopeContext;
use veil_crypto::prg::{self, RingBits};
use veil_crypto::shamir::{self, SecretScalar, ShareCommitment};
use veil_crypto::sign::{IdentityVerifyingKey, SignatureDomain};
use veil_secagg::messages::{
    AdvertiseKeys, ClientMessage, ServerMessage, ShareKind, SharesPlaintext, survivor_set_message,
};
use veil_secagg::test_vectors::{RoundVector, round_vector_json, vector_config};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol/test-vectors/round.json")
}

fn scalar(hex_str: &str) -> SecretScalar {
    SecretScalar::from_canonical_bytes(&hex::decode(hex_str).unwrap()).unwrap()
}

#[test]
fn committed_round_vector_is_what_the_generator_writes() {
    let committed = std::fs::read_to_string(path()).unwrap();
    assert!(
        committed == round_vector_json(),
        "protocol/test-vectors/round.json is stale: run \
         `cargo run -p veil-secagg --features test-util --example generate_round_vector`"
    );
}

#[test]
fn the_round_replays_from_the_file() {
    let v: RoundVector = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let config = vector_config();
    assert_eq!(v.config.round, config.round);
    let round = config.round;
    let ring = RingBits::new(v.config.ring_bits).unwrap();
    // The session id is SHA-256 of the label and the RoundConfig message the
    // server sent, recomputed here from the transcript's bytes alone.
    let config_bytes = hex::decode(&v.transcript[0].message).unwrap();
    assert_eq!(
        ServerMessage::decode(&config_bytes, None).unwrap().1,
        ServerMessage::RoundConfig(config.clone())
    );
    let label = b"veil/1 session-id";
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, [label.len() as u8]);
    sha2::Digest::update(&mut h, label);
    sha2::Digest::update(&mut h, &config_bytes);
    let session: [u8; 32] = sha2::Digest::finalize(h).into();
    assert_eq!(hex::encode(session), v.config.session_id);
    assert_eq!(session, veil_secagg::messages::session_id(&config));
    // The config carries the task's digest, recomputed here from the Task
    // message's bytes alone: the session id binds the task (SPEC §10.13).
    let task_bytes = hex::decode(&v.task).unwrap();
    let (task_round, _) = veil_secagg::messages::Task::decode(&task_bytes, 4).unwrap();
    assert_eq!(task_round, round);
    let label = b"veil/1 task-digest";
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, [label.len() as u8]);
    sha2::Digest::update(&mut h, label);
    sha2::Digest::update(&mut h, &task_bytes);
    let digest: [u8; 32] = sha2::Digest::finalize(h).into();
    assert_eq!(digest, config.task_digest);
    assert_eq!(hex::encode(digest), v.config.task_digest);
    let clients: BTreeMap<u32, _> = v.clients.iter().map(|c| (c.id, c)).collect();

    // Every message decodes and re-encodes to the same bytes.
    let mut sent: BTreeMap<u32, Vec<ClientMessage>> = BTreeMap::new();
    let mut received: BTreeMap<u32, Vec<ServerMessage>> = BTreeMap::new();
    for e in &v.transcript {
        let bytes = hex::decode(&e.message).unwrap();
        if e.to == "server" {
            let (r, m) = ClientMessage::decode(&bytes, &config).unwrap();
            assert_eq!(r, round);
            assert_eq!(m.encode(round), bytes);
            sent.entry(e.from.parse().unwrap()).or_default().push(m);
        } else {
            let (r, m) = ServerMessage::decode(&bytes, Some(&config)).unwrap();
            assert_eq!(r, round);
            assert_eq!(m.encode(round), bytes);
            received.entry(e.to.parse().unwrap()).or_default().push(m);
        }
    }

    // Phase 1: keys are X25519 of the recorded secrets, signed by the identity.
    let mut mask_keys = BTreeMap::new();
    for (&id, msgs) in &sent {
        let c = clients[&id];
        let ClientMessage::AdvertiseKeys(keys) = &msgs[0] else {
            panic!("first is AdvertiseKeys")
        };
        let enc = AgreementSecret::from_scalar(&scalar(&c.encryption_secret));
        let mask = AgreementSecret::from_scalar(&scalar(&c.mask_key_secret));
        assert_eq!(keys.encryption_key, enc.public_key());
        assert_eq!(keys.mask_key, mask.public_key());
        let identity =
            IdentityVerifyingKey::from_slice(&hex::decode(&c.identity_public).unwrap()).unwrap();
        assert!(keys.verify(&session, id, &identity));
        identity
            .verify(
                SignatureDomain::ADVERTISE_KEYS,
                &AdvertiseKeys::signed_message(&session, id, &keys.encryption_key, &keys.mask_key),
                &keys.signature,
            )
            .unwrap();
        mask_keys.insert(id, keys.mask_key);
    }

    // Phase 2: commitments by dealer and holder.
    let mut commitments = BTreeMap::new();
    for (&id, msgs) in &sent {
        let ClientMessage::ShareKeys(s) = &msgs[1] else {
            panic!("second is ShareKeys")
        };
        for (holder, b, c) in &s.commitments {
            commitments.insert((id, *holder), (*b, *c));
        }
    }

    // Phase 3: open every envelope, check it against the commitments, and
    // recompute every masked input.
    for (&u, msgs) in &sent {
        let Some(ClientMessage::MaskedInput(mi)) = msgs.get(2) else {
            assert!(
                clients[&u].crashes_before.is_some(),
                "client {u} sent no masked input"
            );
            continue;
        };
        let c = clients[&u];
        let enc = AgreementSecret::from_scalar(&scalar(&c.encryption_secret));
        let mask = AgreementSecret::from_scalar(&scalar(&c.mask_key_secret));
        let ServerMessage::SharesForYou(inbox) = &received[&u][2] else {
            panic!("SharesForYou")
        };
        let mut y = c.input.clone();
        let self_seed = scalar(&c.self_mask_secret).self_mask_seed(round, u);
        prg::add_mask(&self_seed, ring, &mut y).unwrap();
        for (v, sealed) in &inbox.entries {
            let ClientMessage::AdvertiseKeys(vk) = &sent[v][0] else {
                unreachable!()
            };
            let ctx = EnvelopeContext {
                round,
                phase: 2,
                sender: *v,
                receiver: u,
            };
            let opened = enc
                .agree(&vk.encryption_key)
                .unwrap()
                .opening_key(ctx)
                .open(&[], sealed)
                .unwrap();
            let p = SharesPlaintext::decode(opened.as_bytes()).unwrap();
            let (cb, cc) = commitments[&(*v, u)];
            assert!(cb.opens_to(round, *v, 0, &p.self_mask_share));
            assert!(cc.opens_to(round, *v, 1, &p.mask_key_share));
            assert!(!mi.excluded.contains(v));
            let seed = mask
                .agree(&mask_keys[v])
                .unwrap()
                .pairwise_mask_seed(round, u, *v);
            if u < *v {
                prg::add_mask(&seed, ring, &mut y).unwrap();
            } else {
                prg::sub_mask(&seed, ring, &mut y).unwrap();
            }
        }
        let sent_y = veil_secagg::packing::unpack(&mi.packed, y.len(), ring).unwrap();
        assert_eq!(sent_y, y, "client {u}'s masked input");
    }

    // Phases 4-5: signatures over the survivor set; revealed shares rebuild
    // exactly the recorded secrets (b of survivors, c of the dropped client).
    let survivors = v.included.clone();
    let message = survivor_set_message(&session, &survivors);
    let mut by_owner: BTreeMap<(u32, u8), Vec<shamir::Share>> = BTreeMap::new();
    for &u in &survivors {
        let ClientMessage::ConsistencySignature(sig) = &sent[&u][3] else {
            panic!()
        };
        IdentityVerifyingKey::from_slice(&hex::decode(&clients[&u].identity_public).unwrap())
            .unwrap()
            .verify(SignatureDomain::CONSISTENCY_CHECK, &message, &sig.signature)
            .unwrap();
        let ClientMessage::UnmaskShares(shares) = &sent[&u][4] else {
            panic!()
        };
        for e in &shares.entries {
            let (cb, cc) = commitments[&(e.about, u)];
            let c: ShareCommitment = if e.kind == ShareKind::SelfMask {
                cb
            } else {
                cc
            };
            assert!(c.opens_to(round, e.about, e.kind as u8, &e.share));
            by_owner
                .entry((e.about, e.kind as u8))
                .or_default()
                .push(e.share.clone());
        }
    }
    let mut rng = <rand::rngs::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(0);
    for ((owner, kind), shares) in &by_owner {
        let secret = shamir::reconstruct(shares, v.config.threshold as usize, &mut rng).unwrap();
        let recorded = if *kind == 0 {
            &clients[owner].self_mask_secret
        } else {
            &clients[owner].mask_key_secret
        };
        assert!(
            bool::from(secret.ct_eq(&scalar(recorded))),
            "secret {kind} of {owner}"
        );
    }
    assert!(
        by_owner.contains_key(&(3, 1)),
        "the dropped client's mask key was recovered"
    );
    assert!(
        !by_owner.contains_key(&(3, 0)),
        "and never its self-mask secret"
    );

    // The released sum is the sum of the included inputs.
    let mut sum = vec![0_u64; v.sum.len()];
    for id in &v.included {
        for (s, x) in sum.iter_mut().zip(&clients[id].input) {
            *s = ring.add(*s, *x);
        }
    }
    assert_eq!(sum, v.sum);
}
