//! Shamir share and reconstruct at (n, t) = (100, 51) and (1000, 501).
//!
//! `cargo bench -p veil-crypto --bench shamir`
//!
//! "reconstructor setup" is paid once per set of share holders in a round;
//! "reconstruct, cached" is then the cost of each further secret. With all n
//! shares the setup also prepares the consistency check.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::shamir::{self, Reconstructor, SecretScalar, ShareIndex};

fn shamir(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let mut g = c.benchmark_group("shamir");
    g.sample_size(20);
    for (n, t) in [(100_u32, 51_usize), (1000, 501)] {
        let xs: Vec<ShareIndex> = (1..=n).map(|i| ShareIndex::new(i).unwrap()).collect();
        let secret = SecretScalar::random(&mut rng);
        let id = format!("n={n},t={t}");
        g.bench_function(BenchmarkId::new("split", &id), |b| {
            b.iter(|| shamir::split(&secret, t, black_box(&xs), &mut rng).unwrap())
        });
        let shares = shamir::split(&secret, t, &xs, &mut rng).unwrap();
        for (label, m) in [("t shares", t), ("all n shares", n as usize)] {
            let holders = &xs[..m];
            g.bench_function(
                BenchmarkId::new(format!("reconstructor setup, {label}"), &id),
                |b| b.iter(|| Reconstructor::new(black_box(holders), t, &mut rng).unwrap()),
            );
            let rec = Reconstructor::new(holders, t, &mut rng).unwrap();
            g.bench_function(
                BenchmarkId::new(format!("reconstruct, cached, {label}"), &id),
                |b| b.iter(|| rec.reconstruct(black_box(&shares[..m])).unwrap()),
            );
        }
    }
    g.finish();
}

criterion_group!(benches, shamir);
criterion_main!(benches);
