//! The cost floor of a round: the PRG work no implementation can skip,
//! timed on this core with the same fused routine the protocol uses. Shared
//! by `cargo bench -p veil-bench --bench round` and `veil-bench compare`.
//!
//! A client expands `k + 1` masks of `d` elements (one per neighbour, one
//! self mask). The server sums the survivors' vectors and expands one mask
//! per survivor's self mask and per (survivor, dropped neighbour) pair.
//!
//! Beside it, and not part of it, [`Floor`] also times the round's
//! public-key operations, which SecAgg against an active server needs
//! whatever the implementation, with the primitives the protocol uses:
//! - a client makes its two X25519 key pairs and its two Ed25519 signatures
//!   (its keys; the survivor set), agrees with each of its `k` neighbours
//!   twice (encryption key, mask key), and checks its neighbours'
//!   signatures in both signed phases as two batches of `k`;
//! - the server checks each advertised key's signature and each survivor's
//!   consistency signature, one by one, and makes one agreement per
//!   (survivor, dropped neighbour) pair.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::ParticipantId;
use veil_crypto::agreement::{AgreementPublicKey, AgreementSecret};
use veil_crypto::prg::{self, MaskSeed, MaskSign, RingBits};
use veil_crypto::shamir::SecretScalar;
use veil_crypto::sign::{self, IdentitySigningKey, Signature, SignatureDomain, Signed};

use veil_secagg::graph::NeighbourGraph;

/// The floors of one round, each timed on one core.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// One client's `k + 1` expansions.
    pub client: Duration,
    /// The server's sum and expansions.
    pub server: Duration,
    /// One client's public-key operations (module docs); not in `client`.
    pub client_public_key: Duration,
    /// The server's public-key operations (module docs); not in `server`.
    pub server_public_key: Duration,
}

impl Floor {
    /// The floor of a round with neighbour count `k`, vectors of `d`
    /// elements, whose masked inputs came from `arrived` and not from `gone`.
    ///
    /// # Errors
    /// If the PRG refuses the ring (it never does for a valid `RingBits`).
    pub fn measure(
        k: u32,
        d: usize,
        ring: RingBits,
        graph: &NeighbourGraph,
        arrived: usize,
        gone: &[ParticipantId],
    ) -> veil_crypto::Result<Self> {
        let pairs = surviving_edges(graph, gone);
        let client = expansions(
            usize::try_from(k).unwrap_or(usize::MAX).saturating_add(1),
            d,
            ring,
        )?;
        let server = summing(arrived, d, ring).saturating_add(expansions(
            arrived.saturating_add(pairs),
            d,
            ring,
        )?);
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        let advertised = arrived.saturating_add(gone.len());
        Ok(Self {
            client,
            server,
            client_public_key: client_public_key(k)?,
            server_public_key: server_public_key(advertised.saturating_add(arrived), pairs)?,
        })
    }
}

/// What the public-key floors sign: the size of an advertise-keys message.
const SIGNED_LEN: usize = 72;

/// `count` signers, each with a signature on its own message.
fn signed(count: usize, rng: &mut ChaCha20Rng) -> Vec<(IdentitySigningKey, Vec<u8>, Signature)> {
    (0..count)
        .map(|i| {
            let key = IdentitySigningKey::generate(rng);
            let message = vec![u8::try_from(i % 251).unwrap_or(0); SIGNED_LEN];
            let signature = key.sign(SignatureDomain::ADVERTISE_KEYS, &message);
            (key, message, signature)
        })
        .collect()
}

/// `count` peers' X25519 public keys.
fn peer_keys(count: usize, rng: &mut ChaCha20Rng) -> Vec<AgreementPublicKey> {
    (0..count)
        .map(|_| AgreementSecret::from_scalar(&SecretScalar::random(rng)).public_key())
        .collect()
}

/// One client's public-key operations with `k` neighbours (module docs).
///
/// # Errors
/// If an agreement or a batch fails (never, for these honest inputs).
pub fn client_public_key(k: usize) -> veil_crypto::Result<Duration> {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let peers = peer_keys(k, &mut rng);
    let neighbours = signed(k, &mut rng);
    let verifying: Vec<_> = neighbours
        .iter()
        .map(|(key, ..)| key.verifying_key())
        .collect();
    let batch: Vec<Signed<'_>> = neighbours
        .iter()
        .zip(&verifying)
        .map(|((_, message, signature), key)| Signed {
            key,
            message,
            signature,
        })
        .collect();
    let identity = IdentitySigningKey::generate(&mut rng);
    let message = [0_u8; SIGNED_LEN];
    best_of_fallible(3, || {
        let secrets: Vec<AgreementSecret> = (0..2)
            .map(|_| AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)))
            .collect();
        for secret in &secrets {
            black_box(secret.public_key());
            black_box(identity.sign(SignatureDomain::ADVERTISE_KEYS, &message));
            for peer in &peers {
                black_box(secret.agree(peer)?);
            }
            sign::verify_batch(SignatureDomain::ADVERTISE_KEYS, black_box(&batch))
                .map_err(|_| veil_crypto::Error::BadSignature)?;
        }
        Ok(())
    })
}

