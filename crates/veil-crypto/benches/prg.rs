//! The mask PRG against the raw ChaCha20 keystream, in one run.
//!
//! `cargo bench -p veil-crypto --bench prg`
//!
//! Every row has throughput in elements; "raw keystream" writes the same
//! number of bytes (4 per element for b <= 32, 8 above) with no conversion,
//! so `expand/raw` is the cost of turning keystream into ring elements.

use std::hint::black_box;

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use veil_crypto::prg::{self, MaskSeed, MaskSign, RingBits};

const D: usize = 1 << 20;

fn raw_keystream(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask_prg");
    g.throughput(Throughput::Elements(D as u64));
    let key = [7_u8; 32];
    for word_bytes in [4_usize, 8] {
        // Keystream into a small reused buffer, as the PRG does, so that
        // only the cipher is timed.
        let mut buf = [0_u8; 4096];
        g.bench_function(format!("raw keystream {}B words", word_bytes), |b| {
            b.iter(|| {
                let mut cipher = ChaCha20::new(&key.into(), &[0_u8; 12].into());
                let mut left = D * word_bytes;
                while left > 0 {
                    let n = left.min(buf.len());
                    cipher.write_keystream(&mut buf[..n]);
                    black_box(&buf);
                    left -= n;
                }
            })
        });
    }
    let seed = MaskSeed::from_bytes(key);
    for bits in [20_u32, 32] {
        let ring = RingBits::new(bits).unwrap();
        let mut x = vec![0_u32; D];
        g.bench_function(format!("expand Z_2^{bits} (u32)"), |b| {
            b.iter(|| prg::expand_into(&seed, ring, black_box(&mut x)).unwrap())
        });
        g.bench_function(format!("add Z_2^{bits} (u32)"), |b| {
            b.iter(|| prg::add_mask(&seed, ring, black_box(&mut x)).unwrap())
        });
    }
    let ring = RingBits::new(64).unwrap();
    let mut x = vec![0_u64; D];
    g.bench_function("add Z_2^64 (u64)", |b| {
        b.iter(|| prg::add_mask(&seed, ring, black_box(&mut x)).unwrap())
    });
    g.finish();

    // A client's masking: k = 10 pairwise masks and its self mask.
    let mut g = c.benchmark_group("client_masking_11_streams");
    g.throughput(Throughput::Elements((11 * D) as u64));
    let seeds: Vec<MaskSeed> = (0..11_u8).map(|i| MaskSeed::from_bytes([i; 32])).collect();
    let plan: Vec<(&MaskSeed, MaskSign)> = seeds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                s,
                if i % 2 == 0 {
                    MaskSign::Add
                } else {
                    MaskSign::Subtract
                },
            )
        })
        .collect();
    let ring = RingBits::new(32).unwrap();
    let mut x = vec![0_u32; D];
    g.bench_function("fused apply_masks", |b| {
        b.iter(|| prg::apply_masks(&plan, ring, black_box(&mut x)).unwrap())
    });
    g.bench_function("one add/sub pass per mask", |b| {
        b.iter(|| {
            for (seed, sign) in &plan {
                match sign {
                    MaskSign::Add => prg::add_mask(seed, ring, black_box(&mut x)).unwrap(),
                    MaskSign::Subtract => prg::sub_mask(seed, ring, black_box(&mut x)).unwrap(),
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, raw_keystream);
criterion_main!(benches);
