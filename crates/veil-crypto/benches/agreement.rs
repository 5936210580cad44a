//! X25519 agreements and the derivations a client makes per neighbour.
//!
//! `cargo bench -p veil-crypto --bench agreement`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::agreement::AgreementSecret;
use veil_crypto::shamir::SecretScalar;
use veil_crypto::sign::{IdentitySigningKey, SignatureDomain};

fn agreement(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
    let b = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)).public_key();
    let mut g = c.benchmark_group("agreement");
    g.throughput(Throughput::Elements(1));
    g.bench_function("x25519 agree", |bench| {
        bench.iter(|| a.agree(black_box(&b)).unwrap())
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
    g.finish();
}

criterion_group!(benches, agreement);
criterion_main!(benches);
