//! X25519 agreements and the derivations a client makes per neighbour.
//!
//! `cargo bench -p veil-crypto --bench agreement`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::agreement::AgreementSecret;
use veil_crypto::shamir::SecretScalar;
use veil_crypto::sign::{IdentitySigningKey, SignatureDomain, Signed, verify_batch};

fn agreement(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
    let b = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)).public_key();
    let mut g = c.benchmark_group("agreement");
    g.throughput(Throughput::Elements(1));
    g.bench_function("x25519 agree", |bench| {
        bench.iter(|| a.agree(black_box(&b)).unwrap())
    });
    g.bench_function("x25519 by x25519-dalek's Montgomery ladder", |bench| {
        bench.iter(|| a.agree_by_ladder_for_test(black_box(&b)))
    });
    let shared = a.agree(&b).unwrap();
    g.bench_function("hkdf pairwise mask seed", |bench| {
        bench.iter(|| shared.pairwise_mask_seed(black_box(3), 1, 2))
    });
    g.bench_function("keygen (scalar + x25519 public key)", |bench| {
        bench.iter(|| AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)).public_key())
    });
    let id = IdentitySigningKey::generate(&mut rng);
    let public = id.verifying_key();
    let sig = id.sign(SignatureDomain::ADVERTISE_KEYS, &[0; 64]);
    g.bench_function("ed25519 sign", |bench| {
        bench.iter(|| id.sign(SignatureDomain::ADVERTISE_KEYS, black_box(&[0; 64])))
    });
    g.bench_function("ed25519 verify", |bench| {
        bench.iter(|| {
            public
                .verify(SignatureDomain::ADVERTISE_KEYS, black_box(&[0; 64]), &sig)
                .unwrap()
        })
    });
    // A client's batch: the signatures of its k = 34 neighbours, in one
    // phase; the throughput is per signature.
    let signers: Vec<_> = (0..34)
        .map(|_| IdentitySigningKey::generate(&mut rng))
        .collect();
    let message = [7_u8; 64];
    let entries: Vec<_> = signers
        .iter()
        .map(|k| {
            (
                k.verifying_key(),
                k.sign(SignatureDomain::CONSISTENCY_CHECK, &message),
            )
        })
        .collect();
    let batch: Vec<Signed<'_>> = entries
        .iter()
        .map(|(key, signature)| Signed {
            key,
            message: &message,
            signature,
        })
        .collect();
    g.throughput(Throughput::Elements(34));
    g.bench_function("ed25519 verify 34, one by one", |bench| {
        bench.iter(|| {
            for s in &batch {
                s.key
                    .verify(SignatureDomain::CONSISTENCY_CHECK, s.message, s.signature)
                    .unwrap();
            }
        })
    });
    g.bench_function("ed25519 verify 34, as a batch", |bench| {
        bench.iter(|| verify_batch(SignatureDomain::CONSISTENCY_CHECK, black_box(&batch)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, agreement);
criterion_main!(benches);