/// The server's public-key operations: `checks` signatures checked one by
/// one and `pairs` agreements (module docs).
///
/// # Errors
/// If a check or an agreement fails (never, for these honest inputs).
pub fn server_public_key(checks: usize, pairs: usize) -> veil_crypto::Result<Duration> {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    // Distinct signers up to 64, then reused: a check costs the same.
    let signers = signed(checks.clamp(1, 64), &mut rng);
    let verifying: Vec<_> = signers
        .iter()
        .map(|(key, ..)| key.verifying_key())
        .collect();
    let peers = peer_keys(pairs.clamp(1, 64), &mut rng);
    let secret = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
    best_of_fallible(3, || {
        for ((_, message, signature), key) in signers.iter().zip(&verifying).cycle().take(checks) {
            key.verify(SignatureDomain::ADVERTISE_KEYS, message, signature)?;
        }
        for peer in peers.iter().cycle().take(pairs) {
            black_box(secret.agree(peer)?);
        }
        Ok(())
    })
}

/// The (survivor, dropped neighbour) pairs: the pairwise masks the server
/// must remove.
#[must_use]
pub fn surviving_edges(graph: &NeighbourGraph, gone: &[ParticipantId]) -> usize {
    gone.iter()
        .map(|v| {
            graph
                .neighbours(*v)
                .iter()
                .filter(|u| !gone.contains(u))
                .count()
        })
        .sum()
}

/// Time of `f`: the best of `reps` runs (a floor is a lower bound).
fn best_of(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// [`best_of`] for work that can fail: the first error, if any run failed.
fn best_of_fallible(
    reps: usize,
    mut f: impl FnMut() -> veil_crypto::Result<()>,
) -> veil_crypto::Result<Duration> {
    let mut failed = None;
    let t = best_of(reps, || {
        if let Err(e) = f() {
            failed.get_or_insert(e);
        }
    });
    failed.map_or(Ok(t), Err)
}

/// `streams` fused mask expansions into one vector of `d` elements.
///
/// # Errors
/// If the PRG refuses the ring (it never does for a valid `RingBits`).
pub fn expansions(streams: usize, d: usize, ring: RingBits) -> veil_crypto::Result<Duration> {
    let seeds: Vec<MaskSeed> = (0..streams)
        .map(|i| MaskSeed::from_bytes([u8::try_from(i % 251).unwrap_or(0); 32]))
        .collect();
    let plan: Vec<(&MaskSeed, MaskSign)> = seeds.iter().map(|s| (s, MaskSign::Add)).collect();
    let mut x = vec![0_u64; d];
    best_of_fallible(3, || prg::apply_masks(&plan, ring, black_box(&mut x)))
}

/// Summing `vectors` vectors of `d` elements modulo `2^b`.
#[must_use]
pub fn summing(vectors: usize, d: usize, ring: RingBits) -> Duration {
    let inputs: Vec<Vec<u64>> = (0..vectors.clamp(1, 64))
        .map(|i| vec![i as u64; d])
        .collect();
    let mut acc = vec![0_u64; d];
    best_of(3, || {
        for input in inputs.iter().cycle().take(vectors) {
            for (a, v) in acc.iter_mut().zip(input) {
                *a = ring.add(*a, *v);
            }
        }
        black_box(&acc);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_secagg::sim::{SimParams, Simulation};

    #[test]
    fn edges_to_the_dropped_are_counted_once_per_survivor() {
        // The complete graph on 5: dropping 2 clients leaves 3 survivors,
        // each the neighbour of both, so 6 edges; a survivor-free drop of
        // everyone leaves none.
        let config = Simulation::new(SimParams {
            n: 5,
            k: 4,
            t: 3,
            d: 10,
            bits: 32,
            seed: 1,
            sparse_ids: false,
            max_corrupt: 0,
        })
        .config;
        let graph = config.graph();
        let ids = config.participants;
        assert_eq!(surviving_edges(&graph, &ids[..2]), 6);
        assert_eq!(surviving_edges(&graph, &[]), 0);
        assert_eq!(surviving_edges(&graph, &ids), 0);
    }

    #[test]
    fn a_floor_is_measured() {
        let ring = RingBits::new(32).unwrap();
        assert!(expansions(2, 10_000, ring).unwrap() > Duration::ZERO);
        assert!(summing(3, 10_000, ring) > Duration::ZERO);
        assert!(client_public_key(4).unwrap() > Duration::ZERO);
        assert!(server_public_key(3, 2).unwrap() > Duration::ZERO);
    }
}
